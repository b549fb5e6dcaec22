//! Every call and error path of the jobs pallet, every timeout, and every settlement.
use crate::testing::{cid, validation_cid, SALT};
use crate::{mock::Jobs, Jobs as JobsStore};
use crate::{mock::*, *};
use blyan_primitives::pol::SemVer;
use frame_support::{assert_noop, assert_ok, traits::fungible::InspectHold};
use sp_runtime::TokenError;

const CREATOR: AccountId = 1;
const WORKER: AccountId = 2;
const DATA_OWNER: AccountId = 3;
const OTHER: AccountId = 4;
const MODEL_OWNER: AccountId = 5;
const REWARD: Balance = 200;

fn caps(backends: &[Backend], memory_mb: u32) -> Capabilities {
	Capabilities { backends: BoundedVec::truncate_from(backends.to_vec()), memory_mb }
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

fn spec(deadline: u64) -> JobSpec<u64> {
	let training = blyan_primitives::testing::training(8);
	JobSpec { seed: 42, min_memory_mb: 1024, ..testing::job_spec(0, 0, training, deadline) }
}

fn result() -> JobResult {
	let trace = Some(blyan_primitives::testing::trace(8));
	testing::job_result(SemVer::new(1, 1, 0), H256::repeat_byte(2), trace)
}

/// The worker's commitment to its score (the score itself goes to the PoL pallet, not here).
const CLAIM: H256 = H256::repeat_byte(0xc1);

fn register(who: AccountId) {
	assert_ok!(Jobs::register_worker(
		RuntimeOrigin::signed(who),
		caps(&[Backend::Cpu], 4096),
		MIN_BOND
	));
}

/// Registry, worker, and one posted job (id 0, deadline 100).
fn posted() -> JobId {
	registry_fixture();
	register(WORKER);
	assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), REWARD));
	0
}

/// Drives job 0 to `Committed`.
fn committed() -> JobId {
	let job = posted();
	assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
	let hash = result_commitment(job, &WORKER, &result(), &SALT);
	assert_ok!(Jobs::commit_result(RuntimeOrigin::signed(WORKER), job, hash, result().semver));
	job
}

#[test]
fn commit_waits_for_the_gate() {
	new_test_ext().execute_with(|| {
		let job = posted();
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
		GATED.with(|g| g.borrow_mut().push(job));
		let hash = result_commitment(job, &WORKER, &result(), &SALT);
		assert_noop!(
			Jobs::commit_result(RuntimeOrigin::signed(WORKER), job, hash, result().semver),
			sp_runtime::DispatchError::Other("gated")
		);
		GATED.with(|g| g.borrow_mut().clear());
		assert_ok!(Jobs::commit_result(RuntimeOrigin::signed(WORKER), job, hash, result().semver));
	});
}

/// Drives job 0 to `ValidationRevealed`.
fn validation_revealed() -> JobId {
	let job = committed();
	assert_ok!(Jobs::reveal_validation(
		RuntimeOrigin::signed(CREATOR),
		job,
		validation_cid(),
		SALT
	));
	job
}

/// Drives job 0 to `Verifying`.
fn verifying() -> JobId {
	let job = validation_revealed();
	assert_ok!(Jobs::reveal_result(RuntimeOrigin::signed(WORKER), job, result(), CLAIM, SALT));
	job
}

/// Jobs whose stage times out at block `at`, ascending.
fn due_at(at: u64) -> Vec<JobId> {
	let mut jobs: Vec<JobId> = Expiries::<Test>::iter_key_prefix(at).collect();
	jobs.sort();
	jobs
}

fn held(reason: HoldReason, who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Jobs(reason), &who)
}

fn free(who: AccountId) -> Balance {
	Balances::free_balance(who)
}

#[test]
fn register_worker_holds_the_bond() {
	new_test_ext().execute_with(|| {
		register(WORKER);
		assert_eq!(held(HoldReason::WorkerBond, WORKER), MIN_BOND);
		assert_eq!(free(WORKER), 1_000 - MIN_BOND);
		System::assert_last_event(
			Event::WorkerRegistered { worker: WORKER, bond: MIN_BOND }.into(),
		);
	});
}

#[test]
fn register_worker_errors() {
	new_test_ext().execute_with(|| {
		let reg = |who, c, b| Jobs::register_worker(RuntimeOrigin::signed(who), c, b);
		assert_noop!(reg(WORKER, caps(&[], 1), MIN_BOND), Error::<Test>::BadCapabilities);
		assert_noop!(
			reg(WORKER, caps(&[Backend::Cpu, Backend::Cpu], 1), MIN_BOND),
			Error::<Test>::BadCapabilities
		);
		assert_noop!(
			reg(WORKER, caps(&[Backend::Cpu], 1), MIN_BOND - 1),
			Error::<Test>::BondTooLow
		);
		assert_noop!(
			reg(WORKER, caps(&[Backend::Cpu], 1), 5_000),
			Error::<Test>::InsufficientBalance
		);
		assert_noop!(
			reg(99, caps(&[Backend::Cpu], 1), MIN_BOND),
			Error::<Test>::InsufficientBalance
		);
		register(WORKER);
		assert_noop!(reg(WORKER, caps(&[Backend::Cpu], 1), MIN_BOND), Error::<Test>::AlreadyWorker);
	});
}

#[test]
fn update_capabilities_and_errors() {
	new_test_ext().execute_with(|| {
		let new = caps(&[Backend::Cuda, Backend::Cpu], 80_000);
		assert_noop!(
			Jobs::update_capabilities(RuntimeOrigin::signed(WORKER), new.clone()),
			Error::<Test>::NotWorker
		);
		register(WORKER);
		assert_noop!(
			Jobs::update_capabilities(RuntimeOrigin::signed(WORKER), caps(&[], 1)),
			Error::<Test>::BadCapabilities
		);
		assert_ok!(Jobs::update_capabilities(RuntimeOrigin::signed(WORKER), new.clone()));
		assert_eq!(Workers::<Test>::get(WORKER).unwrap().capabilities, new);
		System::assert_last_event(Event::CapabilitiesUpdated { worker: WORKER }.into());
	});
}

