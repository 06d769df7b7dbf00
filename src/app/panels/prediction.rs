//! Class probabilities as bars, the top class with its confidence, the model, and for heart
//! models a plain-language caution.

use eframe::egui::{self, Color32, RichText, Ui};

use crate::app::session::Loaded;

/// Shown under every heart-sound prediction.
pub const HEART_CAUTION: &str = "This is not a diagnosis. IConNet Studio is a research tool, not a medical device: \
the model was trained on 400 PhysioNet 2016 recordings and can be wrong. Clinical decisions need a clinician.";

pub fn ui(ui: &mut Ui, data: &Loaded) {
    let Some(model) = &data.model else {
        ui.label("no model loaded");
        return;
    };
    ui.label(RichText::new(format!("model: {}", model.name())).strong());
    let Some(analysis) = &data.analysis else {
        ui.label("no analysis yet");
        return;
    };
    let top = analysis.top_class;
    ui.label(
        RichText::new(format!(
            "{}  ({:.1} %)",
            analysis.classes[top],
            100.0 * analysis.probabilities[top]
        ))
        .size(22.0)
        .color(if model.is_heart_model() && analysis.classes[top] == "abnormal" {
            Color32::from_rgb(255, 170, 80)
        } else {
            Color32::from_rgb(140, 220, 140)
        }),
    );
    let mut order: Vec<usize> = (0..analysis.classes.len()).collect();
    order.sort_by(|&a, &b| analysis.probabilities[b].total_cmp(&analysis.probabilities[a]));
    egui::Grid::new("probabilities").num_columns(2).show(ui, |ui| {
        for i in order {
            let p = analysis.probabilities[i];
            ui.label(&analysis.classes[i]);
            ui.add(
                egui::ProgressBar::new(p)
                    .desired_width(140.0)
                    .text(format!("{:.1} %", 100.0 * p))
                    .fill(if i == top {
                        Color32::from_rgb(70, 130, 200)
                    } else {
                        Color32::from_rgb(70, 80, 100)
                    }),
            );
            ui.end_row();
        }
    });
    if model.is_heart_model() {
        ui.add_space(4.0);
        ui.label(RichText::new(HEART_CAUTION).small().italics());
    }
}
