//! # Inference
//!
//! Who serves which model, and how they get paid.
//!
//! - **Announcements**: a server announces the accepted model version it serves, the span of
//!   registry layers `[start, end)` it holds (the whole model, or one stage of a pipeline), its
//!   HTTP endpoint, its price per token, how many sessions it takes at once, and a bond (at least
//!   [`Config::MinServerBond`], held; routing prefers higher bonds). An announcement lives for
//!   [`Config::AnnouncementTtl`] blocks; announcing again renews it. A server withdraws with
//!   [`Call::withdraw`]; once an announcement has expired anyone may [`Call::reap`] it. Either
//!   way (and when a higher bond displaces it) its bond stays held, *unbonding*, for
//!   [`InferenceParams::arbitration_window`] blocks, so that what it signed last can still be
//!   challenged; then anyone may [`Call::release_bond`] it to the server.
//! - **Receipts**: for each request it answered, a server holds an [`InferenceReceipt`] signed by
//!   the client (tokens in and out, price, the client's nonce for this server). It settles them
//!   in batches with one [`Call::settle`]: each is checked (its server is the caller, its
//!   signature is the client's, its nonce is above the last one settled for that client and
//!   server), then each client pays `(tokens_in + tokens_out) · price_per_token` to the server, or
//!   — for a free receipt — the requests count against the client's free-tier quota
//!   ([`FreeQuota`]). A batch is settled whole or not at all: nothing is written unless every
//!   receipt, balance and quota checks out.
//! - **Nonce deposits**: the last nonce settled per `(client, server)` is kept for good (it is
//!   what makes a receipt single-use), so a client's first receipt settled at a server holds
//!   [`Config::NonceDeposit`] from the client for that entry, under
//!   [`HoldReason::ReceiptNonce`]. Without it a zero-priced receipt from a fresh key would
//!   write an entry for free; charged to the server, fresh keys paying a planck each would
//!   make the server lock a deposit per key. A client that cannot pay its receipts and the
//!   deposit voids the batch ([`Error::ClientCannotPay`]).
//! - **Challenges**: after each chunk a stage signs a [`ChunkCommitment`] to every request and
//!   answer of the session so far (a running hash); the gateway re-executes a share
//!   ([`InferenceParams::check_rate`]) of sessions on other servers. When the bits differ, anyone
//!   holding the stage's signed commitment may [`Call::challenge`] it, holding
//!   [`InferenceParams::challenge_bond`] and naming the session's record (requests and answers,
//!   on IPFS) as evidence. At the start of the next block (later if more draws are due than a
//!   block takes; the arbiters' window then starts at the draw) the chain draws its arbiters:
//!   bonded verifiers, stake-weighted, neither party, seeded by [`Config::Randomness`] of that
//!   block (the runtime's: BABE's VRF outputs, which the challenger cannot know and the
//!   transactions of a block cannot move). They fetch the record, check that it hashes to the
//!   signed transcript, re-execute it on the committed version's layers (the CPU path is
//!   bit-exact) and [`Call::arbitrate`].
//!   Once two thirds of them agree, or at the deadline, anyone may [`Call::close_challenge`]: a
//!   proven wrong answer slashes [`InferenceParams::fraud_slash`] of the server's bond (the
//!   challenger is paid [`InferenceParams::challenger_share`] of it, the rest is burned) and ends
//!   its announcement; a refuted challenge pays half the challenger's bond to the server and
//!   burns the other half; no decision returns it. Arbiters who reported what was decided are
//!   paid [`InferenceParams::arbiter_fee`] each out of the part that would be burned; arbiters
//!   who reported otherwise, or were still silent at the deadline, lose the verifier penalty
//!   of their bond ([`VerifierSet::penalise`]). A server's bond is not released while a
//!   challenge names it, and a session proven a lie is not challenged again. Only bit-exact
//!   (CPU) answers can be challenged.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(any(feature = "try-runtime", feature = "test-fixtures", test))]
mod invariants;
pub mod migrations;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

pub use blyan_primitives::inference::{
	chunk_commitment_payload, receipt_payload, ChunkCommitment, InferenceReceipt, LayerSpan,
};
pub use blyan_primitives::params::{InferenceParams, MAX_INFERENCE_ARBITERS};
pub use weights::WeightInfo;

use alloc::{
	collections::{btree_map::BTreeMap, btree_set::BTreeSet},
	vec::Vec,
};
use blyan_primitives::{
	audit::{VerifierDuty, VerifierSet},
	deadlines::drain_due,
	inference::{arbitration_decision, FreeQuota},
	params::GovernedParams,
	pol::{ModelRegistry, VersionId, VersionStatus, MAX_LAYERS},
};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, InspectHold, Mutate, MutateHold},
		tokens::{Fortitude, Precision, Preservation, Restriction},
		Randomness,
	},
};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::{
	traits::{CheckedAdd, CheckedMul, IdentifyAccount, Saturating, Verify, Zero},
	DispatchResult,
};

/// A server's announcement.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
#[scale_info(skip_type_params(MaxEndpointLen))]
pub struct Announcement<Balance, BlockNumber, MaxEndpointLen: Get<u32>> {
	/// The accepted version served.
	pub version: VersionId,
	/// The registry layers held.
	pub layers: LayerSpan,
	/// Base URL of the server's HTTP API, e.g. `http://10.0.0.7:8080`.
	pub endpoint: BoundedVec<u8, MaxEndpointLen>,
	/// Price of one token (in or out), in plancks.
	pub price_per_token: Balance,
	/// Sessions served at once.
	pub capacity: u32,
	/// Held while announced.
	pub bond: Balance,
	/// Routing ignores the announcement from this block on, and anyone may reap it.
	pub expires_at: BlockNumber,
}

/// A receipt with the client's signature over [`receipt_payload`].
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct SignedReceipt<AccountId, Balance, Signature> {
	pub receipt: InferenceReceipt<AccountId, Balance>,
	pub signature: Signature,
}

/// Identifies an inference challenge.
pub type ChallengeId = u32;

