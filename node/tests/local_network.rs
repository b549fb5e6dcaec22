//! Validator networks on loopback: finality, a validator killed with SIGKILL, restart and catch-up.
//!
//! GRANDPA needs more than two thirds of the voters (`n - (n-1)/3`): three validators finalize only
//! when all three vote, four tolerate one fault. Both are tested: the three-validator `local`
//! network keeps producing blocks while one validator is down and resumes finality once it is
//! back; one four-validator `local4` network keeps finalizing with one validator down, stops
//! finalizing with a second down and resumes, on one chain, when both return.

mod common;

use std::time::Duration;

use common::*;

const STARTUP: Duration = Duration::from_secs(240);
const PROGRESS: Duration = Duration::from_secs(120);

/// Waits until `node` has authored or imported `more` blocks beyond its best one now.
fn blocks_go_on(node: &mut Node, what: &str, more: u32) {
	let best = node.rpc().heads().expect("heads").best;
	node.wait_for(what, PROGRESS, |h| h.best >= best + more).unwrap_or_else(|e| panic!("{e}"));
}

/// Counts the primary and secondary BABE slots of blocks `1..=upto`, and fails on a block
/// without a VRF output: the committee draws' randomness (`VrfRandomness`) must never fall back
/// to a block hash, which its author could grind.
fn vrf_slots(node: &Node, upto: u32) -> (u32, u32) {
	use codec::Decode;
	use sp_consensus_babe::digests::{CompatibleDigestItem, PreDigest};
	let rpc = node.rpc();
	let (mut primary, mut secondary) = (0, 0);
	for n in 1..=upto {
		let hash = rpc.block_hash(n).expect("hash");
		let header: serde_json::Value =
			rpc.call("chain_getHeader", serde_json::json!([format!("{hash:?}")])).expect("header");
		let pre_digest = header["digest"]["logs"]
			.as_array()
			.expect("digest logs")
			.iter()
			.filter_map(|log| hex::decode(log.as_str()?.trim_start_matches("0x")).ok())
			.filter_map(|bytes| sp_runtime::DigestItem::decode(&mut &bytes[..]).ok())
			.find_map(|item| item.as_babe_pre_digest())
			.unwrap_or_else(|| panic!("#{n} has no BABE pre-digest: {header}"));
		match pre_digest {
			PreDigest::Primary(_) => primary += 1,
			PreDigest::SecondaryVRF(_) => secondary += 1,
			PreDigest::SecondaryPlain(_) => panic!("#{n} came from a slot without a VRF output"),
		}
	}
	(primary, secondary)
}

fn all_finalize(nodes: &mut [Node], at_least: u32, timeout: Duration) {
	for n in nodes {
		let what = format!("{} to finalize #{at_least}", n.name);
		n.wait_for(&what, timeout, |h| h.finalized >= at_least).unwrap_or_else(|e| panic!("{e}"));
	}
}

#[test]
fn three_validators_finalize_survive_a_kill_and_the_killed_one_catches_up() {
	let _slot = whole_machine();
	let dir = test_dir("local3");
	let mut nodes = start_network(dir.path(), "local", 3, &[]);
	all_finalize(&mut nodes, 3, STARTUP);

	// Remember what Charlie had finalized, then crash it.
	let charlie_heads = nodes[2].rpc().heads().expect("charlie heads");
	let charlie_block = nodes[2].rpc().block_hash(charlie_heads.finalized).expect("hash");
	nodes[2].kill();

	// Alice and Bob keep authoring their slots.
	let alice = nodes[0].rpc();
	blocks_go_on(&mut nodes[0], "block production without charlie", 4);

	// Charlie restarts from its base path: its blocks are still there and it catches up.
	nodes[2].restart();
	let charlie = nodes[2].rpc();
	nodes[2]
		.wait_for("charlie to restart", STARTUP, |h| h.best >= charlie_heads.finalized)
		.unwrap_or_else(|e| panic!("{e}"));
	assert_eq!(
		charlie.block_hash(charlie_heads.finalized),
		Some(charlie_block),
		"charlie lost or changed a finalized block across kill -9"
	);
	let target = alice.heads().expect("alice heads").best + 2;
	all_finalize(&mut nodes, target, PROGRESS);
	for n in &mut nodes {
		assert!(n.is_running(), "{} exited\n{}", n.name, n.log_tail());
	}

	// Every finalized block carries its author's VRF output, through a kill and a restart.
	let finalized = alice.heads().expect("alice heads").finalized;
	let (primary, secondary) = vrf_slots(&nodes[0], finalized);
	assert_eq!(primary + secondary, finalized);
}

/// One four-validator network (starting one costs more than the rest of the test): one down,
/// then two.
#[test]
fn four_validators_keep_finalizing_with_one_killed_stop_with_two_and_resume_on_one_chain() {
	let _slot = whole_machine();
	let dir = test_dir("local4");
	let mut nodes = start_network(dir.path(), "local4", 4, &[]);
	all_finalize(&mut nodes, 3, STARTUP);

	// What every node had finalized before the failures.
	let before = nodes[0].rpc().heads().expect("alice heads").finalized;
	let finalized_before: Vec<_> =
		(1..=before).map(|n| nodes[0].rpc().block_hash(n).expect("hash")).collect();

	// Three of four votes reach GRANDPA's threshold: finality goes on without Dave.
	nodes[3].kill();
	let alice = nodes[0].rpc();
	let at_kill = alice.heads().expect("alice heads");
	nodes[0]
		.wait_for("finality without dave", PROGRESS, |h| h.finalized >= at_kill.finalized + 5)
		.unwrap_or_else(|e| panic!("{e}"));

	nodes[2].kill();
	// Two of four votes are below GRANDPA's threshold of three: blocks are still authored in
	// Alice's and Bob's slots, but finality stops where it was (votes already cast may finish
	// one more round).
	blocks_go_on(&mut nodes[0], "block production with two validators", 6);
	let stalled = alice.heads().expect("alice heads").finalized;
	std::thread::sleep(Duration::from_secs(12));
	let later = alice.heads().expect("alice heads");
	assert_eq!(later.finalized, stalled, "finality went on with half of the validators down");
	assert!(later.best >= stalled + 6, "blocks stopped too: {later:?}");

	// Both return from their databases: finality resumes past the stall on every node.
	nodes[2].restart();
	nodes[3].restart();
	let target = alice.heads().expect("alice heads").best + 2;
	all_finalize(&mut nodes, target, STARTUP);

	// One chain was finalized: every node has the same block at every finalized height, and
	// nothing finalized before the failure changed.
	let upto = nodes.iter().map(|n| n.rpc().heads().expect("heads").finalized).min().unwrap();
	for n in 1..=upto {
		let alice_hash = nodes[0].rpc().block_hash(n).expect("alice hash");
		for node in &nodes[1..] {
			assert_eq!(
				node.rpc().block_hash(n),
				Some(alice_hash),
				"{} finalized another block at #{n}",
				node.name
			);
		}
		if n <= before {
			assert_eq!(alice_hash, finalized_before[n as usize - 1], "#{n} changed after finality");
		}
	}
	for n in &mut nodes {
		assert!(n.is_running(), "{} exited\n{}", n.name, n.log_tail());
	}
}
