//! What a free request costs a bot: measures this machine's rate of proof-of-work hashes and
//! prints, for a few difficulties, the hashes and time per request and how many free requests per
//! block an attacker with `cores` such cores could get (the per-block cap bounds it anyway).
//!
//!   cargo run --example pow_cost -p pallet-free-tier [-- <cores>]
use pallet_free_tier::{leading_zero_bits, mine, pow_hash};
use sp_core::H256;
use std::time::Instant;

fn main() {
	let cores: f64 = std::env::args().nth(1).and_then(|c| c.parse().ok()).unwrap_or(16.0);
	let who = [7u8; 32];
	let block_hash = H256::repeat_byte(3);
	// Hash rate: a fixed number of hashes on one core.
	let n = 2_000_000u64;
	let start = Instant::now();
	let mut zeros = 0;
	for nonce in 0..n {
		zeros += leading_zero_bits(&pow_hash(&who, &1u32, &block_hash, nonce)).min(1);
	}
	let rate = n as f64 / start.elapsed().as_secs_f64();
	assert!(zeros > 0);
	// Measured hashes per seal at a low difficulty (many seals), against 2^d.
	let (seals, difficulty) = (64u32, 12u32);
	let tried: u64 = (0..seals).map(|b| mine(&who, &b, &block_hash, difficulty).1).sum();
	println!("proof-of-work hash rate: {:.2} M hashes/s on one core", rate / 1e6);
	println!(
		"measured: {:.0} hashes per seal at {difficulty} bits over {seals} seals (2^{difficulty} = {})",
		tried as f64 / seals as f64,
		1u64 << difficulty
	);
	println!();
	println!("| difficulty | hashes per request | one core | free requests per 1 s block, {cores} cores |");
	println!("|---|---|---|---|");
	for d in [16u32, 20, 24] {
		let hashes = (1u64 << d) as f64;
		let seconds = hashes / rate;
		println!(
			"| {d} bits | {:.2} M | {:.2} s | {:.1} |",
			hashes / 1e6,
			seconds,
			cores / seconds
		);
	}
}
