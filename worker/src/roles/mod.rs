//! The worker's roles, one module each, every one owning its command-line arguments and a
//! `run(args, ctx)`: [`account`] (bonds and keys), [`miner`], [`verifier`] (committee seats and
//! audit duties), [`creator`] (models, datasets, jobs), [`federated`] (a participant's side of
//! federated jobs), [`server`] (pipeline stages), [`gateway`] (the OpenAI API over them),
//! [`api_key`] (who may use a gateway), [`status`] (bonds, jobs, earnings) and [`gpu_check`]. `main.rs` only parses and dispatches;
//! what they share — the node connection, IPFS, the state directory, reconnecting after a lost
//! node — is [`Context`]. A role reaches the chain only through [`crate::chain`]'s typed calls.

pub mod account;
pub mod api_key;
pub mod creator;
pub mod federated;
pub mod gateway;
pub mod gpu_check;
pub mod miner;
pub mod self_test;
pub mod server;
pub mod status;
pub mod verifier;

use std::{future::Future, path::PathBuf, pin::Pin, time::Duration};

use anyhow::Result;
use tracing::{info, warn};

use crate::{
	chain::{self, Chain},
	config::{self, FileConfig, Settings},
	content::ContentError,
	metrics,
	state::StateDir,
	storage::{Ipfs, StorageError},
};

/// Options every command takes: flags first, then `BLYAN_*` variables, then the config file.
#[derive(clap::Args)]
pub struct GlobalArgs {
	/// TOML file with any of: node, ipfs, key, key_file, state_dir, memory_mb.
	#[arg(long, env = "BLYAN_CONFIG", global = true)]
	pub config: Option<PathBuf>,
	/// The node's WebSocket RPC; several, separated by commas, to fail over to the next when one
	/// goes away (e.g. ws://127.0.0.1:9944,ws://10.0.0.2:9944).
	#[arg(long, env = "BLYAN_NODE", global = true)]
	pub node: Option<String>,
	/// The IPFS daemon's HTTP RPC (kubo API).
	#[arg(long, env = "BLYAN_IPFS", global = true)]
	pub ipfs: Option<String>,
	/// Signing key as a secret URI (`//Alice` on dev chains). Prefer --key-file elsewhere.
	#[arg(long, env = "BLYAN_KEY", global = true, hide_env_values = true)]
	pub key: Option<String>,
	/// File holding the secret URI or mnemonic; must be mode 0600.
	#[arg(long, env = "BLYAN_KEY_FILE", global = true)]
	pub key_file: Option<PathBuf>,
	/// Where salts, trained weights and progress are kept between runs.
	#[arg(long, env = "BLYAN_STATE_DIR", global = true)]
	pub state_dir: Option<PathBuf>,
	/// Memory this worker offers (MiB).
	#[arg(long, env = "BLYAN_MEMORY_MB", global = true)]
	pub memory_mb: Option<u32>,
	/// Seconds to keep retrying the node before giving up.
	#[arg(long, default_value_t = 60, global = true)]
	pub reconnect_secs: u64,
	/// Serve this worker's Prometheus metrics (jobs, earnings, step time, IPFS errors) at
	/// http://ADDR/metrics, e.g. 127.0.0.1:9616.
	#[arg(long, env = "BLYAN_METRICS_LISTEN", global = true, value_name = "ADDR")]
	pub metrics_listen: Option<std::net::SocketAddr>,
}

/// A bad command line or setting, found before anything was sent to the chain (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A [`UsageError`] as the `anyhow::Error` roles return.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
	UsageError(message.into()).into()
}

/// What every role is given: the settings resolved from flags, environment and config file, and
/// the ways to reach the node, IPFS and this chain's state directory.
pub struct Context {
	global: GlobalArgs,
	file: FileConfig,
	pub settings: Settings,
	/// How often the long-running roles look at the chain.
	pub poll: Duration,
}

impl Context {
	pub fn new(global: GlobalArgs) -> Result<Self> {
		let file = FileConfig::load(global.config.as_deref())?;
		let settings = settings(&global, &file);
		Ok(Self { global, file, settings, poll: Duration::from_millis(500) })
	}

	/// Connects to the node with this worker's key, retrying for `--reconnect-secs`.
	pub async fn connect(&self) -> Result<Chain> {
		let g = &self.global;
		// Flags and environment first (a secret URI, then a key file), then the config file.
		let key = match (&g.key, &g.key_file) {
			(Some(uri), _) => config::load_key(Some(uri), None)?,
			(None, Some(path)) => config::load_key(None, Some(path))?,
			(None, None) => {
				config::load_key(self.file.key.as_deref(), self.file.key_file.as_deref())?
			}
		};
		let chain =
			chain::connect_with_retry(&self.settings.node, &key, self.reconnect_window()).await?;
		info!(account = %chain.account(), node = %self.settings.node, "connected");
		Ok(chain)
	}

	/// Connects with a throw-away key, for commands that only read.
	pub async fn connect_reader(&self) -> Result<Chain> {
		let reader = config::load_key(Some("//blyan-reader"), None)?;
		Ok(chain::connect_with_retry(&self.settings.node, &reader, self.reconnect_window()).await?)
	}

	fn reconnect_window(&self) -> Duration {
		Duration::from_secs(self.global.reconnect_secs)
	}

