//! `blyan-client`: a Blyan node through subxt, for the worker and for outside dApps. The API is
//! generated from the runtime's metadata (`client/metadata/blyan.scale`, refreshed by
//! `scripts/update-metadata`; a test fails when it is stale). [`Chain`] offers every call and the
//! queries the worker makes as typed methods (and [`Chain::api`] for the rest, such as a block's
//! events); a pallet's refusal comes back as [`ChainError::Failed`] holding the runtime's typed
//! error ([`RuntimeError`]), to match on. The commitments are `blyan_primitives::pol`'s, the
//! functions the pallets check against.

use std::time::Duration;

use codec::{Decode, Encode};
use subxt::{
	config::PolkadotConfig, transactions::TransactionStatus, tx::Payload, utils::AccountId32,
	OnlineClient,
};
use subxt_signer::sr25519::Keypair;

#[subxt::subxt(
	runtime_metadata_path = "metadata/blyan.scale",
	derive_for_all_types = "Clone, PartialEq, Eq",
	// Commitments hash the SCALE bytes of a result, as the pallet does.
	derive_for_type(path = "pallet_jobs::JobResult", derive = "::subxt::ext::codec::Encode", recursive),
	attributes_for_type(path = "pallet_jobs::JobResult", attributes = "#[codec(crate = ::subxt::ext::codec)]", recursive),
	// Receipts are signed over their SCALE bytes and travel to servers as SCALE.
	derive_for_type(path = "pallet_inference::SignedReceipt", derive = "::subxt::ext::codec::Encode, ::subxt::ext::codec::Decode", recursive),
	attributes_for_type(path = "pallet_inference::SignedReceipt", attributes = "#[codec(crate = ::subxt::ext::codec)]", recursive),
	// Stages sign their chunk commitments over the SCALE bytes.
	derive_for_type(path = "blyan_primitives::inference::ChunkCommitment", derive = "::subxt::ext::codec::Encode, ::subxt::ext::codec::Decode", recursive),
	attributes_for_type(path = "blyan_primitives::inference::ChunkCommitment", attributes = "#[codec(crate = ::subxt::ext::codec)]", recursive)
)]
pub mod blyan {}

pub use blyan::runtime_types::{
	blyan_primitives::{
		audit::{SegmentCheckpoints, TraceCommitment, TrainingState as ChainTrainingState},
		inference::{InferenceReceipt, LayerSpan},
		pol::{Backend, LayerDelta, SemVer, VersionStatus},
		training::{LoraParams as ChainLoraParams, TrainingParams as ChainTrainingParams},
	},
	bounded_collections::bounded_vec::BoundedVec,
	pallet_federated::{Admission, AggregationRule, FederatedJob, FederatedSpec, Member},
	pallet_inference::{Announcement, ChallengeOutcome, InferenceChallenge, SignedReceipt},
	pallet_jobs::{Capabilities, Job, JobResult, JobSpec, JobStatus, WorkerInfo},
	pallet_model_registry::{Architecture, DatasetInfo, ModelInfo, ResolvedLayer, VersionInfo},
	pallet_pol_rewards::{Phase, Round, VerifierInfo},
	pallet_training_audit::{Audit, AuditDuty, Dispute, DisputeStage},
};
pub use subxt::utils::H256;

pub use blyan::runtime_types::{
	pallet_inference::pallet::Error as InferenceError,
	pallet_model_registry::pallet::Error as RegistryError,
};
/// The runtime's errors: one variant per pallet, holding that pallet's `Error` enum. A call a
/// pallet refused comes back as [`ChainError::Failed`] with one of these, to match on.
pub use blyan::Error as RuntimeError;

pub type Balance = u128;
pub type BlockNumber = u32;
pub type JobId = u64;
pub type VersionId = u64;
pub type ChainJob = Job<AccountId32, Balance, BlockNumber>;
pub type ChainRound = Round<AccountId32, BlockNumber>;
pub type ChainAudit = Audit<AccountId32, BlockNumber>;
pub type ChainDispute = Dispute<AccountId32, Balance, BlockNumber>;
pub type Client = OnlineClient<PolkadotConfig>;
pub type ChainAnnouncement = Announcement<Balance, BlockNumber>;
pub type Receipt = InferenceReceipt<AccountId32, Balance>;
pub type ChainFederatedJob = FederatedJob<AccountId32, Balance>;
pub type ChainFederatedSpec = FederatedSpec<AccountId32, Balance>;
pub type ChainSignedReceipt = SignedReceipt<AccountId32, Balance, MultiSignature>;
pub type ChainInferenceChallenge = InferenceChallenge<AccountId32, Balance, BlockNumber>;
pub type ChainInferenceParams =
	blyan::runtime_types::blyan_primitives::params::InferenceParams<Balance, BlockNumber>;
pub use blyan::runtime_types::sp_runtime::MultiSignature;
/// The events of one submitted transaction.
pub type Events = subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>;

/// 1 BLY in plancks (12 decimals).
pub const BLY: Balance = 1_000_000_000_000;

/// Formats plancks as BLY with 4 decimals.
pub fn bly(amount: Balance) -> String {
	let whole = amount / BLY;
	let frac = (amount % BLY) / (BLY / 10_000);
	format!("{whole}.{frac:04} BLY")
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
	#[error("cannot reach the node at {url}: {reason} (is blyan-node running with --rpc-port?)")]
	Unreachable { url: String, reason: String },
	/// Refused before dispatch (the transaction pool: a bad nonce, no funds for the fee) or
	/// failed with an error that is not a pallet's (a bad origin, a token error).
	#[error("{call} was refused: {reason}")]
	Refused { call: String, reason: String },
	/// Included, and the pallet refused it: `error` says which pallet and why.
	#[error("{call} was refused: {name}")]
	Failed {
		call: String,
		/// `Pallet::Variant`, for people.
		name: String,
		error: Box<RuntimeError>,
	},
	#[error("node RPC: {0}")]
	Rpc(String),
	#[error("the node's runtime does not match this worker ({0}); update blyan-worker")]
	Incompatible(String),
}

impl ChainError {
	/// The chain said no (as opposed to not answering): resubmitting the same call as it is
	/// will not help.
	pub fn is_refusal(&self) -> bool {
		matches!(self, ChainError::Refused { .. } | ChainError::Failed { .. })
	}

	/// The pallet error a call failed with, if that is how it failed.
	pub fn pallet_error(&self) -> Option<&RuntimeError> {
		match self {
			ChainError::Failed { error, .. } => Some(error),
			_ => None,
		}
	}

	/// The error of an included transaction that failed: typed when a pallet refused it.
	fn from_failed_transaction(call: &str, e: subxt::error::TransactionEventsError) -> Self {
		use subxt::error::{DispatchError, TransactionEventsError};
		if let TransactionEventsError::ExtrinsicFailed(DispatchError::Module(module)) = &e {
			if let Ok(error) = module.as_root_error::<RuntimeError>() {
				return ChainError::Failed {
					call: call.to_string(),
					name: module.details_string(),
					error: Box::new(error),
				};
			}
		}
		ChainError::Refused { call: call.to_string(), reason: e.to_string() }
	}

