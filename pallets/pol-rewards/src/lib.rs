//! # Proof-of-Learning rewards
//!
//! A revealed job result is verified by a committee of bonded verifiers, drawn stake-weighted
//! with randomness from a block after the reveal (so unknown when the job was claimed, and not
//! chosen by the miner). Each member evaluates the base and the candidate version on the
//! revealed validation set, commits to the two fixed-point scores, then reveals them. The
//! miner's own score of the candidate arrives as a commitment only ([`claim_commitment`]); the
//! miner reveals it once the commitments are closed (`reveal_claim`), so no member can copy
//! it instead of evaluating. At least two thirds of the committee revealing the same pair
//! decide:
//!
//! - **accepted** (the candidate improves the base by the job's threshold and the miner
//!   revealed a claimed score exactly the quorum's): the registry accepts the version; from the escrow,
//!   `verifier_fee` goes to the quorum in equal parts, `dataset_share` to the dataset owner and
//!   the rest to the miner. If the job's model is admitted to epoch rewards (by governance,
//!   [`Pallet::admit_model`]) and the job started from that model's head (the version the last
//!   rewarded improvement produced), the miner earns points (improvement × reward, the reward
//!   counted up to [`Config::PointsEscrowCap`]) and the candidate becomes the head; points are
//!   paid from the mining pool's epoch budget in proportion to the epoch's points, at most
//!   [`Config::MaxEpochShare`] of it to one miner;
//! - **rejected** (too little improvement, or a claim missing or not the quorum's): the registry
//!   rejects the version, `miner_slash` of the miner's bond is burned and the escrow returns to
//!   the creator;
//! - **creator at fault** (the quorum scored even the base [`INVALID_SCORE`]: the creator's
//!   validation set or hyper-parameters cannot be evaluated on; or scored it 0, a loss nothing
//!   can improve on): the version is rejected, the
//!   escrow is paid out as for an accepted job and the creator's bond goes to the miner too;
//!   no epoch points.
//!
//! Members outside the quorum, and silent members, lose `verifier_penalty` of their bond
//! (burned). Without a quorum the committee is redrawn once; if the second committee has none
//! either, the job is refunded and nobody but silent members is slashed.
//!
//! Phases advance on their deadlines from an index of deadlines by block, a bounded number a
//! block (a crowded block is finished in the next ones), or early when every member (and, for
//! the reveals, the miner) has acted.
//! A commit or reveal after its phase's deadline is refused.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(any(feature = "try-runtime", feature = "test-fixtures", test))]
mod invariants;
#[cfg(test)]
mod mock;
#[cfg(any(feature = "test-fixtures", test))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod weights;
pub use weights::WeightInfo;

use alloc::vec::Vec;
use blyan_primitives::audit::{VerifierDuty, VerifierSet};
use blyan_primitives::deadlines::drain_due;
use blyan_primitives::params::GovernedParams;
/// The commitments a miner and a verifier post, defined once for the pallets and the worker.
pub use blyan_primitives::pol::{claim_commitment, score_commitment};
use blyan_primitives::pol::{
	ContributionObserver, JobId, JobSettlement, ModelId, ModelRegistry, Score,
	VerificationProvider, VerificationRequest, VersionAcceptance, VersionId, VersionStatus,
	INVALID_SCORE,
};
use codec::{Decode, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, InspectHold, Mutate, MutateHold},
		tokens::{Fortitude, Precision, Preservation},
		Randomness,
	},
};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::{
	traits::{BlakeTwo256, Hash as _, Saturating, UniqueSaturatedInto, Zero},
	DispatchError, DispatchResult, Perbill,
};

pub type BalanceOf<T> =
	<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// Largest committee the protocol allows.
pub const MAX_COMMITTEE: u32 = 16;

/// How often a draw short of eligible verifiers is tried again (every `reveal_window` blocks)
/// before the job is refunded.
pub const MAX_DRAW_RETRIES: u8 = 6;

/// Index of a reward epoch, counted from [`EpochBase`] in steps of `epoch_length`.
pub type EpochIndex = u32;

/// A bonded verifier.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct VerifierInfo<Balance, BlockNumber> {
	/// Held under [`HoldReason::VerifierBond`]; the draw weight.
	pub bond: Balance,
	/// Set by `unregister_verifier`: the bond can be withdrawn from this block on.
	pub unbonding_until: Option<BlockNumber>,
}

/// A committee seat and what its holder has sent.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct Member<AccountId> {
	pub verifier: AccountId,
	pub commitment: Option<H256>,
	/// Revealed `(base_score, candidate_score)`.
	pub scores: Option<(Score, Score)>,
}

/// Phase of a verification round.
#[derive(Clone, Copy, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub enum Phase {
	/// Waiting for the block whose randomness draws the committee.
	Drawing,
	/// Members commit to their scores.
	Commit,
	/// Members reveal their scores.
	Reveal,
}

/// The verification of one job.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct Round<AccountId, BlockNumber> {
	pub request: VerificationRequest<AccountId>,
	/// The miner's claimed score, once revealed against `request.claim` (in a reveal phase).
	pub claimed_score: Option<Score>,
	/// 0 for the first committee, 1 after a redraw.
	pub attempt: u8,
	pub phase: Phase,
	/// When the current phase ends.
	pub deadline: BlockNumber,
	pub committee: BoundedVec<Member<AccountId>, ConstU32<MAX_COMMITTEE>>,
	/// Draws put off because too few verifiers were eligible (at most `MAX_DRAW_RETRIES`).
	pub draw_retries: u8,
}

/// Why an accepted job earned no epoch points.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	codec::DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum NoPointsReason {
	/// Governance has not admitted the job's model to epoch rewards: a model of the miner's or
	/// creator's own making would otherwise buy the epoch budget for the verifier fee.
	ModelNotRewarded,
	/// The job did not start from the model's head: its improvement was measured against an
	/// older version (or a sibling), so part or all of it was rewarded already.
	NotFromHead,
	/// The job's reward is below [`Config::MinPointsEscrow`]: too cheap to move the head.
	EscrowTooSmall,
}

/// Accepted improvement of one epoch, and what it pays.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct EpochInfo<Balance> {
	/// Sum of all miners' points: accepted improvement × escrowed reward.
	pub total_points: u128,
	/// Paid out of the mining pool, shared in proportion to points.
	pub budget: Balance,
	/// Miners who have not claimed yet; the record goes when this reaches zero.
	pub unclaimed: u32,
}

