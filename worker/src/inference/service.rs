//! The two long-running inference commands: `serve` (hold a span of an accepted version's layers,
//! announce it, take receipts and settle them) and `gateway` (answer the OpenAI API by routing
//! over announced stages, paying each with signed receipts).

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{bail, Context, Result};
use tracing::{info, warn};

use crate::{
	chain::{Chain, ChainError, VersionStatus, BLY},
	content,
	ml::device::ComputeDevice,
	storage::Ipfs,
};

use super::{
	api_keys::ApiKeys,
	chain_router::ChainRouter,
	commitments::ChunkSigner,
	fraud::Challenger,
	receipts::{NonceClock, ReceiptBook},
	route::{FixedRoute, RouteSource},
	server::{self, ApiAccess, AppState, Metrics, Payer},
	sessions::{ChainFunds, SessionGate, SessionOpener, Terms},
	stage,
};

/// Who may use the OpenAI API of a gateway or of a server holding the whole model.
#[derive(Clone, Debug)]
pub enum ApiAuth {
	/// Bearers of the keys in this key file (`--api-keys`).
	Keys(PathBuf),
	/// Anyone who reaches it (`--no-auth`).
	Open,
	/// Nobody: the server answers only the stage protocol.
	Off,
}

impl ApiAuth {
	fn access(&self) -> Result<ApiAccess> {
		Ok(match self {
			ApiAuth::Keys(path) => ApiAccess::Keys(Arc::new(ApiKeys::open(path)?)),
			ApiAuth::Open => ApiAccess::Open,
			ApiAuth::Off => ApiAccess::Off,
		})
	}
}

/// Writes the keys' usage every few seconds, until [`flush_usage`] writes it a last time.
fn keep_usage(access: &ApiAccess) -> Option<tokio::task::JoinHandle<()>> {
	let ApiAccess::Keys(keys) = access else { return None };
	let keys = keys.clone();
	Some(tokio::spawn(async move {
		loop {
			tokio::time::sleep(Duration::from_secs(2)).await;
			if let Err(e) = keys.flush() {
				warn!("writing the API keys' usage: {e:#}");
			}
		}
	}))
}

fn flush_usage(access: &ApiAccess, task: Option<tokio::task::JoinHandle<()>>) {
	if let Some(task) = task {
		task.abort();
	}
	if let ApiAccess::Keys(keys) = access {
		if let Err(e) = keys.flush() {
			warn!("writing the API keys' usage: {e:#}");
		}
	}
}

pub struct ServeOptions {
	pub version: u64,
	/// Registry layers `[start, end)`; `None` = the whole model.
	pub layers: Option<(usize, usize)>,
	pub listen: SocketAddr,
	/// The URL announced on chain; `http://<listen>` if `None`.
	pub public_url: Option<String>,
	pub price_per_token: u128,
	pub capacity: u32,
	pub bond_bly: u64,
	pub announce: bool,
	pub accept_free: bool,
	pub settle_every: Duration,
	/// Sleep before each chunk (simulates a slower device or link; tests and benchmarks).
	pub simulate_latency: Duration,
	/// Where the layers compute.
	pub device: ComputeDevice,
	/// Who may use the OpenAI API (only a server of the whole model answers it).
	pub api: ApiAuth,
	/// Tests only: every `n`th answer has a bit flipped (0: never).
	pub corrupt_every: u64,
}

