//! Miner role: follow finalized blocks, claim a training job that fits, train, commit, wait for
//! the validation reveal, evaluate, publish the trained layers and reveal. Every step is driven by
//! the job's on-chain status and the local state directory, so a restarted miner picks up where it
//! stopped (and adopts jobs the chain says it holds) instead of claiming twice.

use std::time::Duration;

use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use blyan_primitives::audit as audit_geometry;

use super::{usage, Context};
use crate::{
	audit,
	chain::{
		self, bytes, BoundedVec, Chain, ChainJob, JobId, JobResult, JobStatus, RegistryError,
		RuntimeError, SemVer, H256,
	},
	content, federated,
	ml::{
		self, data,
		lora::LoraConfig,
		trace::{self, TrainState, Trained},
		train::Hyperparams,
		weights, TrainDevice,
	},
	state::{self, StateDir},
	storage::Ipfs,
};

#[derive(clap::Subcommand)]
pub enum Command {
	/// Mine: claim training jobs that fit, train, commit, reveal.
	Mine(MineArgs),
	/// Claim this account's mining-pool share for every ended epoch it earned points in (`mine`
	/// does this by itself once a minute).
	ClaimRewards,
}

#[derive(clap::Args)]
pub struct MineArgs {
	/// Exit after this many jobs have finished.
	#[arg(long)]
	jobs: Option<u32>,
	/// TEST ONLY: misbehave so that verification catches it (the bond gets slashed).
	#[arg(long, hide = true)]
	misbehave: Option<Misbehaviour>,
	/// TEST ONLY, with `--misbehave copy-weights`: the version whose weights are copied.
	#[arg(long, hide = true)]
	copy_from: Option<u64>,
	/// Also aggregate federated jobs, taking participants' updates on this address.
	#[arg(long)]
	fl_listen: Option<std::net::SocketAddr>,
	/// URL recorded on chain for participants (default http://FL_LISTEN).
	#[arg(long, requires = "fl_listen")]
	fl_public_url: Option<String>,
	/// Seconds each step of a federated round waits for late participants.
	#[arg(long, default_value_t = 60)]
	fl_phase_secs: u64,
}

pub async fn run(command: Command, ctx: &Context) -> Result<()> {
	let args = match command {
		Command::Mine(args) => args,
		Command::ClaimRewards => {
			let chain = ctx.connect().await?;
			let n = claim_epoch_rewards(&chain).await?;
			println!("claimed {n} epoch reward(s)");
			return Ok(());
		}
	};
	ctx.serve_metrics().await?;
	let chain = ctx.connect().await?;
	let ipfs = ctx.ipfs().await?;
	if chain.worker_info(chain.account()).await?.is_none() {
		return Err(usage(
			"this account is not a registered worker: run `blyan-worker register` first",
		));
	}
	let state = ctx.state_dir(&chain)?;
	// As `register` declares: memory capped at the GPU's where CUDA jobs train on it.
	let gpu = ml::device::gpu_info(0);
	let device = TrainDevice::for_gpu(&gpu);
	let memory_mb = match &gpu {
		Ok(gpu) if device != TrainDevice::Cpu => gpu.cap_memory_mb(ctx.settings.memory_mb),
		_ => ctx.settings.memory_mb,
	};
	let options = MinerOptions {
		device,
		memory_mb,
		jobs: args.jobs,
		misbehave: args.misbehave,
		copy_from: args.copy_from,
		poll: ctx.poll,
		federated: args.fl_listen.map(|listen| AggregatorOptions {
			listen,
			public_url: args.fl_public_url,
			phase_timeout: Duration::from_secs(args.fl_phase_secs),
		}),
	};
	ctx.follow_earnings(&chain);
	let mut miner = Miner::new(chain, ipfs, state, options);
	ctx.with_reconnect(&mut miner, Miner::set_chain, |m| Box::pin(m.run())).await
}

/// Deliberate faults, for the tests that show the protocol catches them. Never use on a real
/// network: they get the miner's bond slashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Misbehaviour {
	/// Claim a validation loss half of the one reached.
	InflateScore,
	/// Publish a changed layer 1 whose bytes do not match the Merkle root revealed for it.
	CorruptLayer,
	/// Skip every other segment of training: claim its checkpoint without training.
	SkipSteps,
	/// Train on other data than the job's dataset.
	OtherData,
	/// Train nothing: submit the weights of another version (`--copy-from`) as the result.
	CopyWeights,
	/// Record and commit a trace but never publish it, so that nobody can check it.
	WithholdTrace,
	/// A LoRA job: train honestly, but from adapters drawn from another seed than the job's
	/// (standing in for adapters copied or trained elsewhere).
	OtherStart,
}

#[derive(Clone, Debug)]
pub struct MinerOptions {
	pub device: TrainDevice,
	pub memory_mb: u32,
	/// Stop after this many jobs have finished (accepted, rejected or lost); `None`: run forever.
	pub jobs: Option<u32>,
	pub misbehave: Option<Misbehaviour>,
	pub poll: Duration,
	/// Aggregate federated jobs: serve their rounds here.
	pub federated: Option<AggregatorOptions>,
	/// With `--misbehave copy-weights`: the version whose weights are copied.
	pub copy_from: Option<u64>,
}

/// Where a miner that aggregates federated jobs takes participants' updates.
#[derive(Clone, Debug)]
pub struct AggregatorOptions {
	pub listen: std::net::SocketAddr,
	/// URL recorded on chain for participants (default `http://LISTEN`).
	pub public_url: Option<String>,
	/// How long each step of a round waits for late participants.
	pub phase_timeout: Duration,
}

