//! Generation over a route: a chain of stages that covers a model's layers. The coordinator
//! (a gateway, or a server holding the whole model) sends each chunk — the prompt, then one token
//! at a time — through every stage, samples the next token from the last stage's logits, and
//! keeps the schedule of chunks it sent. If a stage fails mid-generation it asks its
//! [`RouteSource`] for a route avoiding that stage and replays the schedule on it (same chunks,
//! same order, so every stage computes exactly what it would have), then goes on: the completion
//! is identical to an uninterrupted one.

use std::{
	collections::HashSet,
	sync::Arc,
	time::{Duration, Instant},
};

use futures::future::BoxFuture;
use rand::RngCore;

use crate::ml::infer::{Activations, Sampler, TokenLogprobs};

use super::{
	commitments::{self, SignedCommitment, COMMITMENT_HEADER},
	protocol::{self, ForwardRequest, SessionId},
	sessions::{SessionOpener, GRANT_HEADER},
	stage::LocalStage,
};
use crate::chain::ChunkCommitment;

/// How a coordinator reaches one stage.
#[derive(Clone)]
pub enum StageClient {
	Local(Arc<LocalStage>),
	Remote { endpoint: String, http: reqwest::Client, access: Option<StageAccess> },
}

/// What opens sessions at a remote stage: a grant signed by the coordinator's account, naming
/// the stage's server and the version, sent with each session's first chunk (see
/// [`super::sessions`]).
#[derive(Clone)]
pub struct StageAccess {
	pub opener: Arc<SessionOpener>,
	pub server: subxt::utils::AccountId32,
	pub version: u64,
}

/// One stage of a route, and what routing and payment need to know of it.
#[derive(Clone)]
pub struct Hop {
	pub client: StageClient,
	pub span: (usize, usize),
	/// The server's account (for receipts), if it announced on chain.
	pub server: Option<subxt::utils::AccountId32>,
	pub price_per_token: u128,
}

impl Hop {
	pub fn endpoint(&self) -> String {
		match &self.client {
			StageClient::Local(_) => "local".into(),
			StageClient::Remote { endpoint, .. } => endpoint.clone(),
		}
	}

	/// The stage's signed commitment to a session's transcript after a chunk (`positions` held
	/// then), checked against its announced account; `None` for a stage that need not sign (in
	/// this process, or of no known server). A stage that must sign and did not is broken.
	pub fn verify(
		&self,
		session: &SessionId,
		positions: u32,
		transcript: [u8; 32],
		answer: &Answer,
	) -> Result<Option<SignedCommitment>, HopError> {
		let StageClient::Remote { endpoint, access: Some(access), .. } = &self.client else {
			return Ok(None);
		};
		let unsigned = |reason: &str| HopError::Failed {
			endpoint: endpoint.clone(),
			reason: format!("answer {reason}"),
		};
		let (bit_exact, signature) = answer.commitment.ok_or_else(|| unsigned("not signed"))?;
		let commitment = ChunkCommitment {
			server: access.server,
			version: access.version,
			layers: (self.span.0 as u16, self.span.1 as u16),
			session: *session,
			positions,
			transcript,
			bit_exact,
		};
		SignedCommitment::verified(&access.opener.genesis, commitment, signature)
			.map(Some)
			.ok_or_else(|| unsigned("not signed by its server, or for other bits"))
	}
}

