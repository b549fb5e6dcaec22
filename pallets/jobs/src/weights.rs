//! Provisional weights for `pallet_jobs` (to be replaced by `scripts/bench-weights`).
#![allow(unused_parens)]
#![allow(unused_imports)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions of `pallet_jobs`.
pub trait WeightInfo {
	fn register_worker() -> Weight;
	fn update_capabilities() -> Weight;
	fn unbond_worker() -> Weight;
	fn withdraw_worker() -> Weight;
	fn post_job() -> Weight;
	fn cancel_job() -> Weight;
	fn claim_job() -> Weight;
	fn commit_result() -> Weight;
	fn reveal_validation() -> Weight;
	fn reveal_result(l: u32) -> Weight;
	fn set_params() -> Weight;
	fn on_initialize(n: u32) -> Weight;
}
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn register_worker() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn update_capabilities() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn unbond_worker() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn withdraw_worker() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn post_job() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn cancel_job() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn claim_job() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn commit_result() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn reveal_validation() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn reveal_result(l: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(l.into()))
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn set_params() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
	fn on_initialize(n: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads_writes(10, 10))
	}
}
impl WeightInfo for () {
	fn register_worker() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn update_capabilities() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn unbond_worker() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn withdraw_worker() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn post_job() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn cancel_job() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn claim_job() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn commit_result() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn reveal_validation() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn reveal_result(l: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(l.into()))
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn set_params() -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
	fn on_initialize(n: u32) -> Weight {
		Weight::from_parts(100_000_000, 10_000)
			.saturating_add(Weight::from_parts(50_000_000, 5_000).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads_writes(10, 10))
	}
}
