use crate::{mock::*, *};
use frame_support::{assert_noop, assert_ok, traits::fungible::InspectHold};

const JOB: JobId = 7;

fn spec(admission: Admission<AccountId, Balance, MaxParticipants>) -> SpecOf<Test> {
	FederatedSpec {
		rounds: 3,
		min_participants: 3,
		admission,
		rule: AggregationRule::Secure { threshold: 3 },
		clip_norm_milli: 1_000,
		noise_milli: 1_000,
		delta_exp: 5,
		local_steps: 10,
	}
}

fn named(n: u64) -> Admission<AccountId, Balance, MaxParticipants> {
	Admission::Named((P..P + n).collect::<Vec<_>>().try_into().unwrap())
}

fn created(admission: Admission<AccountId, Balance, MaxParticipants>) {
	post_job(JOB, CREATOR);
	assert_ok!(Federated::create(RuntimeOrigin::signed(CREATOR), JOB, spec(admission)));
}

fn joined_and_claimed(n: u64) {
	created(named(n));
	for p in P..P + n {
		assert_ok!(Federated::join(RuntimeOrigin::signed(p), JOB));
	}
	claim_job(JOB, AGGREGATOR);
}

fn cid() -> Cid {
	b"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".to_vec().try_into().unwrap()
}

fn contributors(ids: &[ParticipantIndex]) -> BoundedVec<ParticipantIndex, MaxParticipants> {
	ids.to_vec().try_into().unwrap()
}

#[test]
fn create_computes_epsilon_on_chain() {
	new_test_ext().execute_with(|| {
		created(named(4));
		let info = Jobs::<Test>::get(JOB).unwrap();
		// 3 rounds at σ = 1, δ = 10⁻⁵: min over α of 3α/2 + ln(10⁵)/(α − 1), at α = 4 → 9.837…
		assert_eq!(
			info.epsilon_milli,
			blyan_primitives::federated::epsilon_milli(3, 1_000, 5).unwrap()
		);
		assert_eq!(info.epsilon_milli, 9_838);
		System::assert_last_event(
			Event::FederatedJobCreated { job: JOB, epsilon_milli: 9_838 }.into(),
		);
		assert_noop!(
			Federated::create(RuntimeOrigin::signed(CREATOR), JOB, spec(named(4))),
			Error::<Test>::AlreadyFederated
		);
	});
}

#[test]
fn create_checks_everything_first() {
	new_test_ext().execute_with(|| {
		post_job(JOB, CREATOR);
		let bad = |f: fn(&mut SpecOf<Test>), e: Error<Test>| {
			let mut s = spec(named(4));
			f(&mut s);
			assert_noop!(Federated::create(RuntimeOrigin::signed(CREATOR), JOB, s), e);
		};
		bad(|s| s.rounds = 0, Error::<Test>::BadRounds);
		bad(|s| s.rounds = 11, Error::<Test>::BadRounds);
		bad(|s| s.rule = AggregationRule::Secure { threshold: 1 }, Error::<Test>::BadRule);
		bad(|s| s.rule = AggregationRule::Secure { threshold: 4 }, Error::<Test>::BadRule);
		// Secure with threshold 2 admits at most 3: a minimum of 4 is refused, and so are 4 named.
		bad(
			|s| {
				s.rule = AggregationRule::Secure { threshold: 2 };
				s.min_participants = 4;
			},
			Error::<Test>::BadRule,
		);
		bad(
			|s| {
				s.rule = AggregationRule::Secure { threshold: 2 };
				s.min_participants = 2;
			},
			Error::<Test>::BadNamedParticipants,
		);
		bad(
			|s| s.rule = AggregationRule::MultiKrum { byzantine: 1, selected: 2 },
			Error::<Test>::BadRule,
		);
		bad(|s| s.rule = AggregationRule::TrimmedMean { trim: 2 }, Error::<Test>::BadRule);
		bad(|s| s.min_participants = 9, Error::<Test>::BadRule);
		bad(|s| s.admission = named(2), Error::<Test>::BadNamedParticipants);
		bad(
			|s| s.admission = Admission::Named(vec![P, P + 1, P].try_into().unwrap()),
			Error::<Test>::BadNamedParticipants,
		);
		bad(|s| s.noise_milli = 0, Error::<Test>::NoPrivacy);
		bad(|s| s.delta_exp = 0, Error::<Test>::NoPrivacy);
		bad(|s| s.delta_exp = 21, Error::<Test>::NoPrivacy);
		assert_noop!(
			Federated::create(RuntimeOrigin::signed(P), JOB, spec(named(4))),
			Error::<Test>::NotJobCreator
		);
		// Rounds average whole layers: a LoRA job cannot be federated.
		make_adapter_job(JOB);
		assert_noop!(
			Federated::create(RuntimeOrigin::signed(CREATOR), JOB, spec(named(4))),
			Error::<Test>::AdapterJob
		);
		claim_job(JOB, AGGREGATOR);
		assert_noop!(
			Federated::create(RuntimeOrigin::signed(CREATOR), JOB, spec(named(4))),
			Error::<Test>::JobNotOpen
		);
	});
}