#[test]
fn unbond_and_withdraw_worker() {
	new_test_ext().execute_with(|| {
		let job = posted();
		let unbond = || Jobs::unbond_worker(RuntimeOrigin::signed(WORKER));
		let withdraw = || Jobs::withdraw_worker(RuntimeOrigin::signed(WORKER));
		assert_noop!(Jobs::unbond_worker(RuntimeOrigin::signed(OTHER)), Error::<Test>::NotWorker);
		assert_noop!(withdraw(), Error::<Test>::NotUnbonding);
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
		assert_noop!(unbond(), Error::<Test>::HasActiveJobs);
		// The lease lapses (block 11): the job leaves the worker.
		run_to(11);
		assert_ok!(unbond());
		System::assert_last_event(Event::WorkerUnbonding { worker: WORKER, until: 21 }.into());
		assert_noop!(unbond(), Error::<Test>::Unbonding);
		assert_noop!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job), Error::<Test>::Unbonding);
		assert_noop!(withdraw(), Error::<Test>::StillUnbonding);
		run_to(21);
		let bond = held(HoldReason::WorkerBond, WORKER);
		assert_ok!(withdraw());
		System::assert_last_event(Event::WorkerWithdrawn { worker: WORKER, bond }.into());
		assert_eq!(held(HoldReason::WorkerBond, WORKER), 0);
		assert!(Workers::<Test>::get(WORKER).is_none());
		assert_noop!(withdraw(), Error::<Test>::NotWorker);
	});
}

#[test]
fn post_job_escrows_the_reward() {
	new_test_ext().execute_with(|| {
		let job = posted();
		assert_eq!(held(HoldReason::JobEscrow, CREATOR), REWARD);
		// And a fifth of it as the creator's bond for its validation set and parameters.
		assert_eq!(held(HoldReason::CreatorBond, CREATOR), REWARD / 5);
		let info = JobsStore::<Test>::get(job).unwrap();
		assert_eq!(info.creator_bond, REWARD / 5);
		assert_eq!(info.status, JobStatus::Open);
		assert_eq!(info.min_improvement, Perbill::from_percent(1));
		assert_eq!(info.stage_deadline, 100);
		assert_eq!(due_at(100), vec![job]);
		assert_eq!(CreatorJobCount::<Test>::get(CREATOR), 1);
		System::assert_last_event(
			Event::JobPosted {
				job,
				creator: CREATOR,
				model: 0,
				base_version: 0,
				reward: REWARD,
				deadline: 100,
			}
			.into(),
		);
		assert_eq!(Jobs::open_jobs(10), vec![job]);
	});
}

#[test]
fn post_job_errors() {
	new_test_ext().execute_with(|| {
		registry_fixture();
		let post = |s: JobSpec<u64>, r| Jobs::post_job(RuntimeOrigin::signed(CREATOR), s, r);
		let with = |f: &dyn Fn(&mut JobSpec<u64>)| {
			let mut s = spec(100);
			f(&mut s);
			s
		};
		assert_noop!(post(with(&|s| s.base_version = 9), REWARD), Error::<Test>::UnknownVersion);
		assert_noop!(post(with(&|s| s.dataset = 9), REWARD), Error::<Test>::UnknownDataset);
		assert_noop!(post(spec(100), 9), Error::<Test>::RewardTooLow);
		assert_noop!(post(spec(1), REWARD), Error::<Test>::DeadlineInPast);
		assert_noop!(post(with(&|s| s.lease = 0), REWARD), Error::<Test>::BadLease);
		assert_noop!(post(with(&|s| s.lease = 51), REWARD), Error::<Test>::BadLease);
		assert_noop!(
			post(with(&|s| s.min_improvement = Some(Perbill::zero())), REWARD),
			Error::<Test>::BadMinImprovement
		);
		assert_noop!(post(spec(100), 5_000), Error::<Test>::InsufficientBalance);
		// The escrow alone fits the creator's 1 000, the escrow and its bond do not.
		assert_noop!(post(spec(100), 900), Error::<Test>::InsufficientBalance);
		// Hyper-parameters no worker could run are refused before anything is held.
		for bad in [
			blyan_primitives::training::TrainingParams { steps: 0, ..spec(100).training },
			blyan_primitives::training::TrainingParams { batch_size: 0, ..spec(100).training },
			blyan_primitives::training::TrainingParams { seq_len: 1, ..spec(100).training },
			blyan_primitives::training::TrainingParams {
				learning_rate: Perbill::zero(),
				..spec(100).training
			},
		] {
			assert_noop!(
				post(with(&|s| s.training = bad), REWARD),
				Error::<Test>::BadTrainingParams
			);
		}
		// A candidate base is not a valid starting point.
		let candidate = blyan_primitives::pol::CandidateVersion {
			model: 0,
			parents: blyan_primitives::pol::Parents::truncate_from(vec![0]),
			semver: SemVer::new(1, 0, 1),
			layers: result().layers,
			weight_root: H256::zero(),
			adapter: None,
		};
		assert_ok!(Registry::propose_version(RuntimeOrigin::signed(MODEL_OWNER), candidate));
		assert_noop!(post(with(&|s| s.base_version = 1), REWARD), Error::<Test>::BaseNotAccepted);
		for _ in 0..3 {
			assert_ok!(post(spec(100), 10));
		}
		assert_noop!(post(spec(100), 10), Error::<Test>::TooManyJobs);
		assert_noop!(
			Jobs::post_job(frame_system::RawOrigin::None.into(), spec(100), REWARD),
			sp_runtime::DispatchError::BadOrigin
		);
	});
}

