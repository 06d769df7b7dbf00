//! State shared by every panel: selection, cursors, visible time range, heatmap choice.

use crate::explain::attribution::HeatmapMethod;

/// Passed mutably to every panel each frame; panels read it and write what the user changed.
#[derive(Clone, Debug)]
pub struct ViewContext {
    /// Ensemble member whose filters the filter views show (0 for a single checkpoint).
    pub member: usize,
    /// Selected filter (index into that member's `MemberView::filters`).
    pub selected_filter: Option<usize>,
    /// Time the user clicked, seconds.
    pub cursor_s: Option<f64>,
    /// Playback position, seconds (while playing).
    pub playhead_s: Option<f64>,
    /// Visible time range of the time-linked views, as last drawn.
    pub visible_s: (f64, f64),
    /// A time range the time-linked views should move to on the next frame.
    pub request_visible_s: Option<(f64, f64)>,
    pub heatmap_method: HeatmapMethod,
    /// Whether the user picked `heatmap_method`; until then each model loaded gets its default
    /// (`HeatmapMethod::default_for`).
    pub heatmap_method_chosen: bool,
    /// Class explained by Grad-CAM / integrated gradients: the analysis's top class until the
    /// user picks one.
    pub heatmap_class: usize,
    /// Whether the user picked `heatmap_class` (kept across recordings of the same model).
    pub heatmap_class_chosen: bool,
    /// Heatmap opacity behind the waveform.
    pub heatmap_opacity: f32,
    /// Display-only moving average of the heatmap, seconds (0 = the values as computed).
    pub heatmap_smoothing_s: f32,
    /// Normalised attribution at or above which a region counts as "high" (label export).
    pub region_threshold: f32,
}

impl Default for ViewContext {
    fn default() -> Self {
        Self {
            member: 0,
            selected_filter: None,
            cursor_s: None,
            playhead_s: None,
            visible_s: (0.0, 1.0),
            request_visible_s: None,
            heatmap_method: HeatmapMethod::Attention,
            heatmap_method_chosen: false,
            heatmap_class: 0,
            heatmap_class_chosen: false,
            heatmap_opacity: 0.85,
            heatmap_smoothing_s: 0.0,
            region_threshold: 0.5,
        }
    }
}

impl ViewContext {
    /// Zooms the time views by `factor` (< 1 zooms in) around `centre_s`, within `[0, duration]`.
    pub fn zoom(&mut self, factor: f64, centre_s: f64, duration_s: f64) {
        let (a, b) = self.visible_s;
        let width = ((b - a) * factor).clamp(0.005, duration_s.max(0.005) * 1.05);
        let frac = if b > a {
            ((centre_s - a) / (b - a)).clamp(0.0, 1.0)
        } else {
            0.5
        };
        let start = centre_s - frac * width;
        self.request_visible_s = Some(clamp_range(start, width, duration_s));
    }

    /// Pans by `fraction` of the visible width.
    pub fn pan(&mut self, fraction: f64, duration_s: f64) {
        let (a, b) = self.visible_s;
        let width = b - a;
        self.request_visible_s = Some(clamp_range(a + fraction * width, width, duration_s));
    }

    pub fn show_all(&mut self, duration_s: f64) {
        self.request_visible_s = Some((0.0, duration_s.max(0.001)));
    }
}

fn clamp_range(start: f64, width: f64, duration_s: f64) -> (f64, f64) {
    let start = start.clamp(0.0, (duration_s - width).max(0.0));
    (start, start + width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_keeps_the_centre_fixed_and_pan_stays_inside() {
        let mut v = ViewContext {
            visible_s: (0.0, 10.0),
            ..Default::default()
        };
        v.zoom(0.5, 5.0, 30.0);
        assert_eq!(v.request_visible_s, Some((2.5, 7.5)));
        v.visible_s = (2.5, 7.5);
        v.pan(-1.0, 30.0);
        assert_eq!(v.request_visible_s, Some((0.0, 5.0)));
        v.visible_s = (25.0, 30.0);
        v.pan(0.5, 30.0);
        assert_eq!(v.request_visible_s, Some((25.0, 30.0)));
    }
}
