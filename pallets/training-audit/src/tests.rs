//! The audit game on the registry, jobs, audit and PoL pallets together: spot checks, challenges,
//! bisection, arbitration, timeouts and who pays.
use crate::{mock::*, *};
use blyan_primitives::audit::{trace_proof, trace_root, TraceProof};
use blyan_primitives::pol::{Backend, SemVer, VersionStatus};
use frame_support::{assert_noop, assert_ok, traits::fungible::InspectHold};
use pallet_jobs::{
	testing::{self, cid, SALT},
	Capabilities, JobResult, TrainingParams,
};
use sp_runtime::traits::BlakeTwo256;
use sp_runtime::Perbill;

const CREATOR: AccountId = 1;
const MINER: AccountId = 2;
const DATA_OWNER: AccountId = 3;
const MODEL_OWNER: AccountId = 5;
const CHALLENGER: AccountId = 9;
const V: [AccountId; 5] = [10, 11, 12, 13, 14];
const REWARD: Balance = 500;
/// 8 steps, a checkpoint every 2: four segments, five checkpoints.
const STEPS: u32 = 8;
const INTERVAL: u32 = 2;
const RESULT_WEIGHTS: H256 = H256::repeat_byte(0xee);
/// The miner's commitment to its score (scored by the PoL pallet, not the audit).
const CLAIM: H256 = H256::repeat_byte(0xc1);

/// The miner's checkpoints: the base (the fixture's zero root) to the result's weights.
fn states() -> Vec<TrainingState> {
	let n = STEPS / INTERVAL;
	(0..=n)
		.map(|i| {
			if i == 0 {
				return TrainingState::initial(H256::zero());
			}
			TrainingState {
				step: i * INTERVAL,
				weights: if i == n { RESULT_WEIGHTS } else { H256::repeat_byte(i as u8) },
				optimizer: H256::repeat_byte(0x40 + i as u8),
				rng_word_pos: u128::from(i) * 100,
				batch: H256::repeat_byte(0x80 + i as u8),
			}
		})
		.collect()
}

fn leaves(states: &[TrainingState]) -> Vec<H256> {
	states.iter().map(TrainingState::hash).collect()
}

fn trace_of(states: &[TrainingState]) -> TraceCommitment {
	TraceCommitment {
		root: trace_root(&leaves(states)),
		steps: STEPS,
		interval: INTERVAL,
		cid: cid("bafytrace"),
	}
}

fn proof(states: &[TrainingState], index: u32) -> TraceProof {
	TraceProof::truncate_from(trace_proof(&leaves(states), index))
}

fn setup() {
	assert_eq!(
		pallet_model_registry::testing::two_layer_model_and_dataset::<Test>(
			MODEL_OWNER,
			DATA_OWNER
		),
		Ok((0, 0))
	);
	assert_ok!(pallet_jobs::Pallet::<Test>::register_worker(
		RuntimeOrigin::signed(MINER),
		Capabilities { backends: BoundedVec::truncate_from(vec![Backend::Cpu]), memory_mb: 1024 },
		MIN_WORKER_BOND,
	));
	for v in V {
		assert_ok!(Pol::register_verifier(RuntimeOrigin::signed(v), MIN_VERIFIER_BOND));
	}
}

fn job_result(trace: Option<TraceCommitment>) -> JobResult {
	let semver = SemVer::new(1, 1 + pallet_jobs::NextJobId::<Test>::get() as u16, 0);
	testing::job_result(semver, RESULT_WEIGHTS, trace)
}

/// Posts an 8-step job, claims, commits and reveals up to the validation set; returns the job.
fn job_to_reveal(result: &JobResult) -> JobId {
	let job = pallet_jobs::NextJobId::<Test>::get();
	let training = TrainingParams { batch_size: 2, ..blyan_primitives::testing::training(8) };
	let spec = testing::job_spec(0, 0, training, System::block_number() + 100);
	assert_eq!(testing::job_to_reveal::<Test>(CREATOR, MINER, spec, REWARD, result), Ok(job));
	job
}

/// A revealed job with the trace of `states`, its spot checks drawn.
fn audited_job(states: &[TrainingState]) -> JobId {
	let result = job_result(Some(trace_of(states)));
	let job = job_to_reveal(&result);
	assert_ok!(Jobs::reveal_result(RuntimeOrigin::signed(MINER), job, result, CLAIM, SALT));
	System::assert_has_event(
		Event::AuditStarted { job, segments: 4, draw_at: System::block_number() + DRAW_DELAY }
			.into(),
	);
	run_to(System::block_number() + DRAW_DELAY);
	assert_eq!(Audits::<Test>::get(job).unwrap().phase, AuditPhase::Checking);
	job
}

/// Every drawn checker attests its segment.
fn attest_all(job: JobId) {
	for (segment, checker) in checks(job) {
		assert_ok!(TrainingAudit::attest(RuntimeOrigin::signed(checker), job, segment));
	}
}

fn checks(job: JobId) -> Vec<(SegmentIndex, AccountId)> {
	Audits::<Test>::get(job).unwrap().spot_checks.iter().map(|c| (c.segment, c.checker)).collect()
}

fn checkpoints(
	start: &TrainingState,
	start_proof: TraceProof,
	end: &TrainingState,
	end_proof: TraceProof,
) -> Box<SegmentCheckpoints> {
	Box::new(SegmentCheckpoints { start: start.clone(), start_proof, end: end.clone(), end_proof })
}