#[test]
fn a_crowded_deadline_is_worked_off_over_the_next_blocks_and_never_refuses_a_call() {
	new_test_ext().execute_with(|| {
		registry_fixture();
		register(WORKER);
		// MaxExpiriesPerBlock = 2; three creators each post three jobs with the same deadline.
		for creator in [1, 4, 6] {
			for _ in 0..3 {
				assert_ok!(Jobs::post_job(RuntimeOrigin::signed(creator), spec(100), 10));
			}
		}
		assert_eq!(due_at(100).len(), 9);
		// A job due at the crowded block can still be claimed (its lease lapses at 11 and it
		// reopens, due at 100 again).
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), 0));
		assert_eq!(due_at(100).len(), 8);
		let open =
			|| JobsStore::<Test>::iter().filter(|(_, j)| j.status == JobStatus::Open).count();
		run_to(100);
		assert_eq!(open(), 7, "two of nine expired at block 100");
		run_to(104);
		assert_eq!(open(), 0, "two a block after that");
		assert_eq!(ExpiryCursor::<Test>::get(), 105);
		// Creator 4's escrow is back.
		assert_eq!(held(HoldReason::JobEscrow, 4), 0);
	});
}

#[test]
fn a_stage_action_after_its_deadline_is_refused_even_if_its_expiry_is_late() {
	new_test_ext().execute_with(|| {
		let job = posted();
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
		// The lease ends at 11; block 11 begins without its expiry processed yet.
		System::set_block_number(11);
		assert!(Expiries::<Test>::contains_key(11, job));
		let hash = result_commitment(job, &WORKER, &result(), &SALT);
		assert_noop!(
			Jobs::commit_result(RuntimeOrigin::signed(WORKER), job, hash, result().semver),
			Error::<Test>::DeadlinePassed
		);
	});
}

#[test]
fn cancel_job_refunds_before_claim_only() {
	new_test_ext().execute_with(|| {
		let job = posted();
		assert_noop!(
			Jobs::cancel_job(RuntimeOrigin::signed(CREATOR), 9),
			Error::<Test>::UnknownJob
		);
		assert_noop!(
			Jobs::cancel_job(RuntimeOrigin::signed(OTHER), job),
			Error::<Test>::NotCreator
		);
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), REWARD));
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), 1));
		assert_noop!(
			Jobs::cancel_job(RuntimeOrigin::signed(CREATOR), 1),
			Error::<Test>::WrongStage
		);
		assert_ok!(Jobs::cancel_job(RuntimeOrigin::signed(CREATOR), job));
		System::assert_last_event(Event::JobCancelled { job }.into());
		assert_eq!(held(HoldReason::JobEscrow, CREATOR), REWARD);
		assert_eq!(CreatorJobCount::<Test>::get(CREATOR), 1);
		// Cancelling and claiming took their entries out of block 100's index: it holds only
		// job 1's deadline again after its lease lapses and it reopens.
		assert!(due_at(100).is_empty());
		run_to(11);
		assert_eq!(due_at(100), vec![1]);
		run_to(100);
		System::assert_last_event(Event::JobExpired { job: 1 }.into());
		assert_eq!(free(CREATOR), 1_000);
	});
}

#[test]
fn claim_job_leases_and_its_errors() {
	new_test_ext().execute_with(|| {
		let job = posted();
		let claim = |who, job| Jobs::claim_job(RuntimeOrigin::signed(who), job);
		assert_noop!(claim(WORKER, 9), Error::<Test>::UnknownJob);
		assert_noop!(claim(OTHER, job), Error::<Test>::NotWorker);
		assert_ok!(Jobs::register_worker(
			RuntimeOrigin::signed(CREATOR),
			caps(&[Backend::Cpu], 4096),
			MIN_BOND
		));
		assert_noop!(claim(CREATOR, job), Error::<Test>::OwnJob);
		assert_ok!(Jobs::register_worker(
			RuntimeOrigin::signed(OTHER),
			caps(&[Backend::Cuda], 4096),
			MIN_BOND
		));
		assert_noop!(claim(OTHER, job), Error::<Test>::Incapable);
		assert_ok!(Jobs::update_capabilities(
			RuntimeOrigin::signed(OTHER),
			caps(&[Backend::Cpu], 512)
		));
		assert_noop!(claim(OTHER, job), Error::<Test>::Incapable);

		assert_ok!(claim(WORKER, job));
		System::assert_last_event(
			Event::JobClaimed { job, worker: WORKER, lease_until: 11 }.into(),
		);
		assert_eq!(WorkerJobs::<Test>::get(WORKER).to_vec(), vec![job]);
		assert_noop!(claim(WORKER, job), Error::<Test>::WrongStage);

		// MaxActiveJobsPerWorker = 2.
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), REWARD));
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(5), REWARD));
		assert_ok!(claim(WORKER, 1));
		assert_noop!(claim(WORKER, 2), Error::<Test>::TooManyActiveJobs);
		// The lease never outlives the deadline.
		assert_ok!(Jobs::update_capabilities(
			RuntimeOrigin::signed(OTHER),
			caps(&[Backend::Cpu], 4096)
		));
		assert_ok!(claim(OTHER, 2));
		assert_eq!(JobsStore::<Test>::get(2).unwrap().stage_deadline, 5);
	});
}

/// A miner that could not hold the storage deposit of its result's version would only find
/// out at the reveal, and lose its lease: it is refused when it claims instead, nothing written.
#[test]
fn a_miner_that_cannot_pay_for_its_results_version_cannot_claim() {
	new_test_ext().execute_with(|| {
		let job = posted();
		// At 10 a byte a 2-layer model's largest version costs more than the worker's 900.
		RegistryDepositPerByte::set(&10);
		assert!(Registry::largest_version_deposit(2) > free(WORKER));
		assert_noop!(
			Jobs::claim_job(RuntimeOrigin::signed(WORKER), job),
			pallet_model_registry::Error::<Test>::InsufficientDeposit
		);
		RegistryDepositPerByte::set(&1);
		assert!(Registry::largest_version_deposit(2) < free(WORKER));
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
		let hash = result_commitment(job, &WORKER, &result(), &SALT);
		assert_ok!(Jobs::commit_result(RuntimeOrigin::signed(WORKER), job, hash, result().semver));
	});
}

