//! `IConNet`: front-end -> pooling over time -> head, with an exact backward pass through the
//! CPU FFT band-energy op.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Bool, Device, Gradients, Tensor, TensorData};
use rayon::prelude::*;

use super::activation::{nlrelu_in_place, nlrelu_in_place_with_slope};
use super::activity::inactive_frames;
use super::config::{FrontEndConfig, ModelConfig};
use super::context::TemporalContext;
use super::cycle_phases::cycle_phase_channels;
use super::fir_bank::FirBank;
use super::head::Head;
use super::pooling::TemporalPooling;
use super::standardize::{VARIANCE_FLOOR, standardize_rows, standardize_rows_backward};
use crate::dsp::fftconv::{BandEnergySaved, BandEnergyShape, band_energy_backward, band_energy_forward};
use crate::dsp::spectral;

/// One FIR block: band-pass bank -> rectify -> average-pool (stride) -> NLReLU -> stack.
#[derive(Module, Debug)]
pub struct FirBlock {
    pub bank: FirBank,
    pub stride: usize,
}

/// Padded mono clips, `[batch, time]` row-major, with each clip's true length.
#[derive(Clone, Debug)]
pub struct AudioBatch {
    pub samples: Vec<f32>,
    pub batch: usize,
    pub time: usize,
    pub lengths: Vec<usize>,
}

impl AudioBatch {
    /// Zero-pads `clips` to the longest (and at least `min_time` samples).
    pub fn from_clips(clips: &[&[f32]], min_time: usize) -> Self {
        let time = clips
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(0)
            .max(min_time)
            .max(1);
        let mut samples = vec![0f32; clips.len() * time];
        for (row, clip) in samples.chunks_mut(time).zip(clips) {
            row[..clip.len()].copy_from_slice(clip);
        }
        Self {
            samples,
            batch: clips.len(),
            time,
            lengths: clips.iter().map(|c| c.len()).collect(),
        }
    }
}

/// What one block's band-energy op must keep for the backward pass.
pub struct TapeEntry {
    block: usize,
    saved: BandEnergySaved,
    /// NLReLU's slope at each band energy, `[B, H, T_i]` (0 on held-back frames).
    slope: Vec<f32>,
    /// Leaf holding the features pooled by `pool` to the stack's frame rate, `[B, H, T_i /
    /// pool]`; its gradient drives the CPU backward.
    pooled: Tensor<3>,
    pool: usize,
    /// Valid frames per clip; energies past them are held at zero.
    valid: Vec<usize>,
    /// The stack's per-recording standardisation of `pooled`, if the model has one.
    standardization: Option<StackStandardization>,
}

/// What the backward of one block's share of the stack's standardisation needs.
struct StackStandardization {
    /// The standardised pooled features, `[B, H, frames]` (the leaf's values).
    values: Vec<f32>,
    /// `1 / sqrt(var + 1e-5)` per row `[B * H]`.
    scales: Vec<f32>,
    frames: usize,
    /// Valid frames of the stack per clip.
    valid: Vec<usize>,
}

/// Result of a forward pass.
pub struct Forward {
    /// `[batch, classes]`.
    pub logits: Tensor<2>,
    /// Pooling weights `[batch, frames]` (uniform over valid frames for mean pooling).
    pub attention: Tensor<2>,
    /// First block's NLReLU band energies `[batch, filters, frames_1]` (FIR front-ends only).
    pub band_energy: Option<Tensor<3>>,
    /// Valid frames per clip.
    pub valid_frames: Vec<usize>,
    /// Needed by [`IConNet::backward`]; empty unless the forward ran on an autodiff device.
    pub tape: Vec<TapeEntry>,
}

/// What the pooling read in one forward pass: enough to run the pooling and the head again.
#[derive(Clone, Debug)]
pub struct PoolingInput {
    /// `[batch, channels, frames]`, row-major.
    pub features: Vec<f32>,
    pub dims: [usize; 3],
    /// `[batch * frames]`: the frames the pooling ignores (past a clip's end, or silence).
    pub padding: Vec<bool>,
    /// Valid frames per clip.
    pub valid_frames: Vec<usize>,
}

