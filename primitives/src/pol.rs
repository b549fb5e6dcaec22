//! The Proof-of-Learning protocol's shared vocabulary: identifiers, the record of a model version,
//! and the traits that join the three protocol pallets without one importing another.
//!
//! ```text
//!  model-registry ◄──ModelRegistry── jobs ──VerificationProvider──► pol-rewards
//!        ▲                             ▲                                │
//!        └────────VersionAcceptance────┼────────────────────────────────┤
//!                                      └──────────JobSettlement─────────┘
//! ```
//! `docs/protocol.md` describes the states and the money flows.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_core::{ConstU32, H256};
use sp_runtime::{BoundedVec, DispatchError, DispatchResult, Perbill};

/// A registered model (architecture + lineage of versions).
pub type ModelId = u64;
/// One version of a model: a node of its version DAG.
pub type VersionId = u64;
/// A registered dataset.
pub type DatasetId = u64;
/// A training job.
pub type JobId = u64;
/// Index of a layer within a model's weight set.
pub type LayerIndex = u16;

/// A validation loss as a fixed-point integer: `round(loss * SCORE_SCALE)`. Lower is better.
/// Integers make verifier reveals comparable bit for bit, whatever float formatting a client uses.
pub type Score = u64;

/// The score of a model that cannot be evaluated: weights that fail their checks or cannot be
/// fetched, a loss that is not a finite number, or (for the base version) a validation set or
/// hyper-parameters the model cannot be evaluated on.
pub const INVALID_SCORE: Score = Score::MAX;
/// Fixed-point scale of [`Score`]: nine decimal places.
pub const SCORE_SCALE: u64 = 1_000_000_000;

/// Longest IPFS CID accepted, in bytes of its string form (CIDv1 base32 of a sha2-256 is 59).
pub const MAX_CID_LEN: u32 = 128;
/// Most layers a model may have, and so most layers a version may change.
pub const MAX_LAYERS: u32 = 512;
/// A version has at most two parents (a merge).
pub const MAX_PARENTS: u32 = 2;

/// An IPFS content identifier in its string form (e.g. `bafy…`).
pub type Cid = BoundedVec<u8, ConstU32<MAX_CID_LEN>>;

/// Semantic version of a model version; ordered by (major, minor, patch).
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	PartialOrd,
	Ord,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
	Default,
)]
pub struct SemVer {
	pub major: u16,
	pub minor: u16,
	pub patch: u16,
}

impl SemVer {
	pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
		Self { major, minor, patch }
	}
}

/// One changed layer of a version ("delta block"): where its tensors are and what they hash to.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct LayerDelta {
	/// Which layer this replaces.
	pub layer: LayerIndex,
	/// IPFS CID of the layer's serialized tensors.
	pub cid: Cid,
	/// Merkle root over the layer's tensors (leaf = blake2-256 of one tensor's bytes).
	pub merkle_root: H256,
}

/// Layers changed by a version, strictly ascending by layer index.
pub type LayerDeltas = BoundedVec<LayerDelta, ConstU32<MAX_LAYERS>>;
/// Parents of a version: one, or two for a merge.
pub type Parents = BoundedVec<VersionId, ConstU32<MAX_PARENTS>>;

/// Where a version stands in Proof-of-Learning.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum VersionStatus {
	/// Proposed; not yet (or never to be) verified.
	Candidate,
	/// A verifier quorum confirmed the claimed improvement (or it is a model's root version).
	Accepted,
	/// Verification failed or was abandoned.
	Rejected,
}

/// A new version as proposed: by a model owner, or by a miner revealing a job result.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct CandidateVersion {
	pub model: ModelId,
	pub parents: Parents,
	pub semver: SemVer,
	pub layers: LayerDeltas,
	/// Merkle root over the whole weight set (leaves: the layers' roots in layer order).
	pub weight_root: H256,
	/// `Some`: `layers` are low-rank adapters, one per adapted decoder block, over the single
	/// parent's full weights (which must not be adapters themselves); `weight_root` is then over
	/// the adapters. `None`: `layers` replace whole layers.
	pub adapter: Option<crate::training::LoraParams>,
}

