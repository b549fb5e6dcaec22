//! Benchmark of `set_parameter` at its dearest: a change of the epoch length (root-only, so
//! rate-limited), which `pallet-pol-rewards` answers by starting a new epoch.
#![cfg(feature = "runtime-benchmarks")]

use super::*;
use frame_benchmarking::v2::*;

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn set_parameter() -> Result<(), BenchmarkError> {
		// A root-only parameter: the rate-limit checks are read too.
		let origin =
			T::RootOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		let (_, max) = T::Bounds::bounds(ParameterKind::EpochLength)
			.ok_or(BenchmarkError::Stop("epoch length is not governable"))?;
		let ParameterValue::Blocks(max) = max else {
			return Err(BenchmarkError::Stop("epoch length bounds are not in blocks"));
		};
		let current = T::Pol::params().epoch_length;
		let length = current.saturating_add(current).min(max);
		let parameter = Parameter::EpochLength(length);
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, parameter.clone());
		assert_eq!(T::Pol::params().epoch_length, length);
		Ok(())
	}

	// Benchmark fixtures write worst-case storage directly: no invariant checks.
	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext().unchecked(), crate::mock::Test);
}