/// A job this miner works on, as kept in `state_dir/mined/<job>.json` (stored flat, as
/// [`MinedJobRecord`], the format every version of the worker has written).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "MinedJobRecord", into = "MinedJobRecord")]
struct MinedJob {
	job: JobId,
	/// The salt of the result commitment.
	salt: [u8; 32],
	/// The salt of the claim commitment: secret until the claim is revealed.
	claim_salt: [u8; 32],
	/// The chain has shown the job as ours (claim included, or adopted after a restart). A
	/// record whose claim never landed is dropped, not counted as a finished job.
	claimed: bool,
	stage: MinerStage,
	/// The candidate version the job's result became (seen once the job is verifying; also for
	/// a job adopted without its record).
	candidate: Option<u64>,
	/// The chain holds our claimed score (revealed to the committee once its commitments were
	/// closed, or found there after a restart).
	claim_revealed: bool,
	/// How the job left this miner, once it has.
	finished: Option<String>,
}

impl MinedJob {
	fn new(job: JobId) -> Self {
		Self {
			job,
			salt: state::salt(),
			claim_salt: state::salt(),
			claimed: false,
			stage: MinerStage::Untrained,
			candidate: None,
			claim_revealed: false,
			finished: None,
		}
	}
}

/// How far this miner has taken a job; each stage holds what the next one needs.
#[derive(Clone, Debug, PartialEq)]
enum MinerStage {
	/// Nothing trained yet.
	Untrained,
	/// Trained and stored locally: the result to commit to (`committed` once the chain holds the
	/// commitment).
	Trained(CommittedResult),
	/// Evaluated on the revealed validation set: the score committed to in the result's reveal
	/// (and revealed to the committee once its commitments are closed).
	Scored { result: CommittedResult, claimed_score: u64 },
}

impl MinerStage {
	fn result(&self) -> Option<&CommittedResult> {
		match self {
			Self::Untrained => None,
			Self::Trained(result) | Self::Scored { result, .. } => Some(result),
		}
	}

	fn result_mut(&mut self) -> Option<&mut CommittedResult> {
		match self {
			Self::Untrained => None,
			Self::Trained(result) | Self::Scored { result, .. } => Some(result),
		}
	}

	fn claimed_score(&self) -> Option<u64> {
		match self {
			Self::Scored { claimed_score, .. } => Some(*claimed_score),
			Self::Untrained | Self::Trained(_) => None,
		}
	}
}

/// [`MinedJob`] as stored: flat, every later field optional or defaulted.
#[derive(Serialize, Deserialize)]
struct MinedJobRecord {
	job: JobId,
	salt: [u8; 32],
	result: Option<CommittedResult>,
	claimed_score: Option<u64>,
	#[serde(default = "state::salt")]
	claim_salt: [u8; 32],
	#[serde(default)]
	claim_revealed: bool,
	candidate: Option<u64>,
	finished: Option<String>,
	#[serde(default)]
	claimed: bool,
}

impl From<MinedJobRecord> for MinedJob {
	fn from(r: MinedJobRecord) -> Self {
		// A score is only ever set on a result (`reveal`), so no stored field is dropped here.
		let stage = match (r.result, r.claimed_score) {
			(None, _) => MinerStage::Untrained,
			(Some(result), None) => MinerStage::Trained(result),
			(Some(result), Some(claimed_score)) => MinerStage::Scored { result, claimed_score },
		};
		Self {
			job: r.job,
			salt: r.salt,
			claim_salt: r.claim_salt,
			claimed: r.claimed,
			stage,
			candidate: r.candidate,
			claim_revealed: r.claim_revealed,
			finished: r.finished,
		}
	}
}

impl From<MinedJob> for MinedJobRecord {
	fn from(j: MinedJob) -> Self {
		let (result, claimed_score) = match j.stage {
			MinerStage::Untrained => (None, None),
			MinerStage::Trained(result) => (Some(result), None),
			MinerStage::Scored { result, claimed_score } => (Some(result), Some(claimed_score)),
		};
		Self {
			job: j.job,
			salt: j.salt,
			result,
			claimed_score,
			claim_salt: j.claim_salt,
			claim_revealed: j.claim_revealed,
			candidate: j.candidate,
			finished: j.finished,
			claimed: j.claimed,
		}
	}
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CommittedResult {
	semver: (u16, u16, u16),
	/// `(layer, cid, merkle root)`.
	layers: Vec<(u16, String, [u8; 32])>,
	weight_root: [u8; 32],
	committed: bool,
	/// The committed training trace (none for federated jobs).
	#[serde(default)]
	trace: Option<CommittedTrace>,
}

/// A training trace as committed: the document lies in `trace/<job>/` of the state directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CommittedTrace {
	root: [u8; 32],
	steps: u32,
	interval: u32,
	cid: String,
	/// The CID of each checkpoint's state blob, in order.
	states: Vec<String>,
}

impl CommittedResult {
	fn to_chain(&self) -> JobResult {
		JobResult {
			semver: SemVer { major: self.semver.0, minor: self.semver.1, patch: self.semver.2 },
			layers: BoundedVec(
				self.layers
					.iter()
					.map(|(layer, cid, root)| chain::LayerDelta {
						layer: *layer,
						cid: bytes(cid),
						merkle_root: H256(*root),
					})
					.collect(),
			),
			weight_root: H256(self.weight_root),
			trace: self.trace.as_ref().map(|t| chain::TraceCommitment {
				root: H256(t.root),
				steps: t.steps,
				interval: t.interval,
				cid: bytes(&t.cid),
			}),
		}
	}
}

/// Claims `chain`'s account's share of the mining pool for every ended epoch in which it earned
/// points; returns how many epochs were claimed.
pub async fn claim_epoch_rewards(chain: &Chain) -> Result<u32> {
	let me = *chain.account();
	let mut claimed = 0;
	for epoch in chain.claimable_epochs(&me).await? {
		chain.claim_epoch_reward(epoch).await?;
		info!(epoch, "claimed the epoch reward from the mining pool");
		claimed += 1;
	}
	Ok(claimed)
}

pub struct Miner {
	chain: Chain,
	ipfs: Ipfs,
	state: StateDir,
	options: MinerOptions,
	/// Jobs this process will not try again: refused claims, jobs that do not fit.
	skipped: std::collections::HashSet<JobId>,
	/// Jobs finished before this run started (`--jobs` counts this run's only).
	finished_before: Option<u32>,
	/// The federated round server and its public URL, once started.
	aggregator: Option<(federated::round::Aggregator, String)>,
}

