//! Which pooled frames hold sound: the frames a speech model pools over when it is told to
//! ignore silence (`ModelConfig::active_frames_db`).
//!
//! A RAVDESS utterance is about 40 % silence. Attention pooling can learn to look past it, but
//! with a few hundred training clips it does not learn it well, and every statistic it pools
//! (a band's mean and deviation) then mixes speech with silence. A level gate is the classic
//! cure: a frame counts when its level is within a fixed range of the clip's loudest frame.

/// The shortest span, in seconds, whose mean power decides a frame's level: a frame of 2 ms
/// at 8 kHz would follow single pitch periods of the voice.
pub const LEVEL_WINDOW_S: f64 = 0.032;

use super::network::AudioBatch;

/// `inactive[clip * frames + t]`: whether pooled frame `t` of each clip of `batch` is more
/// than `db` below the clip's loudest frame. Frame `t` covers samples `[t stride, (t + 1) stride)`; its level is the mean power over a window of
/// at least [`LEVEL_WINDOW_S`] (odd length, centred on the frame, cut at the clip's ends).
/// Only the first `valid[clip]` frames are judged (the rest are padding, reported inactive);
/// a clip with no power at all keeps every valid frame.
pub fn inactive_frames(
    batch: &AudioBatch,
    valid: &[usize],
    frames: usize,
    stride: usize,
    sample_rate: u32,
    db: f64,
) -> Vec<bool> {
    let half = ((LEVEL_WINDOW_S * sample_rate as f64).round() as usize).max(stride) / 2;
    let floor = 10f64.powf(-db / 10.0);
    let mut inactive = vec![true; batch.batch * frames];
    for (clip, (&length, &valid)) in batch.lengths.iter().zip(valid).enumerate() {
        let x = &batch.samples[clip * batch.time..][..length.min(batch.time)];
        let mut prefix = Vec::with_capacity(x.len() + 1);
        prefix.push(0f64);
        for v in x {
            prefix.push(prefix.last().copied().unwrap_or(0.0) + (*v as f64) * (*v as f64));
        }
        let valid = valid.min(frames);
        let power: Vec<f64> = (0..valid)
            .map(|t| {
                let centre = t * stride + stride / 2;
                let lo = centre.saturating_sub(half).min(x.len());
                let hi = (centre + half + 1).min(x.len());
                if hi > lo {
                    (prefix[hi] - prefix[lo]) / (hi - lo) as f64
                } else {
                    0.0
                }
            })
            .collect();
        let loudest = power.iter().copied().fold(0.0, f64::max);
        let row = &mut inactive[clip * frames..][..valid];
        for (flag, p) in row.iter_mut().zip(&power) {
            *flag = loudest > 0.0 && *p < loudest * floor;
        }
    }
    inactive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_more_than_db_below_the_loudest_are_inactive() {
        // 1 kHz, stride 10: the level window is 32 samples (half-width 16). Samples 0..100 at
        // amplitude 1, 100..200 at 0.1 (-20 dB), 200..300 at 0.001 (-60 dB).
        let x: Vec<f32> = (0..300)
            .map(|i| match i / 100 {
                0 => 1.0,
                1 => 0.1,
                _ => 0.001,
            })
            .collect();
        let frames = 30;
        let batch = AudioBatch::from_clips(&[&x], 300);
        let inactive = inactive_frames(&batch, &[frames], frames, 10, 1000, 30.0);
        // Frame 5 (samples 39..72) is all loud, frame 15 (139..172) all -20 dB: both active.
        // Frame 25 (239..272) is all -60 dB: inactive. Frame 20 (189..222) holds 11 samples at
        // -20 dB and 22 at -60 dB: (11 * 0.01 + 22 * 1e-6) / 33 = 3.3e-3, -24.8 dB: active.
        // Frame 21 (199..232): one sample at 0.01 -> 3.1e-4, -35 dB: inactive.
        assert!(!inactive[5] && !inactive[15] && !inactive[20]);
        assert!(inactive[21] && inactive[25]);
        let boundary = (0..frames).position(|t| inactive[t]).unwrap();
        assert_eq!(boundary, 21);
        assert!(inactive[boundary..].iter().all(|&v| v));
        // With a 70 dB range every frame counts.
        let all = inactive_frames(&batch, &[frames], frames, 10, 1000, 70.0);
        assert!(all.iter().all(|&v| !v));
    }

    #[test]
    fn padding_is_inactive_and_silence_keeps_every_frame() {
        // Two clips padded to 80 samples, 8 frames of 10: the first is silent (all kept), the
        // second is 40 samples long (4 valid frames; the padding frames are reported inactive).
        let silent = vec![0f32; 80];
        let short = vec![0.5f32; 40];
        let batch = AudioBatch::from_clips(&[&silent, &short], 80);
        let inactive = inactive_frames(&batch, &[8, 4], 8, 10, 1000, 30.0);
        assert!(inactive[..8].iter().all(|&v| !v));
        assert_eq!(
            &inactive[8..],
            &[false, false, false, false, true, true, true, true]
        );
    }
}
