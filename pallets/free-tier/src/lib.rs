//! # Free tier
//!
//! AI for people without tokens, without letting bots farm it.
//!
//! - **Trust score** (0–100) per account from what the chain has seen it do: accepted
//!   improvements (10 points each, up to 40), honest verifications (2 each, up to 30), BLY held
//!   (1 point per [`Config::StakeUnit`], up to 20) and age since its first contribution (1 point
//!   per 30 days, up to 10). Proof-of-Learning reports contributions through
//!   [`blyan_primitives::pol::ContributionObserver`].
//! - **Daily quota** of free inference requests from `min_daily_quota` (5) at score 0 to
//!   `max_daily_quota` (500) at 100, linearly; the day is [`Config::DayLength`] blocks and the
//!   count starts again each day.
//! - **Feeless within quota, refused in the pool beyond it**: [`ChargeUnlessFree`] wraps the
//!   runtime's fee extension (same identifier and encoding, so wallets see no difference). A
//!   [`Call::request`] that [`Pallet::check`] admits pays no fee; one it does not admit is invalid
//!   in the transaction pool and never reaches a block.
//! - **Proof of work** for accounts with no trust (score 0): each request carries a [`PowSeal`]
//!   whose hash — over the account, a recent block's number and hash, and a nonce — has
//!   `pow_difficulty` leading zero bits. It must name a block within `pow_window` blocks, and
//!   each account's seals must name strictly later blocks, so none can be replayed.
//! - **Usage expires**: what an account used is stored under the day it was used on; days
//!   before yesterday are deleted in `on_initialize` (at most [`Config::MaxPrunePerBlock`] keys a
//!   block), so fresh keys asking once each cannot grow the state for ever. The seal's window is
//!   at most a day, so today's and yesterday's records are all a replay check needs.
//! - An account with no balance cannot sign a transaction at all (`CheckNonce` refuses accounts
//!   nobody provides for), so [`Call::request_unsigned`] takes the same request signed inside the
//!   call and always with a seal; it is validated in the pool like the signed one. Its seal is
//!   spent even for a trusted account (which need not do the work): the call is unsigned, so
//!   without that anyone could replay it and spend the account's quota.
//! - At most `max_free_per_block` free requests enter one block, whoever sends them (a full
//!   block is `ExhaustsResources`: the request waits for the next).
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod extension;
#[cfg(any(feature = "try-runtime", feature = "test-fixtures", test))]
mod invariants;
pub mod migrations;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

pub use blyan_primitives::params::FreeTierParams;
pub use extension::ChargeUnlessFree;
pub use weights::WeightInfo;

use blyan_primitives::{
	inference::FreeQuota,
	params::GovernedParams,
	pol::{ContributionObserver, VersionId},
};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{pallet_prelude::*, traits::fungible::Inspect};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::{
	traits::{IdentifyAccount, Saturating, UniqueSaturatedInto, Verify, Zero},
	DispatchResult,
};

/// A free inference request: which model version, a hash of the prompt (the prompt itself goes
/// to the server off chain), and the most tokens wanted.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct FreeRequest {
	/// The model version to run.
	pub version: VersionId,
	/// `blake2_256` of the prompt.
	pub prompt_hash: H256,
	/// Most tokens to generate.
	pub max_tokens: u32,
}

/// A proof of work: a block it is bound to, and the nonce that makes its hash small enough.
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
pub struct PowSeal<BlockNumber> {
	/// A recent block (its hash is part of the work).
	pub block: BlockNumber,
	/// The nonce found.
	pub nonce: u64,
}

/// What the chain has seen an account contribute.
#[derive(
	Clone,
	PartialEq,
	Eq,
	Default,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct Contribution<BlockNumber> {
	/// Improvements verified and accepted.
	pub accepted_improvements: u32,
	/// Verifications agreeing with the quorum.
	pub honest_verifications: u32,
	/// When the free tier first saw the account.
	pub first_seen: BlockNumber,
}

