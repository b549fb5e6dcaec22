//! Native tests of the runtime as configured: genesis presets, BLY supply, fees, staking.

use crate::{
	configs::accounts, currency::*, genesis_config_presets as presets, AccountId, Balances,
	Executive, Runtime, RuntimeCall, RuntimeEvent, RuntimeGenesisConfig, SignedPayload, System,
	UncheckedExtrinsic,
};
use codec::Encode;
use frame_support::traits::fungible::Inspect;
use sp_consensus_babe::{
	digests::{CompatibleDigestItem, PreDigest, SecondaryPlainPreDigest, SecondaryVRFPreDigest},
	Slot,
};
use sp_keyring::Sr25519Keyring;
use sp_runtime::{generic::DigestItem, traits::Header as _, BuildStorage};

/// Deep-merges a genesis preset patch into the default genesis config, as the node does.
fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
	match (base, patch) {
		(serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
			for (k, v) in patch {
				merge(base.entry(k).or_insert(serde_json::Value::Null), v);
			}
		}
		(base, patch) => *base = patch,
	}
}

fn genesis(preset: &str) -> sp_io::TestExternalities {
	let patch = presets::get_preset(&preset.into()).expect("preset exists");
	let patch: serde_json::Value = serde_json::from_slice(&patch).expect("preset is json");
	let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).expect("default config");
	merge(&mut config, patch);
	let config: RuntimeGenesisConfig =
		serde_json::from_value(config).expect("valid genesis config");
	let storage = config.build_storage().expect("genesis storage builds");
	storage.into()
}

/// Starts block `n` authored in `slot` by authority `slot % validators` (a BABE secondary slot
/// without a VRF output: these tests are not about randomness).
fn start_block(n: u32, slot: u64) {
	let authorities = pallet_session::Validators::<Runtime>::get().len() as u64;
	let pre_digest = PreDigest::SecondaryPlain(SecondaryPlainPreDigest {
		authority_index: (slot % authorities) as u32,
		slot: Slot::from(slot),
	});
	start_block_with(n, slot, System::parent_hash(), pre_digest);
}

fn start_block_with(n: u32, slot: u64, parent: crate::Hash, pre_digest: PreDigest) {
	// Several tests start blocks without finalizing the one before; BABE initializes a block
	// (reads its slot) only once, until `on_finalize` clears this.
	pallet_babe::Initialized::<Runtime>::kill();
	let digest = sp_runtime::Digest { logs: vec![DigestItem::babe_pre_digest(pre_digest)] };
	let header = crate::Header::new(n, Default::default(), Default::default(), parent, digest);
	Executive::initialize_block(&header);
	pallet_timestamp::Pallet::<Runtime>::set_timestamp(slot * crate::time::SLOT_DURATION);
}

/// Starts block `n` in `slot` as `author` would on the node: a secondary slot whose pre-digest
/// carries the author's VRF output for this slot and epoch, signed with its BABE key.
fn start_vrf_block(n: u32, slot: u64, parent: crate::Hash, author: Sr25519Keyring) {
	use sp_core::crypto::{VrfSecret, Wraps};
	let authorities = pallet_babe::Authorities::<Runtime>::get();
	let authority_index = authorities
		.iter()
		.position(|(id, _)| *id.as_inner_ref() == author.public())
		.expect("the author is a BABE authority") as u32;
	let sign_data = sp_consensus_babe::make_vrf_sign_data(
		&pallet_babe::Randomness::<Runtime>::get(),
		Slot::from(slot),
		pallet_babe::EpochIndex::<Runtime>::get(),
	);
	let vrf_signature = author.pair().vrf_sign(&sign_data);
	start_block_with(
		n,
		slot,
		parent,
		PreDigest::SecondaryVRF(SecondaryVRFPreDigest {
			authority_index,
			slot: Slot::from(slot),
			vrf_signature,
		}),
	);
}

fn signed(
	signer: Sr25519Keyring,
	nonce: u32,
	call: RuntimeCall,
	tip: Balance,
) -> UncheckedExtrinsic {
	let tx_ext = crate::tx_extension(nonce, tip);
	let payload = SignedPayload::new(call.clone(), tx_ext.clone()).expect("implicit data");
	let signature = payload.using_encoded(|p| signer.sign(p));
	UncheckedExtrinsic::new_signed(call, signer.to_account_id().into(), signature.into(), tx_ext)
}

type Balance = crate::Balance;

fn free(who: &AccountId) -> Balance {
	<Balances as Inspect<AccountId>>::balance(who)
}

#[test]
fn every_preset_builds_and_issues_exactly_one_billion_bly() {
	for preset in presets::preset_names() {
		let name = core::str::from_utf8(preset.as_ref()).unwrap().to_owned();
		genesis(&name).execute_with(|| {
			assert_eq!(pallet_balances::TotalIssuance::<Runtime>::get(), GENESIS_SUPPLY, "{name}");
			assert_eq!(GENESIS_SUPPLY, 1_000_000_000 * BLY);
		});
	}
}

#[test]
fn genesis_allocation_is_split_40_20_15_25() {
	genesis("local_testnet").execute_with(|| {
		let pct = |p: u128| GENESIS_SUPPLY / 100 * p;
		assert_eq!(free(&accounts::mining_pool()), pct(40));
		assert_eq!(free(&accounts::foundation()), pct(20));
		assert_eq!(free(&accounts::team()), pct(15));
		// Development accounts are paid from the community share; together they are 25 %.
		let dev: Balance = presets::dev_accounts()
			.iter()
			.map(|a| {
				// Validators' bonds are held, not spent: the total balance still counts them.
				<Balances as Inspect<AccountId>>::total_balance(a)
			})
			.sum();
		assert_eq!(free(&accounts::community()) + dev, pct(25));
	});
}

#[test]
fn local_preset_has_no_sudo_and_dev_preset_has_alice() {
	genesis("local_testnet").execute_with(|| assert_eq!(pallet_sudo::Key::<Runtime>::get(), None));
	genesis("development").execute_with(|| {
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(Sr25519Keyring::Alice.to_account_id()))
	});
}

