//! A dataset's bytes as training tokens, with the model's own tokenizer. Every miner, verifier
//! and auditor runs this on the same registered bytes with the same registered tokenizer, so
//! they all train and score on the same tokens.
//!
//! - A model without tokenizer files (the built-in byte models) reads the bytes as they are.
//! - **JSONL** (the first non-empty line is a JSON object with `text` or `messages`): each line
//!   one record. `{"text": …}` is a document, followed by the document-end token.
//!   `{"messages": [{"role", "content"}, …]}` is a conversation rendered with the model's chat
//!   template; only the assistant's turns are trained (the rest is [`CONTEXT_ONLY`]).
//! - Anything else is plain text, tokenized a piece at a time (see [`pieces`]).

use serde::Deserialize;

use crate::{
	data::CONTEXT_ONLY,
	tokenizer::{ChatMessage, ChatOptions, TextTokenizer, TokenizerError},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatasetError {
	#[error("the dataset is not UTF-8 text (byte {0})")]
	NotUtf8(usize),
	#[error("line {line}: {reason}")]
	Record { line: usize, reason: String },
	#[error("chat records need the model's chat template to open the assistant's turn and an end-of-sequence token: {0}")]
	NoAssistantTurn(String),
	#[error(transparent)]
	Tokenizer(#[from] TokenizerError),
}

/// One JSONL record.
#[derive(Deserialize)]
struct Record {
	#[serde(default)]
	text: Option<String>,
	#[serde(default)]
	messages: Option<Vec<ChatMessage>>,
}

/// The training tokens of a dataset (vocabulary ids; chat prompts marked [`CONTEXT_ONLY`]).
pub fn tokenize(tokenizer: &TextTokenizer, bytes: &[u8]) -> Result<Vec<i64>, DatasetError> {
	if matches!(tokenizer, TextTokenizer::Bytes) {
		return Ok(crate::data::encode(bytes));
	}
	let text = std::str::from_utf8(bytes).map_err(|e| DatasetError::NotUtf8(e.valid_up_to()))?;
	// A byte-order mark is not text (editors on some systems write one).
	let text = text.strip_prefix('\u{feff}').unwrap_or(text);
	if !is_jsonl(text) {
		return encode_text(tokenizer, text);
	}
	let mut chat: Option<ChatTurns> = None;
	let mut out = Vec::new();
	for (index, line) in text.lines().enumerate() {
		let line_no = index + 1;
		if line.trim().is_empty() {
			continue;
		}
		let record = |reason: String| DatasetError::Record { line: line_no, reason };
		let parsed: Record = serde_json::from_str(line).map_err(|e| record(e.to_string()))?;
		match (parsed.text, parsed.messages) {
			(Some(text), None) => {
				out.extend(encode_text(tokenizer, &text)?);
				out.extend(tokenizer.document_end().map(i64::from));
			}
			(None, Some(messages)) => {
				if !messages.iter().any(|m| m.role == "assistant") {
					return Err(record(
						"the conversation has no assistant turn to train on".into(),
					));
				}
				let turns = match &chat {
					Some(turns) => turns,
					None => chat.insert(ChatTurns::of(tokenizer)?),
				};
				let rendered = tokenizer
					.render_chat(&messages, &ChatOptions::default())
					.map_err(|e| record(e.to_string()))?;
				let tokens = turns.tokens(tokenizer, &rendered)?;
				// The template wrote the assistant's turns otherwise than it opens one for a
				// reply: nothing would be trained, silently.
				if !tokens.iter().any(|t| crate::data::is_trained(*t)) {
					return Err(DatasetError::NoAssistantTurn(format!(
						"line {line_no}: no assistant turn found where the template renders them"
					)));
				}
				out.extend(tokens);
			}
			_ => return Err(record("a record has either `text` or `messages`".into())),
		}
	}
	Ok(out)
}

/// Plain text is tokenized a piece at a time: a tokenizer's working state for one call is many
/// times its input, and a dataset may be a gigabyte.
const PIECE_BYTES: usize = 1 << 20;

/// `text` cut into pieces of about `size` bytes. A piece ends where a line ends and the next
/// line starts with neither whitespace nor a line break: tokenizers' pre-tokenizers split there
/// anyway (Qwen's, GPT-2's, Llama 3's), so the pieces' tokens are the whole text's. Text with no
/// such place for `4 × size` bytes is cut before a space that follows a non-space (where those
/// pre-tokenizers also split a word from the next), and failing that at any character: bounded
/// memory matters more there than a token at the seam.
fn pieces(text: &str, size: usize) -> Vec<&str> {
	let mut out = Vec::new();
	let mut rest = text;
	while rest.len() > size {
		let bytes = rest.as_bytes();
		let far = bytes.len().min(size.saturating_mul(4));
		let line = (size..far).find(|&i| bytes[i - 1] == b'\n' && !bytes[i].is_ascii_whitespace());
		let word =
			|| (size..far).find(|&i| bytes[i] == b' ' && !bytes[i - 1].is_ascii_whitespace());
		let any = || (far..bytes.len()).find(|&i| rest.is_char_boundary(i));
		// `\n` and ` ` are ASCII: a cut next to one is on a character boundary.
		let Some(cut) = line.or_else(word).or_else(any) else { break };
		let (piece, tail) = rest.split_at(cut);
		out.push(piece);
		rest = tail;
	}
	out.push(rest);
	out
}

/// The tokens of `text`, a piece at a time (see [`pieces`]).
fn encode_text(tokenizer: &TextTokenizer, text: &str) -> Result<Vec<i64>, DatasetError> {
	let mut out = Vec::new();
	for piece in pieces(text, PIECE_BYTES) {
		out.extend(ids(&tokenizer.encode(piece, false)?));
	}
	Ok(out)
}

/// Whether `text` is JSONL records: its first non-empty line is a JSON object with `text` or
/// `messages` (so a text file that merely starts with `{` stays text).
fn is_jsonl(text: &str) -> bool {
	let Some(first) = text.lines().map(str::trim).find(|l| !l.is_empty()) else { return false };
	first.starts_with('{')
		&& serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(first)
			.is_ok_and(|o| o.contains_key("text") || o.contains_key("messages"))
}

fn ids(tokens: &[u32]) -> Vec<i64> {
	tokens.iter().map(|t| i64::from(*t)).collect()
}

/// Where the assistant's turns are in a rendered conversation: after each occurrence of the
/// text the template adds to open the assistant's turn (its generation prompt, e.g. Qwen's
/// `<|im_start|>assistant\n`) up to and including the text it closes a reply with (Qwen's
/// `<|im_end|>`, Llama 3's `<|eot_id|>`). Both are found by rendering probe conversations with
/// the template itself, so any template of that shape works.
struct ChatTurns {
	opening: String,
	end: String,
}

impl ChatTurns {
	fn of(tokenizer: &TextTokenizer) -> Result<Self, DatasetError> {
		let probe = [ChatMessage { role: "user".into(), content: "x".into() }];
		let render = |add_generation_prompt| {
			tokenizer
				.render_chat(&probe, &ChatOptions { add_generation_prompt, ..Default::default() })
		};
		let (with, without) = (render(true)?, render(false)?);
		let opening = with
			.strip_prefix(without.as_str())
			.filter(|o| !o.trim().is_empty())
			.ok_or_else(|| {
				DatasetError::NoAssistantTurn("the template has no generation prompt".into())
			})?
			.to_string();
		// What follows a reply: the rest of its line (Qwen: `<|im_end|>` then a newline).
		const REPLY: &str = "Blyan probe reply";
		let exchange =
			[probe[0].clone(), ChatMessage { role: "assistant".into(), content: REPLY.into() }];
		let rendered = tokenizer.render_chat(&exchange, &ChatOptions::default())?;
		let end = rendered
			.rfind(REPLY)
			.map(|at| &rendered[at + REPLY.len()..])
			.and_then(|after| after.lines().next())
			.map(str::trim)
			.filter(|end| !end.is_empty())
			.ok_or_else(|| {
				DatasetError::NoAssistantTurn("the template closes a reply with nothing".into())
			})?
			.to_string();
		Ok(Self { opening, end })
	}

	/// Tokens of `rendered`, those outside the assistant's turns marked [`CONTEXT_ONLY`].
	fn tokens(&self, tokenizer: &TextTokenizer, rendered: &str) -> Result<Vec<i64>, DatasetError> {
		let mut spans = Vec::new();
		let mut from = 0;
		while let Some(at) = rendered[from..].find(&self.opening) {
			let start = from + at + self.opening.len();
			// An opened turn the template never closes is trained to the conversation's end
			// (the template's own choice: it wrote nothing after the reply).
			let end = rendered[start..]
				.find(&self.end)
				.map_or(rendered.len(), |e| start + e + self.end.len());
			spans.push(start..end);
			from = end;
		}
		let (tokens, offsets) = tokenizer.encode_with_offsets(rendered)?;
		Ok(tokens
			.iter()
			.zip(offsets)
			.map(|(token, (start, end))| {
				let id = i64::from(*token);
				// A token overlapping a turn is the reply's: BPE may merge the space that
				// ends an opening such as `assistant: ` into the reply's first word.
				if spans.iter().any(|s| start < s.end && end > s.start) {
					id
				} else {
					id | CONTEXT_ONLY
				}
			})
			.collect())
	}
}

#[cfg(test)]
mod tests {
	use super::pieces;

	#[test]
	fn pieces_cut_at_line_starts_then_words_then_anywhere_and_lose_nothing() {
		let lines = "alpha beta\n  indented\ngamma\n\ndelta\n".repeat(50);
		let one_line = "word ".repeat(200);
		let no_spaces = "é".repeat(300);
		for (text, size) in
			[(lines.as_str(), 64), (one_line.as_str(), 64), (no_spaces.as_str(), 64)]
		{
			let cut = pieces(text, size);
			assert!(cut.len() > 1, "{text:?} is cut");
			assert_eq!(cut.concat(), text);
			assert!(cut.iter().all(|p| p.len() <= 4 * size + 4), "bounded pieces");
		}
		// Line starts first: every piece of the lines ends with a newline before a letter.
		for piece in &pieces(&lines, 64)[..3] {
			assert!(piece.ends_with('\n'), "{piece:?}");
		}
		// Then before a space that follows a word.
		assert!(pieces(&one_line, 64)[1].starts_with(' '));
		assert_eq!(pieces("", 64), [""]);
		assert_eq!(pieces("short", 64), ["short"]);
	}
}
