//! Chain benchmark (not a test): transfer throughput on a dev node and submission-to-finality
//! latency on the three-validator `local` network. Prints a Markdown table.
//!
//! Run through `scripts/bench-chain`, which builds the node and sets `BLYAN_NODE_BIN`.
//! `BENCH_TRANSFERS` (default 2000) and `BENCH_SAMPLES` (default 40) size the two runs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use blyan_runtime::{currency::MILLI_BLY, RuntimeCall};
use common::*;
use serde_json::json;
use sp_keyring::Sr25519Keyring;

fn env_usize(name: &str, default: usize) -> usize {
	std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn transfer(to: &Sr25519Keyring) -> RuntimeCall {
	RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
		dest: to.to_account_id().into(),
		value: MILLI_BLY,
	})
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
	if sorted.is_empty() {
		return f64::NAN;
	}
	let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
	sorted[idx.min(sorted.len() - 1)]
}

fn throughput(total: usize) -> Result<Throughput, String> {
	let dir = test_dir("bench-dev");
	// BENCH_NODE_ARGS: extra flags for the dev node (e.g. `--pool-type single-state`).
	let extra = std::env::var("BENCH_NODE_ARGS").unwrap_or_default();
	let mut args = vec!["--dev", "--pool-limit", "100000", "--pool-kbytes", "200000"];
	args.extend(extra.split_whitespace());
	let mut node = Node::start("dev", dir.path(), &args);
	let rpc = node.rpc();
	node.wait_for("block 1", Duration::from_secs(300), |h| h.best >= 1)?;

	let senders = [
		Sr25519Keyring::Alice,
		Sr25519Keyring::Bob,
		Sr25519Keyring::Charlie,
		Sr25519Keyring::Dave,
		Sr25519Keyring::Eve,
		Sr25519Keyring::Ferdie,
	];
	let per_sender = total.div_ceil(senders.len());
	eprintln!("signing {} transfers…", per_sender * senders.len());
	let mut signed = Vec::new();
	for n in 0..per_sender {
		for (i, s) in senders.iter().enumerate() {
			let to = senders[(i + 1) % senders.len()];
			signed.push(rpc.sign(*s, n as u32, transfer(&to)));
		}
	}
	let start_block = rpc.heads().ok_or("heads")?.best;
	let started = Instant::now();
	let mut accepted = 0usize;
	for xt in &signed {
		if rpc.submit(xt).is_ok() {
			accepted += 1;
		}
	}
	let submit_secs = started.elapsed().as_secs_f64();
	eprintln!(
		"submitted {accepted}/{} in {submit_secs:.1} s; waiting for inclusion…",
		signed.len()
	);
	// Wait until every transfer is in a block, or the pool is empty and nothing moves any more
	// (transactions the pool accepted and later dropped are reported, not waited for).
	let deadline = Instant::now() + Duration::from_secs(600);
	let mut last_total = 0u32;
	let mut stalled_since = Instant::now();
	loop {
		let nonces: Vec<u32> = senders
			.iter()
			.map(|s| rpc.chain_nonce(&s.to_account_id(), None).unwrap_or(0))
			.collect();
		let total: u32 = nonces.iter().sum();
		if nonces.iter().all(|n| *n >= per_sender as u32) {
			break;
		}
		if total != last_total {
			last_total = total;
			stalled_since = Instant::now();
		}
		let pending: Vec<serde_json::Value> =
			rpc.call("author_pendingExtrinsics", json!([])).unwrap_or_default();
		if pending.is_empty() && stalled_since.elapsed() > Duration::from_secs(5) {
			eprintln!(
				"pool empty with {total} of {} transfers on chain",
				senders.len() * per_sender
			);
			break;
		}
		if Instant::now() > deadline {
			return Err("transfers not included within 10 minutes".into());
		}
		std::thread::sleep(Duration::from_millis(200));
	}
	// Count transfers per block (every extrinsic but the timestamp inherent).
	let end_block = rpc.heads().ok_or("heads")?.best;
	let mut per_block = Vec::new();
	for n in start_block + 1..=end_block {
		let hash = rpc.block_hash(n).ok_or("block hash")?;
		let block: serde_json::Value = rpc.call("chain_getBlock", json!([format!("{hash:?}")]))?;
		let count =
			block["block"]["extrinsics"].as_array().map_or(0, |x| x.len().saturating_sub(1));
		if count > 0 {
			per_block.push(count);
		}
	}
	let included: usize = per_block.iter().sum();
	let busiest = per_block.iter().copied().max().unwrap_or(0);
	let secs = per_block.len() as f64 * blyan_runtime::time::MILLISECS_PER_BLOCK as f64 / 1000.0;
	Ok(Throughput {
		submitted: accepted,
		included,
		blocks: per_block.len(),
		busiest,
		chain_secs: secs,
	})
}