fn challenge(job: JobId, who: AccountId, segment: u32, states: &[TrainingState]) -> DispatchResult {
	let s = segment as usize;
	TrainingAudit::challenge(
		RuntimeOrigin::signed(who),
		job,
		segment,
		checkpoints(&states[s], proof(states, segment), &states[s + 1], proof(states, segment + 1)),
		H256::repeat_byte(0xcc),
	)
}

fn arbiters(job: JobId, challenge: ChallengeId) -> Vec<AccountId> {
	match Disputes::<Test>::get(job, challenge).unwrap().stage {
		DisputeStage::Arbitration { arbiters } => arbiters.iter().map(|(a, _)| *a).collect(),
		other => panic!("not in arbitration: {other:?}"),
	}
}

fn held_bond(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::TrainingAudit(HoldReason::ChallengeBond), &who)
}

fn worker_bond(who: AccountId) -> Balance {
	pallet_jobs::Workers::<Test>::get(who).unwrap().bond
}

fn candidate_status() -> VersionStatus {
	pallet_model_registry::Versions::<Test>::get(1).unwrap().status
}

fn assert_books_balance() {
	let total: Balance = frame_system::Account::<Test>::iter()
		.map(|(_, info)| info.data.free + info.data.reserved)
		.sum();
	assert_eq!(total, Balances::total_issuance());
}

#[test]
fn an_honest_trace_passes_its_spot_checks_and_goes_on_to_scoring() {
	new_test_ext().execute_with(|| {
		setup();
		let job = audited_job(&states());
		let drawn = checks(job);
		assert_eq!(drawn.len(), 3, "spot_checks segments");
		assert!(drawn.iter().all(|(s, c)| *s < 4 && V.contains(c)));
		assert_ne!(drawn[0].0, drawn[1].0, "distinct segments");
		for (segment, checker) in &drawn {
			assert!(TrainingAudit::duties(checker)
				.contains(&AuditDuty::SpotCheck { job, segment: *segment }));
			assert_ok!(TrainingAudit::attest(RuntimeOrigin::signed(*checker), job, *segment));
		}
		let (segment, checker) = drawn[0];
		assert_noop!(
			TrainingAudit::attest(RuntimeOrigin::signed(checker), job, segment),
			Error::<Test>::AlreadyAttested
		);
		assert_noop!(
			TrainingAudit::attest(RuntimeOrigin::signed(CHALLENGER), job, segment),
			Error::<Test>::NotChecker
		);
		let bond = worker_bond(MINER);
		run_to(System::block_number() + CHALLENGE_WINDOW);
		System::assert_has_event(Event::AuditPassed { job, attested: 3 }.into());
		assert!(Audits::<Test>::get(job).is_none());
		assert!(pallet_pol_rewards::Rounds::<Test>::get(job).is_some(), "scoring started");
		assert_eq!(worker_bond(MINER), bond, "never slashed");
		assert_books_balance();
	});
}

#[test]
fn a_result_without_its_trace_cannot_be_revealed() {
	new_test_ext().execute_with(|| {
		setup();
		let result = job_result(None);
		let job = job_to_reveal(&result);
		assert_noop!(
			Jobs::reveal_result(RuntimeOrigin::signed(MINER), job, result, CLAIM, SALT),
			pallet_jobs::Error::<Test>::TraceRequired
		);
		let mut short = trace_of(&states());
		short.steps = 6;
		let result = job_result(Some(short));
		let job = job_to_reveal(&result);
		assert_noop!(
			Jobs::reveal_result(RuntimeOrigin::signed(MINER), job, result, CLAIM, SALT),
			pallet_jobs::Error::<Test>::TraceMismatch
		);
		let mut coarse = trace_of(&states());
		coarse.interval = 5; // above checkpoint_interval (4)
		let result = job_result(Some(coarse));
		let job = job_to_reveal(&result);
		assert_noop!(
			Jobs::reveal_result(RuntimeOrigin::signed(MINER), job, result, CLAIM, SALT),
			Error::<Test>::BadTrace
		);
	});
}

#[test]
fn bad_challenges_are_refused_and_cost_nothing() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		let before = Balances::free_balance(CHALLENGER);
		assert_noop!(challenge(job, MINER, 1, &states), Error::<Test>::OwnTrace);
		let past_end = TrainingAudit::challenge(
			RuntimeOrigin::signed(CHALLENGER),
			job,
			4,
			checkpoints(&states[3], proof(&states, 3), &states[4], proof(&states, 4)),
			H256::repeat_byte(0xcc),
		);
		assert_noop!(past_end, Error::<Test>::UnknownSegment);
		let forged = |s: &mut Vec<TrainingState>| s[2].rng_word_pos += 1;
		let mut other = states.clone();
		forged(&mut other);
		let bad_proof = TrainingAudit::challenge(
			RuntimeOrigin::signed(CHALLENGER),
			job,
			1,
			checkpoints(&states[1], proof(&states, 1), &other[2], proof(&states, 2)),
			H256::repeat_byte(0xcc),
		);
		assert_noop!(bad_proof, Error::<Test>::BadProof);
		let same = TrainingAudit::challenge(
			RuntimeOrigin::signed(CHALLENGER),
			job,
			1,
			checkpoints(&states[1], proof(&states, 1), &states[2], proof(&states, 2)),
			states[2].hash(),
		);
		assert_noop!(same, Error::<Test>::NoDisagreement);
		assert_noop!(challenge(job, 200, 1, &states), Error::<Test>::InsufficientBalance);
		assert_eq!(Balances::free_balance(CHALLENGER), before);
		assert_noop!(challenge(7, CHALLENGER, 1, &states), Error::<Test>::UnknownAudit);
	});
}

