//! # Model registry
//!
//! Models, datasets and the versions of each model. Versions form a DAG: every version but a
//! model's root has one or two parents and stores only the layers it changed (its *delta
//! blocks*: per layer an IPFS CID and a Merkle root over that layer's tensors) plus a root over
//! the whole weight set. [`Pallet::resolve_layers`] rebuilds the full layer set of any version
//! from its nearest ancestors.
//!
//! A version is born `Candidate`. Only Proof-of-Learning, through
//! [`blyan_primitives::pol::VersionAcceptance`], moves it to `Accepted` or `Rejected`; the one
//! exception is a model's root version, accepted at registration because there is nothing to
//! improve on yet.
//!
//! Calls: [`Pallet::register_model`], [`Pallet::propose_version`], [`Pallet::register_dataset`].
//!
//! **Deposits.** The registry is an append-only history: models, versions and datasets are never
//! removed (jobs, audits and servers refer to them by id). Each costs whoever wrote it a deposit,
//! held under [`HoldReason::StorageDeposit`] for as long as it is stored:
//! [`Config::DepositPerItem`] per storage entry plus [`Config::DepositPerByte`] per byte. The
//! per-owner bounds stop one account; the deposit makes a thousand accounts' worth of state
//! cost a thousand times as much.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(any(feature = "try-runtime", feature = "test-fixtures", test))]
mod invariants;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;
pub use weights::WeightInfo;

use alloc::{collections::BTreeSet, vec::Vec};
use blyan_primitives::pol::{
	CandidateVersion, Cid, DatasetId, LayerDelta, LayerDeltas, LayerIndex, ModelId, ModelRegistry,
	Parents, SemVer, VersionAcceptance, VersionId, VersionStatus, VersionSummary, MAX_LAYERS,
};
use blyan_primitives::training::LoraParams;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::*,
	traits::fungible::{Inspect, InspectHold, Mutate, MutateHold},
	BoundedVec,
};
use frame_system::pallet_prelude::*;
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::{
	traits::{Saturating, Zero},
	DispatchError, DispatchResult,
};

/// A short human-readable text (name, licence identifier, architecture family).
pub type ShortText = BoundedVec<u8, ConstU32<64>>;

/// What a model is: enough for a worker to instantiate it before loading weights.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Architecture {
	/// Model family, e.g. `mlp`, `llama`.
	pub family: ShortText,
	/// blake2-256 of the family's configuration document.
	pub config_hash: H256,
	/// IPFS CID of that configuration document.
	pub config_cid: Cid,
	/// Number of weight layers; every version resolves to exactly this many.
	pub layer_count: LayerIndex,
}

/// A registered model.
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct ModelInfo<AccountId> {
	pub owner: AccountId,
	pub name: ShortText,
	pub architecture: Architecture,
	/// SPDX licence identifier of the weights.
	pub licence: ShortText,
	/// The version registered with the model; it holds every layer.
	pub root_version: VersionId,
	/// How many versions (root included) the model has, counting SemVers reserved for job
	/// results still to be revealed.
	pub version_count: u32,
}

/// One node of a model's version DAG. Its layers are in [`VersionLayers`].
#[derive(Clone, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo, Debug)]
pub struct VersionInfo<AccountId, BlockNumber> {
	pub model: ModelId,
	pub parents: Parents,
	pub semver: SemVer,
	/// Merkle root over the full weight set of this version.
	pub weight_root: H256,
	pub status: VersionStatus,
	pub proposer: AccountId,
	pub created_at: BlockNumber,
}

/// A registered dataset. Its owner is the data contributor paid a share of accepted jobs.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct DatasetInfo<AccountId> {
	pub owner: AccountId,
	pub cid: Cid,
	/// blake2-256 of the dataset's bytes, to check a download against.
	pub content_hash: H256,
	pub size_bytes: u64,
	pub licence: ShortText,
}

/// One layer of a resolved version: which version last changed it, and its delta block.
#[derive(Clone, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
pub struct ResolvedLayer {
	pub source_version: VersionId,
	pub delta: LayerDelta,
}

