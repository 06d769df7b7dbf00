//! Loader fixtures for every WAV/WFDB variant, made here byte by byte, plus real files.

mod common;

use std::path::{Path, PathBuf};

use common::shared_data;
use iconnet::audio::{self, wfdb};

/// A RIFF/WAVE file: `fmt ` body, optional chunks before `data`, `data` size override.
fn wav_bytes(
    fmt: &[u8],
    before_data: &[(&[u8; 4], Vec<u8>)],
    data: &[u8],
    data_size: Option<u32>,
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(b"WAVE");
    body.extend_from_slice(b"fmt ");
    body.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    body.extend_from_slice(fmt);
    for (id, chunk) in before_data {
        body.extend_from_slice(*id);
        body.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        body.extend_from_slice(chunk);
        if chunk.len() % 2 == 1 {
            body.push(0);
        }
    }
    body.extend_from_slice(b"data");
    body.extend_from_slice(&data_size.unwrap_or(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn fmt_chunk(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut f = Vec::new();
    f.extend_from_slice(&tag.to_le_bytes());
    f.extend_from_slice(&channels.to_le_bytes());
    f.extend_from_slice(&rate.to_le_bytes());
    f.extend_from_slice(&(rate * align as u32).to_le_bytes());
    f.extend_from_slice(&align.to_le_bytes());
    f.extend_from_slice(&bits.to_le_bytes());
    f
}

fn extensible(sub_tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let mut f = fmt_chunk(0xFFFE, channels, rate, bits);
    f.extend_from_slice(&22u16.to_le_bytes());
    f.extend_from_slice(&bits.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes()); // channel mask
    f.extend_from_slice(&sub_tag.to_le_bytes());
    f.extend_from_slice(&[
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]);
    f
}

/// The test signal: a ramp in [-0.75, 0.75].
fn ramp(n: usize) -> Vec<f64> {
    (0..n).map(|i| -0.75 + 1.5 * i as f64 / (n - 1) as f64).collect()
}

fn encode(values: &[f64], tag: u16, bits: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        match (tag, bits) {
            (1, 8) => out.push(((v * 128.0).round() + 128.0) as u8),
            (1, 16) => out.extend_from_slice(&((v * 32768.0).round() as i16).to_le_bytes()),
            (1, 24) => out.extend_from_slice(&((v * 8_388_608.0).round() as i32).to_le_bytes()[..3]),
            (1, 32) => out.extend_from_slice(&((v * 2_147_483_648.0).round() as i32).to_le_bytes()),
            (3, 32) => out.extend_from_slice(&(v as f32).to_le_bytes()),
            (3, 64) => out.extend_from_slice(&v.to_le_bytes()),
            _ => unreachable!(),
        }
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((*g as f64 - w).abs() <= tol, "sample {i}: {g} vs {w}");
    }
}

#[test]
fn every_pcm_and_float_encoding_decodes_to_the_same_signal() {
    let dir = tempfile::tempdir().unwrap();
    let x = ramp(101);
    for (tag, bits, tol) in [
        (1u16, 8u16, 1.0 / 128.0),
        (1, 16, 1e-4),
        (1, 24, 1e-6),
        (1, 32, 1e-6),
        (3, 32, 1e-7),
        (3, 64, 1e-7),
    ] {
        for ext in [false, true] {
            let fmt = if ext {
                extensible(tag, 1, 8000, bits)
            } else {
                fmt_chunk(tag, 1, 8000, bits)
            };
            let p = write(
                dir.path(),
                &format!("t{tag}_{bits}_{ext}.wav"),
                &wav_bytes(&fmt, &[], &encode(&x, tag, bits), None),
            );
            let d = audio::load(&p).unwrap_or_else(|e| panic!("{tag}/{bits}/{ext}: {e}"));
            assert_eq!(d.sample_rate, 8000);
            assert!(d.warnings.is_empty(), "{:?}", d.warnings);
            assert_close(&d.samples, &x, tol);
        }
    }
}

#[test]
fn stereo_and_multichannel_are_mixed_to_mono_and_extra_chunks_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let left = ramp(50);
    let right: Vec<f64> = left.iter().map(|v| -v / 3.0).collect();
    let inter: Vec<f64> = left.iter().zip(&right).flat_map(|(l, r)| [*l, *r]).collect();
    let chunks: Vec<(&[u8; 4], Vec<u8>)> = vec![
        (b"LIST", b"INFOISFT\x05\x00\x00\x00sox\x00\x00\x00".to_vec()),
        (b"odd ", vec![1, 2, 3]),
    ];
    let p = write(
        dir.path(),
        "stereo.wav",
        &wav_bytes(&fmt_chunk(1, 2, 16000, 16), &chunks, &encode(&inter, 1, 16), None),
    );
    let d = audio::load(&p).unwrap();
    assert_eq!(d.channels, 2);
    let mono: Vec<f64> = left.iter().zip(&right).map(|(l, r)| (l + r) / 2.0).collect();
    assert_close(&d.samples, &mono, 1e-4);

    let six: Vec<f64> = left.iter().flat_map(|v| [*v; 6]).collect();
    let p = write(
        dir.path(),
        "six.wav",
        &wav_bytes(&extensible(3, 6, 48000, 32), &[], &encode(&six, 3, 32), None),
    );
    assert_close(&audio::load(&p).unwrap().samples, &left, 1e-6);
}

#[test]
fn unfinalised_or_wrong_data_sizes_recover_the_samples_present() {
    let dir = tempfile::tempdir().unwrap();
    let x = ramp(200);
    let data = encode(&x, 1, 16);
    for (name, size) in [("zero", 0u32), ("max", u32::MAX), ("too_big", 1_000_000)] {
        let p = write(
            dir.path(),
            &format!("{name}.wav"),
            &wav_bytes(&fmt_chunk(1, 1, 8000, 16), &[], &data, Some(size)),
        );
        let d = audio::load(&p).unwrap();
        assert_close(&d.samples, &x, 1e-4);
        assert!(!d.warnings.is_empty(), "{name}: recovery must be reported");
    }
    // A recording cut mid-frame keeps every whole frame.
    let mut cut = wav_bytes(&fmt_chunk(1, 1, 8000, 16), &[], &data, Some(0));
    cut.pop();
    let d = audio::load(&write(dir.path(), "cut.wav", &cut)).unwrap();
    assert_close(&d.samples, &x[..199], 1e-4);
    // hound's own writer, never finalised (the RIFF and data sizes stay 0).
    let p = dir.path().join("unfinalised.wav");
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for v in &x {
            w.write_sample((v * 32768.0) as i16).unwrap();
        }
        w.flush().unwrap();
        std::mem::forget(w);
    }
    let d = audio::load(&p).unwrap();
    assert_eq!(d.samples.len(), 200);
}

