//! The same checkpoint gives the same logits on flex and on wgpu (lavapipe here), within 1e-4.
//! wgpu's first call compiles shaders, so the model is tiny.

mod common;

use burn::tensor::Device;
use common::{classes, noise};
use iconnet::backend::{BackendChoice, select};
use iconnet::model::checkpoint::{self, ModelCard};
use iconnet::model::{AudioBatch, ContextConfig, IConNet, ModelConfig, PoolingKind};

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
    let plain = ModelConfig::named("tiny", 8000, classes(3), PoolingKind::Attention).unwrap();
    let mut with_context = plain.clone();
    with_context.context = Some(ContextConfig {
        pool: 2,
        channels: 4,
        kernel: 3,
        dilations: vec![1, 2],
    });
    for config in [plain, with_context] {
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
        let what = config.pooling_summary();
        for (i, (p, q)) in x.iter().zip(&y).enumerate() {
            assert!(
                (p - q).abs() <= 1e-4 * (1.0 + p.abs()),
                "{what}: logit {i}: flex {p} wgpu {q}"
            );
        }
    }
}
