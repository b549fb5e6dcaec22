//! Calls and error paths of the PoL pallet, and the protocol's scenarios end to end across the
//! registry, jobs and PoL pallets.
use crate::{mock::*, *};
use blyan_primitives::pol::{Backend, SemVer, VersionId, VersionStatus};
use frame_support::{assert_noop, assert_ok, traits::fungible::InspectHold};
use pallet_jobs::{
	testing::{self, SALT},
	Capabilities, JobResult,
};

const CREATOR: AccountId = 1;
const MINER: AccountId = 2;
const DATA_OWNER: AccountId = 3;
const MODEL_OWNER: AccountId = 5;
const OUTSIDER: AccountId = 9;
const V: [AccountId; 3] = [10, 11, 12];
const REWARD: Balance = 500;
/// Loss of the base version on the validation set (1.0).
const BASE: Score = SCORE;
/// Loss of the candidate (0.9: a 10 % improvement).
const CANDIDATE: Score = 900_000_000;
const SCORE: Score = blyan_primitives::pol::SCORE_SCALE;
/// The miner's salt for its claim commitment (secret until it reveals the claim).
const CLAIM_SALT: [u8; 32] = [0xc1; 32];

std::thread_local! {
	/// The score each job's miner claimed, while the miner will still reveal it.
	static CLAIMS: core::cell::RefCell<std::collections::BTreeMap<JobId, Score>> =
		Default::default();
}

/// A 2-layer model (root version 0, accepted) and a dataset (0) owned by `DATA_OWNER`.
fn registry_fixture() {
	assert_eq!(
		pallet_model_registry::testing::two_layer_model_and_dataset::<Test>(
			MODEL_OWNER,
			DATA_OWNER
		),
		Ok((0, 0))
	);
}

/// Registry fixture (its model admitted to epoch rewards from its root version), a bonded
/// miner, and `verifiers` bonded with the minimum.
fn setup(verifiers: &[AccountId]) {
	registry_fixture();
	assert_ok!(Pol::admit_model(RuntimeOrigin::root(), 0, 0));
	assert_ok!(pallet_jobs::Pallet::<Test>::register_worker(
		RuntimeOrigin::signed(MINER),
		Capabilities { backends: BoundedVec::truncate_from(vec![Backend::Cpu]), memory_mb: 1024 },
		MIN_WORKER_BOND,
	));
	for v in verifiers {
		assert_ok!(Pol::register_verifier(RuntimeOrigin::signed(*v), MIN_VERIFIER_BOND));
	}
}

fn job_result(semver: SemVer) -> JobResult {
	testing::job_result(semver, H256::repeat_byte(2), Some(blyan_primitives::testing::trace(8)))
}

/// Posts, claims, commits and reveals a job whose miner claims `claimed` (as a commitment; the
/// miner reveals the score itself in the reveal phase, see [`reveal`]); returns its id.
/// The committee is drawn at the next block.
fn revealed_job(claimed: Score) -> JobId {
	revealed_job_on(0, 0, CREATOR, REWARD, claimed)
}

/// As [`revealed_job`], from `base` on `dataset`, posted by `creator` with `reward`.
fn revealed_job_on(
	base: VersionId,
	dataset: u64,
	creator: AccountId,
	reward: Balance,
	claimed: Score,
) -> JobId {
	let job = pallet_jobs::NextJobId::<Test>::get();
	let training = blyan_primitives::testing::training(8);
	let spec = testing::job_spec(base, dataset, training, System::block_number() + 100);
	let result = job_result(SemVer::new(1, 1 + job as u16, 0));
	assert_eq!(testing::job_to_reveal::<Test>(creator, MINER, spec, reward, &result), Ok(job));
	let claim = claim_commitment(job, &MINER, claimed, &CLAIM_SALT);
	assert_ok!(Jobs::reveal_result(RuntimeOrigin::signed(MINER), job, result, claim, SALT));
	CLAIMS.with(|c| c.borrow_mut().insert(job, claimed));
	job
}

/// The miner of `job` will not reveal its claim.
fn withhold_claim(job: JobId) {
	CLAIMS.with(|c| c.borrow_mut().remove(&job));
}

/// The miner reveals its claim, as its worker does once the commitments are closed.
fn reveal_claim(job: JobId) {
	let claimed = CLAIMS.with(|c| c.borrow().get(&job).copied()).expect("a claim to reveal");
	assert_ok!(Pol::reveal_claim(RuntimeOrigin::signed(MINER), job, claimed, CLAIM_SALT));
}

fn salt_of(v: AccountId) -> [u8; 32] {
	[v as u8; 32]
}

fn commit(v: AccountId, job: JobId, base: Score, candidate: Score) {
	let attempt = Rounds::<Test>::get(job).unwrap().attempt;
	let hash = score_commitment(job, attempt, &v, base, candidate, &salt_of(v));
	assert_ok!(Pol::commit_scores(RuntimeOrigin::signed(v), job, hash));
}

/// A member's reveal; the miner's claim is revealed first if it is due (enough commitments for a
/// quorum) and not withheld.
fn reveal(v: AccountId, job: JobId, base: Score, candidate: Score) {
	let claim_due = Rounds::<Test>::get(job).is_some_and(|r| {
		let committed = r.committee.iter().filter(|m| m.commitment.is_some()).count() as u32;
		r.phase == Phase::Reveal
			&& r.claimed_score.is_none()
			&& committed >= quorum(r.committee.len() as u32)
	});
	if claim_due && CLAIMS.with(|c| c.borrow().contains_key(&job)) {
		reveal_claim(job);
	}
	assert_ok!(Pol::reveal_scores(RuntimeOrigin::signed(v), job, base, candidate, salt_of(v)));
}

/// Every one of `members` commits to `(base, candidate)`, then every one reveals it.
fn agree(members: &[AccountId], job: JobId, base: Score, candidate: Score) {
	for &v in members {
		commit(v, job, base, candidate);
	}
	for &v in members {
		reveal(v, job, base, candidate);
	}
}

/// The committee `V` splits: each member commits to, then reveals, a candidate score of its own.
fn split(job: JobId) {
	for (i, v) in V.into_iter().enumerate() {
		commit(v, job, BASE, CANDIDATE + i as Score);
	}
	for (i, v) in V.into_iter().enumerate() {
		reveal(v, job, BASE, CANDIDATE + i as Score);
	}
}

fn committee(job: JobId) -> Vec<AccountId> {
	let mut c: Vec<_> =
		Rounds::<Test>::get(job).unwrap().committee.iter().map(|m| m.verifier).collect();
	c.sort();
	c
}

fn free(who: AccountId) -> Balance {
	Balances::free_balance(who)
}

fn verifier_bond(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Pol(HoldReason::VerifierBond), &who)
}

fn candidate_status(job: JobId) -> VersionStatus {
	pallet_model_registry::Versions::<Test>::get(job + 1).unwrap().status
}

/// Every account's free + held balance adds up to the total issuance.
fn assert_books_balance() {
	let total: Balance = frame_system::Account::<Test>::iter()
		.map(|(_, info)| info.data.free + info.data.reserved)
		.sum();
	assert_eq!(total, Balances::total_issuance());
}

