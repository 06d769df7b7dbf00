//! The live pipeline driven by the file-backed source: results appear while the file plays,
//! latency stays bounded, nothing is dropped, the recording equals the input, a killed session
//! leaves a loadable recording, and faults are reported without a panic.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use burn::tensor::Device;
use iconnet::live::{InputSpec, LiveConfig, LiveEvent, LiveSession, LiveSummary};
use iconnet::model::Ensemble;

/// One member of the bundled digits ensemble: live mode's timing tests need one model's speed.
fn model_path() -> PathBuf {
    common::digits_member()
}

fn model() -> Ensemble {
    Ensemble::load(&model_path(), &Device::flex()).unwrap()
}

fn speech_file() -> PathBuf {
    common::shared_data().join("emotion/03-01-05-01-01-01-02.wav")
}

/// Runs a session to its end; returns latencies (ms), errors and the summary.
fn run(input: InputSpec, config: LiveConfig) -> (Vec<f64>, Vec<String>, LiveSummary) {
    let session = LiveSession::start(model(), None, input, config, || {});
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    loop {
        match session
            .events
            .recv_timeout(Duration::from_secs(60))
            .expect("live events")
        {
            LiveEvent::Started { .. } => {}
            LiveEvent::Frame(f) => {
                assert!((f.analysis.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-3);
                latencies.push(f.latency_ms);
            }
            LiveEvent::Error(e) => errors.push(e),
            LiveEvent::Stopped(s) => return (latencies, errors, s),
        }
    }
}

#[test]
fn a_file_played_in_real_time_gives_results_and_an_identical_recording() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.wav");
    let config = LiveConfig {
        window_s: 3.0,
        hop_s: 0.25,
        smoothing: 0.6,
        record: Some(out.clone()),
        quiet_below_dbfs: -50.0,
        quiet_above_floor_db: Some(12.0),
        grad_cam: false,
    };
    let (latencies, errors, summary) = run(InputSpec::File(speech_file()), config);
    assert!(errors.is_empty(), "{errors:?}");
    // 3.67 s at 250 ms hops: about 14 analyses.
    assert!(latencies.len() >= 10, "{} frames", latencies.len());
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(median < 1000.0, "median latency {median} ms");
    assert_eq!(
        summary.dropped, 0,
        "the analysis must never make the source drop samples"
    );
    let input = iconnet::audio::load(&speech_file()).unwrap();
    let recorded = iconnet::audio::load(&out).unwrap();
    assert_eq!(recorded.sample_rate, input.sample_rate);
    assert_eq!(
        recorded.samples, input.samples,
        "recording differs from the input"
    );
    assert_eq!(summary.samples as usize, input.samples.len());
}

#[test]
fn a_missing_device_or_unwritable_recording_is_reported_not_panicked() {
    let (_, errors, summary) = run(
        InputSpec::Device(Some("no such microphone".into())),
        LiveConfig::for_rate(8000),
    );
    assert!(
        errors.iter().any(|e| e.contains("no such microphone")),
        "{errors:?}"
    );
    assert_eq!(summary.frames, 0);
    let config = LiveConfig {
        record: Some(PathBuf::from("/nonexistent-dir/x.wav")),
        ..LiveConfig::for_rate(8000)
    };
    let (_, errors, _) = run(InputSpec::File(speech_file()), config);
    assert!(
        errors.iter().any(|e| e.contains("/nonexistent-dir/x.wav")),
        "{errors:?}"
    );
    let (_, errors, _) = run(
        InputSpec::File(PathBuf::from("/nonexistent.wav")),
        LiveConfig::for_rate(8000),
    );
    assert!(
        errors.iter().any(|e| e.contains("/nonexistent.wav")),
        "{errors:?}"
    );
}

#[test]
fn a_killed_live_session_leaves_a_loadable_recording() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed.wav");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iconnet"))
        .args(["live", "--headless", "--model", "digits", "--input-file"])
        .arg(speech_file())
        .arg("--record")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for a few analyses (each follows a flush of the recording), then kill -9.
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for _ in 0..6 {
        lines.next().expect("a result line").unwrap();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let input = iconnet::audio::load(&speech_file()).unwrap();
    let recorded = iconnet::audio::load(&out).expect("the killed session's recording must load");
    let n = recorded.samples.len();
    assert!(n >= input.sample_rate as usize, "only {n} samples survived");
    assert!(n < input.samples.len(), "killed before the end");
    assert_eq!(recorded.samples[..], input.samples[..n]);
}

