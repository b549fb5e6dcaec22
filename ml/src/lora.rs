//! Low-rank adapters (LoRA) on a frozen base: for each targeted projection `W` (`[out, in]`),
//! two trained matrices `A` (`[rank, in]`) and `B` (`[rank, out]`'s transpose, `[out, rank]`)
//! add `scale · B·A·x` to `W·x`, `scale = alpha / rank` (`alpha / √rank` for rsLoRA), as
//! Hugging Face `peft` computes it (`lora_B(lora_A(x)) * scaling`, dropout 0).
//!
//! Adapters travel as layers of their own, one per decoder block, under `peft`'s tensor names
//! without its prefix (`model.layers.0.self_attn.q_proj.lora_A.weight`, `[rank, in]`;
//! `...lora_B.weight`, `[out, rank]`), so an adapter is a few hundredths of its base. A model
//! carries them ([`attach`]) to train them, or they are added into the base weights ([`merge`])
//! to serve at the base's speed; [`save_peft`]/[`load_peft`] read and write `peft`'s own format.

use std::{collections::BTreeMap, path::Path};

use blyan_primitives::training::LoraParams;
use burn::{
	module::{Module, Param},
	nn::Linear,
	tensor::{backend::Backend, Tensor, TensorData},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::{
	model::{DecoderBlock, ModelConfig, Transformer},
	weights::{self, LayerTensors, NamedTensor},
};

/// The largest rank a job may ask for: far above what fine-tuning uses (8–64), low enough that
/// an adapter stays a fraction of its base.
pub const MAX_RANK: u32 = LoraParams::MAX_RANK;

/// A projection of a decoder block an adapter can target, named as `peft` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LoraTarget {
	#[serde(rename = "q_proj")]
	Q,
	#[serde(rename = "k_proj")]
	K,
	#[serde(rename = "v_proj")]
	V,
	#[serde(rename = "o_proj")]
	O,
	#[serde(rename = "gate_proj")]
	Gate,
	#[serde(rename = "up_proj")]
	Up,
	#[serde(rename = "down_proj")]
	Down,
}

impl LoraTarget {
	pub const ALL: [LoraTarget; 7] =
		[Self::Q, Self::K, Self::V, Self::O, Self::Gate, Self::Up, Self::Down];

	/// The module's name (`q_proj`), as in `peft`'s `target_modules`.
	pub fn module_name(self) -> &'static str {
		match self {
			Self::Q => "q_proj",
			Self::K => "k_proj",
			Self::V => "v_proj",
			Self::O => "o_proj",
			Self::Gate => "gate_proj",
			Self::Up => "up_proj",
			Self::Down => "down_proj",
		}
	}

	/// The target named `name` (`q_proj`), if any.
	pub fn from_module_name(name: &str) -> Option<Self> {
		Self::ALL.into_iter().find(|t| t.module_name() == name)
	}

	/// The projection's path within a block (`self_attn.q_proj`).
	pub fn path(self) -> String {
		let parent = match self {
			Self::Q | Self::K | Self::V | Self::O => "self_attn",
			Self::Gate | Self::Up | Self::Down => "mlp",
		};
		format!("{parent}.{}", self.module_name())
	}

	/// `(in, out)` of the projection in a model of `config`.
	pub fn dims(self, config: &ModelConfig) -> (usize, usize) {
		let h = config.hidden_size;
		let q = config.num_attention_heads * config.head_dim;
		let kv = config.num_key_value_heads * config.head_dim;
		let f = config.intermediate_size;
		match self {
			Self::Q => (h, q),
			Self::K | Self::V => (h, kv),
			Self::O => (q, h),
			Self::Gate | Self::Up => (h, f),
			Self::Down => (f, h),
		}
	}
}