const KIND: &str = "mined";

/// Why a miner does not claim a job.
enum Unfit {
	/// The job does not go with this worker: not looked at again by this process.
	Never(String),
	/// Not yet (a federated job still waiting for participants): looked at again later.
	NotYet(String),
}

impl Miner {
	pub fn new(chain: Chain, ipfs: Ipfs, state: StateDir, options: MinerOptions) -> Self {
		Self {
			chain,
			ipfs,
			state,
			options,
			skipped: Default::default(),
			finished_before: None,
			aggregator: None,
		}
	}

	/// The federated round server, started on first use.
	async fn aggregator(&mut self) -> Result<(federated::round::Aggregator, String)> {
		if let Some(a) = &self.aggregator {
			return Ok(a.clone());
		}
		let options = self.options.federated.clone().context("not aggregating federated jobs")?;
		let aggregator = federated::round::Aggregator::new(options.phase_timeout);
		let listener = tokio::net::TcpListener::bind(options.listen)
			.await
			.with_context(|| format!("cannot listen on {}", options.listen))?;
		let url = options
			.public_url
			.unwrap_or_else(|| format!("http://{}", listener.local_addr().expect("bound")));
		let app = aggregator.router();
		tokio::spawn(async move { axum::serve(listener, app).await });
		info!("federated rounds served at {url}");
		self.aggregator = Some((aggregator, url));
		Ok(self.aggregator.clone().expect("set above"))
	}

	pub fn set_chain(&mut self, chain: Chain) {
		self.chain = chain;
	}

	fn load(&self, job: JobId) -> Result<Option<MinedJob>> {
		Ok(self.state.load(KIND, &job.to_string())?)
	}

	fn save(&self, record: &MinedJob) -> Result<()> {
		Ok(self.state.save(KIND, &record.job.to_string(), record)?)
	}

	/// Jobs that ended while this miner held them (state dir total).
	fn finished_total(&self) -> u32 {
		let mut n = 0;
		for id in self.state.list(KIND).unwrap_or_default() {
			if let Ok(Some(r)) = self.state.load::<MinedJob>(KIND, &id) {
				n += u32::from(r.claimed && r.finished.is_some());
			}
		}
		n
	}

	/// Whether `--jobs` jobs have finished in this run.
	fn done(&mut self) -> bool {
		let total = self.finished_total();
		let before = *self.finished_before.get_or_insert(total);
		self.options.jobs.is_some_and(|n| total.saturating_sub(before) >= n)
	}

	/// Runs until `options.jobs` jobs have finished (or forever). Returns on the first error; the
	/// caller reconnects on connection errors and calls again.
	pub async fn run(&mut self) -> Result<()> {
		let (mut last, mut next_claim_check): (u32, u32) = (0, 0);
		self.done(); // Counts from here: jobs finished by earlier runs do not.
		loop {
			if self.tick().await? {
				return Ok(());
			}
			// Epoch rewards: checked once a minute (1 s blocks), not every block.
			if last >= next_claim_check {
				next_claim_check = last.saturating_add(60);
				if let Err(e) = claim_epoch_rewards(&self.chain).await {
					if crate::is_connection_error(&e) {
						return Err(e);
					}
					warn!("claiming epoch rewards: {e:#}");
				}
			}
			last = self.chain.next_finalized(last, self.options.poll).await?;
		}
	}

	/// One pass over this miner's jobs, then a claim if it is idle. Returns whether the miner is
	/// finished: `--jobs` jobs done and none held (one held would lapse and be slashed).
	pub async fn tick(&mut self) -> Result<bool> {
		let me = *self.chain.account();
		let held = self.chain.worker_jobs(&me).await?;
		// Jobs the chain says are ours, including ones claimed before a crash.
		for job in &held {
			let mut record = match self.load(*job)? {
				Some(record) => record,
				None => {
					info!(job, "resuming job held on chain");
					MinedJob::new(*job)
				}
			};
			if !record.claimed || record.finished.is_some() {
				record.claimed = true;
				record.finished = None;
				self.save(&record)?;
			}
			if let Err(e) = self.advance(*job).await {
				if crate::is_connection_error(&e) {
					return Err(e);
				}
				warn!(job, "{e:#}; retrying on the next block");
			}
		}
		// Jobs we worked on that the chain no longer lists for us: finished or lost.
		for id in self.state.list(KIND)? {
			let Ok(job) = id.parse::<JobId>() else { continue };
			if held.contains(&job) {
				continue;
			}
			let mut record = match self.load(job)? {
				Some(r) if r.finished.is_none() => r,
				_ => continue,
			};
			if !record.claimed {
				// The claim never landed (refused, or the process stopped before it was sent).
				self.state.remove(KIND, &job.to_string()).ok();
				continue;
			}
			let outcome = self.outcome(&record).await?;
			info!(job, "job finished: {outcome}");
			crate::metrics::metrics().jobs_finished.with_label_values(&[outcome.label()]).inc();
			record.finished = Some(outcome.to_string());
			self.save(&record)?;
		}
		if !held.is_empty() {
			return Ok(false);
		}
		if self.done() {
			return Ok(true);
		}
		self.claim_one().await?;
		Ok(false)
	}

	/// Why a job left this miner, as an `outcome` label of `jobs_finished_total`.
	async fn outcome(&self, record: &MinedJob) -> Result<JobOutcome> {
		if let Some(job) = self.chain.job(record.job).await? {
			return Ok(match job.status {
				JobStatus::Open => JobOutcome::LeaseLost,
				_ => JobOutcome::TakenOver,
			});
		}
		let Some(candidate) = record.candidate else { return Ok(JobOutcome::NoResult) };
		let status = self.chain.version(candidate).await?.map(|v| v.status);
		Ok(match status {
			Some(chain::VersionStatus::Accepted) => JobOutcome::Accepted(candidate),
			Some(chain::VersionStatus::Rejected) => JobOutcome::Rejected(candidate),
			_ => JobOutcome::NoVerdict(candidate),
		})
	}

