//! What only a superuser can set up: the roles, the database, and the hardening of the query role.
//!
//! Runs against the managed cluster as its superuser, or against an external server with an administrator
//! connection. Every step is idempotent; steps that need superuser power are skipped with a warning on
//! servers where the administrator is not one (the tenant context stays unforgeable either way: see V2).

use anyhow::{Context, Result};
use tokio_postgres::Client;

use super::endpoint::Endpoint;
use super::roles::{HEAD_OFFICE, OWNER, QUERY};
use super::secrets::Secrets;

/// The superuser part of the hardening: revoked function families and views, no plpgsql, no tenant-key
/// statistics. One file, with the reason for each family beside it.
const HARDENING: &str = include_str!("hardening.sql");

/// Creates or updates the three roles, creates the database, and hardens it. `admin` must be able to create
/// roles and databases; on the managed cluster it is the superuser.
pub async fn bootstrap(admin: &Endpoint, database: &str, secrets: &Secrets) -> Result<()> {
    anyhow::ensure!(
        !database.is_empty() && database.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "the database name `{database}` must be lower-case letters, digits and underscores"
    );
    let client = admin.connect().await?;
    let is_superuser = is_superuser(&client).await?;
    ensure_role(&client, OWNER, Some(&secrets.owner_password), "NOSUPERUSER NOCREATEROLE NOBYPASSRLS").await?;
    ensure_role(
        &client,
        QUERY,
        Some(&secrets.query_password),
        "NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 150",
    )
    .await?;
    ensure_head_office_role(&client).await?;
    for setting in [
        "default_transaction_read_only = on",
        "statement_timeout = '30s'",
        "idle_in_transaction_session_timeout = '60s'",
        "lock_timeout = '5s'",
        "search_path = retail, public",
        "temp_file_limit = '1GB'",
    ] {
        client.batch_execute(&format!("ALTER ROLE {QUERY} SET {setting}")).await?;
    }
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database]).await?.is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {database} OWNER {OWNER} ENCODING 'UTF8' TEMPLATE template0"))
            .await?;
    }
    drop(client);
    harden(&admin.with_dbname(database), database, is_superuser).await
}

async fn is_superuser(client: &Client) -> Result<bool> {
    Ok(client.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).await?.get(0))
}

/// Creates or alters role `name` with `attributes`: able to log in with `password`, or without login when it has
/// none.
async fn ensure_role(client: &Client, name: &str, password: Option<&str>, attributes: &str) -> Result<()> {
    let login = match password {
        // Passwords are generated hex strings; check that before putting one in a statement.
        Some(p) if p.chars().all(|c| c.is_ascii_alphanumeric()) => format!("LOGIN PASSWORD '{p}'"),
        Some(_) => anyhow::bail!("role passwords must be alphanumeric"),
        None => "NOLOGIN".to_owned(),
    };
    let exists = client.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name]).await?.is_some();
    let verb = if exists { "ALTER" } else { "CREATE" };
    client
        .batch_execute(&format!("{verb} ROLE {name} {login} {attributes}"))
        .await
        .with_context(|| format!("cannot {} role {name}", verb.to_lowercase()))?;
    Ok(())
}

/// The role head office's calls switch to: no login, no inheritance, no power of its own; only the query role may
/// switch to it, and being NOINHERIT the query role draws nothing from it until it does (V12 gives it its
/// privileges and policies).
async fn ensure_head_office_role(client: &Client) -> Result<()> {
    ensure_role(client, HEAD_OFFICE, None, "NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS")
        .await?;
    let member: bool = client.query_one("SELECT pg_has_role($1, $2, 'MEMBER')", &[&QUERY, &HEAD_OFFICE]).await?.get(0);
    if !member {
        client
            .batch_execute(&format!("GRANT {HEAD_OFFICE} TO {QUERY}"))
            .await
            .with_context(|| format!("cannot let {QUERY} switch to {HEAD_OFFICE}"))?;
    }
    Ok(())
}

/// Per-database hardening. Function ACLs live in each database's catalog, so this runs inside `zava`.
async fn harden(db: &Endpoint, database: &str, is_superuser: bool) -> Result<()> {
    let client = db.connect().await?;
    client
        .batch_execute(&format!(
            "REVOKE ALL ON DATABASE {database} FROM PUBLIC;
             GRANT CONNECT ON DATABASE {database} TO {QUERY};
             GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {OWNER};
             REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
        ))
        .await
        .context("cannot restrict database privileges")?;
    // pgvector is not a trusted extension: only a superuser can create it, so it is made here, not in a migration.
    if let Err(e) = client.batch_execute("CREATE EXTENSION IF NOT EXISTS vector").await {
        anyhow::bail!(
            "cannot create the pgvector extension ({e}). Install pgvector on the server (scripts/setup.sh does it \
             for a local PostgreSQL 15) and run `zava-mcp db init` as a superuser, or ask one to run \
             `CREATE EXTENSION vector` in the database"
        );
    }
    if !is_superuser {
        tracing::warn!(
            "the administrator connection is not a superuser: catalog functions such as set_config stay executable \
             by {QUERY}. Tenant isolation still holds (contexts are signed), but ask a superuser to run \
             `zava-mcp db init` once for full hardening"
        );
        return Ok(());
    }
    client.batch_execute(HARDENING).await.context("cannot apply the hardening (src/db/hardening.sql)")?;
    Ok(())
}
