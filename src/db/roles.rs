//! The database roles and their fixed names.
//!
//! `zava_owner` owns the schema and runs migrations and loads; `zava_query` is the only role the server needs
//! to serve: no superuser, no BYPASSRLS, not an owner, SELECT-only, read-only by default.

pub const DATABASE: &str = "zava";
pub const OWNER: &str = "zava_owner";
pub const QUERY: &str = "zava_query";

/// Which role a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The schema owner: migrations and data loads.
    Owner,
    /// The least-privilege role the server serves with.
    Query,
}
