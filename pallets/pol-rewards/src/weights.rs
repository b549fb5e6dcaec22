//! Provisional weights for `pallet_pol_rewards` (to be replaced by `scripts/bench-weights`).
#![allow(unused_parens)]
#![allow(unused_imports)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions of `pallet_pol_rewards`.
pub trait WeightInfo {
	fn register_verifier() -> Weight;
	fn unregister_verifier() -> Weight;
	fn withdraw_verifier() -> Weight;
	fn commit_scores() -> Weight;
	fn reveal_scores() -> Weight;
	fn claim_epoch_reward() -> Weight;
	fn set_params() -> Weight;
	fn on_initialize_draw(n: u32) -> Weight;
	fn on_initialize_tally(n: u32) -> Weight;
}
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn register_verifier() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn unregister_verifier() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn withdraw_verifier() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn commit_scores() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn reveal_scores() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn claim_epoch_reward() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn set_params() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn on_initialize_draw(n: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn on_initialize_tally(n: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
}
impl WeightInfo for () {
	fn register_verifier() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn unregister_verifier() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn withdraw_verifier() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn commit_scores() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn reveal_scores() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn claim_epoch_reward() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn set_params() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn on_initialize_draw(n: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn on_initialize_tally(n: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
}