/// What a set of adapters is: their rank, scale and the projections they adapt. Part of a
/// version's registered description, so every consumer applies them the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
	pub rank: u32,
	pub alpha: u32,
	/// In [`LoraTarget`]'s order, each once.
	pub targets: Vec<LoraTarget>,
	/// rsLoRA's scale `alpha / √rank` instead of `alpha / rank`.
	#[serde(default, skip_serializing_if = "std::ops::Not::not")]
	pub rslora: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LoraError {
	#[error("LoRA rank {0} is outside 1..={MAX_RANK}")]
	Rank(u32),
	#[error("LoRA alpha must be positive")]
	Alpha,
	#[error("LoRA needs at least one target module")]
	NoTargets,
	#[error("LoRA target {0} is listed twice")]
	DuplicateTarget(&'static str),
	#[error("LoRA target {0:?} is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj")]
	UnknownTarget(String),
	#[error("expected adapters for {expected} blocks, got {got}")]
	BlockCount { expected: usize, got: usize },
	#[error("block {block}: expected adapter tensors {expected:?}, found {found:?}")]
	Names { block: usize, expected: Vec<String>, found: Vec<String> },
	#[error("adapter tensor {name}: {reason}")]
	Tensor { name: String, reason: String },
	#[error("the base has no tensor {0} to adapt")]
	MissingBase(String),
	#[error("base tensor {name} is {found:?}, the model's config says {expected:?}")]
	BaseShape { name: String, expected: [usize; 2], found: [usize; 2] },
	#[error("{path}: {reason}")]
	Io { path: String, reason: String },
	#[error("adapter_config.json: {0}")]
	PeftConfig(String),
}

impl LoraConfig {
	/// `rank` on every projection, `alpha` = 2 × rank: the usual starting point.
	pub fn all_linear(rank: u32) -> Self {
		Self { rank, alpha: 2 * rank, targets: LoraTarget::ALL.to_vec(), rslora: false }
	}

	/// The adapters a job's [`LoraParams`] describe (its target bits in [`LoraTarget`]'s order).
	pub fn from_params(p: &LoraParams) -> Self {
		let targets =
			LoraTarget::ALL.into_iter().enumerate().filter(|(i, _)| p.targets & (1 << i) != 0);
		Self {
			rank: p.rank,
			alpha: p.alpha,
			targets: targets.map(|(_, t)| t).collect(),
			rslora: p.rslora,
		}
	}

	/// The chain's description of these adapters.
	pub fn to_params(&self) -> Result<LoraParams, LoraError> {
		self.validate()?;
		// `LoraTarget`'s discriminants are its places in `ALL`, the chain's bit order.
		let targets = self.targets.iter().fold(0u8, |bits, t| bits | 1 << *t as u8);
		Ok(LoraParams { rank: self.rank, alpha: self.alpha, targets, rslora: self.rslora })
	}

	/// Refuses what no consumer could apply the same way: a rank of 0 or past [`MAX_RANK`], an
	/// `alpha` of 0, no target or one twice. Targets are kept in [`LoraTarget`]'s order.
	pub fn validate(&self) -> Result<(), LoraError> {
		if self.rank == 0 || self.rank > MAX_RANK {
			return Err(LoraError::Rank(self.rank));
		}
		if self.alpha == 0 {
			return Err(LoraError::Alpha);
		}
		if self.targets.is_empty() {
			return Err(LoraError::NoTargets);
		}
		let mut sorted = self.targets.clone();
		sorted.sort();
		if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
			return Err(LoraError::DuplicateTarget(pair[0].module_name()));
		}
		Ok(())
	}

	/// `scale` of `scale · B·A·x`: `alpha / rank` (or `/ √rank`), computed in `f64` and rounded
	/// once, as `peft` computes it in Python and torch multiplies by it in `f32`.
	pub fn scale(&self) -> f32 {
		let rank = f64::from(self.rank);
		let divisor = if self.rslora { rank.sqrt() } else { rank };
		(f64::from(self.alpha) / divisor) as f32
	}

	/// Targets in [`LoraTarget`]'s order.
	fn ordered_targets(&self) -> Vec<LoraTarget> {
		let mut targets = self.targets.clone();
		targets.sort();
		targets
	}

	/// The tensors of block `block`'s adapter layer, sorted by name: `(name, shape)`, shapes as
	/// `peft` stores them (`lora_A` `[rank, in]`, `lora_B` `[out, rank]`).
	pub fn layout(&self, config: &ModelConfig, block: usize) -> Vec<(String, Vec<usize>)> {
		let rank = self.rank as usize;
		let mut layout: Vec<_> = self
			.ordered_targets()
			.into_iter()
			.flat_map(|target| {
				let (d_in, d_out) = target.dims(config);
				let p = format!("model.layers.{block}.{}", target.path());
				[
					(format!("{p}.lora_A.weight"), vec![rank, d_in]),
					(format!("{p}.lora_B.weight"), vec![d_out, rank]),
				]
			})
			.collect();
		layout.sort();
		layout
	}

	/// Values in one block's adapters (a share of the base's parameters).
	pub fn parameter_count(&self, config: &ModelConfig) -> usize {
		self.layout(config, 0).iter().map(|(_, s)| s.iter().product::<usize>()).sum::<usize>()
			* config.num_hidden_layers
	}

	/// Checks `adapters` (one layer per decoder block) are exactly this configuration's tensors
	/// for `config`, with finite values.
	pub fn check(&self, config: &ModelConfig, adapters: &[LayerTensors]) -> Result<(), LoraError> {
		self.validate()?;
		if adapters.len() != config.num_hidden_layers {
			return Err(LoraError::BlockCount {
				expected: config.num_hidden_layers,
				got: adapters.len(),
			});
		}
		for (block, layer) in adapters.iter().enumerate() {
			let layout = self.layout(config, block);
			let mut found: Vec<&NamedTensor> = layer.iter().collect();
			found.sort_by(|a, b| a.name.cmp(&b.name));
			if found.len() != layout.len()
				|| found.iter().zip(&layout).any(|(t, (name, _))| &t.name != name)
			{
				return Err(LoraError::Names {
					block,
					expected: layout.into_iter().map(|(n, _)| n).collect(),
					found: found.iter().map(|t| t.name.clone()).collect(),
				});
			}
			for (t, (name, shape)) in found.into_iter().zip(layout) {
				let tensor = |reason: String| LoraError::Tensor { name: name.clone(), reason };
				if t.shape != shape || t.values.len() != shape.iter().product::<usize>() {
					return Err(tensor(format!(
						"shape {:?} ({} values), expected {shape:?}",
						t.shape,
						t.values.len()
					)));
				}
				if t.values.iter().any(|v| !v.is_finite()) {
					return Err(tensor("non-finite value".into()));
				}
			}
		}
		Ok(())
	}

	/// Fresh adapters for `config`, deterministic in `seed`: `A` uniform in `±1/√in` (what
	/// `peft`'s Kaiming-uniform initialisation draws from), `B` zero, so the adapted model
	/// starts as its base.
	pub fn init(&self, config: &ModelConfig, seed: u64) -> Result<Vec<LayerTensors>, LoraError> {
		self.validate()?;
		let mut rng = ChaCha20Rng::seed_from_u64(seed);
		Ok((0..config.num_hidden_layers)
			.map(|block| {
				self.layout(config, block)
					.into_iter()
					.map(|(name, shape)| {
						let count = shape.iter().product();
						let values = if name.ends_with("lora_A.weight") {
							let bound = 1.0 / (shape[1] as f32).sqrt();
							(0..count).map(|_| (2.0 * rng.random::<f32>() - 1.0) * bound).collect()
						} else {
							vec![0.0; count]
						};
						NamedTensor { name, shape, values }
					})
					.collect()
			})
			.collect())
	}
}

