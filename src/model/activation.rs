//! Activations on plain `f32` values: branch-free so that loops over them vectorise, in place
//! and in parallel. NLReLU serves both forward passes (the tracked one keeps its slope for the
//! FIR blocks' CPU backward); tests hold these to a few ulp of the exact values.

use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

/// NLReLU, `ln(1 + beta max(0, x))` (Liu et al. 2019; the IConNet paper uses `beta = 1`), on
/// plain values, in place and in parallel, for the forward pass without a tape.
pub fn nlrelu_in_place(values: &mut [f32], beta: f32) {
    values.par_chunks_mut(1 << 14).for_each(|chunk| {
        for v in chunk {
            *v = ln_1p_nonnegative(beta * v.max(0.0));
        }
    });
}

/// NLReLU in place, returning its slope `d ln(1 + beta max(0, x)) / dx`: `beta / (1 + beta x)`
/// where `x > 0`, 0 elsewhere (as burn's `relu` then `log1p` would give), for the tracked
/// forward pass.
pub fn nlrelu_in_place_with_slope(values: &mut [f32], beta: f32) -> Vec<f32> {
    let mut slope = vec![0f32; values.len()];
    values
        .par_chunks_mut(1 << 14)
        .zip(slope.par_chunks_mut(1 << 14))
        .for_each(|(chunk, slope)| {
            for (v, d) in chunk.iter_mut().zip(slope) {
                let x = beta * v.max(0.0);
                *d = if x > 0.0 { beta / (1.0 + x) } else { 0.0 };
                *v = ln_1p_nonnegative(x);
            }
        });
    slope
}

/// `ln(1 + x)` for finite `x >= 0`, within a few ulp, without calls or branches so that loops
/// over it vectorise (glibc's `log1pf` took 9 % of a 30 s PCG analysis).
///
/// `u = 1 + x` is split as `2^e m` with `m` in `[sqrt(1/2), sqrt(2))` (the exponent trick of
/// musl's `logf`); `ln m = 2 atanh(s)`, `s = (m - 1)/(m + 1)`, `|s| <= 0.172`, by its series to
/// `s^9`; the rounding error of `1 + x` is added back as `(x - (u - 1)) / u`.
#[inline(always)]
fn ln_1p_nonnegative(x: f32) -> f32 {
    const SQRT_HALF_BITS: u32 = 0x3f35_04f3;
    let u = 1.0 + x;
    let lost = x - (u - 1.0);
    let offset = u.to_bits().wrapping_sub(SQRT_HALF_BITS);
    let e = ((offset as i32) >> 23) as f32;
    let m = f32::from_bits((offset & 0x007f_ffff) + SQRT_HALF_BITS);
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let series = 1.0 + z * (1.0 / 3.0 + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * (1.0 / 9.0))));
    e * std::f32::consts::LN_2 + 2.0 * s * series + lost / u
}

/// `tanh` of a tensor that no autodiff tape tracks, through [`tanh_in_place`]; the values make
/// one round trip to the host (burn's flex `tanh` evaluates one value at a time, 3 ms of a 30 s
/// PCG analysis).
pub fn tanh_untracked<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let dims = x.dims();
    let mut values: Vec<f32> = x.into_data().try_to_vec().expect("f32 activations");
    tanh_in_place(&mut values);
    Tensor::from_data(TensorData::new(values, dims), &device)
}

/// `tanh` of a tensor on an autodiff tape: the value from [`tanh_in_place`], and the slope
/// `1 - tanh^2` as a constant factor on the input's gradient (`y = tanh(x) + (x - stop(x)) s`,
/// exact forward since `x - stop(x)` is 0). Burn's own `tanh` calls glibc's scalar `tanhf` on
/// every value in the forward pass and again in its backward.
pub fn tanh_tracked<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let dims = x.dims();
    let mut values: Vec<f32> = x.clone().into_data().try_to_vec().expect("f32 activations");
    tanh_in_place(&mut values);
    let slope: Vec<f32> = values.par_iter().map(|y| 1.0 - y * y).collect();
    let value = Tensor::from_data(TensorData::new(values, dims), &device);
    let slope = Tensor::from_data(TensorData::new(slope, dims), &device);
    value + (x.clone() - x.detach()) * slope
}

