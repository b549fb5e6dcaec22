//! Federated jobs on a live chain: the participant role (join, train locally, send a clipped and
//! noised update each round) and the aggregator side the miner runs for a federated job it holds
//! (run the rounds, pin each aggregate to IPFS, record it on chain, return the final weights
//! for the ordinary commit / reveal / verification path).
//!
//! The global model of round `r` is the base version plus the aggregates of rounds `0..r`, each
//! added in f32 in the same order by everyone: participants and the aggregator hold the same bits,
//! and anyone can rebuild them from the base and the aggregates pinned on IPFS.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use subxt::utils::AccountId32;
use tracing::{info, warn};

use crate::{
	chain::{Admission, AggregationRule, Chain, ChainFederatedJob, ChainJob, JobId},
	content,
	ml::{self, train::Hyperparams, weights::LayerTensors, TrainDevice},
	storage::Ipfs,
};

use super::{
	accountant, dp,
	robust::Aggregation,
	round::{Aggregator, AttemptFailed, ClientError, Mode, RoundClient, RoundInfo},
	secagg::{encode_fixed, Participant, ParticipantId, SessionId},
};

/// Every value of a model's layers, in layer then tensor order.
pub fn flatten(layers: &[LayerTensors]) -> Vec<f32> {
	layers.iter().flatten().flat_map(|t| t.values.iter().copied()).collect()
}

/// Adds `delta` (in [`flatten`] order) to `layers`.
pub fn add_delta(layers: &mut [LayerTensors], delta: &[f32]) -> Result<()> {
	let total: usize = layers.iter().flatten().map(|t| t.values.len()).sum();
	if total != delta.len() {
		bail!("an update of {} values for a model of {total}", delta.len());
	}
	let mut rest = delta;
	for t in layers.iter_mut().flatten() {
		let (mine, tail) = rest.split_at(t.values.len());
		for (v, d) in t.values.iter_mut().zip(mine) {
			*v += *d;
		}
		rest = tail;
	}
	Ok(())
}

/// The round's mode from the job's rule.
pub fn mode(rule: &AggregationRule) -> Mode {
	match *rule {
		AggregationRule::Secure { threshold } => Mode::Secure { threshold },
		AggregationRule::Mean => Mode::Plain(Aggregation::Mean),
		AggregationRule::Median => Mode::Plain(Aggregation::Median),
		AggregationRule::TrimmedMean { trim } => Mode::Plain(Aggregation::TrimmedMean { trim }),
		AggregationRule::MultiKrum { byzantine, selected } => {
			Mode::Plain(Aggregation::MultiKrum { byzantine, selected })
		}
	}
}

/// Fewest contributors a round of `fed` may end with: the job's minimum, and what its rule needs
/// (as the chain's `record_round` requires).
pub fn min_contributors(fed: &ChainFederatedJob) -> u16 {
	let rule = match fed.spec.rule {
		AggregationRule::Secure { threshold } => threshold,
		AggregationRule::Mean | AggregationRule::Median => 1,
		AggregationRule::TrimmedMean { trim } => trim.saturating_mul(2).saturating_add(1),
		AggregationRule::MultiKrum { byzantine, selected } => {
			byzantine.saturating_mul(2).saturating_add(3).max(selected)
		}
	};
	rule.max(fed.spec.min_participants)
}

/// Binds a round's keys and ciphertexts to this chain, job and round.
pub fn session(chain: &Chain, job: JobId, round: u32) -> SessionId {
	sp_crypto_hashing::blake2_256(&codec::Encode::encode(&(
		b"blyan/fl",
		chain.genesis_hash().0,
		job,
		round,
	)))
}

/// The job's tight ε (what the accountant proves) and the chain's charge, both as f64.
pub fn epsilons(fed: &ChainFederatedJob) -> Result<(f64, f64)> {
	let sigma = fed.spec.noise_milli as f64 / 1000.0;
	let delta = 10f64.powi(-(fed.spec.delta_exp as i32));
	let tight = accountant::federated_epsilon(fed.spec.rounds as u64, sigma, delta)?;
	Ok((tight, fed.epsilon_milli as f64 / 1000.0))
}

/// The base version's layers and the job's hyper-parameters with `local_steps` steps.
async fn base_model(
	chain: &Chain,
	ipfs: &Ipfs,
	job: &ChainJob,
	local_steps: u32,
) -> Result<(ml::model::ModelConfig, Vec<LayerTensors>, Hyperparams)> {
	let config = content::model_config(chain, ipfs, job.model).await?;
	let layers = content::version_layers(chain, ipfs, &config, job.spec.base_version).await?;
	let mut hp = Hyperparams::from(&crate::chain::training_params(&job.spec));
	hp.steps = local_steps;
	Ok((config, layers, hp))
}

