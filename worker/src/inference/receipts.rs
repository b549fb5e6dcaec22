//! Pay-per-token receipts. A client (the gateway, with its key) signs one receipt per stage of
//! the route after each completion, naming the Merkle root of every stage's last signed
//! commitment of the request ([`super::commitments::route_root`]), and posts it to that stage's
//! `/v1/receipts` as SCALE bytes ([`PostedReceipt`]) with the stage's own commitment and its
//! proof; the server checks it (its own account, the client's signature, a nonce above the
//! client's last, at least its price, and a commitment it signed itself in the receipt's root)
//! and settles what it holds in batches with one `inference.settle`. The settled receipt, in
//! its block, says which answers were paid for.

use std::{
	collections::{HashMap, HashSet},
	sync::Mutex,
	time::{SystemTime, UNIX_EPOCH},
};

use codec::{Decode, Encode};
use subxt::utils::AccountId32;

use super::commitments::{ChunkSigner, SessionRefusal, SignedCommitment};
use crate::chain::{
	commitment_in_root, commitment_leaf, commitment_proof, verify_chunk_commitment, Chain,
	ChainError, ChainSignedReceipt, ChunkCommitment, InferenceError, MultiSignature, Receipt,
	RuntimeError, H256,
};

/// Longest proof a receipt's commitment may come with: routes of up to 2³² stages.
const MAX_PROOF_LEN: usize = 32;

/// What a client posts to a stage's `/v1/receipts` (SCALE): the signed receipt, and the stage's
/// own last signed commitment of the request with the proof that it is leaf `stage` of the
/// `stages`-leaf tree under the receipt's `commitments` root.
#[derive(Clone, Debug, Encode, Decode)]
pub struct PostedReceipt {
	pub signed: ChainSignedReceipt,
	pub commitment: ChunkCommitment,
	pub signature: [u8; 64],
	pub stage: u32,
	pub stages: u32,
	pub proof: Vec<H256>,
}

impl PostedReceipt {
	/// What a client posts to the stage whose last signed commitment of the request is
	/// `signed`, leaf `stage` of the route's `leaves`: `receipt` (whose `commitments` must be
	/// the leaves' root), signed by the client, with the proof of that leaf.
	pub fn new(
		receipt: ChainSignedReceipt,
		signed: &SignedCommitment,
		stage: u32,
		leaves: &[H256],
	) -> Self {
		Self {
			signed: receipt,
			commitment: signed.commitment.clone(),
			signature: signed.signature,
			stage,
			stages: leaves.len() as u32,
			proof: commitment_proof(leaves, stage),
		}
	}
}

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
	#[error("not a SCALE-encoded posted receipt")]
	Malformed,
	#[error("the commitment is not one this server signed, of the receipt's version")]
	CommitmentNotSigned,
	#[error("the receipt's commitments root does not hold this server's commitment at stage {0}")]
	CommitmentNotInRoot(u32),
	#[error("the receipt cannot pay for that session: {0}")]
	Session(SessionRefusal),
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

