//! The Proof-of-Learning protocol: model registry, training jobs, verification and rewards.
//!
//! Their parameters' defaults and bounds are in `parameters.rs`; governance changes them.

use super::parameters::{AuditDefaults, JobDefaults, PolDefaults};
use super::MiningPoolAccount;
use crate::{
	Balances, BlockNumber, Federated, FreeTier, Hash, Jobs, PolRewards, Registry, Runtime,
	RuntimeHoldReason, System, TrainingAudit,
};
use codec::Encode;
use frame_support::{parameter_types, traits::ConstU32};
use sp_runtime::{
	traits::{BlakeTwo256, Hash as _},
	Perbill,
};

parameter_types! {
	/// Half a fraud slash pays whoever proved the fraud, half is burned: a cheating miner that
	/// challenges itself through another account still loses the burned half.
	pub const FraudChallengerShare: Perbill = Perbill::from_percent(50);
	/// A creator who misses its validation reveal pays the worker a fifth of the reward, not
	/// all of it: the worker has shown a hash, not work.
	pub const CreatorForfeitShare: Perbill = Perbill::from_percent(20);
	/// A creator bonds a fifth of the reward with each job; a trap (a validation set on which
	/// not even the base can be evaluated) pays the reward and the bond to the miner.
	pub const CreatorBondShare: Perbill = Perbill::from_percent(20);
	/// A job's reward counts towards its epoch points up to 1 000 BLY: beyond that, a creator
	/// and a miner who are one party would buy epoch share for the 10 % verifier fee.
	pub const PointsEscrowCap: crate::Balance = 1_000 * crate::currency::BLY;
	/// A job earns points and moves its model's head only with a reward of 100 BLY or more:
	/// moving the head costs the jobs in flight from it their points, so it costs at least a
	/// 10 BLY verifier fee.
	pub const MinPointsEscrow: crate::Balance = 100 * crate::currency::BLY;
	/// One miner claims at most a quarter of an epoch's budget; the rest stays in the pool.
	pub const MaxEpochShare: Perbill = Perbill::from_percent(25);
}

impl pallet_model_registry::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	/// 0.1 BLY an entry (its key included) and 1 mBLY a byte of its value: a model of 64 layers
	/// is about 7 BLY.
	type DepositPerItem = frame_support::traits::ConstU128<{ crate::currency::DEPOSIT_PER_ITEM }>;
	type DepositPerByte = frame_support::traits::ConstU128<{ crate::currency::DEPOSIT_PER_BYTE }>;
	type MaxModelsPerOwner = ConstU32<64>;
	type MaxDatasetsPerOwner = ConstU32<256>;
	type MaxVersionsPerModel = ConstU32<100_000>;
	type WeightInfo = pallet_model_registry::weights::SubstrateWeight<Runtime>;
}

impl pallet_jobs::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	// Traced results are audited first; the audit hands them on to scoring.
	type Verification = TrainingAudit;
	type CommitGate = Federated;
	// CPU jobs' results must carry a training trace: the audit re-runs it.
	type RequireTrace = frame_support::traits::ConstBool<true>;
	type DefaultParams = JobDefaults;
	type MaxActiveJobsPerWorker = ConstU32<16>;
	type MaxJobsPerCreator = ConstU32<64>;
	type MaxExpiriesPerBlock = ConstU32<32>;
	type CreatorForfeitShare = CreatorForfeitShare;
	type CreatorBondShare = CreatorBondShare;
	type WeightInfo = pallet_jobs::weights::SubstrateWeight<Runtime>;
}

