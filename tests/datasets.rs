//! Dataset layouts from fabricated fixtures, class mapping, and group-disjoint splits.

mod common;

use std::path::Path;

use iconnet::train::dataset::{discover, split_groups};

fn touch_wav(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    common::write_wav16(&dir.join(name), &common::noise(400, 1), 8000);
}

#[test]
fn every_layout_is_recognised_with_its_groups() {
    let root = tempfile::tempdir().unwrap();
    let fsdd = root.path().join("fsdd");
    for name in ["0_george_0.wav", "7_jackson_12.wav", "9_theo_49.wav"] {
        touch_wav(&fsdd, name);
    }
    let d = discover(&fsdd).unwrap();
    assert_eq!(d.layout, "fsdd");
    assert_eq!(d.classes.len(), 10);
    let labels: Vec<(usize, &str)> = d.examples.iter().map(|e| (e.label, e.group.as_str())).collect();
    assert_eq!(labels, vec![(0, "george"), (7, "jackson"), (9, "theo")]);

    let ravdess = root.path().join("ravdess");
    for name in [
        "03-01-01-01-01-01-01.wav",
        "03-01-05-02-01-01-07.wav",
        "03-01-08-02-02-02-24.wav",
    ] {
        touch_wav(&ravdess, name);
    }
    let d = discover(&ravdess).unwrap();
    assert_eq!(d.layout, "ravdess");
    let got: Vec<(String, String)> = d
        .examples
        .iter()
        .map(|e| (d.classes[e.label].clone(), e.group.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("neutral".into(), "actor01".into()),
            ("angry".into(), "actor07".into()),
            ("surprised".into(), "actor24".into())
        ]
    );

    let crema = root.path().join("crema");
    for name in ["1001_DFA_ANG_XX.wav", "1091_WSI_SAD_HI.wav"] {
        touch_wav(&crema, name);
    }
    let d = discover(&crema).unwrap();
    assert_eq!(d.layout, "crema-d");
    assert_eq!(d.classes[d.examples[0].label], "angry");
    assert_eq!(d.examples[1].group, "1091");

    // PhysioNet: training-a/b folders, each with its REFERENCE.csv; a record without audio is skipped.
    let heart = root.path().join("heart");
    touch_wav(&heart.join("training-a"), "a0001.wav");
    touch_wav(&heart.join("training-a"), "a0002.wav");
    touch_wav(&heart.join("training-b"), "b0001.wav");
    std::fs::write(
        heart.join("training-a/REFERENCE.csv"),
        "a0001,1\na0002,-1\na0003,1\n",
    )
    .unwrap();
    std::fs::write(heart.join("training-b/REFERENCE.csv"), "b0001,-1,1\n").unwrap();
    let d = discover(&heart).unwrap();
    assert_eq!(d.layout, "physionet-2016");
    assert_eq!(d.classes, vec!["normal", "abnormal"]);
    let got: Vec<(usize, &str)> = d.examples.iter().map(|e| (e.label, e.group.as_str())).collect();
    assert_eq!(got, vec![(1, "a0001"), (0, "a0002"), (0, "b0001")]);
    std::fs::write(heart.join("training-b/REFERENCE.csv"), "b0001,normal\n").unwrap();
    let e = discover(&heart).unwrap_err();
    assert!(e.contains("REFERENCE.csv") && e.contains("line 1"), "{e}");

    let folders = root.path().join("folders");
    touch_wav(&folders.join("murmur"), "spk1_a.wav");
    touch_wav(&folders.join("murmur"), "spk2_b.wav");
    touch_wav(&folders.join("clean"), "spk1_c.wav");
    let d = discover(&folders).unwrap();
    assert_eq!(d.layout, "folder-per-class");
    assert_eq!(d.classes, vec!["clean", "murmur"]);
    assert_eq!(d.groups(), vec!["spk1", "spk2"]);

    assert!(discover(&root.path().join("missing")).is_err());
}

