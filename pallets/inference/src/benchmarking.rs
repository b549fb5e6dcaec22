//! Benchmarks of the inference calls at their dearest: a new announcement (counted map insert and
//! a hold), one taking the place of another in a full list (a release too), a withdrawal and a
//! reap (a release), and a settlement of `n` paid receipts from `n`
//! new clients (one signature check, one transfer, one new nonce entry and the hold of its
//! deposit each).
#![cfg(feature = "runtime-benchmarks")]

use super::*;
use frame_benchmarking::v2::*;
use frame_system::RawOrigin;

fn funded<T: Config>(who: &T::AccountId) {
	let amount = T::MinServerBond::get().saturating_mul(1_000u32.into());
	T::Currency::set_balance(who, amount);
}

fn announced<T: Config>() -> T::AccountId {
	let server: T::AccountId = whitelisted_caller();
	funded::<T>(&server);
	let (version, _) = T::Registry::benchmark_fixture(&server);
	Pallet::<T>::announce(
		RawOrigin::Signed(server.clone()).into(),
		version,
		LayerSpan { start: 0, end: 4 },
		endpoint::<T>(),
		1u32.into(),
		8,
		T::MinServerBond::get(),
	)
	.expect("a funded server announces an accepted version");
	server
}

fn endpoint<T: Config>() -> BoundedVec<u8, T::MaxEndpointLen> {
	let mut url = b"http://".to_vec();
	url.resize(T::MaxEndpointLen::get() as usize, b'a');
	url.try_into().expect("sized to the bound")
}

#[benchmarks(
	where
		T::Signature: From<sp_core::sr25519::Signature>,
		T::Signer: From<sp_core::sr25519::Public>,
)]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn announce() {
		let server: T::AccountId = whitelisted_caller();
		funded::<T>(&server);
		let (version, _) = T::Registry::benchmark_fixture(&server);
		#[extrinsic_call]
		_(
			RawOrigin::Signed(server.clone()),
			version,
			LayerSpan { start: 0, end: 4 },
			endpoint::<T>(),
			1u32.into(),
			8,
			T::MinServerBond::get(),
		);
		assert!(Servers::<T>::contains_key(&server));
	}

	#[benchmark]
	fn take_slot() {
		// A full list; the caller displaces one of the servers bonded at the minimum.
		let owner: T::AccountId = account("owner", 0, 0);
		funded::<T>(&owner);
		let (version, _) = T::Registry::benchmark_fixture(&owner);
		for i in 0..T::MaxServers::get() {
			let squatter: T::AccountId = account("squatter", i, 0);
			funded::<T>(&squatter);
			Pallet::<T>::announce(
				RawOrigin::Signed(squatter).into(),
				version,
				LayerSpan { start: 0, end: 4 },
				endpoint::<T>(),
				1u32.into(),
				8,
				T::MinServerBond::get(),
			)
			.expect("a funded server announces while the list has room");
		}
		let displaced: T::AccountId = account("squatter", 0, 0);
		let server: T::AccountId = whitelisted_caller();
		funded::<T>(&server);
		let bond = T::MinServerBond::get().saturating_mul(2u32.into());
		#[extrinsic_call]
		_(
			RawOrigin::Signed(server.clone()),
			displaced.clone(),
			version,
			LayerSpan { start: 0, end: 4 },
			endpoint::<T>(),
			1u32.into(),
			8,
			bond,
		);
		assert!(Servers::<T>::contains_key(&server));
		assert!(!Servers::<T>::contains_key(&displaced));
	}

	#[benchmark]
	fn withdraw() {
		let server = announced::<T>();
		#[extrinsic_call]
		_(RawOrigin::Signed(server.clone()));
		assert!(!Servers::<T>::contains_key(&server));
	}

	#[benchmark]
	fn reap() {
		let server = announced::<T>();
		let reaper: T::AccountId = account("reaper", 0, 0);
		let expiry = Servers::<T>::get(&server).expect("announced").expires_at;
		frame_system::Pallet::<T>::set_block_number(expiry);
		#[extrinsic_call]
		_(RawOrigin::Signed(reaper), server.clone());
		assert!(!Servers::<T>::contains_key(&server));
	}

	#[benchmark]
	fn settle(n: Linear<1, { T::MaxReceiptsPerBatch::get() }>) {
		let server: T::AccountId = whitelisted_caller();
		funded::<T>(&server);
		let genesis = H256::from_slice(
			frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero()).as_ref(),
		);
		let key_type = sp_core::crypto::KeyTypeId(*b"infr");
		let mut receipts = Vec::new();
		for i in 0..n {
			let public = sp_io::crypto::sr25519_generate(key_type, None);
			let client: T::AccountId = T::Signer::from(public).into_account();
			funded::<T>(&client);
			// A new client: its nonce entry is created, and its deposit held.
			let receipt = InferenceReceipt {
				client,
				server: server.clone(),
				version: 1,
				nonce: 2 + i as u64,
				tokens_in: 100,
				tokens_out: 100,
				price_per_token: 1u32.into(),
				free: false,
			};
			let payload = receipt_payload(&genesis, &receipt);
			let signature: T::Signature = sp_io::crypto::sr25519_sign(key_type, &public, &payload)
				.expect("the key was just generated")
				.into();
			receipts.push(SignedReceipt { receipt, signature });
		}
		let receipts: BoundedVec<_, T::MaxReceiptsPerBatch> =
			receipts.try_into().expect("n is within the bound");
		let before = T::Currency::balance(&server);
		#[extrinsic_call]
		_(RawOrigin::Signed(server.clone()), receipts);
		assert_eq!(T::Currency::balance(&server), before.saturating_add((200 * n).into()));
	}

	// Benchmark fixtures write worst-case storage directly: no invariant checks.
	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext().unchecked(), crate::mock::Test);
}
