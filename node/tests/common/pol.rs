//! A whole Proof-of-Learning job driven over RPC, shared by the process test and the demo.
//!
//! The training itself is the worker's (issue #4); here the worker's result is given, and the
//! chain side — registration, escrow, commit-reveal on both sides, committee, verdict, payouts —
//! runs for real on the node.

use std::time::Duration;

use blyan_primitives::pol::{
	Backend, Cid, JobId, LayerDelta, LayerDeltas, SemVer, VersionStatus, SCORE_SCALE,
};
use blyan_runtime::{currency::BLY, AccountId, Balance, BlockNumber, RuntimeCall};
use frame_support::BoundedVec;
use pallet_jobs::{Capabilities, JobResult, JobSpec};
use pallet_model_registry::{Architecture, ResolveError, ResolvedLayer, ShortText, VersionInfo};
use pallet_pol_rewards::{Phase, Round};
use sp_core::H256;
use sp_keyring::Sr25519Keyring::{self, Alice, Bob, Charlie, Dave, Eve, Ferdie};

use super::{wait_until, Rpc};

const TIMEOUT: Duration = Duration::from_secs(90);
const SALT: [u8; 32] = [42; 32];
/// Eve's salt for the commitment to her claimed score.
const CLAIM_SALT: [u8; 32] = [43; 32];
/// The job's reward.
pub const REWARD: Balance = 100 * BLY;
/// Loss of the base version on the validation set: 1.0.
pub const BASE_SCORE: u64 = SCORE_SCALE;
/// Loss of the trained version: 0.9, a 10 % improvement.
pub const CANDIDATE_SCORE: u64 = 900_000_000;
/// The verifiers (Alice owns the model and posts the job, Eve mines, Ferdie owns the data).
pub const VERIFIERS: [Sr25519Keyring; 3] = [Bob, Charlie, Dave];

/// What the chain did with the job.
pub struct JobOutcome {
	pub committee: Vec<AccountId>,
	pub candidate: VersionInfo<AccountId, BlockNumber>,
	/// Which version each layer of the candidate resolves to.
	pub layer_sources: Vec<u64>,
	/// Change of Ferdie's (the dataset owner's) free balance at settlement.
	pub dataset_owner_paid: Balance,
	/// Eve's points in the epoch (improvement × reward).
	pub miner_points: Option<u128>,
	pub job_left: bool,
	pub round_left: bool,
}

fn cid(s: &str) -> Cid {
	Cid::truncate_from(s.as_bytes().to_vec())
}

fn text(s: &str) -> ShortText {
	ShortText::truncate_from(s.as_bytes().to_vec())
}

fn send(rpc: &Rpc, who: Sr25519Keyring, call: RuntimeCall) -> Result<(), String> {
	rpc.send(who, call).map(|_| ()).map_err(|e| format!("{who:?}'s transaction refused: {e}"))
}

pub fn version(rpc: &Rpc, id: u64) -> Option<VersionInfo<AccountId, BlockNumber>> {
	rpc.runtime_call("ModelRegistryApi_version", id).ok().flatten()
}

pub fn job(rpc: &Rpc, id: JobId) -> Option<pallet_jobs::Job<AccountId, Balance, BlockNumber>> {
	rpc.runtime_call("JobsApi_job", id).ok().flatten()
}

pub fn round(rpc: &Rpc, id: JobId) -> Option<Round<AccountId, BlockNumber>> {
	rpc.runtime_call("PolRewardsApi_round", id).ok().flatten()
}

pub fn pending(rpc: &Rpc, who: Sr25519Keyring) -> Vec<(JobId, Phase)> {
	rpc.runtime_call("PolRewardsApi_pending_verifications", who.to_account_id()).unwrap_or_default()
}

