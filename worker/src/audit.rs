//! Training audit, off chain: the trace document a miner publishes, and the re-execution a
//! checker, challenger or arbiter runs on it. Joins chain, storage and ml for the miner (which
//! records and defends its trace) and the verifier (which checks other miners' traces).
//!
//! A trace document (SCALE, on IPFS under the CID committed on chain) lists every checkpoint's
//! [`TrainingState`] with the CID of its full state blob (weights, AdamW moments, sampler
//! position, the step's batch indices); its leaves' Merkle root is the committed trace root.

use std::sync::Arc;

use anyhow::{Context, Result};
use blyan_primitives::{
	audit::{checkpoint_step, segments, trace_proof, trace_root, TrainingState},
	Hash,
};
use codec::{Decode, Encode};

use crate::{
	chain::{self, BoundedVec, Chain, ChainAudit, ChainJob, JobId, H256},
	content,
	ml::{
		lora::LoraConfig,
		model::ModelConfig,
		trace::{run_segment_for, TrainState, Trained},
		train::Hyperparams,
		weights::{LayerTensors, WeightsError},
		CpuBackend,
	},
	storage::{Ipfs, StorageError},
};

/// Largest trace document read from IPFS.
const MAX_TRACE_BYTES: usize = 64 << 20;
/// Largest state blob read from IPFS (weights and two moments of a ~100 M model fit).
const MAX_STATE_BYTES: usize = 2 << 30;

/// The trace document.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct TraceDoc {
	pub steps: u32,
	pub interval: u32,
	/// `(state, CID of its blob)` at steps `0, interval, …, steps`.
	pub checkpoints: Vec<(TrainingState, Vec<u8>)>,
}

impl TraceDoc {
	pub fn leaves(&self) -> Vec<Hash> {
		self.checkpoints.iter().map(|(s, _)| s.hash()).collect()
	}

	pub fn root(&self) -> Hash {
		trace_root(&self.leaves())
	}

	pub fn segments(&self) -> u32 {
		self.checkpoints.len().saturating_sub(1) as u32
	}

	/// Checkpoint `index`'s state and its blob's CID.
	pub fn checkpoint(&self, index: u32) -> Result<(TrainingState, String)> {
		let (state, cid) =
			self.checkpoints.get(index as usize).context("no such checkpoint in the trace")?;
		Ok((state.clone(), String::from_utf8_lossy(cid).into_owned()))
	}

	/// The Merkle proof of checkpoint `index` (hashes every leaf: only a challenge needs it).
	pub fn proof(&self, index: u32) -> Vec<Hash> {
		trace_proof(&self.leaves(), index)
	}

	/// The step checkpoint `index` should be at.
	pub fn step_of(&self, index: u32) -> u32 {
		checkpoint_step(self.steps, self.interval, index)
	}
}

/// A trace document, checked against the trace committed on chain.
pub async fn fetch_doc(ipfs: &Ipfs, audit: &ChainAudit) -> Result<TraceDoc> {
	let cid = String::from_utf8_lossy(&audit.trace.cid.0).into_owned();
	let bytes = ipfs.cat(&cid, MAX_TRACE_BYTES).await?;
	let doc = TraceDoc::decode(&mut &bytes[..])
		.map_err(|e| BadTraceDoc { cid: cid.clone(), reason: e.to_string() })?;
	if doc.root().0 != audit.trace.root.0
		|| doc.steps != audit.trace.steps
		|| doc.interval != audit.trace.interval
		|| doc.segments() != segments(audit.trace.steps, audit.trace.interval)
	{
		return Err(BadTraceDoc {
			cid,
			reason: "does not match the trace committed on chain".into(),
		}
		.into());
	}
	Ok(doc)
}

/// What is published under a trace's CID is not the committed trace: as good as withheld.
#[derive(Debug, thiserror::Error)]
#[error("trace {cid}: {reason}")]
pub struct BadTraceDoc {
	pub cid: String,
	pub reason: String,
}

/// Whether `e` says the miner's published trace (or a state blob of it) is missing or not
/// what was committed: not found in time, larger than a trace can be, or another document
/// under its CID. An error of this machine's own daemon (unreachable, or answering with an
/// error status or something unreadable) is not: only the former is reported on chain, and
/// only after the job's dataset was fetched through the same daemon (see the verifier).
pub fn trace_missing(e: &anyhow::Error) -> bool {
	if e.downcast_ref::<BadTraceDoc>().is_some() {
		return true;
	}
	matches!(
		e.downcast_ref::<StorageError>(),
		Some(StorageError::Timeout { .. } | StorageError::TooLarge { .. })
	)
}