/// One projection's adapter in burn's layout (`x·A·B`, inputs in rows).
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
	/// `[in, rank]`: `peft`'s `lora_A.weight` transposed.
	pub a: Param<Tensor<B, 2>>,
	/// `[rank, out]`: `peft`'s `lora_B.weight` transposed.
	pub b: Param<Tensor<B, 2>>,
	pub scale: f32,
}

impl<B: Backend> LoraAdapter<B> {
	/// `(x·A)·B·scale` for `x` `[batch, seq, in]`, in `peft`'s order of operations.
	pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
		let down = x.matmul(self.a.val().unsqueeze());
		down.matmul(self.b.val().unsqueeze()).mul_scalar(self.scale)
	}
}

/// `linear(x)`, plus the adapter's term if the projection has one.
pub(crate) fn project<B: Backend>(
	linear: &Linear<B>,
	adapter: &Option<LoraAdapter<B>>,
	x: Tensor<B, 3>,
) -> Tensor<B, 3> {
	match adapter {
		None => linear.forward(x),
		Some(adapter) => linear.forward(x.clone()) + adapter.forward(x),
	}
}

fn find<'a>(layer: &'a LayerTensors, name: &str) -> &'a NamedTensor {
	layer.iter().find(|t| t.name == name).expect("adapters checked by the caller")
}

/// A matrix `[rows, cols]`'s values as `[cols, rows]` (peft's layout ↔ burn's).
fn transposed(t: &NamedTensor) -> Vec<f32> {
	weights::transpose(&t.values, t.shape[0], t.shape[1])
}

/// `model` with `adapters` on the projections `lora` targets, its base frozen: training it
/// trains the adapters alone (the optimizer only sees parameters with gradients).
pub fn attach<B: Backend>(
	model: Transformer<B>,
	config: &ModelConfig,
	lora: &LoraConfig,
	adapters: &[LayerTensors],
) -> Result<Transformer<B>, LoraError> {
	lora.check(config, adapters)?;
	if model.layers.len() != config.num_hidden_layers {
		return Err(LoraError::BlockCount {
			expected: config.num_hidden_layers,
			got: model.layers.len(),
		});
	}
	let mut model = model.no_grad();
	let device = model.rope_cos.device();
	let scale = lora.scale();
	for (block, (layer, adapter_layer)) in model.layers.iter_mut().zip(adapters).enumerate() {
		// The adapters given replace any the model carried: they are all it carries after.
		for target in LoraTarget::ALL {
			*adapter_slot(layer, target) = None;
		}
		for target in lora.ordered_targets() {
			let (d_in, d_out) = target.dims(config);
			let base = format!("model.layers.{block}.{}.weight", target.path());
			let found = projection(layer, target).0.weight.val().dims();
			if found != [d_in, d_out] {
				return Err(LoraError::BaseShape { name: base, expected: [d_in, d_out], found });
			}
			let p = format!("model.layers.{block}.{}", target.path());
			let (a, b) = (
				find(adapter_layer, &format!("{p}.lora_A.weight")),
				find(adapter_layer, &format!("{p}.lora_B.weight")),
			);
			let param = |t: &NamedTensor| {
				Param::from_data(TensorData::new(transposed(t), [t.shape[1], t.shape[0]]), &device)
			};
			*adapter_slot(layer, target) = Some(LoraAdapter { a: param(a), b: param(b), scale });
		}
	}
	Ok(model)
}

/// Where block `layer` keeps `target`'s adapter.
fn adapter_slot<B: Backend>(
	layer: &mut DecoderBlock<B>,
	target: LoraTarget,
) -> &mut Option<LoraAdapter<B>> {
	let (attn, mlp) = (&mut layer.self_attn, &mut layer.mlp);
	match target {
		LoraTarget::Q => &mut attn.q_lora,
		LoraTarget::K => &mut attn.k_lora,
		LoraTarget::V => &mut attn.v_lora,
		LoraTarget::O => &mut attn.o_lora,
		LoraTarget::Gate => &mut mlp.gate_lora,
		LoraTarget::Up => &mut mlp.up_lora,
		LoraTarget::Down => &mut mlp.down_lora,
	}
}

impl<B: Backend> DecoderBlock<B> {
	/// Each projection's adapter, if it carries one, in [`LoraTarget::ALL`]'s order.
	pub fn adapters(&self) -> [(LoraTarget, &Option<LoraAdapter<B>>); 7] {
		LoraTarget::ALL.map(|target| (target, projection(self, target).1))
	}
}