/// Challenge → bisection → arbitration, arbiters reporting `report(hi_hash)`.
fn dispute_to_arbitration(job: JobId, states: &[TrainingState]) -> Vec<AccountId> {
	assert_ok!(challenge(job, CHALLENGER, 1, states));
	assert_eq!(held_bond(CHALLENGER), CHALLENGE_BOND);
	assert_noop!(challenge(job, CHALLENGER, 1, states), Error::<Test>::AlreadyDisputed);
	// Challenge 0 of the job: segment 1.
	assert_eq!(Disputes::<Test>::get(job, 0).unwrap().segment, 1);
	assert!(TrainingAudit::duties(&MINER).contains(&AuditDuty::Bisect { job, challenge: 0 }));
	// Segment 1 is steps 2 → 4: the miner names step 3, the challenger agrees, step 4 is left.
	assert_noop!(
		TrainingAudit::respond(RuntimeOrigin::signed(CHALLENGER), job, 0, 3, true),
		Error::<Test>::NotYourMove
	);
	let mid = H256::repeat_byte(0x33);
	assert_noop!(
		TrainingAudit::bisect(RuntimeOrigin::signed(CHALLENGER), job, 0, 3, mid, cid("bafymid")),
		Error::<Test>::NotYourMove
	);
	assert_ok!(TrainingAudit::bisect(RuntimeOrigin::signed(MINER), job, 0, 3, mid, cid("bafymid")));
	System::assert_has_event(Event::Bisected { job, challenge: 0, step: 3, state: mid }.into());
	assert!(TrainingAudit::duties(&CHALLENGER).contains(&AuditDuty::Respond { job, challenge: 0 }));
	assert_ok!(TrainingAudit::respond(RuntimeOrigin::signed(CHALLENGER), job, 0, 3, true));
	let dispute = Disputes::<Test>::get(job, 0).unwrap();
	assert_eq!((dispute.lo, dispute.hi, dispute.lo_hash), (3, 4, mid));
	assert_eq!(dispute.lo_cid, Some(cid("bafymid")));
	// Arbiters are drawn in the next block (the draw is on_initialize's work, not the call's).
	assert_eq!(dispute.stage, DisputeStage::DrawingArbiters);
	run_to(System::block_number() + 1);
	let arbiters = arbiters(job, 0);
	assert_eq!(arbiters.len(), 3);
	assert!(!arbiters.contains(&MINER) && !arbiters.contains(&CHALLENGER));
	arbiters
}

#[test]
fn a_refuted_step_slashes_the_miner_and_pays_the_challenger() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		let arbiters = dispute_to_arbitration(job, &states);
		let (challenger, creator) =
			(Balances::free_balance(CHALLENGER), Balances::free_balance(CREATOR));
		let bond = worker_bond(MINER);
		let computed = Some(H256::repeat_byte(0x44));
		for a in &arbiters[..2] {
			assert_ok!(TrainingAudit::arbitrate(RuntimeOrigin::signed(*a), job, 0, computed));
		}
		assert_noop!(
			TrainingAudit::arbitrate(RuntimeOrigin::signed(arbiters[0]), job, 0, computed),
			Error::<Test>::NotArbiter
		);
		// The third stays silent: decided at the deadline, and penalised.
		run_to(System::block_number() + MOVE_WINDOW);
		let slashed = Perbill::from_percent(50) * bond;
		System::assert_has_event(
			Event::FraudProven { job, segment: 1, challenger: CHALLENGER, slashed }.into(),
		);
		// Half the slash to the challenger, half burned.
		assert_eq!(Balances::free_balance(CHALLENGER), challenger + CHALLENGE_BOND + slashed / 2);
		assert_eq!(held_bond(CHALLENGER), 0);
		assert_eq!(worker_bond(MINER), bond - slashed);
		// The escrow and the creator's bond (a fifth of the reward) come back.
		assert_eq!(
			Balances::free_balance(CREATOR),
			creator + REWARD + REWARD / 5,
			"creator refunded"
		);
		assert_eq!(candidate_status(), VersionStatus::Rejected);
		assert!(
			Audits::<Test>::get(job).is_none() && pallet_jobs::Jobs::<Test>::get(job).is_none()
		);
		System::assert_has_event(
			pallet_pol_rewards::Event::VerifierPenalised { job, verifier: arbiters[2], amount: 10 }
				.into(),
		);
		assert!(pallet_pol_rewards::Rounds::<Test>::get(job).is_none(), "never scored");
		assert_books_balance();
	});
}

#[test]
fn a_false_challenge_costs_the_challenger_its_bond_and_the_audit_passes() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		attest_all(job);
		let arbiters = dispute_to_arbitration(job, &states);
		let (miner, bond) = (Balances::free_balance(MINER), worker_bond(MINER));
		// The miner's state at step 4 is what every arbiter computes.
		for a in &arbiters {
			assert_ok!(TrainingAudit::arbitrate(
				RuntimeOrigin::signed(*a),
				job,
				0,
				Some(states[2].hash())
			));
		}
		// The last report schedules the decision for the next block.
		run_to(System::block_number() + 1);
		System::assert_has_event(
			Event::ChallengeFailed {
				job,
				challenge: 0,
				challenger: CHALLENGER,
				bond: CHALLENGE_BOND,
				to_miner: CHALLENGE_BOND / 2,
			}
			.into(),
		);
		// Half the bond to the miner, half burned.
		assert_eq!(held_bond(CHALLENGER), 0);
		assert_eq!(Balances::free_balance(CHALLENGER), 1_000 - CHALLENGE_BOND);
		assert_eq!(Balances::free_balance(MINER), miner + CHALLENGE_BOND / 2);
		assert_eq!(worker_bond(MINER), bond);
		// The window still runs; the checkers confirmed the trace: it passes.
		run_to(System::block_number() + CHALLENGE_WINDOW);
		assert!(System::events().iter().any(|e| matches!(
			e.event,
			RuntimeEvent::TrainingAudit(Event::AuditPassed { job: 0, .. })
		)));
		assert!(pallet_pol_rewards::Rounds::<Test>::get(job).is_some());
		assert_books_balance();
	});
}

