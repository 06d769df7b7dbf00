//! Gradients reach the band edges and the window, and move a band where the loss wants it.

mod common;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{classes, noise, tone};
use iconnet::dsp::fftconv::{BandEnergyShape, band_energy_backward, band_energy_forward};
use iconnet::model::fir_bank::FirBank;
use iconnet::model::{AudioBatch, ContextConfig, FirBlockConfig, IConNet, ModelConfig, PoolingKind};

fn finite_nonzero(t: Tensor<2>) -> bool {
    let v: Vec<f32> = t.into_data().try_to_vec().unwrap();
    v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0)
}

/// Gradients of the cross-entropy of "noise is class 0, a 1.7 kHz tone is class 1".
fn noise_vs_tone_gradients(model: &IConNet, seed: u64) -> GradientsParams {
    let device = model.device();
    let a = noise(2000, seed);
    let b = tone(0.1, 1700);
    let batch = AudioBatch::from_clips(&[&a, &b], 2000);
    let out = model.forward(&batch);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(out.logits, targets);
    model.backward(loss, out.tape)
}

#[test]
fn gradients_reach_every_filter_parameter_of_both_blocks() {
    let device = Device::flex().autodiff();
    let config = ModelConfig::named("tiny", 8000, classes(2), PoolingKind::Attention).unwrap();
    let model = IConNet::new(&config, &device);
    let grads = noise_vs_tone_gradients(&model, 1);
    for (i, block) in model.blocks.iter().enumerate() {
        let bank = &block.bank;
        let f_low = grads
            .get::<2>(bank.f_low.id)
            .unwrap_or_else(|| panic!("block {i}: no f_low gradient"));
        let bw = grads
            .get::<2>(bank.bandwidth.id)
            .unwrap_or_else(|| panic!("block {i}: no bandwidth gradient"));
        let phi = grads
            .get::<3>(bank.phi.id)
            .unwrap_or_else(|| panic!("block {i}: no phi gradient"));
        assert!(
            finite_nonzero(f_low),
            "block {i}: f_low gradient zero or not finite"
        );
        assert!(
            finite_nonzero(bw),
            "block {i}: bandwidth gradient zero or not finite"
        );
        let [h, c, p] = phi.dims();
        assert!(
            finite_nonzero(phi.reshape([h * c, p])),
            "block {i}: phi gradient zero or not finite"
        );
        // The initial values are constants.
        assert!(grads.get::<2>(bank.f_low_init.id).is_none());
    }
    // The head gets its gradients too.
    assert!(grads.get::<2>(model.head.output.weight.id).is_some());
}

#[test]
fn gradients_pass_through_the_temporal_context_to_the_filters() {
    let device = Device::flex().autodiff();
    let mut config = ModelConfig::named("tiny", 8000, classes(2), PoolingKind::Attention).unwrap();
    config.context = Some(ContextConfig {
        pool: 2,
        channels: 6,
        kernel: 3,
        dilations: vec![1, 2],
    });
    let model = IConNet::new(&config, &device);
    let grads = noise_vs_tone_gradients(&model, 3);
    let context = model.context.as_ref().unwrap();
    for (i, conv) in context.convs.iter().enumerate() {
        let g = grads
            .get::<3>(conv.weight.id)
            .unwrap_or_else(|| panic!("context layer {i}: no gradient"));
        let [o, c, k] = g.dims();
        assert!(finite_nonzero(g.reshape([o, c * k])), "context layer {i}");
    }
    for (i, block) in model.blocks.iter().enumerate() {
        let f_low = grads
            .get::<2>(block.bank.f_low.id)
            .unwrap_or_else(|| panic!("block {i}: no f_low gradient through the context"));
        assert!(finite_nonzero(f_low), "block {i}");
    }
}

