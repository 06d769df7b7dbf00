//! Whole-signal resampling with rubato's synchronous FFT resampler.

use rubato::{FftFixedIn, Resampler};

/// Resamples `x` from `from` Hz to `to` Hz; output length `round(len * to / from)`, aligned
/// (the resampler's delay is removed).
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, String> {
    if from == to || x.is_empty() {
        return Ok(x.to_vec());
    }
    if from == 0 || to == 0 {
        return Err(format!("cannot resample from {from} Hz to {to} Hz"));
    }
    let expected = ((x.len() as u64 * to as u64 + from as u64 / 2) / from as u64) as usize;
    let mut r = FftFixedIn::<f32>::new(from as usize, to as usize, 1024, 2, 1)
        .map_err(|e| format!("resampler {from} -> {to} Hz: {e}"))?;
    let delay = r.output_delay();
    let mut out = Vec::with_capacity(expected + delay + 4096);
    let mut pos = 0;
    while pos + r.input_frames_next() <= x.len() {
        let n = r.input_frames_next();
        let o = r.process(&[&x[pos..pos + n]], None).map_err(|e| e.to_string())?;
        out.extend_from_slice(&o[0]);
        pos += n;
    }
    if pos < x.len() {
        let o = r
            .process_partial(Some(&[&x[pos..]]), None)
            .map_err(|e| e.to_string())?;
        out.extend_from_slice(&o[0]);
    }
    while out.len() < expected + delay {
        let o = r
            .process_partial::<&[f32]>(None, None)
            .map_err(|e| e.to_string())?;
        out.extend_from_slice(&o[0]);
    }
    Ok(out[delay..delay + expected].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_keeps_its_frequency_and_amplitude() {
        let (from, to) = (8000u32, 16000u32);
        let x: Vec<f32> = (0..8000)
            .map(|t| (2.0 * std::f32::consts::PI * 440.0 * t as f32 / from as f32).sin())
            .collect();
        let y = resample(&x, from, to).unwrap();
        assert_eq!(y.len(), 16000);
        // Compare with the ideal tone away from the edges.
        let err = (2000..14000)
            .map(|t| (y[t] - (2.0 * std::f32::consts::PI * 440.0 * t as f32 / to as f32).sin()).abs())
            .fold(0f32, f32::max);
        assert!(err < 0.02, "max error {err}");
    }
}
