use crate::{mock::*, *};
use frame_support::{assert_noop, assert_ok};
use sp_runtime::{BuildStorage, DispatchError};

fn set(origin: RuntimeOrigin, parameter: Parameter<Balance, BlockNumber>) -> DispatchResult {
	Governance::set_parameter(origin, parameter)
}

#[test]
fn only_root_or_the_parameters_track_may_set() {
	new_test_ext().execute_with(|| {
		let p = Parameter::MinImprovement(Perbill::from_percent(2));
		assert_noop!(set(RuntimeOrigin::signed(1), p.clone()), DispatchError::BadOrigin);
		assert_noop!(set(RuntimeOrigin::none(), p.clone()), DispatchError::BadOrigin);
		assert_ok!(set(parameter_admin(), p.clone()));
		assert_eq!(MockJobs::params().min_improvement, Perbill::from_percent(2));
		System::assert_last_event(Event::ParameterSet { parameter: p }.into());
		assert_ok!(set(RuntimeOrigin::root(), Parameter::MinImprovement(Perbill::from_percent(3))));
		assert_eq!(MockJobs::params().min_improvement, Perbill::from_percent(3));
	});
}

#[test]
fn each_bound_is_inclusive_and_out_of_range_changes_nothing() {
	new_test_ext().execute_with(|| {
		let admin = parameter_admin;
		// Exactly at each end: accepted.
		assert_ok!(set(admin(), Parameter::MinImprovement(Perbill::from_perthousand(1))));
		assert_ok!(set(admin(), Parameter::MinImprovement(Perbill::from_percent(50))));
		assert_ok!(set(admin(), Parameter::CommitteeSize(1)));
		assert_ok!(set(admin(), Parameter::CommitteeSize(21)));
		let before_jobs = MockJobs::params();
		let before_pol = MockPol::params();
		let before_economics = Governance::economics();
		// One step beyond: refused with a named error, nothing written, no event.
		System::reset_events();
		let refused = [
			(Parameter::MinImprovement(Perbill::from_parts(999_999)), Error::<Test>::BelowMinimum),
			(
				Parameter::MinImprovement(Perbill::from_parts(500_000_001)),
				Error::<Test>::AboveMaximum,
			),
			(Parameter::CommitteeSize(0), Error::<Test>::BelowMinimum),
			(Parameter::CommitteeSize(22), Error::<Test>::AboveMaximum),
			(Parameter::MinerSlash(Perbill::zero()), Error::<Test>::BelowMinimum),
			(Parameter::MinWorkerBond(0), Error::<Test>::BelowMinimum),
			(Parameter::MinWorkerBond(1_000_001), Error::<Test>::AboveMaximum),
		];
		for (parameter, error) in refused {
			assert_noop!(set(admin(), parameter), error);
		}
		// Root-only parameters, through the root track.
		let refused = [
			(Parameter::EpochLength(9), Error::<Test>::BelowMinimum),
			(Parameter::AnnualInflation(Perbill::from_percent(21)), Error::<Test>::AboveMaximum),
			(Parameter::DecisionPeriod(10_001), Error::<Test>::AboveMaximum),
		];
		for (parameter, error) in refused {
			assert_noop!(set(RuntimeOrigin::root(), parameter), error);
		}
		assert_eq!(MockJobs::params(), before_jobs);
		assert_eq!(MockPol::params(), before_pol);
		assert_eq!(Governance::economics(), before_economics);
		assert!(System::events().is_empty());
	});
}

#[test]
fn a_parameter_without_bounds_cannot_be_changed() {
	new_test_ext().execute_with(|| {
		assert_noop!(
			set(RuntimeOrigin::root(), Parameter::CommitteeDrawDelay(5)),
			Error::<Test>::NotGovernable
		);
		// Bounds in another unit than the value: refused, not compared across units.
		assert_noop!(
			set(RuntimeOrigin::root(), Parameter::MaxLease(50)),
			Error::<Test>::NotGovernable
		);
		assert_eq!(MockPol::params().draw_delay, 1);
		assert_eq!(MockJobs::params().max_lease, 100);
	});
}

/// What a parameter change should do to the two pallets' parameters.
type Expect<'a> =
	dyn Fn(&mut JobParams<Balance, BlockNumber>, &mut PolParams<Balance, BlockNumber>) + 'a;

