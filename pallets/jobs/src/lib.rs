//! # Training jobs
//!
//! Workers register with a bond (held BLY) and their capabilities. A creator posts a job with
//! typed hyper-parameters ([`TrainingParams`]), its reward held in escrow, a creator bond
//! (`CreatorBondShare` of the reward, forfeited to the miner if not even the base version can
//! be evaluated on the creator's validation set, see [`JobSettlement::settle_creator_fault`])
//! and a *commitment* to a held-out validation set, so that no miner can train on it. A worker
//! claims the job (a lease), commits to a hash of its result, the creator reveals the
//! validation set, the worker reveals the result (new layers and a commitment to its validation
//! score), and the job goes to Proof-of-Learning verification through
//! [`VerificationProvider`]. Verification settles the job through [`JobSettlement`].
//!
//! Missed deadlines are processed by `on_initialize` from an index of deadlines by block,
//! at most `MaxExpiriesPerBlock` jobs a block (a busier block is finished in the next ones, so
//! scheduling never fails and nobody's call is refused because others crowd a deadline):
//! - an open job past its deadline is refunded;
//! - a claim whose lease ends without a commitment: the worker loses `lease_slash` of its bond
//!   and the job reopens;
//! - a creator who does not reveal the validation set in time forfeits `CreatorForfeitShare` of
//!   the reward to the worker and gets the rest back: the worker has shown only a hash, so its
//!   compensation is bounded, not the whole escrow (else a worker could earn a full reward for
//!   a bare hash whenever a creator is slow or censored);
//! - a worker who does not reveal its result in time loses `lease_slash` of its bond and the
//!   creator is refunded (the validation set is public by then, so the job cannot reopen).
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(any(feature = "try-runtime", feature = "test-fixtures", test))]
mod invariants;
pub mod migrations;
#[cfg(test)]
mod mock;
#[cfg(any(feature = "test-fixtures", test))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod weights;
pub use weights::WeightInfo;

use alloc::vec::Vec;
use blyan_primitives::audit::TraceCommitment;
use blyan_primitives::deadlines::drain_due;
use blyan_primitives::federated::{CommitGate, JobInfo};
use blyan_primitives::params::GovernedParams;
use blyan_primitives::pol::{
	Backend, CandidateVersion, Cid, DatasetId, JobId, JobSettlement, LayerDeltas, ModelId,
	ModelRegistry, Parents, SemVer, VerificationProvider, VerificationRequest, VersionId,
	VersionStatus,
};
pub use blyan_primitives::training::{LoraParams, StepScheduleParams, TrainingParams};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, InspectHold, Mutate, MutateHold},
		tokens::{Fortitude, Precision, Restriction},
	},
};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::{
	traits::{Saturating, Zero},
	DispatchError, DispatchResult, Perbill,
};

/// A job as stored for runtime `T`.
pub type JobOf<T> = Job<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

/// Balance type of the pallet's currency.
pub type BalanceOf<T> =
	<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// What a worker can run.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Capabilities {
	pub backends: BoundedVec<Backend, ConstU32<3>>,
	/// Accelerator (or host) memory available for a job, in MiB.
	pub memory_mb: u32,
}

/// A registered worker.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct WorkerInfo<Balance, BlockNumber> {
	/// Held under [`HoldReason::WorkerBond`].
	pub bond: Balance,
	pub capabilities: Capabilities,
	/// Set by `unbond_worker`: the bond can be withdrawn from this block on.
	pub unbonding_until: Option<BlockNumber>,
}

/// What a creator asks for.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct JobSpec<BlockNumber> {
	/// The accepted version to train from; the result's parent.
	pub base_version: VersionId,
	/// The training dataset (its owner earns a share of an accepted job).
	pub dataset: DatasetId,
	/// `blake2_256(SCALE(validation_cid, salt))`: binds the held-out set without showing it.
	pub validation_commitment: H256,
	/// Hyper-parameters, typed: the chain holds an audited trace to `training.steps`, and every
	/// worker trains and evaluates with these same numbers.
	pub training: TrainingParams,
	/// Seed of every random choice in training, for bit-exact re-runs.
	pub seed: u64,
	pub backend: Backend,
	/// Least worker memory the job needs, in MiB.
	pub min_memory_mb: u32,
	/// Last block at which the job can be claimed and its result committed.
	pub deadline: BlockNumber,
	/// Blocks a claim lasts before the worker must commit.
	pub lease: BlockNumber,
	/// Least relative loss reduction to count; the chain's default if `None`.
	pub min_improvement: Option<Perbill>,
}

/// The held-out validation set, once the creator reveals it.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct ValidationSet {
	pub cid: Cid,
	pub salt: [u8; 32],
}

/// The trained weights a worker commits to before the validation set is revealed, and reveals
/// after it. The worker's score of them comes only with the reveal: it is measured on the
/// validation set, which the worker must not know while it can still change its weights.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct JobResult {
	pub semver: SemVer,
	pub layers: LayerDeltas,
	pub weight_root: H256,
	/// How the weights were trained (see `blyan_primitives::audit`): required for jobs whose
	/// training the CPU path can re-run (backend `Cpu`, not federated), so that it can be
	/// audited.
	pub trace: Option<TraceCommitment>,
}

/// Where a job is. Finished jobs are removed; their end is in the events.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub enum JobStatus<AccountId> {
	/// Waiting for a worker.
	Open,
	/// Leased to a worker, who must commit by the stage deadline.
	Claimed { worker: AccountId },
	/// The worker committed; the creator must reveal the validation set by the stage deadline.
	/// `semver` is reserved in the registry for the result.
	Committed { worker: AccountId, result_hash: H256, semver: SemVer },
	/// The validation set is public; the worker must reveal its result by the stage deadline.
	ValidationRevealed { worker: AccountId, result_hash: H256, semver: SemVer },
	/// The result is a candidate version under Proof-of-Learning verification (which holds the
	/// worker's commitment to its score).
	Verifying { worker: AccountId, candidate: VersionId },
}

