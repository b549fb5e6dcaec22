//! A decoder-only transformer in the Qwen3 style: RMSNorm before attention and MLP, rotary
//! position embeddings (rotate-half layout, as in Hugging Face's Qwen3), grouped-query attention
//! with per-head RMSNorm on queries and keys, and a SwiGLU MLP. Generic over burn's `Backend`, sized
//! by [`ModelConfig`], so the same code runs the tiny model of the tests on a CPU and a large one on
//! a GPU.

use burn::{
	module::{Module, Param},
	nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig},
	tensor::{
		activation::{log_softmax, silu, softmax},
		backend::Backend,
		Bool, Int, Tensor, TensorData,
	},
};
use rand::{Rng, SeedableRng};

use super::{
	lora::{project, LoraAdapter},
	portable::math::{self, cosf, logf, pow, sqrtf},
};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

/// The architecture of a model: what the registry's `config_hash`/`config_cid` point at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
	/// Always `"qwen3"`: the layout of layers and tensor names.
	pub family: String,
	pub vocab_size: usize,
	pub hidden_size: usize,
	pub num_hidden_layers: usize,
	pub num_attention_heads: usize,
	pub num_key_value_heads: usize,
	pub head_dim: usize,
	pub intermediate_size: usize,
	pub max_position_embeddings: usize,
	pub rope_theta: f32,
	pub rms_norm_eps: f64,
	/// The model's own tokenizer files; `None`: tokens are bytes (the built-in models). Left out
	/// of the document when `None`, so configurations registered before it hash the same.
	#[serde(default, skip_serializing_if = "Option::is_none")]
	pub tokenizer: Option<crate::tokenizer::TokenizerFiles>,
}

impl ModelConfig {
	/// A model small enough to train in seconds on one CPU core (tests, the demo).
	pub fn tiny() -> Self {
		Self {
			family: "qwen3".into(),
			vocab_size: crate::data::VOCAB_SIZE,
			hidden_size: 64,
			num_hidden_layers: 2,
			num_attention_heads: 4,
			num_key_value_heads: 2,
			head_dim: 16,
			intermediate_size: 176,
			max_position_embeddings: 128,
			rope_theta: 10_000.0,
			rms_norm_eps: 1e-6,
			tokenizer: None,
		}
	}

	/// About 100 M parameters (benchmarks).
	pub fn m100() -> Self {
		Self {
			family: "qwen3".into(),
			vocab_size: crate::data::VOCAB_SIZE,
			hidden_size: 768,
			num_hidden_layers: 13,
			num_attention_heads: 12,
			num_key_value_heads: 4,
			head_dim: 64,
			intermediate_size: 2560,
			max_position_embeddings: 512,
			rope_theta: 1_000_000.0,
			rms_norm_eps: 1e-6,
			tokenizer: None,
		}
	}

	/// The shape of Qwen3-0.6B (28 layers, hidden 1024, 16 heads over 8 KV heads of 128, vocab
	/// 151 936), with a context of 4 096 positions; benchmarks (random weights).
	pub fn qwen3_0_6b() -> Self {
		Self {
			family: "qwen3".into(),
			vocab_size: 151_936,
			hidden_size: 1024,
			num_hidden_layers: 28,
			num_attention_heads: 16,
			num_key_value_heads: 8,
			head_dim: 128,
			intermediate_size: 3072,
			max_position_embeddings: 4096,
			rope_theta: 1_000_000.0,
			rms_norm_eps: 1e-6,
			tokenizer: None,
		}
	}

	/// The shape of Qwen3-8B (36 layers, hidden 4096, 32 heads over 8 KV heads of 128,
	/// intermediate 12 288, vocab 151 936), with a context of 4 096 positions; benchmarks.
	pub fn qwen3_8b() -> Self {
		Self {
			hidden_size: 4096,
			num_hidden_layers: 36,
			num_attention_heads: 32,
			intermediate_size: 12_288,
			..Self::qwen3_0_6b()
		}
	}

	/// Bytes of weights a decoding step reads at `bytes_per_value`: every parameter but the
	/// embedding table, of which one row (the memory-bandwidth roofline of decoding).
	pub fn decode_bytes_per_token(&self, bytes_per_value: usize) -> usize {
		let table = self.vocab_size.saturating_mul(self.hidden_size);
		(self.parameter_count() - table + self.hidden_size).saturating_mul(bytes_per_value)
	}

