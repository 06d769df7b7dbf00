//! `FirBank`: learnable windowed-sinc band-pass kernels.

use std::f64::consts::PI;
use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::FirBlockConfig;
use crate::dsp::kernel::multires_mel_bands;
use crate::dsp::memo::{FINGERPRINT_SEED, KERNELS_BUDGET_BYTES, Memo, fingerprint, fingerprint_values};

/// Learnable band-pass filter bank `[filters, in_channels, taps]`.
///
/// Parameters (cycles/sample): `f_low = |a|`, `f_high = min(|a| + |b| + min_bw, 0.5)`, and
/// the window coefficients `phi`. The `*_init` tensors hold the values training started from;
/// they never receive gradients and are saved with the checkpoint so drift can be shown.
#[derive(Module, Debug)]
pub struct FirBank {
    /// Raw lower edge `a`, `[H, C]`.
    pub f_low: Param<Tensor<2>>,
    /// Raw bandwidth `b`, `[H, C]`.
    pub bandwidth: Param<Tensor<2>>,
    /// Window coefficients `[H, C, P]` (or `[1, 1, P]` when shared).
    pub phi: Param<Tensor<3>>,
    pub f_low_init: Param<Tensor<2>>,
    pub bandwidth_init: Param<Tensor<2>>,
    pub phi_init: Param<Tensor<3>>,
    pub filters: usize,
    pub in_channels: usize,
    pub taps: usize,
    pub window_terms: usize,
    pub learn_bands: bool,
    pub min_bandwidth: f64,
}

/// Band edges of one filter in cycles/sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    pub f_low: f64,
    pub f_high: f64,
}

