//! `blyan-worker`: the command line. Settings come from `--config` (TOML), then environment
//! variables (`BLYAN_*`) and flags. Exit codes: 0 done, 1 failed, 2 bad usage or settings,
//! 3 node unreachable or incompatible, 4 IPFS unreachable.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use blyan_worker::{
	chain::{self, bly, blyan, Chain, ChainError},
	config::{self, ConfigError, FileConfig, Settings},
	creator,
	inference::service::{self, GatewayOptions, ServeOptions},
	ml::{
		data,
		device::{self, BackendKind, ComputeDevice},
		model::ModelConfig,
		train::Hyperparams,
		TrainDevice,
	},
	report,
	state::StateDir,
	storage::{Ipfs, StorageError},
	trainer::{AggregatorOptions, Miner, MinerOptions, Misbehaviour},
	verifier::{Verifier, VerifierOptions},
};
use clap::{Args, Parser, Subcommand};
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(
	name = "blyan-worker",
	version,
	about = "Blyan miner: train, verify and pin models for Proof-of-Learning"
)]
struct Cli {
	#[command(flatten)]
	global: Global,
	#[command(subcommand)]
	command: Command,
}

#[derive(Args)]
struct Global {
	/// TOML file with any of: node, ipfs, key, key_file, state_dir, memory_mb.
	#[arg(long, env = "BLYAN_CONFIG", global = true)]
	config: Option<PathBuf>,
	/// The node's WebSocket RPC; several, separated by commas, to fail over to the next when one
	/// goes away (e.g. ws://127.0.0.1:9944,ws://10.0.0.2:9944).
	#[arg(long, env = "BLYAN_NODE", global = true)]
	node: Option<String>,
	/// The IPFS daemon's HTTP RPC (kubo API).
	#[arg(long, env = "BLYAN_IPFS", global = true)]
	ipfs: Option<String>,
	/// Signing key as a secret URI (`//Alice` on dev chains). Prefer --key-file elsewhere.
	#[arg(long, env = "BLYAN_KEY", global = true, hide_env_values = true)]
	key: Option<String>,
	/// File holding the secret URI or mnemonic; must be mode 0600.
	#[arg(long, env = "BLYAN_KEY_FILE", global = true)]
	key_file: Option<PathBuf>,
	/// Where salts, trained weights and progress are kept between runs.
	#[arg(long, env = "BLYAN_STATE_DIR", global = true)]
	state_dir: Option<PathBuf>,
	/// Memory this worker offers (MiB).
	#[arg(long, env = "BLYAN_MEMORY_MB", global = true)]
	memory_mb: Option<u32>,
	/// Seconds to keep retrying the node before giving up.
	#[arg(long, default_value_t = 60, global = true)]
	reconnect_secs: u64,
	/// Serve this worker's Prometheus metrics (jobs, earnings, step time, IPFS errors) at
	/// http://ADDR/metrics, e.g. 127.0.0.1:9616.
	#[arg(long, env = "BLYAN_METRICS_LISTEN", global = true, value_name = "ADDR")]
	metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Subcommand)]
