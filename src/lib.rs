//! zava-mcp: a multi-tenant, read-only MCP server over the Zava DIY retail database.
//!
//! See ARCHITECTURE.md for the map of the code and the invariants it keeps.

pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod db;
pub mod embed;
pub mod guard;
pub mod http;
pub mod identity;
pub mod mcp;
pub mod provision;
pub mod results;
pub mod search;
pub mod telemetry;
pub mod tenant;
pub mod throttle;
