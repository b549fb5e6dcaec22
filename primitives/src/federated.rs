//! Federated jobs: what `pallet-federated` asks the jobs pallet, what the jobs pallet asks it
//! back, and the privacy cost a job charges to each participant.

use sp_runtime::DispatchResult;

use crate::pol::JobId;

/// The jobs pallet as the federated pallet sees it.
pub trait JobInfo<AccountId> {
	/// Who posted `job`, if it exists.
	fn creator(job: JobId) -> Option<AccountId>;
	/// Whether `job` exists and is still open (no worker has claimed it).
	fn is_open(job: JobId) -> bool;
	/// The worker holding `job` (for a federated job: its aggregator), if any.
	fn worker(job: JobId) -> Option<AccountId>;
	/// Whether `job` still exists (not yet settled, refunded or expired).
	fn exists(job: JobId) -> bool;
	/// Whether `job` trains LoRA adapters rather than whole layers.
	fn trains_adapters(job: JobId) -> bool;

	/// Benchmarks: an open job posted by `creator` and one claimed by `worker`.
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_job(creator: &AccountId, worker: Option<&AccountId>) -> JobId;
}

/// Asked by the jobs pallet before a worker commits a result: a federated job's result may only
/// be committed once all its rounds are recorded.
pub trait CommitGate {
	fn may_commit(job: JobId) -> DispatchResult;
	/// Whether `job` is federated: trained from participants' updates, so it has no training
	/// trace to audit.
	fn is_federated(_job: JobId) -> bool {
		false
	}
}

impl CommitGate for () {
	fn may_commit(_: JobId) -> DispatchResult {
		Ok(())
	}
}

/// `ln 10` in units of 10⁻⁹, rounded up.
const LN_10_NANO: u128 = 2_302_585_093;
/// Highest Rényi order tried.
pub const MAX_ORDER: u128 = 512;

/// The ε a federated job spends per participant, in thousandths, rounded up: `rounds` releases of
/// the Gaussian mechanism with noise multiplier `noise_milli / 1000` (every participant in every
/// round), at `δ = 10^-delta_exp`. Rényi DP composed over the rounds and converted with Mironov's
/// bound `ε = min_α rounds·α/(2σ²) + ln(1/δ)/(α − 1)` over integer orders 2..=512: integer
/// arithmetic only, and never below the tighter bound the worker's accountant reports.
/// `None` for a zero noise multiplier (no privacy at all) or a zero `delta_exp`.
pub fn epsilon_milli(rounds: u32, noise_milli: u32, delta_exp: u8) -> Option<u64> {
	if noise_milli == 0 || delta_exp == 0 {
		return None;
	}
	let sigma_sq_micro = (noise_milli as u128) * (noise_milli as u128); // σ² · 10⁶
	let ln_inv_delta_nano = delta_exp as u128 * LN_10_NANO;
	let best_nano = (2..=MAX_ORDER)
		.map(|alpha| {
			// rounds·α/(2σ²) in 10⁻⁹ = rounds·α·10¹⁵ / (2·σ²·10⁶), rounded up.
			let rdp = (rounds as u128 * alpha * 1_000_000_000_000_000).div_ceil(2 * sigma_sq_micro);
			rdp + ln_inv_delta_nano.div_ceil(alpha - 1)
		})
		.min()
		.expect("orders are not empty");
	// Beyond u64 (absurd parameters): as good as infinite, no budget allows it.
	Some(u64::try_from(best_nano.div_ceil(1_000_000)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
	use super::*;

	/// Against the same bound in floating point, and the closed-form optimum over real orders
	/// (`rounds/2σ² + √(2·rounds·ln(1/δ))/σ`) it can only exceed.
	#[test]
	fn epsilon_matches_the_float_bound() {
		for (rounds, noise_milli, delta_exp) in
			[(1u32, 1_000u32, 5u8), (10, 1_100, 5), (50, 2_500, 6), (3, 800, 3), (200, 4_000, 8)]
		{
			let sigma = noise_milli as f64 / 1000.0;
			let ln_inv_delta = delta_exp as f64 * 10f64.ln();
			let float = (2..=512)
				.map(|a| {
					let a = a as f64;
					rounds as f64 * a / (2.0 * sigma * sigma) + ln_inv_delta / (a - 1.0)
				})
				.fold(f64::INFINITY, f64::min);
			let chain = epsilon_milli(rounds, noise_milli, delta_exp).unwrap() as f64 / 1000.0;
			assert!(
				chain >= float && chain - float <= 0.0011,
				"{rounds} {noise_milli}: {chain} vs {float}"
			);
			let real_opt = rounds as f64 / (2.0 * sigma * sigma)
				+ (2.0 * rounds as f64 * ln_inv_delta).sqrt() / sigma;
			assert!(chain >= real_opt);
		}
	}

	#[test]
	fn no_noise_is_no_privacy() {
		assert_eq!(epsilon_milli(1, 0, 5), None);
		assert_eq!(epsilon_milli(1, 1000, 0), None);
		// More rounds or less noise never cost less.
		assert!(epsilon_milli(2, 1000, 5) > epsilon_milli(1, 1000, 5));
		assert!(epsilon_milli(2, 900, 5) > epsilon_milli(2, 1000, 5));
		assert!(epsilon_milli(u32::MAX, 1, 20).unwrap() > 1_000_000_000_000_000_000);
	}
}
