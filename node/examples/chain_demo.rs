//! The main job for now: start a dev chain, show blocks being produced and finalized, move BLY,
//! and run one Proof-of-Learning job through registration, commit-reveal, verification and payout.
//!
//! Run through `scripts/demo.sh`, which builds the node and sets `BLYAN_NODE_BIN`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use blyan_runtime::{
	configs::accounts,
	currency::{BLY, TOKEN_DECIMALS},
	Balance, RuntimeCall,
};
use common::*;
use serde_json::json;
use sp_core::crypto::Ss58Codec;
use sp_keyring::Sr25519Keyring;

fn bly(amount: Balance) -> String {
	let whole = amount / BLY;
	let frac = amount % BLY;
	format!("{whole}.{:0width$} BLY", frac, width = TOKEN_DECIMALS as usize)
}

fn main() {
	if let Err(e) = run() {
		eprintln!("demo failed: {e}");
		std::process::exit(1);
	}
}

fn run() -> Result<(), String> {
	let dir = test_dir("demo");
	println!("▶ starting blyan-node --dev (logs: {})", dir.path().join("dev.log").display());
	let mut node = Node::start("dev", dir.path(), &["--dev"]);
	let rpc = node.rpc();
	node.wait_for("the first block", Duration::from_secs(300), |h| h.best >= 1)?;
	println!("  RPC on {}, Prometheus on 127.0.0.1:{}", node.rpc_url(), node.prometheus_port);

	let props: serde_json::Value = rpc.call("system_properties", json!([]))?;
	println!("  token: {} with {} decimals", props["tokenSymbol"], props["tokenDecimals"]);
	let issuance = rpc.total_issuance(None).ok_or("no issuance")?;
	println!("  total issuance: {}", bly(issuance));
	for (name, who) in [
		("mining-reward pool", accounts::mining_pool()),
		("foundation", accounts::foundation()),
		("team", accounts::team()),
		("community", accounts::community()),
	] {
		let b = rpc.free_balance(&who, None).ok_or("balance")?;
		println!("  {name:<19} {}  {}", who.to_ss58check(), bly(b));
	}

	println!("▶ blocks (best / finalized):");
	let mut last = rpc.heads().ok_or("no heads")?;
	let until = last.finalized + 5;
	let deadline = Instant::now() + Duration::from_secs(120);
	while last.finalized < until && Instant::now() < deadline {
		std::thread::sleep(Duration::from_millis(200));
		if let Some(h) = rpc.heads() {
			if h != last {
				let hash = rpc.block_hash(h.best).map(|h| format!("{h:?}")).unwrap_or_default();
				println!(
					"  #{:<4} {}…  finalized #{}",
					h.best,
					&hash[..18.min(hash.len())],
					h.finalized
				);
				last = h;
			}
		}
	}
	if last.finalized < until {
		return Err("finality did not advance".into());
	}

	println!("▶ transfer: Ferdie sends 100 BLY to Bob");
	let ferdie = Sr25519Keyring::Ferdie;
	let bob = Sr25519Keyring::Bob.to_account_id();
	let (ferdie_before, bob_before) = (
		rpc.free_balance(&ferdie.to_account_id(), None).ok_or("balance")?,
		rpc.free_balance(&bob, None).ok_or("balance")?,
	);
	let issuance_before = rpc.total_issuance(None).ok_or("issuance")?;
	println!("  before: Ferdie {}  Bob {}", bly(ferdie_before), bly(bob_before));
	let amount = 100 * BLY;
	let call = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
		dest: bob.clone().into(),
		value: amount,
	});
	let nonce = rpc.nonce(&ferdie.to_account_id()).ok_or("nonce")?;
	let xt = rpc.sign(ferdie, nonce, call);
	let started = Instant::now();
	let tx_hash = rpc.submit(&xt)?;
	println!("  submitted {tx_hash}");
	let deadline = Instant::now() + Duration::from_secs(60);
	loop {
		let fin = rpc.finalized_hash().ok_or("finalized head")?;
		if rpc.free_balance(&bob, Some(fin)) == Some(bob_before + amount) {
			let fin_no = rpc.heads().map(|h| h.finalized).unwrap_or_default();
			println!(
				"  finalized in block ≤ #{fin_no} after {:.2} s",
				started.elapsed().as_secs_f64()
			);
			let ferdie_after =
				rpc.free_balance(&ferdie.to_account_id(), Some(fin)).ok_or("balance")?;
			let issuance_after = rpc.total_issuance(Some(fin)).ok_or("issuance")?;
			let fee = ferdie_before - ferdie_after - amount;
			println!("  after:  Ferdie {}  Bob {}", bly(ferdie_after), bly(bob_before + amount));
			println!(
				"  fee {} — burned {} (total issuance {} → {}), the rest to the block author",
				bly(fee),
				bly(issuance_before - issuance_after),
				bly(issuance_before),
				bly(issuance_after)
			);
			break;
		}
		if Instant::now() > deadline {
			return Err(format!("transfer not finalized in 60 s\n{}", node.log_tail()));
		}
		std::thread::sleep(Duration::from_millis(200));
	}
	println!("▶ Proof-of-Learning: one training job, verified by a committee and paid");
	let eve = Sr25519Keyring::Eve.to_account_id();
	let eve_before = rpc.free_balance(&eve, None).ok_or("balance")?;
	let outcome = pol::honest_job(&rpc, &mut |line| println!("  {line}"))
		.map_err(|e| format!("{e}\n{}", node.log_tail()))?;
	let eve_after = rpc.free_balance(&eve, None).ok_or("balance")?;
	let layers: Vec<String> = outcome
		.layer_sources
		.iter()
		.enumerate()
		.map(|(layer, v)| format!("layer {layer} ← version {v}"))
		.collect();
	println!("  resolved layers of version 1.1.0: {}", layers.join(", "));
	println!(
		"  Eve (miner): free balance {} → {} (escrow share after her 100 BLY bond and fees); {} epoch points",
		bly(eve_before),
		bly(eve_after),
		outcome.miner_points.unwrap_or_default()
	);
	println!("  Ferdie (dataset owner) received {}", bly(outcome.dataset_owner_paid));
	if outcome.candidate.status != blyan_primitives::pol::VersionStatus::Accepted {
		return Err("the honest job was not accepted".into());
	}
	println!("✔ done: blocks produced and finalized, BLY moved, a job verified and paid; stopping the node");
	Ok(())
}
