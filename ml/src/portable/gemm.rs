//! Matrix products whose bits do not depend on the CPU, the vector width or the thread count.
//!
//! The contract, checked against [`reference`] in the tests: output `c[i][j]` is
//! `(…((0 + a[i][0]·b[0][j]) + a[i][1]·b[1][j]) + …) + a[i][k-1]·b[k-1][j]`, every product and
//! every sum rounded separately to f32. Blocking along `k` keeps that order (a block continues
//! from the partial sums the previous one stored), vector lanes run across outputs `j`, and
//! threads take whole output tiles, so none of them changes a result. The multiply and the add
//! are never fused: Rust does not contract `a * b + c` (not even where the target has FMA, which
//! AVX-512 implies), and the AVX2 and AVX-512 kernels are the same code compiled with wider
//! vectors; AVX-512's twice as many registers hold larger tiles, each output's fold unchanged
//! ([`Isa`]). The tests compare every level this CPU has with the reference.
//!
//! The right operand may also be `bf16` (a `u16` per value, a model's weights kept as their
//! checkpoint stored them): each value is widened to the `f32` it stands for, exactly, before
//! the same fold, so the bits equal those of the product with the widened `f32` matrix while
//! half the bytes stream from memory (decoding one token is bound by reading the weights).
//!
//! A weight multiplied many times (a served model's) may be laid out once in [`Strips`]: strips
//! of `NR` output columns, each strip's rows contiguous. Few-row products (decoding) then keep
//! every output of a tile in registers over the whole reduction while the strip streams by in
//! order; each output's fold is the same, so are the bits.

use std::sync::{
	atomic::{AtomicU8, AtomicUsize, Ordering},
	Arc, Mutex,
};

use rayon::prelude::*;

/// Rows and columns of the register tile.
const MR: usize = 4;
const NR: usize = 16;
/// Below this many rows (decoding, a batch of sessions decoding) a product streams `b` row by
/// row instead of packing it: packing costs a copy of `b`, which only pays off over many rows.
const ROWS_MAX: usize = 16;
/// Outputs of all rows that path keeps in one column block (32 KiB: L1).
const RB: usize = 8192;
/// Reduction block (packed panels of `KC` rows of `b` stay in L1/L2).
const KC: usize = 256;
/// Column block (a packed `KC × NC` block of `b` stays in L2/L3).
const NC: usize = 2048;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 20;

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

/// Held by tests that set the process-wide thread count or [`Isa`] cap, so each runs on the
/// settings it names.
#[cfg(test)]
pub(crate) static TEST_THREADS: Mutex<()> = Mutex::new(());

/// The vector instructions the kernels run: one source compiled for each, lanes across outputs
/// and no fused multiply-add, so every level computes the same bits (the tests compare them all
/// on one machine; the self-test runs whichever the CPU has).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
	/// Whatever the target's baseline has (SSE2 on x86-64, NEON on aarch64).
	Baseline,
	/// 16 registers of 8 lanes.
	Avx2,
	/// 32 registers of 16 lanes: tiles of four strips.
	Avx512,
}

static ISA_CAP: AtomicU8 = AtomicU8::new(Isa::Avx512 as u8);

/// The widest [`Isa`] the CPU has, at most the cap [`cap_isa`] set.
pub fn isa() -> Isa {
	static DETECTED: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
	let detected = *DETECTED.get_or_init(|| {
		#[cfg(target_arch = "x86_64")]
		{
			if std::arch::is_x86_feature_detected!("avx512f")
				&& std::arch::is_x86_feature_detected!("avx2")
			{
				return Isa::Avx512;
			}
			if std::arch::is_x86_feature_detected!("avx2") {
				return Isa::Avx2;
			}
		}
		Isa::Baseline
	});
	let cap = match ISA_CAP.load(Ordering::Relaxed) {
		0 => Isa::Baseline,
		1 => Isa::Avx2,
		_ => Isa::Avx512,
	};
	detected.min(cap)
}

/// Runs the kernels at most at `level` in this process (a comparison of levels on one CPU).
pub fn cap_isa(level: Isa) {
	ISA_CAP.store(level as u8, Ordering::Relaxed);
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

/// An element a product reads: an `f32`, or a `bf16` held as its bits.
pub trait Widen: Copy + Send + Sync + 'static {
	/// The zero of the type (the padding of a [`Strips`] past its last column).
	const ZERO: Self;
	/// The `f32` this value stands for, exactly.
	fn widen(self) -> f32;
}

impl Widen for f32 {
	const ZERO: Self = 0.0;

