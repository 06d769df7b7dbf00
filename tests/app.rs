//! The desktop app driven headlessly with egui_kittest: open a file, switch the heatmap method,
//! select a filter, survive a bad file, render the views.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iconnet::app::playback::Player;
use iconnet::app::worker::Worker;
use iconnet::app::{AppOptions, StudioApp};
use iconnet::backend::BackendChoice;
use iconnet::explain::attribution::HeatmapMethod;

/// The bundled digits model as the app opens it: an ensemble of 24 fold models.
fn digits_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/models/digits.ensemble")
}

fn app(file: Option<PathBuf>) -> Harness<'static, StudioApp> {
    app_with(digits_model(), file)
}

fn app_with(model: PathBuf, file: Option<PathBuf>) -> Harness<'static, StudioApp> {
    let options = AppOptions {
        model,
        file,
        backend: BackendChoice::Flex,
        screenshot: None,
    };
    let worker = Worker::start(BackendChoice::Flex, || {});
    let app = StudioApp::with_worker(worker, options, Player::disabled("no sound card in tests"));
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut StudioApp| app.frame(ui), app)
}

/// Steps the UI until `done` holds (the worker runs in the background).
fn step_until(h: &mut Harness<'static, StudioApp>, what: &str, done: impl Fn(&StudioApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

#[test]
fn opens_a_recording_and_shows_prediction_heatmap_and_filters() {
    let file = common::shared_data().join("fsdd/7_george_3.wav");
    let mut h = app(Some(file));
    step_until(&mut h, "analysis", |a| {
        a.data.analysis.is_some() && a.data.heatmap.is_some() && a.idle()
    });
    let app = h.state();
    assert!(app.error().is_none(), "{:?}", app.error());
    let analysis = app.data.analysis.as_ref().unwrap();
    assert_eq!(analysis.classes.len(), 10);
    let heatmap = app.data.heatmap.as_ref().unwrap();
    assert_eq!(heatmap.method, HeatmapMethod::Attention);
    assert!((heatmap.values.iter().sum::<f32>() - 1.0).abs() < 1e-3);
    // The prediction panel shows the top class and the model; the filter browser its table.
    let top = analysis.classes[analysis.top_class].clone();
    h.get_by_label_contains(&format!("{top}  ("));
    h.get_by_label("model: digits");
    h.get_by_label_contains("model backend: flex");
    h.get_by_label("centre Hz ^");
    // The first block's lowest band is selected by default; the header names it.
    assert!(h.state().view.selected_filter.is_some());
    // Display smoothing is labelled on the heatmap's legend and leaves the values alone.
    assert!(h.query_by_label_contains("display smoothed").is_none());
    assert!(
        h.query_by_label_contains("Heart cycle").is_none(),
        "speech has no heart cycle"
    );
    h.state_mut().view.heatmap_smoothing_s = 0.25;
    h.run_steps(2);
    h.get_by_label_contains("display smoothed over 0.25 s");
    assert!(
        (h.state()
            .data
            .heatmap
            .as_ref()
            .unwrap()
            .values
            .iter()
            .sum::<f32>()
            - 1.0)
            .abs()
            < 1e-3
    );
}

/// Clicks the heatmap method `label` and waits until the worker has delivered that heatmap.
fn switch_heatmap(
    h: &mut Harness<'static, StudioApp>,
    label: &str,
    method: HeatmapMethod,
) -> std::sync::Arc<iconnet::explain::attribution::Heatmap> {
    h.get_by_label(label).click();
    step_until(h, label, |a| {
        a.idle() && a.data.heatmap.as_ref().is_some_and(|m| m.method == method)
    });
    h.state().data.heatmap.clone().unwrap()
}

#[test]
fn switching_to_grad_cam_and_integrated_gradients_recomputes_the_heatmap() {
    let file = common::shared_data().join("fsdd/3_theo_10.wav");
    let mut h = app(Some(file));
    step_until(&mut h, "analysis", |a| a.data.heatmap.is_some() && a.idle());
    let m = switch_heatmap(&mut h, "Grad-CAM", HeatmapMethod::GradCam);
    let analysis = h.state().data.analysis.clone().unwrap();
    assert_eq!(
        m.class.as_deref(),
        Some(analysis.classes[analysis.top_class].as_str()),
        "the predicted class is explained until another is chosen"
    );
    assert!(m.values.iter().all(|v| *v >= 0.0 && v.is_finite()));
    let m = switch_heatmap(&mut h, "integrated gradients", HeatmapMethod::IntegratedGradients);
    assert!(m.values.iter().any(|v| *v > 0.0), "some evidence somewhere");
    // Only the 12 M13 members have an input gradient; the legend says whose map it is.
    assert_eq!(m.explained_by, Some((12, 24)));
    h.get_by_label_contains("(12 of 24 members: the others' fixed log-Mel/MFCC features");
    // Back to attention: cached, no recomputation needed.
    h.get_by_label("attention").click();
    h.step();
    assert_eq!(
        h.state().data.heatmap.as_ref().unwrap().method,
        HeatmapMethod::Attention
    );
}

/// The bundled emotion ensemble pools with equal weights, so it has no attention to show: it
/// opens on Grad-CAM for the predicted class. A method the user picks then stays for the next
/// recordings.
#[test]
fn a_mean_pooling_model_opens_on_grad_cam_until_the_user_picks_a_method() {
    let emotion = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/models/emotion.ensemble");
    let file = common::shared_data().join("emotion/03-01-05-01-01-01-02.wav");
    let mut h = app_with(emotion, Some(file));
    step_until(&mut h, "Grad-CAM", |a| a.data.heatmap.is_some() && a.idle());
    assert!(h.state().error().is_none(), "{:?}", h.state().error());
    let analysis = h.state().data.analysis.clone().unwrap();
    let map = h.state().data.heatmap.clone().unwrap();
    assert_eq!(map.method, HeatmapMethod::GradCam);
    assert_eq!(
        map.class.as_deref(),
        Some(analysis.classes[analysis.top_class].as_str())
    );
    // The silence before the sentence is left out of the pooling, so it carries no evidence.
    assert_eq!(map.values.len(), analysis.attention.len());
    for (v, w) in map.values.iter().zip(&analysis.attention) {
        assert!(*w > 0.0 || *v == 0.0);
    }
    let pooled = switch_heatmap(&mut h, "frames pooled (no attention)", HeatmapMethod::Attention);
    assert!(pooled.uniform_pooling);
    h.state_mut()
        .open(common::shared_data().join("emotion/03-01-03-01-01-01-01.wav"));
    step_until(&mut h, "the second recording", |a| {
        a.idle() && a.data.heatmap.is_some()
    });
    assert_eq!(
        h.state().data.heatmap.as_ref().unwrap().method,
        HeatmapMethod::Attention
    );
}

#[test]
fn selecting_a_filter_in_the_table_selects_it_everywhere() {
    let file = common::shared_data().join("fsdd/7_george_3.wav");
    let mut h = app(Some(file));
    step_until(&mut h, "analysis", |a| a.data.analysis.is_some() && a.idle());
    // Sort by filter number and click filter 5 of block 1.
    h.get_by_label("#").click();
    h.run_steps(2);
    h.get_by_role_and_label(egui::accesskit::Role::Button, "5")
        .click();
    h.run_steps(2);
    let app = h.state();
    let model = app.data.model.as_ref().unwrap().member(0);
    let selected = app.view.selected_filter.unwrap();
    assert_eq!(
        (model.filters[selected].block, model.filters[selected].filter),
        (0, 5)
    );
}

/// An MFCC member of the bundled digits ensemble learned no filters: the browser shows its fixed
/// mel bands (table and measured responses) where an M13 member's filters would be.
#[test]
fn an_mfcc_member_shows_its_fixed_mel_bands() {
    let file = common::shared_data().join("fsdd/7_george_3.wav");
    let mut h = app(Some(file));
    step_until(&mut h, "analysis", |a| a.data.analysis.is_some() && a.idle());
    let mfcc = h
        .state()
        .data
        .model
        .as_ref()
        .unwrap()
        .members
        .iter()
        .position(|m| m.filters.is_empty());
    assert_eq!(mfcc, Some(12), "members 13-24 are MFCC");
    h.state_mut().view.member = 12;
    h.run_steps(2);
    h.get_by_label_contains("digits.mfcc.fold1: fixed MFCC front-end, not learned: 64 triangular mel bands");
    h.get_by_label("peak Hz");
    h.get_by_label_contains("mel band 0: 0.0-");
    h.get_by_role_and_label(egui::accesskit::Role::Button, "3")
        .click();
    h.run_steps(2);
    // Band 3 of 64 on 0-4000 Hz: its triangle rises from band 2's peak to its own.
    let edges = iconnet::dsp::spectral::mel_band_edges_hz(64, 8000.0);
    h.get_by_label_contains(&format!(
        "mel band 3: {:.1}-{:.1} Hz, peak {:.1} Hz",
        edges[3][0], edges[3][2], edges[3][1]
    ));
    assert!(h.state().error().is_none());
    if let Ok(path) = std::env::var("ICONNET_KEEP_SCREENSHOT") {
        h.render().unwrap().save(path).unwrap();
    }
}

#[test]
fn a_heart_recording_shows_its_cycle_and_where_the_attention_falls_in_it() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/models/heart.ensemble");
    let file = common::shared_data().join("heart/a0013.wav");
    let mut h = app_with(model, Some(file));
    step_until(&mut h, "analysis", |a| {
        a.data.analysis.is_some() && a.data.heatmap.is_some() && a.idle()
    });
    let recording = h.state().data.recording.clone().unwrap();
    let cycles = recording.heart_cycles.as_ref().unwrap().as_ref().unwrap();
    // a0013 is 35.7 s of a steady rhythm near 65 bpm: one S1 and one S2 per beat.
    let bpm = cycles.cycles.heart_rate_bpm;
    assert!((55.0..75.0).contains(&bpm), "{bpm}");
    let s1 = cycles.sounds.iter().filter(|s| s.phase.label() == "S1").count();
    let expected = 35.7 * bpm / 60.0;
    assert!(
        (s1 as f64 - expected).abs() <= 2.0,
        "{s1} S1 for {expected:.1} beats"
    );
    h.get_by_label("Heart cycle (estimated from the recording)");
    h.get_by_label_contains(&format!("{bpm:.0} bpm, systolic interval"));
    h.get_by_label_contains("share of the heatmap: attention");
    h.get_by_label("of the weight");
    h.get_by_label("diastole");
    // The S1/S2 label track and the probabilities with the heart cycle.
    let dir = tempfile::tempdir().unwrap();
    let ctx = h.ctx.clone();
    let (labels, probabilities) = (dir.path().join("s1-s2.txt"), dir.path().join("p.json"));
    h.state()
        .export(&ctx, iconnet::app::Export::HeartSoundLabels, &labels)
        .unwrap();
    h.state()
        .export(&ctx, iconnet::app::Export::ProbabilitiesJson, &probabilities)
        .unwrap();
    let labels = std::fs::read_to_string(labels).unwrap();
    assert_eq!(labels.lines().count(), cycles.sounds.len());
    assert!(
        labels.lines().next().unwrap().split('\t').count() == 3,
        "{labels}"
    );
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(probabilities).unwrap()).unwrap();
    assert_eq!(p["heart_cycle"]["heart_rate_bpm"].as_f64(), Some(bpm));
    // Zoomed in to four seconds, the markers are named.
    h.state_mut().view.request_visible_s = Some((5.0, 9.0));
    h.run_steps(3);
    assert!(h.state().error().is_none());
    if let Ok(path) = std::env::var("ICONNET_KEEP_SCREENSHOT") {
        h.render().unwrap().save(path).unwrap();
    }
}

