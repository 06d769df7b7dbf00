//! The learned spectrogram: the first block's band energies over time, one row per filter
//! ordered by centre frequency, on the waveform's time axis. Clicking a row selects its filter.

use eframe::egui::{self, Color32, TextureHandle, TextureOptions, Ui};
use egui_plot::{Axis, PlotImage, PlotPoint, Span};

use std::sync::Arc;

use super::{colour_legend, hover_point, seconds_label, shrink_columns, time_plot};
use crate::app::colormap::rgba_image;
use crate::app::context::ViewContext;
use crate::app::session::Loaded;
use crate::explain::Analysis;

const MAX_TEXTURE_COLUMNS: usize = 4096;

#[derive(Default)]
pub struct SpectrogramPanel {
    /// Texture of the analysis it was built from (kept alive so identity stays meaningful).
    texture: Option<(Arc<Analysis>, TextureHandle)>,
}

/// Band energies `[filters][frames]` re-ordered by `order` (lowest centre first) and scaled to
/// `[0, 1]` between the 1st and 99.5th percentiles.
pub fn ordered_normalised(energy: &[Vec<f32>], order: &[usize]) -> Vec<Vec<f32>> {
    let mut all: Vec<f32> = energy
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if all.is_empty() {
        return order.iter().map(|&i| vec![0.0; energy[i].len()]).collect();
    }
    all.sort_by(f32::total_cmp);
    let lo = all[all.len() / 100];
    let hi = all[((all.len() - 1) as f64 * 0.995) as usize].max(lo + 1e-6);
    order
        .iter()
        .map(|&i| {
            energy[i]
                .iter()
                .map(|v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0))
                .collect()
        })
        .collect()
}

impl SpectrogramPanel {
    pub fn ui(&mut self, ui: &mut Ui, view: &mut ViewContext, data: &Loaded) {
        let (Some(model), Some(analysis)) = (&data.model, &data.analysis) else {
            ui.label("learned spectrogram: waiting for the analysis");
            return;
        };
        let Some(energy) = &analysis.band_energy else {
            ui.label("This model has no learned front-end (log-Mel/MFCC baseline): no learned spectrogram.");
            return;
        };
        // The analysis carries the first member's band energies (an ensemble's members have
        // their own filters), so rows and the selection refer to that member.
        let shows_selection = view.member == 0;
        let title = if model.is_ensemble() {
            format!(
                "first-block band energy (NLReLU) of member {}",
                model.member(0).label()
            )
        } else {
            "first-block band energy (NLReLU)".to_string()
        };
        let model = model.member(0);
        // Filter index of each row, lowest centre frequency first (bottom row).
        let order = model.first_block_by_centre();
        let order: Vec<usize> = order
            .into_iter()
            .filter(|&i| model.filters[i].filter < energy.len())
            .collect();
        if order.is_empty() {
            return;
        }
        let rows: Vec<usize> = order.iter().map(|&i| model.filters[i].filter).collect();
        colour_legend(ui, &title, "low", "high");
        let frames = energy[0].len();
        let extent = frames as f64 * analysis.band_energy_frame_s;
        let texture = self.texture(ui.ctx(), analysis, energy, &rows);
        let centres: Vec<f64> = order.iter().map(|&i| model.filters[i].centre_hz()).collect();
        let n_rows = order.len() as f64;
        let selected_row = view
            .selected_filter
            .filter(|_| shows_selection)
            .and_then(|f| order.iter().position(|&i| i == f));
        let (cursor, playhead) = (view.cursor_s, view.playhead_s);
        let response = time_plot("spectrogram")
            .default_y_bounds(0.0, n_rows)
            .y_axis_label("band centre")
            .y_axis_formatter({
                let centres = centres.clone();
                move |m, _| {
                    let row = m.value.floor();
                    if row < 0.0 || row as usize >= centres.len() {
                        String::new()
                    } else {
                        format!("{:.0} Hz", centres[row as usize])
                    }
                }
            })
            .label_formatter({
                let centres = centres.clone();
                move |hover| {
                    let p = hover_point(hover);
                    let row = p.y.floor().clamp(0.0, (centres.len() - 1) as f64) as usize;
                    Some(format!("{} | band {:.0} Hz", seconds_label(p.x), centres[row]))
                }
            })
            .show(ui, |plot| {
                plot.image(
                    PlotImage::new(
                        "band energy",
                        texture.id(),
                        PlotPoint::new(extent / 2.0, n_rows / 2.0),
                        [extent as f32, n_rows as f32],
                    )
                    .allow_hover(false),
                );
                if let Some(r) = selected_row {
                    plot.span(
                        Span::new("selected filter", r as f64..=r as f64 + 1.0)
                            .axis(Axis::Y)
                            .fill(Color32::from_rgba_unmultiplied(80, 200, 255, 40))
                            .border_color(Color32::from_rgb(80, 200, 255)),
                    );
                }
                super::time_markers(plot, cursor, playhead);
                plot.pointer_coordinate()
            });
        if response.response.clicked()
            && let Some(p) = response.inner
        {
            let row = p.y.floor();
            if row >= 0.0 && (row as usize) < order.len() {
                view.selected_filter = Some(order[row as usize]);
            }
            view.cursor_s = Some(p.x.max(0.0));
        }
    }

    fn texture(
        &mut self,
        ctx: &egui::Context,
        analysis: &Arc<Analysis>,
        energy: &[Vec<f32>],
        rows: &[usize],
    ) -> TextureHandle {
        if let Some((a, t)) = &self.texture
            && Arc::ptr_eq(a, analysis)
        {
            return t.clone();
        }
        // Average down to the texture width first: normalising 128 x 150k values costs far more.
        let max_cols = MAX_TEXTURE_COLUMNS.min(ctx.input(|i| i.max_texture_side));
        let (shrunk, _) = shrink_columns(energy, max_cols);
        let shrunk = ordered_normalised(&shrunk, rows);
        let width = shrunk[0].len().max(1);
        // Image row 0 is the top: highest band first.
        let values: Vec<f32> = shrunk.iter().rev().flatten().copied().collect();
        let image =
            egui::ColorImage::from_rgba_unmultiplied([width, shrunk.len()], &rgba_image(&values, 255));
        let t = ctx.load_texture("learned-spectrogram", image, TextureOptions::LINEAR);
        self.texture = Some((analysis.clone(), t.clone()));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_order_and_span_zero_to_one() {
        let energy = vec![vec![0.0, 1.0, 2.0], vec![10.0, 10.0, 10.0]];
        let out = ordered_normalised(&energy, &[1, 0]);
        assert_eq!(out[0], vec![1.0, 1.0, 1.0]);
        assert_eq!(out[1][0], 0.0);
        assert!(out[1][2] > out[1][1] && out[1][1] > 0.0);
    }
}
