//! One federated round over HTTP: the aggregator's server ([`Aggregator`]) and a participant's
//! client ([`RoundClient`]). Messages are SCALE-encoded bodies.
//!
//! Secure mode runs the four steps of [`super::secagg`]: keys advertised, shares routed through
//! the aggregator (encrypted to their holders), masked inputs, reveals. Each step ends when every
//! participant still in the round has answered or its timeout passes; whoever is missing then has
//! dropped out. Plain mode takes clipped (and noised) updates in the clear and combines them with
//! a [`super::robust::Aggregation`] rule.

use std::{
	collections::{BTreeMap, BTreeSet},
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc, Mutex,
	},
	time::{Duration, Instant},
};

use axum::{
	body::Bytes,
	extract::{DefaultBodyLimit, Path, State},
	http::StatusCode,
	response::{IntoResponse, Response},
	routing::{get, post},
	Router,
};
use codec::{Decode, Encode};
use tokio::sync::{watch, Notify};

use super::{
	robust::{aggregate, Aggregation},
	secagg::{
		decode_fixed, unmask_sum, EncryptedShare, KeyAdvert, Participant, ParticipantId,
		RevealedShare, SessionId,
	},
};

/// How a round aggregates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Mode {
	/// Secure aggregation: only the sum is learnt; at least `threshold` must reach the end.
	Secure { threshold: u16 },
	/// Updates in the clear, combined by `rule`.
	Plain(Aggregation),
}

/// What a participant needs to know of the round (`GET /fl/round` answers it, followed by the
/// number of the aggregator's attempt at it).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct RoundInfo {
	pub round: u32,
	pub session: SessionId,
	pub participants: Vec<ParticipantId>,
	/// Values in an update.
	pub len: u32,
	pub mode: Mode,
	/// Fewest contributors the round may end with (the job's minimum: the noise is scaled for
	/// it); it fails rather than release an aggregate of fewer.
	pub min_contributors: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Encode, Decode)]
pub enum Phase {
	Adverts,
	Shares,
	Masked,
	Reveal,
	/// Plain mode: updates in the clear.
	Updates,
	Done,
	Failed,
}

/// The aggregator's whole view of a secure round: what an honest-but-curious aggregator could
/// use to try to learn one participant's update.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
	pub adverts: Vec<KeyAdvert>,
	pub shares: Vec<EncryptedShare>,
	pub masked: BTreeMap<ParticipantId, Vec<u64>>,
	pub revealed: Vec<RevealedShare>,
}

