//! A local pipeline stage: a span of layers and the KV caches of the sessions passing through it.
//!
//! Chunks arriving while the model is busy are **batched**: one thread runs the model, and each
//! time it finishes a batch it takes every chunk that queued meanwhile (one per session, up to
//! [`MAX_BATCH`]) as the next one (`StageModel::forward_batch`: projections and MLPs over all rows
//! at once, attention per session). Before it does, it waits up to [`BATCH_WINDOW`] for the open
//! sessions of the last batch that usually come back that fast (decoding side by side, they then
//! stay in one batch a step); a lone request runs at once, alone. Sessions are bounded
//! (`capacity`): the least recently used one is dropped to admit a new one if it has been idle
//! for 30 s (its coordinator replays it if it comes back); otherwise the stage is busy (HTTP 429)
//! and the coordinator routes elsewhere.
//!
//! The model runs on any burn backend (the CPU, or CUDA in a `cuda` build: `serve --device`);
//! [`LocalStage`] hides which behind [`StageRunner`], so routes and servers hold one type.

use std::{
	collections::{HashMap, HashSet},
	sync::{mpsc, Arc, Condvar, Mutex},
	time::{Duration, Instant},
};

use burn::tensor::backend::Backend;

use crate::ml::{
	device::{ComputeDevice, GpuError},
	infer::{Activations, Chunk, KvCache, StageError, StageModel},
	model::ModelConfig,
	weights::{LayerTensors, WeightsError},
	CpuBackend,
};

use super::protocol::SessionId;

/// Most chunks in one batch.
pub const MAX_BATCH: usize = 32;
/// How long the model thread waits, at most, for the sessions of its last batch before it runs
/// the next one without them. A session's next chunk comes as soon as its client has the last
/// result (a decoding client samples a token and sends it back); a batch started without it
/// leaves it to the batch after, the live sessions settle into groups that alternate, and each
/// decoding step reads every weight once per group instead of once.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// A session unused this long may be dropped to admit a new one.
const IDLE_EVICTION: Duration = Duration::from_secs(30);

/// Counters for `/metrics`.
#[derive(Default, Clone, Copy, Debug)]
pub struct StageStats {
	pub chunks: u64,
	pub batches: u64,
	pub positions: u64,
	pub errors: u64,
	pub evicted: u64,
	pub busy_micros: u64,
}

type Reply = mpsc::Sender<Result<Activations, StageError>>;

struct Pending {
	session: SessionId,
	position: usize,
	input: Activations,
	reply: Reply,
	queued: Instant,
}

/// What a server and a route need of a stage, whatever backend its model runs on.
pub trait StageRunner: Send + Sync {
	/// Runs one chunk of `session` (blocking until its batch is done: call from a blocking
	/// thread).
	fn forward(
		&self,
		session: SessionId,
		position: usize,
		input: Activations,
	) -> Result<Activations, StageError>;
	/// Forgets a finished session.
	fn end(&self, session: &SessionId);
	fn sessions(&self) -> usize;
	/// Whether a chunk of `session` would find its session: held already, or room to open it
	/// (fewer than the capacity held, or one idle long enough to make room).
	fn has_room_for(&self, session: &SessionId) -> bool;
	fn stats(&self) -> StageStats;
	/// Ends the model thread once the queue is empty (the stage's model and caches are then
	/// freed: GPU memory too).
	fn stop(&self);
}

/// A running stage: its span of layers, where it computes, and the model thread behind it.
pub struct LocalStage {
	runner: Arc<dyn StageRunner>,
	config: ModelConfig,
	span: (usize, usize),
	capacity: usize,
	device: String,
}

impl LocalStage {
	/// Starts the stage's model thread on the model's backend; `device` names it (`/health`).
	pub fn start<B: Backend>(
		model: StageModel<B>,
		capacity: usize,
		latency: Duration,
		device: impl Into<String>,
	) -> Arc<Self>
	where
		StageModel<B>: Send + Sync,
		KvCache<B>: Send,
	{
		Self::start_with_window(model, capacity, latency, BATCH_WINDOW, device)
	}

	fn start_with_window<B: Backend>(
		model: StageModel<B>,
		capacity: usize,
		latency: Duration,
		window: Duration,
		device: impl Into<String>,
	) -> Arc<Self>
	where
		StageModel<B>: Send + Sync,
		KvCache<B>: Send,
	{
		let (config, span, capacity) = (model.config().clone(), model.span(), capacity.max(1));
		let runner = Arc::new(Runner {
			stopped: Default::default(),
			model,
			capacity,
			latency,
			window,
			sessions: Mutex::new(HashMap::new()),
			queue: Mutex::new(Vec::new()),
			queued: Condvar::new(),
			stats: Mutex::new(StageStats::default()),
		});
		let thread = runner.clone();
		std::thread::Builder::new()
			.name("stage-model".into())
			.spawn(move || thread.run())
			.expect("a thread can be spawned");
		Arc::new(Self { runner, config, span, capacity, device: device.into() })
	}

