//! Creator role: register a model (its root weights pinned to IPFS), publish a dataset, post a
//! training job with a committed validation set, and reveal that set once a miner has committed.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::{
	chain::{
		self, blyan, bytes, Architecture, BoundedVec, Chain, JobId, JobSpec, JobStatus, SemVer,
		VersionStatus, H256,
	},
	content,
	ml::{self, model::ModelConfig, train::Hyperparams, weights},
	state::{self, StateDir},
	storage::Ipfs,
};

/// Registers a model with freshly initialised root weights; returns `(model, root version)`.
pub async fn register_model(
	chain: &Chain,
	ipfs: &Ipfs,
	name: &str,
	config: &ModelConfig,
	seed: u64,
	licence: &str,
) -> Result<(u64, u64)> {
	config.validate().map_err(|e| anyhow!(e))?;
	register_model_layers(chain, ipfs, name, config, &ml::init_layers(config, seed), licence).await
}

/// Registers a model whose root weights are `layers` (e.g. an imported checkpoint); returns
/// `(model, root version)`.
pub async fn register_model_layers(
	chain: &Chain,
	ipfs: &Ipfs,
	name: &str,
	config: &ModelConfig,
	layers: &[weights::LayerTensors],
	licence: &str,
) -> Result<(u64, u64)> {
	config.validate().map_err(|e| anyhow!(e))?;
	let config_doc = serde_json::to_vec_pretty(config)?;
	let config_cid = ipfs.add(config_doc.clone(), true, false).await?;
	let roots: Vec<[u8; 32]> = layers.iter().map(weights::layer_root).collect();
	let blobs: Vec<(u16, Vec<u8>, [u8; 32])> = layers
		.iter()
		.enumerate()
		.map(|(i, l)| (i as u16, weights::encode_layer(l), roots[i]))
		.collect();
	let deltas = content::publish_layers(ipfs, &blobs, false).await?;
	let architecture = Architecture {
		family: bytes(&config.family),
		config_hash: H256(sp_crypto_hashing::blake2_256(&config_doc)),
		config_cid: bytes(&config_cid),
		layer_count: config.layer_count() as u16,
	};
	let events = chain
		.submit(
			"register_model",
			&blyan::tx().registry().register_model(
				bytes(name),
				architecture,
				bytes(licence),
				SemVer { major: 1, minor: 0, patch: 0 },
				BoundedVec(deltas),
				H256(weights::weight_root(&roots)),
			),
		)
		.await?;
	let registered = events
		.find_first::<blyan::registry::events::ModelRegistered>()
		.context("no ModelRegistered event")??;
	Ok((registered.model, registered.root_version))
}

/// Publishes a dataset (pinned) and registers it; returns its id.
pub async fn register_dataset(
	chain: &Chain,
	ipfs: &Ipfs,
	data: Vec<u8>,
	licence: &str,
) -> Result<u64> {
	let hash = sp_crypto_hashing::blake2_256(&data);
	let size = data.len() as u64;
	let cid = ipfs.add(data, true, false).await?;
	let events = chain
		.submit(
			"register_dataset",
			&blyan::tx().registry().register_dataset(bytes(&cid), H256(hash), size, bytes(licence)),
		)
		.await?;
	let registered = events
		.find_first::<blyan::registry::events::DatasetRegistered>()
		.context("no DatasetRegistered event")??;
	Ok(registered.dataset)
}

/// A posted job's secret half, kept in `state_dir/posted/<job>.json` until the reveal.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PostedJob {
	job: JobId,
	validation_file: std::path::PathBuf,
	validation_cid: String,
	salt: [u8; 32],
	revealed: bool,
}

