//! Configuration: where each setting comes from and where the database is.
//!
//! Settings are defined once, as the command line's arguments (flag, environment variable, default, value
//! parser, help); [`keys`] gives each a place in `zava-mcp.toml`, [`file`] reads and checks that file, and
//! [`layers`] stacks defaults < file < environment < command line and remembers where each value came from
//! (`zava-mcp config check`). [`report`] prints the effective configuration and the commented example file.
//! The parsed arguments then become one typed settings struct per concern (`DbSettings`, `HttpSettings`,
//! `AppSettings`, `ThrottleSettings`, `JwtSettings`, `EmbeddingSettings`, `AuditSettings`), each built once.

mod database;
pub(crate) mod environment;
pub(crate) mod file;
pub(crate) mod keys;
pub mod layers;
pub(crate) mod report;

pub use database::{DEFAULT_DATA_DIR, DatabaseSource, DbSettings};
pub use layers::{Layers, LoadError, Origin};
