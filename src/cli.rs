//! Command line: `iconnet [open FILE] | explain | predict | train | eval | card | filters`.
//! Without a command the app opens on the bundled heart model and recording.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::backend::{self, BackendChoice};
use crate::dsp::heart_cycle;
use crate::explain;
use crate::model::checkpoint::{self, ModelCard};
use crate::model::ensemble::{self, Ensemble};
use crate::model::{ContextConfig, IConNet, ModelConfig, PoolingKind};
use crate::train::augment::Augment;
use crate::train::dataset::{self, Example};
use crate::train::metrics::{Metrics, fold_summary, fold_summary_lines};
use crate::train::trainer::{self, Selection, TrainOptions};

#[derive(Parser, Debug)]
#[command(
    name = "iconnet",
    version,
    about = "IConNet Studio: see what an audio model hears"
)]
pub struct Cli {
    /// Compute backend: auto (wgpu on a real GPU, else flex), flex (CPU) or wgpu.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Classify recordings (WAV or PhysioNet .hea): probabilities, top class, attention.
    Predict(PredictArgs),
    /// Train a model on a labelled folder, validating on held-out speakers/records.
    Train(Box<TrainArgs>),
    /// Evaluate a checkpoint on labelled data (whole recordings): accuracy, UAR, F1, confusion.
    Eval(EvalArgs),
    /// Print a checkpoint's model card (JSON), or an ensemble's manifest with its members' cards;
    /// `--note` appends lines to it (rewrites the file).
    Card {
        model: String,
        #[arg(long)]
        note: Vec<String>,
        /// Remove the existing notes first (with `--note`: replace them), e.g. when a member's
        /// place in an ensemble changes.
        #[arg(long)]
        clear_notes: bool,
        /// Rename the model (rewrites the file).
        #[arg(long)]
        name: Option<String>,
    },
    /// List a model's learned filters: band edges in Hz, drift from initialisation (CSV; an
    /// ensemble's rows start with the member they belong to).
    Filters { model: String },
    /// Open a recording in the app.
    Open {
        file: PathBuf,
        /// Bundled model name or checkpoint path (default: heart).
        #[arg(long)]
        model: Option<String>,
    },
    /// Write the app's views as PNG plus the data behind them (JSON/CSV), without a display.
    Explain(ExplainArgs),
    /// Live microphone (or file at real-time pace) analysis with a rolling heatmap; records.
    Live(LiveArgs),
}

#[derive(Args, Debug)]
pub struct LiveArgs {
    /// Bundled model name or checkpoint path (default: the first bundled model found).
    #[arg(long)]
    pub model: Option<String>,
    /// Play this file at real-time pace instead of capturing from a sound card.
    #[arg(long)]
    pub input_file: Option<PathBuf>,
    /// Input device name (default: the system's default input).
    #[arg(long, conflicts_with = "input_file")]
    pub device: Option<String>,
    /// Write the raw input to this WAV file as it arrives (crash-safe).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Close when the input file has played and the recording is finalised.
    #[arg(long)]
    pub exit_at_end: bool,
    /// No window: print one JSON line per analysis and a summary line at the end.
    #[arg(long)]
    pub headless: bool,
    /// Seconds of audio per analysis (default: 6 for heart models; 3 for speech models, or
    /// their training crops if shorter, at least 1: 1 s for the bundled digits).
    #[arg(long)]
    pub window: Option<f64>,
    /// Seconds between analyses.
    #[arg(long, default_value_t = 0.25)]
    pub hop: f64,
    /// Show raw probabilities (no exponential smoothing).
    #[arg(long)]
    pub no_smoothing: bool,
    /// Windows whose loudest 50 ms is below this level (dB re full scale) count as quiet: the
    /// last prediction with sound stays on screen. -120 turns this off.
    #[arg(long, default_value_t = -50.0, allow_hyphen_values = true)]
    pub quiet_below_db: f32,
    /// Windows whose loudest 50 ms is less than this many dB above the room's noise floor (the
    /// quietest 50 ms of the last 10 s) count as quiet too, for noisy rooms. Default: 12 for
    /// speech models, off (0) for heart sounds, whose quiet diastole is part of the signal.
    #[arg(long, value_parser = non_negative_f32)]
    pub quiet_above_floor_db: Option<f32>,
    /// The heatmap over each window: `grad-cam` (Grad-CAM of the class on screen, from what the
    /// analysis's pooling read: only the pooling and head run again) or `pooling` (the pooling
    /// weights). Default: the model's attention when it has some, Grad-CAM for a mean-pooling
    /// model.
    #[arg(long)]
    pub heatmap: Option<LiveHeatmap>,
}

