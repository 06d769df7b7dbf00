//! The same checkpoint gives the same logits on flex and on wgpu (lavapipe here), within 1e-4.
//! wgpu's first call compiles shaders, so the model is tiny.

mod common;

use burn::tensor::Device;
use common::{classes, noise};
use iconnet::backend::{BackendChoice, select};
use iconnet::model::checkpoint::{self, ModelCard};
use iconnet::model::{AudioBatch, IConNet, ModelConfig, PoolingKind};

#[test]
fn flex_and_wgpu_agree_on_a_tiny_checkpoint() {
    let wgpu = match select(BackendChoice::Wgpu) {
        Ok(b) => b,
        Err(e) => {
            // CI installs Mesa's lavapipe; a machine without any Vulkan/GL driver cannot run this.
            eprintln!("skipped: no wgpu adapter: {e}");
            return;
        }
    };
    eprintln!("wgpu adapter: {}", wgpu.description);
    let config = ModelConfig::named("tiny", 8000, classes(3), PoolingKind::Attention).unwrap();
    let model = IConNet::new(&config, &Device::flex());
    let bytes = checkpoint::to_bytes(&model, &ModelCard::new("tiny", &model)).unwrap();
    let path = std::path::Path::new("tiny.iconnet");
    let (on_flex, _) = checkpoint::from_bytes(&bytes, path, &Device::flex()).unwrap();
    let (on_wgpu, _) = checkpoint::from_bytes(&bytes, path, &wgpu.device).unwrap();
    let a = noise(1200, 1);
    let b = noise(900, 2);
    let batch = AudioBatch::from_clips(&[&a, &b], 0);
    let x: Vec<f32> = on_flex.forward(&batch).logits.into_data().try_to_vec().unwrap();
    let y: Vec<f32> = on_wgpu.forward(&batch).logits.into_data().try_to_vec().unwrap();
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        assert!(
            (p - q).abs() <= 1e-4 * (1.0 + p.abs()),
            "logit {i}: flex {p} wgpu {q}"
        );
    }
}