	#[inline(always)]
	fn widen(self) -> f32 {
		self
	}
}

/// `bf16` bits: the upper half of the `f32` they stand for.
impl Widen for u16 {
	const ZERO: Self = 0;

	#[inline(always)]
	fn widen(self) -> f32 {
		f32::from_bits(u32::from(self) << 16)
	}
}

/// A read-only matrix in a slice: element `(i, j)` at `data[offset + i·rs + j·cs]` (a transpose
/// or a batch of a larger tensor is read in place, without a copy), or laid out in [`Strips`].
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a, T = f32> {
	data: &'a [T],
	offset: usize,
	rs: usize,
	cs: usize,
	/// Distance between strips of `NR` columns: `NR·cs` for a strided matrix, so that element
	/// `(i, j)` is at `offset + i·rs + (j / NR)·ss + (j % NR)·cs` in either layout.
	ss: usize,
}

impl<'a, T: Widen> Mat<'a, T> {
	/// A row-major `rows × cols` matrix.
	pub fn row_major(data: &'a [T], cols: usize) -> Self {
		Self::strided(data, 0, cols, 1)
	}

	/// Element `(i, j)` at `data[offset + i·rs + j·cs]`.
	pub fn strided(data: &'a [T], offset: usize, rs: usize, cs: usize) -> Self {
		Self { data, offset, rs, cs, ss: NR * cs }
	}

	#[inline(always)]
	fn index(&self, i: usize, j: usize) -> usize {
		self.offset + i * self.rs + (j / NR) * self.ss + (j % NR) * self.cs
	}

	#[inline(always)]
	fn at(&self, i: usize, j: usize) -> f32 {
		self.data[self.index(i, j)].widen()
	}

	/// Row `i`'s columns `j..j + w` as one slice, where they lie next to each other.
	#[inline(always)]
	fn run(&self, i: usize, j: usize, w: usize) -> Option<&'a [T]> {
		let contiguous = self.cs == 1 && (self.ss == NR || j % NR + w <= NR);
		let from = self.index(i, j);
		contiguous.then(|| &self.data[from..from + w])
	}

	/// Laid out in [`Strips`].
	fn is_strips(&self) -> bool {
		self.cs == 1 && self.rs == NR && self.ss != NR
	}

	fn rows_from(self, r0: usize) -> Self {
		Self { offset: self.offset + r0 * self.rs, ..self }
	}
}

/// A `k × n` matrix laid out for products with few rows (a served model's weights, multiplied
/// once per decoded token): strips of `NR` columns, strip after strip, each its `k` rows of `NR`
/// values (zero past column `n`). A product streams a strip in order and keeps the outputs of
/// its columns in registers over all of `k`.
#[derive(Clone, Debug)]
pub struct Strips<T> {
	data: Vec<T>,
	k: usize,
	n: usize,
}

impl<T: Widen> Strips<T> {
	/// The `k × n` matrix whose element `(p, j)` is `value(p, j)`, strips filled on [`threads`]
	/// threads, each row by row: `value` is called across `NR` columns at once (a transposed
	/// source is read as `NR` sequential streams).
	pub fn from_fn(k: usize, n: usize, value: impl Fn(usize, usize) -> T + Sync) -> Self {
		let mut data = vec![T::ZERO; n.div_ceil(NR) * k * NR];
		let fill = |(s, strip): (usize, &mut [T])| {
			for (p, row) in strip.chunks_exact_mut(NR).enumerate() {
				for (j, v) in (s * NR..n.min((s + 1) * NR)).zip(row) {
					*v = value(p, j);
				}
			}
		};
		if k > 0 {
			pool().install(|| data.par_chunks_exact_mut(k * NR).enumerate().for_each(fill));
		}
		Self { data, k, n }
	}

	/// Rows (the reduction).
	pub fn k(&self) -> usize {
		self.k
	}

	/// Columns (the outputs).
	pub fn n(&self) -> usize {
		self.n
	}

	/// The matrix, as a product's right operand.
	pub fn mat(&self) -> Mat<'_, T> {
		Mat { data: &self.data, offset: 0, rs: NR, cs: 1, ss: self.k * NR }
	}
}

/// `c = a · b` for row-major `a` (`m × k`), `b` (`k × n`) and `c` (`m × n`), on [`threads`]
/// threads.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
	batched_matmul(c, 1, m, k, n, |_| (Mat::row_major(a, k), Mat::row_major(b, n)));
}

