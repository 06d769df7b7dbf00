//! What the app and reports draw, as plain Rust data: filters (bands in Hz, kernels, responses,
//! drift) and per-recording analyses (probabilities, attention over time, band energies).

pub mod attribution;
pub mod export;

use burn::tensor::activation::softmax;

use crate::dsp::kernel::{bandpass_kernel, generalized_cosine_window, magnitude_response_db};
use crate::model::{AudioBatch, Ensemble, IConNet, PoolingInput};

/// One learned filter of one block (for a multi-channel block: one input channel's kernel).
#[derive(Clone, Debug, serde::Serialize)]
pub struct FilterInfo {
    pub block: usize,
    pub filter: usize,
    pub channel: usize,
    /// Rate the block runs at (input rate divided by earlier strides).
    pub sample_rate_hz: f64,
    pub f_low_hz: f64,
    pub f_high_hz: f64,
    pub init_f_low_hz: f64,
    pub init_f_high_hz: f64,
    pub window: Vec<f64>,
    pub init_window: Vec<f64>,
}

impl FilterInfo {
    pub fn centre_hz(&self) -> f64 {
        (self.f_low_hz + self.f_high_hz) / 2.0
    }
    pub fn bandwidth_hz(&self) -> f64 {
        self.f_high_hz - self.f_low_hz
    }
    /// Mean absolute movement of the two band edges since initialisation, Hz.
    pub fn drift_hz(&self) -> f64 {
        ((self.f_low_hz - self.init_f_low_hz).abs() + (self.f_high_hz - self.init_f_high_hz).abs()) / 2.0
    }
    /// Window samples `w[k]`.
    pub fn window_samples(&self, taps: usize) -> Vec<f64> {
        generalized_cosine_window(&self.window, taps)
    }
    /// Kernel taps, recomputed in f64 from the learned parameters.
    pub fn kernel(&self, taps: usize) -> Vec<f64> {
        let w = self.window_samples(taps);
        bandpass_kernel(
            self.f_low_hz / self.sample_rate_hz,
            self.f_high_hz / self.sample_rate_hz,
            &w,
        )
    }
    /// `(frequency Hz, |H(f)| dB)` at `n_points` frequencies from 0 to Nyquist.
    pub fn frequency_response(&self, taps: usize, n_points: usize) -> (Vec<f64>, Vec<f64>) {
        let db = magnitude_response_db(&self.kernel(taps), n_points);
        let hz = (0..n_points)
            .map(|i| i as f64 / (n_points.max(2) - 1) as f64 * self.sample_rate_hz / 2.0)
            .collect();
        (hz, db)
    }
}

/// All filters of every FIR block, block by block, filter-major.
pub fn filters(model: &IConNet) -> Vec<FilterInfo> {
    let mut out = Vec::new();
    let mut rate = model.config.sample_rate as f64;
    for (b, block) in model.blocks.iter().enumerate() {
        let bank = &block.bank;
        let (bands, init) = (bank.bands(), bank.initial_bands());
        let (windows, init_windows) = (bank.window_coefficients(), bank.initial_window_coefficients());
        for i in 0..bands.len() {
            out.push(FilterInfo {
                block: b,
                filter: i / bank.in_channels,
                channel: i % bank.in_channels,
                sample_rate_hz: rate,
                f_low_hz: bands[i].f_low * rate,
                f_high_hz: bands[i].f_high * rate,
                init_f_low_hz: init[i].f_low * rate,
                init_f_high_hz: init[i].f_high * rate,
                window: windows[i].clone(),
                init_window: init_windows[i].clone(),
            });
        }
        rate /= block.stride as f64;
    }
    out
}

/// Index of the largest value (the last one on ties, as `Iterator::max_by` gives; 0 for an
/// empty slice).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// Centre of each of `n` frames of `frame_s` seconds.
pub fn frame_centres(n: usize, frame_s: f64) -> Vec<f64> {
    (0..n).map(|t| (t as f64 + 0.5) * frame_s).collect()
}

