//! The desktop app: an app shell around one module per panel, a shared [`ViewContext`], and a
//! worker thread for loading, inference and attributions.

pub mod colormap;
pub mod context;
pub mod decimate;
pub mod live_view;
pub mod panels;
pub mod playback;
pub mod recent;
pub mod report;
pub mod session;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use eframe::egui::{self, Color32, Key, Rect, RichText, Ui};

use crate::backend::BackendChoice;
use crate::dsp::heart_cycle;
use crate::explain::attribution::{self, Heatmap, HeatmapMethod};
use crate::explain::export;
use context::ViewContext;
use panels::filters::FiltersPanel;
use panels::spectrogram::SpectrogramPanel;
use panels::waveform::WaveformPanel;
use playback::{Output, Player, Source};
use session::{HeartCycleView, Loaded};
use worker::{Job, Report, Worker};

/// The real heart recording the app opens with (copied from `../shared/data/heart`).
pub const DEFAULT_RECORDING: &str = "samples/a0013.wav";

/// How the app starts.
#[derive(Clone, Debug)]
pub struct AppOptions {
    pub model: PathBuf,
    pub file: Option<PathBuf>,
    pub backend: BackendChoice,
    /// Save a screenshot of the window here once the recording is analysed, then close
    /// (for the Xvfb test and the README picture).
    pub screenshot: Option<PathBuf>,
}

/// Opens the window and runs until it is closed.
pub fn run(options: AppOptions) -> Result<(), String> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("IConNet Studio")
            .with_inner_size([1440.0, 920.0])
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "IConNet Studio",
        native,
        Box::new(move |cc| Ok(Box::new(StudioApp::new(&cc.egui_ctx, options)))),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}

/// Views that can be saved as PNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    Waveform,
    Spectrogram,
    Filters,
    Prediction,
}

impl View {
    const ALL: [View; 4] = [Self::Waveform, Self::Spectrogram, Self::Filters, Self::Prediction];
    fn name(self) -> &'static str {
        match self {
            Self::Waveform => "waveform",
            Self::Spectrogram => "spectrogram",
            Self::Filters => "filters",
            Self::Prediction => "prediction",
        }
    }
}

/// Something to export to a file the user picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    Png(View),
    HeatmapCsv,
    HeatmapJson,
    FiltersCsv,
    ProbabilitiesJson,
    Labels,
    /// S1 and S2 of a heart recording as an Audacity label track.
    HeartSoundLabels,
}

impl Export {
    fn default_name(self, stem: &str) -> String {
        match self {
            Self::Png(v) => format!("{stem}-{}.png", v.name()),
            Self::HeatmapCsv => format!("{stem}-heatmap.csv"),
            Self::HeatmapJson => format!("{stem}-heatmap.json"),
            Self::FiltersCsv => "filters.csv".into(),
            Self::ProbabilitiesJson => format!("{stem}-probabilities.json"),
            Self::Labels => format!("{stem}-labels.txt"),
            Self::HeartSoundLabels => format!("{stem}-s1-s2.txt"),
        }
    }
}

/// Results of file dialogs, which run on their own threads.
enum Dialog {
    OpenRecording(PathBuf),
    OpenModel(PathBuf),
    Save(Export, PathBuf),
}

#[derive(Default)]
struct Status {
    backend: String,
    busy: Option<String>,
    progress: Option<f32>,
    error: Option<String>,
    info: Option<String>,
}

pub struct StudioApp {
    pub view: ViewContext,
    pub data: Loaded,
    worker: Worker,
    status: Status,
    waveform: WaveformPanel,
    spectrogram: SpectrogramPanel,
    filters: FiltersPanel,
    player: Player,
    recent: Vec<PathBuf>,
    show_card: bool,
    dialogs: (Sender<Dialog>, Receiver<Dialog>),
    /// Where each view was drawn last frame (for PNG export).
    view_rects: HashMap<View, Rect>,
    /// Heatmaps computed for the open recording, by method and class.
    heatmaps: HashMap<(HeatmapMethod, usize), Arc<Heatmap>>,
    /// Samples being played (recording or filtered) at the model's rate.
    audio: Option<Arc<Vec<f32>>>,
    /// Pending screenshot-and-close: path, frames drawn since the analysis arrived, taken.
    screenshot: Option<(PathBuf, u32, Arc<std::sync::atomic::AtomicBool>)>,
}

