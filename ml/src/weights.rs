//! Weights as the registry sees them: one safetensors file per layer (Hugging Face Qwen3 tensor
//! names, linear weights `[out, in]`), each under a Merkle root over its tensors' `f32` values,
//! and a weight-set root over the layer roots. Files are `f32`; the layers of a bf16 checkpoint
//! are stored as `bf16` ([`encode_layer_bf16_where_exact`]), half the bytes, which decode to the
//! same `f32` bits, so the roots, training and evaluation never see the difference. Decoding
//! takes both.
//!
//! Layers: `0` = token embedding, `1..=n` = decoder block `i - 1`, `n + 1` = final norm and head.

use std::collections::BTreeMap;

use burn::{
	module::Param,
	nn::{Embedding, Linear, RmsNorm},
	tensor::{backend::Backend, Tensor, TensorData},
};
use rs_merkle::{Hasher, MerkleTree};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use super::model::{rms_norm, rope_tables, Attention, DecoderBlock, Mlp, ModelConfig, Transformer};
use super::portable::gemm::{Strips, Widen};

/// One named tensor, row-major `f32`.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
	pub name: String,
	pub shape: Vec<usize>,
	pub values: Vec<f32>,
}

/// A layer's tensors, sorted by name.
pub type LayerTensors = Vec<NamedTensor>;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
	#[error("layer {layer}: not a safetensors file: {reason}")]
	Format { layer: usize, reason: String },
	#[error("layer {layer}: tensor {name}: {reason}")]
	Tensor { layer: usize, name: String, reason: String },
	#[error("layer {layer}: expected tensors {expected:?}, found {found:?}")]
	Names { layer: usize, expected: Vec<String>, found: Vec<String> },
	#[error("expected {expected} layers, got {got}")]
	LayerCount { expected: usize, got: usize },
	#[error("{0}")]
	State(String),
}

/// blake2-256, the chain's hash, for Merkle trees.
#[derive(Clone)]
pub struct Blake2;

impl Hasher for Blake2 {
	type Hash = [u8; 32];
	fn hash(data: &[u8]) -> [u8; 32] {
		sp_crypto_hashing::blake2_256(data)
	}
}

/// Leaf of a tensor: `blake2(name ‖ 0 ‖ dims as u64 LE ‖ values as f32 LE)`.
fn tensor_leaf(tensor: &NamedTensor) -> [u8; 32] {
	let mut bytes = Vec::with_capacity(
		tensor.name.len() + 1 + 8 * tensor.shape.len() + 4 * tensor.values.len(),
	);
	bytes.extend_from_slice(tensor.name.as_bytes());
	bytes.push(0);
	for dim in &tensor.shape {
		bytes.extend_from_slice(&(*dim as u64).to_le_bytes());
	}
	for v in &tensor.values {
		bytes.extend_from_slice(&v.to_le_bytes());
	}
	Blake2::hash(&bytes)
}

fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
	MerkleTree::<Blake2>::from_leaves(leaves).root().unwrap_or([0; 32])
}

/// The Merkle root the registry stores for a layer.
pub fn layer_root(tensors: &LayerTensors) -> [u8; 32] {
	merkle_root(&tensors.iter().map(tensor_leaf).collect::<Vec<_>>())
}

/// The registry's weight-set root: over the layer roots, in layer order.
pub fn weight_root(layer_roots: &[[u8; 32]]) -> [u8; 32] {
	merkle_root(layer_roots)
}

/// Whether every value of `values` is a `bf16` exactly (bit for bit, signed zeros included; a
/// NaN is kept as `f32`, whose payload `bf16` may not hold).
pub fn is_bf16_exact(values: &[f32]) -> bool {
	// A bf16 is the upper half of an f32: the value is one exactly when the lower half is zero.
	values.iter().all(|v| v.to_bits() & 0xffff == 0 && !v.is_nan())
}

/// The safetensors bytes of a layer in `f32` (deterministic: no metadata, tensors in name order).
pub fn encode_layer(tensors: &LayerTensors) -> Vec<u8> {
	encode(tensors, false)
}

/// As [`encode_layer`], each tensor whose values a `bf16` holds exactly stored as `bf16`: for the
/// layers of a bf16 checkpoint (a worker older than `bf16` decoding cannot read them, so models
/// in `f32` keep `f32` files, norms of ones included).
pub fn encode_layer_bf16_where_exact(tensors: &LayerTensors) -> Vec<u8> {
	encode(tensors, true)
}