/// The pallet's parameters, set by governance (`pallet-governance` checks their bounds).
pub use blyan_primitives::params::PolParams;

/// Relative loss reduction from `base` to `candidate` (zero if none).
pub fn improvement(base: Score, candidate: Score) -> Perbill {
	if base == 0 || candidate >= base {
		return Perbill::zero();
	}
	Perbill::from_rational(base - candidate, base)
}

pub use blyan_primitives::pol::quorum;

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	/// The storage layout's version (0: the layout at launch): bumped, with a migration, on
	/// every change of layout.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A verifier's bond: its draw weight, slashable for dissent or silence.
		VerifierBond,
	}

	#[pallet::config]
	pub trait Config: frame_system::Config {
		type Currency: Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		type RuntimeHoldReason: From<HoldReason>;
		/// Dataset owners, and the only way to accept or reject a version.
		type Registry: ModelRegistry<Self::AccountId> + VersionAcceptance;
		/// Settles the job (escrow and miner bond) once a verdict is reached.
		type Jobs: JobSettlement<Self::AccountId, BalanceOf<Self>>;
		/// Draws committees. Evaluated in the block after the reveal.
		type Randomness: Randomness<Self::Hash, BlockNumberFor<Self>>;
		/// The account epoch rewards are paid from.
		type MiningPool: Get<Self::AccountId>;
		/// [`Params`] until governance changes them (through [`GovernedParams`]).
		type DefaultParams: Get<PolParams<BalanceOf<Self>, BlockNumberFor<Self>>>;
		/// Told of accepted improvements and honest verifications (the free tier's trust).
		type Contributions: ContributionObserver<Self::AccountId>;
		/// Admits models to epoch rewards and moves their heads. It decides whom the mining
		/// pool pays, so in the runtime it is root (a root-track referendum).
		type RewardOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Most models admitted to epoch rewards at once.
		#[pallet::constant]
		type MaxRewardedModels: Get<u32>;
		/// Most of a job's escrow that counts towards its epoch points: a large escrow between
		/// a creator and a miner who are one party costs only the verifier fee, so it must not
		/// buy a proportionally large share of the epoch.
		#[pallet::constant]
		type PointsEscrowCap: Get<BalanceOf<Self>>;
		/// Least escrow for a job to earn points and move its model's head: moving it leaves
		/// the jobs in flight from the old head without points, which must not be cheap.
		#[pallet::constant]
		type MinPointsEscrow: Get<BalanceOf<Self>>;
		/// Most of an epoch's budget one miner can claim; what is not claimed stays in the
		/// mining pool.
		#[pallet::constant]
		type MaxEpochShare: Get<Perbill>;
		/// Most registered verifiers (the draw is linear in this).
		#[pallet::constant]
		type MaxVerifiers: Get<u32>;
		/// Most rounds one verifier sits on at once.
		#[pallet::constant]
		type MaxAssignmentsPerVerifier: Get<u32>;
		/// Most phase deadlines processed in one block.
		#[pallet::constant]
		type MaxDeadlinesPerBlock: Get<u32>;
		type WeightInfo: WeightInfo;
	}

	#[pallet::storage]
	pub type Params<T: Config> =
		StorageValue<_, PolParams<BalanceOf<T>, BlockNumberFor<T>>, ValueQuery, T::DefaultParams>;

	#[pallet::storage]
	pub type Verifiers<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		VerifierInfo<BalanceOf<T>, BlockNumberFor<T>>,
		OptionQuery,
	>;

	/// Verifiers that can be drawn (registered and not unbonding).
	#[pallet::storage]
	pub type ActiveVerifiers<T: Config> =
		StorageValue<_, BoundedVec<T::AccountId, T::MaxVerifiers>, ValueQuery>;

	/// Rounds each verifier sits on.
	#[pallet::storage]
	pub type Assignments<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		BoundedVec<JobId, T::MaxAssignmentsPerVerifier>,
		ValueQuery,
	>;

	#[pallet::storage]
	pub type Rounds<T: Config> =
		StorageMap<_, Blake2_128Concat, JobId, Round<T::AccountId, BlockNumberFor<T>>, OptionQuery>;

	/// Rounds whose phase ends at a block.
	#[pallet::storage]
	pub type Deadlines<T: Config> =
		StorageDoubleMap<_, Twox64Concat, BlockNumberFor<T>, Twox64Concat, JobId, (), OptionQuery>;

	/// The first block of [`Deadlines`] not yet fully processed (zero: start at the current one).
	#[pallet::storage]
	pub type DeadlineCursor<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

	#[pallet::storage]
	pub type Epochs<T: Config> =
		StorageMap<_, Twox64Concat, EpochIndex, EpochInfo<BalanceOf<T>>, OptionQuery>;

	/// Where epoch numbering starts: `(first block, its epoch index)`. Moved when
	/// `epoch_length` changes, so that the change starts a new epoch.
	#[pallet::storage]
	pub type EpochBase<T: Config> = StorageValue<_, (BlockNumberFor<T>, EpochIndex), ValueQuery>;

	/// Accepted improvement points of each miner in each epoch, until claimed.
	#[pallet::storage]
	pub type EpochPoints<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		EpochIndex,
		Blake2_128Concat,
		T::AccountId,
		u128,
		OptionQuery,
	>;

	/// Models whose accepted improvements earn epoch points, each with its head: the version a
	/// job must start from to earn them (the last that did, or the one governance named).
	#[pallet::storage]
	pub type RewardedModels<T: Config> =
		CountedStorageMap<_, Twox64Concat, ModelId, VersionId, OptionQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		VerifierRegistered {
			verifier: T::AccountId,
			bond: BalanceOf<T>,
		},
		VerifierUnbonding {
			verifier: T::AccountId,
			until: BlockNumberFor<T>,
		},
		VerifierWithdrawn {
			verifier: T::AccountId,
			bond: BalanceOf<T>,
		},
		/// A revealed result awaits its committee draw.
		VerificationRequested {
			job: JobId,
			draw_at: BlockNumberFor<T>,
		},
		/// A committee was drawn; members commit by `commit_by`.
		CommitteeDrawn {
			job: JobId,
			attempt: u8,
			committee: Vec<T::AccountId>,
			commit_by: BlockNumberFor<T>,
		},
		ScoresCommitted {
			job: JobId,
			verifier: T::AccountId,
		},
		/// Commitments are closed; members reveal by `reveal_by`.
		RevealPhase {
			job: JobId,
			reveal_by: BlockNumberFor<T>,
		},
		ScoresRevealed {
			job: JobId,
			verifier: T::AccountId,
			base_score: Score,
			candidate_score: Score,
		},
		/// The miner revealed its claimed score (commitments were closed by then).
		ClaimRevealed {
			job: JobId,
			miner: T::AccountId,
			claimed_score: Score,
		},
		/// A quorum decided. `improvement` is the quorum's, `accepted` the verdict;
		/// `claimed_score` is `None` when the miner did not reveal its claim.
		Verified {
			job: JobId,
			accepted: bool,
			base_score: Score,
			candidate_score: Score,
			improvement: Perbill,
			claimed_score: Option<Score>,
		},
		/// A verifier lost part of its bond for a dissenting or missing reveal.
		VerifierPenalised {
			job: JobId,
			verifier: T::AccountId,
			amount: BalanceOf<T>,
		},
		/// Too few verifiers were eligible for a full committee; the draw is tried again.
		DrawPostponed {
			job: JobId,
			retry_at: BlockNumberFor<T>,
		},
		/// No quorum. With `redraw` a new committee will be drawn, otherwise the job is refunded.
		NoQuorum {
			job: JobId,
			redraw: bool,
		},
		/// A miner earned improvement points in an epoch.
		PointsEarned {
			epoch: EpochIndex,
			miner: T::AccountId,
			points: u128,
		},
		/// An accepted job earned no epoch points.
		NoPoints {
			job: JobId,
			reason: NoPointsReason,
		},
		EpochRewardPaid {
			epoch: EpochIndex,
			miner: T::AccountId,
			amount: BalanceOf<T>,
		},
		/// Improvements of `model` starting from `head` earn epoch points (admitted, or its head
		/// moved by governance).
		ModelAdmitted {
			model: ModelId,
			head: VersionId,
		},
		/// Improvements of `model` no longer earn epoch points.
		ModelRetired {
			model: ModelId,
		},
		ParamsSet {
			params: PolParams<BalanceOf<T>, BlockNumberFor<T>>,
		},
		/// A verifier lost part of its bond for a missing or dissenting report as an arbiter of
		/// an inference challenge.
		ArbiterPenalised {
			challenge: u32,
			verifier: T::AccountId,
			amount: BalanceOf<T>,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		AlreadyVerifier,
		NotVerifier,
		/// The bond is below `min_verifier_bond`.
		BondTooLow,
		/// The account cannot afford the bond.
		InsufficientBalance,
		/// `MaxVerifiers` are registered already and the bond is not above the smallest of theirs.
		TooManyVerifiers,
		/// The verifier is unbonding already.
		Unbonding,
		/// The verifier still sits on committees.
		HasAssignments,
		/// The verifier has not called `unregister_verifier`.
		NotUnbonding,
		/// The unbonding period has not passed.
		StillUnbonding,
		/// The job is being verified already.
		AlreadyVerifying,
		/// No verification round for this job.
		UnknownRound,
		/// The round is not in the phase this call needs.
		WrongPhase,
		/// The caller is not on this round's committee.
		NotOnCommittee,
		/// The caller has committed already.
		AlreadyCommitted,
		/// The caller did not commit.
		NotCommitted,
		/// The caller has revealed already.
		AlreadyRevealed,
		/// The revealed scores and salt do not match the commitment.
		CommitmentMismatch,
		/// The epoch is not over.
		EpochNotOver,
		/// The miner has no unclaimed points in that epoch.
		NothingToClaim,
		/// The mining pool cannot pay this reward now.
		PoolExhausted,
		/// Parameters out of range (committee size, windows, shares adding up over 100 %).
		BadParams,
		/// The current phase's deadline has passed.
		PhaseOver,
		/// Only the round's miner reveals its claim.
		NotMiner,
		/// The miner has revealed its claim already.
		ClaimAlreadyRevealed,
		/// The revealed score and salt do not match the miner's claim commitment.
		ClaimMismatch,
		/// Too few members committed for a quorum: the claim stays hidden for the redraw.
		NoQuorumPossible,
		/// No such version.
		UnknownVersion,
		/// The version belongs to another model.
		VersionOfAnotherModel,
		/// Only an accepted version can be a model's head.
		VersionNotAccepted,
		/// `MaxRewardedModels` are admitted already.
		TooManyRewardedModels,
		/// The model is not admitted to epoch rewards.
		NotRewarded,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}

		fn integrity_test() {
			let p = T::DefaultParams::get();
			assert!(T::MaxDeadlinesPerBlock::get() > 0, "deadlines must be processed");
			assert!(T::MaxVerifiers::get() > 0 && T::MaxAssignmentsPerVerifier::get() > 0);
			assert!(T::MaxRewardedModels::get() > 0, "some model must be able to earn points");
			assert!(
				!T::MaxEpochShare::get().is_zero()
					&& T::MinPointsEscrow::get() <= T::PointsEscrowCap::get()
					&& !T::PointsEscrowCap::get().is_zero(),
				"epoch points must be earnable"
			);
			assert!((1..=MAX_COMMITTEE).contains(&p.committee_size), "committee size");
			assert!(
				!p.draw_delay.is_zero()
					&& !p.commit_window.is_zero()
					&& !p.reveal_window.is_zero()
					&& !p.epoch_length.is_zero(),
				"windows and epoch length must be non-zero"
			);
		}

		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let (draws, others, scanned) = Self::process_deadlines(now);
			T::WeightInfo::on_initialize_draw(draws)
				.saturating_add(T::WeightInfo::on_initialize_tally(others))
				.saturating_add(T::DbWeight::get().reads(scanned.into()))
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Registers the caller as a verifier, holding `bond` (its weight in committee draws).
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_verifier())]
		pub fn register_verifier(origin: OriginFor<T>, bond: BalanceOf<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(!Verifiers::<T>::contains_key(&who), Error::<T>::AlreadyVerifier);
			let params = Params::<T>::get();
			ensure!(bond >= params.min_verifier_bond, Error::<T>::BondTooLow);
			ensure!(
				T::Currency::can_hold(&HoldReason::VerifierBond.into(), &who, bond),
				Error::<T>::InsufficientBalance
			);
			let mut active = ActiveVerifiers::<T>::get();
			// A full set admits a newcomer only by evicting the smallest bond below it, so the
			// set cannot be squatted by minimum bonds.
			let evicted =
				if active.is_full() { Some(Self::evictable(&active, bond)?) } else { None };
			if let Some((index, _)) = &evicted {
				active.swap_remove(*index);
			}
			active.try_push(who.clone()).map_err(|_| Error::<T>::TooManyVerifiers)?;

			T::Currency::hold(&HoldReason::VerifierBond.into(), &who, bond)?;
			if let Some((_, verifier)) = evicted {
				Self::start_unbonding(&verifier, params.unbonding_period);
			}
			ActiveVerifiers::<T>::put(active);
			Verifiers::<T>::insert(&who, VerifierInfo { bond, unbonding_until: None });
			Self::deposit_event(Event::VerifierRegistered { verifier: who, bond });
			Ok(())
		}

		/// Leaves the draw at once; the bond can be withdrawn after the unbonding period, once
		/// the rounds the verifier already sits on are decided.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::unregister_verifier())]
		pub fn unregister_verifier(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let info = Verifiers::<T>::get(&who).ok_or(Error::<T>::NotVerifier)?;
			ensure!(info.unbonding_until.is_none(), Error::<T>::Unbonding);
			// Rounds it already sits on still count on it.
			Self::leave_draw(&who, Params::<T>::get().unbonding_period);
			Ok(())
		}

		/// Releases the bond of an unbonded verifier and forgets it.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::withdraw_verifier())]
		pub fn withdraw_verifier(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let info = Verifiers::<T>::get(&who).ok_or(Error::<T>::NotVerifier)?;
			let until = info.unbonding_until.ok_or(Error::<T>::NotUnbonding)?;
			ensure!(frame_system::Pallet::<T>::block_number() >= until, Error::<T>::StillUnbonding);
			ensure!(Assignments::<T>::get(&who).is_empty(), Error::<T>::HasAssignments);
			let bond = T::Currency::release_all(
				&HoldReason::VerifierBond.into(),
				&who,
				Precision::BestEffort,
			)?;
			Verifiers::<T>::remove(&who);
			Assignments::<T>::remove(&who);
			Self::deposit_event(Event::VerifierWithdrawn { verifier: who, bond });
			Ok(())
		}

		/// A committee member commits to its scores (see [`score_commitment`]).
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::commit_scores())]
		pub fn commit_scores(origin: OriginFor<T>, job: JobId, commitment: H256) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut round = Rounds::<T>::get(job).ok_or(Error::<T>::UnknownRound)?;
			Self::ensure_in_phase(&round, Phase::Commit)?;
			let now = frame_system::Pallet::<T>::block_number();
			let seat = round
				.committee
				.iter_mut()
				.find(|m| m.verifier == who)
				.ok_or(Error::<T>::NotOnCommittee)?;
			ensure!(seat.commitment.is_none(), Error::<T>::AlreadyCommitted);
			seat.commitment = Some(commitment);
			let everyone = round.committee.iter().all(|m| m.commitment.is_some());
			if everyone {
				// Nobody is left to wait for: open reveals now.
				Self::unschedule(job, round.deadline);
				let reveal_by =
					Self::schedule(job, now.saturating_add(Params::<T>::get().reveal_window));
				round.phase = Phase::Reveal;
				round.deadline = reveal_by;
				Self::deposit_event(Event::ScoresCommitted { job, verifier: who });
				Self::deposit_event(Event::RevealPhase { job, reveal_by });
			} else {
				Self::deposit_event(Event::ScoresCommitted { job, verifier: who });
			}
			Rounds::<T>::insert(job, round);
			Ok(())
		}

		/// A committee member reveals the scores it committed to. The last reveal decides the
		/// round at once.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::reveal_scores())]
		pub fn reveal_scores(
			origin: OriginFor<T>,
			job: JobId,
			base_score: Score,
			candidate_score: Score,
			salt: [u8; 32],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut round = Rounds::<T>::get(job).ok_or(Error::<T>::UnknownRound)?;
			Self::ensure_in_phase(&round, Phase::Reveal)?;
			let attempt = round.attempt;
			let seat = round
				.committee
				.iter_mut()
				.find(|m| m.verifier == who)
				.ok_or(Error::<T>::NotOnCommittee)?;
			let commitment = seat.commitment.ok_or(Error::<T>::NotCommitted)?;
			ensure!(seat.scores.is_none(), Error::<T>::AlreadyRevealed);
			ensure!(
				score_commitment(job, attempt, &who, base_score, candidate_score, &salt)
					== commitment,
				Error::<T>::CommitmentMismatch
			);
			seat.scores = Some((base_score, candidate_score));
			Self::deposit_event(Event::ScoresRevealed {
				job,
				verifier: who,
				base_score,
				candidate_score,
			});
			Self::tally_if_complete(job, round);
			Ok(())
		}

		/// The miner reveals the score it committed to in its result's reveal
		/// ([`claim_commitment`]). Only in a reveal phase: the committee has committed by then,
		/// so the claim cannot be copied into a commitment. Refused when too few members
		/// committed for a quorum: that round can only end in a redraw, whose committee must not
		/// see the claim either. The last of the reveals decides the round at once; a claim never
		/// revealed counts as a false one.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::reveal_claim())]
		pub fn reveal_claim(
			origin: OriginFor<T>,
			job: JobId,
			claimed_score: Score,
			salt: [u8; 32],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut round = Rounds::<T>::get(job).ok_or(Error::<T>::UnknownRound)?;
			ensure!(round.request.miner == who, Error::<T>::NotMiner);
			Self::ensure_in_phase(&round, Phase::Reveal)?;
			ensure!(round.claimed_score.is_none(), Error::<T>::ClaimAlreadyRevealed);
			let committed = round.committee.iter().filter(|m| m.commitment.is_some()).count();
			ensure!(
				committed as u32 >= quorum(round.committee.len() as u32),
				Error::<T>::NoQuorumPossible
			);
			ensure!(
				claim_commitment(job, &who, claimed_score, &salt) == round.request.claim,
				Error::<T>::ClaimMismatch
			);
			round.claimed_score = Some(claimed_score);
			Self::deposit_event(Event::ClaimRevealed { job, miner: who, claimed_score });
			Self::tally_if_complete(job, round);
			Ok(())
		}

		/// Pays `miner` its share of a finished epoch's budget. Anyone may call it.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::claim_epoch_reward())]
		pub fn claim_epoch_reward(
			origin: OriginFor<T>,
			epoch: EpochIndex,
			miner: T::AccountId,
		) -> DispatchResult {
			ensure_signed(origin)?;
			ensure!(epoch < Self::current_epoch(), Error::<T>::EpochNotOver);
			let points = EpochPoints::<T>::get(epoch, &miner).ok_or(Error::<T>::NothingToClaim)?;
			let mut info = Epochs::<T>::get(epoch).ok_or(Error::<T>::NothingToClaim)?;
			let share = Perbill::from_rational(points, info.total_points.max(1))
				.min(T::MaxEpochShare::get());
			let amount = share * info.budget;
			T::Currency::transfer(&T::MiningPool::get(), &miner, amount, Preservation::Preserve)
				.map_err(|_| Error::<T>::PoolExhausted)?;
			EpochPoints::<T>::remove(epoch, &miner);
			info.unclaimed = info.unclaimed.saturating_sub(1);
			if info.unclaimed == 0 {
				Epochs::<T>::remove(epoch);
			} else {
				Epochs::<T>::insert(epoch, info);
			}
			Self::deposit_event(Event::EpochRewardPaid { epoch, miner, amount });
			Ok(())
		}

		/// Admits `model` to epoch rewards, its improvements counted from `head` (an accepted
		/// version of it); for a model admitted already, moves its head there.
		///
		/// Origin: [`Config::RewardOrigin`].
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::admit_model())]
		pub fn admit_model(
			origin: OriginFor<T>,
			model: ModelId,
			head: VersionId,
		) -> DispatchResult {
			T::RewardOrigin::ensure_origin(origin)?;
			let version = T::Registry::version(head).ok_or(Error::<T>::UnknownVersion)?;
			ensure!(version.model == model, Error::<T>::VersionOfAnotherModel);
			ensure!(version.status == VersionStatus::Accepted, Error::<T>::VersionNotAccepted);
			ensure!(
				RewardedModels::<T>::contains_key(model)
					|| RewardedModels::<T>::count() < T::MaxRewardedModels::get(),
				Error::<T>::TooManyRewardedModels
			);
			RewardedModels::<T>::insert(model, head);
			Self::deposit_event(Event::ModelAdmitted { model, head });
			Ok(())
		}

		/// Ends epoch rewards for `model`'s improvements (points earned already stay).
		///
		/// Origin: [`Config::RewardOrigin`].
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::retire_model())]
		pub fn retire_model(origin: OriginFor<T>, model: ModelId) -> DispatchResult {
			T::RewardOrigin::ensure_origin(origin)?;
			ensure!(RewardedModels::<T>::contains_key(model), Error::<T>::NotRewarded);
			RewardedModels::<T>::remove(model);
			Self::deposit_event(Event::ModelRetired { model });
			Ok(())
		}
	}
}

