//! Where S1, systole, S2 and diastole lie in a phonocardiogram, so that a heatmap can be read
//! against the heart cycle.
//!
//! The outline is that of Schmidt et al. (2010, Physiol. Meas. 31:513) and Springer et al.
//! (2016, IEEE TBME 63:822): the homomorphic envelope of the 25–400 Hz band at 50 frames per
//! second; the heart period and the systolic interval from the envelope's autocorrelation; and a
//! duration-constrained (hidden semi-Markov) Viterbi through S1 → systole → S2 → diastole with
//! Springer's duration statistics. Springer's emission model is a logistic regression trained on
//! hand-annotated records, and the kit has none, so here a frame's evidence is its envelope level
//! alone: loud in S1 and S2, quiet between. Which loud sound is S1 then follows from systole
//! being shorter than diastole, as it is at rest. Without annotations this segmentation has not
//! been scored against a cardiologist's; the tests check it on synthetic cycles of known timing.

use realfft::RealFftPlanner;
use realfft::num_complex::Complex;
use rustfft::FftPlanner;

/// Frames per second of the envelope and of the phases.
pub const FRAME_RATE_HZ: f64 = 50.0;
/// Heart periods searched, seconds (150 to 30 beats per minute).
const PERIOD_RANGE_S: (f64, f64) = (0.4, 2.0);
/// Shortest systolic interval searched (S1 onset to S2 onset), seconds.
const MIN_SYSTOLIC_INTERVAL_S: f64 = 0.2;
/// Longest systolic interval searched, seconds: S1 to S2 lasts about 0.3-0.45 s whatever the
/// rate, so a longer lag between loud sounds is not systole.
const MAX_SYSTOLIC_INTERVAL_S: f64 = 0.5;
/// Band whose envelope carries S1 and S2, Hz.
const BAND_HZ: (f64, f64) = (25.0, 400.0);
/// Lowest sample rate segmented (the band then stops at its Nyquist frequency).
const MIN_RATE_HZ: f64 = 200.0;
/// Floor added to the band's envelope before the log, relative to its 95th percentile.
const ENVELOPE_FLOOR: f64 = 0.1;
/// How high, relative to the best peak, a peak near a half, third or quarter of its lag must be
/// to be taken as the period instead.
const SUBMULTIPLE_FRACTION: f64 = 0.8;
/// Least autocorrelation of the envelope at one period for the rhythm to count as found.
pub const MIN_REGULARITY: f64 = 0.1;
/// Regularity below which the summary asks the user to check the markers: 46 of the kit's 399
/// segmented records fall below it.
const WEAK_REGULARITY: f64 = 0.3;
/// Rates outside which the summary asks the user to check the markers, beats per minute.
const USUAL_RATE_BPM: (f64, f64) = (40.0, 140.0);
/// Shortest recording segmented, seconds (at least two periods at 30 beats per minute).
pub const MIN_DURATION_S: f64 = 4.0;

/// One of the four phases of the heart cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum CyclePhase {
    S1,
    Systole,
    S2,
    Diastole,
}

impl CyclePhase {
    pub const ALL: [CyclePhase; 4] = [Self::S1, Self::Systole, Self::S2, Self::Diastole];

    pub fn label(self) -> &'static str {
        match self {
            Self::S1 => "S1",
            Self::Systole => "systole",
            Self::S2 => "S2",
            Self::Diastole => "diastole",
        }
    }

    /// 0 for S1 up to 3 for diastole.
    pub fn index(self) -> usize {
        self as usize
    }

    fn next(self) -> Self {
        Self::ALL[(self.index() + 1) % 4]
    }

    fn previous(self) -> Self {
        Self::ALL[(self.index() + 3) % 4]
    }
}

/// The segmentation of one recording.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HeartCycles {
    pub heart_rate_bpm: f64,
    /// S1 onset to S2 onset, seconds.
    pub systolic_interval_s: f64,
    /// The envelope's autocorrelation at one heart period (1: every beat alike).
    pub regularity: f64,
    /// Seconds per entry of `phases`.
    pub frame_s: f64,
    /// Phase of each frame from t = 0; the last frame may extend past the recording's end.
    pub phases: Vec<CyclePhase>,
}

/// One segment of the path: a phase from `start_s` to `end_s`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PhaseSpan {
    pub phase: CyclePhase,
    pub start_s: f64,
    pub end_s: f64,
}

impl HeartCycles {
    /// The phase at `t_s` seconds, None outside the recording.
    pub fn phase_at(&self, t_s: f64) -> Option<CyclePhase> {
        if t_s < 0.0 {
            return None;
        }
        self.phases.get((t_s / self.frame_s) as usize).copied()
    }

