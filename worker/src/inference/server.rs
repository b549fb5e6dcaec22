//! The HTTP face of a server or gateway: the OpenAI-compatible API (`/v1/models`,
//! `/v1/completions`, `/v1/chat/completions`, both with `stream`, and `/v1/usage` of the
//! caller's key) for bearers of an API key ([`ApiAccess`]), the stage protocol
//! (`/v1/stage/forward`, `/v1/stage/end`) for sessions opened by a paying client when this
//! process holds layers ([`super::sessions`]), `/v1/receipts` when it is paid, and `/health`
//! and `/metrics` (Prometheus text).

use std::{
	convert::Infallible,
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc,
	},
	time::{SystemTime, UNIX_EPOCH},
};

use axum::{
	body::Bytes,
	extract::{rejection::JsonRejection, DefaultBodyLimit, State},
	http::{header::AUTHORIZATION, HeaderMap, StatusCode},
	response::{
		sse::{Event, Sse},
		IntoResponse, Response,
	},
	routing::{get, post},
	Json, Router,
};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::{
	chain::{Chain, ChallengeOutcome, Receipt},
	ml::{
		infer::{Activations, StageError, TokenLogprobs},
		tokenizer::{ChatMessage, ChatOptions, TextTokenizer},
	},
};

use super::{
	api_keys::{ApiKeys, HeldTokens, KeyEntry},
	checks::{self, CheckQueue, Verdict},
	commitments::{self, ChunkSigner, SignedCommitment, COMMITMENT_HEADER},
	fraud::Challenger,
	protocol,
	receipts::{NonceClock, PostedReceipt, ReceiptBook},
	route::{self, GenerateRequest, Generation, RouteSource},
	sessions::{SessionGate, GRANT_HEADER},
	stage::LocalStage,
};

/// Who may use this process's OpenAI API.
pub enum ApiAccess {
	/// Anyone who reaches it (`--no-auth`: a private gateway or server, or a test).
	Open,
	/// Bearers of the keys in a key file, within their quotas.
	Keys(Arc<ApiKeys>),
	/// Nobody: a server answers the OpenAI API only when told who may.
	Off,
}

/// Who pays for completions a gateway coordinates: its account signs a receipt per server.
pub struct Payer {
	pub chain: Chain,
	pub nonces: NonceClock,
	/// Sign free-tier receipts (price 0, counted against the quota) instead of paid ones.
	pub free: bool,
	pub http: reqwest::Client,
}

#[derive(Default)]
pub struct Metrics {
	requests: AtomicU64,
	failed: AtomicU64,
	prompt_tokens: AtomicU64,
	completion_tokens: AtomicU64,
	first_token_micros: AtomicU64,
	reroutes: AtomicU64,
	receipts_sent: AtomicU64,
	/// Receipts for sessions given up mid-generation (what their stages answered of them).
	abandoned_receipts: AtomicU64,
	/// Stage chunks answered (the count a lying stage of the tests corrupts by).
	chunks_answered: AtomicU64,
	/// OpenAI requests refused for their key (401) or its quota (429).
	unauthorized: AtomicU64,
	/// Stage chunks refused before compute: no session, a bad grant, a client that cannot pay.
	chunks_refused: AtomicU64,
	/// Hops spot-checked on a peer, those whose check found a difference, and stages caught.
	checks: AtomicU64,
	checks_failed: AtomicU64,
	/// Hops drawn for a check but not checked (no peer replayed them, or nothing to check).
	checks_unchecked: AtomicU64,
	/// Completions drawn for a check that found the check queue full (not checked).
	checks_dropped: AtomicU64,
	caught: AtomicU64,
	/// Challenges of caught stages closed on chain, those that proved the fraud, and those that
	/// could not be made or followed (e.g. a stage already slashed and no longer announced).
	challenges_closed: AtomicU64,
	frauds_proven: AtomicU64,
	challenges_failed: AtomicU64,
	/// Catches of a stage this gateway challenges already (not challenged twice).
	challenges_skipped: AtomicU64,
}

pub struct AppState {
	/// Version served (the OpenAI model is `blyan-<version>`).
	pub version: u64,
	/// The layers this process holds, if any.
	pub stage: Option<Arc<LocalStage>>,
	/// Where completions are routed, if this process answers the OpenAI API.
	pub routes: Option<Arc<dyn RouteSource>>,
	pub book: Option<Arc<ReceiptBook>>,
	pub payer: Option<Arc<Payer>>,
	/// Who may use the OpenAI API.
	pub api: ApiAccess,
	/// Which stage sessions are open, and for whom (`None`: the stage computes for anyone, as
	/// in-process stages of tests and benchmarks).
	pub gate: Option<Arc<SessionGate>>,
	/// Signs this stage's answers (`None`: it signs nothing, as in-process stages).
	pub signer: Option<Arc<ChunkSigner>>,
	/// Share of completions whose hops are spot-checked on a peer afterwards (a coordinator).
	pub check_rate: f64,
	/// How many checks run and wait at once (a completion drawn beyond is not checked).
	pub check_queue: Arc<CheckQueue>,
	/// Challenges a stage caught on chain (`None`: caught stages are only routed around).
	pub challenger: Option<Arc<Challenger>>,
	/// Tests and benchmarks only: every `n`th chunk's answer has one bit flipped (a lying stage,
	/// which signs its lie); 0: never.
	pub corrupt_every: u64,
	/// Longest context (prompt + completion).
	pub max_positions: usize,
	/// The model's tokenizer (from its registered configuration).
	pub tokenizer: Arc<TextTokenizer>,
	pub metrics: Metrics,
}

impl AppState {
	/// A process holding `stage` of `version` and nothing else: no OpenAI API, no gate, no
	/// signer, no book (benchmarks and tests set what they need on top).
	pub fn for_stage(version: u64, stage: Arc<LocalStage>) -> Self {
		Self {
			version,
			max_positions: stage.config().max_position_embeddings,
			stage: Some(stage),
			routes: None,
			book: None,
			payer: None,
			api: ApiAccess::Off,
			gate: None,
			signer: None,
			check_rate: 0.0,
			check_queue: Default::default(),
			challenger: None,
			corrupt_every: 0,
			tokenizer: Arc::new(TextTokenizer::Bytes),
			metrics: Metrics::default(),
		}
	}
}

/// Serves `state` on an ephemeral port of 127.0.0.1 in this process; its base URL.
pub async fn serve_locally(state: AppState) -> std::io::Result<String> {
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
	let url = format!("http://{}", listener.local_addr()?);
	let app = router(Arc::new(state));
	tokio::spawn(async move { axum::serve(listener, app).await });
	Ok(url)
}

pub fn model_name(version: u64) -> String {
	format!("blyan-{version}")
}

pub fn router(state: Arc<AppState>) -> Router {
	// Bodies: JSON requests and receipts are small; a stage chunk is at most the context's hidden
	// states (or token ids).
	let small = DefaultBodyLimit::max(1 << 20);
	let chunk = state
		.stage
		.as_ref()
		.map(|s| {
			let c = s.config();
			c.max_position_embeddings.saturating_mul(c.hidden_size.max(1)).saturating_mul(4)
		})
		.unwrap_or(0)
		.saturating_add(64);
	Router::new()
		.route("/health", get(health))
		.route("/metrics", get(metrics))
		.route("/v1/models", get(models))
		.route("/v1/usage", get(key_usage))
		.route("/v1/completions", post(completions).layer(small))
		.route("/v1/chat/completions", post(chat_completions).layer(small))
		.route("/v1/stage/forward", post(stage_forward).layer(DefaultBodyLimit::max(chunk)))
		.route("/v1/stage/end", post(stage_end).layer(DefaultBodyLimit::max(64)))
		.route("/v1/receipts", post(receipt).layer(small))
		.with_state(state)
}

