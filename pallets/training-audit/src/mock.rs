//! The protocol pallets together, as the runtime joins them: jobs hand revealed results to the
//! audit, which hands passed ones on to PoL scoring (the registry, jobs and PoL pallets are
//! configured by [`pallet_pol_rewards::protocol_mock`], as in that pallet's own tests).
use crate::{self as pallet_training_audit, AuditParams};
use frame_support::{derive_impl, parameter_types, traits::ConstU32};
use sp_runtime::Perbill;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Registry: pallet_model_registry,
		Jobs: pallet_jobs,
		Pol: pallet_pol_rewards,
		TrainingAudit: pallet_training_audit,
	}
);

pallet_pol_rewards::protocol_mock!(
	runtime: Test,
	verification: TrainingAudit,
	on_initialize: [Jobs, TrainingAudit, Pol],
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type AccountStore = System;
	type RuntimeHoldReason = RuntimeHoldReason;
}

pub const CHALLENGE_BOND: Balance = 50;
pub const DRAW_DELAY: u64 = 2;
pub const CHALLENGE_WINDOW: u64 = 10;
pub const MOVE_WINDOW: u64 = 3;

parameter_types! {
	pub const ChallengerShare: Perbill = Perbill::from_percent(50);
	pub AuditDefaults: AuditParams<Balance, u64> = AuditParams {
		checkpoint_interval: 4,
		spot_checks: 3,
		draw_delay: DRAW_DELAY,
		challenge_window: CHALLENGE_WINDOW,
		move_window: MOVE_WINDOW,
		arbiters: 3,
		challenge_bond: CHALLENGE_BOND,
		fraud_slash: Perbill::from_percent(50),
	};
}

impl pallet_training_audit::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type Jobs = Jobs;
	type Next = Pol;
	type Verifiers = Pol;
	type Randomness = TestRandomness;
	type DefaultParams = AuditDefaults;
	type ChallengerShare = ChallengerShare;
	type MaxDisputes = ConstU32<2>;
	type MaxDeadlinesPerBlock = ConstU32<8>;
	type WeightInfo = ();
}

/// The invariants of every pallet of the mock runtime.
fn invariants() -> Result<(), sp_runtime::TryRuntimeError> {
	protocol_invariants()?;
	TrainingAudit::do_try_state()?;
	// Across the pallets: a job under verification is in its audit or its PoL round (else its
	// escrow is stuck).
	for (job, info) in pallet_jobs::Jobs::<Test>::iter() {
		if matches!(info.status, pallet_jobs::JobStatus::Verifying { .. }) {
			frame_support::ensure!(
				crate::Audits::<Test>::contains_key(job)
					|| pallet_pol_rewards::Rounds::<Test>::contains_key(job),
				"a job under verification in neither its audit nor a round"
			);
		}
	}
	Ok(())
}