/// The whole model.
#[derive(Module, Debug)]
pub struct IConNet {
    pub blocks: Vec<FirBlock>,
    pub context: Option<TemporalContext>,
    pub pooling: TemporalPooling,
    pub head: Head,
    #[module(skip)]
    pub config: ModelConfig,
}

impl IConNet {
    /// A freshly initialised model (mel bands, Hann windows, default head init).
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        let blocks = match &config.front_end {
            FrontEndConfig::Fir { blocks } => blocks
                .iter()
                .map(|b| FirBlock {
                    bank: FirBank::new(b, config.sample_rate as f64, device),
                    stride: b.stride,
                })
                .collect(),
            _ => Vec::new(),
        };
        let context = config
            .context
            .as_ref()
            .map(|c| TemporalContext::new(c, config.feature_channels(), device));
        let channels = config.pooling_channels();
        Self {
            blocks,
            context,
            pooling: TemporalPooling::new(
                config.pooling,
                channels,
                config.attention_dim,
                config.pooling_std,
                device,
            ),
            head: Head::new(
                config.pooled_width(),
                &config.head_hidden,
                config.classes.len(),
                config.dropout,
                device,
            ),
            config: config.clone(),
        }
    }

    /// The same model with dropout off: explanations on an autodiff device must see the
    /// deterministic model that made the prediction, not a randomly thinned one.
    pub fn without_dropout(mut self) -> Self {
        self.head.dropout.prob = 0.0;
        self
    }

    pub fn device(&self) -> Device {
        self.head.output.weight.val().device()
    }

    /// Forward pass. On an autodiff device the returned tape lets [`Self::backward`] reach the
    /// filter parameters.
    pub fn forward(&self, batch: &AudioBatch) -> Forward {
        self.forward_with_leaf(batch, Leaf::None, true).0
    }

    /// [`Self::forward`] without the first block's band energies (`band_energy` is None): they
    /// are the largest thing a forward pass makes (128 values per millisecond of 8 kHz input),
    /// and an ensemble shows one member's.
    pub fn forward_without_band_energy(&self, batch: &AudioBatch) -> Forward {
        self.forward_with_leaf(batch, Leaf::None, false).0
    }

    /// Forward pass that also keeps what the pooling read ([`PoolingInput`]), so that
    /// [`Self::grad_cam_from`] can explain any class later without the front-end. Nothing is
    /// tracked, on any device.
    pub fn forward_keeping_pooling_input(&self, batch: &AudioBatch) -> (Forward, PoolingInput) {
        let (forward, _, kept) = self.forward_with_leaf(batch, Leaf::KeepPoolingInput, true);
        (forward, kept.expect("the pooling input is kept when asked"))
    }

    /// Forward pass that also returns a gradient leaf, the input `[batch, 1, time]` (a detached
    /// copy on the model's device), or keeps the pooling input; with the first block's band
    /// energies if `band_energy`.
    fn forward_with_leaf(
        &self,
        batch: &AudioBatch,
        leaf: Leaf,
        band_energy: bool,
    ) -> (Forward, Option<Tensor<3>>, Option<PoolingInput>) {
        let device = self.device();
        // Grad-CAM starts at a copy of the pooling input: nothing before it needs a tape, so
        // the front-end runs as at inference (remembered kernels, no saved spectra).
        let track = device.is_autodiff() && leaf != Leaf::KeepPoolingInput;
        let mut leaf_tensor = None;
        let (features, band_energy, tape) = match &self.config.front_end {
            FrontEndConfig::Fir { .. } => {
                let (f, e, tape, input) =
                    self.fir_features(batch, &device, track, leaf == Leaf::Input, band_energy);
                leaf_tensor = input;
                (f, e, tape)
            }
            FrontEndConfig::LogMel { n_fft, hop, n_mels } => (
                self.spectral_features(batch, &device, *n_mels, |x| {
                    spectral::log_mel(x, *n_fft, *hop, *n_mels, self.config.sample_rate as f64)
                }),
                None,
                Vec::new(),
            ),
            FrontEndConfig::Mfcc {
                n_fft,
                hop,
                n_mels,
                n_mfcc,
            } => (
                self.spectral_features(batch, &device, *n_mfcc, |x| {
                    spectral::mfcc(x, *n_fft, *hop, *n_mels, *n_mfcc, self.config.sample_rate as f64)
                }),
                None,
                Vec::new(),
            ),
        };
        let [b, _, frames] = features.dims();
        let valid_frames = stack_valid_frames(&batch.lengths, self.config.front_end_stride(), frames);
        // The FIR front-end standardises its stack itself.
        let standardized = matches!(self.config.front_end, FrontEndConfig::Fir { .. });
        let features = if self.config.normalize_features && !standardized {
            standardize_over_time(features, &valid_frames)
        } else {
            features
        };
        let features = if self.config.cycle_phases {
            let phases = cycle_phase_channels(
                batch,
                &valid_frames,
                frames,
                self.config.front_end_stride(),
                self.config.sample_rate,
                &device,
            );
            Tensor::cat(vec![features, phases], 1)
        } else {
            features
        };
        let (features, valid_frames) = match &self.context {
            Some(context) => context.forward(features, &valid_frames),
            None => (features, valid_frames),
        };
        let frames = features.dims()[2];
        let mut padding: Vec<bool> = valid_frames
            .iter()
            .flat_map(|&v| (0..frames).map(move |t| t >= v))
            .collect();
        if let Some(db) = self.config.active_frames_db {
            let inactive = inactive_frames(
                batch,
                &valid_frames,
                frames,
                self.config.total_stride(),
                self.config.sample_rate,
                db,
            );
            padding
                .iter_mut()
                .zip(inactive)
                .for_each(|(p, quiet)| *p |= quiet);
        }
        let kept = (leaf == Leaf::KeepPoolingInput).then(|| PoolingInput {
            dims: features.dims(),
            features: features.clone().into_data().try_to_vec().expect("f32 features"),
            padding: padding.clone(),
            valid_frames: valid_frames.clone(),
        });
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(padding, [b, frames]), &device);
        let (pooled, attention) = self.pooling.forward(features, padding);
        let forward = Forward {
            logits: self.head.forward(pooled),
            attention,
            band_energy,
            valid_frames,
            tape,
        };
        (forward, leaf_tensor, kept)
    }

    /// Grad-CAM over time for `class`: `relu(sum_c mean_t(dy/dA_c) * A_c(t))` on the pooling
    /// input `A [channels, frames]` of each clip, and 0 on frames the pooling gives no weight.
    /// Needs an autodiff device. Returns `[batch][valid frames]`.
    pub fn grad_cam(&self, batch: &AudioBatch, class: usize) -> Result<Vec<Vec<f32>>, String> {
        let (_, kept) = self.forward_keeping_pooling_input(batch);
        self.grad_cam_from(&kept, class)
    }

    /// Grad-CAM for `class` from a pooling input kept by
    /// [`Self::forward_keeping_pooling_input`] (of this model, on any device): only the pooling
    /// and the head run again, here on this model's autodiff device, so explaining a class
    /// after the prediction costs a fraction of a forward pass.
    pub fn grad_cam_from(&self, input: &PoolingInput, class: usize) -> Result<Vec<Vec<f32>>, String> {
        let device = self.device();
        if !device.is_autodiff() {
            return Err("Grad-CAM needs the model on an autodiff device".into());
        }
        let n_classes = self.config.classes.len();
        if class >= n_classes {
            return Err(format!("class {class} out of range ({n_classes} classes)"));
        }
        let [b, channels, frames] = input.dims;
        let features = Tensor::<3>::from_data(TensorData::new(input.features.clone(), input.dims), &device)
            .require_grad();
        let padding =
            Tensor::<2, Bool>::from_data(TensorData::new(input.padding.clone(), [b, frames]), &device);
        let (pooled, attention) = self.pooling.forward(features.clone(), padding);
        // Frames the pooling gives no weight (silence left out by `--active-frames-db`) cannot
        // have moved the score, whatever their features hold.
        let weights: Vec<f32> = attention.into_data().try_to_vec().expect("f32 weights");
        let grads = class_score(self.head.forward(pooled), class).backward();
        let g: Vec<f32> = features
            .grad(&grads)
            .ok_or("no gradient reached the pooling input")?
            .into_data()
            .try_to_vec()
            .expect("f32 gradient");
        let a = &input.features;
        Ok((0..b)
            .map(|i| {
                let valid = input.valid_frames[i];
                let mut cam = vec![0f32; valid];
                for c in 0..channels {
                    let row = (i * channels + c) * frames;
                    let weight = g[row..row + valid].iter().sum::<f32>() / valid as f32;
                    for (t, v) in cam.iter_mut().enumerate() {
                        *v += weight * a[row + t];
                    }
                }
                let pooled = &weights[i * frames..i * frames + valid];
                cam.iter_mut()
                    .zip(pooled)
                    .for_each(|(v, &w)| *v = if w > 0.0 { v.max(0.0) } else { 0.0 });
                cam
            })
            .collect())
    }

    /// Whether [`Self::input_gradient`] exists ([`ModelConfig::has_input_gradient`]).
    pub fn has_input_gradient(&self) -> bool {
        self.config.has_input_gradient()
    }

    /// `d logit[class] / d input`, `[batch * time]` row-major, through every FIR block (the FFT
    /// op's exact input gradient) and the pooled-input path. Needs an autodiff device and a
    /// FIR front-end.
    pub fn input_gradient(&self, batch: &AudioBatch, class: usize) -> Result<Vec<f32>, String> {
        if !self.device().is_autodiff() {
            return Err("input gradients need the model on an autodiff device".into());
        }
        if !self.has_input_gradient() {
            return Err(
                "input gradients need a FIR front-end (log-Mel/MFCC features are not differentiable here)"
                    .into(),
            );
        }
        let (out, leaf, _) = self.forward_with_leaf(batch, Leaf::Input, true);
        let leaf = leaf.expect("input leaf on an autodiff device");
        let grads = class_score(out.logits, class).backward();
        let pending = out.tape.iter().map(|e| e.pooled.grad(&grads)).collect();
        let mut g: Vec<f32> = match leaf.grad(&grads) {
            Some(g) => g.into_data().try_to_vec().expect("f32 gradient"),
            None => vec![0.0; batch.batch * batch.time],
        };
        if let Some(through_bands) = self.backward_blocks(&out.tape, pending, true, |_, _| {}) {
            g.iter_mut().zip(through_bands).for_each(|(a, b)| *a += b);
        }
        Ok(g)
    }

    fn fir_features(
        &self,
        batch: &AudioBatch,
        device: &Device,
        track: bool,
        input_leaf: bool,
        band_energy: bool,
    ) -> (Tensor<3>, Option<Tensor<3>>, Vec<TapeEntry>, Option<Tensor<3>>) {
        let (b, mut time) = (batch.batch, batch.time);
        let mut input = Tensor::<3>::from_data(TensorData::new(batch.samples.clone(), [b, 1, time]), device);
        let input_leaf = (track && input_leaf).then(|| {
            input = input.clone().require_grad();
            input.clone()
        });
        let total_stride: usize = self.blocks.iter().map(|b| b.stride).product();
        let frames = time / total_stride;
        let normalize = self.config.normalize_features;
        let nlrelu_beta = self.config.nlrelu_beta as f32;
        let stack_valid = stack_valid_frames(&batch.lengths, total_stride, frames);
        // Every block's features go to the stack pooled straight to the last block's frame rate
        // (a mean of means over equal windows is the mean over their union), and standardised
        // per channel (channels are independent, so per block), on the host and in parallel:
        // burn's flex ops would pool and differentiate the first block's 6 M values for a batch
        // of 8 x 3 s at 16 kHz on one core.
        let pooled_input = avg_pool_time(input, total_stride);
        let mut stacked = vec![if normalize {
            standardize_over_time(pooled_input, &stack_valid)
        } else {
            pooled_input
        }];
        let mut conv_input = batch.samples.clone();
        let mut tape = Vec::new();
        let mut first_energy = None;
        let mut cumulative_stride = 1;
        for (i, block) in self.blocks.iter().enumerate() {
            let bank = &block.bank;
            let shape = BandEnergyShape {
                batch: b,
                in_channels: bank.in_channels,
                time,
                filters: bank.filters,
                taps: bank.taps,
                stride: block.stride,
            };
            // A tracked pass is a training step (or an attribution): its kernels are not
            // kept, so that they do not push out the ones inference reuses.
            let kernels = if track {
                Arc::new(bank.fresh_kernel_values())
            } else {
                bank.kernel_values()
            };
            let (mut features, saved) = band_energy_forward(&conv_input, &kernels, shape, track);
            time = shape.out_time();
            cumulative_stride *= block.stride;
            // Frames past a clip's end would see only the kernels' reach into the padding: hold
            // them at zero so a clip's result does not depend on what it is batched with.
            let valid: Vec<usize> = batch
                .lengths
                .iter()
                .map(|&l| (l / cumulative_stride).min(time))
                .collect();
            mask_frames(&mut features, bank.filters, time, &valid);
            // The tracked pass keeps NLReLU's slope for the backward and makes the pooled
            // features a leaf of burn's graph.
            let slope = if track {
                Some(nlrelu_in_place_with_slope(&mut features, nlrelu_beta))
            } else {
                nlrelu_in_place(&mut features, nlrelu_beta);
                None
            };
            let pool = total_stride / cumulative_stride;
            let mut pooled = pool_frames(&features, time, pool);
            debug_assert_eq!(pooled.len(), b * bank.filters * frames);
            let scales = normalize.then(|| standardize_rows(&mut pooled, bank.filters, frames, &stack_valid));
            let standardization = scales.filter(|_| track).map(|scales| StackStandardization {
                values: pooled.clone(),
                scales,
                frames,
                valid: stack_valid.clone(),
            });
            let pooled = Tensor::<3>::from_data(TensorData::new(pooled, [b, bank.filters, frames]), device);
            let pooled = if track { pooled.require_grad() } else { pooled };
            if self.config.relative_bands {
                let level = pooled.clone().mean_dim(1);
                stacked.push(level.clone());
                stacked.push(pooled.clone() - level);
            } else {
                stacked.push(pooled.clone());
            }
            if i == 0 && band_energy {
                first_energy = Some(Tensor::<3>::from_data(
                    TensorData::new(features.clone(), [b, bank.filters, time]),
                    device,
                ));
            }
            if let (Some(saved), Some(slope)) = (saved, slope) {
                tape.push(TapeEntry {
                    block: i,
                    saved,
                    slope,
                    pooled,
                    pool,
                    valid,
                    standardization,
                });
            }
            conv_input = features;
        }
        (Tensor::cat(stacked, 1), first_energy, tape, input_leaf)
    }

    fn spectral_features(
        &self,
        batch: &AudioBatch,
        device: &Device,
        channels: usize,
        features: impl Fn(&[f32]) -> Vec<f32>,
    ) -> Tensor<3> {
        let frames = batch.time / self.config.front_end_stride();
        let data: Vec<f32> = batch.samples.chunks(batch.time).flat_map(features).collect();
        Tensor::<3>::from_data(TensorData::new(data, [batch.batch, channels, frames]), device)
    }

    /// Backward pass of `loss` through the head, the pooling and every FIR block (a forward of
    /// the same batch made `tape`). Returns gradients for every trainable parameter.
    pub fn backward(&self, loss: Tensor<1>, tape: Vec<TapeEntry>) -> GradientsParams {
        let grads = loss.backward();
        let pending = tape.iter().map(|e| e.pooled.grad(&grads)).collect();
        let mut params = GradientsParams::from_grads(grads, self);
        self.backward_blocks(&tape, pending, false, |bank, grads| {
            register(&bank.f_low, grads, &mut params);
            register(&bank.bandwidth, grads, &mut params);
            register(&bank.phi, grads, &mut params);
        });
        params
    }

    /// Runs the CPU backward of each taped block from the last to the first, given the
    /// gradients `pending[i]` of each block's pooled features (its leaf in the stack). `on_bank`
    /// receives each bank with the gradients of its parameters. With `input_grad`, returns the
    /// first block's gradient with respect to its input samples `[batch * time]`.
    fn backward_blocks(
        &self,
        tape: &[TapeEntry],
        mut pending: Vec<Option<Tensor<3>>>,
        input_grad: bool,
        mut on_bank: impl FnMut(&FirBank, &Gradients),
    ) -> Option<Vec<f32>> {
        let mut to_input = None;
        // Gradient of block i's features through block i + 1's input, `[B, H, T_i]`.
        let mut through_next: Option<Vec<f32>> = None;
        for i in (0..tape.len()).rev() {
            let entry = &tape[i];
            let filters = self.blocks[entry.block].bank.filters;
            let from_stack: Option<Vec<f32>> = pending[i].take().map(|g| {
                let mut g: Vec<f32> = g.into_data().try_to_vec().expect("f32 gradient");
                if let Some(st) = &entry.standardization {
                    standardize_rows_backward(&mut g, &st.values, &st.scales, filters, st.frames, &st.valid);
                }
                g
            });
            let from_next = through_next.take();
            if from_stack.is_none() && from_next.is_none() {
                continue;
            }
            let g_energy = energy_gradient(entry, filters, from_stack.as_deref(), from_next.as_deref());
            let want_input = i > 0 || input_grad;
            let (g_kernels, g_input) = band_energy_backward(&entry.saved, &g_energy, want_input);
            if i == 0 {
                to_input = g_input;
            } else {
                through_next = g_input;
            }
            // Gradients reach the filter parameters through a fresh graph from their leaves:
            // sum(kernels * dL/dkernels).
            let bank = &self.blocks[entry.block].bank;
            let kernels = bank.kernels();
            let dims = kernels.dims();
            let device = kernels.device();
            let g_kernels = Tensor::<3>::from_data(TensorData::new(g_kernels, dims), &device);
            let grads = (kernels * g_kernels).sum().backward();
            on_bank(bank, &grads);
        }
        to_input
    }
}