/// Why a set of layers cannot be resolved.
#[derive(Clone, PartialEq, Eq, Encode, Decode, TypeInfo, Debug)]
pub enum ResolveError {
	UnknownVersion,
	/// The ancestry walk exceeded the bound it is given (a very long lineage).
	LineageTooLong,
	/// Some layer is provided by no ancestor (cannot happen for versions stored by this pallet).
	MissingLayer(LayerIndex),
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;

	/// The storage layout's version (0: the layout at launch): bumped, with a migration, on
	/// every change of layout.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Balance of an account.
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// The deposit for the models, versions and datasets an account wrote.
		StorageDeposit,
	}

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// BLY: storage deposits are held.
		type Currency: Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		type RuntimeHoldReason: From<HoldReason>;
		/// Deposit per storage entry written (a model, a version, a dataset, their indices).
		#[pallet::constant]
		type DepositPerItem: Get<BalanceOf<Self>>;
		/// Deposit per byte of those entries.
		#[pallet::constant]
		type DepositPerByte: Get<BalanceOf<Self>>;
		/// Most models one account may own.
		#[pallet::constant]
		type MaxModelsPerOwner: Get<u32>;
		/// Most datasets one account may own.
		#[pallet::constant]
		type MaxDatasetsPerOwner: Get<u32>;
		/// Most versions one model may have (root included).
		#[pallet::constant]
		type MaxVersionsPerModel: Get<u32>;
		type WeightInfo: WeightInfo;
	}

	#[pallet::storage]
	pub type NextModelId<T> = StorageValue<_, ModelId, ValueQuery>;

	#[pallet::storage]
	pub type Models<T: Config> =
		StorageMap<_, Blake2_128Concat, ModelId, ModelInfo<T::AccountId>, OptionQuery>;

	/// How many models each account owns (bounded by `MaxModelsPerOwner`).
	#[pallet::storage]
	pub type ModelsOwned<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	#[pallet::storage]
	pub type NextVersionId<T> = StorageValue<_, VersionId, ValueQuery>;

	#[pallet::storage]
	pub type Versions<T: Config> = StorageMap<
		_,
		Blake2_128Concat,
		VersionId,
		VersionInfo<T::AccountId, BlockNumberFor<T>>,
		OptionQuery,
	>;

	/// The delta blocks of each version: the layers it changed, ascending by layer index.
	#[pallet::storage]
	pub type VersionLayers<T> = StorageMap<_, Blake2_128Concat, VersionId, LayerDeltas, ValueQuery>;

	/// Versions whose layers are low-rank adapters over their single parent, and what adapters
	/// they are. A version absent here replaces whole layers.
	#[pallet::storage]
	pub type VersionAdapters<T> =
		StorageMap<_, Blake2_128Concat, VersionId, LoraParams, OptionQuery>;

	/// A model's versions by SemVer; a SemVer is used once per model.
	#[pallet::storage]
	pub type VersionBySemVer<T> =
		StorageDoubleMap<_, Blake2_128Concat, ModelId, Blake2_128Concat, SemVer, VersionId>;

	/// SemVers held for job results committed but not yet revealed (see
	/// [`ModelRegistry::reserve_semver`]); a model owner cannot take them.
	#[pallet::storage]
	pub type ReservedSemVers<T> =
		StorageDoubleMap<_, Blake2_128Concat, ModelId, Blake2_128Concat, SemVer, ()>;

	#[pallet::storage]
	pub type NextDatasetId<T> = StorageValue<_, DatasetId, ValueQuery>;

	#[pallet::storage]
	pub type Datasets<T: Config> =
		StorageMap<_, Blake2_128Concat, DatasetId, DatasetInfo<T::AccountId>, OptionQuery>;

	/// How many datasets each account owns (bounded by `MaxDatasetsPerOwner`).
	#[pallet::storage]
	pub type DatasetsOwned<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A model was registered with its root version (accepted).
		ModelRegistered { model: ModelId, owner: T::AccountId, root_version: VersionId },
		/// A candidate version was proposed.
		VersionProposed {
			model: ModelId,
			version: VersionId,
			semver: SemVer,
			parents: Parents,
			proposer: T::AccountId,
		},
		/// Proof-of-Learning accepted a version.
		VersionAccepted { model: ModelId, version: VersionId },
		/// Proof-of-Learning rejected a version.
		VersionRejected { model: ModelId, version: VersionId },
		/// A dataset was registered.
		DatasetRegistered { dataset: DatasetId, owner: T::AccountId },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No model with this id.
		UnknownModel,
		/// No version with this id.
		UnknownVersion,
		/// The caller does not own the model.
		NotModelOwner,
		/// The account owns `MaxModelsPerOwner` models already.
		TooManyModels,
		/// The account owns `MaxDatasetsPerOwner` datasets already.
		TooManyDatasets,
		/// The model has `MaxVersionsPerModel` versions already.
		TooManyVersions,
		/// A model needs at least one layer and at most the protocol maximum.
		BadLayerCount,
		/// A root version must provide every layer `0..layer_count` exactly once.
		IncompleteRootVersion,
		/// Layer indices must be strictly ascending and below the model's layer count.
		BadLayerIndex,
		/// A version that changes no layer.
		NoLayers,
		/// A version needs one or two distinct parents.
		BadParents,
		/// A parent belongs to another model.
		ParentOfOtherModel,
		/// A parent was rejected; nothing may build on it.
		RejectedParent,
		/// The SemVer must be greater than every parent's.
		SemVerNotIncreasing,
		/// The model already has a version with this SemVer.
		SemVerTaken,
		/// A committed job result holds this SemVer.
		SemVerReserved,
		/// A CID must not be empty.
		EmptyCid,
		/// The version is not a candidate (already accepted or rejected).
		NotCandidate,
		/// An identifier counter is exhausted.
		IdsExhausted,
		/// The caller cannot hold the storage deposit (not enough free balance).
		InsufficientDeposit,
		/// An adapter version needs exactly one parent.
		AdapterParents,
		/// A parent is an adapter version: versions build on full weights only.
		AdapterParent,
		/// The adapters' rank, alpha or targets are out of bounds.
		BadAdapter,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		#[cfg(feature = "try-runtime")]
		fn try_state(_: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Registers a model and its root version, which must hold every layer. The root version
		/// is accepted at once: it is the baseline later versions must improve on.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_model(root_layers.len() as u32))]
		pub fn register_model(
			origin: OriginFor<T>,
			name: ShortText,
			architecture: Architecture,
			licence: ShortText,
			semver: SemVer,
			root_layers: LayerDeltas,
			weight_root: H256,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			ensure!(
				architecture.layer_count > 0 && u32::from(architecture.layer_count) <= MAX_LAYERS,
				Error::<T>::BadLayerCount
			);
			ensure!(!architecture.config_cid.is_empty(), Error::<T>::EmptyCid);
			check_layers::<T>(&root_layers, architecture.layer_count)?;
			ensure!(
				root_layers.len() == usize::from(architecture.layer_count),
				Error::<T>::IncompleteRootVersion
			);
			let owned = ModelsOwned::<T>::get(&owner);
			ensure!(owned < T::MaxModelsPerOwner::get(), Error::<T>::TooManyModels);
			let model = NextModelId::<T>::get();
			let next_model = model.checked_add(1).ok_or(Error::<T>::IdsExhausted)?;
			let version = NextVersionId::<T>::get();
			let next_version = version.checked_add(1).ok_or(Error::<T>::IdsExhausted)?;
			let info = ModelInfo {
				owner: owner.clone(),
				name,
				architecture,
				licence,
				root_version: version,
				version_count: 1,
			};
			let root = VersionInfo {
				model,
				parents: Parents::default(),
				semver,
				weight_root,
				status: VersionStatus::Accepted,
				proposer: owner.clone(),
				created_at: frame_system::Pallet::<T>::block_number(),
			};
			// Models, Versions, VersionLayers and VersionBySemVer (and the owner's counter).
			let (counter, counter_bytes) = Self::owner_counter_deposit(owned);
			let deposit = Self::deposit_for(
				4 + counter,
				info.encoded_size()
					+ root.encoded_size()
					+ root_layers.encoded_size()
					+ version.encoded_size()
					+ counter_bytes,
			);
			Self::ensure_can_hold(&owner, deposit)?;

			Self::hold_deposit(&owner, deposit)?;
			NextModelId::<T>::put(next_model);
			NextVersionId::<T>::put(next_version);
			ModelsOwned::<T>::insert(&owner, owned.saturating_add(1));
			Models::<T>::insert(model, info);
			Versions::<T>::insert(version, root);
			VersionLayers::<T>::insert(version, root_layers);
			VersionBySemVer::<T>::insert(model, semver, version);
			Self::deposit_event(Event::ModelRegistered { model, owner, root_version: version });
			Ok(())
		}

		/// Proposes a candidate version of a model the caller owns (for example a merge of two
		/// versions). It stays a candidate until Proof-of-Learning decides.
		/// With `candidate.adapter` set, its layers are adapters over its one parent (for
		/// example an adapter imported from `peft`).
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::propose_version(candidate.layers.len() as u32)
			// Beyond the benchmark (weights.rs predates adapter versions): each parent's adapter
			// entry, and the candidate's own.
			.saturating_add(T::DbWeight::get().reads_writes(
				candidate.parents.len() as u64,
				u64::from(candidate.adapter.is_some()),
			)))]
		pub fn propose_version(
			origin: OriginFor<T>,
			candidate: CandidateVersion,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let model = Models::<T>::get(candidate.model).ok_or(Error::<T>::UnknownModel)?;
			ensure!(model.owner == who, Error::<T>::NotModelOwner);
			ensure!(
				!ReservedSemVers::<T>::contains_key(candidate.model, candidate.semver),
				Error::<T>::SemVerReserved
			);
			Self::insert_candidate(&who, candidate)?;
			Ok(())
		}

		/// Registers a dataset; the caller becomes its owner (the data contributor).
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::register_dataset())]
		pub fn register_dataset(
			origin: OriginFor<T>,
			cid: Cid,
			content_hash: H256,
			size_bytes: u64,
			licence: ShortText,
		) -> DispatchResult {
			let owner = ensure_signed(origin)?;
			ensure!(!cid.is_empty(), Error::<T>::EmptyCid);
			let owned = DatasetsOwned::<T>::get(&owner);
			ensure!(owned < T::MaxDatasetsPerOwner::get(), Error::<T>::TooManyDatasets);
			let dataset = NextDatasetId::<T>::get();
			let next = dataset.checked_add(1).ok_or(Error::<T>::IdsExhausted)?;
			let info = DatasetInfo { owner: owner.clone(), cid, content_hash, size_bytes, licence };
			let (counter, counter_bytes) = Self::owner_counter_deposit(owned);
			let deposit = Self::deposit_for(1 + counter, info.encoded_size() + counter_bytes);
			Self::ensure_can_hold(&owner, deposit)?;

			Self::hold_deposit(&owner, deposit)?;
			NextDatasetId::<T>::put(next);
			DatasetsOwned::<T>::insert(&owner, owned.saturating_add(1));
			Datasets::<T>::insert(dataset, info);
			Self::deposit_event(Event::DatasetRegistered { dataset, owner });
			Ok(())
		}
	}
}

