//! Headless reports (`iconnet explain`): the app's own panels rendered offscreen (egui_kittest,
//! wgpu; lavapipe when there is no GPU) to PNG, plus the JSON/CSV data behind them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use eframe::egui;
use egui_kittest::Harness;

use super::context::ViewContext;
use super::decimate::MinMaxPyramid;
use super::panels::filters::FiltersPanel;
use super::panels::spectrogram::SpectrogramPanel;
use super::panels::waveform::WaveformPanel;
use super::session::{HeartCycleView, Loaded, RecordingView};
use crate::dsp::heart_cycle;
use crate::explain::attribution::{self, Heatmap, HeatmapMethod};
use crate::explain::{self, export};

/// What `iconnet explain` writes.
pub struct ReportRequest<'a> {
    pub file: &'a Path,
    pub model: &'a Path,
    pub out: &'a Path,
    /// Class for Grad-CAM and integrated gradients (default: the predicted class).
    pub class: Option<&'a str>,
    /// Render the PNG views (the data files are always written).
    pub images: bool,
    /// Integrated-gradients steps.
    pub ig_steps: usize,
}

/// Writes the report; returns the files written. Image rendering problems are returned as
/// warnings (the data files are still written).
pub fn write_report(
    req: &ReportRequest,
    device: &Device,
    backend: &str,
) -> Result<(Vec<PathBuf>, Vec<String>), String> {
    std::fs::create_dir_all(req.out).map_err(|e| format!("{}: {e}", req.out.display()))?;
    let (model, view) = super::worker::load_model(req.model, device, backend)?;
    let rate = model.config().sample_rate;
    let (samples, decoded) = model.load_recording(req.file).map_err(|e| e.to_string())?;
    let analysis = Arc::new(explain::analyse_ensemble(&model, &samples)?);
    let class = match req.class {
        None => analysis.top_class,
        Some(c) => analysis
            .classes
            .iter()
            .position(|x| x == c)
            .ok_or_else(|| format!("class '{c}' is not one of {}", analysis.classes.join(", ")))?,
    };
    let autodiff = attribution::load_for_attribution(req.model, device)?;
    let mut heatmaps: Vec<Arc<Heatmap>> = vec![Arc::new(attribution::attention(&analysis))];
    let mut methods = vec![HeatmapMethod::GradCam];
    if autodiff.models().any(|m| m.has_input_gradient()) {
        methods.push(HeatmapMethod::IntegratedGradients);
    }
    for method in methods {
        let map = attribution::explain_ensemble(&autodiff, &samples, method, class, req.ig_steps, |_| {})?;
        heatmaps.push(Arc::new(map));
    }
    let mut written = Vec::new();
    let mut write = |name: &str, text: String| -> Result<(), String> {
        let p = req.out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        written.push(p);
        Ok(())
    };
    let file_name = req.file.display().to_string();
    let mut probabilities = export::probabilities_json(&file_name, view.name(), &analysis);
    probabilities["backend"] = backend.into();
    probabilities["warnings"] = decoded.warnings.clone().into();
    write("probabilities.json", pretty(&probabilities))?;
    write("filters.csv", export::members_filters_csv(&view.filter_tables()))?;
    let all: Vec<serde_json::Value> = heatmaps.iter().map(|h| export::heatmap_json(h)).collect();
    write("heatmaps.json", pretty(&serde_json::Value::Array(all)))?;
    for h in &heatmaps {
        write(&format!("{}.csv", slug(h.method)), export::heatmap_csv(h))?;
    }
    write("attention-labels.txt", export::audacity_labels(&heatmaps[0], 0.5))?;
    let heart_cycles =
        HeartCycleView::for_recording(&samples, rate, view.card().config.is_heart_sound_model());
    if let Some(cycles) = &heart_cycles {
        let cycles = cycles.as_ref().map(|c| &c.cycles).map_err(String::as_str);
        let mut json = heart_cycle::cycles_json(cycles, &analysis.attention, &analysis.times_s);
        if let Ok(c) = cycles {
            json["heatmaps"] = heatmaps
                .iter()
                .map(|h| {
                    serde_json::json!({
                        "title": h.title(),
                        "by_phase": heart_cycle::shares_by_phase(c, &h.values, &h.times_s),
                    })
                })
                .collect();
        }
        write("heart-cycle.json", pretty(&json))?;
    }

    let mut warnings = decoded.warnings.clone();
    if req.images {
        let recording = Arc::new(RecordingView {
            path: req.file.to_path_buf(),
            rate,
            original_rate: decoded.sample_rate,
            channels: decoded.channels,
            heart_cycles,
            waveform: Arc::new(MinMaxPyramid::new(samples)),
            warnings: decoded.warnings,
        });
        let base = Loaded {
            model: Some(view),
            recording: Some(recording),
            analysis: Some(analysis),
            heatmap: None,
        };
        match render_views(&base, &heatmaps, req.out) {
            Ok(files) => written.extend(files),
            Err(e) => warnings.push(format!("views not rendered: {e}")),
        }
    }
    Ok((written, warnings))
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn slug(m: HeatmapMethod) -> &'static str {
    match m {
        HeatmapMethod::Attention => "attention",
        HeatmapMethod::GradCam => "grad-cam",
        HeatmapMethod::IntegratedGradients => "integrated-gradients",
    }
}

