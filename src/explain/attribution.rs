//! Heatmaps over time: the model's own attention weights, Grad-CAM on the pooling input, and
//! integrated gradients on the waveform. All are per pooling frame, on the analysis' time axis.

use crate::model::{AudioBatch, Ensemble, IConNet};

/// How a heatmap was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum HeatmapMethod {
    /// The attention pooling weights (uniform for mean pooling).
    Attention,
    /// Grad-CAM for a class on the features the pooling sees.
    GradCam,
    /// Integrated gradients of a class score with respect to the input samples.
    IntegratedGradients,
}

impl HeatmapMethod {
    pub const ALL: [HeatmapMethod; 3] = [Self::Attention, Self::GradCam, Self::IntegratedGradients];

    pub fn label(self) -> &'static str {
        match self {
            Self::Attention => "attention",
            Self::GradCam => "Grad-CAM",
            Self::IntegratedGradients => "integrated gradients",
        }
    }

    /// Whether the method explains one chosen class.
    pub fn needs_class(self) -> bool {
        !matches!(self, Self::Attention)
    }

    /// The heatmap shown first for a model: its own attention when it has some; Grad-CAM for the
    /// top class when it pools with equal weights, whose "attention" only marks the frames kept.
    pub fn default_for(config: &crate::model::ModelConfig) -> Self {
        if config.uniform_pooling() {
            Self::GradCam
        } else {
            Self::Attention
        }
    }
}

/// One heatmap over the pooling frames of a recording.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Heatmap {
    pub method: HeatmapMethod,
    /// The explained class (None for attention).
    pub class: Option<String>,
    /// Non-negative weight per frame.
    pub values: Vec<f32>,
    /// Centre of each frame in seconds.
    pub times_s: Vec<f64>,
    pub frame_s: f64,
    /// Attention of a mean-pooling model: equal weight on every frame pooled.
    pub uniform_pooling: bool,
    /// `(k, n)` when only `k` of an ensemble's `n` members could give this map (integrated
    /// gradients need a learned front-end); None when every member did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<(usize, usize)>,
}

impl Heatmap {
    /// e.g. "Grad-CAM for abnormal".
    pub fn title(&self) -> String {
        let title = self.method_title();
        match self.explained_by {
            Some((k, n)) => format!(
                "{title} ({k} of {n} members: the others' fixed log-Mel/MFCC features have no input gradient)"
            ),
            None => title,
        }
    }

    fn method_title(&self) -> String {
        match &self.class {
            Some(c) => format!("{} for {c}", self.method.label()),
            None if self.uniform_pooling => {
                "frames pooled (mean pooling: equal weight on each frame kept, no attention)".into()
            }
            None => format!("{} (model's pooling weights)", self.method.label()),
        }
    }

    /// Values divided by their maximum (all zero stays zero).
    pub fn normalised(&self) -> Vec<f32> {
        scale_to_max_one(self.values.clone())
    }

    /// [`Self::normalised`] after a centred moving average over `window_s` seconds (at the
    /// edges, over the frames that exist). For display only: attention on heart sounds
    /// changes frame to frame, and a window near a heart cycle shows which phases it favours.
    /// `window_s` shorter than 1.5 frames leaves the values as they are.
    pub fn smoothed_normalised(&self, window_s: f64) -> Vec<f32> {
        let half = if self.frame_s > 0.0 {
            ((window_s / self.frame_s - 1.0) / 2.0).round().max(0.0) as usize
        } else {
            0
        };
        if half == 0 {
            return self.normalised();
        }
        let n = self.values.len();
        let mut prefix = vec![0f64; n + 1];
        for (i, v) in self.values.iter().enumerate() {
            prefix[i + 1] = prefix[i] + *v as f64;
        }
        let values: Vec<f32> = (0..n)
            .map(|t| {
                let (a, b) = (t.saturating_sub(half), (t + half + 1).min(n));
                ((prefix[b] - prefix[a]) / (b - a) as f64) as f32
            })
            .collect();
        scale_to_max_one(values)
    }

