//! Ensembles: several checkpoints that vote on the same clip (their class probabilities are
//! averaged), typically the K fold models of one cross-validation run.
//!
//! An ensemble is a small JSON manifest with the extension `.ensemble`:
//! `{"format": "iconnet-ensemble", "version": 1, "name": "heart", "members": ["heart.fold1.iconnet", ...], "notes": [...]}`.
//! Member paths are relative to the manifest's folder. Anything else that loads as a model (an
//! `.iconnet` checkpoint) is an ensemble of one, so every consumer handles both the same way.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, ModelCard};
use super::config::ModelConfig;
use super::network::IConNet;
use crate::audio::{Decoded, LoadError};

/// Extension of ensemble manifests.
pub const EXTENSION: &str = "ensemble";
const FORMAT: &str = "iconnet-ensemble";
const VERSION: u32 = 1;

/// The manifest file as written on disk.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub name: String,
    /// Checkpoint paths, relative to the manifest's folder (or absolute).
    pub members: Vec<String>,
    /// Intended use, licence of the data, how the members were made, what the figures mean.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Held-out figures of this ensemble on excerpts of several lengths (in any order), when
    /// they were measured: a warning about a short recording cites them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_length: Vec<LengthFigure>,
}

/// One held-out figure of an ensemble on excerpts of one length.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LengthFigure {
    /// Excerpt length.
    pub seconds: f64,
    /// Name of the metric, e.g. `MAcc`.
    pub metric: String,
    pub value: f64,
}

impl Manifest {
    pub fn new(name: &str, members: Vec<String>, notes: Vec<String>) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            name: name.into(),
            members,
            notes,
            by_length: Vec::new(),
        }
    }

    /// Reads and checks a manifest; errors name the file.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| format!("{}: not an ensemble manifest: {e}", path.display()))?;
        if manifest.format != FORMAT {
            return Err(format!(
                "{}: not an ensemble manifest (format '{}', expected '{FORMAT}')",
                path.display(),
                manifest.format
            ));
        }
        if manifest.version != VERSION {
            return Err(format!(
                "{}: ensemble manifest version {}, this build reads version {VERSION}",
                path.display(),
                manifest.version
            ));
        }
        if manifest.members.is_empty() {
            return Err(format!("{}: the ensemble lists no members", path.display()));
        }
        if let Some(bad) = manifest
            .by_length
            .iter()
            .find(|f| !(f.seconds > 0.0 && f.value.is_finite()))
        {
            return Err(format!(
                "{}: by_length has an excerpt of {} s with {} {}; lengths must be positive and figures finite",
                path.display(),
                bad.seconds,
                bad.metric,
                bad.value
            ));
        }
        Ok(manifest)
    }

    /// Writes the manifest atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        text.push('\n');
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: cannot write: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: cannot write: {e}", path.display()))
    }

    /// Where each member lives, resolved against the manifest at `path`.
    pub fn member_paths(&self, path: &Path) -> Vec<PathBuf> {
        let dir = path.parent().unwrap_or(Path::new(""));
        self.members.iter().map(|m| dir.join(m)).collect()
    }
}

/// One checkpoint of an ensemble.
#[derive(Clone, Debug)]
pub struct Member {
    pub model: IConNet,
    pub card: ModelCard,
    pub path: PathBuf,
}

/// Models that vote together. Every member has the same classes and sample rate, so their
/// probabilities line up; members with different front-ends (strides) have their per-frame
/// maps averaged on the finest member's frames ([`crate::explain::onto_frames`]).
#[derive(Clone, Debug)]
pub struct Ensemble {
    pub name: String,
    /// The manifest, or the checkpoint for an ensemble of one.
    pub path: PathBuf,
    /// The manifest's notes (empty for a single checkpoint, whose notes are on its card).
    pub notes: Vec<String>,
    /// The manifest's held-out figures by excerpt length (empty for a single checkpoint and for
    /// a joined list, to which no measured figure applies).
    pub by_length: Vec<LengthFigure>,
    pub members: Vec<Member>,
}

/// Whether `path` names an ensemble manifest (by its extension).
pub fn is_manifest(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == EXTENSION)
}

