//! Model configurations, saved verbatim in every checkpoint's model card.

use serde::{Deserialize, Serialize};

/// One FIR band-pass block (see `../shared/design/model.md` §1–2).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FirBlockConfig {
    /// Number of band-pass filters `H`.
    pub filters: usize,
    /// Input channels the filters read (1 for the waveform; the previous block's filters after).
    pub in_channels: usize,
    /// Kernel length `K` (odd).
    pub taps: usize,
    /// Average-pool window and stride `s`.
    pub stride: usize,
    /// Generalized-cosine window terms `P`.
    pub window_terms: usize,
    /// Multi-resolution mel groups `R` for the initial bands.
    pub mel_groups: usize,
    /// Learn `f_low` and bandwidth (false: fixed mel bands, only the window learns).
    pub learn_bands: bool,
    /// One window shared by every filter of the block.
    pub shared_window: bool,
    /// Smallest bandwidth, cycles/sample; keeps every band open so gradients never vanish.
    pub min_bandwidth: f64,
}

/// What turns the waveform into a feature map `[batch, channels, frames]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FrontEndConfig {
    /// Learned FIR band-pass blocks (IConNet).
    Fir { blocks: Vec<FirBlockConfig> },
    /// Log-Mel spectrogram baseline.
    LogMel { n_fft: usize, hop: usize, n_mels: usize },
    /// MFCC baseline (DCT-II of the log-Mel spectrogram).
    Mfcc {
        n_fft: usize,
        hop: usize,
        n_mels: usize,
        n_mfcc: usize,
    },
}

/// Pooling over time.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PoolingKind {
    /// Mean over valid frames (the paper).
    Mean,
    /// Additive attention over valid frames; its weights are the heatmap.
    Attention,
}

impl std::str::FromStr for PoolingKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mean" => Ok(Self::Mean),
            "attention" => Ok(Self::Attention),
            other => Err(format!("unknown pooling '{other}' (expected mean or attention)")),
        }
    }
}

/// Temporal context between the front-end and pooling (see [`crate::model::context`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ContextConfig {
    /// Average-pool window and stride over the front-end frames.
    pub pool: usize,
    /// Channels of every context layer.
    pub channels: usize,
    /// Kernel length of the dilated convolutions (odd).
    pub kernel: usize,
    /// One residual layer per dilation.
    pub dilations: Vec<usize>,
}

impl ContextConfig {
    /// Pool by 4, 128 channels, kernel 3, dilations 1-2-4-8: 31 pooled frames of context
    /// (0.25 s at 8 kHz for M13, 1 s at 2 kHz).
    pub fn standard() -> Self {
        Self {
            pool: 4,
            channels: 128,
            kernel: 3,
            dilations: vec![1, 2, 4, 8],
        }
    }

    /// Receptive field of the context in pooled frames; one output frame sees this many.
    pub fn span(&self) -> usize {
        1 + self
            .dilations
            .iter()
            .map(|d| (self.kernel - 1) * d)
            .sum::<usize>()
    }
}

