//! The training audit's cost and power, printed as tables (a benchmark, not a test):
//!
//! 1. **Compute.** Traced training of the tiny model (a checkpoint every `K` steps, each segment
//!    restarted from its exported state, as the miner runs it) against re-executing spot-checked
//!    segments from decoded checkpoints (as a verifier runs it). From the measured time of a step
//!    and of a segment check, the verification share of a job of `T` steps at the default rate
//!    (`min(44, T/K)` segments).
//! 2. **Detection.** For a miner faking a share `f` of its steps in one contiguous run (the
//!    fewest bad segments, the hardest case): the probability that `s` spot checks hit a bad
//!    segment, computed (`1 − C(N−b, s)/C(N, s)`), simulated with the pallet's draw (blake2 over a
//!    seed, distinct segments), and measured on real faked traces: a miner skipping a contiguous
//!    tenth of its segments, every drawn segment re-executed and compared bit for bit.
//!
//! Environment: `AUDIT_K` (default 10), `AUDIT_SPOT_CHECKS` (44), `AUDIT_TRIALS` (real faked
//! traces, default 6), `AUDIT_SIM` (simulated draws per row, default 20000).

use std::time::{Duration, Instant};

use blyan_primitives::audit::TrainingState;
use blyan_worker::ml::{
	data, init_layers,
	model::ModelConfig,
	trace::{run_segment, skip_segment, TrainState},
	train::Hyperparams,
	CpuBackend,
};
use burn::backend::Autodiff;
use codec::Encode;

type Train = Autodiff<CpuBackend>;

fn env(name: &str, default: u32) -> u32 {
	std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `1 − C(n−b, s)/C(n, s)`: a draw of `s` distinct segments out of `n` hits one of `b` bad ones.
fn detection(n: u32, b: u32, s: u32) -> f64 {
	let s = s.min(n);
	if b == 0 {
		return 0.0;
	}
	let mut miss = 1.0f64;
	for i in 0..s {
		let good = n.saturating_sub(b) as f64 - i as f64;
		if good <= 0.0 {
			return 1.0;
		}
		miss *= good / (n as f64 - i as f64);
	}
	1.0 - miss
}

/// The pallet's draw: `count` distinct segments of `n` from blake2(seed, i).
fn draw(seed: [u8; 32], n: u32, count: u32) -> Vec<u32> {
	let count = count.min(n);
	if count == n {
		return (0..n).collect();
	}
	let mut chosen = Vec::new();
	let mut i = 0u32;
	while (chosen.len() as u32) < count {
		let digest = sp_crypto_hashing::blake2_256(&(seed, i).encode());
		let pick = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) % n;
		if !chosen.contains(&pick) {
			chosen.push(pick);
		}
		i += 1;
	}
	chosen
}

fn seed(trial: u64) -> [u8; 32] {
	sp_crypto_hashing::blake2_256(&trial.to_le_bytes())
}

