//! Training-time augmentation: speed perturbation, spectral tilt, additive noise, and the
//! waveform form of SpecAugment (a band and time spans removed).
//!
//! Speed perturbation (resampling by 0.85–1.15) shifts every formant and pitch together, the
//! cheapest stand-in for speakers and stethoscopes the training set does not have. Removing a
//! random band makes the model spread its evidence over several bands, so that one band a new
//! microphone or voice lacks does not decide the class.

use rand::Rng;
use realfft::RealFftPlanner;

#[derive(Clone, Copy, Debug)]
pub struct Augment {
    /// Speed factors are drawn from `[1 - speed, 1 + speed]` (0 disables).
    pub speed: f64,
    /// Probability of adding white noise at an SNR drawn from `[snr_low, MAX_SNR_DB]` dB.
    pub noise_probability: f64,
    pub snr_low_db: f64,
    /// Spectral tilt: `y[t] = x[t] - a x[t-1]` with `a` drawn from `[-tilt, tilt]`, a stand-in
    /// for microphones and stethoscopes with other frequency responses.
    pub tilt: f64,
    /// With probability 1/2, remove one band of random width up to this fraction of the
    /// spectrum (0 disables).
    pub band_drop: f64,
    /// With probability 1/2, silence up to two spans, each up to this fraction of the crop.
    pub time_drop: f64,
}

impl Augment {
    /// The top of the noise SNR range: the quietest noise added.
    pub const MAX_SNR_DB: f64 = 40.0;
    pub const NONE: Self = Self {
        speed: 0.0,
        noise_probability: 0.0,
        snr_low_db: Self::MAX_SNR_DB,
        tilt: 0.0,
        band_drop: 0.0,
        time_drop: 0.0,
    };
    pub const DEFAULT: Self = Self {
        speed: 0.15,
        noise_probability: 0.5,
        snr_low_db: 10.0,
        tilt: 0.7,
        band_drop: 0.0,
        time_drop: 0.0,
    };

