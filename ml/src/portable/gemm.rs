//! Matrix products whose bits do not depend on the CPU, the vector width or the thread count.
//!
//! The contract, checked against [`reference`] in the tests: output `c[i][j]` is
//! `(…((0 + a[i][0]·b[0][j]) + a[i][1]·b[1][j]) + …) + a[i][k-1]·b[k-1][j]`, every product and
//! every sum rounded separately to f32. Blocking along `k` keeps that order (a block continues
//! from the partial sums the previous one stored), vector lanes run across outputs `j`, and
//! threads take whole output tiles, so none of them changes a result. The multiply and the add
//! are never fused: Rust does not contract `a * b + c`, and the AVX2 kernel is the same code
//! compiled with wider vectors (without the `fma` feature).

use std::sync::{
	atomic::{AtomicUsize, Ordering},
	Arc, Mutex,
};

use rayon::prelude::*;

/// Rows and columns of the register tile.
const MR: usize = 4;
const NR: usize = 16;
/// Reduction block (packed panels of `KC` rows of `b` stay in L1/L2).
const KC: usize = 256;
/// Column block (a packed `KC × NC` block of `b` stays in L2/L3).
const NC: usize = 2048;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 18;

static THREADS: AtomicUsize = AtomicUsize::new(0);
static POOL: Mutex<Option<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

/// Threads used: [`set_threads`], else `BLYAN_THREADS`, else every core.
pub fn threads() -> usize {
	match THREADS.load(Ordering::Relaxed) {
		0 => {
			let n = std::env::var("BLYAN_THREADS")
				.ok()
				.and_then(|v| v.parse::<usize>().ok())
				.filter(|n| *n > 0)
				.unwrap_or_else(|| {
					std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
				});
			THREADS.store(n, Ordering::Relaxed);
			n
		}
		n => n,
	}
}

/// Sets the thread count for this process; 0 goes back to the default.
pub fn set_threads(n: usize) {
	THREADS.store(n, Ordering::Relaxed);
}

/// The pool for the current thread count, built on first use and when the count changes.
fn pool() -> Arc<rayon::ThreadPool> {
	let n = threads();
	let mut guard = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
	match guard.as_ref() {
		Some((count, pool)) if *count == n => pool.clone(),
		_ => {
			let pool = Arc::new(
				rayon::ThreadPoolBuilder::new()
					.num_threads(n)
					.thread_name(|i| format!("blyan-gemm-{i}"))
					.build()
					.expect("a thread pool of the configured size"),
			);
			*guard = Some((n, pool.clone()));
			pool
		}
	}
}

/// `c = a · b` for row-major `a` (`m × k`), `b` (`k × n`) and `c` (`m × n`), on [`threads`]
/// threads.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
	batched_matmul(a, b, c, 1, m, k, n, |_| (0, 0));
}

/// `batches` products `c[t] = a[ia] · b[ib]` with `(ia, ib) = index(t)` (broadcast batches map
/// several `t` to one operand); `a` holds `m × k` matrices, `b` `k × n`, `c` `m × n`, all
/// row-major and contiguous.
#[allow(clippy::too_many_arguments)]
pub fn batched_matmul(
	a: &[f32],
	b: &[f32],
	c: &mut [f32],
	batches: usize,
	m: usize,
	k: usize,
	n: usize,
	index: impl Fn(usize) -> (usize, usize) + Sync,
) {
	let (sa, sb, sc) = (m * k, k * n, m * n);
	if sc == 0 {
		return;
	}
	let one = |t: usize, c: &mut [f32]| {
		let (ia, ib) = index(t);
		serial(&a[ia * sa..ia * sa + sa], &b[ib * sb..ib * sb + sb], c, m, k, n)
	};
	let work = batches.saturating_mul(m).saturating_mul(k).saturating_mul(n);
	let threads = threads();
	if threads == 1 || work < PARALLEL_MIN {
		c.chunks_exact_mut(sc).enumerate().for_each(|(t, c)| one(t, c));
	} else if batches >= threads {
		pool().install(|| c.par_chunks_exact_mut(sc).enumerate().for_each(|(t, c)| one(t, c)));
	} else {
		let pool = pool();
		for (t, c) in c.chunks_exact_mut(sc).enumerate() {
			let (ia, ib) = index(t);
			parallel(
				&pool,
				threads,
				&a[ia * sa..ia * sa + sa],
				&b[ib * sb..ib * sb + sb],
				c,
				m,
				k,
				n,
			);
		}
	}
}

