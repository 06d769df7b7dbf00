//! IConNet Studio: interpretable raw-waveform CNNs (Vu et al. 2024, arXiv 2405.01815) for heart
//! sounds and speech, with the views that show what the model hears.

pub mod app;
pub mod audio;
pub mod backend;
pub mod cli;
pub mod dsp;
pub mod explain;
pub mod live;
pub mod memory;
pub mod model;
pub mod train;