    /// Consecutive frames of one phase, in time order.
    pub fn spans(&self) -> Vec<PhaseSpan> {
        let mut out: Vec<PhaseSpan> = Vec::new();
        for (i, &phase) in self.phases.iter().enumerate() {
            let (start_s, end_s) = (i as f64 * self.frame_s, (i + 1) as f64 * self.frame_s);
            match out.last_mut() {
                Some(last) if last.phase == phase => last.end_s = end_s,
                _ => out.push(PhaseSpan {
                    phase,
                    start_s,
                    end_s,
                }),
            }
        }
        out
    }

    /// The S1 and S2 spans.
    pub fn sounds(&self) -> Vec<PhaseSpan> {
        self.spans()
            .into_iter()
            .filter(|s| matches!(s.phase, CyclePhase::S1 | CyclePhase::S2))
            .collect()
    }

    /// One line, e.g. "72 bpm, systolic interval 0.31 s, 24 S1 found, regularity 0.62", with
    /// a caution when the rhythm is weak.
    pub fn summary(&self) -> String {
        let beats = self.spans().iter().filter(|s| s.phase == CyclePhase::S1).count();
        let caution = if self.regularity < WEAK_REGULARITY {
            " (weak rhythm: check the S1/S2 markers)"
        } else if !(USUAL_RATE_BPM.0..=USUAL_RATE_BPM.1).contains(&self.heart_rate_bpm) {
            " (unusual rate, perhaps a doubled or halved period: check the S1/S2 markers)"
        } else {
            ""
        };
        format!(
            "{:.0} bpm, systolic interval {:.2} s, {beats} S1 found, regularity {:.2}{caution}",
            self.heart_rate_bpm, self.systolic_interval_s, self.regularity
        )
    }
}

/// Segments a phonocardiogram at `sample_rate` Hz. Errors (one line, no file name) when the
/// recording is too short or no regular rhythm shows in its envelope.
pub fn segment_heart_cycles(samples: &[f32], sample_rate: u32) -> Result<HeartCycles, String> {
    let rate = sample_rate as f64;
    let duration = samples.len() as f64 / rate.max(1.0);
    if duration < MIN_DURATION_S {
        return Err(format!(
            "too short to find heart cycles ({duration:.1} s; at least {MIN_DURATION_S} s)"
        ));
    }
    if rate < MIN_RATE_HZ {
        return Err(format!(
            "sample rate {sample_rate} Hz is too low to find heart sounds"
        ));
    }
    let level = standardised_envelope(samples, rate);
    let autocorrelation = autocorrelation(&level, seconds_to_frames(PERIOD_RANGE_S.1) + 1);
    let period = heart_period(&autocorrelation).ok_or_else(|| {
        format!(
            "no heart rhythm in the 25-400 Hz envelope (its autocorrelation has no peak between {} and {} s)",
            PERIOD_RANGE_S.0, PERIOD_RANGE_S.1
        )
    })?;
    let regularity = autocorrelation[period];
    if regularity.is_nan() || regularity < MIN_REGULARITY {
        return Err(format!(
            "no regular heart rhythm in the 25-400 Hz envelope (autocorrelation {regularity:.2} at the best period, below {MIN_REGULARITY})"
        ));
    }
    let systole_hi = (period / 2)
        .min(seconds_to_frames(MAX_SYSTOLIC_INTERVAL_S))
        .max(seconds_to_frames(MIN_SYSTOLIC_INTERVAL_S));
    let systole_lo = seconds_to_frames(MIN_SYSTOLIC_INTERVAL_S);
    let systolic = highest_peak_in(&autocorrelation, systole_lo, systole_hi)
        .unwrap_or_else(|| argmax_in(&autocorrelation, systole_lo, systole_hi));
    let period_s = period as f64 / FRAME_RATE_HZ;
    let systolic_s = systolic as f64 / FRAME_RATE_HZ;
    let durations = Durations::springer(period_s, systolic_s);
    let phases = viterbi(&level, &durations);
    Ok(HeartCycles {
        heart_rate_bpm: 60.0 / period_s,
        systolic_interval_s: systolic_s,
        regularity,
        frame_s: 1.0 / FRAME_RATE_HZ,
        phases,
    })
}

