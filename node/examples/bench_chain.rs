//! Chain benchmark (not a test): transfer throughput on a dev node and submission-to-finality
//! latency on the three-validator `local` network. Prints a Markdown table.
//!
//! Run through `scripts/bench-chain`, which builds the node and sets `BLYAN_NODE_BIN`.
//! `BENCH_TRANSFERS` (default 2000) and `BENCH_SAMPLES` (default 40) size the two runs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use blyan_runtime::{currency::MILLI_BLY, RuntimeCall};
use codec::Decode;
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

/// On-chain nonce of `who` in block `at` (not counting the pool, unlike `system_accountNextIndex`).
fn chain_nonce(
	rpc: &Rpc,
	who: &blyan_runtime::AccountId,
	at: Option<sp_core::H256>,
) -> Option<u32> {
	let key = frame_system::Account::<blyan_runtime::Runtime>::hashed_key_for(who);
	let at = at.map(|h| format!("{h:?}"));
	let raw: Option<String> =
		rpc.call("state_getStorage", json!([format!("0x{}", hex::encode(key)), at])).ok()?;
	let Some(raw) = raw else { return Some(0) };
	let bytes = hex::decode(raw.trim_start_matches("0x")).ok()?;
	let info = frame_system::AccountInfo::<
		blyan_runtime::Nonce,
		pallet_balances::AccountData<blyan_runtime::Balance>,
	>::decode(&mut &bytes[..])
	.ok()?;
	Some(info.nonce)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
	if sorted.is_empty() {
		return f64::NAN;
	}
	let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
	sorted[idx.min(sorted.len() - 1)]
}

fn throughput(total: usize) -> Result<(usize, f64, f64), String> {
	let dir = test_dir("bench-dev");
	let mut node = Node::start(
		"dev",
		dir.path(),
		&["--dev", "--pool-limit", "100000", "--pool-kbytes", "200000"],
	);
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
	let deadline = Instant::now() + Duration::from_secs(600);
	loop {
		let done = senders
			.iter()
			.all(|s| chain_nonce(&rpc, &s.to_account_id(), None) >= Some(per_sender as u32));
		if done {
			break;
		}
		if Instant::now() > deadline {
			return Err("transfers not included within 10 minutes".into());
		}
		std::thread::sleep(Duration::from_millis(100));
	}
	let secs = started.elapsed().as_secs_f64();
	let blocks = rpc.heads().ok_or("heads")?.best - start_block;
	Ok((accepted, secs, blocks as f64))
}

fn finality_latency(samples: usize) -> Result<Vec<f64>, String> {
	let dir = test_dir("bench-local");
	let key = write_node_key(dir.path(), "alice", 1);
	let peer = peer_id_of(&key);
	let key_arg = key.to_string_lossy().to_string();
	let mut alice = Node::start(
		"alice",
		dir.path(),
		&["--chain", "local", "--alice", "--validator", "--node-key-file", &key_arg],
	);
	let boot = alice.multiaddr(&peer);
	let mut others = Vec::new();
	for (i, name) in ["bob", "charlie"].into_iter().enumerate() {
		let key = write_node_key(dir.path(), name, i as u8 + 2).to_string_lossy().to_string();
		let flag = format!("--{name}");
		others.push(Node::start(
			name,
			dir.path(),
			&[
				"--chain",
				"local",
				&flag,
				"--validator",
				"--node-key-file",
				&key,
				"--bootnodes",
				&boot,
			],
		));
	}
	let rpc = alice.rpc();
	alice.wait_for("finality on the 3-validator network", Duration::from_secs(300), |h| {
		h.finalized >= 3
	})?;

	let ferdie = Sr25519Keyring::Ferdie;
	let who = ferdie.to_account_id();
	let mut latencies = Vec::new();
	for i in 0..samples {
		let nonce = chain_nonce(&rpc, &who, None).ok_or("nonce")?;
		let xt = rpc.sign(ferdie, nonce, transfer(&Sr25519Keyring::Eve));
		let t0 = Instant::now();
		rpc.submit(&xt)?;
		loop {
			let fin = rpc.finalized_hash().ok_or("finalized")?;
			if chain_nonce(&rpc, &who, Some(fin)) > Some(nonce) {
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
	let transfers = env_usize("BENCH_TRANSFERS", 2000);
	let samples = env_usize("BENCH_SAMPLES", 40);
	let machine = format!(
		"{} cores, {}",
		std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
		std::env::var("BLYAN_NODE_PROFILE").unwrap_or_else(|_| "node build: unknown".into())
	);
	let (accepted, secs, blocks) = match throughput(transfers) {
		Ok(r) => r,
		Err(e) => {
			eprintln!("throughput run failed: {e}");
			std::process::exit(1);
		}
	};
	let lat = match finality_latency(samples) {
		Ok(r) => r,
		Err(e) => {
			eprintln!("latency run failed: {e}");
			std::process::exit(1);
		}
	};
	println!("| metric | value |");
	println!("|---|---|");
	println!("| machine | {machine} |");
	println!("| transfers submitted (dev node, 6 senders) | {accepted} |");
	println!("| transfers/s accepted into blocks | {:.0} |", accepted as f64 / secs);
	println!("| blocks used | {blocks} |");
	println!("| submission → finalization p50 (3 validators) | {:.2} s |", percentile(&lat, 0.5));
	println!("| submission → finalization p99 (3 validators) | {:.2} s |", percentile(&lat, 0.99));
	println!("| samples | {} |", lat.len());
}