    /// What this augmentation does, in the words of the model card (`"none"` when nothing).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.speed > 0.0 {
            parts.push(format!("speed +-{}", self.speed));
        }
        if self.tilt > 0.0 {
            parts.push(format!("spectral tilt x[t]-a x[t-1] with |a|<={}", self.tilt));
        }
        if self.noise_probability > 0.0 {
            parts.push(format!(
                "white noise {}-{} dB SNR (p={})",
                self.snr_low_db.min(Self::MAX_SNR_DB),
                Self::MAX_SNR_DB,
                self.noise_probability
            ));
        }
        if self.band_drop > 0.0 {
            parts.push(format!(
                "one band of up to {} of the spectrum removed (p=0.5)",
                self.band_drop
            ));
        }
        if self.time_drop > 0.0 {
            parts.push(format!(
                "two spans of up to {} of the crop silenced (p=0.5)",
                self.time_drop
            ));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

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
        if self.band_drop > 0.0 && y.len() > 4 && rng.random_bool(0.5) {
            let width = rng.random_range(0.0..=self.band_drop.min(1.0));
            let low = rng.random_range(0.0..=1.0 - width);
            y = drop_band(&y, low, low + width);
        }
        if self.time_drop > 0.0 && !y.is_empty() && rng.random_bool(0.5) {
            for _ in 0..2 {
                let span = (rng.random_range(0.0..=self.time_drop.min(1.0)) * y.len() as f64) as usize;
                let start = rng.random_range(0..=y.len() - span);
                y[start..start + span].fill(0.0);
            }
        }
        if self.noise_probability > 0.0 && rng.random_bool(self.noise_probability.clamp(0.0, 1.0)) {
            let snr = rng.random_range(self.snr_low_db.min(Self::MAX_SNR_DB)..=Self::MAX_SNR_DB);
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

/// `x` with the band `[low, high)` removed, both as fractions of the Nyquist frequency
/// (zeroed FFT bins over the whole crop: a brick-wall band-stop), rescaled to the input RMS.
pub fn drop_band(x: &[f32], low: f64, high: f64) -> Vec<f32> {
    let n = x.len();
    let mut planner = RealFftPlanner::<f32>::new();
    let forward = planner.plan_fft_forward(n);
    let inverse = planner.plan_fft_inverse(n);
    let mut input = x.to_vec();
    let mut spectrum = forward.make_output_vec();
    if forward.process(&mut input, &mut spectrum).is_err() {
        return x.to_vec();
    }
    let bins = spectrum.len();
    let first = ((low * (bins - 1) as f64).ceil() as usize).min(bins);
    let last = ((high * (bins - 1) as f64).ceil() as usize).clamp(first, bins);
    spectrum[first..last]
        .iter_mut()
        .for_each(|c| *c = Default::default());
    // The inverse transform needs real DC and Nyquist bins.
    spectrum[0].im = 0.0;
    if n.is_multiple_of(2) {
        spectrum[bins - 1].im = 0.0;
    }
    let mut y = inverse.make_output_vec();
    if inverse.process(&mut spectrum, &mut y).is_err() {
        return x.to_vec();
    }
    let rms = |v: &[f32]| (v.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / n as f64).sqrt();
    let (before, after) = (rms(x), rms(&y));
    let scale = if after > 1e-12 { before / after } else { 0.0 };
    y.iter_mut().for_each(|v| *v = (*v as f64 * scale) as f32);
    y
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
    use rand::SeedableRng;

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

    /// Amplitude of the sinusoid at `bin` cycles per `x.len()` samples (correlation).
    fn amplitude(x: &[f32], bin: usize) -> f64 {
        let n = x.len() as f64;
        let (mut re, mut im) = (0.0, 0.0);
        for (t, v) in x.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * bin as f64 * t as f64 / n;
            re += *v as f64 * phase.cos();
            im += *v as f64 * phase.sin();
        }
        2.0 * (re * re + im * im).sqrt() / n
    }

    #[test]
    fn drop_band_removes_only_the_band() {
        // Tones at 10 % and 60 % of Nyquist (bins 100 and 600 of 1000): dropping 50-70 % keeps
        // the first and removes the second; the RMS is restored, so the kept tone's amplitude
        // becomes sqrt(2) (it now carries all the power).
        let n = 2000;
        let x: Vec<f32> = (0..n)
            .map(|t| {
                let t = t as f64 / n as f64;
                ((2.0 * std::f64::consts::PI * 100.0 * t).sin()
                    + (2.0 * std::f64::consts::PI * 600.0 * t).sin()) as f32
            })
            .collect();
        let y = drop_band(&x, 0.5, 0.7);
        assert_eq!(y.len(), n);
        assert!((amplitude(&x, 600) - 1.0).abs() < 1e-3);
        assert!(amplitude(&y, 600) < 1e-3, "{}", amplitude(&y, 600));
        assert!(
            (amplitude(&y, 100) - 2f64.sqrt()).abs() < 1e-3,
            "{}",
            amplitude(&y, 100)
        );
    }

    #[test]
    fn describe_names_what_runs() {
        assert_eq!(Augment::NONE.describe(), "none");
        assert_eq!(
            Augment::DEFAULT.describe(),
            "speed +-0.15, spectral tilt x[t]-a x[t-1] with |a|<=0.7, white noise 10-40 dB SNR (p=0.5)"
        );
        let quiet = Augment {
            noise_probability: 0.0,
            tilt: 0.0,
            band_drop: 0.2,
            ..Augment::DEFAULT
        };
        assert_eq!(
            quiet.describe(),
            "speed +-0.15, one band of up to 0.2 of the spectrum removed (p=0.5)"
        );
    }

    #[test]
    fn time_drop_silences_at_most_the_allowed_spans() {
        let augment = Augment {
            time_drop: 0.1,
            ..Augment::NONE
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..20 {
            let y = augment.apply(&[1.0; 1000], &mut rng);
            let zeros = y.iter().filter(|v| **v == 0.0).count();
            assert!(zeros <= 200, "{zeros}");
        }
    }
}