#[test]
fn claim_after_deadline_and_with_a_slashed_bond_fail() {
	new_test_ext().execute_with(|| {
		let job = posted();
		// A claim at the deadline block itself: the expiry ran first, the job is gone.
		run_to(100);
		assert_noop!(
			Jobs::claim_job(RuntimeOrigin::signed(WORKER), job),
			Error::<Test>::UnknownJob
		);
		// A job whose deadline is reached while still stored (expiry running late) cannot be
		// claimed.
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(105), REWARD));
		JobsStore::<Test>::mutate(1, |j| j.as_mut().unwrap().spec.deadline = 100);
		assert_noop!(
			Jobs::claim_job(RuntimeOrigin::signed(WORKER), 1),
			Error::<Test>::DeadlinePassed
		);
		// A worker slashed below the minimum bond may not claim.
		assert_eq!(Jobs::burn_bond(&WORKER, 1), 1);
		assert_eq!(Workers::<Test>::get(WORKER).unwrap().bond, MIN_BOND - 1);
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(150), REWARD));
		assert_noop!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), 2), Error::<Test>::BondTooLow);
	});
}

#[test]
fn commit_reveal_validation_and_reveal_result_errors() {
	new_test_ext().execute_with(|| {
		let job = posted();
		let hash = result_commitment(job, &WORKER, &result(), &SALT);
		let commit =
			|who| Jobs::commit_result(RuntimeOrigin::signed(who), job, hash, result().semver);
		let reveal_v =
			|who, c: Cid, s| Jobs::reveal_validation(RuntimeOrigin::signed(who), job, c, s);
		let reveal_r =
			|who, r, s| Jobs::reveal_result(RuntimeOrigin::signed(who), job, r, CLAIM, s);
		assert_noop!(
			Jobs::commit_result(RuntimeOrigin::signed(WORKER), 9, hash, result().semver),
			Error::<Test>::UnknownJob
		);
		assert_noop!(commit(WORKER), Error::<Test>::WrongStage);
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
		assert_noop!(commit(OTHER), Error::<Test>::NotJobWorker);
		assert_noop!(reveal_v(CREATOR, validation_cid(), SALT), Error::<Test>::WrongStage);
		assert_ok!(commit(WORKER));
		System::assert_last_event(
			Event::ResultCommitted {
				job,
				worker: WORKER,
				semver: result().semver,
				reveal_by: 1 + REVEAL_WINDOW,
			}
			.into(),
		);
		assert_noop!(commit(WORKER), Error::<Test>::WrongStage);
		assert_noop!(reveal_r(WORKER, result(), SALT), Error::<Test>::WrongStage);
		assert_noop!(reveal_v(OTHER, validation_cid(), SALT), Error::<Test>::NotCreator);
		assert_noop!(reveal_v(CREATOR, cid("bafyother"), SALT), Error::<Test>::CommitmentMismatch);
		// A mutable name is refused even if it is what the creator committed to.
		assert_noop!(reveal_v(CREATOR, cid("/ipns/k51q"), SALT), Error::<Test>::NotABareCid);
		assert_noop!(reveal_v(CREATOR, cid(""), SALT), Error::<Test>::NotABareCid);
		assert_noop!(
			reveal_v(CREATOR, validation_cid(), [0; 32]),
			Error::<Test>::CommitmentMismatch
		);
		assert_ok!(reveal_v(CREATOR, validation_cid(), SALT));
		assert_eq!(
			JobsStore::<Test>::get(job).unwrap().validation,
			Some(ValidationSet { cid: validation_cid(), salt: SALT })
		);
		assert_noop!(reveal_v(CREATOR, validation_cid(), SALT), Error::<Test>::WrongStage);
		assert_noop!(reveal_r(OTHER, result(), SALT), Error::<Test>::NotJobWorker);
		let mut swapped = result();
		swapped.weight_root = H256::repeat_byte(9);
		assert_noop!(reveal_r(WORKER, swapped, SALT), Error::<Test>::CommitmentMismatch);
		assert_noop!(reveal_r(WORKER, result(), [1; 32]), Error::<Test>::CommitmentMismatch);
		assert!(REQUESTS.with(|r| r.borrow().is_empty()));
	});
}

#[test]
fn the_result_semver_is_checked_and_reserved_at_commit() {
	new_test_ext().execute_with(|| {
		let job = posted();
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
		let hash = result_commitment(job, &WORKER, &result(), &SALT);
		let commit = |semver| Jobs::commit_result(RuntimeOrigin::signed(WORKER), job, hash, semver);
		// Not above the base's 1.0.0.
		assert_noop!(
			commit(SemVer::new(0, 1, 0)),
			pallet_model_registry::Error::<Test>::SemVerNotIncreasing
		);
		assert_ok!(commit(result().semver));
		assert!(pallet_model_registry::ReservedSemVers::<Test>::contains_key(0, result().semver));
		// The model owner cannot take it meanwhile.
		let candidate = blyan_primitives::pol::CandidateVersion {
			model: 0,
			parents: blyan_primitives::pol::Parents::truncate_from(vec![0]),
			semver: result().semver,
			layers: result().layers,
			weight_root: H256::zero(),
			adapter: None,
		};
		assert_noop!(
			Registry::propose_version(RuntimeOrigin::signed(MODEL_OWNER), candidate),
			pallet_model_registry::Error::<Test>::SemVerReserved
		);
		// Another job on the same model cannot commit to it either.
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), REWARD));
		register(OTHER);
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(OTHER), 1));
		assert_noop!(
			Jobs::commit_result(RuntimeOrigin::signed(OTHER), 1, hash, result().semver),
			pallet_model_registry::Error::<Test>::SemVerReserved
		);
		// A reveal must carry the reserved SemVer.
		assert_ok!(Jobs::reveal_validation(
			RuntimeOrigin::signed(CREATOR),
			job,
			validation_cid(),
			SALT
		));
		let mut other = result();
		other.semver = SemVer::new(2, 0, 0);
		assert_noop!(
			Jobs::reveal_result(RuntimeOrigin::signed(WORKER), job, other, CLAIM, SALT),
			Error::<Test>::SemVerMismatch
		);
		// Withholding the result frees the SemVer.
		run_to(1 + 2 * REVEAL_WINDOW);
		assert!(!pallet_model_registry::ReservedSemVers::<Test>::contains_key(0, result().semver));
	});
}

