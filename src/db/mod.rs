//! Everything that talks to PostgreSQL: the managed cluster, connections, roles, migrations, the tenant
//! transaction, and status.

pub mod bootstrap;
pub mod cluster;
pub mod context;
pub mod endpoint;
pub mod migrate;
pub mod roles;
pub mod secrets;
pub mod status;
