//! Pay-per-token receipts. A client (the gateway, with its key) signs one receipt per server of
//! the route after each completion and posts it to that server's `/v1/receipts` as SCALE bytes;
//! the server checks it (its own account, the client's signature, a nonce above the client's
//! last, at least its price) and settles what it holds in batches with one `inference.settle`.

use std::{
	collections::{HashMap, HashSet},
	sync::Mutex,
	time::{SystemTime, UNIX_EPOCH},
};

use codec::Decode;
use subxt::utils::AccountId32;

use crate::chain::{
	Chain, ChainError, ChainSignedReceipt, InferenceError, MultiSignature, Receipt, RuntimeError,
	H256,
};

/// Receipt nonces: microseconds since the Unix epoch, strictly increasing per process, so several
/// gateways sharing a key (or a restarted one) never reuse a nonce the chain already settled.
#[derive(Default)]
pub struct NonceClock {
	last: Mutex<u64>,
}

impl NonceClock {
	pub fn next(&self) -> u64 {
		let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64);
		let mut last = self.last.lock().expect("nonce lock");
		*last = (*last + 1).max(now.unwrap_or(0));
		*last
	}
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReceiptError {
	#[error("not a SCALE-encoded signed receipt")]
	Malformed,
	#[error("receipt is for another server")]
	WrongServer,
	#[error("signature is not the client's")]
	BadSignature,
	#[error("nonce {nonce} is not above the client's last ({last})")]
	Replayed { nonce: u64, last: u64 },
	#[error("price {offered} is below this server's {asked}")]
	Underpriced { offered: u128, asked: u128 },
	#[error("this server does not serve the free tier")]
	FreeRefused,
	#[error("too many receipts pending")]
	Full,
	#[error("this client's receipts were refused on chain before")]
	ClientRefused,
}

/// A server's receipts awaiting settlement.
pub struct ReceiptBook {
	server: AccountId32,
	genesis: H256,
	price_per_token: u128,
	accept_free: bool,
	state: Mutex<BookState>,
	/// Most receipts held unsettled (back pressure on clients when the chain is unreachable).
	pub max_pending: usize,
}

#[derive(Default)]
struct BookState {
	pending: Vec<ChainSignedReceipt>,
	/// `(client, nonce)` of the pending receipts.
	pending_nonces: HashSet<([u8; 32], u64)>,
	/// Pending receipts per client.
	per_client: HashMap<[u8; 32], usize>,
	/// Highest nonce settled per client: anything at or below is a replay.
	settled_nonce: HashMap<[u8; 32], u64>,
	/// Clients whose receipts the chain refused: no more of theirs are taken (each refusal cost
	/// this server a transaction fee).
	refused_clients: HashSet<[u8; 32]>,
	settled: u64,
	refused: u64,
}

/// Most receipts of one client held unsettled.
pub const MAX_PENDING_PER_CLIENT: usize = 1_000;

/// What `/metrics` shows of the book.
#[derive(Clone, Copy, Debug, Default)]
pub struct BookStats {
	pub pending: usize,
	pub settled: u64,
	pub refused: u64,
}

/// Whether `signed` carries its client's sr25519 signature for the chain of `genesis`.
pub fn verify(genesis: &H256, signed: &ChainSignedReceipt) -> bool {
	let MultiSignature::Sr25519(signature) = &signed.signature else { return false };
	let payload = crate::chain::receipt_payload(genesis, &signed.receipt);
	let public = subxt_signer::sr25519::PublicKey(signed.receipt.client.0);
	subxt_signer::sr25519::verify(&subxt_signer::sr25519::Signature(*signature), payload, &public)
}

impl ReceiptBook {
	pub fn new(
		server: AccountId32,
		genesis: H256,
		price_per_token: u128,
		accept_free: bool,
	) -> Self {
		Self {
			server,
			genesis,
			price_per_token,
			accept_free,
			state: Mutex::new(BookState::default()),
			max_pending: 100_000,
		}
	}

	/// Checks and keeps a receipt posted by a client.
	pub fn accept(&self, bytes: &[u8]) -> Result<Receipt, ReceiptError> {
		let signed =
			ChainSignedReceipt::decode(&mut &bytes[..]).map_err(|_| ReceiptError::Malformed)?;
		let r = &signed.receipt;
		if r.server != self.server {
			return Err(ReceiptError::WrongServer);
		}
		if !verify(&self.genesis, &signed) {
			return Err(ReceiptError::BadSignature);
		}
		if r.free {
			if !self.accept_free || r.price_per_token != 0 {
				return Err(ReceiptError::FreeRefused);
			}
		} else if r.price_per_token < self.price_per_token {
			return Err(ReceiptError::Underpriced {
				offered: r.price_per_token,
				asked: self.price_per_token,
			});
		}
		let mut state = self.state.lock().expect("book lock");
		let client = r.client.0;
		if state.refused_clients.contains(&client) {
			return Err(ReceiptError::ClientRefused);
		}
		let last = state.settled_nonce.get(&client).copied().unwrap_or(0);
		if r.nonce <= last || state.pending_nonces.contains(&(client, r.nonce)) {
			return Err(ReceiptError::Replayed { nonce: r.nonce, last });
		}
		let mine = state.per_client.get(&client).copied().unwrap_or(0);
		if state.pending.len() >= self.max_pending || mine >= MAX_PENDING_PER_CLIENT {
			return Err(ReceiptError::Full);
		}
		state.pending_nonces.insert((client, r.nonce));
		state.per_client.insert(client, mine + 1);
		let receipt = r.clone();
		state.pending.push(signed);
		Ok(receipt)
	}