/// One product split across the pool: by row blocks when there are enough rows, else by column
/// blocks (decoding has one row).
#[allow(clippy::too_many_arguments)]
fn parallel(
	pool: &rayon::ThreadPool,
	threads: usize,
	a: &[f32],
	b: &[f32],
	c: &mut [f32],
	m: usize,
	k: usize,
	n: usize,
) {
	let tasks = threads * 2;
	if m >= tasks * MR {
		let rows = m.div_ceil(tasks).next_multiple_of(MR);
		pool.install(|| {
			c.par_chunks_mut(rows * n).enumerate().for_each(|(t, c)| {
				let r0 = t * rows;
				let r = c.len() / n;
				serial(&a[r0 * k..(r0 + r) * k], b, c, r, k, n)
			})
		});
	} else {
		let cols = n.div_ceil(tasks).next_multiple_of(NR);
		let blocks: Vec<(usize, Vec<f32>)> = pool.install(|| {
			(0..n.div_ceil(cols))
				.into_par_iter()
				.map(|t| {
					let (j0, w) = (t * cols, cols.min(n - t * cols));
					let mut out = vec![0.0; m * w];
					block(a, k, b, n, &mut out, w, m, k, j0, w);
					(j0, out)
				})
				.collect()
		});
		for (j0, out) in blocks {
			let w = out.len() / m;
			for i in 0..m {
				c[i * n + j0..i * n + j0 + w].copy_from_slice(&out[i * w..i * w + w]);
			}
		}
	}
}

/// `c = a · b` on the calling thread.
fn serial(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
	block(a, k, b, n, c, n, m, k, 0, n)
}

/// `c[.., 0..w] = a · b[.., j0..j0 + w]`: `a` is `m × k` with row stride `lda`, `b` has row
/// stride `ldb`, `c` row stride `ldc`.
#[allow(clippy::too_many_arguments)]
fn block(
	a: &[f32],
	lda: usize,
	b: &[f32],
	ldb: usize,
	c: &mut [f32],
	ldc: usize,
	m: usize,
	k: usize,
	j0: usize,
	w: usize,
) {
	if k == 0 {
		for i in 0..m {
			c[i * ldc..i * ldc + w].fill(0.0);
		}
		return;
	}
	if m < MR {
		// Row by row (decoding): the same fold, streamed over `b`'s rows.
		for i in 0..m {
			let out = &mut c[i * ldc..i * ldc + w];
			out.fill(0.0);
			for p in 0..k {
				let av = a[i * lda + p];
				let row = &b[p * ldb + j0..p * ldb + j0 + w];
				for (o, bv) in out.iter_mut().zip(row) {
					*o += av * *bv;
				}
			}
		}
		return;
	}
	let strips_max = NC.min(w).div_ceil(NR);
	let mut packed_b = vec![0.0f32; KC * NR * strips_max];
	let mut packed_a = vec![0.0f32; KC * MR];
	for jc in (0..w).step_by(NC) {
		let nc = NC.min(w - jc);
		let strips = nc.div_ceil(NR);
		for pc in (0..k).step_by(KC) {
			let kc = KC.min(k - pc);
			pack_b(b, ldb, pc, kc, j0 + jc, nc, &mut packed_b[..strips * kc * NR]);
			for ir in (0..m).step_by(MR) {
				let mr = MR.min(m - ir);
				pack_a(a, lda, ir, mr, pc, kc, &mut packed_a[..kc * MR]);
				for s in 0..strips {
					let jr = s * NR;
					let nr = NR.min(nc - jr);
					let mut acc = [[0.0f32; NR]; MR];
					if pc > 0 {
						for (r, row) in acc.iter_mut().enumerate().take(mr) {
							let at = (ir + r) * ldc + jc + jr;
							row[..nr].copy_from_slice(&c[at..at + nr]);
						}
					}
					let bp = &packed_b[s * kc * NR..(s + 1) * kc * NR];
					let acc = kernel(&packed_a[..kc * MR], bp, acc);
					for (r, row) in acc.iter().enumerate().take(mr) {
						let at = (ir + r) * ldc + jc + jr;
						c[at..at + nr].copy_from_slice(&row[..nr]);
					}
				}
			}
		}
	}
}

/// `out[p·MR + r] = a[ir + r][pc + p]`, zero for rows past `mr`.
fn pack_a(a: &[f32], lda: usize, ir: usize, mr: usize, pc: usize, kc: usize, out: &mut [f32]) {
	for (p, panel) in out.chunks_exact_mut(MR).enumerate().take(kc) {
		for (r, v) in panel.iter_mut().enumerate() {
			*v = if r < mr { a[(ir + r) * lda + pc + p] } else { 0.0 };
		}
	}
}

/// Strips of `NR` columns: `out[s·kc·NR + p·NR + j] = b[pc + p][j0 + s·NR + j]`, zero past `nc`.
fn pack_b(b: &[f32], ldb: usize, pc: usize, kc: usize, j0: usize, nc: usize, out: &mut [f32]) {
	for (s, strip) in out.chunks_exact_mut(kc * NR).enumerate() {
		let (col, width) = (j0 + s * NR, NR.min(nc - s * NR));
		for (p, row) in strip.chunks_exact_mut(NR).enumerate() {
			let from = (pc + p) * ldb + col;
			row[..width].copy_from_slice(&b[from..from + width]);
			row[width..].fill(0.0);
		}
	}
}