/// Block `layer`'s projection `target` and the adapter it carries, if any.
fn projection<B: Backend>(
	layer: &DecoderBlock<B>,
	target: LoraTarget,
) -> (&Linear<B>, &Option<LoraAdapter<B>>) {
	let (attn, mlp) = (&layer.self_attn, &layer.mlp);
	match target {
		LoraTarget::Q => (&attn.q_proj, &attn.q_lora),
		LoraTarget::K => (&attn.k_proj, &attn.k_lora),
		LoraTarget::V => (&attn.v_proj, &attn.v_lora),
		LoraTarget::O => (&attn.o_proj, &attn.o_lora),
		LoraTarget::Gate => (&mlp.gate_proj, &mlp.gate_lora),
		LoraTarget::Up => (&mlp.up_proj, &mlp.up_lora),
		LoraTarget::Down => (&mlp.down_proj, &mlp.down_lora),
	}
}

/// The adapters `model` carries for `lora`'s targets, one layer per block in `peft`'s layout;
/// `None` if a target has none.
pub fn export_adapters<B: Backend>(
	model: &Transformer<B>,
	lora: &LoraConfig,
) -> Option<Vec<LayerTensors>> {
	// burn's `[in, rank]`/`[rank, out]` back to peft's `[rank, in]`/`[out, rank]`.
	let tensor = |name: String, t: Tensor<B, 2>| {
		let [rows, cols] = t.dims();
		let values = t.into_data().convert::<f32>().into_vec::<f32>().expect("f32 values");
		let burn_layout = NamedTensor { name, shape: vec![rows, cols], values };
		NamedTensor { values: transposed(&burn_layout), shape: vec![cols, rows], ..burn_layout }
	};
	model
		.layers
		.iter()
		.enumerate()
		.map(|(block, layer)| {
			let mut tensors = Vec::new();
			for target in lora.ordered_targets() {
				let adapter = projection(layer, target).1.as_ref()?;
				let p = format!("model.layers.{block}.{}", target.path());
				tensors.push(tensor(format!("{p}.lora_A.weight"), adapter.a.val()));
				tensors.push(tensor(format!("{p}.lora_B.weight"), adapter.b.val()));
			}
			tensors.sort_by(|a, b| a.name.cmp(&b.name));
			Some(tensors)
		})
		.collect()
}

/// The base's layers with `adapters` added into the weights they target:
/// `W + scale · (B·A)`, as `peft`'s `merge_and_unload` (each sum over the rank in order, so the
/// same bits on every machine). Serving a merged version costs what serving its base costs.
pub fn merge(
	config: &ModelConfig,
	lora: &LoraConfig,
	base: &[LayerTensors],
	adapters: &[LayerTensors],
) -> Result<Vec<LayerTensors>, LoraError> {
	lora.check(config, adapters)?;
	let mut merged = base.to_vec();
	for (block, adapter_layer) in adapters.iter().enumerate() {
		let Some(layer) = merged.get_mut(block + 1) else {
			return Err(LoraError::MissingBase(format!("model.layers.{block}")));
		};
		merge_block(config, lora, block, layer, adapter_layer)?;
	}
	Ok(merged)
}

/// [`merge`] of one decoder block: `adapter` added into `layer`, the base's layer `block + 1`.
/// A pipeline stage merges only its blocks.
pub fn merge_block(
	config: &ModelConfig,
	lora: &LoraConfig,
	block: usize,
	layer: &mut LayerTensors,
	adapter: &LayerTensors,
) -> Result<(), LoraError> {
	let scale = lora.scale();
	let rank = lora.rank as usize;
	for target in lora.ordered_targets() {
		let p = format!("model.layers.{block}.{}", target.path());
		let (d_in, d_out) = target.dims(config);
		let matrix = |name: String, shape: [usize; 2]| {
			adapter
				.iter()
				.find(|t| {
					t.name == name && t.shape == shape && t.values.len() == shape[0] * shape[1]
				})
				.ok_or_else(|| LoraError::Tensor {
					name,
					reason: format!("missing or not {shape:?}"),
				})
		};
		let a = matrix(format!("{p}.lora_A.weight"), [rank, d_in])?;
		let b = matrix(format!("{p}.lora_B.weight"), [d_out, rank])?;
		let name = format!("{p}.weight");
		let weight = layer
			.iter_mut()
			.find(|t| t.name == name && t.shape == [d_out, d_in])
			.ok_or_else(|| LoraError::MissingBase(name.clone()))?;
		let mut delta = vec![0f32; d_in];
		for (o, row) in weight.values.chunks_exact_mut(d_in).enumerate() {
			delta.fill(0.0);
			for r in 0..rank {
				let coefficient = b.values[o * rank + r];
				for (d, a) in delta.iter_mut().zip(&a.values[r * d_in..(r + 1) * d_in]) {
					*d += coefficient * a;
				}
			}
			for (w, d) in row.iter_mut().zip(&delta) {
				*w += d * scale;
			}
		}
	}
	Ok(())
}

/// `peft`'s prefix of tensor names in `adapter_model.safetensors` (a causal-LM `PeftModel`).
const PEFT_PREFIX: &str = "base_model.model.";

