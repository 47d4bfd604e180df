//! Where the database is: the embedded default (a managed cluster in the data directory) or an external server.
//!
//! Settings come from command-line flags, then environment variables, then defaults. The origin's variables
//! (`POSTGRES_DB_HOST`, `POSTGRES_DB_PORT`, `POSTGRES_DB`, `POSTGRES_USER`, `POSTGRES_PASSWORD`,
//! `POSTGRES_APPLICATION_NAME`) are accepted as well as `DATABASE_URL`. Bad values are refused with a message
//! naming the variable. Each of them may be given as a file instead (`POSTGRES_PASSWORD_FILE`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::environment::value as env;

use crate::db::endpoint::Endpoint;
use crate::db::roles::DATABASE;

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".zava";

#[derive(Debug, Clone)]
pub enum DatabaseSource {
    /// zava-mcp runs its own PostgreSQL cluster in the data directory.
    Managed,
    /// An existing server. `serve` is what the server connects with (the query role); `admin` is only needed
    /// to create roles, the database and the schema.
    External { serve: Box<Endpoint>, admin: Option<Box<Endpoint>> },
}

#[derive(Debug, Clone)]
pub struct DbSettings {
    pub data_dir: PathBuf,
    pub source: DatabaseSource,
    /// Overrides the context key kept in the data directory (for external databases and replicas).
    pub context_key: Option<String>,
}

impl DbSettings {
    /// Resolves the settings from flags (already merged with their env vars by clap) and the origin's variables.
    pub fn resolve(data_dir: PathBuf, database_url: Option<String>, admin_url: Option<String>) -> Result<Self> {
        let serve = match database_url {
            Some(url) => Some(Endpoint::from_url(&url).context("DATABASE_URL (--database-url) is not usable")?),
            None => origin_endpoint()?,
        };
        let admin = admin_url
            .map(|u| Endpoint::from_url(&u).context("ZAVA_ADMIN_DATABASE_URL (--admin-database-url) is not usable"))
            .transpose()?;
        let source = match (serve, admin) {
            (Some(serve), admin) => DatabaseSource::External { serve: Box::new(serve), admin: admin.map(Box::new) },
            (None, Some(admin)) => {
                let serve = Endpoint { password: None, ..admin.with_dbname(DATABASE) };
                DatabaseSource::External {
                    serve: Box::new(Endpoint { user: crate::db::roles::QUERY.into(), ..serve }),
                    admin: Some(Box::new(admin)),
                }
            }
            (None, None) => DatabaseSource::Managed,
        };
        Ok(Self { data_dir, source, context_key: env("ZAVA_CONTEXT_KEY")? })
    }
}

/// The origin's `POSTGRES_*` variables, when `POSTGRES_DB_HOST` is set.
fn origin_endpoint() -> Result<Option<Endpoint>> {
    let Some(host) = env("POSTGRES_DB_HOST")? else {
        return Ok(None);
    };
    let port = match env("POSTGRES_DB_PORT")? {
        Some(p) => match p.trim().parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => bail!("POSTGRES_DB_PORT must be a port number (1-65535), not `{p}`"),
        },
        None => 5432,
    };
    Ok(Some(Endpoint {
        host,
        port,
        dbname: env("POSTGRES_DB")?.unwrap_or_else(|| DATABASE.into()),
        user: env("POSTGRES_USER")?.unwrap_or_else(|| crate::db::roles::QUERY.into()),
        password: env("POSTGRES_PASSWORD")?,
        application_name: env("POSTGRES_APPLICATION_NAME")?.unwrap_or_else(|| "zava-mcp".into()),
        options: None,
    }))
}
