//! The binary protocol between pipeline stages: one HTTP request per chunk, `POST
//! /v1/stage/forward`, body and answer `application/octet-stream`. All integers little-endian.
//!
//! Request: `"BLY1"`, session id (16 bytes), position (u32: positions the session already holds
//! before this chunk), then a tensor. Answer: a tensor. A tensor is a kind byte (0 token ids as
//! u32, 1 hidden states as f32, 2 logits as f32), rows (u32), columns (u32) and `rows · columns`
//! values. Hidden states travel as their exact bits, so a pipeline computes what one server does.

use crate::ml::infer::Activations;

pub const MAGIC: &[u8; 4] = b"BLY1";
/// The most values one message carries (1 GiB of f32): bounds what a peer can make us allocate.
pub const MAX_VALUES: usize = 1 << 28;

pub type SessionId = [u8; 16];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
	#[error("not a Blyan stage message")]
	Magic,
	#[error("message truncated")]
	Truncated,
	#[error("unknown tensor kind {0}")]
	Kind(u8),
	#[error("tensor of {0} values is too large")]
	TooLarge(usize),
	#[error("{0} trailing bytes")]
	Trailing(usize),
}

/// A chunk sent to a stage.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardRequest {
	pub session: SessionId,
	pub position: u32,
	pub input: Activations,
}

pub fn encode_request(request: &ForwardRequest) -> Vec<u8> {
	let mut out = Vec::with_capacity(32 + 4 * len(&request.input));
	out.extend_from_slice(MAGIC);
	out.extend_from_slice(&request.session);
	out.extend_from_slice(&request.position.to_le_bytes());
	encode_tensor(&request.input, &mut out);
	out
}

pub fn decode_request(bytes: &[u8]) -> Result<ForwardRequest, ProtocolError> {
	let mut r = Reader { bytes };
	if r.take(4)? != MAGIC {
		return Err(ProtocolError::Magic);
	}
	let session: SessionId = r.take(16)?.try_into().expect("16 bytes taken");
	let position = r.u32()?;
	let input = decode_tensor(&mut r)?;
	r.end()?;
	Ok(ForwardRequest { session, position, input })
}

pub fn encode_activations(activations: &Activations) -> Vec<u8> {
	let mut out = Vec::with_capacity(9 + 4 * len(activations));
	encode_tensor(activations, &mut out);
	out
}

pub fn decode_activations(bytes: &[u8]) -> Result<Activations, ProtocolError> {
	let mut r = Reader { bytes };
	let tensor = decode_tensor(&mut r)?;
	r.end()?;
	Ok(tensor)
}

fn len(a: &Activations) -> usize {
	match a {
		Activations::Tokens(t) => t.len(),
		Activations::Hidden { values, .. } | Activations::Logits(values) => values.len(),
	}
}

fn encode_tensor(a: &Activations, out: &mut Vec<u8>) {
	let (kind, rows, cols) = match a {
		Activations::Tokens(t) => (0u8, t.len(), 1),
		Activations::Hidden { rows, values } => (1, *rows, values.len() / (*rows).max(1)),
		Activations::Logits(v) => (2, 1, v.len()),
	};
	out.push(kind);
	out.extend_from_slice(&(rows as u32).to_le_bytes());
	out.extend_from_slice(&(cols as u32).to_le_bytes());
	match a {
		Activations::Tokens(t) => t.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
		Activations::Hidden { values, .. } | Activations::Logits(values) => {
			values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()))
		}
	}
}

fn decode_tensor(r: &mut Reader<'_>) -> Result<Activations, ProtocolError> {
	let kind = r.take(1)?[0];
	let (rows, cols) = (r.u32()? as usize, r.u32()? as usize);
	let count = rows.checked_mul(cols).ok_or(ProtocolError::TooLarge(usize::MAX))?;
	if count > MAX_VALUES {
		return Err(ProtocolError::TooLarge(count));
	}
	let raw = r.take(count * 4)?;
	let words = raw.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
	Ok(match kind {
		0 => Activations::Tokens(words.map(u32::from_le_bytes).collect()),
		1 => Activations::Hidden { rows, values: words.map(f32::from_le_bytes).collect() },
		2 => Activations::Logits(words.map(f32::from_le_bytes).collect()),
		other => return Err(ProtocolError::Kind(other)),
	})
}

struct Reader<'a> {
	bytes: &'a [u8],
}

impl<'a> Reader<'a> {
	fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
		if self.bytes.len() < n {
			return Err(ProtocolError::Truncated);
		}
		let (head, tail) = self.bytes.split_at(n);
		self.bytes = tail;
		Ok(head)
	}

	fn u32(&mut self) -> Result<u32, ProtocolError> {
		Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes taken")))
	}

	fn end(&self) -> Result<(), ProtocolError> {
		if self.bytes.is_empty() {
			Ok(())
		} else {
			Err(ProtocolError::Trailing(self.bytes.len()))
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn messages_round_trip_bit_exactly() {
		let request = ForwardRequest {
			session: [7; 16],
			position: 42,
			input: Activations::Hidden {
				rows: 2,
				values: vec![1.5, -0.0, f32::MIN_POSITIVE, 3e30],
			},
		};
		let decoded = decode_request(&encode_request(&request)).unwrap();
		assert_eq!(decoded, request);
		let Activations::Hidden { values, .. } = decoded.input else { panic!("kind") };
		assert_eq!(values[1].to_bits(), (-0.0f32).to_bits());
		let tokens = Activations::Tokens(vec![1, 255, 0]);
		assert_eq!(decode_activations(&encode_activations(&tokens)).unwrap(), tokens);
	}

	#[test]
	fn malformed_messages_are_errors() {
		let good = encode_request(&ForwardRequest {
			session: [0; 16],
			position: 0,
			input: Activations::Tokens(vec![1, 2]),
		});
		assert_eq!(decode_request(b"nope"), Err(ProtocolError::Magic));
		assert_eq!(decode_request(&good[..good.len() - 1]), Err(ProtocolError::Truncated));
		let mut long = good.clone();
		long.push(0);
		assert_eq!(decode_request(&long), Err(ProtocolError::Trailing(1)));
		let mut huge = good.clone();
		huge[25..29].copy_from_slice(&u32::MAX.to_le_bytes());
		huge[29..33].copy_from_slice(&u32::MAX.to_le_bytes());
		assert!(matches!(decode_request(&huge), Err(ProtocolError::TooLarge(_))));
		let mut kind = good;
		kind[24] = 9;
		assert_eq!(decode_request(&kind), Err(ProtocolError::Kind(9)));
	}
}
