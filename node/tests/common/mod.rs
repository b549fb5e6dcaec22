//! Helpers for tests that run the real `blyan-node` binary on loopback.
//!
//! Every node is a child process on free 127.0.0.1 ports with its own base path; it is killed
//! (SIGKILL, by PID) and reaped when its handle drops, so a failing test leaves nothing behind.
#![allow(dead_code)]

pub mod pol;

use std::{
	net::TcpListener,
	path::{Path, PathBuf},
	process::{Child, Command, Stdio},
	time::{Duration, Instant},
};

use blyan_runtime::{AccountId, Balance, RuntimeCall, SignedPayload, UncheckedExtrinsic};
use codec::{Decode, Encode};
use serde_json::{json, Value};
use sp_core::H256;
use sp_keyring::Sr25519Keyring;

/// Path of the node binary: `$BLYAN_NODE_BIN`, else the one cargo built for this test run.
pub fn node_binary() -> PathBuf {
	if let Some(path) = std::env::var_os("BLYAN_NODE_BIN") {
		return PathBuf::from(path);
	}
	match option_env!("CARGO_BIN_EXE_blyan-node") {
		Some(path) => PathBuf::from(path),
		None => panic!("set BLYAN_NODE_BIN to the blyan-node binary"),
	}
}

/// A free TCP port on 127.0.0.1 (the listener is closed before the port is handed out), never
/// handed out before in this process: two networks run at once
/// ([`network_slot`]), and one must not be given a port the other's node is about to bind or
/// has let go of while it restarts.
pub fn free_port() -> u16 {
	static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
	let mut given = GIVEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
	loop {
		let port = TcpListener::bind("127.0.0.1:0")
			.and_then(|l| l.local_addr())
			.map(|a| a.port())
			.expect("port");
		if !given.contains(&port) {
			given.push(port);
			return port;
		}
	}
}

/// Total BLY issuance in the state of block `at`.
pub fn total_issuance_key() -> String {
	format!(
		"0x{}",
		hex::encode(pallet_balances::TotalIssuance::<blyan_runtime::Runtime>::hashed_key())
	)
}

/// What `System.Account` stores for an account.
pub type AccountInfo =
	frame_system::AccountInfo<blyan_runtime::Nonce, pallet_balances::AccountData<Balance>>;

/// Validators of the `local`/`local4` presets, in the order their networks start them.
pub const VALIDATORS: [&str; 4] = ["alice", "bob", "charlie", "dave"];

/// Starts the first `count` validators of `chain` under `dir`, each with its own node key and
/// `extra` flags; the first is every other's bootnode.
pub fn start_network(dir: &Path, chain: &str, count: usize, extra: &[&str]) -> Vec<Node> {
	let mut nodes: Vec<Node> = Vec::new();
	let mut boot = String::new();
	for (i, name) in VALIDATORS[..count].iter().enumerate() {
		let key = write_node_key(dir, name, i as u8 + 1);
		let key_arg = key.to_string_lossy().to_string();
		let flag = format!("--{name}");
		let mut args =
			vec!["--chain", chain, flag.as_str(), "--validator", "--node-key-file", &key_arg];
		if i > 0 {
			args.extend(["--bootnodes", boot.as_str()]);
		}
		args.extend(extra);
		let node = Node::start(name, dir, &args);
		if i == 0 {
			boot = node.multiaddr(&peer_id_of(&key));
		}
		nodes.push(node);
	}
	nodes
}

/// A running node process.
pub struct Node {
	pub name: String,
	pub child: Option<Child>,
	pub rpc_port: u16,
	pub p2p_port: u16,
	pub prometheus_port: u16,
	pub base_path: PathBuf,
	pub log: PathBuf,
	args: Vec<String>,
}

impl Node {
	/// Starts `blyan-node` with `args` plus loopback ports and a base path under `dir`.
	pub fn start(name: &str, dir: &Path, args: &[&str]) -> Node {
		let base_path = dir.join(name);
		std::fs::create_dir_all(&base_path).expect("base path");
		let mut node = Node {
			name: name.into(),
			child: None,
			rpc_port: free_port(),
			p2p_port: free_port(),
			prometheus_port: free_port(),
			log: dir.join(format!("{name}.log")),
			base_path,
			args: args.iter().map(|s| s.to_string()).collect(),
		};
		node.spawn();
		node
	}

