//! Every call and every error path of the registry, and layer resolution over a DAG.
use crate::{mock::*, *};
use frame_support::{assert_noop, assert_ok};

const OWNER: u64 = 1;
const OTHER: u64 = 2;

fn text(s: &str) -> ShortText {
	ShortText::truncate_from(s.as_bytes().to_vec())
}

fn cid(s: &str) -> Cid {
	Cid::truncate_from(s.as_bytes().to_vec())
}

fn delta(layer: LayerIndex, tag: &str) -> LayerDelta {
	LayerDelta { layer, cid: cid(tag), merkle_root: H256::repeat_byte(layer as u8) }
}

fn deltas(list: &[(LayerIndex, &str)]) -> LayerDeltas {
	LayerDeltas::truncate_from(list.iter().map(|(l, t)| delta(*l, t)).collect())
}

fn arch(layer_count: LayerIndex) -> Architecture {
	Architecture {
		family: text("mlp"),
		config_hash: H256::repeat_byte(9),
		config_cid: cid("bafyconfig"),
		layer_count,
	}
}

/// Registers a 3-layer model; returns its root version.
fn model(owner: u64) -> VersionId {
	let root = NextVersionId::<Test>::get();
	assert_ok!(Registry::register_model(
		RuntimeOrigin::signed(owner),
		text("tiny"),
		arch(3),
		text("MIT"),
		SemVer::new(1, 0, 0),
		deltas(&[(0, "r0"), (1, "r1"), (2, "r2")]),
		H256::repeat_byte(7),
	));
	root
}

fn candidate(
	parents: &[VersionId],
	semver: SemVer,
	layers: &[(LayerIndex, &str)],
) -> CandidateVersion {
	CandidateVersion {
		model: 0,
		parents: Parents::truncate_from(parents.to_vec()),
		semver,
		layers: deltas(layers),
		weight_root: H256::repeat_byte(8),
		adapter: None,
	}
}

fn lora(rank: u32) -> LoraParams {
	LoraParams { rank, alpha: 2 * rank, targets: LoraParams::ALL_TARGETS, rslora: false }
}

#[test]
fn register_model_stores_an_accepted_root_version() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		let info = Models::<Test>::get(0).unwrap();
		assert_eq!((info.owner, info.root_version, info.version_count), (OWNER, root, 1));
		let version = Versions::<Test>::get(root).unwrap();
		assert_eq!(version.status, VersionStatus::Accepted);
		assert!(version.parents.is_empty());
		assert_eq!(VersionLayers::<Test>::get(root).len(), 3);
		assert_eq!(VersionBySemVer::<Test>::get(0, SemVer::new(1, 0, 0)), Some(root));
		System::assert_last_event(
			Event::ModelRegistered { model: 0, owner: OWNER, root_version: root }.into(),
		);
	});
}

#[test]
fn register_model_errors() {
	new_test_ext().execute_with(|| {
		let call = |a: Architecture, l: LayerDeltas| {
			Registry::register_model(
				RuntimeOrigin::signed(OWNER),
				text("m"),
				a,
				text("MIT"),
				SemVer::new(1, 0, 0),
				l,
				H256::zero(),
			)
		};
		assert_noop!(call(arch(0), deltas(&[(0, "a")])), Error::<Test>::BadLayerCount);
		assert_noop!(
			call(arch(MAX_LAYERS as u16 + 1), deltas(&[(0, "a")])),
			Error::<Test>::BadLayerCount
		);
		let mut no_cid = arch(1);
		no_cid.config_cid = Cid::default();
		assert_noop!(call(no_cid, deltas(&[(0, "a")])), Error::<Test>::EmptyCid);
		assert_noop!(call(arch(2), deltas(&[(0, "a")])), Error::<Test>::IncompleteRootVersion);
		assert_noop!(call(arch(2), deltas(&[])), Error::<Test>::NoLayers);
		assert_noop!(call(arch(2), deltas(&[(1, "a"), (0, "b")])), Error::<Test>::BadLayerIndex);
		assert_noop!(call(arch(2), deltas(&[(0, "a"), (0, "b")])), Error::<Test>::BadLayerIndex);
		assert_noop!(call(arch(2), deltas(&[(0, "a"), (2, "b")])), Error::<Test>::BadLayerIndex);
		assert_noop!(call(arch(2), deltas(&[(0, "a"), (1, "")])), Error::<Test>::EmptyCid);
		model(OWNER);
		model(OWNER);
		assert_noop!(call(arch(1), deltas(&[(0, "a")])), Error::<Test>::TooManyModels);
		assert_noop!(
			Registry::register_model(
				frame_system::RawOrigin::None.into(),
				text("m"),
				arch(1),
				text("MIT"),
				SemVer::new(1, 0, 0),
				deltas(&[(0, "a")]),
				H256::zero(),
			),
			sp_runtime::DispatchError::BadOrigin
		);
	});
}