/// Speech, then four seconds of digital silence: once the window holds no sound it is quiet,
/// and the probabilities on screen stay those of the last window with sound. With an explainer
/// every window comes with Grad-CAM of the class shown.
#[test]
fn quiet_input_holds_the_last_prediction_with_sound() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("speech-then-silence.wav");
    let speech = iconnet::audio::load(&speech_file()).unwrap();
    let mut samples = speech.samples.clone();
    samples.extend(std::iter::repeat_n(0.0, 4 * speech.sample_rate as usize));
    common::write_wav16(&input, &samples, speech.sample_rate);
    let explainer =
        iconnet::explain::attribution::load_for_attribution(&model_path(), &Device::flex()).unwrap();
    let frames = frames_of(LiveSession::start(
        model(),
        Some(explainer),
        InputSpec::File(input),
        LiveConfig::for_rate(8000),
        || {},
    ));
    for f in &frames {
        let map = f.grad_cam.as_ref().expect("Grad-CAM with an explainer");
        assert_eq!(
            map.class.as_deref(),
            Some(f.analysis.classes[f.analysis.top_class].as_str())
        );
        assert_eq!(map.values.len(), f.analysis.attention.len());
    }
    let heard: Vec<usize> = (0..frames.len()).filter(|&i| !frames[i].quiet).collect();
    let last_heard = *heard.last().expect("windows with speech");
    // The sentence peaks near -25 dBFS; RAVDESS's room tone after it is near -90.
    assert!(heard.iter().any(|&i| frames[i].level_dbfs > -30.0));
    let held = &frames[last_heard + 1..];
    // 4 s of silence against a 3 s window at 0.25 s hops: about four windows of silence only.
    assert!(held.len() >= 2, "{} quiet frames at the end", held.len());
    for f in held {
        assert!(f.quiet && f.held);
        assert!(f.level_dbfs < -50.0);
        assert_eq!(
            f.analysis.probabilities,
            frames[last_heard].analysis.probabilities
        );
        assert_eq!(f.raw_probabilities, frames[last_heard].raw_probabilities);
    }
}

/// Collects a session's frames to its end.
fn frames_of(session: LiveSession) -> Vec<std::sync::Arc<iconnet::live::LiveFrame>> {
    let mut frames = Vec::new();
    loop {
        match session
            .events
            .recv_timeout(Duration::from_secs(60))
            .expect("live events")
        {
            LiveEvent::Frame(f) => frames.push(f),
            LiveEvent::Error(e) => panic!("{e}"),
            LiveEvent::Stopped(_) => return frames,
            LiveEvent::Started { .. } => {}
        }
    }
}

/// In a noisy room the level never falls below the absolute threshold: the sentence with
/// white noise at -45 dBFS under it, then 4 s of that noise alone. Windows of noise alone are
/// quiet by their distance from the room's noise floor, and hold the last prediction; with the
/// margin turned off they are not.
#[test]
fn a_noisy_room_counts_as_quiet_by_its_noise_floor() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("speech-in-noise.wav");
    let speech = iconnet::audio::load(&speech_file()).unwrap();
    let rate = speech.sample_rate;
    let mut samples = speech.samples.clone();
    samples.extend(std::iter::repeat_n(0.0, 4 * rate as usize));
    // Uniform noise of RMS a / sqrt(3) = 10^(-45/20).
    let a = 10f32.powf(-45.0 / 20.0) * 3f32.sqrt();
    let mut seed = 12345u32;
    for v in &mut samples {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *v += a * ((seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0);
    }
    common::write_wav16(&input, &samples, rate);
    let speech_s = speech.samples.len() as f64 / rate as f64;
    let config = LiveConfig::for_rate(8000);
    assert_eq!(config.quiet_above_floor_db, Some(12.0));
    let noise_only = |f: &iconnet::live::LiveFrame| f.end_s - config.window_s >= speech_s;

    let frames = frames_of(LiveSession::start(
        model(),
        None,
        InputSpec::File(input.clone()),
        config.clone(),
        || {},
    ));
    let last_heard = frames
        .iter()
        .rposition(|f| !f.quiet)
        .expect("windows with speech");
    assert!(!noise_only(&frames[last_heard]));
    let tail: Vec<_> = frames.iter().filter(|f| noise_only(f)).collect();
    assert!(tail.len() >= 2, "{} windows of noise alone", tail.len());
    for f in &tail {
        // Above the absolute threshold, within 12 dB of the floor.
        assert!(f.level_dbfs > -50.0 && f.level_dbfs < -40.0, "{}", f.level_dbfs);
        assert!((f.noise_floor_dbfs + 45.0).abs() < 3.0, "{}", f.noise_floor_dbfs);
        assert!(f.quiet && f.held);
        assert_eq!(
            f.analysis.probabilities,
            frames[last_heard].analysis.probabilities
        );
    }

    let off = LiveConfig {
        quiet_above_floor_db: None,
        ..config.clone()
    };
    let frames = frames_of(LiveSession::start(
        model(),
        None,
        InputSpec::File(input),
        off,
        || {},
    ));
    let tail: Vec<_> = frames.iter().filter(|f| noise_only(f)).collect();
    assert!(tail.len() >= 2);
    assert!(
        tail.iter().all(|f| !f.quiet),
        "without the margin, noise is sound"
    );
}
