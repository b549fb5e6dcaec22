//! Who a stage computes for. A stage answers only chunks of sessions opened by a client it can
//! bill: a session's first chunk carries a [`SessionGrant`] signed by the client's account (the
//! gateway's, or any account coordinating a route), naming this server, the version it serves
//! and the session, and expiring within [`MAX_GRANT_LIFETIME`]. The stage checks the signature,
//! that the grant opens nothing twice, and that the client can pay: its receipts were never
//! refused on chain, it holds a session's worth of tokens at this server's price (asked of the
//! chain, remembered for [`FUNDS_TTL`]), or — a free grant — the server takes free-tier receipts;
//! and that it does pay: the positions computed for a client and not yet covered by its receipts
//! stay under [`CREDIT_CONTEXTS`] contexts (free clients share one such credit). Later chunks of
//! an open session need no grant while it is in use; an unknown or idle session is refused
//! before any compute. Session ids are the coordinator's secret per stage (a route's stages do
//! not learn each other's).

use std::{
	collections::{BTreeMap, HashMap},
	sync::{Arc, Mutex},
	time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use codec::Decode;
use futures::future::BoxFuture;
use subxt::utils::AccountId32;

use subxt_signer::sr25519::Keypair;

use crate::chain::{
	session_grant_payload, verify_session_grant, Chain, SessionGrant, SignedSessionGrant,
	VersionId, H256,
};

use super::{protocol::SessionId, receipts::ReceiptBook};

/// The HTTP header carrying a session's grant (hex of the SCALE-encoded [`SignedSessionGrant`])
/// on its first chunk.
pub const GRANT_HEADER: &str = "x-blyan-session-grant";
/// The longest a grant may be valid: a captured grant is useless after it.
pub const MAX_GRANT_LIFETIME: Duration = Duration::from_secs(600);
/// Clock difference between client and stage tolerated on a grant's expiry.
const CLOCK_SKEW: Duration = Duration::from_secs(30);
/// How long a client's balance, once read from the chain, is trusted.
pub const FUNDS_TTL: Duration = Duration::from_secs(15);
/// An open session unused for this long is closed (its stage evicts it sooner).
const IDLE_SESSION: Duration = Duration::from_secs(600);
/// Contexts' worth of positions a client may have computed here without receipts covering
/// them; beyond, its new sessions are refused until receipts come (free clients share one such
/// credit between them).
pub const CREDIT_CONTEXTS: u64 = 4;

fn now_ms() -> u64 {
	SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Why a stage refuses a chunk before computing it.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum AccessError {
	#[error("no open session: a session's first chunk carries a grant signed by its client ({GRANT_HEADER})")]
	NoGrant,
	#[error("this stage holds no such session (a session is opened at position 0)")]
	UnknownSession,
	#[error("the session grant is not hex of a SCALE-encoded signed grant")]
	Malformed,
	#[error("the grant names another server")]
	WrongServer,
	#[error("the grant is for version {granted}; this stage serves {served}")]
	WrongVersion { granted: VersionId, served: VersionId },
	#[error("the grant opens another session")]
	WrongSession,
	#[error("the grant has expired")]
	Expired,
	#[error("the grant is valid for longer than {} s", MAX_GRANT_LIFETIME.as_secs())]
	TooLong,
	#[error("the grant's signature is not its client's")]
	BadSignature,
	#[error("this grant opened its session before")]
	Reused,
	#[error("this client's receipts were refused on chain: it is not served")]
	ClientRefused,
	#[error("the client can spend {has} plancks; a session here may cost {needs}")]
	CannotPay { has: u128, needs: u128 },
	#[error("this server does not serve the free tier")]
	FreeRefused,
	#[error("{owed} positions computed for this client are not covered by its receipts yet")]
	Unpaid { owed: u64 },
	#[error("the free tier's credit at this server is used up until free receipts come")]
	FreeCreditUsed,
	#[error("too many sessions open; retry shortly")]
	Full,
	#[error("the client's balance cannot be read: {0}")]
	ChainUnavailable(String),
}

impl AccessError {
	/// The HTTP status a stage answers: 401 for a missing or bad grant, 402 for a client that
	/// cannot pay, 409 for a session the stage does not hold (the coordinator replays), 429 and
	/// 503 for what passes.
	pub fn status(&self) -> u16 {
		match self {
			AccessError::UnknownSession => 409,
			AccessError::ClientRefused
			| AccessError::CannotPay { .. }
			| AccessError::FreeRefused
			| AccessError::Unpaid { .. }
			| AccessError::FreeCreditUsed => 402,
			AccessError::Full => 429,
			AccessError::ChainUnavailable(_) => 503,
			_ => 401,
		}
	}
}

/// How much a client can spend, as a stage asks it.
pub trait Funds: Send + Sync {
	fn spendable<'a>(&'a self, who: &'a AccountId32) -> BoxFuture<'a, Result<u128, String>>;
}

/// Balances read from the chain (the connection is replaced after a node restart).
pub struct ChainFunds(pub Arc<tokio::sync::RwLock<Chain>>);

impl Funds for ChainFunds {
	fn spendable<'a>(&'a self, who: &'a AccountId32) -> BoxFuture<'a, Result<u128, String>> {
		Box::pin(async move {
			let chain = self.0.read().await.clone();
			chain.balance(who).await.map(|(free, _)| free).map_err(|e| e.to_string())
		})
	}
}

/// The client side: signs a grant for each session it opens at a stage, and checks what the
/// stages sign of their answers (the chain's genesis hash goes into both).
pub struct SessionOpener {
	keypair: Keypair,
	pub genesis: H256,
	/// Grants say the client pays with free-tier receipts.
	pub free: bool,
	/// How long each grant is valid.
	pub lifetime: Duration,
}

impl SessionOpener {
	pub fn new(keypair: Keypair, genesis: H256, free: bool) -> Self {
		Self { keypair, genesis, free, lifetime: Duration::from_secs(300) }
	}

	/// Grants signed by `chain`'s account, for its chain.
	pub fn for_chain(chain: &Chain, free: bool) -> Self {
		Self::new(chain.keypair().clone(), chain.genesis_hash(), free)
	}

	/// The header value opening `session` of `version` at `server`.
	pub fn grant(&self, server: &AccountId32, version: VersionId, session: &SessionId) -> String {
		let grant = SessionGrant {
			client: self.keypair.public_key().to_account_id(),
			server: *server,
			version,
			session: *session,
			free: self.free,
			expires_at_ms: now_ms() + self.lifetime.as_millis() as u64,
		};
		let signature = self.keypair.sign(&session_grant_payload(&self.genesis, &grant)).0;
		hex::encode(codec::Encode::encode(&SignedSessionGrant { grant, signature }))
	}
}

/// What a stage bills, to judge whether a client can pay.
pub struct Terms {
	pub server: AccountId32,
	pub genesis: H256,
	pub version: VersionId,
	pub price_per_token: u128,
	pub accept_free: bool,
	/// Most tokens one session can cost (the context: prompt and completion).
	pub max_tokens: u128,
}

struct OpenSession {
	client: AccountId32,
	free: bool,
	last_used: Instant,
}

#[derive(Default)]
struct GateState {
	open: HashMap<SessionId, OpenSession>,
	/// Sessions ever opened, until their grant expires (a grant opens its session once).
	used: HashMap<SessionId, u64>,
	/// Spendable balance per client and when it was read.
	funds: BTreeMap<AccountId32, (Instant, u128)>,
	/// Positions computed per paying client and not yet covered by its receipts.
	owed: BTreeMap<AccountId32, u64>,
	/// The same per free client, and for all of them together (the shared credit).
	owed_free: BTreeMap<AccountId32, u64>,
	owed_free_total: u64,
}

/// Whom an admitted chunk is computed for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Admitted {
	pub client: AccountId32,
	/// The client's grant said it pays with free-tier receipts.
	pub free: bool,
}

/// The stage side: which sessions are open, and for whom.
pub struct SessionGate {
	terms: Terms,
	book: Option<Arc<ReceiptBook>>,
	funds: Box<dyn Funds>,
	state: Mutex<GateState>,
	/// Most sessions open at once (well above the stage's capacity: a stage evicts idle ones).
	pub max_open: usize,
}

impl SessionGate {
	pub fn new(
		terms: Terms,
		book: Option<Arc<ReceiptBook>>,
		funds: Box<dyn Funds>,
		capacity: usize,
	) -> Self {
		Self {
			terms,
			book,
			funds,
			state: Mutex::new(GateState::default()),
			max_open: capacity.saturating_mul(8).max(64),
		}
	}

	/// Admits a chunk of `session` at `position`: an open session passes; otherwise `grant` (the
	/// header's value) must open it. Returns whom the chunk is computed for (to
	/// [`charge`](Self::charge) once computed).
	pub async fn admit(
		&self,
		session: &SessionId,
		position: u32,
		grant: Option<&str>,
	) -> Result<Admitted, AccessError> {
		{
			let mut state = self.state.lock().expect("gate lock");
			if let Some(open) = state.open.get_mut(session) {
				if open.last_used.elapsed() < IDLE_SESSION {
					open.last_used = Instant::now();
					return Ok(Admitted { client: open.client, free: open.free });
				}
				state.open.remove(session);
			}
		}
		let Some(grant) = grant else {
			return Err(if position == 0 {
				AccessError::NoGrant
			} else {
				AccessError::UnknownSession
			});
		};
		let signed = hex::decode(grant.trim())
			.ok()
			.and_then(|bytes| SignedSessionGrant::decode(&mut &bytes[..]).ok())
			.ok_or(AccessError::Malformed)?;
		let g = &signed.grant;
		let terms = &self.terms;
		if g.server != terms.server {
			return Err(AccessError::WrongServer);
		}
		if g.version != terms.version {
			return Err(AccessError::WrongVersion { granted: g.version, served: terms.version });
		}
		if g.session != *session {
			return Err(AccessError::WrongSession);
		}
		let now = now_ms();
		if g.expires_at_ms <= now {
			return Err(AccessError::Expired);
		}
		let longest = (MAX_GRANT_LIFETIME + CLOCK_SKEW).as_millis() as u64;
		if g.expires_at_ms - now > longest {
			return Err(AccessError::TooLong);
		}
		if !verify_session_grant(&terms.genesis, &signed) {
			return Err(AccessError::BadSignature);
		}
		if self.state.lock().expect("gate lock").used.contains_key(session) {
			return Err(AccessError::Reused);
		}
		self.check_payer(&g.client, g.free).await?;

		let mut state = self.state.lock().expect("gate lock");
		// Checked again: another chunk with the same grant may have passed meanwhile.
		if state.used.contains_key(session) {
			return Err(AccessError::Reused);
		}
		// Grants are kept until they expire (10 min) so none opens a second session: room for
		// sessions opened at ~27 a second at the least `max_open` (64), ~1 MB.
		let most_used = self.max_open.saturating_mul(256);
		if state.open.len() >= self.max_open || state.used.len() >= most_used {
			prune(&mut state, now);
			if state.open.len() >= self.max_open || state.used.len() >= most_used {
				return Err(AccessError::Full);
			}
		}
		self.check_credit(&state, &g.client, g.free)?;
		state.used.insert(*session, g.expires_at_ms);
		let open = OpenSession { client: g.client, free: g.free, last_used: Instant::now() };
		state.open.insert(*session, open);
		Ok(Admitted { client: g.client, free: g.free })
	}

	/// Whether `client`'s receipts cover what was computed for it, within the credit.
	fn check_credit(
		&self,
		state: &GateState,
		client: &AccountId32,
		free: bool,
	) -> Result<(), AccessError> {
		let credit = CREDIT_CONTEXTS.saturating_mul(self.terms.max_tokens as u64);
		if free {
			if state.owed_free_total >= credit {
				return Err(AccessError::FreeCreditUsed);
			}
		} else if self.terms.price_per_token > 0 {
			let owed = state.owed.get(client).copied().unwrap_or(0);
			if owed >= credit {
				return Err(AccessError::Unpaid { owed });
			}
		}
		Ok(())
	}

	/// Counts `positions` computed for `admitted` against its credit (whether or not its
	/// session is still open: a session ended while its chunk ran is charged all the same).
	pub fn charge(&self, admitted: &Admitted, positions: u32) {
		let mut state = self.state.lock().expect("gate lock");
		let positions = u64::from(positions);
		if admitted.free {
			*state.owed_free.entry(admitted.client).or_default() += positions;
			state.owed_free_total = state.owed_free_total.saturating_add(positions);
		} else if self.terms.price_per_token > 0 {
			*state.owed.entry(admitted.client).or_default() += positions;
		}
	}

	/// A receipt of `client` for `tokens` (free or not) came: it covers as many of the positions
	/// computed for that client (and no other: a receipt of a client owing nothing covers nothing).
	pub fn credit(&self, client: &AccountId32, tokens: u64, free: bool) {
		let mut state = self.state.lock().expect("gate lock");
		let owed = if free { &mut state.owed_free } else { &mut state.owed };
		let Some(left) = owed.get_mut(client) else { return };
		let covered = tokens.min(*left);
		*left -= covered;
		if *left == 0 {
			owed.remove(client);
		}
		if free {
			state.owed_free_total -= covered;
		}
	}

	/// Whether `client` can pay for a session here.
	async fn check_payer(&self, client: &AccountId32, free: bool) -> Result<(), AccessError> {
		if self.book.as_ref().is_some_and(|b| b.is_refused(client)) {
			return Err(AccessError::ClientRefused);
		}
		let terms = &self.terms;
		if free {
			// The quota is the chain's to count: a client whose free receipts it refuses is
			// refused here from then on (above).
			return if terms.accept_free { Ok(()) } else { Err(AccessError::FreeRefused) };
		}
		let needs = terms.price_per_token.saturating_mul(terms.max_tokens);
		if needs == 0 {
			return Ok(());
		}
		let cached = {
			let state = self.state.lock().expect("gate lock");
			state.funds.get(client).filter(|(at, _)| at.elapsed() < FUNDS_TTL).map(|(_, v)| *v)
		};
		let has = match cached {
			Some(has) => has,
			None => {
				let has =
					self.funds.spendable(client).await.map_err(AccessError::ChainUnavailable)?;
				let mut state = self.state.lock().expect("gate lock");
				if state.funds.len() >= self.max_open.saturating_mul(16) {
					state.funds.retain(|_, (at, _)| at.elapsed() < FUNDS_TTL);
				}
				state.funds.insert(*client, (Instant::now(), has));
				has
			}
		};
		if has < needs {
			return Err(AccessError::CannotPay { has, needs });
		}
		Ok(())
	}

	/// The session is over: its chunks need a new grant (which a used one is not).
	pub fn end(&self, session: &SessionId) {
		self.state.lock().expect("gate lock").open.remove(session);
	}

	/// Positions computed for clients (paying and free) not yet covered by their receipts.
	pub fn unpaid_positions(&self) -> u64 {
		let state = self.state.lock().expect("gate lock");
		state.owed.values().fold(state.owed_free_total, |sum, owed| sum.saturating_add(*owed))
	}

	/// Sessions open now.
	pub fn open_sessions(&self) -> usize {
		self.state.lock().expect("gate lock").open.len()
	}
}

/// Forgets idle sessions and expired grants.
fn prune(state: &mut GateState, now_ms: u64) {
	state.open.retain(|_, s| s.last_used.elapsed() < IDLE_SESSION);
	state.used.retain(|_, expires| *expires > now_ms);
}

#[cfg(test)]
mod tests {
	use super::*;
	use subxt_signer::sr25519::dev;

	struct FixedFunds(BTreeMap<AccountId32, u128>);

	impl Funds for FixedFunds {
		fn spendable<'a>(&'a self, who: &'a AccountId32) -> BoxFuture<'a, Result<u128, String>> {
			let has = self.0.get(who).copied().unwrap_or(0);
			Box::pin(async move { Ok(has) })
		}
	}

	const GENESIS: H256 = H256([9; 32]);

	fn account(k: &Keypair) -> AccountId32 {
		k.public_key().to_account_id()
	}

	fn gate(price: u128, accept_free: bool) -> SessionGate {
		let funds = FixedFunds(BTreeMap::from([(account(&dev::bob()), 1_000)]));
		let terms = Terms {
			server: account(&dev::charlie()),
			genesis: GENESIS,
			version: 3,
			price_per_token: price,
			accept_free,
			max_tokens: 100,
		};
		SessionGate::new(terms, None, Box::new(funds), 1)
	}

	/// A grant from `client`, edited by `edit` before signing.
	fn grant(client: &Keypair, session: SessionId, edit: impl FnOnce(&mut SessionGrant)) -> String {
		let mut g = SessionGrant {
			client: account(client),
			server: account(&dev::charlie()),
			version: 3,
			session,
			free: false,
			expires_at_ms: now_ms() + 60_000,
		};
		edit(&mut g);
		let signature = client.sign(&session_grant_payload(&GENESIS, &g)).0;
		hex::encode(codec::Encode::encode(&SignedSessionGrant { grant: g, signature }))
	}

	#[tokio::test]
	async fn a_session_opens_once_with_its_clients_grant_and_then_needs_none() {
		let gate = gate(1, false);
		let bob = dev::bob();
		let g = grant(&bob, [1; 16], |_| {});
		let bob_paying = Admitted { client: account(&bob), free: false };
		assert_eq!(gate.admit(&[1; 16], 0, Some(&g)).await, Ok(bob_paying));
		assert_eq!(gate.admit(&[1; 16], 5, None).await, Ok(bob_paying), "open: no grant");
		gate.end(&[1; 16]);
		assert_eq!(gate.admit(&[1; 16], 5, None).await, Err(AccessError::UnknownSession));
		assert_eq!(
			gate.admit(&[1; 16], 0, Some(&g)).await,
			Err(AccessError::Reused),
			"a captured grant does not reopen its session"
		);
		assert_eq!(gate.admit(&[2; 16], 0, None).await, Err(AccessError::NoGrant));
	}

	#[tokio::test]
	async fn forged_misdirected_stale_and_unfunded_grants_open_nothing() {
		let gate = gate(1, false);
		let (bob, dave) = (dev::bob(), dev::dave());
		let s = [7; 16];
		let cases: Vec<(String, AccessError)> = vec![
			("zz".into(), AccessError::Malformed),
			(hex::encode([1u8; 10]), AccessError::Malformed),
			(grant(&bob, s, |g| g.server = account(&dev::eve())), AccessError::WrongServer),
			(
				grant(&bob, s, |g| g.version = 4),
				AccessError::WrongVersion { granted: 4, served: 3 },
			),
			(grant(&bob, [8; 16], |_| {}), AccessError::WrongSession),
			(grant(&bob, s, |g| g.expires_at_ms = now_ms() - 1), AccessError::Expired),
			(grant(&bob, s, |g| g.expires_at_ms = now_ms() + 3_600_000), AccessError::TooLong),
			// Dave signs a grant naming Bob as the client: Bob would be billed.
			(
				{
					let g = SessionGrant {
						client: account(&bob),
						server: account(&dev::charlie()),
						version: 3,
						session: s,
						free: false,
						expires_at_ms: now_ms() + 60_000,
					};
					let signature = dave.sign(&session_grant_payload(&GENESIS, &g)).0;
					hex::encode(codec::Encode::encode(&SignedSessionGrant { grant: g, signature }))
				},
				AccessError::BadSignature,
			),
			// Signed for another chain.
			(
				{
					let g = SessionGrant {
						client: account(&bob),
						server: account(&dev::charlie()),
						version: 3,
						session: s,
						free: false,
						expires_at_ms: now_ms() + 60_000,
					};
					let signature = bob.sign(&session_grant_payload(&H256([1; 32]), &g)).0;
					hex::encode(codec::Encode::encode(&SignedSessionGrant { grant: g, signature }))
				},
				AccessError::BadSignature,
			),
			// Dave holds nothing: a session may cost 100 tokens at 1 planck.
			(grant(&dave, s, |_| {}), AccessError::CannotPay { has: 0, needs: 100 }),
			(grant(&bob, s, |g| g.free = true), AccessError::FreeRefused),
		];
		for (header, error) in cases {
			assert_eq!(gate.admit(&s, 0, Some(&header)).await, Err(error.clone()), "{error}");
			assert!(error.status() == 401 || error.status() == 402);
		}
		assert_eq!(gate.open_sessions(), 0);
		// Bob's own grant still opens the session: nothing above used it up.
		assert!(gate.admit(&s, 0, Some(&grant(&bob, s, |_| {}))).await.is_ok());
	}

	#[tokio::test]
	async fn free_grants_open_where_the_free_tier_is_served_and_zero_prices_need_no_funds() {
		let free = gate(1, true);
		let dave = dev::dave();
		assert!(free
			.admit(&[1; 16], 0, Some(&grant(&dave, [1; 16], |g| g.free = true)))
			.await
			.is_ok());
		let gratis = gate(0, false);
		assert!(gratis.admit(&[1; 16], 0, Some(&grant(&dave, [1; 16], |_| {}))).await.is_ok());
		// Bob can pay 1 000 plancks: at 20 a token a session (100 tokens) is beyond him.
		let dear = gate(20, false);
		assert_eq!(
			dear.admit(&[1; 16], 0, Some(&grant(&dev::bob(), [1; 16], |_| {}))).await,
			Err(AccessError::CannotPay { has: 1_000, needs: 2_000 })
		);
	}

	#[tokio::test]
	async fn a_client_whose_receipts_do_not_come_gets_no_new_sessions() {
		// A session holds at most 100 positions here: four contexts of credit are 400.
		let gate = gate(1, true);
		let (bob, dave, eve) = (dev::bob(), dev::dave(), dev::eve());
		let bob_paying =
			gate.admit(&[1; 16], 0, Some(&grant(&bob, [1; 16], |_| {}))).await.unwrap();
		// Ended while its chunk ran: charged all the same.
		gate.end(&[1; 16]);
		gate.charge(&bob_paying, 400);
		assert_eq!(
			gate.admit(&[2; 16], 0, Some(&grant(&bob, [2; 16], |_| {}))).await,
			Err(AccessError::Unpaid { owed: 400 })
		);
		// Another client's receipt covers nothing of his; his own for 350 tokens bring him back
		// under the credit.
		gate.credit(&account(&dave), 10_000, false);
		assert!(gate.admit(&[2; 16], 0, Some(&grant(&bob, [2; 16], |_| {}))).await.is_err());
		gate.credit(&account(&bob), 350, false);
		assert!(gate.admit(&[3; 16], 0, Some(&grant(&bob, [3; 16], |_| {}))).await.is_ok());
		// Free clients share one credit: fresh keys do not each get their own.
		let free = |k: &Keypair, s: SessionId| grant(k, s, |g| g.free = true);
		let dave_free = gate.admit(&[4; 16], 0, Some(&free(&dave, [4; 16]))).await.unwrap();
		gate.charge(&dave_free, 400);
		assert_eq!(
			gate.admit(&[5; 16], 0, Some(&free(&eve, [5; 16]))).await,
			Err(AccessError::FreeCreditUsed)
		);
		// A fresh key's free receipt (for any number of tokens) does not wipe Dave's debt.
		gate.credit(&account(&eve), u64::from(u32::MAX), true);
		assert_eq!(
			gate.admit(&[5; 16], 0, Some(&free(&eve, [5; 16]))).await,
			Err(AccessError::FreeCreditUsed)
		);
		gate.credit(&account(&dave), 100, true);
		assert!(gate.admit(&[5; 16], 0, Some(&free(&eve, [5; 16]))).await.is_ok());
	}

	#[tokio::test]
	async fn a_full_gate_refuses_new_sessions() {
		let mut gate = gate(1, false);
		gate.max_open = 2;
		let bob = dev::bob();
		for i in 0..2u8 {
			assert!(gate.admit(&[i; 16], 0, Some(&grant(&bob, [i; 16], |_| {}))).await.is_ok());
		}
		assert_eq!(
			gate.admit(&[5; 16], 0, Some(&grant(&bob, [5; 16], |_| {}))).await,
			Err(AccessError::Full)
		);
		gate.end(&[0; 16]);
		assert!(gate.admit(&[5; 16], 0, Some(&grant(&bob, [5; 16], |_| {}))).await.is_ok());
	}
}
