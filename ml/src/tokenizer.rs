//! Text to tokens and back, as the model was trained: Hugging Face's `tokenizers` reading the
//! model's own `tokenizer.json`, and chat prompts rendered from `tokenizer_config.json`'s
//! `chat_template` with `minijinja` (the Jinja subset Hugging Face templates use). The files are
//! part of the model's registered configuration ([`TokenizerFiles`] in the config the registry
//! hashes), so every miner, verifier and server tokenizes with the same bytes.
//!
//! The built-in tiny models have no files: their tokens are bytes ([`TextTokenizer::Bytes`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a model's tokenizer files are and what they hash to (blake2-256, hex): part of the model
/// configuration, so the registry's `config_hash` covers them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerFiles {
	/// IPFS CID of `tokenizer.json`.
	pub tokenizer_cid: String,
	pub tokenizer_hash: String,
	/// IPFS CID of `tokenizer_config.json` (chat template, special tokens).
	pub config_cid: String,
	pub config_hash: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenizerError {
	#[error("tokenizer.json: {0}")]
	Tokenizer(String),
	#[error("tokenizer_config.json: {0}")]
	Config(String),
	#[error("the tokenizer has {tokenizer} tokens but the model's embedding only {embedding}")]
	VocabularyMismatch { tokenizer: usize, embedding: usize },
	#[error("this model has no chat template")]
	NoChatTemplate,
	#[error("chat template: {0}")]
	Template(String),
	#[error("cannot tokenize the text: {0}")]
	Encode(String),
}

/// One turn of a conversation, as chat templates see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
	pub role: String,
	pub content: String,
}

/// How a chat prompt is rendered: Hugging Face's `apply_chat_template` arguments.
#[derive(Clone, Debug, Default)]
pub struct ChatOptions {
	/// End with the assistant's turn opened (what a server generating the reply wants).
	pub add_generation_prompt: bool,
	/// Qwen3's switch for a thinking turn; left undefined in the template when `None`.
	pub enable_thinking: Option<bool>,
}

/// The bytes `start..end` of a text a token stands for.
pub type ByteSpan = (usize, usize);

/// A model's tokenizer.
pub enum TextTokenizer {
	/// One token per byte (the built-in models); chat turns as `<|role|>` lines.
	Bytes,
	Hf(Box<HfTokenizer>),
}

impl TextTokenizer {
	/// Tokens in the vocabulary.
	pub fn vocab_size(&self) -> usize {
		match self {
			Self::Bytes => crate::data::VOCAB_SIZE,
			Self::Hf(t) => t.vocab_size(),
		}
	}

	/// Tokens of `text`; `special` adds what the tokenizer's post-processor adds to a plain text
	/// (as `tokenizer(text)` does in `transformers`).
	pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, TokenizerError> {
		match self {
			Self::Bytes => Ok(text.bytes().map(u32::from).collect()),
			Self::Hf(t) => t.encode(text, special),
		}
	}

	/// The bytes a token stands for. Tokens need not end on a character boundary (byte-level
	/// BPE splits UTF-8), so text is made from the bytes of several tokens. Ids outside the
	/// vocabulary stand for nothing.
	pub fn token_bytes(&self, token: u32) -> &[u8] {
		match self {
			Self::Bytes => BYTES.get(token as usize).map(std::slice::from_ref).unwrap_or(&[]),
			Self::Hf(t) => t.token_bytes.get(token as usize).map(Vec::as_slice).unwrap_or(&[]),
		}
	}

	/// The text of `tokens` (invalid UTF-8 replaced, as `transformers` decodes with
	/// `errors="replace"`).
	pub fn decode(&self, tokens: &[u32]) -> String {
		let bytes: Vec<u8> =
			tokens.iter().flat_map(|t| self.token_bytes(*t).iter().copied()).collect();
		String::from_utf8_lossy(&bytes).into_owned()
	}

	/// Special tokens (e.g. `<|im_start|>`): not part of a reply's text.
	pub fn is_special(&self, token: u32) -> bool {
		match self {
			Self::Bytes => false,
			Self::Hf(t) => t.special.contains(&token),
		}
	}

	/// Tokens that end a reply: generation stops there and they are not part of the text.
	pub fn end_tokens(&self) -> &[u32] {
		match self {
			Self::Bytes => &[],
			Self::Hf(t) => &t.end_tokens,
		}
	}

