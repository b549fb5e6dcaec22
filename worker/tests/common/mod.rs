//! A real network on loopback for the worker's tests: the `blyan-node` binary (dev chain, 1 s
//! blocks), a js-ipfs daemon (kubo HTTP RPC) and `blyan-worker` processes for every role. Every
//! process is killed by PID when its handle drops, and every wait is bounded.

#![allow(dead_code)]

use std::{
	fs::File,
	net::TcpListener,
	path::{Path, PathBuf},
	process::{Child, Command, ExitStatus, Stdio},
	time::{Duration, Instant},
};

use blyan_worker::chain::{self, Chain};
use subxt::utils::AccountId32;

/// How many networks run at once (`BLYAN_TEST_NETWORKS`, default 2). Once its node runs, a test
/// spends most of its time waiting for blocks (~10-30 % of two cores), so two at a time nearly
/// halve a test binary's time. The tiny models' steps take milliseconds against windows of
/// tens of blocks; a test with heavier work inside a window takes the [`whole_machine`].
fn networks() -> (&'static tokio::sync::Semaphore, u32) {
	static NETWORKS: std::sync::OnceLock<(tokio::sync::Semaphore, u32)> =
		std::sync::OnceLock::new();
	let (semaphore, limit) = NETWORKS.get_or_init(|| {
		let n = std::env::var("BLYAN_TEST_NETWORKS").ok().and_then(|n| n.parse().ok());
		let limit: u32 = n.unwrap_or(2).clamp(1, 16);
		(tokio::sync::Semaphore::new(limit as usize), limit)
	});
	(semaphore, *limit)
}

/// How long a node or IPFS daemon may take to come up. Start-up is the costly part of a
/// network (the node compiles its runtime's wasm for genesis and again to run it; js-ipfs loads
/// its libp2p stack): with the other network's processes busy on the same two cores, a node once
/// took over a minute. A bound on a hang, not a speed target.
const START_LIMIT: Duration = Duration::from_secs(180);

/// Held while a node or IPFS daemon starts, so that two networks of a binary do not start at the
/// same moment and double each other's start-up time (both were started together in CI and
/// neither node came up within a minute).
fn starting() -> std::sync::MutexGuard<'static, ()> {
	static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
	STARTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A place for one network; held for the whole test.
pub async fn network_slot() -> tokio::sync::SemaphorePermit<'static> {
	networks().0.acquire().await.expect("the semaphore is never closed")
}

/// Every place: no other network of this binary runs beside this test's.
pub async fn whole_machine() -> tokio::sync::SemaphorePermit<'static> {
	let (semaphore, limit) = networks();
	semaphore.acquire_many(limit).await.expect("the semaphore is never closed")
}

fn repo_root() -> PathBuf {
	Path::new(env!("CARGO_MANIFEST_DIR"))
		.parent()
		.expect("worker/ is in the repository")
		.to_path_buf()
}

pub fn worker_binary() -> PathBuf {
	PathBuf::from(env!("CARGO_BIN_EXE_blyan-worker"))
}

/// `blyan-node` from `BLYAN_NODE_BIN` or next to the worker binary (one target dir).
pub fn node_binary() -> PathBuf {
	let path = std::env::var_os("BLYAN_NODE_BIN").map(PathBuf::from).unwrap_or_else(|| {
		worker_binary().parent().expect("binary has a directory").join("blyan-node")
	});
	assert!(path.exists(), "{} is missing: run `cargo build -p blyan-node` first", path.display());
	path
}

/// Ports handed out in this process: two networks run at once ([`network_slot`]), and one must
/// not be given a port the other's node or IPFS daemon is about to bind, or has let go of while
/// a test restarts it.
static GIVEN_PORTS: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port free now and never handed out before in this process.
pub fn free_port() -> u16 {
	free_ports(1)
}

/// A base port with the `count - 1` after it free too, none handed out before in this process.
fn free_ports(count: u16) -> u16 {
	let mut given = GIVEN_PORTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
	loop {
		let base = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
		let ports = base..base.saturating_add(count);
		if base < 65000
			&& ports.clone().all(|p| !given.contains(&p))
			&& (1..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok())
		{
			given.extend(ports);
			return base;
		}
	}
}