/// Participant options.
pub struct ParticipantOptions {
	pub device: TrainDevice,
	/// The local training data: never leaves this process except as a clipped, noised update.
	pub data: Vec<u8>,
	/// Refuse a job whose ε (as the chain charges it) is above this.
	pub max_epsilon: Option<f64>,
	pub poll: Duration,
	/// Where the seed of each round's noise is kept until the round is done.
	pub state: crate::state::StateDir,
}

/// Takes part in federated job `job` to its last round.
pub async fn participate(
	chain: &Chain,
	ipfs: &Ipfs,
	job_id: JobId,
	options: &ParticipantOptions,
) -> Result<()> {
	let me: AccountId32 = *chain.account();
	let fed = chain.federated_job(job_id).await?.context("not a federated job")?;
	let job = chain.job(job_id).await?.context("the job is gone")?;
	let (tight, charged) = epsilons(&fed)?;
	info!(
		job = job_id,
		"privacy: ε = {tight:.3} (RDP accountant, δ = 1e-{}), the chain charges ε = {charged:.3}",
		fed.spec.delta_exp
	);
	if let Some(max) = options.max_epsilon {
		if charged > max {
			bail!("the job spends ε = {charged:.3}, above --max-epsilon {max}");
		}
	}
	let index = match fed.participants.0.iter().position(|m| m.who == me) {
		Some(i) => i,
		None => {
			if let Admission::Named(named) = &fed.spec.admission {
				if !named.0.contains(&me) {
					bail!("this account is not among the job's named participants");
				}
			}
			let events = chain.federated_join(job_id).await?;
			let joined = events
				.find_first::<crate::chain::blyan::federated::events::Joined>()
				.context("no Joined event")??;
			info!(
				job = job_id,
				index = joined.index,
				"joined; this account's data has now spent ε = {:.3}",
				joined.spent_milli as f64 / 1000.0
			);
			joined.index as usize
		}
	};
	let (config, mut global, hp) = base_model(chain, ipfs, &job, fed.spec.local_steps).await?;
	let data = crate::content::dataset_tokens(ipfs, &config, options.data.clone())
		.await
		.map_err(|e| anyhow!("local data: {e}"))?;
	hp.check_against(&config, Some(data.len())).map_err(|e| anyhow!("local data: {e}"))?;

	// The aggregator's endpoint, and where the rounds stand: a restarted participant resumes at
	// the first round not yet recorded.
	let (endpoint, first) = loop {
		let now = chain.federated_job(job_id).await?.context("the job was closed")?;
		match now.endpoint {
			Some(e) => break (String::from_utf8_lossy(&e.0).into_owned(), now.rounds_done),
			None => tokio::time::sleep(options.poll).await,
		}
	};
	info!(job = job_id, "aggregator at {endpoint}");
	let client = RoundClient::connect(&endpoint).context("the aggregator's HTTP client")?;
	let secure = matches!(fed.spec.rule, AggregationRule::Secure { .. });
	let clip = fed.spec.clip_norm_milli as f64 / 1000.0;
	let noise_std = dp::participant_noise_std(
		clip,
		fed.spec.noise_milli as f64 / 1000.0,
		secure,
		fed.spec.min_participants as usize,
	);
	replay_rounds(chain, ipfs, job_id, &mut global, first).await?;
	let len = flatten(&global).len();
	// Noise seeds of rounds recorded meanwhile (a crash after the record, before their removal)
	// are of no more use, and with the bits sent they would give the update back.
	for id in options.state.list("fl-rounds")? {
		let done = id
			.strip_prefix(&format!("{job_id}-"))
			.and_then(|rest| rest.split('-').next())
			.and_then(|r| r.parse::<u32>().ok())
			.is_some_and(|r| r < first);
		if done {
			options.state.remove("fl-rounds", &id)?;
		}
	}
	for round in first..fed.spec.rounds {
		let record_id = format!("{job_id}-{round}-{index}");
		let kept: Option<RoundRecord> = options.state.load("fl-rounds", &record_id)?;
		// The aggregate this participant received, if any: the chain's record is what counts
		// (the aggregator hands a result out before it records it, and runs the round again
		// if recording fails).
		let mut received = None;
		match &kept {
			// Restarted inside a secure round: whatever it masked may be held.
			Some(k) if k.secure => warn!(
				job = job_id,
				round, "sitting this round out: restarted inside it, its masked update may be held"
			),
			_ => {
				// Trained once; the noise drawn from a seed kept for this round, so that an
				// attempt joined again (or a restart) sends the same bits.
				let base = global.clone();
				let seed = job.spec.seed ^ ((round as u64) << 32) ^ index as u64;
				let (cfg, hp2, device) = (config.clone(), hp.clone(), options.device);
				let data2 = data.clone();
				let trained = tokio::task::spawn_blocking(move || {
					ml::train_layers(&cfg, &base, &data2, &hp2, seed, device, |_, _| {})
				})
				.await??;
				let mut update: Vec<f32> =
					flatten(&trained).iter().zip(flatten(&global)).map(|(t, g)| t - g).collect();
				let norm = dp::clip(&mut update, clip);
				if !norm.is_finite() {
					bail!("local training diverged (update norm {norm}): nothing sent");
				}
				let noise_seed = kept.as_ref().map_or_else(crate::state::salt, |k| k.noise_seed);
				dp::add_gaussian_noise(
					&mut update,
					noise_std,
					&mut ChaCha20Rng::from_seed(noise_seed),
				);
				let update_digest = update_digest(&update);
				if kept.as_ref().is_some_and(|k| k.update_digest != update_digest) {
					warn!(
						job = job_id,
						round,
						"sitting this round out: its update is not the bits sent before a restart \
						 (training not bit-exact here), and sending others would release the data \
						 again"
					);
				} else {
					let record = RoundRecord { noise_seed, update_digest, secure };
					options.state.save("fl-rounds", &record_id, &record)?;
					info!(
						job = job_id,
						round,
						"local update: norm {norm:.4} clipped to {clip}, noise std {noise_std:.5}"
					);
					let mut part = RoundPart {
						round,
						// The aggregator may be running another job's round: only this job's
						// round counts.
						session: session(chain, job_id, round),
						id: index as ParticipantId,
						mode: mode(&fed.spec.rule),
						min_contributors: min_contributors(&fed),
						update: &update,
						after_attempt: None,
					};
					loop {
						match contribute(&client, &part, || unrecorded(chain, job_id, round))
							.await?
						{
							Contribution::Done { contributors, aggregate, attempt } => {
								info!(
									job = job_id,
									round,
									contributors = contributors.len(),
									"round aggregated"
								);
								received = Some(aggregate);
								// Until it is recorded, a plain participant joins a rerun of the
								// round with the same bits; a secure one does not mask again.
								if secure {
									break;
								}
								part.after_attempt = Some(attempt);
							}
							Contribution::SatOut(why) => {
								if received.is_none() {
									warn!(job = job_id, round, "sitting this round out: {why}");
								}
								break;
							}
						}
					}
				}
			}
		}
		while unrecorded(chain, job_id, round).await? {
			tokio::time::sleep(options.poll).await;
		}
		let aggregate = recorded_aggregate(chain, ipfs, job_id, round, len).await?;
		if received.is_some_and(|r| r != aggregate) {
			warn!(job = job_id, round, "the aggregate recorded is not the one received: using it");
		}
		add_delta(&mut global, &aggregate)?;
		options.state.remove("fl-rounds", &record_id)?;
	}
	info!(job = job_id, "all {} rounds done", fed.spec.rounds);
	Ok(())
}