/// What a finished round produced.
#[derive(Clone, Debug)]
pub struct RoundOutcome {
	pub round: u32,
	/// Whose updates are in the aggregate.
	pub contributors: Vec<ParticipantId>,
	/// The mean update of the contributors (secure mode: sum / count) or the rule's output.
	pub aggregate: Vec<f32>,
	/// Secure mode: the exact fixed-point sum.
	pub sum_fixed: Option<Vec<u64>>,
	pub transcript: Transcript,
	/// Request and response bodies the aggregator took and gave until the aggregate was known
	/// (the participants' downloads of it come after).
	pub bytes_in: u64,
	pub bytes_out: u64,
	pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RoundError {
	#[error("round {round} failed: {reason}")]
	Failed { round: u32, reason: String },
	#[error("the aggregator is already running round {0}")]
	Busy(u32),
}

struct RoundState {
	info: RoundInfo,
	/// Which of the aggregator's attempts this is.
	attempt: u64,
	phase: Phase,
	adverts: BTreeMap<ParticipantId, KeyAdvert>,
	shared: BTreeSet<ParticipantId>,
	sharers: Vec<KeyAdvert>,
	inbox: BTreeMap<ParticipantId, Vec<EncryptedShare>>,
	masked: BTreeMap<ParticipantId, Vec<u64>>,
	survivors: Vec<ParticipantId>,
	reveals: BTreeMap<ParticipantId, Vec<RevealedShare>>,
	updates: BTreeMap<ParticipantId, Vec<f32>>,
	result: Option<(Vec<ParticipantId>, Vec<f32>)>,
	failure: Option<String>,
}

impl RoundState {
	/// How many answers the current phase waits for, and how many it has.
	fn progress(&self) -> (usize, usize) {
		match self.phase {
			Phase::Adverts => (self.info.participants.len(), self.adverts.len()),
			Phase::Shares => (self.adverts.len(), self.shared.len()),
			Phase::Masked => (self.sharers.len(), self.masked.len()),
			Phase::Reveal => (self.survivors.len(), self.reveals.len()),
			Phase::Updates => (self.info.participants.len(), self.updates.len()),
			Phase::Done | Phase::Failed => (0, 0),
		}
	}
}

struct Shared {
	state: Mutex<Option<RoundState>>,
	/// The running attempt's round, its number among every attempt this aggregator ran (a
	/// failed round is run again), and its phase.
	phase: watch::Sender<(u32, u64, Phase)>,
	posted: Notify,
	bytes_in: AtomicU64,
	bytes_out: AtomicU64,
	/// How long a client's GET waits for the next phase.
	wait: Duration,
	/// Attempts run so far (a failed round is run again: each run is an attempt).
	attempts: AtomicU64,
}

/// The aggregator's HTTP side: serves [`router`](Aggregator::router) and runs rounds.
#[derive(Clone)]
pub struct Aggregator {
	shared: Arc<Shared>,
}

/// Largest body accepted (a 64 M-parameter update in fixed point, plus framing).
pub const MAX_BODY: usize = 520 * 1024 * 1024;

impl Aggregator {
	pub fn new(phase_timeout: Duration) -> Self {
		let (phase, _) = watch::channel((0, 0, Phase::Done));
		Self {
			shared: Arc::new(Shared {
				state: Mutex::new(None),
				phase,
				posted: Notify::new(),
				bytes_in: AtomicU64::new(0),
				bytes_out: AtomicU64::new(0),
				wait: phase_timeout * 6,
				// From a random number: a restarted aggregator's attempts are not taken for
				// those a participant saw end before.
				attempts: AtomicU64::new(rand::random::<u64>() >> 1),
			}),
		}
	}

	pub fn router(&self) -> Router {
		Router::new()
			.route("/fl/round", get(info))
			.route("/fl/{round}/advert", post(post_advert))
			.route("/fl/{round}/adverts", get(get_adverts))
			.route("/fl/{round}/shares", post(post_shares))
			.route("/fl/{round}/inbox/{id}", get(get_inbox))
			.route("/fl/{round}/masked", post(post_masked))
			.route("/fl/{round}/survivors", get(get_survivors))
			.route("/fl/{round}/reveal", post(post_reveal))
			.route("/fl/{round}/update", post(post_update))
			.route("/fl/{round}/result", get(get_result))
			.layer(DefaultBodyLimit::max(MAX_BODY))
			.with_state(self.shared.clone())
	}

