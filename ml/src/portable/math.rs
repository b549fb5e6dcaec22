//! Transcendental functions for host-side numbers that end up in compared results (RoPE tables,
//! initial weights, sampling): one pure-Rust implementation (`libm`, ported from musl) on every
//! target, instead of std's, which calls the platform's libm.

pub use libm::{cos, cosf, exp, expf, log, logf, pow, powf, sin, sinf, sqrt, sqrtf};
