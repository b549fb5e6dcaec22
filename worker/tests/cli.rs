//! What an operator sees when something is missing or wrong: a named problem and a distinct
//! exit code (2 settings, 3 node, 4 IPFS), never a panic.

mod common;

use std::{os::unix::fs::PermissionsExt, process::Command};

use common::*;

fn worker(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
	let mut cmd = Command::new(worker_binary());
	cmd.args(args).env_remove("BLYAN_KEY").env_remove("BLYAN_KEY_FILE").env_remove("BLYAN_NODE");
	for (k, v) in envs {
		cmd.env(k, v);
	}
	let out = cmd.output().unwrap();
	let text =
		format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
	assert!(!text.contains("panicked"), "{text}");
	(out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_missing_or_unsafe_key_is_a_settings_error() {
	let (code, text) = worker(&["status"], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("no signing key"), "{text}");

	let dir = tempfile::tempdir().unwrap();
	let file = dir.path().join("key");
	std::fs::write(&file, "//Alice").unwrap();
	std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
	let (code, text) = worker(&["status", "--key-file", file.to_str().unwrap()], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(
		text.contains("chmod 600") && !text.contains("//Alice"),
		"the secret must not be echoed: {text}"
	);

	let (code, text) = worker(&["status", "--key", "not a key"], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("not a valid secret URI") && !text.contains("not a key"), "{text}");

	// A private file with a bad secret: refused, and the secret is not echoed.
	std::fs::write(&file, "bottle wrong secret").unwrap();
	std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
	let (code, text) = worker(&["status", "--key-file", file.to_str().unwrap()], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("not a valid secret URI") && !text.contains("bottle"), "{text}");
}

#[test]
fn key_import_writes_an_owner_only_file() {
	let dir = tempfile::tempdir().unwrap();
	let file = dir.path().join("key");
	let mut child = Command::new(worker_binary())
		.args(["key-import", file.to_str().unwrap()])
		.stdin(std::process::Stdio::piped())
		.stdout(std::process::Stdio::piped())
		.spawn()
		.unwrap();
	use std::io::Write;
	child.stdin.take().unwrap().write_all(b"//Eve\n").unwrap();
	assert!(child.wait().unwrap().success());
	assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn an_unreachable_node_is_exit_code_3() {
	let url = format!("ws://127.0.0.1:{}", free_port());
	let (code, text) =
		worker(&["status", "--key", "//Alice", "--node", &url, "--reconnect-secs", "1"], &[]);
	assert_eq!(code, 3, "{text}");
	assert!(text.contains("cannot reach the node"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_ipfs_daemon_is_exit_code_4() {
	let _slot = network_slot().await;
	let net = Net::start();
	net.run("//Eve", &["register"]);
	let ipfs = format!("http://127.0.0.1:{}", free_port());
	let (code, text) = worker(
		&["mine", "--key", "//Eve", "--node", &net.node_url(), "--ipfs", &ipfs],
		&[("BLYAN_STATE_DIR", net.path("state-eve").to_str().unwrap())],
	);
	assert_eq!(code, 4, "{text}");
	assert!(text.contains("IPFS RPC") && text.contains("unreachable"), "{text}");
	// And a bad hyper-parameter set is refused before anything is sent.
	let (code, text) = worker(
		&[
			"job-post",
			"--key",
			"//Alice",
			"--node",
			&net.node_url(),
			"--base-version",
			"0",
			"--dataset",
			"0",
			"--steps",
			"0",
		],
		&[],
	);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("steps"), "{text}");
}

#[test]
fn model_export_refuses_to_write_over_files_before_touching_the_chain() {
	let node = format!("ws://127.0.0.1:{}", free_port());
	let out = tempfile::tempdir().unwrap();
	let kept = out.path().join("config.json");
	std::fs::write(&kept, "mine").unwrap();
	let dir = out.path().to_str().unwrap();
	let (code, text) = worker(&["model-export", "1", "--out", dir, "--node", &node], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("is not empty"), "{text}");
	assert_eq!(std::fs::read_to_string(&kept).unwrap(), "mine");
	let (code, text) =
		worker(&["model-export", "1", "--out", "/tmp/none", "--shards", "0", "--node", &node], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("--shards"), "{text}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_cpu_build_refuses_to_declare_or_use_cuda_before_touching_the_chain() {
	// No node is running at this address: the refusal comes first.
	let node = format!("ws://127.0.0.1:{}", free_port());
	let (code, text) =
		worker(&["register", "--backends", "cpu,cuda", "--key", "//Alice", "--node", &node], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(
		text.contains("cannot declare the CUDA backend") && text.contains("--features cuda"),
		"{text}"
	);

	let (code, text) = worker(
		&["serve", "--version", "1", "--device", "cuda:1", "--key", "//Alice", "--node", &node],
		&[],
	);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("--device cuda:1") && text.contains("built without CUDA"), "{text}");

	let (code, text) = worker(&["serve", "--version", "1", "--device", "gpu"], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("expected cpu, cuda or cuda:N"), "{text}");

	let out = tempfile::tempdir().unwrap();
	let report = out.path().join("gpu.json");
	let (code, text) = worker(&["gpu-check", "--out", report.to_str().unwrap()], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("built without CUDA") && !report.exists(), "{text}");
}

#[test]
fn the_self_test_passes_here_on_one_and_on_several_threads() {
	let mut outputs = Vec::new();
	for threads in ["1", "2"] {
		let (code, text) = worker(&["self-test", "--threads", threads], &[]);
		assert_eq!(code, 0, "{text}");
		assert!(text.contains("self-test passed"), "{text}");
		assert!(text.contains(&format!("threads {threads},")), "{text}");
		// The digests, without the thread count and timing line.
		outputs.push(
			text.lines().filter(|l| !l.starts_with("threads")).collect::<Vec<_>>().join("\n"),
		);
	}
	assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn register_refuses_to_bond_a_machine_that_fails_the_self_test_unless_forced() {
	// This machine made to expect another score: it "computes other bits". No node runs at this
	// address, so getting past the gate shows as the node error (exit code 3).
	let node = format!("ws://127.0.0.1:{}", free_port());
	let failing = [("BLYAN_SELF_TEST_EXPECT_SCORE", "1")];
	let args = ["register", "--key", "//Alice", "--node", &node, "--reconnect-secs", "1"];
	let (code, text) = worker(&args, &failing);
	assert_eq!(code, 1, "{text}");
	assert!(
		text.contains("self-test failed")
			&& text.contains("evaluation: got")
			&& text.contains("want 1")
			&& text.contains("not bonding (--force bonds anyway)"),
		"{text}"
	);
	assert!(!text.contains("cannot reach the node"), "{text}");

	let (code, text) = worker(&[&args[..], &["--force"]].concat(), &failing);
	assert_eq!(code, 3, "{text}");
	assert!(
		text.contains("bonding anyway (--force)") && text.contains("cannot reach the node"),
		"{text}"
	);

	let (code, text) = worker(&args, &[]);
	assert_eq!(code, 3, "{text}");
	assert!(text.contains("self-test passed") && text.contains("cannot reach the node"), "{text}");
}

#[test]
fn a_gateway_says_who_may_use_it_and_api_keys_are_issued_listed_and_revoked() {
	// A gateway spends its account's BLY on each request: it does not start open by default.
	let (code, text) = worker(&["gateway", "--version", "1", "--key", "//Bob"], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("--api-keys"), "{text}");
	let dir = tempfile::tempdir().unwrap();
	let file = dir.path().join("keys.json");
	let file = file.to_str().unwrap();
	// No chain is needed to issue keys.
	let (code, text) = worker(
		&["api-key", "--file", file, "create", "--name", "ops", "--daily-tokens", "500"],
		&[],
	);
	assert_eq!(code, 0, "{text}");
	let key = text.lines().find_map(|l| l.strip_prefix("key: ")).expect("the key is shown");
	assert!(key.starts_with("bly-"), "{text}");
	assert!(!std::fs::read_to_string(file).unwrap().contains(&key[4..]), "only its hash is kept");
	let id = text.split_whitespace().nth(1).unwrap().to_string();
	let (code, text) = worker(&["api-key", "--file", file, "list"], &[]);
	assert_eq!(code, 0, "{text}");
	assert!(text.contains(&id) && text.contains("ops") && text.contains("500"), "{text}");
	assert!(text.contains("active"), "{text}");
	let (code, text) = worker(&["api-key", "--file", file, "revoke", &id], &[]);
	assert_eq!(code, 0, "{text}");
	let (_, text) = worker(&["api-key", "--file", file, "list"], &[]);
	assert!(text.contains("revoked"), "{text}");
	let (code, text) = worker(&["api-key", "--file", file, "revoke", "key-none"], &[]);
	assert_eq!(code, 2, "{text}");
	assert!(text.contains("no key key-none"), "{text}");
	let (code, text) =
		worker(&["api-key", "--file", file, "create", "--name", "x", "--daily-tokens", "0"], &[]);
	assert_eq!(code, 2, "{text}");
}
