//! Polkadot.js (`@polkadot/api`) against a real `blyan-node --dev`: with nothing but the chain's
//! metadata it reads every storage item of the protocol pallets and builds, signs and submits
//! every one of their calls (`scripts/polkadot-js/check-metadata.mjs`); it governs the chain —
//! parameter referenda and a runtime upgrade (`scripts/polkadot-js/governance.mjs`); and it uses
//! the free tier (`scripts/polkadot-js/free-tier.mjs`).
mod common;

use std::{
	path::PathBuf,
	process::Command,
	time::{Duration, Instant},
};

use common::{test_dir, Node};

/// Runs `node <script> <args>` in scripts/polkadot-js, killed after `limit`; returns stdout.
fn run_script(script: &str, args: &[String], limit: Duration) -> String {
	let script_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/polkadot-js");
	assert!(
		script_dir.join("node_modules/@polkadot/api").exists(),
		"@polkadot/api is not installed: run ./scripts/setup.sh"
	);
	let mut child = Command::new("node")
		.arg(script)
		.args(args)
		.current_dir(&script_dir)
		.stdout(std::process::Stdio::piped())
		.stderr(std::process::Stdio::piped())
		.spawn()
		.expect("node (Node.js) runs; ./scripts/setup.sh installs it");
	let start = Instant::now();
	while child.try_wait().expect("wait").is_none() {
		if start.elapsed() > limit {
			let _ = child.kill();
			let output = child.wait_with_output().expect("output");
			panic!(
				"{script} did not finish in {limit:?}:\n{}\n{}",
				String::from_utf8_lossy(&output.stdout),
				String::from_utf8_lossy(&output.stderr)
			);
		}
		std::thread::sleep(Duration::from_millis(200));
	}
	let output = child.wait_with_output().expect("output");
	let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
	let stderr = String::from_utf8_lossy(&output.stderr);
	assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
	stdout
}

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
	assert!(stdout.contains("ok: 19 calls submitted and included"), "{stdout}");
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
		Duration::from_secs(240),
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
