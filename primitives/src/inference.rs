//! What the inference pallet shares with the worker and asks of the free tier: layer spans,
//! receipts and the payload a client signs, stage commitments and the Merkle root of a route's
//! commitments a receipt pays for.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::{
	traits::{BlakeTwo256, Hash as _},
	DispatchResult,
};

use crate::pol::VersionId;

/// A contiguous span of a version's registry layers, `[start, end)` (layer 0 is the embedding,
/// the last one the final norm and head), served by one pipeline stage.
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
pub struct LayerSpan {
	pub start: u16,
	pub end: u16,
}

impl LayerSpan {
	/// Whether the span is non-empty and within `layers`.
	pub fn is_valid(&self, layers: u32) -> bool {
		self.start < self.end && u32::from(self.end) <= layers
	}
}

/// What a client signs for one request a server answered: the server is paid
/// `(tokens_in + tokens_out) · price_per_token` from the client's balance, or, if `free`, the
/// request counts against the client's free-tier quota. `nonce` orders a client's receipts to
/// one server: each must be above the last one settled. `commitments` is the Merkle root
/// ([`commitments_root`]) of what every stage of the request's route signed last of its session
/// (a [`ChunkCommitment`] each, in route order): the receipt, in the block that settles it, says
/// which answers were paid for, and the server checks that its own commitment is among them
/// before it takes the receipt.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct InferenceReceipt<AccountId, Balance> {
	pub client: AccountId,
	pub server: AccountId,
	pub version: VersionId,
	pub nonce: u64,
	pub tokens_in: u32,
	pub tokens_out: u32,
	pub price_per_token: Balance,
	pub free: bool,
	pub commitments: H256,
}

/// The bytes a client signs for `receipt` on the chain whose genesis hash is `genesis`
/// (so a receipt cannot be settled on another Blyan chain).
pub fn receipt_payload<AccountId: Encode, Balance: Encode>(
	genesis: &sp_core::H256,
	receipt: &InferenceReceipt<AccountId, Balance>,
) -> alloc::vec::Vec<u8> {
	(b"blyan/receipt", genesis, receipt).encode()
}

/// What a stage signs after each chunk it answers of an inference session: the running hash
/// (`transcript`) of every chunk's request and answer bytes at this stage, so its latest
/// signature commits to every answer it gave in the session. `bit_exact`: the stage computes on
/// the CPU, whose answers are the same bits on every machine; only such answers can be proven
/// wrong by re-executing them.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct ChunkCommitment<AccountId> {
	pub server: AccountId,
	pub version: VersionId,
	/// The registry layers `[start, end)` the stage computed.
	pub layers: (u16, u16),
	/// The session's id at this stage.
	pub session: [u8; 16],
	/// Positions the session holds after the chunk.
	pub positions: u32,
	pub transcript: [u8; 32],
	pub bit_exact: bool,
}

/// The bytes a stage signs for `commitment` on the chain whose genesis hash is `genesis`.
pub fn chunk_commitment_payload<AccountId: Encode>(
	genesis: &sp_core::H256,
	commitment: &ChunkCommitment<AccountId>,
) -> alloc::vec::Vec<u8> {
	(b"blyan/chunk", genesis, commitment).encode()
}

/// A stage commitment's leaf in a receipt's [`commitments_root`]: the blake2-256 hash of its
/// SCALE bytes, domain-separated.
pub fn commitment_leaf<AccountId: Encode>(commitment: &ChunkCommitment<AccountId>) -> H256 {
	BlakeTwo256::hash(&(b"blyan/commitment", commitment).encode())
}

/// The root of a route's commitments, one leaf per stage in route order ([`commitment_leaf`],
/// or zero for a stage that signed nothing): what a receipt carries in `commitments`. A stage
/// proves its own is in it with [`crate::merkle::verify_leaf`].
pub fn commitments_root(leaves: &[H256]) -> H256 {
	crate::merkle::root(leaves)
}

