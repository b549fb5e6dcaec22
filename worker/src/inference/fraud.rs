//! Fraud proofs of served answers, on chain. A spot check ([`super::checks`]) that catches a
//! stage leaves the coordinator holding what the stage signed last of the session (its
//! [`ChunkCommitment`]: the running hash of every request and answer) and those requests and
//! answers. The [`Challenger`] publishes them as a [`SessionRecord`] on IPFS, challenges the
//! commitment on chain (holding the challenge bond), has arbiters drawn from the next block and
//! closes the challenge once they decided. An arbiter ([`arbitrate`]) fetches the record, checks
//! that it is what the server signed ([`SessionRecord::matches`]), loads the committed layers
//! (each checked against its Merkle root) and re-executes every chunk on the CPU, whose answers
//! are the same bits on every machine: a single answer of other bits is a proven lie, and the
//! server's bond is slashed.

use std::{
	collections::{BTreeMap, HashSet},
	sync::Arc,
	time::Duration,
};

use anyhow::{anyhow, bail, Context as _, Result};
use codec::{Decode, Encode};
use subxt::utils::AccountId32;
use tracing::{info, warn};

use crate::{
	chain::{
		blyan::inference::events::{ChallengeClosed, Challenged},
		Chain, ChainError, ChainInferenceChallenge, ChallengeOutcome, ChunkCommitment,
		InferenceError, RuntimeError,
	},
	content,
	ml::device::ComputeDevice,
	storage::{Ipfs, StorageError},
};

use super::{
	commitments::{chunk_digest, fold},
	protocol::{self, ForwardRequest},
	route::HopRecord,
	service::span_layers,
	stage,
};

/// Largest session record an arbiter fetches: a long session's hidden states at the widest
/// model, or its logits at the last stage, are tens of MiB.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// How long an arbiter waits for a session record: the challenger pinned it and must serve it.
const RECORD_TIMEOUT: Duration = Duration::from_secs(30);

/// One chunk as it crossed the wire: the request's bytes and the answer's.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct RecordedChunk {
	pub request: Vec<u8>,
	pub answer: Vec<u8>,
}

/// Every chunk a stage answered in one session, in order: with its signed commitment, the
/// evidence of a challenge (SCALE-encoded on IPFS).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SessionRecord {
	pub version: u64,
	pub layers: (u16, u16),
	pub session: [u8; 16],
	pub chunks: Vec<RecordedChunk>,
}

/// Why a record is not what a commitment signed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
	#[error("the record names version {record}, the commitment {committed}")]
	Version { record: u64, committed: u64 },
	#[error("the record names layers {record:?}, the commitment {committed:?}")]
	Layers { record: (u16, u16), committed: (u16, u16) },
	#[error("the record is of another session than the commitment")]
	Session,
	#[error("the record holds no chunk")]
	Empty,
	#[error("chunk {0} is not a stage request: {1}")]
	Request(usize, String),
	#[error("chunk {chunk} starts at position {position}, not {expected}")]
	Position { chunk: usize, position: u32, expected: u32 },
	#[error("the chunks end at position {record}, the commitment at {committed}")]
	Positions { record: u32, committed: u32 },
	#[error("the chunks do not hash to the signed transcript")]
	Transcript,
}

impl SessionRecord {
	/// The record of what `hop` answered in a session (kept for a spot check), if it kept every
	/// answer and what the stage signed last.
	pub fn of(hop: &HopRecord) -> Option<Self> {
		let signed = hop.signed.as_ref()?;
		if hop.answers.len() != hop.inputs.len() {
			return None;
		}
		let c = &signed.commitment;
		let chunks = hop
			.inputs
			.iter()
			.zip(&hop.answers)
			.map(|((position, input), answer)| {
				let request = ForwardRequest {
					session: c.session,
					position: *position,
					input: input.clone(),
				};
				RecordedChunk {
					request: protocol::encode_request(&request),
					answer: answer.to_vec(),
				}
			})
			.collect();
		Some(Self { version: c.version, layers: c.layers, session: c.session, chunks })
	}

