//! # Training audit: spot checks, challenges and bisection over a miner's training trace
//!
//! Evaluating a result proves the model got better, not that the miner did the training it was
//! paid for on the data it was given: copied or spliced weights evaluate just as well. So a
//! revealed result carries a [`TraceCommitment`]: the Merkle root of the training states the miner
//! recorded every `interval` steps. Before the job goes on to Proof-of-Learning scoring
//! ([`Config::Next`]) it is audited:
//!
//! 1. **Spot checks.** `draw_delay` blocks after the reveal, randomness unknown when the miner
//!    committed picks `spot_checks` segments and a bonded verifier for each. The verifier re-runs
//!    its segment from the start checkpoint on the deterministic CPU path and either `attest`s
//!    that it ended on the committed checkpoint or challenges it.
//! 2. **Challenges.** Until `challenge_window` blocks after the draw, anyone may `challenge` a
//!    segment, holding `challenge_bond`: it shows the segment's two checkpoints (with Merkle proofs)
//!    and the end state it computed instead. A trace that does not start at the base version's
//!    weights or end at the result's is refuted on the spot (a LoRA trace starts at adapters
//!    drawn from the job's seed, which the runtime cannot compute: there only the start's
//!    moments, sampler and batch are fixed, and checkers and arbiters hold the adapters to it).
//! 3. **Bisection.** Otherwise the miner and the challenger narrow the disagreement: the miner
//!    names the state hash half way (`bisect`, publishing that state), the challenger agrees or
//!    not (`respond`), until one step separates a state both agree on from one they do not. Each
//!    has `move_window` blocks per move; a party that misses its move loses.
//! 4. **Arbitration.** `arbiters` verifiers, drawn, re-execute that one step and report the hash
//!    they get (`arbitrate`). Two thirds deciding for the challenger prove the fraud: the candidate
//!    is rejected and `fraud_slash` of the miner's bond goes to the challenger (the jobs pallet
//!    refunds the creator). Two thirds for the miner: half the challenger's bond goes to the
//!    miner, half is burned.
//!    Arbiters outside the decision, and silent ones, are penalised. Several challengers may
//!    dispute one segment, each in its own bisection: nobody can lock a segment against others.
//!
//! When its window closes with no dispute open, checkers that did nothing are penalised, and the
//! audit passes on to scoring if two thirds of its spot checks confirmed the trace and none
//! reported it missing. If two thirds reported it unavailable (`report_unavailable`), or one
//! segment was reported in each of two draws, the miner withheld it and is slashed. Otherwise
//! the open checks are redrawn once to other checkers; then a lone report voids the job, and
//! mere silence sends the result to scoring unaudited: nothing shows the miner at fault. Jobs
//! without a trace (federated jobs, and jobs on a backend whose training cannot be re-run bit for
//! bit on the CPU) are not audited: the jobs pallet decides which need one.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(any(feature = "try-runtime", feature = "test-fixtures", test))]
mod invariants;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;
pub use weights::WeightInfo;

use alloc::{boxed::Box, vec::Vec};
use blyan_primitives::audit::{
	verify_leaf, SegmentCheckpoints, TraceCommitment, TrainingState, VerifierDuty, VerifierSet,
};
use blyan_primitives::deadlines::drain_due;
use blyan_primitives::params::GovernedParams;
use blyan_primitives::pol::{
	Cid, JobId, JobSettlement, ModelRegistry, VerificationProvider, VerificationRequest,
	VersionAcceptance,
};
use codec::{Decode, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, InspectHold, Mutate, MutateHold},
		tokens::{Fortitude, Precision, Restriction},
		Randomness,
	},
};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::{
	traits::{BlakeTwo256, Hash as _, Saturating, Zero},
	DispatchResult, Perbill,
};

pub use blyan_primitives::params::AuditParams;

pub type BalanceOf<T> =
	<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

/// Most segments one audit spot-checks.
pub const MAX_SPOT_CHECKS: u32 = 128;
/// Most arbiters re-executing a disputed step.
pub const MAX_ARBITERS: u32 = 16;
/// Most distinct checkers of one audit: more spot checks are dealt out among them, so that
/// closing an audit penalises (and drawing it reads) a bounded number of verifiers.
pub const MAX_CHECKERS: u32 = 16;
/// Longest trace, in segments (a Merkle proof of 2²⁰ leaves is 20 hashes).
pub const MAX_SEGMENTS: u32 = 1 << 20;

/// Index of a segment of a trace: from checkpoint `i` to checkpoint `i + 1`.
pub type SegmentIndex = u32;
/// A challenge within an audit (several may dispute one segment: a challenger cannot lock a
/// segment against the others).
pub type ChallengeId = u32;

/// Where an audit is.
#[derive(Clone, Copy, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub enum AuditPhase {
	/// Waiting for the block whose randomness picks the spot checks (challenges already allowed).
	Drawing,
	/// Spot checks drawn; challenges open until the deadline.
	Checking,
	/// The window has closed; waiting for open disputes to end.
	Closing,
}

/// One spot-checked segment and its checker.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct SpotCheck<AccountId> {
	pub segment: SegmentIndex,
	pub checker: AccountId,
	/// The checker re-ran the segment and got the committed end state (or the segment's
	/// dispute found the trace right).
	pub attested: bool,
	/// The checker challenged the segment instead.
	pub challenged: bool,
	/// The checker could not fetch the trace (or a state blob it needs) from IPFS.
	pub unavailable: bool,
	/// The segment's checker in the first draw reported it unavailable (this check was redrawn
	/// for a second, independent opinion).
	pub reported_before: bool,
}

/// The audit of one revealed result.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct Audit<AccountId, BlockNumber> {
	/// Handed on to scoring when the audit passes.
	pub request: VerificationRequest<AccountId>,
	pub trace: TraceCommitment,
	/// Weight-set roots the trace must start and end at.
	pub base_weights: H256,
	pub result_weights: H256,
	pub phase: AuditPhase,
	/// End of the current phase.
	pub deadline: BlockNumber,
	pub spot_checks: BoundedVec<SpotCheck<AccountId>, ConstU32<MAX_SPOT_CHECKS>>,
	/// Disputes not yet decided.
	pub open_disputes: u32,
	/// The unconfirmed spot checks were dealt to new checkers once already.
	pub redrawn: bool,
	/// Id of the next challenge.
	pub next_challenge: ChallengeId,
}

