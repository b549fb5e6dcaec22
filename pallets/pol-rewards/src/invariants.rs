//! The PoL pallet's storage invariants: checked by `try-runtime` after each block and by the
//! mock runtimes after every test.

use super::*;
use alloc::collections::{BTreeMap, BTreeSet};
use sp_runtime::TryRuntimeError;

impl<T: Config> Pallet<T> {
	/// Bond holds matching the records; the draw set of distinct, registered, non-unbonding
	/// verifiers; committee seats and assignments naming each other; every round due in the
	/// deadline index at its phase's end and holding a claim only in its reveal phase (or after
	/// a redraw); each epoch's count of unclaimed earners matching its points; and every
	/// rewarded model's head an accepted version of that model, within `MaxRewardedModels`.
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		for (verifier, info) in Verifiers::<T>::iter() {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::VerifierBond.into(), &verifier)
					== info.bond,
				"a verifier's bond hold differs from its record"
			);
		}
		let active = ActiveVerifiers::<T>::get();
		ensure!(
			active.iter().collect::<BTreeSet<_>>().len() == active.len(),
			"a verifier twice in the draw set"
		);
		for verifier in active.iter() {
			let info =
				Verifiers::<T>::get(verifier).ok_or("an unregistered verifier in the draw")?;
			ensure!(info.unbonding_until.is_none(), "an unbonding verifier in the draw set");
		}
		for (job, round) in Rounds::<T>::iter() {
			ensure!(
				Deadlines::<T>::contains_key(round.deadline, job),
				"a round not due at its phase's end"
			);
			ensure!(
				round.claimed_score.is_none() || round.phase == Phase::Reveal || round.attempt > 0,
				"a claim revealed before the commitments closed"
			);
			ensure!(
				(round.phase == Phase::Drawing) == round.committee.is_empty(),
				"a committee missing while committing or revealing, or kept while drawing"
			);
			for member in round.committee.iter() {
				ensure!(
					Assignments::<T>::get(&member.verifier).contains(&job),
					"a committee seat missing from its verifier's assignments"
				);
				ensure!(
					member.scores.is_none() || member.commitment.is_some(),
					"scores revealed without a commitment"
				);
			}
		}
		for (verifier, jobs) in Assignments::<T>::iter() {
			for job in jobs {
				let round = Rounds::<T>::get(job).ok_or("an assignment to a decided round")?;
				ensure!(
					round.committee.iter().any(|m| m.verifier == verifier),
					"an assignment to a round without that verifier's seat"
				);
			}
		}
		let mut earners: BTreeMap<EpochIndex, u32> = BTreeMap::new();
		for (epoch, _, _) in EpochPoints::<T>::iter() {
			*earners.entry(epoch).or_default() += 1;
		}
		for (epoch, info) in Epochs::<T>::iter() {
			ensure!(
				earners.get(&epoch).copied().unwrap_or(0) == info.unclaimed,
				"an epoch's unclaimed count differs from its earners"
			);
		}
		ensure!(
			earners.keys().all(Epochs::<T>::contains_key),
			"points in an epoch without its record"
		);
		let mut rewarded = 0u32;
		for (model, head) in RewardedModels::<T>::iter() {
			let version =
				T::Registry::version(head).ok_or("a rewarded head that does not exist")?;
			ensure!(version.model == model, "a rewarded head of another model");
			ensure!(version.status == VersionStatus::Accepted, "a rewarded head not accepted");
			rewarded += 1;
		}
		ensure!(rewarded == RewardedModels::<T>::count(), "the rewarded models' count is off");
		ensure!(rewarded <= T::MaxRewardedModels::get(), "more rewarded models than allowed");
		Ok(())
	}
}
