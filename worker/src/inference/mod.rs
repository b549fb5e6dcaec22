//! Inference role: serving a span of an accepted version's layers ([`stage`], [`protocol`]),
//! coordinating generation over routes of stages ([`route`]) built from the on-chain
//! announcements ([`router`]), the OpenAI-compatible HTTP API ([`server`]) and pay-per-token
//! receipts ([`receipts`]).

pub mod protocol;
pub mod receipts;
pub mod route;
pub mod router;
pub mod server;
pub mod service;
pub mod stage;
