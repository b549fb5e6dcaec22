//! The HTTP face of a server or gateway: the OpenAI-compatible API (`/v1/models`,
//! `/v1/completions`, `/v1/chat/completions`, both with `stream`), the stage protocol
//! (`/v1/stage/forward`, `/v1/stage/end`) when this process holds layers, `/v1/receipts` when it
//! is paid, and `/health` and `/metrics` (Prometheus text).

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
	http::StatusCode,
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
	chain::{Chain, Receipt},
	ml::infer::StageError,
};

use super::{
	protocol,
	receipts::{NonceClock, ReceiptBook},
	route::{self, GenerateRequest, Generation, RouteSource},
	stage::LocalStage,
};

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
	/// Longest context (prompt + completion).
	pub max_positions: usize,
	pub metrics: Metrics,
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
		.route("/v1/completions", post(completions).layer(small))
		.route("/v1/chat/completions", post(chat_completions).layer(small))
		.route("/v1/stage/forward", post(stage_forward).layer(DefaultBodyLimit::max(chunk)))
		.route("/v1/stage/end", post(stage_end).layer(DefaultBodyLimit::max(64)))
		.route("/v1/receipts", post(receipt).layer(small))
		.with_state(state)
}

fn error(status: StatusCode, message: impl ToString) -> Response {
	(
		status,
		Json(
			json!({ "error": { "message": message.to_string(), "type": "invalid_request_error" } }),
		),
	)
		.into_response()
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
	}
	if let Some(book) = &s.book {
		let b = book.stats();
		metric("blyan_receipts_pending", "gauge", "Receipts not yet settled.", b.pending as f64);
		metric("blyan_receipts_settled_total", "counter", "Receipts settled.", b.settled as f64);
		metric("blyan_receipts_refused_total", "counter", "Receipts refused.", b.refused as f64);
	}
	([("content-type", "text/plain; version=0.0.4")], out)
}

async fn models(State(s): State<Arc<AppState>>) -> Json<Value> {
	Json(json!({
		"object": "list",
		"data": [{ "id": model_name(s.version), "object": "model", "created": 0, "owned_by": "blyan" }],
	}))
}

async fn stage_forward(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
	let Some(stage) = s.stage.clone() else {
		return error(StatusCode::NOT_FOUND, "this process holds no layers");
	};
	let request = match protocol::decode_request(&body) {
		Ok(r) => r,
		Err(e) => return error(StatusCode::BAD_REQUEST, e),
	};
	let position = request.position as usize;
	let result = tokio::task::spawn_blocking(move || {
		stage.forward(request.session, position, request.input)
	})
	.await;
	match result {
		Ok(Ok(out)) => {
			([("content-type", "application/octet-stream")], protocol::encode_activations(&out))
				.into_response()
		}
		Ok(Err(e @ StageError::Position { .. })) => error(StatusCode::CONFLICT, e),
		// 429: at capacity, try later or elsewhere; 503: this stage is broken, route around it.
		Ok(Err(e @ StageError::Busy)) => error(StatusCode::TOO_MANY_REQUESTS, e),
		Ok(Err(e @ StageError::Stopped)) => error(StatusCode::SERVICE_UNAVAILABLE, e),
		Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
		Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
	}
}

async fn stage_end(State(s): State<Arc<AppState>>, body: Bytes) -> StatusCode {
	match (&s.stage, <[u8; 16]>::try_from(&body[..])) {
		(Some(stage), Ok(session)) => {
			stage.end(&session);
			StatusCode::NO_CONTENT
		}
		_ => StatusCode::BAD_REQUEST,
	}
}

