//! Inference, for the server and gateway roles: serving a span of an accepted version's layers
//! ([`stage`], [`protocol`]), generation over a route of stages ([`route`]), routes picked from
//! the on-chain announcements ([`chain_router`]), the OpenAI-compatible HTTP API ([`server`]),
//! pay-per-token receipts ([`receipts`]), who a stage computes for ([`sessions`]), API keys
//! and their quotas ([`api_keys`]), what stages sign of their answers ([`commitments`]) and
//! the spot checks that catch a stage answering other bits ([`checks`]), the on-chain challenge
//! of a caught stage and its arbitration ([`fraud`]), and the two services put together
//! ([`service`]).

pub mod api_keys;
pub mod chain_router;
pub mod checks;
pub mod commitments;
pub mod fraud;
pub mod protocol;
pub mod receipts;
pub mod route;
pub mod server;
pub mod service;
pub mod sessions;
pub mod stage;
pub mod web;
