//! A federated job across real processes on 127.0.0.1: `blyan-node`, a js-ipfs daemon, three
//! participants training on local data they never send, an aggregator (a miner with
//! `--fl-listen`), the creator and three verifiers. The aggregate model goes through the ordinary
//! commit / reveal / verification path: first a named, securely aggregated job, then an open call
//! with a bond aggregated by the median in the clear.

mod common;

use std::time::Duration;

use blyan_worker::chain::VersionStatus;
use common::*;

const JOB_LIMIT: Duration = Duration::from_secs(420);

#[tokio::test(flavor = "multi_thread")]
async fn a_federated_job_is_trained_from_local_data_and_accepted_through_verification() {
	let _slot = network_slot().await;
	let net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Ferdie");
	let chain = net.chain().await;
	let participants = ["//Ferdie", "//Eve//stash", "//Ferdie//stash"];
	// A fourth named participant keeps the default budget (ε = 10).
	let frugal = "//Alice//stash";
	// Three participants give little privacy whatever the noise: the test uses little noise and
	// raises their budgets to match (ε is about 10⁶).
	for p in participants {
		net.run(p, &["fl-budget", "10000000"]);
	}
	let mut named: Vec<&str> = participants.to_vec();
	named.push(frugal);
	let named = named.join(",");
	let job = post_job(
		&net,
		&f,
		&[
			"--fl-rounds",
			"2",
			"--fl-participants",
			&named,
			"--fl-min",
			"3",
			"--fl-rule",
			"secure",
			"--fl-threshold",
			"3",
			"--fl-clip",
			"20",
			"--fl-noise",
			"0.001",
			"--fl-local-steps",
			"20",
			"--steps",
			"20",
		],
	);
	let fed = chain.federated_job(job).await.unwrap().expect("the job is federated");
	assert_eq!(fed.spec.rounds, 2);
	assert!(fed.epsilon_milli > 10_000_000, "ε charged: {}", fed.epsilon_milli);

	// The frugal participant's budget refuses the job: nothing is charged.
	let mut refused = net.spawn(
		"participant-frugal",
		frugal,
		&["fl-participate", "--job", &job.to_string(), "--data-generate", "32"],
	);
	assert!(!refused.wait(Duration::from_secs(120)).success());
	assert!(refused.output().contains("PrivacyBudgetExceeded"), "{}", refused.output());
	assert_eq!(chain.privacy(&account(frugal)).await.unwrap().0, 0);

	let (version, log, participant_logs) = run_to_verdict(&net, job, &participants, "", 10);
	for log in &participant_logs {
		assert!(log.contains("round aggregated") && log.contains("all 2 rounds done"), "{log}");
	}
	assert_eq!(log.matches("round recorded").count(), 2, "{log}");
	for line in log.lines().chain(participant_logs[0].lines()).filter(|l| l.contains("round")) {
		println!("{line}");
	}

	// On chain: the aggregated model is an accepted version, both rounds are recorded with all
	// three contributors, and each participant's data has spent the job's ε.
	assert_eq!(chain.version(version).await.unwrap().unwrap().status, VersionStatus::Accepted);
	let fed = chain.federated_job(job).await.unwrap().expect("kept until closed");
	assert_eq!(fed.rounds_done, 2);
	for round in 0..2 {
		let cid = chain.federated_round(job, round).await.unwrap().expect("recorded");
		assert!(cid.starts_with("Qm") || cid.starts_with("baf"), "{cid}");
	}
	for p in participants {
		assert_eq!(chain.privacy(&account(p)).await.unwrap().0, fed.epsilon_milli);
	}

	// A second job: an open call with a 5 BLY bond, one round aggregated in the clear by the
	// coordinate-wise median.
	let open = post_job(
		&net,
		&f,
		&[
			"--fl-rounds",
			"1",
			"--fl-open-bond",
			"5",
			"--fl-min",
			"3",
			"--fl-rule",
			"median",
			"--fl-clip",
			"20",
			"--fl-noise",
			"0.001",
			"--fl-local-steps",
			"20",
			"--steps",
			"20",
		],
	);
	let held_before: Vec<u128> = {
		let mut v = Vec::new();
		for p in participants {
			v.push(chain.balance(&account(p)).await.unwrap().1);
		}
		v
	};
	run_to_verdict(&net, open, &participants, "open-", 20);
	let second = chain.federated_job(open).await.unwrap().expect("kept until closed");
	for (p, before) in participants.iter().zip(&held_before) {
		let (spent, _) = chain.privacy(&account(p)).await.unwrap();
		assert_eq!(
			spent,
			fed.epsilon_milli + second.epsilon_milli,
			"both jobs' ε are on {p}'s record"
		);
		assert_eq!(
			chain.balance(&account(p)).await.unwrap().1,
			before + 5 * blyan_worker::chain::BLY
		);
	}
	// The job is settled: anyone closes it, the bonds come back, the ε stays spent.
	let closed = net.run("//Dave", &["fl-close", &open.to_string()]);
	assert!(closed.contains("stays spent"), "{closed}");
	for (p, before) in participants.iter().zip(&held_before) {
		assert_eq!(chain.balance(&account(p)).await.unwrap().1, *before);
	}
	assert!(chain.federated_job(open).await.unwrap().is_none());
}

/// Runs federated `job` to its verdict: the three verifiers, `participants` each training on
/// its own generated data (seeds from `seed`) and Eve aggregating (`mine --fl-listen`); process
/// names start with `prefix`. Asserts the job is ACCEPTED and every process exits successfully;
/// returns the accepted version, the aggregator's log and each participant's log.
fn run_to_verdict(
	net: &Net,
	job: u64,
	participants: &[&str],
	prefix: &str,
	seed: usize,
) -> (u64, String, Vec<String>) {
	let mut verifiers = verifiers(net);
	let mut workers: Vec<Proc> = participants
		.iter()
		.enumerate()
		.map(|(i, p)| {
			net.spawn(
				&format!("{prefix}participant{i}"),
				p,
				&[
					"fl-participate",
					"--job",
					&job.to_string(),
					"--data-generate",
					"32",
					"--data-seed",
					&(seed + i).to_string(),
				],
			)
		})
		.collect();
	let fl_listen = format!("127.0.0.1:{}", free_port());
	let mut aggregator = net.spawn(
		&format!("{prefix}aggregator-eve"),
		"//Eve",
		&["mine", "--jobs", "1", "--fl-listen", &fl_listen],
	);
	let out = watch(net, job, JOB_LIMIT);
	let (outcome, version) = verdict(&out);
	assert_eq!(outcome, "ACCEPTED", "{out}\n{}", aggregator.output());
	assert!(aggregator.wait(Duration::from_secs(60)).success(), "{}", aggregator.output());
	for w in workers.iter_mut().chain(verifiers.iter_mut()) {
		assert!(w.wait(Duration::from_secs(60)).success(), "{}", w.output());
	}
	(version, aggregator.output(), workers.iter().map(Proc::output).collect())
}
