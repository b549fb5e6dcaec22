//! Inference over a span of a model's registry layers, with a KV cache per session: the unit a
//! pipeline stage runs. Layer 0 (the embedding) takes token ids, the last layer (final norm and
//! head) gives logits; every span in between passes hidden states `[seq, hidden]` on. A whole
//! model is the span `[0, layer_count)`, so one server and a chain of stages run exactly the
//! same computations in the same order, and give the same bits.

use burn::{
	nn::{Embedding, Linear, RmsNorm},
	tensor::{activation::softmax, backend::Backend, Bool, Int, Tensor, TensorData},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::{
	model::{apply_rope, repeat_kv, rope_tables, rotate, DecoderBlock, ModelConfig, Transformer},
	portable::{gemm, math, PortableCpu},
	weights::{self, LayerTensors, NamedTensor, WeightsError},
};

/// What flows between stages.
#[derive(Clone, Debug, PartialEq)]
pub enum Activations {
	/// Token ids, into the embedding.
	Tokens(Vec<u32>),
	/// Hidden states, `rows × hidden` row-major.
	Hidden { rows: usize, values: Vec<f32> },
	/// Logits of the chunk's last position (out of the head).
	Logits(Vec<f32>),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StageError {
	#[error("this stage takes {expected}, got {got}")]
	WrongInput { expected: &'static str, got: &'static str },
	#[error("empty input")]
	Empty,
	#[error("hidden states of width {got}, the model's is {expected}")]
	Width { expected: usize, got: usize },
	#[error("token {0} outside the vocabulary")]
	Token(u32),
	#[error("session holds {cached} positions, the chunk starts at {position}")]
	Position { cached: usize, position: usize },
	#[error("context of {0} positions exceeds the model's maximum")]
	TooLong(usize),
	#[error("the stage's model thread stopped")]
	Stopped,
	#[error("the stage serves as many sessions as it can")]
	Busy,
}

impl Activations {
	/// Positions carried (logits: none; they are the answer, not a chunk).
	pub fn rows(&self) -> usize {
		match self {
			Activations::Tokens(t) => t.len(),
			Activations::Hidden { rows, .. } => *rows,
			Activations::Logits(_) => 0,
		}
	}

	fn kind(&self) -> &'static str {
		match self {
			Activations::Tokens(_) => "tokens",
			Activations::Hidden { .. } => "hidden states",
			Activations::Logits(_) => "logits",
		}
	}
}

/// One block's cached keys and values.
enum BlockCache<B: Backend> {
	/// `[1, kv_heads, positions, head_dim]` on the backend's device.
	Tensors { keys: Tensor<B, 4>, values: Tensor<B, 4> },
	/// On the portable CPU: plain memory with room to grow, so a decoding step writes its own
	/// position instead of copying the whole cache, and the products read it in place.
	Cpu(CpuKv),
}

/// A block's keys and values on the portable CPU, `len` positions of `capacity`: the keys
/// transposed (KV head `g` is a `head_dim × capacity` row-major matrix, `keys[(g·head_dim + d)
/// ·capacity + t]`, so the scores' product reads runs of positions) and the values as rows
/// (`values[(g·capacity + t)·head_dim + d]`).
struct CpuKv {
	keys: Vec<f32>,
	values: Vec<f32>,
	kv_heads: usize,
	dim: usize,
	capacity: usize,
	len: usize,
}

impl CpuKv {
	fn new(kv_heads: usize, dim: usize) -> Self {
		Self { keys: Vec::new(), values: Vec::new(), kv_heads, dim, capacity: 0, len: 0 }
	}

	/// Appends `seq` positions: `k` and `v` are `[seq, kv_heads, head_dim]`. Room grows by
	/// doubling, so a session's appends copy the cache O(log positions) times, not every step.
	fn append(&mut self, k: &[f32], v: &[f32], seq: usize) {
		let (heads, dim, len) = (self.kv_heads, self.dim, self.len);
		if len + seq > self.capacity {
			let capacity = (len + seq).max(2 * self.capacity).max(16);
			let mut keys = vec![0.0; heads * dim * capacity];
			let mut values = vec![0.0; heads * capacity * dim];
			for g in 0..heads {
				for d in 0..dim {
					let (from, to) = ((g * dim + d) * self.capacity, (g * dim + d) * capacity);
					keys[to..to + len].copy_from_slice(&self.keys[from..from + len]);
				}
				let (from, to) = (g * self.capacity * dim, g * capacity * dim);
				values[to..to + len * dim].copy_from_slice(&self.values[from..from + len * dim]);
			}
			(self.keys, self.values, self.capacity) = (keys, values, capacity);
		}
		let capacity = self.capacity;
		for g in 0..heads {
			for i in 0..seq {
				let row = (i * heads + g) * dim;
				for d in 0..dim {
					self.keys[(g * dim + d) * capacity + len + i] = k[row + d];
				}
				let to = (g * capacity + len + i) * dim;
				self.values[to..to + dim].copy_from_slice(&v[row..row + dim]);
			}
		}
		self.len += seq;
	}
}

/// A session's cache at one stage: per block of the span, and how many positions it holds.
pub struct KvCache<B: Backend> {
	blocks: Vec<Option<BlockCache<B>>>,
	positions: usize,
}

impl<B: Backend> KvCache<B> {
	pub fn positions(&self) -> usize {
		self.positions
	}
}

/// One of a stage's linear projections (no bias: Qwen3 has none).
enum Proj<B: Backend> {
	/// burn's linear, on any backend.
	Linear(Linear<B>),
	/// On the portable CPU, the weight `[d_in, d_out]` laid out in [`gemm::Strips`] for the
	/// portable kernel: a decoding step keeps its outputs in registers while the weight streams
	/// by once. The bits of burn's linear on the same backend.
	F32(gemm::Strips<f32>),
	/// As [`Proj::F32`], for a weight whose values are all `bf16` (a bf16 checkpoint's), kept as
	/// `bf16` bits that the kernel widens exactly: the same bits, half the bytes read per token.
	Bf16(gemm::Strips<u16>),
}

impl<B: Backend> Proj<B> {
	/// `strips`: on the portable CPU, the weight is laid out for its kernel.
	fn import(t: &NamedTensor, strips: bool, device: &B::Device) -> Self {
		if !strips {
			return Proj::Linear(weights::lin(t, device));
		}
		match weights::bf16_weight(t) {
			Some(weight) => Proj::Bf16(weight),
			None => Proj::F32(weights::transposed_strips(t, |v| v)),
		}
	}

	fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
		match self {
			Proj::Linear(linear) => linear.forward(x),
			_ => {
				let [out] = project([self], x);
				out
			}
		}
	}
}