/// `dL/d energy [B, H, T]` of one block: the gradient of its pooled features spread back over
/// each pooling window, plus the one through the next block's input, times NLReLU's slope;
/// zero on held-back frames. Rows in parallel.
fn energy_gradient(
    entry: &TapeEntry,
    filters: usize,
    from_stack: Option<&[f32]>,
    from_next: Option<&[f32]>,
) -> Vec<f32> {
    let time = entry.saved.shape().out_time();
    let pool = entry.pool;
    let pooled_time = time / pool;
    let inv_pool = 1.0 / pool as f32;
    let mut g = vec![0f32; entry.slope.len()];
    g.par_chunks_mut(time.max(1))
        .zip(entry.slope.par_chunks(time.max(1)))
        .enumerate()
        .for_each(|(row, (g_row, slope))| {
            let valid = entry.valid[row / filters];
            if let Some(next) = from_next {
                g_row[..valid].copy_from_slice(&next[row * time..][..valid]);
            }
            if let Some(stack) = from_stack {
                let stack = &stack[row * pooled_time..][..pooled_time];
                for (frame, window) in g_row[..valid.min(pooled_time * pool)]
                    .chunks_mut(pool)
                    .enumerate()
                {
                    let share = stack[frame] * inv_pool;
                    window.iter_mut().for_each(|v| *v += share);
                }
            }
            g_row[..valid].iter_mut().zip(slope).for_each(|(v, d)| *v *= d);
        });
    g
}