#[test]
fn a_dispute_open_when_the_window_closes_holds_the_audit_until_it_ends() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		attest_all(job);
		run_to(System::block_number() + CHALLENGE_WINDOW - 1);
		assert_ok!(challenge(job, CHALLENGER, 2, &states));
		run_to(System::block_number() + 1);
		assert_eq!(Audits::<Test>::get(job).unwrap().phase, AuditPhase::Closing);
		assert_noop!(challenge(job, 4, 1, &states), Error::<Test>::WrongPhase);
		// The miner bisects; the challenger walks away: it loses, and the audit passes.
		assert_ok!(TrainingAudit::bisect(
			RuntimeOrigin::signed(MINER),
			job,
			0,
			5,
			H256::zero(),
			cid("b")
		));
		run_to(System::block_number() + MOVE_WINDOW);
		System::assert_has_event(
			Event::ChallengeFailed {
				job,
				challenge: 0,
				challenger: CHALLENGER,
				bond: CHALLENGE_BOND,
				to_miner: CHALLENGE_BOND / 2,
			}
			.into(),
		);
		assert!(pallet_pol_rewards::Rounds::<Test>::get(job).is_some());
		assert_books_balance();
	});
}

#[test]
fn a_miner_that_does_not_defend_its_trace_is_slashed() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		assert_ok!(challenge(job, CHALLENGER, 0, &states));
		run_to(System::block_number() + MOVE_WINDOW);
		assert!(System::events().iter().any(|e| matches!(
			e.event,
			RuntimeEvent::TrainingAudit(Event::FraudProven {
				segment: 0,
				challenger: CHALLENGER,
				..
			})
		)));
		assert_eq!(candidate_status(), VersionStatus::Rejected);
		assert_books_balance();
	});
}

#[test]
fn a_trace_that_does_not_start_at_the_base_or_end_at_the_result_is_refuted_at_once() {
	for (bad, segment) in [(0usize, 0u32), (4, 3)] {
		new_test_ext().execute_with(|| {
			setup();
			let mut states = states();
			// Copied weights: the trace leaves the base, or lands elsewhere than the result.
			states[bad].weights = H256::repeat_byte(0x99);
			let job = audited_job(&states);
			assert_ok!(challenge(job, CHALLENGER, segment, &states));
			// Settled by the next block's on_initialize.
			run_to(System::block_number() + 1);
			assert!(System::events().iter().any(|e| matches!(
				e.event,
				RuntimeEvent::TrainingAudit(Event::FraudProven { challenger: CHALLENGER, .. })
			)));
			assert_eq!(held_bond(CHALLENGER), 0);
			assert!(Disputes::<Test>::iter().next().is_none());
			assert_eq!(candidate_status(), VersionStatus::Rejected);
			assert_books_balance();
		});
	}
}

/// As [`audited_job`], for a LoRA job (its result an adapter version).
fn lora_audited_job(states: &[TrainingState]) -> JobId {
	let result = job_result(Some(trace_of(states)));
	let job = pallet_jobs::NextJobId::<Test>::get();
	let mut training = TrainingParams { batch_size: 2, ..blyan_primitives::testing::training(8) };
	training.lora = Some(blyan_primitives::training::LoraParams {
		rank: 4,
		alpha: 8,
		targets: 0x7f,
		rslora: false,
	});
	let spec = testing::job_spec(0, 0, training, System::block_number() + 100);
	assert_eq!(testing::job_to_reveal::<Test>(CREATOR, MINER, spec, REWARD, &result), Ok(job));
	assert_ok!(Jobs::reveal_result(RuntimeOrigin::signed(MINER), job, result, CLAIM, SALT));
	run_to(System::block_number() + DRAW_DELAY);
	job
}

#[test]
fn a_lora_trace_starts_at_its_adapters_and_only_their_moments_and_sampler_are_fixed() {
	new_test_ext().execute_with(|| {
		setup();
		let mut states = states();
		// Adapters drawn from the job's seed: not the base's weights.
		states[0].weights = H256::repeat_byte(0xad);
		let job = lora_audited_job(&states);
		// A challenge of the first segment goes to bisection: the chain cannot tell the
		// adapters' draw, the checkers and arbiters can.
		assert_ok!(challenge(job, CHALLENGER, 0, &states));
		run_to(System::block_number() + 1);
		assert!(!System::events()
			.iter()
			.any(|e| matches!(e.event, RuntimeEvent::TrainingAudit(Event::FraudProven { .. }))));
		assert_eq!(Disputes::<Test>::iter().count(), 1);
		assert_eq!(candidate_status(), VersionStatus::Candidate);
	});
	// Moments or a sampler not at their start still refute a LoRA trace at once.
	new_test_ext().execute_with(|| {
		setup();
		let mut states = states();
		states[0].weights = H256::repeat_byte(0xad);
		states[0].rng_word_pos = 7;
		let job = lora_audited_job(&states);
		assert_ok!(challenge(job, CHALLENGER, 0, &states));
		run_to(System::block_number() + 1);
		assert_eq!(candidate_status(), VersionStatus::Rejected);
		assert_books_balance();
	});
}

