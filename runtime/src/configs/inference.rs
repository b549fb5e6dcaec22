//! Inference: servers announce the layer spans of accepted versions they serve (with a bond);
//! clients pay per token through signed receipts the servers settle in batches; free receipts
//! count against the free tier's quota; a server's signed answers can be challenged, and its
//! bond slashed once verifiers drawn as arbiters re-execute them and find them wrong.

use crate::{
	configs::parameters::InferenceDefaults,
	currency::{self, BLY},
	time::HOURS,
	Balances, FreeTier, PolRewards, Registry, Runtime, RuntimeHoldReason, Signature,
};
use frame_support::traits::{ConstU128, ConstU32};

impl pallet_inference::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Registry;
	type FreeQuota = FreeTier;
	type Signature = Signature;
	type Signer = <Signature as sp_runtime::traits::Verify>::Signer;
	/// 100 BLY: enough that spamming the server list costs, small for a GPU owner.
	type MinServerBond = ConstU128<{ 100 * BLY }>;
	/// Servers renew every hour or so (the worker renews at half this); a vanished server stops
	/// being routed to within two hours.
	type AnnouncementTtl = ConstU32<{ 2 * HOURS }>;
	type MaxServers = ConstU32<1_024>;
	type MaxEndpointLen = ConstU32<128>;
	type MaxReceiptsPerBatch = ConstU32<256>;
	/// One `SettledNonce` entry (its keys count in the entry's part, its `u64` value per
	/// byte): 0.108 BLY, held from a client for each server it is first settled at.
	type NonceDeposit = ConstU128<{ currency::deposit(1, 8) }>;
	/// Challenges' arbiters are the PoL verifiers, drawn by stake.
	type Verifiers = PolRewards;
	type DefaultParams = InferenceDefaults;
	/// A CID in text form (CIDv1 base32 of a sha2-256 is 59 bytes).
	type MaxEvidenceLen = ConstU32<128>;
	/// Arbiters are drawn as PoL committees and audit checkers are: from BABE's VRF outputs
	/// of the draw block and its parent, which no block author can grind.
	type Randomness = crate::configs::pol::VrfRandomness;
	/// Each draw reads the verifier set (a full one: 16 seats over 256 verifiers); a flood of
	/// challenges (10 BLY bonded each) waits its turn rather than filling blocks.
	type MaxDrawsPerBlock = ConstU32<4>;
	type WeightInfo = pallet_inference::weights::SubstrateWeight<Runtime>;
}
