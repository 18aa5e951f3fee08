//! Engine tests: deterministic simulations, property tests and snapshots.

mod compare;
mod confidence;
mod pace;
mod precision_stop;
mod properties;
mod scenarios;
mod sim;
mod snapshots;
mod streaming;