/// What a participant sends in one round, computed once.
pub struct RoundPart<'a> {
	pub round: u32,
	/// The round's session: the aggregator's round of this job, not another job's.
	pub session: SessionId,
	pub id: ParticipantId,
	/// The job's rule and minimum on chain, which the aggregator's round must follow.
	pub mode: Mode,
	pub min_contributors: u16,
	/// Clipped and noised.
	pub update: &'a [f32],
	/// An attempt whose result this participant has: only a later one is joined.
	pub after_attempt: Option<u64>,
}

/// How a participant's part in a round ended.
pub enum Contribution {
	/// The round's contributors and aggregate, and the aggregator's attempt that made them.
	Done { contributors: Vec<ParticipantId>, aggregate: Vec<f32>, attempt: u64 },
	/// The round went on, or will, without this participant (why): its aggregate is read from
	/// the chain once recorded.
	SatOut(String),
}

/// How often a participant asks the chain whether the round it waits on is still open.
const STILL_OPEN_EVERY: Duration = Duration::from_secs(5);

/// Sends `part.update` to its round once the aggregator opens it. An attempt the aggregator
/// ends without a result (a phase timed out, it restarted) is joined again, with the same
/// update, when the aggregator runs the round again: the same noised bits spend no more
/// privacy. Not so a secure attempt that ended after the aggregator may have taken the masked
/// update (its survivors, and so its sum, may differ from the next attempt's): the participant
/// sits that round out, as it does when refused for any other reason. While waiting for a round
/// to open, `still_open` is asked at once and then every five seconds or so whether the round is
/// still unrecorded; while an attempt's requests are in flight, every five seconds from its
/// start (an error of the node's then skips one asking): a participant does not wait on an
/// aggregator for a round the chain has recorded.
pub async fn contribute<F, Fut>(
	client: &RoundClient,
	part: &RoundPart<'_>,
	mut still_open: F,
) -> Result<Contribution>
where
	F: FnMut() -> Fut,
	Fut: std::future::Future<Output = Result<bool>>,
{
	let round = part.round;
	let mut rng = ChaCha20Rng::from_os_rng();
	// The attempt this participant's last try ended with (or whose result it has): it waits
	// for another one.
	let mut ended = part.after_attempt;
	let mut polls = 0u32;
	loop {
		let (info, attempt) = loop {
			match client.current().await {
				Ok((info, attempt)) if info.session == part.session && Some(attempt) != ended => {
					break (info, attempt)
				}
				_ => tokio::time::sleep(Duration::from_millis(200)).await,
			}
			polls += 1;
			if (polls == 1 || polls.is_multiple_of(25)) && !still_open().await? {
				let why = format!("round {round} was recorded without this participant");
				return Ok(Contribution::SatOut(why));
			}
		};
		if info.mode != part.mode || info.min_contributors != part.min_contributors {
			let why = format!(
				"the aggregator's round {round} does not follow the job's rule and minimum on chain"
			);
			return Ok(Contribution::SatOut(why));
		}
		let attempt_sent = async {
			match info.mode {
				Mode::Secure { threshold } => {
					let p = Participant::new(part.id, info.session, threshold as usize, &mut rng)
						.with_min_survivors(part.min_contributors as usize);
					client.secure_attempt(round, &p, &encode_fixed(part.update)).await
				}
				Mode::Plain(_) => client
					.plain_round(round, part.id, part.update.to_vec())
					.await
					.map_err(|error| AttemptFailed { error, masked_sent: false }),
			}
		};
		// The attempt races the chain: an aggregator that is up but holds a request without
		// ever answering (nothing for TCP to notice) would keep this participant forever. Once
		// the round is recorded there is nothing to wait for. The asking runs beside the
		// attempt, never pausing it, and a node error only skips one asking: the attempt itself
		// needs no node; a minute of them ends the attempt (the connection may be gone for good,
		// and the participant reconnects and resumes).
		let closed = async {
			let mut failed = 0;
			loop {
				tokio::time::sleep(STILL_OPEN_EVERY).await;
				match still_open().await {
					Ok(true) => failed = 0,
					Ok(false) => return Ok(()),
					Err(e) if crate::is_transient_error(&e) && failed < 12 => {
						failed += 1;
						warn!(
							round,
							"could not ask the node whether round {round} is still open ({e:#}); \
							 the attempt goes on"
						)
					}
					// The job is gone (nothing will be recorded), or the node for a minute.
					Err(e) => return Err(e),
				}
			}
		};
		tokio::pin!(attempt_sent, closed);
		let sent = tokio::select! {
			sent = &mut attempt_sent => sent,
			closed = &mut closed => {
				closed?;
				let why = format!(
					"round {round} was recorded while the aggregator held this participant's \
					 request"
				);
				return Ok(Contribution::SatOut(why));
			}
		};
		match sent {
			Ok((contributors, aggregate)) => {
				return Ok(Contribution::Done { contributors, aggregate, attempt })
			}
			Err(f) if f.error.attempt_over() && !f.masked_sent => {
				warn!(
					round,
					attempt,
					"the aggregator's attempt ended without a result ({}): the same update goes \
					 to its next one",
					f.error
				);
				// A lost connection may be a restarted aggregator (its attempt numbers new):
				// any attempt of the round is joined, after a pause.
				ended = (!matches!(f.error, ClientError::Http(_))).then_some(attempt);
				tokio::time::sleep(Duration::from_secs(1)).await;
			}
			Err(f) if f.masked_sent => {
				let why = format!(
					"secure round {round} ended without a result after the aggregator may have \
					 taken this participant's masked update ({}): not sent again",
					f.error
				);
				return Ok(Contribution::SatOut(why));
			}
			Err(f) => return Ok(Contribution::SatOut(format!("round {round}: {}", f.error))),
		}
	}
}