	fn spawn(&mut self) {
		let log = std::fs::OpenOptions::new()
			.create(true)
			.append(true)
			.open(&self.log)
			.expect("log file");
		let child = Command::new(node_binary())
			.args(&self.args)
			.arg("--base-path")
			.arg(&self.base_path)
			.args(["--rpc-port", &self.rpc_port.to_string()])
			.args(["--prometheus-port", &self.prometheus_port.to_string()])
			.args(["--no-mdns", "--no-telemetry", "--listen-addr"])
			.arg(format!("/ip4/127.0.0.1/tcp/{}", self.p2p_port))
			.stdout(Stdio::null())
			.stderr(log)
			.spawn()
			.expect("spawn blyan-node");
		self.child = Some(child);
	}

	/// SIGKILL, as a crash or power loss would.
	pub fn kill(&mut self) {
		if let Some(mut child) = self.child.take() {
			let _ = child.kill();
			let _ = child.wait();
		}
	}

	/// Starts the process again with the same ports and base path.
	pub fn restart(&mut self) {
		self.kill();
		self.spawn();
	}

	pub fn is_running(&mut self) -> bool {
		matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
	}

	pub fn rpc_url(&self) -> String {
		format!("http://127.0.0.1:{}", self.rpc_port)
	}

	pub fn rpc(&self) -> Rpc {
		Rpc { port: self.rpc_port }
	}

	/// The last lines of the node's log, for failure messages.
	pub fn log_tail(&self) -> String {
		let text = std::fs::read_to_string(&self.log).unwrap_or_default();
		let lines: Vec<&str> = text.lines().collect();
		lines[lines.len().saturating_sub(40)..].join("\n")
	}

	/// Waits until `pred` holds for this node's heads; fails at once if the process has exited,
	/// or after `timeout`, with the end of the node's log.
	pub fn wait_for(
		&mut self,
		what: &str,
		timeout: Duration,
		pred: impl Fn(Heads) -> bool,
	) -> Result<Heads, String> {
		let rpc = self.rpc();
		let start = Instant::now();
		let mut last = None;
		while start.elapsed() < timeout {
			if !self.is_running() {
				return Err(format!(
					"{} exited while waiting for {what}\n{}",
					self.name,
					self.log_tail()
				));
			}
			if let Some(h) = rpc.heads() {
				last = Some(h);
				if pred(h) {
					return Ok(h);
				}
			}
			std::thread::sleep(Duration::from_millis(250));
		}
		Err(format!(
			"timed out after {timeout:?} waiting for {what}; last heads: {last:?}\n--- {} log ---\n{}",
			self.name,
			self.log_tail()
		))
	}

	/// Peer address of this node for `--bootnodes`.
	pub fn multiaddr(&self, peer_id: &str) -> String {
		format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", self.p2p_port, peer_id)
	}
}

impl Drop for Node {
	fn drop(&mut self) {
		self.kill();
	}
}

/// JSON-RPC over HTTP to one node. A blocking client on `std::net` keeps the tests free of the
/// client features of jsonrpsee/hyper, which would otherwise rebuild much of the node for tests.
pub struct Rpc {
	pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
	pub best: u32,
	pub finalized: u32,
}

fn parse_number(header: &serde_json::Value) -> Option<u32> {
	let hex = header.get("number")?.as_str()?.trim_start_matches("0x");
	u32::from_str_radix(hex, 16).ok()
}