#[test]
fn honest_path_pays_miner_verifiers_dataset_owner_and_the_epoch_budget() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let issuance = Balances::total_issuance();
		let job = revealed_job(CANDIDATE);
		System::assert_has_event(Event::VerificationRequested { job, draw_at: 2 }.into());
		run_to(2);
		assert_eq!(committee(job), V.to_vec());
		assert_eq!(Pol::pending_verifications(&V[0]), vec![(job, Phase::Commit)]);
		for v in V {
			commit(v, job, BASE, CANDIDATE);
		}
		// Everyone committed: reveals open at once.
		assert_eq!(Rounds::<Test>::get(job).unwrap().phase, Phase::Reveal);
		assert_eq!(Pol::pending_verifications(&V[0]), vec![(job, Phase::Reveal)]);
		for v in V {
			reveal(v, job, BASE, CANDIDATE);
		}
		// The last reveal decided.
		System::assert_has_event(
			Event::Verified {
				job,
				accepted: true,
				base_score: BASE,
				candidate_score: CANDIDATE,
				improvement: Perbill::from_percent(10),
				claimed_score: Some(CANDIDATE),
			}
			.into(),
		);
		assert!(Rounds::<Test>::get(job).is_none());
		assert_eq!(candidate_status(job), VersionStatus::Accepted);
		// Escrow 500: 10 % to the quorum (16 each, the odd 2 to the miner), 5 % to the data owner.
		for v in V {
			assert_eq!(free(v), 1_000 - MIN_VERIFIER_BOND + 16);
			assert!(Assignments::<Test>::get(v).is_empty());
		}
		assert_eq!(free(DATA_OWNER), 1_000 + 25);
		assert_eq!(free(MINER), 1_000 - MIN_WORKER_BOND + 427);
		assert_eq!(free(CREATOR), CREATOR_FUNDS - REWARD);
		assert!(pallet_jobs::Jobs::<Test>::get(job).is_none());
		assert_eq!(Balances::total_issuance(), issuance);

		// The epoch budget: the miner is the epoch's only earner.
		assert_eq!(EpochPoints::<Test>::get(0, MINER), Some(50), "10 % of the 500 escrow");
		assert_noop!(
			Pol::claim_epoch_reward(RuntimeOrigin::signed(OUTSIDER), 0, MINER),
			Error::<Test>::EpochNotOver
		);
		run_to(EPOCH);
		assert_ok!(Pol::claim_epoch_reward(RuntimeOrigin::signed(OUTSIDER), 0, MINER));
		System::assert_last_event(
			Event::EpochRewardPaid { epoch: 0, miner: MINER, amount: EPOCH_BUDGET }.into(),
		);
		assert_eq!(free(MINER), 1_000 - MIN_WORKER_BOND + 427 + EPOCH_BUDGET);
		assert_eq!(free(MINING_POOL), 10_000 - EPOCH_BUDGET);
		assert!(Epochs::<Test>::get(0).is_none());
		assert_noop!(
			Pol::claim_epoch_reward(RuntimeOrigin::signed(OUTSIDER), 0, MINER),
			Error::<Test>::NothingToClaim
		);
		assert_eq!(Balances::total_issuance(), issuance);
		assert_books_balance();
	});
}

#[test]
fn epoch_budget_is_shared_in_proportion_to_accepted_improvement() {
	new_test_ext().execute_with(|| {
		setup(&V);
		// Two accepted jobs of the same miner (10 % and 5 %), the second from the head the first
		// made, and the points add up. Points are improvement × escrow: 10 % and 5 % of 500.
		for (candidate, points) in [(CANDIDATE, 50u128), (950_000_000, 25)] {
			let head = RewardedModels::<Test>::get(0).unwrap();
			let job = revealed_job_on(head, 0, CREATOR, REWARD, candidate);
			run_to(System::block_number() + 1);
			agree(&V, job, BASE, candidate);
			System::assert_has_event(Event::PointsEarned { epoch: 0, miner: MINER, points }.into());
		}
		let info = Epochs::<Test>::get(0).unwrap();
		assert_eq!((info.total_points, info.unclaimed), (75, 1));
		// A second earner's share is points / total.
		EpochPoints::<Test>::insert(0, OUTSIDER, 25);
		Epochs::<Test>::mutate(0, |i| {
			let i = i.as_mut().unwrap();
			i.total_points = 100;
			i.unclaimed = 2;
		});
		run_to(EPOCH);
		assert_ok!(Pol::claim_epoch_reward(RuntimeOrigin::signed(OUTSIDER), 0, OUTSIDER));
		System::assert_last_event(
			Event::EpochRewardPaid { epoch: 0, miner: OUTSIDER, amount: EPOCH_BUDGET / 4 }.into(),
		);
		assert_eq!(Epochs::<Test>::get(0).unwrap().unclaimed, 1);
	});
}

#[test]
fn inflated_claim_is_rejected_and_the_miner_slashed() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let issuance = Balances::total_issuance();
		// The miner claims 0.8, the verifiers all measure 0.9.
		let job = revealed_job(800_000_000);
		let verifiers_free_before: std::collections::BTreeMap<AccountId, Balance> =
			V.iter().map(|v| (*v, free(*v))).collect();
		run_to(2);
		agree(&V, job, BASE, CANDIDATE);
		System::assert_has_event(
			Event::Verified {
				job,
				accepted: false,
				base_score: BASE,
				candidate_score: CANDIDATE,
				improvement: Perbill::from_percent(10),
				claimed_score: Some(800_000_000),
			}
			.into(),
		);
		assert_eq!(candidate_status(job), VersionStatus::Rejected);
		assert_eq!(free(CREATOR), CREATOR_FUNDS);
		assert_eq!(free(MINER), 1_000 - MIN_WORKER_BOND);
		assert_eq!(pallet_jobs::Workers::<Test>::get(MINER).unwrap().bond, 50);
		// The verifiers who caught it earn their fee (10 % of the escrow, split) out of the
		// slash; the rest of the slash is burned.
		let each = REWARD / 10 / V.len() as Balance;
		assert_eq!(Balances::total_issuance(), issuance - (50 - each * V.len() as Balance));
		for v in V {
			assert_eq!(verifier_bond(v), MIN_VERIFIER_BOND);
			assert_eq!(free(v), verifiers_free_before[&v] + each);
		}
		assert_books_balance();
	});
}

/// A job whose base the quorum scores `base_score`, which leaves nothing to improve, and the
/// miner's result `candidate_score` (what the miner claimed): the creator is at fault. The miner
/// keeps its whole bond and is paid the escrow (less the committee's fees) and the creator's
/// bond; no epoch points.
fn creator_at_fault(base_score: Score, candidate_score: Score) {
	new_test_ext().execute_with(|| {
		setup(&V);
		let issuance = Balances::total_issuance();
		let job = revealed_job(candidate_score);
		let verifiers_free_before: std::collections::BTreeMap<AccountId, Balance> =
			V.iter().map(|v| (*v, free(*v))).collect();
		run_to(2);
		agree(&V, job, base_score, candidate_score);
		System::assert_has_event(
			Event::Verified {
				job,
				accepted: false,
				base_score,
				candidate_score,
				improvement: Perbill::zero(),
				claimed_score: Some(candidate_score),
			}
			.into(),
		);
		assert_eq!(candidate_status(job), VersionStatus::Rejected);
		// Before, the miner lost a fifth of its bond and the creator lost nothing.
		let bond = REWARD / 5;
		let each = REWARD / 10 / V.len() as Balance;
		assert_eq!(pallet_jobs::Workers::<Test>::get(MINER).unwrap().bond, MIN_WORKER_BOND);
		assert_eq!(
			free(MINER),
			1_000 - MIN_WORKER_BOND + REWARD - each * V.len() as Balance + bond
		);
		assert!(EpochPoints::<Test>::iter().next().is_none(), "nothing measured, no points");
		for v in V {
			assert_eq!(verifier_bond(v), MIN_VERIFIER_BOND);
			assert_eq!(free(v), verifiers_free_before[&v] + each);
		}
		// The creator pays the reward and loses its bond: the trap costs it more than honesty.
		assert_eq!(free(CREATOR), CREATOR_FUNDS - REWARD - bond);
		assert!(pallet_jobs::Jobs::<Test>::get(job).is_none());
		assert_eq!(Balances::total_issuance(), issuance, "nothing burned: the bond changed hands");
		assert_books_balance();
	});
}