type Tile = [[f32; NR]; MR];

/// The register tile: `acc[r][j] += a[p][r] · b[p][j]` for `p` in order.
#[inline(always)]
fn kernel_body(packed_a: &[f32], packed_b: &[f32], mut acc: Tile) -> Tile {
	for (av, bv) in packed_a.chunks_exact(MR).zip(packed_b.chunks_exact(NR)) {
		for r in 0..MR {
			for j in 0..NR {
				acc[r][j] += av[r] * bv[j];
			}
		}
	}
	acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn kernel_avx2(packed_a: &[f32], packed_b: &[f32], acc: Tile) -> Tile {
	kernel_body(packed_a, packed_b, acc)
}

fn kernel(packed_a: &[f32], packed_b: &[f32], acc: Tile) -> Tile {
	#[cfg(target_arch = "x86_64")]
	{
		static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
		if *AVX2.get_or_init(|| std::arch::is_x86_feature_detected!("avx2")) {
			// SAFETY: the CPU has AVX2 (checked above).
			return unsafe { kernel_avx2(packed_a, packed_b, acc) };
		}
	}
	kernel_body(packed_a, packed_b, acc)
}

/// The contract, written plainly: what every other path must equal bit for bit.
pub fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
	let mut c = vec![0.0f32; m * n];
	for i in 0..m {
		for j in 0..n {
			let mut acc = 0.0f32;
			for p in 0..k {
				acc += a[i * k + p] * b[p * n + j];
			}
			c[i * n + j] = acc;
		}
	}
	c
}

#[cfg(test)]
mod tests {
	use super::*;
	use rand::{Rng, SeedableRng};
	use rand_chacha::ChaCha20Rng;

	fn random(len: usize, rng: &mut ChaCha20Rng) -> Vec<f32> {
		// Wide exponents, so a changed summation order or a fused multiply-add shows in the bits.
		(0..len)
			.map(|_| rng.random_range(-1.0f32..1.0) * 2f32.powi(rng.random_range(-8..8)))
			.collect()
	}

	fn bits(v: &[f32]) -> Vec<u32> {
		v.iter().map(|x| x.to_bits()).collect()
	}

	#[test]
	fn every_path_equals_the_reference_fold_bit_for_bit() {
		let mut rng = ChaCha20Rng::seed_from_u64(7);
		// Edges of every block size: tiles, strips, KC and NC blocks, the row-by-row path.
		let shapes = [
			(1, 1, 1),
			(1, 300, 2100),
			(3, 17, 33),
			(4, 16, 16),
			(5, 257, 31),
			(37, 513, 70),
			(64, 64, 2050),
			(130, 300, 90),
		];
		for &(m, k, n) in &shapes {
			let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
			let want = bits(&reference(&a, &b, m, k, n));
			for threads in [1, 2, 3, 8] {
				set_threads(threads);
				let mut c = vec![f32::NAN; m * n];
				matmul(&a, &b, &mut c, m, k, n);
				assert_eq!(bits(&c), want, "{m}x{k}x{n} on {threads} threads");
			}
		}
		set_threads(0);
	}

	#[test]
	fn an_unfused_product_differs_from_a_fused_one_on_these_inputs() {
		// The fixture would not notice fusion if no output rounded differently: show one does.
		let mut rng = ChaCha20Rng::seed_from_u64(7);
		let (m, k, n) = (37, 513, 70);
		let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
		let unfused = reference(&a, &b, m, k, n);
		let fused: Vec<f32> = (0..m * n)
			.map(|at| {
				let (i, j) = (at / n, at % n);
				(0..k).fold(0.0f32, |acc, p| a[i * k + p].mul_add(b[p * n + j], acc))
			})
			.collect();
		assert_ne!(bits(&unfused), bits(&fused));
	}

	#[test]
	fn batches_broadcast_their_operands() {
		let mut rng = ChaCha20Rng::seed_from_u64(3);
		let (m, k, n) = (9, 40, 24);
		let a = random(3 * m * k, &mut rng);
		let b = random(k * n, &mut rng);
		let mut c = vec![0.0; 3 * m * n];
		batched_matmul(&a, &b, &mut c, 3, m, k, n, |t| (t, 0));
		for t in 0..3 {
			let want = reference(&a[t * m * k..(t + 1) * m * k], &b, m, k, n);
			assert_eq!(bits(&c[t * m * n..(t + 1) * m * n]), bits(&want));
		}
	}
}
