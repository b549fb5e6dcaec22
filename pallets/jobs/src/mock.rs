//! A runtime with balances, the real registry and the jobs pallet; verification is a recorder
//! the tests settle by hand.
use crate::{self as pallet_jobs, JobParams};
use blyan_primitives::pol::{JobId, VerificationProvider, VerificationRequest};
use blyan_primitives::testing::CheckedExternalities;
use core::cell::RefCell;
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU32, ConstU64},
};
use sp_runtime::{BuildStorage, DispatchResult, Perbill};

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Registry: pallet_model_registry,
		Jobs: pallet_jobs,
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
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	// No deposits unless a test sets them: the registry's own tests charge them; these keep
	// the jobs' balances to their payments.
	type DepositPerItem = ConstU64<0>;
	type DepositPerByte = RegistryDepositPerByte;
	type MaxModelsPerOwner = ConstU32<4>;
	type MaxDatasetsPerOwner = ConstU32<4>;
	type MaxVersionsPerModel = ConstU32<64>;
	type WeightInfo = ();
}

parameter_types! {
	/// The registry's deposit per byte; a test raises it.
	pub storage RegistryDepositPerByte: u64 = 0;
}

thread_local! {
	/// Verification requests received, in order.
	pub static REQUESTS: RefCell<Vec<(JobId, VerificationRequest<AccountId>)>> = const { RefCell::new(Vec::new()) };
}

/// Records what it is asked to verify.
pub struct RecordingVerifier;
impl VerificationProvider<AccountId> for RecordingVerifier {
	fn start_verification(job: JobId, request: VerificationRequest<AccountId>) -> DispatchResult {
		REQUESTS.with(|r| r.borrow_mut().push((job, request)));
		Ok(())
	}
}

pub const MIN_BOND: Balance = 100;
pub const REVEAL_WINDOW: u64 = 5;

parameter_types! {
	pub const CreatorForfeitShare: sp_runtime::Perbill = sp_runtime::Perbill::from_percent(20);
	pub const CreatorBondShare: sp_runtime::Perbill = sp_runtime::Perbill::from_percent(20);
	pub DefaultParams: JobParams<Balance, u64> = JobParams {
		min_improvement: Perbill::from_percent(1),
		min_reward: 10,
		min_worker_bond: MIN_BOND,
		unbonding_period: 10,
		max_lease: 50,
		reveal_window: REVEAL_WINDOW,
		lease_slash: Perbill::from_percent(10),
	};
}

thread_local! {
	/// Jobs whose result the gate refuses (as a federated job before its last round).
	pub static GATED: RefCell<Vec<JobId>> = const { RefCell::new(Vec::new()) };
}

/// A [`CommitGate`] refusing the jobs in [`GATED`].
pub struct ClosedGate;
impl blyan_primitives::federated::CommitGate for ClosedGate {
	fn may_commit(job: JobId) -> sp_runtime::DispatchResult {
		if GATED.with(|g| g.borrow().contains(&job)) {
			Err(sp_runtime::DispatchError::Other("gated"))
		} else {
			Ok(())
		}
	}
}

impl pallet_jobs::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type Verification = RecordingVerifier;
	type CommitGate = ClosedGate;
	type RequireTrace = frame_support::traits::ConstBool<true>;
	type DefaultParams = DefaultParams;
	type MaxActiveJobsPerWorker = ConstU32<2>;
	type MaxJobsPerCreator = ConstU32<3>;
	type CreatorForfeitShare = CreatorForfeitShare;
	type CreatorBondShare = CreatorBondShare;
	type MaxExpiriesPerBlock = ConstU32<2>;
	type WeightInfo = ();
}

/// The invariants of every pallet of the mock runtime.
fn invariants() -> Result<(), sp_runtime::TryRuntimeError> {
	Registry::do_try_state()?;
	Jobs::do_try_state()
}

/// Accounts 1..=6 start with 1 000 each.
///
/// Its storage invariants are checked after every test.
pub fn new_test_ext() -> CheckedExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: (1..=6).map(|a| (a, 1_000)).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		System::set_block_number(1);
		REQUESTS.with(|r| r.borrow_mut().clear());
		GATED.with(|g| g.borrow_mut().clear());
	});
	CheckedExternalities::new(ext, invariants)
}

/// Runs blocks up to `n`, with the pallet's `on_initialize`.
pub fn run_to(n: u64) {
	use frame_support::traits::Hooks;
	while System::block_number() < n {
		// The invariants hold at the end of every block, as `try-runtime` checks them.
		invariants().expect("storage invariants hold at the end of the block");
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Jobs::on_initialize(next);
	}
}
