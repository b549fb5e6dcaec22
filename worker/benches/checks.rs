//! Spot checks of inference (a benchmark, not a test; results go to `docs/benchmarks.md`):
//!
//! 1. the probability that a stage lying on a share `p` of its answers is caught within `R`
//!    requests at check rate `r`, computed (`1 − (1 − r·(1 − (1 − p)^n))^R` for `n` answers per
//!    request and hop) and simulated (Monte Carlo);
//! 2. live: a real stage flipping a bit in every 100th answer, behind real HTTP stages on
//!    127.0.0.1 (the `serve` app), checked at the default rate: requests until it is caught;
//! 3. the verification compute as a share of the serving compute at the default rate (goal
//!    ≤ 10 %), measured;
//! 4. commitment bytes per 32 tokens: what the coordinator keeps per stage, and what crosses the
//!    wire (TOPLOC's published figure: 258 B).
//!
//! Environment: `BENCH_REQUESTS` (requests of the compute-share run, default 400),
//! `BENCH_TRIALS` (live trials, default 5).

use std::{
	sync::Arc,
	time::{Duration, Instant},
};

use blyan_worker::{
	chain::{ChunkCommitment, H256},
	inference::{
		checks::{spot_check, StagePool, Verdict},
		commitments::{self, ChunkSigner},
		route::{self, GenerateRequest, Hop, RouteSource, StageAccess, StageClient},
		server::{self, AppState},
		sessions::SessionOpener,
		stage::LocalStage,
	},
	ml::{infer::StageModel, init_layers, model::ModelConfig, weights::LayerTensors, CpuBackend},
};
use rand::{Rng, SeedableRng};
use subxt_signer::sr25519::{dev, Keypair};

const GENESIS: H256 = H256([3; 32]);
/// Answers per request and hop: a 32-token completion (the prompt, then 31 tokens).
const ANSWERS: u32 = 32;
const DEFAULT_RATE: f64 = 0.05;

