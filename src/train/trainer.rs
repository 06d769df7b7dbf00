//! The training loop: random crops, RAdam + one-cycle + global gradient-norm clipping, whole
//! recordings for evaluation, best checkpoint by validation UAR (or class-balanced log loss).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::augment::Augment;
use super::dataset::Example;
use super::metrics::Metrics;
use super::radam::{RAdam, one_cycle_lr};
use super::weight_average::WeightAverage;
use crate::audio;
use crate::model::checkpoint::{self, ModelCard};
use crate::model::{AudioBatch, IConNet, ModelConfig};

/// Everything a run needs besides the data.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// Random crop length for training, seconds.
    pub crop_seconds: f64,
    /// Random crops drawn from every training recording per epoch (segment-level training:
    /// long recordings such as heart sounds give several crops, all with the recording's label).
    pub crops_per_recording: usize,
    pub max_lr: f64,
    pub weight_decay: f64,
    pub clip_norm: f64,
    pub seed: u64,
    pub out: PathBuf,
    pub show_progress: bool,
    pub augment: Augment,
    /// Refit: train without validation, stop after this epoch of the schedule and keep the
    /// model as it is then (the epoch an earlier run chose on validation).
    pub stop_after_epoch: Option<usize>,
    /// Validate and keep an exponential moving average of the weights over about this many
    /// epochs instead of the last step's weights (see [`WeightAverage`]).
    pub average_epochs: Option<f64>,
    /// Weight each class's cross-entropy by `N / (K · n_c)` over the training clips, so that a
    /// class with half the examples (RAVDESS neutral) counts as much as the others.
    pub balanced_loss: bool,
    /// Knowledge distillation: the loss adds the cross-entropy against these models' averaged
    /// probabilities on the same augmented crop.
    pub teacher: Option<Arc<Teacher>>,
    /// What picks the checkpoint among the epochs.
    pub selection: Selection,
}

/// The validation figure that picks the checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Selection {
    /// Highest UAR (MAcc for heart sounds); the earliest epoch wins a tie.
    #[default]
    Uar,
    /// Lowest class-balanced log loss ([`super::metrics::balanced_log_loss`]). UAR on 48
    /// validation records moves in steps of about 4 points and ties often; the loss reads every
    /// record's confidence, so it ranks epochs more finely.
    Loss,
}

impl Selection {
    /// Whether `candidate` is a better checkpoint than `best`.
    pub fn improves(self, candidate: &Metrics, best: &Metrics) -> bool {
        match self {
            Self::Uar => candidate.uar > best.uar,
            Self::Loss => {
                let loss = |m: &Metrics| m.balanced_log_loss.unwrap_or(f64::INFINITY);
                loss(candidate) < loss(best)
            }
        }
    }

    /// How the card's protocol names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Uar => "validation UAR",
            Self::Loss => "validation class-balanced log loss",
        }
    }
}

impl std::str::FromStr for Selection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uar" => Ok(Self::Uar),
            "loss" => Ok(Self::Loss),
            other => Err(format!("unknown selection '{other}' (expected uar or loss)")),
        }
    }
}

/// Soft targets for knowledge distillation: trained models (for a cross-validation fold, the
/// fold models of earlier runs that were tested on this fold, so none of them saw its test
/// recordings), their probabilities averaged on every training crop. An ensemble's averaged
/// probabilities carry what its members agree on beyond the labels (how abnormal a record
/// sounds, not only whether it is), which one network can learn from (Hinton et al. 2015).
pub struct Teacher {
    pub models: Vec<IConNet>,
    /// Weight of the soft cross-entropy; the labels' cross-entropy gets `1 - weight`.
    pub weight: f32,
}

impl std::fmt::Debug for Teacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Teacher({} models, weight {})", self.models.len(), self.weight)
    }
}

impl Teacher {
    /// The models' mean class probabilities on `batch`, `[batch, classes]` row-major.
    pub fn probabilities(&self, batch: &AudioBatch) -> Vec<f32> {
        let mut mean: Vec<f32> = Vec::new();
        for model in &self.models {
            let rows = softmax_rows(model.forward(batch).logits);
            let flat = rows.concat();
            if mean.is_empty() {
                mean = flat;
            } else {
                mean.iter_mut().zip(flat).for_each(|(m, p)| *m += p);
            }
        }
        let n = self.models.len().max(1) as f32;
        mean.iter_mut().for_each(|m| *m /= n);
        mean
    }
}

