//! Signal processing on the CPU: kernel math, FFT band-energy op, spectral baselines.

pub mod fftconv;
pub mod heart_cycle;
pub mod kernel;
pub mod memo;
pub mod spectral;