#[test]
fn a_creator_whose_validation_set_cannot_be_evaluated_forfeits_its_bond_and_cannot_get_the_miner_slashed(
) {
	// The attack (issue #18, item 11): the creator reveals a validation set nobody can evaluate
	// even the accepted base on (unfetchable, smaller than one batch, or not fitting the model).
	// The honest miner could not score its result either and says so.
	creator_at_fault(INVALID_SCORE, INVALID_SCORE);
}

#[test]
fn a_creator_whose_validation_set_the_base_already_predicts_perfectly_cannot_get_the_miner_slashed()
{
	// The attack: the creator registers a model whose predictions are certain and posts a
	// validation set it predicts exactly, so the base's loss rounds to 0. No candidate can improve
	// on 0; before, every miner's honest claim was rejected and slashed for it. The miner, which
	// knows the base scores 0 once the set is revealed, is paid whether its result scores or not
	// (it need not even publish it): the creator set the trap and pays for it.
	creator_at_fault(0, 12_345);
	creator_at_fault(0, INVALID_SCORE);
}

#[test]
fn improvement_below_the_threshold_is_rejected() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let candidate = 995_000_000; // 0.5 % < 1 %
		let job = revealed_job(candidate);
		run_to(2);
		agree(&V, job, BASE, candidate);
		assert_eq!(candidate_status(job), VersionStatus::Rejected);
		assert_eq!(free(CREATOR), CREATOR_FUNDS);
	});
}

#[test]
fn a_copied_commitment_cannot_be_revealed_and_its_copier_is_penalised() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let issuance = Balances::total_issuance();
		let job = revealed_job(CANDIDATE);
		run_to(2);
		let [a, b, copier] = V;
		commit(a, job, BASE, CANDIDATE);
		commit(b, job, BASE, CANDIDATE);
		// The copier submits a's commitment instead of evaluating.
		let copied = Rounds::<Test>::get(job)
			.unwrap()
			.committee
			.iter()
			.find(|m| m.verifier == a)
			.and_then(|m| m.commitment)
			.unwrap();
		assert_ok!(Pol::commit_scores(RuntimeOrigin::signed(copier), job, copied));
		reveal(a, job, BASE, CANDIDATE);
		reveal(b, job, BASE, CANDIDATE);
		// a's reveal is public now; replaying it under the copier's name does not match.
		assert_noop!(
			Pol::reveal_scores(RuntimeOrigin::signed(copier), job, BASE, CANDIDATE, salt_of(a)),
			Error::<Test>::CommitmentMismatch
		);
		assert!(Rounds::<Test>::get(job).is_some());
		run_to(2 + REVEAL_WINDOW);
		assert_eq!(candidate_status(job), VersionStatus::Accepted);
		System::assert_has_event(
			Event::VerifierPenalised { job, verifier: copier, amount: 10 }.into(),
		);
		assert_eq!(verifier_bond(copier), MIN_VERIFIER_BOND - 10);
		assert_eq!(Verifiers::<Test>::get(copier).unwrap().bond, MIN_VERIFIER_BOND - 10);
		// Escrow fee split between the two in the quorum: 25 each.
		assert_eq!(free(a), 1_000 - MIN_VERIFIER_BOND + 25);
		assert_eq!(free(copier), 1_000 - MIN_VERIFIER_BOND);
		assert_eq!(Balances::total_issuance(), issuance - 10);
		assert_books_balance();
	});
}

#[test]
fn a_dissenting_verifier_is_penalised_and_a_silent_one_too() {
	new_test_ext().execute_with(|| {
		setup(&[10, 11, 12, 13]);
		assert_ok!(<Pol as GovernedParams<_>>::set_params({
			let mut p = PolDefaults::get();
			p.committee_size = 4;
			p
		}));
		let job = revealed_job(CANDIDATE);
		run_to(2);
		// 10, 11, 12 agree (3 of 4 ≥ quorum 3), 13 never commits.
		for v in [10, 11, 12] {
			commit(v, job, BASE, CANDIDATE);
		}
		run_to(2 + COMMIT_WINDOW);
		assert_eq!(Rounds::<Test>::get(job).unwrap().phase, Phase::Reveal);
		assert_noop!(
			Pol::reveal_scores(RuntimeOrigin::signed(13), job, BASE, CANDIDATE, salt_of(13)),
			Error::<Test>::NotCommitted
		);
		reveal(10, job, BASE, CANDIDATE);
		reveal(11, job, BASE, CANDIDATE);
		// 12 reveals something else than 10 and 11, honestly committed to.
		assert_eq!(Rounds::<Test>::get(job).unwrap().phase, Phase::Reveal);
		let round = Rounds::<Test>::get(job).unwrap();
		assert_eq!(round.committee.len(), 4);
		// The committed members have all revealed once 12 does: that decides.
		assert_ok!(Pol::reveal_scores(
			RuntimeOrigin::signed(12),
			job,
			BASE,
			CANDIDATE,
			salt_of(12)
		));
		assert_eq!(candidate_status(job), VersionStatus::Accepted);
		System::assert_has_event(Event::VerifierPenalised { job, verifier: 13, amount: 10 }.into());
		assert_eq!(verifier_bond(12), MIN_VERIFIER_BOND);
	});
}

#[test]
fn dissent_outside_the_quorum_is_penalised() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		commit(10, job, BASE, CANDIDATE);
		commit(11, job, BASE, CANDIDATE);
		commit(12, job, BASE, 700_000_000);
		reveal(10, job, BASE, CANDIDATE);
		reveal(11, job, BASE, CANDIDATE);
		reveal(12, job, BASE, 700_000_000);
		assert_eq!(candidate_status(job), VersionStatus::Accepted);
		System::assert_has_event(Event::VerifierPenalised { job, verifier: 12, amount: 10 }.into());
		assert_eq!(verifier_bond(10), MIN_VERIFIER_BOND);
	});
}

#[test]
fn split_committee_is_redrawn_once_then_refunded_without_slashing() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let issuance = Balances::total_issuance();
		let job = revealed_job(CANDIDATE);
		run_to(2);
		split(job);
		System::assert_has_event(Event::NoQuorum { job, redraw: true }.into());
		let round = Rounds::<Test>::get(job).unwrap();
		assert_eq!((round.attempt, round.phase), (1, Phase::Drawing));
		run_to(round.deadline);
		assert_eq!(committee(job), V.to_vec());
		split(job);
		System::assert_has_event(Event::NoQuorum { job, redraw: false }.into());
		assert!(Rounds::<Test>::get(job).is_none());
		assert!(pallet_jobs::Jobs::<Test>::get(job).is_none());
		assert_eq!(candidate_status(job), VersionStatus::Rejected);
		assert_eq!(free(CREATOR), CREATOR_FUNDS);
		assert_eq!(pallet_jobs::Workers::<Test>::get(MINER).unwrap().bond, MIN_WORKER_BOND);
		for v in V {
			assert_eq!(verifier_bond(v), MIN_VERIFIER_BOND);
		}
		assert_eq!(Balances::total_issuance(), issuance);
		assert_books_balance();
	});
}

#[test]
fn silent_committees_are_penalised_and_fall_below_the_draw_minimum() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		// Nobody commits: no quorum, everyone penalised, a redraw is scheduled.
		run_to(2 + COMMIT_WINDOW + REVEAL_WINDOW);
		System::assert_has_event(Event::NoQuorum { job, redraw: true }.into());
		for v in V {
			assert_eq!(verifier_bond(v), 90);
		}
		// At 90 < 100 BLY nobody is eligible any more: the job is refunded, the miner unslashed.
		// The draw is put off MAX_DRAW_RETRIES times, then the job is refunded.
		let round = Rounds::<Test>::get(job).unwrap();
		run_to(round.deadline);
		System::assert_has_event(
			Event::DrawPostponed { job, retry_at: round.deadline + REVEAL_WINDOW }.into(),
		);
		run_to(round.deadline + MAX_DRAW_RETRIES as u64 * REVEAL_WINDOW);
		assert!(Rounds::<Test>::get(job).is_none());
		System::assert_has_event(pallet_jobs::Event::<Test>::JobVoided { job }.into());
		assert_eq!(free(CREATOR), CREATOR_FUNDS);
		assert_eq!(pallet_jobs::Workers::<Test>::get(MINER).unwrap().bond, MIN_WORKER_BOND);
	});
}

