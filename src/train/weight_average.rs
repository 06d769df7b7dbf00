//! Exponential moving average of a model's weights (Polyak averaging).
//!
//! On small sets (320 heart recordings) the model moves along its ROC curve from one epoch to
//! the next: sensitivity and specificity swap by 0.4 between neighbouring epochs. The average
//! of the last few hundred steps' weights sits in the middle of that walk; validation then
//! chooses among averaged models instead of among single steps.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

use crate::model::IConNet;

/// The running average of every float parameter, in the order [`Module::visit`] gives them.
pub struct WeightAverage {
    decay: f64,
    updates: usize,
    values: Vec<Vec<f32>>,
}

impl WeightAverage {
    /// An average over roughly the last `horizon_steps` steps (`decay = 1 - 1/horizon`).
    pub fn over_steps(horizon_steps: f64) -> Self {
        Self {
            decay: 1.0 - 1.0 / horizon_steps.max(1.0),
            updates: 0,
            values: Vec::new(),
        }
    }

    /// Folds `model`'s current weights in. Early on the decay is `(1 + n) / (10 + n)` after `n`
    /// updates when that is smaller, so the first weights do not dominate a long horizon.
    pub fn update(&mut self, model: &IConNet) {
        let mut current = Vec::new();
        model.visit(&mut Collect { out: &mut current });
        if self.values.is_empty() {
            self.values = current;
        } else {
            let n = self.updates as f64;
            let decay = self.decay.min((1.0 + n) / (10.0 + n)) as f32;
            for (avg, new) in self.values.iter_mut().zip(&current) {
                blend(avg, new, decay);
            }
        }
        self.updates += 1;
    }

    /// `model` with the averaged weights (the model itself if nothing was averaged yet).
    pub fn apply(&self, model: IConNet) -> IConNet {
        if self.values.is_empty() {
            return model;
        }
        model.map(&mut Write {
            values: &self.values,
            next: 0,
        })
    }
}

/// `avg = decay avg + (1 - decay) new`, written as a step towards `new` so that a value that
/// does not change (the initial band edges a model keeps for comparison) stays bit-exact.
fn blend(avg: &mut [f32], new: &[f32], decay: f32) {
    for (a, n) in avg.iter_mut().zip(new) {
        *a += (1.0 - decay) * (n - *a);
    }
}

struct Collect<'a> {
    out: &'a mut Vec<Vec<f32>>,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 parameters");
        self.out.push(values);
    }
}

struct Write<'a> {
    values: &'a [Vec<f32>],
    next: usize,
}

impl ModuleMapper for Write<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let values = &self.values[self.next];
        self.next += 1;
        param.map(|tensor| {
            let (dims, device) = (tensor.dims(), tensor.device());
            Tensor::from_data(TensorData::new(values.clone(), dims), &device)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, PoolingKind};
    use burn::tensor::Device;

    fn tiny(device: &Device) -> IConNet {
        let config =
            ModelConfig::named("tiny", 8000, vec!["a".into(), "b".into()], PoolingKind::Attention).unwrap();
        IConNet::new(&config, device)
    }

    fn params(model: &IConNet) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        model.visit(&mut Collect { out: &mut out });
        out
    }

    #[test]
    fn blend_follows_the_decay() {
        let mut avg = [1.0f32, 2.0];
        blend(&mut avg, &[3.0, 6.0], 0.75);
        assert_eq!(avg, [1.5, 3.0]);
    }

    #[test]
    fn averages_two_models_with_the_warm_up_decay() {
        let device = Device::flex();
        let (first, second) = (tiny(&device), tiny(&device));
        let mut average = WeightAverage::over_steps(1000.0);
        average.update(&first);
        // Second update: decay min(0.999, (1 + 1) / (10 + 1)) = 2/11.
        average.update(&second);
        let averaged = params(&average.apply(tiny(&device)));
        let (a, b) = (params(&first), params(&second));
        assert_eq!(averaged.len(), a.len());
        let d = 2.0f32 / 11.0;
        for ((avg, a), b) in averaged.iter().zip(&a).zip(&b) {
            for ((v, x), y) in avg.iter().zip(a).zip(b) {
                assert!((v - (d * x + (1.0 - d) * y)).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn an_unchanging_model_is_its_own_average() {
        let device = Device::flex();
        let model = tiny(&device);
        let mut average = WeightAverage::over_steps(4.0);
        for _ in 0..3 {
            average.update(&model);
        }
        assert_eq!(params(&average.apply(model.clone())), params(&model));
        assert_eq!(
            params(&WeightAverage::over_steps(4.0).apply(model.clone())),
            params(&model)
        );
    }
}
