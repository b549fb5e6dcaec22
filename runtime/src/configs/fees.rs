//! Where transaction fees go: [`FEE_BURN_PERCENT`] of the base fee is burned, the rest of it and
//! every tip are paid to the author of the block.

use core::marker::PhantomData;
use frame_support::traits::{
	fungible::{Balanced, Credit},
	Imbalance, OnUnbalanced,
};

use crate::currency::FEE_BURN_PERCENT;

/// Pays a credit to the current block's author; burns it if there is no author (genesis,
/// off-chain fee queries) or the author's account cannot receive it.
pub struct BlockAuthor<R>(PhantomData<R>);
impl<R> OnUnbalanced<Credit<R::AccountId, pallet_balances::Pallet<R>>> for BlockAuthor<R>
where
	R: pallet_balances::Config + pallet_authorship::Config,
{
	fn on_nonzero_unbalanced(amount: Credit<R::AccountId, pallet_balances::Pallet<R>>) {
		if let Some(author) = pallet_authorship::Pallet::<R>::author() {
			// A credit that cannot be resolved comes back and is dropped, i.e. burned.
			let _ = pallet_balances::Pallet::<R>::resolve(&author, amount);
		}
	}
}

/// Splits the fee of every transaction: a share burned (dropping a credit lowers total
/// issuance), the remainder plus the tip to the block author.
pub struct DealWithFees<R>(PhantomData<R>);
impl<R> OnUnbalanced<Credit<R::AccountId, pallet_balances::Pallet<R>>> for DealWithFees<R>
where
	R: pallet_balances::Config + pallet_authorship::Config,
{
	fn on_unbalanceds(
		mut fees_then_tips: impl Iterator<Item = Credit<R::AccountId, pallet_balances::Pallet<R>>>,
	) {
		if let Some(fees) = fees_then_tips.next() {
			let (burned, mut to_author) =
				fees.ration(FEE_BURN_PERCENT, 100u32.saturating_sub(FEE_BURN_PERCENT));
			if let Some(tips) = fees_then_tips.next() {
				tips.merge_into(&mut to_author);
			}
			drop(burned);
			<BlockAuthor<R> as OnUnbalanced<_>>::on_unbalanced(to_author);
		}
	}
}
