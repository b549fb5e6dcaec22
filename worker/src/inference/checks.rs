//! Spot checks: a coordinator re-executes a drawn share of what stages answered and catches a
//! stage that answers bits other than its layers give. Every hop's input passes through the
//! coordinator (it relays hidden states from stage to stage), so for a request drawn at rate
//! `r` it keeps each hop's inputs and the digest of each answer ([`super::route::HopRecord`]);
//! after the answer is sent it replays a hop's chunks, in order, on another server of the same
//! span and compares digests. The CPU path is bit-exact on every machine, so honest stages agree
//! to the bit; on a difference a second peer decides (two against one): the odd one out is
//! caught, never routed to again, and what it signed of the session is the evidence. With a
//! single peer the difference is a dispute, logged with both signed commitments. GPU stages
//! (not bit-exact) are not checked this way.

use std::{
	collections::HashSet,
	sync::{
		atomic::{AtomicUsize, Ordering},
		Arc, Mutex,
	},
	time::{Duration, Instant},
};

use futures::future::BoxFuture;

use super::{
	commitments::{self, SignedCommitment},
	protocol::ForwardRequest,
	route::{new_session, Hop, HopError, HopRecord, Route, RouteError, RouteSource},
};

/// Stages known without a chain (a private deployment, tests, benchmarks): a route takes, at
/// each layer, the first stage given that is not caught or avoided; every other stage of the
/// same span is a peer for spot checks.
pub struct StagePool {
	hops: Vec<Hop>,
	caught: Mutex<HashSet<String>>,
}

impl StagePool {
	pub fn new(hops: Vec<Hop>) -> Self {
		Self { hops, caught: Mutex::new(HashSet::new()) }
	}

	/// Endpoints caught so far.
	pub fn caught_endpoints(&self) -> HashSet<String> {
		self.caught.lock().expect("caught lock").clone()
	}

	fn usable<'a>(&'a self, avoid: &'a HashSet<String>) -> impl Iterator<Item = &'a Hop> + 'a {
		let caught = self.caught_endpoints();
		self.hops.iter().filter(move |h| {
			let endpoint = h.endpoint();
			!caught.contains(&endpoint) && !avoid.contains(&endpoint)
		})
	}
}

impl RouteSource for StagePool {
	fn route<'a>(
		&'a self,
		version: u64,
		avoid: &'a HashSet<String>,
	) -> BoxFuture<'a, Result<Route, RouteError>> {
		let end = self.hops.iter().map(|h| h.span.1).max().unwrap_or(0);
		let mut hops = Vec::new();
		let mut position = 0;
		while position < end {
			let Some(hop) = self.usable(avoid).find(|h| h.span.0 == position) else { break };
			position = hop.span.1;
			hops.push(hop.clone());
		}
		let route = if position == end && end > 0 {
			Ok(Route { hops })
		} else {
			let reason = format!("no usable stage starts at layer {position}");
			Err(RouteError::NoRoute { version, reason })
		};
		Box::pin(async move { route })
	}

	fn peers<'a>(
		&'a self,
		_: u64,
		span: (usize, usize),
		avoid: &'a HashSet<String>,
	) -> BoxFuture<'a, Vec<Hop>> {
		let peers = self.usable(avoid).filter(|h| h.span == span).cloned().collect();
		Box::pin(async move { peers })
	}

	fn caught(&self, hop: &Hop) {
		self.caught.lock().expect("caught lock").insert(hop.endpoint());
	}
}

/// How a spot check of one hop ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
	/// A peer computed the same bits for every chunk.
	Agreed,
	/// Two peers agree with each other and not with the stage from chunk `at` on: caught.
	Caught { at: usize },
	/// The first peer differed and the second agreed with the stage: the first peer is caught.
	CheckerCaught { at: usize },
	/// A peer differs and no second one could decide.
	Disputed { at: usize },
	/// Not checked: why.
	Unchecked(&'static str),
}

