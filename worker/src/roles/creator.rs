//! Creator role: register a model (its root weights pinned to IPFS), publish a dataset, post a
//! training job with a committed validation set, and reveal that set once a miner has committed.

use std::{path::PathBuf, time::Duration};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{file_or_generated, parse_account, usage, Context, UsageError};
use crate::{
	chain::{
		self, blyan, bytes, Architecture, BoundedVec, Chain, JobId, JobSpec, JobStatus,
		VersionStatus, H256,
	},
	content,
	ml::{
		self,
		device::BackendKind,
		lora::{LoraConfig, LoraError, LoraTarget},
		model::ModelConfig,
		tokenizer::TokenizerFiles,
		train::Hyperparams,
		weights,
	},
	state::{self, StateDir},
	storage::Ipfs,
};

#[derive(Subcommand)]
pub enum Command {
	/// Creator: register a model with freshly initialised weights, or with the weights of a
	/// Hugging Face Qwen3 checkpoint (--hf-dir).
	ModelInit {
		#[arg(long)]
		name: String,
		/// `tiny`, `m100`, or a path to a JSON model config.
		#[arg(long, default_value = "tiny")]
		arch: String,
		/// A Hugging Face Qwen3 checkpoint directory (config.json, *.safetensors, and the
		/// model's tokenizer.json and tokenizer_config.json).
		#[arg(long, conflicts_with_all = ["arch", "seed", "tokenizer_dir"])]
		hf_dir: Option<PathBuf>,
		/// A directory with tokenizer.json and tokenizer_config.json for a freshly initialised
		/// model: its vocabulary grows to the tokenizer's (default: byte tokens).
		#[arg(long)]
		tokenizer_dir: Option<PathBuf>,
		#[arg(long, default_value_t = 1)]
		seed: u64,
		#[arg(long, default_value = "Apache-2.0")]
		licence: String,
	},
	/// Anyone: write an accepted version as a Hugging Face checkpoint (config.json,
	/// safetensors, and the model's tokenizer files) that `transformers` loads.
	ModelExport {
		/// The version to export.
		version: u64,
		/// An empty or new directory.
		#[arg(long)]
		out: PathBuf,
		/// Number of safetensors shards.
		#[arg(long, default_value_t = 1)]
		shards: usize,
		/// Store the tensors as bf16, rounding f32 values (default: f32, exact).
		#[arg(long)]
		bf16: bool,
		/// For an adapter version: write its adapters in `peft`'s format
		/// (`adapter_config.json`, `adapter_model.safetensors`) instead of merged weights.
		#[arg(long, conflicts_with_all = ["bf16", "shards"])]
		peft: bool,
	},
	/// Model owner: propose a `peft` LoRA adapter (`adapter_config.json` and
	/// `adapter_model.safetensors`) as an adapter version over an accepted version; it is a
	/// candidate until Proof-of-Learning decides.
	AdapterImport {
		/// The directory `peft`'s `save_pretrained` wrote.
		#[arg(long)]
		peft_dir: PathBuf,
		/// The full-weight version the adapter was trained on.
		#[arg(long)]
		base_version: u64,
		/// The new version's SemVer (MAJOR.MINOR.PATCH), above the base's.
		#[arg(long)]
		semver: String,
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
	JobPost(JobPostArgs),
	/// Creator: watch a posted job, reveal its validation set when due, wait for its end.
	JobWatch { job: u64 },
}

#[derive(clap::Args)]
pub struct JobPostArgs {
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
	/// AdamW's decoupled weight decay.
	#[arg(long, default_value_t = 0.0)]
	weight_decay: f32,
	/// Steps of linear learning-rate warm-up.
	#[arg(long, default_value_t = 0)]
	warmup_steps: u32,
	/// Decay the rate along a half cosine to this share of it by the last step.
	#[arg(long)]
	cosine_min_ratio: Option<f64>,
	/// Clip the gradients' global L2 norm to this (a multiple of 0.001).
	#[arg(long)]
	max_grad_norm: Option<f32>,
	/// Batches of --batch-size whose gradients each step averages.
	#[arg(long, default_value_t = 1)]
	micro_batches: u32,
	/// Train LoRA adapters of this rank over the frozen base instead of every weight; the
	/// result is an adapter version.
	#[arg(long)]
	lora_rank: Option<u32>,
	/// LoRA's alpha (scale alpha / rank); default 2 × rank.
	#[arg(long, requires = "lora_rank")]
	lora_alpha: Option<u32>,
	/// Projections the adapters target, comma-separated among q_proj, k_proj, v_proj, o_proj,
	/// gate_proj, up_proj, down_proj; default all of them.
	#[arg(long, requires = "lora_rank", value_delimiter = ',')]
	lora_targets: Vec<String>,
	/// rsLoRA's scale alpha / √rank.
	#[arg(long, requires = "lora_rank")]
	rslora: bool,
	/// Print what the job would cost (fees and the measured time of a step) and post nothing.
	#[arg(long)]
	dry_run: bool,
	#[arg(long, default_value_t = 7)]
	seed: u64,
	/// Blocks until claims close.
	#[arg(long, default_value_t = 3600)]
	deadline: u32,
	/// Blocks a claim lasts.
	#[arg(long, default_value_t = 600)]
	lease: u32,
	/// Required improvement in percent, in (0, 100] to 10⁻⁷ % (chain default: 1).
	#[arg(long)]
	min_improvement: Option<f64>,
	#[arg(long)]
	watch: bool,
	/// Where the job trains: `cpu` (deterministic, audited step by step) or `cuda` (trained on
	/// GPUs, verified by re-evaluation on the CPU; not re-run step by step).
	#[arg(long, value_enum, default_value = "cpu")]
	backend: BackendKind,
	#[command(flatten)]
	federated: FederatedArgs,
}

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

impl FederatedArgs {
	/// The federated part of the job, or `None` without --fl-rounds.
	fn spec(&self) -> Result<Option<chain::ChainFederatedSpec>> {
		use chain::{Admission, AggregationRule};
		let Some(rounds) = self.fl_rounds else { return Ok(None) };
		let admission = match self.fl_open_bond {
			Some(bond) => Admission::Open { bond: bond as u128 * chain::BLY },
			None if self.fl_participants.is_empty() => {
				return Err(usage("give --fl-participants or --fl-open-bond"))
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
			UsageError(format!(
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
			return Err(usage("--fl-clip and --fl-noise must be positive"));
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

pub async fn run(command: Command, ctx: &Context) -> Result<()> {
	match command {
		Command::ModelInit { name, licence, hf_dir: Some(dir), .. } => {
			let checkpoint =
				|e: ml::hf::CheckpointError| usage(format!("checkpoint {}: {e}", dir.display()));
			let (mut model_config, layers) = ml::hf::load_checkpoint(&dir).map_err(checkpoint)?;
			// Everything is checked before anything is published or registered.
			let tokenizer =
				ml::hf::load_tokenizer_files(&dir, model_config.vocab_size).map_err(checkpoint)?;
			let chain = ctx.connect().await?;
			let ipfs = ctx.ipfs().await?;
			if let Some(files) = tokenizer {
				model_config.tokenizer = Some(publish_tokenizer(&ipfs, files).await?);
			}
			let (model, version) =
				register_model_layers(&chain, &ipfs, &name, &model_config, &layers, &licence)
					.await?;
			let peak_rss_mib = crate::metrics::peak_rss_bytes().map(|b| b >> 20);
			info!(
				model,
				version,
				params = model_config.parameter_count(),
				?peak_rss_mib,
				"checkpoint registered"
			);
			println!("model {model} root-version {version}");
		}
		Command::ModelInit { name, arch, seed, licence, hf_dir: None, tokenizer_dir } => {
			let mut model_config: ModelConfig = match arch.as_str() {
				"tiny" => ModelConfig::tiny(),
				"m100" => ModelConfig::m100(),
				path => serde_json::from_slice(
					&std::fs::read(path).with_context(|| format!("reading {path}"))?,
				)
				.map_err(|e| usage(format!("model config {path}: {e}")))?,
			};
			model_config.validate().map_err(usage)?;
			let tokenizer = match &tokenizer_dir {
				Some(dir) => ml::hf::load_tokenizer_files(dir, usize::MAX)
					.map_err(|e| usage(format!("tokenizer {}: {e}", dir.display())))?,
				None => None,
			};
			let chain = ctx.connect().await?;
			let ipfs = ctx.ipfs().await?;
			if let Some(files) = tokenizer {
				let vocab = files.tokenizer.vocab_size();
				model_config.vocab_size = model_config.vocab_size.max(vocab);
				model_config.tokenizer = Some(publish_tokenizer(&ipfs, files).await?);
			}
			let (model, version) =
				register_model(&chain, &ipfs, &name, &model_config, seed, &licence).await?;
			info!(
				model,
				version,
				params = model_config.parameter_count(),
				layers = model_config.layer_count(),
				"model registered; root weights pinned"
			);
			println!("model {model} root-version {version}");
		}
		Command::AdapterImport { peft_dir, base_version, semver } => {
			let semver = parse_semver(&semver)?;
			let chain = ctx.connect().await?;
			let ipfs = ctx.ipfs().await?;
			let version = import_adapter(&chain, &ipfs, &peft_dir, base_version, semver).await?;
			println!("version {version}");
		}
		Command::ModelExport { version, out, shards, bf16, peft } => {
			if shards == 0 {
				return Err(usage("--shards must be at least 1"));
			}
			if std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some()) {
				return Err(usage(format!("{} is not empty: nothing written", out.display())));
			}
			let chain = ctx.connect().await?;
			let ipfs = ctx.ipfs().await?;
			let info = chain
				.version(version)
				.await?
				.ok_or_else(|| usage(format!("unknown version {version}")))?;
			if !matches!(info.status, VersionStatus::Accepted) {
				return Err(usage(format!(
					"version {version} is not accepted (a candidate under verification, or \
					 rejected): only accepted versions are exported"
				)));
			}
			// Everything fetched and checked (each layer against its Merkle root, the
			// tokenizer files against their hashes) before anything is written.
			let config = content::model_config(&chain, &ipfs, info.model).await?;
			if peft {
				let adapters =
					content::version_adapters(&chain, &ipfs, &config, version).await?.ok_or_else(
						|| usage(format!("version {version} is not an adapter version: no --peft")),
					)?;
				write_into_place(&out, |dir| {
					ml::lora::save_peft(dir, &adapters.lora, &config, &adapters.layers, None)
						.map_err(anyhow::Error::from)
				})?;
				info!(version, base = adapters.base, dir = %out.display(), "adapters exported");
				println!("version {version} exported to {} (peft adapters)", out.display());
				return Ok(());
			}
			let layers = content::version_layers(&chain, &ipfs, &config, version).await?;
			let tokenizer = match &config.tokenizer {
				Some(files) => Some(content::tokenizer_files(&ipfs, files).await?),
				None => None,
			};
			// A head equal to the embedding is written once, as tied checkpoints are.
			fn values<'a>(layer: &'a ml::weights::LayerTensors, name: &str) -> Option<&'a [f32]> {
				layer.iter().find(|t| t.name == name).map(|t| t.values.as_slice())
			}
			let tie = values(&layers[0], "model.embed_tokens.weight")
				== values(&layers[layers.len() - 1], "lm_head.weight");
			write_into_place(&out, |dir| {
				write_export(dir, &config, &layers, shards, bf16, tie, tokenizer)
			})?;
			info!(version, dir = %out.display(), tie, bf16, "version exported");
			println!("version {version} exported to {}", out.display());
		}
		Command::DatasetPublish { file, generate, seed, licence } => {
			let bytes = file_or_generated(file, generate, seed, "give --file or --generate")?;
			let chain = ctx.connect().await?;
			let ipfs = ctx.ipfs().await?;
			let size = bytes.len();
			let dataset = register_dataset(&chain, &ipfs, bytes, &licence).await?;
			info!(dataset, bytes = size, "dataset registered; content pinned");
			println!("dataset {dataset}");
		}
		Command::JobPost(args) => job_post(args, ctx).await?,
		Command::JobWatch { job } => {
			ctx.serve_metrics().await?;
			let chain = ctx.connect().await?;
			let ipfs = ctx.ipfs().await?;
			let state = ctx.state_dir(&chain)?;
			print_job_end(&chain, &ipfs, &state, job, ctx.poll).await?;
		}
	}
	Ok(())
}

async fn job_post(args: JobPostArgs, ctx: &Context) -> Result<()> {
	let federated = args.federated.spec()?;
	// Generated by default: never neither.
	let generate = Some(args.validation_generate);
	let validation = file_or_generated(args.validation_file, generate, args.validation_seed, "")?;
	let hyperparams = Hyperparams {
		steps: args.steps,
		batch_size: args.batch_size,
		seq_len: args.seq_len,
		learning_rate: args.learning_rate,
		weight_decay: args.weight_decay,
		schedule: ml::train::StepSchedule {
			warmup_steps: args.warmup_steps,
			cosine_min_ratio: args.cosine_min_ratio,
			max_grad_norm: args.max_grad_norm,
			micro_batches: args.micro_batches,
		},
		..Default::default()
	};
	hyperparams.validate().map_err(usage)?;
	let lora = match args.lora_rank {
		None => None,
		Some(rank) => {
			let targets = if args.lora_targets.is_empty() {
				LoraTarget::ALL.to_vec()
			} else {
				let mut targets = args
					.lora_targets
					.iter()
					.map(|name| {
						LoraTarget::from_module_name(name.trim()).ok_or_else(|| {
							usage(LoraError::UnknownTarget(name.clone()).to_string())
						})
					})
					.collect::<Result<Vec<_>>>()?;
				targets.sort();
				targets
			};
			let lora = LoraConfig {
				rank,
				alpha: args.lora_alpha.unwrap_or(rank.saturating_mul(2)),
				targets,
				rslora: args.rslora,
			};
			lora.validate().map_err(|e| usage(e.to_string()))?;
			Some(lora)
		}
	};
	if lora.is_some() && federated.is_some() {
		return Err(usage("a federated job aggregates whole layers: it cannot train LoRA"));
	}
	let chain = ctx.connect().await?;
	let ipfs = ctx.ipfs().await?;
	let state = ctx.state_dir(&chain)?;
	let reward = args.reward as u128 * chain::BLY;
	// Epoch points are only for improvements of an admitted model from its head: say so before
	// the reward is escrowed, so a creator is not surprised that its miner earns none.
	if let Some(base) = chain.version(args.base_version).await? {
		match chain.rewarded_head(base.model).await? {
			None => info!(
				model = base.model,
				"the model is not admitted to epoch rewards: the miner earns this job's reward, no epoch points"
			),
			Some(head) if head != args.base_version => warn!(
				head,
				"the base is not its model's head for epoch rewards: an improvement from it earns no epoch points"
			),
			Some(_) => {
				let floor = chain.min_points_escrow().await?;
				if reward < floor {
					warn!(
						floor = %chain::bly(floor),
						"the reward is below the least that earns epoch points: the miner earns this job's reward only"
					);
				}
			}
		}
	}
	let request = JobRequest {
		base_version: args.base_version,
		dataset: args.dataset,
		validation,
		hyperparams,
		seed: args.seed,
		reward,
		deadline_in: args.deadline,
		lease: args.lease,
		min_improvement_percent: args.min_improvement,
		backend: super::chain_backend(args.backend),
		federated,
		lora,
		dry_run: args.dry_run,
	};
	let Some(job) = post_job(&chain, &ipfs, &state, request).await? else {
		println!("dry run: nothing posted");
		return Ok(());
	};
	info!(job, reward = %chain::bly(reward), "job posted; reward escrowed; validation set kept local until a miner commits");
	println!("job {job}");
	if args.watch {
		print_job_end(&chain, &ipfs, &state, job, ctx.poll).await?;
	}
	Ok(())
}

/// Watches `job` to its end (see [`watch_job`]) and prints how it ended.
async fn print_job_end(
	chain: &Chain,
	ipfs: &Ipfs,
	state: &StateDir,
	job: JobId,
	poll: Duration,
) -> Result<()> {
	match watch_job(chain, ipfs, state, job, poll).await? {
		JobEnd::Accepted { version } => println!("job {job} ACCEPTED: version {version}"),
		JobEnd::Rejected { version } => println!("job {job} REJECTED: version {version}"),
		JobEnd::Refunded => println!("job {job} ended without a verdict: refunded"),
	}
	Ok(())
}

/// A Hugging Face checkpoint in `dir` (created): `config.json`, the safetensors, and with the
/// model's tokenizer files a `generation_config.json` naming its end tokens, so `generate()` in
/// `transformers` stops where Blyan's servers do.
fn write_export(
	dir: &std::path::Path,
	config: &ModelConfig,
	layers: &[ml::weights::LayerTensors],
	shards: usize,
	bf16: bool,
	tie: bool,
	tokenizer: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<()> {
	std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
	ml::hf::save_checkpoint(dir, config, layers, shards, bf16, tie)?;
	if let Some((json, cfg)) = tokenizer {
		let ends = ml::tokenizer::HfTokenizer::from_bytes(&json, &cfg)?;
		let ends = ml::tokenizer::TextTokenizer::Hf(Box::new(ends)).end_tokens().to_vec();
		let generation = serde_json::json!({ "eos_token_id": ends });
		for (name, bytes) in [
			("tokenizer.json", json),
			("tokenizer_config.json", cfg),
			("generation_config.json", generation.to_string().into_bytes()),
		] {
			let path = dir.join(name);
			std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
		}
	}
	Ok(())
}

/// Pins a model's tokenizer files; what its configuration records of them.
async fn publish_tokenizer(ipfs: &Ipfs, files: ml::hf::TokenizerBytes) -> Result<TokenizerFiles> {
	let hash = |bytes: &[u8]| hex::encode(sp_crypto_hashing::blake2_256(bytes));
	let (tokenizer_hash, config_hash) =
		(hash(&files.tokenizer_json), hash(&files.tokenizer_config));
	Ok(TokenizerFiles {
		tokenizer_cid: ipfs.add(files.tokenizer_json, true, false).await?,
		tokenizer_hash,
		config_cid: ipfs.add(files.tokenizer_config, true, false).await?,
		config_hash,
	})
}

/// Registers a model with freshly initialised root weights; returns `(model, root version)`.
pub async fn register_model(
	chain: &Chain,
	ipfs: &Ipfs,
	name: &str,
	config: &ModelConfig,
	seed: u64,
	licence: &str,
) -> Result<(u64, u64)> {
	config.validate().map_err(|e| anyhow!(e))?;
	register_model_layers(chain, ipfs, name, config, &ml::init_layers(config, seed), licence).await
}

/// Registers a model whose root weights are `layers` (e.g. an imported checkpoint); returns
/// `(model, root version)`.
pub async fn register_model_layers(
	chain: &Chain,
	ipfs: &Ipfs,
	name: &str,
	config: &ModelConfig,
	layers: &[weights::LayerTensors],
	licence: &str,
) -> Result<(u64, u64)> {
	config.validate().map_err(|e| anyhow!(e))?;
	let config_doc = serde_json::to_vec_pretty(config)?;
	let config_cid = ipfs.add(config_doc.clone(), true, false).await?;
	let roots: Vec<[u8; 32]> = layers.iter().map(weights::layer_root).collect();
	// A bf16 checkpoint (every value a bf16) is kept as bf16 at rest: half the bytes on IPFS,
	// the same values and roots. Anything else, a fresh f32 model included, stays f32.
	let bf16 = layers.iter().flatten().all(|t| weights::is_bf16_exact(&t.values));
	let encode = if bf16 { weights::encode_layer_bf16_where_exact } else { weights::encode_layer };
	let blobs: Vec<(u16, Vec<u8>, [u8; 32])> =
		layers.iter().enumerate().map(|(i, l)| (i as u16, encode(l), roots[i])).collect();
	if bf16 {
		info!(layers = blobs.len(), "a bf16 checkpoint: layers stored as bf16");
	}
	let deltas = content::publish_layers(ipfs, &blobs, false).await?;
	let architecture = Architecture {
		family: bytes(&config.family),
		config_hash: H256(sp_crypto_hashing::blake2_256(&config_doc)),
		config_cid: bytes(&config_cid),
		layer_count: config.layer_count() as u16,
	};
	let events = chain
		.register_model(name, architecture, licence, deltas, H256(weights::weight_root(&roots)))
		.await?;
	let registered = events
		.find_first::<blyan::registry::events::ModelRegistered>()
		.context("no ModelRegistered event")??;
	Ok((registered.model, registered.root_version))
}

/// Runs `write` on a directory beside `out`, then renames it into place: a failure leaves
/// nothing behind.
fn write_into_place(
	out: &std::path::Path,
	write: impl FnOnce(&std::path::Path) -> Result<()>,
) -> Result<()> {
	let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
	let partial = out.with_file_name(format!(".{name}.partial-{}", std::process::id()));
	let written = write(&partial).and_then(|()| {
		std::fs::rename(&partial, out)
			.with_context(|| format!("moving the export to {}", out.display()))
	});
	if written.is_err() {
		let _ = std::fs::remove_dir_all(&partial);
	}
	written
}

/// `MAJOR.MINOR.PATCH`.
fn parse_semver(text: &str) -> Result<chain::SemVer> {
	let parts: Vec<Option<u16>> = text.split('.').map(|p| p.parse().ok()).collect();
	match parts[..] {
		[Some(major), Some(minor), Some(patch)] => Ok(chain::SemVer { major, minor, patch }),
		_ => Err(usage(format!("{text:?} is not a SemVer MAJOR.MINOR.PATCH"))),
	}
}

/// Proposes the `peft` adapter in `dir` as an adapter version over `base`: checked against
/// the base's model (targets, shapes) before anything is published; returns its id.
pub async fn import_adapter(
	chain: &Chain,
	ipfs: &Ipfs,
	dir: &std::path::Path,
	base: u64,
	semver: chain::SemVer,
) -> Result<u64> {
	let info =
		chain.version(base).await?.ok_or_else(|| usage(format!("unknown version {base}")))?;
	if chain.version_adapter(base).await?.is_some() {
		return Err(usage(format!(
			"version {base} is an adapter version: adapters go over full weights"
		)));
	}
	let config = content::model_config(chain, ipfs, info.model).await?;
	let (lora, adapters) = ml::lora::load_peft(dir, &config).map_err(|e| usage(e.to_string()))?;
	let params = lora.to_params().map_err(|e| usage(e.to_string()))?;
	let roots: Vec<[u8; 32]> = adapters.iter().map(weights::layer_root).collect();
	let blobs: Vec<(u16, Vec<u8>, [u8; 32])> = (1u16..)
		.zip(&adapters)
		.zip(&roots)
		.map(|((layer, a), root)| (layer, weights::encode_layer(a), *root))
		.collect();
	let deltas = content::publish_layers(ipfs, &blobs, false).await?;
	let events = chain
		.propose_adapter_version(
			info.model,
			base,
			semver,
			deltas,
			H256(weights::weight_root(&roots)),
			&params,
		)
		.await?;
	let proposed = events
		.find_first::<blyan::registry::events::VersionProposed>()
		.context("no VersionProposed event")??;
	info!(
		version = proposed.version,
		base,
		rank = lora.rank,
		"peft adapter proposed as an adapter version"
	);
	Ok(proposed.version)
}

/// Publishes a dataset (pinned) and registers it; returns its id.
pub async fn register_dataset(
	chain: &Chain,
	ipfs: &Ipfs,
	data: Vec<u8>,
	licence: &str,
) -> Result<u64> {
	let hash = sp_crypto_hashing::blake2_256(&data);
	let size = data.len() as u64;
	let cid = ipfs.add(data, true, false).await?;
	let events = chain.register_dataset(&cid, H256(hash), size, licence).await?;
	let registered = events
		.find_first::<blyan::registry::events::DatasetRegistered>()
		.context("no DatasetRegistered event")??;
	Ok(registered.dataset)
}

/// A posted job's secret half, kept in `state_dir/posted/<job>.json` until the reveal.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PostedJob {
	job: JobId,
	validation_file: std::path::PathBuf,
	validation_cid: String,
	salt: [u8; 32],
	revealed: bool,
}

pub struct JobRequest {
	pub base_version: u64,
	pub dataset: u64,
	pub validation: Vec<u8>,
	pub hyperparams: Hyperparams,
	pub seed: u64,
	pub reward: chain::Balance,
	/// Blocks from now until claims close.
	pub deadline_in: u32,
	/// Blocks a claim lasts.
	pub lease: u32,
	/// In (0, 100], a whole number of 10⁻⁷ % (the chain's `Perbill`).
	pub min_improvement_percent: Option<f64>,
	/// Where the job trains (a CUDA job is verified by re-evaluation only).
	pub backend: chain::Backend,
	/// Make the job federated (posted and configured in one `utility.batch_all`).
	pub federated: Option<chain::ChainFederatedSpec>,
	/// Train adapters over the frozen base instead of every weight.
	pub lora: Option<LoraConfig>,
	/// Check and estimate only: post nothing.
	pub dry_run: bool,
}

/// Posts a job. The validation set stays on this machine (only its CID, salted and hashed, goes on
/// chain) until a miner has committed; returns the job id (`None` for a dry run).
pub async fn post_job(
	chain: &Chain,
	ipfs: &Ipfs,
	state: &StateDir,
	request: JobRequest,
) -> Result<Option<JobId>> {
	let mut training = request.hyperparams.to_params().map_err(|e| anyhow!(e))?;
	// A percentage as the chain's billionths: refused rather than rounded when finer.
	let min_improvement = match request.min_improvement_percent {
		None => None,
		Some(p) if p > 0.0 && p <= 100.0 && (p * 1e7).round() == p * 1e7 => {
			Some((p * 1e7).round() as u32)
		}
		Some(p) => {
			return Err(usage(format!(
				"--min-improvement {p}: a percentage in (0, 100], a multiple of 0.0000001"
			)))
		}
	};
	training.lora = request
		.lora
		.as_ref()
		.map(LoraConfig::to_params)
		.transpose()
		.map_err(|e| usage(e.to_string()))?;
	let base = chain
		.version(request.base_version)
		.await?
		.ok_or_else(|| usage(format!("unknown version {}", request.base_version)))?;
	if chain.version_adapter(request.base_version).await?.is_some() {
		return Err(usage(format!(
			"version {} is an adapter version: jobs train on full weights (post it on its base, \
			 version {})",
			request.base_version,
			base.parents.0.first().copied().unwrap_or_default()
		)));
	}
	let config = content::model_config(chain, ipfs, base.model).await?;
	request.hyperparams.check_against(&config, None).map_err(|e| anyhow!(e))?;
	// Miners and the committee read both sets with the model's tokenizer: a set they cannot
	// read is refused here, before anything is held.
	let unreadable = |what: String| {
		move |e: content::ContentError| match e {
			content::ContentError::Dataset(e) => usage(format!("{what}: {e}")),
			other => other.into(),
		}
	};
	let validation = content::dataset_tokens(ipfs, &config, request.validation.clone())
		.await
		.map_err(unreadable("the validation set".into()))?;
	// A federated job trains on its participants' data: the dataset only describes them.
	if config.tokenizer.is_some() && request.federated.is_none() {
		let bytes = content::dataset_bytes(chain, ipfs, request.dataset).await?;
		let data = content::dataset_tokens(ipfs, &config, bytes)
			.await
			.map_err(unreadable(format!("dataset {}", request.dataset)))?;
		request
			.hyperparams
			.check_against(&config, Some(data.len()))
			.map_err(|e| usage(format!("dataset {}: {e}", request.dataset)))?;
	}
	let windows = ml::data::evaluation_batches(
		&validation,
		request.hyperparams.batch_size,
		request.hyperparams.seq_len + 1,
		1,
	);
	if windows.is_empty() {
		bail!(
			"the validation set is smaller than one evaluation batch (batch_size × (seq_len + 1) \
			 tokens)"
		);
	}
	// A job whose base the committee cannot score on this set puts its creator at fault (the
	// reward and the creator bond go to the miner): check it here, on the CPU path the
	// committee uses, before anything is held.
	let layers = content::version_layers(chain, ipfs, &config, request.base_version).await?;
	let hp = request.hyperparams.clone();
	let lora = request.lora.clone();
	let dry_run = request.dry_run;
	let (base_loss, step_time) = tokio::task::spawn_blocking(move || -> Result<_> {
		let loss = ml::evaluate_layers(&config, &layers, &validation, &hp)?;
		// A dry run times one step of this job here, on the CPU path an audited job trains on
		// (two steps of training: not paid on every post).
		let step_time = match dry_run {
			true => Some(step_seconds(&config, &layers, lora.as_ref(), &validation, &hp)?),
			false => None,
		};
		Ok((loss, step_time))
	})
	.await??;
	match base_loss.map(|loss| (loss, ml::train::score(loss))) {
		None => bail!(
			"the validation set has no target to score in its evaluation batches (chat records \
			 train on the assistant's turns only): version {} cannot be evaluated on it",
			request.base_version
		),
		Some((_, ml::train::INVALID_SCORE)) => bail!(
			"version {} cannot be evaluated on this validation set (its loss is not a finite \
			 number): a miner would be paid without a measurable result",
			request.base_version
		),
		// No improvement can be measured on a loss that already rounds to 0: the job could
		// only reject the miner's work after its weights were revealed.
		Some((loss, 0)) => bail!(
			"version {}'s validation loss is {loss:e}, 0 at the chain's precision: no \
			 improvement could be measured on this set",
			request.base_version
		),
		Some((loss, _)) => {
			info!(base = request.base_version, "base version's validation loss: {loss:.6}");
		}
	}
	let validation_cid = ipfs.add(request.validation.clone(), false, true).await?;
	let salt = state::salt();
	let now = chain.finalized_number().await?;
	let spec = JobSpec {
		base_version: request.base_version,
		dataset: request.dataset,
		validation_commitment: chain::validation_commitment(validation_cid.as_bytes(), &salt),
		training: chain::chain_training_params(&training),
		seed: request.seed,
		backend: request.backend,
		min_memory_mb: 256,
		deadline: now.saturating_add(request.deadline_in),
		lease: request.lease,
		min_improvement: min_improvement
			.map(blyan::runtime_types::sp_arithmetic::per_things::Perbill),
	};
	let fee = chain.post_job_fee(spec.clone(), request.reward).await?;
	let bond = chain.creator_bond_share().await? * request.reward / 1_000_000_000;
	println!(
		"cost: reward {} escrowed, creator bond {} held until the job ends, fee ~{} (payment_queryInfo)",
		chain::bly(request.reward),
		chain::bly(bond),
		chain::bly(fee),
	);
	if let Some(step_time) = step_time {
		let steps = request.hyperparams.steps;
		println!(
			"training: {steps} steps x {step_time:.3} s (one step measured on this machine's CPU) \
			 = ~{:.0} s",
			step_time * f64::from(steps),
		);
		return Ok(None);
	}
	// The secret half is on disk before the job exists: losing it would forfeit the reward.
	let pending = format!("pending-{}", hex::encode(&salt[..8]));
	std::fs::create_dir_all(state.path(&["posted"]))?;
	let validation_file = state.path(&["posted", &format!("{pending}.validation")]);
	std::fs::write(&validation_file, &request.validation)?;
	let mut posted = PostedJob { job: 0, validation_file, validation_cid, salt, revealed: false };
	state.save("posted", &pending, &posted)?;
	let events = match request.federated {
		None => chain.post_job(spec, request.reward).await?,
		Some(federated) => {
			let job = chain.next_job_id().await?;
			chain.post_federated_job(job, spec, request.reward, federated).await?
		}
	};
	let job =
		events.find_first::<blyan::jobs::events::JobPosted>().context("no JobPosted event")??.job;
	posted.job = job;
	state.save("posted", &job.to_string(), &posted)?;
	state.remove("posted", &pending).ok();
	Ok(Some(job))
}

/// Seconds one training step of the job takes on this machine's CPU, trained as the job trains
/// (every weight, or adapters over `base`): the second of two steps, timed between the steps'
/// ends, so building the model and exporting the state are not counted.
fn step_seconds(
	config: &ModelConfig,
	base: &[weights::LayerTensors],
	lora: Option<&LoraConfig>,
	data: &[i64],
	hp: &Hyperparams,
) -> Result<f64> {
	use ml::trace::{run_segment_for, TrainState, Trained};
	let schedule = ml::train::StepSchedule { warmup_steps: 0, ..hp.schedule };
	let hp = Hyperparams { steps: 2, schedule, ..hp.clone() };
	let (trained, initial) = match lora {
		Some(lora) => (Trained::Adapters { lora, base }, lora.init(config, 0)?),
		None => (Trained::Full, base.to_vec()),
	};
	let mut ends = Vec::new();
	run_segment_for::<burn::backend::Autodiff<ml::CpuBackend>>(
		config,
		trained,
		&TrainState::initial(initial),
		data,
		&hp,
		0,
		2,
		&Default::default(),
		|_, _| ends.push(std::time::Instant::now()),
	)?;
	Ok(ends[1].duration_since(ends[0]).as_secs_f64())
}

/// How a job ended, for the creator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobEnd {
	Accepted {
		version: u64,
	},
	Rejected {
		version: u64,
	},
	/// Refunded: never claimed, no verdict, or the worker withheld its result.
	Refunded,
}

/// Watches a posted job: reveals the validation set after the miner's commitment, reports each
/// stage, and returns when the job has ended.
pub async fn watch_job(
	chain: &Chain,
	ipfs: &Ipfs,
	state: &StateDir,
	job: JobId,
	poll: Duration,
) -> Result<JobEnd> {
	let mut posted: PostedJob = state
		.load("posted", &job.to_string())?
		.with_context(|| format!("job {job} was not posted from this state dir"))?;
	let mut last_stage = String::new();
	let mut candidate = None;
	let mut last_block = 0;
	loop {
		let Some(info) = chain.job(job).await? else { break };
		let stage = match &info.status {
			JobStatus::Open => "open".to_string(),
			JobStatus::Claimed { worker } => format!("claimed by {worker}"),
			JobStatus::Committed { worker, semver, .. } => format!(
				"{worker} committed to version {}.{}.{}",
				semver.major, semver.minor, semver.patch
			),
			JobStatus::ValidationRevealed { .. } => {
				"validation set revealed; waiting for the result".into()
			}
			JobStatus::Verifying { candidate: c, .. } => {
				candidate = Some(*c);
				// Traced results are audited (spot checks, challenges) before the committee scores.
				let audited = chain.audit(job).await?.is_some();
				// The miner's claimed loss is public once the committee has committed.
				let claimed = match chain.round(job).await?.and_then(|r| r.claimed_score) {
					Some(score) => format!(", claimed loss {:.6}", score as f64 / 1e9),
					None => String::new(),
				};
				format!(
					"candidate version {c}{claimed}: {}",
					if audited {
						"training audit (segments re-run, challenges open)"
					} else {
						"committee verifying"
					}
				)
			}
		};
		if stage != last_stage {
			info!(job, "{stage}");
			last_stage = stage;
		}
		if matches!(info.status, JobStatus::Committed { .. }) && !posted.revealed {
			let data = std::fs::read(&posted.validation_file)?;
			let cid = ipfs.add(data, true, false).await?;
			if cid != posted.validation_cid {
				bail!(
					"IPFS returned another CID for the validation set than when the job was posted"
				);
			}
			chain.reveal_validation(job, &cid, posted.salt).await?;
			info!(job, "validation set revealed and pinned ({cid})");
			posted.revealed = true;
			state.save("posted", &job.to_string(), &posted)?;
		}
		last_block = chain.next_finalized(last_block, poll).await?;
	}
	let Some(version) = candidate else { return Ok(JobEnd::Refunded) };
	Ok(match chain.version(version).await?.map(|v| v.status) {
		Some(VersionStatus::Accepted) => JobEnd::Accepted { version },
		Some(VersionStatus::Rejected) => JobEnd::Rejected { version },
		_ => JobEnd::Refunded,
	})
}
