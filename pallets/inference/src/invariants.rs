//! The inference pallet's storage invariants: checked by `try-runtime` after each block and by
//! the mock runtime after every test.

use super::*;
use sp_runtime::TryRuntimeError;

impl<T: Config> Pallet<T> {
	/// The server count matching the announcements (not checked against `MaxServers`, which an
	/// upgrade may lower below the announcements standing), and each server's bond hold its
	/// announced bond.
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		let servers = Servers::<T>::iter().count() as u32;
		ensure!(Servers::<T>::count() == servers, "the server counter is out of step");
		for (server, announcement) in Servers::<T>::iter() {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ServerBond.into(), &server)
					== announcement.bond,
				"a server's bond hold differs from its announcement"
			);
		}
		Ok(())
	}
}
