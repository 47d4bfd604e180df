//! The parser guard: model-written SQL reaches the database only as a [`ReadOnlySql`], which exists only for
//! text that PostgreSQL's own grammar (libpg_query, through `pg_query`) reads as exactly one plain read.
//!
//! The database is the real boundary (a least-privilege role, forced row-level security with a signed tenant
//! context, revoked functions; see ARCHITECTURE.md). This module is defence in depth in front of it, and it
//! exists for two reasons: nothing that could change the tenant context, write, lock, stall or reach outside
//! the retail data gets as far as a connection, and a refusal comes back *before any I/O* with a sentence
//! that tells the model what to change.
//!
//! What is refused (each with its own [`GuardError`]):
//! - empty text, more than [`MAX_SQL_BYTES`], NUL characters, syntax errors (PostgreSQL's message and position);
//! - anything but exactly one statement (a trailing `;` is fine);
//! - any statement but `SELECT` (also `WITH … SELECT`, `VALUES`, `TABLE x`) and `EXPLAIN` of such a SELECT
//!   without `ANALYZE`;
//! - anywhere in the tree: INSERT/UPDATE/DELETE/MERGE (writable CTEs), any other statement, row locks
//!   (`FOR UPDATE`…), `SELECT … INTO`, and any node kind a plain read never contains;
//! - functions off the allow-list (`allowed_functions.txt`), on the deny-list or, with catalog knowledge,
//!   VOLATILE or unknown, wherever and however they are called: `f(x)` in expressions, the FROM clause
//!   (`FROM f()`, `ROWS FROM`, `LATERAL`), CTEs, subqueries, EXPLAIN targets, attribute notation (`x.f`,
//!   `(x).f`, `(a[1]).f`), and operators whose implementing function is refused;
//! - relations that hold credentials, other sessions' activity or server files, and the internal schemas
//!   `zava_private` and `zava_crypto`; TABLESAMPLE methods other than SYSTEM and BERNOULLI.
//!
//! Completeness comes from how the tree is walked (see `walk`): every node of the parse tree is visited, not
//! a list of places where calls are expected, which is the mistake behind crystaldba/postgres-mcp#178.
//!
//! Robustness: the text is capped before parsing, libpg_query and prost bound the tree's depth (too deep is
//! [`GuardError::TooComplex`]), panics inside `pg_query` are caught, and the work runs on one of a few long-lived
//! threads with 8 MiB stacks (`stack`), since decoding a tree near prost's depth limit needs more than a 2 MiB
//! tokio worker has.
//!
//! The server asks through [`Verdicts`], which keeps each tenant's verdicts on the texts it sent, so a repeated
//! query is not parsed again.

mod dependence;
mod functions;
mod relations;
mod stack;
mod syntax;
mod verdicts;
mod walk;

pub use stack::guard_sized;
use stack::on_guard_thread;
pub use verdicts::Verdicts;

#[cfg(test)]
mod dependence_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod legit_tests;
#[cfg(test)]
mod notation_tests;
#[cfg(test)]
mod tests;

pub use dependence::Dependence;
pub use functions::{FunctionPolicy, ImplicitCall};

/// The longest SQL text the guard accepts, in bytes. It bounds parse time and memory per call; analytic
/// queries a model writes are a few kilobytes at most.
pub const MAX_SQL_BYTES: usize = 100_000;

/// SQL that passed the guard: exactly one plain read statement. The only way model-written SQL reaches the
/// database layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlySql {
    sql: String,
    explain: bool,
    dependence: Dependence,
}

impl ReadOnlySql {
    /// Checks `sql` and keeps it unchanged if it is exactly one plain read. Never panics and does no I/O; the
    /// parse and the walk run on a short-lived thread with a stack of their own (see `GUARD_STACK_BYTES`).
    pub fn parse(sql: &str, policy: &FunctionPolicy) -> Result<ReadOnlySql, GuardError> {
        if sql.len() > MAX_SQL_BYTES {
            return Err(GuardError::TooLong { len: sql.len(), max: MAX_SQL_BYTES });
        }
        if sql.trim().is_empty() {
            return Err(GuardError::Empty);
        }
        if let Some(at) = sql.find('\0') {
            return Err(GuardError::Syntax {
                message: "the text contains a NUL character, which SQL does not allow".into(),
                position: char_position(sql, at as i64),
            });
        }
        let (text, policy) = (sql.to_owned(), policy.clone());
        on_guard_thread(move || {
            check(&text, &policy).map(|(explain, dependence)| ReadOnlySql { sql: text, explain, dependence })
        })
    }