impl Rpc {
	/// Calls `method`; `Err` carries the node's error object (or the transport failure) as text.
	pub fn call<R: serde::de::DeserializeOwned>(
		&self,
		method: &str,
		params: Value,
	) -> Result<R, String> {
		use std::io::{Read, Write};
		let body =
			json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
		let mut stream =
			std::net::TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
		stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
		write!(
			stream,
			"POST / HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
			self.port,
			body.len()
		)
		.map_err(|e| e.to_string())?;
		let mut response = String::new();
		stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
		let (head, json_body) = response.split_once("\r\n\r\n").ok_or("no HTTP body")?;
		if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
			return Err(format!("HTTP error: {}", head.lines().next().unwrap_or_default()));
		}
		let mut reply: Value =
			serde_json::from_str(json_body).map_err(|e| format!("{e}: {json_body}"))?;
		if let Some(err) = reply.get("error") {
			return Err(err.to_string());
		}
		serde_json::from_value(reply["result"].take()).map_err(|e| e.to_string())
	}

	pub fn heads(&self) -> Option<Heads> {
		let best: serde_json::Value = self.call("chain_getHeader", json!([])).ok()?;
		let fin_hash: String = self.call("chain_getFinalizedHead", json!([])).ok()?;
		let fin: serde_json::Value = self.call("chain_getHeader", json!([fin_hash])).ok()?;
		Some(Heads { best: parse_number(&best)?, finalized: parse_number(&fin)? })
	}

	pub fn block_hash(&self, n: u32) -> Option<H256> {
		let h: Option<String> = self.call("chain_getBlockHash", json!([n])).ok()?;
		let bytes = hex::decode(h?.trim_start_matches("0x")).ok()?;
		Some(H256::from_slice(&bytes))
	}

	pub fn finalized_hash(&self) -> Option<H256> {
		let h: String = self.call("chain_getFinalizedHead", json!([])).ok()?;
		let bytes = hex::decode(h.trim_start_matches("0x")).ok()?;
		Some(H256::from_slice(&bytes))
	}

	/// `System.Account` of `who` in the state of block `at` (the best block when `None`); the
	/// default (zero) record for an account that does not exist.
	pub fn account(&self, who: &AccountId, at: Option<H256>) -> Option<AccountInfo> {
		let key = frame_system::Account::<blyan_runtime::Runtime>::hashed_key_for(who);
		let key = format!("0x{}", hex::encode(key));
		let at = at.map(|h| format!("{h:?}"));
		let raw: Option<String> = self.call("state_getStorage", json!([key, at])).ok()?;
		let Some(raw) = raw else { return Some(AccountInfo::default()) };
		let bytes = hex::decode(raw.trim_start_matches("0x")).ok()?;
		AccountInfo::decode(&mut &bytes[..]).ok()
	}

	/// Free balance of `who` in the state of block `at` (the best block when `None`).
	pub fn free_balance(&self, who: &AccountId, at: Option<H256>) -> Option<Balance> {
		self.account(who, at).map(|info| info.data.free)
	}

	/// On-chain nonce of `who` in block `at` (unlike `system_accountNextIndex`, not counting the
	/// transaction pool).
	pub fn chain_nonce(&self, who: &AccountId, at: Option<H256>) -> Option<u32> {
		self.account(who, at).map(|info| info.nonce)
	}

	/// Total BLY issuance in the state of block `at` (best block when `None`).
	pub fn total_issuance(&self, at: Option<H256>) -> Option<Balance> {
		let at = at.map(|h| format!("{h:?}"));
		let raw: Option<String> =
			self.call("state_getStorage", json!([total_issuance_key(), at])).ok()?;
		let bytes = hex::decode(raw?.trim_start_matches("0x")).ok()?;
		Balance::decode(&mut &bytes[..]).ok()
	}

	pub fn nonce(&self, who: &AccountId) -> Option<u32> {
		let ss58 = sp_core::crypto::Ss58Codec::to_ss58check(who);
		self.call("system_accountNextIndex", json!([ss58])).ok()
	}

	/// Signs `call` as `signer` for this chain (immortal era) and returns the encoded extrinsic.
	pub fn sign(&self, signer: Sr25519Keyring, nonce: u32, call: RuntimeCall) -> Vec<u8> {
		let genesis = self.block_hash(0).expect("genesis hash");
		let version: serde_json::Value =
			self.call("state_getRuntimeVersion", json!([])).expect("runtime version");
		let spec_version = version["specVersion"].as_u64().expect("specVersion") as u32;
		let tx_version = version["transactionVersion"].as_u64().expect("transactionVersion") as u32;
		let tx_ext = blyan_runtime::tx_extension(nonce, 0);
		let implicit = ((), spec_version, tx_version, genesis, genesis, (), (), (), ());
		let payload = SignedPayload::from_raw(call.clone(), tx_ext.clone(), implicit);
		let signature = payload.using_encoded(|p| signer.sign(p));
		UncheckedExtrinsic::new_signed(
			call,
			signer.to_account_id().into(),
			signature.into(),
			tx_ext,
		)
		.encode()
	}

	/// Decodes the value under a raw storage `key` at the best block; `None` if absent.
	pub fn storage<T: Decode>(&self, key: &[u8]) -> Result<Option<T>, String> {
		let key = format!("0x{}", hex::encode(key));
		let raw: Option<String> = self.call("state_getStorage", json!([key]))?;
		raw.map(|raw| {
			let bytes = hex::decode(raw.trim_start_matches("0x")).map_err(|e| e.to_string())?;
			T::decode(&mut &bytes[..]).map_err(|e| e.to_string())
		})
		.transpose()
	}

	/// Calls runtime API `method` (e.g. `JobsApi_job`) at the best block with SCALE `args`.
	pub fn runtime_call<T: Decode>(&self, method: &str, args: impl Encode) -> Result<T, String> {
		let data = format!("0x{}", hex::encode(args.encode()));
		let raw: String = self.call("state_call", json!([method, data]))?;
		let bytes = hex::decode(raw.trim_start_matches("0x")).map_err(|e| e.to_string())?;
		T::decode(&mut &bytes[..]).map_err(|e| e.to_string())
	}

	/// Signs `call` as `signer` with its next nonce (pool included) and submits it.
	pub fn send(&self, signer: Sr25519Keyring, call: RuntimeCall) -> Result<String, String> {
		let nonce = self.nonce(&signer.to_account_id()).ok_or("no nonce")?;
		self.submit(&self.sign(signer, nonce, call))
	}

	/// Submits an encoded extrinsic; returns its hash or the node's error message.
	pub fn submit(&self, xt: &[u8]) -> Result<String, String> {
		let hex = format!("0x{}", hex::encode(xt));
		self.call::<String>("author_submitExtrinsic", json!([hex])).map_err(|e| e.to_string())
	}
}