	/// A connection problem (retry after reconnecting) rather than a refusal.
	pub fn is_connection(&self) -> bool {
		match self {
			ChainError::Unreachable { .. } => true,
			ChainError::Rpc(reason) => {
				let r = reason.to_lowercase();
				r.contains("restart")
					|| r.contains("connection")
					|| r.contains("closed")
					|| r.contains("background task")
					|| r.contains("transport")
			}
			_ => false,
		}
	}
}

fn rpc<E: std::fmt::Display>(e: E) -> ChainError {
	ChainError::Rpc(e.to_string())
}

/// `BoundedVec<u8>` from bytes.
pub fn bytes(b: impl AsRef<[u8]>) -> BoundedVec<u8> {
	BoundedVec(b.as_ref().to_vec())
}

// The commitments, over the generated types: the functions are `blyan_primitives::pol`'s, the
// ones the pallets check against (the generated types encode to the same SCALE bytes).

/// [`blyan_primitives::pol::validation_commitment`].
pub fn validation_commitment(cid: &[u8], salt: &[u8; 32]) -> H256 {
	H256(::blyan_primitives::pol::validation_commitment(cid, salt).0)
}

/// [`blyan_primitives::pol::result_commitment`].
pub fn result_commitment(
	job: JobId,
	worker: &AccountId32,
	result: &JobResult,
	salt: &[u8; 32],
) -> H256 {
	H256(::blyan_primitives::pol::result_commitment(job, &worker.0, result, salt).0)
}

/// [`blyan_primitives::pol::score_commitment`].
pub fn score_commitment(
	job: JobId,
	attempt: u8,
	verifier: &AccountId32,
	base: u64,
	candidate: u64,
	salt: &[u8; 32],
) -> H256 {
	H256(
		::blyan_primitives::pol::score_commitment(job, attempt, &verifier.0, base, candidate, salt)
			.0,
	)
}

/// [`blyan_primitives::pol::claim_commitment`].
pub fn claim_commitment(job: JobId, miner: &AccountId32, score: u64, salt: &[u8; 32]) -> H256 {
	H256(::blyan_primitives::pol::claim_commitment(job, &miner.0, score, salt).0)
}

/// A training state as the chain's generated type (the same fields and SCALE bytes).
pub fn chain_state(s: &::blyan_primitives::audit::TrainingState) -> ChainTrainingState {
	ChainTrainingState {
		step: s.step,
		weights: H256(s.weights.0),
		optimizer: H256(s.optimizer.0),
		rng_word_pos: s.rng_word_pos,
		batch: H256(s.batch.0),
	}
}

/// A job's hyper-parameters as `blyan_primitives` types them (the same fields and SCALE bytes
/// as the chain's generated type).
pub fn training_params(
	spec: &JobSpec<BlockNumber>,
) -> ::blyan_primitives::training::TrainingParams {
	use ::blyan_primitives::training::{Perbill, StepScheduleParams, TrainingParams};
	let t = &spec.training;
	let s = &t.schedule;
	TrainingParams {
		steps: t.steps,
		batch_size: t.batch_size,
		seq_len: t.seq_len,
		learning_rate: Perbill::from_parts(t.learning_rate.0),
		weight_decay: Perbill::from_parts(t.weight_decay.0),
		eval_batches: t.eval_batches,
		schedule: StepScheduleParams {
			warmup_steps: s.warmup_steps,
			cosine_min_ratio: s.cosine_min_ratio.as_ref().map(|r| Perbill::from_parts(r.0)),
			max_grad_norm_millis: s.max_grad_norm_millis,
			micro_batches: s.micro_batches,
		},
		lora: t.lora.as_ref().map(lora_params),
	}
}

/// Adapters as `blyan_primitives` types them.
pub fn lora_params(l: &ChainLoraParams) -> ::blyan_primitives::training::LoraParams {
	::blyan_primitives::training::LoraParams {
		rank: l.rank,
		alpha: l.alpha,
		targets: l.targets,
		rslora: l.rslora,
	}
}

/// Adapters as the chain's generated type.
pub fn chain_lora_params(l: &::blyan_primitives::training::LoraParams) -> ChainLoraParams {
	ChainLoraParams { rank: l.rank, alpha: l.alpha, targets: l.targets, rslora: l.rslora }
}

/// Typed hyper-parameters as the chain's generated type, for posting a job.
pub fn chain_training_params(
	p: &::blyan_primitives::training::TrainingParams,
) -> ChainTrainingParams {
	use blyan::runtime_types::{
		blyan_primitives::training::StepScheduleParams, sp_arithmetic::per_things::Perbill,
	};
	let s = &p.schedule;
	ChainTrainingParams {
		steps: p.steps,
		batch_size: p.batch_size,
		seq_len: p.seq_len,
		learning_rate: Perbill(p.learning_rate.deconstruct()),
		weight_decay: Perbill(p.weight_decay.deconstruct()),
		eval_batches: p.eval_batches,
		schedule: StepScheduleParams {
			warmup_steps: s.warmup_steps,
			cosine_min_ratio: s.cosine_min_ratio.map(|r| Perbill(r.deconstruct())),
			max_grad_norm_millis: s.max_grad_norm_millis,
			micro_batches: s.micro_batches,
		},
		lora: p.lora.as_ref().map(chain_lora_params),
	}
}

/// A connection to one node, signing as one account.
#[derive(Clone)]
pub struct Chain {
	url: String,
	/// Every node this worker may use (`--node a,b`), in the order given.
	endpoints: Vec<String>,
	api: Client,
	signer: Keypair,
	account: AccountId32,
}

impl Chain {
	/// Connects (bounded by `timeout`) and checks that the node runs a runtime this worker knows.
	pub async fn connect(
		url: &str,
		signer: Keypair,
		timeout: Duration,
	) -> Result<Self, ChainError> {
		let unreachable = |reason: String| ChainError::Unreachable { url: url.to_string(), reason };
		let api = tokio::time::timeout(timeout, Client::from_insecure_url(url))
			.await
			.map_err(|_| unreachable(format!("no answer in {} s", timeout.as_secs())))?
			.map_err(|e| unreachable(e.to_string()))?;
		let account = signer.public_key().to_account_id();
		let endpoints = vec![url.to_string()];
		let chain = Self { url: url.to_string(), endpoints, api, signer, account };
		// A query of each Blyan pallet: fails clearly if the node is some other chain.
		let at = chain.at().await?;
		at.storage()
			.try_fetch(blyan::storage().jobs().next_job_id(), ())
			.await
			.map_err(|e| ChainError::Incompatible(e.to_string()))?;
		Ok(chain)
	}