#[test]
fn join_charges_epsilon_and_refuses_beyond_the_budget() {
	new_test_ext().execute_with(|| {
		created(named(4));
		assert_noop!(Federated::join(RuntimeOrigin::signed(P + 5), JOB), Error::<Test>::NotNamed);
		assert_ok!(Federated::join(RuntimeOrigin::signed(P), JOB));
		assert_eq!(PrivacySpent::<Test>::get(P), 9_838);
		assert_noop!(Federated::join(RuntimeOrigin::signed(P), JOB), Error::<Test>::AlreadyJoined);

		// A second job would take P to 19.676 of its default 20: allowed; a third is refused.
		post_job(JOB + 1, CREATOR);
		assert_ok!(Federated::create(RuntimeOrigin::signed(CREATOR), JOB + 1, spec(named(4))));
		assert_ok!(Federated::join(RuntimeOrigin::signed(P), JOB + 1));
		assert_eq!(PrivacySpent::<Test>::get(P), 19_676);
		post_job(JOB + 2, CREATOR);
		assert_ok!(Federated::create(RuntimeOrigin::signed(CREATOR), JOB + 2, spec(named(4))));
		assert_noop!(
			Federated::join(RuntimeOrigin::signed(P), JOB + 2),
			Error::<Test>::PrivacyBudgetExceeded
		);
		// A participant may tighten its own budget: then even the first job is refused.
		assert_ok!(Federated::set_privacy_budget(RuntimeOrigin::signed(P + 1), 5_000));
		assert_noop!(
			Federated::join(RuntimeOrigin::signed(P + 1), JOB),
			Error::<Test>::PrivacyBudgetExceeded
		);
		assert_ok!(Federated::set_privacy_budget(RuntimeOrigin::signed(P + 1), 10_000));
		assert_ok!(Federated::join(RuntimeOrigin::signed(P + 1), JOB));
	});
}

#[test]
fn open_call_holds_a_bond_and_fills_up() {
	new_test_ext().execute_with(|| {
		post_job(JOB, CREATOR);
		let mut plain = spec(Admission::Open { bond: 500 });
		plain.rule = AggregationRule::Median;
		assert_ok!(Federated::create(RuntimeOrigin::signed(CREATOR), JOB, plain));
		for p in P..P + 8 {
			assert_ok!(Federated::join(RuntimeOrigin::signed(p), JOB));
			assert_eq!(Balances::balance_on_hold(&HoldReason::ParticipantBond.into(), &p), 500);
		}
		assert_noop!(Federated::join(RuntimeOrigin::signed(P + 8), JOB), Error::<Test>::JobFull);
		assert_noop!(Federated::join(RuntimeOrigin::signed(1), JOB + 9), Error::<Test>::UnknownJob);
	});
}

#[test]
fn a_secure_job_admits_fewer_than_twice_its_threshold() {
	new_test_ext().execute_with(|| {
		created(Admission::Open { bond: 500 }); // threshold 3: at most 5
		for p in P..P + 5 {
			assert_ok!(Federated::join(RuntimeOrigin::signed(p), JOB));
		}
		assert_noop!(Federated::join(RuntimeOrigin::signed(P + 5), JOB), Error::<Test>::JobFull);
	});
}