	/// Runs one round to its end: each phase closes when all expected answers are in or
	/// `phase_timeout` has passed.
	pub async fn run_round(
		&self,
		info: RoundInfo,
		phase_timeout: Duration,
	) -> Result<RoundOutcome, RoundError> {
		let started = Instant::now();
		let round = info.round;
		let first = match info.mode {
			Mode::Secure { .. } => Phase::Adverts,
			Mode::Plain(_) => Phase::Updates,
		};
		let attempt = self.shared.attempts.fetch_add(1, Ordering::Relaxed) + 1;
		{
			let mut guard = self.shared.state.lock().expect("not poisoned");
			if let Some(s) =
				guard.as_ref().filter(|s| !matches!(s.phase, Phase::Done | Phase::Failed))
			{
				return Err(RoundError::Busy(s.info.round));
			}
			*guard = Some(RoundState {
				info,
				attempt,
				phase: first,
				adverts: BTreeMap::new(),
				shared: BTreeSet::new(),
				sharers: Vec::new(),
				inbox: BTreeMap::new(),
				masked: BTreeMap::new(),
				survivors: Vec::new(),
				reveals: BTreeMap::new(),
				updates: BTreeMap::new(),
				result: None,
				failure: None,
			});
		}
		self.shared.bytes_in.store(0, Ordering::Relaxed);
		self.shared.bytes_out.store(0, Ordering::Relaxed);
		self.shared.phase.send_replace((round, attempt, first));

		loop {
			let deadline = tokio::time::Instant::now() + phase_timeout;
			loop {
				let notified = self.shared.posted.notified();
				let (want, have) = self.with_state(|s| s.progress());
				if have >= want {
					break;
				}
				if tokio::time::timeout_at(deadline, notified).await.is_err() {
					break;
				}
			}
			let (phase, outcome) = self.with_state(advance);
			self.shared.phase.send_replace((round, attempt, phase));
			match phase {
				Phase::Done => {
					let (transcript, (contributors, aggregate), sum) =
						outcome.expect("done has a result");
					return Ok(RoundOutcome {
						round,
						contributors,
						aggregate,
						sum_fixed: sum,
						transcript,
						bytes_in: self.shared.bytes_in.load(Ordering::Relaxed),
						bytes_out: self.shared.bytes_out.load(Ordering::Relaxed),
						elapsed: started.elapsed(),
					});
				}
				Phase::Failed => {
					let reason = self.with_state(|s| s.failure.clone().unwrap_or_default());
					return Err(RoundError::Failed { round, reason });
				}
				_ => {}
			}
		}
	}

