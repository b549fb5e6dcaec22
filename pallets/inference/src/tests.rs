use crate::{mock::*, *};
use frame_support::{assert_noop, assert_ok, traits::fungible::InspectHold};
use sp_runtime::traits::{BlakeTwo256, Hash as _};

fn endpoint(url: &str) -> BoundedVec<u8, MaxEndpointLen> {
	url.as_bytes().to_vec().try_into().unwrap()
}

fn span(start: u16, end: u16) -> LayerSpan {
	LayerSpan { start, end }
}

fn announce(server: &AccountId, bond: Balance) -> DispatchResult {
	Inference::announce(
		RuntimeOrigin::signed(server.clone()),
		1,
		span(0, 4),
		endpoint("http://127.0.0.1:8080"),
		10,
		4,
		bond,
	)
}

fn receipt(
	client: &AccountId,
	server: &AccountId,
	nonce: u64,
	tokens: (u32, u32),
) -> InferenceReceipt<AccountId, Balance> {
	InferenceReceipt {
		client: client.clone(),
		server: server.clone(),
		version: 1,
		nonce,
		tokens_in: tokens.0,
		tokens_out: tokens.1,
		price_per_token: 10,
		free: false,
		commitments: H256::repeat_byte(nonce as u8),
	}
}

fn batch(
	receipts: Vec<SignedReceipt<AccountId, Balance, sp_runtime::MultiSignature>>,
) -> BoundedVec<SignedReceiptOf<Test>, MaxReceiptsPerBatch> {
	receipts.try_into().unwrap()
}

fn held(who: &AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Inference(HoldReason::ServerBond), who)
}

fn nonce_deposit(who: &AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Inference(HoldReason::ReceiptNonce), who)
}

#[test]
fn announce_holds_the_bond_and_renewing_adjusts_it() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		assert_ok!(announce(&server, 300));
		assert_eq!(held(&server), 300);
		let a = Servers::<Test>::get(&server).unwrap();
		assert_eq!((a.version, a.layers, a.capacity, a.expires_at), (1, span(0, 4), 4, 1 + TTL));

		System::set_block_number(20);
		assert_ok!(announce(&server, 150));
		// The 150 taken off the bond unbonds: held until it can no longer be challenged.
		assert_eq!(held(&server), 300);
		assert_eq!(
			Unbonding::<Test>::get(&server),
			Some(UnbondingBond { amount: 150, release_at: 20 + WINDOW })
		);
		assert_eq!(Servers::<Test>::get(&server).unwrap().expires_at, 20 + TTL);
		assert_eq!(Servers::<Test>::count(), 1);
		System::set_block_number(20 + WINDOW);
		assert_ok!(Inference::release_bond(RuntimeOrigin::signed(server.clone()), server.clone()));
		assert_eq!(held(&server), 150);
	});
}

#[test]
fn bad_announcements_are_refused_and_change_nothing() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		let call = |version, layers, url: &str, capacity, bond| {
			Inference::announce(
				RuntimeOrigin::signed(server.clone()),
				version,
				layers,
				endpoint(url),
				10,
				capacity,
				bond,
			)
		};
		let url = "http://127.0.0.1:1";
		assert_noop!(call(2, span(0, 4), url, 1, 100), Error::<Test>::VersionNotAccepted);
		assert_noop!(call(9, span(0, 4), url, 1, 100), Error::<Test>::VersionNotAccepted);
		assert_noop!(call(1, span(3, 3), url, 1, 100), Error::<Test>::BadLayerSpan);
		assert_noop!(call(1, span(0, 600), url, 1, 100), Error::<Test>::BadLayerSpan);
		assert_noop!(call(1, span(0, 4), "ftp://x", 1, 100), Error::<Test>::BadEndpoint);
		assert_noop!(call(1, span(0, 4), url, 0, 100), Error::<Test>::ZeroCapacity);
		assert_noop!(call(1, span(0, 4), url, 1, 99), Error::<Test>::BondTooLow);
		assert_noop!(call(1, span(0, 4), url, 1, 5_000), Error::<Test>::InsufficientBond);
		for _ in 0..3 {
			let (_, other) = new_account(1_000);
			assert_ok!(announce(&other, 100));
		}
		assert_noop!(call(1, span(0, 4), url, 1, 100), Error::<Test>::TooManyServers);
		// The list's room is checked before the funds (a newcomer learns it must take a slot).
		assert_noop!(call(1, span(0, 4), url, 1, 5_000), Error::<Test>::TooManyServers);
	});
}

fn take_slot(server: &AccountId, displaced: &AccountId, bond: Balance) -> DispatchResult {
	Inference::take_slot(
		RuntimeOrigin::signed(server.clone()),
		displaced.clone(),
		1,
		span(0, 4),
		endpoint("http://127.0.0.1:8081"),
		10,
		4,
		bond,
	)
}

