//! Qwen3's real tokenizer against Hugging Face `transformers`: the fixture
//! (`tests/fixtures/qwen3_tokenizer.json`, written by `scripts/fixtures/qwen3-tokenizer.py`) holds
//! what `transformers` made of the same files: token ids, decoded text, rendered chat prompts.

use std::path::PathBuf;

mod common;

use blyan_ml::tokenizer::{ChatMessage, ChatOptions, HfTokenizer, TextTokenizer, TokenizerError};
use common::{files, qwen3};
use serde_json::{json, Value};

fn fixture() -> Value {
	let path =
		PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen3_tokenizer.json");
	serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
	v.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

fn messages(v: &Value) -> Vec<ChatMessage> {
	serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn token_ids_and_decoding_match_transformers() {
	let t = qwen3();
	let f = fixture();
	assert_eq!(t.vocab_size(), f["vocab_size"].as_u64().unwrap() as usize);
	assert_eq!(t.end_tokens()[0], f["eos_token_id"].as_u64().unwrap() as u32);
	for case in f["texts"].as_array().unwrap() {
		let text = case["text"].as_str().unwrap();
		let want = ids(&case["ids"]);
		assert_eq!(t.encode(text, true).unwrap(), want, "ids of {text:?}");
		assert_eq!(t.decode(&want), case["decoded"].as_str().unwrap(), "decoding {text:?}");
		// Token by token (as a stream is made), the bytes are the text's: characters split
		// across tokens come out whole once their last byte arrives.
		let bytes: Vec<u8> = want.iter().flat_map(|id| t.token_bytes(*id).to_vec()).collect();
		assert_eq!(bytes, text.as_bytes(), "bytes of {text:?}");
	}
}

#[test]
fn chat_prompts_render_as_transformers_renders_them() {
	let t = qwen3();
	for case in fixture()["chats"].as_array().unwrap() {
		let options = ChatOptions {
			add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap(),
			enable_thinking: case.get("enable_thinking").and_then(Value::as_bool),
		};
		let conversation = messages(&case["messages"]);
		let prompt = t.render_chat(&conversation, &options).unwrap();
		assert_eq!(prompt, case["prompt"].as_str().unwrap());
		assert_eq!(t.encode_chat(&conversation, &options).unwrap(), ids(&case["ids"]));
	}
}

#[test]
fn bad_tokenizer_files_are_refused_with_the_reason() {
	let (json, config) = files();
	let load = |json: &[u8], config: &[u8]| HfTokenizer::from_bytes(json, config).err();
	assert!(matches!(load(b"{not json", &config), Some(TokenizerError::Tokenizer(_))));
	assert!(matches!(load(&json, b"[1, 2"), Some(TokenizerError::Config(_))));
	// Hostile or unsupported tokenizer.json: an id far beyond any vocabulary, a decoder that is
	// not byte-level.
	let mut tok: Value = serde_json::from_slice(&json).unwrap();
	tok["added_tokens"][0]["id"] = json!(4_000_000_000u32);
	let huge = serde_json::to_vec(&tok).unwrap();
	// `tokenizers` numbers added tokens itself: the table stays the vocabulary's size (the bound
	// in `from_bytes` is for what it does accept).
	let t = HfTokenizer::from_bytes(&huge, &config).unwrap();
	assert!(t.vocab_size() <= 151_669, "{}", t.vocab_size());
	let mut tok: Value = serde_json::from_slice(&json).unwrap();
	tok["decoder"] = json!({ "type": "Fuse" });
	let fused = serde_json::to_vec(&tok).unwrap();
	assert!(
		matches!(load(&fused, &config), Some(TokenizerError::Tokenizer(e)) if e.contains("byte-level"))
	);
	// BPE dropout: tokens would differ from one machine (and one call) to the next.
	let mut tok: Value = serde_json::from_slice(&json).unwrap();
	tok["model"]["dropout"] = json!(0.1);
	let random = serde_json::to_vec(&tok).unwrap();
	assert!(
		matches!(load(&random, &config), Some(TokenizerError::Tokenizer(e)) if e.contains("dropout"))
	);
	let mut cfg: serde_json::Map<String, Value> = serde_json::from_slice(&config).unwrap();
	// An end-of-sequence token the vocabulary does not have.
	let mut bad = cfg.clone();
	bad.insert("eos_token".into(), "<|no such token|>".into());
	let bad = serde_json::to_vec(&bad).unwrap();
	assert!(matches!(load(&json, &bad), Some(TokenizerError::Config(_))));
	// A template that does not parse is refused when loaded, not when a user first chats.
	let mut bad = cfg.clone();
	bad.insert("chat_template".into(), "{% for m in messages %}{{ m.content }".into());
	let bad = serde_json::to_vec(&bad).unwrap();
	assert!(matches!(load(&json, &bad), Some(TokenizerError::Template(_))));
	// A template that refuses a conversation says why.
	cfg.insert(
		"chat_template".into(),
		"{% if messages[0].role != 'user' %}{{ raise_exception('first turn must be the user') }}{% endif %}ok".into(),
	);
	let t = HfTokenizer::from_bytes(&json, &serde_json::to_vec(&cfg).unwrap()).unwrap();
	let t = TextTokenizer::Hf(Box::new(t));
	let system = [ChatMessage { role: "system".into(), content: "x".into() }];
	match t.render_chat(&system, &ChatOptions::default()) {
		Err(TokenizerError::Template(e)) => {
			assert!(e.contains("first turn must be the user"), "{e}")
		}
		other => panic!("{other:?}"),
	}
	// No template at all.
	cfg.remove("chat_template");
	let t = HfTokenizer::from_bytes(&json, &serde_json::to_vec(&cfg).unwrap()).unwrap();
	let t = TextTokenizer::Hf(Box::new(t));
	assert_eq!(
		t.render_chat(&system, &ChatOptions::default()),
		Err(TokenizerError::NoChatTemplate)
	);
}

#[test]
fn a_vocabulary_larger_than_the_embedding_is_refused() {
	let (json, config) = files();
	let t = HfTokenizer::from_bytes(&json, &config).unwrap();
	// Qwen3-0.6B's embedding has 151 936 rows for 151 669 tokens.
	assert_eq!(t.check_vocabulary(151_936), Ok(()));
	assert_eq!(
		t.check_vocabulary(151_000),
		Err(TokenizerError::VocabularyMismatch { tokenizer: 151_669, embedding: 151_000 })
	);
}

/// A checkpoint whose chat template sits beside its config (`chat_template.jinja`, as recent
/// transformers save it) registers it inside `tokenizer_config.json`.
#[test]
fn a_chat_template_file_beside_the_config_is_taken_in() {
	let (json, config) = files();
	let mut cfg: serde_json::Map<String, Value> = serde_json::from_slice(&config).unwrap();
	cfg.remove("chat_template");
	let dir = tempfile::tempdir().unwrap();
	std::fs::write(dir.path().join("tokenizer.json"), &json).unwrap();
	std::fs::write(dir.path().join("tokenizer_config.json"), serde_json::to_vec(&cfg).unwrap())
		.unwrap();
	let template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
	std::fs::write(dir.path().join("chat_template.jinja"), template).unwrap();
	let files = blyan_ml::hf::load_tokenizer_files(dir.path(), 151_936).unwrap().unwrap();
	let registered: Value = serde_json::from_slice(&files.tokenizer_config).unwrap();
	assert_eq!(registered["chat_template"], template);
	let t = TextTokenizer::Hf(Box::new(files.tokenizer));
	let hi = [ChatMessage { role: "user".into(), content: "hi".into() }];
	assert_eq!(t.render_chat(&hi, &ChatOptions::default()).unwrap(), "<user>hi");
}
