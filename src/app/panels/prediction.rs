//! Class probabilities as bars, the top class with its confidence, the model, and for heart
//! models a plain-language caution.

use eframe::egui::{self, Color32, RichText, Ui};

use crate::app::session::Loaded;
use crate::model::checkpoint::ModelCard;
use crate::train::dataset::groups_are_recordings;

/// Shown under every heart-sound prediction. The number of training records comes from the
/// card, so the caution stays true for a user's own model and for a fold model that never saw
/// its test and validation records. Where a group may be a patient, no count is claimed.
pub fn heart_caution(card: &ModelCard) -> String {
    let by_recording = card
        .training
        .get("layout")
        .and_then(|l| l.as_str())
        .is_some_and(groups_are_recordings);
    // The trainer lists the training groups by name.
    let count = card
        .training
        .get("train_groups")
        .and_then(|g| g.as_array())
        .map(Vec::len);
    let learned_from = match count {
        Some(n) if by_recording => format!("learned from {n} training recordings"),
        _ => "learned from a limited set of recordings".to_string(),
    };
    format!(
        "This is not a diagnosis. IConNet Studio is a research tool, not a medical device: \
the model {learned_from} and can be wrong. Clinical decisions need a clinician."
    )
}

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
        ui.label(RichText::new(heart_caution(&model.card)).small().italics());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, PoolingKind};

    fn card(layout: &str, train_groups: Option<usize>) -> ModelCard {
        let config = ModelConfig::named(
            "tiny",
            2000,
            vec!["normal".into(), "abnormal".into()],
            PoolingKind::Attention,
        )
        .unwrap();
        let model = crate::model::IConNet::new(&config, &burn::tensor::Device::flex());
        let mut card = ModelCard::new("heart", &model);
        card.training.insert("layout".into(), layout.into());
        if let Some(n) = train_groups {
            let names: Vec<String> = (0..n).map(|i| format!("r{i:04}")).collect();
            card.training.insert("train_groups".into(), names.into());
        }
        card
    }

    #[test]
    fn the_caution_counts_the_records_the_model_learned_from() {
        let text = heart_caution(&card("physionet-2016", Some(272)));
        assert!(text.starts_with("This is not a diagnosis."));
        assert!(text.contains("learned from 272 training recordings"), "{text}");
        for text in [
            heart_caution(&card("physionet-2016", None)),
            heart_caution(&card("folder-per-class", Some(12))),
        ] {
            assert!(
                text.contains("learned from a limited set of recordings"),
                "{text}"
            );
            assert!(text.contains("not a medical device"));
        }
    }
}