fn env(name: &str, default: usize) -> usize {
	std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn computed(p: f64, r: f64, n: u32, requests: u32) -> f64 {
	let per_request = r * (1.0 - (1.0 - p).powi(n as i32));
	1.0 - (1.0 - per_request).powi(requests as i32)
}

fn simulated(p: f64, r: f64, n: u32, requests: u32, trials: u32, rng: &mut impl Rng) -> f64 {
	let caught = (0..trials)
		.filter(|_| {
			(0..requests).any(|_| {
				let lied = (0..n).any(|_| rng.random::<f64>() < p);
				lied && rng.random::<f64>() < r
			})
		})
		.count();
	caught as f64 / trials as f64
}

async fn stage(
	config: &ModelConfig,
	layers: &[LayerTensors],
	span: (usize, usize),
	key: Keypair,
	corrupt_every: u64,
	opener: &Arc<SessionOpener>,
) -> Hop {
	let model =
		StageModel::<CpuBackend>::new(config, span.0, &layers[span.0..span.1], &Default::default())
			.unwrap();
	let server = key.public_key().to_account_id();
	let signer = ChunkSigner::new(key, GENESIS, 1, (span.0 as u16, span.1 as u16), true);
	let stage = LocalStage::start(model, 32, Duration::ZERO, "cpu");
	let state =
		AppState { signer: Some(Arc::new(signer)), corrupt_every, ..AppState::for_stage(1, stage) };
	let endpoint = server::serve_locally(state).await.unwrap();
	let http = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
	let access = StageAccess { opener: opener.clone(), server, version: 1 };
	Hop {
		client: StageClient::Remote { endpoint, http, access: Some(access) },
		span,
		server: Some(server),
		price_per_token: 0,
	}
}

/// Two spans of the tiny model, three stages each; the first stage of the second span flips a
/// bit in every `corrupt_every`th answer (0: honest).
async fn pool(corrupt_every: u64) -> StagePool {
	let config = ModelConfig::tiny();
	let layers = init_layers(&config, 1);
	let n = config.layer_count();
	let opener = Arc::new(SessionOpener::new(dev::ferdie(), GENESIS, false));
	let mut hops = Vec::new();
	let keys = [dev::alice(), dev::bob(), dev::charlie(), dev::dave(), dev::eve(), dev::one()];
	for (i, key) in keys.into_iter().enumerate() {
		let (span, lie) =
			if i < 3 { ((0, 2), 0) } else { ((2, n), if i == 3 { corrupt_every } else { 0 }) };
		hops.push(stage(&config, &layers, span, key, lie, &opener).await);
	}
	StagePool::new(hops)
}

fn request(i: usize, check: bool) -> GenerateRequest {
	GenerateRequest {
		prompt: vec![1 + (i % 200) as u32, 7, 9, 11],
		max_tokens: ANSWERS as usize,
		temperature: 0.0,
		top_k: 0,
		top_p: 1.0,
		seed: 0,
		logprobs: None,
		check,
	}
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
	// 1. Computed and simulated detection.
	let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
	println!("## Detection: a stage lying on a share p of its answers, checked at rate r ({ANSWERS} answers a request)\n");
	println!("| p | r | within R requests | computed | simulated (5 000 trials) |");
	println!("|---|---|---|---|---|");
	for p in [0.01, 0.05] {
		for r in [0.01, 0.05, 0.1] {
			for requests in [1, 20, 100] {
				let c = computed(p, r, ANSWERS, requests);
				let s = simulated(p, r, ANSWERS, requests, 5_000, &mut rng);
				println!("| {p} | {r} | {requests} | {c:.4} | {s:.4} |");
			}
		}
	}

	// 2. Live: every 100th answer corrupted, rate 0.05.
	let trials = env("BENCH_TRIALS", 5);
	let mut needed = Vec::new();
	for trial in 0..trials {
		let pool = pool(100).await;
		let mut draw = rand_chacha::ChaCha8Rng::seed_from_u64(100 + trial as u64);
		let mut requests = 0;
		'serve: loop {
			requests += 1;
			let check = draw.random::<f64>() < DEFAULT_RATE;
			let g =
				route::generate(&pool, 1, &request(requests, check), |_, _| false).await.unwrap();
			for record in &g.records {
				let outcome = spot_check(&pool, 1, record).await;
				if let (Verdict::Caught { .. }, Some(caught)) = (&outcome.verdict, &outcome.caught)
				{
					pool.caught(&caught.hop);
					break 'serve;
				}
			}
			assert!(requests < 100_000, "never caught");
		}
		needed.push(requests);
	}
	// Every 100th answer lies: 32 of every 100 requests carry a lie at the liar's hop.
	let expected = 1.0 / (DEFAULT_RATE * f64::from(ANSWERS) / 100.0);
	println!(
		"\n## Live: a stage corrupting every 100th answer, rate {DEFAULT_RATE}\n\nrequests until caught over {trials} trials: {needed:?} (mean {:.0}; expected ≈ {expected:.0})",
		needed.iter().sum::<usize>() as f64 / trials as f64
	);

	// 3. Verification compute share at the default rate.
	let pool = Arc::new(pool(0).await);
	let total = env("BENCH_REQUESTS", 400);
	let mut draw = rand_chacha::ChaCha8Rng::seed_from_u64(1);
	let (mut serving, mut checking, mut checked) = (Duration::ZERO, Duration::ZERO, 0);
	for i in 0..total {
		let check = draw.random::<f64>() < DEFAULT_RATE;
		let started = Instant::now();
		let g = route::generate(pool.as_ref(), 1, &request(i, check), |_, _| false).await.unwrap();
		serving += started.elapsed();
		let started = Instant::now();
		for record in &g.records {
			let outcome = spot_check(pool.as_ref(), 1, record).await;
			assert_eq!(outcome.verdict, Verdict::Agreed);
			checked += 1;
		}
		checking += started.elapsed();
	}
	println!(
		"\n## Verification compute at rate {DEFAULT_RATE}\n\n{total} requests of {ANSWERS} tokens over 2 stages, {checked} hops checked: serving {:.2} s, checking {:.2} s: **{:.1} %** of serving (goal ≤ 10 %)",
		serving.as_secs_f64(),
		checking.as_secs_f64(),
		100.0 * checking.as_secs_f64() / serving.as_secs_f64()
	);

	// 4. Commitment bytes.
	let commitment = ChunkCommitment {
		server: dev::alice().public_key().to_account_id(),
		version: 1,
		layers: (0, 2),
		session: [0; 16],
		positions: 36,
		transcript: [0; 32],
		bit_exact: true,
	};
	// What a commitment costs per chunk: the stage hashes and signs, the coordinator hashes and
	// verifies (one decoding step of a Qwen3-0.6B-sized hop: 1 024 hidden values each way).
	let signer = ChunkSigner::new(dev::alice(), GENESIS, 1, (0, 2), true);
	let (request, answer) = (vec![7u8; 4 * 1024 + 29], vec![9u8; 4 * 1024 + 9]);
	let rounds = 1_000u32;
	let started = Instant::now();
	let mut header = String::new();
	for i in 0..rounds {
		header = signer.commit(&[1; 16], None, i, 1, &request, &answer);
	}
	let sign = started.elapsed() / rounds;
	let (_, signature) = commitments::decode_header(&header).unwrap();
	let started = Instant::now();
	for _ in 0..rounds {
		let transcript = commitments::fold(&[0; 32], &commitments::chunk_digest(&request, &answer));
		let c = ChunkCommitment { transcript, ..commitment.clone() };
		std::hint::black_box(commitments::SignedCommitment::verified(&GENESIS, c, signature));
	}
	let verify = started.elapsed() / rounds;
	println!(
		"\n## Commitment cost per chunk (4 KiB each way)\n\nstage: hash and sign {:.1} µs; coordinator: hash and verify {:.1} µs",
		sign.as_secs_f64() * 1e6,
		verify.as_secs_f64() * 1e6
	);
	let kept = codec::Encode::encoded_size(&commitment) + 64;
	let header = commitments::encode_header(true, &[0; 64]);
	let wire = ANSWERS as usize * (commitments::COMMITMENT_HEADER.len() + 2 + header.len());
	println!(
		"\n## Commitment bytes per {ANSWERS} tokens, per stage\n\n| kept by the coordinator (the last signed commitment) | sent (a signed header per answer) | TOPLOC (published) |\n|---|---|---|\n| {kept} B | {wire} B | 258 B |"
	);
}
