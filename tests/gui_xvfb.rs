//! Starts the real binary in a virtual X server (Xvfb): the app opens the bundled model and
//! recording and saves a screenshot of its own window; the live window plays a file to the end,
//! records it and closes.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A private Xvfb display for one test; killed on drop.
struct Xvfb {
    display: String,
    child: Child,
}

impl Xvfb {
    fn start(n: u32) -> Self {
        let display = format!(":{}", 100 + (std::process::id() % 400) * 2 + n);
        let child = Command::new("Xvfb")
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
        Self { display, child }
    }

    /// Runs `iconnet args` on this display with a private runtime/config dir, up to 120 s.
    fn run(&self, dir: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Output {
        let runtime = dir.join("xdg");
        let _ = std::fs::create_dir(&runtime);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iconnet"));
        cmd.args(args)
            .env("DISPLAY", &self.display)
            .env_remove("WAYLAND_DISPLAY")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_CONFIG_HOME", dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut app = cmd.spawn().unwrap();
        let start = Instant::now();
        while app.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(120) {
                let _ = app.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        app.wait_with_output().unwrap()
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_app_starts_under_xvfb_and_draws_the_analysis() {
    let x = Xvfb::start(0);
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("screenshot.png");
    let out = x.run(dir.path(), &[], &[("ICONNET_SCREENSHOT", &shot)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "app failed: {:?}\n{stderr}", out.status);
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

#[test]
fn the_live_window_plays_a_file_records_it_and_closes() {
    let x = Xvfb::start(1);
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("live.wav");
    let input = common::shared_data().join("emotion/03-01-03-01-01-01-04.wav");
    let args = [
        "live",
        "--model",
        "digits",
        "--exit-at-end",
        "--input-file",
        input.to_str().unwrap(),
        "--record",
        rec.to_str().unwrap(),
    ];
    let out = x.run(dir.path(), &args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "live window failed: {:?}\n{stderr}",
        out.status
    );
    let original = iconnet::audio::load(&input).unwrap();
    let recorded = iconnet::audio::load(&rec).unwrap();
    assert_eq!(recorded.samples, original.samples);
}
