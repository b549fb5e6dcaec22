//! `status` and `earnings`: what this account does and has earned, from chain state and events.

use std::time::Duration;

use anyhow::Result;
use subxt::utils::AccountId32;

use crate::chain::{self, bly, blyan, Chain, JobStatus};

pub async fn status(chain: &Chain) -> Result<String> {
	let me = *chain.account();
	let (free, held) = chain.balance(&me).await?;
	let mut out = format!(
		"account   {me}\nbalance   {} free, {} held (bonds and escrow)\n",
		bly(free),
		bly(held)
	);
	match chain.worker_info(&me).await? {
		Some(w) => {
			out += &format!(
				"worker    bond {}, {} MiB, backends {:?}{}\n",
				bly(w.bond),
				w.capabilities.memory_mb,
				w.capabilities.backends.0,
				w.unbonding_until
					.map(|b| format!(", unbonding until block {b}"))
					.unwrap_or_default()
			)
		}
		None => out += "worker    not registered (blyan-worker register)\n",
	}
	match chain.verifier_info(&me).await? {
		Some(v) => {
			out += &format!(
				"verifier  bond {}{}\n",
				bly(v.bond),
				v.unbonding_until
					.map(|b| format!(", unbonding until block {b}"))
					.unwrap_or_default()
			)
		}
		None => out += "verifier  not registered (blyan-worker register --verifier)\n",
	}
	for job in chain.worker_jobs(&me).await? {
		if let Some(info) = chain.job(job).await? {
			let stage = match info.status {
				JobStatus::Open => "open",
				JobStatus::Claimed { .. } => "claimed: training",
				JobStatus::Committed { .. } => "committed: awaiting the validation reveal",
				JobStatus::ValidationRevealed { .. } => {
					"validation revealed: evaluating, revealing"
				}
				JobStatus::Verifying { .. } => "verifying",
			};
			out += &format!("job {job:<5} {stage}, reward {}\n", bly(info.reward));
		}
	}
	for (job, phase) in chain.pending_verifications(&me).await? {
		out += &format!("verifying job {job}: {phase:?} phase\n");
	}
	Ok(out)
}

/// Income and losses of `who` over blocks `from..=to`.
#[derive(Default, Debug)]
pub struct Earnings {
	pub mining: u128,
	pub fees_and_shares: u128,
	pub epoch_rewards: u128,
	pub slashed: u128,
	pub jobs_accepted: u32,
	pub jobs_rejected: u32,
	/// Jobs whose creator was at fault (the base could not be scored on its validation set):
	/// rejected candidates the miner was paid for, with the creator's bond.
	pub jobs_creator_fault: u32,
	pub blocks: u32,
}

pub async fn earnings(chain: &Chain, who: &AccountId32, from: u32, to: u32) -> Result<Earnings> {
	let mut e = Earnings { blocks: to.saturating_sub(from) + 1, ..Default::default() };
	let mut paid_from_holds: i128 = 0;
	for n in from..=to {
		let at = chain.api().at_block(n as u64).await?;
		let events = at.events().fetch().await?;
		for ev in events.find::<blyan::jobs::events::JobAccepted>() {
			let ev = ev?;
			if &ev.worker == who {
				e.mining += ev.to_miner;
				e.jobs_accepted += 1;
				// The miner's share also arrives as a transfer from the escrow (below).
				paid_from_holds = paid_from_holds.saturating_sub(ev.to_miner as i128);
			}
		}
		for ev in events.find::<blyan::jobs::events::JobRejected>() {
			let ev = ev?;
			if &ev.worker == who {
				e.slashed += ev.slashed;
				e.jobs_rejected += 1;
			}
		}
		for ev in events.find::<blyan::jobs::events::CreatorBondForfeited>() {
			let ev = ev?;
			if &ev.worker == who {
				e.mining += ev.to_miner;
				e.jobs_creator_fault += 1;
				// Paid out of the escrow and the creator's bond hold (below), as for an accepted
				// job: mining income, not fees.
				paid_from_holds = paid_from_holds.saturating_sub(ev.to_miner as i128);
			}
		}
		for ev in events.find::<blyan::jobs::events::LeaseExpired>() {
			let ev = ev?;
			if &ev.worker == who {
				e.slashed += ev.slashed;
			}
		}
		for ev in events.find::<blyan::pol_rewards::events::VerifierPenalised>() {
			let ev = ev?;
			if &ev.verifier == who {
				e.slashed += ev.amount;
			}
		}
		for ev in events.find::<blyan::pol_rewards::events::ArbiterPenalised>() {
			let ev = ev?;
			if &ev.verifier == who {
				e.slashed += ev.amount;
			}
		}
		for ev in events.find::<blyan::pol_rewards::events::EpochRewardPaid>() {
			let ev = ev?;
			if &ev.miner == who {
				e.epoch_rewards += ev.amount;
			}
		}
		// Everything else paid out of a hold to this account: verifier fees (from the escrow of
		// an accepted job or the slash of a refuted one), dataset shares, forfeited rewards.
		for ev in events.find::<blyan::balances::events::TransferOnHold>() {
			let ev = ev?;
			if &ev.dest == who {
				paid_from_holds += ev.amount as i128;
			}
		}
	}
	e.fees_and_shares = paid_from_holds.max(0) as u128;
	Ok(e)
}