/// A check's result, the stages it replayed on (to be paid for the positions they computed) and
/// what was caught.
pub struct CheckOutcome {
	pub verdict: Verdict,
	/// `(peer, positions computed, what it signed last of the replay)`: a replay is paid as a
	/// one-stage route.
	pub replays: Vec<(Hop, u32, Option<SignedCommitment>)>,
	/// The stage caught (the routed one, or a lying peer) with every chunk it answered of its
	/// session and what it signed last of them: the evidence of a challenge on chain.
	pub caught: Option<HopRecord>,
}

/// A replay's digests, up to and including the first that differs from the record's.
struct Replay {
	digests: Vec<[u8; 32]>,
	/// The answers' bytes, with `digests`.
	answers: Vec<bytes::Bytes>,
	first_difference: Option<usize>,
	positions: u32,
	/// What the peer signed last.
	signed: Option<SignedCommitment>,
	/// The replay's transcript at the peer.
	transcript: [u8; 32],
}

impl Replay {
	/// What `peer` answered of `record`'s chunks in this replay, as a record of its own.
	fn record_at(self, peer: Hop, record: &HopRecord) -> HopRecord {
		let inputs = record.inputs[..self.digests.len()].to_vec();
		HopRecord {
			hop: peer,
			inputs,
			digests: self.digests,
			answers: self.answers,
			transcript: self.transcript,
			signed: self.signed,
		}
	}
}

/// Replays `record`'s chunks on `peer` in a new session: each answer checked against the peer's
/// signature, compared with the record's digest; stops at the first difference.
async fn replay(peer: &Hop, record: &HopRecord) -> Result<Replay, HopError> {
	let session = new_session();
	let (mut transcript, mut digests, mut signed) = ([0; 32], Vec::new(), None);
	let mut answers = Vec::new();
	let mut positions = 0u32;
	let mut first_difference = None;
	for (i, ((position, input), expected)) in record.inputs.iter().zip(&record.digests).enumerate()
	{
		let rows = input.rows() as u32;
		let request = ForwardRequest { session, position: *position, input: input.clone() };
		let answer = match peer.client.forward(request).await {
			Ok(answer) => answer,
			Err(e) => {
				peer.client.end(session).await;
				return Err(e);
			}
		};
		positions = *position + rows;
		transcript = commitments::fold(&transcript, &answer.digest);
		let verified = peer.verify(&session, positions, transcript, &answer);
		match verified {
			Ok(Some(s)) if s.commitment.bit_exact => signed = Some(s),
			Ok(_) => {
				peer.client.end(session).await;
				return Err(HopError::Refused {
					endpoint: peer.endpoint(),
					reason: "not a bit-exact stage".into(),
				});
			}
			Err(e) => {
				peer.client.end(session).await;
				return Err(e);
			}
		}
		digests.push(answer.answer_digest);
		answers.push(answer.body.clone());
		if answer.answer_digest != *expected {
			first_difference = Some(i);
			break;
		}
	}
	peer.client.end(session).await;
	Ok(Replay { digests, answers, first_difference, positions, signed, transcript })
}

/// How long a check waits, in all, for a peer at capacity once every other peer was asked. A
/// busy peer is a loaded one, not a missing one: a check that skipped it would lack the second
/// peer that decides a difference, and end as a dispute instead of a catch.
const PEER_BUSY_WAIT: Duration = Duration::from_secs(20);

/// [`replay`], waiting (backing off from 50 ms to a second between tries, [`PEER_BUSY_WAIT`]
/// in all) while the peer refuses a new session because it holds as many as it can.
async fn replay_when_free(peer: &Hop, record: &HopRecord) -> Result<Replay, HopError> {
	let started = Instant::now();
	let mut pause = Duration::from_millis(50);
	loop {
		tokio::time::sleep(pause).await;
		match replay(peer, record).await {
			Err(HopError::Busy(_)) if started.elapsed() + pause <= PEER_BUSY_WAIT => {
				pause = (pause * 2).min(Duration::from_secs(1));
			}
			done => return done,
		}
	}
}

/// Spot checks a coordinator runs at once, by default: a check mostly waits on peers (a replay,
/// a busy peer for up to 20 s), so a few run side by side.
pub const CHECKS_RUNNING: usize = 8;
/// Checks that may wait for a turn, by default, beyond those running.
pub const CHECKS_WAITING: usize = 64;