/// `tanh` in place and in parallel.
pub fn tanh_in_place(values: &mut [f32]) {
    values.par_chunks_mut(1 << 14).for_each(|chunk| {
        for v in chunk {
            *v = tanh_branchless(*v);
        }
    });
}

/// `tanh(x)` for finite `x`, within a few ulp, without calls or branches.
///
/// For `|x| < 1/4` the odd Taylor series to `x^11` (the next term is below 1e-9 relative);
/// otherwise `(1 - t) / (1 + t)` with `t = e^(-2|x|) <= e^(-1/2)`, where `1 - t >= 0.39` cannot
/// cancel. Both are computed and one is selected, which vectorises. `|x|` is capped at 9, where
/// `tanh` already rounds to 1.
#[inline(always)]
fn tanh_branchless(x: f32) -> f32 {
    let a = x.abs().min(9.0);
    let z = a * a;
    let series = a
        * (1.0
            + z * (-1.0 / 3.0
                + z * (2.0 / 15.0 + z * (-17.0 / 315.0 + z * (62.0 / 2835.0 + z * (-1382.0 / 155_925.0))))));
    let t = exp_nonpositive(-2.0 * a);
    let ratio = (1.0 - t) / (1.0 + t);
    let magnitude = if a < 0.25 { series } else { ratio };
    magnitude.copysign(x)
}