fn penalised(job: JobId) -> Vec<AccountId> {
	System::events()
		.iter()
		.filter_map(|e| match e.event {
			RuntimeEvent::Pol(pallet_pol_rewards::Event::VerifierPenalised {
				job: j,
				verifier,
				..
			}) if j == job => Some(verifier),
			_ => None,
		})
		.collect()
}

fn redrawn(job: JobId) -> Option<Vec<(SegmentIndex, AccountId)>> {
	System::events().iter().find_map(|e| match &e.event {
		RuntimeEvent::TrainingAudit(Event::SpotChecksRedrawn { job: j, checks, .. })
			if *j == job =>
		{
			Some(checks.clone())
		}
		_ => None,
	})
}

#[test]
fn a_trace_nobody_checked_is_redrawn_then_scored_unaudited_and_every_silent_checker_pays() {
	new_test_ext().execute_with(|| {
		setup();
		let job = audited_job(&states());
		let first: Vec<AccountId> = checks(job).iter().map(|(_, c)| *c).collect();
		let bond = worker_bond(MINER);
		run_to(System::block_number() + CHALLENGE_WINDOW);
		// Not ended at once: the silent checkers pay, and new ones get the segments.
		assert!(!System::events().iter().any(|e| matches!(
			e.event,
			RuntimeEvent::TrainingAudit(Event::AuditUnconfirmed { .. })
		)));
		let mut silent = penalised(job);
		silent.sort();
		let mut expected = first.clone();
		expected.sort();
		expected.dedup();
		assert_eq!(silent, expected, "every silent checker of the first draw pays");
		let second = redrawn(job).expect("redrawn");
		assert_eq!(second.len(), 3);
		assert!(second.iter().all(|(_, c)| !first.contains(c) && V.contains(c)));
		assert_eq!(Audits::<Test>::get(job).unwrap().phase, AuditPhase::Checking);
		run_to(System::block_number() + CHALLENGE_WINDOW);
		// Nothing shows the miner at fault: scored on its improvement, not refunded to the
		// creator (who holds the published weights).
		System::assert_has_event(Event::AuditUnconfirmed { job, attested: 0 }.into());
		assert!(pallet_pol_rewards::Rounds::<Test>::get(job).is_some(), "scoring started");
		// Both draws' silent checkers paid, each once a draw.
		assert_eq!(penalised(job).len(), expected.len() + 2, "two new checkers");
		assert_eq!(worker_bond(MINER), bond);
		assert_books_balance();
	});
}

/// Spot checks as `(segment, checker)`.
type Checks = Vec<(SegmentIndex, AccountId)>;

/// The first checker attests, the other two stay silent through the window: returns the first
/// draw and the redraw of the two unconfirmed checks.
fn one_of_three_attests_and_the_rest_is_redrawn(job: JobId) -> (Checks, Checks) {
	let drawn = checks(job);
	// One of three attests: not enough to pass, but no reason to refund the creator yet.
	assert_ok!(TrainingAudit::attest(RuntimeOrigin::signed(drawn[0].1), job, drawn[0].0));
	run_to(System::block_number() + CHALLENGE_WINDOW);
	let second = redrawn(job).expect("redrawn");
	(drawn, second)
}

#[test]
fn checks_the_first_draw_left_undone_are_redrawn_and_the_trace_passes_when_confirmed() {
	new_test_ext().execute_with(|| {
		setup();
		let job = audited_job(&states());
		let (drawn, second) = one_of_three_attests_and_the_rest_is_redrawn(job);
		assert_eq!(second.len(), 2, "only the unconfirmed checks");
		assert!(!second.iter().any(|(s, _)| *s == drawn[0].0));
		for (segment, checker) in &second {
			assert!(TrainingAudit::duties(checker)
				.contains(&AuditDuty::SpotCheck { job, segment: *segment }));
			assert_ok!(TrainingAudit::attest(RuntimeOrigin::signed(*checker), job, *segment));
		}
		run_to(System::block_number() + CHALLENGE_WINDOW);
		System::assert_has_event(Event::AuditPassed { job, attested: 3 }.into());
		assert!(pallet_pol_rewards::Rounds::<Test>::get(job).is_some(), "scoring started");
		// The two who left their segments undone paid; the one who attested did not.
		let paid = penalised(job);
		assert!(!paid.contains(&drawn[0].1));
		assert!(drawn[1..].iter().all(|(_, c)| paid.contains(c)));
	});
}

#[test]
fn a_silent_checker_is_penalised_when_the_others_confirmed_the_trace() {
	new_test_ext().execute_with(|| {
		setup();
		let job = audited_job(&states());
		let drawn = checks(job);
		for (segment, checker) in &drawn[..2] {
			assert_ok!(TrainingAudit::attest(RuntimeOrigin::signed(*checker), job, *segment));
		}
		run_to(System::block_number() + CHALLENGE_WINDOW);
		System::assert_has_event(
			pallet_pol_rewards::Event::VerifierPenalised { job, verifier: drawn[2].1, amount: 10 }
				.into(),
		);
		System::assert_has_event(Event::AuditPassed { job, attested: 2 }.into());
	});
}

#[test]
fn a_trace_too_few_checkers_confirmed_twice_goes_on_to_scoring_unaudited() {
	new_test_ext().execute_with(|| {
		setup();
		let job = audited_job(&states());
		one_of_three_attests_and_the_rest_is_redrawn(job);
		// The new checkers stay silent too: they pay, the miner does not.
		let bond = worker_bond(MINER);
		run_to(System::block_number() + CHALLENGE_WINDOW);
		System::assert_has_event(Event::AuditUnconfirmed { job, attested: 1 }.into());
		assert!(pallet_pol_rewards::Rounds::<Test>::get(job).is_some());
		assert_eq!(worker_bond(MINER), bond);
	});
}

