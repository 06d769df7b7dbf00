//! Labelled audio collections: PhysioNet 2016 (`REFERENCE.csv`), FSDD, RAVDESS, CREMA-D, and a
//! folder per class. Every example carries a group (speaker, actor or record) so that splits
//! never put one group on both sides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub path: PathBuf,
    pub label: usize,
    /// Speaker, actor or record: never split across train/validation/test.
    pub group: String,
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub layout: &'static str,
    pub classes: Vec<String>,
    pub examples: Vec<Example>,
}

/// Layout name of PhysioNet/CinC 2016 folders (`REFERENCE.csv`), as model cards record it.
pub const PHYSIONET_2016: &str = "physionet-2016";

/// Whether a layout's groups are single recordings (so a count of groups counts recordings);
/// elsewhere a group is a speaker, an actor or a file-name prefix.
pub fn groups_are_recordings(layout: &str) -> bool {
    layout == PHYSIONET_2016
}

/// The group (speaker, actor or record) of a recording named `stem` in a data set of
/// `layout`, where the file name says it; None for layouts whose groups the name does not give
/// (one folder per class) and for names that do not follow the layout.
pub fn group_of_file(layout: &str, stem: &str) -> Option<String> {
    match layout {
        PHYSIONET_2016 => Some(stem.to_string()),
        "fsdd" => parse_fsdd(stem).map(|(_, g)| g),
        "ravdess" => parse_ravdess(stem).map(|(_, g)| g),
        "crema-d" => parse_crema(stem).map(|(_, g)| g),
        _ => None,
    }
}

const RAVDESS: [&str; 8] = [
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
];
const CREMA: [(&str, &str); 6] = [
    ("ANG", "angry"),
    ("DIS", "disgust"),
    ("FEA", "fearful"),
    ("HAP", "happy"),
    ("NEU", "neutral"),
    ("SAD", "sad"),
];

fn audio_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    Ok(files)
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads `(label, group)` from a file stem.
type NameParser = fn(&str) -> Option<(usize, String)>;