#[test]
fn a_silent_second_committee_ends_in_a_refund() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		// The first committee splits (no penalty: all revealed), the second stays silent.
		split(job);
		let round = Rounds::<Test>::get(job).unwrap();
		run_to(round.deadline + COMMIT_WINDOW + REVEAL_WINDOW);
		System::assert_has_event(Event::NoQuorum { job, redraw: false }.into());
		assert_eq!(free(CREATOR), CREATOR_FUNDS);
		for v in V {
			assert_eq!(verifier_bond(v), 90);
		}
	});
}

#[test]
fn no_eligible_verifier_refunds_the_job() {
	new_test_ext().execute_with(|| {
		// The only verifier is the miner itself, who may not judge its own work.
		setup(&[]);
		assert_ok!(Pol::register_verifier(RuntimeOrigin::signed(MINER), MIN_VERIFIER_BOND));
		let job = revealed_job(CANDIDATE);
		run_to(2 + MAX_DRAW_RETRIES as u64 * REVEAL_WINDOW);
		assert!(Rounds::<Test>::get(job).is_none());
		assert_eq!(free(CREATOR), CREATOR_FUNDS);
		assert_eq!(candidate_status(job), VersionStatus::Rejected);
		System::assert_has_event(pallet_jobs::Event::<Test>::JobVoided { job }.into());
	});
}

#[test]
fn a_draw_short_of_verifiers_waits_for_them() {
	new_test_ext().execute_with(|| {
		setup(&V[..2]);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		System::assert_has_event(Event::DrawPostponed { job, retry_at: 2 + REVEAL_WINDOW }.into());
		assert!(committee(job).is_empty());
		// A third verifier joins; the next try draws a full committee.
		assert_ok!(Pol::register_verifier(RuntimeOrigin::signed(V[2]), MIN_VERIFIER_BOND));
		run_to(2 + REVEAL_WINDOW);
		assert_eq!(committee(job), V.to_vec());
		assert_eq!(Rounds::<Test>::get(job).unwrap().phase, Phase::Commit);
	});
}

#[test]
fn committees_never_include_the_miner_or_creator() {
	new_test_ext().execute_with(|| {
		setup(&[10, 11, 12]);
		assert_ok!(Pol::register_verifier(RuntimeOrigin::signed(MINER), MIN_VERIFIER_BOND));
		assert_ok!(Pol::register_verifier(RuntimeOrigin::signed(CREATOR), MIN_VERIFIER_BOND));
		for salt in 0..5 {
			RANDOM_SALT.with(|s| s.set(salt));
			let job = revealed_job(CANDIDATE);
			run_to(System::block_number() + 1);
			assert_eq!(committee(job), V.to_vec());
			agree(&V, job, BASE, CANDIDATE);
		}
	});
}

#[test]
fn draws_are_stake_weighted() {
	new_test_ext().execute_with(|| {
		// 10 bonds 700, 11..=17 bond 100 each: 10 holds half of the stake.
		assert_ok!(Pol::register_verifier(RuntimeOrigin::signed(10), 700));
		for v in 11..=17 {
			assert_ok!(Pol::register_verifier(RuntimeOrigin::signed(v), 100));
		}
		let mut params = PolDefaults::get();
		params.committee_size = 1;
		assert_ok!(<Pol as GovernedParams<_>>::set_params(params));
		let request = |job| VerificationRequest {
			creator: CREATOR,
			miner: MINER,
			dataset: 0,
			base_version: 0,
			candidate_version: 1 + job,
			claim: H256::zero(),
			min_improvement: Perbill::from_percent(1),
			trace: None,
		};
		let draws = 400;
		let mut picked_10 = 0;
		for job in 0..draws {
			assert_ok!(<Pol as VerificationProvider<_>>::start_verification(job, request(job)));
			run_to(System::block_number() + 1);
			let c = committee(job);
			assert_eq!(c.len(), 1);
			picked_10 += (c[0] == 10) as u32;
			Rounds::<Test>::remove(job);
			let _ = Assignments::<Test>::clear(u32::MAX, None);
		}
		// Expected 200 of 400; a fair 1-in-8 draw would give 50.
		assert!((160..=240).contains(&picked_10), "picked {picked_10} of {draws}");
	});
}

#[test]
fn register_verifier_and_its_errors() {
	new_test_ext().execute_with(|| {
		let reg = |v, b| Pol::register_verifier(RuntimeOrigin::signed(v), b);
		assert_noop!(reg(10, MIN_VERIFIER_BOND - 1), Error::<Test>::BondTooLow);
		assert_noop!(reg(10, 1_000), Error::<Test>::InsufficientBalance);
		assert_ok!(reg(10, MIN_VERIFIER_BOND));
		System::assert_last_event(
			Event::VerifierRegistered { verifier: 10, bond: MIN_VERIFIER_BOND }.into(),
		);
		assert_eq!(verifier_bond(10), MIN_VERIFIER_BOND);
		assert_noop!(reg(10, MIN_VERIFIER_BOND), Error::<Test>::AlreadyVerifier);
	});
}

#[test]
fn a_full_verifier_set_admits_a_larger_bond_by_evicting_the_smallest() {
	new_test_ext().execute_with(|| {
		use frame_support::traits::fungible::Mutate;
		// MaxVerifiers = 24, all at the minimum bond except account 30.
		for v in 30..54u64 {
			Balances::set_balance(&v, 1_000);
			let bond = if v == 30 { 300 } else { MIN_VERIFIER_BOND };
			assert_ok!(Pol::register_verifier(RuntimeOrigin::signed(v), bond));
		}
		let reg = |v, b| Pol::register_verifier(RuntimeOrigin::signed(v), b);
		// Squatting with minimum bonds cannot lock others out, but equal bonds do not evict.
		assert_noop!(reg(10, MIN_VERIFIER_BOND), Error::<Test>::TooManyVerifiers);
		assert_ok!(reg(10, MIN_VERIFIER_BOND + 1));
		let active = ActiveVerifiers::<Test>::get();
		assert_eq!(active.len(), 24);
		assert!(active.contains(&10) && active.contains(&30));
		let evicted = (31..54u64).find(|v| !active.contains(v)).unwrap();
		assert_eq!(Verifiers::<Test>::get(evicted).unwrap().unbonding_until, Some(11));
		System::assert_has_event(Event::VerifierUnbonding { verifier: evicted, until: 11 }.into());
	});
}

#[test]
fn unregister_and_withdraw_verifier() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let unreg = |v| Pol::unregister_verifier(RuntimeOrigin::signed(v));
		let withdraw = |v| Pol::withdraw_verifier(RuntimeOrigin::signed(v));
		assert_noop!(unreg(OUTSIDER), Error::<Test>::NotVerifier);
		assert_noop!(withdraw(OUTSIDER), Error::<Test>::NotVerifier);
		assert_noop!(withdraw(10), Error::<Test>::NotUnbonding);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		// A busy verifier can leave the draw at once...
		assert_ok!(unreg(10));
		System::assert_last_event(Event::VerifierUnbonding { verifier: 10, until: 12 }.into());
		assert!(!ActiveVerifiers::<Test>::get().contains(&10));
		assert_noop!(unreg(10), Error::<Test>::Unbonding);
		assert_noop!(withdraw(10), Error::<Test>::StillUnbonding);
		// ...but keeps its bond at stake until the rounds it sits on are decided, even once the
		// unbonding period is over (shortened here).
		Verifiers::<Test>::mutate(10, |v| v.as_mut().unwrap().unbonding_until = Some(2));
		assert_noop!(withdraw(10), Error::<Test>::HasAssignments);
		agree(&V, job, BASE, CANDIDATE);
		assert_eq!(candidate_status(job), VersionStatus::Accepted);
		assert_ok!(withdraw(10));
		System::assert_last_event(
			Event::VerifierWithdrawn { verifier: 10, bond: MIN_VERIFIER_BOND }.into(),
		);
		assert_eq!(verifier_bond(10), 0);
		assert!(Verifiers::<Test>::get(10).is_none());
	});
}

