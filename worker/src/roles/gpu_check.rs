//! `gpu-check`: check and benchmark a `cuda` build on a GPU, with no chain (the checks and
//! benchmarks live in [`crate::ml::gpu_check`]); `scripts/gpu-check` runs it on a GPU machine.

use std::path::PathBuf;

use anyhow::Result;

use super::usage;
use crate::ml::device::{self, ComputeDevice};

#[derive(clap::Args)]
pub struct Args {
	/// The JSON report.
	#[arg(long)]
	out: PathBuf,
	#[arg(long, default_value = "cuda:0")]
	device: ComputeDevice,
	/// The GPU's float type for this run: f32 (the checks, f32 decoding, training) or bf16.
	#[arg(long, value_enum, default_value = "f32")]
	precision: device::Precision,
	/// Shapes benchmarked (0.6b, 8b; none for no decoding benchmark).
	#[arg(long, value_delimiter = ',', default_value = "0.6b,8b")]
	shapes: Vec<String>,
	#[arg(long, default_value_t = 128)]
	prompt_tokens: usize,
	#[arg(long, default_value_t = 128)]
	decode_tokens: usize,
	/// Concurrent sessions of the aggregate benchmark, and tokens each decodes.
	#[arg(long, default_value_t = 16)]
	clients: usize,
	#[arg(long, default_value_t = 64)]
	client_tokens: usize,
	/// Only the checks, no benchmarks.
	#[arg(long)]
	checks_only: bool,
}

pub async fn run(args: Args) -> Result<()> {
	let ComputeDevice::Cuda(index) = args.device else {
		return Err(usage("gpu-check runs on a GPU: --device cuda[:N]"));
	};
	#[cfg(feature = "cuda")]
	{
		use crate::ml::gpu_check;
		use anyhow::Context as _;
		let opts = gpu_check::GpuCheckOptions {
			device: index,
			precision: args.precision,
			shapes: args.shapes,
			prompt_tokens: args.prompt_tokens.max(1),
			decode_tokens: args.decode_tokens.max(1),
			clients: args.clients.clamp(1, 64),
			client_tokens: args.client_tokens.max(1),
			checks_only: args.checks_only,
		};
		let report =
			tokio::task::spawn_blocking(move || gpu_check::run(&opts, |line| println!("{line}")))
				.await?
				.map_err(|e| usage(e.to_string()))?;
		let out = &args.out;
		std::fs::write(out, serde_json::to_vec_pretty(&report)?)
			.with_context(|| format!("writing {}", out.display()))?;
		for check in &report.checks {
			let verdict = if check.passed { "PASS" } else { "FAIL" };
			println!("{verdict} {}: {}", check.name, check.detail);
		}
		println!("report written to {}", out.display());
		if !report.passed() {
			anyhow::bail!("a GPU check failed");
		}
		Ok(())
	}
	#[cfg(not(feature = "cuda"))]
	{
		// Read only by a `cuda` build.
		let _ = (index, args.out, args.precision, args.shapes, args.prompt_tokens);
		let _ = (args.decode_tokens, args.clients, args.client_tokens, args.checks_only);
		Err(usage(device::GpuError::NotBuilt.to_string()))
	}
}
