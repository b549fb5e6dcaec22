//! Matrix-product speed: the portable kernel (`blyan_ml::portable::gemm`, the same bits on every
//! CPU) at each vector level this CPU has (`gemm::Isa`) on 1 thread and at the widest on N
//! threads, against ndarray's `dot` (matrixmultiply, FMA where the CPU has it, single-threaded in
//! this build), in GFLOP/s, for the shapes of the ~100 M model's training step and of decoding;
//! then decoding's few-row products over a Qwen3-0.6B's projection shapes with the weight
//! row-major or laid out in strips, in f32 and bf16, at each level from AVX2 up, as the weight
//! bytes read per second. A benchmark, not a test: `cargo bench -p blyan-ml --bench kernels`.

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

/// The vector levels this CPU runs, narrowest first (the kernels capped to each in turn).
fn levels() -> Vec<gemm::Isa> {
	gemm::cap_isa(gemm::Isa::Avx512);
	let widest = gemm::isa();
	[gemm::Isa::Baseline, gemm::Isa::Avx2, gemm::Isa::Avx512]
		.into_iter()
		.filter(|level| *level <= widest)
		.collect()
}

fn main() {
	let threads = portable::threads();
	let levels = levels();
	let widest = *levels.last().expect("the baseline at least");
	let heads: Vec<String> = levels.iter().map(|l| format!("portable {l:?}, 1 thread")).collect();
	println!(
		"| m × k × n | {} | portable {widest:?}, {threads} threads | ndarray dot (matrixmultiply) |",
		heads.join(" | ")
	);
	println!("|---|{}---:|---:|", "---:|".repeat(levels.len()));
	for &(m, k, n) in
		&[(512, 768, 2560), (512, 2560, 768), (512, 768, 768), (64, 64, 64), (1, 768, 2560)]
	{
		let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
		let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 1000) as f32 * 1e-3 - 0.5).collect();
		let mut c = vec![0.0f32; m * n];
		let flops = 2.0 * (m * k * n) as f64;
		let repeats = if m * k * n > 1 << 24 { 3 } else { 50 };
		let gflops = |d: Duration| format!("{:.1} GFLOP/s", flops / d.as_secs_f64() / 1e9);
		portable::set_threads(1);
		let mut cells: Vec<String> = levels
			.iter()
			.map(|level| {
				gemm::cap_isa(*level);
				gflops(best(|| gemm::matmul(&a, &b, &mut c, m, k, n), repeats))
			})
			.collect();
		portable::set_threads(threads);
		cells.push(gflops(best(|| gemm::matmul(&a, &b, &mut c, m, k, n), repeats)));
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
		cells.push(gflops(nd));
		println!("| {m} × {k} × {n} | {} |", cells.join(" | "));
	}
	for level in levels.iter().filter(|l| **l >= gemm::Isa::Avx2) {
		decode_table(threads, *level);
	}
}

/// Few-row products (`m` sessions decoding) over Qwen3-0.6B's projection shapes, on all threads:
/// the weight row-major (`Mat::row_major`) against laid out in [`gemm::Strips`], f32 and bf16,
/// as GB/s of weight read (a decoding step reads every weight once), the kernels at `level`.
fn decode_table(threads: usize, level: gemm::Isa) {
	gemm::cap_isa(level);
	println!();
	println!("| m × k × n ({threads} threads, {level:?}) | f32 row-major | f32 strips | bf16 row-major | bf16 strips |");
	println!("|---|---:|---:|---:|---:|");
	for &(m, k, n) in &[
		(1, 1024, 3072),
		(1, 3072, 1024),
		(1, 1024, 2048),
		(8, 1024, 3072),
		(1, 4096, 16384),
		(8, 4096, 16384),
	] {
		let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
		let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729) % 1000) as f32 * 1e-3 - 0.5).collect();
		let b16: Vec<u16> = b.iter().map(|v| (v.to_bits() >> 16) as u16).collect();
		let strips = gemm::Strips::from_fn(k, n, |p, j| b[p * n + j]);
		let strips16 = gemm::Strips::from_fn(k, n, |p, j| b16[p * n + j]);
		let mut c = vec![0.0f32; m * n];
		let a_mat = gemm::Mat::row_major(&a, k);
		let mut run = |b: gemm::Mat<'_, f32>| {
			best(|| gemm::batched_matmul(&mut c, 1, m, k, n, |_| (a_mat, b)), 20)
		};
		let (f32_rows, f32_strips) = (run(gemm::Mat::row_major(&b, n)), run(strips.mat()));
		let mut run = |b: gemm::Mat<'_, u16>| {
			best(|| gemm::batched_matmul(&mut c, 1, m, k, n, |_| (a_mat, b)), 20)
		};
		let (bf16_rows, bf16_strips) = (run(gemm::Mat::row_major(&b16, n)), run(strips16.mat()));
		let gbs = |d: Duration, bytes: usize| (k * n * bytes) as f64 / d.as_secs_f64() / 1e9;
		println!(
			"| {m} × {k} × {n} | {:.1} GB/s | {:.1} GB/s | {:.1} GB/s | {:.1} GB/s |",
			gbs(f32_rows, 4),
			gbs(f32_strips, 4),
			gbs(bf16_rows, 2),
			gbs(bf16_strips, 2)
		);
	}
}
