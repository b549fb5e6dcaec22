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

/// Merkle root of trace leaves ([`crate::merkle::root`]).
pub fn trace_root(leaves: &[H256]) -> H256 {
	crate::merkle::root(leaves)
}

/// Merkle proof of leaf `index` among `leaves` ([`crate::merkle::proof`]).
pub fn trace_proof(leaves: &[H256], index: u32) -> Vec<H256> {
	crate::merkle::proof(leaves, index)
}

pub use crate::merkle::verify_leaf;

/// A duty a verifier was drawn for, and can be penalised for leaving undone or doing wrong.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VerifierDuty {
	/// A job's PoL committee seat, or an audit's spot check or arbitration.
	Job(JobId),
	/// An arbiter's seat on an inference challenge (`pallet-inference`'s `ChallengeId`).
	InferenceChallenge(u32),
}

/// The bonded verifiers, as the audit and inference pallets see them (implemented by the PoL
/// pallet).
pub trait VerifierSet<AccountId> {
	/// Up to `count` distinct verifiers able to take work, drawn stake-weighted with `seed`,
	/// none of them in `exclude`.
	fn draw(seed: &[u8], count: u32, exclude: &[AccountId]) -> Vec<AccountId>;
	/// Takes a verifier's penalty share of its bond for a duty left undone or done wrong.
	fn penalise(duty: VerifierDuty, verifier: &AccountId);

	/// Benchmarks: fills the verifier set (every account eligible for draws); returns it.
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_full_set() -> Vec<AccountId>;
}

#[cfg(test)]
mod tests {
	use super::*;

	fn leaves(n: u32) -> Vec<H256> {
		(0..n).map(|i| BlakeTwo256::hash(&i.encode())).collect()
	}

	/// Every row of the tree `trace_root` builds, leaves first; proofs read off them in
	/// O(log n) (rebuilding the tree per proof would make the exhaustive test quadratic).
	fn rows(leaves: &[H256]) -> Vec<Vec<H256>> {
		let mut rows = vec![leaves.to_vec()];
		while rows.last().unwrap().len() > 1 {
			let next = rows
				.last()
				.unwrap()
				.chunks(2)
				.map(|pair| match pair {
					[a, b] => BlakeTwo256::hash(&[a.as_bytes(), b.as_bytes()].concat()),
					[a] => *a,
					_ => unreachable!(),
				})
				.collect();
			rows.push(next);
		}
		rows
	}

	fn proof_from_rows(rows: &[Vec<H256>], index: u32) -> Vec<H256> {
		let mut proof = Vec::new();
		let mut position = index as usize;
		for row in &rows[..rows.len() - 1] {
			if let Some(sibling) = row.get(position ^ 1) {
				proof.push(*sibling);
			}
			position /= 2;
		}
		proof
	}

	#[test]
	fn a_proof_verifies_at_its_own_index_only_for_every_leaf_count_to_1024() {
		for n in 1u32..=1024 {
			let leaves = leaves(n);
			let rows = rows(&leaves);
			let root = trace_root(&leaves);
			assert_eq!(rows.last().unwrap()[0], root, "{n} leaves: rows as trace_root builds");
			// Every pair of indices for small trees; for larger ones every leaf against its
			// neighbours, the row ends, its mirror and a far index (the shapes the library's
			// verifier confused: a promoted last node taken for a right child).
			let exhaustive = n <= 64;
			for i in 0..n {
				let proof = proof_from_rows(&rows, i);
				if exhaustive {
					assert_eq!(proof, trace_proof(&leaves, i), "{n} leaves, proof of {i}");
				}
				let leaf = leaves[i as usize];
				assert!(verify_leaf(&root, n, i, leaf, &proof), "{n} leaves, {i} at its index");
				assert!(!verify_leaf(&root, n, i, H256::repeat_byte(7), &proof));
				assert!(!verify_leaf(&root, n, n, leaf, &proof), "index out of range");
				let others: Vec<u32> = if exhaustive {
					(0..n).collect()
				} else {
					let mut v = vec![0, 1, n - 2, n - 1, i ^ 1, i.saturating_sub(1), i + 1];
					v.extend([(i + n / 2) % n, n - 1 - i, (i * 7 + 3) % n]);
					v
				};
				for j in others.into_iter().filter(|&j| j != i && j < n) {
					assert!(!verify_leaf(&root, n, j, leaf, &proof), "{n} leaves: {i} at {j}");
				}
				// A proof with a sibling too many or too few fails.
				let mut longer = proof.clone();
				longer.push(root);
				assert!(!verify_leaf(&root, n, i, leaf, &longer));
				if !proof.is_empty() {
					assert!(!verify_leaf(&root, n, i, leaf, &proof[..proof.len() - 1]));
				}
			}
		}
	}

	#[test]
	fn the_library_verifier_accepted_a_leaf_at_other_indices_and_this_one_does_not() {
		// The case the audit was attacked with: 5 checkpoints, the last one's proof.
		let leaves = leaves(5);
		let root = trace_root(&leaves);
		let proof = trace_proof(&leaves, 4);
		let library = |index| {
			binary_merkle_tree::verify_proof::<BlakeTwo256, _, _>(
				&root,
				proof.iter().copied(),
				5,
				index,
				binary_merkle_tree::Leaf::Hash(leaves[4]),
			)
		};
		assert!(library(1) && library(3), "the library's verifier places leaf 4 at 1 and 3");
		assert!(verify_leaf(&root, 5, 4, leaves[4], &proof));
		for j in 0..4 {
			assert!(!verify_leaf(&root, 5, j, leaves[4], &proof), "leaf 4 at {j}");
		}
	}

	#[test]
	fn trace_geometry() {
		let t = TraceCommitment { root: H256::zero(), steps: 60, interval: 8, cid: Cid::default() };
		assert_eq!((t.segments(), t.leaves()), (8, 9));
		assert_eq!((t.checkpoint_step(7), t.checkpoint_step(8)), (56, 60));
	}
}
