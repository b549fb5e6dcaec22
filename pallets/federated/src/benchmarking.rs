//! Benchmarks of the federated calls at their dearest: `create` with `p` named participants
//! (the duplicate check), `join` of an open call (a hold), `record_round` with `c` contributors,
//! and `close` releasing `p` bonds and removing `r` round records.
#![cfg(feature = "runtime-benchmarks")]

use super::*;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_system::RawOrigin;
use sp_runtime::traits::Saturating;

fn funded<T: Config>(who: &T::AccountId) {
	T::Currency::set_balance(
		who,
		T::Currency::minimum_balance().saturating_mul(1_000_000u32.into()),
	);
}

fn bond<T: Config>() -> BalanceOf<T> {
	T::Currency::minimum_balance().saturating_mul(10u32.into())
}

fn spec<T: Config>(
	admission: Admission<T::AccountId, BalanceOf<T>, T::MaxParticipants>,
	rounds: u32,
) -> SpecOf<T> {
	FederatedSpec {
		rounds,
		min_participants: 2,
		admission,
		// Any number may join a plain job (a secure one admits fewer than 2·threshold).
		rule: AggregationRule::Mean,
		clip_norm_milli: 1_000,
		noise_milli: 5_000,
		delta_exp: 5,
		local_steps: 1,
	}
}

fn named<T: Config>(p: u32) -> Admission<T::AccountId, BalanceOf<T>, T::MaxParticipants> {
	let accounts: Vec<T::AccountId> = (0..p.max(2)).map(|i| account("participant", i, 0)).collect();
	Admission::Named(BoundedVec::truncate_from(accounts))
}

/// A federated open call with `p` bonded participants, claimed by the returned aggregator.
fn running<T: Config>(p: u32, rounds: u32) -> (JobId, T::AccountId) {
	let creator: T::AccountId = account("creator", 0, 0);
	let aggregator: T::AccountId = account("aggregator", 0, 0);
	let job = T::Jobs::benchmark_job(&creator, None);
	Pallet::<T>::create(
		RawOrigin::Signed(creator).into(),
		job,
		spec::<T>(Admission::Open { bond: bond::<T>() }, rounds),
	)
	.expect("the creator makes its open job federated");
	for i in 0..p {
		let who: T::AccountId = account("participant", i, 0);
		funded::<T>(&who);
		PrivacyBudget::<T>::insert(&who, u64::MAX);
		Pallet::<T>::join(RawOrigin::Signed(who).into(), job).expect("funded participant joins");
	}
	(job, aggregator)
}

fn cid() -> Cid {
	Cid::truncate_from(b"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".to_vec())
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn create(p: Linear<2, { T::MaxParticipants::get() }>) {
		let creator: T::AccountId = whitelisted_caller();
		let job = T::Jobs::benchmark_job(&creator, None);
		let spec = spec::<T>(named::<T>(p), T::MaxRounds::get());
		#[extrinsic_call]
		_(RawOrigin::Signed(creator), job, spec);
		assert!(Jobs::<T>::contains_key(job));
	}

	#[benchmark]
	fn join() {
		let (job, _) = running::<T>(T::MaxParticipants::get() - 1, 1);
		let who: T::AccountId = whitelisted_caller();
		funded::<T>(&who);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), job);
		assert!(PrivacySpent::<T>::get(&who) > 0);
	}

	#[benchmark]
	fn set_privacy_budget() {
		let who: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), 5_000);
		assert_eq!(PrivacyBudget::<T>::get(&who), Some(5_000));
	}

	#[benchmark]
	fn set_endpoint() {
		let creator: T::AccountId = account("creator", 0, 0);
		let aggregator: T::AccountId = whitelisted_caller();
		let job = T::Jobs::benchmark_job(&creator, None);
		Pallet::<T>::create(
			RawOrigin::Signed(creator.clone()).into(),
			job,
			spec::<T>(named::<T>(2), 1),
		)
		.expect("creator");
		let claimed = T::Jobs::benchmark_job(&creator, Some(&aggregator));
		// Move the federated record onto the claimed job: the same shape, now with a worker.
		let info = Jobs::<T>::take(job).expect("created");
		Jobs::<T>::insert(claimed, info);
		let mut url = b"http://".to_vec();
		url.resize(T::MaxEndpointLen::get() as usize, b'a');
		#[extrinsic_call]
		_(RawOrigin::Signed(aggregator), claimed, BoundedVec::truncate_from(url));
		assert!(Jobs::<T>::get(claimed).expect("kept").endpoint.is_some());
	}

	#[benchmark]
	fn record_round(c: Linear<2, { T::MaxParticipants::get() }>) {
		let (job, _) = running::<T>(c, T::MaxRounds::get());
		let aggregator: T::AccountId = whitelisted_caller();
		let claimed = T::Jobs::benchmark_job(&account("creator", 0, 0), Some(&aggregator));
		let info = Jobs::<T>::take(job).expect("created");
		Jobs::<T>::insert(claimed, info);
		let contributors =
			BoundedVec::truncate_from((0..c as ParticipantIndex).collect::<Vec<_>>());
		#[extrinsic_call]
		_(RawOrigin::Signed(aggregator), claimed, 0, cid(), contributors);
		assert_eq!(Jobs::<T>::get(claimed).expect("kept").rounds_done, 1);
	}

	#[benchmark]
	fn close(p: Linear<2, { T::MaxParticipants::get() }>, r: Linear<1, { T::MaxRounds::get() }>) {
		let (job, _) = running::<T>(p, r);
		// Gone from the jobs pallet: a job id nobody posted, holding the same record.
		let gone = JobId::MAX;
		let mut info = Jobs::<T>::take(job).expect("created");
		let contributors =
			BoundedVec::truncate_from((0..p as ParticipantIndex).collect::<Vec<_>>());
		for round in 0..r {
			Rounds::<T>::insert(
				gone,
				round,
				RoundRecord { aggregate: cid(), contributors: contributors.clone() },
			);
		}
		// No round counted as run: ε is refunded to every participant as well (the dearest close).
		info.rounds_done = 0;
		Jobs::<T>::insert(gone, info);
		let caller: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), gone);
		assert!(!Jobs::<T>::contains_key(gone));
	}

	// Benchmark fixtures write worst-case storage directly: no invariant checks.
	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext().unchecked(), crate::mock::Test);
}
