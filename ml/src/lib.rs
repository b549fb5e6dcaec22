//! Blyan's machine learning, on burn: the Qwen3-style model, training, evaluation, traced
//! segments for the audit, inference stages, checkpoints. Everything below is generic over
//! burn's `Backend`; this crate picks the concrete ones: training on the CPU ([`CpuBackend`], the
//! portable deterministic backend) or, with the `cuda` feature, on CUDA; evaluation for
//! Proof-of-Learning always on the CPU, whose results are the same bits on every machine, so
//! every verifier computes the same score ([`portable`], [`selftest`]).
//!
//! A crate of its own (no chain client, no networking) so that it builds for other CPUs in the
//! cross-CPU tests, and is optimised in debug builds (`[profile.dev.package.blyan-ml]`).

pub mod data;
pub mod dataset;
pub mod device;
pub mod hf;
pub mod infer;
pub mod lora;
pub mod model;
pub mod portable;
pub mod selftest;
pub mod tokenizer;
pub mod trace;
pub mod train;
pub mod weights;

use burn::backend::Autodiff;

use model::{ModelConfig, Transformer};
use train::Hyperparams;
use weights::{LayerTensors, WeightsError};

/// The deterministic CPU backend (evaluation, and training by default).
pub type CpuBackend = portable::PortableCpu;
/// burn's CUDA backend. Its tensors' float type is a setting of the device, made once per process
/// and device ([`device::set_gpu_precision`]): `f32` unless set, `bf16` for serving.
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda<f32, i32>;

/// Where training runs; evaluation is always [`CpuBackend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TrainDevice {
	Cpu,
	#[cfg(feature = "cuda")]
	Cuda,
}

impl TrainDevice {
	/// The best device this machine can use: CUDA in a `cuda` build whose driver reports a GPU,
	/// else the CPU.
	pub fn best() -> Self {
		Self::for_gpu(&device::gpu_info(0))
	}

	/// [`TrainDevice::best`] given what the driver said of GPU 0 (so a caller that needs the GPU's
	/// details too asks the driver once).
	pub fn for_gpu(gpu: &Result<device::GpuInfo, device::GpuError>) -> Self {
		#[cfg(feature = "cuda")]
		if gpu.is_ok() {
			return Self::Cuda;
		}
		let _ = gpu;
		Self::Cpu
	}
}

/// The initial (root) layers of a new model, deterministic in `seed`.
pub fn init_layers(config: &ModelConfig, seed: u64) -> Vec<LayerTensors> {
	let device = Default::default();
	weights::export_layers(&Transformer::<CpuBackend>::init(config, seed, &device))
}

/// Trains from `layers` and returns the trained layers. `on_step(step, loss)` reports progress.
pub fn train_layers(
	config: &ModelConfig,
	layers: &[LayerTensors],
	train_data: &[i64],
	hp: &Hyperparams,
	seed: u64,
	device: TrainDevice,
	on_step: impl FnMut(u32, f32),
) -> Result<Vec<LayerTensors>, WeightsError> {
	match device {
		TrainDevice::Cpu => {
			train_on::<Autodiff<CpuBackend>>(config, layers, train_data, hp, seed, on_step)
		}
		#[cfg(feature = "cuda")]
		TrainDevice::Cuda => {
			train_on::<Autodiff<CudaBackend>>(config, layers, train_data, hp, seed, on_step)
		}
	}
}

/// Traced training of `trained` (every weight, or adapters over a base) from `state` to step
/// `to_step` on `device` (see [`trace`]).
#[allow(clippy::too_many_arguments)]
pub fn train_segment(
	config: &ModelConfig,
	trained: trace::Trained<'_>,
	state: &trace::TrainState,
	train_data: &[i64],
	hp: &Hyperparams,
	seed: u64,
	to_step: u32,
	device: TrainDevice,
	on_step: impl FnMut(u32, f32),
) -> Result<trace::TrainState, WeightsError> {
	match device {
		TrainDevice::Cpu => trace::run_segment_for::<Autodiff<CpuBackend>>(
			config,
			trained,
			state,
			train_data,
			hp,
			seed,
			to_step,
			&Default::default(),
			on_step,
		),
		#[cfg(feature = "cuda")]
		TrainDevice::Cuda => trace::run_segment_for::<Autodiff<CudaBackend>>(
			config,
			trained,
			state,
			train_data,
			hp,
			seed,
			to_step,
			&Default::default(),
			on_step,
		),
	}
}

/// [`train_layers`] on backend `B`'s default device.
fn train_on<B: burn::tensor::backend::AutodiffBackend>(
	config: &ModelConfig,
	layers: &[LayerTensors],
	train_data: &[i64],
	hp: &Hyperparams,
	seed: u64,
	on_step: impl FnMut(u32, f32),
) -> Result<Vec<LayerTensors>, WeightsError> {
	let device = Default::default();
	let model = weights::import_layers::<B>(config, layers, &device)?;
	let trained = train::train(model, train_data, hp, seed, &device, on_step);
	Ok(weights::export_layers(&trained))
}

/// The Proof-of-Learning evaluation: mean validation loss of `layers` on the CPU backend.
/// `None` if the validation set holds less than one batch.
pub fn evaluate_layers(
	config: &ModelConfig,
	layers: &[LayerTensors],
	validation: &[i64],
	hp: &Hyperparams,
) -> Result<Option<f64>, WeightsError> {
	let dev = Default::default();
	let model = weights::import_layers::<CpuBackend>(config, layers, &dev)?;
	Ok(train::evaluate(&model, validation, hp, &dev))
}