#[test]
fn propose_version_stores_a_candidate_delta() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		assert_ok!(Registry::propose_version(
			RuntimeOrigin::signed(OWNER),
			candidate(&[root], SemVer::new(1, 1, 0), &[(1, "v1")])
		));
		let v = Versions::<Test>::get(1).unwrap();
		assert_eq!(v.status, VersionStatus::Candidate);
		assert_eq!(VersionLayers::<Test>::get(1).len(), 1);
		assert_eq!(Models::<Test>::get(0).unwrap().version_count, 2);
		System::assert_last_event(
			Event::VersionProposed {
				model: 0,
				version: 1,
				semver: SemVer::new(1, 1, 0),
				parents: Parents::truncate_from(vec![root]),
				proposer: OWNER,
			}
			.into(),
		);
	});
}

#[test]
fn propose_version_errors() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		let propose = |who, c| Registry::propose_version(RuntimeOrigin::signed(who), c);
		let mut unknown = candidate(&[root], SemVer::new(1, 1, 0), &[(0, "a")]);
		unknown.model = 9;
		assert_noop!(propose(OWNER, unknown), Error::<Test>::UnknownModel);
		assert_noop!(
			propose(OTHER, candidate(&[root], SemVer::new(1, 1, 0), &[(0, "a")])),
			Error::<Test>::NotModelOwner
		);
		assert_noop!(
			propose(OWNER, candidate(&[], SemVer::new(1, 1, 0), &[(0, "a")])),
			Error::<Test>::BadParents
		);
		assert_noop!(
			propose(OWNER, candidate(&[root, root], SemVer::new(1, 1, 0), &[(0, "a")])),
			Error::<Test>::BadParents
		);
		assert_noop!(
			propose(OWNER, candidate(&[42], SemVer::new(1, 1, 0), &[(0, "a")])),
			Error::<Test>::UnknownVersion
		);
		assert_noop!(
			propose(OWNER, candidate(&[root], SemVer::new(1, 0, 0), &[(0, "a")])),
			Error::<Test>::SemVerNotIncreasing
		);
		assert_noop!(
			propose(OWNER, candidate(&[root], SemVer::new(1, 1, 0), &[])),
			Error::<Test>::NoLayers
		);
		assert_noop!(
			propose(OWNER, candidate(&[root], SemVer::new(1, 1, 0), &[(3, "a")])),
			Error::<Test>::BadLayerIndex
		);
		// Another model's version cannot be a parent.
		let other_root = model(OTHER);
		assert_noop!(
			propose(OWNER, candidate(&[other_root], SemVer::new(1, 1, 0), &[(0, "a")])),
			Error::<Test>::ParentOfOtherModel
		);
		assert_ok!(propose(OWNER, candidate(&[root], SemVer::new(1, 1, 0), &[(0, "a")])));
		assert_noop!(
			propose(OWNER, candidate(&[root], SemVer::new(1, 1, 0), &[(0, "b")])),
			Error::<Test>::SemVerTaken
		);
		// A rejected version cannot be built on.
		assert_ok!(<Registry as VersionAcceptance>::reject(2));
		assert_noop!(
			propose(OWNER, candidate(&[2], SemVer::new(1, 2, 0), &[(0, "b")])),
			Error::<Test>::RejectedParent
		);
		assert_ok!(propose(OWNER, candidate(&[root], SemVer::new(1, 2, 0), &[(0, "b")])));
		assert_ok!(propose(OWNER, candidate(&[root], SemVer::new(1, 3, 0), &[(0, "c")])));
		// MaxVersionsPerModel = 4 (root + 3).
		assert_noop!(
			propose(OWNER, candidate(&[root], SemVer::new(1, 4, 0), &[(0, "d")])),
			Error::<Test>::TooManyVersions
		);
	});
}

