//! The node's security defaults, checked on real processes: RPC listens on loopback only; outside
//! development chains unsafe RPC methods are refused unless the operator asks for them; CORS
//! allows an explicit list of origins only.

mod common;

use std::{
	io::{Read, Write},
	time::Duration,
};

use common::*;
use serde_json::{json, Value};

const STARTUP: Duration = Duration::from_secs(180);
/// Validators on a non-development chain need a network key.
const NODE_KEY_1: &str = "0000000000000000000000000000000000000000000000000000000000000001";
const NODE_KEY_2: &str = "0000000000000000000000000000000000000000000000000000000000000002";

/// One JSON-RPC request over HTTP with an optional `Origin`; the response head and body.
fn post_with_origin(port: u16, origin: Option<&str>, method: &str) -> (String, String) {
	let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).to_string();
	let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
	stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
	let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
	write!(
		stream,
		"POST / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{origin}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
		body.len()
	)
	.unwrap();
	let mut response = String::new();
	stream.read_to_string(&mut response).unwrap();
	let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
	(head.to_ascii_lowercase(), body.to_string())
}

fn wait_for_rpc(node: &mut Node) {
	node.wait_for("the RPC server", STARTUP, |_| true).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn outside_development_unsafe_rpc_is_off_unless_asked_and_cors_is_a_list() {
	let _slot = network_slot();
	let dir = test_dir("security-local");
	// A `local` chain (not development): Alice alone is enough to serve RPC.
	let mut alice = Node::start(
		"alice",
		dir.path(),
		&["--chain", "local", "--alice", "--node-key", NODE_KEY_1],
	);
	wait_for_rpc(&mut alice);
	let rpc = alice.rpc();

	// Unsafe methods are refused even on loopback; safe ones answer.
	let err = rpc.call::<Value>("author_rotateKeys", json!([])).unwrap_err();
	assert!(err.to_lowercase().contains("unsafe"), "author_rotateKeys: {err}");
	let err = rpc
		.call::<Value>(
			"system_addReservedPeer",
			json!(["/ip4/1.2.3.4/tcp/1/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"]),
		)
		.unwrap_err();
	assert!(err.to_lowercase().contains("unsafe"), "system_addReservedPeer: {err}");
	let chain: String = rpc.call("system_chain", json!([])).unwrap();
	assert_eq!(chain, "Blyan Local Testnet");

	// The RPC server is bound to loopback only.
	// (The line may be written just after the server answers: read until it is there.)
	let mut log = String::new();
	for _ in 0..40 {
		log = std::fs::read_to_string(&alice.log).unwrap();
		if log.contains("Running JSON-RPC server") {
			break;
		}
		std::thread::sleep(Duration::from_millis(250));
	}
	let line = log
		.lines()
		.find(|l| l.contains("Running JSON-RPC server"))
		.unwrap_or_else(|| panic!("no RPC line in the log:\n{log}"));
	assert!(line.contains("127.0.0.1:") && !line.contains("0.0.0.0"), "{line}");

	// CORS: a listed origin is allowed, any other gets no allow header, so a page elsewhere
	// cannot read the node from a browser. Substrate's default list matches origins literally:
	// https://polkadot.js.org is on it; a local UI is named with --rpc-cors (below).
	let (head, _) =
		post_with_origin(alice.rpc_port, Some("https://polkadot.js.org"), "system_chain");
	assert!(head.contains("access-control-allow-origin: https://polkadot.js.org"), "{head}");
	for origin in ["https://evil.example", "http://localhost:3000"] {
		let (head, _) = post_with_origin(alice.rpc_port, Some(origin), "system_chain");
		assert!(!head.contains("access-control-allow-origin"), "{origin}: {head}");
	}
	alice.kill();

	// An operator who needs unsafe methods (to rotate session keys) or a local UI asks explicitly.
	let mut bob = Node::start(
		"bob",
		dir.path(),
		&[
			"--chain",
			"local",
			"--bob",
			"--node-key",
			NODE_KEY_2,
			"--rpc-methods",
			"unsafe",
			"--rpc-cors",
			"http://localhost:3000",
		],
	);
	wait_for_rpc(&mut bob);
	let keys: String = bob.rpc().call("author_rotateKeys", json!([])).unwrap();
	assert!(keys.starts_with("0x") && keys.len() > 66, "{keys}");
	let (head, _) = post_with_origin(bob.rpc_port, Some("http://localhost:3000"), "system_chain");
	assert!(head.contains("access-control-allow-origin: http://localhost:3000"), "{head}");
}

#[test]
fn a_development_chain_keeps_substrates_defaults() {
	let _slot = network_slot();
	let dir = test_dir("security-dev");
	let mut dev = Node::start("dev", dir.path(), &["--dev"]);
	wait_for_rpc(&mut dev);
	let keys: String = dev.rpc().call("author_rotateKeys", json!([])).unwrap();
	assert!(keys.starts_with("0x"), "{keys}");
	// --dev allows every origin (a local UI on any port).
	let (head, _) = post_with_origin(dev.rpc_port, Some("https://evil.example"), "system_chain");
	assert!(head.contains("access-control-allow-origin"), "{head}");
}