#[test]
fn staking_elects_the_genesis_validators() {
	genesis("local_testnet").execute_with(|| {
		let expected: Vec<AccountId> =
			[Sr25519Keyring::Alice, Sr25519Keyring::Bob, Sr25519Keyring::Charlie]
				.iter()
				.map(|k| k.to_account_id())
				.collect();
		let mut session = pallet_session::Validators::<Runtime>::get();
		session.sort();
		let mut want = expected.clone();
		want.sort();
		assert_eq!(session, want);
		assert_eq!(pallet_babe::Authorities::<Runtime>::get().len(), 3);
		assert_eq!(pallet_grandpa::Pallet::<Runtime>::grandpa_authorities().len(), 3);
		for v in &expected {
			assert!(pallet_staking::Validators::<Runtime>::contains_key(v));
			assert_eq!(
				pallet_staking::Ledger::<Runtime>::get(v).map(|l| l.active),
				Some(presets::VALIDATOR_BOND)
			);
		}

		// Roll sessions until staking plans the next era: the election must pick the same three.
		// (BABE changes epochs with sessions, inside a block.)
		start_block(1, 1);
		let era_before = pallet_staking::CurrentEra::<Runtime>::get().unwrap_or(0);
		for _ in 0..crate::time::SESSIONS_PER_ERA {
			pallet_session::Pallet::<Runtime>::rotate_session();
		}
		let era_after = pallet_staking::CurrentEra::<Runtime>::get().unwrap_or(0);
		assert!(era_after > era_before, "a new era was planned");
		let mut elected: Vec<AccountId> =
			pallet_staking::ErasStakersOverview::<Runtime>::iter_key_prefix(era_after).collect();
		elected.sort();
		assert_eq!(elected, want);
	});
}

#[test]
fn transfer_pays_a_fee_that_is_split_between_burn_and_block_author() {
	genesis("local_testnet").execute_with(|| {
		// Slot 1 of three authorities (sorted by session order) → the author is the second.
		let authors = pallet_session::Validators::<Runtime>::get();
		let slot = 1u64;
		let author = authors[(slot as usize) % authors.len()].clone();
		start_block(1, slot);

		let dave = Sr25519Keyring::Dave;
		let eve = Sr25519Keyring::Eve.to_account_id();
		let (dave_before, eve_before, author_before) =
			(free(&dave.to_account_id()), free(&eve), free(&author));
		let issuance_before = pallet_balances::TotalIssuance::<Runtime>::get();

		let amount = 1_234 * BLY;
		let tip = 7 * MILLI_BLY;
		let call = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
			dest: eve.clone().into(),
			value: amount,
		});
		let xt = signed(dave, 0, call, tip);
		Executive::apply_extrinsic(xt).expect("valid").expect("dispatched");

		let fee_paid = System::events()
			.into_iter()
			.find_map(|r| match r.event {
				RuntimeEvent::TransactionPayment(
					pallet_transaction_payment::Event::TransactionFeePaid {
						actual_fee, tip, ..
					},
				) => Some((actual_fee, tip)),
				_ => None,
			})
			.expect("fee event");
		let (actual_fee, paid_tip) = fee_paid;
		assert_eq!(paid_tip, tip);
		let base_fee = actual_fee - tip;
		assert!(base_fee > 0);

		let burned = base_fee * FEE_BURN_PERCENT as u128 / 100;
		assert_eq!(free(&eve), eve_before + amount);
		assert_eq!(free(&dave.to_account_id()), dave_before - amount - actual_fee);
		assert_eq!(free(&author), author_before + (actual_fee - burned));
		assert_eq!(pallet_balances::TotalIssuance::<Runtime>::get(), issuance_before - burned);
	});
}

#[test]
fn grandpa_equivocation_is_reported_as_an_offence_and_the_validator_slashed() {
	use frame_support::{dispatch::GetDispatchInfo, traits::KeyOwnerProofSystem};
	use sp_consensus_grandpa::{Equivocation, EquivocationProof, KEY_TYPE};
	use sp_keyring::Ed25519Keyring;
	use sp_runtime::traits::Dispatchable;

	genesis("local_testnet").execute_with(|| {
		start_block(1, 1);
		let offender = Ed25519Keyring::Charlie;
		let stash = Sr25519Keyring::Charlie.to_account_id();
		let set_id = pallet_grandpa::CurrentSetId::<Runtime>::get();
		let round = 1;

		// Charlie prevotes for two different blocks in the same round: an equivocation.
		let signed_prevote = |byte: u8| {
			let prevote = finality_grandpa::Prevote {
				target_hash: sp_core::H256::repeat_byte(byte),
				target_number: 1u32,
			};
			let payload = sp_consensus_grandpa::localized_payload(
				round,
				set_id,
				&finality_grandpa::Message::<sp_core::H256, u32>::Prevote(prevote.clone()),
			);
			(prevote, offender.sign(&payload).into())
		};
		let report = || {
			let equivocation_proof = EquivocationProof::new(
				set_id,
				Equivocation::Prevote(finality_grandpa::Equivocation {
					round_number: round,
					identity: offender.public().into(),
					first: signed_prevote(1),
					second: signed_prevote(2),
				}),
			);
			let key_owner_proof = crate::Historical::prove((
				KEY_TYPE,
				sp_consensus_grandpa::AuthorityId::from(offender.public()),
			))
			.expect("charlie holds a grandpa key this session");
			RuntimeCall::Grandpa(pallet_grandpa::Call::report_equivocation_unsigned {
				equivocation_proof: Box::new(equivocation_proof),
				key_owner_proof,
			})
		};
		let call = report();
		assert!(call.get_dispatch_info().call_weight.ref_time() > 0);
		call.dispatch(crate::RuntimeOrigin::none()).expect("valid equivocation report");

		let events: Vec<RuntimeEvent> = System::events().into_iter().map(|r| r.event).collect();
		assert!(
			events.iter().any(|e| matches!(
				e,
				RuntimeEvent::Offences(pallet_offences::Event::Offence { .. })
			)),
			"offence recorded: {events:?}"
		);
		assert!(
			events.iter().any(|e| matches!(
				e,
				RuntimeEvent::Staking(pallet_staking::Event::SlashReported { validator, fraction, .. })
					if *validator == stash && !fraction.is_zero()
			)),
			"slash reported: {events:?}"
		);
		// The slash is deferred by SlashDeferDuration eras so governance can cancel an unjust one.
		let defer = <Runtime as pallet_staking::Config>::SlashDeferDuration::get();
		let unapplied = pallet_staking::UnappliedSlashes::<Runtime>::get(defer + 1);
		let slash = unapplied.iter().find(|s| s.validator == stash).expect("slash scheduled");
		assert!(slash.own > 0 && slash.own <= presets::VALIDATOR_BOND);

		// The same report again is refused: an offence is punished once.
		let replay = report();
		assert!(replay.dispatch(crate::RuntimeOrigin::none()).is_err());
	});
}

mod governance {
	use super::*;
	use crate::configs::{
		governance::{TEAM_VESTING_CLIFF, TEAM_VESTING_LENGTH},
		parameters::{
			dev_audit_params, AuditDefaults, FreeTierDefaults, InferenceDefaults, JobDefaults,
			PolDefaults, DEV_TIMINGS,
		},
	};
	use crate::{Governance, RuntimeOrigin};
	use frame_support::{assert_noop, assert_ok};
	use pallet_governance::Parameter as P;