	/// Whether this miner can do `job`: backend, memory, and a model, data and hyper-parameters
	/// that go together (a job that cannot run would lapse and cost the lease slash).
	async fn fits(&self, job_id: JobId, job: &ChainJob) -> Result<Result<(), Unfit>> {
		let backend_ok = match job.spec.backend {
			chain::Backend::Cpu => true,
			// Only where the driver reported a GPU when the miner started.
			chain::Backend::Cuda => self.options.device != TrainDevice::Cpu,
			chain::Backend::Wgpu => false,
		};
		if !backend_ok || job.spec.min_memory_mb > self.options.memory_mb {
			return Ok(Err(Unfit::Never("needs a backend or memory this worker lacks".into())));
		}
		if &job.creator == self.chain.account() {
			return Ok(Err(Unfit::Never("posted by this account".into())));
		}
		let hp = Hyperparams::from(&chain::training_params(&job.spec));
		let config = match content::model_config(&self.chain, &self.ipfs, job.model).await {
			Ok(config) => config,
			Err(e) if e.is_invalid_content() => return Ok(Err(Unfit::Never(e.to_string()))),
			Err(e) => return Err(e.into()),
		};
		if let Some(fed) = self.chain.federated_job(job_id).await? {
			if job.spec.training.lora.is_some() {
				return Ok(Err(Unfit::Never(
					"federated job with LoRA: rounds aggregate whole layers".into(),
				)));
			}
			// The data are the participants': only the shape of a round's batch is checked.
			if self.options.federated.is_none() {
				return Ok(Err(Unfit::Never(
					"federated job: aggregate it with `mine --fl-listen`".into(),
				)));
			}
			if fed.participants.0.len() < fed.spec.min_participants as usize {
				return Ok(Err(Unfit::NotYet(format!(
					"federated job: {} of {} participants have joined",
					fed.participants.0.len(),
					fed.spec.min_participants
				))));
			}
			return Ok(hp.check_against(&config, None).map_err(Unfit::Never));
		}
		let Some(dataset) = self.chain.dataset(job.spec.dataset).await? else {
			return Ok(Err(Unfit::Never("unknown dataset".into())));
		};
		// Byte models train on the bytes; others on the dataset's tokens, which must exist.
		let tokens = if config.tokenizer.is_none() {
			dataset.size_bytes as usize
		} else {
			let tokens =
				match content::dataset_bytes(&self.chain, &self.ipfs, job.spec.dataset).await {
					Ok(bytes) => content::dataset_tokens(&self.ipfs, &config, bytes).await,
					Err(e) => Err(e),
				};
			match tokens {
				Ok(tokens) => tokens.len(),
				Err(e) if e.is_invalid_content() => return Ok(Err(Unfit::Never(e.to_string()))),
				Err(e) => return Err(e.into()),
			}
		};
		Ok(hp.check_against(&config, Some(tokens)).map_err(Unfit::Never))
	}

	async fn claim_one(&mut self) -> Result<()> {
		for job_id in self.chain.open_jobs(32).await? {
			if self.skipped.contains(&job_id) {
				continue;
			}
			let Some(job) = self.chain.job(job_id).await? else { continue };
			if !matches!(job.status, JobStatus::Open) {
				continue;
			}
			match self.fits(job_id, &job).await? {
				Ok(()) => {}
				Err(Unfit::Never(reason)) => {
					info!(job = job_id, "skipping job: {reason}");
					self.skipped.insert(job_id);
					continue;
				}
				// Looked at again on the next block.
				Err(Unfit::NotYet(reason)) => {
					info!(job = job_id, "not yet: {reason}");
					continue;
				}
			}
			info!(job = job_id, reward = %chain::bly(job.reward), "claiming job");
			// Recorded first: a crash between here and the claim is resolved by the chain's view.
			self.save(&MinedJob::new(job_id))?;
			match self.chain.claim_job(job_id).await {
				Ok(_) => {
					let mut record = MinedJob::new(job_id);
					if let Some(saved) = self.load(job_id)? {
						record = saved;
					}
					record.claimed = true;
					self.save(&record)?;
					crate::metrics::metrics().jobs_claimed.inc();
					info!(job = job_id, "claimed");
					return Ok(());
				}
				Err(e) if e.is_connection() => return Err(e.into()),
				Err(e) => {
					warn!(job = job_id, "claim refused: {e}");
					self.skipped.insert(job_id);
					self.state.remove(KIND, &job_id.to_string()).ok();
				}
			}
		}
		Ok(())
	}

	async fn advance(&mut self, job_id: JobId) -> Result<()> {
		let Some(job) = self.chain.job(job_id).await? else { return Ok(()) };
		let mut record = self.load(job_id)?.context("record saved above")?;
		match &job.status {
			JobStatus::Claimed { .. } => {
				let result = match record.stage.result() {
					Some(result) => result.clone(),
					None => {
						let result = self.train(&job, job_id).await?;
						record.stage = MinerStage::Trained(result.clone());
						self.save(&record)?;
						result
					}
				};
				if self.chain.finalized_number().await? >= job.stage_deadline {
					warn!(job = job_id, "the lease ended before the result was ready");
					return Ok(());
				}
				let hash = chain::result_commitment(
					job_id,
					self.chain.account(),
					&result.to_chain(),
					&record.salt,
				);
				let semver = result.to_chain().semver;
				let committed = self.chain.commit_result(job_id, hash, semver).await;
				match committed {
					Ok(_) => {}
					// Another version took this SemVer: nothing is committed yet, so take the next
					// patch and commit again on the next block.
					Err(e)
						if matches!(
							e.pallet_error(),
							Some(RuntimeError::Registry(
								RegistryError::SemVerTaken | RegistryError::SemVerReserved
							))
						) =>
					{
						if let Some(r) = record.stage.result_mut() {
							r.semver.2 = r.semver.2.wrapping_add(1);
							warn!(
								job = job_id,
								"SemVer taken; trying {}.{}.{}", r.semver.0, r.semver.1, r.semver.2
							);
						}
						self.save(&record)?;
						return Ok(());
					}
					Err(e) => return Err(e.into()),
				}
				crate::metrics::metrics().results_committed.inc();
				info!(
					job = job_id,
					"committed to the result (weights fixed, validation set still unknown)"
				);
				if let Some(r) = record.stage.result_mut() {
					r.committed = true;
				}
				self.save(&record)?;
			}
			JobStatus::Committed { .. } => {}
			JobStatus::ValidationRevealed { .. } => self.reveal(&job, &mut record).await?,
			JobStatus::Verifying { candidate, .. } => {
				// The claim first: it has a deadline, and a failing defence must not hold it up.
				let claim = self.reveal_claim(job_id, &mut record).await;
				self.defend(job_id, &job).await?;
				claim?;
				if record.candidate != Some(*candidate) {
					info!(
						job = job_id,
						candidate,
						"result is candidate version {candidate}; awaiting the committee"
					);
					record.candidate = Some(*candidate);
					self.save(&record)?;
				}
			}
			JobStatus::Open => {}
		}
		Ok(())
	}