/// Means of `pool` consecutive frames of every row of `values [rows, time]`, a trailing partial
/// window dropped: `[rows, time / pool]`. Rows in parallel.
fn pool_frames(values: &[f32], time: usize, pool: usize) -> Vec<f32> {
    if pool == 1 {
        return values.to_vec();
    }
    let frames = time / pool;
    let rows = values.len() / time.max(1);
    let mut out = vec![0f32; rows * frames];
    if frames == 0 {
        return out;
    }
    let inv_pool = 1.0 / pool as f32;
    out.par_chunks_mut(frames)
        .zip(values.par_chunks(time))
        .for_each(|(out, row)| {
            for (o, window) in out.iter_mut().zip(row.chunks_exact(pool)) {
                *o = window.iter().sum::<f32>() * inv_pool;
            }
        });
    out
}

/// Which tensor [`IConNet::forward_with_leaf`] makes a gradient leaf of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    None,
    Input,
    /// No leaf and no tape: keep the pooling input instead.
    KeepPoolingInput,
}

/// `sum_b logits[b, class]`: each clip's score for `class` (clips are independent).
fn class_score(logits: Tensor<2>, class: usize) -> Tensor<1> {
    let [b, _] = logits.dims();
    logits.narrow(1, class, 1).reshape([b]).sum()
}

