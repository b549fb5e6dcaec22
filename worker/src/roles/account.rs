//! Account role: bond as a worker or verifier (capabilities read from the machine), unbond and
//! withdraw, read balances, import a key.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;

use super::{parse_account, usage, Context};
use crate::{
	chain::{self, bly},
	config,
	ml::device::{self, BackendKind},
};

#[derive(Subcommand)]
pub enum Command {
	/// Bond and declare capabilities as a worker (and/or as a verifier with --verifier).
	Register {
		/// Bond in BLY.
		#[arg(long, default_value_t = 100)]
		bond: u64,
		/// Register as a verifier instead of a miner.
		#[arg(long)]
		verifier: bool,
		/// Training backends to declare, comma-separated (default: every one this machine runs).
		/// CUDA is declared only if the CUDA driver reports a GPU.
		#[arg(long, value_enum, value_delimiter = ',')]
		backends: Option<Vec<BackendKind>>,
		/// Bond even if the self-test fails (this machine would then dissent from honest
		/// verifiers and be penalised).
		#[arg(long)]
		force: bool,
	},
	/// Start unbonding (worker, or verifier with --verifier); withdraw after the unbonding period.
	Unregister {
		#[arg(long)]
		verifier: bool,
		/// Withdraw a bond whose unbonding period has passed.
		#[arg(long)]
		withdraw: bool,
	},
	/// Free and held BLY of accounts (SS58 addresses or dev secret URIs such as //Alice).
	Balance { accounts: Vec<String> },
	/// Write a new key file (mode 0600) from a secret URI read from stdin.
	KeyImport { path: PathBuf },
}

pub async fn run(command: Command, ctx: &Context) -> Result<()> {
	match command {
		Command::Register { bond, verifier, backends, force } => {
			register(ctx, bond, verifier, backends.as_deref(), force).await
		}
		Command::Unregister { verifier, withdraw } => {
			let chain = ctx.connect().await?;
			match (verifier, withdraw) {
				(false, false) => chain.unbond_worker().await?,
				(false, true) => chain.withdraw_worker().await?,
				(true, false) => chain.unregister_verifier().await?,
				(true, true) => chain.withdraw_verifier().await?,
			};
			println!("done");
			Ok(())
		}
		Command::Balance { accounts } => {
			let chain = ctx.connect_reader().await?;
			for name in accounts {
				let who = parse_account(&name)?;
				let (free, held) = chain.balance(&who).await?;
				println!("{name:<10} free {:>22}   held {:>18}", bly(free), bly(held));
			}
			Ok(())
		}
		Command::KeyImport { path } => {
			let mut secret = String::new();
			std::io::stdin().read_line(&mut secret)?;
			config::load_key(Some(secret.trim()), None)?;
			config::write_key_file(&path, secret.trim())
				.with_context(|| format!("writing {}", path.display()))?;
			println!("key written to {} (mode 0600)", path.display());
			Ok(())
		}
	}
}

async fn register(
	ctx: &Context,
	bond: u64,
	verifier: bool,
	backends: Option<&[BackendKind]>,
	force: bool,
) -> Result<()> {
	// Read from the machine, not declared: CUDA only where the driver reports a GPU; checked
	// before anything is sent.
	let gpu = device::gpu_info(0);
	let kinds = device::declarable_backends(backends, &gpu)
		.map_err(|e| usage(format!("cannot declare the CUDA backend: {e}")))?;
	// A machine that computes other bits would be penalised for it: check before bonding.
	super::self_test::gate(force).await?;
	let chain = ctx.connect().await?;
	let bond = bond as u128 * chain::BLY;
	if verifier {
		chain.register_verifier(bond).await?;
		println!("registered as a verifier with a bond of {}", bly(bond));
		return Ok(());
	}
	let mut memory_mb = ctx.settings.memory_mb;
	match &gpu {
		Ok(gpu) if kinds.contains(&BackendKind::Cuda) => {
			println!(
				"GPU 0: {} ({} MiB, compute capability {}.{})",
				gpu.name, gpu.memory_mb, gpu.compute_capability.0, gpu.compute_capability.1
			);
			memory_mb = gpu.cap_memory_mb(memory_mb);
		}
		Ok(_) => {}
		Err(e) => println!("no CUDA backend declared: {e}"),
	}
	let capabilities = chain::Capabilities {
		backends: chain::BoundedVec(kinds.iter().map(|k| super::chain_backend(*k)).collect()),
		memory_mb,
	};
	chain.register_worker(capabilities, bond).await?;
	println!("registered as a worker with a bond of {}", bly(bond));
	Ok(())
}