impl StudioApp {
    pub fn new(ctx: &egui::Context, options: AppOptions) -> Self {
        let notify_ctx = ctx.clone();
        let worker = Worker::start(options.backend, move || notify_ctx.request_repaint());
        Self::with_worker(worker, options, Player::new())
    }

    /// An app with a given worker and player (tests use a silent player).
    pub fn with_worker(worker: Worker, options: AppOptions, player: Player) -> Self {
        worker.submit(Job::LoadModel(options.model.clone()));
        let screenshot = options
            .screenshot
            .clone()
            .map(|p| (p, 0, Arc::new(std::sync::atomic::AtomicBool::new(false))));
        if let Some(file) = &options.file {
            worker.submit(Job::Open(file.clone()));
        }
        Self {
            view: ViewContext::default(),
            data: Loaded::default(),
            worker,
            status: Status {
                busy: Some("starting".into()),
                ..Default::default()
            },
            waveform: WaveformPanel::default(),
            spectrogram: SpectrogramPanel::default(),
            filters: FiltersPanel::default(),
            player,
            recent: recent::load(),
            show_card: false,
            dialogs: channel(),
            view_rects: HashMap::new(),
            heatmaps: HashMap::new(),
            audio: None,
            screenshot,
        }
    }

    /// Takes the requested screenshot a few frames after the analysis is shown, then closes.
    fn screenshot_and_close(&mut self, ctx: &egui::Context) {
        let ready = self.idle() && (self.data.heatmap.is_some() || self.status.error.is_some());
        let Some((path, frames, done)) = &mut self.screenshot else {
            return;
        };
        if done.load(std::sync::atomic::Ordering::SeqCst) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        if !ready {
            return;
        }
        *frames += 1;
        ctx.request_repaint();
        if *frames == 5 {
            let (path, done) = (path.clone(), done.clone());
            ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::ScreenshotCallback::new(
                move |image| {
                    if let Err(e) = report::save_color_image(&image, &path) {
                        eprintln!("error: {}: {e}", path.display());
                    }
                    done.store(true, std::sync::atomic::Ordering::SeqCst);
                },
            )));
        }
    }

    /// Whether the worker has nothing in progress.
    pub fn idle(&self) -> bool {
        self.status.busy.is_none()
    }

    pub fn error(&self) -> Option<&str> {
        self.status.error.as_deref()
    }

    pub fn open(&mut self, path: PathBuf) {
        if path.extension().is_some_and(|e| e == "iconnet") || crate::model::ensemble::is_manifest(&path) {
            self.load_model(path);
            return;
        }
        self.status.error = None;
        self.status.busy = Some(format!("opening {}", path.display()));
        self.worker.submit(Job::Open(path));
    }

    pub fn load_model(&mut self, path: PathBuf) {
        self.status.error = None;
        self.status.busy = Some(format!("loading model {}", path.display()));
        self.player.stop();
        self.worker.submit(Job::LoadModel(path));
    }

    /// Switches the heatmap; attributions other than attention are computed by the worker.
    pub fn set_heatmap(&mut self, method: HeatmapMethod, class: usize) {
        self.view.heatmap_method = method;
        self.view.heatmap_class = class;
        self.refresh_heatmap();
    }

    fn refresh_heatmap(&mut self) {
        let Some(analysis) = &self.data.analysis else {
            return;
        };
        let method = self.view.heatmap_method;
        let class = if method.needs_class() {
            self.view.heatmap_class
        } else {
            0
        };
        if let Some(h) = self.heatmaps.get(&(method, class)) {
            self.data.heatmap = Some(h.clone());
            return;
        }
        match method {
            HeatmapMethod::Attention => {
                let h = Arc::new(attribution::attention(analysis));
                self.heatmaps.insert((method, 0), h.clone());
                self.data.heatmap = Some(h);
            }
            _ => {
                self.status.busy = Some(format!("computing {}", method.label()));
                self.worker.submit(Job::Heatmap { method, class });
            }
        }
    }

    fn handle_reports(&mut self) {
        while let Ok(report) = self.worker.reports.try_recv() {
            match report {
                Report::Backend(b) => self.status.backend = b,
                Report::Busy(m) => {
                    self.status.busy = Some(m);
                    self.status.progress = None;
                }
                Report::Progress(p) => self.status.progress = Some(p),
                Report::ModelLoaded(Ok(m)) => {
                    self.view.member = 0;
                    self.view.selected_filter = None;
                    self.view.heatmap_class = 0;
                    self.view.heatmap_class_chosen = false;
                    if !self.view.heatmap_method_chosen {
                        self.view.heatmap_method = HeatmapMethod::default_for(&m.card().config);
                    }
                    self.heatmaps.clear();
                    self.data.model = Some(m);
                    self.data.analysis = None;
                    self.data.heatmap = None;
                }
                Report::ModelLoaded(Err(e)) => self.status.error = Some(e),
                Report::Opened(Ok(r)) => {
                    self.player.stop();
                    self.audio = None;
                    self.view.show_all(r.duration_s());
                    self.view.cursor_s = None;
                    self.heatmaps.clear();
                    self.data.analysis = None;
                    self.data.heatmap = None;
                    self.status.info = (!r.warnings.is_empty())
                        .then(|| format!("{}: {}", r.file_name(), r.warnings.join("; ")));
                    recent::add(&mut self.recent, &r.path);
                    self.data.recording = Some(r);
                }
                Report::Opened(Err(e)) => self.status.error = Some(e),
                Report::Analysed(Ok(a)) => {
                    if !self.view.heatmap_class_chosen || self.view.heatmap_class >= a.classes.len() {
                        self.view.heatmap_class = a.top_class;
                    }
                    self.data.analysis = Some(a);
                    self.refresh_heatmap();
                }
                Report::Analysed(Err(e)) | Report::Heatmap(Err(e)) => self.status.error = Some(e),
                Report::Heatmap(Ok(h)) => {
                    let class = self
                        .data
                        .analysis
                        .as_ref()
                        .and_then(|a| a.classes.iter().position(|c| Some(c) == h.class.as_ref()))
                        .unwrap_or(0);
                    self.heatmaps.insert((h.method, class), h.clone());
                    if h.method == self.view.heatmap_method && class == self.view.heatmap_class {
                        self.data.heatmap = Some(h);
                    }
                }
                Report::Idle => {
                    self.status.busy = None;
                    self.status.progress = None;
                }
            }
        }
    }

    fn handle_dialogs(&mut self, ctx: &egui::Context) {
        while let Ok(d) = self.dialogs.1.try_recv() {
            match d {
                Dialog::OpenRecording(p) => self.open(p),
                Dialog::OpenModel(p) => self.load_model(p),
                Dialog::Save(what, path) => {
                    let result = self.export(ctx, what, &path);
                    match result {
                        Ok(()) => self.status.info = Some(format!("saved {}", path.display())),
                        Err(e) => self.status.error = Some(format!("{}: {e}", path.display())),
                    }
                }
            }
        }
    }

    /// Writes `what` to `path` (PNG views via a screenshot of the window).
    pub fn export(&self, ctx: &egui::Context, what: Export, path: &Path) -> Result<(), String> {
        let write = |text: String| std::fs::write(path, text).map_err(|e| e.to_string());
        let file = self
            .data
            .recording
            .as_ref()
            .map(|r| r.path.display().to_string())
            .unwrap_or_default();
        match what {
            Export::Png(view) => {
                let rect = *self.view_rects.get(&view).ok_or("that view is not on screen")?;
                let path = path.to_path_buf();
                let ppp = ctx.pixels_per_point();
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::ScreenshotCallback::new(
                    move |image| {
                        let region = image.region(&rect, Some(ppp));
                        if let Err(e) = report::save_color_image(&region, &path) {
                            eprintln!("error: {}: {e}", path.display());
                        }
                    },
                )));
                Ok(())
            }
            Export::HeatmapCsv => write(export::heatmap_csv(
                self.data.heatmap.as_deref().ok_or("no heatmap")?,
            )),
            Export::HeatmapJson => {
                let h = self.data.heatmap.as_deref().ok_or("no heatmap")?;
                write(serde_json::to_string_pretty(&export::heatmap_json(h)).map_err(|e| e.to_string())?)
            }
            Export::FiltersCsv => write(export::members_filters_csv(
                &self.data.model.as_ref().ok_or("no model")?.filter_tables(),
            )),
            Export::ProbabilitiesJson => {
                let a = self.data.analysis.as_deref().ok_or("no analysis")?;
                let model = self.data.model.as_ref().ok_or("no model")?;
                let mut json = export::probabilities_json(&file, model.name(), a);
                if let Some(cycles) = self.heart_cycles() {
                    let cycles = cycles.as_ref().map(|c| &c.cycles).map_err(String::as_str);
                    json["heart_cycle"] = heart_cycle::cycles_json(cycles, &a.attention, &a.times_s);
                }
                write(serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?)
            }
            Export::Labels => write(export::audacity_labels(
                self.data.heatmap.as_deref().ok_or("no heatmap")?,
                self.view.region_threshold,
            )),
            Export::HeartSoundLabels => match self.heart_cycles() {
                Some(Ok(cycles)) => write(export::heart_sound_labels(&cycles.sounds)),
                Some(Err(e)) => Err(format!("no heart cycle found: {e}")),
                None => Err("heart sounds are found for heart-sound models only".into()),
            },
        }
    }

    /// The open recording's heart-cycle segmentation (None unless a heart model opened it).
    fn heart_cycles(&self) -> Option<&Result<Arc<HeartCycleView>, String>> {
        self.data.recording.as_ref()?.heart_cycles.as_ref()
    }

    fn pick_file(&self, model: bool) {
        let tx = self.dialogs.0.clone();
        std::thread::spawn(move || {
            let dialog = rfd::FileDialog::new();
            let dialog = if model {
                dialog.add_filter("IConNet model (checkpoint or ensemble)", &["iconnet", "ensemble"])
            } else {
                dialog
                    .add_filter("Recordings", &["wav", "WAV", "hea"])
                    .add_filter("All files", &["*"])
            };
            if let Some(p) = dialog.pick_file() {
                let _ = tx.send(if model {
                    Dialog::OpenModel(p)
                } else {
                    Dialog::OpenRecording(p)
                });
            }
        });
    }

    fn pick_save(&self, what: Export) {
        let tx = self.dialogs.0.clone();
        let stem = self
            .data
            .recording
            .as_ref()
            .and_then(|r| r.path.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "iconnet".into());
        let name = what.default_name(&stem);
        std::thread::spawn(move || {
            if let Some(p) = rfd::FileDialog::new().set_file_name(name).save_file() {
                let _ = tx.send(Dialog::Save(what, p));
            }
        });
    }

    fn keyboard(&mut self, ctx: &egui::Context) {
        let duration = self.data.duration_s().unwrap_or(0.0);
        if ctx.egui_wants_keyboard_input() || duration <= 0.0 {
            return;
        }
        let (a, b) = self.view.visible_s;
        let centre = self
            .view
            .cursor_s
            .filter(|t| (a..=b).contains(t))
            .unwrap_or((a + b) / 2.0);
        ctx.input(|i| {
            if i.key_pressed(Key::Plus) || i.key_pressed(Key::Equals) {
                self.view.zoom(0.5, centre, duration);
            }
            if i.key_pressed(Key::Minus) {
                self.view.zoom(2.0, centre, duration);
            }
            if i.key_pressed(Key::ArrowLeft) {
                self.view.pan(-0.25, duration);
            }
            if i.key_pressed(Key::ArrowRight) {
                self.view.pan(0.25, duration);
            }
            if i.key_pressed(Key::Home) || i.key_pressed(Key::Num0) {
                self.view.show_all(duration);
            }
        });
        if ctx.input(|i| i.key_pressed(Key::Space)) {
            self.toggle_play(Source::Recording);
        }
        if ctx.input(|i| i.modifiers.command && i.key_pressed(Key::O)) {
            self.pick_file(false);
        }
    }

    fn toggle_play(&mut self, what: Source) {
        if self.player.playing.is_some() {
            self.player.stop();
            return;
        }
        let Some(recording) = &self.data.recording else {
            return;
        };
        if !self.player.available() {
            return;
        }
        let samples = recording.waveform.samples();
        let audio: Vec<f32> = match &what {
            Source::Recording => samples.to_vec(),
            Source::Filtered(i) => {
                let Some(model) = &self.data.model else { return };
                let model = model.member(self.view.member);
                let Some(f) = model.filters.get(*i) else { return };
                let kernel: Vec<f32> = f.kernel(model.taps_of(f)).iter().map(|&v| v as f32).collect();
                crate::dsp::fftconv::correlate_same(samples, &kernel)
            }
        };
        let audio = Arc::new(audio);
        let start = self.view.cursor_s.unwrap_or(0.0);
        match self.player.play(audio.clone(), recording.rate, start, what) {
            Ok(()) => self.audio = Some(audio),
            Err(e) => self.status.error = Some(e),
        }
    }

    fn menu_bar(&mut self, ui: &mut Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open recording...  (Ctrl+O)").clicked() {
                    self.pick_file(false);
                }
                ui.menu_button("Recent", |ui| {
                    if self.recent.is_empty() {
                        ui.label("none yet");
                    }
                    for p in self.recent.clone() {
                        if ui.button(p.display().to_string()).clicked() {
                            self.open(p);
                        }
                    }
                });
                ui.separator();
                ui.menu_button("Export", |ui| {
                    for v in View::ALL {
                        if ui.button(format!("{} view as PNG...", v.name())).clicked() {
                            self.pick_save(Export::Png(v));
                        }
                    }
                    ui.separator();
                    let has_heatmap = self.data.heatmap.is_some();
                    if ui
                        .add_enabled(has_heatmap, egui::Button::new("heatmap over time (CSV)..."))
                        .clicked()
                    {
                        self.pick_save(Export::HeatmapCsv);
                    }
                    if ui
                        .add_enabled(has_heatmap, egui::Button::new("heatmap over time (JSON)..."))
                        .clicked()
                    {
                        self.pick_save(Export::HeatmapJson);
                    }
                    if ui
                        .add_enabled(
                            has_heatmap,
                            egui::Button::new("high-heatmap regions (Audacity labels)..."),
                        )
                        .clicked()
                    {
                        self.pick_save(Export::Labels);
                    }
                    if ui
                        .add_enabled(
                            matches!(self.heart_cycles(), Some(Ok(_))),
                            egui::Button::new("S1 and S2 found (Audacity labels)..."),
                        )
                        .on_disabled_hover_text("for a heart-sound model's recording with a heart rhythm")
                        .clicked()
                    {
                        self.pick_save(Export::HeartSoundLabels);
                    }
                    if ui.button("filter table (CSV)...").clicked() {
                        self.pick_save(Export::FiltersCsv);
                    }
                    if ui
                        .add_enabled(
                            self.data.analysis.is_some(),
                            egui::Button::new("probabilities (JSON)..."),
                        )
                        .clicked()
                    {
                        self.pick_save(Export::ProbabilitiesJson);
                    }
                });
            });
            ui.menu_button("Model", |ui| {
                let dir = crate::cli::bundled_models_dir();
                for name in crate::cli::BUNDLED {
                    if let Some(p) = crate::cli::bundled_model(&dir, name)
                        && ui.button(format!("bundled: {name}")).clicked()
                    {
                        self.load_model(p);
                    }
                }
                if ui.button("Open checkpoint or ensemble...").clicked() {
                    self.pick_file(true);
                }
                ui.separator();
                if ui.button("Model card").clicked() {
                    self.show_card = true;
                }
            });
            ui.menu_button("View", |ui| {
                let d = self.data.duration_s().unwrap_or(1.0);
                if ui.button("Show whole recording  (Home)").clicked() {
                    self.view.show_all(d);
                }
                let (a, b) = self.view.visible_s;
                if ui.button("Zoom in  (+)").clicked() {
                    self.view.zoom(0.5, (a + b) / 2.0, d);
                }
                if ui.button("Zoom out  (-)").clicked() {
                    self.view.zoom(2.0, (a + b) / 2.0, d);
                }
            });
        });
    }

    fn status_bar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            if let Some(busy) = &self.status.busy {
                ui.spinner();
                ui.label(busy);
                if let Some(p) = self.status.progress {
                    ui.add(egui::ProgressBar::new(p).desired_width(120.0).show_percentage());
                }
                ui.separator();
            }
            if let Some(e) = &self.status.error {
                ui.label(RichText::new(format!("error: {e}")).color(Color32::from_rgb(255, 110, 110)));
                if ui.small_button("dismiss").clicked() {
                    self.status.error = None;
                }
                ui.separator();
            } else if let Some(i) = &self.status.info {
                ui.label(i);
                ui.separator();
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.label(format!("model backend: {}", self.status.backend));
                ui.separator();
                match &self.player.output {
                    Output::Available(d) => ui.label(format!("sound: {d}")),
                    Output::Probing => ui.label("sound: probing"),
                    Output::Unavailable(e) => ui.label(format!("sound: {e}")),
                };
                if let Some(r) = &self.data.recording {
                    ui.separator();
                    ui.label(format!(
                        "{} · {:.1} s · {} Hz -> {} Hz{}",
                        r.file_name(),
                        r.duration_s(),
                        r.original_rate,
                        r.rate,
                        if r.channels > 1 {
                            format!(" · {} ch mixed to mono", r.channels)
                        } else {
                            String::new()
                        }
                    ));
                }
            });
        });
    }

    fn side_panel(&mut self, ui: &mut Ui) {
        let r = ui
            .scope(|ui| {
                panels::prediction::ui(ui, &self.data);
            })
            .response
            .rect;
        self.view_rects.insert(View::Prediction, r);
        ui.separator();
        ui.label(RichText::new("Heatmap").strong());
        let mut method = self.view.heatmap_method;
        let mut class = self.view.heatmap_class;
        // A mean-pooling model has no attention: its "weights" only mark the frames pooled.
        let mean_pooled = self
            .data
            .model
            .as_ref()
            .is_some_and(|m| m.card().config.uniform_pooling());
        let integrable = self
            .data
            .model
            .as_ref()
            .is_none_or(|m| m.cards().any(|c| c.config.has_input_gradient()));
        for m in HeatmapMethod::ALL {
            let label = match m {
                HeatmapMethod::Attention if mean_pooled => "frames pooled (no attention)",
                _ => m.label(),
            };
            let enabled = m != HeatmapMethod::IntegratedGradients || integrable;
            ui.add_enabled_ui(enabled, |ui| ui.radio_value(&mut method, m, label))
                .inner
                .on_disabled_hover_text(
                    "needs a learned front-end: this model's log-Mel/MFCC features have no input gradient",
                );
        }
        if let Some(model) = &self.data.model {
            let classes = &model.card().config.classes;
            ui.add_enabled_ui(method.needs_class(), |ui| {
                egui::ComboBox::from_label("explained class")
                    .selected_text(classes.get(class).cloned().unwrap_or_default())
                    .show_ui(ui, |ui| {
                        for (i, c) in classes.iter().enumerate() {
                            ui.selectable_value(&mut class, i, c);
                        }
                    });
            });
        }
        if class != self.view.heatmap_class {
            self.view.heatmap_class_chosen = true;
        }
        if method != self.view.heatmap_method {
            self.view.heatmap_method_chosen = true;
        }
        if method != self.view.heatmap_method || class != self.view.heatmap_class {
            self.set_heatmap(method, class);
        }
        ui.add(egui::Slider::new(&mut self.view.heatmap_opacity, 0.0..=1.0).text("opacity"));
        ui.add(
            egui::Slider::new(&mut self.view.heatmap_smoothing_s, 0.0..=2.0).text("display smoothing (s)"),
        )
        .on_hover_text(
            "Moving average of the heatmap for reading it at the scale of heart cycles or words; \
             exports keep the values the model computed",
        );
        ui.add(egui::Slider::new(&mut self.view.region_threshold, 0.05..=1.0).text("label threshold"));
        ui.separator();
        ui.label(RichText::new("Listen").strong());
        let can_play = self.player.available() && self.data.recording.is_some();
        let reason = match &self.player.output {
            Output::Unavailable(e) => e.clone(),
            Output::Probing => "probing the sound output".into(),
            Output::Available(_) => "open a recording first".into(),
        };
        ui.horizontal(|ui| {
            let playing = self.player.playing.is_some();
            let label = if playing { "Stop" } else { "Play (Space)" };
            let b = ui.add_enabled(can_play, egui::Button::new(label));
            if b.clone().on_disabled_hover_text(&reason).clicked() {
                self.toggle_play(Source::Recording);
            }
            let f = self.view.selected_filter;
            let b = ui.add_enabled(
                can_play && f.is_some(),
                egui::Button::new("Play through selected filter"),
            );
            if b.on_disabled_hover_text(&reason).clicked()
                && let Some(f) = f
            {
                self.toggle_play(Source::Filtered(f));
            }
        });
        if !self.player.available() {
            ui.label(RichText::new(reason).small().weak());
        }
        if let Some(t) = self.view.cursor_s {
            ui.label(format!("cursor {}", panels::seconds_label(t)));
        }
    }

    fn card_window(&mut self, ctx: &egui::Context) {
        let Some(model) = self.data.model.clone() else {
            return;
        };
        let mut open = self.show_card;
        egui::Window::new(format!("Model card: {}", model.name()))
            .open(&mut open)
            .default_size([560.0, 480.0])
            .show(ctx, |ui| {
                ui.label(format!("file: {}", model.path.display()));
                let member = model.member(self.view.member);
                let card = &member.card;
                ui.label(format!(
                    "architecture {} · {} Hz · {} · classes: {}",
                    card.config.arch,
                    card.config.sample_rate,
                    card.config.pooling_summary(),
                    card.config.classes.join(", ")
                ));
                egui::ScrollArea::vertical().show(ui, |ui| {
                    if model.is_ensemble() {
                        ui.label(format!(
                            "ensemble of {} models: their probabilities are averaged",
                            model.members.len()
                        ));
                        for n in &model.notes {
                            ui.label(format!("- {n}"));
                        }
                        ui.horizontal(|ui| {
                            ui.label("member card:");
                            for (i, m) in model.members.iter().enumerate() {
                                ui.selectable_value(&mut self.view.member, i, m.label());
                            }
                        });
                        ui.label(format!("file: {}", member.path.display()));
                    }
                    for n in &card.notes {
                        ui.label(format!("- {n}"));
                    }
                    ui.collapsing("metrics", |ui| {
                        ui.monospace(serde_json::to_string_pretty(&card.metrics).unwrap_or_default());
                    });
                    ui.collapsing("training", |ui| {
                        ui.monospace(serde_json::to_string_pretty(&card.training).unwrap_or_default());
                    });
                });
            });
        self.show_card = open;
    }

    /// One frame of the whole app.
    pub fn frame(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        self.handle_reports();
        self.handle_dialogs(&ctx);
        self.player.poll();
        self.view.playhead_s = self.player.position_s();
        if self.player.playing.is_some() {
            ctx.request_repaint();
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for p in dropped {
            self.open(p);
        }
        self.keyboard(&ctx);

        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::Panel::right("side")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| self.side_panel(ui));
        egui::Panel::bottom("filters")
            .resizable(true)
            .default_size(360.0)
            .show(ui, |ui| {
                let r = ui.max_rect();
                self.filters.ui(ui, &mut self.view, &self.data);
                self.view_rects.insert(View::Filters, r);
            });
        egui::CentralPanel::default().show(ui, |ui| {
            let h = ui.available_height();
            let top = ui
                .allocate_ui(egui::vec2(ui.available_width(), h * 0.5), |ui| {
                    self.waveform.ui(ui, &mut self.view, &self.data);
                })
                .response
                .rect;
            self.view_rects.insert(View::Waveform, top);
            let rest = ui
                .allocate_ui(ui.available_size(), |ui| {
                    self.spectrogram.ui(ui, &mut self.view, &self.data);
                })
                .response
                .rect;
            self.view_rects.insert(View::Spectrogram, rest);
        });
        if self.show_card {
            self.card_window(&ctx);
        }
        self.screenshot_and_close(&ctx);
    }
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.frame(ui);
    }
}
