//! Benchmarks of the inference calls at their dearest: a new announcement (counted map insert and
//! a hold), one taking the place of another in a full list (its bond unbonding), a withdrawal
//! and a reap (the bond unbonding), and a settlement of `n` paid receipts from `n`
//! new clients (one signature check, one transfer, one new nonce entry and the hold of its
//! deposit each); a challenge (a signature check and its holds), the draw of the most arbiters
//! from a full verifier set (made in `on_initialize`), the last arbiter's report, the close of a
//! proven fraud at its deadline (the server's bond slashed, paid to the challenger and to the
//! two thirds of the most arbiters that reported it, burned and released; the other third
//! silent, penalised) and of a challenge whose every arbiter stayed silent (all penalised), and
//! the release of an unbonded bond.
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
	announce_as::<T>(&server);
	server
}

/// Funds `server` and announces layers 0..4 of the fixture's version at the least bond; the
/// version.
fn announce_as<T: Config>(server: &T::AccountId) -> VersionId {
	funded::<T>(server);
	let (version, _) = T::Registry::benchmark_fixture(server);
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
	version
}

fn endpoint<T: Config>() -> BoundedVec<u8, T::MaxEndpointLen> {
	let mut url = b"http://".to_vec();
	url.resize(T::MaxEndpointLen::get() as usize, b'a');
	url.try_into().expect("sized to the bound")
}

/// An announced server with a key in the keystore, a funded challenger (the caller) and the
/// server's signed commitment; the parameters ask for the most arbiters.
fn challenge_fixture<T: Config>() -> (T::AccountId, ChunkCommitment<T::AccountId>, T::Signature)
where
	T::Signature: From<sp_core::sr25519::Signature>,
	T::Signer: From<sp_core::sr25519::Public>,
{
	Params::<T>::mutate(|p| {
		p.arbiters = MAX_INFERENCE_ARBITERS;
		p.arbiter_fee = 1u32.into();
	});
	let key_type = sp_core::crypto::KeyTypeId(*b"infr");
	let public = sp_io::crypto::sr25519_generate(key_type, None);
	let server: T::AccountId = T::Signer::from(public).into_account();
	let version = announce_as::<T>(&server);
	let challenger: T::AccountId = whitelisted_caller();
	funded::<T>(&challenger);
	T::Currency::set_balance(
		&challenger,
		Params::<T>::get()
			.challenge_bond
			.saturating_mul(10u32.into())
			.saturating_add(T::Currency::balance(&challenger)),
	);
	let commitment = ChunkCommitment {
		server,
		version,
		layers: (0, 4),
		session: [1; 16],
		positions: 4096,
		transcript: [2; 32],
		bit_exact: true,
	};
	let payload = chunk_commitment_payload(&Pallet::<T>::genesis(), &commitment);
	let signature: T::Signature = sp_io::crypto::sr25519_sign(key_type, &public, &payload)
		.expect("the key was just generated")
		.into();
	(challenger, commitment, signature)
}

fn evidence<T: Config>() -> BoundedVec<u8, T::MaxEvidenceLen> {
	let mut cid = b"bafkrei".to_vec();
	cid.resize(T::MaxEvidenceLen::get() as usize, b'a');
	cid.try_into().expect("sized to the bound")
}

/// A challenge (id 0) in the block its arbiters are drawn at, from a full verifier set; the
/// challenger.
fn challenged<T: Config>() -> T::AccountId
where
	T::Signature: From<sp_core::sr25519::Signature>,
	T::Signer: From<sp_core::sr25519::Public>,
{
	let (challenger, commitment, signature) = challenge_fixture::<T>();
	Pallet::<T>::challenge(
		RawOrigin::Signed(challenger.clone()).into(),
		commitment,
		signature,
		evidence::<T>(),
	)
	.expect("a funded challenger challenges a signed commitment");
	T::Verifiers::benchmark_full_set();
	let draw_at = Challenges::<T>::get(0).expect("challenged").draw_at;
	frame_system::Pallet::<T>::set_block_number(draw_at);
	challenger
}

