//! Traced training: training split into segments between checkpoints, each segment a pure function
//! of its start state, so that anyone can re-run one and compare the end state bit for bit.
//!
//! A [`TrainState`] is everything training needs to go on after a step: the weights, AdamW's
//! moments for every parameter (in the model's parameter order, so the state does not depend on
//! burn's random parameter ids), the data sampler's position and the batch the step drew. The
//! miner itself restarts from the exported state at every checkpoint, so its run and a verifier's
//! re-run of a segment execute exactly the same operations.
//!
//! A LoRA job ([`Trained::Adapters`]) trains adapters over a frozen base that everyone already
//! has (a registered version): its states hold the adapters and their moments only, a few
//! hundredths of a full state.

use blyan_primitives::{audit::TrainingState, Hash as H256};
use burn::{
	module::{Module, ModuleVisitor, Param, ParamId},
	optim::{
		adaptor::OptimizerAdaptor, record::AdaptorRecord, AdamW, AdamWConfig, AdamWState,
		AdaptiveMomentumState, Optimizer,
	},
	tensor::{
		backend::{AutodiffBackend, Backend},
		Tensor, TensorData,
	},
};
use codec::{Decode, Encode};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{
	data,
	lora::{self, LoraConfig},
	model::{ModelConfig, Transformer},
	train::{train_step, Hyperparams},
	weights::{self, LayerTensors, WeightsError},
};

/// One parameter's AdamW state: its step count and moments (f32 bit patterns).
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Moments {
	pub time: u64,
	pub shape: Vec<u64>,
	pub first: Vec<u32>,
	pub second: Vec<u32>,
}

/// The full training state after `step` steps (a checkpoint's content).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
	pub step: u32,
	pub layers: Vec<LayerTensors>,
	/// AdamW state per parameter, in the model's parameter order (`None` before its first step).
	pub optimizer: Vec<Option<Moments>>,
	pub rng_word_pos: u128,
	/// Offsets into the training data of the windows the last step drew (empty at step 0).
	pub batch: Vec<u64>,
}

/// What a traced run trains.
#[derive(Clone, Copy, Debug)]
pub enum Trained<'a> {
	/// Every weight: a state's layers are the model's.
	Full,
	/// Adapters over the frozen `base` layers: a state's layers are the adapters, one per block.
	Adapters { lora: &'a LoraConfig, base: &'a [LayerTensors] },
}

impl Trained<'_> {
	/// Checks `layers` are what a state of this run holds.
	fn check(&self, config: &ModelConfig, layers: &[LayerTensors]) -> Result<(), WeightsError> {
		match self {
			Self::Full => {
				if layers.len() != config.layer_count() {
					return Err(WeightsError::LayerCount {
						expected: config.layer_count(),
						got: layers.len(),
					});
				}
				for (i, layer) in layers.iter().enumerate() {
					weights::check_layout(config, i, layer)?;
				}
				Ok(())
			}
			Self::Adapters { lora, .. } => {
				lora.check(config, layers).map_err(|e| WeightsError::State(e.to_string()))
			}
		}
	}

	/// The model a state's layers make.
	fn model<B: Backend>(
		&self,
		config: &ModelConfig,
		layers: &[LayerTensors],
		device: &B::Device,
	) -> Result<Transformer<B>, WeightsError> {
		match self {
			Self::Full => weights::import_layers::<B>(config, layers, device),
			Self::Adapters { lora, base } => {
				let model = weights::import_layers::<B>(config, base, device)?;
				lora::attach(model, config, lora, layers)
					.map_err(|e| WeightsError::State(e.to_string()))
			}
		}
	}

	/// The layers of a state of `model`.
	fn layers<B: Backend>(
		&self,
		model: &Transformer<B>,
	) -> Result<Vec<LayerTensors>, WeightsError> {
		match self {
			Self::Full => Ok(weights::export_layers(model)),
			Self::Adapters { lora, .. } => lora::export_adapters(model, lora)
				.ok_or_else(|| WeightsError::State("the model lost its adapters".into())),
		}
	}
}

/// The serialized form of a [`TrainState`] (what goes to IPFS).
#[derive(Encode, Decode)]
struct StateBlob {
	step: u32,
	layers: Vec<Vec<u8>>,
	optimizer: Vec<Option<Moments>>,
	rng_word_pos: u128,
	batch: Vec<u64>,
}

/// Hash of the optimizer part of a state; zero for no state at all (before the first step).
pub fn optimizer_hash(optimizer: &[Option<Moments>]) -> H256 {
	if optimizer.iter().all(Option::is_none) {
		return H256::zero();
	}
	H256::from(sp_crypto_hashing::blake2_256(&optimizer.encode()))
}

