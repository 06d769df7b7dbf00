//! Pooling over time with a padding mask: mean (paper) or additive attention (heatmap).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor};

use super::activation::{tanh_tracked, tanh_untracked};
use super::config::PoolingKind;

/// `score_t = v^T tanh(W f_t + b)`, `alpha = softmax over valid frames`.
#[derive(Module, Debug)]
pub struct TemporalPooling {
    pub projection: Option<Linear>,
    pub score: Option<Linear>,
    /// Also return the weighted standard deviation (attentive statistics pooling).
    #[module(skip)]
    pub with_std: bool,
}

impl TemporalPooling {
    pub fn new(kind: PoolingKind, channels: usize, hidden: usize, with_std: bool, device: &Device) -> Self {
        match kind {
            PoolingKind::Mean => Self {
                projection: None,
                score: None,
                with_std,
            },
            PoolingKind::Attention => Self {
                projection: Some(LinearConfig::new(channels, hidden).init(device)),
                score: Some(LinearConfig::new(hidden, 1).with_bias(false).init(device)),
                with_std,
            },
        }
    }

    /// `features [batch, channels, frames]`, `padding [batch, frames]` (true = padding).
    /// Returns `(pooled [batch, channels], weights [batch, frames])`, or `pooled [batch,
    /// 2 * channels]` (weighted means, then weighted standard deviations) with statistics
    /// pooling; weights sum to 1 over valid frames and are exactly 0 on padding.
    pub fn forward(&self, features: Tensor<3>, padding: Tensor<2, Bool>) -> (Tensor<2>, Tensor<2>) {
        let [batch, channels, frames] = features.dims();
        let valid = padding.clone().bool_not().float();
        let weights = match (&self.projection, &self.score) {
            (Some(projection), Some(score)) => {
                let per_frame = features.clone().swap_dims(1, 2); // [B, T, C]
                let hidden = projection.forward(per_frame);
                let hidden = if hidden.device().is_autodiff() {
                    tanh_tracked(hidden)
                } else {
                    tanh_untracked(hidden)
                };
                let scores = score.forward(hidden).reshape([batch, frames]);
                let scores = scores.mask_fill(padding, -1e9);
                softmax(scores, 1) * valid
            }
            _ => {
                let counts = valid.clone().sum_dim(1).clamp_min(1.0);
                valid / counts
            }
        };
        let frame_weights = weights.clone().reshape([batch, 1, frames]);
        let mean = (features.clone() * frame_weights.clone())
            .sum_dim(2)
            .reshape([batch, channels]);
        if !self.with_std {
            return (mean, weights);
        }
        let second = (features.powf_scalar(2.0) * frame_weights)
            .sum_dim(2)
            .reshape([batch, channels]);
        // The floor keeps the square root's gradient finite on constant channels.
        let std = (second - mean.clone().powf_scalar(2.0)).clamp_min(1e-6).sqrt();
        (Tensor::cat(vec![mean, std], 1), weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn pooling(with_std: bool) -> (TemporalPooling, Device) {
        let device = Device::flex();
        (
            TemporalPooling::new(PoolingKind::Attention, 1, 4, with_std, &device),
            device,
        )
    }

    #[test]
    fn statistics_pooling_gives_the_weighted_mean_and_deviation() {
        // Zero projection weights score every frame alike: uniform weights over the 2 valid
        // frames of values 1 and 3 give mean 2 and standard deviation 1; the padded 50 is unseen.
        let (mut pool, device) = pooling(true);
        let projection = pool.projection.take().unwrap();
        pool.projection = Some(Linear {
            weight: projection.weight.map(|w| w.zeros_like()),
            bias: projection.bias.map(|b| b.map(|b| b.zeros_like())),
        });
        let features = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 3.0, 50.0], [1, 1, 3]), &device);
        let padding =
            Tensor::<2, Bool>::from_data(TensorData::new(vec![false, false, true], [1, 3]), &device);
        let (pooled, weights) = pool.forward(features, padding);
        let pooled: Vec<f32> = pooled.into_data().try_to_vec().unwrap();
        let weights: Vec<f32> = weights.into_data().try_to_vec().unwrap();
        assert_eq!(weights, vec![0.5, 0.5, 0.0]);
        assert!(
            (pooled[0] - 2.0).abs() < 1e-6 && (pooled[1] - 1.0).abs() < 1e-5,
            "{pooled:?}"
        );
    }

    #[test]
    fn plain_attention_pooling_returns_one_value_per_channel() {
        let (pool, device) = pooling(false);
        let features = Tensor::<3>::ones([2, 1, 5], &device);
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(vec![false; 10], [2, 5]), &device);
        let (pooled, _) = pool.forward(features, padding);
        assert_eq!(pooled.dims(), [2, 1]);
    }
}