    /// The SQL text exactly as the model wrote it.
    pub fn as_str(&self) -> &str {
        &self.sql
    }

    /// pg_query's fingerprint (hex) of the statement, table names included: equal for queries that differ only
    /// in their literals, for audit records. Computed on the guard's thread, like the parse.
    pub fn fingerprint(&self) -> Option<String> {
        let full = pg_query::FingerprintOptions::FULL_RELNAME;
        let sql = self.sql.clone();
        on_guard_thread(move || Ok(pg_query::fingerprint(&sql, 0, full).ok().map(|f| f.hex))).ok().flatten()
    }

    /// A low-cardinality name for what the statement does, for traces (`db.query.summary`): its operation and
    /// the tables it reads, sorted, e.g. `SELECT retail.orders retail.stores`; never a literal.
    pub fn summary(&self) -> String {
        let operation = if self.explain { "EXPLAIN" } else { "SELECT" };
        let sql = self.sql.clone();
        let tables = on_guard_thread(move || {
            let mut tables: Vec<String> = pg_query::parse(&sql, pg_query::ParserOptions::DEFAULT)
                .map(|p| p.tables())
                .unwrap_or_default()
                .into_iter()
                .collect();
            tables.sort();
            tables.dedup();
            Ok(tables)
        })
        .unwrap_or_default();
        match tables.as_slice() {
            [] => operation.to_owned(),
            t if t.len() > 6 => format!("{operation} {} +{}", t[..6].join(" "), t.len() - 6),
            t => format!("{operation} {}", t.join(" ")),
        }
    }

    /// Whether the statement is an `EXPLAIN` (of a SELECT, without ANALYZE): its result is a plan, not data.
    pub fn is_explain(&self) -> bool {
        self.explain
    }

    /// What the statement's result depends on besides the rows its caller may see (`dependence`): only a
    /// [`Dependence::DataOnly`] result may be served again from a cache.
    pub fn dependence(&self) -> Dependence {
        self.dependence
    }
}

