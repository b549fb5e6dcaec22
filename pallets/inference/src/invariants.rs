//! The inference pallet's storage invariants: checked by `try-runtime` after each block and by
//! the mock runtime after every test.

use super::*;
use sp_runtime::TryRuntimeError;

impl<T: Config> Pallet<T> {
	/// The server count matching the announcements (not checked against `MaxServers`, which an
	/// upgrade may lower below the announcements standing), and each server's bond hold its
	/// announced bond and the bond it has unbonding; each open challenge counted at its server and indexed by its session,
	/// its bond held from its challenger; each queued draw of an open challenge not yet drawn,
	/// and each challenge not yet drawn queued at or after the draw cursor; the parameters in
	/// range.
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		let servers = Servers::<T>::iter().count() as u32;
		ensure!(Servers::<T>::count() == servers, "the server counter is out of step");
		let mut bonded: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		for (server, announcement) in Servers::<T>::iter() {
			bonded.insert(server, announcement.bond);
		}
		for (server, unbonding) in Unbonding::<T>::iter() {
			let bond = bonded.entry(server).or_insert_with(Zero::zero);
			*bond = bond.saturating_add(unbonding.amount);
		}
		for (server, bond) in bonded {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ServerBond.into(), &server) == bond,
				"a server's bond hold differs from its announced and unbonding bonds"
			);
		}
		// Challenges: each open one counted at its server, its bond held; no count or unbonding
		// entry left at zero.
		let mut per_server: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		let mut bonds: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		for (id, challenge) in Challenges::<T>::iter() {
			let server = &challenge.commitment.server;
			ensure!(id < NextChallengeId::<T>::get(), "a challenge id is not below the next one");
			*per_server.entry(server.clone()).or_default() += 1;
			let bond = bonds.entry(challenge.challenger.clone()).or_insert_with(Zero::zero);
			*bond = bond.saturating_add(challenge.bond);
		}
		ensure!(
			Unbonding::<T>::iter().all(|(_, u)| !u.amount.is_zero()),
			"an unbonding entry holds nothing"
		);
		ensure!(
			OpenChallenges::<T>::iter().collect::<BTreeMap<_, _>>() == per_server,
			"the open-challenge counts are out of step"
		);
		for (challenger, bond) in bonds {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ChallengeBond.into(), &challenger)
					== bond,
				"a challenger's hold differs from its challenges' bonds"
			);
		}
		// Draws: each queued one is of an open challenge not drawn yet, and each challenge not
		// drawn yet is queued where the cursor will still reach it.
		for (_, id, ()) in DrawQueue::<T>::iter() {
			ensure!(
				Challenges::<T>::get(id).is_some_and(|c| c.arbiters.is_none()),
				"a queued draw is of a closed or drawn challenge"
			);
		}
		let cursor = DrawCursor::<T>::get();
		for (id, challenge) in Challenges::<T>::iter() {
			if challenge.arbiters.is_none() {
				ensure!(
					DrawQueue::<T>::contains_key(challenge.draw_at, id),
					"a challenge not drawn yet is not queued"
				);
				ensure!(
					cursor.is_zero() || challenge.draw_at >= cursor,
					"a challenge's draw is queued behind the cursor"
				);
			}
		}
		Self::check_params(&Params::<T>::get()).map_err(|_| "the parameters are out of range")?;
		Ok(())
	}
}
