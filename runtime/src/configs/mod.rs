//! Configuration of every pallet in the runtime.

pub mod election;
mod federated;
mod fees;
mod free_tier;
pub mod governance;
mod inference;
pub mod parameters;
mod pol;
mod staking;

pub use fees::{BlockAuthor, DealWithFees};
pub use pol::VrfRandomness;
pub use staking::BlyanEraPayout;

use crate::{
	currency::*, time::*, AccountId, Babe, Balance, Balances, Block, BlockNumber, Hash, Historical,
	Moment, Nonce, Offences, PalletInfo, Runtime, RuntimeCall, RuntimeEvent, RuntimeFreezeReason,
	RuntimeHoldReason, RuntimeOrigin, RuntimeTask, Session, SessionKeys, Staking, System,
	VoterList, VERSION,
};
use frame_support::{
	derive_impl,
	dispatch::DispatchClass,
	parameter_types,
	traits::{ConstBool, ConstU128, ConstU32, ConstU64, ConstU8, KeyOwnerProofSystem},
	weights::{
		constants::{RocksDbWeight, WEIGHT_REF_TIME_PER_SECOND},
		ConstantMultiplier, Weight,
	},
	PalletId,
};
use frame_system::limits::{BlockLength, BlockWeights};
use pallet_transaction_payment::{ConstFeeMultiplier, FungibleAdapter, Multiplier};
use sp_consensus_babe::AuthorityId as BabeId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_core::crypto::KeyTypeId;
use sp_runtime::{traits::One, Perbill};

/// Largest encoded block, in bytes. A runtime upgrade's preimage (the wasm, over 4 MiB in a debug
/// build) must fit in a normal extrinsic, which gets `NORMAL_DISPATCH_RATIO` of it. The node's
/// block proposer uses this limit too (its own default is 4 MiB).
pub const MAX_BLOCK_LENGTH: u32 = 8 * 1024 * 1024;

/// Normal extrinsics may fill this share of a block; the rest is kept for operational ones.
const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

parameter_types! {
	pub const BlockHashCount: BlockNumber = 2400;
	pub const Version: sp_version::RuntimeVersion = VERSION;

	/// Half a second of compute per one-second block: the other half is for import, gossip
	/// and finality votes on the same machine.
	pub RuntimeBlockWeights: BlockWeights = BlockWeights::with_sensible_defaults(
		Weight::from_parts(WEIGHT_REF_TIME_PER_SECOND / 2, u64::MAX),
		NORMAL_DISPATCH_RATIO,
	);
	pub RuntimeBlockLength: BlockLength = BlockLength::builder()
		.max_length(MAX_BLOCK_LENGTH)
		.modify_max_length_for_class(DispatchClass::Normal, |max| {
			*max = NORMAL_DISPATCH_RATIO * MAX_BLOCK_LENGTH
		})
		.build();
	pub const SS58Prefix: u16 = SS58_PREFIX;
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
	type Block = Block;
	type BlockWeights = RuntimeBlockWeights;
	type BlockLength = RuntimeBlockLength;
	type AccountId = AccountId;
	type Nonce = Nonce;
	type Hash = Hash;
	type BlockHashCount = BlockHashCount;
	// ParityDB's costs are of the same order; RocksDB's are the conservative reference values.
	type DbWeight = RocksDbWeight;
	type Version = Version;
	type AccountData = pallet_balances::AccountData<Balance>;
	type SS58Prefix = SS58Prefix;
	type MaxConsumers = ConstU32<16>;
	type SystemWeightInfo = BlyanSystemWeights;
}

