//! The registry's storage invariants: checked by `try-runtime` after each block and by the mock
//! runtimes after every test.

use super::*;
use alloc::collections::BTreeMap;
use sp_runtime::TryRuntimeError;

impl<T: Config> Pallet<T> {
	/// Ids below their counters, owners' counts matching what they own, every version indexed
	/// under its SemVer, adapter versions over one full-weight parent, reservations apart from taken SemVers, and each model's version slots
	/// (`version_count`) its versions plus its reservations.
	pub fn do_try_state() -> Result<(), TryRuntimeError> {
		let mut models_owned: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		let mut slots: BTreeMap<ModelId, u32> = BTreeMap::new();
		for (id, model) in Models::<T>::iter() {
			ensure!(id < NextModelId::<T>::get(), "a model id at or above NextModelId");
			let root = Versions::<T>::get(model.root_version).ok_or("a model without its root")?;
			ensure!(root.model == id, "a model's root version belongs to another model");
			*models_owned.entry(model.owner).or_default() += 1;
			slots.insert(id, 0);
		}
		ensure!(
			ModelsOwned::<T>::iter().all(|(owner, n)| models_owned.get(&owner) == Some(&n))
				&& models_owned.len() == ModelsOwned::<T>::iter().count(),
			"ModelsOwned does not count each owner's models"
		);
		for (id, version) in Versions::<T>::iter() {
			ensure!(id < NextVersionId::<T>::get(), "a version id at or above NextVersionId");
			let count = slots.get_mut(&version.model).ok_or("a version of an unknown model")?;
			*count += 1;
			ensure!(
				VersionBySemVer::<T>::get(version.model, version.semver) == Some(id),
				"a version missing from VersionBySemVer"
			);
			ensure!(!VersionLayers::<T>::get(id).is_empty(), "a version without layers");
			for parent in version.parents.iter() {
				let parent =
					Versions::<T>::get(parent).ok_or("a version with an unknown parent")?;
				ensure!(parent.model == version.model, "a parent of another model");
				ensure!(parent.semver < version.semver, "a parent's SemVer not below its child's");
			}
		}
		for (id, adapter) in VersionAdapters::<T>::iter() {
			let version = Versions::<T>::get(id).ok_or("adapters of no version")?;
			ensure!(adapter.check().is_ok(), "adapters out of bounds");
			ensure!(version.parents.len() == 1, "an adapter version without exactly one parent");
			ensure!(
				!VersionAdapters::<T>::contains_key(version.parents[0]),
				"an adapter version over another adapter version"
			);
		}
		for (model, semver, id) in VersionBySemVer::<T>::iter() {
			let version = Versions::<T>::get(id).ok_or("VersionBySemVer names no version")?;
			ensure!(
				version.model == model && version.semver == semver,
				"VersionBySemVer names another version"
			);
		}
		for (model, semver, ()) in ReservedSemVers::<T>::iter() {
			ensure!(
				!VersionBySemVer::<T>::contains_key(model, semver),
				"a reserved SemVer is taken"
			);
			*slots.get_mut(&model).ok_or("a reservation for an unknown model")? += 1;
		}
		for (id, model) in Models::<T>::iter() {
			ensure!(
				slots.get(&id) == Some(&model.version_count),
				"version_count is not versions plus reservations"
			);
		}
		let mut datasets_owned: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		for (id, dataset) in Datasets::<T>::iter() {
			ensure!(id < NextDatasetId::<T>::get(), "a dataset id at or above NextDatasetId");
			*datasets_owned.entry(dataset.owner).or_default() += 1;
		}
		ensure!(
			DatasetsOwned::<T>::iter().all(|(owner, n)| datasets_owned.get(&owner) == Some(&n))
				&& datasets_owned.len() == DatasetsOwned::<T>::iter().count(),
			"DatasetsOwned does not count each owner's datasets"
		);
		Ok(())
	}
}