	fn layer_file(&self, job: JobId, layer: u16) -> std::path::PathBuf {
		self.state.path(&["weights", &job.to_string(), &format!("layer-{layer}.safetensors")])
	}

	/// Trains the job and stores the layers locally; returns the result to commit to.
	async fn train(&mut self, job: &ChainJob, job_id: JobId) -> Result<CommittedResult> {
		let base_semver = self
			.chain
			.version(job.spec.base_version)
			.await?
			.context("base version vanished")?
			.semver;
		if let Some(fed) = self.chain.federated_job(job_id).await? {
			let (aggregator, url) = self.aggregator().await?;
			if fed.endpoint.as_ref().map(|e| e.0.as_slice()) != Some(url.as_bytes()) {
				self.chain.federated_set_endpoint(job_id, &url).await?;
				info!(job = job_id, "federated job: participants send their updates to {url}");
			}
			let phase = self.options.federated.as_ref().expect("aggregator started").phase_timeout;
			let trained = federated::job::aggregate_rounds(
				&self.chain,
				&self.ipfs,
				&aggregator,
				job_id,
				job,
				&fed,
				phase,
			)
			.await?;
			return self.store_result(job_id, base_semver, trained, 0, None).await;
		}
		let params = chain::training_params(&job.spec);
		let hp = Hyperparams::from(&params);
		let lora = params.lora.as_ref().map(LoraConfig::from_params);
		let config = content::model_config(&self.chain, &self.ipfs, job.model).await?;
		info!(
			job = job_id,
			params = config.parameter_count(),
			"fetching base version {} and dataset {}",
			job.spec.base_version,
			job.spec.dataset
		);
		let base = content::version_layers(&self.chain, &self.ipfs, &config, job.spec.base_version)
			.await?;
		let train_data = self.training_data(job).await?;
		let copied = match (self.options.misbehave, self.options.copy_from) {
			(Some(Misbehaviour::CopyWeights), Some(version)) => {
				warn!(
					job = job_id,
					"MISBEHAVING: submitting version {version}'s weights, untrained"
				);
				Some(content::version_layers(&self.chain, &self.ipfs, &config, version).await?)
			}
			(Some(Misbehaviour::CopyWeights), None) => bail!("copy-weights needs --copy-from"),
			_ => None,
		};
		if copied.is_some() && lora.is_some() {
			bail!("copy-weights copies whole layers: it applies to full jobs only");
		}
		// A LoRA job trains adapters from peft's initialisation (A random, B zero) drawn from the
		// job's seed; its trace checkpoints only the adapters and their moments.
		let initial = match &lora {
			Some(lora) => {
				info!(
					job = job_id,
					rank = lora.rank,
					adapter_params = lora.parameter_count(&config),
					"training LoRA adapters over the frozen base"
				);
				let seed = if self.options.misbehave == Some(Misbehaviour::OtherStart) {
					warn!(job = job_id, "MISBEHAVING: adapters drawn from another seed");
					job.spec.seed ^ 1
				} else {
					job.spec.seed
				};
				lora.init(&config, seed)?
			}
			None => base.clone(),
		};
		let interval = self.chain.checkpoint_interval().await?;
		// The audit re-runs a CPU job's training on the CPU: it must be trained there.
		let device = match job.spec.backend {
			chain::Backend::Cpu => TrainDevice::Cpu,
			_ => self.options.device,
		};
		info!(
			job = job_id,
			steps = hp.steps,
			batch = hp.batch_size,
			seq = hp.seq_len,
			checkpoint_every = interval,
			?device,
			"training"
		);
		let bar = ProgressBar::new(hp.steps as u64);
		bar.set_style(
			ProgressStyle::with_template("{spinner} train [{bar:30}] {pos}/{len} {msg} ({eta})")
				.expect("valid template"),
		);
		let (seed, steps, misbehave) = (job.spec.seed, hp.steps, self.options.misbehave);
		let report_every = (steps / 10).max(1);
		let bar2 = bar.clone();
		let (trained, checkpoints) = tokio::task::spawn_blocking(move || -> Result<_> {
			// Timed from the end of the first step: that one also pays for loading the model.
			let mut step_started: Option<std::time::Instant> = None;
			let mut on_step = |step: u32, loss: f32| {
				if let Some(started) = step_started {
					crate::metrics::metrics()
						.train_step_seconds
						.observe(started.elapsed().as_secs_f64());
				}
				step_started = Some(std::time::Instant::now());
				bar2.set_position(step as u64);
				bar2.set_message(format!("loss {loss:.4}"));
				if step == 1 || step.is_multiple_of(report_every) || step == steps {
					info!(job = job_id, step, "training loss {loss:.4}");
				}
			};
			let trained = match &lora {
				Some(lora) => Trained::Adapters { lora, base: &base },
				None => Trained::Full,
			};
			let mut state = TrainState::initial(initial);
			let mut checkpoints = vec![state.clone()];
			for segment in 0..audit_geometry::segments(steps, interval) {
				let to = audit_geometry::checkpoint_step(steps, interval, segment + 1);
				state = match misbehave {
					Some(Misbehaviour::SkipSteps) if segment % 2 == 1 => {
						warn!(job = job_id, segment, "MISBEHAVING: segment skipped, not trained");
						trace::skip_segment(&state, train_data.len(), &hp, seed, to)
					}
					Some(Misbehaviour::CopyWeights) => {
						let mut next = trace::skip_segment(&state, train_data.len(), &hp, seed, to);
						if to == steps {
							next.layers = copied.clone().expect("checked above");
						}
						next
					}
					_ => ml::train_segment(
						&config,
						trained,
						&state,
						&train_data,
						&hp,
						seed,
						to,
						device,
						&mut on_step,
					)?,
				};
				checkpoints.push(state.clone());
			}
			Ok((state.layers.clone(), checkpoints))
		})
		.await??;
		bar.finish_and_clear();
		let trace = self.store_trace(job_id, steps, interval, &checkpoints).await?;
		// Adapters of block `b` are the version's layer `b + 1`, the layer they adapt.
		let first_layer = u16::from(params.lora.is_some());
		self.store_result(job_id, base_semver, trained, first_layer, Some(trace)).await
	}