pub struct JobRequest {
	pub base_version: u64,
	pub dataset: u64,
	pub validation: Vec<u8>,
	pub hyperparams: Hyperparams,
	pub seed: u64,
	pub reward: chain::Balance,
	/// Blocks from now until claims close.
	pub deadline_in: u32,
	/// Blocks a claim lasts.
	pub lease: u32,
	pub min_improvement_percent: Option<u32>,
	/// Where the job trains (a CUDA job is verified by re-evaluation only).
	pub backend: chain::Backend,
	/// Make the job federated (posted and configured in one `utility.batch_all`).
	pub federated: Option<chain::ChainFederatedSpec>,
}

/// Posts a job. The validation set stays on this machine (only its CID, salted and hashed, goes on
/// chain) until a miner has committed; returns the job id.
pub async fn post_job(
	chain: &Chain,
	ipfs: &Ipfs,
	state: &StateDir,
	request: JobRequest,
) -> Result<JobId> {
	let training = request.hyperparams.to_params().map_err(|e| anyhow!(e))?;
	let windows = ml::data::evaluation_batches(
		&ml::data::encode(&request.validation),
		request.hyperparams.batch_size,
		request.hyperparams.seq_len + 1,
		1,
	);
	if windows.is_empty() {
		bail!("the validation set is smaller than one evaluation batch (batch_size × (seq_len + 1) bytes)");
	}
	// A job whose base the committee cannot score on this set puts its creator at fault (the
	// reward and the creator bond go to the miner): check it here, on the CPU path the
	// committee uses, before anything is held.
	let base = chain
		.version(request.base_version)
		.await?
		.with_context(|| format!("version {} does not exist", request.base_version))?;
	let config = content::model_config(chain, ipfs, base.model).await?;
	request.hyperparams.check_against(&config, None).map_err(|e| anyhow!(e))?;
	let layers = content::version_layers(chain, ipfs, &config, request.base_version).await?;
	let (validation, hp) = (ml::data::encode(&request.validation), request.hyperparams.clone());
	let base_loss = tokio::task::spawn_blocking(move || {
		ml::evaluate_layers(&config, &layers, &validation, &hp)
	})
	.await??;
	match base_loss {
		Some(loss) if ml::train::score(loss) != ml::train::INVALID_SCORE => {
			info!(base = request.base_version, "base version's validation loss: {loss:.6}");
		}
		_ => bail!(
			"version {} cannot be evaluated on this validation set (its loss is not a finite \
			 number): a miner would be paid without a measurable result",
			request.base_version
		),
	}
	let validation_cid = ipfs.add(request.validation.clone(), false, true).await?;
	let salt = state::salt();
	let now = chain.finalized_number().await?;
	let spec = JobSpec {
		base_version: request.base_version,
		dataset: request.dataset,
		validation_commitment: chain::validation_commitment(validation_cid.as_bytes(), &salt),
		training: chain::chain_training_params(&training),
		seed: request.seed,
		backend: request.backend,
		min_memory_mb: 256,
		deadline: now.saturating_add(request.deadline_in),
		lease: request.lease,
		min_improvement: request.min_improvement_percent.map(|p| {
			blyan::runtime_types::sp_arithmetic::per_things::Perbill(p.min(100) * 10_000_000)
		}),
	};
	// The secret half is on disk before the job exists: losing it would forfeit the reward.
	let pending = format!("pending-{}", hex::encode(&salt[..8]));
	std::fs::create_dir_all(state.path(&["posted"]))?;
	let validation_file = state.path(&["posted", &format!("{pending}.validation")]);
	std::fs::write(&validation_file, &request.validation)?;
	let mut posted = PostedJob { job: 0, validation_file, validation_cid, salt, revealed: false };
	state.save("posted", &pending, &posted)?;
	let events = match request.federated {
		None => {
			chain.submit("post_job", &blyan::tx().jobs().post_job(spec, request.reward)).await?
		}
		Some(federated) => {
			use blyan::runtime_types::{
				blyan_runtime::RuntimeCall, pallet_federated::pallet::Call as FederatedCall,
				pallet_jobs::pallet::Call as JobsCall,
			};
			// All or nothing: if another job takes this id first, `create` fails (not its
			// creator) and the post is undone with it.
			let job = chain.next_job_id().await?;
			let calls = vec![
				RuntimeCall::Jobs(JobsCall::post_job { spec, reward: request.reward }),
				RuntimeCall::Federated(FederatedCall::create { job, spec: federated }),
			];
			chain
				.submit("post_job + federated.create", &blyan::tx().utility().batch_all(calls))
				.await?
		}
	};
	let job =
		events.find_first::<blyan::jobs::events::JobPosted>().context("no JobPosted event")??.job;
	posted.job = job;
	state.save("posted", &job.to_string(), &posted)?;
	state.remove("posted", &pending).ok();
	Ok(job)
}

