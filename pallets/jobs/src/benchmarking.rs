//! Benchmarks of the jobs pallet's calls at their worst case.
#![cfg(feature = "runtime-benchmarks")]

use super::*;
use blyan_primitives::pol::{LayerDelta, LayerIndex, BENCHMARK_CLAIM, MAX_LAYERS};
use frame_benchmarking::v2::*;
use frame_system::RawOrigin;

const SALT: [u8; 32] = [3; 32];

/// Enough for a bond, several rewards and the existential deposit.
pub(crate) fn fund<T: Config>(who: &T::AccountId) {
	let params = Params::<T>::get();
	let amount = (params.min_worker_bond.saturating_add(params.min_reward))
		.saturating_mul(100u32.into())
		.saturating_add(T::Currency::minimum_balance().saturating_mul(100u32.into()));
	T::Currency::set_balance(who, amount);
}

fn capabilities() -> Capabilities {
	Capabilities {
		backends: BoundedVec::truncate_from(alloc::vec![
			Backend::Cpu,
			Backend::Cuda,
			Backend::Wgpu
		]),
		memory_mb: u32::MAX,
	}
}

fn worker<T: Config>(who: &T::AccountId) {
	fund::<T>(who);
	let bond = Params::<T>::get().min_worker_bond;
	Pallet::<T>::register_worker(RawOrigin::Signed(who.clone()).into(), capabilities(), bond)
		.expect("funded account registers");
}

fn validation_cid() -> Cid {
	Cid::truncate_from(b"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".to_vec())
}

fn spec<T: Config>(
	base_version: VersionId,
	dataset: DatasetId,
	backend: Backend,
) -> JobSpec<BlockNumberFor<T>> {
	let params = Params::<T>::get();
	JobSpec {
		base_version,
		dataset,
		validation_commitment: validation_commitment(&validation_cid(), &SALT),
		training: TrainingParams::DEFAULT,
		seed: 1,
		backend,
		min_memory_mb: 0,
		deadline: frame_system::Pallet::<T>::block_number()
			.saturating_add(params.max_lease)
			.saturating_add(1000u32.into()),
		lease: params.max_lease,
		min_improvement: None,
	}
}

/// A funded creator's open job on a fresh fixture model, trained on `backend`, with the
/// minimum reward.
fn open_job<T: Config>(creator: &T::AccountId, backend: Backend) -> JobId {
	open_job_with::<T>(creator, backend, Params::<T>::get().min_reward)
}

/// As [`open_job`], with `reward` or the minimum if that is more.
fn open_job_with<T: Config>(
	creator: &T::AccountId,
	backend: Backend,
	reward: BalanceOf<T>,
) -> JobId {
	fund::<T>(creator);
	let reward = reward.max(Params::<T>::get().min_reward);
	// The reward and the creator's bond on it, on top of the usual funds.
	let funds = T::Currency::balance(creator).saturating_add(reward.saturating_mul(2u32.into()));
	T::Currency::set_balance(creator, funds);
	let (version, dataset) = T::Registry::benchmark_fixture(creator);
	let job = NextJobId::<T>::get();
	Pallet::<T>::post_job(
		RawOrigin::Signed(creator.clone()).into(),
		spec::<T>(version, dataset, backend),
		reward,
	)
	.expect("funded creator posts");
	job
}

/// An open job of `creator`'s, claimed by `worker` if given (for pallets built on jobs).
pub(crate) fn job_for<T: Config>(creator: &T::AccountId, claimant: Option<&T::AccountId>) -> JobId {
	let job = open_job::<T>(creator, Backend::Cpu);
	if let Some(w) = claimant {
		worker::<T>(w);
		Pallet::<T>::claim_job(RawOrigin::Signed(w.clone()).into(), job)
			.expect("a registered worker claims");
	}
	job
}