#[test]
fn register_dataset_and_its_errors() {
	new_test_ext().execute_with(|| {
		let reg = |who, c: &str| {
			Registry::register_dataset(
				RuntimeOrigin::signed(who),
				cid(c),
				H256::zero(),
				10,
				text("CC0"),
			)
		};
		assert_noop!(reg(OWNER, ""), Error::<Test>::EmptyCid);
		assert_ok!(reg(OWNER, "bafydata"));
		assert_eq!(Datasets::<Test>::get(0).unwrap().owner, OWNER);
		assert_eq!(<Registry as ModelRegistry<u64>>::dataset_owner(0), Some(OWNER));
		assert_eq!(<Registry as ModelRegistry<u64>>::dataset_owner(1), None);
		System::assert_last_event(Event::DatasetRegistered { dataset: 0, owner: OWNER }.into());
		assert_ok!(reg(OWNER, "bafydata2"));
		assert_noop!(reg(OWNER, "bafydata3"), Error::<Test>::TooManyDatasets);
		assert_ok!(reg(OTHER, "bafydata3"));
	});
}

#[test]
fn only_candidates_are_accepted_or_rejected_once() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		assert_noop!(<Registry as VersionAcceptance>::accept(root), Error::<Test>::NotCandidate);
		assert_noop!(<Registry as VersionAcceptance>::accept(99), Error::<Test>::UnknownVersion);
		let v = <Registry as ModelRegistry<u64>>::propose_candidate(
			&OTHER,
			candidate(&[root], SemVer::new(1, 1, 0), &[(0, "a")]),
		)
		.unwrap();
		assert_eq!(Versions::<Test>::get(v).unwrap().proposer, OTHER);
		assert_ok!(<Registry as VersionAcceptance>::accept(v));
		System::assert_last_event(Event::VersionAccepted { model: 0, version: v }.into());
		assert_noop!(<Registry as VersionAcceptance>::reject(v), Error::<Test>::NotCandidate);
		assert_eq!(
			<Registry as ModelRegistry<u64>>::version(v).map(|s| s.status),
			Some(VersionStatus::Accepted)
		);
	});
}