impl<T: Config> Pallet<T> {
	fn after(blocks: BlockNumberFor<T>) -> BlockNumberFor<T> {
		frame_system::Pallet::<T>::block_number().saturating_add(blocks)
	}

	/// The epoch the current block belongs to.
	pub fn current_epoch() -> EpochIndex {
		Self::epoch_at(frame_system::Pallet::<T>::block_number(), &Params::<T>::get())
	}

	/// Epochs are counted from [`EpochBase`], which a change of `epoch_length` moves, so a new
	/// length never renumbers past epochs.
	fn epoch_at(
		now: BlockNumberFor<T>,
		params: &PolParams<BalanceOf<T>, BlockNumberFor<T>>,
	) -> EpochIndex {
		let (first_block, first_index) = EpochBase::<T>::get();
		let length = params.epoch_length.max(1u32.into());
		let since: EpochIndex = (now.saturating_sub(first_block) / length).unique_saturated_into();
		first_index.saturating_add(since)
	}

	/// The round is in `phase`, and its deadline has not come (even if not processed yet).
	fn ensure_in_phase(
		round: &Round<T::AccountId, BlockNumberFor<T>>,
		phase: Phase,
	) -> DispatchResult {
		ensure!(round.phase == phase, Error::<T>::WrongPhase);
		ensure!(frame_system::Pallet::<T>::block_number() < round.deadline, Error::<T>::PhaseOver);
		Ok(())
	}