/// An OpenAI error object of `type` `kind` and `code`.
fn error_object(status: StatusCode, kind: &str, code: &str, message: impl ToString) -> Response {
	let body = json!({ "error": {
		"message": message.to_string(), "type": kind, "param": Value::Null, "code": code,
	} });
	(status, Json(body)).into_response()
}

/// The caller's key (`None` where the API is open), or the answer refusing the request: 401
/// without a valid key (as OpenAI's API), 503 where this process answers no OpenAI API.
fn authorize(s: &AppState, headers: &HeaderMap) -> Result<Option<KeyEntry>, Box<Response>> {
	if s.routes.is_none() {
		return Err(Box::new(error(
			StatusCode::SERVICE_UNAVAILABLE,
			"this server holds only part of the model; ask a gateway (blyan-worker gateway)",
		)));
	}
	match &s.api {
		ApiAccess::Open => Ok(None),
		ApiAccess::Off => Err(Box::new(error(
			StatusCode::SERVICE_UNAVAILABLE,
			"this server answers the OpenAI API only when started with --api-keys FILE (or \
			 --no-auth); ask a gateway",
		))),
		ApiAccess::Keys(keys) => {
			let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
			keys.authorize(header).map(Some).map_err(|e| {
				s.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
				Box::new(error(StatusCode::UNAUTHORIZED, e))
			})
		}
	}
}

/// An OpenAI error object: `type` and `code` say what the status says, as OpenAI's own API and
/// its clients expect.
fn error(status: StatusCode, message: impl ToString) -> Response {
	let (kind, code) = match status {
		StatusCode::BAD_REQUEST => ("invalid_request_error", "invalid_request"),
		StatusCode::UNAUTHORIZED => ("authentication_error", "invalid_api_key"),
		StatusCode::NOT_FOUND => ("invalid_request_error", "model_not_found"),
		StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", "rate_limit_exceeded"),
		StatusCode::SERVICE_UNAVAILABLE => ("server_error", "overloaded"),
		_ if status.is_client_error() => ("invalid_request_error", "invalid_request"),
		_ => ("server_error", "server_error"),
	};
	error_object(status, kind, code, message)
}

async fn health(State(s): State<Arc<AppState>>) -> Json<Value> {
	let (layers, sessions, capacity, device) = match &s.stage {
		Some(stage) => {
			let (a, b) = stage.span();
			(json!([a, b]), stage.sessions(), stage.capacity(), json!(stage.device()))
		}
		None => (Value::Null, 0, 0, Value::Null),
	};
	Json(json!({
		"status": "ok",
		"version": s.version,
		"layers": layers,
		"sessions": sessions,
		"capacity": capacity,
		"device": device,
		"serves_api": s.routes.is_some(),
	}))
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
	let m = &s.metrics;
	let mut out = String::new();
	let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
		out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
	};
	let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
	metric("blyan_requests_total", "counter", "Completions requested.", load(&m.requests));
	metric("blyan_requests_failed_total", "counter", "Completions failed.", load(&m.failed));
	metric("blyan_prompt_tokens_total", "counter", "Prompt tokens.", load(&m.prompt_tokens));
	metric(
		"blyan_completion_tokens_total",
		"counter",
		"Generated tokens.",
		load(&m.completion_tokens),
	);
	metric(
		"blyan_first_token_seconds_sum",
		"counter",
		"Sum of times to first token.",
		load(&m.first_token_micros) / 1e6,
	);
	metric("blyan_reroutes_total", "counter", "Routes rebuilt mid-generation.", load(&m.reroutes));
	metric("blyan_receipts_sent_total", "counter", "Receipts signed.", load(&m.receipts_sent));
	metric(
		"blyan_abandoned_receipts_total",
		"counter",
		"Receipts signed for sessions given up mid-generation (rerouted, a stage busy, or the completion failed).",
		load(&m.abandoned_receipts),
	);
	metric("blyan_checks_total", "counter", "Hops spot-checked on a peer.", load(&m.checks));
	metric(
		"blyan_checks_failed_total",
		"counter",
		"Spot checks that found a difference.",
		load(&m.checks_failed),
	);
	metric(
		"blyan_checks_unchecked_total",
		"counter",
		"Hops drawn for a check but not checked (no peer replayed them, or nothing to check).",
		load(&m.checks_unchecked),
	);
	metric(
		"blyan_checks_dropped_total",
		"counter",
		"Completions drawn for a check while as many checks ran and waited as may (not checked).",
		load(&m.checks_dropped),
	);
	metric(
		"blyan_checks_queued",
		"gauge",
		"Checks running or waiting.",
		s.check_queue.entered() as f64,
	);
	metric(
		"blyan_servers_caught_total",
		"counter",
		"Stages caught answering other bits than their layers give.",
		load(&m.caught),
	);
	metric(
		"blyan_challenges_closed_total",
		"counter",
		"On-chain challenges of caught stages closed.",
		load(&m.challenges_closed),
	);
	metric(
		"blyan_frauds_proven_total",
		"counter",
		"Challenges whose arbiters proved the stage lied (its bond slashed).",
		load(&m.frauds_proven),
	);
	metric(
		"blyan_challenges_failed_total",
		"counter",
		"Challenges of caught stages that could not be made or seen through.",
		load(&m.challenges_failed),
	);
	metric(
		"blyan_challenges_skipped_total",
		"counter",
		"Catches of a stage this gateway challenges already or proved a lie of.",
		load(&m.challenges_skipped),
	);
	metric(
		"blyan_requests_unauthorized_total",
		"counter",
		"Requests refused for their API key or its quota.",
		load(&m.unauthorized),
	);
	if let Some(stage) = &s.stage {
		let st = stage.stats();
		metric("blyan_stage_chunks_total", "counter", "Chunks run.", st.chunks as f64);
		metric(
			"blyan_stage_batches_total",
			"counter",
			"Batches run (chunks / batches = mean batch).",
			st.batches as f64,
		);
		metric("blyan_stage_positions_total", "counter", "Positions run.", st.positions as f64);
		metric("blyan_stage_errors_total", "counter", "Chunks refused.", st.errors as f64);
		metric("blyan_stage_evictions_total", "counter", "Sessions evicted.", st.evicted as f64);
		metric(
			"blyan_stage_busy_seconds_total",
			"counter",
			"Compute time.",
			st.busy_micros as f64 / 1e6,
		);
		metric("blyan_stage_sessions", "gauge", "Sessions held.", stage.sessions() as f64);
		metric(
			"blyan_stage_chunks_refused_total",
			"counter",
			"Chunks refused before compute (no open session, bad grant, client cannot pay).",
			load(&m.chunks_refused),
		);
		if let Some(gate) = &s.gate {
			metric(
				"blyan_stage_positions_unpaid",
				"gauge",
				"Positions computed for clients and not yet covered by their receipts.",
				gate.unpaid_positions() as f64,
			);
		}
	}
	if let Some(book) = &s.book {
		let b = book.stats();
		metric("blyan_receipts_pending", "gauge", "Receipts not yet settled.", b.pending as f64);
		metric("blyan_receipts_settled_total", "counter", "Receipts settled.", b.settled as f64);
		metric("blyan_receipts_refused_total", "counter", "Receipts refused.", b.refused as f64);
	}
	([("content-type", "text/plain; version=0.0.4")], out)
}