#[test]
fn gradient_steps_move_a_band_towards_the_energy_the_loss_wants() {
    // One filter starting at [0.12, 0.17] cycles/sample; the signal is band-limited noise
    // around 0.24 (a pure tone's stop-band ripples would trap any local method).
    // Maximising the filter's output energy must raise the band.
    let device = Device::flex().autodiff();
    let taps = 31;
    let config = FirBlockConfig {
        filters: 1,
        in_channels: 1,
        taps,
        stride: 4,
        window_terms: 2,
        mel_groups: 1,
        learn_bands: true,
        shared_window: false,
        min_bandwidth: 0.01,
    };
    let mut bank = FirBank::new(&config, 8000.0, &device);
    bank.f_low = burn::module::Param::from_tensor(Tensor::<2>::from_data(
        TensorData::new(vec![0.12f32], [1, 1]),
        &device,
    ));
    bank.bandwidth = burn::module::Param::from_tensor(Tensor::<2>::from_data(
        TensorData::new(vec![0.04f32], [1, 1]),
        &device,
    ));
    let phases = noise(41, 9);
    let x: Vec<f32> = (0..4000)
        .map(|t| {
            (0..41)
                .map(|i| {
                    let f = 0.22 + 0.04 * i as f32 / 40.0;
                    (2.0 * std::f32::consts::PI * (f * t as f32 + phases[i])).sin() / 6.0
                })
                .sum()
        })
        .collect();
    let shape = BandEnergyShape {
        batch: 1,
        in_channels: 1,
        time: x.len(),
        filters: 1,
        taps,
        stride: 4,
    };
    let start = bank.bands()[0];
    let energy_of = |bank: &FirBank| -> f32 {
        let k: Vec<f32> = bank.kernels().into_data().try_to_vec().unwrap();
        band_energy_forward(&x, &k, shape, false).0.iter().sum()
    };
    let e0 = energy_of(&bank);
    for _ in 0..40 {
        let kernels = bank.kernels();
        let k: Vec<f32> = kernels.clone().into_data().try_to_vec().unwrap();
        let (e, saved) = band_energy_forward(&x, &k, shape, true);
        // loss = -mean(energy): dL/de = -1/n. Sign steps of 0.004 (Adam-like early steps): the
        // gradient is tiny while the tone is far outside the band.
        let g_e = vec![-1.0 / e.len() as f32; e.len()];
        let (g_k, _) = band_energy_backward(&saved.unwrap(), &g_e, false);
        let g_k = Tensor::<3>::from_data(TensorData::new(g_k, [1, 1, taps]), &device);
        let grads = (kernels * g_k).sum().backward();
        let step = |p: &burn::module::Param<Tensor<2>>| {
            let g = p.val().grad(&grads).expect("band gradient");
            burn::module::Param::from_tensor(
                (p.val().inner() - g.inner().sign().mul_scalar(0.004))
                    .autodiff()
                    .require_grad(),
            )
        };
        let (f_low, bandwidth) = (step(&bank.f_low), step(&bank.bandwidth));
        bank.f_low = f_low;
        bank.bandwidth = bandwidth;
    }
    let end = bank.bands()[0];
    let centre = |b: iconnet::model::fir_bank::Band| (b.f_low + b.f_high) / 2.0;
    assert!(
        centre(end) > centre(start) + 0.02,
        "band centre {} -> {}",
        centre(start),
        centre(end)
    );
    eprintln!(
        "band [{:.3}, {:.3}] -> [{:.3}, {:.3}]",
        start.f_low, start.f_high, end.f_low, end.f_high
    );
    assert!(
        end.f_low < 0.24 && end.f_high > 0.24,
        "the band must now pass the tone"
    );
    assert!(energy_of(&bank) > 2.0 * e0, "energy {e0} -> {}", energy_of(&bank));
}

/// Window coefficients moved off Hann's zero end taps (`phi_0 - phi_1 + phi_2 = 0`). With them, a
/// second-block band whose response to its smooth input nearly vanishes has `y ~ 0` everywhere,
/// so `|y|` sits on its kink along any direction that leaks the input through the end taps: a
/// central difference there averages two one-sided slopes. That was the cause of both tests'
/// rare failures (about 1 run in 50).
fn off_hann_end_taps(phi: Tensor<3>) -> Tensor<3> {
    phi.add_scalar(0.03).detach().require_grad()
}

/// `input_gradient` (used by integrated gradients) agrees with a finite-difference directional
/// derivative of the class score, through both FIR blocks and the pooled-input path.
#[test]
fn input_gradient_matches_finite_differences() {
    input_gradient_agrees_with_finite_differences("paper", 2e-2, |_| {});
}

