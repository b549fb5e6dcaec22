//! Status role: this account's bonds, jobs and verifications, and what it earned and lost over a
//! block range (computed by [`crate::report`] from chain state and events).

use anyhow::Result;
use clap::Subcommand;

use super::Context;
use crate::report;

#[derive(Subcommand)]
pub enum Command {
	/// This account's bonds, jobs and verifications.
	Status,
	/// What this account earned and lost in BLY over a block range, with an ROI figure.
	Earnings {
		/// First block (default: the last 3600 blocks).
		#[arg(long)]
		from: Option<u32>,
	},
}

pub async fn run(command: Command, ctx: &Context) -> Result<()> {
	let chain = ctx.connect().await?;
	match command {
		Command::Status => print!("{}", report::status(&chain).await?),
		Command::Earnings { from } => {
			let to = chain.finalized_number().await?;
			let from = from.unwrap_or(to.saturating_sub(3600)).max(1);
			let e = report::earnings(&chain, chain.account(), from, to).await?;
			let me = *chain.account();
			let bonded = chain.worker_info(&me).await?.map_or(0, |w| w.bond)
				+ chain.verifier_info(&me).await?.map_or(0, |v| v.bond);
			print!("{}", report::format_earnings(&e, bonded));
		}
	}
	Ok(())
}
