//! The Blyan runtime.
//!
//! Proof-of-stake block production (BABE slots among the validators elected by `pallet-staking`),
//! GRANDPA finality with equivocation reporting into offences and slashing, and the BLY token
//! (`pallet-balances`) whose transaction fees are partly burned and partly paid to the block author.
#![cfg_attr(not(feature = "std"), no_std)]
// `construct_runtime` expands to a deep type.
#![recursion_limit = "256"]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

pub mod apis;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;
pub mod configs;
pub mod genesis_config_presets;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use sp_runtime::{generic, impl_opaque_keys};
use sp_version::RuntimeVersion;

pub use blyan_primitives::{
	currency, time, AccountId, Balance, BlockNumber, Hash, Moment, Nonce, Signature,
};
pub use frame_support::traits::Get;
pub use pallet_balances::Call as BalancesCall;
pub use sp_runtime::{Perbill, Permill};

/// Opaque types: what the node sees of blocks without knowing the runtime's call types.
pub mod opaque {
	use super::*;
	use sp_runtime::traits::{BlakeTwo256, Hash as HashT};

	pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;

	/// Opaque block header type.
	pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
	/// Opaque block type.
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;
	/// Opaque block identifier type.
	pub type BlockId = generic::BlockId<Block>;
	/// Opaque block hash type.
	pub type Hash = <BlakeTwo256 as HashT>::Output;
}

/// BABE's parameters at genesis: a slot has a primary (VRF lottery) author with probability
/// 1/4, and every slot without one has a secondary author who still signs a VRF output, so each
/// block carries randomness its author could not choose (the committee draws rely on it).
pub const BABE_GENESIS_EPOCH_CONFIG: sp_consensus_babe::BabeEpochConfiguration =
	sp_consensus_babe::BabeEpochConfiguration {
		c: (1, 4),
		allowed_slots: sp_consensus_babe::AllowedSlots::PrimaryAndSecondaryVRFSlots,
	};

impl_opaque_keys! {
	/// Session keys of a validator: one for block production, one for finality votes.
	pub struct SessionKeys {
		pub babe: Babe,
		pub grandpa: Grandpa,
	}
}

// Bump `spec_version` on every change of runtime logic; a runtime upgrade needs a higher value.
// The version macro takes literals only, hence two copies: `next-spec-version` builds this same
// runtime one `spec_version` higher (runtime/next: the code the runtime-upgrade test enacts).
#[cfg(not(feature = "next-spec-version"))]
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("blyan"),
	impl_name: alloc::borrow::Cow::Borrowed("blyan-node"),
	authoring_version: 1,
	spec_version: 117,
	impl_version: 1,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 6,
	system_version: 1,
};

#[cfg(feature = "next-spec-version")]
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("blyan"),
	impl_name: alloc::borrow::Cow::Borrowed("blyan-node"),
	authoring_version: 1,
	spec_version: 118,
	impl_version: 1,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 6,
	system_version: 1,
};

/// Block header type.
pub type Header = generic::Header<BlockNumber, sp_runtime::traits::BlakeTwo256>;
/// Block type.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;
/// The address format for referring to accounts.
pub type Address = sp_runtime::MultiAddress<AccountId, ()>;

/// Checks every signed transaction goes through, in order.
pub type TxExtension = (
	frame_system::CheckNonZeroSender<Runtime>,
	frame_system::CheckSpecVersion<Runtime>,
	frame_system::CheckTxVersion<Runtime>,
	frame_system::CheckGenesis<Runtime>,
	frame_system::CheckEra<Runtime>,
	frame_system::CheckNonce<Runtime>,
	frame_system::CheckWeight<Runtime>,
	// The fee extension, except that free-tier requests within quota pay nothing (and beyond it
	// are refused in the pool). Same identifier and encoding as `ChargeTransactionPayment`.
	pallet_free_tier::ChargeUnlessFree<
		Runtime,
		pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
	>,
	frame_system::WeightReclaim<Runtime>,
);