	/// The prompt of a conversation.
	pub fn render_chat(
		&self,
		messages: &[ChatMessage],
		options: &ChatOptions,
	) -> Result<String, TokenizerError> {
		match self {
			Self::Bytes => {
				let mut prompt = String::new();
				for m in messages {
					prompt.push_str(&format!("<|{}|>\n{}\n", m.role, m.content));
				}
				if options.add_generation_prompt {
					prompt.push_str("<|assistant|>\n");
				}
				Ok(prompt)
			}
			Self::Hf(t) => t.render_chat(messages, options),
		}
	}

	/// Tokens of `text` (no special tokens added) with the byte range of `text` each stands for.
	pub fn encode_with_offsets(
		&self,
		text: &str,
	) -> Result<(Vec<u32>, Vec<ByteSpan>), TokenizerError> {
		match self {
			Self::Bytes => {
				Ok(text.bytes().enumerate().map(|(i, b)| (u32::from(b), (i, i + 1))).unzip())
			}
			Self::Hf(t) => {
				let encoding = t
					.inner
					.encode(text, false)
					.map_err(|e| TokenizerError::Encode(e.to_string()))?;
				Ok((encoding.get_ids().to_vec(), encoding.get_offsets().to_vec()))
			}
		}
	}

	/// The token that separates documents of plain text: `<|endoftext|>` where the vocabulary
	/// has it (what base models were pre-trained with), else the end-of-sequence token.
	pub fn document_end(&self) -> Option<u32> {
		match self {
			Self::Bytes => None,
			Self::Hf(t) => {
				t.inner.token_to_id("<|endoftext|>").or_else(|| t.end_tokens.first().copied())
			}
		}
	}

	/// Tokens of a rendered chat prompt: its special tokens are already written out, so none
	/// are added (as `apply_chat_template(tokenize=True)` does).
	pub fn encode_chat(
		&self,
		messages: &[ChatMessage],
		options: &ChatOptions,
	) -> Result<Vec<u32>, TokenizerError> {
		self.encode(&self.render_chat(messages, options)?, false)
	}
}

static BYTES: [u8; 256] = {
	let mut all = [0u8; 256];
	let mut i = 0;
	while i < 256 {
		all[i] = i as u8;
		i += 1;
	}
	all
};

/// A Hugging Face tokenizer with its chat template.
pub struct HfTokenizer {
	inner: tokenizers::Tokenizer,
	/// The bytes of every id, looked up while streaming.
	token_bytes: Vec<Vec<u8>>,
	end_tokens: Vec<u32>,
	/// Special added tokens: not part of a reply's text (as `skip_special_tokens` decodes).
	special: std::collections::HashSet<u32>,
	template: Option<minijinja::Environment<'static>>,
	bos_token: Option<String>,
	eos_token: Option<String>,
}

const TEMPLATE_NAME: &str = "chat";
/// Largest vocabulary accepted (Qwen3 has 151 669 tokens; the largest public ones ~260 000).
const MAX_VOCABULARY: usize = 1 << 20;
/// Template instructions one rendering may run: a registered template is untrusted.
const TEMPLATE_FUEL: u64 = 10_000_000;