/// Whose move a dispute waits for.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub enum DisputeStage<AccountId> {
	/// The miner must name the state hash at the middle step.
	Miner,
	/// The challenger must agree or disagree with the miner's middle state.
	Challenger { mid_hash: H256, mid_cid: Cid },
	/// One step apart: arbiters are drawn at the deadline (the next block).
	DrawingArbiters,
	/// Arbiters re-execute step `lo + 1` from the state at `lo`; decided at the deadline, or in
	/// the block after the last report.
	Arbitration { arbiters: BoundedVec<(AccountId, Option<Option<H256>>), ConstU32<MAX_ARBITERS>> },
	/// The challenge refuted the trace by itself (it leaves the base or misses the result):
	/// settled at the deadline (the next block).
	Refuted,
}

/// A challenge of one segment, narrowed by bisection.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct Dispute<AccountId, Balance, BlockNumber> {
	/// The challenged segment.
	pub segment: SegmentIndex,
	pub challenger: AccountId,
	pub bond: Balance,
	/// Last step whose state both sides agree on, and that state's hash.
	pub lo: u32,
	pub lo_hash: H256,
	/// Where the state at `lo` can be fetched: `None` for the segment's start checkpoint (in the
	/// trace document), else what the miner published with its move.
	pub lo_cid: Option<Cid>,
	/// A step where they disagree (the end of the disputed range), and the miner's hash of its
	/// state there.
	pub hi: u32,
	pub hi_hash: H256,
	pub stage: DisputeStage<AccountId>,
	pub deadline: BlockNumber,
}

/// What an account is expected to do next in an audit (the runtime API's answer).
#[derive(Clone, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
pub enum AuditDuty {
	/// Re-run `segment` and attest (or challenge).
	SpotCheck { job: JobId, segment: SegmentIndex },
	/// As the miner: name the state at step `(lo + hi) / 2` of `challenge`.
	Bisect { job: JobId, challenge: ChallengeId },
	/// As the challenger: agree or not with the miner's middle state.
	Respond { job: JobId, challenge: ChallengeId },
	/// As an arbiter: re-execute the disputed step.
	Arbitrate { job: JobId, challenge: ChallengeId },
}

/// A deadline in the index: an audit's phase, or a dispute's move.
#[derive(Clone, Copy, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub enum Timer {
	Audit(JobId),
	Dispute(JobId, ChallengeId),
}

