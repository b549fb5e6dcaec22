//! A training job's hyper-parameters, as typed SCALE fields.
//!
//! The chain relies on them (an audited trace must have exactly `steps` steps) and every miner,
//! verifier and checker trains or evaluates with them, so there is one source of truth that all
//! of them decode the same way. They used to be JSON that the runtime searched for `"steps"`, so
//! a creator could post `{"o":{"steps":5},"steps":60}` and fail an honest trace (issue #18,
//! item 11).

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
pub use sp_runtime::Perbill;

/// What a training job asks of its miner. Rates are [`Perbill`]s (steps of 10⁻⁹), read as
/// `parts / 10⁹` in f64 by every worker, so the same bits reach the optimiser everywhere.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct TrainingParams {
	/// AdamW steps: the length of the job's training trace.
	pub steps: u32,
	/// Sequences per step (and per evaluation batch).
	pub batch_size: u32,
	/// Tokens per sequence (each sample is `seq_len + 1` tokens: inputs and next-token targets).
	pub seq_len: u32,
	/// AdamW learning rate, in (0, 1).
	pub learning_rate: Perbill,
	/// AdamW decoupled weight decay, in [0, 1].
	pub weight_decay: Perbill,
	/// Evaluation reads at most this many batches of the validation set.
	pub eval_batches: u32,
	/// Warm-up, decay, clipping and accumulation of each step.
	pub schedule: StepScheduleParams,
	/// Train low-rank adapters over the frozen base instead of every weight; the result is an
	/// adapter version ([`crate::pol::CandidateVersion::adapter`]).
	pub lora: Option<LoraParams>,
}

/// What shapes each step beyond AdamW at the job's rate, as Hugging Face's `Trainer` does it.
/// [`Self::NONE`] is a constant rate, the gradients as computed and one batch per step.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct StepScheduleParams {
	/// Steps over which the rate rises linearly to the job's rate (at most `steps`).
	pub warmup_steps: u32,
	/// After the warm-up the rate falls along a half cosine to `rate × ratio` at the last
	/// step; `None`: it stays constant.
	pub cosine_min_ratio: Option<Perbill>,
	/// Clip the gradients' global L2 norm to this many thousandths; `None`: no clip.
	pub max_grad_norm_millis: Option<u32>,
	/// Batches of `batch_size` whose gradients each step averages, in `1..=MAX_MICRO_BATCHES`.
	pub micro_batches: u32,
}

impl StepScheduleParams {
	/// None of them: what every job ran before schedules existed.
	pub const NONE: Self = Self {
		warmup_steps: 0,
		cosine_min_ratio: None,
		max_grad_norm_millis: None,
		micro_batches: 1,
	};
	pub const MAX_MICRO_BATCHES: u32 = 256;
}

/// Low-rank adapters (LoRA) a job trains on a frozen base, as `peft` defines them with dropout
/// 0: for each targeted projection `W`, `W·x + scale·B·A·x` with `A` `[rank, in]`, `B`
/// `[out, rank]` and `scale = alpha / rank` (`alpha / √rank` with `rslora`).
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct LoraParams {
	/// In `1..=MAX_RANK`.
	pub rank: u32,
	/// Positive.
	pub alpha: u32,
	/// The adapted projections: bit `i` is the `i`-th of q, k, v, o, gate, up, down
	/// ([`Self::TARGET_NAMES`]); at least one, no other bit.
	pub targets: u8,
	/// rsLoRA's scale `alpha / √rank`.
	pub rslora: bool,
}

