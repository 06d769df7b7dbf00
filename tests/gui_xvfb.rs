//! Starts the real binary in a virtual X server (Xvfb), lets it open the bundled model and
//! recording, and checks the screenshot it saves of its own window.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_app_starts_under_xvfb_and_draws_the_analysis() {
    let display = format!(":{}", 90 + std::process::id() % 100);
    let mut xvfb = Command::new("Xvfb")
        .args([
            display.as_str(),
            "-screen",
            "0",
            "1600x1000x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb is installed by scripts/install-deps.sh");
    std::thread::sleep(Duration::from_millis(800));
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("screenshot.png");
    let runtime = dir.path().join("xdg");
    std::fs::create_dir(&runtime).unwrap();
    let mut app = Command::new(env!("CARGO_BIN_EXE_iconnet"))
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_CONFIG_HOME", dir.path())
        .env("ICONNET_SCREENSHOT", &shot)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = app.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = app.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    let output = app.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.is_some_and(|s| s.success()),
        "app did not finish: {status:?}\n{stderr}"
    );
    let img = image::open(&shot)
        .unwrap_or_else(|e| panic!("{}: {e}\n{stderr}", shot.display()))
        .to_rgba8();
    assert!(img.width() >= 900 && img.height() >= 600);
    let mut colours: Vec<[u8; 4]> = img.pixels().step_by(5).map(|p| p.0).collect();
    colours.sort();
    colours.dedup();
    assert!(
        colours.len() > 200,
        "only {} colours: nothing drawn?",
        colours.len()
    );
    if let Ok(keep) = std::env::var("ICONNET_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
