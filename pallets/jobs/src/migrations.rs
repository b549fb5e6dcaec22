//! Storage migrations of the jobs pallet.

use super::*;

/// v0 → v2: typed hyper-parameters and a creator bond in each job (issue #18, item 11),
/// written straight in v2's layout (no schedule, no LoRA: what v0 jobs ran), so a v0 chain
/// skips [`MigrateV1ToV2`].
///
/// v0 jobs carried their hyper-parameters as JSON, searched by the runtime for `"steps"`. Each
/// is translated with [`TrainingParams::from_legacy_json`], which reads exactly the flat object
/// the worker wrote and nothing two readers could read differently. A job it cannot read ends
/// as if its creator had cancelled it (escrow back, the worker released unslashed, a reserved
/// SemVer freed, event `JobCancelled`), except one under verification: Proof-of-Learning owns
/// its outcome and its committee would score it with other parameters than its miner did, so
/// `pre_upgrade` refuses a chain holding one (try-runtime catches it before the upgrade); on a
/// chain upgraded regardless it keeps the worker's defaults (`TrainingParams::DEFAULT`).
/// Migrated jobs hold no creator bond (zero): the bond is taken at posting, and taking it now
/// could fail on a spent balance.
pub type MigrateV0ToV2<T> = frame_support::migrations::VersionedMigration<
	0,
	2,
	v1::TypedTrainingParams<T>,
	Pallet<T>,
	<T as frame_system::Config>::DbWeight,
>;

pub mod v1 {
	use super::*;
	use frame_support::{storage_alias, traits::UncheckedOnRuntimeUpgrade};

	/// The job as v0 stored it.
	#[derive(Encode, Decode)]
	pub struct OldJobSpec<BlockNumber> {
		pub base_version: VersionId,
		pub dataset: DatasetId,
		pub validation_commitment: H256,
		pub hyperparams: BoundedVec<u8, ConstU32<1024>>,
		pub seed: u64,
		pub backend: Backend,
		pub min_memory_mb: u32,
		pub deadline: BlockNumber,
		pub lease: BlockNumber,
		pub min_improvement: Option<sp_runtime::Perbill>,
	}

	/// The job as v0 stored it.
	#[derive(Encode, Decode)]
	pub struct OldJob<AccountId, Balance, BlockNumber> {
		pub creator: AccountId,
		pub model: ModelId,
		pub spec: OldJobSpec<BlockNumber>,
		pub reward: Balance,
		pub min_improvement: sp_runtime::Perbill,
		pub status: JobStatus<AccountId>,
		pub stage_deadline: BlockNumber,
		pub validation: Option<ValidationSet>,
	}

	pub type OldJobOf<T> =
		OldJob<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

	/// v0's `Jobs`, for tests that write a v0 chain.
	#[storage_alias]
	pub type Jobs<T: Config> = StorageMap<Pallet<T>, Blake2_128Concat, JobId, OldJobOf<T>>;

	/// The inner step of [`super::MigrateV0ToV2`] (run only when the on-chain version is 0).
	pub struct TypedTrainingParams<T>(core::marker::PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for TypedTrainingParams<T> {
		fn on_runtime_upgrade() -> Weight {
			// Pre-launch state is small; a chain with many live jobs would need a multi-block
			// migration instead.
			let mut unreadable = Vec::new();
			let mut count = 0u64;
			crate::Jobs::<T>::translate::<OldJobOf<T>, _>(|id, old| {
				count = count.saturating_add(1);
				let training = TrainingParams::from_legacy_json(&old.spec.hyperparams);
				let verifying = matches!(old.status, JobStatus::Verifying { .. });
				let job = Job {
					creator: old.creator,
					model: old.model,
					spec: JobSpec {
						base_version: old.spec.base_version,
						dataset: old.spec.dataset,
						validation_commitment: old.spec.validation_commitment,
						training: training.unwrap_or(TrainingParams::DEFAULT),
						seed: old.spec.seed,
						backend: old.spec.backend,
						min_memory_mb: old.spec.min_memory_mb,
						deadline: old.spec.deadline,
						lease: old.spec.lease,
						min_improvement: old.spec.min_improvement,
					},
					reward: old.reward,
					creator_bond: Zero::zero(),
					min_improvement: old.min_improvement,
					status: old.status,
					stage_deadline: old.stage_deadline,
					validation: old.validation,
				};
				if training.is_none() && !verifying {
					unreadable.push(id);
				}
				Some(job)
			});
			for &id in &unreadable {
				let Some(info) = crate::Jobs::<T>::get(id) else { continue };
				if let JobStatus::Committed { semver, .. }
				| JobStatus::ValidationRevealed { semver, .. } = &info.status
				{
					T::Registry::release_semver(info.model, *semver);
				}
				Pallet::<T>::unschedule(id, info.stage_deadline);
				Pallet::<T>::refund_and_remove(id, &info);
				Pallet::<T>::deposit_event(Event::JobCancelled { job: id });
			}
			// Each ended job: its record, the creator's count, the worker's list, the deadline
			// index, two holds and the registry's reservation.
			let ended = unreadable.len() as u64;
			T::DbWeight::get().reads_writes(
				count.saturating_add(ended.saturating_mul(5)),
				count.saturating_add(ended.saturating_mul(7)),
			)
		}

		#[cfg(feature = "try-runtime")]
		fn pre_upgrade() -> Result<Vec<u8>, sp_runtime::TryRuntimeError> {
			let unreadable_verifying = Jobs::<T>::iter().any(|(_, job)| {
				matches!(job.status, JobStatus::Verifying { .. })
					&& TrainingParams::from_legacy_json(&job.spec.hyperparams).is_none()
			});
			ensure!(
				!unreadable_verifying,
				"a job under verification has hyper-parameters the migration cannot read: \
				 let it settle before upgrading"
			);
			Ok((Jobs::<T>::iter().count() as u64).encode())
		}

		#[cfg(feature = "try-runtime")]
		fn post_upgrade(state: Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
			let before = u64::decode(&mut &state[..]).map_err(|_| "pre_upgrade state")?;
			let after = crate::Jobs::<T>::iter().count() as u64;
			ensure!(after <= before, "the migration created jobs");
			ensure!(
				crate::Jobs::<T>::iter().all(|(_, job)| job.spec.training.check().is_ok()),
				"a migrated job's parameters fail their bounds"
			);
			Pallet::<T>::do_try_state()
		}
	}
}

/// v1 → v2: each job's [`TrainingParams`] gain a step schedule and LoRA (issue #22). A v1 job
/// had neither: it keeps its numbers with [`StepScheduleParams::NONE`] and `lora: None`, which
/// train exactly as v1 did.
pub type MigrateV1ToV2<T> = frame_support::migrations::VersionedMigration<
	1,
	2,
	v2::ScheduleAndLora<T>,
	Pallet<T>,
	<T as frame_system::Config>::DbWeight,
>;

pub mod v2 {
	use super::*;
	use blyan_primitives::training::StepScheduleParams;
	use frame_support::{storage_alias, traits::UncheckedOnRuntimeUpgrade};

