"""A linear yardstick for the emotion models (a diagnostic, not part of the app).

Logistic regression on 50 hand-made features of each utterance, under the README's emotion
protocol: 4 folds of two test actors (01+05, 03+04, 02+06, 07+08), the fold's validation actor
left out of training as in `iconnet train --folds 4 --seed 1`, 8 classes, UAR per fold.

Features (16 kHz files resampled to 8 kHz as the models see them, unit RMS): 24 bands spaced
evenly on a log axis from 60 Hz to 4 kHz from a 32 ms / 8 ms STFT; per frame, each band's
log-compressed magnitude ln(1 + 100 sqrt(power)) minus the frame's mean over the bands, and that
mean (the frame level); over the frames within 30 dB of the utterance's loudest, each band's
mean and standard deviation and the level's mean and standard deviation.

At 16 kHz (`--rate 16000`) the bands run to 8 kHz: 28 of them, the same density on the log axis.
`--per-speaker` standardises each feature over each actor's utterances before the (global)
scaler: a transductive diagnostic, since it needs the test actors' unlabelled utterances.

    pip install numpy scipy scikit-learn
    python3 docs/diagnostics/emotion_linear_baseline.py [../shared/data/emotion] [--rate 16000] [--per-speaker]
"""

import argparse
import glob
import os

import numpy as np
import scipy.io.wavfile as wavfile
from scipy.signal import resample_poly, stft
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FOLDS = [((1, 5), 2), ((3, 4), 1), ((2, 6), 8), ((7, 8), 5)]  # (test actors, validation actor)
BANDS = {8000: 24, 16000: 28}


def features(path, relative=True, active_db=30.0, beta=100.0, model_rate=8000):
    n_bands = BANDS[model_rate]
    edges = np.geomspace(60, model_rate / 2, n_bands + 1)
    rate, x = wavfile.read(path)
    x = x.astype(float) / 32768
    if rate != model_rate:
        x = resample_poly(x, 1, rate // model_rate)
    x = x - x.mean()
    x /= np.sqrt((x**2).mean())
    window = model_rate * 32 // 1000
    freqs, _, spec = stft(x, fs=model_rate, nperseg=window, noverlap=window * 3 // 4)
    power = np.abs(spec) ** 2
    energy = power.sum(0)
    active = energy > energy.max() * 10 ** (-active_db / 10) if active_db else energy >= 0
    bands = np.array([power[(freqs >= edges[i]) & (freqs < edges[i + 1])].sum(0) for i in range(n_bands)])
    logs = np.log1p(beta * np.sqrt(bands[:, active]))
    level = logs.mean(0, keepdims=True)
    if relative:
        logs = logs - level
    return np.concatenate([logs.mean(1), logs.std(1), level.mean(1), level.std(1)])


def uar(truth, predicted, classes=8):
    return np.mean([np.mean(predicted[truth == c] == c) for c in range(classes)])


def main():
    parser = argparse.ArgumentParser(description="Linear yardstick for the emotion models")
    parser.add_argument("root", nargs="?", default="../shared/data/emotion")
    parser.add_argument("--rate", type=int, choices=sorted(BANDS), default=8000)
    parser.add_argument("--per-speaker", action="store_true")
    args = parser.parse_args()
    root, model_rate, per_speaker = args.root, args.rate, args.per_speaker
    files = sorted(glob.glob(os.path.join(root, "*.wav")))
    parts = [os.path.basename(f)[:-4].split("-") for f in files]
    emotion = np.array([int(p[2]) - 1 for p in parts])
    actor = np.array([int(p[6]) for p in parts])
    print(f"{model_rate} Hz, {BANDS[model_rate]} bands{', per-speaker standardisation' if per_speaker else ''}")
    for name, kwargs in [
        ("relative bands, active frames", {}),
        ("absolute bands, active frames", {"relative": False}),
        ("relative bands, every frame", {"active_db": None}),
        ("paper's NLReLU (beta 1), absolute, every frame", {"relative": False, "active_db": None, "beta": 1.0}),
    ]:
        x = np.array([features(f, model_rate=model_rate, **kwargs) for f in files])
        if per_speaker:
            for a in np.unique(actor):
                mine = actor == a
                x[mine] = (x[mine] - x[mine].mean(0)) / (x[mine].std(0) + 1e-8)
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