/// A posted job.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct Job<AccountId, Balance, BlockNumber> {
	pub creator: AccountId,
	pub model: ModelId,
	pub spec: JobSpec<BlockNumber>,
	/// Escrowed reward, held on the creator under [`HoldReason::JobEscrow`].
	pub reward: Balance,
	/// Held on the creator under [`HoldReason::CreatorBond`] until the job ends; forfeited to
	/// the miner if even the base version cannot be evaluated on the creator's validation set
	/// and hyper-parameters (too small, or not fitting the model).
	pub creator_bond: Balance,
	/// The threshold in force for this job.
	pub min_improvement: Perbill,
	pub status: JobStatus<AccountId>,
	/// The block at which the current stage times out (unused while verifying).
	pub stage_deadline: BlockNumber,
	/// Revealed validation set.
	pub validation: Option<ValidationSet>,
}

impl<AccountId, Balance, BlockNumber> Job<AccountId, Balance, BlockNumber> {
	/// The worker holding the job, if any.
	pub fn worker(&self) -> Option<&AccountId> {
		match &self.status {
			JobStatus::Open => None,
			JobStatus::Claimed { worker }
			| JobStatus::Committed { worker, .. }
			| JobStatus::ValidationRevealed { worker, .. }
			| JobStatus::Verifying { worker, .. } => Some(worker),
		}
	}
}

/// The commitments a creator and a worker post, defined once for the pallets and the worker.
pub use blyan_primitives::pol::{claim_commitment, result_commitment, validation_commitment};

