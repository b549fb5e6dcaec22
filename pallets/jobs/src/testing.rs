//! Fixtures for the tests of this pallet and of the pallets built on it (behind the
//! `test-fixtures` feature): a job's spec and result, and the calls that take a job from its post
//! to the miner's reveal, the set-up every protocol pallet's tests start from.

use crate::*;
use blyan_primitives::pol::LayerDelta;

/// The salt of the fixtures' commitments (validation set and result).
pub const SALT: [u8; 32] = [7; 32];

pub fn cid(s: &str) -> Cid {
	Cid::truncate_from(s.as_bytes().to_vec())
}

/// The validation set every fixture job commits to (with [`SALT`]).
pub fn validation_cid() -> Cid {
	cid("bafyvalidation")
}

/// A CPU job training `training` from version `base` on `dataset` until `deadline`, its
/// validation set [`validation_cid`]: seed 1, no memory floor, a lease of 10 blocks, the chain's
/// improvement threshold.
pub fn job_spec<BlockNumber: From<u32>>(
	base: VersionId,
	dataset: DatasetId,
	training: TrainingParams,
	deadline: BlockNumber,
) -> JobSpec<BlockNumber> {
	JobSpec {
		base_version: base,
		dataset,
		validation_commitment: validation_commitment(&validation_cid(), &SALT),
		training,
		seed: 1,
		backend: Backend::Cpu,
		min_memory_mb: 0,
		deadline,
		lease: 10.into(),
		min_improvement: None,
	}
}

/// A result under `semver` that changes layer 1 (`bafynew`, root `0x01…`), giving the weights
/// `weight_root`, trained as `trace` says.
pub fn job_result(semver: SemVer, weight_root: H256, trace: Option<TraceCommitment>) -> JobResult {
	JobResult {
		semver,
		layers: LayerDeltas::truncate_from(alloc::vec![LayerDelta {
			layer: 1,
			cid: cid("bafynew"),
			merkle_root: H256::repeat_byte(1),
		}]),
		weight_root,
		trace,
	}
}

/// `creator` posts `spec` for `reward`; `miner` claims it and commits to `result`; the creator
/// reveals the validation set. The job then waits for the miner's reveal
/// ([`Pallet::reveal_result`]). `spec` must commit to [`validation_cid`] with [`SALT`], as
/// [`job_spec`] does.
pub fn job_to_reveal<T: Config>(
	creator: T::AccountId,
	miner: T::AccountId,
	spec: JobSpec<BlockNumberFor<T>>,
	reward: BalanceOf<T>,
	result: &JobResult,
) -> Result<JobId, DispatchError> {
	let job = NextJobId::<T>::get();
	let signed = |who: &T::AccountId| frame_system::RawOrigin::Signed(who.clone());
	Pallet::<T>::post_job(signed(&creator).into(), spec, reward)?;
	Pallet::<T>::claim_job(signed(&miner).into(), job)?;
	let hash = result_commitment(job, &miner, result, &SALT);
	Pallet::<T>::commit_result(signed(&miner).into(), job, hash, result.semver)?;
	Pallet::<T>::reveal_validation(signed(&creator).into(), job, validation_cid(), SALT)?;
	Ok(job)
}
