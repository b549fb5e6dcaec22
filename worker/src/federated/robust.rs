//! Aggregation rules for the plain (non-secure) mode, where every update is published.
//!
//! All are deterministic: values are ordered with `f32::total_cmp`, sums run in f64 in a fixed
//! order and ties go to the lower participant index, so any verifier recomputes the aggregate
//! bit for bit from the published updates.

use codec::{Decode, Encode};

/// How a round's updates are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Aggregation {
	/// Plain federated averaging.
	Mean,
	/// Coordinate-wise median (the mean of the two middle values for an even count).
	Median,
	/// Coordinate-wise mean after dropping the `trim` lowest and `trim` highest values.
	TrimmedMean { trim: u16 },
	/// Multi-Krum (Blanchard et al. 2017): average of the `selected` updates with the least
	/// summed squared distance to their `n − byzantine − 2` nearest neighbours.
	MultiKrum { byzantine: u16, selected: u16 },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AggregationError {
	#[error("no updates to aggregate")]
	Empty,
	#[error("update {index} has {got} values, the first has {want}")]
	Length { index: usize, got: usize, want: usize },
	#[error("{rule} needs more than {need} updates, got {got}")]
	TooFew { rule: &'static str, need: usize, got: usize },
	#[error("update {0} holds a value that is not finite")]
	NotFinite(usize),
}

/// Aggregates `updates` (one per contributor, in participant order) with `rule`.
pub fn aggregate(updates: &[Vec<f32>], rule: Aggregation) -> Result<Vec<f32>, AggregationError> {
	let len = updates.first().ok_or(AggregationError::Empty)?.len();
	for (index, u) in updates.iter().enumerate() {
		if u.len() != len {
			return Err(AggregationError::Length { index, got: u.len(), want: len });
		}
		if u.iter().any(|v| !v.is_finite()) {
			return Err(AggregationError::NotFinite(index));
		}
	}
	let n = updates.len();
	match rule {
		Aggregation::Mean => Ok(mean_of(updates.iter())),
		Aggregation::Median => Ok(per_coordinate(updates, |sorted| {
			let m = sorted.len() / 2;
			if sorted.len() % 2 == 1 {
				sorted[m]
			} else {
				((sorted[m - 1] as f64 + sorted[m] as f64) / 2.0) as f32
			}
		})),
		Aggregation::TrimmedMean { trim } => {
			let trim = trim as usize;
			if n <= 2 * trim {
				return Err(AggregationError::TooFew {
					rule: "trimmed mean",
					need: 2 * trim,
					got: n,
				});
			}
			Ok(per_coordinate(updates, |sorted| {
				let kept = &sorted[trim..sorted.len() - trim];
				(kept.iter().map(|v| *v as f64).sum::<f64>() / kept.len() as f64) as f32
			}))
		}
		Aggregation::MultiKrum { byzantine, selected } => {
			let (f, m) = (byzantine as usize, selected as usize);
			if n < 2 * f + 3 || m == 0 || m > n {
				return Err(AggregationError::TooFew {
					rule: "Multi-Krum",
					need: 2 * f + 2,
					got: n,
				});
			}
			let chosen = krum_selection(updates, f, m);
			Ok(mean_of(chosen.iter().map(|i| &updates[*i])))
		}
	}
}

/// The indices Multi-Krum keeps, best score first.
pub fn krum_selection(updates: &[Vec<f32>], byzantine: usize, selected: usize) -> Vec<usize> {
	let n = updates.len();
	let mut dist = vec![vec![0f64; n]; n];
	for i in 0..n {
		for j in i + 1..n {
			let d: f64 = updates[i]
				.iter()
				.zip(&updates[j])
				.map(|(a, b)| (*a as f64 - *b as f64).powi(2))
				.sum();
			dist[i][j] = d;
			dist[j][i] = d;
		}
	}
	let neighbours = n - byzantine - 2;
	let mut scores: Vec<(f64, usize)> = (0..n)
		.map(|i| {
			let mut d: Vec<f64> = (0..n).filter(|j| *j != i).map(|j| dist[i][j]).collect();
			d.sort_by(f64::total_cmp);
			(d[..neighbours].iter().sum(), i)
		})
		.collect();
	scores.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
	scores.into_iter().take(selected).map(|(_, i)| i).collect()
}

fn mean_of<'a>(updates: impl Iterator<Item = &'a Vec<f32>> + Clone) -> Vec<f32> {
	let count = updates.clone().count() as f64;
	let len = updates.clone().next().map_or(0, |u| u.len());
	let mut acc = vec![0f64; len];
	for u in updates {
		for (a, v) in acc.iter_mut().zip(u) {
			*a += *v as f64;
		}
	}
	acc.into_iter().map(|a| (a / count) as f32).collect()
}