/// The pallet's parameters, set by governance (`pallet-governance` checks their bounds).
pub use blyan_primitives::params::JobParams;

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	/// The storage layout's version (0: the layout at launch): bumped, with a migration, on
	/// every change of layout.
	/// v1: typed [`TrainingParams`] and a creator bond in each job ([`crate::migrations`]).
	/// v2: [`TrainingParams`] gain the step schedule and LoRA.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Why the pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A worker's bond, slashable for lapsed leases and refuted claims.
		WorkerBond,
		/// A job's reward, until the job settles.
		JobEscrow,
		/// A creator's bond for a job, until the job settles.
		CreatorBond,
	}

	#[pallet::config]
	pub trait Config: frame_system::Config {
		type Currency: Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		type RuntimeHoldReason: From<HoldReason>;
		/// Models, versions and datasets.
		type Registry: ModelRegistry<Self::AccountId>;
		/// Proof-of-Learning, which settles jobs back through [`JobSettlement`].
		type Verification: VerificationProvider<Self::AccountId>;
		/// Asked before a result is committed (a federated job's rounds must be finished).
		type CommitGate: CommitGate;
		/// Whether results of jobs the training audit can re-run must carry a training trace.
		/// Without, a trace is still passed on (and audited) when given.
		type RequireTrace: Get<bool>;
		/// [`Params`] until governance changes them (through [`GovernedParams`]).
		type DefaultParams: Get<JobParams<BalanceOf<Self>, BlockNumberFor<Self>>>;
		/// Most jobs a worker holds at once.
		#[pallet::constant]
		type MaxActiveJobsPerWorker: Get<u32>;
		/// Most unfinished jobs a creator has at once.
		#[pallet::constant]
		type MaxJobsPerCreator: Get<u32>;
		/// Most expiries processed in one block.
		#[pallet::constant]
		type MaxExpiriesPerBlock: Get<u32>;
		/// Share of the reward a creator who misses its validation reveal pays the worker, which
		/// has shown only a commitment by then; the rest is refunded.
		#[pallet::constant]
		type CreatorForfeitShare: Get<Perbill>;
		/// Share of the reward a creator bonds with each job. It answers for the validation set
		/// and hyper-parameters: if a committee's quorum cannot evaluate even the base version
		/// on them, the escrow is paid out as for an accepted job and the bond goes to the miner
		/// as well; otherwise it returns.
		#[pallet::constant]
		type CreatorBondShare: Get<Perbill>;
		type WeightInfo: WeightInfo;
	}

	#[pallet::storage]
	pub type Params<T: Config> =
		StorageValue<_, JobParams<BalanceOf<T>, BlockNumberFor<T>>, ValueQuery, T::DefaultParams>;

	#[pallet::storage]
	pub type Workers<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		WorkerInfo<BalanceOf<T>, BlockNumberFor<T>>,
		OptionQuery,
	>;

	/// The jobs each worker holds (claimed, committed, revealing or verifying).
	#[pallet::storage]
	pub type WorkerJobs<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		BoundedVec<JobId, T::MaxActiveJobsPerWorker>,
		ValueQuery,
	>;

	#[pallet::storage]
	pub type NextJobId<T> = StorageValue<_, JobId, ValueQuery>;

	#[pallet::storage]
	pub type Jobs<T: Config> = StorageMap<_, Blake2_128Concat, JobId, JobOf<T>, OptionQuery>;

	/// Unfinished jobs per creator (bounded by `MaxJobsPerCreator`).
	#[pallet::storage]
	pub type CreatorJobCount<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// Jobs whose current stage times out at a block: one entry per live job.
	#[pallet::storage]
	pub type Expiries<T: Config> =
		StorageDoubleMap<_, Twox64Concat, BlockNumberFor<T>, Twox64Concat, JobId, (), OptionQuery>;

	/// The first block of [`Expiries`] not yet fully processed (zero: start at the current one).
	#[pallet::storage]
	pub type ExpiryCursor<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		WorkerRegistered {
			worker: T::AccountId,
			bond: BalanceOf<T>,
		},
		CapabilitiesUpdated {
			worker: T::AccountId,
		},
		WorkerUnbonding {
			worker: T::AccountId,
			until: BlockNumberFor<T>,
		},
		WorkerWithdrawn {
			worker: T::AccountId,
			bond: BalanceOf<T>,
		},
		JobPosted {
			job: JobId,
			creator: T::AccountId,
			model: ModelId,
			base_version: VersionId,
			reward: BalanceOf<T>,
			deadline: BlockNumberFor<T>,
		},
		JobCancelled {
			job: JobId,
		},
		JobClaimed {
			job: JobId,
			worker: T::AccountId,
			lease_until: BlockNumberFor<T>,
		},
		ResultCommitted {
			job: JobId,
			worker: T::AccountId,
			semver: SemVer,
			reveal_by: BlockNumberFor<T>,
		},
		ValidationRevealed {
			job: JobId,
			cid: Cid,
			salt: [u8; 32],
			reveal_by: BlockNumberFor<T>,
		},
		/// The result is a candidate version and goes to verification.
		ResultRevealed {
			job: JobId,
			worker: T::AccountId,
			candidate: VersionId,
			/// The worker's commitment to its score ([`claim_commitment`]).
			claim: H256,
		},
		/// An open job passed its deadline; the reward went back to the creator.
		JobExpired {
			job: JobId,
		},
		/// A claim lapsed without a commitment; the worker was slashed and the job reopened.
		LeaseExpired {
			job: JobId,
			worker: T::AccountId,
			slashed: BalanceOf<T>,
			reopened: bool,
		},
		/// The creator did not reveal the validation set in time; the reward went to the worker.
		CreatorForfeited {
			job: JobId,
			worker: T::AccountId,
			amount: BalanceOf<T>,
		},
		/// The committee could not evaluate even the base version on the creator's validation set
		/// and hyper-parameters: the escrow paid the committee's fees and the miner as for an
		/// accepted job, the creator's bond (`forfeited`) went to the miner as well (`to_miner`
		/// is both), the candidate was rejected, and the miner kept its bond.
		CreatorBondForfeited {
			job: JobId,
			creator: T::AccountId,
			worker: T::AccountId,
			forfeited: BalanceOf<T>,
			to_miner: BalanceOf<T>,
		},
		/// The worker did not reveal its result in time; it was slashed and the creator refunded.
		ResultWithheld {
			job: JobId,
			worker: T::AccountId,
			slashed: BalanceOf<T>,
		},
		/// Verification confirmed the improvement; the worker received `to_miner`.
		JobAccepted {
			job: JobId,
			worker: T::AccountId,
			to_miner: BalanceOf<T>,
		},
		/// Verification refuted the claim; the worker was slashed and the creator refunded.
		/// Of `slashed`, `burned` was destroyed and the rest paid to the verifiers.
		JobRejected {
			job: JobId,
			worker: T::AccountId,
			slashed: BalanceOf<T>,
			burned: BalanceOf<T>,
		},
		/// Verification reached no verdict; the creator was refunded.
		JobVoided {
			job: JobId,
		},
		ParamsSet {
			params: JobParams<BalanceOf<T>, BlockNumberFor<T>>,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The account is registered as a worker already.
		AlreadyWorker,
		/// The account is not a registered worker.
		NotWorker,
		/// The bond is below `min_worker_bond`.
		BondTooLow,
		/// The account cannot afford the bond or the reward.
		InsufficientBalance,
		/// A worker must offer at least one backend, each once.
		BadCapabilities,
		/// The worker is unbonding and cannot take jobs.
		Unbonding,
		/// The worker still holds jobs.
		HasActiveJobs,
		/// The worker has not called `unbond_worker`.
		NotUnbonding,
		/// The unbonding period has not passed.
		StillUnbonding,
		/// No job with this id.
		UnknownJob,
		/// The job is not in the stage this call needs.
		WrongStage,
		/// Only the job's creator may do this.
		NotCreator,
		/// Only the job's worker may do this.
		NotJobWorker,
		/// The base version does not exist.
		UnknownVersion,
		/// The base version is not accepted.
		BaseNotAccepted,
		/// The dataset does not exist.
		UnknownDataset,
		/// The reward is below `min_reward`.
		RewardTooLow,
		/// The deadline is not in the future.
		DeadlineInPast,
		/// The lease must be between 1 and `max_lease` blocks.
		BadLease,
		/// A job's minimum improvement must be above zero.
		BadMinImprovement,
		/// The creator has `MaxJobsPerCreator` unfinished jobs.
		TooManyJobs,
		/// The worker holds `MaxActiveJobsPerWorker` jobs.
		TooManyActiveJobs,
		/// A creator cannot work on its own job.
		OwnJob,
		/// The worker lacks the job's backend or memory.
		Incapable,
		/// The job's deadline has passed.
		DeadlinePassed,
		/// The revealed data does not match the commitment.
		CommitmentMismatch,
		/// A revealed validation set must be a bare IPFS CID (letters and digits), not a path or
		/// name whose content could change after miners and verifiers read it.
		NotABareCid,
		/// The revealed result's SemVer is not the one reserved at commit.
		SemVerMismatch,
		/// An identifier counter is exhausted.
		IdsExhausted,
		/// The job's training can be audited, so its result must carry a training trace.
		TraceRequired,
		/// The trace's step count is not the job's.
		TraceMismatch,
		/// The hyper-parameters are out of the bounds every job must meet
		/// ([`TrainingParams::check`]).
		BadTrainingParams,
		/// The base version is an adapter version: jobs train on full weights.
		AdapterBase,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}

		fn integrity_test() {
			let p = T::DefaultParams::get();
			assert!(T::MaxExpiriesPerBlock::get() > 0, "expiries must be processed");
			assert!(T::MaxActiveJobsPerWorker::get() > 0 && T::MaxJobsPerCreator::get() > 0);
			assert!(!p.min_improvement.is_zero(), "a zero threshold accepts anything");
			assert!(
				!p.max_lease.is_zero() && !p.reveal_window.is_zero(),
				"windows must be non-zero"
			);
		}

		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let (processed, scanned) = Self::process_expiries(now);
			T::WeightInfo::on_initialize(processed)
				.saturating_add(T::DbWeight::get().reads(scanned.into()))
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Registers the caller as a worker, holding `bond`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_worker())]
		pub fn register_worker(
			origin: OriginFor<T>,
			capabilities: Capabilities,
			bond: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(!Workers::<T>::contains_key(&who), Error::<T>::AlreadyWorker);
			check_capabilities::<T>(&capabilities)?;
			ensure!(bond >= Params::<T>::get().min_worker_bond, Error::<T>::BondTooLow);
			ensure!(
				T::Currency::can_hold(&HoldReason::WorkerBond.into(), &who, bond),
				Error::<T>::InsufficientBalance
			);
			T::Currency::hold(&HoldReason::WorkerBond.into(), &who, bond)?;
			Workers::<T>::insert(&who, WorkerInfo { bond, capabilities, unbonding_until: None });
			Self::deposit_event(Event::WorkerRegistered { worker: who, bond });
			Ok(())
		}

		/// Replaces the caller's declared capabilities.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::update_capabilities())]
		pub fn update_capabilities(
			origin: OriginFor<T>,
			capabilities: Capabilities,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			check_capabilities::<T>(&capabilities)?;
			Workers::<T>::try_mutate(&who, |w| {
				let worker = w.as_mut().ok_or(Error::<T>::NotWorker)?;
				worker.capabilities = capabilities;
				Ok::<_, DispatchError>(())
			})?;
			Self::deposit_event(Event::CapabilitiesUpdated { worker: who });
			Ok(())
		}

		/// Stops taking jobs; the bond can be withdrawn after the unbonding period.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::unbond_worker())]
		pub fn unbond_worker(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut worker = Workers::<T>::get(&who).ok_or(Error::<T>::NotWorker)?;
			ensure!(worker.unbonding_until.is_none(), Error::<T>::Unbonding);
			ensure!(WorkerJobs::<T>::get(&who).is_empty(), Error::<T>::HasActiveJobs);
			let until = frame_system::Pallet::<T>::block_number()
				.saturating_add(Params::<T>::get().unbonding_period);
			worker.unbonding_until = Some(until);
			Workers::<T>::insert(&who, worker);
			Self::deposit_event(Event::WorkerUnbonding { worker: who, until });
			Ok(())
		}

		/// Releases the bond of an unbonded worker and forgets it.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::withdraw_worker())]
		pub fn withdraw_worker(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let worker = Workers::<T>::get(&who).ok_or(Error::<T>::NotWorker)?;
			let until = worker.unbonding_until.ok_or(Error::<T>::NotUnbonding)?;
			ensure!(frame_system::Pallet::<T>::block_number() >= until, Error::<T>::StillUnbonding);
			let bond = T::Currency::release_all(
				&HoldReason::WorkerBond.into(),
				&who,
				Precision::BestEffort,
			)?;
			Workers::<T>::remove(&who);
			WorkerJobs::<T>::remove(&who);
			Self::deposit_event(Event::WorkerWithdrawn { worker: who, bond });
			Ok(())
		}

		/// Posts a training job, holding `reward` in escrow until it settles.
		#[pallet::call_index(4)]
		// Beyond the benchmark (weights.rs predates adapter versions; re-run bench-weights): the
		// registry's adapter entry of the base.
		#[pallet::weight(T::WeightInfo::post_job().saturating_add(T::DbWeight::get().reads(1)))]
		pub fn post_job(
			origin: OriginFor<T>,
			spec: JobSpec<BlockNumberFor<T>>,
			reward: BalanceOf<T>,
		) -> DispatchResult {
			let creator = ensure_signed(origin)?;
			let params = Params::<T>::get();
			let now = frame_system::Pallet::<T>::block_number();
			let base = T::Registry::version(spec.base_version).ok_or(Error::<T>::UnknownVersion)?;
			ensure!(base.status == VersionStatus::Accepted, Error::<T>::BaseNotAccepted);
			// Its result would have an adapter version as its parent, which the registry refuses.
			ensure!(base.adapter.is_none(), Error::<T>::AdapterBase);
			ensure!(T::Registry::dataset_owner(spec.dataset).is_some(), Error::<T>::UnknownDataset);
			ensure!(reward >= params.min_reward, Error::<T>::RewardTooLow);
			ensure!(spec.deadline > now, Error::<T>::DeadlineInPast);
			ensure!(!spec.lease.is_zero() && spec.lease <= params.max_lease, Error::<T>::BadLease);
			ensure!(
				spec.min_improvement.is_none_or(|p| !p.is_zero()),
				Error::<T>::BadMinImprovement
			);
			spec.training.check().map_err(|_| Error::<T>::BadTrainingParams)?;
			let creator_bond = T::CreatorBondShare::get() * reward;
			let open = CreatorJobCount::<T>::get(&creator);
			ensure!(open < T::MaxJobsPerCreator::get(), Error::<T>::TooManyJobs);
			ensure!(
				T::Currency::can_hold(
					&HoldReason::JobEscrow.into(),
					&creator,
					reward.saturating_add(creator_bond)
				),
				Error::<T>::InsufficientBalance
			);
			let job = NextJobId::<T>::get();
			let next = job.checked_add(1).ok_or(Error::<T>::IdsExhausted)?;
			let expires = spec.deadline;

			T::Currency::hold(&HoldReason::JobEscrow.into(), &creator, reward)?;
			T::Currency::hold(&HoldReason::CreatorBond.into(), &creator, creator_bond)?;
			Expiries::<T>::insert(expires, job, ());
			NextJobId::<T>::put(next);
			CreatorJobCount::<T>::insert(&creator, open.saturating_add(1));
			let deadline = spec.deadline;
			let base_version = spec.base_version;
			Jobs::<T>::insert(
				job,
				Job {
					creator: creator.clone(),
					model: base.model,
					min_improvement: spec.min_improvement.unwrap_or(params.min_improvement),
					spec,
					reward,
					creator_bond,
					status: JobStatus::Open,
					stage_deadline: expires,
					validation: None,
				},
			);
			Self::deposit_event(Event::JobPosted {
				job,
				creator,
				model: base.model,
				base_version,
				reward,
				deadline,
			});
			Ok(())
		}

		/// Withdraws an unclaimed job and refunds its reward.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::cancel_job())]
		pub fn cancel_job(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(info.creator == who, Error::<T>::NotCreator);
			ensure!(info.status == JobStatus::Open, Error::<T>::WrongStage);
			Self::unschedule(job, info.stage_deadline);
			Self::refund_and_remove(job, &info);
			Self::deposit_event(Event::JobCancelled { job });
			Ok(())
		}

		/// Leases an open job to the calling worker until `min(now + lease, deadline)`.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::claim_job())]
		pub fn claim_job(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(info.status == JobStatus::Open, Error::<T>::WrongStage);
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(now < info.spec.deadline, Error::<T>::DeadlinePassed);
			ensure!(info.creator != who, Error::<T>::OwnJob);
			let worker = Workers::<T>::get(&who).ok_or(Error::<T>::NotWorker)?;
			ensure!(worker.unbonding_until.is_none(), Error::<T>::Unbonding);
			ensure!(worker.bond >= Params::<T>::get().min_worker_bond, Error::<T>::BondTooLow);
			ensure!(
				worker.capabilities.backends.contains(&info.spec.backend)
					&& worker.capabilities.memory_mb >= info.spec.min_memory_mb,
				Error::<T>::Incapable
			);
			let mut active = WorkerJobs::<T>::get(&who);
			active.try_push(job).map_err(|_| Error::<T>::TooManyActiveJobs)?;
			T::Registry::ensure_can_propose(info.model, &who)?;
			let lease_until = now.saturating_add(info.spec.lease).min(info.spec.deadline);
			let expires = lease_until;

			Self::reschedule(job, info.stage_deadline, expires);
			WorkerJobs::<T>::insert(&who, active);
			info.status = JobStatus::Claimed { worker: who.clone() };
			info.stage_deadline = expires;
			Jobs::<T>::insert(job, info);
			Self::deposit_event(Event::JobClaimed { job, worker: who, lease_until: expires });
			Ok(())
		}

		/// Commits to the result (see [`result_commitment`]) before the lease ends, and reserves
		/// the result's SemVer in the registry so that nobody can take it before the reveal.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::commit_result())]
		pub fn commit_result(
			origin: OriginFor<T>,
			job: JobId,
			result_hash: H256,
			semver: SemVer,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			match &info.status {
				JobStatus::Claimed { worker } => ensure!(*worker == who, Error::<T>::NotJobWorker),
				_ => return Err(Error::<T>::WrongStage.into()),
			}
			Self::ensure_in_time(&info)?;
			T::CommitGate::may_commit(job)?;
			let reveal_by = Self::window_end();
			// The last check, and the first write: the registry refuses a taken SemVer.
			T::Registry::reserve_semver(info.model, semver, info.spec.base_version, &who)?;

			Self::reschedule(job, info.stage_deadline, reveal_by);
			info.status = JobStatus::Committed { worker: who.clone(), result_hash, semver };
			info.stage_deadline = reveal_by;
			Jobs::<T>::insert(job, info);
			Self::deposit_event(Event::ResultCommitted { job, worker: who, semver, reveal_by });
			Ok(())
		}

		/// The creator reveals the held-out validation set after the worker has committed.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::reveal_validation())]
		pub fn reveal_validation(
			origin: OriginFor<T>,
			job: JobId,
			cid: Cid,
			salt: [u8; 32],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			ensure!(info.creator == who, Error::<T>::NotCreator);
			ensure!(
				!cid.is_empty() && cid.iter().all(u8::is_ascii_alphanumeric),
				Error::<T>::NotABareCid
			);
			let (worker, result_hash, semver) = match &info.status {
				JobStatus::Committed { worker, result_hash, semver } => {
					(worker.clone(), *result_hash, *semver)
				}
				_ => return Err(Error::<T>::WrongStage.into()),
			};
			ensure!(
				validation_commitment(&cid, &salt) == info.spec.validation_commitment,
				Error::<T>::CommitmentMismatch
			);
			Self::ensure_in_time(&info)?;
			let reveal_by = Self::window_end();

			Self::reschedule(job, info.stage_deadline, reveal_by);
			info.status = JobStatus::ValidationRevealed { worker, result_hash, semver };
			info.stage_deadline = reveal_by;
			info.validation = Some(ValidationSet { cid: cid.clone(), salt });
			Jobs::<T>::insert(job, info);
			Self::deposit_event(Event::ValidationRevealed { job, cid, salt, reveal_by });
			Ok(())
		}

		/// The worker reveals its committed result with a commitment to its own score of it on
		/// the revealed validation set ([`claim_commitment`] of the validation loss, fixed-point,
		/// see [`blyan_primitives::pol::Score`]); the result becomes a candidate version and goes to Proof-of-Learning
		/// verification, whose committee must reproduce that score exactly. The score itself is
		/// revealed to the PoL pallet once the committee has committed, so no member can copy it.
		#[pallet::call_index(9)]
		// Beyond the benchmark (weights.rs predates adapter versions): the registry's adapter
		// entries of the parent and, through the audit's start, of base and result; a LoRA
		// job's adapter entry.
		#[pallet::weight(T::WeightInfo::reveal_result(result.layers.len() as u32)
			.saturating_add(T::DbWeight::get().reads_writes(3, 1)))]
		pub fn reveal_result(
			origin: OriginFor<T>,
			job: JobId,
			result: JobResult,
			claim: H256,
			salt: [u8; 32],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
			match &info.status {
				JobStatus::ValidationRevealed { worker, result_hash, semver } => {
					ensure!(*worker == who, Error::<T>::NotJobWorker);
					ensure!(result.semver == *semver, Error::<T>::SemVerMismatch);
					ensure!(
						result_commitment(job, &who, &result, &salt) == *result_hash,
						Error::<T>::CommitmentMismatch
					);
				}
				_ => return Err(Error::<T>::WrongStage.into()),
			}
			Self::ensure_in_time(&info)?;
			let trace = match (Self::audited_steps(job, &info), result.trace.clone()) {
				(Some(steps), Some(trace)) => {
					ensure!(trace.steps == steps, Error::<T>::TraceMismatch);
					Some(trace)
				}
				(Some(_), None) => {
					ensure!(!T::RequireTrace::get(), Error::<T>::TraceRequired);
					None
				}
				// Federated jobs and other backends: nothing the CPU path can re-run.
				(None, _) => None,
			};
			let candidate = CandidateVersion {
				model: info.model,
				parents: Parents::truncate_from(alloc::vec![info.spec.base_version]),
				semver: result.semver,
				layers: result.layers,
				weight_root: result.weight_root,
				// A LoRA job's layers are adapters over its base.
				adapter: info.spec.training.lora,
			};
			// The first write: the registry checks the candidate before storing it.
			let version = T::Registry::propose_candidate(&who, candidate)?;
			T::Verification::start_verification(
				job,
				VerificationRequest {
					creator: info.creator.clone(),
					miner: who.clone(),
					dataset: info.spec.dataset,
					base_version: info.spec.base_version,
					candidate_version: version,
					claim,
					min_improvement: info.min_improvement,
					trace,
				},
			)?;
			Self::unschedule(job, info.stage_deadline);
			info.status = JobStatus::Verifying { worker: who.clone(), candidate: version };
			Jobs::<T>::insert(job, info);
			Self::deposit_event(Event::ResultRevealed {
				job,
				worker: who,
				candidate: version,
				claim,
			});
			Ok(())
		}
	}
}

