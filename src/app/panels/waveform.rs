//! The waveform with the heatmap as a colour band behind it, drawn by per-pixel min/max
//! decimation, with zoom/pan, a time ruler, the click cursor and the playhead.

use std::sync::Arc;

use eframe::egui::{self, Color32, RichText, TextureHandle, TextureOptions, Ui};
use egui_plot::{Line, PlotImage, PlotPoint, PlotPoints, Text};

use super::heart_cycle::phase_colour;
use super::{colour_legend, hover_point, seconds_label, time_plot};
use crate::app::colormap::rgba_image;
use crate::app::context::ViewContext;
use crate::app::session::Loaded;
use crate::dsp::heart_cycle::PhaseSpan;
use crate::explain::attribution::Heatmap;

/// Most S1/S2 markers drawn (about 100 heart cycles); zoomed out further, none are.
const MAX_SOUND_MARKERS: usize = 200;
/// Most S1/S2 markers labelled with their names.
const MAX_SOUND_LABELS: usize = 40;

/// Widest heatmap texture; longer heatmaps are averaged down.
const MAX_TEXTURE_COLUMNS: usize = 4096;

#[derive(Default)]
pub struct WaveformPanel {
    /// Texture of the heatmap, with the opacity and smoothing it was built with.
    texture: Option<(Arc<Heatmap>, f32, f32, TextureHandle)>,
}

impl WaveformPanel {
    pub fn ui(&mut self, ui: &mut Ui, view: &mut ViewContext, data: &Loaded) {
        let Some(recording) = &data.recording else {
            ui.centered_and_justified(|ui| ui.label("Open a recording (File > Open, or drop a file here)"));
            return;
        };
        let heatmap = data.heatmap.as_ref();
        match heatmap {
            Some(h) => {
                let title = if view.heatmap_smoothing_s > 0.0 {
                    format!(
                        "{}, display smoothed over {:.2} s",
                        h.title(),
                        view.heatmap_smoothing_s
                    )
                } else {
                    h.title()
                };
                colour_legend(ui, &title, "low", "high");
            }
            None => {
                ui.label(egui::RichText::new("heatmap: waiting for the analysis").small());
            }
        }
        let texture =
            heatmap.map(|h| self.texture(ui.ctx(), h, view.heatmap_opacity, view.heatmap_smoothing_s));
        let pyramid = recording.waveform.clone();
        let rate = recording.rate as f64;
        let duration = recording.duration_s();
        let peak = pyramid.range_min_max(0, pyramid.samples().len());
        let amp = (peak.0.abs().max(peak.1.abs()) as f64).max(1e-6) * 1.05;
        let request = view.request_visible_s.take();
        let (cursor, playhead) = (view.cursor_s, view.playhead_s);
        let heat_extent = heatmap.map(|h| h.values.len() as f64 * h.frame_s);
        let response = time_plot("waveform")
            .default_x_bounds(0.0, duration.max(0.001))
            .default_y_bounds(-amp, amp)
            .y_axis_label("amplitude (normalised)")
            .label_formatter(|hover| {
                let p = hover_point(hover);
                Some(format!("{} | {:.3}", seconds_label(p.x), p.y))
            })
            .show(ui, |plot| {
                if let Some((a, b)) = request {
                    plot.set_plot_bounds_x(a..=b);
                }
                if let (Some(tex), Some(extent)) = (&texture, heat_extent) {
                    plot.image(
                        PlotImage::new(
                            "heatmap",
                            tex.id(),
                            PlotPoint::new(extent / 2.0, 0.0),
                            [extent as f32, (2.0 * amp) as f32],
                        )
                        .allow_hover(false),
                    );
                }
                let bounds = plot.plot_bounds();
                let columns = plot.transform().frame().width().max(1.0) as usize;
                let cols = pyramid.columns(rate, bounds.min()[0], bounds.max()[0], columns);
                let points: Vec<[f64; 2]> = cols
                    .iter()
                    .flat_map(|&(t, lo, hi)| [[t, lo as f64], [t, hi as f64]])
                    .collect();
                plot.line(
                    Line::new("waveform", PlotPoints::new(points))
                        .color(Color32::from_rgb(120, 200, 255))
                        .width(1.0)
                        .allow_hover(false),
                );
                if let Some(Ok(cycles)) = &recording.heart_cycles {
                    heart_sound_markers(plot, cycles.sounds_between(bounds.min()[0], bounds.max()[0]), amp);
                }
                super::time_markers(plot, cursor, playhead);
                plot.pointer_coordinate()
            });
        let bounds = response.transform.bounds();
        view.visible_s = (bounds.min()[0], bounds.max()[0]);
        if response.response.clicked()
            && let Some(p) = response.inner
        {
            view.cursor_s = Some(p.x.clamp(0.0, duration));
        }
    }

    /// The heatmap as a one-row texture, rebuilt when the heatmap, opacity or smoothing changes.
    fn texture(
        &mut self,
        ctx: &egui::Context,
        heatmap: &Arc<Heatmap>,
        opacity: f32,
        smoothing_s: f32,
    ) -> TextureHandle {
        if let Some((h, o, s, t)) = &self.texture
            && Arc::ptr_eq(h, heatmap)
            && *o == opacity
            && *s == smoothing_s
        {
            return t.clone();
        }
        let max_cols = MAX_TEXTURE_COLUMNS.min(ctx.input(|i| i.max_texture_side));
        let values = heatmap.smoothed_normalised(smoothing_s as f64);
        let (rows, _) = super::shrink_columns(&[values], max_cols);
        let row = &rows[0];
        let rgba = rgba_image(row, (opacity.clamp(0.0, 1.0) * 255.0) as u8);
        let image = egui::ColorImage::from_rgba_unmultiplied([row.len().max(1), 1], &rgba);
        let t = ctx.load_texture("heatmap", image, TextureOptions::NEAREST);
        self.texture = Some((heatmap.clone(), opacity, smoothing_s, t.clone()));
        t
    }
}

/// The S1 and S2 found in the recording, as bars along the top of the waveform, named when few
/// are in view.
fn heart_sound_markers(plot: &mut egui_plot::PlotUi<'_>, sounds: &[PhaseSpan], amp: f64) {
    if sounds.len() > MAX_SOUND_MARKERS {
        return;
    }
    let y = 0.9 * amp;
    for s in sounds {
        let colour = phase_colour(s.phase);
        plot.line(
            Line::new(
                s.phase.label(),
                PlotPoints::new(vec![[s.start_s, y], [s.end_s, y]]),
            )
            .color(colour)
            .width(4.0)
            .allow_hover(false),
        );
        if sounds.len() <= MAX_SOUND_LABELS {
            plot.text(
                Text::new(
                    s.phase.label(),
                    PlotPoint::new((s.start_s + s.end_s) / 2.0, 0.97 * amp),
                    RichText::new(s.phase.label()).small(),
                )
                .color(colour),
            );
        }
    }
}