/// Committee and spot-check randomness: the BABE VRF outputs of this block and of its parent.
///
/// A draw runs in the block after the one holding the commitment it depends on (a reveal, a
/// traced result). A VRF output is fixed by its author's key, the slot and the epoch's
/// randomness: an author cannot grind it by choosing a block's contents, as it could a block
/// hash. Two consecutive outputs, because each alone is known in advance to one author: the
/// commitment block's author does not know the next block's output, and the next block's author
/// (who could time a transaction into its predecessor) does not know the predecessor's.
///
/// What is left (docs/protocol.md, "Verification"): the draw block's author can throw a draw
/// away and take one of a few other seeds — withhold its block (giving it up), or build on a
/// rival of the reveal block (every slot has a secondary author besides any primary winners; a
/// primary draw author still wins the fork choice, so this one is sometimes free); and a
/// validator holding two consecutive slots knows their seed beforehand and can choose to put a
/// reveal in the first of them.
/// `runtime/src/tests.rs` measures the first against the block hash an Aura author ground.
pub struct VrfRandomness;
impl frame_support::traits::Randomness<Hash, BlockNumber> for VrfRandomness {
	fn random(subject: &[u8]) -> (Hash, BlockNumber) {
		let parent = pallet_babe::AuthorVrfRandomness::<Runtime>::get();
		let seed = match this_block_vrf() {
			// `parent` is `None` only in block 1: the genesis block has no VRF output.
			Some(this) => BlakeTwo256::hash_of(&(b"bly/vrf", subject, parent, this)),
			// A block without a VRF output: never produced by this chain's BABE configuration
			// (secondary slots carry one), but root could plan plain secondary slots
			// (`Babe::plan_config_change`); those blocks draw from the parent hash, as before BABE.
			None => BlakeTwo256::hash_of(&(b"bly/hash", subject, System::parent_hash(), parent)),
		};
		(seed, System::block_number())
	}
}

/// This block's VRF pre-output, from its BABE pre-digest. A VRF has one pre-output per key and
/// input (the slot and the epoch's randomness), and the client checked its proof before executing
/// the block, so these bytes are as fixed as the output BABE derives from them at the end of the
/// block, without that derivation's curve arithmetic in every draw. Read from the header's digest
/// (not `pallet_babe::Initialized`, which BABE clears in `on_finalize`), so any hook may draw.
pub fn this_block_vrf() -> Option<[u8; 32]> {
	use sp_consensus_babe::digests::CompatibleDigestItem;
	let pre_digest = System::digest().logs.iter().find_map(|log| log.as_babe_pre_digest())?;
	pre_digest.vrf_signature()?.pre_output.encode().try_into().ok()
}

impl pallet_pol_rewards::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type Jobs = Jobs;
	type Randomness = VrfRandomness;
	type MiningPool = MiningPoolAccount;
	type DefaultParams = PolDefaults;
	type Contributions = FreeTier;
	// Admitting a model decides whom the mining pool pays: root referenda only, as the epoch
	// budget itself.
	type RewardOrigin = frame_system::EnsureRoot<crate::AccountId>;
	type MaxRewardedModels = ConstU32<64>;
	type PointsEscrowCap = PointsEscrowCap;
	type MinPointsEscrow = MinPointsEscrow;
	type MaxEpochShare = MaxEpochShare;
	type MaxVerifiers = ConstU32<256>;
	type MaxAssignmentsPerVerifier = ConstU32<32>;
	type MaxDeadlinesPerBlock = ConstU32<16>;
	type WeightInfo = pallet_pol_rewards::weights::SubstrateWeight<Runtime>;
}

impl pallet_training_audit::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type Jobs = Jobs;
	type Next = PolRewards;
	type Verifiers = PolRewards;
	type Randomness = VrfRandomness;
	type DefaultParams = AuditDefaults;
	type ChallengerShare = FraudChallengerShare;
	type MaxDisputes = ConstU32<8>;
	// A window closing penalises up to 16 silent checkers: a few a block keep on_initialize
	// well inside the block (a busier block is finished in the next ones).
	type MaxDeadlinesPerBlock = ConstU32<4>;
	type WeightInfo = pallet_training_audit::weights::SubstrateWeight<Runtime>;
}
