//! The governance pallet's storage invariants: checked by `try-runtime` after each block and by
//! the mock runtime after every test.

use super::*;
use sp_runtime::TryRuntimeError;

impl<T: Config> Pallet<T> {
	/// Every parameter the pallet keeps within its bounds, and no root change dated in the future
	/// (which would stretch its cooldown).
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		for parameter in economics_parameters::<T>(&Economics::<T>::get())
			.into_iter()
			.chain(timing_parameters::<T>(&Timings::<T>::get()))
		{
			Self::check_bounds(&parameter)?;
		}
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(
			LastRootChange::<T>::iter_values().all(|at| at <= now),
			"a root change dated in the future"
		);
		Ok(())
	}
}
