//! Federated role, a participant's side: join a federated job and train on local data each
//! round, set this account's privacy budget, close an ended job. (The aggregator's side runs in
//! the miner, `mine --fl-listen`.)

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;

use super::{file_or_generated, usage, Context};
use crate::{
	chain,
	federated::job::{participate, ParticipantOptions},
	ml::TrainDevice,
};

#[derive(Subcommand)]
pub enum Command {
	/// Take part in a federated job: join (its ε is charged to this account's privacy budget),
	/// train on local data each round and send only a clipped, noised (and, in the secure mode,
	/// masked) update to the aggregator.
	FlParticipate {
		#[arg(long)]
		job: u64,
		/// The local training data; or --data-generate KiB of exercises with --data-seed.
		#[arg(long, conflicts_with = "data_generate")]
		data_file: Option<PathBuf>,
		#[arg(long)]
		data_generate: Option<usize>,
		#[arg(long, default_value_t = 1)]
		data_seed: u64,
		/// Refuse a job that spends more than this ε.
		#[arg(long)]
		max_epsilon: Option<f64>,
	},
	/// Set this account's privacy budget: the ε its data may spend over all federated jobs.
	FlBudget { epsilon: f64 },
	/// Close a federated job whose job has ended (anyone may): participants' bonds are released,
	/// and the ε they were charged given back if no aggregator ever served it.
	FlClose { job: u64 },
}

/// A participant's connections and options, kept across reconnections.
struct Participant {
	chain: chain::Chain,
	ipfs: crate::storage::Ipfs,
	job: u64,
	options: ParticipantOptions,
}

pub async fn run(command: Command, ctx: &Context) -> Result<()> {
	match command {
		Command::FlParticipate { job, data_file, data_generate, data_seed, max_epsilon } => {
			ctx.serve_metrics().await?;
			let data = file_or_generated(
				data_file,
				data_generate,
				data_seed,
				"give --data-file or --data-generate",
			)?;
			let chain = ctx.connect().await?;
			let ipfs = ctx.ipfs().await?;
			let options = ParticipantOptions {
				device: TrainDevice::best(),
				data,
				max_epsilon,
				poll: ctx.poll,
				state: ctx.state_dir(&chain)?,
			};
			// A lost node connection reconnects and resumes, as a restart does: at the first
			// round not yet recorded, with the noise kept for it (or sitting out a secure round
			// it may have masked in), and with the aggregator endpoint the chain names then.
			let mut participant = Participant { chain, ipfs, job, options };
			ctx.with_reconnect(
				&mut participant,
				|p, chain| p.chain = chain,
				|p| Box::pin(participate(&p.chain, &p.ipfs, p.job, &p.options)),
			)
			.await?;
			println!("federated job {job}: all rounds done");
		}
		Command::FlBudget { epsilon } => {
			if !(epsilon >= 0.0 && epsilon.is_finite()) {
				return Err(usage("the budget is a non-negative ε"));
			}
			let chain = ctx.connect().await?;
			chain.set_privacy_budget((epsilon * 1000.0).round() as u64).await?;
			let (spent, _) = chain.privacy(chain.account()).await?;
			println!("privacy budget ε = {epsilon}; spent so far ε = {:.3}", spent as f64 / 1000.0);
		}
		Command::FlClose { job } => {
			let chain = ctx.connect().await?;
			let events = chain.federated_close(job).await?;
			let closed = events
				.find_first::<chain::blyan::federated::events::Closed>()
				.context("no Closed event")??;
			println!(
				"federated job {job} closed; ε {}",
				if closed.epsilon_refunded { "refunded" } else { "stays spent" }
			);
		}
	}
	Ok(())
}