	pub fn url(&self) -> &str {
		&self.url
	}

	/// A new connection as the same account, retried with backoff for up to `give_up` (after the
	/// node restarted: a jsonrpsee client does not reconnect by itself): to the next of this
	/// worker's nodes first, the one just lost last (fail-over).
	pub async fn reconnect(&self, give_up: Duration) -> Result<Chain, ChainError> {
		let at = self.endpoints.iter().position(|e| *e == self.url).unwrap_or(0);
		let mut order = self.endpoints.clone();
		let turn = (at + 1) % order.len().max(1);
		order.rotate_left(turn);
		connect_with_retry(&order.join(","), &self.signer, give_up).await
	}

	pub fn account(&self) -> &AccountId32 {
		&self.account
	}

	/// First 8 bytes of the genesis hash, hex: names this chain in local state.
	pub fn chain_tag(&self) -> String {
		hex::encode(&self.api.genesis_hash().0[..8])
	}

	pub fn api(&self) -> &Client {
		&self.api
	}

	async fn at(
		&self,
	) -> Result<
		subxt::client::ClientAtBlock<
			PolkadotConfig,
			subxt::client::OnlineClientAtBlockImpl<PolkadotConfig>,
		>,
		ChainError,
	> {
		self.api.at_current_block().await.map_err(rpc)
	}

	/// The latest finalized block number.
	pub async fn finalized_number(&self) -> Result<BlockNumber, ChainError> {
		Ok(self.at().await?.block_number() as BlockNumber)
	}

	/// Waits for the next finalized block after `after` (polling; survives nothing, callers
	/// reconnect on connection errors). Returns its number.
	pub async fn next_finalized(
		&self,
		after: BlockNumber,
		poll: Duration,
	) -> Result<BlockNumber, ChainError> {
		loop {
			let now = self.finalized_number().await?;
			if now > after {
				return Ok(now);
			}
			tokio::time::sleep(poll).await;
		}
	}

	/// Signs and submits `call`, and waits until it is in a finalized block and succeeded. A pallet's
	/// refusal is returned as [`ChainError::Failed`] with its typed error; a refusal by the pool or
	/// another dispatch error as [`ChainError::Refused`].
	pub async fn submit<C: Payload>(&self, what: &str, call: &C) -> Result<Events, ChainError> {
		let refused = |reason: String| ChainError::Refused { call: what.to_string(), reason };
		let mut txs = self.at().await?.transactions();
		let mut progress =
			txs.sign_and_submit_then_watch_default(call, &self.signer).await.map_err(|e| {
				let text = e.to_string();
				if text.to_lowercase().contains("invalid transaction")
					|| text.contains("Inability to pay")
				{
					refused(text)
				} else {
					rpc(text)
				}
			})?;
		while let Some(status) = progress.next().await {
			match status.map_err(rpc)? {
				// Roles read finalized state: wait until our own change is part of it.
				TransactionStatus::InFinalizedBlock(in_block) => {
					return in_block
						.wait_for_success()
						.await
						.map_err(|e| ChainError::from_failed_transaction(what, e));
				}
				TransactionStatus::Error { message } => return Err(rpc(message)),
				TransactionStatus::Invalid { message } | TransactionStatus::Dropped { message } => {
					return Err(refused(message))
				}
				_ => continue,
			}
		}
		Err(rpc("the node stopped reporting on the transaction"))
	}

	// ---- calls: bonds ----

	/// Bonds `bond` as a worker declaring `capabilities` (pallet `jobs`).
	pub async fn register_worker(
		&self,
		capabilities: Capabilities,
		bond: Balance,
	) -> Result<Events, ChainError> {
		self.submit("register_worker", &blyan::tx().jobs().register_worker(capabilities, bond))
			.await
	}

	/// Starts the worker bond's unbonding period.
	pub async fn unbond_worker(&self) -> Result<Events, ChainError> {
		self.submit("unbond_worker", &blyan::tx().jobs().unbond_worker()).await
	}

	/// Withdraws a worker bond whose unbonding period has passed.
	pub async fn withdraw_worker(&self) -> Result<Events, ChainError> {
		self.submit("withdraw_worker", &blyan::tx().jobs().withdraw_worker()).await
	}

	/// Bonds `bond` as a verifier (pallet `pol-rewards`).
	pub async fn register_verifier(&self, bond: Balance) -> Result<Events, ChainError> {
		self.submit("register_verifier", &blyan::tx().pol_rewards().register_verifier(bond)).await
	}

	/// Starts the verifier bond's unbonding period.
	pub async fn unregister_verifier(&self) -> Result<Events, ChainError> {
		self.submit("unregister_verifier", &blyan::tx().pol_rewards().unregister_verifier()).await
	}

	/// Withdraws a verifier bond whose unbonding period has passed.
	pub async fn withdraw_verifier(&self) -> Result<Events, ChainError> {
		self.submit("withdraw_verifier", &blyan::tx().pol_rewards().withdraw_verifier()).await
	}

	// ---- calls: registry ----

	/// Registers a model and its root version; the `ModelRegistered` event names both.
	pub async fn register_model(
		&self,
		name: &str,
		architecture: Architecture,
		licence: &str,
		root_layers: Vec<LayerDelta>,
		weight_root: H256,
	) -> Result<Events, ChainError> {
		let call = blyan::tx().registry().register_model(
			bytes(name),
			architecture,
			bytes(licence),
			SemVer { major: 1, minor: 0, patch: 0 },
			BoundedVec(root_layers),
			weight_root,
		);
		self.submit("register_model", &call).await
	}

	/// Proposes an adapter version of a model this account owns: `adapters` (block `b` as
	/// layer `b + 1`) over `base`; the `VersionProposed` event names it.
	pub async fn propose_adapter_version(
		&self,
		model: u64,
		base: VersionId,
		semver: SemVer,
		adapters: Vec<LayerDelta>,
		weight_root: H256,
		lora: &::blyan_primitives::training::LoraParams,
	) -> Result<Events, ChainError> {
		use blyan::runtime_types::blyan_primitives::pol::CandidateVersion;
		let call = blyan::tx().registry().propose_version(CandidateVersion {
			model,
			parents: BoundedVec(vec![base]),
			semver,
			layers: BoundedVec(adapters),
			weight_root,
			adapter: Some(chain_lora_params(lora)),
		});
		self.submit("propose_version", &call).await
	}

	/// Registers a dataset pinned at `cid`; the `DatasetRegistered` event names it.
	pub async fn register_dataset(
		&self,
		cid: &str,
		content_hash: H256,
		size_bytes: u64,
		licence: &str,
	) -> Result<Events, ChainError> {
		let call = blyan::tx().registry().register_dataset(
			bytes(cid),
			content_hash,
			size_bytes,
			bytes(licence),
		);
		self.submit("register_dataset", &call).await
	}

	// ---- calls: jobs ----

