//! A runtime with balances, the free tier (for free receipts) and this pallet; a registry stub
//! with accepted version 1 and candidate version 2. Accounts are sr25519 keys from a keystore so
//! receipts are signed as a wallet would.
use crate as pallet_inference;
use crate::*;
use blyan_primitives::testing::CheckedExternalities;
use blyan_primitives::{
	params::FreeTierParams,
	pol::{DatasetId, ModelId, SemVer, VersionSummary},
};
use frame_support::{derive_impl, parameter_types, traits::ConstU128};
use sp_core::{crypto::KeyTypeId, sr25519};
use sp_keystore::{testing::MemoryKeystore, KeystoreExt};
use sp_runtime::traits::{BlakeTwo256, Hash as _};
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
		FreeTier: pallet_free_tier,
		Inference: pallet_inference,
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

parameter_types! {
	pub const StakeUnit: Balance = 1_000;
	pub const DayLength: BlockNumber = 100;
	pub FreeDefaults: FreeTierParams<BlockNumber> = FreeTierParams {
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
	type DefaultParams = FreeDefaults;
	type MaxPrunePerBlock = frame_support::traits::ConstU32<128>;
	type WeightInfo = ();
}

/// Version 1 is accepted, version 2 a candidate; nothing else exists.
pub struct Registry;
impl ModelRegistry<AccountId> for Registry {
	fn version(version: VersionId) -> Option<VersionSummary> {
		let status = match version {
			1 => VersionStatus::Accepted,
			2 => VersionStatus::Candidate,
			_ => return None,
		};
		Some(VersionSummary {
			model: 0,
			semver: SemVer::new(1, 0, 0),
			status,
			weight_root: Default::default(),
			adapter: None,
		})
	}
	fn dataset_owner(_: DatasetId) -> Option<AccountId> {
		None
	}
	fn ensure_can_propose(_: ModelId, _: &AccountId) -> DispatchResult {
		Ok(())
	}
	fn reserve_semver(_: ModelId, _: SemVer, _: VersionId, _: &AccountId) -> DispatchResult {
		Ok(())
	}
	fn release_semver(_: ModelId, _: SemVer) {}
	fn propose_candidate(
		_: &AccountId,
		_: blyan_primitives::pol::CandidateVersion,
	) -> Result<VersionId, sp_runtime::DispatchError> {
		Ok(0)
	}
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_fixture(_: &AccountId) -> (VersionId, DatasetId) {
		(1, 0)
	}
}

pub const MIN_BOND: Balance = 100;
pub const TTL: BlockNumber = 50;

parameter_types! {
	pub const MinServerBond: Balance = MIN_BOND;
	pub const AnnouncementTtl: BlockNumber = TTL;
	pub const MaxServers: u32 = 3;
	pub const MaxEndpointLen: u32 = 64;
	pub const MaxReceiptsPerBatch: u32 = 8;
	pub const NonceDeposit: Balance = NONCE_DEPOSIT;
}

/// Held from a server per `(client, server)` nonce entry.
pub const NONCE_DEPOSIT: Balance = 3;

pub const CHALLENGE_BOND: Balance = 40;
pub const WINDOW: BlockNumber = 10;

parameter_types! {
	pub Defaults: ParamsOf<Test> = InferenceParams {
		check_rate: sp_runtime::Perbill::from_percent(5),
		challenge_bond: CHALLENGE_BOND,
		arbiters: 3,
		arbitration_window: WINDOW,
		fraud_slash: sp_runtime::Perbill::from_percent(50),
		challenger_share: sp_runtime::Perbill::from_percent(40),
		arbiter_fee: ARBITER_FEE,
	};
}

/// Paid to each arbiter reporting the decision (three of them: 15, at most half of the bond).
pub const ARBITER_FEE: Balance = 5;

std::thread_local! {
	/// The bonded verifiers of the test, in the order [`Verifiers::draw`] takes them.
	pub static VERIFIERS: std::cell::RefCell<Vec<AccountId>> = const { std::cell::RefCell::new(Vec::new()) };
	/// The seeds draws were made with.
	pub static SEEDS: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
	/// The verifiers penalised, and for which duty.
	pub static PENALISED: std::cell::RefCell<Vec<(VerifierDuty, AccountId)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Randomness of the current block: a hash of its number, as a VRF output is one value per
/// block, not something the block's transactions move.
pub struct BlockRandomness;
impl frame_support::traits::Randomness<H256, BlockNumber> for BlockRandomness {
	fn random(subject: &[u8]) -> (H256, BlockNumber) {
		let now = System::block_number();
		(BlakeTwo256::hash_of(&(subject, now)), now)
	}
}

/// A verifier set that draws its verifiers in order, skipping those excluded.
pub struct Verifiers;
impl VerifierSet<AccountId> for Verifiers {
	fn draw(seed: &[u8], count: u32, exclude: &[AccountId]) -> Vec<AccountId> {
		SEEDS.with(|s| s.borrow_mut().push(seed.to_vec()));
		VERIFIERS.with(|v| {
			v.borrow()
				.iter()
				.filter(|a| !exclude.contains(a))
				.take(count as usize)
				.cloned()
				.collect()
		})
	}
	fn penalise(duty: VerifierDuty, verifier: &AccountId) {
		PENALISED.with(|p| p.borrow_mut().push((duty, verifier.clone())));
	}
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_full_set() -> Vec<AccountId> {
		let set: Vec<AccountId> = (1..=20u8).map(|i| AccountId::new([i; 32])).collect();
		VERIFIERS.with(|v| *v.borrow_mut() = set.clone());
		set
	}
}

impl pallet_inference::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type FreeQuota = FreeTier;
	type Signature = MultiSignature;
	type Signer = MultiSigner;
	type MinServerBond = MinServerBond;
	type AnnouncementTtl = AnnouncementTtl;
	type MaxServers = MaxServers;
	type MaxEndpointLen = MaxEndpointLen;
	type MaxReceiptsPerBatch = MaxReceiptsPerBatch;
	type NonceDeposit = NonceDeposit;
	type Verifiers = Verifiers;
	type DefaultParams = Defaults;
	type MaxEvidenceLen = frame_support::traits::ConstU32<64>;
	type Randomness = BlockRandomness;
	type MaxDrawsPerBlock = frame_support::traits::ConstU32<2>;
	type WeightInfo = ();
}

pub const KEY_TYPE: KeyTypeId = KeyTypeId(*b"infr");

/// A fresh sr25519 key in the keystore, as an account, funded with `balance`.
pub fn new_account(balance: Balance) -> (sr25519::Public, AccountId) {
	let public = sp_io::crypto::sr25519_generate(KEY_TYPE, None);
	let account: AccountId = MultiSigner::from(public).into_account();
	if balance > 0 {
		Balances::set_balance(&account, balance);
	}
	(public, account)
}

/// Moves to block `n`, starting each block after the current one (arbiters are drawn then).
pub fn go_to(n: BlockNumber) {
	use frame_support::traits::Hooks;
	for b in System::block_number() + 1..=n {
		System::set_block_number(b);
		Inference::on_initialize(b);
	}
}

/// `public` signs `commitment` (as a stage does after each chunk).
pub fn sign_commitment(
	public: &sr25519::Public,
	commitment: &ChunkCommitment<AccountId>,
) -> MultiSignature {
	let payload = chunk_commitment_payload(&genesis(), commitment);
	MultiSignature::from(sp_io::crypto::sr25519_sign(KEY_TYPE, public, &payload).unwrap())
}

/// `public` signs `receipt` (as a client's wallet would).
pub fn sign(
	public: &sr25519::Public,
	receipt: InferenceReceipt<AccountId, Balance>,
) -> SignedReceipt<AccountId, Balance, MultiSignature> {
	let payload = receipt_payload(&genesis(), &receipt);
	let signature =
		MultiSignature::from(sp_io::crypto::sr25519_sign(KEY_TYPE, public, &payload).unwrap());
	SignedReceipt { receipt, signature }
}

pub fn genesis() -> H256 {
	H256::from_slice(System::block_hash(0).as_ref())
}

/// The invariants of every pallet of the mock runtime.
fn invariants() -> Result<(), sp_runtime::TryRuntimeError> {
	FreeTier::do_try_state()?;
	Inference::do_try_state()
}

/// Its storage invariants are checked after every test.
pub fn new_test_ext() -> CheckedExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.register_extension(KeystoreExt::new(MemoryKeystore::new()));
	ext.execute_with(|| System::set_block_number(1));
	CheckedExternalities::new(ext, invariants)
}