	/// Checks that this is what `commitment` signed: its version, layers and session, chunks
	/// following each other from position 0, hashing to the signed transcript and positions.
	/// Returns the decoded requests.
	pub fn matches(
		&self,
		commitment: &ChunkCommitment,
	) -> Result<Vec<ForwardRequest>, RecordError> {
		if self.version != commitment.version {
			return Err(RecordError::Version {
				record: self.version,
				committed: commitment.version,
			});
		}
		if self.layers != commitment.layers {
			return Err(RecordError::Layers { record: self.layers, committed: commitment.layers });
		}
		if self.session != commitment.session {
			return Err(RecordError::Session);
		}
		if self.chunks.is_empty() {
			return Err(RecordError::Empty);
		}
		let (mut transcript, mut expected) = ([0u8; 32], 0u32);
		let mut requests = Vec::with_capacity(self.chunks.len());
		for (i, chunk) in self.chunks.iter().enumerate() {
			let request = protocol::decode_request(&chunk.request)
				.map_err(|e| RecordError::Request(i, e.to_string()))?;
			if request.session != self.session {
				return Err(RecordError::Session);
			}
			if request.position != expected {
				return Err(RecordError::Position {
					chunk: i,
					position: request.position,
					expected,
				});
			}
			expected = expected.saturating_add(request.input.rows() as u32);
			transcript = fold(&transcript, &chunk_digest(&chunk.request, &chunk.answer));
			requests.push(request);
		}
		if expected != commitment.positions {
			return Err(RecordError::Positions {
				record: expected,
				committed: commitment.positions,
			});
		}
		if transcript != commitment.transcript {
			return Err(RecordError::Transcript);
		}
		Ok(requests)
	}
}

/// How an arbiter found a challenged session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
	/// Chunk `at`'s answer is not what the committed layers give: the server lied.
	Wrong { at: usize },
	/// Every answer is what the layers give.
	Right,
	/// The evidence is not what the server signed, or cannot be read: the challenger's fault.
	BadEvidence(String),
}

impl Finding {
	/// What the arbiter reports on chain: whether the server answered wrong.
	pub fn wrong(&self) -> bool {
		matches!(self, Finding::Wrong { .. })
	}
}

/// Re-executes `requests` in order on `stage` (a CPU stage of the committed layers) and compares
/// each answer's bytes with the recorded ones.
pub fn replay(
	stage: &stage::LocalStage,
	record: &SessionRecord,
	requests: Vec<ForwardRequest>,
) -> Result<Finding> {
	let session = record.session;
	let mut finding = Finding::Right;
	for (at, (request, chunk)) in requests.into_iter().zip(&record.chunks).enumerate() {
		let out = stage
			.forward(session, request.position as usize, request.input)
			.map_err(|e| anyhow!("re-executing chunk {at}: {e}"))?;
		if protocol::encode_activations(&out) != chunk.answer {
			finding = Finding::Wrong { at };
			break;
		}
	}
	stage.end(&session);
	Ok(finding)
}