/// `x` (rows of `d_in` values) times `weight` by the portable kernel.
fn strips_product<T: gemm::Widen>(x: &[f32], weight: &gemm::Strips<T>) -> Vec<f32> {
	let (d_in, d_out) = (weight.k(), weight.n());
	let m = x.len() / d_in;
	let mut out = vec![0.0f32; m * d_out];
	gemm::batched_matmul(&mut out, 1, m, d_in, d_out, |_| {
		(gemm::Mat::row_major(x, d_in), weight.mat())
	});
	out
}

/// `x` through each of `projs`. On the portable CPU `x`'s values are read out once for all of
/// them: the tensor is taken, not shared, so they come out without a copy (burn-ndarray
/// gathers a shared tensor's values element by element).
fn project<B: Backend, const N: usize>(projs: [&Proj<B>; N], x: Tensor<B, 3>) -> [Tensor<B, 3>; N] {
	if projs.iter().any(|p| matches!(p, Proj::Linear(_))) {
		return projs.map(|p| p.forward(x.clone()));
	}
	let [batch, seq, _] = x.dims();
	let device = x.device();
	let a = values(x);
	projs.map(|p| {
		let out = match p {
			Proj::F32(weight) => strips_product(&a, weight),
			Proj::Bf16(weight) => strips_product(&a, weight),
			Proj::Linear(_) => unreachable!("checked above"),
		};
		let d_out = out.len() / (batch * seq);
		Tensor::from_data(TensorData::new(out, [batch, seq, d_out]), &device)
	})
}

/// A decoder block as a stage runs it: the model's block, its projections [`Proj`]s.
struct StageBlock<B: Backend> {
	input_layernorm: RmsNorm<B>,
	post_attention_layernorm: RmsNorm<B>,
	q_norm: RmsNorm<B>,
	k_norm: RmsNorm<B>,
	q_proj: Proj<B>,
	k_proj: Proj<B>,
	v_proj: Proj<B>,
	o_proj: Proj<B>,
	gate_proj: Proj<B>,
	up_proj: Proj<B>,
	down_proj: Proj<B>,
	num_heads: usize,
	num_kv_heads: usize,
	head_dim: usize,
	/// On the portable CPU: attention over a [`CpuKv`] (else over tensors, on any backend).
	cpu_attention: bool,
}

impl<B: Backend> StageBlock<B> {
	/// Block `block` from its checked layer (registry layer `block + 1`).
	fn import(
		config: &ModelConfig,
		block: usize,
		layer: &LayerTensors,
		strips: bool,
		device: &B::Device,
	) -> Self {
		let p = format!("model.layers.{block}");
		let get = |name: &str| weights::find(layer, &format!("{p}.{name}"));
		let proj = |name: &str| Proj::import(get(name), strips, device);
		let norm = |name: &str| weights::norm(config, get(name), device);
		Self {
			input_layernorm: norm("input_layernorm.weight"),
			post_attention_layernorm: norm("post_attention_layernorm.weight"),
			q_norm: norm("self_attn.q_norm.weight"),
			k_norm: norm("self_attn.k_norm.weight"),
			q_proj: proj("self_attn.q_proj.weight"),
			k_proj: proj("self_attn.k_proj.weight"),
			v_proj: proj("self_attn.v_proj.weight"),
			o_proj: proj("self_attn.o_proj.weight"),
			gate_proj: proj("mlp.gate_proj.weight"),
			up_proj: proj("mlp.up_proj.weight"),
			down_proj: proj("mlp.down_proj.weight"),
			num_heads: config.num_attention_heads,
			num_kv_heads: config.num_key_value_heads,
			head_dim: config.head_dim,
			cpu_attention: strips,
		}
	}
}

/// A plain block: adapters are merged into their base before serving ([`crate::lora::merge`]).
impl<B: Backend> From<DecoderBlock<B>> for StageBlock<B> {
	fn from(block: DecoderBlock<B>) -> Self {
		assert!(
			block.adapters().iter().all(|(_, adapter)| adapter.is_none()),
			"a stage serves merged weights, not adapters"
		);
		let (a, mlp) = (block.self_attn, block.mlp);
		Self {
			input_layernorm: block.input_layernorm,
			post_attention_layernorm: block.post_attention_layernorm,
			q_norm: a.q_norm,
			k_norm: a.k_norm,
			q_proj: Proj::Linear(a.q_proj),
			k_proj: Proj::Linear(a.k_proj),
			v_proj: Proj::Linear(a.v_proj),
			o_proj: Proj::Linear(a.o_proj),
			gate_proj: Proj::Linear(mlp.gate_proj),
			up_proj: Proj::Linear(mlp.up_proj),
			down_proj: Proj::Linear(mlp.down_proj),
			num_heads: a.num_heads,
			num_kv_heads: a.num_kv_heads,
			head_dim: a.head_dim,
			cpu_attention: false,
		}
	}
}

/// Layers `[start, end)` of a model, ready to run; only those layers are held.
pub struct StageModel<B: Backend> {
	config: ModelConfig,
	start: usize,
	end: usize,
	embed: Option<Embedding<B>>,
	blocks: Vec<StageBlock<B>>,
	head: Option<(RmsNorm<B>, Proj<B>)>,
	rope_cos: Tensor<B, 2>,
	rope_sin: Tensor<B, 2>,
	device: B::Device,
}

impl<B: Backend> StageModel<B> {
	/// Builds the span from its layers (`layers[i]` is registry layer `start + i`), each checked
	/// against the layout `config` requires.
	pub fn new(
		config: &ModelConfig,
		start: usize,
		layers: &[LayerTensors],
		device: &B::Device,
	) -> Result<Self, WeightsError> {
		Self::build(config, start, layers.iter().collect(), device, true)
	}

	/// [`Self::new`] with every projection burn's `f32` linear and attention over tensors,
	/// whatever the backend and values (what the portable kernels must equal bit for bit).
	#[cfg(test)]
	fn new_linear(
		config: &ModelConfig,
		start: usize,
		layers: &[LayerTensors],
		device: &B::Device,
	) -> Result<Self, WeightsError> {
		Self::build(config, start, layers.iter().collect(), device, false)
	}