	/// Every default of the protocol pallets, as the parameter governance would set it.
	fn defaults() -> Vec<pallet_governance::Parameter<Balance, crate::BlockNumber>> {
		let j = JobDefaults::get();
		let p = PolDefaults::get();
		let f = FreeTierDefaults::get();
		let a = AuditDefaults::get();
		let i = InferenceDefaults::get();
		let dev = dev_audit_params();
		vec![
			P::InferenceCheckRate(i.check_rate),
			P::InferenceChallengeBond(i.challenge_bond),
			P::InferenceArbiters(i.arbiters),
			P::InferenceArbitrationWindow(i.arbitration_window),
			P::ServerFraudSlash(i.fraud_slash),
			P::InferenceChallengerShare(i.challenger_share),
			P::InferenceArbiterFee(i.arbiter_fee),
			P::CheckpointInterval(a.checkpoint_interval),
			P::SpotChecks(a.spot_checks),
			P::AuditDrawDelay(a.draw_delay),
			P::ChallengeWindow(a.challenge_window),
			P::ChallengeWindow(dev.challenge_window),
			P::DisputeMoveWindow(a.move_window),
			P::DisputeMoveWindow(dev.move_window),
			P::Arbiters(a.arbiters),
			P::ChallengeBond(a.challenge_bond),
			P::FraudSlash(a.fraud_slash),
			P::MinImprovement(j.min_improvement),
			P::MinJobReward(j.min_reward),
			P::MinWorkerBond(j.min_worker_bond),
			P::WorkerUnbondingPeriod(j.unbonding_period),
			P::MaxLease(j.max_lease),
			P::ResultRevealWindow(j.reveal_window),
			P::LeaseSlash(j.lease_slash),
			P::CommitteeSize(p.committee_size),
			P::CommitteeDrawDelay(p.draw_delay),
			P::VerifierCommitWindow(p.commit_window),
			P::VerifierRevealWindow(p.reveal_window),
			P::VerifierFee(p.verifier_fee),
			P::DatasetShare(p.dataset_share),
			P::MinerSlash(p.miner_slash),
			P::VerifierPenalty(p.verifier_penalty),
			P::MinVerifierBond(p.min_verifier_bond),
			P::VerifierUnbondingPeriod(p.unbonding_period),
			P::EpochLength(p.epoch_length),
			P::EpochBudget(p.epoch_budget),
			P::MinDailyQuota(f.min_daily_quota),
			P::MaxDailyQuota(f.max_daily_quota),
			P::PowDifficulty(f.pow_difficulty),
			P::PowWindow(f.pow_window),
			P::MaxFreePerBlock(f.max_free_per_block),
			P::PreparePeriod(DEV_TIMINGS.prepare_period),
			P::DecisionPeriod(DEV_TIMINGS.decision_period),
			P::ConfirmPeriod(DEV_TIMINGS.confirm_period),
			P::MinEnactmentPeriod(DEV_TIMINGS.min_enactment_period),
		]
	}

	#[test]
	fn every_default_is_within_its_bounds_and_every_parameter_is_governable() {
		genesis("local_testnet").execute_with(|| {
			for p in defaults() {
				assert_ok!(Governance::check_bounds(&p));
			}
			assert_eq!(
				Governance::parameter_bounds().len(),
				pallet_governance::ParameterKind::ALL.len()
			);
		});
	}

	#[test]
	fn a_parameter_change_reaches_the_pallet_and_out_of_range_is_refused() {
		genesis("development").execute_with(|| {
			System::set_block_number(1);
			let admin = || RuntimeOrigin::from(pallet_governance::Origin::ParameterAdmin);
			assert_ok!(Governance::set_parameter(
				admin(),
				P::MinImprovement(sp_runtime::Perbill::from_percent(2))
			));
			assert_eq!(
				pallet_jobs::Params::<Runtime>::get().min_improvement,
				sp_runtime::Perbill::from_percent(2)
			);
			// The dev chain's short audit windows, then one changed by governance.
			assert_eq!(pallet_training_audit::Params::<Runtime>::get(), dev_audit_params());
			assert_ok!(Governance::set_parameter(admin(), P::CheckpointInterval(5)));
			assert_eq!(pallet_training_audit::Params::<Runtime>::get().checkpoint_interval, 5);
			// The inference checks' rate, and the pallet's own range check behind the bounds.
			let rate = sp_runtime::Perbill::from_percent(10);
			assert_ok!(Governance::set_parameter(admin(), P::InferenceCheckRate(rate)));
			assert_eq!(pallet_inference::Params::<Runtime>::get().check_rate, rate);
			assert_noop!(
				Governance::set_parameter(admin(), P::InferenceArbiters(0)),
				pallet_governance::Error::<Runtime>::BelowMinimum
			);
			assert_noop!(
				Governance::set_parameter(admin(), P::CommitteeSize(17)),
				pallet_governance::Error::<Runtime>::AboveMaximum
			);
			// The bounds (≤ 50 % each) keep fee + share within the escrow.
			assert_ok!(Governance::set_parameter(
				admin(),
				P::VerifierFee(sp_runtime::Perbill::from_percent(50))
			));
			assert_noop!(
				Governance::set_parameter(
					admin(),
					P::DatasetShare(sp_runtime::Perbill::from_percent(51))
				),
				pallet_governance::Error::<Runtime>::AboveMaximum
			);
			assert_noop!(
				Governance::set_parameter(
					RuntimeOrigin::signed(Sr25519Keyring::Alice.to_account_id()),
					P::CommitteeSize(5)
				),
				sp_runtime::DispatchError::BadOrigin
			);
		});
	}

	#[test]
	fn dev_preset_has_short_referenda_and_local_the_long_defaults() {
		genesis("development").execute_with(|| assert_eq!(Governance::timings(), DEV_TIMINGS));
		genesis("local_testnet").execute_with(|| {
			assert_eq!(Governance::timings().decision_period, 7 * crate::time::DAYS)
		});
	}

	#[test]
	fn tracks_follow_the_governed_timings() {
		use pallet_referenda::TracksInfo;
		genesis("development").execute_with(|| {
			let tracks: Vec<_> = crate::configs::governance::BlyanTracks::tracks().collect();
			assert_eq!(tracks.len(), 2);
			assert!(tracks.iter().all(|t| t.info.decision_period == DEV_TIMINGS.decision_period));
			assert_ok!(crate::configs::governance::BlyanTracks::check_integrity());
			assert_ok!(Governance::set_parameter(RuntimeOrigin::root(), P::DecisionPeriod(40)));
			assert!(crate::configs::governance::BlyanTracks::tracks()
				.all(|t| t.info.decision_period == 40));
			// The parameters track cannot touch the root track's periods.
			assert_noop!(
				Governance::set_parameter(
					RuntimeOrigin::from(pallet_governance::Origin::ParameterAdmin),
					P::DecisionPeriod(20)
				),
				pallet_governance::Error::<Runtime>::RootOnly
			);
		});
	}

