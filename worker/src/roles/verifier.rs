//! Verifier role: for each verification this account sits on, fetch the base and candidate
//! weights (every layer checked against its Merkle root), evaluate both on the revealed
//! validation set on the deterministic CPU path, commit to the scores and reveal them.
//! A candidate whose weights cannot be checked scores [`INVALID_SCORE`], so an honest quorum
//! rejects it. It also arbitrates the inference challenges it is drawn for: re-executes the
//! challenged session on the committed layers and reports whether the server answered wrong
//! ([`crate::inference::fraud`]).

use std::{collections::HashMap, time::Duration};

use anyhow::{anyhow, Context as _, Result};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use std::sync::Arc;

use super::{usage, Context};
use crate::{
	audit,
	chain::{self, AuditDuty, Chain, DisputeStage, JobId, Phase},
	content,
	inference::fraud,
	ml::{self, train::Hyperparams},
	state::{self, StateDir},
	storage::Ipfs,
};

pub use crate::ml::train::INVALID_SCORE;

/// Blocks before the commit deadline at which a candidate still unavailable is scored invalid:
/// room left to evaluate the base and get the commitment finalized.
const UNAVAILABLE_MARGIN: chain::BlockNumber = 30;

/// How long a spot-checker waits for a trace document: it is small, and a missing one would
/// otherwise hold the checker for the IPFS client's whole timeout on every try.
const TRACE_DOC_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(clap::Args)]
pub struct Args {
	/// Exit after revealing this many rounds.
	#[arg(long)]
	rounds: Option<u32>,
	/// TEST ONLY: challenge every spot-checked segment, right or not (the bond is lost).
	#[arg(long, hide = true)]
	false_challenges: bool,
}

/// `verify`: sit on the committees and audits this account is drawn for, until `--rounds`.
pub async fn run(args: Args, ctx: &Context) -> Result<()> {
	ctx.serve_metrics().await?;
	let chain = ctx.connect().await?;
	let ipfs = ctx.ipfs().await?;
	if chain.verifier_info(chain.account()).await?.is_none() {
		return Err(usage(
			"this account is not a registered verifier: run `blyan-worker register --verifier` \
			 first",
		));
	}
	let state = ctx.state_dir(&chain)?;
	ctx.follow_earnings(&chain);
	let options = VerifierOptions {
		poll: ctx.poll,
		rounds: args.rounds,
		false_challenges: args.false_challenges,
	};
	let mut verifier = Verifier::new(chain, ipfs, state, options);
	ctx.with_reconnect(&mut verifier, Verifier::set_chain, |v| Box::pin(v.run())).await
}

#[derive(Clone, Debug)]
pub struct VerifierOptions {
	pub poll: Duration,
	/// Stop after this many reveals; `None`: run forever.
	pub rounds: Option<u32>,
	/// TEST ONLY: challenge every spot-checked segment, right or not, and disagree with every
	/// bisection move (the challenge bond is lost).
	pub false_challenges: bool,
}

/// One seat on a committee, as kept in `state_dir/verified/<job>-<attempt>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Seat {
	job: JobId,
	attempt: u8,
	base: u64,
	candidate: u64,
	salt: [u8; 32],
	revealed: bool,
}

const KIND: &str = "verified";

pub struct Verifier {
	chain: Chain,
	ipfs: Ipfs,
	state: StateDir,
	options: VerifierOptions,
	/// Reveals recorded before this run (`--rounds` counts this run's only).
	revealed_before: Option<u32>,
	/// Jobs whose trace could not be fetched, and the finalized block of that try: the other
	/// segments of the job are not tried again in the same block.
	missing_traces: HashMap<JobId, chain::BlockNumber>,
	/// Its part in inference challenges.
	arbiter: fraud::Arbiter,
}

impl Verifier {
	pub fn new(chain: Chain, ipfs: Ipfs, state: StateDir, options: VerifierOptions) -> Self {
		Self {
			chain,
			ipfs,
			state,
			options,
			revealed_before: None,
			missing_traces: HashMap::new(),
			arbiter: fraud::Arbiter::default(),
		}
	}

	pub fn set_chain(&mut self, chain: Chain) {
		self.chain = chain;
	}

	fn revealed_total(&self) -> u32 {
		let mut n = 0;
		for id in self.state.list(KIND).unwrap_or_default() {
			if let Ok(Some(seat)) = self.state.load::<Seat>(KIND, &id) {
				n += u32::from(seat.revealed);
			}
		}
		n
	}