enum Command {
	/// Bond and declare capabilities as a worker (and/or as a verifier with --verifier).
	Register {
		/// Bond in BLY.
		#[arg(long, default_value_t = 100)]
		bond: u64,
		/// Register as a verifier instead of a miner.
		#[arg(long)]
		verifier: bool,
		/// Training backends to declare, comma-separated (default: every one this machine runs).
		/// CUDA is declared only if the CUDA driver reports a GPU.
		#[arg(long, value_enum, value_delimiter = ',')]
		backends: Option<Vec<BackendKind>>,
	},
	/// Start unbonding (worker, or verifier with --verifier); withdraw after the unbonding period.
	Unregister {
		#[arg(long)]
		verifier: bool,
		/// Withdraw a bond whose unbonding period has passed.
		#[arg(long)]
		withdraw: bool,
	},
	/// Mine: claim training jobs that fit, train, commit, reveal.
	Mine {
		/// Exit after this many jobs have finished.
		#[arg(long)]
		jobs: Option<u32>,
		/// TEST ONLY: misbehave so that verification catches it (the bond gets slashed).
		#[arg(long, hide = true)]
		misbehave: Option<Misbehaviour>,
		/// TEST ONLY, with `--misbehave copy-weights`: the version whose weights are copied.
		#[arg(long, hide = true)]
		copy_from: Option<u64>,
		/// Also aggregate federated jobs, taking participants' updates on this address.
		#[arg(long)]
		fl_listen: Option<std::net::SocketAddr>,
		/// URL recorded on chain for participants (default http://FL_LISTEN).
		#[arg(long, requires = "fl_listen")]
		fl_public_url: Option<String>,
		/// Seconds each step of a federated round waits for late participants.
		#[arg(long, default_value_t = 60)]
		fl_phase_secs: u64,
	},
	/// Take part in a federated job: join (its ε is charged to this account's privacy budget),
	/// train on local data each round and send only a clipped, noised (and, in the secure mode,
	/// masked) update to the aggregator.
	FlParticipate {
		#[arg(long)]
		job: u64,
		/// The local training data; or --data-generate KiB of exercises with --data-seed.
		#[arg(long, conflicts_with = "data_generate")]
		data_file: Option<PathBuf>,
		#[arg(long)]
		data_generate: Option<usize>,
		#[arg(long, default_value_t = 1)]
		data_seed: u64,
		/// Refuse a job that spends more than this ε.
		#[arg(long)]
		max_epsilon: Option<f64>,
	},
	/// Set this account's privacy budget: the ε its data may spend over all federated jobs.
	FlBudget { epsilon: f64 },
	/// Close a federated job whose job has ended (anyone may): participants' bonds are released,
	/// and the ε they were charged given back if no aggregator ever served it.
	FlClose { job: u64 },
	/// Verify: evaluate assigned candidates and commit/reveal scores.
	Verify {
		/// Exit after revealing this many rounds.
		#[arg(long)]
		rounds: Option<u32>,
		/// TEST ONLY: challenge every spot-checked segment, right or not (the bond is lost).
		#[arg(long, hide = true)]
		false_challenges: bool,
	},
	/// This account's bonds, jobs and verifications.
	Status,
	/// Claim this account's mining-pool share for every ended epoch it earned points in (`mine`
	/// does this by itself once a minute).
	ClaimRewards,
	/// What this account earned and lost in BLY over a block range, with an ROI figure.
	Earnings {
		/// First block (default: the last 3600 blocks).
		#[arg(long)]
		from: Option<u32>,
	},
	/// Creator: register a model with freshly initialised weights, or with the weights of a
	/// Hugging Face Qwen3 checkpoint (--hf-dir).
	ModelInit {
		#[arg(long)]
		name: String,
		/// `tiny`, `m100`, or a path to a JSON model config.
		#[arg(long, default_value = "tiny")]
		arch: String,
		/// A Hugging Face Qwen3 checkpoint directory (config.json and *.safetensors).
		#[arg(long, conflicts_with_all = ["arch", "seed"])]
		hf_dir: Option<PathBuf>,
		#[arg(long, default_value_t = 1)]
		seed: u64,
		#[arg(long, default_value = "Apache-2.0")]
		licence: String,
	},
	/// Creator or data owner: publish and register a dataset (a file, or the generated exercises).
	DatasetPublish {
		#[arg(long, conflicts_with = "generate")]
		file: Option<PathBuf>,
		/// Generate this many KiB of exercises with --seed.
		#[arg(long)]
		generate: Option<usize>,
		#[arg(long, default_value_t = 1)]
		seed: u64,
		#[arg(long, default_value = "CC0-1.0")]
		licence: String,
	},
	/// Creator: post a training job; with --watch, reveal the validation set when due and wait.
	JobPost {
		#[arg(long)]
		base_version: u64,
		#[arg(long)]
		dataset: u64,
		/// Validation set file; or --validation-generate KiB of exercises with --validation-seed.
		#[arg(long)]
		validation_file: Option<PathBuf>,
		#[arg(long, default_value_t = 16)]
		validation_generate: usize,
		#[arg(long, default_value_t = 2)]
		validation_seed: u64,
		/// Reward in BLY, escrowed.
		#[arg(long, default_value_t = 100)]
		reward: u64,
		#[arg(long, default_value_t = 60)]
		steps: u32,
		#[arg(long, default_value_t = 8)]
		batch_size: usize,
		#[arg(long, default_value_t = 64)]
		seq_len: usize,
		#[arg(long, default_value_t = 3e-3)]
		learning_rate: f64,
		#[arg(long, default_value_t = 7)]
		seed: u64,
		/// Blocks until claims close.
		#[arg(long, default_value_t = 3600)]
		deadline: u32,
		/// Blocks a claim lasts.
		#[arg(long, default_value_t = 600)]
		lease: u32,
		/// Required improvement in percent (chain default: 1).
		#[arg(long)]
		min_improvement: Option<u32>,
		#[arg(long)]
		watch: bool,
		/// Where the job trains: `cpu` (deterministic, audited step by step) or `cuda` (trained on
		/// GPUs, verified by re-evaluation on the CPU; not re-run step by step).
		#[arg(long, value_enum, default_value = "cpu")]
		backend: BackendKind,
		#[command(flatten)]
		federated: FederatedArgs,
	},
	/// Creator: watch a posted job, reveal its validation set when due, wait for its end.
	JobWatch { job: u64 },
	/// Free and held BLY of accounts (SS58 addresses or dev secret URIs such as //Alice).
	Balance { accounts: Vec<String> },
	/// Write a new key file (mode 0600) from a secret URI read from stdin.
	KeyImport { path: PathBuf },
	/// Serve layers of an accepted version: the stage protocol, and the OpenAI API if the span
	/// is the whole model; announce on chain, take receipts and settle them.
	Serve {
		/// The accepted version.
		#[arg(long)]
		version: u64,
		/// Registry layers held, START..END (0 = embedding, last = norm and head); default all.
		#[arg(long, value_parser = blyan_worker::inference::service::parse_span)]
		layers: Option<(usize, usize)>,
		#[arg(long, default_value = "127.0.0.1:8080")]
		listen: std::net::SocketAddr,
		/// URL announced on chain (default http://LISTEN).
		#[arg(long)]
		public_url: Option<String>,
		/// Price per token (in or out) in plancks.
		#[arg(long, default_value_t = 1_000_000)]
		price: u128,
		/// Sessions served at once.
		#[arg(long, default_value_t = 8)]
		capacity: u32,
		/// Bond in BLY.
		#[arg(long, default_value_t = 100)]
		bond: u64,
		/// Do not announce on chain (a private server).
		#[arg(long)]
		no_announce: bool,
		/// Refuse free-tier receipts.
		#[arg(long)]
		no_free: bool,
		/// Seconds between settlements of receipts.
		#[arg(long, default_value_t = 10)]
		settle_secs: u64,
		/// Milliseconds added before every chunk (simulates a slower device; tests, benchmarks).
		#[arg(long, default_value_t = 0, hide = true)]
		simulate_latency_ms: u64,
		/// Where the layers compute: cpu, cuda or cuda:N (bf16 on GPUs that have it).
		#[arg(long, default_value = "cpu")]
		device: ComputeDevice,
	},
	/// Check and benchmark this `cuda` build on a GPU (no chain needed): CPU-vs-GPU logits,
	/// batching, a mixed GPU+CPU pipeline, CUDA training against the CPU's, then decode and
	/// training benchmarks of Qwen3-shaped models. Writes a JSON report; fails if a check fails.
	GpuCheck {
		/// The JSON report.
		#[arg(long)]
		out: PathBuf,
		#[arg(long, default_value = "cuda:0")]
		device: ComputeDevice,
		/// The GPU's float type for this run: f32 (the checks, f32 decoding, training) or bf16.
		#[arg(long, value_enum, default_value = "f32")]
		precision: device::Precision,
		/// Shapes benchmarked (0.6b, 8b; none for no decoding benchmark).
		#[arg(long, value_delimiter = ',', default_value = "0.6b,8b")]
		shapes: Vec<String>,
		#[arg(long, default_value_t = 128)]
		prompt_tokens: usize,
		#[arg(long, default_value_t = 128)]
		decode_tokens: usize,
		/// Concurrent sessions of the aggregate benchmark, and tokens each decodes.
		#[arg(long, default_value_t = 16)]
		clients: usize,
		#[arg(long, default_value_t = 64)]
		client_tokens: usize,
		/// Only the checks, no benchmarks.
		#[arg(long)]
		checks_only: bool,
	},
	/// Answer the OpenAI API for a version by routing over the stages announced on chain,
	/// paying each server with receipts signed by this account.
	Gateway {
		#[arg(long)]
		version: u64,
		#[arg(long, default_value = "127.0.0.1:8000")]
		listen: std::net::SocketAddr,
		/// Pay with free-tier receipts (counted against this account's daily quota).
		#[arg(long)]
		free: bool,
		/// Sign no receipts.
		#[arg(long, conflicts_with = "free")]
		unpaid: bool,
		/// Most plancks per token paid to a stage; stages asking more are never used.
		#[arg(long, default_value_t = 100_000_000)]
		max_price: u128,
	},
}