/// A stage's answer to one chunk.
pub struct Answer {
	pub out: Activations,
	/// [`commitments::chunk_digest`] of the request and the answer as they crossed the wire
	/// (zeros for a stage in this process): what the stage's transcript folds.
	pub digest: [u8; 32],
	/// BLAKE2-256 of the answer's bytes alone (zeros for a stage in this process): what a spot
	/// check compares (a replay's requests name another session).
	pub answer_digest: [u8; 32],
	/// The stage's commitment header, decoded: `(bit_exact, signature)`.
	pub commitment: Option<(bool, [u8; 64])>,
	/// The answer's bytes as they crossed the wire (empty for a stage in this process): kept
	/// for a spot-checked session, the evidence of a challenge.
	pub body: bytes::Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum HopError {
	/// The stage no longer holds the session (restarted, or evicted it): replay.
	#[error("{0}: session lost")]
	SessionLost(String),
	/// The stage refused the chunk itself (bad input): no other route will do better.
	#[error("{endpoint}: refused: {reason}")]
	Refused { endpoint: String, reason: String },
	/// The stage is down, timed out or broke: route around it.
	#[error("{endpoint}: {reason}")]
	Failed { endpoint: String, reason: String },
	/// The stage is at capacity (it holds its active sessions): use another one, or wait.
	#[error("{0}: busy")]
	Busy(String),
}

impl HopError {
	/// The stage it is about.
	pub fn endpoint(&self) -> &str {
		match self {
			HopError::SessionLost(endpoint) | HopError::Busy(endpoint) => endpoint,
			HopError::Refused { endpoint, .. } | HopError::Failed { endpoint, .. } => endpoint,
		}
	}
}

impl StageClient {
	pub async fn forward(&self, request: ForwardRequest) -> Result<Answer, HopError> {
		match self {
			StageClient::Local(stage) => {
				let stage = stage.clone();
				let position = request.position as usize;
				let out = tokio::task::spawn_blocking(move || {
					stage.forward(request.session, position, request.input)
				})
				.await
				.map_err(|e| HopError::Failed { endpoint: "local".into(), reason: e.to_string() })?
				.map_err(|e| match e {
					crate::ml::infer::StageError::Position { .. } => {
						HopError::SessionLost("local".into())
					}
					crate::ml::infer::StageError::Busy => HopError::Busy("local".into()),
					e @ crate::ml::infer::StageError::Stopped => {
						HopError::Failed { endpoint: "local".into(), reason: e.to_string() }
					}
					other => {
						HopError::Refused { endpoint: "local".into(), reason: other.to_string() }
					}
				})?;
				let none = [0; 32];
				Ok(Answer {
					out,
					digest: none,
					answer_digest: none,
					commitment: None,
					body: bytes::Bytes::new(),
				})
			}
			StageClient::Remote { endpoint, http, access } => {
				let failed =
					|reason: String| HopError::Failed { endpoint: endpoint.clone(), reason };
				let mut post = http
					.post(format!("{endpoint}/v1/stage/forward"))
					.header("content-type", "application/octet-stream");
				// A session's first chunk opens it.
				if let (Some(access), 0) = (access, request.position) {
					let grant =
						access.opener.grant(&access.server, access.version, &request.session);
					post = post.header(GRANT_HEADER, grant);
				}
				// Kept to fold into the transcript: what the stage signs is over these bytes.
				let bytes = bytes::Bytes::from(protocol::encode_request(&request));
				let position = request.position;
				let response =
					post.body(bytes.clone()).send().await.map_err(|e| failed(e.to_string()))?;
				let status = response.status();
				let commitment = response
					.headers()
					.get(COMMITMENT_HEADER)
					.and_then(|v| v.to_str().ok())
					.and_then(commitments::decode_header);
				// Read at most MAX_RESPONSE_BYTES: a stage cannot make us buffer without bound.
				let mut response = response;
				let mut body = bytes::BytesMut::new();
				while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
					if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
						return Err(failed("answer larger than any stage answer can be".into()));
					}
					body.extend_from_slice(&chunk);
				}
				match status.as_u16() {
					200 => {
						let out = protocol::decode_activations(&body)
							.map_err(|e| failed(e.to_string()))?;
						let digest = commitments::chunk_digest(&bytes, &body);
						let answer_digest = sp_crypto_hashing::blake2_256(&body);
						Ok(Answer { out, digest, answer_digest, commitment, body: body.freeze() })
					}
					409 => Err(HopError::SessionLost(endpoint.clone())),
					// An honest stage is full only for a session's first chunk: a 429 later in a
					// session it holds is a broken (or gaming) stage, not a busy one.
					429 if position == 0 => Err(HopError::Busy(endpoint.clone())),
					429 => Err(failed("answered 429 to a session it holds".into())),
					// The coordinator checked the input already (prompt length, token range): a
					// remote stage refusing it is a bad or overloaded stage, routed around.
					_ => Err(failed(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)))),
				}
			}
		}
	}

	/// Tells the stage the session is over (best effort).
	pub async fn end(&self, session: SessionId) {
		match self {
			StageClient::Local(stage) => stage.end(&session),
			StageClient::Remote { endpoint, http, .. } => {
				let _ = http
					.post(format!("{endpoint}/v1/stage/end"))
					.body(session.to_vec())
					.timeout(Duration::from_secs(2))
					.send()
					.await;
			}
		}
	}
}

