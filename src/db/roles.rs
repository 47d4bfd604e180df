//! The database roles and their fixed names.
//!
//! `zava_owner` owns the schema and runs migrations and loads; `zava_query` is the only role the server needs
//! to serve: no superuser, no BYPASSRLS, not an owner, SELECT-only, read-only by default. `zava_head_office`
//! cannot log in: the query role switches to it for head office's calls only (`SET LOCAL ROLE`), so that head
//! office's reads plan as reads of whole tables (see the V12 migration).

pub const DATABASE: &str = "zava";
pub const OWNER: &str = "zava_owner";
pub const QUERY: &str = "zava_query";
pub const HEAD_OFFICE: &str = "zava_head_office";

/// Which role a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The schema owner: migrations and data loads.
    Owner,
    /// The least-privilege role the server serves with.
    Query,
}
