//! The jobs pallet's storage invariants: checked by `try-runtime` after each block and by the
//! mock runtimes after every test.

use super::*;
use alloc::collections::BTreeMap;
use sp_runtime::TryRuntimeError;

impl<T: Config> Pallet<T> {
	/// Holds matching the records (each worker's bond, each creator's escrow as the sum of its
	/// live jobs' rewards, its bond hold as the sum of their bonds), each creator's job count, every held job listed under its worker and
	/// every listed one held, and every job short of verification due in the deadline index.
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		for (worker, info) in Workers::<T>::iter() {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::WorkerBond.into(), &worker) == info.bond,
				"a worker's bond hold differs from its record"
			);
		}
		let mut escrow: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		let mut bonds: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		let mut jobs_of: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		for (id, job) in Jobs::<T>::iter() {
			ensure!(id < NextJobId::<T>::get(), "a job id at or above NextJobId");
			let held = escrow.entry(job.creator.clone()).or_default();
			*held = held.saturating_add(job.reward);
			let bond = bonds.entry(job.creator.clone()).or_default();
			*bond = bond.saturating_add(job.creator_bond);
			*jobs_of.entry(job.creator.clone()).or_default() += 1;
			if let Some(worker) = job.worker() {
				ensure!(
					WorkerJobs::<T>::get(worker).contains(&id),
					"a held job missing from its worker's list"
				);
			}
			if !matches!(job.status, JobStatus::Verifying { .. }) {
				ensure!(
					Expiries::<T>::contains_key(job.stage_deadline, id),
					"a job not due at its stage deadline"
				);
			}
		}
		for (creator, held) in &escrow {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::JobEscrow.into(), creator) == *held,
				"a creator's escrow hold is not the sum of its jobs' rewards"
			);
		}
		for (creator, bond) in &bonds {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::CreatorBond.into(), creator) == *bond,
				"a creator's bond hold is not the sum of its jobs' bonds"
			);
		}
		ensure!(
			CreatorJobCount::<T>::iter().all(|(creator, n)| jobs_of.get(&creator) == Some(&n))
				&& jobs_of.len() == CreatorJobCount::<T>::iter().count(),
			"CreatorJobCount does not count each creator's jobs"
		);
		for (worker, jobs) in WorkerJobs::<T>::iter() {
			for id in jobs {
				let job = Jobs::<T>::get(id).ok_or("a worker lists a job that is gone")?;
				ensure!(job.worker() == Some(&worker), "a worker lists another's job");
			}
		}
		Ok(())
	}
}