impl LoraParams {
	pub const MAX_RANK: u32 = 1024;
	/// The projections bits `0..7` of [`Self::targets`] name, as `peft`'s `target_modules`.
	pub const TARGET_NAMES: [&'static str; 7] =
		["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
	/// Every projection.
	pub const ALL_TARGETS: u8 = 0x7f;

	/// A rank in bounds, a positive alpha, one or more of the seven projections.
	pub fn check(&self) -> Result<(), TrainingParamsError> {
		if !(1..=Self::MAX_RANK).contains(&self.rank) {
			return Err(TrainingParamsError::LoraRank);
		}
		if self.alpha == 0 {
			return Err(TrainingParamsError::LoraAlpha);
		}
		if self.targets == 0 || self.targets & !Self::ALL_TARGETS != 0 {
			return Err(TrainingParamsError::LoraTargets);
		}
		Ok(())
	}
}

/// Why [`TrainingParams`] cannot describe a job any worker could run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrainingParamsError {
	/// `steps` outside `1..=MAX_STEPS`.
	Steps,
	/// `batch_size` outside `1..=MAX_BATCH_SIZE`.
	BatchSize,
	/// `seq_len` outside `2..=MAX_SEQ_LEN`.
	SeqLen,
	/// `learning_rate` zero or one.
	LearningRate,
	/// `eval_batches` outside `1..=MAX_EVAL_BATCHES`.
	EvalBatches,
	/// `schedule.warmup_steps` above `steps`.
	WarmupSteps,
	/// `schedule.max_grad_norm_millis` zero.
	MaxGradNorm,
	/// `schedule.micro_batches` outside `1..=MAX_MICRO_BATCHES`.
	MicroBatches,
	/// `lora.rank` outside `1..=MAX_RANK`.
	LoraRank,
	/// `lora.alpha` zero.
	LoraAlpha,
	/// `lora.targets` empty or with a bit above the seven projections.
	LoraTargets,
}

impl TrainingParamsError {
	/// A sentence for people (CLI messages, logs).
	pub fn message(self) -> &'static str {
		match self {
			Self::Steps => "steps must be in 1..=1000000",
			Self::BatchSize => "batch_size must be in 1..=4096",
			Self::SeqLen => "seq_len must be in 2..=8192",
			Self::LearningRate => "learning_rate must be in (0, 1)",
			Self::EvalBatches => "eval_batches must be in 1..=65536",
			Self::WarmupSteps => "warmup_steps must not exceed steps",
			Self::MaxGradNorm => "max_grad_norm must be positive",
			Self::MicroBatches => "micro_batches must be in 1..=256",
			Self::LoraRank => "the LoRA rank must be in 1..=1024",
			Self::LoraAlpha => "the LoRA alpha must be positive",
			Self::LoraTargets =>
				"LoRA targets must be one or more of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj",
		}
	}
}

impl core::fmt::Display for TrainingParamsError {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		write!(f, "hyper-parameters: {}", self.message())
	}
}

impl TrainingParams {
	/// What `blyan-worker job-post` asks for unless told otherwise.
	pub const DEFAULT: Self = Self {
		steps: 60,
		batch_size: 8,
		seq_len: 64,
		learning_rate: Perbill::from_parts(3_000_000),
		weight_decay: Perbill::from_parts(0),
		eval_batches: 16,
		schedule: StepScheduleParams::NONE,
		lora: None,
	};
	pub const MAX_STEPS: u32 = 1_000_000;
	pub const MAX_BATCH_SIZE: u32 = 4096;
	pub const MAX_SEQ_LEN: u32 = 8192;
	pub const MAX_EVAL_BATCHES: u32 = 65_536;