/// What the live heatmap shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LiveHeatmap {
    Pooling,
    GradCam,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Recording (WAV or PhysioNet .hea).
    pub file: PathBuf,
    /// Output directory (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Bundled model name or checkpoint path (default: the first bundled model found).
    #[arg(long)]
    pub model: Option<String>,
    /// Class explained by Grad-CAM and integrated gradients (default: the predicted class).
    #[arg(long)]
    pub class: Option<String>,
    /// Only the data files (no PNG rendering).
    #[arg(long)]
    pub no_images: bool,
    /// Integrated-gradients steps.
    #[arg(long, default_value_t = 16)]
    pub ig_steps: usize,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Recordings to classify.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Bundled model name or checkpoint path (default: the first bundled model found); several
    /// (comma separated or repeated) predict as an ensemble: probabilities and attention
    /// weights averaged over the members (same classes and sample rate; frames of different
    /// lengths are averaged on the finest).
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<String>,
    /// Print one JSON array with an object per file.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Data folder (PhysioNet REFERENCE.csv, FSDD, RAVDESS, CREMA-D, or a folder per class).
    pub data: PathBuf,
    /// Architecture: m13, w456, logmel, mfcc, tiny.
    #[arg(long, default_value = "m13")]
    pub arch: String,
    /// Pooling over time: attention or mean.
    #[arg(long, default_value = "attention")]
    pub pooling: PoolingKind,
    /// Where to write the best checkpoint.
    #[arg(long, short, default_value = "model.iconnet")]
    pub out: PathBuf,
    /// Model sample rate in Hz (default: the data's, from its first file).
    #[arg(long)]
    pub sample_rate: Option<u32>,
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Training crop length in seconds (evaluation always uses whole recordings).
    #[arg(long, default_value_t = 1.0)]
    pub crop_seconds: f64,
    /// Random crops per training recording per epoch (segment-level training for long records).
    #[arg(long, default_value_t = 1)]
    pub crops_per_recording: usize,
    /// Peak learning rate of the one-cycle schedule.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    #[arg(long, default_value_t = 1.0)]
    pub clip_norm: f64,
    /// Seed of the weights' initialisation, crops and augmentation (and of the splits, unless
    /// --split-seed is given).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seed of the folds and the validation split alone (default: --seed), so runs that differ in
    /// --seed are tested and validated on the same groups (members of an ensemble).
    #[arg(long)]
    pub split_seed: Option<u64>,
    /// Groups (speakers/actors/records) held out as the test set, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub holdout: Vec<String>,
    /// Fraction of the remaining examples (whole groups) used for validation.
    #[arg(long, default_value_t = 0.15)]
    pub val_fraction: f64,
    /// K-fold cross-validation grouped by speaker/record (writes one checkpoint per fold and a
    /// `.cv.json` report) instead of one split.
    #[arg(long, default_value_t = 1)]
    pub folds: usize,
    /// Keep/rename classes: `a,b,c` or `from=to,...`.
    #[arg(long)]
    pub classes: Option<String>,
    /// Use only these groups (comma separated), e.g. for a quick subset.
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Use at most this many examples per class and group.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Turn off augmentation (speed 0.85-1.15, random spectral tilt, white noise at 10-40 dB SNR).
    #[arg(long)]
    pub no_augment: bool,
    /// Speed perturbation range: factors drawn from [1 - x, 1 + x].
    #[arg(long, default_value_t = 0.15)]
    pub speed_perturbation: f64,
    /// Lowest SNR of the added white noise (half of the crops, SNR drawn from [x, 40] dB, 40
    /// or more disables it). The SNR is relative to the whole crop, whose RMS loud events set
    /// (S1 and S2 in a heart recording), so at low SNRs the noise can cover quiet evidence
    /// between them, such as a murmur.
    #[arg(long, default_value_t = 10.0)]
    pub min_snr_db: f64,
    /// Largest spectral tilt |a| of y[t] = x[t] - a x[t-1] (0 disables).
    #[arg(long, default_value_t = 0.7)]
    pub tilt: f64,
    /// SpecAugment on the waveform: remove a random band of up to this fraction of the
    /// spectrum (half of the crops) and silence up to two spans of up to this fraction of the
    /// crop (half of the crops). 0 disables.
    #[arg(long, default_value_t = 0.0)]
    pub drop: f64,
    /// Keep each recording's average feature level (no per-recording standardisation of the
    /// features before attention pooling): for tasks where a steady level is the evidence.
    #[arg(long)]
    pub no_standardize: bool,
    /// Statistics pooling: the head also reads each channel's standard deviation over time,
    /// under the attention weights (attentive statistics pooling) or, with mean pooling,
    /// uniform ones.
    #[arg(long)]
    pub pooling_std: bool,
    /// Temporal context before pooling (not in the paper): pool the front-end frames by 4,
    /// then four residual dilated convolutions (128 channels, kernel 3, dilations 1-2-4-8),
    /// so the pooled frames see the order of sounds over ~31 of them.
    #[arg(long)]
    pub context: bool,
    /// Validate and keep an exponential moving average of the weights over about this many
    /// epochs (Polyak averaging) instead of the last step's weights: steadier checkpoints on
    /// small sets, where the model swings between epochs.
    #[arg(long, value_parser = positive_f64)]
    pub average_epochs: Option<f64>,
    /// Kernel length of each FIR block, comma separated and odd (M13: 511,127). The
    /// architectures were sized for 16 kHz speech: at 2 kHz, 511 taps span 255 ms.
    #[arg(long, value_delimiter = ',')]
    pub taps: Vec<usize>,
    /// Band-pass filters of each FIR block, comma separated (M13: 128,32). Fewer, wider bands
    /// average over a voice's harmonics, which say more about who speaks than how.
    #[arg(long, value_delimiter = ',')]
    pub filters: Vec<usize>,
    /// Keep the FIR bands at their mel initialisation (only the windows learn): the ablation
    /// of learning the bands.
    #[arg(long)]
    pub fixed_bands: bool,
    /// Widths of the head's hidden layers, comma separated (default: the architecture's, M13
    /// 256,256). Each is a LayerNorm and a linear layer; a smaller head has fewer weights to
    /// fit the training speakers with.
    #[arg(long, value_delimiter = ',')]
    pub head_hidden: Vec<usize>,
    /// Window and hop of the logmel/mfcc front-ends in milliseconds, e.g. `25,10` (default:
    /// 512 and 128 samples, sized for 16 kHz speech).
    #[arg(long, value_delimiter = ',', value_parser = positive_f64)]
    pub spectral_frame_ms: Vec<f64>,
    /// After validation has chosen the epoch, train again from the same seed on the training
    /// and validation groups together, stop at that epoch and keep that model (the first
    /// model is kept beside it as `<out>.selected.iconnet`). Test groups stay unseen.
    #[arg(long)]
    pub refit: bool,
    /// Weight each class's loss by the inverse of its share of the training examples, for
    /// unbalanced sets (RAVDESS has half as many neutral utterances as of each other emotion).
    #[arg(long)]
    pub balanced_loss: bool,
    /// What picks the checkpoint among the epochs: `uar` (highest validation UAR, MAcc for
    /// heart sounds; the earliest epoch wins a tie) or `loss` (lowest class-balanced
    /// cross-entropy on the validation recordings: finer steps than UAR on small sets).
    #[arg(long, default_value = "uar")]
    pub select_by: Selection,
    /// Dropout before the head's output layer (0 turns it off).
    #[arg(long, default_value_t = 0.1, value_parser = unit_interval)]
    pub dropout: f64,
    /// NLReLU's beta in every FIR block, `ln(1 + beta max(0, x))`: 1 is the paper's (nearly
    /// linear on the band envelopes of a unit-RMS input); 100-1000 makes the features log
    /// energies over the top 40-60 dB of each band.
    #[arg(long, default_value_t = 1.0, value_parser = positive_f64)]
    pub nlrelu_beta: f64,
    /// Pool only over frames within this many dB of the clip's loudest (silence gets no
    /// pooling weight), e.g. 30 for speech. Default: every frame.
    #[arg(long, value_parser = positive_f64)]
    pub active_frames_db: Option<f64>,
    /// Stack each FIR block's bands relative to the frame's mean over them, plus that mean as
    /// one channel (statistics pooling then sees the spectrum's shape apart from its level).
    #[arg(long)]
    pub relative_bands: bool,
    /// Heart sounds: give the layers after the front-end each frame's heart-cycle phase (S1,
    /// systole, S2, diastole, one-hot from the clip's segmentation) as four more channels.
    #[arg(long)]
    pub cycle_phases: bool,
    /// Knowledge distillation: a trained model or ensemble (bundled name or path) whose
    /// averaged probabilities on each training crop are a second target. Only the members
    /// whose cards name exactly this split's test groups teach it (with --folds, each fold's:
    /// the fold models of earlier runs with the same --folds and --split-seed), so no teacher
    /// has seen the test recordings; a split without test groups is taught by every member.
    #[arg(long)]
    pub teacher: Option<String>,
    /// Weight of the teacher's soft cross-entropy (the labels' cross-entropy gets 1 - this).
    #[arg(long, default_value_t = 0.5, value_parser = unit_interval)]
    pub distill_weight: f64,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Data folder (any layout `train` reads).
    pub data: PathBuf,
    /// Bundled model name or checkpoint path; several (comma separated or repeated) evaluate
    /// their ensemble: the class probabilities of the members averaged per recording.
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<String>,
    /// Also write each recording's class probabilities to this CSV file
    /// (file, group, true class, predicted class, one column per class).
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Evaluate only these groups (speakers/actors/records), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Keep/rename classes as in `train --classes`.
    #[arg(long)]
    pub classes: Option<String>,
    /// At most this many examples per class and group (as in `train --limit`).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
    /// Evaluate on the test groups named in the model card (reproduces its test figures).
    #[arg(long, conflicts_with = "groups")]
    pub card_test_groups: bool,
    /// Score only the middle this many seconds of each recording (shorter ones whole), each
    /// excerpt normalised on its own as a file of that length would be: how much sound the
    /// model needs. The figures can go into an ensemble manifest's `by_length`.
    #[arg(long, value_parser = positive_f64)]
    pub excerpt_seconds: Option<f64>,
}

/// A number in [0, 1) (clap value parser).
fn unit_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a number from 0 up to (not including) 1, got '{text}'"
        )),
    }
}

/// A finite number above zero (clap value parser).
fn positive_f64(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a number above 0, got '{text}'")),
    }
}

fn non_negative_f32(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected a number of 0 or more, got '{text}'")),
    }
}

/// Directory of the bundled models.
pub fn bundled_models_dir() -> PathBuf {
    std::env::var_os("ICONNET_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets"))
        .join("models")
}

/// Bundled models in preference order (heart first).
pub const BUNDLED: &[&str] = &["heart", "emotion", "digits"];

/// The bundled model called `name` in `dir`: its ensemble manifest if it has one, else its
/// checkpoint.
pub fn bundled_model(dir: &Path, name: &str) -> Option<PathBuf> {
    [ensemble::EXTENSION, "iconnet"]
        .iter()
        .map(|ext| dir.join(format!("{name}.{ext}")))
        .find(|p| p.is_file())
}