/// Polls `probe` every 250 ms until it yields a value, or fails after `timeout` naming `what`.
pub fn wait_until<T>(
	what: &str,
	timeout: Duration,
	mut probe: impl FnMut() -> Option<T>,
) -> Result<T, String> {
	let start = Instant::now();
	while start.elapsed() < timeout {
		if let Some(value) = probe() {
			return Ok(value);
		}
		std::thread::sleep(Duration::from_millis(250));
	}
	Err(format!("timed out after {timeout:?} waiting for {what}"))
}

/// A fresh temporary directory for a test's base paths and logs.
pub fn test_dir(name: &str) -> tempfile::TempDir {
	tempfile::Builder::new().prefix(&format!("blyan-{name}-")).tempdir().expect("tempdir")
}

/// The node's peer id for a node-key file, as the node itself derives it.
pub fn peer_id_of(node_key_file: &Path) -> String {
	let out = Command::new(node_binary())
		.args(["key", "inspect-node-key", "--file"])
		.arg(node_key_file)
		.output()
		.expect("run key inspect-node-key");
	assert!(out.status.success(), "inspect-node-key: {}", String::from_utf8_lossy(&out.stderr));
	String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes a fixed ed25519 node key (hex) to `dir/name.key`.
pub fn write_node_key(dir: &Path, name: &str, byte: u8) -> PathBuf {
	let path = dir.join(format!("{name}.key"));
	std::fs::write(&path, hex::encode([byte; 32])).expect("node key");
	path
}

/// How many networks of one test binary run at once (`BLYAN_TEST_NETWORKS`, default 2): once its
/// nodes run, a test mostly waits for blocks, so two share the two cores. A binary whose test
/// measures the node alone (load.rs) holds one test. Counted under a mutex, not a semaphore crate.
static NETWORKS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);
static NETWORK_FREED: std::sync::Condvar = std::sync::Condvar::new();

/// Places for networks, held for the whole test (returned on drop, also when it panics).
pub struct NetworkSlot(usize);

impl Drop for NetworkSlot {
	fn drop(&mut self) {
		*NETWORKS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) -= self.0;
		NETWORK_FREED.notify_all();
	}
}

fn network_limit() -> usize {
	let n = std::env::var("BLYAN_TEST_NETWORKS").ok().and_then(|n| n.parse().ok());
	n.unwrap_or(2usize).clamp(1, 16)
}

fn take_slots(wanted: usize) -> NetworkSlot {
	let limit = network_limit();
	let wanted = wanted.min(limit);
	let mut running = NETWORKS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
	while *running + wanted > limit {
		running = NETWORK_FREED.wait(running).unwrap_or_else(|poisoned| poisoned.into_inner());
	}
	*running += wanted;
	NetworkSlot(wanted)
}

/// Waits for a place for one network.
pub fn network_slot() -> NetworkSlot {
	take_slots(1)
}

/// Waits until no other network of this binary runs, and keeps it so: for tests whose several
/// validators keep both cores busy (local_network.rs).
pub fn whole_machine() -> NetworkSlot {
	take_slots(usize::MAX)
}

/// Runs `node <script> <args>` in scripts/polkadot-js, killed after `limit`; returns stdout.
pub fn run_script(script: &str, args: &[String], limit: Duration) -> String {
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
