//! The federated pallet's storage invariants: checked by `try-runtime` after each block and by
//! the mock runtime after every test.

use super::*;
use alloc::collections::BTreeMap;
use frame_support::traits::fungible::InspectHold;
use sp_runtime::{traits::Saturating, TryRuntimeError};

impl<T: Config> Pallet<T> {
	/// Each job's recorded rounds exactly its first `rounds_done` of `spec.rounds`, naming only
	/// its participants; no round of a job that is gone; and each participant's bond hold the sum
	/// of its bonds in open jobs.
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		let mut bonds: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		for (job, info) in Jobs::<T>::iter() {
			ensure!(info.rounds_done <= info.spec.rounds, "more rounds done than the job has");
			let participants = info.participants.len();
			for round in 0..info.spec.rounds {
				let record = Rounds::<T>::get(job, round);
				ensure!(
					record.is_some() == (round < info.rounds_done),
					"recorded rounds differ from rounds_done"
				);
				if let Some(record) = record {
					ensure!(
						record.contributors.iter().all(|i| usize::from(*i) < participants),
						"a round names a contributor who did not join"
					);
				}
			}
			for member in info.participants.iter() {
				let held = bonds.entry(member.who.clone()).or_default();
				*held = held.saturating_add(member.bond);
			}
		}
		ensure!(
			Rounds::<T>::iter_keys().all(|(job, _)| Jobs::<T>::contains_key(job)),
			"a round of a job that is gone"
		);
		for (who, held) in bonds {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ParticipantBond.into(), &who) == held,
				"a participant's bond hold is not the sum of its bonds"
			);
		}
		Ok(())
	}
}
