//! PhysioNet WFDB records: a `.hea` header pointing at a `.wav` (format `16+44`) or `.dat` file
//! in format 16 or 212. The PCG channel is chosen by its description.

use std::path::Path;

use super::{AudioError, Decoded};

struct Signal {
    file: String,
    format: u32,
    offset: usize,
    gain: f64,
    baseline: f64,
    description: String,
}

/// Reads the record described by the header at `path`.
pub fn load(path: &Path) -> Result<Decoded, AudioError> {
    let text = std::fs::read_to_string(path).map_err(AudioError::Io)?;
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let record = lines
        .next()
        .ok_or_else(|| AudioError::Invalid("empty WFDB header".into()))?;
    let fields: Vec<&str> = record.split_whitespace().collect();
    if fields.len() < 2 {
        return Err(AudioError::Invalid(format!("bad WFDB record line '{record}'")));
    }
    let n_signals: usize = fields[1]
        .parse()
        .map_err(|_| AudioError::Invalid(format!("bad signal count '{}'", fields[1])))?;
    let rate: f64 = match fields.get(2) {
        // "2000/1000" gives a counter frequency after the slash; the sampling rate comes first.
        Some(f) => f
            .split('/')
            .next()
            .unwrap_or("")
            .parse()
            .map_err(|_| AudioError::Invalid(format!("bad sampling frequency '{f}'")))?,
        None => 250.0,
    };
    if !(1.0..=1e6).contains(&rate) {
        return Err(AudioError::Invalid(format!("sampling frequency {rate} Hz")));
    }
    let n_samples: Option<usize> = fields.get(3).and_then(|s| s.parse().ok());
    let signals: Vec<Signal> = lines
        .take(n_signals)
        .map(parse_signal)
        .collect::<Result<_, _>>()?;
    if signals.is_empty() {
        return Err(AudioError::Invalid("WFDB header lists no signals".into()));
    }
    let chosen = signals
        .iter()
        .position(|s| s.description.to_ascii_uppercase().contains("PCG"))
        .unwrap_or(0);
    let sig = &signals[chosen];
    // Signals stored in the same file are interleaved frame by frame.
    let group: Vec<usize> = (0..signals.len())
        .filter(|&i| signals[i].file == sig.file)
        .collect();
    let lane = group
        .iter()
        .position(|&i| i == chosen)
        .expect("chosen is in its group");
    let data_path = path.with_file_name(&sig.file);
    let bytes = std::fs::read(&data_path)
        .map_err(|e| AudioError::Invalid(format!("signal file {}: {e}", data_path.display())))?;
    let data = bytes.get(sig.offset..).ok_or_else(|| {
        AudioError::Invalid(format!(
            "signal file {} is shorter than its byte offset",
            sig.file
        ))
    })?;
    let raw: Vec<i32> = match sig.format {
        16 => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as i32)
            .collect(),
        212 => unpack_212(data),
        80 => data.iter().map(|&b| b as i32 - 128).collect(),
        other => {
            return Err(AudioError::Invalid(format!(
                "WFDB storage format {other} is not supported (16, 212, 80 are)"
            )));
        }
    };
    let mut values: Vec<f32> = raw
        .iter()
        .skip(lane)
        .step_by(group.len())
        .map(|&v| ((v as f64 - sig.baseline) / sig.gain) as f32)
        .collect();
    let mut warnings = Vec::new();
    if let Some(n) = n_samples.filter(|&n| n > 0) {
        if values.len() < n {
            warnings.push(format!("header promises {n} samples, {} present", values.len()));
        }
        values.truncate(n);
    }
    if values.is_empty() {
        return Err(AudioError::Invalid(format!(
            "signal file {} holds no samples",
            sig.file
        )));
    }
    if signals.len() > 1 {
        warnings.push(format!(
            "using channel {chosen} ('{}') of {}",
            sig.description,
            signals.len()
        ));
    }
    Ok(Decoded {
        samples: values,
        sample_rate: rate.round() as u32,
        channels: 1,
        warnings,
    })
}

fn parse_signal(line: &str) -> Result<Signal, AudioError> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 2 {
        return Err(AudioError::Invalid(format!("bad WFDB signal line '{line}'")));
    }
    let (format, offset) = match f[1].split_once('+') {
        Some((fmt, off)) => (
            fmt,
            off.parse()
                .map_err(|_| AudioError::Invalid(format!("bad byte offset in '{}'", f[1])))?,
        ),
        None => (f[1], 0usize),
    };
    // Skew ("16x2") and samples-per-frame ("16:3") suffixes do not apply to PCG records.
    let format: u32 = format
        .split(['x', ':'])
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| AudioError::Invalid(format!("bad storage format '{}'", f[1])))?;
    // "1(0)/mV": gain 1, baseline 0. Missing or zero gain means 200 adu per unit (WFDB default).
    let (mut gain, mut baseline) = (200.0, 0.0);
    if let Some(spec) = f.get(2) {
        let spec = spec.split('/').next().unwrap_or("");
        let (g, b) = match spec.split_once('(') {
            Some((g, rest)) => (g, rest.trim_end_matches(')').parse().ok()),
            None => (spec, None),
        };
        if let Ok(g) = g.parse::<f64>()
            && g != 0.0
        {
            gain = g;
        }
        if let Some(b) = b {
            baseline = b;
        } else if let Some(zero) = f.get(4).and_then(|z| z.parse().ok()) {
            baseline = zero;
        }
    }
    Ok(Signal {
        file: f[0].to_string(),
        format,
        offset,
        gain,
        baseline,
        description: f.get(8..).map(|d| d.join(" ")).unwrap_or_default(),
    })
}

/// Format 212: pairs of 12-bit two's-complement samples packed in 3 bytes.
fn unpack_212(data: &[u8]) -> Vec<i32> {
    let mut out = Vec::with_capacity(data.len() * 2 / 3);
    let sign = |v: i32| if v & 0x800 != 0 { v - 0x1000 } else { v };
    for b in data.chunks_exact(3) {
        out.push(sign(b[0] as i32 | ((b[1] as i32 & 0x0F) << 8)));
        out.push(sign(b[2] as i32 | ((b[1] as i32 & 0xF0) << 4)));
    }
    out
}

/// Packs samples in format 212 (for tests and fixtures).
pub fn pack_212(samples: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    for pair in samples.chunks(2) {
        let a = pair[0] & 0xFFF;
        let b = pair.get(1).copied().unwrap_or(0) & 0xFFF;
        out.push((a & 0xFF) as u8);
        out.push(((a >> 8) | ((b >> 8) << 4)) as u8);
        out.push((b & 0xFF) as u8);
    }
    out
}