	#[test]
	fn team_allocation_is_locked_until_the_cliff_then_vests_linearly() {
		use frame_support::traits::fungible::Inspect;
		genesis("local_testnet").execute_with(|| {
			let team = accounts::team();
			let bob = Sr25519Keyring::Bob.to_account_id();
			let allocation = GENESIS_SUPPLY / 100 * TEAM_PERCENT;
			let force = |amount| {
				pallet_balances::Pallet::<Runtime>::force_transfer(
					RuntimeOrigin::root(),
					team.clone().into(),
					bob.clone().into(),
					amount,
				)
			};
			// Even a referendum (root) cannot move a locked planck before the cliff.
			System::set_block_number(TEAM_VESTING_CLIFF);
			assert_ok!(pallet_vesting::Pallet::<Runtime>::vest_other(
				RuntimeOrigin::signed(bob.clone()),
				team.clone().into()
			));
			assert!(force(BLY).is_err());
			// Halfway through the linear part, half has vested.
			System::set_block_number(TEAM_VESTING_CLIFF + TEAM_VESTING_LENGTH / 2);
			assert_ok!(pallet_vesting::Pallet::<Runtime>::vest_other(
				RuntimeOrigin::signed(bob.clone()),
				team.clone().into()
			));
			let spendable = <Balances as Inspect<AccountId>>::reducible_balance(
				&team,
				frame_support::traits::tokens::Preservation::Expendable,
				frame_support::traits::tokens::Fortitude::Polite,
			);
			let half = allocation / 2;
			assert!(spendable.abs_diff(half) <= allocation / TEAM_VESTING_LENGTH as u128 + 1);
			assert_ok!(force(spendable));
			assert!(force(BLY).is_err());
		});
	}

	#[test]
	fn a_runtime_upgrade_of_the_largest_preimage_fits_what_the_scheduler_may_enact() {
		use frame_support::dispatch::GetDispatchInfo;
		use pallet_scheduler::WeightInfo as _;
		type W = pallet_scheduler::weights::SubstrateWeight<Runtime>;
		let call = RuntimeCall::System(frame_system::Call::set_code { code: vec![] });
		let largest = pallet_preimage::MAX_SIZE;
		let needed = W::service_agendas_base()
			.saturating_add(W::service_agenda_base(50))
			.saturating_add(W::service_task_fetched(largest))
			.saturating_add(W::execute_dispatch_unsigned())
			.saturating_add(call.get_dispatch_info().call_weight);
		let limit = crate::configs::governance::MaximumSchedulerWeight::get();
		assert!(needed.all_lte(limit), "set_code needs {needed:?}, the scheduler allows {limit:?}");
	}
}

/// BLY economics over many random epochs: issuance moves only by minted inflation (at the
/// governed rate and split), burned fees and slashes; no account is left as dust.
mod economics {
	use super::*;
	use crate::{RuntimeOrigin, Staking};
	use frame_support::{assert_ok, traits::Hooks};
	use proptest::prelude::*;
	use sp_runtime::Perbill;

	const YEAR_MILLIS: u64 = 1_000 * 3_600 * 24 * 36_525 / 100;

	#[derive(Debug, Clone)]
	struct Epoch {
		inflation_percent: u32,
		validator_percent: u32,
		hours: u64,
		// (from, to, milli-BLY, tip in micro-BLY)
		transfers: Vec<(usize, usize, u64, u64)>,
	}

	fn epoch() -> impl Strategy<Value = Epoch> {
		(
			0u32..=20,
			0u32..=100,
			1u64..=72,
			proptest::collection::vec((0usize..6, 0usize..6, 1u64..5_000_000, 0u64..10_000), 0..4),
		)
			.prop_map(|(inflation_percent, validator_percent, hours, transfers)| Epoch {
				inflation_percent,
				validator_percent,
				hours,
				transfers,
			})
	}

	fn issuance() -> Balance {
		pallet_balances::TotalIssuance::<Runtime>::get()
	}

	fn run(epochs: Vec<Epoch>) {
		genesis("local_testnet").execute_with(|| {
			let keys = Sr25519Keyring::well_known().take(6).collect::<Vec<_>>();
			let validators = pallet_session::Validators::<Runtime>::get();
			let mut nonces = vec![0u32; keys.len()];
			let mut now_ms: u64 = 1_000;
			let mut block = 1u32;
			start_block(block, now_ms / crate::time::SLOT_DURATION);
			Staking::on_finalize(block); // the first era starts now
			for e in epochs {
				let before = issuance();
				// Written directly: this test is about the split of inflation, and governance
				// moves these root-only parameters at most ×2 a week.
				pallet_governance::Economics::<Runtime>::put(pallet_governance::EconomicsParams {
					annual_inflation: Perbill::from_percent(e.inflation_percent),
					validator_share: Perbill::from_percent(e.validator_percent),
				});

				// Fees: the signer pays, the base fee is burned (`FEE_BURN_PERCENT`), the rest
				// and tips go to the author.
				let mut burned: Balance = 0;
				for (from, to, milli, tip) in &e.transfers {
					let call = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
						dest: keys[*to].to_account_id().into(),
						value: *milli as Balance * MILLI_BLY,
					});
					let xt = signed(keys[*from], nonces[*from], call, *tip as Balance * MICRO_BLY);
					nonces[*from] += 1;
					Executive::apply_extrinsic(xt).expect("valid").expect("dispatched");
				}
				for r in System::events() {
					if let RuntimeEvent::TransactionPayment(
						pallet_transaction_payment::Event::TransactionFeePaid {
							actual_fee,
							tip,
							..
						},
					) = r.event
					{
						burned += (actual_fee - tip) * FEE_BURN_PERCENT as u128 / 100;
					}
				}
				assert_eq!(
					issuance(),
					before - burned,
					"fees burn exactly FEE_BURN_PERCENT of base fees"
				);

				// The era runs `hours`; validators earn points, then sessions roll to the next era.
				for v in &validators {
					<Staking as pallet_authorship::EventHandler<AccountId, u32>>::note_author(
						v.clone(),
					);
				}
				now_ms += e.hours * 3_600_000;
				pallet_timestamp::Now::<Runtime>::put(now_ms);
				let era = pallet_staking::ActiveEra::<Runtime>::get().unwrap();
				let era_start = era.start.expect("era started");
				let at_era_end = issuance();
				for _ in 0..=2 * crate::time::SESSIONS_PER_ERA {
					if pallet_staking::ActiveEra::<Runtime>::get().unwrap().index != era.index {
						break;
					}
					pallet_session::Pallet::<Runtime>::rotate_session();
				}
				let (validator_payout, remainder) = System::events()
					.into_iter()
					.find_map(|r| match r.event {
						RuntimeEvent::Staking(pallet_staking::Event::EraPaid {
							validator_payout,
							remainder,
							..
						}) => Some((validator_payout, remainder)),
						_ => None,
					})
					.expect("era paid");
				// Minted = rate × issuance × share of a year, split as governed.
				let share_of_year = Perbill::from_rational(now_ms - era_start, YEAR_MILLIS);
				let minted =
					share_of_year * (Perbill::from_percent(e.inflation_percent) * at_era_end);
				assert_eq!(validator_payout + remainder, minted);
				assert_eq!(validator_payout, Perbill::from_percent(e.validator_percent) * minted);

				// Validators claim their share.
				let mut rewarded: Balance = 0;
				for v in &validators {
					assert_ok!(Staking::payout_stakers(
						RuntimeOrigin::signed(keys[0].to_account_id()),
						v.clone(),
						era.index
					));
				}
				for r in System::events() {
					if let RuntimeEvent::Staking(pallet_staking::Event::Rewarded {
						amount, ..
					}) = r.event
					{
						rewarded += amount;
					}
				}
				// A validator's share is a `Perbill` of its points times the payout, rounded to the
				// nearest planck. The points here (20 a validator, 20 a block authored) split in
				// halves, quarters or fifths, which a `Perbill` holds exactly: at most a planck
				// per validator either way.
				assert!(rewarded.abs_diff(validator_payout) <= validators.len() as Balance);
				assert_eq!(issuance(), before - burned + remainder + rewarded);

				// No account left between zero and the existential deposit.
				for (who, info) in frame_system::Account::<Runtime>::iter() {
					let total = info.data.free + info.data.reserved;
					assert!(total == 0 || total >= EXISTENTIAL_DEPOSIT, "{who:?} holds dust");
				}

				block += 1;
				start_block(block, now_ms / crate::time::SLOT_DURATION);
				Staking::on_finalize(block);
				// BABE saw hours of slots pass and ended the epoch (a session) in that block,
				// which takes the whole block's weight: the next transfers go in the next one.
				block += 1;
				now_ms += crate::time::SLOT_DURATION;
				start_block(block, now_ms / crate::time::SLOT_DURATION);
				Staking::on_finalize(block);
			}
		});
	}

	proptest! {
		#![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
		#[test]
		fn issuance_grows_exactly_by_inflation_less_burns(epochs in proptest::collection::vec(epoch(), 1..5)) {
			run(epochs);
		}
	}
}