/// The lag, in frames, of the autocorrelation's highest peak within [`PERIOD_RANGE_S`], or of
/// the peak near a half, third or quarter of it (the shortest such) when that one is nearly as
/// high: beats that alternate in loudness, or noise, can lift two or three periods above one.
fn heart_period(autocorrelation: &[f64]) -> Option<usize> {
    let lo = seconds_to_frames(PERIOD_RANGE_S.0);
    let best = highest_peak_in(autocorrelation, lo, autocorrelation.len() - 1)?;
    for k in [4.0, 3.0, 2.0] {
        let centre = best as f64 / k;
        let (a, b) = ((centre * 0.94).floor() as usize, (centre * 1.06).ceil() as usize);
        if a < lo {
            continue;
        }
        if let Some(candidate) = highest_peak_in(autocorrelation, a, b)
            && autocorrelation[candidate] >= SUBMULTIPLE_FRACTION * autocorrelation[best]
        {
            return Some(candidate);
        }
    }
    Some(best)
}

/// The highest local maximum of `values` within `lo..=hi` (a value above its left neighbour and
/// not below its right one), None if there is none. The autocorrelation falls from lag 0 and a
/// slow swell of the envelope can keep it falling through the whole range: its largest value
/// there is then the range's edge, not a period.
fn highest_peak_in(values: &[f64], lo: usize, hi: usize) -> Option<usize> {
    (lo.max(1)..=hi.min(values.len().saturating_sub(2)))
        .filter(|&l| values[l] > values[l - 1] && values[l] >= values[l + 1])
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
}

fn seconds_to_frames(s: f64) -> usize {
    (s * FRAME_RATE_HZ).round() as usize
}

/// Index of the largest value in `values[lo..=hi]` (clamped to the slice).
fn argmax_in(values: &[f64], lo: usize, hi: usize) -> usize {
    let hi = hi.min(values.len() - 1);
    let lo = lo.min(hi);
    (lo..=hi)
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(lo)
}

/// The homomorphic envelope of the 25–400 Hz band, one value per 20 ms frame, as a robust
/// z-score: `(log envelope - median) / (1.4826 * MAD)`. In the log domain a clipped knock or a
/// rubbed stethoscope does not swamp the scale the way it would in amplitude.
fn standardised_envelope(samples: &[f32], rate: f64) -> Vec<f64> {
    let analytic_magnitude = band_analytic_magnitude(samples, rate);
    let per_frame = (rate / FRAME_RATE_HZ).round().max(1.0) as usize;
    let frames = samples.len().div_ceil(per_frame);
    // The floor keeps stretches where the stethoscope lost contact (near-silence, whose log
    // plunges) from outweighing the beats in the envelope's variance.
    let floor = ENVELOPE_FLOOR * quantile(analytic_magnitude.clone(), 0.95) + f64::MIN_POSITIVE;
    // The mean of the log over a 20 ms frame, then a 3-frame moving average: together a
    // low-pass whose first null is near 17 Hz, close to the 8 Hz low-pass of the homomorphic
    // envelope and fine enough for sounds of 90-120 ms.
    let log_frames: Vec<f64> = (0..frames)
        .map(|f| {
            let chunk = &analytic_magnitude[f * per_frame..((f + 1) * per_frame).min(samples.len())];
            chunk.iter().map(|&v| (v + floor).ln()).sum::<f64>() / chunk.len() as f64
        })
        .collect();
    let smoothed: Vec<f64> = (0..frames)
        .map(|f| {
            let (a, b) = (f.saturating_sub(1), (f + 2).min(frames));
            log_frames[a..b].iter().sum::<f64>() / (b - a) as f64
        })
        .collect();
    let median = quantile(smoothed.clone(), 0.5);
    let deviations: Vec<f64> = smoothed.iter().map(|v| (v - median).abs()).collect();
    let scale = 1.4826 * quantile(deviations, 0.5) + 1e-9;
    smoothed.iter().map(|v| (v - median) / scale).collect()
}

/// The value at rank `round((n - 1) q)` of `values` (for `q = 0.5`, rank `n / 2`: the median).
fn quantile(mut values: Vec<f64>, q: f64) -> f64 {
    let k = ((values.len() - 1) as f64 * q).round() as usize;
    let (_, x, _) = values.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    *x
}

/// `|analytic signal|` of `samples` band-passed to [`BAND_HZ`]: one real FFT, the band's
/// positive frequencies doubled, one complex inverse FFT.
fn band_analytic_magnitude(samples: &[f32], rate: f64) -> Vec<f64> {
    let n = samples.len().next_power_of_two();
    let mut input: Vec<f32> = samples.to_vec();
    let mean = input.iter().map(|&v| v as f64).sum::<f64>() / input.len() as f64;
    input.iter_mut().for_each(|v| *v -= mean as f32);
    input.resize(n, 0.0);
    let forward = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let mut spectrum = forward.make_output_vec();
    forward
        .process(&mut input, &mut spectrum)
        .expect("buffer sizes come from the plan");
    let (lo, hi) = (
        (BAND_HZ.0 * n as f64 / rate).ceil() as usize,
        ((BAND_HZ.1.min(rate / 2.0)) * n as f64 / rate).floor() as usize,
    );
    let mut analytic = vec![Complex::new(0f32, 0f32); n];
    for k in lo..=hi.min(n / 2) {
        analytic[k] = spectrum[k] * 2.0;
    }
    FftPlanner::<f32>::new()
        .plan_fft_inverse(n)
        .process(&mut analytic);
    analytic[..samples.len()]
        .iter()
        .map(|c| c.norm() as f64 / n as f64)
        .collect()
}

