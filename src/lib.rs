//! MCP Director: one MCP endpoint in front of many MCP servers.
//!
//! See ARCHITECTURE.md for the code map. `generated/` (protocol types, admin API trait and
//! router, client crate) comes from `spec/` through `cargo xtask codegen`; everything here is
//! written by hand.

pub mod admin;
pub mod analytics;
pub mod cli;
pub mod client_addr;
pub mod cluster;
pub mod config;
#[cfg(feature = "console")]
pub mod console;
pub mod gateway;
pub mod jsonrpc;
pub mod live_config;
pub mod metrics;
pub mod naming;
pub mod ndjson;
pub mod net;
pub mod oauth;
pub mod profile;
pub mod rate_limit;
pub mod secrets;
pub mod server;
pub mod session;
pub mod sse;
pub mod state;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod transport;
pub mod upstream;
pub mod version;