/// Layer indices strictly ascending, each below `layer_count`, CIDs non-empty, at least one.
fn check_layers<T: Config>(layers: &LayerDeltas, layer_count: LayerIndex) -> DispatchResult {
	ensure!(!layers.is_empty(), Error::<T>::NoLayers);
	let mut previous: Option<LayerIndex> = None;
	for delta in layers.iter() {
		ensure!(delta.layer < layer_count, Error::<T>::BadLayerIndex);
		ensure!(previous.is_none_or(|p| p < delta.layer), Error::<T>::BadLayerIndex);
		ensure!(!delta.cid.is_empty(), Error::<T>::EmptyCid);
		previous = Some(delta.layer);
	}
	Ok(())
}

impl<T: Config> Pallet<T> {
	/// The deposit for `items` storage entries of `bytes` bytes in all.
	pub fn deposit_for(items: u32, bytes: usize) -> BalanceOf<T> {
		let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
		T::DepositPerItem::get()
			.saturating_mul(items.into())
			.saturating_add(T::DepositPerByte::get().saturating_mul(bytes.into()))
	}

	/// The deposit for a candidate version: its entries in Versions, VersionLayers and
	/// VersionBySemVer (whose value is the version's id), and VersionAdapters for adapters.
	pub fn version_deposit(candidate: &CandidateVersion) -> BalanceOf<T> {
		let items = 3 + u32::from(candidate.adapter.is_some());
		// The adapter's `Option` tag is not stored: VersionAdapters holds it or nothing.
		let bytes = candidate.encoded_size().saturating_sub(1);
		Self::deposit_for(items, bytes.saturating_add(Self::version_overhead()))
	}