	/// Posts a training job, escrowing `reward`; the `JobPosted` event names it.
	pub async fn post_job(
		&self,
		spec: JobSpec<BlockNumber>,
		reward: Balance,
	) -> Result<Events, ChainError> {
		self.submit("post_job", &blyan::tx().jobs().post_job(spec, reward)).await
	}

	/// What posting `spec` with `reward` would cost in fees, as the runtime's
	/// `TransactionPaymentApi_query_info` (`payment_queryInfo`) estimates it now, tip excluded.
	pub async fn post_job_fee(
		&self,
		spec: JobSpec<BlockNumber>,
		reward: Balance,
	) -> Result<Balance, ChainError> {
		use subxt::transactions::DefaultParams;
		let call = blyan::tx().jobs().post_job(spec, reward);
		let mut txs = self.at().await?.transactions();
		let tx = txs
			.create_signed(&call, &self.signer, DefaultParams::default_params())
			.await
			.map_err(rpc)?;
		tx.partial_fee_estimate().await.map_err(rpc)
	}

	/// Posts a training job and makes it federated, all or nothing: if another job takes the id
	/// `job` first, `create` fails (not its creator) and the post is undone with it.
	pub async fn post_federated_job(
		&self,
		job: JobId,
		spec: JobSpec<BlockNumber>,
		reward: Balance,
		federated: ChainFederatedSpec,
	) -> Result<Events, ChainError> {
		use blyan::runtime_types::{
			blyan_runtime::RuntimeCall, pallet_federated::pallet::Call as FederatedCall,
			pallet_jobs::pallet::Call as JobsCall,
		};
		let calls = vec![
			RuntimeCall::Jobs(JobsCall::post_job { spec, reward }),
			RuntimeCall::Federated(FederatedCall::create { job, spec: federated }),
		];
		self.submit("post_job + federated.create", &blyan::tx().utility().batch_all(calls)).await
	}

	/// Reveals a job's validation set (its CID and the salt of its commitment).
	pub async fn reveal_validation(
		&self,
		job: JobId,
		cid: &str,
		salt: [u8; 32],
	) -> Result<Events, ChainError> {
		self.submit(
			"reveal_validation",
			&blyan::tx().jobs().reveal_validation(job, bytes(cid), salt),
		)
		.await
	}

	pub async fn claim_job(&self, job: JobId) -> Result<Events, ChainError> {
		self.submit("claim_job", &blyan::tx().jobs().claim_job(job)).await
	}

	/// Commits to a result (see [`result_commitment`]) under the SemVer its version will take.
	pub async fn commit_result(
		&self,
		job: JobId,
		result_hash: H256,
		semver: SemVer,
	) -> Result<Events, ChainError> {
		self.submit("commit_result", &blyan::tx().jobs().commit_result(job, result_hash, semver))
			.await
	}

	/// Reveals the committed result, with a commitment to the claimed score.
	pub async fn reveal_result(
		&self,
		job: JobId,
		result: JobResult,
		claim: H256,
		salt: [u8; 32],
	) -> Result<Events, ChainError> {
		self.submit("reveal_result", &blyan::tx().jobs().reveal_result(job, result, claim, salt))
			.await
	}

	// ---- calls: Proof-of-Learning ----

	/// Reveals the miner's claimed score once the committee has committed.
	pub async fn reveal_claim(
		&self,
		job: JobId,
		claimed_score: u64,
		salt: [u8; 32],
	) -> Result<Events, ChainError> {
		self.submit(
			"reveal_claim",
			&blyan::tx().pol_rewards().reveal_claim(job, claimed_score, salt),
		)
		.await
	}

	/// A committee member's commitment to its scores (see [`score_commitment`]).
	pub async fn commit_scores(&self, job: JobId, commitment: H256) -> Result<Events, ChainError> {
		self.submit("commit_scores", &blyan::tx().pol_rewards().commit_scores(job, commitment))
			.await
	}

	pub async fn reveal_scores(
		&self,
		job: JobId,
		base_score: u64,
		candidate_score: u64,
		salt: [u8; 32],
	) -> Result<Events, ChainError> {
		let call = blyan::tx().pol_rewards().reveal_scores(job, base_score, candidate_score, salt);
		self.submit("reveal_scores", &call).await
	}

	/// Claims this account's mining-pool share of an ended epoch.
	pub async fn claim_epoch_reward(&self, epoch: u32) -> Result<Events, ChainError> {
		let call = blyan::tx().pol_rewards().claim_epoch_reward(epoch, self.account);
		self.submit("claim_epoch_reward", &call).await
	}

	// ---- calls: training audit ----

	/// A spot checker's word that `segment` re-ran bit for bit.
	pub async fn attest(&self, job: JobId, segment: u32) -> Result<Events, ChainError> {
		self.submit("attest", &blyan::tx().training_audit().attest(job, segment)).await
	}

	/// A spot checker's report that `segment`'s trace could not be fetched.
	pub async fn report_unavailable(&self, job: JobId, segment: u32) -> Result<Events, ChainError> {
		let call = blyan::tx().training_audit().report_unavailable(job, segment);
		self.submit("report_unavailable", &call).await
	}

	/// Challenges `segment`: its committed checkpoints (with their proofs) and the end state the
	/// challenger reached instead.
	pub async fn challenge(
		&self,
		job: JobId,
		segment: u32,
		checkpoints: SegmentCheckpoints,
		claimed_end: H256,
	) -> Result<Events, ChainError> {
		let call = blyan::tx().training_audit().challenge(job, segment, checkpoints, claimed_end);
		self.submit("challenge", &call).await
	}

	/// The miner's move in a bisection: its state at `step`, published at `state_cid`.
	pub async fn bisect(
		&self,
		job: JobId,
		challenge: u32,
		step: u32,
		mid_hash: H256,
		state_cid: &str,
	) -> Result<Events, ChainError> {
		let call =
			blyan::tx().training_audit().bisect(job, challenge, step, mid_hash, bytes(state_cid));
		self.submit("bisect", &call).await
	}

	/// The challenger's move in a bisection: whether it reached the miner's state at `step`.
	pub async fn respond(
		&self,
		job: JobId,
		challenge: u32,
		step: u32,
		agree: bool,
	) -> Result<Events, ChainError> {
		let call = blyan::tx().training_audit().respond(job, challenge, step, agree);
		self.submit("respond", &call).await
	}

	/// An arbiter's end state of the one disputed step (`None`: it cannot be re-run).
	pub async fn arbitrate(
		&self,
		job: JobId,
		challenge: u32,
		end: Option<H256>,
	) -> Result<Events, ChainError> {
		self.submit("arbitrate", &blyan::tx().training_audit().arbitrate(job, challenge, end)).await
	}

	// ---- runtime APIs ----

