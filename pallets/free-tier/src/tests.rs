// The unsigned path is `ValidateUnsigned`, deprecated for `#[pallet::authorize]` (see lib.rs).
#![allow(deprecated)]

use crate::{codes::*, mock::*, *};
use frame_support::traits::UnfilteredDispatchable;
use frame_support::{
	assert_noop, assert_ok,
	dispatch::GetDispatchInfo,
	pallet_prelude::{InvalidTransaction, TransactionSource, TransactionValidityError},
	traits::fungible::Mutate,
};
use sp_io::hashing::blake2_256;
use sp_runtime::traits::{DispatchTransaction, ValidateUnsigned};

fn ask(n: u32) -> FreeRequest {
	FreeRequest { version: 1, prompt_hash: H256::repeat_byte(n as u8), max_tokens: 64 }
}

/// A valid seal for `who` naming `block` at the current difficulty.
fn seal(who: &AccountId, block: BlockNumber) -> PowSeal<BlockNumber> {
	let hash = H256::from_slice(System::block_hash(block).as_ref());
	let (nonce, _) = mine(who, &block, &hash, Params::<Test>::get().pow_difficulty);
	PowSeal { block, nonce }
}

fn request(who: &AccountId, seal: Option<PowSeal<BlockNumber>>) -> DispatchResult {
	FreeTier::request(RuntimeOrigin::signed(who.clone()), ask(0), seal)
}

/// An account holding `units` stake units (and so that many trust points, up to 20).
fn staked(units: u128) -> AccountId {
	let (_, who) = new_account();
	Balances::set_balance(&who, units * STAKE_UNIT);
	who
}

#[test]
fn quota_runs_from_5_at_no_trust_to_500_at_full_trust() {
	new_test_ext().execute_with(|| {
		let p = Params::<Test>::get();
		assert_eq!(FreeTier::quota(0, &p), 5);
		assert_eq!(FreeTier::quota(10, &p), 5 + 495 * 10 / 100);
		assert_eq!(FreeTier::quota(100, &p), 500);
		assert_eq!(FreeTier::quota(250, &p), 500);

		let (_, fresh) = new_account();
		assert_eq!(FreeTier::trust_score(&fresh), 0);
		assert_eq!(FreeTier::trust_score(&staked(7)), 7);
		assert_eq!(FreeTier::trust_score(&staked(1_000)), 20, "stake counts up to 20");

		// Full trust: 4 accepted improvements, 15 honest verifications, 20 stake units, 300 days.
		let trusted = staked(20);
		for _ in 0..4 {
			FreeTier::accepted_improvement(&trusted);
		}
		for _ in 0..15 {
			FreeTier::honest_verification(&trusted);
		}
		assert_eq!(FreeTier::trust_score(&trusted), 40 + 30 + 20);
		run_to(1 + 300 * DAY);
		assert_eq!(FreeTier::trust_score(&trusted), 100);
		// More of each adds nothing beyond the caps.
		FreeTier::accepted_improvement(&trusted);
		FreeTier::honest_verification(&trusted);
		assert_eq!(FreeTier::trust_score(&trusted), 100);
	});
}

#[test]
fn a_tier_gets_exactly_its_quota_then_is_refused_until_the_next_day() {
	new_test_ext().execute_with(|| {
		// Score 10: 54 a day. The block cap (50) spreads them over two blocks.
		let who = staked(10);
		for i in 0..54 {
			if i == 50 {
				run_to(2);
			}
			assert_ok!(request(&who, None));
		}
		assert_noop!(request(&who, None), Error::<Test>::QuotaExhausted);
		System::assert_last_event(
			Event::FreeRequested { who: who.clone(), request: ask(0), used_today: 54, quota: 54 }
				.into(),
		);
		// The last block of the day: still refused. The first of the next: a fresh quota.
		run_to(DAY - 1);
		assert_noop!(request(&who, None), Error::<Test>::QuotaExhausted);
		run_to(DAY);
		assert_ok!(request(&who, None));
		assert_eq!(Usage::<Test>::get(1, &who), DailyUsage { used: 1, last_seal: None });
		assert_eq!(Usage::<Test>::get(0, &who).used, 54, "yesterday's record kept until pruned");
	});
}

