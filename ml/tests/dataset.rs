//! Datasets read with the model's tokenizer (Qwen3's real files): plain text, JSONL documents
//! and chat records trained on the assistant's turns only; and the loss that skips the rest.

mod common;

use blyan_ml::{
	data::{self, CONTEXT_ONLY},
	dataset::{self, DatasetError},
	model::{ModelConfig, Transformer},
	tokenizer::{ChatMessage, ChatOptions, HfTokenizer, TextTokenizer},
	train, CpuBackend,
};
use burn::tensor::{activation::log_softmax, Int, Tensor, TensorData};
use common::{files, qwen3};

fn ids(tokens: &[u32]) -> Vec<i64> {
	tokens.iter().map(|t| i64::from(*t)).collect()
}

fn trained_text(t: &TextTokenizer, tokens: &[i64]) -> String {
	let trained: Vec<u32> =
		tokens.iter().filter(|x| data::is_trained(**x)).map(|x| *x as u32).collect();
	t.decode(&trained)
}

#[test]
fn plain_text_is_tokenized_whole() {
	let t = qwen3();
	let text = "Blyan trains models.\n{not json} 你好, мир!\n";
	let tokens = dataset::tokenize(&t, text.as_bytes()).unwrap();
	assert_eq!(tokens, ids(&t.encode(text, false).unwrap()));
	assert!(tokens.iter().all(|x| data::is_trained(*x)));
}

#[test]
fn text_records_are_documents_ending_in_endoftext() {
	let t = qwen3();
	let eot = t.encode("<|endoftext|>", false).unwrap();
	assert_eq!(eot.len(), 1, "<|endoftext|> is one special token");
	let jsonl = "{\"text\": \"First document.\", \"id\": 1}\n\n{\"text\": \"Zweites Dokument\"}\n";
	let tokens = dataset::tokenize(&t, jsonl.as_bytes()).unwrap();
	let mut want = ids(&t.encode("First document.", false).unwrap());
	want.push(eot[0].into());
	want.extend(ids(&t.encode("Zweites Dokument", false).unwrap()));
	want.push(eot[0].into());
	assert_eq!(tokens, want);
}

#[test]
fn chat_records_train_on_the_assistant_turns_only() {
	let t = qwen3();
	let conversation = [
		("system", "You are terse."),
		("user", "Name a prime."),
		("assistant", "Seven."),
		("user", "Another?"),
		("assistant", "Eleven."),
	];
	let messages: Vec<ChatMessage> = conversation
		.iter()
		.map(|(role, content)| ChatMessage { role: role.to_string(), content: content.to_string() })
		.collect();
	let record = serde_json::json!({ "messages": messages }).to_string();
	let jsonl = format!("{record}\n{record}\n");
	let tokens = dataset::tokenize(&t, jsonl.as_bytes()).unwrap();

	// Marks cleared, the tokens are the template's rendering (checked against transformers in
	// tests/tokenizer.rs), once per record.
	let rendered = t.encode_chat(&messages, &ChatOptions::default()).unwrap();
	let plain: Vec<i64> = tokens.iter().map(|x| data::token_id(*x)).collect();
	assert_eq!(plain, [ids(&rendered), ids(&rendered)].concat());
	// What is trained is each assistant reply up to its <|im_end|>: Qwen3 writes the last
	// turn with an empty thinking block, the earlier one without.
	let one = &tokens[..rendered.len()];
	assert_eq!(
		trained_text(&t, one),
		"Seven.<|im_end|><think>\n\n</think>\n\nEleven.<|im_end|>",
		"trained tokens of {:?}",
		t.decode(&rendered)
	);
	// Everything else (system, user turns, the assistant headers) is context only.
	let context: Vec<u32> =
		one.iter().filter(|x| !data::is_trained(**x)).map(|x| data::token_id(*x) as u32).collect();
	let context = t.decode(&context);
	for text in ["You are terse.", "Name a prime.", "Another?", "<|im_start|>assistant\n"] {
		assert!(context.contains(text), "{text:?} is context: {context:?}");
	}
	assert!(tokens.iter().all(|x| data::token_id(*x) < t.vocab_size() as i64));
}

#[test]
fn bad_records_are_refused_with_their_line() {
	let t = qwen3();
	let good = "{\"text\": \"fine\"}";
	let err = |input: &str| dataset::tokenize(&t, input.as_bytes()).unwrap_err();
	assert!(matches!(
		err(&format!("{good}\n{{\"text\": 5}}\n")),
		DatasetError::Record { line: 2, .. }
	));
	assert!(matches!(err(&format!("{good}\n\nnot json\n")), DatasetError::Record { line: 3, .. }));
	assert!(matches!(
		err(&format!("{good}\n{{\"text\": \"a\", \"messages\": []}}\n")),
		DatasetError::Record { line: 2, .. }
	));
	let no_reply = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";
	match err(no_reply) {
		DatasetError::Record { line: 1, reason } => {
			assert!(reason.contains("assistant"), "{reason}")
		}
		other => panic!("{other:?}"),
	}
	assert_eq!(dataset::tokenize(&t, b"ok \xff\xfe").unwrap_err(), DatasetError::NotUtf8(3));
}

#[test]
fn byte_models_read_the_bytes_as_they_are() {
	let jsonl = b"{\"text\": \"hi\"}\n";
	assert_eq!(dataset::tokenize(&TextTokenizer::Bytes, jsonl).unwrap(), data::encode(jsonl));
}