/// Autocorrelation of `x` (its mean removed) at lags `0..lags`, each lag's sum divided by its
/// number of terms and then by lag 0's, so that a steady rhythm scores alike at one and at two
/// periods.
fn autocorrelation(x: &[f64], lags: usize) -> Vec<f64> {
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let c: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let n = c.len();
    let raw: Vec<f64> = (0..lags.min(n))
        .map(|l| c[..n - l].iter().zip(&c[l..]).map(|(a, b)| a * b).sum::<f64>() / (n - l) as f64)
        .collect();
    let zero = raw[0].max(1e-12);
    let mut out: Vec<f64> = raw.iter().map(|v| v / zero).collect();
    out.resize(lags, f64::NEG_INFINITY);
    out
}

/// Each phase's duration distribution in frames: a discretised Gaussian on `[min, max]`.
#[derive(Clone, Debug)]
struct Durations {
    /// `log_p[phase][d - 1]` for `d` in `1..=max[phase]` (−inf below `min`).
    log_p: [Vec<f64>; 4],
}

impl Durations {
    /// Springer et al. (2016), from a heart period and a systolic interval in seconds: S1
    /// 122 ± 22 ms, S2 94 ± 22 ms, systole the systolic interval less S1 (± 25 ms), diastole the
    /// rest of the period (± 7 % + 6 ms); each allowed within 3 standard deviations (systole's
    /// with S1's added).
    fn springer(period_s: f64, systolic_s: f64) -> Self {
        let (s1, s2) = ((0.122, 0.022), (0.094, 0.022));
        let systole = ((systolic_s - s1.0).max(0.04), 0.025);
        let diastole_mean = (period_s - systolic_s - s2.0).max(0.06);
        let diastole = (diastole_mean, 0.07 * diastole_mean + 0.006);
        let params = [
            (s1.0, s1.1, s1.1),
            (systole.0, systole.1, systole.1 + s1.1),
            (s2.0, s2.1, s2.1),
            (diastole.0, diastole.1, diastole.1),
        ];
        let log_p = params.map(|(mean, sd, reach)| {
            let (mean, sd, reach) = (mean * FRAME_RATE_HZ, sd * FRAME_RATE_HZ, reach * FRAME_RATE_HZ);
            let min = (mean - 3.0 * reach).floor().max(1.0) as usize;
            let max = ((mean + 3.0 * reach).ceil() as usize).max(min);
            let weights: Vec<f64> = (1..=max)
                .map(|d| {
                    if d < min {
                        0.0
                    } else {
                        (-0.5 * ((d as f64 - mean) / sd).powi(2)).exp()
                    }
                })
                .collect();
            let total: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
            weights.iter().map(|w| (w / total).ln()).collect()
        });
        Self { log_p }
    }

    fn max(&self, phase: CyclePhase) -> usize {
        self.log_p[phase.index()].len()
    }
}

/// Log-probability that a frame at standardised level `z` is loud (S1, S2) or quiet (systole,
/// diastole): a logistic in `z` centred half a robust standard deviation above the median (S1
/// and S2 fill about a quarter of the cycle).
fn log_emission(z: f64, phase: CyclePhase) -> f64 {
    let loud = 1.0 / (1.0 + (-2.0 * (z - 0.5)).exp());
    let p = match phase {
        CyclePhase::S1 | CyclePhase::S2 => loud,
        CyclePhase::Systole | CyclePhase::Diastole => 1.0 - loud,
    };
    p.clamp(1e-3, 1.0 - 1e-3).ln()
}

