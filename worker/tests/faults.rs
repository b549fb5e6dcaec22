//! Faults under running workers, on loopback with the real binaries: the IPFS daemon killed
//! (SIGKILL) while a miner uploads its trained layers, and the node killed and restarted under
//! inference servers and a gateway, given that node alone or a second one to fail over to.
//! Bounded in time; every process is killed by PID.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const JOB_LIMIT: Duration = Duration::from_secs(600);

/// The value of an unlabelled sample (or of the first sample whose line starts with `name`).
fn sample(metrics: &str, name: &str) -> f64 {
	metrics
		.lines()
		.find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
		.and_then(|l| l.rsplit(' ').next())
		.and_then(|v| v.parse().ok())
		.unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
}

/// The worker's metrics at `addr`, as Prometheus text.
async fn scrape(addr: &str) -> String {
	reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ipfs_daemon_killed_while_the_miner_uploads_its_layers_the_miner_retries_and_the_job_completes(
) {
	let _slot = network_slot().await;
	let mut net = Net::start();
	let f = fixture(&net, &["//Eve"], "//Ferdie");
	let _verifiers = verifiers(&net);
	let metrics_port = free_port();
	let metrics_listen = format!("127.0.0.1:{metrics_port}");
	let miner = net.spawn(
		"miner-eve",
		"//Eve",
		// Two jobs: still running, and serving its metrics, after the first.
		&["--metrics-listen", &metrics_listen, "mine", "--jobs", "2"],
	);
	let job = post_job(&net, &f, &["--steps", "60"]);

	// Training has read the base weights and the data: kill IPFS before the trained layers go
	// to it, and keep it down until the miner has met the dead daemon.
	miner.wait_for_output("training loss", Duration::from_secs(120));
	net.kill_ipfs();
	miner.wait_for_output("is unreachable", Duration::from_secs(120));
	std::thread::sleep(Duration::from_secs(3));
	net.start_ipfs();

	let out = watch(&net, job, JOB_LIMIT);
	assert_eq!(verdict(&out).0, "ACCEPTED", "{out}\n{}", miner.output());

	let metrics = scrape(&metrics_listen).await;
	assert!(sample(&metrics, "blyan_worker_ipfs_errors_total") >= 1.0, "{metrics}");
	assert_eq!(sample(&metrics, "blyan_worker_jobs_claimed_total"), 1.0, "{metrics}");
	assert_eq!(sample(&metrics, "blyan_worker_results_committed_total"), 1.0, "{metrics}");
	assert_eq!(sample(&metrics, "blyan_worker_results_revealed_total"), 1.0, "{metrics}");
	// Every optimizer step but a run's first (which also loads the model) timed, once per
	// training run (a retried upload does not retrain, or trains again from the same seed).
	let steps = sample(&metrics, "blyan_worker_train_step_seconds_count");
	assert!(steps == 59.0 || steps == 118.0, "{metrics}");
	// The reward shows in the earnings once the verdict is final and the miner has seen it.
	let start = Instant::now();
	loop {
		let metrics = scrape(&metrics_listen).await;
		if metrics.contains("blyan_worker_jobs_finished_total{outcome=\"accepted\"} 1")
			&& sample(&metrics, "blyan_worker_earned_bly_total") >= 85.0
		{
			break;
		}
		assert!(start.elapsed() < Duration::from_secs(60), "no earnings recorded:\n{metrics}");
		tokio::time::sleep(Duration::from_millis(500)).await;
	}
}

async fn complete(
	http: &reqwest::Client,
	gateway: &str,
	model: &str,
	prompt: &str,
) -> Result<Value, String> {
	let body = json!({"model": model, "prompt": prompt, "max_tokens": 6, "temperature": 0});
	let response = http
		.post(format!("{gateway}/v1/completions"))
		.json(&body)
		.timeout(Duration::from_secs(30))
		.send()
		.await
		.map_err(|e| e.to_string())?;
	let status = response.status();
	let text = response.text().await.map_err(|e| e.to_string())?;
	if !status.is_success() {
		return Err(format!("{status}: {text}"));
	}
	serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_restarted_under_serving_workers_requests_are_answered_throughout_and_paid_after()
{
	serve_through_a_node_outage(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serving_workers_given_two_nodes_fail_over_to_the_second_when_the_first_dies() {
	serve_through_a_node_outage(true).await;
}

/// Two servers and a gateway serve through a SIGKILL and restart of the (validating) node;
/// with `failover` they were given a second node too (`--node a,b`) and move to it at once.
async fn serve_through_a_node_outage(failover: bool) {
	let _slot = network_slot().await;
	let mut net = Net::start();
	let out =
		net.run("//Alice", &["model-init", "--name", "tiny", "--arch", "tiny", "--seed", "1"]);
	let line = out.lines().find(|l| l.starts_with("model ")).expect("model line");
	let version: String = line.split_whitespace().nth(3).unwrap().to_string();
	let peer = failover.then(|| net.start_peer());
	let nodes = match &peer {
		Some(peer) => format!("{},{peer}", net.node_url()),
		None => net.node_url(),
	};

	// Two servers of the whole model and a gateway routing over their announcements.
	let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
	let listen = |p: u16| format!("127.0.0.1:{p}");
	let (l0, l1, lg) = (listen(ports[0]), listen(ports[1]), listen(ports[2]));
	let serve = |name: &str, key: &str, l: &str| {
		let args = ["serve", "--version", &version, "--listen", l, "--settle-secs", "1"];
		net.spawn_with_nodes(name, key, &nodes, &args)
	};
	let servers = [serve("serve-charlie", "//Charlie", &l0), serve("serve-dave", "//Dave", &l1)];
	for s in &servers {
		s.wait_for_output("announced version", Duration::from_secs(120));
	}
	let gateway_args =
		["gateway", "--version", &version, "--listen", &lg, "--no-auth", "--check-rate", "0"];
	let gateway = net.spawn_with_nodes("gateway", "//Bob", &nodes, &gateway_args);
	gateway.wait_for_output("gateway for version", Duration::from_secs(60));
	let gateway_url = format!("http://{lg}");
	let model = format!("blyan-{version}");
	let http = reqwest::Client::new();
	let mut answered = 0u64;
	for i in 0..3 {
		complete(&http, &gateway_url, &model, &format!("add {i} 1 = "))
			.await
			.expect("before the restart");
		answered += 1;
	}

	// The node dies (SIGKILL): every request made while it is away is still answered.
	net.kill_node();
	if let Some(peer) = &peer {
		// Given a second node, every role moves to it at once.
		for s in servers.iter().chain([&gateway]) {
			s.wait_for_output(
				&format!("reconnected to the node at {peer}"),
				Duration::from_secs(60),
			);
		}
	}
	for i in 0..6 {
		let r = complete(&http, &gateway_url, &model, &format!("add {i} 2 = ")).await;
		r.unwrap_or_else(|e| panic!("request {i} failed with the node down: {e}"));
		answered += 1;
	}
	// It comes back on its database; the servers and the gateway reconnect (to it, or stay on
	// the second node, which hands their transactions on).
	net.start_node();
	for s in servers.iter().chain([&gateway]) {
		s.wait_for_output("reconnected to the node", Duration::from_secs(90));
	}
	for i in 0..3 {
		complete(&http, &gateway_url, &model, &format!("add {i} 3 = "))
			.await
			.expect("after the restart");
		answered += 1;
	}

	// Nothing served is lost: each answered request left one receipt with one of the servers,
	// and all of them are settled on chain once the node is back.
	let start = Instant::now();
	loop {
		let counted: u64 = servers
			.iter()
			.flat_map(|s| {
				s.output()
					.lines()
					.filter_map(|l| l.strip_prefix("settled ")?.split(' ').next()?.parse().ok())
					.collect::<Vec<u64>>()
			})
			.sum();
		if counted == answered {
			break;
		}
		assert!(
			start.elapsed() < Duration::from_secs(90),
			"{counted} of {answered} receipts settled:\n{}\n{}",
			servers[0].output(),
			servers[1].output()
		);
		tokio::time::sleep(Duration::from_millis(500)).await;
	}
	let chain = net.chain().await;
	let bob = account("//Bob");
	let mut on_chain = 0;
	for server in ["//Charlie", "//Dave"] {
		on_chain += chain.settled_nonce(&bob, &account(server)).await.unwrap().is_some() as u32;
	}
	assert!(on_chain >= 1, "no settlement of Bob's receipts on chain");
}
