//! The burn front-end's kernels, measured against the math: |H(f)| by zero-padded FFT.

mod common;

use burn::tensor::Device;
use iconnet::dsp::kernel::{bandpass_kernel, generalized_cosine_window, magnitude_response_db};
use iconnet::model::FirBlockConfig;
use iconnet::model::fir_bank::FirBank;

fn bank(filters: usize, taps: usize) -> FirBank {
    let config = FirBlockConfig {
        filters,
        in_channels: 1,
        taps,
        stride: 8,
        window_terms: 2,
        mel_groups: 1,
        learn_bands: true,
        shared_window: false,
        min_bandwidth: 1.0 / taps as f64,
    };
    FirBank::new(&config, 16000.0, &Device::flex())
}

#[test]
fn burn_kernels_equal_the_reference_formula() {
    let bank = bank(16, 127);
    let kernels: Vec<f32> = bank.kernels().into_data().try_to_vec().unwrap();
    let bands = bank.bands();
    let windows = bank.window_coefficients();
    for (i, band) in bands.iter().enumerate() {
        let w = generalized_cosine_window(&windows[i], 127);
        let reference = bandpass_kernel(band.f_low, band.f_high, &w);
        for (k, r) in reference.iter().enumerate() {
            assert!(
                (kernels[i * 127 + k] as f64 - r).abs() < 2e-5,
                "filter {i} tap {k}"
            );
        }
    }
}

#[test]
fn every_band_pass_peaks_in_its_band_and_rejects_dc_and_nyquist() {
    let taps = 511;
    let bank = bank(64, taps);
    let kernels: Vec<f32> = bank.kernels().into_data().try_to_vec().unwrap();
    let n_points = 4097;
    let mut checked = 0;
    for (i, band) in bank.bands().iter().enumerate() {
        // Bands touching DC or Nyquist pass them by design; the transition of a Hann window
        // of 511 taps is about 4/511 cycles/sample wide.
        if band.f_low < 0.02 || band.f_high > 0.48 {
            continue;
        }
        let h: Vec<f64> = kernels[i * taps..(i + 1) * taps]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let db = magnitude_response_db(&h, n_points);
        let (peak_i, peak) = db.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
        let f_peak = peak_i as f64 / (n_points - 1) as f64 * 0.5;
        assert!(
            f_peak >= band.f_low - 1e-3 && f_peak <= band.f_high + 1e-3,
            "filter {i}: peak at {f_peak} outside [{}, {}]",
            band.f_low,
            band.f_high
        );
        assert!(
            peak - db[0] >= 20.0,
            "filter {i}: DC only {} dB down",
            peak - db[0]
        );
        assert!(
            peak - db[n_points - 1] >= 20.0,
            "filter {i}: Nyquist only {} dB down",
            peak - db[n_points - 1]
        );
        // Unit pass-band gain (within a dB) for bands wide against the window's main lobe.
        if band.f_high - band.f_low > 0.02 {
            assert!(peak.abs() < 1.0, "filter {i}: pass-band gain {peak} dB");
        }
        checked += 1;
    }
    assert!(checked > 40, "only {checked} filters checked");
}

#[test]
fn hann_and_hamming_windows_come_from_phi() {
    let hann = generalized_cosine_window(&[0.5, 0.5], 511);
    let hamming = generalized_cosine_window(&[0.54, 0.46], 511);
    for k in 0..511 {
        let c = (2.0 * std::f64::consts::PI * k as f64 / 510.0).cos();
        assert!((hann[k] - (0.5 - 0.5 * c)).abs() < 1e-12);
        assert!((hamming[k] - (0.54 - 0.46 * c)).abs() < 1e-12);
    }
    // The bank starts with Hann windows.
    assert_eq!(bank(4, 31).window_coefficients()[0], vec![0.5, 0.5]);
}