/// The loss on data with context-only tokens is the mean log-likelihood of the trained targets
/// alone, computed here from the model's logits; unmarked data keeps the plain mean.
#[test]
fn context_only_tokens_are_read_but_not_trained() {
	let device = Default::default();
	let config = ModelConfig::tiny();
	let model = Transformer::<CpuBackend>::init(&config, 7, &device);
	let (batch, window) = (2, 9);
	let plain: Vec<i64> = (0..(batch * window) as i64).map(|i| (i * 37 + 11) % 256).collect();
	// Mark a few targets context-only, among them a window's first token (input only anyway).
	let marked: Vec<i64> = plain
		.iter()
		.enumerate()
		.map(|(i, t)| if [0, 2, 3, 4, 12].contains(&i) { t | CONTEXT_ONLY } else { *t })
		.collect();

	let all = train::batch_loss(&model, plain.clone(), batch, &device).into_scalar();
	let mean = model.loss(train::tokens::<CpuBackend>(plain.clone(), batch, &device)).into_scalar();
	assert_eq!(all.to_bits(), mean.to_bits(), "unmarked data takes the plain mean");

	let masked = train::batch_loss(&model, marked.clone(), batch, &device).into_scalar();
	let input: Tensor<CpuBackend, 2, Int> = Tensor::from_data(
		TensorData::new(
			plain.chunks(window).flat_map(|w| w[..window - 1].to_vec()).collect::<Vec<_>>(),
			[batch, window - 1],
		),
		&device,
	);
	let log_probs = log_softmax(model.forward(input), 2).into_data().to_vec::<f32>().unwrap();
	let vocab = config.vocab_size;
	let (mut sum, mut count) = (0f64, 0);
	for b in 0..batch {
		for p in 1..window {
			let i = b * window + p;
			if data::is_trained(marked[i]) {
				let row = (b * (window - 1) + p - 1) * vocab;
				sum += log_probs[row + plain[i] as usize] as f64;
				count += 1;
			}
		}
	}
	// Positions 2, 3, 4 and 12 (the second window's third target) are not targets; 0 never is.
	assert_eq!(count, batch * (window - 1) - 4);
	let want = -(sum / count as f64);
	assert!((masked as f64 - want).abs() < 1e-5, "masked loss {masked} vs {want}");
	assert!((masked - all).abs() > 1e-4, "the marks change the loss");
}

/// Evaluation weighs each trained target once: a window of prompt alone neither scores 0 nor
/// pulls the set's loss down; a set with no trained target cannot be scored.
#[test]
fn evaluation_counts_trained_targets_not_batches() {
	let device = Default::default();
	let model = Transformer::<CpuBackend>::init(&ModelConfig::tiny(), 7, &device);
	let hp =
		train::Hyperparams { batch_size: 1, seq_len: 8, eval_batches: 4, ..Default::default() };
	let window = hp.seq_len + 1;
	let plain: Vec<i64> = (0..(3 * window) as i64).map(|i| (i * 37 + 11) % 256).collect();
	let context = |w: &[i64]| w.iter().map(|t| t | CONTEXT_ONLY).collect::<Vec<_>>();
	assert_eq!(train::evaluate(&model, &context(&plain), &hp, &device), None);
	let mut mixed = context(&plain[..window]);
	mixed.extend_from_slice(&plain[window..]);
	let got = train::evaluate(&model, &mixed, &hp, &device).unwrap();
	let want = train::evaluate(&model, &plain[window..], &hp, &device).unwrap();
	assert!((got - want).abs() < 1e-6, "{got} vs {want} (the prompt-only window left out)");
	assert!(got > 1.0, "a random model's loss, not pulled towards 0: {got}");
}

/// Long plain text is tokenized in pieces cut where the tokenizer splits anyway: the same
/// tokens as the whole text at once.
#[test]
fn long_text_tokenizes_as_a_whole() {
	let t = qwen3();
	let line = "Blyan: 训练 and inference,   spaced  out.\n\n  indented line\nplain line\n";
	let text = line.repeat(40_000); // ~3 MB: three pieces or more
	let tokens = dataset::tokenize(&t, text.as_bytes()).unwrap();
	assert_eq!(tokens, ids(&t.encode(&text, false).unwrap()));
	let bom = "\u{feff}{\"text\": \"hi\"}\n";
	assert_eq!(
		dataset::tokenize(&t, bom.as_bytes()).unwrap()[0],
		ids(&t.encode("hi", false).unwrap())[0]
	);
}

/// The assistant's turn is found from the template itself, whatever its markers; a template
/// that closes replies with nothing cannot say where one ends, and is refused.
#[test]
fn assistant_turns_follow_the_templates_own_markers() {
	let (json, config) = files();
	let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
	let with_template = |template: &str| {
		let mut c = config.clone();
		c["chat_template"] = template.into();
		let t = HfTokenizer::from_bytes(&json, &serde_json::to_vec(&c).unwrap()).unwrap();
		TextTokenizer::Hf(Box::new(t))
	};
	let record = r#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]}"#;
	let t = with_template(
		"{% for m in messages %}[{{ m.role }}] {{ m.content }}<|endoftext|>\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}",
	);
	let tokens = dataset::tokenize(&t, record.as_bytes()).unwrap();
	// BPE merged the opening's space into the reply's first token: it is trained.
	assert_eq!(trained_text(&t, &tokens), " Hello!<|endoftext|>");
	let t = with_template(
		"{% for m in messages %}{{ m.role }}: {{ m.content }}\n\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}",
	);
	assert!(matches!(
		dataset::tokenize(&t, record.as_bytes()),
		Err(DatasetError::NoAssistantTurn(_))
	));
}
