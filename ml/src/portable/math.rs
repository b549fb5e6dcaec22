//! Transcendental functions, one implementation on every target.
//!
//! Host-side numbers that end up in compared results (RoPE tables, initial weights, sampling)
//! use the `libm` crate (a pure-Rust port of musl's), instead of std's, which calls the
//! platform's libm (glibc even picks FMA variants by CPU). The tensor ops do too, except `exp`,
//! the one the models call most (softmax, SiLU, the loss): [`expf`] below, branch-free so it
//! vectorises, about twice as fast as `libm::expf`.

pub use libm::{cos, cosf, exp, log, logf, pow, powf, sin, sinf, sqrt, sqrtf};

/// `e^x` in f32, from plain IEEE f64 arithmetic (no fused operations, no tables, no calls), so
/// every CPU computes the same bits: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by a degree-9
/// Taylor polynomial (relative error below 1e-12), scaled by `2^n` through the exponent bits,
/// rounded once to f32. Within one ulp of the exact value (tested against `libm::expf`);
/// `e^∞ = ∞`, `e^-∞ = 0`, NaN stays NaN.
#[inline]
pub fn expf(x: f32) -> f32 {
	// Beyond these every f32 result is ∞ or 0; clamping keeps 2^n a normal f64 (NaN stays NaN).
	let x = (x as f64).clamp(-104.0, 89.0);
	// Round x/ln 2 to the nearest integer by the 1.5·2^52 shift (add, subtract: no call).
	const SHIFT: f64 = 6_755_399_441_055_744.0;
	let n = (x * core::f64::consts::LOG2_E + SHIFT) - SHIFT;
	let r = x - n * core::f64::consts::LN_2;
	let mut p = 1.0 / 362_880.0;
	for c in [40_320.0, 5_040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0] {
		p = p * r + 1.0 / c;
	}
	// NaN gives n as i64 = 0: the NaN in p carries through.
	let scale = f64::from_bits(((n as i64 + 1023) as u64) << 52);
	(p * scale) as f32
}

#[cfg(test)]
mod tests {
	use super::*;

	fn ulps(a: f32, b: f32) -> u32 {
		(a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
	}

	#[test]
	fn expf_is_within_one_ulp_of_libm_over_the_whole_range() {
		let mut worst = 0;
		let mut x = -110.0f32;
		while x < 90.0 {
			let (got, want) = (expf(x), libm::expf(x));
			if want.is_finite() && want > f32::MIN_POSITIVE {
				worst = worst.max(ulps(got, want));
			} else {
				// Overflow and the subnormal range: the same class of result.
				assert!(
					got == want || (got - want).abs() <= f32::MIN_POSITIVE,
					"{x}: {got} {want}"
				);
			}
			x += 0.000_37;
		}
		assert!(worst <= 1, "{worst} ulps");
		assert_eq!(expf(0.0), 1.0);
		assert_eq!(expf(f32::INFINITY), f32::INFINITY);
		assert_eq!(expf(f32::NEG_INFINITY), 0.0);
		assert!(expf(f32::NAN).is_nan());
	}
}

#[cfg(test)]
mod powi_tests {
	/// burn's AdamW corrects its moments by `beta.powi(step)` on the host: a call to the
	/// compiler's `__powisf2`, which every runtime (compiler-builtins, compiler-rt, libgcc)
	/// implements by the same square-and-multiply. Pinned here against that algorithm written out,
	/// so a toolchain that changed it would fail (and the self-test's training would differ).
	#[test]
	fn powi_is_square_and_multiply() {
		fn square_and_multiply(mut a: f32, mut b: i32) -> f32 {
			let mut r = 1.0f32;
			loop {
				if b & 1 != 0 {
					r *= a;
				}
				b /= 2;
				if b == 0 {
					break;
				}
				a *= a;
			}
			r
		}
		for beta in [0.9f32, 0.999, 0.95, 0.98] {
			for t in 1..=2000 {
				let t = std::hint::black_box(t);
				assert_eq!(
					beta.powi(t).to_bits(),
					square_and_multiply(beta, t).to_bits(),
					"{beta}^{t}"
				);
			}
		}
	}
}