	/// Registry layers: the embedding, one per decoder block, then the final norm with the head.
	pub fn layer_count(&self) -> usize {
		self.num_hidden_layers + 2
	}

	/// Parameters of the model; saturates (a hostile config cannot wrap it past the size check).
	pub fn parameter_count(&self) -> usize {
		let sum = |terms: &[usize]| terms.iter().fold(0usize, |a, t| a.saturating_add(*t));
		let mul = |terms: &[usize]| terms.iter().fold(1usize, |a, t| a.saturating_mul(*t));
		let (h, d, f) = (self.hidden_size, self.head_dim, self.intermediate_size);
		let (q, kv) = (mul(&[self.num_attention_heads, d]), mul(&[self.num_key_value_heads, d]));
		let block = sum(&[
			mul(&[2, h]),
			mul(&[2, d]),
			mul(&[h, q]),
			mul(&[2, h, kv]),
			mul(&[q, h]),
			mul(&[3, h, f]),
		]);
		sum(&[mul(&[2, self.vocab_size, h]), h, mul(&[self.num_hidden_layers, block])])
	}

	/// Refuses shapes the model cannot run, instead of panicking inside burn.
	pub fn validate(&self) -> Result<(), String> {
		let fail = |what: &str| Err(format!("model config: {what}"));
		if self.family != "qwen3" {
			return fail("family must be \"qwen3\"");
		}
		// A model with its own tokenizer is checked against the tokenizer when that is loaded.
		if self.tokenizer.is_none() && self.vocab_size < crate::data::VOCAB_SIZE {
			return fail("vocab_size must cover the 256 byte tokens");
		}
		if self.hidden_size == 0 || self.num_hidden_layers == 0 || self.num_attention_heads == 0 {
			return fail("hidden_size, num_hidden_layers and num_attention_heads must be positive");
		}
		if self.max_position_embeddings < 2 || self.intermediate_size == 0 {
			return fail("max_position_embeddings must be at least 2, intermediate_size positive");
		}
		// Bounds a hostile config cannot exceed to exhaust a worker's memory.
		if self.parameter_count() > 20_000_000_000 || self.max_position_embeddings > 1 << 20 {
			return fail("model too large");
		}
		if self.num_key_value_heads == 0
			|| !self.num_attention_heads.is_multiple_of(self.num_key_value_heads)
		{
			return fail("num_attention_heads must be a multiple of num_key_value_heads");
		}
		if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
			return fail("head_dim must be even");
		}
		if self.layer_count() > blyan_max_layers() {
			return fail("too many layers for the registry");
		}
		if self.rope_theta.is_nan()
			|| self.rope_theta <= 0.0
			|| self.rms_norm_eps.is_nan()
			|| self.rms_norm_eps <= 0.0
		{
			return fail("rope_theta and rms_norm_eps must be positive");
		}
		Ok(())
	}
}

/// The registry's bound on layers per version (`blyan_primitives::pol::MAX_LAYERS`).
const fn blyan_max_layers() -> usize {
	512
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
	pub q_proj: Linear<B>,
	pub k_proj: Linear<B>,
	pub v_proj: Linear<B>,
	pub o_proj: Linear<B>,
	pub q_norm: RmsNorm<B>,
	pub k_norm: RmsNorm<B>,
	/// Low-rank adapters over the frozen projections ([`crate::lora`]); `None` in a plain model.
	pub q_lora: Option<LoraAdapter<B>>,
	pub k_lora: Option<LoraAdapter<B>>,
	pub v_lora: Option<LoraAdapter<B>>,
	pub o_lora: Option<LoraAdapter<B>>,
	pub num_heads: usize,
	pub num_kv_heads: usize,
	pub head_dim: usize,
}

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
	pub gate_proj: Linear<B>,
	pub up_proj: Linear<B>,
	pub down_proj: Linear<B>,
	/// Low-rank adapters over the frozen projections ([`crate::lora`]); `None` in a plain model.
	pub gate_lora: Option<LoraAdapter<B>>,
	pub up_lora: Option<LoraAdapter<B>>,
	pub down_lora: Option<LoraAdapter<B>>,
}

