//! RIFF/WAVE decoding that is strict about what it accepts and tolerant of what real files do:
//! PCM 8/16/24/32-bit, IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE, any chunks before or after
//! `data`, and `data` sizes that are wrong or never finalised (a crashed recorder).

use super::{AudioError, Decoded};

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Longest recording accepted: 24 h at 192 kHz stereo is far beyond any PCG or speech use.
const MAX_FRAMES: u64 = 24 * 3600 * 192_000;

struct Format {
    tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    block_align: u16,
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Names what a non-WAV file most likely is, for the error message.
fn sniff(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"ID3") || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        "MP3 data, not a WAV file"
    } else if bytes.starts_with(b"fLaC") {
        "FLAC data, not a WAV file"
    } else if bytes.starts_with(b"OggS") {
        "Ogg data, not a WAV file"
    } else if bytes.len() > 8 && &bytes[4..8] == b"ftyp" {
        "MP4/M4A data, not a WAV file"
    } else if bytes.starts_with(b"RIFX") {
        "big-endian RIFX WAV is not supported"
    } else {
        "not a RIFF/WAVE file"
    }
}

/// Decodes WAV bytes into interleaved-to-mono samples in `[-1, 1]` (floats kept as stored).
pub fn decode(bytes: &[u8]) -> Result<Decoded, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Invalid("empty file".into()));
    }
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(AudioError::Invalid(sniff(bytes).into()));
    }
    let mut warnings = Vec::new();
    let mut format: Option<Format> = None;
    let mut pos = 12usize;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let declared = le_u32(bytes, pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if declared < 16 || body + 16 > bytes.len() {
                return Err(AudioError::Invalid("truncated 'fmt ' chunk".into()));
            }
            let mut tag = le_u16(bytes, body);
            if tag == WAVE_FORMAT_EXTENSIBLE {
                if declared < 40 || body + 40 > bytes.len() {
                    return Err(AudioError::Invalid(
                        "truncated WAVE_FORMAT_EXTENSIBLE header".into(),
                    ));
                }
                // The sub-format GUID starts with the plain format tag.
                tag = le_u16(bytes, body + 24);
            }
            format = Some(Format {
                tag,
                channels: le_u16(bytes, body + 2),
                rate: le_u32(bytes, body + 4),
                block_align: le_u16(bytes, body + 12),
                bits: le_u16(bytes, body + 14),
            });
        } else if id == b"data" {
            let fmt = format
                .as_ref()
                .ok_or_else(|| AudioError::Invalid("'data' chunk before 'fmt ' chunk".into()))?;
            let available = bytes.len() - body;
            let mut len = declared;
            if declared == 0 || declared == u32::MAX as usize || declared > available {
                len = available;
                if available > 0 {
                    warnings.push(format!(
                        "header says {declared} data bytes but {available} are present \
                         (unfinalised or truncated file): recovered {available} bytes"
                    ));
                }
            }
            return samples(fmt, &bytes[body..body + len], warnings);
        }
        // Chunks are word aligned; a bogus size simply ends the scan.
        pos = body.saturating_add(declared).saturating_add(declared & 1);
    }
    Err(AudioError::Invalid(if format.is_none() {
        "no 'fmt ' chunk".into()
    } else {
        "no 'data' chunk".into()
    }))
}

fn samples(fmt: &Format, data: &[u8], mut warnings: Vec<String>) -> Result<Decoded, AudioError> {
    let channels = fmt.channels as usize;
    if channels == 0 || channels > 64 {
        return Err(AudioError::Invalid(format!("{} channels", fmt.channels)));
    }
    if fmt.rate == 0 || fmt.rate > 1_000_000 {
        return Err(AudioError::Invalid(format!("sample rate {} Hz", fmt.rate)));
    }
    let width = match (fmt.tag, fmt.bits) {
        (WAVE_FORMAT_PCM, 8 | 16 | 24 | 32) | (WAVE_FORMAT_IEEE_FLOAT, 32 | 64) => fmt.bits as usize / 8,
        (WAVE_FORMAT_PCM | WAVE_FORMAT_IEEE_FLOAT, bits) => {
            return Err(AudioError::Invalid(format!("unsupported {bits}-bit sample size")));
        }
        (tag, _) => {
            return Err(AudioError::Invalid(format!(
                "unsupported WAV encoding (format tag {tag:#06x})"
            )));
        }
    };
    let frame = width * channels;
    if fmt.block_align as usize != frame {
        warnings.push(format!("block align {} corrected to {frame}", fmt.block_align));
    }
    let frames = data.len() / frame;
    if frames as u64 > MAX_FRAMES {
        return Err(AudioError::Invalid(format!("{frames} frames is absurdly long")));
    }
    if !data.len().is_multiple_of(frame) {
        warnings.push(format!(
            "dropped {} trailing bytes of a partial frame",
            data.len() % frame
        ));
    }
    let read = |at: usize| -> f32 {
        let b = &data[at..at + width];
        match (fmt.tag, width) {
            (WAVE_FORMAT_PCM, 1) => (b[0] as f32 - 128.0) / 128.0,
            (WAVE_FORMAT_PCM, 2) => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
            (WAVE_FORMAT_PCM, 3) => (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0,
            (WAVE_FORMAT_PCM, 4) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0,
            (_, 4) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            _ => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
        }
    };
    let mut mono = Vec::with_capacity(frames);
    for f in 0..frames {
        let sum: f32 = (0..channels).map(|c| read(f * frame + c * width)).sum();
        let v = sum / channels as f32;
        if !v.is_finite() {
            return Err(AudioError::Invalid(format!(
                "non-finite sample (NaN/Inf) at frame {f}"
            )));
        }
        mono.push(v);
    }
    Ok(Decoded {
        samples: mono,
        sample_rate: fmt.rate,
        channels: fmt.channels,
        warnings,
    })
}