/// The free tier as the inference pallet sees it.
pub trait FreeQuota<AccountId> {
	/// Counts `count` free requests of `who` against today's quota, or refuses them all (no trust,
	/// or not enough quota left) without writing anything.
	fn consume(who: &AccountId, count: u32) -> DispatchResult;
	/// Free requests `who` may still make today.
	fn remaining(who: &AccountId) -> u32;
}

impl<AccountId> FreeQuota<AccountId> for () {
	fn consume(_: &AccountId, count: u32) -> DispatchResult {
		if count == 0 {
			Ok(())
		} else {
			Err(sp_runtime::DispatchError::Other("no free tier"))
		}
	}
	fn remaining(_: &AccountId) -> u32 {
		0
	}
}

/// What the arbiters of an inference challenge decided, from its `seats` and the reports in so
/// far: `Some(true)` once two thirds of the seats report the answer wrong, `Some(false)` once two
/// thirds report it right, `None` until then. One rule for the pallet, which closes on it, and
/// for the parties, who close (paying a fee) only when it holds.
pub fn arbitration_decision(seats: usize, wrong: usize, right: usize) -> Option<bool> {
	let two_thirds = |n: usize| seats > 0 && n.saturating_mul(3) >= seats.saturating_mul(2);
	if two_thirds(wrong) {
		Some(true)
	} else if two_thirds(right) {
		Some(false)
	} else {
		None
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn commitment(server: u64, transcript: u8) -> ChunkCommitment<u64> {
		ChunkCommitment {
			server,
			version: 1,
			layers: (0, 2),
			session: [7; 16],
			positions: 5,
			transcript: [transcript; 32],
			bit_exact: true,
		}
	}

	#[test]
	fn a_receipts_root_holds_each_stages_commitment_at_its_place_and_nothing_else() {
		let route = [commitment(1, 1), commitment(2, 2), commitment(3, 3)];
		let leaves: alloc::vec::Vec<H256> = route.iter().map(commitment_leaf).collect();
		let root = commitments_root(&leaves);
		for (i, leaf) in leaves.iter().enumerate() {
			let proof = crate::merkle::proof(&leaves, i as u32);
			assert!(crate::merkle::verify_leaf(&root, 3, i as u32, *leaf, &proof));
			// Not at another stage's place, nor in a root of another length.
			assert!(!crate::merkle::verify_leaf(&root, 3, (i as u32 + 1) % 3, *leaf, &proof));
			assert!(!crate::merkle::verify_leaf(&root, 2, i as u32, *leaf, &proof));
		}
		// Another answer (transcript) of the same stage is not in the root.
		let proof = crate::merkle::proof(&leaves, 1);
		let other = commitment_leaf(&commitment(2, 9));
		assert!(!crate::merkle::verify_leaf(&root, 3, 1, other, &proof));
		assert_ne!(commitment_leaf(&route[0]), commitment_leaf(&commitment(1, 2)));
		// A one-stage route's root is its leaf.
		assert_eq!(commitments_root(&leaves[..1]), leaves[0]);
	}

	#[test]
	fn two_thirds_of_the_seats_decide_and_nothing_less() {
		assert_eq!(arbitration_decision(0, 0, 0), None);
		assert_eq!(arbitration_decision(1, 1, 0), Some(true));
		assert_eq!(arbitration_decision(1, 0, 1), Some(false));
		assert_eq!(arbitration_decision(3, 2, 0), Some(true));
		assert_eq!(arbitration_decision(3, 1, 1), None);
		assert_eq!(arbitration_decision(3, 1, 2), Some(false));
		assert_eq!(arbitration_decision(4, 2, 2), None);
		assert_eq!(arbitration_decision(4, 3, 1), Some(true));
		assert_eq!(arbitration_decision(16, 10, 6), None);
		assert_eq!(arbitration_decision(16, 11, 0), Some(true));
	}
}