/// Compute backends a worker may offer and a job may require.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum Backend {
	/// burn's CPU (ndarray) backend: bit-exact across machines for a fixed seed.
	Cpu,
	/// burn's CUDA backend.
	Cuda,
	/// burn's wgpu backend.
	Wgpu,
}

/// What the registry tells other pallets about a version.
#[derive(Clone, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
pub struct VersionSummary {
	pub model: ModelId,
	pub semver: SemVer,
	pub status: VersionStatus,
	/// Merkle root over the version's whole weight set.
	pub weight_root: H256,
	/// The adapters it is, over its parent, if it is an adapter version.
	pub adapter: Option<crate::training::LoraParams>,
}

/// The model registry as the jobs pallet sees it.
pub trait ModelRegistry<AccountId> {
	/// A version's model, SemVer and status, if it exists.
	fn version(version: VersionId) -> Option<VersionSummary>;
	/// Owner (data contributor) of a dataset, if it exists.
	fn dataset_owner(dataset: DatasetId) -> Option<AccountId>;
	/// Whether `proposer` can hold the storage deposit of the largest version `model` can
	/// have (checked, not held): a miner that could not pay for its result's version learns
	/// it when it claims a job, not at the reveal, where it would lose its lease.
	fn ensure_can_propose(model: ModelId, proposer: &AccountId) -> DispatchResult;
	/// Reserves `semver` in `model` for a result `proposer` will reveal, so that nobody else
	/// can take it meanwhile. It must be above `base`'s SemVer, unused and unreserved, and
	/// `proposer` pass [`Self::ensure_can_propose`].
	fn reserve_semver(
		model: ModelId,
		semver: SemVer,
		base: VersionId,
		proposer: &AccountId,
	) -> DispatchResult;
	/// Frees a reservation whose result will never be revealed.
	fn release_semver(model: ModelId, semver: SemVer);
	/// Stores a candidate version (status `Candidate`) proposed by `proposer`; a reserved SemVer
	/// is accepted here (and the reservation consumed).
	fn propose_candidate(
		proposer: &AccountId,
		candidate: CandidateVersion,
	) -> Result<VersionId, DispatchError>;

	/// Benchmarks: an accepted version and a dataset owned by `owner`, ready to train on.
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_fixture(owner: &AccountId) -> (VersionId, DatasetId);
}

/// The only way a version's status leaves `Candidate`: used by the PoL pallet.
pub trait VersionAcceptance {
	fn accept(version: VersionId) -> DispatchResult;
	fn reject(version: VersionId) -> DispatchResult;
}

/// What a verifier committee must check for one job.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct VerificationRequest<AccountId> {
	pub creator: AccountId,
	pub miner: AccountId,
	pub dataset: DatasetId,
	pub base_version: VersionId,
	pub candidate_version: VersionId,
	/// The miner's commitment to its own score of the candidate on the revealed validation set
	/// ([`claim_commitment`]). The score itself is revealed only after the committee has
	/// committed, so a lazy verifier cannot copy it.
	pub claim: H256,
	/// Least relative loss reduction that counts as an improvement.
	pub min_improvement: Perbill,
	/// How the miner trained, for the training audit (`None` for jobs it does not cover).
	pub trace: Option<crate::audit::TraceCommitment>,
}

/// `blake2_256(SCALE(job, miner, score, salt))`: a miner's commitment to its claimed score.
/// The job and miner are bound in, so a commitment cannot be replayed for another result; the
/// secret salt keeps the score from being found by trying the plausible ones.
pub fn claim_commitment<AccountId: Encode>(
	job: JobId,
	miner: &AccountId,
	score: Score,
	salt: &[u8; 32],
) -> H256 {
	<sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(
		&(job, miner, score, salt).encode(),
	)
}

/// `blake2_256(SCALE(cid, salt))`: the commitment a creator posts for its validation set.
pub fn validation_commitment(cid: &[u8], salt: &[u8; 32]) -> H256 {
	<sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(&(cid, salt).encode())
}

/// `blake2_256(SCALE(job, worker, result, salt))`: the commitment a worker posts for its result
/// (`result` is the job's `JobResult`, SCALE-encoded as the pallet stores it). Binding the worker
/// and job means a commitment cannot be replayed by anyone else.
pub fn result_commitment<AccountId: Encode, JobResult: Encode>(
	job: JobId,
	worker: &AccountId,
	result: &JobResult,
	salt: &[u8; 32],
) -> H256 {
	<sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(
		&(job, worker, result, salt).encode(),
	)
}