impl<T: Config> GovernedParams<JobParams<BalanceOf<T>, BlockNumberFor<T>>> for Pallet<T> {
	fn params() -> JobParams<BalanceOf<T>, BlockNumberFor<T>> {
		Params::<T>::get()
	}

	fn set_params(params: JobParams<BalanceOf<T>, BlockNumberFor<T>>) -> DispatchResult {
		ensure!(!params.min_improvement.is_zero(), Error::<T>::BadMinImprovement);
		ensure!(
			!params.max_lease.is_zero() && !params.reveal_window.is_zero(),
			Error::<T>::BadLease
		);
		Params::<T>::put(params.clone());
		Self::deposit_event(Event::ParamsSet { params });
		Ok(())
	}
}

fn check_capabilities<T: Config>(capabilities: &Capabilities) -> DispatchResult {
	let backends = &capabilities.backends;
	ensure!(!backends.is_empty(), Error::<T>::BadCapabilities);
	for (i, backend) in backends.iter().enumerate() {
		ensure!(!backends[..i].contains(backend), Error::<T>::BadCapabilities);
	}
	Ok(())
}

impl<T: Config> Pallet<T> {
	fn window_end() -> BlockNumberFor<T> {
		frame_system::Pallet::<T>::block_number().saturating_add(Params::<T>::get().reveal_window)
	}