/// Zeroes frames `valid[b]..` of every row of `x [B, H, T]`.
fn mask_frames(x: &mut [f32], filters: usize, time: usize, valid: &[usize]) {
    for (row, chunk) in x.chunks_mut(time.max(1)).enumerate() {
        let v = valid[row / filters];
        if v < chunk.len() {
            chunk[v..].iter_mut().for_each(|e| *e = 0.0);
        }
    }
}

fn register<const D: usize>(param: &Param<Tensor<D>>, grads: &Gradients, out: &mut GradientsParams) {
    if let Some(g) = param.val().grad(grads) {
        let g = match out.remove::<D>(param.id) {
            Some(prev) => prev + g,
            None => g,
        };
        out.register(param.id, g);
    }
}

/// Valid frames of the stack (frame rate `1 / stride`) per clip: at least 1, at most `frames`.
fn stack_valid_frames(lengths: &[usize], stride: usize, frames: usize) -> Vec<usize> {
    lengths
        .iter()
        .map(|&len| (len / stride).clamp(1, frames.max(1)))
        .collect()
}

/// Per clip and channel, zero mean and unit variance over the valid frames; padding stays 0.
/// `[batch, channels, frames]` -> same shape.
pub fn standardize_over_time(x: Tensor<3>, valid_frames: &[usize]) -> Tensor<3> {
    let [b, _, frames] = x.dims();
    let device = x.device();
    let mask = valid_frame_mask(valid_frames, frames, &device);
    let counts: Vec<f32> = valid_frames.iter().map(|&v| v.max(1) as f32).collect();
    let counts = Tensor::<3>::from_data(TensorData::new(counts, [b, 1, 1]), &device);
    let mean = (x.clone() * mask.clone()).sum_dim(2) / counts.clone();
    let centred = (x - mean) * mask;
    let var = centred.clone().square().sum_dim(2) / counts;
    centred / var.add_scalar(VARIANCE_FLOOR).sqrt()
}