#[test]
fn no_trust_needs_a_proof_of_work_for_each_of_its_five_requests() {
	new_test_ext().execute_with(|| {
		let (_, who) = new_account();
		Balances::set_balance(&who, 10); // some BLY, far below a stake unit: still no trust
		run_to(20);
		assert_noop!(request(&who, None), Error::<Test>::ProofOfWorkRequired);
		for block in 13..18 {
			assert_ok!(request(&who, Some(seal(&who, block))));
		}
		assert_noop!(request(&who, Some(seal(&who, 18))), Error::<Test>::QuotaExhausted);
	});
}

#[test]
fn replayed_stale_future_foreign_or_weak_proofs_of_work_are_refused() {
	new_test_ext().execute_with(|| {
		let (_, who) = new_account();
		let (_, other) = new_account();
		Balances::set_balance(&who, 10);
		run_to(30);
		let good = seal(&who, 25);
		assert_ok!(request(&who, Some(good)));
		// The same seal again, or one naming an earlier block: a replay.
		assert_noop!(request(&who, Some(good)), Error::<Test>::ReplayedProofOfWork);
		assert_noop!(request(&who, Some(seal(&who, 24))), Error::<Test>::ReplayedProofOfWork);
		// Older than the window (10 blocks), the current block, or a future one: stale.
		assert_noop!(request(&other, Some(seal(&other, 19))), Error::<Test>::StaleProofOfWork);
		assert_noop!(
			request(&other, Some(PowSeal { block: 30, nonce: 0 })),
			Error::<Test>::StaleProofOfWork
		);
		assert_noop!(
			request(&other, Some(PowSeal { block: 31, nonce: 0 })),
			Error::<Test>::StaleProofOfWork
		);
		// Work done for `who` does not count for `other` (bound to the account), and a nonce
		// that misses the difficulty is refused.
		Params::<Test>::mutate(|p| p.pow_difficulty = 16);
		let theirs = seal(&who, 27);
		let hash = H256::from_slice(System::block_hash(27).as_ref());
		assert!(leading_zero_bits(&pow_hash(&other, &27u64, &hash, theirs.nonce)) < 16);
		assert_noop!(request(&other, Some(theirs)), Error::<Test>::BadProofOfWork);
		let mut weak = seal(&other, 27);
		while leading_zero_bits(&pow_hash(&other, &27u64, &hash, weak.nonce)) >= 16 {
			weak.nonce += 1;
		}
		assert_noop!(request(&other, Some(weak)), Error::<Test>::BadProofOfWork);
		assert_ok!(request(&other, Some(seal(&other, 27))));
	});
}

#[test]
fn the_fee_extension_makes_admitted_requests_free_and_refuses_the_rest_in_the_pool() {
	new_test_ext().execute_with(|| {
		let who = staked(1); // score 1: quota 9
		let before = Balances::free_balance(&who);
		let call = RuntimeCall::FreeTier(Call::request { request: ask(1), seal: None });
		let info = call.get_dispatch_info();
		// Two pending requests of one account claim the same quota slot: the pool keeps one.
		let ext = Extension::from(pallet_transaction_payment::ChargeTransactionPayment::from(0));
		let provides = |ext: &Extension| {
			ext.validate_only(
				RuntimeOrigin::signed(who.clone()),
				&call,
				&info,
				100,
				TransactionSource::External,
				0,
			)
			.map(|(v, _, _)| v.provides)
		};
		let (first, second) = (provides(&ext), provides(&ext));
		assert!(matches!(&first, Ok(tags) if tags.len() == 1));
		assert_eq!(first, second);
		for _ in 0..9 {
			let ext =
				Extension::from(pallet_transaction_payment::ChargeTransactionPayment::from(0));
			assert!(ext
				.validate_only(
					RuntimeOrigin::signed(who.clone()),
					&call,
					&info,
					100,
					TransactionSource::External,
					0
				)
				.is_ok());
			let ext =
				Extension::from(pallet_transaction_payment::ChargeTransactionPayment::from(0));
			let applied = ext
				.dispatch_transaction(
					RuntimeOrigin::signed(who.clone()),
					call.clone(),
					&info,
					100,
					0,
				)
				.expect("valid");
			assert_ok!(applied);
		}
		assert_eq!(Balances::free_balance(&who), before, "free requests cost nothing");
		// The tenth: refused by the pool, never dispatched, nothing charged.
		let ext = Extension::from(pallet_transaction_payment::ChargeTransactionPayment::from(0));
		assert_eq!(
			ext.validate_only(
				RuntimeOrigin::signed(who.clone()),
				&call,
				&info,
				100,
				TransactionSource::External,
				0
			)
			.map(|_| ()),
			Err(TransactionValidityError::Invalid(InvalidTransaction::Custom(QUOTA_EXHAUSTED)))
		);
		assert_eq!(Balances::free_balance(&who), before);
		// Any other call pays its fee as usual.
		let remark = RuntimeCall::System(frame_system::Call::remark { remark: vec![1] });
		let ext = Extension::from(pallet_transaction_payment::ChargeTransactionPayment::from(0));
		let info = remark.get_dispatch_info();
		assert_ok!(ext
			.dispatch_transaction(RuntimeOrigin::signed(who.clone()), remark, &info, 10, 0)
			.expect("valid"));
		assert!(Balances::free_balance(&who) < before);
	});
}

