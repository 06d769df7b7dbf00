//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Deterministic uniform noise in [-0.5, 0.5).
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_add(0x9E3779B97F4A7C15);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect()
}

pub fn tone(freq_cycles_per_sample: f32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|t| (2.0 * std::f32::consts::PI * freq_cycles_per_sample * t as f32).sin())
        .collect()
}

/// `../shared/data` relative to the crate.
pub fn shared_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// One M13 member of the bundled digits ensemble, for tests that need one model's speed or
/// build their own ensemble.
pub fn digits_member() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/models/digits.fold1.iconnet")
}

/// Writes a 16-bit mono WAV with hound.
pub fn write_wav16(path: &Path, samples: &[f32], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// The live window playing `file` through the model at `model` (flex backend, the defaults for
/// the model's rate, Grad-CAM of each window if `grad_cam`), driven headlessly.
pub fn live_window(
    model: &Path,
    file: &Path,
    grad_cam: bool,
) -> egui_kittest::Harness<'static, iconnet::app::live_view::LiveApp> {
    use iconnet::app::live_view::{LiveApp, LiveOptions};
    let device = burn::tensor::Device::flex();
    let (_, view) = iconnet::app::worker::load_model(model, &device, "flex").unwrap();
    let rate = view.card().config.sample_rate;
    let options = LiveOptions {
        model_path: model.to_path_buf(),
        model: view,
        device,
        input: iconnet::live::InputSpec::File(file.to_path_buf()),
        config: iconnet::live::LiveConfig {
            grad_cam,
            ..iconnet::live::LiveConfig::for_rate(rate)
        },
        exit_at_end: false,
        backend: iconnet::backend::BackendChoice::Flex,
    };
    let app = LiveApp::new(&eframe::egui::Context::default(), options);
    egui_kittest::Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 860.0))
        .build_ui_state(|ui, app: &mut LiveApp| app.frame_ui(ui), app)
}

pub fn classes(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class{i}")).collect()
}
