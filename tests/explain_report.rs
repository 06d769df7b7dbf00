//! `iconnet explain` writes the app's views as PNG and the data behind them, with no display.

mod common;

use std::process::Command;

fn iconnet() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iconnet"));
    c.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    c
}

#[test]
fn explain_writes_views_and_data_headless() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let file = common::shared_data().join("fsdd/7_george_3.wav");
    let result = iconnet()
        .args(["explain", "--model", "digits", "--ig-steps", "4", "--out"])
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let probabilities: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("probabilities.json")).unwrap()).unwrap();
    assert_eq!(probabilities["model"], "digits");
    let p: f64 = probabilities["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-4);
    let heatmaps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("heatmaps.json")).unwrap()).unwrap();
    let methods: Vec<&str> = heatmaps
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["attention", "Grad-CAM", "integrated gradients"]);
    // Integrated gradients come from the 12 M13 members of the 24 (MFCC has no input gradient).
    assert_eq!(heatmaps[2]["explained_by"], serde_json::json!([12, 24]));
    assert!(heatmaps[1].get("explained_by").is_none());
    let filters = std::fs::read_to_string(out.join("filters.csv")).unwrap();
    assert!(filters.lines().count() > 100, "M13 has 128 + 32x128 filter rows");
    assert!(
        !out.join("heart-cycle.json").exists(),
        "speech has no heart cycle"
    );
    for png in [
        "waveform-attention.png",
        "waveform-grad-cam.png",
        "waveform-integrated-gradients.png",
        "spectrogram.png",
        "filters.png",
        "prediction.png",
    ] {
        let img = image::open(out.join(png))
            .unwrap_or_else(|e| panic!("{png}: {e}"))
            .to_rgba8();
        assert!(img.width() >= 400 && img.height() >= 300, "{png}");
        // A real picture: many distinct colours, not a blank frame.
        let mut colours: Vec<[u8; 4]> = img.pixels().step_by(7).map(|p| p.0).collect();
        colours.sort();
        colours.dedup();
        assert!(colours.len() > 50, "{png}: only {} colours", colours.len());
    }
}

#[test]
fn explain_names_a_bad_file_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("empty.wav");
    std::fs::write(&bad, b"").unwrap();
    let result = iconnet()
        .args(["explain", "--model", "digits", "--no-images", "--out"])
        .arg(dir.path().join("out"))
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("empty.wav"), "{stderr}");
}

#[test]
fn explain_renders_an_ensemble_with_its_member_selector() {
    // The filter browser of an ensemble has a member selector; the headless renderer checks
    // that every control is named, so an unnamed one would stop the report.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let file = common::shared_data().join("emotion/03-01-05-01-01-01-02.wav");
    let result = iconnet()
        .args(["explain", "--model", "emotion", "--ig-steps", "2", "--out"])
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let probabilities: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("probabilities.json")).unwrap()).unwrap();
    // 8 M13 and 8 MFCC members.
    assert_eq!(
        probabilities["member_probabilities"].as_array().unwrap().len(),
        16
    );
    assert!(out.join("filters.png").is_file() && out.join("prediction.png").is_file());
}

/// A heart model's report places every heatmap in the heart cycle (`heart-cycle.json`).
#[test]
fn explain_places_each_heatmap_of_a_heart_recording_in_its_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let file = common::shared_data().join("heart/a0013.wav");
    let result = iconnet()
        .args([
            "explain",
            "--model",
            "heart",
            "--ig-steps",
            "2",
            "--no-images",
            "--out",
        ])
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let cycle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("heart-cycle.json")).unwrap()).unwrap();
    assert!(cycle["heart_rate_bpm"].as_f64().unwrap() > 40.0, "{cycle}");
    let heatmaps = cycle["heatmaps"].as_array().unwrap();
    let titles: Vec<&str> = heatmaps.iter().map(|h| h["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(
        titles[0].starts_with("attention") && titles[1].starts_with("Grad-CAM"),
        "{titles:?}"
    );
    // The attention's shares are the ones the top-level summary gives.
    assert_eq!(heatmaps[0]["by_phase"], cycle["attention_by_phase"]);
    for h in heatmaps {
        let total: f64 = h["by_phase"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["weight_share"].as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{h}");
    }
}

/// Live mode's Grad-CAM (the analysis keeps each member's pooling input; only the pooling and
/// head run again) gives what the analysis and a separate Grad-CAM of the predicted class give,
/// on the bundled emotion ensemble and a real sentence.
#[test]
fn grad_cam_from_the_analysis_kept_inputs_matches_a_separate_grad_cam() {
    use burn::tensor::Device;
    use iconnet::explain::{self, attribution};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/emotion.ensemble");
    let inference = iconnet::model::Ensemble::load(&path, &Device::flex()).unwrap();
    let autodiff = attribution::load_for_attribution(&path, &Device::flex()).unwrap();
    let file = common::shared_data().join("emotion/03-01-05-01-01-01-02.wav");
    let (samples, _) = iconnet::audio::load_for_model(&file, 8000, 0).unwrap();
    let (analysis, kept) = explain::analyse_ensemble_keeping(&inference, &samples).unwrap();
    let reference = explain::analyse_ensemble(&inference, &samples).unwrap();
    assert_eq!(analysis.probabilities, reference.probabilities);
    assert_eq!(analysis.attention, reference.attention);
    assert_eq!(kept.len(), 16);
    let map = attribution::grad_cam_from_kept(&autodiff, &kept, analysis.top_class).unwrap();
    let separate = attribution::explain_ensemble(
        &autodiff,
        &samples,
        attribution::HeatmapMethod::GradCam,
        analysis.top_class,
        16,
        |_| {},
    )
    .unwrap();
    assert_eq!(map.class, separate.class);
    assert_eq!(map.values.len(), separate.values.len());
    // The MFCC members' 8 ms frames are averaged on the M13 members' 2 ms ones.
    assert_eq!(map.frame_s, 16.0 / 8000.0);
    assert_eq!(map.values.len(), analysis.attention.len());
    for (a, b) in map.values.iter().zip(&separate.values) {
        assert!((a - b).abs() < 1e-4, "{a} against {b}");
    }
    assert!(attribution::grad_cam_from_kept(&autodiff, &kept[..7], 0).is_err());
}
