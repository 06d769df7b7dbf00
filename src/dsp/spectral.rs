//! Log-Mel and MFCC features for the baseline front-ends (fixed, computed on the CPU).

use rayon::prelude::*;
use realfft::RealFftPlanner;

use super::kernel::{hz_to_mel, mel_to_hz};

/// Triangular mel filterbank `[n_mels][n_fft/2 + 1]` over `0..sr/2`.
pub fn mel_filterbank(n_fft: usize, n_mels: usize, sample_rate: f64) -> Vec<Vec<f32>> {
    let bins = n_fft / 2 + 1;
    let top = hz_to_mel(sample_rate / 2.0);
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    (0..n_mels)
        .map(|m| {
            let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
            (0..bins)
                .map(|b| {
                    let f = b as f64 * sample_rate / n_fft as f64;
                    let w = if f > lo && f <= mid {
                        (f - lo) / (mid - lo)
                    } else if f > mid && f < hi {
                        (hi - f) / (hi - mid)
                    } else {
                        0.0
                    };
                    w as f32
                })
                .collect()
        })
        .collect()
}

/// Log-Mel spectrogram `[n_mels, T / hop]` of one signal; frame `j` is centred on
/// `j hop + hop/2` (zero padded), so frames line up with the FIR front-end's.
pub fn log_mel(x: &[f32], n_fft: usize, hop: usize, n_mels: usize, sample_rate: f64) -> Vec<f32> {
    let frames = x.len() / hop;
    let bank = mel_filterbank(n_fft, n_mels, sample_rate);
    let window: Vec<f32> = (0..n_fft)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / n_fft as f32).cos())
        .collect();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
    let columns: Vec<Vec<f32>> = (0..frames)
        .into_par_iter()
        .map(|j| {
            let mut buf = vec![0f32; n_fft];
            let origin = (j * hop + hop / 2) as isize - (n_fft / 2) as isize;
            for (i, v) in buf.iter_mut().enumerate() {
                let t = origin + i as isize;
                if t >= 0 && (t as usize) < x.len() {
                    *v = x[t as usize] * window[i];
                }
            }
            let mut spec = fft.make_output_vec();
            fft.process(&mut buf, &mut spec)
                .expect("buffer sizes come from the plan");
            let power: Vec<f32> = spec.iter().map(|c| c.norm_sqr()).collect();
            bank.iter()
                .map(|row| {
                    let e: f32 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
                    (e + 1e-6).ln()
                })
                .collect()
        })
        .collect();
    let mut out = vec![0f32; n_mels * frames];
    for (j, col) in columns.iter().enumerate() {
        for (m, v) in col.iter().enumerate() {
            out[m * frames + j] = *v;
        }
    }
    out
}

/// MFCC `[n_mfcc, frames]`: orthonormal DCT-II over the mel axis of [`log_mel`].
pub fn mfcc(x: &[f32], n_fft: usize, hop: usize, n_mels: usize, n_mfcc: usize, sample_rate: f64) -> Vec<f32> {
    let mel = log_mel(x, n_fft, hop, n_mels, sample_rate);
    let frames = x.len() / hop;
    let mut out = vec![0f32; n_mfcc * frames];
    for k in 0..n_mfcc {
        let scale = if k == 0 {
            (1.0 / n_mels as f64).sqrt()
        } else {
            (2.0 / n_mels as f64).sqrt()
        };
        for m in 0..n_mels {
            let c =
                (scale * (std::f64::consts::PI * k as f64 * (m as f64 + 0.5) / n_mels as f64).cos()) as f32;
            for j in 0..frames {
                out[k * frames + j] += c * mel[m * frames + j];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lights_the_mel_band_that_contains_it() {
        let sr = 8000.0;
        let x: Vec<f32> = (0..4000)
            .map(|t| (2.0 * std::f32::consts::PI * 1000.0 * t as f32 / sr as f32).sin())
            .collect();
        let n_mels = 20;
        let mel = log_mel(&x, 256, 64, n_mels, sr);
        let frames = x.len() / 64;
        let mid = frames / 2;
        let best = (0..n_mels)
            .max_by(|&a, &b| mel[a * frames + mid].total_cmp(&mel[b * frames + mid]))
            .unwrap();
        let bank = mel_filterbank(256, n_mels, sr);
        let bin = (1000.0 / sr * 256.0) as usize;
        assert!(bank[best][bin] > 0.3, "band {best} does not cover 1 kHz");
    }
}
