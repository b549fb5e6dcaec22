//! Benchmarks of the audit's calls and deadline processing at their worst case: the longest
//! Merkle proofs, the largest committees and spot-check sets, a full verifier set to draw from,
//! and verdicts that slash and settle a real job.
#![cfg(feature = "runtime-benchmarks")]

use super::*;
use alloc::boxed::Box;
use blyan_primitives::audit::{SegmentCheckpoints, TraceProof, MAX_PROOF_LEN};
use frame_benchmarking::v2::*;
use frame_support::traits::Hooks;
use frame_system::RawOrigin;

/// Levels of the benchmark trace's Merkle tree (2²⁰ leaves: `MAX_SEGMENTS`).
const LEVELS: u32 = 20;

fn fund<T: Config>(who: &T::AccountId) {
	let amount = Params::<T>::get()
		.challenge_bond
		.saturating_add(T::Currency::minimum_balance())
		.saturating_mul(1000u32.into());
	T::Currency::set_balance(who, amount);
}

fn state(step: u32, byte: u8) -> TrainingState {
	TrainingState {
		step,
		weights: H256::repeat_byte(byte),
		optimizer: H256::repeat_byte(byte),
		rng_word_pos: step.into(),
		batch: H256::repeat_byte(byte),
	}
}

/// A trace of `2^LEVELS` leaves whose first two are `first` and `second`, with their proofs:
/// the root is folded from made-up siblings, as `binary-merkle-tree` verifies (no tree is built).
fn deep_trace(first: H256, second: H256) -> (H256, TraceProof, TraceProof) {
	let siblings: Vec<H256> = (1..LEVELS).map(|i| H256::repeat_byte(i as u8)).collect();
	let mut root = BlakeTwo256::hash(&[first.as_bytes(), second.as_bytes()].concat());
	for s in &siblings {
		root = BlakeTwo256::hash(&[root.as_bytes(), s.as_bytes()].concat());
	}
	let proof = |leaf: H256| {
		let mut p = alloc::vec![leaf];
		p.extend(siblings.iter().copied());
		TraceProof::truncate_from(p)
	};
	(root, proof(second), proof(first))
}

/// A real job under verification, audited with `trace`, in `phase`. Returns the job and its
/// miner.
fn audited<T: Config>(
	index: u32,
	trace: TraceCommitment,
	phase: AuditPhase,
) -> (JobId, T::AccountId) {
	let creator: T::AccountId = account("creator", index, 0);
	let miner: T::AccountId = account("miner", index, 0);
	let (job, mut request) = T::Jobs::benchmark_verifying_job(&creator, &miner, Zero::zero());
	request.trace = Some(trace.clone());
	let deadline = frame_system::Pallet::<T>::block_number().saturating_add(100u32.into());
	Audits::<T>::insert(
		job,
		Audit {
			request,
			trace,
			base_weights: H256::zero(),
			result_weights: H256::repeat_byte(0xee),
			phase,
			deadline,
			spot_checks: BoundedVec::default(),
			open_disputes: 0,
			redrawn: false,
			next_challenge: 200,
		},
	);
	(job, miner)
}

fn long_trace(root: H256) -> TraceCommitment {
	TraceCommitment {
		root,
		steps: (1u32 << LEVELS) - 1,
		interval: 1,
		cid: Cid::truncate_from(alloc::vec![b'b'; 128]),
	}
}

/// `count` open disputes on other segments of `job`, each challenger's bond held.
fn other_disputes<T: Config>(job: JobId, count: u32) {
	let bond = Params::<T>::get().challenge_bond;
	let now = frame_system::Pallet::<T>::block_number();
	for i in 0..count {
		let challenger: T::AccountId = account("other", i, 0);
		fund::<T>(&challenger);
		T::Currency::hold(&HoldReason::ChallengeBond.into(), &challenger, bond).expect("funded");
		Disputes::<T>::insert(
			job,
			100 + i,
			Dispute {
				segment: 100 + i,
				challenger,
				bond,
				lo: 0,
				lo_hash: H256::zero(),
				lo_cid: None,
				hi: 2,
				hi_hash: H256::zero(),
				stage: DisputeStage::Miner,
				deadline: now.saturating_add(10u32.into()),
			},
		);
	}
	Audits::<T>::mutate(job, |a| {
		if let Some(a) = a {
			a.open_disputes = count;
		}
	});
}

