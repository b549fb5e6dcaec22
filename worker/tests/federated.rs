//! Federated rounds over HTTP on 127.0.0.1: an aggregator server and five participant clients,
//! each its own task with its own connection.

use std::{
	collections::BTreeMap,
	sync::{
		atomic::{AtomicBool, AtomicU32, Ordering},
		Arc,
	},
	time::Duration,
};

use blyan_worker::federated::{
	job::{contribute, Contribution, RoundPart},
	robust::Aggregation,
	round::{Aggregator, Mode, RoundClient, RoundInfo, RoundOutcome},
	secagg::{
		encode_fixed, plain_sum, recover_secret, strip_self_mask, Participant, ParticipantId,
		SecretKind,
	},
};
use codec::Encode;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const N: usize = 5;
const THRESHOLD: u16 = 3;
const LEN: usize = 4096;

async fn start(phase_timeout: Duration) -> (Aggregator, String) {
	let aggregator = Aggregator::new(phase_timeout);
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
	let url = format!("http://{}", listener.local_addr().unwrap());
	let app = aggregator.router();
	tokio::spawn(async move { axum::serve(listener, app).await });
	(aggregator, url)
}

fn info(round: u32, mode: Mode) -> RoundInfo {
	RoundInfo {
		round,
		session: [round as u8; 32],
		participants: (0..N as ParticipantId).collect(),
		len: LEN as u32,
		mode,
		min_contributors: THRESHOLD,
	}
}

/// Updates of participant `i`: small values such as clipped model deltas.
fn update(i: usize) -> Vec<f32> {
	(0..LEN).map(|k| (((k * 7 + i * 13) % 101) as f32 - 50.0) * 1e-4 * (i as f32 + 1.0)).collect()
}