	/// A runtime API call at the latest finalized block.
	async fn call<P: subxt::runtime_apis::Payload>(
		&self,
		payload: P,
	) -> Result<P::ReturnType, ChainError> {
		self.at().await?.runtime_apis().call(payload).await.map_err(rpc)
	}

	pub async fn open_jobs(&self, max: u32) -> Result<Vec<JobId>, ChainError> {
		self.call(blyan::runtime_apis().jobs_api().open_jobs(max)).await
	}

	pub async fn job(&self, job: JobId) -> Result<Option<ChainJob>, ChainError> {
		self.call(blyan::runtime_apis().jobs_api().job(job)).await
	}

	pub async fn worker_jobs(&self, who: &AccountId32) -> Result<Vec<JobId>, ChainError> {
		self.call(blyan::runtime_apis().jobs_api().worker_jobs(*who)).await
	}

	pub async fn version(
		&self,
		version: VersionId,
	) -> Result<Option<VersionInfo<AccountId32, BlockNumber>>, ChainError> {
		self.call(blyan::runtime_apis().model_registry_api().version(version)).await
	}

	/// The adapters `version` is over its parent, if it is an adapter version.
	pub async fn version_adapter(
		&self,
		version: VersionId,
	) -> Result<Option<::blyan_primitives::training::LoraParams>, ChainError> {
		let adapter = self.get(blyan::storage().registry().version_adapters(), (version,)).await?;
		Ok(adapter.as_ref().map(lora_params))
	}

	/// The delta blocks `version` itself stored (for an adapter version: its adapters).
	pub async fn version_layers(&self, version: VersionId) -> Result<Vec<LayerDelta>, ChainError> {
		let layers =
			self.get_or_default(blyan::storage().registry().version_layers(), (version,)).await?;
		Ok(layers.0)
	}

	/// The full layer set of `version`, each layer from the version that last changed it; for
	/// an adapter version, its base's layers.
	pub async fn resolve_layers(
		&self,
		version: VersionId,
	) -> Result<Vec<ResolvedLayer>, ChainError> {
		self.call(blyan::runtime_apis().model_registry_api().resolve_layers(version))
			.await?
			.map_err(|e| ChainError::Refused {
				call: "resolve_layers".into(),
				reason: format!("{e:?}"),
			})
	}

	pub async fn pending_verifications(
		&self,
		who: &AccountId32,
	) -> Result<Vec<(JobId, Phase)>, ChainError> {
		self.call(blyan::runtime_apis().pol_rewards_api().pending_verifications(*who)).await
	}

	pub async fn round(&self, job: JobId) -> Result<Option<ChainRound>, ChainError> {
		self.call(blyan::runtime_apis().pol_rewards_api().round(job)).await
	}

	/// What this account has to do in training audits now.
	pub async fn audit_duties(&self, who: &AccountId32) -> Result<Vec<AuditDuty>, ChainError> {
		self.call(blyan::runtime_apis().training_audit_api().audit_duties(*who)).await
	}

	pub async fn audit(&self, job: JobId) -> Result<Option<ChainAudit>, ChainError> {
		self.call(blyan::runtime_apis().training_audit_api().audit(job)).await
	}

	/// The dispute of one challenge of a job's audit.
	pub async fn dispute(
		&self,
		job: JobId,
		challenge: u32,
	) -> Result<Option<ChainDispute>, ChainError> {
		self.call(blyan::runtime_apis().training_audit_api().dispute(job, challenge)).await
	}

	// ---- storage ----

	/// A storage entry at the latest finalized block; `None` if absent (no default applied).
	async fn get<A: subxt::storage::Address>(
		&self,
		addr: A,
		key: A::KeyParts,
	) -> Result<Option<A::Value>, ChainError> {
		let at = self.at().await?;
		match at.storage().try_fetch(addr, key).await.map_err(rpc)? {
			Some(v) => Ok(Some(v.decode().map_err(rpc)?)),
			None => Ok(None),
		}
	}

	/// A runtime constant, from the metadata at the latest finalized block.
	async fn constant<A: subxt::constants::Address>(
		&self,
		addr: A,
	) -> Result<A::Target, ChainError> {
		self.at().await?.constants().entry(addr).map_err(rpc)
	}

	/// A storage entry, its default when absent.
	async fn get_or_default<A: subxt::storage::Address>(
		&self,
		addr: A,
		key: A::KeyParts,
	) -> Result<A::Value, ChainError> {
		let at = self.at().await?;
		at.storage().fetch(addr, key).await.map_err(rpc)?.decode().map_err(rpc)
	}

	pub async fn model(&self, model: u64) -> Result<Option<ModelInfo<AccountId32>>, ChainError> {
		self.get(blyan::storage().registry().models(), (model,)).await
	}

	pub async fn dataset(
		&self,
		dataset: u64,
	) -> Result<Option<DatasetInfo<AccountId32>>, ChainError> {
		self.get(blyan::storage().registry().datasets(), (dataset,)).await
	}

	pub async fn worker_info(
		&self,
		who: &AccountId32,
	) -> Result<Option<WorkerInfo<Balance, BlockNumber>>, ChainError> {
		self.get(blyan::storage().jobs().workers(), (*who,)).await
	}

	pub async fn verifier_info(
		&self,
		who: &AccountId32,
	) -> Result<Option<VerifierInfo<Balance, BlockNumber>>, ChainError> {
		self.get(blyan::storage().pol_rewards().verifiers(), (*who,)).await
	}

	/// The version a job on `model` must start from to earn epoch points; `None` when
	/// governance has not admitted the model to epoch rewards.
	pub async fn rewarded_head(&self, model: u64) -> Result<Option<u64>, ChainError> {
		self.get(blyan::storage().pol_rewards().rewarded_models(), (model,)).await
	}

	/// Least reward for a job to earn epoch points (the runtime's `MinPointsEscrow`).
	pub async fn min_points_escrow(&self) -> Result<Balance, ChainError> {
		self.constant(blyan::constants().pol_rewards().min_points_escrow()).await
	}

	/// `(free, reserved_or_held)` of `who`.
	pub async fn balance(&self, who: &AccountId32) -> Result<(Balance, Balance), ChainError> {
		let info = self.get_or_default(blyan::storage().system().account(), (*who,)).await?;
		Ok((info.data.free, info.data.reserved))
	}

	/// The reward epoch of the latest finalized block (as `pallet_pol_rewards::current_epoch`).
	pub async fn current_epoch(&self) -> Result<u32, ChainError> {
		let now = self.finalized_number().await?;
		let (first_block, first_index) =
			self.get_or_default(blyan::storage().pol_rewards().epoch_base(), ()).await?;
		let params = self.get_or_default(blyan::storage().pol_rewards().params(), ()).await?;
		let since = now.saturating_sub(first_block) / params.epoch_length.max(1);
		Ok(first_index.saturating_add(since))
	}

