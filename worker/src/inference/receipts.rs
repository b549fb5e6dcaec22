//! Pay-per-token receipts. A client (the gateway, with its key) signs one receipt per server of
//! the route after each completion and posts it to that server's `/v1/receipts` as SCALE bytes;
//! the server checks it (its own account, the client's signature, a nonce above the client's
//! last, at least its price) and settles what it holds in batches with one `inference.settle`.

use std::{
	collections::HashMap,
	sync::Mutex,
	time::{SystemTime, UNIX_EPOCH},
};

use codec::Decode;
use subxt::utils::AccountId32;

use crate::chain::{Chain, ChainError, ChainSignedReceipt, MultiSignature, Receipt, H256};

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
	last_nonce: HashMap<[u8; 32], u64>,
	settled: u64,
	refused: u64,
}

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
		let last = state.last_nonce.get(&r.client.0).copied().unwrap_or(0);
		if r.nonce <= last {
			return Err(ReceiptError::Replayed { nonce: r.nonce, last });
		}
		if state.pending.len() >= self.max_pending {
			return Err(ReceiptError::Full);
		}
		state.last_nonce.insert(r.client.0, r.nonce);
		let receipt = r.clone();
		state.pending.push(signed);
		Ok(receipt)
	}

	pub fn stats(&self) -> BookStats {
		let state = self.state.lock().expect("book lock");
		BookStats { pending: state.pending.len(), settled: state.settled, refused: state.refused }
	}

	/// Settles up to `batch` pending receipts in one extrinsic. If the chain refuses the batch
	/// (say a client cannot pay), each receipt is settled alone and the refused ones dropped.
	/// Returns how many were settled.
	pub async fn settle(&self, chain: &Chain, batch: usize) -> Result<usize, ChainError> {
		let taken: Vec<ChainSignedReceipt> = {
			let mut state = self.state.lock().expect("book lock");
			let n = state.pending.len().min(batch);
			state.pending.drain(..n).collect()
		};
		if taken.is_empty() {
			return Ok(0);
		}
		let count = taken.len();
		let result = match chain.settle(taken.clone()).await {
			Ok(_) => Ok(count),
			Err(ChainError::Refused { reason, .. }) => {
				tracing::warn!("batch of {count} receipts refused ({reason}); settling one by one");
				let mut settled = 0;
				for (i, receipt) in taken.iter().enumerate() {
					match chain.settle(vec![receipt.clone()]).await {
						Ok(_) => settled += 1,
						Err(ChainError::Refused { reason, .. }) => {
							tracing::warn!(
								"receipt nonce {} dropped: {reason}",
								receipt.receipt.nonce
							);
							self.state.lock().expect("book lock").refused += 1;
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
		};
		if let Ok(n) = result {
			self.state.lock().expect("book lock").settled += n as u64;
		}
		result
	}

	fn requeue(&self, receipts: Vec<ChainSignedReceipt>) {
		let mut state = self.state.lock().expect("book lock");
		let rest = std::mem::take(&mut state.pending);
		state.pending = receipts;
		state.pending.extend(rest);
	}
}