/// Participants who never send their masked input (after sharing keys and masking).
async fn secure_round(
	url: &str,
	aggregator: &Aggregator,
	round: u32,
	drop_after_masking: &[ParticipantId],
) -> (RoundOutcome, Vec<Vec<u64>>, Vec<Result<(Vec<ParticipantId>, Vec<f32>), String>>) {
	let inputs: Vec<Vec<u64>> = (0..N).map(|i| encode_fixed(&update(i))).collect();
	let running = {
		let aggregator = aggregator.clone();
		tokio::spawn(async move {
			aggregator
				.run_round(
					info(round, Mode::Secure { threshold: THRESHOLD }),
					Duration::from_secs(3),
				)
				.await
		})
	};
	let mut tasks = Vec::new();
	for (i, input) in inputs.iter().cloned().enumerate() {
		let id = i as ParticipantId;
		let drops = drop_after_masking.contains(&id);
		let client = RoundClient::new(reqwest::Client::new(), url);
		tasks.push(tokio::spawn(async move {
			let mut rng = ChaCha20Rng::from_os_rng();
			// The client learns the round from the aggregator.
			let info = loop {
				match client.info().await {
					Ok(info) if info.round == round => break info,
					_ => tokio::time::sleep(Duration::from_millis(20)).await,
				}
			};
			let threshold = match info.mode {
				Mode::Secure { threshold } => threshold as usize,
				Mode::Plain(_) => unreachable!(),
			};
			let p = Participant::new(id, info.session, threshold, &mut rng);
			if drops {
				let adverts = client.advertise(round, &p).await.map_err(|e| e.to_string())?;
				let (sharers, _) =
					client.share(round, &p, &adverts).await.map_err(|e| e.to_string())?;
				let _masked = p.mask(&input, &sharers).unwrap();
				return Err("dropped".to_string()); // gone before sending it
			}
			client.secure_round(round, &p, &input).await.map_err(|e| e.to_string())
		}));
	}
	let mut results = Vec::new();
	for t in tasks {
		results.push(t.await.unwrap());
	}
	let outcome = running.await.unwrap().expect("the round completes");
	(outcome, inputs, results)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secure_sum_is_exact_and_hides_each_update() {
	let (aggregator, url) = start(Duration::from_secs(3)).await;
	let (outcome, inputs, results) = secure_round(&url, &aggregator, 1, &[]).await;

	// The sum equals the plain sum of the fixed-point updates to the last bit.
	let expected = plain_sum(&inputs.iter().map(Vec::as_slice).collect::<Vec<_>>());
	assert_eq!(outcome.sum_fixed.as_ref().unwrap(), &expected);
	assert_eq!(outcome.contributors, (0..N as ParticipantId).collect::<Vec<_>>());
	for r in &results {
		let (contributors, mean) = r.as_ref().unwrap();
		assert_eq!(contributors.len(), N);
		assert_eq!(mean, &outcome.aggregate);
	}
	// And its mean is the plain mean of the updates (to the fixed-point resolution).
	for k in (0..LEN).step_by(97) {
		let plain = (0..N).map(|i| update(i)[k] as f64).sum::<f64>() / N as f64;
		assert!((outcome.aggregate[k] as f64 - plain).abs() < 1e-6);
	}

	// What the aggregator saw does not give away any single update.
	let t = &outcome.transcript;
	for (id, masked) in &t.masked {
		let x = &inputs[*id as usize];
		// The self mask it can take off; the pairwise masks stay: what is left looks uniform
		// in Z_2^64, while a real update is a small fixed-point number: all its values have
		// |v| < 2^40, where a uniform value falls with probability 2^-23 (0.0005 expected of
		// 4096; more than 4 has a probability below 10^-20).
		assert!(x.iter().all(|v| (*v as i64).unsigned_abs() < 1 << 40));
		let peeled = strip_self_mask(masked, *id, &t.revealed, THRESHOLD as usize).unwrap();
		for candidate in [masked, &peeled] {
			let small = candidate.iter().filter(|v| (**v as i64).unsigned_abs() < 1 << 40).count();
			assert!(small <= 4, "participant {id}: {small} of {LEN} values look like an update");
			assert!(candidate.iter().zip(x).all(|(a, b)| a != b));
		}
		// Its mask key was never revealed, so its pairwise masks cannot be rebuilt.
		assert!(t.revealed.iter().all(|r| !(r.owner == *id && r.kind == SecretKind::MaskKey)));
		assert!(recover_secret(&t.revealed, *id, SecretKind::MaskKey, THRESHOLD as usize).is_err());
	}
	// Every share went through the aggregator encrypted: none is a valid share in the clear.
	assert_eq!(t.shares.len(), N * N);
	println!(
		"secure round, {N} participants × {LEN} values: {:?}, {} B in, {} B out",
		outcome.elapsed, outcome.bytes_in, outcome.bytes_out
	);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_participant_dropping_after_masking_is_recovered() {
	let (aggregator, url) = start(Duration::from_secs(3)).await;
	let (outcome, inputs, results) = secure_round(&url, &aggregator, 7, &[2]).await;
	let expected = plain_sum(&[&inputs[0], &inputs[1], &inputs[3], &inputs[4]]);
	assert_eq!(outcome.sum_fixed.as_ref().unwrap(), &expected);
	assert_eq!(outcome.contributors, vec![0, 1, 3, 4]);
	assert_eq!(results[2], Err("dropped".to_string()));
	// Its mask key was rebuilt from the others' shares, its self seed never revealed.
	let t = &outcome.transcript;
	assert!(t.revealed.iter().any(|r| r.owner == 2 && r.kind == SecretKind::MaskKey));
	assert!(t.revealed.iter().all(|r| !(r.owner == 2 && r.kind == SecretKind::SelfSeed)));

	// Three gone leaves two, below the threshold: the round fails with a reason, nothing leaks.
	let running = {
		let aggregator = aggregator.clone();
		tokio::spawn(async move {
			aggregator
				.run_round(
					info(8, Mode::Secure { threshold: THRESHOLD }),
					Duration::from_millis(500),
				)
				.await
		})
	};
	let mut rng = ChaCha20Rng::seed_from_u64(3);
	let clients: Vec<_> =
		(0..2).map(|_| Arc::new(RoundClient::new(reqwest::Client::new(), &url))).collect();
	tokio::time::sleep(Duration::from_millis(50)).await;
	let mut tasks = Vec::new();
	for (i, c) in clients.iter().enumerate() {
		let p = Participant::new(i as ParticipantId, [8; 32], THRESHOLD as usize, &mut rng);
		let c = c.clone();
		tasks.push(tokio::spawn(async move { c.secure_round(8, &p, &[0u64; LEN]).await }));
	}
	let err = running.await.unwrap().unwrap_err().to_string();
	assert!(err.contains("2 of 3 participants advertised keys"), "{err}");
	for t in tasks {
		assert!(t.await.unwrap().is_err());
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn robust_rules_hold_against_a_scaled_update_over_http() {
	let (aggregator, url) = start(Duration::from_secs(3)).await;
	let honest: Vec<Vec<f32>> = (0..N).map(update).collect();
	let mut sent = honest.clone();
	for v in &mut sent[4] {
		*v *= 100.0;
	}
	let mut aggregates = BTreeMap::new();
	for (round, rule) in [
		(20, Aggregation::Mean),
		(21, Aggregation::Median),
		(22, Aggregation::TrimmedMean { trim: 1 }),
		(23, Aggregation::MultiKrum { byzantine: 1, selected: 3 }),
	] {
		let running = {
			let aggregator = aggregator.clone();
			tokio::spawn(async move {
				aggregator.run_round(info(round, Mode::Plain(rule)), Duration::from_secs(3)).await
			})
		};
		tokio::time::sleep(Duration::from_millis(50)).await;
		let mut tasks = Vec::new();
		for (i, u) in sent.iter().cloned().enumerate() {
			let client = RoundClient::new(reqwest::Client::new(), &url);
			tasks.push(tokio::spawn(async move {
				client.plain_round(round, i as ParticipantId, u).await
			}));
		}
		let outcome = running.await.unwrap().unwrap();
		for t in tasks {
			assert_eq!(t.await.unwrap().unwrap().1, outcome.aggregate);
		}
		aggregates.insert(format!("{rule:?}"), outcome.aggregate);
	}
	// The stated bound: each coordinate of a robust aggregate stays within the range of the four
	// honest updates; the plain mean is dragged out of it.
	let range = |k: usize| {
		let col = honest[..4].iter().map(|u| u[k]);
		(col.clone().fold(f32::INFINITY, f32::min), col.fold(f32::NEG_INFINITY, f32::max))
	};
	for (rule, agg) in &aggregates {
		let outside = (0..LEN)
			.filter(|k| {
				let (lo, hi) = range(*k);
				agg[*k] < lo - 1e-6 || agg[*k] > hi + 1e-6
			})
			.count();
		if rule == "Mean" {
			assert!(
				outside > LEN / 2,
				"the plain mean stayed in range on {} values",
				LEN - outside
			);
		} else {
			assert_eq!(outside, 0, "{rule} left the honest range on {outside} values");
		}
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_aggregator_takes_only_well_formed_reveals() {
	use codec::Encode;
	let (aggregator, url) = start(Duration::from_secs(3)).await;
	let round = 30;
	let mut info = info(round, Mode::Secure { threshold: 2 });
	info.participants = vec![0, 1, 2];
	info.min_contributors = 2;
	let running = {
		let aggregator = aggregator.clone();
		tokio::spawn(async move { aggregator.run_round(info, Duration::from_secs(3)).await })
	};
	tokio::time::sleep(Duration::from_millis(50)).await;
	let mut rng = ChaCha20Rng::seed_from_u64(5);
	let inputs: Vec<Vec<u64>> = (0..3).map(|i| encode_fixed(&update(i))).collect();
	let mut honest = Vec::new();
	for i in 0..2 {
		let p = Participant::new(i, [round as u8; 32], 2, &mut rng);
		let client = RoundClient::new(reqwest::Client::new(), &url);
		let input = inputs[i as usize].clone();
		honest.push(tokio::spawn(async move { client.secure_round(round, &p, &input).await }));
	}
	// Participant 2 runs the steps itself and first reveals a share too few, then one twice.
	let p = Participant::new(2, [round as u8; 32], 2, &mut rng);
	let client = RoundClient::new(reqwest::Client::new(), &url);
	let adverts = client.advertise(round, &p).await.unwrap();
	let (sharers, held) = client.share(round, &p, &adverts).await.unwrap();
	client.send_masked(round, 2, p.mask(&inputs[2], &sharers).unwrap()).await.unwrap();
	let http = reqwest::Client::new();
	let survivors: Vec<ParticipantId> = loop {
		let r = http.get(format!("{url}/fl/{round}/survivors")).send().await.unwrap();
		if r.status().is_success() {
			break codec::Decode::decode(&mut &r.bytes().await.unwrap()[..]).unwrap();
		}
	};
	let good = p.unmask(&held, &sharers, &survivors).unwrap();
	let post = |shares: Vec<blyan_worker::federated::secagg::RevealedShare>| {
		let http = http.clone();
		let url = url.clone();
		async move {
			http.post(format!("{url}/fl/{round}/reveal"))
				.body((2 as ParticipantId, shares).encode())
				.send()
				.await
				.unwrap()
				.status()
				.as_u16()
		}
	};
	assert_eq!(post(good[1..].to_vec()).await, 422, "a share missing");
	let mut twice = good.clone();
	twice.push(good[0].clone());
	assert_eq!(post(twice).await, 422, "a share twice");
	let mut moved = good.clone();
	moved[0].share[0] = 1; // another participant's x
	assert_eq!(post(moved).await, 422, "a share at someone else's x");
	assert_eq!(post(good.clone()).await, 204);
	// A second reveal is refused: as a duplicate, or as too late once the round has ended.
	assert!(matches!(post(good).await, 409 | 422), "a second reveal");

	let outcome = running.await.unwrap().expect("the round completes");
	assert_eq!(
		outcome.sum_fixed.unwrap(),
		plain_sum(&inputs.iter().map(Vec::as_slice).collect::<Vec<_>>())
	);
	for h in honest {
		h.await.unwrap().unwrap();
	}
}

/// A participant's round: its contributors and aggregate, or why it ended without them.
type Participation = tokio::task::JoinHandle<Result<(Vec<ParticipantId>, Vec<f32>), String>>;

/// Participants taking part in `round` through [`contribute`] (each its own task), waiting for
/// the aggregator to open it; each participant's update is [`update`].
fn contributors(
	url: &str,
	round: u32,
	mode: Mode,
	ids: impl IntoIterator<Item = usize>,
) -> Vec<Participation> {
	ids.into_iter()
		.map(|i| {
			let client = RoundClient::new(reqwest::Client::new(), url);
			tokio::spawn(async move {
				let update = update(i);
				let part = RoundPart {
					round,
					session: [round as u8; 32],
					id: i as ParticipantId,
					mode,
					min_contributors: THRESHOLD,
					update: &update,
					after_attempt: None,
				};
				match contribute(&client, &part, || async { Ok(true) }).await {
					Ok(Contribution::Done { contributors, aggregate, .. }) => {
						Ok((contributors, aggregate))
					}
					Ok(Contribution::SatOut(why)) => Err(why),
					Err(e) => Err(e.to_string()),
				}
			})
		})
		.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn participants_join_a_failed_round_again_when_the_aggregator_reopens_it() {
	let (aggregator, url) = start(Duration::from_secs(3)).await;
	for (round, mode) in
		[(30, Mode::Plain(Aggregation::Mean)), (31, Mode::Secure { threshold: THRESHOLD })]
	{
		// Two participants are on time, three come after the first attempt failed (two of the
		// three needed arrived): the aggregator runs the round again, as a miner does.
		let on_time = contributors(&url, round, mode, 0..2);
		let first = aggregator.run_round(info(round, mode), Duration::from_secs(3)).await;
		let err = first.expect_err("two of three").to_string();
		assert!(err.contains("2 of 3"), "{err}");
		let late = contributors(&url, round, mode, 2..N);
		let outcome =
			aggregator.run_round(info(round, mode), Duration::from_secs(5)).await.expect("retried");
		assert_eq!(outcome.contributors, (0..N as ParticipantId).collect::<Vec<_>>());
		for t in on_time.into_iter().chain(late) {
			let (contributors, aggregate) = tokio::time::timeout(Duration::from_secs(30), t)
				.await
				.expect("every participant ends")
				.unwrap()
				.expect("every participant's result");
			assert_eq!(contributors, outcome.contributors);
			assert_eq!(aggregate, outcome.aggregate);
		}
		// The on-time participants sent the same update again: the plain mean is the five
		// updates' (a second draw of noise would be another release of their data).
		if let Mode::Plain(_) = mode {
			let mean: Vec<f32> =
				(0..LEN).map(|k| (0..N).map(|i| update(i)[k]).sum::<f32>() / N as f32).collect();
			let close = outcome.aggregate.iter().zip(&mean).all(|(a, m)| (a - m).abs() < 1e-6);
			assert!(close, "the retried round's mean is not the five updates'");
		}
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secure_round_that_failed_after_taking_a_masked_update_is_not_joined_again() {
	// Three participants share keys and vanish before masking: the two that sent masked
	// updates see the round fail in its masked phase and sit it out rather than mask the same update
	// again for a next attempt (whose sum, over other survivors, could be subtracted from it).
	let (aggregator, url) = start(Duration::from_secs(3)).await;
	let mode = Mode::Secure { threshold: THRESHOLD };
	let round = 32;
	let running = {
		let aggregator = aggregator.clone();
		tokio::spawn(async move {
			aggregator.run_round(info(round, mode), Duration::from_secs(3)).await
		})
	};
	let staying = contributors(&url, round, mode, 0..2);
	let mut vanishing = Vec::new();
	for i in 2..N {
		let client = RoundClient::new(reqwest::Client::new(), &url);
		vanishing.push(tokio::spawn(async move {
			let mut rng = ChaCha20Rng::seed_from_u64(i as u64);
			let p = Participant::new(
				i as ParticipantId,
				[round as u8; 32],
				THRESHOLD as usize,
				&mut rng,
			);
			while client.info().await.ok().map(|i| i.round) != Some(round) {
				tokio::time::sleep(Duration::from_millis(20)).await;
			}
			let adverts = client.advertise(round, &p).await.unwrap();
			client.share(round, &p, &adverts).await.unwrap();
		}));
	}
	for v in vanishing {
		v.await.unwrap();
	}
	let err = running.await.unwrap().expect_err("two masked inputs of three").to_string();
	assert!(err.contains("2 of 3 masked inputs"), "{err}");
	for t in staying {
		let err = tokio::time::timeout(Duration::from_secs(10), t)
			.await
			.expect("the participant stops instead of waiting for another attempt")
			.unwrap()
			.expect_err("no result");
		assert!(err.contains("not sent again"), "{err}");
	}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_held_by_a_silent_aggregator_stops_once_the_chain_closes_the_round() {
	// An aggregator that opens a round, takes the update and never answers: the connection stays
	// up, so neither TCP keep-alive nor the client notices anything. The participant asks the
	// chain every five seconds whether the round is still open (here: open at the first asking,
	// recorded at the second) and stops waiting once it is not.
	let round = 40;
	let mode = Mode::Plain(Aggregation::Mean);
	let held = Arc::new(AtomicBool::new(false));
	let app = axum::Router::new()
		.route(
			"/fl/round",
			axum::routing::get(move || async move { (info(round, mode), 7u64).encode() }),
		)
		.route(
			"/fl/{round}/update",
			axum::routing::post({
				let held = held.clone();
				move |_update: axum::body::Bytes| async move {
					held.store(true, Ordering::SeqCst);
					std::future::pending::<()>().await
				}
			}),
		);
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
	let url = format!("http://{}", listener.local_addr().unwrap());
	tokio::spawn(async move { axum::serve(listener, app).await });

	let client = RoundClient::connect(&url).expect("a client");
	let update = update(0);
	let part = RoundPart {
		round,
		session: [round as u8; 32],
		id: 0,
		mode,
		min_contributors: THRESHOLD,
		update: &update,
		after_attempt: None,
	};
	let asked = Arc::new(AtomicU32::new(0));
	let still_open = {
		let asked = asked.clone();
		move || {
			let n = asked.fetch_add(1, Ordering::SeqCst) + 1;
			async move { Ok(n < 2) }
		}
	};
	let ended =
		tokio::time::timeout(Duration::from_secs(30), contribute(&client, &part, still_open))
			.await
			.expect("the participant stops waiting on the aggregator")
			.expect("no error");
	match ended {
		Contribution::SatOut(why) => {
			assert!(why.contains("held this participant's request"), "{why}")
		}
		Contribution::Done { .. } => panic!("the aggregator never answered"),
	}
	assert!(held.load(Ordering::SeqCst), "the update reached the aggregator, which held it");
	assert_eq!(asked.load(Ordering::SeqCst), 2, "asked five and ten seconds into the attempt");
}