pub use blyan_primitives::pol::quorum;

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	/// The storage layout's version (0: the layout at launch): bumped, with a migration, on
	/// every change of layout.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A challenger's bond, lost to the miner if the challenge fails.
		ChallengeBond,
	}

	#[pallet::config]
	pub trait Config: frame_system::Config {
		type Currency: Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		type RuntimeHoldReason: From<HoldReason>;
		/// Weight roots of versions, and rejection of a refuted candidate.
		type Registry: ModelRegistry<Self::AccountId> + VersionAcceptance;
		/// Slashes the miner (and refunds the creator) when fraud is proven.
		type Jobs: JobSettlement<Self::AccountId, BalanceOf<Self>>;
		/// Scores the result once the audit passes (Proof-of-Learning).
		type Next: VerificationProvider<Self::AccountId>;
		/// Draws spot-checkers and arbiters, and penalises them.
		type Verifiers: VerifierSet<Self::AccountId>;
		/// Picks spot checks; evaluated `draw_delay` blocks after the reveal.
		type Randomness: Randomness<Self::Hash, BlockNumberFor<Self>>;
		/// [`Params`] until governance changes them.
		type DefaultParams: Get<AuditParams<BalanceOf<Self>, BlockNumberFor<Self>>>;
		/// Share of a fraud slash paid to the challenger who proved it; the rest is burned, so a
		/// cheating miner whose own account challenges it first still loses the burned share.
		#[pallet::constant]
		type ChallengerShare: Get<Perbill>;
		/// Most disputes open on one audit at once.
		#[pallet::constant]
		type MaxDisputes: Get<u32>;
		/// Most deadlines processed in one block.
		#[pallet::constant]
		type MaxDeadlinesPerBlock: Get<u32>;
		type WeightInfo: WeightInfo;
	}

	#[pallet::storage]
	pub type Params<T: Config> =
		StorageValue<_, AuditParams<BalanceOf<T>, BlockNumberFor<T>>, ValueQuery, T::DefaultParams>;

	#[pallet::storage]
	pub type Audits<T: Config> =
		StorageMap<_, Blake2_128Concat, JobId, Audit<T::AccountId, BlockNumberFor<T>>, OptionQuery>;

	#[pallet::storage]
	pub type Disputes<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		JobId,
		Twox64Concat,
		ChallengeId,
		Dispute<T::AccountId, BalanceOf<T>, BlockNumberFor<T>>,
		OptionQuery,
	>;

	/// Audit phases and dispute moves that end at a block.
	#[pallet::storage]
	pub type Deadlines<T: Config> =
		StorageDoubleMap<_, Twox64Concat, BlockNumberFor<T>, Twox64Concat, Timer, (), OptionQuery>;

	/// The first block of [`Deadlines`] not yet fully processed (zero: the current one).
	#[pallet::storage]
	pub type DeadlineCursor<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Overrides [`Config::DefaultParams`]; a dev chain shortens the windows.
		pub params: Option<AuditParams<BalanceOf<T>, BlockNumberFor<T>>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			if let Some(params) = &self.params {
				assert!(Pallet::<T>::check_params(params).is_ok(), "genesis audit params");
				Params::<T>::put(params.clone());
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A traced result awaits its spot-check draw.
		AuditStarted {
			job: JobId,
			segments: u32,
			draw_at: BlockNumberFor<T>,
		},
		/// Spot checks drawn: `(segment, checker)`; challenges are open until `challenge_by`.
		SpotChecksDrawn {
			job: JobId,
			checks: Vec<(SegmentIndex, T::AccountId)>,
			challenge_by: BlockNumberFor<T>,
		},
		/// A checker could not fetch the trace or a state blob of its segment.
		TraceUnavailable {
			job: JobId,
			segment: SegmentIndex,
			checker: T::AccountId,
		},
		/// Two thirds of the spot checks found the trace unavailable: the miner withheld what
		/// it committed to publish. The candidate is rejected, `slashed` burned from its bond,
		/// the creator refunded.
		TraceWithheld {
			job: JobId,
			slashed: BalanceOf<T>,
		},
		/// A checker reported the trace unavailable and, after the redraw, nobody confirmed or
		/// refuted it while too few attested: the job ends without a verdict (creator
		/// refunded, nobody slashed).
		AuditVoid {
			job: JobId,
		},
		/// The checkers neither confirmed the trace nor found it missing, even after the redraw
		/// (they were silent, and paid for it): nothing shows the miner at fault, so the result
		/// goes on to scoring unaudited.
		AuditUnconfirmed {
			job: JobId,
			attested: u32,
		},
		/// A checker re-ran its segment and got the committed end state.
		SpotCheckPassed {
			job: JobId,
			segment: SegmentIndex,
			checker: T::AccountId,
		},
		/// A segment is challenged (challenge `challenge`).
		Challenged {
			job: JobId,
			segment: SegmentIndex,
			challenge: ChallengeId,
			challenger: T::AccountId,
		},
		/// The miner named the state at `step`.
		Bisected {
			job: JobId,
			challenge: ChallengeId,
			step: u32,
			state: H256,
		},
		/// The disagreement is now between steps `lo` and `hi`.
		Narrowed {
			job: JobId,
			challenge: ChallengeId,
			lo: u32,
			hi: u32,
		},
		/// Arbiters must re-execute step `step + 1` from the state at `step`.
		ArbitrationStarted {
			job: JobId,
			challenge: ChallengeId,
			step: u32,
			arbiters: Vec<T::AccountId>,
			decide_by: BlockNumberFor<T>,
		},
		Arbitrated {
			job: JobId,
			challenge: ChallengeId,
			arbiter: T::AccountId,
		},
		/// The miner's trace is refuted: its candidate is rejected and its bond slashed;
		/// `challenger` (the earliest challenge proven valid) was paid `ChallengerShare` of the
		/// slash and the rest burned.
		FraudProven {
			job: JobId,
			segment: SegmentIndex,
			challenger: T::AccountId,
			slashed: BalanceOf<T>,
		},
		/// The miner's trace held against this challenge: of the challenger's `bond`, `to_miner`
		/// went to the miner and the rest was burned.
		ChallengeFailed {
			job: JobId,
			challenge: ChallengeId,
			challenger: T::AccountId,
			bond: BalanceOf<T>,
			to_miner: BalanceOf<T>,
		},
		/// Arbiters reached no decision: the challenger's bond is returned.
		DisputeUndecided {
			job: JobId,
			challenge: ChallengeId,
		},
		/// No dispute stands and the window is over: the result goes on to scoring.
		AuditPassed {
			job: JobId,
			attested: u32,
		},
		/// Too few spot checks confirmed the trace when the window closed: the unconfirmed ones
		/// go to new checkers `(segment, checker)`, with a new window until `challenge_by`.
		SpotChecksRedrawn {
			job: JobId,
			checks: Vec<(SegmentIndex, T::AccountId)>,
			challenge_by: BlockNumberFor<T>,
		},
		ParamsSet {
			params: AuditParams<BalanceOf<T>, BlockNumberFor<T>>,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No audit for this job.
		UnknownAudit,
		/// The job is being audited already.
		AlreadyAuditing,
		/// The trace's interval is zero or above `checkpoint_interval`, it has no steps, or more
		/// than `MAX_SEGMENTS` segments.
		BadTrace,
		/// The base or candidate version is unknown to the registry.
		UnknownVersion,
		/// The audit is not in the phase this call needs.
		WrongPhase,
		/// The segment is not in the trace.
		UnknownSegment,
		/// The caller is not this segment's checker.
		NotChecker,
		/// The checker attested or reported already.
		AlreadyAttested,
		/// The miner cannot challenge its own trace.
		OwnTrace,
		/// A checkpoint's Merkle proof does not verify against the trace root.
		BadProof,
		/// The move answers another step than the dispute's current middle (a stale move).
		StaleMove,
		/// The challenger's end state is the committed one: there is nothing to dispute.
		NoDisagreement,
		/// This segment is disputed already.
		AlreadyDisputed,
		/// `MaxDisputes` disputes are open on this audit.
		TooManyDisputes,
		/// The account cannot afford the challenge bond.
		InsufficientBalance,
		/// No dispute on this segment.
		UnknownDispute,
		/// It is not the caller's move.
		NotYourMove,
		/// The caller is not an arbiter of this dispute, or has reported already.
		NotArbiter,
		/// The move's deadline has passed.
		TooLate,
		/// Parameters out of range.
		BadParams,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}

		fn integrity_test() {
			assert!(T::MaxDeadlinesPerBlock::get() > 0 && T::MaxDisputes::get() > 0);
			assert!(Pallet::<T>::check_params(&T::DefaultParams::get()).is_ok(), "audit params");
		}

		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			let (handled, scanned) = Self::process_deadlines(now);
			// A deadline is a draw (of spot checks or arbiters), a window closing (which may
			// redraw unconfirmed checks), or a dispute decided: charged as the dearest, with a
			// draw added for the redraw.
			T::WeightInfo::on_initialize_close(handled)
				.saturating_add(T::WeightInfo::on_initialize_draw(handled))
				.max(T::WeightInfo::on_initialize_decide(handled))
				.saturating_add(T::DbWeight::get().reads(scanned.into()))
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// A spot-checker re-ran its segment from the start checkpoint and got the committed end
		/// checkpoint.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::attest())]
		pub fn attest(origin: OriginFor<T>, job: JobId, segment: SegmentIndex) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::mark_own_check(job, segment, &who, |check| {
				ensure!(!check.attested && !check.unavailable, Error::<T>::AlreadyAttested);
				check.attested = true;
				Ok(())
			})?;
			Self::deposit_event(Event::SpotCheckPassed { job, segment, checker: who });
			Ok(())
		}

		/// A spot-checker could not fetch the trace document or a state blob its segment needs:
		/// a quorum of such reports proves the miner withheld its trace.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::report_unavailable())]
		pub fn report_unavailable(
			origin: OriginFor<T>,
			job: JobId,
			segment: SegmentIndex,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::mark_own_check(job, segment, &who, |check| {
				// A checker that challenged had the trace in hand.
				ensure!(
					!check.attested && !check.unavailable && !check.challenged,
					Error::<T>::AlreadyAttested
				);
				check.unavailable = true;
				Ok(())
			})?;
			Self::deposit_event(Event::TraceUnavailable { job, segment, checker: who });
			Ok(())
		}

		/// Challenges `segment` of a job's trace, holding `challenge_bond`: `checkpoints` are its
		/// start and end checkpoints as committed (with their Merkle proofs), `claimed_end` the
		/// hash of the state the challenger got by re-running the segment from the start.
		#[pallet::call_index(1)]
		// Beyond the benchmark (weights.rs predates adapter versions): the result's version and
		// adapter entry, read to tell a LoRA trace.
		#[pallet::weight(T::WeightInfo::challenge().saturating_add(T::DbWeight::get().reads(2)))]
		pub fn challenge(
			origin: OriginFor<T>,
			job: JobId,
			segment: SegmentIndex,
			checkpoints: Box<SegmentCheckpoints>,
			claimed_end: H256,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let SegmentCheckpoints { start, start_proof, end, end_proof } = *checkpoints;
			let mut audit = Audits::<T>::get(job).ok_or(Error::<T>::UnknownAudit)?;
			ensure!(audit.phase != AuditPhase::Closing, Error::<T>::WrongPhase);
			Self::ensure_before(audit.deadline)?;
			ensure!(who != audit.request.miner, Error::<T>::OwnTrace);
			let trace = &audit.trace;
			ensure!(segment < trace.segments(), Error::<T>::UnknownSegment);
			let leaves = trace.leaves();
			ensure!(
				verify_leaf(&trace.root, leaves, segment, start.hash(), &start_proof)
					&& verify_leaf(&trace.root, leaves, segment + 1, end.hash(), &end_proof),
				Error::<T>::BadProof
			);
			ensure!(claimed_end != end.hash(), Error::<T>::NoDisagreement);
			// Open disputes are bounded: `MaxDisputes` from anyone, plus one per spot check from
			// its checker, who can always challenge its own segment (nobody can lock it out).
			let checker =
				audit.spot_checks.iter().any(|c| c.segment == segment && c.checker == who);
			ensure!(
				!Disputes::<T>::iter_prefix_values(job)
					.any(|d| d.segment == segment && d.challenger == who),
				Error::<T>::AlreadyDisputed
			);
			ensure!(
				checker || audit.open_disputes < T::MaxDisputes::get(),
				Error::<T>::TooManyDisputes
			);
			let bond = Params::<T>::get().challenge_bond;
			ensure!(
				T::Currency::can_hold(&HoldReason::ChallengeBond.into(), &who, bond),
				Error::<T>::InsufficientBalance
			);

			T::Currency::hold(&HoldReason::ChallengeBond.into(), &who, bond)?;
			for check in audit.spot_checks.iter_mut() {
				if check.segment == segment && check.checker == who {
					check.challenged = true;
				}
			}
			let challenge = audit.next_challenge;
			Self::deposit_event(Event::Challenged {
				job,
				segment,
				challenge,
				challenger: who.clone(),
			});
			// A trace that does not start at the base or end at the result refutes itself; the
			// settlement (slash, refunds) runs in the next block's `on_initialize`, keeping this
			// call light.
			// A LoRA trace starts at adapters drawn from the job's seed (`peft`'s initialisation),
			// which the runtime cannot compute: there only the rest of the state is fixed here,
			// and the drawn checkers and arbiters hold its adapters to that draw (a start
			// elsewhere loses the bisection at step 0).
			let adapters = T::Registry::version(audit.request.candidate_version)
				.is_some_and(|v| v.adapter.is_some());
			let initial = TrainingState::initial(audit.base_weights);
			let initial = if adapters {
				TrainingState { weights: start.weights, ..initial }
			} else {
				initial
			};
			let bad_start = segment == 0 && start != initial;
			let bad_end = segment + 1 == trace.segments() && end.weights != audit.result_weights;
			// A checkpoint the trace puts at the wrong step is no honest checkpoint either.
			let bad_step = start.step != audit.trace.checkpoint_step(segment)
				|| end.step != audit.trace.checkpoint_step(segment + 1);
			let now = frame_system::Pallet::<T>::block_number();
			let mut dispute = Dispute {
				segment,
				challenger: who,
				bond,
				lo: start.step,
				lo_hash: start.hash(),
				lo_cid: None,
				hi: end.step,
				hi_hash: end.hash(),
				stage: DisputeStage::Miner,
				deadline: now,
			};
			audit.open_disputes = audit.open_disputes.saturating_add(1);
			audit.next_challenge = challenge.checked_add(1).ok_or(Error::<T>::TooManyDisputes)?;
			Audits::<T>::insert(job, audit);
			if bad_start || bad_end || bad_step {
				dispute.stage = DisputeStage::Refuted;
				dispute.deadline = Self::schedule(Timer::Dispute(job, challenge), now, 1u32.into());
			} else {
				Self::next_move(job, challenge, &mut dispute, now);
			}
			Disputes::<T>::insert(job, challenge, dispute);
			Ok(())
		}

		/// The miner names the hash of its state at the middle step of a dispute (`step`, which
		/// must be `(lo + hi) / 2`), publishing that state (`state_cid`) for the arbiters in case
		/// the dispute ends there.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::bisect())]
		pub fn bisect(
			origin: OriginFor<T>,
			job: JobId,
			challenge: ChallengeId,
			step: u32,
			mid_hash: H256,
			state_cid: Cid,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let audit = Audits::<T>::get(job).ok_or(Error::<T>::UnknownAudit)?;
			let mut dispute =
				Disputes::<T>::get(job, challenge).ok_or(Error::<T>::UnknownDispute)?;
			ensure!(who == audit.request.miner, Error::<T>::NotYourMove);
			ensure!(dispute.stage == DisputeStage::Miner, Error::<T>::NotYourMove);
			Self::ensure_before(dispute.deadline)?;
			ensure!(step == dispute.lo.saturating_add(dispute.hi) / 2, Error::<T>::StaleMove);
			let now = frame_system::Pallet::<T>::block_number();
			let deadline = Self::reschedule(Timer::Dispute(job, challenge), dispute.deadline, now);
			dispute.stage = DisputeStage::Challenger { mid_hash, mid_cid: state_cid };
			dispute.deadline = deadline;
			Disputes::<T>::insert(job, challenge, dispute);
			Self::deposit_event(Event::Bisected { job, challenge, step, state: mid_hash });
			Ok(())
		}

		/// The challenger agrees or disagrees with the miner's state at the middle step (`step`,
		/// which must be `(lo + hi) / 2`); the dispute goes on in the half where they still
		/// disagree.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::respond())]
		pub fn respond(
			origin: OriginFor<T>,
			job: JobId,
			challenge: ChallengeId,
			step: u32,
			agree: bool,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			ensure!(Audits::<T>::contains_key(job), Error::<T>::UnknownAudit);
			let mut dispute =
				Disputes::<T>::get(job, challenge).ok_or(Error::<T>::UnknownDispute)?;
			ensure!(who == dispute.challenger, Error::<T>::NotYourMove);
			let DisputeStage::Challenger { mid_hash, mid_cid } = dispute.stage.clone() else {
				return Err(Error::<T>::NotYourMove.into());
			};
			Self::ensure_before(dispute.deadline)?;
			let mid = dispute.lo.saturating_add(dispute.hi) / 2;
			ensure!(step == mid, Error::<T>::StaleMove);
			if agree {
				dispute.lo = mid;
				dispute.lo_hash = mid_hash;
				dispute.lo_cid = Some(mid_cid);
			} else {
				dispute.hi = mid;
				dispute.hi_hash = mid_hash;
			}
			Self::deposit_event(Event::Narrowed { job, challenge, lo: dispute.lo, hi: dispute.hi });
			let now = frame_system::Pallet::<T>::block_number();
			Self::unschedule(Timer::Dispute(job, challenge), dispute.deadline);
			Self::next_move(job, challenge, &mut dispute, now);
			Disputes::<T>::insert(job, challenge, dispute);
			Ok(())
		}

		/// An arbiter reports the hash of the state it got by executing the disputed step from
		/// the agreed state; `None` if that state could not be fetched or does not hash to the
		/// agreed one (the miner published it, so the miner answers for it).
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::arbitrate())]
		pub fn arbitrate(
			origin: OriginFor<T>,
			job: JobId,
			challenge: ChallengeId,
			end: Option<H256>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut dispute =
				Disputes::<T>::get(job, challenge).ok_or(Error::<T>::UnknownDispute)?;
			Self::ensure_before(dispute.deadline)?;
			let DisputeStage::Arbitration { arbiters } = &mut dispute.stage else {
				return Err(Error::<T>::WrongPhase.into());
			};
			let seat = arbiters
				.iter_mut()
				.find(|(a, report)| *a == who && report.is_none())
				.ok_or(Error::<T>::NotArbiter)?;
			seat.1 = Some(end);
			let everyone = arbiters.iter().all(|(_, report)| report.is_some());
			Self::deposit_event(Event::Arbitrated { job, challenge, arbiter: who });
			if everyone {
				// Nobody left to wait for: decided in the next block's `on_initialize`.
				let now = frame_system::Pallet::<T>::block_number();
				Self::unschedule(Timer::Dispute(job, challenge), dispute.deadline);
				dispute.deadline = Self::schedule(Timer::Dispute(job, challenge), now, 1u32.into());
			}
			Disputes::<T>::insert(job, challenge, dispute);
			Ok(())
		}
	}
}

