//! The Proof-of-Learning protocol: model registry, training jobs, verification and rewards.
//!
//! Parameters below are the defaults until governance (issue #5) changes them through each
//! pallet's `set_params` (root for now).

use super::MiningPoolAccount;
use crate::{
	currency::*, time::*, AccountId, Balance, Balances, BlockNumber, Hash, Jobs, PolRewards,
	Registry, Runtime, RuntimeHoldReason, System,
};
use frame_support::{parameter_types, traits::ConstU32};
use frame_system::EnsureRoot;
use pallet_jobs::JobParams;
use pallet_pol_rewards::PolParams;
use sp_runtime::{
	traits::{BlakeTwo256, Hash as _},
	Perbill,
};

impl pallet_model_registry::Config for Runtime {
	type MaxModelsPerOwner = ConstU32<64>;
	type MaxDatasetsPerOwner = ConstU32<256>;
	type MaxVersionsPerModel = ConstU32<100_000>;
	type WeightInfo = pallet_model_registry::weights::SubstrateWeight<Runtime>;
}

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
}

impl pallet_jobs::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type Verification = PolRewards;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = JobDefaults;
	type MaxActiveJobsPerWorker = ConstU32<16>;
	type MaxJobsPerCreator = ConstU32<64>;
	type MaxExpiriesPerBlock = ConstU32<32>;
	type WeightInfo = pallet_jobs::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
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
}

/// Committee randomness: the hash of the parent block with the subject.
///
/// A round is drawn in the block after the one holding the reveal, so the seed did not exist
/// when the job was claimed or revealed. The author of that parent block could still withhold
/// it to re-roll; with Aura that costs the author its slot. BABE's VRF output would remove
/// even that, behind the same `Randomness` trait.
pub struct ParentHashRandomness;
impl frame_support::traits::Randomness<Hash, BlockNumber> for ParentHashRandomness {
	fn random(subject: &[u8]) -> (Hash, BlockNumber) {
		let parent = System::parent_hash();
		let known_since = System::block_number().saturating_sub(1);
		(BlakeTwo256::hash_of(&(subject, parent)), known_since)
	}
}

impl pallet_pol_rewards::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type Jobs = Jobs;
	type Randomness = ParentHashRandomness;
	type MiningPool = MiningPoolAccount;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = PolDefaults;
	type MaxVerifiers = ConstU32<256>;
	type MaxAssignmentsPerVerifier = ConstU32<32>;
	type MaxDeadlinesPerBlock = ConstU32<16>;
	type WeightInfo = pallet_pol_rewards::weights::SubstrateWeight<Runtime>;
}
