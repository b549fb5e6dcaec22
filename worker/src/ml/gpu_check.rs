//! `blyan-worker gpu-check`: what a `cuda` build must show on a real GPU, in one short run
//! (`scripts/gpu-check` carries the binary to a GPU machine and runs this).
//!
//! burn keeps one float type per device and process, so a run is either `--precision f32` (the
//! checks, `f32` decoding, the training benchmark) or `--precision bf16` (logits and decoding in
//! `bf16`, what `serve --device cuda` runs on a GPU with bf16); `scripts/gpu-check` runs both.
//!
//! Checks (each passes or fails; any failure makes the command fail):
//! - CPU-vs-GPU logits: the same weights and tokens through the CPU stage and a CUDA stage agree
//!   with the same top token at every step and to a relative 1e-2 in `f32` (cubecl's `f32`
//!   matrix products may run on TF32 tensor cores, 10-bit mantissa: 1.4e-3 measured on an H200),
//!   5e-2 in `bf16` (whose top token is measured, not asserted: rounding may swap near ties);
//! - a batch of sessions on the GPU computes each session as alone (to 1e-4; GPU kernels are not
//!   bit-exact across shapes);
//! - a GPU stage and a CPU stage form one pipeline: their hidden states cross as `f32`;
//! - CUDA training of the same segment as the CPU trains, lowers the loss, and the per-step
//!   relative weight distance between the two is recorded (what a tolerance-based audit of GPU
//!   jobs would need).
//!
//! Benchmarks, for Qwen3-0.6B and -8B shapes with random weights made on the GPU in the run's
//! precision: prefill (TTFT), single-stream decode, 16 concurrent sessions through a
//! [`LocalStage`] (the serving path's batching), each after an untimed run of the same shapes;
//! and in the f32 run a training step of the 0.6B shape (AdamW).

use std::{
	sync::{Arc, Barrier},
	time::{Duration, Instant},
};

use burn::backend::{cuda::CudaDevice, Autodiff};
use serde::Serialize;

use super::{
	device::{gpu_info, set_gpu_precision, GpuError, GpuInfo, Precision},
	infer::{Activations, Chunk, Sampler, StageError, StageModel},
	init_layers,
	model::{ModelConfig, Transformer},
	trace::{run_segment, TrainState},
	train::{self, Hyperparams},
	CpuBackend, CudaBackend,
};
use crate::inference::stage::LocalStage;

#[derive(Clone, Debug)]
pub struct GpuCheckOptions {
	pub device: usize,
	pub precision: Precision,
	/// Shapes benchmarked: `0.6b`, `8b` (`none`: no decoding benchmark).
	pub shapes: Vec<String>,
	pub prompt_tokens: usize,
	pub decode_tokens: usize,
	pub clients: usize,
	pub client_tokens: usize,
	/// Only the checks (no benchmarks).
	pub checks_only: bool,
}

#[derive(Debug, Serialize)]
pub struct Check {
	pub name: &'static str,
	pub passed: bool,
	pub detail: String,
}

#[derive(Debug, Serialize, Default)]
pub struct Agreement {
	pub steps: usize,
	pub max_abs_diff: f32,
	/// `max_abs_diff` over the largest CPU logit magnitude.
	pub max_rel_diff: f32,
	pub top1_agree: usize,
}

#[derive(Debug, Serialize)]
pub struct DecodeBench {
	pub shape: String,
	pub dtype: Precision,
	pub parameters: usize,
	/// Weight bytes a decoding step reads (the roofline's numerator).
	pub decode_bytes_per_token: usize,
	pub prompt_tokens: usize,
	pub ttft_ms: f64,
	pub decode_tokens: usize,
	pub decode_tokens_per_s: f64,
	pub clients: usize,
	pub client_tokens: usize,
	pub aggregate_tokens_per_s: f64,
	pub load_s: f64,
}

#[derive(Debug, Serialize)]
pub struct TrainBench {
	pub shape: String,
	pub dtype: &'static str,
	pub batch: usize,
	pub seq: usize,
	pub step_ms: f64,
	pub tokens_per_s: f64,
}