	/// The IPFS daemon, checked to answer.
	pub async fn ipfs(&self) -> Result<Ipfs> {
		let ipfs = Ipfs::new(&self.settings.ipfs, self.settings.ipfs_timeout);
		let version = ipfs.version().await?;
		info!(url = %self.settings.ipfs, "IPFS {version}");
		Ok(ipfs)
	}

	/// The state directory of this chain: records of one chain never meet another's (a reset
	/// dev chain reuses job ids).
	pub fn state_dir(&self, chain: &Chain) -> Result<StateDir> {
		Ok(StateDir::open(&self.settings.state_dir.join(chain.chain_tag()))?)
	}

	/// Serves Prometheus metrics if `--metrics-listen` was given. Only the long-running roles
	/// call this; one-shot commands leave the port to the role that may already hold it.
	pub async fn serve_metrics(&self) -> Result<()> {
		if let Some(addr) = self.global.metrics_listen {
			let bound = metrics::serve(addr)
				.await
				.map_err(|e| usage(format!("--metrics-listen {addr}: {e}")))?;
			info!("metrics at http://{bound}/metrics");
		}
		Ok(())
	}

	/// Counts what `chain`'s account earns and is slashed into the metrics, if they are served.
	pub fn follow_earnings(&self, chain: &Chain) {
		if self.global.metrics_listen.is_some() {
			tokio::spawn(crate::report::follow_earnings(
				self.settings.node.clone(),
				*chain.account(),
			));
		}
	}

	/// Runs a role's loop, reconnecting to the node when the connection drops (a restarted or
	/// upgraded node) and retrying after IPFS errors; any other error ends it.
	pub async fn with_reconnect<R>(
		&self,
		role: &mut R,
		set_chain: impl Fn(&mut R, Chain),
		mut run: impl for<'a> FnMut(&'a mut R) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>,
	) -> Result<()> {
		loop {
			let Err(e) = run(role).await else { return Ok(()) };
			let storage = e.downcast_ref::<StorageError>().is_some()
				|| matches!(e.downcast_ref::<ContentError>(), Some(ContentError::Storage(_)));
			if crate::is_transient_error(&e) {
				warn!("lost the node ({e:#}); reconnecting");
				// Roles keep trying for as long as it takes.
				let chain = loop {
					match self.connect().await {
						Ok(chain) => break chain,
						Err(e) if crate::is_transient_error(&e) => {
							warn!("node still unreachable: {e:#}");
						}
						Err(e) => return Err(e),
					}
				};
				set_chain(role, chain);
				metrics::metrics().node_reconnects.inc();
			} else if storage {
				warn!("IPFS: {e:#}; retrying in 2 s");
				tokio::time::sleep(Duration::from_secs(2)).await;
			} else {
				return Err(e);
			}
		}
	}
}

fn settings(g: &GlobalArgs, file: &FileConfig) -> Settings {
	let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
	Settings {
		node: g.node.clone().or(file.node.clone()).unwrap_or_else(|| "ws://127.0.0.1:9944".into()),
		ipfs: g
			.ipfs
			.clone()
			.or(file.ipfs.clone())
			.unwrap_or_else(|| "http://127.0.0.1:5001".into()),
		state_dir: g
			.state_dir
			.clone()
			.or(file.state_dir.clone())
			.unwrap_or_else(|| home.join(".local/share/blyan-worker")),
		memory_mb: g.memory_mb.or(file.memory_mb).unwrap_or(4096),
		ipfs_timeout: Duration::from_secs(30),
	}
}

/// The bytes of `file`, or else `generate_kib` KiB of generated exercises from `seed` (the
/// commands' `--file`/`--generate` pairs); `neither` is the usage error when both are missing.
fn file_or_generated(
	file: Option<PathBuf>,
	generate_kib: Option<usize>,
	seed: u64,
	neither: &str,
) -> Result<Vec<u8>> {
	use anyhow::Context as _;
	match (file, generate_kib) {
		(Some(p), _) => std::fs::read(&p).with_context(|| format!("reading {}", p.display())),
		(None, Some(kib)) => Ok(crate::ml::data::generate_corpus(seed, kib * 1024)),
		(None, None) => Err(usage(neither)),
	}
}

/// An account named on the command line: an SS58 address, or a secret URI such as `//Alice`.
pub fn parse_account(name: &str) -> Result<subxt::utils::AccountId32> {
	if name.starts_with("//") {
		Ok(config::load_key(Some(name), None)?.public_key().to_account_id())
	} else {
		name.parse().map_err(|_| usage(format!("{name}: not an SS58 address or //URI")))
	}
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
	let term = async {
		match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
			Ok(mut s) => {
				s.recv().await;
			}
			Err(_) => std::future::pending::<()>().await,
		}
	};
	tokio::select! {
		_ = tokio::signal::ctrl_c() => {}
		_ = term => {}
	}
	info!("shutting down");
}

/// The chain's name of a training backend.
fn chain_backend(kind: crate::ml::device::BackendKind) -> chain::Backend {
	use crate::ml::device::BackendKind;
	match kind {
		BackendKind::Cpu => chain::Backend::Cpu,
		BackendKind::Cuda => chain::Backend::Cuda,
	}
}