	/// v1's hyper-parameters.
	#[derive(Clone, Copy, Encode, Decode)]
	pub struct OldTrainingParams {
		pub steps: u32,
		pub batch_size: u32,
		pub seq_len: u32,
		pub learning_rate: Perbill,
		pub weight_decay: Perbill,
		pub eval_batches: u32,
	}

	impl From<OldTrainingParams> for TrainingParams {
		fn from(old: OldTrainingParams) -> Self {
			TrainingParams {
				steps: old.steps,
				batch_size: old.batch_size,
				seq_len: old.seq_len,
				learning_rate: old.learning_rate,
				weight_decay: old.weight_decay,
				eval_batches: old.eval_batches,
				schedule: StepScheduleParams::NONE,
				lora: None,
			}
		}
	}

	/// The job as v1 stored it.
	#[derive(Encode, Decode)]
	pub struct OldJobSpec<BlockNumber> {
		pub base_version: VersionId,
		pub dataset: DatasetId,
		pub validation_commitment: H256,
		pub training: OldTrainingParams,
		pub seed: u64,
		pub backend: Backend,
		pub min_memory_mb: u32,
		pub deadline: BlockNumber,
		pub lease: BlockNumber,
		pub min_improvement: Option<Perbill>,
	}

	/// The job as v1 stored it.
	#[derive(Encode, Decode)]
	pub struct OldJob<AccountId, Balance, BlockNumber> {
		pub creator: AccountId,
		pub model: ModelId,
		pub spec: OldJobSpec<BlockNumber>,
		pub reward: Balance,
		pub creator_bond: Balance,
		pub min_improvement: Perbill,
		pub status: JobStatus<AccountId>,
		pub stage_deadline: BlockNumber,
		pub validation: Option<ValidationSet>,
	}

	pub type OldJobOf<T> =
		OldJob<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

	/// v1's `Jobs`, for tests that write a v1 chain.
	#[storage_alias]
	pub type Jobs<T: Config> = StorageMap<Pallet<T>, Blake2_128Concat, JobId, OldJobOf<T>>;

	/// The inner step of [`super::MigrateV1ToV2`] (run only when the on-chain version is 1).
	pub struct ScheduleAndLora<T>(core::marker::PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for ScheduleAndLora<T> {
		fn on_runtime_upgrade() -> Weight {
			let mut count = 0u64;
			crate::Jobs::<T>::translate::<OldJobOf<T>, _>(|_, old| {
				count = count.saturating_add(1);
				let spec = old.spec;
				Some(Job {
					creator: old.creator,
					model: old.model,
					spec: JobSpec {
						base_version: spec.base_version,
						dataset: spec.dataset,
						validation_commitment: spec.validation_commitment,
						training: spec.training.into(),
						seed: spec.seed,
						backend: spec.backend,
						min_memory_mb: spec.min_memory_mb,
						deadline: spec.deadline,
						lease: spec.lease,
						min_improvement: spec.min_improvement,
					},
					reward: old.reward,
					creator_bond: old.creator_bond,
					min_improvement: old.min_improvement,
					status: old.status,
					stage_deadline: old.stage_deadline,
					validation: old.validation,
				})
			});
			T::DbWeight::get().reads_writes(count, count)
		}

		#[cfg(feature = "try-runtime")]
		fn pre_upgrade() -> Result<Vec<u8>, sp_runtime::TryRuntimeError> {
			Ok((Jobs::<T>::iter().count() as u64).encode())
		}

		#[cfg(feature = "try-runtime")]
		fn post_upgrade(state: Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
			let before = u64::decode(&mut &state[..]).map_err(|_| "pre_upgrade state")?;
			let after = crate::Jobs::<T>::iter().count() as u64;
			ensure!(after == before, "the migration lost or created jobs");
			ensure!(
				crate::Jobs::<T>::iter().all(|(_, job)| job.spec.training.check().is_ok()),
				"a migrated job's parameters fail their bounds"
			);
			Pallet::<T>::do_try_state()
		}
	}
}