	/// Registry layers `[start, end)` held.
	pub fn span(&self) -> (usize, usize) {
		self.span
	}

	pub fn config(&self) -> &ModelConfig {
		&self.config
	}

	/// Where the model computes, e.g. `cpu` or `cuda:0 (NVIDIA H200, bf16)`.
	pub fn device(&self) -> &str {
		&self.device
	}

	pub fn capacity(&self) -> usize {
		self.capacity
	}

	pub fn sessions(&self) -> usize {
		self.runner.sessions()
	}

	/// Whether a chunk of `session` would find its session or room to open it (a full stage
	/// answers 429).
	pub fn has_room_for(&self, session: &SessionId) -> bool {
		self.runner.has_room_for(session)
	}

	pub fn stats(&self) -> StageStats {
		self.runner.stats()
	}

	/// Runs one chunk of `session` (blocking until its batch is done: call from a blocking
	/// thread).
	pub fn forward(
		&self,
		session: SessionId,
		position: usize,
		input: Activations,
	) -> Result<Activations, StageError> {
		self.runner.forward(session, position, input)
	}

	/// Forgets a finished session.
	pub fn end(&self, session: &SessionId) {
		self.runner.end(session)
	}
}

#[derive(Debug, thiserror::Error)]
pub enum StageStartError {
	#[error(transparent)]
	Gpu(#[from] GpuError),
	#[error(transparent)]
	Weights(#[from] WeightsError),
}

/// Starts a stage of layers `[start, start + layers.len())` on `device`, freeing each layer as
/// the backend takes its copy. A GPU is checked through
/// its driver first (a missing one is a clear error, not a panic inside burn) and computes in
/// bf16 where it has bf16 tensor cores, else f32.
pub fn start_on(
	device: ComputeDevice,
	config: &ModelConfig,
	start: usize,
	layers: Vec<LayerTensors>,
	capacity: usize,
	latency: Duration,
) -> Result<Arc<LocalStage>, StageStartError> {
	match device {
		ComputeDevice::Cpu => {
			let model =
				StageModel::<CpuBackend>::from_layers(config, start, layers, &Default::default())?;
			Ok(LocalStage::start(model, capacity, latency, "cpu"))
		}
		#[cfg(feature = "cuda")]
		ComputeDevice::Cuda(index) => {
			use crate::ml::device::{gpu_info, set_gpu_precision, Precision};
			let gpu = gpu_info(index)?;
			let precision = Precision::best_for(&gpu);
			set_gpu_precision(&gpu, precision)?;
			let cuda = burn::backend::cuda::CudaDevice::new(index);
			let model =
				StageModel::<crate::ml::CudaBackend>::from_layers(config, start, layers, &cuda)?;
			let label = format!("cuda:{index} ({}, {precision})", gpu.name);
			Ok(LocalStage::start(model, capacity, latency, label))
		}
		#[cfg(not(feature = "cuda"))]
		ComputeDevice::Cuda(_) => Err(GpuError::NotBuilt.into()),
	}
}

impl Drop for LocalStage {
	fn drop(&mut self) {
		self.runner.stop();
	}
}

/// The model thread's side of a stage on backend `B`.
struct Runner<B: Backend> {
	stopped: std::sync::atomic::AtomicBool,
	model: StageModel<B>,
	capacity: usize,
	latency: Duration,
	/// [`BATCH_WINDOW`].
	window: Duration,
	sessions: Mutex<HashMap<SessionId, (KvCacheSlot<B>, Instant)>>,
	queue: Mutex<Vec<Pending>>,
	queued: Condvar,
	stats: Mutex<StageStats>,
}

/// A session's cache; taken out while a batch runs on it.
type KvCacheSlot<B> = Option<KvCache<B>>;

impl<B: Backend> StageRunner for Runner<B>
where
	StageModel<B>: Send + Sync,
	KvCache<B>: Send,
{
	fn forward(
		&self,
		session: SessionId,
		position: usize,
		input: Activations,
	) -> Result<Activations, StageError> {
		let (reply, result) = mpsc::channel();
		self.queue.lock().expect("queue lock").push(Pending {
			session,
			position,
			input,
			reply,
			queued: Instant::now(),
		});
		self.queued.notify_one();
		result.recv().unwrap_or(Err(StageError::Stopped))
	}

	fn end(&self, session: &SessionId) {
		self.sessions.lock().expect("sessions lock").remove(session);
		// The model thread may be waiting for this session's next chunk (the batch window): it
		// will not come. Under the queue's lock (taken after the sessions' is released: the model
		// thread takes queue then sessions), so the wake-up cannot fall between its check and
		// its wait.
		let _queue = self.queue.lock().expect("queue lock");
		self.queued.notify_all();
	}

	fn sessions(&self) -> usize {
		self.sessions.lock().expect("sessions lock").len()
	}

	fn has_room_for(&self, session: &SessionId) -> bool {
		let sessions = self.sessions.lock().expect("sessions lock");
		sessions.contains_key(session)
			|| sessions.len() < self.capacity
			|| sessions
				.values()
				.any(|(cache, used)| cache.is_some() && used.elapsed() >= IDLE_EVICTION)
	}

	fn stats(&self) -> StageStats {
		*self.stats.lock().expect("stats lock")
	}

	fn stop(&self) {
		// Under the queue's lock, so the model thread cannot miss it between its check and wait.
		let _queue = self.queue.lock().expect("queue lock");
		self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
		self.queued.notify_all();
	}
}

impl<B: Backend> Runner<B> {
	/// The model thread: batch after batch of whatever queued.
	fn run(&self) {
		// The sessions of the last batch and when it finished; when each open session's last
		// batch finished; the sessions whose last chunk came later than the window after that
		// (behind other stages of a pipeline, or a slow client): waiting for those would only
		// delay the batch. Every chunk batched reclassifies its session.
		let mut last: HashSet<SessionId> = HashSet::new();
		let mut finished = Instant::now();
		let mut returned: HashMap<SessionId, Instant> = HashMap::new();
		let mut slow: HashSet<SessionId> = HashSet::new();
		loop {
			let batch = {
				let mut queue = self.queue.lock().expect("queue lock");
				while queue.is_empty() {
					if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
						return;
					}
					queue = self.queued.wait(queue).expect("queue lock");
				}
				// The last batch's open sessions that come back fast, for the window after it.
				let deadline = finished + self.window;
				loop {
					let waiting_for = {
						let sessions = self.sessions.lock().expect("sessions lock");
						let queued: HashSet<SessionId> = queue.iter().map(|p| p.session).collect();
						queued.len() < MAX_BATCH
							&& last.iter().any(|s| {
								sessions.contains_key(s) && !slow.contains(s) && !queued.contains(s)
							})
					};
					let now = Instant::now();
					if !waiting_for
						|| now >= deadline || self.stopped.load(std::sync::atomic::Ordering::SeqCst)
					{
						break;
					}
					queue = self.queued.wait_timeout(queue, deadline - now).expect("queue lock").0;
				}
				// One chunk per session (its next one waits for this one), oldest first.
				let mut seen = HashSet::new();
				let mut batch = Vec::new();
				let mut rest = Vec::new();
				for p in queue.drain(..) {
					if batch.len() < MAX_BATCH && seen.insert(p.session) {
						batch.push(p);
					} else {
						rest.push(p);
					}
				}
				*queue = rest;
				for p in &batch {
					if let Some(at) = returned.get(&p.session) {
						if p.queued.saturating_duration_since(*at) > self.window {
							slow.insert(p.session);
						} else {
							slow.remove(&p.session);
						}
					}
				}
				last = batch.iter().map(|p| p.session).collect();
				batch
			};
			// A panic in a batch must not stop the stage: its requests get an error (their reply
			// channels drop), their sessions are replayed, and the next batch runs.
			let run = std::panic::AssertUnwindSafe(|| self.run_batch(batch));
			if std::panic::catch_unwind(run).is_err() {
				tracing::error!("a batch panicked; its requests failed");
			}
			finished = Instant::now();
			returned.extend(last.iter().map(|s| (*s, finished)));
			// Forget the sessions that have ended, once a batch rather than on every wake-up.
			let sessions = self.sessions.lock().expect("sessions lock");
			slow.retain(|s| sessions.contains_key(s));
			returned.retain(|s, _| sessions.contains_key(s));
		}
	}

	fn run_batch(&self, batch: Vec<Pending>) {
		if !self.latency.is_zero() {
			std::thread::sleep(self.latency);
		}
		// Take each session's cache out (creating or refusing as needed).
		let mut work = Vec::new();
		for p in batch {
			match self.take_cache(p.session, p.position) {
				Ok(cache) => work.push((p, cache)),
				Err(e) => {
					self.stats.lock().expect("stats lock").errors += 1;
					let _ = p.reply.send(Err(e));
				}
			}
		}
		if work.is_empty() {
			return;
		}
		let started = Instant::now();
		let positions: u64 = work.iter().map(|(p, _)| p.input.rows() as u64).sum();
		let mut caches: Vec<KvCache<B>> = Vec::with_capacity(work.len());
		let mut requests = Vec::with_capacity(work.len());
		for (p, cache) in work {
			caches.push(cache);
			requests.push(p);
		}
		let chunks = caches
			.iter_mut()
			.zip(requests.iter_mut())
			.map(|(cache, p)| Chunk {
				cache,
				position: p.position,
				input: std::mem::replace(&mut p.input, Activations::Tokens(Vec::new())),
			})
			.collect();
		let results = self.model.forward_batch(chunks);
		{
			let mut stats = self.stats.lock().expect("stats lock");
			stats.batches += 1;
			stats.busy_micros += started.elapsed().as_micros() as u64;
			for r in &results {
				match r {
					Ok(_) => stats.chunks += 1,
					Err(_) => stats.errors += 1,
				}
			}
			stats.positions += positions;
		}
		// Caches go back (a session ended meanwhile is simply not restored).
		let mut sessions = self.sessions.lock().expect("sessions lock");
		for ((p, cache), result) in requests.into_iter().zip(caches).zip(results) {
			if let Some(slot) = sessions.get_mut(&p.session) {
				slot.0 = Some(cache);
			}
			let _ = p.reply.send(result);
		}
	}

	fn take_cache(&self, session: SessionId, position: usize) -> Result<KvCache<B>, StageError> {
		let mut sessions = self.sessions.lock().expect("sessions lock");
		if !sessions.contains_key(&session) {
			if position != 0 {
				return Err(StageError::Position { cached: 0, position });
			}
			if sessions.len() >= self.capacity {
				// Only a session idle for a while makes room; active ones are never cut off (a
				// full stage says so, and the coordinator routes elsewhere).
				let oldest = sessions
					.iter()
					.filter(|(_, (cache, used))| cache.is_some() && used.elapsed() >= IDLE_EVICTION)
					.min_by_key(|(_, (_, used))| *used)
					.map(|(id, _)| *id);
				let oldest = oldest.ok_or(StageError::Busy)?;
				sessions.remove(&oldest);
				self.stats.lock().expect("stats lock").evicted += 1;
			}
			sessions.insert(session, (Some(self.model.new_cache()), Instant::now()));
		}
		let slot = sessions.get_mut(&session).expect("inserted above");
		slot.1 = Instant::now();
		slot.0.take().ok_or(StageError::Position { cached: 0, position })
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::ml::{init_layers, model::ModelConfig, CpuBackend};

	/// A whole tiny model (one stage) on the CPU.
	fn tiny_model() -> StageModel<CpuBackend> {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 1);
		StageModel::new(&config, 0, &layers, &Default::default()).unwrap()
	}

	#[cfg(not(feature = "cuda"))]
	#[test]
	fn a_cpu_build_refuses_to_start_a_stage_on_a_gpu() {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 1);
		let started = start_on(ComputeDevice::Cuda(0), &config, 0, layers, 1, Duration::ZERO);
		assert!(matches!(started, Err(StageStartError::Gpu(GpuError::NotBuilt))));
	}

