//! # Inference
//!
//! Who serves which model, and how they get paid.
//!
//! - **Announcements**: a server announces the accepted model version it serves, the span of
//!   registry layers `[start, end)` it holds (the whole model, or one stage of a pipeline), its
//!   HTTP endpoint, its price per token, how many sessions it takes at once, and a bond (at least
//!   [`Config::MinServerBond`], held; routing prefers higher bonds). An announcement lives for
//!   [`Config::AnnouncementTtl`] blocks; announcing again renews it. A server withdraws with
//!   [`Call::withdraw`]; once an announcement has expired anyone may [`Call::reap`] it, which
//!   releases the bond to its server.
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
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(any(feature = "try-runtime", feature = "test-fixtures", test))]
mod invariants;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

pub use blyan_primitives::inference::{receipt_payload, InferenceReceipt, LayerSpan};
pub use weights::WeightInfo;

use alloc::{
	collections::{btree_map::BTreeMap, btree_set::BTreeSet},
	vec::Vec,
};
use blyan_primitives::{
	inference::FreeQuota,
	pol::{ModelRegistry, VersionId, VersionStatus, MAX_LAYERS},
};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, InspectHold, Mutate, MutateHold},
		tokens::{Fortitude, Precision, Preservation},
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

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	/// Balance of an account.
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
	/// An announcement as stored.
	pub type AnnouncementOf<T> =
		Announcement<BalanceOf<T>, BlockNumberFor<T>, <T as Config>::MaxEndpointLen>;
	/// A signed receipt as [`Call::settle`] takes it.
	pub type SignedReceiptOf<T> = SignedReceipt<
		<T as frame_system::Config>::AccountId,
		BalanceOf<T>,
		<T as Config>::Signature,
	>;

	/// The storage layout's version (0: the layout at launch): bumped, with a migration, on
	/// every change of layout.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

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
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
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
		/// bond released. Squatting the list thus costs more than any honest server bonds, per
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

		/// Withdraws the caller's announcement and releases its bond. Receipts it holds can
		/// still be settled.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::withdraw())]
		pub fn withdraw(origin: OriginFor<T>) -> DispatchResult {
			let server = ensure_signed(origin)?;
			let announcement = Servers::<T>::get(&server).ok_or(Error::<T>::NotAnnounced)?;
			Self::remove(&server, &announcement)?;
			Self::deposit_event(Event::Withdrawn { server });
			Ok(())
		}

		/// Removes `server`'s expired announcement (anyone may) and releases its bond to it.
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
			ensure!(
				T::Currency::can_hold(
					&HoldReason::ServerBond.into(),
					server,
					offer.bond.saturating_sub(held)
				),
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
			T::Currency::hold(&reason, &server, bond.saturating_sub(held))?;
		} else if held > bond {
			T::Currency::release(&reason, &server, held.saturating_sub(bond), Precision::Exact)?;
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

	fn remove(server: &T::AccountId, announcement: &AnnouncementOf<T>) -> DispatchResult {
		let reason = HoldReason::ServerBond.into();
		let held = T::Currency::balance_on_hold(&reason, server).min(announcement.bond);
		T::Currency::release(&reason, server, held, Precision::BestEffort)?;
		Servers::<T>::remove(server);
		Ok(())
	}

	/// Announcements not yet expired, for routing.
	pub fn live_servers() -> Vec<(T::AccountId, AnnouncementOf<T>)> {
		let now = frame_system::Pallet::<T>::block_number();
		Servers::<T>::iter().filter(|(_, a)| a.expires_at > now).collect()
	}
}
