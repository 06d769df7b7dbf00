//! Engine benchmarks: kernel generation, band-energy op (FFT vs direct), `predict` end to end,
//! one training step. Run: `cargo bench --profile dev --bench engine`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use iconnet::dsp::fftconv::{BandEnergyShape, band_energy_forward, correlate_direct};
use iconnet::dsp::heart_cycle::segment_heart_cycles;
use iconnet::model::{AudioBatch, ContextConfig, IConNet, ModelConfig, PoolingKind};

/// A PCG-like test signal: 50 Hz bursts at 1.2 Hz plus a weak 311 Hz tone.
fn signal(n: usize, rate: f32) -> Vec<f32> {
    (0..n)
        .map(|t| {
            let x = t as f32 / rate;
            (2.0 * std::f32::consts::PI * 50.0 * x).sin()
                * (2.0 * std::f32::consts::PI * 1.2 * x).sin().max(0.0)
                + 0.1 * (2.0 * std::f32::consts::PI * 311.0 * x).sin()
        })
        .collect()
}

fn classes(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

fn model(arch: &str, rate: u32, device: &Device) -> IConNet {
    IConNet::new(
        &ModelConfig::named(arch, rate, classes(2), PoolingKind::Attention).unwrap(),
        device,
    )
}

/// M13 with the temporal context layers (`train --context`).
fn model_with_context(rate: u32, device: &Device) -> IConNet {
    let mut config = ModelConfig::named("m13", rate, classes(2), PoolingKind::Attention).unwrap();
    config.context = Some(ContextConfig::standard());
    IConNet::new(&config, device)
}

fn kernels_and_front_end(c: &mut Criterion) {
    iconnet::memory::keep_freed_memory();
    let device = Device::flex();
    let m13 = model("m13", 16000, &device);
    c.bench_function("kernels/m13 block1 128x511", |b| {
        b.iter(|| black_box(m13.blocks[0].bank.kernels().into_data()))
    });
    c.bench_function("kernels/m13 block2 32x128x127", |b| {
        b.iter(|| black_box(m13.blocks[1].bank.kernels().into_data()))
    });

    // First block on 1 s at 16 kHz: the FFT op against the direct form.
    let x = signal(16000, 16000.0);
    let kernels: Vec<f32> = m13.blocks[0].bank.kernels().into_data().try_to_vec().unwrap();
    let shape = BandEnergyShape {
        batch: 1,
        in_channels: 1,
        time: 16000,
        filters: 128,
        taps: 511,
        stride: 8,
    };
    let mut group = c.benchmark_group("front-end 128x511, 1 s @16 kHz");
    group.sample_size(10);
    group.bench_function("fft", |b| {
        b.iter(|| black_box(band_energy_forward(&x, &kernels, shape, false)))
    });
    group.bench_function("direct", |b| {
        b.iter(|| black_box(correlate_direct(&x, &kernels, shape)))
    });
    group.finish();

    // Second block of M13 on 30 s at 2 kHz: 32 filters over 128 channels at 250 Hz.
    let channels = 128;
    let time = 7500;
    let x2: Vec<f32> = (0..channels)
        .flat_map(|c| signal(time, 250.0 + c as f32))
        .collect();
    let kernels2: Vec<f32> = m13.blocks[1].bank.kernels().into_data().try_to_vec().unwrap();
    let shape2 = BandEnergyShape {
        batch: 1,
        in_channels: channels,
        time,
        filters: 32,
        taps: 127,
        stride: 2,
    };
    let mut group = c.benchmark_group("front-end block2 32x128x127 over 7500 frames");
    group.sample_size(10);
    group.bench_function("fft", |b| {
        b.iter(|| black_box(band_energy_forward(&x2, &kernels2, shape2, false)))
    });
    group.finish();
}

/// The temporal context alone on the front-end frames of 30 s at 2 kHz (161 channels, 3750
/// frames): pool by 4, 1x1 projection, four dilated convolutions with LayerNorm.
fn context(c: &mut Criterion) {
    iconnet::memory::keep_freed_memory();
    let device = Device::flex();
    let layers = iconnet::model::context::TemporalContext::new(&ContextConfig::standard(), 161, &device);
    let frames: Vec<f32> = (0..161).flat_map(|ch| signal(3750, 250.0 + ch as f32)).collect();
    let x = Tensor::<3>::from_data(TensorData::new(frames, [1, 161, 3750]), &device);
    let mut group = c.benchmark_group("context");
    group.sample_size(20);
    group.bench_function("161 ch x 3750 frames (30 s PCG)", |b| {
        b.iter(|| black_box(layers.forward(x.clone(), &[3750]).0.into_data()))
    });
    group.finish();
}

fn predict(c: &mut Criterion) {
    iconnet::memory::keep_freed_memory();
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let heart_wav = dir.path().join("pcg.wav");
    common::write_wav16(&heart_wav, &signal(60_000, 2000.0), 2000);
    let speech_wav = dir.path().join("speech.wav");
    common::write_wav16(&speech_wav, &signal(48_000, 16000.0), 16000);
    // The bundled heart model (M13 + context + statistics pooling) on the first 30 s of the
    // real start-up record: the figure a clinician waits for.
    let record = iconnet::audio::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/samples/a0013.wav"
    )))
    .unwrap();
    let record_wav = dir.path().join("a0013-30s.wav");
    common::write_wav16(&record_wav, &record.samples[..60_000], record.sample_rate);
    let heart = iconnet::model::Ensemble::load(
        std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/models/heart.ensemble"
        )),
        &device,
    )
    .unwrap();
    let cases = [
        (
            "bundled heart model, one member, 30 s of a0013 @2 kHz",
            &record_wav,
            heart.members[0].model.clone(),
        ),
        ("m13, 30 s PCG @2 kHz", &heart_wav, model("m13", 2000, &device)),
        (
            "m13 + context, 30 s PCG @2 kHz",
            &heart_wav,
            model_with_context(2000, &device),
        ),
        (
            "m13, 30 s PCG @2 kHz resampled to 4 kHz",
            &heart_wav,
            model("m13", 4000, &device),
        ),
        (
            "m13, 3 s speech @16 kHz",
            &speech_wav,
            model("m13", 16000, &device),
        ),
    ];
    let mut group = c.benchmark_group("predict (decode + resample + forward + attention)");
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    group.bench_function(
        format!(
            "bundled heart model, all {} members, 30 s of a0013 @2 kHz",
            heart.len()
        ),
        |b| {
            b.iter(|| {
                let (s, _) = iconnet::audio::load_for_model(
                    &record_wav,
                    heart.config().sample_rate,
                    heart.config().min_samples(),
                )
                .unwrap();
                black_box(iconnet::explain::analyse_ensemble(&heart, &s).unwrap())
            })
        },
    );
    for (name, wav, m) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let (s, _) =
                    iconnet::audio::load_for_model(wav, m.config.sample_rate, m.config.min_samples())
                        .unwrap();
                black_box(iconnet::explain::analyse(m, &s))
            })
        });
    }
    group.finish();
}

