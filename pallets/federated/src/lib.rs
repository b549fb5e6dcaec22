//! # Federated pallet
//!
//! Federated learning jobs: a model is improved in rounds by participants whose data never leave
//! their machines; only an aggregate update per round is published (pinned to IPFS), and the final
//! model goes through the normal Proof-of-Learning path as the result of a `pallet-jobs` job.
//!
//! - The creator posts a job with `Jobs.post_job` and makes it federated with [`Pallet::create`]
//!   (in one `utility.batchAll`): rounds, participants (named, or an open call with a bond),
//!   aggregation rule (secure aggregation, or mean / median / trimmed mean / Multi-Krum in the
//!   clear) and differential privacy (clip norm, noise multiplier, δ). The chain computes the ε
//!   the job spends per participant ([`blyan_primitives::federated::epsilon_milli`]).
//! - Participants [`Pallet::join`] before the first round; the job's ε is charged to their
//!   privacy budget ([`Pallet::set_privacy_budget`], default `DefaultPrivacyBudget`) and a join
//!   that would exceed it is refused.
//! - The worker that claims the job is its aggregator: it tells participants where to reach it
//!   ([`Pallet::set_endpoint`]), runs the rounds off chain and records each aggregate
//!   ([`Pallet::record_round`]). `pallet-jobs` lets it commit a result only after the last round
//!   ([`CommitGate`]); validation, verification, payment and slashing are those of any job.
//! - Once the job is gone from `pallet-jobs`, anyone may [`Pallet::close`] it: bonds return, and if
//!   no aggregator ever served it the ε charged is given back.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(any(feature = "try-runtime", feature = "test-fixtures", test))]
mod invariants;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;
pub use weights::WeightInfo;

use blyan_primitives::{
	federated::{epsilon_milli, CommitGate, JobInfo},
	pol::{Cid, JobId},
};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, Mutate, MutateHold},
		tokens::Precision,
	},
};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_runtime::traits::Zero;

pub type BalanceOf<T> =
	<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// A participant's place in a job (its index in the participant list).
pub type ParticipantIndex = u16;

/// How a round's updates are combined.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum AggregationRule {
	/// Secure aggregation: the aggregator learns only the sum; at least `threshold` participants
	/// must reach the end of a round (it also bounds how many may collude with the aggregator).
	Secure { threshold: u16 },
	/// Federated averaging in the clear.
	Mean,
	/// Coordinate-wise median.
	Median,
	/// Coordinate-wise mean without the `trim` lowest and highest values.
	TrimmedMean { trim: u16 },
	/// Multi-Krum: the mean of the `selected` updates closest to their neighbours, tolerating
	/// `byzantine` bad ones.
	MultiKrum { byzantine: u16, selected: u16 },
}

impl AggregationRule {
	/// Fewest contributors a round of this rule is meaningful with.
	pub fn min_contributors(&self) -> u32 {
		match *self {
			Self::Secure { threshold } => threshold as u32,
			Self::Mean | Self::Median => 1,
			Self::TrimmedMean { trim } => 2 * trim as u32 + 1,
			Self::MultiKrum { byzantine, selected } => {
				(2 * byzantine as u32 + 3).max(selected as u32)
			}
		}
	}
}

/// Who may take part.
// The NoBound derives restate the bounds in a where clause.
#[allow(clippy::multiple_bound_locations)]
#[derive(
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	DebugNoBound,
)]
#[scale_info(skip_type_params(MaxParticipants))]
pub enum Admission<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	Balance: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxParticipants: Get<u32>,
> {
	/// Only these accounts (each still has to join, consenting to the privacy cost).
	Named(BoundedVec<AccountId, MaxParticipants>),
	/// Anyone who holds `bond` until the job is closed.
	Open { bond: Balance },
}