/// A whole model: front-end, pooling and the paper's head.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Architecture name (`m13`, `w456`, `logmel`, `mfcc`, `tiny`).
    pub arch: String,
    /// Rate the model runs at; inputs are resampled to it.
    pub sample_rate: u32,
    /// Class names, index = logit.
    pub classes: Vec<String>,
    pub front_end: FrontEndConfig,
    pub pooling: PoolingKind,
    /// Attention hidden size.
    pub attention_dim: usize,
    /// Head hidden sizes: LayerNorm -> Linear per entry.
    pub head_hidden: Vec<usize>,
    pub dropout: f64,
    /// Standardise every feature channel over the recording's valid frames before attention
    /// pooling (like cepstral mean/variance normalisation): the recording's average spectrum —
    /// mostly voice, microphone or stethoscope — is removed, what changes over time remains.
    /// Not used with mean pooling, whose output it would zero.
    #[serde(default)]
    pub normalize_features: bool,
    /// Attentive statistics pooling: the head also sees the attention-weighted standard
    /// deviation of every channel, `sqrt(sum_t a_t f_t^2 - mu^2)`, beside the weighted mean `mu`
    /// (how much a band varies where the model looks, e.g. pitch and loudness movement).
    /// The heatmap is the same single attention weighting. With mean pooling the weights are
    /// uniform over the valid (and, with `active_frames_db`, active) frames.
    #[serde(default)]
    pub pooling_std: bool,
    /// Temporal context layers before pooling (not in the paper); `None` pools the front-end
    /// frames directly, as the paper does.
    #[serde(default)]
    pub context: Option<ContextConfig>,
    /// `beta` of every FIR block's NLReLU, `ln(1 + beta max(0, x))`. The paper's 1 leaves the
    /// band envelopes of a unit-RMS input (mostly 0.001-0.3) almost uncompressed, since
    /// `ln(1 + x) ~ x` there; a large `beta` makes the features log energies over the top
    /// `20 log10(beta)` dB of each band, as a log-Mel spectrogram's are.
    #[serde(default = "paper_nlrelu_beta")]
    pub nlrelu_beta: f64,
    /// Pool only over frames whose level is within this many dB of the clip's loudest frame
    /// (see [`crate::model::activity`]): silence gets no attention weight and stays out of the
    /// pooled statistics. `None` pools over every frame (the paper, and heart sounds, whose
    /// quiet diastole can hold a murmur).
    #[serde(default)]
    pub active_frames_db: Option<f64>,
    /// Each FIR block's stacked features are taken relative to the frame: every band minus
    /// the mean of the block's bands in that frame, with that mean (the frame's level) as one
    /// more channel. The same information, but statistics pooling then measures how the
    /// spectrum's shape varies, not how loud the frames are.
    #[serde(default)]
    pub relative_bands: bool,
    /// Heart sounds: four more channels after the front-end, a one-hot of each frame's phase
    /// (S1, systole, S2, diastole) from the heart-cycle segmentation of its clip
    /// ([`crate::model::cycle_phases`]); zeros where no cycle is found.
    #[serde(default)]
    pub cycle_phases: bool,
}

fn paper_nlrelu_beta() -> f64 {
    1.0
}

/// Architectures [`ModelConfig::named`] knows.
pub const ARCHITECTURES: &[&str] = &["m13", "w456", "logmel", "mfcc", "tiny"];

impl ModelConfig {
    /// A named architecture for `classes` at `sample_rate` Hz.
    pub fn named(
        arch: &str,
        sample_rate: u32,
        classes: Vec<String>,
        pooling: PoolingKind,
    ) -> Result<Self, String> {
        let fir =
            |filters, in_channels, taps, stride, window_terms, mel_groups, learn_bands| FirBlockConfig {
                filters,
                in_channels,
                taps,
                stride,
                window_terms,
                mel_groups,
                learn_bands,
                shared_window: !learn_bands,
                min_bandwidth: 1.0 / taps as f64,
            };
        let (front_end, head_hidden) = match arch {
            "m13" => (
                FrontEndConfig::Fir {
                    blocks: vec![fir(128, 1, 511, 8, 2, 4, true), fir(32, 128, 127, 2, 9, 4, true)],
                },
                vec![256, 256],
            ),
            "w456" => (
                FrontEndConfig::Fir {
                    blocks: vec![fir(456, 1, 511, 16, 2, 1, false)],
                },
                vec![312, 312],
            ),
            "tiny" => (
                FrontEndConfig::Fir {
                    blocks: vec![fir(8, 1, 31, 4, 2, 2, true), fir(4, 8, 15, 2, 3, 2, true)],
                },
                vec![16],
            ),
            "logmel" => (
                FrontEndConfig::LogMel {
                    n_fft: 512,
                    hop: 128,
                    n_mels: 64,
                },
                vec![256, 256],
            ),
            "mfcc" => (
                FrontEndConfig::Mfcc {
                    n_fft: 512,
                    hop: 128,
                    n_mels: 64,
                    n_mfcc: 40,
                },
                vec![256, 256],
            ),
            other => {
                return Err(format!(
                    "unknown architecture '{other}' (expected one of {})",
                    ARCHITECTURES.join(", ")
                ));
            }
        };
        let config = Self {
            arch: arch.to_string(),
            sample_rate,
            classes,
            front_end,
            pooling,
            attention_dim: 64,
            head_hidden,
            dropout: 0.1,
            normalize_features: pooling == PoolingKind::Attention,
            pooling_std: false,
            context: None,
            nlrelu_beta: paper_nlrelu_beta(),
            active_frames_db: None,
            relative_bands: false,
            cycle_phases: false,
        };
        config.validate()?;
        Ok(config)
    }