#[test]
fn an_account_with_nothing_asks_unsigned_with_its_signature_and_a_proof_of_work() {
	new_test_ext().execute_with(|| {
		let (public, who) = new_account();
		run_to(10);
		let seal = seal(&who, 9);
		let genesis = H256::from_slice(System::block_hash(0).as_ref());
		let signature = sign(&public, &unsigned_payload(&genesis, &who, &ask(2), &seal));
		let call = Call::request_unsigned {
			requester: who.clone(),
			request: ask(2),
			seal,
			signature: signature.clone(),
		};
		assert_ok!(FreeTier::validate_unsigned(TransactionSource::External, &call));
		assert_ok!(FreeTier::request_unsigned(
			RuntimeOrigin::none(),
			who.clone(),
			ask(2),
			seal,
			signature.clone()
		));
		assert_eq!(Usage::<Test>::get(0, &who).used, 1);
		// The same transaction again: the seal is spent.
		assert_eq!(
			FreeTier::validate_unsigned(TransactionSource::External, &call),
			Err(TransactionValidityError::Invalid(InvalidTransaction::Custom(REPLAYED_POW)))
		);
		// Someone else's signature, or another request under this signature: refused.
		let (other_public, _) = new_account();
		let forged = sign(&other_public, &unsigned_payload(&genesis, &who, &ask(3), &seal));
		let forged = Call::request_unsigned {
			requester: who.clone(),
			request: ask(3),
			seal,
			signature: forged,
		};
		assert_eq!(
			FreeTier::validate_unsigned(TransactionSource::External, &forged),
			Err(TransactionValidityError::Invalid(InvalidTransaction::Custom(BAD_SIGNATURE)))
		);
		assert_noop!(
			FreeTier::request_unsigned(RuntimeOrigin::none(), who, ask(3), seal, signature),
			Error::<Test>::BadSignature
		);
	});
}

#[test]
fn an_attacker_with_fresh_accounts_gets_at_most_the_block_cap_and_pays_in_hashes() {
	new_test_ext().execute_with(|| {
		run_to(20);
		let cap = Params::<Test>::get().max_free_per_block;
		let difficulty = Params::<Test>::get().pow_difficulty;
		let (mut admitted, mut hashes) = (0u32, 0u64);
		// Twice the cap of fresh accounts, each with a fresh seal, all in one block.
		for _ in 0..2 * cap {
			let (_, who) = new_account();
			Balances::set_balance(&who, 10);
			let hash = H256::from_slice(System::block_hash(19).as_ref());
			let (nonce, tried) = mine(&who, &19u64, &hash, difficulty);
			hashes += tried;
			match request(&who, Some(PowSeal { block: 19, nonce })) {
				Ok(()) => admitted += 1,
				Err(e) => assert_eq!(e, Error::<Test>::BlockFull.into()),
			}
		}
		assert_eq!(admitted, cap, "the block takes its cap of free requests, no more");
		// About 2^difficulty hashes per request (generous bounds for a random process).
		let per_request = hashes / (2 * cap) as u64;
		assert!(
			per_request > (1 << difficulty) / 4 && per_request < (1 << difficulty) * 4,
			"{per_request} hashes per request at difficulty {difficulty}"
		);
		// Next block: room again.
		run_to(21);
		let (_, who) = new_account();
		Balances::set_balance(&who, 10);
		assert_ok!(request(&who, Some(seal(&who, 20))));
	});
}