#[test]
fn only_the_aggregator_records_rounds_in_order() {
	new_test_ext().execute_with(|| {
		joined_and_claimed(4);
		let endpoint: BoundedVec<u8, MaxEndpointLen> =
			b"http://127.0.0.1:9999".to_vec().try_into().unwrap();
		assert_noop!(
			Federated::set_endpoint(RuntimeOrigin::signed(P), JOB, endpoint.clone()),
			Error::<Test>::NotAggregator
		);
		assert_ok!(Federated::set_endpoint(RuntimeOrigin::signed(AGGREGATOR), JOB, endpoint));

		let record = |who, round, c: &[ParticipantIndex]| {
			Federated::record_round(RuntimeOrigin::signed(who), JOB, round, cid(), contributors(c))
		};
		assert_noop!(record(P, 0, &[0, 1, 2]), Error::<Test>::NotAggregator);
		assert_noop!(record(AGGREGATOR, 1, &[0, 1, 2]), Error::<Test>::WrongRound);
		assert_noop!(record(AGGREGATOR, 0, &[0, 1]), Error::<Test>::BadContributors);
		assert_noop!(record(AGGREGATOR, 0, &[0, 2, 1]), Error::<Test>::BadContributors);
		assert_noop!(record(AGGREGATOR, 0, &[0, 1, 4]), Error::<Test>::BadContributors);
		assert_noop!(record(AGGREGATOR, 0, &[0, 0, 1]), Error::<Test>::BadContributors);

		assert_noop!(Federated::may_commit(JOB), Error::<Test>::RoundsUnfinished);
		assert_ok!(record(AGGREGATOR, 0, &[0, 1, 2, 3]));
		assert_eq!(Rounds::<Test>::get(JOB, 0).unwrap().contributors.len(), 4);
		// Once the aggregator holds the job nobody joins.
		assert_noop!(
			Federated::join(RuntimeOrigin::signed(P + 7), JOB),
			Error::<Test>::JoinsClosed
		);
		assert_ok!(record(AGGREGATOR, 1, &[0, 2, 3]));
		assert_noop!(Federated::may_commit(JOB), Error::<Test>::RoundsUnfinished);
		assert_ok!(record(AGGREGATOR, 2, &[1, 2, 3]));
		System::assert_last_event(
			Event::RoundRecorded { job: JOB, round: 2, aggregate: cid(), contributors: 3 }.into(),
		);
		assert_noop!(record(AGGREGATOR, 3, &[1, 2, 3]), Error::<Test>::AllRoundsDone);
		assert_ok!(Federated::may_commit(JOB));
		// Jobs that are not federated are not gated.
		assert_ok!(Federated::may_commit(JOB + 1));
	});
}

#[test]
fn close_releases_bonds_and_refunds_epsilon_only_if_nothing_ran() {
	new_test_ext().execute_with(|| {
		created(Admission::Open { bond: 500 });
		for p in P..P + 3 {
			assert_ok!(Federated::join(RuntimeOrigin::signed(p), JOB));
		}
		assert_noop!(
			Federated::close(RuntimeOrigin::signed(CREATOR), JOB),
			Error::<Test>::JobStillLive
		);
		end_job(JOB); // cancelled before any round
		assert_noop!(
			Federated::join(RuntimeOrigin::signed(P + 3), JOB),
			Error::<Test>::JoinsClosed
		);
		assert_ok!(Federated::close(RuntimeOrigin::signed(P + 5), JOB));
		for p in P..P + 3 {
			assert_eq!(Balances::balance_on_hold(&HoldReason::ParticipantBond.into(), &p), 0);
			assert_eq!(PrivacySpent::<Test>::get(p), 0);
		}
		assert!(Jobs::<Test>::get(JOB).is_none());

		// A job an aggregator served keeps the ε spent, even with no round recorded.
		joined_and_claimed(3);
		let endpoint: BoundedVec<u8, MaxEndpointLen> = b"http://a".to_vec().try_into().unwrap();
		assert_ok!(Federated::set_endpoint(RuntimeOrigin::signed(AGGREGATOR), JOB, endpoint));
		end_job(JOB);
		assert_ok!(Federated::close(RuntimeOrigin::signed(CREATOR), JOB));
		assert_eq!(PrivacySpent::<Test>::get(P), 9_838);
		// And so does one whose rounds ran.
		for p in P..P + 3 {
			PrivacySpent::<Test>::remove(p);
		}
		joined_and_claimed(3);
		assert_ok!(Federated::record_round(
			RuntimeOrigin::signed(AGGREGATOR),
			JOB,
			0,
			cid(),
			contributors(&[0, 1, 2])
		));
		end_job(JOB);
		assert_ok!(Federated::close(RuntimeOrigin::signed(CREATOR), JOB));
		System::assert_last_event(Event::Closed { job: JOB, epsilon_refunded: false }.into());
		assert_eq!(PrivacySpent::<Test>::get(P), 9_838);
		assert!(Rounds::<Test>::get(JOB, 0).is_none());
	});
}
