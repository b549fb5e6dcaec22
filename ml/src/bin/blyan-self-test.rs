//! The miner self-test on its own (`blyan-worker self-test` runs the same workload): a binary of
//! the ML crate alone, so the cross-CPU tests can build it for aarch64 and run it under qemu
//! without the chain client. Prints what it computed; exits 0 only if those are the golden bits.
//!
//! Usage: blyan-self-test [THREADS]

use std::process::ExitCode;

use blyan_ml::selftest;

fn main() -> ExitCode {
	let threads = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
		None => 0,
		Some(Ok(n)) => n,
		Some(Err(_)) => {
			eprintln!("usage: blyan-self-test [THREADS]");
			return ExitCode::from(2);
		}
	};
	match selftest::run(threads) {
		Ok(report) => {
			for line in report.lines() {
				println!("{line}");
			}
			let mismatches = report.mismatches();
			for m in &mismatches {
				eprintln!("MISMATCH {}: got {}, want {}", m.part, m.got, m.want);
			}
			if mismatches.is_empty() {
				println!("self-test passed: this machine computes the network's bits");
				ExitCode::SUCCESS
			} else {
				ExitCode::FAILURE
			}
		}
		Err(e) => {
			eprintln!("self-test could not run: {e}");
			ExitCode::from(3)
		}
	}
}