mod free_tier {
	use super::*;
	use crate::{FreeTier, Governance, RuntimeOrigin};
	use frame_support::assert_ok;
	use pallet_governance::Parameter as P;
	use sp_runtime::transaction_validity::{
		InvalidTransaction, TransactionSource, TransactionValidityError,
	};

	fn ask() -> RuntimeCall {
		RuntimeCall::FreeTier(pallet_free_tier::Call::request {
			request: pallet_free_tier::FreeRequest {
				version: 0,
				prompt_hash: sp_core::H256::repeat_byte(9),
				max_tokens: 32,
			},
			seal: None,
		})
	}

	#[test]
	fn a_free_request_within_quota_pays_nothing_and_beyond_it_never_reaches_a_block() {
		genesis("local_testnet").execute_with(|| {
			start_block(1, 1);
			// Eve holds 1 M BLY (20 trust points); with a day's quota of at most 6 she gets 6.
			assert_ok!(Governance::set_parameter(RuntimeOrigin::root(), P::MaxDailyQuota(10)));
			let eve = Sr25519Keyring::Eve;
			assert_eq!(FreeTier::trust_score(&eve.to_account_id()), 20);
			let before = free(&eve.to_account_id());
			let issuance = pallet_balances::TotalIssuance::<Runtime>::get();
			for nonce in 0..6 {
				Executive::apply_extrinsic(signed(eve, nonce, ask(), 0))
					.expect("valid")
					.expect("dispatched");
			}
			assert_eq!(free(&eve.to_account_id()), before, "no fee");
			assert_eq!(pallet_balances::TotalIssuance::<Runtime>::get(), issuance);
			// The seventh: refused by the pool and by the block builder alike.
			let seventh = signed(eve, 6, ask(), 0);
			let quota_spent = TransactionValidityError::Invalid(InvalidTransaction::Custom(
				pallet_free_tier::codes::QUOTA_EXHAUSTED,
			));
			assert_eq!(
				Executive::validate_transaction(
					TransactionSource::External,
					seventh.clone(),
					System::parent_hash()
				),
				Err(quota_spent)
			);
			assert_eq!(Executive::apply_extrinsic(seventh), Err(quota_spent));
			// Other calls still pay.
			let remark = RuntimeCall::System(frame_system::Call::remark { remark: vec![1] });
			Executive::apply_extrinsic(signed(eve, 6, remark, 0))
				.expect("valid")
				.expect("dispatched");
			assert!(free(&eve.to_account_id()) < before);
		});
	}
}

/// The registry's deposits at the runtime's rates are what docs/protocol.md states: a
/// 28-layer model (Qwen3-0.6B's blocks) about 3 BLY, one of 512 layers about 50, an account's
/// first dataset about 0.35; and the nonce entry's deposit is 0.108 BLY.
#[test]
fn registry_and_nonce_deposits_are_what_the_docs_say() {
	use blyan_primitives::pol::{Cid, LayerDelta, LayerDeltas, SemVer};
	use frame_support::traits::fungible::InspectHold;
	use pallet_model_registry::{Architecture, HoldReason, ShortText};
	let cid = || -> Cid {
		b"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".to_vec().try_into().unwrap()
	};
	let text = |t: &[u8]| -> ShortText { t.to_vec().try_into().unwrap() };
	let held = |who: &AccountId| {
		Balances::balance_on_hold(
			&crate::RuntimeHoldReason::Registry(HoldReason::StorageDeposit),
			who,
		)
	};
	genesis("development").execute_with(|| {
		start_block(1, 1);
		let register = |who: Sr25519Keyring, layers: u16| {
			let deltas: LayerDeltas = (0..layers)
				.map(|layer| LayerDelta { layer, cid: cid(), merkle_root: Default::default() })
				.collect::<Vec<_>>()
				.try_into()
				.unwrap();
			pallet_model_registry::Pallet::<Runtime>::register_model(
				crate::RuntimeOrigin::signed(who.to_account_id()),
				text(b"Qwen3-0.6B"),
				Architecture {
					family: text(b"qwen3"),
					config_hash: Default::default(),
					config_cid: cid(),
					layer_count: layers,
				},
				text(b"Apache-2.0"),
				SemVer::new(1, 0, 0),
				deltas,
				Default::default(),
			)
			.expect("model registers");
			held(&who.to_account_id())
		};
		let small = register(Sr25519Keyring::Bob, 28);
		assert!((2_500 * MILLI_BLY..3_500 * MILLI_BLY).contains(&small), "{small}");
		let large = register(Sr25519Keyring::Charlie, 512);
		assert!((45 * BLY..55 * BLY).contains(&large), "{large}");
		pallet_model_registry::Pallet::<Runtime>::register_dataset(
			crate::RuntimeOrigin::signed(Sr25519Keyring::Dave.to_account_id()),
			cid(),
			Default::default(),
			1 << 30,
			text(b"CC-BY-4.0"),
		)
		.expect("dataset registers");
		let dataset = held(&Sr25519Keyring::Dave.to_account_id());
		// Dave's first: its owner counter too.
		assert!((300 * MILLI_BLY..400 * MILLI_BLY).contains(&dataset), "{dataset}");
	});
	let nonce =
		<<Runtime as pallet_inference::Config>::NonceDeposit as frame_support::traits::Get<
			Balance,
		>>::get();
	assert_eq!(nonce, 108 * MILLI_BLY);
}

