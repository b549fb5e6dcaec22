//! What the registry points at, fetched from IPFS and checked against the chain: a model's
//! configuration (its hash), a version's layers (each against its Merkle root), a dataset (its
//! content hash). Joins the chain client and storage for the miner, verifier and creator.

use crate::{
	chain::{bytes, Chain, ChainError, LayerDelta, VersionId, H256},
	ml::{
		dataset::{self, DatasetError},
		lora::{self, LoraConfig, LoraError},
		model::ModelConfig,
		tokenizer::{HfTokenizer, TextTokenizer, TokenizerError, TokenizerFiles},
		weights::{self, LayerTensors, WeightsError},
	},
	storage::{Ipfs, StorageError},
};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
	#[error(transparent)]
	Chain(#[from] ChainError),
	#[error(transparent)]
	Storage(#[from] StorageError),
	#[error("unknown {0}")]
	Unknown(String),
	#[error("layer {layer} (CID {cid}) does not match its on-chain Merkle root")]
	LayerMismatch { layer: u16, cid: String },
	#[error("{what} (CID {cid}) does not match its on-chain hash")]
	HashMismatch { what: String, cid: String },
	#[error(transparent)]
	Weights(#[from] WeightsError),
	#[error("adapters: {0}")]
	Adapters(#[from] LoraError),
	#[error("model config: {0}")]
	Config(String),
	#[error("model tokenizer: {0}")]
	Tokenizer(#[from] TokenizerError),
	#[error("dataset: {0}")]
	Dataset(#[from] DatasetError),
	#[error("tokenizing stopped: {0}")]
	Interrupted(String),
}

impl ContentError {
	/// The content itself is bad (a miner's fault), as opposed to the network or node failing.
	pub fn is_invalid_content(&self) -> bool {
		matches!(
			self,
			ContentError::LayerMismatch { .. }
				| ContentError::HashMismatch { .. }
				| ContentError::Weights(_)
				| ContentError::Adapters(_)
				| ContentError::Config(_)
				| ContentError::Tokenizer(_)
				| ContentError::Dataset(_)
				// Only tokenizing a dataset is interrupted: by a panic on these bytes, which
				// every machine meets alike.
				| ContentError::Interrupted(_)
		)
	}
}

/// A model configuration document is a few hundred bytes.
const MAX_CONFIG_BYTES: usize = 1 << 20;
/// Validation sets are held in memory and evaluated on the CPU: bounded.
pub const MAX_VALIDATION_BYTES: usize = 1 << 30;

/// A job's revealed validation set.
pub async fn validation_set(ipfs: &Ipfs, cid: &[u8]) -> Result<Vec<u8>, ContentError> {
	Ok(ipfs.cat(&cid_str(cid), MAX_VALIDATION_BYTES).await?)
}

fn cid_str(cid: &[u8]) -> String {
	String::from_utf8_lossy(cid).into_owned()
}

/// A model's configuration document, checked against the registry's `config_hash`.
pub async fn model_config(
	chain: &Chain,
	ipfs: &Ipfs,
	model: u64,
) -> Result<ModelConfig, ContentError> {
	let info =
		chain.model(model).await?.ok_or_else(|| ContentError::Unknown(format!("model {model}")))?;
	let cid = cid_str(&info.architecture.config_cid.0);
	let what = || format!("model {model} config");
	let doc =
		checked_cat(ipfs, &cid, MAX_CONFIG_BYTES, &info.architecture.config_hash.0, what).await?;
	let config: ModelConfig =
		serde_json::from_slice(&doc).map_err(|e| ContentError::Config(e.to_string()))?;
	config.validate().map_err(ContentError::Config)?;
	if config.layer_count() != info.architecture.layer_count as usize {
		return Err(ContentError::Config("layer count differs from the registry's".into()));
	}
	Ok(config)
}

/// Qwen3's `tokenizer.json` is 11 MB; room for larger vocabularies.
const MAX_TOKENIZER_BYTES: usize = 64 << 20;

/// The tokenizer a model's configuration names: its files fetched, checked against the hashes in
/// the (registry-hashed) configuration, and checked against the embedding. Byte tokens when the
/// configuration names none.
pub async fn model_tokenizer(
	ipfs: &Ipfs,
	config: &ModelConfig,
) -> Result<TextTokenizer, ContentError> {
	let Some(files) = &config.tokenizer else { return Ok(TextTokenizer::Bytes) };
	let (json, cfg) = tokenizer_files(ipfs, files).await?;
	let tokenizer = HfTokenizer::from_bytes(&json, &cfg)?;
	tokenizer.check_vocabulary(config.vocab_size)?;
	Ok(TextTokenizer::Hf(Box::new(tokenizer)))
}

/// The registered bytes of a model's `tokenizer.json` and `tokenizer_config.json`, each checked
/// against its hash.
pub async fn tokenizer_files(
	ipfs: &Ipfs,
	files: &TokenizerFiles,
) -> Result<(Vec<u8>, Vec<u8>), ContentError> {
	let fetch = |cid: &str, hash: &str, name: &'static str| {
		let hash: Option<[u8; 32]> = hex::decode(hash).ok().and_then(|h| h.try_into().ok());
		let cid = cid.to_string();
		async move {
			let hash = hash.ok_or_else(|| {
				ContentError::Config(format!("the hash of {name} is not 32 bytes of hex"))
			})?;
			checked_cat(ipfs, &cid, MAX_TOKENIZER_BYTES, &hash, || name.to_string()).await
		}
	};
	let json = fetch(&files.tokenizer_cid, &files.tokenizer_hash, "tokenizer.json").await?;
	let cfg = fetch(&files.config_cid, &files.config_hash, "tokenizer_config.json").await?;
	Ok((json, cfg))
}

/// Every layer of `version`, each fetched and checked against its Merkle root and layout; an
/// adapter version's adapters merged into its base's layers (what serving and scoring it use).
pub async fn version_layers(
	chain: &Chain,
	ipfs: &Ipfs,
	config: &ModelConfig,
	version: VersionId,
) -> Result<Vec<LayerTensors>, ContentError> {
	let Some(adapters) = version_adapters(chain, ipfs, config, version).await? else {
		return full_layers(chain, ipfs, config, version).await;
	};
	let base = full_layers(chain, ipfs, config, adapters.base).await?;
	Ok(lora::merge(config, &adapters.lora, &base, &adapters.layers)?)
}

/// An adapter version's adapters, fetched and checked.
pub struct VersionAdapters {
	/// The full-weight version they go over (the adapter version's parent).
	pub base: VersionId,
	pub lora: LoraConfig,
	/// One per decoder block: block `i`'s adapters are the version's layer `i + 1`.
	pub layers: Vec<LayerTensors>,
}

/// `version`'s adapters if it is an adapter version (`None` if its layers are whole layers):
/// each fetched and checked against its Merkle root, the set against the version's weight root
/// and the layout its [`LoraConfig`] gives.
pub async fn version_adapters(
	chain: &Chain,
	ipfs: &Ipfs,
	config: &ModelConfig,
	version: VersionId,
) -> Result<Option<VersionAdapters>, ContentError> {
	let Some(params) = chain.version_adapter(version).await? else { return Ok(None) };
	let lora = LoraConfig::from_params(&params);
	let info = chain
		.version(version)
		.await?
		.ok_or_else(|| ContentError::Unknown(format!("version {version}")))?;
	let base = *info.parents.0.first().ok_or_else(|| {
		ContentError::Config(format!("adapter version {version} has no base version"))
	})?;
	let deltas = chain.version_layers(version).await?;
	if deltas.len() != config.num_hidden_layers {
		return Err(ContentError::Config(format!(
			"adapter version {version} has {} adapter layers, the model has {} blocks",
			deltas.len(),
			config.num_hidden_layers
		)));
	}
	let mut layers = Vec::with_capacity(deltas.len());
	for (block, delta) in deltas.iter().enumerate() {
		let limit = weights::max_layout_bytes(&lora.layout(config, block));
		layers.push(fetched_layer(ipfs, block + 1, delta, limit).await?);
	}
	lora.check(config, &layers)?;
	let roots: Vec<[u8; 32]> = deltas.iter().map(|d| d.merkle_root.0).collect();
	if weights::weight_root(&roots) != info.weight_root.0 {
		return Err(ContentError::HashMismatch {
			what: format!("adapter version {version}'s weight root"),
			cid: "-".into(),
		});
	}
	Ok(Some(VersionAdapters { base, lora, layers }))
}

/// Every layer of the full-weight `version`, each fetched and checked.
async fn full_layers(
	chain: &Chain,
	ipfs: &Ipfs,
	config: &ModelConfig,
	version: VersionId,
) -> Result<Vec<LayerTensors>, ContentError> {
	let resolved = chain.resolve_layers(version).await?;
	if resolved.len() != config.layer_count() {
		return Err(ContentError::Config(format!(
			"version {version} resolves to {} layers, the model has {}",
			resolved.len(),
			config.layer_count()
		)));
	}
	let mut layers = Vec::with_capacity(resolved.len());
	for (i, r) in resolved.iter().enumerate() {
		layers.push(checked_layer(ipfs, config, i, &r.delta).await?);
	}
	// The version's weight root must be the root over exactly these layers.
	let info = chain
		.version(version)
		.await?
		.ok_or_else(|| ContentError::Unknown(format!("version {version}")))?;
	let roots: Vec<[u8; 32]> = resolved.iter().map(|r| r.delta.merkle_root.0).collect();
	if weights::weight_root(&roots) != info.weight_root.0 {
		return Err(ContentError::HashMismatch {
			what: format!("version {version}'s weight root"),
			cid: "-".into(),
		});
	}
	Ok(layers)
}

/// One layer, fetched and checked.
pub async fn checked_layer(
	ipfs: &Ipfs,
	config: &ModelConfig,
	index: usize,
	delta: &LayerDelta,
) -> Result<LayerTensors, ContentError> {
	let tensors =
		fetched_layer(ipfs, index, delta, weights::max_layer_bytes(config, index)).await?;
	weights::check_layout(config, index, &tensors)?;
	Ok(tensors)
}

/// The tensors of `delta`, a version's layer `index`: at most `limit` bytes fetched, decoded
/// and checked against its Merkle root (their names and shapes are the caller's to check).
async fn fetched_layer(
	ipfs: &Ipfs,
	index: usize,
	delta: &LayerDelta,
	limit: usize,
) -> Result<LayerTensors, ContentError> {
	let cid = cid_str(&delta.cid.0);
	let mismatch = || ContentError::LayerMismatch { layer: delta.layer, cid: cid.clone() };
	if delta.layer as usize != index {
		return Err(mismatch());
	}
	let blob = match ipfs.cat(&cid, limit).await {
		// Bigger than this layer can be: not this layer.
		Err(StorageError::TooLarge { .. }) => return Err(mismatch()),
		other => other?,
	};
	let tensors = weights::decode_layer(index, &blob).map_err(|_| mismatch())?;
	if weights::layer_root(&tensors) != delta.merkle_root.0 {
		return Err(mismatch());
	}
	Ok(tensors)
}

/// `bytes` as the training tokens of `config`'s model, tokenized with its registered tokenizer
/// (fetched and checked) off the async threads: see [`dataset::tokenize`]. The last few results
/// are kept by the hash of the bytes and of the tokenizer files: a miner checks, trains on and
/// defends the same dataset, and a verifier's audit duties come back block after block.
pub async fn dataset_tokens(
	ipfs: &Ipfs,
	config: &ModelConfig,
	bytes: Vec<u8>,
) -> Result<Vec<i64>, ContentError> {
	let key = {
		let files = config.tokenizer.as_ref().map(|f| (&f.tokenizer_hash, &f.config_hash));
		let data = sp_crypto_hashing::blake2_256(&bytes);
		sp_crypto_hashing::blake2_256(&codec::Encode::encode(&(data, format!("{files:?}"))))
	};
	if let Some(tokens) = TOKENS.lock().expect("token cache").iter().find(|(k, _)| *k == key) {
		return Ok(tokens.1.clone());
	}
	let tokenizer = model_tokenizer(ipfs, config).await?;
	let tokens = tokio::task::spawn_blocking(move || dataset::tokenize(&tokenizer, &bytes))
		.await
		.map_err(|e| ContentError::Interrupted(e.to_string()))??;
	if tokens.len() <= CACHED_TOKENS {
		let mut cache = TOKENS.lock().expect("token cache");
		while cache.iter().map(|(_, t)| t.len()).sum::<usize>() + tokens.len() > CACHED_TOKENS {
			cache.remove(0);
		}
		cache.push((key, tokens.clone()));
	}
	Ok(tokens)
}

/// Datasets' tokens recently made, oldest first: see [`dataset_tokens`].
static TOKENS: std::sync::Mutex<Vec<([u8; 32], Vec<i64>)>> = std::sync::Mutex::new(Vec::new());
/// Tokens kept in all (8 bytes each: 256 MiB).
const CACHED_TOKENS: usize = 32 << 20;

/// A job's revealed validation set as `config`'s tokens. A set that does not tokenize (not
/// UTF-8, a malformed record, a tokenizer that failed on it) counts as one smaller than a
/// batch: the same for every verifier, it scores the job invalid, the creator's fault.
pub async fn validation_tokens(
	ipfs: &Ipfs,
	config: &ModelConfig,
	cid: &[u8],
) -> Result<Vec<i64>, ContentError> {
	match dataset_tokens(ipfs, config, validation_set(ipfs, cid).await?).await {
		Err(e @ (ContentError::Dataset(_) | ContentError::Interrupted(_))) => {
			tracing::warn!("the validation set does not tokenize ({e}): it cannot be scored");
			Ok(Vec::new())
		}
		other => other,
	}
}

/// A dataset's bytes, checked against its on-chain content hash.
pub async fn dataset_bytes(
	chain: &Chain,
	ipfs: &Ipfs,
	dataset: u64,
) -> Result<Vec<u8>, ContentError> {
	let info = chain
		.dataset(dataset)
		.await?
		.ok_or_else(|| ContentError::Unknown(format!("dataset {dataset}")))?;
	let cid = cid_str(&info.cid.0);
	let max = info.size_bytes.try_into().unwrap_or(usize::MAX);
	checked_cat(ipfs, &cid, max, &info.content_hash.0, || format!("dataset {dataset}")).await
}

/// The bytes under `cid` (at most `max_bytes`), which must hash (blake2-256) to `hash`: content
/// the chain names by hash, checked before anyone reads it.
async fn checked_cat(
	ipfs: &Ipfs,
	cid: &str,
	max_bytes: usize,
	hash: &[u8; 32],
	what: impl FnOnce() -> String,
) -> Result<Vec<u8>, ContentError> {
	let bytes = ipfs.cat(cid, max_bytes).await?;
	if sp_crypto_hashing::blake2_256(&bytes) != *hash {
		return Err(ContentError::HashMismatch { what: what(), cid: cid.to_string() });
	}
	Ok(bytes)
}

/// Adds `(layer, safetensors bytes, Merkle root)` to IPFS (pinned, or with `only_hash` just
/// their CIDs) and returns their registry deltas.
pub async fn publish_layers(
	ipfs: &Ipfs,
	layers: &[(u16, Vec<u8>, [u8; 32])],
	only_hash: bool,
) -> Result<Vec<LayerDelta>, ContentError> {
	let mut deltas = Vec::with_capacity(layers.len());
	for (index, blob, root) in layers {
		let cid = ipfs.add(blob.clone(), !only_hash, only_hash).await?;
		deltas.push(LayerDelta { layer: *index, cid: bytes(cid), merkle_root: H256(*root) });
	}
	Ok(deltas)
}