/// A result changing `layers` layers, above the fixture's 1.0.0, with a training trace if
/// `traced` (a CPU job's, which the audit re-runs).
fn job_result(layers: u32, traced: bool) -> JobResult {
	JobResult {
		semver: SemVer::new(1, 1, 0),
		layers: LayerDeltas::truncate_from(
			(0..layers as LayerIndex)
				.map(|layer| LayerDelta {
					layer,
					cid: validation_cid(),
					merkle_root: H256::repeat_byte(1),
				})
				.collect(),
		),
		weight_root: H256::repeat_byte(2),
		trace: traced.then(|| TraceCommitment {
			root: H256::repeat_byte(3),
			steps: TrainingParams::DEFAULT.steps,
			interval: 4,
			cid: validation_cid(),
		}),
	}
}

/// A job taken to `ValidationRevealed` by `miner`, committed to `job_result(layers, traced)`:
/// a CPU job if `traced` (its result goes to the training audit), else a CUDA one (straight to
/// scoring).
fn revealed_validation<T: Config>(
	creator: &T::AccountId,
	miner: &T::AccountId,
	layers: u32,
	traced: bool,
	reward: BalanceOf<T>,
) -> JobId {
	let backend = if traced { Backend::Cpu } else { Backend::Cuda };
	let job = open_job_with::<T>(creator, backend, reward);
	worker::<T>(miner);
	let signed = |who: &T::AccountId| -> OriginFor<T> { RawOrigin::Signed(who.clone()).into() };
	let hash = result_commitment(job, miner, &job_result(layers, traced), &SALT);
	Pallet::<T>::claim_job(signed(miner), job).expect("open job is claimable");
	Pallet::<T>::commit_result(signed(miner), job, hash, job_result(layers, traced).semver)
		.expect("claimed job accepts a commit");
	Pallet::<T>::reveal_validation(signed(creator), job, validation_cid(), SALT)
		.expect("creator's reveal matches");
	job
}

