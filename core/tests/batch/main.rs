//! Batch-API tests: whole runs against a fake provider through simulated hours.
//! The fake provider answers each request as the engine simulation's endpoint
//! answers a live one.

mod breaker;
mod gemini_inline;
mod harness;
mod precision;
mod scenarios;
// The engine simulation's harness; the batch tests take what they share with it.
#[allow(dead_code)]
#[path = "../engine/sim.rs"]
mod sim;
