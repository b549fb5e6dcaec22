//! A minimal runtime with only the registry.
use crate as pallet_model_registry;
use blyan_primitives::testing::CheckedExternalities;
use frame_support::{derive_impl, parameter_types};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Registry: pallet_model_registry,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

parameter_types! {
	pub const MaxModelsPerOwner: u32 = 2;
	pub const MaxDatasetsPerOwner: u32 = 2;
	pub const MaxVersionsPerModel: u32 = 4;
}

impl pallet_model_registry::Config for Test {
	type MaxModelsPerOwner = MaxModelsPerOwner;
	type MaxDatasetsPerOwner = MaxDatasetsPerOwner;
	type MaxVersionsPerModel = MaxVersionsPerModel;
	type WeightInfo = ();
}

/// Test externalities whose storage invariants are checked after every test.
pub fn new_test_ext() -> CheckedExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	CheckedExternalities::new(ext, Registry::do_try_state)
}
