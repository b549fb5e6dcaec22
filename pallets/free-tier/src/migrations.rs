//! Storage migrations of the free tier.

use super::*;

/// v0 → v1: usage keyed by day and pruned (issue #18, item 7), and seals recorded per day.
///
/// v0 kept one `Usage` entry per account forever (`account → (day, used)`) and each account's
/// last seal in `LastSealBlock`: the state grew with every fresh key. Both are dropped: the
/// v1 `Usage` map shares the old prefix but not its key layout, so old entries would be read
/// as garbage. Forgetting them costs at most one day's free quota granted twice, and the v1
/// seal rule (a later block each time, per day) starts afresh. Pruning restarts at yesterday,
/// not day 0.
pub type MigrateV0ToV1<T> = frame_support::migrations::VersionedMigration<
	0,
	1,
	v1::DropUnboundedUsage<T>,
	Pallet<T>,
	<T as frame_system::Config>::DbWeight,
>;

pub mod v1 {
	use super::*;
	use frame_support::{
		storage::migration::clear_storage_prefix,
		traits::{PalletInfoAccess, UncheckedOnRuntimeUpgrade},
	};

	/// The inner step of [`super::MigrateV0ToV1`] (run only when the on-chain version is 0).
	pub struct DropUnboundedUsage<T>(core::marker::PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for DropUnboundedUsage<T> {
		fn on_runtime_upgrade() -> Weight {
			let pallet = <Pallet<T> as PalletInfoAccess>::name().as_bytes();
			// Pre-launch state is small; a chain with millions of v0 entries would need a
			// multi-block migration instead.
			let usage = clear_storage_prefix(pallet, b"Usage", b"", None, None);
			let seals = clear_storage_prefix(pallet, b"LastSealBlock", b"", None, None);
			PrunedBefore::<T>::put(Pallet::<T>::today().saturating_sub(1));
			let removed = u64::from(usage.unique).saturating_add(seals.unique.into());
			T::DbWeight::get().reads_writes(removed.saturating_add(1), removed.saturating_add(1))
		}
	}
}
