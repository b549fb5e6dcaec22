//! The three protocol pallets together, as the runtime joins them.
use crate::{self as pallet_pol_rewards, PolParams};
use blyan_primitives::testing::CheckedExternalities;
use codec::Encode;
use core::cell::Cell;
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU32, Hooks, Randomness},
};
use frame_system::pallet_prelude::BlockNumberFor;
use pallet_jobs::JobParams;
use sp_core::H256;
use sp_runtime::{
	traits::{BlakeTwo256, Hash},
	BuildStorage, Perbill,
};

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Registry: pallet_model_registry,
		Jobs: pallet_jobs,
		Pol: pallet_pol_rewards,
	}
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

impl pallet_model_registry::Config for Test {
	type MaxModelsPerOwner = ConstU32<4>;
	type MaxDatasetsPerOwner = ConstU32<4>;
	type MaxVersionsPerModel = ConstU32<64>;
	type WeightInfo = ();
}

pub const MIN_WORKER_BOND: Balance = 100;
pub const JOB_REVEAL_WINDOW: u64 = 5;

parameter_types! {
	pub const CreatorForfeitShare: sp_runtime::Perbill = sp_runtime::Perbill::from_percent(20);
	pub const CreatorBondShare: sp_runtime::Perbill = sp_runtime::Perbill::from_percent(20);
	pub JobDefaults: JobParams<Balance, u64> = JobParams {
		min_improvement: Perbill::from_percent(1),
		min_reward: 10,
		min_worker_bond: MIN_WORKER_BOND,
		unbonding_period: 10,
		max_lease: 50,
		reveal_window: JOB_REVEAL_WINDOW,
		lease_slash: Perbill::from_percent(10),
	};
}

impl pallet_jobs::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type Verification = Pol;
	type CommitGate = ();
	type RequireTrace = frame_support::traits::ConstBool<true>;
	type DefaultParams = JobDefaults;
	type MaxActiveJobsPerWorker = ConstU32<4>;
	type MaxJobsPerCreator = ConstU32<4>;
	type CreatorForfeitShare = CreatorForfeitShare;
	type CreatorBondShare = CreatorBondShare;
	type MaxExpiriesPerBlock = ConstU32<8>;
	type WeightInfo = ();
}

thread_local! {
	/// Mixed into the randomness, so a test can make a redraw pick another committee.
	pub static RANDOM_SALT: Cell<u64> = const { Cell::new(0) };
}

/// Hash of the subject, the block number and [`RANDOM_SALT`].
pub struct TestRandomness;
impl Randomness<H256, BlockNumberFor<Test>> for TestRandomness {
	fn random(subject: &[u8]) -> (H256, BlockNumberFor<Test>) {
		let now = System::block_number();
		let salt = RANDOM_SALT.with(|s| s.get());
		(BlakeTwo256::hash(&(subject, now, salt).encode()), now)
	}
}

pub const MINING_POOL: AccountId = 100;
pub const MIN_VERIFIER_BOND: Balance = 100;
pub const COMMIT_WINDOW: u64 = 3;
pub const REVEAL_WINDOW: u64 = 3;
pub const EPOCH: u64 = 100;
pub const EPOCH_BUDGET: Balance = 1_000;

parameter_types! {
	pub const MiningPool: AccountId = MINING_POOL;
	pub PolDefaults: PolParams<Balance, u64> = PolParams {
		committee_size: 3,
		draw_delay: 1,
		commit_window: COMMIT_WINDOW,
		reveal_window: REVEAL_WINDOW,
		verifier_fee: Perbill::from_percent(10),
		dataset_share: Perbill::from_percent(5),
		miner_slash: Perbill::from_percent(50),
		verifier_penalty: Perbill::from_percent(10),
		min_verifier_bond: MIN_VERIFIER_BOND,
		unbonding_period: 10,
		epoch_length: EPOCH,
		epoch_budget: EPOCH_BUDGET,
	};
}

impl pallet_pol_rewards::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type Jobs = Jobs;
	type Randomness = TestRandomness;
	type MiningPool = MiningPool;
	type DefaultParams = PolDefaults;
	type Contributions = ();
	type MaxVerifiers = ConstU32<24>;
	type MaxAssignmentsPerVerifier = ConstU32<16>;
	type MaxDeadlinesPerBlock = ConstU32<8>;
	type WeightInfo = ();
}

/// What account 1 (the creator in tests) starts with.
pub const CREATOR_FUNDS: Balance = 10_000;

/// The invariants of every pallet of the mock runtime.
fn invariants() -> Result<(), sp_runtime::TryRuntimeError> {
	Registry::do_try_state()?;
	Jobs::do_try_state()?;
	Pol::do_try_state()?;
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

/// Accounts 2..=20 hold 1 000 each, account 1 `CREATOR_FUNDS`, the mining pool 10 000.
///
/// Its storage invariants are checked after every test.
pub fn new_test_ext() -> CheckedExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut balances: Vec<(AccountId, Balance)> =
		(1..=20).map(|a| (a, if a == 1 { CREATOR_FUNDS } else { 1_000 })).collect();
	balances.push((MINING_POOL, 10_000));
	pallet_balances::GenesisConfig::<Test> { balances, ..Default::default() }
		.assimilate_storage(&mut storage)
		.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		System::set_block_number(1);
		RANDOM_SALT.with(|s| s.set(0));
	});
	CheckedExternalities::new(ext, invariants)
}

/// Runs blocks up to `n`, with both pallets' `on_initialize`.
pub fn run_to(n: u64) {
	while System::block_number() < n {
		// The invariants hold at the end of every block, as `try-runtime` checks them.
		invariants().expect("storage invariants hold at the end of the block");
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Jobs::on_initialize(next);
		Pol::on_initialize(next);
	}
}