	/// Runs until `options.rounds` reveals were made in this run and no seat is pending (or
	/// forever). Returns on the first connection error; the caller reconnects and calls again.
	pub async fn run(&mut self) -> Result<()> {
		let mut last = 0;
		let total = self.revealed_total();
		let before = *self.revealed_before.get_or_insert(total);
		loop {
			let seats_pending = self.tick().await?;
			// Never stop with a seat pending: silence is penalised.
			if !seats_pending
				&& self
					.options
					.rounds
					.is_some_and(|n| self.revealed_total().saturating_sub(before) >= n)
			{
				return Ok(());
			}
			last = self.chain.next_finalized(last, self.options.poll).await?;
		}
	}

	/// One pass over this verifier's seats. A seat that fails (say, IPFS is down) is retried on
	/// the next block; only a lost node connection ends the pass with an error.
	/// Returns whether any seat was pending at the start of the pass.
	pub async fn tick(&mut self) -> Result<bool> {
		let me = *self.chain.account();
		let pending = self.chain.pending_verifications(&me).await?;
		let duties = self.chain.audit_duties(&me).await?;
		let seats_pending = !pending.is_empty() || !duties.is_empty();
		// Forget the missing traces of audits this verifier no longer checks.
		self.missing_traces.retain(|job, _| {
			duties.iter().any(|d| matches!(d, AuditDuty::SpotCheck { job: j, .. } if j == job))
		});
		for duty in duties {
			if let Err(e) = self.audit_duty(duty).await {
				if crate::is_connection_error(&e) {
					return Err(e);
				}
				warn!("audit: {e:#}; retrying on the next block");
			}
		}
		for (job, phase) in pending {
			if let Err(e) = self.serve_seat(&me, job, phase).await {
				if crate::is_connection_error(&e) {
					return Err(e);
				}
				warn!(job, "{e:#}; retrying on the next block");
			}
		}
		// Challenged inference sessions this account arbitrates: re-executed and reported.
		if let Err(e) = self.arbiter.pass(&self.chain, &self.ipfs).await {
			if crate::is_connection_error(&e) {
				return Err(e);
			}
			warn!("inference arbitration: {e:#}; retrying on the next block");
		}
		Ok(seats_pending)
	}

