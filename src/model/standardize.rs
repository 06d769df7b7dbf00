//! Per-recording standardisation of feature rows over their valid frames, on plain values and
//! in parallel, with its backward. The FIR blocks' pooled features enter burn's graph already
//! standardised: burn's flex ops would spend about ten passes over the stack (8 x 161 x 3000
//! values for a batch of 8 x 3 s at 16 kHz) on it, forward and backward, on one core.

use rayon::prelude::*;

/// Added to each row's variance, here and in [`super::network::standardize_over_time`] (the
/// spectral front-ends' and the pooled input's path), which must agree.
pub const VARIANCE_FLOOR: f64 = 1e-5;

/// Valid frames of row `row` of `[clips * channels, frames]`, `frames >= 1`: at least 1, at
/// most `frames`.
fn row_valid(valid: &[usize], channels: usize, frames: usize, row: usize) -> usize {
    valid[row / channels.max(1)].clamp(1, frames)
}

/// Standardises, in place, each row of `values [clips * channels, frames]` over its clip's first
/// `valid[clip]` frames: `y = (x - mean) * scale`, `scale = 1 / sqrt(var + 1e-5)`, padding set to
/// 0. Returns each row's `scale`, which [`standardize_rows_backward`] needs.
pub fn standardize_rows(values: &mut [f32], channels: usize, frames: usize, valid: &[usize]) -> Vec<f32> {
    let rows = values.len() / frames.max(1);
    let mut scales = vec![0f32; rows];
    if frames == 0 {
        return scales;
    }
    values
        .par_chunks_mut(frames)
        .zip(scales.par_iter_mut())
        .enumerate()
        .for_each(|(row, (x, scale))| {
            let n = row_valid(valid, channels, frames, row);
            let (head, padding) = x.split_at_mut(n);
            let mean = head.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = head.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let s = 1.0 / (var + VARIANCE_FLOOR).sqrt();
            let (mean, s32) = (mean as f32, s as f32);
            head.iter_mut().for_each(|v| *v = (*v - mean) * s32);
            padding.fill(0.0);
            *scale = s32;
        });
    scales
}

/// Turns `grad`, `dL/dy` of [`standardize_rows`]' output `standardized`, in place into `dL/dx`:
/// over the valid frames `scale * (g - mean(g) - y * mean(g * y))` (the mean and the variance
/// both depend on every frame), 0 on padding.
pub fn standardize_rows_backward(
    grad: &mut [f32],
    standardized: &[f32],
    scales: &[f32],
    channels: usize,
    frames: usize,
    valid: &[usize],
) {
    if frames == 0 {
        return;
    }
    grad.par_chunks_mut(frames)
        .zip(standardized.par_chunks(frames))
        .zip(scales.par_iter())
        .enumerate()
        .for_each(|(row, ((g, y), &scale))| {
            let n = row_valid(valid, channels, frames, row);
            let (head, padding) = g.split_at_mut(n);
            let y = &y[..n];
            let mean_g = head.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let mean_gy = head
                .iter()
                .zip(y)
                .map(|(&g, &y)| g as f64 * y as f64)
                .sum::<f64>()
                / n as f64;
            let (mean_g, mean_gy) = (mean_g as f32, mean_gy as f32);
            head.iter_mut()
                .zip(y)
                .for_each(|(g, &y)| *g = scale * (*g - mean_g - y * mean_gy));
            padding.fill(0.0);
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_get_zero_mean_and_unit_variance_over_their_valid_frames() {
        // Clip 0 has 2 valid frames of 4, clip 1 all 4; one channel each. Row [1, 3 | 50, 7]:
        // mean 2, variance 1, so y = (-1, 1) / sqrt(1 + 1e-5) and the padding is zeroed.
        // Row [0, 2, 4, 6]: mean 3, variance 5.
        let mut x = vec![1.0f32, 3.0, 50.0, 7.0, 0.0, 2.0, 4.0, 6.0];
        let scales = standardize_rows(&mut x, 1, 4, &[2, 4]);
        let s0 = 1.0 / (1.0f32 + 1e-5).sqrt();
        let s1 = 1.0 / (5.0f32 + 1e-5).sqrt();
        let expected = [-s0, s0, 0.0, 0.0, -3.0 * s1, -s1, s1, 3.0 * s1];
        for (got, want) in x.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{x:?}");
        }
        assert!((scales[0] - s0).abs() < 1e-7 && (scales[1] - s1).abs() < 1e-7);
    }

    #[test]
    fn backward_matches_finite_differences_of_a_weighted_sum() {
        // L = sum(w * y) over two channels of one clip with 5 of 6 frames valid; dL/dx by central
        // differences in f64 of the same formula (mean, variance + 1e-5, padding ignored).
        let (channels, frames, valid) = (2, 6, [5usize]);
        let x: Vec<f32> = vec![0.3, -1.2, 2.5, 0.7, 1.1, 9.0, 4.0, 4.5, 3.0, 5.5, 4.2, -3.0];
        let w: Vec<f32> = vec![1.0, -0.5, 0.25, 2.0, -1.5, 3.0, 0.5, 0.75, -2.0, 1.0, 0.3, -4.0];
        let loss = |x: &[f64]| -> f64 {
            x.chunks(frames)
                .zip(w.chunks(frames))
                .map(|(x, w)| {
                    let n = valid[0] as f64;
                    let mean = x[..valid[0]].iter().sum::<f64>() / n;
                    let var = x[..valid[0]].iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                    let s = 1.0 / (var + 1e-5).sqrt();
                    (0..valid[0])
                        .map(|t| (x[t] - mean) * s * w[t] as f64)
                        .sum::<f64>()
                })
                .sum()
        };
        let mut y = x.clone();
        let scales = standardize_rows(&mut y, channels, frames, &valid);
        let mut grad = w.clone();
        standardize_rows_backward(&mut grad, &y, &scales, channels, frames, &valid);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for i in 0..x.len() {
            let (mut up, mut down) = (x64.clone(), x64.clone());
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let numeric = (loss(&up) - loss(&down)) / 2e-6;
            assert!(
                (grad[i] as f64 - numeric).abs() < 1e-4 * (1.0 + numeric.abs()),
                "frame {i}: {} against {numeric}",
                grad[i]
            );
        }
        assert_eq!((grad[5], grad[11]), (0.0, 0.0), "padding gets no gradient");
    }
}