/// An arbiter's examination of challenge `challenge`: the record fetched from IPFS and checked
/// against the signed commitment, then re-executed on the committed version's layers. An error
/// is this arbiter's own trouble (a node or IPFS unreachable, layers missing): it tries again.
pub async fn examine(
	chain: &Chain,
	ipfs: &Ipfs,
	challenge: &ChainInferenceChallenge,
) -> Result<Finding> {
	let commitment = challenge.commitment.clone();
	let cid = String::from_utf8_lossy(&challenge.evidence.0).to_string();
	// Content nobody serves shows as a timeout, as does a slow network: the arbiter tries
	// again, and holds it against the challenger only near the deadline ([`Arbiter::pass`]).
	let bytes = match ipfs.with_timeout(RECORD_TIMEOUT).cat(&cid, MAX_RECORD_BYTES).await {
		Ok(bytes) => bytes,
		Err(e @ (StorageError::TooLarge { .. } | StorageError::NotACid(_))) => {
			return Ok(Finding::BadEvidence(format!("{cid}: {e}")))
		}
		// This arbiter's own daemon being down is its own trouble; anything else the daemon
		// answers (a timeout, an error for a CID that is no file) is the record's.
		Err(e @ StorageError::Unreachable { .. }) => {
			return Err(e).context("fetching the session record")
		}
		Err(e) => return Err(RecordUnavailable(e.to_string()).into()),
	};
	let record = match SessionRecord::decode(&mut &bytes[..]) {
		Ok(record) => record,
		Err(e) => return Ok(Finding::BadEvidence(format!("not a session record: {e}"))),
	};
	let requests = match record.matches(&commitment) {
		Ok(requests) => requests,
		Err(e) => return Ok(Finding::BadEvidence(e.to_string())),
	};
	let info = chain.version(commitment.version).await?.context("the version is gone")?;
	let config = content::model_config(chain, ipfs, info.model).await?;
	let (start, end) = (usize::from(commitment.layers.0), usize::from(commitment.layers.1));
	if end > config.layer_count() {
		return Ok(Finding::BadEvidence(format!(
			"layers {start}..{end}: the model has {}",
			config.layer_count()
		)));
	}
	let layers = span_layers(chain, ipfs, &config, commitment.version, start, end).await?;
	let stage = stage::start_on(ComputeDevice::Cpu, &config, start, layers, 1, Duration::ZERO)?;
	tokio::task::spawn_blocking(move || replay(&stage, &record, requests))
		.await
		.context("the replay panicked")?
}

/// The session record could not be fetched in time.
#[derive(Debug, thiserror::Error)]
#[error("the session record is unavailable: {0}")]
pub struct RecordUnavailable(String);

/// Whether `e` is the pallet's `error`.
fn is(e: &ChainError, error: fn(&InferenceError) -> bool) -> bool {
	matches!(e.pallet_error(), Some(RuntimeError::Inference(inner)) if error(inner))
}

/// Where a gateway stands with a server it caught.
enum Case<R> {
	/// `challenges` of it open on chain (none yet: one is being made), and the latest catch
	/// made meanwhile.
	Open { challenges: u32, kept: Option<R> },
	/// A challenge proved a lie of it: later catches are not challenged.
	Proven,
}

/// A gateway's cases, by server (`R`: what a catch holds). Checks running side by side can
/// catch one stage several times; one proven challenge is enough (at the default `fraud_slash`
/// it takes the whole bond and ends the announcement, so the chain would refuse or slash nothing
/// for the others, each at a fee).
pub struct Cases<R> {
	cases: std::sync::Mutex<BTreeMap<AccountId32, Case<R>>>,
}

impl<R> Default for Cases<R> {
	fn default() -> Self {
		Self { cases: Default::default() }
	}
}

impl<R> Cases<R> {
	/// Takes up `server`'s case with `caught`, handed back to be challenged now. While a
	/// challenge of it is open, `caught` is kept instead (the latest catch, challenged if the
	/// open ones are not proven); once a lie of it is proven, it is dropped.
	pub fn pursue(&self, server: AccountId32, caught: R) -> Option<R> {
		let mut cases = self.cases.lock().expect("cases lock");
		match cases.entry(server).or_insert(Case::Open { challenges: 0, kept: None }) {
			Case::Open { challenges: open @ 0, .. } => {
				*open = 1;
				Some(caught)
			}
			Case::Open { kept, .. } => {
				*kept = Some(caught);
				None
			}
			Case::Proven => None,
		}
	}