    /// Contiguous runs of frames whose normalised value is at least `threshold`, as
    /// `(start_s, end_s, mean normalised value)`.
    pub fn regions_above(&self, threshold: f32) -> Vec<(f64, f64, f32)> {
        let norm = self.normalised();
        let mut out = Vec::new();
        let mut start: Option<usize> = None;
        for t in 0..=norm.len() {
            let high = t < norm.len() && norm[t] >= threshold;
            match (high, start) {
                (true, None) => start = Some(t),
                (false, Some(s)) => {
                    let mean = norm[s..t].iter().sum::<f32>() / (t - s) as f32;
                    out.push((s as f64 * self.frame_s, t as f64 * self.frame_s, mean));
                    start = None;
                }
                _ => {}
            }
        }
        out
    }
}

/// Loads a checkpoint or an ensemble for attributions: on the autodiff variant of `device`,
/// dropout off.
pub fn load_for_attribution(
    path: &std::path::Path,
    device: &burn::tensor::Device,
) -> Result<Ensemble, String> {
    Ensemble::load(path, &device.clone().autodiff()).map(Ensemble::without_dropout)
}

/// Grad-CAM or integrated gradients (`ig_steps` steps) for `class` from every member of
/// `ensemble` (integrated gradients: every member with a learned front-end, and the map's
/// `explained_by` says how many), combined by [`average_heatmaps`]. The members must live on an
/// autodiff device; `progress` gets the fraction done over the members that explain.
pub fn explain_ensemble(
    ensemble: &Ensemble,
    samples: &[f32],
    method: HeatmapMethod,
    class: usize,
    ig_steps: usize,
    mut progress: impl FnMut(f32),
) -> Result<Heatmap, String> {
    match method {
        HeatmapMethod::Attention => return Err("attention comes with the analysis".into()),
        HeatmapMethod::GradCam => {
            // One Grad-CAM costs about one forward pass; members side by side use both cores,
            // as the analysis does. Integrated gradients stay one member at a time: each holds
            // many scaled copies of the clip and reports progress.
            use rayon::prelude::*;
            let maps: Vec<Heatmap> = ensemble
                .members
                .par_iter()
                .map(|m| grad_cam(&m.model, samples, class))
                .collect::<Result<_, _>>()?;
            progress(1.0);
            return average_heatmaps(maps);
        }
        HeatmapMethod::IntegratedGradients => {}
    }
    // Input gradients exist only through a learned (FIR) front-end, so integrated gradients
    // of a mixed ensemble come from its FIR members, and the map says so.
    let explaining: Vec<&IConNet> = ensemble.models().filter(|m| m.has_input_gradient()).collect();
    if explaining.is_empty() {
        return Err(format!(
            "{} need a learned front-end, and this model's features are fixed log-Mel/MFCC: use Grad-CAM",
            method.label()
        ));
    }
    let n = explaining.len() as f32;
    let mut maps = Vec::with_capacity(explaining.len());
    for (i, model) in explaining.iter().copied().enumerate() {
        let map = integrated_gradients(model, samples, class, ig_steps, |f| progress((i as f32 + f) / n))?;
        progress((i + 1) as f32 / n);
        maps.push(map);
    }
    let mut map = average_heatmaps(maps)?;
    if explaining.len() < ensemble.len() {
        map.explained_by = Some((explaining.len(), ensemble.len()));
    }
    Ok(map)
}

/// Grad-CAM for `class` from the pooling inputs an analysis kept
/// ([`super::analyse_ensemble_keeping`], one per member, in member order): only each member's
/// pooling and head run again, on `explainer`, the same ensemble on an autodiff device. Live
/// mode explains every window this way for a fraction of the analysis's time.
pub fn grad_cam_from_kept(
    explainer: &Ensemble,
    kept: &[crate::model::PoolingInput],
    class: usize,
) -> Result<Heatmap, String> {
    use rayon::prelude::*;
    if kept.len() != explainer.len() {
        return Err(format!(
            "{} pooling inputs for an ensemble of {}",
            kept.len(),
            explainer.len()
        ));
    }
    let maps: Vec<Heatmap> = explainer
        .members
        .par_iter()
        .zip(kept)
        .map(|(m, input)| {
            let values = m.model.grad_cam_from(input, class)?.remove(0);
            Ok(heatmap(&m.model, HeatmapMethod::GradCam, Some(class), values))
        })
        .collect::<Result<_, String>>()?;
    average_heatmaps(maps)
}

