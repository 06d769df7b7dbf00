//! End to end: a short run on a small FSDD subset beats chance clearly on a held-out speaker.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::tensor::Device;
use common::shared_data;
use iconnet::model::checkpoint::{self, ModelCard};
use iconnet::model::{ModelConfig, PoolingKind};
use iconnet::train::dataset::{discover, split_groups};
use iconnet::train::trainer::{TrainOptions, evaluate, load_clips, train};

#[test]
fn short_training_beats_chance_on_an_unseen_speaker() {
    let data = discover(&shared_data().join("fsdd"))
        .unwrap()
        .map_classes("0,1,2,3")
        .unwrap();
    assert_eq!(data.classes, vec!["0", "1", "2", "3"]);
    let speakers = ["jackson", "nicolas", "theo", "yweweler"];
    // 20 recordings per digit and speaker keeps the run near a minute of CPU.
    let mut counts = std::collections::HashMap::new();
    let examples: Vec<_> = data
        .examples
        .into_iter()
        .filter(|e| speakers.contains(&e.group.as_str()) || e.group == "lucas")
        .filter(|e| {
            let c = counts.entry((e.group.clone(), e.label)).or_insert(0);
            *c += 1;
            *c <= 20
        })
        .collect();
    let (test, rest): (Vec<_>, Vec<_>) = examples.into_iter().partition(|e| e.group == "lucas");
    let (train_ex, val_ex) = split_groups(&rest, 0.25, 3);
    let groups = |v: &[iconnet::train::dataset::Example]| {
        v.iter()
            .map(|e| e.group.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(
        groups(&train_ex).is_disjoint(&groups(&val_ex)),
        "a speaker in both train and validation"
    );
    assert!(!groups(&train_ex).contains("lucas") && !groups(&val_ex).contains("lucas"));

    let config = ModelConfig::named("m13", 8000, data.classes.clone(), PoolingKind::Attention).unwrap();
    let (train_clips, e1) = load_clips(&train_ex, 8000);
    let (val_clips, e2) = load_clips(&val_ex, 8000);
    let (test_clips, e3) = load_clips(&test, 8000);
    assert!(e1.is_empty() && e2.is_empty() && e3.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        epochs: 8,
        batch_size: 8,
        crop_seconds: 0.8,
        crops_per_recording: 1,
        max_lr: 3e-3,
        weight_decay: 1e-4,
        clip_norm: 1.0,
        seed: 7,
        out: dir.path().join("digits.iconnet"),
        show_progress: false,
        augment: iconnet::train::augment::Augment::DEFAULT,
        stop_after_epoch: None,
        average_epochs: None,
        // The subset is balanced, so the weights are all 1: this runs the weighted loss path.
        balanced_loss: true,
        teacher: None,
        selection: iconnet::train::trainer::Selection::Uar,
    };
    let device = Device::flex();
    let report = train(
        &config,
        &train_clips,
        &val_clips,
        &options,
        |m| ModelCard::new("digits", m),
        &device,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    assert!(
        report.samples_per_second > 5.0,
        "{} samples/s",
        report.samples_per_second
    );
    let (best, card) = checkpoint::load(&options.out, &device).unwrap();
    assert_eq!(card.config, config);
    let metrics = evaluate(&best, &test_clips);
    eprintln!("held-out speaker lucas: {}", metrics.summary());
    assert_eq!(metrics.n, 80);
    // Chance is 0.25.
    assert!(metrics.accuracy >= 0.55, "held-out accuracy {}", metrics.accuracy);
}
