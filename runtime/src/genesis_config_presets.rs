//! Genesis presets: `dev` (one validator), `local` (Alice, Bob and Charlie) and `local4` (the same
//! plus Dave: the smallest set in which GRANDPA tolerates one faulty validator).
//!
//! Every preset issues exactly [`GENESIS_SUPPLY`] BLY, split 40 % mining-reward pool, 20 %
//! foundation, 15 % team and 25 % community. The well-known development accounts are funded out
//! of the community share, so the split of the whole supply stays exact.

use crate::{
	configs::{
		accounts, election,
		governance::{TEAM_VESTING_CLIFF, TEAM_VESTING_LENGTH},
		parameters::{dev_audit_params, DEV_TIMINGS},
	},
	currency::*,
	AccountId, BabeConfig, BalancesConfig, GovernanceConfig, RuntimeGenesisConfig, SessionConfig,
	SessionKeys, StakingConfig, SudoConfig, TrainingAuditConfig, VestingConfig,
};
use alloc::{string::String, vec, vec::Vec};
use frame_support::build_struct_json_patch;
use serde_json::Value;
use sp_consensus_babe::AuthorityId as BabeId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_genesis_builder::{self, PresetId};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};

/// BLY given to each well-known development account (Alice … Ferdie).
pub const DEV_ACCOUNT_ENDOWMENT: Balance = 1_000_000 * BLY;
/// BLY each genesis validator bonds.
pub const VALIDATOR_BOND: Balance = 100_000 * BLY;

use crate::Balance;

/// A validator's stash and its session keys.
pub struct GenesisValidator {
	pub stash: AccountId,
	pub babe: BabeId,
	pub grandpa: GrandpaId,
}

impl GenesisValidator {
	fn from_keyring(sr: Sr25519Keyring, ed: Ed25519Keyring) -> Self {
		Self { stash: sr.to_account_id(), babe: sr.public().into(), grandpa: ed.public().into() }
	}
}

/// Balances at genesis: the four named allocations, with `endowed` paid out of the community share.
pub fn genesis_balances(endowed: &[AccountId]) -> Vec<(AccountId, Balance)> {
	let share = |percent: u128| GENESIS_SUPPLY / 100 * percent;
	let to_endowed = DEV_ACCOUNT_ENDOWMENT.saturating_mul(endowed.len() as u128);
	let mut balances = vec![
		(accounts::mining_pool(), share(MINING_POOL_PERCENT)),
		(accounts::foundation(), share(FOUNDATION_PERCENT)),
		(accounts::team(), share(TEAM_PERCENT)),
		(accounts::community(), share(COMMUNITY_PERCENT).saturating_sub(to_endowed)),
	];
	balances.extend(endowed.iter().cloned().map(|a| (a, DEV_ACCOUNT_ENDOWMENT)));
	balances
}

/// The team's allocation vests: all of it locked for [`TEAM_VESTING_CLIFF`], then released
/// linearly over [`TEAM_VESTING_LENGTH`]. The team account is keyless, so whatever has vested
/// leaves it only by a referendum (`balances.force_transfer` on the root track); the lock holds
/// against that too.
pub fn team_vesting() -> Vec<(AccountId, crate::BlockNumber, crate::BlockNumber, Balance)> {
	vec![(accounts::team(), TEAM_VESTING_CLIFF, TEAM_VESTING_LENGTH, 0)]
}

