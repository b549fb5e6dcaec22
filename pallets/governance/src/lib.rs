//! # Governance of Blyan's parameters
//!
//! Token holders decide with polkadot-sdk's own machinery: `pallet-referenda` runs the polls,
//! `pallet-conviction-voting` locks (never spends) the BLY behind each vote, `pallet-scheduler`
//! enacts a passed proposal after its delay and `pallet-preimage` holds the proposed call. What is
//! Blyan's is here:
//!
//! - **Every protocol and economic parameter in one place**, each with an inclusive range
//!   ([`ParameterBounds`], the runtime's table). [`Pallet::set_parameter`] refuses a value outside
//!   its range with [`Error::BelowMinimum`] / [`Error::AboveMaximum`] and changes nothing; a
//!   referendum whose call is refused is over, its call never enacted.
//! - The parameters of the protocol pallets and the free tier stay in those pallets' storage; this pallet reaches
//!   them through [`GovernedParams`] (no pallet imports another), so their own consistency checks
//!   (e.g. verifier fee + dataset share ≤ 100 %) also apply.
//! - The parameters no other pallet owns are stored here: inflation and its split
//!   ([`Economics`]) and the periods of a referendum ([`Timings`]), which the runtime's referendum
//!   tracks read. A dev chain starts with short periods from its genesis preset.
//! - A custom origin, [`Origin::ParameterAdmin`], is what a referendum on the parameters track
//!   dispatches with: it may change parameters but nothing else (a runtime upgrade needs the root
//!   track, with stricter thresholds).
//! - **No escalation through the weaker track.** The root track's own settings (the referendum
//!   periods) and the treasury-scale parameters (inflation, its split, the epoch budget and
//!   length) are [`ParameterKind::root_only`]: only [`Config::RootOrigin`] (a root-track
//!   referendum) moves them, at most once per [`Config::RootChangeCooldown`] each and by at most
//!   a factor of two per change. The epoch length is the exception to the factor: it scales the
//!   epoch budget with it (the same BLY per block; the budget it leads to must lie within the
//!   budget's bounds, and `pallet-pol-rewards` pays an epoch cut short for the blocks it ran).
//!   So no single referendum can shorten the root track's periods to nothing or drain the
//!   mining pool in minutes.
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

use alloc::vec::Vec;
pub use blyan_primitives::params::{
	AuditParams, FreeTierParams, GovernedParams, InferenceParams, JobParams, PolParams,
};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{pallet_prelude::*, traits::EnsureOrigin};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_runtime::{
	traits::{AtLeast32BitUnsigned, Saturating},
	Perbill,
};

/// Inflation and where it goes.
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
	serde::Serialize,
	serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct EconomicsParams {
	/// New BLY minted per year, as a share of total issuance.
	pub annual_inflation: Perbill,
	/// Share of the inflation paid to validators and nominators; the rest goes to the
	/// mining-reward pool.
	pub validator_share: Perbill,
}

/// The periods of a referendum, in blocks, for every track.
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
	serde::Serialize,
	serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct ReferendumTimings<BlockNumber> {
	/// Least time between submission and the start of the decision.
	pub prepare_period: BlockNumber,
	/// Longest time the vote may take before the referendum times out.
	pub decision_period: BlockNumber,
	/// How long the thresholds must hold before the referendum passes.
	pub confirm_period: BlockNumber,
	/// Least delay between passing and enactment.
	pub min_enactment_period: BlockNumber,
}

/// A parameter's value, by unit; the bounds of a parameter are two of these.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	PartialOrd,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum ParameterValue<Balance, BlockNumber> {
	/// A share (of a bond, an escrow, the issuance …).
	Share(Perbill),
	/// An amount of BLY.
	Amount(Balance),
	/// A number of blocks.
	Blocks(BlockNumber),
	/// A count.
	Count(u32),
}