/// The most probable phase of every frame: a semi-Markov Viterbi through the cycle
/// S1 → systole → S2 → diastole → S1 with the durations of `durations`. The first and the last
/// segment may be cut short by the recording's edges, so their durations cost nothing beyond
/// their maximum.
fn viterbi(level: &[f64], durations: &Durations) -> Vec<CyclePhase> {
    let n = level.len();
    // cumulative[j][t] = sum of phase j's log-emissions over frames 0..t.
    let cumulative: Vec<Vec<f64>> = CyclePhase::ALL
        .iter()
        .map(|&phase| {
            let mut c = Vec::with_capacity(n + 1);
            c.push(0.0);
            for &z in level {
                c.push(c.last().copied().unwrap_or(0.0) + log_emission(z, phase));
            }
            c
        })
        .collect();
    let emission = |j: usize, start: usize, end: usize| cumulative[j][end] - cumulative[j][start];
    // best[t][j]: the best path whose segment of phase j ends at frame t; back[t][j] its
    // duration.
    let mut best = vec![[f64::NEG_INFINITY; 4]; n];
    let mut back = vec![[0usize; 4]; n];
    let start_cost = -(4f64.ln());
    for t in 0..n {
        let last = t + 1 == n;
        for phase in CyclePhase::ALL {
            let j = phase.index();
            let previous = phase.previous().index();
            let max = durations.max(phase);
            for d in 1..=max.min(t + 1) {
                let start = t + 1 - d;
                let score = if start == 0 {
                    start_cost
                } else {
                    let before = best[start - 1][previous];
                    if before == f64::NEG_INFINITY {
                        continue;
                    }
                    let duration = if last { 0.0 } else { durations.log_p[j][d - 1] };
                    before + duration
                } + emission(j, start, t + 1);
                if score > best[t][j] {
                    best[t][j] = score;
                    back[t][j] = d;
                }
            }
        }
    }
    let mut phase = CyclePhase::ALL
        .into_iter()
        .max_by(|a, b| best[n - 1][a.index()].total_cmp(&best[n - 1][b.index()]))
        .expect("four phases");
    let mut phases = vec![CyclePhase::S1; n];
    let mut end = n;
    while end > 0 {
        let d = back[end - 1][phase.index()].max(1);
        phases[end - d..end].fill(phase);
        end -= d;
        phase = phase.previous();
    }
    debug_assert!(phases.windows(2).all(|w| w[0] == w[1] || w[0].next() == w[1]));
    phases
}

/// Shares of time and of a heatmap's weight in each phase.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PhaseShare {
    pub phase: CyclePhase,
    /// Fraction of the frames (with a phase) that fall in this phase.
    pub time_share: f64,
    /// Fraction of the heatmap's total weight on those frames.
    pub weight_share: f64,
}

/// A heatmap folded over the beats: its mean over every whole S1, systole, S2 and diastole,
/// each phase cut into bins of equal fractions of its length and laid out on the recording's
/// mean phase durations, so the profile reads as one average beat in seconds from S1's onset.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CycleProfile {
    /// Onset of S1, systole, S2 and diastole and the end of diastole in the average beat,
    /// seconds.
    pub phase_bounds_s: [f64; 5],
    /// `(seconds from S1 onset at the bin's centre, mean weight / mean weight over the beats)`;
    /// a bin no frame fell in is left out.
    pub points: Vec<(f64, f64)>,
    /// Whole S1s averaged (phases cut by the recording's edges are left out).
    pub beats: usize,
}

/// Bins per phase of a [`CycleProfile`]: roughly proportional to the phases' usual lengths.
pub const PROFILE_BINS: [usize; 4] = [6, 10, 5, 20];

/// Folds `values` (weights on frames centred at `times_s`) over the beats of `cycles`; None
/// when no whole cycle holds a frame with weight.
pub fn cycle_profile(cycles: &HeartCycles, values: &[f32], times_s: &[f64]) -> Option<CycleProfile> {
    let spans = cycles.spans();
    let whole = spans.get(1..spans.len().saturating_sub(1))?;
    let offsets: Vec<usize> = PROFILE_BINS
        .iter()
        .scan(0, |acc, &n| {
            let start = *acc;
            *acc += n;
            Some(start)
        })
        .collect();
    let bins = PROFILE_BINS.iter().sum::<usize>();
    let (mut sum, mut count) = (vec![0f64; bins], vec![0usize; bins]);
    let (mut duration, mut spans_of) = ([0f64; 4], [0usize; 4]);
    let mut frame = 0;
    for span in whole {
        let p = span.phase.index();
        duration[p] += span.end_s - span.start_s;
        spans_of[p] += 1;
        while frame < times_s.len() && times_s[frame] < span.start_s {
            frame += 1;
        }
        while frame < times_s.len() && times_s[frame] < span.end_s {
            let position = (times_s[frame] - span.start_s) / (span.end_s - span.start_s);
            // Frame centres often fall exactly on a bin's edge (both grids are in 20 ms steps):
            // the nudge keeps rounding from dropping them into the bin before.
            let k = (position * PROFILE_BINS[p] as f64 + 1e-9) as usize;
            let bin = offsets[p] + k.min(PROFILE_BINS[p] - 1);
            sum[bin] += values[frame].max(0.0) as f64;
            count[bin] += 1;
            frame += 1;
        }
    }
    let frames: usize = count.iter().sum();
    let total: f64 = sum.iter().sum();
    if frames == 0 || total <= 0.0 || spans_of.contains(&0) {
        return None;
    }
    let mean = total / frames as f64;
    let mean_duration: [f64; 4] = std::array::from_fn(|p| duration[p] / spans_of[p] as f64);
    let mut phase_bounds_s = [0f64; 5];
    for p in 0..4 {
        phase_bounds_s[p + 1] = phase_bounds_s[p] + mean_duration[p];
    }
    let points = (0..4)
        .flat_map(|p| (0..PROFILE_BINS[p]).map(move |k| (p, k)))
        .filter(|&(p, k)| count[offsets[p] + k] > 0)
        .map(|(p, k)| {
            let bin = offsets[p] + k;
            let x = phase_bounds_s[p] + (k as f64 + 0.5) / PROFILE_BINS[p] as f64 * mean_duration[p];
            (x, sum[bin] / count[bin] as f64 / mean)
        })
        .collect();
    Some(CycleProfile {
        phase_bounds_s,
        points,
        beats: spans_of[CyclePhase::S1.index()],
    })
}