fn encode(tensors: &LayerTensors, bf16_where_exact: bool) -> Vec<u8> {
	let bytes: Vec<(String, Dtype, Vec<u8>, Vec<usize>)> = tensors
		.iter()
		.map(|t| {
			let (dtype, data) = if bf16_where_exact && is_bf16_exact(&t.values) {
				let data =
					t.values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect();
				(Dtype::BF16, data)
			} else {
				(Dtype::F32, t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
			};
			(t.name.clone(), dtype, data, t.shape.clone())
		})
		.collect();
	let views: BTreeMap<String, TensorView<'_>> = bytes
		.iter()
		.map(|(name, dtype, data, shape)| {
			let view = TensorView::new(*dtype, shape.clone(), data)
				.expect("shape and byte length agree by construction");
			(name.clone(), view)
		})
		.collect();
	safetensors::serialize(views, None).expect("serialising in-memory tensors cannot fail")
}

/// Parses a layer file; any malformed content is an error, never a panic.
pub fn decode_layer(layer: usize, bytes: &[u8]) -> Result<LayerTensors, WeightsError> {
	let file = SafeTensors::deserialize(bytes)
		.map_err(|e| WeightsError::Format { layer, reason: e.to_string() })?;
	let mut tensors = Vec::new();
	for (name, view) in file.tensors() {
		let values = match view.dtype() {
			Dtype::F32 => view
				.data()
				.chunks_exact(4)
				.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
				.collect(),
			Dtype::BF16 => view
				.data()
				.chunks_exact(2)
				.map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
				.collect(),
			other => {
				return Err(WeightsError::Tensor {
					layer,
					name,
					reason: format!("dtype {other:?}, expected F32 or BF16"),
				})
			}
		};
		tensors.push(NamedTensor { name, shape: view.shape().to_vec(), values });
	}
	tensors.sort_by(|a, b| a.name.cmp(&b.name));
	Ok(tensors)
}

/// Names and shapes each layer must have under `config`, sorted by name.
pub fn expected_layout(config: &ModelConfig, layer: usize) -> Vec<(String, Vec<usize>)> {
	let h = config.hidden_size;
	let (q, kv, d) = (
		config.num_attention_heads * config.head_dim,
		config.num_key_value_heads * config.head_dim,
		config.head_dim,
	);
	let n = config.num_hidden_layers;
	let mut layout: Vec<(String, Vec<usize>)> = if layer == 0 {
		vec![("model.embed_tokens.weight".into(), vec![config.vocab_size, h])]
	} else if layer == n + 1 {
		vec![
			("lm_head.weight".into(), vec![config.vocab_size, h]),
			("model.norm.weight".into(), vec![h]),
		]
	} else {
		let p = format!("model.layers.{}", layer - 1);
		vec![
			(format!("{p}.input_layernorm.weight"), vec![h]),
			(format!("{p}.mlp.down_proj.weight"), vec![h, config.intermediate_size]),
			(format!("{p}.mlp.gate_proj.weight"), vec![config.intermediate_size, h]),
			(format!("{p}.mlp.up_proj.weight"), vec![config.intermediate_size, h]),
			(format!("{p}.post_attention_layernorm.weight"), vec![h]),
			(format!("{p}.self_attn.k_norm.weight"), vec![d]),
			(format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
			(format!("{p}.self_attn.o_proj.weight"), vec![h, q]),
			(format!("{p}.self_attn.q_norm.weight"), vec![d]),
			(format!("{p}.self_attn.q_proj.weight"), vec![q, h]),
			(format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
		]
	};
	layout.sort();
	layout
}

/// The most bytes a layer's safetensors file can take: its `f32` values plus a generous header.
pub fn max_layer_bytes(config: &ModelConfig, layer: usize) -> usize {
	max_layout_bytes(&expected_layout(config, layer))
}

/// The most bytes a safetensors file of tensors named and shaped as `layout` can take (a
/// layer's, or a block's adapters'): their `f32` values plus a generous header.
pub fn max_layout_bytes(layout: &[(String, Vec<usize>)]) -> usize {
	let values: usize = layout.iter().map(|(_, shape)| shape.iter().product::<usize>()).sum();
	values.saturating_mul(4).saturating_add(1 << 16)
}

/// Checks a decoded layer against the layout its config requires.
pub fn check_layout(
	config: &ModelConfig,
	layer: usize,
	tensors: &LayerTensors,
) -> Result<(), WeightsError> {
	let expected = expected_layout(config, layer);
	let found: Vec<(String, Vec<usize>)> =
		tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
	if expected != found {
		return Err(WeightsError::Names {
			layer,
			expected: expected.into_iter().map(|(n, s)| format!("{n}{s:?}")).collect(),
			found: found.into_iter().map(|(n, s)| format!("{n}{s:?}")).collect(),
		});
	}
	for t in tensors {
		if t.values.iter().any(|v| !v.is_finite()) {
			return Err(WeightsError::Tensor {
				layer,
				name: t.name.clone(),
				reason: "non-finite value".into(),
			});
		}
	}
	Ok(())
}

fn values<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
	tensor.into_data().convert::<f32>().into_vec::<f32>().expect("an f32 tensor converts to f32")
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major (burn's linear `[in, out]` ↔ HF `[out, in]`).
pub(crate) fn transpose<T: Copy + Default>(values: &[T], rows: usize, cols: usize) -> Vec<T> {
	// In square tiles, so reads and writes both stay within a few cache lines: the plain double
	// loop writes one value per cache line, which made it most of a 0.6 B model's load time.
	const TILE: usize = 32;
	let mut out = vec![T::default(); values.len()];
	for r0 in (0..rows).step_by(TILE) {
		for c0 in (0..cols).step_by(TILE) {
			for r in r0..(r0 + TILE).min(rows) {
				for c in c0..(c0 + TILE).min(cols) {
					out[c * rows + r] = values[r * cols + c];
				}
			}
		}
	}
	out
}

fn linear_out<B: Backend>(name: String, linear: &Linear<B>) -> NamedTensor {
	let [d_in, d_out] = linear.weight.val().dims();
	NamedTensor {
		name,
		shape: vec![d_out, d_in],
		values: transpose(&values(linear.weight.val()), d_in, d_out),
	}
}

fn vector<B: Backend>(name: String, param: &Param<Tensor<B, 1>>) -> NamedTensor {
	let v = values(param.val());
	NamedTensor { name, shape: vec![v.len()], values: v }
}

fn sorted(mut tensors: LayerTensors) -> LayerTensors {
	tensors.sort_by(|a, b| a.name.cmp(&b.name));
	tensors
}

/// Every layer of a model, as the registry stores them.
pub fn export_layers<B: Backend>(model: &Transformer<B>) -> Vec<LayerTensors> {
	let mut layers = Vec::with_capacity(model.layers.len() + 2);
	let embed = model.embed_tokens.weight.val();
	let shape = embed.dims().to_vec();
	layers.push(vec![NamedTensor {
		name: "model.embed_tokens.weight".into(),
		shape,
		values: values(embed),
	}]);
	for (i, block) in model.layers.iter().enumerate() {
		let p = format!("model.layers.{i}");
		let a = &block.self_attn;
		layers.push(sorted(vec![
			vector(format!("{p}.input_layernorm.weight"), &block.input_layernorm.gamma),
			vector(
				format!("{p}.post_attention_layernorm.weight"),
				&block.post_attention_layernorm.gamma,
			),
			linear_out(format!("{p}.self_attn.q_proj.weight"), &a.q_proj),
			linear_out(format!("{p}.self_attn.k_proj.weight"), &a.k_proj),
			linear_out(format!("{p}.self_attn.v_proj.weight"), &a.v_proj),
			linear_out(format!("{p}.self_attn.o_proj.weight"), &a.o_proj),
			vector(format!("{p}.self_attn.q_norm.weight"), &a.q_norm.gamma),
			vector(format!("{p}.self_attn.k_norm.weight"), &a.k_norm.gamma),
			linear_out(format!("{p}.mlp.gate_proj.weight"), &block.mlp.gate_proj),
			linear_out(format!("{p}.mlp.up_proj.weight"), &block.mlp.up_proj),
			linear_out(format!("{p}.mlp.down_proj.weight"), &block.mlp.down_proj),
		]));
	}
	layers.push(sorted(vec![
		linear_out("lm_head.weight".into(), &model.lm_head),
		vector("model.norm.weight".into(), &model.norm.gamma),
	]));
	layers
}

/// Builds a model from checked layers (see [`check_layout`]).
pub fn import_layers<B: Backend>(
	config: &ModelConfig,
	layers: &[LayerTensors],
	device: &B::Device,
) -> Result<Transformer<B>, WeightsError> {
	if layers.len() != config.layer_count() {
		return Err(WeightsError::LayerCount { expected: config.layer_count(), got: layers.len() });
	}
	for (i, layer) in layers.iter().enumerate() {
		check_layout(config, i, layer)?;
	}
	// Built from the layers directly (no random skeleton drawn only to be overwritten).
	let (norm, lm_head) = import_head(config, &layers[config.num_hidden_layers + 1], device);
	let (rope_cos, rope_sin) = rope_tables(config, device);
	Ok(Transformer {
		embed_tokens: import_embedding(&layers[0], device),
		layers: (0..config.num_hidden_layers)
			.map(|i| import_block(config, i, &layers[i + 1], device))
			.collect(),
		norm,
		lm_head,
		rope_cos,
		rope_sin,
	})
}

pub(crate) fn find<'a>(layer: &'a LayerTensors, name: &str) -> &'a NamedTensor {
	layer.iter().find(|t| t.name == name).expect("layout checked by the caller")
}

fn vec1<B: Backend>(t: &NamedTensor, device: &B::Device) -> Param<Tensor<B, 1>> {
	Param::from_data(TensorData::new(t.values.clone(), [t.values.len()]), device)
}

pub(crate) fn lin<B: Backend>(t: &NamedTensor, device: &B::Device) -> Linear<B> {
	let (d_out, d_in) = (t.shape[0], t.shape[1]);
	Linear {
		weight: Param::from_data(
			TensorData::new(transpose(&t.values, d_out, d_in), [d_in, d_out]),
			device,
		),
		bias: None,
	}
}

/// A linear weight `[out, in]` as the `[in, out]` matrix (what [`lin`] gives burn) laid out in
/// strips for decoding, each value mapped by `element`.
pub(crate) fn transposed_strips<T: Widen>(
	t: &NamedTensor,
	element: impl Fn(f32) -> T + Sync,
) -> Strips<T> {
	let d_in = t.shape[1];
	// Element (p, j) of `[in, out]` is `t[j][p]`.
	Strips::from_fn(d_in, t.shape[0], |p, j| element(t.values[j * d_in + p]))
}

/// [`transposed_strips`] as `bf16` bits, if every value is a `bf16` exactly (a bf16
/// checkpoint's weights are): the upper half of each f32.
pub(crate) fn bf16_weight(t: &NamedTensor) -> Option<Strips<u16>> {
	is_bf16_exact(&t.values).then(|| transposed_strips(t, |v| (v.to_bits() >> 16) as u16))
}

pub(crate) fn norm<B: Backend>(
	config: &ModelConfig,
	t: &NamedTensor,
	device: &B::Device,
) -> RmsNorm<B> {
	let mut norm = rms_norm(t.values.len(), config.rms_norm_eps, device);
	norm.gamma = vec1(t, device);
	norm
}

/// The embedding from a checked layer 0.
pub fn import_embedding<B: Backend>(layer: &LayerTensors, device: &B::Device) -> Embedding<B> {
	let t = find(layer, "model.embed_tokens.weight");
	Embedding {
		weight: Param::from_data(
			TensorData::new(t.values.clone(), [t.shape[0], t.shape[1]]),
			device,
		),
	}
}

/// Decoder block `block` from its checked layer (registry layer `block + 1`).
pub fn import_block<B: Backend>(
	config: &ModelConfig,
	block: usize,
	layer: &LayerTensors,
	device: &B::Device,
) -> DecoderBlock<B> {
	let p = format!("model.layers.{block}");
	let get = |name: &str| find(layer, &format!("{p}.{name}"));
	DecoderBlock {
		input_layernorm: norm(config, get("input_layernorm.weight"), device),
		self_attn: Attention {
			q_proj: lin(get("self_attn.q_proj.weight"), device),
			k_proj: lin(get("self_attn.k_proj.weight"), device),
			v_proj: lin(get("self_attn.v_proj.weight"), device),
			o_proj: lin(get("self_attn.o_proj.weight"), device),
			q_norm: norm(config, get("self_attn.q_norm.weight"), device),
			k_norm: norm(config, get("self_attn.k_norm.weight"), device),
			q_lora: None,
			k_lora: None,
			v_lora: None,
			o_lora: None,
			num_heads: config.num_attention_heads,
			num_kv_heads: config.num_key_value_heads,
			head_dim: config.head_dim,
		},
		post_attention_layernorm: norm(config, get("post_attention_layernorm.weight"), device),
		mlp: Mlp {
			gate_proj: lin(get("mlp.gate_proj.weight"), device),
			up_proj: lin(get("mlp.up_proj.weight"), device),
			down_proj: lin(get("mlp.down_proj.weight"), device),
			gate_lora: None,
			up_lora: None,
			down_lora: None,
		},
	}
}

/// The final norm and the head from the checked last layer.
pub fn import_head<B: Backend>(
	config: &ModelConfig,
	layer: &LayerTensors,
	device: &B::Device,
) -> (RmsNorm<B>, Linear<B>) {
	(
		norm(config, find(layer, "model.norm.weight"), device),
		lin(find(layer, "lm_head.weight"), device),
	)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn tensor(name: &str, values: Vec<f32>) -> NamedTensor {
		NamedTensor { name: name.into(), shape: vec![values.len()], values }
	}

	#[test]
	fn transpose_moves_every_value_for_shapes_off_the_tile_size() {
		for (rows, cols) in [(1, 1), (1, 70), (33, 5), (64, 96), (65, 31)] {
			let values: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
			let out = transpose(&values, rows, cols);
			for r in 0..rows {
				for c in 0..cols {
					assert_eq!(
						out[c * rows + r],
						values[r * cols + c],
						"{rows}x{cols} at ({r}, {c})"
					);
				}
			}
		}
	}

	#[test]
	fn tensors_whose_values_are_bf16_are_stored_as_bf16_and_decode_to_the_same_bits() {
		let bf16 = |v: f32| half::bf16::from_f32(v).to_f32();
		let exact: Vec<f32> = (0..4096).map(|i| bf16((i as f32 * 0.37).sin() * 0.02)).collect();
		let mut inexact = exact.clone();
		inexact[4095] = 0.1; // between two bf16s
		let layer = vec![
			tensor("a", exact.clone()),
			tensor("b", vec![-0.0, 0.0, 1.0, f32::INFINITY, f32::MIN_POSITIVE]),
		];
		assert!(SafeTensors::deserialize(&encode_layer(&layer))
			.unwrap()
			.tensors()
			.iter()
			.all(|(_, v)| v.dtype() == Dtype::F32));
		let bytes = encode_layer_bf16_where_exact(&layer);
		let all_f32 = 4 * (4096 + 5);
		assert!(
			bytes.len() < all_f32 * 6 / 10,
			"{} bytes, not about half of {all_f32}",
			bytes.len()
		);
		let decoded = decode_layer(0, &bytes).unwrap();
		for (d, l) in decoded.iter().zip(&layer) {
			assert_eq!(
				d.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
				l.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
			);
		}
		assert_eq!(layer_root(&decoded), layer_root(&layer));

		// One value bf16 cannot hold keeps its tensor in f32 (the other stays bf16); a NaN with
		// a payload bf16 would lose is kept in f32 too.
		let nan = f32::from_bits(0x7fc0_0001);
		let layer = vec![tensor("a", inexact.clone()), tensor("b", vec![nan]), tensor("c", exact)];
		let file = encode_layer_bf16_where_exact(&layer);
		let st = SafeTensors::deserialize(&file).unwrap();
		assert_eq!(st.tensor("a").unwrap().dtype(), Dtype::F32);
		assert_eq!(st.tensor("b").unwrap().dtype(), Dtype::F32);
		assert_eq!(st.tensor("c").unwrap().dtype(), Dtype::BF16);
		let decoded = decode_layer(0, &file).unwrap();
		assert_eq!(decoded[0].values, inexact);
		assert_eq!(decoded[1].values[0].to_bits(), nan.to_bits());
		assert_eq!(layer_root(&decoded), layer_root(&layer));
	}

	#[test]
	fn other_dtypes_are_refused() {
		let data = vec![0u8; 8];
		let view = TensorView::new(Dtype::F16, vec![4], &data).unwrap();
		let file = safetensors::serialize([("w".to_string(), view)], None).unwrap();
		assert!(matches!(
			decode_layer(3, &file),
			Err(WeightsError::Tensor { layer: 3, ref name, .. }) if name == "w"
		));
	}
}