#[derive(Module, Debug)]
pub struct DecoderBlock<B: Backend> {
	pub input_layernorm: RmsNorm<B>,
	pub self_attn: Attention<B>,
	pub post_attention_layernorm: RmsNorm<B>,
	pub mlp: Mlp<B>,
}

#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
	pub embed_tokens: Embedding<B>,
	pub layers: Vec<DecoderBlock<B>>,
	pub norm: RmsNorm<B>,
	pub lm_head: Linear<B>,
	/// `[max_positions, head_dim]` tables for RoPE; constants, not parameters.
	pub rope_cos: Tensor<B, 2>,
	pub rope_sin: Tensor<B, 2>,
}

/// Deterministic initialisation: every tensor drawn from one ChaCha stream seeded by `seed`, so
/// a model's root weights are the same on every machine and backend (burn's own initialisers use
/// a per-backend global RNG).
struct Init {
	rng: ChaCha20Rng,
}

impl Init {
	fn normal(&mut self, len: usize, std: f32) -> Vec<f32> {
		// Box–Muller on the ChaCha stream with portable `ln`/`cos` (not the platform's libm).
		(0..len)
			.map(|_| {
				let u1: f32 = self.rng.random::<f32>().max(f32::MIN_POSITIVE);
				let u2: f32 = self.rng.random::<f32>();
				std * sqrtf(-2.0 * logf(u1)) * cosf(2.0 * std::f32::consts::PI * u2)
			})
			.collect()
	}

	/// A `d_in → d_out` projection without bias; burn stores it as `[d_in, d_out]`.
	fn linear<B: Backend>(&mut self, d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
		let mut linear = LinearConfig::new(d_in, d_out).with_bias(false).init::<B>(device);
		let values = self.normal(d_in * d_out, 0.02);
		linear.weight = Param::from_data(TensorData::new(values, [d_in, d_out]), device);
		linear
	}
}

pub(crate) fn rms_norm<B: Backend>(size: usize, eps: f64, device: &B::Device) -> RmsNorm<B> {
	RmsNormConfig::new(size).with_epsilon(eps).init(device)
}

/// `cos`/`sin` tables in the rotate-half layout: frequency `i` at columns `i` and `i + d/2`.
pub(crate) fn rope_tables<B: Backend>(
	config: &ModelConfig,
	device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
	let (positions, dim) = (config.max_position_embeddings, config.head_dim);
	let half = dim / 2;
	let mut cos = Vec::with_capacity(positions * dim);
	let mut sin = Vec::with_capacity(positions * dim);
	for p in 0..positions {
		for c in 0..dim {
			let i = (c % half) as f64;
			let inv_freq = 1.0 / pow(config.rope_theta as f64, 2.0 * i / dim as f64);
			let angle = p as f64 * inv_freq;
			cos.push(math::cos(angle) as f32);
			sin.push(math::sin(angle) as f32);
		}
	}
	(
		Tensor::from_data(TensorData::new(cos, [positions, dim]), device),
		Tensor::from_data(TensorData::new(sin, [positions, dim]), device),
	)
}

impl<B: Backend> Transformer<B> {
	/// A freshly initialised model (a root version), deterministic in `seed`.
	pub fn init(config: &ModelConfig, seed: u64, device: &B::Device) -> Self {
		let mut init = Init { rng: ChaCha20Rng::seed_from_u64(seed) };
		let (vocab, h) = (config.vocab_size, config.hidden_size);
		let mut embed_tokens = EmbeddingConfig::new(vocab, h).init::<B>(device);
		embed_tokens.weight =
			Param::from_data(TensorData::new(init.normal(vocab * h, 0.02), [vocab, h]), device);
		Self::assemble(config, device, embed_tokens, |d_in, d_out| init.linear(d_in, d_out, device))
	}

	/// A model of `config`'s shape with normal(0, 0.02) weights drawn on `device` by the backend's
	/// own generator: fast at any size (benchmarks of real shapes on a GPU) but not the same on
	/// two backends, so never a registry root (that is [`Transformer::init`]).
	pub fn random(config: &ModelConfig, device: &B::Device) -> Self {
		use burn::nn::Initializer;
		let normal = Initializer::Normal { mean: 0.0, std: 0.02 };
		let embed_tokens = EmbeddingConfig::new(config.vocab_size, config.hidden_size)
			.with_initializer(normal.clone())
			.init(device);
		Self::assemble(config, device, embed_tokens, |d_in, d_out| {
			LinearConfig::new(d_in, d_out)
				.with_bias(false)
				.with_initializer(normal.clone())
				.init::<B>(device)
		})
	}

