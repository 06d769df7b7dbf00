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
    let filters = std::fs::read_to_string(out.join("filters.csv")).unwrap();
    assert!(filters.lines().count() > 100, "M13 has 128 + 32x128 filter rows");
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
    assert_eq!(probabilities["member_probabilities"].as_array().unwrap().len(), 8);
    assert!(out.join("filters.png").is_file() && out.join("prediction.png").is_file());
}
