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
	model::{apply_rope, repeat_kv, rope_tables, Attention, DecoderBlock, ModelConfig},
	weights::{self, LayerTensors, WeightsError},
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
}

impl Activations {
	fn kind(&self) -> &'static str {
		match self {
			Activations::Tokens(_) => "tokens",
			Activations::Hidden { .. } => "hidden states",
			Activations::Logits(_) => "logits",
		}
	}
}

/// One block's cached keys and values, `[1, kv_heads, positions, head_dim]`.
struct BlockCache<B: Backend> {
	keys: Tensor<B, 4>,
	values: Tensor<B, 4>,
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

/// Layers `[start, end)` of a model, ready to run; only those layers are held.
pub struct StageModel<B: Backend> {
	config: ModelConfig,
	start: usize,
	end: usize,
	embed: Option<Embedding<B>>,
	blocks: Vec<DecoderBlock<B>>,
	head: Option<(RmsNorm<B>, Linear<B>)>,
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
		let end = start + layers.len();
		if layers.is_empty() || end > config.layer_count() {
			return Err(WeightsError::LayerCount { expected: config.layer_count(), got: end });
		}
		for (i, layer) in layers.iter().enumerate() {
			weights::check_layout(config, start + i, layer)?;
		}
		let last = config.layer_count() - 1;
		let layer = |index: usize| &layers[index - start];
		let embed = (start == 0).then(|| weights::import_embedding(layer(0), device));
		let blocks = (start.max(1)..end.min(last))
			.map(|index| weights::import_block(config, index - 1, layer(index), device))
			.collect();
		let head = (end == config.layer_count())
			.then(|| weights::import_head(config, layer(last), device));
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
		if position > cache.positions {
			return Err(StageError::Position { cached: cache.positions, position });
		}
		if position < cache.positions {
			cache.truncate(position);
		}
		let h = self.config.hidden_size;
		let mut x: Tensor<B, 3> = if let Some(embed) = &self.embed {
			let Activations::Tokens(tokens) = input else {
				return Err(StageError::WrongInput { expected: "tokens", got: input.kind() });
			};
			if tokens.is_empty() {
				return Err(StageError::Empty);
			}
			if let Some(t) = tokens.iter().find(|t| **t as usize >= self.config.vocab_size) {
				return Err(StageError::Token(*t));
			}
			let ids: Vec<i64> = tokens.iter().map(|t| *t as i64).collect();
			let len = ids.len();
			let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, len]), &self.device);
			embed.forward(ids)
		} else {
			let Activations::Hidden { rows, values } = input else {
				return Err(StageError::WrongInput {
					expected: "hidden states",
					got: input.kind(),
				});
			};
			if rows == 0 {
				return Err(StageError::Empty);
			}
			if values.len() != rows * h {
				return Err(StageError::Width { expected: h, got: values.len() / rows });
			}
			Tensor::from_data(TensorData::new(values, [1, rows, h]), &self.device)
		};
		let [_, seq, _] = x.dims();
		let total = position + seq;
		if total > self.config.max_position_embeddings {
			return Err(StageError::TooLong(total));
		}
		let cos = self.rope_cos.clone().narrow(0, position, seq);
		let sin = self.rope_sin.clone().narrow(0, position, seq);
		let mask = chunk_mask::<B>(position, seq, &self.device);
		for (block, cached) in self.blocks.iter().zip(cache.blocks.iter_mut()) {
			x = block_forward(block, x, &cos, &sin, &mask, cached);
		}
		cache.positions = total;
		if let Some((norm, lm_head)) = &self.head {
			let last = x.narrow(1, seq - 1, 1);
			let logits = lm_head.forward(norm.forward(last));
			Ok(Activations::Logits(values(logits)))
		} else {
			Ok(Activations::Hidden { rows: seq, values: values(x) })
		}
	}
}