/// Layers `[start, end)` of `version`, each checked against its Merkle root; for an adapter
/// version its base's layers with its adapters merged into the blocks (block `b` is layer
/// `b + 1`), so it computes at the base's speed. What a server serves and an arbiter replays.
pub async fn span_layers(
	chain: &Chain,
	ipfs: &Ipfs,
	config: &crate::ml::model::ModelConfig,
	version: u64,
	start: usize,
	end: usize,
) -> Result<Vec<crate::ml::weights::LayerTensors>> {
	let resolved = chain.resolve_layers(version).await?;
	let mut layers = Vec::with_capacity(end.saturating_sub(start));
	for i in start..end {
		let delta = &resolved.get(i).context("the registry resolved fewer layers")?.delta;
		layers.push(content::checked_layer(ipfs, config, i, delta).await?);
	}
	if let Some(adapters) = content::version_adapters(chain, ipfs, config, version).await? {
		for (i, layer) in (start..end).zip(&mut layers) {
			let Some(block) = i.checked_sub(1).filter(|b| *b < config.num_hidden_layers) else {
				continue;
			};
			crate::ml::lora::merge_block(
				config,
				&adapters.lora,
				block,
				layer,
				&adapters.layers[block],
			)?;
		}
		info!(version, base = adapters.base, "adapters merged into the base");
	}
	Ok(layers)
}

/// Parses `START..END`.
pub fn parse_span(text: &str) -> Result<(usize, usize), String> {
	let (a, b) = text.split_once("..").ok_or("layers are START..END, e.g. 0..3")?;
	let (a, b): (usize, usize) = (
		a.trim().parse().map_err(|_| format!("bad start {a:?}"))?,
		b.trim().parse().map_err(|_| format!("bad end {b:?}"))?,
	);
	if a >= b {
		return Err(format!("empty span {a}..{b}"));
	}
	Ok((a, b))
}