fn io(path: &Path, e: impl ToString) -> LoraError {
	LoraError::Io { path: path.display().to_string(), reason: e.to_string() }
}

/// Writes `adapters` in `peft`'s format: `adapter_config.json` and `adapter_model.safetensors`
/// (`f32`), which `PeftModel.from_pretrained(base, dir)` loads onto the base.
pub fn save_peft(
	dir: &Path,
	lora: &LoraConfig,
	config: &ModelConfig,
	adapters: &[LayerTensors],
	base_model: Option<&str>,
) -> Result<(), LoraError> {
	lora.check(config, adapters)?;
	let peft = serde_json::json!({
		"peft_type": "LORA",
		"task_type": "CAUSAL_LM",
		"base_model_name_or_path": base_model,
		"r": lora.rank,
		"lora_alpha": lora.alpha,
		"lora_dropout": 0.0,
		"target_modules": lora.ordered_targets().iter().map(|t| t.module_name()).collect::<Vec<_>>(),
		"bias": "none",
		"fan_in_fan_out": false,
		"use_rslora": lora.rslora,
		"use_dora": false,
		"inference_mode": true,
		"modules_to_save": null,
		"layers_to_transform": null,
		"rank_pattern": {},
		"alpha_pattern": {},
	});
	std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
	let path = dir.join("adapter_config.json");
	std::fs::write(&path, serde_json::to_vec_pretty(&peft).expect("json"))
		.map_err(|e| io(&path, e))?;
	let data: Vec<(String, Vec<u8>, Vec<usize>)> = adapters
		.iter()
		.flatten()
		.map(|t| {
			let bytes = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
			(format!("{PEFT_PREFIX}{}", t.name), bytes, t.shape.clone())
		})
		.collect();
	let views: Vec<(String, TensorView<'_>)> = data
		.iter()
		.map(|(n, b, s)| {
			(n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("shape and bytes agree"))
		})
		.collect();
	let path = dir.join("adapter_model.safetensors");
	safetensors::serialize_to_file(views, None, &path).map_err(|e| io(&path, e))
}

/// `adapter_config.json` as far as Blyan reads it; what it cannot apply the same way is refused.
#[derive(Deserialize)]
struct PeftConfig {
	peft_type: String,
	r: u32,
	lora_alpha: serde_json::Number,
	target_modules: serde_json::Value,
	#[serde(default)]
	bias: Option<String>,
	#[serde(default)]
	use_rslora: bool,
	/// Every other field; those in [`PEFT_UNSUPPORTED`] must be absent, null, false or empty.
	#[serde(flatten)]
	rest: BTreeMap<String, serde_json::Value>,
}

/// `peft` options that change what an adapter computes or where it applies (or variants Blyan
/// does not implement): an adapter using one is refused rather than applied differently.
const PEFT_UNSUPPORTED: [&str; 19] = [
	"fan_in_fan_out",
	"use_dora",
	"lora_bias",
	"layers_to_transform",
	"layers_pattern",
	"layer_replication",
	"modules_to_save",
	"rank_pattern",
	"alpha_pattern",
	"exclude_modules",
	"target_parameters",
	"trainable_token_indices",
	"use_qalora",
	"alora_invocation_tokens",
	"use_bdlora",
	"arrow_config",
	"kasa_config",
	"monteclora_config",
	"velora_config",
];

/// Whether an option is left at its "off" value.
fn unset(value: &serde_json::Value) -> bool {
	match value {
		serde_json::Value::Null | serde_json::Value::Bool(false) => true,
		serde_json::Value::Object(o) => o.is_empty(),
		serde_json::Value::Array(a) => a.is_empty(),
		_ => false,
	}
}

impl PeftConfig {
	fn to_lora(&self) -> Result<LoraConfig, LoraError> {
		let refuse = |what: &str| Err(LoraError::PeftConfig(format!("{what} is not supported")));
		if self.peft_type != "LORA" {
			return Err(LoraError::PeftConfig(format!(
				"peft_type {:?}: only \"LORA\"",
				self.peft_type
			)));
		}
		if self.bias.as_deref().is_some_and(|b| b != "none") {
			return refuse("bias other than \"none\"");
		}
		if let Some(field) =
			PEFT_UNSUPPORTED.iter().find(|f| self.rest.get(**f).is_some_and(|v| !unset(v)))
		{
			return refuse(field);
		}
		// These initialisations rewrite the base weights (PiSSA, OLoRA and CorDA leave a
		// residual, LoftQ a quantised base): saved without peft's conversion, such an adapter
		// is only right on that modified base, not on the registered one.
		// Only initialisations known to leave the base alone pass (an allowlist: a name peft
		// adds later is refused until someone checks it).
		match self.rest.get("init_lora_weights") {
			None | Some(serde_json::Value::Null | serde_json::Value::Bool(_)) => {}
			Some(serde_json::Value::String(init))
				if ["gaussian", "eva", "orthogonal"].contains(&init.as_str()) => {}
			Some(init) => {
				return refuse(&format!("init_lora_weights {init} (it may modify the base)"))
			}
		}
		if self.rest.get("loftq_config").is_some_and(|v| !unset(v)) {
			return refuse("loftq_config");
		}
		// peft writes alpha as the user typed it: `16` and `16.0` are the same whole number.
		let whole = |a: f64| {
			(a.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&a)).then_some(a as u32)
		};
		let alpha = self.lora_alpha.as_f64().and_then(whole).ok_or_else(|| {
			LoraError::PeftConfig(format!(
				"lora_alpha {}: a whole number is expected",
				self.lora_alpha
			))
		})?;
		let targets = match &self.target_modules {
			// peft's shorthand for every linear layer but the head: all seven projections.
			serde_json::Value::String(s) if s == "all-linear" => LoraTarget::ALL.to_vec(),
			serde_json::Value::Array(names) => names
				.iter()
				.map(|n| {
					let name = n.as_str().unwrap_or_default();
					LoraTarget::from_module_name(name)
						.ok_or_else(|| LoraError::UnknownTarget(n.to_string()))
				})
				.collect::<Result<_, _>>()?,
			other => {
				return Err(LoraError::PeftConfig(format!(
					"target_modules {other}: a list of module names is expected"
				)))
			}
		};
		let lora = LoraConfig { rank: self.r, alpha, targets, rslora: self.use_rslora };
		lora.validate()?;
		Ok(LoraConfig { targets: lora.ordered_targets(), ..lora })
	}
}