/// The transaction extensions a client attaches to a signed transaction: immortal, with `nonce` and
/// `tip`. Clients sign `SignedPayload::new(call, tx_extension(..))` (or `from_raw` off chain).
pub fn tx_extension(nonce: Nonce, tip: Balance) -> TxExtension {
	(
		frame_system::CheckNonZeroSender::new(),
		frame_system::CheckSpecVersion::new(),
		frame_system::CheckTxVersion::new(),
		frame_system::CheckGenesis::new(),
		frame_system::CheckEra::from(sp_runtime::generic::Era::Immortal),
		frame_system::CheckNonce::from(nonce),
		frame_system::CheckWeight::new(),
		pallet_transaction_payment::ChargeTransactionPayment::from(tip).into(),
		frame_system::WeightReclaim::new(),
	)
}

/// Unchecked extrinsic type as expected by this runtime.
pub type UncheckedExtrinsic =
	generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
/// The payload being signed in transactions.
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;

/// Storage migrations to run on runtime upgrades, each once: gated on its pallet's on-chain
/// storage version, or (`InitStakingLimits`) on the staking limits being unset; a chain built from
/// genesis starts at the current versions, with the limits set.
type Migrations = (
	pallet_free_tier::migrations::MigrateV0ToV1<Runtime>,
	configs::election::InitStakingLimits,
	pallet_jobs::migrations::MigrateV0ToV2<Runtime>,
	pallet_jobs::migrations::MigrateV1ToV2<Runtime>,
	pallet_inference::migrations::MigrateV0ToV1<Runtime>,
);

/// Executive: dispatches blocks and extrinsics to the pallets.
pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
	Migrations,
>;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Runtime;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Timestamp = pallet_timestamp;
	#[runtime::pallet_index(2)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(3)]
	pub type TransactionPayment = pallet_transaction_payment;
	#[runtime::pallet_index(4)]
	pub type Vesting = pallet_vesting;

	// Consensus. Hooks run in pallet-index order: `Session` (14) rotates, and has BABE change
	// epochs, before `Authorship` (18) finds the author, because a BABE author signs with its
	// index in the new epoch's set in the block that starts it; `Babe` (15) before the
	// Proof-of-Learning pallets (40–46), whose draws read this block's VRF output.
	#[runtime::pallet_index(11)]
	pub type Staking = pallet_staking;
	#[runtime::pallet_index(12)]
	pub type Offences = pallet_offences;
	#[runtime::pallet_index(13)]
	pub type Historical = pallet_session::historical;
	#[runtime::pallet_index(14)]
	pub type Session = pallet_session;
	#[runtime::pallet_index(15)]
	pub type Babe = pallet_babe;
	#[runtime::pallet_index(16)]
	pub type Grandpa = pallet_grandpa;
	/// Staking's voters sorted by stake, for bounded elections.
	#[runtime::pallet_index(17)]
	pub type VoterList = pallet_bags_list<Instance1>;
	#[runtime::pallet_index(18)]
	pub type Authorship = pallet_authorship;

	#[runtime::pallet_index(20)]
	pub type Utility = pallet_utility;
	// Development only: the `dev` preset sets a key; `local`, `local4` and any chain spec
	// without a key have no sudo, only governance.
	#[runtime::pallet_index(30)]
	pub type Sudo = pallet_sudo;

	// Proof-of-Learning.
	#[runtime::pallet_index(40)]
	pub type Registry = pallet_model_registry;
	#[runtime::pallet_index(41)]
	pub type Jobs = pallet_jobs;
	#[runtime::pallet_index(42)]
	pub type PolRewards = pallet_pol_rewards;
	#[runtime::pallet_index(43)]
	pub type FreeTier = pallet_free_tier;
	#[runtime::pallet_index(44)]
	pub type Inference = pallet_inference;
	#[runtime::pallet_index(45)]
	pub type Federated = pallet_federated;
	#[runtime::pallet_index(46)]
	pub type TrainingAudit = pallet_training_audit;

	// Governance.
	#[runtime::pallet_index(50)]
	pub type Preimage = pallet_preimage;
	#[runtime::pallet_index(51)]
	pub type Scheduler = pallet_scheduler;
	#[runtime::pallet_index(52)]
	pub type Referenda = pallet_referenda;
	#[runtime::pallet_index(53)]
	pub type ConvictionVoting = pallet_conviction_voting;
	#[runtime::pallet_index(54)]
	pub type Governance = pallet_governance;
}
