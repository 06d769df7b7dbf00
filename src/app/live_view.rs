//! Live mode window: input picker, record switch, class probabilities, the scrolling waveform of
//! the latest window with its attention heatmap and learned spectrogram, latency and real-time
//! factor. When a recording stops, it opens in the normal analysis views.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::Device;
use eframe::egui::{self, Color32, RichText, Ui};

use super::context::ViewContext;
use super::decimate::MinMaxPyramid;
use super::panels::spectrogram::SpectrogramPanel;
use super::panels::waveform::WaveformPanel;
use super::session::{HeartCycleView, Loaded, ModelView, RecordingView};
use super::{AppOptions, StudioApp};
use crate::backend::BackendChoice;
use crate::explain::attribution;
use crate::live::source::input_devices;
use crate::live::{InputSpec, LiveConfig, LiveEvent, LiveFrame, LiveSession, LiveSummary};

/// How the live window starts.
pub struct LiveOptions {
    pub model_path: PathBuf,
    pub model: Arc<ModelView>,
    pub device: Device,
    pub input: InputSpec,
    pub config: LiveConfig,
    /// Close the window once the input file has played and the recording is finalised.
    pub exit_at_end: bool,
    pub backend: BackendChoice,
}

pub struct LiveApp {
    options: LiveOptions,
    session: Option<LiveSession>,
    source: String,
    frame: Option<Arc<LiveFrame>>,
    data: Loaded,
    view: ViewContext,
    waveform: WaveformPanel,
    spectrogram: SpectrogramPanel,
    latencies: VecDeque<f64>,
    errors: Vec<String>,
    summary: Option<LiveSummary>,
    devices: Vec<String>,
    record: bool,
    /// Show smoothed probabilities (the session computes both).
    smooth: bool,
    /// The normal analysis views on the finished recording.
    studio: Option<StudioApp>,
}

/// Opens the live window and runs until it is closed.
pub fn run(options: LiveOptions) -> Result<(), String> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("IConNet Studio - live")
            .with_inner_size([1280.0, 860.0]),
        ..Default::default()
    };
    eframe::run_native(
        "IConNet Studio live",
        native,
        Box::new(move |cc| Ok(Box::new(LiveApp::new(&cc.egui_ctx, options)))),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}

impl LiveApp {
    pub fn new(ctx: &egui::Context, options: LiveOptions) -> Self {
        let record = options.config.record.is_some();
        let mut app = Self {
            session: None,
            source: String::new(),
            frame: None,
            data: Loaded {
                model: Some(options.model.clone()),
                ..Default::default()
            },
            view: ViewContext::default(),
            waveform: WaveformPanel::default(),
            spectrogram: SpectrogramPanel::default(),
            latencies: VecDeque::new(),
            errors: Vec::new(),
            summary: None,
            devices: Vec::new(),
            record,
            smooth: options.config.smoothing > 0.0,
            studio: None,
            options,
        };
        if matches!(app.options.input, InputSpec::Device(_)) {
            app.devices = input_devices();
        }
        app.start(ctx);
        app
    }

    fn start(&mut self, ctx: &egui::Context) {
        self.errors.clear();
        self.summary = None;
        self.frame = None;
        let mut config = self.options.config.clone();
        if !self.record {
            config.record = None;
        } else if config.record.is_none() {
            config.record = Some(default_recording_path());
        }
        let notify = ctx.clone();
        self.session = Some(LiveSession::start_from_file(
            self.options.model_path.clone(),
            self.options.device.clone(),
            self.options.input.clone(),
            config,
            move || notify.request_repaint(),
        ));
    }