#[test]
fn governance_sets_params_that_hold_together() {
	new_test_ext().execute_with(|| {
		let mut p = FreeTier::params();
		p.min_daily_quota = 600;
		assert_noop!(
			<FreeTier as GovernedParams<_>>::set_params(p.clone()),
			Error::<Test>::BadParams
		);
		p.min_daily_quota = 10;
		p.pow_difficulty = 20;
		assert_ok!(<FreeTier as GovernedParams<_>>::set_params(p.clone()));
		assert_eq!(Params::<Test>::get(), p);
	});
}

#[test]
fn usage_of_thousands_of_fresh_keys_expires_and_the_state_stays_bounded() {
	new_test_ext().execute_with(|| {
		Params::<Test>::mutate(|p| p.pow_difficulty = 1);
		let cap = Params::<Test>::get().max_free_per_block;
		let per_day = 20 * cap; // 1 000 fresh keys a day, each asking once
		let mut key = 0u64;
		let mut most = 0usize;
		for day in 0..6u64 {
			run_to(day * DAY + 15);
			for block in 0..20 {
				for _ in 0..cap {
					key += 1;
					let who = AccountId::new(blake2_256(&key.encode()));
					let at = System::block_number() - 1;
					assert_ok!(request(&who, Some(seal(&who, at))));
				}
				run_to(day * DAY + 16 + block);
			}
			run_to(day * DAY + 70);
			let stored = Usage::<Test>::iter().count();
			most = most.max(stored);
			// Today's and yesterday's records, nothing older.
			assert!(stored <= 2 * per_day as usize, "day {day}: {stored} usage records");
			if day >= 2 {
				assert_eq!(Usage::<Test>::iter_prefix(day as u32 - 2).count(), 0, "day {day}");
			}
		}
		assert_eq!(key, 6 * u64::from(per_day), "6 000 fresh keys asked");
		assert!(most <= 2 * per_day as usize);
		// Only days still in the window remain: the state does not grow with the keys.
		run_to(8 * DAY);
		assert_eq!(Usage::<Test>::iter().count(), 0);
		assert_eq!(PrunedBefore::<Test>::get(), 7);
	});
}

#[test]
fn a_trusted_accounts_unsigned_request_cannot_be_replayed() {
	new_test_ext().execute_with(|| {
		let (public, who) = new_account();
		Balances::set_balance(&who, 10 * STAKE_UNIT); // trusted: no work needed
		run_to(10);
		// No work done: any nonce; the seal only names a recent block.
		let seal = PowSeal { block: 9, nonce: 0 };
		let genesis = H256::from_slice(System::block_hash(0).as_ref());
		let signature = sign(&public, &unsigned_payload(&genesis, &who, &ask(4), &seal));
		let call = Call::request_unsigned {
			requester: who.clone(),
			request: ask(4),
			seal,
			signature: signature.clone(),
		};
		assert_ok!(FreeTier::validate_unsigned(TransactionSource::External, &call));
		assert_ok!(call.clone().dispatch_bypass_filter(RuntimeOrigin::none()));
		assert_eq!(Usage::<Test>::get(0, &who), DailyUsage { used: 1, last_seal: Some(9) });
		// Anyone replaying the same transaction later, to spend the account's quota: refused
		// in the pool and in a block.
		run_to(12);
		assert_eq!(
			FreeTier::validate_unsigned(TransactionSource::External, &call),
			Err(TransactionValidityError::Invalid(InvalidTransaction::Custom(REPLAYED_POW)))
		);
		assert_noop!(
			FreeTier::request_unsigned(RuntimeOrigin::none(), who.clone(), ask(4), seal, signature),
			Error::<Test>::ReplayedProofOfWork
		);
		// Across the day boundary too: yesterday's seal is still remembered.
		run_to(DAY + 1);
		assert_noop!(
			FreeTier::request_unsigned(
				RuntimeOrigin::none(),
				who.clone(),
				ask(4),
				seal,
				sign(&public, &unsigned_payload(&genesis, &who, &ask(4), &seal))
			),
			Error::<Test>::StaleProofOfWork
		);
		// Across the day boundary too: a seal spent yesterday is still remembered.
		let (public2, other) = new_account();
		Balances::set_balance(&other, 10 * STAKE_UNIT);
		run_to(2 * DAY - 1);
		let late = PowSeal { block: 2 * DAY - 3, nonce: 0 };
		let sig = sign(&public2, &unsigned_payload(&genesis, &other, &ask(5), &late));
		assert_ok!(FreeTier::request_unsigned(
			RuntimeOrigin::none(),
			other.clone(),
			ask(5),
			late,
			sig.clone()
		));
		run_to(2 * DAY + 2);
		assert_noop!(
			FreeTier::request_unsigned(RuntimeOrigin::none(), other, ask(5), late, sig),
			Error::<Test>::ReplayedProofOfWork
		);
		// A stale seal is refused to a trusted account as to anyone.
		let stale = PowSeal { block: 1, nonce: 0 };
		let sig = sign(&public, &unsigned_payload(&genesis, &who, &ask(6), &stale));
		assert_noop!(
			FreeTier::request_unsigned(RuntimeOrigin::none(), who, ask(6), stale, sig),
			Error::<Test>::StaleProofOfWork
		);
	});
}