/// Declares [`Parameter`] (a parameter with its new value) and [`ParameterKind`] (its name)
/// from one list, so the two cannot drift apart.
macro_rules! parameters {
	($( $(#[$doc:meta])* $name:ident($ty:ty) as $unit:ident ),* $(,)?) => {
		/// A Blyan parameter and a new value for it: the argument of [`Pallet::set_parameter`].
		#[derive(
			Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
			Debug,
		)]
		pub enum Parameter<Balance, BlockNumber> {
			$( $(#[$doc])* $name($ty), )*
		}

		/// The name of a Blyan parameter (a [`Parameter`] without its value).
		#[derive(
			Clone, Copy, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen,
			TypeInfo, Debug,
		)]
		pub enum ParameterKind {
			$( $(#[$doc])* $name, )*
		}

		impl ParameterKind {
			/// Every parameter, in declaration order.
			pub const ALL: &'static [ParameterKind] = &[$(ParameterKind::$name),*];
		}

		impl<Balance: Copy, BlockNumber: Copy> Parameter<Balance, BlockNumber> {
			/// Which parameter this is.
			pub fn kind(&self) -> ParameterKind {
				match self {
					$( Parameter::$name(_) => ParameterKind::$name, )*
				}
			}

			/// The new value, with its unit.
			pub fn value(&self) -> ParameterValue<Balance, BlockNumber> {
				match self {
					$( Parameter::$name(v) => ParameterValue::$unit(*v), )*
				}
			}
		}
	};
}

parameters! {
	// pallet-jobs
	/// Least relative loss reduction a job accepts when its creator sets none.
	MinImprovement(Perbill) as Share,
	/// Least reward a job may escrow.
	MinJobReward(Balance) as Amount,
	/// Least bond of a training worker.
	MinWorkerBond(Balance) as Amount,
	/// Blocks a worker's bond stays held after it unbonds.
	WorkerUnbondingPeriod(BlockNumber) as Blocks,
	/// Longest lease a job may give its miner.
	MaxLease(BlockNumber) as Blocks,
	/// Blocks for the creator to reveal the validation set, and then the miner its result.
	ResultRevealWindow(BlockNumber) as Blocks,
	/// Share of a worker's bond slashed for a lapsed lease or a withheld result.
	LeaseSlash(Perbill) as Share,
	// pallet-pol-rewards
	/// Verifiers per committee.
	CommitteeSize(u32) as Count,
	/// Blocks between a result's reveal and its committee draw.
	CommitteeDrawDelay(BlockNumber) as Blocks,
	/// Blocks for committee members to commit their scores.
	VerifierCommitWindow(BlockNumber) as Blocks,
	/// Blocks for committee members to reveal their scores.
	VerifierRevealWindow(BlockNumber) as Blocks,
	/// Share of an accepted job's escrow paid to its verifiers.
	VerifierFee(Perbill) as Share,
	/// Share of an accepted job's escrow paid to the owner of its dataset.
	DatasetShare(Perbill) as Share,
	/// Share of a miner's bond slashed when its claim is refuted.
	MinerSlash(Perbill) as Share,
	/// Share of a verifier's bond slashed for a dissenting or missing reveal.
	VerifierPenalty(Perbill) as Share,
	/// Least bond of a verifier.
	MinVerifierBond(Balance) as Amount,
	/// Blocks a verifier's bond stays held after it unregisters.
	VerifierUnbondingPeriod(BlockNumber) as Blocks,
	/// Blocks per reward epoch.
	EpochLength(BlockNumber) as Blocks,
	/// Mining-pool BLY shared by each epoch's accepted improvements.
	EpochBudget(Balance) as Amount,
	// pallet-training-audit
	/// Most training steps between two checkpoints of a training trace.
	CheckpointInterval(u32) as Count,
	/// Trace segments spot-checked per job.
	SpotChecks(u32) as Count,
	/// Blocks between a result's reveal and its spot-check draw.
	AuditDrawDelay(BlockNumber) as Blocks,
	/// Blocks after the draw for spot checks and challenges.
	ChallengeWindow(BlockNumber) as Blocks,
	/// Blocks for each bisection move and for arbiters to report.
	DisputeMoveWindow(BlockNumber) as Blocks,
	/// Verifiers re-executing a disputed training step.
	Arbiters(u32) as Count,
	/// What a challenger of a training trace holds.
	ChallengeBond(Balance) as Amount,
	/// Share of a miner's bond slashed for a refuted training trace.
	FraudSlash(Perbill) as Share,
	// Economics
	/// New BLY per year, as a share of total issuance.
	AnnualInflation(Perbill) as Share,
	/// Share of inflation paid to validators; the rest goes to the mining pool.
	ValidatorRewardShare(Perbill) as Share,
	// pallet-free-tier
	/// Free requests a day for an account with no trust.
	MinDailyQuota(u32) as Count,
	/// Free requests a day at full trust.
	MaxDailyQuota(u32) as Count,
	/// Leading zero bits of an untrusted account's proof of work.
	PowDifficulty(u32) as Count,
	/// How many blocks back a proof of work's block may be.
	PowWindow(BlockNumber) as Blocks,
	/// Free requests one block may hold.
	MaxFreePerBlock(u32) as Count,
	// Referenda
	/// Least time between a referendum's submission and its decision.
	PreparePeriod(BlockNumber) as Blocks,
	/// Longest time a referendum may be decided over.
	DecisionPeriod(BlockNumber) as Blocks,
	/// How long a referendum's thresholds must hold for it to pass.
	ConfirmPeriod(BlockNumber) as Blocks,
	/// Least delay between a referendum passing and its enactment.
	MinEnactmentPeriod(BlockNumber) as Blocks,
	// pallet-inference (appended: the variants' indices are part of the call's encoding)
	/// Share of requests whose hops a gateway re-executes on another server.
	InferenceCheckRate(Perbill) as Share,
	/// What a challenger of a served answer holds.
	InferenceChallengeBond(Balance) as Amount,
	/// Verifiers re-executing a challenged inference session.
	InferenceArbiters(u32) as Count,
	/// Blocks from an inference challenge to its deadline.
	InferenceArbitrationWindow(BlockNumber) as Blocks,
	/// Share of a server's bond slashed for a proven wrong answer.
	ServerFraudSlash(Perbill) as Share,
	/// Share of a slashed server bond paid to its challenger (the rest is burned).
	InferenceChallengerShare(Perbill) as Share,
	/// Paid to each arbiter of an inference challenge who reported the decision.
	InferenceArbiterFee(Balance) as Amount,
}

impl ParameterKind {
	/// The root track's own settings and the treasury-scale parameters: set only by
	/// [`Config::RootOrigin`], rate-limited. Letting the parameters track change them would let
	/// its lower thresholds rewrite the root track or the mining pool's spending.
	pub fn root_only(&self) -> bool {
		use ParameterKind::*;
		matches!(
			self,
			PreparePeriod
				| DecisionPeriod
				| ConfirmPeriod
				| MinEnactmentPeriod
				| AnnualInflation
				| ValidatorRewardShare
				| EpochLength
				| EpochBudget
		)
	}
}

impl<Balance: AtLeast32BitUnsigned + Copy, BlockNumber: AtLeast32BitUnsigned + Copy>
	ParameterValue<Balance, BlockNumber>
{
	/// Whether `self` is within a factor of two of `from` (either way), in the same unit; from
	/// zero, any value.
	pub fn within_factor_two_of(&self, from: &Self) -> bool {
		fn near<N: AtLeast32BitUnsigned + Copy>(new: N, old: N) -> bool {
			let two = N::one() + N::one();
			old.is_zero() || (new <= old.saturating_mul(two) && new.saturating_mul(two) >= old)
		}
		use ParameterValue::*;
		match (self, from) {
			(Share(new), Share(old)) => near(new.deconstruct(), old.deconstruct()),
			(Amount(new), Amount(old)) => near(*new, *old),
			(Blocks(new), Blocks(old)) => near(*new, *old),
			(Count(new), Count(old)) => near(*new, *old),
			_ => false,
		}
	}
}

/// The inclusive range each parameter must lie in: the runtime's table.
pub trait ParameterBounds<Balance, BlockNumber> {
	/// `(min, max)` of `kind`, both in the parameter's unit; `None` if the parameter is not
	/// governable on this chain.
	fn bounds(
		kind: ParameterKind,
	) -> Option<(ParameterValue<Balance, BlockNumber>, ParameterValue<Balance, BlockNumber>)>;
}

/// Ensures the origin is [`Origin::ParameterAdmin`] (a passed referendum on the parameters track).
pub struct EnsureParameterAdmin;
impl<O> EnsureOrigin<O> for EnsureParameterAdmin
where
	O: Into<Result<Origin, O>> + From<Origin>,
{
	type Success = ();

	fn try_origin(o: O) -> Result<(), O> {
		o.into().map(|Origin::ParameterAdmin| ())
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn try_successful_origin() -> Result<O, ()> {
		Ok(O::from(Origin::ParameterAdmin))
	}
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	/// Balance type of the parameters.
	pub type BalanceOf<T> = <T as Config>::Balance;
	/// A parameter of this runtime.
	pub type ParameterOf<T> = crate::Parameter<BalanceOf<T>, BlockNumberFor<T>>;
	/// A parameter value of this runtime.
	pub type ParameterValueOf<T> = crate::ParameterValue<BalanceOf<T>, BlockNumberFor<T>>;
	/// `pallet-jobs`' parameters in this runtime.
	pub type JobParamsOf<T> = JobParams<BalanceOf<T>, BlockNumberFor<T>>;
	/// `pallet-pol-rewards`' parameters in this runtime.
	pub type PolParamsOf<T> = PolParams<BalanceOf<T>, BlockNumberFor<T>>;
	/// `pallet-training-audit`'s parameters in this runtime's units.
	pub type AuditParamsOf<T> = AuditParams<BalanceOf<T>, BlockNumberFor<T>>;
	/// `pallet-free-tier`'s parameters in this runtime.
	pub type FreeTierParamsOf<T> = FreeTierParams<BlockNumberFor<T>>;
	/// `pallet-inference`'s parameters in this runtime.
	pub type InferenceParamsOf<T> = InferenceParams<BalanceOf<T>, BlockNumberFor<T>>;

	/// The storage layout's version (0: the layout at launch): bumped, with a migration, on
	/// every change of layout.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// Amounts of BLY.
		type Balance: frame_support::Parameter
			+ Member
			+ AtLeast32BitUnsigned
			+ Copy
			+ MaxEncodedLen
			+ Default;
		/// `pallet-jobs`' parameters.
		type Jobs: GovernedParams<JobParams<Self::Balance, BlockNumberFor<Self>>>;
		/// `pallet-pol-rewards`' parameters.
		type Pol: GovernedParams<PolParams<Self::Balance, BlockNumberFor<Self>>>;
		/// The training audit's parameters.
		type Audit: GovernedParams<AuditParams<Self::Balance, BlockNumberFor<Self>>>;
		/// `pallet-free-tier`'s parameters.
		type FreeTier: GovernedParams<FreeTierParams<BlockNumberFor<Self>>>;
		/// `pallet-inference`'s parameters.
		type Inference: GovernedParams<InferenceParams<Self::Balance, BlockNumberFor<Self>>>;
		/// The range of every parameter.
		type Bounds: ParameterBounds<Self::Balance, BlockNumberFor<Self>>;
		/// Who may change a parameter: root, or [`Origin::ParameterAdmin`].
		type AdminOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Who may change a [`ParameterKind::root_only`] parameter: a root-track referendum.
		type RootOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Least blocks between two changes of one root-only parameter.
		#[pallet::constant]
		type RootChangeCooldown: Get<BlockNumberFor<Self>>;
		/// [`Economics`] until changed.
		type DefaultEconomics: Get<EconomicsParams>;
		/// [`Timings`] until changed.
		type DefaultTimings: Get<ReferendumTimings<BlockNumberFor<Self>>>;
		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;
	}

	/// The origin a passed referendum on the parameters track dispatches with.
	#[pallet::origin]
	#[derive(
		PartialEq, Eq, Clone, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
	)]
	pub enum Origin {
		/// May change Blyan's parameters, nothing else.
		ParameterAdmin,
	}

	/// Inflation and its split.
	#[pallet::storage]
	pub type Economics<T: Config> =
		StorageValue<_, EconomicsParams, ValueQuery, T::DefaultEconomics>;

	/// The periods of a referendum.
	#[pallet::storage]
	pub type Timings<T: Config> =
		StorageValue<_, ReferendumTimings<BlockNumberFor<T>>, ValueQuery, T::DefaultTimings>;

	/// When each root-only parameter last changed (one entry per kind at most).
	#[pallet::storage]
	pub type LastRootChange<T: Config> =
		StorageMap<_, Twox64Concat, ParameterKind, BlockNumberFor<T>, OptionQuery>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Overrides [`Config::DefaultEconomics`] (checked against the bounds).
		pub economics: Option<EconomicsParams>,
		/// Overrides [`Config::DefaultTimings`] (checked against the bounds); a dev chain
		/// shortens them.
		pub timings: Option<ReferendumTimings<BlockNumberFor<T>>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			// A chain spec outside the bounds is a mistake of its author: refuse to build it.
			if let Some(e) = self.economics {
				for p in economics_parameters::<T>(&e) {
					Pallet::<T>::check_bounds(&p).expect("genesis economics out of bounds");
				}
				Economics::<T>::put(e);
			}
			if let Some(t) = self.timings {
				for p in timing_parameters::<T>(&t) {
					Pallet::<T>::check_bounds(&p)
						.expect("genesis referendum timings out of bounds");
				}
				Timings::<T>::put(t);
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A parameter took a new value.
		ParameterSet { parameter: ParameterOf<T> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The value is below the parameter's minimum.
		BelowMinimum,
		/// The value is above the parameter's maximum.
		AboveMaximum,
		/// This chain has no bounds for the parameter, so it cannot be changed.
		NotGovernable,
		/// Only a root-track referendum may change this parameter.
		RootOnly,
		/// This root-only parameter changed less than `RootChangeCooldown` blocks ago.
		ChangedTooRecently,
		/// A root-only parameter moves by at most a factor of two per change.
		StepTooLarge,
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Sets one parameter, if its new value lies within its bounds.
		///
		/// Origin: [`Config::AdminOrigin`] (root, or a referendum on the parameters track); for a
		/// [`ParameterKind::root_only`] parameter [`Config::RootOrigin`] only, at most once per
		/// `RootChangeCooldown` and within a factor of two of its current value.
		/// Parameters of other pallets are also checked by that pallet (its error is returned).
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::set_parameter()
			.saturating_add(T::DbWeight::get().reads_writes(2, 1)))]
		pub fn set_parameter(origin: OriginFor<T>, parameter: ParameterOf<T>) -> DispatchResult {
			let kind = parameter.kind();
			if kind.root_only() {
				T::RootOrigin::try_origin(origin).map_err(|_| Error::<T>::RootOnly)?;
			} else {
				T::AdminOrigin::ensure_origin(origin)?;
			}
			Self::check_bounds(&parameter)?;
			if kind.root_only() {
				Self::check_root_change(&parameter)?;
			}
			Self::apply(&parameter)?;
			if kind.root_only() {
				LastRootChange::<T>::insert(kind, frame_system::Pallet::<T>::block_number());
			}
			Self::deposit_event(Event::ParameterSet { parameter });
			Ok(())
		}
	}

	#[pallet::extra_constants]
	impl<T: Config> Pallet<T> {
		/// Every governable parameter with its `(min, max)`, as clients show them.
		#[pallet::constant_name(ParameterBounds)]
		pub fn parameter_bounds() -> Vec<(ParameterKind, ParameterValueOf<T>, ParameterValueOf<T>)>
		{
			ParameterKind::ALL
				.iter()
				.filter_map(|kind| T::Bounds::bounds(*kind).map(|(min, max)| (*kind, min, max)))
				.collect()
		}
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}

		#[cfg(feature = "std")]
		fn integrity_test() {
			// The defaults a chain starts from must be values governance could have set.
			let e = economics_parameters::<T>(&T::DefaultEconomics::get());
			let t = timing_parameters::<T>(&T::DefaultTimings::get());
			for p in e.into_iter().chain(t) {
				assert!(Self::check_bounds(&p).is_ok(), "default {:?} out of bounds", p);
			}
		}
	}
}

