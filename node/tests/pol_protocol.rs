//! Proof-of-Learning end to end on a real `blyan-node --dev`: a model and a dataset are
//! registered, a worker's result is committed and revealed, three verifiers re-evaluate, and the
//! chain accepts the version and pays — all through signed extrinsics over RPC and the runtime
//! APIs a worker uses (`common/pol.rs`, which the demo runs too).
mod common;

use std::time::Duration;

use blyan_primitives::pol::VersionStatus;
use blyan_runtime::AccountId;
use common::{pol, test_dir, Node};

#[test]
fn a_training_job_is_verified_accepted_and_paid_on_a_dev_chain() {
	let _slot = common::network_slot();
	let dir = test_dir("pol");
	let mut node = Node::start("alice", dir.path(), &["--dev"]);
	node.wait_for("block 1", Duration::from_secs(90), |h| h.best >= 1).unwrap();
	let outcome = pol::honest_job(&node.rpc(), &mut |line| println!("{line}"))
		.unwrap_or_else(|e| panic!("{e}\n{}", node.log_tail()));

	let mut committee = outcome.committee.clone();
	committee.sort();
	let mut expected: Vec<AccountId> = pol::VERIFIERS.iter().map(|v| v.to_account_id()).collect();
	expected.sort();
	assert_eq!(committee, expected, "the three bonded verifiers sit");
	assert_eq!(outcome.candidate.status, VersionStatus::Accepted);
	assert_eq!(outcome.candidate.parents.to_vec(), vec![0]);
	assert_eq!(outcome.layer_sources, vec![0, 1], "layer 0 from the root, layer 1 new");
	assert_eq!(outcome.dataset_owner_paid, pol::REWARD / 20, "5 % dataset share");
	assert_eq!(outcome.miner_points, Some(pol::REWARD / 10), "10 % improvement × the reward");
	assert!(!outcome.job_left, "a settled job is removed");
	assert!(!outcome.round_left, "a decided round is removed");
}
