//! Proof-of-Learning end to end on a real `blyan-node --dev`: a model and a dataset are
//! registered, a worker trains (its result is given), three verifiers re-evaluate, and the
//! chain accepts the version and pays everyone — all through signed extrinsics over RPC and
//! the runtime APIs a worker uses.
mod common;

use std::time::Duration;

use blyan_primitives::pol::{
	Backend, Cid, JobId, LayerDelta, LayerDeltas, SemVer, VersionStatus, SCORE_SCALE,
};
use blyan_runtime::{currency::BLY, AccountId, Balance, BlockNumber, RuntimeCall};
use common::{test_dir, wait_until, Node, Rpc};
use frame_support::BoundedVec;
use pallet_jobs::{Capabilities, JobResult, JobSpec};
use pallet_model_registry::{Architecture, ShortText, VersionInfo};
use pallet_pol_rewards::{Phase, Round};
use sp_core::H256;
use sp_keyring::Sr25519Keyring::{self, Alice, Bob, Charlie, Dave, Eve, Ferdie};

const TIMEOUT: Duration = Duration::from_secs(90);
const SALT: [u8; 32] = [42; 32];
const REWARD: Balance = 10 * BLY;
const BASE_SCORE: u64 = SCORE_SCALE; // loss 1.0
const CANDIDATE_SCORE: u64 = 900_000_000; // loss 0.9: 10 % better

fn cid(s: &str) -> Cid {
	Cid::truncate_from(s.as_bytes().to_vec())
}

fn text(s: &str) -> ShortText {
	ShortText::truncate_from(s.as_bytes().to_vec())
}

fn send(rpc: &Rpc, who: Sr25519Keyring, call: RuntimeCall) {
	rpc.send(who, call).unwrap_or_else(|e| panic!("{who:?}'s transaction refused: {e}"));
}

fn version(rpc: &Rpc, id: u64) -> Option<VersionInfo<AccountId, BlockNumber>> {
	rpc.runtime_call("ModelRegistryApi_version", id).expect("ModelRegistryApi_version")
}

fn job(rpc: &Rpc, id: JobId) -> Option<pallet_jobs::Job<AccountId, Balance, BlockNumber>> {
	rpc.runtime_call("JobsApi_job", id).expect("JobsApi_job")
}

fn round(rpc: &Rpc, id: JobId) -> Option<Round<AccountId, BlockNumber>> {
	rpc.runtime_call("PolRewardsApi_round", id).expect("PolRewardsApi_round")
}

fn pending(rpc: &Rpc, who: Sr25519Keyring) -> Vec<(JobId, Phase)> {
	rpc.runtime_call("PolRewardsApi_pending_verifications", who.to_account_id())
		.expect("PolRewardsApi_pending_verifications")
}