impl HfTokenizer {
	/// Reads `tokenizer.json` and `tokenizer_config.json` (their bytes, as registered).
	pub fn from_bytes(tokenizer_json: &[u8], config_json: &[u8]) -> Result<Self, TokenizerError> {
		let mut inner = tokenizers::Tokenizer::from_bytes(tokenizer_json)
			.map_err(|e| TokenizerError::Tokenizer(e.to_string()))?;
		// As `transformers` encodes: no truncation or padding unless asked for.
		inner.with_truncation(None).map_err(|e| TokenizerError::Tokenizer(e.to_string()))?;
		inner.with_padding(None);
		// Streaming needs each token's bytes, which only byte-level BPE defines token by token
		// (SentencePiece-style decoders change a token's text by its neighbours).
		if !matches!(inner.get_decoder(), Some(tokenizers::DecoderWrapper::ByteLevel(_))) {
			return Err(TokenizerError::Tokenizer(
				"only byte-level BPE tokenizers (decoder ByteLevel: GPT-2, Qwen, Llama 3) are supported".into(),
			));
		}
		// Every miner and verifier must get the same tokens from the same text: BPE dropout
		// (random merges while training a tokenizer) would make them differ.
		if let tokenizers::ModelWrapper::BPE(bpe) = inner.get_model() {
			if bpe.dropout.is_some_and(|p| p > 0.0) {
				return Err(TokenizerError::Tokenizer(
					"BPE dropout makes tokenization random: set \"dropout\" to null".into(),
				));
			}
		}
		// Ids index a table here and the embedding on the stages: bounded before anything is
		// allocated from them.
		let largest = inner
			.get_vocab(true)
			.values()
			.copied()
			.chain(inner.get_added_tokens_decoder().keys().copied())
			.max()
			.unwrap_or(0);
		if largest as usize >= MAX_VOCABULARY {
			return Err(TokenizerError::Tokenizer(format!(
				"token id {largest}: vocabularies are at most {MAX_VOCABULARY} tokens"
			)));
		}
		let config: serde_json::Map<String, Value> = serde_json::from_slice(config_json)
			.map_err(|e| TokenizerError::Config(e.to_string()))?;
		let special = |key: &str| -> Result<Option<String>, TokenizerError> {
			match config.get(key) {
				None | Some(Value::Null) => Ok(None),
				Some(Value::String(s)) => Ok(Some(s.clone())),
				// An `AddedToken` written out as an object.
				Some(Value::Object(o)) => match o.get("content") {
					Some(Value::String(s)) => Ok(Some(s.clone())),
					_ => Err(TokenizerError::Config(format!("`{key}` has no `content`"))),
				},
				Some(_) => Err(TokenizerError::Config(format!("`{key}` is not a string"))),
			}
		};
		let (bos_token, eos_token) = (special("bos_token")?, special("eos_token")?);
		let id = |token: &str| {
			inner.token_to_id(token).ok_or_else(|| {
				TokenizerError::Config(format!("`{token}` is not in tokenizer.json's vocabulary"))
			})
		};
		let mut end_tokens = Vec::new();
		if let Some(eos) = &eos_token {
			end_tokens.push(id(eos)?);
		}
		// Base models end documents with `<|endoftext|>` (Qwen's generation config stops on both).
		if let Some(eot) = inner.token_to_id("<|endoftext|>") {
			if !end_tokens.contains(&eot) {
				end_tokens.push(eot);
			}
		}
		let template = match config.get("chat_template") {
			None | Some(Value::Null) => None,
			Some(Value::String(source)) => Some(environment(source.clone())?),
			// A list of named templates: the one called "default".
			Some(Value::Array(named)) => {
				let source = named
					.iter()
					.find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
					.and_then(|t| t.get("template"))
					.and_then(Value::as_str)
					.ok_or_else(|| {
						TokenizerError::Config("`chat_template` has no \"default\" entry".into())
					})?;
				Some(environment(source.to_string())?)
			}
			Some(_) => {
				return Err(TokenizerError::Config("`chat_template` is not a string".into()))
			}
		};
		let token_bytes = token_bytes(&inner, largest as usize + 1);
		let special = inner
			.get_added_tokens_decoder()
			.into_iter()
			.filter(|(_, t)| t.special)
			.map(|(id, _)| id)
			.collect();
		Ok(Self { inner, token_bytes, end_tokens, special, template, bos_token, eos_token })
	}

	/// Tokens in the vocabulary, added tokens included (as `len(tokenizer)` in `transformers`).
	pub fn vocab_size(&self) -> usize {
		self.token_bytes.len()
	}

	/// Checks the tokenizer fits a model whose embedding has `embedding` rows.
	pub fn check_vocabulary(&self, embedding: usize) -> Result<(), TokenizerError> {
		let tokenizer = self.token_bytes.len();
		if tokenizer > embedding {
			return Err(TokenizerError::VocabularyMismatch { tokenizer, embedding });
		}
		Ok(())
	}

	fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, TokenizerError> {
		let encoding =
			self.inner.encode(text, special).map_err(|e| TokenizerError::Encode(e.to_string()))?;
		Ok(encoding.get_ids().to_vec())
	}

