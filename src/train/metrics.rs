//! Classification metrics: accuracy, UAR, macro-F1, confusion matrix; Se/Sp/MAcc for heart sounds.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Metrics {
    pub n: usize,
    pub accuracy: f64,
    /// Unweighted average recall (mean per-class recall over classes present).
    pub uar: f64,
    pub macro_f1: f64,
    pub per_class_recall: Vec<f64>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// Sensitivity, specificity, MAcc when the classes are `[normal, abnormal]`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub heart: Option<HeartMetrics>,
    /// Class-balanced cross-entropy of the predicted probabilities (see [`balanced_log_loss`]),
    /// when they were known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub balanced_log_loss: Option<f64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HeartMetrics {
    pub sensitivity: f64,
    pub specificity: f64,
    pub macc: f64,
}

impl Metrics {
    pub fn compute(truth: &[usize], predicted: &[usize], classes: &[String]) -> Self {
        let k = classes.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t][p] += 1;
        }
        let n = truth.len();
        let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
        let recall: Vec<f64> = (0..k)
            .map(|i| {
                let total: usize = confusion[i].iter().sum();
                if total == 0 {
                    f64::NAN
                } else {
                    confusion[i][i] as f64 / total as f64
                }
            })
            .collect();
        let present: Vec<f64> = recall.iter().copied().filter(|r| !r.is_nan()).collect();
        let uar = if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        };
        let f1: Vec<f64> = (0..k)
            .filter(|&i| confusion[i].iter().sum::<usize>() > 0)
            .map(|i| {
                let tp = confusion[i][i] as f64;
                let predicted_i: usize = (0..k).map(|t| confusion[t][i]).sum();
                let actual_i: usize = confusion[i].iter().sum();
                if tp == 0.0 {
                    0.0
                } else {
                    2.0 * tp / (predicted_i + actual_i) as f64
                }
            })
            .collect();
        let macro_f1 = if f1.is_empty() {
            0.0
        } else {
            f1.iter().sum::<f64>() / f1.len() as f64
        };
        let heart = (k == 2 && classes[0] == "normal" && classes[1] == "abnormal").then(|| {
            let se = recall[1];
            let sp = recall[0];
            HeartMetrics {
                sensitivity: se,
                specificity: sp,
                macc: (se + sp) / 2.0,
            }
        });
        Self {
            n,
            accuracy: if n == 0 { 0.0 } else { correct as f64 / n as f64 },
            uar,
            macro_f1,
            per_class_recall: recall,
            confusion,
            heart,
            balanced_log_loss: None,
        }
    }

    /// The metrics of the most probable class of each row of `probabilities` (`[clips][classes]`),
    /// with their [`balanced_log_loss`].
    pub fn from_probabilities(truth: &[usize], probabilities: &[Vec<f32>], classes: &[String]) -> Self {
        let predicted: Vec<usize> = probabilities.iter().map(|p| crate::explain::argmax(p)).collect();
        Self {
            balanced_log_loss: Some(balanced_log_loss(truth, probabilities, classes.len())),
            ..Self::compute(truth, &predicted, classes)
        }
    }

    /// One line: `acc 0.912 UAR 0.905 F1 0.903 (n=500)` (+ Se/Sp/MAcc).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "acc {:.3}  UAR {:.3}  macro-F1 {:.3}  (n={})",
            self.accuracy, self.uar, self.macro_f1, self.n
        );
        if let Some(h) = &self.heart {
            s.push_str(&format!(
                "  Se {:.3} Sp {:.3} MAcc {:.3}",
                h.sensitivity, h.specificity, h.macc
            ));
        }
        if let Some(loss) = self.balanced_log_loss {
            s.push_str(&format!("  loss {loss:.4}"));
        }
        s
    }
}

/// Smallest probability a log loss reads, so that one confident mistake costs ln(1e7) = 16.1
/// instead of infinity.
const LOG_LOSS_FLOOR: f32 = 1e-7;

/// Mean over the classes present in `truth` of the mean of `-ln p[true class]` over that
/// class's clips: the cross-entropy that weighs every class equally, as UAR does. Unlike UAR it
/// moves with every clip's confidence, so on a few dozen validation clips it separates
/// checkpoints that UAR ties.
pub fn balanced_log_loss(truth: &[usize], probabilities: &[Vec<f32>], classes: usize) -> f64 {
    let mut sum = vec![0f64; classes];
    let mut count = vec![0usize; classes];
    for (&t, p) in truth.iter().zip(probabilities) {
        sum[t] -= (p[t].max(LOG_LOSS_FLOOR) as f64).ln();
        count[t] += 1;
    }
    let per_class: Vec<f64> = sum
        .iter()
        .zip(&count)
        .filter(|(_, n)| **n > 0)
        .map(|(s, &n)| s / n as f64)
        .collect();
    per_class.iter().sum::<f64>() / per_class.len().max(1) as f64
}