	/// The model around `embed_tokens`, its projections made by `linear(d_in, d_out)` in a fixed
	/// order (per block q, k, v, o, gate, up, down; then the head): [`Transformer::init`]'s weights
	/// are that order's draws from one stream.
	fn assemble(
		config: &ModelConfig,
		device: &B::Device,
		embed_tokens: Embedding<B>,
		mut linear: impl FnMut(usize, usize) -> Linear<B>,
	) -> Self {
		let h = config.hidden_size;
		let (q, kv) = (
			config.num_attention_heads * config.head_dim,
			config.num_key_value_heads * config.head_dim,
		);
		let layers = (0..config.num_hidden_layers)
			.map(|_| DecoderBlock {
				input_layernorm: rms_norm(h, config.rms_norm_eps, device),
				self_attn: Attention {
					q_proj: linear(h, q),
					k_proj: linear(h, kv),
					v_proj: linear(h, kv),
					o_proj: linear(q, h),
					q_norm: rms_norm(config.head_dim, config.rms_norm_eps, device),
					k_norm: rms_norm(config.head_dim, config.rms_norm_eps, device),
					q_lora: None,
					k_lora: None,
					v_lora: None,
					o_lora: None,
					num_heads: config.num_attention_heads,
					num_kv_heads: config.num_key_value_heads,
					head_dim: config.head_dim,
				},
				post_attention_layernorm: rms_norm(h, config.rms_norm_eps, device),
				mlp: Mlp {
					gate_proj: linear(h, config.intermediate_size),
					up_proj: linear(h, config.intermediate_size),
					down_proj: linear(config.intermediate_size, h),
					gate_lora: None,
					up_lora: None,
					down_lora: None,
				},
			})
			.collect();
		let lm_head = linear(h, config.vocab_size);
		let (rope_cos, rope_sin) = rope_tables(config, device);
		Self {
			embed_tokens,
			layers,
			norm: rms_norm(h, config.rms_norm_eps, device),
			lm_head,
			rope_cos,
			rope_sin,
		}
	}

	/// Logits `[batch, seq, vocab]` for tokens `[batch, seq]` (causal).
	pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
		let [batch, seq] = tokens.dims();
		let device = tokens.device();
		let pos = Positions {
			mask: causal_mask::<B>(seq, &device),
			cos: self.rope_cos.clone().narrow(0, 0, seq),
			sin: self.rope_sin.clone().narrow(0, 0, seq),
			batch,
			seq,
		};
		let mut x = self.embed_tokens.forward(tokens);
		for block in &self.layers {
			x = block.forward(x, &pos);
		}
		self.lm_head.forward(self.norm.forward(x))
	}

	/// Mean next-token loss (cross-entropy, nats) of `tokens` `[batch, seq + 1]`.
	pub fn loss(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 1> {
		let [batch, len] = tokens.dims();
		let inputs = tokens.clone().slice([0..batch, 0..len - 1]);
		let targets = tokens.slice([0..batch, 1..len]);
		let log_probs = log_softmax(self.forward(inputs), 2);
		log_probs.gather(2, targets.unsqueeze_dim(2)).mean().neg()
	}

	/// Next-token loss over the targets `trained` marks (1.0; 0.0 elsewhere, `[batch, len - 1]`):
	/// their mean log-likelihood, negated. `trained_count` is the number of ones; a batch with
	/// none has loss 0 (and no gradient) rather than 0/0.
	pub fn masked_loss(
		&self,
		tokens: Tensor<B, 2, Int>,
		trained: Tensor<B, 2>,
		trained_count: usize,
	) -> Tensor<B, 1> {
		let [batch, len] = tokens.dims();
		let inputs = tokens.clone().slice([0..batch, 0..len - 1]);
		let targets = tokens.slice([0..batch, 1..len]);
		let log_probs = log_softmax(self.forward(inputs), 2);
		let picked: Tensor<B, 2> =
			log_probs.gather(2, targets.unsqueeze_dim(2)).reshape([batch, len - 1]);
		(picked * trained).sum().div_scalar(trained_count.max(1) as f32).neg()
	}
}