#[test]
fn an_adapter_version_resolves_to_its_base_and_keeps_its_adapters_apart() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		let propose = |c| Registry::propose_version(RuntimeOrigin::signed(OWNER), c);
		assert_ok!(propose(candidate(&[root], SemVer::new(1, 1, 0), &[(1, "full1")])));
		let adapters = CandidateVersion {
			adapter: Some(lora(8)),
			..candidate(&[1], SemVer::new(1, 2, 0), &[(0, "lora0"), (1, "lora1"), (2, "lora2")])
		};
		let before = held(OWNER);
		assert_ok!(propose(adapters.clone()));
		// Four entries now: the adapters' description holds its deposit too.
		assert_eq!(held(OWNER) - before, Registry::version_deposit(&adapters));
		assert_eq!(
			Registry::version_deposit(&adapters),
			Registry::version_deposit(&CandidateVersion { adapter: None, ..adapters.clone() })
				+ <Test as Config>::DepositPerItem::get()
				// The 10 bytes of rank, alpha, targets and rslora.
				+ 10 * <Test as Config>::DepositPerByte::get()
		);
		assert_eq!(VersionAdapters::<Test>::get(2), Some(lora(8)));
		assert_eq!(VersionAdapters::<Test>::get(1), None);
		// The base's layers (the parent's and the root's), never the adapter blobs.
		let got: Vec<_> = Registry::resolve_layers(2, 16)
			.unwrap()
			.into_iter()
			.map(|l| (l.source_version, l.delta.cid.to_vec()))
			.collect();
		assert_eq!(got, vec![(0, b"r0".to_vec()), (1, b"full1".to_vec()), (0, b"r2".to_vec())]);
		assert_eq!(VersionLayers::<Test>::get(2)[2].cid.to_vec(), b"lora2".to_vec());
		let summary = <Registry as ModelRegistry<u64>>::version(2).unwrap();
		assert_eq!(summary.adapter, Some(lora(8)));
	});
}

#[test]
fn adapters_go_over_one_full_weight_parent_and_in_bounds() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		let propose = |c| Registry::propose_version(RuntimeOrigin::signed(OWNER), c);
		assert_ok!(propose(candidate(&[root], SemVer::new(1, 1, 0), &[(1, "full1")])));
		let adapters = |parents: &[VersionId], semver, adapter| CandidateVersion {
			adapter: Some(adapter),
			..candidate(parents, semver, &[(0, "lora0")])
		};
		assert_noop!(
			propose(adapters(&[root, 1], SemVer::new(2, 0, 0), lora(4))),
			Error::<Test>::AdapterParents
		);
		for bad in [
			lora(0),
			lora(LoraParams::MAX_RANK + 1),
			LoraParams { alpha: 0, ..lora(4) },
			LoraParams { targets: 0, ..lora(4) },
			LoraParams { targets: 0x80, ..lora(4) },
		] {
			assert_noop!(
				propose(adapters(&[1], SemVer::new(2, 0, 0), bad)),
				Error::<Test>::BadAdapter
			);
		}
		assert_ok!(propose(adapters(&[1], SemVer::new(1, 2, 0), lora(4))));
		// Nothing builds on adapters: neither more adapters nor whole layers nor a merge.
		assert_noop!(
			propose(adapters(&[2], SemVer::new(1, 3, 0), lora(4))),
			Error::<Test>::AdapterParent
		);
		assert_noop!(
			propose(candidate(&[2], SemVer::new(1, 3, 0), &[(0, "x")])),
			Error::<Test>::AdapterParent
		);
		assert_noop!(
			propose(candidate(&[1, 2], SemVer::new(2, 0, 0), &[(0, "x")])),
			Error::<Test>::AdapterParent
		);
	});
}

#[test]
fn resolve_layers_takes_the_nearest_ancestor_per_layer_across_a_merge() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		let propose = |c| Registry::propose_version(RuntimeOrigin::signed(OWNER), c);
		// root ─ a (changes layer 1) ─┐
		//      └ b (changes 1 and 2) ─┴ merge (changes 0; first parent a)
		assert_ok!(propose(candidate(&[root], SemVer::new(1, 1, 0), &[(1, "a1")])));
		assert_ok!(propose(candidate(&[root], SemVer::new(1, 2, 0), &[(1, "b1"), (2, "b2")])));
		assert_ok!(propose(candidate(&[1, 2], SemVer::new(2, 0, 0), &[(0, "m0")])));
		let layers = Registry::resolve_layers(3, 16).unwrap();
		let got: Vec<_> = layers.iter().map(|l| (l.source_version, l.delta.cid.to_vec())).collect();
		assert_eq!(got, vec![(3, b"m0".to_vec()), (1, b"a1".to_vec()), (2, b"b2".to_vec())]);
		assert_eq!(
			Registry::resolve_layers(root, 16).unwrap()[2].delta.cid.to_vec(),
			b"r2".to_vec()
		);
		assert_eq!(Registry::resolve_layers(9, 16), Err(ResolveError::UnknownVersion));
		assert_eq!(Registry::resolve_layers(3, 1), Err(ResolveError::LineageTooLong));
		let lineage: Vec<_> = Registry::lineage(3, 10).into_iter().map(|(v, ..)| v).collect();
		assert_eq!(lineage, vec![3, 1, 2, 0]);
		assert_eq!(Registry::lineage(3, 2).len(), 2);
	});
}