/// What the creator asks for.
// The NoBound derives restate the bounds in a where clause.
#[allow(clippy::multiple_bound_locations)]
#[derive(
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	DebugNoBound,
)]
#[scale_info(skip_type_params(MaxParticipants))]
pub struct FederatedSpec<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	Balance: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxParticipants: Get<u32>,
> {
	pub rounds: u32,
	/// Participants needed before the first round, and contributors needed in each.
	pub min_participants: u16,
	pub admission: Admission<AccountId, Balance, MaxParticipants>,
	pub rule: AggregationRule,
	/// L2 norm each update is clipped to, in thousandths.
	pub clip_norm_milli: u32,
	/// Gaussian noise multiplier σ (noise std = σ × clip norm), in thousandths.
	pub noise_milli: u32,
	/// δ = 10^-delta_exp.
	pub delta_exp: u8,
	/// Local training steps per round.
	pub local_steps: u32,
}

/// A participant and the bond it holds.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Member<AccountId, Balance> {
	pub who: AccountId,
	pub bond: Balance,
}

/// A federated job.
// The NoBound derives restate the bounds in a where clause.
#[allow(clippy::multiple_bound_locations)]
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, Encode, Decode, MaxEncodedLen, TypeInfo, DebugNoBound,
)]
#[scale_info(skip_type_params(MaxParticipants, MaxEndpointLen))]
pub struct FederatedJob<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	Balance: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxParticipants: Get<u32>,
	MaxEndpointLen: Get<u32>,
> {
	pub spec: FederatedSpec<AccountId, Balance, MaxParticipants>,
	/// ε charged to every participant, in thousandths.
	pub epsilon_milli: u64,
	/// In joining order: a participant's index is its place here.
	pub participants: BoundedVec<Member<AccountId, Balance>, MaxParticipants>,
	/// Where the aggregator takes updates (set by it once it holds the job).
	pub endpoint: Option<BoundedVec<u8, MaxEndpointLen>>,
	pub rounds_done: u32,
}

/// One recorded round.
#[derive(
	CloneNoBound, PartialEqNoBound, EqNoBound, Encode, Decode, MaxEncodedLen, TypeInfo, DebugNoBound,
)]
#[scale_info(skip_type_params(MaxParticipants))]
pub struct RoundRecord<MaxParticipants: Get<u32>> {
	/// IPFS CID of the round's aggregate update.
	pub aggregate: Cid,
	/// Indices of the participants whose updates are in it, ascending.
	pub contributors: BoundedVec<ParticipantIndex, MaxParticipants>,
}

pub type SpecOf<T> = FederatedSpec<
	<T as frame_system::Config>::AccountId,
	BalanceOf<T>,
	<T as Config>::MaxParticipants,
>;
pub type FederatedJobOf<T> = FederatedJob<
	<T as frame_system::Config>::AccountId,
	BalanceOf<T>,
	<T as Config>::MaxParticipants,
	<T as Config>::MaxEndpointLen,
