//! Training-time augmentation: speed perturbation and additive noise.
//!
//! Speed perturbation (resampling by 0.85–1.15) shifts every formant and pitch together, the
//! cheapest stand-in for speakers and stethoscopes the training set does not have.

use rand::Rng;

#[derive(Clone, Copy, Debug)]
pub struct Augment {
    /// Speed factors are drawn from `[1 - speed, 1 + speed]` (0 disables).
    pub speed: f64,
    /// Probability of adding white noise at an SNR drawn from `[snr_low, 40]` dB.
    pub noise_probability: f64,
    pub snr_low_db: f64,
    /// Spectral tilt: `y[t] = x[t] - a x[t-1]` with `a` drawn from `[-tilt, tilt]`, a stand-in
    /// for microphones and stethoscopes with other frequency responses.
    pub tilt: f64,
}

impl Augment {
    pub const NONE: Self = Self {
        speed: 0.0,
        noise_probability: 0.0,
        snr_low_db: 40.0,
        tilt: 0.0,
    };
    pub const DEFAULT: Self = Self {
        speed: 0.15,
        noise_probability: 0.5,
        snr_low_db: 10.0,
        tilt: 0.7,
    };

    /// A perturbed copy of `x` (unit-RMS input, so the noise level follows the SNR directly).
    pub fn apply(&self, x: &[f32], rng: &mut impl Rng) -> Vec<f32> {
        let mut y = if self.speed > 0.0 && x.len() > 1 {
            let factor = rng.random_range(1.0 - self.speed..=1.0 + self.speed);
            speed(x, factor)
        } else {
            x.to_vec()
        };
        if self.tilt > 0.0 {
            let a = rng.random_range(-self.tilt..=self.tilt) as f32;
            let mut previous = 0.0;
            for v in y.iter_mut() {
                let current = *v;
                *v = current - a * previous;
                previous = current;
            }
            // Keep unit RMS: the model sees normalised input.
            let rms = (y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / y.len().max(1) as f64).sqrt();
            if rms > 1e-8 {
                y.iter_mut().for_each(|v| *v /= rms as f32);
            }
        }
        if self.noise_probability > 0.0 && rng.random_bool(self.noise_probability.clamp(0.0, 1.0)) {
            let snr = rng.random_range(self.snr_low_db.min(40.0)..=40.0);
            let rms = (y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / y.len().max(1) as f64).sqrt();
            let sigma = rms * 10f64.powf(-snr / 20.0);
            for v in y.iter_mut() {
                // Box-Muller.
                let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
                *v += (sigma * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32;
            }
        }
        y
    }
}

/// Plays `x` `factor` times faster (linear interpolation; output length `len / factor`).
pub fn speed(x: &[f32], factor: f64) -> Vec<f32> {
    let n = ((x.len() as f64) / factor).floor().max(1.0) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * factor;
            let j = (pos.floor() as usize).min(x.len() - 1);
            let k = (j + 1).min(x.len() - 1);
            let t = (pos - j as f64) as f32;
            x[j] * (1.0 - t) + x[k] * t
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_changes_length_and_frequency() {
        let x: Vec<f32> = (0..1000).map(|t| (t as f32 * 0.1).sin()).collect();
        let y = speed(&x, 2.0);
        assert_eq!(y.len(), 500);
        for (i, v) in y.iter().enumerate().take(400) {
            assert!((v - (i as f32 * 0.2).sin()).abs() < 0.02);
        }
        assert_eq!(speed(&x, 1.0), x);
    }
}