async fn receipt(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
	let Some(book) = &s.book else {
		return error(StatusCode::NOT_FOUND, "this process takes no receipts");
	};
	match book.accept(&body) {
		Ok(r) => Json(json!({ "accepted": true, "nonce": r.nonce })).into_response(),
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
	temperature: Option<f32>,
	seed: Option<u64>,
	stop: Option<Value>,
	#[serde(default)]
	stream: bool,
}

#[derive(Deserialize)]
struct Message {
	role: String,
	content: String,
}

/// The chat template of Blyan's byte-level models: one `<|role|>` line per message, then the
/// assistant's turn.
pub fn chat_prompt(messages: &[(String, String)]) -> String {
	let mut prompt = String::new();
	for (role, content) in messages {
		prompt.push_str(&format!("<|{role}|>\n{content}\n"));
	}
	prompt.push_str("<|assistant|>\n");
	prompt
}

/// Generated bytes (tokens are bytes) to text as they stream: bytes that may begin a stop
/// sequence are held back (OpenAI leaves the stop sequence out of the text), and so are the bytes
/// of an unfinished UTF-8 character.
struct TextStream {
	stops: Vec<Vec<u8>>,
	held: Vec<u8>,
	utf8: Vec<u8>,
}

impl TextStream {
	fn new(stops: Vec<Vec<u8>>) -> Self {
		Self {
			stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
			held: vec![],
			utf8: vec![],
		}
	}

	fn push(&mut self, byte: u8) -> String {
		self.held.push(byte);
		let len = self.held.len();
		let keep = (1..=len)
			.rev()
			.find(|n| self.stops.iter().any(|s| s.starts_with(&self.held[len - n..])))
			.unwrap_or(0);
		let released: Vec<u8> = self.held.drain(..len - keep).collect();
		self.decode(released)
	}

	/// The rest of the text, without the stop sequence if generation stopped on one.
	fn finish(&mut self, stopped: bool) -> String {
		let mut rest = std::mem::take(&mut self.held);
		if stopped {
			if let Some(stop) =
				self.stops.iter().filter(|s| rest.ends_with(s)).max_by_key(|s| s.len())
			{
				rest.truncate(rest.len() - stop.len());
			}
		}
		let mut text = self.decode(rest);
		text.push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.utf8)));
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
	body: Result<Json<CompletionBody>, JsonRejection>,
) -> Response {
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
	complete(s, body, prompt, false).await
}