async fn models(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
	if let ApiAccess::Keys(_) = s.api {
		if let Err(refused) = authorize(&s, &headers) {
			return *refused;
		}
	}
	Json(json!({
		"object": "list",
		"data": [{ "id": model_name(s.version), "object": "model", "created": 0, "owned_by": "blyan" }],
	}))
	.into_response()
}

/// What the caller's key used today and in all, and its daily quota.
async fn key_usage(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
	let ApiAccess::Keys(keys) = &s.api else {
		return error(StatusCode::NOT_FOUND, "this process issues no API keys");
	};
	let key = match authorize(&s, &headers) {
		Ok(Some(key)) => key,
		Ok(None) => return error(StatusCode::NOT_FOUND, "this process issues no API keys"),
		Err(refused) => return *refused,
	};
	let u = keys.usage(&key);
	Json(json!({
		"object": "usage", "key": key.id, "name": key.name, "day": u.day,
		"daily_tokens": key.daily_tokens, "tokens_today": u.tokens_today,
		"requests": u.requests, "tokens_total": u.tokens_total,
	}))
	.into_response()
}

async fn stage_forward(
	State(s): State<Arc<AppState>>,
	headers: HeaderMap,
	body: Bytes,
) -> Response {
	let Some(stage) = s.stage.clone() else {
		return error(StatusCode::NOT_FOUND, "this process holds no layers");
	};
	let request = match protocol::decode_request(&body) {
		Ok(r) => r,
		Err(e) => return error(StatusCode::BAD_REQUEST, e),
	};
	// A full stage refuses a new session before taking its grant: a spot check waiting for room
	// asks again and again, and each try would otherwise use up a grant.
	if request.position == 0 && !stage.has_room_for(&request.session) {
		s.metrics.chunks_refused.fetch_add(1, Ordering::Relaxed);
		return error(StatusCode::TOO_MANY_REQUESTS, StageError::Busy);
	}
	// Nothing is computed for a session no paying client opened.
	let admitted = match &s.gate {
		Some(gate) => {
			let grant = headers.get(GRANT_HEADER).and_then(|v| v.to_str().ok());
			match gate.admit(&request.session, request.position, grant).await {
				Ok(admitted) => Some(admitted),
				Err(e) => {
					s.metrics.chunks_refused.fetch_add(1, Ordering::Relaxed);
					let status =
						StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
					return error(status, e);
				}
			}
		}
		None => None,
	};
	let (session, position) = (request.session, request.position);
	let rows = request.input.rows() as u32;
	let result = tokio::task::spawn_blocking(move || {
		stage.forward(request.session, position as usize, request.input)
	})
	.await;
	match result {
		Ok(Ok(mut out)) => {
			let chunk = s.metrics.chunks_answered.fetch_add(1, Ordering::Relaxed) + 1;
			if s.corrupt_every > 0 && chunk % s.corrupt_every == 0 {
				corrupt(&mut out);
			}
			let answer = protocol::encode_activations(&out);
			let mut response =
				([("content-type", "application/octet-stream")], answer.clone()).into_response();
			if let Some(signer) = &s.signer {
				let client = admitted.as_ref().map(|a| &a.client);
				let header = signer.commit(&session, client, position, rows, &body, &answer);
				if let Ok(value) = header.parse() {
					response.headers_mut().insert(COMMITMENT_HEADER, value);
				}
			}
			if let (Some(gate), Some(admitted)) = (&s.gate, &admitted) {
				gate.charge(admitted, rows);
			}
			response
		}
		Ok(Err(e)) => {
			// A session whose first chunk was not computed holds nothing: it is not left open
			// (its grant stays used).
			if let (Some(gate), 0) = (&s.gate, position) {
				gate.end(&session);
			}
			match e {
				e @ StageError::Position { .. } => error(StatusCode::CONFLICT, e),
				// 429: at capacity, try later or elsewhere; 503: this stage is broken, route
				// around it.
				e @ StageError::Busy => error(StatusCode::TOO_MANY_REQUESTS, e),
				e @ StageError::Stopped => error(StatusCode::SERVICE_UNAVAILABLE, e),
				e => error(StatusCode::BAD_REQUEST, e),
			}
		}
		Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
	}
}

async fn stage_end(State(s): State<Arc<AppState>>, body: Bytes) -> StatusCode {
	match (&s.stage, <[u8; 16]>::try_from(&body[..])) {
		(Some(stage), Ok(session)) => {
			stage.end(&session);
			if let Some(gate) = &s.gate {
				gate.end(&session);
			}
			if let Some(signer) = &s.signer {
				signer.end(&session);
			}
			StatusCode::NO_CONTENT
		}
		_ => StatusCode::BAD_REQUEST,
	}
}

async fn receipt(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
	let Some(book) = &s.book else {
		return error(StatusCode::NOT_FOUND, "this process takes no receipts");
	};
	match book.accept(&body, s.signer.as_deref()) {
		Ok(r) => {
			// What the client's sessions here computed is covered as far as this receipt goes.
			if let Some(gate) = &s.gate {
				let tokens = u64::from(r.tokens_in) + u64::from(r.tokens_out);
				gate.credit(&r.client, tokens, r.free);
			}
			Json(json!({ "accepted": true, "nonce": r.nonce })).into_response()
		}
		Err(e) => error(StatusCode::BAD_REQUEST, e),
	}
}

/// `prompt` or `messages`, and the sampling settings both endpoints share.
#[derive(Deserialize)]
struct CompletionBody {
	model: Option<String>,
	prompt: Option<Value>,
	messages: Option<Vec<Message>>,
	max_tokens: Option<usize>,
	/// OpenAI's newer name for `max_tokens`.
	max_completion_tokens: Option<usize>,
	temperature: Option<f32>,
	top_p: Option<f32>,
	/// 0 or -1 (vLLM's spelling): no limit.
	top_k: Option<i64>,
	seed: Option<u64>,
	stop: Option<Value>,
	#[serde(default)]
	stream: bool,
	stream_options: Option<StreamOptions>,
	/// Qwen3's thinking switch, at the top level or in `chat_template_kwargs` (as vLLM takes it).
	enable_thinking: Option<bool>,
	chat_template_kwargs: Option<TemplateArgs>,
	/// Chat: `true` for each token's log-probability; completions: how many alternatives.
	logprobs: Option<Value>,
	/// Chat: alternatives per token (0–20), with `logprobs: true`.
	top_logprobs: Option<usize>,
}

/// Most alternatives a token's logprobs list (OpenAI's chat limit).
const MAX_TOP_LOGPROBS: usize = 20;

/// How many alternatives each token's logprobs list, if asked: chat takes `logprobs: true` and
/// `top_logprobs`, the completions endpoint `logprobs: N` (as OpenAI's two endpoints do).
fn logprobs_asked(chat: bool, body: &CompletionBody) -> Result<Option<usize>, String> {
	let asked = match (chat, &body.logprobs) {
		(true, None | Some(Value::Null) | Some(Value::Bool(false))) => {
			if body.top_logprobs.is_some() {
				return Err("`top_logprobs` needs `logprobs: true`".into());
			}
			None
		}
		(true, Some(Value::Bool(true))) => Some(body.top_logprobs.unwrap_or(0)),
		(true, Some(_)) => return Err("`logprobs` is true or false".into()),
		(false, None | Some(Value::Null)) => None,
		(false, Some(n)) => Some(
			n.as_u64()
				.and_then(|n| usize::try_from(n).ok())
				.ok_or("`logprobs` is the number of alternatives to list per token")?,
		),
	};
	match asked {
		Some(n) if n > MAX_TOP_LOGPROBS => {
			Err(format!("at most {MAX_TOP_LOGPROBS} alternatives per token"))
		}
		other => Ok(other),
	}
}

