//! Heart-cycle phases as input channels: for each frame, a one-hot of S1, systole, S2 and
//! diastole from the segmentation of its clip ([`crate::dsp::heart_cycle`]), so that the layers
//! after the front-end can tell a sound in systole from the same sound in diastole.

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use super::network::AudioBatch;
use crate::dsp::heart_cycle::segment_heart_cycles;

/// Channels added: S1, systole, S2, diastole.
pub const PHASE_CHANNELS: usize = 4;

/// `[batch, 4, frames]`: frame `f` of clip `b` (centred at `(f + 0.5) * stride` samples) is 1 in
/// its phase's channel and 0 in the others; every channel is 0 past `valid_frames[b]` and over a
/// clip with no heart cycle found (too short, or no rhythm).
pub fn cycle_phase_channels(
    batch: &AudioBatch,
    valid_frames: &[usize],
    frames: usize,
    stride: usize,
    sample_rate: u32,
    device: &Device,
) -> Tensor<3> {
    let rows: Vec<Vec<f32>> = (0..batch.batch)
        .into_par_iter()
        .map(|b| {
            let mut row = vec![0f32; PHASE_CHANNELS * frames];
            let clip = &batch.samples[b * batch.time..b * batch.time + batch.lengths[b]];
            if let Ok(cycles) = segment_heart_cycles(clip, sample_rate) {
                for f in 0..valid_frames[b].min(frames) {
                    let t = (f as f64 + 0.5) * stride as f64 / sample_rate as f64;
                    if let Some(phase) = cycles.phase_at(t) {
                        row[phase.index() * frames + f] = 1.0;
                    }
                }
            }
            row
        })
        .collect();
    Tensor::from_data(
        TensorData::new(rows.concat(), [batch.batch, PHASE_CHANNELS, frames]),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::heart_cycle::tests::synthetic_pcg;

    #[test]
    fn one_hot_per_valid_frame_and_zeros_where_no_cycle_is_found() {
        // S1 every second from 0.1 s (120 ms), S2 0.3 s after each onset (90 ms).
        let long = synthetic_pcg(8.0, 1.0, 0.3, 1.0, 0.7);
        let short = synthetic_pcg(2.0, 1.0, 0.3, 1.0, 0.7);
        let batch = AudioBatch::from_clips(&[&long, &short], 0);
        // 16-sample frames: clip 0 has 500 valid frames, clip 1 (2 s, too short) 125.
        let t = cycle_phase_channels(&batch, &[500, 125], 500, 16, 1000, &Device::flex());
        assert_eq!(t.dims(), [2, 4, 500]);
        let v: Vec<f32> = t.into_data().try_to_vec().unwrap();
        let at = |b: usize, c: usize, f: usize| v[(b * 4 + c) * 500 + f];
        for f in 0..500 {
            let sum: f32 = (0..4).map(|c| at(0, c, f)).sum();
            assert_eq!(sum, 1.0, "frame {f}");
            assert_eq!((0..4).map(|c| at(1, c, f)).sum::<f32>(), 0.0);
        }
        // Frame 10 is centred at 0.168 s, inside the first S1 (0.1-0.22 s); frame 40 at
        // 0.648 s, in diastole (S2 ends at 0.49 s, the next S1 starts at 1.1 s).
        assert_eq!(at(0, 0, 10), 1.0);
        assert_eq!(at(0, 3, 40), 1.0);
    }
}