/// What a participant keeps of the round it is taking part in, so that after a restart it sends
/// the same bits or nothing: the seed of its noise and the digest of the noised update.
#[derive(serde::Serialize, serde::Deserialize)]
struct RoundRecord {
	noise_seed: [u8; 32],
	update_digest: [u8; 32],
	secure: bool,
}

/// The digest of an update's bits.
fn update_digest(update: &[f32]) -> [u8; 32] {
	sp_crypto_hashing::blake2_256(&encode_update(update))
}

/// Runs federated job `job_id`'s remaining rounds as its aggregator and returns the final
/// weights. Rounds recorded before a restart are replayed from their pinned aggregates.
pub async fn aggregate_rounds(
	chain: &Chain,
	ipfs: &Ipfs,
	aggregator: &Aggregator,
	job_id: JobId,
	job: &ChainJob,
	fed: &ChainFederatedJob,
	phase_timeout: Duration,
) -> Result<Vec<LayerTensors>> {
	let config = content::model_config(chain, ipfs, job.model).await?;
	let mut global = content::version_layers(chain, ipfs, &config, job.spec.base_version).await?;
	let len = flatten(&global).len();
	replay_rounds(chain, ipfs, job_id, &mut global, fed.rounds_done).await?;
	let participants: Vec<ParticipantId> = (0..fed.participants.0.len() as ParticipantId).collect();
	for round in fed.rounds_done..fed.spec.rounds {
		let info = RoundInfo {
			round,
			session: session(chain, job_id, round),
			participants: participants.clone(),
			len: len as u32,
			mode: mode(&fed.spec.rule),
			min_contributors: min_contributors(fed),
		};
		info!(job = job_id, round, participants = participants.len(), "round open");
		let outcome = match aggregator.run_round(info, phase_timeout).await {
			Ok(o) => o,
			Err(e) => {
				warn!(job = job_id, round, "{e}");
				return Err(e.into());
			}
		};
		let cid = ipfs.add(encode_update(&outcome.aggregate), true, false).await?;
		// The participants have this aggregate and wait for its record: record it, retrying a
		// failed submission for minutes (a secure round handed out cannot be run again: its
		// survivors do not mask twice), rather than run the round again.
		let mut tries = 0u32;
		loop {
			match chain
				.federated_record_round(job_id, round, &cid, outcome.contributors.clone())
				.await
			{
				Ok(_) => break,
				Err(e) if tries < 40 => {
					tries += 1;
					warn!(job = job_id, round, "recording the round: {e}; retrying");
					tokio::time::sleep(Duration::from_secs(2 + u64::from(tries.min(8)))).await;
				}
				Err(e) => return Err(e.into()),
			}
		}
		add_delta(&mut global, &outcome.aggregate)?;
		info!(
			job = job_id,
			round,
			contributors = outcome.contributors.len(),
			norm = dp::l2_norm(&outcome.aggregate),
			"round recorded: aggregate {cid} ({:.2} s with local training, {} B of updates and shares received)",
			outcome.elapsed.as_secs_f64(),
			outcome.bytes_in
		);
	}
	Ok(global)
}

