//! The training loop (AdamW on next-token loss) and the evaluation that Proof-of-Learning scores.

use blyan_primitives::training::{Perbill, StepScheduleParams, TrainingParams};
use burn::{
	module::{AutodiffModule, Module, ModuleVisitor, Param},
	optim::{AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer},
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
	/// Warm-up, decay, clipping and accumulation; the default is none of them.
	#[serde(default)]
	pub schedule: StepSchedule,
}

/// What shapes each step beyond AdamW at `learning_rate`: a linear warm-up, a cosine decay, a
/// clip of the gradients' global norm and gradient accumulation, as Hugging Face's `Trainer`
/// does them. The default is none of them: a constant rate, the gradients as computed, one
/// batch per step (what every job ran before these existed, bit for bit).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSchedule {
	/// Steps over which the rate rises linearly to `learning_rate`: step `s ≤ warmup_steps`
	/// runs at `learning_rate · s / warmup_steps` (so the first step moves the weights too,
	/// unlike `transformers`' schedule, whose first step has rate 0).
	#[serde(default)]
	pub warmup_steps: u32,
	/// After the warm-up, the rate falls along a half cosine from `learning_rate` to
	/// `learning_rate · ratio` at the last step; `None`: it stays at `learning_rate`.
	#[serde(default)]
	pub cosine_min_ratio: Option<f64>,
	/// The gradients are scaled so their global L2 norm is at most this (PyTorch's
	/// `clip_grad_norm_`: by `max / (norm + 10⁻⁶)` where the norm exceeds it); `None`: no clip.
	#[serde(default)]
	pub max_grad_norm: Option<f32>,
	/// Batches of `batch_size` per step, their gradients averaged: a step sees
	/// `batch_size · micro_batches` sequences in `micro_batches` passes of `batch_size`.
	#[serde(default = "one")]
	pub micro_batches: u32,
}

fn one() -> u32 {
	1
}

/// The most micro-batches a step may take (a step is still one checkpointed unit of work).
pub const MAX_MICRO_BATCHES: u32 = StepScheduleParams::MAX_MICRO_BATCHES;

impl Default for StepSchedule {
	fn default() -> Self {
		Self { warmup_steps: 0, cosine_min_ratio: None, max_grad_norm: None, micro_batches: 1 }
	}
}

impl StepSchedule {
	/// Refuses what no worker could run alike: a warm-up longer than the job, a ratio outside
	/// [0, 1], a clip that is not a positive number, no micro-batch or too many.
	pub fn validate(&self, steps: u32) -> Result<(), String> {
		if self.warmup_steps > steps {
			return Err(format!(
				"hyper-parameters: warmup_steps {} exceeds the {steps} steps",
				self.warmup_steps
			));
		}
		if self.cosine_min_ratio.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
			return Err("hyper-parameters: cosine_min_ratio must be in [0, 1]".into());
		}
		if self.max_grad_norm.is_some_and(|n| !n.is_finite() || n <= 0.0) {
			return Err("hyper-parameters: max_grad_norm must be a positive number".into());
		}
		if !(1..=MAX_MICRO_BATCHES).contains(&self.micro_batches) {
			return Err(format!(
				"hyper-parameters: micro_batches must be in 1..={MAX_MICRO_BATCHES}"
			));
		}
		Ok(())
	}
}

impl From<&StepScheduleParams> for StepSchedule {
	/// The chain's integers as the loop takes them: the ratio's billionths and the clip's
	/// thousandths divided in `f64`, so every worker reads the same bits.
	fn from(p: &StepScheduleParams) -> Self {
		Self {
			warmup_steps: p.warmup_steps,
			cosine_min_ratio: p.cosine_min_ratio.map(|r| f64::from(r.deconstruct()) / 1e9),
			max_grad_norm: p.max_grad_norm_millis.map(|m| (f64::from(m) / 1e3) as f32),
			micro_batches: p.micro_batches,
		}
	}
}

