//! Training fraud proofs: what a miner commits about *how* it trained, so that anyone can re-run a
//! part of the training and prove on chain that it was not done as claimed.
//!
//! While training, the miner records a [`TrainingState`] every `interval` steps (the weights' root,
//! a hash of the optimizer state, the data sampler's position and the batch the step drew) and
//! commits the Merkle root of their hashes ([`TraceCommitment`]) with its result. Segment `i` runs
//! from checkpoint `i` to checkpoint `i + 1`; re-executing it from checkpoint `i` on the
//! deterministic CPU path must give checkpoint `i + 1` bit for bit.

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_core::{ConstU32, H256};
use sp_runtime::{
	traits::{BlakeTwo256, Hash as _},
	BoundedVec,
};

use crate::pol::{Cid, JobId};

/// Longest Merkle proof a trace may need: 2³² leaves.
pub const MAX_PROOF_LEN: u32 = 32;
/// A Merkle proof of one checkpoint in a trace (sibling hashes, leaf to root).
pub type TraceProof = BoundedVec<H256, ConstU32<MAX_PROOF_LEN>>;

/// Training state after `step` steps: what a checkpoint and a bisection move commit to.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct TrainingState {
	pub step: u32,
	/// The registry's weight-set root of the weights after `step` (the base version's at step 0,
	/// the result's after the last step).
	pub weights: H256,
	/// Hash of the optimizer state (every moment tensor and step count, in parameter order);
	/// zero before the first step.
	pub optimizer: H256,
	/// Position (in 32-bit words) of the job's ChaCha20 data sampler after `step`.
	pub rng_word_pos: u128,
	/// Hash of the data batch indices the step drew (zero at step 0).
	pub batch: H256,
}

impl TrainingState {
	/// The hash a trace leaf or a bisection move carries.
	pub fn hash(&self) -> H256 {
		BlakeTwo256::hash(&self.encode())
	}

	/// The state before any training: the base version's weights, no optimizer state, the
	/// sampler at its start.
	pub fn initial(base_weights: H256) -> Self {
		Self {
			step: 0,
			weights: base_weights,
			optimizer: H256::zero(),
			rng_word_pos: 0,
			batch: H256::zero(),
		}
	}
}

/// A segment's two checkpoints as a challenger shows them: each with its Merkle proof.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct SegmentCheckpoints {
	pub start: TrainingState,
	pub start_proof: TraceProof,
	pub end: TrainingState,
	pub end_proof: TraceProof,
}

/// A miner's commitment to its training trace, part of its committed result.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct TraceCommitment {
	/// Merkle root over the hashes of the checkpoints at steps `0, interval, 2·interval, …, steps`.
	pub root: H256,
	/// Training steps in all (the job's `steps` hyper-parameter).
	pub steps: u32,
	/// Steps between checkpoints (at most the chain's `checkpoint_interval`).
	pub interval: u32,
	/// IPFS CID of the trace document: every checkpoint's state, batch indices and state blob.
	pub cid: Cid,
}

/// Segments (a checkpoint to the next) of a trace of `steps` with a checkpoint every
/// `interval` (none for a zero interval).
pub fn segments(steps: u32, interval: u32) -> u32 {
	if interval == 0 {
		return 0;
	}
	steps.div_ceil(interval)
}

/// The step checkpoint `index` of such a trace is taken after.
pub fn checkpoint_step(steps: u32, interval: u32, index: u32) -> u32 {
	index.saturating_mul(interval).min(steps)
}

impl TraceCommitment {
	/// Segments (a checkpoint to the next) of the trace.
	pub fn segments(&self) -> u32 {
		segments(self.steps, self.interval)
	}

	/// Checkpoints (leaves) of the trace: one more than the segments.
	pub fn leaves(&self) -> u32 {
		self.segments().saturating_add(1)
	}

	/// The step checkpoint `index` is taken after.
	pub fn checkpoint_step(&self, index: u32) -> u32 {
		checkpoint_step(self.steps, self.interval, index)
	}
}