#[test]
fn a_proof_of_work_window_longer_than_a_day_or_a_cap_pruning_cannot_follow_is_refused() {
	new_test_ext().execute_with(|| {
		let mut p = Params::<Test>::get();
		p.pow_window = DAY + 1;
		assert_noop!(
			<FreeTier as GovernedParams<_>>::set_params(p.clone()),
			Error::<Test>::BadParams
		);
		p.pow_window = DAY;
		assert_ok!(<FreeTier as GovernedParams<_>>::set_params(p.clone()));
		// Admitting more a block than half what a block prunes would let the backlog grow.
		p.max_free_per_block = MAX_PRUNE / 2 + 1;
		assert_noop!(
			<FreeTier as GovernedParams<_>>::set_params(p.clone()),
			Error::<Test>::BadParams
		);
		p.max_free_per_block = MAX_PRUNE / 2;
		assert_ok!(<FreeTier as GovernedParams<_>>::set_params(p));
	});
}

#[test]
fn the_v1_migration_drops_the_unbounded_v0_usage_once() {
	use frame_support::{
		storage::{storage_prefix, unhashed},
		traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion},
		Blake2_128Concat, StorageHasher,
	};
	new_test_ext().execute_with(|| {
		// A v0 chain on day 3: one `Usage` entry (account → (day, used)) and one `LastSealBlock`
		// entry for every account that ever asked, and no pruning cursor. One account asked
		// today under the v1 layout (a chain that took the layout before declaring it).
		run_to(3 * DAY + 1);
		let v1_user = staked(20);
		assert_ok!(request(&v1_user, None));
		StorageVersion::new(0).put::<FreeTier>();
		PrunedBefore::<Test>::kill();
		let old_key = |item: &[u8], who: &AccountId| {
			let mut key = storage_prefix(b"FreeTier", item).to_vec();
			key.extend(Blake2_128Concat::hash(&who.encode()));
			key
		};
		for _ in 0..200 {
			let (_, who) = new_account();
			unhashed::put(&old_key(b"Usage", &who), &(2u32, 4u32));
			unhashed::put(&old_key(b"LastSealBlock", &who), &(2 * DAY));
		}
		let entries = |item: &[u8]| {
			let prefix = storage_prefix(b"FreeTier", item);
			let mut count = 0;
			let mut key = prefix.to_vec();
			while let Some(next) = sp_io::storage::next_key(&key).filter(|k| k.starts_with(&prefix))
			{
				count += 1;
				key = next;
			}
			count
		};
		assert_eq!((entries(b"Usage"), entries(b"LastSealBlock")), (201, 200));

		crate::migrations::MigrateV0ToV1::<Test>::on_runtime_upgrade();
		assert_eq!((entries(b"Usage"), entries(b"LastSealBlock")), (1, 0));
		assert_eq!(Usage::<Test>::get(FreeTier::today(), &v1_user).used, 1, "v1 usage kept");
		assert_eq!(FreeTier::on_chain_storage_version(), StorageVersion::new(1));
		assert_eq!(PrunedBefore::<Test>::get(), 2, "pruning restarts at yesterday");

		// The free tier works on the new layout; a second run of the migration leaves it alone.
		let who = staked(20);
		assert_ok!(request(&who, None));
		crate::migrations::MigrateV0ToV1::<Test>::on_runtime_upgrade();
		assert_eq!(Usage::<Test>::get(FreeTier::today(), &who).used, 1);
	});
}