/// `blake2_256(SCALE(job, attempt, verifier, base_score, candidate_score, salt))`: a verifier's
/// commitment. The verifier and attempt are bound in, so a copied commitment cannot be revealed.
pub fn score_commitment<AccountId: Encode>(
	job: JobId,
	attempt: u8,
	verifier: &AccountId,
	base_score: Score,
	candidate_score: Score,
	salt: &[u8; 32],
) -> H256 {
	<sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(
		&(job, attempt, verifier, base_score, candidate_score, salt).encode(),
	)
}

/// Benchmarks: the score and salt of the claim in [`JobSettlement::benchmark_verifying_job`].
#[cfg(feature = "runtime-benchmarks")]
pub const BENCHMARK_CLAIM: (Score, [u8; 32]) = (1, [0xc1; 32]);

/// Seats of a committee that must agree: the smallest count that is at least two thirds of `n`.
pub fn quorum(n: u32) -> u32 {
	n.saturating_mul(2).saturating_add(2) / 3
}

/// Hands a revealed job result to Proof-of-Learning verification.
pub trait VerificationProvider<AccountId> {
	/// Starts verifying `job`; the provider later calls back [`JobSettlement`].
	fn start_verification(job: JobId, request: VerificationRequest<AccountId>) -> DispatchResult;
}

/// How a verified job is paid out; implemented by the jobs pallet, which holds the escrow and
/// the miner's bond.
pub trait JobSettlement<AccountId, Balance> {
	/// The reward escrowed for a job under verification.
	fn escrow(job: JobId) -> Option<Balance>;
	/// Improvement confirmed: `payouts` are paid from the escrow (a payee that cannot receive
	/// is skipped), the rest goes to the miner.
	fn settle_accepted(job: JobId, payouts: &[(AccountId, Balance)]) -> DispatchResult;
	/// Claim refuted: `slash` of the miner's bond is taken; out of it `rewards` are paid (the
	/// verifiers who caught the false claim, in order, as far as the slash reaches), the rest is
	/// burned; the escrow returns to the creator. Returns the amount slashed.
	fn settle_rejected(
		job: JobId,
		slash: Perbill,
		rewards: &[(AccountId, Balance)],
	) -> Result<Balance, DispatchError>;
	/// What `settle_rejected` with `slash` would take from the miner's bond now (zero for a
	/// job not under verification).
	fn slashable(job: JobId, slash: Perbill) -> Balance;
	/// The quorum could not evaluate the base version on the creator's validation set and
	/// hyper-parameters ([`INVALID_SCORE`]), or scored it 0 (nothing left to improve): the
	/// creator's fault. `payouts` (the committee's fees)
	/// are paid from the escrow, the rest of it and the creator's whole bond go to the miner, and
	/// the miner keeps its own bond.
	fn settle_creator_fault(job: JobId, payouts: &[(AccountId, Balance)]) -> DispatchResult;
	/// No verdict could be reached: the escrow returns to the creator, nobody is slashed.
	fn settle_void(job: JobId) -> DispatchResult;

	/// Benchmarks: a job whose result is revealed and waiting for verification, the miner's
	/// claim being [`BENCHMARK_CLAIM`], its reward `reward` or the minimum if that is more (the
	/// creator is funded for it).
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_verifying_job(
		creator: &AccountId,
		miner: &AccountId,
		reward: Balance,
	) -> (JobId, VerificationRequest<AccountId>);
}

/// Told of each useful contribution a Proof-of-Learning verdict records, so other pallets (the
/// free tier's trust score) can count them without importing the protocol pallets.
pub trait ContributionObserver<AccountId> {
	/// `miner`'s claimed improvement was verified and its version accepted.
	fn accepted_improvement(miner: &AccountId);
	/// `verifier` revealed the scores the quorum agreed on.
	fn honest_verification(verifier: &AccountId);
}

impl<AccountId> ContributionObserver<AccountId> for () {
	fn accepted_improvement(_: &AccountId) {}
	fn honest_verification(_: &AccountId) {}
}