	/// Blocks after a spot-check draw during which checkers act and anyone may challenge.
	pub async fn challenge_window(&self) -> Result<BlockNumber, ChainError> {
		let params = self.get_or_default(blyan::storage().training_audit().params(), ()).await?;
		Ok(params.challenge_window)
	}

	/// Steps between the checkpoints of a training trace (the audit's `checkpoint_interval`).
	/// The share of a job's reward its creator holds as a bond, in billionths (`Perbill`).
	pub async fn creator_bond_share(&self) -> Result<u128, ChainError> {
		Ok(u128::from(self.constant(blyan::constants().jobs().creator_bond_share()).await?.0))
	}

	pub async fn checkpoint_interval(&self) -> Result<u32, ChainError> {
		let params = self.get_or_default(blyan::storage().training_audit().params(), ()).await?;
		Ok(params.checkpoint_interval.max(1))
	}

	/// Ended epochs in which `miner` has unclaimed points.
	pub async fn claimable_epochs(&self, miner: &AccountId32) -> Result<Vec<u32>, ChainError> {
		let current = self.current_epoch().await?;
		let at = self.at().await?;
		let mut entries = at
			.storage()
			.iter(blyan::storage().pol_rewards().epoch_points(), ())
			.await
			.map_err(rpc)?;
		let mut epochs = Vec::new();
		while let Some(entry) = entries.next().await {
			let entry = entry.map_err(rpc)?;
			let (epoch, who): (u32, AccountId32) =
				entry.key().map_err(rpc)?.decode().map_err(rpc)?;
			if &who == miner && epoch < current {
				epochs.push(epoch);
			}
		}
		epochs.sort_unstable();
		Ok(epochs)
	}

	// ---- inference ----

	/// The genesis hash: receipts are signed for one chain.
	pub fn genesis_hash(&self) -> H256 {
		self.api.genesis_hash()
	}

	// ---- federated jobs ----

	/// A federated job's record, if `job` is federated.
	pub async fn federated_job(&self, job: JobId) -> Result<Option<ChainFederatedJob>, ChainError> {
		self.get(blyan::storage().federated().jobs(), (job,)).await
	}

	/// The IPFS CID of a recorded round's aggregate.
	pub async fn federated_round(
		&self,
		job: JobId,
		round: u32,
	) -> Result<Option<String>, ChainError> {
		Ok(self
			.get(blyan::storage().federated().rounds(), (job, round))
			.await?
			.map(|r| String::from_utf8_lossy(&r.aggregate.0).into_owned()))
	}

	/// ε (thousandths) this account's data has spent, and its budget.
	pub async fn privacy(&self, who: &AccountId32) -> Result<(u64, Option<u64>), ChainError> {
		let spent =
			self.get_or_default(blyan::storage().federated().privacy_spent(), (*who,)).await?;
		let budget = self.get(blyan::storage().federated().privacy_budget(), (*who,)).await?;
		Ok((spent, budget))
	}

	pub async fn federated_join(&self, job: JobId) -> Result<Events, ChainError> {
		self.submit("federated.join", &blyan::tx().federated().join(job)).await
	}

	/// Closes a federated job whose job has ended: bonds back (anyone may).
	pub async fn federated_close(&self, job: JobId) -> Result<Events, ChainError> {
		self.submit("federated.close", &blyan::tx().federated().close(job)).await
	}

	pub async fn set_privacy_budget(&self, budget_milli: u64) -> Result<Events, ChainError> {
		self.submit(
			"federated.set_privacy_budget",
			&blyan::tx().federated().set_privacy_budget(budget_milli),
		)
		.await
	}

	pub async fn federated_set_endpoint(
		&self,
		job: JobId,
		endpoint: &str,
	) -> Result<Events, ChainError> {
		self.submit(
			"federated.set_endpoint",
			&blyan::tx().federated().set_endpoint(job, bytes(endpoint)),
		)
		.await
	}

	pub async fn federated_record_round(
		&self,
		job: JobId,
		round: u32,
		aggregate_cid: &str,
		contributors: Vec<u16>,
	) -> Result<Events, ChainError> {
		let call = blyan::tx().federated().record_round(
			job,
			round,
			bytes(aggregate_cid),
			BoundedVec(contributors),
		);
		self.submit("federated.record_round", &call).await
	}

	/// The id the next posted job will get.
	pub async fn next_job_id(&self) -> Result<JobId, ChainError> {
		self.get_or_default(blyan::storage().jobs().next_job_id(), ()).await
	}

	/// Every server announcement with the block it was read at (callers drop expired ones).
	pub async fn announcements(
		&self,
	) -> Result<(BlockNumber, Vec<(AccountId32, ChainAnnouncement)>), ChainError> {
		let at = self.at().await?;
		let now = at.block_number() as BlockNumber;
		let mut entries =
			at.storage().iter(blyan::storage().inference().servers(), ()).await.map_err(rpc)?;
		let mut servers = Vec::new();
		while let Some(entry) = entries.next().await {
			let entry = entry.map_err(rpc)?;
			let (who,): (AccountId32,) = entry.key().map_err(rpc)?.decode().map_err(rpc)?;
			servers.push((who, entry.value().decode().map_err(rpc)?));
		}
		Ok((now, servers))
	}

	/// Announces (or renews) what this account serves. When the server list is full, it takes
	/// the place of an expired announcement, or of the lowest bond if `bond` is higher.
	#[allow(clippy::too_many_arguments)]
	pub async fn announce(
		&self,
		version: VersionId,
		layers: (u16, u16),
		endpoint: &str,
		price_per_token: Balance,
		capacity: u32,
		bond: Balance,
	) -> Result<Events, ChainError> {
		let call = blyan::tx().inference().announce(
			version,
			LayerSpan { start: layers.0, end: layers.1 },
			bytes(endpoint),
			price_per_token,
			capacity,
			bond,
		);
		let refused = match self.submit("inference.announce", &call).await {
			Err(e)
				if matches!(
					e.pallet_error(),
					Some(RuntimeError::Inference(InferenceError::TooManyServers))
				) =>
			{
				e
			}
			other => return other,
		};
		// The list is full: free an expired place, else outbid the lowest bond.
		let (now, servers) = self.announcements().await?;
		match place_in_full_list(now, &servers, bond) {
			Some(FullListPlace::Expired(server)) => {
				// Someone else reaping or the server renewing first is no reason to stop: the
				// announcement says whether a place is free.
				match self.submit("inference.reap", &blyan::tx().inference().reap(server)).await {
					Err(e)
						if !matches!(
							e.pallet_error(),
							Some(RuntimeError::Inference(
								InferenceError::NotAnnounced | InferenceError::NotExpired
							))
						) =>
					{
						return Err(e)
					}
					_ => {}
				}
				self.submit("inference.announce", &call).await
			}
			Some(FullListPlace::Outbid(displaced)) => {
				let take = blyan::tx().inference().take_slot(
					displaced,
					version,
					LayerSpan { start: layers.0, end: layers.1 },
					bytes(endpoint),
					price_per_token,
					capacity,
					bond,
				);
				self.submit("inference.take_slot", &take).await
			}
			None => Err(refused),
		}
	}

