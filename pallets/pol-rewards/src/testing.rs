//! Fixtures for the mock runtimes of this pallet and of the pallets built on it (behind the
//! `test-fixtures` feature): the registry, jobs and PoL pallets configured once, as the runtime
//! joins them.

/// The registry, jobs and PoL pallets' configuration, genesis and block loop for a mock runtime.
///
/// The caller declares `construct_runtime!` for `$runtime` with `System`, `Balances`, `Registry`,
/// `Jobs` and `Pol` (and its own pallets), implements `frame_system::Config` (with `Block` and
/// `pallet_balances::AccountData<Balance>`) and `pallet_balances::Config` by `derive_impl` (which
/// does not expand inside a `macro_rules!`), and a function `invariants()` checking every
/// pallet's storage (it may start with `protocol_invariants()`, defined here). `verification` is where
/// jobs hand revealed results (`Pol`, or a pallet in front of it such as the training audit);
/// `on_initialize` lists the pallets whose hook runs each block, in order.
///
/// Defines `AccountId`, `Balance`, the parameters' constants, `TestRandomness` (whose
/// `RANDOM_SALT` a test changes to redraw a committee), `new_test_ext()` (accounts 2..=20 hold
/// 1 000, account 1 `CREATOR_FUNDS`, the mining pool 10 000; invariants checked after every
/// test) and `run_to(n)`.
#[macro_export]
macro_rules! protocol_mock {
	(
		runtime: $runtime:ident,
		verification: $verification:ty,
		on_initialize: [$($hooked:ident),* $(,)?] $(,)?
	) => {
		type Block = frame_system::mocking::MockBlock<$runtime>;
		pub type AccountId = u64;
		pub type Balance = u64;

		impl pallet_model_registry::Config for $runtime {
			type Currency = Balances;
			type RuntimeHoldReason = RuntimeHoldReason;
			// No deposits: the registry's own tests charge them; these keep the protocol's
			// balances to its payments.
			type DepositPerItem = frame_support::traits::ConstU64<0>;
			type DepositPerByte = frame_support::traits::ConstU64<0>;
			type MaxModelsPerOwner = frame_support::traits::ConstU32<4>;
			type MaxDatasetsPerOwner = frame_support::traits::ConstU32<4>;
			type MaxVersionsPerModel = frame_support::traits::ConstU32<64>;
			type WeightInfo = ();
		}

		pub const MIN_WORKER_BOND: Balance = 100;
		pub const JOB_REVEAL_WINDOW: u64 = 5;

		frame_support::parameter_types! {
			pub const CreatorForfeitShare: sp_runtime::Perbill = sp_runtime::Perbill::from_percent(20);
			pub const CreatorBondShare: sp_runtime::Perbill = sp_runtime::Perbill::from_percent(20);
			pub JobDefaults: pallet_jobs::JobParams<Balance, u64> = pallet_jobs::JobParams {
				min_improvement: sp_runtime::Perbill::from_percent(1),
				min_reward: 10,
				min_worker_bond: MIN_WORKER_BOND,
				unbonding_period: 10,
				max_lease: 50,
				reveal_window: JOB_REVEAL_WINDOW,
				lease_slash: sp_runtime::Perbill::from_percent(10),
			};
		}

		impl pallet_jobs::Config for $runtime {
			type Currency = Balances;
			type RuntimeHoldReason = RuntimeHoldReason;
			type Registry = Registry;
			type Verification = $verification;
			type CommitGate = ();
			type RequireTrace = frame_support::traits::ConstBool<true>;
			type DefaultParams = JobDefaults;
			type MaxActiveJobsPerWorker = frame_support::traits::ConstU32<4>;
			type MaxJobsPerCreator = frame_support::traits::ConstU32<4>;
			type CreatorForfeitShare = CreatorForfeitShare;
			type CreatorBondShare = CreatorBondShare;
			type MaxExpiriesPerBlock = frame_support::traits::ConstU32<8>;
			type WeightInfo = ();
		}

		thread_local! {
			/// Mixed into the randomness, so a test can make a redraw pick another committee.
			pub static RANDOM_SALT: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
		}

		/// Hash of the subject, the block number and [`RANDOM_SALT`].
		pub struct TestRandomness;
		impl frame_support::traits::Randomness<
			sp_core::H256,
			frame_system::pallet_prelude::BlockNumberFor<$runtime>,
		> for TestRandomness
		{
			fn random(
				subject: &[u8],
			) -> (sp_core::H256, frame_system::pallet_prelude::BlockNumberFor<$runtime>) {
				let now = System::block_number();
				let salt = RANDOM_SALT.with(|s| s.get());
				let seed = codec::Encode::encode(&(subject, now, salt));
				(<sp_runtime::traits::BlakeTwo256 as sp_runtime::traits::Hash>::hash(&seed), now)
			}
		}

		pub const MINING_POOL: AccountId = 100;
		pub const MIN_VERIFIER_BOND: Balance = 100;
		pub const COMMIT_WINDOW: u64 = 3;
		pub const REVEAL_WINDOW: u64 = 3;
		pub const EPOCH: u64 = 100;
		pub const EPOCH_BUDGET: Balance = 1_000;
		/// Most of a job's escrow counted towards its epoch points.
		pub const POINTS_ESCROW_CAP: Balance = 1_000;

		frame_support::parameter_types! {
			pub const MiningPool: AccountId = MINING_POOL;
			pub const PointsEscrowCap: Balance = POINTS_ESCROW_CAP;
			/// All of it unless a test lowers it (it is a per-test storage parameter).
			pub storage MaxEpochShare: sp_runtime::Perbill = sp_runtime::Perbill::one();
			pub PolDefaults: $crate::PolParams<Balance, u64> = $crate::PolParams {
				committee_size: 3,
				draw_delay: 1,
				commit_window: COMMIT_WINDOW,
				reveal_window: REVEAL_WINDOW,
				verifier_fee: sp_runtime::Perbill::from_percent(10),
				dataset_share: sp_runtime::Perbill::from_percent(5),
				miner_slash: sp_runtime::Perbill::from_percent(50),
				verifier_penalty: sp_runtime::Perbill::from_percent(10),
				min_verifier_bond: MIN_VERIFIER_BOND,
				unbonding_period: 10,
				epoch_length: EPOCH,
				epoch_budget: EPOCH_BUDGET,
			};
		}

		impl $crate::Config for $runtime {
			type Currency = Balances;
			type RuntimeHoldReason = RuntimeHoldReason;
			type Registry = Registry;
			type Jobs = Jobs;
			type Randomness = TestRandomness;
			type MiningPool = MiningPool;
			type DefaultParams = PolDefaults;
			type Contributions = ();
			type RewardOrigin = frame_system::EnsureRoot<AccountId>;
			type MaxRewardedModels = frame_support::traits::ConstU32<2>;
			type PointsEscrowCap = PointsEscrowCap;
			type MinPointsEscrow = frame_support::traits::ConstU64<100>;
			type MaxEpochShare = MaxEpochShare;
			type MaxVerifiers = frame_support::traits::ConstU32<24>;
			type MaxAssignmentsPerVerifier = frame_support::traits::ConstU32<16>;
			type MaxDeadlinesPerBlock = frame_support::traits::ConstU32<8>;
			type WeightInfo = ();
		}

		/// What account 1 (the creator in tests) starts with.
		pub const CREATOR_FUNDS: Balance = 10_000;

		/// The invariants of the registry, jobs and PoL pallets.
		fn protocol_invariants() -> Result<(), sp_runtime::TryRuntimeError> {
			Registry::do_try_state()?;
			Jobs::do_try_state()?;
			Pol::do_try_state()
		}

		/// Accounts 2..=20 hold 1 000 each, account 1 `CREATOR_FUNDS`, the mining pool 10 000.
		///
		/// Its storage invariants are checked after every test.
		pub fn new_test_ext() -> blyan_primitives::testing::CheckedExternalities {
			use sp_runtime::BuildStorage as _;
			let mut storage =
				frame_system::GenesisConfig::<$runtime>::default().build_storage().unwrap();
			let mut balances: Vec<(AccountId, Balance)> =
				(1..=20).map(|a| (a, if a == 1 { CREATOR_FUNDS } else { 1_000 })).collect();
			balances.push((MINING_POOL, 10_000));
			pallet_balances::GenesisConfig::<$runtime> { balances, ..Default::default() }
				.assimilate_storage(&mut storage)
				.unwrap();
			let mut ext = sp_io::TestExternalities::new(storage);
			ext.execute_with(|| {
				System::set_block_number(1);
				RANDOM_SALT.with(|s| s.set(0));
			});
			blyan_primitives::testing::CheckedExternalities::new(ext, invariants)
		}

		/// Runs blocks up to `n`, with the pallets' `on_initialize`.
		pub fn run_to(n: u64) {
			use frame_support::traits::Hooks as _;
			while System::block_number() < n {
				// The invariants hold at the end of every block, as `try-runtime` checks them.
				invariants().expect("storage invariants hold at the end of the block");
				let next = System::block_number() + 1;
				System::set_block_number(next);
				$($hooked::on_initialize(next);)*
			}
		}
	};
}