	fn with_state<R>(&self, f: impl FnOnce(&mut RoundState) -> R) -> R {
		let mut guard = self.shared.state.lock().expect("not poisoned");
		f(guard.as_mut().expect("a round is installed"))
	}
}

type Finished = (Transcript, (Vec<ParticipantId>, Vec<f32>), Option<Vec<u64>>);

/// Closes the current phase: whoever has not answered has dropped out.
fn advance(s: &mut RoundState) -> (Phase, Option<Finished>) {
	let threshold = match s.info.mode {
		Mode::Secure { threshold } => threshold as usize,
		Mode::Plain(_) => 1,
	};
	// Shamir needs `threshold`; the privacy the job was charged for needs `min_contributors`.
	let needed = threshold.max(s.info.min_contributors as usize);
	let fail = |s: &mut RoundState, reason: String| {
		s.failure = Some(reason);
		s.phase = Phase::Failed;
		(Phase::Failed, None)
	};
	match s.phase {
		Phase::Adverts => {
			if s.adverts.len() < needed {
				return fail(
					s,
					format!("{} of {needed} participants advertised keys", s.adverts.len()),
				);
			}
			s.phase = Phase::Shares;
		}
		Phase::Shares => {
			s.sharers = s.adverts.values().filter(|a| s.shared.contains(&a.id)).copied().collect();
			if s.sharers.len() < needed {
				return fail(
					s,
					format!("{} of {needed} participants shared keys", s.sharers.len()),
				);
			}
			let sharers: BTreeSet<_> = s.sharers.iter().map(|a| a.id).collect();
			for shares in s.inbox.values_mut() {
				shares.retain(|e| sharers.contains(&e.from));
			}
			s.phase = Phase::Masked;
		}
		Phase::Masked => {
			s.survivors = s.masked.keys().copied().collect();
			if s.survivors.len() < needed {
				return fail(s, format!("{} of {needed} masked inputs arrived", s.survivors.len()));
			}
			s.phase = Phase::Reveal;
		}
		Phase::Reveal => {
			let revealed: Vec<RevealedShare> = s.reveals.values().flatten().cloned().collect();
			let sum = match unmask_sum(&s.sharers, &s.masked, &revealed, threshold, &s.info.session)
			{
				Ok(sum) => sum,
				Err(e) => return fail(s, e.to_string()),
			};
			let count = s.survivors.len() as f64;
			let mean = decode_fixed(&sum).into_iter().map(|v| (v / count) as f32).collect();
			s.result = Some((s.survivors.clone(), mean));
			s.phase = Phase::Done;
			let transcript = Transcript {
				adverts: s.adverts.values().copied().collect(),
				shares: s.inbox.values().flatten().cloned().collect(),
				masked: s.masked.clone(),
				revealed,
			};
			return (
				Phase::Done,
				Some((transcript, s.result.clone().expect("just set"), Some(sum))),
			);
		}
		Phase::Updates => {
			let Mode::Plain(rule) = s.info.mode else { unreachable!("updates only in plain mode") };
			if s.updates.len() < needed {
				return fail(s, format!("{} of {needed} updates arrived", s.updates.len()));
			}
			let contributors: Vec<_> = s.updates.keys().copied().collect();
			let updates: Vec<_> = s.updates.values().cloned().collect();
			let agg = match aggregate(&updates, rule) {
				Ok(a) => a,
				Err(e) => return fail(s, e.to_string()),
			};
			s.result = Some((contributors, agg));
			s.phase = Phase::Done;
			return (
				Phase::Done,
				Some((Transcript::default(), s.result.clone().expect("just set"), None)),
			);
		}
		Phase::Done | Phase::Failed => {}
	}
	(s.phase, None)
}

/// SCALE has no floats: updates travel as their IEEE bits.
fn bits(values: &[f32]) -> Vec<u32> {
	values.iter().map(|v| v.to_bits()).collect()
}

fn floats(bits: &[u32]) -> Vec<f32> {
	bits.iter().map(|b| f32::from_bits(*b)).collect()
}

fn reply(shared: &Shared, status: StatusCode, body: Vec<u8>) -> Response {
	shared.bytes_out.fetch_add(body.len() as u64, Ordering::Relaxed);
	(status, body).into_response()
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
	(status, why.into()).into_response()
}

/// Decodes a posted body for `round` in `phase` and hands it to `apply`.
fn accept<T: Decode>(
	shared: &Shared,
	round: u32,
	phase: Phase,
	body: &Bytes,
	apply: impl FnOnce(&mut RoundState, T) -> Result<(), String>,
) -> Response {
	shared.bytes_in.fetch_add(body.len() as u64, Ordering::Relaxed);
	let Ok(msg) = T::decode(&mut &body[..]) else {
		return refuse(StatusCode::BAD_REQUEST, "malformed message");
	};
	let mut guard = shared.state.lock().expect("not poisoned");
	let Some(s) = guard.as_mut().filter(|s| s.info.round == round) else {
		return refuse(StatusCode::NOT_FOUND, format!("round {round} is not running"));
	};
	if s.phase != phase {
		return refuse(StatusCode::CONFLICT, format!("round {round} is in phase {:?}", s.phase));
	}
	match apply(s, msg) {
		Ok(()) => {
			drop(guard);
			shared.posted.notify_one();
			StatusCode::NO_CONTENT.into_response()
		}
		Err(why) => refuse(StatusCode::UNPROCESSABLE_ENTITY, why),
	}
}

fn check_participant(s: &RoundState, id: ParticipantId) -> Result<(), String> {
	if s.info.participants.contains(&id) {
		Ok(())
	} else {
		Err(format!("{id} is not a participant of round {}", s.info.round))
	}
}

/// Waits until `round` reaches `phase` (or ends), then answers with `read`.
async fn wait_then(
	shared: Arc<Shared>,
	round: u32,
	phase: Phase,
	read: impl FnOnce(&RoundState) -> Result<Vec<u8>, String>,
) -> Response {
	let mut rx = shared.phase.subscribe();
	// The attempt running when asked: a participant asks right after posting to it, and what it
	// posted is not in another attempt's result.
	let attempt = rx.borrow().1;
	let reached = tokio::time::timeout(
		shared.wait,
		rx.wait_for(|(r, a, p)| *r != round || *a != attempt || *p >= phase),
	)
	.await;
	match reached {
		Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, "the round has not got there yet"),
		Ok(Err(_)) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "aggregator stopped"),
		Ok(Ok(_)) => {}
	}
	let guard = shared.state.lock().expect("not poisoned");
	let Some(s) = guard.as_ref().filter(|s| s.info.round == round) else {
		return refuse(StatusCode::NOT_FOUND, format!("round {round} is not running"));
	};
	if s.phase == Phase::Failed {
		return refuse(StatusCode::GONE, s.failure.clone().unwrap_or_default());
	}
	if s.attempt != attempt {
		return refuse(
			StatusCode::GONE,
			format!("the attempt at round {round} ended; it runs again"),
		);
	}
	match read(s) {
		Ok(body) => {
			drop(guard);
			reply(&shared, StatusCode::OK, body)
		}
		Err(why) => refuse(StatusCode::UNPROCESSABLE_ENTITY, why),
	}
}