#[test]
fn reveal_result_proposes_a_candidate_and_requests_verification() {
	new_test_ext().execute_with(|| {
		let job = verifying();
		let info = JobsStore::<Test>::get(job).unwrap();
		assert_eq!(info.status, JobStatus::Verifying { worker: WORKER, candidate: 1 });
		let version = pallet_model_registry::Versions::<Test>::get(1).unwrap();
		assert_eq!(version.status, VersionStatus::Candidate);
		assert_eq!(version.parents.to_vec(), vec![0]);
		assert_eq!(version.proposer, WORKER);
		let requests = REQUESTS.with(|r| r.borrow().clone());
		assert_eq!(
			requests,
			vec![(
				job,
				VerificationRequest {
					creator: CREATOR,
					miner: WORKER,
					dataset: 0,
					base_version: 0,
					candidate_version: 1,
					claim: CLAIM,
					min_improvement: Perbill::from_percent(1),
					trace: Some(blyan_primitives::testing::trace(8)),
				}
			)]
		);
		// No timeout applies while verifying.
		run_to(200);
		assert!(JobsStore::<Test>::get(job).is_some());
	});
}

#[test]
fn a_lora_jobs_result_is_an_adapter_version_and_nothing_trains_on_it() {
	new_test_ext().execute_with(|| {
		registry_fixture();
		register(WORKER);
		let lora = LoraParams { rank: 8, alpha: 16, targets: 0b101, rslora: false };
		let lora_spec = |base| {
			let mut s = JobSpec { base_version: base, ..spec(100) };
			s.training.lora = Some(lora);
			s
		};
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), lora_spec(0), REWARD));
		let job = 0;
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
		let hash = result_commitment(job, &WORKER, &result(), &SALT);
		assert_ok!(Jobs::commit_result(RuntimeOrigin::signed(WORKER), job, hash, result().semver));
		assert_ok!(Jobs::reveal_validation(
			RuntimeOrigin::signed(CREATOR),
			job,
			validation_cid(),
			SALT
		));
		assert_ok!(Jobs::reveal_result(RuntimeOrigin::signed(WORKER), job, result(), CLAIM, SALT));
		// The registry holds the job's adapters as what the candidate is over its base.
		assert_eq!(pallet_model_registry::VersionAdapters::<Test>::get(1), Some(lora));
		let summary = <Registry as blyan_primitives::pol::ModelRegistry<AccountId>>::version(1);
		assert_eq!(summary.unwrap().adapter, Some(lora));
		// Even once accepted, no job takes an adapter version as its base.
		pallet_model_registry::Versions::<Test>::mutate(1, |v| {
			v.as_mut().unwrap().status = VersionStatus::Accepted
		});
		for training in [spec(100).training, lora_spec(1).training] {
			assert_noop!(
				Jobs::post_job(
					RuntimeOrigin::signed(OTHER),
					JobSpec { base_version: 1, training, ..spec(100) },
					REWARD
				),
				Error::<Test>::AdapterBase
			);
		}
	});
}

#[test]
fn lease_expiry_slashes_a_little_and_reopens() {
	new_test_ext().execute_with(|| {
		let job = posted();
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
		let issuance = Balances::total_issuance();
		run_to(11);
		System::assert_last_event(
			Event::LeaseExpired { job, worker: WORKER, slashed: 10, reopened: true }.into(),
		);
		assert_eq!(Balances::total_issuance(), issuance - 10);
		assert_eq!(held(HoldReason::WorkerBond, WORKER), MIN_BOND - 10);
		assert_eq!(Workers::<Test>::get(WORKER).unwrap().bond, MIN_BOND - 10);
		assert!(WorkerJobs::<Test>::get(WORKER).is_empty());
		let info = JobsStore::<Test>::get(job).unwrap();
		assert_eq!((info.status, info.stage_deadline), (JobStatus::Open, 100));
		// Another worker can take it.
		register(OTHER);
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(OTHER), job));
	});
}

#[test]
fn lease_expiry_at_the_deadline_refunds() {
	new_test_ext().execute_with(|| {
		registry_fixture();
		register(WORKER);
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(5), REWARD));
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), 0));
		run_to(5);
		System::assert_has_event(
			Event::LeaseExpired { job: 0, worker: WORKER, slashed: 10, reopened: false }.into(),
		);
		assert!(JobsStore::<Test>::get(0).is_none());
		assert_eq!(free(CREATOR), 1_000);
		assert_eq!(CreatorJobCount::<Test>::get(CREATOR), 0);
	});
}