/// Mean and sample standard deviation over folds of each figure (accuracy, UAR, macro-F1, and
/// MAcc, Se, Sp when every fold has them), as `{"uar": {"mean": .., "sd": ..}, ..}`.
pub fn fold_summary(per_fold: &[Metrics]) -> serde_json::Map<String, serde_json::Value> {
    let stat = |f: &dyn Fn(&Metrics) -> f64| {
        let v: Vec<f64> = per_fold.iter().map(f).collect();
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt();
        serde_json::json!({ "mean": mean, "sd": sd })
    };
    let mut summary = serde_json::Map::new();
    summary.insert("accuracy".into(), stat(&|m| m.accuracy));
    summary.insert("uar".into(), stat(&|m| m.uar));
    summary.insert("macro_f1".into(), stat(&|m| m.macro_f1));
    if per_fold.iter().all(|m| m.heart.is_some()) {
        let heart = |m: &Metrics| m.heart.clone().expect("checked above");
        summary.insert("macc".into(), stat(&|m| heart(m).macc));
        summary.insert("sensitivity".into(), stat(&|m| heart(m).sensitivity));
        summary.insert("specificity".into(), stat(&|m| heart(m).specificity));
    }
    summary
}

/// The lines `  uar          0.812 ± 0.034` of a [`fold_summary`].
pub fn fold_summary_lines(summary: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    summary
        .iter()
        .map(|(name, v)| {
            format!(
                "  {name:<12} {:.3} ± {:.3}",
                v["mean"].as_f64().unwrap_or(0.0),
                v["sd"].as_f64().unwrap_or(0.0)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_summary_is_the_mean_and_sample_sd() {
        let classes = vec!["normal".to_string(), "abnormal".to_string()];
        // Fold accuracies 1.0 and 0.5: mean 0.75, sample sd sqrt(0.125) = 0.354.
        let a = Metrics::compute(&[0, 1], &[0, 1], &classes);
        let b = Metrics::compute(&[0, 1], &[0, 0], &classes);
        let s = fold_summary(&[a, b]);
        assert_eq!(s["accuracy"]["mean"], 0.75);
        assert!((s["accuracy"]["sd"].as_f64().unwrap() - 0.125f64.sqrt()).abs() < 1e-12);
        // MAcc of b: Se 0, Sp 1 -> 0.5.
        assert_eq!(s["macc"]["mean"], 0.75);
        assert_eq!(fold_summary_lines(&s)[0], "  accuracy     0.750 ± 0.354");
    }

    #[test]
    fn balanced_log_loss_by_hand() {
        // Class 0: -ln 0.8 and -ln 0.6, mean 0.366985; class 1: -ln 0.25 = 1.386294.
        // Balanced: (0.366985 + 1.386294) / 2 = 0.876640 (the plain mean would be 0.706755).
        let p = vec![vec![0.8, 0.2], vec![0.6, 0.4], vec![0.75, 0.25]];
        let loss = balanced_log_loss(&[0, 0, 1], &p, 2);
        assert!((loss - 0.876640).abs() < 1e-6, "{loss}");
        // A class absent from truth does not count, and a zero probability is floored.
        let loss = balanced_log_loss(&[1], &[vec![1.0, 0.0, 0.0]], 3);
        assert!((loss - 16.118096).abs() < 1e-5, "{loss}");
        let classes = vec!["normal".to_string(), "abnormal".to_string()];
        let m = Metrics::from_probabilities(&[0, 0, 1], &p, &classes);
        assert_eq!(m.confusion, vec![vec![2, 0], vec![1, 0]]);
        assert!((m.balanced_log_loss.unwrap() - 0.876640).abs() < 1e-6);
        assert!(m.summary().ends_with("loss 0.8766"), "{}", m.summary());
    }

    #[test]
    fn hand_computed_example() {
        let classes = vec!["normal".to_string(), "abnormal".to_string()];
        // 3 normal (2 right), 2 abnormal (1 right).
        let m = Metrics::compute(&[0, 0, 0, 1, 1], &[0, 0, 1, 1, 0], &classes);
        assert_eq!(m.confusion, vec![vec![2, 1], vec![1, 1]]);
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        assert!((m.uar - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12);
        let h = m.heart.unwrap();
        assert!((h.sensitivity - 0.5).abs() < 1e-12);
        assert!((h.specificity - 2.0 / 3.0).abs() < 1e-12);
        // F1 normal = 2*2/(3+3) = 2/3, abnormal = 2*1/(2+2) = 1/2.
        assert!((m.macro_f1 - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12);
    }
}