/// A challenge of what a server answered in one session.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
#[scale_info(skip_type_params(MaxEvidenceLen))]
pub struct InferenceChallenge<AccountId, Balance, BlockNumber, MaxEvidenceLen: Get<u32>> {
	pub challenger: AccountId,
	/// What the server signed last of the session (its server is the one challenged).
	pub commitment: ChunkCommitment<AccountId>,
	/// Where the session's record is (an IPFS CID): every chunk's request and answer, in order.
	pub evidence: BoundedVec<u8, MaxEvidenceLen>,
	/// The challenger's bond, held.
	pub bond: Balance,
	/// The chain draws the arbiters at the start of this block (the one after the challenge),
	/// or of the first block after it with room for the draw.
	pub draw_at: BlockNumber,
	/// Arbiters report before this block; then the challenge may be closed whatever they said.
	/// Set at the challenge to a window after it; a draw later than the next block moves it as
	/// far.
	pub deadline: BlockNumber,
	/// The drawn arbiters and their reports (`Some(true)`: the server answered wrong); `None`
	/// until drawn.
	pub arbiters: Option<BoundedVec<(AccountId, Option<bool>), ConstU32<MAX_INFERENCE_ARBITERS>>>,
}

/// A server's bond after its announcement ended, held until `release_at`.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct UnbondingBond<Balance, BlockNumber> {
	pub amount: Balance,
	pub release_at: BlockNumber,
}