#[derive(Debug, Serialize)]
pub struct GpuReport {
	/// burn's CUDA backend, with operation fusion or without (the `cuda-fusion` build).
	pub engine: &'static str,
	pub gpu: GpuInfo,
	pub precision: Precision,
	pub checks: Vec<Check>,
	/// CPU (`f32`) vs this run's precision on the GPU.
	pub logits: Agreement,
	/// Relative L2 distance of all weights, CUDA vs CPU training, after each step.
	pub training_divergence: Vec<f64>,
	pub decode: Vec<DecodeBench>,
	pub train: Vec<TrainBench>,
}

impl GpuReport {
	pub fn passed(&self) -> bool {
		self.checks.iter().all(|c| c.passed)
	}
}

/// Runs the checks, then (unless `checks_only`) the benchmarks; `progress` sees a line per stage.
pub fn run(opts: &GpuCheckOptions, mut progress: impl FnMut(&str)) -> Result<GpuReport, GpuError> {
	let gpu = gpu_info(opts.device)?;
	progress(&format!(
		"GPU {}: {} ({} MiB, compute capability {}.{})",
		gpu.index, gpu.name, gpu.memory_mb, gpu.compute_capability.0, gpu.compute_capability.1
	));
	let precision = opts.precision;
	set_gpu_precision(&gpu, precision)?;
	let device = CudaDevice::new(opts.device);
	let mut checks = Vec::new();
	let f32_run = precision == Precision::F32;

	let logits = logit_agreement(&device);
	checks.push(Check {
		name: if f32_run { "cpu-vs-cuda-f32-logits" } else { "cpu-vs-cuda-bf16-logits" },
		passed: if f32_run {
			logits.top1_agree == logits.steps && logits.max_rel_diff < 1e-2
		} else {
			logits.max_rel_diff < 5e-2
		},
		detail: format!("{logits:?}"),
	});
	progress(&format!("logits {precision}: {logits:?}"));

	// The path `serve --device cuda` takes in either precision: hidden states cross as f32.
	let (mixed_diff, mixed_top1) = mixed_pipeline(&device);
	checks.push(Check {
		name: "gpu-and-cpu-stages-form-one-pipeline",
		passed: mixed_top1 && mixed_diff < if f32_run { 1e-2 } else { 5e-2 },
		detail: format!(
			"max rel diff {mixed_diff:e} against the CPU alone; same top token: {mixed_top1}"
		),
	});
	progress(&format!("GPU+CPU pipeline: max rel diff {mixed_diff:e}, same top {mixed_top1}"));

	let mut divergence = Vec::new();
	if f32_run {
		let batch_diff = batch_vs_alone(&device);
		checks.push(Check {
			name: "cuda-batch-equals-alone",
			passed: batch_diff < 1e-4,
			detail: format!("max abs diff {batch_diff:e}"),
		});
		progress(&format!("batch vs alone: max abs diff {batch_diff:e}"));

		let (distances, first_loss, last_loss) = training_divergence(&device);
		let finite = distances.iter().all(|d| d.is_finite());
		checks.push(Check {
			name: "cuda-training-learns-and-stays-near-cpu",
			passed: finite && last_loss < first_loss && distances.last().is_some_and(|d| *d < 1e-2),
			detail: format!(
				"loss {first_loss:.4} -> {last_loss:.4}; distance after {} steps {:e}",
				distances.len(),
				distances.last().copied().unwrap_or(f64::NAN)
			),
		});
		progress(&format!("training: loss {first_loss} -> {last_loss}; divergence {distances:?}"));
		divergence = distances;
	}

	let mut decode = Vec::new();
	let mut train = Vec::new();
	if !opts.checks_only {
		for shape in opts.shapes.iter().filter(|s| s.as_str() != "none") {
			let Some(config) = shape_config(shape) else {
				progress(&format!("unknown shape {shape}: skipped"));
				continue;
			};
			match decode_bench(shape, &config, precision, &device, opts) {
				Ok(bench) => {
					progress(&format!("{bench:?}"));
					decode.push(bench);
				}
				Err(e) => {
					progress(&format!("decoding {shape}: {e}"));
					checks.push(Check { name: "decode-benchmark-runs", passed: false, detail: e });
				}
			}
		}
		if f32_run {
			let bench = train_bench(&device);
			progress(&format!("{bench:?}"));
			train.push(bench);
		}
	}
	let engine =
		if cfg!(feature = "cuda-fusion") { "burn 0.21 CUDA + fusion" } else { "burn 0.21 CUDA" };
	Ok(GpuReport {
		engine,
		gpu,
		precision,
		checks,
		logits,
		training_divergence: divergence,
		decode,
		train,
	})
}