	/// Ends one challenge of `server`: a proven lie closes the case. Otherwise, once none of
	/// its challenges is open, the catch kept meanwhile is handed back to be challenged, or,
	/// with none, the case is dropped (a later catch challenges the server again).
	pub fn closed(&self, server: &AccountId32, proven: bool) -> Option<R> {
		let mut cases = self.cases.lock().expect("cases lock");
		if proven {
			cases.insert(*server, Case::Proven);
			return None;
		}
		let Some(Case::Open { challenges, kept }) = cases.get_mut(server) else { return None };
		*challenges = challenges.saturating_sub(1);
		if *challenges > 0 {
			return None;
		}
		match kept.take() {
			Some(next) => {
				*challenges = 1;
				Some(next)
			}
			None => {
				cases.remove(server);
				None
			}
		}
	}

	/// A challenge of `server` made before this process started is open (and followed).
	pub fn following(&self, server: AccountId32) {
		let mut cases = self.cases.lock().expect("cases lock");
		if let Case::Open { challenges, .. } =
			cases.entry(server).or_insert(Case::Open { challenges: 0, kept: None })
		{
			*challenges += 1;
		}
	}
}

/// Challenges caught stages on chain, for a gateway.
pub struct Challenger {
	chain: Arc<tokio::sync::RwLock<Chain>>,
	ipfs: Ipfs,
	poll: Duration,
	/// Held around each transaction: challenges followed at once would otherwise sign with the
	/// same nonce (it is read from the chain), and all but one be refused.
	submitting: tokio::sync::Mutex<()>,
	cases: Cases<HopRecord>,
}

impl Challenger {
	pub fn new(chain: Arc<tokio::sync::RwLock<Chain>>, ipfs: Ipfs, poll: Duration) -> Self {
		let submitting = tokio::sync::Mutex::new(());
		Self { chain, ipfs, poll, submitting, cases: Default::default() }
	}

	/// Takes up `server`'s case with `caught` ([`Cases::pursue`]).
	pub fn pursue(&self, server: AccountId32, caught: HopRecord) -> Option<HopRecord> {
		self.cases.pursue(server, caught)
	}

	/// Ends one challenge of `server` ([`Cases::closed`]): the catch to challenge next, if any.
	pub fn case_closed(
		&self,
		server: &AccountId32,
		closed: &Result<ChallengeClosed>,
	) -> Option<HopRecord> {
		let proven = matches!(closed, Ok(c) if c.outcome == ChallengeOutcome::FraudProven);
		self.cases.closed(server, proven)
	}

	/// Challenges what `hop` signed, publishing its record, and sees the challenge through
	/// (the chain draws its arbiters): closed once decided or past its deadline. Returns how it
	/// ended.
	pub async fn challenge(&self, hop: &HopRecord) -> Result<ChallengeClosed> {
		let id = self.open(hop).await?;
		self.see_through(id).await
	}

	/// This account's challenges still open (a gateway restarted while following them), each
	/// server's case taken up again so that a new catch of it is not challenged twice.
	pub async fn open_challenges(&self) -> Result<Vec<(u32, AccountId32)>> {
		let chain = self.chain.read().await.clone();
		let me = *chain.account();
		let open = chain.inference_challenges().await?;
		let mine: Vec<_> = open
			.into_iter()
			.filter(|(_, c)| c.challenger == me)
			.map(|(id, c)| (id, c.commitment.server))
			.collect();
		for (_, server) in &mine {
			self.cases.following(*server);
		}
		Ok(mine)
	}

	/// Publishes `hop`'s record and challenges what it signed; the challenge's id.
	async fn open(&self, hop: &HopRecord) -> Result<u32> {
		let signed = hop.signed.clone().context("the stage signed nothing")?;
		let record = SessionRecord::of(hop).context("the session's answers were not kept")?;
		record.matches(&signed.commitment).context("the record is not what the stage signed")?;
		let cid = self.ipfs.add(record.encode(), true, false).await?;
		let chain = self.chain.read().await.clone();
		let events = {
			let _one_at_a_time = self.submitting.lock().await;
			chain.challenge_inference(&signed.commitment, &signed.signature, &cid).await?
		};
		let challenged = events.find_first::<Challenged>().context("no Challenged event")??;
		let id = challenged.challenge;
		info!(
			challenge = id,
			server = %challenged.server,
			"challenged what the server signed of session {}; evidence {cid}",
			hex::encode(challenged.session)
		);
		Ok(id)
	}

