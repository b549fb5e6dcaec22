//! Gateway role: the OpenAI API for a version, routed over the stages announced on chain and
//! paid with receipts signed by this account (the routing and serving live in
//! [`crate::inference`]).

use anyhow::Result;

use super::{shutdown_signal, Context};
use crate::inference::service::{self, GatewayOptions};

#[derive(clap::Args)]
pub struct Args {
	#[arg(long)]
	version: u64,
	#[arg(long, default_value = "127.0.0.1:8000")]
	listen: std::net::SocketAddr,
	/// Pay with free-tier receipts (counted against this account's daily quota).
	#[arg(long)]
	free: bool,
	/// Sign no receipts.
	#[arg(long, conflicts_with = "free")]
	unpaid: bool,
	/// Most plancks per token paid to a stage; stages asking more are never used.
	#[arg(long, default_value_t = 100_000_000)]
	max_price: u128,
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
	};
	service::gateway(chain, ipfs, opts, shutdown_signal()).await
}