	fn render_chat(
		&self,
		messages: &[ChatMessage],
		options: &ChatOptions,
	) -> Result<String, TokenizerError> {
		let env = self.template.as_ref().ok_or(TokenizerError::NoChatTemplate)?;
		let template = env.get_template(TEMPLATE_NAME).map_err(template_error)?;
		let mut context = serde_json::Map::new();
		context.insert("messages".into(), serde_json::to_value(messages).unwrap_or_default());
		context.insert("add_generation_prompt".into(), options.add_generation_prompt.into());
		if let Some(thinking) = options.enable_thinking {
			context.insert("enable_thinking".into(), thinking.into());
		}
		context.insert("bos_token".into(), self.bos_token.clone().unwrap_or_default().into());
		context.insert("eos_token".into(), self.eos_token.clone().unwrap_or_default().into());
		template.render(Value::Object(context)).map_err(template_error)
	}
}

fn template_error(e: minijinja::Error) -> TokenizerError {
	// The message and where in the template it happened; not the whole debug dump.
	let mut text = e.to_string();
	if let Some(line) = e.line() {
		text.push_str(&format!(" (line {line})"));
	}
	TokenizerError::Template(text)
}

/// The environment Hugging Face renders chat templates in: blocks trimmed as by Jinja's
/// `trim_blocks` and `lstrip_blocks`, Python's string methods, `raise_exception`.
fn environment(source: String) -> Result<minijinja::Environment<'static>, TokenizerError> {
	let mut env = minijinja::Environment::new();
	env.set_trim_blocks(true);
	env.set_lstrip_blocks(true);
	env.set_fuel(Some(TEMPLATE_FUEL));
	env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
	env.add_function("raise_exception", |message: String| -> Result<String, minijinja::Error> {
		Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
	});
	env.add_template_owned(TEMPLATE_NAME, source).map_err(template_error)?;
	Ok(env)
}

/// The bytes of every token id below `len`. Byte-level BPE (GPT-2, Qwen, Llama 3) writes each
/// byte as one printable character; added tokens are their text.
fn token_bytes(inner: &tokenizers::Tokenizer, len: usize) -> Vec<Vec<u8>> {
	let added: HashMap<u32, String> =
		inner.get_added_tokens_decoder().into_iter().map(|(id, t)| (id, t.content)).collect();
	let unicode_to_byte: HashMap<char, u8> =
		byte_level_alphabet().into_iter().enumerate().map(|(b, c)| (c, b as u8)).collect();
	// Ids may have holes: the table spans the largest id.
	(0..len as u32)
		.map(|id| {
			if let Some(content) = added.get(&id) {
				return content.as_bytes().to_vec();
			}
			match inner.id_to_token(id) {
				None => Vec::new(),
				Some(token) => token
					.chars()
					.map(|c| unicode_to_byte.get(&c).copied())
					.collect::<Option<Vec<u8>>>()
					.unwrap_or_else(|| token.into_bytes()),
			}
		})
		.collect()
}

/// GPT-2's byte-to-character table: printable Latin-1 bytes stand for themselves, the others
/// for the characters from U+0100 on, in byte order.
fn byte_level_alphabet() -> [char; 256] {
	let mut table = ['\0'; 256];
	let mut next = 256u32;
	for (b, slot) in table.iter_mut().enumerate() {
		let printable = matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff);
		*slot = if printable {
			char::from(b as u8)
		} else {
			next += 1;
			char::from_u32(next - 1).expect("below the surrogates")
		};
	}
	table
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn the_byte_level_alphabet_is_gpt2s() {
		let table = byte_level_alphabet();
		assert_eq!(table[b'A' as usize], 'A');
		// The space is U+0120 ('Ġ'), the newline U+010A ('Ċ'), as in every GPT-2-style vocabulary.
		assert_eq!(table[b' ' as usize], 'Ġ');
		assert_eq!(table[b'\n' as usize], 'Ċ');
		let distinct: std::collections::HashSet<char> = table.iter().copied().collect();
		assert_eq!(distinct.len(), 256);
	}

	#[test]
	fn bytes_tokenizer_round_trips_any_text() {
		let t = TextTokenizer::Bytes;
		let text = "héllo → 世界";
		let ids = t.encode(text, true).unwrap();
		assert_eq!(ids.len(), text.len());
		assert_eq!(t.decode(&ids), text);
		assert_eq!(t.token_bytes(300), b"");
	}
}