/// #18 item 12: squatters that fill the server list at the minimum bond (and renew forever)
/// cannot shut an honest server out: it takes a squatter's place by bonding more, and keeping
/// the list full against it costs a higher bond than its own on every slot.
#[test]
fn squatters_filling_the_server_list_are_displaced_by_a_higher_bond() {
	new_test_ext().execute_with(|| {
		let squatters: Vec<AccountId> = (0..3).map(|_| new_account(1_000).1).collect();
		for squatter in &squatters {
			assert_ok!(announce(squatter, 100));
		}
		let (_, honest) = new_account(1_000);
		assert_noop!(announce(&honest, 150), Error::<Test>::TooManyServers);
		// Renewing keeps a squatter's place, but not against a higher bond.
		System::set_block_number(5);
		assert_ok!(announce(&squatters[0], 100));

		assert_noop!(take_slot(&honest, &squatters[0], 100), Error::<Test>::BondNotHigher);
		assert_ok!(take_slot(&honest, &squatters[0], 150));
		assert_eq!(Servers::<Test>::count(), 3);
		assert!(Servers::<Test>::contains_key(&honest));
		assert!(!Servers::<Test>::contains_key(&squatters[0]));
		// The displaced bond unbonds.
		assert_eq!((held(&honest), held(&squatters[0])), (150, 100));
		assert_eq!(Unbonding::<Test>::get(&squatters[0]).unwrap().amount, 100);
		System::assert_has_event(
			Event::Displaced { server: squatters[0].clone(), by: honest.clone(), bond: 150 }.into(),
		);
		assert_eq!(Inference::live_servers().len(), 3);

		// Pushing the honest server out again needs a bond above its own.
		assert_noop!(take_slot(&squatters[0], &honest, 150), Error::<Test>::BondNotHigher);
		assert_ok!(take_slot(&squatters[0], &honest, 151));
		assert_eq!(held(&honest), 150, "unbonding");
		// Its own unbonding 100 taken back, 51 more held.
		assert_eq!(held(&squatters[0]), 151);
		assert!(Unbonding::<Test>::get(&squatters[0]).is_none());
	});
}

#[test]
fn take_slot_is_only_for_a_newcomer_to_a_full_list() {
	new_test_ext().execute_with(|| {
		let (_, first) = new_account(1_000);
		let (_, newcomer) = new_account(1_000);
		assert_ok!(announce(&first, 100));
		// Room left: announce instead.
		assert_noop!(take_slot(&newcomer, &first, 200), Error::<Test>::ServerListNotFull);
		for _ in 0..2 {
			let (_, other) = new_account(1_000);
			assert_ok!(announce(&other, 100));
		}
		// Announced already: announce renews.
		assert_noop!(take_slot(&first, &newcomer, 200), Error::<Test>::AlreadyAnnounced);
		let (_, nobody) = new_account(1);
		assert_noop!(take_slot(&newcomer, &nobody, 200), Error::<Test>::NotAnnounced);
		// Every check of an announcement holds here too.
		assert_noop!(take_slot(&newcomer, &first, 5_000), Error::<Test>::InsufficientBond);
		assert_noop!(
			Inference::take_slot(
				RuntimeOrigin::signed(newcomer.clone()),
				first.clone(),
				1,
				span(0, 4),
				endpoint("ftp://x"),
				10,
				4,
				200,
			),
			Error::<Test>::BadEndpoint
		);
	});
}

#[test]
fn withdraw_and_reap_unbond_the_bond_then_release_it() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		let (_, other) = new_account(1_000);
		let (_, reaper) = new_account(10);
		assert_ok!(announce(&server, 200));
		assert_ok!(announce(&other, 200));
		assert_ok!(Inference::withdraw(RuntimeOrigin::signed(server.clone())));
		// Held for the arbitration window: what it signed last can still be challenged.
		assert_eq!(held(&server), 200);
		assert_noop!(
			Inference::release_bond(RuntimeOrigin::signed(reaper.clone()), server.clone()),
			Error::<Test>::StillUnbonding
		);
		System::set_block_number(1 + WINDOW);
		assert_ok!(Inference::release_bond(RuntimeOrigin::signed(reaper.clone()), server.clone()));
		assert_eq!(held(&server), 0);
		assert_noop!(
			Inference::release_bond(RuntimeOrigin::signed(reaper.clone()), server.clone()),
			Error::<Test>::NotUnbonding
		);
		assert_noop!(
			Inference::withdraw(RuntimeOrigin::signed(server.clone())),
			Error::<Test>::NotAnnounced
		);

		assert_noop!(
			Inference::reap(RuntimeOrigin::signed(reaper.clone()), other.clone()),
			Error::<Test>::NotExpired
		);
		assert_eq!(Inference::live_servers().len(), 1);
		System::set_block_number(1 + TTL);
		assert!(Inference::live_servers().is_empty(), "expired announcements are not routed to");
		assert_ok!(Inference::reap(RuntimeOrigin::signed(reaper.clone()), other.clone()));
		assert_eq!(Servers::<Test>::count(), 0);
		System::set_block_number(1 + TTL + WINDOW);
		assert_ok!(Inference::release_bond(RuntimeOrigin::signed(reaper), other.clone()));
		assert_eq!((held(&other), Balances::free_balance(&other)), (0, 1_000));
	});
}

#[test]
fn settle_pays_the_server_per_token() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		let (alice_key, alice) = new_account(10_000);
		let (bob_key, bob) = new_account(10_000);
		let receipts = batch(vec![
			sign(&alice_key, receipt(&alice, &server, 1, (10, 20))),
			sign(&bob_key, receipt(&bob, &server, 7, (5, 5))),
			sign(&alice_key, receipt(&alice, &server, 2, (1, 1))),
		]);
		assert_ok!(Inference::settle(RuntimeOrigin::signed(server.clone()), receipts));
		// Each client's first receipt here also holds the deposit for its nonce entry.
		assert_eq!(Balances::free_balance(&alice), 10_000 - 320 - NONCE_DEPOSIT);
		assert_eq!(Balances::free_balance(&bob), 10_000 - 100 - NONCE_DEPOSIT);
		assert_eq!((nonce_deposit(&alice), nonce_deposit(&bob)), (NONCE_DEPOSIT, NONCE_DEPOSIT));
		assert_eq!(Balances::free_balance(&server), 1_000 + 420);
		assert_eq!(SettledNonce::<Test>::get(&alice, &server), Some(2));
		assert_eq!(SettledNonce::<Test>::get(&bob, &server), Some(7));
		System::assert_last_event(
			Event::Settled { server, receipts: 3, paid: 420, free_requests: 0 }.into(),
		);
	});
}

