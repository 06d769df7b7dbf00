//! Input levels of live windows, measured on 50 ms blocks before the window is normalised: the
//! loudest block says whether anything was heard, the quietest tracks the room's noise floor.

use std::collections::VecDeque;

/// Levels below this are reported as this (dB re full scale).
pub const FLOOR_DBFS: f32 = -120.0;

/// Mean square of each 50 ms block of `window` (the whole window if shorter).
fn block_powers(window: &[f32], rate: u32) -> impl Iterator<Item = f64> + '_ {
    let block = (rate as usize / 20).max(1);
    window
        .chunks(block)
        .map(|c| c.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / c.len() as f64)
}

fn to_dbfs(power: f64) -> f32 {
    ((10.0 * power.max(1e-12).log10()) as f32).max(FLOOR_DBFS)
}

/// The RMS level of the loudest 50 ms block of `window` (the whole window if shorter), in dB
/// re full scale (a full-scale sine: −3.0), floored at −120. Blocks, not the window's RMS: a
/// word in an otherwise quiet window counts as sound.
pub fn loudest_dbfs(window: &[f32], rate: u32) -> f32 {
    to_dbfs(block_powers(window, rate).fold(0.0, f64::max))
}

/// The RMS level of the quietest 50 ms block of `window`, in dB re full scale, floored at −120.
/// Between words it is the room: fans, hum, the microphone's own noise.
pub fn quietest_dbfs(window: &[f32], rate: u32) -> f32 {
    let quietest = block_powers(window, rate).fold(f64::INFINITY, f64::min);
    if quietest.is_finite() {
        to_dbfs(quietest)
    } else {
        FLOOR_DBFS
    }
}

/// The room's noise floor: the quietest 50 ms block over the last `span` windows. A minimum
/// rather than an average, because speech fills most blocks; and over several windows, because
/// one window of unbroken speech has no pause to measure.
#[derive(Clone, Debug)]
pub struct NoiseFloor {
    span: usize,
    quietest: VecDeque<f32>,
}

impl NoiseFloor {
    /// `span`: how many of the latest windows the floor remembers (at least 1).
    pub fn new(span: usize) -> Self {
        Self {
            span: span.max(1),
            quietest: VecDeque::new(),
        }
    }

    /// A floor that remembers about `seconds` of windows analysed every `hop_s`.
    pub fn over_seconds(seconds: f64, hop_s: f64) -> Self {
        Self::new((seconds / hop_s.max(1e-3)).ceil() as usize)
    }

    /// Adds a window; returns the floor including it.
    pub fn update(&mut self, window: &[f32], rate: u32) -> f32 {
        if self.quietest.len() == self.span {
            self.quietest.pop_front();
        }
        self.quietest.push_back(quietest_dbfs(window, rate));
        self.level().expect("just pushed")
    }

    /// The floor, once a window has been seen.
    pub fn level(&self) -> Option<f32> {
        self.quietest.iter().copied().reduce(f32::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loudest_block_sets_the_level() {
        // 50 ms blocks at 1 kHz are 50 samples.
        assert_eq!(loudest_dbfs(&[0.0; 500], 1000), -120.0);
        // A constant 0.1 in one block: mean square 0.01 -> -20 dB, whatever the rest.
        let mut x = vec![0.0f32; 500];
        x[100..150].iter_mut().for_each(|v| *v = 0.1);
        assert!((loudest_dbfs(&x, 1000) + 20.0).abs() < 1e-4);
        // A sine of amplitude 0.5 over whole periods: mean square 0.125 -> -9.03 dB.
        let sine: Vec<f32> = (0..1000)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * i as f32 / 10.0).sin())
            .collect();
        assert!((loudest_dbfs(&sine, 1000) + 9.031).abs() < 1e-3);
        // Shorter than a block: the whole window.
        assert!((loudest_dbfs(&[0.1; 10], 1000) + 20.0).abs() < 1e-4);
    }

    #[test]
    fn the_quietest_block_sets_the_floor() {
        // Blocks at 0.1 (-20 dB), 0.01 (-40 dB) and 1.0 (0 dB).
        let mut x = vec![0.1f32; 150];
        x[50..100].iter_mut().for_each(|v| *v = 0.01);
        x[100..150].iter_mut().for_each(|v| *v = 1.0);
        assert!((quietest_dbfs(&x, 1000) + 40.0).abs() < 1e-4);
        assert!((loudest_dbfs(&x, 1000) - 0.0).abs() < 1e-4);
        assert_eq!(quietest_dbfs(&[0.0; 100], 1000), -120.0);
        assert_eq!(quietest_dbfs(&[], 1000), -120.0);
    }

    #[test]
    fn the_floor_is_the_minimum_over_the_latest_windows() {
        let at = |amplitude: f32| vec![amplitude; 50];
        let mut floor = NoiseFloor::new(2);
        assert_eq!(floor.level(), None);
        // 0.01 -> -40 dB, 0.1 -> -20 dB, 1.0 -> 0 dB.
        assert!((floor.update(&at(0.01), 1000) + 40.0).abs() < 1e-4);
        assert!((floor.update(&at(0.1), 1000) + 40.0).abs() < 1e-4);
        // The -40 dB window has left the span of two.
        assert!((floor.update(&at(1.0), 1000) + 20.0).abs() < 1e-4);
        assert_eq!(NoiseFloor::over_seconds(10.0, 0.25).span, 40);
    }
}