async fn info(State(shared): State<Arc<Shared>>) -> Response {
	let body = {
		let guard = shared.state.lock().expect("not poisoned");
		match guard.as_ref() {
			// The attempt after the round's info: a participant whose attempt ended waits for
			// the next one (a client reading only the info ignores it).
			Some(s) if !matches!(s.phase, Phase::Done | Phase::Failed) => {
				(&s.info, s.attempt).encode()
			}
			_ => return refuse(StatusCode::NOT_FOUND, "no round is running"),
		}
	};
	reply(&shared, StatusCode::OK, body)
}

async fn post_advert(
	State(shared): State<Arc<Shared>>,
	Path(round): Path<u32>,
	body: Bytes,
) -> Response {
	accept(&shared, round, Phase::Adverts, &body, |s, advert: KeyAdvert| {
		check_participant(s, advert.id)?;
		if s.adverts.contains_key(&advert.id) {
			return Err(format!("{} advertised twice", advert.id));
		}
		s.adverts.insert(advert.id, advert);
		Ok(())
	})
}

async fn get_adverts(State(shared): State<Arc<Shared>>, Path(round): Path<u32>) -> Response {
	wait_then(shared, round, Phase::Shares, |s| {
		Ok(s.adverts.values().copied().collect::<Vec<_>>().encode())
	})
	.await
}

async fn post_shares(
	State(shared): State<Arc<Shared>>,
	Path(round): Path<u32>,
	body: Bytes,
) -> Response {
	accept(
		&shared,
		round,
		Phase::Shares,
		&body,
		|s, (from, shares): (ParticipantId, Vec<EncryptedShare>)| {
			if !s.adverts.contains_key(&from) {
				return Err(format!("{from} advertised no keys"));
			}
			let targets: BTreeSet<_> = shares.iter().map(|e| e.to).collect();
			if shares.iter().any(|e| e.from != from)
				|| targets.len() != shares.len()
				|| targets != s.adverts.keys().copied().collect()
			{
				return Err("one share for each advertised participant, from the sender".into());
			}
			if !s.shared.insert(from) {
				return Err(format!("{from} shared twice"));
			}
			for e in shares {
				s.inbox.entry(e.to).or_default().push(e);
			}
			Ok(())
		},
	)
}

async fn get_inbox(
	State(shared): State<Arc<Shared>>,
	Path((round, id)): Path<(u32, ParticipantId)>,
) -> Response {
	wait_then(shared, round, Phase::Masked, |s| {
		if !s.sharers.iter().any(|a| a.id == id) {
			return Err(format!("{id} did not share its keys in time"));
		}
		Ok((s.sharers.clone(), s.inbox.get(&id).cloned().unwrap_or_default()).encode())
	})
	.await
}

async fn post_masked(
	State(shared): State<Arc<Shared>>,
	Path(round): Path<u32>,
	body: Bytes,
) -> Response {
	accept(&shared, round, Phase::Masked, &body, |s, (id, y): (ParticipantId, Vec<u64>)| {
		if !s.sharers.iter().any(|a| a.id == id) {
			return Err(format!("{id} is not among the sharers"));
		}
		if y.len() != s.info.len as usize {
			return Err(format!("{} values, the round has {}", y.len(), s.info.len));
		}
		if s.masked.contains_key(&id) {
			return Err(format!("{id} sent its input twice"));
		}
		s.masked.insert(id, y);
		Ok(())
	})
}