/// `(1 - weight) · labels_loss + weight · soft_cross_entropy(logits, soft)`.
pub fn distillation_loss(
    labels_loss: Tensor<1>,
    logits: Tensor<2>,
    soft: Tensor<2>,
    weight: f32,
) -> Tensor<1> {
    labels_loss
        .mul_scalar(1.0 - weight)
        .add(soft_cross_entropy(logits, soft).mul_scalar(weight))
}

/// Mean over the batch of `-Σ_k p[b, k] log softmax(logits)[b, k]`: the cross-entropy of the
/// student's `[batch, classes]` logits against soft targets `p` (rows summing to one).
pub fn soft_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let log_p = burn::tensor::activation::log_softmax(logits, 1);
    targets.mul(log_p).sum_dim(1).neg().mean()
}

/// Cross-entropy weights `N / (K · n_c)` for `K` classes from training labels: 1 for a
/// balanced set; a class absent from `labels` gets 1 (it contributes nothing either way, and
/// burn requires positive weights).
pub fn balanced_class_weights(labels: &[usize], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[l] += 1;
    }
    counts
        .iter()
        .map(|&n| {
            if n == 0 {
                1.0
            } else {
                (labels.len() as f64 / (classes as f64 * n as f64)) as f32
            }
        })
        .collect()
}

/// A decoded, resampled, normalised example.
#[derive(Clone, Debug)]
pub struct Clip {
    pub samples: Vec<f32>,
    pub label: usize,
    pub path: PathBuf,
}

/// Loads examples in parallel; a file that fails is reported and skipped.
pub fn load_clips(examples: &[Example], rate: u32) -> (Vec<Clip>, Vec<String>) {
    let results: Vec<Result<Clip, String>> = examples
        .par_iter()
        .map(|e| {
            // Warnings are not shown in training; a clip shorter than a frame is padded.
            audio::load_for_model(&e.path, rate, 0)
                .map(|(samples, _)| Clip {
                    samples,
                    label: e.label,
                    path: e.path.clone(),
                })
                .map_err(|err| err.to_string())
        })
        .collect();
    let mut clips = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(c) => clips.push(c),
            Err(e) => errors.push(e),
        }
    }
    (clips, errors)
}

/// Outcome of [`train`].
pub struct TrainReport {
    pub best_epoch: usize,
    /// `None` for a refit, which has no validation set.
    pub best_validation: Option<Metrics>,
    /// Every epoch's validation metrics, in order (empty for a refit).
    pub validation_history: Vec<Metrics>,
    pub samples_per_second: f64,
    pub seconds: f64,
    pub interrupted: bool,
}