#[test]
fn creator_who_never_reveals_pays_the_miner_a_bounded_share_not_the_escrow() {
	new_test_ext().execute_with(|| {
		let job = committed();
		// A second job of the same creator: its escrow must stay held.
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), REWARD));
		run_to(1 + REVEAL_WINDOW);
		System::assert_last_event(
			Event::CreatorForfeited { job, worker: WORKER, amount: REWARD / 5 }.into(),
		);
		// A fifth of the reward for a bare commitment, never the whole escrow; the rest back.
		assert_eq!(free(WORKER), 1_000 - MIN_BOND + REWARD / 5);
		// Less the second job's escrow and bond (a fifth of its reward).
		assert_eq!(free(CREATOR), 1_000 - REWARD - REWARD / 5 - REWARD / 5);
		assert_eq!(held(HoldReason::JobEscrow, CREATOR), REWARD);
		assert_eq!(held(HoldReason::CreatorBond, CREATOR), REWARD / 5);
		assert!(JobsStore::<Test>::get(job).is_none());
		assert!(WorkerJobs::<Test>::get(WORKER).is_empty());
	});
}

#[test]
fn miner_who_withholds_its_result_is_slashed_and_the_creator_refunded() {
	new_test_ext().execute_with(|| {
		let job = validation_revealed();
		run_to(1 + REVEAL_WINDOW);
		System::assert_last_event(
			Event::ResultWithheld { job, worker: WORKER, slashed: 10 }.into(),
		);
		assert_eq!(free(CREATOR), 1_000);
		assert_eq!(held(HoldReason::WorkerBond, WORKER), MIN_BOND - 10);
	});
}

#[test]
fn settle_accepted_pays_payouts_then_the_miner() {
	new_test_ext().execute_with(|| {
		let job = verifying();
		assert_eq!(<Jobs as JobSettlement<_, _>>::escrow(job), Some(REWARD));
		// OTHER gets 20, a payee that cannot exist (below ED of 1: amount 0) is skipped.
		assert_ok!(<Jobs as JobSettlement<_, _>>::settle_accepted(
			job,
			&[(OTHER, 20), (DATA_OWNER, 10)]
		));
		System::assert_last_event(Event::JobAccepted { job, worker: WORKER, to_miner: 170 }.into());
		assert_eq!(free(OTHER), 1_020);
		assert_eq!(free(DATA_OWNER), 1_010);
		assert_eq!(free(WORKER), 1_000 - MIN_BOND + 170);
		assert_eq!(free(CREATOR), 1_000 - REWARD);
		assert_eq!(held(HoldReason::JobEscrow, CREATOR), 0);
		assert!(JobsStore::<Test>::get(job).is_none());
		assert_eq!(CreatorJobCount::<Test>::get(CREATOR), 0);
		assert_noop!(
			<Jobs as JobSettlement<_, _>>::settle_accepted(job, &[]),
			Error::<Test>::UnknownJob
		);
	});
}

#[test]
fn settle_accepted_never_pays_more_than_the_escrow() {
	new_test_ext().execute_with(|| {
		let job = verifying();
		assert_ok!(<Jobs as JobSettlement<_, _>>::settle_accepted(
			job,
			&[(OTHER, 150), (DATA_OWNER, 150)]
		));
		assert_eq!(free(OTHER), 1_150);
		assert_eq!(free(DATA_OWNER), 1_050);
		assert_eq!(free(WORKER), 1_000 - MIN_BOND);
		assert_eq!(free(CREATOR), 1_000 - REWARD);
	});
}

#[test]
fn settle_rejected_slashes_and_refunds() {
	new_test_ext().execute_with(|| {
		let job = verifying();
		let issuance = Balances::total_issuance();
		assert_eq!(
			<Jobs as JobSettlement<_, _>>::settle_rejected(job, Perbill::from_percent(50), &[]),
			Ok(50)
		);
		System::assert_last_event(
			Event::JobRejected { job, worker: WORKER, slashed: 50, burned: 50 }.into(),
		);
		assert_eq!(Balances::total_issuance(), issuance - 50);
		assert_eq!(free(CREATOR), 1_000);
		assert_eq!(held(HoldReason::WorkerBond, WORKER), 50);
		assert!(WorkerJobs::<Test>::get(WORKER).is_empty());
	});
}

#[test]
fn settle_rejected_pays_rewards_out_of_the_slash_and_burns_the_rest() {
	new_test_ext().execute_with(|| {
		let job = verifying();
		let issuance = Balances::total_issuance();
		let (other, owner) = (free(OTHER), free(DATA_OWNER));
		// A 50 slash: 20 to OTHER, the 40 asked for DATA_OWNER capped at the 30 left, nothing burned.
		assert_eq!(
			<Jobs as JobSettlement<_, _>>::settle_rejected(
				job,
				Perbill::from_percent(50),
				&[(OTHER, 20), (DATA_OWNER, 40)]
			),
			Ok(50)
		);
		assert_eq!(free(OTHER), other + 20);
		assert_eq!(free(DATA_OWNER), owner + 30);
		assert_eq!(Balances::total_issuance(), issuance);
		assert_eq!(held(HoldReason::WorkerBond, WORKER), MIN_BOND - 50);
		assert_eq!(Workers::<Test>::get(WORKER).unwrap().bond, MIN_BOND - 50);
		assert_eq!(free(CREATOR), 1_000);
	});
	new_test_ext().execute_with(|| {
		let job = verifying();
		let issuance = Balances::total_issuance();
		// Rewards below the slash: the rest is burned.
		assert_eq!(
			<Jobs as JobSettlement<_, _>>::settle_rejected(
				job,
				Perbill::from_percent(50),
				&[(OTHER, 10)]
			),
			Ok(50)
		);
		assert_eq!(Balances::total_issuance(), issuance - 40);
		assert_eq!(Workers::<Test>::get(WORKER).unwrap().bond, MIN_BOND - 50);
	});
}

#[test]
fn settle_void_refunds_without_slashing() {
	new_test_ext().execute_with(|| {
		let job = verifying();
		assert_ok!(<Jobs as JobSettlement<_, _>>::settle_void(job));
		System::assert_last_event(Event::JobVoided { job }.into());
		assert_eq!(free(CREATOR), 1_000);
		assert_eq!(held(HoldReason::WorkerBond, WORKER), MIN_BOND);
	});
}