#[test]
fn a_withheld_trace_reported_by_the_checkers_slashes_the_miner() {
	new_test_ext().execute_with(|| {
		setup();
		let job = audited_job(&states());
		let drawn = checks(job);
		let (bond, creator) = (worker_bond(MINER), Balances::free_balance(CREATOR));
		for (segment, checker) in &drawn {
			assert_ok!(TrainingAudit::report_unavailable(
				RuntimeOrigin::signed(*checker),
				job,
				*segment
			));
			System::assert_has_event(
				Event::TraceUnavailable { job, segment: *segment, checker: *checker }.into(),
			);
			// Reported: no longer a duty, and neither a second report nor an attestation.
			assert!(!TrainingAudit::duties(checker)
				.contains(&AuditDuty::SpotCheck { job, segment: *segment }));
			assert_noop!(
				TrainingAudit::report_unavailable(RuntimeOrigin::signed(*checker), job, *segment),
				Error::<Test>::AlreadyAttested
			);
			assert_noop!(
				TrainingAudit::attest(RuntimeOrigin::signed(*checker), job, *segment),
				Error::<Test>::AlreadyAttested
			);
		}
		assert_noop!(
			TrainingAudit::report_unavailable(RuntimeOrigin::signed(CHALLENGER), job, 0),
			Error::<Test>::NotChecker
		);
		run_to(System::block_number() + CHALLENGE_WINDOW);
		let slashed = Perbill::from_percent(50) * bond;
		System::assert_has_event(Event::TraceWithheld { job, slashed }.into());
		assert!(redrawn(job).is_none(), "a withheld trace is not redrawn");
		assert!(penalised(job).is_empty(), "the checkers who reported did their duty");
		assert_eq!(worker_bond(MINER), bond - slashed);
		// The escrow and the creator's bond (a fifth of the reward) come back.
		assert_eq!(
			Balances::free_balance(CREATOR),
			creator + REWARD + REWARD / 5,
			"creator refunded"
		);
		assert_eq!(candidate_status(), VersionStatus::Rejected);
		assert!(pallet_pol_rewards::Rounds::<Test>::get(job).is_none(), "never scored");
		assert_noop!(
			TrainingAudit::report_unavailable(RuntimeOrigin::signed(drawn[0].1), job, drawn[0].0),
			Error::<Test>::UnknownAudit
		);
		assert_books_balance();
	});
}

#[test]
fn reports_of_a_missing_trace_from_both_draws_add_up() {
	new_test_ext().execute_with(|| {
		setup();
		let job = audited_job(&states());
		let drawn = checks(job);
		// One attests (it fetched the trace earlier, say), one reports it missing, one is silent.
		assert_ok!(TrainingAudit::attest(RuntimeOrigin::signed(drawn[0].1), job, drawn[0].0));
		assert_ok!(TrainingAudit::report_unavailable(
			RuntimeOrigin::signed(drawn[1].1),
			job,
			drawn[1].0
		));
		run_to(System::block_number() + CHALLENGE_WINDOW);
		// The reported and the silent checks are redrawn, to checkers other than their first
		// (only the silent one paid).
		let second = redrawn(job).expect("redrawn");
		assert_eq!(
			second.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
			vec![drawn[1].0, drawn[2].0]
		);
		assert!(second[0].1 != drawn[1].1 && second[1].1 != drawn[2].1);
		assert_eq!(penalised(job), vec![drawn[2].1]);
		// A second, independent checker finds the reported segment missing too.
		assert_ok!(TrainingAudit::report_unavailable(
			RuntimeOrigin::signed(second[0].1),
			job,
			second[0].0
		));
		run_to(System::block_number() + CHALLENGE_WINDOW);
		assert!(System::events().iter().any(|e| matches!(
			e.event,
			RuntimeEvent::TrainingAudit(Event::TraceWithheld { job: 0, .. })
		)));
		assert_eq!(candidate_status(), VersionStatus::Rejected);
	});
}

#[test]
fn a_checkpoint_at_the_wrong_step_refutes_the_trace() {
	new_test_ext().execute_with(|| {
		setup();
		let mut states = states();
		// A leaf that claims no training happened in its segment.
		states[2].step = states[1].step;
		let job = audited_job(&states);
		assert_ok!(challenge(job, CHALLENGER, 1, &states));
		run_to(System::block_number() + 1);
		assert!(System::events().iter().any(|e| matches!(
			e.event,
			RuntimeEvent::TrainingAudit(Event::FraudProven { segment: 1, .. })
		)));
	});
}

#[test]
fn an_attester_of_a_refuted_segment_is_penalised_and_a_stale_move_refused() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		let checker = V[0];
		// Make V[0] the checker of segment 1 and let it attest without re-running.
		Audits::<Test>::mutate(job, |a| {
			let a = a.as_mut().unwrap();
			a.spot_checks[0].segment = 1;
			a.spot_checks[0].checker = checker;
		});
		assert_ok!(TrainingAudit::attest(RuntimeOrigin::signed(checker), job, 1));
		assert_ok!(challenge(job, CHALLENGER, 1, &states));
		assert_noop!(
			TrainingAudit::bisect(RuntimeOrigin::signed(MINER), job, 0, 2, H256::zero(), cid("b")),
			Error::<Test>::StaleMove
		);
		run_to(System::block_number() + MOVE_WINDOW); // the miner never answers
		System::assert_has_event(
			pallet_pol_rewards::Event::VerifierPenalised { job, verifier: checker, amount: 10 }
				.into(),
		);
	});
}