async fn get_survivors(State(shared): State<Arc<Shared>>, Path(round): Path<u32>) -> Response {
	wait_then(shared, round, Phase::Reveal, |s| Ok(s.survivors.encode())).await
}

async fn post_reveal(
	State(shared): State<Arc<Shared>>,
	Path(round): Path<u32>,
	body: Bytes,
) -> Response {
	accept(
		&shared,
		round,
		Phase::Reveal,
		&body,
		|s, (id, shares): (ParticipantId, Vec<RevealedShare>)| {
			if !s.survivors.contains(&id) {
				return Err(format!("{id} is not a survivor"));
			}
			if s.reveals.contains_key(&id) {
				return Err(format!("{id} revealed twice"));
			}
			// Exactly the share the survivor list calls for, of each sharer, at the revealer's
			// own x: anything else could only skew the rebuilt secrets.
			let expected: BTreeSet<(ParticipantId, super::secagg::SecretKind)> = s
				.sharers
				.iter()
				.map(|a| {
					let kind = if s.survivors.contains(&a.id) {
						super::secagg::SecretKind::SelfSeed
					} else {
						super::secagg::SecretKind::MaskKey
					};
					(a.id, kind)
				})
				.collect();
			let given: BTreeSet<_> = shares.iter().map(|r| (r.owner, r.kind)).collect();
			let x = id as usize + 1;
			if given != expected
				|| given.len() != shares.len()
				|| shares.iter().any(|r| r.share.len() != 33 || r.share[0] as usize != x)
			{
				return Err(
					"one share per sharer, of the kind the survivors call for, at the revealer's x"
						.into(),
				);
			}
			s.reveals.insert(id, shares);
			Ok(())
		},
	)
}

async fn post_update(
	State(shared): State<Arc<Shared>>,
	Path(round): Path<u32>,
	body: Bytes,
) -> Response {
	accept(&shared, round, Phase::Updates, &body, |s, (id, update): (ParticipantId, Vec<u32>)| {
		check_participant(s, id)?;
		let update = floats(&update);
		if update.len() != s.info.len as usize {
			return Err(format!("{} values, the round has {}", update.len(), s.info.len));
		}
		if update.iter().any(|v| !v.is_finite()) {
			return Err("an update value is not finite".into());
		}
		if s.updates.contains_key(&id) {
			return Err(format!("{id} sent its update twice"));
		}
		s.updates.insert(id, update);
		Ok(())
	})
}

