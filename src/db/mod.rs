//! Everything that talks to PostgreSQL: the managed cluster, connections, roles, migrations, the tenant
//! transaction, and status.

pub mod backup;
pub mod bootstrap;
mod bounded;
pub mod call;
pub use bounded::CancelTarget;
pub mod cluster;
pub mod context;
pub mod decode;
pub mod endpoint;
pub mod fair;
pub mod introspect;
pub mod migrate;
pub mod pool;
pub mod query;
pub mod roles;
pub mod secrets;
pub mod session;
pub mod status;
pub(crate) mod transient;