#[test]
fn commit_scores_errors() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let hash = H256::repeat_byte(1);
		let commit_as = |v, job| Pol::commit_scores(RuntimeOrigin::signed(v), job, hash);
		assert_noop!(commit_as(10, 0), Error::<Test>::UnknownRound);
		let job = revealed_job(CANDIDATE);
		assert_noop!(commit_as(10, job), Error::<Test>::WrongPhase);
		run_to(2);
		assert_noop!(commit_as(OUTSIDER, job), Error::<Test>::NotOnCommittee);
		assert_ok!(commit_as(10, job));
		System::assert_last_event(Event::ScoresCommitted { job, verifier: 10 }.into());
		assert_noop!(commit_as(10, job), Error::<Test>::AlreadyCommitted);
		// Past the commit deadline, even before the deadline is processed (block `deadline` begins
		// without its hooks), commits are refused.
		let deadline = Rounds::<Test>::get(job).unwrap().deadline;
		System::set_block_number(deadline);
		assert_noop!(commit_as(11, job), Error::<Test>::PhaseOver);
	});
}

#[test]
fn reveal_scores_errors() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let reveal_as =
			|v, job, c| Pol::reveal_scores(RuntimeOrigin::signed(v), job, BASE, c, salt_of(v));
		assert_noop!(reveal_as(10, 0, CANDIDATE), Error::<Test>::UnknownRound);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		commit(10, job, BASE, CANDIDATE);
		assert_noop!(reveal_as(10, job, CANDIDATE), Error::<Test>::WrongPhase);
		commit(11, job, BASE, CANDIDATE);
		commit(12, job, BASE, CANDIDATE);
		assert_noop!(reveal_as(OUTSIDER, job, CANDIDATE), Error::<Test>::NotOnCommittee);
		assert_noop!(reveal_as(10, job, CANDIDATE + 1), Error::<Test>::CommitmentMismatch);
		assert_ok!(reveal_as(10, job, CANDIDATE));
		assert_noop!(reveal_as(10, job, CANDIDATE), Error::<Test>::AlreadyRevealed);
	});
}

/// The storage keys whose value (events included: they are storage too) holds `needle`.
fn state_holding(needle: &[u8]) -> Vec<Vec<u8>> {
	let mut found = Vec::new();
	let mut key = Vec::new();
	while let Some(next) = sp_io::storage::next_key(&key) {
		let value = sp_io::storage::get(&next).unwrap_or_default();
		if value.windows(needle.len()).any(|w| w == needle) {
			found.push(next.clone());
		}
		key = next;
	}
	found
}

#[test]
fn a_lazy_member_finds_the_claimed_score_nowhere_before_committing_and_its_guess_costs_it() {
	// The attack (issue #18, item 10): a member that does not evaluate reads the miner's
	// claimed score from the chain and commits to it. The claim is a salted commitment until
	// the commitments close, so all it can do is guess.
	new_test_ext().execute_with(|| {
		setup(&V);
		let issuance = Balances::total_issuance();
		let truth: Score = 876_543_219; // distinctive bytes, to search the whole state for
		let job = revealed_job(truth);
		run_to(2);
		assert_eq!(Rounds::<Test>::get(job).unwrap().phase, Phase::Commit);
		let needle = truth.encode();
		assert_eq!(state_holding(&needle), Vec::<Vec<u8>>::new(), "the claim is readable");
		// Nor can the miner publish it on chain while commitments are open.
		assert_noop!(
			Pol::reveal_claim(RuntimeOrigin::signed(MINER), job, truth, CLAIM_SALT),
			Error::<Test>::WrongPhase
		);
		let [a, b, lazy] = V;
		commit(a, job, BASE, truth);
		commit(b, job, BASE, truth);
		// The lazy member's best guess: the job's 10 % default target, 0.9.
		commit(lazy, job, BASE, CANDIDATE);
		assert_eq!(Rounds::<Test>::get(job).unwrap().phase, Phase::Reveal);
		// Commitments closed: the claim goes public now, too late to copy.
		reveal_claim(job);
		System::assert_last_event(
			Event::ClaimRevealed { job, miner: MINER, claimed_score: truth }.into(),
		);
		assert!(!state_holding(&needle).is_empty());
		reveal(a, job, BASE, truth);
		reveal(b, job, BASE, truth);
		reveal(lazy, job, BASE, CANDIDATE);
		assert_eq!(candidate_status(job), VersionStatus::Accepted);
		System::assert_has_event(
			Event::VerifierPenalised { job, verifier: lazy, amount: 10 }.into(),
		);
		assert_eq!(verifier_bond(lazy), MIN_VERIFIER_BOND - 10);
		assert_eq!(Balances::total_issuance(), issuance - 10);
		assert_books_balance();
	});
}

#[test]
fn a_miner_withholding_its_claim_is_rejected_and_slashed() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let job = revealed_job(CANDIDATE);
		withhold_claim(job);
		run_to(2);
		agree(&V, job, BASE, CANDIDATE);
		// Every member revealed, yet the round waits for the claim until its deadline.
		let deadline = Rounds::<Test>::get(job).unwrap().deadline;
		run_to(deadline);
		System::assert_has_event(
			Event::Verified {
				job,
				accepted: false,
				base_score: BASE,
				candidate_score: CANDIDATE,
				improvement: Perbill::from_percent(10),
				claimed_score: None,
			}
			.into(),
		);
		assert_eq!(candidate_status(job), VersionStatus::Rejected);
		assert_eq!(free(CREATOR), CREATOR_FUNDS);
		assert_eq!(pallet_jobs::Workers::<Test>::get(MINER).unwrap().bond, 50);
		for v in V {
			assert_eq!(verifier_bond(v), MIN_VERIFIER_BOND);
		}
		assert_books_balance();
	});
}

#[test]
fn a_claim_revealed_after_every_member_decides_the_round_at_once() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		for v in V {
			commit(v, job, BASE, CANDIDATE);
		}
		for v in V {
			assert_ok!(Pol::reveal_scores(
				RuntimeOrigin::signed(v),
				job,
				BASE,
				CANDIDATE,
				salt_of(v)
			));
		}
		assert!(Rounds::<Test>::get(job).is_some(), "decided without the claim");
		reveal_claim(job);
		assert!(Rounds::<Test>::get(job).is_none());
		assert_eq!(candidate_status(job), VersionStatus::Accepted);
	});
}

