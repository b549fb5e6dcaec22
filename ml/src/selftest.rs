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
	infer::{Activations, Sampler, StageError, StageModel},
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
	pub kernels: &'static str,
	pub training: &'static str,
	pub evaluation_score: u64,
	pub inference: &'static str,
}

pub const GOLDEN: Golden = Golden {
	kernels: "c3b2f46bc1d4ec24c5e6abe3d055333cc7200abf3619c9b65903ac564822a086",
	training: "0804cc779c5942c4420cddd685add11445d06bdacd689387d2edc72edbf9745b",
	evaluation_score: 3_150_701_344,
	inference: "c0d8764859400befd1bab95e3f833f6be3db1b9cb775bb0f2116da2b956a2e6f",
};

const SEED: u64 = 20_261_205;
const TRAIN_STEPS: u32 = 12;
const DECODE_TOKENS: usize = 8;

/// What this machine computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
	/// blake2-256 of matrix products whose shapes take every path of the kernel (blocks along
	/// `k` and `n`, row and column splits across threads, the one-row path), which the small
	/// model alone would not.
	pub kernels: [u8; 32],
	/// Weight root (Merkle root of the layer roots) after training.
	pub training: [u8; 32],
	/// The Proof-of-Learning score of the trained model on held-out data.
	pub evaluation_score: u64,
	/// blake2-256 of the bits of every logit of a cached greedy generation.
	pub inference: [u8; 32],
	pub threads: usize,
	/// The vector instructions the kernels ran (every level must give the same bits).
	pub isa: portable::gemm::Isa,
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
		check("kernels", hex::encode(self.kernels), GOLDEN.kernels);
		check("training", hex::encode(self.training), GOLDEN.training);
		check("evaluation", self.evaluation_score.to_string(), &expected_score().to_string());
		check("inference", hex::encode(self.inference), GOLDEN.inference);
		out
	}

	/// One line per part, as `self-test` prints them.
	pub fn lines(&self) -> Vec<String> {
		vec![
			format!("kernels     products    {}", hex::encode(self.kernels)),
			format!("training    weight root {}", hex::encode(self.training)),
			format!("evaluation  score       {}", self.evaluation_score),
			format!("inference   logits hash {}", hex::encode(self.inference)),
			format!(
				"threads {}, kernels {:?}, {:.1} s",
				self.threads,
				self.isa,
				self.elapsed.as_secs_f64()
			),
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
		schedule: Default::default(),
	}
}

/// Runs the workload on `threads` threads (0: the default, see [`portable::threads`]).
pub fn run(threads: usize) -> Result<Report, SelfTestError> {
	if threads > 0 {
		portable::set_threads(threads);
	}
	let started = Instant::now();
	let kernels = kernel_products();
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
	// Temperature 0: the argmax, as the servers decode greedily.
	let mut greedy = Sampler::new(0.0, SEED);
	for _ in 0..DECODE_TOKENS {
		let rows = input.len();
		let out = stage.forward(&mut cache, position, Activations::Tokens(input))?;
		position += rows;
		let Activations::Logits(logits) = out else { return Err(SelfTestError::NoLogits) };
		logit_bits.extend(logits.iter().flat_map(|l| l.to_bits().to_le_bytes()));
		let next = greedy.next(&logits);
		input = vec![next];
	}
	Ok(Report {
		kernels,
		training,
		evaluation_score,
		inference: sp_crypto_hashing::blake2_256(&logit_bits),
		threads: portable::threads(),
		isa: portable::gemm::isa(),
		elapsed: started.elapsed(),
	})
}

/// Products of `m × 300 × 2100` matrices (`k` over one block, `n` over one column block) for
/// `m` = 70 (split by rows across threads), 8 (split by columns) and 3 (the one-row path), with
/// values of wide exponents so any change of rounding shows.
fn kernel_products() -> [u8; 32] {
	use rand::{Rng, SeedableRng};
	let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(SEED);
	let (k, n) = (300, 2100);
	let mut random = |len: usize| -> Vec<f32> {
		(0..len)
			.map(|_| {
				rng.random_range(-1.0f32..1.0) * f32::from_bits(rng.random_range(119u32..135) << 23)
			})
			.collect()
	};
	let b = random(k * n);
	let mut bits = Vec::new();
	for m in [70, 8, 3] {
		let a = random(m * k);
		let mut c = vec![0.0f32; m * n];
		portable::gemm::matmul(&a, &b, &mut c, m, k, n);
		bits.extend(c.iter().flat_map(|v| v.to_bits().to_le_bytes()));
	}
	// A server keeps a checkpoint's weights laid out in strips, bf16 ones as bf16: those paths must
	// give the bits of the f32 product on this CPU too. The golden bits hash f32 products only,
	// so a difference is reported as a kernel mismatch.
	let b16: Vec<u16> = b.iter().map(|v| (v.to_bits() >> 16) as u16).collect();
	let widened: Vec<f32> = b16.iter().map(|v| portable::gemm::Widen::widen(*v)).collect();
	let strips = portable::gemm::Strips::from_fn(k, n, |p, j| b16[p * n + j]);
	let strips_f32 = portable::gemm::Strips::from_fn(k, n, |p, j| widened[p * n + j]);
	for m in [70, 6, 3, 1] {
		let a = random(m * k);
		let mut from_f32 = vec![0.0f32; m * n];
		portable::gemm::matmul(&a, &widened, &mut from_f32, m, k, n);
		let same = |c: &[f32]| c.iter().zip(&from_f32).all(|(x, y)| x.to_bits() == y.to_bits());
		let mut from_bf16 = vec![0.0f32; m * n];
		portable::gemm::batched_matmul(&mut from_bf16, 1, m, k, n, |_| {
			(portable::gemm::Mat::row_major(&a, k), portable::gemm::Mat::row_major(&b16, n))
		});
		if !same(&from_bf16) {
			bits.extend_from_slice(b"the bf16 product differs");
		}
		let mut from_strips = vec![0.0f32; m * n];
		portable::gemm::batched_matmul(&mut from_strips, 1, m, k, n, |_| {
			(portable::gemm::Mat::row_major(&a, k), strips.mat())
		});
		if !same(&from_strips) {
			bits.extend_from_slice(b"the bf16 product in strips differs");
		}
		portable::gemm::batched_matmul(&mut from_strips, 1, m, k, n, |_| {
			(portable::gemm::Mat::row_major(&a, k), strips_f32.mat())
		});
		if !same(&from_strips) {
			bits.extend_from_slice(b"the f32 product in strips differs");
		}
	}
	sp_crypto_hashing::blake2_256(&bits)
}

#[cfg(test)]
mod tests {
	use super::*;

	/// Thread counts are process-wide and other tests here change them: separate processes run
	/// the self-test on 1, 2 and 3 threads (worker/tests/cli.rs, scripts/test-cpus).
	#[test]
	fn the_workload_gives_the_golden_bits() {
		let report = run(0).unwrap();
		assert_eq!(report.mismatches(), vec![], "{:?}", report.lines());
	}

	#[test]
	fn a_changed_bit_is_reported_by_part() {
		let mut report = run(0).unwrap();
		report.kernels[3] ^= 1;
		report.evaluation_score += 1;
		let parts: Vec<_> = report.mismatches().into_iter().map(|m| m.part).collect();
		assert_eq!(parts, ["kernels", "evaluation"]);
	}
}
