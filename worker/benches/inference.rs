//! Inference latency and throughput over pipelines of 1, 2 and 4 stages on loopback, printed as
//! a table (a benchmark, not a test; results go to `docs/benchmarks.md`).
//!
//! Each stage is a real `blyan-worker` HTTP server (the same `axum` app `serve` runs) on
//! 127.0.0.1, in this process; the coordinator is the gateway's generation loop over the stage
//! protocol (h2c). For each stage count and number of concurrent clients: time to first token
//! and decode tokens/s per request (p50 / p99), and the per-hop overhead (decode time per token
//! minus the single-stage one, per extra hop).
//!
//! Environment: `BENCH_MODEL` (`tiny` or `m100`, default `tiny`), `BENCH_REQUESTS` (per client,
//! default 4), `BENCH_TOKENS` (per request, default 32).

use std::{sync::Arc, time::Instant};

use blyan_worker::{
	inference::{
		route::{self, FixedRoute, GenerateRequest, Hop, Route, RouteSource, StageClient},
		server::{self, ApiAccess, AppState, Metrics},
		stage::LocalStage,
	},
	ml::{infer::StageModel, init_layers, model::ModelConfig, CpuBackend},
};

fn env(name: &str, default: usize) -> usize {
	std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Splits `layers` registry layers into `stages` contiguous spans.
fn spans(layers: usize, stages: usize) -> Vec<(usize, usize)> {
	(0..stages).map(|i| (i * layers / stages, (i + 1) * layers / stages)).collect()
}

async fn start_stages(config: &ModelConfig, stages: usize) -> Route {
	let layers = init_layers(config, 1);
	let http = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
	let mut hops = Vec::new();
	for (a, b) in spans(config.layer_count(), stages) {
		let model =
			StageModel::<CpuBackend>::new(config, a, &layers[a..b], &Default::default()).unwrap();
		let stage = LocalStage::start(model, 64, std::time::Duration::ZERO, "cpu");
		let state = Arc::new(AppState {
			version: 1,
			stage: Some(stage),
			routes: None,
			book: None,
			payer: None,
			api: ApiAccess::Open,
			gate: None,
			signer: None,
			check_rate: 0.0,
			check_queue: Default::default(),
			challenger: None,
			corrupt_every: 0,
			max_positions: config.max_position_embeddings,
			tokenizer: Arc::new(blyan_worker::ml::tokenizer::TextTokenizer::Bytes),
			metrics: Metrics::default(),
		});
		let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
		let endpoint = format!("http://{}", listener.local_addr().unwrap());
		tokio::spawn(async move { axum::serve(listener, server::router(state)).await });
		hops.push(Hop {
			client: StageClient::Remote { endpoint, http: http.clone(), access: None },
			span: (a, b),
			server: None,
			price_per_token: 0,
		});
	}
	Route { hops }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
	values.sort_by(f64::total_cmp);
	let i = ((values.len() as f64 - 1.0) * p).round() as usize;
	values[i]
}

struct Row {
	stages: usize,
	clients: usize,
	ttft: (f64, f64),
	tps: (f64, f64),
	per_token_ms: f64,
	aggregate_tps: f64,
}

async fn measure(
	source: Arc<dyn RouteSource>,
	clients: usize,
	requests: usize,
	tokens: usize,
) -> (Vec<f64>, Vec<f64>, f64, f64) {
	let started = Instant::now();
	let tasks: Vec<_> = (0..clients)
		.map(|c| {
			let source = source.clone();
			tokio::spawn(async move {
				let mut out = Vec::new();
				for r in 0..requests {
					let prompt: Vec<u32> =
						format!("add {c} {r} = ").bytes().map(u32::from).collect();
					let request = GenerateRequest {
						prompt,
						max_tokens: tokens,
						temperature: 0.0,
						top_k: 0,
						top_p: 1.0,
						seed: 0,
						logprobs: None,
						check: false,
					};
					let t = Instant::now();
					let g =
						route::generate(source.as_ref(), 1, &request, |_, _| false).await.unwrap();
					let total = t.elapsed();
					let decode = total.saturating_sub(g.first_token);
					let per_token = decode.as_secs_f64() / (g.tokens.len().max(2) - 1) as f64;
					out.push((g.first_token.as_secs_f64() * 1e3, per_token));
				}
				out
			})
		})
		.collect();
	let mut ttft = Vec::new();
	let mut per_token = Vec::new();
	for t in tasks {
		for (a, b) in t.await.unwrap() {
			ttft.push(a);
			per_token.push(b);
		}
	}
	let wall = started.elapsed().as_secs_f64();
	let generated = (clients * requests * tokens) as f64;
	let mean_per_token = per_token.iter().sum::<f64>() / per_token.len() as f64;
	let tps: Vec<f64> = per_token.iter().map(|s| 1.0 / s).collect();
	(ttft, tps, mean_per_token * 1e3, generated / wall)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
	let config = match std::env::var("BENCH_MODEL").as_deref() {
		Ok("m100") => ModelConfig::m100(),
		_ => ModelConfig::tiny(),
	};
	let (requests, tokens) = (env("BENCH_REQUESTS", 4), env("BENCH_TOKENS", 32));
	println!(
		"model: {} parameters, {} registry layers; {} tokens per request, {} requests per client; {} CPU cores",
		config.parameter_count(),
		config.layer_count(),
		tokens,
		requests,
		std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
	);
	let mut rows = Vec::new();
	for stages in [1, 2, 4] {
		let route = start_stages(&config, stages.min(config.layer_count())).await;
		let source: Arc<dyn RouteSource> = Arc::new(FixedRoute(route));
		// Warm-up.
		measure(source.clone(), 1, 1, 4).await;
		for clients in [1, 16] {
			let (mut ttft, mut tps, per_token_ms, aggregate_tps) =
				measure(source.clone(), clients, requests, tokens).await;
			rows.push(Row {
				stages,
				clients,
				ttft: (percentile(&mut ttft, 0.5), percentile(&mut ttft, 0.99)),
				tps: (percentile(&mut tps, 0.5), percentile(&mut tps, 0.01)),
				per_token_ms,
				aggregate_tps,
			});
		}
	}
	println!(
		"\n| stages | clients | TTFT p50 (ms) | TTFT p99 (ms) | tokens/s per request p50 | p99 (slowest) | ms/token | aggregate tokens/s |"
	);
	println!("|---|---|---|---|---|---|---|---|");
	for r in &rows {
		println!(
			"| {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} | {:.0} |",
			r.stages,
			r.clients,
			r.ttft.0,
			r.ttft.1,
			r.tps.0,
			r.tps.1,
			r.per_token_ms,
			r.aggregate_tps
		);
	}
	let single = rows.iter().find(|r| r.stages == 1 && r.clients == 1).map(|r| r.per_token_ms);
	if let Some(single) = single {
		for r in rows.iter().filter(|r| r.clients == 1 && r.stages > 1) {
			println!(
				"per-hop overhead at {} stages: {:.2} ms per token",
				r.stages,
				(r.per_token_ms - single) / (r.stages - 1) as f64
			);
		}
	}
}