/// Resolves on Ctrl-C or SIGTERM.
/// `job-post` options that make the job federated (with --fl-rounds).
#[derive(clap::Args, Debug)]
struct FederatedArgs {
	/// Make the job federated with this many rounds; the training dataset then only describes
	/// the participants' data, which never leave their machines.
	#[arg(long)]
	fl_rounds: Option<u32>,
	/// The participants (SS58 addresses or //URIs), comma-separated; or --fl-open-bond.
	#[arg(long, value_delimiter = ',', conflicts_with = "fl_open_bond")]
	fl_participants: Vec<String>,
	/// An open call: anyone may join holding this bond (BLY).
	#[arg(long)]
	fl_open_bond: Option<u64>,
	/// secure | mean | median | trimmed:K | krum:F:M
	#[arg(long, default_value = "secure")]
	fl_rule: String,
	/// Secure mode: participants that must reach the end of a round (default 2n/3 + 1 of --fl-min).
	#[arg(long)]
	fl_threshold: Option<u16>,
	/// Participants needed (default: all the named ones, or 3).
	#[arg(long)]
	fl_min: Option<u16>,
	/// L2 norm each update is clipped to.
	#[arg(long, default_value_t = 1.0)]
	fl_clip: f64,
	/// Gaussian noise multiplier σ.
	#[arg(long, default_value_t = 1.0)]
	fl_noise: f64,
	/// δ = 10^-K.
	#[arg(long, default_value_t = 5)]
	fl_delta_exp: u8,
	/// Local training steps per round.
	#[arg(long, default_value_t = 20)]
	fl_local_steps: u32,
}

