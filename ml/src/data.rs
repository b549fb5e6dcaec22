//! Tokens and data. The tokenizer is byte-level (256 symbols: any text, no vocabulary file); the
//! shipped task is a generated corpus of small symbolic exercises (addition, reversal, sorting),
//! so a dataset is reproducible from its seed and a trained model's gain is real and measurable.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Byte-level vocabulary.
pub const VOCAB_SIZE: usize = 256;

/// Marks a token of a dataset that the model reads but is not trained to predict (the prompt
/// and user turns of a chat record): training and evaluation take the loss over the other
/// targets only. Far above any vocabulary ([`crate::tokenizer`] bounds ids by 2^20).
pub const CONTEXT_ONLY: i64 = 1 << 40;

/// The vocabulary id of a dataset token, with its [`CONTEXT_ONLY`] mark cleared.
pub fn token_id(token: i64) -> i64 {
	token & !CONTEXT_ONLY
}

/// Whether a dataset token is a training target (not marked [`CONTEXT_ONLY`]).
pub fn is_trained(token: i64) -> bool {
	token & CONTEXT_ONLY == 0
}

pub fn encode(text: &[u8]) -> Vec<i64> {
	text.iter().map(|b| *b as i64).collect()
}

pub fn decode(tokens: &[i64]) -> String {
	let bytes: Vec<u8> = tokens.iter().map(|t| (*t).clamp(0, 255) as u8).collect();
	String::from_utf8_lossy(&bytes).into_owned()
}

/// About `bytes` bytes of exercises, one per line, e.g. `add 37 48 = 85`, `rev kqz = zqk`,
/// `sort 7 2 9 = 2 7 9`. Deterministic in `seed`; different seeds give disjoint-looking sets
/// (training vs held-out validation).
pub fn generate_corpus(seed: u64, bytes: usize) -> Vec<u8> {
	let mut rng = ChaCha20Rng::seed_from_u64(seed);
	let mut out = Vec::with_capacity(bytes + 64);
	while out.len() < bytes {
		let line = match rng.random_range(0..3) {
			0 => {
				let (a, b) = (rng.random_range(0..100u32), rng.random_range(0..100u32));
				format!("add {a} {b} = {}\n", a + b)
			}
			1 => {
				let len = rng.random_range(2..7);
				let word: String =
					(0..len).map(|_| rng.random_range(b'a'..=b'z') as char).collect();
				format!("rev {word} = {}\n", word.chars().rev().collect::<String>())
			}
			_ => {
				let len = rng.random_range(2..6);
				let mut digits: Vec<u8> = (0..len).map(|_| rng.random_range(0..10u8)).collect();
				let shown: Vec<String> = digits.iter().map(u8::to_string).collect();
				digits.sort_unstable();
				let sorted: Vec<String> = digits.iter().map(u8::to_string).collect();
				format!("sort {} = {}\n", shown.join(" "), sorted.join(" "))
			}
		};
		out.extend_from_slice(line.as_bytes());
	}
	out
}

/// `batch` windows of `window` tokens drawn at random offsets of `data` (training).
/// Data shorter than `window` is repeated to fill it (callers refuse such data up front; this
/// only keeps the function total).
pub fn sample_batch(data: &[i64], rng: &mut ChaCha20Rng, batch: usize, window: usize) -> Vec<i64> {
	gather(data, &sample_offsets(data.len(), rng, batch, window), window)
}

/// The offsets of `batch` windows of `window` tokens in data of `len` tokens: the batch indices
/// a training step draws (and a training trace records).
pub fn sample_offsets(
	len: usize,
	rng: &mut ChaCha20Rng,
	batch: usize,
	window: usize,
) -> Vec<usize> {
	let last = len.saturating_sub(window);
	(0..batch).map(|_| if last == 0 { 0 } else { rng.random_range(0..=last) }).collect()
}

/// The windows of `window` tokens at `offsets`, concatenated.
pub fn gather(data: &[i64], offsets: &[usize], window: usize) -> Vec<i64> {
	let mut out = Vec::with_capacity(offsets.len() * window);
	if data.is_empty() {
		out.resize(offsets.len() * window, 0);
		return out;
	}
	for start in offsets {
		out.extend(data.iter().cycle().skip(*start).take(window));
	}
	out
}

/// Consecutive non-overlapping windows of `window` tokens, grouped in full batches of `batch`
/// (evaluation: every verifier sees the same windows in the same order). At most `max_batches`.
pub fn evaluation_batches(
	data: &[i64],
	batch: usize,
	window: usize,
	max_batches: usize,
) -> Vec<Vec<i64>> {
	let windows: Vec<&[i64]> = data.chunks_exact(window).collect();
	windows.chunks_exact(batch).take(max_batches).map(|group| group.concat()).collect()
}
