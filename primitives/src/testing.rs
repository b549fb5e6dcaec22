//! Test support for the pallets' mock runtimes (feature `test-fixtures`).

use sp_core::H256;
use sp_runtime::TryRuntimeError;

use crate::{audit::TraceCommitment, pol::Cid, training::TrainingParams};

/// Hyper-parameters of a test job: `steps` steps, the rest [`TrainingParams::DEFAULT`].
pub fn training(steps: u32) -> TrainingParams {
	TrainingParams { steps, ..TrainingParams::DEFAULT }
}

/// A result's trace commitment of `steps` steps, checkpointed every 4 (a placeholder root and
/// CID: what the pallets check of a trace at reveal is its length).
pub fn trace(steps: u32) -> TraceCommitment {
	TraceCommitment {
		root: H256::repeat_byte(0x7a),
		steps,
		interval: 4,
		cid: Cid::truncate_from(b"bafytrace".to_vec()),
	}
}

/// A pallet's storage invariants (its `do_try_state`).
pub type Invariants = fn() -> Result<(), TryRuntimeError>;

/// Test externalities that check the pallets' storage invariants after every test body (the
/// mocks' `run_to` checks them at the end of every block too, as `try-runtime` does on a live
/// chain): a test that leaves the state inconsistent fails even if its own assertions pass.
pub struct CheckedExternalities {
	ext: sp_io::TestExternalities,
	invariants: Invariants,
}

impl CheckedExternalities {
	pub fn new(ext: sp_io::TestExternalities, invariants: Invariants) -> Self {
		Self { ext, invariants }
	}

	/// Runs `test`, then the invariants; panics naming the broken one.
	pub fn execute_with<R>(&mut self, test: impl FnOnce() -> R) -> R {
		let invariants = self.invariants;
		self.ext.execute_with(|| {
			let result = test();
			if let Err(e) = invariants() {
				panic!("storage invariant broken after the test: {e:?}");
			}
			result
		})
	}

	/// The externalities without the checks: for benchmarks, whose fixtures write worst-case
	/// storage directly rather than through the pallet's calls.
	pub fn unchecked(self) -> sp_io::TestExternalities {
		self.ext
	}
}