	/// Checks the bounds every job must meet whatever its model; what depends on the model
	/// (positions, data length) is the worker's to check before it claims.
	pub fn check(&self) -> Result<(), TrainingParamsError> {
		if self.steps == 0 || self.steps > Self::MAX_STEPS {
			return Err(TrainingParamsError::Steps);
		}
		if self.batch_size == 0 || self.batch_size > Self::MAX_BATCH_SIZE {
			return Err(TrainingParamsError::BatchSize);
		}
		if self.seq_len < 2 || self.seq_len > Self::MAX_SEQ_LEN {
			return Err(TrainingParamsError::SeqLen);
		}
		if self.learning_rate.is_zero() || self.learning_rate == Perbill::one() {
			return Err(TrainingParamsError::LearningRate);
		}
		if self.eval_batches == 0 || self.eval_batches > Self::MAX_EVAL_BATCHES {
			return Err(TrainingParamsError::EvalBatches);
		}
		let schedule = &self.schedule;
		if schedule.warmup_steps > self.steps {
			return Err(TrainingParamsError::WarmupSteps);
		}
		if schedule.max_grad_norm_millis == Some(0) {
			return Err(TrainingParamsError::MaxGradNorm);
		}
		if !(1..=StepScheduleParams::MAX_MICRO_BATCHES).contains(&schedule.micro_batches) {
			return Err(TrainingParamsError::MicroBatches);
		}
		self.lora.as_ref().map_or(Ok(()), LoraParams::check)
	}

	/// The learning rate as the optimiser takes it.
	pub fn learning_rate_f64(&self) -> f64 {
		f64::from(self.learning_rate.deconstruct()) / 1e9
	}

	/// The weight decay as the optimiser takes it.
	pub fn weight_decay_f32(&self) -> f32 {
		(f64::from(self.weight_decay.deconstruct()) / 1e9) as f32
	}

	/// Reads the flat JSON object jobs carried before these fields were typed (`{"steps":60,
	/// "batch_size":8,"seq_len":64,"learning_rate":0.003,"weight_decay":0.0,"eval_batches":16}`,
	/// the last two optional), as the worker wrote it. `None` for anything else: a nested value,
	/// an unknown or repeated key, a missing field, a rate not a whole number of 10⁻⁹ steps, or
	/// parameters that fail [`Self::check`]. Only the storage migration uses it.
	pub fn from_legacy_json(json: &[u8]) -> Option<Self> {
		let mut fields: [Option<u64>; 6] = [None; 6];
		const KEYS: [&[u8]; 6] = [
			b"steps",
			b"batch_size",
			b"seq_len",
			b"learning_rate",
			b"weight_decay",
			b"eval_batches",
		];
		let mut rest = skip_ws(json).strip_prefix(b"{")?;
		rest = skip_ws(rest);
		if let Some(after) = rest.strip_prefix(b"}") {
			rest = after;
		} else {
			loop {
				let after_quote = rest.strip_prefix(b"\"")?;
				let end = after_quote.iter().position(|c| *c == b'"')?;
				let key = &after_quote[..end];
				rest = skip_ws(&after_quote[end + 1..]).strip_prefix(b":")?;
				rest = skip_ws(rest);
				let len = rest
					.iter()
					.position(|c| !(c.is_ascii_digit() || b".eE+-".contains(c)))
					.unwrap_or(rest.len());
				let (number, after) = rest.split_at(len);
				let index = KEYS.iter().position(|k| *k == key)?;
				// Rates are held in billionths; counts are whole numbers.
				let scale = if matches!(index, 3 | 4) { 9 } else { 0 };
				let value = decimal_scaled(number, scale)?;
				if fields[index].replace(value).is_some() {
					return None; // a repeated key: which one a reader takes is ambiguous
				}
				rest = skip_ws(after);
				if let Some(after) = rest.strip_prefix(b",") {
					rest = skip_ws(after);
				} else {
					rest = rest.strip_prefix(b"}")?;
					break;
				}
			}
		}
		if !skip_ws(rest).is_empty() {
			return None;
		}
		let count = |i: usize| fields[i].and_then(|v| u32::try_from(v).ok());
		let rate = |v: u64| u32::try_from(v).ok().filter(|p| *p <= 1_000_000_000);
		let params = Self {
			steps: count(0)?,
			batch_size: count(1)?,
			seq_len: count(2)?,
			learning_rate: Perbill::from_parts(rate(fields[3]?)?),
			weight_decay: Perbill::from_parts(rate(fields[4].unwrap_or(0))?),
			eval_batches: match fields[5] {
				None => 16,
				Some(v) => u32::try_from(v).ok()?,
			},
			schedule: StepScheduleParams::NONE,
			lora: None,
		};
		params.check().ok()?;
		Some(params)
	}
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
	let start = bytes.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(bytes.len());
	&bytes[start..]
}

