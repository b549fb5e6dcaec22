//! Parameters of the protocol pallets, and how governance reaches them.
//!
//! The structs live here so that `pallet-governance` can change one field of another pallet's
//! parameters without importing that pallet; each pallet stores its own and implements
//! [`GovernedParams`] to accept a new value after its own consistency checks.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_runtime::{DispatchResult, Perbill};

/// A pallet whose parameters governance sets.
pub trait GovernedParams<Params> {
	/// The parameters in force.
	fn params() -> Params;
	/// Replaces them, after the pallet's own consistency checks (which fail with the pallet's
	/// error and change nothing).
	fn set_params(params: Params) -> DispatchResult;
}

/// Parameters of `pallet-jobs`.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct JobParams<Balance, BlockNumber> {
	/// Threshold for jobs that set none (1 % by default).
	pub min_improvement: Perbill,
	/// Least reward a job may escrow.
	pub min_reward: Balance,
	/// Least bond to register and to claim.
	pub min_worker_bond: Balance,
	/// Blocks between `unbond_worker` and `withdraw_worker`.
	pub unbonding_period: BlockNumber,
	/// Longest lease a job may ask for.
	pub max_lease: BlockNumber,
	/// Blocks the creator has to reveal the validation set, and then the worker its result.
	pub reveal_window: BlockNumber,
	/// Share of a worker's bond slashed for a lapsed lease or a withheld result.
	pub lease_slash: Perbill,
}

/// Parameters of `pallet-pol-rewards`.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct PolParams<Balance, BlockNumber> {
	/// Seats per committee (1..=MAX_COMMITTEE).
	pub committee_size: u32,
	/// Blocks between the reveal and the committee draw.
	pub draw_delay: BlockNumber,
	/// Blocks for members to commit.
	pub commit_window: BlockNumber,
	/// Blocks for members to reveal.
	pub reveal_window: BlockNumber,
	/// Share of the escrow paid to the quorum of an accepted job.
	pub verifier_fee: Perbill,
	/// Share of the escrow paid to the dataset owner of an accepted job.
	pub dataset_share: Perbill,
	/// Share of the miner's bond burned when its claim is refuted.
	pub miner_slash: Perbill,
	/// Share of a verifier's bond burned for a dissenting or missing reveal.
	pub verifier_penalty: Perbill,
	/// Least bond to register as a verifier.
	pub min_verifier_bond: Balance,
	/// Blocks between `unregister_verifier` and `withdraw_verifier`.
	pub unbonding_period: BlockNumber,
	/// Blocks per reward epoch.
	pub epoch_length: BlockNumber,
	/// Mining-pool budget shared by each epoch's accepted improvements.
	pub epoch_budget: Balance,
}

/// Parameters of `pallet-training-audit`.
#[derive(
	Clone,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
	serde::Serialize,
	serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct AuditParams<Balance, BlockNumber> {
	/// Most training steps between two checkpoints of a trace (`K`).
	pub checkpoint_interval: u32,
	/// Segments spot-checked per job (all of them if the trace has fewer).
	pub spot_checks: u32,
	/// Blocks between a result's reveal and its spot-check draw.
	pub draw_delay: BlockNumber,
	/// Blocks after the draw during which checkers attest and anyone may challenge.
	pub challenge_window: BlockNumber,
	/// Blocks for each bisection move and for arbiters to report.
	pub move_window: BlockNumber,
	/// Verifiers re-executing a disputed step.
	pub arbiters: u32,
	/// What a challenger holds: half paid to the miner and half burned if its challenge fails,
	/// returned if it wins or the arbiters reach no decision.
	pub challenge_bond: Balance,
	/// Share of the miner's bond slashed (and paid to the challenger) for a refuted trace.
	pub fraud_slash: Perbill,
}

/// Parameters of `pallet-inference`'s checks of served answers.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct InferenceParams<Balance, BlockNumber> {
	/// Share of requests whose hops a gateway re-executes on another server (spot checks).
	pub check_rate: Perbill,
	/// What a challenger of a served answer holds: half paid to the server and half burned
	/// (less the arbiters' fees) if the arbiters refute it, returned if they uphold it or reach
	/// no decision.
	pub challenge_bond: Balance,
	/// Verifiers drawn to re-execute a challenged session (1..=MAX_INFERENCE_ARBITERS).
	pub arbiters: u32,
	/// Blocks from a challenge to its deadline: the arbiters' draw and their reports.
	pub arbitration_window: BlockNumber,
	/// Share of a server's bond slashed for a proven wrong answer.
	pub fraud_slash: Perbill,
	/// Share of the slashed amount paid to the challenger; the rest is burned.
	pub challenger_share: Perbill,
	/// Paid to each arbiter whose report the decision agrees with, out of what the losing side
	/// forfeits (before the burn). `arbiters · arbiter_fee` may be at most half the challenge
	/// bond, so a refuted challenge always pays its arbiters in full.
	pub arbiter_fee: Balance,
}

/// Most arbiters of one inference challenge.
pub const MAX_INFERENCE_ARBITERS: u32 = 16;

/// Parameters of `pallet-free-tier`.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct FreeTierParams<BlockNumber> {
	/// Free requests a day for an account with no trust.
	pub min_daily_quota: u32,
	/// Free requests a day at full trust.
	pub max_daily_quota: u32,
	/// Leading zero bits the proof of work of an untrusted account must have.
	pub pow_difficulty: u32,
	/// How many blocks back the block a proof of work is bound to may be.
	pub pow_window: BlockNumber,
	/// Free requests a block may hold, whoever sends them.
	pub max_free_per_block: u32,
}
