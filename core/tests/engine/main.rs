//! Engine tests: deterministic simulations, property tests and snapshots.

mod compare;
mod confidence;
mod pace;
mod properties;
mod scenarios;
mod sim;
mod snapshots;
mod streaming;