/// Per-frame `values` of frames `from_frame_s` long, on a grid of `frames` frames
/// `to_frame_s` long: each target frame takes the value of the source frame that holds its
/// centre (the last source frame for centres past the end). Ensemble members with different
/// front-ends pool over frames of different lengths; their maps are averaged on the finest
/// member's grid, which loses nothing of the coarser ones. On equal frame lengths the lengths
/// must agree: a mismatch there is a bug, not a grid to map.
pub fn onto_frames(
    values: &[f32],
    from_frame_s: f64,
    frames: usize,
    to_frame_s: f64,
) -> Result<Vec<f32>, String> {
    if (from_frame_s - to_frame_s).abs() <= 1e-12 * to_frame_s.abs().max(1.0) {
        return if values.len() == frames {
            Ok(values.to_vec())
        } else {
            Err(format!(
                "ensemble members see different frames ({} against {} of {:.1} ms)",
                values.len(),
                frames,
                1e3 * to_frame_s
            ))
        };
    }
    if values.is_empty() || !from_frame_s.is_finite() || from_frame_s <= 0.0 {
        return Err("a member has no frames to map".into());
    }
    Ok((0..frames)
        .map(|j| {
            let centre = (j as f64 + 0.5) * to_frame_s;
            values[((centre / from_frame_s) as usize).min(values.len() - 1)]
        })
        .collect())
}

/// Index of the member with the shortest frames (the first of them on a tie).
pub(crate) fn finest(frame_s: impl Iterator<Item = f64>) -> Option<usize> {
    frame_s
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// The model's view of one recording.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Analysis {
    pub classes: Vec<String>,
    pub probabilities: Vec<f32>,
    pub top_class: usize,
    /// Pooling weights per frame (sum to 1).
    pub attention: Vec<f32>,
    /// The model pools with equal weights (mean pooling, no attention): `attention` then only
    /// says which frames were pooled (silence may be left out) and must not be read as focus.
    pub uniform_pooling: bool,
    /// Centre of each frame in seconds.
    pub times_s: Vec<f64>,
    /// Seconds per frame.
    pub frame_s: f64,
    /// First block's band energies `[filters][frames_1]` (NLReLU), if a FIR front-end.
    pub band_energy: Option<Vec<Vec<f32>>>,
    pub band_energy_frame_s: f64,
    /// Each member's probabilities, for an ensemble (empty for a single model).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub member_probabilities: Vec<Vec<f32>>,
}

impl Analysis {
    /// The mean probabilities of the ensemble members `members` (indices into
    /// `member_probabilities`); None for none, or for a single model.
    pub fn probabilities_of(&self, members: &[usize]) -> Option<Vec<f32>> {
        let rows: Vec<&Vec<f32>> = members
            .iter()
            .filter_map(|&i| self.member_probabilities.get(i))
            .collect();
        if rows.is_empty() || rows.len() != members.len() {
            return None;
        }
        let mut mean = vec![0f32; self.classes.len()];
        for row in &rows {
            mean.iter_mut().zip(row.iter()).for_each(|(m, p)| *m += p);
        }
        mean.iter_mut().for_each(|m| *m /= rows.len() as f32);
        Some(mean)
    }

    /// How many members of an ensemble give `class` their highest probability.
    pub fn members_voting_for(&self, class: usize) -> usize {
        self.member_probabilities
            .iter()
            .filter(|p| argmax(p) == class)
            .count()
    }
}

/// What the members in `held_out` (those that never trained or chose their checkpoint on
/// `group`) say of a recording of it, e.g. "the 2 members that never saw a0013 say normal
/// (61.2 %)": the honest prediction for a recording the ensemble learned from. None when no
/// member is held out (or for a single model).
pub fn held_out_vote(analysis: &Analysis, held_out: &[usize], group: &str) -> Option<String> {
    let p = analysis.probabilities_of(held_out)?;
    let top = argmax(&p);
    let (who, say) = match held_out.len() {
        1 => ("the member".to_string(), "says"),
        n => (format!("the {n} members"), "say"),
    };
    Some(format!(
        "{who} that never saw {group} {say} {} ({:.1} %)",
        analysis.classes[top],
        100.0 * p[top]
    ))
}

/// Runs `model` on one normalised clip at the model's rate.
pub fn analyse(model: &IConNet, samples: &[f32]) -> Analysis {
    let batch = AudioBatch::from_clips(&[samples], model.config.min_samples());
    analysis_of(model, samples, model.forward(&batch))
}

/// [`analyse`] without band energies (`band_energy` is None).
fn analyse_without_band_energy(model: &IConNet, samples: &[f32]) -> Analysis {
    let batch = AudioBatch::from_clips(&[samples], model.config.min_samples());
    analysis_of(model, samples, model.forward_without_band_energy(&batch))
}