/// A job whose dispute on segment 100 waits for the last of `MAX_ARBITERS` reports: a quorum
/// against the miner, the others for it; `MaxDisputes` other disputes open. Returns the job and
/// the last arbiter.
fn arbitration<T: Config>(index: u32, set: &[T::AccountId]) -> (JobId, T::AccountId) {
	max_params::<T>();
	let (job, _) = audited::<T>(index, long_trace(H256::zero()), AuditPhase::Checking);
	other_disputes::<T>(job, T::MaxDisputes::get());
	let miner_hash = H256::repeat_byte(7);
	let against = quorum(MAX_ARBITERS);
	let arbiters: Vec<(T::AccountId, Option<Option<H256>>)> = set
		.iter()
		.take(MAX_ARBITERS as usize)
		.enumerate()
		.map(|(i, a)| {
			let report = if (i as u32) + 1 == MAX_ARBITERS {
				None
			} else if (i as u32) < against - 1 {
				Some(Some(H256::repeat_byte(8)))
			} else {
				Some(Some(miner_hash))
			};
			(a.clone(), report)
		})
		.collect();
	let last = arbiters.last().expect("a full set").0.clone();
	Disputes::<T>::mutate(job, 100, |d| {
		let d = d.as_mut().expect("inserted");
		d.hi_hash = miner_hash;
		d.stage = DisputeStage::Arbitration { arbiters: BoundedVec::truncate_from(arbiters) };
	});
	(job, last)
}

fn max_params<T: Config>() {
	let mut params = Params::<T>::get();
	params.arbiters = MAX_ARBITERS;
	params.spot_checks = MAX_SPOT_CHECKS;
	Params::<T>::put(params);
}

/// An audit in its checking phase with `MAX_SPOT_CHECKS` open spot checks, the last of them
/// the whitelisted caller's (the dearest to find): the job and the caller.
fn checked_by_caller_last<T: Config>() -> (JobId, T::AccountId) {
	let (root, _, _) = deep_trace(H256::zero(), H256::zero());
	let (job, _) = audited::<T>(0, long_trace(root), AuditPhase::Checking);
	let caller: T::AccountId = whitelisted_caller();
	Audits::<T>::mutate(job, |a| {
		let a = a.as_mut().expect("inserted");
		a.spot_checks = BoundedVec::truncate_from(
			(0..MAX_SPOT_CHECKS)
				.map(|i| SpotCheck {
					segment: i,
					checker: if i + 1 == MAX_SPOT_CHECKS {
						caller.clone()
					} else {
						account("checker", i, 0)
					},
					attested: false,
					challenged: false,
					unavailable: false,
					reported_before: false,
				})
				.collect(),
		);
	});
	(job, caller)
}

#[benchmarks]
mod benchmarks {
	use super::*;