/// The same with the speech options: NLReLU's `beta` at 100 (whose slope `beta / (1 + beta x)`
/// the backward of both blocks must carry), bands relative to the frame, and pooling over
/// active frames only. The step is 4x smaller than the paper variant's: NLReLU's curvature grows
/// with `beta^2`, and at 2e-2 the central difference's own truncation error broke the tolerance
/// for 2 of 30 random initialisations (worst 1.26x the bound; at 5e-3: 0 of 30, worst 0.16x).
#[test]
fn input_gradient_matches_finite_differences_with_speech_options() {
    input_gradient_agrees_with_finite_differences("speech", 5e-3, |c| {
        c.nlrelu_beta = 100.0;
        c.relative_bands = true;
        c.active_frames_db = Some(30.0);
        c.pooling_std = true;
    });
}

fn input_gradient_agrees_with_finite_differences(name: &str, eps: f32, configure: impl Fn(&mut ModelConfig)) {
    let device = Device::flex().autodiff();
    let mut config = ModelConfig::named("tiny", 8000, classes(3), PoolingKind::Attention).unwrap();
    configure(&mut config);
    config.validate().unwrap();
    let mut model = IConNet::new(&config, &device).without_dropout();
    for block in &mut model.blocks {
        block.bank.phi = block.bank.phi.clone().map(off_hann_end_taps);
    }
    let x: Vec<f32> = noise(2400, 7)
        .iter()
        .zip(tone(0.05, 2400))
        .map(|(n, t)| n + 0.5 * t)
        .collect();
    let class = 1;
    let score = |clip: &[f32]| -> f64 {
        let out = model.forward(&AudioBatch::from_clips(&[clip], 2400));
        let v: Vec<f32> = out.logits.into_data().try_to_vec().unwrap();
        v[class] as f64
    };
    let g = model
        .input_gradient(&AudioBatch::from_clips(&[&x], 2400), class)
        .unwrap();
    assert_eq!(g.len(), x.len());
    for seed in [11, 12, 13] {
        let v = noise(x.len(), seed);
        let norm = v.iter().map(|a| (a * a) as f64).sum::<f64>().sqrt();
        let v: Vec<f32> = v.iter().map(|a| (*a as f64 / norm) as f32).collect();
        let plus: Vec<f32> = x.iter().zip(&v).map(|(a, b)| a + eps * b).collect();
        let minus: Vec<f32> = x.iter().zip(&v).map(|(a, b)| a - eps * b).collect();
        let numeric = (score(&plus) - score(&minus)) / (2.0 * eps as f64);
        let analytic: f64 = g.iter().zip(&v).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
        assert!(
            (numeric - analytic).abs() <= 0.05 * numeric.abs().max(analytic.abs()) + 1e-3,
            "{name}, seed {seed}: finite difference {numeric} vs input gradient {analytic}"
        );
    }
}

/// Grad-CAM is non-negative, one value per valid frame, and repeatable (dropout is off).
#[test]
fn grad_cam_is_deterministic_and_covers_valid_frames() {
    let device = Device::flex().autodiff();
    let config = ModelConfig::named("tiny", 8000, classes(2), PoolingKind::Attention).unwrap();
    let model = IConNet::new(&config, &device).without_dropout();
    let x = noise(3000, 3);
    let batch = AudioBatch::from_clips(&[&x], 3000);
    let a = model.grad_cam(&batch, 0).unwrap();
    let b = model.grad_cam(&batch, 0).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[0].len(), 3000 / config.total_stride());
    assert!(a[0].iter().all(|v| *v >= 0.0 && v.is_finite()));
}

