//! App benchmarks: waveform decimation, heatmap/spectrogram texture building, and the time of one
//! whole UI frame (egui pass, no GPU) with a 10-minute 4 kHz recording loaded.
//! Run: `cargo bench --profile dev --bench app`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use eframe::egui;
use egui_kittest::Harness;
use iconnet::app::colormap::rgba_image;
use iconnet::app::decimate::MinMaxPyramid;
use iconnet::app::panels::shrink_columns;
use iconnet::app::panels::spectrogram::ordered_normalised;
use iconnet::app::playback::Player;
use iconnet::app::worker::Worker;
use iconnet::app::{AppOptions, StudioApp};
use iconnet::backend::BackendChoice;

const RATE: usize = 4000;
const MINUTES: usize = 10;

fn long_signal() -> Vec<f32> {
    let n = MINUTES * 60 * RATE;
    common::noise(n, 3)
        .iter()
        .enumerate()
        .map(|(t, v)| v * 0.1 + (t as f32 * 0.05).sin() * ((t / RATE) % 2) as f32)
        .collect()
}

fn decimation(c: &mut Criterion) {
    let x = long_signal();
    let mut g = c.benchmark_group("waveform");
    g.sample_size(10);
    g.bench_function("pyramid build, 10 min @ 4 kHz", |b| {
        b.iter(|| MinMaxPyramid::new(black_box(x.clone())))
    });
    let p = MinMaxPyramid::new(x);
    let duration = (MINUTES * 60) as f64;
    g.bench_function("columns, whole 10 min -> 1400 px", |b| {
        b.iter(|| p.columns(RATE as f64, 0.0, duration, black_box(1400)))
    });
    g.bench_function("columns, 7 s zoom -> 1400 px", |b| {
        b.iter(|| p.columns(RATE as f64, 300.0, 307.0, black_box(1400)))
    });
    g.finish();
}

fn heatmaps(c: &mut Criterion) {
    let mut g = c.benchmark_group("heatmap");
    g.sample_size(10);
    // Attention of 10 min at M13's 2 kHz total stride 32: 37,500 frames.
    let attention: Vec<f32> = common::noise(37_500, 5).iter().map(|v| v.abs()).collect();
    g.bench_function("attention band texture (37.5k frames)", |b| {
        b.iter(|| {
            let (rows, _) = shrink_columns(std::slice::from_ref(&attention), 4096);
            rgba_image(&rows[0], 200)
        })
    });
    // First-block energies: 128 bands x 150,000 frames (10 min at stride 8 of 2 kHz).
    let energy: Vec<Vec<f32>> = (0..128)
        .map(|i| common::noise(150_000, i).iter().map(|v| v.abs()).collect())
        .collect();
    let order: Vec<usize> = (0..128).rev().collect();
    g.bench_function("learned spectrogram texture (128 x 150k)", |b| {
        b.iter(|| {
            let (shrunk, _) = shrink_columns(&energy, 4096);
            let shrunk = ordered_normalised(&shrunk, &order);
            let values: Vec<f32> = shrunk.iter().flatten().copied().collect();
            rgba_image(&values, 255)
        })
    });
    g.finish();
}

fn frame(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ten-minutes.wav");
    common::write_wav16(&file, &long_signal(), RATE as u32);
    frame_with(c, file, "one UI frame, 10 min @ 4 kHz loaded");
    // A real heart rhythm, so the heart-cycle section (markers, shares, the average beat) is
    // drawn every frame too.
    let a0013 =
        iconnet::audio::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/samples/a0013.wav"))
            .unwrap();
    let ten_minutes: Vec<f32> = a0013
        .samples
        .iter()
        .copied()
        .cycle()
        .take(600 * a0013.sample_rate as usize)
        .collect();
    let heart = dir.path().join("ten-minutes-of-a0013.wav");
    common::write_wav16(&heart, &ten_minutes, a0013.sample_rate);
    frame_with(
        c,
        heart,
        "one UI frame, 10 min of a0013 repeated (heart cycle drawn)",
    );
}

fn frame_with(c: &mut Criterion, file: PathBuf, name: &str) {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/models/heart.ensemble");
    let options = AppOptions {
        model,
        file: Some(file),
        backend: BackendChoice::Flex,
        screenshot: None,
    };
    let app = StudioApp::with_worker(
        Worker::start(BackendChoice::Flex, || {}),
        options,
        Player::disabled("benchmark"),
    );
    let mut h = Harness::builder()
        .with_size(egui::vec2(1440.0, 920.0))
        .build_ui_state(|ui, app: &mut StudioApp| app.frame(ui), app);
    let start = Instant::now();
    while !(h.state().idle() && h.state().data.heatmap.is_some()) {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "analysis did not finish"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
    let mut g = c.benchmark_group("app");
    g.sample_size(20);
    g.bench_function(name, |b| b.iter(|| h.step()));
    g.finish();
}

/// One frame of the live window while a 60 s speech file streams through the emotion model.
fn live_frame(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let speech =
        iconnet::audio::load(&common::shared_data().join("emotion/03-01-05-01-01-01-02.wav")).unwrap();
    let long: Vec<f32> = speech.samples.iter().cycle().take(60 * 16_000).copied().collect();
    let file = dir.path().join("speech-60s.wav");
    common::write_wav16(&file, &long, 16_000);
    let model_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/models/emotion.ensemble");
    // Grad-CAM on, as `iconnet live` runs this mean-pooling model by default.
    let mut h = common::live_window(&model_path, &file, true);
    // Let the first analyses arrive.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        h.step();
        std::thread::sleep(Duration::from_millis(16));
    }
    assert!(h.state().has_result(), "no live result arrived");
    let mut g = c.benchmark_group("live");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("one live-window frame while streaming (emotion model)", |b| {
        b.iter(|| h.step())
    });
    g.finish();
}

criterion_group!(app, decimation, heatmaps, frame, live_frame);
criterion_main!(app);
