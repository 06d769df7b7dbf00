//! RAdam (Liu et al. 2020), as PyTorch implements it, with L2 weight decay.

use burn::optim::{Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{Device, Tensor, TensorData};

#[derive(Clone, Debug)]
pub struct RAdam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

impl Default for RAdam {
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 1e-4,
        }
    }
}

#[derive(Clone)]
pub struct RAdamState<const D: usize> {
    pub time: usize,
    pub moment_1: Tensor<D>,
    pub moment_2: Tensor<D>,
}

impl<const D: usize> RecordState for RAdamState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "time", TensorData::new(vec![self.time as f32], [1]));
        out.push_tensor(prefix, "moment_1", self.moment_1.to_data());
        out.push_tensor(prefix, "moment_2", self.moment_2.to_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let time = src
            .take_tensor(prefix, "time")?
            .try_to_vec::<f32>()
            .ok()?
            .first()
            .copied()? as usize;
        let moment_1 = Tensor::from_data(src.take_tensor(prefix, "moment_1")?, device);
        let moment_2 = Tensor::from_data(src.take_tensor(prefix, "moment_2")?, device);
        Some(Self {
            time,
            moment_1,
            moment_2,
        })
    }
}

impl Optimizer for RAdam {
    type State<const D: usize> = RAdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let grad = if self.weight_decay > 0.0 {
            grad + tensor.clone().mul_scalar(self.weight_decay)
        } else {
            grad
        };
        let (b1, b2) = (self.beta_1, self.beta_2);
        let state = match state {
            Some(s) => RAdamState {
                time: s.time + 1,
                moment_1: s.moment_1.mul_scalar(b1) + grad.clone().mul_scalar(1.0 - b1),
                moment_2: s.moment_2.mul_scalar(b2) + grad.square().mul_scalar(1.0 - b2),
            },
            None => RAdamState {
                time: 1,
                moment_1: grad.clone().mul_scalar(1.0 - b1),
                moment_2: grad.square().mul_scalar(1.0 - b2),
            },
        };
        let t = state.time as i32;
        let bias_1 = 1.0 - (b1 as f64).powi(t);
        let b2t = (b2 as f64).powi(t);
        let rho_inf = 2.0 / (1.0 - b2 as f64) - 1.0;
        let rho_t = rho_inf - 2.0 * t as f64 * b2t / (1.0 - b2t);
        let m_hat = state.moment_1.clone().mul_scalar(1.0 / bias_1);
        let update = if rho_t > 5.0 {
            let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt();
            let denom = state
                .moment_2
                .clone()
                .mul_scalar(1.0 / (1.0 - b2t))
                .sqrt()
                .add_scalar(self.epsilon);
            (m_hat / denom).mul_scalar(rect)
        } else {
            m_hat
        };
        (tensor - update.mul_scalar(lr), Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.moment_1 = state.moment_1.to_device(device);
        state.moment_2 = state.moment_2.to_device(device);
        state
    }
}

/// One-cycle learning rate (cosine warm-up over the first 30 %, cosine anneal after), as
/// PyTorch's `OneCycleLR` with its defaults: starts at `max/25`, ends at `max/1e4`.
pub fn one_cycle_lr(step: usize, total: usize, max_lr: f64) -> f64 {
    let total = total.max(2) as f64;
    let warm = (0.3 * total).max(1.0);
    let s = step as f64;
    let cos_interp = |from: f64, to: f64, frac: f64| {
        to + (from - to) * (1.0 + (std::f64::consts::PI * frac.clamp(0.0, 1.0)).cos()) / 2.0
    };
    let start = max_lr / 25.0;
    if s < warm {
        cos_interp(start, max_lr, s / warm)
    } else {
        cos_interp(max_lr, start / 1e4, (s - warm) / (total - warm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_shape() {
        assert!((one_cycle_lr(0, 100, 1e-3) - 4e-5).abs() < 1e-12);
        assert!((one_cycle_lr(30, 100, 1e-3) - 1e-3).abs() < 1e-12);
        assert!(one_cycle_lr(99, 100, 1e-3) < 1e-5);
    }

    #[test]
    fn first_steps_are_sgd_with_momentum_then_adaptive() {
        let device = Device::flex();
        let opt = RAdam {
            weight_decay: 0.0,
            ..Default::default()
        };
        let p = Tensor::<1>::from_floats([1.0], &device);
        let g = Tensor::<1>::from_floats([0.5], &device);
        // t = 1: rho_t = 1 <= 5, update = m_hat = g.
        let (p1, state) = opt.step(0.1, p, g.clone(), None);
        let v: Vec<f32> = p1.clone().into_data().try_to_vec().unwrap();
        assert!((v[0] - 0.95).abs() < 1e-6);
        // Many steps with a constant gradient: the adaptive update tends to lr * sign(g) * rect.
        let (mut p, mut s) = (p1, state);
        for _ in 0..20 {
            let (np, ns) = opt.step(0.1, p, g.clone(), s);
            p = np;
            s = ns;
        }
        let v: Vec<f32> = p.into_data().try_to_vec().unwrap();
        assert!(v[0] < 0.95 - 0.1 * 5.0 * 0.5, "moved {}", v[0]);
    }
}