/// `frame_system`'s weights, but for a runtime upgrade.
///
/// The stock `set_code` weight (164 s of compute) was measured instantiating the new runtime to
/// read its version; the host reads it from the wasm's `runtime_version` section instead, so the
/// real cost is decompressing the code and one storage write. At 164 s no block, and so no
/// enacted referendum, could ever hold it. It is charged half a block here: the block that
/// upgrades does little else, and the scheduler (80 % of a block) can enact it together with
/// fetching its preimage (~23 ns a byte: ~90 ms for an uncompressed 3.7 MB runtime).
pub struct BlyanSystemWeights;
impl frame_system::WeightInfo for BlyanSystemWeights {
	fn remark(b: u32) -> Weight {
		<() as frame_system::WeightInfo>::remark(b)
	}
	fn remark_with_event(b: u32) -> Weight {
		<() as frame_system::WeightInfo>::remark_with_event(b)
	}
	fn set_heap_pages() -> Weight {
		<() as frame_system::WeightInfo>::set_heap_pages()
	}
	fn set_code() -> Weight {
		Perbill::from_percent(50) * RuntimeBlockWeights::get().max_block
	}
	fn set_storage(i: u32) -> Weight {
		<() as frame_system::WeightInfo>::set_storage(i)
	}
	fn kill_storage(i: u32) -> Weight {
		<() as frame_system::WeightInfo>::kill_storage(i)
	}
	fn kill_prefix(p: u32) -> Weight {
		<() as frame_system::WeightInfo>::kill_prefix(p)
	}
	fn authorize_upgrade() -> Weight {
		<() as frame_system::WeightInfo>::authorize_upgrade()
	}
	fn apply_authorized_upgrade() -> Weight {
		Self::set_code()
	}
}

impl pallet_timestamp::Config for Runtime {
	type Moment = u64;
	type OnTimestampSet = Babe;
	type MinimumPeriod = ConstU64<{ SLOT_DURATION / 2 }>;
	type WeightInfo = pallet_timestamp::weights::SubstrateWeight<Runtime>;
}

impl pallet_balances::Config for Runtime {
	type MaxLocks = ConstU32<50>;
	type MaxReserves = ConstU32<50>;
	type ReserveIdentifier = [u8; 8];
	type Balance = Balance;
	type RuntimeEvent = RuntimeEvent;
	// Dust of reaped accounts is burned.
	type DustRemoval = ();
	type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
	type AccountStore = System;
	type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
	type FreezeIdentifier = RuntimeFreezeReason;
	type MaxFreezes = ConstU32<8>;
	type RuntimeHoldReason = RuntimeHoldReason;
	type RuntimeFreezeReason = RuntimeFreezeReason;
	type DoneSlashHandler = ();
}

parameter_types! {
	pub FeeMultiplier: Multiplier = Multiplier::one();
}

impl pallet_transaction_payment::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type OnChargeTransaction = FungibleAdapter<Balances, DealWithFees<Runtime>>;
	type OperationalFeeMultiplier = ConstU8<5>;
	// 10 plancks per unit of ref-time: a transfer costs on the order of 2 milli-BLY.
	type WeightToFee = ConstantMultiplier<Balance, ConstU128<10>>;
	// One micro-BLY per byte.
	type LengthToFee = ConstantMultiplier<Balance, ConstU128<MICRO_BLY>>;
	type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
	type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_authorship::Config for Runtime {
	type FindAuthor = pallet_session::FindAccountFromAuthorIndex<Self, Babe>;
	// Authored blocks earn era points for staking rewards.
	type EventHandler = (Staking,);
}

/// Upper bound on validators; also bounds the BABE and GRANDPA authority sets.
pub const MAX_AUTHORITIES: u32 = 100;

parameter_types! {
	/// A BABE epoch is a session: validator sets change, and the epoch randomness is renewed,
	/// at the same points.
	pub const EpochDuration: u64 = SESSION_PERIOD as u64;
	pub const ExpectedBlockTime: Moment = MILLISECS_PER_BLOCK;
}

impl pallet_babe::Config for Runtime {
	type EpochDuration = EpochDuration;
	type ExpectedBlockTime = ExpectedBlockTime;
	// Sessions end epochs (`Session::ShouldEndSession = Babe`), so the two stay aligned.
	type EpochChangeTrigger = pallet_babe::ExternalTrigger;
	type DisabledValidators = Session;
	type WeightInfo = ();
	type MaxAuthorities = ConstU32<MAX_AUTHORITIES>;
	type MaxNominators = MaxNominators;
	type KeyOwnerProof = <Historical as KeyOwnerProofSystem<(KeyTypeId, BabeId)>>::Proof;
	// Equivocations (two blocks in one slot) are offences, slashed by staking as GRANDPA's are.
	type EquivocationReportSystem =
		pallet_babe::EquivocationReportSystem<Self, Offences, Historical, ReportLongevity>;
}