/// What `try-runtime` checks on a live chain, run natively on the dev chain: every pallet's
/// storage invariants (`try_state`, the protocol pallets' own included) and the upgrade's
/// checks, at genesis and with state in the protocol pallets.
#[cfg(feature = "try-runtime")]
#[test]
fn try_runtime_every_pallets_invariants_and_the_upgrade_checks_hold() {
	use frame_support::traits::{TryState, TryStateSelect};
	use frame_try_runtime::UpgradeCheckSelect;
	let check = |n: u32| {
		crate::AllPalletsWithSystem::try_state(n, TryStateSelect::All).expect("invariants hold");
	};
	genesis("development").execute_with(|| {
		check(0);
		start_block(1, 1);
		let signed = |who: Sr25519Keyring| crate::RuntimeOrigin::signed(who.to_account_id());
		pallet_model_registry::Pallet::<Runtime>::register_dataset(
			signed(Sr25519Keyring::Ferdie),
			b"bafydataset".to_vec().try_into().unwrap(),
			Default::default(),
			1024,
			Default::default(),
		)
		.expect("dataset registers");
		let worker_bond = pallet_jobs::Params::<Runtime>::get().min_worker_bond;
		pallet_jobs::Pallet::<Runtime>::register_worker(
			signed(Sr25519Keyring::Eve),
			pallet_jobs::Capabilities {
				backends: vec![blyan_primitives::pol::Backend::Cpu].try_into().unwrap(),
				memory_mb: 1024,
			},
			worker_bond,
		)
		.expect("worker registers");
		let verifier_bond = pallet_pol_rewards::Params::<Runtime>::get().min_verifier_bond;
		pallet_pol_rewards::Pallet::<Runtime>::register_verifier(
			signed(Sr25519Keyring::Dave),
			verifier_bond,
		)
		.expect("verifier registers");
		Executive::finalize_block();
		check(1);
		Executive::try_runtime_upgrade(UpgradeCheckSelect::All).expect("upgrade checks pass");
		// The protocol pallets' own invariants are among those run: a bond record the hold does
		// not back is caught.
		pallet_jobs::Workers::<Runtime>::mutate(Sr25519Keyring::Eve.to_account_id(), |w| {
			w.as_mut().expect("registered").bond += 1;
		});
		assert!(crate::AllPalletsWithSystem::try_state(1, TryStateSelect::All).is_err());
		assert_eq!(
			crate::Jobs::try_state(1, TryStateSelect::All),
			Err("a worker's bond hold differs from its record".into())
		);
	});
}

/// The election in the era-change block is bounded (#18 item 8): minimum bonds, capped counts, a
/// voter list sorted by stake and a voter bound sized from the benchmarked election weight.
mod election {
	use super::*;
	use crate::{configs::election::*, RuntimeOrigin, Staking, VoterList};
	use frame_election_provider_support::{ElectionDataProvider, SortedListProvider};
	use frame_support::{
		assert_noop, assert_ok,
		traits::{fungible::Mutate, OnRuntimeUpgrade},
	};
	use pallet_staking::{Error, RewardDestination, ValidatorPrefs};
	use sp_staking::currency_to_vote::{CurrencyToVote, U128CurrencyToVote};

	fn account(tag: u8, i: u32) -> AccountId {
		let mut bytes = [tag; 32];
		bytes[..4].copy_from_slice(&i.to_le_bytes());
		AccountId::new(bytes)
	}

	/// Funds `who`, bonds `stake` and nominates `target`.
	fn nominator(who: &AccountId, stake: Balance, target: &AccountId) {
		assert_ok!(Balances::mint_into(who, stake + BLY));
		assert_ok!(Staking::bond(
			RuntimeOrigin::signed(who.clone()),
			stake,
			RewardDestination::Stash
		));
		assert_ok!(Staking::nominate(
			RuntimeOrigin::signed(who.clone()),
			vec![target.clone().into()]
		));
	}

	#[test]
	fn the_election_at_its_bounds_fits_in_one_block() {
		let max_block = <Runtime as frame_system::Config>::BlockWeights::get().max_block;
		let budget = (ELECTION_BLOCK_SHARE * max_block).ref_time();
		let at_bounds = election_weight(MAX_ELECTING_VOTERS, MAX_VALIDATOR_CANDIDATES).ref_time();
		assert!(at_bounds <= budget, "{at_bounds} ps > {budget} ps");
		// Sized, not loose: half as many voters again would not fit.
		let more = election_weight(MAX_ELECTING_VOTERS * 3 / 2, MAX_VALIDATOR_CANDIDATES);
		assert!(more.ref_time() > budget);
		// The bound before (22 500 voters, no cap on them) cost several blocks in one.
		assert!(
			election_weight(22_500, MAX_VALIDATOR_CANDIDATES).ref_time() > 5 * max_block.ref_time()
		);

		// The election and staking use these bounds.
		let bounds = ElectionBounds::get();
		assert_eq!(bounds.voters.count.map(|c| c.0), Some(MAX_ELECTING_VOTERS));
		assert_eq!(bounds.targets.count.map(|c| c.0), Some(MAX_VALIDATOR_CANDIDATES));
		assert_eq!(
			<<Runtime as pallet_staking::Config>::NominationsQuota as pallet_staking::NominationsQuota<Balance>>::get_quota(BLY),
			MAX_NOMINATIONS
		);
	}

	#[test]
	fn the_bags_are_a_geometric_series_from_the_minimum_nominator_bond() {
		let bags = &BAG_THRESHOLDS[..];
		assert_eq!(bags[0], U128CurrencyToVote::to_vote(MIN_NOMINATOR_BOND, GENESIS_SUPPLY));
		for pair in bags.windows(2) {
			assert!(pair[0] < pair[1]);
			// At most 12.5 % apart: a cut inside a bag prefers nobody by more than that.
			assert!(pair[1] - pair[0] <= pair[0] / 8 + 1, "{pair:?}");
		}
		assert!(*bags.last().unwrap() > u64::MAX / 9 * 8, "the bags reach the top");
		assert!((100..200).contains(&bags.len()), "{} bags", bags.len());
	}

