//! Binary Merkle trees over blake2-256: training traces ([`crate::audit`]) and the stage
//! commitments an inference receipt pays for ([`crate::inference`]).

use alloc::vec::Vec;
use sp_core::H256;
use sp_runtime::traits::{BlakeTwo256, Hash as _};

/// Merkle root of `leaves` (binary Merkle tree over blake2-256, as `binary-merkle-tree` builds it).
pub fn root(leaves: &[H256]) -> H256 {
	binary_merkle_tree::merkle_root_raw::<BlakeTwo256, _>(leaves.iter().copied())
}

/// Merkle proof of leaf `index` among `leaves` (sibling hashes, leaf to root). Panics if
/// `index` is not below `leaves.len()` (as `binary_merkle_tree::merkle_proof_raw`).
pub fn proof(leaves: &[H256], index: u32) -> Vec<H256> {
	binary_merkle_tree::merkle_proof_raw::<BlakeTwo256, _>(leaves.iter().copied(), index).proof
}

/// Whether `leaf` is leaf `index` of the `leaves`-leaf tree under `root`.
///
/// The proof is walked along the one path the tree built by [`root`] gives `index`: at each
/// level the node is a right child (sibling on the left), a left child (sibling on the right), or
/// the last node of an odd row, promoted without a sibling; every sibling must be used and none
/// may be left over. `binary_merkle_tree::verify_proof` instead treats a promoted node as a right
/// child and stops when the proof runs out, so outside power-of-two trees a real leaf's proof
/// also passed at other indices, and a training-audit challenger could place a true checkpoint at a false step.
pub fn verify_leaf(root: &H256, leaves: u32, index: u32, leaf: H256, proof: &[H256]) -> bool {
	if index >= leaves {
		return false;
	}
	let mut siblings = proof.iter();
	let mut node = leaf;
	let (mut position, mut width) = (index, leaves);
	while width > 1 {
		let pair = if position % 2 == 1 {
			let Some(left) = siblings.next() else { return false };
			Some((*left, node))
		} else if position + 1 < width {
			let Some(right) = siblings.next() else { return false };
			Some((node, *right))
		} else {
			None // the last node of an odd row goes up as it is
		};
		if let Some((left, right)) = pair {
			let mut combined = [0u8; 64];
			combined[..32].copy_from_slice(left.as_bytes());
			combined[32..].copy_from_slice(right.as_bytes());
			node = BlakeTwo256::hash(&combined);
		}
		position /= 2;
		width = width.div_ceil(2);
	}
	siblings.next().is_none() && node == *root
}
