//! Checkpoints: one `.iconnet` file holding a JSON model card and the burn record.
//!
//! Layout (little endian): `b"ICONNET\0"`, `u32` format version, `u64` card length, card JSON,
//! `u64` record length, burnpack record, `u64` FNV-1a hash of everything before it. The card is
//! also written beside the file as `<name>.json` for people to read; the copy inside is the one
//! that counts. Files are written to a temporary name and renamed, so an interrupted save never
//! leaves a half-written checkpoint in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use super::config::ModelConfig;
use super::network::IConNet;

pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"ICONNET\0";

/// Human-readable description of a trained model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ModelCard {
    pub format_version: u32,
    pub name: String,
    pub config: ModelConfig,
    /// Which program wrote it.
    pub created_by: String,
    /// Data, protocol, command, seed: how the weights were obtained.
    #[serde(default)]
    pub training: BTreeMap<String, serde_json::Value>,
    /// Figures measured on held-out data, with their protocol in `training`.
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// Initial front-end bands in Hz per block: `[f_low, f_high]` per filter.
    #[serde(default)]
    pub initial_bands_hz: Vec<Vec<[f64; 2]>>,
    /// Intended use, licence of the data, cautions.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl ModelCard {
    pub fn new(name: &str, model: &IConNet) -> Self {
        let sr = model.config.sample_rate as f64;
        Self {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            config: model.config.clone(),
            created_by: format!("iconnet {}", env!("CARGO_PKG_VERSION")),
            training: BTreeMap::new(),
            metrics: BTreeMap::new(),
            initial_bands_hz: model
                .blocks
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    // A block after the first runs at the rate left by the strides before it.
                    let rate = sr / model.blocks[..i].iter().map(|b| b.stride).product::<usize>() as f64;
                    b.bank
                        .initial_bands()
                        .iter()
                        .step_by(b.bank.in_channels)
                        .map(|band| [band.f_low * rate, band.f_high * rate])
                        .collect()
                })
                .collect(),
            notes: Vec::new(),
        }
    }
}

impl ModelCard {
    /// The groups the trainer listed under `key` (`train_groups`, `validation_groups` or
    /// `test_groups`), if the card has that list.
    pub fn groups(&self, key: &str) -> Option<Vec<&str>> {
        self.training
            .get(key)
            .and_then(|g| g.as_array())
            .map(|g| g.iter().filter_map(|v| v.as_str()).collect())
    }

    /// Whether the recording named `stem` (its file name without extension) belongs to a
    /// group this model trained on or chose its checkpoint on, and which group, when the card's
    /// layout gives file names their group.
    pub fn saw_group_of(&self, stem: &str) -> Option<String> {
        let group = self.group_of(stem)?;
        self.saw_group(&group).then_some(group)
    }

    /// The group of the recording named `stem` under this card's layout; None when the card
    /// does not say its layout or the layout's file names do not give the group.
    pub fn group_of(&self, stem: &str) -> Option<String> {
        let layout = self.training.get("layout")?.as_str()?;
        crate::train::dataset::group_of_file(layout, stem)
    }

    /// Whether this model trained on `group` or chose its checkpoint on it.
    pub fn saw_group(&self, group: &str) -> bool {
        ["train_groups", "validation_groups"]
            .iter()
            .any(|key| self.groups(key).is_some_and(|g| g.contains(&group)))
    }

    /// Whether the training data's groups are single recordings (so group names are record
    /// names); false when the card does not say which layout it was.
    pub fn groups_are_recordings(&self) -> bool {
        self.training
            .get("layout")
            .and_then(|l| l.as_str())
            .is_some_and(crate::train::dataset::groups_are_recordings)
    }

    /// The length of the excerpts this model learned from, where its training crops were
    /// excerpts of long recordings (heart sounds); None where a crop held a whole clip (speech,
    /// whose clips are shorter than their crops) or the card does not say.
    pub fn training_excerpt_seconds(&self) -> Option<f64> {
        self.groups_are_recordings()
            .then(|| self.training_crop_seconds())
            .flatten()
    }

    /// The length of the training crops (an excerpt of a long recording, or room for a whole
    /// short clip); None when the card does not say.
    pub fn training_crop_seconds(&self) -> Option<f64> {
        self.training.get("crop_seconds")?.as_f64()
    }
}

/// The group (record, speaker or actor) of the recording named `stem` and how many of
/// `cards` learned from it or chose their checkpoint on it; None when no card saw it or can
/// tell.
pub fn cards_that_saw<'a>(
    cards: impl IntoIterator<Item = &'a ModelCard>,
    stem: &str,
) -> Option<(String, usize)> {
    let groups: Vec<String> = cards
        .into_iter()
        .filter_map(|card| card.saw_group_of(stem))
        .collect();
    let n = groups.len();
    groups.into_iter().next().map(|g| (g, n))
}

/// Indices of the `cards` that can tell the group of the recording named `stem` and neither
/// trained on it nor chose their checkpoint on it: the members whose vote on it is held out.
pub fn cards_that_never_saw<'a>(cards: impl IntoIterator<Item = &'a ModelCard>, stem: &str) -> Vec<usize> {
    cards
        .into_iter()
        .enumerate()
        .filter(|(_, card)| card.group_of(stem).is_some_and(|group| !card.saw_group(&group)))
        .map(|(i, _)| i)
        .collect()
}