/// Hash of a step's batch indices; zero for none (step 0).
pub fn batch_hash(batch: &[u64]) -> H256 {
	if batch.is_empty() {
		return H256::zero();
	}
	H256::from(sp_crypto_hashing::blake2_256(&batch.encode()))
}

impl TrainState {
	/// The state before training from `layers`.
	pub fn initial(layers: Vec<LayerTensors>) -> Self {
		Self { step: 0, layers, optimizer: Vec::new(), rng_word_pos: 0, batch: Vec::new() }
	}

	/// What a checkpoint commits to.
	pub fn summary(&self) -> TrainingState {
		let roots: Vec<[u8; 32]> = self.layers.iter().map(weights::layer_root).collect();
		TrainingState {
			step: self.step,
			weights: H256::from(weights::weight_root(&roots)),
			optimizer: optimizer_hash(&self.optimizer),
			rng_word_pos: self.rng_word_pos,
			batch: batch_hash(&self.batch),
		}
	}

	pub fn encode(&self) -> Vec<u8> {
		StateBlob {
			step: self.step,
			layers: self.layers.iter().map(weights::encode_layer).collect(),
			optimizer: self.optimizer.clone(),
			rng_word_pos: self.rng_word_pos,
			batch: self.batch.clone(),
		}
		.encode()
	}

	/// Decodes a state blob for `config`, checking every layer's layout.
	pub fn decode(config: &ModelConfig, bytes: &[u8]) -> Result<Self, WeightsError> {
		Self::decode_for(config, Trained::Full, bytes)
	}

	/// Decodes a state blob of a run training `trained`, checking its layers are that run's.
	pub fn decode_for(
		config: &ModelConfig,
		trained: Trained<'_>,
		bytes: &[u8],
	) -> Result<Self, WeightsError> {
		let blob = StateBlob::decode(&mut &bytes[..])
			.map_err(|e| WeightsError::State(format!("not a training state: {e}")))?;
		// The count first: a blob of many layers is refused before any is decoded.
		let expected = match trained {
			Trained::Full => config.layer_count(),
			Trained::Adapters { .. } => config.num_hidden_layers,
		};
		if blob.layers.len() != expected {
			return Err(WeightsError::LayerCount { expected, got: blob.layers.len() });
		}
		let layers = blob
			.layers
			.iter()
			.enumerate()
			.map(|(i, bytes)| weights::decode_layer(i, bytes))
			.collect::<Result<Vec<_>, _>>()?;
		trained.check(config, &layers)?;
		Ok(Self {
			step: blob.step,
			layers,
			optimizer: blob.optimizer,
			rng_word_pos: blob.rng_word_pos,
			batch: blob.batch,
		})
	}
}

/// The parameters of a model in visit order: id, shape.
struct ParamOrder(Vec<(ParamId, Vec<usize>)>);

impl<B: Backend> ModuleVisitor<B> for ParamOrder {
	fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
		self.0.push((param.id, param.val().dims().to_vec()));
	}
}

/// Reads AdamW's state out of an optimizer record, in the model's parameter order.
struct ReadMoments<'a, B: AutodiffBackend> {
	record: &'a OptimizerRecord<B>,
	out: Vec<Option<Moments>>,
}

fn bits<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<u32> {
	tensor.into_data().to_vec::<f32>().unwrap_or_default().into_iter().map(f32::to_bits).collect()
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ReadMoments<'_, B> {
	fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
		let moments = self.record.get(&param.id).cloned().map(|record| {
			let state: AdamWState<B::InnerBackend, D> = record.into_state::<D>();
			let m = state.momentum;
			Moments {
				time: m.time as u64,
				shape: m.moment_1.dims().iter().map(|d| *d as u64).collect(),
				first: bits(m.moment_1),
				second: bits(m.moment_2),
			}
		});
		self.out.push(moments);
	}
}

/// Builds an optimizer record for a freshly imported model from moments in parameter order.
struct WriteMoments<'a, B: AutodiffBackend> {
	moments: &'a [Option<Moments>],
	next: usize,
	record: OptimizerRecord<B>,
	device: B::Device,
	error: Option<String>,
}

fn tensor<B: Backend, const D: usize>(
	values: &[u32],
	shape: &[usize],
	device: &B::Device,
) -> Tensor<B, D> {
	let values: Vec<f32> = values.iter().map(|b| f32::from_bits(*b)).collect();
	Tensor::from_data(TensorData::new(values, shape.to_vec()), device)
}