/// The model of a benchmark shape name (`0.6b`, `8b`).
pub fn shape_config(shape: &str) -> Option<ModelConfig> {
	match shape {
		"0.6b" => Some(ModelConfig::qwen3_0_6b()),
		"8b" => Some(ModelConfig::qwen3_8b()),
		_ => None,
	}
}

fn logits(a: Activations) -> Vec<f32> {
	match a {
		Activations::Logits(l) => l,
		other => panic!("a whole-model stage returned {other:?} instead of logits"),
	}
}

fn argmax(v: &[f32]) -> usize {
	v.iter()
		.enumerate()
		.fold((0, f32::NEG_INFINITY), |b, (i, x)| if *x > b.1 { (i, *x) } else { b })
		.0
}

/// Largest `|a - b|`; infinite if the lengths differ or any value is not finite (`f32::max`
/// would drop a NaN and let a broken kernel pass).
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
	if a.len() != b.len() || a.iter().chain(b).any(|v| !v.is_finite()) {
		return f32::INFINITY;
	}
	a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

fn compare(reference: &[f32], other: &[f32], into: &mut Agreement) {
	let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
	let diff = max_abs_diff(reference, other);
	into.steps += 1;
	into.max_abs_diff = into.max_abs_diff.max(diff);
	into.max_rel_diff = into.max_rel_diff.max(diff / scale);
	into.top1_agree += usize::from(argmax(reference) == argmax(other));
}

/// A Qwen3-0.6B-shaped model cut to 4 of its 28 blocks (the full vocabulary and widths), the same
/// ChaCha weights on the CPU and the GPU, a 16-token prompt and 8 greedy steps (the CPU's tokens
/// fed to both).
fn logit_agreement(device: &CudaDevice) -> Agreement {
	let config = ModelConfig {
		num_hidden_layers: 4,
		max_position_embeddings: 64,
		..ModelConfig::qwen3_0_6b()
	};
	let layers = init_layers(&config, 11);
	let cpu = StageModel::<CpuBackend>::new(&config, 0, &layers, &Default::default())
		.expect("layers of the config");
	let gpu = StageModel::<CudaBackend>::new(&config, 0, &layers, device).expect("same layers");
	let (mut cpu_cache, mut gpu_cache) = (cpu.new_cache(), gpu.new_cache());
	let mut agreement = Agreement::default();
	let mut chunk: Vec<u32> = (0..16).map(|i| (i * 7919 % 151_000) as u32).collect();
	let mut position = 0;
	for _ in 0..8 {
		let input = || Activations::Tokens(chunk.clone());
		let reference = logits(cpu.forward(&mut cpu_cache, position, input()).unwrap());
		let got = logits(gpu.forward(&mut gpu_cache, position, input()).unwrap());
		compare(&reference, &got, &mut agreement);
		position += chunk.len();
		chunk = vec![argmax(&reference) as u32];
	}
	agreement
}

/// Three sessions with prompts of different lengths, batched and alone, on the GPU in f32.
fn batch_vs_alone(device: &CudaDevice) -> f32 {
	let config = ModelConfig::tiny();
	let layers = init_layers(&config, 4);
	let stage = StageModel::<CudaBackend>::new(&config, 0, &layers, device).expect("layers");
	let mut worst = 0f32;
	let mut alone: Vec<_> = (0..3).map(|_| stage.new_cache()).collect();
	let mut batched: Vec<_> = (0..3).map(|_| stage.new_cache()).collect();
	let mut positions = [0usize; 3];
	for (step, lens) in [[5, 9, 2], [1, 1, 1], [1, 1, 1]].iter().enumerate() {
		let input = |s: usize| {
			Activations::Tokens(
				(0..lens[s]).map(|i| ((s * 31 + i * 7 + step) % 256) as u32).collect(),
			)
		};
		let expected: Vec<_> = (0..3)
			.map(|s| logits(stage.forward(&mut alone[s], positions[s], input(s)).unwrap()))
			.collect();
		let chunks = batched
			.iter_mut()
			.enumerate()
			.map(|(s, cache)| Chunk { cache, position: positions[s], input: input(s) })
			.collect();
		for (s, got) in stage.forward_batch(chunks).into_iter().enumerate() {
			let got = logits(got.unwrap());
			let diff = max_abs_diff(&expected[s], &got);
			worst = worst.max(diff);
			positions[s] += lens[s];
		}
	}
	worst
}