/// A route: stages whose spans chain from layer 0 to the model's last layer.
#[derive(Clone)]
pub struct Route {
	pub hops: Vec<Hop>,
}

impl Route {
	pub fn describe(&self) -> String {
		self.hops
			.iter()
			.map(|h| format!("{}[{}..{})", h.endpoint(), h.span.0, h.span.1))
			.collect::<Vec<_>>()
			.join(" → ")
	}
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
	#[error("no route covers version {version}: {reason}")]
	NoRoute { version: u64, reason: String },
	#[error("{0}")]
	Source(String),
}

/// Where routes come from: a fixed local stage, or the on-chain registry (see
/// [`super::chain_router::ChainRouter`]).
pub trait RouteSource: Send + Sync {
	/// A route for `version` avoiding the endpoints in `avoid`.
	fn route<'a>(
		&'a self,
		version: u64,
		avoid: &'a HashSet<String>,
	) -> BoxFuture<'a, Result<Route, RouteError>>;
	/// How a hop went (latency of a successful chunk, or a failure), for later choices.
	fn report(&self, _endpoint: &str, _outcome: Result<Duration, ()>) {}
	/// Other stages serving exactly `span` of `version`, best first, for a spot check (none
	/// where routes are fixed).
	fn peers<'a>(
		&'a self,
		_version: u64,
		_span: (usize, usize),
		_avoid: &'a HashSet<String>,
	) -> BoxFuture<'a, Vec<Hop>> {
		Box::pin(async { Vec::new() })
	}
	/// A spot check caught this stage answering bits other than the layers give: never route
	/// to its server again.
	fn caught(&self, _hop: &Hop) {}
}

/// Always the same route: one local stage holding the whole model, or fixed stages (benchmarks,
/// private deployments).
pub struct FixedRoute(pub Route);

impl FixedRoute {
	pub fn local(stage: Arc<LocalStage>) -> Self {
		Self::local_stages(vec![stage])
	}

	/// Through stages held in this process, in order (each hands its hidden states to the next
	/// as remote stages do).
	pub fn local_stages(stages: Vec<Arc<LocalStage>>) -> Self {
		let hops = stages
			.into_iter()
			.map(|stage| Hop {
				span: stage.span(),
				client: StageClient::Local(stage),
				server: None,
				price_per_token: 0,
			})
			.collect();
		Self(Route { hops })
	}
}

impl RouteSource for FixedRoute {
	fn route<'a>(
		&'a self,
		_: u64,
		_: &'a HashSet<String>,
	) -> BoxFuture<'a, Result<Route, RouteError>> {
		let route = self.0.clone();
		Box::pin(async move { Ok(route) })
	}
}

/// What a client asks for.
#[derive(Clone, Debug)]
pub struct GenerateRequest {
	pub prompt: Vec<u32>,
	pub max_tokens: usize,
	pub temperature: f32,
	/// Sample among the `top_k` likeliest tokens (0: all of them).
	pub top_k: usize,
	/// Sample among the likeliest tokens whose probabilities add up to `top_p` (1: all).
	pub top_p: f32,
	pub seed: u64,
	/// Report each token's log-probability and this many alternatives (`None`: no logprobs).
	pub logprobs: Option<usize>,
	/// Keep every hop's inputs for a spot check ([`super::checks`]): the request was drawn.
	pub check: bool,
}

/// What came out, and the stages that served it.
#[derive(Clone, Debug)]
pub struct Generation {
	pub tokens: Vec<u32>,
	/// `"stop"` or `"length"`, as OpenAI reports it.
	pub finish_reason: &'static str,
	/// Times the route was rebuilt mid-generation.
	pub reroutes: u32,
	/// Time to the first token.
	pub first_token: Duration,
	/// The stages that served it at the end: `(server, price per token)`, and their endpoints.
	pub served_by: Vec<(Option<subxt::utils::AccountId32>, u128)>,
	pub endpoints: Vec<String>,
	/// What each stage of the final route signed last (`None` for a stage that need not sign):
	/// its commitment to every answer of the session.
	pub commitments: Vec<Option<SignedCommitment>>,
	/// Each hop's inputs and answers' digests, for a spot check (empty unless asked).
	pub records: Vec<HopRecord>,
}

