//! Dispatch of the command line to the node service and the standard subcommands.

use crate::{
	chain_spec,
	cli::{Cli, Subcommand},
	service,
};
use blyan_runtime::opaque::Block;
use sc_cli::SubstrateCli;
use sc_service::PartialComponents;

impl SubstrateCli for Cli {
	fn impl_name() -> String {
		"Blyan Node".into()
	}

	fn impl_version() -> String {
		env!("SUBSTRATE_CLI_IMPL_VERSION").into()
	}

	fn description() -> String {
		env!("CARGO_PKG_DESCRIPTION").into()
	}

	fn author() -> String {
		env!("CARGO_PKG_AUTHORS").into()
	}

	fn support_url() -> String {
		"https://github.com/blyan-network/blyan/issues".into()
	}

	fn copyright_start_year() -> i32 {
		2026
	}

	fn load_spec(&self, id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
		Ok(match id {
			"dev" | "" => Box::new(chain_spec::development_chain_spec()?),
			"local" => Box::new(chain_spec::local_chain_spec()?),
			"local4" => Box::new(chain_spec::local4_chain_spec()?),
			path => {
				let path = std::path::PathBuf::from(path);
				Box::new(chain_spec::ChainSpec::from_json_file(path.clone()).map_err(|e| {
					format!(
						"cannot load chain spec `{}`: {e} (expected `dev`, `local`, `local4` or the path of a \
						 chain spec JSON file)",
						path.display()
					)
				})?)
			}
		})
	}
}

/// Transaction pool used unless `--pool-type` is given.
///
/// polkadot-sdk defaults to the fork-aware pool. Under load it dropped transactions it had accepted
/// (about a third of 3 000 transfers in `scripts/bench-chain`, docs/benchmarks.md), while the
/// single-state pool included every one at the same rate. Workers' proofs and users' payments must
/// not vanish after `author_submitExtrinsic` said yes, so Blyan runs the single-state pool.
const DEFAULT_POOL_TYPE: &str = "single-state";

/// Parse the command line and run the node or the requested subcommand.
pub fn run() -> sc_cli::Result<()> {
	let mut cli = Cli::from_args();
	if cli.subcommand.is_none()
		&& !std::env::args().any(|a| a == "--pool-type" || a.starts_with("--pool-type="))
	{
		cli = Cli::from_iter(
			std::env::args_os().chain(["--pool-type".into(), DEFAULT_POOL_TYPE.into()]),
		);
	}

	match &cli.subcommand {
		Some(Subcommand::Key(cmd)) => cmd.run(&cli),
		#[allow(deprecated)]
		Some(Subcommand::BuildSpec(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.chain_spec, config.network))
		}
		Some(Subcommand::ExportChainSpec(cmd)) => {
			let chain_spec = cli.load_spec(&cmd.chain)?;
			cmd.run(chain_spec)
		}
		Some(Subcommand::CheckBlock(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, import_queue, .. } =
					service::new_partial(&config)?;
				Ok((cmd.run(client, import_queue), task_manager))
			})
		}
		Some(Subcommand::ExportBlocks(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, .. } = service::new_partial(&config)?;
				Ok((cmd.run(client, config.database), task_manager))
			})
		}
		Some(Subcommand::ExportState(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, .. } = service::new_partial(&config)?;
				Ok((cmd.run(client, config.chain_spec), task_manager))
			})
		}
		Some(Subcommand::ImportBlocks(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, import_queue, .. } =
					service::new_partial(&config)?;
				Ok((cmd.run(client, import_queue), task_manager))
			})
		}
		Some(Subcommand::PurgeChain(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.database))
		}
		Some(Subcommand::Revert(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents { client, task_manager, backend, .. } =
					service::new_partial(&config)?;
				// BABE's epoch changes and GRANDPA's authority sets recorded for the reverted
				// blocks go with them.
				let aux_revert =
					Box::new(|client: std::sync::Arc<service::FullClient>, backend, blocks| {
						sc_consensus_babe::revert(client.clone(), backend, blocks)?;
						sc_consensus_grandpa::revert(client, blocks)?;
						Ok(())
					});
				Ok((cmd.run(client, backend, Some(aux_revert)), task_manager))
			})
		}
		Some(Subcommand::ChainInfo(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run::<Block>(&config))
		}
		None => {
			let runner = cli.create_runner(&cli.run)?;
			let grandpa_gossip = std::time::Duration::from_millis(cli.grandpa_gossip_ms);
			runner.run_node_until_exit(|mut config| async move {
				require_rpc_ports(&mut config)?;
				safe_rpc_outside_development(&mut config);
				match config.network.network_backend {
					sc_network::config::NetworkBackendType::Libp2p => service::new_full::<
						sc_network::NetworkWorker<
							blyan_runtime::opaque::Block,
							<blyan_runtime::opaque::Block as sp_runtime::traits::Block>::Hash,
						>,
					>(config, grandpa_gossip)
					.map_err(sc_cli::Error::Service),
					sc_network::config::NetworkBackendType::Litep2p => service::new_full::<
						sc_network::Litep2pNetworkBackend,
					>(
						config, grandpa_gossip
					)
					.map_err(sc_cli::Error::Service),
				}
			})
		}
	}
}

/// Makes the RPC server listen where it was asked to, or not at all.
///
/// Upstream, a busy RPC port makes the server fall back to a random port and carry on, so wallets,
/// workers and scripts configured for the port would reach another process or nothing. Here a
/// busy required address is an error that names it.
/// Outside development chains, `--rpc-methods auto` (the default) means safe methods only, even
/// on loopback: Substrate would expose unsafe ones (`author_rotateKeys`, `author_insertKey`,
/// `system_addReservedPeer`…) to anything that can reach a loopback port. An operator rotating
/// session keys asks for them with `--rpc-methods unsafe`, for that run only.
fn safe_rpc_outside_development(config: &mut sc_service::Configuration) {
	use sc_service::config::RpcMethods;
	if config.chain_spec.chain_type() == sc_service::ChainType::Development {
		return;
	}
	if matches!(config.rpc.methods, RpcMethods::Auto) {
		config.rpc.methods = RpcMethods::Safe;
	}
	for endpoint in config.rpc.addr.iter_mut().flatten() {
		if matches!(endpoint.rpc_methods, RpcMethods::Auto) {
			endpoint.rpc_methods = RpcMethods::Safe;
		}
	}
}

fn require_rpc_ports(config: &mut sc_service::Configuration) -> sc_cli::Result<()> {
	for endpoint in config.rpc.addr.iter_mut().flatten() {
		endpoint.retry_random_port = false;
		if endpoint.is_optional {
			continue;
		}
		if let Err(e) = std::net::TcpListener::bind(endpoint.listen_addr) {
			return Err(sc_cli::Error::Input(format!(
				"cannot listen for RPC on {}: {e}; is another node running? Choose a free port \
				 with --rpc-port",
				endpoint.listen_addr
			)));
		}
	}
	Ok(())
}
