//! Every Blyan parameter in one place: the value a chain starts with and the range governance
//! may move it in (`pallet-governance` refuses anything outside with `BelowMinimum` /
//! `AboveMaximum`). The values themselves live in the pallet that uses them.
//!
//! | parameter | default | min | max |
//! |---|---|---|---|
//! | min improvement | 1 % | 0.1 % | 50 % |
//! | min job reward | 1 BLY | 0.001 BLY | 1 M BLY |
//! | min worker / verifier bond | 100 BLY | 1 BLY | 10 M BLY |
//! | worker / verifier unbonding | 1 day | 1 min | 90 days |
//! | max lease | 1 day | 1 min | 30 days |
//! | result reveal window | 10 min | 10 blocks | 7 days |
//! | lease slash | 1 % | 0 | 100 % |
//! | committee size | 3 | 1 | 21 (`MAX_COMMITTEE`) |
//! | committee draw delay | 1 block | 1 block | 1 h |
//! | verifier commit / reveal window | 10 / 5 min | 10 blocks | 7 days |
//! | verifier fee | 10 % | 0 | 50 % |
//! | dataset share | 5 % | 0 | 50 % |
//! | miner slash | 20 % | 1 % | 100 % |
//! | verifier penalty | 2 % | 0 | 100 % |
//! | epoch length | 1 h | 10 blocks | 30 days |
//! | epoch budget | 5 000 BLY | 0 | 10 M BLY |
//! | annual inflation | 10 % | 0 | 20 % |
//! | validator share of inflation | 50 % | 0 | 100 % |
//! | free requests a day at trust 0 / 100 | 5 / 500 | 1 / 1 | 10 000 / 10 000 |
//! | proof-of-work difficulty | 20 bits (~1 M hashes) | 8 | 32 |
//! | proof-of-work window | 20 blocks | 1 block | 1 h |
//! | free requests per block | 100 | 1 | 1 000 |
//! | inference check rate | 5 % | 0 | 100 % |
//! | inference challenge bond | 10 BLY | 0.001 BLY | 1 M BLY |
//! | inference arbiters | 3 | 1 | 16 (`MAX_INFERENCE_ARBITERS`; and arbiters × fee ≤ half the challenge bond: 5 at the default fee and bond) |
//! | inference arbitration window | 10 min | 30 blocks | 2 400 blocks (40 min) |
//! | server fraud slash | 100 % | 1 % | 100 % |
//! | challenger share of a server slash | 50 % | 0 | 100 % |
//! | inference arbiter fee | 1 BLY | 0 | 1 000 BLY (and arbiters × fee ≤ half the challenge bond) |
//! | referendum prepare / decision / confirm / enactment | 1 h / 7 d / 1 d / 1 d | 1 / 10 / 1 / 1 blocks | 30 / 90 / 30 / 30 days |
//!
//! The `dev` preset shortens the referendum periods (see `genesis_config_presets`).

use crate::{currency::*, time::*, Balance, BlockNumber};
use frame_support::parameter_types;
use pallet_free_tier::FreeTierParams;
use pallet_governance::{
	EconomicsParams, ParameterBounds, ParameterKind, ParameterValue, ReferendumTimings,
};
use pallet_inference::{InferenceParams, MAX_INFERENCE_ARBITERS};
use pallet_jobs::JobParams;
use pallet_pol_rewards::{PolParams, MAX_COMMITTEE};
use pallet_training_audit::{AuditParams, MAX_ARBITERS, MAX_SPOT_CHECKS};
use sp_runtime::Perbill;

parameter_types! {
	pub JobDefaults: JobParams<Balance, BlockNumber> = JobParams {
		min_improvement: Perbill::from_percent(1),
		min_reward: BLY,
		min_worker_bond: 100 * BLY,
		unbonding_period: DAYS,
		max_lease: DAYS,
		reveal_window: 10 * MINUTES,
		lease_slash: Perbill::from_percent(1),
	};

	pub PolDefaults: PolParams<Balance, BlockNumber> = PolParams {
		committee_size: 3,
		draw_delay: 1,
		// Verifiers evaluate both versions in the commit window.
		commit_window: 10 * MINUTES,
		reveal_window: 5 * MINUTES,
		verifier_fee: Perbill::from_percent(10),
		dataset_share: Perbill::from_percent(5),
		miner_slash: Perbill::from_percent(20),
		verifier_penalty: Perbill::from_percent(2),
		min_verifier_bond: 100 * BLY,
		unbonding_period: DAYS,
		epoch_length: HOURS,
		// About the mining pool's share of inflation per hour (50 M BLY a year / 8 760 h).
		epoch_budget: 5_000 * BLY,
	};

	pub AuditDefaults: AuditParams<Balance, BlockNumber> = AuditParams {
		checkpoint_interval: 10,
		// 44 spot checks catch a miner faking a tenth of its segments with 99 % probability
		// (docs/benchmarks.md); a trace with fewer segments is checked whole.
		spot_checks: 44,
		draw_delay: 1,
		challenge_window: 30 * MINUTES,
		move_window: 5 * MINUTES,
		arbiters: 3,
		challenge_bond: 10 * BLY,
		fraud_slash: Perbill::from_percent(50),
	};

	pub InferenceDefaults: InferenceParams<Balance, BlockNumber> = InferenceParams {
		// 5 % of requests re-executed: ≤ 10 % extra compute, and a server lying on 1 hop in 100
		// is caught within ~60 sampled hops on average (docs/benchmarks.md).
		check_rate: Perbill::from_percent(5),
		challenge_bond: 10 * BLY,
		arbiters: 3,
		// Arbiters fetch the session's record and the span's layers, and re-execute it.
		arbitration_window: 10 * MINUTES,
		// A server proven to lie loses its whole bond (at least half of it net, should its own
		// second account challenge first and take the challenger's share).
		fraud_slash: Perbill::from_percent(100),
		challenger_share: Perbill::from_percent(50),
		// Three arbiters' fees (3 BLY) fit in the 5 BLY a refuted challenge would burn.
		arbiter_fee: BLY,
	};

	pub FreeTierDefaults: FreeTierParams<BlockNumber> = FreeTierParams {
		min_daily_quota: 5,
		max_daily_quota: 500,
		// ~1 M blake2 hashes a request: a fraction of a second for a person, a real cost for
		// a bot (docs/benchmarks.md).
		pow_difficulty: 20,
		pow_window: 20,
		// A free request weighs ~1/1000 of a block: free traffic stays under a tenth of one.
		max_free_per_block: 100,
	};

	pub EconomicsDefaults: EconomicsParams = EconomicsParams {
		annual_inflation: Perbill::from_percent(10),
		// The chain's rewards are for useful learning: half of inflation goes to the mining pool.
		validator_share: Perbill::from_percent(50),
	};

	pub TimingDefaults: ReferendumTimings<BlockNumber> = ReferendumTimings {
		prepare_period: HOURS,
		decision_period: 7 * DAYS,
		confirm_period: DAYS,
		min_enactment_period: DAYS,
	};
}