/// Reads an adapter `peft` saved (`adapter_config.json`, `adapter_model.safetensors` in `f32`,
/// `bf16` or `f16`) for a base of `config`: its configuration and one adapter layer per block,
/// checked.
pub fn load_peft(
	dir: &Path,
	config: &ModelConfig,
) -> Result<(LoraConfig, Vec<LayerTensors>), LoraError> {
	let path = dir.join("adapter_config.json");
	let raw = std::fs::read(&path).map_err(|e| io(&path, e))?;
	let peft: PeftConfig =
		serde_json::from_slice(&raw).map_err(|e| LoraError::PeftConfig(e.to_string()))?;
	let lora = peft.to_lora()?;
	let path = dir.join("adapter_model.safetensors");
	let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
	let st = SafeTensors::deserialize(&bytes).map_err(|e| io(&path, e))?;
	let mut blocks: Vec<BTreeMap<String, NamedTensor>> =
		vec![BTreeMap::new(); config.num_hidden_layers];
	for (name, view) in st.tensors() {
		let stored = name.strip_prefix(PEFT_PREFIX).unwrap_or(&name);
		let tensor = |reason: String| LoraError::Tensor { name: name.clone(), reason };
		let block = stored
			.strip_prefix("model.layers.")
			.and_then(|rest| rest.split_once('.'))
			.and_then(|(i, _)| i.parse::<usize>().ok())
			.filter(|i| *i < config.num_hidden_layers)
			.ok_or_else(|| tensor("not an adapter of one of the base's blocks".into()))?;
		let values = super::hf::to_f32(view.dtype(), view.data()).map_err(tensor)?;
		let t = NamedTensor { name: stored.to_string(), shape: view.shape().to_vec(), values };
		if blocks[block].insert(t.name.clone(), t).is_some() {
			return Err(tensor("appears twice".into()));
		}
	}
	let adapters: Vec<LayerTensors> =
		blocks.into_iter().map(|b| b.into_values().collect()).collect();
	lora.check(config, &adapters)?;
	Ok((lora, adapters))
}

#[cfg(test)]
mod tests {
	use burn::{backend::Autodiff, tensor::Int};

	use super::*;

	#[test]
	fn the_chains_description_of_adapters_reads_back_as_given() {
		let some = LoraConfig {
			rank: 16,
			alpha: 32,
			targets: vec![LoraTarget::Q, LoraTarget::V, LoraTarget::Down],
			rslora: true,
		};
		for config in [LoraConfig::all_linear(4), some] {
			let params = config.to_params().unwrap();
			assert_eq!(params.check(), Ok(()));
			assert_eq!(LoraConfig::from_params(&params), config);
		}
		assert_eq!(LoraConfig::all_linear(8).to_params().unwrap().targets, LoraParams::ALL_TARGETS);
		let q_and_down = LoraParams { rank: 2, alpha: 2, targets: 0b100_0001, rslora: false };
		assert_eq!(
			LoraConfig::from_params(&q_and_down).targets,
			vec![LoraTarget::Q, LoraTarget::Down]
		);
		assert_eq!(
			LoraConfig { rank: 0, ..LoraConfig::all_linear(1) }.to_params(),
			Err(LoraError::Rank(0))
		);
	}

	use crate::{
		train::{self, Hyperparams},
		weights, CpuBackend,
	};

	type Ad = Autodiff<CpuBackend>;

	fn tokens<B: Backend>(batch: usize, len: usize) -> Tensor<B, 2, Int> {
		let values: Vec<i64> = (0..batch * len).map(|i| ((i * 37 + 11) % 256) as i64).collect();
		Tensor::from_data(TensorData::new(values, [batch, len]), &Default::default())
	}

	fn logits<B: Backend>(model: &Transformer<B>) -> Vec<f32> {
		model.forward(tokens(2, 9)).into_data().convert::<f32>().into_vec().unwrap()
	}

	/// Adapters whose `B` is not zero, so they change the output.
	fn busy_adapters(config: &ModelConfig, lora: &LoraConfig) -> Vec<LayerTensors> {
		let mut adapters = lora.init(config, 5).unwrap();
		for t in adapters.iter_mut().flatten() {
			for (i, v) in t.values.iter_mut().enumerate() {
				*v += ((i * 7919 % 101) as f32 / 101.0 - 0.5) * 0.05;
			}
		}
		adapters
	}

