//! Routes from the on-chain registry: the live announcements of servers for a version, chained
//! from layer 0 to the model's last layer. At each position the router prefers stages with free
//! capacity, then low measured latency (probed with `/health` when unknown), then a higher bond;
//! equally good stages take turns (round robin), and a stage that failed is avoided for a while.

use std::{
	collections::{BTreeSet, HashMap, HashSet},
	sync::{
		atomic::{AtomicUsize, Ordering},
		Arc, Mutex,
	},
	time::{Duration, Instant},
};

use futures::future::BoxFuture;
use subxt::utils::AccountId32;

use crate::chain::{Chain, ChainAnnouncement};

use super::{
	route::{Hop, Route, RouteError, RouteSource, StageAccess, StageClient},
	sessions::SessionOpener,
};

/// What the router has measured of an endpoint.
#[derive(Clone, Copy, Debug, Default)]
struct Measured {
	/// Exponentially weighted latency of a chunk or probe.
	latency: Option<Duration>,
	/// Sessions it held / takes, from its last `/health`.
	load: Option<(usize, usize)>,
	/// Avoided until then after a failure.
	avoid_until: Option<Instant>,
}

/// Live stages, each with the version it serves.
type Versioned = Vec<(u64, Candidate)>;

/// A stage some server announced.
#[derive(Clone, Debug)]
pub struct Candidate {
	pub server: AccountId32,
	pub endpoint: String,
	pub span: (usize, usize),
	pub price_per_token: u128,
	pub bond: u128,
	pub capacity: u32,
}

pub struct ChainRouter {
	chain: tokio::sync::RwLock<Chain>,
	http: reqwest::Client,
	measured: Mutex<HashMap<String, Measured>>,
	/// Announcements and layer counts, refreshed at most every `refresh`.
	cache: tokio::sync::Mutex<Option<(Instant, Versioned)>>,
	layers: tokio::sync::Mutex<HashMap<u64, usize>>,
	refresh: Duration,
	turn: AtomicUsize,
	/// How long a failed endpoint is avoided.
	pub cooldown: Duration,
	/// Stages asking more per token are never used (the gateway signs receipts at their price).
	pub max_price_per_token: u128,
	/// Opens this coordinator's sessions at the stages (`None`: stages that ask for a grant
	/// refuse it).
	opener: Option<Arc<SessionOpener>>,
	/// Servers a spot check caught answering other bits than their layers give: never routed to.
	banned: Mutex<BTreeSet<AccountId32>>,
}

/// What the router knows of one endpoint, as the gateway's web app shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EndpointView {
	pub endpoint: String,
	/// Exponentially weighted latency of a chunk or probe, once measured.
	pub latency_ms: Option<f64>,
	/// Sessions held and taken at its last `/health`.
	pub sessions: Option<usize>,
	pub capacity: Option<usize>,
	/// Avoided for now after a failure.
	pub avoided: bool,
}

impl ChainRouter {
	/// Every endpoint measured so far, and the servers a spot check caught (never routed to).
	pub fn measurements(&self) -> (Vec<EndpointView>, Vec<AccountId32>) {
		let now = Instant::now();
		let measured = self.measured.lock().expect("measured lock");
		let mut views: Vec<EndpointView> = measured
			.iter()
			.map(|(endpoint, m)| EndpointView {
				endpoint: endpoint.clone(),
				latency_ms: m.latency.map(|l| l.as_secs_f64() * 1e3),
				sessions: m.load.map(|l| l.0),
				capacity: m.load.map(|l| l.1),
				avoided: m.avoid_until.is_some_and(|until| now < until),
			})
			.collect();
		views.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
		let banned = self.banned.lock().expect("banned lock").iter().cloned().collect();
		(views, banned)
	}

	pub fn new(
		chain: Chain,
		http: reqwest::Client,
		max_price_per_token: u128,
		opener: Option<Arc<SessionOpener>>,
	) -> Self {
		Self {
			chain: tokio::sync::RwLock::new(chain),
			http,
			measured: Mutex::new(HashMap::new()),
			cache: tokio::sync::Mutex::new(None),
			layers: tokio::sync::Mutex::new(HashMap::new()),
			refresh: Duration::from_secs(2),
			turn: AtomicUsize::new(0),
			cooldown: Duration::from_secs(30),
			max_price_per_token,
			opener,
			banned: Mutex::new(BTreeSet::new()),
		}
	}

