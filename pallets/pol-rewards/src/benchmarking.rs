//! Benchmarks of the PoL pallet's calls and phase processing at their worst case.
#![cfg(feature = "runtime-benchmarks")]

use super::*;
use blyan_primitives::pol::BENCHMARK_CLAIM;
use frame_benchmarking::v2::*;
use frame_support::traits::Hooks;
use frame_system::RawOrigin;

/// Enough for a bond and the existential deposit, many times over.
fn fund<T: Config>(who: &T::AccountId) {
	let amount = Params::<T>::get()
		.min_verifier_bond
		.saturating_add(T::Currency::minimum_balance())
		.saturating_mul(1000u32.into());
	T::Currency::set_balance(who, amount);
}

fn verifier<T: Config>(who: &T::AccountId) {
	fund::<T>(who);
	let bond = Params::<T>::get().min_verifier_bond;
	Pallet::<T>::register_verifier(RawOrigin::Signed(who.clone()).into(), bond)
		.expect("funded account registers");
}

/// Fills the verifier set to `MaxVerifiers - leave` accounts.
fn verifiers<T: Config>(leave: u32) -> Vec<T::AccountId> {
	let count = T::MaxVerifiers::get().saturating_sub(leave);
	(0..count)
		.map(|i| {
			let v: T::AccountId = account("verifier", i, 0);
			verifier::<T>(&v);
			v
		})
		.collect()
}

/// The verifier set filled (for other pallets' benchmarks, through `VerifierSet`).
pub(crate) fn full_verifier_set<T: Config>() -> Vec<T::AccountId> {
	verifiers::<T>(0)
}

fn full_committee<T: Config>() -> Vec<T::AccountId> {
	let mut params = Params::<T>::get();
	params.committee_size = MAX_COMMITTEE;
	Params::<T>::put(params);
	(0..MAX_COMMITTEE)
		.map(|i| {
			let v: T::AccountId = account("member", i, 0);
			verifier::<T>(&v);
			v
		})
		.collect()
}

fn salt(i: u32) -> [u8; 32] {
	[i as u8; 32]
}

/// A real job under verification, with a full committee in the reveal phase: the first
/// `quorum(16)` members agree on an improving score, the miner's claim, and have revealed (all,
/// or all but the last of them); the rest dissent. The miner's claim is revealed. Returns the
/// job and the member still to reveal.
fn reveal_phase<T: Config>(
	index: u32,
	members: &[T::AccountId],
	all_revealed: bool,
) -> (JobId, T::AccountId, Score, Score) {
	let creator: T::AccountId = account("creator", index, 0);
	let miner: T::AccountId = account("miner", index, 0);
	// The dearer verdict: a reward that earns epoch points, on an admitted model whose head
	// moves.
	let (job, request) =
		T::Jobs::benchmark_verifying_job(&creator, &miner, T::PointsEscrowCap::get());
	admit_base::<T>(&request);
	let claimed = BENCHMARK_CLAIM.0;
	let (base, candidate) = (claimed.saturating_mul(2).max(2), claimed);
	let agree = quorum(members.len() as u32) as usize;
	let committee = members
		.iter()
		.enumerate()
		.map(|(i, v)| {
			let pair = if i < agree { (base, candidate) } else { (base, candidate + 1) };
			let last = i + 1 == agree;
			Member {
				verifier: v.clone(),
				commitment: Some(score_commitment(job, 0, v, pair.0, pair.1, &salt(i as u32))),
				scores: (all_revealed || !last).then_some(pair),
			}
		})
		.collect();
	for v in members {
		Assignments::<T>::mutate(v, |jobs| {
			let _ = jobs.try_push(job);
		});
	}
	// A round waiting for its last reveal is open for long; a complete one is due next block.
	let open_for: u32 = if all_revealed { 1 } else { 1000 };
	let deadline = frame_system::Pallet::<T>::block_number().saturating_add(open_for.into());
	Rounds::<T>::insert(
		job,
		Round {
			request,
			claimed_score: Some(claimed),
			attempt: 0,
			phase: Phase::Reveal,
			deadline,
			committee: BoundedVec::truncate_from(committee),
			draw_retries: 0,
		},
	);
	(job, members[agree - 1].clone(), base, candidate)
}