	/// [`Self::new`], taking the layers: each is dropped as soon as the backend holds its copy,
	/// so a load holds two copies of one layer at a time rather than of the whole span (what a
	/// server loading a large model needs).
	pub fn from_layers(
		config: &ModelConfig,
		start: usize,
		layers: Vec<LayerTensors>,
		device: &B::Device,
	) -> Result<Self, WeightsError> {
		Self::build(config, start, layers, device, true)
	}

	/// `allow_strips`: on the portable CPU, projections are laid out for its kernel, as `bf16`
	/// where all their values are, and attention runs over a [`CpuKv`].
	fn build<L: std::borrow::Borrow<LayerTensors>>(
		config: &ModelConfig,
		start: usize,
		layers: Vec<L>,
		device: &B::Device,
		allow_strips: bool,
	) -> Result<Self, WeightsError> {
		let strips =
			allow_strips && std::any::TypeId::of::<B>() == std::any::TypeId::of::<PortableCpu>();
		let end = start + layers.len();
		if layers.is_empty() || end > config.layer_count() {
			return Err(WeightsError::LayerCount { expected: config.layer_count(), got: end });
		}
		// Every layer checked before any is imported.
		for (i, layer) in layers.iter().enumerate() {
			weights::check_layout(config, start + i, layer.borrow())?;
		}
		let last = config.layer_count() - 1;
		let (mut embed, mut blocks, mut head) = (None, Vec::new(), None);
		for (index, layer) in (start..end).zip(layers) {
			let tensors = layer.borrow();
			if index == 0 {
				embed = Some(weights::import_embedding(tensors, device));
			} else if index == last {
				head = Some((
					weights::norm(config, weights::find(tensors, "model.norm.weight"), device),
					Proj::import(weights::find(tensors, "lm_head.weight"), strips, device),
				));
			} else {
				blocks.push(StageBlock::import(config, index - 1, tensors, strips, device));
			}
			// An owned `layer` (its f32 values) is freed here.
		}
		let (rope_cos, rope_sin) = rope_tables(config, device);
		Ok(Self {
			config: config.clone(),
			start,
			end,
			embed,
			blocks,
			head,
			rope_cos,
			rope_sin,
			device: device.clone(),
		})
	}

	/// The whole of `model` as one stage (no registry layers involved: benchmarks of models made
	/// on a device by [`Transformer::random`]).
	pub fn whole(config: &ModelConfig, model: Transformer<B>) -> Self {
		let device = model.rope_cos.device();
		Self {
			config: config.clone(),
			start: 0,
			end: config.layer_count(),
			embed: Some(model.embed_tokens),
			blocks: model.layers.into_iter().map(StageBlock::from).collect(),
			head: Some((model.norm, Proj::Linear(model.lm_head))),
			rope_cos: model.rope_cos,
			rope_sin: model.rope_sin,
			device,
		}
	}

	pub fn span(&self) -> (usize, usize) {
		(self.start, self.end)
	}

	pub fn config(&self) -> &ModelConfig {
		&self.config
	}

	pub fn new_cache(&self) -> KvCache<B> {
		KvCache { blocks: self.blocks.iter().map(|_| None).collect(), positions: 0 }
	}

	/// Runs a chunk that starts at `position` of the session. A cache holding more positions is
	/// cut back to `position` (a chunk re-sent after a failure); one holding fewer is an error
	/// (the caller replays the session from the start).
	pub fn forward(
		&self,
		cache: &mut KvCache<B>,
		position: usize,
		input: Activations,
	) -> Result<Activations, StageError> {
		let mut results = self.forward_batch(vec![Chunk { cache, position, input }]);
		results.pop().expect("one result per chunk")
	}

	/// Runs chunks of different sessions as one batch: the projections and MLPs of all their
	/// rows in one matrix product each, attention per session against its own cache. Every row
	/// is computed exactly as it would be alone (same operations, same order of summation), so a
	/// session's results do not depend on what it was batched with. One result per chunk, in
	/// order; a bad chunk fails alone.
	pub fn forward_batch(&self, chunks: Vec<Chunk<'_, B>>) -> Vec<Result<Activations, StageError>> {
		let mut results: Vec<Option<Result<Activations, StageError>>> =
			chunks.iter().map(|_| None).collect();
		let mut live: Vec<(usize, Row<'_, B>)> = Vec::new();
		for (i, chunk) in chunks.into_iter().enumerate() {
			match self.prepare(chunk) {
				Ok(row) => live.push((i, row)),
				Err(e) => results[i] = Some(Err(e)),
			}
		}
		if !live.is_empty() {
			let mut x = Tensor::cat(live.iter().map(|(_, r)| r.x.clone()).collect(), 1);
			for (b, block) in self.blocks.iter().enumerate() {
				x = block_forward(block, x, b, &mut live);
			}
			// Values are read out of tensors taken whole, then cut per chunk: burn-ndarray
			// gathers a shared tensor's values element by element.
			let mut ends = Vec::with_capacity(live.len());
			let mut offset = 0;
			for (_, row) in live.iter_mut() {
				row.cache.positions = row.position + row.rows;
				offset += row.rows;
				ends.push(offset);
			}
			if let Some((norm, lm_head)) = &self.head {
				// The last position of every chunk, through the head together.
				let lasts: Vec<Tensor<B, 3>> =
					ends.iter().map(|end| x.clone().narrow(1, end - 1, 1)).collect();
				let logits = values(lm_head.forward(norm.forward(Tensor::cat(lasts, 1))));
				let vocab = logits.len() / live.len();
				for (j, (i, _)) in live.iter().enumerate() {
					let row = logits[j * vocab..(j + 1) * vocab].to_vec();
					results[*i] = Some(Ok(Activations::Logits(row)));
				}
			} else {
				let h = self.config.hidden_size;
				let hidden = values(x);
				let mut start = 0;
				for ((i, row), end) in live.iter().zip(ends) {
					let values = hidden[start * h..end * h].to_vec();
					results[*i] = Some(Ok(Activations::Hidden { rows: row.rows, values }));
					start = end;
				}
			}
		}
		results.into_iter().map(|r| r.expect("every chunk has a result")).collect()
	}

	/// Checks a chunk and turns it into rows of hidden states (embedding them if this stage
	/// holds the embedding), with its positions' RoPE tables and causal mask.
	fn prepare<'a>(&self, chunk: Chunk<'a, B>) -> Result<Row<'a, B>, StageError> {
		let Chunk { cache, position, input } = chunk;
		if position > cache.positions {
			return Err(StageError::Position { cached: cache.positions, position });
		}
		let h = self.config.hidden_size;
		let rows = input.rows();
		match (&self.embed, &input) {
			(Some(_), Activations::Tokens(_)) | (None, Activations::Hidden { .. }) => {}
			(Some(_), other) => {
				return Err(StageError::WrongInput { expected: "tokens", got: other.kind() })
			}
			(None, other) => {
				return Err(StageError::WrongInput { expected: "hidden states", got: other.kind() })
			}
		}
		if rows == 0 {
			return Err(StageError::Empty);
		}
		if position + rows > self.config.max_position_embeddings {
			return Err(StageError::TooLong(position + rows));
		}
		let x: Tensor<B, 3> = match input {
			Activations::Tokens(tokens) => {
				if let Some(t) = tokens.iter().find(|t| **t as usize >= self.config.vocab_size) {
					return Err(StageError::Token(*t));
				}
				let ids: Vec<i64> = tokens.iter().map(|t| *t as i64).collect();
				let ids =
					Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, rows]), &self.device);
				self.embed.as_ref().expect("checked above").forward(ids)
			}
			Activations::Hidden { values, .. } => {
				if values.len() != rows * h {
					return Err(StageError::Width { expected: h, got: values.len() / rows });
				}
				Tensor::from_data(TensorData::new(values, [1, rows, h]), &self.device)
			}
			Activations::Logits(_) => unreachable!("refused above"),
		};
		if position < cache.positions {
			cache.truncate(position);
		}
		Ok(Row {
			x,
			rows,
			position,
			cos: self.rope_cos.clone().narrow(0, position, rows),
			sin: self.rope_sin.clone().narrow(0, position, rows),
			mask: chunk_mask::<B>(position, rows, &self.device),
			cache,
		})
	}
}

