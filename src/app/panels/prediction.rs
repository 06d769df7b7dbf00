//! Class probabilities as bars, the top class with its confidence, the model, and for heart
//! models a plain-language caution.

use eframe::egui::{self, Color32, RichText, Ui};

use crate::app::session::{Loaded, ModelView, RecordingView};
use crate::explain::Analysis;
use crate::model::checkpoint::ModelCard;

/// Shown under every heart-sound prediction. The number of training records comes from the
/// card, so the caution stays true for a user's own model and for a fold model that never saw
/// its test and validation records. Where a group may be a patient, no count is claimed.
pub fn heart_caution<'a>(cards: impl IntoIterator<Item = &'a ModelCard>) -> String {
    // The trainer lists the training groups by name; an ensemble learned from their union.
    let mut by_recording = true;
    let mut groups: Option<std::collections::BTreeSet<&str>> = Some(Default::default());
    for card in cards {
        by_recording &= card.groups_are_recordings();
        match (card.groups("train_groups"), groups.as_mut()) {
            (Some(names), Some(set)) => set.extend(names),
            _ => groups = None,
        }
    }
    let learned_from = match groups.map(|g| g.len()) {
        Some(n) if by_recording && n > 0 => format!("learned from {n} training recordings"),
        _ => "learned from a limited set of recordings".to_string(),
    };
    format!(
        "This is not a diagnosis. IConNet Studio is a research tool, not a medical device: \
the model {learned_from} and can be wrong. Clinical decisions need a clinician."
    )
}

/// A warning when the open recording is one the model learned from: its prediction there says
/// little about recordings it has not heard.
pub fn seen_in_training(model: &ModelView, recording: &RecordingView) -> Option<String> {
    let stem = recording.path.file_stem()?.to_string_lossy().into_owned();
    let (group, seen) = model.members_that_saw(&stem)?;
    let held_out = "held-out figures: iconnet eval --card-test-groups";
    let total = model.members.len();
    Some(if group == stem {
        match total {
            1 => format!("{stem} trained or validated this model: not a held-out prediction ({held_out})"),
            _ => format!(
                "{stem} trained or validated {seen} of the {total} members: not a held-out prediction ({held_out})"
            ),
        }
    } else {
        match total {
            1 => format!(
                "{stem} is by {group}, who trained or validated this model: not a held-out prediction ({held_out})"
            ),
            _ => format!(
                "{stem} is by {group}, who trained or validated {seen} of the {total} members: not a held-out prediction ({held_out})"
            ),
        }
    })
}

