//! Benchmarks of the free tier's calls at their dearest: an account with no trust, so the proof
//! of work is checked (one hash, whatever the difficulty; the difficulty is set to 0 so the
//! benchmark need not mine) and its block recorded; the unsigned call also verifies a signature.
#![cfg(feature = "runtime-benchmarks")]

use super::*;
use frame_benchmarking::v2::*;
use frame_system::RawOrigin;

fn ready<T: Config>() -> PowSeal<BlockNumberFor<T>> {
	Params::<T>::mutate(|p| {
		p.pow_difficulty = 0;
	});
	frame_system::Pallet::<T>::set_block_number(10u32.into());
	let hash = T::Hash::decode(&mut [7u8; 32].as_slice()).expect("a hash is 32 bytes");
	frame_system::BlockHash::<T>::insert(BlockNumberFor::<T>::from(9u32), hash);
	PowSeal { block: 9u32.into(), nonce: 0 }
}

fn ask() -> FreeRequest {
	FreeRequest { version: 1, prompt_hash: H256::repeat_byte(1), max_tokens: 256 }
}

#[benchmarks(
	where
		T::Signature: From<sp_core::sr25519::Signature>,
		T::Signer: From<sp_core::sr25519::Public>,
)]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn request() {
		let seal = ready::<T>();
		let caller: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(caller.clone()), ask(), Some(seal));
		assert_eq!(Usage::<T>::get(Pallet::<T>::today(), &caller).used, 1);
	}

	#[benchmark]
	fn request_unsigned() {
		let seal = ready::<T>();
		let public = sp_io::crypto::sr25519_generate(sp_core::crypto::KeyTypeId(*b"free"), None);
		let requester: T::AccountId = T::Signer::from(public).into_account();
		let genesis = H256::from_slice(
			frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero()).as_ref(),
		);
		let payload = unsigned_payload(&genesis, &requester, &ask(), &seal);
		let signature: T::Signature =
			sp_io::crypto::sr25519_sign(sp_core::crypto::KeyTypeId(*b"free"), &public, &payload)
				.expect("the key was just generated")
				.into();
		#[extrinsic_call]
		_(RawOrigin::None, requester.clone(), ask(), seal, signature);
		assert_eq!(Usage::<T>::get(Pallet::<T>::today(), &requester).used, 1);
	}

	// Benchmark fixtures write worst-case storage directly: no invariant checks.
	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext().unchecked(), crate::mock::Test);
}