/// `e^y` for `y` in `[-88, 0]`: `y = k ln 2 + r` with `|r| <= ln 2 / 2` (Cody-Waite split of
/// `ln 2`), `e^r` by its Taylor series to `r^7` (error below 6e-9 relative), `2^k` built in the
/// exponent bits.
#[inline(always)]
fn exp_nonpositive(y: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and removing 1.5 * 2^23 rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let k = (y * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((k as i32 + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f(x)` is within `ulps` f32 ulp of the f64 value `exact(x)` for every `x`.
    fn assert_within_ulp(
        name: &str,
        xs: &[f32],
        ulps: f64,
        f: impl Fn(f32) -> f32,
        exact: impl Fn(f64) -> f64,
    ) {
        for &x in xs {
            let want = exact(x as f64);
            let got = f(x) as f64;
            let ulp = (want as f32).abs().max(f32::MIN_POSITIVE) as f64 * f32::EPSILON as f64;
            assert!(
                (got - want).abs() <= ulps * ulp,
                "{name}({x}) = {got}, exact {want}"
            );
        }
    }

    #[test]
    fn ln_1p_matches_f64_from_denormal_to_huge() {
        // Log-spaced over 1e-30 .. 1e30, plus the edges of the mantissa split and of 1 + x.
        let mut xs: Vec<f32> = (0..=6000).map(|i| 10f32.powf(-30.0 + i as f32 * 0.01)).collect();
        xs.extend([
            0.0,
            f32::MIN_POSITIVE,
            1e-45,
            0.414_213_5,
            0.414_213_6,
            1.0,
            2.0,
            f32::EPSILON,
        ]);
        assert_within_ulp("ln_1p", &xs, 3.0, ln_1p_nonnegative, f64::ln_1p);
    }

    #[test]
    fn nlrelu_in_place_is_log1p_of_the_positive_part() {
        let mut plain = vec![-2.0f32, 0.0, std::f32::consts::E - 1.0];
        nlrelu_in_place(&mut plain, 1.0);
        assert!(plain[0] == 0.0 && plain[1] == 0.0 && (plain[2] - 1.0).abs() < 1e-6);
        // beta = 100: ln(1 + 100 * 0.0099) = ln(1.99); ln(1 + 100 * (e^2 - 1) / 100) = 2.
        let mut scaled = vec![-2.0f32, 0.0099, (std::f32::consts::E.powi(2) - 1.0) / 100.0];
        nlrelu_in_place(&mut scaled, 100.0);
        assert!(
            scaled[0] == 0.0 && (scaled[1] - 1.99f32.ln()).abs() < 1e-6 && (scaled[2] - 2.0).abs() < 1e-6
        );
    }

    #[test]
    fn nlrelu_slope_is_one_over_one_plus_x_on_the_positive_part() {
        let mut v = vec![-2.0f32, 0.0, 1.0, 3.0];
        let slope = nlrelu_in_place_with_slope(&mut v, 1.0);
        assert_eq!(slope, vec![0.0, 0.0, 0.5, 0.25]);
        assert!(
            v[0] == 0.0 && v[1] == 0.0 && (v[2] - 2f32.ln()).abs() < 1e-7 && (v[3] - 4f32.ln()).abs() < 1e-6
        );
        // beta = 10 at x = 0.1 and 0.3: slopes 10 / 2 = 5 and 10 / 4 = 2.5, values ln 2 and ln 4.
        let mut v = vec![-1.0f32, 0.1, 0.3];
        let slope = nlrelu_in_place_with_slope(&mut v, 10.0);
        assert_eq!(slope, vec![0.0, 5.0, 2.5]);
        assert!(v[0] == 0.0 && (v[1] - 2f32.ln()).abs() < 1e-6 && (v[2] - 4f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn tanh_matches_f64_over_the_whole_range() {
        // Dense over -12 .. 12 (both branches and the switch at 1/4), log-spaced small values of
        // both signs, and the edges.
        let mut xs: Vec<f32> = (-120_000..=120_000).map(|i| i as f32 * 1e-4).collect();
        xs.extend((0..=4000).flat_map(|i| {
            let x = 10f32.powf(-40.0 + i as f32 * 0.01);
            [x, -x]
        }));
        xs.extend([
            0.0,
            -0.0,
            0.25,
            0.249_999_98,
            f32::MIN_POSITIVE,
            1e-45,
            9.0,
            30.0,
            -1e30,
        ]);
        assert_within_ulp("tanh", &xs, 3.0, tanh_branchless, f64::tanh);
        assert!(tanh_branchless(-0.0).is_sign_negative());
    }

    #[test]
    fn exp_matches_f64_down_to_the_tanh_range() {
        for i in 0..=20_000 {
            let y = -(i as f32) * 1e-3;
            let exact = (y as f64).exp();
            let got = exp_nonpositive(y) as f64;
            assert!(
                (got - exact).abs() <= 2.0 * exact * f32::EPSILON as f64,
                "exp({y}) = {got}, exact {exact}"
            );
        }
    }

    #[test]
    fn tanh_tracked_gives_tanh_and_its_slope() {
        // d tanh(x)/dx = 1 - tanh(x)^2: 1 at 0, 1 - tanh(1)^2 = 0.419974 at +-1, 0.070651 at 2.
        let device = burn::tensor::Device::flex().autodiff();
        let x = Tensor::<1>::from_data(TensorData::new(vec![-1.0f32, 0.0, 1.0, 2.0], [4]), &device)
            .require_grad();
        let y = tanh_tracked(x.clone());
        let values: Vec<f32> = y.clone().into_data().try_to_vec().unwrap();
        for (got, x) in values.iter().zip([-1.0f64, 0.0, 1.0, 2.0]) {
            assert!((*got as f64 - x.tanh()).abs() < 1e-7, "{values:?}");
        }
        let grads = (y * Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0, 1.0, 1.0], [4]), &device))
            .sum()
            .backward();
        let slope: Vec<f32> = x.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
        let expected = [0.419_974_3, 2.0, 0.419_974_3, 0.070_650_8];
        for (got, want) in slope.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{slope:?}");
        }
    }

    #[test]
    fn tanh_untracked_keeps_shape_and_values() {
        let device = burn::tensor::Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(vec![-1.0f32, 0.0, 0.5, 3.0], [2, 2]), &device);
        let y = tanh_untracked(x.clone());
        assert_eq!(y.dims(), [2, 2]);
        let expected: Vec<f32> = burn::tensor::activation::tanh(x)
            .into_data()
            .try_to_vec()
            .unwrap();
        let got: Vec<f32> = y.into_data().try_to_vec().unwrap();
        for (a, b) in got.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{got:?}");
        }
    }
}