	/// What a version stores beyond its candidate's fields: proposer, block, status, and its
	/// id in the SemVer index.
	fn version_overhead() -> usize {
		T::AccountId::max_encoded_len()
			.saturating_add(BlockNumberFor::<T>::max_encoded_len())
			.saturating_add(VersionStatus::max_encoded_len())
			.saturating_add(VersionId::max_encoded_len())
	}

	/// The deposit of the largest version a model of `layer_count` layers can have: every
	/// layer changed, CIDs at their longest, two parents, adapters.
	pub fn largest_version_deposit(layer_count: LayerIndex) -> BalanceOf<T> {
		let fields = CandidateVersion::max_encoded_len()
			.saturating_sub(LayerDeltas::max_encoded_len())
			.saturating_add(codec::Compact::<u32>::max_encoded_len());
		let layers = LayerDelta::max_encoded_len().saturating_mul(usize::from(layer_count));
		Self::deposit_for(4, fields.saturating_add(layers).saturating_add(Self::version_overhead()))
	}

	/// The first model or dataset of an account also writes its owner counter.
	fn owner_counter_deposit(owned: u32) -> (u32, usize) {
		if owned == 0 {
			(1, 0u32.encoded_size())
		} else {
			(0, 0)
		}
	}

	/// `proposer` could hold the deposit of the largest version of `model` (checked, not held).
	fn ensure_can_pay_for_a_version(
		model: &ModelInfo<T::AccountId>,
		proposer: &T::AccountId,
	) -> DispatchResult {
		Self::ensure_can_hold(
			proposer,
			Self::largest_version_deposit(model.architecture.layer_count),
		)
	}