impl<T: Config> Pallet<T> {
	/// Applies `mark` to `who`'s spot check of `segment` while the audit's checks are open.
	fn mark_own_check(
		job: JobId,
		segment: SegmentIndex,
		who: &T::AccountId,
		mark: impl FnOnce(&mut SpotCheck<T::AccountId>) -> DispatchResult,
	) -> DispatchResult {
		let mut audit = Audits::<T>::get(job).ok_or(Error::<T>::UnknownAudit)?;
		ensure!(audit.phase == AuditPhase::Checking, Error::<T>::WrongPhase);
		Self::ensure_before(audit.deadline)?;
		let check = audit
			.spot_checks
			.iter_mut()
			.find(|c| c.segment == segment && c.checker == *who)
			.ok_or(Error::<T>::NotChecker)?;
		mark(check)?;
		Audits::<T>::insert(job, audit);
		Ok(())
	}

	fn ensure_before(deadline: BlockNumberFor<T>) -> DispatchResult {
		ensure!(frame_system::Pallet::<T>::block_number() < deadline, Error::<T>::TooLate);
		Ok(())
	}

	/// Enters `timer` in the index `blocks` after `now` (never at or before the current block).
	fn schedule(
		timer: Timer,
		now: BlockNumberFor<T>,
		blocks: BlockNumberFor<T>,
	) -> BlockNumberFor<T> {
		let at = now.saturating_add(blocks.max(1u32.into()));
		Deadlines::<T>::insert(at, timer, ());
		at
	}