#[test]
fn a_creator_fault_pays_the_escrow_as_if_accepted_and_the_bond_to_the_miner() {
	new_test_ext().execute_with(|| {
		let job = verifying();
		// A second job of the same creator: its escrow and bond must stay held.
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), REWARD));
		let bond = REWARD / 5;
		assert_ok!(<Jobs as JobSettlement<_, _>>::settle_creator_fault(
			job,
			&[(OTHER, 15), (DATA_OWNER, 15)]
		));
		System::assert_last_event(
			Event::CreatorBondForfeited {
				job,
				creator: CREATOR,
				worker: WORKER,
				forfeited: bond,
				to_miner: REWARD - 30 + bond,
			}
			.into(),
		);
		// The creator pays the reward and loses the bond: more than an honest job costs.
		assert_eq!(free(CREATOR), 1_000 - (REWARD + bond) - (REWARD + bond));
		assert_eq!(free(OTHER), 1_015);
		assert_eq!(free(WORKER), 1_000 - MIN_BOND + REWARD - 30 + bond);
		assert_eq!(held(HoldReason::WorkerBond, WORKER), MIN_BOND, "the miner is not slashed");
		assert_eq!(held(HoldReason::CreatorBond, CREATOR), bond, "the other job's bond");
		assert_eq!(held(HoldReason::JobEscrow, CREATOR), REWARD, "the other job's escrow");
		assert!(JobsStore::<Test>::get(job).is_none());
	});
}

#[test]
fn every_other_end_of_a_job_returns_the_creator_bond() {
	new_test_ext().execute_with(|| {
		let job = verifying();
		assert_ok!(<Jobs as JobSettlement<_, _>>::settle_accepted(job, &[]));
		assert_eq!(held(HoldReason::CreatorBond, CREATOR), 0);
		assert_eq!(free(CREATOR), 1_000 - REWARD);
	});
}

#[test]
fn settlement_of_a_job_not_verifying_is_refused() {
	new_test_ext().execute_with(|| {
		let job = posted();
		assert_noop!(<Jobs as JobSettlement<_, _>>::settle_void(job), Error::<Test>::WrongStage);
		assert_noop!(
			<Jobs as JobSettlement<_, _>>::settle_rejected(job, Perbill::one(), &[]),
			Error::<Test>::WrongStage
		);
		assert_noop!(
			<Jobs as JobSettlement<_, _>>::settle_creator_fault(job, &[]),
			Error::<Test>::WrongStage
		);
	});
}

#[test]
fn set_params_refuses_insane_values() {
	new_test_ext().execute_with(|| {
		let mut params = DefaultParams::get();
		params.min_improvement = Perbill::from_percent(5);
		let mut zero = params.clone();
		zero.min_improvement = Perbill::zero();
		assert_noop!(
			<Jobs as GovernedParams<_>>::set_params(zero),
			Error::<Test>::BadMinImprovement
		);
		let mut no_window = params.clone();
		no_window.reveal_window = 0;
		assert_noop!(<Jobs as GovernedParams<_>>::set_params(no_window), Error::<Test>::BadLease);
		assert_ok!(<Jobs as GovernedParams<_>>::set_params(params.clone()));
		assert_eq!(Params::<Test>::get(), params);
		// New jobs take the new default.
		registry_fixture();
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), REWARD));
		assert_eq!(JobsStore::<Test>::get(0).unwrap().min_improvement, Perbill::from_percent(5));
	});
}

#[test]
fn hold_errors_surface_as_named_errors_not_token_errors() {
	new_test_ext().execute_with(|| {
		registry_fixture();
		// The whole free balance cannot be held (the account must stay alive).
		let result = Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), 1_000);
		assert_noop!(result, Error::<Test>::InsufficientBalance);
		assert_ne!(result, Err(TokenError::FundsUnavailable.into()));
	});
}

#[test]
fn exhausted_job_ids_are_a_named_error() {
	new_test_ext().execute_with(|| {
		registry_fixture();
		NextJobId::<Test>::put(JobId::MAX);
		assert_noop!(
			Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), REWARD),
			Error::<Test>::IdsExhausted
		);
	});
}

#[test]
fn the_invariants_catch_state_out_of_step() {
	new_test_ext().execute_with(|| {
		let job = posted();
		assert_ok!(Jobs::claim_job(RuntimeOrigin::signed(WORKER), job));
		assert_ok!(Jobs::do_try_state());
		// A reward the escrow hold does not back.
		JobsStore::<Test>::mutate(job, |j| j.as_mut().unwrap().reward += 1);
		assert!(Jobs::do_try_state().is_err());
		JobsStore::<Test>::mutate(job, |j| j.as_mut().unwrap().reward -= 1);
		// A held job its worker does not list.
		let held = WorkerJobs::<Test>::take(WORKER);
		assert!(Jobs::do_try_state().is_err());
		WorkerJobs::<Test>::insert(WORKER, held);
		// A lease nothing will expire.
		let deadline = JobsStore::<Test>::get(job).unwrap().stage_deadline;
		Expiries::<Test>::remove(deadline, job);
		assert!(Jobs::do_try_state().is_err());
		Expiries::<Test>::insert(deadline, job, ());
	});
}

