//! Storage migrations of the inference pallet.

use super::*;

/// v0 → v1: arbiters are paid a fee and drawn by the chain (issue #23).
///
/// `Params` gains [`InferenceParams::arbiter_fee`]: the default fee, lowered if need be so that
/// `arbiters · arbiter_fee` stays within half the challenge bond governance set. Challenges whose
/// arbiters nobody drew under v0 (its `draw_arbiters` call is gone) are queued for the draw in the
/// next block, so they are decided rather than left to expire. The challenge record itself keeps
/// its encoding (v0's `draw_from` is v1's `draw_at`, a block number either way).
pub type MigrateV0ToV1<T> = frame_support::migrations::VersionedMigration<
	0,
	1,
	v1::FeeAndQueuedDraws<T>,
	Pallet<T>,
	<T as frame_system::Config>::DbWeight,
>;

pub mod v1 {
	use super::*;
	use frame_support::traits::UncheckedOnRuntimeUpgrade;

	/// [`InferenceParams`] as v0 stored them.
	#[derive(Clone, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
	pub struct OldInferenceParams<Balance, BlockNumber> {
		pub check_rate: sp_runtime::Perbill,
		pub challenge_bond: Balance,
		pub arbiters: u32,
		pub arbitration_window: BlockNumber,
		pub fraud_slash: sp_runtime::Perbill,
		pub challenger_share: sp_runtime::Perbill,
	}

	/// The inner step of [`super::MigrateV0ToV1`] (run only when the on-chain version is 0).
	pub struct FeeAndQueuedDraws<T>(core::marker::PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for FeeAndQueuedDraws<T> {
		fn on_runtime_upgrade() -> Weight {
			let (mut reads, mut writes) = (1u64, 0u64);
			// Nothing stored: the defaults (with their fee) apply already.
			let translated = Params::<T>::translate::<
				OldInferenceParams<BalanceOf<T>, BlockNumberFor<T>>,
				_,
			>(|old| {
				let old = old?;
				writes.saturating_inc();
				let most = old.challenge_bond.saturating_sub(old.challenge_bond / 2u32.into())
					/ old.arbiters.max(1).into();
				Some(InferenceParams {
					check_rate: old.check_rate,
					challenge_bond: old.challenge_bond,
					arbiters: old.arbiters,
					arbitration_window: old.arbitration_window,
					fraud_slash: old.fraud_slash,
					challenger_share: old.challenger_share,
					arbiter_fee: T::DefaultParams::get().arbiter_fee.min(most),
				})
			});
			if translated.is_err() {
				frame_support::defensive!(
					"v0 inference parameters undecodable: the defaults apply"
				);
			}
			let draw_at = frame_system::Pallet::<T>::block_number().saturating_add(1u32.into());
			// Pre-launch, open challenges are few; a chain with many would need a multi-block
			// migration instead.
			for (id, mut open) in Challenges::<T>::iter() {
				reads.saturating_inc();
				if open.arbiters.is_none() {
					open.draw_at = draw_at;
					Challenges::<T>::insert(id, open);
					DrawQueue::<T>::insert(draw_at, id, ());
					writes.saturating_accrue(2);
				}
			}
			T::DbWeight::get().reads_writes(reads, writes)
		}

		#[cfg(feature = "try-runtime")]
		fn pre_upgrade() -> Result<alloc::vec::Vec<u8>, sp_runtime::TryRuntimeError> {
			let undrawn = Challenges::<T>::iter().filter(|(_, c)| c.arbiters.is_none()).count();
			Ok((undrawn as u32).encode())
		}

		#[cfg(feature = "try-runtime")]
		fn post_upgrade(state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
			let undrawn = u32::decode(&mut &state[..]).map_err(|_| "bad pre-upgrade state")?;
			ensure!(
				DrawQueue::<T>::iter().count() as u32 >= undrawn,
				"an undrawn challenge was not queued for its draw"
			);
			Pallet::<T>::do_try_state()
		}
	}
}