/// Bounds a coordinator's spot checks: each holds a completion's hidden states in memory until
/// it ends and takes peers' compute, so under load unbounded checks would grow without limit.
/// At most `running` run at once and `waiting` more wait for a turn; a completion drawn when
/// the queue is full is not checked (the coordinator counts it).
pub struct CheckQueue {
	running: Arc<tokio::sync::Semaphore>,
	/// Checks running or waiting.
	entered: AtomicUsize,
	most: usize,
}

/// A check's place in a [`CheckQueue`], held until the check ends.
pub struct QueuedCheck {
	queue: Arc<CheckQueue>,
}

/// A check's turn to run: the place and the running slot, held until it ends.
pub struct CheckTurn {
	_place: QueuedCheck,
	_slot: tokio::sync::OwnedSemaphorePermit,
}

impl Default for CheckQueue {
	fn default() -> Self {
		Self::new(CHECKS_RUNNING, CHECKS_WAITING)
	}
}

impl CheckQueue {
	pub fn new(running: usize, waiting: usize) -> Self {
		let running = running.max(1);
		Self {
			running: Arc::new(tokio::sync::Semaphore::new(running)),
			entered: AtomicUsize::new(0),
			most: running.saturating_add(waiting),
		}
	}

	/// A place for one more check, or `None` while as many run and wait as may.
	pub fn enter(self: &Arc<Self>) -> Option<QueuedCheck> {
		let most = self.most;
		self.entered
			.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < most).then_some(n + 1))
			.ok()
			.map(|_| QueuedCheck { queue: self.clone() })
	}

	/// Whether as many checks run and wait as may (a check drawn now would not enter).
	pub fn is_full(&self) -> bool {
		self.entered() >= self.most
	}

	/// Checks running or waiting now.
	pub fn entered(&self) -> usize {
		self.entered.load(Ordering::Acquire)
	}
}

impl QueuedCheck {
	/// Waits for a running slot.
	pub async fn turn(self) -> CheckTurn {
		let running = self.queue.running.clone();
		let slot = running.acquire_owned().await.expect("the queue's semaphore is never closed");
		CheckTurn { _place: self, _slot: slot }
	}
}

impl Drop for QueuedCheck {
	fn drop(&mut self) {
		self.queue.entered.fetch_sub(1, Ordering::AcqRel);
	}
}

/// Spot-checks one hop of a served request on the peers `source` offers.
pub async fn spot_check(
	source: &dyn RouteSource,
	version: u64,
	record: &HopRecord,
) -> CheckOutcome {
	let unchecked =
		|why| CheckOutcome { verdict: Verdict::Unchecked(why), replays: vec![], caught: None };
	if record.inputs.is_empty() {
		return unchecked("nothing recorded");
	}
	match &record.signed {
		Some(s) if s.commitment.bit_exact => {}
		Some(_) => return unchecked("the stage is not bit-exact (GPU)"),
		None => return unchecked("the stage signs nothing (in this process)"),
	}
	let mut avoid: HashSet<String> = HashSet::from([record.hop.endpoint()]);
	let mut replays = Vec::new();
	// The first peer that answers bit-exactly, then (on a difference) a second. Each peer is
	// asked once; those at capacity are waited for after every other one was asked.
	let mut first: Option<(Hop, Replay)> = None;
	let mut busy: Vec<Hop> = Vec::new();
	loop {
		let peers = source.peers(version, record.hop.span, &avoid).await;
		let fresh = peers.into_iter().find(|p| p.server != record.hop.server);
		let (peer, result) = match fresh {
			Some(peer) => {
				avoid.insert(peer.endpoint());
				let result = replay(&peer, record).await;
				if matches!(result, Err(HopError::Busy(_))) {
					busy.push(peer);
					continue;
				}
				(peer, result)
			}
			None if !busy.is_empty() => {
				let peer = busy.remove(0);
				let result = replay_when_free(&peer, record).await;
				(peer, result)
			}
			None => break,
		};
		let result = match result {
			Ok(result) => result,
			Err(e) => {
				tracing::warn!("spot check of {}: no replay on {e}", record.hop.endpoint());
				continue;
			}
		};
		replays.push((peer.clone(), result.positions, result.signed.clone()));
		let Some((first_peer, first_replay)) = first.take() else {
			if result.first_difference.is_none() {
				return CheckOutcome { verdict: Verdict::Agreed, replays, caught: None };
			}
			first = Some((peer, result));
			continue;
		};
		let at = first_replay.first_difference.expect("the first peer differed");
		// The second peer agrees with the stage: the first peer answered other bits.
		if result.first_difference.is_none() {
			let caught = first_replay.record_at(first_peer, record);
			return CheckOutcome {
				verdict: Verdict::CheckerCaught { at },
				replays,
				caught: Some(caught),
			};
		}
		// Both peers differ from the stage at the same chunk, with the same bits.
		if result.first_difference == Some(at)
			&& result.digests.get(at) == first_replay.digests.get(at)
		{
			return CheckOutcome {
				verdict: Verdict::Caught { at },
				replays,
				caught: Some(record.clone()),
			};
		}
		return CheckOutcome { verdict: Verdict::Disputed { at }, replays, caught: None };
	}
	match first {
		Some((_, replay)) => CheckOutcome {
			verdict: Verdict::Disputed { at: replay.first_difference.unwrap_or(0) },
			replays,
			caught: None,
		},
		None => CheckOutcome {
			verdict: Verdict::Unchecked("no peer serves this span"),
			replays,
			caught: None,
		},
	}
}

