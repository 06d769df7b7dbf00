//! The paper's classifier head.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Tensor};

/// `(LayerNorm -> Linear)` per hidden size, no activation between them, then
/// `LeakyReLU(0.01) -> Dropout -> Linear(classes)`.
#[derive(Module, Debug)]
pub struct Head {
    pub norms: Vec<LayerNorm>,
    pub hidden: Vec<Linear>,
    pub dropout: Dropout,
    pub output: Linear,
}

impl Head {
    pub fn new(inputs: usize, hidden: &[usize], classes: usize, dropout: f64, device: &Device) -> Self {
        let mut norms = Vec::new();
        let mut layers = Vec::new();
        let mut width = inputs;
        for &size in hidden {
            norms.push(LayerNormConfig::new(width).init(device));
            layers.push(LinearConfig::new(width, size).init(device));
            width = size;
        }
        Self {
            norms,
            hidden: layers,
            dropout: DropoutConfig::new(dropout).init(),
            output: LinearConfig::new(width, classes).init(device),
        }
    }

    /// `[batch, features]` -> logits `[batch, classes]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut x = x;
        for (norm, linear) in self.norms.iter().zip(&self.hidden) {
            x = linear.forward(norm.forward(x));
        }
        self.output.forward(self.dropout.forward(leaky_relu(x, 0.01)))
    }
}
