//! Polkadot.js (`@polkadot/api`) against a real `blyan-node --dev`: with nothing but the chain's
//! metadata it reads every storage item of the protocol pallets and builds, signs and submits
//! every one of their calls (`scripts/polkadot-js/check-metadata.mjs`); it governs the chain —
//! parameter referenda and a runtime upgrade (`scripts/polkadot-js/governance.mjs`); and it uses
//! the free tier (`scripts/polkadot-js/free-tier.mjs`).
mod common;

use std::time::Duration;

use common::{run_script, test_dir, Node};

#[test]
fn polkadot_js_reads_all_storage_and_submits_all_calls_from_metadata() {
	let _guard = common::serial();
	let dir = test_dir("pjs");
	let mut node = Node::start("alice", dir.path(), &["--dev"]);
	node.wait_for("block 1", Duration::from_secs(60), |h| h.best >= 1).unwrap();

	let stdout = run_script(
		"check-metadata.mjs",
		&[format!("ws://127.0.0.1:{}", node.rpc_port)],
		Duration::from_secs(120),
	);
	assert!(stdout.contains("ok: 26 calls submitted and included"), "{stdout}");
	assert!(
		stdout
			.contains("call trainingAudit.reportUnavailable: included, trainingAudit.UnknownAudit"),
		"{stdout}"
	);
	// Every error came back by name from the metadata, e.g. a job that does not exist:
	assert!(stdout.contains("call jobs.claimJob: included, jobs.UnknownJob"), "{stdout}");
	assert!(stdout.contains("call registry.registerDataset (real): included, Ok"), "{stdout}");
}

#[test]
fn polkadot_js_changes_a_parameter_by_referendum_and_upgrades_the_runtime() {
	let _guard = common::serial();
	let dir = test_dir("pjs-gov");
	let wasm = blyan_runtime_next::WASM_BINARY.expect("runtime/next was built with its wasm");
	let wasm_path = dir.path().join("blyan_runtime_next.compact.compressed.wasm");
	std::fs::write(&wasm_path, wasm).unwrap();
	let mut node = Node::start("alice", dir.path(), &["--dev"]);
	node.wait_for("block 1", Duration::from_secs(60), |h| h.best >= 1).unwrap();
	let spec_before = blyan_runtime::VERSION.spec_version;

	let stdout = run_script(
		"governance.mjs",
		&[format!("ws://127.0.0.1:{}", node.rpc_port), wasm_path.display().to_string()],
		// Three referenda and a runtime upgrade on 1 s blocks: minutes when the machine is shared.
		Duration::from_secs(420),
	);
	assert!(stdout.contains("enacted: jobs.params.minImprovement = 2 %"), "{stdout}");
	assert!(stdout.contains("refused at enactment: governance.AboveMaximum"), "{stdout}");
	assert!(
		stdout.contains(&format!(
			"runtime upgraded by referendum: specVersion {spec_before} -> {}",
			spec_before + 1
		)),
		"{stdout}"
	);
	assert!(stdout.contains("transfer after the upgrade: included"), "{stdout}");
	// The node itself, not just the client, runs the new runtime.
	let version: serde_json::Value =
		node.rpc().call("state_getRuntimeVersion", serde_json::json!([])).unwrap();
	assert_eq!(version["specVersion"], spec_before + 1);
}

#[test]
fn polkadot_js_sends_free_requests_feeless_within_quota_and_with_proof_of_work() {
	let _guard = common::serial();
	let dir = test_dir("pjs-free");
	let mut node = Node::start("alice", dir.path(), &["--dev"]);
	node.wait_for("block 2", Duration::from_secs(60), |h| h.best >= 2).unwrap();
	let stdout = run_script(
		"free-tier.mjs",
		&[format!("ws://127.0.0.1:{}", node.rpc_port)],
		Duration::from_secs(180),
	);
	assert!(stdout.contains("unsigned free request: included"), "{stdout}");
	assert!(stdout.contains("the fresh account still holds 0 BLY"), "{stdout}");
	assert!(stdout.contains("replay refused by the pool"), "{stdout}");
	assert!(stdout.contains("Bob paid nothing for his five requests"), "{stdout}");
	assert!(stdout.contains("sixth request refused by the pool"), "{stdout}");
}
