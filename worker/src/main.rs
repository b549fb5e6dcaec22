//! `blyan-worker`: the command line. It only parses and dispatches: every role (in
//! [`blyan_worker::roles`]) owns its arguments and loop. Settings come from `--config` (TOML),
//! then environment variables (`BLYAN_*`) and flags. Exit codes: 0 done, 1 failed, 2 bad usage or
//! settings, 3 node unreachable or incompatible, 4 IPFS unreachable.

use std::process::ExitCode;

use anyhow::Result;
use blyan_worker::{
	chain::ChainError,
	config::ConfigError,
	content::ContentError,
	roles::{self, Context, GlobalArgs, UsageError},
	storage::StorageError,
};
use clap::{Parser, Subcommand};
use tracing::error;

#[derive(Parser)]
#[command(
	name = "blyan-worker",
	version,
	about = "Blyan miner: train, verify and pin models for Proof-of-Learning"
)]
struct Cli {
	#[command(flatten)]
	global: GlobalArgs,
	#[command(subcommand)]
	command: Command,
}

/// One entry per role; a role with several commands flattens its own list here.
#[derive(Subcommand)]
enum Command {
	#[command(flatten)]
	Account(roles::account::Command),
	#[command(flatten)]
	Miner(roles::miner::Command),
	/// Verify: evaluate assigned candidates and commit/reveal scores.
	Verify(roles::verifier::Args),
	#[command(flatten)]
	Creator(roles::creator::Command),
	#[command(flatten)]
	Federated(roles::federated::Command),
	/// Serve layers of an accepted version: the stage protocol, and the OpenAI API if the span
	/// is the whole model; announce on chain, take receipts and settle them.
	Serve(roles::server::Args),
	/// Answer the OpenAI API for a version by routing over the stages announced on chain,
	/// paying each server with receipts signed by this account.
	Gateway(roles::gateway::Args),
	/// Issue, list and revoke the API keys a gateway lets in (`gateway --api-keys FILE`).
	ApiKey(roles::api_key::Args),
	#[command(flatten)]
	Status(roles::status::Command),
	/// Check and benchmark this `cuda` build on a GPU (no chain needed): CPU-vs-GPU logits,
	/// batching, a mixed GPU+CPU pipeline, CUDA training against the CPU's, then decode and
	/// training benchmarks of Qwen3-shaped models. Writes a JSON report; fails if a check fails.
	GpuCheck(roles::gpu_check::Args),
	/// Check that this machine computes the network's bits: a fixed training, evaluation and
	/// inference workload against the golden digests in this build (no chain needed). Exit 0
	/// only on a match; `register` runs it before bonding.
	SelfTest(roles::self_test::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
	tracing_subscriber::fmt()
		.with_env_filter(
			tracing_subscriber::EnvFilter::try_from_env("BLYAN_LOG")
				.unwrap_or_else(|_| "info".into()),
		)
		.with_target(false)
		.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
		.with_writer(std::io::stderr)
		.init();
	let cli = Cli::parse();
	match run(cli).await {
		Ok(()) => ExitCode::SUCCESS,
		Err(e) => {
			error!("{e:#}");
			ExitCode::from(exit_code(&e))
		}
	}
}

async fn run(cli: Cli) -> Result<()> {
	let ctx = Context::new(cli.global)?;
	match cli.command {
		Command::Account(command) => roles::account::run(command, &ctx).await,
		Command::Miner(command) => roles::miner::run(command, &ctx).await,
		Command::Verify(args) => roles::verifier::run(args, &ctx).await,
		Command::Creator(command) => roles::creator::run(command, &ctx).await,
		Command::Federated(command) => roles::federated::run(command, &ctx).await,
		Command::Serve(args) => roles::server::run(args, &ctx).await,
		Command::Gateway(args) => roles::gateway::run(args, &ctx).await,
		Command::ApiKey(args) => roles::api_key::run(args).await,
		Command::Status(command) => roles::status::run(command, &ctx).await,
		Command::GpuCheck(args) => roles::gpu_check::run(args).await,
		Command::SelfTest(args) => roles::self_test::run(args).await,
	}
}

fn exit_code(e: &anyhow::Error) -> u8 {
	if e.downcast_ref::<ConfigError>().is_some() || e.downcast_ref::<UsageError>().is_some() {
		return 2;
	}
	if let Some(c) = e.downcast_ref::<ChainError>() {
		return if c.is_refusal() { 1 } else { 3 };
	}
	if e.downcast_ref::<StorageError>().is_some() {
		return 4;
	}
	match e.downcast_ref::<ContentError>() {
		Some(ContentError::Chain(c)) if c.is_refusal() => 1,
		Some(ContentError::Chain(_)) => 3,
		Some(ContentError::Storage(_)) => 4,
		_ => 1,
	}
}
