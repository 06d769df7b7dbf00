//! Live mode: samples from an input source flow through a lock-free ring buffer to an analysis
//! thread that records them crash-safely and, every hop, runs the model on the latest window.
//! When inference falls behind, stale windows are skipped rather than queued.

pub mod level;
pub mod recorder;
pub mod source;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::explain::attribution::{self, Heatmap};
use crate::explain::{self, Analysis};
use crate::model::Ensemble;
use level::NoiseFloor;
pub use level::loudest_dbfs;
use recorder::WavRecorder;
pub use source::InputSpec;

/// How the live analysis runs.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Seconds of audio the model sees each time.
    pub window_s: f64,
    /// Seconds between analyses.
    pub hop_s: f64,
    /// Exponential smoothing of the probabilities (0 = off; 0.6 keeps 60 % of the previous).
    pub smoothing: f32,
    /// Write the raw input here as it arrives.
    pub record: Option<PathBuf>,
    /// A window whose loudest 50 ms stays below this level (dB re full scale) is quiet: the
    /// model still runs, but the probabilities shown stay those of the last window with sound.
    /// Normalisation would otherwise blow room noise up to the level of speech and the bars
    /// would follow the noise.
    pub quiet_below_dbfs: f32,
    /// With `Some(margin)`, a window whose loudest 50 ms is less than `margin` dB above the
    /// room's noise floor (the quietest 50 ms of the last 10 s) is quiet too: in a noisy room
    /// the level never falls below `quiet_below_dbfs`, and the bars would follow the fan.
    pub quiet_above_floor_db: Option<f32>,
    /// Explain each window with Grad-CAM of the class shown (from the analysis's kept pooling
    /// input: only the pooling and head run again); otherwise the heatmap is the pooling
    /// weights. [`LiveSession::start_from_file`] loads the explainer when this is set;
    /// [`LiveSession::start`] takes it as an argument.
    pub grad_cam: bool,
}

/// Whether a model at `model_rate` listens to speech: heart-sound models run at 4 kHz or less.
fn is_speech_rate(model_rate: u32) -> bool {
    model_rate > 4000
}

impl LiveConfig {
    /// Defaults by task: 3 s windows for speech, 6 s for heart sounds; 250 ms hops.
    pub fn for_rate(model_rate: u32) -> Self {
        let speech = is_speech_rate(model_rate);
        Self {
            window_s: if speech { 3.0 } else { 6.0 },
            hop_s: 0.25,
            smoothing: 0.6,
            record: None,
            quiet_below_dbfs: -50.0,
            // Between words speech falls 20-40 dB below its peaks. A heart recording's diastole
            // can sit within 12 dB of S1 in a noisy room, and that window is not quiet.
            quiet_above_floor_db: speech.then_some(12.0),
            grad_cam: false,
        }
    }

    /// [`Self::for_rate`] for `model`, with a speech model's window cut to its training crops
    /// when they were shorter (at least 1 s): a digit model learned from 1 s crops, and a 3 s
    /// window would hold several words and cost three times the compute (the 24-member digits
    /// ensemble took up to 206 ms per 3 s window on 2 cores, over the 150 ms budget; 93 ms at
    /// most per 1 s window).
    pub fn for_model(model: &Ensemble) -> Self {
        let rate = model.config().sample_rate;
        let mut config = Self::for_rate(rate);
        let longest_crop = model
            .members
            .iter()
            .filter_map(|m| m.card.training_crop_seconds())
            .reduce(f64::max);
        if let Some(crop) = longest_crop.filter(|_| is_speech_rate(rate)) {
            config.window_s = crop.clamp(1.0, config.window_s);
        }
        config
    }
}

/// One analysis of the latest window.
#[derive(Clone, Debug)]
pub struct LiveFrame {
    /// The model's view of the window (probabilities smoothed if enabled).
    pub analysis: Analysis,
    /// Unsmoothed probabilities (held, like `analysis.probabilities`, while the input is quiet).
    pub raw_probabilities: Vec<f32>,
    /// The window at the model's rate, normalised.
    pub window: Vec<f32>,
    /// Stream time of the window's last sample, seconds since the start.
    pub end_s: f64,
    /// From the newest sample leaving the ring buffer to this result, ms.
    pub latency_ms: f64,
    /// Inference time divided by the hop: < 1 keeps up with real time.
    pub real_time_factor: f64,
    /// Windows skipped so far because inference fell behind.
    pub skipped_windows: u64,
    /// RMS of the window's loudest 50 ms before normalisation, dB re full scale (floor −120).
    pub level_dbfs: f32,
    /// The room's noise floor when this window was analysed (see `LiveConfig::quiet_above_floor_db`),
    /// dB re full scale.
    pub noise_floor_dbfs: f32,
    /// The window was quiet: below `LiveConfig::quiet_below_dbfs`, or too close to the noise
    /// floor.
    pub quiet: bool,
    /// Quiet, and `analysis.probabilities` are held from the last window with sound (false when
    /// no window has had sound yet: then they are this window's own).
    pub held: bool,
    /// Grad-CAM of the class shown (`analysis.top_class`, after smoothing and holding), with
    /// an explainer.
    pub grad_cam: Option<Heatmap>,
}

