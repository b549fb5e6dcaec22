//! Federated rounds on 127.0.0.1: time and bytes per round of secure aggregation against plain
//! averaging, for 5 and 20 participants (`cargo bench -p blyan-worker --bench federated`;
//! `BENCH_FL_LEN` values per update, default 100 000, the size of a small model's delta).
//! Participants run as tasks of this process, each with its own HTTP connection; the round's
//! time runs from the aggregator opening it to the aggregate being known.

use std::time::{Duration, Instant};

use blyan_worker::federated::{
	robust::Aggregation,
	round::{Aggregator, Mode, RoundClient, RoundInfo},
	secagg::{encode_fixed, Participant, ParticipantId},
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const REPEATS: usize = 5;

struct Row {
	mode: &'static str,
	n: usize,
	seconds: f64,
	bytes_in: u64,
	bytes_out: u64,
}

async fn round(
	aggregator: &Aggregator,
	url: &str,
	round: u32,
	n: usize,
	len: usize,
	secure: bool,
) -> Row {
	let mode = if secure {
		Mode::Secure { threshold: (2 * n / 3 + 1) as u16 }
	} else {
		Mode::Plain(Aggregation::Mean)
	};
	let info = RoundInfo {
		round,
		session: [round as u8; 32],
		participants: (0..n as ParticipantId).collect(),
		len: len as u32,
		mode,
		min_contributors: (2 * n / 3 + 1) as u16,
	};
	let started = Instant::now();
	let running = {
		let aggregator = aggregator.clone();
		tokio::spawn(async move { aggregator.run_round(info, Duration::from_secs(120)).await })
	};
	let mut tasks = Vec::new();
	for i in 0..n {
		let client = std::sync::Arc::new(RoundClient::new(reqwest::Client::new(), url));
		let counted = client.clone();
		let update: Vec<f32> = (0..len).map(|k| ((k + i) % 17) as f32 * 1e-3).collect();
		tasks.push(tokio::spawn(async move {
			loop {
				match client.info().await {
					Ok(info) if info.round == round => break,
					_ => tokio::time::sleep(Duration::from_millis(5)).await,
				}
			}
			if secure {
				let mut rng = ChaCha20Rng::from_os_rng();
				let threshold = 2 * n / 3 + 1;
				let p =
					Participant::new(i as ParticipantId, [round as u8; 32], threshold, &mut rng);
				client.secure_round(round, &p, &encode_fixed(&update)).await.expect("secure round");
			} else {
				client.plain_round(round, i as ParticipantId, update).await.expect("plain round");
			}
			use std::sync::atomic::Ordering::Relaxed;
			(counted.bytes_sent.load(Relaxed), counted.bytes_received.load(Relaxed))
		}));
	}
	// Bodies as the participants count them: the aggregate each downloads included.
	let (mut bytes_in, mut bytes_out) = (0, 0);
	for t in tasks {
		let (sent, received) = t.await.expect("participant task");
		bytes_in += sent;
		bytes_out += received;
	}
	let seconds = started.elapsed().as_secs_f64();
	running.await.expect("aggregator task").expect("round completes");
	Row { mode: if secure { "secure" } else { "plain mean" }, n, seconds, bytes_in, bytes_out }
}

fn main() {
	let len: usize =
		std::env::var("BENCH_FL_LEN").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
	let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
	let rows = rt.block_on(async {
		let aggregator = Aggregator::new(Duration::from_secs(120));
		let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
		let url = format!("http://{}", listener.local_addr().expect("addr"));
		let app = aggregator.router();
		tokio::spawn(async move { axum::serve(listener, app).await });
		let mut rows = Vec::new();
		let mut r = 0;
		for n in [5, 20] {
			for secure in [false, true] {
				// The median of REPEATS rounds (bytes are the same every time).
				let mut runs = Vec::new();
				for _ in 0..REPEATS {
					r += 1;
					runs.push(round(&aggregator, &url, r, n, len, secure).await);
				}
				runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
				rows.push(runs.swap_remove(REPEATS / 2));
			}
		}
		rows
	});
	println!(
		"\nFederated round, {len} values per update, all on 127.0.0.1 ({} CPUs), median of {REPEATS}\n",
		std::thread::available_parallelism().map_or(1, |n| n.get())
	);
	println!("| mode | participants | time per round | bytes to aggregator | bytes from aggregator | total per participant |");
	println!("|---|---|---|---|---|---|");
	for row in &rows {
		println!(
			"| {} | {} | {:.3} s | {:.2} MB | {:.2} MB | {:.2} MB |",
			row.mode,
			row.n,
			row.seconds,
			row.bytes_in as f64 / 1e6,
			row.bytes_out as f64 / 1e6,
			(row.bytes_in + row.bytes_out) as f64 / 1e6 / row.n as f64
		);
	}
	for n in [5, 20] {
		let plain = rows.iter().find(|r| r.n == n && r.mode != "secure").expect("plain row");
		let secure = rows.iter().find(|r| r.n == n && r.mode == "secure").expect("secure row");
		println!(
			"\n{n} participants: secure aggregation takes {:.1}× the time and {:.1}× the bytes of plain averaging",
			secure.seconds / plain.seconds,
			(secure.bytes_in + secure.bytes_out) as f64 / (plain.bytes_in + plain.bytes_out) as f64
		);
	}
}