impl StepSchedule {
	/// The chain's fields, rounded to their units (the caller checks they read back the same).
	fn to_params(self) -> Result<StepScheduleParams, String> {
		let ratio = match self.cosine_min_ratio {
			Some(r) if !(0.0..=1.0).contains(&r) => {
				return Err("hyper-parameters: cosine_min_ratio must be in [0, 1]".into())
			}
			r => r.map(|r| Perbill::from_parts((r * 1e9).round() as u32)),
		};
		let norm = match self.max_grad_norm {
			Some(n) if !(n.is_finite() && n > 0.0 && f64::from(n) * 1e3 < f64::from(u32::MAX)) => {
				return Err("hyper-parameters: max_grad_norm must be a positive number".into())
			}
			n => n.map(|n| (f64::from(n) * 1e3).round() as u32),
		};
		Ok(StepScheduleParams {
			warmup_steps: self.warmup_steps,
			cosine_min_ratio: ratio,
			max_grad_norm_millis: norm,
			micro_batches: self.micro_batches,
		})
	}
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
			schedule: StepSchedule::from(&p.schedule),
		}
	}
}

impl Hyperparams {
	/// The typed parameters a job posts: rates in whole 10⁻⁹ (the chain's unit; a finer one is
	/// refused rather than silently rounded), everything within the chain's bounds. No LoRA:
	/// a LoRA job sets `lora` ([`crate::lora::LoraConfig::to_params`]).
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
			schedule: self.schedule.to_params()?,
			lora: None,
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
		if read_back.schedule.cosine_min_ratio != self.schedule.cosine_min_ratio {
			return Err("hyper-parameters: cosine_min_ratio must be a multiple of 1e-9".into());
		}
		if read_back.schedule.max_grad_norm != self.schedule.max_grad_norm {
			return Err("hyper-parameters: max_grad_norm must be a multiple of 0.001".into());
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
		// The schedule's own messages first: they say more than the chain's bounds.
		self.schedule.validate(self.steps)?;
		self.to_params().map(drop)
	}

