//! What a stage commits to. After each chunk it answers, a stage signs a [`ChunkCommitment`]:
//! the running hash of the session's chunks at this stage (each chunk's request and answer
//! bytes folded in, [`fold`]), the positions the session then holds, and whether it computes
//! bit-exactly (on the CPU). The coordinator folds the same bytes, checks the signature against
//! the server's announced account (an answer not so signed is a broken stage: routed around),
//! and keeps the latest one: 161 bytes per stage and session commit to every answer in it. A
//! spot check ([`super::checks`]) replays a stage's chunks elsewhere and compares the bits; what
//! the stage signed is the evidence against it. The receipts paying for a request carry the
//! Merkle root of its route's commitments ([`route_root`]): each stage takes a receipt only with
//! a proof that its own commitment is in it ([`super::receipts`]).

use std::{
	collections::HashMap,
	sync::Mutex,
	time::{Duration, Instant},
};

use subxt::utils::AccountId32;
use subxt_signer::sr25519::Keypair;

use crate::chain::{
	chunk_commitment_payload, commitment_leaf, commitments_root, verify_chunk_commitment,
	ChunkCommitment, VersionId, H256,
};

use super::protocol::SessionId;

/// The HTTP header of a stage's answer carrying its commitment: hex of one byte (1: bit-exact)
/// and the 64-byte signature.
pub const COMMITMENT_HEADER: &str = "x-blyan-commitment";
/// A session's transcript unused this long is forgotten.
const IDLE_TRANSCRIPT: Duration = Duration::from_secs(600);
/// Most transcripts kept before idle ones are pruned.
const MAX_TRANSCRIPTS: usize = 4_096;
/// An ended session's transcript is kept this long for its receipt when pruning.
const ENDED_GRACE: Duration = Duration::from_secs(60);
/// Pruning scans the transcripts at most this often (a full map of live sessions prunes nothing).
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The digest of one chunk: its request and answer as they crossed the wire.
pub fn chunk_digest(request: &[u8], answer: &[u8]) -> [u8; 32] {
	let (request, answer) =
		(sp_crypto_hashing::blake2_256(request), sp_crypto_hashing::blake2_256(answer));
	sp_crypto_hashing::blake2_256(&[request, answer].concat())
}

/// The transcript after a chunk of digest `digest` (a session's starts at zeros).
pub fn fold(transcript: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
	sp_crypto_hashing::blake2_256(&[*transcript, *digest].concat())
}

/// Encodes a commitment header's value.
pub fn encode_header(bit_exact: bool, signature: &[u8; 64]) -> String {
	let mut bytes = Vec::with_capacity(65);
	bytes.push(u8::from(bit_exact));
	bytes.extend_from_slice(signature);
	hex::encode(bytes)
}

/// Decodes a commitment header's value: `(bit_exact, signature)`.
pub fn decode_header(value: &str) -> Option<(bool, [u8; 64])> {
	let bytes = hex::decode(value.trim()).ok()?;
	let (flag, signature) = bytes.split_first()?;
	let bit_exact = match flag {
		0 => false,
		1 => true,
		_ => return None,
	};
	Some((bit_exact, signature.try_into().ok()?))
}

/// A signed commitment, as the coordinator keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedCommitment {
	pub commitment: ChunkCommitment,
	pub signature: [u8; 64],
}

impl SignedCommitment {
	/// Checks `signature` over the commitment the coordinator computed itself.
	pub fn verified(
		genesis: &H256,
		commitment: ChunkCommitment,
		signature: [u8; 64],
	) -> Option<Self> {
		verify_chunk_commitment(genesis, &commitment, &signature)
			.then_some(Self { commitment, signature })
	}

	/// As an answer shows it: every field of the commitment and the signature, so anyone
	/// holding it and the chain's genesis hash can check the stage's signature.
	pub fn to_json(&self) -> serde_json::Value {
		let c = &self.commitment;
		serde_json::json!({
			"server": c.server.to_string(), "version": c.version,
			"layers": [c.layers.0, c.layers.1], "session": hex::encode(c.session),
			"positions": c.positions, "transcript": hex::encode(c.transcript),
			"bit_exact": c.bit_exact, "signature": hex::encode(self.signature),
		})
	}