/// How a challenge ended.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum ChallengeOutcome {
	/// Two thirds of the arbiters found a wrong answer: the server was slashed.
	FraudProven,
	/// Two thirds of the arbiters found the answers right: the challenger's bond was taken.
	Refuted,
	/// The arbiters reached no decision by the deadline (or the session was proven a lie by
	/// another challenge first): the challenger's bond was returned.
	Undecided,
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	/// Balance of an account.
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
	/// An announcement as stored.
	pub type AnnouncementOf<T> =
		Announcement<BalanceOf<T>, BlockNumberFor<T>, <T as Config>::MaxEndpointLen>;
	/// A challenge as stored.
	pub type InferenceChallengeOf<T> = InferenceChallenge<
		<T as frame_system::Config>::AccountId,
		BalanceOf<T>,
		BlockNumberFor<T>,
		<T as Config>::MaxEvidenceLen,
	>;
	/// The pallet's governed parameters.
	pub type ParamsOf<T> = InferenceParams<BalanceOf<T>, BlockNumberFor<T>>;
	/// A signed receipt as [`Call::settle`] takes it.
	pub type SignedReceiptOf<T> = SignedReceipt<
		<T as frame_system::Config>::AccountId,
		BalanceOf<T>,
		<T as Config>::Signature,
	>;

	/// The storage layout's version (0: the layout at launch): bumped, with a migration, on
	/// every change of layout.
	/// v1: [`InferenceParams::arbiter_fee`], and arbiters drawn by the chain ([`DrawQueue`]).
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A server's announcement bond.
		ServerBond,
		/// The deposit for a client's settled-nonce entry at a server.
		ReceiptNonce,
		/// A challenger's bond on a served answer.
		ChallengeBond,
	}

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// BLY: bonds are held, payments transferred.
		type Currency: Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		type RuntimeHoldReason: From<HoldReason>;
		/// Which versions exist and are accepted.
		type Registry: ModelRegistry<Self::AccountId>;
		/// The free tier's daily quota, charged by free receipts.
		type FreeQuota: FreeQuota<Self::AccountId>;
		/// Signature of a receipt; its signer is an account.
		type Signature: Verify<Signer = Self::Signer> + Parameter + Member + MaxEncodedLen;
		/// The public key behind an account.
		type Signer: IdentifyAccount<AccountId = Self::AccountId>;
		/// Least bond of an announcement.
		#[pallet::constant]
		type MinServerBond: Get<BalanceOf<Self>>;
		/// Blocks an announcement lives unless renewed.
		#[pallet::constant]
		type AnnouncementTtl: Get<BlockNumberFor<Self>>;
		/// Most servers announced at once.
		#[pallet::constant]
		type MaxServers: Get<u32>;
		/// Longest endpoint URL.
		#[pallet::constant]
		type MaxEndpointLen: Get<u32>;
		/// Most receipts in one settlement.
		#[pallet::constant]
		type MaxReceiptsPerBatch: Get<u32>;
		/// Held from the client for its `(client, server)` nonce entry, when the entry is made.
		#[pallet::constant]
		type NonceDeposit: Get<BalanceOf<Self>>;
		/// The bonded verifiers, from which challenges' arbiters are drawn.
		type Verifiers: VerifierSet<Self::AccountId>;
		/// [`InferenceParams`] until governance changes them (through [`GovernedParams`]).
		type DefaultParams: Get<ParamsOf<Self>>;
		/// Longest evidence reference (an IPFS CID) of a challenge.
		#[pallet::constant]
		type MaxEvidenceLen: Get<u32>;
		/// Seeds the arbiters' draws: a value of the block the draw is made in that nobody could
		/// know when the challenge was made, nor choose (BABE's VRF outputs in the runtime).
		type Randomness: Randomness<Self::Hash, BlockNumberFor<Self>>;
		/// Most arbiter draws made at the start of one block; more wait for the next.
		#[pallet::constant]
		type MaxDrawsPerBlock: Get<u32>;
		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;
	}

	/// Announced servers.
	#[pallet::storage]
	pub type Servers<T: Config> =
		CountedStorageMap<_, Blake2_128Concat, T::AccountId, AnnouncementOf<T>, OptionQuery>;

	/// The highest receipt nonce settled per `(client, server)`.
	#[pallet::storage]
	pub type SettledNonce<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Blake2_128Concat,
		T::AccountId,
		u64,
		OptionQuery,
	>;

	/// The parameters in force.
	#[pallet::storage]
	pub type Params<T: Config> = StorageValue<_, ParamsOf<T>, ValueQuery, T::DefaultParams>;

	/// Open challenges.
	#[pallet::storage]
	pub type Challenges<T: Config> =
		StorageMap<_, Blake2_128Concat, ChallengeId, InferenceChallengeOf<T>, OptionQuery>;

	/// The id the next challenge gets.
	#[pallet::storage]
	pub type NextChallengeId<T: Config> = StorageValue<_, ChallengeId, ValueQuery>;

	/// Sessions a server was proven to have lied in: never challenged again (the lie was
	/// paid for once).
	#[pallet::storage]
	pub type ProvenSessions<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Blake2_128Concat,
		[u8; 16],
		(),
		OptionQuery,
	>;

	/// Bonds of ended announcements, held until they can no longer be challenged.
	#[pallet::storage]
	pub type Unbonding<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		UnbondingBond<BalanceOf<T>, BlockNumberFor<T>>,
		OptionQuery,
	>;

	/// How many open challenges name each server (its bond stays held while any does).
	#[pallet::storage]
	pub type OpenChallenges<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, OptionQuery>;

	/// Challenges whose arbiters are to be drawn, by the block the draw is due at.
	#[pallet::storage]
	pub type DrawQueue<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		Twox64Concat,
		ChallengeId,
		(),
		OptionQuery,
	>;

	/// The first block of [`DrawQueue`] not yet fully drawn (zero: start at the current one).
	#[pallet::storage]
	pub type DrawCursor<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A server announced (or renewed) what it serves.
		Announced {
			server: T::AccountId,
			version: VersionId,
			layers: LayerSpan,
			price_per_token: BalanceOf<T>,
			bond: BalanceOf<T>,
			expires_at: BlockNumberFor<T>,
		},
		/// A server withdrew; its bond is released.
		Withdrawn { server: T::AccountId },
		/// An expired announcement was removed; its bond is released.
		Reaped { server: T::AccountId, by: T::AccountId },
		/// With the server list full, `by` took `server`'s place by bonding more than it;
		/// `server`'s bond is released.
		Displaced { server: T::AccountId, by: T::AccountId, bond: BalanceOf<T> },
		/// A batch of receipts was settled.
		Settled { server: T::AccountId, receipts: u32, paid: BalanceOf<T>, free_requests: u32 },
		/// `challenger` challenged what `server` answered in `session`; its arbiters are drawn
		/// at the start of block `draw_at`, and report before `deadline`.
		Challenged {
			challenge: ChallengeId,
			challenger: T::AccountId,
			server: T::AccountId,
			session: [u8; 16],
			draw_at: BlockNumberFor<T>,
			deadline: BlockNumberFor<T>,
		},
		/// The arbiters of a challenge were drawn: each re-executes the session and reports
		/// before `deadline`.
		ArbitersDrawn {
			challenge: ChallengeId,
			arbiters: Vec<T::AccountId>,
			deadline: BlockNumberFor<T>,
		},
		/// An arbiter reported.
		Arbitrated { challenge: ChallengeId, arbiter: T::AccountId },
		/// A challenge was closed: `slashed` of the server's bond (`to_challenger` of it paid),
		/// or `forfeited` of the challenger's bond (`to_server` of it paid); `to_arbiters` of
		/// what was taken paid to the arbiters who reported the decision, the rest burned.
		ChallengeClosed {
			challenge: ChallengeId,
			server: T::AccountId,
			challenger: T::AccountId,
			outcome: ChallengeOutcome,
			slashed: BalanceOf<T>,
			to_challenger: BalanceOf<T>,
			forfeited: BalanceOf<T>,
			to_server: BalanceOf<T>,
			to_arbiters: BalanceOf<T>,
		},
		/// Governance set new parameters.
		ParamsSet { params: ParamsOf<T> },
		/// An announcement ended: its bond stays held until `release_at` (added to any bond
		/// still unbonding).
		Unbonding { server: T::AccountId, amount: BalanceOf<T>, release_at: BlockNumberFor<T> },
		/// An unbonded bond was released to its server.
		BondReleased { server: T::AccountId, amount: BalanceOf<T> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The version does not exist or is not accepted.
		VersionNotAccepted,
		/// The layer span is empty or beyond the registry's layer bound.
		BadLayerSpan,
		/// The endpoint is empty or not an `http://`/`https://` URL.
		BadEndpoint,
		/// A server must take at least one session.
		ZeroCapacity,
		/// The bond is below the minimum.
		BondTooLow,
		/// The bond cannot be held (not enough free balance).
		InsufficientBond,
		/// The server list is full: `take_slot` displaces a server with a lower bond.
		TooManyServers,
		/// The server list has room: `announce` instead of displacing anyone.
		ServerListNotFull,
		/// The caller has an announcement already: `announce` renews or changes it.
		AlreadyAnnounced,
		/// A server can only be displaced by a strictly higher bond than its own.
		BondNotHigher,
		/// The account has no announcement.
		NotAnnounced,
		/// The announcement has not expired yet.
		NotExpired,
		/// No receipts given.
		EmptyBatch,
		/// A receipt names another server than the caller.
		WrongServer,
		/// A receipt's signature is not its client's.
		BadReceiptSignature,
		/// A receipt's nonce is not above the last one settled for its client and this server
		/// (already settled), or the batch repeats one.
		ReceiptReplayed,
		/// A free receipt names a price.
		FreeReceiptPriced,
		/// A client cannot pay its receipts, and the deposit for its nonce entry at this server
		/// if it has none yet (while keeping its account alive).
		ClientCannotPay,
		/// A client's free receipts exceed its free-tier quota left today (or it has no trust).
		FreeQuotaExhausted,
		/// Amounts overflow.
		Overflow,
		/// A challenge of this server is open: its bond stays held, at least as it is.
		UnderChallenge,
		/// Only bit-exact (CPU) answers can be re-executed to the bit, and so challenged.
		NotBitExact,
		/// The commitment's signature is not its server's.
		BadCommitmentSignature,
		/// The commitment names a version that does not exist, or an invalid layer span.
		BadCommitment,
		/// A challenge names no evidence.
		NoEvidence,
		/// A server cannot challenge itself.
		SelfChallenge,
		/// This session of this server was proven a lie already.
		AlreadyProven,
		/// The challenger cannot hold the challenge bond.
		InsufficientChallengeBond,
		/// No such open challenge.
		UnknownChallenge,
		/// The challenge's deadline has passed.
		TooLate,
		/// The caller is not an arbiter of the challenge still to report.
		NotArbiter,
		/// Neither side has two thirds of the arbiters yet, and the deadline has not passed (or
		/// the arbiters are not drawn yet).
		NotDecided,
		/// The server has no bond unbonding.
		NotUnbonding,
		/// The bond is still unbonding.
		StillUnbonding,
		/// Parameters out of range: `arbiters` must be 1..=MAX_INFERENCE_ARBITERS,
		/// `arbitration_window` at least 3 blocks (the draw is in the block after the
		/// challenge), and `arbiters · arbiter_fee` at most half the challenge bond.
		BadParams,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let (draws, scanned) = Self::draw_due(now);
			// Every draw is charged as the dearest (a full set, `MAX_INFERENCE_ARBITERS`
			// seats); the cursor is read and written once.
			T::WeightInfo::draw_arbiters().saturating_mul(draws.into()).saturating_add(
				T::DbWeight::get().reads_writes(scanned.saturating_add(1).into(), 1),
			)
		}

		fn integrity_test() {
			assert!(T::MaxDrawsPerBlock::get() > 0, "arbiters must be drawn");
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Announces (or renews, or changes) what the caller serves: `layers` of the accepted
		/// `version`, at `endpoint`, for `price_per_token`, `capacity` sessions at once, with
		/// `bond` held (the difference to a previous bond is held or released).
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::announce())]
		pub fn announce(
			origin: OriginFor<T>,
			version: VersionId,
			layers: LayerSpan,
			endpoint: BoundedVec<u8, T::MaxEndpointLen>,
			price_per_token: BalanceOf<T>,
			capacity: u32,
			bond: BalanceOf<T>,
		) -> DispatchResult {
			let server = ensure_signed(origin)?;
			let offer = Offer { version, layers, endpoint, price_per_token, capacity, bond };
			let previous = Self::check_offer(&server, &offer, true)?;
			Self::put_announcement(server, offer, previous.map(|a| a.bond))
		}

		/// Announces like `announce` when the server list is full, in the place of `displaced`,
		/// whose bond must be lower than `bond`; `displaced`'s announcement is removed and its
		/// bond unbonds. Squatting the list thus costs more than any honest server bonds, per
		/// slot (as a collator candidate takes a slot in `pallet-collator-selection`).
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::take_slot())]
		#[allow(clippy::too_many_arguments)] // announce's six and the server displaced
		pub fn take_slot(
			origin: OriginFor<T>,
			displaced: T::AccountId,
			version: VersionId,
			layers: LayerSpan,
			endpoint: BoundedVec<u8, T::MaxEndpointLen>,
			price_per_token: BalanceOf<T>,
			capacity: u32,
			bond: BalanceOf<T>,
		) -> DispatchResult {
			let server = ensure_signed(origin)?;
			let offer = Offer { version, layers, endpoint, price_per_token, capacity, bond };
			ensure!(!Servers::<T>::contains_key(&server), Error::<T>::AlreadyAnnounced);
			ensure!(Servers::<T>::count() >= T::MaxServers::get(), Error::<T>::ServerListNotFull);
			let lower = Servers::<T>::get(&displaced).ok_or(Error::<T>::NotAnnounced)?;
			ensure!(bond > lower.bond, Error::<T>::BondNotHigher);
			Self::check_offer(&server, &offer, false)?;

			Self::remove(&displaced, &lower)?;
			Self::deposit_event(Event::Displaced { server: displaced, by: server.clone(), bond });
			Self::put_announcement(server, offer, None)
		}

		/// Withdraws the caller's announcement; its bond unbonds (held for
		/// [`InferenceParams::arbitration_window`] blocks, then [`Call::release_bond`]).
		/// Receipts it holds can still be settled.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::withdraw())]
		pub fn withdraw(origin: OriginFor<T>) -> DispatchResult {
			let server = ensure_signed(origin)?;
			let announcement = Servers::<T>::get(&server).ok_or(Error::<T>::NotAnnounced)?;
			Self::remove(&server, &announcement)?;
			Self::deposit_event(Event::Withdrawn { server });
			Ok(())
		}

		/// Removes `server`'s expired announcement (anyone may); its bond unbonds.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::reap())]
		pub fn reap(origin: OriginFor<T>, server: T::AccountId) -> DispatchResult {
			let by = ensure_signed(origin)?;
			let announcement = Servers::<T>::get(&server).ok_or(Error::<T>::NotAnnounced)?;
			ensure!(
				frame_system::Pallet::<T>::block_number() >= announcement.expires_at,
				Error::<T>::NotExpired
			);
			Self::remove(&server, &announcement)?;
			Self::deposit_event(Event::Reaped { server, by });
			Ok(())
		}

		/// Settles the caller's `receipts`: all of them, or — if any is wrong, replayed, or
		/// cannot be paid — none.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::settle(receipts.len() as u32))]
		pub fn settle(
			origin: OriginFor<T>,
			receipts: BoundedVec<SignedReceiptOf<T>, T::MaxReceiptsPerBatch>,
		) -> DispatchResult {
			let server = ensure_signed(origin)?;
			ensure!(!receipts.is_empty(), Error::<T>::EmptyBatch);
			let genesis = H256::from_slice(
				frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero()).as_ref(),
			);

			// Check every receipt; sum what each client owes.
			let mut nonces: BTreeMap<T::AccountId, u64> = BTreeMap::new();
			let mut new_clients: BTreeSet<T::AccountId> = BTreeSet::new();
			let mut owed: BTreeMap<T::AccountId, (BalanceOf<T>, u32)> = BTreeMap::new();
			for SignedReceipt { receipt, signature } in receipts.iter() {
				ensure!(receipt.server == server, Error::<T>::WrongServer);
				let payload = receipt_payload(&genesis, receipt);
				ensure!(
					signature.verify(&payload[..], &receipt.client),
					Error::<T>::BadReceiptSignature
				);
				let last = match nonces.get(&receipt.client) {
					Some(n) => Some(*n),
					None => {
						let stored = SettledNonce::<T>::get(&receipt.client, &server);
						if stored.is_none() {
							new_clients.insert(receipt.client.clone());
						}
						stored
					}
				};
				ensure!(last.is_none_or(|last| receipt.nonce > last), Error::<T>::ReceiptReplayed);
				nonces.insert(receipt.client.clone(), receipt.nonce);

				let entry = owed.entry(receipt.client.clone()).or_insert((Zero::zero(), 0));
				if receipt.free {
					ensure!(receipt.price_per_token.is_zero(), Error::<T>::FreeReceiptPriced);
					entry.1 = entry.1.checked_add(1).ok_or(Error::<T>::Overflow)?;
				} else {
					let tokens: BalanceOf<T> =
						receipt.tokens_in.saturating_add(receipt.tokens_out).into();
					let amount =
						receipt.price_per_token.checked_mul(&tokens).ok_or(Error::<T>::Overflow)?;
					entry.0 = entry.0.checked_add(&amount).ok_or(Error::<T>::Overflow)?;
				}
			}
			let nonce_deposit = T::NonceDeposit::get();
			for (client, (amount, free)) in &owed {
				let spendable = T::Currency::reducible_balance(
					client,
					Preservation::Preserve,
					Fortitude::Polite,
				);
				let deposit =
					if new_clients.contains(client) { nonce_deposit } else { Zero::zero() };
				let due = amount.checked_add(&deposit).ok_or(Error::<T>::Overflow)?;
				ensure!(due <= spendable, Error::<T>::ClientCannotPay);
				ensure!(T::FreeQuota::remaining(client) >= *free, Error::<T>::FreeQuotaExhausted);
			}

			// Write: quotas, payments, nonce deposits, nonces.
			let (mut paid, mut free_requests) = (BalanceOf::<T>::zero(), 0u32);
			for (client, (amount, free)) in &owed {
				T::FreeQuota::consume(client, *free)?;
				if !amount.is_zero() && *client != server {
					T::Currency::transfer(client, &server, *amount, Preservation::Preserve)?;
				}
				paid = paid.saturating_add(*amount);
				free_requests = free_requests.saturating_add(*free);
			}
			if !nonce_deposit.is_zero() {
				for client in &new_clients {
					T::Currency::hold(&HoldReason::ReceiptNonce.into(), client, nonce_deposit)?;
				}
			}
			for (client, nonce) in nonces {
				SettledNonce::<T>::insert(&client, &server, nonce);
			}
			Self::deposit_event(Event::Settled {
				server,
				receipts: receipts.len() as u32,
				paid,
				free_requests,
			});
			Ok(())
		}

		/// Challenges what `commitment.server` answered in one session: `signature` is the
		/// server's over `commitment` (the last it signed of the session, naming the running
		/// hash of every request and answer), `evidence` where the session's record is (an IPFS
		/// CID). Holds [`InferenceParams::challenge_bond`] from the caller until the challenge
		/// is closed. The server must be announced or its bond unbonding (that bond is what a
		/// proven fraud slashes), and the answers bit-exact. The arbiters are drawn at the start
		/// of the next block.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::challenge())]
		pub fn challenge(
			origin: OriginFor<T>,
			commitment: ChunkCommitment<T::AccountId>,
			signature: T::Signature,
			evidence: BoundedVec<u8, T::MaxEvidenceLen>,
		) -> DispatchResult {
			let challenger = ensure_signed(origin)?;
			let server = commitment.server.clone();
			ensure!(challenger != server, Error::<T>::SelfChallenge);
			ensure!(commitment.bit_exact, Error::<T>::NotBitExact);
			ensure!(!evidence.is_empty(), Error::<T>::NoEvidence);
			let layers = LayerSpan { start: commitment.layers.0, end: commitment.layers.1 };
			ensure!(
				layers.is_valid(MAX_LAYERS) && T::Registry::version(commitment.version).is_some(),
				Error::<T>::BadCommitment
			);
			let payload = chunk_commitment_payload(&Self::genesis(), &commitment);
			ensure!(signature.verify(&payload[..], &server), Error::<T>::BadCommitmentSignature);
			ensure!(
				Servers::<T>::contains_key(&server) || Unbonding::<T>::contains_key(&server),
				Error::<T>::NotAnnounced
			);
			ensure!(
				!ProvenSessions::<T>::contains_key(&server, commitment.session),
				Error::<T>::AlreadyProven
			);
			let params = Params::<T>::get();
			ensure!(
				T::Currency::can_hold(
					&HoldReason::ChallengeBond.into(),
					&challenger,
					params.challenge_bond
				),
				Error::<T>::InsufficientChallengeBond
			);
			let challenge = NextChallengeId::<T>::get();
			let next = challenge.checked_add(1).ok_or(Error::<T>::Overflow)?;
			let open = OpenChallenges::<T>::get(&server).unwrap_or(0).saturating_add(1);

			T::Currency::hold(
				&HoldReason::ChallengeBond.into(),
				&challenger,
				params.challenge_bond,
			)?;
			let now = frame_system::Pallet::<T>::block_number();
			// Drawn from a later block's randomness: the challenger cannot know it, and nobody
			// chooses when the draw is made.
			let draw_at = now.saturating_add(1u32.into());
			let deadline = now.saturating_add(params.arbitration_window);
			let session = commitment.session;
			NextChallengeId::<T>::put(next);
			OpenChallenges::<T>::insert(&server, open);
			DrawQueue::<T>::insert(draw_at, challenge, ());
			Challenges::<T>::insert(
				challenge,
				InferenceChallenge {
					challenger: challenger.clone(),
					commitment,
					evidence,
					bond: params.challenge_bond,
					draw_at,
					deadline,
					arbiters: None,
				},
			);
			Self::deposit_event(Event::Challenged {
				challenge,
				challenger,
				server,
				session,
				draw_at,
				deadline,
			});
			Ok(())
		}

		/// An arbiter reports, once, whether the session's record shows the server answering
		/// other bits than the committed version's layers give (`wrong`). A record that cannot
		/// be fetched, or does not hash to the signed transcript, is the challenger's failure:
		/// `wrong = false`.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::arbitrate())]
		pub fn arbitrate(
			origin: OriginFor<T>,
			challenge: ChallengeId,
			wrong: bool,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut open = Challenges::<T>::get(challenge).ok_or(Error::<T>::UnknownChallenge)?;
			ensure!(frame_system::Pallet::<T>::block_number() < open.deadline, Error::<T>::TooLate);
			let seat = open
				.arbiters
				.as_mut()
				.and_then(|seats| {
					seats.iter_mut().find(|(a, report)| *a == who && report.is_none())
				})
				.ok_or(Error::<T>::NotArbiter)?;
			seat.1 = Some(wrong);
			Challenges::<T>::insert(challenge, open);
			Self::deposit_event(Event::Arbitrated { challenge, arbiter: who });
			Ok(())
		}

		/// Closes a challenge (anyone may) once two thirds of its arbiters agree, or after its
		/// deadline, and pays out as [`ChallengeOutcome`] says: arbiters who reported the
		/// decision are paid their fee, those who reported otherwise (or, at the deadline, are
		/// still silent) penalised.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::close_challenge().max(T::WeightInfo::close_challenge_silent()))]
		pub fn close_challenge(origin: OriginFor<T>, challenge: ChallengeId) -> DispatchResult {
			ensure_signed(origin)?;
			let open = Challenges::<T>::get(challenge).ok_or(Error::<T>::UnknownChallenge)?;
			let past_deadline = frame_system::Pallet::<T>::block_number() >= open.deadline;
			let decision = Self::decision(&open);
			let outcome = match decision {
				// Another challenge of the same session proved it first: the lie was paid
				// for once; this challenger gets its bond back.
				Some(ChallengeOutcome::FraudProven)
					if ProvenSessions::<T>::contains_key(
						&open.commitment.server,
						open.commitment.session,
					) =>
				{
					ChallengeOutcome::Undecided
				}
				Some(outcome) => outcome,
				// Not drawn yet (a backlog of draws): its arbiters get their window first.
				None if !past_deadline || open.arbiters.is_none() => {
					return Err(Error::<T>::NotDecided.into())
				}
				None => ChallengeOutcome::Undecided,
			};
			Self::close(challenge, open, outcome, decision, past_deadline);
			Ok(())
		}

		/// Releases `server`'s unbonded bond to it (anyone may), once its unbonding has ended
		/// and no challenge names it.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::release_bond())]
		pub fn release_bond(origin: OriginFor<T>, server: T::AccountId) -> DispatchResult {
			ensure_signed(origin)?;
			let unbonding = Unbonding::<T>::get(&server).ok_or(Error::<T>::NotUnbonding)?;
			ensure!(
				frame_system::Pallet::<T>::block_number() >= unbonding.release_at,
				Error::<T>::StillUnbonding
			);
			Self::ensure_unchallenged(&server)?;
			let reason = HoldReason::ServerBond.into();
			let amount = T::Currency::balance_on_hold(&reason, &server).min(unbonding.amount);
			T::Currency::release(&reason, &server, amount, Precision::BestEffort)?;
			Unbonding::<T>::remove(&server);
			Self::deposit_event(Event::BondReleased { server, amount });
			Ok(())
		}
	}
}