/// A token as logprobs show it: its text (lossy where it ends inside a character) and bytes.
fn token_text(tokenizer: &TextTokenizer, token: u32) -> (String, &[u8]) {
	let bytes = tokenizer.token_bytes(token);
	(String::from_utf8_lossy(bytes).into_owned(), bytes)
}

/// A generated token (not a special one) with its log-probabilities and where its text starts
/// among the listed tokens' texts (characters).
type ShownLogprobs = (TokenLogprobs, usize);

/// Chat's `logprobs.content` entries.
fn chat_logprobs(tokenizer: &TextTokenizer, all: &[ShownLogprobs]) -> Value {
	let entry = |token: u32, logprob: f32| {
		let (text, bytes) = token_text(tokenizer, token);
		json!({ "token": text, "logprob": logprob, "bytes": bytes })
	};
	let content: Vec<Value> = all
		.iter()
		.map(|(lp, _)| {
			let mut e = entry(lp.token, lp.logprob);
			e["top_logprobs"] = lp.top.iter().map(|(t, l)| entry(*t, *l)).collect();
			e
		})
		.collect();
	json!({ "content": content })
}

/// The completions endpoint's `logprobs` object.
fn completion_logprobs(tokenizer: &TextTokenizer, all: &[ShownLogprobs]) -> Value {
	let (mut tokens, mut logprobs, mut tops, mut offsets) = (vec![], vec![], vec![], vec![]);
	for (lp, offset) in all {
		offsets.push(*offset);
		tokens.push(token_text(tokenizer, lp.token).0);
		logprobs.push(lp.logprob);
		// Keyed by text: of alternatives with the same text (e.g. "\u{fffd}" for partial
		// characters), the likeliest is kept.
		let mut top = serde_json::Map::new();
		for (t, l) in &lp.top {
			top.entry(token_text(tokenizer, *t).0).or_insert(json!(l));
		}
		tops.push(Value::Object(top));
	}
	json!({ "tokens": tokens, "token_logprobs": logprobs, "top_logprobs": tops,
		"text_offset": offsets })
}

#[derive(Deserialize)]
struct StreamOptions {
	#[serde(default)]
	include_usage: bool,
}

#[derive(Deserialize)]
struct TemplateArgs {
	enable_thinking: Option<bool>,
}

#[derive(Deserialize)]
struct Message {
	role: String,
	content: Content,
}

/// A message's content: a string, or an array of parts of which text parts are read.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
	Text(String),
	Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
	#[serde(rename = "type")]
	kind: String,
	text: Option<String>,
}

impl Content {
	/// Text parts joined by newlines (as vLLM flattens them); other parts are refused, as this
	/// model reads only text.
	fn text(&self) -> Result<String, String> {
		match self {
			Content::Text(text) => Ok(text.clone()),
			Content::Parts(parts) => parts
				.iter()
				.map(|p| match (p.kind.as_str(), &p.text) {
					("text", Some(text)) => Ok(text.as_str()),
					(kind, _) => Err(format!("content parts of type {kind:?} are not supported")),
				})
				.collect::<Result<Vec<_>, _>>()
				.map(|texts| texts.join("\n")),
		}
	}
}

/// Generated tokens to text as they stream. Each token stands for bytes (byte-level BPE splits
/// characters); bytes that may begin a stop sequence are held back (OpenAI leaves the stop
/// sequence out of the text), and so are the bytes of an unfinished UTF-8 character. An end
/// token stops generation and is not text.
struct TextStream {
	tokenizer: Arc<TextTokenizer>,
	stops: Vec<Vec<u8>>,
	/// Every byte generated, to find a stop sequence ending across tokens.
	generated: Vec<u8>,
	held: Vec<u8>,
	utf8: Vec<u8>,
	/// Generation ended on a stop sequence.
	stopped: bool,
	/// All text released so far.
	text: String,
}

impl TextStream {
	fn new(tokenizer: Arc<TextTokenizer>, stops: Vec<Vec<u8>>) -> Self {
		Self {
			tokenizer,
			stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
			generated: vec![],
			held: vec![],
			utf8: vec![],
			stopped: false,
			text: String::new(),
		}
	}

	/// The text `token` releases, and whether generation stops at it.
	fn push(&mut self, token: u32) -> (String, bool) {
		if self.tokenizer.end_tokens().contains(&token) {
			return (String::new(), true);
		}
		if self.tokenizer.is_special(token) {
			return (String::new(), false);
		}
		let bytes = self.tokenizer.token_bytes(token);
		let before = self.generated.len();
		self.generated.extend_from_slice(bytes);
		self.held.extend_from_slice(bytes);
		// The earliest stop sequence that ends in this token's bytes: a token may carry a stop
		// and more after it (byte-level BPE merges punctuation with newlines).
		let longest = self.stops.iter().map(Vec::len).max().unwrap_or(0);
		let from = before.saturating_sub(longest);
		let hit = self
			.stops
			.iter()
			.filter_map(|stop| {
				self.generated[from..]
					.windows(stop.len())
					.position(|w| w == stop.as_slice())
					.map(|p| from + p)
					.filter(|p| p + stop.len() > before)
			})
			.min();
		if let Some(at) = hit {
			// Everything from the stop on is dropped; bytes before it that were held are text.
			let released = self.generated.len() - self.held.len();
			self.held.truncate(at.saturating_sub(released));
			self.stopped = true;
			return (String::new(), true);
		}
		let len = self.held.len();
		let keep = (1..=len)
			.rev()
			.find(|n| self.stops.iter().any(|s| s.starts_with(&self.held[len - n..])))
			.unwrap_or(0);
		let released: Vec<u8> = self.held.drain(..len - keep).collect();
		let text = self.decode(released);
		self.text.push_str(&text);
		(text, false)
	}

	/// The rest of the text (what was held back, without the stop sequence).
	fn finish(&mut self) -> String {
		let rest = std::mem::take(&mut self.held);
		let mut text = self.decode(rest);
		text.push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.utf8)));
		self.text.push_str(&text);
		text
	}

	fn decode(&mut self, bytes: Vec<u8>) -> String {
		self.utf8.extend(bytes);
		let mut out = String::new();
		loop {
			match std::str::from_utf8(&self.utf8) {
				Ok(text) => {
					out.push_str(text);
					self.utf8.clear();
					return out;
				}
				Err(e) => {
					let valid = e.valid_up_to();
					out.push_str(
						std::str::from_utf8(&self.utf8[..valid]).expect("valid up to here"),
					);
					match e.error_len() {
						// An unfinished character: wait for its next bytes.
						None => {
							self.utf8.drain(..valid);
							return out;
						}
						Some(bad) => {
							out.push(char::REPLACEMENT_CHARACTER);
							self.utf8.drain(..valid + bad);
						}
					}
				}
			}
		}
	}
}