	/// The steps of a job whose training the audit can re-run bit for bit (CPU backend, not
	/// federated); `None` for other jobs.
	fn audited_steps(job: JobId, info: &JobOf<T>) -> Option<u32> {
		if info.spec.backend != Backend::Cpu || T::CommitGate::is_federated(job) {
			return None;
		}
		Some(info.spec.training.steps)
	}

	/// A stage's action must come before its deadline, even if that deadline's processing is
	/// running late.
	fn ensure_in_time(info: &JobOf<T>) -> DispatchResult {
		ensure!(
			frame_system::Pallet::<T>::block_number() < info.stage_deadline,
			Error::<T>::DeadlinePassed
		);
		Ok(())
	}

	/// Moves a job's entry in the deadline index from block `from` to block `to`.
	fn reschedule(job: JobId, from: BlockNumberFor<T>, to: BlockNumberFor<T>) {
		Expiries::<T>::remove(from, job);
		Expiries::<T>::insert(to, job, ());
	}

	/// Drops a job's entry from the deadline index (its stage ended before timing out).
	fn unschedule(job: JobId, at: BlockNumberFor<T>) {
		Expiries::<T>::remove(at, job);
	}

	/// Expires due jobs, oldest deadline first, at most `MaxExpiriesPerBlock` of them.
	/// Returns (expired, blocks of the index read).
	fn process_expiries(now: BlockNumberFor<T>) -> (u32, u32) {
		let drained = drain_due(
			ExpiryCursor::<T>::get(),
			now,
			T::MaxExpiriesPerBlock::get(),
			|block, n| Expiries::<T>::iter_key_prefix(block).take(n).collect(),
			|block, job| {
				Expiries::<T>::remove(block, job);
				Self::expire(job, now);
			},
		);
		ExpiryCursor::<T>::put(drained.cursor);
		(drained.handled, drained.scanned)
	}