/// Finds the layout of `root` and lists its labelled examples.
pub fn discover(root: &Path) -> Result<Dataset, String> {
    if !root.is_dir() {
        return Err(format!("{}: not a directory", root.display()));
    }
    // PhysioNet: REFERENCE.csv here or in training-* sub-folders.
    let mut reference_dirs: Vec<PathBuf> = Vec::new();
    if root.join("REFERENCE.csv").is_file() {
        reference_dirs.push(root.to_path_buf());
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    reference_dirs.extend(
        subdirs
            .iter()
            .filter(|d| d.join("REFERENCE.csv").is_file())
            .cloned(),
    );
    if !reference_dirs.is_empty() {
        return physionet(&reference_dirs);
    }
    let files = audio_files(root)?;
    let by_name = |parse: NameParser| -> Option<Vec<Example>> {
        if files.is_empty() {
            return None;
        }
        files
            .iter()
            .map(|p| {
                parse(&stem(p)).map(|(label, group)| Example {
                    path: p.clone(),
                    label,
                    group,
                })
            })
            .collect()
    };
    let named: [(&'static str, NameParser, Vec<String>); 3] = [
        ("fsdd", parse_fsdd, (0..10).map(|d| d.to_string()).collect()),
        (
            "ravdess",
            parse_ravdess,
            RAVDESS.iter().map(|s| s.to_string()).collect(),
        ),
        (
            "crema-d",
            parse_crema,
            CREMA.iter().map(|c| c.1.to_string()).collect(),
        ),
    ];
    for (layout, parse, classes) in named {
        if let Some(examples) = by_name(parse) {
            return Ok(Dataset {
                layout,
                classes,
                examples,
            });
        }
    }
    // A folder per class; each file is its own group unless named `speaker_...`.
    let class_dirs: Vec<&PathBuf> = subdirs
        .iter()
        .filter(|d| audio_files(d).is_ok_and(|f| !f.is_empty()))
        .collect();
    if class_dirs.len() >= 2 {
        let classes: Vec<String> = class_dirs.iter().map(|d| stem(d)).collect();
        let mut examples = Vec::new();
        for (label, dir) in class_dirs.iter().enumerate() {
            for p in audio_files(dir)? {
                let name = stem(&p);
                let group = name.split_once('_').map(|(g, _)| g.to_string()).unwrap_or(name);
                examples.push(Example {
                    path: p,
                    label,
                    group,
                });
            }
        }
        return Ok(Dataset {
            layout: "folder-per-class",
            classes,
            examples,
        });
    }
    Err(format!(
        "{}: no known layout (REFERENCE.csv, FSDD/RAVDESS/CREMA-D file names, or one folder of WAV files per class)",
        root.display()
    ))
}

/// `digit_speaker_index` -> (digit, speaker).
fn parse_fsdd(name: &str) -> Option<(usize, String)> {
    let mut parts = name.split('_');
    let digit: usize = parts.next()?.parse().ok().filter(|d| *d < 10)?;
    let speaker = parts.next()?.to_string();
    parts.next()?.parse::<u32>().ok()?;
    (parts.next().is_none() && !speaker.is_empty()).then_some((digit, speaker))
}

fn parse_ravdess(name: &str) -> Option<(usize, String)> {
    let parts: Vec<u32> = name.split('-').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    (parts.len() == 7 && (1..=8).contains(&parts[2]))
        .then(|| (parts[2] as usize - 1, format!("actor{:02}", parts[6])))
}

fn parse_crema(name: &str) -> Option<(usize, String)> {
    let parts: Vec<&str> = name.split('_').collect();
    if parts.len() != 4 || parts[0].parse::<u32>().is_err() {
        return None;
    }
    CREMA
        .iter()
        .position(|c| c.0 == parts[2])
        .map(|i| (i, parts[0].to_string()))
}

fn physionet(dirs: &[PathBuf]) -> Result<Dataset, String> {
    let mut examples = Vec::new();
    for dir in dirs {
        let csv = dir.join("REFERENCE.csv");
        let text = std::fs::read_to_string(&csv).map_err(|e| format!("{}: {e}", csv.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let bad = || {
                format!(
                    "{}: line {}: expected 'record,label' with label 1 or -1, got '{line}'",
                    csv.display(),
                    i + 1
                )
            };
            if fields.len() < 2 {
                return Err(bad());
            }
            let label = match fields[1] {
                "-1" => 0,
                "1" => 1,
                _ => return Err(bad()),
            };
            let wav = dir.join(format!("{}.wav", fields[0]));
            let hea = dir.join(format!("{}.hea", fields[0]));
            let path = if wav.is_file() {
                wav
            } else if hea.is_file() {
                hea
            } else {
                continue;
            };
            examples.push(Example {
                path,
                label,
                group: fields[0].to_string(),
            });
        }
    }
    if examples.is_empty() {
        return Err("REFERENCE.csv lists no record whose .wav or .hea is present".into());
    }
    Ok(Dataset {
        layout: PHYSIONET_2016,
        classes: vec!["normal".into(), "abnormal".into()],
        examples,
    })
}

impl Dataset {
    /// Applies `--classes`: a comma list of `name` (keep) or `from=to` (rename/merge).
    /// Examples of classes not named are dropped.
    pub fn map_classes(mut self, spec: &str) -> Result<Self, String> {
        let mut mapping: BTreeMap<String, String> = BTreeMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (from, to) = item.split_once('=').unwrap_or((item, item));
            if !self.classes.iter().any(|c| c == from.trim()) {
                return Err(format!(
                    "--classes: '{}' is not a class of this data ({})",
                    from.trim(),
                    self.classes.join(", ")
                ));
            }
            mapping.insert(from.trim().to_string(), to.trim().to_string());
        }
        let mut new_classes: Vec<String> = Vec::new();
        for to in mapping.values() {
            if !new_classes.contains(to) {
                new_classes.push(to.clone());
            }
        }
        // Keep the original order of first appearance for stable indices.
        new_classes.sort_by_key(|c| {
            mapping
                .iter()
                .filter(|(_, t)| *t == c)
                .filter_map(|(f, _)| self.classes.iter().position(|x| x == f))
                .min()
        });
        if new_classes.len() < 2 {
            return Err("--classes must leave at least 2 classes".into());
        }
        let old = std::mem::take(&mut self.classes);
        self.examples.retain_mut(|e| match mapping.get(&old[e.label]) {
            Some(to) => {
                e.label = new_classes.iter().position(|c| c == to).expect("class listed");
                true
            }
            None => false,
        });
        self.classes = new_classes;
        Ok(self)
    }

    /// Distinct groups, sorted.
    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self.examples.iter().map(|e| e.group.clone()).collect();
        g.sort();
        g.dedup();
        g
    }
}

/// Splits examples into (train, validation): whole groups go to validation until it holds
/// about `fraction` of the examples; group choice is shuffled with `seed`.
pub fn split_groups(examples: &[Example], fraction: f64, seed: u64) -> (Vec<Example>, Vec<Example>) {
    let mut groups: Vec<String> = examples.iter().map(|e| e.group.clone()).collect();
    groups.sort();
    groups.dedup();
    groups.shuffle(&mut StdRng::seed_from_u64(seed));
    let target = (examples.len() as f64 * fraction).round() as usize;
    let mut val_groups = std::collections::HashSet::new();
    let mut count = 0;
    for g in &groups {
        if count >= target || val_groups.len() + 1 >= groups.len() {
            break;
        }
        count += examples.iter().filter(|e| &e.group == g).count();
        val_groups.insert(g.clone());
    }
    examples
        .iter()
        .cloned()
        .partition(|e| !val_groups.contains(&e.group))
}

/// Assigns whole groups to `k` folds, stratified by each group's majority label: groups are
/// shuffled with `seed`, then each goes to the fold holding the fewest examples of its label
/// (ties: fewest examples overall). Returns the fold index of every example.
pub fn group_folds(examples: &[Example], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(1);
    let mut by_group: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        by_group.entry(e.group.as_str()).or_default().push(i);
    }
    let mut groups: Vec<(&str, Vec<usize>)> = by_group.into_iter().collect();
    groups.shuffle(&mut StdRng::seed_from_u64(seed));
    let labels = examples.iter().map(|e| e.label).max().map_or(0, |m| m + 1);
    let mut per_label = vec![vec![0usize; labels]; k];
    let mut totals = vec![0usize; k];
    let mut fold_of = vec![0usize; examples.len()];
    for (_, members) in groups {
        let mut counts = vec![0usize; labels];
        for &i in &members {
            counts[examples[i].label] += 1;
        }
        let majority = (0..labels).max_by_key(|&l| counts[l]).unwrap_or(0);
        let fold = (0..k)
            .min_by_key(|&f| (per_label[f][majority], totals[f]))
            .expect("k >= 1");
        for &i in &members {
            fold_of[i] = fold;
            per_label[fold][examples[i].label] += 1;
        }
        totals[fold] += members.len();
    }
    fold_of
}
