//! Training and evaluation: datasets, splits, optimiser, metrics, loop.

pub mod augment;
pub mod dataset;
pub mod metrics;
pub mod radam;
pub mod trainer;
pub mod weight_average;
