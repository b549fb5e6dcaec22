//! Hugging Face Qwen3 checkpoints: a directory with `config.json` and one or more
//! `*.safetensors` files (a single `model.safetensors` or shards), tensors in `f32`, `bf16` or
//! `f16` under Hugging Face's Qwen3 names. They become the registry's layers (embedding, one per
//! decoder block, final norm with head) in `f32`; a checkpoint with tied embeddings gets its head
//! from the embedding.
//!
//! The directory's `tokenizer.json` and `tokenizer_config.json` are the model's tokenizer
//! ([`load_tokenizer_files`]); only a byte-vocabulary checkpoint (256 tokens) may go without.

use std::{collections::BTreeMap, path::Path};

use rayon::prelude::*;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::Deserialize;

use super::{
	model::ModelConfig,
	tokenizer::{HfTokenizer, TokenizerError},
	weights::{check_layout, expected_layout, LayerTensors, NamedTensor, WeightsError},
};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
	#[error("{path}: {reason}")]
	Io { path: String, reason: String },
	#[error("config.json: {0}")]
	Config(String),
	#[error("{file}: {reason}")]
	Format { file: String, reason: String },
	#[error("tensor {0} is not part of a Qwen3 model")]
	UnknownTensor(String),
	#[error("tensor {0} appears twice")]
	Duplicate(String),
	#[error(transparent)]
	Weights(#[from] WeightsError),
	#[error("{0} is missing: a checkpoint whose vocabulary is not bytes needs tokenizer.json and tokenizer_config.json")]
	MissingTokenizer(String),
	#[error(transparent)]
	Tokenizer(#[from] TokenizerError),
}

/// A checkpoint's tokenizer files, as read (their bytes are what the registry records).
pub struct TokenizerBytes {
	pub tokenizer_json: Vec<u8>,
	pub tokenizer_config: Vec<u8>,
	pub tokenizer: HfTokenizer,
}

/// `tokenizer.json` and `tokenizer_config.json` from a checkpoint directory, loaded and checked
/// against the model's embedding (`vocab_size` rows). `None` when both are absent and the
/// vocabulary is bytes (256 tokens): the checkpoint is one of Blyan's byte-level models.
pub fn load_tokenizer_files(
	dir: &Path,
	vocab_size: usize,
) -> Result<Option<TokenizerBytes>, CheckpointError> {
	let (json_path, config_path) = (dir.join("tokenizer.json"), dir.join("tokenizer_config.json"));
	match (json_path.exists(), config_path.exists()) {
		(false, false) if vocab_size == crate::data::VOCAB_SIZE => return Ok(None),
		(false, _) => {
			return Err(CheckpointError::MissingTokenizer(json_path.display().to_string()))
		}
		(_, false) => {
			return Err(CheckpointError::MissingTokenizer(config_path.display().to_string()))
		}
		(true, true) => {}
	}
	let tokenizer_json = std::fs::read(&json_path).map_err(|e| io(&json_path, e))?;
	let mut tokenizer_config = std::fs::read(&config_path).map_err(|e| io(&config_path, e))?;
	// Recent transformers save the chat template beside the config: it is registered inside
	// the config, as older checkpoints carry it, so the model's files stay two.
	let template_path = dir.join("chat_template.jinja");
	if template_path.exists() {
		let template =
			std::fs::read_to_string(&template_path).map_err(|e| io(&template_path, e))?;
		let mut config: serde_json::Map<String, serde_json::Value> =
			serde_json::from_slice(&tokenizer_config)
				.map_err(|e| CheckpointError::Tokenizer(TokenizerError::Config(e.to_string())))?;
		if !config.contains_key("chat_template") {
			config.insert("chat_template".into(), template.into());
			tokenizer_config = serde_json::to_vec_pretty(&config)
				.map_err(|e| CheckpointError::Tokenizer(TokenizerError::Config(e.to_string())))?;
		}
	}
	let tokenizer = HfTokenizer::from_bytes(&tokenizer_json, &tokenizer_config)?;
	tokenizer.check_vocabulary(vocab_size)?;
	Ok(Some(TokenizerBytes { tokenizer_json, tokenizer_config, tokenizer }))
}

/// The fields of a Hugging Face `config.json` a Qwen3 model needs.
#[derive(Deserialize)]
struct HfConfig {
	model_type: Option<String>,
	vocab_size: usize,
	hidden_size: usize,
	num_hidden_layers: usize,
	num_attention_heads: usize,
	num_key_value_heads: Option<usize>,
	head_dim: Option<usize>,
	intermediate_size: usize,
	max_position_embeddings: usize,
	rope_theta: Option<f64>,
	/// transformers ≥ 5 writes the RoPE settings here (`rope_theta`, `rope_type`).
	rope_parameters: Option<RopeParameters>,
	/// transformers 4's name for RoPE scaling (YaRN, linear, …): not supported.
	rope_scaling: Option<serde_json::Value>,
	rms_norm_eps: Option<f64>,
	#[serde(default)]
	tie_word_embeddings: bool,
	/// Variants Blyan's Qwen3 does not compute: refused rather than run wrongly.
	#[serde(default)]
	attention_bias: bool,
	#[serde(default)]
	use_sliding_window: bool,
	hidden_act: Option<String>,
}

#[derive(Deserialize)]
struct RopeParameters {
	rope_theta: Option<f64>,
	rope_type: Option<String>,
}

fn io(path: &Path, e: impl ToString) -> CheckpointError {
	CheckpointError::Io { path: path.display().to_string(), reason: e.to_string() }
}

/// Reads a checkpoint directory into a model config and its registry layers (each checked
/// against the layout the config requires).
pub fn load_checkpoint(dir: &Path) -> Result<(ModelConfig, Vec<LayerTensors>), CheckpointError> {
	let config_path = dir.join("config.json");
	let raw = std::fs::read(&config_path).map_err(|e| io(&config_path, e))?;
	let (config, hf) = read_config(&raw)?;

	let mut files: Vec<_> = std::fs::read_dir(dir)
		.map_err(|e| io(dir, e))?
		.filter_map(|entry| entry.ok().map(|e| e.path()))
		.filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
		.collect();
	files.sort();
	if files.is_empty() {
		return Err(io(dir, "no .safetensors file"));
	}
	let n = config.num_hidden_layers;
	let mut layers: Vec<BTreeMap<String, NamedTensor>> = vec![BTreeMap::new(); n + 2];
	for file in &files {
		let opened = std::fs::File::open(file).map_err(|e| io(file, e))?;
		// SAFETY: the map is only read, and dropped before this function returns. A checkpoint
		// rewritten by another process while it is imported can give torn values (the registry's
		// roots are of what was read) and one truncated meanwhile kills the process (SIGBUS), as
		// with every mapped safetensors loader; import from a checkpoint nobody is writing.
		let bytes = unsafe { memmap2::Mmap::map(&opened) }.map_err(|e| io(file, e))?;
		let format =
			|reason: String| CheckpointError::Format { file: file.display().to_string(), reason };
		let st = SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
		// Rotary frequencies some exports include are recomputed from the config.
		let mut views: Vec<_> = st
			.tensors()
			.into_iter()
			.filter(|(name, _)| !name.ends_with("rotary_emb.inv_freq"))
			.collect();
		// In the file's order, so the first bad tensor is the one reported, whatever the threads.
		views.sort_by(|(a, x), (b, y)| {
			let (x, y) = (x.data(), y.data());
			(x.as_ptr() as usize, x.len(), a.as_str()).cmp(&(
				y.as_ptr() as usize,
				y.len(),
				b.as_str(),
			))
		});
		// Widened on every core: a checkpoint of billions of values is read once, at load.
		let widened: Vec<Result<Vec<f32>, String>> = views
			.par_iter()
			.map(|(name, view)| {
				to_f32(view.dtype(), view.data()).map_err(|r| format!("{name}: {r}"))
			})
			.collect();
		for ((name, view), values) in views.into_iter().zip(widened) {
			let layer =
				layer_of(&name, n).ok_or_else(|| CheckpointError::UnknownTensor(name.clone()))?;
			let values = values.map_err(format)?;
			let tensor = NamedTensor { name: name.clone(), shape: view.shape().to_vec(), values };
			if layers[layer].insert(name.clone(), tensor).is_some() {
				return Err(CheckpointError::Duplicate(name));
			}
		}
	}
	if hf.tie_word_embeddings && !layers[n + 1].contains_key("lm_head.weight") {
		if let Some(embed) = layers[0].get("model.embed_tokens.weight") {
			let head = NamedTensor { name: "lm_head.weight".into(), ..embed.clone() };
			layers[n + 1].insert(head.name.clone(), head);
		}
	}
	let layers: Vec<LayerTensors> = layers.into_iter().map(|l| l.into_values().collect()).collect();
	// Checked on every core; the first bad layer in order is the one reported.
	let checks: Vec<Result<(), WeightsError>> =
		layers.par_iter().enumerate().map(|(i, layer)| check_layout(&config, i, layer)).collect();
	checks.into_iter().collect::<Result<(), _>>()?;
	Ok((config, layers))
}

/// A model configuration from a Hugging Face Qwen3 `config.json`.
pub fn parse_config(raw: &[u8]) -> Result<ModelConfig, CheckpointError> {
	read_config(raw).map(|(config, _)| config)
}

fn read_config(raw: &[u8]) -> Result<(ModelConfig, HfConfig), CheckpointError> {
	let hf: HfConfig =
		serde_json::from_slice(raw).map_err(|e| CheckpointError::Config(e.to_string()))?;
	if hf.model_type.as_deref() != Some("qwen3") {
		return Err(CheckpointError::Config(format!(
			"model_type {:?}: only \"qwen3\" checkpoints are supported",
			hf.model_type
		)));
	}
	if hf.num_attention_heads == 0 {
		return Err(CheckpointError::Config("num_attention_heads is 0".into()));
	}
	// Plain RoPE only: a scaled variant would be computed wrongly, so it is refused.
	let scaled = hf.rope_parameters.as_ref().and_then(|r| r.rope_type.as_deref());
	if scaled.is_some_and(|t| t != "default")
		|| hf.rope_scaling.as_ref().is_some_and(|v| !v.is_null())
	{
		return Err(CheckpointError::Config(
			"scaled RoPE (rope_type other than \"default\", rope_scaling) is not supported".into(),
		));
	}
	if hf.attention_bias || hf.use_sliding_window {
		return Err(CheckpointError::Config(
			"attention_bias and use_sliding_window are not supported".into(),
		));
	}
	if hf.hidden_act.as_deref().is_some_and(|a| a != "silu") {
		return Err(CheckpointError::Config(format!(
			"hidden_act {:?}: only \"silu\" is supported",
			hf.hidden_act
		)));
	}
	let rope_theta = hf
		.rope_theta
		.or(hf.rope_parameters.as_ref().and_then(|r| r.rope_theta))
		.unwrap_or(10_000.0);
	let config = ModelConfig {
		family: "qwen3".into(),
		vocab_size: hf.vocab_size,
		hidden_size: hf.hidden_size,
		num_hidden_layers: hf.num_hidden_layers,
		num_attention_heads: hf.num_attention_heads,
		num_key_value_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
		// transformers' Qwen3Config defaults, for configs that leave them out.
		head_dim: hf.head_dim.unwrap_or(128),
		intermediate_size: hf.intermediate_size,
		max_position_embeddings: hf.max_position_embeddings,
		rope_theta: rope_theta as f32,
		rms_norm_eps: hf.rms_norm_eps.unwrap_or(1e-6),
		tokenizer: None,
	};
	config.validate().map_err(CheckpointError::Config)?;
	Ok((config, hf))
}

/// Writes `layers` as a Hugging Face Qwen3 checkpoint: `config.json` and `shards`
/// safetensors files, tensors in `f32` or `bf16`, the head left out if `tie` (it is then the
/// embedding). The inverse of [`load_checkpoint`].
pub fn save_checkpoint(
	dir: &Path,
	config: &ModelConfig,
	layers: &[LayerTensors],
	shards: usize,
	bf16: bool,
	tie: bool,
) -> Result<(), CheckpointError> {
	let hf = serde_json::json!({
		"architectures": ["Qwen3ForCausalLM"],
		"model_type": "qwen3",
		"vocab_size": config.vocab_size,
		"hidden_size": config.hidden_size,
		"num_hidden_layers": config.num_hidden_layers,
		"num_attention_heads": config.num_attention_heads,
		"num_key_value_heads": config.num_key_value_heads,
		"head_dim": config.head_dim,
		"intermediate_size": config.intermediate_size,
		"max_position_embeddings": config.max_position_embeddings,
		"rope_theta": config.rope_theta,
		"rms_norm_eps": config.rms_norm_eps,
		"tie_word_embeddings": tie,
		"torch_dtype": if bf16 { "bfloat16" } else { "float32" },
	});
	let config_path = dir.join("config.json");
	std::fs::write(&config_path, hf.to_string()).map_err(|e| io(&config_path, e))?;
	let tensors: Vec<&NamedTensor> =
		layers.iter().flatten().filter(|t| !(tie && t.name == "lm_head.weight")).collect();
	let per_shard = tensors.len().div_ceil(shards.max(1)).max(1);
	let files = tensors.len().div_ceil(per_shard);
	// As transformers names them: one file `model.safetensors`, or numbered shards with an
	// index of which tensor is where.
	let file_name = |i: usize| {
		if files == 1 {
			"model.safetensors".to_string()
		} else {
			format!("model-{:05}-of-{files:05}.safetensors", i + 1)
		}
	};
	let mut weight_map = serde_json::Map::new();
	let mut total_size = 0usize;
	for (i, chunk) in tensors.chunks(per_shard).enumerate() {
		let data: Vec<(String, Vec<u8>, Vec<usize>)> = chunk
			.iter()
			.map(|t| {
				let bytes = if bf16 {
					t.values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect()
				} else {
					t.values.iter().flat_map(|v| v.to_le_bytes()).collect()
				};
				(t.name.clone(), bytes, t.shape.clone())
			})
			.collect();
		let dtype = if bf16 { Dtype::BF16 } else { Dtype::F32 };
		let views: Vec<(String, TensorView<'_>)> = data
			.iter()
			.map(|(n, b, s)| {
				(n.clone(), TensorView::new(dtype, s.clone(), b).expect("shape and bytes agree"))
			})
			.collect();
		for (name, bytes, _) in &data {
			weight_map.insert(name.clone(), file_name(i).into());
			total_size += bytes.len();
		}
		let path = dir.join(file_name(i));
		safetensors::serialize_to_file(views, None, &path).map_err(|e| io(&path, e))?;
	}
	if files > 1 {
		let index = serde_json::json!({ "metadata": { "total_size": total_size }, "weight_map": weight_map });
		let path = dir.join("model.safetensors.index.json");
		std::fs::write(&path, index.to_string()).map_err(|e| io(&path, e))?;
	}
	Ok(())
}

/// The registry layer a Hugging Face tensor name belongs to.
fn layer_of(name: &str, blocks: usize) -> Option<usize> {
	match name {
		"model.embed_tokens.weight" => Some(0),
		"model.norm.weight" | "lm_head.weight" => Some(blocks + 1),
		_ => {
			let rest = name.strip_prefix("model.layers.")?;
			let (index, _) = rest.split_once('.')?;
			let index: usize = index.parse().ok()?;
			(index < blocks).then_some(index + 1)
		}
	}
}

pub(crate) fn to_f32(dtype: Dtype, data: &[u8]) -> Result<Vec<f32>, String> {
	Ok(match dtype {
		Dtype::F32 => {
			data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
		}
		Dtype::BF16 => {
			data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
		}
		Dtype::F16 => {
			data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
		}
		other => return Err(format!("dtype {other:?}; expected F32, BF16 or F16")),
	})
}

/// Weights a few lines of any language reproduce bit for bit, for `config`'s layout: value `i`
/// of tensor `name` is `u ∈ [-0.5, 0.5)` from the top 24 bits of `splitmix64(fnv1a(name) + i)`,
/// stored as `u / 4` (norm weights `1 + u / 4`); the head is the embedding (tied). These are
/// the checkpoints Blyan is compared with `transformers` on (`scripts/fixtures/qwen3-parity.py`
/// computes the same values), so the comparison needs no committed weights.
pub fn reference_layers(config: &ModelConfig) -> Vec<LayerTensors> {
	(0..config.layer_count())
		.map(|layer| {
			expected_layout(config, layer)
				.into_iter()
				.map(|(name, shape)| {
					let count = shape.iter().product();
					let source =
						if name == "lm_head.weight" { "model.embed_tokens.weight" } else { &name };
					let values = reference_values(source, count);
					NamedTensor { name, shape, values }
				})
				.collect()
		})
		.collect()
}

/// Tensor `name`'s `count` values by the formula of [`reference_layers`] (adapters of the LoRA
/// fixture use it too).
pub fn reference_values(name: &str, count: usize) -> Vec<f32> {
	let seed = name
		.bytes()
		.fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
	let norm = name.ends_with("norm.weight");
	(0..count as u64)
		.map(|i| {
			let mut z = seed.wrapping_add(i).wrapping_add(0x9e37_79b9_7f4a_7c15);
			z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
			z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
			z ^= z >> 31;
			let u = (z >> 40) as f32 / (1u32 << 24) as f32 - 0.5;
			if norm {
				1.0 + u * 0.25
			} else {
				u * 0.25
			}
		})
		.collect()
}

#[cfg(test)]
mod tests {
	use super::*;

	/// transformers 5 writes RoPE settings under `rope_parameters`; scaled RoPE is refused.
	#[test]
	fn rope_settings_are_read_where_either_transformers_writes_them() {
		let base = serde_json::json!({ "model_type": "qwen3", "vocab_size": 256, "hidden_size": 64,
			"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
			"head_dim": 16, "intermediate_size": 128, "max_position_embeddings": 128 });
		let with = |extra: serde_json::Value| {
			let mut c = base.clone();
			c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
			parse_config(c.to_string().as_bytes())
		};
		let theta = |extra| with(extra).unwrap().rope_theta;
		assert_eq!(theta(serde_json::json!({ "rope_theta": 10000.0 })), 10000.0);
		assert_eq!(
			theta(
				serde_json::json!({ "rope_parameters": { "rope_theta": 5e5, "rope_type": "default" } })
			),
			5e5
		);
		assert_eq!(theta(serde_json::json!({})), 1e4, "transformers' default");
		for scaled in [
			serde_json::json!({ "rope_parameters": { "rope_theta": 1e6, "rope_type": "yarn", "factor": 4.0 } }),
			serde_json::json!({ "rope_scaling": { "type": "linear", "factor": 2.0 } }),
		] {
			assert!(
				matches!(with(scaled), Err(CheckpointError::Config(e)) if e.contains("scaled RoPE"))
			);
		}
		for other in [
			serde_json::json!({ "attention_bias": true }),
			serde_json::json!({ "use_sliding_window": true }),
			serde_json::json!({ "hidden_act": "gelu" }),
		] {
			assert!(matches!(with(other.clone()), Err(CheckpointError::Config(_))), "{other}");
		}
		assert!(with(serde_json::json!({ "attention_bias": false, "hidden_act": "silu" })).is_ok());
	}
	use crate::init_layers;

	#[test]
	fn a_sharded_f32_checkpoint_loads_exactly() {
		let dir = tempfile::tempdir().unwrap();
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 11);
		save_checkpoint(dir.path(), &config, &layers, 3, false, false).unwrap();
		// transformers finds sharded tensors through the index.
		let index: serde_json::Value = serde_json::from_slice(
			&std::fs::read(dir.path().join("model.safetensors.index.json")).unwrap(),
		)
		.unwrap();
		let mapped = index["weight_map"].as_object().unwrap();
		assert_eq!(mapped.len(), layers.iter().flatten().count());
		assert!(mapped.values().all(|f| dir.path().join(f.as_str().unwrap()).exists()));
		let (loaded_config, loaded) = load_checkpoint(dir.path()).unwrap();
		assert_eq!(loaded_config, config);
		assert_eq!(loaded, layers);
	}

	#[test]
	fn a_bf16_checkpoint_with_tied_embeddings_loads_rounded_with_the_head_from_the_embedding() {
		let dir = tempfile::tempdir().unwrap();
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 12);
		save_checkpoint(dir.path(), &config, &layers, 1, true, true).unwrap();
		let (_, loaded) = load_checkpoint(dir.path()).unwrap();
		let round = |v: f32| half::bf16::from_f32(v).to_f32();
		let embed = &loaded[0][0];
		assert_eq!(embed.values, layers[0][0].values.iter().map(|v| round(*v)).collect::<Vec<_>>());
		let last = loaded.last().unwrap();
		let head = last.iter().find(|t| t.name == "lm_head.weight").unwrap();
		assert_eq!(head.values, embed.values);
	}

	#[test]
	fn bad_checkpoints_are_errors() {
		let dir = tempfile::tempdir().unwrap();
		assert!(matches!(load_checkpoint(dir.path()), Err(CheckpointError::Io { .. })));
		let config = ModelConfig::tiny();
		let mut layers = init_layers(&config, 13);
		save_checkpoint(dir.path(), &config, &layers, 1, false, false).unwrap();
		// Another architecture.
		let raw = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
		std::fs::write(dir.path().join("config.json"), raw.replace("\"qwen3\"", "\"llama\""))
			.unwrap();
		assert!(matches!(load_checkpoint(dir.path()), Err(CheckpointError::Config(_))));
		// A tensor missing (the head, untied).
		let dir = tempfile::tempdir().unwrap();
		layers.last_mut().unwrap().retain(|t| t.name != "lm_head.weight");
		save_checkpoint(dir.path(), &config, &layers, 1, false, false).unwrap();
		assert!(matches!(load_checkpoint(dir.path()), Err(CheckpointError::Weights(_))));
		// Not safetensors.
		std::fs::write(dir.path().join("zz.safetensors"), b"garbage").unwrap();
		assert!(matches!(load_checkpoint(dir.path()), Err(CheckpointError::Format { .. })));
	}
}