	/// Drops a round's entry from the deadline index (its phase ended early).
	fn unschedule(job: JobId, at: BlockNumberFor<T>) {
		Deadlines::<T>::remove(at, job);
	}

	/// Advances due rounds, oldest deadline first, at most `MaxDeadlinesPerBlock` of them.
	/// Returns (draws, other phase ends, blocks of the index read).
	fn process_deadlines(now: BlockNumberFor<T>) -> (u32, u32, u32) {
		let mut draws = 0u32;
		let drained = drain_due(
			DeadlineCursor::<T>::get(),
			now,
			T::MaxDeadlinesPerBlock::get(),
			|block, n| Deadlines::<T>::iter_key_prefix(block).take(n).collect(),
			|block, job| {
				Deadlines::<T>::remove(block, job);
				// Stale entries are charged as draws, the dearer kind: cheap to over-estimate.
				if !matches!(Self::advance(job, now), Some(Phase::Commit | Phase::Reveal)) {
					draws.saturating_inc();
				}
			},
		);
		DeadlineCursor::<T>::put(drained.cursor);
		(draws, drained.handled.saturating_sub(draws), drained.scanned)
	}

	/// In a full set, the member to evict for a newcomer bonding `bond`: the smallest bond, if
	/// smaller than `bond`.
	fn evictable(
		active: &[T::AccountId],
		bond: BalanceOf<T>,
	) -> Result<(usize, T::AccountId), DispatchError> {
		active
			.iter()
			.enumerate()
			.map(|(i, v)| (i, v, Verifiers::<T>::get(v).map(|info| info.bond).unwrap_or_default()))
			.min_by_key(|(_, _, b)| *b)
			.filter(|(_, _, b)| *b < bond)
			.map(|(i, v, _)| (i, v.clone()))
			.ok_or(Error::<T>::TooManyVerifiers.into())
	}