	#[test]
	fn dropping_a_stage_ends_its_model_thread_and_frees_the_model() {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 1);
		let stage = start_on(ComputeDevice::Cpu, &config, 0, layers, 1, Duration::ZERO).unwrap();
		let runner = Arc::downgrade(&stage.runner);
		assert!(stage.forward([1; 16], 0, Activations::Tokens(vec![1])).is_ok());
		drop(stage);
		let deadline = Instant::now() + Duration::from_secs(10);
		while runner.upgrade().is_some() {
			assert!(Instant::now() < deadline, "the model thread still holds the model");
			std::thread::sleep(Duration::from_millis(10));
		}
	}

	#[test]
	fn a_stage_started_on_the_cpu_serves() {
		let config = ModelConfig::tiny();
		let layers = init_layers(&config, 1);
		let stage = start_on(ComputeDevice::Cpu, &config, 0, layers, 1, Duration::ZERO)
			.expect("the CPU is always there");
		assert_eq!((stage.device(), stage.span()), ("cpu", (0, config.layer_count())));
		let out = stage.forward([7; 16], 0, Activations::Tokens(vec![1, 2, 3])).unwrap();
		assert!(matches!(out, Activations::Logits(l) if l.len() == config.vocab_size));
	}

	/// Sessions decoding side by side run in one batch a step, not in groups that alternate:
	/// the model thread waits for the last batch's open sessions (here with a window long
	/// enough that the threads' scheduling cannot split them).
	#[test]
	fn sessions_decoding_together_are_batched_together() {
		let model = tiny_model();
		let stage =
			LocalStage::start_with_window(model, 4, Duration::ZERO, Duration::from_secs(5), "cpu");
		let steps = 12;
		// The prompts first (however they batch), then every session decodes `steps` tokens.
		let (prompted, counted) = (std::sync::Barrier::new(5), std::sync::Barrier::new(5));
		let before = std::thread::scope(|scope| {
			for id in 1..=4u8 {
				let (stage, prompted, counted) = (&stage, &prompted, &counted);
				scope.spawn(move || {
					let session = [id; 16];
					stage.forward(session, 0, Activations::Tokens(vec![1, 2, 3])).unwrap();
					prompted.wait();
					counted.wait();
					for step in 0..steps {
						let out = stage.forward(session, 3 + step, Activations::Tokens(vec![4]));
						assert!(out.is_ok(), "{out:?}");
					}
					stage.end(&session);
				});
			}
			prompted.wait();
			let before = stage.stats();
			counted.wait();
			before
		});
		let stats = stage.stats();
		assert_eq!(stats.chunks - before.chunks, 4 * steps as u64);
		// The first decoding chunks may come a batch or two apart; from then on, one batch a step.
		assert!(stats.batches - before.batches <= steps as u64 + 2, "{before:?} {stats:?}");
	}

	/// A session late once (more than the window) is not waited for, and is waited for again
	/// as soon as it comes back in time: two sessions both late for their first decoding step,
	/// one of them always a few milliseconds slower than the other (less than the window, more
	/// than nothing: a batch takes 30 ms here), still end up in one batch a step instead of
	/// alternating.
	#[test]
	fn a_session_late_once_is_batched_with_the_others_again() {
		let model = tiny_model();
		let window = Duration::from_millis(200);
		let latency = Duration::from_millis(30);
		let stage = LocalStage::start_with_window(model, 2, latency, window, "cpu");
		let steps = 12;
		let prompted = std::sync::Barrier::new(3);
		let before = std::thread::scope(|scope| {
			for id in 1..=2u8 {
				let (stage, prompted) = (&stage, &prompted);
				scope.spawn(move || {
					let session = [id; 16];
					stage.forward(session, 0, Activations::Tokens(vec![1, 2, 3])).unwrap();
					prompted.wait();
					// Late: both are marked slow by their first decoding chunk.
					std::thread::sleep(window + Duration::from_millis(100));
					for step in 0..steps {
						if id == 2 {
							std::thread::sleep(Duration::from_millis(5));
						}
						let out = stage.forward(session, 3 + step, Activations::Tokens(vec![4]));
						assert!(out.is_ok(), "{out:?}");
					}
					stage.end(&session);
				});
			}
			prompted.wait();
			stage.stats()
		});
		let stats = stage.stats();
		assert_eq!(stats.chunks - before.chunks, 2 * steps as u64);
		assert!(stats.batches - before.batches <= steps as u64 + 2, "{before:?} {stats:?}");
	}

	#[test]
	fn a_full_stage_refuses_new_sessions_instead_of_cutting_off_active_ones() {
		let model = tiny_model();
		let stage = LocalStage::start(model, 1, Duration::ZERO, "cpu");
		let tokens = || Activations::Tokens(vec![1, 2, 3]);
		assert!(stage.has_room_for(&[1; 16]));
		assert!(stage.forward([1; 16], 0, tokens()).is_ok());
		// What the server asks before it takes a grant: no room for another, its own goes on.
		assert!(!stage.has_room_for(&[2; 16]));
		assert!(stage.has_room_for(&[1; 16]));
		assert_eq!(stage.forward([2; 16], 0, tokens()), Err(StageError::Busy));
		// The active session goes on; once it ends there is room.
		assert!(stage.forward([1; 16], 3, Activations::Tokens(vec![4])).is_ok());
		stage.end(&[1; 16]);
		assert!(stage.has_room_for(&[2; 16]));
		assert!(stage.forward([2; 16], 0, tokens()).is_ok());
		assert_eq!(stage.stats().chunks, 3);
	}
}