/// Trains `config` on `train`, choosing the checkpoint on `validation`; the best model is
/// written to `options.out` (atomically) each time it improves. With
/// `options.stop_after_epoch`, `validation` may be empty and the model after that epoch is
/// written instead. `stop` ends the run early.
pub fn train(
    config: &ModelConfig,
    train: &[Clip],
    validation: &[Clip],
    options: &TrainOptions,
    card: impl Fn(&IConNet) -> ModelCard,
    device: &Device,
    stop: Arc<AtomicBool>,
) -> Result<TrainReport, String> {
    if train.is_empty() || (validation.is_empty() && options.stop_after_epoch.is_none()) {
        return Err("training and validation sets must both be non-empty".into());
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    device.seed(options.seed);
    let device = device.clone().autodiff();
    let mut model = IConNet::new(config, &device);
    let mut optim = ModuleOptimizer::from(RAdam {
        weight_decay: options.weight_decay as f32,
        ..Default::default()
    });
    let class_weights = options.balanced_loss.then(|| {
        let labels: Vec<usize> = train.iter().map(|c| c.label).collect();
        balanced_class_weights(&labels, config.classes.len())
    });
    let loss_fn = CrossEntropyLossConfig::new()
        .with_weights(class_weights)
        .init(&device);
    let crop = ((options.crop_seconds * config.sample_rate as f64) as usize).max(config.min_samples());
    let per_recording = options.crops_per_recording.max(1);
    let steps_per_epoch = (train.len() * per_recording).div_ceil(options.batch_size);
    let total_steps = steps_per_epoch * options.epochs;
    let bar = if options.show_progress {
        ProgressBar::new(total_steps as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ETA {eta} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut average = options
        .average_epochs
        .map(|epochs| WeightAverage::over_steps(epochs * steps_per_epoch as f64));
    let mut best: Option<(usize, Option<Metrics>)> = None;
    let mut validation_history = Vec::new();
    let started = Instant::now();
    let mut seen = 0usize;
    let mut step = 0usize;
    let mut interrupted = false;
    'epochs: for epoch in 0..options.epochs {
        let mut order: Vec<usize> = (0..train.len())
            .flat_map(|i| std::iter::repeat_n(i, per_recording))
            .collect();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut correct, mut count) = (0f64, 0usize, 0usize);
        for chunk in order.chunks(options.batch_size) {
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break 'epochs;
            }
            let crops: Vec<Vec<f32>> = chunk
                .iter()
                .map(|&i| {
                    let s = &train[i].samples;
                    // Crop a little more than needed so that speeding up still fills the crop.
                    let want = ((crop as f64) * (1.0 + options.augment.speed)).ceil() as usize;
                    let piece = if s.len() <= want {
                        &s[..]
                    } else {
                        let start = rng.random_range(0..=s.len() - want);
                        &s[start..start + want]
                    };
                    let mut y = options.augment.apply(piece, &mut rng);
                    y.truncate(crop);
                    y
                })
                .collect();
            let refs: Vec<&[f32]> = crops.iter().map(|c| &c[..]).collect();
            // Pad only to the longest crop of the batch: short clips (spoken digits) cost less.
            let batch = AudioBatch::from_clips(&refs, config.min_samples());
            let labels: Vec<i64> = chunk.iter().map(|&i| train[i].label as i64).collect();
            let targets =
                Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [labels.len()]), &device);
            let out = model.forward(&batch);
            let predicted = argmax_rows(out.logits.clone());
            correct += predicted
                .iter()
                .zip(&labels)
                .filter(|(p, l)| **p as i64 == **l)
                .count();
            let loss = match &options.teacher {
                Some(teacher) => {
                    let soft = teacher.probabilities(&batch);
                    let shape = [chunk.len(), soft.len() / chunk.len().max(1)];
                    let soft = Tensor::<2>::from_data(TensorData::new(soft, shape), &device);
                    let labels_loss = loss_fn.forward(out.logits.clone(), targets);
                    distillation_loss(labels_loss, out.logits, soft, teacher.weight)
                }
                None => loss_fn.forward(out.logits, targets),
            };
            let loss_value: f32 = loss
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .map(|v| v[0])
                .unwrap_or(f32::NAN);
            if !loss_value.is_finite() {
                return Err(format!("loss became {loss_value} at epoch {epoch}, step {step}"));
            }
            let mut grads = model.backward(loss, out.tape);
            clip_global_norm(&model, &mut grads, options.clip_norm);
            let lr = one_cycle_lr(step, total_steps, options.max_lr);
            model = optim.step(lr, model, grads);
            if let Some(average) = average.as_mut() {
                average.update(&model);
            }
            step += 1;
            seen += chunk.len();
            loss_sum += loss_value as f64 * chunk.len() as f64;
            count += chunk.len();
            bar.set_message(format!(
                "epoch {}/{} loss {:.3} acc {:.3}{}",
                epoch + 1,
                options.epochs,
                loss_sum / count as f64,
                correct as f64 / count as f64,
                best.as_ref()
                    .and_then(|(_, m)| m.as_ref())
                    .map(|m| match options.selection {
                        Selection::Uar => format!(" best val UAR {:.3}", m.uar),
                        Selection::Loss =>
                            format!(" best val loss {:.4}", m.balanced_log_loss.unwrap_or(f64::NAN)),
                    })
                    .unwrap_or_default()
            ));
            bar.inc(1);
        }
        let valid_model = match &average {
            Some(average) => average.apply(model.valid()),
            None => model.valid(),
        };
        // A refit has no validation set: it only reports training figures and stops at `last`.
        let metrics = options
            .stop_after_epoch
            .is_none()
            .then(|| evaluate(&valid_model, validation));
        let line = format!(
            "epoch {:>3}: train loss {:.4} acc {:.3}  {}",
            epoch + 1,
            loss_sum / count.max(1) as f64,
            correct as f64 / count.max(1) as f64,
            metrics
                .as_ref()
                .map_or("(refit: no validation)".to_string(), |m| format!(
                    "val {}",
                    m.summary()
                ))
        );
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        validation_history.extend(metrics.clone());
        match (options.stop_after_epoch, metrics) {
            (Some(last), _) if epoch + 1 >= last => {
                checkpoint::save(&valid_model, &card(&valid_model), &options.out)?;
                best = Some((epoch + 1, None));
                break;
            }
            (_, Some(metrics))
                if best
                    .as_ref()
                    .and_then(|(_, m)| m.as_ref())
                    .is_none_or(|m| options.selection.improves(&metrics, m)) =>
            {
                checkpoint::save(&valid_model, &card(&valid_model), &options.out)?;
                best = Some((epoch + 1, Some(metrics)));
            }
            _ => {}
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let (best_epoch, best_validation) = best.ok_or(match options.stop_after_epoch {
        Some(last) => format!("refit stopped before epoch {last}: no refit checkpoint written"),
        None => "interrupted before the first epoch ended: no checkpoint written".to_string(),
    })?;
    Ok(TrainReport {
        best_epoch,
        best_validation,
        validation_history,
        samples_per_second: seen as f64 / seconds.max(1e-9),
        seconds,
        interrupted,
    })
}