/// For the PoL pallet's benchmarks: a job under verification (a CUDA job: scored, not
/// audited, so no audit timer competes with theirs).
pub(crate) fn verifying_job<T: Config>(
	creator: &T::AccountId,
	miner: &T::AccountId,
	reward: BalanceOf<T>,
) -> (JobId, VerificationRequest<T::AccountId>) {
	let job = revealed_validation::<T>(creator, miner, 1, false, reward);
	let (score, claim_salt) = BENCHMARK_CLAIM;
	let claim = claim_commitment(job, miner, score, &claim_salt);
	Pallet::<T>::reveal_result(
		RawOrigin::Signed(miner.clone()).into(),
		job,
		job_result(1, false),
		claim,
		SALT,
	)
	.expect("committed result reveals");
	let info = Jobs::<T>::get(job).expect("job exists");
	let candidate = match info.status {
		JobStatus::Verifying { candidate, .. } => candidate,
		_ => 0,
	};
	let request = VerificationRequest {
		creator: creator.clone(),
		miner: miner.clone(),
		dataset: info.spec.dataset,
		base_version: info.spec.base_version,
		candidate_version: candidate,
		claim,
		min_improvement: info.min_improvement,
		trace: None,
	};
	(job, request)
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn register_worker() {
		let who: T::AccountId = whitelisted_caller();
		fund::<T>(&who);
		let bond = Params::<T>::get().min_worker_bond;
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), capabilities(), bond);
		assert!(Workers::<T>::contains_key(&who));
	}

	#[benchmark]
	fn update_capabilities() {
		let who: T::AccountId = whitelisted_caller();
		worker::<T>(&who);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), capabilities());
	}

	#[benchmark]
	fn unbond_worker() {
		let who: T::AccountId = whitelisted_caller();
		worker::<T>(&who);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(Workers::<T>::get(&who).is_some_and(|w| w.unbonding_until.is_some()));
	}

	#[benchmark]
	fn withdraw_worker() {
		let who: T::AccountId = whitelisted_caller();
		worker::<T>(&who);
		Workers::<T>::mutate(&who, |w| {
			if let Some(w) = w {
				w.unbonding_until = Some(Zero::zero());
			}
		});
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(!Workers::<T>::contains_key(&who));
	}

	#[benchmark]
	fn post_job() {
		let creator: T::AccountId = whitelisted_caller();
		fund::<T>(&creator);
		let (version, dataset) = T::Registry::benchmark_fixture(&creator);
		let reward = Params::<T>::get().min_reward;
		#[extrinsic_call]
		_(RawOrigin::Signed(creator), spec::<T>(version, dataset, Backend::Cpu), reward);
		assert!(Jobs::<T>::contains_key(0));
	}

	#[benchmark]
	fn cancel_job() {
		let creator: T::AccountId = whitelisted_caller();
		let job = open_job::<T>(&creator, Backend::Cpu);
		#[extrinsic_call]
		_(RawOrigin::Signed(creator), job);
		assert!(!Jobs::<T>::contains_key(job));
	}

	#[benchmark]
	fn claim_job() {
		let creator: T::AccountId = account("creator", 0, 0);
		let miner: T::AccountId = whitelisted_caller();
		let job = open_job::<T>(&creator, Backend::Cpu);
		worker::<T>(&miner);
		#[extrinsic_call]
		_(RawOrigin::Signed(miner), job);
		assert!(Jobs::<T>::get(job).is_some_and(|j| j.status != JobStatus::Open));
	}

	#[benchmark]
	fn commit_result() {
		let creator: T::AccountId = account("creator", 0, 0);
		let miner: T::AccountId = whitelisted_caller();
		let job = open_job::<T>(&creator, Backend::Cpu);
		worker::<T>(&miner);
		Pallet::<T>::claim_job(RawOrigin::Signed(miner.clone()).into(), job)
			.expect("open job is claimable");
		#[extrinsic_call]
		_(RawOrigin::Signed(miner), job, H256::repeat_byte(9), SemVer::new(1, 1, 0));
	}

	#[benchmark]
	fn reveal_validation() {
		let creator: T::AccountId = whitelisted_caller();
		let miner: T::AccountId = account("miner", 0, 0);
		let job = open_job::<T>(&creator, Backend::Cpu);
		worker::<T>(&miner);
		Pallet::<T>::claim_job(RawOrigin::Signed(miner.clone()).into(), job)
			.expect("open job is claimable");
		Pallet::<T>::commit_result(
			RawOrigin::Signed(miner).into(),
			job,
			H256::repeat_byte(9),
			SemVer::new(1, 1, 0),
		)
		.expect("claimed job accepts a commit");
		#[extrinsic_call]
		_(RawOrigin::Signed(creator), job, validation_cid(), SALT);
	}

	#[benchmark]
	fn reveal_result(l: Linear<1, MAX_LAYERS>) {
		let creator: T::AccountId = account("creator", 0, 0);
		let miner: T::AccountId = whitelisted_caller();
		// A traced CPU job: its reveal also starts the training audit (the dearer path).
		let job = revealed_validation::<T>(&creator, &miner, l, true, Zero::zero());
		#[extrinsic_call]
		_(RawOrigin::Signed(miner), job, job_result(l, true), H256::repeat_byte(1), SALT);
		assert!(
			Jobs::<T>::get(job).is_some_and(|j| matches!(j.status, JobStatus::Verifying { .. }))
		);
	}

	/// `n` withheld results, the dearest timeout: each slashes a worker, frees a reserved
	/// SemVer, refunds an escrow and removes the job.
	#[benchmark]
	fn on_initialize(n: Linear<0, { T::MaxExpiriesPerBlock::get() }>) {
		let mut due = Zero::zero();
		for i in 0..n {
			let creator: T::AccountId = account("creator", i, 0);
			let miner: T::AccountId = account("miner", i, 0);
			let job = revealed_validation::<T>(&creator, &miner, 1, true, Zero::zero());
			due = Jobs::<T>::get(job).map(|j| j.stage_deadline).unwrap_or(due);
		}
		// All reveal windows end at the same block, where the index cursor stands.
		frame_system::Pallet::<T>::set_block_number(due);
		ExpiryCursor::<T>::put(due);
		#[block]
		{
			Pallet::<T>::on_initialize(due);
		}
		assert!(Expiries::<T>::iter_key_prefix(due).next().is_none());
		assert_eq!(Jobs::<T>::iter().count(), 0);
	}

	// Benchmark fixtures write worst-case storage directly: no invariant checks.
	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext().unchecked(), crate::mock::Test);
}
