//! Polkadot.js (`@polkadot/api`) against a real `blyan-node --dev`: with nothing but the chain's
//! metadata it reads every storage item of the protocol pallets and builds, signs and submits
//! every one of their calls (`scripts/polkadot-js/check-metadata.mjs`).
mod common;

use std::{
	path::PathBuf,
	process::Command,
	time::{Duration, Instant},
};

use common::{test_dir, Node};

#[test]
fn polkadot_js_reads_all_storage_and_submits_all_calls_from_metadata() {
	let _guard = common::serial();
	let script_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/polkadot-js");
	assert!(
		script_dir.join("node_modules/@polkadot/api").exists(),
		"@polkadot/api is not installed: run ./scripts/setup.sh"
	);
	let dir = test_dir("pjs");
	let mut node = Node::start("alice", dir.path(), &["--dev"]);
	node.wait_for("block 1", Duration::from_secs(60), |h| h.best >= 1).unwrap();

	let mut child = Command::new("node")
		.arg("check-metadata.mjs")
		.arg(format!("ws://127.0.0.1:{}", node.rpc_port))
		.current_dir(&script_dir)
		.stdout(std::process::Stdio::piped())
		.stderr(std::process::Stdio::piped())
		.spawn()
		.expect("node (Node.js) runs; ./scripts/setup.sh installs it");
	let start = Instant::now();
	while child.try_wait().expect("wait").is_none() {
		if start.elapsed() > Duration::from_secs(120) {
			let _ = child.kill();
			panic!("the Polkadot.js check did not finish in 120 s");
		}
		std::thread::sleep(Duration::from_millis(200));
	}
	let output = child.wait_with_output().expect("output");
	let stdout = String::from_utf8_lossy(&output.stdout);
	let stderr = String::from_utf8_lossy(&output.stderr);
	assert!(output.status.success(), "check failed:\n{stdout}\n{stderr}");
	assert!(stdout.contains("ok: 21 calls submitted and included"), "{stdout}");
	// Every error came back by name from the metadata, e.g. a job that does not exist:
	assert!(stdout.contains("call jobs.claimJob: included, jobs.UnknownJob"), "{stdout}");
	assert!(stdout.contains("call registry.registerDataset (real): included, Ok"), "{stdout}");
}
