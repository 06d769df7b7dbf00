//! Perceptually ordered colour scale for heatmaps (an approximation of matplotlib's "inferno").

use eframe::egui::Color32;

/// Anchor colours of the scale at 0, 1/8, ..., 1.
const INFERNO: [[u8; 3]; 9] = [
    [0, 0, 4],
    [31, 12, 72],
    [85, 15, 109],
    [136, 34, 106],
    [186, 54, 85],
    [227, 89, 51],
    [249, 140, 10],
    [249, 201, 50],
    [252, 255, 164],
];

/// Colour of `v` in `[0, 1]` (clamped), linearly interpolated between anchors.
pub fn inferno(v: f32) -> Color32 {
    let v = if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 };
    let x = v * (INFERNO.len() - 1) as f32;
    let i = (x.floor() as usize).min(INFERNO.len() - 2);
    let f = x - i as f32;
    let lerp = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * f).round() as u8;
    let (a, b) = (INFERNO[i], INFERNO[i + 1]);
    Color32::from_rgb(lerp(a[0], b[0]), lerp(a[1], b[1]), lerp(a[2], b[2]))
}

/// RGBA bytes of a `rows x cols` image from values in `[0, 1]`, row 0 at the top.
pub fn rgba_image(values: &[f32], alpha: u8) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| {
            let c = inferno(v);
            [c.r(), c.g(), c.b(), alpha]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_midpoint_match_the_anchors() {
        assert_eq!(inferno(0.0), Color32::from_rgb(0, 0, 4));
        assert_eq!(inferno(1.0), Color32::from_rgb(252, 255, 164));
        assert_eq!(inferno(0.5), Color32::from_rgb(186, 54, 85));
        assert_eq!(inferno(f32::NAN), inferno(0.0));
        assert_eq!(inferno(7.0), inferno(1.0));
    }

    #[test]
    fn brightness_increases_along_the_scale() {
        let luma = |c: Color32| 0.299 * c.r() as f32 + 0.587 * c.g() as f32 + 0.114 * c.b() as f32;
        let l: Vec<f32> = (0..=20).map(|i| luma(inferno(i as f32 / 20.0))).collect();
        assert!(l.windows(2).all(|w| w[1] > w[0]), "{l:?}");
    }
}