/// What an account used of the free tier on one day.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Default,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct DailyUsage<BlockNumber> {
	/// Requests admitted that day.
	pub used: u32,
	/// The block the account's last seal that day named; the next must name a later one.
	pub last_seal: Option<BlockNumber>,
}

/// The hash a seal's work is measured on: `blake2_256(SCALE("blyan/free-pow", who, block,
/// block_hash, nonce))`.
pub fn pow_hash<AccountId: Encode, BlockNumber: Encode>(
	who: &AccountId,
	block: &BlockNumber,
	block_hash: &H256,
	nonce: u64,
) -> [u8; 32] {
	sp_io::hashing::blake2_256(&(b"blyan/free-pow", who, block, block_hash, nonce).encode())
}

/// Leading zero bits of `hash`.
pub fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
	let mut bits = 0;
	for byte in hash {
		if *byte == 0 {
			bits += 8;
		} else {
			return bits + byte.leading_zeros();
		}
	}
	bits
}

/// Finds a nonce whose [`pow_hash`] has `difficulty` leading zero bits (what a client does;
/// about 2^difficulty hashes). Returns the nonce and the hashes tried.
pub fn mine<AccountId: Encode, BlockNumber: Encode>(
	who: &AccountId,
	block: &BlockNumber,
	block_hash: &H256,
	difficulty: u32,
) -> (u64, u64) {
	let mut nonce = 0u64;
	loop {
		if leading_zero_bits(&pow_hash(who, block, block_hash, nonce)) >= difficulty {
			return (nonce, nonce + 1);
		}
		nonce += 1;
	}
}

/// The bytes an account signs for [`Call::request_unsigned`]: bound to this chain (its genesis
/// hash), the requester, the request and the seal.
pub fn unsigned_payload<AccountId: Encode, BlockNumber: Encode>(
	genesis: &H256,
	requester: &AccountId,
	request: &FreeRequest,
	seal: &PowSeal<BlockNumber>,
) -> alloc::vec::Vec<u8> {
	(b"blyan/free-request", genesis, requester, request, seal).encode()
}

/// Transaction-validity codes of refused free requests (`InvalidTransaction::Custom`).
pub mod codes {
	/// The daily quota is spent.
	pub const QUOTA_EXHAUSTED: u8 = 1;
	/// An account with no trust sent no proof of work.
	pub const POW_REQUIRED: u8 = 2;
	/// The proof of work does not meet the difficulty.
	pub const BAD_POW: u8 = 3;
	/// The proof of work names a block too old, or not yet built.
	pub const STALE_POW: u8 = 4;
	/// The proof of work names a block this account already used (or an earlier one).
	pub const REPLAYED_POW: u8 = 5;
	/// The request's signature does not verify.
	pub const BAD_SIGNATURE: u8 = 7;
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	/// Balance of an account.
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

