//! The IConNet model in burn: configurations, FIR front-end, pooling, head, checkpoints.

pub mod activation;
pub mod activity;
pub mod checkpoint;
pub mod config;
pub mod context;
pub mod cycle_phases;
pub mod ensemble;
pub mod fir_bank;
pub mod head;
pub mod network;
pub mod pooling;
pub mod standardize;

pub use config::{ContextConfig, FirBlockConfig, FrontEndConfig, ModelConfig, PoolingKind};
pub use ensemble::Ensemble;
pub use network::{AudioBatch, Forward, IConNet, PoolingInput};
