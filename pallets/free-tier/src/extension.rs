//! [`ChargeUnlessFree`]: the runtime's fee extension, except for free requests within quota.

use crate::{quota_tag, to_validity, Call, Config, Error, Pallet};
use codec::{Decode, DecodeWithMemTracking, Encode};
use core::marker::PhantomData;
use frame_support::{
	dispatch::DispatchResult, pallet_prelude::TransactionSource, traits::IsSubType, weights::Weight,
};
use scale_info::{StaticTypeInfo, TypeInfo};
use sp_runtime::{
	traits::{
		AsSystemOriginSigner, DispatchInfoOf, DispatchOriginOf, Get, Implication,
		PostDispatchInfoOf, TransactionExtension, ValidateResult,
	},
	transaction_validity::{TransactionValidityError, ValidTransaction},
};

/// Wraps the fee extension `S` (`ChargeTransactionPayment`). A signed [`Call::request`] that
/// [`Pallet::check`] admits skips `S` — no fee — and one it refuses is invalid, so the pool
/// drops it before any block. Every other call goes through `S` unchanged.
///
/// It carries `S`'s identifier, data and type, so clients (Polkadot.js, subxt) build and sign
/// transactions exactly as for `S` alone.
#[derive(Encode, Decode, DecodeWithMemTracking, Clone, Eq, PartialEq)]
pub struct ChargeUnlessFree<T, S>(pub S, PhantomData<T>);

impl<T, S> From<S> for ChargeUnlessFree<T, S> {
	fn from(inner: S) -> Self {
		Self(inner, PhantomData)
	}
}

impl<T, S: StaticTypeInfo> TypeInfo for ChargeUnlessFree<T, S> {
	type Identity = S;
	fn type_info() -> scale_info::Type {
		S::type_info()
	}
}

impl<T, S: core::fmt::Debug> core::fmt::Debug for ChargeUnlessFree<T, S> {
	fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
		write!(f, "ChargeUnlessFree({:?})", self.0)
	}
}

/// Whether the wrapped extension runs.
pub enum Stage<Inner> {
	/// A paying transaction: `S`'s own state.
	Charge(Inner),
	/// A free request: no fee.
	Free,
}

impl<T, S> ChargeUnlessFree<T, S>
where
	T: Config,
	T::RuntimeCall: IsSubType<Call<T>>,
	DispatchOriginOf<T::RuntimeCall>: AsSystemOriginSigner<T::AccountId>,
{
	/// `Some` for a signed free request: whether it is admitted now, and the pool tag it holds.
	fn free_request(
		origin: &DispatchOriginOf<T::RuntimeCall>,
		call: &T::RuntimeCall,
	) -> Option<Result<alloc::vec::Vec<u8>, Error<T>>> {
		let Some(Call::request { seal, .. }) = call.is_sub_type() else { return None };
		let who = origin.as_system_origin_signer()?;
		Some(Pallet::<T>::check(who, seal.as_ref(), false).map(|a| quota_tag(who, &a)))
	}
}

impl<T, S> TransactionExtension<T::RuntimeCall> for ChargeUnlessFree<T, S>
where
	T: Config + Send + Sync,
	S: TransactionExtension<T::RuntimeCall>,
	T::RuntimeCall: IsSubType<Call<T>>,
	DispatchOriginOf<T::RuntimeCall>: AsSystemOriginSigner<T::AccountId>,
{
	// Invisible from outside: wallets see the wrapped extension.
	const IDENTIFIER: &'static str = S::IDENTIFIER;
	type Implicit = S::Implicit;
	type Val = Stage<S::Val>;
	type Pre = Stage<S::Pre>;

	fn metadata() -> alloc::vec::Vec<sp_runtime::traits::TransactionExtensionMetadata> {
		S::metadata()
	}

	fn implicit(&self) -> Result<Self::Implicit, TransactionValidityError> {
		self.0.implicit()
	}

	fn weight(&self, call: &T::RuntimeCall) -> Weight {
		// A free request is checked twice (pool and block): six reads each.
		let check = match call.is_sub_type() {
			Some(Call::request { .. }) => T::DbWeight::get().reads(12),
			_ => Weight::zero(),
		};
		self.0.weight(call).saturating_add(check)
	}

	fn validate(
		&self,
		origin: DispatchOriginOf<T::RuntimeCall>,
		call: &T::RuntimeCall,
		info: &DispatchInfoOf<T::RuntimeCall>,
		len: usize,
		self_implicit: S::Implicit,
		inherited_implication: &impl Implication,
		source: TransactionSource,
	) -> ValidateResult<Self::Val, T::RuntimeCall> {
		if let Some(admitted) = Self::free_request(&origin, call) {
			let tag = admitted.map_err(to_validity)?;
			// No fee, and the lowest priority: paying transactions go first. The tag lets the
			// pool hold one free request per account and quota slot, so nobody floods it with
			// requests beyond the quota that would only be dropped at block building.
			let validity = ValidTransaction { provides: alloc::vec![tag], ..Default::default() };
			return Ok((validity, Stage::Free, origin));
		}
		let (validity, val, origin) = self.0.validate(
			origin,
			call,
			info,
			len,
			self_implicit,
			inherited_implication,
			source,
		)?;
		Ok((validity, Stage::Charge(val), origin))
	}

	fn prepare(
		self,
		val: Self::Val,
		origin: &DispatchOriginOf<T::RuntimeCall>,
		call: &T::RuntimeCall,
		info: &DispatchInfoOf<T::RuntimeCall>,
		len: usize,
	) -> Result<Self::Pre, TransactionValidityError> {
		match val {
			Stage::Charge(val) => self.0.prepare(val, origin, call, info, len).map(Stage::Charge),
			Stage::Free => {
				// Checked again against the block being built: the pool checked an older state.
				if let Some(admitted) = Self::free_request(origin, call) {
					admitted.map_err(to_validity)?;
				}
				Ok(Stage::Free)
			}
		}
	}

	fn post_dispatch_details(
		pre: Self::Pre,
		info: &DispatchInfoOf<T::RuntimeCall>,
		post_info: &PostDispatchInfoOf<T::RuntimeCall>,
		len: usize,
		result: &DispatchResult,
	) -> Result<Weight, TransactionValidityError> {
		match pre {
			Stage::Charge(pre) => S::post_dispatch_details(pre, info, post_info, len, result),
			Stage::Free => Ok(Weight::zero()),
		}
	}
}
