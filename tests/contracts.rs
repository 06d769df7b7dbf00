//! Shape contracts of the public entries, attention masking, and checkpoints.

mod common;

use std::path::Path;

use burn::tensor::Device;
use common::{classes, noise};
use iconnet::model::checkpoint::{self, CheckpointError, ModelCard};
use iconnet::model::{AudioBatch, ContextConfig, IConNet, ModelConfig, PoolingKind};

fn model(arch: &str, pooling: PoolingKind) -> IConNet {
    let config = ModelConfig::named(arch, 8000, classes(3), pooling).unwrap();
    IConNet::new(&config, &Device::flex())
}

#[test]
fn forward_shapes_for_every_architecture() {
    let long = noise(8000, 1);
    let short = noise(3000, 2);
    for arch in iconnet::model::config::ARCHITECTURES {
        for pooling in [PoolingKind::Mean, PoolingKind::Attention] {
            let m = model(arch, pooling);
            let stride = m.config.total_stride();
            let batch = AudioBatch::from_clips(&[&long, &short], m.config.min_samples());
            assert_eq!((batch.batch, batch.time), (2, 8000));
            let out = m.forward(&batch);
            assert_eq!(out.logits.dims(), [2, 3], "{arch}");
            let frames = 8000 / stride;
            assert_eq!(out.attention.dims(), [2, frames], "{arch}");
            assert_eq!(out.valid_frames, vec![frames, 3000 / stride], "{arch}");
            if let Some(e) = out.band_energy {
                let first = &m.blocks[0];
                assert_eq!(e.dims(), [2, first.bank.filters, 8000 / first.stride], "{arch}");
            } else {
                assert!(m.blocks.is_empty(), "{arch}: FIR model without band energies");
            }
            assert!(out.tape.is_empty(), "{arch}: inference recorded a tape");
            // Without band energies, the same prediction and weights.
            let lean = m.forward_without_band_energy(&batch);
            assert!(lean.band_energy.is_none(), "{arch}");
            let values = |t: burn::tensor::Tensor<2>| -> Vec<f32> { t.into_data().try_to_vec().unwrap() };
            assert_eq!(values(lean.logits), values(out.logits), "{arch}");
            assert_eq!(values(lean.attention), values(out.attention), "{arch}");
        }
    }
}

#[test]
fn attention_sums_to_one_over_valid_frames_and_is_zero_on_padding() {
    for pooling in [PoolingKind::Attention, PoolingKind::Mean] {
        let m = model("m13", pooling);
        let a = noise(16000, 3);
        let b = noise(5000, 4);
        let out = m.forward(&AudioBatch::from_clips(&[&a, &b], 0));
        let [_, frames] = out.attention.dims();
        let w: Vec<f32> = out.attention.into_data().try_to_vec().unwrap();
        for (row, &valid) in out.valid_frames.iter().enumerate() {
            let r = &w[row * frames..(row + 1) * frames];
            let sum: f32 = r[..valid].iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{pooling:?} row {row}: sum {sum}");
            assert!(
                r[valid..].iter().all(|&v| v == 0.0),
                "{pooling:?} row {row}: weight on padding"
            );
            assert!(r[..valid].iter().all(|&v| v >= 0.0));
        }
    }
}

#[test]
fn padding_does_not_change_a_clips_prediction_much() {
    // Zero padding only touches frames near the end through the kernels' reach; the masked
    // pooling must ignore the padded frames themselves.
    let m = model("m13", PoolingKind::Attention);
    let a = noise(6000, 5);
    let alone = m.forward(&AudioBatch::from_clips(&[&a], 0)).logits;
    let padded = m
        .forward(&AudioBatch::from_clips(&[&a, &noise(16000, 6)], 0))
        .logits;
    let x: Vec<f32> = alone.into_data().try_to_vec().unwrap();
    let y: Vec<f32> = padded.into_data().try_to_vec().unwrap();
    for i in 0..3 {
        assert!((x[i] - y[i]).abs() < 1e-4, "logit {i}: {} vs {}", x[i], y[i]);
    }
}

