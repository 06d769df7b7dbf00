//! Temporal context before pooling (our addition; the paper pools the front-end frames
//! directly). The front-end's frames each see ~0.1 s, so without this the head reads an
//! unordered bag of short frames and cannot tell "six" from "three" by the order of the sounds.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

use super::config::ContextConfig;
use super::network::{avg_pool_time, valid_frame_mask};

/// Average-pool time by `pool`, project to `channels` (1×1 conv), then residual dilated
/// convolutions `x + conv_d(relu(LayerNorm(x)))`, zero-padded, with padding frames held at 0.
#[derive(Module, Debug)]
pub struct TemporalContext {
    pub input: Conv1d,
    pub norms: Vec<LayerNorm>,
    pub convs: Vec<Conv1d>,
    pub pool: usize,
}

impl TemporalContext {
    pub fn new(config: &ContextConfig, in_channels: usize, device: &Device) -> Self {
        let half = |d: usize| (config.kernel - 1) * d / 2;
        Self {
            input: Conv1dConfig::new(in_channels, config.channels, 1).init(device),
            norms: config
                .dilations
                .iter()
                .map(|_| {
                    LayerNormConfig::new(config.channels)
                        .with_epsilon(LAYER_NORM_EPSILON)
                        .init(device)
                })
                .collect(),
            convs: config
                .dilations
                .iter()
                .map(|&d| {
                    Conv1dConfig::new(config.channels, config.channels, config.kernel)
                        .with_dilation(d)
                        .with_padding(PaddingConfig1d::Explicit(half(d), half(d)))
                        .init(device)
                })
                .collect(),
            pool: config.pool,
        }
    }

    /// `features [batch, in_channels, frames]`, `valid` = valid input frames per clip.
    /// Returns `[batch, channels, frames / pool]` and the valid output frames per clip
    /// (`valid / pool`, at least 1).
    pub fn forward(&self, features: Tensor<3>, valid: &[usize]) -> (Tensor<3>, Vec<usize>) {
        let pooled = avg_pool_time(features, self.pool);
        let [_, _, frames] = pooled.dims();
        let valid: Vec<usize> = valid
            .iter()
            .map(|&v| (v / self.pool).clamp(1, frames.max(1)))
            .collect();
        let device = pooled.device();
        let mask = valid_frame_mask(&valid, frames, &device);
        let mut x = self.input.forward(pooled) * mask.clone();
        let untracked = !device.is_autodiff() && device == Device::flex();
        for (norm, conv) in self.norms.iter().zip(&self.convs) {
            x = if untracked {
                residual_untracked(x, norm, conv, &mask)
            } else {
                let normed = norm.forward(x.clone().swap_dims(1, 2)).swap_dims(1, 2);
                (x + conv.forward(relu(normed))) * mask.clone()
            };
        }
        (x, valid)
    }
}

/// burn's default, written out because [`residual_untracked`] normalises by hand.
const LAYER_NORM_EPSILON: f64 = 1e-5;