/// One heatmap from the members' maps of the same clip. A single map is returned as it is; for
/// several, each is first scaled to a maximum of one and the scaled maps are averaged, so every
/// member has the same say whatever the scale of its gradients. Members with different frame
/// lengths (different front-ends) are averaged on the finest member's frames
/// ([`super::onto_frames`]).
pub fn average_heatmaps(mut maps: Vec<Heatmap>) -> Result<Heatmap, String> {
    if maps.len() == 1 {
        return Ok(maps.remove(0));
    }
    let reference =
        super::finest(maps.iter().map(|m| m.frame_s)).ok_or("an ensemble needs at least one model")?;
    let grid = &maps[reference];
    let (frames, frame_s) = (grid.values.len(), grid.frame_s);
    let mut sum = vec![0f32; frames];
    for m in &maps {
        if m.method != grid.method || m.class != grid.class {
            return Err(format!(
                "ensemble members' heatmaps do not line up ({} against {})",
                m.title(),
                grid.title()
            ));
        }
        let values = super::onto_frames(&m.normalised(), m.frame_s, frames, frame_s)
            .map_err(|e| format!("ensemble members' heatmaps do not line up: {e}"))?;
        for (s, v) in sum.iter_mut().zip(values) {
            *s += v;
        }
    }
    let n = maps.len() as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    let grid = maps
        .into_iter()
        .nth(reference)
        .expect("the reference is a member");
    Ok(Heatmap { values: sum, ..grid })
}

/// Grad-CAM for `class` on one normalised clip. `model` must live on an autodiff device.
pub fn grad_cam(model: &IConNet, samples: &[f32], class: usize) -> Result<Heatmap, String> {
    check_class(model, class)?;
    let batch = AudioBatch::from_clips(&[samples], model.config.min_samples());
    let values = model.grad_cam(&batch, class)?.remove(0);
    Ok(heatmap(model, HeatmapMethod::GradCam, Some(class), values))
}

/// Integrated gradients (zero baseline, `steps` midpoint Riemann steps) for `class`, summed over
/// each pooling frame's samples and clipped at zero: evidence for the class.
/// `model` must live on an autodiff device; `progress` gets the fraction done.
pub fn integrated_gradients(
    model: &IConNet,
    samples: &[f32],
    class: usize,
    steps: usize,
    mut progress: impl FnMut(f32),
) -> Result<Heatmap, String> {
    check_class(model, class)?;
    let steps = steps.max(1);
    let n = samples.len();
    let time = n.max(model.config.min_samples());
    // Several scaled copies per batch, but keep a batch under ~2M samples.
    let per_batch = (2_000_000 / time.max(1)).clamp(1, 8);
    let mut mean_grad = vec![0f64; n];
    let alphas: Vec<f32> = (0..steps).map(|k| (k as f32 + 0.5) / steps as f32).collect();
    for (done, chunk) in alphas.chunks(per_batch).enumerate() {
        let scaled: Vec<Vec<f32>> = chunk
            .iter()
            .map(|&a| samples.iter().map(|&x| a * x).collect())
            .collect();
        let clips: Vec<&[f32]> = scaled.iter().map(|c| c.as_slice()).collect();
        let batch = AudioBatch::from_clips(&clips, model.config.min_samples());
        let g = model.input_gradient(&batch, class)?;
        for row in g.chunks(batch.time) {
            for (m, &v) in mean_grad.iter_mut().zip(row) {
                *m += v as f64 / steps as f64;
            }
        }
        progress(((done + 1) * per_batch).min(steps) as f32 / steps as f32);
    }
    let stride = model.config.total_stride();
    let frames = (n / stride).max(1);
    let values = (0..frames)
        .map(|f| {
            let range = f * stride..((f + 1) * stride).min(n);
            let sum: f64 = range.map(|i| samples[i] as f64 * mean_grad[i]).sum();
            sum.max(0.0) as f32
        })
        .collect();
    Ok(heatmap(
        model,
        HeatmapMethod::IntegratedGradients,
        Some(class),
        values,
    ))
}

/// The attention weights of an analysis as a heatmap.
pub fn attention(analysis: &super::Analysis) -> Heatmap {
    Heatmap {
        method: HeatmapMethod::Attention,
        class: None,
        values: analysis.attention.clone(),
        times_s: analysis.times_s.clone(),
        frame_s: analysis.frame_s,
        uniform_pooling: analysis.uniform_pooling,
        explained_by: None,
    }
}

