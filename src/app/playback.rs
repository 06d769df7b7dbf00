//! Listening: plays a signal on the default output device with cpal, reporting the position for
//! the moving cursor. Without an output device the controls say so and stay disabled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

/// Whether sound output can work here.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Probing,
    Available(String),
    Unavailable(String),
}

/// What is being played.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Recording,
    Filtered(usize),
}

pub struct Player {
    pub output: Output,
    probe: Option<Receiver<Output>>,
    stream: Option<cpal::Stream>,
    /// Source samples consumed, in 1/65536 sample units.
    position: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
    source_rate: f64,
    start_s: f64,
    pub playing: Option<Source>,
}

impl Default for Player {
    fn default() -> Self {
        Self::new()
    }
}

impl Player {
    /// Starts probing the default output device in the background.
    pub fn new() -> Self {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let _ = tx.send(probe());
        });
        Self::idle(Output::Probing, Some(rx))
    }

    /// A player that never touches the sound system (headless rendering, tests).
    pub fn disabled(reason: &str) -> Self {
        Self::idle(Output::Unavailable(reason.into()), None)
    }

    fn idle(output: Output, probe: Option<Receiver<Output>>) -> Self {
        Self {
            output,
            probe,
            stream: None,
            position: Arc::new(AtomicU64::new(0)),
            finished: Arc::new(AtomicBool::new(false)),
            source_rate: 1.0,
            start_s: 0.0,
            playing: None,
        }
    }

    /// Picks up the probe result and notices the end of playback.
    pub fn poll(&mut self) {
        if let Some(rx) = &self.probe
            && let Ok(o) = rx.try_recv()
        {
            self.output = o;
            self.probe = None;
        }
        if self.playing.is_some() && self.finished.load(Ordering::Relaxed) {
            self.stop();
        }
    }

    pub fn available(&self) -> bool {
        matches!(self.output, Output::Available(_))
    }

    /// Current position in seconds of the source, while playing.
    pub fn position_s(&self) -> Option<f64> {
        self.playing.as_ref()?;
        let consumed = self.position.load(Ordering::Relaxed) as f64 / 65536.0;
        Some(self.start_s + consumed / self.source_rate)
    }

    /// Plays `samples` (at `rate` Hz) from `start_s`.
    pub fn play(
        &mut self,
        samples: Arc<Vec<f32>>,
        rate: u32,
        start_s: f64,
        what: Source,
    ) -> Result<(), String> {
        self.stop();
        let host = cpal::default_host();
        let device = host.default_output_device().ok_or("no sound output device")?;
        let config = device
            .default_output_config()
            .map_err(|e| format!("sound output unavailable: {e}"))?;
        let format = config.sample_format();
        let config: cpal::StreamConfig = config.into();
        let channels = config.channels.max(1) as usize;
        let step = rate as f64 / config.sample_rate as f64;
        let first = ((start_s * rate as f64) as usize).min(samples.len());
        // Peak-normalise so quiet recordings and narrow filters are audible without clipping.
        let peak = samples.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-9);
        let gain = 0.8 / peak;
        self.position.store(0, Ordering::Relaxed);
        self.finished.store(false, Ordering::Relaxed);
        let (position, finished) = (self.position.clone(), self.finished.clone());
        let mut pos = first as f64;
        let mut next = move || -> f32 {
            let i = pos as usize;
            if i + 1 >= samples.len() {
                finished.store(true, Ordering::Relaxed);
                return 0.0;
            }
            let frac = (pos - i as f64) as f32;
            let v = samples[i] * (1.0 - frac) + samples[i + 1] * frac;
            pos += step;
            position.store(((pos - first as f64) * 65536.0) as u64, Ordering::Relaxed);
            v * gain
        };
        let err = |e: cpal::Error| eprintln!("playback: {e}");
        let stream = match format {
            cpal::SampleFormat::F32 => device.build_output_stream(
                config,
                move |out: &mut [f32], _: &cpal::OutputCallbackInfo| {
                    for frame in out.chunks_mut(channels) {
                        frame.fill(next());
                    }
                },
                err,
                None,
            ),
            cpal::SampleFormat::I16 => device.build_output_stream(
                config,
                move |out: &mut [i16], _: &cpal::OutputCallbackInfo| {
                    for frame in out.chunks_mut(channels) {
                        frame.fill((next().clamp(-1.0, 1.0) * i16::MAX as f32) as i16);
                    }
                },
                err,
                None,
            ),
            other => return Err(format!("unsupported output sample format {other:?}")),
        }
        .map_err(|e| format!("cannot open sound output: {e}"))?;
        stream.play().map_err(|e| format!("cannot start playback: {e}"))?;
        self.stream = Some(stream);
        self.source_rate = rate as f64;
        self.start_s = first as f64 / rate as f64;
        self.playing = Some(what);
        Ok(())
    }

    pub fn stop(&mut self) {
        self.stream = None;
        self.playing = None;
    }
}

fn probe() -> Output {
    let host = cpal::default_host();
    let Some(device) = host.default_output_device() else {
        return Output::Unavailable("no sound output device".into());
    };
    match device.default_output_config() {
        Ok(config) => Output::Available(format!("{} Hz, {} ch", config.sample_rate(), config.channels())),
        Err(e) => Output::Unavailable(format!("no sound output: {e}")),
    }
}