#[test]
fn a_receipt_cannot_be_settled_twice() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		let (key, client) = new_account(10_000);
		let first = sign(&key, receipt(&client, &server, 1, (10, 10)));
		assert_ok!(Inference::settle(
			RuntimeOrigin::signed(server.clone()),
			batch(vec![first.clone()])
		));
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(server.clone()), batch(vec![first.clone()])),
			Error::<Test>::ReceiptReplayed
		);
		// Nor twice in one batch, nor an older one later.
		let second = sign(&key, receipt(&client, &server, 2, (1, 1)));
		assert_noop!(
			Inference::settle(
				RuntimeOrigin::signed(server.clone()),
				batch(vec![second.clone(), second.clone()])
			),
			Error::<Test>::ReceiptReplayed
		);
		assert_ok!(Inference::settle(RuntimeOrigin::signed(server.clone()), batch(vec![second])));
		// One nonce entry, one deposit.
		assert_eq!(Balances::free_balance(&client), 10_000 - 200 - 20 - NONCE_DEPOSIT);
	});
}

#[test]
fn a_receipt_cannot_be_settled_by_another_server() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		let (_, thief) = new_account(1_000);
		let (key, client) = new_account(10_000);
		let signed = sign(&key, receipt(&client, &server, 1, (10, 10)));
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(thief.clone()), batch(vec![signed.clone()])),
			Error::<Test>::WrongServer
		);
		// Rewriting the server voids the client's signature.
		let mut stolen = signed;
		stolen.receipt.server = thief.clone();
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(thief), batch(vec![stolen])),
			Error::<Test>::BadReceiptSignature
		);
	});
}

#[test]
fn a_forged_receipt_is_refused_and_the_batch_with_it() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		let (key, client) = new_account(10_000);
		let (other_key, _) = new_account(0);
		let honest = sign(&key, receipt(&client, &server, 1, (1, 1)));
		// Signed by a key that is not the client's.
		let forged = sign(&other_key, receipt(&client, &server, 2, (1_000, 0)));
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(server.clone()), batch(vec![honest, forged])),
			Error::<Test>::BadReceiptSignature
		);
		// Inflating the tokens of a genuine receipt voids it too.
		let mut inflated = sign(&key, receipt(&client, &server, 3, (1, 1)));
		inflated.receipt.tokens_out = 900;
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(server.clone()), batch(vec![inflated])),
			Error::<Test>::BadReceiptSignature
		);
		// So does swapping the answers it paid for (the root of the route's commitments): the
		// server cannot settle a receipt naming answers other than those the client signed for.
		let mut swapped = sign(&key, receipt(&client, &server, 4, (1, 1)));
		swapped.receipt.commitments = H256::repeat_byte(0xee);
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(server), batch(vec![swapped])),
			Error::<Test>::BadReceiptSignature
		);
	});
}

#[test]
fn a_client_that_cannot_pay_voids_the_batch() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		let (key, client) = new_account(100);
		let signed = sign(&key, receipt(&client, &server, 1, (5, 5)));
		// 100 owed, but the account must stay alive.
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(server.clone()), batch(vec![signed])),
			Error::<Test>::ClientCannotPay
		);
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(server), batch(vec![])),
			Error::<Test>::EmptyBatch
		);
	});
}

#[test]
fn free_receipts_count_against_the_free_tier_quota() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		// 1 000 BLY held = 1 trust point: quota 5 + 495/100 = 9 a day.
		let (key, client) = new_account(1_000);
		let free = |nonce| {
			let mut r = receipt(&client, &server, nonce, (100, 100));
			r.free = true;
			r.price_per_token = 0;
			sign(&key, r)
		};
		assert_eq!(pallet_free_tier::Pallet::<Test>::remaining(&client), 9);
		assert_ok!(Inference::settle(
			RuntimeOrigin::signed(server.clone()),
			batch((1..=8).map(free).collect())
		));
		assert_eq!(
			Balances::free_balance(&client),
			1_000 - NONCE_DEPOSIT,
			"free receipts cost nothing but the nonce entry's deposit"
		);
		assert_eq!(pallet_free_tier::Pallet::<Test>::remaining(&client), 1);
		assert_noop!(
			Inference::settle(
				RuntimeOrigin::signed(server.clone()),
				batch(vec![free(9), free(10)])
			),
			Error::<Test>::FreeQuotaExhausted
		);
		assert_ok!(Inference::settle(RuntimeOrigin::signed(server.clone()), batch(vec![free(9)])));
		assert_eq!(pallet_free_tier::Pallet::<Test>::remaining(&client), 0);

		// A free receipt with a price is malformed; an account with no trust has no free quota.
		let mut priced = receipt(&client, &server, 11, (1, 1));
		priced.free = true;
		assert_noop!(
			Inference::settle(
				RuntimeOrigin::signed(server.clone()),
				batch(vec![sign(&key, priced)])
			),
			Error::<Test>::FreeReceiptPriced
		);
		// (It can hold its nonce entry's deposit; it has no trust.)
		let (poor_key, poor) = new_account(10);
		let mut r = receipt(&poor, &server, 1, (1, 1));
		r.free = true;
		r.price_per_token = 0;
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(server), batch(vec![sign(&poor_key, r)])),
			Error::<Test>::FreeQuotaExhausted
		);
	});
}