/// A challenge (id 0) with its arbiters drawn from a full verifier set.
fn drawn<T: Config>() -> (T::AccountId, Vec<T::AccountId>)
where
	T::Signature: From<sp_core::sr25519::Signature>,
	T::Signer: From<sp_core::sr25519::Public>,
{
	let challenger = challenged::<T>();
	Pallet::<T>::on_initialize(frame_system::Pallet::<T>::block_number());
	let arbiters = Challenges::<T>::get(0)
		.and_then(|c| c.arbiters)
		.expect("drawn")
		.into_iter()
		.map(|(a, _)| a)
		.collect();
	(challenger, arbiters)
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
				commitments: H256::repeat_byte(7),
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

	#[benchmark]
	fn challenge() {
		let (challenger, commitment, signature) = challenge_fixture::<T>();
		#[extrinsic_call]
		_(RawOrigin::Signed(challenger.clone()), commitment, signature, evidence::<T>());
		assert!(Challenges::<T>::contains_key(0));
	}

	/// One draw, in the block it is due at.
	#[benchmark]
	fn draw_arbiters() {
		challenged::<T>();
		let now = frame_system::Pallet::<T>::block_number();
		#[block]
		{
			Pallet::<T>::on_initialize(now);
		}
		let seats = Challenges::<T>::get(0).and_then(|c| c.arbiters).expect("drawn");
		assert_eq!(seats.len() as u32, MAX_INFERENCE_ARBITERS);
	}

	#[benchmark]
	fn arbitrate() {
		let (_, arbiters) = drawn::<T>();
		let last = arbiters.last().expect("a verifier set to draw from").clone();
		#[extrinsic_call]
		_(RawOrigin::Signed(last), 0, true);
		assert!(Challenges::<T>::contains_key(0));
	}

	#[benchmark]
	fn close_challenge() {
		let (challenger, arbiters) = drawn::<T>();
		let seats = arbiters.len();
		// The fewest reports that decide: each is paid; the silent rest is penalised.
		let deciding = (1..=seats)
			.find(|k| arbitration_decision(seats, *k, 0).is_some())
			.expect("all seats agreeing decide");
		for arbiter in arbiters.into_iter().take(deciding) {
			Pallet::<T>::arbitrate(RawOrigin::Signed(arbiter).into(), 0, true)
				.expect("each drawn arbiter reports once");
		}
		let deadline = Challenges::<T>::get(0).expect("open").deadline;
		frame_system::Pallet::<T>::set_block_number(deadline);
		#[extrinsic_call]
		close_challenge(RawOrigin::Signed(challenger), 0);
		assert!(!Challenges::<T>::contains_key(0));
	}

	/// Every arbiter silent at the deadline: each is penalised.
	#[benchmark]
	fn close_challenge_silent() {
		let (challenger, _) = drawn::<T>();
		let deadline = Challenges::<T>::get(0).expect("open").deadline;
		frame_system::Pallet::<T>::set_block_number(deadline);
		#[extrinsic_call]
		close_challenge(RawOrigin::Signed(challenger), 0);
		assert!(!Challenges::<T>::contains_key(0));
	}

	#[benchmark]
	fn release_bond() {
		let server = announced::<T>();
		Pallet::<T>::withdraw(RawOrigin::Signed(server.clone()).into())
			.expect("an announced server withdraws");
		let release_at = Unbonding::<T>::get(&server).expect("unbonding").release_at;
		frame_system::Pallet::<T>::set_block_number(release_at);
		#[extrinsic_call]
		_(RawOrigin::Signed(server.clone()), server.clone());
		assert!(!Unbonding::<T>::contains_key(&server));
	}

	// Benchmark fixtures write worst-case storage directly: no invariant checks.
	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext().unchecked(), crate::mock::Test);
}