	/// Takes a verifier out of the draw set and starts its unbonding period.
	fn leave_draw(verifier: &T::AccountId, unbonding_period: BlockNumberFor<T>) {
		ActiveVerifiers::<T>::mutate(|active| active.retain(|v| v != verifier));
		Self::start_unbonding(verifier, unbonding_period);
	}

	/// Marks a verifier, already out of the draw set, as leaving.
	fn start_unbonding(verifier: &T::AccountId, unbonding_period: BlockNumberFor<T>) {
		let until = frame_system::Pallet::<T>::block_number().saturating_add(unbonding_period);
		Verifiers::<T>::mutate(verifier, |info| {
			if let Some(info) = info {
				info.unbonding_until = Some(until);
			}
		});
		Self::deposit_event(Event::VerifierUnbonding { verifier: verifier.clone(), until });
	}

	/// Enters `job` in the deadline index at block `at`.
	/// Never at or before the current block, which the cursor may have passed already.
	fn schedule(job: JobId, at: BlockNumberFor<T>) -> BlockNumberFor<T> {
		let at = at.max(Self::after(1u32.into()));
		Deadlines::<T>::insert(at, job, ());
		at
	}

	/// Moves a round whose phase deadline has come; returns the phase it ended.
	fn advance(job: JobId, now: BlockNumberFor<T>) -> Option<Phase> {
		let mut round = Rounds::<T>::get(job)?;
		if round.deadline > now {
			return None; // moved on early; this entry is stale
		}
		let phase = round.phase;
		match phase {
			Phase::Drawing => Self::draw(job, round, now),
			Phase::Commit => {
				let reveal_by =
					Self::schedule(job, now.saturating_add(Params::<T>::get().reveal_window));
				round.phase = Phase::Reveal;
				round.deadline = reveal_by;
				Rounds::<T>::insert(job, round);
				Self::deposit_event(Event::RevealPhase { job, reveal_by });
			}
			Phase::Reveal => Self::tally(job, round, now),
		}
		Some(phase)
	}