#[test]
fn a_claim_stays_hidden_from_the_redraw_of_a_committee_that_could_not_reach_a_quorum() {
	new_test_ext().execute_with(|| {
		// Six verifiers: the silent members fall below the draw minimum, the rest redraw.
		let verifiers: Vec<AccountId> = (10..16).collect();
		setup(&verifiers);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		// One commitment of three: no quorum can come of this committee.
		let first = committee(job);
		commit(first[0], job, BASE, CANDIDATE);
		run_to(Rounds::<Test>::get(job).unwrap().deadline);
		assert_eq!(Rounds::<Test>::get(job).unwrap().phase, Phase::Reveal);
		assert_noop!(
			Pol::reveal_claim(RuntimeOrigin::signed(MINER), job, CANDIDATE, CLAIM_SALT),
			Error::<Test>::NoQuorumPossible
		);
		reveal(first[0], job, BASE, CANDIDATE);
		run_to(Rounds::<Test>::get(job).unwrap().deadline);
		System::assert_has_event(Event::NoQuorum { job, redraw: true }.into());
		// The second committee commits without the claim in sight, then the miner reveals it.
		run_to(Rounds::<Test>::get(job).unwrap().deadline);
		let round = Rounds::<Test>::get(job).unwrap();
		assert_eq!((round.attempt, round.phase, round.claimed_score), (1, Phase::Commit, None));
		assert!(
			!System::events()
				.iter()
				.any(|r| matches!(r.event, RuntimeEvent::Pol(Event::ClaimRevealed { .. }))),
			"the claim was revealed"
		);
		let second = committee(job);
		agree(&second, job, BASE, CANDIDATE);
		assert_eq!(candidate_status(job), VersionStatus::Accepted);
	});
}

#[test]
fn a_claim_revealed_to_a_split_committee_holds_for_the_redraw() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		// Three different pairs: a quorum was possible, none formed.
		split(job);
		System::assert_has_event(Event::NoQuorum { job, redraw: true }.into());
		run_to(Rounds::<Test>::get(job).unwrap().deadline);
		let round = Rounds::<Test>::get(job).unwrap();
		assert_eq!((round.attempt, round.claimed_score), (1, Some(CANDIDATE)));
		for v in V {
			commit(v, job, BASE, CANDIDATE);
		}
		assert_noop!(
			Pol::reveal_claim(RuntimeOrigin::signed(MINER), job, CANDIDATE, CLAIM_SALT),
			Error::<Test>::ClaimAlreadyRevealed
		);
		for v in V {
			reveal(v, job, BASE, CANDIDATE);
		}
		// Decided at the last member's reveal: the claim is already in.
		assert_eq!(candidate_status(job), VersionStatus::Accepted);
	});
}

#[test]
fn reveal_claim_errors() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let reveal_as =
			|who, job, score, salt| Pol::reveal_claim(RuntimeOrigin::signed(who), job, score, salt);
		assert_noop!(reveal_as(MINER, 0, CANDIDATE, CLAIM_SALT), Error::<Test>::UnknownRound);
		let job = revealed_job(CANDIDATE);
		assert_noop!(reveal_as(MINER, job, CANDIDATE, CLAIM_SALT), Error::<Test>::WrongPhase);
		run_to(2);
		assert_noop!(reveal_as(MINER, job, CANDIDATE, CLAIM_SALT), Error::<Test>::WrongPhase);
		for v in V {
			commit(v, job, BASE, CANDIDATE);
		}
		// Only the miner, with the score and salt it committed to.
		assert_noop!(reveal_as(V[0], job, CANDIDATE, CLAIM_SALT), Error::<Test>::NotMiner);
		assert_noop!(
			reveal_as(MINER, job, CANDIDATE - 1, CLAIM_SALT),
			Error::<Test>::ClaimMismatch
		);
		assert_noop!(reveal_as(MINER, job, CANDIDATE, SALT), Error::<Test>::ClaimMismatch);
		reveal_claim(job);
		assert_noop!(
			reveal_as(MINER, job, CANDIDATE, CLAIM_SALT),
			Error::<Test>::ClaimAlreadyRevealed
		);
		// Past the reveal deadline, even before it is processed, the claim is refused.
		let job = revealed_job(CANDIDATE);
		run_to(System::block_number() + 1);
		for v in V {
			commit(v, job, BASE, CANDIDATE);
		}
		let deadline = Rounds::<Test>::get(job).unwrap().deadline;
		System::set_block_number(deadline);
		assert_noop!(reveal_as(MINER, job, CANDIDATE, CLAIM_SALT), Error::<Test>::PhaseOver);
	});
}

#[test]
fn claim_epoch_reward_errors_leave_points_in_place() {
	new_test_ext().execute_with(|| {
		EpochPoints::<Test>::insert(0, MINER, 10);
		Epochs::<Test>::insert(0, EpochInfo { total_points: 10, budget: 50_000, unclaimed: 1 });
		assert_noop!(
			Pol::claim_epoch_reward(RuntimeOrigin::signed(MINER), 0, MINER),
			Error::<Test>::EpochNotOver
		);
		run_to(EPOCH);
		assert_noop!(
			Pol::claim_epoch_reward(RuntimeOrigin::signed(MINER), 0, OUTSIDER),
			Error::<Test>::NothingToClaim
		);
		// The pool holds 10 000; a 50 000 budget cannot be paid now, and nothing is lost.
		assert_noop!(
			Pol::claim_epoch_reward(RuntimeOrigin::signed(MINER), 0, MINER),
			Error::<Test>::PoolExhausted
		);
		assert_eq!(EpochPoints::<Test>::get(0, MINER), Some(10));
		assert_noop!(
			Pol::claim_epoch_reward(frame_system::RawOrigin::None.into(), 0, MINER),
			sp_runtime::DispatchError::BadOrigin
		);
	});
}

#[test]
fn set_params_refuses_insane_values() {
	new_test_ext().execute_with(|| {
		let good = PolDefaults::get();
		type Change = dyn Fn(&mut PolParams<Balance, u64>);
		let bad: [&Change; 7] = [
			&|p| p.committee_size = 0,
			&|p| p.committee_size = MAX_COMMITTEE + 1,
			&|p| p.draw_delay = 0,
			&|p| p.commit_window = 0,
			&|p| p.reveal_window = 0,
			&|p| p.epoch_length = 0,
			&|p| {
				p.verifier_fee = Perbill::from_percent(60);
				p.dataset_share = Perbill::from_percent(41);
			},
		];
		for change in bad {
			let mut p = good.clone();
			change(&mut p);
			assert_noop!(<Pol as GovernedParams<_>>::set_params(p), Error::<Test>::BadParams);
		}
		let mut p = good.clone();
		p.committee_size = 5;
		assert_ok!(<Pol as GovernedParams<_>>::set_params(p.clone()));
		assert_eq!(Params::<Test>::get(), p);
		System::assert_last_event(Event::ParamsSet { params: p }.into());
	});
}

#[test]
fn start_verification_twice_is_refused() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let job = revealed_job(CANDIDATE);
		let request = Rounds::<Test>::get(job).unwrap().request;
		assert_noop!(
			<Pol as VerificationProvider<_>>::start_verification(job, request),
			Error::<Test>::AlreadyVerifying
		);
	});
}

#[test]
fn quorum_and_improvement_arithmetic() {
	assert_eq!([1, 2, 3, 4, 5, 6, 16].map(quorum), [1, 2, 2, 3, 4, 4, 11]);
	assert_eq!(improvement(SCORE, 900_000_000), Perbill::from_percent(10));
	assert_eq!(improvement(SCORE, SCORE), Perbill::zero());
	assert_eq!(improvement(SCORE, SCORE + 1), Perbill::zero());
	assert_eq!(improvement(0, 0), Perbill::zero());
}

mod conservation {
	//! Property: whatever the miner claims and the verifiers do, every job ends (settled or
	//! refunded), nothing stays held for it, and the issuance changes by exactly the slashes
	//! the events report (the PoL pallets mint nothing; epoch rewards move pool funds).
	use super::*;
	use proptest::prelude::*;

	#[derive(Clone, Copy, Debug)]
	enum Behaviour {
		Honest,
		Wrong,
		Silent,
		CommitOnly,
	}

	fn behaviour() -> impl Strategy<Value = Behaviour> {
		prop_oneof![
			3 => Just(Behaviour::Honest),
			1 => Just(Behaviour::Wrong),
			1 => Just(Behaviour::Silent),
			1 => Just(Behaviour::CommitOnly),
		]
	}