	/// Withdraws this account's announcement.
	pub async fn withdraw_announcement(&self) -> Result<Events, ChainError> {
		self.submit("inference.withdraw", &blyan::tx().inference().withdraw()).await
	}

	/// Settles receipts signed by clients for this account.
	pub async fn settle(&self, receipts: Vec<ChainSignedReceipt>) -> Result<Events, ChainError> {
		self.submit("inference.settle", &blyan::tx().inference().settle(BoundedVec(receipts))).await
	}

	/// Blocks an announcement lives (the runtime's constant).
	pub async fn announcement_ttl(&self) -> Result<BlockNumber, ChainError> {
		self.constant(blyan::constants().inference().announcement_ttl()).await
	}

	/// Signs `receipt` as its client (this account).
	pub fn sign_receipt(&self, receipt: Receipt) -> ChainSignedReceipt {
		let signature = self.signer.sign(&receipt_payload(&self.genesis_hash(), &receipt));
		SignedReceipt { receipt, signature: MultiSignature::Sr25519(signature.0) }
	}

	/// This account's key, for what it signs off chain (session grants, chunk commitments).
	pub fn keypair(&self) -> &Keypair {
		&self.signer
	}

	/// Challenges what `commitment.server` answered in a session: `signature` is the server's
	/// over `commitment`, `evidence_cid` the session's record on IPFS. Holds the challenge bond.
	pub async fn challenge_inference(
		&self,
		commitment: &ChunkCommitment,
		signature: &[u8; 64],
		evidence_cid: &str,
	) -> Result<Events, ChainError> {
		let call = blyan::tx().inference().challenge(
			commitment.clone(),
			MultiSignature::Sr25519(*signature),
			bytes(evidence_cid),
		);
		self.submit("inference.challenge", &call).await
	}

	/// An arbiter's report on inference challenge `challenge`: whether the server answered wrong.
	pub async fn arbitrate_inference(
		&self,
		challenge: u32,
		wrong: bool,
	) -> Result<Events, ChainError> {
		self.submit("inference.arbitrate", &blyan::tx().inference().arbitrate(challenge, wrong))
			.await
	}

	/// Closes inference challenge `challenge` once decided or past its deadline (anyone may).
	pub async fn close_inference_challenge(&self, challenge: u32) -> Result<Events, ChainError> {
		self.submit(
			"inference.close_challenge",
			&blyan::tx().inference().close_challenge(challenge),
		)
		.await
	}

	/// Open inference challenge `challenge`, at the latest finalized block.
	pub async fn inference_challenge(
		&self,
		challenge: u32,
	) -> Result<Option<ChainInferenceChallenge>, ChainError> {
		self.get(blyan::storage().inference().challenges(), (challenge,)).await
	}

	/// Every open inference challenge, at the latest finalized block.
	pub async fn inference_challenges(
		&self,
	) -> Result<Vec<(u32, ChainInferenceChallenge)>, ChainError> {
		let at = self.at().await?;
		let mut entries =
			at.storage().iter(blyan::storage().inference().challenges(), ()).await.map_err(rpc)?;
		let mut challenges = Vec::new();
		while let Some(entry) = entries.next().await {
			let entry = entry.map_err(rpc)?;
			let (id,): (u32,) = entry.key().map_err(rpc)?.decode().map_err(rpc)?;
			challenges.push((id, entry.value().decode().map_err(rpc)?));
		}
		Ok(challenges)
	}

	/// `who`'s server bond unbonding, `(amount, released from block)`, if any.
	pub async fn server_unbonding(
		&self,
		who: &AccountId32,
	) -> Result<Option<(Balance, BlockNumber)>, ChainError> {
		let entry = self.get(blyan::storage().inference().unbonding(), (*who,)).await?;
		Ok(entry.map(|u| (u.amount, u.release_at)))
	}

	/// How many open inference challenges name `server`.
	pub async fn open_challenges_of(&self, server: &AccountId32) -> Result<u32, ChainError> {
		Ok(self.get(blyan::storage().inference().open_challenges(), (*server,)).await?.unwrap_or(0))
	}

	/// Releases `server`'s unbonded server bond to it (anyone may, once its unbonding is over).
	pub async fn release_server_bond(&self, server: &AccountId32) -> Result<Events, ChainError> {
		self.submit("inference.release_bond", &blyan::tx().inference().release_bond(*server)).await
	}

	/// The inference checks' parameters in force (check rate, challenge bond, shares).
	pub async fn inference_params(&self) -> Result<ChainInferenceParams, ChainError> {
		self.get_or_default(blyan::storage().inference().params(), ()).await
	}

	/// The highest receipt nonce settled for `client` at `server`.
	pub async fn settled_nonce(
		&self,
		client: &AccountId32,
		server: &AccountId32,
	) -> Result<Option<u64>, ChainError> {
		self.get(blyan::storage().inference().settled_nonce(), (*client, *server)).await
	}
}

/// How a new server gets into a full server list.
#[derive(Debug, PartialEq, Eq)]
pub enum FullListPlace {
	/// Reap this expired announcement (anyone may), then announce.
	Expired(AccountId32),
	/// Take this server's place (`take_slot`): the lowest bond, below ours.
	Outbid(AccountId32),
}

/// Where a server bonding `bond` finds a place in the full list `servers` read at block `now`:
/// an expired announcement first, else the lowest bond if it is below `bond`, else none.
pub fn place_in_full_list(
	now: BlockNumber,
	servers: &[(AccountId32, ChainAnnouncement)],
	bond: Balance,
) -> Option<FullListPlace> {
	if let Some((who, _)) = servers.iter().find(|(_, a)| a.expires_at <= now) {
		return Some(FullListPlace::Expired(*who));
	}
	servers
		.iter()
		.filter(|(_, a)| a.bond < bond)
		.min_by_key(|(_, a)| a.bond)
		.map(|(who, _)| FullListPlace::Outbid(*who))
}

/// The bytes a client signs for a receipt (as `blyan_primitives::inference::receipt_payload`).
pub fn receipt_payload(genesis: &H256, receipt: &Receipt) -> Vec<u8> {
	(b"blyan/receipt", genesis, receipt).encode()
}

/// What a client signs to open one session at one pipeline stage: a stage computes only for
/// sessions so opened, by a client it can bill (checked by the worker's
/// `inference::sessions::SessionGate`). One grant opens one session once, until it expires.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SessionGrant {
	pub client: AccountId32,
	pub server: AccountId32,
	pub version: VersionId,
	pub session: [u8; 16],
	/// The client pays with free-tier receipts.
	pub free: bool,
	/// Milliseconds since the Unix epoch from which the grant opens nothing.
	pub expires_at_ms: u64,
}