#[test]
fn propose_candidate_checks_before_it_writes() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		let bad = candidate(&[root], SemVer::new(0, 9, 0), &[(0, "a")]);
		assert_noop!(
			<Registry as ModelRegistry<u64>>::propose_candidate(&OTHER, bad),
			Error::<Test>::SemVerNotIncreasing
		);
		assert_eq!(NextVersionId::<Test>::get(), 1);
		let good = candidate(&[root], SemVer::new(1, 1, 0), &[(0, "a")]);
		assert_ok!(<Registry as ModelRegistry<u64>>::propose_candidate(&OTHER, good));
		assert_eq!(NextVersionId::<Test>::get(), 2);
	});
}

#[test]
fn a_reserved_semver_holds_a_version_slot_until_used_or_released() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		let reg = |model, semver, base| {
			<Registry as ModelRegistry<u64>>::reserve_semver(model, semver, base, &OTHER)
		};
		assert_noop!(reg(0, SemVer::new(0, 9, 0), root), Error::<Test>::SemVerNotIncreasing);
		assert_noop!(reg(0, SemVer::new(1, 0, 0), root), Error::<Test>::SemVerNotIncreasing);
		assert_noop!(reg(0, SemVer::new(1, 1, 0), 7), Error::<Test>::UnknownVersion);
		assert_ok!(reg(0, SemVer::new(1, 1, 0), root));
		assert_noop!(reg(0, SemVer::new(1, 1, 0), root), Error::<Test>::SemVerReserved);
		assert_eq!(Models::<Test>::get(0).unwrap().version_count, 2);
		// The owner cannot take it.
		assert_noop!(
			Registry::propose_version(
				RuntimeOrigin::signed(OWNER),
				candidate(&[root], SemVer::new(1, 1, 0), &[(0, "a")])
			),
			Error::<Test>::SemVerReserved
		);
		// MaxVersionsPerModel = 4: root + two reservations + one candidate fill it.
		assert_ok!(reg(0, SemVer::new(1, 2, 0), root));
		assert_ok!(Registry::propose_version(
			RuntimeOrigin::signed(OWNER),
			candidate(&[root], SemVer::new(1, 3, 0), &[(0, "b")])
		));
		assert_noop!(reg(0, SemVer::new(1, 4, 0), root), Error::<Test>::TooManyVersions);
		// A reserved SemVer is still proposable through the trait when the model is full.
		assert_ok!(<Registry as ModelRegistry<u64>>::propose_candidate(
			&OTHER,
			candidate(&[root], SemVer::new(1, 1, 0), &[(0, "c")])
		));
		assert_eq!(Models::<Test>::get(0).unwrap().version_count, 4);
		assert!(!ReservedSemVers::<Test>::contains_key(0, SemVer::new(1, 1, 0)));
		// Releasing frees the slot.
		<Registry as ModelRegistry<u64>>::release_semver(0, SemVer::new(1, 2, 0));
		assert_eq!(Models::<Test>::get(0).unwrap().version_count, 3);
		assert_ok!(reg(0, SemVer::new(1, 4, 0), root));
	});
}