	fn slashed_in_events() -> Balance {
		System::events()
			.into_iter()
			.map(|r| match r.event {
				RuntimeEvent::Pol(Event::VerifierPenalised { amount, .. }) => amount,
				RuntimeEvent::Jobs(pallet_jobs::Event::JobRejected { burned, .. }) => burned,
				_ => 0,
			})
			.sum()
	}

	proptest! {
		#![proptest_config(ProptestConfig::with_cases(64))]
		#[test]
		fn bly_is_conserved(
			verifiers in 1usize..=6,
			committee_size in 1u32..=5,
			inflated in any::<bool>(),
			claim_revealed in any::<bool>(),
			gain_permille in 0u64..200,
			behaviours in proptest::collection::vec(behaviour(), 6),
			epoch_claim in any::<bool>(),
		) {
			new_test_ext().execute_with(|| {
				let accounts: Vec<AccountId> = (10..10 + verifiers as u64).collect();
				setup(&accounts);
				let mut params = PolDefaults::get();
				params.committee_size = committee_size;
				assert_ok!(<Pol as GovernedParams<_>>::set_params(params));
				let issuance = Balances::total_issuance();
				let truth = BASE - BASE / 1000 * gain_permille;
				let claimed = if inflated { truth.saturating_sub(1) } else { truth };
				let job = revealed_job(claimed);
				if !claim_revealed {
					withhold_claim(job);
				}
				for _attempt in 0..2 {
					let Some(round) = Rounds::<Test>::get(job) else { break };
					run_to(round.deadline);
					let Some(round) = Rounds::<Test>::get(job) else { break };
					let seats: Vec<AccountId> = round.committee.iter().map(|m| m.verifier).collect();
					let act = |v: AccountId| behaviours[(v - 10) as usize];
					let score = |v: AccountId| match act(v) {
						Behaviour::Wrong => truth + v,
						_ => truth,
					};
					for &v in &seats {
						if !matches!(act(v), Behaviour::Silent) {
							commit(v, job, BASE, score(v));
						}
					}
					if let Some(r) = Rounds::<Test>::get(job) {
						if r.phase == Phase::Commit {
							run_to(r.deadline);
						}
					}
					for &v in &seats {
						if matches!(act(v), Behaviour::Honest | Behaviour::Wrong) &&
							Rounds::<Test>::get(job).is_some_and(|r| r.attempt == round.attempt)
						{
							reveal(v, job, BASE, score(v));
						}
					}
					if let Some(r) = Rounds::<Test>::get(job) {
						if r.attempt == round.attempt {
							run_to(r.deadline);
						}
					}
				}
				run_to(System::block_number() + 50);
				assert!(Rounds::<Test>::get(job).is_none(), "round still open");
				assert!(pallet_jobs::Jobs::<Test>::get(job).is_none(), "job still open");
				assert_eq!(
					Balances::balance_on_hold(
						&RuntimeHoldReason::Jobs(pallet_jobs::HoldReason::JobEscrow),
						&CREATOR
					),
					0
				);
				if epoch_claim && EpochPoints::<Test>::contains_key(0, MINER) {
					run_to(EPOCH);
					assert_ok!(Pol::claim_epoch_reward(RuntimeOrigin::signed(MINER), 0, MINER));
				}
				assert_eq!(Balances::total_issuance(), issuance - slashed_in_events());
				assert_books_balance();
			});
		}
	}
}

#[test]
fn changing_the_epoch_length_ends_the_running_epoch_without_renumbering_past_ones() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		agree(&V, job, BASE, CANDIDATE);
		assert_eq!(EpochPoints::<Test>::get(0, MINER), Some(50));
		// At block 50 of a 100-block epoch the length doubles: epoch 0 ends now, epoch 1 starts.
		run_to(50);
		let mut params = PolDefaults::get();
		params.epoch_length = 2 * EPOCH;
		assert_ok!(<Pol as GovernedParams<_>>::set_params(params));
		assert_eq!(EpochBase::<Test>::get(), (50, 1));
		assert_eq!(Pol::current_epoch(), 1);
		// Epoch 0 ran half its length: it pays half its budget.
		assert_ok!(Pol::claim_epoch_reward(RuntimeOrigin::signed(OUTSIDER), 0, MINER));
		System::assert_last_event(
			Event::EpochRewardPaid { epoch: 0, miner: MINER, amount: EPOCH_BUDGET / 2 }.into(),
		);
		// Block 249 is still epoch 1 (50 + 200 starts epoch 2).
		run_to(249);
		assert_eq!(Pol::current_epoch(), 1);
		run_to(250);
		assert_eq!(Pol::current_epoch(), 2);
	});
}

#[test]
fn the_invariants_catch_state_out_of_step() {
	new_test_ext().execute_with(|| {
		setup(&V);
		let job = revealed_job(CANDIDATE);
		run_to(2);
		assert_ok!(Pol::do_try_state());
		// A bond record the hold does not back.
		Verifiers::<Test>::mutate(V[0], |v| v.as_mut().unwrap().bond += 1);
		assert!(Pol::do_try_state().is_err());
		Verifiers::<Test>::mutate(V[0], |v| v.as_mut().unwrap().bond -= 1);
		// A seat its verifier does not know of.
		let assigned = Assignments::<Test>::take(V[1]);
		assert!(Pol::do_try_state().is_err());
		Assignments::<Test>::insert(V[1], assigned);
		// A round nothing will advance.
		let deadline = Rounds::<Test>::get(job).unwrap().deadline;
		Deadlines::<Test>::remove(deadline, job);
		assert!(Pol::do_try_state().is_err());
		Deadlines::<Test>::insert(deadline, job, ());
		// A claim public while the commitments are open.
		Rounds::<Test>::mutate(job, |r| r.as_mut().unwrap().claimed_score = Some(CANDIDATE));
		assert!(Pol::do_try_state().is_err());
		Rounds::<Test>::mutate(job, |r| r.as_mut().unwrap().claimed_score = None);
		// A head that is only a candidate (version 1, the job's).
		RewardedModels::<Test>::insert(0, 1);
		assert!(Pol::do_try_state().is_err());
		RewardedModels::<Test>::insert(0, 0);
		assert_ok!(Pol::do_try_state());
	});
}

/// The sybil set's accounts: it owns a model and a dataset, posts jobs and mines them.
const SYBIL_OWNER: AccountId = 6;

/// A model (its root version accepted) and a dataset of `SYBIL_OWNER`'s; returns their ids.
fn sybil_model_and_dataset() -> (VersionId, u64) {
	pallet_model_registry::testing::two_layer_model_and_dataset::<Test>(SYBIL_OWNER, SYBIL_OWNER)
		.unwrap()
}

/// Free and held balance of every account in `set`.
fn wealth(set: &[AccountId]) -> Balance {
	set.iter().map(Balances::total_balance).sum()
}

/// Runs `job` to an accepted verdict by the committee `V` (base 1.0, candidate 0.9).
fn accept(job: JobId) {
	run_to(System::block_number() + 1);
	agree(&V, job, BASE, CANDIDATE);
	System::assert_has_event(
		Event::Verified {
			job,
			accepted: true,
			base_score: BASE,
			candidate_score: CANDIDATE,
			improvement: Perbill::from_percent(10),
			claimed_score: Some(CANDIDATE),
		}
		.into(),
	);
}