	/// The data this miner trains a job on: the job's dataset (or, misbehaving, other data).
	async fn training_data(&self, job: &ChainJob) -> Result<Vec<i64>> {
		let mut bytes = content::dataset_bytes(&self.chain, &self.ipfs, job.spec.dataset).await?;
		if self.options.misbehave == Some(Misbehaviour::OtherData) {
			warn!("MISBEHAVING: training on other data than the job's dataset");
			bytes = data::generate_corpus(job.spec.seed ^ 0x5eed, bytes.len());
		}
		let config = content::model_config(&self.chain, &self.ipfs, job.model).await?;
		Ok(content::dataset_tokens(&self.ipfs, &config, bytes).await?)
	}

	fn trace_file(&self, job: JobId, name: &str) -> std::path::PathBuf {
		self.state.path(&["trace", &job.to_string(), name])
	}

	/// Writes the checkpoints' state blobs and the trace document to the state directory and
	/// computes their CIDs (published with the result, after the validation reveal).
	async fn store_trace(
		&self,
		job_id: JobId,
		steps: u32,
		interval: u32,
		checkpoints: &[TrainState],
	) -> Result<CommittedTrace> {
		std::fs::create_dir_all(self.state.path(&["trace", &job_id.to_string()]))?;
		let mut states = Vec::with_capacity(checkpoints.len());
		let mut doc = audit::TraceDoc { steps, interval, checkpoints: Vec::new() };
		for (i, state) in checkpoints.iter().enumerate() {
			let blob = state.encode();
			let cid = self.ipfs.add(blob.clone(), false, true).await?;
			std::fs::write(self.trace_file(job_id, &format!("{i}.state")), &blob)?;
			doc.checkpoints.push((state.summary(), cid.clone().into_bytes()));
			states.push(cid);
		}
		let bytes = codec::Encode::encode(&doc);
		std::fs::write(self.trace_file(job_id, "trace.scale"), &bytes)?;
		let cid = self.ipfs.add(bytes, false, true).await?;
		info!(job = job_id, checkpoints = states.len(), "training trace recorded");
		Ok(CommittedTrace { root: doc.root().0, steps, interval, cid, states })
	}

	/// Pins the trace document and every state blob (after the validation reveal).
	async fn publish_trace(&self, job_id: JobId, trace: &CommittedTrace) -> Result<()> {
		for (i, cid) in trace.states.iter().enumerate() {
			let blob = std::fs::read(self.trace_file(job_id, &format!("{i}.state")))?;
			if self.ipfs.add(blob, true, false).await? != *cid {
				bail!("IPFS gave checkpoint {i} another CID than at commit time");
			}
		}
		let doc = std::fs::read(self.trace_file(job_id, "trace.scale"))?;
		if self.ipfs.add(doc, true, false).await? != trace.cid {
			bail!("IPFS gave the trace document another CID than at commit time");
		}
		info!(job = job_id, checkpoints = trace.states.len(), "training trace pinned to IPFS");
		Ok(())
	}

	/// Answers the bisection moves the chain waits for on this miner's job: the state at the
	/// middle step, re-run from the disputed segment's start checkpoint and published.
	async fn defend(&self, job_id: JobId, job: &ChainJob) -> Result<()> {
		let me = *self.chain.account();
		for duty in self.chain.audit_duties(&me).await? {
			let chain::AuditDuty::Bisect { job: j, challenge } = duty else { continue };
			if j != job_id {
				continue;
			}
			let Some(dispute) = self.chain.dispute(job_id, challenge).await? else { continue };
			let (segment, mid) = (dispute.segment, dispute.lo.saturating_add(dispute.hi) / 2);
			let data = self.training_data(job).await?;
			let run =
				Arc::new(audit::TrainingRun::with_data(&self.chain, &self.ipfs, job, data).await?);
			let blob = std::fs::read(self.trace_file(job_id, &format!("{segment}.state")))?;
			let start = run.decode_state(&blob)?;
			let state = run.rerun(start, mid).await?;
			let cid = self.ipfs.add(state.encode(), true, false).await?;
			let hash = state.summary().hash();
			self.chain.bisect(job_id, challenge, mid, H256(hash.0), &cid).await?;
			info!(job = job_id, segment, step = mid, "challenged: named the state at step {mid}");
		}
		Ok(())
	}