/// Divides by the maximum when it is positive; otherwise returns the values unchanged.
fn scale_to_max_one(mut values: Vec<f32>) -> Vec<f32> {
    let max = values.iter().copied().fold(0f32, f32::max);
    if max > 0.0 {
        values.iter_mut().for_each(|v| *v /= max);
    }
    values
}

fn check_class(model: &IConNet, class: usize) -> Result<(), String> {
    if class < model.config.classes.len() {
        Ok(())
    } else {
        Err(format!(
            "class {class} out of range ({} classes)",
            model.config.classes.len()
        ))
    }
}

fn heatmap(model: &IConNet, method: HeatmapMethod, class: Option<usize>, values: Vec<f32>) -> Heatmap {
    let frame_s = model.config.total_stride() as f64 / model.config.sample_rate as f64;
    Heatmap {
        method,
        class: class.map(|c| model.config.classes[c].clone()),
        times_s: super::frame_centres(values.len(), frame_s),
        values,
        frame_s,
        uniform_pooling: false,
        explained_by: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_averages_over_the_window_and_renormalises() {
        // Frames of 0.5 s; a 1.5 s window is 3 frames: a spike of 3 at frame 2 becomes 1 on
        // frames 1..=3, then normalised to 1.
        let h = map(vec![0.0, 0.0, 3.0, 0.0, 0.0, 0.0]);
        assert_eq!(h.smoothed_normalised(1.5), vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        // At the edge the window holds the frames that exist: frame 0 averages frames 0 and 1
        // (3), frame 1 frames 0..=2 (2).
        let edge = map(vec![6.0, 0.0, 0.0, 0.0]);
        assert_eq!(edge.smoothed_normalised(1.5), vec![1.0, 2.0 / 3.0, 0.0, 0.0]);
        assert_eq!(h.smoothed_normalised(0.5), h.normalised());
        assert_eq!(h.smoothed_normalised(0.0), h.normalised());
    }

    fn map(values: Vec<f32>) -> Heatmap {
        Heatmap {
            method: HeatmapMethod::Attention,
            class: None,
            times_s: (0..values.len()).map(|t| t as f64 * 0.5 + 0.25).collect(),
            values,
            frame_s: 0.5,
            uniform_pooling: false,
            explained_by: None,
        }
    }

    fn member(arch: &str, device: &burn::tensor::Device) -> crate::model::ensemble::Member {
        use crate::model::{ModelConfig, PoolingKind};
        let classes = vec!["no".to_string(), "yes".to_string()];
        let config = ModelConfig::named(arch, 1000, classes, PoolingKind::Attention).unwrap();
        // Without dropout the same clip gives the same gradients, as in the app.
        let model = IConNet::new(&config, device).without_dropout();
        let card = crate::model::checkpoint::ModelCard::new(arch, &model);
        crate::model::ensemble::Member {
            model,
            card,
            path: format!("{arch}.iconnet").into(),
        }
    }

    #[test]
    fn integrated_gradients_of_a_mixed_ensemble_come_from_its_learned_front_ends() {
        let device = burn::tensor::Device::flex().autodiff();
        let path = std::path::Path::new("mixed.ensemble");
        let fir = member("tiny", &device);
        let samples: Vec<f32> = (0..1500).map(|t| (t as f32 * 0.3).sin()).collect();
        let alone = integrated_gradients(&fir.model, &samples, 1, 3, |_| {}).unwrap();
        let mixed = Ensemble::new("mixed", path, vec![], vec![fir, member("mfcc", &device)]).unwrap();
        let map =
            explain_ensemble(&mixed, &samples, HeatmapMethod::IntegratedGradients, 1, 3, |_| {}).unwrap();
        // The MFCC member has no input gradient: the map is the FIR member's, and says so.
        assert_eq!(map.values, alone.values);
        assert_eq!(map.explained_by, Some((1, 2)));
        assert_eq!(
            map.title(),
            "integrated gradients for yes (1 of 2 members: the others' fixed log-Mel/MFCC \
features have no input gradient)"
        );
        // Grad-CAM needs no input gradient: every member explains.
        let cam = explain_ensemble(&mixed, &samples, HeatmapMethod::GradCam, 1, 3, |_| {}).unwrap();
        assert_eq!(cam.explained_by, None);
        // With no learned front-end at all, the error names the way out.
        let fixed = Ensemble::new("fixed", path, vec![], vec![member("mfcc", &device)]).unwrap();
        let e =
            explain_ensemble(&fixed, &samples, HeatmapMethod::IntegratedGradients, 1, 3, |_| {}).unwrap_err();
        assert!(e.contains("learned front-end") && e.contains("Grad-CAM"), "{e}");
    }

    #[test]
    fn mean_pooling_weights_are_not_titled_attention() {
        let mut h = map(vec![0.5, 0.5, 0.0]);
        assert_eq!(h.title(), "attention (model's pooling weights)");
        h.uniform_pooling = true;
        assert!(h.title().starts_with("frames pooled (mean pooling"));
        assert!(!h.title().contains("attention ("));
    }

    #[test]
    fn a_model_opens_on_its_attention_or_on_grad_cam_if_it_has_none() {
        use crate::model::{ModelConfig, PoolingKind};
        let classes = || vec!["normal".to_string(), "abnormal".to_string()];
        let attentive = ModelConfig::named("m13", 1000, classes(), PoolingKind::Attention).unwrap();
        let mean = ModelConfig::named("m13", 1000, classes(), PoolingKind::Mean).unwrap();
        assert_eq!(HeatmapMethod::default_for(&attentive), HeatmapMethod::Attention);
        assert_eq!(HeatmapMethod::default_for(&mean), HeatmapMethod::GradCam);
    }

    #[test]
    fn regions_are_runs_above_the_threshold_in_seconds() {
        // Normalised: 0.1, 1.0, 0.8, 0.2, 0.6 -> runs [1, 3) and [4, 5) at threshold 0.5.
        let h = map(vec![0.5, 5.0, 4.0, 1.0, 3.0]);
        let r = h.regions_above(0.5);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].0, r[0].1), (0.5, 1.5));
        assert!((r[0].2 - 0.9).abs() < 1e-6);
        assert_eq!((r[1].0, r[1].1), (2.0, 2.5));
    }

    #[test]
    fn members_maps_are_scaled_to_one_then_averaged() {
        // Scaled: [0.5, 1, 0] and [1, 0, 0] -> mean [0.75, 0.5, 0].
        let e = average_heatmaps(vec![map(vec![2.0, 4.0, 0.0]), map(vec![0.1, 0.0, 0.0])]).unwrap();
        assert_eq!(e.values, vec![0.75, 0.5, 0.0]);
        assert_eq!(e.frame_s, 0.5);
        // One member keeps the values it computed.
        assert_eq!(
            average_heatmaps(vec![map(vec![2.0, 4.0])]).unwrap().values,
            vec![2.0, 4.0]
        );
        let e = average_heatmaps(vec![map(vec![1.0, 1.0]), map(vec![1.0])]).unwrap_err();
        assert!(e.contains("do not line up"), "{e}");
        assert!(average_heatmaps(vec![]).is_err());
        // A member with 1 s frames, on the 0.5 s grid of the other: [1, 3] scaled to [1/3, 1],
        // read at centres 0.25, 0.75, 1.25, 1.75 s: [1/3, 1/3, 1, 1]. With [0.5, 1, 0, 0]:
        // [5/12, 2/3, 1/2, 1/2].
        let mut coarse = map(vec![1.0, 3.0]);
        coarse.frame_s = 1.0;
        coarse.times_s = crate::explain::frame_centres(2, 1.0);
        let e = average_heatmaps(vec![coarse, map(vec![2.0, 4.0, 0.0, 0.0])]).unwrap();
        for (v, expected) in e.values.iter().zip([5.0 / 12.0, 2.0 / 3.0, 0.5, 0.5]) {
            assert!((v - expected).abs() < 1e-6, "{:?}", e.values);
        }
        assert_eq!((e.frame_s, e.times_s.len()), (0.5, 4));
    }

    #[test]
    fn normalising_an_all_zero_map_keeps_zeros() {
        assert_eq!(map(vec![0.0, 0.0]).normalised(), vec![0.0, 0.0]);
    }
}