	/// Live stages of `version` this gateway may use: priced within its limit, not caught.
	async fn usable_candidates(&self, version: u64) -> Result<Vec<Candidate>, RouteError> {
		let banned = self.banned.lock().expect("banned lock").clone();
		Ok(self
			.candidates()
			.await?
			.into_iter()
			.filter(|(v, c)| {
				*v == version
					&& c.price_per_token <= self.max_price_per_token
					&& !banned.contains(&c.server)
			})
			.map(|(_, c)| c)
			.collect())
	}

	fn hop(&self, c: Candidate, version: u64) -> Hop {
		Hop {
			client: StageClient::Remote {
				endpoint: c.endpoint,
				http: self.http.clone(),
				access: self.opener.clone().map(|opener| StageAccess {
					opener,
					server: c.server,
					version,
				}),
			},
			span: c.span,
			server: Some(c.server),
			price_per_token: c.price_per_token,
		}
	}

	/// Replaces the node connection (after a reconnect).
	pub async fn set_chain(&self, chain: Chain) {
		*self.chain.write().await = chain;
	}

	/// Live announcements: `(version, candidate)`.
	pub async fn candidates(&self) -> Result<Vec<(u64, Candidate)>, RouteError> {
		let mut cache = self.cache.lock().await;
		if let Some((at, list)) = cache.as_ref() {
			if at.elapsed() < self.refresh {
				return Ok(list.clone());
			}
		}
		let chain = self.chain.read().await;
		let (now, servers) = match chain.announcements().await {
			Ok(read) => read,
			// The node is away (restarting): the servers last announced are likely still up,
			// and a dead one is routed around as usual. Refreshed once the node is back.
			Err(e) if e.is_connection() => match cache.as_ref() {
				Some((_, list)) => return Ok(list.clone()),
				None => return Err(RouteError::Source(e.to_string())),
			},
			Err(e) => return Err(RouteError::Source(e.to_string())),
		};
		let list: Vec<(u64, Candidate)> = servers
			.into_iter()
			.filter(|(_, a)| a.expires_at > now)
			.map(|(server, a): (AccountId32, ChainAnnouncement)| {
				let endpoint =
					String::from_utf8_lossy(&a.endpoint.0).trim_end_matches('/').to_string();
				(
					a.version,
					Candidate {
						server,
						endpoint,
						span: (a.layers.start as usize, a.layers.end as usize),
						price_per_token: a.price_per_token,
						bond: a.bond,
						capacity: a.capacity,
					},
				)
			})
			.collect();
		*cache = Some((Instant::now(), list.clone()));
		Ok(list)
	}

	/// Registry layers of `version`'s model.
	async fn layer_count(&self, version: u64) -> Result<usize, RouteError> {
		if let Some(n) = self.layers.lock().await.get(&version) {
			return Ok(*n);
		}
		let source = |e: crate::chain::ChainError| RouteError::Source(e.to_string());
		let chain = self.chain.read().await;
		let info = chain
			.version(version)
			.await
			.map_err(source)?
			.ok_or(RouteError::NoRoute { version, reason: "unknown version".into() })?;
		let model = chain
			.model(info.model)
			.await
			.map_err(source)?
			.ok_or(RouteError::NoRoute { version, reason: "unknown model".into() })?;
		let n = model.architecture.layer_count as usize;
		self.layers.lock().await.insert(version, n);
		Ok(n)
	}

	/// `GET /health` of an endpoint: latency and load.
	async fn probe(&self, endpoint: &str) {
		let started = Instant::now();
		let health = self
			.http
			.get(format!("{endpoint}/health"))
			.timeout(Duration::from_secs(2))
			.send()
			.await
			.ok()
			.filter(|r| r.status().is_success());
		let load = match health {
			Some(r) => r.json::<serde_json::Value>().await.ok().map(|v| {
				(
					v["sessions"].as_u64().unwrap_or(0) as usize,
					v["capacity"].as_u64().unwrap_or(1) as usize,
				)
			}),
			None => None,
		};
		let mut measured = self.measured.lock().expect("measured lock");
		let m = measured.entry(endpoint.to_string()).or_default();
		match load {
			Some(load) => {
				m.load = Some(load);
				m.latency = Some(started.elapsed());
			}
			None => m.avoid_until = Some(Instant::now() + self.cooldown),
		}
	}

	fn usable(&self, endpoint: &str, avoid: &HashSet<String>) -> bool {
		if avoid.contains(endpoint) {
			return false;
		}
		let measured = self.measured.lock().expect("measured lock");
		measured
			.get(endpoint)
			.and_then(|m| m.avoid_until)
			.is_none_or(|until| Instant::now() >= until)
	}