/// `number × 10^scale` for a non-negative JSON number (`12`, `0.003`, `3e-3`, `1.5E+2`), if it
/// is a whole number below 2⁶⁴; `None` otherwise.
fn decimal_scaled(number: &[u8], scale: i32) -> Option<u64> {
	let (mantissa, exponent) = match number.iter().position(|c| *c == b'e' || *c == b'E') {
		Some(at) => (&number[..at], Some(&number[at + 1..])),
		None => (number, None),
	};
	let exponent: i32 = if let Some(exponent) = exponent {
		let (negative, digits) = match exponent {
			[b'-', rest @ ..] => (true, rest),
			[b'+', rest @ ..] => (false, rest),
			rest => (false, rest),
		};
		if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
			return None;
		}
		let value = digits.iter().fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
		if negative {
			-value
		} else {
			value
		}
	} else {
		0
	};
	let (whole, fraction) = match mantissa.iter().position(|c| *c == b'.') {
		Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
		None => (mantissa, &b""[..]),
	};
	if whole.is_empty()
		|| (mantissa.contains(&b'.') && fraction.is_empty())
		|| !whole.iter().chain(fraction).all(u8::is_ascii_digit)
	{
		return None;
	}
	let mut digits: u128 = 0;
	for d in whole.iter().chain(fraction) {
		digits = digits.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
	}
	// value = digits × 10^(exponent − fraction digits); scaled by 10^scale.
	let shift = exponent.checked_add(scale)?.checked_sub(i32::try_from(fraction.len()).ok()?)?;
	let scaled = if shift >= 0 {
		digits.checked_mul(10u128.checked_pow(u32::try_from(shift).ok()?)?)?
	} else {
		let divisor = 10u128.checked_pow(u32::try_from(-shift).ok()?)?;
		if !digits.is_multiple_of(divisor) {
			return None; // finer than the unit it is held in
		}
		digits / divisor
	};
	u64::try_from(scaled).ok()
}

#[cfg(test)]
mod tests {
	use super::*;

	fn params() -> TrainingParams {
		TrainingParams::DEFAULT
	}

	#[test]
	fn the_bounds_refuse_jobs_nobody_could_run() {
		assert_eq!(params().check(), Ok(()));
		let refused = |f: fn(&mut TrainingParams), e| {
			let mut p = params();
			f(&mut p);
			assert_eq!(p.check(), Err(e));
		};
		refused(|p| p.steps = 0, TrainingParamsError::Steps);
		refused(|p| p.steps = 1_000_001, TrainingParamsError::Steps);
		refused(|p| p.batch_size = 0, TrainingParamsError::BatchSize);
		refused(|p| p.seq_len = 1, TrainingParamsError::SeqLen);
		refused(|p| p.seq_len = 8193, TrainingParamsError::SeqLen);
		refused(|p| p.learning_rate = Perbill::zero(), TrainingParamsError::LearningRate);
		refused(|p| p.learning_rate = Perbill::one(), TrainingParamsError::LearningRate);
		refused(|p| p.eval_batches = 0, TrainingParamsError::EvalBatches);
		refused(|p| p.schedule.warmup_steps = p.steps + 1, TrainingParamsError::WarmupSteps);
		refused(|p| p.schedule.max_grad_norm_millis = Some(0), TrainingParamsError::MaxGradNorm);
		refused(|p| p.schedule.micro_batches = 0, TrainingParamsError::MicroBatches);
		refused(|p| p.schedule.micro_batches = 257, TrainingParamsError::MicroBatches);
		let lora =
			LoraParams { rank: 8, alpha: 16, targets: LoraParams::ALL_TARGETS, rslora: false };
		let p = TrainingParams { lora: Some(lora), ..params() };
		assert_eq!(p.check(), Ok(()));
		refused(
			|p| p.lora = Some(LoraParams { rank: 0, alpha: 1, targets: 1, rslora: false }),
			TrainingParamsError::LoraRank,
		);
		refused(
			|p| p.lora = Some(LoraParams { rank: 1025, alpha: 1, targets: 1, rslora: false }),
			TrainingParamsError::LoraRank,
		);
		refused(
			|p| p.lora = Some(LoraParams { rank: 4, alpha: 0, targets: 1, rslora: false }),
			TrainingParamsError::LoraAlpha,
		);
		refused(
			|p| p.lora = Some(LoraParams { rank: 4, alpha: 8, targets: 0, rslora: false }),
			TrainingParamsError::LoraTargets,
		);
		refused(
			|p| p.lora = Some(LoraParams { rank: 4, alpha: 8, targets: 0x80, rslora: false }),
			TrainingParamsError::LoraTargets,
		);
	}