fn blyan_genesis(
	validators: Vec<GenesisValidator>,
	endowed: Vec<AccountId>,
	sudo: Option<AccountId>,
	governance: GovernanceConfig,
	audit: Option<pallet_training_audit::AuditParams<crate::Balance, crate::BlockNumber>>,
) -> Value {
	let validator_count = validators.len() as u32;
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig { balances: genesis_balances(&endowed) },
		// Authorities come from the session keys below; BABE only needs its epoch parameters.
		babe: BabeConfig { epoch_config: crate::BABE_GENESIS_EPOCH_CONFIG },
		session: SessionConfig {
			keys: validators
				.iter()
				.map(|v| {
					(
						v.stash.clone(),
						v.stash.clone(),
						SessionKeys { babe: v.babe.clone(), grandpa: v.grandpa.clone() },
					)
				})
				.collect::<Vec<_>>(),
		},
		staking: StakingConfig {
			validator_count,
			minimum_validator_count: 1,
			// Bounded bonding, so the era-change election stays within a block (`election`).
			min_nominator_bond: election::MIN_NOMINATOR_BOND,
			min_validator_bond: election::MIN_VALIDATOR_BOND,
			max_nominator_count: Some(election::MAX_NOMINATORS),
			max_validator_count: Some(election::MAX_VALIDATOR_CANDIDATES),
			stakers: validators
				.iter()
				.map(|v| {
					(
						v.stash.clone(),
						v.stash.clone(),
						VALIDATOR_BOND,
						pallet_staking::StakerStatus::<AccountId>::Validator,
					)
				})
				.collect::<Vec<_>>(),
		},
		sudo: SudoConfig { key: sudo },
		vesting: VestingConfig { vesting: team_vesting() },
		governance,
		training_audit: TrainingAuditConfig { params: audit },
	})
}

/// The well-known development accounts, each funded with [`DEV_ACCOUNT_ENDOWMENT`].
pub fn dev_accounts() -> Vec<AccountId> {
	Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect()
}

/// One validator (Alice), sudo for development, referenda decided in blocks rather than days.
pub fn development_config_genesis() -> Value {
	blyan_genesis(
		vec![GenesisValidator::from_keyring(Sr25519Keyring::Alice, Ed25519Keyring::Alice)],
		dev_accounts(),
		Some(Sr25519Keyring::Alice.to_account_id()),
		GovernanceConfig { timings: Some(DEV_TIMINGS), ..Default::default() },
		Some(dev_audit_params()),
	)
}

/// Three validators on one machine (Alice, Bob, Charlie); no sudo.
pub fn local_config_genesis() -> Value {
	blyan_genesis(
		vec![
			GenesisValidator::from_keyring(Sr25519Keyring::Alice, Ed25519Keyring::Alice),
			GenesisValidator::from_keyring(Sr25519Keyring::Bob, Ed25519Keyring::Bob),
			GenesisValidator::from_keyring(Sr25519Keyring::Charlie, Ed25519Keyring::Charlie),
		],
		dev_accounts(),
		None,
		GovernanceConfig::default(),
		None,
	)
}

/// Preset id of the four-validator local network.
pub const LOCAL4_TESTNET_RUNTIME_PRESET: &str = "local4_testnet";

/// Four validators (Alice, Bob, Charlie, Dave); no sudo. GRANDPA needs `n - (n-1)/3` votes, so
/// this is the smallest network that keeps finalizing with one validator down.
pub fn local4_config_genesis() -> Value {
	blyan_genesis(
		vec![
			GenesisValidator::from_keyring(Sr25519Keyring::Alice, Ed25519Keyring::Alice),
			GenesisValidator::from_keyring(Sr25519Keyring::Bob, Ed25519Keyring::Bob),
			GenesisValidator::from_keyring(Sr25519Keyring::Charlie, Ed25519Keyring::Charlie),
			GenesisValidator::from_keyring(Sr25519Keyring::Dave, Ed25519Keyring::Dave),
		],
		dev_accounts(),
		None,
		GovernanceConfig::default(),
		None,
	)
}

/// The JSON patch of preset `id`, if there is one.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_ref() {
		sp_genesis_builder::DEV_RUNTIME_PRESET => development_config_genesis(),
		sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET => local_config_genesis(),
		LOCAL4_TESTNET_RUNTIME_PRESET => local4_config_genesis(),
		_ => return None,
	};
	serde_json::to_string(&patch).ok().map(String::into_bytes)
}

/// Names of the presets this runtime offers.
pub fn preset_names() -> Vec<PresetId> {
	vec![
		PresetId::from(sp_genesis_builder::DEV_RUNTIME_PRESET),
		PresetId::from(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
		PresetId::from(LOCAL4_TESTNET_RUNTIME_PRESET),
	]
}
