//! A local pipeline stage: a span of layers and the KV caches of the sessions passing through it.
//! Sessions are bounded (`capacity`); the least recently used one is dropped to admit a new one,
//! and its coordinator replays it if it comes back. Forward passes run on blocking threads so
//! concurrent requests proceed in parallel and never stall the HTTP server.

use std::{
	collections::HashMap,
	sync::{Arc, Mutex},
	time::{Duration, Instant},
};

use crate::ml::{
	infer::{Activations, KvCache, StageError, StageModel},
	CpuBackend,
};

use super::protocol::SessionId;

struct Session {
	cache: Arc<Mutex<KvCache<CpuBackend>>>,
	last_used: Instant,
}

/// Counters for `/metrics`.
#[derive(Default, Clone, Copy, Debug)]
pub struct StageStats {
	pub chunks: u64,
	pub positions: u64,
	pub errors: u64,
	pub evicted: u64,
	pub busy_micros: u64,
}

pub struct LocalStage {
	model: StageModel<CpuBackend>,
	capacity: usize,
	sessions: Mutex<HashMap<SessionId, Session>>,
	stats: Mutex<StageStats>,
	latency: Duration,
}

impl LocalStage {
	pub fn new(model: StageModel<CpuBackend>, capacity: usize) -> Self {
		Self {
			model,
			capacity: capacity.max(1),
			sessions: Mutex::new(HashMap::new()),
			stats: Mutex::new(StageStats::default()),
			latency: Duration::ZERO,
		}
	}

	/// Adds `latency` before every chunk: a slower device or link, for tests and benchmarks.
	pub fn with_latency(mut self, latency: Duration) -> Self {
		self.latency = latency;
		self
	}

	pub fn model(&self) -> &StageModel<CpuBackend> {
		&self.model
	}

	pub fn capacity(&self) -> usize {
		self.capacity
	}

	pub fn sessions(&self) -> usize {
		self.sessions.lock().expect("sessions lock").len()
	}

	pub fn stats(&self) -> StageStats {
		*self.stats.lock().expect("stats lock")
	}

	/// Runs one chunk of `session` (blocking: call from a blocking thread).
	pub fn forward(
		&self,
		session: SessionId,
		position: usize,
		input: Activations,
	) -> Result<Activations, StageError> {
		let cache = {
			let mut sessions = self.sessions.lock().expect("sessions lock");
			if !sessions.contains_key(&session) {
				if position != 0 {
					drop(sessions);
					self.stats.lock().expect("stats lock").errors += 1;
					return Err(StageError::Position { cached: 0, position });
				}
				if sessions.len() >= self.capacity {
					let oldest = sessions
						.iter()
						.min_by_key(|(_, s)| s.last_used)
						.map(|(id, _)| *id)
						.expect("capacity is at least one");
					sessions.remove(&oldest);
					self.stats.lock().expect("stats lock").evicted += 1;
				}
				sessions.insert(
					session,
					Session {
						cache: Arc::new(Mutex::new(self.model.new_cache())),
						last_used: Instant::now(),
					},
				);
			}
			let entry = sessions.get_mut(&session).expect("inserted above");
			entry.last_used = Instant::now();
			entry.cache.clone()
		};
		if !self.latency.is_zero() {
			std::thread::sleep(self.latency);
		}
		let started = Instant::now();
		let rows = match &input {
			Activations::Tokens(t) => t.len(),
			Activations::Hidden { rows, .. } => *rows,
			Activations::Logits(_) => 0,
		};
		let result = self.model.forward(&mut cache.lock().expect("cache lock"), position, input);
		let mut stats = self.stats.lock().expect("stats lock");
		match &result {
			Ok(_) => {
				stats.chunks += 1;
				stats.positions += rows as u64;
				stats.busy_micros += started.elapsed().as_micros() as u64;
			}
			Err(_) => stats.errors += 1,
		}
		result
	}

	/// Forgets a finished session.
	pub fn end(&self, session: &SessionId) {
		self.sessions.lock().expect("sessions lock").remove(session);
	}
}