/// What the live session reports.
#[derive(Debug)]
pub enum LiveEvent {
    Started {
        description: String,
        rate: u32,
    },
    Frame(Arc<LiveFrame>),
    /// A fault (device lost, disk full); the session stops after it, keeping the recording.
    Error(String),
    Stopped(LiveSummary),
}

/// The end of a session.
#[derive(Clone, Debug, Default)]
pub struct LiveSummary {
    pub recording: Option<PathBuf>,
    pub samples: u64,
    pub dropped: u64,
    pub frames: u64,
    pub skipped_windows: u64,
    pub source_rate: u32,
}

/// A running live session; dropping it stops it.
pub struct LiveSession {
    pub events: Receiver<LiveEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LiveSession {
    /// Starts capturing from `input` and analysing with `model` (on a CPU/GPU device).
    /// `explainer`, the same ensemble on an autodiff device
    /// (`attribution::load_for_attribution`), adds Grad-CAM to every window. `notify` is called
    /// after every event.
    pub fn start(
        model: Ensemble,
        explainer: Option<Ensemble>,
        input: InputSpec,
        config: LiveConfig,
        notify: impl Fn() + Send + 'static,
    ) -> Self {
        Self::start_with(move || Ok((model, explainer)), input, config, notify)
    }

    /// Like [`Self::start`], loading the checkpoint or ensemble at `path` onto `device` on the
    /// session's own thread (the caller never waits for it).
    pub fn start_from_file(
        path: PathBuf,
        device: burn::tensor::Device,
        input: InputSpec,
        config: LiveConfig,
        notify: impl Fn() + Send + 'static,
    ) -> Self {
        let grad_cam = config.grad_cam;
        let load = move || {
            let explainer = match grad_cam {
                true => Some(attribution::load_for_attribution(&path, &device)?),
                false => None,
            };
            Ok((Ensemble::load(&path, &device)?, explainer))
        };
        Self::start_with(load, input, config, notify)
    }

    fn start_with(
        model: impl FnOnce() -> Result<(Ensemble, Option<Ensemble>), String> + Send + 'static,
        input: InputSpec,
        config: LiveConfig,
        notify: impl Fn() + Send + 'static,
    ) -> Self {
        let (tx, events) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("iconnet-live".into())
            .spawn(move || {
                let send = |e: LiveEvent| {
                    let _ = tx.send(e);
                    notify();
                };
                match model() {
                    Ok((model, explainer)) => {
                        // A bug in the analysis must end the session with a message, not silently:
                        // the recording has been flushed up to the last hop either way.
                        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            run(&model, explainer.as_ref(), &input, &config, &thread_stop, &send)
                        }));
                        if let Err(panic) = outcome {
                            let what = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "unknown panic".into());
                            send(LiveEvent::Error(format!("live analysis failed: {what}")));
                            send(LiveEvent::Stopped(LiveSummary::default()));
                        }
                    }
                    Err(e) => {
                        send(LiveEvent::Error(e));
                        send(LiveEvent::Stopped(LiveSummary::default()));
                    }
                }
            })
            .expect("spawn live thread");
        Self {
            events,
            stop,
            thread: Some(thread),
        }
    }

    /// Asks the session to stop; it finalises the recording and sends `Stopped`.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    model: &Ensemble,
    explainer: Option<&Ensemble>,
    input: &InputSpec,
    config: &LiveConfig,
    stop: &AtomicBool,
    send: &dyn Fn(LiveEvent),
) {
    let mut summary = LiveSummary::default();
    // The first analysis computes every member's kernels and their spectra (about 60 ms more
    // than later ones for the bundled emotion ensemble): done on silence before capture starts,
    // it stays off the first window's latency.
    // It goes through `analyse_window` like every later window, with throwaway smoothing state.
    let model_rate = model.config().sample_rate;
    let warm_up = vec![0f32; (config.window_s * model_rate as f64) as usize];
    let _ = analyse_window(
        model,
        explainer,
        &warm_up,
        model_rate,
        config,
        &mut WindowState::new(config),
    );
    let (producer, mut consumer) = rtrb::RingBuffer::<f32>::new(1 << 20);
    let (err_tx, err_rx): (Sender<String>, Receiver<String>) = channel();
    let source = match source::start(input, producer, err_tx) {
        Ok(s) => s,
        Err(e) => {
            send(LiveEvent::Error(e));
            send(LiveEvent::Stopped(summary));
            return;
        }
    };
    let rate = source.rate;
    summary.source_rate = rate;
    send(LiveEvent::Started {
        description: source.description.clone(),
        rate,
    });
    let mut recorder = match &config.record {
        Some(path) => match WavRecorder::create(path, rate) {
            Ok(r) => Some(r),
            Err(e) => {
                send(LiveEvent::Error(e));
                send(LiveEvent::Stopped(summary));
                return;
            }
        },
        None => None,
    };
    let window = ((config.window_s * rate as f64) as usize).max(1);
    let hop = ((config.hop_s * rate as f64) as usize).max(1);
    let min_samples =
        ((model.min_samples() as f64 * rate as f64 / model_rate as f64) as usize).max(rate as usize / 4);
    let mut history: Vec<f32> = Vec::with_capacity(2 * window);
    let mut chunk = vec![0f32; 1 << 16];
    let mut since_hop = 0usize;
    let mut total = 0u64;
    let mut state = WindowState::new(config);
    let mut fault = None;
    loop {
        // Drain what has arrived.
        let available = consumer.slots();
        let mut newest_arrival = None;
        if available > 0 {
            let n = available.min(chunk.len());
            if let Ok(read) = consumer.read_chunk(n) {
                let (a, b) = read.as_slices();
                chunk[..a.len()].copy_from_slice(a);
                chunk[a.len()..a.len() + b.len()].copy_from_slice(b);
                read.commit_all();
            }
            newest_arrival = Some(Instant::now());
            let got = &chunk[..n];
            if let Some(r) = &mut recorder
                && let Err(e) = r.write(got)
            {
                fault = Some(e);
            }
            history.extend_from_slice(got);
            if history.len() > 2 * window {
                history.drain(..history.len() - window);
            }
            total += n as u64;
            since_hop += n;
        }
        if let Ok(e) = err_rx.try_recv() {
            fault = Some(e);
        }
        if since_hop >= hop && history.len() >= min_samples {
            // Only the newest window matters: hops that piled up while we were busy are skipped.
            summary.skipped_windows += (since_hop / hop - 1) as u64;
            since_hop = 0;
            let started = newest_arrival.unwrap_or_else(Instant::now);
            let start = history.len().saturating_sub(window);
            let frame = analyse_window(model, explainer, &history[start..], rate, config, &mut state);
            if let Ok(mut frame) = frame {
                let compute = started.elapsed();
                frame.end_s = total as f64 / rate as f64;
                frame.latency_ms = compute.as_secs_f64() * 1000.0;
                frame.real_time_factor = compute.as_secs_f64() / config.hop_s;
                frame.skipped_windows = summary.skipped_windows;
                summary.frames += 1;
                send(LiveEvent::Frame(Arc::new(frame)));
            }
            if let Some(r) = &mut recorder
                && let Err(e) = r.flush()
            {
                fault = Some(e);
            }
        }
        if fault.is_some() {
            break;
        }
        let finished = source.stats.finished.load(Ordering::SeqCst) && consumer.slots() == 0;
        if stop.load(Ordering::SeqCst) || finished {
            break;
        }
        if consumer.slots() == 0 {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    let stats = source.stats.clone();
    drop(source);
    // Whatever is still in the ring belongs to the recording.
    let rest = consumer.slots();
    if rest > 0
        && let Ok(read) = consumer.read_chunk(rest)
    {
        let (a, b) = read.as_slices();
        if let Some(r) = &mut recorder {
            let _ = r.write(a).and_then(|_| r.write(b));
        }
        total += rest as u64;
        read.commit_all();
    }
    if let Some(e) = fault {
        send(LiveEvent::Error(e));
    }
    summary.samples = total;
    summary.dropped = stats.dropped.load(Ordering::SeqCst);
    summary.recording = recorder.and_then(|r| match r.finish() {
        Ok(p) => Some(p),
        Err(e) => {
            send(LiveEvent::Error(e));
            None
        }
    });
    send(LiveEvent::Stopped(summary));
}

/// What one window's analysis leaves for the next.
struct WindowState {
    /// The probabilities shown, exponentially smoothed.
    smoothed: Option<Vec<f32>>,
    /// The (shown, raw) probabilities of the last window with sound.
    last_heard: Option<(Vec<f32>, Vec<f32>)>,
    noise_floor: NoiseFloor,
}

impl WindowState {
    fn new(config: &LiveConfig) -> Self {
        Self {
            smoothed: None,
            last_heard: None,
            noise_floor: NoiseFloor::over_seconds(10.0, config.hop_s),
        }
    }
}

fn analyse_window(
    model: &Ensemble,
    explainer: Option<&Ensemble>,
    window: &[f32],
    rate: u32,
    config: &LiveConfig,
    state: &mut WindowState,
) -> Result<LiveFrame, String> {
    let level_dbfs = loudest_dbfs(window, rate);
    let noise_floor_dbfs = state.noise_floor.update(window, rate);
    let quiet = level_dbfs < config.quiet_below_dbfs
        || config
            .quiet_above_floor_db
            .is_some_and(|margin| level_dbfs < noise_floor_dbfs + margin);
    let WindowState {
        smoothed, last_heard, ..
    } = state;
    let mut samples = crate::audio::resample::resample(window, rate, model.config().sample_rate)?;
    crate::audio::normalize(&mut samples);
    // What the pooling read is kept only when something will explain it.
    let (mut analysis, kept) = match explainer {
        Some(_) => explain::analyse_ensemble_keeping(model, &samples).map(|(a, kept)| (a, Some(kept)))?,
        None => (explain::analyse_ensemble(model, &samples)?, None),
    };
    let raw = analysis.probabilities.clone();
    if quiet {
        if let Some((shown, _)) = last_heard {
            analysis.top_class = explain::argmax(shown);
            analysis.probabilities = shown.clone();
        }
    } else if config.smoothing > 0.0 {
        let a = config.smoothing.clamp(0.0, 0.99);
        let next: Vec<f32> = match smoothed.as_ref() {
            Some(prev) if prev.len() == raw.len() => prev
                .iter()
                .zip(&raw)
                .map(|(p, r)| a * p + (1.0 - a) * r)
                .collect(),
            _ => raw.clone(),
        };
        analysis.top_class = explain::argmax(&next);
        analysis.probabilities = next.clone();
        *smoothed = Some(next);
    }
    if !quiet {
        *last_heard = Some((analysis.probabilities.clone(), raw.clone()));
    }
    let held = quiet && last_heard.is_some();
    let grad_cam = match (explainer, kept) {
        (Some(explainer), Some(kept)) => Some(attribution::grad_cam_from_kept(
            explainer,
            &kept,
            analysis.top_class,
        )?),
        _ => None,
    };
    let raw_probabilities = match (quiet, last_heard.as_ref()) {
        (true, Some((_, heard))) => heard.clone(),
        _ => raw,
    };
    Ok(LiveFrame {
        analysis,
        raw_probabilities,
        window: samples,
        end_s: 0.0,
        latency_ms: 0.0,
        real_time_factor: 0.0,
        skipped_windows: 0,
        level_dbfs,
        noise_floor_dbfs,
        quiet,
        held,
        grad_cam,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::checkpoint::ModelCard;
    use crate::model::ensemble::Member;
    use crate::model::{IConNet, ModelConfig, PoolingKind};

    fn model_with_crops(rate: u32, crops: &[Option<f64>]) -> Ensemble {
        let classes = vec!["a".to_string(), "b".to_string()];
        let config = ModelConfig::named("tiny", rate, classes, PoolingKind::Attention).unwrap();
        let members = crops
            .iter()
            .map(|crop| {
                let model = IConNet::new(&config, &burn::tensor::Device::flex());
                let mut card = ModelCard::new("m", &model);
                if let Some(c) = crop {
                    card.training.insert("crop_seconds".into(), (*c).into());
                }
                Member {
                    model,
                    card,
                    path: "m.iconnet".into(),
                }
            })
            .collect();
        Ensemble::new("e", std::path::Path::new("e.ensemble"), vec![], members).unwrap()
    }

    #[test]
    fn a_speech_model_listens_to_windows_as_long_as_its_training_crops() {
        let window =
            |rate, crops: &[Option<f64>]| LiveConfig::for_model(&model_with_crops(rate, crops)).window_s;
        // Digits (1 s crops) get 1 s windows; emotion (3 s) keeps 3 s; the longest member wins.
        assert_eq!(window(8000, &[Some(1.0)]), 1.0);
        assert_eq!(window(8000, &[Some(3.0)]), 3.0);
        assert_eq!(window(16000, &[Some(1.0), Some(2.0), None]), 2.0);
        // Never below 1 s nor above the speech default; unknown crops keep the default.
        assert_eq!(window(8000, &[Some(0.5)]), 1.0);
        assert_eq!(window(8000, &[Some(8.0)]), 3.0);
        assert_eq!(window(8000, &[None]), 3.0);
        // Heart models keep their 6 s windows whatever their 5 s excerpts.
        assert_eq!(window(1000, &[Some(5.0)]), 6.0);
    }
}
