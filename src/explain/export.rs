//! Tables and files the app and `iconnet explain` export: filter table, heatmap over time,
//! probabilities, and Audacity label files of high-attribution regions.

use serde_json::{Value, json};

use super::attribution::Heatmap;
use super::{Analysis, FilterInfo};
use crate::dsp::heart_cycle::PhaseSpan;

pub const FILTER_CSV_HEADER: &str = "block,filter,channel,f_low_hz,f_high_hz,centre_hz,bandwidth_hz,init_f_low_hz,init_f_high_hz,drift_hz,window";

/// One CSV row (no newline) of the filter table.
pub fn filter_csv_row(f: &FilterInfo) -> String {
    let w: Vec<String> = f.window.iter().map(|v| format!("{v:.4}")).collect();
    format!(
        "{},{},{},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{}",
        f.block,
        f.filter,
        f.channel,
        f.f_low_hz,
        f.f_high_hz,
        f.centre_hz(),
        f.bandwidth_hz(),
        f.init_f_low_hz,
        f.init_f_high_hz,
        f.drift_hz(),
        w.join(" ")
    )
}

/// The whole filter table as CSV.
pub fn filters_csv(filters: &[FilterInfo]) -> String {
    let mut out = format!("{FILTER_CSV_HEADER}\n");
    for f in filters {
        out.push_str(&filter_csv_row(f));
        out.push('\n');
    }
    out
}

/// The filter tables of several models, e.g. an ensemble's members: with more than one, each
/// row starts with a `member` column naming its model; one model gives [`filters_csv`].
pub fn members_filters_csv(members: &[(String, &[FilterInfo])]) -> String {
    if let [(_, filters)] = members {
        return filters_csv(filters);
    }
    let mut out = format!(
        "member,{FILTER_CSV_HEADER}
"
    );
    for (name, filters) in members {
        for f in filters.iter() {
            out.push_str(&format!(
                "{name},{}
",
                filter_csv_row(f)
            ));
        }
    }
    out
}

/// `time_s,weight` per frame, with the method in a comment line.
pub fn heatmap_csv(h: &Heatmap) -> String {
    let mut out = format!("# {}\ntime_s,weight\n", h.title());
    for (t, v) in h.times_s.iter().zip(&h.values) {
        out.push_str(&format!("{t:.6},{v:.8}\n"));
    }
    out
}

/// The same as JSON: `{"method", "class", "frame_s", "times_s", "weights"}`, plus
/// `"explained_by": [k, n]` and the title when only k of n members gave the map.
pub fn heatmap_json(h: &Heatmap) -> Value {
    let mut out = json!({
        "method": h.method.label(),
        "class": h.class,
        "frame_s": h.frame_s,
        "times_s": h.times_s,
        "weights": h.values,
    });
    if let Some((k, n)) = h.explained_by {
        // A map from part of an ensemble says whose it is, as its title does.
        out["explained_by"] = json!([k, n]);
        out["title"] = json!(h.title());
    }
    out
}

/// `{"file", "model", "top_class", "probabilities": {class: p}}`.
pub fn probabilities_json(file: &str, model: &str, a: &Analysis) -> Value {
    let probabilities: serde_json::Map<String, Value> = a
        .classes
        .iter()
        .zip(&a.probabilities)
        .map(|(c, p)| (c.clone(), json!(p)))
        .collect();
    let mut out = json!({
        "file": file,
        "model": model,
        "top_class": a.classes[a.top_class],
        "probabilities": probabilities,
    });
    if !a.member_probabilities.is_empty() {
        out["member_probabilities"] = json!(a.member_probabilities);
        out["members_favouring_top_class"] = json!(a.members_voting_for(a.top_class));
    }
    out
}

/// Audacity label track: `start<TAB>end<TAB>label` per region whose normalised weight is at
/// least `threshold`.
pub fn audacity_labels(h: &Heatmap, threshold: f32) -> String {
    let what = match &h.class {
        Some(c) => format!("{} {c}", h.method.label()),
        None => h.method.label().to_string(),
    };
    h.regions_above(threshold)
        .into_iter()
        .map(|(a, b, mean)| format!("{a:.6}\t{b:.6}\t{what} {mean:.2}\n"))
        .collect()
}

/// Audacity label track of the heart sounds found: `start<TAB>end<TAB>S1` (or `S2`) per sound.
pub fn heart_sound_labels(sounds: &[PhaseSpan]) -> String {
    sounds
        .iter()
        .map(|s| format!("{:.6}\t{:.6}\t{}\n", s.start_s, s.end_s, s.phase.label()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::heart_cycle::CyclePhase;
    use crate::explain::attribution::HeatmapMethod;

    #[test]
    fn heart_sounds_are_tab_separated_labels() {
        let sounds = [
            PhaseSpan {
                phase: CyclePhase::S1,
                start_s: 0.1,
                end_s: 0.22,
            },
            PhaseSpan {
                phase: CyclePhase::S2,
                start_s: 0.42,
                end_s: 0.5,
            },
        ];
        assert_eq!(
            heart_sound_labels(&sounds),
            "0.100000\t0.220000\tS1\n0.420000\t0.500000\tS2\n"
        );
    }

    #[test]
    fn labels_are_tab_separated_regions() {
        let h = Heatmap {
            method: HeatmapMethod::GradCam,
            class: Some("abnormal".into()),
            values: vec![0.0, 2.0, 2.0, 0.0],
            times_s: vec![0.125, 0.375, 0.625, 0.875],
            frame_s: 0.25,
            uniform_pooling: false,
            explained_by: None,
        };
        assert_eq!(
            audacity_labels(&h, 0.5),
            "0.250000\t0.750000\tGrad-CAM abnormal 1.00\n"
        );
        let csv = heatmap_csv(&h);
        assert!(csv.starts_with("# Grad-CAM for abnormal\ntime_s,weight\n0.125000,0.00000000\n"));
    }
}