#[test]
fn every_parameter_reaches_its_field_and_only_it() {
	new_test_ext().execute_with(|| {
		let r = RuntimeOrigin::root;
		let mut jobs = MockJobs::params();
		let mut pol = MockPol::params();
		let share = Perbill::from_percent(7);
		let steps: [(Parameter<Balance, BlockNumber>, &Expect<'_>); 17] = [
			(Parameter::MinImprovement(share), &|j, _| j.min_improvement = share),
			(Parameter::MinJobReward(11), &|j, _| j.min_reward = 11),
			(Parameter::MinWorkerBond(12), &|j, _| j.min_worker_bond = 12),
			(Parameter::WorkerUnbondingPeriod(13), &|j, _| j.unbonding_period = 13),
			(Parameter::ResultRevealWindow(14), &|j, _| j.reveal_window = 14),
			(Parameter::LeaseSlash(share), &|j, _| j.lease_slash = share),
			(Parameter::CommitteeSize(5), &|_, p| p.committee_size = 5),
			(Parameter::VerifierCommitWindow(15), &|_, p| p.commit_window = 15),
			(Parameter::VerifierRevealWindow(16), &|_, p| p.reveal_window = 16),
			(Parameter::VerifierFee(share), &|_, p| p.verifier_fee = share),
			(Parameter::DatasetShare(share), &|_, p| p.dataset_share = share),
			(Parameter::MinerSlash(share), &|_, p| p.miner_slash = share),
			(Parameter::VerifierPenalty(share), &|_, p| p.verifier_penalty = share),
			(Parameter::MinVerifierBond(17), &|_, p| p.min_verifier_bond = 17),
			(Parameter::VerifierUnbondingPeriod(18), &|_, p| p.unbonding_period = 18),
			(Parameter::EpochLength(190), &|_, p| {
				p.epoch_length = 190;
				p.epoch_budget = 1_900; // the same BLY per block
			}),
			(Parameter::EpochBudget(2_000), &|_, p| p.epoch_budget = 2_000),
		];
		for (parameter, expect) in steps {
			assert_ok!(set(r(), parameter.clone()));
			expect(&mut jobs, &mut pol);
			assert_eq!(MockJobs::params(), jobs, "{parameter:?}");
			assert_eq!(MockPol::params(), pol, "{parameter:?}");
		}
		assert_ok!(set(r(), Parameter::MinDailyQuota(7)));
		assert_ok!(set(r(), Parameter::MaxDailyQuota(700)));
		assert_ok!(set(r(), Parameter::PowDifficulty(24)));
		assert_ok!(set(r(), Parameter::PowWindow(30)));
		assert_ok!(set(r(), Parameter::MaxFreePerBlock(40)));
		assert_eq!(
			MockFreeTier::params(),
			FreeTierParams {
				min_daily_quota: 7,
				max_daily_quota: 700,
				pow_difficulty: 24,
				pow_window: 30,
				max_free_per_block: 40
			}
		);
		assert_noop!(set(r(), Parameter::PowDifficulty(7)), Error::<Test>::BelowMinimum);
		assert_ok!(set(r(), Parameter::AnnualInflation(Perbill::from_percent(8))));
		assert_ok!(set(r(), Parameter::ValidatorRewardShare(Perbill::from_percent(30))));
		assert_eq!(
			Governance::economics(),
			EconomicsParams {
				annual_inflation: Perbill::from_percent(8),
				validator_share: Perbill::from_percent(30)
			}
		);
		assert_ok!(set(r(), Parameter::PreparePeriod(11)));
		assert_ok!(set(r(), Parameter::DecisionPeriod(60)));
		assert_ok!(set(r(), Parameter::ConfirmPeriod(13)));
		assert_ok!(set(r(), Parameter::MinEnactmentPeriod(14)));
		assert_eq!(
			Governance::timings(),
			ReferendumTimings {
				prepare_period: 11,
				decision_period: 60,
				confirm_period: 13,
				min_enactment_period: 14
			}
		);
	});
}

#[test]
fn the_owning_pallets_own_checks_still_apply() {
	new_test_ext().execute_with(|| {
		// Each within its bound (≤ 60 %), together beyond the escrow: the pallet refuses.
		assert_ok!(set(RuntimeOrigin::root(), Parameter::VerifierFee(Perbill::from_percent(60))));
		assert_noop!(
			set(RuntimeOrigin::root(), Parameter::DatasetShare(Perbill::from_percent(41))),
			FEE_AND_SHARE_TOO_HIGH
		);
		assert_eq!(MockPol::params().dataset_share, Perbill::from_percent(5));
	});
}

#[test]
fn genesis_overrides_defaults_within_bounds() {
	let timings = ReferendumTimings {
		prepare_period: 10,
		decision_period: 20,
		confirm_period: 10,
		min_enactment_period: 10,
	};
	let storage = RuntimeGenesisConfig {
		governance: GovernanceConfig { economics: None, timings: Some(timings) },
		..Default::default()
	}
	.build_storage()
	.unwrap();
	sp_io::TestExternalities::new(storage).execute_with(|| {
		assert_eq!(Governance::timings(), timings);
		assert_eq!(Governance::economics().annual_inflation, Perbill::from_percent(10));
	});
}

#[test]
#[should_panic(expected = "genesis referendum timings out of bounds")]
fn genesis_out_of_bounds_is_refused() {
	let timings = ReferendumTimings {
		prepare_period: 1,
		decision_period: 20,
		confirm_period: 10,
		min_enactment_period: 10,
	};
	let _ = RuntimeGenesisConfig {
		governance: GovernanceConfig { economics: None, timings: Some(timings) },
		..Default::default()
	}
	.build_storage();
}

#[test]
fn bounds_are_published_for_clients() {
	new_test_ext().execute_with(|| {
		let published = Governance::parameter_bounds();
		// Every kind the table bounds, and only those.
		assert_eq!(published.len(), ParameterKind::ALL.len() - 1);
		assert!(!published.iter().any(|(k, _, _)| *k == ParameterKind::CommitteeDrawDelay));
		assert!(published.contains(&(
			ParameterKind::CommitteeSize,
			ParameterValue::Count(1),
			ParameterValue::Count(21)
		)));
	});
}

#[test]
fn the_parameters_track_cannot_escalate_to_the_root_track_or_the_treasury() {
	new_test_ext().execute_with(|| {
		let before = (Governance::timings(), Governance::economics(), MockPol::params());
		// What a referendum on the weaker track would try: make the root track instant, then
		// mint and spend the mining pool in minutes.
		let escalation = [
			Parameter::DecisionPeriod(10),
			Parameter::ConfirmPeriod(10),
			Parameter::PreparePeriod(10),
			Parameter::MinEnactmentPeriod(10),
			Parameter::EpochLength(10),
			Parameter::EpochBudget(1_000_000),
			Parameter::AnnualInflation(Perbill::from_percent(20)),
			Parameter::ValidatorRewardShare(Perbill::zero()),
		];
		for parameter in escalation.iter().cloned() {
			assert!(parameter.kind().root_only());
			assert_noop!(set(parameter_admin(), parameter), Error::<Test>::RootOnly);
		}
		assert_eq!((Governance::timings(), Governance::economics(), MockPol::params()), before);
		// Every other parameter stays with the parameters track.
		let track_kinds = ParameterKind::ALL.iter().filter(|k| !k.root_only()).count();
		assert_eq!(track_kinds, ParameterKind::ALL.len() - 8);
	});
}

#[test]
fn root_only_parameters_move_by_at_most_a_factor_of_two_once_per_cooldown() {
	new_test_ext().execute_with(|| {
		let r = RuntimeOrigin::root;
		// Even the root track: the budget (1 000) cannot jump a thousandfold in one change…
		assert_noop!(set(r(), Parameter::EpochBudget(1_000_000)), Error::<Test>::StepTooLarge);
		assert_noop!(set(r(), Parameter::DecisionPeriod(49)), Error::<Test>::StepTooLarge);
		// …doubles at most…
		assert_ok!(set(r(), Parameter::EpochBudget(2_000)));
		// …and not again before the cooldown; another parameter has its own.
		assert_noop!(set(r(), Parameter::EpochBudget(4_000)), Error::<Test>::ChangedTooRecently);
		assert_ok!(set(r(), Parameter::DecisionPeriod(50)));
		System::set_block_number(1 + ROOT_COOLDOWN - 1);
		assert_noop!(set(r(), Parameter::EpochBudget(4_000)), Error::<Test>::ChangedTooRecently);
		System::set_block_number(1 + ROOT_COOLDOWN);
		assert_ok!(set(r(), Parameter::EpochBudget(4_000)));
		assert_eq!(MockPol::params().epoch_budget, 4_000);
		// A shorter epoch pays proportionally less: the pool's rate per block is unchanged.
		assert_ok!(set(r(), Parameter::EpochLength(10)));
		assert_eq!((MockPol::params().epoch_length, MockPol::params().epoch_budget), (10, 400));
		System::set_block_number(1 + 2 * ROOT_COOLDOWN);
		assert_ok!(set(r(), Parameter::EpochLength(100)));
		assert_eq!(MockPol::params().epoch_budget, 4_000);
		// A thousandfold takes eight changes, each a cooldown after the last.
		let mut budget = 4_000u128;
		let mut block = 1 + 2 * ROOT_COOLDOWN;
		let mut changes = 0;
		while budget < 1_000_000 {
			block += ROOT_COOLDOWN;
			System::set_block_number(block);
			budget = (budget * 2).min(1_000_000);
			assert_ok!(set(r(), Parameter::EpochBudget(budget)));
			changes += 1;
		}
		assert_eq!(changes, 8);
		// At the budget's maximum, a longer epoch would take the budget past it: refused.
		assert_noop!(set(r(), Parameter::EpochLength(200)), Error::<Test>::AboveMaximum);
	});
}
