//! Reading table metadata from `pg_catalog`, in the caller's tenant transaction.
//!
//! `pg_catalog` rather than `information_schema`: the latter shows constraints only to a table's owner or to
//! roles with a non-SELECT privilege (ORIGIN.md §7 C12), and `zava_query` has neither. Three catalog queries
//! serve any number of tables (tables, columns, foreign keys; names and oids go in as `$1` arrays); each table
//! with "Valid Values" adds one query, which runs under row-level security and so sees only this tenant's rows.

use chrono::NaiveDate;
use tokio_postgres::Client;

use super::{READABLE_RELATION, TableName, quote_ident};

/// Everything one table's markdown block shows.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    pub name: TableName,
    pub comment: Option<String>,
    pub columns: Vec<Column>,
    pub foreign_keys: Vec<ForeignKey>,
    /// `(label, values)` lines of the "Valid Values" section, only the non-empty ones.
    pub valid_values: Vec<(&'static str, String)>,
    /// The columns holding personal data that this caller can read, and whether it sees them in clear.
    pub personal_data: Option<PersonalDataColumns>,
}

/// Personal-data columns of a table as the caller gets them (masked by the database unless its context grants
/// them, migration V10).
#[derive(Debug, Clone)]
pub(crate) struct PersonalDataColumns {
    pub columns: Vec<String>,
    pub clear: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    pub data_type: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ForeignKey {
    pub column: String,
    pub target: TableName,
    pub target_column: String,
}

/// The tables, their comments and oids. A table the role cannot read (or that is gone) is simply absent.
const TABLES: &str = "
    SELECT n.nspname::text, c.relname::text, c.oid, pg_catalog.obj_description(c.oid, 'pg_class')
    FROM unnest($1::text[], $2::text[]) AS req(nsp, rel)
    JOIN pg_catalog.pg_namespace n ON n.nspname = req.nsp
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = req.rel";

/// Columns the role may SELECT, in table order. The type is spelled as `information_schema.columns.data_type`
/// spells built-in types (`integer`, `numeric`, `timestamp without time zone`: the origin's contract, with
/// domains shown as their base type), but other types get their real SQL name where the origin printed
/// `USER-DEFINED` or `ARRAY`: `vector(384)` tells an assistant that the column is a pgvector embedding of that
/// dimension, usable with `<=>`, which `USER-DEFINED` does not, and the origin's tool never showed the
/// embeddings table at all, so no existing output changes.
const COLUMNS: &str = "
    SELECT a.attrelid, a.attname::text,
           CASE WHEN bt.typnamespace = 'pg_catalog'::regnamespace AND NOT (bt.typelem <> 0 AND bt.typlen = -1)
                THEN pg_catalog.format_type(bt.oid, NULL)
                ELSE pg_catalog.format_type(a.atttypid, a.atttypmod) END,
           pg_catalog.col_description(a.attrelid, a.attnum)
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      AND pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT')
    ORDER BY a.attrelid, a.attnum";

/// Foreign-key column pairs from `pg_constraint`, in the referencing column's order. Only keys whose column
/// the role may read and whose target it may read too (an unreadable parent is no use as a join hint).
///
/// A table behind a view of the same name (`zava_private.customers` behind the masking view `retail.customers`,
/// migration V10) is described through the view: the view shows the table's keys, and a key that points at the
/// hidden table points at the view, which is what the role can join with.
fn foreign_keys_sql() -> String {
    format!(
        "SELECT s.shown, a.attname::text, n.nspname::text, c.relname::text, fa.attname::text
         FROM (SELECT v.oid AS shown, coalesce(h.oid, v.oid) AS keyed
               FROM pg_catalog.pg_class v
               LEFT JOIN pg_catalog.pg_class h ON v.relkind = 'v' AND h.relkind = 'r' AND h.relname = v.relname
                    AND h.relnamespace = 'zava_private'::pg_catalog.regnamespace
               WHERE v.oid = ANY ($1::oid[])) s
         JOIN pg_catalog.pg_constraint con ON con.conrelid = s.keyed AND con.contype = 'f'
         CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, fattnum, pos)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
         JOIN pg_catalog.pg_attribute sa ON sa.attrelid = s.shown AND sa.attname = a.attname
         JOIN pg_catalog.pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.fattnum
         JOIN pg_catalog.pg_class tc ON tc.oid = con.confrelid
         JOIN pg_catalog.pg_class c ON c.oid = coalesce(
              (SELECT f.oid FROM pg_catalog.pg_class f
               WHERE tc.relnamespace = 'zava_private'::pg_catalog.regnamespace AND f.relkind = 'v'
                 AND f.relname = tc.relname AND f.relnamespace = 'retail'::pg_catalog.regnamespace),
              tc.oid)
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE pg_catalog.has_column_privilege(sa.attrelid, sa.attnum, 'SELECT')
           AND {READABLE_RELATION}
         ORDER BY s.shown, k.attnum, con.conname, k.pos"
    )
}

/// The columns of a table that hold personal data (masked in the database unless the context grants them).
fn personal_data_columns(table: &TableName) -> &'static [&'static str] {
    match (table.schema(), table.table()) {
        ("retail", "customers") => &["email", "phone"],
        _ => &[],
    }
}

/// Order years and date range: the origin's `SELECT DISTINCT EXTRACT(YEAR FROM order_date)` plus min and max,
/// in one pass over the rows this tenant may see. (A per-year index probe was tried: at this table's size the
/// planner turns it back into a scan, so it bought nothing but complexity.) Infinite dates have no year.
const ORDER_DATES: &str = "
    SELECT min(order_date), max(order_date),
           coalesce(array_agg(DISTINCT EXTRACT(YEAR FROM order_date)::int), '{}')
    FROM retail.orders
    WHERE pg_catalog.isfinite(order_date)";