/// One residual layer `(x + conv_d(relu(LayerNorm_c(x)))) · mask` on the CPU without a tape,
/// `x [batch, channels, frames]`. The normalisation runs over channels in place (no transposes),
/// and the dilated convolution is one matrix product of the weights `[out, in · K]` with the
/// `K` shifted copies of the frames `[in · K, frames]`: burn's conv1d re-lays out the frames
/// for every call and took twice as long (30 s of PCG: 4.5–7.8 ms per layer against ~3 ms for
/// the product). Tested equal to the tracked form.
fn residual_untracked(x: Tensor<3>, norm: &LayerNorm, conv: &Conv1d, mask: &Tensor<3>) -> Tensor<3> {
    let [batch, channels, frames] = x.dims();
    let device = x.device();
    let values = |t: Tensor<1>| -> Vec<f32> { t.into_data().try_to_vec().expect("f32 parameters") };
    let gamma = values(norm.gamma.val());
    let beta = norm
        .beta
        .as_ref()
        .map_or(vec![0.0; channels], |b| values(b.val()));
    let input: Vec<f32> = x.clone().into_data().try_to_vec().expect("f32 frames");
    let (kernel, dilation) = (conv.kernel_size, conv.dilation);
    let half = (kernel - 1) / 2 * dilation;
    let rows = channels * kernel;
    let mut columns = vec![0f32; batch * rows * frames];
    let mut normed = vec![0f32; channels * frames];
    let (mut mean, mut square) = (vec![0f64; frames], vec![0f64; frames]);
    for b in 0..batch {
        let clip = &input[b * channels * frames..(b + 1) * channels * frames];
        mean.fill(0.0);
        square.fill(0.0);
        for row in clip.chunks_exact(frames) {
            for ((m, s), &v) in mean.iter_mut().zip(square.iter_mut()).zip(row) {
                *m += v as f64;
                *s += (v as f64) * (v as f64);
            }
        }
        let scale: Vec<(f32, f32)> = mean
            .iter()
            .zip(&square)
            .map(|(&sum, &sq)| {
                let m = sum / channels as f64;
                let var = (sq / channels as f64 - m * m).max(0.0);
                (m as f32, (1.0 / (var + LAYER_NORM_EPSILON).sqrt()) as f32)
            })
            .collect();
        for (c, (out, row)) in normed
            .chunks_exact_mut(frames)
            .zip(clip.chunks_exact(frames))
            .enumerate()
        {
            for ((o, &v), &(m, inv)) in out.iter_mut().zip(row).zip(&scale) {
                *o = ((v - m) * inv * gamma[c] + beta[c]).max(0.0);
            }
        }
        let clip_columns = &mut columns[b * rows * frames..(b + 1) * rows * frames];
        for (r, out) in clip_columns.chunks_exact_mut(frames).enumerate() {
            let (c, j) = (r / kernel, r % kernel);
            let row = &normed[c * frames..(c + 1) * frames];
            // out[t] = row[t + j·d − half], zero outside the clip's frames.
            let shift = (j * dilation) as isize - half as isize;
            let (from, to) = (
                (-shift).clamp(0, frames as isize) as usize,
                (frames as isize - shift).clamp(0, frames as isize) as usize,
            );
            if from < to {
                out[from..to]
                    .copy_from_slice(&row[(from as isize + shift) as usize..(to as isize + shift) as usize]);
            }
        }
    }
    let columns = Tensor::<3>::from_data(TensorData::new(columns, [batch, rows, frames]), &device);
    let weight = conv.weight.val().reshape([1, channels, rows]);
    let mut y = weight.matmul(columns);
    if let Some(bias) = &conv.bias {
        y = y + bias.val().reshape([1, channels, 1]);
    }
    (x + y) * mask.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn config() -> ContextConfig {
        ContextConfig {
            pool: 2,
            channels: 3,
            kernel: 3,
            dilations: vec![1, 2],
        }
    }

    #[test]
    fn pooling_projection_and_residuals_by_hand() {
        // One channel: frames 1, 3, 5, 7 pool to 2, 6; the projection 2x + 0.5 gives 4.5, 12.5.
        // Both layers have zero kernels and bias 0.25, so each residual adds exactly 0.25.
        let device = Device::flex();
        let mut context = TemporalContext::new(
            &ContextConfig {
                channels: 1,
                ..config()
            },
            1,
            &device,
        );
        let constant = |t: Tensor<3>, v: f32| t.zeros_like().add_scalar(v);
        context.input.weight = context.input.weight.map(|w| constant(w, 2.0));
        context.input.bias = context
            .input
            .bias
            .map(|b| b.map(|b| b.zeros_like().add_scalar(0.5)));
        for conv in &mut context.convs {
            conv.weight = conv.weight.clone().map(|w| constant(w, 0.0));
            conv.bias = conv
                .bias
                .clone()
                .map(|b| b.map(|b| b.zeros_like().add_scalar(0.25)));
        }
        let x = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 3.0, 5.0, 7.0], [1, 1, 4]), &device);
        let (y, valid) = context.forward(x, &[4]);
        assert_eq!(valid, vec![2]);
        assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), vec![5.0, 13.0]);
    }

    #[test]
    fn pools_time_and_keeps_padding_at_zero() {
        let device = Device::flex();
        let context = TemporalContext::new(&config(), 4, &device);
        let x = Tensor::<3>::ones([2, 4, 9], &device);
        let (y, valid) = context.forward(x, &[9, 5]);
        assert_eq!(y.dims(), [2, 3, 4]);
        assert_eq!(valid, vec![4, 2]);
        let y: Vec<f32> = y.into_data().try_to_vec().unwrap();
        // Clip 1 has 2 valid frames of 4: frames 2 and 3 of every channel are padding.
        for c in 0..3 {
            let row = &y[(3 + c) * 4..(3 + c) * 4 + 4];
            assert_eq!(&row[2..], &[0.0, 0.0], "{row:?}");
        }
    }

    #[test]
    fn the_untracked_cpu_path_equals_the_tracked_layers() {
        // The same weights on flex (matrix-product path) and on flex with autodiff (burn's
        // LayerNorm and conv1d), with a padded second clip and non-trivial norm parameters.
        let device = Device::flex();
        let config = ContextConfig {
            pool: 2,
            channels: 6,
            kernel: 3,
            dilations: vec![1, 2, 4],
        };
        let mut context = TemporalContext::new(&config, 5, &device);
        for (i, norm) in context.norms.iter_mut().enumerate() {
            norm.gamma = norm.gamma.clone().map(|g| g.add_scalar(0.3 * i as f64 - 0.2));
            norm.beta = norm
                .beta
                .clone()
                .map(|b| b.map(|b| b.add_scalar(0.1 * i as f64 + 0.05)));
        }
        let data: Vec<f32> = (0..2 * 5 * 40)
            .map(|i| ((i as f32) * 0.37).sin() * 2.0 + 0.5)
            .collect();
        let valid = [40, 23];
        let untracked = {
            let x = Tensor::<3>::from_data(TensorData::new(data.clone(), [2, 5, 40]), &device);
            context.forward(x, &valid)
        };
        let autodiff = device.clone().autodiff();
        let tracked_context = context.clone().fork(&autodiff);
        let tracked = {
            let x = Tensor::<3>::from_data(TensorData::new(data, [2, 5, 40]), &autodiff);
            tracked_context.forward(x, &valid)
        };
        assert_eq!(untracked.1, tracked.1);
        let a: Vec<f32> = untracked.0.into_data().try_to_vec().unwrap();
        let b: Vec<f32> = tracked.0.into_data().try_to_vec().unwrap();
        assert_eq!(a.len(), 2 * 6 * 20);
        let largest = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(largest > 0.1, "the layers must do something: {largest}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 1e-5 * largest.max(1.0), "{i}: {x} vs {y}");
        }
    }

    #[test]
    fn a_clip_does_not_depend_on_what_it_is_batched_with() {
        // Frames past a short clip's end are held at zero after every layer, so the short clip
        // alone and the short clip beside a long one give the same output.
        let device = Device::flex();
        let context = TemporalContext::new(&config(), 2, &device);
        let short: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin()).collect();
        let alone = Tensor::<3>::from_data(TensorData::new(short.clone(), [1, 2, 6]), &device);
        let (a, _) = context.forward(alone, &[6]);
        // Same clip padded to 10 frames with large values past its end, batched with noise.
        let mut padded = Vec::new();
        for c in 0..2 {
            padded.extend_from_slice(&short[c * 6..c * 6 + 6]);
            padded.extend_from_slice(&[50.0; 4]);
        }
        padded.extend((0..20).map(|i| (i as f32 * 1.3).cos()));
        let batch = Tensor::<3>::from_data(TensorData::new(padded, [2, 2, 10]), &device);
        let (b, _) = context.forward(batch, &[6, 10]);
        let a: Vec<f32> = a.into_data().try_to_vec().unwrap();
        let b: Vec<f32> = b.into_data().try_to_vec().unwrap();
        for c in 0..3 {
            for t in 0..3 {
                let (x, y) = (a[c * 3 + t], b[c * 5 + t]);
                assert!((x - y).abs() < 1e-5, "channel {c} frame {t}: {x} vs {y}");
            }
        }
    }
}