/// One chunk of a batch: a session's cache, where the chunk starts, its input.
pub struct Chunk<'a, B: Backend> {
	pub cache: &'a mut KvCache<B>,
	pub position: usize,
	pub input: Activations,
}

/// A checked chunk inside a batch.
struct Row<'a, B: Backend> {
	x: Tensor<B, 3>,
	rows: usize,
	position: usize,
	cos: Tensor<B, 2>,
	sin: Tensor<B, 2>,
	mask: Tensor<B, 2, Bool>,
	cache: &'a mut KvCache<B>,
}

impl<B: Backend> KvCache<B> {
	fn truncate(&mut self, positions: usize) {
		for block in self.blocks.iter_mut().flatten() {
			match block {
				BlockCache::Tensors { keys, values } => {
					let [b, h, _, d] = keys.dims();
					*keys = keys.clone().slice([0..b, 0..h, 0..positions, 0..d]);
					*values = values.clone().slice([0..b, 0..h, 0..positions, 0..d]);
				}
				BlockCache::Cpu(kv) => kv.len = kv.len.min(positions),
			}
		}
		if positions == 0 {
			self.blocks.iter_mut().for_each(|b| *b = None);
		}
		self.positions = positions;
	}
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
	t.into_data().convert::<f32>().into_vec::<f32>().expect("an f32 tensor converts to f32")
}

/// `[seq, position + seq]`: query `i` (at `position + i`) sees keys up to `position + i`.
fn chunk_mask<B: Backend>(position: usize, seq: usize, device: &B::Device) -> Tensor<B, 2, Bool> {
	let width = position + seq;
	let masked: Vec<bool> = (0..seq * width).map(|k| k % width > position + k / width).collect();
	Tensor::from_data(TensorData::new(masked, [seq, width]), device)
}

