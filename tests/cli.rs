//! The `iconnet` binary: train a tiny model, then predict with JSON output and a bad file.

mod common;

use std::process::Command;

use burn::tensor::Device;
use common::shared_data;
use iconnet::model::checkpoint;
use iconnet::model::ensemble::Manifest;

fn iconnet() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iconnet"));
    c.env("ICONNET_BACKEND", "flex");
    c
}

#[test]
fn train_then_predict_json_with_one_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.iconnet");
    let out = iconnet()
        .args([
            "train",
            shared_data().join("fsdd").to_str().unwrap(),
            "--arch",
            "tiny",
            "--epochs",
            "1",
            "--limit",
            "3",
            "--quiet",
            "--min-snr-db",
            "40",
            "--tilt",
            "0.3",
            "--dropout",
            "0.25",
        ])
        .args([
            "--groups",
            "jackson,theo,lucas",
            "--holdout",
            "lucas",
            "--out",
            model.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "train failed: {stderr}");
    assert!(
        stderr.contains("validation") && stderr.contains("test"),
        "{stderr}"
    );
    assert!(model.is_file() && model.with_extension("json").is_file());

    let card = iconnet()
        .args(["card", model.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(card.status.success());
    let card: serde_json::Value = serde_json::from_slice(&card.stdout).unwrap();
    assert_eq!(card["config"]["arch"], "tiny");
    assert_eq!(card["training"]["test_groups"][0], "lucas");
    assert_eq!(card["config"]["dropout"], 0.25);
    // --min-snr-db 40 turns the noise off; the card says what ran.
    assert_eq!(
        card["training"]["augmentation"],
        "speed +-0.15, spectral tilt x[t]-a x[t-1] with |a|<=0.3"
    );
    assert!(card["metrics"]["test"]["accuracy"].is_number());

    let bad = dir.path().join("bad.wav");
    std::fs::write(&bad, b"ID3 not audio").unwrap();
    let good = shared_data().join("fsdd/3_lucas_7.wav");
    let out = iconnet()
        .args(["predict", "--json", "--model", model.to_str().unwrap()])
        .args([
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
            good.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a failed file must set the exit code");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 3);
    let first = &items[0];
    assert_eq!(first["model"], "tiny");
    let probs = first["probabilities"].as_object().unwrap();
    assert_eq!(probs.len(), 10);
    let total: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4);
    assert!(probs.contains_key(first["top_class"].as_str().unwrap()));
    let times = first["attention"]["times_s"].as_array().unwrap();
    let weights = first["attention"]["weights"].as_array().unwrap();
    assert_eq!(times.len(), weights.len());
    assert!(!times.is_empty());
    let wsum: f64 = weights.iter().map(|v| v.as_f64().unwrap()).sum();
    assert!((wsum - 1.0).abs() < 1e-4);
    assert!(
        first.get("heart_cycle").is_none(),
        "a digits model has no heart cycle"
    );
    assert!(items[1]["error"].as_str().unwrap().contains("MP3"));
    assert!(items[1].get("probabilities").is_none());
    assert_eq!(items[2]["probabilities"], items[0]["probabilities"]);
    // lucas was held out; a recording by a training speaker is marked as such.
    assert!(first.get("seen_in_training").is_none(), "{first}");
    let trained_on = shared_data().join("fsdd/3_jackson_7.wav");
    let out = iconnet()
        .args(["predict", "--model", model.to_str().unwrap()])
        .arg(&trained_on)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "3_jackson_7.wav: jackson trained or validated 1 of the 1 member(s): not a held-out prediction"
        ),
        "{stderr}"
    );
    let out = iconnet()
        .args(["predict", "--json", "--model", model.to_str().unwrap()])
        .arg(&trained_on)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json[0]["seen_in_training"],
        serde_json::json!({
            "group": "jackson",
            "members": 1,
            "held_out_members": 0,
            "held_out_probabilities": null
        })
    );
    // Digital silence is refused; a recording below the model's 8 kHz is analysed with a warning.
    let write_tone = |name: &str, rate: u32, amplitude: f32| {
        let path = dir.path().join(name);
        let tone: Vec<f32> = (0..rate).map(|i| amplitude * (i as f32 * 0.2).sin()).collect();
        common::write_wav16(&path, &tone, rate);
        path
    };
    let silent = write_tone("silent.wav", 8000, 0.0);
    let low = write_tone("low.wav", 4000, 0.5);
    let out = iconnet()
        .args(["predict", "--json", "--model", model.to_str().unwrap()])
        .args([&silent, &low])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = json[0]["error"].as_str().unwrap();
    assert!(error.starts_with("no signal: all 8000 samples are 0"), "{error}");
    assert!(json[0]["file"].as_str().unwrap().ends_with("silent.wav"));
    let warning = json[1]["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("recorded at 4000 Hz, below the model's 8000 Hz"),
        "{warning}"
    );
    assert!(json[1]["probabilities"].is_object());

    // eval reproduces the held-out figure written in the card.
    let eval = iconnet()
        .args([
            "eval",
            shared_data().join("fsdd").to_str().unwrap(),
            "--json",
            "--groups",
            "lucas",
            "--limit",
            "3",
        ])
        .args(["--model", model.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let metrics: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(metrics["n"], 30);
    assert_eq!(metrics["accuracy"], card["metrics"]["test"]["accuracy"]);

    // Excerpts longer than every clip leave the clips whole: the same figures. Short ones are
    // scored too, every recording still counted.
    let excerpt_eval = |seconds: &str| {
        let out = iconnet()
            .args(["eval", shared_data().join("fsdd").to_str().unwrap(), "--json"])
            .args(["--groups", "lucas", "--limit", "3", "--excerpt-seconds", seconds])
            .args(["--model", model.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(excerpt_eval("100"), metrics);
    assert_eq!(excerpt_eval("0.2")["n"], 30);

    // Some of the model's classes: each recording gets the most probable of them, and the
    // figures count only those classes.
    let subset_csv = dir.path().join("subset.csv");
    let out = iconnet()
        .args(["eval", shared_data().join("fsdd").to_str().unwrap(), "--json"])
        .args(["--classes", "3,1,7", "--groups", "lucas", "--limit", "3"])
        .args(["--model", model.to_str().unwrap()])
        .args(["--predictions", subset_csv.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("scoring 3 of the model's 10 classes"), "{stderr}");
    let subset: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(subset["n"], 9);
    assert_eq!(subset["confusion"].as_array().unwrap().len(), 3);
    let text = std::fs::read_to_string(&subset_csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[4..], ["1", "3", "7"]);
    for row in lines {
        let row: Vec<&str> = row.split(',').collect();
        let p: Vec<f64> = row[4..].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{row:?}");
        let top = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(header[4 + top], row[3], "{row:?}");
        assert!(["1", "3", "7"].contains(&row[2]));
    }

    // An ensemble of the model with itself: the same figures, and one CSV row per recording.
    let csv = dir.path().join("predictions.csv");
    let both = format!("{0},{0}", model.display());
    let eval = iconnet()
        .args(["eval", shared_data().join("fsdd").to_str().unwrap(), "--json"])
        .args(["--card-test-groups", "--limit", "3", "--model", &both])
        .args(["--predictions", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let ensemble: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(ensemble["confusion"], metrics["confusion"]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[..4], ["file", "group", "true", "predicted"]);
    assert_eq!(header.len(), 4 + 10);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 30);
    let mut correct = 0;
    for row in &rows {
        assert_eq!(row[1], "lucas");
        let p: Vec<f64> = row[4..].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{row:?}");
        let top = (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(header[4 + top], row[3]);
        correct += usize::from(row[2] == row[3]);
    }
    assert_eq!(correct as f64 / 30.0, metrics["accuracy"].as_f64().unwrap());

    // A member tested on other groups could have trained on these: refused, naming it.
    let other = dir.path().join("other.iconnet");
    let out = iconnet()
        .args(["train", shared_data().join("fsdd").to_str().unwrap()])
        .args(["--arch", "tiny", "--epochs", "1", "--limit", "3", "--quiet"])
        .args(["--groups", "jackson,theo,lucas", "--holdout", "theo"])
        // Another seed: with these three speakers both runs train on jackson alone, and the
        // same seed would make the two models identical (and every mean below trivially true).
        .args(["--seed", "1", "--out", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Members tested on disjoint groups (the folds of one run) are scored out of fold: each
    // on its own test groups only, so each fold's figure is the one on its card.
    let mixed = format!("{},{}", model.display(), other.display());
    let out = iconnet()
        .args(["eval", shared_data().join("fsdd").to_str().unwrap(), "--json"])
        .args(["--card-test-groups", "--limit", "3", "--model", &mixed])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let oof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(oof["folds"][0]["accuracy"], card["metrics"]["test"]["accuracy"]);
    assert_eq!(oof["folds"][1]["n"], 30);
    assert_eq!(oof["pooled"]["n"], 60);
    assert!(oof["summary"]["uar"]["sd"].is_number());
    // Several runs over the same folds: members with the same test groups form one fold and
    // vote together on it (the model twice is the model), still out of fold.
    let runs = format!("{0},{1},{0}", model.display(), other.display());
    let out = iconnet()
        .args(["eval", shared_data().join("fsdd").to_str().unwrap(), "--json"])
        .args(["--card-test-groups", "--limit", "3", "--model", &runs])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let two_runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(two_runs["folds"].as_array().unwrap().len(), 2);
    assert_eq!(two_runs["folds"], oof["folds"]);
    assert_eq!(two_runs["pooled"], oof["pooled"]);

    // Test groups that overlap without being the same: a member could have trained on a
    // recording it votes on. Refused, naming it.
    let overlap = dir.path().join("overlap.iconnet");
    let (m, mut c) = checkpoint::load(&other, &Device::flex()).unwrap();
    c.training
        .insert("test_groups".into(), serde_json::json!(["theo", "lucas"]));
    checkpoint::save(&m, &c, &overlap).unwrap();
    let out = iconnet()
        .args(["eval", shared_data().join("fsdd").to_str().unwrap()])
        .args(["--card-test-groups", "--limit", "3", "--model"])
        .arg(format!("{},{}", model.display(), overlap.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("overlap.iconnet") && err.contains("test groups"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // On groups named explicitly the two evaluate together: every probability in the CSV is
    // the mean of the two members' own.
    let probabilities = |models: &str, name: &str| -> Vec<Vec<f64>> {
        let csv = dir.path().join(name);
        let out = iconnet()
            .args(["eval", shared_data().join("fsdd").to_str().unwrap()])
            .args(["--groups", "lucas", "--limit", "3", "--model", models])
            .args(["--predictions", csv.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(&csv)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').skip(4).map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let (pa, pb) = (
        probabilities(model.to_str().unwrap(), "a.csv"),
        probabilities(other.to_str().unwrap(), "b.csv"),
    );
    let pe = probabilities(&mixed, "e.csv");
    assert_eq!(pe.len(), 30);
    assert_ne!(pa, pb, "the two members must differ for the mean to be tested");
    for ((ra, rb), re) in pa.iter().zip(&pb).zip(&pe) {
        for ((x, y), z) in ra.iter().zip(rb).zip(re) {
            assert!((z - (x + y) / 2.0).abs() < 2e-6, "{z} against {x}, {y}");
        }
    }

    // predict with both models: each probability and attention weight is the members' mean.
    let predict_json = |models: &str| -> serde_json::Value {
        let out = iconnet()
            .args(["predict", "--json", "--model", models, good.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
    };
    let (a, b) = (
        predict_json(model.to_str().unwrap()),
        predict_json(other.to_str().unwrap()),
    );
    let e = predict_json(&mixed);
    assert_eq!(e["model"], "tiny+other");
    let num = |v: &serde_json::Value| v.as_f64().unwrap();
    for (class, p) in e["probabilities"].as_object().unwrap() {
        let mean = (num(&a["probabilities"][class]) + num(&b["probabilities"][class])) / 2.0;
        assert!((num(p) - mean).abs() < 1e-6, "{class}: {p} against {mean}");
    }
    let weights = |v: &serde_json::Value| -> Vec<f64> {
        v["attention"]["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(num)
            .collect()
    };
    let (wa, wb, we) = (weights(&a), weights(&b), weights(&e));
    assert_eq!(we.len(), wa.len());
    for ((x, y), z) in wa.iter().zip(&wb).zip(&we) {
        assert!((z - (x + y) / 2.0).abs() < 1e-6);
    }

    // The same pair as an ensemble manifest: one model named by the manifest, the same votes.
    let pair = dir.path().join("pair.ensemble");
    let members = vec!["tiny.iconnet".to_string(), "other.iconnet".to_string()];
    Manifest::new("pair", members, vec!["two tiny models".into()])
        .write(&pair)
        .unwrap();
    let p = predict_json(pair.to_str().unwrap());
    assert_eq!(p["model"], "pair");
    assert_eq!(p["probabilities"], e["probabilities"]);
    assert_eq!(p["member_probabilities"].as_array().unwrap().len(), 2);
    let run = |args: &[&str]| -> String {
        let out = iconnet().args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listed: serde_json::Value =
        serde_json::from_str(&run(&["card", pair.to_str().unwrap(), "--note", "checked"])).unwrap();
    assert_eq!(listed["member_cards"][1]["name"], "other");
    assert_eq!(listed["notes"], serde_json::json!(["two tiny models", "checked"]));
    assert_eq!(Manifest::read(&pair).unwrap().notes.len(), 2, "the note is kept");
    let member = dir.path().join("other.iconnet");
    let replaced: serde_json::Value = serde_json::from_str(&run(&[
        "card",
        member.to_str().unwrap(),
        "--clear-notes",
        "--note",
        "member 2 of 2",
    ]))
    .unwrap();
    assert_eq!(replaced["notes"], serde_json::json!(["member 2 of 2"]));
    let reread: serde_json::Value = serde_json::from_str(&run(&["card", member.to_str().unwrap()])).unwrap();
    assert_eq!(reread["notes"], replaced["notes"], "the file was rewritten");
    let table = run(&["filters", pair.to_str().unwrap()]);
    assert!(table.starts_with("member,block,filter"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("other,")));
    let plain = run(&[
        "predict",
        "--model",
        pair.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert!(
        plain.contains("3_lucas_7.wav") && plain.contains("of 2 members"),
        "{plain}"
    );
}

#[test]
fn missing_model_and_unknown_data_are_one_line_errors() {
    let out = iconnet()
        .args(["predict", "--model", "/nonexistent.iconnet", "x.wav"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent.iconnet"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let dir = tempfile::tempdir().unwrap();
    let out = iconnet()
        .args(["train", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no known layout"));

    let out = iconnet()
        .args(["train", dir.path().to_str().unwrap(), "--dropout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dropout") && err.contains("got '1'"), "{err}");
}

#[test]
fn grouped_cross_validation_writes_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cv.iconnet");
    let run = iconnet()
        .args([
            "train",
            shared_data().join("fsdd").to_str().unwrap(),
            "--arch",
            "tiny",
            "--epochs",
            "1",
        ])
        .args([
            "--limit",
            "2",
            "--groups",
            "jackson,theo,lucas,nicolas",
            "--folds",
            "2",
            "--quiet",
        ])
        .args(["--val-fraction", "0.3", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("2-fold cross-validation") && stdout.contains("±"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cv.cv.json")).unwrap()).unwrap();
    let folds = report["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 2);
    let mut tested: Vec<String> = folds
        .iter()
        .flat_map(|f| {
            f["test_groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_str().unwrap().to_string())
        })
        .collect();
    tested.sort();
    assert_eq!(
        tested,
        vec!["jackson", "lucas", "nicolas", "theo"],
        "every speaker tested exactly once"
    );
    assert_eq!(report["pooled"]["n"], 80);
    assert!(report["summary"]["uar"]["sd"].is_number());
    assert!(dir.path().join("cv.fold1.iconnet").is_file() && dir.path().join("cv.fold2.iconnet").is_file());
    // The run's fold models as one ensemble; scored out of fold, it reproduces every fold.
    let ensemble = dir.path().join("cv.ensemble");
    assert!(stdout.contains("cv.ensemble"), "{stdout}");
    let eval = iconnet()
        .args(["eval", shared_data().join("fsdd").to_str().unwrap(), "--json"])
        .args([
            "--card-test-groups",
            "--limit",
            "2",
            "--model",
            ensemble.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let oof: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    for (k, fold) in folds.iter().enumerate() {
        assert_eq!(oof["folds"][k], fold["metrics"], "fold {}", k + 1);
    }
    assert_eq!(oof["pooled"], report["pooled"]);

    // Another training seed with the first run's split seed (the default seed, 0): the same
    // folds and validation groups, so the two runs can be ensembled fold by fold.
    let member = dir.path().join("member.iconnet");
    let run = iconnet()
        .args(["train", shared_data().join("fsdd").to_str().unwrap()])
        .args(["--arch", "tiny", "--epochs", "1", "--limit", "2", "--quiet"])
        .args(["--groups", "jackson,theo,lucas,nicolas", "--folds", "2"])
        .args(["--val-fraction", "0.3", "--seed", "7", "--split-seed", "0"])
        .args(["--out", member.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for k in 1..=2 {
        let card = |stem: &str| -> serde_json::Value {
            let path = dir.path().join(format!("{stem}.fold{k}.json"));
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        };
        let (first, second) = (card("cv")["training"].clone(), card("member")["training"].clone());
        assert_eq!(first["test_groups"], second["test_groups"], "fold {k}");
        assert_eq!(
            first["validation_groups"], second["validation_groups"],
            "fold {k}"
        );
        assert_eq!(first["split_seed"], second["split_seed"], "fold {k}");
        assert_ne!(first["seed"], second["seed"], "fold {k}");
    }

    // Distillation from the first run: each fold is taught by the fold model tested on it.
    let student = dir.path().join("student.iconnet");
    let run = iconnet()
        .args(["train", shared_data().join("fsdd").to_str().unwrap()])
        .args(["--arch", "tiny", "--epochs", "1", "--limit", "2", "--quiet"])
        .args(["--groups", "jackson,theo,lucas,nicolas", "--folds", "2"])
        .args([
            "--val-fraction",
            "0.3",
            "--split-seed",
            "0",
            "--distill-weight",
            "0.7",
        ])
        .args([
            "--teacher",
            ensemble.to_str().unwrap(),
            "--out",
            student.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for k in 1..=2 {
        let path = dir.path().join(format!("student.fold{k}.json"));
        let card: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let teacher = &card["training"]["teacher"];
        let members = teacher["members"].as_array().unwrap();
        assert_eq!(members.len(), 1, "fold {k}: {teacher}");
        assert!(
            members[0]
                .as_str()
                .unwrap()
                .ends_with(&format!("cv.fold{k}.iconnet"))
        );
        assert_eq!(teacher["weight"], 0.7);
        assert!(
            card["training"]["loss"]
                .as_str()
                .unwrap()
                .contains("distillation")
        );
    }
    // A split no member was tested on: every member may have trained on its test speaker.
    let leak = iconnet()
        .args(["train", shared_data().join("fsdd").to_str().unwrap()])
        .args(["--arch", "tiny", "--epochs", "1", "--limit", "2", "--quiet"])
        .args(["--groups", "jackson,theo,lucas,nicolas", "--holdout", "jackson"])
        .args(["--teacher", ensemble.to_str().unwrap()])
        .args(["--out", dir.path().join("leak.iconnet").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(leak.status.code(), Some(2));
    let err = String::from_utf8_lossy(&leak.stderr);
    assert!(
        err.contains("no member's card names this split's test groups"),
        "{err}"
    );
    assert_eq!(
        err.trim().lines().last().map(|l| l.contains("cv.ensemble")),
        Some(true),
        "{err}"
    );

    let both = iconnet()
        .args([
            "train",
            shared_data().join("fsdd").to_str().unwrap(),
            "--folds",
            "2",
            "--holdout",
            "theo",
        ])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
}

/// A recording the bundled heart ensemble learned from: `predict` says so and gives the vote
/// of the members that never saw it, which is what an ensemble of just those members says.
#[test]
fn predict_gives_the_held_out_members_vote_on_a_training_recording() {
    let heart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/heart.ensemble");
    let record = shared_data().join("heart/a0013.wav");
    let ensemble = iconnet::model::Ensemble::load(&heart, &Device::flex()).unwrap();
    let never_saw: Vec<String> = ensemble
        .members
        .iter()
        .filter(|m| !m.card.saw_group("a0013"))
        .map(|m| m.path.display().to_string())
        .collect();
    assert_eq!(
        never_saw.len(),
        2,
        "each record is a test record of one fold in each of two runs"
    );
    let dir = tempfile::tempdir().unwrap();
    let held_out = dir.path().join("held-out.ensemble");
    Manifest::new("held-out", never_saw, vec![])
        .write(&held_out)
        .unwrap();
    let predict = |model: &std::path::Path| -> serde_json::Value {
        let out = iconnet()
            .args(["predict", "--json", "--model"])
            .arg(model)
            .arg(&record)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
    };
    let all = predict(&heart);
    let seen = &all["seen_in_training"];
    assert_eq!(
        (seen["members"].as_u64(), seen["held_out_members"].as_u64()),
        (Some(8), Some(2))
    );
    let only = predict(&held_out);
    assert!(only.get("seen_in_training").is_none(), "{only}");
    for class in ["normal", "abnormal"] {
        let a = seen["held_out_probabilities"][class].as_f64().unwrap();
        let b = only["probabilities"][class].as_f64().unwrap();
        assert!((a - b).abs() < 1e-5, "{class}: {a} against {b}");
    }
}

/// A heart model's prediction places the attention in the heart cycle: rate, S1/S2 spans, and
/// each phase's share of the time and of the attention, in text and JSON.
#[test]
fn predict_places_a_heart_recordings_attention_in_its_cycle() {
    let record = shared_data().join("heart/a0013.wav");
    let out = iconnet()
        .args(["predict", "--json", "--model", "heart"])
        .arg(&record)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cycle = &json[0]["heart_cycle"];
    let bpm = cycle["heart_rate_bpm"].as_f64().unwrap();
    assert!((55.0..75.0).contains(&bpm), "{cycle}");
    let shares = cycle["attention_by_phase"].as_array().unwrap();
    let phases: Vec<&str> = shares.iter().map(|s| s["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["S1", "Systole", "S2", "Diastole"]);
    for key in ["time_share", "weight_share"] {
        let total: f64 = shares.iter().map(|s| s[key].as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{key}: {total}");
    }
    let profile = &cycle["attention_over_beat"];
    let bounds: Vec<f64> = profile["phase_bounds_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
    assert!(
        (bounds[4] - 60.0 / bpm).abs() < 0.1,
        "an average beat lasts one period: {bounds:?}"
    );
    assert!(profile["points"].as_array().unwrap().len() > 30);
    let sounds = cycle["sounds"].as_array().unwrap();
    assert!(sounds.len() >= 2 * 35, "35.7 s at {bpm:.0} bpm: {}", sounds.len());
    for pair in sounds.windows(2) {
        assert_ne!(pair[0]["phase"], pair[1]["phase"], "S1 and S2 alternate");
        assert!(pair[0]["end_s"].as_f64() <= pair[1]["start_s"].as_f64());
    }
    let text = iconnet()
        .args(["predict", "--model", "heart"])
        .arg(&record)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("heart cycle: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(&format!("{bpm:.0} bpm, systolic interval")) && line.contains("attention on S1 "),
        "{line}"
    );
}

/// The bundled digits ensemble mixes front-ends: `filters` lists the 12 M13 members' filters and
/// says, in one line, that the 12 MFCC members have fixed mel bands and none to list.
#[test]
fn filters_of_a_mixed_ensemble_name_the_members_without_learned_filters() {
    let out = iconnet().args(["filters", "digits"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "note: 12 members, digits.mfcc.fold1 to digits.mfcc-s2.fold6: fixed MFCC front-end, not \
learned: 64 triangular mel bands peaking at 21-3864 Hz on a 256-point FFT of 32.0 ms Hann frames \
every 8.0 ms at 8000 Hz; log band energies, DCT-II to 40 coefficients; no learned filters to list"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let mut members: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    members.dedup();
    assert_eq!(members.len(), 12, "{members:?}");
    assert!(members.iter().all(|m| !m.contains("mfcc")));
}