fn causal_mask<B: Backend>(seq: usize, device: &B::Device) -> Tensor<B, 2, Bool> {
	let above_diagonal: Vec<bool> = (0..seq * seq).map(|i| i % seq > i / seq).collect();
	Tensor::from_data(TensorData::new(above_diagonal, [seq, seq]), device)
}

/// `x·cos + rotate_half(x)·sin` on `[batch, heads, seq, head_dim]`.
pub(crate) fn apply_rope<B: Backend>(
	x: Tensor<B, 4>,
	cos: &Tensor<B, 2>,
	sin: &Tensor<B, 2>,
) -> Tensor<B, 4> {
	rotate(x, cos.clone().unsqueeze(), sin.clone().unsqueeze())
}

/// `x·cos + rotate_half(x)·sin` over the last dimension, in any layout whose `cos`/`sin`
/// broadcast against `x` (element-wise, so every layout computes the same bits).
pub(crate) fn rotate<B: Backend>(
	x: Tensor<B, 4>,
	cos: Tensor<B, 4>,
	sin: Tensor<B, 4>,
) -> Tensor<B, 4> {
	let [b, h, s, d] = x.dims();
	let half = d / 2;
	let x1 = x.clone().slice([0..b, 0..h, 0..s, 0..half]);
	let x2 = x.clone().slice([0..b, 0..h, 0..s, half..d]);
	let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
	x * cos + rotated * sin
}

/// What every block of one forward pass shares: the causal mask and the RoPE tables for its
/// sequence length.
struct Positions<B: Backend> {
	mask: Tensor<B, 2, Bool>,
	cos: Tensor<B, 2>,
	sin: Tensor<B, 2>,
	batch: usize,
	seq: usize,
}

impl<B: Backend> DecoderBlock<B> {
	fn forward(&self, x: Tensor<B, 3>, pos: &Positions<B>) -> Tensor<B, 3> {
		let attn = self.self_attn.forward(self.input_layernorm.forward(x.clone()), pos);
		let x = x + attn;
		let mlp = self.mlp.forward(self.post_attention_layernorm.forward(x.clone()));
		x + mlp
	}
}

impl<B: Backend> Attention<B> {
	fn forward(&self, x: Tensor<B, 3>, pos: &Positions<B>) -> Tensor<B, 3> {
		let (heads, kv_heads, dim) = (self.num_heads, self.num_kv_heads, self.head_dim);
		let (batch, seq) = (pos.batch, pos.seq);
		let split = |t: Tensor<B, 3>, n: usize| t.reshape([batch, seq, n, dim]).swap_dims(1, 2);
		let q = self.q_norm.forward(split(project(&self.q_proj, &self.q_lora, x.clone()), heads));
		let k =
			self.k_norm.forward(split(project(&self.k_proj, &self.k_lora, x.clone()), kv_heads));
		let v = split(project(&self.v_proj, &self.v_lora, x), kv_heads);
		let q = apply_rope(q, &pos.cos, &pos.sin);
		let k = repeat_kv(apply_rope(k, &pos.cos, &pos.sin), heads / kv_heads);
		let v = repeat_kv(v, heads / kv_heads);

		let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dim as f32).sqrt());
		let mask = pos.mask.clone().unsqueeze::<4>().expand([batch, heads, seq, seq]);
		let weights = softmax(scores.mask_fill(mask, -1.0e9), 3);
		let out = weights.matmul(v).swap_dims(1, 2).reshape([batch, seq, heads * dim]);
		project(&self.o_proj, &self.o_lora, out)
	}
}

/// Grouped-query attention: each key/value head serves `n_rep` query heads.
pub(crate) fn repeat_kv<B: Backend>(x: Tensor<B, 4>, n_rep: usize) -> Tensor<B, 4> {
	if n_rep == 1 {
		return x;
	}
	let [b, kv, s, d] = x.dims();
	x.unsqueeze_dim::<5>(2).expand([b, kv, n_rep, s, d]).reshape([b, kv * n_rep, s, d])
}

impl<B: Backend> Mlp<B> {
	fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
		let gate = silu(project(&self.gate_proj, &self.gate_lora, x.clone()));
		let up = project(&self.up_proj, &self.up_lora, x);
		project(&self.down_proj, &self.down_lora, gate * up)
	}
}