#[test]
fn a_receipt_from_another_chain_is_refused() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		let (key, client) = new_account(10_000);
		let r = receipt(&client, &server, 1, (1, 1));
		let payload = receipt_payload(&H256::repeat_byte(9), &r);
		let signature = sp_runtime::MultiSignature::from(
			sp_io::crypto::sr25519_sign(KEY_TYPE, &key, &payload).unwrap(),
		);
		assert_noop!(
			Inference::settle(
				RuntimeOrigin::signed(server),
				batch(vec![SignedReceipt { receipt: r, signature }])
			),
			Error::<Test>::BadReceiptSignature
		);
	});
}

/// The attack: a receipt with a zero price costs its client nothing, and anyone signs with a
/// fresh key, so a server (or anyone running one) could write a nonce entry per fresh key for
/// the fee of a batch. Each new entry now holds a deposit from its client: a fresh key that
/// cannot hold it voids the batch, and nothing is written. A client's later receipts at the
/// same server reuse its entry; at another server it holds a second deposit.
#[test]
fn a_nonce_entry_holds_its_clients_deposit_and_fresh_keys_write_none() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		let zero_priced = |nonce| {
			let (key, client) = new_account(0);
			let mut r = receipt(&client, &server, nonce, (1_000, 1_000));
			r.price_per_token = 0;
			sign(&key, r)
		};
		let spam: Vec<_> = (1..=8).map(zero_priced).collect();
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(server.clone()), batch(spam)),
			Error::<Test>::ClientCannotPay
		);
		assert_eq!(SettledNonce::<Test>::iter().count(), 0);

		// A client able to pay for its tokens but not also for its entry voids the batch; once
		// it can, both are taken, the deposit held.
		let (key, client) = new_account(20 + NONCE_DEPOSIT);
		let first = sign(&key, receipt(&client, &server, 1, (1, 1)));
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(server.clone()), batch(vec![first.clone()])),
			Error::<Test>::ClientCannotPay
		);
		Balances::set_balance(&client, 20 + NONCE_DEPOSIT + 1);
		assert_ok!(Inference::settle(RuntimeOrigin::signed(server.clone()), batch(vec![first])));
		assert_eq!(nonce_deposit(&client), NONCE_DEPOSIT);
		assert_eq!(Balances::free_balance(&client), 1);
		assert_eq!(Balances::free_balance(&server), 1_000 + 20);

		// The next receipt at the same server needs no new entry, so no new deposit.
		Balances::set_balance(&client, 21);
		let second = sign(&key, receipt(&client, &server, 2, (1, 1)));
		assert_ok!(Inference::settle(RuntimeOrigin::signed(server.clone()), batch(vec![second])));
		assert_eq!((nonce_deposit(&client), Balances::free_balance(&client)), (NONCE_DEPOSIT, 1));

		// Another server: another entry, another deposit.
		let (_, other) = new_account(1_000);
		Balances::set_balance(&client, 100);
		let there = sign(&key, receipt(&client, &other, 1, (1, 1)));
		assert_ok!(Inference::settle(RuntimeOrigin::signed(other), batch(vec![there])));
		assert_eq!(nonce_deposit(&client), 2 * NONCE_DEPOSIT);
		assert_eq!(
			SettledNonce::<Test>::iter().count() as Balance * NONCE_DEPOSIT,
			nonce_deposit(&client)
		);
	});
}

// Challenges of served answers.

fn commitment(server: &AccountId, session: u8) -> ChunkCommitment<AccountId> {
	ChunkCommitment {
		server: server.clone(),
		version: 1,
		layers: (0, 2),
		session: [session; 16],
		positions: 12,
		transcript: [7; 32],
		bit_exact: true,
	}
}

fn evidence() -> BoundedVec<u8, frame_support::traits::ConstU32<64>> {
	b"bafkreievidence".to_vec().try_into().unwrap()
}

fn challenge_bond(who: &AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::Inference(HoldReason::ChallengeBond), who)
}

/// A server announced with a bond of 1 000 whose signing key is `public`, a challenger, and
/// three bonded verifiers.
struct Challenge {
	public: sp_core::sr25519::Public,
	server: AccountId,
	challenger: AccountId,
	arbiters: Vec<AccountId>,
}

fn challenge_setup() -> Challenge {
	let (public, server) = new_account(2_000);
	assert_ok!(announce(&server, 1_000));
	let (_, challenger) = new_account(500);
	let arbiters: Vec<AccountId> = (0..3).map(|_| new_account(10).1).collect();
	VERIFIERS.with(|v| *v.borrow_mut() = arbiters.clone());
	Challenge { public, server, challenger, arbiters }
}

fn challenge(c: &Challenge, session: u8) -> DispatchResult {
	let commitment = commitment(&c.server, session);
	let signature = sign_commitment(&c.public, &commitment);
	Inference::challenge(
		RuntimeOrigin::signed(c.challenger.clone()),
		commitment,
		signature,
		evidence(),
	)
}

fn report(c: &Challenge, arbiter: usize, wrong: bool) -> DispatchResult {
	Inference::arbitrate(RuntimeOrigin::signed(c.arbiters[arbiter].clone()), 0, wrong)
}

