//! What the views show, as plain data produced by the worker: the model (card, filters), the
//! recording (decimation pyramid), the analysis and the current heatmap.

use std::path::PathBuf;
use std::sync::Arc;

use super::decimate::MinMaxPyramid;
use crate::explain::attribution::Heatmap;
use crate::explain::{Analysis, FilterInfo};
use crate::model::checkpoint::ModelCard;

/// A loaded model as the views see it.
#[derive(Clone, Debug)]
pub struct ModelView {
    pub path: PathBuf,
    pub card: ModelCard,
    /// Every filter of every FIR block (empty for log-Mel/MFCC models).
    pub filters: Vec<FilterInfo>,
    /// Kernel length per block.
    pub taps: Vec<usize>,
    /// Backend and adapter the model runs on.
    pub backend: String,
}

impl ModelView {
    pub fn name(&self) -> &str {
        &self.card.name
    }

    pub fn is_heart_model(&self) -> bool {
        self.card.config.classes.iter().any(|c| c == "abnormal")
    }

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