impl Ensemble {
    /// Loads a manifest with its members, or a single checkpoint, onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, String> {
        if !is_manifest(path) {
            let (model, card) = checkpoint::load(path, device).map_err(|e| e.to_string())?;
            let name = card.name.clone();
            let member = Member {
                model,
                card,
                path: path.to_path_buf(),
            };
            return Self::new(&name, path, Vec::new(), vec![member]);
        }
        let manifest = Manifest::read(path)?;
        let mut members = Vec::with_capacity(manifest.members.len());
        for member_path in manifest.member_paths(path) {
            if is_manifest(&member_path) {
                return Err(format!(
                    "{}: member {} is itself an ensemble; list its checkpoints instead",
                    path.display(),
                    member_path.display()
                ));
            }
            let (model, card) = checkpoint::load(&member_path, device)
                .map_err(|e| format!("{}: member {e}", path.display()))?;
            members.push(Member {
                model,
                card,
                path: member_path,
            });
        }
        let mut ensemble = Self::new(&manifest.name, path, manifest.notes, members)?;
        ensemble.by_length = manifest.by_length;
        Ok(ensemble)
    }

    /// Builds an ensemble from loaded members after checking they can vote together.
    pub fn new(name: &str, path: &Path, notes: Vec<String>, members: Vec<Member>) -> Result<Self, String> {
        let first = members
            .first()
            .ok_or_else(|| format!("{}: an ensemble needs at least one model", path.display()))?;
        let c = &first.model.config;
        for m in &members[1..] {
            let mc = &m.model.config;
            if mc.classes != c.classes {
                return Err(format!(
                    "{}: its classes ({}) are not those of {} ({}); an ensemble needs the same classes",
                    m.path.display(),
                    mc.classes.join(", "),
                    first.path.display(),
                    c.classes.join(", ")
                ));
            }
            if mc.sample_rate != c.sample_rate {
                return Err(format!(
                    "{}: runs at {} Hz, {} at {} Hz; an ensemble needs one sample rate, since every member reads the same samples",
                    m.path.display(),
                    mc.sample_rate,
                    first.path.display(),
                    c.sample_rate
                ));
            }
        }
        Ok(Self {
            name: name.to_string(),
            path: path.to_path_buf(),
            notes,
            by_length: Vec::new(),
            members,
        })
    }

    /// Joins several ensembles (e.g. a `--model a,b` list) into one; a single part is returned
    /// as it is.
    pub fn join(mut parts: Vec<Ensemble>) -> Result<Self, String> {
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        let name = parts
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join("+");
        let path = parts
            .first()
            .map(|p| p.path.clone())
            .ok_or("an ensemble needs at least one model")?;
        let notes = parts.iter().flat_map(|p| p.notes.clone()).collect();
        let members = parts.into_iter().flat_map(|p| p.members).collect();
        Self::new(&name, &path, notes, members)
    }

    /// The configuration the members share (classes, rate): the first member's. Members may
    /// differ in front-end and so in frame length; their maps are averaged on the finest
    /// member's frames (`explain::average_analyses`).
    pub fn config(&self) -> &ModelConfig {
        &self.members[0].model.config
    }

    /// The shortest clip every member can read (the longest of the members' minimum lengths).
    pub fn min_samples(&self) -> usize {
        self.members
            .iter()
            .map(|m| m.model.config.min_samples())
            .max()
            .unwrap_or(0)
    }

    /// Loads `path` for this model ([`crate::audio::load_for_model`]), with a warning when it is
    /// shorter than the excerpts the members learned from.
    pub fn load_recording(&self, path: &Path) -> Result<(Vec<f32>, Decoded), LoadError> {
        let config = self.config();
        let (samples, mut decoded) =
            crate::audio::load_for_model(path, config.sample_rate, self.min_samples())?;
        let excerpt = self
            .members
            .iter()
            .filter_map(|m| m.card.training_excerpt_seconds())
            .reduce(f64::max);
        if let Some(excerpt) = excerpt
            && decoded.duration_s() < excerpt
        {
            decoded.warnings.push(short_recording_warning(
                decoded.duration_s(),
                excerpt,
                &self.by_length,
            ));
        }
        Ok((samples, decoded))
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn models(&self) -> impl Iterator<Item = &IConNet> {
        self.members.iter().map(|m| &m.model)
    }

    /// Every member with dropout off (for attributions on an autodiff device).
    pub fn without_dropout(mut self) -> Self {
        for m in &mut self.members {
            m.model = m.model.clone().without_dropout();
        }
        self
    }
}

