//! A minimal runtime with only the registry and balances.
use crate as pallet_model_registry;
use blyan_primitives::testing::CheckedExternalities;
use frame_support::{derive_impl, parameter_types};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;
pub type Balance = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		Registry: pallet_model_registry,
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

parameter_types! {
	pub const MaxModelsPerOwner: u32 = 2;
	pub const MaxDatasetsPerOwner: u32 = 2;
	pub const MaxVersionsPerModel: u32 = 4;
	pub const DepositPerItem: Balance = 10;
	pub const DepositPerByte: Balance = 1;
}

impl pallet_model_registry::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type DepositPerItem = DepositPerItem;
	type DepositPerByte = DepositPerByte;
	type MaxModelsPerOwner = MaxModelsPerOwner;
	type MaxDatasetsPerOwner = MaxDatasetsPerOwner;
	type MaxVersionsPerModel = MaxVersionsPerModel;
	type WeightInfo = ();
}

/// Each of accounts 1..=9 holds this; account 10 holds nothing.
pub const FUNDS: Balance = 10_000;

/// Test externalities whose storage invariants are checked after every test.
pub fn new_test_ext() -> CheckedExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: (1..=9).map(|who| (who, FUNDS)).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	CheckedExternalities::new(ext, Registry::do_try_state)
}