/// How a job ended, for the creator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobEnd {
	Accepted {
		version: u64,
	},
	Rejected {
		version: u64,
	},
	/// Refunded: never claimed, no verdict, or the worker withheld its result.
	Refunded,
}

/// Watches a posted job: reveals the validation set after the miner's commitment, reports each
/// stage, and returns when the job has ended.
pub async fn watch_job(
	chain: &Chain,
	ipfs: &Ipfs,
	state: &StateDir,
	job: JobId,
	poll: Duration,
) -> Result<JobEnd> {
	let mut posted: PostedJob = state
		.load("posted", &job.to_string())?
		.with_context(|| format!("job {job} was not posted from this state dir"))?;
	let mut last_stage = String::new();
	let mut candidate = None;
	let mut last_block = 0;
	loop {
		let Some(info) = chain.job(job).await? else { break };
		let stage = match &info.status {
			JobStatus::Open => "open".to_string(),
			JobStatus::Claimed { worker } => format!("claimed by {worker}"),
			JobStatus::Committed { worker, semver, .. } => format!(
				"{worker} committed to version {}.{}.{}",
				semver.major, semver.minor, semver.patch
			),
			JobStatus::ValidationRevealed { .. } => {
				"validation set revealed; waiting for the result".into()
			}
			JobStatus::Verifying { candidate: c, .. } => {
				candidate = Some(*c);
				// Traced results are audited (spot checks, challenges) before the committee scores.
				let audited = chain.audit(job).await?.is_some();
				// The miner's claimed loss is public once the committee has committed.
				let claimed = match chain.round(job).await?.and_then(|r| r.claimed_score) {
					Some(score) => format!(", claimed loss {:.6}", score as f64 / 1e9),
					None => String::new(),
				};
				format!(
					"candidate version {c}{claimed}: {}",
					if audited {
						"training audit (segments re-run, challenges open)"
					} else {
						"committee verifying"
					}
				)
			}
		};
		if stage != last_stage {
			info!(job, "{stage}");
			last_stage = stage;
		}
		if matches!(info.status, JobStatus::Committed { .. }) && !posted.revealed {
			let data = std::fs::read(&posted.validation_file)?;
			let cid = ipfs.add(data, true, false).await?;
			if cid != posted.validation_cid {
				bail!(
					"IPFS returned another CID for the validation set than when the job was posted"
				);
			}
			chain
				.submit(
					"reveal_validation",
					&blyan::tx().jobs().reveal_validation(job, bytes(&cid), posted.salt),
				)
				.await?;
			info!(job, "validation set revealed and pinned ({cid})");
			posted.revealed = true;
			state.save("posted", &job.to_string(), &posted)?;
		}
		last_block = chain.next_finalized(last_block, poll).await?;
	}
	let Some(version) = candidate else { return Ok(JobEnd::Refunded) };
	Ok(match chain.version(version).await?.map(|v| v.status) {
		Some(VersionStatus::Accepted) => JobEnd::Accepted { version },
		Some(VersionStatus::Rejected) => JobEnd::Rejected { version },
		_ => JobEnd::Refunded,
	})
}