/// Changes one field of the parameters `G` owns and hands them back through `G`'s own checks.
fn update<P, G: GovernedParams<P>>(change: &dyn Fn(&mut P)) -> DispatchResult {
	let mut params = G::params();
	change(&mut params);
	G::set_params(params)
}

/// `budget` for an epoch of `to` blocks instead of `from`: the same BLY per block; `None` if
/// it does not fit the balance type.
fn scale_budget<Balance: AtLeast32BitUnsigned + Copy, BlockNumber: AtLeast32BitUnsigned + Copy>(
	budget: Balance,
	from: BlockNumber,
	to: BlockNumber,
) -> Option<Balance> {
	let (from, to): (u128, u128) = (from.unique_saturated_into(), to.unique_saturated_into());
	if from == 0 {
		return Some(budget);
	}
	let scaled = sp_runtime::helpers_128bit::multiply_by_rational_with_rounding(
		budget.unique_saturated_into(),
		to,
		from,
		sp_runtime::Rounding::Down,
	)?;
	Balance::try_from(scaled).ok()
}

/// `e` as the parameters that set it.
fn economics_parameters<T: Config>(e: &EconomicsParams) -> [ParameterOf<T>; 2] {
	[
		Parameter::AnnualInflation(e.annual_inflation),
		Parameter::ValidatorRewardShare(e.validator_share),
	]
}

