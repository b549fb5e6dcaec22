//! On-chain governance with polkadot-sdk's OpenGov pallets: referenda on two tracks, conviction
//! voting (BLY locked, not spent), the scheduler enacting passed proposals, preimages holding
//! the proposed calls; plus Blyan's parameter table (`pallet-governance`) and team vesting.
//!
//! | track | origin | for | decision deposit | approval | support (turnout) |
//! |---|---|---|---|---|---|
//! | 0 `root` | Root | runtime upgrades, anything | 1 000 BLY | 100 % → 50 % | 50 % → 0 over ¾ of the decision period |
//! | 1 `parameters` | `Governance::ParameterAdmin` | `governance.set_parameter` only | 100 BLY | 100 % → 50 % | 20 % → 0 over ½ of the decision period |
//!
//! Periods (prepare, decision, confirm, enactment) are governance parameters themselves
//! (`Governance::Timings`), shared by both tracks.

use super::parameters::{BlyanBounds, EconomicsDefaults, TimingDefaults};
use super::RuntimeBlockWeights;
use crate::{
	currency::*, time::*, AccountId, Balance, Balances, BlockNumber, FreeTier, Inference, Jobs,
	OriginCaller, PolRewards, Preimage, Referenda, Runtime, RuntimeCall, RuntimeEvent,
	RuntimeHoldReason, RuntimeOrigin, System, TrainingAudit,
};
use alloc::borrow::Cow;
use frame_support::{
	parameter_types,
	traits::{
		tokens::currency::ActiveIssuanceOf, AsEnsureOriginWithArg, EitherOfDiverse,
		EqualPrivilegeOnly, LinearStoragePrice, WithdrawReasons,
	},
	weights::Weight,
};
use frame_system::{EnsureRoot, EnsureSigned};
use pallet_governance::EnsureParameterAdmin;
use pallet_referenda::{Curve, Track, TrackInfo};
use sp_runtime::{traits::ConvertInto, Perbill};

parameter_types! {
	pub const PreimageBaseDeposit: Balance = BLY;
	/// A runtime of ~1.5 MB holds ~15 BLY while it is proposed.
	pub const PreimageByteDeposit: Balance = 10 * MICRO_BLY;
	pub const PreimageHoldReason: RuntimeHoldReason =
		RuntimeHoldReason::Preimage(pallet_preimage::HoldReason::Preimage);
}

impl pallet_preimage::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = pallet_preimage::weights::SubstrateWeight<Runtime>;
	type Currency = Balances;
	type ManagerOrigin = EnsureRoot<AccountId>;
	type Consideration = frame_support::traits::fungible::HoldConsideration<
		AccountId,
		Balances,
		PreimageHoldReason,
		LinearStoragePrice<PreimageBaseDeposit, PreimageByteDeposit, Balance>,
	>;
}

parameter_types! {
	/// Enacted proposals may use most of a block; `set_code` is charged half of one
	/// (`BlyanSystemWeights`), so a runtime upgrade and the fetch of its preimage fit.
	pub MaximumSchedulerWeight: Weight = Perbill::from_percent(80) * RuntimeBlockWeights::get().max_block;
}

impl pallet_scheduler::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeOrigin = RuntimeOrigin;
	type PalletsOrigin = OriginCaller;
	type RuntimeCall = RuntimeCall;
	type MaximumWeight = MaximumSchedulerWeight;
	// Only referenda schedule (through their own origin checks); nobody schedules directly.
	type ScheduleOrigin = EnsureRoot<AccountId>;
	type MaxScheduledPerBlock = frame_support::traits::ConstU32<50>;
	type WeightInfo = pallet_scheduler::weights::SubstrateWeight<Runtime>;
	type OriginPrivilegeCmp = EqualPrivilegeOnly;
	type Preimages = Preimage;
	type BlockNumberProvider = System;
}

parameter_types! {
	/// How long a conviction-1 vote stays locked after the referendum ends; higher convictions
	/// lock for multiples of it.
	pub const VoteLockingPeriod: BlockNumber = 7 * DAYS;
}

impl pallet_conviction_voting::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = pallet_conviction_voting::weights::SubstrateWeight<Runtime>;
	type Currency = Balances;
	type Polls = Referenda;
	type MaxTurnout = ActiveIssuanceOf<Balances, AccountId>;
	type MaxVotes = frame_support::traits::ConstU32<512>;
	type VoteLockingPeriod = VoteLockingPeriod;
	type BlockNumberProvider = System;
	type VotingHooks = ();
}

parameter_types! {
	pub const SubmissionDeposit: Balance = 10 * BLY;
	pub const UndecidingTimeout: BlockNumber = 14 * DAYS;
}

/// Track ids.
pub const ROOT_TRACK: u16 = 0;
/// Track of `Governance::ParameterAdmin`.
pub const PARAMETERS_TRACK: u16 = 1;

/// Length of a track name (`pallet-referenda`'s default, which it does not export).
const TRACK_NAME_LEN: usize = 25;