>;

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
		/// An open call's participant bond.
		ParticipantBond,
	}

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		type Currency: Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		type RuntimeHoldReason: From<HoldReason>;
		/// The jobs pallet: who created a job, who holds it.
		type Jobs: JobInfo<Self::AccountId>;
		/// Most participants a job may have (at most 255: secure aggregation's share space).
		#[pallet::constant]
		type MaxParticipants: Get<u32>;
		/// Most rounds a job may have.
		#[pallet::constant]
		type MaxRounds: Get<u32>;
		/// Longest aggregator endpoint URL.
		#[pallet::constant]
		type MaxEndpointLen: Get<u32>;
		/// Privacy budget (ε, in thousandths) of an account that has not set its own.
		#[pallet::constant]
		type DefaultPrivacyBudget: Get<u64>;
		type WeightInfo: WeightInfo;
	}

	#[pallet::storage]
	pub type Jobs<T: Config> =
		StorageMap<_, Blake2_128Concat, JobId, FederatedJobOf<T>, OptionQuery>;

	#[pallet::storage]
	pub type Rounds<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		JobId,
		Twox64Concat,
		u32,
		RoundRecord<T::MaxParticipants>,
		OptionQuery,
	>;

	/// Budgets accounts set for themselves (ε in thousandths).
	#[pallet::storage]
	pub type PrivacyBudget<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u64, OptionQuery>;

	/// ε (thousandths) each account's data has spent over all the federated jobs it joined.
	#[pallet::storage]
	pub type PrivacySpent<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u64, ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A job became federated; each participant will spend `epsilon_milli`.
		FederatedJobCreated { job: JobId, epsilon_milli: u64 },
		/// `who` joined `job` as participant `index`; its data has now spent `spent_milli`.
		Joined { job: JobId, who: T::AccountId, index: ParticipantIndex, spent_milli: u64 },
		/// `who` set its privacy budget.
		PrivacyBudgetSet { who: T::AccountId, budget_milli: u64 },
		/// The aggregator of `job` takes updates at `endpoint`.
		EndpointSet { job: JobId, endpoint: BoundedVec<u8, T::MaxEndpointLen> },
		/// Round `round` of `job` aggregated `contributors` updates into `aggregate`.
		RoundRecorded { job: JobId, round: u32, aggregate: Cid, contributors: u32 },
		/// `job` was closed; `epsilon_refunded` if no round had run.
		Closed { job: JobId, epsilon_refunded: bool },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// Only the job's creator may make it federated.
		NotJobCreator,
		/// The job is not open (or does not exist) in the jobs pallet.
		JobNotOpen,
		/// The job is federated already.
		AlreadyFederated,
		/// No federated job with this id.
		UnknownJob,
		/// Rounds must be between 1 and `MaxRounds`.
		BadRounds,
		/// The rule needs more participants than `min_participants`, or a secure threshold
		/// below 2 (one survivor's sum would be its own update).
		BadRule,
		/// Named participants fewer than `min_participants`, or named twice.
		BadNamedParticipants,
		/// No privacy: the noise multiplier or `delta_exp` is zero, or `delta_exp` above 20.
		NoPrivacy,
		/// This account is not among the named participants.
		NotNamed,
		/// `MaxParticipants` have joined already, or, for secure aggregation, `2·threshold − 1`
		/// (the threshold must stay a majority of the participants).
		JobFull,
		/// This account has joined already.
		AlreadyJoined,
		/// Joins close when the job is claimed (its aggregator fixes the participant list then),
		/// cancelled or expired.
		JoinsClosed,
		/// The job's ε would take this participant beyond its privacy budget.
		PrivacyBudgetExceeded,
		/// Only the worker holding the job (its aggregator) may do this.
		NotAggregator,
		/// Rounds are recorded in order: this is not the next one.
		WrongRound,
		/// Every round is recorded already.
		AllRoundsDone,
		/// Fewer contributors than `min_participants` or than the rule needs, too few joined,
		/// or contributors not ascending / not participants.
		BadContributors,
		/// The job still exists in the jobs pallet.
		JobStillLive,
		/// The job's result cannot be committed before its last round.
		RoundsUnfinished,
		/// The job trains LoRA adapters: rounds aggregate whole layers.
		AdapterJob,
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Makes the creator's open job `job` federated with `spec` and computes the ε it will
		/// charge each participant.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::create(T::MaxParticipants::get()))]
		pub fn create(origin: OriginFor<T>, job: JobId, spec: SpecOf<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(T::Jobs::creator(job).as_ref() == Some(&who), Error::<T>::NotJobCreator);
			ensure!(T::Jobs::is_open(job), Error::<T>::JobNotOpen);
			ensure!(!T::Jobs::trains_adapters(job), Error::<T>::AdapterJob);
			ensure!(!Jobs::<T>::contains_key(job), Error::<T>::AlreadyFederated);
			ensure!((1..=T::MaxRounds::get()).contains(&spec.rounds), Error::<T>::BadRounds);
			let min = spec.min_participants as u32;
			let rule_ok = match spec.rule {
				// A majority of whoever joins: at most 2·threshold − 1 may.
				AggregationRule::Secure { threshold } => {
					threshold >= 2 && min < 2 * threshold as u32
				}
				AggregationRule::MultiKrum { selected, .. } => selected >= 1,
				_ => true,
			};
			ensure!(
				rule_ok && min >= spec.rule.min_contributors() && min <= T::MaxParticipants::get(),
				Error::<T>::BadRule
			);
			if let Admission::Named(named) = &spec.admission {
				let mut sorted = named.clone().into_inner();
				sorted.sort();
				sorted.dedup();
				let most = match spec.rule {
					AggregationRule::Secure { threshold } => 2 * threshold as usize - 1,
					_ => usize::MAX,
				};
				ensure!(
					sorted.len() == named.len() && named.len() as u32 >= min && named.len() <= most,
					Error::<T>::BadNamedParticipants
				);
			}
			ensure!(spec.delta_exp <= 20, Error::<T>::NoPrivacy);
			let epsilon = epsilon_milli(spec.rounds, spec.noise_milli, spec.delta_exp)
				.ok_or(Error::<T>::NoPrivacy)?;

			Jobs::<T>::insert(
				job,
				FederatedJob {
					spec,
					epsilon_milli: epsilon,
					participants: BoundedVec::new(),
					endpoint: None,
					rounds_done: 0,
				},
			);
			Self::deposit_event(Event::FederatedJobCreated { job, epsilon_milli: epsilon });
			Ok(())
		}

		/// Joins `job` while it is open (before an aggregator claims it): the job's ε is charged
		/// to the caller's privacy budget (refused if it would exceed it); an open call's bond is
		/// held.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::join())]
		pub fn join(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(T::Jobs::is_open(job), Error::<T>::JoinsClosed);
			ensure!(!info.participants.iter().any(|m| m.who == who), Error::<T>::AlreadyJoined);
			let bond = match &info.spec.admission {
				Admission::Named(named) => {
					ensure!(named.contains(&who), Error::<T>::NotNamed);
					Zero::zero()
				}
				Admission::Open { bond } => *bond,
			};
			let spent = PrivacySpent::<T>::get(&who)
				.checked_add(info.epsilon_milli)
				.filter(|s| *s <= Self::privacy_budget(&who))
				.ok_or(Error::<T>::PrivacyBudgetExceeded)?;
			if let AggregationRule::Secure { threshold } = info.spec.rule {
				ensure!(info.participants.len() + 1 < 2 * threshold as usize, Error::<T>::JobFull);
			}
			let index = info.participants.len() as ParticipantIndex;
			info.participants
				.try_push(Member { who: who.clone(), bond })
				.map_err(|_| Error::<T>::JobFull)?;
			if !bond.is_zero() {
				T::Currency::hold(&HoldReason::ParticipantBond.into(), &who, bond)?;
			}

			PrivacySpent::<T>::insert(&who, spent);
			Jobs::<T>::insert(job, info);
			Self::deposit_event(Event::Joined { job, who, index, spent_milli: spent });
			Ok(())
		}

		/// Sets the caller's own privacy budget (ε in thousandths) for the jobs it joins from
		/// now on. What it has spent stays spent.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::set_privacy_budget())]
		pub fn set_privacy_budget(origin: OriginFor<T>, budget_milli: u64) -> DispatchResult {
			let who = ensure_signed(origin)?;
			PrivacyBudget::<T>::insert(&who, budget_milli);
			Self::deposit_event(Event::PrivacyBudgetSet { who, budget_milli });
			Ok(())
		}

		/// The aggregator (the worker holding the job) says where participants reach it.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::set_endpoint())]
		pub fn set_endpoint(
			origin: OriginFor<T>,
			job: JobId,
			endpoint: BoundedVec<u8, T::MaxEndpointLen>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(T::Jobs::worker(job).as_ref() == Some(&who), Error::<T>::NotAggregator);
			info.endpoint = Some(endpoint.clone());
			Jobs::<T>::insert(job, info);
			Self::deposit_event(Event::EndpointSet { job, endpoint });
			Ok(())
		}

		/// The aggregator records round `round` (the next one): the CID of its aggregate update
		/// and whose updates are in it.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::record_round(contributors.len() as u32))]
		pub fn record_round(
			origin: OriginFor<T>,
			job: JobId,
			round: u32,
			aggregate: Cid,
			contributors: BoundedVec<ParticipantIndex, T::MaxParticipants>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(T::Jobs::worker(job).as_ref() == Some(&who), Error::<T>::NotAggregator);
			ensure!(info.rounds_done < info.spec.rounds, Error::<T>::AllRoundsDone);
			ensure!(round == info.rounds_done, Error::<T>::WrongRound);
			let joined = info.participants.len();
			let ascending = contributors.windows(2).all(|w| w[0] < w[1]);
			let known = contributors.last().is_none_or(|last| (*last as usize) < joined);
			let enough = contributors.len() >= info.spec.min_participants as usize
				&& contributors.len() as u32 >= info.spec.rule.min_contributors();
			ensure!(ascending && known && enough, Error::<T>::BadContributors);

			info.rounds_done = info.rounds_done.saturating_add(1);
			let count = contributors.len() as u32;
			Rounds::<T>::insert(
				job,
				round,
				RoundRecord { aggregate: aggregate.clone(), contributors },
			);
			Jobs::<T>::insert(job, info);
			Self::deposit_event(Event::RoundRecorded {
				job,
				round,
				aggregate,
				contributors: count,
			});
			Ok(())
		}

		/// Closes a federated job whose `pallet-jobs` job is gone: bonds are released, round
		/// records removed, and if no aggregator ever served it, the ε charged is given back.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::close(T::MaxParticipants::get(), T::MaxRounds::get()))]
		pub fn close(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			ensure_signed(origin)?;
			let info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(!T::Jobs::exists(job), Error::<T>::JobStillLive);

			// Once an aggregator has served the job, a round may have run (and released data)
			// without being recorded: only a job never served gives ε back.
			let refund = info.rounds_done == 0 && info.endpoint.is_none();
			for member in &info.participants {
				if !member.bond.is_zero() {
					let _ = T::Currency::release(
						&HoldReason::ParticipantBond.into(),
						&member.who,
						member.bond,
						Precision::BestEffort,
					);
				}
				if refund {
					PrivacySpent::<T>::mutate(&member.who, |s| {
						*s = s.saturating_sub(info.epsilon_milli)
					});
				}
			}
			let _ = Rounds::<T>::clear_prefix(job, info.spec.rounds, None);
			Jobs::<T>::remove(job);
			Self::deposit_event(Event::Closed { job, epsilon_refunded: refund });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// The budget `who` set, or the default.
		pub fn privacy_budget(who: &T::AccountId) -> u64 {
			PrivacyBudget::<T>::get(who).unwrap_or_else(T::DefaultPrivacyBudget::get)
		}
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}

		fn integrity_test() {
			assert!(
				(1..=255).contains(&T::MaxParticipants::get()),
				"MaxParticipants must be 1..=255 (Shamir shares over GF(256))"
			);
			assert!(T::MaxRounds::get() >= 1);
		}
	}
}

impl<T: Config> CommitGate for Pallet<T> {
	fn may_commit(job: JobId) -> DispatchResult {
		match Jobs::<T>::get(job) {
			Some(info) if info.rounds_done < info.spec.rounds => {
				Err(Error::<T>::RoundsUnfinished.into())
			}
			_ => Ok(()),
		}
	}

	fn is_federated(job: JobId) -> bool {
		Jobs::<T>::contains_key(job)
	}
}
