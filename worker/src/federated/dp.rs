//! Participant-side differential privacy: clip the update's L2 norm, then add Gaussian noise.
//!
//! With noise multiplier `z` and clip norm `C`, the released sum over the round carries noise of
//! standard deviation `z·C`, which with sensitivity `C` (one participant added or removed) is the
//! Gaussian mechanism the [`super::accountant`] counts. In the secure mode only the sum is seen,
//! so each of at least `m` contributors adds `z·C/√m` (distributed noise); in the plain modes each
//! update is seen, so each adds the whole `z·C`.

use rand::Rng;
use rand_distr::{Distribution, Normal};

/// L2 norm in f64, summed in index order (deterministic).
pub fn l2_norm(update: &[f32]) -> f64 {
	update.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>().sqrt()
}

/// Scales `update` down to norm at most `max_norm`; returns its norm before clipping.
pub fn clip(update: &mut [f32], max_norm: f64) -> f64 {
	let norm = l2_norm(update);
	if norm > max_norm && norm > 0.0 {
		let scale = max_norm / norm;
		for v in update.iter_mut() {
			*v = (*v as f64 * scale) as f32;
		}
	}
	norm
}

/// Adds independent `N(0, std²)` noise to every coordinate (from a CSPRNG in production).
pub fn add_gaussian_noise<R: Rng + ?Sized>(update: &mut [f32], std: f64, rng: &mut R) {
	if std <= 0.0 {
		return;
	}
	let normal = Normal::new(0.0, std).expect("std is positive and finite");
	for v in update.iter_mut() {
		*v = (*v as f64 + normal.sample(rng)) as f32;
	}
}

/// Standard deviation each participant adds: the whole `z·C` when its update is seen alone,
/// `z·C/√m` when only a sum of at least `min_contributors` updates is released.
pub fn participant_noise_std(
	clip_norm: f64,
	noise_multiplier: f64,
	secure: bool,
	min_contributors: usize,
) -> f64 {
	let full = clip_norm * noise_multiplier;
	if secure {
		full / (min_contributors.max(1) as f64).sqrt()
	} else {
		full
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use rand::SeedableRng;
	use rand_chacha::ChaCha20Rng;

	#[test]
	fn clipping_bounds_the_norm_and_keeps_small_updates() {
		let mut big = vec![3.0f32, 4.0];
		assert_eq!(clip(&mut big, 1.0), 5.0);
		assert!((l2_norm(&big) - 1.0).abs() < 1e-6);
		let mut small = vec![0.3f32, 0.4];
		clip(&mut small, 1.0);
		assert_eq!(small, vec![0.3, 0.4]);
	}

	#[test]
	fn noise_has_the_requested_spread() {
		let mut rng = ChaCha20Rng::seed_from_u64(1);
		let mut v = vec![0.0f32; 200_000];
		add_gaussian_noise(&mut v, 0.5, &mut rng);
		let mean = v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
		let var = v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
		assert!(mean.abs() < 0.01 && (var.sqrt() - 0.5).abs() < 0.01, "{mean} {var}");
	}

	#[test]
	fn distributed_noise_sums_to_the_central_level() {
		let each = participant_noise_std(2.0, 1.1, true, 16);
		assert!(((each * each * 16.0).sqrt() - 2.2).abs() < 1e-12);
		assert_eq!(participant_noise_std(2.0, 1.1, false, 16), 2.2);
	}
}
