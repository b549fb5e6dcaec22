//! Benchmarks of the model registry's calls, at their worst case (most layers).
#![cfg(feature = "runtime-benchmarks")]

use super::*;
use frame_benchmarking::v2::*;
use frame_system::RawOrigin;

/// A CID of realistic length (CIDv1, base32, sha2-256).
pub(crate) fn cid() -> Cid {
	Cid::truncate_from(b"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".to_vec())
}

pub(crate) fn architecture(layer_count: LayerIndex) -> Architecture {
	Architecture {
		family: ShortText::truncate_from(b"mlp".to_vec()),
		config_hash: H256::repeat_byte(1),
		config_cid: cid(),
		layer_count,
	}
}

/// `n` delta blocks for layers `0..n` of a model with `layer_count` layers.
pub(crate) fn layers(n: LayerIndex, _layer_count: u32) -> LayerDeltas {
	LayerDeltas::truncate_from(
		(0..n)
			.map(|layer| LayerDelta { layer, cid: cid(), merkle_root: H256::repeat_byte(2) })
			.collect(),
	)
}

/// Enough for every deposit a benchmark holds, and the existential deposit.
fn funded<T: Config>(who: &T::AccountId) {
	let amount = Pallet::<T>::deposit_for(16, 1 << 20) + T::Currency::minimum_balance();
	let _ = T::Currency::mint_into(who, amount);
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn register_model(l: Linear<1, MAX_LAYERS>) {
		let owner: T::AccountId = whitelisted_caller();
		funded::<T>(&owner);
		let root = layers(l as LayerIndex, l);
		#[extrinsic_call]
		_(
			RawOrigin::Signed(owner),
			ShortText::truncate_from(b"model".to_vec()),
			architecture(l as LayerIndex),
			ShortText::truncate_from(b"Apache-2.0".to_vec()),
			SemVer::new(1, 0, 0),
			root,
			H256::zero(),
		);
		assert_eq!(NextModelId::<T>::get(), 1);
	}

	#[benchmark]
	fn propose_version(l: Linear<1, MAX_LAYERS>) {
		let owner: T::AccountId = whitelisted_caller();
		funded::<T>(&owner);
		let (root, _) = <Pallet<T> as ModelRegistry<T::AccountId>>::benchmark_fixture(&owner);
		// A merge: two parents, both read.
		let second = Pallet::<T>::insert_candidate(
			&owner,
			CandidateVersion {
				model: 0,
				parents: Parents::truncate_from(alloc::vec![root]),
				semver: SemVer::new(1, 1, 0),
				layers: layers(1, MAX_LAYERS),
				weight_root: H256::zero(),
				adapter: None,
			},
		)
		.expect("fixture model accepts a candidate");
		let candidate = CandidateVersion {
			model: 0,
			parents: Parents::truncate_from(alloc::vec![root, second]),
			semver: SemVer::new(2, 0, 0),
			layers: layers(l as LayerIndex, MAX_LAYERS),
			weight_root: H256::zero(),
			adapter: None,
		};
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), candidate);
		assert!(VersionBySemVer::<T>::contains_key(0, SemVer::new(2, 0, 0)));
	}

	#[benchmark]
	fn register_dataset() {
		let owner: T::AccountId = whitelisted_caller();
		funded::<T>(&owner);
		#[extrinsic_call]
		_(
			RawOrigin::Signed(owner),
			cid(),
			H256::zero(),
			1 << 30,
			ShortText::truncate_from(b"CC-BY-4.0".to_vec()),
		);
		assert_eq!(NextDatasetId::<T>::get(), 1);
	}

	// Benchmark fixtures write worst-case storage directly: no invariant checks.
	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext().unchecked(), crate::mock::Test);
}
