//! Reference (f64) math for the IConNet band-pass kernels.
//!
//! The burn front-end builds the same kernels as differentiable tensors; these plain functions are
//! what the explain views and the tests measure against.

use std::f64::consts::PI;

/// Mel scale, `mel(f) = 2595 log10(1 + f/700)` with `f` in Hz.
pub fn hz_to_mel(hz: f64) -> f64 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

/// Inverse of [`hz_to_mel`].
pub fn mel_to_hz(mel: f64) -> f64 {
    700.0 * (10f64.powf(mel / 2595.0) - 1.0)
}

/// `sin(pi x) / (pi x)`, 1 at 0.
pub fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// Generalized cosine window `w[k] = sum_p (-1)^p phi_p cos(2 pi p k / (K-1))`, `k = 0..K`.
pub fn generalized_cosine_window(phi: &[f64], len: usize) -> Vec<f64> {
    let denom = (len.max(2) - 1) as f64;
    (0..len)
        .map(|k| {
            phi.iter()
                .enumerate()
                .map(|(p, &c)| {
                    let sign = if p % 2 == 0 { 1.0 } else { -1.0 };
                    sign * c * (2.0 * PI * p as f64 * k as f64 / denom).cos()
                })
                .sum()
        })
        .collect()
}

/// Ideal band-pass `[f1, f2]` (cycles/sample) times `window`; centred, `len = window.len()`.
///
/// `h[k] = (2 f2 sinc(2 f2 tau) - 2 f1 sinc(2 f1 tau)) w[k]`, `tau = k - (K-1)/2`.
pub fn bandpass_kernel(f1: f64, f2: f64, window: &[f64]) -> Vec<f64> {
    let centre = (window.len() as f64 - 1.0) / 2.0;
    window
        .iter()
        .enumerate()
        .map(|(k, w)| {
            let tau = k as f64 - centre;
            (2.0 * f2 * sinc(2.0 * f2 * tau) - 2.0 * f1 * sinc(2.0 * f1 * tau)) * w
        })
        .collect()
}

/// Multi-resolution mel initialisation of `n_filters` bands split into `groups` groups.
///
/// Group `r` spans `0..s_r/2` Hz with `s_r = fs / 2^r`, its `n + 1` edges equally spaced in mel,
/// then divided by `s_r`: every group covers `0..0.5` cycles/sample, the finer groups with a
/// stronger mel warp. Returns `(f_low, bandwidth)` pairs in cycles/sample, group after group.
/// The absolute `fs` matters only through the warp, so it is a parameter.
pub fn multires_mel_bands(n_filters: usize, groups: usize, fs: f64) -> Vec<(f64, f64)> {
    let groups = groups.clamp(1, n_filters.max(1));
    let mut bands = Vec::with_capacity(n_filters);
    for r in 0..groups {
        // Spread any remainder over the first groups so every filter gets a band.
        let n = n_filters / groups + usize::from(r < n_filters % groups);
        let s_r = fs / 2f64.powi(r as i32);
        let top = hz_to_mel(s_r / 2.0);
        let edges: Vec<f64> = (0..=n)
            .map(|j| mel_to_hz(top * j as f64 / n as f64) / s_r)
            .collect();
        for j in 0..n {
            bands.push((edges[j], edges[j + 1] - edges[j]));
        }
    }
    bands
}

/// Magnitude response in dB of a real FIR `kernel` at `n_points` frequencies `0..=0.5`
/// cycles/sample, zero-padded to at least `8 * kernel.len()` for a smooth curve.
pub fn magnitude_response_db(kernel: &[f64], n_points: usize) -> Vec<f64> {
    use realfft::RealFftPlanner;
    let n_fft = (2 * (n_points.max(2) - 1))
        .max(8 * kernel.len())
        .next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n_fft);
    let mut input = vec![0.0; n_fft];
    input[..kernel.len()].copy_from_slice(kernel);
    let mut spectrum = fft.make_output_vec();
    fft.process(&mut input, &mut spectrum)
        .expect("buffer sizes come from the plan");
    let bins = spectrum.len() - 1;
    (0..n_points)
        .map(|i| {
            let pos = i as f64 / (n_points.max(2) - 1) as f64 * bins as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(bins);
            let t = pos - lo as f64;
            let mag = spectrum[lo].norm() * (1.0 - t) + spectrum[hi].norm() * t;
            20.0 * mag.max(1e-12).log10()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hann_and_hamming_come_out_of_phi() {
        let hann = generalized_cosine_window(&[0.5, 0.5], 5);
        // Hann of length 5: 0, 0.5, 1, 0.5, 0.
        for (a, b) in hann.iter().zip([0.0, 0.5, 1.0, 0.5, 0.0]) {
            assert!((a - b).abs() < 1e-12, "{hann:?}");
        }
        let hamming = generalized_cosine_window(&[0.54, 0.46], 5);
        for (a, b) in hamming.iter().zip([0.08, 0.54, 1.0, 0.54, 0.08]) {
            assert!((a - b).abs() < 1e-12, "{hamming:?}");
        }
    }

    #[test]
    fn mel_round_trip_and_known_value() {
        // mel(700) = 2595 log10(2) = 781.17...
        assert!((hz_to_mel(700.0) - 781.1726).abs() < 1e-3);
        assert!((mel_to_hz(hz_to_mel(1234.5)) - 1234.5).abs() < 1e-9);
    }

    #[test]
    fn kernel_centre_is_twice_the_bandwidth() {
        let w = vec![1.0; 11];
        let h = bandpass_kernel(0.1, 0.25, &w);
        assert!((h[5] - 0.3).abs() < 1e-12);
        // tau = 1: (sin(0.5 pi) - sin(0.2 pi)) / pi
        let expected = ((0.5 * PI).sin() - (0.2 * PI).sin()) / PI;
        assert!((h[6] - expected).abs() < 1e-12);
        assert!((h[4] - expected).abs() < 1e-12);
    }

    #[test]
    fn multires_groups_tile_the_band() {
        let bands = multires_mel_bands(128, 4, 16000.0);
        assert_eq!(bands.len(), 128);
        for g in 0..4 {
            let group = &bands[g * 32..(g + 1) * 32];
            assert!(group[0].0.abs() < 1e-12);
            let (lo, bw) = group[31];
            assert!((lo + bw - 0.5).abs() < 1e-9);
            // Mel spacing: bandwidths grow with frequency.
            assert!(group[31].1 > group[0].1);
        }
        // The coarsest group (r = 0) is warped hardest.
        let ratio0 = bands[31].1 / bands[0].1;
        let ratio3 = bands[127].1 / bands[96].1;
        assert!(ratio0 > ratio3);
    }
}