	#[test]
	fn rates_reach_the_optimiser_as_their_decimal_would() {
		let p = params();
		assert_eq!(p.learning_rate_f64().to_bits(), 0.003f64.to_bits());
		let p = TrainingParams { weight_decay: Perbill::from_parts(10_000_000), ..p };
		assert_eq!(p.weight_decay_f32().to_bits(), 0.01f32.to_bits());
	}

	#[test]
	fn legacy_json_as_the_worker_wrote_it_translates() {
		let json = br#"{"steps":60,"batch_size":8,"seq_len":64,"learning_rate":0.003,"weight_decay":0.0,"eval_batches":16}"#;
		assert_eq!(TrainingParams::from_legacy_json(json), Some(params()));
		let json = br#" { "batch_size" : 8, "steps":60, "seq_len":64, "learning_rate":3e-3 } "#;
		assert_eq!(TrainingParams::from_legacy_json(json), Some(params()));
		let json = br#"{"steps":60,"batch_size":8,"seq_len":64,"learning_rate":0.01,"weight_decay":1E-2,"eval_batches":4}"#;
		let p = TrainingParams::from_legacy_json(json).unwrap();
		assert_eq!(
			(p.learning_rate.deconstruct(), p.weight_decay.deconstruct()),
			(10_000_000, 10_000_000)
		);
		assert_eq!(p.eval_batches, 4);
	}

	#[test]
	fn legacy_json_that_two_readers_could_read_differently_does_not_translate() {
		for json in [
			&br#"{"o":{"steps":5},"steps":60,"batch_size":8,"seq_len":64,"learning_rate":0.003}"#[..],
			br#"{"steps":5,"steps":60,"batch_size":8,"seq_len":64,"learning_rate":0.003}"#,
			br#"{"steps":"60","batch_size":8,"seq_len":64,"learning_rate":0.003}"#,
			br#"{"steps":60,"batch_size":8,"seq_len":64}"#,
			br#"{"steps":60,"batch_size":8,"seq_len":64,"learning_rate":0.0000000001}"#,
			br#"{"steps":60.5,"batch_size":8,"seq_len":64,"learning_rate":0.003}"#,
			br#"{"steps":60,"batch_size":8,"seq_len":64,"learning_rate":3e}"#,
			br#"{"steps":60,"batch_size":8,"seq_len":64,"learning_rate":.003}"#,
			br#"{"steps":0,"batch_size":8,"seq_len":64,"learning_rate":0.003}"#,
			br#"{"lr":0.01}"#,
			br#"{"steps":60,"batch_size":8,"seq_len":64,"learning_rate":0.003} x"#,
			br#"{"steps":60,"batch_size":8,"seq_len":64,"learning_rate":0.003,}"#,
			b"",
			b"{}",
		] {
			assert_eq!(
				TrainingParams::from_legacy_json(json),
				None,
				"{}",
				String::from_utf8_lossy(json)
			);
		}
	}
}
