//! Log-Mel and MFCC features for the baseline front-ends (fixed, computed on the CPU).

use rayon::prelude::*;
use realfft::RealFftPlanner;

use super::kernel::{hz_to_mel, mel_to_hz};

/// `[low, centre, high]` in Hz of each of the `n_mels` triangles of [`mel_filterbank`]: points
/// equally spaced in mel from 0 to `sample_rate / 2`, each triangle rising from its lower
/// neighbour's centre to its own and falling to its upper neighbour's.
pub fn mel_band_edges_hz(n_mels: usize, sample_rate: f64) -> Vec<[f64; 3]> {
    let top = hz_to_mel(sample_rate / 2.0);
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    edges.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

/// Triangular mel filterbank `[n_mels][n_fft/2 + 1]` over `0..sr/2`.
pub fn mel_filterbank(n_fft: usize, n_mels: usize, sample_rate: f64) -> Vec<Vec<f32>> {
    let bins = n_fft / 2 + 1;
    mel_band_edges_hz(n_mels, sample_rate)
        .into_iter()
        .map(|[lo, mid, hi]| {
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

/// The Hann window of [`log_mel`]'s frames.
fn hann(n_fft: usize) -> Vec<f32> {
    (0..n_fft)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / n_fft as f32).cos())
        .collect()
}

/// Measured power response of every mel band, as [`log_mel`] computes it: a unit cosine at each
/// of `n_points` frequencies from 0 to Nyquist, one Hann-windowed frame, its FFT power weighted
/// by each triangle. Returns the frequencies and, per band, `10 log10` of its energy relative to
/// the band's largest (0 dB at its peak; the Hann window's leakage included). A band too narrow
/// to hold an FFT bin gets no energy at any frequency: all `-inf`.
pub fn mel_band_responses_db(
    n_fft: usize,
    n_mels: usize,
    sample_rate: f64,
    n_points: usize,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let bank = mel_filterbank(n_fft, n_mels, sample_rate);
    let window = hann(n_fft);
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
    let hz: Vec<f64> = (0..n_points)
        .map(|i| sample_rate / 2.0 * i as f64 / (n_points.max(2) - 1) as f64)
        .collect();
    let energies: Vec<Vec<f64>> = hz
        .iter()
        .map(|&f| {
            let mut frame: Vec<f32> = window
                .iter()
                .enumerate()
                .map(|(t, w)| w * (2.0 * std::f64::consts::PI * f * t as f64 / sample_rate).cos() as f32)
                .collect();
            let mut spec = fft.make_output_vec();
            fft.process(&mut frame, &mut spec)
                .expect("buffer sizes come from the plan");
            bank.iter()
                .map(|row| {
                    row.iter()
                        .zip(&spec)
                        .map(|(w, c)| *w as f64 * c.norm_sqr() as f64)
                        .sum()
                })
                .collect()
        })
        .collect();
    let responses = (0..n_mels)
        .map(|m| {
            let peak = energies.iter().map(|e| e[m]).fold(0.0, f64::max);
            if peak == 0.0 {
                // 0 / 0 would be NaN; the doc promises -inf for an empty band.
                return vec![f64::NEG_INFINITY; energies.len()];
            }
            energies.iter().map(|e| 10.0 * (e[m] / peak).log10()).collect()
        })
        .collect();
    (hz, responses)
}

/// Log-Mel spectrogram `[n_mels, T / hop]` of one signal; frame `j` is centred on
/// `j hop + hop/2` (zero padded), so frames line up with the FIR front-end's.
pub fn log_mel(x: &[f32], n_fft: usize, hop: usize, n_mels: usize, sample_rate: f64) -> Vec<f32> {
    let frames = x.len() / hop;
    let bank = mel_filterbank(n_fft, n_mels, sample_rate);
    let window = hann(n_fft);
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

    #[test]
    fn mel_bands_are_equally_spaced_in_mel_and_share_their_edges() {
        // 8 kHz: Nyquist 4000 Hz is 2146.1 mel; 3 bands put points every 2146.1 / 4 mel.
        let edges = mel_band_edges_hz(3, 8000.0);
        let step = hz_to_mel(4000.0) / 4.0;
        for (m, [lo, mid, hi]) in edges.iter().enumerate() {
            assert!((hz_to_mel(*lo) - step * m as f64).abs() < 1e-9);
            assert!((hz_to_mel(*mid) - step * (m + 1) as f64).abs() < 1e-9);
            assert!((hz_to_mel(*hi) - step * (m + 2) as f64).abs() < 1e-9);
        }
        assert_eq!(edges[0][0], 0.0);
        assert!((edges[2][2] - 4000.0).abs() < 1e-9);
        assert_eq!(edges[1][0], edges[0][1]);
    }

    #[test]
    fn a_mel_band_narrower_than_an_fft_bin_has_no_response() {
        // 16-point FFT at 8 kHz: bins 500 Hz apart; the lowest of 40 triangles spans 0-43 Hz
        // and holds no bin (a triangle is zero at its feet).
        let (_, db) = mel_band_responses_db(16, 40, 8000.0, 64);
        let bank = mel_filterbank(16, 40, 8000.0);
        assert!(bank[0].iter().all(|&w| w == 0.0));
        assert!(db[0].iter().all(|&d| d == f64::NEG_INFINITY));
        // A band that holds a bin peaks at 0 dB.
        let holding = (0..40).find(|&m| bank[m].iter().any(|&w| w > 0.0)).unwrap();
        assert!(db[holding].contains(&0.0), "band {holding}");
    }

    #[test]
    fn a_mel_band_passes_its_triangle_and_stops_three_bins_beyond_it() {
        // 256-point FFT at 8 kHz: bins 31.25 Hz apart; the Hann window's main lobe spans +-2
        // bins and its sidelobes are below -31 dB.
        let (sr, n_fft, n_mels) = (8000.0, 256, 20);
        let (hz, db) = mel_band_responses_db(n_fft, n_mels, sr, 2049);
        let bin = sr / n_fft as f64;
        let edges = mel_band_edges_hz(n_mels, sr);
        for m in [5, 12] {
            let [lo, mid, hi] = edges[m];
            let at = |f: f64| db[m][hz.iter().position(|&h| h >= f).unwrap()];
            let peak = hz[(0..hz.len())
                .max_by(|&a, &b| db[m][a].total_cmp(&db[m][b]))
                .unwrap()];
            assert!(
                (peak - mid).abs() <= bin,
                "band {m}: peak {peak} Hz, centre {mid} Hz"
            );
            assert!(at(mid) > -3.0, "band {m} at its centre: {} dB", at(mid));
            assert!(
                at(hi + 3.0 * bin) < -30.0,
                "band {m} above: {} dB",
                at(hi + 3.0 * bin)
            );
            assert!(
                at(lo - 3.0 * bin) < -30.0,
                "band {m} below: {} dB",
                at(lo - 3.0 * bin)
            );
        }
    }
}