fn now_secs() -> u64 {
	SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn request_id(prefix: &str) -> String {
	format!("{prefix}-{:016x}", rand::random::<u64>())
}

async fn completions(
	State(s): State<Arc<AppState>>,
	headers: HeaderMap,
	body: Result<Json<CompletionBody>, JsonRejection>,
) -> Response {
	let key = match authorize(&s, &headers) {
		Ok(key) => key,
		Err(refused) => return *refused,
	};
	let body = match body {
		Ok(Json(body)) => body,
		Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
	};
	let prompt = match &body.prompt {
		Some(Value::String(p)) => p.clone(),
		Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
			a[0].as_str().unwrap_or_default().to_string()
		}
		_ => return error(StatusCode::BAD_REQUEST, "`prompt` must be a string"),
	};
	// Tokenizing a long prompt is CPU work: off the async threads.
	let tokenizer = s.tokenizer.clone();
	match tokio::task::spawn_blocking(move || tokenizer.encode(&prompt, true)).await {
		Ok(Ok(tokens)) => complete(s, key, body, tokens, false).await,
		Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
		Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
	}
}

async fn chat_completions(
	State(s): State<Arc<AppState>>,
	headers: HeaderMap,
	body: Result<Json<CompletionBody>, JsonRejection>,
) -> Response {
	let key = match authorize(&s, &headers) {
		Ok(key) => key,
		Err(refused) => return *refused,
	};
	let body = match body {
		Ok(Json(body)) => body,
		Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
	};
	let Some(messages) = &body.messages else {
		return error(StatusCode::BAD_REQUEST, "`messages` is required");
	};
	if messages.is_empty() {
		return error(StatusCode::BAD_REQUEST, "`messages` is empty");
	}
	let turns: Result<Vec<ChatMessage>, String> = messages
		.iter()
		.map(|m| Ok(ChatMessage { role: m.role.clone(), content: m.content.text()? }))
		.collect();
	let turns = match turns {
		Ok(turns) => turns,
		Err(e) => return error(StatusCode::BAD_REQUEST, e),
	};
	let options = ChatOptions {
		add_generation_prompt: true,
		enable_thinking: body
			.enable_thinking
			.or(body.chat_template_kwargs.as_ref().and_then(|k| k.enable_thinking)),
	};
	// Rendering (a registered template, bounded by fuel) and tokenizing: off the async threads.
	let tokenizer = s.tokenizer.clone();
	match tokio::task::spawn_blocking(move || tokenizer.encode_chat(&turns, &options)).await {
		Ok(Ok(tokens)) => complete(s, key, body, tokens, true).await,
		// The conversation is what the template refused (e.g. roles out of order).
		Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
		Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
	}
}

fn stops(value: &Option<Value>) -> Result<Vec<Vec<u8>>, String> {
	match value {
		None | Some(Value::Null) => Ok(Vec::new()),
		Some(Value::String(s)) => Ok(vec![s.as_bytes().to_vec()]),
		Some(Value::Array(items)) if items.len() <= 4 => items
			.iter()
			.map(|v| {
				v.as_str().map(|s| s.as_bytes().to_vec()).ok_or("`stop` entries are strings".into())
			})
			.collect(),
		_ => Err("`stop` is a string or up to 4 strings".into()),
	}
}