#[test]
fn exhausted_ids_are_a_named_error() {
	new_test_ext().execute_with(|| {
		NextModelId::<Test>::put(ModelId::MAX);
		assert_noop!(
			Registry::register_model(
				RuntimeOrigin::signed(OWNER),
				text("m"),
				arch(1),
				text("MIT"),
				SemVer::new(1, 0, 0),
				deltas(&[(0, "a")]),
				H256::zero(),
			),
			Error::<Test>::IdsExhausted
		);
		NextDatasetId::<Test>::put(DatasetId::MAX);
		assert_noop!(
			Registry::register_dataset(
				RuntimeOrigin::signed(OWNER),
				cid("bafy"),
				H256::zero(),
				1,
				text("CC0")
			),
			Error::<Test>::IdsExhausted
		);
	});
}

/// The registry's storage deposit held on `who`.
fn held(who: u64) -> Balance {
	use frame_support::traits::fungible::InspectHold;
	Balances::balance_on_hold(&HoldReason::StorageDeposit.into(), &who)
}

/// The deposit the entries of the registry's state cost at the mock's rates (10 per entry,
/// 1 per byte), summed over what is stored, independently of how the pallet computes it.
fn deposit_of_state() -> Balance {
	let bytes = |n: usize| n as Balance;
	let models: Balance = Models::<Test>::iter_values().map(|m| 10 + bytes(m.encoded_size())).sum();
	let versions: Balance = Versions::<Test>::iter()
		.map(|(id, v)| {
			10 + 10 + bytes(v.encoded_size() + VersionLayers::<Test>::get(id).encoded_size())
		})
		.sum();
	let semver_index: Balance =
		VersionBySemVer::<Test>::iter_values().map(|id| 10 + bytes(id.encoded_size())).sum();
	let adapters: Balance =
		VersionAdapters::<Test>::iter_values().map(|a| 10 + bytes(a.encoded_size())).sum();
	let datasets: Balance =
		Datasets::<Test>::iter_values().map(|d| 10 + bytes(d.encoded_size())).sum();
	let owner_counters: Balance = ModelsOwned::<Test>::iter_values()
		.chain(DatasetsOwned::<Test>::iter_values())
		.map(|n| 10 + bytes(n.encoded_size()))
		.sum();
	models + versions + semver_index + adapters + datasets + owner_counters
}

#[test]
fn every_entry_written_holds_its_deposit_per_entry_and_byte() {
	new_test_ext().execute_with(|| {
		let root = model(OWNER);
		let after_model = held(OWNER);
		assert_eq!(after_model, deposit_of_state());
		assert_eq!(Balances::free_balance(OWNER), FUNDS - after_model);

		assert_ok!(Registry::propose_version(
			RuntimeOrigin::signed(OWNER),
			candidate(&[root], SemVer::new(1, 1, 0), &[(1, "v1"), (2, "v2")])
		));
		// A job's result is proposed for its miner, who pays for it.
		assert_ok!(<Registry as ModelRegistry<u64>>::propose_candidate(
			&OTHER,
			candidate(&[root], SemVer::new(1, 2, 0), &[(0, "w0")])
		));
		// Adapters hold a deposit for their description too.
		assert_ok!(<Registry as ModelRegistry<u64>>::propose_candidate(
			&OTHER,
			CandidateVersion {
				adapter: Some(lora(4)),
				..candidate(&[root], SemVer::new(1, 3, 0), &[(1, "a1"), (2, "a2")])
			}
		));
		assert_ok!(Registry::register_dataset(
			RuntimeOrigin::signed(OTHER),
			cid("bafydata"),
			H256::zero(),
			10,
			text("CC0"),
		));
		assert!(held(OWNER) > after_model && held(OTHER) > 0);
		assert_eq!(held(OWNER) + held(OTHER), deposit_of_state());
	});
}