	/// Slashes `share` of a worker's bond (burned); returns what was burned.
	/// Takes `share` of the worker's bond: pays `rewards` out of it (as far as it reaches) and
	/// burns the rest. Returns `(taken, burned)`.
	fn slash_worker_paying(
		worker: &T::AccountId,
		share: Perbill,
		rewards: &[(T::AccountId, BalanceOf<T>)],
	) -> (BalanceOf<T>, BalanceOf<T>) {
		let Some(info) = Workers::<T>::get(worker) else { return (Zero::zero(), Zero::zero()) };
		let due = share * info.bond;
		let mut paid: BalanceOf<T> = Zero::zero();
		for (payee, amount) in rewards {
			let amount = (*amount).min(due.saturating_sub(paid));
			if amount.is_zero() {
				continue;
			}
			let moved = T::Currency::transfer_on_hold(
				&HoldReason::WorkerBond.into(),
				worker,
				payee,
				amount,
				Precision::BestEffort,
				Restriction::Free,
				Fortitude::Force,
			)
			.unwrap_or_else(|_| Zero::zero());
			paid = paid.saturating_add(moved);
		}
		// The transfers lowered the hold; the record follows.
		Workers::<T>::mutate(worker, |w| {
			if let Some(w) = w {
				w.bond = w.bond.saturating_sub(paid);
			}
		});
		let burned = Self::burn_bond(worker, due.saturating_sub(paid));
		(paid.saturating_add(burned), burned)
	}