/// Loads the span from IPFS (each layer checked against its on-chain Merkle root), serves it,
/// announces it and settles receipts until `shutdown` resolves; then withdraws the announcement.
pub async fn serve(
	chain: Chain,
	ipfs: Ipfs,
	opts: ServeOptions,
	shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
	let info = chain.version(opts.version).await?.context("unknown version")?;
	if info.status != VersionStatus::Accepted {
		bail!(
			"version {} is not accepted ({:?}): only accepted versions are served",
			opts.version,
			info.status
		);
	}
	let config = content::model_config(&chain, &ipfs, info.model).await?;
	let total = config.layer_count();
	let (start, end) = opts.layers.unwrap_or((0, total));
	if end > total {
		bail!("layers {start}..{end}: the model has {total}");
	}
	if (start, end) != (0, total) && !matches!(opts.api, ApiAuth::Off) {
		bail!(
			"--api-keys/--no-auth: layers {start}..{end} are not the whole model (0..{total}), and \
			 only a server of the whole model answers the OpenAI API"
		);
	}
	let api = opts.api.access()?;
	let layers = span_layers(&chain, &ipfs, &config, opts.version, start, end).await?;
	info!(
		version = opts.version,
		"layers {start}..{end} of {total} loaded and checked against their Merkle roots"
	);
	let capacity = opts.capacity as usize;
	let stage =
		stage::start_on(opts.device, &config, start, layers, capacity, opts.simulate_latency)?;
	info!(version = opts.version, device = stage.device(), "stage started");
	let book = Arc::new(ReceiptBook::new(
		*chain.account(),
		chain.genesis_hash(),
		opts.price_per_token,
		opts.accept_free,
	));
	let whole = start == 0 && end == total;
	// The node connection, replaced by upkeep after a node restart; shutdown and the session
	// gate (which reads clients' balances) use the latest.
	let current = Arc::new(tokio::sync::RwLock::new(chain.clone()));
	let gate = Arc::new(SessionGate::new(
		Terms {
			server: *chain.account(),
			genesis: chain.genesis_hash(),
			version: opts.version,
			price_per_token: opts.price_per_token,
			accept_free: opts.accept_free,
			max_tokens: config.max_position_embeddings as u128,
		},
		Some(book.clone()),
		Box::new(ChainFunds(current.clone())),
		capacity,
	));
	// Only a server answering the OpenAI API reads text.
	let tokenizer = if whole {
		content::model_tokenizer(&ipfs, &config).await?
	} else {
		crate::ml::tokenizer::TextTokenizer::Bytes
	};
	let state = Arc::new(AppState {
		version: opts.version,
		stage: Some(stage.clone()),
		routes: whole.then(|| Arc::new(FixedRoute::local(stage.clone())) as Arc<dyn RouteSource>),
		book: Some(book.clone()),
		payer: None,
		api,
		gate: Some(gate),
		// The CPU's answers are the same bits on every machine: spot checks compare them.
		challenger: None,
		signer: Some(Arc::new(ChunkSigner::new(
			chain.keypair().clone(),
			chain.genesis_hash(),
			opts.version,
			(start as u16, end as u16),
			stage.device() == "cpu",
		))),
		check_rate: 0.0,
		check_queue: Default::default(),
		corrupt_every: opts.corrupt_every,
		max_positions: config.max_position_embeddings,
		tokenizer: Arc::new(tokenizer),
		metrics: Metrics::default(),
	});
	let listener = tokio::net::TcpListener::bind(opts.listen)
		.await
		.with_context(|| format!("cannot listen on {}", opts.listen))?;
	let url = opts.public_url.clone().unwrap_or_else(|| {
		format!("http://{}", listener.local_addr().map(|a| a.to_string()).unwrap_or_default())
	});
	println!("serving version {} layers {start}..{end} at {url}", opts.version);

	let usage = keep_usage(&state.api);
	let background = {
		let (current, book, url) = (current.clone(), book.clone(), url.clone());
		let span = (start as u16, end as u16);
		let opts = (
			opts.version,
			opts.price_per_token,
			opts.capacity,
			opts.bond_bly,
			opts.announce,
			opts.settle_every,
		);
		tokio::spawn(async move { upkeep(current, book, url, span, opts).await })
	};
	axum::serve(listener, server::router(state.clone()))
		.with_graceful_shutdown(shutdown)
		.await
		.context("HTTP server")?;
	background.abort();
	flush_usage(&state.api, usage);
	let chain = current.read().await.clone();
	// Leave cleanly: settle what is held, withdraw the announcement.
	if let Err(e) = book.settle(&chain, 256).await {
		warn!("final settlement: {e}");
	}
	if opts.announce {
		match tokio::time::timeout(Duration::from_secs(20), chain.withdraw_announcement()).await {
			Ok(Ok(_)) => println!(
				"announcement withdrawn; its bond unbonds for the arbitration window (a later \
				 `serve` releases it)"
			),
			Ok(Err(e)) => warn!("withdrawing the announcement: {e}"),
			Err(_) => warn!("withdrawing the announcement timed out"),
		}
	}
	Ok(())
}

/// Announces and renews at half the announcement's lifetime; settles receipts periodically.
async fn upkeep(
	current: Arc<tokio::sync::RwLock<Chain>>,
	book: Arc<ReceiptBook>,
	url: String,
	span: (u16, u16),
	(version, price, capacity, bond_bly, announce, settle_every): (
		u64,
		u128,
		u32,
		u64,
		bool,
		Duration,
	),
) {
	let mut renew_at = 0u32;
	let mut chain = current.read().await.clone();
	loop {
		// The node restarted or went away: serving goes on from memory, receipts stay in the book
		// until a new connection settles them.
		match reconnect_if_lost(&chain, "serving on").await {
			Ok(Some(c)) => {
				*current.write().await = c.clone();
				chain = c;
			}
			Ok(None) => {}
			Err(_) => {
				tokio::time::sleep(settle_every).await;
				continue;
			}
		}
		if announce {
			match chain.finalized_number().await {
				Ok(now) if now >= renew_at => {
					let bond = u128::from(bond_bly) * BLY;
					match chain.announce(version, span, &url, price, capacity, bond).await {
						Ok(_) => {
							let ttl = chain.announcement_ttl().await.unwrap_or(600);
							renew_at = now + (ttl / 2).max(1);
							println!("announced version {version} layers {}..{} at {url} (renewing at block {renew_at})", span.0, span.1);
						}
						Err(e) => warn!("announcing: {e}"),
					}
				}
				Ok(_) => {}
				Err(e) => warn!("node: {e}"),
			}
		}
		match book.settle(&chain, 256).await {
			Ok(0) => {}
			Ok(n) => println!("settled {n} receipts"),
			Err(e) => warn!("settling receipts: {e}"),
		}
		release_unbonded(&chain).await;
		tokio::time::sleep(settle_every).await;
	}
}

