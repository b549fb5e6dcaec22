//! The training loop (AdamW on next-token loss) and the evaluation that Proof-of-Learning scores.

use blyan_primitives::training::{Perbill, TrainingParams};
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

/// A job's hyper-parameters as the training loop takes them: the chain's typed
/// [`TrainingParams`] (`JobSpec.training`) with rates as floats, read the same way everywhere.
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
	TrainingParams::DEFAULT.eval_batches as usize
}

impl Default for Hyperparams {
	fn default() -> Self {
		Self::from(&TrainingParams::DEFAULT)
	}
}

impl From<&TrainingParams> for Hyperparams {
	fn from(p: &TrainingParams) -> Self {
		Self {
			steps: p.steps,
			batch_size: p.batch_size as usize,
			seq_len: p.seq_len as usize,
			learning_rate: p.learning_rate_f64(),
			weight_decay: p.weight_decay_f32(),
			eval_batches: p.eval_batches as usize,
		}
	}
}

impl Hyperparams {
	/// The typed parameters a job posts: rates in whole 10⁻⁹ (the chain's unit; a finer one is
	/// refused rather than silently rounded), everything within the chain's bounds.
	pub fn to_params(&self) -> Result<TrainingParams, String> {
		let count = |v: usize, what: &str| {
			u32::try_from(v).map_err(|_| format!("hyper-parameters: {what} is too large"))
		};
		let rate = |v: f64, what: &str| {
			if !(0.0..=1.0).contains(&v) {
				return Err(format!("hyper-parameters: {what} must be in [0, 1]"));
			}
			Ok(Perbill::from_parts((v * 1e9).round() as u32))
		};
		let params = TrainingParams {
			steps: self.steps,
			batch_size: count(self.batch_size, "batch_size")?,
			seq_len: count(self.seq_len, "seq_len")?,
			learning_rate: rate(self.learning_rate, "learning_rate")?,
			weight_decay: rate(f64::from(self.weight_decay), "weight_decay")?,
			eval_batches: count(self.eval_batches, "eval_batches")?,
		};
		params.check().map_err(|e| e.to_string())?;
		// Every worker reads the rates back from the chain's billionths: they must come back as
		// given, not rounded.
		let read_back = Self::from(&params);
		if read_back.learning_rate != self.learning_rate {
			return Err("hyper-parameters: learning_rate must be a multiple of 1e-9".into());
		}
		if read_back.weight_decay != self.weight_decay {
			return Err("hyper-parameters: weight_decay must be a multiple of 1e-9".into());
		}
		Ok(params)
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

	/// Checks the bounds every job must meet (those the chain checks at posting).
	pub fn validate(&self) -> Result<(), String> {
		self.to_params().map(|_| ())
	}
}

/// `[batch, len]` token tensor.
pub fn tokens<B: Backend>(values: Vec<i64>, batch: usize, device: &B::Device) -> Tensor<B, 2, Int> {
	let len = values.len() / batch;
	Tensor::from_data(TensorData::new(values, [batch, len]), device)
}

/// The next-token loss of `model` on `batch` windows concatenated in `values`: over every
/// target, or, where the data marks tokens the model only reads ([`data::CONTEXT_ONLY`]: the
/// prompts of chat records), over the others. Data without marks takes the plain mean, so the
/// byte corpora's losses and traces are what they always were.
pub fn batch_loss<B: Backend>(
	model: &Transformer<B>,
	values: Vec<i64>,
	batch: usize,
	device: &B::Device,
) -> Tensor<B, 1> {
	if values.iter().all(|t| data::is_trained(*t)) {
		return model.loss(tokens::<B>(values, batch, device));
	}
	let window = values.len() / batch;
	let trained: Vec<f32> = values
		.chunks_exact(window)
		.flat_map(|w| w[1..].iter().map(|t| if data::is_trained(*t) { 1.0 } else { 0.0 }))
		.collect();
	let count = trained.iter().filter(|w| **w > 0.0).count();
	let trained = Tensor::from_data(TensorData::new(trained, [batch, window - 1]), device);
	let ids = values.into_iter().map(data::token_id).collect();
	model.masked_loss(tokens::<B>(ids, batch, device), trained, count)
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
		let loss = batch_loss(&model, batch, hp.batch_size, device);
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
/// Data with context-only tokens (chat records) weigh each batch by its trained targets
/// instead: the mean over every trained target of the set, so windows of prompt alone neither
/// pull the loss towards 0 nor count as much as a window of replies. Returns `None` if the set
/// is too small for one batch, or has no trained target in its evaluation batches.
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
	if batches.iter().flatten().all(|t| data::is_trained(*t)) {
		let count = batches.len();
		let total: f64 = batches
			.into_iter()
			.map(|batch| {
				batch_loss(model, batch, hp.batch_size, device).into_scalar().elem_f32() as f64
			})
			.sum();
		return Some(total / count as f64);
	}
	let window = hp.seq_len + 1;
	let (mut total, mut targets) = (0f64, 0usize);
	for batch in batches {
		let trained = batch
			.chunks_exact(window)
			.map(|w| w[1..].iter().filter(|t| data::is_trained(**t)).count())
			.sum::<usize>();
		if trained == 0 {
			continue;
		}
		let mean = batch_loss(model, batch, hp.batch_size, device).into_scalar().elem_f32();
		total += mean as f64 * trained as f64;
		targets += trained;
	}
	(targets > 0).then(|| total / targets as f64)
}

/// The score of a model that cannot be evaluated (the chain's constant).
pub use blyan_primitives::pol::INVALID_SCORE;

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