/// `batches` products `c[t] = a · b` with `(a, b) = operands(t)` (`m × k` and `k × n`); `c` is
/// row-major and contiguous, batch after batch.
pub fn batched_matmul<'a, T: Widen>(
	c: &mut [f32],
	batches: usize,
	m: usize,
	k: usize,
	n: usize,
	operands: impl Fn(usize) -> (Mat<'a>, Mat<'a, T>) + Sync,
) {
	let sc = m * n;
	if sc == 0 {
		return;
	}
	let one = |t: usize, c: &mut [f32]| {
		let (a, b) = operands(t);
		block(a, b, c, n, m, k, 0, n)
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
			let (a, b) = operands(t);
			parallel(&pool, threads, a, b, c, m, k, n);
		}
	}
}

/// One product split across the pool: by row blocks when there are enough rows, else by column
/// blocks (decoding has one row).
#[allow(clippy::too_many_arguments)]
fn parallel<T: Widen>(
	pool: &rayon::ThreadPool,
	threads: usize,
	a: Mat<'_>,
	b: Mat<'_, T>,
	c: &mut [f32],
	m: usize,
	k: usize,
	n: usize,
) {
	// One-row products (decoding) stream the weight: fewer, longer runs of each row per task
	// read faster than more, shorter ones (the split does not change a bit).
	let tasks = if m < MR { threads } else { threads * 2 };
	if m >= tasks * MR {
		let rows = m.div_ceil(tasks).next_multiple_of(MR);
		pool.install(|| {
			c.par_chunks_mut(rows * n)
				.enumerate()
				.for_each(|(t, c)| block(a.rows_from(t * rows), b, c, n, c.len() / n, k, 0, n))
		});
	} else {
		let cols = n.div_ceil(tasks).next_multiple_of(NR);
		let blocks: Vec<(usize, Vec<f32>)> = pool.install(|| {
			(0..n.div_ceil(cols))
				.into_par_iter()
				.map(|t| {
					let (j0, w) = (t * cols, cols.min(n - t * cols));
					let mut out = vec![0.0; m * w];
					block(a, b, &mut out, w, m, k, j0, w);
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

thread_local! {
	/// Packing buffers, reused by every product on this thread (every element a product reads
	/// is written first, so they are never cleared).
	static PACKED: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// `c[.., 0..w] = a · b[.., j0..j0 + w]` for `a` of `m` rows and `k` columns; `c` has row
/// stride `ldc`.
#[allow(clippy::too_many_arguments)]
fn block<T: Widen>(
	a: Mat<'_>,
	b: Mat<'_, T>,
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
	// A transposed `b` is gathered element by element; packing it once beats that per row.
	if m < MR || (m < ROWS_MAX && b.cs == 1) {
		rows(a, b, c, ldc, m, k, j0, w);
		return;
	}
	let wide = isa() == Isa::Avx512;
	// A `b` in strips is already in the packed layout (strips of `NR` columns, row after row):
	// the kernel reads it in place, widening `bf16` as it goes, instead of copying it.
	let direct = b.is_strips() && j0.is_multiple_of(NR);
	PACKED.with(|cell| {
		let (packed_a, packed_b) = &mut *cell.borrow_mut();
		let strips_max = NC.min(w).div_ceil(NR);
		packed_a.resize(KC * MR, 0.0);
		if !direct {
			packed_b.resize(KC.min(k) * NR * strips_max, 0.0);
		}
		for jc in (0..w).step_by(NC) {
			let nc = NC.min(w - jc);
			let strips = nc.div_ceil(NR);
			for pc in (0..k).step_by(KC) {
				let kc = KC.min(k - pc);
				if !direct {
					pack_b(b, pc, kc, j0 + jc, nc, &mut packed_b[..strips * kc * NR]);
				}
				for ir in (0..m).step_by(MR) {
					let mr = MR.min(m - ir);
					pack_a(a, ir, mr, pc, kc, &mut packed_a[..kc * MR]);
					let packed_a = &packed_a[..kc * MR];
					let shape = TileShape { kc, ir, mr, jc, nc, strips, wide, resume: pc > 0 };
					if direct {
						let at = b.offset + (j0 + jc) / NR * b.ss + pc * NR;
						shape.run(packed_a, b.data, at, b.ss, c, ldc);
					} else {
						shape.run(packed_a, &packed_b[..strips * kc * NR], 0, kc * NR, c, ldc);
					}
				}
			}
		}
	})
}

/// Few rows (decoding): the same fold, streamed over `b`'s rows, so a weight is read once and
/// never packed.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn rows_body<T: Widen, const WIDE: bool>(
	a: Mat<'_>,
	b: Mat<'_, T>,
	c: &mut [f32],
	ldc: usize,
	m: usize,
	k: usize,
	j0: usize,
	w: usize,
) {
	// Column blocks small enough that every row's outputs stay in L1 while all of `k` streams
	// by; within one, each row of `b` is read once for every row of `a` (a weight streams from
	// memory once per decoding step, however many sessions are batched), and `p` still runs in
	// order for every output.
	if b.is_strips() && j0.is_multiple_of(NR) {
		return strips_body::<T, WIDE>(a, b, c, ldc, m, k, j0, w);
	}
	let block = (RB / m.max(1)).max(NR);
	for jb in (0..w).step_by(block) {
		let width = block.min(w - jb);
		for i in 0..m {
			c[i * ldc + jb..i * ldc + jb + width].fill(0.0);
		}
		for p in 0..k {
			let run = b.run(p, j0 + jb, width);
			for i in 0..m {
				let av = a.at(i, p);
				let out = &mut c[i * ldc + jb..i * ldc + jb + width];
				match run {
					Some(run) => {
						for (o, bv) in out.iter_mut().zip(run) {
							*o += av * bv.widen();
						}
					}
					None => {
						for (j, o) in out.iter_mut().enumerate() {
							*o += av * b.at(p, j0 + jb + j);
						}
					}
				}
			}
		}
	}
}

/// Few rows over a `b` laid out in [`Strips`] (`j0` at a strip's start): tiles of up to four
/// rows by one to four strips whose outputs stay in registers while `p` runs over all of `k`
/// in order — the same fold as every other path, with no output traffic through memory.
/// `WIDE` (AVX-512's 32 registers of 16 lanes): every row group takes four strips at once.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn strips_body<T: Widen, const WIDE: bool>(
	a: Mat<'_>,
	b: Mat<'_, T>,
	c: &mut [f32],
	ldc: usize,
	m: usize,
	k: usize,
	j0: usize,
	w: usize,
) {
	let (first, strips) = (j0 / NR, w.div_ceil(NR));
	// Each group of up to four rows' `a`, column after column (`panel[i·k + p·rows + r] =
	// a[i + r][p]` for the group at row `i`): the tile reads a step's values with one load.
	let groups: Vec<(usize, usize)> = (0..m).step_by(4).map(|i| (i, (m - i).min(4))).collect();
	let mut panels = vec![0.0f32; m * k];
	for &(i, rows) in &groups {
		let panel = &mut panels[i * k..(i + rows) * k];
		for (p, column) in panel.chunks_exact_mut(rows).enumerate() {
			for (r, v) in column.iter_mut().enumerate() {
				*v = a.at(i + r, p);
			}
		}
	}
	// Four strips at a time (at most a few hundred KB: they stay in L2) for every row group, so
	// a weight streams from memory once however many rows there are.
	for s0 in (0..strips).step_by(4) {
		let end = (s0 + 4).min(strips);
		for &(i, rows) in &groups {
			let panel = &panels[i * k..(i + rows) * k];
			let mut s = s0;
			while s < end {
				let done = if WIDE {
					// Up to sixteen accumulator vectors of sixteen lanes.
					match (rows, end - s) {
						(1, 4) => strip_tile::<T, 1, 4>(panel, i, b, first, s, k, c, ldc, w),
						(2, 4) => strip_tile::<T, 2, 4>(panel, i, b, first, s, k, c, ldc, w),
						(3, 4) => strip_tile::<T, 3, 4>(panel, i, b, first, s, k, c, ldc, w),
						(4, 4) => strip_tile::<T, 4, 4>(panel, i, b, first, s, k, c, ldc, w),
						(1, _) => strip_tile::<T, 1, 1>(panel, i, b, first, s, k, c, ldc, w),
						(2, _) => strip_tile::<T, 2, 1>(panel, i, b, first, s, k, c, ldc, w),
						(3, _) => strip_tile::<T, 3, 1>(panel, i, b, first, s, k, c, ldc, w),
						_ => strip_tile::<T, 4, 1>(panel, i, b, first, s, k, c, ldc, w),
					}
				} else {
					// Eight accumulator vectors of eight lanes: rows × strips × NR = 64 outputs.
					match (rows, end - s) {
						(1, 4) => strip_tile::<T, 1, 4>(panel, i, b, first, s, k, c, ldc, w),
						(1, _) => strip_tile::<T, 1, 1>(panel, i, b, first, s, k, c, ldc, w),
						(2, left) if left >= 2 => {
							strip_tile::<T, 2, 2>(panel, i, b, first, s, k, c, ldc, w)
						}
						(2, _) => strip_tile::<T, 2, 1>(panel, i, b, first, s, k, c, ldc, w),
						(3, _) => strip_tile::<T, 3, 1>(panel, i, b, first, s, k, c, ldc, w),
						_ => strip_tile::<T, 4, 1>(panel, i, b, first, s, k, c, ldc, w),
					}
				};
				s += done;
			}
		}
	}
}

/// Outputs of rows `i0..i0 + R` (their `a` in `panel`, column after column) in strips
/// `first + s0..first + s0 + S` (columns past `w` are not written); returns `S`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn strip_tile<T: Widen, const R: usize, const S: usize>(
	panel: &[f32],
	i0: usize,
	b: Mat<'_, T>,
	first: usize,
	s0: usize,
	k: usize,
	c: &mut [f32],
	ldc: usize,
	w: usize,
) -> usize {
	let mut acc = [[[0.0f32; NR]; S]; R];
	let strips: [&[T]; S] = std::array::from_fn(|s| {
		let from = b.offset + (first + s0 + s) * b.ss;
		&b.data[from..from + k * NR]
	});
	for (p, av) in panel.chunks_exact(R).take(k).enumerate() {
		let av: &[f32; R] = av.try_into().expect("R values");
		for (s, strip) in strips.iter().enumerate() {
			let bv: &[T; NR] = strip[p * NR..p * NR + NR].try_into().expect("NR values");
			let bv: [f32; NR] = std::array::from_fn(|j| bv[j].widen());
			for r in 0..R {
				for j in 0..NR {
					acc[r][s][j] += av[r] * bv[j];
				}
			}
		}
	}
	for (r, row) in acc.iter().enumerate() {
		for (s, outs) in row.iter().enumerate() {
			let jb = (s0 + s) * NR;
			let width = NR.min(w - jb);
			let at = (i0 + r) * ldc + jb;
			c[at..at + width].copy_from_slice(&outs[..width]);
		}
	}
	S
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_avx2<T: Widen>(
	a: Mat<'_>,
	b: Mat<'_, T>,
	c: &mut [f32],
	ldc: usize,
	m: usize,
	k: usize,
	j0: usize,
	w: usize,
) {
	rows_body::<T, false>(a, b, c, ldc, m, k, j0, w)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_avx512<T: Widen>(
	a: Mat<'_>,
	b: Mat<'_, T>,
	c: &mut [f32],
	ldc: usize,
	m: usize,
	k: usize,
	j0: usize,
	w: usize,
) {
	rows_body::<T, true>(a, b, c, ldc, m, k, j0, w)
}

/// [`rows_body`], with the widest vectors the CPU has ([`isa`]): lanes run across outputs and
/// the multiply and add stay separate (no `fma`), so the bits are the same at every level.
#[allow(clippy::too_many_arguments)]
fn rows<T: Widen>(
	a: Mat<'_>,
	b: Mat<'_, T>,
	c: &mut [f32],
	ldc: usize,
	m: usize,
	k: usize,
	j0: usize,
	w: usize,
) {
	match isa() {
		// SAFETY: `isa` says the CPU has the instructions.
		#[cfg(target_arch = "x86_64")]
		Isa::Avx512 => unsafe { rows_avx512(a, b, c, ldc, m, k, j0, w) },
		#[cfg(target_arch = "x86_64")]
		Isa::Avx2 => unsafe { rows_avx2(a, b, c, ldc, m, k, j0, w) },
		_ => rows_body::<T, false>(a, b, c, ldc, m, k, j0, w),
	}
}

/// `out[p·MR + r] = a[ir + r][pc + p]`, zero for rows past `mr`.
fn pack_a(a: Mat<'_>, ir: usize, mr: usize, pc: usize, kc: usize, out: &mut [f32]) {
	for (p, panel) in out.chunks_exact_mut(MR).enumerate().take(kc) {
		for (r, v) in panel.iter_mut().enumerate() {
			*v = if r < mr { a.at(ir + r, pc + p) } else { 0.0 };
		}
	}
}

/// Strips of `NR` columns: `out[s·kc·NR + p·NR + j] = b[pc + p][j0 + s·NR + j]`, zero past `nc`.
fn pack_b<T: Widen>(b: Mat<'_, T>, pc: usize, kc: usize, j0: usize, nc: usize, out: &mut [f32]) {
	for (s, strip) in out.chunks_exact_mut(kc * NR).enumerate() {
		let (col, width) = (j0 + s * NR, NR.min(nc - s * NR));
		for (p, row) in strip.chunks_exact_mut(NR).enumerate() {
			match b.run(pc + p, col, width) {
				Some(run) => {
					for (v, x) in row[..width].iter_mut().zip(run) {
						*v = x.widen();
					}
				}
				None => {
					for (j, v) in row[..width].iter_mut().enumerate() {
						*v = b.at(pc + p, col + j);
					}
				}
			}
			row[width..].fill(0.0);
		}
	}
}

/// One register tile's outputs, `MR` rows by `NR` columns.
type Acc = [[f32; NR]; MR];

/// Where one row panel (`mr` rows from `ir`, reduction block of `kc`) meets one column block
/// (`nc` columns from `jc`, `strips` strips of `NR`); `resume`: a later reduction block, whose
/// outputs continue from those stored in `c`.
#[derive(Clone, Copy)]
struct TileShape {
	kc: usize,
	ir: usize,
	mr: usize,
	jc: usize,
	nc: usize,
	strips: usize,
	/// Four strips a tile (AVX-512's registers hold them).
	wide: bool,
	resume: bool,
}

impl TileShape {
	/// Every tile of the panel against the block: `packed_a` the panel, strip `s` of the block
	/// at `b[at + s·stride..]` (`kc` rows of `NR`).
	fn run<T: Widen>(
		self,
		packed_a: &[f32],
		b: &[T],
		at: usize,
		stride: usize,
		c: &mut [f32],
		ldc: usize,
	) {
		let mut s = 0;
		while s < self.strips {
			s += if self.wide && self.strips - s >= 4 {
				self.tiles::<T, 4>(packed_a, b, at, stride, c, ldc, s)
			} else {
				self.tiles::<T, 1>(packed_a, b, at, stride, c, ldc, s)
			};
		}
	}

	/// Strips `s0..s0 + S`: their outputs continued from `c` (when resuming) and stored back;
	/// returns `S`.
	#[allow(clippy::too_many_arguments)]
	fn tiles<T: Widen, const S: usize>(
		self,
		packed_a: &[f32],
		b: &[T],
		at: usize,
		stride: usize,
		c: &mut [f32],
		ldc: usize,
		s0: usize,
	) -> usize {
		let TileShape { kc, ir, mr, jc, nc, resume, .. } = self;
		let mut acc = [[[0.0f32; NR]; MR]; S];
		if resume {
			for (s, tile) in acc.iter_mut().enumerate() {
				let (jr, nr) = ((s0 + s) * NR, NR.min(nc - (s0 + s) * NR));
				for (r, row) in tile.iter_mut().enumerate().take(mr) {
					let from = (ir + r) * ldc + jc + jr;
					row[..nr].copy_from_slice(&c[from..from + nr]);
				}
			}
		}
		let strips: [&[T]; S] = std::array::from_fn(|s| {
			let from = at + (s0 + s) * stride;
			&b[from..from + kc * NR]
		});
		let acc = kernel(packed_a, strips, acc);
		for (s, tile) in acc.iter().enumerate() {
			let (jr, nr) = ((s0 + s) * NR, NR.min(nc - (s0 + s) * NR));
			for (r, row) in tile.iter().enumerate().take(mr) {
				let to = (ir + r) * ldc + jc + jr;
				c[to..to + nr].copy_from_slice(&row[..nr]);
			}
		}
		S
	}
}

/// The register tiles: `acc[s][r][j] += a[p][r] · strip_s[p][j]` for `p` in order (each value
/// of a strip widened to the `f32` it stands for).
#[inline(always)]
fn kernel_body<T: Widen, const S: usize>(
	packed_a: &[f32],
	strips: [&[T]; S],
	acc: [Acc; S],
) -> [Acc; S] {
	// A local copy, and strips cut to the panel's length up front: the argument lives in the
	// caller's memory, where a bounds check's panic path would keep every update stored
	// instead of in registers.
	let mut tiles = acc;
	let k = packed_a.len() / MR;
	let strips: [&[T]; S] = strips.map(|strip| &strip[..k * NR]);
	for (p, av) in packed_a.chunks_exact(MR).enumerate() {
		let av: &[f32; MR] = av.try_into().expect("MR values");
		for (tile, strip) in tiles.iter_mut().zip(strips) {
			let bv: &[T; NR] = strip[p * NR..p * NR + NR].try_into().expect("NR values");
			let bv: [f32; NR] = std::array::from_fn(|j| bv[j].widen());
			for r in 0..MR {
				for j in 0..NR {
					tile[r][j] += av[r] * bv[j];
				}
			}
		}
	}
	tiles
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn kernel_avx2<T: Widen, const S: usize>(
	packed_a: &[f32],
	strips: [&[T]; S],
	acc: [Acc; S],
) -> [Acc; S] {
	kernel_body(packed_a, strips, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512<T: Widen, const S: usize>(
	packed_a: &[f32],
	strips: [&[T]; S],
	acc: [Acc; S],
) -> [Acc; S] {
	kernel_body(packed_a, strips, acc)
}

fn kernel<T: Widen, const S: usize>(
	packed_a: &[f32],
	strips: [&[T]; S],
	acc: [Acc; S],
) -> [Acc; S] {
	match isa() {
		// SAFETY: `isa` says the CPU has the instructions.
		#[cfg(target_arch = "x86_64")]
		Isa::Avx512 => unsafe { kernel_avx512(packed_a, strips, acc) },
		#[cfg(target_arch = "x86_64")]
		Isa::Avx2 => unsafe { kernel_avx2(packed_a, strips, acc) },
		_ => kernel_body(packed_a, strips, acc),
	}
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

	/// Every [`Isa`] this CPU runs, each with every thread count in `threads`, set for the
	/// process in turn (the caller holds [`TEST_THREADS`]); back to the defaults at the end.
	fn settings(threads: &[usize]) -> Vec<(Isa, usize)> {
		cap_isa(Isa::Avx512);
		let widest = isa();
		[Isa::Baseline, Isa::Avx2, Isa::Avx512]
			.into_iter()
			.filter(|level| *level <= widest)
			.flat_map(|level| threads.iter().map(move |t| (level, *t)))
			.collect()
	}

	fn set(level: Isa, threads: usize) {
		cap_isa(level);
		set_threads(threads);
	}

	fn reset() {
		cap_isa(Isa::Avx512);
		set_threads(0);
	}

	#[test]
	fn every_path_equals_the_reference_fold_bit_for_bit() {
		let _threads = TEST_THREADS.lock().unwrap_or_else(|p| p.into_inner());
		let mut rng = ChaCha20Rng::seed_from_u64(7);
		// Edges of every block size: tiles, strips, KC and NC blocks, the row-by-row path.
		let shapes = [
			(1, 1, 1),
			(1, 300, 2100),
			(2, 600, 2100),
			(3, 17, 33),
			(4, 16, 16),
			(5, 257, 31),
			(37, 513, 70),
			(64, 64, 2050),
			(130, 300, 90),
			(8, 300, 2100),
			(15, 1100, 700),
		];
		for &(m, k, n) in &shapes {
			let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
			let want = bits(&reference(&a, &b, m, k, n));
			for (level, threads) in settings(&[1, 2, 3, 8]) {
				set(level, threads);
				let mut c = vec![f32::NAN; m * n];
				matmul(&a, &b, &mut c, m, k, n);
				assert_eq!(bits(&c), want, "{m}x{k}x{n} on {threads} threads, {level:?}");
			}
		}
		reset();
	}

	/// A `bf16` right operand gives the bits of the product with the `f32` values it stands
	/// for, on every path (rows, packed, transposed) and thread count.
	#[test]
	fn a_bf16_operand_equals_its_widened_f32_bit_for_bit() {
		let _threads = TEST_THREADS.lock().unwrap_or_else(|p| p.into_inner());
		let mut rng = ChaCha20Rng::seed_from_u64(11);
		for &(m, k, n) in &[
			(1, 300, 2100),
			(2, 600, 2100),
			(3, 17, 33),
			(8, 300, 2100),
			(15, 1100, 70),
			(37, 513, 70),
		] {
			let a = random(m * k, &mut rng);
			let b16: Vec<u16> =
				random(k * n, &mut rng).iter().map(|v| (v.to_bits() >> 16) as u16).collect();
			let b: Vec<f32> = b16.iter().map(|v| v.widen()).collect();
			let want = bits(&reference(&a, &b, m, k, n));
			// Stored transposed too: column j of `b` is row j.
			let bt16: Vec<u16> = (0..n * k).map(|at| b16[(at % k) * n + at / k]).collect();
			for (level, threads) in settings(&[1, 2, 3]) {
				set(level, threads);
				let mut c = vec![f32::NAN; m * n];
				batched_matmul(&mut c, 1, m, k, n, |_| {
					(Mat::row_major(&a, k), Mat::row_major(&b16, n))
				});
				assert_eq!(bits(&c), want, "{m}x{k}x{n} on {threads} threads, {level:?}");
				let mut c = vec![f32::NAN; m * n];
				batched_matmul(&mut c, 1, m, k, n, |_| {
					(Mat::row_major(&a, k), Mat::strided(&bt16, 0, 1, k))
				});
				assert_eq!(bits(&c), want, "{m}x{k}x{n} transposed, {threads} threads, {level:?}");
			}
		}
		reset();
	}

	/// A right operand laid out in strips gives the reference's bits on every path: the
	/// register tiles of every row and strip count (1–15 rows), the packed kernel (16 rows and
	/// more, reading strips), a last strip cut short, every thread count; in f32 and bf16.
	#[test]
	fn strips_equal_the_reference_fold_bit_for_bit() {
		let _threads = TEST_THREADS.lock().unwrap_or_else(|p| p.into_inner());
		let mut rng = ChaCha20Rng::seed_from_u64(13);
		for &(m, k, n) in &[
			(1, 1, 1),
			(1, 300, 2100),
			(1, 64, 40),
			(2, 600, 2100),
			(2, 33, 16),
			(3, 17, 33),
			(4, 100, 70),
			(5, 257, 100),
			(7, 40, 130),
			(3, 40, 200),
			(8, 70, 300),
			(12, 50, 130),
			(15, 1100, 70),
			(16, 64, 50),
			(40, 513, 70),
			// The packed kernel reading strips in place past the first column block (1 thread)
			// and in a column split starting past column 0 (3 threads).
			(20, 300, 2100),
		] {
			let a = random(m * k, &mut rng);
			let b16: Vec<u16> =
				random(k * n, &mut rng).iter().map(|v| (v.to_bits() >> 16) as u16).collect();
			let b: Vec<f32> = random(k * n, &mut rng);
			let widened: Vec<f32> = b16.iter().map(|v| v.widen()).collect();
			let want = bits(&reference(&a, &b, m, k, n));
			let want16 = bits(&reference(&a, &widened, m, k, n));
			let strips = Strips::from_fn(k, n, |p, j| b[p * n + j]);
			let strips16 = Strips::from_fn(k, n, |p, j| b16[p * n + j]);
			assert_eq!((strips.k(), strips.n()), (k, n));
			for (level, threads) in settings(&[1, 2, 3]) {
				set(level, threads);
				let mut c = vec![f32::NAN; m * n];
				batched_matmul(&mut c, 1, m, k, n, |_| (Mat::row_major(&a, k), strips.mat()));
				assert_eq!(bits(&c), want, "{m}x{k}x{n} f32 strips, {threads} threads, {level:?}");
				let mut c = vec![f32::NAN; m * n];
				batched_matmul(&mut c, 1, m, k, n, |_| (Mat::row_major(&a, k), strips16.mat()));
				assert_eq!(
					bits(&c),
					want16,
					"{m}x{k}x{n} bf16 strips, {threads} threads, {level:?}"
				);
			}
		}
		reset();
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
	fn transposed_and_offset_operands_are_read_in_place() {
		let _threads = TEST_THREADS.lock().unwrap_or_else(|p| p.into_inner());
		let mut rng = ChaCha20Rng::seed_from_u64(5);
		for &(m, k, n) in &[(2, 33, 40), (70, 300, 45)] {
			let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
			let want = bits(&reference(&a, &b, m, k, n));
			// `a` after 3 unused values; `b` stored transposed (column j of b is row j).
			let shifted: Vec<f32> =
				[0.5, 0.25, 0.125].iter().copied().chain(a.iter().copied()).collect();
			let bt: Vec<f32> = (0..n * k).map(|at| b[(at % k) * n + at / k]).collect();
			for (level, threads) in settings(&[1, 2]) {
				set(level, threads);
				let mut c = vec![f32::NAN; m * n];
				batched_matmul(&mut c, 1, m, k, n, |_| {
					(Mat::strided(&shifted, 3, k, 1), Mat::strided(&bt, 0, 1, k))
				});
				assert_eq!(bits(&c), want, "{m}x{k}x{n} on {threads} threads, {level:?}");
			}
		}
		reset();
	}

	#[test]
	fn batches_broadcast_their_operands() {
		let mut rng = ChaCha20Rng::seed_from_u64(3);
		let (m, k, n) = (9, 40, 24);
		let a = random(3 * m * k, &mut rng);
		let b = random(k * n, &mut rng);
		let mut c = vec![0.0; 3 * m * n];
		batched_matmul(&mut c, 3, m, k, n, |t| {
			(Mat::strided(&a, t * m * k, k, 1), Mat::row_major(&b, n))
		});
		for t in 0..3 {
			let want = reference(&a[t * m * k..(t + 1) * m * k], &b, m, k, n);
			assert_eq!(bits(&c[t * m * n..(t + 1) * m * n]), bits(&want));
		}
	}
}