	/// Reads what [`Self::to_json`] wrote (the signature is not checked: see [`Self::verified`]).
	pub fn from_json(value: &serde_json::Value) -> Option<Self> {
		let bytes = |k: &str| hex::decode(value[k].as_str()?).ok();
		let number = |v: &serde_json::Value| v.as_u64();
		let commitment = ChunkCommitment {
			server: value["server"].as_str()?.parse().ok()?,
			version: number(&value["version"])?,
			layers: (
				number(&value["layers"][0])?.try_into().ok()?,
				number(&value["layers"][1])?.try_into().ok()?,
			),
			session: bytes("session")?.try_into().ok()?,
			positions: number(&value["positions"])?.try_into().ok()?,
			transcript: bytes("transcript")?.try_into().ok()?,
			bit_exact: value["bit_exact"].as_bool()?,
		};
		Some(Self { commitment, signature: bytes("signature")?.try_into().ok()? })
	}
}

/// The leaves of a route's commitments, one per stage in route order: what each stage signed
/// last of the request's session ([`commitment_leaf`]), zero for a stage that signed nothing.
pub fn route_leaves(route: &[Option<SignedCommitment>]) -> Vec<H256> {
	route
		.iter()
		.map(|s| s.as_ref().map_or(H256::zero(), |s| commitment_leaf(&s.commitment)))
		.collect()
}

/// The root a receipt for the request carries: every stage's answers, in route order.
pub fn route_root(route: &[Option<SignedCommitment>]) -> H256 {
	commitments_root(&route_leaves(route))
}

/// The stage side: folds each session's chunks and signs.
pub struct ChunkSigner {
	keypair: Keypair,
	genesis: H256,
	version: VersionId,
	layers: (u16, u16),
	bit_exact: bool,
	transcripts: Mutex<Transcripts>,
}

/// The sessions a stage signed for, and when they were last pruned.
struct Transcripts {
	sessions: HashMap<SessionId, Transcript>,
	pruned: Instant,
}

impl Transcripts {
	/// When full, forgets sessions idle for [`IDLE_TRANSCRIPT`], and ended ones whose receipt
	/// did not come within [`ENDED_GRACE`].
	fn prune(&mut self) {
		self.prune_at(Instant::now());
	}

	fn prune_at(&mut self, now: Instant) {
		let since = |then: Instant| now.saturating_duration_since(then);
		if self.sessions.len() < MAX_TRANSCRIPTS || since(self.pruned) < PRUNE_EVERY {
			return;
		}
		self.pruned = now;
		self.sessions.retain(|_, t| {
			let idle = since(t.used);
			idle < IDLE_TRANSCRIPT && !(t.ended && idle >= ENDED_GRACE)
		});
	}
}

/// A session's transcript at a stage.
struct Transcript {
	/// Positions the session holds.
	positions: u32,
	hash: [u8; 32],
	used: Instant,
	/// Whom the session was opened for (`None` at a stage that admits anyone).
	client: Option<AccountId32>,
	/// The leaf ([`commitment_leaf`]) of the last commitment signed: what a receipt pays for.
	last: H256,
	/// A receipt paid for the session.
	paid: bool,
	/// The client ended the session (`used`: then): kept for its receipt until paid, or pruned
	/// ([`Transcripts::prune`]).
	ended: bool,
}

/// Why a receipt cannot pay for the session its commitment names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
	#[error("no session here has that commitment's id (never opened, paid and ended, pruned, or before a restart)")]
	Unknown,
	#[error("the session was opened by another client")]
	OtherClient,
	#[error("not the last commitment this stage signed of the session")]
	NotLast,
	/// (Once the session ended too, it is forgotten: [`Self::Unknown`].)
	#[error("a receipt paid for the session already")]
	Paid,
}

impl ChunkSigner {
	pub fn new(
		keypair: Keypair,
		genesis: H256,
		version: VersionId,
		layers: (u16, u16),
		bit_exact: bool,
	) -> Self {
		Self {
			keypair,
			genesis,
			version,
			layers,
			bit_exact,
			transcripts: Mutex::new(Transcripts {
				sessions: HashMap::new(),
				pruned: Instant::now(),
			}),
		}
	}