	/// The learning rate of step `step` (1-based) of [`Hyperparams::steps`], in `f64` with the
	/// portable cosine, so every machine steps at the same rate.
	pub fn learning_rate_at(&self, step: u32) -> f64 {
		let StepSchedule { warmup_steps: warmup, cosine_min_ratio, .. } = self.schedule;
		if warmup > 0 && step <= warmup {
			return self.learning_rate * f64::from(step) / f64::from(warmup);
		}
		let Some(ratio) = cosine_min_ratio else { return self.learning_rate };
		let span = self.steps.saturating_sub(warmup).max(1);
		let progress = f64::from(step - warmup) / f64::from(span);
		let cosine =
			0.5 * (1.0 + crate::portable::math::cos(std::f64::consts::PI * progress.min(1.0)));
		self.learning_rate * (ratio + (1.0 - ratio) * cosine)
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
/// `on_step(step, loss)` sees each step's training loss. `hp` must have passed
/// [`Hyperparams::check_against`] (the worker checks every job's before it trains); a
/// schedule it would refuse is a caller's bug, caught by a debug assertion.
pub fn train<B: AutodiffBackend>(
	mut model: Transformer<B>,
	train_data: &[i64],
	hp: &Hyperparams,
	seed: u64,
	device: &B::Device,
	mut on_step: impl FnMut(u32, f32),
) -> Transformer<B> {
	debug_assert_eq!(hp.validate(), Ok(()), "unchecked hyper-parameters");
	let mut optimizer =
		AdamWConfig::new().with_weight_decay(hp.weight_decay).init::<B, Transformer<B>>();
	let mut rng = ChaCha20Rng::seed_from_u64(seed);
	for step in 1..=hp.steps {
		let (_, windows) = hp.draw_step(train_data, &mut rng);
		let (trained, loss) = train_step(model, &mut optimizer, windows, hp, step, device);
		model = trained;
		on_step(step, loss);
	}
	model
}

impl Hyperparams {
	/// Sequences one step draws: `batch_size` per micro-batch.
	pub fn sequences_per_step(&self) -> usize {
		self.batch_size * self.schedule.micro_batches.max(1) as usize
	}

	/// The windows of `seq_len + 1` tokens a step draws from `train_data` with `rng`: their
	/// offsets (what a trace records) and their tokens, concatenated.
	pub fn draw_step(&self, train_data: &[i64], rng: &mut ChaCha20Rng) -> (Vec<usize>, Vec<i64>) {
		let window = self.seq_len + 1;
		let offsets =
			data::sample_offsets(train_data.len(), rng, self.sequences_per_step(), window);
		let windows = data::gather(train_data, &offsets, window);
		(offsets, windows)
	}
}

/// One optimizer step on `windows` (the step's [`Hyperparams::sequences_per_step`] windows,
/// concatenated): a loss and backward pass per micro-batch of `batch_size`, their gradients
/// averaged, the global norm clipped, then AdamW at [`Hyperparams::learning_rate_at`]`(step)`.
/// Returns the model and the mean of the micro-batches' losses. The training loop and the
/// audit's traced segments both step through here, so they compute the same bits.
pub(crate) fn train_step<B: AutodiffBackend, O: Optimizer<Transformer<B>, B>>(
	model: Transformer<B>,
	optimizer: &mut O,
	windows: Vec<i64>,
	hp: &Hyperparams,
	step: u32,
	device: &B::Device,
) -> (Transformer<B>, f32) {
	let micro = hp.schedule.micro_batches.max(1) as usize;
	let window = hp.seq_len + 1;
	let parts: Vec<&[i64]> = windows.chunks(hp.batch_size * window).take(micro).collect();
	// Each micro-batch's share of the step's loss. Data with context-only tokens (chat) weigh
	// each by its trained targets, so the step's loss is the mean over all of them (what one
	// batch of every window gives, and Hugging Face's `Trainer` does); other data, equally.
	let trained = |part: &[i64]| {
		part.chunks_exact(window)
			.map(|w| w[1..].iter().filter(|t| data::is_trained(**t)).count())
			.sum::<usize>()
	};
	let shares: Vec<f32> = if windows.iter().all(|t| data::is_trained(*t)) {
		vec![1.0 / micro as f32; parts.len()]
	} else {
		let counts: Vec<usize> = parts.iter().map(|p| trained(p)).collect();
		let total = counts.iter().sum::<usize>().max(1);
		counts.iter().map(|c| *c as f32 / total as f32).collect()
	};
	let mut accumulated = GradientsAccumulator::<Transformer<B>>::new();
	let mut step_loss = 0f32;
	for (part, share) in parts.into_iter().zip(shares) {
		let loss = batch_loss(&model, part.to_vec(), hp.batch_size, device);
		let value = loss.clone().into_scalar().elem_f32();
		// One micro-batch is the plain loss (no scaling), as before accumulation existed.
		let (loss, value) =
			if micro == 1 { (loss, value) } else { (loss.mul_scalar(share), value * share) };
		step_loss += value;
		accumulated.accumulate(&model, GradientsParams::from_grads(loss.backward(), &model));
	}
	let mut grads = accumulated.grads();
	if let Some(max) = hp.schedule.max_grad_norm {
		clip_global_norm::<B>(&model, &mut grads, max);
	}
	let model = optimizer.step(hp.learning_rate_at(step), model, grads);
	(model, step_loss)
}

/// Scales `grads` by `max / (norm + 10⁻⁶)` where their global L2 norm exceeds `max`. The norm
/// sums each parameter's sum of squares in `f64`, in the model's parameter order (not burn's
/// random ids), so it is the same number everywhere.
fn clip_global_norm<B: AutodiffBackend>(
	model: &Transformer<B>,
	grads: &mut GradientsParams,
	max: f32,
) {
	struct SquaredNorm<'a> {
		grads: &'a GradientsParams,
		sum: f64,
	}
	impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_> {
		fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
			if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
				self.sum += f64::from(g.clone().mul(g).sum().into_scalar().elem_f32());
			}
		}
	}
	struct Scale<'a> {
		grads: &'a mut GradientsParams,
		factor: f32,
	}
	impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
		fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
			if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
				self.grads.register::<B::InnerBackend, D>(param.id, g.mul_scalar(self.factor));
			}
		}
	}
	// A bound that is not a positive number (refused by `StepSchedule::validate`) clips nothing
	// rather than turning the step around.
	if !(max.is_finite() && max > 0.0) {
		return;
	}
	let mut norm = SquaredNorm { grads, sum: 0.0 };
	Module::<B>::visit(model, &mut norm);
	let norm = norm.sum.sqrt();
	let factor = f64::from(max) / (norm + 1e-6);
	if factor < 1.0 {
		Module::<B>::visit(model, &mut Scale { grads, factor: factor as f32 });
	}
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