fn per_coordinate(updates: &[Vec<f32>], pick: impl Fn(&[f32]) -> f32) -> Vec<f32> {
	let len = updates[0].len();
	let mut column = vec![0f32; updates.len()];
	(0..len)
		.map(|k| {
			for (c, u) in column.iter_mut().zip(updates) {
				*c = u[k];
			}
			column.sort_by(f32::total_cmp);
			pick(&column)
		})
		.collect()
}

#[cfg(test)]
mod tests {
	use super::*;

	/// Five honest-looking updates around a common direction, and participant 3 scaling its
	/// own ×100.
	fn updates() -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
		let honest: Vec<Vec<f32>> = (0..5)
			.map(|i| (0..64).map(|k| 0.01 * ((k % 7) as f32 - 3.0) + 0.002 * i as f32).collect())
			.collect();
		let mut attacked = honest.clone();
		for v in &mut attacked[3] {
			*v *= 100.0;
		}
		(honest, attacked)
	}

	/// The per-coordinate range of the honest updates (those not attacked).
	fn honest_range(honest: &[Vec<f32>], k: usize) -> (f32, f32) {
		let col = honest.iter().enumerate().filter(|(i, _)| *i != 3).map(|(_, u)| u[k]);
		(col.clone().fold(f32::INFINITY, f32::min), col.fold(f32::NEG_INFINITY, f32::max))
	}

	/// The stated bound: with one attacker among five, median, trimmed mean (trim 1) and
	/// Multi-Krum (f = 1) stay, coordinate by coordinate, inside the range of the four honest
	/// updates; the plain mean leaves it by far.
	#[test]
	fn a_scaled_update_does_not_move_robust_rules_out_of_the_honest_range() {
		let (honest, attacked) = updates();
		for rule in [
			Aggregation::Median,
			Aggregation::TrimmedMean { trim: 1 },
			Aggregation::MultiKrum { byzantine: 1, selected: 3 },
		] {
			let agg = aggregate(&attacked, rule).unwrap();
			for (k, v) in agg.iter().enumerate() {
				let (lo, hi) = honest_range(&honest, k);
				assert!(
					*v >= lo - 1e-6 && *v <= hi + 1e-6,
					"{rule:?} coordinate {k}: {v} ∉ [{lo}, {hi}]"
				);
			}
		}
		assert!(!krum_selection(&attacked, 1, 3).contains(&3));
		let mean = aggregate(&attacked, Aggregation::Mean).unwrap();
		let outside = (0..64)
			.filter(|k| {
				let (lo, hi) = honest_range(&honest, *k);
				mean[*k] < lo - 1e-6 || mean[*k] > hi + 1e-6
			})
			.count();
		assert!(outside > 32, "the plain mean left the honest range on only {outside} coordinates");
	}

	#[test]
	fn rules_are_deterministic_and_exact_on_simple_input() {
		let u = vec![vec![1.0, 10.0], vec![2.0, 20.0], vec![4.0, 40.0]];
		assert_eq!(aggregate(&u, Aggregation::Median).unwrap(), vec![2.0, 20.0]);
		assert_eq!(aggregate(&u, Aggregation::TrimmedMean { trim: 1 }).unwrap(), vec![2.0, 20.0]);
		assert_eq!(aggregate(&u, Aggregation::Mean).unwrap(), vec![7.0 / 3.0, 70.0 / 3.0]);
		let (_, attacked) = updates();
		let a = aggregate(&attacked, Aggregation::MultiKrum { byzantine: 1, selected: 3 }).unwrap();
		let b = aggregate(&attacked, Aggregation::MultiKrum { byzantine: 1, selected: 3 }).unwrap();
		assert_eq!(
			a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
			b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
		);
	}

	#[test]
	fn malformed_input_is_refused() {
		assert_eq!(aggregate(&[], Aggregation::Mean), Err(AggregationError::Empty));
		assert!(matches!(
			aggregate(&[vec![1.0], vec![1.0, 2.0]], Aggregation::Mean),
			Err(AggregationError::Length { index: 1, .. })
		));
		assert_eq!(
			aggregate(&[vec![f32::NAN]], Aggregation::Median),
			Err(AggregationError::NotFinite(0))
		);
		assert!(matches!(
			aggregate(&[vec![1.0], vec![2.0]], Aggregation::TrimmedMean { trim: 1 }),
			Err(AggregationError::TooFew { .. })
		));
	}
}