/// What a session's chunks left at one hop of its route.
#[derive(Clone)]
pub struct HopRecord {
	pub hop: Hop,
	/// The chunks sent to it, `(position, input)`, kept for a spot check.
	pub inputs: Vec<(u32, Activations)>,
	/// Each answer's [`Answer::answer_digest`], kept with `inputs`.
	pub digests: Vec<[u8; 32]>,
	/// Each answer's bytes, kept with `inputs`: with the inputs, what the stage signed.
	pub answers: Vec<bytes::Bytes>,
	/// The session's transcript at this hop so far.
	pub transcript: [u8; 32],
	/// The hop's latest signed commitment.
	pub signed: Option<SignedCommitment>,
}

impl std::fmt::Debug for HopRecord {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_struct("HopRecord")
			.field("endpoint", &self.hop.endpoint())
			.field("span", &self.hop.span)
			.field("chunks", &self.inputs.len())
			.field("signed", &self.signed.is_some())
			.finish()
	}
}

/// The records of one session on one route.
struct SessionLog {
	hops: Vec<HopRecord>,
	keep_inputs: bool,
	/// The width of the hidden states the stages answered (the model's hidden size).
	hidden_width: Option<usize>,
}

/// The session id a route's session has at its `hop`th stage: each stage knows only its own
/// (so a stage cannot use its neighbours' open sessions), the coordinator derives them all.
pub fn hop_session(session: &SessionId, hop: usize) -> SessionId {
	let hash = sp_crypto_hashing::blake2_256(&[&session[..], &(hop as u32).to_le_bytes()].concat());
	hash[..16].try_into().expect("16 of 32 bytes")
}

/// Ends `session` at every stage of `route`.
async fn end_session(route: &Route, session: SessionId) {
	for (i, hop) in route.hops.iter().enumerate() {
		hop.client.end(hop_session(&session, i)).await;
	}
}

impl SessionLog {
	fn new(route: &Route, keep_inputs: bool) -> Self {
		let hops = route
			.hops
			.iter()
			.map(|hop| HopRecord {
				hop: hop.clone(),
				inputs: Vec::new(),
				digests: Vec::new(),
				answers: Vec::new(),
				transcript: [0; 32],
				signed: None,
			})
			.collect();
		Self { hops, keep_inputs, hidden_width: None }
	}
}

/// A session given up before its generation ended (a stage of its route failed, lost it, refused
/// a chunk or was at capacity): the schedule goes on in a new session, on another route or the
/// same one later, or the generation fails. Its stages computed what they answered of it, and
/// are paid for it ([`Self::payable`]); unpaid, it would count against the coordinator's credit
/// at each of them until an honest stage refused the coordinator altogether.
pub struct AbandonedSession {
	/// The route's stages, and what each signed last of the session (`None`: nothing).
	pub hops: Vec<(Hop, Option<SignedCommitment>)>,
	/// A stage found broken (down, timed out, answering what it may not, or claiming to have
	/// lost the session or to be full in its middle): not paid for the session. A stage that
	/// refused a chunk or was busy for the session's first chunk is paid for what it answered
	/// before (a busy one answered nothing of it).
	pub broken: Option<String>,
	/// The prompt's tokens, the first positions of the session.
	pub prompt_tokens: u32,
}

/// What one stage of an [`AbandonedSession`] is paid for.
pub struct AbandonedPayment<'a> {
	/// Its place in the route (its leaf under the receipt's root).
	pub stage: usize,
	pub hop: &'a Hop,
	pub server: subxt::utils::AccountId32,
	/// What it signed last of the session: what the receipt pays for.
	pub signed: &'a SignedCommitment,
	/// The positions it signed, as prompt and generated tokens.
	pub tokens_in: u32,
	pub tokens_out: u32,
}

impl AbandonedSession {
	/// What every stage signed last, in route order (a receipt's root is over their leaves).
	pub fn commitments(&self) -> Vec<Option<SignedCommitment>> {
		self.hops.iter().map(|(_, signed)| signed.clone()).collect()
	}

	/// Every stage of a known server that signed answers of the session, but one found broken,
	/// with the positions it signed.
	pub fn payable(&self) -> Vec<AbandonedPayment<'_>> {
		self.hops
			.iter()
			.enumerate()
			.filter(|(_, (hop, _))| self.broken.as_deref() != Some(hop.endpoint().as_str()))
			.filter_map(|(stage, (hop, signed))| {
				let (server, signed) = (hop.server?, signed.as_ref()?);
				let positions = signed.commitment.positions;
				let tokens_in = positions.min(self.prompt_tokens);
				let tokens_out = positions - tokens_in;
				Some(AbandonedPayment { stage, hop, server, signed, tokens_in, tokens_out })
			})
			.collect()
	}
}