fn close(c: &Challenge) -> DispatchResult {
	Inference::close_challenge(RuntimeOrigin::signed(c.challenger.clone()), 0)
}

fn closed_as() -> ChallengeOutcome {
	System::events()
		.into_iter()
		.find_map(|r| match r.event {
			RuntimeEvent::Inference(Event::ChallengeClosed { outcome, .. }) => Some(outcome),
			_ => None,
		})
		.expect("the challenge was closed")
}

#[test]
fn a_proven_wrong_answer_slashes_the_server_pays_the_challenger_and_burns_the_rest() {
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		let issuance = Balances::total_issuance();
		assert_ok!(challenge(&c, 1));
		assert_eq!(challenge_bond(&c.challenger), CHALLENGE_BOND);
		assert_eq!(OpenChallenges::<Test>::get(&c.server), Some(1));

		// Drawn by the chain at the start of the next block.
		assert!(Challenges::<Test>::get(0).unwrap().arbiters.is_none());
		go_to(2);
		let seats = Challenges::<Test>::get(0).unwrap().arbiters.unwrap();
		assert_eq!(seats.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(), c.arbiters);

		// Not an arbiter, or an arbiter reporting twice: refused.
		assert_noop!(
			Inference::arbitrate(RuntimeOrigin::signed(c.challenger.clone()), 0, true),
			Error::<Test>::NotArbiter
		);
		assert_ok!(report(&c, 0, true));
		assert_noop!(report(&c, 0, false), Error::<Test>::NotArbiter);
		assert_noop!(close(&c), Error::<Test>::NotDecided);
		assert_ok!(report(&c, 1, true));
		// Two of three: decided before the deadline.
		assert_ok!(close(&c));
		assert_eq!(closed_as(), ChallengeOutcome::FraudProven);

		// Half of the 1 000 bond slashed: 40 % of it (200) to the challenger, the two arbiters
		// who reported it paid their fee out of the rest, 290 burned; the server is no longer
		// announced and the rest of its bond unbonds.
		assert_eq!(held(&c.server), 500);
		assert_eq!(Balances::free_balance(&c.server), 1_000);
		assert!(!Servers::<Test>::contains_key(&c.server));
		assert_eq!(challenge_bond(&c.challenger), 0);
		assert_eq!(Balances::free_balance(&c.challenger), 500 + 200);
		assert_eq!(Balances::free_balance(&c.arbiters[0]), 10 + ARBITER_FEE);
		assert_eq!(Balances::free_balance(&c.arbiters[1]), 10 + ARBITER_FEE);
		assert_eq!(Balances::total_issuance(), issuance - 300 + 2 * ARBITER_FEE);
		// The third had not reported when two thirds decided: neither paid nor penalised.
		assert_eq!(Balances::free_balance(&c.arbiters[2]), 10);
		assert!(PENALISED.with(|p| p.borrow().is_empty()));
		assert!(Challenges::<Test>::get(0).is_none());
		assert!(OpenChallenges::<Test>::get(&c.server).is_none());
		// The lie was paid for: the session is not challenged again, even once the server
		// bonds anew.
		assert_ok!(announce(&c.server, 500));
		assert_noop!(challenge(&c, 1), Error::<Test>::AlreadyProven);
	});
}

#[test]
fn a_refuted_challenge_costs_the_challenger_half_to_the_server_half_burned() {
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		let issuance = Balances::total_issuance();
		assert_ok!(challenge(&c, 1));
		go_to(3);
		assert_ok!(report(&c, 0, false));
		assert_ok!(report(&c, 1, true));
		assert_ok!(report(&c, 2, false));
		assert_ok!(close(&c));
		assert_eq!(closed_as(), ChallengeOutcome::Refuted);
		assert_eq!(Balances::free_balance(&c.challenger), 500 - CHALLENGE_BOND);
		assert_eq!(Balances::free_balance(&c.server), 1_000 + CHALLENGE_BOND / 2);
		assert_eq!(held(&c.server), 1_000);
		// The two arbiters who re-executed it right are paid out of the burned half; the one
		// who reported a lie that two thirds did not see loses its penalty.
		assert_eq!(Balances::free_balance(&c.arbiters[0]), 10 + ARBITER_FEE);
		assert_eq!(Balances::free_balance(&c.arbiters[2]), 10 + ARBITER_FEE);
		assert_eq!(Balances::free_balance(&c.arbiters[1]), 10);
		assert_eq!(
			PENALISED.with(|p| p.borrow().clone()),
			vec![(VerifierDuty::InferenceChallenge(0), c.arbiters[1].clone())]
		);
		assert_eq!(Balances::total_issuance(), issuance - CHALLENGE_BOND / 2 + 2 * ARBITER_FEE);
		// The server serves on, and may withdraw again (its bond unbonding).
		assert_ok!(Inference::withdraw(RuntimeOrigin::signed(c.server.clone())));
		assert!(Unbonding::<Test>::contains_key(&c.server));
	});
}