	/// Burns `share` of the worker's bond; returns the amount burned.
	fn slash_worker(worker: &T::AccountId, share: Perbill) -> BalanceOf<T> {
		let bond = Workers::<T>::get(worker).map_or_else(Zero::zero, |w| w.bond);
		Self::burn_bond(worker, share * bond)
	}

	fn burn_bond(worker: &T::AccountId, amount: BalanceOf<T>) -> BalanceOf<T> {
		let Some(mut info) = Workers::<T>::get(worker) else { return Zero::zero() };
		if amount.is_zero() {
			return amount;
		}
		let burned = T::Currency::burn_held(
			&HoldReason::WorkerBond.into(),
			worker,
			amount.min(info.bond),
			Precision::BestEffort,
			Fortitude::Force,
		)
		.unwrap_or_else(|_| Zero::zero());
		info.bond = info.bond.saturating_sub(burned);
		Workers::<T>::insert(worker, info);
		burned
	}

	fn unassign(worker: &T::AccountId, job: JobId) {
		WorkerJobs::<T>::mutate(worker, |jobs| jobs.retain(|j| *j != job));
	}

	/// Ends a job's records; its bond returns to the creator (a bond forfeited is paid out
	/// before, so what is left of it is zero).
	fn forget_job(job: JobId, info: &JobOf<T>) {
		let _ = T::Currency::release(
			&HoldReason::CreatorBond.into(),
			&info.creator,
			info.creator_bond,
			Precision::BestEffort,
		);
		if let Some(worker) = info.worker() {
			Self::unassign(worker, job);
		}
		CreatorJobCount::<T>::mutate_exists(&info.creator, |count| {
			*count = count.map(|c| c.saturating_sub(1)).filter(|c| *c > 0);
		});
		Jobs::<T>::remove(job);
	}

	fn refund_and_remove(job: JobId, info: &JobOf<T>) {
		let _ = T::Currency::release(
			&HoldReason::JobEscrow.into(),
			&info.creator,
			info.reward,
			Precision::BestEffort,
		);
		Self::forget_job(job, info);
	}

	/// Pays up to `amount` of a job's escrow to `to`; returns what was paid.
	fn pay_from_escrow(
		creator: &T::AccountId,
		to: &T::AccountId,
		amount: BalanceOf<T>,
	) -> BalanceOf<T> {
		Self::pay_held(HoldReason::JobEscrow, creator, to, amount)
	}

	/// Pays a job's whole escrow out: `payouts` in order as far as it reaches (a payee that
	/// cannot receive is skipped), the rest to `worker`; anything the worker could not receive
	/// is released rather than left held forever. Returns what the worker received.
	fn pay_out_escrow(
		info: &JobOf<T>,
		worker: &T::AccountId,
		payouts: &[(T::AccountId, BalanceOf<T>)],
	) -> BalanceOf<T> {
		let mut left = info.reward;
		for (payee, amount) in payouts {
			let paid = Self::pay_from_escrow(&info.creator, payee, (*amount).min(left));
			left = left.saturating_sub(paid);
		}
		let to_worker = Self::pay_from_escrow(&info.creator, worker, left);
		let _ = T::Currency::release(
			&HoldReason::JobEscrow.into(),
			&info.creator,
			left.saturating_sub(to_worker),
			Precision::BestEffort,
		);
		to_worker
	}

	/// Pays up to `amount` of what the creator holds for `reason` to `to`; returns what was paid.
	fn pay_held(
		reason: HoldReason,
		creator: &T::AccountId,
		to: &T::AccountId,
		amount: BalanceOf<T>,
	) -> BalanceOf<T> {
		if amount.is_zero() {
			return amount;
		}
		T::Currency::transfer_on_hold(
			&reason.into(),
			creator,
			to,
			amount,
			Precision::Exact,
			Restriction::Free,
			Fortitude::Force,
		)
		.unwrap_or_else(|_| Zero::zero())
	}

	/// Applies the timeout of a job's current stage, if it is still due.
	fn expire(job: JobId, now: BlockNumberFor<T>) {
		let Some(mut info) = Jobs::<T>::get(job) else { return };
		if info.stage_deadline > now {
			return; // the job moved on to a later stage; this entry is stale
		}
		let params = Params::<T>::get();
		match info.status.clone() {
			JobStatus::Open => {
				Self::refund_and_remove(job, &info);
				Self::deposit_event(Event::JobExpired { job });
			}
			JobStatus::Claimed { worker } => {
				let slashed = Self::slash_worker(&worker, params.lease_slash);
				Self::unassign(&worker, job);
				let reopened = now < info.spec.deadline;
				info.status = JobStatus::Open;
				if reopened {
					info.stage_deadline = info.spec.deadline;
					Expiries::<T>::insert(info.spec.deadline, job, ());
					Jobs::<T>::insert(job, info.clone());
				} else {
					Self::refund_and_remove(job, &info);
				}
				Self::deposit_event(Event::LeaseExpired { job, worker, slashed, reopened });
			}
			JobStatus::Committed { worker, semver, .. } => {
				T::Registry::release_semver(info.model, semver);
				let due = T::CreatorForfeitShare::get() * info.reward;
				let amount = Self::pay_from_escrow(&info.creator, &worker, due);
				// The rest (and whatever could not be paid) is refunded; only this job's part of
				// the creator's escrow hold.
				let _ = T::Currency::release(
					&HoldReason::JobEscrow.into(),
					&info.creator,
					info.reward.saturating_sub(amount),
					Precision::BestEffort,
				);
				Self::forget_job(job, &info);
				Self::deposit_event(Event::CreatorForfeited { job, worker, amount });
			}
			JobStatus::ValidationRevealed { worker, semver, .. } => {
				T::Registry::release_semver(info.model, semver);
				let slashed = Self::slash_worker(&worker, params.lease_slash);
				Self::refund_and_remove(job, &info);
				Self::deposit_event(Event::ResultWithheld { job, worker, slashed });
			}
			JobStatus::Verifying { .. } => {}
		}
	}