    fn poll(&mut self, ctx: &egui::Context) {
        let Some(session) = &self.session else { return };
        let events: Vec<LiveEvent> = session.events.try_iter().collect();
        let mut stopped = None;
        for event in events {
            match event {
                LiveEvent::Started { description, .. } => self.source = description,
                LiveEvent::Frame(frame) => self.show_frame(frame),
                LiveEvent::Error(e) => self.errors.push(e),
                LiveEvent::Stopped(summary) => stopped = Some(summary),
            }
        }
        if let Some(summary) = stopped {
            self.session = None;
            if self.options.exit_at_end {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            } else if let Some(path) = &summary.recording {
                // The recording opens in the normal analysis views.
                self.studio = Some(StudioApp::new(
                    ctx,
                    AppOptions {
                        model: self.options.model_path.clone(),
                        file: Some(path.clone()),
                        backend: self.options.backend,
                        screenshot: None,
                    },
                ));
            }
            self.summary = Some(summary);
        }
    }

    fn show_frame(&mut self, frame: Arc<LiveFrame>) {
        self.latencies.push_back(frame.latency_ms);
        if self.latencies.len() > 40 {
            self.latencies.pop_front();
        }
        let model = self.options.model.clone();
        let rate = model.card().config.sample_rate;
        let recording = RecordingView {
            path: PathBuf::from("live input"),
            rate,
            original_rate: rate,
            channels: 1,
            waveform: Arc::new(MinMaxPyramid::new(frame.window.clone())),
            warnings: Vec::new(),
            // A heart model's 6 s window holds five beats or more; segmenting it costs about
            // 0.4 ms, once per window.
            heart_cycles: HeartCycleView::for_recording(
                &frame.window,
                rate,
                model.card().config.is_heart_sound_model(),
            ),
        };
        let duration = recording.duration_s();
        self.data.recording = Some(Arc::new(recording));
        self.data.heatmap = Some(Arc::new(match &frame.grad_cam {
            Some(map) => map.clone(),
            None => attribution::attention(&frame.analysis),
        }));
        let mut analysis = frame.analysis.clone();
        if !self.smooth && !frame.quiet {
            analysis.probabilities = frame.raw_probabilities.clone();
            analysis.top_class = crate::explain::argmax(&analysis.probabilities);
        }
        self.data.analysis = Some(Arc::new(analysis));
        self.view.request_visible_s = Some((0.0, duration.max(0.001)));
        self.frame = Some(frame);
    }

    /// Whether a result is on screen.
    pub fn has_result(&self) -> bool {
        self.frame.is_some()
    }

    /// What the panels show now.
    pub fn data(&self) -> &Loaded {
        &self.data
    }

    /// The class the prediction panel shows as the top class.
    pub fn shown_class(&self) -> Option<String> {
        let a = self.data.analysis.as_ref()?;
        a.classes.get(a.top_class).cloned()
    }