/// What a server offers in an announcement.
struct Offer<T: Config> {
	version: VersionId,
	layers: LayerSpan,
	endpoint: BoundedVec<u8, T::MaxEndpointLen>,
	price_per_token: BalanceOf<T>,
	capacity: u32,
	bond: BalanceOf<T>,
}

impl<T: Config> Pallet<T> {
	/// Every check of an announcement by `server` (and, `with_room`, that a new one fits in the
	/// list), without writing: returns `server`'s current announcement, if any.
	fn check_offer(
		server: &T::AccountId,
		offer: &Offer<T>,
		with_room: bool,
	) -> Result<Option<AnnouncementOf<T>>, DispatchError> {
		let summary = T::Registry::version(offer.version).ok_or(Error::<T>::VersionNotAccepted)?;
		ensure!(summary.status == VersionStatus::Accepted, Error::<T>::VersionNotAccepted);
		ensure!(offer.layers.is_valid(MAX_LAYERS), Error::<T>::BadLayerSpan);
		ensure!(
			offer.endpoint.starts_with(b"http://") || offer.endpoint.starts_with(b"https://"),
			Error::<T>::BadEndpoint
		);
		ensure!(offer.capacity > 0, Error::<T>::ZeroCapacity);
		ensure!(offer.bond >= T::MinServerBond::get(), Error::<T>::BondTooLow);
		let previous = Servers::<T>::get(server);
		let held = previous.as_ref().map(|a| a.bond).unwrap_or_else(Zero::zero);
		if with_room && previous.is_none() {
			ensure!(Servers::<T>::count() < T::MaxServers::get(), Error::<T>::TooManyServers);
		}
		if offer.bond > held {
			let unbonding =
				Unbonding::<T>::get(server).map(|u| u.amount).unwrap_or_else(Zero::zero);
			let more = offer.bond.saturating_sub(held).saturating_sub(unbonding);
			ensure!(
				more.is_zero()
					|| T::Currency::can_hold(&HoldReason::ServerBond.into(), server, more),
				Error::<T>::InsufficientBond
			);
		}
		Ok(previous)
	}

