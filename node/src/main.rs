//! `blyan-node`: the Blyan validator and full node.
#![warn(missing_docs)]
// `sc_cli::Error` and `sc_service::Error` are polkadot-sdk's error types, returned by the APIs the
// node is built from; they are large, but boxing them would only add conversions at every call.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
	command::run()
}