/// Why SQL was refused. `Display` is one or two sentences a model can act on; callers show it as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("The query is empty (no statement, only whitespace or comments). Send one SELECT statement.")]
    Empty,
    #[error("The query is {len} bytes long; the limit is {max}. Shorten it.")]
    TooLong { len: usize, max: usize },
    #[error("Invalid SQL: {message}{}. Fix it and try again.", at(*.position))]
    Syntax { message: String, position: Option<usize> },
    #[error(
        "The query is nested too deeply to check (for example a very long chain of `||` or `+`, or many nested \
         subqueries). Simplify it, e.g. with a CTE or concat()."
    )]
    TooComplex,
    #[error("The query could not be checked: {reason}.")]
    Unparseable { reason: String },
    #[error("Only one statement per call: remove everything after the first statement (`{rest}`).")]
    MultipleStatements { count: usize, rest: String, position: Option<usize> },
    #[error("Only read-only queries are allowed: `{kind}` is not a query. {hint}")]
    NotARead { kind: String, hint: &'static str, position: Option<usize> },
    #[error("Only read-only queries are allowed: `{kind}` modifies data. Rewrite it as a SELECT.")]
    DataModifying { kind: String, position: Option<usize> },
    #[error("Row locks (`{clause}`) are not allowed in read-only queries. Remove the locking clause.")]
    Locking { clause: &'static str, position: Option<usize> },
    #[error("`SELECT … INTO` creates a table. Remove the INTO clause to return the rows instead.")]
    SelectInto { position: Option<usize> },
    #[error("`EXPLAIN ANALYZE` runs the query. Use plain `EXPLAIN` (without ANALYZE), or run the SELECT itself.")]
    ExplainAnalyze,
    #[error("Function `{name}` is not allowed ({reason}). Remove it.")]
    ForbiddenFunction { name: String, reason: String, position: Option<usize> },
    #[error("Relation `{name}` is not allowed ({reason}). Query the `retail` tables instead.")]
    ForbiddenRelation { name: String, reason: &'static str, position: Option<usize> },
    #[error("Schema `{schema}` is internal to the server. Use the `retail` schema instead.")]
    ForbiddenSchema { schema: String, position: Option<usize> },
    #[error("TABLESAMPLE method `{method}` is not allowed. Use SYSTEM or BERNOULLI.")]
    TableSample { method: String, position: Option<usize> },
    #[error("`{construct}` is not supported in a read-only query. Rewrite it as a plain SELECT.")]
    Unsupported { construct: String, position: Option<usize> },
}

impl GuardError {
    /// A short, stable name of the refusal, for audit records and logs (never the SQL or its literals).
    pub fn code(&self) -> &'static str {
        match self {
            GuardError::Empty => "empty",
            GuardError::TooLong { .. } => "too_long",
            GuardError::Syntax { .. } => "syntax",
            GuardError::TooComplex => "too_complex",
            GuardError::Unparseable { .. } => "unparseable",
            GuardError::MultipleStatements { .. } => "multiple_statements",
            GuardError::NotARead { .. } => "not_a_read",
            GuardError::DataModifying { .. } => "data_modifying",
            GuardError::Locking { .. } => "locking",
            GuardError::SelectInto { .. } => "select_into",
            GuardError::ExplainAnalyze => "explain_analyze",
            GuardError::ForbiddenFunction { .. } => "forbidden_function",
            GuardError::ForbiddenRelation { .. } => "forbidden_relation",
            GuardError::ForbiddenSchema { .. } => "forbidden_schema",
            GuardError::TableSample { .. } => "tablesample",
            GuardError::Unsupported { .. } => "unsupported",
        }
    }

    /// Where in the SQL text the problem is: a 1-based character position, when known.
    pub fn position(&self) -> Option<usize> {
        match self {
            GuardError::Syntax { position, .. }
            | GuardError::MultipleStatements { position, .. }
            | GuardError::NotARead { position, .. }
            | GuardError::DataModifying { position, .. }
            | GuardError::Locking { position, .. }
            | GuardError::SelectInto { position }
            | GuardError::ForbiddenFunction { position, .. }
            | GuardError::ForbiddenRelation { position, .. }
            | GuardError::ForbiddenSchema { position, .. }
            | GuardError::TableSample { position, .. }
            | GuardError::Unsupported { position, .. } => *position,
            GuardError::Empty
            | GuardError::TooLong { .. }
            | GuardError::TooComplex
            | GuardError::Unparseable { .. }
            | GuardError::ExplainAnalyze => None,
        }
    }
}

/// Parses and checks; returns whether the one statement is an EXPLAIN, and what its result depends on.
fn check(sql: &str, policy: &FunctionPolicy) -> Result<(bool, Dependence), GuardError> {
    let parsed = syntax::parse(sql)?;
    let stmts = &parsed.protobuf.stmts;
    match stmts.as_slice() {
        [] => Err(GuardError::Empty),
        [only] => walk::check_statement(sql, only, policy),
        [first, ..] => {
            let end = i64::from(first.stmt_location) + i64::from(first.stmt_len);
            let rest = usize::try_from(end).ok().and_then(|e| sql.get(e..)).unwrap_or_default();
            Err(GuardError::MultipleStatements {
                count: stmts.len(),
                rest: snippet(rest, 60),
                position: char_position(sql, end),
            })
        }
    }
}

fn at(position: Option<usize>) -> String {
    position.map(|p| format!(" (at character {p})")).unwrap_or_default()
}

/// The 1-based character position of a byte offset in `sql`, as PostgreSQL reports positions; `None` for the
/// parser's "unknown" (-1) or an offset outside the text.
pub(crate) fn char_position(sql: &str, byte_offset: i64) -> Option<usize> {
    let offset = usize::try_from(byte_offset).ok().filter(|&o| o <= sql.len())?;
    Some(sql.char_indices().take_while(|&(i, _)| i < offset).count() + 1)
}

/// At most `max` characters of `text` on one line (whitespace runs become one space), with an ellipsis when
/// cut: model text echoed back in a message.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}
