//! A runtime with governance alone; the protocol pallets are stand-ins that keep their
//! parameters in memory and check one rule of their own.
use crate as pallet_governance;
use crate::*;
use blyan_primitives::testing::CheckedExternalities;
use core::cell::RefCell;
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU64, EitherOfDiverse},
};
use frame_system::EnsureRoot;
use sp_runtime::{BuildStorage, DispatchError, DispatchResult};

type Block = frame_system::mocking::MockBlock<Test>;
pub type Balance = u128;
pub type BlockNumber = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Governance: pallet_governance,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

pub fn job_defaults() -> JobParams<Balance, BlockNumber> {
	JobParams {
		min_improvement: Perbill::from_percent(1),
		min_reward: 10,
		min_worker_bond: 100,
		unbonding_period: 50,
		max_lease: 100,
		reveal_window: 20,
		lease_slash: Perbill::from_percent(1),
	}
}

pub fn pol_defaults() -> PolParams<Balance, BlockNumber> {
	PolParams {
		committee_size: 3,
		draw_delay: 1,
		commit_window: 10,
		reveal_window: 10,
		verifier_fee: Perbill::from_percent(10),
		dataset_share: Perbill::from_percent(5),
		miner_slash: Perbill::from_percent(20),
		verifier_penalty: Perbill::from_percent(2),
		min_verifier_bond: 100,
		unbonding_period: 50,
		epoch_length: 100,
		epoch_budget: 1_000,
	}
}

pub fn free_tier_defaults() -> FreeTierParams<BlockNumber> {
	FreeTierParams {
		min_daily_quota: 5,
		max_daily_quota: 500,
		pow_difficulty: 20,
		pow_window: 20,
		max_free_per_block: 100,
	}
}

thread_local! {
	static FREE: RefCell<FreeTierParams<BlockNumber>> = RefCell::new(free_tier_defaults());
	static JOBS: RefCell<JobParams<Balance, BlockNumber>> = RefCell::new(job_defaults());
	static POL: RefCell<PolParams<Balance, BlockNumber>> = RefCell::new(pol_defaults());
	static AUDIT: RefCell<AuditParams<Balance, BlockNumber>> = const { RefCell::new(AuditParams {
		checkpoint_interval: 10,
		spot_checks: 8,
		draw_delay: 1,
		challenge_window: 20,
		move_window: 10,
		arbiters: 3,
		challenge_bond: 10,
		fraud_slash: Perbill::from_percent(50),
	}) };
	static INFERENCE: RefCell<InferenceParams<Balance, BlockNumber>> = const { RefCell::new(InferenceParams {
		check_rate: Perbill::from_percent(5),
		challenge_bond: 10,
		arbiters: 3,
		arbitration_window: 20,
		fraud_slash: Perbill::from_percent(100),
		challenger_share: Perbill::from_percent(50),
		arbiter_fee: 1,
	}) };
}

/// Stand-in for `pallet-jobs`.
pub struct MockJobs;
impl GovernedParams<JobParams<Balance, BlockNumber>> for MockJobs {
	fn params() -> JobParams<Balance, BlockNumber> {
		JOBS.with(|p| p.borrow().clone())
	}
	fn set_params(params: JobParams<Balance, BlockNumber>) -> DispatchResult {
		JOBS.with(|p| *p.borrow_mut() = params);
		Ok(())
	}
}

/// Stand-in for `pallet-free-tier`.
pub struct MockFreeTier;
impl GovernedParams<FreeTierParams<BlockNumber>> for MockFreeTier {
	fn params() -> FreeTierParams<BlockNumber> {
		FREE.with(|p| p.borrow().clone())
	}
	fn set_params(params: FreeTierParams<BlockNumber>) -> DispatchResult {
		FREE.with(|p| *p.borrow_mut() = params);
		Ok(())
	}
}

/// Stand-in for `pallet-pol-rewards`, with its rule that fee and share fit in the escrow.
pub struct MockPol;
pub const FEE_AND_SHARE_TOO_HIGH: DispatchError = DispatchError::Other("fee + share > 100 %");
impl GovernedParams<PolParams<Balance, BlockNumber>> for MockPol {
	fn params() -> PolParams<Balance, BlockNumber> {
		POL.with(|p| p.borrow().clone())
	}
	fn set_params(params: PolParams<Balance, BlockNumber>) -> DispatchResult {
		if params.verifier_fee.deconstruct() + params.dataset_share.deconstruct()
			> Perbill::one().deconstruct()
		{
			return Err(FEE_AND_SHARE_TOO_HIGH);
		}
		POL.with(|p| *p.borrow_mut() = params);
		Ok(())
	}
}