/// `[batch, 1, frames]`: 1 on each clip's first `valid[b]` frames, 0 on its padding.
pub fn valid_frame_mask(valid: &[usize], frames: usize, device: &Device) -> Tensor<3> {
    let mask: Vec<f32> = valid
        .iter()
        .flat_map(|&v| (0..frames).map(move |t| if t < v { 1.0 } else { 0.0 }))
        .collect();
    Tensor::<3>::from_data(TensorData::new(mask, [valid.len(), 1, frames]), device)
}

/// Average pool along time with window = stride = `s`; a trailing partial window is dropped.
/// `[batch, channels, time]` -> `[batch, channels, time / s]`.
pub fn avg_pool_time(x: Tensor<3>, s: usize) -> Tensor<3> {
    let [b, c, t] = x.dims();
    let frames = t / s;
    x.narrow(2, 0, frames * s)
        .reshape([b, c, frames, s])
        .mean_dim(3)
        .reshape([b, c, frames])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    #[test]
    fn avg_pool_time_drops_the_partial_window() {
        let device = Device::flex();
        let x = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, 3.0, 5.0, 7.0, 100.0], [1, 1, 5]),
            &device,
        );
        assert_eq!(values(avg_pool_time(x, 2)), vec![2.0, 6.0]);
    }

    #[test]
    fn pool_frames_averages_windows_row_by_row_and_drops_the_partial_one() {
        let rows = [1.0f32, 3.0, 5.0, 7.0, 100.0, 2.0, 2.0, 4.0, 8.0, -1.0];
        assert_eq!(pool_frames(&rows, 5, 2), vec![2.0, 6.0, 2.0, 6.0]);
        assert_eq!(pool_frames(&rows, 5, 1), rows.to_vec());
        assert!(pool_frames(&rows, 5, 8).is_empty());
    }

    #[test]
    fn standardize_uses_valid_frames_only_and_zeroes_padding() {
        let device = Device::flex();
        // Clip 0: frames 1, 3 valid (mean 2, sd 1) then padding; clip 1: 2, 4, 6, 8 all valid.
        let x = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, 3.0, 50.0, 50.0, 2.0, 4.0, 6.0, 8.0], [2, 1, 4]),
            &device,
        );
        let y = values(standardize_over_time(x, &[2, 4]));
        let sd1 = 5f32.sqrt(); // variance of 2, 4, 6, 8 is 5
        let expected = [-1.0, 1.0, 0.0, 0.0, -3.0 / sd1, -1.0 / sd1, 1.0 / sd1, 3.0 / sd1];
        for (a, b) in y.iter().zip(expected) {
            assert!((a - b).abs() < 1e-4, "{y:?}");
        }
    }
}