async fn complete(
	s: Arc<AppState>,
	key: Option<KeyEntry>,
	body: CompletionBody,
	tokens: Vec<u32>,
	chat: bool,
) -> Response {
	let Some(routes) = s.routes.clone() else {
		return error(
			StatusCode::SERVICE_UNAVAILABLE,
			"this server holds only part of the model; ask a gateway (blyan-worker gateway)",
		);
	};
	let name = model_name(s.version);
	if let Some(model) = &body.model {
		if *model != name {
			return error(
				StatusCode::NOT_FOUND,
				format!("model {model} is not served here; try {name}"),
			);
		}
	}
	if tokens.is_empty() {
		return error(StatusCode::BAD_REQUEST, "the prompt is empty");
	}
	if tokens.len() >= s.max_positions {
		return error(
			StatusCode::BAD_REQUEST,
			format!(
				"the prompt has {} tokens; the context holds {}",
				tokens.len(),
				s.max_positions
			),
		);
	}
	let stop = match stops(&body.stop) {
		Ok(stop) => stop,
		Err(e) => return error(StatusCode::BAD_REQUEST, e),
	};
	let top_p = body.top_p.unwrap_or(1.0);
	if !(top_p > 0.0 && top_p <= 1.0) {
		return error(StatusCode::BAD_REQUEST, "`top_p` must be in (0, 1]");
	}
	if body.max_completion_tokens.or(body.max_tokens) == Some(0) {
		return error(StatusCode::BAD_REQUEST, "`max_tokens` must be at least 1");
	}
	let logprobs = match logprobs_asked(chat, &body) {
		Ok(asked) => asked,
		Err(e) => return error(StatusCode::BAD_REQUEST, e),
	};
	let temperature = body.temperature.unwrap_or(0.0);
	if !(0.0..=2.0).contains(&temperature) {
		return error(StatusCode::BAD_REQUEST, "`temperature` must be between 0 and 2");
	}
	// Chat: what is left of the context unless the client asks for less (OpenAI's chat
	// default); completions: 16 tokens, as OpenAI's legacy endpoint.
	let room = s.max_positions - tokens.len();
	let default_tokens = if chat { room } else { 16 };
	let prompt_tokens = tokens.len();
	let mut max_tokens =
		body.max_completion_tokens.or(body.max_tokens).unwrap_or(default_tokens).min(room);
	// The key's quota holds the prompt and what may be generated until the answer is counted.
	let hold = match (&s.api, &key) {
		(ApiAccess::Keys(keys), Some(key)) => match keys.hold(key, prompt_tokens, max_tokens) {
			Ok(hold) => {
				max_tokens = hold.completion_tokens;
				Some(HeldTokens::new(keys.clone(), hold))
			}
			Err(e) => {
				s.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
				return error_object(
					StatusCode::TOO_MANY_REQUESTS,
					"insufficient_quota",
					"insufficient_quota",
					e,
				);
			}
		},
		_ => None,
	};
	let request = GenerateRequest {
		max_tokens,
		prompt: tokens,
		temperature,
		top_k: body.top_k.map_or(0, |k| usize::try_from(k).unwrap_or(0)),
		top_p,
		seed: body.seed.unwrap_or(0),
		logprobs,
		// Not drawn while the check queue is full: its inputs would be kept for nothing.
		check: s.check_rate > 0.0 && rand::random::<f64>() < s.check_rate && !check_queue_full(&s),
	};
	s.metrics.requests.fetch_add(1, Ordering::Relaxed);
	let id = request_id(if chat { "chatcmpl" } else { "cmpl" });
	let created = now_secs();
	let text_stream = Arc::new(std::sync::Mutex::new(TextStream::new(s.tokenizer.clone(), stop)));
	let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(u32, String, Option<ShownLogprobs>)>();
	let all_logprobs = Arc::new(std::sync::Mutex::new(Vec::new()));
	let task = {
		let (s, texts, kept) = (s.clone(), text_stream.clone(), all_logprobs.clone());
		// Where each listed token's text starts: the text of the tokens listed before it (as
		// vLLM counts), whatever a stop sequence later held back.
		let mut offset = 0;
		tokio::spawn(async move {
			// Released however the task ends; counts the prompt and every token generated (the
			// client had them, whether or not the completion then failed).
			let mut hold = hold;
			let mut generated = 0u64;
			let on_token = |t: u32, lp: Option<TokenLogprobs>| {
				generated += 1;
				let (text, stop) = texts.lock().expect("text lock").push(t);
				// End tokens and other special ones are not text: not listed (as OpenAI).
				let shown = !s.tokenizer.is_special(t) && !s.tokenizer.end_tokens().contains(&t);
				let lp = lp.filter(|_| shown).map(|lp| {
					let start = offset;
					offset += token_text(&s.tokenizer, t).0.chars().count();
					(lp, start)
				});
				if let Some(lp) = &lp {
					kept.lock().expect("logprobs lock").push(lp.clone());
				}
				// The client left (its stream or request dropped): nothing more is generated
				// or paid for.
				tx.send((t, text, lp)).is_err() || stop
			};
			// A session given up on the way is paid for as it ends (its stages keep an ended
			// session for its receipt only a while).
			let on_abandoned = |abandoned: route::AbandonedSession| pay_abandoned(&s, &abandoned);
			let routes_ref = routes.as_ref();
			let mut result =
				route::generate_reporting(routes_ref, s.version, &request, on_token, on_abandoned)
					.await;
			if let Ok(g) = &mut result {
				let records = std::mem::take(&mut g.records);
				if !records.is_empty() {
					match s.check_queue.enter() {
						Some(place) => {
							let (s, routes) = (s.clone(), routes.clone());
							tokio::spawn(async move {
								let _turn = place.turn().await;
								spot_check(&s, routes.as_ref(), records).await
							});
						}
						None => {
							tracing::warn!("too many spot checks running and waiting: one skipped");
							s.metrics.checks_dropped.fetch_add(1, Ordering::Relaxed);
						}
					}
				}
			}
			let receipts = match &result {
				Ok(g) => account(&s, &request, g).await,
				Err(e) => {
					tracing::warn!("completion failed: {e}");
					s.metrics.failed.fetch_add(1, Ordering::Relaxed);
					Vec::new()
				}
			};
			if let Some(hold) = &mut hold {
				hold.used = request.prompt.len() as u64 + generated;
			}
			drop(hold);
			result.map(|g| (g, receipts))
		})
	};
	let usage_of = move |g: &Generation| {
		json!({
			"prompt_tokens": prompt_tokens,
			"completion_tokens": g.tokens.len(),
			"total_tokens": prompt_tokens + g.tokens.len(),
		})
	};
	if body.stream {
		let include_usage = body.stream_options.as_ref().is_some_and(|o| o.include_usage);
		let object = if chat { "chat.completion.chunk" } else { "text_completion" };
		let (id2, name2) = (id.clone(), name.clone());
		let mut first = chat;
		let tokenizer = s.tokenizer.clone();
		let tokens = UnboundedReceiverStream::new(rx).filter_map(move |(t, text, lp)| {
			let chunk = if chat {
				let mut delta = json!({ "content": text });
				if std::mem::take(&mut first) {
					delta["role"] = json!("assistant");
				}
				let logprobs = lp.map_or(Value::Null, |lp| chat_logprobs(&tokenizer, &[lp]));
				let choice = json!({ "index": 0, "delta": delta, "logprobs": logprobs,
					"finish_reason": Value::Null });
				json!({ "id": id2, "object": object, "created": created, "model": name2,
					"choices": [choice], "blyan": { "token": t } })
			} else {
				let logprobs = lp.map_or(Value::Null, |lp| completion_logprobs(&tokenizer, &[lp]));
				let choice = json!({ "index": 0, "text": text, "logprobs": logprobs,
					"finish_reason": Value::Null });
				json!({ "id": id2, "object": object, "created": created, "model": name2,
					"choices": [choice], "blyan": { "token": t } })
			};
			futures::future::ready(Some(Ok::<_, Infallible>(
				Event::default().data(chunk.to_string()),
			)))
		});
		let end = futures::stream::once(async move {
			let mut events = Vec::new();
			match task.await {
				Ok(Ok((g, receipts))) => {
					let rest = text_stream.lock().expect("text lock").finish();
					let choice = if chat {
						let delta =
							if rest.is_empty() { json!({}) } else { json!({ "content": rest }) };
						json!({ "index": 0, "delta": delta, "finish_reason": g.finish_reason })
					} else {
						json!({ "index": 0, "text": rest, "finish_reason": g.finish_reason })
					};
					// Blyan's own field, as in a whole answer: who served it, and what was paid.
					events.push(json!({ "id": id, "object": object, "created": created,
						"model": name, "choices": [choice], "blyan": served_json(&g, &receipts) }));
					// OpenAI's last chunk before [DONE] when asked: no choices, the usage.
					if include_usage {
						events.push(json!({ "id": id, "object": object, "created": created,
							"model": name, "choices": [], "usage": usage_of(&g) }));
					}
				}
				Ok(Err(e)) => events.push(json!({ "error": { "message": e.to_string(),
					"type": "server_error", "param": Value::Null, "code": "server_error" } })),
				Err(e) => events.push(json!({ "error": { "message": e.to_string(),
					"type": "server_error", "param": Value::Null, "code": "server_error" } })),
			};
			let mut events: Vec<Result<Event, Infallible>> =
				events.into_iter().map(|e| Ok(Event::default().data(e.to_string()))).collect();
			events.push(Ok(Event::default().data("[DONE]")));
			futures::stream::iter(events)
		})
		.flatten();
		return Sse::new(tokens.chain(end)).into_response();
	}
	// Held until the answer: if the client leaves, the handler and this receiver are dropped
	// and generation stops at the next token.
	let _client = rx;
	match task.await {
		Ok(Ok((g, receipts))) => {
			let text = {
				let mut texts = text_stream.lock().expect("text lock");
				texts.finish();
				std::mem::take(&mut texts.text)
			};
			let all = std::mem::take(&mut *all_logprobs.lock().expect("logprobs lock"));
			let logprobs = match logprobs {
				None => Value::Null,
				Some(_) if chat => chat_logprobs(&s.tokenizer, &all),
				Some(_) => completion_logprobs(&s.tokenizer, &all),
			};
			let choice = if chat {
				json!({ "index": 0, "message": { "role": "assistant", "content": text },
					"logprobs": logprobs, "finish_reason": g.finish_reason })
			} else {
				json!({ "index": 0, "text": text, "logprobs": logprobs,
					"finish_reason": g.finish_reason })
			};
			Json(json!({
				"id": id,
				"object": if chat { "chat.completion" } else { "text_completion" },
				"created": created,
				"model": name,
				"choices": [choice],
				"usage": usage_of(&g),
				"blyan": served_json(&g, &receipts),
			}))
			.into_response()
		}
		Ok(Err(e @ route::GenerateError::Busy)) => {
			let mut response = error(StatusCode::SERVICE_UNAVAILABLE, e);
			response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
			response
		}
		Ok(Err(e)) => error(StatusCode::BAD_GATEWAY, e),
		Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
	}
}

/// Blyan's part of an answer: the tokens, the route's stages (server, price, endpoint and what
/// the stage signed: every field, so anyone holding it and the chain's genesis hash can check the
/// stage's signature over the transcript of what it answered), the root of those commitments
/// the receipts carry, the receipts this gateway signed for it and every signed commitment.
fn served_json(g: &Generation, receipts: &[Value]) -> Value {
	let route: Vec<Value> = g
		.served_by
		.iter()
		.zip(&g.endpoints)
		.enumerate()
		.map(|(i, ((server, price), endpoint))| {
			// Stage by stage (one server may hold two stages of a route).
			let signed = g.commitments.get(i).and_then(Option::as_ref);
			json!({ "server": server.as_ref().map(|a| a.to_string()),
				"price_per_token": price.to_string(), "endpoint": endpoint,
				"commitment": signed.map(SignedCommitment::to_json) })
		})
		.collect();
	let all: Vec<Value> = g.commitments.iter().flatten().map(SignedCommitment::to_json).collect();
	json!({ "tokens": g.tokens, "reroutes": g.reroutes, "route": route,
		"commitments_root": hex::encode(commitments::route_root(&g.commitments)),
		"receipts": receipts, "commitments": all })
}