impl<B: Backend> KvCache<B> {
	fn truncate(&mut self, positions: usize) {
		for block in self.blocks.iter_mut().flatten() {
			let [b, h, _, d] = block.keys.dims();
			block.keys = block.keys.clone().slice([0..b, 0..h, 0..positions, 0..d]);
			block.values = block.values.clone().slice([0..b, 0..h, 0..positions, 0..d]);
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

fn block_forward<B: Backend>(
	block: &DecoderBlock<B>,
	x: Tensor<B, 3>,
	cos: &Tensor<B, 2>,
	sin: &Tensor<B, 2>,
	mask: &Tensor<B, 2, Bool>,
	cache: &mut Option<BlockCache<B>>,
) -> Tensor<B, 3> {
	let attn = attention_forward(
		&block.self_attn,
		block.input_layernorm.forward(x.clone()),
		cos,
		sin,
		mask,
		cache,
	);
	let x = x + attn;
	let normed = block.post_attention_layernorm.forward(x.clone());
	let gate = burn::tensor::activation::silu(block.mlp.gate_proj.forward(normed.clone()));
	x + block.mlp.down_proj.forward(gate * block.mlp.up_proj.forward(normed))
}

/// The model's attention, with keys and values appended to the session's cache.
fn attention_forward<B: Backend>(
	a: &Attention<B>,
	x: Tensor<B, 3>,
	cos: &Tensor<B, 2>,
	sin: &Tensor<B, 2>,
	mask: &Tensor<B, 2, Bool>,
	cache: &mut Option<BlockCache<B>>,
) -> Tensor<B, 3> {
	let (heads, kv_heads, dim) = (a.num_heads, a.num_kv_heads, a.head_dim);
	let [batch, seq, _] = x.dims();
	let split = |t: Tensor<B, 3>, n: usize| t.reshape([batch, seq, n, dim]).swap_dims(1, 2);
	let q = a.q_norm.forward(split(a.q_proj.forward(x.clone()), heads));
	let k = a.k_norm.forward(split(a.k_proj.forward(x.clone()), kv_heads));
	let v = split(a.v_proj.forward(x), kv_heads);
	let q = apply_rope(q, cos, sin);
	let k = apply_rope(k, cos, sin);
	let (keys, values) = match cache.take() {
		Some(c) => (Tensor::cat(vec![c.keys, k], 2), Tensor::cat(vec![c.values, v], 2)),
		None => (k, v),
	};
	*cache = Some(BlockCache { keys: keys.clone(), values: values.clone() });
	let width = keys.dims()[2];
	let keys = repeat_kv(keys, heads / kv_heads);
	let values = repeat_kv(values, heads / kv_heads);
	let scores = q.matmul(keys.swap_dims(2, 3)).div_scalar((dim as f32).sqrt());
	let mask = mask.clone().unsqueeze::<4>().expand([batch, heads, seq, width]);
	let weights = softmax(scores.mask_fill(mask, -1.0e9), 3);
	let out = weights.matmul(values).swap_dims(1, 2).reshape([batch, seq, heads * dim]);
	a.o_proj.forward(out)
}

/// How the next token is picked from logits: greedy at temperature 0, otherwise sampled from
/// the softmax at that temperature with a ChaCha stream seeded by `seed` (one draw per token),
/// so the same request gives the same tokens on every route.
pub struct Sampler {
	temperature: f32,
	rng: ChaCha20Rng,
}

impl Sampler {
	pub fn new(temperature: f32, seed: u64) -> Self {
		Self { temperature, rng: ChaCha20Rng::seed_from_u64(seed) }
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
		let weights: Vec<f64> =
			logits.iter().map(|l| (((l - max) / self.temperature) as f64).exp()).collect();
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

#[cfg(test)]
mod tests {
	use super::*;
	use crate::ml::{init_layers, CpuBackend};

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
		let split = [
			StageModel::<CpuBackend>::new(&config, 0, &layers[..2], &dev).unwrap(),
			StageModel::<CpuBackend>::new(&config, 2, &layers[2..3], &dev).unwrap(),
			StageModel::<CpuBackend>::new(&config, 3, &layers[3..], &dev).unwrap(),
		];
		let prompt: Vec<u32> = b"add 12 30 = ".iter().map(|b| *b as u32).collect();
		let (a, a_bits) = greedy(std::slice::from_ref(&whole), &prompt, 12);
		let (b, b_bits) = greedy(&split, &prompt, 12);
		assert_eq!(a, b);
		assert_eq!(a_bits, b_bits, "logits differ in some bit");
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
}