/// Grad-CAM from a pooling input kept by an inference pass (another device, no autodiff)
/// equals Grad-CAM computed on the autodiff model, for every class and for two clips of
/// different lengths; the kept pass's logits are the model's.
#[test]
fn grad_cam_from_a_kept_pooling_input_matches_grad_cam() {
    let device = Device::flex().autodiff();
    let mut config = ModelConfig::named("tiny", 8000, classes(3), PoolingKind::Attention).unwrap();
    config.pooling_std = true;
    // The same weights on flex (inference) and on flex with autodiff, through a checkpoint.
    let made = IConNet::new(&config, &Device::flex());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.iconnet");
    let card = iconnet::model::checkpoint::ModelCard::new("tiny", &made);
    iconnet::model::checkpoint::save(&made, &card, &path).unwrap();
    let (inference, _) = iconnet::model::checkpoint::load(&path, &Device::flex()).unwrap();
    let (model, _) = iconnet::model::checkpoint::load(&path, &device).unwrap();
    let model = model.without_dropout();
    let (x, y) = (noise(6000, 21), noise(3500, 22));
    let batch = AudioBatch::from_clips(&[&x, &y], 3000);
    let (forward, kept) = inference.forward_keeping_pooling_input(&batch);
    assert_eq!(kept.valid_frames, forward.valid_frames);
    let logits: Vec<f32> = forward.logits.into_data().try_to_vec().unwrap();
    let alone: Vec<f32> = model.forward(&batch).logits.into_data().try_to_vec().unwrap();
    for (a, b) in logits.iter().zip(&alone) {
        assert!((a - b).abs() < 1e-5, "{logits:?} against {alone:?}");
    }
    for class in 0..3 {
        let from_kept = model.grad_cam_from(&kept, class).unwrap();
        let direct = model.grad_cam(&batch, class).unwrap();
        assert_eq!(from_kept.len(), 2);
        for (clip, (a, b)) in from_kept.iter().zip(&direct).enumerate() {
            assert_eq!(a.len(), b.len());
            for (u, v) in a.iter().zip(b) {
                assert!(
                    (u - v).abs() <= 1e-5 * (1.0 + v.abs()),
                    "class {class}, clip {clip}: {u} against {v}"
                );
            }
        }
    }
    assert!(model.grad_cam_from(&kept, 3).is_err());
    assert!(
        inference.grad_cam_from(&kept, 0).is_err(),
        "needs an autodiff device"
    );
}

/// Frames the pooling leaves out (silence, with `active_frames_db`) get no Grad-CAM weight:
/// they cannot have moved the score, though their features are not zero. Mean pooling, as in
/// the bundled emotion model.
#[test]
fn grad_cam_is_zero_on_frames_the_pooling_leaves_out() {
    let device = Device::flex().autodiff();
    let mut config = ModelConfig::named("tiny", 8000, classes(2), PoolingKind::Mean).unwrap();
    config.pooling_std = true;
    config.active_frames_db = Some(30.0);
    let model = IConNet::new(&config, &device).without_dropout();
    // One second of noise, then one second 60 dB down.
    let mut x = noise(8000, 4);
    x.extend(noise(8000, 5).iter().map(|v| v * 1e-3));
    let batch = AudioBatch::from_clips(&[&x], x.len());
    let weights: Vec<f32> = model.forward(&batch).attention.into_data().try_to_vec().unwrap();
    let both: Vec<Vec<f32>> = (0..2)
        .map(|class| model.grad_cam(&batch, class).unwrap().remove(0))
        .collect();
    let left_out: Vec<usize> = (0..weights.len()).filter(|&t| weights[t] == 0.0).collect();
    assert!(
        left_out.len() > weights.len() / 3,
        "{} frames left out",
        left_out.len()
    );
    for cam in &both {
        assert_eq!(cam.len(), weights.len());
        assert!(left_out.iter().all(|&t| cam[t] == 0.0));
    }
    // Guards against a gate that zeroes everything. (Not a theorem for raw logits, but both
    // classes' maps vanishing on every pooled frame would take a degenerate initialisation.)
    assert!(both.iter().flatten().any(|&v| v > 0.0));
}