parameter_types! {
	/// How long (in blocks) an equivocation report stays valid in the pool.
	pub const ReportLongevity: u64 =
		BondingDuration::get() as u64 * SessionsPerEra::get() as u64 * SESSION_PERIOD as u64;
	pub const MaxSetIdSessionEntries: u64 = BondingDuration::get() as u64 * SessionsPerEra::get() as u64;
}

impl pallet_grandpa::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = ();
	type MaxAuthorities = ConstU32<MAX_AUTHORITIES>;
	type MaxNominators = MaxNominators;
	type MaxSetIdSessionEntries = MaxSetIdSessionEntries;
	type KeyOwnerProof = <Historical as KeyOwnerProofSystem<(KeyTypeId, GrandpaId)>>::Proof;
	// Equivocations are reported as offences; staking slashes the offender.
	type EquivocationReportSystem =
		pallet_grandpa::EquivocationReportSystem<Self, Offences, Historical, ReportLongevity>;
}

impl pallet_session::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type ValidatorId = AccountId;
	// A validator's stash is its identity: there are no separate controller accounts.
	type ValidatorIdOf = sp_runtime::traits::ConvertInto;
	type ShouldEndSession = Babe;
	type NextSessionRotation = Babe;
	type SessionManager = pallet_session::historical::NoteHistoricalRoot<Self, Staking>;
	type SessionHandler = <SessionKeys as sp_runtime::traits::OpaqueKeys>::KeyTypeIdProviders;
	type Keys = SessionKeys;
	type DisablingStrategy = pallet_session::disabling::UpToLimitWithReEnablingDisablingStrategy;
	type WeightInfo = pallet_session::weights::SubstrateWeight<Runtime>;
	type Currency = Balances;
	type KeyDeposit = ();
}

impl pallet_session::historical::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type FullIdentification = ();
	type FullIdentificationOf = pallet_staking::UnitIdentificationOf<Self>;
}

impl pallet_offences::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type IdentificationTuple = pallet_session::historical::IdentificationTuple<Self>;
	type OnOffenceHandler = Staking;
}

parameter_types! {
	pub const SessionsPerEra: sp_staking::SessionIndex = SESSIONS_PER_ERA;
	/// Eras a stash waits after `unbond` before `withdraw_unbonded` frees it.
	pub const BondingDuration: sp_staking::EraIndex = 24;
	/// Slashes are applied this many eras after the offence, leaving time to cancel an unjust one.
	pub const SlashDeferDuration: sp_staking::EraIndex = 6;
	pub const MaxNominators: u32 = 512;
	pub const MaxExposurePageSize: u32 = 256;
	pub const HistoryDepth: u32 = 84;
	pub const MaxActiveValidators: u32 = MAX_AUTHORITIES;
}

/// Validators are elected on chain, in the block that ends an era, by sequential Phragmén.
pub struct OnChainSeqPhragmen;
impl frame_election_provider_support::onchain::Config for OnChainSeqPhragmen {
	type Sort = ConstBool<true>;
	type System = Runtime;
	type Solver = frame_election_provider_support::SequentialPhragmen<AccountId, Perbill>;
	type DataProvider = Staking;
	type WeightInfo = frame_election_provider_support::weights::SubstrateWeight<Runtime>;
	type MaxBackersPerWinner = MaxNominators;
	type MaxWinnersPerPage = MaxActiveValidators;
	type Bounds = election::ElectionBounds;
}

/// Sizes used when benchmarking `pallet-staking` on this runtime.
pub struct StakingBenchmarkingConfig;
impl pallet_staking::BenchmarkingConfig for StakingBenchmarkingConfig {
	type MaxValidators = ConstU32<MAX_AUTHORITIES>;
	type MaxNominators = MaxNominators;
}