async fn chat_completions(
	State(s): State<Arc<AppState>>,
	body: Result<Json<CompletionBody>, JsonRejection>,
) -> Response {
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
	let turns: Vec<(String, String)> =
		messages.iter().map(|m| (m.role.clone(), m.content.clone())).collect();
	complete(s, body, chat_prompt(&turns), true).await
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

async fn complete(s: Arc<AppState>, body: CompletionBody, prompt: String, chat: bool) -> Response {
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
	let tokens: Vec<u32> = prompt.bytes().map(u32::from).collect();
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
	let room = s.max_positions - tokens.len();
	let request = GenerateRequest {
		max_tokens: body.max_tokens.unwrap_or(16).min(room),
		prompt: tokens,
		temperature: body.temperature.unwrap_or(0.0),
		seed: body.seed.unwrap_or(0),
		stop: stop.clone(),
	};
	s.metrics.requests.fetch_add(1, Ordering::Relaxed);
	let id = request_id(if chat { "chatcmpl" } else { "cmpl" });
	let created = now_secs();
	let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
	let task = {
		let s = s.clone();
		tokio::spawn(async move {
			let result = route::generate(routes.as_ref(), s.version, &request, |t| {
				let _ = tx.send(t);
			})
			.await;
			match &result {
				Ok(g) => account(&s, &request, g).await,
				Err(e) => {
					tracing::warn!("completion failed: {e}");
					s.metrics.failed.fetch_add(1, Ordering::Relaxed);
				}
			}
			result.map(|g| (request.prompt.len(), g))
		})
	};
	if body.stream {
		let object = if chat { "chat.completion.chunk" } else { "text_completion" };
		let text_stream = Arc::new(std::sync::Mutex::new(TextStream::new(stop)));
		let (id2, name2, texts) = (id.clone(), name.clone(), text_stream.clone());
		let mut first = chat;
		let tokens = UnboundedReceiverStream::new(rx).filter_map(move |t| {
			let text = texts.lock().expect("text lock").push(t.min(255) as u8);
			let chunk = if chat {
				let mut delta = json!({ "content": text });
				if std::mem::take(&mut first) {
					delta["role"] = json!("assistant");
				}
				json!({ "id": id2, "object": object, "created": created, "model": name2,
					"choices": [{ "index": 0, "delta": delta, "finish_reason": Value::Null }],
					"blyan": { "token": t } })
			} else {
				json!({ "id": id2, "object": object, "created": created, "model": name2,
					"choices": [{ "index": 0, "text": text, "finish_reason": Value::Null }],
					"blyan": { "token": t } })
			};
			futures::future::ready(Some(Ok::<_, Infallible>(
				Event::default().data(chunk.to_string()),
			)))
		});
		let end = futures::stream::once(async move {
			let last = match task.await {
				Ok(Ok((_, g))) => {
					let rest =
						text_stream.lock().expect("text lock").finish(g.finish_reason == "stop");
					let choice = if chat {
						let delta =
							if rest.is_empty() { json!({}) } else { json!({ "content": rest }) };
						json!({ "index": 0, "delta": delta, "finish_reason": g.finish_reason })
					} else {
						json!({ "index": 0, "text": rest, "finish_reason": g.finish_reason })
					};
					json!({ "id": id, "object": object, "created": created, "model": name, "choices": [choice] })
				}
				Ok(Err(e)) => json!({ "error": { "message": e.to_string() } }),
				Err(e) => json!({ "error": { "message": e.to_string() } }),
			};
			futures::stream::iter(vec![
				Ok::<_, Infallible>(Event::default().data(last.to_string())),
				Ok(Event::default().data("[DONE]")),
			])
		})
		.flatten();
		return Sse::new(tokens.chain(end)).into_response();
	}
	drop(rx);
	match task.await {
		Ok(Ok((prompt_tokens, g))) => {
			let mut texts = TextStream::new(stop);
			let mut text: String =
				g.tokens.iter().map(|t| texts.push((*t).min(255) as u8)).collect();
			text.push_str(&texts.finish(g.finish_reason == "stop"));
			let usage = json!({
				"prompt_tokens": prompt_tokens,
				"completion_tokens": g.tokens.len(),
				"total_tokens": prompt_tokens + g.tokens.len(),
			});
			let choice = if chat {
				json!({ "index": 0, "message": { "role": "assistant", "content": text },
					"finish_reason": g.finish_reason })
			} else {
				json!({ "index": 0, "text": text, "logprobs": Value::Null,
					"finish_reason": g.finish_reason })
			};
			Json(json!({
				"id": id,
				"object": if chat { "chat.completion" } else { "text_completion" },
				"created": created,
				"model": name,
				"choices": [choice],
				"usage": usage,
				"blyan": { "tokens": g.tokens, "reroutes": g.reroutes },
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

/// Counts a finished completion, and pays for it if this process is a paying gateway.
async fn account(s: &Arc<AppState>, request: &GenerateRequest, g: &Generation) {
	let m = &s.metrics;
	m.prompt_tokens.fetch_add(request.prompt.len() as u64, Ordering::Relaxed);
	m.completion_tokens.fetch_add(g.tokens.len() as u64, Ordering::Relaxed);
	m.first_token_micros.fetch_add(g.first_token.as_micros() as u64, Ordering::Relaxed);
	m.reroutes.fetch_add(g.reroutes as u64, Ordering::Relaxed);
	let Some(payer) = s.payer.clone() else { return };
	for ((server, price), endpoint) in g.served_by.iter().zip(&g.endpoints) {
		let Some(server) = server else { continue };
		let receipt = Receipt {
			client: *payer.chain.account(),
			server: *server,
			version: s.version,
			nonce: payer.nonces.next(),
			tokens_in: request.prompt.len() as u32,
			tokens_out: g.tokens.len() as u32,
			price_per_token: if payer.free { 0 } else { *price },
			free: payer.free,
		};
		let signed = payer.chain.sign_receipt(receipt);
		let (http, url) = (payer.http.clone(), format!("{endpoint}/v1/receipts"));
		m.receipts_sent.fetch_add(1, Ordering::Relaxed);
		tokio::spawn(async move {
			let body = codec::Encode::encode(&signed);
			match http.post(&url).body(body).send().await {
				Ok(r) if r.status().is_success() => {}
				Ok(r) => tracing::warn!(
					"{url} refused a receipt: {}",
					r.text().await.unwrap_or_default()
				),
				Err(e) => tracing::warn!("{url}: {e}"),
			}
		});
	}
}

#[cfg(test)]
mod tests {
	use super::TextStream;

	fn run(stops: &[&str], bytes: &[u8], stopped: bool) -> (Vec<String>, String) {
		let mut t = TextStream::new(stops.iter().map(|s| s.as_bytes().to_vec()).collect());
		let pieces: Vec<String> = bytes.iter().map(|b| t.push(*b)).collect();
		let rest = t.finish(stopped);
		(pieces, rest)
	}

	#[test]
	fn the_stop_sequence_is_held_back_and_left_out() {
		let (pieces, rest) = run(&["\n\n"], b"ab\n\n", true);
		assert_eq!(pieces, ["a", "b", "", ""]);
		assert_eq!(rest, "");
		// A lone newline was only the start of a possible stop: released at the end.
		let (pieces, rest) = run(&["\n\n"], b"ab\nc", false);
		assert_eq!(pieces.concat() + &rest, "ab\nc");
		assert_eq!(pieces[2], "", "held while it could begin the stop");
	}

	#[test]
	fn utf8_characters_split_across_tokens_come_out_whole() {
		let text = "é→";
		let (pieces, rest) = run(&[], text.as_bytes(), false);
		assert_eq!(pieces.concat() + &rest, text);
		assert_eq!(pieces[0], "", "the first byte of é alone is not text");
		// Invalid bytes become replacement characters; a dangling start byte is flushed.
		let (pieces, rest) = run(&[], &[b'a', 0xff, b'b', 0xc3], false);
		assert_eq!(pieces.concat() + &rest, "a\u{FFFD}b\u{FFFD}");
	}
}