/// Why a checkpoint could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an IConNet checkpoint (bad magic bytes)")]
    NotACheckpoint { path: PathBuf },
    #[error("{path}: truncated checkpoint ({0} bytes, {1} expected)", .got.0, .got.1)]
    Truncated { path: PathBuf, got: (usize, usize) },
    #[error("{path}: checkpoint format version {found}, this build reads version {FORMAT_VERSION}")]
    WrongVersion { path: PathBuf, found: u32 },
    #[error("{path}: corrupt checkpoint (checksum mismatch)")]
    Corrupt { path: PathBuf },
    #[error("{path}: invalid model card: {reason}")]
    BadCard { path: PathBuf, reason: String },
    #[error("{path}: weights do not match the model card's configuration: {reason}")]
    Mismatch { path: PathBuf, reason: String },
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Serialises `model` and `card` into checkpoint bytes.
pub fn to_bytes(model: &IConNet, card: &ModelCard) -> Result<Vec<u8>, String> {
    let card_json = serde_json::to_vec_pretty(card).map_err(|e| e.to_string())?;
    let record = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(card_json.len() + record.len() + 40);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(card_json.len() as u64).to_le_bytes());
    out.extend_from_slice(&card_json);
    out.extend_from_slice(&(record.len() as u64).to_le_bytes());
    out.extend_from_slice(&record);
    let hash = fnv1a(&out);
    out.extend_from_slice(&hash.to_le_bytes());
    Ok(out)
}

/// Writes `path` (atomically) and the readable card beside it.
pub fn save(model: &IConNet, card: &ModelCard, path: &Path) -> Result<(), String> {
    let bytes = to_bytes(model, card)?;
    let write = |target: &Path, data: &[u8]| -> Result<(), String> {
        let tmp = target.with_extension("partial");
        std::fs::write(&tmp, data).map_err(|e| format!("{}: cannot write: {e}", tmp.display()))?;
        std::fs::rename(&tmp, target).map_err(|e| format!("{}: cannot write: {e}", target.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    }
    write(path, &bytes)?;
    let card_json = serde_json::to_vec_pretty(card).map_err(|e| e.to_string())?;
    write(&path.with_extension("json"), &card_json)
}

/// Reads a checkpoint file onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<(IConNet, ModelCard), CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.into(),
        source,
    })?;
    from_bytes(&bytes, path, device)
}

/// Parses checkpoint bytes; `path` only names the source in errors.
pub fn from_bytes(
    bytes: &[u8],
    path: &Path,
    device: &Device,
) -> Result<(IConNet, ModelCard), CheckpointError> {
    let p = || path.to_path_buf();
    let truncated = |need: usize| CheckpointError::Truncated {
        path: p(),
        got: (bytes.len(), need),
    };
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        if bytes.len() < 8 && MAGIC.starts_with(bytes) {
            return Err(truncated(8));
        }
        return Err(CheckpointError::NotACheckpoint { path: p() });
    }
    let read_u64 = |at: usize| -> Result<u64, CheckpointError> {
        bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| truncated(at + 8))
    };
    let version = bytes.get(8..12).ok_or_else(|| truncated(12))?;
    let version = u32::from_le_bytes(version.try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(CheckpointError::WrongVersion {
            path: p(),
            found: version,
        });
    }
    let card_len = read_u64(12)? as usize;
    let card_start = 20usize;
    let card_end = card_start
        .checked_add(card_len)
        .ok_or_else(|| truncated(usize::MAX))?;
    let record_len = read_u64(card_end)? as usize;
    let record_start = card_end + 8;
    let record_end = record_start
        .checked_add(record_len)
        .ok_or_else(|| truncated(usize::MAX))?;
    let stored_hash = read_u64(record_end)?;
    if bytes.len() != record_end + 8 {
        return Err(CheckpointError::Corrupt { path: p() });
    }
    if fnv1a(&bytes[..record_end]) != stored_hash {
        return Err(CheckpointError::Corrupt { path: p() });
    }
    let card: ModelCard =
        serde_json::from_slice(&bytes[card_start..card_end]).map_err(|e| CheckpointError::BadCard {
            path: p(),
            reason: e.to_string(),
        })?;
    card.config
        .validate()
        .map_err(|reason| CheckpointError::BadCard { path: p(), reason })?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes[record_start..record_end].to_vec()))
        .map_err(|e| CheckpointError::Mismatch {
            path: p(),
            reason: e.to_string(),
        })?;
    let fresh = IConNet::new(&card.config, device);
    // burn validates shapes itself; a panic inside it is still reported as a mismatch.
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fresh.try_load_record(record)))
        .map_err(|_| CheckpointError::Mismatch {
            path: p(),
            reason: "record could not be applied".into(),
        })?
        .map_err(|e| CheckpointError::Mismatch {
            path: p(),
            reason: e.to_string(),
        })?;
    Ok((loaded, card))
}
