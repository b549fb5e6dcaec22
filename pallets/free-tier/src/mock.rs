//! A runtime with balances, transaction payment and the free tier; accounts are sr25519 keys from
//! a keystore so unsigned requests can be signed as a wallet would.
use crate as pallet_free_tier;
use crate::*;
use blyan_primitives::testing::CheckedExternalities;
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU128, ConstU32, Hooks},
};
use sp_core::{crypto::KeyTypeId, sr25519};
use sp_keystore::{testing::MemoryKeystore, KeystoreExt};
use sp_runtime::{
	traits::{IdentifyAccount, IdentityLookup},
	AccountId32, BuildStorage, MultiSignature, MultiSigner,
};

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = AccountId32;
pub type Balance = u128;
pub type BlockNumber = u64;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Balances: pallet_balances,
		TransactionPayment: pallet_transaction_payment,
		FreeTier: pallet_free_tier,
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
}

#[derive_impl(pallet_transaction_payment::config_preludes::TestDefaultConfig)]
impl pallet_transaction_payment::Config for Test {
	type OnChargeTransaction = pallet_transaction_payment::FungibleAdapter<Balances, ()>;
	type WeightToFee = frame_support::weights::FixedFee<1, Balance>;
	type LengthToFee = frame_support::weights::FixedFee<0, Balance>;
}

/// Usage records deleted a block.
pub const MAX_PRUNE: u32 = 128;
/// Blocks in a quota day.
pub const DAY: BlockNumber = 100;
/// BLY per trust point.
pub const STAKE_UNIT: Balance = 1_000;

parameter_types! {
	pub const StakeUnit: Balance = STAKE_UNIT;
	pub const DayLength: BlockNumber = DAY;
	pub Defaults: FreeTierParams<BlockNumber> = FreeTierParams {
		min_daily_quota: 5,
		max_daily_quota: 500,
		pow_difficulty: 8,
		pow_window: 10,
		max_free_per_block: 50,
	};
}

impl pallet_free_tier::Config for Test {
	type Currency = Balances;
	type Signature = MultiSignature;
	type Signer = MultiSigner;
	type StakeUnit = StakeUnit;
	type DayLength = DayLength;
	type DefaultParams = Defaults;
	type MaxPrunePerBlock = ConstU32<MAX_PRUNE>;
	type WeightInfo = ();
}

/// The fee extension the runtime uses, wrapped.
pub type Extension =
	ChargeUnlessFree<Test, pallet_transaction_payment::ChargeTransactionPayment<Test>>;

pub const KEY_TYPE: KeyTypeId = KeyTypeId(*b"free");

/// A fresh sr25519 key in the keystore, as an account.
pub fn new_account() -> (sr25519::Public, AccountId) {
	let public = sp_io::crypto::sr25519_generate(KEY_TYPE, None);
	(public, MultiSigner::from(public).into_account())
}

/// `who` signs `payload` (as a wallet would).
pub fn sign(public: &sr25519::Public, payload: &[u8]) -> MultiSignature {
	MultiSignature::from(sp_io::crypto::sr25519_sign(KEY_TYPE, public, payload).unwrap())
}

/// Its storage invariants are checked after every test.
pub fn new_test_ext() -> CheckedExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.register_extension(KeystoreExt::new(MemoryKeystore::new()));
	ext.execute_with(|| run_to(1));
	CheckedExternalities::new(ext, FreeTier::do_try_state)
}

/// Moves to block `n`, recording each block's hash as the chain would.
pub fn run_to(n: BlockNumber) {
	while System::block_number() < n {
		// The invariants hold at the end of every block, as `try-runtime` checks them.
		FreeTier::do_try_state().expect("storage invariants hold at the end of the block");
		let now = System::block_number();
		frame_system::BlockHash::<Test>::insert(now, H256::from_low_u64_be(now + 7));
		System::set_block_number(now + 1);
		FreeTier::on_initialize(now + 1);
	}
}