async fn get_result(State(shared): State<Arc<Shared>>, Path(round): Path<u32>) -> Response {
	wait_then(shared, round, Phase::Done, |s| {
		let (contributors, agg) = s.result.as_ref().ok_or_else(|| "no result".to_string())?;
		Ok((contributors, bits(agg)).encode())
	})
	.await
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
	#[error("aggregator unreachable: {0}")]
	Http(#[from] reqwest::Error),
	#[error("aggregator answered {status}: {message}")]
	Refused { status: u16, message: String },
	#[error("aggregator sent a malformed answer")]
	Malformed,
	#[error(transparent)]
	SecAgg(#[from] super::secagg::SecAggError),
	#[error("the aggregator's survivors do not include this participant")]
	NotASurvivor,
}

impl ClientError {
	/// Whether this means the aggregator's attempt at the round is over without a result for
	/// this participant (it failed, ended, or the aggregator restarted), rather than that this
	/// participant's message was refused: a participant may join the round again when the
	/// aggregator reopens it.
	pub fn attempt_over(&self) -> bool {
		match self {
			ClientError::Http(_) => true,
			// Not running, in another phase than the message's, failed, or stopping.
			ClientError::Refused { status, .. } => matches!(status, 404 | 409 | 410 | 503),
			ClientError::NotASurvivor => true,
			ClientError::Malformed | ClientError::SecAgg(_) => false,
		}
	}
}

/// An attempt at a round that ended without its result.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct AttemptFailed {
	pub error: ClientError,
	/// The aggregator may hold this participant's masked input of the attempt (a secure round):
	/// sending it again in another attempt, whose survivors may differ, could let an aggregator
	/// subtract two sums and learn more than one round's sum.
	pub masked_sent: bool,
}

/// A participant's side of a round.
pub struct RoundClient {
	http: reqwest::Client,
	base: String,
	pub bytes_sent: AtomicU64,
	pub bytes_received: AtomicU64,
}

impl RoundClient {
	pub fn new(http: reqwest::Client, endpoint: &str) -> Self {
		Self {
			http,
			base: endpoint.trim_end_matches('/').to_string(),
			bytes_sent: AtomicU64::new(0),
			bytes_received: AtomicU64::new(0),
		}
	}

	/// A participant's client of the aggregator at `endpoint`. A round's GETs are long polls
	/// (the aggregator answers when its round gets there, minutes later at worst), so a request
	/// has no total timeout. A host that is gone is noticed by TCP instead: keep-alive probes
	/// after 15 idle seconds, inside a long poll too, and on Linux a 30 s limit on anything sent
	/// going unacknowledged (probes, or an upload to a host that vanished): within about 45 s.
	/// (These are reqwest's defaults, set here so that an upgrade cannot drop them.) A host that
	/// never accepts is given up after 10 s. An aggregator that is up but never answers is left
	/// to [`contribute`](super::job::contribute), which stops once the chain records the round.
	pub fn connect(endpoint: &str) -> Result<Self, reqwest::Error> {
		let http = reqwest::Client::builder()
			.connect_timeout(Duration::from_secs(10))
			.tcp_keepalive(Duration::from_secs(15))
			.tcp_keepalive_interval(Duration::from_secs(15))
			.tcp_keepalive_retries(3);
		#[cfg(target_os = "linux")]
		let http = http.tcp_user_timeout(Duration::from_secs(30));
		Ok(Self::new(http.build()?, endpoint))
	}

	async fn get<T: Decode>(&self, path: &str) -> Result<T, ClientError> {
		self.get_within(path, None).await
	}

	/// A GET bounded by `timeout` (for requests a live aggregator answers at once).
	async fn get_within<T: Decode>(
		&self,
		path: &str,
		timeout: Option<Duration>,
	) -> Result<T, ClientError> {
		let mut request = self.http.get(format!("{}{path}", self.base));
		if let Some(timeout) = timeout {
			request = request.timeout(timeout);
		}
		let resp = request.send().await?;
		let status = resp.status();
		let body = resp.bytes().await?;
		self.bytes_received.fetch_add(body.len() as u64, Ordering::Relaxed);
		if !status.is_success() {
			return Err(ClientError::Refused {
				status: status.as_u16(),
				message: String::from_utf8_lossy(&body).into_owned(),
			});
		}
		T::decode(&mut &body[..]).map_err(|_| ClientError::Malformed)
	}

	async fn post(&self, path: &str, body: Vec<u8>) -> Result<(), ClientError> {
		self.bytes_sent.fetch_add(body.len() as u64, Ordering::Relaxed);
		let resp = self.http.post(format!("{}{path}", self.base)).body(body).send().await?;
		let status = resp.status();
		if !status.is_success() {
			let message = resp.text().await.unwrap_or_default();
			return Err(ClientError::Refused { status: status.as_u16(), message });
		}
		Ok(())
	}

	/// The round now running ([`current`](Self::current) without the attempt).
	pub async fn info(&self) -> Result<RoundInfo, ClientError> {
		Ok(self.current().await?.0)
	}

	/// The round now running and which of the aggregator's attempts it is. Not a long poll: a
	/// live aggregator answers at once, so the wait is bounded (30 s), and a wedged one does not
	/// hold a participant waiting for a round to open.
	pub async fn current(&self) -> Result<(RoundInfo, u64), ClientError> {
		self.get_within("/fl/round", Some(Duration::from_secs(30))).await
	}

	pub async fn advertise(
		&self,
		round: u32,
		p: &Participant,
	) -> Result<Vec<KeyAdvert>, ClientError> {
		self.post(&format!("/fl/{round}/advert"), p.advert().encode()).await?;
		self.get(&format!("/fl/{round}/adverts")).await
	}

	/// Sends this participant's encrypted shares; returns the sharers and the shares it holds.
	pub async fn share(
		&self,
		round: u32,
		p: &Participant,
		adverts: &[KeyAdvert],
	) -> Result<(Vec<KeyAdvert>, Vec<EncryptedShare>), ClientError> {
		let shares = p.share_keys(adverts)?;
		self.post(&format!("/fl/{round}/shares"), (p.id(), shares).encode()).await?;
		self.get(&format!("/fl/{round}/inbox/{}", p.id())).await
	}

	pub async fn send_masked(
		&self,
		round: u32,
		id: ParticipantId,
		masked: Vec<u64>,
	) -> Result<(), ClientError> {
		self.post(&format!("/fl/{round}/masked"), (id, masked).encode()).await
	}

	/// Reveals the shares the survivors' list calls for.
	pub async fn reveal(
		&self,
		round: u32,
		p: &Participant,
		sharers: &[KeyAdvert],
		held: &[EncryptedShare],
	) -> Result<(), ClientError> {
		let survivors: Vec<ParticipantId> = self.get(&format!("/fl/{round}/survivors")).await?;
		// Shares are revealed for the attempt this participant masked in, whose survivors
		// include it; another list (another attempt's) could call for the wrong kind of share.
		if !survivors.contains(&p.id()) {
			return Err(ClientError::NotASurvivor);
		}
		let revealed = p.unmask(held, sharers, &survivors)?;
		self.post(&format!("/fl/{round}/reveal"), (p.id(), revealed).encode()).await
	}

	/// The round's contributors and aggregate, once it is done.
	pub async fn result(&self, round: u32) -> Result<(Vec<ParticipantId>, Vec<f32>), ClientError> {
		let (contributors, agg): (Vec<ParticipantId>, Vec<u32>) =
			self.get(&format!("/fl/{round}/result")).await?;
		Ok((contributors, floats(&agg)))
	}

	/// A whole secure round for `input` (already clipped, noised and fixed-point encoded).
	pub async fn secure_round(
		&self,
		round: u32,
		p: &Participant,
		input: &[u64],
	) -> Result<(Vec<ParticipantId>, Vec<f32>), ClientError> {
		self.secure_attempt(round, p, input).await.map_err(|f| f.error)
	}

	/// [`secure_round`](Self::secure_round), saying on failure whether the aggregator may hold
	/// the masked input.
	pub async fn secure_attempt(
		&self,
		round: u32,
		p: &Participant,
		input: &[u64],
	) -> Result<(Vec<ParticipantId>, Vec<f32>), AttemptFailed> {
		let before = |error| AttemptFailed { error, masked_sent: false };
		let after = |error| AttemptFailed { error, masked_sent: true };
		let adverts = self.advertise(round, p).await.map_err(before)?;
		let (sharers, held) = self.share(round, p, &adverts).await.map_err(before)?;
		let masked = p.mask(input, &sharers).map_err(|e| before(e.into()))?;
		// A connection lost while sending may have delivered it.
		self.send_masked(round, p.id(), masked).await.map_err(|error| AttemptFailed {
			masked_sent: matches!(error, ClientError::Http(_)),
			error,
		})?;
		self.reveal(round, p, &sharers, &held).await.map_err(after)?;
		self.result(round).await.map_err(after)
	}

	/// A whole plain round.
	pub async fn plain_round(
		&self,
		round: u32,
		id: ParticipantId,
		update: Vec<f32>,
	) -> Result<(Vec<ParticipantId>, Vec<f32>), ClientError> {
		self.post(&format!("/fl/{round}/update"), (id, bits(&update)).encode()).await?;
		self.result(round).await
	}
}