/// Flips the lowest bit of the first value: a lying stage of the tests.
fn corrupt(out: &mut Activations) {
	match out {
		Activations::Tokens(t) => {
			if let Some(v) = t.first_mut() {
				*v ^= 1;
			}
		}
		Activations::Hidden { values, .. } | Activations::Logits(values) => {
			if let Some(v) = values.first_mut() {
				*v = f32::from_bits(v.to_bits() ^ 1);
			}
		}
	}
}

/// Spot-checks the recorded hops of a served completion on peers (after the answer was sent),
/// pays the peers for what they replayed, and routes around a stage caught.
async fn spot_check(s: &Arc<AppState>, routes: &dyn RouteSource, records: Vec<route::HopRecord>) {
	let m = &s.metrics;
	for record in records {
		let outcome = checks::spot_check(routes, s.version, &record).await;
		for (peer, positions, signed) in &outcome.replays {
			// A replay is a session of its own at the peer: a one-stage route.
			if let (Some(server), Some(signed)) = (peer.server, signed) {
				let leaves = [crate::chain::commitment_leaf(&signed.commitment)];
				let payment = Payment {
					server,
					price: peer.price_per_token,
					endpoint: &peer.endpoint(),
					tokens_in: *positions,
					tokens_out: 0,
					signed,
					stage: 0,
					leaves: &leaves,
				};
				pay(s, payment);
			}
		}
		match &outcome.verdict {
			Verdict::Unchecked(why) => {
				tracing::debug!("layers {:?} not checked: {why}", record.hop.span);
				m.checks_unchecked.fetch_add(1, Ordering::Relaxed);
				continue;
			}
			Verdict::Agreed => {}
			verdict => {
				m.checks_failed.fetch_add(1, Ordering::Relaxed);
				tracing::warn!(
					"spot check of {} (layers {:?}): {verdict:?}",
					record.hop.endpoint(),
					record.hop.span
				);
			}
		}
		if let Some(caught) = outcome.caught {
			let hop = &caught.hop;
			m.caught.fetch_add(1, Ordering::Relaxed);
			routes.caught(hop);
			let evidence: Vec<Value> =
				caught.signed.iter().map(SignedCommitment::to_json).collect();
			let evidence = Value::from(evidence);
			tracing::warn!(
				"caught {} ({}) answering other bits than layers {:?} give; never routed to again; what it signed: {evidence}",
				hop.endpoint(),
				hop.server.map(|a| a.to_string()).unwrap_or_default(),
				hop.span
			);
			// This coordinator kept every chunk the caught stage answered of its session (the
			// routed stage's, or a lying peer's replay): its lie can be proven on chain.
			match (&s.challenger, caught.hop.server) {
				(Some(challenger), Some(server)) => match challenger.pursue(server, caught) {
					Some(caught) => {
						let (s, challenger) = (s.clone(), challenger.clone());
						tokio::spawn(pursue_case(s, challenger, server, caught));
					}
					None => {
						tracing::info!(
							"{server} is challenged by this gateway already: this catch is kept in \
							 case that challenge is not proven"
						);
						m.challenges_skipped.fetch_add(1, Ordering::Relaxed);
					}
				},
				(Some(_), None) => tracing::warn!("a stage of no account cannot be challenged"),
				(None, _) => {}
			}
		}
		// Counted last: whoever reads it sees the check's consequences too.
		m.checks.fetch_add(1, Ordering::Relaxed);
	}
}

/// Challenges what `caught` signed and sees it through; while the case is not proven, does the
/// same with the latest catch of the same server kept meanwhile ([`Challenger::pursue`]).
pub async fn pursue_case(
	s: Arc<AppState>,
	challenger: Arc<Challenger>,
	server: subxt::utils::AccountId32,
	mut caught: route::HopRecord,
) {
	loop {
		let closed = challenger.challenge(&caught).await;
		let next = challenger.case_closed(&server, &closed);
		report_challenge(&s, &caught.hop.endpoint(), closed);
		match next {
			Some(kept) => caught = kept,
			None => return,
		}
	}
}

/// Logs and counts how a challenge this gateway made of the stage at `endpoint` ended.
pub fn report_challenge(
	s: &AppState,
	endpoint: &str,
	closed: anyhow::Result<crate::chain::blyan::inference::events::ChallengeClosed>,
) {
	match closed {
		Ok(closed) => {
			tracing::warn!(
				challenge = closed.challenge,
				"challenge of {} closed: {:?}; slashed {}, {} of it to this account, {} to the \
				 arbiters",
				closed.server,
				closed.outcome,
				crate::chain::bly(closed.slashed),
				crate::chain::bly(closed.to_challenger),
				crate::chain::bly(closed.to_arbiters)
			);
			if closed.outcome == ChallengeOutcome::FraudProven {
				s.metrics.frauds_proven.fetch_add(1, Ordering::Relaxed);
			}
			// Counted last: whoever reads it finds the rest logged and counted.
			s.metrics.challenges_closed.fetch_add(1, Ordering::Relaxed);
		}
		Err(e) => {
			tracing::warn!("challenging {endpoint}: {e:#}");
			s.metrics.challenges_failed.fetch_add(1, Ordering::Relaxed);
		}
	}
}

/// What one receipt pays for: the request's tokens, at one stage of its route, whose last signed
/// commitment is `signed`, leaf `stage` of the route's `leaves`.
struct Payment<'a> {
	server: subxt::utils::AccountId32,
	price: u128,
	endpoint: &'a str,
	tokens_in: u32,
	tokens_out: u32,
	signed: &'a SignedCommitment,
	stage: u32,
	leaves: &'a [crate::chain::H256],
}

/// Signs a receipt for a [`Payment`] (the root of the route's commitments in it) and posts it,
/// with the proof that the stage's own commitment is in that root, to the stage's
/// `/v1/receipts`, if this process is a paying gateway; what it signed, as the answer shows it.
fn pay(s: &Arc<AppState>, p: Payment<'_>) -> Option<Value> {
	let payer = s.payer.clone()?;
	let receipt = Receipt {
		client: *payer.chain.account(),
		server: p.server,
		version: s.version,
		nonce: payer.nonces.next(),
		tokens_in: p.tokens_in,
		tokens_out: p.tokens_out,
		price_per_token: if payer.free { 0 } else { p.price },
		free: payer.free,
		commitments: crate::chain::commitments_root(p.leaves),
	};
	let shown = json!({
		"client": receipt.client.to_string(), "server": receipt.server.to_string(),
		"version": receipt.version, "nonce": receipt.nonce, "tokens_in": receipt.tokens_in,
		"tokens_out": receipt.tokens_out, "price_per_token": receipt.price_per_token.to_string(),
		"free": receipt.free, "commitments": hex::encode(receipt.commitments),
	});
	let posted = PostedReceipt::new(payer.chain.sign_receipt(receipt), p.signed, p.stage, p.leaves);
	let (http, url) = (payer.http.clone(), format!("{}/v1/receipts", p.endpoint));
	s.metrics.receipts_sent.fetch_add(1, Ordering::Relaxed);
	tokio::spawn(async move {
		let body = codec::Encode::encode(&posted);
		match http.post(&url).body(body).send().await {
			Ok(r) if r.status().is_success() => {}
			Ok(r) => {
				tracing::warn!("{url} refused a receipt: {}", r.text().await.unwrap_or_default())
			}
			Err(e) => tracing::warn!("{url}: {e}"),
		}
	});
	Some(shown)
}

