//! A runtime with balances and this pallet; the jobs pallet is a stub whose jobs tests post,
//! claim and remove by hand.
use crate as pallet_federated;
use crate::*;
use blyan_primitives::testing::CheckedExternalities;
use core::cell::RefCell;
use frame_support::{derive_impl, parameter_types, traits::ConstU128};
use sp_runtime::{traits::IdentityLookup, BuildStorage};
use std::collections::BTreeMap;

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u128;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Federated: pallet_federated,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountId = AccountId;
	type Lookup = IdentityLookup<AccountId>;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = Balance;
	type ExistentialDeposit = ConstU128<1>;
	type AccountStore = System;
	type RuntimeHoldReason = RuntimeHoldReason;
}

thread_local! {
	/// job → (creator, worker)
	static JOBS: RefCell<BTreeMap<JobId, (AccountId, Option<AccountId>)>> = const { RefCell::new(BTreeMap::new()) };
	/// Jobs that train LoRA adapters.
	static ADAPTER_JOBS: RefCell<Vec<JobId>> = const { RefCell::new(Vec::new()) };
}

pub fn make_adapter_job(job: JobId) {
	ADAPTER_JOBS.with(|j| j.borrow_mut().push(job));
}

pub fn post_job(job: JobId, creator: AccountId) {
	JOBS.with(|j| j.borrow_mut().insert(job, (creator, None)));
}
pub fn claim_job(job: JobId, worker: AccountId) {
	JOBS.with(|j| j.borrow_mut().get_mut(&job).expect("posted").1 = Some(worker));
}
pub fn end_job(job: JobId) {
	JOBS.with(|j| j.borrow_mut().remove(&job));
}

pub struct JobsStub;
impl JobInfo<AccountId> for JobsStub {
	fn creator(job: JobId) -> Option<AccountId> {
		JOBS.with(|j| j.borrow().get(&job).map(|(c, _)| *c))
	}
	fn is_open(job: JobId) -> bool {
		JOBS.with(|j| j.borrow().get(&job).is_some_and(|(_, w)| w.is_none()))
	}
	fn worker(job: JobId) -> Option<AccountId> {
		JOBS.with(|j| j.borrow().get(&job).and_then(|(_, w)| *w))
	}
	fn exists(job: JobId) -> bool {
		JOBS.with(|j| j.borrow().contains_key(&job))
	}
	fn trains_adapters(job: JobId) -> bool {
		ADAPTER_JOBS.with(|j| j.borrow().contains(&job))
	}
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_job(creator: &AccountId, worker: Option<&AccountId>) -> JobId {
		let job = JOBS.with(|j| j.borrow().len() as JobId + 100);
		post_job(job, *creator);
		if let Some(w) = worker {
			claim_job(job, *w);
		}
		job
	}
}

parameter_types! {
	pub const MaxParticipants: u32 = 8;
	pub const MaxRounds: u32 = 10;
	pub const MaxEndpointLen: u32 = 64;
	/// ε = 20
	pub const DefaultPrivacyBudget: u64 = 20_000;
}

impl pallet_federated::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Jobs = JobsStub;
	type MaxParticipants = MaxParticipants;
	type MaxRounds = MaxRounds;
	type MaxEndpointLen = MaxEndpointLen;
	type DefaultPrivacyBudget = DefaultPrivacyBudget;
	type WeightInfo = ();
}

pub const CREATOR: AccountId = 1;
pub const AGGREGATOR: AccountId = 2;
/// Accounts 10..=19 are would-be participants.
pub const P: AccountId = 10;

/// Its storage invariants are checked after every test.
pub fn new_test_ext() -> CheckedExternalities {
	JOBS.with(|j| j.borrow_mut().clear());
	let mut t = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: (1..=19).map(|a| (a, 1_000_000)).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut t)
	.unwrap();
	let mut ext = sp_io::TestExternalities::new(t);
	ext.execute_with(|| System::set_block_number(1));
	CheckedExternalities::new(ext, Federated::do_try_state)
}
