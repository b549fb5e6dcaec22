//! Blyan's side of the Qwen3 serving benchmark (`scripts/bench-qwen3`, results in
//! `docs/benchmarks.md`): load a Hugging Face checkpoint the way `model-init --hf-dir` reads it
//! into the serving stage, then prefill and greedy decode the same prompt token ids the reference
//! engines get, at 1 and 8 concurrent clients. Prints one JSON object per client count for the
//! driver (`scripts/bench/qwen3.py`) to tabulate beside `transformers` and llama.cpp.
//!
//! The stage is the one `serve` runs (`LocalStage`: its model thread batches the sessions queued
//! on it), called in process as the gateway calls a local stage, so no HTTP hop is measured.
//!
//! Environment: `BENCH_HF_DIR` (the checkpoint), `BENCH_PROMPTS` (a JSON list of prompt id
//! lists, one per client), `BENCH_TOKENS` (tokens generated per request, default 32).

use std::{path::PathBuf, sync::Arc, time::Instant};

use blyan_worker::{
	inference::{
		route::{self, FixedRoute, GenerateRequest, Hop, Route, RouteSource, StageClient},
		stage::start_on,
	},
	metrics::peak_rss_bytes,
	ml::{device::ComputeDevice, hf},
};

fn env(name: &str) -> String {
	std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (run scripts/bench-qwen3)"))
}

/// What one run of concurrent clients measured: seconds to each client's first token and to its
/// last, the wall time, and the first client's tokens (the driver checks they are the reference's).
struct Measured {
	first: Vec<f64>,
	total: Vec<f64>,
	wall: f64,
	generated: Vec<u32>,
}

/// Runs `prompts.len()` clients at once, each one greedy request of `tokens` tokens.
async fn run_clients(
	source: Arc<dyn RouteSource>,
	prompts: &[Vec<u32>],
	tokens: usize,
) -> Measured {
	let started = Instant::now();
	let tasks: Vec<_> = prompts
		.iter()
		.map(|prompt| {
			let source = source.clone();
			let request = GenerateRequest {
				prompt: prompt.clone(),
				max_tokens: tokens,
				temperature: 0.0,
				top_k: 0,
				top_p: 1.0,
				seed: 0,
				logprobs: None,
				check: false,
			};
			tokio::spawn(async move {
				let t = Instant::now();
				// Never stop early: every engine generates exactly `tokens` tokens.
				let g = route::generate(source.as_ref(), 1, &request, |_, _| false).await.unwrap();
				assert_eq!(g.tokens.len(), request.max_tokens, "a request stopped early");
				(g.first_token.as_secs_f64(), t.elapsed().as_secs_f64(), g.tokens)
			})
		})
		.collect();
	let (mut first, mut total, mut generated) = (Vec::new(), Vec::new(), Vec::new());
	for task in tasks {
		let (f, t, tokens) = task.await.unwrap();
		first.push(f);
		total.push(t);
		if generated.is_empty() {
			generated = tokens;
		}
	}
	Measured { first, total, wall: started.elapsed().as_secs_f64(), generated }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
	let dir = PathBuf::from(env("BENCH_HF_DIR"));
	let prompts: Vec<Vec<u32>> =
		serde_json::from_slice(&std::fs::read(env("BENCH_PROMPTS")).unwrap()).unwrap();
	let tokens: usize =
		std::env::var("BENCH_TOKENS").ok().and_then(|v| v.parse().ok()).unwrap_or(32);

	// Load: checkpoint → registry layers → the serving stage's tensors.
	let t = Instant::now();
	let (config, layers) = hf::load_checkpoint(&dir).expect("the checkpoint loads");
	let stage =
		start_on(ComputeDevice::Cpu, &config, 0, layers, prompts.len(), std::time::Duration::ZERO)
			.expect("the stage starts");
	let load_s = t.elapsed().as_secs_f64();
	let counters = stage.clone();
	let route = Route {
		hops: vec![Hop {
			client: StageClient::Local(stage),
			span: (0, config.layer_count()),
			server: None,
			price_per_token: 0,
		}],
	};
	let source: Arc<dyn RouteSource> = Arc::new(FixedRoute(route));

	// Warm-up: one short request (first-touch allocations, thread pools).
	run_clients(source.clone(), &[prompts[0][..8.min(prompts[0].len())].to_vec()], 2).await;

	for clients in [1, prompts.len()] {
		let m = run_clients(source.clone(), &prompts[..clients], tokens).await;
		let row = serde_json::json!({
			"engine": "blyan",
			"clients": clients,
			"prompt_tokens": prompts[0].len(),
			"tokens": tokens,
			"load_s": load_s,
			"first_token_s": m.first,
			"total_s": m.total,
			"wall_s": m.wall,
			"peak_rss_bytes": peak_rss_bytes(),
			"generated": m.generated,
		});
		println!("{row}");
		// How the stage batched the chunks (on stderr: the rows stay one JSON object a line).
		eprintln!("{clients} clients, stage counters so far: {:?}", counters.stats());
	}
}