/// A [`SessionGrant`] with its client's sr25519 signature over [`session_grant_payload`].
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedSessionGrant {
	pub grant: SessionGrant,
	pub signature: [u8; 64],
}

/// The bytes a client signs for `grant` on the chain whose genesis hash is `genesis` (so a grant
/// for one Blyan chain opens nothing at a server of another).
pub fn session_grant_payload(genesis: &H256, grant: &SessionGrant) -> Vec<u8> {
	(b"blyan/session", genesis, grant).encode()
}

/// Whether `signed` carries its client's signature for the chain of `genesis`.
pub fn verify_session_grant(genesis: &H256, signed: &SignedSessionGrant) -> bool {
	let payload = session_grant_payload(genesis, &signed.grant);
	let public = subxt_signer::sr25519::PublicKey(signed.grant.client.0);
	subxt_signer::sr25519::verify(
		&subxt_signer::sr25519::Signature(signed.signature),
		payload,
		&public,
	)
}

/// What a stage signs after each chunk it answers of a session (as
/// `blyan_primitives::inference::ChunkCommitment`, which `inference.challenge` takes): the running
/// hash of the session's chunks at the stage (`transcript`: each chunk's request and answer bytes
/// folded in), so the latest signature commits to every answer so far. `bit_exact`: the stage
/// computes on the CPU, whose answers are the same bits on every machine (a GPU's are not).
pub type ChunkCommitment =
	blyan::runtime_types::blyan_primitives::inference::ChunkCommitment<AccountId32>;

/// The bytes a stage signs for `commitment` on the chain whose genesis hash is `genesis`.
pub fn chunk_commitment_payload(genesis: &H256, commitment: &ChunkCommitment) -> Vec<u8> {
	(b"blyan/chunk", genesis, commitment).encode()
}

/// [`blyan_primitives::inference::commitment_leaf`] of a generated commitment (the same SCALE
/// bytes): its leaf in a receipt's `commitments` root.
pub fn commitment_leaf(commitment: &ChunkCommitment) -> H256 {
	let c = &::blyan_primitives::inference::ChunkCommitment {
		server: commitment.server.0,
		version: commitment.version,
		layers: commitment.layers,
		session: commitment.session,
		positions: commitment.positions,
		transcript: commitment.transcript,
		bit_exact: commitment.bit_exact,
	};
	H256(::blyan_primitives::inference::commitment_leaf(c).0)
}

/// [`blyan_primitives::inference::commitments_root`]: the root of a route's commitment leaves,
/// in route order.
pub fn commitments_root(leaves: &[H256]) -> H256 {
	H256(::blyan_primitives::inference::commitments_root(&primitive_hashes(leaves)).0)
}

/// The Merkle proof of leaf `index` among `leaves` ([`blyan_primitives::merkle::proof`]; panics
/// if `index` is not below `leaves.len()`).
pub fn commitment_proof(leaves: &[H256], index: u32) -> Vec<H256> {
	::blyan_primitives::merkle::proof(&primitive_hashes(leaves), index)
		.into_iter()
		.map(|h| H256(h.0))
		.collect()
}

/// Whether `leaf` is leaf `index` of the `leaves`-leaf tree under `root`
/// ([`blyan_primitives::merkle::verify_leaf`]).
pub fn commitment_in_root(
	root: &H256,
	leaves: u32,
	index: u32,
	leaf: H256,
	proof: &[H256],
) -> bool {
	let proof = primitive_hashes(proof);
	::blyan_primitives::merkle::verify_leaf(
		&::blyan_primitives::Hash::from(root.0),
		leaves,
		index,
		::blyan_primitives::Hash::from(leaf.0),
		&proof,
	)
}

fn primitive_hashes(hashes: &[H256]) -> Vec<::blyan_primitives::Hash> {
	hashes.iter().map(|h| ::blyan_primitives::Hash::from(h.0)).collect()
}

/// Whether `signature` is `commitment.server`'s over `commitment` for the chain of `genesis`.
pub fn verify_chunk_commitment(
	genesis: &H256,
	commitment: &ChunkCommitment,
	signature: &[u8; 64],
) -> bool {
	let payload = chunk_commitment_payload(genesis, commitment);
	let public = subxt_signer::sr25519::PublicKey(commitment.server.0);
	subxt_signer::sr25519::verify(&subxt_signer::sr25519::Signature(*signature), payload, &public)
}

/// Connects to `urls` (one node's RPC, or several separated by commas: each is tried in turn),
/// retrying with backoff until `give_up` (a node being restarted is not an error).
pub async fn connect_with_retry(
	urls: &str,
	signer: &Keypair,
	give_up: Duration,
) -> Result<Chain, ChainError> {
	let endpoints: Vec<String> =
		urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_string).collect();
	let start = std::time::Instant::now();
	let mut wait = Duration::from_millis(250);
	loop {
		let mut last = None;
		for url in &endpoints {
			match Chain::connect(url, signer.clone(), Duration::from_secs(10)).await {
				Ok(mut chain) => {
					chain.endpoints = endpoints.clone();
					return Ok(chain);
				}
				Err(e) if e.is_connection() => last = Some(e),
				Err(e) => return Err(e),
			}
		}
		let e = last.unwrap_or_else(|| ChainError::Unreachable {
			url: urls.to_string(),
			reason: "no node URL given".into(),
		});
		match e {
			e if endpoints.is_empty() => return Err(e),
			e if start.elapsed() < give_up => {
				if start.elapsed() > Duration::from_secs(5) {
					tracing::warn!("{e}; retrying in {:?}", wait);
				}
				tokio::time::sleep(wait).await;
				wait = (wait * 2).min(Duration::from_secs(5));
			}
			e => return Err(e),
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn server(tag: u8, bond: Balance, expires_at: BlockNumber) -> (AccountId32, ChainAnnouncement) {
		let announcement = Announcement {
			version: 1,
			layers: LayerSpan { start: 0, end: 4 },
			endpoint: bytes("http://127.0.0.1:1"),
			price_per_token: 1,
			capacity: 1,
			bond,
			expires_at,
		};
		(AccountId32([tag; 32]), announcement)
	}

	#[test]
	fn a_full_list_is_entered_through_an_expired_place_first_then_the_lowest_lower_bond() {
		let live = vec![server(1, 300, 50), server(2, 100, 50), server(3, 200, 50)];
		assert_eq!(
			place_in_full_list(10, &live, 150),
			Some(FullListPlace::Outbid(AccountId32([2; 32])))
		);
		// Not above the lowest bond: no place.
		assert_eq!(place_in_full_list(10, &live, 100), None);
		// An expired announcement is reaped rather than anyone outbid.
		let mut with_expired = live.clone();
		with_expired.push(server(4, 900, 10));
		assert_eq!(
			place_in_full_list(10, &with_expired, 150),
			Some(FullListPlace::Expired(AccountId32([4; 32])))
		);
	}
}