/// How `values` (non-negative weights on frames centred at `times_s`) divide among the phases,
/// next to how the frames themselves do. Frames outside the segmentation are left out. Shares
/// are 0 when no frame has weight.
pub fn shares_by_phase(cycles: &HeartCycles, values: &[f32], times_s: &[f64]) -> [PhaseShare; 4] {
    let mut frames = [0usize; 4];
    let mut weight = [0f64; 4];
    for (&v, &t) in values.iter().zip(times_s) {
        if let Some(phase) = cycles.phase_at(t) {
            frames[phase.index()] += 1;
            weight[phase.index()] += v.max(0.0) as f64;
        }
    }
    let total_frames = frames.iter().sum::<usize>().max(1) as f64;
    let total_weight = weight.iter().sum::<f64>();
    CyclePhase::ALL.map(|phase| PhaseShare {
        phase,
        time_share: frames[phase.index()] as f64 / total_frames,
        weight_share: if total_weight > 0.0 {
            weight[phase.index()] / total_weight
        } else {
            0.0
        },
    })
}

/// e.g. "S1 31 % (of the time 14 %), systole 22 % (24 %), S2 20 % (11 %), diastole 27 % (51 %)".
pub fn shares_summary(shares: &[PhaseShare; 4]) -> String {
    shares
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let of = if i == 0 { "of the time " } else { "" };
            format!(
                "{} {:.0} % ({of}{:.0} %)",
                s.phase.label(),
                100.0 * s.weight_share,
                100.0 * s.time_share
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The segmentation and the attention's shares as JSON: `{heart_rate_bpm, systolic_interval_s,
/// regularity, attention_by_phase: [{phase, time_share, weight_share}], attention_over_beat:
/// CycleProfile or null, sounds: [{phase, start_s, end_s}]}`, or `{error}`.
pub fn cycles_json(cycles: Result<&HeartCycles, &str>, values: &[f32], times_s: &[f64]) -> serde_json::Value {
    match cycles {
        Ok(c) => serde_json::json!({
            "heart_rate_bpm": c.heart_rate_bpm,
            "systolic_interval_s": c.systolic_interval_s,
            "regularity": c.regularity,
            "attention_by_phase": shares_by_phase(c, values, times_s),
            "attention_over_beat": cycle_profile(c, values, times_s),
            "sounds": c.sounds(),
        }),
        Err(e) => serde_json::json!({ "error": e }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A synthetic phonocardiogram at 1 kHz: S1 (60 Hz, 120 ms) every `period_s` from 0.1 s,
    /// S2 (90 Hz, 90 ms) `systolic_s` after each S1 onset, Hann-shaped, over white noise
    /// 34 dB below S1.
    pub(crate) fn synthetic_pcg(
        seconds: f64,
        period_s: f64,
        systolic_s: f64,
        s1_amp: f32,
        s2_amp: f32,
    ) -> Vec<f32> {
        let rate = 1000.0;
        let n = (seconds * rate) as usize;
        let mut state = 12345u64;
        let mut x: Vec<f32> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.04
            })
            .collect();
        let mut burst = |onset_s: f64, len_s: f64, hz: f64, amp: f32| {
            let (a, len) = ((onset_s * rate) as usize, (len_s * rate) as usize);
            for k in 0..len {
                if let Some(v) = x.get_mut(a + k) {
                    let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / len as f64).cos();
                    *v += amp * (w * (2.0 * std::f64::consts::PI * hz * k as f64 / rate).sin()) as f32;
                }
            }
        };
        let mut onset = 0.1;
        while onset < seconds {
            burst(onset, 0.12, 60.0, s1_amp);
            burst(onset + systolic_s, 0.09, 90.0, s2_amp);
            onset += period_s;
        }
        x
    }

    /// Checks phases at the middle of every whole sound and interval of the synthetic record.
    fn check_phases(c: &HeartCycles, seconds: f64, period_s: f64, systolic_s: f64) {
        let mut onset = 0.1;
        let mut checked = 0;
        while onset + period_s < seconds {
            let expected = [
                (onset + 0.06, CyclePhase::S1),
                (onset + (0.12 + systolic_s) / 2.0, CyclePhase::Systole),
                (onset + systolic_s + 0.045, CyclePhase::S2),
                (onset + (systolic_s + 0.09 + period_s) / 2.0, CyclePhase::Diastole),
            ];
            for (t, phase) in expected {
                assert_eq!(c.phase_at(t), Some(phase), "at {t:.3} s");
                checked += 1;
            }
            onset += period_s;
        }
        assert!(checked >= 4 * 10);
    }

    #[test]
    fn finds_rate_systole_and_every_phase_of_a_synthetic_record() {
        let x = synthetic_pcg(12.0, 60.0 / 72.0, 0.32, 1.0, 0.7);
        let c = segment_heart_cycles(&x, 1000).unwrap();
        // The period is found on the 20 ms frame grid: 0.82 or 0.84 s.
        assert!((c.heart_rate_bpm - 72.0).abs() < 1.5, "{}", c.heart_rate_bpm);
        assert!(
            (c.systolic_interval_s - 0.32).abs() <= 0.021,
            "{}",
            c.systolic_interval_s
        );
        assert!(c.regularity > 0.5, "{}", c.regularity);
        check_phases(&c, 12.0, 60.0 / 72.0, 0.32);
        assert_eq!(c.phases.len(), 600);
    }

    #[test]
    fn s1_is_told_from_s2_by_timing_even_when_s2_is_louder() {
        // 60 bpm, systole 0.3 s of a 1 s period: S2 twice as loud as S1.
        let x = synthetic_pcg(15.0, 1.0, 0.3, 0.5, 1.0);
        let c = segment_heart_cycles(&x, 1000).unwrap();
        assert!((c.heart_rate_bpm - 60.0).abs() < 1.0, "{}", c.heart_rate_bpm);
        check_phases(&c, 15.0, 1.0, 0.3);
        let s1 = c
            .spans()
            .into_iter()
            .filter(|s| s.phase == CyclePhase::S1)
            .count();
        assert!((14..=16).contains(&s1), "{s1}");
    }

    #[test]
    fn beats_alternating_in_loudness_give_one_period_not_two() {
        // 75 bpm; every other beat at 40 % of the others' amplitude, so the envelope repeats
        // exactly only every two beats.
        let (period, seconds) = (0.8, 16.0);
        let loud = synthetic_pcg(seconds, 2.0 * period, 0.3, 1.0, 0.7);
        let soft = synthetic_pcg(seconds, 2.0 * period, 0.3, 0.4, 0.28);
        let shift = (period * 1000.0) as usize;
        let x: Vec<f32> = (0..loud.len())
            .map(|i| loud[i] + if i >= shift { soft[i - shift] } else { 0.0 })
            .collect();
        let autocorrelation = autocorrelation(&standardised_envelope(&x, 1000.0), 101);
        assert!(
            autocorrelation[80] > autocorrelation[40],
            "two periods score higher"
        );
        let c = segment_heart_cycles(&x, 1000).unwrap();
        assert!((c.heart_rate_bpm - 75.0).abs() < 1.0, "{}", c.heart_rate_bpm);
        check_phases(&c, seconds, period, 0.3);
    }

    #[test]
    fn noise_and_short_records_are_refused_with_a_reason() {
        let mut state = 7u64;
        let noise: Vec<f32> = (0..20_000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let e = segment_heart_cycles(&noise, 1000).unwrap_err();
        assert!(e.starts_with("no regular heart rhythm"), "{e}");
        let e = segment_heart_cycles(&noise[..3000], 1000).unwrap_err();
        assert!(e.starts_with("too short"), "{e}");
    }

    #[test]
    fn duration_distributions_are_normalised_and_peak_at_their_means() {
        // Period 0.8 s, systolic interval 0.3 s: systole 0.178 s, diastole 0.406 s.
        let d = Durations::springer(0.8, 0.3);
        for (phase, mean_s) in CyclePhase::ALL.into_iter().zip([0.122, 0.178, 0.094, 0.406]) {
            let p = &d.log_p[phase.index()];
            let total: f64 = p.iter().map(|l| l.exp()).sum();
            assert!((total - 1.0).abs() < 1e-9, "{phase:?}");
            let mode = 1 + argmax_in(p, 0, p.len() - 1);
            assert_eq!(mode, (mean_s * FRAME_RATE_HZ).round() as usize, "{phase:?}");
        }
        // S1: 6.1 ± 3 x 1.1 frames, i.e. 2.8..9.4 -> 2..=10 (floor and ceiling).
        assert_eq!(d.max(CyclePhase::S1), 10);
        assert_eq!(d.log_p[0][0], f64::NEG_INFINITY);
        assert!(d.log_p[0][1].is_finite());
    }

    #[test]
    fn the_profile_averages_each_bin_over_the_whole_beats() {
        use CyclePhase::*;
        // 20 ms frames; two whole beats between a cut-off diastole and a cut-off S1:
        // S1 3 frames, systole 5, S2 2, diastole 10 in the first; 3, 5, 2, 8 in the second.
        let mut phases = vec![Diastole; 4];
        for (s1, sys, s2, dia) in [(3, 5, 2, 10), (3, 5, 2, 8)] {
            phases.extend(
                [
                    vec![S1; s1],
                    vec![Systole; sys],
                    vec![S2; s2],
                    vec![Diastole; dia],
                ]
                .concat(),
            );
        }
        phases.extend(vec![S1; 2]);
        let c = HeartCycles {
            heart_rate_bpm: 60.0,
            systolic_interval_s: 0.16,
            regularity: 1.0,
            frame_s: 0.02,
            phases,
        };
        // Weight 3 on S1 frames, 1 elsewhere; frames centred on the phase frames.
        let times: Vec<f64> = (0..c.phases.len()).map(|i| (i as f64 + 0.5) * 0.02).collect();
        let values: Vec<f32> = c
            .phases
            .iter()
            .map(|&p| if p == S1 { 3.0 } else { 1.0 })
            .collect();
        let profile = cycle_profile(&c, &values, &times).unwrap();
        assert_eq!(profile.beats, 2);
        // Mean phase durations 0.06, 0.10, 0.04, 0.18 s.
        let expected = [0.0, 0.06, 0.16, 0.20, 0.38];
        for (b, e) in profile.phase_bounds_s.iter().zip(expected) {
            assert!((b - e).abs() < 1e-12, "{:?}", profile.phase_bounds_s);
        }
        // The whole beats hold 38 frames, 6 of them S1 (weight 3): mean weight 50 / 38.
        let mean = 50.0 / 38.0;
        let s1: Vec<f64> = profile
            .points
            .iter()
            .filter(|p| p.0 < 0.06)
            .map(|p| p.1)
            .collect();
        assert_eq!(
            s1.len(),
            3,
            "3-frame S1s fill bins 1, 3 and 5 of 6: {:?}",
            profile.points
        );
        assert!(s1.iter().all(|v| (v - 3.0 / mean).abs() < 1e-12), "{s1:?}");
        let rest = profile.points.iter().filter(|p| p.0 > 0.06);
        assert!(rest.clone().all(|p| (p.1 - 1.0 / mean).abs() < 1e-12));
        assert!(rest.clone().any(|p| p.0 > 0.37) && profile.points.iter().all(|p| p.0 < 0.38));
    }

    #[test]
    fn shares_count_frames_and_weight_per_phase() {
        use CyclePhase::*;
        let c = HeartCycles {
            heart_rate_bpm: 60.0,
            systolic_interval_s: 0.3,
            regularity: 1.0,
            frame_s: 0.1,
            phases: vec![S1, Systole, Systole, S2, Diastole, Diastole, Diastole, Diastole],
        };
        // Frames centred at 0.05, 0.15, ... 0.85: the last is past the segmentation.
        let times: Vec<f64> = (0..9).map(|i| 0.05 + 0.1 * i as f64).collect();
        let values = [4.0, 1.0, 1.0, 2.0, 0.5, 0.5, 0.5, 0.5, 100.0];
        let shares = shares_by_phase(&c, &values, &times);
        let expected = [
            (1.0 / 8.0, 0.4),
            (2.0 / 8.0, 0.2),
            (1.0 / 8.0, 0.2),
            (4.0 / 8.0, 0.2),
        ];
        for (s, (time, weight)) in shares.iter().zip(expected) {
            assert!((s.time_share - time).abs() < 1e-12, "{s:?}");
            assert!((s.weight_share - weight).abs() < 1e-12, "{s:?}");
        }
        assert_eq!(c.spans().len(), 4);
        assert_eq!(
            c.sounds().iter().map(|s| s.phase).collect::<Vec<_>>(),
            vec![S1, S2]
        );
        assert!((c.spans()[3].end_s - 0.8).abs() < 1e-12);
    }
}