	/// A training-audit duty: a spot check (attest or challenge), a bisection answer as the
	/// challenger, or a report as an arbiter.
	async fn audit_duty(&mut self, duty: AuditDuty) -> Result<()> {
		// A dispute's duties name the challenge; its segment is in the dispute.
		let (job, segment, dispute) = match duty {
			AuditDuty::SpotCheck { job, segment } => (job, segment, None),
			AuditDuty::Respond { job, challenge } | AuditDuty::Arbitrate { job, challenge } => {
				let Some(dispute) = self.chain.dispute(job, challenge).await? else {
					return Ok(());
				};
				(job, dispute.segment, Some((challenge, dispute)))
			}
			AuditDuty::Bisect { .. } => return Ok(()), // the miner's
		};
		let Some(audit) = self.chain.audit(job).await? else { return Ok(()) };
		let Some(chain_job) = self.chain.job(job).await? else { return Ok(()) };
		let spot_check = matches!(duty, AuditDuty::SpotCheck { .. });
		let now = self.chain.finalized_number().await?;
		if spot_check && self.missing_traces.get(&job) == Some(&now) {
			let e = anyhow!("the trace was missing at block {now} already");
			return self.trace_unavailable(job, segment, audit.deadline, now, e).await;
		}
		// The job's dataset first, through the same daemon: if this machine cannot fetch that,
		// a missing trace says nothing about the miner, and is not reported.
		let run = Arc::new(audit::TrainingRun::of_job(&self.chain, &self.ipfs, &chain_job).await?);
		// A spot check waits a short while for the (small) trace document; the disputes' moves
		// keep the client's usual timeout.
		let ipfs =
			if spot_check { self.ipfs.with_timeout(TRACE_DOC_TIMEOUT) } else { self.ipfs.clone() };
		let doc = match audit::fetch_doc(&ipfs, &audit).await {
			Ok(doc) => doc,
			Err(e) if spot_check && audit::trace_missing(&e) => {
				self.missing_traces.insert(job, now);
				return self.trace_unavailable(job, segment, audit.deadline, now, e).await;
			}
			Err(e) => return Err(e),
		};
		self.missing_traces.remove(&job);
		match duty {
			AuditDuty::SpotCheck { .. } => {
				info!(job, segment, "spot check: re-running segment {segment} of the training");
				let started = std::time::Instant::now();
				let outcome = match audit::spot_check(&run, &self.ipfs, &doc, segment).await {
					Ok(outcome) => outcome,
					Err(e) if audit::trace_missing(&e) => {
						return self.trace_unavailable(job, segment, audit.deadline, now, e).await;
					}
					Err(e) => return Err(e),
				};
				match outcome {
					audit::SpotCheck::Matches if !self.options.false_challenges => {
						self.chain.attest(job, segment).await?;
						// How close to the window's end (operators size their machines by it).
						let blocks_left = audit.deadline.saturating_sub(now);
						info!(
							job,
							segment,
							secs = started.elapsed().as_secs_f32(),
							window_blocks_at_start = blocks_left,
							"spot check passed: bit-exact with the trace"
						);
					}
					audit::SpotCheck::Matches => {
						warn!(
							job,
							segment, "MISBEHAVING: challenging a segment that re-ran exactly"
						);
						let bogus = blyan_primitives::Hash::repeat_byte(0xba);
						audit::challenge(&self.chain, job, &doc, segment, bogus).await?;
					}
					bad @ (audit::SpotCheck::BadStep | audit::SpotCheck::BadStart) => {
						let why = if matches!(bad, audit::SpotCheck::BadStep) {
							"a checkpoint is not at its step"
						} else {
							"the start checkpoint's state is not the committed one"
						};
						warn!(job, segment, "spot check FAILED: {why}; challenging");
						let nothing = blyan_primitives::Hash::zero();
						audit::challenge(&self.chain, job, &doc, segment, nothing).await?;
					}
					audit::SpotCheck::Differs(reached) => {
						warn!(
							job,
							segment,
							"spot check FAILED: the segment does not re-run to its checkpoint; challenging"
						);
						audit::challenge(&self.chain, job, &doc, segment, reached.summary().hash())
							.await?;
					}
				}
			}
			AuditDuty::Respond { .. } => {
				let Some((challenge, dispute)) = dispute else { return Ok(()) };
				let DisputeStage::Challenger { mid_hash, .. } = dispute.stage else {
					return Ok(());
				};
				let mid = dispute.lo.saturating_add(dispute.hi) / 2;
				let agree = if self.options.false_challenges {
					false
				} else {
					// A start state that is not the committed one: disagree down to its first step,
					// which the arbiters cannot re-run either.
					let state = run.state_in_segment(&self.ipfs, &doc, segment, mid).await?;
					state.is_some_and(|s| s.summary().hash().0 == mid_hash.0)
				};
				self.chain.respond(job, challenge, mid, agree).await?;
				info!(job, segment, step = mid, agree, "bisection: answered the miner's state");
			}
			AuditDuty::Arbitrate { .. } => {
				let Some((challenge, dispute)) = dispute else { return Ok(()) };
				let report = audit::arbitrate(&run, &self.ipfs, &doc, segment, &dispute).await?;
				let for_miner = report == Some(dispute.hi_hash);
				self.chain.arbitrate(job, challenge, report).await?;
				info!(job, segment, step = dispute.hi, for_miner, "arbitrated the disputed step");
			}
			AuditDuty::Bisect { .. } => {}
		}
		Ok(())
	}

	/// A spot check whose trace (or state blob) could not be fetched: tried again on later
	/// blocks, and reported on chain once less than half the challenge window is left, so a
	/// slow publication is not taken for a withheld one.
	async fn trace_unavailable(
		&mut self,
		job: JobId,
		segment: u32,
		deadline: chain::BlockNumber,
		now: chain::BlockNumber,
		e: anyhow::Error,
	) -> Result<()> {
		let margin = (self.chain.challenge_window().await? / 2).max(3);
		if deadline.saturating_sub(now) > margin {
			warn!(job, segment, "trace not available yet ({e:#}); trying again");
			return Ok(());
		}
		warn!(job, segment, "trace UNAVAILABLE ({e:#}); reporting it");
		self.chain.report_unavailable(job, segment).await?;
		info!(job, segment, "reported the trace unavailable");
		Ok(())
	}