/// The training gradients of every filter parameter (`IConNet::backward`: the CPU backward of
/// both FIR blocks, NLReLU, the stacked and pooled paths, statistics pooling) agree with
/// central differences of the loss along each gradient (the steepest direction, where the
/// slope stands well above the f32 noise of the loss). Two clips of different lengths
/// exercise the padding masks.
#[test]
fn filter_parameter_gradients_match_finite_differences() {
    let device = Device::flex().autodiff();
    let mut config = ModelConfig::named("tiny", 8000, classes(2), PoolingKind::Attention).unwrap();
    config.pooling_std = true;
    // A linear head: a step across a hidden ReLU's kink would bias the central difference.
    config.head_hidden = Vec::new();
    let mut model = IConNet::new(&config, &device).without_dropout();
    // Away from the kinks of `f_low = |a|` at 0 and of the cap `f_high <= 0.5`, where a central
    // difference averages two one-sided slopes.
    for block in &mut model.blocks {
        let bank = &mut block.bank;
        bank.f_low = bank
            .f_low
            .clone()
            .map(|a| a.mul_scalar(0.8).add_scalar(0.02).detach().require_grad());
        bank.bandwidth = bank
            .bandwidth
            .clone()
            .map(|b| b.mul_scalar(0.7).detach().require_grad());
        bank.phi = bank.phi.clone().map(off_hann_end_taps);
    }
    // Broadband clips: a pure tone near a band edge makes the loss strongly curved along f_low.
    let a = noise(2400, 5);
    let b: Vec<f32> = noise(1700, 6).iter().map(|x| 0.5 * x).collect();
    let loss_of = |m: &IConNet| {
        let out = m.forward(&AudioBatch::from_clips(&[&a, &b], 2400));
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(out.logits, targets);
        (loss, out.tape)
    };
    let (loss, tape) = loss_of(&model);
    let grads = model.backward(loss, tape);
    let loss_value = |m: &IConNet| loss_of(m).0.into_scalar::<f32>() as f64;
    for block in 0..model.blocks.len() {
        for param in ["f_low", "bandwidth", "phi"] {
            let bank = &model.blocks[block].bank;
            let g: Vec<f32> = match param {
                "f_low" => grads.get::<2>(bank.f_low.id).unwrap().into_data(),
                "bandwidth" => grads.get::<2>(bank.bandwidth.id).unwrap().into_data(),
                _ => grads.get::<3>(bank.phi.id).unwrap().into_data(),
            }
            .try_to_vec()
            .unwrap();
            // Kernels are linear in phi but not in the band edges: along the edges a step
            // small enough for the curvature, along phi one large enough for the f32 noise.
            // A step of 3e-4 along the edges failed on 1 initialisation in 20. The quarter
            // step is for the rare kink of some |y| within the step (1 run in 300 at 1e-4
            // alone; with it 1 in 400 still fails, its differences converging to the backward
            // as the step shrinks).
            let eps = if param == "phi" { 3e-3f32 } else { 1e-4 };
            let norm = g.iter().map(|x| (x * x) as f64).sum::<f64>().sqrt();
            assert!(norm > 1e-3, "block {block} {param}: gradient norm {norm}");
            let shifted = |sign: f32, eps: f32| {
                let step: Vec<f32> = g.iter().map(|x| sign * eps * (*x as f64 / norm) as f32).collect();
                let mut m = model.clone();
                let bank = &mut m.blocks[block].bank;
                match param {
                    "f_low" => {
                        let d = Tensor::<2>::from_data(TensorData::new(step, bank.f_low.dims()), &device);
                        bank.f_low = bank.f_low.clone().map(|t| t + d);
                    }
                    "bandwidth" => {
                        let d = Tensor::<2>::from_data(TensorData::new(step, bank.bandwidth.dims()), &device);
                        bank.bandwidth = bank.bandwidth.clone().map(|t| t + d);
                    }
                    _ => {
                        let d = Tensor::<3>::from_data(TensorData::new(step, bank.phi.dims()), &device);
                        bank.phi = bank.phi.clone().map(|t| t + d);
                    }
                }
                loss_value(&m)
            };
            let central = |eps: f32| (shifted(1.0, eps) - shifted(-1.0, eps)) / (2.0 * eps as f64);
            let agrees = |numeric: f64| (numeric - norm).abs() <= 0.04 * norm + 6e-4;
            let numeric = central(eps);
            eprintln!("block {block} {param}: central difference {numeric:.6}, backward {norm:.6}");
            if !agrees(numeric) {
                let quarter = central(eps / 4.0);
                assert!(
                    agrees(quarter),
                    "block {block} {param}: central differences {numeric} (step {eps}) and {quarter} (step {}) vs backward {norm}",
                    eps / 4.0
                );
            }
        }
    }
}