/// `t` as the parameters that set it.
fn timing_parameters<T: Config>(t: &ReferendumTimings<BlockNumberFor<T>>) -> [ParameterOf<T>; 4] {
	[
		Parameter::PreparePeriod(t.prepare_period),
		Parameter::DecisionPeriod(t.decision_period),
		Parameter::ConfirmPeriod(t.confirm_period),
		Parameter::MinEnactmentPeriod(t.min_enactment_period),
	]
}

impl<T: Config> Pallet<T> {
	/// Inflation and its split in force.
	pub fn economics() -> EconomicsParams {
		Economics::<T>::get()
	}

	/// Referendum periods in force.
	pub fn timings() -> ReferendumTimings<BlockNumberFor<T>> {
		Timings::<T>::get()
	}

	/// Whether `parameter`'s value lies within its bounds.
	pub fn check_bounds(parameter: &ParameterOf<T>) -> DispatchResult {
		let (min, max) = T::Bounds::bounds(parameter.kind()).ok_or(Error::<T>::NotGovernable)?;
		let value = parameter.value();
		// Bounds in another unit than the value are a broken table: refuse, never guess.
		let same_unit =
			|a: &ParameterValueOf<T>| core::mem::discriminant(a) == core::mem::discriminant(&value);
		ensure!(same_unit(&min) && same_unit(&max), Error::<T>::NotGovernable);
		ensure!(value >= min, Error::<T>::BelowMinimum);
		ensure!(value <= max, Error::<T>::AboveMaximum);
		Ok(())
	}

