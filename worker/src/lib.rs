//! `blyan-worker`: a Blyan GPU miner. It follows the chain, claims training jobs, trains with burn,
//! pins weights to IPFS and submits signed commitments and proofs; as a verifier it re-evaluates
//! other miners' results. Split by role: [`chain`] (the node, through subxt), [`storage`] (IPFS),
//! [`ml`] (models, training, evaluation), [`trainer`] (the miner), [`verifier`], [`creator`]
//! (models, datasets, jobs), [`report`] (status, earnings); [`content`] joins chain and storage
//! (registry content checked against its on-chain hashes); [`config`], [`state`] and [`metrics`]
//! (Prometheus) serve all.

pub mod audit;
pub mod chain;
pub mod config;
pub mod content;
pub mod creator;
pub mod federated;
pub mod inference;
pub mod metrics;
pub mod ml;
pub mod report;
pub mod state;
pub mod storage;
pub mod trainer;
pub mod verifier;

/// Whether an error means the node connection is gone (reconnect and carry on) rather than a
/// refusal or bad content.
pub fn is_connection_error(e: &anyhow::Error) -> bool {
	e.downcast_ref::<chain::ChainError>().is_some_and(chain::ChainError::is_connection)
		|| matches!(e.downcast_ref::<content::ContentError>(), Some(content::ContentError::Chain(c)) if c.is_connection())
}

/// Whether a role should reconnect and go on after `e`: a lost connection or any node RPC
/// failure (a timeout, a node restarting), as opposed to a refusal, bad content or a local error.
pub fn is_transient_error(e: &anyhow::Error) -> bool {
	let chain_error =
		e.downcast_ref::<chain::ChainError>().or(match e.downcast_ref::<content::ContentError>() {
			Some(content::ContentError::Chain(c)) => Some(c),
			_ => None,
		});
	matches!(chain_error, Some(chain::ChainError::Unreachable { .. } | chain::ChainError::Rpc(_)))
}