	/// The last of `MAX_SPOT_CHECKS` checkers attests.
	#[benchmark]
	fn attest() {
		let (job, caller) = checked_by_caller_last::<T>();
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), job, MAX_SPOT_CHECKS - 1);
		assert!(Audits::<T>::get(job)
			.expect("kept")
			.spot_checks
			.iter()
			.all(|c| c.attested || c.segment + 1 != MAX_SPOT_CHECKS));
	}

	/// The last of `MAX_SPOT_CHECKS` checkers reports the trace unavailable.
	#[benchmark]
	fn report_unavailable() {
		let (job, caller) = checked_by_caller_last::<T>();
		let last = MAX_SPOT_CHECKS - 1;
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), job, last);
		let audit = Audits::<T>::get(job).expect("kept");
		assert!(audit.spot_checks.iter().all(|c| c.unavailable == (c.segment == last)));
	}

	/// A challenge with the longest proofs that refutes the trace by itself (it does not start at
	/// the base); the settlement is `on_initialize`'s (`on_initialize_decide`).
	#[benchmark]
	fn challenge() {
		let start = state(0, 1);
		let end = state(1, 2);
		let (root, start_proof, end_proof) = deep_trace(start.hash(), end.hash());
		assert_eq!(start_proof.len() as u32, LEVELS.min(MAX_PROOF_LEN));
		let (job, _) = audited::<T>(0, long_trace(root), AuditPhase::Checking);
		other_disputes::<T>(job, T::MaxDisputes::get().saturating_sub(1));
		let caller: T::AccountId = whitelisted_caller();
		fund::<T>(&caller);
		#[extrinsic_call]
		_(
			RawOrigin::Signed(caller),
			job,
			0,
			Box::new(SegmentCheckpoints { start, start_proof, end, end_proof }),
			H256::repeat_byte(0xcc),
		);
		assert_eq!(Disputes::<T>::get(job, 200).expect("opened").stage, DisputeStage::Refuted);
	}

	#[benchmark]
	fn bisect() {
		let (job, miner) = audited::<T>(0, long_trace(H256::zero()), AuditPhase::Checking);
		other_disputes::<T>(job, 1);
		#[extrinsic_call]
		_(
			RawOrigin::Signed(miner),
			job,
			100,
			1,
			H256::repeat_byte(3),
			Cid::truncate_from(alloc::vec![b'b'; 128]),
		);
		assert!(matches!(
			Disputes::<T>::get(job, 100).expect("kept").stage,
			DisputeStage::Challenger { .. }
		));
	}

	/// The answer that leaves one step (the arbiters are drawn by `on_initialize`).
	#[benchmark]
	fn respond() {
		max_params::<T>();
		T::Verifiers::benchmark_full_set();
		let (job, _) = audited::<T>(0, long_trace(H256::zero()), AuditPhase::Checking);
		other_disputes::<T>(job, 1);
		let challenger: T::AccountId = account("other", 0, 0);
		Disputes::<T>::mutate(job, 100, |d| {
			let d = d.as_mut().expect("inserted");
			d.stage = DisputeStage::Challenger {
				mid_hash: H256::repeat_byte(1),
				mid_cid: Cid::truncate_from(alloc::vec![b'b'; 128]),
			};
		});
		#[extrinsic_call]
		_(RawOrigin::Signed(challenger), job, 100, 1, true);
		assert_eq!(
			Disputes::<T>::get(job, 100).expect("kept").stage,
			DisputeStage::DrawingArbiters
		);
	}

	/// The last of `MAX_ARBITERS` reports (the decision is `on_initialize`'s).
	#[benchmark]
	fn arbitrate() {
		let set = T::Verifiers::benchmark_full_set();
		let (job, caller) = arbitration::<T>(0, &set);
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), job, 100, Some(H256::repeat_byte(8)));
		let at = frame_system::Pallet::<T>::block_number().saturating_add(1u32.into());
		assert_eq!(Disputes::<T>::get(job, 100).expect("kept").deadline, at);
	}

	/// `n` disputes decided: a quorum of `MAX_ARBITERS` against the miner, the rest penalised,
	/// the job settled (miner slashed, challenger paid) and `MaxDisputes` other bonds released.
	#[benchmark]
	fn on_initialize_decide(n: Linear<0, { T::MaxDeadlinesPerBlock::get() }>) {
		let at = frame_system::Pallet::<T>::block_number().saturating_add(1u32.into());
		let mut jobs = Vec::new();
		let set = T::Verifiers::benchmark_full_set();
		for i in 0..n {
			let (job, last) = arbitration::<T>(i, &set);
			Disputes::<T>::mutate(job, 100, |d| {
				let d = d.as_mut().expect("inserted");
				d.deadline = at;
				if let DisputeStage::Arbitration { arbiters } = &mut d.stage {
					for seat in arbiters.iter_mut().filter(|(a, _)| *a == last) {
						seat.1 = Some(Some(H256::repeat_byte(8)));
					}
				}
			});
			Deadlines::<T>::insert(at, Timer::Dispute(job, 100), ());
			jobs.push(job);
		}
		frame_system::Pallet::<T>::set_block_number(at);
		DeadlineCursor::<T>::put(at);
		#[block]
		{
			Pallet::<T>::on_initialize(at);
		}
		for job in jobs {
			assert!(!Audits::<T>::contains_key(job));
		}
	}

	/// `n` spot-check draws: `MAX_SPOT_CHECKS` segments of the longest trace, `MAX_CHECKERS`
	/// checkers from a full verifier set.
	#[benchmark]
	fn on_initialize_draw(n: Linear<0, { T::MaxDeadlinesPerBlock::get() }>) {
		max_params::<T>();
		T::Verifiers::benchmark_full_set();
		let at = frame_system::Pallet::<T>::block_number().saturating_add(1u32.into());
		for i in 0..n {
			let (job, _) = audited::<T>(i, long_trace(H256::zero()), AuditPhase::Drawing);
			Audits::<T>::mutate(job, |a| a.as_mut().expect("inserted").deadline = at);
			Deadlines::<T>::insert(at, Timer::Audit(job), ());
		}
		frame_system::Pallet::<T>::set_block_number(at);
		DeadlineCursor::<T>::put(at);
		#[block]
		{
			Pallet::<T>::on_initialize(at);
		}
		for (_, audit) in Audits::<T>::iter() {
			assert_eq!(audit.phase, AuditPhase::Checking);
		}
	}

	/// `n` challenge windows closing: `MAX_SPOT_CHECKS` segments dealt to `MAX_CHECKERS`
	/// checkers, two thirds attested, every checker with a silent segment penalised, the job
	/// handed on.
	#[benchmark]
	fn on_initialize_close(n: Linear<0, { T::MaxDeadlinesPerBlock::get() }>) {
		let set = T::Verifiers::benchmark_full_set();
		let at = frame_system::Pallet::<T>::block_number().saturating_add(1u32.into());
		for i in 0..n {
			let (job, _) = audited::<T>(i, long_trace(H256::zero()), AuditPhase::Checking);
			Audits::<T>::mutate(job, |a| {
				let a = a.as_mut().expect("inserted");
				a.deadline = at;
				a.spot_checks = BoundedVec::truncate_from(
					(0..MAX_SPOT_CHECKS)
						.map(|s| SpotCheck {
							segment: s,
							checker: set[s as usize % (MAX_CHECKERS as usize).min(set.len())]
								.clone(),
							attested: s < quorum(MAX_SPOT_CHECKS),
							challenged: false,
							unavailable: false,
							reported_before: false,
						})
						.collect(),
				);
			});
			Deadlines::<T>::insert(at, Timer::Audit(job), ());
		}
		frame_system::Pallet::<T>::set_block_number(at);
		DeadlineCursor::<T>::put(at);
		#[block]
		{
			Pallet::<T>::on_initialize(at);
		}
		assert_eq!(Audits::<T>::iter().count(), 0);
	}

	// Benchmark fixtures write worst-case storage directly: no invariant checks.
	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext().unchecked(), crate::mock::Test);
}
