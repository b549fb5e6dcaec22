//! Training and verification cost on the CPU backend, printed as a table (a benchmark, not a
//! test). `scripts/bench-worker` runs it and the PyTorch comparison; results are recorded in
//! `docs/benchmarks.md`.
//!
//! Per model size: AdamW step time and training tokens/s, evaluation (forward) time per batch,
//! and for one job as the protocol runs it (`steps` training steps; each verifier evaluates base
//! and candidate on `eval_batches` batches) the verification compute as a share of training.
//!
//! Each size runs on the portable CPU backend (`CpuBackend`, what the network uses) and on burn's
//! plain `NdArray<f32>` (what it used before: faster or slower, but its bits depend on the CPU),
//! on the same threads, plus one decoded token (cached, after a 16-token prompt).
//!
//! Environment: `BENCH_SIZES` (default `tiny,m100`), `BENCH_STEPS` (timed steps, default 5 for
//! tiny and 3 for m100), `BLYAN_THREADS` (the portable kernels' threads; default every core).

use std::time::{Duration, Instant};

use blyan_ml::{
	data,
	infer::{Activations, StageModel},
	model::{ModelConfig, Transformer},
	portable,
	train::{self, Hyperparams},
	CpuBackend,
};
use burn::{
	backend::{Autodiff, NdArray},
	module::AutodiffModule,
	optim::{AdamWConfig, GradientsParams, Optimizer},
	tensor::backend::Backend,
};

struct Row {
	size: &'static str,
	backend: &'static str,
	params: usize,
	batch: usize,
	seq: usize,
	step: Duration,
	eval_batch: Duration,
	decode_token: Duration,
}

fn median(mut v: Vec<Duration>) -> Duration {
	v.sort();
	v[v.len() / 2]
}

fn measure<B: Backend>(
	size: &'static str,
	backend: &'static str,
	config: ModelConfig,
	batch: usize,
	seq: usize,
	steps: usize,
) -> Row {
	type Train<B> = Autodiff<B>;
	let device = Default::default();
	let corpus = data::encode(&data::generate_corpus(1, 256 * 1024));
	let mut model = Transformer::<Train<B>>::init(&config, 1, &device);
	let mut optim = AdamWConfig::new().init::<Train<B>, Transformer<Train<B>>>();
	let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(1);
	let mut times = Vec::new();
	// One warm-up step, then `steps` timed ones.
	for i in 0..=steps {
		let tokens = train::tokens::<Train<B>>(
			data::sample_batch(&corpus, &mut rng, batch, seq + 1),
			batch,
			&device,
		);
		let start = Instant::now();
		let loss = model.loss(tokens);
		let grads = GradientsParams::from_grads(loss.backward(), &model);
		model = optim.step(1e-3, model, grads);
		// Force the lazy work to finish before stopping the clock.
		let _ = model.lm_head.weight.val().into_data();
		if i > 0 {
			times.push(start.elapsed());
		}
	}
	let eval_model = model.valid();
	let hp = Hyperparams {
		steps: 1,
		batch_size: batch,
		seq_len: seq,
		learning_rate: 1e-3,
		weight_decay: 0.0,
		eval_batches: steps.max(2),
		schedule: Default::default(),
	};
	let start = Instant::now();
	let _ = train::evaluate(&eval_model, &corpus, &hp, &device);
	let eval_batch = start.elapsed() / hp.eval_batches as u32;
	let decode_token = decode(&config, eval_model, steps);
	Row {
		size,
		backend,
		params: config.parameter_count(),
		batch,
		seq,
		step: median(times),
		eval_batch,
		decode_token,
	}
}

/// Median time of one cached decoding step after a 16-token prompt.
fn decode<B: Backend>(config: &ModelConfig, model: Transformer<B>, steps: usize) -> Duration {
	let stage = StageModel::whole(config, model);
	let mut cache = stage.new_cache();
	let prompt: Vec<u32> = (0..16).map(|i| 40 + i).collect();
	stage.forward(&mut cache, 0, Activations::Tokens(prompt)).expect("prompt");
	let times = (0..steps.max(3))
		.map(|i| {
			let start = Instant::now();
			stage.forward(&mut cache, 16 + i, Activations::Tokens(vec![65])).expect("decode");
			start.elapsed()
		})
		.collect();
	median(times)
}

fn measure_both(
	rows: &mut Vec<Row>,
	size: &'static str,
	config: ModelConfig,
	b: usize,
	s: usize,
	n: usize,
) {
	rows.push(measure::<CpuBackend>(size, "portable", config.clone(), b, s, n));
	rows.push(measure::<NdArray<f32>>(size, "ndarray", config, b, s, n));
}

fn main() {
	let sizes = std::env::var("BENCH_SIZES").unwrap_or_else(|_| "tiny,m100".into());
	let steps_env = std::env::var("BENCH_STEPS").ok().and_then(|s| s.parse().ok());
	let mut rows = Vec::new();
	for size in sizes.split(',') {
		match size.trim() {
			"tiny" => {
				measure_both(&mut rows, "tiny", ModelConfig::tiny(), 8, 64, steps_env.unwrap_or(5))
			}
			"m100" => {
				measure_both(&mut rows, "m100", ModelConfig::m100(), 4, 128, steps_env.unwrap_or(3))
			}
			other => eprintln!("unknown size {other}"),
		}
	}
	println!(
		"burn 0.21 on the CPU: portable = blyan-ml's PortableCpu ({} kernel threads), ndarray = \
		 burn's NdArray<f32> (matrixmultiply, single-threaded in this build)",
		portable::threads()
	);
	println!();
	println!("| model | backend | parameters | batch × seq | train step | train tokens/s | eval batch | eval tokens/s | decode token |");
	println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
	for r in &rows {
		let tokens = (r.batch * r.seq) as f64;
		println!(
			"| {} | {} | {:.1} M | {} × {} | {:.1} ms | {:.0} | {:.1} ms | {:.0} | {:.2} ms |",
			r.size,
			r.backend,
			r.params as f64 / 1e6,
			r.batch,
			r.seq,
			r.step.as_secs_f64() * 1e3,
			tokens / r.step.as_secs_f64(),
			r.eval_batch.as_secs_f64() * 1e3,
			tokens / r.eval_batch.as_secs_f64(),
			r.decode_token.as_secs_f64() * 1e3,
		);
	}
	println!();
	// One job as the demo posts it: 60 steps of training; each of 3 verifiers evaluates base and
	// candidate on (at most) 16 validation batches of the same shape.
	let (job_steps, eval_batches, committee) = (60.0, 16.0, 3.0);
	println!("| model | one job: training | one verifier | verifier / training | whole committee / training |");
	println!("|---|---:|---:|---:|---:|");
	for r in rows.iter().filter(|r| r.backend == "portable") {
		let train = job_steps * r.step.as_secs_f64();
		let verify = 2.0 * eval_batches * r.eval_batch.as_secs_f64();
		println!(
			"| {} | {:.2} s | {:.2} s | {:.1} % | {:.1} % |",
			r.size,
			train,
			verify,
			100.0 * verify / train,
			100.0 * committee * verify / train
		);
	}
}