/// Whether a completion drawn for a check now would find the check queue full (it is then
/// counted as dropped, and not recorded).
fn check_queue_full(s: &AppState) -> bool {
	let full = s.check_queue.is_full();
	if full {
		tracing::debug!("too many spot checks running and waiting: a completion goes unchecked");
		s.metrics.checks_dropped.fetch_add(1, Ordering::Relaxed);
	}
	full
}

/// Pays the stages of a session given up mid-generation (rerouted, or a stage at capacity) for
/// what each answered of it, if this process is a paying gateway: the request goes on elsewhere,
/// but they computed it.
fn pay_abandoned(s: &Arc<AppState>, abandoned: &route::AbandonedSession) {
	let leaves = commitments::route_leaves(&abandoned.commitments());
	for p in abandoned.payable() {
		let payment = Payment {
			server: p.server,
			price: p.hop.price_per_token,
			endpoint: &p.hop.endpoint(),
			tokens_in: p.tokens_in,
			tokens_out: p.tokens_out,
			signed: p.signed,
			stage: p.stage as u32,
			leaves: &leaves,
		};
		if pay(s, payment).is_some() {
			s.metrics.abandoned_receipts.fetch_add(1, Ordering::Relaxed);
		}
	}
}

/// Counts a finished completion, and pays for it if this process is a paying gateway: the
/// receipts it signed.
async fn account(s: &Arc<AppState>, request: &GenerateRequest, g: &Generation) -> Vec<Value> {
	let m = &s.metrics;
	m.prompt_tokens.fetch_add(request.prompt.len() as u64, Ordering::Relaxed);
	m.completion_tokens.fetch_add(g.tokens.len() as u64, Ordering::Relaxed);
	m.first_token_micros.fetch_add(g.first_token.as_micros() as u64, Ordering::Relaxed);
	m.reroutes.fetch_add(g.reroutes as u64, Ordering::Relaxed);
	let (tokens_in, tokens_out) = (request.prompt.len() as u32, g.tokens.len() as u32);
	let leaves = commitments::route_leaves(&g.commitments);
	g.served_by
		.iter()
		.zip(&g.endpoints)
		.enumerate()
		.filter_map(|(stage, ((server, price), endpoint))| {
			// A stage of a known server signed its answers (else it was routed around).
			let signed = g.commitments.get(stage)?.as_ref()?;
			let payment = Payment {
				server: (*server)?,
				price: *price,
				endpoint,
				tokens_in,
				tokens_out,
				signed,
				stage: stage as u32,
				leaves: &leaves,
			};
			pay(s, payment)
		})
		.collect()
}

#[cfg(test)]
mod tests {
	use super::*;

	fn run(stops: &[&str], bytes: &[u8]) -> (Vec<String>, String, bool) {
		let tokenizer = Arc::new(TextTokenizer::Bytes);
		let mut t =
			TextStream::new(tokenizer, stops.iter().map(|s| s.as_bytes().to_vec()).collect());
		let mut pieces = Vec::new();
		let mut stopped = false;
		for b in bytes {
			let (text, stop) = t.push(u32::from(*b));
			pieces.push(text);
			if stop {
				stopped = true;
				break;
			}
		}
		let rest = t.finish();
		assert_eq!(t.text, pieces.concat() + &rest, "the whole text is what was released");
		(pieces, rest, stopped)
	}

	#[test]
	fn the_stop_sequence_is_held_back_and_left_out() {
		let (pieces, rest, stopped) = run(&["\n\n"], b"ab\n\ncd");
		assert!(stopped);
		assert_eq!(pieces, ["a", "b", "", ""]);
		assert_eq!(rest, "");
		// A lone newline was only the start of a possible stop: released at the end.
		let (pieces, rest, stopped) = run(&["\n\n"], b"ab\nc");
		assert!(!stopped);
		assert_eq!(pieces.concat() + &rest, "ab\nc");
		assert_eq!(pieces[2], "", "held while it could begin the stop");
	}

	#[test]
	fn a_stop_sequence_inside_a_token_ends_the_text_there() {
		let tokenizer = Arc::new(qwen_like());
		let mut t = TextStream::new(tokenizer, vec![b"</a>".to_vec()]);
		// Tokens "x</" and "a>\nmore": the stop ends inside the second, followed by more bytes.
		assert_eq!(t.push(0), ("x".to_string(), false));
		assert_eq!(t.push(1), (String::new(), true));
		assert_eq!(t.finish(), "");
		assert_eq!(t.text, "x");
	}

	/// Two tokens, as a byte-level vocabulary would hold them.
	fn qwen_like() -> TextTokenizer {
		let json = json!({
			"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
			"normalizer": null, "pre_tokenizer": null, "post_processor": null,
			"decoder": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false },
			"model": { "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
				"end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
				"vocab": { "x</": 0, "a>Ċmore": 1 }, "merges": [] }
		});
		let t = crate::ml::tokenizer::HfTokenizer::from_bytes(json.to_string().as_bytes(), b"{}")
			.unwrap();
		TextTokenizer::Hf(Box::new(t))
	}

	#[test]
	fn utf8_characters_split_across_tokens_come_out_whole() {
		let text = "é→";
		let (pieces, rest, _) = run(&[], text.as_bytes());
		assert_eq!(pieces.concat() + &rest, text);
		assert_eq!(pieces[0], "", "the first byte of é alone is not text");
		// Invalid bytes become replacement characters; a dangling start byte is flushed.
		let (pieces, rest, _) = run(&[], &[b'a', 0xff, b'b', 0xc3]);
		assert_eq!(pieces.concat() + &rest, "a\u{FFFD}b\u{FFFD}");
	}

	#[test]
	fn error_objects_say_what_the_status_says() {
		for (status, kind, code) in [
			(StatusCode::BAD_REQUEST, "invalid_request_error", "invalid_request"),
			(StatusCode::NOT_FOUND, "invalid_request_error", "model_not_found"),
			(StatusCode::SERVICE_UNAVAILABLE, "server_error", "overloaded"),
			(StatusCode::BAD_GATEWAY, "server_error", "server_error"),
		] {
			let response = error(status, "x");
			assert_eq!(response.status(), status);
			let body =
				futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 16))
					.unwrap();
			let v: Value = serde_json::from_slice(&body).unwrap();
			assert_eq!(
				(v["error"]["type"].as_str(), v["error"]["code"].as_str()),
				(Some(kind), Some(code))
			);
		}
	}

	#[test]
	fn content_is_a_string_or_text_parts() {
		let m: Message = serde_json::from_value(json!({ "role": "user", "content": [
			{ "type": "text", "text": "a" }, { "type": "text", "text": "b" } ] }))
		.unwrap();
		assert_eq!(m.content.text().unwrap(), "a\nb");
		let m: Message = serde_json::from_value(json!({ "role": "user", "content": [
			{ "type": "image_url", "image_url": { "url": "x" } } ] }))
		.unwrap();
		assert!(m.content.text().is_err());
	}
}