#[test]
fn an_ensemble_shows_its_vote_and_explains_with_every_member() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pair.ensemble");
    let member = common::digits_member().display().to_string();
    iconnet::model::ensemble::Manifest::new("pair", vec![member.clone(), member], vec![])
        .write(&manifest)
        .unwrap();
    let file = common::shared_data().join("fsdd/7_george_3.wav");
    let mut h = app_with(manifest, Some(file));
    step_until(&mut h, "analysis", |a| a.data.analysis.is_some() && a.idle());
    let analysis = h.state().data.analysis.clone().unwrap();
    assert_eq!(analysis.member_probabilities.len(), 2);
    assert_eq!(h.state().data.model.as_ref().unwrap().name(), "pair");
    h.get_by_label_contains("ensemble of 2 models");
    h.get_by_label_contains("2 members; filters of");
    h.get_by_label("Grad-CAM").click();
    step_until(&mut h, "Grad-CAM", |a| {
        a.idle()
            && a.data
                .heatmap
                .as_ref()
                .is_some_and(|m| m.method == HeatmapMethod::GradCam)
    });
    assert!(h.state().error().is_none(), "{:?}", h.state().error());
    let map = h.state().data.heatmap.clone().unwrap();
    // Two identical members: the mean of two maps scaled to one is that map scaled to one.
    assert_eq!(map.values.len(), analysis.attention.len());
    let max = map.values.iter().copied().fold(0f32, f32::max);
    assert!((max - 1.0).abs() < 1e-6, "{max}");
}

