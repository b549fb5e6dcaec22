//! Validator rewards: inflation minted each era, split between validators and the mining pool.

use crate::Balance;
use sp_runtime::Perbill;

/// New BLY minted per year, as a share of total issuance (not compounded within the year).
pub const ANNUAL_INFLATION: Perbill = Perbill::from_percent(10);
/// Share of each era's inflation paid to validators and their nominators; the rest goes to the
/// mining-reward pool (`RewardRemainder`), since the chain's rewards are for useful learning.
pub const VALIDATOR_REWARD_SHARE: Perbill = Perbill::from_percent(50);

/// Julian year in milliseconds.
const MILLISECONDS_PER_YEAR: u64 = 1_000 * 3_600 * 24 * 36_525 / 100;

/// [`sp_staking::EraPayout`] paying `ANNUAL_INFLATION` pro rata to the era's duration.
pub struct BlyanEraPayout;
impl sp_staking::EraPayout<Balance> for BlyanEraPayout {
	fn era_payout(
		_total_staked: Balance,
		total_issuance: Balance,
		era_duration_millis: u64,
	) -> (Balance, Balance) {
		let share_of_year = Perbill::from_rational(era_duration_millis, MILLISECONDS_PER_YEAR);
		let minted = share_of_year * (ANNUAL_INFLATION * total_issuance);
		let to_validators = VALIDATOR_REWARD_SHARE * minted;
		(to_validators, minted.saturating_sub(to_validators))
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use sp_staking::EraPayout;

	#[test]
	fn a_year_of_eras_mints_the_annual_inflation() {
		let issuance: Balance = crate::currency::GENESIS_SUPPLY;
		let (validators, rest) = BlyanEraPayout::era_payout(0, issuance, MILLISECONDS_PER_YEAR);
		assert_eq!(validators + rest, issuance / 10);
		assert_eq!(validators, rest);
	}

	#[test]
	fn an_empty_era_mints_nothing() {
		assert_eq!(BlyanEraPayout::era_payout(0, 1_000, 0), (0, 0));
	}
}