/// Layers 0..2 of the tiny model on the GPU, the rest on the CPU, against the CPU alone.
fn mixed_pipeline(device: &CudaDevice) -> (f32, bool) {
	let config = ModelConfig::tiny();
	let layers = init_layers(&config, 6);
	let cpu = StageModel::<CpuBackend>::new(&config, 0, &layers, &Default::default()).unwrap();
	let gpu_part = StageModel::<CudaBackend>::new(&config, 0, &layers[..2], device).unwrap();
	let cpu_part =
		StageModel::<CpuBackend>::new(&config, 2, &layers[2..], &Default::default()).unwrap();
	let prompt: Vec<u32> = b"add 12 30 = ".iter().map(|b| *b as u32).collect();
	let whole =
		logits(cpu.forward(&mut cpu.new_cache(), 0, Activations::Tokens(prompt.clone())).unwrap());
	let hidden =
		gpu_part.forward(&mut gpu_part.new_cache(), 0, Activations::Tokens(prompt)).unwrap();
	let split = logits(cpu_part.forward(&mut cpu_part.new_cache(), 0, hidden).unwrap());
	let mut agreement = Agreement::default();
	compare(&whole, &split, &mut agreement);
	(agreement.max_rel_diff, agreement.top1_agree == 1)
}

/// The tiny model trained 20 steps on the CPU and on CUDA from the same state and data, one step
/// at a time; the relative L2 distance of all weights after each step.
fn training_divergence(device: &CudaDevice) -> (Vec<f64>, f32, f32) {
	let config = ModelConfig::tiny();
	let data = super::data::encode(&super::data::generate_corpus(3, 64 * 1024));
	let hp = Hyperparams { steps: 20, ..Default::default() };
	let mut cpu = TrainState::initial(init_layers(&config, 9));
	let mut gpu = cpu.clone();
	let (mut distances, mut losses) = (Vec::new(), Vec::new());
	for step in 1..=hp.steps {
		cpu = run_segment::<Autodiff<CpuBackend>>(
			&config,
			&cpu,
			&data,
			&hp,
			5,
			step,
			&Default::default(),
			|_, _| {},
		)
		.expect("a valid segment");
		gpu = run_segment::<Autodiff<CudaBackend>>(
			&config,
			&gpu,
			&data,
			&hp,
			5,
			step,
			device,
			|_, loss| losses.push(loss),
		)
		.expect("a valid segment");
		let (mut diff, mut norm) = (0f64, 0f64);
		for (a, b) in cpu.layers.iter().flatten().zip(gpu.layers.iter().flatten()) {
			for (x, y) in a.values.iter().zip(&b.values) {
				diff += ((x - y) as f64).powi(2);
				norm += (*x as f64).powi(2);
			}
		}
		distances.push((diff / norm.max(f64::MIN_POSITIVE)).sqrt());
	}
	let first = losses.first().copied().unwrap_or(f32::NAN);
	let last = losses.last().copied().unwrap_or(f32::NAN);
	(distances, first, last)
}