#[test]
fn a_challenge_by_anyone_does_not_lock_the_segment_against_its_checker() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		let (segment, checker) = checks(job)[0];
		// A friend of the miner challenges the segment first and means to lose.
		assert_ok!(challenge(job, CHALLENGER, segment, &states));
		// The checker still has its duty and opens its own dispute of the same segment.
		assert!(TrainingAudit::duties(&checker).contains(&AuditDuty::SpotCheck { job, segment }));
		assert_ok!(challenge(job, checker, segment, &states));
		assert_eq!(Disputes::<Test>::get(job, 1).unwrap().challenger, checker);
		assert_eq!(Audits::<Test>::get(job).unwrap().open_disputes, 2);
		// The miner defends neither: the first deadline proves the fraud; the other bond returns.
		run_to(System::block_number() + MOVE_WINDOW);
		assert!(System::events()
			.iter()
			.any(|e| matches!(e.event, RuntimeEvent::TrainingAudit(Event::FraudProven { .. }))));
		assert_eq!(held_bond(CHALLENGER) + held_bond(checker), 0);
		assert!(Disputes::<Test>::iter().next().is_none());
		assert_books_balance();
	});
}

#[test]
fn a_late_move_is_refused() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		let (segment, checker) = checks(job)[0];
		run_to(System::block_number() + CHALLENGE_WINDOW - 1);
		System::set_block_number(System::block_number() + 1);
		assert_noop!(
			TrainingAudit::attest(RuntimeOrigin::signed(checker), job, segment),
			Error::<Test>::TooLate
		);
		assert_noop!(challenge(job, CHALLENGER, 1, &states), Error::<Test>::TooLate);
	});
}

#[test]
fn governance_parameters_are_checked() {
	new_test_ext().execute_with(|| {
		let mut p = <TrainingAudit as GovernedParams<_>>::params();
		p.checkpoint_interval = 0;
		assert_noop!(
			<TrainingAudit as GovernedParams<_>>::set_params(p.clone()),
			Error::<Test>::BadParams
		);
		p.checkpoint_interval = 10;
		p.arbiters = 0;
		assert_noop!(
			<TrainingAudit as GovernedParams<_>>::set_params(p.clone()),
			Error::<Test>::BadParams
		);
		p.arbiters = 5;
		assert_ok!(<TrainingAudit as GovernedParams<_>>::set_params(p.clone()));
		assert_eq!(Params::<Test>::get(), p);
	});
}

#[test]
fn a_true_checkpoint_placed_at_another_step_is_refused() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		let leaves = leaves(&states);
		let root = trace_of(&states).root;
		// The attack: 5 checkpoints, and the last one's real proof, which the library's
		// verifier also accepts at indices 1 and 3. Shown as segment 0's or segment 2's end, the
		// result's checkpoint (step 8) would sit at step 2 or 6: "wrong step", refuted at once,
		// and an honest miner slashed.
		for (segment, fake_index) in [(0u32, 1u32), (2, 3)] {
			assert!(binary_merkle_tree::verify_proof::<BlakeTwo256, _, _>(
				&root,
				proof(&states, 4).iter().copied(),
				5,
				fake_index,
				binary_merkle_tree::Leaf::Hash(leaves[4]),
			));
			let s = segment as usize;
			let attack = TrainingAudit::challenge(
				RuntimeOrigin::signed(CHALLENGER),
				job,
				segment,
				checkpoints(&states[s], proof(&states, segment), &states[4], proof(&states, 4)),
				H256::repeat_byte(0xcc),
			);
			assert_noop!(attack, Error::<Test>::BadProof);
		}
		assert_eq!(held_bond(CHALLENGER), 0);
		attest_all(job);
		let bond = worker_bond(MINER);
		run_to(System::block_number() + CHALLENGE_WINDOW);
		System::assert_has_event(Event::AuditPassed { job, attested: 3 }.into());
		assert_eq!(worker_bond(MINER), bond, "the honest miner keeps its bond");
	});
}

#[test]
fn a_cheating_miner_and_its_own_challenger_lose_money_together() {
	const SYBIL: AccountId = 15;
	// Either order: the earliest challenge is paid, whichever deadline is processed first.
	for sybil_first in [true, false] {
		new_test_ext().execute_with(|| {
			setup();
			let mut states = states();
			states[0].weights = H256::repeat_byte(0x99); // copied weights: refuted at once
			let job = audited_job(&states);
			let together = || {
				Balances::free_balance(MINER) + worker_bond(MINER) + Balances::free_balance(SYBIL)
			};
			let before = together();
			let bond = worker_bond(MINER);
			let (first, second) =
				if sybil_first { (SYBIL, CHALLENGER) } else { (CHALLENGER, SYBIL) };
			assert_ok!(challenge(job, first, 0, &states));
			assert_ok!(challenge(job, second, 0, &states));
			// The later challenge (1) is settled first: the earlier one (0) is still paid.
			let at = Disputes::<Test>::get(job, 0).unwrap().deadline;
			Deadlines::<Test>::remove(at, Timer::Dispute(job, 0));
			Deadlines::<Test>::insert(at + 1, Timer::Dispute(job, 0), ());
			Disputes::<Test>::mutate(job, 0, |d| d.as_mut().unwrap().deadline = at + 1);
			let challenger_before = Balances::free_balance(CHALLENGER) + held_bond(CHALLENGER);
			run_to(at);
			assert!(Disputes::<Test>::get(job, 1).is_none(), "challenge 1 decided first");
			let slashed = Perbill::from_percent(50) * bond;
			System::assert_has_event(
				Event::FraudProven { job, segment: 0, challenger: first, slashed }.into(),
			);
			// The earliest is paid half the slash; the other half is burned.
			let paid_to_honest = if sybil_first { 0 } else { slashed / 2 };
			assert_eq!(Balances::free_balance(CHALLENGER), challenger_before + paid_to_honest);
			assert_eq!((held_bond(SYBIL), held_bond(CHALLENGER)), (0, 0), "bonds returned");
			let lost = before - together();
			assert!(lost >= slashed / 2, "miner + sybil lost {lost} of a {slashed} slash");
			assert_books_balance();
		});
	}
}

