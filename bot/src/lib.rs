//! threadsmith's bot: configuration, task specs, the task pipeline, the store and the CLI.
//! Chat front-ends (Slack, Discord) live here too, behind their adapters; the runner crate does
//! the sandboxed work and knows nothing of them.

pub mod chat;
pub mod cli;
pub mod config;
pub mod cost;
pub mod discord;
pub mod instructions;
pub mod judge;
pub mod metrics;
pub mod orchestrator;
pub mod pipeline;
pub mod publish;
pub mod rounds;
pub mod serve;
pub mod signals;
pub mod slack;
pub mod spec;
pub mod store;
pub mod task_id;
#[cfg(test)]
pub(crate) mod testing;
pub mod web;
pub mod wiring;