	/// Writes trained layers (the version's layers from `first_layer` on) to the state
	/// directory and computes their CIDs and roots: the result to commit to.
	async fn store_result(
		&self,
		job_id: JobId,
		base_semver: SemVer,
		trained: Vec<weights::LayerTensors>,
		first_layer: u16,
		trace: Option<CommittedTrace>,
	) -> Result<CommittedResult> {
		std::fs::create_dir_all(self.state.path(&["weights", &job_id.to_string()]))?;
		let mut published = Vec::with_capacity(trained.len());
		let mut roots = Vec::with_capacity(trained.len());
		for (i, layer) in (first_layer..).zip(&trained) {
			let root = weights::layer_root(layer);
			let mut blob = weights::encode_layer(layer);
			if self.options.misbehave == Some(Misbehaviour::CorruptLayer) && i == 1 {
				let mut corrupt = layer.clone();
				corrupt[0].values[0] += 1.0;
				blob = weights::encode_layer(&corrupt);
				warn!(
					job = job_id,
					"MISBEHAVING: layer 1's bytes will not match its revealed root"
				);
			}
			std::fs::write(self.layer_file(job_id, i), &blob)?;
			published.push((i, blob, root));
			roots.push(root);
		}
		// CIDs only: the layers go to IPFS after the validation reveal, with the result.
		let deltas = content::publish_layers(&self.ipfs, &published, true).await?;
		Ok(CommittedResult {
			semver: (
				base_semver.major,
				base_semver.minor.saturating_add(1),
				(job_id & 0xffff) as u16,
			),
			layers: deltas
				.into_iter()
				.map(|d| (d.layer, String::from_utf8_lossy(&d.cid.0).into_owned(), d.merkle_root.0))
				.collect(),
			weight_root: weights::weight_root(&roots),
			committed: false,
			trace,
		})
	}

	/// Evaluates the committed layers on the revealed validation set, publishes them and reveals.
	async fn reveal(&self, job: &ChainJob, record: &mut MinedJob) -> Result<()> {
		let job_id = record.job;
		let result = record.stage.result().cloned().context("a committed job has a result")?;
		let params = chain::training_params(&job.spec);
		let hp = Hyperparams::from(&params);
		if record.stage.claimed_score().is_none() {
			let validation =
				job.validation.as_ref().context("revealed job has a validation set")?;
			// A set we cannot fetch keeps the result back (retried; at worst the lease slash):
			// revealing would publish the weights on a claim the creator could refute by
			// serving the set to the committee only.
			let config = content::model_config(&self.chain, &self.ipfs, job.model).await?;
			let validation =
				content::validation_tokens(&self.ipfs, &config, &validation.cid.0).await?;
			// Score what was committed, read back from disk: the verifiers load the same bytes.
			let mut layers = Vec::new();
			for (layer, _, _) in &result.layers {
				let blob = std::fs::read(self.layer_file(job_id, *layer))?;
				layers.push(weights::decode_layer(*layer as usize, &blob)?);
			}
			// Adapters are scored merged into their base, as the verifiers load them.
			if let Some(lora) = &params.lora {
				let lora = LoraConfig::from_params(lora);
				let base = content::version_layers(
					&self.chain,
					&self.ipfs,
					&config,
					job.spec.base_version,
				)
				.await?;
				layers = ml::lora::merge(&config, &lora, &base, &layers)?;
			}
			let loss = tokio::task::spawn_blocking(move || {
				ml::evaluate_layers(&config, &layers, &validation, &hp)
			})
			.await??;
			// A set smaller than one batch is the creator's trap, and every verifier sees the
			// same: nobody can score the base on it, which puts the creator at fault (the
			// escrow and its bond are paid to us). We claim the invalid score they will find.
			let mut score = match loss {
				Some(loss) => {
					info!(job = job_id, "validation loss of the trained model: {loss:.6}");
					ml::train::score(loss)
				}
				None => {
					warn!(
						job = job_id,
						"the creator's validation set is smaller than one batch; claiming an \
						 invalid score"
					);
					ml::train::INVALID_SCORE
				}
			};
			if self.options.misbehave == Some(Misbehaviour::InflateScore) {
				score /= 2;
				warn!(
					job = job_id,
					"MISBEHAVING: claiming a validation loss of {:.6}",
					score as f64 / 1e9
				);
			}
			record.stage = MinerStage::Scored { result: result.clone(), claimed_score: score };
			self.save(record)?;
		}
		let mut published = Vec::new();
		for (layer, _, root) in &result.layers {
			published.push((*layer, std::fs::read(self.layer_file(job_id, *layer))?, *root));
		}
		let deltas = content::publish_layers(&self.ipfs, &published, false).await?;
		for (d, (_, cid, _)) in deltas.iter().zip(&result.layers) {
			if d.cid.0 != cid.as_bytes() {
				return Err(anyhow!("IPFS gave layer {} another CID than at commit time", d.layer));
			}
		}
		info!(job = job_id, layers = deltas.len(), "trained layers pinned to IPFS");
		match &result.trace {
			Some(_) if self.options.misbehave == Some(Misbehaviour::WithholdTrace) => {
				warn!(job = job_id, "MISBEHAVING: withholding the training trace");
			}
			Some(trace) => self.publish_trace(job_id, trace).await?,
			None => {}
		}
		let claimed = record.stage.claimed_score().context("the score is set above")?;
		// The claim's salt must be on disk before the chain holds its commitment.
		self.save(record)?;
		// Only a commitment to the score: the committee must not see it before committing.
		let claim =
			chain::claim_commitment(job_id, self.chain.account(), claimed, &record.claim_salt);
		self.chain.reveal_result(job_id, result.to_chain(), claim, record.salt).await?;
		crate::metrics::metrics().results_revealed.inc();
		info!(
			job = job_id,
			"revealed the result with a commitment to its loss ({:.6}, revealed once the committee \
			 has committed)",
			claimed as f64 / 1e9
		);
		Ok(())
	}

