//! The training audit's storage invariants: checked by `try-runtime` after each block and by the
//! mock runtimes after every test.

use super::*;
use alloc::collections::BTreeMap;
use sp_runtime::TryRuntimeError;

impl<T: Config> Pallet<T> {
	/// Every audit short of closing and every dispute due in the deadline index at its phase's
	/// or move's end (a closing audit waits for its disputes instead, so it has some); each
	/// audit's count of open disputes matching its disputes, whose ids it has issued and whose
	/// range is not empty unless the trace refuted itself (its leaves' steps are the miner's);
	/// and each challenger's bond hold the sum of its open disputes' bonds.
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		for (job, audit) in Audits::<T>::iter() {
			if audit.phase == AuditPhase::Closing {
				ensure!(audit.open_disputes > 0, "a closing audit with no dispute to wait for");
			} else {
				ensure!(
					Deadlines::<T>::contains_key(audit.deadline, Timer::Audit(job)),
					"an audit not due at its phase's end"
				);
			}
			let open = Disputes::<T>::iter_prefix(job).count() as u32;
			ensure!(open == audit.open_disputes, "open_disputes differs from the disputes held");
		}
		let mut bonds: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		for (job, challenge, dispute) in Disputes::<T>::iter() {
			let audit = Audits::<T>::get(job).ok_or("a dispute of an audit that is gone")?;
			ensure!(challenge < audit.next_challenge, "a dispute id the audit never issued");
			ensure!(
				dispute.lo < dispute.hi || dispute.stage == DisputeStage::Refuted,
				"a dispute over an empty range"
			);
			ensure!(
				Deadlines::<T>::contains_key(dispute.deadline, Timer::Dispute(job, challenge)),
				"a dispute not due at its move's end"
			);
			let held = bonds.entry(dispute.challenger).or_default();
			*held = held.saturating_add(dispute.bond);
		}
		for (challenger, held) in bonds {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ChallengeBond.into(), &challenger)
					== held,
				"a challenger's bond hold is not the sum of its disputes' bonds"
			);
		}
		Ok(())
	}
}
