//! Weights for `pallet_training_audit`; replaced by `scripts/bench-weights` output.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};
use core::marker::PhantomData;

/// Weight functions of `pallet_training_audit`.
pub trait WeightInfo {
	fn attest() -> Weight;
	fn challenge() -> Weight;
	fn bisect() -> Weight;
	fn respond() -> Weight;
	fn arbitrate() -> Weight;
	fn on_initialize(n: u32, ) -> Weight;
}

/// Weights measured for the Blyan runtime, with the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn attest() -> Weight {
		Weight::from_parts(50_000_000, 20_000)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn challenge() -> Weight {
		Weight::from_parts(200_000_000, 40_000)
			.saturating_add(T::DbWeight::get().reads(8_u64))
			.saturating_add(T::DbWeight::get().writes(8_u64))
	}
	fn bisect() -> Weight {
		Weight::from_parts(50_000_000, 20_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	fn respond() -> Weight {
		Weight::from_parts(300_000_000, 600_000)
			.saturating_add(T::DbWeight::get().reads(300_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn arbitrate() -> Weight {
		Weight::from_parts(500_000_000, 100_000)
			.saturating_add(T::DbWeight::get().reads(40_u64))
			.saturating_add(T::DbWeight::get().writes(40_u64))
	}
	fn on_initialize(n: u32, ) -> Weight {
		Weight::from_parts(10_000_000, 1_000)
			.saturating_add(Weight::from_parts(900_000_000, 700_000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().reads((300_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes((40_u64).saturating_mul(n.into())))
	}
}

// For tests.
impl WeightInfo for () {
	fn attest() -> Weight { Weight::from_parts(50_000_000, 20_000).saturating_add(RocksDbWeight::get().reads_writes(1, 1)) }
	fn challenge() -> Weight { Weight::from_parts(200_000_000, 40_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8)) }
	fn bisect() -> Weight { Weight::from_parts(50_000_000, 20_000).saturating_add(RocksDbWeight::get().reads_writes(3, 3)) }
	fn respond() -> Weight { Weight::from_parts(300_000_000, 600_000).saturating_add(RocksDbWeight::get().reads_writes(300, 4)) }
	fn arbitrate() -> Weight { Weight::from_parts(500_000_000, 100_000).saturating_add(RocksDbWeight::get().reads_writes(40, 40)) }
	fn on_initialize(n: u32, ) -> Weight { Weight::from_parts(900_000_000, 700_000).saturating_mul(n.into()).saturating_add(RocksDbWeight::get().reads_writes(2 + 300 * n as u64, 40 * n as u64)) }
}