	/// Reveals our claimed score in the round's reveal phase (the committee's commitments are
	/// closed): a claim never revealed counts as a false one once a quorum decides. It waits
	/// for a quorum's reveals, or for the end of the window to come near, so that a committee
	/// that splits hands its redraw no claim to copy; and it never reveals to a committee too
	/// few of whose members committed for a quorum (the chain refuses that).
	async fn reveal_claim(&self, job_id: JobId, record: &mut MinedJob) -> Result<()> {
		if record.claim_revealed {
			return Ok(());
		}
		let Some(round) = self.chain.round(job_id).await? else { return Ok(()) };
		if round.claimed_score.is_some() {
			return self.mark_claim_revealed(record);
		}
		if round.phase != chain::Phase::Reveal {
			return Ok(());
		}
		let seats = round.committee.0.len() as u32;
		let need = blyan_primitives::pol::quorum(seats);
		let committed = round.committee.0.iter().filter(|m| m.commitment.is_some()).count();
		if (committed as u32) < need {
			return Ok(());
		}
		let decided = round.committee.0.iter().filter_map(|m| m.scores).any(|pair| {
			round.committee.0.iter().filter(|m| m.scores == Some(pair)).count() as u32 >= need
		});
		let closing =
			self.chain.finalized_number().await?.saturating_add(CLAIM_MARGIN) >= round.deadline;
		if !decided && !closing {
			return Ok(());
		}
		let claimed =
			record.stage.claimed_score().context("a revealed result has a claimed score")?;
		self.chain.reveal_claim(job_id, claimed, record.claim_salt).await?;
		info!(
			job = job_id,
			"commitments closed: revealed the claimed loss {:.6}",
			claimed as f64 / 1e9
		);
		self.mark_claim_revealed(record)
	}

	/// Records that the chain holds our claimed score.
	fn mark_claim_revealed(&self, record: &mut MinedJob) -> Result<()> {
		record.claim_revealed = true;
		self.save(record)
	}
}

/// Blocks before a reveal window's end at which the claim is revealed even without a quorum's
/// reveals: room for finality lag and inclusion (1 s blocks on the dev chain).
const CLAIM_MARGIN: chain::BlockNumber = 10;

/// Why a job left this miner ([`Miner::outcome`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JobOutcome {
	/// The lease lapsed: the job reopened for others.
	LeaseLost,
	/// The job went on under another worker.
	TakenOver,
	/// The job ended before this miner revealed a result.
	NoResult,
	Accepted(chain::VersionId),
	Rejected(chain::VersionId),
	/// The candidate got no verdict (no quorum): the creator was refunded.
	NoVerdict(chain::VersionId),
}

impl JobOutcome {
	/// The `outcome` label of `jobs_finished_total`.
	fn label(self) -> &'static str {
		match self {
			Self::Accepted(_) => "accepted",
			Self::Rejected(_) => "rejected",
			Self::NoVerdict(_) => "no_verdict",
			Self::LeaseLost | Self::TakenOver | Self::NoResult => "lost",
		}
	}
}

impl std::fmt::Display for JobOutcome {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		match self {
			Self::LeaseLost => write!(f, "lease lost: the job reopened for others"),
			Self::TakenOver => write!(f, "taken over by another worker"),
			Self::NoResult => write!(f, "ended before a result was revealed"),
			Self::Accepted(v) => write!(f, "version {v} ACCEPTED, reward paid"),
			Self::Rejected(v) => write!(f, "version {v} REJECTED, bond slashed"),
			Self::NoVerdict(v) => {
				write!(f, "version {v} left a candidate: no verdict, creator refunded")
			}
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn result() -> CommittedResult {
		CommittedResult {
			semver: (1, 2, 0),
			layers: vec![(1, "bafylayer".into(), [1; 32])],
			weight_root: [2; 32],
			committed: true,
			trace: None,
		}
	}

	/// Each stage survives the state directory: written flat and read back the same.
	#[test]
	fn every_stage_is_stored_and_read_back() {
		let stages = [
			MinerStage::Untrained,
			MinerStage::Trained(result()),
			MinerStage::Scored { result: result(), claimed_score: 7 },
		];
		for stage in stages {
			let job = MinedJob {
				stage,
				claimed: true,
				candidate: Some(3),
				claim_revealed: true,
				..MinedJob::new(4)
			};
			let json = serde_json::to_string(&job).unwrap();
			assert_eq!(serde_json::from_str::<MinedJob>(&json).unwrap(), job, "{json}");
		}
	}

	const SALT: &str = "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]";
	const RESULT: &str = r#"{"semver":[1,2,0],"layers":[[1,"bafylayer",[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]]],"weight_root":[2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2],"committed":true,"trace":null}"#;

	/// Records as earlier workers wrote them load at the stage their fields show and are written
	/// back with every field they had.
	#[test]
	fn records_of_earlier_workers_load_at_their_stage_and_keep_every_field() {
		let full = |result: &str, score: &str, candidate: &str, revealed: bool, finished: &str| {
			format!(
				r#"{{"job":4,"salt":{SALT},"result":{result},"claimed_score":{score},"claim_salt":{SALT},"claim_revealed":{revealed},"candidate":{candidate},"finished":{finished},"claimed":true}}"#
			)
		};
		let cases = [
			// Claimed, nothing trained.
			(full("null", "null", "null", false, "null"), MinerStage::Untrained),
			// Trained and committed.
			(full(RESULT, "null", "null", false, "null"), MinerStage::Trained(result())),
			// Revealed, verifying, the claim revealed, then finished.
			(
				full(RESULT, "7", "3", true, r#""version 3 ACCEPTED, reward paid""#),
				MinerStage::Scored { result: result(), claimed_score: 7 },
			),
			// Adopted after its state directory was lost: no result, yet the candidate and the
			// claim found on chain.
			(full("null", "null", "3", true, "null"), MinerStage::Untrained),
		];
		for (json, stage) in cases {
			let job: MinedJob = serde_json::from_str(&json).unwrap();
			assert_eq!(job.stage, stage, "{json}");
			let back: serde_json::Value = serde_json::to_value(&job).unwrap();
			assert_eq!(back, serde_json::from_str::<serde_json::Value>(&json).unwrap());
		}
		// The first records had neither the claim fields nor `claimed`.
		let oldest = format!(
			r#"{{"job":5,"salt":{SALT},"result":{RESULT},"claimed_score":7,"candidate":null,"finished":null}}"#
		);
		let job: MinedJob = serde_json::from_str(&oldest).unwrap();
		assert_eq!(job.stage, MinerStage::Scored { result: result(), claimed_score: 7 });
		assert!(!job.claimed && !job.claim_revealed && job.candidate.is_none());
	}
}