	fn ensure_can_hold(who: &T::AccountId, deposit: BalanceOf<T>) -> DispatchResult {
		ensure!(
			deposit.is_zero()
				|| T::Currency::can_hold(&HoldReason::StorageDeposit.into(), who, deposit),
			Error::<T>::InsufficientDeposit
		);
		Ok(())
	}

	fn hold_deposit(who: &T::AccountId, deposit: BalanceOf<T>) -> DispatchResult {
		if deposit.is_zero() {
			return Ok(());
		}
		T::Currency::hold(&HoldReason::StorageDeposit.into(), who, deposit)
	}

	/// Every check `insert_candidate` makes, without writing.
	fn check_candidate(
		proposer: &T::AccountId,
		candidate: &CandidateVersion,
	) -> Result<ModelInfo<T::AccountId>, DispatchError> {
		let model = Models::<T>::get(candidate.model).ok_or(Error::<T>::UnknownModel)?;
		// A reserved SemVer already holds its version slot.
		let reserved = ReservedSemVers::<T>::contains_key(candidate.model, candidate.semver);
		ensure!(
			reserved || model.version_count < T::MaxVersionsPerModel::get(),
			Error::<T>::TooManyVersions
		);
		check_layers::<T>(&candidate.layers, model.architecture.layer_count)?;
		let parents = &candidate.parents;
		ensure!(!parents.is_empty(), Error::<T>::BadParents);
		ensure!(parents.len() < 2 || parents[0] != parents[1], Error::<T>::BadParents);
		if let Some(adapter) = &candidate.adapter {
			ensure!(parents.len() == 1, Error::<T>::AdapterParents);
			adapter.check().map_err(|_| Error::<T>::BadAdapter)?;
		}
		for parent in parents.iter() {
			let info = Versions::<T>::get(parent).ok_or(Error::<T>::UnknownVersion)?;
			ensure!(info.model == candidate.model, Error::<T>::ParentOfOtherModel);
			ensure!(info.status != VersionStatus::Rejected, Error::<T>::RejectedParent);
			ensure!(info.semver < candidate.semver, Error::<T>::SemVerNotIncreasing);
			// One adapter over full weights: what every consumer knows how to apply.
			ensure!(!VersionAdapters::<T>::contains_key(parent), Error::<T>::AdapterParent);
		}
		ensure!(
			!VersionBySemVer::<T>::contains_key(candidate.model, candidate.semver),
			Error::<T>::SemVerTaken
		);
		ensure!(NextVersionId::<T>::get().checked_add(1).is_some(), Error::<T>::IdsExhausted);
		Self::ensure_can_hold(proposer, Self::version_deposit(candidate))?;
		Ok(model)
	}