    pub fn frame_ui(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        self.poll(&ctx);
        if self.studio.is_some() {
            egui::Panel::top("back").show(ui, |ui| {
                ui.horizontal(|ui| {
                    if ui.button("Back to live").clicked() {
                        self.studio = None;
                    }
                    if let Some(s) = &self.summary {
                        ui.label(format!(
                            "recording {} ({:.1} s, {} dropped samples)",
                            s.recording
                                .as_ref()
                                .map(|p| p.display().to_string())
                                .unwrap_or_default(),
                            s.samples as f64 / s.source_rate.max(1) as f64,
                            s.dropped
                        ));
                    }
                });
            });
            if let Some(studio) = &mut self.studio {
                studio.frame(ui);
            }
            return;
        }
        egui::Panel::top("live-controls").show(ui, |ui| self.controls(ui, &ctx));
        egui::Panel::right("live-probabilities")
            .default_size(300.0)
            .show(ui, |ui| {
                super::panels::prediction::ui(ui, &self.data);
                if let Some(f) = &self.frame {
                    ui.separator();
                    ui.label(format!("input level (loudest 50 ms): {:.0} dBFS", f.level_dbfs));
                    ui.label(format!(
                        "room noise (quietest 50 ms, last 10 s): {:.0} dBFS",
                        f.noise_floor_dbfs
                    ));
                    if f.quiet {
                        ui.label(
                            RichText::new(quiet_note(f, &self.options.config))
                                .color(Color32::from_rgb(255, 200, 90)),
                        );
                    }
                    ui.label(format!("latency (capture -> result): {:.0} ms", f.latency_ms));
                    let mut sorted: Vec<f64> = self.latencies.iter().copied().collect();
                    sorted.sort_by(f64::total_cmp);
                    if let Some(&p95) = sorted.get(sorted.len() * 95 / 100) {
                        ui.label(format!(
                            "95th percentile of the last {}: {p95:.0} ms",
                            sorted.len()
                        ));
                    }
                    ui.label(format!("real-time factor: {:.2}", f.real_time_factor));
                    ui.label(format!("windows skipped to keep up: {}", f.skipped_windows));
                    ui.label(format!("stream time: {:.1} s", f.end_s));
                }
            });
        egui::CentralPanel::default().show(ui, |ui| {
            for e in &self.errors {
                ui.label(RichText::new(format!("error: {e}")).color(Color32::from_rgb(255, 110, 110)));
            }
            if self.frame.is_none() {
                ui.label(if self.session.is_some() {
                    "listening..."
                } else {
                    "stopped"
                });
            }
            let h = ui.available_height();
            ui.allocate_ui(egui::vec2(ui.available_width(), h * 0.5), |ui| {
                self.waveform.ui(ui, &mut self.view, &self.data);
            });
            ui.allocate_ui(ui.available_size(), |ui| {
                self.spectrogram.ui(ui, &mut self.view, &self.data);
            });
        });
    }

    fn controls(&mut self, ui: &mut Ui, ctx: &egui::Context) {
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("model: {}", self.options.model.name())).strong());
            ui.separator();
            match &self.options.input {
                InputSpec::File(p) => {
                    ui.label(format!("input: {}", p.display()));
                }
                InputSpec::Device(selected) => {
                    let mut choice = selected.clone();
                    egui::ComboBox::from_label("input")
                        .selected_text(choice.clone().unwrap_or_else(|| "default device".into()))
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut choice, None, "default device");
                            for d in &self.devices {
                                ui.selectable_value(&mut choice, Some(d.clone()), d);
                            }
                        });
                    if &choice != selected {
                        self.options.input = InputSpec::Device(choice);
                        if self.session.is_some() {
                            self.session = None;
                            self.start(ctx);
                        }
                    }
                }
            }
            ui.separator();
            let running = self.session.is_some();
            ui.add_enabled(!running, egui::Checkbox::new(&mut self.record, "record to WAV"));
            ui.checkbox(&mut self.smooth, "smooth probabilities");
            if running {
                if ui.button("Stop").clicked()
                    && let Some(s) = &self.session
                {
                    s.stop();
                }
            } else if ui.button("Start").clicked() {
                self.start(ctx);
            }
            ui.separator();
            ui.label(&self.source);
        });
    }
}

impl eframe::App for LiveApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.frame_ui(ui);
    }
}

/// Why the probabilities did not move while the input was quiet.
fn quiet_note(frame: &LiveFrame, config: &LiveConfig) -> String {
    let why = if frame.level_dbfs < config.quiet_below_dbfs {
        format!("below {:.0} dBFS", config.quiet_below_dbfs)
    } else {
        format!(
            "less than {:.0} dB above the room noise",
            config.quiet_above_floor_db.unwrap_or(0.0)
        )
    };
    if frame.held {
        format!("quiet ({why}): showing the last window with sound")
    } else {
        format!("quiet ({why}): nothing heard yet; these probabilities are the model's reading of the noise")
    }
}

/// `~/iconnet-recording-<unix time>.wav` (or in the current directory without a home).
pub fn default_recording_path() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    dir.join(format!("iconnet-recording-{secs}.wav"))
}
