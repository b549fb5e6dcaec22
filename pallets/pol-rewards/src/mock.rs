//! The three protocol pallets together, as the runtime joins them (configured by
//! [`crate::protocol_mock`], shared with the pallets built on this one).
use crate as pallet_pol_rewards;
use frame_support::derive_impl;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Registry: pallet_model_registry,
		Jobs: pallet_jobs,
		Pol: pallet_pol_rewards,
	}
);

crate::protocol_mock!(runtime: Test, verification: Pol, on_initialize: [Jobs, Pol]);

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

/// The invariants of every pallet of the mock runtime.
fn invariants() -> Result<(), sp_runtime::TryRuntimeError> {
	protocol_invariants()?;
	// Across the pallets: a job under verification is in a round (else its escrow is stuck).
	for (job, info) in pallet_jobs::Jobs::<Test>::iter() {
		if matches!(info.status, pallet_jobs::JobStatus::Verifying { .. }) {
			frame_support::ensure!(
				crate::Rounds::<Test>::contains_key(job),
				"a job under verification without its round"
			);
		}
	}
	Ok(())
}