/// Class probabilities (softmax) of whole recordings, `[clips][classes]`, batched by similar
/// length.
pub fn clip_probabilities(model: &IConNet, clips: &[Clip]) -> Vec<Vec<f32>> {
    let mut order: Vec<usize> = (0..clips.len()).collect();
    order.sort_by_key(|&i| clips[i].samples.len());
    let mut probabilities = vec![Vec::new(); clips.len()];
    let min = model.config.min_samples();
    // Batches of at most ~1M samples keep memory bounded for long recordings.
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len()
            && end - start < 16
            && clips[order[end]].samples.len() * (end - start + 1) < 1 << 20
        {
            end += 1;
        }
        let refs: Vec<&[f32]> = order[start..end].iter().map(|&i| &clips[i].samples[..]).collect();
        let out = model.forward(&AudioBatch::from_clips(&refs, min));
        for (k, row) in softmax_rows(out.logits).into_iter().enumerate() {
            probabilities[order[start + k]] = row;
        }
        start = end;
    }
    probabilities
}

/// Predictions for whole recordings (the most probable class of each).
pub fn predict_clips(model: &IConNet, clips: &[Clip]) -> Vec<usize> {
    clip_probabilities(model, clips)
        .iter()
        .map(|p| crate::explain::argmax(p))
        .collect()
}

/// Metrics of `model` on whole recordings.
pub fn evaluate(model: &IConNet, clips: &[Clip]) -> Metrics {
    let probabilities = clip_probabilities(model, clips);
    let truth: Vec<usize> = clips.iter().map(|c| c.label).collect();
    Metrics::from_probabilities(&truth, &probabilities, &model.config.classes)
}

/// Row-wise softmax of `[batch, classes]` logits, as plain rows.
fn softmax_rows(logits: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, k] = logits.dims();
    let values: Vec<f32> = burn::tensor::activation::softmax(logits, 1)
        .into_data()
        .try_to_vec()
        .expect("f32 probabilities");
    values.chunks(k).map(<[f32]>::to_vec).collect()
}

fn argmax_rows(logits: Tensor<2>) -> Vec<usize> {
    let [_, k] = logits.dims();
    let values: Vec<f32> = logits.into_data().try_to_vec().expect("f32 logits");
    values.chunks(k).map(crate::explain::argmax).collect()
}

struct NormVisitor<'a> {
    grads: &'a GradientsParams,
    sum_sq: f64,
}