/// Stand-in for `pallet-training-audit`.
pub struct MockAudit;
impl GovernedParams<AuditParams<Balance, BlockNumber>> for MockAudit {
	fn params() -> AuditParams<Balance, BlockNumber> {
		AUDIT.with(|p| p.borrow().clone())
	}
	fn set_params(params: AuditParams<Balance, BlockNumber>) -> DispatchResult {
		AUDIT.with(|p| *p.borrow_mut() = params);
		Ok(())
	}
}

/// Stand-in for `pallet-inference`.
pub struct MockInference;
impl GovernedParams<InferenceParams<Balance, BlockNumber>> for MockInference {
	fn params() -> InferenceParams<Balance, BlockNumber> {
		INFERENCE.with(|p| p.borrow().clone())
	}
	fn set_params(params: InferenceParams<Balance, BlockNumber>) -> DispatchResult {
		INFERENCE.with(|p| *p.borrow_mut() = params);
		Ok(())
	}
}

/// The table of bounds the tests check against.
pub struct MockBounds;
impl ParameterBounds<Balance, BlockNumber> for MockBounds {
	fn bounds(
		kind: ParameterKind,
	) -> Option<(ParameterValue<Balance, BlockNumber>, ParameterValue<Balance, BlockNumber>)> {
		use ParameterKind::*;
		use ParameterValue::*;
		let pct = |a, b| Some((Share(Perbill::from_percent(a)), Share(Perbill::from_percent(b))));
		match kind {
			MinImprovement => {
				Some((Share(Perbill::from_perthousand(1)), Share(Perbill::from_percent(50))))
			}
			MinJobReward | MinWorkerBond | MinVerifierBond => Some((Amount(1), Amount(1_000_000))),
			EpochBudget => Some((Amount(0), Amount(1_000_000))),
			CommitteeSize => Some((Count(1), Count(21))),
			MinDailyQuota | MaxDailyQuota => Some((Count(1), Count(10_000))),
			PowDifficulty => Some((Count(8), Count(32))),
			MaxFreePerBlock => Some((Count(1), Count(1_000))),
			LeaseSlash | VerifierPenalty => pct(0, 100),
			MinerSlash => pct(1, 100),
			VerifierFee | DatasetShare => pct(0, 60),
			AnnualInflation => pct(0, 20),
			ValidatorRewardShare => pct(0, 100),
			InferenceCheckRate | ServerFraudSlash | InferenceChallengerShare => pct(0, 100),
			InferenceArbiterFee => Some((Amount(0), Amount(1_000))),
			InferenceChallengeBond => Some((Amount(1), Amount(1_000_000))),
			InferenceArbiters => Some((Count(1), Count(16))),
			// Left out on purpose: a parameter this chain does not govern.
			CommitteeDrawDelay => None,
			// A broken row: bounds in the wrong unit.
			MaxLease => Some((Count(1), Count(100))),
			_ => Some((Blocks(10), Blocks(10_000))),
		}
	}
}

/// Blocks between two changes of one root-only parameter.
pub const ROOT_COOLDOWN: BlockNumber = 50;

parameter_types! {
	pub DefaultEconomics: EconomicsParams = EconomicsParams {
		annual_inflation: Perbill::from_percent(10),
		validator_share: Perbill::from_percent(50),
	};
	pub DefaultTimings: ReferendumTimings<BlockNumber> = ReferendumTimings {
		prepare_period: 10,
		decision_period: 100,
		confirm_period: 10,
		min_enactment_period: 10,
	};
}

impl pallet_governance::Config for Test {
	type Balance = Balance;
	type Jobs = MockJobs;
	type Pol = MockPol;
	type Audit = MockAudit;
	type FreeTier = MockFreeTier;
	type Inference = MockInference;
	type Bounds = MockBounds;
	type AdminOrigin = EitherOfDiverse<EnsureRoot<u64>, EnsureParameterAdmin>;
	type RootOrigin = EnsureRoot<u64>;
	type RootChangeCooldown = ConstU64<ROOT_COOLDOWN>;
	type DefaultEconomics = DefaultEconomics;
	type DefaultTimings = DefaultTimings;
	type WeightInfo = ();
}

/// Its storage invariants are checked after every test.
pub fn new_test_ext() -> CheckedExternalities {
	JOBS.with(|p| *p.borrow_mut() = job_defaults());
	POL.with(|p| *p.borrow_mut() = pol_defaults());
	FREE.with(|p| *p.borrow_mut() = free_tier_defaults());
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	CheckedExternalities::new(ext, Governance::do_try_state)
}

/// The origin of a passed referendum on the parameters track.
pub fn parameter_admin() -> RuntimeOrigin {
	RuntimeOrigin::from(pallet_governance::Origin::ParameterAdmin)
}