    /// Sets the kernel length of each FIR block (and the narrowest bandwidth the kernel can
    /// resolve, `1/K` of the sample rate). The architectures were sized for 16 kHz speech,
    /// where 511 taps are 32 ms; at 2 kHz the same taps span 255 ms, longer than a heart sound.
    pub fn set_taps(&mut self, taps: &[usize]) -> Result<(), String> {
        for (block, &k) in self
            .fir_blocks_for("--taps", "kernel lengths", taps.len())?
            .iter_mut()
            .zip(taps)
        {
            block.taps = k;
            block.min_bandwidth = 1.0 / k as f64;
        }
        self.validate()
    }

    /// Sets the number of band-pass filters of each FIR block; each block after the first then
    /// reads the previous block's filters. Fewer, wider initial bands average over a voice's
    /// harmonics, which carry who is speaking more than what they feel.
    pub fn set_filters(&mut self, filters: &[usize]) -> Result<(), String> {
        let blocks = self.fir_blocks_for("--filters", "filter counts", filters.len())?;
        for (i, &h) in filters.iter().enumerate() {
            if h == 0 {
                return Err(format!("--filters: block {} needs at least one filter", i + 1));
            }
            blocks[i].filters = h;
            if let Some(next) = blocks.get_mut(i + 1) {
                next.in_channels = h;
            }
        }
        self.validate()
    }

    /// Keeps every FIR block's bands at their mel initialisation; only the windows (and what
    /// follows the front-end) learn. The ablation of the paper's central choice: with few
    /// speakers, bands free to move can follow the training voices.
    pub fn fix_bands(&mut self) -> Result<(), String> {
        self.fir_blocks("--fixed-bands")?
            .iter_mut()
            .for_each(|b| b.learn_bands = false);
        self.validate()
    }

    /// The FIR blocks, for `option`, which needs a FIR front-end.
    fn fir_blocks(&mut self, option: &str) -> Result<&mut Vec<FirBlockConfig>, String> {
        match &mut self.front_end {
            FrontEndConfig::Fir { blocks } => Ok(blocks),
            _ => Err(format!("{option} needs a FIR front-end, not {}", self.arch)),
        }
    }

    /// The FIR blocks, if there are exactly `given` of them, for an option that sets one value
    /// per block.
    fn fir_blocks_for(
        &mut self,
        option: &str,
        what: &str,
        given: usize,
    ) -> Result<&mut Vec<FirBlockConfig>, String> {
        let arch = self.arch.clone();
        let blocks = self.fir_blocks(option)?;
        if given != blocks.len() {
            return Err(format!(
                "{arch} has {} FIR blocks, got {given} {what}",
                blocks.len()
            ));
        }
        Ok(blocks)
    }

    /// Sets a log-Mel or MFCC front-end's frame in milliseconds: the FFT covers at least
    /// `window_ms` (the next power of two of samples) and frames advance by `hop_ms`. The
    /// defaults (512 and 128 samples) were sized for 16 kHz speech, where they are 32 and 8 ms;
    /// at 2 kHz they are 256 and 64 ms, coarser than a heart sound.
    pub fn set_spectral_frame_ms(&mut self, window_ms: f64, hop_ms: f64) -> Result<(), String> {
        let rate = self.sample_rate as f64;
        let samples = |ms: f64| (ms * rate / 1000.0).round() as usize;
        let (FrontEndConfig::LogMel { n_fft, hop, n_mels }
        | FrontEndConfig::Mfcc {
            n_fft, hop, n_mels, ..
        }) = &mut self.front_end
        else {
            return Err(format!(
                "--spectral-frame-ms needs the logmel or mfcc front-end, not {}",
                self.arch
            ));
        };
        *n_fft = samples(window_ms).max(16).next_power_of_two();
        *hop = samples(hop_ms).max(1);
        // A short FFT has too few bins for the default bands.
        *n_mels = (*n_mels).min(*n_fft / 4);
        if let FrontEndConfig::Mfcc { n_mfcc, n_mels, .. } = &mut self.front_end {
            *n_mfcc = (*n_mfcc).min(*n_mels);
        }
        self.validate()
    }

