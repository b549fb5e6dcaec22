//! Working off an index of deadlines by block at a bounded rate: the one mechanism behind the
//! jobs pallet's timeouts and the PoL pallet's phase ends.
//!
//! Entries live in a map keyed by (block, id); a cursor remembers the first block not yet fully
//! worked off. Each block handles at most `budget` entries and reads at most
//! [`MAX_SCANNED_BLOCKS`] blocks of the index, so scheduling never has to refuse an entry: a
//! crowded block is simply finished in the blocks that follow.

use alloc::vec::Vec;
use sp_runtime::traits::{AtLeast32BitUnsigned, Saturating};

/// Most blocks of a deadline index looked at in one block (catching up after a backlog;
/// normally one).
pub const MAX_SCANNED_BLOCKS: u32 = 8;

/// What one pass over a deadline index did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Drained<BlockNumber> {
	/// Where the next pass starts.
	pub cursor: BlockNumber,
	/// Entries handed to the handler.
	pub handled: u32,
	/// Blocks of the index read.
	pub scanned: u32,
}

/// Hands the due entries of blocks `cursor..=now` to `handle`, oldest block first, at most
/// `budget` of them. `due_at(block, n)` lists up to `n` entries of `block`; `handle(block, id)`
/// must remove the entry it is given. A zero cursor (nothing worked off yet) starts at `now`.
pub fn drain_due<BlockNumber, Id>(
	cursor: BlockNumber,
	now: BlockNumber,
	budget: u32,
	mut due_at: impl FnMut(BlockNumber, usize) -> Vec<Id>,
	mut handle: impl FnMut(BlockNumber, Id),
) -> Drained<BlockNumber>
where
	BlockNumber: AtLeast32BitUnsigned + Copy,
{
	let mut block = if cursor.is_zero() { now } else { cursor };
	let (mut handled, mut scanned) = (0u32, 0u32);
	while block <= now && scanned < MAX_SCANNED_BLOCKS {
		scanned.saturating_inc();
		let room = budget.saturating_sub(handled) as usize;
		let mut due = due_at(block, room.saturating_add(1));
		let more = due.len() > room;
		due.truncate(room);
		for id in due {
			handle(block, id);
			handled.saturating_inc();
		}
		if more {
			break; // this block has more: go on from it next time
		}
		block = block.saturating_add(BlockNumber::one());
		if handled >= budget {
			break;
		}
	}
	Drained { cursor: block, handled, scanned }
}

#[cfg(test)]
mod tests {
	use super::*;
	use alloc::collections::BTreeMap;

	/// An index of `(block, id)` as the pallets keep it.
	fn index(entries: &[(u32, u32)]) -> BTreeMap<(u32, u32), ()> {
		entries.iter().map(|e| (*e, ())).collect()
	}

	fn drain(
		map: &mut BTreeMap<(u32, u32), ()>,
		cursor: u32,
		now: u32,
		budget: u32,
	) -> (Drained<u32>, Vec<u32>) {
		let snapshot = map.clone();
		let mut seen = Vec::new();
		let result = drain_due(
			cursor,
			now,
			budget,
			|block, n| {
				snapshot.keys().filter(|(b, _)| *b == block).map(|(_, id)| *id).take(n).collect()
			},
			|block, id| {
				map.remove(&(block, id));
				seen.push(id);
			},
		);
		(result, seen)
	}

	#[test]
	fn a_crowded_block_is_finished_in_the_next_passes() {
		let mut map = index(&[(5, 1), (5, 2), (5, 3), (6, 4)]);
		let (r, seen) = drain(&mut map, 5, 5, 2);
		assert_eq!((r, seen), (Drained { cursor: 5, handled: 2, scanned: 1 }, vec![1, 2]));
		let (r, seen) = drain(&mut map, r.cursor, 6, 2);
		assert_eq!((r, seen), (Drained { cursor: 7, handled: 2, scanned: 2 }, vec![3, 4]));
		assert!(map.is_empty());
	}

	#[test]
	fn scanning_is_bounded_and_a_zero_cursor_starts_now() {
		let mut map = index(&[(100, 1)]);
		let (r, _) = drain(&mut map, 1, 100, 10);
		assert_eq!(
			r,
			Drained { cursor: 1 + MAX_SCANNED_BLOCKS, handled: 0, scanned: MAX_SCANNED_BLOCKS }
		);
		let (r, seen) = drain(&mut map, 0, 100, 10);
		assert_eq!((r, seen), (Drained { cursor: 101, handled: 1, scanned: 1 }, vec![1]));
		// Nothing beyond `now` is touched.
		let mut map = index(&[(9, 1)]);
		let (r, seen) = drain(&mut map, 8, 8, 10);
		assert_eq!((r.cursor, seen.len()), (9, 0));
	}
}