	pub fn server(&self) -> AccountId32 {
		self.keypair.public_key().to_account_id()
	}

	/// Folds a chunk the stage answered for `client` (`position`: positions held before it,
	/// `rows`: its positions) and signs the transcript: the header's value.
	pub fn commit(
		&self,
		session: &SessionId,
		client: Option<&AccountId32>,
		position: u32,
		rows: u32,
		request: &[u8],
		answer: &[u8],
	) -> String {
		let digest = chunk_digest(request, answer);
		let mut transcripts = self.transcripts.lock().expect("transcripts lock");
		transcripts.prune();
		let all = &mut transcripts.sessions;
		// A session's first chunk starts it; the stage refused any chunk out of order.
		let previous = match all.get(session) {
			Some(t) if position > 0 && t.positions == position => t.hash,
			_ => [0; 32],
		};
		let transcript = fold(&previous, &digest);
		let commitment = ChunkCommitment {
			server: self.server(),
			version: self.version,
			layers: self.layers,
			session: *session,
			positions: position + rows,
			transcript,
			bit_exact: self.bit_exact,
		};
		all.insert(
			*session,
			Transcript {
				positions: position + rows,
				hash: transcript,
				used: Instant::now(),
				client: client.copied(),
				last: commitment_leaf(&commitment),
				paid: false,
				ended: false,
			},
		);
		drop(transcripts);
		let signature = self.keypair.sign(&chunk_commitment_payload(&self.genesis, &commitment)).0;
		encode_header(self.bit_exact, &signature)
	}

	/// A receipt of `client` pays for `session`, once: the session must be this client's (where
	/// the stage knows its clients), and `leaf` ([`commitment_leaf`]) that of the last commitment
	/// this stage signed of it. So a receipt names answers its client was given, and pays for a
	/// session only once.
	pub fn pay(
		&self,
		session: &SessionId,
		leaf: H256,
		client: &AccountId32,
	) -> Result<(), SessionRefusal> {
		let all = &mut self.transcripts.lock().expect("transcripts lock").sessions;
		let t = all.get_mut(session).ok_or(SessionRefusal::Unknown)?;
		if t.client.as_ref().is_some_and(|c| c != client) {
			return Err(SessionRefusal::OtherClient);
		}
		if t.last != leaf {
			return Err(SessionRefusal::NotLast);
		}
		if t.paid {
			return Err(SessionRefusal::Paid);
		}
		t.paid = true;
		if t.ended {
			all.remove(session);
		}
		Ok(())
	}

