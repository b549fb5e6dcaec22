//! `blyan-node --dev` as a process: blocks, finality, BLY metadata, a signed transfer, bad input.

mod common;

use std::{process::Command, time::Duration};

use blyan_runtime::{currency::BLY, RuntimeCall};
use common::*;
use serde_json::json;
use sp_keyring::Sr25519Keyring;

const STARTUP: Duration = Duration::from_secs(180);

fn dev_node(dir: &std::path::Path) -> Node {
	Node::start("dev", dir, &["--dev"])
}

#[test]
fn dev_node_produces_and_finalizes_blocks_and_reports_bly() {
	let _slot = network_slot();
	let dir = test_dir("dev-finality");
	let mut node = dev_node(dir.path());
	let rpc = node.rpc();

	let heads = node
		.wait_for("3 finalized blocks", STARTUP, |h| h.finalized >= 3)
		.unwrap_or_else(|e| panic!("{e}"));
	assert!(heads.best >= heads.finalized);

	let props: serde_json::Value = rpc.call("system_properties", json!([])).unwrap();
	assert_eq!(props["tokenSymbol"], "BLY");
	assert_eq!(props["tokenDecimals"], 12);

	// Prometheus metrics are served on loopback.
	let metrics = http_get(node.prometheus_port, "/metrics");
	assert!(
		metrics.contains("substrate_block_height"),
		"metrics: {}",
		&metrics[..metrics.len().min(300)]
	);
}

#[test]
fn signed_transfer_lands_and_malformed_extrinsic_is_refused() {
	let _slot = network_slot();
	let dir = test_dir("dev-transfer");
	let mut node = dev_node(dir.path());
	let rpc = node.rpc();
	node.wait_for("block 1", STARTUP, |h| h.best >= 1).unwrap_or_else(|e| panic!("{e}"));

	let bob = Sr25519Keyring::Bob.to_account_id();
	let ferdie = Sr25519Keyring::Ferdie;
	let bob_before = rpc.free_balance(&bob, None).expect("balance");
	let amount = 42 * BLY;
	let call = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
		dest: bob.clone().into(),
		value: amount,
	});
	let nonce = rpc.nonce(&ferdie.to_account_id()).expect("nonce");
	let xt = rpc.sign(ferdie, nonce, call);
	rpc.submit(&xt).expect("transfer accepted into the pool");

	// Landed and finalized: the finalized state shows Bob's new balance.
	let deadline = std::time::Instant::now() + Duration::from_secs(60);
	loop {
		let fin = rpc.finalized_hash().expect("finalized head");
		if rpc.free_balance(&bob, Some(fin)) == Some(bob_before + amount) {
			break;
		}
		assert!(std::time::Instant::now() < deadline, "transfer not finalized in 60 s");
		std::thread::sleep(Duration::from_millis(300));
	}

	// Garbage bytes: refused by the pool with a decoding error, the node keeps running.
	let err = rpc.submit(&[0xde, 0xad, 0xbe, 0xef]).expect_err("malformed extrinsic refused");
	assert!(err.to_lowercase().contains("decode"), "unexpected error: {err}");
	// A replay of the same signed transfer (stale nonce) is refused too.
	let err = rpc.submit(&xt).expect_err("replay refused");
	assert!(
		err.contains("Invalid Transaction") || err.contains("outdated") || err.contains("Stale"),
		"{err}"
	);
	let heads = rpc.heads().expect("node still answers");
	assert!(heads.best >= 1);
}

#[test]
fn invalid_chain_spec_path_is_a_clear_error() {
	let dir = test_dir("bad-spec");
	let missing = dir.path().join("no-such-spec.json");
	let out = Command::new(node_binary())
		.arg("--chain")
		.arg(&missing)
		.args(["--tmp"])
		.output()
		.expect("run node");
	assert!(!out.status.success());
	let stderr = String::from_utf8_lossy(&out.stderr);
	assert!(stderr.contains("cannot load chain spec"), "stderr: {stderr}");
	assert!(stderr.contains("no-such-spec.json"), "stderr: {stderr}");
}

#[test]
fn busy_rpc_port_is_a_clear_error() {
	let _slot = network_slot();
	let dir = test_dir("busy-port");
	let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
	let port = taken.local_addr().unwrap().port();
	let mut child = Command::new(node_binary())
		.args(["--dev", "--no-mdns", "--no-prometheus", "--listen-addr", "/ip4/127.0.0.1/tcp/0"])
		.arg("--base-path")
		.arg(dir.path())
		.args(["--rpc-port", &port.to_string()])
		.stdout(std::process::Stdio::null())
		.stderr(std::process::Stdio::piped())
		.spawn()
		.expect("run node");
	// The node must exit by itself; kill it (by PID) if it keeps running instead.
	let deadline = std::time::Instant::now() + Duration::from_secs(120);
	while child.try_wait().expect("wait").is_none() {
		if std::time::Instant::now() > deadline {
			let _ = child.kill();
			let _ = child.wait();
			panic!("node kept running on a busy RPC port");
		}
		std::thread::sleep(Duration::from_millis(200));
	}
	let out = child.wait_with_output().expect("output");
	assert!(!out.status.success());
	let stderr = String::from_utf8_lossy(&out.stderr);
	assert!(
		stderr.contains(&port.to_string()) && stderr.to_lowercase().contains("in use"),
		"stderr: {stderr}"
	);
	drop(taken);
}

#[test]
fn build_spec_reports_bly_and_purge_chain_removes_the_database() {
	let _slot = network_slot();
	let out = Command::new(node_binary())
		.args(["build-spec", "--chain", "local", "--raw", "--disable-default-bootnode"])
		.output()
		.expect("run build-spec");
	assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
	let spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("chain spec json");
	assert_eq!(spec["id"], "blyan_local");
	assert_eq!(spec["protocolId"], "bly");
	assert_eq!(spec["properties"]["tokenSymbol"], "BLY");
	assert!(spec["genesis"]["raw"]["top"].as_object().is_some_and(|top| !top.is_empty()));

	// Run a dev node on a base path, stop it, purge: the database is gone, the keys stay.
	let dir = test_dir("purge");
	let mut node = Node::start("dev", dir.path(), &["--dev"]);
	node.wait_for("block 2", STARTUP, |h| h.best >= 2).unwrap_or_else(|e| panic!("{e}"));
	node.kill();
	let db = node.base_path.join("chains/blyan_dev/paritydb");
	assert!(db.exists(), "ParityDB at {}", db.display());
	let out = Command::new(node_binary())
		.args(["purge-chain", "--dev", "-y", "--base-path"])
		.arg(&node.base_path)
		.output()
		.expect("run purge-chain");
	assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
	assert!(!db.join("full").exists(), "database still there after purge-chain");
}

fn http_get(port: u16, path: &str) -> String {
	use std::io::{Read, Write};
	let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
	s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
	write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
	let mut buf = String::new();
	s.read_to_string(&mut buf).unwrap();
	buf
}
