//! Validator rewards: inflation minted each era, split between validators and the mining pool.
//!
//! The rate and the split are governance parameters (`Governance::Economics`; 10 % a year and
//! 50/50 by default): validators and nominators get their share through `pallet-staking`, the
//! rest goes to the mining-reward pool (`RewardRemainder`), since the chain's rewards are for
//! useful learning.

use crate::{Balance, Runtime};
use sp_runtime::Perbill;

/// Julian year in milliseconds.
const MILLISECONDS_PER_YEAR: u64 = 1_000 * 3_600 * 24 * 36_525 / 100;

/// [`sp_staking::EraPayout`] minting the annual inflation pro rata to the era's duration (not
/// compounded within the year).
pub struct BlyanEraPayout;
impl sp_staking::EraPayout<Balance> for BlyanEraPayout {
	fn era_payout(
		_total_staked: Balance,
		total_issuance: Balance,
		era_duration_millis: u64,
	) -> (Balance, Balance) {
		let economics = pallet_governance::Pallet::<Runtime>::economics();
		let share_of_year = Perbill::from_rational(era_duration_millis, MILLISECONDS_PER_YEAR);
		let minted = share_of_year * (economics.annual_inflation * total_issuance);
		let to_validators = economics.validator_share * minted;
		(to_validators, minted.saturating_sub(to_validators))
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use sp_staking::EraPayout;

	use pallet_governance::Parameter;

	#[test]
	fn a_year_of_eras_mints_the_annual_inflation() {
		sp_io::TestExternalities::default().execute_with(|| {
			let issuance: Balance = crate::currency::GENESIS_SUPPLY;
			let (validators, rest) = BlyanEraPayout::era_payout(0, issuance, MILLISECONDS_PER_YEAR);
			assert_eq!(validators + rest, issuance / 10);
			assert_eq!(validators, rest);
		});
	}

	#[test]
	fn an_empty_era_mints_nothing() {
		sp_io::TestExternalities::default()
			.execute_with(|| assert_eq!(BlyanEraPayout::era_payout(0, 1_000, 0), (0, 0)));
	}

	#[test]
	fn governance_sets_the_rate_and_the_split() {
		sp_io::TestExternalities::default().execute_with(|| {
			let set = |p| {
				pallet_governance::Pallet::<Runtime>::set_parameter(crate::RuntimeOrigin::root(), p)
			};
			// Root-only, at most a factor of two a change: 10 % → 5 %, 50 % → 25 %.
			frame_support::assert_ok!(set(Parameter::AnnualInflation(Perbill::from_percent(5))));
			frame_support::assert_ok!(set(Parameter::ValidatorRewardShare(Perbill::from_percent(
				25
			))));
			let issuance: Balance = crate::currency::GENESIS_SUPPLY;
			let (validators, rest) = BlyanEraPayout::era_payout(0, issuance, MILLISECONDS_PER_YEAR);
			assert_eq!(validators + rest, issuance / 20);
			assert_eq!(validators * 3, rest);
		});
	}
}
