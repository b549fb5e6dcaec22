//! Inference across real processes on 127.0.0.1: `blyan-node`, a js-ipfs daemon, `blyan-worker
//! serve` holding the whole tiny model or one of two pipeline stages (announced on chain), and
//! `blyan-worker gateway` letting in bearers of its API keys, routing over the announcements,
//! opening each stage session with a signed grant and paying with receipts.

mod common;

use std::time::{Duration, Instant};

use blyan_worker::{
	chain::{self, Chain, Receipt, H256},
	inference::{
		commitments::{self, SignedCommitment},
		protocol::{encode_request, ForwardRequest},
		sessions::{SessionOpener, GRANT_HEADER},
	},
	ml::{
		hf::{load_checkpoint, save_checkpoint},
		infer::Activations,
		init_layers,
		model::ModelConfig,
	},
};
use common::*;
use serde_json::{json, Value};

fn port_arg(port: u16) -> String {
	format!("127.0.0.1:{port}")
}

fn tokens(completion: &Value) -> Vec<u64> {
	completion["blyan"]["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect()
}

async fn health(http: &reqwest::Client, base: &str) -> Option<Value> {
	let r = http.get(format!("{base}/health")).send().await.ok()?;
	r.json().await.ok()
}

async fn stage_metrics(http: &reqwest::Client, port: u16) -> String {
	let url = format!("http://127.0.0.1:{port}/metrics");
	http.get(url).send().await.unwrap().text().await.unwrap()
}

async fn signer(net: &Net, uri: &str) -> Chain {
	let key = blyan_worker::config::load_key(Some(uri), None).unwrap();
	chain::connect_with_retry(&net.node_url(), &key, Duration::from_secs(60)).await.unwrap()
}

/// The pallet error a call failed with: typed, decoded from the chain's metadata.
fn refusal(result: Result<chain::Events, chain::ChainError>) -> chain::InferenceError {
	match result {
		Ok(_) => panic!("the chain accepted what it must refuse"),
		Err(e) => match e.pallet_error() {
			Some(chain::RuntimeError::Inference(error)) => error.clone(),
			_ => panic!("not refused by the inference pallet: {e}"),
		},
	}
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_serves_what_one_server_does_survives_a_dead_stage_and_is_paid_once() {
	let _slot = network_slot().await;
	let net = Net::start();
	// The model comes from a Hugging Face Qwen3 checkpoint (two bf16 safetensors shards) written
	// here; its layers are kept as bf16 on IPFS, and every server below decodes and checks them.
	let checkpoint = net.path("hf-checkpoint");
	std::fs::create_dir_all(&checkpoint).unwrap();
	let config = ModelConfig::tiny();
	save_checkpoint(&checkpoint, &config, &init_layers(&config, 1), 2, true, false).unwrap();
	let (_, bf16_layers) = load_checkpoint(&checkpoint).unwrap();
	let hf_dir = checkpoint.display().to_string();
	let out = net.run("//Alice", &["model-init", "--name", "tiny", "--hf-dir", &hf_dir]);
	assert!(out.contains("layers stored as bf16"), "{out}");
	let line = out.lines().find(|l| l.starts_with("model ")).expect("model line");
	let version: String = line.split_whitespace().nth(3).unwrap().to_string();
	// The registered version exports back to the same checkpoint (every layer fetched and
	// checked against its Merkle root); a byte model has no tokenizer files.
	let exported = net.path("exported");
	let exported_dir = exported.display().to_string();
	net.run("//Ferdie", &["model-export", &version, "--out", &exported_dir, "--shards", "3"]);
	let (exported_config, exported_layers) = load_checkpoint(&exported).unwrap();
	assert_eq!(exported_config, config);
	assert_eq!(exported_layers, bf16_layers);
	assert_ne!(exported_layers, init_layers(&config, 1), "rounded to bf16 by the checkpoint");
	assert!(!exported.join("tokenizer.json").exists());

	// One server with the whole model (not announced), and a two-stage pipeline whose second
	// stage has a standby.
	let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
	let (whole_url, gateway_url) =
		(format!("http://127.0.0.1:{}", ports[0]), format!("http://127.0.0.1:{}", ports[4]));
	let serve = |name: &str, key: &str, port: u16, extra: &[&str]| {
		let listen = port_arg(port);
		let mut args =
			vec!["serve", "--version", &version, "--listen", &listen, "--settle-secs", "2"];
		args.extend_from_slice(extra);
		net.spawn(name, key, &args)
	};
	let whole = serve("whole", "//Ferdie", ports[0], &["--no-announce", "--no-auth"]);
	// Each chunk at the first stage takes 20 ms more: a generation lasts long enough to kill a
	// stage in the middle of it.
	let first = serve(
		"stage-0-2",
		"//Charlie",
		ports[1],
		&["--layers", "0..2", "--simulate-latency-ms", "20"],
	);
	let second = serve("stage-2-4", "//Dave", ports[2], &["--layers", "2..4"]);
	let standby = serve("stage-2-4-standby", "//Eve", ports[3], &["--layers", "2..4"]);
	let limit = Duration::from_secs(120);
	whole.wait_for_output("serving version", limit);
	for stage in [&first, &second, &standby] {
		stage.wait_for_output("announced version", limit);
	}
	// Bob's gateway lets in bearers of the keys he issued: one without a quota (every request
	// below), one of 20 tokens a day.
	let keys_file = net.path("api-keys.json").display().to_string();
	let issue = |name: &str, extra: &[&str]| {
		let mut args = vec!["api-key", "--file", &keys_file, "create", "--name", name];
		args.extend_from_slice(extra);
		let out = net.run("//Bob", &args);
		let key = out.lines().find_map(|l| l.strip_prefix("key: ")).expect("key line");
		let id = out.lines().find_map(|l| l.strip_prefix("created ")).expect("created line");
		(key.trim().to_string(), id.split_whitespace().next().unwrap().to_string())
	};
	let (key, _) = issue("tests", &[]);
	let (small_key, small_id) = issue("small", &["--daily-tokens", "20"]);
	let gateway_listen = port_arg(ports[4]);
	// No spot checks (worker/src/inference/checks.rs has them): their replays would open sessions
	// at the second stages, which the kill below tells apart by the sessions they hold.
	let gateway = net.spawn(
		"gateway",
		"//Bob",
		&[
			"gateway",
			"--version",
			&version,
			"--listen",
			&gateway_listen,
			"--api-keys",
			&keys_file,
			"--check-rate",
			"0",
		],
	);
	gateway.wait_for_output("gateway for version", limit);

	let bearer = |key: &str| {
		let mut headers = reqwest::header::HeaderMap::new();
		headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
		reqwest::Client::builder().default_headers(headers).build().unwrap()
	};
	let http = bearer(&key);
	let model = format!("blyan-{version}");
	let models: Value =
		http.get(format!("{gateway_url}/v1/models")).send().await.unwrap().json().await.unwrap();
	assert_eq!(models["data"][0]["id"], model.as_str());

	// 1. The pipeline and the single server give the same tokens (greedy, same prompt).
	let request =
		json!({ "model": model, "prompt": "add 12 30 = ", "max_tokens": 24, "temperature": 0 });
	let alone = complete(&http, &whole_url, request.clone()).await;
	let piped = complete(&http, &gateway_url, request).await;
	assert_eq!(tokens(&alone).len(), 24);
	assert_eq!(tokens(&alone), tokens(&piped), "single server: {alone}\npipeline: {piped}");
	assert_eq!(piped["usage"]["prompt_tokens"], 12);
	assert_eq!(piped["usage"]["completion_tokens"], 24);
	// Each receipt the gateway signed names every stage's last signed commitment of the request
	// (their Merkle root, in route order); each stage took its receipt only with a proof that its
	// own commitment is in it (settled below).
	let route: Vec<_> = piped["blyan"]["route"]
		.as_array()
		.unwrap()
		.iter()
		.map(|stage| SignedCommitment::from_json(&stage["commitment"]))
		.collect();
	assert!(route.len() >= 2 && route.iter().all(Option::is_some), "{piped}");
	let root = hex::encode(commitments::route_root(&route));
	assert_eq!(piped["blyan"]["commitments_root"], root.as_str());
	let receipts = piped["blyan"]["receipts"].as_array().unwrap();
	assert_eq!(receipts.len(), route.len(), "{piped}");
	assert!(receipts.iter().all(|r| r["commitments"] == root.as_str()), "{piped}");
	// Seeded sampling is as reproducible as greedy decoding.
	let sampled = json!({ "model": model, "prompt": "rev abc = ", "max_tokens": 16, "temperature": 0.8, "seed": 42 });
	assert_eq!(
		tokens(&complete(&http, &whole_url, sampled.clone()).await),
		tokens(&complete(&http, &gateway_url, sampled).await)
	);
	// Concurrent requests (batched at each stage) give what each gives alone.
	let prompts: Vec<String> = (0..6).map(|i| format!("add {i} {} = ", 7 * i)).collect();
	let ask = |base: String, prompt: String| {
		let http = http.clone();
		let body = json!({ "model": model, "prompt": prompt, "max_tokens": 12, "temperature": 0 });
		async move { tokens(&complete(&http, &base, body).await) }
	};
	let together =
		futures::future::join_all(prompts.iter().map(|p| ask(gateway_url.clone(), p.clone())))
			.await;
	for (prompt, got) in prompts.iter().zip(together) {
		assert_eq!(got, ask(whole_url.clone(), prompt.clone()).await, "{prompt}");
	}
	// ... and the first stage (20 ms a batch) did run them in batches.
	let metrics = http
		.get(format!("http://127.0.0.1:{}/metrics", ports[1]))
		.send()
		.await
		.unwrap()
		.text()
		.await
		.unwrap();
	let counter = |name: &str| -> f64 {
		metrics
			.lines()
			.find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
			.unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
	};
	assert!(
		counter("blyan_stage_batches_total ") < counter("blyan_stage_chunks_total "),
		"no chunk was batched with another:\n{metrics}"
	);
	// The chat endpoint of the single server.
	let chat: Value = http
		.post(format!("{whole_url}/v1/chat/completions"))
		.json(&json!({ "messages": [{ "role": "user", "content": "hi" }], "max_tokens": 4 }))
		.send()
		.await
		.unwrap()
		.json()
		.await
		.unwrap();
	assert_eq!(chat["object"], "chat.completion");
	assert_eq!(chat["choices"][0]["message"]["role"], "assistant");

	// Access. The gateway spends Bob's BLY on each request: without one of his keys, or with a
	// wrong or revoked one, a request gets 401 and an OpenAI error object.
	let short =
		json!({ "model": model, "prompt": "add 12 30 = ", "max_tokens": 24, "temperature": 0 });
	let anonymous = reqwest::Client::new();
	let wrong = bearer(&format!("bly-{}", "0".repeat(64)));
	for (who, client) in [("no key", &anonymous), ("a wrong key", &wrong)] {
		let r =
			client.post(format!("{gateway_url}/v1/completions")).json(&short).send().await.unwrap();
		assert_eq!(r.status(), 401, "{who}");
		let body: Value = r.json().await.unwrap();
		assert_eq!(body["error"]["code"], "invalid_api_key", "{who}: {body}");
	}
	// A key of 20 tokens a day: the 12-token prompt leaves 8 to generate, then nothing.
	let small = bearer(&small_key);
	let capped = complete(&small, &gateway_url, short.clone()).await;
	assert_eq!(capped["usage"]["completion_tokens"], 8, "{capped}");
	assert_eq!(tokens(&capped), tokens(&alone)[..8], "cut short, not changed");
	let r = small.post(format!("{gateway_url}/v1/completions")).json(&short).send().await.unwrap();
	assert_eq!(r.status(), 429);
	let body: Value = r.json().await.unwrap();
	assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
	let usage: Value =
		small.get(format!("{gateway_url}/v1/usage")).send().await.unwrap().json().await.unwrap();
	assert_eq!((usage["tokens_today"].as_u64(), usage["requests"].as_u64()), (Some(20), Some(1)));
	net.run("//Bob", &["api-key", "--file", &keys_file, "revoke", &small_id]);
	let r = small.get(format!("{gateway_url}/v1/usage")).send().await.unwrap();
	assert_eq!(r.status(), 401, "revoked: refused at its next request");

	// A stage computes only for sessions opened by a client that can pay: a chunk without a
	// grant is refused (401), one of a session it never opened too (409), and so is a session
	// opened by an account holding nothing (402); Bob's grant opens one.
	let stage_url = format!("http://127.0.0.1:{}/v1/stage/forward", ports[1]);
	let chunk = |session: [u8; 16], position: u32| {
		encode_request(&ForwardRequest {
			session,
			position,
			input: Activations::Tokens(vec![1, 2, 3]),
		})
	};
	let post = |body: Vec<u8>, grant: Option<String>| {
		let mut request = anonymous.post(&stage_url).body(body);
		if let Some(grant) = grant {
			request = request.header(GRANT_HEADER, grant);
		}
		async move { request.send().await.unwrap().status().as_u16() }
	};
	assert_eq!(post(chunk([3; 16], 0), None).await, 401);
	assert_eq!(post(chunk([3; 16], 5), None).await, 409);
	let version_id: u64 = version.parse().unwrap();
	let genesis = net.chain().await.genesis_hash();
	let opener = |uri: &str| {
		let key = blyan_worker::config::load_key(Some(uri), None).unwrap();
		SessionOpener::new(key, genesis, false)
	};
	let (nobody, bob_opener) = (opener("//Nobody"), opener("//Bob"));
	let grant =
		|opener: &SessionOpener, session| opener.grant(&account("//Charlie"), version_id, &session);
	assert_eq!(post(chunk([3; 16], 0), Some(grant(&nobody, [3; 16]))).await, 402);
	// Signed for the first stage's server: no other server takes it.
	let elsewhere = format!("http://127.0.0.1:{}/v1/stage/forward", ports[2]);
	let misdirected = anonymous
		.post(&elsewhere)
		.header(GRANT_HEADER, grant(&bob_opener, [4; 16]))
		.body(chunk([4; 16], 0))
		.send()
		.await
		.unwrap();
	assert_eq!(misdirected.status(), 401);
	assert_eq!(post(chunk([3; 16], 0), Some(grant(&bob_opener, [3; 16]))).await, 200);
	assert_eq!(post(chunk([3; 16], 3), None).await, 200, "an open session needs no grant");
	anonymous
		.post(format!("http://127.0.0.1:{}/v1/stage/end", ports[1]))
		.body(vec![3u8; 16])
		.send()
		.await
		.unwrap();
	let refused = stage_metrics(&anonymous, ports[1]).await;
	assert!(refused.contains("blyan_stage_chunks_refused_total 3\n"), "{refused}");

	// 2. A stage killed in the middle of a streamed completion: the gateway reroutes to the
	// standby, replays the prefix, and the completion is still the single server's.
	let unpaid = |metrics: &str| {
		let line = metrics.lines().find_map(|l| l.strip_prefix("blyan_stage_positions_unpaid "));
		line.and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or_else(|| panic!("{metrics}"))
	};
	let unpaid_at_first_stage = unpaid(&stage_metrics(&anonymous, ports[1]).await);
	let long =
		json!({ "model": model, "prompt": "sort 3 1 2 = ", "max_tokens": 60, "temperature": 0 });
	let expected = tokens(&complete(&http, &whole_url, long.clone()).await);
	let mut stream_request = long.clone();
	stream_request["stream"] = json!(true);
	let mut response = http
		.post(format!("{gateway_url}/v1/completions"))
		.json(&stream_request)
		.send()
		.await
		.unwrap();
	assert!(response.status().is_success());
	let (mut streamed, mut buffer, mut killed, mut done) = (Vec::new(), String::new(), None, false);
	let mut stages = vec![(second, ports[2]), (standby, ports[3])];
	let started = Instant::now();
	while !done {
		assert!(started.elapsed() < Duration::from_secs(60), "stream stalled: {streamed:?}");
		let Some(chunk) = response.chunk().await.unwrap() else { break };
		buffer.push_str(&String::from_utf8_lossy(&chunk));
		while let Some(end) = buffer.find("\n\n") {
			let event: String = buffer.drain(..end + 2).collect();
			let data = event.trim().trim_start_matches("data:").trim();
			if data == "[DONE]" {
				done = true;
				continue;
			}
			let value: Value = serde_json::from_str(data).unwrap();
			assert!(value.get("error").is_none(), "{value}");
			if let Some(t) = value["blyan"]["token"].as_u64() {
				streamed.push(t);
			}
		}
		if streamed.len() >= 5 && killed.is_none() {
			// Kill whichever second stage holds the session.
			for (i, (_, port)) in stages.iter().enumerate() {
				let h = health(&http, &format!("http://127.0.0.1:{port}")).await.unwrap();
				if h["sessions"].as_u64().unwrap() > 0 {
					killed = Some(i);
					break;
				}
			}
			let i = killed.expect("one second stage holds the session");
			stages[i].0.kill();
		}
	}
	assert!(killed.is_some(), "the generation ended before a stage could be killed");
	assert_eq!(streamed, expected, "a rerouted stream differs from the uninterrupted completion");
	let metrics =
		http.get(format!("{gateway_url}/metrics")).send().await.unwrap().text().await.unwrap();
	assert!(
		metrics.lines().any(|l| l.starts_with("blyan_reroutes_total ") && !l.ends_with(" 0")),
		"{metrics}"
	);
	// The first stage answered the given-up session's prompt and tokens as well as the replay's:
	// the gateway paid for both, so the reroute left no debt of Bob's there (unpaid, it would
	// count against Bob's credit until the stage refused him, 402).
	assert!(crate::counter(&metrics, "blyan_abandoned_receipts_total ") >= 1.0, "{metrics}");
	let started = Instant::now();
	loop {
		let now = unpaid(&stage_metrics(&anonymous, ports[1]).await);
		if now <= unpaid_at_first_stage {
			break;
		}
		assert!(
			started.elapsed() < Duration::from_secs(30),
			"the first stage is owed {now} positions, {unpaid_at_first_stage} before the reroute"
		);
		tokio::time::sleep(Duration::from_millis(200)).await;
	}

	// 3. Receipts: the gateway (Bob) paid the first stage (Charlie), which settled them on chain.
	let reader = net.chain().await;
	let (bob, charlie) = (account("//Bob"), account("//Charlie"));
	let started = Instant::now();
	let settled = loop {
		if let Some(n) = reader.settled_nonce(&bob, &charlie).await.unwrap() {
			break n;
		}
		assert!(
			started.elapsed() < Duration::from_secs(60),
			"no receipt settled: {}",
			first.output()
		);
		tokio::time::sleep(Duration::from_millis(500)).await;
	};
	assert!(first.output().contains("settled "), "{}", first.output());
	// The second stage (Dave, or Eve after the kill), whose leaf is the right one of the root,
	// settled Bob's receipts too; no stage refused one (each came with its commitment's proof).
	let seconds = [account("//Dave"), account("//Eve")];
	let started = Instant::now();
	loop {
		let mut settled_second = false;
		for server in &seconds {
			settled_second |= reader.settled_nonce(&bob, server).await.unwrap().is_some();
		}
		if settled_second {
			break;
		}
		assert!(started.elapsed() < Duration::from_secs(60), "no second-stage receipt settled");
		tokio::time::sleep(Duration::from_millis(500)).await;
	}
	assert!(!gateway.output().contains("refused a receipt"), "{}", gateway.output());

	// A receipt replayed, forged, or settled by another server is refused on chain. Alice plays
	// the server here (the serving processes sign their own transactions).
	let (client, server, other) = (
		signer(&net, "//Bob").await,
		signer(&net, "//Alice").await,
		signer(&net, "//Ferdie").await,
	);
	let receipt = |nonce: u64, server: &str| Receipt {
		client: bob,
		server: account(server),
		version: version.parse().unwrap(),
		nonce,
		tokens_in: 10,
		tokens_out: 10,
		price_per_token: 1_000,
		free: false,
		commitments: H256::repeat_byte(nonce as u8),
	};
	let signed = client.sign_receipt(receipt(settled + 1, "//Alice"));
	server.settle(vec![signed.clone()]).await.unwrap();
	assert_eq!(reader.settled_nonce(&bob, &account("//Alice")).await.unwrap(), Some(settled + 1));
	let replayed = refusal(server.settle(vec![signed.clone()]).await);
	assert_eq!(replayed, chain::InferenceError::ReceiptReplayed);
	let mut forged = client.sign_receipt(receipt(settled + 2, "//Alice"));
	forged.receipt.tokens_out = 1_000_000;
	let forged = refusal(server.settle(vec![forged]).await);
	assert_eq!(forged, chain::InferenceError::BadReceiptSignature);
	let theirs = client.sign_receipt(receipt(settled + 3, "//Alice"));
	let stolen = refusal(other.settle(vec![theirs]).await);
	assert_eq!(stolen, chain::InferenceError::WrongServer);

	// A client's first receipt at a server also holds the deposit for its nonce entry
	// (0.108 BLY): a client funded with 0.1 BLY is refused by name, whatever the price; funded
	// again, the same receipt settles.
	const MILLI_BLY: u128 = 1_000_000_000;
	let poor = account("//PoorClient");
	let fund = |amount: u128| {
		chain::blyan::tx()
			.balances()
			.transfer_keep_alive(subxt::utils::MultiAddress::Id(poor), amount)
	};
	server.submit("balances.transfer_keep_alive", &fund(100 * MILLI_BLY)).await.unwrap();
	let poor_client = signer(&net, "//PoorClient").await;
	let mut first_receipt = receipt(1, "//Alice");
	first_receipt.client = poor;
	first_receipt.price_per_token = 0;
	let signed = poor_client.sign_receipt(first_receipt);
	let short = refusal(server.settle(vec![signed.clone()]).await);
	assert_eq!(short, chain::InferenceError::ClientCannotPay);
	server.submit("balances.transfer_keep_alive", &fund(100 * MILLI_BLY)).await.unwrap();
	server.settle(vec![signed]).await.unwrap();
	assert_eq!(reader.settled_nonce(&poor, &account("//Alice")).await.unwrap(), Some(1));
	drop((whole, first, gateway, stages));
}

/// A counter of a Prometheus text page, 0 when absent.
fn counter(metrics: &str, name: &str) -> f64 {
	metrics
		.lines()
		.find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
		.unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_lying_on_one_chunk_in_a_hundred_is_caught_challenged_and_slashed() {
	let _slot = network_slot().await;
	let net = Net::start();
	let out =
		net.run("//Alice", &["model-init", "--name", "tiny", "--arch", "tiny", "--seed", "1"]);
	let line = out.lines().find(|l| l.starts_with("model ")).expect("model line");
	let version: String = line.split_whitespace().nth(3).unwrap().to_string();
	// Two bonded verifiers: the arbiters a challenge draws.
	for verifier in ["//Ferdie", "//Alice"] {
		net.run(verifier, &["register", "--verifier", "--bond", "100"]);
	}
	let arbiters: Vec<Proc> = ["//Ferdie", "//Alice"]
		.iter()
		.map(|key| net.spawn(&format!("verifier{}", key.replace('/', "-")), key, &["verify"]))
		.collect();

	// Three servers of the whole model, each bonding 100 BLY: Eve flips a bit in every 100th
	// answer she gives (and signs it), whether routed to or replaying another's session.
	let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
	let serve = |name: &str, key: &str, port: u16, extra: &[&str]| {
		let listen = port_arg(port);
		let mut args = vec!["serve", "--version", &version, "--listen", &listen];
		args.extend_from_slice(extra);
		net.spawn(name, key, &args)
	};
	// The honest servers answer 150 ms slower a chunk: once the gateway has measured them it
	// routes to Eve (a single slow probe of her, on a loaded machine, cannot rank her below
	// them) and checks her on the other two.
	let eve = serve("serve-eve", "//Eve", ports[0], &["--corrupt-every", "100"]);
	let slower = ["--simulate-latency-ms", "150"];
	let honest = [
		serve("serve-charlie", "//Charlie", ports[1], &slower),
		serve("serve-dave", "//Dave", ports[2], &slower),
	];
	let limit = Duration::from_secs(120);
	for server in honest.iter().chain([&eve]) {
		server.wait_for_output("announced version", limit);
	}
	let watcher = signer(&net, "//Bob").await;
	let liar = blyan_worker::config::load_key(Some("//Eve"), None).unwrap().public_key();
	let liar = liar.to_account_id();
	let (_, announced) = watcher.announcements().await.unwrap();
	assert_eq!(announced.len(), 3);
	let (_, eve_held_before) = watcher.balance(&liar).await.unwrap();
	assert_eq!(eve_held_before, 100 * chain::BLY, "Eve's bond");

	// Bob's gateway checks every request (rate 1) and challenges what it catches.
	let gateway_listen = port_arg(ports[3]);
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
			"--check-rate",
			"1",
		],
	);
	gateway.wait_for_output("caught stages challenged on chain", limit);
	let gateway_url = format!("http://{gateway_listen}");
	let http = reqwest::Client::new();
	let model = format!("blyan-{version}");
	// Requests until Eve's 100th answer was caught and its challenge closed (17 chunks a
	// request: her 100th is in the 6th), one after another while the checks of the earlier
	// ones replay side by side at the slower servers (each holds 8 sessions: a check waits for
	// a free one rather than leaving a difference undecided).
	let started = Instant::now();
	let mut requests = 0;
	loop {
		let metrics = stage_metrics(&http, ports[3]).await;
		if counter(&metrics, "blyan_challenges_closed_total ") >= 1.0 {
			break;
		}
		if started.elapsed() > Duration::from_secs(240) || requests >= 150 {
			let eve_metrics = stage_metrics(&http, ports[0]).await;
			panic!(
				"no challenge closed after {requests} requests:\n{metrics}\nEve:\n{eve_metrics}\ngateway:\n{}",
				gateway.output()
			);
		}
		if counter(&metrics, "blyan_servers_caught_total ") < 1.0 {
			let prompt = format!("add {requests} 3 = ");
			let body =
				json!({ "model": model, "prompt": prompt, "max_tokens": 16, "temperature": 0 });
			complete(&http, &gateway_url, body).await;
			requests += 1;
		} else {
			tokio::time::sleep(Duration::from_millis(500)).await;
		}
	}
	// Checks run after each answer and side by side, so Eve may have lied again (her 200th
	// answer) before the first check caught her: once every request's hop was checked, every
	// catch is of Eve, the first is seen through on chain, and the gateway does not challenge
	// her twice.
	let started = Instant::now();
	let metrics = loop {
		let metrics = stage_metrics(&http, ports[3]).await;
		let caught = counter(&metrics, "blyan_servers_caught_total ");
		let ended = ["closed", "skipped", "failed"]
			.iter()
			.map(|c| counter(&metrics, &format!("blyan_challenges_{c}_total ")))
			.sum::<f64>();
		// (A completion whose check found the gateway's check queue full is counted once.)
		let checked = counter(&metrics, "blyan_checks_total ")
			+ counter(&metrics, "blyan_checks_unchecked_total ")
			+ counter(&metrics, "blyan_checks_dropped_total ");
		if checked >= f64::from(requests) && ended >= caught {
			break metrics;
		}
		assert!(started.elapsed() < Duration::from_secs(120), "{metrics}\n{}", gateway.output());
		tokio::time::sleep(Duration::from_millis(500)).await;
	};
	let out = gateway.output();
	let catches: Vec<&str> = out.lines().filter(|l| l.contains("answering other bits")).collect();
	assert!(
		!catches.is_empty()
			&& catches.len() as f64 == counter(&metrics, "blyan_servers_caught_total ")
	);
	assert!(
		catches.iter().all(|l| l.contains(&liar.to_string())),
		"an honest server caught:\n{out}"
	);
	assert!(counter(&metrics, "blyan_frauds_proven_total ") >= 1.0, "{out}");
	assert_eq!(counter(&metrics, "blyan_challenges_closed_total "), 1.0, "{out}");
	assert_eq!(counter(&metrics, "blyan_challenges_failed_total "), 0.0, "{out}");
	// The proof took her whole bond: 100 BLY, half of it to Bob, and 1 BLY to each of the two
	// arbiters (both had to report: two thirds of two seats).
	let closed = out.lines().find(|l| l.contains("closed: FraudProven")).expect("closed line");
	assert!(closed.contains(&liar.to_string()), "{closed}");
	assert!(
		closed.contains("slashed 100.0000 BLY, 50.0000 BLY of it to this account, 2.0000 BLY to"),
		"{closed}"
	);
	let reported: usize =
		arbiters.iter().map(|a| a.output().matches("arbitration: Wrong").count()).sum();
	assert!(reported >= 1, "no arbiter found the wrong answer");

	// On chain: Eve's bond is gone and she is no longer announced; the honest servers are.
	let (_, announced) = watcher.announcements().await.unwrap();
	let servers: Vec<_> = announced.iter().map(|(who, _)| *who).collect();
	assert_eq!(servers.len(), 2, "{servers:?}");
	assert!(!servers.contains(&liar));
	let (_, eve_held) = watcher.balance(&liar).await.unwrap();
	assert_eq!(eve_held, 0, "Eve's whole bond was slashed");
	assert!(watcher.inference_challenges().await.unwrap().is_empty());
	// The honest servers still answer, routed around Eve.
	let body = json!({ "model": model, "prompt": "add 1 1 = ", "max_tokens": 4, "temperature": 0 });
	complete(&http, &gateway_url, body).await;
}