	/// Sort key: free capacity first, then latency (in 5 ms steps), then bond (higher first).
	fn rank(&self, c: &Candidate) -> (bool, u128, std::cmp::Reverse<u128>) {
		let measured = self.measured.lock().expect("measured lock");
		let m = measured.get(&c.endpoint).copied().unwrap_or_default();
		let full = m.load.is_some_and(|(sessions, capacity)| sessions >= capacity);
		let latency = m.latency.map(|l| l.as_micros() / 5_000).unwrap_or(u128::MAX);
		(full, latency, std::cmp::Reverse(c.bond))
	}

	/// The best chain of stages from `position` to `end`, depth first over ranked candidates;
	/// `dead` remembers positions from which `end` cannot be reached (so the search is linear
	/// in the announcements, whatever spans are announced).
	fn chain_from(
		&self,
		candidates: &[Candidate],
		position: usize,
		end: usize,
		avoid: &HashSet<String>,
		turn: usize,
		dead: &mut HashSet<usize>,
	) -> Option<Vec<Candidate>> {
		if position == end {
			return Some(Vec::new());
		}
		if dead.contains(&position) {
			return None;
		}
		let mut here: Vec<&Candidate> = candidates
			.iter()
			.filter(|c| c.span.0 == position && c.span.1 <= end && self.usable(&c.endpoint, avoid))
			.collect();
		here.sort_by_key(|c| self.rank(c));
		// Rotate among the equally ranked best, so equivalent routes share the load.
		if let Some(best) = here.first().map(|c| self.rank(c)) {
			let ties = here.iter().take_while(|c| self.rank(c) == best).count();
			here[..ties].rotate_left(turn % ties);
		}
		for c in here {
			if let Some(mut rest) = self.chain_from(candidates, c.span.1, end, avoid, turn, dead) {
				rest.insert(0, c.clone());
				return Some(rest);
			}
		}
		dead.insert(position);
		None
	}
}

impl RouteSource for ChainRouter {
	fn route<'a>(
		&'a self,
		version: u64,
		avoid: &'a HashSet<String>,
	) -> BoxFuture<'a, Result<Route, RouteError>> {
		Box::pin(async move {
			let end = self.layer_count(version).await?;
			let candidates = self.usable_candidates(version).await?;
			// Measure endpoints never measured (latency, load) before choosing.
			let unmeasured: Vec<String> = {
				let measured = self.measured.lock().expect("measured lock");
				candidates
					.iter()
					// Never measured, and not avoided now: a probe that failed (a stage busy
					// starting, a slow machine) is tried again once its cooldown is over, or the
					// stage would rank last (no latency) for good.
					.filter(|c| {
						measured.get(&c.endpoint).is_none_or(|m| {
							m.latency.is_none()
								&& m.avoid_until.is_none_or(|until| Instant::now() >= until)
						})
					})
					.map(|c| c.endpoint.clone())
					.collect()
			};
			futures::future::join_all(unmeasured.iter().map(|e| self.probe(e))).await;
			let turn = self.turn.fetch_add(1, Ordering::Relaxed);
			let mut dead = HashSet::new();
			let chosen =
				self.chain_from(&candidates, 0, end, avoid, turn, &mut dead).ok_or_else(|| {
					RouteError::NoRoute {
						version,
						reason: format!(
						"{} live stages announced, none chain from layer 0 to {end} avoiding {avoid:?}",
						candidates.len()
					),
					}
				})?;
			Ok(Route { hops: chosen.into_iter().map(|c| self.hop(c, version)).collect() })
		})
	}

	fn peers<'a>(
		&'a self,
		version: u64,
		span: (usize, usize),
		avoid: &'a HashSet<String>,
	) -> BoxFuture<'a, Vec<Hop>> {
		Box::pin(async move {
			let Ok(candidates) = self.usable_candidates(version).await else { return Vec::new() };
			let mut peers: Vec<Candidate> = candidates
				.into_iter()
				.filter(|c| c.span == span && self.usable(&c.endpoint, avoid))
				.collect();
			peers.sort_by_key(|c| self.rank(c));
			peers.into_iter().map(|c| self.hop(c, version)).collect()
		})
	}

	fn caught(&self, hop: &Hop) {
		if let Some(server) = hop.server {
			self.banned.lock().expect("banned lock").insert(server);
		}
	}

	fn report(&self, endpoint: &str, outcome: Result<Duration, ()>) {
		let mut measured = self.measured.lock().expect("measured lock");
		let m = measured.entry(endpoint.to_string()).or_default();
		match outcome {
			Ok(latency) => {
				m.latency = Some(match m.latency {
					Some(old) => (old * 7 + latency) / 8,
					None => latency,
				});
				m.avoid_until = None;
			}
			Err(()) => m.avoid_until = Some(Instant::now() + self.cooldown),
		}
	}
}