	/// The storage layout's version: bumped, with a migration in [`crate::migrations`], on
	/// every change of layout.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// BLY, for the stake part of the trust score.
		type Currency: Inspect<Self::AccountId>;
		/// Signature of [`Call::request_unsigned`]; its signer is an account.
		type Signature: Verify<Signer = Self::Signer> + Parameter + Member + MaxEncodedLen;
		/// The public key behind an account.
		type Signer: IdentifyAccount<AccountId = Self::AccountId>;
		/// BLY held per trust point (up to 20 points).
		#[pallet::constant]
		type StakeUnit: Get<BalanceOf<Self>>;
		/// Blocks in a quota day.
		#[pallet::constant]
		type DayLength: Get<BlockNumberFor<Self>>;
		/// [`Params`] until governance changes them.
		type DefaultParams: Get<FreeTierParams<BlockNumberFor<Self>>>;
		/// Most expired usage records deleted in one block. `max_free_per_block` may be at most
		/// half of it, so pruning outpaces admission and the backlog cannot grow.
		#[pallet::constant]
		type MaxPrunePerBlock: Get<u32>;
		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;
	}

	/// Quotas, proof-of-work difficulty and window, per-block cap.
	#[pallet::storage]
	pub type Params<T: Config> =
		StorageValue<_, FreeTierParams<BlockNumberFor<T>>, ValueQuery, T::DefaultParams>;

	/// Contributions seen per account (one entry per account that contributed or asked).
	#[pallet::storage]
	pub type Contributions<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, Contribution<BlockNumberFor<T>>, OptionQuery>;

	/// Free requests used per day and account; days before yesterday are pruned.
	#[pallet::storage]
	pub type Usage<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		u32,
		Blake2_128Concat,
		T::AccountId,
		DailyUsage<BlockNumberFor<T>>,
		ValueQuery,
	>;

	/// The oldest day whose usage records may remain (earlier ones are deleted).
	#[pallet::storage]
	pub type PrunedBefore<T: Config> = StorageValue<_, u32, ValueQuery>;

	/// Free requests admitted in a block: `(block, count)`.
	#[pallet::storage]
	pub type BlockCount<T: Config> = StorageValue<_, (BlockNumberFor<T>, u32), ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A free request was admitted; servers pick it up from here.
		FreeRequested { who: T::AccountId, request: FreeRequest, used_today: u32, quota: u32 },
		/// New parameters.
		ParamsSet { params: FreeTierParams<BlockNumberFor<T>> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// Today's free requests are used up.
		QuotaExhausted,
		/// An account with no trust must attach a proof of work.
		ProofOfWorkRequired,
		/// The proof of work does not meet the difficulty.
		BadProofOfWork,
		/// The proof of work names a block too old, or not yet built.
		StaleProofOfWork,
		/// The proof of work names a block this account already used, or an earlier one.
		ReplayedProofOfWork,
		/// This block holds its share of free requests already.
		BlockFull,
		/// The request's signature does not verify.
		BadSignature,
		/// Quotas out of order (min above max), a zero window or cap, a proof-of-work window
		/// longer than a day, or a per-block cap above half of `MaxPrunePerBlock`.
		BadParams,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}

		fn integrity_test() {
			assert!(T::MaxPrunePerBlock::get() > 0, "pruning must progress");
			assert!(
				Pallet::<T>::check_params(&T::DefaultParams::get()).is_ok(),
				"free-tier params"
			);
		}

		fn on_initialize(_now: BlockNumberFor<T>) -> Weight {
			Self::prune()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// A free inference request from an account that can sign (it holds some BLY or has
		/// trust). Feeless within the daily quota (through [`ChargeUnlessFree`]); an account
		/// with no trust attaches a proof of work.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::request())]
		pub fn request(
			origin: OriginFor<T>,
			request: FreeRequest,
			seal: Option<PowSeal<BlockNumberFor<T>>>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::admit(&who, request, seal.as_ref(), false)
		}

		/// The same request from an account that holds nothing (and so cannot sign a
		/// transaction): signed inside the call over [`unsigned_payload`], always with a proof
		/// of work. Validated in the pool like [`Call::request`].
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::request_unsigned())]
		pub fn request_unsigned(
			origin: OriginFor<T>,
			requester: T::AccountId,
			request: FreeRequest,
			seal: PowSeal<BlockNumberFor<T>>,
			signature: T::Signature,
		) -> DispatchResult {
			ensure_none(origin)?;
			Self::check_signature(&requester, &request, &seal, &signature)?;
			Self::admit(&requester, request, Some(&seal), true)
		}
	}

	// The bare path stays until wallets can send general (v5) transactions for
	// `#[pallet::authorize]`; polkadot-sdk keeps it for `claims` for the same reason.
	#[allow(deprecated)]
	#[pallet::validate_unsigned]
	impl<T: Config> ValidateUnsigned for Pallet<T> {
		type Call = Call<T>;

		fn validate_unsigned(_source: TransactionSource, call: &Self::Call) -> TransactionValidity {
			let Call::request_unsigned { requester, request, seal, signature } = call else {
				return InvalidTransaction::Call.into();
			};
			Self::check_signature(requester, request, seal, signature).map_err(to_validity)?;
			let admission = Self::check(requester, Some(seal), true).map_err(to_validity)?;
			ValidTransaction::with_tag_prefix("BlyanFreeTier")
				.priority(0)
				.and_provides((requester, seal.block))
				.and_provides(quota_tag(requester, &admission))
				.longevity(Params::<T>::get().pow_window.unique_saturated_into())
				.propagate(true)
				.build()
		}
	}
}

