//! A Qwen3-architecture model at Qwen3's real vocabulary and tokenizer against Hugging Face
//! `transformers` (PyTorch eager, float32): `tests/fixtures/qwen3_parity.json`, written by
//! `scripts/fixtures/qwen3-parity.py`, holds its prompt ids, logits and greedy continuations
//! for weights both sides compute from a formula ([`hf::reference_layers`]). The checkpoint
//! goes through Blyan's own import (`config.json` + safetensors, as `model-init --hf-dir`).

mod common;

use std::path::PathBuf;

use blyan_ml::{
	hf::{self, load_checkpoint, save_checkpoint},
	infer::{Activations, StageModel},
	model::{ModelConfig, Transformer},
	tokenizer::{ChatMessage, ChatOptions},
	weights::{self, LayerTensors},
	CpuBackend,
};
use burn::tensor::{Int, Tensor, TensorData};
use common::qwen3;
use serde_json::Value;

fn fixture() -> Value {
	let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen3_parity.json");
	serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
	v.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

/// The fixture's checkpoint written by Blyan and read back through its import.
fn checkpoint(f: &Value) -> (ModelConfig, Vec<LayerTensors>) {
	let c = &f["config"];
	let config = hf::parse_config(c.to_string().as_bytes()).unwrap();
	let dir = tempfile::tempdir().unwrap();
	save_checkpoint(dir.path(), &config, &hf::reference_layers(&config), 2, false, true).unwrap();
	// What Blyan writes is the config the reference loaded.
	let written: Value =
		serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
	assert_eq!(numbers_as_f64(&written), numbers_as_f64(c), "config.json");
	let (loaded, layers) = load_checkpoint(dir.path()).unwrap();
	assert_eq!(loaded, config);
	(loaded, layers)
}

/// `v` with every number as the `f64` it stands for: `1e-6` and `1e-06` are one value (with
/// serde_json's `arbitrary_precision`, which the workspace enables, they compare unequal).
fn numbers_as_f64(v: &Value) -> Value {
	match v {
		Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
		Value::Array(a) => Value::Array(a.iter().map(numbers_as_f64).collect()),
		Value::Object(o) => {
			Value::Object(o.iter().map(|(k, v)| (k.clone(), numbers_as_f64(v))).collect())
		}
		other => other.clone(),
	}
}

fn argmax(logits: &[f32]) -> u32 {
	let mut best = 0;
	for (i, v) in logits.iter().enumerate() {
		if *v > logits[best] {
			best = i;
		}
	}
	best as u32
}

/// Greedy decoding through the serving path (stages with KV caches): the whole model, or the
/// layers split across `split` stages, hidden states handed from one to the next.
fn greedy(
	config: &ModelConfig,
	layers: &[LayerTensors],
	bounds: &[usize],
	prompt: &[u32],
	new: usize,
) -> Vec<u32> {
	let device = Default::default();
	let stages: Vec<StageModel<CpuBackend>> = bounds
		.windows(2)
		.map(|w| StageModel::new(config, w[0], &layers[w[0]..w[1]], &device).unwrap())
		.collect();
	let mut caches: Vec<_> = stages.iter().map(StageModel::new_cache).collect();
	let (mut out, mut input, mut position) = (Vec::new(), prompt.to_vec(), 0);
	while out.len() < new {
		let mut activations = Activations::Tokens(input.clone());
		for (stage, cache) in stages.iter().zip(&mut caches) {
			activations = stage.forward(cache, position, activations).unwrap();
		}
		let Activations::Logits(logits) = activations else {
			panic!("the last stage gives logits")
		};
		position += input.len();
		let next = argmax(&logits);
		out.push(next);
		input = vec![next];
	}
	out
}

#[test]
fn prompt_ids_logits_and_greedy_tokens_match_transformers() {
	let f = fixture();
	let t = qwen3();
	let (config, layers) = checkpoint(&f);
	let device = Default::default();
	let model = weights::import_layers::<CpuBackend>(&config, &layers, &device).unwrap();
	let vocab = config.vocab_size;
	let mut worst = 0f32;
	for case in f["texts"].as_array().unwrap() {
		let text = case["text"].as_str().unwrap();
		let prompt = ids(&case["ids"]);
		assert_eq!(t.encode(text, true).unwrap(), prompt, "ids of {text:?}");
		let input: Tensor<CpuBackend, 2, Int> = Tensor::from_data(
			TensorData::new(
				prompt.iter().map(|i| *i as i64).collect::<Vec<_>>(),
				[1, prompt.len()],
			),
			&device,
		);
		let logits = forward(&model, input);
		for (p, position) in case["positions"].as_array().unwrap().iter().enumerate() {
			let row = &logits[p * vocab..(p + 1) * vocab];
			let max = row.iter().fold(f32::MIN, |m, v| m.max(*v)) as f64;
			let lse = max + row.iter().map(|v| (*v as f64 - max).exp()).sum::<f64>().ln();
			worst = worst.max((lse - position["logsumexp"].as_f64().unwrap()).abs() as f32);
			for (id, want) in
				ids(&position["ids"]).iter().zip(position["logits"].as_array().unwrap())
			{
				let diff = (row[*id as usize] - want.as_f64().unwrap() as f32).abs();
				worst = worst.max(diff);
			}
		}
		let want = ids(&case["greedy"]);
		assert_eq!(
			greedy(&config, &layers, &[0, 4], &prompt, want.len()),
			want,
			"greedy after {text:?}"
		);
	}
	assert!(worst <= 1e-4, "max |logit difference| {worst}");
	eprintln!("max |logit difference| against transformers: {worst:e}");
}

fn forward(model: &Transformer<CpuBackend>, input: Tensor<CpuBackend, 2, Int>) -> Vec<f32> {
	model.forward(input).into_data().to_vec::<f32>().unwrap()
}

#[test]
fn chat_prompts_and_their_greedy_replies_match_transformers_whole_and_in_stages() {
	let f = fixture();
	let t = qwen3();
	let (config, layers) = checkpoint(&f);
	let options = ChatOptions { add_generation_prompt: true, enable_thinking: Some(false) };
	for case in f["chats"].as_array().unwrap() {
		let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).unwrap();
		let prompt = t.encode_chat(&messages, &options).unwrap();
		assert_eq!(prompt, ids(&case["ids"]), "rendered prompt of {messages:?}");
		let want = ids(&case["greedy"]);
		assert_eq!(greedy(&config, &layers, &[0, 4], &prompt, want.len()), want, "one stage");
		assert_eq!(greedy(&config, &layers, &[0, 2, 4], &prompt, want.len()), want, "two stages");
	}
}

#[test]
fn reference_weights_are_the_formula() {
	// Spot values the script printed for the same names (transformers' side of the formula).
	let config = ModelConfig { vocab_size: 4, hidden_size: 64, ..ModelConfig::tiny() };
	let layers = hf::reference_layers(&config);
	let head = layers.last().unwrap();
	let wide = |values: &[f32]| values.iter().map(|v| f64::from(*v)).collect::<Vec<_>>();
	let norm = head.iter().find(|t| t.name == "model.norm.weight").unwrap();
	assert_eq!(
		wide(&norm.values[..4]),
		[0.8871719837188721, 0.9553254246711731, 0.9150499105453491, 0.9864373803138733]
	);
	let embed = &layers[0][0];
	assert_eq!(wide(&embed.values[..2]), [-0.0321773886680603, -0.03709813952445984]);
	let lm_head = head.iter().find(|t| t.name == "lm_head.weight").unwrap();
	assert_eq!(lm_head.values, embed.values, "tied head");
}