/// What re-running a job's training needs: the model, hyper-parameters, seed and data; for a
/// LoRA job, its adapters' description and the frozen base they train over.
pub struct TrainingRun {
	pub config: ModelConfig,
	pub hp: Hyperparams,
	pub seed: u64,
	pub data: Vec<i64>,
	pub adapters: Option<(LoraConfig, Vec<LayerTensors>)>,
}

impl TrainingRun {
	/// The job's training as the chain and IPFS define it (its dataset checked by hash).
	pub async fn of_job(chain: &Chain, ipfs: &Ipfs, job: &ChainJob) -> Result<Self> {
		let bytes = content::dataset_bytes(chain, ipfs, job.spec.dataset).await?;
		let config = content::model_config(chain, ipfs, job.model).await?;
		let data = content::dataset_tokens(ipfs, &config, bytes).await?;
		Self::with_data(chain, ipfs, job, data).await
	}

	/// The job's model, hyper-parameters and seed, on `data`.
	pub async fn with_data(
		chain: &Chain,
		ipfs: &Ipfs,
		job: &ChainJob,
		data: Vec<i64>,
	) -> Result<Self> {
		let params = chain::training_params(&job.spec);
		let hp = Hyperparams::from(&params);
		let config = content::model_config(chain, ipfs, job.model).await?;
		let adapters = match &params.lora {
			Some(lora) => {
				let base =
					content::version_layers(chain, ipfs, &config, job.spec.base_version).await?;
				Some((LoraConfig::from_params(lora), base))
			}
			None => None,
		};
		Ok(Self { config, hp, seed: job.spec.seed, data, adapters })
	}

	/// What the job trains: every weight, or adapters over its base.
	pub fn trained(&self) -> Trained<'_> {
		match &self.adapters {
			Some((lora, base)) => Trained::Adapters { lora, base },
			None => Trained::Full,
		}
	}

	/// A state blob of this run's trace.
	pub fn decode_state(&self, bytes: &[u8]) -> Result<TrainState, WeightsError> {
		TrainState::decode_for(&self.config, self.trained(), bytes)
	}

	/// Where a LoRA run starts: `peft`'s initialisation of its adapters drawn from the job's
	/// seed (A random, B zero), no moments, the sampler at 0. The chain cannot compute it, so
	/// checkers and arbiters hold a trace's first checkpoint to it. `None` for a full run
	/// (the chain itself pins its start to the base's weights).
	pub fn lora_start(&self) -> Result<Option<TrainState>> {
		let Some((lora, _)) = &self.adapters else { return Ok(None) };
		Ok(Some(TrainState::initial(lora.init(&self.config, self.seed)?)))
	}

	/// The state blob under `cid`, if it decodes for this model and passes `committed` (hashes
	/// to what the miner committed); `None` otherwise (the miner's fault). A blob that cannot be
	/// fetched is an error, retried later: never held against the miner.
	async fn committed_state(
		&self,
		ipfs: &Ipfs,
		cid: &str,
		committed: impl FnOnce(&TrainState) -> bool,
	) -> Result<Option<TrainState>> {
		let bytes = ipfs.cat(cid, MAX_STATE_BYTES).await?;
		Ok(self.decode_state(&bytes).ok().filter(committed))
	}

	/// Trains from `start` to `to_step` on the deterministic CPU path.
	pub async fn rerun(self: &Arc<Self>, start: TrainState, to_step: u32) -> Result<TrainState> {
		let run = self.clone();
		let dev = Default::default();
		let state = tokio::task::spawn_blocking(move || {
			run_segment_for::<burn::backend::Autodiff<CpuBackend>>(
				&run.config,
				run.trained(),
				&start,
				&run.data,
				&run.hp,
				run.seed,
				to_step,
				&dev,
				|_, _| {},
			)
		})
		.await??;
		Ok(state)
	}

	/// The state at `step` within `segment`, re-run from the segment's start checkpoint; `None`
	/// if the miner's blob of that checkpoint is not a state that hashes to its leaf (the trace
	/// cannot be re-run: the miner's fault). A blob that cannot be fetched is an error (retried).
	pub async fn state_in_segment(
		self: &Arc<Self>,
		ipfs: &Ipfs,
		doc: &TraceDoc,
		segment: u32,
		step: u32,
	) -> Result<Option<TrainState>> {
		// A LoRA trace's first segment is re-run from where it must start, whatever its first
		// checkpoint says: a miner starting from other adapters (copied, pre-trained) reaches
		// another end and is challenged.
		if let (0, Some(start)) = (segment, self.lora_start()?) {
			return Ok(Some(self.rerun(start, step).await?));
		}
		let (leaf, cid) = doc.checkpoint(segment)?;
		let Some(start) = self.committed_state(ipfs, &cid, |s| s.summary() == leaf).await? else {
			return Ok(None);
		};
		Ok(Some(self.rerun(start, step).await?))
	}
}