	fn unschedule(timer: Timer, at: BlockNumberFor<T>) {
		Deadlines::<T>::remove(at, timer);
	}

	/// Moves a dispute's move deadline to `move_window` after `now`.
	fn reschedule(
		timer: Timer,
		from: BlockNumberFor<T>,
		now: BlockNumberFor<T>,
	) -> BlockNumberFor<T> {
		Self::unschedule(timer, from);
		Self::schedule(timer, now, Params::<T>::get().move_window)
	}

	/// After a dispute narrowed (or opened): the miner's move, or, once one step is left, the
	/// arbiters' draw in the next block. Schedules the new deadline and sets it on `dispute`.
	fn next_move(
		job: JobId,
		challenge: ChallengeId,
		dispute: &mut Dispute<T::AccountId, BalanceOf<T>, BlockNumberFor<T>>,
		now: BlockNumberFor<T>,
	) {
		let timer = Timer::Dispute(job, challenge);
		if dispute.hi.saturating_sub(dispute.lo) > 1 {
			dispute.stage = DisputeStage::Miner;
			dispute.deadline = Self::schedule(timer, now, Params::<T>::get().move_window);
		} else {
			dispute.stage = DisputeStage::DrawingArbiters;
			dispute.deadline = Self::schedule(timer, now, 1u32.into());
		}
	}

	/// Draws the arbiters of a dispute left with one step.
	fn draw_arbiters(
		job: JobId,
		challenge: ChallengeId,
		mut dispute: Dispute<T::AccountId, BalanceOf<T>, BlockNumberFor<T>>,
		now: BlockNumberFor<T>,
	) {
		let Some(audit) = Audits::<T>::get(job) else { return };
		let params = Params::<T>::get();
		let seed = Self::seed(b"bly/arbiters", job, challenge, dispute.lo);
		let exclude = [
			audit.request.miner.clone(),
			dispute.challenger.clone(),
			audit.request.creator.clone(),
		];
		let drawn = T::Verifiers::draw(seed.as_ref(), params.arbiters.min(MAX_ARBITERS), &exclude);
		dispute.deadline = Self::schedule(Timer::Dispute(job, challenge), now, params.move_window);
		dispute.stage = DisputeStage::Arbitration {
			arbiters: BoundedVec::truncate_from(drawn.iter().cloned().map(|a| (a, None)).collect()),
		};
		Self::deposit_event(Event::ArbitrationStarted {
			job,
			challenge,
			step: dispute.lo,
			arbiters: drawn,
			decide_by: dispute.deadline,
		});
		Disputes::<T>::insert(job, challenge, dispute);
	}

	fn seed(subject: &[u8], job: JobId, a: u32, b: u32) -> H256 {
		let (random, _) = T::Randomness::random(&(subject, job, a, b).encode());
		BlakeTwo256::hash(random.as_ref())
	}

	/// Works off due deadlines, oldest first, at most `MaxDeadlinesPerBlock`.
	/// Returns (handled, blocks of the index read).
	fn process_deadlines(now: BlockNumberFor<T>) -> (u32, u32) {
		let drained = drain_due(
			DeadlineCursor::<T>::get(),
			now,
			T::MaxDeadlinesPerBlock::get(),
			|block, n| Deadlines::<T>::iter_key_prefix(block).take(n).collect(),
			|block, timer| {
				Deadlines::<T>::remove(block, timer);
				match timer {
					Timer::Audit(job) => Self::audit_deadline(job, now),
					Timer::Dispute(job, challenge) => Self::dispute_deadline(job, challenge, now),
				}
			},
		);
		DeadlineCursor::<T>::put(drained.cursor);
		(drained.handled, drained.scanned)
	}