/// Releases this account's server bond left unbonding (by an earlier withdrawal, or a lower
/// bond announced) once its unbonding is over.
async fn release_unbonded(chain: &Chain) {
	let Ok(Some((amount, release_at))) = chain.server_unbonding(chain.account()).await else {
		return;
	};
	// Not while a challenge names this server: the release would fail (and cost a fee). A
	// challenge decided, or past its deadline, that its challenger left open is closed here.
	match chain.open_challenges_of(chain.account()).await {
		Ok(0) => {}
		Ok(_) => {
			let (Ok(open), Ok(now)) =
				(chain.inference_challenges().await, chain.finalized_number().await)
			else {
				return;
			};
			for (id, c) in open {
				if c.commitment.server == *chain.account() && super::fraud::closable(&c, now) {
					let _ = chain.close_inference_challenge(id).await;
				}
			}
			return;
		}
		Err(_) => return,
	}
	match chain.finalized_number().await {
		Ok(now) if now >= release_at => match chain.release_server_bond(chain.account()).await {
			Ok(_) => println!("released the unbonded server bond of {}", crate::chain::bly(amount)),
			Err(e) => warn!("releasing the unbonded bond: {e}"),
		},
		_ => {}
	}
}

/// Checks the node connection: `Ok(None)` if it answers (or fails otherwise than by a lost
/// connection), a new connection after a restart or loss, `Err` while no node can be reached.
/// Logs what the role does `meanwhile`.
async fn reconnect_if_lost(chain: &Chain, meanwhile: &str) -> Result<Option<Chain>, ChainError> {
	match chain.finalized_number().await {
		Err(e) if e.is_connection() => {
			warn!("lost the node ({e}); {meanwhile}, reconnecting");
			let c = chain
				.reconnect(Duration::from_secs(30))
				.await
				.inspect_err(|e| warn!("node still unreachable: {e}"))?;
			crate::metrics::metrics().node_reconnects.inc();
			println!("reconnected to the node at {}", c.url());
			Ok(Some(c))
		}
		_ => Ok(None),
	}
}

pub struct GatewayOptions {
	pub version: u64,
	pub listen: SocketAddr,
	/// Pay with free-tier receipts.
	pub free: bool,
	/// Sign no receipts (a private gateway in front of one's own servers).
	pub unpaid: bool,
	/// Most plancks per token this gateway pays a stage; dearer stages are not routed to.
	pub max_price_per_token: u128,
	/// Who may use it (it spends this account's BLY on every request).
	pub api: ApiAuth,
	/// Share of completions whose stages are spot-checked on a peer afterwards; `None`: the
	/// chain's `check_rate`.
	pub check_rate: Option<f64>,
	/// Challenge a caught stage on chain.
	pub challenge: bool,
	/// How often the challenger looks at the chain.
	pub poll: Duration,
	/// Serve the web app built in this directory at `/`, pointing browsers at this node URL.
	pub web: Option<(PathBuf, String)>,
}