/// A track name as `pallet-referenda` stores it: UTF-8, zero-padded.
const fn track_name(name: &str) -> [u8; TRACK_NAME_LEN] {
	let mut out = [0u8; TRACK_NAME_LEN];
	let bytes = name.as_bytes();
	let mut i = 0;
	while i < bytes.len() && i < out.len() {
		out[i] = bytes[i];
		i += 1;
	}
	out
}

/// The two tracks, with the periods in force (`Governance::Timings`).
pub struct BlyanTracks;
impl pallet_referenda::TracksInfo<Balance, BlockNumber> for BlyanTracks {
	type Id = u16;
	type RuntimeOrigin = OriginCaller;

	fn tracks() -> impl Iterator<Item = Cow<'static, Track<u16, Balance, BlockNumber>>> {
		let t = pallet_governance::Pallet::<Runtime>::timings();
		let approval = Curve::LinearDecreasing {
			length: Perbill::one(),
			floor: Perbill::from_percent(50),
			ceil: Perbill::one(),
		};
		let track = |id, name, max_deciding, decision_deposit, min_support| Track {
			id,
			info: TrackInfo {
				name: track_name(name),
				max_deciding,
				decision_deposit,
				prepare_period: t.prepare_period,
				decision_period: t.decision_period,
				confirm_period: t.confirm_period,
				min_enactment_period: t.min_enactment_period,
				min_approval: approval.clone(),
				min_support,
			},
		};
		[
			track(
				ROOT_TRACK,
				"root",
				1,
				1_000 * BLY,
				Curve::LinearDecreasing {
					length: Perbill::from_percent(75),
					floor: Perbill::zero(),
					ceil: Perbill::from_percent(50),
				},
			),
			track(
				PARAMETERS_TRACK,
				"parameters",
				10,
				100 * BLY,
				Curve::LinearDecreasing {
					length: Perbill::from_percent(50),
					floor: Perbill::zero(),
					ceil: Perbill::from_percent(20),
				},
			),
		]
		.into_iter()
		.map(Cow::Owned)
	}

	fn track_for(origin: &Self::RuntimeOrigin) -> Result<u16, ()> {
		match origin {
			OriginCaller::system(frame_system::RawOrigin::Root) => Ok(ROOT_TRACK),
			OriginCaller::Governance(pallet_governance::Origin::ParameterAdmin) => {
				Ok(PARAMETERS_TRACK)
			}
			_ => Err(()),
		}
	}
}

impl pallet_referenda::Config for Runtime {
	type RuntimeCall = RuntimeCall;
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = pallet_referenda::weights::SubstrateWeight<Runtime>;
	type Scheduler = crate::Scheduler;
	type Currency = Balances;
	type SubmitOrigin = AsEnsureOriginWithArg<EnsureSigned<AccountId>>;
	type CancelOrigin = EnsureRoot<AccountId>;
	type KillOrigin = EnsureRoot<AccountId>;
	// Deposits of killed referenda are burned.
	type Slash = ();
	type Votes = pallet_conviction_voting::VotesOf<Runtime>;
	type Tally = pallet_conviction_voting::TallyOf<Runtime>;
	type SubmissionDeposit = SubmissionDeposit;
	type MaxQueued = frame_support::traits::ConstU32<100>;
	type UndecidingTimeout = UndecidingTimeout;
	type AlarmInterval = frame_support::traits::ConstU32<1>;
	type Tracks = BlyanTracks;
	type Preimages = Preimage;
	type BlockNumberProvider = System;
}

impl pallet_governance::Config for Runtime {
	type Balance = Balance;
	type Jobs = Jobs;
	type Pol = PolRewards;
	type Audit = TrainingAudit;
	type FreeTier = FreeTier;
	type Inference = Inference;
	type Bounds = BlyanBounds;
	type AdminOrigin = EitherOfDiverse<EnsureRoot<AccountId>, EnsureParameterAdmin>;
	// The root track's periods, inflation and the epoch budget: root referenda only, each at
	// most once a week and by at most a factor of two.
	type RootOrigin = EnsureRoot<AccountId>;
	type RootChangeCooldown = frame_support::traits::ConstU32<{ 7 * crate::time::DAYS }>;
	type DefaultEconomics = EconomicsDefaults;
	type DefaultTimings = TimingDefaults;
	type WeightInfo = pallet_governance::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
	pub const MinVestedTransfer: Balance = BLY;
	pub UnvestedFundsAllowedWithdrawReasons: WithdrawReasons =
		WithdrawReasons::except(WithdrawReasons::TRANSFER | WithdrawReasons::RESERVE);
}

impl pallet_vesting::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type Currency = Balances;
	type BlockNumberToBalance = ConvertInto;
	type MinVestedTransfer = MinVestedTransfer;
	type WeightInfo = pallet_vesting::weights::SubstrateWeight<Runtime>;
	type UnvestedFundsAllowedWithdrawReasons = UnvestedFundsAllowedWithdrawReasons;
	type BlockNumberProvider = System;
	const MAX_VESTING_SCHEDULES: u32 = 28;
}

/// Team allocation vesting: nothing for a year (the cliff), then linearly over three more.
pub const TEAM_VESTING_CLIFF: BlockNumber = 365 * DAYS;
/// Length of the linear part of the team's vesting.
pub const TEAM_VESTING_LENGTH: BlockNumber = 3 * 365 * DAYS;
