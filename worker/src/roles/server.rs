//! Server role: hold layers of an accepted version and serve them — the stage protocol, for
//! sessions opened by a client that can pay, and the OpenAI API when the span is the whole model
//! and `--api-keys` or `--no-auth` says for whom — announcing on chain and settling the receipts
//! it takes (the serving itself lives in [`crate::inference`]).

use std::{path::PathBuf, time::Duration};

use anyhow::Result;

use super::{shutdown_signal, usage, Context};
use crate::{
	inference::service::{self, ApiAuth, ServeOptions},
	ml::device::{self, ComputeDevice},
};

#[derive(clap::Args)]
pub struct Args {
	/// The accepted version.
	#[arg(long)]
	version: u64,
	/// Registry layers held, START..END (0 = embedding, last = norm and head); default all.
	#[arg(long, value_parser = service::parse_span)]
	layers: Option<(usize, usize)>,
	#[arg(long, default_value = "127.0.0.1:8080")]
	listen: std::net::SocketAddr,
	/// URL announced on chain (default http://LISTEN).
	#[arg(long)]
	public_url: Option<String>,
	/// Price per token (in or out) in plancks.
	#[arg(long, default_value_t = 1_000_000)]
	price: u128,
	/// Sessions served at once.
	#[arg(long, default_value_t = 8)]
	capacity: u32,
	/// Bond in BLY.
	#[arg(long, default_value_t = 100)]
	bond: u64,
	/// Do not announce on chain (a private server).
	#[arg(long)]
	no_announce: bool,
	/// Refuse free-tier receipts.
	#[arg(long)]
	no_free: bool,
	/// Seconds between settlements of receipts.
	#[arg(long, default_value_t = 10)]
	settle_secs: u64,
	/// Milliseconds added before every chunk (simulates a slower device; tests, benchmarks).
	#[arg(long, default_value_t = 0, hide = true)]
	simulate_latency_ms: u64,
	/// Where the layers compute: cpu, cuda or cuda:N (bf16 on GPUs that have it).
	#[arg(long, default_value = "cpu")]
	device: ComputeDevice,
	/// A server of the whole model answers the OpenAI API for bearers of the keys in this file
	/// (`blyan-worker api-key create`); without it or --no-auth, only the stage protocol.
	#[arg(long)]
	api_keys: Option<PathBuf>,
	/// A server of the whole model answers the OpenAI API for anyone who reaches it.
	#[arg(long, conflicts_with = "api_keys")]
	no_auth: bool,
	/// Flips a bit of every Nth answer (and signs it): a lying stage, for tests.
	#[arg(long, default_value_t = 0, hide = true)]
	corrupt_every: u64,
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
	ctx.serve_metrics().await?;
	// A GPU that is not there is a usage error before any chain or IPFS work.
	if let ComputeDevice::Cuda(index) = args.device {
		device::gpu_info(index).map_err(|e| usage(format!("--device {}: {e}", args.device)))?;
	}
	let chain = ctx.connect().await?;
	let ipfs = ctx.ipfs().await?;
	let opts = ServeOptions {
		version: args.version,
		layers: args.layers,
		listen: args.listen,
		public_url: args.public_url,
		price_per_token: args.price,
		capacity: args.capacity,
		bond_bly: args.bond,
		announce: !args.no_announce,
		accept_free: !args.no_free,
		settle_every: Duration::from_secs(args.settle_secs.max(1)),
		simulate_latency: Duration::from_millis(args.simulate_latency_ms),
		device: args.device,
		api: match (args.api_keys, args.no_auth) {
			(Some(path), _) => ApiAuth::Keys(path),
			(None, true) => ApiAuth::Open,
			(None, false) => ApiAuth::Off,
		},
		corrupt_every: args.corrupt_every,
	};
	service::serve(chain, ipfs, opts, shutdown_signal()).await
}