#[test]
fn classes_can_be_subset_and_merged() {
    let dir = tempfile::tempdir().unwrap();
    for (i, emotion) in ["01", "02", "03", "04", "05"].iter().enumerate() {
        touch_wav(dir.path(), &format!("03-01-{emotion}-01-01-01-{:02}.wav", i + 1));
    }
    let d = discover(dir.path()).unwrap();
    let four = d.clone().map_classes("neutral,calm=neutral,happy,sad").unwrap();
    assert_eq!(four.classes, vec!["neutral", "happy", "sad"]);
    let labels: Vec<&str> = four
        .examples
        .iter()
        .map(|e| four.classes[e.label].as_str())
        .collect();
    assert_eq!(labels, vec!["neutral", "neutral", "happy", "sad"]);
    assert!(d.clone().map_classes("joy,sad").unwrap_err().contains("joy"));
    assert!(d.map_classes("sad").is_err(), "one class is not a classifier");
}

#[test]
fn validation_split_never_shares_a_group_with_training() {
    let d = discover(&common::shared_data().join("fsdd")).unwrap();
    for seed in 0..5 {
        let (train, val) = split_groups(&d.examples, 0.2, seed);
        assert_eq!(train.len() + val.len(), 3000);
        let t: std::collections::HashSet<_> = train.iter().map(|e| &e.group).collect();
        assert!(val.iter().all(|e| !t.contains(&e.group)));
        assert!(!val.is_empty() && !train.is_empty());
    }
}

#[test]
fn folds_are_group_disjoint_and_stratified() {
    use iconnet::train::dataset::group_folds;
    let heart = discover(&common::shared_data().join("heart")).unwrap();
    let folds = group_folds(&heart.examples, 5, 1);
    for f in 0..5 {
        let (normal, abnormal) =
            heart
                .examples
                .iter()
                .zip(&folds)
                .filter(|(_, k)| **k == f)
                .fold(
                    (0, 0),
                    |(n, a), (e, _)| if e.label == 0 { (n + 1, a) } else { (n, a + 1) },
                );
        assert_eq!((normal, abnormal), (40, 40), "fold {f}");
    }
    let fsdd = discover(&common::shared_data().join("fsdd")).unwrap();
    let folds = group_folds(&fsdd.examples, 3, 2);
    let mut fold_of_speaker = std::collections::HashMap::new();
    for (e, f) in fsdd.examples.iter().zip(&folds) {
        assert_eq!(
            *fold_of_speaker.entry(e.group.clone()).or_insert(*f),
            *f,
            "speaker split"
        );
    }
    let mut sizes = [0; 3];
    folds.iter().for_each(|f| sizes[*f] += 1);
    assert_eq!(sizes, [1000, 1000, 1000]);
}

#[test]
fn a_file_names_group_is_the_group_discover_gives_it() {
    // The app's training-speaker warning reads the group from a file name alone; it must be the
    // group the data set put that file in when the model was trained.
    use iconnet::train::dataset::group_of_file;
    let root = tempfile::tempdir().unwrap();
    let layouts: [(&str, &[&str]); 3] = [
        ("fsdd", &["0_george_0.wav", "7_jackson_12.wav"]),
        (
            "ravdess",
            &["03-01-01-01-01-01-01.wav", "03-01-05-02-01-01-07.wav"],
        ),
        ("crema", &["1001_DFA_ANG_XX.wav", "1091_WSI_SAD_HI.wav"]),
    ];
    for (dir, names) in layouts {
        let dir = root.path().join(dir);
        for name in names {
            touch_wav(&dir, name);
        }
        let d = discover(&dir).unwrap();
        for e in &d.examples {
            let stem = e.path.file_stem().unwrap().to_str().unwrap();
            assert_eq!(
                group_of_file(d.layout, stem).as_deref(),
                Some(e.group.as_str()),
                "{stem}"
            );
        }
        assert_eq!(group_of_file(d.layout, "not-a-name-of-this-layout"), None);
    }
    assert_eq!(group_of_file("physionet-2016", "a0013").as_deref(), Some("a0013"));
    assert_eq!(group_of_file("folder-per-class", "anything"), None);
}
