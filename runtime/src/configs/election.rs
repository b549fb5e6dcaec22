//! Bounds on the validator election, so that the era-change block cannot be stalled.
//!
//! The election runs on chain (`OnChainExecution` with sequential Phragmén) inside the block
//! that ends an era, on 1 s blocks of half a second of weight. Its cost grows with the voters it
//! reads, so:
//! - voters are kept sorted by stake in a bags list (`pallet-bags-list`, the `VoterList`) and the
//!   election reads only the [`MAX_ELECTING_VOTERS`] with the most stake: a flood of small
//!   nominators can neither make the election heavier nor push stake out of it;
//! - bonding is gated by minimum bonds and the number of nominators and validator candidates is
//!   capped (`pallet-staking`'s `MinNominatorBond`, `MinValidatorBond`, `MaxNominatorsCount`,
//!   `MaxValidatorsCount`), set at genesis and by [`InitStakingLimits`] on a running chain;
//! - the voter bound is sized from the benchmarked weights of the snapshot and of Phragmén
//!   ([`election_weight`]): at the bound the election takes at most [`ELECTION_BLOCK_SHARE`] of
//!   a block (runtime test `the_election_at_its_bounds_fits_in_one_block`).

use crate::currency::{BLY, GENESIS_SUPPLY};
use crate::{AccountId, Balance, Runtime, Staking, VoterList};
use frame_election_provider_support::{SortedListProvider, VoteWeight};
use frame_support::{parameter_types, traits::OnRuntimeUpgrade, weights::Weight};
use sp_runtime::Perbill;

/// Stake a nominator must bond: below it `nominate` fails with `InsufficientBond`.
pub const MIN_NOMINATOR_BOND: Balance = 100 * BLY;
/// Stake a validator candidate must bond: below it `validate` fails with `InsufficientBond`.
pub const MIN_VALIDATOR_BOND: Balance = 10_000 * BLY;
/// Nominators the chain stores at most (`TooManyNominators` beyond): a bound on state, not on
/// the election, which reads only the [`MAX_ELECTING_VOTERS`] with the most stake.
pub const MAX_NOMINATORS: u32 = 10_000;
/// Validator candidates at most (`TooManyValidators` beyond). Every candidate is an election
/// target (the target list is not sorted), so this is also the election's target bound: staking
/// refuses a target snapshot above it ("Target snapshot too big") and the era's election fails.
/// Root must therefore never raise `MaxValidatorsCount` above it without raising this bound (a
/// runtime upgrade re-sized by `election_weight`); `InitStakingLimits` checks it.
pub const MAX_VALIDATOR_CANDIDATES: u32 = 100;
/// Voters (nominators and validators' self-votes) an election reads, highest stake first.
pub const MAX_ELECTING_VOTERS: u32 = 1_000;
// More nominators may bond than an election reads: the bags list decides who is read.
const _: () = assert!(MAX_NOMINATORS > MAX_ELECTING_VOTERS);
/// Nominations per nominator (`FixedNominationsQuota`), the edges per voter of the election.
pub const MAX_NOMINATIONS: u32 = 16;
/// The share of a block's weight the election may take at its bounds: the era-change block
/// still has the rest for its other hooks and mandatory work.
pub const ELECTION_BLOCK_SHARE: Perbill = Perbill::from_percent(75);

parameter_types! {
	pub ElectionBounds: frame_election_provider_support::bounds::ElectionBounds =
		frame_election_provider_support::bounds::ElectionBoundsBuilder::default()
			.voters_count(MAX_ELECTING_VOTERS.into())
			.targets_count(MAX_VALIDATOR_CANDIDATES.into())
			.build();
	pub const BagThresholds: &'static [VoteWeight] = &BAG_THRESHOLDS;
}

/// The weight of one election with `voters` voters (of which `targets` are validators voting
/// for themselves) and `targets` candidates: the staking snapshot plus sequential Phragmén, at
/// the weights polkadot-sdk benchmarked for both in wasm on its reference hardware.
pub fn election_weight(voters: u32, targets: u32) -> Weight {
	use frame_election_provider_support::WeightInfo as _;
	use pallet_staking::WeightInfo as _;
	type StakingWeights = <Runtime as pallet_staking::Config>::WeightInfo;
	type SolverWeights =
		<super::OnChainSeqPhragmen as frame_election_provider_support::onchain::Config>::WeightInfo;
	let nominators = voters.saturating_sub(targets);
	StakingWeights::get_npos_voters(targets, nominators)
		.saturating_add(StakingWeights::get_npos_targets(targets))
		.saturating_add(SolverWeights::phragmen(voters, targets, MAX_NOMINATIONS))
}

// --- The bags of the voter list.

