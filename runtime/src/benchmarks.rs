//! The pallets `frame-omni-bencher` measures in this runtime (`scripts/bench-weights`).

use alloc::{string::String, vec::Vec};
use frame_benchmarking::{BenchmarkBatch, BenchmarkConfig, BenchmarkList};
use frame_support::traits::WhitelistedStorageKeys;

#[allow(unused_imports)]
use crate::{
	Federated, FreeTier, Governance, Inference, Jobs, PolRewards, Registry, Runtime, TrainingAudit,
};

frame_benchmarking::define_benchmarks!(
	[pallet_model_registry, Registry]
	[pallet_jobs, Jobs]
	[pallet_pol_rewards, PolRewards]
	[pallet_governance, Governance]
	[pallet_free_tier, FreeTier]
	[pallet_inference, Inference]
	[pallet_federated, Federated]
	[pallet_training_audit, TrainingAudit]
);

pub fn list(list: &mut Vec<BenchmarkList>, extra: bool) {
	list_benchmarks!(list, extra);
}

pub fn dispatch(config: &BenchmarkConfig) -> Result<Vec<BenchmarkBatch>, String> {
	let whitelist = crate::AllPalletsWithSystem::whitelisted_storage_keys();
	let mut batches = Vec::<BenchmarkBatch>::new();
	let params = (config, &whitelist);
	add_benchmarks!(params, batches);
	Ok(batches)
}