	async fn serve_seat(
		&mut self,
		me: &subxt::utils::AccountId32,
		job: JobId,
		phase: Phase,
	) -> Result<()> {
		let me = *me;
		let Some(round) = self.chain.round(job).await? else { return Ok(()) };
		let Some(member) = round.committee.0.iter().find(|m| m.verifier == me) else {
			return Ok(());
		};
		let id = format!("{job}-{}", round.attempt);
		match phase {
			Phase::Commit if member.commitment.is_none() => {
				let seat = match self.state.load::<Seat>(KIND, &id)? {
					Some(seat) => seat,
					None => {
						let Some((base, candidate)) = self.scores(job, round.deadline).await?
						else {
							return Ok(());
						};
						let seat = Seat {
							job,
							attempt: round.attempt,
							base,
							candidate,
							salt: state::salt(),
							revealed: false,
						};
						self.state.save(KIND, &id, &seat)?;
						seat
					}
				};
				let commitment = chain::score_commitment(
					job,
					seat.attempt,
					&me,
					seat.base,
					seat.candidate,
					&seat.salt,
				);
				self.chain.commit_scores(job, commitment).await?;
				info!(job, "committed scores");
			}
			Phase::Reveal if member.commitment.is_some() && member.scores.is_none() => {
				let mut seat = self.state.load::<Seat>(KIND, &id)?.with_context(|| {
					format!("committed to job {job} but its scores are not in the state dir")
				})?;
				self.chain.reveal_scores(job, seat.base, seat.candidate, seat.salt).await?;
				crate::metrics::metrics().scores_revealed.inc();
				info!(job, base = seat.base, candidate = seat.candidate, "revealed scores");
				seat.revealed = true;
				self.state.save(KIND, &id, &seat)?;
			}
			_ => {}
		}
		Ok(())
	}

	/// `(base_score, candidate_score)`, or `None` to try again next block (IPFS unavailable and
	/// the commit window still open).
	async fn scores(
		&self,
		job_id: JobId,
		deadline: chain::BlockNumber,
	) -> Result<Option<(u64, u64)>> {
		let job = self.chain.job(job_id).await?.with_context(|| format!("job {job_id} is gone"))?;
		let chain::JobStatus::Verifying { candidate, .. } = job.status else {
			return Err(anyhow!("job {job_id} is not being verified"));
		};
		let validation =
			job.validation.as_ref().context("a verified job has its validation set revealed")?;
		let config = content::model_config(&self.chain, &self.ipfs, job.model).await?;
		// A validation set we cannot fetch is retried, never scored: whether it is the creator's
		// fault or a miner keeping the creator's node offline cannot be told apart here, and a
		// score would put one of them at fault (no quorum ends the job without a verdict).
		let validation = content::validation_tokens(&self.ipfs, &config, &validation.cid.0).await?;
		// A job nobody can evaluate (its hyper-parameters do not fit the model, or its validation
		// set is smaller than one batch) is scored invalid rather than left silent, which would
		// cost every honest verifier its penalty.
		let hp = Hyperparams::from(&chain::training_params(&job.spec));
		let hp = match hp.check_against(&config, None).map(|()| hp) {
			Ok(hp) => hp,
			Err(e) => {
				warn!(job = job_id, "job cannot be evaluated ({e}); scoring it invalid");
				return Ok(Some((INVALID_SCORE, INVALID_SCORE)));
			}
		};
		let base = content::version_layers(&self.chain, &self.ipfs, &config, job.spec.base_version)
			.await?;
		let candidate_layers =
			match content::version_layers(&self.chain, &self.ipfs, &config, candidate).await {
				Ok(layers) => Some(layers),
				Err(e) if e.is_invalid_content() => {
					warn!(job = job_id, candidate, "candidate refused: {e}");
					None
				}
				Err(e) => {
					// Unavailable data is the miner's to serve: retry until the window nearly ends.
					let now = self.chain.finalized_number().await?;
					if now.saturating_add(UNAVAILABLE_MARGIN) < deadline {
						warn!(job = job_id, "cannot fetch the candidate yet ({e}); retrying");
						return Ok(None);
					}
					warn!(
						job = job_id,
						"candidate still unavailable near the deadline ({e}); scoring it invalid"
					);
					None
				}
			};
		info!(
			job = job_id,
			candidate, "evaluating base and candidate on the validation set (CPU, deterministic)"
		);
		let (base_score, candidate_score) =
			tokio::task::spawn_blocking(move || -> Result<(u64, u64)> {
				let base = ml::evaluate_layers(&config, &base, &validation, &hp)?
					.map_or(INVALID_SCORE, ml::train::score);
				let candidate = match candidate_layers {
					Some(layers) => ml::evaluate_layers(&config, &layers, &validation, &hp)?
						.map_or(INVALID_SCORE, ml::train::score),
					None => INVALID_SCORE,
				};
				Ok((base, candidate))
			})
			.await??;
		info!(
			job = job_id,
			"base loss {:.6}, candidate loss {} (the miner's claim stays hidden until we commit)",
			base_score as f64 / 1e9,
			if candidate_score == INVALID_SCORE {
				"INVALID".to_string()
			} else {
				format!("{:.6}", candidate_score as f64 / 1e9)
			},
		);
		Ok(Some((base_score, candidate_score)))
	}
}
