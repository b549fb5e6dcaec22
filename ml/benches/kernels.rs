//! Matrix-product speed: the portable kernel (`blyan_ml::portable::gemm`, the same bits on every
//! CPU) on 1 and N threads against ndarray's `dot` (matrixmultiply, FMA where the CPU has it,
//! single-threaded in this build), in GFLOP/s, for the shapes of the ~100 M model's training
//! step and of decoding. A benchmark, not a test: `cargo bench -p blyan-ml --bench kernels`.

use std::time::{Duration, Instant};

use blyan_ml::portable::{self, gemm};
use ndarray::Array2;

fn best(mut run: impl FnMut(), repeats: usize) -> Duration {
	run();
	(0..repeats)
		.map(|_| {
			let start = Instant::now();
			run();
			start.elapsed()
		})
		.min()
		.expect("repeats > 0")
}

fn main() {
	let threads = portable::threads();
	println!("| m × k × n | portable, 1 thread | portable, {threads} threads | ndarray dot (matrixmultiply) |");
	println!("|---|---:|---:|---:|");
	for &(m, k, n) in
		&[(512, 768, 2560), (512, 2560, 768), (512, 768, 768), (64, 64, 64), (1, 768, 2560)]
	{
		let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
		let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 1000) as f32 * 1e-3 - 0.5).collect();
		let mut c = vec![0.0f32; m * n];
		let flops = 2.0 * (m * k * n) as f64;
		let repeats = if m * k * n > 1 << 24 { 3 } else { 50 };
		let gflops = |d: Duration| flops / d.as_secs_f64() / 1e9;
		portable::set_threads(1);
		let one = best(|| gemm::matmul(&a, &b, &mut c, m, k, n), repeats);
		portable::set_threads(threads);
		let many = best(|| gemm::matmul(&a, &b, &mut c, m, k, n), repeats);
		let (aa, bb) = (
			Array2::from_shape_vec((m, k), a.clone()).unwrap(),
			Array2::from_shape_vec((k, n), b.clone()).unwrap(),
		);
		let nd = best(
			|| {
				std::hint::black_box(aa.dot(&bb));
			},
			repeats,
		);
		println!(
			"| {m} × {k} × {n} | {:.1} GFLOP/s | {:.1} GFLOP/s | {:.1} GFLOP/s |",
			gflops(one),
			gflops(many),
			gflops(nd)
		);
	}
}