struct Throughput {
	submitted: usize,
	included: usize,
	blocks: usize,
	busiest: usize,
	chain_secs: f64,
}

fn finality_latency(samples: usize, gossip_ms: Option<&str>) -> Result<Vec<f64>, String> {
	let dir = test_dir("bench-local");
	let gossip: Vec<&str> = gossip_ms.map(|ms| vec!["--grandpa-gossip-ms", ms]).unwrap_or_default();
	let mut nodes = start_network(dir.path(), "local", 3, &gossip);
	let alice = &mut nodes[0];
	let rpc = alice.rpc();
	alice.wait_for("finality on the 3-validator network", Duration::from_secs(300), |h| {
		h.finalized >= 3
	})?;

	let ferdie = Sr25519Keyring::Ferdie;
	let who = ferdie.to_account_id();
	let mut latencies = Vec::new();
	for i in 0..samples {
		let nonce = rpc.chain_nonce(&who, None).ok_or("nonce")?;
		let xt = rpc.sign(ferdie, nonce, transfer(&Sr25519Keyring::Eve));
		let t0 = Instant::now();
		rpc.submit(&xt)?;
		loop {
			let fin = rpc.finalized_hash().ok_or("finalized")?;
			if rpc.chain_nonce(&who, Some(fin)) > Some(nonce) {
				break;
			}
			if t0.elapsed() > Duration::from_secs(60) {
				return Err(format!("sample {i} not finalized in 60 s"));
			}
			std::thread::sleep(Duration::from_millis(20));
		}
		latencies.push(t0.elapsed().as_secs_f64());
		// Spread submissions over the slot so the samples do not all hit the same phase.
		std::thread::sleep(Duration::from_millis(137 * (i as u64 % 7)));
	}
	latencies.sort_by(|a, b| a.total_cmp(b));
	Ok(latencies)
}

fn main() {
	let transfers = env_usize("BENCH_TRANSFERS", 3000);
	let samples = env_usize("BENCH_SAMPLES", 40);
	let machine = format!(
		"{} cores, {}",
		std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
		std::env::var("BLYAN_NODE_PROFILE").unwrap_or_else(|_| "node build: unknown".into())
	);
	let tp = match throughput(transfers) {
		Ok(r) => r,
		Err(e) => {
			eprintln!("throughput run failed: {e}");
			std::process::exit(1);
		}
	};
	// Unset: the node's default `--grandpa-gossip-ms`.
	let gossip = std::env::var("BENCH_GRANDPA_GOSSIP_MS").ok();
	let lat = match finality_latency(samples, gossip.as_deref()) {
		Ok(r) => r,
		Err(e) => {
			eprintln!("latency run failed: {e}");
			std::process::exit(1);
		}
	};
	println!("| metric | value |");
	println!("|---|---|");
	println!("| machine | {machine} |");
	println!("| transfers submitted (dev node, 6 senders) | {} |", tp.submitted);
	println!("| transfers included | {} in {} blocks |", tp.included, tp.blocks);
	println!(
		"| accepted by the pool but never included | {} |",
		tp.submitted.saturating_sub(tp.included)
	);
	println!(
		"| transfers/s accepted into blocks (included ÷ block time of those blocks) | {:.0} |",
		tp.included as f64 / tp.chain_secs
	);
	println!("| most transfers in one block | {} |", tp.busiest);
	println!("| submission → finalization p50 (3 validators) | {:.2} s |", percentile(&lat, 0.5));
	println!("| submission → finalization p99 (3 validators) | {:.2} s |", percentile(&lat, 0.99));
	println!("| samples | {} |", lat.len());
}
