//! The governance pallet's storage invariants: checked by `try-runtime` after each block and by
//! the mock runtime after every test.

use super::*;
use sp_runtime::TryRuntimeError;

impl<T: Config> Pallet<T> {
	/// Every parameter the pallet keeps within its bounds.
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		for parameter in economics_parameters::<T>(&Economics::<T>::get())
			.into_iter()
			.chain(timing_parameters::<T>(&Timings::<T>::get()))
		{
			Self::check_bounds(&parameter)?;
		}
		Ok(())
	}
}
