//! Audio input: WAV and PhysioNet WFDB decoding, mono mixdown, resampling, normalisation.

pub mod resample;
pub mod wav;
pub mod wfdb;

use std::path::{Path, PathBuf};

/// Decoded mono audio at its native rate.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Mono samples (multi-channel files are averaged), nominally in `[-1, 1]`.
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    /// Channels in the file before mixdown.
    pub channels: u16,
    /// Problems that were recovered from (e.g. an unfinalised header).
    pub warnings: Vec<String>,
}

impl Decoded {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

/// An [`AudioError`] with the file it came from: displays as one line, `FILE: reason`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct LoadError {
    pub path: PathBuf,
    pub error: AudioError,
}

/// Largest file read into memory (2 GiB): anything bigger is not a plausible recording.
const MAX_FILE_BYTES: u64 = 2 << 30;

/// Reads a WAV file or a WFDB record (`.hea`, or a `.dat` with its header beside it).
pub fn load(path: &Path) -> Result<Decoded, LoadError> {
    let err = |error| LoadError {
        path: path.to_path_buf(),
        error,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let header = match ext.as_deref() {
        Some("hea") => Some(path.to_path_buf()),
        Some("dat") => Some(path.with_extension("hea")),
        _ => None,
    };
    let decoded = if let Some(header) = header {
        wfdb::load(&header).map_err(err)?
    } else {
        let meta = std::fs::metadata(path).map_err(|e| err(AudioError::Io(e)))?;
        if meta.is_dir() {
            return Err(err(AudioError::Invalid("is a directory".into())));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(err(AudioError::Invalid(format!(
                "{} bytes is too large for a recording",
                meta.len()
            ))));
        }
        let bytes = std::fs::read(path).map_err(|e| err(AudioError::Io(e)))?;
        wav::decode(&bytes).map_err(err)?
    };
    if decoded.samples.is_empty() {
        return Err(err(AudioError::Invalid("no audio samples".into())));
    }
    Ok(decoded)
}

/// Zero mean, unit RMS: recordings differ in gain and DC offset by device, not by class.
pub fn normalize(samples: &mut [f32]) {
    if samples.is_empty() {
        return;
    }
    let mean = samples.iter().map(|&v| v as f64).sum::<f64>() / samples.len() as f64;
    let var = samples.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / samples.len() as f64;
    let scale = if var > 1e-16 { 1.0 / var.sqrt() } else { 1.0 };
    for v in samples.iter_mut() {
        *v = ((*v as f64 - mean) * scale) as f32;
    }
}

/// Whether `samples` carry no signal: every sample the same (digital silence or a constant).
pub fn is_flat(samples: &[f32]) -> bool {
    samples
        .first()
        .is_none_or(|&first| samples.iter().all(|&v| v == first))
}

/// Loads `path`, resamples it to `rate` and normalises it: what the model sees. A recording
/// with no signal (every sample the same) is refused: any prediction on it would be the
/// model's bias. `decoded.warnings` also says when the recording is too short for one of the
/// model's frames (`min_samples` at `rate`) or was made at a lower rate than the model's.
pub fn load_for_model(path: &Path, rate: u32, min_samples: usize) -> Result<(Vec<f32>, Decoded), LoadError> {
    let err = |e: String| LoadError {
        path: path.to_path_buf(),
        error: AudioError::Invalid(e),
    };
    let mut decoded = load(path)?;
    if is_flat(&decoded.samples) {
        return Err(err(format!(
            "no signal: all {} samples are {}, nothing to analyse",
            decoded.samples.len(),
            decoded.samples[0]
        )));
    }
    let mut samples = resample::resample(&decoded.samples, decoded.sample_rate, rate).map_err(err)?;
    normalize(&mut samples);
    decoded
        .warnings
        .extend(input_warnings(&decoded, rate, min_samples));
    Ok((samples, decoded))
}

/// What limits a model's reading of `decoded`: a sample rate below the model's (the top bands
/// hear nothing) and a length under one of its frames (padded with silence).
fn input_warnings(decoded: &Decoded, rate: u32, min_samples: usize) -> Vec<String> {
    let mut warnings = Vec::new();
    if decoded.sample_rate < rate {
        warnings.push(format!(
            "recorded at {} Hz, below the model's {rate} Hz: it holds nothing above {} Hz, where the \
model's upper bands listen",
            decoded.sample_rate,
            decoded.sample_rate / 2
        ));
    }
    let needed_s = min_samples as f64 / rate as f64;
    if decoded.duration_s() < needed_s {
        warnings.push(format!(
            "{:.3} s is shorter than one frame of the model ({needed_s:.3} s): padded with silence",
            decoded.duration_s()
        ));
    }
    warnings
}