#[test]
fn a_challenge_without_a_decision_returns_the_bond_and_penalises_the_silent_arbiter() {
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		assert_ok!(challenge(&c, 1));
		go_to(3);
		assert_ok!(report(&c, 0, true));
		assert_ok!(report(&c, 1, false));
		assert_noop!(close(&c), Error::<Test>::NotDecided);
		go_to(1 + WINDOW);
		assert_noop!(report(&c, 2, true), Error::<Test>::TooLate);
		assert_ok!(close(&c));
		assert_eq!(closed_as(), ChallengeOutcome::Undecided);
		assert_eq!(Balances::free_balance(&c.challenger), 500);
		assert_eq!(held(&c.server), 1_000);
		// Nobody lost, so nobody is paid; the arbiter who let the deadline pass is penalised.
		assert!(c.arbiters.iter().all(|a| Balances::free_balance(a) == 10));
		assert_eq!(
			PENALISED.with(|p| p.borrow().clone()),
			vec![(VerifierDuty::InferenceChallenge(0), c.arbiters[2].clone())]
		);

		// With no verifier to draw, a challenge is returned at its deadline too.
		System::reset_events();
		VERIFIERS.with(|v| v.borrow_mut().clear());
		assert_ok!(challenge(&c, 2));
		go_to(2 + WINDOW);
		assert_eq!(Challenges::<Test>::get(1).unwrap().arbiters.map(|a| a.len()), Some(0));
		assert_noop!(
			Inference::close_challenge(RuntimeOrigin::signed(c.arbiters[0].clone()), 1),
			Error::<Test>::NotDecided
		);
		go_to(1 + 2 * WINDOW);
		assert_ok!(Inference::close_challenge(RuntimeOrigin::signed(c.arbiters[0].clone()), 1));
		assert_eq!(closed_as(), ChallengeOutcome::Undecided);
		assert_eq!(Balances::free_balance(&c.challenger), 500);
	});
}

#[test]
fn a_challenged_servers_bond_is_not_released_until_the_challenge_is_closed() {
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		assert_ok!(challenge(&c, 1));
		// It may lower its bond and withdraw (nobody is locked in), but what it takes off
		// unbonds and stays held while the challenge is open.
		assert_ok!(announce(&c.server, 500));
		assert_ok!(Inference::withdraw(RuntimeOrigin::signed(c.server.clone())));
		assert_eq!(held(&c.server), 1_000);
		go_to(1 + WINDOW);
		assert_noop!(
			Inference::release_bond(RuntimeOrigin::signed(c.server.clone()), c.server.clone()),
			Error::<Test>::UnderChallenge
		);
		// Its arbiters stayed silent: closed at the deadline, the challenger's bond returned,
		// each arbiter penalised.
		assert_ok!(close(&c));
		assert_eq!(closed_as(), ChallengeOutcome::Undecided);
		assert_eq!(PENALISED.with(|p| p.borrow().len()), 3);
		assert_ok!(Inference::release_bond(
			RuntimeOrigin::signed(c.server.clone()),
			c.server.clone()
		));
		assert_eq!(held(&c.server), 0);
		assert_eq!(Balances::free_balance(&c.server), 2_000);
	});
}

#[test]
fn arbiters_are_drawn_by_the_chain_from_the_randomness_of_the_block_after_the_challenge() {
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		assert_ok!(challenge(&c, 1));
		// Nobody draws: no call exists for it, so neither party picks when (or whether) the
		// draw is made; the challenge's own block draws nothing.
		assert!(SEEDS.with(|s| s.borrow().is_empty()));
		go_to(2);
		let subject = (b"bly/inference-arbiters", 0u32).encode();
		let expected = BlakeTwo256::hash_of(&(&subject[..], 2u64));
		assert_eq!(SEEDS.with(|s| s.borrow().clone()), vec![expected.as_bytes().to_vec()]);
		assert!(Challenges::<Test>::get(0).unwrap().arbiters.is_some());
		System::assert_has_event(
			Event::ArbitersDrawn {
				challenge: 0,
				arbiters: c.arbiters.clone(),
				deadline: 1 + WINDOW,
			}
			.into(),
		);

		// More challenges in one block than draws a block takes (two): the rest are drawn in
		// the next block, from its randomness.
		SEEDS.with(|s| s.borrow_mut().clear());
		for session in 2..5 {
			assert_ok!(challenge(&c, session));
		}
		go_to(3);
		assert_eq!(SEEDS.with(|s| s.borrow().len()), 2);
		assert!(Challenges::<Test>::get(3).unwrap().arbiters.is_none());
		go_to(4);
		assert!(Challenges::<Test>::get(3).unwrap().arbiters.is_some());
		let subject = (b"bly/inference-arbiters", 3u32).encode();
		assert_eq!(
			SEEDS.with(|s| s.borrow()[2].clone()),
			BlakeTwo256::hash_of(&(&subject[..], 4u64)).as_bytes().to_vec()
		);
		assert_eq!(DrawQueue::<Test>::iter().count(), 0);
	});
}