#[test]
fn unsupported_files_get_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let x = ramp(10);
    let mut nan = encode(&x, 3, 32);
    nan[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.wav", vec![], "empty"),
        (
            "song.wav",
            b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00".to_vec(),
            "MP3",
        ),
        (
            "frame.wav",
            vec![0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "MP3",
        ),
        (
            "random.wav",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
            "not a RIFF/WAVE",
        ),
        (
            "nan.wav",
            wav_bytes(&fmt_chunk(3, 1, 8000, 32), &[], &nan, None),
            "NaN",
        ),
        (
            "adpcm.wav",
            wav_bytes(&fmt_chunk(2, 1, 8000, 4), &[], &[0; 16], None),
            "unsupported",
        ),
        (
            "nofmt.wav",
            b"RIFF\x0c\x00\x00\x00WAVEdata\x00\x00\x00\x00".to_vec(),
            "'data' chunk before",
        ),
        (
            "rate0.wav",
            wav_bytes(&fmt_chunk(1, 1, 0, 16), &[], &[0; 8], None),
            "sample rate",
        ),
        (
            "zero_ch.wav",
            wav_bytes(&fmt_chunk(1, 0, 8000, 16), &[], &[0; 8], None),
            "channels",
        ),
        (
            "nodata.wav",
            wav_bytes(&fmt_chunk(1, 1, 8000, 16), &[], &[], None),
            "no audio samples",
        ),
    ];
    for (name, bytes, reason) in cases {
        let p = write(dir.path(), name, &bytes);
        let e = audio::load(&p)
            .err()
            .unwrap_or_else(|| panic!("{name} loaded"))
            .to_string();
        assert!(e.contains(name), "{name}: {e}");
        assert!(e.contains(reason), "{name}: {e}");
        assert!(!e.contains('\n'), "{name}: {e}");
    }
    let e = audio::load(&dir.path().join("missing.wav"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.wav"), "{e}");
    assert!(audio::load(dir.path()).is_err());
}

/// What the model would only guess at: a recording with no signal is refused with its name;
/// one made at a lower rate than the model's, or shorter than one of its frames, loads with a
/// warning that says so.
#[test]
fn recordings_the_model_cannot_hear_are_refused_or_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let pcm16 =
        |rate, values: &[f64]| wav_bytes(&fmt_chunk(1, 1, rate, 16), &[], &encode(values, 1, 16), None);
    for (name, value) in [("silent.wav", 0.0), ("dc.wav", 0.25)] {
        let path = write(dir.path(), name, &pcm16(8000, &vec![value; 8000]));
        let e = audio::load_for_model(&path, 8000, 16).unwrap_err().to_string();
        assert!(
            e.contains(name) && e.contains("no signal: all 8000 samples are"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1);
    }
    let tone: Vec<f64> = (0..4000).map(|i| (i as f64 * 0.3).sin() * 0.5).collect();
    let low = write(dir.path(), "low.wav", &pcm16(4000, &tone));
    let (x, d) = audio::load_for_model(&low, 8000, 16).unwrap();
    assert_eq!(x.len(), 8000);
    assert_eq!(
        d.warnings,
        [
            "recorded at 4000 Hz, below the model's 8000 Hz: it holds nothing above 2000 Hz, where the model's upper bands listen"
        ]
    );
    assert!(
        audio::load_for_model(&low, 4000, 16)
            .unwrap()
            .1
            .warnings
            .is_empty()
    );
    // 10 samples at 8 kHz against a 16-sample frame.
    let short = write(dir.path(), "short.wav", &pcm16(8000, &tone[..10]));
    let (_, d) = audio::load_for_model(&short, 8000, 16).unwrap();
    assert_eq!(
        d.warnings,
        ["0.001 s is shorter than one frame of the model (0.002 s): padded with silence"]
    );
}

#[test]
fn wfdb_records_in_wav_format16_and_212_choose_the_pcg_channel() {
    let dir = tempfile::tempdir().unwrap();
    let adc: Vec<i32> = (0..300).map(|i| ((i * 37) % 2001) - 1000).collect();
    // 16+44: the PhysioNet 2016 layout, a .wav whose 44-byte header is skipped.
    let as_unit: Vec<f64> = adc.iter().map(|&v| v as f64 / 32768.0).collect();
    std::fs::write(
        dir.path().join("a0001.wav"),
        wav_bytes(&fmt_chunk(1, 1, 2000, 16), &[], &encode(&as_unit, 1, 16), None),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a0001.hea"),
        "a0001 1 2000 300\na0001.wav 16+44 1(0)/mV 16 0 -1000 0 0 PCG\n",
    )
    .unwrap();
    let d = audio::load(&dir.path().join("a0001.hea")).unwrap();
    assert_eq!(d.sample_rate, 2000);
    assert_eq!(d.samples.iter().map(|&v| v as i32).collect::<Vec<_>>(), adc);

    // Format 16, two interleaved signals, ECG first: the PCG one is chosen.
    let ecg: Vec<i32> = adc.iter().map(|v| -v / 2).collect();
    let mut dat = Vec::new();
    for (e, p) in ecg.iter().zip(&adc) {
        dat.extend_from_slice(&(*e as i16).to_le_bytes());
        dat.extend_from_slice(&(*p as i16).to_le_bytes());
    }
    std::fs::write(dir.path().join("rec16.dat"), dat).unwrap();
    std::fs::write(
        dir.path().join("rec16.hea"),
        "# comment\nrec16 2 1000 300\nrec16.dat 16 200(10)/mV 16 0 0 0 0 ECG\nrec16.dat 16 1000(0)/mV 16 0 0 0 0 PCG signal\n",
    )
    .unwrap();
    let d = audio::load(&dir.path().join("rec16.dat")).unwrap();
    assert_eq!(d.sample_rate, 1000);
    for (g, w) in d.samples.iter().zip(&adc) {
        assert!((*g as f64 - *w as f64 / 1000.0).abs() < 1e-6);
    }
    assert!(d.warnings.iter().any(|w| w.contains("PCG")));

    // Format 212, single signal, odd sample count.
    let short: Vec<i32> = adc[..299].iter().map(|v| v * 2).collect();
    std::fs::write(dir.path().join("r212.dat"), wfdb::pack_212(&short)).unwrap();
    std::fs::write(
        dir.path().join("r212.hea"),
        "r212 1 4000 299\nr212.dat 212 100/mV 12 0 0 0 0 PCG\n",
    )
    .unwrap();
    let d = audio::load(&dir.path().join("r212.hea")).unwrap();
    assert_eq!(d.samples.len(), 299);
    for (g, w) in d.samples.iter().zip(&short) {
        assert!((*g as f64 - *w as f64 / 100.0).abs() < 1e-6);
    }

    // Broken records name the problem.
    std::fs::write(
        dir.path().join("bad.hea"),
        "bad 1 2000 10\nmissing.dat 16 1/mV 16 0 0 0 0 PCG\n",
    )
    .unwrap();
    let e = audio::load(&dir.path().join("bad.hea"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("bad.hea") && e.contains("missing.dat"), "{e}");
    std::fs::write(
        dir.path().join("fmt.hea"),
        "fmt 1 2000 10\nfmt.dat 310 1/mV 16 0 0 0 0 PCG\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("fmt.dat"), [0u8; 30]).unwrap();
    let e = audio::load(&dir.path().join("fmt.hea"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("format 310"), "{e}");
}

#[test]
fn real_heart_and_emotion_recordings_load_and_resample() {
    let heart = shared_data().join("heart/a0005.wav");
    let d = audio::load(&heart).unwrap();
    assert_eq!(d.sample_rate, 2000);
    assert!(d.duration_s() > 5.0);
    let (x, _) = audio::load_for_model(&heart, 4000, 0).unwrap();
    assert!((x.len() as f64 - 2.0 * d.samples.len() as f64).abs() <= 1.0);
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
    let rms = (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    assert!(
        mean.abs() < 1e-3 && (rms - 1.0).abs() < 1e-3,
        "normalised: mean {mean} rms {rms}"
    );

    // RAVDESS files carry a LIST chunk before 'data'.
    let emotion = shared_data().join("emotion/03-01-05-02-01-01-07.wav");
    let bytes = std::fs::read(&emotion).unwrap();
    let d = audio::load(&emotion).unwrap();
    assert_eq!(d.sample_rate, 16000);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let reader = hound::WavReader::open(&emotion).unwrap();
    assert_eq!(d.samples.len(), reader.len() as usize);
    assert!(bytes.len() > 44 + 2 * d.samples.len() - 1);
}

/// A heart recording shorter than the 5 s excerpts the bundled heart model learned from loads
/// with a warning that says so and cites the model's measured figures; a whole record does not, and neither does a spoken digit,
/// shorter than its model's 1 s crops but whole, as the digits it learned from were.
#[test]
fn recordings_shorter_than_the_training_excerpts_are_flagged() {
    use iconnet::model::Ensemble;
    let device = burn::tensor::Device::flex();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/models");
    let heart = Ensemble::load(&models.join("heart.ensemble"), &device).unwrap();
    let record = shared_data().join("heart/a0013.wav");
    assert!(heart.load_recording(&record).unwrap().1.warnings.is_empty());
    let whole = audio::load(&record).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let excerpt = dir.path().join("a0013-3s.wav");
    common::write_wav16(
        &excerpt,
        &whole.samples[..3 * whole.sample_rate as usize],
        whole.sample_rate,
    );
    let (samples, d) = heart.load_recording(&excerpt).unwrap();
    assert_eq!(samples.len(), 3 * heart.config().sample_rate as usize);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    // The bundled ensemble's manifest carries its own figures by excerpt length.
    assert_eq!(
        d.warnings[0],
        "3.0 s is shorter than the 5 s excerpts the model learned from: its held-out MAcc falls \
from 0.78 on 5 s excerpts to 0.75 on 3 s; record at least 5 s"
    );
    let digits = Ensemble::load(&models.join("digits.ensemble"), &device).unwrap();
    let digit = shared_data().join("fsdd/7_george_3.wav");
    assert!(audio::load(&digit).unwrap().duration_s() < 1.0);
    assert!(digits.load_recording(&digit).unwrap().1.warnings.is_empty());
}