/// Answers the OpenAI API for `version` over routes built from the chain until `shutdown`.
pub async fn gateway(
	chain: Chain,
	ipfs: Ipfs,
	opts: GatewayOptions,
	shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
	let info = chain.version(opts.version).await?.context("unknown version")?;
	let model = chain.model(info.model).await?.context("unknown model")?;
	let http = reqwest::Client::builder()
		.http2_prior_knowledge()
		.timeout(Duration::from_secs(30))
		.connect_timeout(Duration::from_secs(2))
		.build()?;
	let api = opts.api.access()?;
	// Every session this gateway opens at a stage carries a grant signed by its account.
	let opener = Arc::new(SessionOpener::for_chain(&chain, opts.free));
	let router = Arc::new(ChainRouter::new(
		chain.clone(),
		http.clone(),
		opts.max_price_per_token,
		Some(opener),
	));
	let payer = (!opts.unpaid).then(|| {
		Arc::new(Payer {
			chain: chain.clone(),
			nonces: NonceClock::default(),
			free: opts.free,
			http: reqwest::Client::new(),
		})
	});
	let config = content::model_config(&chain, &ipfs, info.model).await?;
	let max_positions = config.max_position_embeddings;
	let tokenizer = Arc::new(content::model_tokenizer(&ipfs, &config).await?);
	let check_rate = match opts.check_rate {
		Some(rate) => rate,
		None => chain.inference_params().await?.check_rate.0 as f64 / 1e9,
	};
	// The node connection the challenger uses, replaced after a node restart.
	let current = Arc::new(tokio::sync::RwLock::new(chain.clone()));
	let challenger =
		opts.challenge.then(|| Arc::new(Challenger::new(current.clone(), ipfs.clone(), opts.poll)));
	let state = Arc::new(AppState {
		version: opts.version,
		stage: None,
		routes: Some(router.clone()),
		book: None,
		payer,
		api,
		gate: None,
		signer: None,
		check_rate,
		check_queue: Default::default(),
		challenger,
		corrupt_every: 0,
		max_positions,
		tokenizer,
		metrics: Metrics::default(),
	});
	// Challenges this account made before a restart are seen through.
	if let Some(challenger) = &state.challenger {
		for (id, server) in challenger.open_challenges().await? {
			let (s, challenger) = (state.clone(), challenger.clone());
			tokio::spawn(async move {
				let closed = challenger.see_through(id).await;
				let kept = challenger.case_closed(&server, &closed);
				server::report_challenge(&s, &format!("challenge {id}"), closed);
				if let Some(caught) = kept {
					server::pursue_case(s, challenger, server, caught).await;
				}
			});
		}
	}
	let listener = tokio::net::TcpListener::bind(opts.listen)
		.await
		.with_context(|| format!("cannot listen on {}", opts.listen))?;
	let address = listener.local_addr()?;
	// Routes come from the chain: after a node restart the router gets a new connection, and
	// meanwhile serves from the announcements it last read.
	let watchdog = {
		let (router, mut chain) = (router.clone(), chain.clone());
		tokio::spawn(async move {
			loop {
				tokio::time::sleep(Duration::from_secs(1)).await;
				let meanwhile = "routing on the last announcements";
				if let Ok(Some(c)) = reconnect_if_lost(&chain, meanwhile).await {
					router.set_chain(c.clone()).await;
					*current.write().await = c.clone();
					chain = c;
				}
			}
		})
	};
	println!(
		"gateway for version {} ({} layers) at http://{} (spot checks of {:.1} % of requests{})",
		opts.version,
		model.architecture.layer_count,
		address,
		check_rate * 100.0,
		if opts.challenge { ", caught stages challenged on chain" } else { "" }
	);
	let mut app = server::router(state.clone());
	if let Some((dir, node)) = opts.web {
		println!("web app at http://{address}/ (from {}, node {node})", dir.display());
		app = app.merge(super::web::router(Arc::new(super::web::WebApp {
			dir,
			node,
			version: opts.version,
			needs_key: !matches!(state.api, ApiAccess::Open),
			router: router.clone(),
		})));
	}
	let usage = keep_usage(&state.api);
	let served =
		axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("HTTP server");
	watchdog.abort();
	flush_usage(&state.api, usage);
	served
}