/// A base port with the three after it free too (the IPFS daemon takes four).
fn free_port_block() -> u16 {
	free_ports(4)
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc {
	pub name: String,
	pub log: PathBuf,
	child: Option<Child>,
}

impl Proc {
	pub fn spawn(name: &str, mut command: Command, log: PathBuf) -> Self {
		let out = File::create(&log).unwrap();
		let child = command
			.stdout(Stdio::from(out.try_clone().unwrap()))
			.stderr(Stdio::from(out))
			.spawn()
			.unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
		Self { name: name.into(), log, child: Some(child) }
	}

	pub fn output(&self) -> String {
		std::fs::read_to_string(&self.log).unwrap_or_default()
	}

	/// Whether the process has exited (a zombie not yet reaped, or gone): `wait_for_output`
	/// holds `&self`, so this asks /proc rather than `Child::try_wait`.
	fn has_exited(&self) -> bool {
		let Some(child) = &self.child else { return true };
		match std::fs::read_to_string(format!("/proc/{}/stat", child.id())) {
			// The state follows the parenthesised command name, which may itself hold spaces.
			Ok(stat) => stat.rsplit_once(") ").is_none_or(|(_, rest)| rest.starts_with('Z')),
			// No /proc to ask (not Linux): the caller's time limit decides, as before.
			Err(_) => false,
		}
	}

	pub fn pid(&self) -> u32 {
		self.child.as_ref().map(|c| c.id()).unwrap_or(0)
	}

	/// Waits for the process to exit, at most `limit`.
	pub fn wait(&mut self, limit: Duration) -> ExitStatus {
		let start = Instant::now();
		let child = self.child.as_mut().expect("process running");
		loop {
			if let Some(status) = child.try_wait().unwrap() {
				return status;
			}
			if start.elapsed() > limit {
				panic!(
					"{} still running after {limit:?}; its output:\n{}",
					self.name,
					self.output()
				);
			}
			std::thread::sleep(Duration::from_millis(200));
		}
	}

	/// Waits until the process has printed `text`, at most `limit`.
	pub fn wait_for_output(&self, text: &str, limit: Duration) {
		let start = Instant::now();
		while !self.output().contains(text) {
			// A process that exited will not print it: say so now, not after the whole limit
			// (its output is read again after the exit was seen: it may have printed and left).
			let exited = self.has_exited() && !self.output().contains(text);
			if exited || start.elapsed() > limit {
				let why = if exited {
					"exited without printing".to_string()
				} else {
					format!("did not print in {limit:?}")
				};
				panic!("{} {why} {text:?}; its output:\n{}", self.name, self.output());
			}
			std::thread::sleep(Duration::from_millis(200));
		}
	}

	pub fn kill(&mut self) {
		if let Some(mut child) = self.child.take() {
			let _ = child.kill();
			let _ = child.wait();
		}
	}
}

impl Drop for Proc {
	fn drop(&mut self) {
		self.kill();
	}
}

pub struct Net {
	pub dir: tempfile::TempDir,
	pub rpc_port: u16,
	p2p_port: u16,
	pub ipfs_port: u16,
	node: Option<Proc>,
	ipfs: Option<Proc>,
	peer: Option<Proc>,
	node_starts: u32,
	ipfs_starts: u32,
}

/// The dev node's libp2p secret (fixed, so a second node can name it as its bootnode).
const NODE_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";

impl Net {
	/// A dev node and an IPFS daemon, both ready.
	pub fn start() -> Self {
		let dir = tempfile::Builder::new().prefix("blyan-worker-test").tempdir().unwrap();
		let ipfs_port = free_port_block();
		// The daemon binds its four ports only once it is up: keep the node's away from them.
		let taken = ipfs_port..ipfs_port + 4;
		let rpc_port = std::iter::repeat_with(free_port).find(|p| !taken.contains(p)).unwrap();
		let p2p_port = std::iter::repeat_with(free_port)
			.find(|p| !taken.contains(p) && *p != rpc_port)
			.unwrap();
		let mut net = Self {
			rpc_port,
			p2p_port,
			ipfs_port,
			node: None,
			ipfs: None,
			peer: None,
			dir,
			node_starts: 0,
			ipfs_starts: 0,
		};
		let _starting = starting();
		net.spawn_ipfs();
		net.spawn_node();
		net.ipfs.as_ref().unwrap().wait_for_output("Daemon is ready", START_LIMIT);
		net
	}

	fn spawn_ipfs(&mut self) {
		self.ipfs_starts += 1;
		let mut cmd = Command::new(repo_root().join("scripts/ipfs/daemon.sh"));
		cmd.arg(self.path("ipfs")).arg(self.ipfs_port.to_string());
		let log = self.path(&format!("ipfs-{}.log", self.ipfs_starts));
		self.ipfs = Some(Proc::spawn("ipfs", cmd, log));
	}

	/// `kill -9` of the IPFS daemon.
	pub fn kill_ipfs(&mut self) {
		if let Some(mut ipfs) = self.ipfs.take() {
			ipfs.kill();
		}
	}

	/// Starts the IPFS daemon again on its repository and port; returns once it serves.
	pub fn start_ipfs(&mut self) {
		// js-ipfs takes a killed daemon's lock for live until it is 20 s old; this test killed it.
		let lock = self.path("ipfs").join("repo.lock");
		let _ = std::fs::remove_dir_all(&lock).or_else(|_| std::fs::remove_file(&lock));
		let _starting = starting();
		self.spawn_ipfs();
		self.ipfs.as_ref().unwrap().wait_for_output("Daemon is ready", START_LIMIT);
	}

	pub fn path(&self, name: &str) -> PathBuf {
		self.dir.path().join(name)
	}

	pub fn node_url(&self) -> String {
		format!("ws://127.0.0.1:{}", self.rpc_port)
	}

	pub fn ipfs_url(&self) -> String {
		format!("http://127.0.0.1:{}", self.ipfs_port)
	}

	/// Starts the node on its database (a restart keeps the chain).
	pub fn start_node(&mut self) {
		let _starting = starting();
		self.spawn_node();
	}

	/// Starts the node and waits until it serves; the caller holds [`starting`].
	fn spawn_node(&mut self) {
		self.node_starts += 1;
		let mut cmd = Command::new(node_binary());
		cmd.args(["--dev", "--no-prometheus", "--no-telemetry", "--node-key", NODE_KEY])
			.arg("--base-path")
			.arg(self.path("node"))
			.args(["--rpc-port", &self.rpc_port.to_string(), "--port", &self.p2p_port.to_string()]);
		let node =
			Proc::spawn("blyan-node", cmd, self.path(&format!("node-{}.log", self.node_starts)));
		node.wait_for_output("Running JSON-RPC server", START_LIMIT);
		self.node = Some(node);
	}

	/// A second node of the dev chain, not a validator, peered with the first; returns its RPC
	/// URL once it serves. A worker given both URLs (`--node a,b`) fails over between them.
	pub fn start_peer(&mut self) -> String {
		let key_file = self.path("node.key");
		std::fs::write(&key_file, NODE_KEY).unwrap();
		let out = Command::new(node_binary())
			.args(["key", "inspect-node-key", "--file"])
			.arg(&key_file)
			.output()
			.unwrap();
		let peer_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
		let (rpc, p2p) = (free_port(), free_port());
		let mut cmd = Command::new(node_binary());
		cmd.args(["--chain", "dev", "--no-prometheus", "--no-telemetry", "--base-path"])
			.arg(self.path("peer"))
			.args(["--rpc-port", &rpc.to_string(), "--port", &p2p.to_string(), "--bootnodes"])
			.arg(format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer_id}", self.p2p_port));
		let _starting = starting();
		let peer = Proc::spawn("blyan-node (peer)", cmd, self.path("peer.log"));
		peer.wait_for_output("Running JSON-RPC server", START_LIMIT);
		self.peer = Some(peer);
		format!("ws://127.0.0.1:{rpc}")
	}

	/// Starts a long-running worker command connected to `nodes` (comma-separated URLs).
	pub fn spawn_with_nodes(&self, name: &str, key: &str, nodes: &str, args: &[&str]) -> Proc {
		let mut cmd = self.worker_command(key);
		cmd.env("BLYAN_NODE", nodes).args(args);
		Proc::spawn(name, cmd, self.path(&format!("{name}.log")))
	}

	/// `kill -9` of the node.
	pub fn kill_node(&mut self) {
		if let Some(mut node) = self.node.take() {
			node.kill();
		}
	}

	fn worker_command(&self, key: &str) -> Command {
		let mut cmd = Command::new(worker_binary());
		cmd.env("BLYAN_NODE", self.node_url())
			.env("BLYAN_IPFS", self.ipfs_url())
			.env("BLYAN_KEY", key)
			.env("BLYAN_STATE_DIR", self.path(&format!("state{}", key.replace('/', "-"))))
			.env("BLYAN_LOG", "info");
		cmd
	}

	/// Runs a worker command to its end (at most 3 minutes); panics unless it succeeds.
	pub fn run(&self, key: &str, args: &[&str]) -> String {
		let mut cmd = self.worker_command(key);
		cmd.args(args);
		let name = format!("blyan-worker {} ({key})", args.join(" "));
		let mut proc = Proc::spawn(&name, cmd, self.path(&format!("run-{}.log", free_port())));
		let status = proc.wait(Duration::from_secs(180));
		let out = proc.output();
		assert!(status.success(), "{name} failed ({status}):\n{out}");
		out
	}

	/// Starts a long-running worker command.
	pub fn spawn(&self, name: &str, key: &str, args: &[&str]) -> Proc {
		let mut cmd = self.worker_command(key);
		cmd.args(args);
		Proc::spawn(name, cmd, self.path(&format!("{name}.log")))
	}

	/// A client of the node (signing as a throw-away key; tests only read through it).
	pub async fn chain(&self) -> Chain {
		let key = blyan_worker::config::load_key(Some("//blyan-test-reader"), None).unwrap();
		chain::connect_with_retry(&self.node_url(), &key, Duration::from_secs(60)).await.unwrap()
	}
}

pub fn account(uri: &str) -> AccountId32 {
	blyan_worker::config::load_key(Some(uri), None).unwrap().public_key().to_account_id()
}

/// Model, root version and dataset registered for a test.
pub struct Fixture {
	pub root_version: u64,
	pub dataset: u64,
}

/// Bob, Charlie and Dave as verifiers; `miners` as workers; a tiny model by Alice and 64 KiB of
/// training data by `data_owner`.
pub fn fixture(net: &Net, miners: &[&str], data_owner: &str) -> Fixture {
	fixture_with(
		net,
		miners,
		data_owner,
		&["model-init", "--name", "tiny", "--arch", "tiny", "--seed", "1"],
		&["dataset-publish", "--generate", "64", "--seed", "1"],
	)
}

/// As [`fixture`], the model registered by Alice's `model_init` command and the data published
/// by `data_owner`'s `dataset_publish` command.
pub fn fixture_with(
	net: &Net,
	miners: &[&str],
	data_owner: &str,
	model_init: &[&str],
	dataset_publish: &[&str],
) -> Fixture {
	for v in ["//Bob", "//Charlie", "//Dave"] {
		net.run(v, &["register", "--verifier", "--bond", "100"]);
	}
	for m in miners {
		net.run(m, &["register", "--bond", "100"]);
	}
	let out = net.run("//Alice", model_init);
	let line = out.lines().find(|l| l.starts_with("model ")).expect("model line");
	let root_version = line.split_whitespace().nth(3).unwrap().parse().unwrap();
	let out = net.run(data_owner, dataset_publish);
	let dataset =
		out.lines().find(|l| l.starts_with("dataset ")).unwrap()[8..].trim().parse().unwrap();
	Fixture { root_version, dataset }
}

/// A completion from the OpenAI API at `base` (`http://host:port`), which must succeed.
pub async fn complete(
	http: &reqwest::Client,
	base: &str,
	body: serde_json::Value,
) -> serde_json::Value {
	let response = http.post(format!("{base}/v1/completions")).json(&body).send().await.unwrap();
	let status = response.status();
	let value: serde_json::Value = response.json().await.unwrap();
	assert!(status.is_success(), "{base}: HTTP {status}: {value}");
	value
}

/// Alice posts a job (100 BLY); returns its id.
pub fn post_job(net: &Net, f: &Fixture, extra: &[&str]) -> u64 {
	let (base, data) = (f.root_version.to_string(), f.dataset.to_string());
	let mut args = vec!["job-post", "--base-version", &base, "--dataset", &data, "--reward", "100"];
	args.extend_from_slice(extra);
	let out = net.run("//Alice", &args);
	out.lines().find(|l| l.starts_with("job ")).unwrap()[4..].trim().parse().unwrap()
}

/// The three verifiers, each stopping after one reveal.
pub fn verifiers(net: &Net) -> Vec<Proc> {
	["//Bob", "//Charlie", "//Dave"]
		.iter()
		.map(|v| {
			net.spawn(&format!("verifier{}", v.replace('/', "-")), v, &["verify", "--rounds", "1"])
		})
		.collect()
}

/// The creator watching `job` to its end; returns the watcher's output.
pub fn watch(net: &Net, job: u64, limit: Duration) -> String {
	let mut watcher =
		net.spawn(&format!("creator-watch-{job}"), "//Alice", &["job-watch", &job.to_string()]);
	let status = watcher.wait(limit);
	let out = watcher.output();
	assert!(status.success(), "the creator's watch failed:\n{out}");
	out
}

/// The version number in the watcher's `ACCEPTED: version N` / `REJECTED: version N` line.
pub fn verdict(out: &str) -> (String, u64) {
	let line = out
		.lines()
		.find(|l| l.contains("ACCEPTED") || l.contains("REJECTED"))
		.unwrap_or_else(|| panic!("no verdict in:\n{out}"));
	let verdict = if line.contains("ACCEPTED") { "ACCEPTED" } else { "REJECTED" };
	(verdict.into(), line.rsplit(' ').next().unwrap().parse().unwrap())
}

pub async fn free(chain: &Chain, who: &str) -> u128 {
	chain.balance(&account(who)).await.unwrap().0
}

/// Free plus held balance of a miner whose bond does not change: the version its result
/// becomes holds the registry's storage deposit out of its free balance.
pub async fn free_and_held(chain: &Chain, who: &str) -> u128 {
	let (free, held) = chain.balance(&account(who)).await.unwrap();
	free + held
}

pub const BLY: u128 = chain::BLY;
/// Transaction fees on the dev chain stay below this per account and test (a verifier pays
/// ~0.11 BLY: `reveal_scores` is charged its benchmarked worst case, a tally of the whole round).
pub const FEES: u128 = BLY / 4;