impl pallet_staking::Config for Runtime {
	type OldCurrency = Balances;
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type CurrencyBalance = Balance;
	type UnixTime = pallet_timestamp::Pallet<Runtime>;
	type CurrencyToVote = sp_staking::currency_to_vote::U128CurrencyToVote;
	type ElectionProvider =
		frame_election_provider_support::onchain::OnChainExecution<OnChainSeqPhragmen>;
	type GenesisElectionProvider = Self::ElectionProvider;
	type NominationsQuota = pallet_staking::FixedNominationsQuota<{ election::MAX_NOMINATIONS }>;
	type HistoryDepth = HistoryDepth;
	// Inflation not paid to validators goes to the mining-reward pool.
	type RewardRemainder =
		frame_support::traits::tokens::imbalance::ResolveTo<MiningPoolAccount, Balances>;
	type RuntimeEvent = RuntimeEvent;
	// Slashed stake is burned.
	type Slash = ();
	type Reward = ();
	type SessionsPerEra = SessionsPerEra;
	type BondingDuration = BondingDuration;
	type SlashDeferDuration = SlashDeferDuration;
	type AdminOrigin = frame_system::EnsureRoot<AccountId>;
	type SessionInterface = Self;
	type EraPayout = BlyanEraPayout;
	type NextNewSession = Session;
	type MaxExposurePageSize = MaxExposurePageSize;
	type MaxValidatorSet = MaxActiveValidators;
	// Voters sorted by stake, so the election's bound keeps the most staked (see `election`).
	type VoterList = VoterList;
	// Not sorted: every candidate is a target, their number capped by `MaxValidatorsCount`.
	type TargetList = pallet_staking::UseValidatorsMap<Self>;
	type MaxUnlockingChunks = ConstU32<32>;
	type MaxControllersInDeprecationBatch = ConstU32<100>;
	type EventListeners = ();
	type Filter = frame_support::traits::Nothing;
	type BenchmarkingConfig = StakingBenchmarkingConfig;
	type WeightInfo = pallet_staking::weights::SubstrateWeight<Runtime>;
}

impl pallet_bags_list::Config<pallet_bags_list::Instance1> for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = pallet_bags_list::weights::SubstrateWeight<Runtime>;
	type ScoreProvider = Staking;
	type BagThresholds = election::BagThresholds;
	// Stake changes (rewards, slashes) move voters between bags: a few per block in `on_idle`,
	// besides the permissionless `rebag` call.
	type MaxAutoRebagPerBlock = ConstU32<5>;
	type Score = frame_election_provider_support::VoteWeight;
}

impl pallet_utility::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type PalletsOrigin = crate::OriginCaller;
	type WeightInfo = pallet_utility::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

/// Unsigned transactions the runtime creates itself (GRANDPA equivocation reports).
impl<C> frame_system::offchain::CreateTransactionBase<C> for Runtime
where
	RuntimeCall: From<C>,
{
	type Extrinsic = crate::UncheckedExtrinsic;
	type RuntimeCall = RuntimeCall;
}

impl<C> frame_system::offchain::CreateBare<C> for Runtime
where
	RuntimeCall: From<C>,
{
	fn create_bare(call: RuntimeCall) -> crate::UncheckedExtrinsic {
		crate::UncheckedExtrinsic::new_bare(call)
	}
}

parameter_types! {
	/// Holds the 40 % of genesis BLY reserved for rewarding useful learning, and receives the
	/// share of inflation that is not paid to validators.
	pub const MiningPoolPalletId: PalletId = PalletId(*b"bly/mine");
	/// Foundation allocation (20 % of genesis).
	pub const FoundationPalletId: PalletId = PalletId(*b"bly/fndn");
	/// Team allocation (15 % of genesis).
	pub const TeamPalletId: PalletId = PalletId(*b"bly/team");
	/// Community allocation (25 % of genesis, less what dev presets give to test accounts).
	pub const CommunityPalletId: PalletId = PalletId(*b"bly/cmty");
	pub MiningPoolAccount: AccountId = accounts::mining_pool();
}

/// The named genesis accounts: keyless accounts derived from their pallet ids.
pub mod accounts {
	use super::*;
	use sp_runtime::traits::AccountIdConversion;

	/// Mining-reward pool.
	pub fn mining_pool() -> AccountId {
		MiningPoolPalletId::get().into_account_truncating()
	}
	/// Foundation.
	pub fn foundation() -> AccountId {
		FoundationPalletId::get().into_account_truncating()
	}
	/// Team.
	pub fn team() -> AccountId {
		TeamPalletId::get().into_account_truncating()
	}
	/// Community.
	pub fn community() -> AccountId {
		CommunityPalletId::get().into_account_truncating()
	}
}
