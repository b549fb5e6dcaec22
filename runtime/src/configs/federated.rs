//! Federated learning: jobs trained in rounds by participants whose data stay home; each
//! participant's privacy budget (ε) is charged when it joins.

use crate::{Balances, Jobs, Runtime, RuntimeHoldReason};
use frame_support::traits::{ConstU32, ConstU64};

impl pallet_federated::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Jobs = Jobs;
	/// Secure aggregation's cost grows with the square of the participants; 64 keeps a round
	/// within a few seconds of key agreement on a CPU.
	type MaxParticipants = ConstU32<64>;
	type MaxRounds = ConstU32<100>;
	type MaxEndpointLen = ConstU32<128>;
	/// ε = 10 over all the jobs an account joins, unless it sets its own budget.
	type DefaultPrivacyBudget = ConstU64<10_000>;
	type WeightInfo = pallet_federated::weights::SubstrateWeight<Runtime>;
}