	fn audit_deadline(job: JobId, now: BlockNumberFor<T>) {
		let Some(audit) = Audits::<T>::get(job) else { return };
		if audit.deadline > now {
			return; // stale entry
		}
		match audit.phase {
			AuditPhase::Drawing => Self::draw(job, audit, now),
			AuditPhase::Checking => Self::close(job, audit),
			AuditPhase::Closing => {}
		}
	}

	/// Picks the spot-checked segments and their checkers.
	fn draw(job: JobId, mut audit: Audit<T::AccountId, BlockNumberFor<T>>, now: BlockNumberFor<T>) {
		let params = Params::<T>::get();
		let segments = audit.trace.segments();
		let count = params.spot_checks.min(segments).min(MAX_SPOT_CHECKS);
		let seed = Self::seed(b"bly/spot-checks", job, 0, 0);
		let mut chosen: Vec<SegmentIndex> = Vec::new();
		if count == segments {
			chosen.extend(0..segments);
		} else {
			// Distinct segments by rejection; `count` < `segments`, so a free one is always near.
			let mut i = 0u32;
			while (chosen.len() as u32) < count && i < count.saturating_mul(64) {
				let digest = BlakeTwo256::hash(&(seed, i).encode());
				let pick =
					u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) % segments;
				if !chosen.contains(&pick) {
					chosen.push(pick);
				}
				i += 1;
			}
		}
		let exclude = [audit.request.miner.clone(), audit.request.creator.clone()];
		let checkers = T::Verifiers::draw(seed.as_ref(), count.min(MAX_CHECKERS), &exclude);
		let mut checks = Vec::new();
		if !checkers.is_empty() {
			for (i, segment) in chosen.iter().enumerate() {
				let checker = checkers[i % checkers.len()].clone();
				checks.push(SpotCheck {
					segment: *segment,
					checker,
					attested: false,
					challenged: false,
					unavailable: false,
					reported_before: false,
				});
			}
		}
		audit.spot_checks = BoundedVec::truncate_from(checks);
		audit.phase = AuditPhase::Checking;
		audit.deadline = Self::schedule(Timer::Audit(job), now, params.challenge_window);
		let challenge_by = audit.deadline;
		let checks = audit.spot_checks.iter().map(|c| (c.segment, c.checker.clone())).collect();
		Audits::<T>::insert(job, audit);
		Self::deposit_event(Event::SpotChecksDrawn { job, checks, challenge_by });
	}

	/// The challenge window is over: the audit ends once no dispute is open.
	fn close(job: JobId, mut audit: Audit<T::AccountId, BlockNumberFor<T>>) {
		if audit.open_disputes > 0 {
			audit.phase = AuditPhase::Closing;
			Audits::<T>::insert(job, audit);
			return;
		}
		Self::finish(job, audit);
	}

	/// Ends an audit's window with no dispute left. Checkers who left a segment undone (neither
	/// attested, challenged nor reported it unavailable) pay once. Then:
	/// - a segment two checkers, one from each draw, found unavailable, or two thirds of the
	///   spot checks reported: the miner withheld its trace, and is slashed;
	/// - two thirds attested and nothing is reported missing: it passes, on to scoring;
	/// - otherwise the open checks (silent or reported) go once to new checkers: a report needs
	///   a second, independent checker to count, and faked segments cannot hide behind
	///   withheld state blobs while the other two thirds pass;
	/// - after that draw: two thirds attested passes; a report nobody could confirm or refute
	///   ends the job without a verdict (creator refunded, nobody slashed); mere silence sends
	///   the result on to scoring unaudited: nothing shows the miner at fault, and an honest
	///   miner is never left unpaid while the creator keeps its weights and its escrow.
	fn finish(job: JobId, mut audit: Audit<T::AccountId, BlockNumberFor<T>>) {
		let mut silent: Vec<&T::AccountId> = Vec::new();
		for check in
			audit.spot_checks.iter().filter(|c| !c.attested && !c.challenged && !c.unavailable)
		{
			if !silent.contains(&&check.checker) {
				silent.push(&check.checker);
			}
		}
		for checker in silent {
			T::Verifiers::penalise(VerifierDuty::Job(job), checker);
		}
		let checks = audit.spot_checks.len() as u32;
		let confirmed = audit.spot_checks.iter().filter(|c| c.attested).count() as u32;
		let missing = audit.spot_checks.iter().filter(|c| c.unavailable).count() as u32;
		let missing_twice = audit.spot_checks.iter().any(|c| c.unavailable && c.reported_before);
		if missing_twice || (checks > 0 && missing >= quorum(checks)) {
			return Self::withheld(job, audit);
		}
		let passed = checks > 0 && confirmed >= quorum(checks);
		if passed && missing == 0 {
			return Self::pass(job, audit, confirmed);
		}
		if !audit.redrawn && checks > 0 && Self::redraw(job, &mut audit) {
			return;
		}
		if passed {
			return Self::pass(job, audit, confirmed);
		}
		Audits::<T>::remove(job);
		if missing > 0 {
			let _ = T::Registry::reject(audit.request.candidate_version);
			let _ = T::Jobs::settle_void(job);
			Self::deposit_event(Event::AuditVoid { job });
		} else {
			Self::deposit_event(Event::AuditUnconfirmed { job, attested: confirmed });
			Self::score(job, audit);
		}
	}

	fn pass(job: JobId, audit: Audit<T::AccountId, BlockNumberFor<T>>, attested: u32) {
		Audits::<T>::remove(job);
		Self::deposit_event(Event::AuditPassed { job, attested });
		Self::score(job, audit);
	}

	/// The trace a quorum of checkers could not fetch: reject, slash `fraud_slash` (burned),
	/// refund the creator.
	fn withheld(job: JobId, audit: Audit<T::AccountId, BlockNumberFor<T>>) {
		let _ = T::Registry::reject(audit.request.candidate_version);
		let slashed = T::Jobs::settle_rejected(job, Params::<T>::get().fraud_slash, &[])
			.unwrap_or_else(|_| Zero::zero());
		Audits::<T>::remove(job);
		Self::deposit_event(Event::TraceWithheld { job, slashed });
	}

	/// Deals the open spot checks (silent, or reported unavailable) to checkers other than
	/// their first ones (nor the miner or the creator) and opens a new window; false if nobody
	/// is left to draw.
	fn redraw(job: JobId, audit: &mut Audit<T::AccountId, BlockNumberFor<T>>) -> bool {
		let open: Vec<usize> =
			(0..audit.spot_checks.len()).filter(|&i| !audit.spot_checks[i].attested).collect();
		let mut exclude = alloc::vec![audit.request.miner.clone(), audit.request.creator.clone()];
		for &i in &open {
			let checker = &audit.spot_checks[i].checker;
			if !exclude.contains(checker) {
				exclude.push(checker.clone());
			}
		}
		let seed = Self::seed(b"bly/spot-redraw", job, 0, 0);
		let count = (open.len() as u32).min(MAX_CHECKERS);
		let checkers = T::Verifiers::draw(seed.as_ref(), count, &exclude);
		if checkers.is_empty() {
			return false;
		}
		for (k, &i) in open.iter().enumerate() {
			let check = &mut audit.spot_checks[i];
			check.checker = checkers[k % checkers.len()].clone();
			check.challenged = false;
			check.reported_before = check.unavailable;
			check.unavailable = false;
		}
		let now = frame_system::Pallet::<T>::block_number();
		audit.redrawn = true;
		audit.phase = AuditPhase::Checking;
		audit.deadline =
			Self::schedule(Timer::Audit(job), now, Params::<T>::get().challenge_window);
		let challenge_by = audit.deadline;
		let checks = open
			.iter()
			.map(|&i| (audit.spot_checks[i].segment, audit.spot_checks[i].checker.clone()));
		let checks = checks.collect();
		Audits::<T>::insert(job, audit.clone());
		Self::deposit_event(Event::SpotChecksRedrawn { job, checks, challenge_by });
		true
	}

	/// Hands an audited result on to scoring (the job ends without a verdict if scoring
	/// cannot start).
	fn score(job: JobId, audit: Audit<T::AccountId, BlockNumberFor<T>>) {
		if T::Next::start_verification(job, audit.request.clone()).is_err() {
			let _ = T::Registry::reject(audit.request.candidate_version);
			let _ = T::Jobs::settle_void(job);
		}
	}

	fn dispute_deadline(job: JobId, challenge: ChallengeId, now: BlockNumberFor<T>) {
		let Some(dispute) = Disputes::<T>::get(job, challenge) else { return };
		if dispute.deadline > now {
			return; // stale entry
		}
		match &dispute.stage {
			// The miner did not defend its trace.
			DisputeStage::Miner => {
				if let Some(audit) = Audits::<T>::get(job) {
					Self::fraud_proven(job, audit, challenge, &dispute);
				}
			}
			// The challenger gave up.
			DisputeStage::Challenger { .. } => Self::challenge_failed(job, challenge, dispute),
			DisputeStage::DrawingArbiters => Self::draw_arbiters(job, challenge, dispute, now),
			DisputeStage::Arbitration { .. } => Self::decide(job, challenge, dispute),
			DisputeStage::Refuted => {
				if let Some(audit) = Audits::<T>::get(job) {
					Self::fraud_proven(job, audit, challenge, &dispute);
				}
			}
		}
	}

	/// Counts the arbiters' reports and ends the dispute.
	fn decide(
		job: JobId,
		challenge: ChallengeId,
		dispute: Dispute<T::AccountId, BalanceOf<T>, BlockNumberFor<T>>,
	) {
		let DisputeStage::Arbitration { arbiters } = &dispute.stage else { return };
		let n = arbiters.len() as u32;
		let for_miner = arbiters.iter().filter(|(_, r)| *r == Some(Some(dispute.hi_hash))).count();
		let reported = arbiters.iter().filter(|(_, r)| r.is_some()).count();
		let against = reported.saturating_sub(for_miner) as u32;
		let for_miner = for_miner as u32;
		let miner_right = n > 0 && for_miner >= quorum(n);
		let miner_wrong = n > 0 && against >= quorum(n);
		for (arbiter, report) in arbiters.iter() {
			let sided_with_miner = *report == Some(Some(dispute.hi_hash));
			let wrong_side = match report {
				None => true,
				Some(_) if miner_right => !sided_with_miner,
				Some(_) if miner_wrong => sided_with_miner,
				Some(_) => false,
			};
			if wrong_side {
				T::Verifiers::penalise(VerifierDuty::Job(job), arbiter);
			}
		}
		if miner_wrong {
			if let Some(audit) = Audits::<T>::get(job) {
				Self::fraud_proven(job, audit, challenge, &dispute);
			}
		} else if miner_right {
			Self::challenge_failed(job, challenge, dispute);
		} else {
			let _ = T::Currency::release(
				&HoldReason::ChallengeBond.into(),
				&dispute.challenger,
				dispute.bond,
				Precision::BestEffort,
			);
			Self::deposit_event(Event::DisputeUndecided { job, challenge });
			Self::dispute_ended(job, challenge);
		}
	}

	/// The miner's trace held against this challenger: half its bond goes to the miner, half is
	/// burned (so a challenge a miner raises against itself still costs it). A held step says
	/// nothing of the rest of the segment: its spot check still needs its checker.
	fn challenge_failed(
		job: JobId,
		challenge: ChallengeId,
		dispute: Dispute<T::AccountId, BalanceOf<T>, BlockNumberFor<T>>,
	) {
		let miner = Audits::<T>::get(job).map(|a| a.request.miner);
		let half = dispute.bond / 2u32.into();
		let paid = match miner {
			Some(miner) => T::Currency::transfer_on_hold(
				&HoldReason::ChallengeBond.into(),
				&dispute.challenger,
				&miner,
				half,
				Precision::BestEffort,
				Restriction::Free,
				Fortitude::Force,
			)
			.unwrap_or_else(|_| Zero::zero()),
			None => Zero::zero(),
		};
		// The rest is burned, whatever could not be paid included.
		let _ = T::Currency::burn_held(
			&HoldReason::ChallengeBond.into(),
			&dispute.challenger,
			dispute.bond.saturating_sub(paid),
			Precision::BestEffort,
			Fortitude::Force,
		);
		Self::deposit_event(Event::ChallengeFailed {
			job,
			challenge,
			challenger: dispute.challenger,
			bond: dispute.bond,
			to_miner: paid,
		});
		Self::dispute_ended(job, challenge);
	}

	/// Removes a decided dispute; a closed audit with none left passes.
	fn dispute_ended(job: JobId, challenge: ChallengeId) {
		Disputes::<T>::remove(job, challenge);
		let Some(mut audit) = Audits::<T>::get(job) else { return };
		audit.open_disputes = audit.open_disputes.saturating_sub(1);
		if audit.phase == AuditPhase::Closing && audit.open_disputes == 0 {
			Self::finish(job, audit);
		} else {
			Audits::<T>::insert(job, audit);
		}
	}

	/// Fraud proven by `dispute`: reject and slash; `ChallengerShare` of the slash goes to the
	/// earliest challenge known valid (this one, an earlier one of the same segment, or an
	/// earlier one the trace refuted by itself, whatever order their deadlines were processed
	/// in), the rest is burned; every challenger's bond is returned.
	fn fraud_proven(
		job: JobId,
		audit: Audit<T::AccountId, BlockNumberFor<T>>,
		challenge: ChallengeId,
		dispute: &Dispute<T::AccountId, BalanceOf<T>, BlockNumberFor<T>>,
	) {
		let params = Params::<T>::get();
		let _ = T::Registry::reject(audit.request.candidate_version);
		// The earliest challenge known right: the deciding one, one the trace refuted by itself,
		// or an earlier one of the same segment (so a miner cannot concede a friend's later
		// challenge to pass over an honest earlier one).
		let (mut first, mut winner) = (challenge, dispute);
		// Every dispute of the job ends here: taken out of storage once, read for the winner,
		// then each bond (the winner's included) released.
		let disputes: Vec<_> = Disputes::<T>::drain_prefix(job).collect();
		for (id, d) in &disputes {
			let right = d.stage == DisputeStage::Refuted || d.segment == dispute.segment;
			if *id < first && right {
				(first, winner) = (*id, d);
			}
		}
		// Whoever attested a refuted segment did not re-run it (or lied).
		for check in audit
			.spot_checks
			.iter()
			.filter(|c| c.attested && (c.segment == winner.segment || c.segment == dispute.segment))
		{
			T::Verifiers::penalise(VerifierDuty::Job(job), &check.checker);
		}
		let segment = winner.segment;
		let slashed_bond = T::Jobs::slashable(job, params.fraud_slash);
		let rewards = [(winner.challenger.clone(), T::ChallengerShare::get() * slashed_bond)];
		let slashed = T::Jobs::settle_rejected(job, params.fraud_slash, &rewards)
			.unwrap_or_else(|_| Zero::zero());
		let challenger = winner.challenger.clone();
		for (_, d) in &disputes {
			let _ = T::Currency::release(
				&HoldReason::ChallengeBond.into(),
				&d.challenger,
				d.bond,
				Precision::BestEffort,
			);
		}
		Audits::<T>::remove(job);
		Self::deposit_event(Event::FraudProven { job, segment, challenger, slashed });
	}

	fn check_params(p: &AuditParams<BalanceOf<T>, BlockNumberFor<T>>) -> DispatchResult {
		ensure!(
			p.checkpoint_interval > 0
				&& p.spot_checks <= MAX_SPOT_CHECKS
				&& (1..=MAX_ARBITERS).contains(&p.arbiters)
				&& !p.draw_delay.is_zero()
				&& !p.challenge_window.is_zero()
				&& !p.move_window.is_zero(),
			Error::<T>::BadParams
		);
		Ok(())
	}

	/// What `who` has to do in audits now (for the runtime API; iterates every audit).
	pub fn duties(who: &T::AccountId) -> Vec<AuditDuty> {
		let now = frame_system::Pallet::<T>::block_number();
		let mut duties = Vec::new();
		for (job, audit) in Audits::<T>::iter() {
			if audit.phase == AuditPhase::Checking && audit.deadline > now {
				for check in audit.spot_checks.iter() {
					// Others' disputes of the segment do not relieve its checker.
					if check.checker == *who
						&& !check.attested && !check.challenged
						&& !check.unavailable
					{
						duties.push(AuditDuty::SpotCheck { job, segment: check.segment });
					}
				}
			}
			for (challenge, dispute) in Disputes::<T>::iter_prefix(job) {
				match &dispute.stage {
					DisputeStage::Miner if audit.request.miner == *who => {
						duties.push(AuditDuty::Bisect { job, challenge })
					}
					DisputeStage::Challenger { .. } if dispute.challenger == *who => {
						duties.push(AuditDuty::Respond { job, challenge })
					}
					DisputeStage::Arbitration { arbiters }
						if arbiters.iter().any(|(a, r)| a == who && r.is_none()) =>
					{
						duties.push(AuditDuty::Arbitrate { job, challenge })
					}
					_ => {}
				}
			}
		}
		duties
	}
}

