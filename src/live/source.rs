//! Where live samples come from: a sound-card input (cpal) or a file played at real-time pace.
//! Both push mono samples into a lock-free ring buffer; the producer side never allocates or
//! locks, and samples that do not fit are counted as dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use rtrb::Producer;

/// Counters shared between a source and the analysis thread.
#[derive(Default, Debug)]
pub struct SourceStats {
    /// Samples the ring buffer had no room for (the analysis fell behind the callback).
    pub dropped: AtomicU64,
    /// Samples delivered.
    pub delivered: AtomicU64,
    /// The source has no more samples (end of file, stopped, or device lost).
    pub finished: AtomicBool,
}

/// Which input to open.
#[derive(Clone, Debug)]
pub enum InputSpec {
    /// A sound-card input by name (None: the default device).
    Device(Option<String>),
    /// A WAV/PhysioNet file played at real-time pace.
    File(PathBuf),
}

/// A running source. Dropping it stops it.
pub struct RunningSource {
    pub rate: u32,
    pub description: String,
    pub stats: Arc<SourceStats>,
    stop: Arc<AtomicBool>,
    _stream: Option<cpal::Stream>,
}

impl Drop for RunningSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Names of the input devices (default first).
pub fn input_devices() -> Vec<String> {
    let host = cpal::default_host();
    let default = host
        .default_input_device()
        .and_then(|d| d.description().ok().map(|d| d.name().to_string()));
    let mut names: Vec<String> = host
        .input_devices()
        .map(|ds| {
            ds.filter_map(|d| d.description().ok().map(|d| d.name().to_string()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(d) = default {
        names.retain(|n| n != &d);
        names.insert(0, d);
    }
    names
}

/// Starts `spec`, pushing mono samples into `producer`. Device errors after the start (e.g. the
/// device was unplugged) arrive on `errors` and mark the source finished.
pub fn start(
    spec: &InputSpec,
    producer: Producer<f32>,
    errors: Sender<String>,
) -> Result<RunningSource, String> {
    match spec {
        InputSpec::File(path) => start_file(path, producer),
        InputSpec::Device(name) => start_device(name.as_deref(), producer, errors),
    }
}

fn start_file(path: &Path, mut producer: Producer<f32>) -> Result<RunningSource, String> {
    let decoded = crate::audio::load(path).map_err(|e| e.to_string())?;
    let rate = decoded.sample_rate;
    let stats = Arc::new(SourceStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (thread_stats, thread_stop) = (stats.clone(), stop.clone());
    let samples = decoded.samples;
    std::thread::Builder::new()
        .name("iconnet-file-source".into())
        .spawn(move || {
            // Deliver what the clock says is due (checked every ~2 ms), not a fixed count per
            // sleep, which would drift.
            let start = Instant::now();
            let mut sent = 0usize;
            while sent < samples.len() && !thread_stop.load(Ordering::SeqCst) {
                let due = ((start.elapsed().as_secs_f64() * rate as f64) as usize).min(samples.len());
                if due <= sent {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                for &s in &samples[sent..due] {
                    if producer.push(s).is_err() {
                        thread_stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                thread_stats
                    .delivered
                    .fetch_add((due - sent) as u64, Ordering::Relaxed);
                sent = due;
            }
            thread_stats.finished.store(true, Ordering::SeqCst);
        })
        .map_err(|e| e.to_string())?;
    Ok(RunningSource {
        rate,
        description: format!("file {} (real-time pace)", path.display()),
        stats,
        stop,
        _stream: None,
    })
}

fn start_device(
    name: Option<&str>,
    producer: Producer<f32>,
    errors: Sender<String>,
) -> Result<RunningSource, String> {
    let host = cpal::default_host();
    let device = match name {
        None => host
            .default_input_device()
            .ok_or("no input device (microphone) found")?,
        Some(n) => host
            .input_devices()
            .map_err(|e| format!("cannot list input devices: {e}"))?
            .find(|d| d.description().ok().is_some_and(|d| d.name() == n))
            .ok_or_else(|| format!("input device '{n}' not found"))?,
    };
    let label = device
        .description()
        .map(|d| d.name().to_string())
        .unwrap_or_else(|_| "input".into());
    let config = device
        .default_input_config()
        .map_err(|e| format!("{label}: no usable input (missing device or permission denied): {e}"))?;
    let format = config.sample_format();
    let config: cpal::StreamConfig = config.into();
    let rate = config.sample_rate;
    let channels = config.channels.max(1) as usize;
    let stats = Arc::new(SourceStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let err_stats = stats.clone();
    let on_error = move |e: cpal::Error| {
        err_stats.finished.store(true, Ordering::SeqCst);
        let _ = errors.send(format!("input device error: {e}"));
    };
    let stream = match format {
        cpal::SampleFormat::F32 => build(
            &device,
            config,
            channels,
            producer,
            stats.clone(),
            on_error,
            |v: f32| v,
        ),
        cpal::SampleFormat::I16 => build(
            &device,
            config,
            channels,
            producer,
            stats.clone(),
            on_error,
            |v: i16| v as f32 / 32768.0,
        ),
        cpal::SampleFormat::I32 => build(
            &device,
            config,
            channels,
            producer,
            stats.clone(),
            on_error,
            |v: i32| v as f32 / 2147483648.0,
        ),
        cpal::SampleFormat::U16 => build(
            &device,
            config,
            channels,
            producer,
            stats.clone(),
            on_error,
            |v: u16| (v as f32 - 32768.0) / 32768.0,
        ),
        other => return Err(format!("{label}: unsupported input sample format {other:?}")),
    }?;
    stream
        .play()
        .map_err(|e| format!("{label}: cannot start capture: {e}"))?;
    Ok(RunningSource {
        rate,
        description: format!("{label} ({rate} Hz, {channels} ch)"),
        stats,
        stop,
        _stream: Some(stream),
    })
}

/// An input stream whose callback mixes each frame to mono and pushes it: no allocation, no lock.
fn build<T: cpal::SizedSample + Send + 'static>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    channels: usize,
    mut producer: Producer<f32>,
    stats: Arc<SourceStats>,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
    to_f32: impl Fn(T) -> f32 + Send + 'static,
) -> Result<cpal::Stream, String> {
    device
        .build_input_stream(
            config,
            move |data: &[T], _: &cpal::InputCallbackInfo| {
                let mut pushed = 0u64;
                for frame in data.chunks(channels) {
                    let mono = frame.iter().map(|&v| to_f32(v)).sum::<f32>() / channels as f32;
                    // A misbehaving driver must not poison the analysis (FFTs) or the recording.
                    let mono = if mono.is_finite() { mono } else { 0.0 };
                    if producer.push(mono).is_err() {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    } else {
                        pushed += 1;
                    }
                }
                stats.delivered.fetch_add(pushed, Ordering::Relaxed);
            },
            on_error,
            None,
        )
        .map_err(|e| format!("cannot open the input stream: {e}"))
}
