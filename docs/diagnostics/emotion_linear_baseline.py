"""A linear yardstick for the emotion models (a diagnostic, not part of the app).

Logistic regression on 50 hand-made features of each utterance, under the README's emotion
protocol: 4 folds of two test actors (01+05, 03+04, 02+06, 07+08), the fold's validation actor
left out of training as in `iconnet train --folds 4 --seed 1`, 8 classes, UAR per fold.

Features (16 kHz files resampled to 8 kHz as the models see them, unit RMS): 24 bands spaced
evenly on a log axis from 60 Hz to 4 kHz from a 32 ms / 8 ms STFT; per frame, each band's
log-compressed magnitude ln(1 + 100 sqrt(power)) minus the frame's mean over the bands, and that
mean (the frame level); over the frames within 30 dB of the utterance's loudest, each band's
mean and standard deviation and the level's mean and standard deviation.

    pip install numpy scipy scikit-learn
    python3 docs/diagnostics/emotion_linear_baseline.py [../shared/data/emotion]
"""

import glob
import os
import sys

import numpy as np
import scipy.io.wavfile as wavfile
from scipy.signal import resample_poly, stft
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FOLDS = [((1, 5), 2), ((3, 4), 1), ((2, 6), 8), ((7, 8), 5)]  # (test actors, validation actor)
BANDS = 24
EDGES = np.geomspace(60, 4000, BANDS + 1)


def features(path, relative=True, active_db=30.0, beta=100.0):
    rate, x = wavfile.read(path)
    x = resample_poly(x.astype(float) / 32768, 1, rate // 8000)
    x = x - x.mean()
    x /= np.sqrt((x**2).mean())
    freqs, _, spec = stft(x, fs=8000, nperseg=256, noverlap=192)
    power = np.abs(spec) ** 2
    energy = power.sum(0)
    active = energy > energy.max() * 10 ** (-active_db / 10) if active_db else energy >= 0
    bands = np.array([power[(freqs >= EDGES[i]) & (freqs < EDGES[i + 1])].sum(0) for i in range(BANDS)])
    logs = np.log1p(beta * np.sqrt(bands[:, active]))
    level = logs.mean(0, keepdims=True)
    if relative:
        logs = logs - level
    return np.concatenate([logs.mean(1), logs.std(1), level.mean(1), level.std(1)])


def uar(truth, predicted, classes=8):
    return np.mean([np.mean(predicted[truth == c] == c) for c in range(classes)])


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/emotion"
    files = sorted(glob.glob(os.path.join(root, "*.wav")))
    parts = [os.path.basename(f)[:-4].split("-") for f in files]
    emotion = np.array([int(p[2]) - 1 for p in parts])
    actor = np.array([int(p[6]) for p in parts])
    for name, kwargs in [
        ("relative bands, active frames", {}),
        ("absolute bands, active frames", {"relative": False}),
        ("relative bands, every frame", {"active_db": None}),
        ("paper's NLReLU (beta 1), absolute, every frame", {"relative": False, "active_db": None, "beta": 1.0}),
    ]:
        x = np.array([features(f, **kwargs) for f in files])
        per_fold = []
        for test_actors, validation_actor in FOLDS:
            test = np.isin(actor, test_actors)
            train = ~test & (actor != validation_actor)
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
            model.fit(x[train], emotion[train])
            per_fold.append(uar(emotion[test], model.predict(x[test])))
        print(f"{name}: UAR per fold {np.round(per_fold, 3)}, mean {np.mean(per_fold):.3f} +- {np.std(per_fold, ddof=1):.3f} (sample sd, as iconnet reports)")


if __name__ == "__main__":
    main()