#[cfg(test)]
mod tests {
	use burn::backend::Autodiff;

	use super::*;

	#[test]
	fn a_schedule_reaches_the_chain_and_comes_back_bit_for_bit() {
		let hp = Hyperparams {
			steps: 40,
			schedule: StepSchedule {
				warmup_steps: 4,
				cosine_min_ratio: Some(0.1),
				max_grad_norm: Some(1.0),
				micro_batches: 2,
			},
			..Hyperparams::default()
		};
		let params = hp.to_params().unwrap();
		assert_eq!(params.schedule.cosine_min_ratio, Some(Perbill::from_parts(100_000_000)));
		assert_eq!(params.schedule.max_grad_norm_millis, Some(1000));
		assert_eq!(params.lora, None);
		assert_eq!(Hyperparams::from(&params), hp);
	}
	use crate::{init_layers, weights, CpuBackend};

	type Ad = Autodiff<CpuBackend>;

	fn hp(schedule: StepSchedule) -> Hyperparams {
		Hyperparams { steps: 10, learning_rate: 1e-3, schedule, ..Default::default() }
	}

	#[test]
	fn the_rate_warms_up_linearly_then_follows_the_cosine_down_to_its_floor() {
		let constant = hp(StepSchedule::default());
		assert!((1..=10).all(|s| constant.learning_rate_at(s) == 1e-3));
		let warm =
			hp(StepSchedule { warmup_steps: 4, cosine_min_ratio: Some(0.1), ..Default::default() });
		let rates: Vec<f64> = (1..=10).map(|s| warm.learning_rate_at(s)).collect();
		for (rate, want) in rates.iter().zip([2.5e-4, 5e-4, 7.5e-4, 1e-3]) {
			assert!((rate - want).abs() < 1e-15, "warm-up: {rates:?}");
		}
		assert!(rates[4..].windows(2).all(|w| w[1] < w[0]), "{rates:?}");
		assert!((rates[9] - 1e-4).abs() < 1e-12, "the last step runs at the floor: {}", rates[9]);
		// Halfway through the decay (step 7 of 4 + 6), halfway down.
		assert!((rates[6] - 5.5e-4).abs() < 1e-12, "{}", rates[6]);
	}

	#[test]
	fn schedules_no_worker_could_run_are_refused() {
		for (schedule, error) in [
			(
				StepSchedule { warmup_steps: 11, ..Default::default() },
				"warmup_steps 11 exceeds the 10 steps",
			),
			(
				StepSchedule { cosine_min_ratio: Some(1.5), ..Default::default() },
				"cosine_min_ratio",
			),
			(StepSchedule { max_grad_norm: Some(f32::NAN), ..Default::default() }, "max_grad_norm"),
			(StepSchedule { max_grad_norm: Some(0.0), ..Default::default() }, "max_grad_norm"),
			(StepSchedule { micro_batches: 0, ..Default::default() }, "micro_batches"),
			(
				StepSchedule { micro_batches: MAX_MICRO_BATCHES + 1, ..Default::default() },
				"micro_batches",
			),
		] {
			let e = hp(schedule).validate().unwrap_err();
			assert!(e.contains(error), "{schedule:?}: {e}");
		}
		// A schedule finer than the chain's units is refused, not rounded.
		let fine = StepSchedule { max_grad_norm: Some(0.0005), ..Default::default() };
		assert!(hp(fine).validate().unwrap_err().contains("multiple of 0.001"));
		// Old documents (no schedule) read as the default.
		let old: Hyperparams = serde_json::from_str(
			r#"{"steps": 3, "batch_size": 2, "seq_len": 8, "learning_rate": 0.001}"#,
		)
		.unwrap();
		assert_eq!(old.schedule, StepSchedule::default());
	}

