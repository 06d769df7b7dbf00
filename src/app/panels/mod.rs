//! One module per view. Each panel draws from [`super::session::Loaded`] and reads/writes the
//! shared [`super::context::ViewContext`].

pub mod filters;
pub mod fixed_bank;
pub mod heart_cycle;
pub mod prediction;
pub mod spectrogram;
pub mod waveform;

use eframe::egui::{self, Color32, Id, Rect, Sense, Stroke, Ui, Vec2};

use super::colormap::inferno;

/// Width of the y axis of time-linked plots, so their time axes line up.
pub const Y_AXIS_WIDTH: f32 = 72.0;

/// Plots sharing this group move their time axes and cursors together.
pub fn time_link() -> Id {
    Id::unique("iconnet-time-axis")
}

/// The plot point under the pointer that a hover label describes.
pub fn hover_point(h: &egui_plot::HoverPosition<'_>) -> egui_plot::PlotPoint {
    match h {
        egui_plot::HoverPosition::NearDataPoint { position, .. } => *position,
        egui_plot::HoverPosition::Elsewhere { position } => *position,
    }
}

/// A plot on the shared time axis: linked zoom, pan and cursor, time-only zoom/drag/scroll,
/// seconds on the x axis, and a fixed y-axis width so the time axes line up.
pub fn time_plot<'a>(id: &str) -> egui_plot::Plot<'a> {
    egui_plot::Plot::new(id)
        .link_axis(time_link(), [true, false])
        .link_cursor(time_link(), [true, false])
        .allow_zoom([true, false])
        .allow_drag([true, false])
        .allow_scroll([true, false])
        .allow_boxed_zoom(false)
        .x_axis_formatter(|m, _| seconds_label(m.value))
        .y_axis_min_width(Y_AXIS_WIDTH)
}

/// The click cursor (white) and the playhead (green) on a time-linked plot.
pub fn time_markers(plot: &mut egui_plot::PlotUi<'_>, cursor: Option<f64>, playhead: Option<f64>) {
    if let Some(t) = cursor {
        plot.vline(
            egui_plot::VLine::new("cursor", t)
                .color(Color32::WHITE)
                .width(1.0),
        );
    }
    if let Some(t) = playhead {
        plot.vline(
            egui_plot::VLine::new("playhead", t)
                .color(Color32::from_rgb(80, 255, 120))
                .width(2.0),
        );
    }
}

/// "1.25 s" style tick labels.
pub fn seconds_label(t: f64) -> String {
    if t.abs() >= 60.0 {
        let m = (t / 60.0).floor();
        format!("{}:{:05.2}", m as i64, t - 60.0 * m)
    } else {
        format!("{t:.2} s")
    }
}

/// A horizontal colour bar for the heatmap scale with its title and end labels.
pub fn colour_legend(ui: &mut Ui, title: &str, low: &str, high: &str) {
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new(title).small());
        ui.label(egui::RichText::new(low).small());
        let (rect, _) = ui.allocate_exact_size(Vec2::new(160.0, 10.0), Sense::hover());
        let steps = 64;
        for i in 0..steps {
            let x0 = rect.left() + rect.width() * i as f32 / steps as f32;
            let x1 = rect.left() + rect.width() * (i + 1) as f32 / steps as f32;
            let r = Rect::from_min_max(egui::pos2(x0, rect.top()), egui::pos2(x1 + 0.5, rect.bottom()));
            ui.painter()
                .rect_filled(r, 0.0, inferno(i as f32 / (steps - 1) as f32));
        }
        ui.painter().rect_stroke(
            rect,
            0.0,
            Stroke::new(1.0, Color32::GRAY),
            egui::StrokeKind::Outside,
        );
        ui.label(egui::RichText::new(high).small());
    });
}

/// Reduces each row of `rows` (equal lengths) to at most `max_cols` columns by averaging.
pub fn shrink_columns(rows: &[Vec<f32>], max_cols: usize) -> (Vec<Vec<f32>>, usize) {
    let cols = rows.first().map(|r| r.len()).unwrap_or(0);
    if cols <= max_cols {
        return (rows.to_vec(), 1);
    }
    let factor = cols.div_ceil(max_cols);
    let out = rows
        .iter()
        .map(|r| {
            r.chunks(factor)
                .map(|c| c.iter().sum::<f32>() / c.len() as f32)
                .collect()
        })
        .collect();
    (out, factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_labels() {
        assert_eq!(seconds_label(1.5), "1.50 s");
        assert_eq!(seconds_label(75.25), "1:15.25");
    }

    #[test]
    fn shrinking_averages_groups_of_columns() {
        let (rows, factor) = shrink_columns(&[vec![1.0, 3.0, 5.0, 7.0, 9.0]], 3);
        assert_eq!(factor, 2);
        assert_eq!(rows, vec![vec![2.0, 6.0, 9.0]]);
    }
}