/// Decoder block `index` over the rows of a whole batch `[1, rows, hidden]`.
fn block_forward<B: Backend>(
	block: &StageBlock<B>,
	x: Tensor<B, 3>,
	index: usize,
	batch: &mut [(usize, Row<'_, B>)],
) -> Tensor<B, 3> {
	let attn = attention_forward(block, block.input_layernorm.forward(x.clone()), index, batch);
	let x = x + attn;
	let normed = block.post_attention_layernorm.forward(x.clone());
	let [gate, up] = project([&block.gate_proj, &block.up_proj], normed);
	x + block.down_proj.forward(burn::tensor::activation::silu(gate) * up)
}

/// The model's attention: projections over the whole batch, then per chunk RoPE at its own
/// positions and attention over its session's cache (to which its keys and values are added).
fn attention_forward<B: Backend>(
	a: &StageBlock<B>,
	x: Tensor<B, 3>,
	index: usize,
	batch: &mut [(usize, Row<'_, B>)],
) -> Tensor<B, 3> {
	let (heads, kv_heads, dim) = (a.num_heads, a.num_kv_heads, a.head_dim);
	let [q_all, k_all, v_all] = project([&a.q_proj, &a.k_proj, &a.v_proj], x);
	// On the portable CPU the values go to the cache as they are, `[rows, kv_heads, dim]`.
	let (v_all, v_values) =
		if a.cpu_attention { (None, Some(values(v_all))) } else { (Some(v_all), None) };
	let mut outs = Vec::with_capacity(batch.len());
	let mut offset = 0;
	for (_, row) in batch.iter_mut() {
		let seq = row.rows;
		// `[1, seq, n, dim]`: each position's heads, as the projection wrote them.
		let rows =
			|t: &Tensor<B, 3>, n: usize| t.clone().narrow(1, offset, seq).reshape([1, seq, n, dim]);
		let cache = &mut row.cache.blocks[index];
		if a.cpu_attention {
			// The same element-wise operations on `[1, seq, heads, dim]` (RoPE's tables
			// `[1, seq, 1, dim]`), so the values read out below are contiguous rather than
			// gathered from a transposed view.
			let rope = |x: Tensor<B, 4>| {
				let table = |t: &Tensor<B, 2>| t.clone().reshape([1, seq, 1, dim]);
				rotate(x, table(&row.cos), table(&row.sin))
			};
			let q = rope(a.q_norm.forward(rows(&q_all, heads)));
			let k = rope(a.k_norm.forward(rows(&k_all, kv_heads)));
			let width = kv_heads * dim;
			let v = &v_values.as_ref().expect("read above")[offset * width..(offset + seq) * width];
			let kv = match cache.get_or_insert_with(|| BlockCache::Cpu(CpuKv::new(kv_heads, dim))) {
				BlockCache::Cpu(kv) => kv,
				BlockCache::Tensors { .. } => unreachable!("a stage keeps one kind of cache"),
			};
			outs.push(cpu_attention(kv, q, k, v, &row.mask));
			offset += seq;
			continue;
		}
		let split = |t: &Tensor<B, 3>, n: usize| rows(t, n).swap_dims(1, 2);
		let q = apply_rope(a.q_norm.forward(split(&q_all, heads)), &row.cos, &row.sin);
		let k = apply_rope(a.k_norm.forward(split(&k_all, kv_heads)), &row.cos, &row.sin);
		let v = split(v_all.as_ref().expect("kept for the tensor path"), kv_heads);
		let (keys, values) = match cache.take() {
			Some(BlockCache::Tensors { keys, values }) => {
				(Tensor::cat(vec![keys, k], 2), Tensor::cat(vec![values, v], 2))
			}
			Some(BlockCache::Cpu(_)) => unreachable!("a stage keeps one kind of cache"),
			None => (k, v),
		};
		*cache = Some(BlockCache::Tensors { keys: keys.clone(), values: values.clone() });
		let width = keys.dims()[2];
		let keys = repeat_kv(keys, heads / kv_heads);
		let values = repeat_kv(values, heads / kv_heads);
		let scores = q.matmul(keys.swap_dims(2, 3)).div_scalar((dim as f32).sqrt());
		let mask = row.mask.clone().unsqueeze::<4>().expand([1, heads, seq, width]);
		let weights = softmax(scores.mask_fill(mask, -1.0e9), 3);
		outs.push(weights.matmul(values).swap_dims(1, 2).reshape([1, seq, heads * dim]));
		offset += seq;
	}
	a.o_proj.forward(Tensor::cat(outs, 1))
}

/// The attention of one chunk on the portable CPU, over its session's [`CpuKv`] (to which its
/// keys and values are added) — the operations of the tensor path, in its order, on the same
/// values, so the same bits: the two products by [`gemm`] (one per head, reading its KV head's
/// cache in place instead of repeating it), the scale, mask and softmax by the backend. `q` is
/// `[1, seq, heads, head_dim]`, `k` and `v` are `[1, seq, kv_heads, head_dim]` (`v` its values).
fn cpu_attention<B: Backend>(
	kv: &mut CpuKv,
	q: Tensor<B, 4>,
	k: Tensor<B, 4>,
	v: &[f32],
	mask: &Tensor<B, 2, Bool>,
) -> Tensor<B, 3> {
	let [_, seq, heads, dim] = q.dims();
	let device = q.device();
	kv.append(&values(k), v, seq);
	let (width, capacity, group) = (kv.len, kv.capacity, heads / kv.kv_heads);
	let q = values(q);
	// Head `h` reads KV head `h / group` (what `repeat_kv` repeats); its queries are rows
	// `heads · dim` apart.
	let mut scores = vec![0.0f32; heads * seq * width];
	gemm::batched_matmul(&mut scores, heads, seq, dim, width, |h| {
		(
			gemm::Mat::strided(&q, h * dim, heads * dim, 1),
			gemm::Mat::strided(&kv.keys, h / group * dim * capacity, capacity, 1),
		)
	});
	let scores =
		Tensor::<B, 4>::from_data(TensorData::new(scores, [1, heads, seq, width]), &device)
			.div_scalar((dim as f32).sqrt());
	// One query sees every position: nothing to mask.
	let scores = if seq > 1 {
		scores.mask_fill(mask.clone().unsqueeze::<4>().expand([1, heads, seq, width]), -1.0e9)
	} else {
		scores
	};
	let weights = values(softmax(scores, 3));
	let mut out = vec![0.0f32; heads * seq * dim];
	gemm::batched_matmul(&mut out, heads, seq, width, dim, |h| {
		(
			gemm::Mat::strided(&weights, h * seq * width, width, 1),
			gemm::Mat::strided(&kv.values, h / group * capacity * dim, dim, 1),
		)
	});
	// `[heads, seq, dim]` to rows of all heads, `[seq, heads·dim]`.
	let mut rows = vec![0.0f32; seq * heads * dim];
	for h in 0..heads {
		for i in 0..seq {
			let (from, to) = ((h * seq + i) * dim, (i * heads + h) * dim);
			rows[to..to + dim].copy_from_slice(&out[from..from + dim]);
		}
	}
	Tensor::from_data(TensorData::new(rows, [1, seq, heads * dim]), &device)
}

/// How the next token is picked from logits: greedy at temperature 0, otherwise sampled from
/// the softmax at that temperature with a ChaCha stream seeded by `seed` (one draw per token),
/// so the same request gives the same tokens on every route. `top_k` and `top_p` narrow the draw
/// to the likeliest tokens first (ties broken by the lower id).
pub struct Sampler {
	temperature: f32,
	top_k: usize,
	top_p: f32,
	rng: ChaCha20Rng,
}

impl Sampler {
	pub fn new(temperature: f32, seed: u64) -> Self {
		Self { temperature, top_k: 0, top_p: 1.0, rng: ChaCha20Rng::seed_from_u64(seed) }
	}

	/// Draws among the `k` likeliest tokens only (0: no limit).
	pub fn top_k(mut self, k: usize) -> Self {
		self.top_k = k;
		self
	}

	/// Draws among the likeliest tokens whose probabilities reach `p` (nucleus sampling; 1: no
	/// limit).
	pub fn top_p(mut self, p: f32) -> Self {
		self.top_p = p;
		self
	}

	pub fn next(&mut self, logits: &[f32]) -> u32 {
		let argmax = || {
			logits
				.iter()
				.enumerate()
				.fold(
					(0usize, f32::NEG_INFINITY),
					|best, (i, v)| if *v > best.1 { (i, *v) } else { best },
				)
				.0 as u32
		};
		if self.temperature <= 0.0 || !self.temperature.is_finite() {
			return argmax();
		}
		let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
		let mut weights: Vec<f64> =
			logits.iter().map(|l| math::exp(((l - max) / self.temperature) as f64)).collect();
		let narrowed = self.top_k > 0 && self.top_k < logits.len();
		if narrowed || (self.top_p > 0.0 && self.top_p < 1.0) {
			let mut order: Vec<usize> = (0..logits.len()).collect();
			order.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b)));
			let mut kept = if narrowed { self.top_k } else { order.len() };
			if self.top_p > 0.0 && self.top_p < 1.0 {
				// Of what top_k kept (renormalised, as Hugging Face and vLLM apply them).
				let total: f64 = order[..kept].iter().map(|i| weights[*i]).sum();
				let (mut mass, target) = (0.0, self.top_p as f64 * total);
				let reach = order[..kept].iter().position(|i| {
					mass += weights[*i];
					mass >= target
				});
				kept = kept.min(reach.map_or(order.len(), |p| p + 1));
			}
			for i in &order[kept.max(1)..] {
				weights[*i] = 0.0;
			}
		}
		let total: f64 = weights.iter().sum();
		let mut draw = self.rng.random::<f64>() * total;
		for (i, w) in weights.iter().enumerate() {
			if draw < *w {
				return i as u32;
			}
			draw -= w;
		}
		argmax()
	}
}

/// The log-probability the model gave a token, and its likeliest alternatives (what OpenAI's
/// `logprobs` report): of the model's own distribution, before temperature, top-k or top-p.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprobs {
	pub token: u32,
	pub logprob: f32,
	/// The `top` likeliest tokens, likeliest first (ties broken by the lower id).
	pub top: Vec<(u32, f32)>,
}

