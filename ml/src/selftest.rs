//! The miner self-test: a fixed training, evaluation and inference workload whose result must be
//! the bits committed here ([`GOLDEN`]). Proof-of-Learning compares scores bit for bit and the
//! audit re-runs training bit for bit, so a machine that computes other bits would dissent from
//! honest verifiers and be penalised; `register` runs this first and refuses to bond such a
//! machine. The same workload runs in the tests natively (1 and N threads), under qemu as older
//! x86-64 CPUs (no AVX; AVX without FMA) and as aarch64.
//!
//! When a change to the model or the kernels changes the bits on purpose, every machine changes
//! with it: update [`GOLDEN`] from `blyan-worker self-test` (it prints the digest it computed).

use std::time::{Duration, Instant};

use crate::{
	data, evaluate_layers,
	infer::{Activations, StageError, StageModel},
	init_layers,
	model::ModelConfig,
	portable, train,
	train::Hyperparams,
	train_layers,
	weights::{self, WeightsError},
	CpuBackend, TrainDevice,
};

/// The workload could not run at all (a bug in this build, not a property of the CPU).
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
	#[error("the self-test model: {0}")]
	Weights(#[from] WeightsError),
	#[error("the self-test generation: {0}")]
	Stage(#[from] StageError),
	#[error("the self-test generation returned no logits")]
	NoLogits,
}

/// The digests every machine must compute (hex, 32 bytes each).
pub struct Golden {
	pub training: &'static str,
	pub evaluation_score: u64,
	pub inference: &'static str,
}

pub const GOLDEN: Golden = Golden {
	training: "bad62ba15264c8eac310885be9e1ba2dafb3d34d8273a855a13f3369c0f5c769",
	evaluation_score: 3_150_701_463,
	inference: "7b2b5853f2a9a4c6b061c2414415a5ff41706eb1e4e49d6dabb62560b1acb5fc",
};

const SEED: u64 = 20_261_205;
const TRAIN_STEPS: u32 = 12;
const DECODE_TOKENS: usize = 8;

/// What this machine computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
	/// Weight root (Merkle root of the layer roots) after training.
	pub training: [u8; 32],
	/// The Proof-of-Learning score of the trained model on held-out data.
	pub evaluation_score: u64,
	/// blake2-256 of the bits of every logit of a cached greedy generation.
	pub inference: [u8; 32],
	pub threads: usize,
	pub elapsed: Duration,
}

/// One part of the workload whose bits differ from [`GOLDEN`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
	pub part: &'static str,
	pub got: String,
	pub want: String,
}

impl Report {
	/// The parts that differ from [`GOLDEN`] (empty: this machine computes the network's bits).
	pub fn mismatches(&self) -> Vec<Mismatch> {
		let mut out = Vec::new();
		let mut check = |part, got: String, want: &str| {
			if got != want {
				out.push(Mismatch { part, got, want: want.to_string() });
			}
		};
		check("training", hex(&self.training), GOLDEN.training);
		check("evaluation", self.evaluation_score.to_string(), &expected_score().to_string());
		check("inference", hex(&self.inference), GOLDEN.inference);
		out
	}

	/// One line per part, as `self-test` prints them.
	pub fn lines(&self) -> Vec<String> {
		vec![
			format!("training    weight root {}", hex(&self.training)),
			format!("evaluation  score       {}", self.evaluation_score),
			format!("inference   logits hash {}", hex(&self.inference)),
			format!("threads {}, {:.1} s", self.threads, self.elapsed.as_secs_f64()),
		]
	}
}

/// [`GOLDEN`]'s score, unless `BLYAN_SELF_TEST_EXPECT_SCORE` names another: a test hook that
/// makes this machine fail the self-test (the tests of `register`'s refusal). Setting it only
/// ever hurts the operator who does, like `register --force`.
fn expected_score() -> u64 {
	std::env::var("BLYAN_SELF_TEST_EXPECT_SCORE")
		.ok()
		.and_then(|v| v.parse().ok())
		.unwrap_or(GOLDEN.evaluation_score)
}

pub fn hex(bytes: &[u8]) -> String {
	bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The workload's model: the tiny Qwen3-style model (2 blocks, byte vocabulary).
pub fn config() -> ModelConfig {
	ModelConfig::tiny()
}

fn hyperparams() -> Hyperparams {
	Hyperparams {
		steps: TRAIN_STEPS,
		batch_size: 4,
		seq_len: 48,
		learning_rate: 3e-3,
		weight_decay: 0.01,
		eval_batches: 4,
	}
}

/// Runs the workload on `threads` threads (0: the default, see [`portable::threads`]).
pub fn run(threads: usize) -> Result<Report, SelfTestError> {
	if threads > 0 {
		portable::set_threads(threads);
	}
	let started = Instant::now();
	let config = config();
	let hp = hyperparams();
	let corpus = data::encode(&data::generate_corpus(SEED, 12 * 1024));
	let (train_data, validation) = corpus.split_at(corpus.len() * 3 / 4);

	let root = init_layers(&config, SEED);
	let trained = train_layers(&config, &root, train_data, &hp, SEED, TrainDevice::Cpu, |_, _| {})?;
	let roots: Vec<[u8; 32]> = trained.iter().map(weights::layer_root).collect();
	let training = weights::weight_root(&roots);

	let evaluation_score = evaluate_layers(&config, &trained, validation, &hp)?
		.map(train::score)
		.unwrap_or(train::INVALID_SCORE);

	let stage = StageModel::<CpuBackend>::new(&config, 0, &trained, &Default::default())?;
	let mut cache = stage.new_cache();
	let mut input: Vec<u32> = b"add 12 30 = ".iter().map(|b| *b as u32).collect();
	let mut position = 0;
	let mut logit_bits = Vec::new();
	for _ in 0..DECODE_TOKENS {
		let rows = input.len();
		let out = stage.forward(&mut cache, position, Activations::Tokens(input))?;
		position += rows;
		let Activations::Logits(logits) = out else { return Err(SelfTestError::NoLogits) };
		logit_bits.extend(logits.iter().flat_map(|l| l.to_bits().to_le_bytes()));
		let next = logits
			.iter()
			.enumerate()
			.fold((0, f32::NEG_INFINITY), |best, (i, v)| if *v > best.1 { (i, *v) } else { best })
			.0 as u32;
		input = vec![next];
	}
	Ok(Report {
		training,
		evaluation_score,
		inference: sp_crypto_hashing::blake2_256(&logit_bits),
		threads: portable::threads(),
		elapsed: started.elapsed(),
	})
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn the_workload_gives_the_golden_bits_on_one_and_on_several_threads() {
		for threads in [1, 3] {
			let report = run(threads).unwrap();
			assert_eq!(report.mismatches(), vec![], "on {threads} threads: {:?}", report.lines());
		}
		portable::set_threads(0);
	}

	#[test]
	fn a_changed_bit_is_reported_by_part() {
		let mut report = run(0).unwrap();
		report.training[0] ^= 1;
		report.evaluation_score += 1;
		let parts: Vec<_> = report.mismatches().into_iter().map(|m| m.part).collect();
		assert_eq!(parts, ["training", "evaluation"]);
	}
}