	/// Holds or releases the difference to the `held` bond and writes the announcement.
	fn put_announcement(
		server: T::AccountId,
		offer: Offer<T>,
		held: Option<BalanceOf<T>>,
	) -> DispatchResult {
		let Offer { version, layers, endpoint, price_per_token, capacity, bond } = offer;
		let held = held.unwrap_or_else(Zero::zero);
		let reason = HoldReason::ServerBond.into();
		if bond > held {
			// A bond still unbonding is taken back first (a restarted server needs no second
			// bond): it stays held, announced again, and answers for all the same.
			let mut more = bond.saturating_sub(held);
			if let Some(mut unbonding) = Unbonding::<T>::get(&server) {
				let back = unbonding.amount.min(more);
				more = more.saturating_sub(back);
				unbonding.amount = unbonding.amount.saturating_sub(back);
				if unbonding.amount.is_zero() {
					Unbonding::<T>::remove(&server);
				} else {
					Unbonding::<T>::insert(&server, unbonding);
				}
			}
			if !more.is_zero() {
				T::Currency::hold(&reason, &server, more)?;
			}
		} else if held > bond {
			// What the server takes off its bond answers for its answers so far: it unbonds.
			Self::unbond(&server, held.saturating_sub(bond));
		}
		let expires_at =
			frame_system::Pallet::<T>::block_number().saturating_add(T::AnnouncementTtl::get());
		Servers::<T>::insert(
			&server,
			Announcement { version, layers, endpoint, price_per_token, capacity, bond, expires_at },
		);
		Self::deposit_event(Event::Announced {
			server,
			version,
			layers,
			price_per_token,
			bond,
			expires_at,
		});
		Ok(())
	}