	/// Draws the committee of a round, stake-weighted, without replacement.
	fn draw(job: JobId, mut round: Round<T::AccountId, BlockNumberFor<T>>, now: BlockNumberFor<T>) {
		let params = Params::<T>::get();
		let (seed, _) = T::Randomness::random(&(b"bly/committee", job, round.attempt).encode());
		let seats = params.committee_size.min(MAX_COMMITTEE);
		let exclude = [round.request.miner.clone(), round.request.creator.clone()];
		let committee = Self::weighted_draw(seed.as_ref(), seats, &exclude);
		if committee.len() as u32 != seats {
			// Fewer eligible verifiers than seats (a smaller committee would need a smaller
			// quorum to capture): wait for verifiers to free up or join, then give up.
			if round.draw_retries < MAX_DRAW_RETRIES {
				round.draw_retries = round.draw_retries.saturating_add(1);
				round.deadline = Self::schedule(job, now.saturating_add(params.reveal_window));
				let retry_at = round.deadline;
				Rounds::<T>::insert(job, round);
				Self::deposit_event(Event::DrawPostponed { job, retry_at });
			} else {
				Self::finish_without_verdict(job, &round);
			}
			return;
		}
		let commit_by = Self::schedule(job, now.saturating_add(params.commit_window));
		for verifier in &committee {
			Assignments::<T>::mutate(verifier, |jobs| {
				let _ = jobs.try_push(job);
			});
		}
		round.committee = BoundedVec::truncate_from(
			committee
				.iter()
				.cloned()
				.map(|verifier| Member { verifier, commitment: None, scores: None })
				.collect(),
		);
		round.phase = Phase::Commit;
		round.deadline = commit_by;
		let attempt = round.attempt;
		Rounds::<T>::insert(job, round);
		Self::deposit_event(Event::CommitteeDrawn { job, attempt, committee, commit_by });
	}

	/// Up to `seats` distinct verifiers, stake-weighted by bond, drawn with `seed`: active, not in
	/// `exclude`, with a free assignment slot and a bond at the minimum.
	fn weighted_draw(seed: &[u8], seats: u32, exclude: &[T::AccountId]) -> Vec<T::AccountId> {
		let params = Params::<T>::get();
		let max_assignments = T::MaxAssignmentsPerVerifier::get() as usize;
		let mut pool: Vec<(T::AccountId, u128)> = ActiveVerifiers::<T>::get()
			.into_iter()
			.filter(|v| !exclude.contains(v))
			.filter(|v| Assignments::<T>::decode_len(v).unwrap_or(0) < max_assignments)
			.filter_map(|v| {
				let bond = Verifiers::<T>::get(&v)?.bond;
				// Penalties can leave a bond below the minimum: such a verifier sits out.
				let weight: u128 = bond.unique_saturated_into();
				(bond >= params.min_verifier_bond && weight > 0).then_some((v, weight))
			})
			.collect();
		let mut drawn = Vec::new();
		for seat in 0..seats {
			let total: u128 = pool.iter().map(|(_, w)| *w).fold(0, u128::saturating_add);
			if total == 0 {
				break;
			}
			let mut input = seed.to_vec();
			input.extend(seat.encode());
			let digest = BlakeTwo256::hash(&input).0;
			let mut ticket =
				u128::from_le_bytes(digest[..16].try_into().unwrap_or_default()) % total;
			let index = pool
				.iter()
				.position(|(_, w)| {
					if ticket < *w {
						true
					} else {
						ticket -= *w;
						false
					}
				})
				.unwrap_or(0);
			drawn.push(pool.swap_remove(index).0);
		}
		drawn
	}

	/// Burns `verifier_penalty` of a verifier's bond; one left below the minimum leaves the draw.
	fn penalise(
		duty: VerifierDuty,
		verifier: &T::AccountId,
		params: &PolParams<BalanceOf<T>, BlockNumberFor<T>>,
	) {
		let Some(mut info) = Verifiers::<T>::get(verifier) else { return };
		let amount = T::Currency::burn_held(
			&HoldReason::VerifierBond.into(),
			verifier,
			params.verifier_penalty * info.bond,
			Precision::BestEffort,
			Fortitude::Force,
		)
		.unwrap_or_else(|_| Zero::zero());
		info.bond = info.bond.saturating_sub(amount);
		let below_minimum = info.bond < params.min_verifier_bond && info.unbonding_until.is_none();
		Verifiers::<T>::insert(verifier, info);
		let who = verifier.clone();
		Self::deposit_event(match duty {
			VerifierDuty::Job(job) => Event::VerifierPenalised { job, verifier: who, amount },
			VerifierDuty::InferenceChallenge(challenge) => {
				Event::ArbiterPenalised { challenge, verifier: who, amount }
			}
		});
		if below_minimum {
			// Too little at stake to be drawn again: it leaves the set and may withdraw.
			Self::leave_draw(verifier, params.unbonding_period);
		}
	}

