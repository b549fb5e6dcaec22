//! The free tier's storage invariants: checked by `try-runtime` after each block and by the
//! mock runtime after every test.

use super::*;
use sp_runtime::TryRuntimeError;

impl<T: Config> Pallet<T> {
	/// No usage record of a day already pruned (the state stays bounded), and no block admitting
	/// more free requests than `max_free_per_block` can ever be (half of `MaxPrunePerBlock`: the
	/// parameter itself may have been lowered since the last free request).
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		let pruned_before = PrunedBefore::<T>::get();
		ensure!(
			Usage::<T>::iter_keys().all(|(day, _)| day >= pruned_before),
			"a usage record of a pruned day"
		);
		let (_, count) = BlockCount::<T>::get();
		ensure!(
			count <= T::MaxPrunePerBlock::get() / 2,
			"a block admitted more free requests than allowed"
		);
		Ok(())
	}
}