/// The upper bound of the first bag: the vote weight of [`MIN_NOMINATOR_BOND`] at the genesis
/// supply (`U128CurrencyToVote` divides balances by `issuance / u64::MAX`), below which only
/// dust can be.
const FIRST_BAG: VoteWeight =
	(MIN_NOMINATOR_BOND / (GENESIS_SUPPLY / VoteWeight::MAX as u128)) as VoteWeight;

/// Each bag's bound is 9/8 of the one below: within a bag voters are in insertion order, so an
/// election cut inside a bag can prefer a voter with at most 12.5 % less stake.
const fn next_bag(bound: VoteWeight) -> Option<VoteWeight> {
	let step = if bound / 8 == 0 { 1 } else { bound / 8 };
	bound.checked_add(step)
}

const fn bag_count() -> usize {
	let (mut bound, mut count) = (FIRST_BAG, 1);
	while let Some(next) = next_bag(bound) {
		bound = next;
		count += 1;
	}
	count
}

/// The bags' upper bounds, strictly increasing; the last bag's bound is implied (`u64::MAX`).
pub static BAG_THRESHOLDS: [VoteWeight; bag_count()] = {
	let mut bounds = [0; bag_count()];
	let (mut bound, mut i) = (FIRST_BAG, 0);
	loop {
		bounds[i] = bound;
		i += 1;
		match next_bag(bound) {
			Some(next) if i < bounds.len() => bound = next,
			_ => break,
		}
	}
	bounds
};

// --- Putting the limits on a chain that started without them.

/// Sets the staking limits above and puts every bonded voter into the bags list, on a chain
/// started before both (before spec_version 108): recognised by voters bonded while the bags list
/// is empty, a state the bags list never returns to (validators are always bonded), so this runs
/// once and governance's later changes to the limits stay. To be removed from `Migrations` once
/// every chain is past 108. It reads every voter: such a chain had no cap on them, but a
/// pre-launch one has only its genesis validators and test nominators.
pub struct InitStakingLimits;

impl InitStakingLimits {
	fn needed() -> bool {
		<VoterList as SortedListProvider<AccountId>>::count() == 0
			&& (pallet_staking::Validators::<Runtime>::count() > 0
				|| pallet_staking::Nominators::<Runtime>::count() > 0)
	}
}

impl OnRuntimeUpgrade for InitStakingLimits {
	fn on_runtime_upgrade() -> Weight {
		let db = <Runtime as frame_system::Config>::DbWeight::get();
		if !Self::needed() {
			return db.reads(3);
		}
		pallet_staking::MinNominatorBond::<Runtime>::put(MIN_NOMINATOR_BOND);
		pallet_staking::MinValidatorBond::<Runtime>::put(MIN_VALIDATOR_BOND);
		pallet_staking::MaxNominatorsCount::<Runtime>::put(MAX_NOMINATORS);
		pallet_staking::MaxValidatorsCount::<Runtime>::put(MAX_VALIDATOR_CANDIDATES);
		let voters: alloc::vec::Vec<AccountId> = pallet_staking::Nominators::<Runtime>::iter_keys()
			.chain(pallet_staking::Validators::<Runtime>::iter_keys())
			.collect();
		let count = voters.len() as u64;
		<VoterList as SortedListProvider<AccountId>>::unsafe_regenerate(
			voters,
			alloc::boxed::Box::new(|who| Some(Staking::weight_of(who))),
		);
		// Per voter: its key, `Bonded` and `Ledger` for the score, then the bag and the bag's
		// tail read and the node, the old tail and the bag written; plus the counter.
		db.reads_writes(3 + 5 * count, 5 + 3 * count)
	}

	#[cfg(feature = "try-runtime")]
	fn pre_upgrade() -> Result<alloc::vec::Vec<u8>, sp_runtime::TryRuntimeError> {
		use codec::Encode;
		Ok(Self::needed().encode())
	}

	#[cfg(feature = "try-runtime")]
	fn post_upgrade(state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
		use codec::Decode;
		let was_needed = bool::decode(&mut &state[..]).map_err(|_| "pre_upgrade state")?;
		let voters = pallet_staking::Nominators::<Runtime>::count()
			.saturating_add(pallet_staking::Validators::<Runtime>::count());
		frame_support::ensure!(
			<VoterList as SortedListProvider<AccountId>>::count() == voters,
			"every voter is in the bags list"
		);
		if was_needed {
			frame_support::ensure!(
				pallet_staking::MaxNominatorsCount::<Runtime>::get() == Some(MAX_NOMINATORS),
				"the nominator cap is set"
			);
		}
		// The election's target bound holds every candidate (see `MAX_VALIDATOR_CANDIDATES`).
		frame_support::ensure!(
			pallet_staking::Validators::<Runtime>::count() <= MAX_VALIDATOR_CANDIDATES
				&& pallet_staking::MaxValidatorsCount::<Runtime>::get()
					.is_some_and(|max| max <= MAX_VALIDATOR_CANDIDATES),
			"every validator candidate fits in the election's target bound"
		);
		Ok(())
	}
}