/// Whether round `round` of `job_id` is still to be recorded (an error once the job is gone).
async fn unrecorded(chain: &Chain, job_id: JobId, round: u32) -> Result<bool> {
	let now = chain.federated_job(job_id).await?.context("the job was closed")?;
	if now.rounds_done > round {
		return Ok(false);
	}
	// A job ended (expired, refunded) records no more rounds, closed or not.
	chain.job(job_id).await?.context("the job ended before the round was recorded")?;
	Ok(true)
}

/// Round `round`'s aggregate as recorded on chain and pinned on IPFS.
async fn recorded_aggregate(
	chain: &Chain,
	ipfs: &Ipfs,
	job_id: JobId,
	round: u32,
	len: usize,
) -> Result<Vec<f32>> {
	let cid = chain.federated_round(job_id, round).await?.context("recorded round missing")?;
	let bytes = ipfs.cat(&cid, len * 4).await?;
	decode_update(&bytes, len)
}

/// Adds the pinned aggregates of rounds `0..upto` to the base model: the global model a restarted
/// aggregator or participant resumes from.
async fn replay_rounds(
	chain: &Chain,
	ipfs: &Ipfs,
	job_id: JobId,
	global: &mut [LayerTensors],
	upto: u32,
) -> Result<()> {
	let len = flatten(global).len();
	for round in 0..upto {
		add_delta(global, &recorded_aggregate(chain, ipfs, job_id, round, len).await?)?;
	}
	Ok(())
}

/// An aggregate as pinned on IPFS: little-endian f32s.
pub fn encode_update(values: &[f32]) -> Vec<u8> {
	values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn decode_update(bytes: &[u8], len: usize) -> Result<Vec<f32>> {
	if bytes.len() != len * 4 {
		bail!("an aggregate of {} bytes for a model of {len} values", bytes.len());
	}
	Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
}