#[cfg(test)]
mod tests {
	use std::{sync::Arc, time::Duration};

	use subxt_signer::sr25519::{dev, Keypair};

	use super::*;
	use crate::{
		chain::{
			commitments_root, receipt_payload, verify_chunk_commitment, ChainSignedReceipt,
			MultiSignature, Receipt, H256,
		},
		inference::{
			commitments::ChunkSigner,
			fraud::SessionRecord,
			receipts::{PostedReceipt, ReceiptBook},
			route::{
				generate, generate_reporting, AbandonedSession, GenerateRequest, StageAccess,
				StageClient,
			},
			server::{self, ApiAccess, AppState, Metrics},
			sessions::SessionOpener,
			stage::LocalStage,
		},
		ml::{
			infer::StageModel, init_layers, model::ModelConfig, tokenizer::TextTokenizer,
			weights::LayerTensors, CpuBackend,
		},
	};

	const GENESIS: H256 = H256([3; 32]);
	const VERSION: u64 = 1;

	/// A stage of `span` served over HTTP on 127.0.0.1 by `key`'s account, signing its answers
	/// (every `corrupt_every`th with a bit flipped; 0: never), as the coordinator reaches it.
	async fn stage(
		config: &ModelConfig,
		layers: &[LayerTensors],
		span: (usize, usize),
		key: Keypair,
		corrupt_every: u64,
		opener: &Arc<SessionOpener>,
		capacity: usize,
	) -> Hop {
		let model = StageModel::<CpuBackend>::new(
			config,
			span.0,
			&layers[span.0..span.1],
			&Default::default(),
		)
		.unwrap();
		let server = key.public_key().to_account_id();
		let signer = ChunkSigner::new(key, GENESIS, VERSION, (span.0 as u16, span.1 as u16), true);
		let stage = LocalStage::start(model, capacity, Duration::ZERO, "cpu");
		let state = AppState {
			signer: Some(Arc::new(signer)),
			book: Some(Arc::new(ReceiptBook::new(server, GENESIS, 0, true))),
			corrupt_every,
			..AppState::for_stage(VERSION, stage)
		};
		let endpoint = server::serve_locally(state).await.unwrap();
		let access = StageAccess { opener: opener.clone(), server, version: VERSION };
		Hop {
			client: StageClient::Remote {
				endpoint,
				http: reqwest::Client::new(),
				access: Some(access),
			},
			span,
			server: Some(server),
			price_per_token: 0,
		}
	}

	/// The tiny model's layers 0..2 on the `first` stages and the rest on the `second` ones
	/// (key, corrupt_every), each routed in that order.
	async fn pool(first: &[(Keypair, u64)], second: &[(Keypair, u64)]) -> StagePool {
		pool_of_capacity(first, second, 8).await
	}