#[test]
fn a_training_job_is_verified_accepted_and_paid_on_a_dev_chain() {
	let _guard = common::serial();
	let dir = test_dir("pol");
	let mut node = Node::start("alice", dir.path(), &["--dev"]);
	node.wait_for("block 1", TIMEOUT, |h| h.best >= 1).unwrap();
	let rpc = node.rpc();
	let verifiers = [Bob, Charlie, Dave];

	// Alice owns a 2-layer model; Ferdie contributes the training data.
	let root_layer = |layer| LayerDelta { layer, cid: cid("bafyroot"), merkle_root: H256::zero() };
	send(
		&rpc,
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
	);
	send(
		&rpc,
		Ferdie,
		pallet_model_registry::Call::register_dataset {
			cid: cid("bafydata"),
			content_hash: H256::repeat_byte(3),
			size_bytes: 1 << 20,
			licence: text("CC-BY-4.0"),
		}
		.into(),
	);
	send(
		&rpc,
		Eve,
		pallet_jobs::Call::register_worker {
			capabilities: Capabilities {
				backends: BoundedVec::truncate_from(vec![Backend::Cpu]),
				memory_mb: 8192,
			},
			bond: 100 * BLY,
		}
		.into(),
	);
	for v in verifiers {
		send(&rpc, v, pallet_pol_rewards::Call::register_verifier { bond: 100 * BLY }.into());
	}
	wait_until("the model's root version", TIMEOUT, || version(&rpc, 0)).unwrap();

	// Alice posts a job with a hidden validation set.
	let validation = cid("bafyvalidation");
	let best = rpc.heads().expect("heads").best;
	send(
		&rpc,
		Alice,
		pallet_jobs::Call::post_job {
			spec: JobSpec {
				base_version: 0,
				dataset: 0,
				validation_commitment: pallet_jobs::validation_commitment(&validation, &SALT),
				hyperparams: BoundedVec::truncate_from(b"{\"lr\":0.01,\"epochs\":1}".to_vec()),
				seed: 7,
				backend: Backend::Cpu,
				min_memory_mb: 1024,
				deadline: best + 600,
				lease: 300,
				min_improvement: None,
			},
			reward: REWARD,
		}
		.into(),
	);
	let open: Vec<JobId> = wait_until("an open job", TIMEOUT, || {
		let open: Vec<JobId> = rpc.runtime_call("JobsApi_open_jobs", 10u32).ok()?;
		(!open.is_empty()).then_some(open)
	})
	.unwrap();
	assert_eq!(open, vec![0]);

	// Eve claims, commits, sees the validation set, reveals.
	let result = JobResult {
		semver: SemVer::new(1, 1, 0),
		layers: LayerDeltas::truncate_from(vec![LayerDelta {
			layer: 1,
			cid: cid("bafytrained"),
			merkle_root: H256::repeat_byte(4),
		}]),
		weight_root: H256::repeat_byte(5),
		claimed_score: CANDIDATE_SCORE,
	};
	send(&rpc, Eve, pallet_jobs::Call::claim_job { job: 0 }.into());
	let result_hash = pallet_jobs::result_commitment(0, &Eve.to_account_id(), &result, &SALT);
	send(&rpc, Eve, pallet_jobs::Call::commit_result { job: 0, result_hash }.into());
	wait_until("Eve's commitment", TIMEOUT, || {
		matches!(job(&rpc, 0)?.status, pallet_jobs::JobStatus::Committed { .. }).then_some(())
	})
	.unwrap();
	let worker_jobs: Vec<JobId> =
		rpc.runtime_call("JobsApi_worker_jobs", Eve.to_account_id()).unwrap();
	assert_eq!(worker_jobs, vec![0]);
	send(
		&rpc,
		Alice,
		pallet_jobs::Call::reveal_validation { job: 0, cid: validation.clone(), salt: SALT }.into(),
	);
	wait_until("the validation set", TIMEOUT, || job(&rpc, 0)?.validation).unwrap();
	send(&rpc, Eve, pallet_jobs::Call::reveal_result { job: 0, result, salt: SALT }.into());

	// A committee of the three verifiers is drawn; each commits, then reveals.
	let committee = wait_until("a committee", TIMEOUT, || {
		let r = round(&rpc, 0)?;
		(r.phase == Phase::Commit).then_some(r.committee)
	})
	.unwrap();
	let mut members: Vec<AccountId> = committee.iter().map(|m| m.verifier.clone()).collect();
	members.sort();
	let mut expected: Vec<AccountId> = verifiers.iter().map(|v| v.to_account_id()).collect();
	expected.sort();
	assert_eq!(members, expected);
	assert_eq!(version(&rpc, 1).map(|v| v.status), Some(VersionStatus::Candidate));
	let ferdie_before = rpc.free_balance(&Ferdie.to_account_id(), None).unwrap();
	for v in verifiers {
		assert_eq!(pending(&rpc, v), vec![(0, Phase::Commit)]);
		let commitment = pallet_pol_rewards::score_commitment(
			0,
			0,
			&v.to_account_id(),
			BASE_SCORE,
			CANDIDATE_SCORE,
			&SALT,
		);
		send(&rpc, v, pallet_pol_rewards::Call::commit_scores { job: 0, commitment }.into());
	}
	wait_until("the reveal phase", TIMEOUT, || {
		(round(&rpc, 0)?.phase == Phase::Reveal).then_some(())
	})
	.unwrap();
	for v in verifiers {
		send(
			&rpc,
			v,
			pallet_pol_rewards::Call::reveal_scores {
				job: 0,
				base_score: BASE_SCORE,
				candidate_score: CANDIDATE_SCORE,
				salt: SALT,
			}
			.into(),
		);
	}

	// The quorum accepts: the version, the escrow split, the miner's epoch points.
	wait_until("the version's acceptance", TIMEOUT, || {
		(version(&rpc, 1)?.status == VersionStatus::Accepted).then_some(())
	})
	.unwrap();
	assert!(job(&rpc, 0).is_none(), "settled job is removed");
	assert!(round(&rpc, 0).is_none(), "decided round is removed");
	let ferdie_after = rpc.free_balance(&Ferdie.to_account_id(), None).unwrap();
	assert_eq!(ferdie_after - ferdie_before, REWARD / 20, "5 % dataset share");
	let layers: Result<
		Vec<pallet_model_registry::ResolvedLayer>,
		pallet_model_registry::ResolveError,
	> = rpc.runtime_call("ModelRegistryApi_resolve_layers", 1u64).unwrap();
	let sources: Vec<u64> = layers.unwrap().iter().map(|l| l.source_version).collect();
	assert_eq!(sources, vec![0, 1], "layer 0 from the root, layer 1 from the new version");
	let epoch = rpc.heads().map(|h| h.best / blyan_primitives::time::HOURS).expect("heads");
	let points_key = pallet_pol_rewards::EpochPoints::<blyan_runtime::Runtime>::hashed_key_for(
		epoch,
		Eve.to_account_id(),
	);
	let points: Option<u64> = rpc.storage(&points_key).unwrap();
	assert_eq!(points, Some(100_000_000), "10 % improvement in Perbill parts");
}