	fn release_committee(job: JobId, round: &Round<T::AccountId, BlockNumberFor<T>>) {
		for member in round.committee.iter() {
			Assignments::<T>::mutate_exists(&member.verifier, |jobs| {
				if let Some(list) = jobs {
					list.retain(|j| *j != job);
					if list.is_empty() {
						*jobs = None;
					}
				}
			});
		}
	}

	/// Decides a round in its reveal phase at once if nobody is left to reveal: every member
	/// that committed, and the miner its claim. Otherwise stores it to wait for its deadline.
	fn tally_if_complete(job: JobId, round: Round<T::AccountId, BlockNumberFor<T>>) {
		let members_done =
			round.committee.iter().filter(|m| m.commitment.is_some()).all(|m| m.scores.is_some());
		if members_done && round.claimed_score.is_some() {
			Self::unschedule(job, round.deadline);
			Self::tally(job, round, frame_system::Pallet::<T>::block_number());
		} else {
			Rounds::<T>::insert(job, round);
		}
	}

	/// Decides a round from its reveals.
	fn tally(job: JobId, round: Round<T::AccountId, BlockNumberFor<T>>, now: BlockNumberFor<T>) {
		let params = Params::<T>::get();
		Self::release_committee(job, &round);
		// The most common revealed pair, and how many revealed it.
		let mut best: Option<((Score, Score), u32)> = None;
		for member in round.committee.iter() {
			let Some(pair) = member.scores else { continue };
			let count = round.committee.iter().filter(|m| m.scores == Some(pair)).count() as u32;
			if best.is_none_or(|(_, c)| count > c) {
				best = Some((pair, count));
			}
		}
		let size = round.committee.len() as u32;
		match best.filter(|(_, count)| *count >= quorum(size)) {
			Some(((base_score, candidate_score), _)) => {
				let mut quorum_members = Vec::new();
				for member in round.committee.iter() {
					if member.scores == Some((base_score, candidate_score)) {
						T::Contributions::honest_verification(&member.verifier);
						quorum_members.push(member.verifier.clone());
					} else {
						Self::penalise(VerifierDuty::Job(job), &member.verifier, &params);
					}
				}
				let request = &round.request;
				let gain = improvement(base_score, candidate_score);
				// A base that cannot be evaluated, or that scores a loss of 0 (a validation set
				// the accepted base already predicts perfectly, say of a model the creator built
				// to), leaves nothing any miner could improve: the job was a trap.
				let unimprovable = base_score == INVALID_SCORE || base_score == 0;
				let accepted = !unimprovable
					&& gain >= request.min_improvement
					&& !gain.is_zero()
					&& round.claimed_score == Some(candidate_score);
				if unimprovable {
					// The validation set or the hyper-parameters are at fault, which are the
					// creator's, not the miner's. The miner is paid; no epoch points, as
					// nothing was measured.
					let _ = T::Registry::reject(request.candidate_version);
					let fees = Self::verifier_fees(job, &quorum_members, &params);
					let _ = T::Jobs::settle_creator_fault(job, &fees);
				} else if accepted {
					T::Contributions::accepted_improvement(&request.miner);
					Self::pay_accepted(job, request, &quorum_members, gain, &params, now);
				} else {
					// The verifiers who caught a false claim earn their fee out of the slash.
					let _ = T::Registry::reject(request.candidate_version);
					let rewards = Self::verifier_fees(job, &quorum_members, &params);
					let _ = T::Jobs::settle_rejected(job, params.miner_slash, &rewards);
				}
				Self::deposit_event(Event::Verified {
					job,
					accepted,
					base_score,
					candidate_score,
					improvement: gain,
					claimed_score: round.claimed_score,
				});
				Rounds::<T>::remove(job);
			}
			None => {
				for member in round.committee.iter().filter(|m| m.scores.is_none()) {
					Self::penalise(VerifierDuty::Job(job), &member.verifier, &params);
				}
				if round.attempt == 0 {
					let mut next = round.clone();
					next.attempt = 1;
					next.phase = Phase::Drawing;
					next.committee = BoundedVec::default();
					next.draw_retries = 0;
					next.deadline = Self::schedule(job, now.saturating_add(params.draw_delay));
					Rounds::<T>::insert(job, next);
					Self::deposit_event(Event::NoQuorum { job, redraw: true });
					return;
				}
				Self::deposit_event(Event::NoQuorum { job, redraw: false });
				Self::finish_without_verdict(job, &round);
			}
		}
	}

	fn finish_without_verdict(job: JobId, round: &Round<T::AccountId, BlockNumberFor<T>>) {
		let _ = T::Registry::reject(round.request.candidate_version);
		let _ = T::Jobs::settle_void(job);
		Rounds::<T>::remove(job);
	}

	/// `verifier_fee` of the job's escrow, split equally over the quorum.
	fn verifier_fees(
		job: JobId,
		quorum_members: &[T::AccountId],
		params: &PolParams<BalanceOf<T>, BlockNumberFor<T>>,
	) -> Vec<(T::AccountId, BalanceOf<T>)> {
		let escrow = T::Jobs::escrow(job).unwrap_or_else(Zero::zero);
		let each = (params.verifier_fee * escrow) / (quorum_members.len() as u32).max(1).into();
		quorum_members.iter().map(|v| (v.clone(), each)).collect()
	}

	fn pay_accepted(
		job: JobId,
		request: &VerificationRequest<T::AccountId>,
		quorum_members: &[T::AccountId],
		gain: Perbill,
		params: &PolParams<BalanceOf<T>, BlockNumberFor<T>>,
		now: BlockNumberFor<T>,
	) {
		let escrow = T::Jobs::escrow(job).unwrap_or_else(Zero::zero);
		let mut payouts = Self::verifier_fees(job, quorum_members, params);
		if let Some(owner) = T::Registry::dataset_owner(request.dataset) {
			payouts.push((owner, params.dataset_share * escrow));
		}
		let accepted = T::Registry::accept(request.candidate_version).is_ok();
		let _ = T::Jobs::settle_accepted(job, &payouts);

		// A version the registry did not accept cannot become a head. It cannot happen: the
		// registry takes every candidate out of `Candidate` once, here or at a rejection.
		if !accepted {
			frame_support::defensive!(
				"an accepted job's candidate was not accepted by the registry"
			);
			return;
		}
		if let Err(reason) = Self::advance_head(request, escrow) {
			Self::deposit_event(Event::NoPoints { job, reason });
			return;
		}
		let epoch = Self::epoch_at(now, params);
		// Improvement times the reward at stake: a large gain on a token job earns little. The
		// reward counts up to a cap, as a creator and a miner who are one party pay only the
		// verifier fee for it.
		let counted = escrow.min(T::PointsEscrowCap::get());
		let points: u128 = (gain * counted).unique_saturated_into();
		let first = !EpochPoints::<T>::contains_key(epoch, &request.miner);
		EpochPoints::<T>::mutate(epoch, &request.miner, |p| {
			*p = Some(p.unwrap_or(0).saturating_add(points))
		});
		Epochs::<T>::mutate(epoch, |info| {
			let info = info.get_or_insert(EpochInfo {
				total_points: 0,
				budget: params.epoch_budget,
				unclaimed: 0,
			});
			info.total_points = info.total_points.saturating_add(points);
			if first {
				info.unclaimed = info.unclaimed.saturating_add(1);
			}
		});
		Self::deposit_event(Event::PointsEarned { epoch, miner: request.miner.clone(), points });
	}