	#[test]
	fn configurations_no_consumer_could_apply_alike_are_refused() {
		let ok = LoraConfig::all_linear(8);
		assert_eq!(ok.validate(), Ok(()));
		assert_eq!(ok.scale(), 2.0);
		assert_eq!(LoraConfig { rslora: true, ..ok.clone() }.scale(), (16.0 / 8f64.sqrt()) as f32);
		for (bad, error) in [
			(LoraConfig { rank: 0, ..ok.clone() }, LoraError::Rank(0)),
			(LoraConfig { rank: MAX_RANK + 1, ..ok.clone() }, LoraError::Rank(MAX_RANK + 1)),
			(LoraConfig { alpha: 0, ..ok.clone() }, LoraError::Alpha),
			(LoraConfig { targets: vec![], ..ok.clone() }, LoraError::NoTargets),
			(
				LoraConfig {
					targets: vec![LoraTarget::V, LoraTarget::Q, LoraTarget::V],
					..ok.clone()
				},
				LoraError::DuplicateTarget("v_proj"),
			),
		] {
			assert_eq!(bad.validate(), Err(error));
		}
	}

	#[test]
	fn adapters_of_the_wrong_shape_names_or_values_are_refused() {
		let config = ModelConfig::tiny();
		let lora = LoraConfig {
			rank: 2,
			alpha: 4,
			targets: vec![LoraTarget::Q, LoraTarget::Down],
			rslora: false,
		};
		let good = lora.init(&config, 1).unwrap();
		assert_eq!(lora.check(&config, &good), Ok(()));
		assert_eq!(good[0].len(), 4);
		assert!(matches!(
			lora.check(&config, &good[..1]),
			Err(LoraError::BlockCount { expected: 2, got: 1 })
		));
		let mut missing = good.clone();
		missing[1].pop();
		assert!(matches!(lora.check(&config, &missing), Err(LoraError::Names { block: 1, .. })));
		let mut shape = good.clone();
		shape[0][0].shape.reverse();
		assert!(matches!(lora.check(&config, &shape), Err(LoraError::Tensor { .. })));
		let mut nan = good.clone();
		nan[1][2].values[3] = f32::NAN;
		assert!(
			matches!(lora.check(&config, &nan), Err(LoraError::Tensor { ref reason, .. }) if reason == "non-finite value")
		);
		// A model refuses them too, rather than panicking in burn.
		let model = Transformer::<CpuBackend>::init(&config, 1, &Default::default());
		assert!(attach(model, &config, &lora, &shape).is_err());
		// Adapters for another shape of model are refused too.
		let wider = ModelConfig { intermediate_size: 200, ..config.clone() };
		let model = Transformer::<CpuBackend>::init(&config, 1, &Default::default());
		let for_wider = lora.init(&wider, 1).unwrap();
		assert_eq!(
			attach(model, &wider, &lora, &for_wider).err(),
			Some(LoraError::BaseShape {
				name: "model.layers.0.mlp.down_proj.weight".into(),
				expected: [200, config.hidden_size],
				found: [config.intermediate_size, config.hidden_size],
			})
		);
	}

	#[test]
	fn fresh_adapters_leave_the_base_s_output_and_merged_ones_give_the_adapted_output() {
		let config = ModelConfig::tiny();
		let lora = LoraConfig::all_linear(4);
		let base = Transformer::<CpuBackend>::init(&config, 3, &Default::default());
		let base_layers = weights::export_layers(&base);
		let plain = logits(&base);
		let fresh = attach(base, &config, &lora, &lora.init(&config, 9).unwrap()).unwrap();
		assert_eq!(logits(&fresh), plain, "B = 0: the adapted model starts as its base");

		let adapters = busy_adapters(&config, &lora);
		let base = weights::import_layers::<CpuBackend>(&config, &base_layers, &Default::default())
			.unwrap();
		let adapted = attach(base, &config, &lora, &adapters).unwrap();
		assert_eq!(export_adapters(&adapted, &lora).unwrap(), adapters, "read back as given");
		let with_adapters = logits(&adapted);
		let merged = merge(&config, &lora, &base_layers, &adapters).unwrap();
		let merged =
			weights::import_layers::<CpuBackend>(&config, &merged, &Default::default()).unwrap();
		let merged = logits(&merged);
		let worst =
			merged.iter().zip(&with_adapters).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
		let moved =
			plain.iter().zip(&with_adapters).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
		assert!(worst <= 1e-5, "merged vs adapters: {worst}");
		assert!(moved > 1e-3, "the adapters change the output ({moved})");
	}

