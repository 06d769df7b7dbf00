//! Pooling over time with a padding mask: mean (paper) or additive attention (heatmap).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{softmax, tanh};
use burn::tensor::{Bool, Device, Tensor};

use super::config::PoolingKind;

/// `score_t = v^T tanh(W f_t + b)`, `alpha = softmax over valid frames`.
#[derive(Module, Debug)]
pub struct TemporalPooling {
    pub projection: Option<Linear>,
    pub score: Option<Linear>,
}

impl TemporalPooling {
    pub fn new(kind: PoolingKind, channels: usize, hidden: usize, device: &Device) -> Self {
        match kind {
            PoolingKind::Mean => Self {
                projection: None,
                score: None,
            },
            PoolingKind::Attention => Self {
                projection: Some(LinearConfig::new(channels, hidden).init(device)),
                score: Some(LinearConfig::new(hidden, 1).with_bias(false).init(device)),
            },
        }
    }

    /// `features [batch, channels, frames]`, `padding [batch, frames]` (true = padding).
    /// Returns `(pooled [batch, channels], weights [batch, frames])`; weights sum to 1 over valid
    /// frames and are exactly 0 on padding.
    pub fn forward(&self, features: Tensor<3>, padding: Tensor<2, Bool>) -> (Tensor<2>, Tensor<2>) {
        let [batch, channels, frames] = features.dims();
        let valid = padding.clone().bool_not().float();
        let weights = match (&self.projection, &self.score) {
            (Some(projection), Some(score)) => {
                let per_frame = features.clone().swap_dims(1, 2); // [B, T, C]
                let scores = score
                    .forward(tanh(projection.forward(per_frame)))
                    .reshape([batch, frames]);
                let scores = scores.mask_fill(padding, -1e9);
                softmax(scores, 1) * valid
            }
            _ => {
                let counts = valid.clone().sum_dim(1).clamp_min(1.0);
                valid / counts
            }
        };
        let pooled = (features * weights.clone().reshape([batch, 1, frames]))
            .sum_dim(2)
            .reshape([batch, channels]);
        (pooled, weights)
    }
}
