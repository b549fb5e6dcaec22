//! Storage migrations of the free tier.

use super::*;

/// v0 → v1: usage keyed by day and pruned (issue #18, item 7), and seals recorded per day.
///
/// v0 kept one `Usage` entry per account forever (`account → (day, used)`) and each account's
/// last seal in `LastSealBlock`: the state grew with every fresh key. Both are dropped. The v1
/// `Usage` map shares the old prefix but not its key layout: only keys of the v0 length
/// (prefix, then the account's `Blake2_128Concat`) go, so v1 entries (a chain started between
/// the change and the version's declaration reports version 0 yet already holds them) keep their
/// seals. Forgetting v0 usage costs at most one day's free quota granted twice, and the v1 seal
/// rule (a later block each time, per day) starts afresh. Pruning restarts at yesterday.
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
		storage::{migration::clear_storage_prefix, storage_prefix, unhashed},
		traits::{PalletInfoAccess, UncheckedOnRuntimeUpgrade},
	};

	/// The inner step of [`super::MigrateV0ToV1`] (run only when the on-chain version is 0).
	pub struct DropUnboundedUsage<T>(core::marker::PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for DropUnboundedUsage<T> {
		fn on_runtime_upgrade() -> Weight {
			let pallet = <Pallet<T> as PalletInfoAccess>::name().as_bytes();
			let prefix = storage_prefix(pallet, b"Usage");
			// v0: prefix ‖ blake2_128(account) ‖ account. v1 puts ‖ twox64(day) ‖ day first.
			let v0_len = prefix.len() + 16 + T::AccountId::max_encoded_len();
			// Pre-launch state is small; a chain with millions of v0 entries would need a
			// multi-block migration instead.
			let mut scanned = 0u64;
			let mut v0_keys = alloc::vec::Vec::new();
			let mut key = prefix.to_vec();
			while let Some(next) = sp_io::storage::next_key(&key).filter(|k| k.starts_with(&prefix))
			{
				scanned = scanned.saturating_add(1);
				if next.len() == v0_len {
					v0_keys.push(next.clone());
				}
				key = next;
			}
			for key in &v0_keys {
				unhashed::kill(key);
			}
			let seals = clear_storage_prefix(pallet, b"LastSealBlock", b"", None, None);
			PrunedBefore::<T>::put(Pallet::<T>::today().saturating_sub(1));
			let reads = scanned.saturating_add(seals.loops.into()).saturating_add(1);
			let writes =
				(v0_keys.len() as u64).saturating_add(seals.unique.into()).saturating_add(1);
			T::DbWeight::get().reads_writes(reads, writes)
		}
	}
}
