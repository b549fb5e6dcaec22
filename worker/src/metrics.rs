//! The worker's own Prometheus metrics, served on `--metrics-listen` next to the node's: what an
//! operator watches of a miner or verifier — jobs, earnings, training step time, IPFS errors and
//! node reconnects. One process-wide registry (as the `prometheus` crate's default one): every
//! role records into it without knowing whether anything serves it.

use std::{net::SocketAddr, sync::OnceLock};

use axum::{http::header, routing::get, Router};
use prometheus::{
	exponential_buckets, Counter, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec,
	Opts, Registry, TextEncoder,
};

pub struct WorkerMetrics {
	registry: Registry,
	/// Claims that landed on chain.
	pub jobs_claimed: IntCounter,
	/// Results committed (trained, hashed, not yet public).
	pub results_committed: IntCounter,
	/// Results revealed: layers pinned to IPFS and the claimed score on chain.
	pub results_revealed: IntCounter,
	/// Jobs that left this miner, by outcome (`accepted`, `rejected`, `no_verdict`, `lost`).
	pub jobs_finished: IntCounterVec,
	/// Verification scores this verifier revealed.
	pub scores_revealed: IntCounter,
	/// BLY received from the protocol (mining rewards, verifier fees, dataset shares, epoch
	/// rewards), read from chain events as blocks finalize.
	pub earned_bly: Counter,
	/// BLY slashed from this account.
	pub slashed_bly: Counter,
	/// Wall time of one optimizer step (from the second step of a run: the first also loads the
	/// model).
	pub train_step_seconds: Histogram,
	/// Failed IPFS RPC calls, by endpoint (`add`, `cat`, `pin/add`, …).
	pub ipfs_errors: IntCounterVec,
	/// Times a role lost the node and connected again.
	pub node_reconnects: IntCounter,
}

impl WorkerMetrics {
	fn new() -> Self {
		let registry = Registry::new();
		let opts = |name: &str, help: &str| Opts::new(format!("blyan_worker_{name}"), help);
		let counter = |name: &str, help: &str| {
			let c = IntCounter::with_opts(opts(name, help)).expect("a valid metric");
			registry.register(Box::new(c.clone())).expect("registered once");
			c
		};
		let labelled = |name: &str, help: &str, label: &str| {
			let c = IntCounterVec::new(opts(name, help), &[label]).expect("a valid metric");
			registry.register(Box::new(c.clone())).expect("registered once");
			c
		};
		let bly = |name: &str, help: &str| {
			let c = Counter::with_opts(opts(name, help)).expect("a valid metric");
			registry.register(Box::new(c.clone())).expect("registered once");
			c
		};
		let train_step_seconds = Histogram::with_opts(
			HistogramOpts::new("blyan_worker_train_step_seconds", "Wall time of one training step")
				.buckets(exponential_buckets(0.001, 2.0, 16).expect("valid buckets")),
		)
		.expect("a valid metric");
		registry.register(Box::new(train_step_seconds.clone())).expect("registered once");
		Self {
			jobs_claimed: counter("jobs_claimed_total", "Training jobs claimed on chain"),
			results_committed: counter("results_committed_total", "Training results committed"),
			results_revealed: counter(
				"results_revealed_total",
				"Training results revealed (layers pinned, score claimed)",
			),
			jobs_finished: labelled(
				"jobs_finished_total",
				"Jobs that left this miner, by outcome",
				"outcome",
			),
			scores_revealed: counter(
				"scores_revealed_total",
				"Verification scores revealed by this verifier",
			),
			earned_bly: bly("earned_bly_total", "BLY received from the protocol"),
			slashed_bly: bly("slashed_bly_total", "BLY slashed from this account"),
			train_step_seconds,
			ipfs_errors: labelled("ipfs_errors_total", "Failed IPFS RPC calls", "endpoint"),
			node_reconnects: counter("node_reconnects_total", "Reconnections to the node"),
			registry,
		}
	}

	/// The metrics in Prometheus' text format.
	pub fn render(&self) -> String {
		let mut out = Vec::new();
		TextEncoder::new()
			.encode(&self.registry.gather(), &mut out)
			.expect("text encoding of gathered metrics");
		String::from_utf8(out).expect("the text format is UTF-8")
	}
}

/// The process' metrics.
pub fn metrics() -> &'static WorkerMetrics {
	static METRICS: OnceLock<WorkerMetrics> = OnceLock::new();
	METRICS.get_or_init(WorkerMetrics::new)
}

/// Serves `GET /metrics` on `addr` in the background; returns the bound address.
pub async fn serve(addr: SocketAddr) -> std::io::Result<SocketAddr> {
	let listener = tokio::net::TcpListener::bind(addr).await?;
	let bound = listener.local_addr()?;
	let app = Router::new().route(
		"/metrics",
		get(|| async {
			([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics().render())
		}),
	);
	tokio::spawn(async move {
		if let Err(e) = axum::serve(listener, app).await {
			tracing::error!("metrics server stopped: {e}");
		}
	});
	Ok(bound)
}

/// The process' peak resident set size in bytes (`VmHWM` in `/proc/self/status`; `None` where
/// there is no such file): what an import of a large checkpoint really needed.
pub fn peak_rss_bytes() -> Option<u64> {
	let status = std::fs::read_to_string("/proc/self/status").ok()?;
	let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
	let kib: u64 =
		line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
	Some(kib * 1024)
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	#[cfg(target_os = "linux")]
	fn peak_rss_grows_with_what_was_touched() {
		let before = peak_rss_bytes().expect("Linux has /proc/self/status");
		// 64 MiB written, so resident: the peak is at least that above zero and never falls.
		let block = vec![1u8; 64 << 20];
		std::hint::black_box(&block);
		let after = peak_rss_bytes().unwrap();
		assert!(after >= before && after >= 64 << 20, "{before} → {after}");
	}

	#[test]
	fn every_metric_is_rendered_with_its_prefix() {
		let m = metrics();
		m.jobs_claimed.inc();
		m.ipfs_errors.with_label_values(&["add"]).inc();
		m.train_step_seconds.observe(0.02);
		m.earned_bly.inc_by(1.5);
		let text = m.render();
		for name in [
			"blyan_worker_jobs_claimed_total",
			"blyan_worker_results_committed_total",
			"blyan_worker_results_revealed_total",
			"blyan_worker_scores_revealed_total",
			"blyan_worker_earned_bly_total",
			"blyan_worker_slashed_bly_total",
			"blyan_worker_node_reconnects_total",
			"blyan_worker_train_step_seconds_bucket",
			"blyan_worker_train_step_seconds_count",
		] {
			assert!(text.contains(name), "{name} missing from:\n{text}");
		}
		assert!(text.contains("blyan_worker_ipfs_errors_total{endpoint=\"add\"}"), "{text}");
	}
}
