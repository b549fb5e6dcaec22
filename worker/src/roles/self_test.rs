//! `self-test`: checks that this machine computes the network's bits (see
//! [`crate::ml::selftest`]); `register` runs the same check before bonding.

use anyhow::Result;
use tracing::warn;

use crate::ml::selftest::{self, Mismatch, Report};

#[derive(clap::Args)]
pub struct Args {
	/// Kernel threads (default: `BLYAN_THREADS`, else every core). The bits must not depend on it.
	#[arg(long, default_value_t = 0)]
	threads: usize,
}

/// This machine computed other bits than the network's: it would dissent from honest verifiers
/// and be penalised.
#[derive(Debug, thiserror::Error)]
#[error(
	"self-test failed: this machine computes different bits than the network ({}); \
	 verifying or mining here would dissent from honest verifiers and be penalised. \
	 This is a bug in Blyan's portable kernels on this CPU or build: please report it with the \
	 output above",
	.0.iter().map(|m| format!("{}: got {}, want {}", m.part, m.got, m.want)).collect::<Vec<_>>().join("; ")
)]
pub struct SelfTestFailed(pub Vec<Mismatch>);

pub async fn run(args: Args) -> Result<()> {
	let report = check(args.threads).await?;
	print(&report);
	println!("self-test passed: this machine computes the network's bits");
	Ok(())
}

fn print(report: &Report) {
	for line in report.lines() {
		println!("{line}");
	}
}

/// Runs the workload; an error if its bits differ from the golden ones.
pub async fn check(threads: usize) -> Result<Report> {
	let report = tokio::task::spawn_blocking(move || selftest::run(threads)).await??;
	let mismatches = report.mismatches();
	if mismatches.is_empty() {
		Ok(report)
	} else {
		print(&report);
		Err(SelfTestFailed(mismatches).into())
	}
}

/// `register`'s gate: the self-test must pass unless `force`d (then a warning).
pub async fn gate(force: bool) -> Result<()> {
	match check(0).await {
		Ok(report) => {
			println!(
				"self-test passed ({:.1} s): this machine computes the network's bits",
				report.elapsed.as_secs_f64()
			);
			Ok(())
		}
		Err(e) if force && e.downcast_ref::<SelfTestFailed>().is_some() => {
			warn!("{e:#}");
			warn!("bonding anyway (--force)");
			Ok(())
		}
		Err(e) => Err(e.context("not bonding (--force bonds anyway)")),
	}
}