	#[test]
	fn dust_and_sybil_nominators_can_neither_stall_nor_steer_the_election() {
		genesis("local_testnet").execute_with(|| {
			assert_eq!(pallet_staking::MinNominatorBond::<Runtime>::get(), MIN_NOMINATOR_BOND);
			assert_eq!(pallet_staking::MinValidatorBond::<Runtime>::get(), MIN_VALIDATOR_BOND);
			assert_eq!(pallet_staking::MaxNominatorsCount::<Runtime>::get(), Some(MAX_NOMINATORS));
			assert_eq!(
				pallet_staking::MaxValidatorsCount::<Runtime>::get(),
				Some(MAX_VALIDATOR_CANDIDATES)
			);
			let alice = Sr25519Keyring::Alice.to_account_id();
			let bob = Sr25519Keyring::Bob.to_account_id();
			let charlie = Sr25519Keyring::Charlie.to_account_id();

			// Dust: a bond below the minimum neither nominates nor validates.
			let dust = account(0xd0, 0);
			assert_ok!(Balances::mint_into(&dust, MIN_VALIDATOR_BOND));
			assert_ok!(Staking::bond(
				RuntimeOrigin::signed(dust.clone()),
				MIN_NOMINATOR_BOND - 1,
				RewardDestination::Stash
			));
			assert_noop!(
				Staking::nominate(RuntimeOrigin::signed(dust.clone()), vec![alice.clone().into()]),
				Error::<Runtime>::InsufficientBond
			);
			assert_noop!(
				Staking::validate(RuntimeOrigin::signed(dust.clone()), ValidatorPrefs::default()),
				Error::<Runtime>::InsufficientBond
			);

			// Sybils: more minimum-bond nominators (all for Charlie) than an election reads,
			// bonded before the honest nominators, who each stake more and back Bob.
			let sybils = MAX_ELECTING_VOTERS + 100;
			for i in 0..sybils {
				nominator(&account(0x5b, i), MIN_NOMINATOR_BOND, &charlie);
			}
			let honest: Vec<AccountId> = (0..20).map(|i| account(0x40, i)).collect();
			for who in &honest {
				nominator(who, 5_000 * BLY, &bob);
			}
			assert_eq!(VoterList::count(), sybils + 20 + 3);

			// The snapshot reads exactly the bound, the most staked first: every validator and
			// honest nominator is in it, the sybils fill only what is left.
			let voters =
				<Staking as ElectionDataProvider>::electing_voters(ElectionBounds::get().voters, 0)
					.unwrap();
			assert_eq!(voters.len() as u32, MAX_ELECTING_VOTERS);
			for who in honest.iter().chain([&alice, &bob, &charlie]) {
				assert!(voters.iter().any(|(v, ..)| v == who), "{who} was left out");
			}

			// The era's election counts all of the honest stake behind Bob.
			start_block(1, 1);
			let era_before = pallet_staking::CurrentEra::<Runtime>::get().unwrap_or(0);
			for _ in 0..crate::time::SESSIONS_PER_ERA {
				pallet_session::Pallet::<Runtime>::rotate_session();
			}
			let era = pallet_staking::CurrentEra::<Runtime>::get().unwrap();
			assert!(era > era_before);
			let backing = pallet_staking::ErasStakersOverview::<Runtime>::get(era, &bob).unwrap();
			// (Phragmén works in vote weight, `balance / (issuance / u64::MAX)`: a few hundred
			// of the 10^-12 BLY units are lost converting back.)
			let honest_backing = presets::VALIDATOR_BOND + 20 * 5_000 * BLY;
			assert!(
				backing.total <= honest_backing && backing.total > honest_backing - BLY / 1_000
			);

			// The count is capped: once full, a new nominator is refused.
			let count = pallet_staking::Nominators::<Runtime>::count();
			assert_ok!(Staking::set_staking_configs(
				RuntimeOrigin::root(),
				pallet_staking::ConfigOp::Noop,
				pallet_staking::ConfigOp::Noop,
				pallet_staking::ConfigOp::Set(count),
				pallet_staking::ConfigOp::Noop,
				pallet_staking::ConfigOp::Noop,
				pallet_staking::ConfigOp::Noop,
				pallet_staking::ConfigOp::Noop,
			));
			let late = account(0x1a, 0);
			assert_ok!(Balances::mint_into(&late, MIN_VALIDATOR_BOND));
			assert_ok!(Staking::bond(
				RuntimeOrigin::signed(late.clone()),
				MIN_NOMINATOR_BOND,
				RewardDestination::Stash
			));
			assert_noop!(
				Staking::nominate(RuntimeOrigin::signed(late), vec![alice.into()]),
				Error::<Runtime>::TooManyNominators
			);
		});
	}

	#[test]
	fn try_runtime_a_chain_from_before_the_staking_limits_gets_them_and_bags_its_voters_once() {
		genesis("local_testnet").execute_with(|| {
			let alice = Sr25519Keyring::Alice.to_account_id();
			let nominators: Vec<AccountId> = (0..2).map(|i| account(0x77, i)).collect();
			for who in &nominators {
				nominator(who, MIN_NOMINATOR_BOND * 3, &alice);
			}
			// As a chain built before spec_version 108: no limits, no bags list.
			pallet_staking::MinNominatorBond::<Runtime>::kill();
			pallet_staking::MinValidatorBond::<Runtime>::kill();
			pallet_staking::MaxNominatorsCount::<Runtime>::kill();
			pallet_staking::MaxValidatorsCount::<Runtime>::kill();
			let _ = pallet_bags_list::ListNodes::<Runtime, pallet_bags_list::Instance1>::clear(
				u32::MAX,
				None,
			);
			let _ = pallet_bags_list::ListBags::<Runtime, pallet_bags_list::Instance1>::clear(
				u32::MAX,
				None,
			);
			assert_eq!(VoterList::count(), 0);

			// With try-runtime, through its pre- and post-upgrade checks.
			#[cfg(feature = "try-runtime")]
			crate::configs::election::InitStakingLimits::try_on_runtime_upgrade(true)
				.expect("the upgrade checks hold");
			#[cfg(not(feature = "try-runtime"))]
			crate::configs::election::InitStakingLimits::on_runtime_upgrade();
			assert_eq!(pallet_staking::MinNominatorBond::<Runtime>::get(), MIN_NOMINATOR_BOND);
			assert_eq!(pallet_staking::MaxNominatorsCount::<Runtime>::get(), Some(MAX_NOMINATORS));
			let mut bagged: Vec<AccountId> = VoterList::iter().collect();
			bagged.sort();
			let mut voters: Vec<AccountId> = pallet_staking::Validators::<Runtime>::iter_keys()
				.chain(nominators.iter().cloned())
				.collect();
			voters.sort();
			assert_eq!(bagged, voters);
			// Staking's and the bags list's own invariants (the list holds exactly the voters,
			// each in the bag of its stake).
			#[cfg(feature = "try-runtime")]
			{
				use frame_support::traits::{TryState, TryStateSelect};
				crate::AllPalletsWithSystem::try_state(0, TryStateSelect::All)
					.expect("invariants hold after the migration");
			}

			// Once: governance's later changes are kept, even removing the nominator cap.
			assert_ok!(Staking::set_staking_configs(
				RuntimeOrigin::root(),
				pallet_staking::ConfigOp::Set(7 * BLY),
				pallet_staking::ConfigOp::Noop,
				pallet_staking::ConfigOp::Remove,
				pallet_staking::ConfigOp::Noop,
				pallet_staking::ConfigOp::Noop,
				pallet_staking::ConfigOp::Noop,
				pallet_staking::ConfigOp::Noop,
			));
			crate::configs::election::InitStakingLimits::on_runtime_upgrade();
			assert_eq!(pallet_staking::MinNominatorBond::<Runtime>::get(), 7 * BLY);
			assert_eq!(pallet_staking::MaxNominatorsCount::<Runtime>::get(), None);
		});
	}
}