/// For a recording some members learned from: what the others say of it (see
/// [`crate::explain::held_out_vote`]).
pub fn held_out_vote(model: &ModelView, recording: &RecordingView, analysis: &Analysis) -> Option<String> {
    let stem = recording.path.file_stem()?.to_string_lossy().into_owned();
    let (group, _) = model.members_that_saw(&stem)?;
    let held_out = crate::model::checkpoint::cards_that_never_saw(model.cards(), &stem);
    crate::explain::held_out_vote(analysis, &held_out, &group)
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
    if !analysis.member_probabilities.is_empty() {
        ui.label(format!(
            "ensemble of {} models, probabilities averaged; {} of them favour {}",
            analysis.member_probabilities.len(),
            analysis.members_voting_for(top),
            analysis.classes[top]
        ));
    }
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
    if let Some(text) = data.recording.as_ref().and_then(|r| seen_in_training(model, r)) {
        ui.label(
            RichText::new(text)
                .small()
                .color(Color32::from_rgb(255, 200, 120)),
        );
        if let Some(vote) = data
            .recording
            .as_ref()
            .and_then(|r| held_out_vote(model, r, analysis))
        {
            ui.label(RichText::new(format!("held out: {vote}")).strong());
        }
    }
    super::heart_cycle::ui(ui, data);
    if model.is_heart_model() {
        ui.add_space(4.0);
        ui.label(RichText::new(heart_caution(model.cards())).small().italics());
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

    fn view(cards: Vec<ModelCard>) -> ModelView {
        let members = cards
            .into_iter()
            .enumerate()
            .map(|(i, card)| crate::app::session::MemberView {
                path: format!("heart.fold{}.iconnet", i + 1).into(),
                card,
                filters: Vec::new(),
                taps: Vec::new(),
            })
            .collect();
        ModelView {
            path: "heart.ensemble".into(),
            name: "heart".into(),
            notes: Vec::new(),
            members,
            backend: "flex".into(),
        }
    }

    fn recording(name: &str) -> RecordingView {
        RecordingView {
            path: format!("/data/{name}.wav").into(),
            rate: 1000,
            original_rate: 2000,
            channels: 1,
            waveform: std::sync::Arc::new(crate::app::decimate::MinMaxPyramid::new(vec![0.0; 8])),
            warnings: Vec::new(),
            heart_cycles: None,
        }
    }

    #[test]
    fn a_training_recording_is_flagged_with_the_members_that_learned_from_it() {
        // Members trained on r0000..r0009 and r0000..r0004: r0007 was seen by one, r0002 by both.
        let two = view(vec![
            card("physionet-2016", Some(10)),
            card("physionet-2016", Some(5)),
        ]);
        let text = seen_in_training(&two, &recording("r0007")).unwrap();
        assert!(
            text.starts_with("r0007 trained or validated 1 of the 2 members"),
            "{text}"
        );
        assert!(
            seen_in_training(&two, &recording("r0002"))
                .unwrap()
                .contains("2 of the 2")
        );
        assert!(seen_in_training(&two, &recording("other")).is_none());
        let one = view(vec![card("physionet-2016", Some(10))]);
        let text = seen_in_training(&one, &recording("r0001")).unwrap();
        assert!(text.contains("r0001 trained or validated this model"), "{text}");
        // One folder per class: file names do not give the speaker, so nothing is claimed.
        let speech = view(vec![card("folder-per-class", Some(10))]);
        assert!(seen_in_training(&speech, &recording("r0001")).is_none());
    }

    #[test]
    fn the_members_that_never_saw_a_recording_give_the_held_out_vote() {
        // r0007 was learned by the first member only; r0002 by both; the third member's card
        // does not say its layout, so it cannot vouch for having never seen anything.
        let mut unknown = card("physionet-2016", Some(1));
        unknown.training.remove("layout");
        let three = view(vec![
            card("physionet-2016", Some(10)),
            card("physionet-2016", Some(5)),
            unknown,
        ]);
        let analysis = Analysis {
            classes: vec!["normal".into(), "abnormal".into()],
            probabilities: vec![0.5, 0.5],
            top_class: 0,
            attention: vec![1.0],
            uniform_pooling: false,
            times_s: vec![0.5],
            frame_s: 1.0,
            band_energy: None,
            band_energy_frame_s: 1.0,
            member_probabilities: vec![vec![0.9, 0.1], vec![0.3, 0.7], vec![0.5, 0.5]],
        };
        assert_eq!(
            held_out_vote(&three, &recording("r0007"), &analysis).unwrap(),
            "the member that never saw r0007 says abnormal (70.0 %)"
        );
        assert!(held_out_vote(&three, &recording("r0002"), &analysis).is_none());
        // Nobody saw r0042: no warning, so no held-out line either.
        assert!(held_out_vote(&three, &recording("r0042"), &analysis).is_none());
    }

    #[test]
    fn a_recording_by_a_training_speaker_is_flagged_with_its_speaker() {
        let speakers = |train: &[&str], validation: &[&str]| {
            let mut c = card("ravdess", None);
            c.training.insert("train_groups".into(), train.into());
            c.training.insert("validation_groups".into(), validation.into());
            c
        };
        // Actor 02 trained the first member and validated the second; actor 05 the second only.
        let two = view(vec![
            speakers(&["actor02", "actor03"], &["actor04"]),
            speakers(&["actor05"], &["actor02"]),
        ]);
        let text = seen_in_training(&two, &recording("03-01-05-01-01-01-02")).unwrap();
        assert!(
            text.starts_with(
                "03-01-05-01-01-01-02 is by actor02, who trained or validated 2 of the 2 members"
            ),
            "{text}"
        );
        assert!(
            seen_in_training(&two, &recording("03-01-05-01-01-01-05"))
                .unwrap()
                .contains("1 of the 2")
        );
        assert!(seen_in_training(&two, &recording("03-01-05-01-01-01-08")).is_none());
        assert!(seen_in_training(&two, &recording("not-a-ravdess-name")).is_none());
        let mut digits = card("fsdd", None);
        digits
            .training
            .insert("train_groups".into(), vec!["jackson"].into());
        let text = seen_in_training(&view(vec![digits]), &recording("7_jackson_3")).unwrap();
        assert!(
            text.contains("by jackson, who trained or validated this model"),
            "{text}"
        );
    }

    #[test]
    fn the_caution_counts_the_records_the_model_learned_from() {
        let text = heart_caution([&card("physionet-2016", Some(272))]);
        assert!(text.starts_with("This is not a diagnosis."));
        assert!(text.contains("learned from 272 training recordings"), "{text}");
        // Two members trained on r0000..r0271 and r0000..r0299: 300 distinct recordings.
        let pair = [
            card("physionet-2016", Some(272)),
            card("physionet-2016", Some(300)),
        ];
        let text = heart_caution(&pair);
        assert!(text.contains("learned from 300 training recordings"), "{text}");
        for text in [
            heart_caution([&card("physionet-2016", None)]),
            heart_caution([&card("folder-per-class", Some(12))]),
            heart_caution([&card("physionet-2016", Some(5)), &card("physionet-2016", None)]),
        ] {
            assert!(
                text.contains("learned from a limited set of recordings"),
                "{text}"
            );
            assert!(text.contains("not a medical device"));
        }
    }
}