impl TokenLogprobs {
	/// `token`'s log-probability under `logits` (log-softmax, summed in `f64`) and the `top`
	/// likeliest tokens'.
	pub fn of(logits: &[f32], token: u32, top: usize) -> Self {
		let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
		let lse = max + logits.iter().map(|l| math::exp(*l as f64 - max)).sum::<f64>().ln();
		let logprob =
			|i: usize| logits.get(i).map_or(f32::NEG_INFINITY, |l| (*l as f64 - lse) as f32);
		let mut order: Vec<usize> = (0..logits.len()).collect();
		let top = top.min(logits.len());
		if top > 0 {
			order.select_nth_unstable_by(top - 1, |a, b| {
				logits[*b].total_cmp(&logits[*a]).then(a.cmp(b))
			});
			order.truncate(top);
			order.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b)));
		}
		Self {
			token,
			logprob: logprob(token as usize),
			top: order[..top].iter().map(|i| (*i as u32, logprob(*i))).collect(),
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{init_layers, CpuBackend};

	#[test]
	fn logprobs_are_the_log_softmax_and_the_top_tokens_in_order() {
		let logits = [1.0f32, 3.0, 2.0, 3.0, -1.0];
		let lp = TokenLogprobs::of(&logits, 2, 3);
		let lse = logits.iter().map(|l| (*l as f64).exp()).sum::<f64>().ln();
		assert!((lp.logprob as f64 - (2.0 - lse)).abs() < 1e-6);
		let ids: Vec<u32> = lp.top.iter().map(|(i, _)| *i).collect();
		assert_eq!(ids, [1, 3, 2], "likeliest first, ties by the lower id");
		assert!((lp.top[0].1 as f64 - (3.0 - lse)).abs() < 1e-6);
		let total: f64 = logits.iter().map(|l| (*l as f64 - lse).exp()).sum();
		assert!((total - 1.0).abs() < 1e-9);
		assert!(TokenLogprobs::of(&logits, 0, 0).top.is_empty());
		assert_eq!(TokenLogprobs::of(&logits, 0, 50).top.len(), logits.len());
	}

	fn greedy(
		stages: &[StageModel<CpuBackend>],
		prompt: &[u32],
		steps: usize,
	) -> (Vec<u32>, Vec<Vec<u32>>) {
		let mut caches: Vec<_> = stages.iter().map(|s| s.new_cache()).collect();
		let (mut position, mut chunk, mut out, mut logit_bits) =
			(0, prompt.to_vec(), vec![], vec![]);
		let mut sampler = Sampler::new(0.0, 0);
		for _ in 0..steps {
			let mut x = Activations::Tokens(chunk.clone());
			for (stage, cache) in stages.iter().zip(caches.iter_mut()) {
				x = stage.forward(cache, position, x).unwrap();
			}
			let Activations::Logits(logits) = x else { panic!("no logits") };
			logit_bits.push(logits.iter().map(|v| v.to_bits()).collect());
			let token = sampler.next(&logits);
			position += chunk.len();
			chunk = vec![token];
			out.push(token);
		}
		(out, logit_bits)
	}

	#[test]
	fn a_pipeline_of_spans_computes_the_same_bits_as_the_whole_model() {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 3);
		let dev = Default::default();
		let whole = StageModel::<CpuBackend>::new(&config, 0, &layers, &dev).unwrap();
		// The spans built from owned layers (`from_layers`, what a server's load does), the whole
		// from borrowed ones.
		let split = [
			StageModel::<CpuBackend>::from_layers(&config, 0, layers[..2].to_vec(), &dev).unwrap(),
			StageModel::<CpuBackend>::from_layers(&config, 2, layers[2..3].to_vec(), &dev).unwrap(),
			StageModel::<CpuBackend>::from_layers(&config, 3, layers[3..].to_vec(), &dev).unwrap(),
		];
		let prompt: Vec<u32> = b"add 12 30 = ".iter().map(|b| *b as u32).collect();
		let (a, a_bits) = greedy(std::slice::from_ref(&whole), &prompt, 12);
		let (b, b_bits) = greedy(&split, &prompt, 12);
		assert_eq!(a, b);
		assert_eq!(a_bits, b_bits, "logits differ in some bit");
	}

	/// On the portable CPU a stage's projections are laid out in strips — `f32`, or `bf16` for a
	/// bf16 checkpoint's — and its attention runs over a [`CpuKv`]; they give the bits of burn's
	/// f32 linear and attention over tensors, in a prompt long enough for the packed product
	/// (and the cache's growth) and in one-token decoding steps.
	#[test]
	fn the_portable_kernels_compute_the_bits_of_burns_ops() {
		let config = ModelConfig::tiny();
		let mut layers = init_layers(&config, 3);
		let dev = Default::default();
		let prompt: Vec<u32> =
			b"a prompt of more than sixteen tokens".iter().map(|b| *b as u32).collect();
		let projs = |stage: &StageModel<CpuBackend>, kind: fn(&Proj<CpuBackend>) -> bool| {
			stage.blocks.iter().all(|b| {
				[&b.q_proj, &b.k_proj, &b.v_proj, &b.o_proj, &b.gate_proj, &b.up_proj, &b.down_proj]
					.into_iter()
					.all(kind)
			}) && stage.head.as_ref().is_some_and(|(_, head)| kind(head))
		};
		for bf16 in [false, true] {
			if bf16 {
				for tensor in layers.iter_mut().flatten() {
					for v in tensor.values.iter_mut() {
						*v = half::bf16::from_f32(*v).to_f32();
					}
				}
			}
			let strips = StageModel::<CpuBackend>::new(&config, 0, &layers, &dev).unwrap();
			let linear = StageModel::<CpuBackend>::new_linear(&config, 0, &layers, &dev).unwrap();
			if bf16 {
				assert!(projs(&strips, |p| matches!(p, Proj::Bf16(_))), "bf16 values kept so");
			} else {
				assert!(projs(&strips, |p| matches!(p, Proj::F32(_))), "f32 values stay f32");
			}
			assert!(projs(&linear, |p| matches!(p, Proj::Linear(_))));
			let (a, a_bits) = greedy(std::slice::from_ref(&strips), &prompt, 12);
			let (b, b_bits) = greedy(std::slice::from_ref(&linear), &prompt, 12);
			assert_eq!(a, b, "bf16: {bf16}");
			assert_eq!(a_bits, b_bits, "logits differ in some bit (bf16: {bf16})");
		}
	}

	#[test]
	fn cached_decoding_matches_a_full_forward_pass() {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 5);
		let dev = Default::default();
		let stage = StageModel::<CpuBackend>::new(&config, 0, &layers, &dev).unwrap();
		let model = weights::import_layers::<CpuBackend>(&config, &layers, &dev).unwrap();
		let tokens: Vec<u32> = b"rev abc = cba".iter().map(|b| *b as u32).collect();
		let mut cache = stage.new_cache();
		// The prompt in one chunk, then the rest one token at a time.
		let mut last = None;
		let mut position = 0;
		for chunk in std::iter::once(&tokens[..4]).chain(tokens[4..].chunks(1)) {
			last = Some(
				stage.forward(&mut cache, position, Activations::Tokens(chunk.to_vec())).unwrap(),
			);
			position += chunk.len();
		}
		let Some(Activations::Logits(cached)) = last else { panic!("no logits") };
		let ids: Vec<i64> = tokens.iter().map(|t| *t as i64).collect();
		let full = model.forward(Tensor::from_data(TensorData::new(ids, [1, tokens.len()]), &dev));
		let full = values(full.narrow(1, tokens.len() - 1, 1));
		assert_eq!(cached.len(), full.len());
		for (c, f) in cached.iter().zip(&full) {
			assert!((c - f).abs() < 1e-4, "cached {c} vs full {f}");
		}
	}

	/// A chunk sent again (a session resumed after a failure) cuts the cache back to its
	/// position and computes the bits it did the first time, on the portable CPU's cache as on
	/// tensors.
	#[test]
	fn a_chunk_sent_again_computes_what_it_did_the_first_time() {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 6);
		let dev = Default::default();
		let tokens: Vec<u32> =
			b"a prompt of twenty tokens, then some more".iter().map(|b| *b as u32).collect();
		let portable = StageModel::<CpuBackend>::new(&config, 0, &layers, &dev).unwrap();
		let tensors = StageModel::<CpuBackend>::new_linear(&config, 0, &layers, &dev).unwrap();
		for stage in [&portable, &tensors] {
			let mut cache = stage.new_cache();
			let mut step = |position: usize, chunk: &[u32]| {
				let out = stage.forward(&mut cache, position, Activations::Tokens(chunk.to_vec()));
				let Ok(Activations::Logits(logits)) = out else { panic!("{out:?}") };
				logits.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
			};
			let prompt = step(0, &tokens[..20]);
			let first: Vec<_> = (20..tokens.len()).map(|p| step(p, &tokens[p..p + 1])).collect();
			// Back to position 23, then to the end again; then the prompt again from the start.
			for p in 23..tokens.len() {
				assert_eq!(step(p, &tokens[p..p + 1]), first[p - 20], "position {p}");
			}
			assert_eq!(step(0, &tokens[..20]), prompt);
			assert_eq!(step(20, &tokens[20..21]), first[0]);
		}
	}

	#[test]
	fn a_batch_computes_each_session_exactly_as_alone() {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 4);
		let dev = Default::default();
		for (start, end) in [(0, 4), (0, 2), (2, 4)] {
			let stage =
				StageModel::<CpuBackend>::new(&config, start, &layers[start..end], &dev).unwrap();
			let input = |s: usize, len: usize| {
				if start == 0 {
					Activations::Tokens((0..len).map(|i| ((s * 31 + i * 7) % 256) as u32).collect())
				} else {
					let values = (0..len * config.hidden_size)
						.map(|i| ((s + i) % 13) as f32 * 0.1 - 0.6)
						.collect();
					Activations::Hidden { rows: len, values }
				}
			};
			// Three sessions with prompts of different lengths, then two single-row steps.
			let schedule: Vec<Vec<usize>> = vec![vec![5, 9, 2], vec![1, 1, 1], vec![1, 1, 1]];
			let mut alone: Vec<_> = (0..3).map(|_| stage.new_cache()).collect();
			let mut batched: Vec<_> = (0..3).map(|_| stage.new_cache()).collect();
			let mut positions = [0usize; 3];
			for (step, lens) in schedule.iter().enumerate() {
				let expected: Vec<_> = (0..3)
					.map(|s| {
						stage
							.forward(&mut alone[s], positions[s], input(s + step * 3, lens[s]))
							.unwrap()
					})
					.collect();
				let chunks = batched
					.iter_mut()
					.enumerate()
					.map(|(s, cache)| Chunk {
						cache,
						position: positions[s],
						input: input(s + step * 3, lens[s]),
					})
					.collect();
				let got: Vec<_> =
					stage.forward_batch(chunks).into_iter().map(Result::unwrap).collect();
				let bits = |a: &Activations| match a {
					Activations::Hidden { values, .. } | Activations::Logits(values) => {
						values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
					}
					Activations::Tokens(_) => unreachable!(),
				};
				for s in 0..3 {
					assert_eq!(
						bits(&got[s]),
						bits(&expected[s]),
						"span {start}..{end} step {step} session {s}"
					);
					positions[s] += lens[s];
				}
			}
			// A bad chunk fails alone.
			let mut c1 = stage.new_cache();
			let mut c2 = stage.new_cache();
			let results = stage.forward_batch(vec![
				Chunk { cache: &mut c1, position: 3, input: input(0, 1) },
				Chunk { cache: &mut c2, position: 0, input: input(0, 2) },
			]);
			assert!(matches!(results[0], Err(StageError::Position { .. })));
			assert!(results[1].is_ok());
		}
	}

	#[test]
	fn a_session_computes_the_same_bits_in_any_company() {
		// Batches as a busy stage forms them: sessions at different positions, prompts and
		// single tokens mixed, a different company every step, a replay of a session next to
		// its own original. Each session's answers must be the bits it computes alone. The MLP
		// is wider than the kernel's reduction block (256), so its sums run in two blocks.
		let config = ModelConfig { intermediate_size: 320, ..ModelConfig::tiny() };
		let layers = init_layers(&config, 4);
		let dev = Default::default();
		let span = config.layer_count();
		let stage = StageModel::<CpuBackend>::new(&config, 0, &layers[..span], &dev).unwrap();
		let mut rng = ChaCha20Rng::seed_from_u64(7);
		// Eight sessions (the last four replay the first four): a prompt, then one token a chunk.
		let scripts: Vec<Vec<Vec<u32>>> = (0..4)
			.map(|_| {
				let prompt_len = rng.random_range(6..20);
				let mut chunks =
					vec![(0..prompt_len).map(|_| rng.random_range(0..256u32)).collect::<Vec<_>>()];
				chunks.extend((0..24).map(|_| vec![rng.random_range(0..256u32)]));
				chunks
			})
			.collect();
		let scripts: Vec<_> = scripts.iter().chain(scripts.iter()).cloned().collect();
		let bits = |a: Activations| match a {
			Activations::Logits(values) => values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
			_ => unreachable!("the whole model answers logits"),
		};
		let alone: Vec<Vec<Vec<u32>>> = scripts
			.iter()
			.map(|chunks| {
				let mut cache = stage.new_cache();
				let mut position = 0;
				chunks
					.iter()
					.map(|c| {
						let out = stage
							.forward(&mut cache, position, Activations::Tokens(c.clone()))
							.unwrap();
						position += c.len();
						bits(out)
					})
					.collect()
			})
			.collect();
		let mut caches: Vec<_> = scripts.iter().map(|_| stage.new_cache()).collect();
		let mut next = vec![0usize; scripts.len()];
		let mut positions = vec![0usize; scripts.len()];
		let mut batches = 0;
		while next.iter().zip(&scripts).any(|(n, s)| *n < s.len()) {
			let company: Vec<usize> = (0..scripts.len())
				.filter(|s| next[*s] < scripts[*s].len() && rng.random_bool(0.6))
				.collect();
			if company.is_empty() {
				continue;
			}
			let mut chunks = Vec::new();
			for (s, cache) in caches.iter_mut().enumerate() {
				if company.contains(&s) {
					let input = Activations::Tokens(scripts[s][next[s]].clone());
					chunks.push(Chunk { cache, position: positions[s], input });
				}
			}
			let results = stage.forward_batch(chunks);
			for (s, result) in company.iter().zip(results) {
				assert_eq!(
					bits(result.unwrap()),
					alone[*s][next[*s]],
					"session {s} chunk {} in a batch of {company:?}",
					next[*s]
				);
				positions[*s] += scripts[*s][next[*s]].len();
				next[*s] += 1;
			}
			batches += 1;
		}
		assert!(batches > 30);
	}

	#[test]
	fn bad_chunks_are_errors() {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 5);
		let dev = Default::default();
		let head = StageModel::<CpuBackend>::new(&config, 2, &layers[2..], &dev).unwrap();
		let first = StageModel::<CpuBackend>::new(&config, 0, &layers[..2], &dev).unwrap();
		let mut cache = head.new_cache();
		assert!(matches!(
			head.forward(&mut cache, 0, Activations::Tokens(vec![1])),
			Err(StageError::WrongInput { .. })
		));
		assert!(matches!(
			head.forward(&mut cache, 0, Activations::Hidden { rows: 1, values: vec![0.0; 3] }),
			Err(StageError::Width { .. })
		));
		assert!(matches!(
			head.forward(&mut cache, 5, Activations::Hidden { rows: 1, values: vec![0.0; 64] }),
			Err(StageError::Position { cached: 0, position: 5 })
		));
		let mut cache = first.new_cache();
		assert_eq!(
			first.forward(&mut cache, 0, Activations::Tokens(vec![999])),
			Err(StageError::Token(999))
		);
		let long = vec![1u32; config.max_position_embeddings + 1];
		assert!(matches!(
			first.forward(&mut cache, 0, Activations::Tokens(long)),
			Err(StageError::TooLong(_))
		));
		assert!(StageModel::<CpuBackend>::new(&config, 3, &layers[..3], &dev).is_err());
	}

	#[test]
	fn top_k_and_top_p_draw_only_among_the_likeliest_tokens() {
		// Probabilities about 0.64, 0.24, 0.09, 0.03 at temperature 1.
		let logits = [2.0f32, 1.0, 0.0, -1.0];
		let draws = |make: &dyn Fn(u64) -> Sampler| {
			let mut seen = std::collections::BTreeSet::new();
			for seed in 0..300 {
				seen.insert(make(seed).next(&logits));
			}
			seen.into_iter().collect::<Vec<u32>>()
		};
		assert_eq!(draws(&|seed| Sampler::new(1.0, seed)), [0, 1, 2, 3]);
		assert_eq!(draws(&|seed| Sampler::new(1.0, seed).top_k(2)), [0, 1]);
		// 0.64 < 0.8 ≤ 0.64 + 0.24: the two likeliest.
		assert_eq!(draws(&|seed| Sampler::new(1.0, seed).top_p(0.8)), [0, 1]);
		assert_eq!(draws(&|seed| Sampler::new(1.0, seed).top_p(0.5)), [0]);
		assert_eq!(draws(&|seed| Sampler::new(1.0, seed).top_k(3).top_p(0.99)), [0, 1, 2]);
		// top_p of what top_k kept: 0.64 / 0.88 ≥ 0.7.
		assert_eq!(draws(&|seed| Sampler::new(1.0, seed).top_k(2).top_p(0.7)), [0]);
	}
}