	#[test]
	fn training_adapters_leaves_the_base_untouched_and_is_deterministic() {
		let config = ModelConfig::tiny();
		let lora = LoraConfig {
			rank: 4,
			alpha: 8,
			targets: vec![LoraTarget::Q, LoraTarget::V, LoraTarget::Up],
			rslora: false,
		};
		let base_layers = crate::init_layers(&config, 7);
		let data: Vec<i64> = b"the quick brown fox jumps over the lazy dog. "
			.repeat(40)
			.into_iter()
			.map(i64::from)
			.collect();
		let hp = Hyperparams {
			steps: 12,
			batch_size: 2,
			seq_len: 16,
			learning_rate: 1e-2,
			..Default::default()
		};
		let run = || {
			let device = Default::default();
			let base = weights::import_layers::<Ad>(&config, &base_layers, &device).unwrap();
			let model = attach(base, &config, &lora, &lora.init(&config, 11).unwrap()).unwrap();
			let mut losses = vec![];
			let model = train::train(model, &data, &hp, 3, &device, |_, l| losses.push(l));
			(model, losses)
		};
		let (model, losses) = run();
		assert!(losses.last() < losses.first(), "{losses:?}");
		assert_eq!(weights::export_layers(&model), base_layers, "the base is frozen");
		let trained = export_adapters(&model, &lora).unwrap();
		assert_ne!(trained, lora.init(&config, 11).unwrap());
		let (again, _) = run();
		assert_eq!(export_adapters(&again, &lora).unwrap(), trained, "same bits twice");
		// The adapters are a few percent of this tiny base (far less of a real one).
		let base_values: usize = base_layers.iter().flatten().map(|t| t.values.len()).sum();
		assert!(lora.parameter_count(&config) * 20 < base_values);
	}

	fn write_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
		let path = dir.join("adapter_config.json");
		let mut v: serde_json::Value =
			serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
		edit(&mut v);
		std::fs::write(path, v.to_string()).unwrap();
	}

	#[test]
	fn peft_files_round_trip_and_what_peft_could_mean_otherwise_is_refused() {
		let config = ModelConfig::tiny();
		let lora = LoraConfig {
			rank: 3,
			alpha: 5,
			targets: vec![LoraTarget::O, LoraTarget::Gate],
			rslora: true,
		};
		let adapters = busy_adapters(&config, &lora);
		let dir = tempfile::tempdir().unwrap();
		save_peft(dir.path(), &lora, &config, &adapters, Some("base")).unwrap();
		assert_eq!(load_peft(dir.path(), &config).unwrap(), (lora.clone(), adapters.clone()));

		for (field, value, error) in [
			("peft_type", serde_json::json!("IA3"), "peft_type \"IA3\": only \"LORA\""),
			("bias", serde_json::json!("all"), "bias other than \"none\" is not supported"),
			("use_dora", serde_json::json!(true), "use_dora is not supported"),
			("rank_pattern", serde_json::json!({"q_proj": 8}), "rank_pattern is not supported"),
			("lora_alpha", serde_json::json!(2.5), "lora_alpha 2.5: a whole number is expected"),
			(
				"target_modules",
				serde_json::json!(".*proj"),
				"target_modules \".*proj\": a list of module names is expected",
			),
			(
				"init_lora_weights",
				serde_json::json!("pissa_niter_4"),
				"init_lora_weights \"pissa_niter_4\" (it may modify the base) is not supported",
			),
			// Another spelling of peft's "olora": the old blocklist of exact names let it through.
			(
				"init_lora_weights",
				serde_json::json!("OLoRA"),
				"init_lora_weights \"OLoRA\" (it may modify the base) is not supported",
			),
			("loftq_config", serde_json::json!({"loftq_bits": 4}), "loftq_config is not supported"),
		] {
			let bad = tempfile::tempdir().unwrap();
			save_peft(bad.path(), &lora, &config, &adapters, None).unwrap();
			write_config(bad.path(), |v| v[field] = value);
			assert_eq!(
				load_peft(bad.path(), &config),
				Err(LoraError::PeftConfig(error.into())),
				"{field}"
			);
		}
		// What leaves the base alone loads: alpha written as a float, a plain initialisation.
		let fine = tempfile::tempdir().unwrap();
		save_peft(fine.path(), &lora, &config, &adapters, None).unwrap();
		write_config(fine.path(), |v| {
			v["lora_alpha"] = serde_json::json!(5.0);
			v["init_lora_weights"] = serde_json::json!("gaussian");
		});
		assert_eq!(load_peft(fine.path(), &config).unwrap(), (lora.clone(), adapters.clone()));
		let bad = tempfile::tempdir().unwrap();
		save_peft(bad.path(), &lora, &config, &adapters, None).unwrap();
		write_config(bad.path(), |v| {
			v["target_modules"] = serde_json::json!(["o_proj", "lm_head"])
		});
		assert_eq!(
			load_peft(bad.path(), &config),
			Err(LoraError::UnknownTarget("\"lm_head\"".into()))
		);
		// The file holds other targets than the configuration says.
		write_config(bad.path(), |v| v["target_modules"] = serde_json::json!(["o_proj"]));
		assert!(matches!(load_peft(bad.path(), &config), Err(LoraError::Names { block: 0, .. })));
		// A model with more blocks than the adapters have.
		let deeper = ModelConfig { num_hidden_layers: 3, ..config.clone() };
		assert!(matches!(load_peft(dir.path(), &deeper), Err(LoraError::Names { block: 2, .. })));
		// Files missing or not what they should be.
		std::fs::write(bad.path().join("adapter_model.safetensors"), b"nonsense").unwrap();
		assert!(matches!(load_peft(bad.path(), &config), Err(LoraError::Io { .. })));
		std::fs::remove_file(bad.path().join("adapter_config.json")).unwrap();
		assert!(matches!(load_peft(bad.path(), &config), Err(LoraError::Io { .. })));
	}
}