/// The warning for a recording of `duration_s` seconds, shorter than the `excerpt_s` second
/// excerpts a model learned from, citing the model's own held-out figures where it has them:
/// the one at the excerpt length and the one at the longest measured length not above the
/// recording (or the shortest measured).
fn short_recording_warning(duration_s: f64, excerpt_s: f64, by_length: &[LengthFigure]) -> String {
    let mut text =
        format!("{duration_s:.1} s is shorter than the {excerpt_s:.0} s excerpts the model learned from");
    let at_excerpt = by_length.iter().min_by(|a, b| {
        (a.seconds - excerpt_s)
            .abs()
            .total_cmp(&(b.seconds - excerpt_s).abs())
    });
    let near_recording = by_length
        .iter()
        .filter(|f| f.seconds <= duration_s + 1e-9)
        .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .or_else(|| by_length.iter().min_by(|a, b| a.seconds.total_cmp(&b.seconds)));
    if let (Some(long), Some(short)) = (at_excerpt, near_recording)
        && short.seconds < long.seconds
    {
        // A user's figures need not fall with length; say "falls" only when they do.
        let (how, to) = if short.value < long.value {
            ("falls from", "to")
        } else {
            ("is", "and")
        };
        text.push_str(&format!(
            ": its held-out {} {how} {:.2} on {} s excerpts {to} {:.2} on {} s",
            long.metric, long.value, long.seconds, short.value, short.seconds
        ));
    }
    text.push_str(&format!("; record at least {excerpt_s:.0} s"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, PoolingKind};

    fn write_member(dir: &Path, name: &str, classes: &[&str], rate: u32) -> PathBuf {
        write_member_of(dir, "tiny", name, classes, rate)
    }

    fn write_member_of(dir: &Path, arch: &str, name: &str, classes: &[&str], rate: u32) -> PathBuf {
        let classes = classes.iter().map(|c| c.to_string()).collect();
        let config = ModelConfig::named(arch, rate, classes, PoolingKind::Attention).unwrap();
        let model = IConNet::new(&config, &Device::flex());
        let path = dir.join(format!("{name}.iconnet"));
        checkpoint::save(&model, &ModelCard::new(name, &model), &path).unwrap();
        path
    }

    #[test]
    fn a_manifest_loads_its_members_relative_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        write_member(dir.path(), "a", &["no", "yes"], 1000);
        write_member(dir.path(), "b", &["no", "yes"], 1000);
        let path = dir.path().join("pair.ensemble");
        Manifest::new(
            "pair",
            vec!["a.iconnet".into(), "b.iconnet".into()],
            vec!["two".into()],
        )
        .write(&path)
        .unwrap();
        let e = Ensemble::load(&path, &Device::flex()).unwrap();
        assert_eq!((e.name.as_str(), e.len()), ("pair", 2));
        assert_eq!(e.notes, vec!["two".to_string()]);
        assert_eq!(e.members[1].path, dir.path().join("b.iconnet"));
        assert_eq!(e.members[1].card.name, "b");
        // A checkpoint alone is an ensemble of one, named by its card.
        let single = Ensemble::load(&dir.path().join("a.iconnet"), &Device::flex()).unwrap();
        assert_eq!((single.name.as_str(), single.len()), ("a", 1));
        let joined = Ensemble::join(vec![e, single]).unwrap();
        assert_eq!((joined.name.as_str(), joined.len()), ("pair+a", 3));
    }

    #[test]
    fn members_that_cannot_vote_together_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        write_member(dir.path(), "a", &["no", "yes"], 1000);
        write_member(dir.path(), "c", &["cat", "dog"], 1000);
        write_member(dir.path(), "r", &["no", "yes"], 2000);
        let load = |members: &[&str]| {
            let path = dir.path().join("x.ensemble");
            Manifest::new("x", members.iter().map(|m| m.to_string()).collect(), vec![])
                .write(&path)
                .unwrap();
            Ensemble::load(&path, &Device::flex()).unwrap_err()
        };
        let e = load(&["a.iconnet", "c.iconnet"]);
        assert!(e.contains("c.iconnet") && e.contains("same classes"), "{e}");
        let e = load(&["a.iconnet", "r.iconnet"]);
        assert!(e.contains("r.iconnet") && e.contains("2000 Hz"), "{e}");
        let e = load(&["a.iconnet", "missing.iconnet"]);
        assert!(
            e.contains("x.ensemble: member") && e.contains("missing.iconnet"),
            "{e}"
        );
        let e = load(&[]);
        assert!(e.contains("no members"), "{e}");
        // Another front-end, with other strides, votes with the same classes and rate.
        write_member_of(dir.path(), "mfcc", "m", &["no", "yes"], 1000);
        let path = dir.path().join("mixed.ensemble");
        Manifest::new("mixed", vec!["a.iconnet".into(), "m.iconnet".into()], vec![])
            .write(&path)
            .unwrap();
        let mixed = Ensemble::load(&path, &Device::flex()).unwrap();
        let strides: Vec<usize> = mixed.models().map(|m| m.config.total_stride()).collect();
        assert_ne!(strides[0], strides[1]);
        assert_eq!(
            mixed.min_samples(),
            mixed.models().map(|m| m.config.min_samples()).max().unwrap()
        );
    }

    #[test]
    fn a_file_that_is_not_a_manifest_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.ensemble");
        std::fs::write(
            &path,
            "{\"format\": \"something-else\", \"version\": 1, \"name\": \"x\", \"members\": [\"a\"]}",
        )
        .unwrap();
        let e = Ensemble::load(&path, &Device::flex()).unwrap_err();
        assert!(
            e.starts_with(&path.display().to_string()) && e.contains("something-else"),
            "{e}"
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(
            Ensemble::load(&path, &Device::flex())
                .unwrap_err()
                .contains("not an ensemble manifest")
        );
    }

    fn figure(seconds: f64, value: f64) -> LengthFigure {
        LengthFigure {
            seconds,
            metric: "MAcc".into(),
            value,
        }
    }

    #[test]
    fn a_short_recording_warning_cites_the_model_s_own_figures_when_it_has_them() {
        let figures = [
            figure(2.0, 0.727),
            figure(3.0, 0.755),
            figure(5.0, 0.778),
            figure(10.0, 0.763),
        ];
        // 3.4 s: the longest measured length not above it is 3 s.
        assert_eq!(
            short_recording_warning(3.4, 5.0, &figures),
            "3.4 s is shorter than the 5 s excerpts the model learned from: its held-out MAcc falls \
from 0.78 on 5 s excerpts to 0.76 on 3 s; record at least 5 s"
        );
        // Shorter than every measured length: the shortest is the nearest evidence.
        assert_eq!(
            short_recording_warning(1.5, 5.0, &figures),
            "1.5 s is shorter than the 5 s excerpts the model learned from: its held-out MAcc falls \
from 0.78 on 5 s excerpts to 0.73 on 2 s; record at least 5 s"
        );
        // Figures that do not fall are not said to.
        assert_eq!(
            short_recording_warning(2.5, 5.0, &[figure(2.0, 0.9), figure(5.0, 0.8)]),
            "2.5 s is shorter than the 5 s excerpts the model learned from: its held-out MAcc is \
0.80 on 5 s excerpts and 0.90 on 2 s; record at least 5 s"
        );
        // A model without measured figures (a user's own) gets no borrowed ones.
        assert_eq!(
            short_recording_warning(2.0, 5.0, &[]),
            "2.0 s is shorter than the 5 s excerpts the model learned from; record at least 5 s"
        );
    }

    #[test]
    fn a_manifest_keeps_its_figures_by_length_and_refuses_nonsense_ones() {
        let dir = tempfile::tempdir().unwrap();
        write_member(dir.path(), "a", &["no", "yes"], 1000);
        let path = dir.path().join("one.ensemble");
        let mut manifest = Manifest::new("one", vec!["a.iconnet".into()], vec![]);
        manifest.by_length = vec![figure(2.0, 0.7), figure(5.0, 0.8)];
        manifest.write(&path).unwrap();
        let e = Ensemble::load(&path, &Device::flex()).unwrap();
        assert_eq!(e.by_length, manifest.by_length);
        // A joined list is a different model: the figures do not carry over.
        let joined = Ensemble::join(vec![e.clone(), e]).unwrap();
        assert!(joined.by_length.is_empty());
        manifest.by_length = vec![figure(0.0, 0.7)];
        manifest.write(&path).unwrap();
        let err = Ensemble::load(&path, &Device::flex()).unwrap_err();
        assert!(err.contains("one.ensemble") && err.contains("by_length"), "{err}");
        // Manifests without the field (every one before it existed) still load, and are written
        // without it.
        let text = serde_json::to_string(&Manifest::new("x", vec!["a".into()], vec![])).unwrap();
        assert!(!text.contains("by_length"), "{text}");
    }
}