/// Random weights of `config` on the GPU: TTFT, single-stream decode, then `clients`
/// sessions at once through a [`LocalStage`].
fn decode_bench(
	shape: &str,
	config: &ModelConfig,
	precision: Precision,
	device: &CudaDevice,
	opts: &GpuCheckOptions,
) -> Result<DecodeBench, String> {
	let started = Instant::now();
	let model = StageModel::whole(config, Transformer::<CudaBackend>::random(config, device));
	let prompt: Vec<u32> = (0..opts.prompt_tokens).map(|i| (i * 7919 % 150_000) as u32).collect();
	let run = |tokens: usize| -> Result<(Duration, Duration), StageError> {
		let mut cache = model.new_cache();
		let t0 = Instant::now();
		let mut last = logits(model.forward(&mut cache, 0, Activations::Tokens(prompt.clone()))?);
		let ttft = t0.elapsed();
		let mut sampler = Sampler::new(0.0, 0);
		let t1 = Instant::now();
		for i in 0..tokens {
			let next = Activations::Tokens(vec![sampler.next(&last)]);
			last = logits(model.forward(&mut cache, prompt.len() + i, next)?);
		}
		Ok((ttft, t1.elapsed()))
	};
	// Weights are drawn lazily: an untimed run of the same length materialises them and compiles
	// (and autotunes) the kernels of every shape the timed run meets.
	run(opts.decode_tokens).map_err(|e| e.to_string())?;
	let load_s = started.elapsed().as_secs_f64();
	let (ttft, decode) = run(opts.decode_tokens).map_err(|e| e.to_string())?;
	let (ttft2, _) = run(0).map_err(|e| e.to_string())?;
	let ttft_ms = (ttft + ttft2).as_secs_f64() * 1000.0 / 2.0;
	let decode_tokens_per_s = opts.decode_tokens as f64 / decode.as_secs_f64();

	let (clients, client_tokens) = (opts.clients, opts.client_tokens);
	let stage = LocalStage::start(model, clients, Duration::ZERO, "bench");
	// An untimed round first, for the same reason (a batch of `clients` rows is a new shape).
	clients_round(&stage, clients, client_tokens, 0)?;
	let elapsed = clients_round(&stage, clients, client_tokens, 1)?;
	let aggregate_tokens_per_s = (clients * client_tokens) as f64 / elapsed.as_secs_f64();
	Ok(DecodeBench {
		shape: shape.into(),
		dtype: precision,
		parameters: config.parameter_count(),
		decode_bytes_per_token: config.decode_bytes_per_token(match precision {
			Precision::F32 => 4,
			Precision::Bf16 => 2,
		}),
		prompt_tokens: opts.prompt_tokens,
		ttft_ms,
		decode_tokens: opts.decode_tokens,
		decode_tokens_per_s,
		clients,
		client_tokens,
		aggregate_tokens_per_s,
		load_s,
	})
}

/// `clients` sessions at once through `stage`: each prefills 32 tokens, then (all together, timed)
/// decodes `tokens` greedily. Sessions are ended afterwards.
fn clients_round(
	stage: &Arc<LocalStage>,
	clients: usize,
	tokens: usize,
	round: u8,
) -> Result<Duration, String> {
	let barrier = Arc::new(Barrier::new(clients + 1));
	let threads: Vec<_> = (0..clients)
		.map(|c| {
			let (stage, barrier) = (stage.clone(), barrier.clone());
			let prompt: Vec<u32> =
				(0..32).map(|i| ((c * 1000 + i * 7919) % 150_000) as u32).collect();
			std::thread::spawn(move || -> Result<(), StageError> {
				let mut session = [round; 16];
				session[..8].copy_from_slice(&(c as u64).to_le_bytes());
				let prefill = stage.forward(session, 0, Activations::Tokens(prompt.clone()));
				// Always meet the others at the barrier, failed or not.
				barrier.wait();
				let mut last = logits(prefill?);
				let mut sampler = Sampler::new(0.0, 0);
				for i in 0..tokens {
					let next = Activations::Tokens(vec![sampler.next(&last)]);
					last = logits(stage.forward(session, prompt.len() + i, next)?);
				}
				stage.end(&session);
				Ok(())
			})
		})
		.collect();
	barrier.wait();
	let t0 = Instant::now();
	for t in threads {
		t.join().map_err(|_| "a client thread panicked".to_string())?.map_err(|e| e.to_string())?;
	}
	Ok(t0.elapsed())
}

/// AdamW steps of the 0.6B shape in f32 (batch 4 × 256 tokens): mean step time after a warm-up.
fn train_bench(device: &CudaDevice) -> TrainBench {
	let config = ModelConfig::qwen3_0_6b();
	let (batch, seq) = (4, 256);
	let model = Transformer::<Autodiff<CudaBackend>>::random(&config, device);
	let data: Vec<i64> = (0..200_000).map(|i| (i * 7919 % 150_000) as i64).collect();
	let hp = Hyperparams {
		steps: 5,
		batch_size: batch,
		seq_len: seq,
		learning_rate: 1e-4,
		..Default::default()
	};
	let mut stamps = Vec::new();
	let t0 = Instant::now();
	train::train(model, &data, &hp, 1, device, |_, _| stamps.push(t0.elapsed()));
	// Steps 3..5 (the first two compile kernels and autotune).
	let step = (stamps[4] - stamps[1]).as_secs_f64() / 3.0;
	TrainBench {
		shape: "0.6b".into(),
		dtype: "f32",
		batch,
		seq,
		step_ms: step * 1000.0,
		tokens_per_s: (batch * seq) as f64 / step,
	}
}