fn parse_account(name: &str) -> Result<subxt::utils::AccountId32> {
	if name.starts_with("//") {
		Ok(config::load_key(Some(name), None)?.public_key().to_account_id())
	} else {
		name.parse()
			.map_err(|_| Fatal::Usage(format!("{name}: not an SS58 address or //URI")).into())
	}
}

impl FederatedArgs {
	fn spec(&self) -> Result<Option<chain::ChainFederatedSpec>> {
		use chain::{Admission, AggregationRule, BoundedVec};
		let Some(rounds) = self.fl_rounds else { return Ok(None) };
		let admission = match self.fl_open_bond {
			Some(bond) => Admission::Open { bond: bond as u128 * chain::BLY },
			None if self.fl_participants.is_empty() => {
				return Err(Fatal::Usage("give --fl-participants or --fl-open-bond".into()).into())
			}
			None => Admission::Named(BoundedVec(
				self.fl_participants.iter().map(|p| parse_account(p)).collect::<Result<_>>()?,
			)),
		};
		let min = self.fl_min.unwrap_or(match &admission {
			Admission::Named(n) => n.0.len() as u16,
			Admission::Open { .. } => 3,
		});
		let bad_rule = || {
			Fatal::Usage(format!(
				"--fl-rule {}: expected secure, mean, median, trimmed:K or krum:F:M",
				self.fl_rule
			))
		};
		let parts: Vec<&str> = self.fl_rule.split(':').collect();
		let num = |i: usize| parts.get(i).and_then(|v| v.parse::<u16>().ok()).ok_or_else(bad_rule);
		let rule = match parts[0] {
			"secure" => {
				AggregationRule::Secure { threshold: self.fl_threshold.unwrap_or(2 * min / 3 + 1) }
			}
			"mean" => AggregationRule::Mean,
			"median" => AggregationRule::Median,
			"trimmed" => AggregationRule::TrimmedMean { trim: num(1)? },
			"krum" => AggregationRule::MultiKrum { byzantine: num(1)?, selected: num(2)? },
			_ => return Err(bad_rule().into()),
		};
		if !(self.fl_clip > 0.0 && self.fl_noise > 0.0) {
			return Err(Fatal::Usage("--fl-clip and --fl-noise must be positive".into()).into());
		}
		Ok(Some(chain::ChainFederatedSpec {
			rounds,
			min_participants: min,
			admission,
			rule,
			clip_norm_milli: (self.fl_clip * 1000.0).round() as u32,
			noise_milli: (self.fl_noise * 1000.0).round() as u32,
			delta_exp: self.fl_delta_exp,
			local_steps: self.fl_local_steps,
		}))
	}
}

