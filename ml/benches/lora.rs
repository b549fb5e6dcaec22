//! LoRA fine-tuning cost on the portable CPU backend, printed as a table (a benchmark, not a
//! test; `scripts/bench-lora` runs it beside `peft` and records docs/benchmarks.md).
//!
//! A Qwen3-0.6B-shaped model (random weights, f32) with rank-16 adapters (`alpha` 32) on every
//! projection: AdamW step time on the adapters (one warm-up step, then `BENCH_STEPS` timed ones,
//! default 3; the median), and the sizes the issue asks about: adapter values and bytes as a
//! share of the base, and an adapter training checkpoint (adapters and AdamW's two moments, f32)
//! as a share of a full-weights one (weights and two moments of every parameter).
//!
//! Environment: `BENCH_SHAPE` (`0.6b`, default, or `tiny`), `BENCH_BATCH` (default 2),
//! `BENCH_SEQ` (default 128), `BENCH_STEPS`, `BLYAN_THREADS` (default every core).

use std::time::{Duration, Instant};

use blyan_ml::{
	lora::{self, LoraConfig},
	model::{ModelConfig, Transformer},
	portable, train, CpuBackend,
};
use burn::{
	backend::Autodiff,
	optim::{AdamWConfig, GradientsParams, Optimizer},
};

type Ad = Autodiff<CpuBackend>;

fn env(name: &str, default: usize) -> usize {
	std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
	if let Some(n) = std::env::var("BLYAN_THREADS").ok().and_then(|v| v.parse().ok()) {
		portable::set_threads(n);
	}
	let shape = std::env::var("BENCH_SHAPE").unwrap_or_else(|_| "0.6b".into());
	let config = match shape.as_str() {
		"tiny" => ModelConfig::tiny(),
		_ => ModelConfig::qwen3_0_6b(),
	};
	let (batch, seq, steps) =
		(env("BENCH_BATCH", 2), env("BENCH_SEQ", 128), env("BENCH_STEPS", 3).max(1));
	let lora = LoraConfig::all_linear(16);
	let device = Default::default();
	let base = Transformer::<Ad>::random(&config, &device);
	let adapters = lora.init(&config, 1).expect("a valid configuration");
	let mut model = lora::attach(base, &config, &lora, &adapters).expect("adapters fit");
	let mut optimizer = AdamWConfig::new().init::<Ad, Transformer<Ad>>();
	let vocab = config.vocab_size as i64;
	let mut times = Vec::new();
	for step in 0..=steps {
		let values: Vec<i64> = (0..batch * (seq + 1))
			.map(|i| (i as i64 * 7919 + step as i64 * 104_729) % vocab)
			.collect();
		let tokens = train::tokens::<Ad>(values, batch, &device);
		let start = Instant::now();
		let loss = model.loss(tokens);
		let grads = GradientsParams::from_grads(loss.backward(), &model);
		model = optimizer.step(1e-4, model, grads);
		// Finish the lazy work before stopping the clock.
		let _ = model.layers[0].self_attn.q_lora.as_ref().map(|a| a.b.val().into_data());
		if step > 0 {
			times.push(start.elapsed());
		}
	}
	times.sort();
	let step: Duration = times[times.len() / 2];

	let adapter_values = lora.parameter_count(&config);
	// The base as the registry holds a real checkpoint (tied head, as Qwen3-0.6B): its
	// parameters once.
	let tied = config.parameter_count() - config.vocab_size * config.hidden_size;
	let full_checkpoint = 3 * 4 * config.parameter_count();
	let adapter_checkpoint = 3 * 4 * adapter_values;
	println!("| shape | rank | threads | batch × seq | adapter values | share of the base's values | adapter bytes (f32) / base bytes (bf16) | adapter checkpoint / full checkpoint | step (median of {steps}) |");
	println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
	println!(
		"| {shape} | {} | {} | {batch} × {seq} | {:.2} M | {:.2} % | {:.2} % | {:.1} MB / {:.1} MB = {:.2} % | {:.2} s |",
		lora.rank,
		portable::threads(),
		adapter_values as f64 / 1e6,
		100.0 * adapter_values as f64 / tied as f64,
		100.0 * (4 * adapter_values) as f64 / (2 * tied) as f64,
		adapter_checkpoint as f64 / 1e6,
		full_checkpoint as f64 / 1e6,
		100.0 * adapter_checkpoint as f64 / full_checkpoint as f64,
		step.as_secs_f64(),
	);
}