/// Refuses a nonce at or below its client's last settled one, or pending already.
fn check_fresh(state: &BookState, r: &Receipt) -> Result<(), ReceiptError> {
	let client = r.client.0;
	let last = state.settled_nonce.get(&client).copied().unwrap_or(0);
	if r.nonce <= last || state.pending_nonces.contains(&(client, r.nonce)) {
		return Err(ReceiptError::Replayed { nonce: r.nonce, last });
	}
	Ok(())
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

	/// Checks and keeps a receipt posted by a client ([`PostedReceipt`]'s SCALE bytes). With
	/// `sessions` (the stage's signer), the receipt must pay for a session of its client whose
	/// last commitment it names, and pays for it once.
	pub fn accept(
		&self,
		bytes: &[u8],
		sessions: Option<&ChunkSigner>,
	) -> Result<Receipt, ReceiptError> {
		let posted = PostedReceipt::decode(&mut &bytes[..]).map_err(|_| ReceiptError::Malformed)?;
		if posted.proof.len() > MAX_PROOF_LEN {
			return Err(ReceiptError::Malformed);
		}
		let signed = posted.signed;
		let r = &signed.receipt;
		if r.server != self.server {
			return Err(ReceiptError::WrongServer);
		}
		// A replayed receipt is refused before any signature is checked.
		check_fresh(&self.state.lock().expect("book lock"), r)?;
		if !verify(&self.genesis, &signed) {
			return Err(ReceiptError::BadSignature);
		}
		// The receipt pays for answers this server signed: its own commitment, in the root.
		let c = &posted.commitment;
		if c.server != self.server
			|| c.version != r.version
			|| !verify_chunk_commitment(&self.genesis, c, &posted.signature)
		{
			return Err(ReceiptError::CommitmentNotSigned);
		}
		let leaf = commitment_leaf(c);
		if !commitment_in_root(&r.commitments, posted.stages, posted.stage, leaf, &posted.proof) {
			return Err(ReceiptError::CommitmentNotInRoot(posted.stage));
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
		check_fresh(&state, r)?;
		let mine = state.per_client.get(&client).copied().unwrap_or(0);
		if state.pending.len() >= self.max_pending || mine >= MAX_PENDING_PER_CLIENT {
			return Err(ReceiptError::Full);
		}
		// Last: once its session is marked paid, the receipt is kept.
		if let Some(sessions) = sessions {
			sessions.pay(&c.session, leaf, &r.client).map_err(ReceiptError::Session)?;
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
	use crate::{
		chain::{chunk_commitment_payload, commitment_proof, commitments_root, receipt_payload},
		inference::commitments::{chunk_digest, decode_header, fold},
	};
	use subxt_signer::sr25519::{dev, Keypair};

	const GENESIS: H256 = H256([1; 32]);

	/// What `stage` signed last of a session, answering `transcript`.
	fn commitment(stage: &Keypair, transcript: u8) -> (ChunkCommitment, [u8; 64]) {
		let commitment = ChunkCommitment {
			server: stage.public_key().to_account_id(),
			version: 1,
			layers: (0, 2),
			session: [9; 16],
			positions: 7,
			transcript: [transcript; 32],
			bit_exact: true,
		};
		let signature = stage.sign(&chunk_commitment_payload(&GENESIS, &commitment)).0;
		(commitment, signature)
	}

	/// A two-stage route: Charlie's stage, then Dave's.
	fn route() -> Vec<H256> {
		[commitment(&dev::charlie(), 1), commitment(&dev::dave(), 2)]
			.iter()
			.map(|(c, _)| commitment_leaf(c))
			.collect()
	}

	/// Bob's receipt for the route's first stage (`server`) as Bob posts it; `change` edits the
	/// post before it is encoded (`tamper`: the tokens after Bob signed).
	fn posted(
		nonce: u64,
		server: &AccountId32,
		price: u128,
		tamper: bool,
		change: impl FnOnce(&mut PostedReceipt),
	) -> Vec<u8> {
		let client = dev::bob();
		let leaves = route();
		let mut receipt = Receipt {
			client: client.public_key().to_account_id(),
			server: *server,
			version: 1,
			nonce,
			tokens_in: 3,
			tokens_out: 4,
			price_per_token: price,
			free: false,
			commitments: commitments_root(&leaves),
		};
		let signature = client.sign(&receipt_payload(&GENESIS, &receipt));
		if tamper {
			receipt.tokens_out = 400;
		}
		let (commitment, stage_signature) = commitment(&dev::charlie(), 1);
		let mut post = PostedReceipt {
			signed: ChainSignedReceipt { receipt, signature: MultiSignature::Sr25519(signature.0) },
			commitment,
			signature: stage_signature,
			stage: 0,
			stages: 2,
			proof: commitment_proof(&leaves, 0),
		};
		change(&mut post);
		post.encode()
	}

	fn signed(nonce: u64, server: &AccountId32, price: u128, tamper: bool) -> Vec<u8> {
		posted(nonce, server, price, tamper, |_| {})
	}

	/// `client`'s receipt for a one-stage route (a spot check's replay, say): the stage's
	/// `commitment` (with its `signature`) is the root, the proof empty.
	fn one_stage(
		nonce: u64,
		server: &AccountId32,
		client: &Keypair,
		commitment: ChunkCommitment,
		signature: [u8; 64],
	) -> Vec<u8> {
		posted(nonce, server, 10, false, |p| {
			let receipt = &mut p.signed.receipt;
			(receipt.client, receipt.commitments) =
				(client.public_key().to_account_id(), commitment_leaf(&commitment));
			p.signed.signature =
				MultiSignature::Sr25519(client.sign(&receipt_payload(&GENESIS, receipt)).0);
			(p.commitment, p.signature) = (commitment, signature);
			(p.stage, p.stages, p.proof) = (0, 1, vec![]);
		})
	}

	#[test]
	fn a_server_takes_its_own_signed_receipts_once_in_any_order() {
		let server = dev::charlie().public_key().to_account_id();
		let other = dev::dave().public_key().to_account_id();
		let book = ReceiptBook::new(server, GENESIS, 10, true);
		assert!(book.accept(&signed(5, &server, 10, false), None).is_ok());
		assert!(book.accept(&signed(3, &server, 10, false), None).is_ok(), "out of order is fine");
		assert!(matches!(
			book.accept(&signed(5, &server, 10, false), None),
			Err(ReceiptError::Replayed { .. })
		));
		assert_eq!(
			book.accept(&signed(6, &other, 10, false), None).unwrap_err(),
			ReceiptError::WrongServer
		);
		assert_eq!(
			book.accept(&signed(7, &server, 10, true), None).unwrap_err(),
			ReceiptError::BadSignature
		);
		assert!(matches!(
			book.accept(&signed(8, &server, 9, false), None),
			Err(ReceiptError::Underpriced { .. })
		));
		assert_eq!(book.accept(b"junk", None).unwrap_err(), ReceiptError::Malformed);
		assert_eq!(book.stats().pending, 2);
	}

	#[test]
	fn a_receipt_not_naming_the_answers_this_server_signed_is_refused() {
		let server = dev::charlie().public_key().to_account_id();
		let book = ReceiptBook::new(server, GENESIS, 10, true);
		// Another answer of this server than the one in the root (say, from another request).
		let other_answer = posted(1, &server, 10, false, |p| {
			(p.commitment, p.signature) = commitment(&dev::charlie(), 3);
		});
		assert_eq!(
			book.accept(&other_answer, None).unwrap_err(),
			ReceiptError::CommitmentNotInRoot(0)
		);
		// The other stage's commitment, in the root but not this server's.
		let theirs = posted(2, &server, 10, false, |p| {
			(p.commitment, p.signature) = commitment(&dev::dave(), 2);
			p.stage = 1;
			p.proof = commitment_proof(&route(), 1);
		});
		assert_eq!(book.accept(&theirs, None).unwrap_err(), ReceiptError::CommitmentNotSigned);
		// This server's commitment with a signature that is not its own (a forged answer).
		let forged = posted(3, &server, 10, false, |p| p.signature = [7; 64]);
		assert_eq!(book.accept(&forged, None).unwrap_err(), ReceiptError::CommitmentNotSigned);
		// Of another version than the receipt pays for.
		let elsewhere = posted(4, &server, 10, false, |p| {
			p.commitment.version = 2;
			p.signature = dev::charlie().sign(&chunk_commitment_payload(&GENESIS, &p.commitment)).0;
		});
		assert_eq!(book.accept(&elsewhere, None).unwrap_err(), ReceiptError::CommitmentNotSigned);
		// The right commitment at another stage's place, or in a tree of another size.
		let moved = posted(5, &server, 10, false, |p| p.stage = 1);
		assert_eq!(book.accept(&moved, None).unwrap_err(), ReceiptError::CommitmentNotInRoot(1));
		let resized = posted(6, &server, 10, false, |p| p.stages = 3);
		assert_eq!(book.accept(&resized, None).unwrap_err(), ReceiptError::CommitmentNotInRoot(0));
		// A proof longer than any route's.
		let padded = posted(7, &server, 10, false, |p| p.proof = vec![H256::zero(); 33]);
		assert_eq!(book.accept(&padded, None).unwrap_err(), ReceiptError::Malformed);
		assert_eq!(book.stats().pending, 0, "nothing refused is kept");
		assert!(book.accept(&signed(8, &server, 10, false), None).is_ok());
	}

	#[test]
	fn a_one_stage_route_is_its_own_root() {
		// A spot check's replay is paid so: the peer's last commitment of the replay session
		// (ended before the receipt comes) is the root, the proof empty.
		let server = dev::charlie().public_key().to_account_id();
		let book = ReceiptBook::new(server, GENESIS, 10, true);
		let signer = ChunkSigner::new(dev::charlie(), GENESIS, 1, (0, 2), true);
		let bob = dev::bob().public_key().to_account_id();
		let header = signer.commit(&[5; 16], Some(&bob), 0, 3, b"replayed", b"answer");
		let (_, signature) = decode_header(&header).unwrap();
		signer.end(&[5; 16]);
		let commitment = ChunkCommitment {
			server,
			version: 1,
			layers: (0, 2),
			session: [5; 16],
			positions: 3,
			transcript: fold(&[0; 32], &chunk_digest(b"replayed", b"answer")),
			bit_exact: true,
		};
		assert!(commitment_proof(&[commitment_leaf(&commitment)], 0).is_empty());
		let replay = one_stage(1, &server, &dev::bob(), commitment, signature);
		assert!(book.accept(&replay, Some(&signer)).is_ok());
	}

	#[test]
	fn a_replayed_receipt_is_refused_before_its_signatures_are_checked() {
		let server = dev::charlie().public_key().to_account_id();
		let book = ReceiptBook::new(server, GENESIS, 10, true);
		assert!(book.accept(&signed(5, &server, 10, false), None).is_ok());
		// The same nonce again, its signature broken: refused as a replay (no signature was
		// checked), not as a bad signature.
		let replayed = signed(5, &server, 10, true);
		assert!(matches!(
			book.accept(&replayed, None).unwrap_err(),
			ReceiptError::Replayed { nonce: 5, .. }
		));
	}

	#[test]
	fn a_receipt_pays_once_for_a_session_its_client_was_given_the_last_answer_of() {
		let server = dev::charlie().public_key().to_account_id();
		let book = ReceiptBook::new(server, GENESIS, 10, true);
		let signer = ChunkSigner::new(dev::charlie(), GENESIS, 1, (0, 2), true);
		let bob = dev::bob().public_key().to_account_id();
		let dave = dev::dave().public_key().to_account_id();
		// Charlie answers two chunks of Bob's session [9; 16] and one of Dave's [8; 16].
		let chunk = |session: [u8; 16], client: &AccountId32, position: u32, answer: &[u8]| {
			let header = signer.commit(&session, Some(client), position, 1, b"req", answer);
			let (_, signature) = decode_header(&header).unwrap();
			signature
		};
		let first = chunk([9; 16], &bob, 0, b"a0");
		let last = chunk([9; 16], &bob, 1, b"a1");
		let daves = chunk([8; 16], &dave, 0, b"d0");
		let answered = |session: [u8; 16], positions: u32, digests: &[&[u8]]| ChunkCommitment {
			server,
			version: 1,
			layers: (0, 2),
			session,
			positions,
			transcript: digests.iter().fold([0; 32], |t, a| fold(&t, &chunk_digest(b"req", a))),
			bit_exact: true,
		};
		// Bob's receipt naming `commitment` (signed by Charlie with `signature`).
		let pay_for = |nonce: u64, commitment: ChunkCommitment, signature: [u8; 64]| {
			one_stage(nonce, &server, &dev::bob(), commitment, signature)
		};
		let refusal = |bytes: Vec<u8>| book.accept(&bytes, Some(&signer)).unwrap_err();
		// An earlier answer of the session: not what the session ended with.
		let earlier = pay_for(1, answered([9; 16], 1, &[b"a0"]), first);
		assert_eq!(refusal(earlier), ReceiptError::Session(SessionRefusal::NotLast));
		// Dave's session, in Bob's receipt.
		let not_bobs = pay_for(2, answered([8; 16], 1, &[b"d0"]), daves);
		assert_eq!(refusal(not_bobs), ReceiptError::Session(SessionRefusal::OtherClient));
		// The session's last answer, once.
		let whole = answered([9; 16], 2, &[b"a0", b"a1"]);
		assert!(book.accept(&pay_for(3, whole.clone(), last), Some(&signer)).is_ok());
		let again = pay_for(4, whole.clone(), last);
		assert_eq!(refusal(again), ReceiptError::Session(SessionRefusal::Paid));
		// Paid and ended: forgotten.
		signer.end(&[9; 16]);
		let after = pay_for(5, whole, last);
		assert_eq!(refusal(after), ReceiptError::Session(SessionRefusal::Unknown));
		// A receipt may come after its session ended.
		let daves_receipt =
			|nonce| one_stage(nonce, &server, &dev::dave(), answered([8; 16], 1, &[b"d0"]), daves);
		signer.end(&[8; 16]);
		assert!(book.accept(&daves_receipt(6), Some(&signer)).is_ok());
		assert_eq!(book.stats().pending, 2);
	}
}