	fn insert_candidate(
		proposer: &T::AccountId,
		candidate: CandidateVersion,
	) -> Result<VersionId, DispatchError> {
		let mut model = Self::check_candidate(proposer, &candidate)?;
		Self::hold_deposit(proposer, Self::version_deposit(&candidate))?;
		let version = NextVersionId::<T>::get();
		NextVersionId::<T>::put(version.saturating_add(1));
		if ReservedSemVers::<T>::take(candidate.model, candidate.semver).is_none() {
			model.version_count = model.version_count.saturating_add(1);
		}
		Models::<T>::insert(candidate.model, model);
		VersionBySemVer::<T>::insert(candidate.model, candidate.semver, version);
		Versions::<T>::insert(
			version,
			VersionInfo {
				model: candidate.model,
				parents: candidate.parents.clone(),
				semver: candidate.semver,
				weight_root: candidate.weight_root,
				status: VersionStatus::Candidate,
				proposer: proposer.clone(),
				created_at: frame_system::Pallet::<T>::block_number(),
			},
		);
		VersionLayers::<T>::insert(version, candidate.layers);
		if let Some(adapter) = candidate.adapter {
			VersionAdapters::<T>::insert(version, adapter);
		}
		Self::deposit_event(Event::VersionProposed {
			model: candidate.model,
			version,
			semver: candidate.semver,
			parents: candidate.parents,
			proposer: proposer.clone(),
		});
		Ok(version)
	}

	fn decide(version: VersionId, status: VersionStatus) -> DispatchResult {
		Versions::<T>::try_mutate(version, |maybe| {
			let info = maybe.as_mut().ok_or(Error::<T>::UnknownVersion)?;
			ensure!(info.status == VersionStatus::Candidate, Error::<T>::NotCandidate);
			info.status = status;
			let model = info.model;
			Self::deposit_event(match status {
				VersionStatus::Accepted => Event::VersionAccepted { model, version },
				_ => Event::VersionRejected { model, version },
			});
			Ok(())
		})
	}

	/// The full layer set of `version`: for each layer, the delta block of the nearest version
	/// on its ancestry (the version itself first, then breadth-first, first parent before
	/// second) that changed it. Visits at most `max_visits` versions. For an adapter version
	/// these are its base's (its parent's) layers: the adapters are its own `VersionLayers`,
	/// applied over them as its `VersionAdapters` entry says.
	pub fn resolve_layers(
		version: VersionId,
		max_visits: u32,
	) -> Result<Vec<ResolvedLayer>, ResolveError> {
		let mut info = Versions::<T>::get(version).ok_or(ResolveError::UnknownVersion)?;
		let mut version = version;
		if VersionAdapters::<T>::contains_key(version) {
			version = *info.parents.first().ok_or(ResolveError::UnknownVersion)?;
			info = Versions::<T>::get(version).ok_or(ResolveError::UnknownVersion)?;
		}
		let model = Models::<T>::get(info.model).ok_or(ResolveError::UnknownVersion)?;
		let count = usize::from(model.architecture.layer_count);
		let mut resolved: Vec<Option<ResolvedLayer>> = alloc::vec![None; count];
		let mut missing = count;
		let mut queue = alloc::collections::VecDeque::from([version]);
		let mut seen = BTreeSet::from([version]);
		let mut visits = 0u32;
		while let Some(current) = queue.pop_front() {
			if missing == 0 {
				break;
			}
			visits = visits.saturating_add(1);
			if visits > max_visits {
				return Err(ResolveError::LineageTooLong);
			}
			for delta in VersionLayers::<T>::get(current) {
				if let Some(slot @ None) = resolved.get_mut(usize::from(delta.layer)) {
					*slot = Some(ResolvedLayer { source_version: current, delta });
					missing = missing.saturating_sub(1);
				}
			}
			if let Some(node) = Versions::<T>::get(current) {
				for parent in node.parents {
					if seen.insert(parent) {
						queue.push_back(parent);
					}
				}
			}
		}
		resolved
			.into_iter()
			.enumerate()
			.map(|(i, layer)| layer.ok_or(ResolveError::MissingLayer(i as LayerIndex)))
			.collect()
	}