/// Runs job 0 of a fresh dev chain from model registration to payout; `say` narrates.
pub fn honest_job(rpc: &Rpc, say: &mut dyn FnMut(String)) -> Result<JobOutcome, String> {
	say("Alice registers a 2-layer model (root version 1.0.0); Ferdie registers a dataset".into());
	let root_layer = |layer| LayerDelta { layer, cid: cid("bafyroot"), merkle_root: H256::zero() };
	send(
		rpc,
		Alice,
		pallet_model_registry::Call::register_model {
			name: text("tiny-mlp"),
			architecture: Architecture {
				family: text("mlp"),
				config_hash: H256::repeat_byte(1),
				config_cid: cid("bafyconfig"),
				layer_count: 2,
			},
			licence: text("Apache-2.0"),
			semver: SemVer::new(1, 0, 0),
			root_layers: LayerDeltas::truncate_from(vec![root_layer(0), root_layer(1)]),
			weight_root: H256::repeat_byte(2),
		}
		.into(),
	)?;
	send(
		rpc,
		Ferdie,
		pallet_model_registry::Call::register_dataset {
			cid: cid("bafydata"),
			content_hash: H256::repeat_byte(3),
			size_bytes: 1 << 20,
			licence: text("CC-BY-4.0"),
		}
		.into(),
	)?;
	say("Eve bonds 100 BLY as a worker; Bob, Charlie and Dave bond 100 BLY as verifiers".into());
	let capabilities = Capabilities {
		backends: BoundedVec::truncate_from(vec![Backend::Cpu, Backend::Cuda]),
		memory_mb: 8192,
	};
	send(rpc, Eve, pallet_jobs::Call::register_worker { capabilities, bond: 100 * BLY }.into())?;
	for v in VERIFIERS {
		send(rpc, v, pallet_pol_rewards::Call::register_verifier { bond: 100 * BLY }.into())?;
	}
	wait_until("the model's root version", TIMEOUT, || version(rpc, 0))?;
	say("Root admits the model to epoch rewards from 1.0.0 (sudo here; a root referendum on a live chain)".into());
	let admit = pallet_pol_rewards::Call::admit_model { model: 0, head: 0 };
	send(rpc, Alice, pallet_sudo::Call::sudo { call: Box::new(admit.into()) }.into())?;

	let validation = cid("bafyvalidation");
	let best = rpc.heads().ok_or("no heads")?.best;
	say(format!(
		"Alice posts job 0: train from 1.0.0, reward {} BLY escrowed, validation set committed",
		REWARD / BLY
	));
	send(
		rpc,
		Alice,
		pallet_jobs::Call::post_job {
			spec: JobSpec {
				base_version: 0,
				dataset: 0,
				validation_commitment: pallet_jobs::validation_commitment(&validation, &SALT),
				training: pallet_jobs::TrainingParams::DEFAULT,
				seed: 7,
				// Re-evaluated by the committee, not re-run by the training audit: this walk-through
				// is about Proof-of-Learning (the audit has its own suites).
				backend: Backend::Cuda,
				min_memory_mb: 1024,
				deadline: best + 600,
				lease: 300,
				min_improvement: None,
			},
			reward: REWARD,
		}
		.into(),
	)?;
	let open: Vec<JobId> = wait_until("an open job", TIMEOUT, || {
		let open: Vec<JobId> = rpc.runtime_call("JobsApi_open_jobs", 10u32).ok()?;
		(!open.is_empty()).then_some(open)
	})?;
	say(format!("JobsApi.open_jobs → {open:?}"));

	let result = JobResult {
		semver: SemVer::new(1, 1, 0),
		layers: LayerDeltas::truncate_from(vec![LayerDelta {
			layer: 1,
			cid: cid("bafytrained"),
			merkle_root: H256::repeat_byte(4),
		}]),
		weight_root: H256::repeat_byte(5),
		trace: None,
	};
	say("Eve claims the job and commits to her result (layer 1 changed, her loss 0.9)".into());
	send(rpc, Eve, pallet_jobs::Call::claim_job { job: 0 }.into())?;
	let result_hash = pallet_jobs::result_commitment(0, &Eve.to_account_id(), &result, &SALT);
	send(
		rpc,
		Eve,
		pallet_jobs::Call::commit_result { job: 0, result_hash, semver: result.semver }.into(),
	)?;
	wait_until("Eve's commitment", TIMEOUT, || {
		matches!(job(rpc, 0)?.status, pallet_jobs::JobStatus::Committed { .. }).then_some(())
	})?;
	say("Alice reveals the validation set; Eve reveals her result (a candidate version) with a \
	     commitment to her score, hidden from the committee until it has committed"
		.into());
	send(
		rpc,
		Alice,
		pallet_jobs::Call::reveal_validation { job: 0, cid: validation.clone(), salt: SALT }.into(),
	)?;
	wait_until("the validation set", TIMEOUT, || job(rpc, 0)?.validation)?;
	send(
		rpc,
		Eve,
		pallet_jobs::Call::reveal_result {
			job: 0,
			result,
			claim: pallet_pol_rewards::claim_commitment(
				0,
				&Eve.to_account_id(),
				CANDIDATE_SCORE,
				&CLAIM_SALT,
			),
			salt: SALT,
		}
		.into(),
	)?;

	let committee = wait_until("a committee", TIMEOUT, || {
		let r = round(rpc, 0)?;
		(r.phase == Phase::Commit).then_some(r.committee)
	})?;
	let committee: Vec<AccountId> = committee.iter().map(|m| m.verifier.clone()).collect();
	say(format!("committee drawn from the next block's randomness: {} verifiers", committee.len()));
	let ferdie_before = rpc.free_balance(&Ferdie.to_account_id(), None).ok_or("balance")?;
	for v in VERIFIERS {
		let commitment = pallet_pol_rewards::score_commitment(
			0,
			0,
			&v.to_account_id(),
			BASE_SCORE,
			CANDIDATE_SCORE,
			&SALT,
		);
		send(rpc, v, pallet_pol_rewards::Call::commit_scores { job: 0, commitment }.into())?;
	}
	wait_until("the reveal phase", TIMEOUT, || {
		(round(rpc, 0)?.phase == Phase::Reveal).then_some(())
	})?;
	say("all three committed to (base 1.0, candidate 0.9); now Eve reveals her claim, they \
	     their scores"
		.into());
	send(
		rpc,
		Eve,
		pallet_pol_rewards::Call::reveal_claim {
			job: 0,
			claimed_score: CANDIDATE_SCORE,
			salt: CLAIM_SALT,
		}
		.into(),
	)?;
	for v in VERIFIERS {
		send(
			rpc,
			v,
			pallet_pol_rewards::Call::reveal_scores {
				job: 0,
				base_score: BASE_SCORE,
				candidate_score: CANDIDATE_SCORE,
				salt: SALT,
			}
			.into(),
		)?;
	}
	let candidate = wait_until("a verdict", TIMEOUT, || {
		version(rpc, 1).filter(|v| v.status != VersionStatus::Candidate)
	})?;
	say(format!("verdict: version 1.1.0 is {:?}", candidate.status));

	let ferdie_after = rpc.free_balance(&Ferdie.to_account_id(), None).ok_or("balance")?;
	let layers: Result<Vec<ResolvedLayer>, ResolveError> =
		rpc.runtime_call("ModelRegistryApi_resolve_layers", 1u64)?;
	let layer_sources = layers
		.map_err(|e| format!("resolve_layers: {e:?}"))?
		.iter()
		.map(|l| l.source_version)
		.collect();
	let epoch = rpc.heads().ok_or("heads")?.best / blyan_primitives::time::HOURS;
	let points_key = pallet_pol_rewards::EpochPoints::<blyan_runtime::Runtime>::hashed_key_for(
		epoch,
		Eve.to_account_id(),
	);
	Ok(JobOutcome {
		committee,
		candidate,
		layer_sources,
		dataset_owner_paid: ferdie_after.saturating_sub(ferdie_before),
		miner_points: rpc.storage(&points_key)?,
		job_left: job(rpc, 0).is_some(),
		round_left: round(rpc, 0).is_some(),
	})
}