async fn shutdown_signal() {
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

#[derive(Debug, thiserror::Error)]
enum Fatal {
	#[error("{0}")]
	Usage(String),
}

fn exit_code(e: &anyhow::Error) -> u8 {
	if e.downcast_ref::<ConfigError>().is_some() || e.downcast_ref::<Fatal>().is_some() {
		return 2;
	}
	if let Some(c) = e.downcast_ref::<ChainError>() {
		return if c.is_refusal() { 1 } else { 3 };
	}
	if e.downcast_ref::<StorageError>().is_some() {
		return 4;
	}
	if let Some(c) = e.downcast_ref::<blyan_worker::content::ContentError>() {
		return match c {
			blyan_worker::content::ContentError::Chain(c) if c.is_refusal() => 1,
			blyan_worker::content::ContentError::Chain(_) => 3,
			blyan_worker::content::ContentError::Storage(_) => 4,
			_ => 1,
		};
	}
	1
}

#[tokio::main]
async fn main() -> ExitCode {
	tracing_subscriber::fmt()
		.with_env_filter(
			tracing_subscriber::EnvFilter::try_from_env("BLYAN_LOG")
				.unwrap_or_else(|_| "info".into()),
		)
		.with_target(false)
		.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
		.with_writer(std::io::stderr)
		.init();
	let cli = Cli::parse();
	match run(cli).await {
		Ok(()) => ExitCode::SUCCESS,
		Err(e) => {
			error!("{e:#}");
			ExitCode::from(exit_code(&e))
		}
	}
}

fn settings(g: &Global, file: &FileConfig) -> Settings {
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

async fn connect(g: &Global, file: &FileConfig, s: &Settings) -> Result<Chain> {
	// Flags and environment first (a secret URI, then a key file), then the config file.
	let key = match (&g.key, &g.key_file) {
		(Some(uri), _) => config::load_key(Some(uri), None)?,
		(None, Some(path)) => config::load_key(None, Some(path))?,
		(None, None) => config::load_key(file.key.as_deref(), file.key_file.as_deref())?,
	};
	let chain =
		chain::connect_with_retry(&s.node, &key, Duration::from_secs(g.reconnect_secs)).await?;
	info!(account = %chain.account(), node = %s.node, "connected");
	Ok(chain)
}

/// The state directory of this chain: records of one chain never meet another's (a reset dev
/// chain reuses job ids).
fn state_dir(s: &Settings, chain: &Chain) -> Result<StateDir> {
	Ok(StateDir::open(&s.state_dir.join(chain.chain_tag()))?)
}

async fn ipfs(s: &Settings) -> Result<Ipfs> {
	let ipfs = Ipfs::new(&s.ipfs, s.ipfs_timeout);
	let version = ipfs.version().await?;
	info!(url = %s.ipfs, "IPFS {version}");
	Ok(ipfs)
}

/// Runs a role loop, reconnecting to the node when the connection drops (a restarted node).
async fn with_reconnect<R>(
	g: &Global,
	file: &FileConfig,
	s: &Settings,
	role: &mut R,
	set_chain: impl Fn(&mut R, Chain),
	mut run: impl for<'a> FnMut(
		&'a mut R,
	)
		-> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>,
) -> Result<()> {
	loop {
		match run(role).await {
			Ok(()) => return Ok(()),
			Err(e) => {
				let connection = blyan_worker::is_transient_error(&e);
				let storage = e.downcast_ref::<StorageError>().is_some()
					|| matches!(
						e.downcast_ref::<blyan_worker::content::ContentError>(),
						Some(blyan_worker::content::ContentError::Storage(_))
					);
				if connection {
					warn!("lost the node ({e:#}); reconnecting");
					// Roles keep trying for as long as it takes: a restarted or upgraded node.
					let chain = loop {
						match connect(g, file, s).await {
							Ok(chain) => break chain,
							Err(e) if blyan_worker::is_transient_error(&e) => {
								warn!("node still unreachable: {e:#}");
							}
							Err(e) => return Err(e),
						}
					};
					set_chain(role, chain);
					blyan_worker::metrics::metrics().node_reconnects.inc();
				} else if storage {
					warn!("IPFS: {e:#}; retrying in 2 s");
					tokio::time::sleep(Duration::from_secs(2)).await;
				} else {
					return Err(e);
				}
			}
		}
	}
}

async fn run(cli: Cli) -> Result<()> {
	let g = &cli.global;
	let file = FileConfig::load(g.config.as_deref())?;
	let s = settings(g, &file);
	let poll = Duration::from_millis(500);
	// The long-running roles serve metrics; one-shot commands (status, earnings…) leave the
	// port to the role that may already hold it.
	let serves_metrics = matches!(
		cli.command,
		Command::Mine { .. }
			| Command::Verify { .. }
			| Command::Serve { .. }
			| Command::Gateway { .. }
			| Command::FlParticipate { .. }
			| Command::JobWatch { .. }
	);
	if let (Some(addr), true) = (g.metrics_listen, serves_metrics) {
		let bound = blyan_worker::metrics::serve(addr)
			.await
			.map_err(|e| Fatal::Usage(format!("--metrics-listen {addr}: {e}")))?;
		info!("metrics at http://{bound}/metrics");
	}
	match cli.command {
		Command::GpuCheck {
			out,
			device,
			precision,
			shapes,
			prompt_tokens,
			decode_tokens,
			clients,
			client_tokens,
			checks_only,
		} => {
			let ComputeDevice::Cuda(index) = device else {
				return Err(
					Fatal::Usage("gpu-check runs on a GPU: --device cuda[:N]".into()).into()
				);
			};
			#[cfg(feature = "cuda")]
			{
				let opts = blyan_worker::ml::gpu_check::GpuCheckOptions {
					device: index,
					precision,
					shapes,
					prompt_tokens: prompt_tokens.max(1),
					decode_tokens: decode_tokens.max(1),
					clients: clients.clamp(1, 64),
					client_tokens: client_tokens.max(1),
					checks_only,
				};
				let report = tokio::task::spawn_blocking(move || {
					blyan_worker::ml::gpu_check::run(&opts, |line| println!("{line}"))
				})
				.await?
				.map_err(|e| Fatal::Usage(e.to_string()))?;
				std::fs::write(&out, serde_json::to_vec_pretty(&report)?)
					.with_context(|| format!("writing {}", out.display()))?;
				for check in &report.checks {
					let verdict = if check.passed { "PASS" } else { "FAIL" };
					println!("{verdict} {}: {}", check.name, check.detail);
				}
				println!("report written to {}", out.display());
				if !report.passed() {
					anyhow::bail!("a GPU check failed");
				}
			}
			#[cfg(not(feature = "cuda"))]
			{
				let _ = (index, out, shapes, prompt_tokens, decode_tokens, clients, client_tokens);
				let _ = (checks_only, precision);
				return Err(Fatal::Usage(device::GpuError::NotBuilt.to_string()).into());
			}
		}
		Command::KeyImport { path } => {
			let mut secret = String::new();
			std::io::stdin().read_line(&mut secret)?;
			config::load_key(Some(secret.trim()), None)?;
			config::write_key_file(&path, secret.trim())
				.with_context(|| format!("writing {}", path.display()))?;
			println!("key written to {} (mode 0600)", path.display());
		}
		Command::FlParticipate { job, data_file, data_generate, data_seed, max_epsilon } => {
			let data = match (data_file, data_generate) {
				(Some(p), _) => {
					std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?
				}
				(None, Some(kib)) => data::generate_corpus(data_seed, kib * 1024),
				(None, None) => {
					return Err(Fatal::Usage("give --data-file or --data-generate".into()).into())
				}
			};
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			let options = blyan_worker::federated::job::ParticipantOptions {
				device: TrainDevice::best(),
				data,
				max_epsilon,
				poll,
			};
			blyan_worker::federated::job::participate(&chain, &ipfs, job, options).await?;
			println!("federated job {job}: all rounds done");
		}
		Command::FlClose { job } => {
			let chain = connect(g, &file, &s).await?;
			let events = chain.federated_close(job).await?;
			let closed = events
				.find_first::<chain::blyan::federated::events::Closed>()
				.context("no Closed event")??;
			println!(
				"federated job {job} closed; ε {}",
				if closed.epsilon_refunded { "refunded" } else { "stays spent" }
			);
		}
		Command::FlBudget { epsilon } => {
			if !(epsilon >= 0.0 && epsilon.is_finite()) {
				return Err(Fatal::Usage("the budget is a non-negative ε".into()).into());
			}
			let chain = connect(g, &file, &s).await?;
			chain.set_privacy_budget((epsilon * 1000.0).round() as u64).await?;
			let (spent, _) = chain.privacy(chain.account()).await?;
			println!("privacy budget ε = {epsilon}; spent so far ε = {:.3}", spent as f64 / 1000.0);
		}
		Command::Balance { accounts } => {
			// Read-only: any key will do to open the client.
			let reader = config::load_key(Some("//blyan-balance-reader"), None)?;
			let chain =
				chain::connect_with_retry(&s.node, &reader, Duration::from_secs(g.reconnect_secs))
					.await?;
			for name in accounts {
				let who: subxt::utils::AccountId32 = if name.starts_with("//") {
					config::load_key(Some(&name), None)?.public_key().to_account_id()
				} else {
					name.parse().map_err(|_| {
						Fatal::Usage(format!("{name}: not an SS58 address or //URI"))
					})?
				};
				let (free, held) = chain.balance(&who).await?;
				println!("{name:<10} free {:>22}   held {:>18}", bly(free), bly(held));
			}
		}
		Command::Register { bond, verifier, backends } => {
			// Read from the machine, not declared: CUDA only where the driver reports a GPU; checked
			// before anything is sent.
			let gpu = device::gpu_info(0);
			let kinds = device::declarable_backends(backends.as_deref(), &gpu)
				.map_err(|e| Fatal::Usage(format!("cannot declare the CUDA backend: {e}")))?;
			let chain = connect(g, &file, &s).await?;
			let bond = bond as u128 * chain::BLY;
			if verifier {
				chain
					.submit("register_verifier", &blyan::tx().pol_rewards().register_verifier(bond))
					.await?;
				println!("registered as a verifier with a bond of {}", bly(bond));
			} else {
				let mut memory_mb = s.memory_mb;
				match &gpu {
					Ok(gpu) if kinds.contains(&BackendKind::Cuda) => {
						println!(
							"GPU 0: {} ({} MiB, compute capability {}.{})",
							gpu.name,
							gpu.memory_mb,
							gpu.compute_capability.0,
							gpu.compute_capability.1
						);
						memory_mb = gpu.cap_memory_mb(memory_mb);
					}
					Ok(_) => {}
					Err(e) => println!("no CUDA backend declared: {e}"),
				}
				let caps = chain::Capabilities {
					backends: chain::BoundedVec(kinds.iter().map(|k| chain_backend(*k)).collect()),
					memory_mb,
				};
				chain
					.submit("register_worker", &blyan::tx().jobs().register_worker(caps, bond))
					.await?;
				println!("registered as a worker with a bond of {}", bly(bond));
			}
		}
		Command::Unregister { verifier, withdraw } => {
			let chain = connect(g, &file, &s).await?;
			let _events = match (verifier, withdraw) {
				(false, false) => {
					chain.submit("unbond_worker", &blyan::tx().jobs().unbond_worker()).await?
				}
				(false, true) => {
					chain.submit("withdraw_worker", &blyan::tx().jobs().withdraw_worker()).await?
				}
				(true, false) => {
					chain
						.submit(
							"unregister_verifier",
							&blyan::tx().pol_rewards().unregister_verifier(),
						)
						.await?
				}
				(true, true) => {
					chain
						.submit("withdraw_verifier", &blyan::tx().pol_rewards().withdraw_verifier())
						.await?
				}
			};
			println!("done");
		}
		Command::Mine { jobs, misbehave, copy_from, fl_listen, fl_public_url, fl_phase_secs } => {
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			if chain.worker_info(chain.account()).await?.is_none() {
				return Err(Fatal::Usage(
					"this account is not a registered worker: run `blyan-worker register` first"
						.into(),
				)
				.into());
			}
			let state = state_dir(&s, &chain)?;
			// As `register` declares: memory capped at the GPU's where CUDA jobs train on it.
			let gpu = device::gpu_info(0);
			let device = TrainDevice::for_gpu(&gpu);
			let memory_mb = match &gpu {
				Ok(gpu) if device != TrainDevice::Cpu => gpu.cap_memory_mb(s.memory_mb),
				_ => s.memory_mb,
			};
			let options = MinerOptions {
				device,
				memory_mb,
				jobs,
				misbehave,
				copy_from,
				poll,
				federated: fl_listen.map(|listen| AggregatorOptions {
					listen,
					public_url: fl_public_url,
					phase_timeout: Duration::from_secs(fl_phase_secs),
				}),
			};
			if g.metrics_listen.is_some() {
				tokio::spawn(report::follow_earnings(s.node.clone(), *chain.account()));
			}
			let mut miner = Miner::new(chain, ipfs, state, options);
			with_reconnect(g, &file, &s, &mut miner, Miner::set_chain, |m| Box::pin(m.run()))
				.await?;
		}
		Command::Verify { rounds, false_challenges } => {
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			if chain.verifier_info(chain.account()).await?.is_none() {
				return Err(Fatal::Usage("this account is not a registered verifier: run `blyan-worker register --verifier` first".into()).into());
			}
			let state = state_dir(&s, &chain)?;
			if g.metrics_listen.is_some() {
				tokio::spawn(report::follow_earnings(s.node.clone(), *chain.account()));
			}
			let mut verifier = Verifier::new(
				chain,
				ipfs,
				state,
				VerifierOptions { poll, rounds, false_challenges },
			);
			with_reconnect(g, &file, &s, &mut verifier, Verifier::set_chain, |v| Box::pin(v.run()))
				.await?;
		}
		Command::ClaimRewards => {
			let chain = connect(g, &file, &s).await?;
			let n = blyan_worker::trainer::claim_epoch_rewards(&chain).await?;
			println!("claimed {n} epoch reward(s)");
		}
		Command::Status => {
			let chain = connect(g, &file, &s).await?;
			print!("{}", report::status(&chain).await?);
		}
		Command::Earnings { from } => {
			let chain = connect(g, &file, &s).await?;
			let to = chain.finalized_number().await?;
			let from = from.unwrap_or(to.saturating_sub(3600)).max(1);
			let e = report::earnings(&chain, chain.account(), from, to).await?;
			let me = *chain.account();
			let bonded = chain.worker_info(&me).await?.map_or(0, |w| w.bond)
				+ chain.verifier_info(&me).await?.map_or(0, |v| v.bond);
			print!("{}", report::format_earnings(&e, bonded));
		}
		Command::ModelInit { name, licence, hf_dir: Some(dir), .. } => {
			let (model_config, layers) = blyan_worker::ml::hf::load_checkpoint(&dir)
				.map_err(|e| Fatal::Usage(format!("checkpoint {}: {e}", dir.display())))?;
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			let (model, version) = creator::register_model_layers(
				&chain,
				&ipfs,
				&name,
				&model_config,
				&layers,
				&licence,
			)
			.await?;
			info!(model, version, params = model_config.parameter_count(), "checkpoint registered");
			println!("model {model} root-version {version}");
		}
		Command::ModelInit { name, arch, seed, licence, hf_dir: None } => {
			let model_config = match arch.as_str() {
				"tiny" => ModelConfig::tiny(),
				"m100" => ModelConfig::m100(),
				path => serde_json::from_slice(
					&std::fs::read(path).with_context(|| format!("reading {path}"))?,
				)
				.map_err(|e| Fatal::Usage(format!("model config {path}: {e}")))?,
			};
			model_config.validate().map_err(Fatal::Usage)?;
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			let (model, version) =
				creator::register_model(&chain, &ipfs, &name, &model_config, seed, &licence)
					.await?;
			info!(
				model,
				version,
				params = model_config.parameter_count(),
				layers = model_config.layer_count(),
				"model registered; root weights pinned"
			);
			println!("model {model} root-version {version}");
		}
		Command::DatasetPublish { file: path, generate, seed, licence } => {
			let bytes = match (path, generate) {
				(Some(p), _) => {
					std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?
				}
				(None, Some(kib)) => data::generate_corpus(seed, kib * 1024),
				(None, None) => return Err(Fatal::Usage("give --file or --generate".into()).into()),
			};
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			let size = bytes.len();
			let dataset = creator::register_dataset(&chain, &ipfs, bytes, &licence).await?;
			info!(dataset, bytes = size, "dataset registered; content pinned");
			println!("dataset {dataset}");
		}
		Command::JobPost {
			base_version,
			dataset,
			validation_file,
			validation_generate,
			validation_seed,
			reward,
			steps,
			batch_size,
			seq_len,
			learning_rate,
			seed,
			deadline,
			lease,
			min_improvement,
			watch,
			backend,
			federated,
		} => {
			let federated = federated.spec()?;
			let validation = match validation_file {
				Some(p) => std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
				None => data::generate_corpus(validation_seed, validation_generate * 1024),
			};
			let hyperparams =
				Hyperparams { steps, batch_size, seq_len, learning_rate, ..Default::default() };
			hyperparams.validate().map_err(Fatal::Usage)?;
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			let state = state_dir(&s, &chain)?;
			let request = creator::JobRequest {
				base_version,
				dataset,
				validation,
				hyperparams,
				seed,
				reward: reward as u128 * chain::BLY,
				deadline_in: deadline,
				lease,
				min_improvement_percent: min_improvement,
				backend: chain_backend(backend),
				federated,
			};
			let job = creator::post_job(&chain, &ipfs, &state, request).await?;
			info!(job, reward = %bly(reward as u128 * chain::BLY), "job posted; reward escrowed; validation set kept local until a miner commits");
			println!("job {job}");
			if watch {
				watch_job(&chain, &ipfs, &state, job, poll).await?;
			}
		}
		Command::Serve {
			version,
			layers,
			listen,
			public_url,
			price,
			capacity,
			bond,
			no_announce,
			no_free,
			settle_secs,
			simulate_latency_ms,
			device,
		} => {
			// A GPU that is not there is a usage error before any chain or IPFS work.
			if let ComputeDevice::Cuda(index) = device {
				device::gpu_info(index)
					.map_err(|e| Fatal::Usage(format!("--device {device}: {e}")))?;
			}
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			let opts = ServeOptions {
				version,
				layers,
				listen,
				public_url,
				price_per_token: price,
				capacity,
				bond_bly: bond,
				announce: !no_announce,
				accept_free: !no_free,
				settle_every: Duration::from_secs(settle_secs.max(1)),
				simulate_latency: Duration::from_millis(simulate_latency_ms),
				device,
			};
			service::serve(chain, ipfs, opts, shutdown_signal()).await?;
		}
		Command::Gateway { version, listen, free, unpaid, max_price } => {
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			let opts =
				GatewayOptions { version, listen, free, unpaid, max_price_per_token: max_price };
			service::gateway(chain, ipfs, opts, shutdown_signal()).await?;
		}
		Command::JobWatch { job } => {
			let chain = connect(g, &file, &s).await?;
			let ipfs = ipfs(&s).await?;
			let state = state_dir(&s, &chain)?;
			watch_job(&chain, &ipfs, &state, job, poll).await?;
		}
	}
	Ok(())
}

/// The chain's name of a training backend.
fn chain_backend(kind: BackendKind) -> chain::Backend {
	match kind {
		BackendKind::Cpu => chain::Backend::Cpu,
		BackendKind::Cuda => chain::Backend::Cuda,
	}
}

async fn watch_job(
	chain: &Chain,
	ipfs: &Ipfs,
	state: &StateDir,
	job: u64,
	poll: Duration,
) -> Result<()> {
	let end = creator::watch_job(chain, ipfs, state, job, poll).await?;
	match end {
		creator::JobEnd::Accepted { version } => println!("job {job} ACCEPTED: version {version}"),
		creator::JobEnd::Rejected { version } => println!("job {job} REJECTED: version {version}"),
		creator::JobEnd::Refunded => println!("job {job} ended without a verdict: refunded"),
	}
	Ok(())
}