	/// Closes challenge `id` once its arbiters (drawn by the chain in the block after it)
	/// decided, or its deadline passed.
	pub async fn see_through(&self, id: u32) -> Result<ChallengeClosed> {
		// Transactions the pool refused, or lost with the connection, in a row: a passing
		// trouble (a nonce, a node restarting) is tried again, a lasting one ends the follow-up.
		let mut refused = 0u32;
		let mut again = |e: ChainError, what: &'static str| -> Result<()> {
			refused += 1;
			if refused > MAX_RETRIES {
				return Err(e).context(what);
			}
			Ok(())
		};
		loop {
			tokio::time::sleep(self.poll).await;
			let chain = self.chain.read().await.clone();
			// Closing fails (and costs a fee) until the arbiters decided or the deadline passed.
			let ready = match (chain.inference_challenge(id).await, chain.finalized_number().await)
			{
				(Ok(Some(c)), Ok(now)) => closable(&c, now),
				(Ok(None), _) => bail!("challenge {id} was closed by someone else"),
				_ => false,
			};
			if !ready {
				continue;
			}
			let closed = {
				let _one_at_a_time = self.submitting.lock().await;
				chain.close_inference_challenge(id).await
			};
			match closed {
				Ok(events) => {
					let closed = events
						.find_first::<ChallengeClosed>()
						.context("no ChallengeClosed event")??;
					return Ok(closed);
				}
				Err(e) if is(&e, |e| matches!(e, InferenceError::NotDecided)) => continue,
				Err(e) if is(&e, |e| matches!(e, InferenceError::UnknownChallenge)) => {
					bail!("challenge {id} was closed by someone else")
				}
				// Not the pallet's refusal (the pool's, a lost connection): try again.
				Err(e) if e.pallet_error().is_none() => again(e, "closing the challenge")?,
				Err(e) => return Err(e).context("closing the challenge"),
			}
		}
	}
}

/// Whether two thirds of a challenge's seats reported the same way (the pallet's rule).
pub fn decided(challenge: &ChainInferenceChallenge) -> bool {
	decision(challenge).is_some()
}

/// What two thirds of a challenge's seats reported (`true`: the server answered wrong), if they
/// did (the pallet's rule).
pub fn decision(challenge: &ChainInferenceChallenge) -> Option<bool> {
	let seats = &challenge.arbiters.as_ref()?.0;
	let count = |wrong: bool| seats.iter().filter(|(_, r)| *r == Some(wrong)).count();
	blyan_primitives::inference::arbitration_decision(seats.len(), count(true), count(false))
}

/// Whether the pallet would close a challenge at block `now`: its arbiters drawn, and decided
/// or past its deadline (an attempt before that fails, and costs a fee).
pub fn closable(challenge: &ChainInferenceChallenge, now: u32) -> bool {
	challenge.arbiters.is_some() && (decided(challenge) || now >= challenge.deadline)
}

/// Transactions of a challenge's follow-up refused in a row (by the pool, or lost with the
/// connection) before the challenger gives up on it (a restart resumes it).
const MAX_RETRIES: u32 = 60;

/// Blocks before a challenge's deadline at which an arbiter that still cannot fetch the session
/// record holds it against the challenger (who had to keep it available).
const UNAVAILABLE_MARGIN: u32 = 20;

/// A verifier's part in inference challenges: it examines and reports those it was drawn for
/// (a report that agrees with the decision is paid, silence at the deadline penalised).
/// (Closing is the parties' business: the challenger is paid by it, a server refuted gets its
/// bond back.)
#[derive(Default)]
pub struct Arbiter {
	/// Challenges this verifier reported on: not examined again.
	reported: HashSet<u32>,
}