/// Referendum periods of the `dev` preset: a proposal passes in about 15 blocks.
pub const DEV_TIMINGS: ReferendumTimings<BlockNumber> = ReferendumTimings {
	prepare_period: 1,
	decision_period: 20,
	confirm_period: 2,
	min_enactment_period: 1,
};

/// Audit windows of the `dev` preset: a checked job goes on to scoring about 30 blocks after
/// its reveal.
pub fn dev_audit_params() -> AuditParams<Balance, BlockNumber> {
	AuditParams { challenge_window: 30, move_window: 15, ..AuditDefaults::get() }
}

/// The ranges of the table above.
pub struct BlyanBounds;
impl ParameterBounds<Balance, BlockNumber> for BlyanBounds {
	fn bounds(
		kind: ParameterKind,
	) -> Option<(ParameterValue<Balance, BlockNumber>, ParameterValue<Balance, BlockNumber>)> {
		use ParameterKind::*;
		use ParameterValue::{Amount, Blocks, Count, Share};
		let percent =
			|min, max| (Share(Perbill::from_percent(min)), Share(Perbill::from_percent(max)));
		let amount = |min, max| (Amount(min), Amount(max));
		let blocks = |min, max| (Blocks(min), Blocks(max));
		Some(match kind {
			MinImprovement => {
				(Share(Perbill::from_perthousand(1)), Share(Perbill::from_percent(50)))
			}
			MinJobReward => amount(MILLI_BLY, 1_000_000 * BLY),
			MinWorkerBond | MinVerifierBond => amount(BLY, 10_000_000 * BLY),
			WorkerUnbondingPeriod | VerifierUnbondingPeriod => blocks(MINUTES, 90 * DAYS),
			MaxLease => blocks(MINUTES, 30 * DAYS),
			ResultRevealWindow | VerifierCommitWindow | VerifierRevealWindow => {
				blocks(10, 7 * DAYS)
			}
			LeaseSlash | VerifierPenalty => percent(0, 100),
			CommitteeSize => (Count(1), Count(MAX_COMMITTEE)),
			CommitteeDrawDelay => blocks(1, HOURS),
			VerifierFee | DatasetShare => percent(0, 50),
			MinerSlash => percent(1, 100),
			EpochLength => blocks(10, 30 * DAYS),
			EpochBudget => amount(0, 10_000_000 * BLY),
			CheckpointInterval => (Count(1), Count(10_000)),
			SpotChecks => (Count(1), Count(MAX_SPOT_CHECKS)),
			Arbiters => (Count(1), Count(MAX_ARBITERS)),
			AuditDrawDelay => blocks(1, HOURS),
			ChallengeWindow | DisputeMoveWindow => blocks(10, 7 * DAYS),
			ChallengeBond => amount(MILLI_BLY, 1_000_000 * BLY),
			FraudSlash => percent(1, 100),
			MinDailyQuota | MaxDailyQuota => (Count(1), Count(10_000)),
			PowDifficulty => (Count(8), Count(32)),
			PowWindow => blocks(1, HOURS),
			MaxFreePerBlock => (Count(1), Count(1_000)),
			AnnualInflation => percent(0, 20),
			ValidatorRewardShare => percent(0, 100),
			PreparePeriod | ConfirmPeriod | MinEnactmentPeriod => blocks(1, 30 * DAYS),
			DecisionPeriod => blocks(10, 90 * DAYS),
			InferenceCheckRate | InferenceChallengerShare => percent(0, 100),
			InferenceChallengeBond => amount(MILLI_BLY, 1_000_000 * BLY),
			InferenceArbiters => (Count(1), Count(MAX_INFERENCE_ARBITERS)),
			// Room for the draw and the arbiters' 20-block margin; at most 40 minutes, so a
			// challenge does not hold a server's unbonding bond for long.
			InferenceArbitrationWindow => blocks(30, 2_400),
			ServerFraudSlash => percent(1, 100),
			// Also checked by the pallet: the arbiters' fees fit in half the challenge bond.
			InferenceArbiterFee => amount(0, 1_000 * BLY),
		})
	}
}