impl<B: AutodiffBackend> ModuleVisitor<B> for WriteMoments<'_, B> {
	fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
		let index = self.next;
		self.next += 1;
		let Some(Some(m)) = self.moments.get(index) else { return };
		let shape: Vec<usize> = m.shape.iter().map(|d| *d as usize).collect();
		let count: usize = shape.iter().product();
		if shape != param.val().dims().to_vec() || m.first.len() != count || m.second.len() != count
		{
			self.error.get_or_insert(format!("optimizer state {index} does not fit its parameter"));
			return;
		}
		let state = AdamWState::new(AdaptiveMomentumState::new(
			m.time as usize,
			tensor::<B::InnerBackend, D>(&m.first, &shape, &self.device),
			tensor::<B::InnerBackend, D>(&m.second, &shape, &self.device),
		));
		self.record.insert(param.id, AdaptorRecord::from_state::<D>(state));
	}
}

type AdamWOf<B> = OptimizerAdaptor<AdamW, Transformer<B>, B>;
/// AdamW's record: its state by (process-local) parameter id.
type OptimizerRecord<B> = <AdamWOf<B> as Optimizer<Transformer<B>, B>>::Record;

fn adamw<B: AutodiffBackend>(hp: &Hyperparams) -> AdamWOf<B> {
	AdamWConfig::new().with_weight_decay(hp.weight_decay).init::<B, Transformer<B>>()
}

/// The model and optimizer of `state` on backend `B`.
fn restore<B: AutodiffBackend>(
	config: &ModelConfig,
	trained: Trained<'_>,
	state: &TrainState,
	hp: &Hyperparams,
	device: &B::Device,
) -> Result<(Transformer<B>, AdamWOf<B>), WeightsError> {
	let model = trained.model::<B>(config, &state.layers, device)?;
	let mut order = ParamOrder(Vec::new());
	Module::<B>::visit(&model, &mut order);
	if !state.optimizer.is_empty() && state.optimizer.len() != order.0.len() {
		return Err(WeightsError::State(format!(
			"training state has optimizer state for {} parameters, the model has {}",
			state.optimizer.len(),
			order.0.len()
		)));
	}
	let mut write = WriteMoments::<B> {
		moments: &state.optimizer,
		next: 0,
		record: adamw::<B>(hp).to_record(),
		device: device.clone(),
		error: None,
	};
	Module::<B>::visit(&model, &mut write);
	if let Some(e) = write.error {
		return Err(WeightsError::State(e));
	}
	let optimizer = adamw::<B>(hp).load_record(write.record);
	Ok((model, optimizer))
}

/// Runs training from `state` up to step `to_step` on backend `B` and returns the state there.
/// `on_step(step, loss)` sees every step. The same inputs give the same bits on the CPU backend.
#[allow(clippy::too_many_arguments)]
pub fn run_segment<B: AutodiffBackend>(
	config: &ModelConfig,
	state: &TrainState,
	train_data: &[i64],
	hp: &Hyperparams,
	seed: u64,
	to_step: u32,
	device: &B::Device,
	on_step: impl FnMut(u32, f32),
) -> Result<TrainState, WeightsError> {
	run_segment_for::<B>(
		config,
		Trained::Full,
		state,
		train_data,
		hp,
		seed,
		to_step,
		device,
		on_step,
	)
}

/// [`run_segment`] of a run training `trained` (adapters over a base, or every weight).
#[allow(clippy::too_many_arguments)]
pub fn run_segment_for<B: AutodiffBackend>(
	config: &ModelConfig,
	trained: Trained<'_>,
	state: &TrainState,
	train_data: &[i64],
	hp: &Hyperparams,
	seed: u64,
	to_step: u32,
	device: &B::Device,
	mut on_step: impl FnMut(u32, f32),
) -> Result<TrainState, WeightsError> {
	hp.schedule.validate(hp.steps).map_err(WeightsError::State)?;
	if to_step < state.step || to_step > hp.steps {
		return Err(WeightsError::State(format!(
			"cannot train from step {} to step {to_step} of {}",
			state.step, hp.steps
		)));
	}
	let (mut model, mut optimizer) = restore::<B>(config, trained, state, hp, device)?;
	let mut rng = ChaCha20Rng::seed_from_u64(seed);
	rng.set_word_pos(state.rng_word_pos);
	let mut batch = state.batch.clone();
	for step in state.step + 1..=to_step {
		let (offsets, windows) = hp.draw_step(train_data, &mut rng);
		let (trained, value) = train_step(model, &mut optimizer, windows, hp, step, device);
		model = trained;
		batch = offsets.iter().map(|o| *o as u64).collect();
		on_step(step, value);
	}
	let mut read = ReadMoments::<B> { record: &optimizer.to_record(), out: Vec::new() };
	Module::<B>::visit(&model, &mut read);
	let optimizer = if read.out.iter().all(Option::is_none) { Vec::new() } else { read.out };
	Ok(TrainState {
		step: to_step,
		layers: trained.layers(&model)?,
		optimizer,
		rng_word_pos: rng.get_word_pos(),
		batch,
	})
}

