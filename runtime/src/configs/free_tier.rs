//! The free tier: daily free inference requests by trust score, feeless within quota, proof of
//! work for accounts with no trust. Its parameters (quotas, difficulty, window, per-block cap)
//! are governance parameters, with their defaults in `parameters.rs`.

use super::parameters::FreeTierDefaults;
use crate::{currency::BLY, time::DAYS, Balances, Runtime, Signature};
use frame_support::traits::{ConstU128, ConstU32};

impl pallet_free_tier::Config for Runtime {
	type Currency = Balances;
	type Signature = Signature;
	type Signer = <Signature as sp_runtime::traits::Verify>::Signer;
	/// One trust point per 100 BLY held (bonds included), up to 20.
	type StakeUnit = ConstU128<{ 100 * BLY }>;
	type DayLength = ConstU32<DAYS>;
	type DefaultParams = FreeTierDefaults;
	// Five times the per-block cap of free requests: a day's records are gone in a fifth of a day.
	type MaxPrunePerBlock = ConstU32<512>;
	type WeightInfo = pallet_free_tier::weights::SubstrateWeight<Runtime>;
}
