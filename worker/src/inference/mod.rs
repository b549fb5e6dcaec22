//! Inference, for the server and gateway roles: serving a span of an accepted version's layers
//! ([`stage`], [`protocol`]), generation over a route of stages ([`route`]), routes picked from
//! the on-chain announcements ([`chain_router`]), the OpenAI-compatible HTTP API ([`server`]),
//! pay-per-token receipts ([`receipts`]), and the two services put together ([`service`]).

pub mod chain_router;
pub mod protocol;
pub mod receipts;
pub mod route;
pub mod server;
pub mod service;
pub mod stage;
