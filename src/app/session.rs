//! What the views show, as plain data produced by the worker: the model (card, filters), the
//! recording (decimation pyramid), the analysis and the current heatmap.

use std::path::PathBuf;
use std::sync::Arc;

use super::decimate::MinMaxPyramid;
use crate::dsp::heart_cycle::{self, HeartCycles, PhaseSpan};
use crate::explain::attribution::Heatmap;
use crate::explain::{Analysis, FilterInfo};
use crate::model::checkpoint::ModelCard;

/// A loaded model as the views see it: one checkpoint, or the members of an ensemble.
#[derive(Clone, Debug)]
pub struct ModelView {
    /// The checkpoint or ensemble manifest that was opened.
    pub path: PathBuf,
    pub name: String,
    /// The ensemble's notes (empty for a single checkpoint: its notes are on its card).
    pub notes: Vec<String>,
    /// At least one.
    pub members: Vec<MemberView>,
    /// Backend and adapter the model runs on.
    pub backend: String,
}

/// One checkpoint of a loaded model.
#[derive(Clone, Debug)]
pub struct MemberView {
    pub path: PathBuf,
    pub card: ModelCard,
    /// Every filter of every FIR block (empty for log-Mel/MFCC models).
    pub filters: Vec<FilterInfo>,
    /// Kernel length per block.
    pub taps: Vec<usize>,
}

impl ModelView {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first member's card: classes and rate are the same for every member (front-ends
    /// and so frame lengths may differ).
    pub fn card(&self) -> &ModelCard {
        &self.members[0].card
    }

    pub fn is_ensemble(&self) -> bool {
        self.members.len() > 1
    }

    /// Member `i`, or the last one when `i` is past the end (a smaller model was loaded).
    pub fn member(&self, i: usize) -> &MemberView {
        &self.members[i.min(self.members.len() - 1)]
    }

    pub fn is_heart_model(&self) -> bool {
        self.card().config.is_heart_sound_model()
    }

    pub fn cards(&self) -> impl Iterator<Item = &ModelCard> {
        self.members.iter().map(|m| &m.card)
    }

    /// The group (record, speaker or actor) of the recording named `stem` (its file stem) and
    /// how many members learned from that group or used it to choose their checkpoint; None
    /// when no card can tell or no member saw it.
    pub fn members_that_saw(&self, stem: &str) -> Option<(String, usize)> {
        crate::model::checkpoint::cards_that_saw(self.cards(), stem)
    }

    /// Every member's filters with its label, for the filter table exports.
    pub fn filter_tables(&self) -> Vec<(String, &[FilterInfo])> {
        self.members
            .iter()
            .map(|m| (m.label(), m.filters.as_slice()))
            .collect()
    }
}

impl MemberView {
    /// Indices into `filters` of the first block's filters, ordered by centre frequency.
    pub fn first_block_by_centre(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.filters.len())
            .filter(|&i| self.filters[i].block == 0)
            .collect();
        idx.sort_by(|&a, &b| {
            self.filters[a]
                .centre_hz()
                .total_cmp(&self.filters[b].centre_hz())
        });
        idx
    }

    pub fn taps_of(&self, filter: &FilterInfo) -> usize {
        self.taps.get(filter.block).copied().unwrap_or(1)
    }

    /// How lists name the member: its file name without the extension (`heart.fold3`).
    pub fn label(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.card.name.clone())
    }
}

/// An opened recording at the model's rate, normalised as the model sees it.
#[derive(Clone, Debug)]
pub struct RecordingView {
    pub path: PathBuf,
    /// Rate of `waveform` (the model's).
    pub rate: u32,
    pub original_rate: u32,
    pub channels: u16,
    pub waveform: Arc<MinMaxPyramid>,
    /// Loader warnings (e.g. a recovered unfinalised header).
    pub warnings: Vec<String>,
    /// Where the heart cycles lie, for a heart-sound model's recording (None for other
    /// models); the error says why none were found.
    pub heart_cycles: Option<Result<Arc<HeartCycleView>, String>>,
}

/// The heart-cycle segmentation of a recording, with its S1 and S2 spans and its one-line
/// summary ready to draw.
#[derive(Clone, Debug)]
pub struct HeartCycleView {
    pub cycles: HeartCycles,
    /// S1 and S2 spans in time order.
    pub sounds: Vec<PhaseSpan>,
    /// [`HeartCycles::summary`].
    pub summary: String,
}

impl HeartCycleView {
    /// Segments `samples` when `heart_model`; None otherwise.
    pub fn for_recording(
        samples: &[f32],
        rate: u32,
        heart_model: bool,
    ) -> Option<Result<Arc<HeartCycleView>, String>> {
        heart_model.then(|| {
            heart_cycle::segment_heart_cycles(samples, rate).map(|cycles| {
                let sounds = cycles.sounds();
                let summary = cycles.summary();
                Arc::new(HeartCycleView {
                    cycles,
                    sounds,
                    summary,
                })
            })
        })
    }

    /// The sounds that overlap `[from_s, to_s]`.
    pub fn sounds_between(&self, from_s: f64, to_s: f64) -> &[PhaseSpan] {
        let first = self.sounds.partition_point(|s| s.end_s < from_s);
        let last = self.sounds.partition_point(|s| s.start_s <= to_s);
        &self.sounds[first..last.max(first)]
    }
}

impl RecordingView {
    pub fn duration_s(&self) -> f64 {
        self.waveform.samples().len() as f64 / self.rate.max(1) as f64
    }

    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// Everything loaded at one moment. Cheap to clone (shared pointers).
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub model: Option<Arc<ModelView>>,
    pub recording: Option<Arc<RecordingView>>,
    pub analysis: Option<Arc<Analysis>>,
    pub heatmap: Option<Arc<Heatmap>>,
}

impl Loaded {
    /// Length of the open recording, seconds (None before one is open).
    pub fn duration_s(&self) -> Option<f64> {
        self.recording.as_ref().map(|r| r.duration_s())
    }
}