	/// As [`pool`], each stage holding at most `capacity` sessions.
	async fn pool_of_capacity(
		first: &[(Keypair, u64)],
		second: &[(Keypair, u64)],
		capacity: usize,
	) -> StagePool {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 11);
		let n = config.layer_count();
		let opener = Arc::new(SessionOpener::new(dev::ferdie(), GENESIS, false));
		let mut hops = Vec::new();
		for (span, keys) in [((0, 2), first), ((2, n), second)] {
			for (key, corrupt_every) in keys {
				hops.push(
					stage(&config, &layers, span, key.clone(), *corrupt_every, &opener, capacity)
						.await,
				);
			}
		}
		StagePool::new(hops)
	}

	fn request(i: usize, max_tokens: usize) -> GenerateRequest {
		GenerateRequest {
			prompt: vec![1 + (i % 200) as u32, 7, 9],
			max_tokens,
			temperature: 0.0,
			top_k: 0,
			top_p: 1.0,
			seed: 0,
			logprobs: None,
			check: true,
		}
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn a_stage_corrupting_one_answer_in_a_hundred_is_caught_and_routed_around() {
		// Eve's stage flips a bit in every 100th answer and signs it; Bob and Charlie serve the
		// same span honestly. Every request is checked (rate 1) until Eve is caught.
		let (eve, bob, charlie) = (dev::eve(), dev::bob(), dev::charlie());
		let liar = eve.public_key().to_account_id();
		let pool = pool(&[(dev::alice(), 0)], &[(eve, 100), (bob, 0), (charlie, 0)]).await;
		let mut caught = None;
		for i in 0..40 {
			let g = generate(&pool, VERSION, &request(i, 8), |_, _| false).await.unwrap();
			assert!(g.commitments.len() == 2 && g.commitments.iter().all(Option::is_some));
			for record in &g.records {
				let outcome = spot_check(&pool, VERSION, record).await;
				match outcome.verdict {
					// Layers 0..2 have no second server.
					Verdict::Agreed | Verdict::Unchecked("no peer serves this span") => {}
					Verdict::Caught { at } => {
						let record = outcome.caught.clone().unwrap();
						let (hop, evidence) = (record.hop, record.signed);
						assert_eq!(hop.server, Some(liar));
						// Two peers replayed up to the lie.
						assert_eq!(outcome.replays.len(), 2);
						// What Eve signed is her own commitment to the session with the lie in it.
						let evidence = evidence.expect("the liar signed its answers");
						assert_eq!(evidence.commitment.server, liar);
						assert!(verify_chunk_commitment(
							&GENESIS,
							&evidence.commitment,
							&evidence.signature
						));
						caught = Some((i, at));
						pool.caught(&hop);
					}
					other => panic!("request {i}: {other:?}"),
				}
			}
			if caught.is_some() {
				break;
			}
		}
		// Eight answers a request: her 100th is the 4th of the 13th request.
		assert_eq!(caught, Some((12, 3)));
		// Routed around from then on, answered by an honest stage.
		let g = generate(&pool, VERSION, &request(0, 4), |_, _| false).await.unwrap();
		assert!(g.served_by.iter().all(|(server, _)| *server != Some(liar)));
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn honest_stages_are_never_caught_over_a_thousand_checked_requests() {
		let first = [(dev::alice(), 0), (dev::ferdie(), 0)];
		let second = [(dev::bob(), 0), (dev::charlie(), 0), (dev::dave(), 0)];
		let pool = Arc::new(pool(&first, &second).await);
		let mut checked = 0;
		for batch in 0..125 {
			let runs = (0..8).map(|j| {
				let pool = pool.clone();
				tokio::spawn(async move {
					let g =
						generate(pool.as_ref(), VERSION, &request(batch * 8 + j, 2), |_, _| false)
							.await
							.unwrap();
					let mut verdicts = Vec::new();
					for record in &g.records {
						verdicts.push(spot_check(pool.as_ref(), VERSION, record).await.verdict);
					}
					verdicts
				})
			});
			for verdicts in futures::future::join_all(runs).await {
				for verdict in verdicts.unwrap() {
					assert_eq!(verdict, Verdict::Agreed);
					checked += 1;
				}
			}
		}
		assert_eq!(checked, 2_000, "both hops of every request were checked");
		assert!(pool.caught_endpoints().is_empty());
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn a_lying_checker_is_caught_by_the_second_peer_and_one_peer_is_a_dispute() {
		// The stage (Bob) is honest; the first peer offered (Eve) lies on every answer.
		let (bob, eve) = (dev::bob(), dev::eve());
		let liar = eve.public_key().to_account_id();
		let pool = pool(&[(dev::alice(), 0)], &[(bob, 0), (eve, 1), (dev::charlie(), 0)]).await;
		let g = generate(&pool, VERSION, &request(1, 3), |_, _| false).await.unwrap();
		let outcome = spot_check(&pool, VERSION, &g.records[1]).await;
		assert_eq!(outcome.verdict, Verdict::CheckerCaught { at: 0 });
		let caught = outcome.caught.unwrap();
		assert_eq!(caught.hop.server, Some(liar));
		// The liar's own answers of the replay, up to its lie, are the evidence.
		let record = SessionRecord::of(&caught).expect("every answer kept");
		record.matches(&caught.signed.unwrap().commitment).expect("what the liar signed");
		// Only the liar as a peer: a difference nobody can decide.
		let pool = pool_with_one_liar_peer().await;
		let g = generate(&pool, VERSION, &request(1, 3), |_, _| false).await.unwrap();
		let outcome = spot_check(&pool, VERSION, &g.records[1]).await;
		assert_eq!(outcome.verdict, Verdict::Disputed { at: 0 });
		assert!(outcome.caught.is_none());
		// The first span has no peer at all.
		let outcome = spot_check(&pool, VERSION, &g.records[0]).await;
		assert_eq!(outcome.verdict, Verdict::Unchecked("no peer serves this span"));
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn a_peer_at_capacity_is_waited_for_rather_than_skipped() {
		// Eve lies on every answer; her peers Bob and Charlie hold one session each, and
		// Charlie's is taken by another client for the first second of the check. Skipping him
		// would leave Bob's difference undecided (a dispute); waiting for him catches Eve.
		let (eve, bob, charlie) = (dev::eve(), dev::bob(), dev::charlie());
		let liar = eve.public_key().to_account_id();
		let pool =
			pool_of_capacity(&[(dev::alice(), 0)], &[(eve, 1), (bob, 0), (charlie, 0)], 1).await;
		let g = generate(&pool, VERSION, &request(1, 3), |_, _| false).await.unwrap();
		let record = &g.records[1];
		assert_eq!(record.hop.server, Some(liar));
		let avoid = HashSet::from([record.hop.endpoint()]);
		let peers = pool.peers(VERSION, record.hop.span, &avoid).await;
		let charlie = peers.into_iter().nth(1).expect("two peers");
		let other_client = new_session();
		let held = ForwardRequest {
			session: other_client,
			position: 0,
			input: record.inputs[0].1.clone(),
		};
		charlie.client.forward(held.clone()).await.expect("Charlie's one session");
		let mut refused = held;
		refused.session = new_session();
		assert!(matches!(charlie.client.forward(refused).await, Err(HopError::Busy(_))));
		let release = tokio::spawn(async move {
			tokio::time::sleep(Duration::from_secs(1)).await;
			charlie.client.end(other_client).await;
		});
		let started = std::time::Instant::now();
		let outcome = spot_check(&pool, VERSION, record).await;
		assert_eq!(outcome.verdict, Verdict::Caught { at: 0 });
		assert_eq!(outcome.caught.unwrap().hop.server, Some(liar));
		assert_eq!(outcome.replays.len(), 2, "both peers replayed");
		assert!(started.elapsed() >= Duration::from_millis(900), "Charlie was waited for");
		release.await.unwrap();
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn a_gateway_checking_every_completion_catches_a_lying_stage_and_shows_what_stages_signed(
	) {
		// A coordinator's HTTP face over the pool: every completion is spot-checked after its
		// answer; Eve lies in every 20th answer.
		let pool =
			pool(&[(dev::alice(), 0)], &[(dev::eve(), 20), (dev::bob(), 0), (dev::charlie(), 0)])
				.await;
		let state = Arc::new(AppState {
			version: VERSION,
			stage: None,
			routes: Some(Arc::new(pool)),
			book: None,
			payer: None,
			api: ApiAccess::Open,
			gate: None,
			signer: None,
			check_rate: 1.0,
			check_queue: Default::default(),
			challenger: None,
			corrupt_every: 0,
			max_positions: ModelConfig::tiny().max_position_embeddings,
			tokenizer: Arc::new(TextTokenizer::Bytes),
			metrics: Metrics::default(),
		});
		let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
		let url = format!("http://{}", listener.local_addr().unwrap());
		tokio::spawn(async move { axum::serve(listener, server::router(state)).await });
		let http = reqwest::Client::new();
		let metric = |text: &str, name: &str| -> u64 {
			text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap()
		};
		let mut caught_after = None;
		for i in 0..20 {
			let body = serde_json::json!({ "prompt": format!("add {i} 1 = "), "max_tokens": 8 });
			let answer: serde_json::Value = http
				.post(format!("{url}/v1/completions"))
				.json(&body)
				.send()
				.await
				.unwrap()
				.json()
				.await
				.unwrap();
			// Both stages' last signed commitments come with the answer.
			let commitments = answer["blyan"]["commitments"].as_array().unwrap();
			assert_eq!(commitments.len(), 2, "{answer}");
			assert_eq!(commitments[0]["layers"], serde_json::json!([0, 2]));
			// Everything signed is in the answer: the signatures check out from it alone.
			for c in commitments {
				let signed = SignedCommitment::from_json(c).unwrap();
				assert!(
					SignedCommitment::verified(&GENESIS, signed.commitment, signed.signature)
						.is_some(),
					"{c}"
				);
			}
			// With no payer, no receipts; the root they would carry is still shown.
			let route: Vec<_> = commitments.iter().map(SignedCommitment::from_json).collect();
			assert_eq!(
				answer["blyan"]["commitments_root"],
				hex::encode(commitments::route_root(&route)).as_str()
			);
			// Checks run after the answer: wait for this one's.
			let started = std::time::Instant::now();
			let metrics = loop {
				let metrics =
					http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
				// Layers 0..2 have no peer: one check a request.
				if metric(&metrics, "blyan_checks_total ") > i {
					break metrics;
				}
				assert!(started.elapsed() < Duration::from_secs(30), "no check of request {i}");
				tokio::time::sleep(Duration::from_millis(20)).await;
			};
			if metric(&metrics, "blyan_servers_caught_total ") == 1 {
				caught_after = Some(i);
				break;
			}
		}
		// Prompts of 10 bytes and 8 tokens: 8 answers a request, Eve's 20th is in the 3rd.
		assert_eq!(caught_after, Some(2));
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn a_session_given_up_at_a_busy_stage_pays_the_stage_that_answered_it() {
		// Stages of one session each; Bob's is taken by another client. The route Alice → Bob
		// fails at Bob after Alice answered the prompt: that session is given up (and goes on
		// Alice → Charlie), and Alice is owed what she answered of it, Bob nothing.
		let (alice, bob, charlie) = (dev::alice(), dev::bob(), dev::charlie());
		let pool =
			pool_of_capacity(&[(alice.clone(), 0)], &[(bob.clone(), 0), (charlie.clone(), 0)], 1)
				.await;
		let alone = generate(&pool, VERSION, &request(1, 4), |_, _| false).await.unwrap();
		assert_eq!(alone.served_by[1].0, Some(bob.public_key().to_account_id()));
		let (span, nobody) = ((2, ModelConfig::tiny().layer_count()), HashSet::new());
		let peers = pool.peers(VERSION, span, &nobody).await;
		let bob_stage = peers.into_iter().next().expect("Bob serves layers 2..");
		let other_client = new_session();
		let held = ForwardRequest {
			session: other_client,
			position: 0,
			input: alone.records[1].inputs[0].1.clone(),
		};
		bob_stage.client.forward(held).await.expect("Bob's one session");

		let mut abandoned = Vec::new();
		let g =
			generate_reporting(&pool, VERSION, &request(1, 4), |_, _| false, |a| abandoned.push(a))
				.await
				.unwrap();
		assert_eq!(g.tokens, alone.tokens, "the generation went on, unchanged, around Bob");
		assert_eq!(g.served_by[1].0, Some(charlie.public_key().to_account_id()));
		assert_eq!(abandoned.len(), 1);
		let given_up = &abandoned[0];
		assert_eq!(given_up.broken, None, "Bob was busy, not broken");
		let signed = given_up.commitments();
		assert!(signed[0].is_some() && signed[1].is_none(), "Alice answered, Bob did not");
		let payable = given_up.payable();
		assert_eq!(payable.len(), 1);
		let alice_paid = &payable[0];
		assert_eq!((alice_paid.stage, alice_paid.server), (0, alice.public_key().to_account_id()));
		// The prompt's 3 positions, as signed (the stage takes a receipt only for its last
		// signed commitment of the session: see receipts.rs).
		assert_eq!((alice_paid.tokens_in, alice_paid.tokens_out), (3, 0));
		assert_eq!(alice_paid.signed.commitment.positions, 3);
		assert_eq!(Some(alice_paid.signed), signed[0].as_ref());
		bob_stage.client.end(other_client).await;
		// Alice takes the receipt a paying gateway posts for it (server.rs `pay_abandoned`), once.
		let leaves = commitments::route_leaves(&signed);
		let receipt = |nonce| {
			let receipt = Receipt {
				client: dev::ferdie().public_key().to_account_id(),
				server: alice_paid.server,
				version: VERSION,
				nonce,
				tokens_in: alice_paid.tokens_in,
				tokens_out: alice_paid.tokens_out,
				price_per_token: 0,
				free: false,
				commitments: commitments_root(&leaves),
			};
			let payload = receipt_payload(&GENESIS, &receipt);
			let signature = MultiSignature::Sr25519(dev::ferdie().sign(&payload).0);
			let receipt = ChainSignedReceipt { receipt, signature };
			codec::Encode::encode(&PostedReceipt::new(receipt, alice_paid.signed, 0, &leaves))
		};
		let (http, url) =
			(reqwest::Client::new(), format!("{}/v1/receipts", alice_paid.hop.endpoint()));
		let post = |body: Vec<u8>| {
			let sent = http.post(&url).body(body).send();
			async move { sent.await.unwrap().status().as_u16() }
		};
		assert_eq!(post(receipt(1)).await, 200, "the given-up session's receipt");
		assert_eq!(post(receipt(2)).await, 400, "a session is paid for once");

		// A session given up after tokens were generated: its prompt and generated positions,
		// for every stage that signed but the one at fault (a stage of no known server is
		// never paid: nobody to pay).
		let mut hops = given_up.hops.clone();
		let positions = 7;
		for (_, signed) in &mut hops {
			let mut s = signed.clone().unwrap_or_else(|| alice_paid.signed.clone());
			s.commitment.positions = positions;
			*signed = Some(s);
		}
		let mut later = AbandonedSession { hops, broken: None, prompt_tokens: 3 };
		let split: Vec<_> =
			later.payable().iter().map(|p| (p.stage, p.tokens_in, p.tokens_out)).collect();
		assert_eq!(split, [(0, 3, 4), (1, 3, 4)]);
		later.broken = Some(later.hops[0].0.endpoint());
		later.hops[1].0.server = None;
		assert!(later.payable().is_empty());
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn checks_beyond_the_queue_are_refused_and_no_more_than_allowed_run_at_once() {
		let queue = Arc::new(CheckQueue::new(1, 1));
		let (first, second) = (queue.enter().unwrap(), queue.enter().unwrap());
		assert!(queue.enter().is_none(), "one running and one waiting: full");
		let running = first.turn().await;
		let waiting = tokio::spawn(async move { second.turn().await });
		tokio::time::sleep(Duration::from_millis(100)).await;
		assert!(!waiting.is_finished(), "the second runs only once the first ended");
		assert!(queue.enter().is_none());
		drop(running);
		let turn = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
		assert_eq!(queue.entered(), 1);
		let third = queue.enter().expect("a place freed");
		drop((turn, third));
		assert_eq!(queue.entered(), 0);
	}

	async fn pool_with_one_liar_peer() -> StagePool {
		pool(&[(dev::alice(), 0)], &[(dev::bob(), 0), (dev::eve(), 1)]).await
	}
}
