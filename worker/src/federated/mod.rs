//! Federated learning: participants train on data that never leaves their machine and send only
//! an update; the aggregator combines them into one new model version.
//!
//! - [`secagg`]: secure aggregation (pairwise X25519 masks, Shamir-shared keys for dropouts);
//! - [`dp`]: clipping and Gaussian noise on each participant's update;
//! - [`accountant`]: the (ε, δ) those rounds spend (Rényi DP);
//! - [`robust`]: median, trimmed mean, Multi-Krum for the plain mode;
//! - [`round`]: one round over HTTP, aggregator and participant sides.

pub mod accountant;
pub mod dp;
pub mod job;
pub mod robust;
pub mod round;
pub mod secagg;
