//! Chain specifications built from the runtime's genesis presets.

use blyan_runtime::{currency, WASM_BINARY};
use sc_service::ChainType;

/// A chain specification of the Blyan runtime.
pub type ChainSpec = sc_service::GenericChainSpec;

/// What wallets read from `system_properties`: the BLY symbol, its decimals, the address format.
pub fn properties() -> sc_chain_spec::Properties {
	let mut p = sc_chain_spec::Properties::new();
	p.insert("tokenSymbol".into(), currency::TOKEN_SYMBOL.into());
	p.insert("tokenDecimals".into(), currency::TOKEN_DECIMALS.into());
	p.insert("ss58Format".into(), currency::SS58_PREFIX.into());
	p
}

fn wasm() -> Result<&'static [u8], String> {
	WASM_BINARY.ok_or_else(|| {
		"the runtime wasm is not available: build without SKIP_WASM_BUILD (see README)".to_string()
	})
}

/// One validator (Alice), for development.
pub fn development_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm()?, None)
		.with_name("Blyan Development")
		.with_id("blyan_dev")
		.with_chain_type(ChainType::Development)
		.with_genesis_config_preset_name(sp_genesis_builder::DEV_RUNTIME_PRESET)
		.with_protocol_id("bly")
		.with_properties(properties())
		.build())
}

/// Three validators (Alice, Bob, Charlie) on one machine.
pub fn local_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm()?, None)
		.with_name("Blyan Local Testnet")
		.with_id("blyan_local")
		.with_chain_type(ChainType::Local)
		.with_genesis_config_preset_name(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET)
		.with_protocol_id("bly")
		.with_properties(properties())
		.build())
}

/// Four validators (Alice, Bob, Charlie, Dave): tolerates one of them failing.
pub fn local4_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm()?, None)
		.with_name("Blyan Local Testnet (4 validators)")
		.with_id("blyan_local4")
		.with_chain_type(ChainType::Local)
		.with_genesis_config_preset_name(
			blyan_runtime::genesis_config_presets::LOCAL4_TESTNET_RUNTIME_PRESET,
		)
		.with_protocol_id("bly")
		.with_properties(properties())
		.build())
}
