//! The worker's machine learning is the `blyan-ml` crate (the model, training, evaluation,
//! inference stages, the portable CPU backend and its self-test), re-exported here; only the GPU
//! benchmark, which drives the worker's inference stages, lives in the worker.

pub use blyan_ml::*;

#[cfg(feature = "cuda")]
pub mod gpu_check;