impl<T: Config> VerificationProvider<T::AccountId> for Pallet<T> {
	fn start_verification(
		job: JobId,
		request: VerificationRequest<T::AccountId>,
	) -> DispatchResult {
		let Some(trace) = request.trace.clone() else {
			// The jobs pallet requires a trace wherever one can be checked.
			return T::Next::start_verification(job, request);
		};
		ensure!(!Audits::<T>::contains_key(job), Error::<T>::AlreadyAuditing);
		let params = Params::<T>::get();
		ensure!(
			trace.steps > 0
				&& (1..=params.checkpoint_interval).contains(&trace.interval)
				&& trace.segments() <= MAX_SEGMENTS,
			Error::<T>::BadTrace
		);
		let base = T::Registry::version(request.base_version).ok_or(Error::<T>::UnknownVersion)?;
		let result =
			T::Registry::version(request.candidate_version).ok_or(Error::<T>::UnknownVersion)?;
		let now = frame_system::Pallet::<T>::block_number();
		let draw_at = Self::schedule(Timer::Audit(job), now, params.draw_delay);
		let segments = trace.segments();
		Audits::<T>::insert(
			job,
			Audit {
				request,
				trace,
				base_weights: base.weight_root,
				result_weights: result.weight_root,
				phase: AuditPhase::Drawing,
				deadline: draw_at,
				spot_checks: BoundedVec::default(),
				open_disputes: 0,
				redrawn: false,
				next_challenge: 0,
			},
		);
		Self::deposit_event(Event::AuditStarted { job, segments, draw_at });
		Ok(())
	}
}