/// What the "Valid Values" section lists for a table (the origin's enumerations, ORIGIN.md §2.3 T2).
enum ValidValues {
    /// Distinct non-empty values of a column, sorted, under one label.
    Distinct { column: &'static str, label: &'static str },
    /// Years with orders, and the first and last order date.
    OrderDates,
}

fn valid_values_for(table: &TableName) -> Option<ValidValues> {
    if table.schema() != "retail" {
        return None;
    }
    Some(match table.table() {
        "stores" => ValidValues::Distinct { column: "store_name", label: "Stores Locations" },
        "categories" => ValidValues::Distinct { column: "category_name", label: "Valid Categories" },
        "product_types" => ValidValues::Distinct { column: "type_name", label: "Valid Product Types" },
        "orders" => ValidValues::OrderDates,
        _ => return None,
    })
}

/// One entry per requested table, in order: its metadata, or `None` when the role cannot read it.
pub(crate) async fn describe_tables(
    tx: &Client,
    tables: &[TableName],
) -> Result<Vec<Option<TableInfo>>, tokio_postgres::Error> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let mut unique: Vec<&TableName> = tables.iter().collect();
    unique.sort();
    unique.dedup();
    let schemas: Vec<&str> = unique.iter().map(|t| t.schema()).collect();
    let names: Vec<&str> = unique.iter().map(|t| t.table()).collect();
    let sql = format!("{TABLES} WHERE {READABLE_RELATION}");
    let found = tx.query(&sql, &[&schemas, &names]).await?;
    let mut infos: Vec<(u32, TableInfo)> = found
        .iter()
        .map(|r| {
            let name = TableName::from_catalog(r.get(0), r.get(1));
            let info = TableInfo {
                name,
                comment: r.get(3),
                columns: Vec::new(),
                foreign_keys: Vec::new(),
                valid_values: Vec::new(),
                personal_data: None,
            };
            (r.get::<_, u32>(2), info)
        })
        .collect();
    let oids: Vec<u32> = infos.iter().map(|(oid, _)| *oid).collect();

    for r in tx.query(COLUMNS, &[&oids]).await? {
        if let Some(info) = by_oid(&mut infos, r.get(0)) {
            info.columns.push(Column { name: r.get(1), data_type: r.get(2), comment: r.get(3) });
        }
    }
    for r in tx.query(&foreign_keys_sql(), &[&oids]).await? {
        if let Some(info) = by_oid(&mut infos, r.get(0)) {
            let target = TableName::from_catalog(r.get(2), r.get(3));
            info.foreign_keys.push(ForeignKey { column: r.get(1), target, target_column: r.get(4) });
        }
    }
    for (_, info) in &mut infos {
        info.valid_values = valid_values(tx, info).await?;
    }
    let mut clear = None;
    for (_, info) in &mut infos {
        let columns: Vec<String> = personal_data_columns(&info.name)
            .iter()
            .filter(|p| info.columns.iter().any(|c| c.name == **p))
            .map(|p| (*p).to_owned())
            .collect();
        if columns.is_empty() {
            continue;
        }
        // Asked of the database, which is what masks: the answer is the truth for this transaction's context.
        if clear.is_none() {
            clear = Some(tx.query_one("SELECT zava_private.tenant_reads_pii()", &[]).await?.get::<_, bool>(0));
        }
        info.personal_data = Some(PersonalDataColumns { columns, clear: clear.unwrap_or(false) });
    }

    Ok(tables.iter().map(|t| infos.iter().find(|(_, i)| &i.name == t).map(|(_, i)| i.clone())).collect())
}

fn by_oid(infos: &mut [(u32, TableInfo)], oid: u32) -> Option<&mut TableInfo> {
    infos.iter_mut().find(|(o, _)| *o == oid).map(|(_, i)| i)
}

/// The "Valid Values" lines for one table, computed under the tenant; nothing when the role cannot read the
/// column the values come from.
async fn valid_values(tx: &Client, info: &TableInfo) -> Result<Vec<(&'static str, String)>, tokio_postgres::Error> {
    let readable = |column: &str| info.columns.iter().any(|c| c.name == column);
    let mut lines = Vec::new();
    match valid_values_for(&info.name) {
        Some(ValidValues::Distinct { column, label }) if readable(column) => {
            // The table name was validated against the catalog and both identifiers are quoted.
            let col = quote_ident(column);
            let sql = format!(
                "SELECT DISTINCT {col}::text FROM {table} WHERE {col} IS NOT NULL AND {col}::text <> '' ORDER BY 1",
                table = info.name.quoted()
            );
            let values: Vec<String> = tx.query(&sql, &[]).await?.iter().map(|r| r.get(0)).collect();
            if !values.is_empty() {
                lines.push((label, values.join(", ")));
            }
        }
        Some(ValidValues::OrderDates) if readable("order_date") => {
            let row = tx.query_one(ORDER_DATES, &[]).await?;
            let mut years: Vec<i32> = row.get(2);
            years.sort_unstable();
            if !years.is_empty() {
                let years: Vec<String> = years.iter().map(ToString::to_string).collect();
                lines.push(("Available Years", years.join(", ")));
            }
            if let (Some(lo), Some(hi)) = (row.get::<_, Option<NaiveDate>>(0), row.get::<_, Option<NaiveDate>>(1)) {
                lines.push(("Date Range", format!("{} to {}", lo.format("%Y-%m-%d"), hi.format("%Y-%m-%d"))));
            }
        }
        _ => {}
    }
    Ok(lines)
}
