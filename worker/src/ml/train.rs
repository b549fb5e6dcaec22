//! The training loop (AdamW on next-token loss) and the evaluation that Proof-of-Learning scores.

use burn::{
	module::AutodiffModule,
	optim::{AdamWConfig, GradientsParams, Optimizer},
	tensor::{
		backend::{AutodiffBackend, Backend},
		Int, Tensor, TensorData,
	},
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::{
	data,
	model::{ModelConfig, Transformer},
};

/// A job's hyper-parameters, the JSON in `JobSpec.hyperparams`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hyperparams {
	pub steps: u32,
	pub batch_size: usize,
	pub seq_len: usize,
	pub learning_rate: f64,
	#[serde(default)]
	pub weight_decay: f32,
	/// Evaluation uses at most this many batches of the validation set.
	#[serde(default = "default_eval_batches")]
	pub eval_batches: usize,
}

fn default_eval_batches() -> usize {
	16
}

impl Default for Hyperparams {
	fn default() -> Self {
		Self {
			steps: 60,
			batch_size: 8,
			seq_len: 64,
			learning_rate: 3e-3,
			weight_decay: 0.0,
			eval_batches: 16,
		}
	}
}

impl Hyperparams {
	pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
		let hp: Self =
			serde_json::from_slice(bytes).map_err(|e| format!("hyper-parameters: {e}"))?;
		hp.validate()?;
		Ok(hp)
	}

	pub fn to_json(&self) -> Vec<u8> {
		serde_json::to_vec(self).expect("plain struct serialises")
	}

	/// Checks these hyper-parameters can run on `config` and the data at hand: every shape the
	/// model cannot take is refused here rather than panicking inside burn.
	pub fn check_against(
		&self,
		config: &ModelConfig,
		train_len: Option<usize>,
	) -> Result<(), String> {
		self.validate()?;
		if self.seq_len > config.max_position_embeddings {
			return Err(format!(
				"hyper-parameters: seq_len {} exceeds the model's {} positions",
				self.seq_len, config.max_position_embeddings
			));
		}
		if train_len.is_some_and(|len| len <= self.seq_len) {
			return Err("the training data is shorter than one sequence".into());
		}
		Ok(())
	}

	pub fn validate(&self) -> Result<(), String> {
		if self.steps == 0 || self.steps > 1_000_000 {
			return Err("hyper-parameters: steps must be in 1..=1000000".into());
		}
		if self.batch_size == 0 || self.batch_size > 4096 || self.seq_len < 2 || self.seq_len > 8192
		{
			return Err("hyper-parameters: batch_size in 1..=4096, seq_len in 2..=8192".into());
		}
		if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
			return Err("hyper-parameters: learning_rate must be in (0, 1)".into());
		}
		if self.eval_batches == 0 {
			return Err("hyper-parameters: eval_batches must be positive".into());
		}
		Ok(())
	}
}

/// `[batch, len]` token tensor.
pub fn tokens<B: Backend>(values: Vec<i64>, batch: usize, device: &B::Device) -> Tensor<B, 2, Int> {
	let len = values.len() / batch;
	Tensor::from_data(TensorData::new(values, [batch, len]), device)
}

/// Trains `model` for `hp.steps` AdamW steps on batches drawn from `train_data` with `seed`.
/// `on_step(step, loss)` sees each step's training loss.
pub fn train<B: AutodiffBackend>(
	mut model: Transformer<B>,
	train_data: &[i64],
	hp: &Hyperparams,
	seed: u64,
	device: &B::Device,
	mut on_step: impl FnMut(u32, f32),
) -> Transformer<B> {
	let mut optimizer =
		AdamWConfig::new().with_weight_decay(hp.weight_decay).init::<B, Transformer<B>>();
	let mut rng = ChaCha20Rng::seed_from_u64(seed);
	for step in 0..hp.steps {
		let batch = data::sample_batch(train_data, &mut rng, hp.batch_size, hp.seq_len + 1);
		let loss = model.loss(tokens::<B>(batch, hp.batch_size, device));
		let value = loss.clone().into_scalar().elem_f32();
		let grads = GradientsParams::from_grads(loss.backward(), &model);
		model = optimizer.step(hp.learning_rate, model, grads);
		on_step(step + 1, value);
	}
	model
}

trait ElemF32 {
	fn elem_f32(self) -> f32;
}

impl<E: burn::tensor::ElementConversion> ElemF32 for E {
	fn elem_f32(self) -> f32 {
		self.elem::<f32>()
	}
}

/// Mean next-token loss of `model` over the evaluation batches of `data` (the validation set):
/// batches in order, each batch's mean loss summed in `f64` and divided by the batch count.
/// Returns `None` if the set is too small for one batch.
pub fn evaluate<B: Backend>(
	model: &Transformer<B>,
	data: &[i64],
	hp: &Hyperparams,
	device: &B::Device,
) -> Option<f64> {
	let batches = data::evaluation_batches(data, hp.batch_size, hp.seq_len + 1, hp.eval_batches);
	if batches.is_empty() {
		return None;
	}
	let count = batches.len();
	let total: f64 = batches
		.into_iter()
		.map(|batch| {
			model.loss(tokens::<B>(batch, hp.batch_size, device)).into_scalar().elem_f32() as f64
		})
		.sum();
	Some(total / count as f64)
}

/// The score of a model that cannot be evaluated (worst possible loss).
pub const INVALID_SCORE: u64 = u64::MAX;

/// The chain's fixed-point score of a loss: `round(loss × 10⁹)`. A loss that is not a finite
/// non-negative number (diverged weights give NaN or ∞) scores [`INVALID_SCORE`]; casting NaN
/// would give 0, a perfect score.
pub fn score(loss: f64) -> u64 {
	if !loss.is_finite() || loss < 0.0 || loss * 1e9 >= u64::MAX as f64 {
		return INVALID_SCORE;
	}
	(loss * 1e9).round() as u64
}

/// Inference copy of a trained model (drops the autodiff graph).
pub fn inference<B: AutodiffBackend>(model: &Transformer<B>) -> Transformer<B::InnerBackend> {
	model.valid()
}