/// Merkle root of trace leaves (binary Merkle tree over blake2-256, as `binary-merkle-tree`).
pub fn trace_root(leaves: &[H256]) -> H256 {
	binary_merkle_tree::merkle_root_raw::<BlakeTwo256, _>(leaves.iter().copied())
}

/// Merkle proof of leaf `index` among `leaves`.
pub fn trace_proof(leaves: &[H256], index: u32) -> Vec<H256> {
	binary_merkle_tree::merkle_proof_raw::<BlakeTwo256, _>(leaves.iter().copied(), index).proof
}

/// Whether `leaf` is leaf `index` of the `leaves`-leaf trace under `root`.
pub fn verify_leaf(root: &H256, leaves: u32, index: u32, leaf: H256, proof: &[H256]) -> bool {
	binary_merkle_tree::verify_proof::<BlakeTwo256, _, _>(
		root,
		proof.iter().copied(),
		leaves,
		index,
		binary_merkle_tree::Leaf::Hash(leaf),
	)
}

/// The `steps` of a job's hyper-parameter JSON (`{"steps": 60, …}`), read without a JSON
/// library: the runtime only needs this one number to hold a trace to the job's length.
pub fn hyperparam_steps(json: &[u8]) -> Option<u32> {
	const KEY: &[u8] = b"\"steps\"";
	let at = json.windows(KEY.len()).position(|w| w == KEY)?;
	let mut rest = json[at + KEY.len()..].iter().skip_while(|c| c.is_ascii_whitespace());
	if rest.next() != Some(&b':') {
		return None;
	}
	let digits: Vec<u8> = rest
		.skip_while(|c| c.is_ascii_whitespace())
		.take_while(|c| c.is_ascii_digit())
		.copied()
		.collect();
	if digits.is_empty() || digits.len() > 9 {
		return None;
	}
	digits.iter().try_fold(0u32, |n, d| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))
}

/// The bonded verifiers, as the audit pallet sees them (implemented by the PoL pallet).
pub trait VerifierSet<AccountId> {
	/// Up to `count` distinct verifiers able to take work, drawn stake-weighted with `seed`,
	/// none of them in `exclude`.
	fn draw(seed: &[u8], count: u32, exclude: &[AccountId]) -> Vec<AccountId>;
	/// Takes a verifier's penalty share of its bond for an audit duty left undone or done wrong.
	fn penalise(job: JobId, verifier: &AccountId);

	/// Benchmarks: fills the verifier set (every account eligible for draws); returns it.
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_full_set() -> Vec<AccountId>;
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn proofs_verify_every_leaf_and_nothing_else() {
		for n in [1u32, 2, 3, 7, 8, 13] {
			let leaves: Vec<H256> = (0..n).map(|i| BlakeTwo256::hash(&i.encode())).collect();
			let root = trace_root(&leaves);
			for i in 0..n {
				let proof = trace_proof(&leaves, i);
				assert!(verify_leaf(&root, n, i, leaves[i as usize], &proof), "{n} leaves, {i}");
				assert!(!verify_leaf(&root, n, i, H256::repeat_byte(7), &proof));
				if n > 1 {
					let other = (i + 1) % n;
					assert!(!verify_leaf(&root, n, other, leaves[i as usize], &proof));
				}
			}
		}
	}

	#[test]
	fn steps_are_read_from_hyperparameters() {
		assert_eq!(hyperparam_steps(br#"{"steps":60,"batch_size":8}"#), Some(60));
		assert_eq!(hyperparam_steps(br#"{ "batch_size": 8, "steps" : 1234 }"#), Some(1234));
		assert_eq!(hyperparam_steps(br#"{"batch_size":8}"#), None);
		assert_eq!(hyperparam_steps(br#"{"steps":"60"}"#), None);
		assert_eq!(hyperparam_steps(br#"{"steps":99999999999}"#), None);
	}

	#[test]
	fn trace_geometry() {
		let t = TraceCommitment { root: H256::zero(), steps: 60, interval: 8, cid: Cid::default() };
		assert_eq!((t.segments(), t.leaves()), (8, 9));
		assert_eq!((t.checkpoint_step(7), t.checkpoint_step(8)), (56, 60));
	}
}
