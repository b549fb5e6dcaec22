//! The web app (`web/`) in real Chromium against a live network on 127.0.0.1: `blyan-node`, a
//! js-ipfs daemon, a registered model with a live job, `blyan-worker serve` announcing the whole
//! model, and `blyan-worker gateway --web web/dist` serving the app and the OpenAI API.
//! `web/test/browser.mjs` (playwright-core driving Debian's chromium) compares every page with
//! the node's RPC, chats in the playground, casts a vote and checks the tally, and checks a
//! phone's width; its screenshots stay in `$CARGO_TARGET_TMPDIR/web-screenshots`.

mod common;

use std::{
	os::unix::process::CommandExt,
	path::PathBuf,
	process::Command,
	time::{Duration, Instant},
};

use common::*;

fn web_dir() -> PathBuf {
	PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// The browser script's process group, killed whole however the test ends.
struct Group(u32);

impl Drop for Group {
	fn drop(&mut self) {
		// Through bash's own `kill` (kill(2) on the group: nothing if it is gone). procps'
		// `/usr/bin/kill -KILL -PGID` of a group that no longer exists was seen to kill every
		// process of the machine's user.
		if self.0 > 1 {
			let script = r#"kill -KILL -- "-$1" 2>/dev/null"#;
			let pgid = self.0.to_string();
			let _ = Command::new("bash").args(["-c", script, "kill-group", &pgid]).status();
		}
	}
}

/// What the playground checks of an answer in the browser (`web/src/verify.ts`: each stage's
/// signature over its commitment, the root of the route's commitments a receipt carries) agrees
/// with the worker's encoding, signatures and Merkle tree on a three-stage route (an odd row),
/// and refuses tampered ones (`web/test/verify.mjs`).
#[test]
fn the_browsers_commitment_checks_agree_with_the_workers() {
	use blyan_worker::{
		chain::{chunk_commitment_payload, ChunkCommitment, H256},
		inference::commitments::{route_root, SignedCommitment},
	};
	use subxt_signer::sr25519::dev;
	let web = web_dir();
	assert!(
		web.join("node_modules/esbuild").is_dir(),
		"the web app's packages are not installed: run ./scripts/setup.sh (npm ci in web/)"
	);
	let genesis = H256([7; 32]);
	let route: Vec<Option<SignedCommitment>> = [dev::alice(), dev::bob(), dev::charlie()]
		.iter()
		.zip(0u8..)
		.map(|(key, i)| {
			let commitment = ChunkCommitment {
				server: key.public_key().to_account_id(),
				version: 3 + u64::from(i) * 5_000_000_000,
				layers: (u16::from(i) * 2, u16::from(i) * 2 + 300),
				session: [i + 1; 16],
				positions: 40 + u32::from(i) * 70_000,
				transcript: [0x10 + i; 32],
				bit_exact: i != 1,
			};
			let signature = key.sign(&chunk_commitment_payload(&genesis, &commitment)).0;
			Some(SignedCommitment { commitment, signature })
		})
		.collect();
	let roots: Vec<_> = (1..=route.len())
		.map(|n| serde_json::json!({ "stages": n, "root": hex::encode(route_root(&route[..n])) }))
		.collect();
	let fixture = serde_json::json!({
		"genesis": hex::encode(genesis),
		"route": route.iter().flatten().map(SignedCommitment::to_json).collect::<Vec<_>>(),
		"roots": roots,
	});
	let dir = tempfile::tempdir().unwrap();
	let path = dir.path().join("route.json");
	std::fs::write(&path, fixture.to_string()).unwrap();
	let mut command = Command::new("node");
	command.arg("test/verify.mjs").arg(&path).current_dir(&web).process_group(0);
	let mut node = Proc::spawn("verify", command, dir.path().join("verify.log"));
	let status = node.wait(Duration::from_secs(120));
	let output = node.output();
	assert!(status.success(), "verify.ts disagrees with the worker:\n{output}");
	assert!(output.contains("ok verify.ts agrees with the worker on 3 stages"), "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_shows_the_chains_data_a_chat_completes_and_a_vote_shows_in_the_tally() {
	let web = web_dir();
	assert!(
		web.join("dist/index.html").is_file() && web.join("node_modules/playwright-core").is_dir(),
		"the web app is not built: run ./scripts/setup.sh (npm ci and npm run build in web/)"
	);
	let _slot = network_slot().await;
	let net = Net::start();
	// A model, its dataset and a live job (Bob, Charlie and Dave bond as verifiers).
	let f = fixture(&net, &[], "//Dave");
	let job = post_job(&net, &f, &[]);
	let version = f.root_version.to_string();

	let (serve_port, gateway_port) = (free_port(), free_port());
	let serve_listen = format!("127.0.0.1:{serve_port}");
	let server = net.spawn(
		"serve-charlie",
		"//Charlie",
		&["serve", "--version", &version, "--listen", &serve_listen],
	);
	server.wait_for_output("announced version", Duration::from_secs(120));
	let gateway_listen = format!("127.0.0.1:{gateway_port}");
	let dist = web.join("dist");
	let gateway = net.spawn(
		"gateway",
		"//Bob",
		&[
			"gateway",
			"--version",
			&version,
			"--listen",
			&gateway_listen,
			"--no-auth",
			"--web",
			dist.to_str().unwrap(),
		],
	);
	gateway.wait_for_output("web app at", Duration::from_secs(120));

	let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
	let _ = std::fs::remove_dir_all(&out);
	let mut command = Command::new("node");
	command
		.args(["test/browser.mjs", &format!("http://{gateway_listen}"), &net.node_url()])
		.arg(&out)
		.current_dir(&web)
		.process_group(0);
	let mut browser = Proc::spawn("browser", command, net.path("browser.log"));
	let _group = Group(browser.pid());
	let started = Instant::now();
	let status = browser.wait(Duration::from_secs(420));
	let output = browser.output();
	println!("{output}");
	assert!(
		status.success(),
		"the browser checks failed after {:?} (screenshots in {}):\n{output}\ngateway:\n{}",
		started.elapsed(),
		out.display(),
		gateway.output()
	);
	assert!(output.contains("ok jobs: the live jobs (1)"), "job #{job} not checked:\n{output}");
	assert!(output.contains("all browser checks passed"));
	for page in ["network", "models", "jobs", "playground", "servers", "miner", "governance"] {
		assert!(out.join(format!("{page}.png")).is_file(), "no screenshot of {page}");
	}
}