pub fn format_earnings(e: &Earnings, bonded: u128) -> String {
	let income = e.mining + e.fees_and_shares + e.epoch_rewards;
	let net = income as i128 - e.slashed as i128;
	let hours = e.blocks as f64 / 3600.0; // 1 s blocks
	let per_hour = if hours > 0.0 { net as f64 / chain::BLY as f64 / hours } else { 0.0 };
	let roi = if bonded > 0 { net as f64 / bonded as f64 * 100.0 } else { 0.0 };
	format!(
		"over {} blocks (~{:.2} h):\n  mining rewards   {} ({} jobs accepted, {} rejected, {} paid for the creator's fault)\n  fees and shares  {}\n  epoch rewards    {}\n  slashed          {}\n  net              {:.4} BLY  ({per_hour:.4} BLY/h, {roi:.2} % of the {} bonded)\n",
		e.blocks,
		hours,
		bly(e.mining),
		e.jobs_accepted,
		e.jobs_rejected,
		e.jobs_creator_fault,
		bly(e.fees_and_shares),
		bly(e.epoch_rewards),
		bly(e.slashed),
		net as f64 / chain::BLY as f64,
		bly(bonded),
	)
}

/// Adds what `who` earns and loses to the worker's metrics as blocks finalize, on a connection
/// of its own (so a role's reconnects do not stop it); runs until the process ends.
pub async fn follow_earnings(url: String, who: AccountId32) {
	let metrics = crate::metrics::metrics();
	// Any key reads; this one never signs.
	let Ok(reader) = crate::config::load_key(Some("//blyan-earnings-reader"), None) else {
		return;
	};
	let mut last: Option<u32> = None;
	loop {
		let chain = match chain::connect_with_retry(&url, &reader, Duration::from_secs(60)).await {
			Ok(chain) => chain,
			Err(e) => {
				tracing::warn!("earnings metrics: {e}");
				tokio::time::sleep(Duration::from_secs(5)).await;
				continue;
			}
		};
		loop {
			let from = match last {
				Some(n) => n,
				// Counts from the start of this process, not the account's history.
				None => match chain.finalized_number().await {
					Ok(n) => n,
					Err(_) => break,
				},
			};
			let Ok(now) = chain.next_finalized(from, Duration::from_millis(500)).await else {
				break;
			};
			match earnings(&chain, &who, from + 1, now).await {
				Ok(e) => {
					let to_bly = |planck: u128| planck as f64 / chain::BLY as f64;
					metrics
						.earned_bly
						.inc_by(to_bly(e.mining + e.fees_and_shares + e.epoch_rewards));
					metrics.slashed_bly.inc_by(to_bly(e.slashed));
					last = Some(now);
				}
				// The node went away: reconnect and read the same blocks again.
				Err(e) if chain.finalized_number().await.is_err() => {
					tracing::warn!("earnings metrics: {e:#}");
					last.get_or_insert(from);
					break;
				}
				// Blocks that cannot be read (state pruned, an event this worker cannot decode):
				// skipped, not retried for ever.
				Err(e) => {
					tracing::warn!("earnings metrics: blocks {}..={now} skipped: {e:#}", from + 1);
					last = Some(now);
				}
			}
		}
		tokio::time::sleep(Duration::from_secs(1)).await;
	}
}