/// Renders the waveform (once per heatmap), the learned spectrogram, the filter browser and the
/// prediction panel to PNG files in `out`.
pub fn render_views(base: &Loaded, heatmaps: &[Arc<Heatmap>], out: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let duration = base.duration_s().unwrap_or(1.0);
    let mut view = ViewContext::default();
    view.show_all(duration);
    for h in heatmaps {
        let data = Loaded {
            heatmap: Some(h.clone()),
            ..base.clone()
        };
        let mut panel = WaveformPanel::default();
        let mut v = view.clone();
        let path = out.join(format!("waveform-{}.png", slug(h.method)));
        render(egui::vec2(1400.0, 360.0), &path, |ui| panel.ui(ui, &mut v, &data))?;
        files.push(path);
    }
    let mut panel = SpectrogramPanel::default();
    let mut v = view.clone();
    let path = out.join("spectrogram.png");
    render(egui::vec2(1400.0, 420.0), &path, |ui| panel.ui(ui, &mut v, base))?;
    files.push(path);
    let mut panel = FiltersPanel::default();
    let mut v = view.clone();
    let path = out.join("filters.png");
    render(egui::vec2(1400.0, 640.0), &path, |ui| panel.ui(ui, &mut v, base))?;
    files.push(path);
    // The prediction with the first heatmap (the attention), so that a heart recording's panel
    // shows where in the cycle it fell; that section needs the taller image.
    let with_attention = Loaded {
        heatmap: heatmaps.first().cloned(),
        ..base.clone()
    };
    let heart = base.recording.as_ref().is_some_and(|r| r.heart_cycles.is_some());
    let path = out.join("prediction.png");
    let height = if heart { 560.0 } else { 360.0 };
    render(egui::vec2(420.0, height), &path, |ui| {
        super::panels::prediction::ui(ui, &with_attention)
    })?;
    files.push(path);
    Ok(files)
}

/// Draws `draw` in an offscreen egui of `size` points and saves it as PNG.
fn render(size: egui::Vec2, path: &Path, mut draw: impl FnMut(&mut egui::Ui)) -> Result<(), String> {
    let mut harness = Harness::builder().with_size(size).build_ui(|ui| {
        egui::Frame::central_panel(ui.style()).show(ui, |ui| {
            ui.set_min_size(ui.available_size());
            draw(ui)
        });
    });
    // Plots settle their bounds over a couple of frames.
    harness.run_steps(3);
    let image = harness.render()?;
    image.save(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Saves an egui colour image as PNG.
pub fn save_color_image(image: &egui::ColorImage, path: &Path) -> Result<(), String> {
    let [w, h] = image.size;
    let bytes: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|c| c.to_srgba_unmultiplied())
        .collect();
    let img = image::RgbaImage::from_raw(w as u32, h as u32, bytes).ok_or("bad image size")?;
    img.save(path).map_err(|e| e.to_string())
}
