//! `blyan-worker`: a Blyan GPU miner. It follows the chain, claims training jobs, trains with burn,
//! pins weights to IPFS and submits signed commitments and proofs; as a verifier it re-evaluates
//! other miners' results; as a server it serves layers of accepted versions.
//!
//! [`roles`] holds one module per role (account, miner, verifier, creator, federated, server,
//! gateway, status, gpu-check), each owning its command-line arguments and `run`. They are built
//! on shared parts that know nothing of roles: [`chain`] (the node through subxt: typed queries
//! and calls), [`storage`] (IPFS), [`content`] (registry content checked against its on-chain
//! hashes), [`ml`] (models, training, evaluation, generic over burn's `Backend`), [`audit`]
//! (training traces: spot checks, bisection, arbitration), [`federated`] (rounds, secure
//! aggregation, differential privacy), [`inference`] (stages, routing, receipts, the OpenAI
//! API), [`report`] (earnings from chain events); [`config`], [`state`] and [`metrics`]
//! (Prometheus) serve all.

pub mod audit;
/// The chain client ([`blyan_client`]): typed queries and calls, typed chain errors.
pub use blyan_client as chain;
pub mod config;
pub mod content;
pub mod federated;
pub mod inference;
pub mod metrics;
pub mod ml;
pub mod report;
pub mod roles;
pub mod state;
pub mod storage;

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
