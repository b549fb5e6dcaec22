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
	let _slot = common::network_slot();
	let dir = test_dir("pjs");
	let mut node = Node::start("alice", dir.path(), &["--dev"]);
	node.wait_for("block 1", Duration::from_secs(60), |h| h.best >= 1).unwrap();

	let stdout = run_script(
		"check-metadata.mjs",
		&[format!("ws://127.0.0.1:{}", node.rpc_port)],
		Duration::from_secs(120),
	);
	assert!(stdout.contains("ok: 28 calls submitted and included"), "{stdout}");
	// Root's calls through sudo: a version that does not exist is refused by name.
	assert!(
		stdout.contains("call polRewards.admitModel: included, polRewards.UnknownVersion"),
		"{stdout}"
	);
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
	let _slot = common::network_slot();
	let dir = test_dir("pjs-gov");
	let wasm = blyan_runtime_next::WASM_BINARY.expect("runtime/next was built with its wasm");
	// Compressed, as a release build's wasm is (a release build's already is: decompressed first,
	// so it is compressed once): a debug build's is over 4 MiB, the largest preimage
	// `pallet-preimage` takes (`TooBig`).
	let limit = sp_maybe_compressed_blob::CODE_BLOB_BOMB_LIMIT;
	let wasm = sp_maybe_compressed_blob::decompress(wasm, limit).expect("a valid wasm blob");
	let wasm = sp_maybe_compressed_blob::compress_weakly(&wasm, limit)
		.expect("the wasm is within the decompression limit");
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

/// The upgrade test proposes `runtime/next`'s wasm: it must be the genesis runtime with only
/// `spec_version` one higher. Were its types different (a stale or differently-featured build),
/// the events of the upgrade block would be read with the wrong metadata and the chain would
/// change its call encoding under every client.
#[test]
fn the_upgrade_wasm_is_the_genesis_runtime_one_spec_version_higher() {
	use codec::{Decode, Encode};
	use sp_core::traits::{CallContext, CodeExecutor, RuntimeCode, WrappedRuntimeCode};

	let executor = sc_executor::WasmExecutor::<sp_io::SubstrateHostFunctions>::builder().build();
	let call = |wasm: &[u8], method: &str, data: &[u8]| -> Vec<u8> {
		let code = WrappedRuntimeCode(wasm.into());
		let hash = sp_io::hashing::blake2_256(wasm).to_vec();
		let runtime_code = RuntimeCode { code_fetcher: &code, heap_pages: None, hash };
		let mut externalities = sp_io::TestExternalities::default();
		let mut ext = externalities.ext();
		executor
			.call(&mut ext, &runtime_code, method, data, CallContext::Offchain)
			.0
			.unwrap_or_else(|e| panic!("{method}: {e}"))
	};
	let genesis = blyan_runtime::WASM_BINARY.expect("the runtime was built with its wasm");
	let next = blyan_runtime_next::WASM_BINARY.expect("runtime/next was built with its wasm");

	let version = |wasm| {
		sc_executor::RuntimeVersion::decode(&mut &call(wasm, "Core_version", &[])[..]).unwrap()
	};
	let (before, after) = (version(genesis), version(next));
	assert_eq!(before.spec_version, blyan_runtime::VERSION.spec_version);
	assert_eq!(after.spec_version, before.spec_version + 1);
	let mut same_but_spec = after.clone();
	same_but_spec.spec_version = before.spec_version;
	assert_eq!(same_but_spec, before, "runtime/next differs in more than its spec_version");

	// The metadata holds the version as `System`'s `Version` constant; apart from it, every
	// type, call, event, storage item and constant must be the same.
	let metadata = |wasm| call(wasm, "Metadata_metadata", &[]);
	let (before_version, after_version) = (before.encode(), after.encode());
	let mut expected = metadata(genesis);
	let at = expected
		.windows(before_version.len())
		.position(|w| w == &before_version[..])
		.expect("the genesis metadata holds its RuntimeVersion");
	expected.splice(at..at + before_version.len(), after_version);
	assert!(
		metadata(next) == expected,
		"runtime/next's metadata differs from the genesis runtime's beyond spec_version: \
		 both wasm builds must come from one tree with the same features"
	);
}

#[test]
fn polkadot_js_sends_free_requests_feeless_within_quota_and_with_proof_of_work() {
	let _slot = common::network_slot();
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