impl<T: Config> GovernedParams<AuditParams<BalanceOf<T>, BlockNumberFor<T>>> for Pallet<T> {
	fn params() -> AuditParams<BalanceOf<T>, BlockNumberFor<T>> {
		Params::<T>::get()
	}

	fn set_params(params: AuditParams<BalanceOf<T>, BlockNumberFor<T>>) -> DispatchResult {
		Self::check_params(&params)?;
		Params::<T>::put(params.clone());
		Self::deposit_event(Event::ParamsSet { params });
		Ok(())
	}
}

/// What workers ask the audit pallet through the runtime.
pub mod runtime_api {
	use super::*;

	sp_api::decl_runtime_apis! {
		/// Audit queries.
		pub trait TrainingAuditApi<AccountId, Balance, BlockNumber>
		where
			AccountId: codec::Codec,
			Balance: codec::Codec,
			BlockNumber: codec::Codec,
		{
			/// What `who` has to do in audits now.
			fn audit_duties(who: AccountId) -> Vec<AuditDuty>;
			/// One audit.
			fn audit(job: JobId) -> Option<Audit<AccountId, BlockNumber>>;
			/// One challenge's dispute.
			fn dispute(job: JobId, challenge: ChallengeId) -> Option<Dispute<AccountId, Balance, BlockNumber>>;
		}
	}
}