	/// Whether the chain refused a receipt of `client` before (its sessions are refused too).
	pub fn is_refused(&self, client: &AccountId32) -> bool {
		self.state.lock().expect("book lock").refused_clients.contains(&client.0)
	}

	pub fn stats(&self) -> BookStats {
		let state = self.state.lock().expect("book lock");
		BookStats { pending: state.pending.len(), settled: state.settled, refused: state.refused }
	}

	/// Settles up to `batch` pending receipts in one extrinsic. If the chain refuses the batch
	/// (say a client cannot pay), each receipt is settled alone and the refused ones dropped.
	/// Returns how many were settled.
	pub async fn settle(&self, chain: &Chain, batch: usize) -> Result<usize, ChainError> {
		let mut taken: Vec<ChainSignedReceipt> = {
			let mut state = self.state.lock().expect("book lock");
			let n = state.pending.len().min(batch);
			state.pending.drain(..n).collect()
		};
		if taken.is_empty() {
			return Ok(0);
		}
		// Receipts may arrive out of order; the chain wants each client's nonces increasing.
		taken.sort_by_key(|s| (s.receipt.client.0, s.receipt.nonce));
		let count = taken.len();
		match chain.settle(taken.clone()).await {
			Ok(_) => {
				self.done(&taken, true);
				Ok(count)
			}
			Err(e) if e.is_refusal() => {
				tracing::warn!("batch of {count} receipts refused ({e}); settling one by one");
				let mut settled = 0;
				for (i, receipt) in taken.iter().enumerate() {
					let client = receipt.receipt.client.0;
					if self.state.lock().expect("book lock").refused_clients.contains(&client) {
						self.done(std::slice::from_ref(receipt), false);
						continue;
					}
					match chain.settle(vec![receipt.clone()]).await {
						Ok(_) => {
							self.done(std::slice::from_ref(receipt), true);
							settled += 1;
						}
						// Settled already: a batch that landed while the node went away (its
						// answer was lost and it was queued again).
						Err(e)
							if matches!(
								e.pallet_error(),
								Some(RuntimeError::Inference(InferenceError::ReceiptReplayed))
							) =>
						{
							self.done(std::slice::from_ref(receipt), true);
							settled += 1;
						}
						Err(e) if e.is_refusal() => {
							tracing::warn!(
								"receipt nonce {} dropped, and its client refused from now on: {e}",
								receipt.receipt.nonce
							);
							self.state.lock().expect("book lock").refused_clients.insert(client);
							self.done(std::slice::from_ref(receipt), false);
						}
						Err(e) => {
							self.requeue(taken[i..].to_vec());
							return Err(e);
						}
					}
				}
				Ok(settled)
			}
			Err(e) => {
				self.requeue(taken);
				Err(e)
			}
		}
	}

	/// Receipts that left the book: settled on chain, or dropped.
	fn done(&self, receipts: &[ChainSignedReceipt], settled: bool) {
		let mut state = self.state.lock().expect("book lock");
		for s in receipts {
			let (client, nonce) = (s.receipt.client.0, s.receipt.nonce);
			state.pending_nonces.remove(&(client, nonce));
			if let Some(n) = state.per_client.get_mut(&client) {
				*n = n.saturating_sub(1);
				if *n == 0 {
					state.per_client.remove(&client);
				}
			}
			if settled {
				let last = state.settled_nonce.entry(client).or_insert(0);
				*last = (*last).max(nonce);
				state.settled += 1;
			} else {
				state.refused += 1;
			}
		}
	}

	fn requeue(&self, receipts: Vec<ChainSignedReceipt>) {
		let mut state = self.state.lock().expect("book lock");
		let rest = std::mem::take(&mut state.pending);
		state.pending = receipts;
		state.pending.extend(rest);
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::chain::receipt_payload;
	use subxt_signer::sr25519::dev;

	fn signed(nonce: u64, server: &AccountId32, price: u128, tamper: bool) -> Vec<u8> {
		let client = dev::bob();
		let mut receipt = Receipt {
			client: client.public_key().to_account_id(),
			server: *server,
			version: 1,
			nonce,
			tokens_in: 3,
			tokens_out: 4,
			price_per_token: price,
			free: false,
		};
		let signature = client.sign(&receipt_payload(&H256([1; 32]), &receipt));
		if tamper {
			receipt.tokens_out = 400;
		}
		codec::Encode::encode(&ChainSignedReceipt {
			receipt,
			signature: MultiSignature::Sr25519(signature.0),
		})
	}

	#[test]
	fn a_server_takes_its_own_signed_receipts_once_in_any_order() {
		let server = dev::charlie().public_key().to_account_id();
		let other = dev::dave().public_key().to_account_id();
		let book = ReceiptBook::new(server, H256([1; 32]), 10, true);
		assert!(book.accept(&signed(5, &server, 10, false)).is_ok());
		assert!(book.accept(&signed(3, &server, 10, false)).is_ok(), "out of order is fine");
		assert!(matches!(
			book.accept(&signed(5, &server, 10, false)),
			Err(ReceiptError::Replayed { .. })
		));
		assert_eq!(
			book.accept(&signed(6, &other, 10, false)).unwrap_err(),
			ReceiptError::WrongServer
		);
		assert_eq!(
			book.accept(&signed(7, &server, 10, true)).unwrap_err(),
			ReceiptError::BadSignature
		);
		assert!(matches!(
			book.accept(&signed(8, &server, 9, false)),
			Err(ReceiptError::Underpriced { .. })
		));
		assert_eq!(book.accept(b"junk").unwrap_err(), ReceiptError::Malformed);
		assert_eq!(book.stats().pending, 2);
	}
}