#[test]
fn checkpoint_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.iconnet");
    let m = model("m13", PoolingKind::Attention);
    let mut card = ModelCard::new("test", &m);
    card.notes.push("round trip".into());
    checkpoint::save(&m, &card, &path).unwrap();
    assert!(
        path.with_extension("json").is_file(),
        "readable card beside the checkpoint"
    );
    let (loaded, loaded_card) = checkpoint::load(&path, &Device::flex()).unwrap();
    assert_eq!(loaded_card, card);
    assert_eq!(card.initial_bands_hz.len(), 2);
    assert_eq!(card.initial_bands_hz[0].len(), 128);
    let x = noise(4000, 7);
    let batch = AudioBatch::from_clips(&[&x], 0);
    let a: Vec<f32> = m.forward(&batch).logits.into_data().try_to_vec().unwrap();
    let b: Vec<f32> = loaded.forward(&batch).logits.into_data().try_to_vec().unwrap();
    assert_eq!(a, b);
    assert_eq!(loaded.blocks[1].bank.bands(), m.blocks[1].bank.bands());
}

#[test]
fn statistics_pooling_doubles_the_head_input_and_round_trips() {
    let mut config = ModelConfig::named("tiny", 8000, classes(3), PoolingKind::Attention).unwrap();
    config.pooling_std = true;
    config.validate().unwrap();
    let m = IConNet::new(&config, &Device::flex());
    assert_eq!(m.head.norms[0].gamma.dims(), [2 * config.feature_channels()]);
    let (a, b) = (noise(6000, 8), noise(2500, 9));
    let batch = AudioBatch::from_clips(&[&a, &b], m.config.min_samples());
    let out = m.forward(&batch);
    assert_eq!(out.logits.dims(), [2, 3]);
    let w: Vec<f32> = out.attention.into_data().try_to_vec().unwrap();
    let frames = w.len() / 2;
    for (row, &valid) in out.valid_frames.iter().enumerate() {
        let sum: f32 = w[row * frames..row * frames + valid].iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "row {row}: {sum}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("std.iconnet");
    checkpoint::save(&m, &ModelCard::new("std", &m), &path).unwrap();
    let (loaded, card) = checkpoint::load(&path, &Device::flex()).unwrap();
    assert!(card.config.pooling_std && loaded.config.pooling_std);
    let before: Vec<f32> = m.forward(&batch).logits.into_data().try_to_vec().unwrap();
    let after: Vec<f32> = loaded.forward(&batch).logits.into_data().try_to_vec().unwrap();
    assert_eq!(before, after);
    // Mean pooling takes the same statistics under uniform weights over the valid frames.
    let mut mean = ModelConfig::named("tiny", 8000, classes(3), PoolingKind::Mean).unwrap();
    mean.pooling_std = true;
    mean.validate().unwrap();
    let m = IConNet::new(&mean, &Device::flex());
    assert_eq!(m.head.norms[0].gamma.dims(), [2 * mean.feature_channels()]);
    let out = m.forward(&batch);
    let w: Vec<f32> = out.attention.into_data().try_to_vec().unwrap();
    let frames = w.len() / 2;
    let valid = out.valid_frames[1];
    assert!(
        w[frames..frames + valid]
            .iter()
            .all(|&v| (v - 1.0 / valid as f32).abs() < 1e-7)
    );
}

/// The speech options: log-compressed bands relative to the frame (one more channel per
/// block: the frame's level) and pooling over active frames only. Silence gets exactly zero
/// attention, the weights still sum to one, and the options survive a checkpoint.
#[test]
fn speech_options_ignore_silence_add_level_channels_and_round_trip() {
    let mut config = ModelConfig::named("tiny", 8000, classes(3), PoolingKind::Attention).unwrap();
    config.pooling_std = true;
    config.nlrelu_beta = 100.0;
    config.relative_bands = true;
    config.active_frames_db = Some(30.0);
    config.validate().unwrap();
    // tiny: 8 and 4 filters, each block with its level channel, and the pooled input.
    assert_eq!(config.feature_channels(), 1 + (8 + 1) + (4 + 1));
    let m = IConNet::new(&config, &Device::flex());
    assert_eq!(m.head.norms[0].gamma.dims(), [2 * config.feature_channels()]);
    // One second of noise, then one second 60 dB down.
    let mut x = noise(8000, 4);
    x.extend(noise(8000, 5).iter().map(|v| v * 1e-3));
    let batch = AudioBatch::from_clips(&[&x], m.config.min_samples());
    let out = m.forward(&batch);
    let w: Vec<f32> = out.attention.into_data().try_to_vec().unwrap();
    let stride = config.total_stride();
    let loud = 8000 / stride;
    // Frames whose level window (32 ms) reaches into the loud second are still active.
    let reach = (256 / stride) / 2 + 1;
    assert!(w[..loud].iter().all(|&v| v > 0.0));
    assert!(
        w[loud + reach..].iter().all(|&v| v == 0.0),
        "attention on silence"
    );
    let sum: f32 = w.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "{sum}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("speech.iconnet");
    checkpoint::save(&m, &ModelCard::new("speech", &m), &path).unwrap();
    let (loaded, card) = checkpoint::load(&path, &Device::flex()).unwrap();
    assert_eq!(card.config, config);
    let before: Vec<f32> = m.forward(&batch).logits.into_data().try_to_vec().unwrap();
    let after: Vec<f32> = loaded.forward(&batch).logits.into_data().try_to_vec().unwrap();
    assert_eq!(before, after);
    let mut spectral = ModelConfig::named("logmel", 8000, classes(3), PoolingKind::Attention).unwrap();
    spectral.relative_bands = true;
    assert!(spectral.validate().is_err());
}

#[test]
fn heart_cycle_phases_are_four_more_channels_and_round_trip() {
    let classes = vec!["normal".to_string(), "abnormal".to_string()];
    let mut config = ModelConfig::named("tiny", 1000, classes, PoolingKind::Attention).unwrap();
    let without = config.feature_channels();
    config.cycle_phases = true;
    config.validate().unwrap();
    assert_eq!(config.feature_channels(), without + 4);
    let m = IConNet::new(&config, &Device::flex());
    // 8 s at 1 kHz: an S1-like burst every second and an S2-like one 0.3 s later, over noise.
    let mut x: Vec<f32> = noise(8000, 21).iter().map(|v| 0.02 * v).collect();
    for beat in 0..8 {
        for (onset, len) in [(100, 120), (400, 90)] {
            for k in 0..len {
                let w = (std::f32::consts::PI * k as f32 / len as f32).sin();
                x[beat * 1000 + onset + k] += w * (0.38 * k as f32).sin();
            }
        }
    }
    let batch = AudioBatch::from_clips(&[&x, &x[..2500]], m.config.min_samples());
    let out = m.forward(&batch);
    assert_eq!(out.logits.dims(), [2, 2]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phases.iconnet");
    checkpoint::save(&m, &ModelCard::new("phases", &m), &path).unwrap();
    let (loaded, card) = checkpoint::load(&path, &Device::flex()).unwrap();
    assert!(card.config.cycle_phases);
    let before: Vec<f32> = out.logits.into_data().try_to_vec().unwrap();
    let after: Vec<f32> = loaded.forward(&batch).logits.into_data().try_to_vec().unwrap();
    assert_eq!(before, after);
    // Checkpoints written before the option existed load without it.
    let heart = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/heart.fold1.iconnet");
    let (_, card) = checkpoint::load(&heart, &Device::flex()).unwrap();
    assert!(!card.config.cycle_phases);
}

#[test]
fn temporal_context_pools_frames_masks_padding_and_round_trips() {
    let mut config = ModelConfig::named("tiny", 8000, classes(3), PoolingKind::Attention).unwrap();
    config.context = Some(ContextConfig {
        pool: 4,
        channels: 8,
        kernel: 3,
        dilations: vec![1, 2, 4],
    });
    config.pooling_std = true;
    config.validate().unwrap();
    let m = IConNet::new(&config, &Device::flex());
    assert_eq!(m.config.total_stride(), 32);
    assert_eq!(m.head.norms[0].gamma.dims(), [16]);
    let (a, b) = (noise(8000, 10), noise(3000, 11));
    let batch = AudioBatch::from_clips(&[&a, &b], m.config.min_samples());
    let out = m.forward(&batch);
    assert_eq!(out.logits.dims(), [2, 3]);
    assert_eq!(out.attention.dims(), [2, 250]);
    assert_eq!(out.valid_frames, vec![250, 93]);
    let w: Vec<f32> = out.attention.into_data().try_to_vec().unwrap();
    assert!((w[..250].iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!((w[250..343].iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!(w[343..].iter().all(|&x| x == 0.0));
    // The short clip alone gives the same logits as beside the long one.
    let alone = m.forward(&AudioBatch::from_clips(&[&b], m.config.min_samples()));
    let together: Vec<f32> = out.logits.into_data().try_to_vec().unwrap();
    let alone: Vec<f32> = alone.logits.into_data().try_to_vec().unwrap();
    for (x, y) in alone.iter().zip(&together[3..]) {
        assert!((x - y).abs() < 1e-4, "{alone:?} vs {together:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("context.iconnet");
    checkpoint::save(&m, &ModelCard::new("context", &m), &path).unwrap();
    let (loaded, card) = checkpoint::load(&path, &Device::flex()).unwrap();
    assert_eq!(card.config.context, config.context);
    let before: Vec<f32> = m.forward(&batch).logits.into_data().try_to_vec().unwrap();
    let after: Vec<f32> = loaded.forward(&batch).logits.into_data().try_to_vec().unwrap();
    assert_eq!(before, after);
}

fn load_err(bytes: &[u8]) -> CheckpointError {
    match checkpoint::from_bytes(bytes, Path::new("x.iconnet"), &Device::flex()) {
        Ok(_) => panic!("loaded a bad checkpoint"),
        Err(e) => e,
    }
}

#[test]
fn bad_checkpoints_give_clear_errors() {
    let m = model("tiny", PoolingKind::Attention);
    let card = ModelCard::new("tiny", &m);
    let good = checkpoint::to_bytes(&m, &card).unwrap();
    assert!(checkpoint::from_bytes(&good, Path::new("x"), &Device::flex()).is_ok());

    let e = load_err(&good[..good.len() / 2]);
    assert!(
        matches!(
            e,
            CheckpointError::Truncated { .. } | CheckpointError::Corrupt { .. }
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with("x.iconnet: "), "{e}");
    assert!(matches!(load_err(&good[..5]), CheckpointError::Truncated { .. }));
    assert!(matches!(load_err(b""), CheckpointError::Truncated { .. }));

    let mut corrupt = good.clone();
    let at = good.len() - 100;
    corrupt[at] ^= 0xFF;
    assert!(matches!(load_err(&corrupt), CheckpointError::Corrupt { .. }));

    let mut version = good.clone();
    version[8] = 99;
    let e = load_err(&version);
    assert!(
        matches!(e, CheckpointError::WrongVersion { found: 99, .. }),
        "{e}"
    );

    assert!(matches!(
        load_err(b"RIFF....WAVEfmt "),
        CheckpointError::NotACheckpoint { .. }
    ));
    assert!(matches!(
        load_err(
            &noise(1000, 8)
                .iter()
                .map(|v| (v * 255.0) as u8)
                .collect::<Vec<_>>()
        ),
        CheckpointError::NotACheckpoint { .. }
    ));

    // Weights of one configuration under the card of another.
    let mut other = card.clone();
    other.config.head_hidden = vec![32];
    let e = load_err(&checkpoint::to_bytes(&m, &other).unwrap());
    assert!(matches!(e, CheckpointError::Mismatch { .. }), "{e}");

    // An invalid configuration in the card.
    let mut invalid = card.clone();
    invalid.config.classes = vec!["only".into()];
    let e = load_err(&checkpoint::to_bytes(&m, &invalid).unwrap());
    assert!(matches!(e, CheckpointError::BadCard { .. }), "{e}");

    let e = checkpoint::load(Path::new("/nonexistent/model.iconnet"), &Device::flex())
        .err()
        .unwrap();
    assert!(e.to_string().contains("/nonexistent/model.iconnet"), "{e}");
}

#[test]
fn explain_reports_filters_in_hz_and_analyses_in_seconds() {
    let m = model("m13", PoolingKind::Attention);
    let filters = iconnet::explain::filters(&m);
    assert_eq!(filters.len(), 128 + 32 * 128);
    let first = &filters[5];
    assert_eq!(
        (first.block, first.filter, first.channel, first.sample_rate_hz),
        (0, 5, 0, 8000.0)
    );
    assert!(first.f_low_hz < first.f_high_hz && first.f_high_hz <= 4000.0);
    assert_eq!(first.drift_hz(), 0.0, "an untrained model has not drifted");
    let second = &filters[128 + 130];
    assert_eq!(
        (second.block, second.filter, second.channel, second.sample_rate_hz),
        (1, 1, 2, 1000.0)
    );
    assert_eq!(first.kernel(511).len(), 511);
    let (hz, db) = first.frequency_response(511, 513);
    assert_eq!((hz.len(), db.len()), (513, 513));
    assert_eq!((hz[0], hz[512]), (0.0, 4000.0));
    let peak = hz[db.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0];
    assert!(
        peak >= first.f_low_hz - 10.0 && peak <= first.f_high_hz + 10.0,
        "peak {peak} Hz"
    );

    let x = noise(8000, 9);
    let a = iconnet::explain::analyse(&m, &x);
    assert_eq!(a.probabilities.len(), 3);
    assert!((a.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!(a.attention.len(), 500);
    assert_eq!(a.times_s.len(), 500);
    assert!((a.times_s[0] - 0.001).abs() < 1e-12 && (a.frame_s - 0.002).abs() < 1e-12);
    let energy = a.band_energy.unwrap();
    assert_eq!((energy.len(), energy[0].len()), (128, 1000));
    assert!((a.band_energy_frame_s - 0.001).abs() < 1e-12);
}

#[test]
fn every_bundled_models_kernels_stay_remembered_between_analyses() {
    // The members of an ensemble take turns on every analysis and live hop: if their blocks
    // outgrew the memos, each block's kernel spectra would be dropped just before their next
    // use and recomputed every time (the bundled heart ensemble took 1.6 times as long).
    use iconnet::dsp::memo::{KERNELS_BUDGET_BYTES, SPECTRA_BUDGET_BYTES};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models");
    for name in iconnet::cli::BUNDLED {
        let path = iconnet::cli::bundled_model(&dir, name).unwrap();
        let ensemble = iconnet::model::Ensemble::load(&path, &Device::flex()).unwrap();
        let (mut spectra, mut kernels) = (0, 0);
        for block in ensemble.models().flat_map(|m| m.blocks.iter()) {
            let (h, c, k) = (block.bank.filters, block.bank.in_channels, block.bank.taps);
            spectra += iconnet::dsp::fftconv::remembered_spectra_bytes(h, c, k);
            kernels += h * c * k * std::mem::size_of::<f32>();
        }
        assert!(
            spectra <= SPECTRA_BUDGET_BYTES && kernels <= KERNELS_BUDGET_BYTES,
            "{}: kernel spectra {spectra} B (memo {SPECTRA_BUDGET_BYTES}), kernels {kernels} B (memo {KERNELS_BUDGET_BYTES})",
            path.display()
        );
        eprintln!(
            "{name}: kernel spectra up to {} MB, kernels {} MB",
            spectra >> 20,
            kernels >> 20
        );
    }
}