	/// An accepted job earns epoch points only if its model is admitted and it started from the
	/// model's head; the candidate then becomes the head, so each improvement earns once and
	/// only over the best the network has rewarded.
	fn advance_head(
		request: &VerificationRequest<T::AccountId>,
		escrow: BalanceOf<T>,
	) -> Result<(), NoPointsReason> {
		let model = T::Registry::version(request.base_version)
			.map(|v| v.model)
			.ok_or(NoPointsReason::ModelNotRewarded)?;
		let head = RewardedModels::<T>::get(model).ok_or(NoPointsReason::ModelNotRewarded)?;
		if head != request.base_version {
			return Err(NoPointsReason::NotFromHead);
		}
		// Moving the head leaves every job in flight from it without points: that must cost
		// more than a token job's fee.
		if escrow < T::MinPointsEscrow::get() {
			return Err(NoPointsReason::EscrowTooSmall);
		}
		RewardedModels::<T>::insert(model, request.candidate_version);
		Ok(())
	}

	/// Rounds `verifier` sits on where it still has to commit or reveal (for the runtime API).
	pub fn pending_verifications(verifier: &T::AccountId) -> Vec<(JobId, Phase)> {
		Assignments::<T>::get(verifier)
			.into_iter()
			.filter_map(|job| {
				let round = Rounds::<T>::get(job)?;
				let seat = round.committee.iter().find(|m| m.verifier == *verifier)?;
				let pending = match round.phase {
					Phase::Commit => seat.commitment.is_none(),
					Phase::Reveal => seat.commitment.is_some() && seat.scores.is_none(),
					Phase::Drawing => false,
				};
				pending.then_some((job, round.phase))
			})
			.collect()
	}
}

impl<T: Config> VerifierSet<T::AccountId> for Pallet<T> {
	fn draw(seed: &[u8], count: u32, exclude: &[T::AccountId]) -> Vec<T::AccountId> {
		Self::weighted_draw(seed, count, exclude)
	}

	fn penalise(duty: VerifierDuty, verifier: &T::AccountId) {
		Self::penalise(duty, verifier, &Params::<T>::get());
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_full_set() -> Vec<T::AccountId> {
		benchmarking::full_verifier_set::<T>()
	}
}

impl<T: Config> VerificationProvider<T::AccountId> for Pallet<T> {
	fn start_verification(
		job: JobId,
		request: VerificationRequest<T::AccountId>,
	) -> DispatchResult {
		ensure!(!Rounds::<T>::contains_key(job), Error::<T>::AlreadyVerifying);
		// Drawn from a later block's randomness: neither the claimant nor the revealer knew it.
		let at = Self::schedule(job, Self::after(Params::<T>::get().draw_delay.max(1u32.into())));
		Rounds::<T>::insert(
			job,
			Round {
				request,
				claimed_score: None,
				attempt: 0,
				phase: Phase::Drawing,
				deadline: at,
				committee: BoundedVec::default(),
				draw_retries: 0,
			},
		);
		Self::deposit_event(Event::VerificationRequested { job, draw_at: at });
		Ok(())
	}
}

/// What a verifier asks the PoL pallet through the runtime.
pub mod runtime_api {
	use super::*;

	sp_api::decl_runtime_apis! {
		/// Verification queries.
		pub trait PolRewardsApi<AccountId, BlockNumber>
		where
			AccountId: codec::Codec,
			BlockNumber: codec::Codec,
		{
			/// Rounds where `verifier` still has to commit or reveal, with their phase.
			fn pending_verifications(verifier: AccountId) -> Vec<(JobId, Phase)>;
			/// One verification round.
			fn round(job: JobId) -> Option<Round<AccountId, BlockNumber>>;
		}
	}
}

impl<T: Config> GovernedParams<PolParams<BalanceOf<T>, BlockNumberFor<T>>> for Pallet<T> {
	fn params() -> PolParams<BalanceOf<T>, BlockNumberFor<T>> {
		Params::<T>::get()
	}

	fn set_params(params: PolParams<BalanceOf<T>, BlockNumberFor<T>>) -> DispatchResult {
		ensure!(
			(1..=MAX_COMMITTEE).contains(&params.committee_size)
				&& !params.draw_delay.is_zero()
				&& !params.commit_window.is_zero()
				&& !params.reveal_window.is_zero()
				&& !params.epoch_length.is_zero()
				&& params
					.verifier_fee
					.deconstruct()
					.saturating_add(params.dataset_share.deconstruct())
					<= Perbill::one().deconstruct(),
			Error::<T>::BadParams
		);
		let old = Params::<T>::get();
		if old.epoch_length != params.epoch_length {
			// The running epoch ends here; the next one starts now with the new length. The cut
			// epoch pays for the blocks it ran, not a whole epoch's budget: otherwise lengthening
			// epochs (and their budget with them) and cutting one short would pay out faster.
			let now = frame_system::Pallet::<T>::block_number();
			let current = Self::current_epoch();
			let (first_block, first_index) = EpochBase::<T>::get();
			let epochs_before: BlockNumberFor<T> = current.saturating_sub(first_index).into();
			let start = first_block.saturating_add(old.epoch_length.saturating_mul(epochs_before));
			let ran = Perbill::from_rational(now.saturating_sub(start), old.epoch_length);
			Epochs::<T>::mutate(current, |info| {
				if let Some(info) = info {
					info.budget = ran * info.budget;
				}
			});
			EpochBase::<T>::put((now, current.saturating_add(1)));
		}
		Params::<T>::put(params.clone());
		Self::deposit_event(Event::ParamsSet { params });
		Ok(())
	}
}