#[test]
fn a_challenge_is_refused_unless_it_holds_the_servers_signature_and_a_bond() {
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		let origin = RuntimeOrigin::signed(c.challenger.clone());
		let signed =
			|commitment: &ChunkCommitment<AccountId>| sign_commitment(&c.public, commitment);

		// Signed by someone else.
		let (other, _) = new_account(0);
		let forged = sign_commitment(&other, &commitment(&c.server, 1));
		assert_noop!(
			Inference::challenge(origin.clone(), commitment(&c.server, 1), forged, evidence()),
			Error::<Test>::BadCommitmentSignature
		);
		// Signed, then changed.
		let mut changed = commitment(&c.server, 1);
		let signature = signed(&changed);
		changed.transcript = [8; 32];
		assert_noop!(
			Inference::challenge(origin.clone(), changed, signature, evidence()),
			Error::<Test>::BadCommitmentSignature
		);
		let mut gpu = commitment(&c.server, 1);
		gpu.bit_exact = false;
		assert_noop!(
			Inference::challenge(origin.clone(), gpu.clone(), signed(&gpu), evidence()),
			Error::<Test>::NotBitExact
		);
		let mut unknown = commitment(&c.server, 1);
		unknown.version = 9;
		assert_noop!(
			Inference::challenge(origin.clone(), unknown.clone(), signed(&unknown), evidence()),
			Error::<Test>::BadCommitment
		);
		let good = commitment(&c.server, 1);
		assert_noop!(
			Inference::challenge(origin.clone(), good.clone(), signed(&good), Default::default()),
			Error::<Test>::NoEvidence
		);
		assert_noop!(
			Inference::challenge(
				RuntimeOrigin::signed(c.server.clone()),
				good.clone(),
				signed(&good),
				evidence()
			),
			Error::<Test>::SelfChallenge
		);
		let (_, poor) = new_account(CHALLENGE_BOND / 2);
		assert_noop!(
			Inference::challenge(
				RuntimeOrigin::signed(poor),
				good.clone(),
				signed(&good),
				evidence()
			),
			Error::<Test>::InsufficientChallengeBond
		);
		// An unannounced server has no bond to answer with.
		let (stranger_key, stranger) = new_account(10);
		let theirs = commitment(&stranger, 1);
		let theirs_signed = sign_commitment(&stranger_key, &theirs);
		assert_noop!(
			Inference::challenge(origin.clone(), theirs, theirs_signed, evidence()),
			Error::<Test>::NotAnnounced
		);
		assert_ok!(Inference::challenge(origin.clone(), good.clone(), signed(&good), evidence()));
		// Another challenge of the same session is taken: a decoy (say, the server's own sybil
		// challenging first) cannot shut out an honest challenger.
		assert_ok!(Inference::challenge(origin, good.clone(), signed(&good), evidence()));
		assert_eq!(OpenChallenges::<Test>::get(&c.server), Some(2));
		assert_noop!(
			Inference::close_challenge(RuntimeOrigin::signed(c.challenger.clone()), 7),
			Error::<Test>::UnknownChallenge
		);
	});
}

#[test]
fn governance_sets_the_challenge_parameters_within_range() {
	new_test_ext().execute_with(|| {
		let mut params = <Inference as GovernedParams<_>>::params();
		params.arbiters = 0;
		assert_noop!(
			<Inference as GovernedParams<_>>::set_params(params.clone()),
			Error::<Test>::BadParams
		);
		params.arbiters = MAX_INFERENCE_ARBITERS + 1;
		assert_noop!(
			<Inference as GovernedParams<_>>::set_params(params.clone()),
			Error::<Test>::BadParams
		);
		params.arbiters = 5;
		params.check_rate = sp_runtime::Perbill::from_percent(10);
		// Five arbiters' fees must fit in the half of the bond a refuted challenge burns.
		params.arbiter_fee = CHALLENGE_BOND / 2 / 5 + 1;
		assert_noop!(
			<Inference as GovernedParams<_>>::set_params(params.clone()),
			Error::<Test>::BadParams
		);
		params.arbiter_fee = CHALLENGE_BOND / 2 / 5;
		assert_ok!(<Inference as GovernedParams<_>>::set_params(params.clone()));
		assert_eq!(Params::<Test>::get(), params);
	});
}

#[test]
fn a_server_that_withdraws_after_lying_is_still_slashed_from_its_unbonding_bond() {
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		// The liar withdraws at once; its bond unbonds for the arbitration window.
		assert_ok!(Inference::withdraw(RuntimeOrigin::signed(c.server.clone())));
		assert_eq!(held(&c.server), 1_000);
		assert_ok!(challenge(&c, 1));
		go_to(3);
		// Not released while challenged, even once the unbonding is over.
		System::set_block_number(1 + WINDOW);
		assert_noop!(
			Inference::release_bond(RuntimeOrigin::signed(c.server.clone()), c.server.clone()),
			Error::<Test>::UnderChallenge
		);
		System::set_block_number(3);
		assert_ok!(report(&c, 0, true));
		assert_ok!(report(&c, 2, true));
		assert_ok!(close(&c));
		assert_eq!(closed_as(), ChallengeOutcome::FraudProven);
		// Half its bond slashed; the other half unbonds anew (another challenge might be open).
		assert_eq!(Balances::free_balance(&c.server), 1_000);
		assert_eq!(held(&c.server), 500);
		assert_eq!(Unbonding::<Test>::get(&c.server).unwrap().amount, 500);
		assert_eq!(Balances::free_balance(&c.challenger), 500 + 200);
		go_to(3 + WINDOW);
		assert_ok!(Inference::release_bond(
			RuntimeOrigin::signed(c.server.clone()),
			c.server.clone()
		));
		assert_eq!(Balances::free_balance(&c.server), 2_000 - 500);
	});
}

#[test]
fn a_restarted_server_takes_its_unbonding_bond_back_instead_of_bonding_twice() {
	new_test_ext().execute_with(|| {
		let (_, server) = new_account(1_000);
		assert_ok!(announce(&server, 800));
		assert_ok!(Inference::withdraw(RuntimeOrigin::signed(server.clone())));
		// 800 unbonding, 200 free: announcing 900 holds only 100 more.
		assert_ok!(announce(&server, 900));
		assert_eq!(held(&server), 900);
		assert!(Unbonding::<Test>::get(&server).is_none());
		// Part of it taken back: the rest keeps unbonding.
		assert_ok!(announce(&server, 300));
		assert_ok!(Inference::withdraw(RuntimeOrigin::signed(server.clone())));
		assert_eq!(Unbonding::<Test>::get(&server).unwrap().amount, 900);
		assert_ok!(announce(&server, 400));
		assert_eq!(Unbonding::<Test>::get(&server).unwrap().amount, 500);
		assert_eq!(held(&server), 900);
	});
}