#[test]
fn the_v1_migration_types_readable_hyper_parameters_and_ends_the_jobs_it_cannot_read() {
	use crate::migrations::v1::{OldJob, OldJobSpec};
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
	new_test_ext().execute_with(|| {
		let trapped = committed();
		let readable = 1;
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(CREATOR), spec(100), REWARD));
		let unreadable = 2;
		assert_ok!(Jobs::post_job(RuntimeOrigin::signed(OTHER), spec(100), REWARD));
		// Rewrite the three as v0 held them: JSON hyper-parameters, no creator bond.
		let to_v0 = |id: JobId, json: &[u8]| {
			let job = JobsStore::<Test>::take(id).unwrap();
			let _ = Balances::release(
				&RuntimeHoldReason::Jobs(HoldReason::CreatorBond),
				&job.creator,
				job.creator_bond,
				frame_support::traits::tokens::Precision::Exact,
			)
			.unwrap();
			let spec = job.spec;
			crate::migrations::v1::Jobs::<Test>::insert(
				id,
				OldJob {
					creator: job.creator,
					model: job.model,
					spec: OldJobSpec {
						base_version: spec.base_version,
						dataset: spec.dataset,
						validation_commitment: spec.validation_commitment,
						hyperparams: BoundedVec::truncate_from(json.to_vec()),
						seed: spec.seed,
						backend: spec.backend,
						min_memory_mb: spec.min_memory_mb,
						deadline: spec.deadline,
						lease: spec.lease,
						min_improvement: spec.min_improvement,
					},
					reward: job.reward,
					min_improvement: job.min_improvement,
					status: job.status,
					stage_deadline: job.stage_deadline,
					validation: job.validation,
				},
			);
		};
		// The creator trap of issue #18 item 11: the runtime's byte search read 5 steps here.
		to_v0(trapped, br#"{"o":{"steps":5},"steps":60,"batch_size":8,"seq_len":64,"learning_rate":0.003}"#);
		to_v0(readable, br#"{"steps":60,"batch_size":8,"seq_len":64,"learning_rate":0.003,"weight_decay":0.0,"eval_batches":16}"#);
		to_v0(unreadable, br#"{"lr":0.01}"#);
		StorageVersion::new(0).put::<Pallet<Test>>();
		let worker_free = free(WORKER);

		crate::migrations::MigrateV0ToV2::<Test>::on_runtime_upgrade();

		assert_eq!(Jobs::on_chain_storage_version(), StorageVersion::new(2));
		let kept = JobsStore::<Test>::get(readable).expect("a readable job is kept");
		assert_eq!(kept.spec.training, TrainingParams::DEFAULT);
		assert_eq!((kept.status, kept.creator_bond), (JobStatus::Open, 0));
		// The unreadable ones end as cancelled: escrow back, the worker released and unslashed,
		// the reserved SemVer free again, nothing left due.
		for id in [trapped, unreadable] {
			assert!(JobsStore::<Test>::get(id).is_none());
			System::assert_has_event(Event::JobCancelled { job: id }.into());
		}
		assert_eq!(held(HoldReason::JobEscrow, CREATOR), REWARD, "only the kept job's escrow");
		assert_eq!(free(OTHER), 1_000);
		assert_eq!(free(WORKER), worker_free);
		assert_eq!(held(HoldReason::WorkerBond, WORKER), MIN_BOND);
		assert!(WorkerJobs::<Test>::get(WORKER).is_empty());
		assert!(!pallet_model_registry::ReservedSemVers::<Test>::contains_key(0, result().semver));
		assert_eq!(CreatorJobCount::<Test>::get(OTHER), 0);
		assert!(Expiries::<Test>::iter().all(|(_, job, ())| job == readable));
		assert_ok!(Jobs::do_try_state());
		// A second run leaves the migrated state alone.
		crate::migrations::MigrateV0ToV2::<Test>::on_runtime_upgrade();
		assert_eq!(JobsStore::<Test>::get(readable).unwrap().spec.training, TrainingParams::DEFAULT);
	});
}

#[test]
fn v1_jobs_gain_no_schedule_and_no_lora_and_train_as_before() {
	new_test_ext().execute_with(|| {
		use crate::migrations::v2::{OldJob, OldJobSpec, OldTrainingParams};
		use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
		let job = committed();
		let posted = JobsStore::<Test>::take(job).unwrap();
		let t = posted.spec.training;
		let old_training = OldTrainingParams {
			steps: t.steps,
			batch_size: t.batch_size,
			seq_len: t.seq_len,
			learning_rate: t.learning_rate,
			weight_decay: t.weight_decay,
			eval_batches: t.eval_batches,
		};
		let s = posted.spec.clone();
		crate::migrations::v2::Jobs::<Test>::insert(
			job,
			OldJob {
				creator: posted.creator,
				model: posted.model,
				spec: OldJobSpec {
					base_version: s.base_version,
					dataset: s.dataset,
					validation_commitment: s.validation_commitment,
					training: old_training,
					seed: s.seed,
					backend: s.backend,
					min_memory_mb: s.min_memory_mb,
					deadline: s.deadline,
					lease: s.lease,
					min_improvement: s.min_improvement,
				},
				reward: posted.reward,
				creator_bond: posted.creator_bond,
				min_improvement: posted.min_improvement,
				status: posted.status.clone(),
				stage_deadline: posted.stage_deadline,
				validation: posted.validation.clone(),
			},
		);
		StorageVersion::new(1).put::<Pallet<Test>>();
		// A v1 chain: the v0 step leaves it alone, the v1 step translates it.
		crate::migrations::MigrateV0ToV2::<Test>::on_runtime_upgrade();
		assert_eq!(Jobs::on_chain_storage_version(), StorageVersion::new(1));
		crate::migrations::MigrateV1ToV2::<Test>::on_runtime_upgrade();
		assert_eq!(Jobs::on_chain_storage_version(), StorageVersion::new(2));
		let migrated = JobsStore::<Test>::get(job).expect("the job is kept");
		assert_eq!(migrated, posted, "the same job, with no schedule and no LoRA");
		assert_eq!(migrated.spec.training.schedule, StepScheduleParams::NONE);
		assert_eq!(migrated.spec.training.lora, None);
		assert_ok!(Jobs::do_try_state());
		// Run again: nothing changes.
		crate::migrations::MigrateV1ToV2::<Test>::on_runtime_upgrade();
		assert_eq!(JobsStore::<Test>::get(job), Some(posted));
	});
}