/// Admits the model of `request`'s base to epoch rewards, its head at the base.
fn admit_base<T: Config>(request: &VerificationRequest<T::AccountId>) {
	let model = T::Registry::version(request.base_version).expect("the job's base exists").model;
	RewardedModels::<T>::insert(model, request.base_version);
}

/// `MaxRewardedModels - 1` models admitted, their ids above any the registry hands out.
fn rewarded_models<T: Config>() {
	for model in 1..T::MaxRewardedModels::get() {
		RewardedModels::<T>::insert(u64::MAX - model as u64, 0);
	}
}

#[benchmarks]
mod benchmarks {
	use super::*;

	/// Into a full set: the smallest bond is found and evicted.
	#[benchmark]
	fn register_verifier() {
		verifiers::<T>(0);
		let who: T::AccountId = whitelisted_caller();
		fund::<T>(&who);
		let bond = Params::<T>::get().min_verifier_bond.saturating_add(1u32.into());
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), bond);
		assert!(Verifiers::<T>::contains_key(&who));
	}

	#[benchmark]
	fn unregister_verifier() {
		verifiers::<T>(1);
		let who: T::AccountId = whitelisted_caller();
		verifier::<T>(&who);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(!ActiveVerifiers::<T>::get().contains(&who));
	}

	#[benchmark]
	fn withdraw_verifier() {
		let who: T::AccountId = whitelisted_caller();
		verifier::<T>(&who);
		Pallet::<T>::unregister_verifier(RawOrigin::Signed(who.clone()).into())
			.expect("idle verifier unregisters");
		Verifiers::<T>::mutate(&who, |v| {
			if let Some(v) = v {
				v.unbonding_until = Some(Zero::zero());
			}
		});
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(!Verifiers::<T>::contains_key(&who));
	}

	/// The last commitment of a full committee, which opens the reveal phase.
	#[benchmark]
	fn commit_scores() {
		let members = full_committee::<T>();
		let (job, _, _, _) = reveal_phase::<T>(0, &members, false);
		let caller = members[members.len() - 1].clone();
		Rounds::<T>::mutate(job, |r| {
			if let Some(r) = r {
				r.phase = Phase::Commit;
				r.claimed_score = None;
				for m in r.committee.iter_mut() {
					m.scores = None;
					if m.verifier == caller {
						m.commitment = None;
					}
				}
			}
		});
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), job, H256::repeat_byte(1));
		assert!(Rounds::<T>::get(job).is_some_and(|r| r.phase == Phase::Reveal));
	}

	/// The last reveal of a full committee: decides, pays the quorum and penalises the rest.
	#[benchmark]
	fn reveal_scores() {
		let members = full_committee::<T>();
		let (job, caller, base, candidate) = reveal_phase::<T>(0, &members, false);
		let index = members.iter().position(|m| *m == caller).unwrap_or(0) as u32;
		// The other dissenters have revealed too, so this reveal completes the round.
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), job, base, candidate, salt(index));
		assert!(!Rounds::<T>::contains_key(job));
	}

	/// The miner's claim arriving after every member revealed: decides the round like the last
	/// reveal does.
	#[benchmark]
	fn reveal_claim() {
		let members = full_committee::<T>();
		let (job, _, _, candidate) = reveal_phase::<T>(0, &members, true);
		Rounds::<T>::mutate(job, |r| {
			if let Some(r) = r {
				r.claimed_score = None;
				r.deadline = r.deadline.saturating_add(1000u32.into());
			}
		});
		let miner: T::AccountId = account("miner", 0, 0);
		#[extrinsic_call]
		_(RawOrigin::Signed(miner), job, candidate, BENCHMARK_CLAIM.1);
		assert!(!Rounds::<T>::contains_key(job));
	}

	#[benchmark]
	fn claim_epoch_reward() {
		let miner: T::AccountId = account("miner", 0, 0);
		let budget = Params::<T>::get().epoch_budget;
		T::Currency::set_balance(
			&T::MiningPool::get(),
			budget.saturating_mul(10u32.into()).saturating_add(T::Currency::minimum_balance()),
		);
		fund::<T>(&miner);
		EpochPoints::<T>::insert(0, &miner, 1);
		Epochs::<T>::insert(0, EpochInfo { total_points: 2, budget, unclaimed: 2 });
		frame_system::Pallet::<T>::set_block_number(Params::<T>::get().epoch_length);
		let caller: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), 0, miner.clone());
		assert!(!EpochPoints::<T>::contains_key(0, &miner));
	}

	/// A new model admitted into the last free place.
	#[benchmark]
	fn admit_model() -> Result<(), BenchmarkError> {
		rewarded_models::<T>();
		let owner: T::AccountId = account("owner", 0, 0);
		let (head, _) = T::Registry::benchmark_fixture(&owner);
		let model = T::Registry::version(head).expect("the fixture's version").model;
		let origin =
			T::RewardOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, model, head);
		assert_eq!(RewardedModels::<T>::get(model), Some(head));
		Ok(())
	}

	#[benchmark]
	fn retire_model() -> Result<(), BenchmarkError> {
		rewarded_models::<T>();
		let origin =
			T::RewardOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, u64::MAX - 1);
		assert!(!RewardedModels::<T>::contains_key(u64::MAX - 1));
		Ok(())
	}

	/// `n` committee draws over a full verifier set.
	#[benchmark]
	fn on_initialize_draw(n: Linear<0, { T::MaxDeadlinesPerBlock::get() }>) {
		verifiers::<T>(0);
		let mut params = Params::<T>::get();
		params.committee_size = MAX_COMMITTEE;
		Params::<T>::put(params);
		let at = frame_system::Pallet::<T>::block_number().saturating_add(1u32.into());
		for job in 0..n as JobId {
			let outsider: T::AccountId = account("outsider", job as u32, 0);
			Rounds::<T>::insert(
				job,
				Round {
					request: VerificationRequest {
						creator: outsider.clone(),
						miner: outsider,
						dataset: 0,
						base_version: 0,
						candidate_version: 0,
						claim: H256::zero(),
						min_improvement: Perbill::one(),
						trace: None,
					},
					claimed_score: None,
					attempt: 0,
					phase: Phase::Drawing,
					deadline: at,
					committee: BoundedVec::default(),
					draw_retries: 0,
				},
			);
			Deadlines::<T>::insert(at, job, ());
		}
		frame_system::Pallet::<T>::set_block_number(at);
		DeadlineCursor::<T>::put(at);
		#[block]
		{
			Pallet::<T>::on_initialize(at);
		}
		assert!(Deadlines::<T>::iter_key_prefix(at).next().is_none());
	}

	/// `n` rounds decided at their reveal deadline (full committees, a third dissenting).
	#[benchmark]
	fn on_initialize_tally(n: Linear<0, { T::MaxDeadlinesPerBlock::get() }>) {
		let members = full_committee::<T>();
		let mut jobs = Vec::new();
		for i in 0..n {
			let (job, _, _, _) = reveal_phase::<T>(i, &members, true);
			jobs.push(job);
		}
		let at = frame_system::Pallet::<T>::block_number().saturating_add(1u32.into());
		// Drop the draws the jobs scheduled: these rounds are past drawing.
		let _ = Deadlines::<T>::clear(u32::MAX, None);
		for job in &jobs {
			Deadlines::<T>::insert(at, *job, ());
		}
		frame_system::Pallet::<T>::set_block_number(at);
		DeadlineCursor::<T>::put(at);
		#[block]
		{
			Pallet::<T>::on_initialize(at);
		}
		for job in jobs {
			assert!(!Rounds::<T>::contains_key(job));
		}
		// Every verdict took the dearer path: points earned, a head moved.
		assert_eq!(EpochPoints::<T>::iter().count() as u32, n);
	}

	// Benchmark fixtures write worst-case storage directly: no invariant checks.
	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext().unchecked(), crate::mock::Test);
}