    /// Checks the invariants the model code relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.classes.len() < 2 {
            return Err(format!(
                "a classifier needs at least 2 classes, got {}",
                self.classes.len()
            ));
        }
        if self.normalize_features && self.pooling == PoolingKind::Mean {
            return Err("feature normalisation would zero mean-pooled features".into());
        }
        if let Some(c) = &self.context
            && (c.pool == 0 || c.channels == 0 || c.kernel % 2 == 0 || c.dilations.contains(&0))
        {
            return Err("context: need pool > 0, channels > 0, an odd kernel and dilations > 0".into());
        }
        if !(self.nlrelu_beta.is_finite() && self.nlrelu_beta > 0.0) {
            return Err(format!("NLReLU beta must be positive, got {}", self.nlrelu_beta));
        }
        if let Some(db) = self.active_frames_db
            && !(db.is_finite() && db > 0.0)
        {
            return Err(format!(
                "active-frame range must be a positive number of dB, got {db}"
            ));
        }
        if self.relative_bands && !matches!(self.front_end, FrontEndConfig::Fir { .. }) {
            return Err("relative bands need a FIR front-end".into());
        }
        if self.sample_rate < 100 {
            return Err(format!("sample rate {} Hz is too low", self.sample_rate));
        }
        match &self.front_end {
            FrontEndConfig::Fir { blocks } => {
                if blocks.is_empty() {
                    return Err("a FIR front-end needs at least one block".into());
                }
                for (i, b) in blocks.iter().enumerate() {
                    if b.taps % 2 == 0 || b.taps < 3 {
                        return Err(format!(
                            "block {i}: kernel length {} must be odd and >= 3",
                            b.taps
                        ));
                    }
                    if b.filters == 0 || b.stride == 0 || b.window_terms == 0 {
                        return Err(format!("block {i}: filters, stride and window terms must be > 0"));
                    }
                    let expected_in = if i == 0 { 1 } else { blocks[i - 1].filters };
                    if b.in_channels != expected_in {
                        return Err(format!(
                            "block {i}: reads {} channels but the previous stage gives {expected_in}",
                            b.in_channels
                        ));
                    }
                }
            }
            FrontEndConfig::LogMel { n_fft, hop, n_mels }
            | FrontEndConfig::Mfcc {
                n_fft, hop, n_mels, ..
            } => {
                if *n_fft < 16 || *hop == 0 || *n_mels == 0 || *n_mels > n_fft / 2 {
                    return Err(
                        "spectral front-end: need n_fft >= 16, hop > 0, 0 < n_mels <= n_fft/2".into(),
                    );
                }
                if let FrontEndConfig::Mfcc { n_mfcc, .. } = &self.front_end
                    && (*n_mfcc == 0 || n_mfcc > n_mels)
                {
                    return Err("MFCC: need 0 < n_mfcc <= n_mels".into());
                }
            }
        }
        Ok(())
    }

    /// Whether pooling weighs every frame it keeps alike (mean pooling): the pooling weights
    /// then say which frames were pooled, not where the model looked.
    pub fn uniform_pooling(&self) -> bool {
        self.pooling == PoolingKind::Mean
    }

    /// Whether the front-end is learned FIR blocks. Only they are differentiable with respect
    /// to the input here (log-Mel/MFCC features are computed outside autodiff), so only they
    /// give integrated gradients.
    pub fn has_input_gradient(&self) -> bool {
        matches!(self.front_end, FrontEndConfig::Fir { .. })
    }

    /// Whether the model classifies heart sounds (its classes include "abnormal", as the
    /// PhysioNet 2016 layout names them): its recordings have heart cycles to find.
    pub fn is_heart_sound_model(&self) -> bool {
        self.classes.iter().any(|c| c == "abnormal")
    }

    /// The mel filterbank of a log-Mel/MFCC front-end: `(n_fft, hop, n_mels, n_mfcc)`, with
    /// `n_mfcc` None for log-Mel; None for a learned (FIR) front-end.
    pub fn mel_bank(&self) -> Option<(usize, usize, usize, Option<usize>)> {
        match self.front_end {
            FrontEndConfig::Fir { .. } => None,
            FrontEndConfig::LogMel { n_fft, hop, n_mels } => Some((n_fft, hop, n_mels, None)),
            FrontEndConfig::Mfcc {
                n_fft,
                hop,
                n_mels,
                n_mfcc,
            } => Some((n_fft, hop, n_mels, Some(n_mfcc))),
        }
    }

    /// One line saying what a fixed (log-Mel/MFCC) front-end computes; None for a learned one.
    pub fn fixed_front_end_summary(&self) -> Option<String> {
        let (n_fft, hop, n_mels, n_mfcc) = self.mel_bank()?;
        let rate = self.sample_rate as f64;
        let bands = crate::dsp::spectral::mel_band_edges_hz(n_mels, rate);
        let ms = |samples: usize| 1000.0 * samples as f64 / rate;
        let (kind, last_step) = match n_mfcc {
            Some(k) => ("MFCC", format!("log band energies, DCT-II to {k} coefficients")),
            None => ("log-Mel", "log band energies".to_string()),
        };
        Some(format!(
            "fixed {kind} front-end, not learned: {n_mels} triangular mel bands peaking at {:.0}-{:.0} Hz \
             on a {n_fft}-point FFT of {:.1} ms Hann frames every {:.1} ms at {} Hz; {last_step}",
            bands.first().map_or(0.0, |b| b[1]),
            bands.last().map_or(0.0, |b| b[1]),
            ms(n_fft),
            ms(hop),
            self.sample_rate,
        ))
    }

    /// Input samples per pooled frame (front-end and context pooling).
    pub fn total_stride(&self) -> usize {
        self.front_end_stride() * self.context.as_ref().map_or(1, |c| c.pool)
    }

    /// Input samples per front-end frame.
    pub fn front_end_stride(&self) -> usize {
        match &self.front_end {
            FrontEndConfig::Fir { blocks } => blocks.iter().map(|b| b.stride).product(),
            FrontEndConfig::LogMel { hop, .. } | FrontEndConfig::Mfcc { hop, .. } => *hop,
        }
    }

    /// Input samples that influence one pooled frame.
    pub fn receptive_field(&self) -> usize {
        let front = self.front_end_field();
        match &self.context {
            Some(c) => {
                let step = self.front_end_stride();
                front + (c.pool - 1) * step + (c.span() - 1) * c.pool * step
            }
            None => front,
        }
    }

    fn front_end_field(&self) -> usize {
        match &self.front_end {
            FrontEndConfig::Fir { blocks } => {
                let mut field = 1;
                let mut step = 1;
                for b in blocks {
                    field += (b.taps - 1) * step;
                    field += (b.stride - 1) * step;
                    step *= b.stride;
                }
                field
            }
            FrontEndConfig::LogMel { n_fft, .. } | FrontEndConfig::Mfcc { n_fft, .. } => *n_fft,
        }
    }

    /// What happens between the front-end and the head, for people: e.g. "temporal context
    /// (4 layers, 128 ch, pool 4) -> attention pooling with statistics".
    pub fn pooling_summary(&self) -> String {
        let mut pooling = match (self.pooling, self.pooling_std) {
            (PoolingKind::Mean, false) => "mean pooling".to_string(),
            (PoolingKind::Mean, true) => "mean pooling with statistics".to_string(),
            (PoolingKind::Attention, false) => "attention pooling".to_string(),
            (PoolingKind::Attention, true) => "attention pooling with statistics".to_string(),
        };
        if let Some(db) = self.active_frames_db {
            pooling.push_str(&format!(" over frames within {db} dB of the loudest"));
        }
        let front = match (self.relative_bands, self.cycle_phases) {
            (true, true) => "bands relative to the frame level, with heart-cycle phases -> ",
            (true, false) => "bands relative to the frame level -> ",
            (false, true) => "with heart-cycle phases -> ",
            (false, false) => "",
        };
        match &self.context {
            Some(c) => format!(
                "{front}temporal context ({} layers, {} ch, pool {}) -> {pooling}",
                c.dilations.len(),
                c.channels,
                c.pool
            ),
            None => format!("{front}{pooling}"),
        }
    }

    /// Width of the pooled vector the head reads: the channels, twice with statistics pooling.
    pub fn pooled_width(&self) -> usize {
        self.pooling_channels() * if self.pooling_std { 2 } else { 1 }
    }

    /// Channels of the feature map fed to pooling (the context's, if there is one).
    pub fn pooling_channels(&self) -> usize {
        self.context
            .as_ref()
            .map_or_else(|| self.feature_channels(), |c| c.channels)
    }

    /// Channels of the front-end's feature map (with the heart-cycle phases, if any).
    pub fn feature_channels(&self) -> usize {
        let phases = if self.cycle_phases {
            super::cycle_phases::PHASE_CHANNELS
        } else {
            0
        };
        phases
            + match &self.front_end {
                // Every block stacks the pooled input channels with its own filters (and, with
                // relative bands, the frame level of each block).
                FrontEndConfig::Fir { blocks } => {
                    1 + blocks
                        .iter()
                        .map(|b| b.filters + usize::from(self.relative_bands))
                        .sum::<usize>()
                }
                FrontEndConfig::LogMel { n_mels, .. } => *n_mels,
                FrontEndConfig::Mfcc { n_mfcc, .. } => *n_mfcc,
            }
    }

    /// Shortest input (samples) that yields at least one frame.
    pub fn min_samples(&self) -> usize {
        match &self.front_end {
            FrontEndConfig::Fir { .. } => self.total_stride(),
            FrontEndConfig::LogMel { n_fft, .. } | FrontEndConfig::Mfcc { n_fft, .. } => {
                (*n_fft).max(self.total_stride())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_front_end_says_what_it_computes_and_a_learned_one_nothing() {
        let classes = vec!["a".to_string(), "b".to_string()];
        let mut mfcc = ModelConfig::named("mfcc", 8000, classes.clone(), PoolingKind::Mean).unwrap();
        mfcc.set_spectral_frame_ms(32.0, 8.0).unwrap();
        let text = mfcc.fixed_front_end_summary().unwrap();
        // 32 ms at 8 kHz is a 256-point FFT; 8 ms a 64-sample hop.
        assert!(text.starts_with("fixed MFCC front-end, not learned: "), "{text}");
        assert!(
            text.contains("a 256-point FFT of 32.0 ms Hann frames every 8.0 ms at 8000 Hz"),
            "{text}"
        );
        assert!(text.ends_with("DCT-II to 40 coefficients"), "{text}");
        let m13 = ModelConfig::named("m13", 8000, classes, PoolingKind::Mean).unwrap();
        assert_eq!(m13.fixed_front_end_summary(), None);
        assert_eq!(m13.mel_bank(), None);
    }

    #[test]
    fn m13_shapes_match_the_paper() {
        let c = ModelConfig::named("m13", 16000, vec!["a".into(), "b".into()], PoolingKind::Mean).unwrap();
        assert_eq!(c.total_stride(), 16);
        assert_eq!(c.feature_channels(), 161);
        let w = ModelConfig::named("w456", 2000, vec!["a".into(), "b".into()], PoolingKind::Mean).unwrap();
        assert_eq!(w.feature_channels(), 457);
        assert_eq!(w.total_stride(), 16);
    }

    #[test]
    fn context_pools_frames_and_widens_the_receptive_field() {
        let mut c =
            ModelConfig::named("m13", 8000, vec!["a".into(), "b".into()], PoolingKind::Attention).unwrap();
        // Block 1: 511 taps + 7 pooled samples; block 2: (126 + 1) steps of 8 samples.
        assert_eq!(c.receptive_field(), 1 + 510 + 7 + 126 * 8 + 8);
        c.context = Some(ContextConfig::standard());
        c.validate().unwrap();
        assert_eq!(c.total_stride(), 64);
        assert_eq!(c.front_end_stride(), 16);
        assert_eq!(c.context.as_ref().unwrap().span(), 31);
        // + 3 front-end frames for the pool, + 30 pooled frames of 4 x 16 samples each.
        assert_eq!(c.receptive_field(), 1534 + 3 * 16 + 30 * 64);
        assert_eq!(c.pooling_channels(), 128);
        assert_eq!(
            c.pooling_summary(),
            "temporal context (4 layers, 128 ch, pool 4) -> attention pooling"
        );
        assert_eq!(c.feature_channels(), 161);
        c.relative_bands = true;
        c.active_frames_db = Some(30.0);
        assert_eq!(
            c.pooling_summary(),
            "bands relative to the frame level -> temporal context (4 layers, 128 ch, pool 4) -> \
             attention pooling over frames within 30 dB of the loudest"
        );
        assert_eq!(c.feature_channels(), 163);
        c.cycle_phases = true;
        assert_eq!(c.feature_channels(), 167, "S1, systole, S2 and diastole");
        assert!(
            c.pooling_summary()
                .starts_with("bands relative to the frame level, with heart-cycle phases -> ")
        );
        c.context.as_mut().unwrap().kernel = 4;
        assert!(c.validate().is_err());
    }

    #[test]
    fn kernel_lengths_can_be_set_per_block() {
        let classes = vec!["a".into(), "b".into()];
        let mut c = ModelConfig::named("m13", 2000, classes.clone(), PoolingKind::Attention).unwrap();
        c.set_taps(&[127, 31]).unwrap();
        let FrontEndConfig::Fir { blocks } = &c.front_end else {
            unreachable!()
        };
        assert_eq!((blocks[0].taps, blocks[1].taps), (127, 31));
        assert_eq!(blocks[1].min_bandwidth, 1.0 / 31.0);
        // Block 1: 126 taps + 7 pooled samples; block 2: (30 + 1) steps of 8 samples.
        assert_eq!(c.receptive_field(), 1 + 126 + 7 + 30 * 8 + 8);
        assert!(c.set_taps(&[127]).is_err());
        assert!(c.set_taps(&[128, 31]).is_err());
        let mut mel = ModelConfig::named("logmel", 2000, classes, PoolingKind::Attention).unwrap();
        assert!(mel.set_taps(&[127]).is_err());
    }

    #[test]
    fn filter_counts_can_be_set_per_block() {
        let classes = vec!["a".into(), "b".into()];
        let mut c = ModelConfig::named("m13", 8000, classes.clone(), PoolingKind::Mean).unwrap();
        c.set_filters(&[32, 16]).unwrap();
        let FrontEndConfig::Fir { blocks } = &c.front_end else {
            unreachable!()
        };
        assert_eq!(
            (blocks[0].filters, blocks[1].filters, blocks[1].in_channels),
            (32, 16, 32)
        );
        // 32 + 16 bands and the pooled waveform.
        assert_eq!(c.feature_channels(), 49);
        assert!(c.set_filters(&[32]).is_err());
        assert!(c.set_filters(&[32, 0]).is_err());
        let mut mel = ModelConfig::named("logmel", 8000, classes.clone(), PoolingKind::Mean).unwrap();
        assert!(mel.set_filters(&[32, 16]).is_err());
        assert!(mel.fix_bands().is_err());
        c.fix_bands().unwrap();
        let FrontEndConfig::Fir { blocks } = &c.front_end else {
            unreachable!()
        };
        // The bands stay; each filter keeps its own learnable window.
        assert!(blocks.iter().all(|b| !b.learn_bands && !b.shared_window));
    }

    #[test]
    fn spectral_frames_can_be_set_in_milliseconds() {
        let classes: Vec<String> = vec!["a".into(), "b".into()];
        let mut c = ModelConfig::named("logmel", 1000, classes.clone(), PoolingKind::Attention).unwrap();
        // 64 ms at 1 kHz is 64 samples; 16 ms is 16; 64 mels would exceed 64 / 4 = 16 bins' worth.
        c.set_spectral_frame_ms(64.0, 16.0).unwrap();
        assert_eq!(
            c.front_end,
            FrontEndConfig::LogMel {
                n_fft: 64,
                hop: 16,
                n_mels: 16
            }
        );
        assert_eq!(c.total_stride(), 16);
        let mut m = ModelConfig::named("mfcc", 8000, classes.clone(), PoolingKind::Attention).unwrap();
        // 25 ms at 8 kHz is 200 samples: the FFT takes the next power of two, 256; hop 10 ms = 80.
        m.set_spectral_frame_ms(25.0, 10.0).unwrap();
        assert_eq!(
            m.front_end,
            FrontEndConfig::Mfcc {
                n_fft: 256,
                hop: 80,
                n_mels: 64,
                n_mfcc: 40
            }
        );
        let mut fir = ModelConfig::named("m13", 8000, classes, PoolingKind::Attention).unwrap();
        assert!(fir.set_spectral_frame_ms(25.0, 10.0).is_err());
    }

    #[test]
    fn invalid_configs_are_rejected() {
        assert!(ModelConfig::named("m13", 16000, vec!["a".into()], PoolingKind::Mean).is_err());
        assert!(ModelConfig::named("nope", 16000, vec!["a".into(), "b".into()], PoolingKind::Mean).is_err());
        let mut c =
            ModelConfig::named("m13", 16000, vec!["a".into(), "b".into()], PoolingKind::Mean).unwrap();
        if let FrontEndConfig::Fir { blocks } = &mut c.front_end {
            blocks[0].taps = 510;
        }
        assert!(c.validate().is_err());
    }
}
