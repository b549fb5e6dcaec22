//! Native tests of the runtime as configured: genesis presets, BLY supply, fees, staking.

use crate::{
	configs::accounts, currency::*, genesis_config_presets as presets, AccountId, Balances,
	Executive, Runtime, RuntimeCall, RuntimeEvent, RuntimeGenesisConfig, SignedPayload, System,
	UncheckedExtrinsic,
};
use codec::Encode;
use frame_support::traits::fungible::Inspect;
use sp_consensus_aura::{Slot, AURA_ENGINE_ID};
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

/// Starts block `n` authored in `slot` (the Aura author is `slot % validators`).
fn start_block(n: u32, slot: u64) {
	let parent = System::parent_hash();
	let digest = sp_runtime::Digest {
		logs: vec![DigestItem::PreRuntime(AURA_ENGINE_ID, Slot::from(slot).encode())],
	};
	let header = crate::Header::new(n, Default::default(), Default::default(), parent, digest);
	Executive::initialize_block(&header);
	pallet_timestamp::Pallet::<Runtime>::set_timestamp(slot * crate::time::SLOT_DURATION);
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
		assert_eq!(pallet_aura::Authorities::<Runtime>::get().len(), 3);
		assert_eq!(pallet_grandpa::Pallet::<Runtime>::grandpa_authorities().len(), 3);
		for v in &expected {
			assert!(pallet_staking::Validators::<Runtime>::contains_key(v));
			assert_eq!(
				pallet_staking::Ledger::<Runtime>::get(v).map(|l| l.active),
				Some(presets::VALIDATOR_BOND)
			);
		}

		// Roll sessions until staking plans the next era: the election must pick the same three.
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