/// What a miner that skips a segment would claim: the sampler moved on as if it had trained,
/// the weights and optimizer left as they were. Only for the tests that show such a miner is
/// caught.
pub fn skip_segment(
	state: &TrainState,
	train_len: usize,
	hp: &Hyperparams,
	seed: u64,
	to_step: u32,
) -> TrainState {
	let mut rng = ChaCha20Rng::seed_from_u64(seed);
	rng.set_word_pos(state.rng_word_pos);
	let mut batch = state.batch.clone();
	for _ in state.step + 1..=to_step {
		batch = data::sample_offsets(train_len, &mut rng, hp.sequences_per_step(), hp.seq_len + 1)
			.into_iter()
			.map(|o| o as u64)
			.collect();
	}
	TrainState { step: to_step, rng_word_pos: rng.get_word_pos(), batch, ..state.clone() }
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{init_layers, CpuBackend};
	use burn::backend::Autodiff;

	type B = Autodiff<CpuBackend>;

	fn setup() -> (ModelConfig, Vec<i64>, Hyperparams) {
		let data = data::encode(&data::generate_corpus(3, 20_000));
		let hp = Hyperparams { steps: 6, batch_size: 2, seq_len: 16, ..Hyperparams::default() };
		(ModelConfig::tiny(), data, hp)
	}

	/// A segment re-run from a decoded checkpoint gives the bits of the uninterrupted run.
	#[test]
	fn a_segment_resumed_from_its_checkpoint_is_bit_exact() {
		let (config, data, hp) = setup();
		resumes_bit_exact(&config, &data, &hp);
	}

	/// So does one with warm-up, cosine decay, clipping and two micro-batches per step.
	#[test]
	fn a_scheduled_segment_resumed_from_its_checkpoint_is_bit_exact() {
		let (config, data, hp) = setup();
		let schedule = crate::train::StepSchedule {
			warmup_steps: 2,
			cosine_min_ratio: Some(0.1),
			max_grad_norm: Some(0.5),
			micro_batches: 2,
		};
		let plain = hp.clone();
		let hp = Hyperparams { schedule, ..hp };
		hp.validate().unwrap();
		resumes_bit_exact(&config, &data, &hp);
		// The schedule changed the run (the plain one draws the same first windows).
		let start = TrainState::initial(init_layers(&config, 1));
		let dev = Default::default();
		let with = run_segment::<B>(&config, &start, &data, &hp, 9, 6, &dev, |_, _| {}).unwrap();
		let without = run_segment::<B>(&config, &start, &data, &plain, 9, 6, &dev, |_, _| {});
		let plain_weights = without.unwrap().summary().weights;
		assert_ne!(with.summary().weights, plain_weights);
		// Each part alone changes it too: none of them is silently ignored.
		let one_part = |schedule| {
			let hp = Hyperparams { schedule, ..plain.clone() };
			hp.validate().unwrap();
			run_segment::<B>(&config, &start, &data, &hp, 9, 6, &dev, |_, _| {}).unwrap()
		};
		let none = crate::train::StepSchedule::default();
		for (part, schedule) in [
			("warm-up", crate::train::StepSchedule { warmup_steps: 2, ..none }),
			("cosine", crate::train::StepSchedule { cosine_min_ratio: Some(0.1), ..none }),
			("clipping", crate::train::StepSchedule { max_grad_norm: Some(1e-3), ..none }),
		] {
			assert_ne!(one_part(schedule).summary().weights, plain_weights, "{part}");
		}
		// A schedule no worker could run is an error, not a run.
		let bad = Hyperparams {
			schedule: crate::train::StepSchedule { micro_batches: 0, ..Default::default() },
			..plain
		};
		assert!(run_segment::<B>(&config, &start, &data, &bad, 9, 1, &dev, |_, _| {}).is_err());
		// Each step drew both micro-batches' windows.
		let start = TrainState::initial(init_layers(&config, 1));
		let one =
			run_segment::<B>(&config, &start, &data, &hp, 9, 1, &Default::default(), |_, _| {});
		assert_eq!(one.unwrap().batch.len(), 4);
	}

	fn resumes_bit_exact(config: &ModelConfig, data: &[i64], hp: &Hyperparams) {
		let (config, data, hp) = (config.clone(), data.to_vec(), hp.clone());
		let dev = Default::default();
		let start = TrainState::initial(init_layers(&config, 1));
		assert_eq!(start.summary(), TrainingState::initial(start.summary().weights));
		let whole = run_segment::<B>(&config, &start, &data, &hp, 9, 6, &dev, |_, _| {}).unwrap();
		let half = run_segment::<B>(&config, &start, &data, &hp, 9, 3, &dev, |_, _| {}).unwrap();
		let half = TrainState::decode(&config, &half.encode()).unwrap();
		let resumed = run_segment::<B>(&config, &half, &data, &hp, 9, 6, &dev, |_, _| {}).unwrap();
		assert_eq!(whole.summary(), resumed.summary());
		assert_eq!(whole, resumed);
		assert_eq!(whole.batch.len(), hp.sequences_per_step());
		assert!(whole.optimizer.iter().all(|m| m.as_ref().is_some_and(|m| m.time == 6)));

		// Another seed, other data, or a skipped segment all end elsewhere.
		let other_seed = run_segment::<B>(&config, &half, &data, &hp, 8, 6, &dev, |_, _| {});
		assert_ne!(other_seed.unwrap().summary(), whole.summary());
		let other = data::encode(&data::generate_corpus(4, 20_000));
		let other_data = run_segment::<B>(&config, &half, &other, &hp, 9, 6, &dev, |_, _| {});
		assert_ne!(other_data.unwrap().summary().weights, whole.summary().weights);
		let skipped = skip_segment(&half, data.len(), &hp, 9, 6);
		assert_eq!(skipped.rng_word_pos, whole.rng_word_pos);
		assert_eq!(skipped.batch, whole.batch);
		assert_ne!(skipped.summary(), whole.summary());
	}

	/// A LoRA run's states are its adapters and their moments: resumed, bit-exact as a full
	/// run; a small fraction of a full state; and neither kind decodes as the other.
	#[test]
	fn an_adapter_segment_resumes_bit_exact_and_its_state_is_the_adapters_alone() {
		let (config, data, hp) = setup();
		let base = init_layers(&config, 1);
		let lora = LoraConfig::all_linear(4);
		let trained = Trained::Adapters { lora: &lora, base: &base };
		let start = TrainState::initial(lora.init(&config, 2).unwrap());
		let dev = Default::default();
		let run = |from: &TrainState, to| {
			run_segment_for::<B>(&config, trained, from, &data, &hp, 9, to, &dev, |_, _| {})
				.unwrap()
		};
		let whole = run(&start, 6);
		let half = TrainState::decode_for(&config, trained, &run(&start, 3).encode()).unwrap();
		assert_eq!(run(&half, 6), whole);
		assert_ne!(whole.layers, start.layers, "the adapters trained");
		let moments = whole.optimizer.iter().filter(|m| m.is_some()).count();
		assert_eq!(moments, 2 * 7 * config.num_hidden_layers, "moments of the adapters only");

		let full = run_segment::<B>(
			&config,
			&TrainState::initial(base.clone()),
			&data,
			&hp,
			9,
			1,
			&dev,
			|_, _| {},
		)
		.unwrap();
		let (small, large) = (whole.encode().len(), full.encode().len());
		assert!(small * 10 < large, "adapter state {small} bytes, full state {large}");
		assert!(TrainState::decode(&config, &whole.encode()).is_err());
		assert!(TrainState::decode_for(&config, trained, &full.encode()).is_err());
	}

	#[test]
	fn bad_state_blobs_are_errors() {
		let (config, data, hp) = setup();
		assert!(matches!(TrainState::decode(&config, b"junk"), Err(WeightsError::State(_))));
		let start = TrainState::initial(init_layers(&config, 1));
		let dev = Default::default();
		let past_end = run_segment::<B>(&config, &start, &data, &hp, 9, 7, &dev, |_, _| {});
		assert!(matches!(past_end, Err(WeightsError::State(_))));
		let mut wrong = start.clone();
		wrong.optimizer = vec![None];
		let mismatched = run_segment::<B>(&config, &wrong, &data, &hp, 9, 1, &dev, |_, _| {});
		assert!(matches!(mismatched, Err(WeightsError::State(_))));
	}
}
