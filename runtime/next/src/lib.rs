//! The Blyan runtime with `spec_version` one higher than `blyan-runtime`'s, and nothing else
//! changed: the code a runtime-upgrade test proposes through governance (`set_code`).
//!
//! Natively this crate only exposes the wasm's path and bytes ([`WASM_BINARY`]); the wasm itself
//! is `blyan-runtime` built with its `next-spec-version` feature, re-exported from here so the
//! runtime's API entry points are linked in.
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(not(feature = "std"))]
pub use blyan_runtime;

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));