	/// A root-only change: not within `RootChangeCooldown` of the last one, and within a factor
	/// of two of the value in force.
	fn check_root_change(parameter: &ParameterOf<T>) -> DispatchResult {
		let kind = parameter.kind();
		let now = frame_system::Pallet::<T>::block_number();
		if let Some(at) = LastRootChange::<T>::get(kind) {
			ensure!(
				now >= at.saturating_add(T::RootChangeCooldown::get()),
				Error::<T>::ChangedTooRecently
			);
		}
		// The epoch length moves the budget with it (the pool pays the same per block, and an
		// epoch cut short pays for the blocks it ran), so its step is not limited, but the
		// budget it leads to must lie within the budget's own bounds; every other root-only
		// parameter moves by a factor of two at most.
		if let Parameter::EpochLength(length) = parameter {
			let pol = T::Pol::params();
			let budget = scale_budget(pol.epoch_budget, pol.epoch_length, *length)
				.ok_or(Error::<T>::AboveMaximum)?;
			return Self::check_bounds(&Parameter::EpochBudget(budget));
		}
		let current = Self::current(kind).ok_or(Error::<T>::RootOnly)?;
		ensure!(parameter.value().within_factor_two_of(&current), Error::<T>::StepTooLarge);
		Ok(())
	}