/// Ends `session` at every stage of `route` and hands what its stages signed of it, with the
/// stage found broken if `why` says one was, to `on_abandoned`.
async fn abandon(
	route: &Route,
	session: SessionId,
	log: &SessionLog,
	why: &HopError,
	prompt_tokens: usize,
	on_abandoned: &mut impl FnMut(AbandonedSession),
) {
	end_session(route, session).await;
	on_abandoned(AbandonedSession {
		hops: log.hops.iter().map(|r| (r.hop.clone(), r.signed.clone())).collect(),
		// A stage loses a session it holds only by restarting (which forgets what it signed:
		// its receipt would be refused) or by faking it: not paid either way.
		broken: matches!(why, HopError::Failed { .. } | HopError::SessionLost(_))
			.then(|| why.endpoint().to_string()),
		prompt_tokens: u32::try_from(prompt_tokens).unwrap_or(u32::MAX),
	});
}

/// Whether an answer to a chunk of `rows` positions has the shape the next hop (or the sampler)
/// takes: hidden states of those rows at the route's width, or the last stage's logits. A stage
/// answering another shape is broken, not the one after it.
fn well_shaped(out: &Activations, rows: usize, last: bool, width: &mut Option<usize>) -> bool {
	match (out, last) {
		(Activations::Logits(l), true) => !l.is_empty(),
		(Activations::Hidden { rows: r, values }, false) => {
			if *r != rows || values.is_empty() || values.len() % rows != 0 {
				return false;
			}
			let w = values.len() / rows;
			*width.get_or_insert(w) == w
		}
		_ => false,
	}
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
	#[error(transparent)]
	Route(#[from] RouteError),
	#[error(transparent)]
	Hop(HopError),
	#[error("gave up after {0} reroutes")]
	TooManyReroutes(u32),
	#[error("every stage that could serve this is at capacity; retry shortly")]
	Busy,
}

/// Largest stage answer read: hidden states of 2 048 positions of width 8 192 in f32.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Most route rebuilds within one generation.
const MAX_REROUTES: u32 = 5;
/// Most waits for a free slot within one generation, when every route has a stage at capacity
/// (50 ms doubling to 400 ms: ~11 s in all).
const MAX_BUSY_WAITS: u32 = 30;

pub fn new_session() -> SessionId {
	let mut id = [0u8; 16];
	rand::rng().fill_bytes(&mut id);
	id
}

/// Sends one chunk through every hop, checking and keeping what each signed; the logits of its
/// last position.
async fn run_chunk(
	source: &dyn RouteSource,
	route: &Route,
	session: SessionId,
	position: usize,
	chunk: &[u32],
	log: &mut SessionLog,
) -> Result<Vec<f32>, HopError> {
	let mut x = Activations::Tokens(chunk.to_vec());
	let positions = (position + chunk.len()) as u32;
	let last = route.hops.len().saturating_sub(1);
	for (i, (hop, record)) in route.hops.iter().zip(log.hops.iter_mut()).enumerate() {
		let started = Instant::now();
		let kept = log.keep_inputs.then(|| x.clone());
		let session = hop_session(&session, i);
		let request = ForwardRequest { session, position: position as u32, input: x };
		let width = &mut log.hidden_width;
		let answered = hop.client.forward(request).await.and_then(|answer| {
			if !well_shaped(&answer.out, chunk.len(), i == last, width) {
				return Err(HopError::Failed {
					endpoint: hop.endpoint(),
					reason: "answered a tensor of another shape".into(),
				});
			}
			let transcript = commitments::fold(&record.transcript, &answer.digest);
			let signed = hop.verify(&session, positions, transcript, &answer)?;
			Ok((answer, transcript, signed))
		});
		match answered {
			Ok((answer, transcript, signed)) => {
				source.report(&hop.endpoint(), Ok(started.elapsed()));
				record.transcript = transcript;
				if signed.is_some() {
					record.signed = signed;
				}
				if let Some(input) = kept {
					record.inputs.push((position as u32, input));
					record.digests.push(answer.answer_digest);
					record.answers.push(answer.body.clone());
				}
				x = answer.out;
			}
			Err(e) => {
				if matches!(e, HopError::Failed { .. }) {
					source.report(&hop.endpoint(), Err(()));
				}
				return Err(e);
			}
		}
	}
	match x {
		Activations::Logits(l) => Ok(l),
		// A stage answering the wrong kind is broken: route around it.
		_ => {
			let endpoint = route.hops.last().map(Hop::endpoint).unwrap_or_default();
			source.report(&endpoint, Err(()));
			Err(HopError::Failed {
				endpoint,
				reason: "the last stage did not return logits".into(),
			})
		}
	}
}

/// Generates for `request` on routes from `source`, calling `on_token` for each new token; it
/// answers whether generation stops there (an end token, a stop string: the caller reads text).
pub async fn generate(
	source: &dyn RouteSource,
	version: u64,
	request: &GenerateRequest,
	on_token: impl FnMut(u32, Option<TokenLogprobs>) -> bool,
) -> Result<Generation, GenerateError> {
	generate_reporting(source, version, request, on_token, |_| {}).await
}

/// [`generate`], handing each session it gives up on the way to `on_abandoned` as soon as it
/// ends (a paying coordinator pays its stages for what they answered of it).
pub async fn generate_reporting(
	source: &dyn RouteSource,
	version: u64,
	request: &GenerateRequest,
	mut on_token: impl FnMut(u32, Option<TokenLogprobs>) -> bool,
	mut on_abandoned: impl FnMut(AbandonedSession),
) -> Result<Generation, GenerateError> {
	let prompt_tokens = request.prompt.len();
	let started = Instant::now();
	let mut avoid = HashSet::new();
	let mut route = source.route(version, &avoid).await?;
	let mut session = new_session();
	let mut log = SessionLog::new(&route, request.check);
	let mut sampler =
		Sampler::new(request.temperature, request.seed).top_k(request.top_k).top_p(request.top_p);
	// Chunks sent so far: the prompt, then each generated token but the last.
	let mut schedule: Vec<Vec<u32>> = Vec::new();
	let mut tokens: Vec<u32> = Vec::new();
	let mut next_chunk = request.prompt.clone();
	let (mut reroutes, mut busy_waits, mut first_token) = (0u32, 0u32, None);
	// Stages found at capacity since the last wait for one.
	let mut busy: HashSet<String> = HashSet::new();
	let mut finish_reason = "length";
	// Set after a failure: the (new) route needs the schedule replayed on a new session.
	let mut replay = false;
	while tokens.len() < request.max_tokens {
		let outcome = if replay {
			session = new_session();
			log = SessionLog::new(&route, request.check);
			tracing::info!("replaying {} chunks on {}", schedule.len(), route.describe());
			let mut position = 0usize;
			let mut outcome = Ok(());
			for chunk in &schedule {
				if let Err(e) = run_chunk(source, &route, session, position, chunk, &mut log).await
				{
					outcome = Err(e);
					break;
				}
				position += chunk.len();
			}
			outcome.map(|()| None)
		} else {
			let position: usize = schedule.iter().map(Vec::len).sum();
			run_chunk(source, &route, session, position, &next_chunk, &mut log).await.map(Some)
		};
		let logits = match outcome {
			Ok(Some(logits)) => logits,
			Ok(None) => {
				replay = false;
				continue;
			}
			Err(e @ HopError::Refused { .. }) => {
				abandon(&route, session, &log, &e, prompt_tokens, &mut on_abandoned).await;
				return Err(GenerateError::Hop(e));
			}
			// A full stage is not a broken one: another route if there is one, else wait for a
			// slot (back-pressure instead of an error).
			Err(e @ HopError::Busy(_)) => {
				abandon(&route, session, &log, &e, prompt_tokens, &mut on_abandoned).await;
				busy.insert(e.endpoint().to_string());
				let mut around = avoid.clone();
				around.extend(busy.iter().cloned());
				// A route clear of every stage found busy since the last wait (a fixed route
				// ignores what to avoid: then it is checked here).
				let other = source
					.route(version, &around)
					.await
					.ok()
					.filter(|r| r.hops.iter().all(|h| !busy.contains(&h.endpoint())));
				route = match other {
					Some(other) => other,
					None => {
						busy_waits += 1;
						if busy_waits > MAX_BUSY_WAITS {
							return Err(GenerateError::Busy);
						}
						let wait = 50u64 << busy_waits.min(4).saturating_sub(1);
						tokio::time::sleep(Duration::from_millis(wait)).await;
						busy.clear();
						source.route(version, &avoid).await?
					}
				};
				replay = true;
				continue;
			}
			Err(e) => {
				abandon(&route, session, &log, &e, prompt_tokens, &mut on_abandoned).await;
				reroutes += 1;
				if reroutes > MAX_REROUTES {
					return Err(GenerateError::TooManyReroutes(reroutes - 1));
				}
				if let HopError::Failed { endpoint, reason } = &e {
					tracing::warn!("stage {endpoint} failed ({reason}); rerouting");
					avoid.insert(endpoint.clone());
				}
				route = source.route(version, &avoid).await?;
				replay = true;
				continue;
			}
		};
		let token = sampler.next(&logits);
		first_token.get_or_insert_with(|| started.elapsed());
		tokens.push(token);
		let logprobs = request.logprobs.map(|top| TokenLogprobs::of(&logits, token, top));
		let stop = on_token(token, logprobs);
		schedule.push(std::mem::replace(&mut next_chunk, vec![token]));
		if stop {
			finish_reason = "stop";
			break;
		}
	}
	end_session(&route, session).await;
	Ok(Generation {
		tokens,
		finish_reason,
		reroutes,
		first_token: first_token.unwrap_or_default(),
		served_by: route.hops.iter().map(|h| (h.server, h.price_per_token)).collect(),
		endpoints: route.hops.iter().map(Hop::endpoint).collect(),
		commitments: log.hops.iter().map(|r| r.signed.clone()).collect(),
		records: if request.check { log.hops } else { Vec::new() },
	})
}

#[cfg(test)]
mod tests {
	use super::*;

	use crate::{
		inference::stage::LocalStage,
		ml::{infer::StageModel, init_layers, model::ModelConfig},
	};

	#[tokio::test]
	async fn a_stage_full_in_the_middle_of_a_session_is_broken_not_busy() {
		// A stage answering 429 to everything: for a session's first chunk that is a full
		// stage; later in a session it holds, no honest stage says so (it would be paid again
		// for every prefix replayed around it).
		let app = axum::Router::new().route(
			"/v1/stage/forward",
			axum::routing::post(|| async { axum::http::StatusCode::TOO_MANY_REQUESTS }),
		);
		let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
		let endpoint = format!("http://{}", listener.local_addr().unwrap());
		tokio::spawn(async move { axum::serve(listener, app).await });
		let client = StageClient::Remote { endpoint, http: reqwest::Client::new(), access: None };
		let chunk = |position| ForwardRequest {
			session: [1; 16],
			position,
			input: Activations::Tokens(vec![1, 2]),
		};
		assert!(matches!(client.forward(chunk(0)).await, Err(HopError::Busy(_))));
		assert!(matches!(client.forward(chunk(2)).await, Err(HopError::Failed { .. })));
	}

	#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
	async fn generations_beyond_a_stages_capacity_wait_for_a_slot_instead_of_failing() {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 1);
		let model =
			StageModel::<crate::ml::CpuBackend>::new(&config, 0, &layers, &Default::default())
				.unwrap();
		// One session at a time, and slow chunks: three requests at once must queue.
		let stage = LocalStage::start(model, 1, Duration::from_millis(5), "cpu");
		let source = Arc::new(FixedRoute::local(stage));
		let request = GenerateRequest {
			prompt: vec![1, 2, 3],
			max_tokens: 8,
			temperature: 0.0,
			seed: 0,
			top_k: 0,
			top_p: 1.0,
			logprobs: None,
			check: false,
		};
		let runs = (0..3).map(|_| {
			let (source, request) = (source.clone(), request.clone());
			tokio::spawn(async move { generate(source.as_ref(), 0, &request, |_, _| false).await })
		});
		let generations: Vec<Generation> = futures::future::join_all(runs)
			.await
			.into_iter()
			.map(|r| r.expect("task").expect("a busy stage is waited for, not an error"))
			.collect();
		for g in &generations {
			assert_eq!(g.tokens, generations[0].tokens);
			assert_eq!(g.tokens.len(), 8);
		}
	}
}
