//! `blyan-worker`: a Blyan GPU miner. It follows the chain, claims training jobs, trains with burn,
//! pins weights to IPFS and submits signed commitments and proofs; as a verifier it re-evaluates
//! other miners' results. Split by role: [`chain`] (the node, through subxt), [`storage`] (IPFS),
//! [`ml`] (models, training, evaluation), [`trainer`] (the miner), [`verifier`], [`creator`]
//! (models, datasets, jobs), [`report`] (status, earnings); [`content`] joins chain and storage
//! (registry content checked against its on-chain hashes), [`config`] and [`state`] serve all.

pub mod chain;
pub mod config;
pub mod content;
pub mod creator;
pub mod ml;
pub mod report;
pub mod state;
pub mod storage;
pub mod trainer;
pub mod verifier;
