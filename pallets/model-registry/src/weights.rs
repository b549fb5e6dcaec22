//! Provisional weights for `pallet_model_registry` (to be replaced by `scripts/bench-weights`).
#![allow(unused_parens)]
#![allow(unused_imports)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions of `pallet_model_registry`.
pub trait WeightInfo {
	fn register_model(l: u32) -> Weight;
	fn propose_version(l: u32) -> Weight;
	fn register_dataset() -> Weight;
}
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn register_model(l: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(l.into()))
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn propose_version(l: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(l.into()))
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn register_dataset() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
}
impl WeightInfo for () {
	fn register_model(l: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(l.into()))
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn propose_version(l: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(l.into()))
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn register_dataset() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
}
