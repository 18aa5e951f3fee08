//! shadow-core (work in progress)
pub mod config;
pub mod engine;
pub mod eval;
pub mod http;
pub mod image;
pub mod input;
pub mod journal;
mod pacing;
pub mod provider;
pub mod ratelimit;
pub mod report;
pub mod time;

pub use config::{ConfigError, RunConfig};
pub use engine::{Counts, Input, Output, Run, SendOrder, Ticket, UsageError};
pub use time::Millis;