impl FirBank {
    /// Multi-resolution mel bands, Hann windows. `sample_rate` sets the mel warp.
    pub fn new(config: &FirBlockConfig, sample_rate: f64, device: &Device) -> Self {
        let (h, c, p) = (config.filters, config.in_channels, config.window_terms);
        let bands = multires_mel_bands(h, config.mel_groups, sample_rate);
        let mut f_low = Vec::with_capacity(h * c);
        let mut bandwidth = Vec::with_capacity(h * c);
        for &(lo, bw) in &bands {
            for _ in 0..c {
                f_low.push(lo as f32);
                // The kernel adds min_bw back; keep the initial band exactly the mel band.
                bandwidth.push((bw - config.min_bandwidth).max(0.0) as f32);
            }
        }
        let (wh, wc) = if config.shared_window { (1, 1) } else { (h, c) };
        let mut hann = vec![0f32; p];
        hann[0] = 0.5;
        if p > 1 {
            hann[1] = 0.5;
        }
        let phi: Vec<f32> = (0..wh * wc).flat_map(|_| hann.clone()).collect();
        let t2 = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [h, c]), device);
        let t3 = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [wh, wc, p]), device);
        let frozen2 = |v: Vec<f32>| Param::from_tensor(t2(v)).set_require_grad(false);
        let frozen3 = |v: Vec<f32>| Param::from_tensor(t3(v)).set_require_grad(false);
        let mut f_low_param = Param::from_tensor(t2(f_low.clone()));
        let mut bandwidth_param = Param::from_tensor(t2(bandwidth.clone()));
        if !config.learn_bands {
            f_low_param = f_low_param.set_require_grad(false);
            bandwidth_param = bandwidth_param.set_require_grad(false);
        }
        Self {
            f_low: f_low_param,
            bandwidth: bandwidth_param,
            phi: Param::from_tensor(t3(phi.clone())),
            f_low_init: frozen2(f_low),
            bandwidth_init: frozen2(bandwidth),
            phi_init: frozen3(phi),
            filters: h,
            in_channels: c,
            taps: config.taps,
            window_terms: p,
            learn_bands: config.learn_bands,
            min_bandwidth: config.min_bandwidth,
        }
    }

    /// Generated kernels `[H, C, K]`, differentiable in `f_low`, `bandwidth` and `phi`.
    pub fn kernels(&self) -> Tensor<3> {
        let (h, c, k, p) = (self.filters, self.in_channels, self.taps, self.window_terms);
        let device = self.f_low.val().device();
        let (f1, f2) = self.band_tensors(self.f_low.val(), self.bandwidth.val());
        // Sinc band-pass: (sin(2 pi f2 tau) - sin(2 pi f1 tau)) / (pi tau), 2 (f2 - f1) at tau 0.
        let centre = (k - 1) / 2;
        let tau: Vec<f32> = (0..k).map(|i| i as f32 - centre as f32).collect();
        let inv_pi_tau: Vec<f32> = tau
            .iter()
            .map(|&t| {
                if t == 0.0 {
                    0.0
                } else {
                    1.0 / (std::f32::consts::PI * t)
                }
            })
            .collect();
        let two_pi_tau = Tensor::<3>::from_data(
            TensorData::new(
                tau.iter().map(|t| 2.0 * std::f32::consts::PI * t).collect(),
                [1, 1, k],
            ),
            &device,
        );
        let inv_pi_tau = Tensor::<3>::from_data(TensorData::new(inv_pi_tau, [1, 1, k]), &device);
        let mut centre_mask = vec![0f32; k];
        centre_mask[centre] = 1.0;
        let centre_mask = Tensor::<3>::from_data(TensorData::new(centre_mask, [1, 1, k]), &device);
        let f1 = f1.reshape([h, c, 1]);
        let f2 = f2.reshape([h, c, 1]);
        let sines = (f2.clone() * two_pi_tau.clone()).sin() - (f1.clone() * two_pi_tau).sin();
        let ideal = sines * inv_pi_tau + (f2 - f1).mul_scalar(2.0) * centre_mask;
        // Window: phi [.., P] x cosine basis [P, K] with the (-1)^p signs folded in.
        let denom = (k - 1) as f64;
        let basis: Vec<f32> = (0..p)
            .flat_map(|pi| {
                let sign = if pi % 2 == 0 { 1.0 } else { -1.0 };
                (0..k).map(move |ki| (sign * (2.0 * PI * pi as f64 * ki as f64 / denom).cos()) as f32)
            })
            .collect();
        let basis = Tensor::<2>::from_data(TensorData::new(basis, [p, k]), &device);
        let [wh, wc, _] = self.phi.val().dims();
        let window = self
            .phi
            .val()
            .reshape([wh * wc, p])
            .matmul(basis)
            .reshape([wh, wc, k]);
        ideal * window
    }

    /// [`Self::kernels`] as plain values `[H, C, K]`, row-major, computed afresh: for
    /// training, where the parameters change on every step and remembering them would only
    /// push out the kernels that inference reuses.
    pub fn fresh_kernel_values(&self) -> Vec<f32> {
        self.kernels().into_data().try_to_vec().expect("f32 kernels")
    }

    /// [`Self::kernels`] as plain values `[H, C, K]`, row-major. The most recently used
    /// parameter sets' kernels are remembered, up to [`KERNELS_BUDGET_BYTES`]: inference asks
    /// for the same kernels on every forward pass, and an ensemble's members take turns.
    pub fn kernel_values(&self) -> Arc<Vec<f32>> {
        static MEMO: Memo<Vec<f32>> = Memo::new(KERNELS_BUDGET_BYTES);
        let values = |t: Tensor<2>| -> Vec<f32> { t.into_data().try_to_vec().expect("f32") };
        let sizes = [self.filters, self.in_channels, self.taps, self.window_terms].map(|v| v as u32);
        let min_bw = self.min_bandwidth.to_bits();
        let mut key = fingerprint(
            FINGERPRINT_SEED,
            sizes.into_iter().chain([min_bw as u32, (min_bw >> 32) as u32]),
        );
        let [wh, wc, p] = self.phi.val().dims();
        for param in [
            self.f_low.val(),
            self.bandwidth.val(),
            self.phi.val().reshape([wh * wc, p]),
        ] {
            key = fingerprint_values(key, &values(param));
        }
        MEMO.get_or_insert_with(key, || self.fresh_kernel_values())
    }

    fn band_tensors(&self, a: Tensor<2>, b: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let a = if self.learn_bands { a } else { a.detach() };
        let b = if self.learn_bands { b } else { b.detach() };
        let f1 = a.abs().clamp_max(0.5 - self.min_bandwidth);
        let f2 = (f1.clone() + b.abs().add_scalar(self.min_bandwidth)).clamp_max(0.5);
        (f1, f2)
    }

    fn bands_of(&self, a: Tensor<2>, b: Tensor<2>) -> Vec<Band> {
        let (f1, f2) = self.band_tensors(a, b);
        let f1: Vec<f32> = f1.into_data().try_to_vec().unwrap_or_default();
        let f2: Vec<f32> = f2.into_data().try_to_vec().unwrap_or_default();
        f1.into_iter()
            .zip(f2)
            .map(|(f_low, f_high)| Band {
                f_low: f_low as f64,
                f_high: f_high as f64,
            })
            .collect()
    }

    /// Current band edges, `[H * C]` row-major.
    pub fn bands(&self) -> Vec<Band> {
        self.bands_of(self.f_low.val(), self.bandwidth.val())
    }

    /// Band edges at initialisation, `[H * C]` row-major.
    pub fn initial_bands(&self) -> Vec<Band> {
        self.bands_of(self.f_low_init.val(), self.bandwidth_init.val())
    }

    /// Window coefficients per filter `[H * C][P]` (the shared one repeated).
    pub fn window_coefficients(&self) -> Vec<Vec<f64>> {
        Self::expand_phi(&self.phi.val(), self.filters * self.in_channels)
    }

    /// Initial window coefficients per filter.
    pub fn initial_window_coefficients(&self) -> Vec<Vec<f64>> {
        Self::expand_phi(&self.phi_init.val(), self.filters * self.in_channels)
    }

    fn expand_phi(phi: &Tensor<3>, n: usize) -> Vec<Vec<f64>> {
        let [wh, wc, p] = phi.dims();
        let flat: Vec<f32> = phi.clone().into_data().try_to_vec().unwrap_or_default();
        let rows: Vec<Vec<f64>> = flat
            .chunks(p)
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect();
        if wh * wc == 1 {
            vec![rows[0].clone(); n]
        } else {
            rows
        }
    }
}