#[test]
fn a_bad_file_shows_its_error_and_the_app_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("song.wav");
    std::fs::write(&bad, b"ID3\x03\x00\x00\x00\x00\x00\x00not really audio").unwrap();
    let mut h = app(None);
    step_until(&mut h, "model", |a| a.data.model.is_some() && a.idle());
    h.state_mut().open(bad.clone());
    step_until(&mut h, "error", |a| a.error().is_some() && a.idle());
    let e = h.state().error().unwrap().to_string();
    assert!(e.contains("song.wav") && !e.contains('\n'), "{e}");
    h.get_by_label_contains("error: ");
    // Still works afterwards.
    h.state_mut()
        .open(common::shared_data().join("fsdd/1_lucas_0.wav"));
    step_until(&mut h, "analysis", |a| a.data.analysis.is_some() && a.idle());
}

#[test]
fn keyboard_zoom_and_pan_move_the_visible_range() {
    let file = common::shared_data().join("fsdd/7_george_3.wav");
    let mut h = app(Some(file));
    step_until(&mut h, "analysis", |a| a.data.analysis.is_some() && a.idle());
    h.run_steps(2);
    let before = h.state().view.visible_s;
    h.key_press(egui::Key::Plus);
    h.run_steps(2);
    let zoomed = h.state().view.visible_s;
    assert!(
        (zoomed.1 - zoomed.0) < 0.75 * (before.1 - before.0),
        "{before:?} -> {zoomed:?}"
    );
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    let panned = h.state().view.visible_s;
    assert!(panned.0 > zoomed.0, "{zoomed:?} -> {panned:?}");
    h.key_press(egui::Key::Home);
    h.run_steps(2);
    let all = h.state().view.visible_s;
    assert!(all.0 <= 0.01 && all.1 >= before.1 - 0.05, "{all:?}");
}