/// [`analyse`], keeping what the pooling read so that a class can be explained afterwards
/// without running the front-end again (see `attribution::grad_cam_from_kept`).
pub fn analyse_keeping(model: &IConNet, samples: &[f32]) -> (Analysis, PoolingInput) {
    let batch = AudioBatch::from_clips(&[samples], model.config.min_samples());
    let (out, kept) = model.forward_keeping_pooling_input(&batch);
    (analysis_of(model, samples, out), kept)
}

/// [`analyse_ensemble`], keeping each member's pooling input (in member order).
pub fn analyse_ensemble_keeping(
    ensemble: &Ensemble,
    samples: &[f32],
) -> Result<(Analysis, Vec<PoolingInput>), String> {
    use rayon::prelude::*;
    let keeper = band_energy_member(ensemble);
    let (analyses, kept): (Vec<Analysis>, Vec<PoolingInput>) = ensemble
        .members
        .par_iter()
        .enumerate()
        .map(|(i, m)| {
            let (a, k) = analyse_keeping(&m.model, samples);
            (only_keeper_band_energy(a, i, keeper), k)
        })
        .unzip();
    Ok((average_analyses(analyses)?, kept))
}

/// The analysis of `samples` from `model`'s forward pass over them (a batch of that one clip).
fn analysis_of(model: &IConNet, samples: &[f32], out: crate::model::Forward) -> Analysis {
    let config = &model.config;
    let probabilities: Vec<f32> = softmax(out.logits, 1).into_data().try_to_vec().expect("f32");
    let valid = out.valid_frames[0];
    let attention: Vec<f32> = out.attention.into_data().try_to_vec::<f32>().expect("f32")[..valid].to_vec();
    let stride = config.total_stride() as f64;
    let rate = config.sample_rate as f64;
    let times_s = frame_centres(valid, stride / rate);
    let first_stride = model.blocks.first().map(|b| b.stride).unwrap_or(1) as f64;
    let band_energy = out.band_energy.map(|e| {
        let [_, h, t] = e.dims();
        let frames = (samples.len() / first_stride as usize).min(t);
        let v: Vec<f32> = e.into_data().try_to_vec().expect("f32");
        (0..h).map(|i| v[i * t..i * t + frames].to_vec()).collect()
    });
    let top_class = argmax(&probabilities);
    Analysis {
        classes: config.classes.clone(),
        probabilities,
        top_class,
        attention,
        uniform_pooling: config.uniform_pooling(),
        times_s,
        frame_s: stride / rate,
        band_energy,
        band_energy_frame_s: first_stride / rate,
        member_probabilities: Vec::new(),
    }
}

/// Clips longer than this (seconds) go through an ensemble's members one at a time.
const SIDE_BY_SIDE_MAX_S: f64 = 120.0;

/// Runs every member of `ensemble` on one normalised clip and averages their analyses. The
/// members run side by side: one member's pass leaves a core idle for part of its time (the
/// context layers, pooling and head are small products), and on the bundled heart ensemble
/// this took 30 s of a0013 from 100 to 79 ms on 2 cores. Past [`SIDE_BY_SIDE_MAX_S`] they run
/// one at a time: an M13 member at 8 kHz held ~2 GB over 11 minutes (1.1 GB since its second
/// block takes its segments in groups), and two at once took the digits ensemble to 3.7 GB
/// against 2.5 GB one at a time, for 79 against 84 s.
pub fn analyse_ensemble(ensemble: &Ensemble, samples: &[f32]) -> Result<Analysis, String> {
    use rayon::prelude::*;
    let keeper = band_energy_member(ensemble);
    // Members other than the one shown never make band energies: 340 MB per M13 member over
    // 11 minutes at 8 kHz, and twice that while the tensor is copied out.
    let one = |(i, m): (usize, &crate::model::ensemble::Member)| {
        if Some(i) == keeper {
            analyse(&m.model, samples)
        } else {
            analyse_without_band_energy(&m.model, samples)
        }
    };
    let seconds = samples.len() as f64 / ensemble.config().sample_rate as f64;
    let members = &ensemble.members;
    if seconds > SIDE_BY_SIDE_MAX_S {
        average_analyses(members.iter().enumerate().map(one).collect())
    } else {
        average_analyses(members.par_iter().enumerate().map(one).collect())
    }
}