impl Arbiter {
	/// One pass over the open challenges. A challenge whose examination failed is tried again on
	/// the next pass; only a lost node connection ends the pass with an error.
	pub async fn pass(&mut self, chain: &Chain, ipfs: &Ipfs) -> Result<()> {
		let me = *chain.account();
		let now = chain.finalized_number().await?;
		let open = chain.inference_challenges().await?;
		self.reported.retain(|id| open.iter().any(|(open, _)| open == id));
		for (id, challenge) in open {
			if now >= challenge.deadline {
				continue;
			}
			// Not drawn yet (the chain draws in the block after the challenge).
			let Some(seats) = &challenge.arbiters else { continue };
			let mine = seats.0.iter().find(|(a, _)| *a == me);
			if mine.is_none_or(|(_, report)| report.is_some()) || self.reported.contains(&id) {
				continue;
			}
			let finding = match examine(chain, ipfs, &challenge).await {
				Ok(finding) => finding,
				Err(e) if crate::is_connection_error(&e) => return Err(e),
				Err(e)
					if e.is::<RecordUnavailable>()
						&& now + UNAVAILABLE_MARGIN >= challenge.deadline =>
				{
					// Two thirds found a wrong answer in the record (so it was available to
					// them): holding it against the challenger now would only be a dissent.
					if decision(&challenge) == Some(true) {
						warn!(
							challenge = id,
							"the record is unavailable; decided without this seat"
						);
						self.reported.insert(id);
						continue;
					}
					Finding::BadEvidence(e.to_string())
				}
				Err(e) => {
					warn!(challenge = id, "examining the challenged session: {e:#}; trying again");
					continue;
				}
			};
			info!(challenge = id, server = %challenge.commitment.server, "arbitration: {finding:?}");
			match chain.arbitrate_inference(id, finding.wrong()).await {
				Ok(_) => {
					self.reported.insert(id);
				}
				Err(e) if e.is_connection() => return Err(e.into()),
				// Past the deadline, or closed meanwhile: nothing left to say.
				Err(e)
					if is(&e, |e| {
						matches!(
							e,
							InferenceError::NotArbiter
								| InferenceError::TooLate
								| InferenceError::UnknownChallenge
						)
					}) =>
				{
					warn!(challenge = id, "reporting: {e}");
					self.reported.insert(id);
				}
				// Refused by the pool (a nonce, a fee): reported again on the next pass.
				Err(e) => warn!(challenge = id, "reporting: {e}; trying again"),
			}
		}
		Ok(())
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::ml::{infer::Activations, init_layers, model::ModelConfig};

	const SESSION: [u8; 16] = [9; 16];

	#[test]
	fn a_gateway_challenges_a_server_once_until_a_challenge_of_it_fails() {
		let (eve, dave) = (AccountId32([5; 32]), AccountId32([4; 32]));
		let cases = Cases::<u32>::default();
		// Three catches of Eve while her first challenge is open: one challenge, the latest
		// catch kept; Dave's case is his own.
		assert_eq!(cases.pursue(eve, 1), Some(1));
		assert_eq!(cases.pursue(eve, 2), None);
		assert_eq!(cases.pursue(eve, 3), None);
		assert_eq!(cases.pursue(dave, 7), Some(7));
		// Not proven (refuted, or the record unavailable): the kept catch is challenged next.
		assert_eq!(cases.closed(&eve, false), Some(3));
		assert_eq!(cases.pursue(eve, 4), None);
		// Proven: nothing more is challenged, nor kept.
		assert_eq!(cases.closed(&eve, true), None);
		assert_eq!(cases.pursue(eve, 5), None);
		assert_eq!(cases.closed(&eve, false), None);
		// Dave's challenge failed with no catch kept: his next catch is challenged again.
		assert_eq!(cases.closed(&dave, false), None);
		assert_eq!(cases.pursue(dave, 8), Some(8));
		// After a restart two challenges of one server are followed: a catch waits for both.
		let cases = Cases::<u32>::default();
		cases.following(eve);
		cases.following(eve);
		assert_eq!(cases.pursue(eve, 1), None);
		assert_eq!(cases.closed(&eve, false), None);
		assert_eq!(cases.closed(&eve, false), Some(1));
	}

	fn cpu_stage() -> Arc<stage::LocalStage> {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 5);
		stage::start_on(ComputeDevice::Cpu, &config, 0, layers, 1, Duration::ZERO).unwrap()
	}