	/// Ancestors of `version` (itself first), breadth-first, at most `max` of them.
	pub fn lineage(version: VersionId, max: u32) -> Vec<(VersionId, SemVer, VersionStatus)> {
		let mut out = Vec::new();
		let mut queue = alloc::collections::VecDeque::from([version]);
		let mut seen = BTreeSet::from([version]);
		while let Some(current) = queue.pop_front() {
			if out.len() >= max as usize {
				break;
			}
			let Some(node) = Versions::<T>::get(current) else { continue };
			out.push((current, node.semver, node.status));
			for parent in node.parents {
				if seen.insert(parent) {
					queue.push_back(parent);
				}
			}
		}
		out
	}
}

impl<T: Config> ModelRegistry<T::AccountId> for Pallet<T> {
	fn version(version: VersionId) -> Option<VersionSummary> {
		Versions::<T>::get(version).map(|v| VersionSummary {
			model: v.model,
			semver: v.semver,
			status: v.status,
			weight_root: v.weight_root,
			adapter: VersionAdapters::<T>::get(version),
		})
	}

	fn dataset_owner(dataset: DatasetId) -> Option<T::AccountId> {
		Datasets::<T>::get(dataset).map(|d| d.owner)
	}

	fn ensure_can_propose(model: ModelId, proposer: &T::AccountId) -> DispatchResult {
		let info = Models::<T>::get(model).ok_or(Error::<T>::UnknownModel)?;
		Self::ensure_can_pay_for_a_version(&info, proposer)
	}

	fn reserve_semver(
		model: ModelId,
		semver: SemVer,
		base: VersionId,
		proposer: &T::AccountId,
	) -> DispatchResult {
		let base = Versions::<T>::get(base).ok_or(Error::<T>::UnknownVersion)?;
		ensure!(base.model == model, Error::<T>::ParentOfOtherModel);
		ensure!(base.semver < semver, Error::<T>::SemVerNotIncreasing);
		ensure!(!VersionBySemVer::<T>::contains_key(model, semver), Error::<T>::SemVerTaken);
		ensure!(!ReservedSemVers::<T>::contains_key(model, semver), Error::<T>::SemVerReserved);
		let mut info = Models::<T>::get(model).ok_or(Error::<T>::UnknownModel)?;
		// The reservation takes its version slot now, so a full model refuses the commit
		// rather than the reveal.
		ensure!(info.version_count < T::MaxVersionsPerModel::get(), Error::<T>::TooManyVersions);
		Self::ensure_can_pay_for_a_version(&info, proposer)?;
		info.version_count = info.version_count.saturating_add(1);
		Models::<T>::insert(model, info);
		ReservedSemVers::<T>::insert(model, semver, ());
		Ok(())
	}

	fn release_semver(model: ModelId, semver: SemVer) {
		if ReservedSemVers::<T>::take(model, semver).is_some() {
			Models::<T>::mutate(model, |info| {
				if let Some(info) = info {
					info.version_count = info.version_count.saturating_sub(1);
				}
			});
		}
	}