/// A Merkle proof as the chain's type.
pub fn chain_proof(proof: &[Hash]) -> BoundedVec<H256> {
	BoundedVec(proof.iter().map(|h| H256(h.0)).collect())
}

/// What a spot check found.
pub enum SpotCheck {
	/// The segment re-ran to the committed end state.
	Matches,
	/// It did not: the state actually reached.
	Differs(TrainState),
	/// The start checkpoint's state blob is not what the trace commits to: nothing to re-run.
	BadStart,
	/// A checkpoint of the segment is not at the step its index puts it (the chain refutes it).
	BadStep,
}

/// Re-runs `segment` of `doc` and compares its end with the committed checkpoint.
pub async fn spot_check(
	run: &Arc<TrainingRun>,
	ipfs: &Ipfs,
	doc: &TraceDoc,
	segment: u32,
) -> Result<SpotCheck> {
	let (start, _) = doc.checkpoint(segment)?;
	let (end, _) = doc.checkpoint(segment + 1)?;
	if start.step != doc.step_of(segment) || end.step != doc.step_of(segment + 1) {
		return Ok(SpotCheck::BadStep);
	}
	Ok(match run.state_in_segment(ipfs, doc, segment, end.step).await? {
		None => SpotCheck::BadStart,
		Some(reached) if reached.summary() == end => SpotCheck::Matches,
		Some(reached) => SpotCheck::Differs(reached),
	})
}

/// Submits a challenge of `segment` claiming the end state `claimed`.
pub async fn challenge(
	chain: &Chain,
	job: JobId,
	doc: &TraceDoc,
	segment: u32,
	claimed: Hash,
) -> Result<()> {
	let (start, _) = doc.checkpoint(segment)?;
	let (end, _) = doc.checkpoint(segment + 1)?;
	let (start_proof, end_proof) = (doc.proof(segment), doc.proof(segment + 1));
	let checkpoints = chain::SegmentCheckpoints {
		start: chain::chain_state(&start),
		start_proof: chain_proof(&start_proof),
		end: chain::chain_state(&end),
		end_proof: chain_proof(&end_proof),
	};
	chain.challenge(job, segment, checkpoints, H256(claimed.0)).await?;
	Ok(())
}

/// The arbiter's report: the hash of the state one step after the agreed state at `lo`
/// (`lo_cid`, or the segment's start checkpoint), or `None` if that state is not one that
/// hashes to `lo_hash` at step `lo` (the miner published it: its fault). A blob that cannot be
/// fetched now is an error, retried on the next block, never a report against the miner.
pub async fn arbitrate(
	run: &Arc<TrainingRun>,
	ipfs: &Ipfs,
	doc: &TraceDoc,
	segment: u32,
	dispute: &chain::ChainDispute,
) -> Result<Option<H256>> {
	let agreed = |s: &TrainState| s.step == dispute.lo && s.summary().hash().0 == dispute.lo_hash.0;
	// A LoRA trace must start at its seed's adapters, which every arbiter computes: a miner
	// whose step-0 state is another loses here, however faithfully it trained from it, and
	// whether or not it published that state.
	if let (0, Some(start)) = (dispute.lo, run.lora_start()?) {
		if !agreed(&start) {
			return Ok(None);
		}
		let after = run.rerun(start, 1).await?;
		return Ok(Some(H256(after.summary().hash().0)));
	}
	let cid = match &dispute.lo_cid {
		Some(cid) => String::from_utf8_lossy(&cid.0).into_owned(),
		None => doc.checkpoint(segment)?.1,
	};
	let Some(state) = run.committed_state(ipfs, &cid, agreed).await? else { return Ok(None) };
	let after = run.rerun(state, dispute.lo + 1).await?;
	Ok(Some(H256(after.summary().hash().0)))
}