/// The member whose band energies an ensemble's analysis shows: the first with a learned
/// front-end ([`average_analyses`] keeps the first it is given).
fn band_energy_member(ensemble: &Ensemble) -> Option<usize> {
    ensemble.members.iter().position(|m| !m.model.blocks.is_empty())
}

/// `a` with its band energies dropped unless it is member `keeper`'s. They are 128 values per
/// 1 ms frame for an M13 member at 8 kHz, 340 MB for 11 minutes; held for every member until
/// the averaging, twelve such members took 6.9 GB where one is shown.
fn only_keeper_band_energy(mut a: Analysis, member: usize, keeper: Option<usize>) -> Analysis {
    if Some(member) != keeper {
        a.band_energy = None;
    }
    a
}

/// The analysis of an ensemble: class probabilities and attention weights averaged over the
/// members' analyses of the same clip. Members whose front-ends have different frame lengths
/// are averaged on the finest member's frames ([`onto_frames`]; each member's weights are
/// summed to one again on that grid, so every member has the same say). Band energies are the
/// first member's that has them: each member has its own filters, so their bands do not line
/// up and cannot be averaged.
pub fn average_analyses(mut members: Vec<Analysis>) -> Result<Analysis, String> {
    if members.len() == 1 {
        return Ok(members.remove(0));
    }
    let reference =
        finest(members.iter().map(|a| a.frame_s)).ok_or("an ensemble needs at least one model")?;
    let (frames, frame_s) = (members[reference].attention.len(), members[reference].frame_s);
    let times_s = members[reference].times_s.clone();
    let on_grid = |a: &Analysis| -> Result<Vec<f32>, String> {
        let mut w = onto_frames(&a.attention, a.frame_s, frames, frame_s)?;
        if a.frame_s != frame_s {
            let total: f32 = w.iter().sum();
            if total > 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
        }
        Ok(w)
    };
    let mut members = members.into_iter();
    let mut first = members.next().ok_or("an ensemble needs at least one model")?;
    first.attention = on_grid(&first)?;
    let mut n = 1.0f32;
    let mut votes = vec![first.probabilities.clone()];
    for a in members {
        if a.classes != first.classes {
            return Err(format!(
                "ensemble members disagree on the classes ({} against {})",
                a.classes.join(", "),
                first.classes.join(", ")
            ));
        }
        for (x, y) in first.attention.iter_mut().zip(on_grid(&a)?) {
            *x += y;
        }
        for (x, y) in first.probabilities.iter_mut().zip(&a.probabilities) {
            *x += y;
        }
        votes.push(a.probabilities);
        first.uniform_pooling &= a.uniform_pooling;
        if first.band_energy.is_none() && a.band_energy.is_some() {
            first.band_energy = a.band_energy;
            first.band_energy_frame_s = a.band_energy_frame_s;
        }
        n += 1.0;
    }
    first.probabilities.iter_mut().for_each(|p| *p /= n);
    first.attention.iter_mut().for_each(|w| *w /= n);
    first.top_class = argmax(&first.probabilities);
    first.member_probabilities = votes;
    first.times_s = times_s;
    first.frame_s = frame_s;
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(probabilities: Vec<f32>, attention: Vec<f32>) -> Analysis {
        Analysis {
            classes: vec!["normal".into(), "abnormal".into()],
            top_class: argmax(&probabilities),
            probabilities,
            times_s: frame_centres(attention.len(), 0.5),
            attention,
            uniform_pooling: false,
            frame_s: 0.5,
            band_energy: Some(vec![vec![1.0]]),
            band_energy_frame_s: 0.1,
            member_probabilities: Vec::new(),
        }
    }

    #[test]
    fn an_ensemble_averages_probabilities_and_attention() {
        let a = analysis(vec![0.8, 0.2], vec![0.5, 0.25, 0.25]);
        let b = analysis(vec![0.2, 0.8], vec![0.0, 0.0, 1.0]);
        let c = analysis(vec![0.35, 0.65], vec![0.1, 0.2, 0.7]);
        let e = average_analyses(vec![a.clone(), b, c]).unwrap();
        // (0.8 + 0.2 + 0.35) / 3 = 0.45; (0.2 + 0.8 + 0.65) / 3 = 0.55.
        assert!((e.probabilities[0] - 0.45).abs() < 1e-6 && (e.probabilities[1] - 0.55).abs() < 1e-6);
        assert_eq!(e.top_class, 1);
        // (0.5 + 0 + 0.1) / 3 = 0.2, (0.25 + 0 + 0.2) / 3 = 0.15, (0.25 + 1 + 0.7) / 3 = 0.65.
        for (w, expected) in e.attention.iter().zip([0.2, 0.15, 0.65]) {
            assert!((w - expected).abs() < 1e-6, "{:?}", e.attention);
        }
        assert_eq!(e.band_energy, a.band_energy, "the first member's bands");
        assert_eq!(e.member_probabilities.len(), 3);
        // a favours normal, b and c abnormal.
        assert_eq!((e.members_voting_for(0), e.members_voting_for(1)), (1, 2));
        let single = average_analyses(vec![a.clone()]).unwrap();
        assert_eq!(single.probabilities, a.probabilities);
        assert!(single.member_probabilities.is_empty());
        let short = analysis(vec![0.5, 0.5], vec![1.0]);
        assert!(
            average_analyses(vec![a, short])
                .unwrap_err()
                .contains("different frames")
        );
        assert!(average_analyses(vec![]).is_err());
    }

    #[test]
    fn members_with_different_frames_are_averaged_on_the_finest_grid() {
        let fine = analysis(vec![0.8, 0.2], vec![0.5, 0.25, 0.25, 0.0]);
        let mut coarse = analysis(vec![0.4, 0.6], vec![0.25, 0.75]);
        coarse.frame_s = 1.0;
        coarse.times_s = frame_centres(2, 1.0);
        coarse.band_energy = None;
        // The coarse frames hold the fine centres 0.25, 0.75 | 1.25, 1.75 s: 0.25, 0.25, 0.75,
        // 0.75, summed to one again: 0.125, 0.125, 0.375, 0.375. Averaged with the fine member:
        // 0.3125, 0.1875, 0.3125, 0.1875.
        for members in [vec![fine.clone(), coarse.clone()], vec![coarse, fine.clone()]] {
            let e = average_analyses(members).unwrap();
            assert_eq!((e.frame_s, e.times_s.clone()), (0.5, fine.times_s.clone()));
            for (w, expected) in e.attention.iter().zip([0.3125, 0.1875, 0.3125, 0.1875]) {
                assert!((w - expected).abs() < 1e-6, "{:?}", e.attention);
            }
            assert!((e.probabilities[0] - 0.6).abs() < 1e-6);
            // Band energies come from the member that has them, wherever it is in the list.
            assert_eq!(e.band_energy, fine.band_energy);
        }
        // Past the coarse member's last frame, the last one holds.
        assert_eq!(
            onto_frames(&[1.0, 2.0], 1.0, 5, 0.5).unwrap(),
            vec![1.0, 1.0, 2.0, 2.0, 2.0]
        );
        assert!(onto_frames(&[1.0, 2.0], 0.5, 3, 0.5).is_err());
    }

    #[test]
    fn a_subset_of_members_gives_its_own_mean() {
        let a = analysis(vec![0.8, 0.2], vec![1.0]);
        let b = analysis(vec![0.2, 0.8], vec![1.0]);
        let c = analysis(vec![0.35, 0.65], vec![1.0]);
        let e = average_analyses(vec![a.clone(), b, c]).unwrap();
        // Members 1 and 2: (0.2 + 0.35) / 2 = 0.275, (0.8 + 0.65) / 2 = 0.725.
        let held_out = e.probabilities_of(&[1, 2]).unwrap();
        assert!((held_out[0] - 0.275).abs() < 1e-6 && (held_out[1] - 0.725).abs() < 1e-6);
        assert_eq!(e.probabilities_of(&[0]).unwrap(), vec![0.8, 0.2]);
        assert!(e.probabilities_of(&[]).is_none());
        assert!(e.probabilities_of(&[3]).is_none(), "no such member");
        assert!(
            a.probabilities_of(&[0]).is_none(),
            "a single model has no members' rows"
        );
        assert_eq!(
            held_out_vote(&e, &[1, 2], "a0013").unwrap(),
            "the 2 members that never saw a0013 say abnormal (72.5 %)"
        );
        assert_eq!(
            held_out_vote(&e, &[0], "actor02").unwrap(),
            "the member that never saw actor02 says normal (80.0 %)"
        );
        assert!(held_out_vote(&e, &[], "a0013").is_none());
    }

    #[test]
    fn argmax_takes_the_last_maximum_and_frames_are_centred() {
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[0.5, 0.5]), 1);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(frame_centres(3, 0.5), vec![0.25, 0.75, 1.25]);
    }
}