/// What the app and live mode pay to explain a window of the bundled emotion ensemble (8 members,
/// mean pooling): the analysis alone, the analysis keeping what each member's pooling read plus
/// Grad-CAM from it (live mode), and Grad-CAM from scratch (the app's heatmap menu).
fn explain_window(c: &mut Criterion) {
    use iconnet::explain::{self, attribution};
    iconnet::memory::keep_freed_memory();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/emotion.ensemble");
    let inference = iconnet::model::Ensemble::load(&path, &Device::flex()).unwrap();
    let explainer = attribution::load_for_attribution(&path, &Device::flex()).unwrap();
    let wav = common::shared_data().join("emotion/03-01-05-01-01-01-02.wav");
    let (samples, _) = iconnet::audio::load_for_model(&wav, 8000, 0).unwrap();
    let window = &samples[4000..4000 + 24_000];
    let mut group = c.benchmark_group("explain a 3 s window, bundled emotion ensemble");
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    group.bench_function("analysis", |b| {
        b.iter(|| black_box(explain::analyse_ensemble(&inference, window).unwrap()))
    });
    group.bench_function(
        "analysis + Grad-CAM of the top class from the kept pooling input (live)",
        |b| {
            b.iter(|| {
                let (a, kept) = explain::analyse_ensemble_keeping(&inference, window).unwrap();
                black_box(attribution::grad_cam_from_kept(&explainer, &kept, a.top_class).unwrap())
            })
        },
    );
    group.bench_function("Grad-CAM from the waveform (app)", |b| {
        b.iter(|| {
            black_box(
                attribution::explain_ensemble(
                    &explainer,
                    window,
                    attribution::HeatmapMethod::GradCam,
                    0,
                    16,
                    |_| {},
                )
                .unwrap(),
            )
        })
    });
    group.finish();
}

fn train_step(c: &mut Criterion) {
    iconnet::memory::keep_freed_memory();
    // Batch 8 x 3 s at 16 kHz: forward, backward through the FFT op, global clip, RAdam step.
    let device = Device::flex().autodiff();
    let mut m = model("m13", 16000, &device);
    let clips: Vec<Vec<f32>> = (0..8)
        .map(|i| signal(48_000 + i, 16000.0)[i..].to_vec())
        .collect();
    let refs: Vec<&[f32]> = clips.iter().map(|c| &c[..48_000]).collect();
    let batch = AudioBatch::from_clips(&refs, 48_000);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optim = burn::optim::ModuleOptimizer::from(iconnet::train::radam::RAdam::default());
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 0, 1, 0, 1, 0, 1], [8]), &device);
    let mut group = c.benchmark_group("train step");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("m13, batch 8 x 3 s @16 kHz", |b| {
        b.iter(|| {
            let out = m.forward(&batch);
            let loss = loss_fn.forward(out.logits, targets.clone());
            let mut grads = m.backward(loss, out.tape);
            iconnet::train::trainer::clip_global_norm(&m, &mut grads, 1.0);
            m = optim.step(1e-4, m.clone(), grads);
        })
    });
    group.finish();
    black_box(m.valid());
}

/// The heart-cycle segmentation the app and `predict` add for a heart model: 30 s and 10 min of
/// a0013 at the bundled model's 1 kHz.
fn heart_cycles(c: &mut Criterion) {
    let (samples, _) = iconnet::audio::load_for_model(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/samples/a0013.wav")),
        1000,
        0,
    )
    .unwrap();
    let ten_minutes: Vec<f32> = samples.iter().copied().cycle().take(600_000).collect();
    let mut group = c.benchmark_group("heart cycles (envelope + autocorrelation + Viterbi)");
    group.sample_size(20);
    group.bench_function("30 s of a0013 @1 kHz", |b| {
        b.iter(|| black_box(segment_heart_cycles(&samples[..30_000], 1000).unwrap()))
    });
    group.bench_function("10 min (a0013 repeated) @1 kHz", |b| {
        b.iter(|| black_box(segment_heart_cycles(&ten_minutes, 1000).unwrap()))
    });
    group.finish();
}

criterion_group!(
    engine,
    kernels_and_front_end,
    context,
    predict,
    heart_cycles,
    explain_window,
    train_step
);
criterion_main!(engine);