/// Issue #18, item 5: how far a block author can steer a committee or spot-check draw.
///
/// A draw runs in the block after its commitment (`N`, here block 2). Block 2's author tries 24
/// versions of its block (a remark with a different payload each). Under Aura the draw's seed was
/// the parent block's hash: 24 versions, 24 seeds, and as many more as the author cares to
/// compute. The VRF seed takes one value whatever block 2 holds. What the author of the draw
/// block can still do is withhold it, so that the next slot's author draws instead: one other
/// value, bought with its slot.
#[test]
fn a_block_author_cannot_grind_the_draw_seed() {
	use crate::configs::VrfRandomness;
	use frame_support::traits::Randomness;
	use sp_runtime::traits::{BlakeTwo256, Hash as _};
	use std::collections::BTreeSet;

	let subject = b"bly/committee job 7".to_vec();
	// (seed under Aura's parent-hash randomness, VRF seed) in block 3, after block 2 came from
	// `reveal_author` in `reveal_slot` holding `payload`, and block 3 from `draw_author` in
	// `draw_slot`.
	let draw_after = |reveal_author: Sr25519Keyring,
	                  reveal_slot: u64,
	                  payload: u32,
	                  draw_author: Sr25519Keyring,
	                  draw_slot: u64| {
		genesis("local_testnet").execute_with(|| {
			start_vrf_block(1, 101, System::parent_hash(), Sr25519Keyring::Alice);
			let block1 = Executive::finalize_block();
			assert!(pallet_babe::AuthorVrfRandomness::<Runtime>::get().is_some());

			start_vrf_block(2, reveal_slot, block1.hash(), reveal_author);
			let remark = RuntimeCall::System(frame_system::Call::remark {
				remark: payload.to_le_bytes().to_vec(),
			});
			Executive::apply_extrinsic(signed(Sr25519Keyring::Dave, 0, remark, 0))
				.expect("valid")
				.expect("dispatched");
			let block2 = Executive::finalize_block();

			start_vrf_block(3, draw_slot, block2.hash(), draw_author);
			let aura_seed = BlakeTwo256::hash_of(&(subject.clone(), System::parent_hash()));
			let (vrf_seed, _) = VrfRandomness::random(&subject);
			(aura_seed, vrf_seed)
		})
	};

	let draw = |payload, draw_author, draw_slot| {
		draw_after(Sr25519Keyring::Bob, 102, payload, draw_author, draw_slot)
	};
	let versions: Vec<_> = (0..24).map(|p| draw(p, Sr25519Keyring::Charlie, 103)).collect();
	let aura: BTreeSet<_> = versions.iter().map(|(a, _)| *a).collect();
	let vrf: BTreeSet<_> = versions.iter().map(|(_, v)| *v).collect();
	assert_eq!(aura.len(), 24, "each version of block 2 gave Aura's draw another seed");
	assert_eq!(vrf.len(), 1, "no version of block 2 moves the VRF seed");

	// Block 3's author withholds it; the author of the next slot draws: one alternative.
	let (_, withheld) = draw(0, Sr25519Keyring::Alice, 104);
	assert!(!vrf.contains(&withheld));
	// And that alternative is fixed as well: the slot, not the block's contents, decides it.
	assert_eq!(draw(5, Sr25519Keyring::Alice, 104).1, withheld);

	// The parent's output counts too: the draw block's author, who knows its own output ahead,
	// cannot know the seed before the block holding the reveal exists. Another author or slot
	// for that block, another seed.
	let (_, other_reveal_block) =
		draw_after(Sr25519Keyring::Alice, 102, 0, Sr25519Keyring::Charlie, 103);
	assert!(!vrf.contains(&other_reveal_block));
}

/// The author of the block that starts an epoch is found in the new epoch's set: BABE signs that
/// block with its index there, so `Session` must rotate before `Authorship` maps the index to an
/// account (the era points and fees of that block go to whoever authored it).
#[test]
fn the_first_block_of_an_epoch_is_credited_to_its_author_in_the_new_set() {
	genesis("local_testnet").execute_with(|| {
		start_block(1, 1);
		let old = pallet_session::Validators::<Runtime>::get();
		// The next session's set, in another order (as a new election may give it).
		pallet_session::QueuedKeys::<Runtime>::mutate(|queued| queued.rotate_left(1));
		pallet_session::QueuedChanged::<Runtime>::put(true);
		let block1 = Executive::finalize_block();

		// The first slot of epoch 1: BABE changes epochs (through `Session`) in this block.
		let first_of_epoch_1 = 1 + crate::configs::EpochDuration::get();
		let index = (first_of_epoch_1 % old.len() as u64) as usize;
		start_block_with(
			2,
			first_of_epoch_1,
			block1.hash(),
			PreDigest::SecondaryPlain(SecondaryPlainPreDigest {
				authority_index: index as u32,
				slot: Slot::from(first_of_epoch_1),
			}),
		);
		let new = pallet_session::Validators::<Runtime>::get();
		assert_eq!(pallet_babe::EpochIndex::<Runtime>::get(), 1);
		assert_ne!(new, old, "the set changed order");

		// The author signed with its index in the new epoch's BABE authorities.
		let (babe_key, _) = pallet_babe::Authorities::<Runtime>::get()[index].clone();
		let owner = pallet_session::KeyOwner::<Runtime>::get((
			sp_consensus_babe::KEY_TYPE,
			babe_key.encode(),
		))
		.expect("a validator owns the key");
		assert_eq!(pallet_authorship::Pallet::<Runtime>::author(), Some(owner.clone()));
		assert_eq!(new[index], owner);
		assert_ne!(old[index], owner, "the old set would have credited someone else");
	});
}