	fn propose_candidate(
		proposer: &T::AccountId,
		candidate: CandidateVersion,
	) -> Result<VersionId, DispatchError> {
		Self::insert_candidate(proposer, candidate)
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_fixture(owner: &T::AccountId) -> (VersionId, DatasetId) {
		let layers = benchmarking::layers(MAX_LAYERS as LayerIndex, MAX_LAYERS);
		let version = NextVersionId::<T>::get();
		let dataset = NextDatasetId::<T>::get();
		// The two deposits (a model's 4 entries, a dataset's 1, and both owner counters), on top
		// of whatever the caller funded the owner with.
		let deposits = Self::deposit_for(
			7,
			ModelInfo::<T::AccountId>::max_encoded_len()
				+ VersionInfo::<T::AccountId, BlockNumberFor<T>>::max_encoded_len()
				+ LayerDeltas::max_encoded_len()
				+ VersionId::max_encoded_len()
				+ DatasetInfo::<T::AccountId>::max_encoded_len()
				+ 2 * u32::max_encoded_len(),
		);
		let _ = T::Currency::mint_into(owner, deposits + T::Currency::minimum_balance());
		let origin = frame_system::RawOrigin::Signed(owner.clone());
		let _ = Self::register_model(
			origin.clone().into(),
			ShortText::default(),
			benchmarking::architecture(MAX_LAYERS as LayerIndex),
			ShortText::default(),
			SemVer::new(1, 0, 0),
			layers,
			H256::zero(),
		);
		let _ = Self::register_dataset(
			origin.into(),
			benchmarking::cid(),
			H256::zero(),
			0,
			ShortText::default(),
		);
		(version, dataset)
	}
}

impl<T: Config> VersionAcceptance for Pallet<T> {
	fn accept(version: VersionId) -> DispatchResult {
		Self::decide(version, VersionStatus::Accepted)
	}

	fn reject(version: VersionId) -> DispatchResult {
		Self::decide(version, VersionStatus::Rejected)
	}
}

/// What clients (workers, wallets) ask the registry through the runtime.
pub mod runtime_api {
	use super::*;

	sp_api::decl_runtime_apis! {
		/// Model registry queries.
		pub trait ModelRegistryApi<AccountId, BlockNumber>
		where
			AccountId: codec::Codec,
			BlockNumber: codec::Codec,
		{
			/// A version's record.
			fn version(version: VersionId) -> Option<VersionInfo<AccountId, BlockNumber>>;
			/// The full layer set of a version: each layer from its nearest ancestor.
			fn resolve_layers(version: VersionId) -> Result<Vec<ResolvedLayer>, ResolveError>;
			/// The version and its ancestors, breadth-first, at most `max`.
			fn lineage(version: VersionId, max: u32) -> Vec<(VersionId, SemVer, VersionStatus)>;
		}
	}
}

/// Fixtures for the tests of pallets that build on the registry (feature `test-fixtures`).
#[cfg(feature = "test-fixtures")]
pub mod testing {
	use super::*;

	/// Registers a 2-layer model (its root version, 1.0.0, accepted) owned by `model_owner`,
	/// and a dataset owned by `data_owner`; returns their ids.
	pub fn two_layer_model_and_dataset<T: Config>(
		model_owner: T::AccountId,
		data_owner: T::AccountId,
	) -> Result<(VersionId, DatasetId), DispatchError> {
		let cid = |s: &str| Cid::truncate_from(s.as_bytes().to_vec());
		let delta = |layer| LayerDelta { layer, cid: cid("bafyroot"), merkle_root: H256::zero() };
		let version = NextVersionId::<T>::get();
		let dataset = NextDatasetId::<T>::get();
		Pallet::<T>::register_model(
			frame_system::RawOrigin::Signed(model_owner).into(),
			ShortText::truncate_from(b"m".to_vec()),
			Architecture {
				family: ShortText::truncate_from(b"mlp".to_vec()),
				config_hash: H256::zero(),
				config_cid: cid("bafycfg"),
				layer_count: 2,
			},
			ShortText::truncate_from(b"MIT".to_vec()),
			SemVer::new(1, 0, 0),
			LayerDeltas::truncate_from(alloc::vec![delta(0), delta(1)]),
			H256::zero(),
		)?;
		Pallet::<T>::register_dataset(
			frame_system::RawOrigin::Signed(data_owner).into(),
			cid("bafydata"),
			H256::zero(),
			1,
			ShortText::default(),
		)?;
		Ok((version, dataset))
	}
}