/// A refusal as the pool reports it.
pub(crate) fn to_validity<T>(error: Error<T>) -> TransactionValidityError {
	use codes::*;
	// A full block is no fault of the request: the block builder tries it again in the next.
	if matches!(error, Error::BlockFull) {
		return InvalidTransaction::ExhaustsResources.into();
	}
	let code = match error {
		Error::QuotaExhausted => QUOTA_EXHAUSTED,
		Error::ProofOfWorkRequired => POW_REQUIRED,
		Error::BadProofOfWork => BAD_POW,
		Error::StaleProofOfWork => STALE_POW,
		Error::ReplayedProofOfWork => REPLAYED_POW,
		Error::BadSignature => BAD_SIGNATURE,
		_ => 0,
	};
	InvalidTransaction::Custom(code).into()
}

/// The pool tag of a free request: the account's next quota slot today. Two pending requests
/// of one account claim the same slot, so the pool keeps one until a block takes it.
pub(crate) fn quota_tag<AccountId: Encode, BlockNumber>(
	who: &AccountId,
	admission: &Admission<BlockNumber>,
) -> alloc::vec::Vec<u8> {
	(b"blyan/free-slot", who, admission.day, admission.used).encode()
}

/// What [`Pallet::check`] found: how much of the quota is used, and whether a seal is spent.
pub struct Admission<BlockNumber> {
	/// Today's index.
	pub day: u32,
	/// Requests used today before this one.
	pub used: u32,
	/// The day's quota.
	pub quota: u32,
	/// The seal's block, if the request needed one.
	pub seal_block: Option<BlockNumber>,
}

impl<T: Config> Pallet<T> {
	/// Trust score of `who`, 0–100.
	pub fn trust_score(who: &T::AccountId) -> u32 {
		let held: u128 = T::Currency::total_balance(who).unique_saturated_into();
		let unit: u128 = T::StakeUnit::get().unique_saturated_into();
		let stake = held.checked_div(unit).unwrap_or(0).min(20) as u32;
		let Some(c) = Contributions::<T>::get(who) else { return stake };
		let now = frame_system::Pallet::<T>::block_number();
		let day: u128 = T::DayLength::get().unique_saturated_into();
		let age_blocks: u128 = now.saturating_sub(c.first_seen).unique_saturated_into();
		let age = age_blocks.checked_div(day.saturating_mul(30)).unwrap_or(0).min(10) as u32;
		let improvements = c.accepted_improvements.saturating_mul(10).min(40);
		let verifications = c.honest_verifications.saturating_mul(2).min(30);
		improvements + verifications + stake + age
	}

	/// Free requests a day at `score`.
	pub fn quota(score: u32, params: &FreeTierParams<BlockNumberFor<T>>) -> u32 {
		let span = params.max_daily_quota.saturating_sub(params.min_daily_quota);
		params.min_daily_quota.saturating_add(span.saturating_mul(score.min(100)) / 100)
	}

	/// Today's index.
	pub fn today() -> u32 {
		let now = frame_system::Pallet::<T>::block_number();
		let day = T::DayLength::get();
		if day.is_zero() {
			return 0;
		}
		(now / day).unique_saturated_into()
	}

	/// Today's index and the free requests `who` used today.
	fn used_today(who: &T::AccountId) -> (u32, u32) {
		let day = Self::today();
		(day, Usage::<T>::get(day, who).used)
	}