#[test]
fn exports_write_the_heatmap_labels_filters_and_probabilities() {
    use iconnet::app::Export;
    let file = common::shared_data().join("fsdd/7_george_3.wav");
    let mut h = app(Some(file));
    step_until(&mut h, "analysis", |a| a.data.heatmap.is_some() && a.idle());
    let dir = tempfile::tempdir().unwrap();
    let ctx = h.ctx.clone();
    let app = h.state();
    for (what, name) in [
        (Export::HeatmapCsv, "h.csv"),
        (Export::HeatmapJson, "h.json"),
        (Export::Labels, "labels.txt"),
        (Export::FiltersCsv, "filters.csv"),
        (Export::ProbabilitiesJson, "p.json"),
    ] {
        app.export(&ctx, what, &dir.path().join(name)).unwrap();
    }
    let e = app
        .export(&ctx, Export::HeartSoundLabels, &dir.path().join("s.txt"))
        .unwrap_err();
    assert!(e.contains("heart-sound models only"), "{e}");
    let csv = std::fs::read_to_string(dir.path().join("h.csv")).unwrap();
    let frames = app.data.heatmap.as_ref().unwrap().values.len();
    assert_eq!(
        csv.lines().count(),
        frames + 2,
        "comment, header, one line per frame"
    );
    let labels = std::fs::read_to_string(dir.path().join("labels.txt")).unwrap();
    assert!(
        !labels.is_empty() && labels.lines().all(|l| l.split('\t').count() == 3),
        "{labels}"
    );
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("p.json")).unwrap()).unwrap();
    assert_eq!(p["model"], "digits");
    let filters = std::fs::read_to_string(dir.path().join("filters.csv")).unwrap();
    // The bundled digits model is an ensemble: each filter row names its member.
    assert!(filters.starts_with("member,block,filter,channel,f_low_hz"));
    assert!(filters.contains("\ndigits.fold1,0,0,"), "{}", &filters[..200]);
}

/// The live window shows the input level and the room's noise floor, explains each window with Grad-CAM of the class on
/// screen, and once the input goes quiet says that the probabilities are held from the last
/// window with sound.
#[test]
fn the_live_window_of_a_heart_model_finds_the_beats_in_its_window() {
    let member = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/models/heart.fold1.iconnet");
    let mut h = common::live_window(&member, &common::shared_data().join("heart/a0013.wav"), false);
    let start = Instant::now();
    while h.query_by_label_contains(" bpm, systolic interval").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no heart cycle in the live window"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(16));
    }
    let recording = h.state().data().recording.clone().unwrap();
    let cycles = recording.heart_cycles.as_ref().unwrap().as_ref().unwrap();
    assert!(
        (55.0..75.0).contains(&cycles.cycles.heart_rate_bpm),
        "{}",
        cycles.cycles.summary()
    );
    h.get_by_label("of the weight");
}

#[test]
fn the_live_window_shows_the_level_and_holds_the_prediction_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let speech = iconnet::audio::load(&common::shared_data().join("fsdd/7_george_3.wav")).unwrap();
    let mut samples = speech.samples.clone();
    samples.extend(std::iter::repeat_n(0.0, 4 * speech.sample_rate as usize));
    let file = dir.path().join("digit-then-silence.wav");
    common::write_wav16(&file, &samples, speech.sample_rate);
    let mut h = common::live_window(&common::digits_member(), &file, true);
    let start = Instant::now();
    while h
        .query_by_label_contains("showing the last window with sound")
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never held a prediction"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(16));
    }
    h.get_by_label_contains("input level (loudest 50 ms): -");
    h.get_by_label_contains("room noise (quietest 50 ms, last 10 s): -");
    // Digital silence is quiet by the absolute threshold, and the note says so.
    h.get_by_label_contains("quiet (below -50 dBFS)");
    // The heatmap explains the class shown.
    let shown = h.state().shown_class().expect("a class on screen");
    h.get_by_label_contains(&format!("Grad-CAM for {shown}"));
}
