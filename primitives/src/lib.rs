//! Types and constants shared by every Blyan crate: the runtime, its pallets, the node and the worker.
//!
//! Keeping them here (not in the runtime) lets off-chain code agree with the chain on units and
//! timing without compiling the runtime.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use sp_runtime::{
	traits::{IdentifyAccount, Verify},
	MultiSignature,
};

/// Block height.
pub type BlockNumber = u32;
/// Signature scheme of extrinsics (sr25519, ed25519 or ecdsa).
pub type Signature = MultiSignature;
/// An account: the public key behind [`Signature`].
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// An amount of BLY in its smallest unit (plancks).
pub type Balance = u128;
/// Transaction index of an account.
pub type Nonce = u32;
/// Block and state hashes.
pub type Hash = sp_core::H256;
/// Milliseconds since the Unix epoch.
pub type Moment = u64;

/// The BLY token.
pub mod currency {
	use super::Balance;

	/// Ticker shown by wallets (`system_properties.tokenSymbol`).
	pub const TOKEN_SYMBOL: &str = "BLY";
	/// Decimal places of one BLY (`system_properties.tokenDecimals`).
	pub const TOKEN_DECIMALS: u8 = 12;
	/// One BLY in plancks.
	pub const BLY: Balance = 10u128.pow(TOKEN_DECIMALS as u32);
	/// 10^-3 BLY.
	pub const MILLI_BLY: Balance = BLY / 1_000;
	/// 10^-6 BLY.
	pub const MICRO_BLY: Balance = MILLI_BLY / 1_000;
	/// Total issuance at genesis: one billion BLY.
	pub const GENESIS_SUPPLY: Balance = 1_000_000_000 * BLY;
	/// Smallest balance an account may hold; below it the account is reaped.
	pub const EXISTENTIAL_DEPOSIT: Balance = MILLI_BLY;
	/// Deposit held per storage entry an account makes the chain keep.
	pub const DEPOSIT_PER_ITEM: Balance = 100 * MILLI_BLY;
	/// Deposit held per byte of those entries: a gigabyte of state locks a million BLY
	/// (0.1 % of the genesis supply).
	pub const DEPOSIT_PER_BYTE: Balance = MILLI_BLY;

	/// The deposit for `items` storage entries of `bytes` bytes in all.
	pub const fn deposit(items: u32, bytes: u32) -> Balance {
		items as Balance * DEPOSIT_PER_ITEM + bytes as Balance * DEPOSIT_PER_BYTE
	}
	/// SS58 address prefix (42: the generic Substrate prefix, understood by every wallet).
	pub const SS58_PREFIX: u16 = 42;

	/// Genesis split of [`GENESIS_SUPPLY`], in percent; the four shares add up to 100.
	pub const MINING_POOL_PERCENT: u128 = 40;
	/// Foundation share of the genesis supply, in percent.
	pub const FOUNDATION_PERCENT: u128 = 20;
	/// Team share of the genesis supply, in percent.
	pub const TEAM_PERCENT: u128 = 15;
	/// Community share of the genesis supply, in percent.
	pub const COMMUNITY_PERCENT: u128 = 25;

	/// Share of each transaction's base fee that is burned, in percent; the rest, and every tip,
	/// goes to the block author. All of it: fees are deflationary, and validators are paid from
	/// inflation (staking rewards) and tips.
	pub const FEE_BURN_PERCENT: u32 = 100;
}

/// Block and session timing.
pub mod time {
	use super::BlockNumber;

	/// Target block time. One-second slots keep the median submission-to-finality under two
	/// seconds on a small validator set (see docs/benchmarks.md for what was measured).
	pub const MILLISECS_PER_BLOCK: u64 = 1_000;
	/// BABE slot length; equal to the block time.
	pub const SLOT_DURATION: u64 = MILLISECS_PER_BLOCK;

	/// Blocks per minute.
	pub const MINUTES: BlockNumber = 60_000 / (MILLISECS_PER_BLOCK as BlockNumber);
	/// Blocks per hour.
	pub const HOURS: BlockNumber = MINUTES * 60;
	/// Blocks per day.
	pub const DAYS: BlockNumber = HOURS * 24;

	/// Length of a session (validator key rotation point).
	pub const SESSION_PERIOD: BlockNumber = 10 * MINUTES;
	/// Sessions per staking era (validator election and reward payout).
	pub const SESSIONS_PER_ERA: u32 = 6;
}

pub mod audit;
pub mod deadlines;
pub mod federated;
pub mod inference;
pub mod merkle;
pub mod params;
pub mod pol;
#[cfg(feature = "test-fixtures")]
pub mod testing;
pub mod training;

#[cfg(test)]
mod tests {
	use super::currency::*;

	#[test]
	fn genesis_split_adds_up_to_the_whole_supply() {
		assert_eq!(
			MINING_POOL_PERCENT + FOUNDATION_PERCENT + TEAM_PERCENT + COMMUNITY_PERCENT,
			100
		);
		assert_eq!(GENESIS_SUPPLY, 1_000_000_000_000_000_000_000);
	}
}