	/// The block the last seal `who` spent named (today or yesterday: a seal's window is at
	/// most a day, so an older one can no longer be replayed anyway).
	fn last_seal(who: &T::AccountId, today: u32) -> Option<BlockNumberFor<T>> {
		let yesterday = today.checked_sub(1).and_then(|d| Usage::<T>::get(d, who).last_seal);
		Usage::<T>::get(today, who).last_seal.max(yesterday)
	}

	/// Deletes the usage records of days before yesterday, at most `MaxPrunePerBlock` a block.
	pub fn prune() -> Weight {
		let db = T::DbWeight::get();
		let day = PrunedBefore::<T>::get();
		if day.saturating_add(1) >= Self::today() {
			return db.reads(2);
		}
		let limit = T::MaxPrunePerBlock::get();
		// Each block commits its deletions, so the next block starts afresh without a cursor.
		let removed = Usage::<T>::clear_prefix(day, limit, None);
		if removed.maybe_cursor.is_none() {
			PrunedBefore::<T>::put(day.saturating_add(1));
		}
		db.reads_writes(
			2u64.saturating_add(removed.loops.into()),
			1u64.saturating_add(removed.unique.into()),
		)
	}

	/// Whether a free request from `who` with `seal` would be admitted now; reads only.
	/// `spend_seal`: the seal is checked (window, replay) and spent even when the account's
	/// trust waives the work, as an unsigned request needs.
	pub fn check(
		who: &T::AccountId,
		seal: Option<&PowSeal<BlockNumberFor<T>>>,
		spend_seal: bool,
	) -> Result<Admission<BlockNumberFor<T>>, Error<T>> {
		let params = Params::<T>::get();
		let now = frame_system::Pallet::<T>::block_number();
		let (block, count) = BlockCount::<T>::get();
		let in_block = if block == now { count } else { 0 };
		ensure!(in_block < params.max_free_per_block, Error::<T>::BlockFull);

		let score = Self::trust_score(who);
		let quota = Self::quota(score, &params);
		let (day, used) = Self::used_today(who);
		ensure!(used < quota, Error::<T>::QuotaExhausted);

		let work_needed = score.is_zero();
		let seal_block = if work_needed || spend_seal {
			let seal = seal.ok_or(Error::<T>::ProofOfWorkRequired)?;
			// A built block, not older than the window.
			ensure!(
				seal.block < now && now.saturating_sub(seal.block) <= params.pow_window,
				Error::<T>::StaleProofOfWork
			);
			if let Some(last) = Self::last_seal(who, day) {
				ensure!(seal.block > last, Error::<T>::ReplayedProofOfWork);
			}
			let hash: H256 =
				H256::from_slice(frame_system::Pallet::<T>::block_hash(seal.block).as_ref());
			ensure!(hash != H256::zero(), Error::<T>::StaleProofOfWork);
			if work_needed {
				let work = pow_hash(who, &seal.block, &hash, seal.nonce);
				ensure!(
					leading_zero_bits(&work) >= params.pow_difficulty,
					Error::<T>::BadProofOfWork
				);
			}
			Some(seal.block)
		} else {
			None
		};
		Ok(Admission { day, used, quota, seal_block })
	}