	/// The value in force of a root-only parameter (`None` for the others).
	pub fn current(kind: ParameterKind) -> Option<ParameterValueOf<T>> {
		use ParameterKind::*;
		use ParameterValue::*;
		let t = Timings::<T>::get();
		let e = Economics::<T>::get();
		Some(match kind {
			PreparePeriod => Blocks(t.prepare_period),
			DecisionPeriod => Blocks(t.decision_period),
			ConfirmPeriod => Blocks(t.confirm_period),
			MinEnactmentPeriod => Blocks(t.min_enactment_period),
			AnnualInflation => Share(e.annual_inflation),
			ValidatorRewardShare => Share(e.validator_share),
			EpochLength => Blocks(T::Pol::params().epoch_length),
			EpochBudget => Amount(T::Pol::params().epoch_budget),
			_ => return None,
		})
	}

	/// Writes `parameter` where it lives.
	fn apply(parameter: &ParameterOf<T>) -> DispatchResult {
		use crate::Parameter::*;
		let jobs = |f: &dyn Fn(&mut JobParamsOf<T>)| update::<_, T::Jobs>(f);
		let pol = |f: &dyn Fn(&mut PolParamsOf<T>)| update::<_, T::Pol>(f);
		let audit = |f: &dyn Fn(&mut AuditParamsOf<T>)| update::<_, T::Audit>(f);
		let free_tier = |f: &dyn Fn(&mut FreeTierParamsOf<T>)| update::<_, T::FreeTier>(f);
		let inference = |f: &dyn Fn(&mut InferenceParamsOf<T>)| update::<_, T::Inference>(f);
		let economics = |f: &dyn Fn(&mut EconomicsParams)| {
			Economics::<T>::mutate(|e| f(e));
			Ok(())
		};
		let timings = |f: &dyn Fn(&mut ReferendumTimings<BlockNumberFor<T>>)| {
			Timings::<T>::mutate(|t| f(t));
			Ok(())
		};
		match *parameter {
			MinImprovement(v) => jobs(&|p| p.min_improvement = v),
			MinJobReward(v) => jobs(&|p| p.min_reward = v),
			MinWorkerBond(v) => jobs(&|p| p.min_worker_bond = v),
			WorkerUnbondingPeriod(v) => jobs(&|p| p.unbonding_period = v),
			MaxLease(v) => jobs(&|p| p.max_lease = v),
			ResultRevealWindow(v) => jobs(&|p| p.reveal_window = v),
			LeaseSlash(v) => jobs(&|p| p.lease_slash = v),
			CommitteeSize(v) => pol(&|p| p.committee_size = v),
			CommitteeDrawDelay(v) => pol(&|p| p.draw_delay = v),
			VerifierCommitWindow(v) => pol(&|p| p.commit_window = v),
			VerifierRevealWindow(v) => pol(&|p| p.reveal_window = v),
			VerifierFee(v) => pol(&|p| p.verifier_fee = v),
			DatasetShare(v) => pol(&|p| p.dataset_share = v),
			MinerSlash(v) => pol(&|p| p.miner_slash = v),
			VerifierPenalty(v) => pol(&|p| p.verifier_penalty = v),
			MinVerifierBond(v) => pol(&|p| p.min_verifier_bond = v),
			VerifierUnbondingPeriod(v) => pol(&|p| p.unbonding_period = v),
			EpochLength(v) => pol(&|p| {
				// The budget follows the length, so shorter epochs never pay out faster.
				// Checked in `check_root_change`: it fits, and within the budget's bounds.
				p.epoch_budget =
					scale_budget(p.epoch_budget, p.epoch_length, v).unwrap_or(p.epoch_budget);
				p.epoch_length = v;
			}),
			EpochBudget(v) => pol(&|p| p.epoch_budget = v),
			CheckpointInterval(v) => audit(&|p| p.checkpoint_interval = v),
			SpotChecks(v) => audit(&|p| p.spot_checks = v),
			AuditDrawDelay(v) => audit(&|p| p.draw_delay = v),
			ChallengeWindow(v) => audit(&|p| p.challenge_window = v),
			DisputeMoveWindow(v) => audit(&|p| p.move_window = v),
			Arbiters(v) => audit(&|p| p.arbiters = v),
			ChallengeBond(v) => audit(&|p| p.challenge_bond = v),
			FraudSlash(v) => audit(&|p| p.fraud_slash = v),
			MinDailyQuota(v) => free_tier(&|p| p.min_daily_quota = v),
			MaxDailyQuota(v) => free_tier(&|p| p.max_daily_quota = v),
			PowDifficulty(v) => free_tier(&|p| p.pow_difficulty = v),
			PowWindow(v) => free_tier(&|p| p.pow_window = v),
			MaxFreePerBlock(v) => free_tier(&|p| p.max_free_per_block = v),
			AnnualInflation(v) => economics(&|e| e.annual_inflation = v),
			ValidatorRewardShare(v) => economics(&|e| e.validator_share = v),
			PreparePeriod(v) => timings(&|t| t.prepare_period = v),
			DecisionPeriod(v) => timings(&|t| t.decision_period = v),
			ConfirmPeriod(v) => timings(&|t| t.confirm_period = v),
			MinEnactmentPeriod(v) => timings(&|t| t.min_enactment_period = v),
			InferenceCheckRate(v) => inference(&|p| p.check_rate = v),
			InferenceChallengeBond(v) => inference(&|p| p.challenge_bond = v),
			InferenceArbiters(v) => inference(&|p| p.arbiters = v),
			InferenceArbitrationWindow(v) => inference(&|p| p.arbitration_window = v),
			ServerFraudSlash(v) => inference(&|p| p.fraud_slash = v),
			InferenceChallengerShare(v) => inference(&|p| p.challenger_share = v),
			InferenceArbiterFee(v) => inference(&|p| p.arbiter_fee = v),
		}
	}
}