	/// The session is over: forgotten once paid (a receipt may come after its end).
	pub fn end(&self, session: &SessionId) {
		let all = &mut self.transcripts.lock().expect("transcripts lock").sessions;
		match all.get_mut(session) {
			Some(t) if !t.paid => {
				t.ended = true;
				t.used = Instant::now();
			}
			Some(_) => {
				all.remove(session);
			}
			None => {}
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use subxt_signer::sr25519::dev;

	#[test]
	fn a_stages_signature_commits_to_every_answer_of_the_session() {
		let genesis = H256([5; 32]);
		let signer = ChunkSigner::new(dev::charlie(), genesis, 2, (0, 2), true);
		let session = [1; 16];
		let (first, second) = ((b"req-0".as_slice(), b"ans-0"), (b"req-1".as_slice(), b"ans-1"));
		signer.commit(&session, None, 0, 3, first.0, first.1);
		let header = signer.commit(&session, None, 3, 1, second.0, second.1);
		let (bit_exact, signature) = decode_header(&header).unwrap();
		assert!(bit_exact);
		// The coordinator folds what it sent and received.
		let transcript = fold(
			&fold(&[0; 32], &chunk_digest(first.0, first.1)),
			&chunk_digest(second.0, second.1),
		);
		let commitment = |transcript, positions| ChunkCommitment {
			server: dev::charlie().public_key().to_account_id(),
			version: 2,
			layers: (0, 2),
			session,
			positions,
			transcript,
			bit_exact: true,
		};
		assert!(
			SignedCommitment::verified(&genesis, commitment(transcript, 4), signature).is_some()
		);
		// Another first answer, the same second one: the signature does not cover it.
		let other = fold(
			&fold(&[0; 32], &chunk_digest(first.0, b"ans-X")),
			&chunk_digest(second.0, second.1),
		);
		assert!(SignedCommitment::verified(&genesis, commitment(other, 4), signature).is_none());
		assert!(
			SignedCommitment::verified(&genesis, commitment(transcript, 5), signature).is_none()
		);
		assert!(SignedCommitment::verified(&H256([6; 32]), commitment(transcript, 4), signature)
			.is_none());
		assert_eq!(decode_header("02"), None);
		assert_eq!(decode_header(&hex::encode([1u8; 10])), None);
	}

	#[test]
	fn a_full_stage_forgets_ended_unpaid_sessions_after_a_minute_and_idle_ones_after_ten() {
		let signer = ChunkSigner::new(dev::charlie(), H256([5; 32]), 2, (0, 2), true);
		let client = dev::bob().public_key().to_account_id();
		let (open, ended) = ([1; 16], [2; 16]);
		for session in [open, ended] {
			signer.commit(&session, Some(&client), 0, 3, b"request", b"answer");
		}
		signer.end(&ended);
		let last =
			|session| signer.transcripts.lock().unwrap().sessions.get(&session).map(|t| t.last);
		let ended_leaf = last(ended).expect("an ended session is kept for its receipt");
		let started = Instant::now();
		let mut transcripts = signer.transcripts.lock().unwrap();
		// Sessions in use since `started`, filling the map up to `len`.
		let fill = |transcripts: &mut Transcripts, len: usize| {
			let mut i = 0u64;
			while transcripts.sessions.len() < len {
				let mut id = [0xff; 16];
				id[..8].copy_from_slice(&i.to_le_bytes());
				i += 1;
				let t = Transcript {
					positions: 3,
					hash: [0; 32],
					used: started,
					client: Some(client),
					last: H256::zero(),
					paid: false,
					ended: false,
				};
				transcripts.sessions.entry(id).or_insert(t);
			}
		};
		// Short of full, nothing is forgotten, however old.
		fill(&mut transcripts, MAX_TRANSCRIPTS - 1);
		transcripts.prune_at(started + IDLE_TRANSCRIPT * 2);
		assert_eq!(transcripts.sessions.len(), MAX_TRANSCRIPTS - 1);
		// Full: within its grace an ended session stays; a scan within a second of the last
		// one does nothing.
		fill(&mut transcripts, MAX_TRANSCRIPTS);
		let ended_at = transcripts.sessions[&ended].used;
		let almost = ended_at + ENDED_GRACE - Duration::from_millis(200);
		transcripts.prune_at(almost);
		assert!(transcripts.sessions.contains_key(&ended));
		transcripts.prune_at(almost + PRUNE_EVERY / 2);
		assert!(transcripts.sessions.contains_key(&ended), "scanned a moment ago");
		transcripts.prune_at(almost + PRUNE_EVERY * 2);
		assert!(!transcripts.sessions.contains_key(&ended), "ended and unpaid for a minute");
		assert_eq!(transcripts.sessions.len(), MAX_TRANSCRIPTS - 1, "the others are in use");
		drop(transcripts);
		assert_eq!(signer.pay(&ended, ended_leaf, &client), Err(SessionRefusal::Unknown));
		// The open session is paid for, and kept while in use; idle ten minutes, all go.
		let open_leaf = last(open).unwrap();
		assert_eq!(signer.pay(&open, open_leaf, &client), Ok(()));
		let mut transcripts = signer.transcripts.lock().unwrap();
		fill(&mut transcripts, MAX_TRANSCRIPTS);
		transcripts.prune_at(started + IDLE_TRANSCRIPT / 2);
		assert!(transcripts.sessions.contains_key(&open));
		transcripts.prune_at(started + IDLE_TRANSCRIPT + PRUNE_EVERY);
		assert!(transcripts.sessions.is_empty());
	}
}
