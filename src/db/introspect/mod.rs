//! Table introspection for the `get_multiple_table_schemas` tool (ORIGIN.md §2.3 T2).
//!
//! The origin read `information_schema` as a superuser and cached the result per table name for everyone.
//! Both break once the server runs as the least-privilege `zava_query` role under row-level security:
//! `information_schema` hides constraints from a role that owns nothing (ORIGIN.md §7 C12), and the "Valid
//! Values" of RLS-protected tables differ per tenant (§2.5, W6). So everything here reads `pg_catalog`
//! *inside the caller's tenant transaction* (only what this role and tenant may see), and the cache is keyed
//! by tenant scope as well as table.
//!
//! - [`readable_tables`] lists what the role may SELECT; [`resolve`] checks a request against it.
//! - [`describe`] renders the origin's markdown block per table (`catalog` fetches, `render` formats).
//! - [`SchemaCache`] memoises blocks per (tenant scope, table) for a bounded time.

mod cache;
mod catalog;
mod render;
mod request;

use std::fmt;
use std::str::FromStr;

use tokio_postgres::Client;

pub use cache::SchemaCache;
pub use request::{MAX_TABLES, SchemaRequestError, resolve};

/// A schema-qualified table name the query role may read, e.g. `retail.orders`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    schema: String,
    table: String,
}

/// Why a string is not a `schema.table` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a schema-qualified table name such as retail.orders")]
pub struct TableNameError(String);

impl TableName {
    /// A name as the catalog spells it. Catalog names need not be plain identifiers, so they are only ever
    /// put into SQL through [`TableName::quoted`] or as bind parameters.
    pub(crate) fn from_catalog(schema: String, table: String) -> Self {
        Self { schema, table }
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// `"schema"."table"`, each part quoted the way PostgreSQL's `quote_ident` would (always quoted here).
    pub(crate) fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

impl FromStr for TableName {
    type Err = TableNameError;

    /// Accepts exactly `schema.table`, each part a plain SQL identifier (letters, digits, `_`, `$`; not
    /// starting with a digit or `$`; at most 63 bytes). Case is kept; matching against the catalog is
    /// [`resolve`]'s job.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let plain = |part: &str| {
            !part.is_empty()
                && part.len() <= 63
                && part
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && (b.is_ascii_digit() || b == b'$')))
        };
        match s.split_once('.') {
            Some((schema, table)) if plain(schema) && plain(table) => {
                Ok(Self { schema: schema.to_owned(), table: table.to_owned() })
            }
            _ => Err(TableNameError(s.chars().take(128).collect())),
        }
    }
}

/// PostgreSQL's `quote_ident`, always quoting: `"` around the name, inner `"` doubled. Always quoting is
/// equivalent for every name and cannot go wrong on keywords.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Schemas and tables that are never offered, even if a grant made them readable: PostgreSQL's own schemas,
/// zava-mcp's internals, and the migration history. The aliases `c` (pg_class) and `n` (pg_namespace) must be
/// in scope.
pub(crate) const READABLE_RELATION: &str = "c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'zava_private', 'zava_crypto')
    AND n.nspname NOT LIKE 'pg\\_%'
    AND NOT (n.nspname = 'public' AND c.relname = 'refinery_schema_history')
    AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
    AND pg_catalog.has_table_privilege(c.oid, 'SELECT')";

/// Tables (and views) the current role may SELECT, excluding system schemas, `zava_private`, `zava_crypto` and
/// `public.refinery_schema_history`. Sorted by schema, then table.
pub async fn readable_tables(tx: &Client) -> Result<Vec<TableName>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE {READABLE_RELATION}"
    );
    let mut tables: Vec<TableName> =
        tx.query(&sql, &[]).await?.iter().map(|r| TableName::from_catalog(r.get(0), r.get(1))).collect();
    tables.sort();
    Ok(tables)
}

/// The origin's markdown block for each requested table, in request order, concatenated. Each block starts
/// with `"\n\n"`; a table that is not (or no longer) readable gives the origin's
/// `**ERROR:** Table '<name>' not found` line instead. Valid values are computed under the transaction's
/// tenant. `tables` should come from [`resolve`].
pub async fn describe(tx: &Client, tables: &[TableName]) -> Result<String, tokio_postgres::Error> {
    let blocks = describe_blocks(tx, tables).await?;
    Ok(blocks.into_iter().zip(tables).map(|(b, t)| b.unwrap_or_else(|| render::not_found(t))).collect())
}

/// One rendered block per requested table, in order; `None` for a table the role cannot read.
pub(crate) async fn describe_blocks(
    tx: &Client,
    tables: &[TableName],
) -> Result<Vec<Option<String>>, tokio_postgres::Error> {
    Ok(catalog::describe_tables(tx, tables).await?.iter().map(|i| i.as_ref().map(render::block)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_parse_only_in_schema_table_shape() {
        let t: TableName = "retail.order_items".parse().unwrap();
        assert_eq!((t.schema(), t.table()), ("retail", "order_items"));
        assert_eq!(t.to_string(), "retail.order_items");
        for bad in ["orders", "retail.", ".orders", "a.b.c", "retail.or ders", "retail.1x", "re\"tail.x", ""] {
            assert!(bad.parse::<TableName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quoting_doubles_inner_quotes() {
        assert_eq!(quote_ident("orders"), "\"orders\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        let t = TableName::from_catalog("we\"ird".into(), "t".into());
        assert_eq!(t.quoted(), "\"we\"\"ird\".\"t\"");
    }
}