/// The attack: per-owner bounds stop one account, not a thousand. Each fresh account that
/// writes registry state pays for it, and one that cannot pay writes nothing.
#[test]
fn fresh_accounts_pay_for_the_state_they_write_and_an_unfunded_one_writes_nothing() {
	new_test_ext().execute_with(|| {
		const BROKE: u64 = 10;
		let root = model(OWNER);
		let before = (NextModelId::<Test>::get(), NextVersionId::<Test>::get());
		assert_noop!(
			Registry::register_model(
				RuntimeOrigin::signed(BROKE),
				text("spam"),
				arch(1),
				text("MIT"),
				SemVer::new(1, 0, 0),
				deltas(&[(0, "s")]),
				H256::zero(),
			),
			Error::<Test>::InsufficientDeposit
		);
		assert_noop!(
			Registry::register_dataset(
				RuntimeOrigin::signed(BROKE),
				cid("bafyspam"),
				H256::zero(),
				1,
				text("CC0"),
			),
			Error::<Test>::InsufficientDeposit
		);
		assert_noop!(
			<Registry as ModelRegistry<u64>>::propose_candidate(
				&BROKE,
				candidate(&[root], SemVer::new(1, 1, 0), &[(0, "s")])
			),
			Error::<Test>::InsufficientDeposit
		);
		assert_eq!((NextModelId::<Test>::get(), NextVersionId::<Test>::get()), before);

		// A miner that could not pay for its result's version learns it when it commits, not
		// at the reveal (where it would lose its lease): the reservation checks the deposit of
		// the largest version the model can have.
		assert_noop!(
			<Registry as ModelRegistry<u64>>::reserve_semver(0, SemVer::new(1, 1, 0), root, &BROKE),
			Error::<Test>::InsufficientDeposit
		);
		assert_noop!(
			<Registry as ModelRegistry<u64>>::ensure_can_propose(0, &BROKE),
			Error::<Test>::InsufficientDeposit
		);
		assert_noop!(
			<Registry as ModelRegistry<u64>>::ensure_can_propose(9, &OWNER),
			Error::<Test>::UnknownModel
		);
		let largest = Registry::largest_version_deposit(3);
		Balances::set_balance(&BROKE, largest);
		assert_noop!(
			<Registry as ModelRegistry<u64>>::reserve_semver(0, SemVer::new(1, 1, 0), root, &BROKE),
			Error::<Test>::InsufficientDeposit
		);
		Balances::set_balance(&BROKE, largest + 1);
		assert_ok!(<Registry as ModelRegistry<u64>>::reserve_semver(
			0,
			SemVer::new(1, 1, 0),
			root,
			&BROKE
		));
		assert_ok!(<Registry as ModelRegistry<u64>>::ensure_can_propose(0, &BROKE));
		assert_eq!(held(BROKE), 0, "checked, not held");
		// The largest version a 3-layer model can have is at least any real one's deposit.
		let full = candidate(&[root], SemVer::new(1, 1, 0), &[(0, "s0"), (1, "s1"), (2, "s2")]);
		assert!(largest >= Registry::version_deposit(&full));
		assert_ok!(<Registry as ModelRegistry<u64>>::propose_candidate(&BROKE, full));
		assert_eq!(Balances::free_balance(BROKE), largest + 1 - held(BROKE));

		// Eight sybils, each at its per-owner bound of two models and two datasets: the
		// bounds do not stop them, the deposits make each byte cost the same.
		for sybil in 2..=9 {
			for n in 0..2 {
				assert_ok!(Registry::register_model(
					RuntimeOrigin::signed(sybil),
					text("spam"),
					arch(3),
					text("MIT"),
					SemVer::new(1, 0, 0),
					deltas(&[(0, "s0"), (1, "s1"), (2, "s2")]),
					H256::zero(),
				));
				assert_ok!(Registry::register_dataset(
					RuntimeOrigin::signed(sybil),
					cid(if n == 0 { "bafyspam0" } else { "bafyspam1" }),
					H256::zero(),
					1,
					text("CC0"),
				));
			}
		}
		let held_by_all: Balance = (1..=10).map(held).sum();
		assert_eq!(held_by_all, deposit_of_state());
		assert!(held(9) > 2 * (30 + 10 + 10));
	});
}