fn main() {
	let k = env("AUDIT_K", 10);
	let spot = env("AUDIT_SPOT_CHECKS", 44);
	let trials = env("AUDIT_TRIALS", 6);
	let sims = env("AUDIT_SIM", 20_000);
	let config = ModelConfig::tiny();
	let corpus = data::encode(&data::generate_corpus(1, 64 * 1024));
	let dev = Default::default();

	// 1. Compute: a traced job of 100 steps, then every segment re-checked once.
	let steps = 10 * k;
	let hp = Hyperparams { steps, ..Hyperparams::default() };
	let mut state = TrainState::initial(init_layers(&config, 1));
	let mut checkpoints = vec![state.encode()];
	let started = Instant::now();
	for i in 1..=steps.div_ceil(k) {
		let to = (i * k).min(steps);
		state = run_segment::<Train>(&config, &state, &corpus, &hp, 7, to, &dev, |_, _| {})
			.expect("trains");
		checkpoints.push(state.encode());
	}
	let train = started.elapsed();
	let per_step = train / steps;
	let mut checks = Vec::new();
	for i in 0..checkpoints.len() - 1 {
		let started = Instant::now();
		let start = TrainState::decode(&config, &checkpoints[i]).expect("decodes");
		let end = TrainState::decode(&config, &checkpoints[i + 1]).expect("decodes");
		let again =
			run_segment::<Train>(&config, &start, &corpus, &hp, 7, end.step, &dev, |_, _| {})
				.expect("re-runs");
		assert_eq!(again.summary().hash(), end.summary().hash(), "bit-exact re-execution");
		checks.push(started.elapsed());
	}
	checks.sort();
	let per_check = checks[checks.len() / 2];
	let blob = checkpoints[1].len();
	println!(
		"## Compute (tiny model, {} parameters, K = {k}, batch {}×{})",
		config.parameter_count(),
		hp.batch_size,
		hp.seq_len
	);
	println!();
	println!("| measured | value |");
	println!("|---|---|");
	println!("| traced training, per step | {:.1} ms |", ms(per_step));
	println!(
		"| one segment check (decode 2 checkpoints, re-run {k} steps, compare) | {:.1} ms |",
		ms(per_check)
	);
	println!("| checkpoint state blob (weights + AdamW moments) | {:.2} MB |", blob as f64 / 1e6);
	println!();
	println!("| job steps T | segments N = T/K | spot checks s | verification / training |");
	println!("|---|---|---|---|");
	for t in [60u32, 1_000, 4_400, 8_800, 100_000] {
		let n = t.div_ceil(k);
		let s = spot.min(n);
		let share = s as f64 * per_check.as_secs_f64() / (t as f64 * per_step.as_secs_f64());
		println!("| {t} | {n} | {s} | {:.1} % |", share * 100.0);
	}

	// 2. Detection: computed and simulated.
	println!();
	println!("## Detection of a miner faking a contiguous share f of its steps (s = {spot})");
	println!();
	println!("| segments N | faked f | bad segments b | computed | simulated ({sims} draws) |");
	println!("|---|---|---|---|---|");
	for n in [100u32, 440, 880, 10_000] {
		for f in [0.01f64, 0.05, 0.10, 0.20] {
			let b = ((f * n as f64).ceil() as u32).max(1);
			let mut hits = 0u32;
			for trial in 0..sims as u64 {
				let first = (trial as u32).wrapping_mul(2_654_435_761) % (n - b + 1);
				let chosen = draw(seed(trial), n, spot);
				hits += u32::from(chosen.iter().any(|c| (first..first + b).contains(c)));
			}
			println!(
				"| {n} | {:.0} % | {b} | {:.2} % | {:.2} % |",
				f * 100.0,
				detection(n, b, spot) * 100.0,
				hits as f64 / sims as f64 * 100.0
			);
		}
	}

	// 3. Measured on real faked traces: K = 1 (a checkpoint every step), 100 steps, a
	// contiguous tenth skipped; every drawn segment re-executed and compared.
	let fake_steps = 100u32;
	let hp1 = Hyperparams { steps: fake_steps, ..Hyperparams::default() };
	let s1 = spot.min(fake_steps);
	let mut caught = 0u32;
	for trial in 0..trials {
		let skip_from = (trial * 13) % (fake_steps - 10);
		let mut state = TrainState::initial(init_layers(&config, 1));
		let mut trace: Vec<TrainState> = vec![state.clone()];
		for step in 1..=fake_steps {
			state = if (skip_from..skip_from + 10).contains(&(step - 1)) {
				skip_segment(&state, corpus.len(), &hp1, 7, step)
			} else {
				run_segment::<Train>(&config, &state, &corpus, &hp1, 7, step, &dev, |_, _| {})
					.expect("trains")
			};
			trace.push(state.clone());
		}
		let leaves: Vec<TrainingState> = trace.iter().map(TrainState::summary).collect();
		let found = draw(seed(1_000 + trial as u64), fake_steps, s1).into_iter().any(|segment| {
			let start = &trace[segment as usize];
			let again = run_segment::<Train>(
				&config,
				start,
				&corpus,
				&hp1,
				7,
				segment + 1,
				&dev,
				|_, _| {},
			)
			.expect("re-runs");
			again.summary() != leaves[segment as usize + 1]
		});
		caught += u32::from(found);
	}
	println!();
	println!("## Measured on real faked traces (K = 1, T = {fake_steps}, 10 % skipped, s = {s1})");
	println!();
	println!("| trials | caught | computed |");
	println!("|---|---|---|");
	println!("| {trials} | {caught} | {:.2} % |", detection(fake_steps, 10, s1) * 100.0);
}

fn ms(d: Duration) -> f64 {
	d.as_secs_f64() * 1e3
}