	/// What an honest whole-model stage answers to a prompt chunk and two decode chunks, with the
	/// commitment it signs; `lie_at`: that answer has a bit flipped (and is signed so).
	fn session(lie_at: Option<usize>) -> (SessionRecord, ChunkCommitment) {
		let stage = cpu_stage();
		let inputs = [vec![3u32, 4, 5], vec![6], vec![7]];
		let (mut chunks, mut position) = (Vec::new(), 0u32);
		for (i, tokens) in inputs.iter().enumerate() {
			let input = Activations::Tokens(tokens.clone());
			let request = ForwardRequest { session: SESSION, position, input: input.clone() };
			let mut answer = protocol::encode_activations(
				&stage.forward(SESSION, position as usize, input).unwrap(),
			);
			if lie_at == Some(i) {
				// The last byte of the last value: a flipped low bit of one logit.
				*answer.last_mut().unwrap() ^= 1;
			}
			chunks.push(RecordedChunk { request: protocol::encode_request(&request), answer });
			position += tokens.len() as u32;
		}
		let transcript =
			chunks.iter().fold([0; 32], |t, c| fold(&t, &chunk_digest(&c.request, &c.answer)));
		let record = SessionRecord { version: 1, layers: (0, 4), session: SESSION, chunks };
		let commitment = ChunkCommitment {
			server: subxt_signer::sr25519::dev::eve().public_key().to_account_id(),
			version: 1,
			layers: (0, 4),
			session: SESSION,
			positions: position,
			transcript,
			bit_exact: true,
		};
		(record, commitment)
	}

	#[test]
	fn an_arbiter_finds_the_one_wrong_answer_and_clears_honest_ones() {
		assert_eq!(ModelConfig::tiny().layer_count(), 4);
		let (honest, commitment) = session(None);
		let requests = honest.matches(&commitment).unwrap();
		assert_eq!(replay(&cpu_stage(), &honest, requests).unwrap(), Finding::Right);

		let (lying, commitment) = session(Some(1));
		let requests = lying.matches(&commitment).unwrap();
		let finding = replay(&cpu_stage(), &lying, requests).unwrap();
		assert_eq!(finding, Finding::Wrong { at: 1 });
		assert!(finding.wrong());
		// The record survives its trip through IPFS as bytes.
		assert_eq!(SessionRecord::decode(&mut &lying.encode()[..]).unwrap(), lying);
	}

	#[test]
	fn a_record_that_is_not_what_the_server_signed_is_refused() {
		let (record, commitment) = session(None);
		// A challenger changing an answer after the fact: the transcript no longer matches.
		let mut forged = record.clone();
		forged.chunks[2].answer[0] ^= 1;
		assert_eq!(forged.matches(&commitment), Err(RecordError::Transcript));
		// A chunk left out.
		let mut short = record.clone();
		short.chunks.pop();
		assert_eq!(
			short.matches(&commitment),
			Err(RecordError::Positions { record: 4, committed: 5 })
		);
		// Chunks out of order.
		let mut swapped = record.clone();
		swapped.chunks.swap(1, 2);
		assert!(matches!(
			swapped.matches(&commitment),
			Err(RecordError::Position { chunk: 1, .. })
		));
		let mut other = commitment.clone();
		other.session = [1; 16];
		assert_eq!(record.matches(&other), Err(RecordError::Session));
		other = commitment.clone();
		other.layers = (0, 2);
		assert!(matches!(record.matches(&other), Err(RecordError::Layers { .. })));
		let empty = SessionRecord { chunks: vec![], ..record.clone() };
		assert_eq!(empty.matches(&commitment), Err(RecordError::Empty));
		assert!(record.matches(&commitment).is_ok());
	}
}