	fn check_signature(
		requester: &T::AccountId,
		request: &FreeRequest,
		seal: &PowSeal<BlockNumberFor<T>>,
		signature: &T::Signature,
	) -> Result<(), Error<T>> {
		let genesis = H256::from_slice(
			frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero()).as_ref(),
		);
		let payload = unsigned_payload(&genesis, requester, request, seal);
		ensure!(signature.verify(&payload[..], requester), Error::<T>::BadSignature);
		Ok(())
	}

	/// Checks, then records the request against the quota, the block cap and the seal.
	fn admit(
		who: &T::AccountId,
		request: FreeRequest,
		seal: Option<&PowSeal<BlockNumberFor<T>>>,
		spend_seal: bool,
	) -> DispatchResult {
		let admission = Self::check(who, seal, spend_seal)?;
		let now = frame_system::Pallet::<T>::block_number();
		let used_today = admission.used.saturating_add(1);
		Usage::<T>::mutate(admission.day, who, |u| {
			u.used = used_today;
			if admission.seal_block.is_some() {
				u.last_seal = admission.seal_block;
			}
		});
		BlockCount::<T>::mutate(|(block, count)| {
			if *block != now {
				*block = now;
				*count = 0;
			}
			*count = count.saturating_add(1);
		});
		Self::deposit_event(Event::FreeRequested {
			who: who.clone(),
			request,
			used_today,
			quota: admission.quota,
		});
		Ok(())
	}

	fn check_params(params: &FreeTierParams<BlockNumberFor<T>>) -> DispatchResult {
		// A seal's window within a day keeps replay checks to today's and yesterday's records;
		// admitting at most half what a block prunes keeps pruning ahead of admission.
		ensure!(
			params.min_daily_quota <= params.max_daily_quota
				&& !params.pow_window.is_zero()
				&& params.pow_window <= T::DayLength::get()
				&& params.max_free_per_block > 0
				&& params.max_free_per_block <= T::MaxPrunePerBlock::get() / 2,
			Error::<T>::BadParams
		);
		Ok(())
	}

	fn contribution(who: &T::AccountId, f: impl FnOnce(&mut Contribution<BlockNumberFor<T>>)) {
		Contributions::<T>::mutate(who, |c| {
			let c = c.get_or_insert_with(|| Contribution {
				first_seen: frame_system::Pallet::<T>::block_number(),
				..Default::default()
			});
			f(c);
		});
	}
}

impl<T: Config> ContributionObserver<T::AccountId> for Pallet<T> {
	fn accepted_improvement(miner: &T::AccountId) {
		Self::contribution(miner, |c| {
			c.accepted_improvements = c.accepted_improvements.saturating_add(1)
		});
	}

	fn honest_verification(verifier: &T::AccountId) {
		Self::contribution(verifier, |c| {
			c.honest_verifications = c.honest_verifications.saturating_add(1)
		});
	}
}

impl<T: Config> GovernedParams<FreeTierParams<BlockNumberFor<T>>> for Pallet<T> {
	fn params() -> FreeTierParams<BlockNumberFor<T>> {
		Params::<T>::get()
	}

	fn set_params(params: FreeTierParams<BlockNumberFor<T>>) -> DispatchResult {
		Self::check_params(&params)?;
		Params::<T>::put(params.clone());
		Self::deposit_event(Event::ParamsSet { params });
		Ok(())
	}
}

/// Free requests answered off chain and settled by a server's receipts (`pallet-inference`)
/// count against the same daily quota as [`Call::request`]. An account with no trust gets
/// nothing this way: its free requests go through [`Call::request`] with a proof of work.
impl<T: Config> FreeQuota<T::AccountId> for Pallet<T> {
	fn consume(who: &T::AccountId, count: u32) -> DispatchResult {
		if count == 0 {
			return Ok(());
		}
		let score = Self::trust_score(who);
		ensure!(!score.is_zero(), Error::<T>::ProofOfWorkRequired);
		let quota = Self::quota(score, &Params::<T>::get());
		let (day, used) = Self::used_today(who);
		let used_today = used.checked_add(count).ok_or(Error::<T>::QuotaExhausted)?;
		ensure!(used_today <= quota, Error::<T>::QuotaExhausted);
		Usage::<T>::mutate(day, who, |u| u.used = used_today);
		Ok(())
	}

	fn remaining(who: &T::AccountId) -> u32 {
		let score = Self::trust_score(who);
		if score.is_zero() {
			return 0;
		}
		Self::quota(score, &Params::<T>::get()).saturating_sub(Self::used_today(who).1)
	}
}