	/// The largest weight difference between one step on a batch of 4 and one on two
	/// micro-batches of 2 (the same windows: the sampler draws 4 either way).
	fn whole_against_micro_batches(data: &[i64]) -> f32 {
		let config = crate::model::ModelConfig::tiny();
		let layers = init_layers(&config, 2);
		let device = Default::default();
		let run = |hp: &Hyperparams| {
			let model = weights::import_layers::<Ad>(&config, &layers, &device).unwrap();
			weights::export_layers(&train(model, data, hp, 4, &device, |_, _| {}))
		};
		let whole = Hyperparams {
			steps: 1,
			batch_size: 4,
			seq_len: 12,
			learning_rate: 1e-2,
			..Default::default()
		};
		let split = Hyperparams {
			batch_size: 2,
			schedule: StepSchedule { micro_batches: 2, ..Default::default() },
			..whole.clone()
		};
		let (a, b) = (run(&whole), run(&split));
		assert_ne!(a, layers, "the step moved the weights");
		a.iter()
			.flatten()
			.zip(b.iter().flatten())
			.flat_map(|(x, y)| x.values.iter().zip(&y.values).map(|(p, q)| (p - q).abs()))
			.fold(0f32, f32::max)
	}

	#[test]
	fn two_micro_batches_step_as_one_batch_of_both() {
		let data: Vec<i64> =
			b"a stitch in time saves nine; ".repeat(30).into_iter().map(i64::from).collect();
		let worst = whole_against_micro_batches(&data);
		assert!(worst < 1e-5, "{worst}");
	}

	/// Chat data: micro-batches with different numbers of trained targets weigh by them, so
	/// the step is the one batch's mean over all its trained targets.
	#[test]
	fn micro_batches_of_chat_data_weigh_by_their_trained_targets() {
		// Prompts (marked context-only: bytes 0..9 and 18..41 of each record) of uneven
		// lengths between replies.
		let record = b"q: what? a: this. q: and the other one?? a: that. ";
		let data: Vec<i64> = record
			.repeat(20)
			.into_iter()
			.enumerate()
			.map(|(i, b)| {
				let at = i % record.len();
				if at < 9 || (18..41).contains(&at) {
					i64::from(b) | data::CONTEXT_ONLY
				} else {
					i64::from(b)
				}
			})
			.collect();
		let worst = whole_against_micro_batches(&data);
		assert!(worst < 1e-5, "{worst}");
	}

	/// The gradients' global L2 norm, summed here in `f64` from their values.
	fn global_norm(model: &Transformer<Ad>, grads: &GradientsParams) -> f64 {
		struct Norm<'a>(&'a GradientsParams, f64);
		impl<B: AutodiffBackend> ModuleVisitor<B> for Norm<'_> {
			fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
				if let Some(g) = self.0.get::<B::InnerBackend, D>(param.id) {
					let v: Vec<f32> = g.into_data().convert::<f32>().into_vec().unwrap();
					self.1 += v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>();
				}
			}
		}
		let mut norm = Norm(grads, 0.0);
		Module::<Ad>::visit(model, &mut norm);
		norm.1.sqrt()
	}

	#[test]
	fn clipping_scales_the_gradients_to_the_global_norm() {
		let config = crate::model::ModelConfig::tiny();
		let device = Default::default();
		let model =
			weights::import_layers::<Ad>(&config, &init_layers(&config, 3), &device).unwrap();
		let values: Vec<i64> = (0..2 * 17).map(|i| (i * 31 % 256) as i64).collect();
		let grads_of = |model: &Transformer<Ad>| {
			let loss = batch_loss(model, values.clone(), 2, &device);
			GradientsParams::from_grads(loss.backward(), model)
		};
		let norm = global_norm;
		let mut grads = grads_of(&model);
		let before = norm(&model, &grads);
		assert!(before > 0.1, "{before}");
		clip_global_norm::<Ad>(&model, &mut grads, 0.1);
		let after = norm(&model, &grads);
		assert!((after - 0.1).abs() < 1e-5, "clipped to {after}");
		// Under the bound, nothing changes.
		let mut grads = grads_of(&model);
		clip_global_norm::<Ad>(&model, &mut grads, (before * 2.0) as f32);
		assert!((norm(&model, &grads) - before).abs() < 1e-9);
	}
}
