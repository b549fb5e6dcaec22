//! Test support for the pallets' mock runtimes (feature `test-fixtures`).

use sp_runtime::TryRuntimeError;

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