#[test]
fn a_lie_proven_by_two_challenges_at_once_is_slashed_once() {
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		assert_ok!(challenge(&c, 1));
		assert_ok!(challenge(&c, 1));
		go_to(3);
		for id in [0, 1] {
			for arbiter in &c.arbiters {
				assert_ok!(Inference::arbitrate(RuntimeOrigin::signed(arbiter.clone()), id, true));
			}
		}
		assert_ok!(close(&c));
		assert_eq!(closed_as(), ChallengeOutcome::FraudProven);
		System::reset_events();
		assert_ok!(Inference::close_challenge(RuntimeOrigin::signed(c.challenger.clone()), 1));
		assert_eq!(closed_as(), ChallengeOutcome::Undecided);
		// One slash of half the bond (200 of it paid), both bonds back.
		assert_eq!(Balances::free_balance(&c.challenger), 500 + 200);
		assert_eq!(held(&c.server), 500);
	});
}

#[test]
fn a_flood_of_challenges_is_drawn_a_few_a_block_each_with_a_whole_window_from_its_draw() {
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		Balances::set_balance(&c.challenger, 24 * CHALLENGE_BOND + 100);
		for session in 0..24 {
			assert_ok!(challenge(&c, session));
		}
		// Two draws a block: by the first deadline (block 11) 20 are drawn, 4 still queued.
		go_to(1 + WINDOW);
		let drawn = || (0..24).filter(|id| Challenges::<Test>::get(id).unwrap().arbiters.is_some());
		assert_eq!(drawn().count(), 20);
		assert_eq!(DrawQueue::<Test>::iter().count(), 4);
		go_to(12);
		// Drawn last (at block 13, eleven blocks late; the queue's order is its keys' hashes').
		let last = (0..24)
			.find(|id| Challenges::<Test>::get(id).unwrap().arbiters.is_none())
			.expect("two left for block 13");
		// Not closed before its arbiters had their window.
		assert_noop!(
			Inference::close_challenge(RuntimeOrigin::signed(c.challenger.clone()), last),
			Error::<Test>::NotDecided
		);
		go_to(13);
		assert_eq!(drawn().count(), 24);
		// Its arbiters report until eleven blocks after the first deadline.
		assert_eq!(Challenges::<Test>::get(last).unwrap().deadline, 12 + WINDOW);
		go_to(11 + WINDOW);
		let arbiter = RuntimeOrigin::signed(c.arbiters[0].clone());
		assert_ok!(Inference::arbitrate(arbiter, last, false));
		assert_noop!(
			Inference::close_challenge(RuntimeOrigin::signed(c.challenger.clone()), last),
			Error::<Test>::NotDecided
		);
		go_to(12 + WINDOW);
		for id in 0..24 {
			assert_ok!(Inference::close_challenge(RuntimeOrigin::signed(c.challenger.clone()), id));
		}
		assert_eq!(DrawQueue::<Test>::iter().count(), 0);
		assert_eq!(Balances::free_balance(&c.challenger), 24 * CHALLENGE_BOND + 100);
		// Every seat that let its whole window pass in silence was penalised (all but one).
		assert_eq!(PENALISED.with(|p| p.borrow().len()), 24 * 3 - 1);
	});
}

#[test]
fn the_v1_migration_adds_the_arbiters_fee_within_the_bond_and_queues_undrawn_challenges() {
	use crate::migrations::{v1::OldInferenceParams, MigrateV0ToV1};
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
	new_test_ext().execute_with(|| {
		let c = challenge_setup();
		// v0: governance had set five arbiters; a challenge nobody drew arbiters for.
		let old = OldInferenceParams {
			check_rate: sp_runtime::Perbill::from_percent(5),
			challenge_bond: CHALLENGE_BOND,
			arbiters: 5,
			arbitration_window: WINDOW,
			fraud_slash: sp_runtime::Perbill::from_percent(50),
			challenger_share: sp_runtime::Perbill::from_percent(40),
		};
		frame_support::storage::unhashed::put(&Params::<Test>::hashed_key(), &old);
		assert_ok!(challenge(&c, 1));
		DrawQueue::<Test>::remove(2, 0);
		StorageVersion::new(0).put::<Inference>();

		MigrateV0ToV1::<Test>::on_runtime_upgrade();
		assert_eq!(Inference::on_chain_storage_version(), 1);
		let params = Params::<Test>::get();
		assert_eq!(params.arbiters, 5);
		// The default fee (5) would not fit: five fees in half the bond (20) are 4 each.
		assert_eq!(params.arbiter_fee, CHALLENGE_BOND / 2 / 5);
		assert_ok!(Inference::check_params(&params));
		go_to(2);
		assert!(Challenges::<Test>::get(0).unwrap().arbiters.is_some());
		// Once only: a second run changes nothing (v1 values are not read as v0 ones).
		Params::<Test>::mutate(|p| p.arbiter_fee = 1);
		let before = Params::<Test>::get();
		MigrateV0ToV1::<Test>::on_runtime_upgrade();
		assert_eq!(Params::<Test>::get(), before);
		assert_eq!(DrawQueue::<Test>::iter().count(), 0);
	});
}