	/// Ends `server`'s announcement; its bond stays held, unbonding, until it can no longer be
	/// challenged.
	fn remove(server: &T::AccountId, announcement: &AnnouncementOf<T>) -> DispatchResult {
		Servers::<T>::remove(server);
		Self::unbond(server, announcement.bond);
		Ok(())
	}

	/// Adds `amount` of `server`'s held bond to its unbonding bond, released
	/// [`InferenceParams::arbitration_window`] blocks from now at the earliest.
	fn unbond(server: &T::AccountId, amount: BalanceOf<T>) {
		let release_at = frame_system::Pallet::<T>::block_number()
			.saturating_add(Params::<T>::get().arbitration_window);
		let unbonding = Unbonding::<T>::mutate(server, |entry| {
			let entry = entry
				.get_or_insert(UnbondingBond { amount: Zero::zero(), release_at: Zero::zero() });
			entry.amount = entry.amount.saturating_add(amount);
			entry.release_at = entry.release_at.max(release_at);
			entry.clone()
		});
		Self::deposit_event(Event::Unbonding {
			server: server.clone(),
			amount: unbonding.amount,
			release_at: unbonding.release_at,
		});
	}

	fn genesis() -> H256 {
		H256::from_slice(
			frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero()).as_ref(),
		)
	}

	fn ensure_unchallenged(server: &T::AccountId) -> DispatchResult {
		ensure!(!OpenChallenges::<T>::contains_key(server), Error::<T>::UnderChallenge);
		Ok(())
	}

	/// Two thirds of the drawn seats reporting the same way, if they have.
	fn decision(open: &InferenceChallengeOf<T>) -> Option<ChallengeOutcome> {
		let seats = open.arbiters.as_ref()?;
		let count = |wrong: bool| seats.iter().filter(|(_, r)| *r == Some(wrong)).count();
		arbitration_decision(seats.len(), count(true), count(false)).map(|wrong| {
			if wrong {
				ChallengeOutcome::FraudProven
			} else {
				ChallengeOutcome::Refuted
			}
		})
	}

	/// Draws the arbiters of the challenges due by `now`, at most [`Config::MaxDrawsPerBlock`]
	/// of them (the rest wait for the next block). Returns the draws made and the blocks of
	/// [`DrawQueue`] read.
	fn draw_due(now: BlockNumberFor<T>) -> (u32, u32) {
		let drained = drain_due(
			DrawCursor::<T>::get(),
			now,
			T::MaxDrawsPerBlock::get(),
			|block, n| DrawQueue::<T>::iter_key_prefix(block).take(n).collect(),
			|block, challenge| {
				DrawQueue::<T>::remove(block, challenge);
				Self::draw(challenge, now);
			},
		);
		DrawCursor::<T>::put(drained.cursor);
		(drained.handled, drained.scanned)
	}

	/// Draws a challenge's arbiters: [`InferenceParams::arbiters`] bonded verifiers,
	/// stake-weighted, neither the server nor the challenger, seeded by this block's
	/// [`Config::Randomness`].
	fn draw(challenge: ChallengeId, now: BlockNumberFor<T>) {
		let Some(mut open) = Challenges::<T>::get(challenge) else { return };
		if open.arbiters.is_some() {
			return;
		}
		let params = Params::<T>::get();
		// The arbiters have as long from their draw as from a draw in the block after the
		// challenge, however late the draw came (a backlog of draws must not leave them too
		// little time, then penalise their silence).
		let from_draw = now.saturating_add(params.arbitration_window).saturating_sub(1u32.into());
		open.deadline = open.deadline.max(from_draw);
		let count = params.arbiters.min(MAX_INFERENCE_ARBITERS);
		let (seed, _) = T::Randomness::random(&(b"bly/inference-arbiters", challenge).encode());
		let exclude = [open.challenger.clone(), open.commitment.server.clone()];
		let drawn = T::Verifiers::draw(seed.as_ref(), count, &exclude);
		let seats = BoundedVec::truncate_from(drawn.iter().cloned().map(|a| (a, None)).collect());
		open.arbiters = Some(seats);
		let deadline = open.deadline;
		Challenges::<T>::insert(challenge, open);
		Self::deposit_event(Event::ArbitersDrawn { challenge, arbiters: drawn, deadline });
	}

	/// Pays out a challenge's `outcome` and removes it. `decision` is what two thirds of the
	/// arbiters reported, if they did; `past_deadline` whether silent arbiters ran out of time.
	fn close(
		challenge: ChallengeId,
		open: InferenceChallengeOf<T>,
		outcome: ChallengeOutcome,
		decision: Option<ChallengeOutcome>,
		past_deadline: bool,
	) {
		let params = Params::<T>::get();
		let server = open.commitment.server.clone();
		let bond_reason = HoldReason::ChallengeBond.into();
		let server_reason = HoldReason::ServerBond.into();
		let seats = open.arbiters.clone().unwrap_or_default();
		let decided_wrong = decision.map(|d| d == ChallengeOutcome::FraudProven);
		// Paid their fee: the seats that reported what was decided, when a loser pays.
		let paid: Vec<T::AccountId> = match (outcome, decided_wrong) {
			(ChallengeOutcome::FraudProven | ChallengeOutcome::Refuted, Some(wrong)) => seats
				.iter()
				.filter(|(_, report)| *report == Some(wrong))
				.map(|(arbiter, _)| arbiter.clone())
				.collect(),
			_ => Vec::new(),
		};
		let (mut slashed, mut to_challenger, mut forfeited, mut to_server, mut to_arbiters) =
			(Zero::zero(), Zero::zero(), Zero::zero(), Zero::zero(), Zero::zero());
		match outcome {
			ChallengeOutcome::FraudProven => {
				let _ = T::Currency::release(
					&bond_reason,
					&open.challenger,
					open.bond,
					Precision::BestEffort,
				);
				// The bond announced and any still unbonding: all of it answers for the lie.
				let bonded = Servers::<T>::get(&server).map(|a| a.bond).unwrap_or_else(Zero::zero);
				let unbonding =
					Unbonding::<T>::get(&server).map(|u| u.amount).unwrap_or_else(Zero::zero);
				if !bonded.saturating_add(unbonding).is_zero() {
					let held = T::Currency::balance_on_hold(&server_reason, &server)
						.min(bonded.saturating_add(unbonding));
					slashed = params.fraud_slash.mul_floor(held);
					to_challenger = Self::pay_held(
						&server_reason,
						&server,
						&open.challenger,
						params.challenger_share.mul_floor(slashed),
					);
					to_arbiters = Self::pay_arbiters(
						&server_reason,
						&server,
						&paid,
						params.arbiter_fee,
						slashed.saturating_sub(to_challenger),
					);
					let _ = T::Currency::burn_held(
						&server_reason,
						&server,
						slashed.saturating_sub(to_challenger).saturating_sub(to_arbiters),
						Precision::BestEffort,
						Fortitude::Force,
					);
					// A server proven to lie is routed to no more; what is left of its bond
					// unbonds (other challenges of it may still be open).
					let rest = T::Currency::balance_on_hold(&server_reason, &server);
					Servers::<T>::remove(&server);
					Unbonding::<T>::remove(&server);
					if !rest.is_zero() {
						Self::unbond(&server, rest);
					}
				}
				ProvenSessions::<T>::insert(&server, open.commitment.session, ());
			}
			ChallengeOutcome::Refuted => {
				forfeited = open.bond;
				to_server = Self::pay_held(
					&bond_reason,
					&open.challenger,
					&server,
					open.bond / 2u32.into(),
				);
				to_arbiters = Self::pay_arbiters(
					&bond_reason,
					&open.challenger,
					&paid,
					params.arbiter_fee,
					open.bond.saturating_sub(to_server),
				);
				let _ = T::Currency::burn_held(
					&bond_reason,
					&open.challenger,
					open.bond.saturating_sub(to_server).saturating_sub(to_arbiters),
					Precision::BestEffort,
					Fortitude::Force,
				);
			}
			ChallengeOutcome::Undecided => {
				let _ = T::Currency::release(
					&bond_reason,
					&open.challenger,
					open.bond,
					Precision::BestEffort,
				);
			}
		}
		// Reported against two thirds of the seats (bit-exact re-execution has one answer), or
		// let the deadline pass in silence: the verifier penalty. A seat still silent when two
		// thirds decided early is not (it may have been re-executing).
		for (arbiter, report) in seats.iter() {
			let dissented = matches!((report, decided_wrong), (Some(r), Some(d)) if *r != d);
			if dissented || (report.is_none() && past_deadline) {
				T::Verifiers::penalise(VerifierDuty::InferenceChallenge(challenge), arbiter);
			}
		}
		Challenges::<T>::remove(challenge);
		match OpenChallenges::<T>::get(&server).unwrap_or(0).saturating_sub(1) {
			0 => OpenChallenges::<T>::remove(&server),
			left => OpenChallenges::<T>::insert(&server, left),
		}
		Self::deposit_event(Event::ChallengeClosed {
			challenge,
			server,
			challenger: open.challenger,
			outcome,
			slashed,
			to_challenger,
			forfeited,
			to_server,
			to_arbiters,
		});
	}

	/// Pays `amount` of `from`'s funds held for `reason` to `to` (as much of it as is held).
	fn pay_held(
		reason: &T::RuntimeHoldReason,
		from: &T::AccountId,
		to: &T::AccountId,
		amount: BalanceOf<T>,
	) -> BalanceOf<T> {
		T::Currency::transfer_on_hold(
			reason,
			from,
			to,
			amount,
			Precision::BestEffort,
			Restriction::Free,
			Fortitude::Force,
		)
		.unwrap_or_else(|_| Zero::zero())
	}

	/// Pays each of `arbiters` `fee` out of `from`'s funds held for `reason`, `budget` in all at
	/// most (in seat order, the last ones short when it runs out). Returns what was paid.
	fn pay_arbiters(
		reason: &T::RuntimeHoldReason,
		from: &T::AccountId,
		arbiters: &[T::AccountId],
		fee: BalanceOf<T>,
		budget: BalanceOf<T>,
	) -> BalanceOf<T> {
		let mut paid: BalanceOf<T> = Zero::zero();
		for arbiter in arbiters {
			let amount = fee.min(budget.saturating_sub(paid));
			if amount.is_zero() {
				break;
			}
			paid = paid.saturating_add(Self::pay_held(reason, from, arbiter, amount));
		}
		paid
	}

	fn check_params(params: &ParamsOf<T>) -> DispatchResult {
		let fees = params.arbiter_fee.checked_mul(&params.arbiters.into());
		let forfeit_burned =
			params.challenge_bond.saturating_sub(params.challenge_bond / 2u32.into());
		ensure!(
			(1..=MAX_INFERENCE_ARBITERS).contains(&params.arbiters)
				&& params.arbitration_window >= 3u32.into()
				&& fees.is_some_and(|fees| fees <= forfeit_burned),
			Error::<T>::BadParams
		);
		Ok(())
	}

	/// Announcements not yet expired, for routing.
	pub fn live_servers() -> Vec<(T::AccountId, AnnouncementOf<T>)> {
		let now = frame_system::Pallet::<T>::block_number();
		Servers::<T>::iter().filter(|(_, a)| a.expires_at > now).collect()
	}
}

impl<T: Config> GovernedParams<ParamsOf<T>> for Pallet<T> {
	fn params() -> ParamsOf<T> {
		Params::<T>::get()
	}

	fn set_params(params: ParamsOf<T>) -> DispatchResult {
		Self::check_params(&params)?;
		Params::<T>::put(params.clone());
		Self::deposit_event(Event::ParamsSet { params });
		Ok(())
	}
}
