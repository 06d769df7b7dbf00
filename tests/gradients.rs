//! Gradients reach the band edges and the window, and move a band where the loss wants it.

mod common;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{classes, noise, tone};
use iconnet::dsp::fftconv::{BandEnergyShape, band_energy_backward, band_energy_forward};
use iconnet::model::fir_bank::FirBank;
use iconnet::model::{AudioBatch, FirBlockConfig, IConNet, ModelConfig, PoolingKind};

fn finite_nonzero(t: Tensor<2>) -> bool {
    let v: Vec<f32> = t.into_data().try_to_vec().unwrap();
    v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0)
}

#[test]
fn gradients_reach_every_filter_parameter_of_both_blocks() {
    let device = Device::flex().autodiff();
    let config = ModelConfig::named("tiny", 8000, classes(2), PoolingKind::Attention).unwrap();
    let model = IConNet::new(&config, &device);
    let a = noise(2000, 1);
    let b = tone(0.1, 1700);
    let batch = AudioBatch::from_clips(&[&a, &b], 2000);
    let out = model.forward(&batch);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(out.logits, targets);
    let grads = model.backward(loss, out.tape);
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
