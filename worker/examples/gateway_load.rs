//! A bounded load on a running gateway's OpenAI API (`scripts/bench-gateway` starts the network):
//! `CLIENTS` concurrent clients each send `REQUESTS` completions of `TOKENS` tokens, one after
//! another; prints one Markdown table row: requests/s, tokens/s, latency p50/p99/max, failures.
//!
//!   cargo run --example gateway_load -- http://127.0.0.1:8000 blyan-0 CLIENTS REQUESTS TOKENS

use std::time::{Duration, Instant};

fn main() {
	let args: Vec<String> = std::env::args().collect();
	if args.len() != 6 {
		eprintln!("usage: gateway_load GATEWAY_URL MODEL CLIENTS REQUESTS TOKENS");
		std::process::exit(2);
	}
	let number = |i: usize| -> usize {
		args[i].parse().unwrap_or_else(|_| {
			eprintln!("{:?} is not a number", args[i]);
			std::process::exit(2)
		})
	};
	let (url, model) = (args[1].clone(), args[2].clone());
	let (clients, requests, tokens) = (number(3), number(4), number(5));
	let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
	runtime.block_on(async move {
		let http = reqwest::Client::new();
		let started = Instant::now();
		let tasks: Vec<_> = (0..clients)
			.map(|c| {
				let (http, url, model) = (http.clone(), url.clone(), model.clone());
				tokio::spawn(async move {
					let mut out = Vec::new();
					for r in 0..requests {
						let body = serde_json::json!({
							"model": model,
							"prompt": format!("add {c} {r} = "),
							"max_tokens": tokens,
							"temperature": 0,
						});
						let t = Instant::now();
						let answer = http
							.post(format!("{url}/v1/completions"))
							.json(&body)
							.timeout(Duration::from_secs(120))
							.send()
							.await;
						let ok = match answer {
							Ok(a) if a.status().is_success() => a
								.json::<serde_json::Value>()
								.await
								.ok()
								.and_then(|v| v["usage"]["completion_tokens"].as_u64()),
							Ok(a) => {
								let status = a.status();
								let text = a.text().await.unwrap_or_default();
								eprintln!(
									"client {c}: {status} {}",
									text.chars().take(200).collect::<String>()
								);
								None
							}
							Err(e) => {
								eprintln!("client {c}: {e}");
								None
							}
						};
						out.push((t.elapsed(), ok));
					}
					out
				})
			})
			.collect();
		let mut latencies = Vec::new();
		let (mut failures, mut generated) = (0, 0u64);
		for task in tasks {
			for (latency, ok) in task.await.expect("client task") {
				match ok {
					Some(n) => {
						latencies.push(latency);
						generated += n;
					}
					None => failures += 1,
				}
			}
		}
		let wall = started.elapsed().as_secs_f64();
		latencies.sort();
		let ms = |p: f64| {
			latencies
				.get(((latencies.len().max(1) - 1) as f64 * p).round() as usize)
				.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
		};
		println!(
			"| {clients} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {failures} |",
			clients * requests,
			latencies.len() as f64 / wall,
			generated as f64 / wall,
			ms(0.5),
			ms(0.99),
			ms(1.0),
		);
	});
}