/// Resolves `--model`: an existing path (checkpoint or ensemble manifest), or the name of a
/// bundled model.
pub fn resolve_model(name: Option<&str>) -> Result<PathBuf, String> {
    let dir = bundled_models_dir();
    match name {
        Some(n) if Path::new(n).is_file() => Ok(PathBuf::from(n)),
        Some(n) => bundled_model(&dir, n).ok_or_else(|| {
            format!(
                "{n}: no such checkpoint or ensemble file and no bundled model of that name in {}",
                dir.display()
            )
        }),
        None => BUNDLED
            .iter()
            .find_map(|n| bundled_model(&dir, n))
            .ok_or_else(|| format!("no bundled trained model in {}; pass --model PATH", dir.display())),
    }
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Some(Command::Predict(args)) => predict(args, cli.backend),
        Some(Command::Train(args)) => train(*args, cli.backend),
        Some(Command::Eval(args)) => eval(args, cli.backend),
        Some(Command::Card {
            model,
            note,
            clear_notes,
            name,
        }) => card(&model, &note, clear_notes, name.as_deref()),
        Some(Command::Filters { model }) => filters(&model),
        Some(Command::Open { file, model }) => open_app(model.as_deref(), Some(file), cli.backend),
        Some(Command::Explain(args)) => explain_report(args, cli.backend),
        Some(Command::Live(args)) => live(args, cli.backend),
        None => open_app(None, None, cli.backend),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// The bundled recording the app opens with.
pub fn default_recording() -> PathBuf {
    bundled_models_dir()
        .parent()
        .map(|assets| assets.join(crate::app::DEFAULT_RECORDING))
        .unwrap_or_else(|| PathBuf::from(crate::app::DEFAULT_RECORDING))
}

fn open_app(model: Option<&str>, file: Option<PathBuf>, choice: BackendChoice) -> Result<i32, String> {
    let model = resolve_model(model)?;
    let file = match file {
        Some(f) => Some(f),
        None => Some(default_recording()).filter(|p| p.is_file()),
    };
    crate::app::run(crate::app::AppOptions {
        model,
        file,
        backend: choice,
        screenshot: std::env::var_os("ICONNET_SCREENSHOT").map(PathBuf::from),
    })?;
    Ok(0)
}

fn live(args: LiveArgs, choice: BackendChoice) -> Result<i32, String> {
    use crate::live::{InputSpec, LiveConfig, LiveEvent, LiveSession};
    let path = resolve_model(args.model.as_deref())?;
    let backend = backend::select(choice)?;
    let (model, view) = crate::app::worker::load_model(&path, &backend.device, &backend.description)?;
    let mut config = LiveConfig::for_model(&model);
    if let Some(w) = args.window {
        config.window_s = w;
    }
    config.hop_s = args.hop;
    if args.no_smoothing {
        config.smoothing = 0.0;
    }
    if !args.quiet_below_db.is_finite() {
        return Err(format!(
            "--quiet-below-db {}: needs a level in dB",
            args.quiet_below_db
        ));
    }
    config.quiet_below_dbfs = args.quiet_below_db;
    if let Some(margin) = args.quiet_above_floor_db {
        config.quiet_above_floor_db = (margin > 0.0).then_some(margin);
    }
    config.grad_cam = match args.heatmap {
        Some(h) => h == LiveHeatmap::GradCam,
        None => {
            crate::explain::attribution::HeatmapMethod::default_for(model.config())
                == crate::explain::attribution::HeatmapMethod::GradCam
        }
    };
    config.record = args.record.clone();
    let input = match (&args.input_file, &args.device) {
        (Some(f), _) => InputSpec::File(f.clone()),
        (None, d) => InputSpec::Device(d.clone()),
    };
    if !args.headless {
        crate::app::live_view::run(crate::app::live_view::LiveOptions {
            model_path: path,
            model: view,
            device: backend.device,
            input,
            config,
            exit_at_end: args.exit_at_end,
            backend: choice,
        })?;
        return Ok(0);
    }
    let explainer = match config.grad_cam {
        true => Some(crate::explain::attribution::load_for_attribution(
            &path,
            &backend.device,
        )?),
        false => None,
    };
    let session = LiveSession::start(model, explainer, input, config, || {});
    let mut failed = false;
    while let Ok(event) = session.events.recv() {
        match event {
            LiveEvent::Started { description, rate } => {
                eprintln!(
                    "live: {description}, {rate} Hz -> model {} Hz",
                    view.card().config.sample_rate
                )
            }
            LiveEvent::Frame(f) => {
                let mut line = explain::export::probabilities_json("live input", view.name(), &f.analysis);
                line["t"] = json!(f.end_s);
                line["latency_ms"] = json!(f.latency_ms);
                line["real_time_factor"] = json!(f.real_time_factor);
                line["skipped_windows"] = json!(f.skipped_windows);
                line["level_dbfs"] = json!(f.level_dbfs);
                line["noise_floor_dbfs"] = json!(f.noise_floor_dbfs);
                line["quiet"] = json!(f.quiet);
                line["held"] = json!(f.held);
                if let Some(map) = &f.grad_cam {
                    line["grad_cam"] = json!({ "class": map.class, "weights": map.values });
                }
                println!("{line}");
            }
            LiveEvent::Error(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
            LiveEvent::Stopped(s) => {
                println!(
                    "{}",
                    json!({
                        "summary": {
                            "recording": s.recording.map(|p| p.display().to_string()),
                            "samples": s.samples,
                            "source_rate": s.source_rate,
                            "dropped": s.dropped,
                            "frames": s.frames,
                            "skipped_windows": s.skipped_windows,
                        }
                    })
                );
                break;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn explain_report(args: ExplainArgs, choice: BackendChoice) -> Result<i32, String> {
    let path = resolve_model(args.model.as_deref())?;
    let backend = backend::select(choice)?;
    let request = crate::app::report::ReportRequest {
        file: &args.file,
        model: &path,
        out: &args.out,
        class: args.class.as_deref(),
        images: !args.no_images,
        ig_steps: args.ig_steps,
    };
    let (files, warnings) =
        crate::app::report::write_report(&request, &backend.device, &backend.description)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    for f in &files {
        println!("{}", f.display());
    }
    Ok(if warnings.iter().any(|w| w.starts_with("views not rendered")) {
        1
    } else {
        0
    })
}

/// Loads the `--model` list (empty: the default bundled model) onto `device` as one ensemble:
/// every checkpoint is a member, every manifest adds its members.
fn load_model_list(names: &[String], device: &burn::tensor::Device) -> Result<Ensemble, String> {
    let names: Vec<Option<&str>> = if names.is_empty() {
        vec![None]
    } else {
        names.iter().map(|m| Some(m.as_str())).collect()
    };
    let parts = names
        .into_iter()
        .map(|name| Ensemble::load(&resolve_model(name)?, device))
        .collect::<Result<Vec<_>, String>>()?;
    Ensemble::join(parts)
}

/// `heart (assets/models/heart.ensemble, 5 members)`.
fn describe_model(e: &Ensemble) -> String {
    if e.len() > 1 {
        format!("{} ({}, {} members)", e.name, e.path.display(), e.len())
    } else {
        format!("{} ({})", e.name, e.path.display())
    }
}

fn predict(args: PredictArgs, choice: BackendChoice) -> Result<i32, String> {
    let backend = backend::select(choice)?;
    let ensemble = load_model_list(&args.model, &backend.device)?;
    let model_name = ensemble.name.clone();
    if !args.json {
        eprintln!(
            "model {}, backend {}",
            describe_model(&ensemble),
            backend.description
        );
    }
    let mut results = Vec::new();
    let mut failed = 0;
    for file in &args.files {
        match ensemble.load_recording(file) {
            Ok((samples, decoded)) => {
                let a = explain::analyse_ensemble(&ensemble, &samples)?;
                let cycles = ensemble
                    .config()
                    .is_heart_sound_model()
                    .then(|| heart_cycle::segment_heart_cycles(&samples, ensemble.config().sample_rate));
                for w in &decoded.warnings {
                    eprintln!("warning: {}: {w}", file.display());
                }
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let cards = || ensemble.members.iter().map(|m| &m.card);
                let seen = checkpoint::cards_that_saw(cards(), &stem);
                let held_out = checkpoint::cards_that_never_saw(cards(), &stem);
                if let (Some((group, n)), false) = (&seen, args.json) {
                    let vote = explain::held_out_vote(&a, &held_out, group)
                        .map(|v| format!("; {v}"))
                        .unwrap_or_default();
                    eprintln!(
                        "note: {}: {group} trained or validated {n} of the {} member(s): not a held-out prediction{vote} (held-out figures: iconnet eval --card-test-groups)",
                        file.display(),
                        ensemble.len()
                    );
                }
                if args.json {
                    let mut result =
                        explain::export::probabilities_json(&file.display().to_string(), &model_name, &a);
                    result["attention"] = json!({ "times_s": a.times_s, "weights": a.attention });
                    if let Some((group, n)) = &seen {
                        let held_out_probabilities = a.probabilities_of(&held_out).map(|p| {
                            a.classes
                                .iter()
                                .zip(p)
                                .map(|(c, p)| (c.clone(), json!(p)))
                                .collect::<serde_json::Map<_, _>>()
                        });
                        result["seen_in_training"] = json!({
                            "group": group,
                            "members": n,
                            "held_out_members": held_out.len(),
                            "held_out_probabilities": held_out_probabilities,
                        });
                    }
                    if let Some(cycles) = &cycles {
                        result["heart_cycle"] = heart_cycle::cycles_json(
                            cycles.as_ref().map_err(String::as_str),
                            &a.attention,
                            &a.times_s,
                        );
                    }
                    if !decoded.warnings.is_empty() {
                        result["warnings"] = json!(decoded.warnings);
                    }
                    results.push(result);
                } else {
                    let probs: Vec<String> = a
                        .classes
                        .iter()
                        .zip(&a.probabilities)
                        .map(|(c, p)| format!("{c} {p:.3}"))
                        .collect();
                    let votes = if a.member_probabilities.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "  ({} of {} members)",
                            a.members_voting_for(a.top_class),
                            a.member_probabilities.len()
                        )
                    };
                    println!(
                        "{}: {} ({:.1} %)  [{}]{votes}",
                        file.display(),
                        a.classes[a.top_class],
                        100.0 * a.probabilities[a.top_class],
                        probs.join(", ")
                    );
                    match &cycles {
                        Some(Ok(c)) => println!(
                            "  heart cycle: {}; attention on {}",
                            c.summary(),
                            heart_cycle::shares_summary(&heart_cycle::shares_by_phase(
                                c,
                                &a.attention,
                                &a.times_s
                            ))
                        ),
                        Some(Err(e)) => println!("  heart cycle: not found: {e}"),
                        None => {}
                    }
                }
            }
            Err(e) => {
                failed += 1;
                if args.json {
                    results.push(json!({ "file": file.display().to_string(), "error": e.error.to_string() }));
                } else {
                    eprintln!("error: {e}");
                }
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?
        );
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

fn eval(args: EvalArgs, choice: BackendChoice) -> Result<i32, String> {
    let backend = backend::select(choice)?;
    let ensemble = load_model_list(&args.model, &backend.device)?;
    let members = &ensemble.members;
    let model_classes = ensemble.config().classes.clone();
    let mut data = dataset::discover(&args.data)?;
    if let Some(spec) = &args.classes {
        data = data.map_classes(spec)?;
    }
    // The model's index of each of the data's classes: the same classes, or (`--classes`
    // naming some of the model's classes) a subset, where a recording's prediction is the
    // model's most probable class among the subset.
    let model_index: Vec<usize> = data
        .classes
        .iter()
        .map(|c| model_classes.iter().position(|m| m == c))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            format!(
                "{}: the model's classes ({}) are not the data's ({}); use --classes",
                ensemble.path.display(),
                model_classes.join(", "),
                data.classes.join(", ")
            )
        })?;
    let classes = data.classes.clone();
    let subset_of_model = classes != model_classes;
    if subset_of_model {
        eprintln!(
            "scoring {} of the model's {} classes ({}): each recording gets the most probable of them",
            classes.len(),
            model_classes.len(),
            classes.join(", ")
        );
    }
    let among = |p: &[f32]| -> Vec<f32> {
        let picked: Vec<f32> = model_index.iter().map(|&i| p[i]).collect();
        let total: f32 = picked.iter().sum();
        if subset_of_model && total > 0.0 {
            picked.iter().map(|v| v / total).collect()
        } else {
            picked
        }
    };
    let mut groups = args.groups.clone();
    // Out of fold: which members score each test group (None: every member scores all).
    let mut out_of_fold: Option<OutOfFold> = None;
    if args.card_test_groups {
        let (test, folds) = card_test_groups(members)?;
        groups = test;
        out_of_fold = folds;
    }
    let examples = subset(data.examples, &groups, args.limit);
    if examples.is_empty() {
        return Err("no examples to evaluate (check --groups)".into());
    }
    let group_of: HashMap<&Path, &str> = examples
        .iter()
        .map(|e| (e.path.as_path(), e.group.as_str()))
        .collect();
    let rate = ensemble.config().sample_rate;
    let (mut clips, mut errors) = trainer::load_clips(&examples, rate);
    if let Some(seconds) = args.excerpt_seconds {
        let length = ((seconds * rate as f64).round() as usize).max(1);
        let (excerpts, empty) = middle_excerpts(clips, length);
        clips = excerpts;
        errors.extend(empty.iter().map(|p| {
            format!(
                "{}: no signal in its middle {seconds} s, nothing to analyse",
                p.display()
            )
        }));
    }
    for e in &errors {
        eprintln!("skipped: {e}");
    }
    let truth: Vec<usize> = clips.iter().map(|c| c.label).collect();
    let mut sum = vec![vec![0f32; model_classes.len()]; clips.len()];
    let mut votes = vec![0usize; clips.len()];
    let mut per_fold = Vec::new();
    let all_members = [(0..members.len()).collect::<Vec<_>>()];
    let folds = out_of_fold.as_ref().map_or(&all_members[..], |o| &o.folds[..]);
    for (f, fold) in folds.iter().enumerate() {
        let mine: Vec<usize> = (0..clips.len())
            .filter(|&c| {
                out_of_fold.as_ref().is_none_or(|o| {
                    let group = group_of.get(clips[c].path.as_path()).copied().unwrap_or("");
                    o.fold_of.get(group) == Some(&f)
                })
            })
            .collect();
        let own: Vec<trainer::Clip>;
        let fold_clips = if mine.len() == clips.len() {
            &clips[..]
        } else {
            own = mine.iter().map(|&c| clips[c].clone()).collect();
            &own[..]
        };
        for &i in fold {
            let member = &members[i];
            eprintln!(
                "model {} ({}), backend {}, {} recordings",
                member.card.name,
                member.path.display(),
                backend.description,
                mine.len()
            );
            let probabilities = trainer::clip_probabilities(&member.model, fold_clips);
            for (&c, p) in mine.iter().zip(&probabilities) {
                sum[c].iter_mut().zip(p).for_each(|(a, v)| *a += v);
                votes[c] += 1;
            }
        }
        if out_of_fold.is_some() {
            // Each recording is in one fold, so its sum holds only this fold's members.
            let t: Vec<usize> = mine.iter().map(|&c| truth[c]).collect();
            let p: Vec<usize> = mine
                .iter()
                .map(|&c| crate::explain::argmax(&among(&sum[c])))
                .collect();
            per_fold.push(Metrics::compute(&t, &p, &classes));
        }
    }
    for (acc, &n) in sum.iter_mut().zip(&votes) {
        acc.iter_mut().for_each(|a| *a /= n.max(1) as f32);
    }
    let sum: Vec<Vec<f32>> = sum.iter().map(|p| among(p)).collect();
    let predicted: Vec<usize> = sum.iter().map(|p| crate::explain::argmax(p)).collect();
    let metrics = Metrics::compute(&truth, &predicted, &classes);
    if let Some(out) = &args.predictions {
        let mut csv = format!("file,group,true,predicted,{}\n", classes.join(","));
        for (((clip, &t), &p), probs) in clips.iter().zip(&truth).zip(&predicted).zip(&sum) {
            let cells: Vec<String> = probs.iter().map(|v| format!("{v:.6}")).collect();
            csv.push_str(&format!(
                "{},{},{},{},{}\n",
                clip.path.display(),
                group_of.get(clip.path.as_path()).copied().unwrap_or(""),
                classes[t],
                classes[p],
                cells.join(",")
            ));
        }
        std::fs::write(out, csv).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    let summary = (!per_fold.is_empty()).then(|| fold_summary(&per_fold));
    if args.json {
        let report = match &summary {
            Some(summary) => json!({ "folds": per_fold, "summary": summary, "pooled": metrics }),
            None => serde_json::to_value(&metrics).map_err(|e| e.to_string())?,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        if let Some(summary) = &summary {
            println!("out of fold: each recording scored by the members whose cards list it as a test group");
            for (fold, m) in folds.iter().zip(&per_fold) {
                let names: Vec<&str> = fold.iter().map(|&i| members[i].card.name.as_str()).collect();
                println!("  {}: {}", names.join(" + "), m.summary());
            }
            for line in fold_summary_lines(summary) {
                println!("{line}");
            }
            print!("  pooled: ");
        } else if members.len() > 1 {
            println!("ensemble of {} models (probabilities averaged)", members.len());
        }
        println!("{}", metrics.summary());
        println!(
            "confusion (rows: true, columns: predicted): {}",
            classes.join(" ")
        );
        for (class, row) in classes.iter().zip(&metrics.confusion) {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:>5}")).collect();
            println!("{class:>12} {}", cells.join(""));
        }
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// The middle `length` samples of each clip (a shorter clip whole), normalised again as the
/// loader normalises a file; clips whose excerpt has no signal are returned by path instead.
fn middle_excerpts(clips: Vec<trainer::Clip>, length: usize) -> (Vec<trainer::Clip>, Vec<PathBuf>) {
    let mut kept = Vec::with_capacity(clips.len());
    let mut empty = Vec::new();
    for mut clip in clips {
        if clip.samples.len() > length {
            let start = (clip.samples.len() - length) / 2;
            clip.samples = clip.samples[start..start + length].to_vec();
            if crate::audio::is_flat(&clip.samples) {
                empty.push(clip.path);
                continue;
            }
            crate::audio::normalize(&mut clip.samples);
        }
        kept.push(clip);
    }
    (kept, empty)
}

/// Out-of-fold evaluation: the members grouped into folds (members whose cards list the same
/// test groups: one fold of several runs with the same `--split-seed`), and the fold that
/// scores each test group.
struct OutOfFold {
    folds: Vec<Vec<usize>>,
    fold_of: HashMap<String, usize>,
}

/// The test groups named in the members' cards. Members that all share them (runs on the same
/// fold) are all scored on them. Otherwise members with the same test groups form a fold,
/// folds must have disjoint test groups (the folds of one or more cross-validation runs), and
/// each fold's members score only that fold's groups, out of fold. Anything else would let a
/// member vote on a recording it trained on.
fn card_test_groups(members: &[ensemble::Member]) -> Result<(Vec<String>, Option<OutOfFold>), String> {
    let lists = members
        .iter()
        .map(|m| {
            m.card
                .groups("test_groups")
                .map(|g| g.into_iter().map(String::from).collect::<Vec<_>>())
                .ok_or_else(|| format!("{}: the model card lists no test groups", m.path.display()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if lists.iter().all(|l| *l == lists[0]) {
        return Ok((lists[0].clone(), None));
    }
    let mut folds: Vec<Vec<usize>> = Vec::new();
    for (i, list) in lists.iter().enumerate() {
        match folds.iter_mut().find(|f| lists[f[0]] == *list) {
            Some(fold) => fold.push(i),
            None => folds.push(vec![i]),
        }
    }
    let mut fold_of: HashMap<String, usize> = HashMap::new();
    for (f, fold) in folds.iter().enumerate() {
        for g in &lists[fold[0]] {
            if let Some(other) = fold_of.insert(g.clone(), f)
                && other != f
            {
                return Err(format!(
                    "{}: its card's test groups overlap those of {} ({g}) without being the same; ensemble members must share their test groups (one fold of runs with the same --split-seed) or have disjoint ones (the folds of one cross-validation run)",
                    members[fold[0]].path.display(),
                    members[folds[other][0]].path.display()
                ));
            }
        }
    }
    let mut groups: Vec<String> = fold_of.keys().cloned().collect();
    groups.sort();
    Ok((groups, Some(OutOfFold { folds, fold_of })))
}

fn card(model: &str, notes: &[String], clear_notes: bool, name: Option<&str>) -> Result<i32, String> {
    let path = resolve_model(Some(model))?;
    let edit = !notes.is_empty() || clear_notes || name.is_some();
    let value = if ensemble::is_manifest(&path) {
        let mut manifest = ensemble::Manifest::read(&path)?;
        if edit {
            if clear_notes {
                manifest.notes.clear();
            }
            manifest.notes.extend(notes.iter().cloned());
            if let Some(n) = name {
                manifest.name = n.to_string();
            }
            manifest.write(&path)?;
        }
        // The members' cards follow the manifest: their data, protocol and figures.
        let e = Ensemble::load(&path, &burn::tensor::Device::flex())?;
        let mut value = serde_json::to_value(&manifest).map_err(|e| e.to_string())?;
        value["member_cards"] = e.members.iter().map(|m| json!(m.card)).collect();
        value
    } else {
        let (model, mut card) =
            checkpoint::load(&path, &burn::tensor::Device::flex()).map_err(|e| e.to_string())?;
        if edit {
            if clear_notes {
                card.notes.clear();
            }
            card.notes.extend(notes.iter().cloned());
            if let Some(n) = name {
                card.name = n.to_string();
            }
            checkpoint::save(&model, &card, &path)?;
        }
        serde_json::to_value(&card).map_err(|e| e.to_string())?
    };
    use std::io::Write;
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    // A closed pipe (`| head`) is not an error.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(0)
}

fn filters(model: &str) -> Result<i32, String> {
    let path = resolve_model(Some(model))?;
    let (_, view) = crate::app::worker::load_model(&path, &burn::tensor::Device::flex(), "flex")?;
    let tables = view.filter_tables();
    // Members with a fixed front-end have no rows; say so rather than leave them out silently,
    // one line per kind of front-end.
    let mut fixed: Vec<(String, Vec<&str>)> = Vec::new();
    for card in view.cards() {
        if let Some(summary) = card.config.fixed_front_end_summary() {
            match fixed.iter_mut().find(|(s, _)| *s == summary) {
                Some((_, names)) => names.push(&card.name),
                None => fixed.push((summary, vec![&card.name])),
            }
        }
    }
    for (summary, names) in fixed {
        let who = match names.as_slice() {
            [one] => one.to_string(),
            [first, .., last] => format!("{} members, {first} to {last}", names.len()),
            [] => continue,
        };
        eprintln!("note: {who}: {summary}; no learned filters to list");
    }
    use std::io::Write;
    // A closed pipe (`| head`) ends the listing quietly.
    let _ = write!(
        std::io::stdout().lock(),
        "{}",
        explain::export::members_filters_csv(&tables)
    );
    Ok(0)
}

/// `a,b,c`, or `N groups` for long lists (records of a heart-sound set).
fn short_list(items: &[String]) -> String {
    if items.len() > 8 {
        format!("{} groups", items.len())
    } else {
        items.join(",")
    }
}

/// Licence and intended-use lines for the model card, by data layout.
fn data_notes(layout: &str) -> Vec<String> {
    let lines: &[&str] = match layout {
        "fsdd" => &[
            "Data: Free Spoken Digit Dataset (Jackson et al., doi:10.5281/zenodo.1342401), CC BY-SA 4.0.",
            "Intended use: demonstrations and tests of the engine; six adult male speakers only.",
        ],
        "ravdess" => &[
            "Data: RAVDESS (Livingstone & Russo 2018, doi:10.1371/journal.pone.0196391), CC BY-NC-SA 4.0.",
            "Licence: trained on CC BY-NC-SA 4.0 data: for non-commercial use only.",
            "Intended use: research and demonstrations of acted emotional speech, not real-world affect.",
        ],
        "crema-d" => &["Data: CREMA-D (Cao et al. 2014), Open Database License."],
        dataset::PHYSIONET_2016 => &[
            "Data: PhysioNet/CinC Challenge 2016 (Liu et al. 2016, doi:10.1088/0967-3334/37/12/2181), ODC-By 1.0.",
            "NOT A MEDICAL DEVICE: research and teaching only; its output is not a diagnosis.",
        ],
        _ => &[],
    };
    lines.iter().map(|s| s.to_string()).collect()
}

fn subset(mut examples: Vec<Example>, groups: &[String], limit: Option<usize>) -> Vec<Example> {
    if !groups.is_empty() {
        examples.retain(|e| groups.contains(&e.group));
    }
    if let Some(limit) = limit {
        let mut counts = std::collections::HashMap::new();
        examples.retain(|e| {
            let c = counts.entry((e.group.clone(), e.label)).or_insert(0usize);
            *c += 1;
            *c <= limit
        });
    }
    examples
}

fn group_list(ex: &[Example]) -> Vec<String> {
    let mut g: Vec<String> = ex.iter().map(|e| e.group.clone()).collect();
    g.sort();
    g.dedup();
    g
}

fn refit_protocol(selection: Selection) -> String {
    format!(
        "split by group (speaker/actor/record): test groups never seen in training; the number of epochs chosen by {} on separate groups in a first run, then the model retrained from the same seed on training + validation groups for that many epochs (--refit)",
        selection.describe()
    )
}

/// What every split of one `train` invocation shares.
struct TrainContext<'a> {
    args: &'a TrainArgs,
    data: &'a dataset::Dataset,
    config: ModelConfig,
    backend: backend::Backend,
    stop: Arc<AtomicBool>,
    command: String,
}

fn train(args: TrainArgs, choice: BackendChoice) -> Result<i32, String> {
    let mut data = dataset::discover(&args.data)?;
    if let Some(spec) = &args.classes {
        data = data.map_classes(spec)?;
    }
    let examples = subset(data.examples.clone(), &args.groups, args.limit);
    let groups: std::collections::BTreeSet<&str> = examples.iter().map(|e| e.group.as_str()).collect();
    for h in &args.holdout {
        if !groups.contains(h.as_str()) {
            return Err(format!("--holdout: no group '{h}' in the data"));
        }
    }
    if args.folds > 1 && !args.holdout.is_empty() {
        return Err("use either --holdout (one split) or --folds (cross-validation), not both".into());
    }
    let sample_rate = match args.sample_rate {
        Some(r) => r,
        None => {
            crate::audio::load(&examples.first().ok_or("no examples")?.path)
                .map_err(|e| e.to_string())?
                .sample_rate
        }
    };
    let mut config = ModelConfig::named(&args.arch, sample_rate, data.classes.clone(), args.pooling)?;
    if args.no_standardize {
        config.normalize_features = false;
    }
    config.pooling_std = args.pooling_std;
    config.dropout = args.dropout;
    config.nlrelu_beta = args.nlrelu_beta;
    config.active_frames_db = args.active_frames_db;
    config.relative_bands = args.relative_bands;
    config.cycle_phases = args.cycle_phases;
    config.context = args.context.then(ContextConfig::standard);
    match args.spectral_frame_ms[..] {
        [] => {}
        [window_ms, hop_ms] => config.set_spectral_frame_ms(window_ms, hop_ms)?,
        _ => return Err("--spectral-frame-ms takes two numbers, window and hop in ms, e.g. 25,10".into()),
    }
    if !args.taps.is_empty() {
        config.set_taps(&args.taps)?;
    }
    if !args.filters.is_empty() {
        config.set_filters(&args.filters)?;
    }
    if args.fixed_bands {
        config.fix_bands()?;
    }
    if !args.head_hidden.is_empty() {
        if args.head_hidden.contains(&0) {
            return Err("--head-hidden: every hidden layer needs a width of at least 1".into());
        }
        config.head_hidden = args.head_hidden.clone();
    }
    config.validate()?;
    let backend = backend::select(choice)?;
    eprintln!(
        "model {} at {sample_rate} Hz, backend {}",
        args.arch, backend.description
    );
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C finishes the current step; the best checkpoint on disk is always complete.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: stopping after this step (Ctrl-C again to quit now)");
        });
    }
    let ctx = TrainContext {
        args: &args,
        data: &data,
        config,
        backend,
        stop,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    if args.folds <= 1 {
        let (test, rest): (Vec<Example>, Vec<Example>) = examples
            .into_iter()
            .partition(|e| args.holdout.contains(&e.group));
        let seeds = Seeds {
            split: args.split_seed.unwrap_or(args.seed),
            train: args.seed,
        };
        train_split(&ctx, rest, test, &args.out, seeds)?;
        return Ok(0);
    }
    cross_validate(&ctx, examples)
}

/// K-fold cross-validation grouped by speaker/record: every fold is a test set once, the
/// checkpoint of each run is chosen on validation groups carved from the other folds.
fn cross_validate(ctx: &TrainContext, examples: Vec<Example>) -> Result<i32, String> {
    let args = ctx.args;
    let split_seed = args.split_seed.unwrap_or(args.seed);
    let folds = dataset::group_folds(&examples, args.folds, split_seed);
    let stem = args.out.with_extension("");
    let mut rows = Vec::new();
    let mut truth_all = Vec::new();
    let mut predicted_all = Vec::new();
    for k in 0..args.folds {
        if ctx.stop.load(Ordering::SeqCst) {
            return Err("interrupted".into());
        }
        let (mut test, mut rest) = (Vec::new(), Vec::new());
        for (e, &f) in examples.iter().zip(&folds) {
            if f == k {
                test.push(e.clone())
            } else {
                rest.push(e.clone())
            }
        }
        let out = PathBuf::from(format!("{}.fold{}.iconnet", stem.display(), k + 1));
        eprintln!(
            "fold {}/{}: test {} ({} groups)",
            k + 1,
            args.folds,
            test.len(),
            group_list(&test).len()
        );
        let seeds = Seeds {
            split: split_seed + k as u64,
            train: args.seed + k as u64,
        };
        let (metrics, truth, predicted) = train_split(ctx, rest, test.clone(), &out, seeds)?;
        truth_all.extend(truth);
        predicted_all.extend(predicted);
        rows.push(json!({ "fold": k + 1, "checkpoint": out.display().to_string(),
            "test_groups": group_list(&test), "metrics": metrics }));
    }
    let per_fold: Vec<Metrics> = rows
        .iter()
        .map(|r| serde_json::from_value(r["metrics"].clone()).expect("metrics"))
        .collect();
    let summary = fold_summary(&per_fold);
    let pooled = Metrics::compute(&truth_all, &predicted_all, &ctx.data.classes);
    let report = json!({
        "data": args.data.display().to_string(),
        "layout": ctx.data.layout,
        "arch": args.arch,
        "pooling": args.pooling,
        "pooling_summary": ctx.config.pooling_summary(),
        "command": ctx.command,
        "protocol": format!("{}-fold cross-validation grouped by speaker/actor/record (stratified by the groups' majority label); per fold, the checkpoint is chosen by {} on {:.0} % of the training groups, never on the test fold{}", args.folds, args.select_by.describe(), 100.0 * args.val_fraction, if args.refit { "; then, per fold, the model is retrained on training + validation groups for the chosen number of epochs (--refit) and that model is tested" } else { "" }),
        "folds": rows,
        "summary": summary,
        "pooled": pooled,
    });
    let report_path = PathBuf::from(format!("{}.cv.json", stem.display()));
    std::fs::write(
        &report_path,
        serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", report_path.display()))?;
    println!("{}-fold cross-validation, {} groups", args.folds, ctx.data.layout);
    for (k, m) in per_fold.iter().enumerate() {
        println!("  fold {}: {}", k + 1, m.summary());
    }
    for line in fold_summary_lines(&summary) {
        println!("{line}");
    }
    println!("  pooled: {}", pooled.summary());
    println!("wrote {}", report_path.display());
    // The fold models vote together as one model; its name is the run's.
    let manifest_path = stem.with_extension(ensemble::EXTENSION);
    let name = stem
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ensemble".into());
    let members = (1..=args.folds)
        .map(|k| format!("{name}.fold{k}.iconnet"))
        .collect();
    let note = format!(
        "The {} fold models of `{}`, their probabilities averaged. Every recording of the data was a test recording of one member: `iconnet eval DATA --model {} --card-test-groups` scores each with that member only (the out-of-fold figures above); on new recordings all members vote.",
        args.folds,
        ctx.command,
        manifest_path.display()
    );
    ensemble::Manifest::new(&name, members, vec![note]).write(&manifest_path)?;
    println!("wrote {}", manifest_path.display());
    Ok(0)
}

/// Seeds of one split: `split` draws the validation groups, `train` everything else.
#[derive(Clone, Copy)]
struct Seeds {
    split: u64,
    train: u64,
}

/// Test metrics of one split, with the labels and predictions behind them (for pooling).
type SplitOutcome = (Option<Metrics>, Vec<usize>, Vec<usize>);

/// The training augmentation the command line asks for.
fn augment_from_args(args: &TrainArgs) -> Augment {
    if args.no_augment {
        return Augment::NONE;
    }
    Augment {
        speed: args.speed_perturbation.clamp(0.0, 0.5),
        noise_probability: if args.min_snr_db >= Augment::MAX_SNR_DB {
            0.0
        } else {
            Augment::DEFAULT.noise_probability
        },
        snr_low_db: args.min_snr_db.min(Augment::MAX_SNR_DB),
        tilt: args.tilt.clamp(0.0, 0.99),
        band_drop: args.drop.clamp(0.0, 0.5),
        time_drop: args.drop.clamp(0.0, 0.5),
    }
}

/// A teacher and the checkpoints it was read from.
struct LoadedTeacher {
    teacher: trainer::Teacher,
    sources: Vec<String>,
}

/// The members of the model or ensemble `name` that may teach a split whose test groups are
/// `test_groups`: those tested on exactly these groups (none of them trained or chose its
/// checkpoint on one), or all of them when the split has no test groups.
fn load_teacher(
    name: &str,
    test_groups: &[String],
    config: &ModelConfig,
    weight: f32,
    device: &burn::tensor::Device,
) -> Result<LoadedTeacher, String> {
    let path = resolve_model(Some(name))?;
    let loaded = Ensemble::load(&path, device).map_err(|e| format!("--teacher: {e}"))?;
    let wanted: std::collections::BTreeSet<&str> = test_groups.iter().map(String::as_str).collect();
    let (mut models, mut sources) = (Vec::new(), Vec::new());
    for member in loaded.members {
        let c = &member.model.config;
        if c.classes != config.classes || c.sample_rate != config.sample_rate {
            return Err(format!(
                "{}: a teacher must have this run's classes and sample rate ({} at {} Hz); it has {} at {} Hz",
                member.path.display(),
                config.classes.join(","),
                config.sample_rate,
                c.classes.join(","),
                c.sample_rate
            ));
        }
        let tested: std::collections::BTreeSet<&str> = member
            .card
            .groups("test_groups")
            .unwrap_or_default()
            .into_iter()
            .collect();
        if !wanted.is_empty() && tested != wanted {
            continue;
        }
        if let Some(g) = wanted.iter().find(|g| member.card.saw_group(g)) {
            return Err(format!(
                "{}: this teacher trained on {g}, a test group of this split",
                member.path.display()
            ));
        }
        sources.push(member.path.display().to_string());
        models.push(member.model);
    }
    if models.is_empty() {
        return Err(format!(
            "{}: no member's card names this split's test groups ({}), so every member may have trained on them; teach with the fold models of a run with the same --folds and --split-seed",
            path.display(),
            short_list(test_groups)
        ));
    }
    eprintln!(
        "teacher: {} of {} ({}), distillation weight {weight}",
        models.len(),
        path.display(),
        sources.join(", ")
    );
    Ok(LoadedTeacher {
        teacher: trainer::Teacher { models, weight },
        sources,
    })
}

/// Trains on `rest` (validation groups carved out of it), writes the best checkpoint to `out`,
/// and evaluates it on `test` if any. Returns the test metrics with truth and predictions.
fn train_split(
    ctx: &TrainContext,
    rest: Vec<Example>,
    test: Vec<Example>,
    out: &Path,
    seeds: Seeds,
) -> Result<SplitOutcome, String> {
    let args = ctx.args;
    let seed = seeds.train;
    let (train_ex, val_ex) = dataset::split_groups(&rest, args.val_fraction, seeds.split);
    let test_groups = group_list(&test);
    eprintln!(
        "{} layout, {} classes; train {} ({} groups), validation {} ({} groups: {}), test {} ({})",
        ctx.data.layout,
        ctx.data.classes.len(),
        train_ex.len(),
        group_list(&train_ex).len(),
        val_ex.len(),
        group_list(&val_ex).len(),
        short_list(&group_list(&val_ex)),
        test.len(),
        if test.is_empty() {
            "none".into()
        } else {
            short_list(&test_groups)
        }
    );
    let rate = ctx.config.sample_rate;
    let (train_clips, e1) = trainer::load_clips(&train_ex, rate);
    let (val_clips, e2) = trainer::load_clips(&val_ex, rate);
    let (test_clips, e3) = trainer::load_clips(&test, rate);
    for e in e1.iter().chain(&e2).chain(&e3) {
        eprintln!("skipped: {e}");
    }
    let teacher = args
        .teacher
        .as_deref()
        .map(|name| {
            load_teacher(
                name,
                &test_groups,
                &ctx.config,
                args.distill_weight as f32,
                &ctx.backend.device,
            )
        })
        .transpose()?;
    let teacher_info = teacher.as_ref().map(|t| {
        json!({
            "model": args.teacher,
            "members": t.sources,
            "weight": args.distill_weight,
        })
    });
    let augment = augment_from_args(args);
    let options = TrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size.max(1),
        crop_seconds: args.crop_seconds,
        crops_per_recording: args.crops_per_recording.max(1),
        max_lr: args.lr,
        weight_decay: args.weight_decay,
        clip_norm: args.clip_norm,
        seed,
        out: out.to_path_buf(),
        show_progress: !args.quiet,
        augment,
        stop_after_epoch: None,
        average_epochs: args.average_epochs,
        balanced_loss: args.balanced_loss,
        teacher: teacher.map(|t| Arc::new(t.teacher)),
        selection: args.select_by,
    };
    let name = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let augmentation = augment.describe();
    let training_info = |extra: Vec<(&str, Value)>| {
        let mut info: std::collections::BTreeMap<String, Value> = [
            ("data", json!(args.data.display().to_string())),
            ("layout", json!(ctx.data.layout)),
            ("command", json!(ctx.command)),
            ("seed", json!(seed)),
            ("split_seed", json!(seeds.split)),
            ("epochs", json!(args.epochs)),
            ("batch_size", json!(args.batch_size)),
            ("crop_seconds", json!(args.crop_seconds)),
            ("crops_per_recording", json!(args.crops_per_recording.max(1))),
            ("augmentation", json!(augmentation)),
            ("weight_average", json!(args.average_epochs.map_or("none (the last step's weights)".to_string(), |e| format!("exponential moving average over ~{e} epochs, validated and kept instead of the last step's weights")))),
            ("optimizer", json!(format!("RAdam lr {} wd {}, one-cycle, global grad-norm clip {}", args.lr, args.weight_decay, args.clip_norm))),
            ("loss", json!(match (args.balanced_loss, &args.teacher) {
                (_, Some(_)) => format!("{:.2} x cross-entropy{} + {:.2} x cross-entropy against the teacher's averaged probabilities on each training crop (knowledge distillation)", 1.0 - args.distill_weight, if args.balanced_loss { " with class weights N / (K n_c)" } else { "" }, args.distill_weight),
                (true, None) => "cross-entropy, class weights N / (K n_c) from the training examples".to_string(),
                (false, None) => "cross-entropy".to_string(),
            })),
            ("train_groups", json!(group_list(&train_ex))),
            ("validation_groups", json!(group_list(&val_ex))),
            ("test_groups", json!(test_groups)),
            ("protocol", json!(format!("split by group (speaker/actor/record): test groups never seen in training; checkpoint chosen by {} on separate groups", args.select_by.describe()))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(teacher) = &teacher_info {
            info.insert("teacher".into(), teacher.clone());
        }
        for (k, v) in extra {
            info.insert(k.to_string(), v);
        }
        info
    };
    let notes = data_notes(ctx.data.layout);
    let make_card = |m: &IConNet| {
        let mut c = ModelCard::new(&name, m);
        c.training = training_info(vec![]);
        c.notes = notes.clone();
        c
    };
    let report = trainer::train(
        &ctx.config,
        &train_clips,
        &val_clips,
        &options,
        make_card,
        &ctx.backend.device,
        ctx.stop.clone(),
    )?;
    let validation = report.best_validation.clone().ok_or("no validation figure")?;
    eprintln!(
        "best epoch {} (validation {}), {:.1} samples/s, {:.0} s{}",
        report.best_epoch,
        validation.summary(),
        report.samples_per_second,
        report.seconds,
        if report.interrupted { ", interrupted" } else { "" }
    );
    // Tests `model` on the held-out groups (if any), prints and records the figures in `card`.
    let test_into_card = |model: &IConNet, card: &mut ModelCard, label: &str| -> SplitOutcome {
        if test_clips.is_empty() {
            return (None, Vec::new(), Vec::new());
        }
        let predicted = trainer::predict_clips(model, &test_clips);
        let truth: Vec<usize> = test_clips.iter().map(|c| c.label).collect();
        let metrics = Metrics::compute(&truth, &predicted, &model.config.classes);
        println!(
            "held-out test ({}){label}: {}",
            short_list(&test_groups),
            metrics.summary()
        );
        card.metrics.insert("test".into(), json!(metrics));
        (Some(metrics), truth, predicted)
    };
    // Re-open the best checkpoint, test it on the held-out groups, and record the figures.
    let (best, mut card) = checkpoint::load(out, &ctx.backend.device).map_err(|e| e.to_string())?;
    card.metrics.insert("validation".into(), json!(validation));
    let mut run_info = vec![
        ("best_epoch", json!(report.best_epoch)),
        ("selected_by", json!(args.select_by.describe())),
        // The whole curve, so that a reader can see how sharply the chosen epoch stands out.
        (
            "validation_by_epoch",
            json!(
                report
                    .validation_history
                    .iter()
                    .enumerate()
                    .map(|(e, m)| json!({
                        "epoch": e + 1,
                        "uar": m.uar,
                        "balanced_log_loss": m.balanced_log_loss,
                    }))
                    .collect::<Vec<_>>()
            ),
        ),
        ("samples_per_second", json!(report.samples_per_second)),
        ("train_seconds", json!(report.seconds)),
        ("backend", json!(ctx.backend.description)),
    ];
    card.training = training_info(run_info.clone());
    let refit = args.refit && !report.interrupted;
    let selected_test = test_into_card(&best, &mut card, if refit { " before refit" } else { "" });
    checkpoint::save(&best, &card, out)?;
    if !refit {
        println!("wrote {}", out.display());
        return Ok(selected_test);
    }

    // Refit: the chosen number of epochs, on training and validation groups together.
    let selected_path = out.with_extension("selected.iconnet");
    checkpoint::save(&best, &card, &selected_path)?;
    let refit_groups = group_list(&[train_ex.clone(), val_ex.clone()].concat());
    let groups = match short_list(&refit_groups) {
        long if refit_groups.len() > 8 => long,
        short => format!("{} groups: {short}", refit_groups.len()),
    };
    eprintln!(
        "refit: {} epochs on {} recordings ({groups})",
        report.best_epoch,
        train_clips.len() + val_clips.len(),
    );
    let all_clips: Vec<_> = train_clips.into_iter().chain(val_clips).collect();
    let refit_options = TrainOptions {
        stop_after_epoch: Some(report.best_epoch),
        ..options
    };
    let refit_info = json!({
        "epochs": report.best_epoch,
        "groups": refit_groups,
        "chosen_by": format!("{} on {} in a first run (kept as {})", args.select_by.describe(), short_list(&group_list(&val_ex)), selected_path.display()),
        "first_run_test": selected_test.0,
    });
    let refit_card = |m: &IConNet| {
        let mut c = ModelCard::new(&name, m);
        c.training = training_info(vec![
            ("protocol", json!(refit_protocol(args.select_by))),
            ("refit", refit_info.clone()),
        ]);
        c.notes = notes.clone();
        c
    };
    let refit_report = trainer::train(
        &ctx.config,
        &all_clips,
        &[],
        &refit_options,
        refit_card,
        &ctx.backend.device,
        ctx.stop.clone(),
    )
    .map_err(|e| format!("{e}; {} holds the first run's model", out.display()))?;
    let (model, mut card) = checkpoint::load(out, &ctx.backend.device).map_err(|e| e.to_string())?;
    // The validation figure describes the choice of epoch; the refit model saw those groups.
    card.metrics
        .insert("validation_of_first_run".into(), json!(validation));
    run_info.extend([
        ("protocol", json!(refit_protocol(args.select_by))),
        ("refit", refit_info),
        ("refit_samples_per_second", json!(refit_report.samples_per_second)),
        ("refit_seconds", json!(refit_report.seconds)),
    ]);
    card.training = training_info(run_info);
    let result = test_into_card(&model, &mut card, " after refit");
    checkpoint::save(&model, &card, out)?;
    println!("wrote {} (first run: {})", out.display(), selected_path.display());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_separated_lists_parse() {
        let cli = Cli::try_parse_from([
            "iconnet",
            "train",
            "data",
            "--spectral-frame-ms",
            "64,16",
            "--taps",
            "255,63",
            "--head-hidden",
            "32",
            "--filters",
            "32,16",
        ])
        .unwrap();
        let Some(Command::Train(args)) = cli.command else {
            panic!("not a train command");
        };
        assert_eq!(args.spectral_frame_ms, vec![64.0, 16.0]);
        assert_eq!(args.taps, vec![255, 63]);
        assert_eq!(args.head_hidden, vec![32]);
        assert_eq!(args.filters, vec![32, 16]);
        assert!(Cli::try_parse_from(["iconnet", "train", "data", "--spectral-frame-ms", "64,-1"]).is_err());
    }

    #[test]
    fn excerpts_are_the_middle_of_each_clip_normalised_again() {
        let clip = |samples: Vec<f32>, name: &str| trainer::Clip {
            samples,
            label: 0,
            path: PathBuf::from(name),
        };
        let clips = vec![
            clip(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "long"),
            clip(vec![0.5, -0.5, 0.5], "short"),
            clip(vec![1.0, 1.0, 5.0, 5.0, 1.0, 1.0], "flat-middle"),
        ];
        let (kept, empty) = middle_excerpts(clips, 4);
        // The middle 4 of 6 start at 1: 1, 2, 3, 4 (mean 2.5, RMS deviation sqrt(1.25)).
        let s = 1.25f32.sqrt();
        let want = [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s];
        assert!(
            kept[0]
                .samples
                .iter()
                .zip(want)
                .all(|(a, b)| (a - b).abs() < 1e-6)
        );
        // Shorter than the excerpt: whole and untouched.
        assert_eq!(kept[1].samples, vec![0.5, -0.5, 0.5]);
        assert_eq!(kept.len(), 3);
        let (_, empty_too) = middle_excerpts(vec![clip(vec![1.0, 1.0, 5.0, 5.0, 1.0, 1.0], "x")], 2);
        assert_eq!(empty_too, vec![PathBuf::from("x")]);
        assert!(empty.is_empty());
        let cli = Cli::try_parse_from(["iconnet", "eval", "d", "--excerpt-seconds", "2.5"]).unwrap();
        let Some(Command::Eval(args)) = cli.command else {
            panic!("not an eval command");
        };
        assert_eq!(args.excerpt_seconds, Some(2.5));
        assert!(Cli::try_parse_from(["iconnet", "eval", "d", "--excerpt-seconds", "0"]).is_err());
    }

    #[test]
    fn live_takes_a_negative_quiet_level_and_a_heatmap() {
        let cli = Cli::try_parse_from([
            "iconnet",
            "live",
            "--quiet-below-db",
            "-60",
            "--heatmap",
            "grad-cam",
            "--quiet-above-floor-db",
            "0",
        ])
        .unwrap();
        let Some(Command::Live(args)) = cli.command else {
            panic!("not a live command");
        };
        assert_eq!(args.quiet_below_db, -60.0);
        assert_eq!(args.heatmap, Some(LiveHeatmap::GradCam));
        assert_eq!(args.quiet_above_floor_db, Some(0.0));
        let cli = Cli::try_parse_from(["iconnet", "live"]).unwrap();
        let Some(Command::Live(args)) = cli.command else {
            panic!("not a live command");
        };
        assert_eq!((args.quiet_below_db, args.heatmap), (-50.0, None));
        assert!(Cli::try_parse_from(["iconnet", "live", "--heatmap", "attention"]).is_err());
        assert!(Cli::try_parse_from(["iconnet", "live", "--quiet-above-floor-db", "-3"]).is_err());
    }
}
