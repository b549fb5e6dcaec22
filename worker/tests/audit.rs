//! The training audit across real processes (`blyan-node --dev`, a js-ipfs daemon, `blyan-worker`
//! miners and verifiers on 127.0.0.1): every miner records and publishes a training trace, the
//! verifiers re-run the spot-checked segments on the CPU, challenge what does not re-run bit for
//! bit, and bisection and arbitration settle who was right.
//!
//! The dev chain checkpoints every 10 steps and spot-checks up to 44 segments: every segment of
//! these short jobs is checked, so each cheat is caught deterministically.

mod common;

use std::time::Duration;

use blyan_worker::chain::VersionStatus;
use common::*;

const JOB_LIMIT: Duration = Duration::from_secs(420);
/// The dev chain's `challenge_bond`.
const CHALLENGE_BOND: u128 = 10 * BLY;

fn any_output(procs: &[Proc], text: &str) -> bool {
	procs.iter().any(|p| p.output().contains(text))
}

fn outputs(procs: &[Proc]) -> String {
	procs.iter().map(Proc::output).collect::<Vec<_>>().join("\n----\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_honest_trace_passes_and_a_false_challenge_costs_the_challenger_its_bond() {
	let _slot = network_slot().await;
	let net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Alice");
	// Ferdie: a fourth verifier, who challenges whatever it is given to check.
	net.run("//Ferdie", &["register", "--verifier", "--bond", "100"]);
	let chain = net.chain().await;
	// Eve as free + held: the version her result becomes holds the registry's storage deposit.
	let (eve_before, liar_before) =
		(free_and_held(&chain, "//Eve").await, free(&chain, "//Ferdie").await);

	let mut verifiers = verifiers(&net);
	let mut liar = net.spawn("verifier-ferdie", "//Ferdie", &["verify", "--false-challenges"]);
	let mut miner = net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1"]);
	let job = post_job(&net, &f, &["--steps", "40"]);
	let out = watch(&net, job, JOB_LIMIT);
	let (verdict, version) = verdict(&out);
	let all = |m: &Proc, l: &Proc, v: &[Proc]| {
		format!("{out}\n{}\n{}\n{}", m.output(), l.output(), outputs(v))
	};
	assert_eq!(verdict, "ACCEPTED", "{}", all(&miner, &liar, &verifiers));
	assert!(miner.wait(Duration::from_secs(60)).success(), "{}", miner.output());
	// Three of the four sit on the scoring committee: the fourth waits for a round; stop all.
	for v in verifiers.iter_mut() {
		v.kill();
	}
	liar.kill();

	// The trace was checked segment by segment, and the lie went to bisection and arbitration.
	assert!(miner.output().contains("training trace pinned to IPFS"), "{}", miner.output());
	assert!(any_output(&verifiers, "spot check passed"), "{}", all(&miner, &liar, &verifiers));
	assert!(liar.output().contains("MISBEHAVING: challenging"), "{}", liar.output());
	assert!(miner.output().contains("challenged: named the state"), "{}", miner.output());
	assert!(
		any_output(&verifiers, "arbitrated the disputed step"),
		"{}",
		all(&miner, &liar, &verifiers)
	);
	assert_eq!(chain.version(version).await.unwrap().unwrap().status, VersionStatus::Accepted);

	// The honest miner keeps its bond and earns half the challenger's (one per false challenge;
	// the liar may have been drawn to check more than one segment; the other half is burned)
	// on top of its reward.
	let eve = chain.worker_info(&account("//Eve")).await.unwrap().unwrap();
	assert_eq!(eve.bond, 100 * BLY, "never slashed");
	let eve_after = free_and_held(&chain, "//Eve").await;
	let reward = 100 * BLY * 85 / 100;
	assert!(eve_after + FEES >= eve_before + reward, "Eve: before {eve_before}, after {eve_after}");
	let lies = (eve_after + FEES - eve_before - reward) / (CHALLENGE_BOND / 2);
	assert!(lies >= 1, "Eve got no challenge bond: before {eve_before}, after {eve_after}");
	let lost = lies * CHALLENGE_BOND;
	// The liar lost its bonds (it may have earned a scoring fee, at most 10 % / 3 of the reward).
	let liar_after = free(&chain, "//Ferdie").await;
	assert!(
		// The liar sends a challenge and a bisection answer a step: twice the usual fees.
		liar_after + lost + 2 * FEES >= liar_before
			&& liar_after + lost <= liar_before + 100 * BLY / 10 / 3,
		"Ferdie: before {liar_before}, after {liar_after}"
	);
}

/// Runs one job mined by Eve with `cheat` and checks that the audit catches it: the version is
/// rejected, half of Eve's bond is slashed, half of that paid to the verifier who challenged
/// first and half burned.
async fn caught(cheat: &[&str], steps: &str, copy_from_first_job: bool) {
	let net = Net::start();
	let f = fixture(&net, &["//Eve", "//Ferdie"], "//Alice");
	let chain = net.chain().await;
	let mut verifiers = verifiers(&net);
	let mut copy_args: Vec<String> = Vec::new();
	if copy_from_first_job {
		// Another job's accepted result, trained honestly by Ferdie: the weights to copy.
		let mut honest = net.spawn("miner-ferdie", "//Ferdie", &["mine", "--jobs", "1"]);
		let job = post_job(&net, &f, &["--steps", steps]);
		let out = watch(&net, job, JOB_LIMIT);
		let (verdict, version) = verdict(&out);
		assert_eq!(verdict, "ACCEPTED", "{out}\n{}", honest.output());
		assert!(honest.wait(Duration::from_secs(60)).success(), "{}", honest.output());
		copy_args = vec!["--copy-from".into(), version.to_string()];
		for v in verifiers.iter_mut() {
			assert!(v.wait(Duration::from_secs(60)).success(), "{}", v.output());
		}
		verifiers = self::verifiers(&net);
	}
	let verifier_free: Vec<u128> = {
		let mut v = Vec::new();
		for who in ["//Bob", "//Charlie", "//Dave"] {
			v.push(free(&chain, who).await);
		}
		v
	};
	let mut args: Vec<String> = ["mine", "--jobs", "1"].iter().map(|s| s.to_string()).collect();
	args.extend(cheat.iter().map(|s| s.to_string()));
	args.extend(copy_args);
	let args: Vec<&str> = args.iter().map(String::as_str).collect();
	let miner = net.spawn("miner-eve", "//Eve", &args);
	let job = post_job(&net, &f, &["--steps", steps]);
	let out = watch(&net, job, JOB_LIMIT);
	let everyone = || format!("{out}\n{}\n{}", miner.output(), outputs(&verifiers));
	let (verdict, version) = verdict(&out);
	assert_eq!(verdict, "REJECTED", "{}", everyone());
	assert_eq!(chain.version(version).await.unwrap().unwrap().status, VersionStatus::Rejected);
	assert!(miner.output().contains("MISBEHAVING"), "{}", miner.output());
	assert!(any_output(&verifiers, "spot check FAILED"), "{}", everyone());

	// Half of Eve's 100 BLY bond slashed; half of that paid to the verifier whose challenge
	// proved the fraud, the rest burned.
	let eve = chain.worker_info(&account("//Eve")).await.unwrap().unwrap();
	assert_eq!(eve.bond, 50 * BLY, "{}", everyone());
	let mut gains = Vec::new();
	for (i, who) in ["//Bob", "//Charlie", "//Dave"].iter().enumerate() {
		gains.push(free(&chain, who).await as i128 - verifier_free[i] as i128);
	}
	assert!(
		// The challenger sent a challenge and a bisection answer a step: twice the usual fees.
		gains.iter().any(|g| *g + 2 * FEES as i128 >= 25 * BLY as i128),
		"no verifier was paid the slash: {gains:?}\n{}",
		everyone()
	);
	// The job never reached scoring: nobody earned a verifier fee or a dataset share from it.
	assert!(!any_output(&verifiers, "committed scores"), "{}", everyone());
	for mut v in verifiers {
		v.kill();
	}
}

#[tokio::test(flavor = "multi_thread")]
async fn a_miner_that_skips_steps_is_caught_by_a_spot_check_and_slashed() {
	let _slot = network_slot().await;
	caught(&["--misbehave", "skip-steps"], "20", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_miner_that_trains_on_other_data_is_caught_and_slashed() {
	let _slot = network_slot().await;
	caught(&["--misbehave", "other-data"], "20", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_miner_that_submits_weights_copied_from_another_job_is_caught_and_slashed() {
	let _slot = network_slot().await;
	caught(&["--misbehave", "copy-weights"], "20", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_miner_that_withholds_its_trace_is_reported_by_the_checkers_and_slashed() {
	let _slot = network_slot().await;
	let net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Alice");
	let chain = net.chain().await;
	let mut verifiers = verifiers(&net);
	let miner =
		net.spawn("miner-eve", "//Eve", &["mine", "--jobs", "1", "--misbehave", "withhold-trace"]);
	let job = post_job(&net, &f, &["--steps", "20"]);
	let out = watch(&net, job, JOB_LIMIT);
	let everyone = || format!("{out}\n{}\n{}", miner.output(), outputs(&verifiers));
	let (verdict, version) = verdict(&out);
	assert_eq!(verdict, "REJECTED", "{}", everyone());
	assert_eq!(chain.version(version).await.unwrap().unwrap().status, VersionStatus::Rejected);
	assert!(miner.output().contains("MISBEHAVING: withholding"), "{}", miner.output());
	// The checkers kept trying, then said so on chain.
	assert!(any_output(&verifiers, "reported the trace unavailable"), "{}", everyone());
	// Half of Eve's 100 BLY bond slashed (burned: nobody proved anything to be paid for).
	let eve = chain.worker_info(&account("//Eve")).await.unwrap().unwrap();
	assert_eq!(eve.bond, 50 * BLY, "{}", everyone());
	// The job never reached scoring.
	assert!(!any_output(&verifiers, "committed scores"), "{}", everyone());
	for v in verifiers.iter_mut() {
		v.kill();
	}
}