	fn verifying(job: JobId) -> Result<(JobOf<T>, T::AccountId), DispatchError> {
		let info = Jobs::<T>::get(job).ok_or(Error::<T>::UnknownJob)?;
		match &info.status {
			JobStatus::Verifying { worker, .. } => {
				let worker = worker.clone();
				Ok((info, worker))
			}
			_ => Err(Error::<T>::WrongStage.into()),
		}
	}

	/// Open jobs, oldest first, at most `max` (for the runtime API).
	pub fn open_jobs(max: u32) -> Vec<JobId> {
		let mut open: Vec<JobId> = Jobs::<T>::iter()
			.filter(|(_, job)| job.status == JobStatus::Open)
			.map(|(id, _)| id)
			.collect();
		open.sort_unstable();
		open.truncate(max as usize);
		open
	}
}

impl<T: Config> JobInfo<T::AccountId> for Pallet<T> {
	fn creator(job: JobId) -> Option<T::AccountId> {
		Jobs::<T>::get(job).map(|j| j.creator)
	}

	fn is_open(job: JobId) -> bool {
		Jobs::<T>::get(job).is_some_and(|j| j.status == JobStatus::Open)
	}

	fn worker(job: JobId) -> Option<T::AccountId> {
		Jobs::<T>::get(job).and_then(|j| j.worker().cloned())
	}

	fn exists(job: JobId) -> bool {
		Jobs::<T>::contains_key(job)
	}

	fn trains_adapters(job: JobId) -> bool {
		Jobs::<T>::get(job).is_some_and(|j| j.spec.training.lora.is_some())
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_job(creator: &T::AccountId, worker: Option<&T::AccountId>) -> JobId {
		benchmarking::job_for::<T>(creator, worker)
	}
}

impl<T: Config> JobSettlement<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn escrow(job: JobId) -> Option<BalanceOf<T>> {
		Jobs::<T>::get(job).map(|j| j.reward)
	}

	fn settle_accepted(job: JobId, payouts: &[(T::AccountId, BalanceOf<T>)]) -> DispatchResult {
		let (info, worker) = Self::verifying(job)?;
		let to_miner = Self::pay_out_escrow(&info, &worker, payouts);
		Self::forget_job(job, &info);
		Self::deposit_event(Event::JobAccepted { job, worker, to_miner });
		Ok(())
	}

	fn settle_rejected(
		job: JobId,
		slash: Perbill,
		rewards: &[(T::AccountId, BalanceOf<T>)],
	) -> Result<BalanceOf<T>, DispatchError> {
		let (info, worker) = Self::verifying(job)?;
		let (slashed, burned) = Self::slash_worker_paying(&worker, slash, rewards);
		Self::refund_and_remove(job, &info);
		Self::deposit_event(Event::JobRejected { job, worker, slashed, burned });
		Ok(slashed)
	}

	fn slashable(job: JobId, slash: Perbill) -> BalanceOf<T> {
		Self::verifying(job)
			.ok()
			.and_then(|(_, worker)| Workers::<T>::get(worker))
			.map_or_else(Zero::zero, |w| slash * w.bond)
	}

	fn settle_creator_fault(
		job: JobId,
		payouts: &[(T::AccountId, BalanceOf<T>)],
	) -> DispatchResult {
		let (mut info, worker) = Self::verifying(job)?;
		let creator = info.creator.clone();
		// The miner delivered and the creator made its work unmeasurable: the escrow is paid as
		// for an accepted job (the committee's fees, the rest to the miner)…
		let from_escrow = Self::pay_out_escrow(&info, &worker, payouts);
		// …and the creator's bond goes to the miner too: a trap costs more than an honest job.
		let forfeited =
			Self::pay_held(HoldReason::CreatorBond, &creator, &worker, info.creator_bond);
		// Only what could not be paid is left to release (not another job's bond).
		info.creator_bond = info.creator_bond.saturating_sub(forfeited);
		let to_miner = from_escrow.saturating_add(forfeited);
		Self::forget_job(job, &info);
		Self::deposit_event(Event::CreatorBondForfeited {
			job,
			creator,
			worker,
			forfeited,
			to_miner,
		});
		Ok(())
	}

	fn settle_void(job: JobId) -> DispatchResult {
		let (info, _) = Self::verifying(job)?;
		Self::refund_and_remove(job, &info);
		Self::deposit_event(Event::JobVoided { job });
		Ok(())
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_verifying_job(
		creator: &T::AccountId,
		miner: &T::AccountId,
		reward: BalanceOf<T>,
	) -> (JobId, VerificationRequest<T::AccountId>) {
		benchmarking::verifying_job::<T>(creator, miner, reward)
	}
}

/// What a worker asks the jobs pallet through the runtime.
pub mod runtime_api {
	use super::*;

	sp_api::decl_runtime_apis! {
		/// Job queries.
		pub trait JobsApi<AccountId, Balance, BlockNumber>
		where
			AccountId: codec::Codec,
			Balance: codec::Codec,
			BlockNumber: codec::Codec,
		{
			/// Open jobs, oldest first, at most `max`.
			fn open_jobs(max: u32) -> Vec<JobId>;
			/// One job.
			fn job(job: JobId) -> Option<Job<AccountId, Balance, BlockNumber>>;
			/// The jobs a worker holds.
			fn worker_jobs(worker: AccountId) -> Vec<JobId>;
		}
	}
}