#[test]
fn a_self_dealing_sybil_set_on_its_own_model_earns_less_than_it_pays() {
	new_test_ext().execute_with(|| {
		setup(&V);
		// The set registers its own model and data; it posts (account 1), mines (2) and owns
		// the model and the dataset (6). A big reward costs it only the verifier fee, as the
		// rest comes back to it as the miner's pay and the dataset share.
		let (sybil_base, sybil_data) = sybil_model_and_dataset();
		let set = [CREATOR, MINER, SYBIL_OWNER];
		let before = wealth(&set);
		let pool_before = free(MINING_POOL);
		let reward = 5_000;
		let job = revealed_job_on(sybil_base, sybil_data, CREATOR, reward, CANDIDATE);
		accept(job);
		System::assert_has_event(
			Event::NoPoints { job, reason: NoPointsReason::ModelNotRewarded }.into(),
		);
		assert!(EpochPoints::<Test>::get(0, MINER).is_none());
		run_to(EPOCH);
		assert_noop!(
			Pol::claim_epoch_reward(RuntimeOrigin::signed(MINER), 0, MINER),
			Error::<Test>::NothingToClaim
		);
		// Before the fix the set was the epoch's only earner: the whole budget (1 000) for a
		// fee of 500. Now it has paid the fee and earned nothing.
		// The fee is split equally over the quorum of three (the odd units stay the miner's).
		let fee = reward / 10 / 3 * 3;
		assert_eq!(wealth(&set), before - fee);
		assert_eq!(free(MINING_POOL), pool_before);
		assert_books_balance();
	});
}

#[test]
fn an_improvement_measured_against_an_old_version_earns_no_points() {
	new_test_ext().execute_with(|| {
		setup(&V);
		// An honest improvement moves the head of the admitted model from 0 to version 1.
		let first = revealed_job(CANDIDATE);
		accept(first);
		assert_eq!(EpochPoints::<Test>::get(0, MINER), Some(50));
		assert_eq!(RewardedModels::<Test>::get(0), Some(1));
		// Re-basing on version 0 would pay again for the improvement version 1 made.
		let stale = revealed_job_on(0, 0, CREATOR, REWARD, CANDIDATE);
		accept(stale);
		assert_eq!(candidate_status(stale), VersionStatus::Accepted, "paid, as a job");
		System::assert_has_event(
			Event::NoPoints { job: stale, reason: NoPointsReason::NotFromHead }.into(),
		);
		assert_eq!(EpochPoints::<Test>::get(0, MINER), Some(50), "no points for it");
		assert_eq!(RewardedModels::<Test>::get(0), Some(1), "the head stays");
		// From the head, it counts, and the head moves on.
		let next = revealed_job_on(1, 0, CREATOR, REWARD, CANDIDATE);
		accept(next);
		assert_eq!(EpochPoints::<Test>::get(0, MINER), Some(100));
		assert_eq!(RewardedModels::<Test>::get(0), Some(next + 1));
	});
}

#[test]
fn a_large_escrow_counts_up_to_the_cap_and_one_miner_claims_at_most_its_share() {
	new_test_ext().execute_with(|| {
		setup(&V);
		MaxEpochShare::set(&Perbill::from_percent(50));
		let set = [CREATOR, MINER, DATA_OWNER];
		let before = wealth(&set);
		let reward = 5_000;
		let job = revealed_job_on(0, 0, CREATOR, reward, CANDIDATE);
		accept(job);
		// 10 % of the capped escrow, not of 5 000.
		let points = (POINTS_ESCROW_CAP / 10) as u128;
		System::assert_has_event(Event::PointsEarned { epoch: 0, miner: MINER, points }.into());
		run_to(EPOCH);
		assert_ok!(Pol::claim_epoch_reward(RuntimeOrigin::signed(MINER), 0, MINER));
		// The only earner, yet half the budget: the other half stays in the pool.
		System::assert_last_event(
			Event::EpochRewardPaid { epoch: 0, miner: MINER, amount: EPOCH_BUDGET / 2 }.into(),
		);
		assert_eq!(free(MINING_POOL), 10_000 - EPOCH_BUDGET / 2);
		// Even as one party the creator, miner and data owner paid 498 in fees (the quorum's
		// equal parts of 500) for 500 of the budget: the cap keeps a large escrow from buying
		// more.
		assert_eq!(wealth(&set), before - reward / 10 / 3 * 3 + EPOCH_BUDGET / 2);
		assert_books_balance();
	});
}

#[test]
fn admit_and_retire_model_and_their_errors() {
	new_test_ext().execute_with(|| {
		setup(&V);
		// A job on model 0: its candidate is version 1, not accepted yet.
		let job = revealed_job(CANDIDATE);
		let (other_root, _) = sybil_model_and_dataset();
		assert_noop!(
			Pol::admit_model(RuntimeOrigin::signed(MODEL_OWNER), 1, other_root),
			sp_runtime::DispatchError::BadOrigin
		);
		assert_noop!(Pol::admit_model(RuntimeOrigin::root(), 1, 99), Error::<Test>::UnknownVersion);
		assert_noop!(
			Pol::admit_model(RuntimeOrigin::root(), 0, other_root),
			Error::<Test>::VersionOfAnotherModel
		);
		// A candidate (not yet accepted) is no head.
		assert_noop!(
			Pol::admit_model(RuntimeOrigin::root(), 0, job + 1),
			Error::<Test>::VersionNotAccepted
		);
		assert_ok!(Pol::admit_model(RuntimeOrigin::root(), 1, other_root));
		System::assert_last_event(Event::ModelAdmitted { model: 1, head: other_root }.into());
		// The mock admits two models at most; moving a head is no new admission.
		assert_ok!(Pol::admit_model(RuntimeOrigin::root(), 0, 0));
		let (third_root, _) = sybil_model_and_dataset();
		assert_noop!(
			Pol::admit_model(RuntimeOrigin::root(), 2, third_root),
			Error::<Test>::TooManyRewardedModels
		);
		assert_noop!(
			Pol::retire_model(RuntimeOrigin::signed(MODEL_OWNER), 0),
			sp_runtime::DispatchError::BadOrigin
		);
		assert_noop!(Pol::retire_model(RuntimeOrigin::root(), 2), Error::<Test>::NotRewarded);
		assert_ok!(Pol::retire_model(RuntimeOrigin::root(), 0));
		System::assert_last_event(Event::ModelRetired { model: 0 }.into());
		assert_eq!(RewardedModels::<Test>::count(), 1);
		// A retired model's improvements earn nothing.
		run_to(System::block_number() + 1);
		agree(&V, job, BASE, CANDIDATE);
		System::assert_has_event(
			Event::NoPoints { job, reason: NoPointsReason::ModelNotRewarded }.into(),
		);
		assert!(EpochPoints::<Test>::get(0, MINER).is_none());
	});
}

#[test]
fn a_cheap_job_or_a_rejected_one_leaves_the_head_where_it_is() {
	new_test_ext().execute_with(|| {
		setup(&V);
		// Below `MinPointsEscrow` (100 in the mock): accepted and paid, but it neither earns
		// points nor moves the head, so a token job cannot strand the jobs in flight from it.
		let cheap = revealed_job_on(0, 0, CREATOR, 50, CANDIDATE);
		accept(cheap);
		System::assert_has_event(
			Event::NoPoints { job: cheap, reason: NoPointsReason::EscrowTooSmall }.into(),
		);
		assert_eq!(RewardedModels::<Test>::get(0), Some(0));
		assert!(EpochPoints::<Test>::get(0, MINER).is_none());
		// Regression guards for the other verdicts (they never reach the head's rules):
		// a trap (the base cannot be evaluated), paid as the creator's fault, the head stays.
		let trap = revealed_job(CANDIDATE);
		run_to(System::block_number() + 1);
		agree(&V, trap, INVALID_SCORE, CANDIDATE);
		assert_eq!(candidate_status(trap), VersionStatus::Rejected);
		assert_eq!(RewardedModels::<Test>::get(0), Some(0));
		// A refuted claim from the head (last: it slashes the miner's bond below the minimum):
		// rejected, the head stays.
		let inflated = revealed_job(800_000_000);
		run_to(System::block_number() + 1);
		agree(&V, inflated, BASE, CANDIDATE);
		assert_eq!(candidate_status(inflated), VersionStatus::Rejected);
		assert_eq!(RewardedModels::<Test>::get(0), Some(0));
		assert!(EpochPoints::<Test>::get(0, MINER).is_none());
	});
}
