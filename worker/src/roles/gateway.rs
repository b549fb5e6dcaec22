//! Gateway role: the OpenAI API for a version, for bearers of its API keys, routed over the
//! stages announced on chain, opening a session at each with a grant signed by this account and
//! paying each with receipts signed by it (the routing and serving live in
//! [`crate::inference`]).

use std::path::PathBuf;

use anyhow::Result;

use super::{shutdown_signal, Context};
use crate::inference::service::{self, ApiAuth, GatewayOptions};

#[derive(clap::Args)]
pub struct Args {
	#[arg(long)]
	version: u64,
	#[arg(long, default_value = "127.0.0.1:8000")]
	listen: std::net::SocketAddr,
	/// Pay with free-tier receipts (counted against this account's daily quota).
	#[arg(long)]
	free: bool,
	/// Sign no receipts (for one's own stages at price 0: a priced stage stops opening this
	/// account's sessions after four contexts it was not paid for).
	#[arg(long, conflicts_with = "free")]
	unpaid: bool,
	/// Most plancks per token paid to a stage; stages asking more are never used.
	#[arg(long, default_value_t = 100_000_000)]
	max_price: u128,
	/// Let in only bearers of the keys in this file (`blyan-worker api-key create`), within
	/// their daily quotas: the gateway pays the servers for every request it answers.
	#[arg(long, required_unless_present = "no_auth")]
	api_keys: Option<PathBuf>,
	/// Let in anyone who reaches the gateway (a private one, on a trusted network).
	#[arg(long, conflicts_with = "api_keys")]
	no_auth: bool,
	/// Share of completions whose stages are spot-checked afterwards: each hop's chunks replayed
	/// on another server of its span and the bits compared (paid like any request). Default:
	/// the chain's `check_rate` (a governance parameter).
	#[arg(long, value_parser = parse_rate)]
	check_rate: Option<f64>,
	/// Only route around a stage a spot check caught; do not challenge it on chain (a challenge
	/// holds the chain's challenge bond from this account until arbiters decide).
	#[arg(long)]
	no_challenges: bool,
	/// Serve the web app (explorer, chat playground, miner dashboard, governance) at `/` from
	/// this directory: `web/dist`, built by `npm run build` in `web/` (scripts/setup.sh does).
	#[arg(long)]
	web: Option<PathBuf>,
	/// The node's WebSocket RPC as the web app's browsers reach it (default: the first --node).
	#[arg(long, requires = "web")]
	web_node: Option<String>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
	match text.parse::<f64>() {
		Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
		_ => Err(format!("{text:?} is not a share between 0 and 1")),
	}
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
	ctx.serve_metrics().await?;
	let chain = ctx.connect().await?;
	let ipfs = ctx.ipfs().await?;
	let opts = GatewayOptions {
		version: args.version,
		listen: args.listen,
		free: args.free,
		unpaid: args.unpaid,
		max_price_per_token: args.max_price,
		api: args.api_keys.map_or(ApiAuth::Open, ApiAuth::Keys),
		check_rate: args.check_rate,
		challenge: !args.no_challenges,
		poll: ctx.poll,
		web: match args.web {
			Some(dir) => {
				anyhow::ensure!(
					dir.join("index.html").is_file(),
					"--web {}: no index.html there (build the app: cd web && npm run build)",
					dir.display()
				);
				let first = ctx.settings.node.split(',').next().unwrap_or_default().to_string();
				Some((dir, args.web_node.unwrap_or(first)))
			}
			None => None,
		},
	};
	service::gateway(chain, ipfs, opts, shutdown_signal()).await
}