#[test]
fn a_miner_conceding_a_friends_later_challenge_still_pays_the_earlier_honest_one() {
	const SYBIL: AccountId = 15;
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		let bond = worker_bond(MINER);
		// The honest challenger first, the miner's friend second, on the same segment.
		assert_ok!(challenge(job, CHALLENGER, 1, &states));
		assert_ok!(challenge(job, SYBIL, 1, &states));
		let challenger_before = Balances::free_balance(CHALLENGER) + held_bond(CHALLENGER);
		// The miner defends against the honest one (a block later, so the honest challenger's
		// next move is due after the friend's timeout) and lets its friend's challenge lapse.
		let lapses = System::block_number() + MOVE_WINDOW;
		run_to(System::block_number() + 1);
		let mid = H256::repeat_byte(0x33);
		assert_ok!(TrainingAudit::bisect(RuntimeOrigin::signed(MINER), job, 0, 3, mid, cid("m")));
		run_to(lapses);
		let slashed = Perbill::from_percent(50) * bond;
		System::assert_has_event(
			Event::FraudProven { job, segment: 1, challenger: CHALLENGER, slashed }.into(),
		);
		assert_eq!(Balances::free_balance(CHALLENGER), challenger_before + slashed / 2);
		assert_eq!(held_bond(SYBIL), 0);
		assert_books_balance();
	});
}

#[test]
fn a_segment_withheld_while_the_rest_attests_is_caught_by_a_second_checker() {
	// A miner fakes a segment and withholds its state blob: the other two thirds attest.
	for second_opinion_missing in [true, false] {
		new_test_ext().execute_with(|| {
			setup();
			let job = audited_job(&states());
			let drawn = checks(job);
			for (segment, checker) in &drawn[..2] {
				assert_ok!(TrainingAudit::attest(RuntimeOrigin::signed(*checker), job, *segment));
			}
			let (segment, checker) = drawn[2];
			assert_ok!(TrainingAudit::report_unavailable(
				RuntimeOrigin::signed(checker),
				job,
				segment
			));
			run_to(System::block_number() + CHALLENGE_WINDOW);
			// Two thirds attested, but a report is open: not passed yet.
			assert!(!System::events().iter().any(|e| matches!(
				e.event,
				RuntimeEvent::TrainingAudit(Event::AuditPassed { .. })
			)));
			let second = redrawn(job).expect("redrawn");
			assert_eq!(second.len(), 1);
			assert_eq!(second[0].0, segment);
			assert_ne!(second[0].1, checker, "another checker");
			if second_opinion_missing {
				assert_ok!(TrainingAudit::report_unavailable(
					RuntimeOrigin::signed(second[0].1),
					job,
					segment
				));
				run_to(System::block_number() + CHALLENGE_WINDOW);
				assert!(System::events().iter().any(|e| matches!(
					e.event,
					RuntimeEvent::TrainingAudit(Event::TraceWithheld { .. })
				)));
				assert_eq!(candidate_status(), VersionStatus::Rejected);
			} else {
				// The second checker fetched it and re-ran it: the first report was wrong.
				assert_ok!(TrainingAudit::attest(RuntimeOrigin::signed(second[0].1), job, segment));
				run_to(System::block_number() + CHALLENGE_WINDOW);
				System::assert_has_event(Event::AuditPassed { job, attested: 3 }.into());
			}
			assert_books_balance();
		});
	}
}

#[test]
fn a_report_nobody_confirms_or_refutes_ends_the_job_without_a_verdict() {
	new_test_ext().execute_with(|| {
		setup();
		let job = audited_job(&states());
		let bond = worker_bond(MINER);
		run_to(System::block_number() + CHALLENGE_WINDOW);
		let second = redrawn(job).expect("redrawn");
		// One new checker reports the trace missing; the others stay silent.
		assert_ok!(TrainingAudit::report_unavailable(
			RuntimeOrigin::signed(second[0].1),
			job,
			second[0].0
		));
		run_to(System::block_number() + CHALLENGE_WINDOW);
		System::assert_has_event(Event::AuditVoid { job }.into());
		assert!(pallet_pol_rewards::Rounds::<Test>::get(job).is_none());
		assert_eq!(worker_bond(MINER), bond, "one unconfirmed report slashes nobody");
		assert_eq!(candidate_status(), VersionStatus::Rejected);
	});
}

#[test]
fn a_checker_that_challenged_cannot_also_report_the_trace_missing() {
	new_test_ext().execute_with(|| {
		setup();
		let states = states();
		let job = audited_job(&states);
		let (segment, checker) = checks(job)[0];
		assert_ok!(challenge(job, checker, segment, &states));
		assert_noop!(
			TrainingAudit::report_unavailable(RuntimeOrigin::signed(checker), job, segment),
			Error::<Test>::AlreadyAttested
		);
	});
}