impl ModuleVisitor for NormVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let v: Vec<f32> = g.square().sum().into_data().try_to_vec().unwrap_or_default();
            self.sum_sq += v.first().copied().unwrap_or(0.0) as f64;
        }
    }
}

struct ScaleVisitor<'a> {
    grads: &'a mut GradientsParams,
    scale: f32,
}

impl ModuleVisitor for ScaleVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.scale));
        }
    }
}

/// Scales all gradients together so their global L2 norm is at most `max_norm`
/// (PyTorch's `clip_grad_norm_`). Returns the norm before clipping.
pub fn clip_global_norm(model: &IConNet, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let mut norm = NormVisitor { grads, sum_sq: 0.0 };
    model.visit(&mut norm);
    let total = norm.sum_sq.sqrt();
    if max_norm > 0.0 && total > max_norm {
        let mut scale = ScaleVisitor {
            grads,
            scale: (max_norm / (total + 1e-6)) as f32,
        };
        model.visit(&mut scale);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tones at 500 Hz (class 0) and 1500 Hz (class 1), 0.25 s at 8 kHz.
    fn tone_clips() -> Vec<Clip> {
        (0..8)
            .map(|i| {
                let f = if i % 2 == 0 { 500.0 } else { 1500.0 };
                Clip {
                    samples: (0..2000)
                        .map(|t| (2.0 * std::f32::consts::PI * f * t as f32 / 8000.0 + i as f32).sin())
                        .collect(),
                    label: i % 2,
                    path: PathBuf::from(format!("tone{i}.wav")),
                }
            })
            .collect()
    }

    /// The tiny model for [`tone_clips`].
    fn tone_config() -> ModelConfig {
        ModelConfig::named(
            "tiny",
            8000,
            vec!["low".into(), "high".into()],
            crate::model::PoolingKind::Attention,
        )
        .unwrap()
    }

    fn options(out: PathBuf, stop_after_epoch: Option<usize>) -> TrainOptions {
        TrainOptions {
            epochs: 4,
            batch_size: 4,
            crop_seconds: 0.2,
            crops_per_recording: 1,
            max_lr: 3e-3,
            weight_decay: 0.0,
            clip_norm: 1.0,
            seed: 1,
            out,
            show_progress: false,
            augment: Augment::NONE,
            stop_after_epoch,
            average_epochs: None,
            balanced_loss: false,
            teacher: None,
            selection: Selection::Uar,
        }
    }

    #[test]
    fn each_selection_keeps_its_best_epoch() {
        let config = tone_config();
        let dir = tempfile::tempdir().unwrap();
        let clips = tone_clips();
        for selection in [Selection::Uar, Selection::Loss] {
            let out = dir.path().join("tones.iconnet");
            let opts = TrainOptions {
                selection,
                epochs: 5,
                ..options(out.clone(), None)
            };
            let report = train(
                &config,
                &clips,
                &clips[..4],
                &opts,
                |m| ModelCard::new("tones", m),
                &Device::flex(),
                Arc::new(AtomicBool::new(false)),
            )
            .unwrap();
            let history = &report.validation_history;
            assert_eq!(history.len(), 5);
            let losses: Vec<f64> = history.iter().map(|m| m.balanced_log_loss.unwrap()).collect();
            // The first epoch that no later one beats.
            let expected = match selection {
                Selection::Uar => (0..5).fold(0, |b, e| if history[e].uar > history[b].uar { e } else { b }),
                Selection::Loss => (0..5).fold(0, |b, e| if losses[e] < losses[b] { e } else { b }),
            };
            assert_eq!(report.best_epoch, expected + 1, "{selection:?}: {losses:?}");
            assert_eq!(report.best_validation.as_ref(), Some(&history[expected]));
            // The saved checkpoint is that epoch's model: it scores the same on validation.
            let (saved, _) = checkpoint::load(&out, &Device::flex()).unwrap();
            let again = evaluate(&saved, &clips[..4]).balanced_log_loss.unwrap();
            assert!(
                (again - losses[expected]).abs() < 1e-5,
                "{again} {}",
                losses[expected]
            );
        }
    }

    #[test]
    fn selection_compares_the_right_figure() {
        let classes = vec!["low".to_string(), "high".to_string()];
        let p = |a: f32, b: f32| {
            Metrics::from_probabilities(&[0, 1], &[vec![a, 1.0 - a], vec![b, 1.0 - b]], &classes)
        };
        // Both right, one more confident: the same UAR, a lower loss.
        let (sure, unsure) = (p(0.9, 0.1), p(0.6, 0.4));
        assert!(!Selection::Uar.improves(&sure, &unsure));
        assert!(Selection::Loss.improves(&sure, &unsure));
        assert!(!Selection::Loss.improves(&unsure, &sure));
        // One wrong, the other very sure: UAR 0.5 against 1, but a lower loss
        // ((-ln 0.4 - ln 0.99) / 2 = 0.463 against -ln 0.6 = 0.511): the two rules disagree.
        let wrong = p(0.4, 0.01);
        assert!(Selection::Uar.improves(&unsure, &wrong));
        assert!(Selection::Loss.improves(&wrong, &unsure));
        assert_eq!("loss".parse::<Selection>(), Ok(Selection::Loss));
        assert!("auc".parse::<Selection>().unwrap_err().contains("uar or loss"));
    }

    #[test]
    fn balanced_weights_are_inverse_class_frequencies() {
        // 3 of class 0, 1 of class 1, none of class 2: N / (K n_c) = 4 / (3 · 3), 4 / (3 · 1).
        let w = balanced_class_weights(&[0, 0, 1, 0], 3);
        assert!(
            (w[0] - 4.0 / 9.0).abs() < 1e-6 && (w[1] - 4.0 / 3.0).abs() < 1e-6,
            "{w:?}"
        );
        assert_eq!(w[2], 1.0);
        // Each present class then carries the same total weight: 3 · 4/9 = 1 · 4/3.
        assert!((3.0 * w[0] - w[1]).abs() < 1e-6);
        assert_eq!(balanced_class_weights(&[0, 1, 1, 0], 2), vec![1.0, 1.0]);
    }

    #[test]
    fn a_refit_needs_no_validation_and_stops_at_the_chosen_epoch() {
        let config = tone_config();
        let dir = tempfile::tempdir().unwrap();
        let clips = tone_clips();
        let run = |opts: &TrainOptions| {
            train(
                &config,
                &clips,
                &[],
                opts,
                |m| ModelCard::new("tones", m),
                &Device::flex(),
                Arc::new(AtomicBool::new(false)),
            )
        };
        let out = dir.path().join("tones.iconnet");
        assert!(
            run(&options(out.clone(), None)).is_err(),
            "no validation and no refit epoch"
        );
        assert!(!out.exists());

        let report = run(&options(out.clone(), Some(2))).unwrap();
        assert_eq!(report.best_epoch, 2);
        assert!(report.best_validation.is_none());
        // Two epochs of 8 clips, not the four the schedule has.
        assert!((report.samples_per_second * report.seconds - 16.0).abs() < 1e-6);
        checkpoint::load(&out, &Device::flex()).unwrap();
    }

    #[test]
    fn weight_averaging_keeps_the_averaged_model() {
        let config = tone_config();
        let dir = tempfile::tempdir().unwrap();
        let clips = tone_clips();
        let run = |average_epochs, name: &str| {
            let out = dir.path().join(name);
            let opts = TrainOptions {
                average_epochs,
                ..options(out.clone(), None)
            };
            let report = train(
                &config,
                &clips,
                &clips,
                &opts,
                |m| ModelCard::new("tones", m),
                &Device::flex(),
                Arc::new(AtomicBool::new(false)),
            )
            .unwrap();
            let (model, _) = checkpoint::load(&out, &Device::flex()).unwrap();
            (report, model)
        };
        let (_, last_step) = run(None, "last.iconnet");
        let (report, averaged) = run(Some(1.0), "averaged.iconnet");
        // The same seed and batches: only the averaging differs, and it changes the weights kept.
        let logits = |m: &IConNet| -> Vec<f32> {
            let batch = AudioBatch::from_clips(&[&clips[0].samples[..]], config.min_samples());
            m.forward(&batch).logits.into_data().try_to_vec().unwrap()
        };
        assert!(report.best_validation.is_some());
        assert_ne!(logits(&last_step), logits(&averaged));
    }

    #[test]
    fn soft_cross_entropy_by_hand() {
        let device = Device::flex();
        // Row 1: softmax(0, ln 3) = (1/4, 3/4) against (1/2, 1/2): -(ln 1/4 + ln 3/4) / 2
        // = 0.836988. Row 2: softmax(0, 0) = (1/2, 1/2) against (1, 0): ln 2 = 0.693147.
        let logits = Tensor::<2>::from_data(TensorData::new(vec![0.0, 3f32.ln(), 0.0, 0.0], [2, 2]), &device);
        let soft = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, 0.5, 1.0, 0.0], [2, 2]), &device);
        let loss: Vec<f32> = soft_cross_entropy(logits.clone(), soft)
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(
            (loss[0] - (0.836988 + std::f32::consts::LN_2) / 2.0).abs() < 1e-5,
            "{loss:?}"
        );
        // One-hot targets give the labels' cross-entropy.
        let one_hot = Tensor::<2>::from_data(TensorData::new(vec![0f32, 1.0, 1.0, 0.0], [2, 2]), &device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0], [2]), &device);
        let hard: Vec<f32> = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits.clone(), labels)
            .into_data()
            .try_to_vec()
            .unwrap();
        let soft: Vec<f32> = soft_cross_entropy(logits, one_hot)
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!((hard[0] - soft[0]).abs() < 1e-6, "{hard:?} {soft:?}");
    }

    #[test]
    fn a_teacher_averages_its_models_and_changes_what_is_learned() {
        let config = tone_config();
        let device = Device::flex();
        let clips = tone_clips();
        let batch = AudioBatch::from_clips(
            &[&clips[0].samples[..], &clips[1].samples[..]],
            config.min_samples(),
        );
        device.seed(7);
        let a = IConNet::new(&config, &device);
        device.seed(8);
        let b = IConNet::new(&config, &device);
        let (pa, pb) = (
            softmax_rows(a.forward(&batch).logits),
            softmax_rows(b.forward(&batch).logits),
        );
        let teacher = Teacher {
            models: vec![a, b],
            weight: 0.5,
        };
        let mean = teacher.probabilities(&batch);
        for (i, m) in mean.iter().enumerate() {
            let (r, k) = (i / 2, i % 2);
            assert!((m - (pa[r][k] + pb[r][k]) / 2.0).abs() < 1e-6);
        }
        assert!((mean[0] + mean[1] - 1.0).abs() < 1e-6);

        let dir = tempfile::tempdir().unwrap();
        let logits_after = |teacher: Option<Arc<Teacher>>, name: &str| -> Vec<f32> {
            let out = dir.path().join(name);
            let opts = TrainOptions {
                teacher,
                ..options(out.clone(), Some(2))
            };
            train(
                &config,
                &clips,
                &[],
                &opts,
                |m| ModelCard::new("tones", m),
                &device,
                Arc::new(AtomicBool::new(false)),
            )
            .unwrap();
            let (model, _) = checkpoint::load(&out, &device).unwrap();
            model.forward(&batch).logits.into_data().try_to_vec().unwrap()
        };
        // The same seed (other tests may share the device's generator, so this is not
        // bit-exact by construction, but a teacher changes the loss on every step).
        let plain = logits_after(None, "plain.iconnet");
        assert_ne!(plain, logits_after(Some(Arc::new(teacher)), "taught.iconnet"));
    }

    #[test]
    fn distillation_weighs_the_two_losses() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![0.0, 3f32.ln()], [1, 2]), &device);
        let soft = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, 0.5], [1, 2]), &device);
        let labels_loss = Tensor::<1>::from_data(TensorData::new(vec![2.0f32], [1]), &device);
        let at = |w: f32| -> f32 {
            distillation_loss(labels_loss.clone(), logits.clone(), soft.clone(), w)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()[0]
        };
        // The soft cross-entropy here is 0.836988 (see above).
        assert_eq!(at(0.0), 2.0);
        assert!((at(1.0) - 0.836988).abs() < 1e-5);
        assert!((at(0.25) - (0.75 * 2.0 + 0.25 * 0.836988)).abs() < 1e-5);
    }
}
