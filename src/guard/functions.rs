//! Which functions model SQL may call: an allow-list of the families an analytic query needs
//! (`allowed_functions.txt`), a deny-list that gives the known-dangerous names a precise reason, and, once the
//! server has read `pg_proc` and `pg_operator`, an existence check, a volatility rule and the operators whose
//! implementing function is not safe.
//!
//! An allow-list, because a deny-list is only as good as the names its authors thought of: PostgreSQL 15 has
//! about 3,000 functions and every extension adds more. Names are matched on the bare function name,
//! lower-cased, whatever the schema or quoting (`pg_catalog."SET_CONFIG"` is refused like `set_config`).
//!
//! PostgreSQL calls a function in more ways than `f(x)`: attribute notation (`x.f` and `(x).f` are `f(x)`
//! when `x` has no column `f`), operators (their implementing function) and casts. Field selections are checked
//! here by [`FunctionPolicy::check_field`], operators by [`FunctionPolicy::check_operator`]; the walk calls them
//! wherever such a name appears. The database revokes the dangerous families from PUBLIC as well
//! (`db/hardening.sql`), so neither layer relies on the other.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

/// Schemas whose functions model SQL may call. `zava_private` holds the tenant-verification functions and
/// `zava_crypto` pgcrypto: neither is for queries.
const CALLABLE_SCHEMAS: &[&str] = &["pg_catalog", "public", "retail"];

/// The allow-list, by family (see the file's header).
const ALLOWED: &str = include_str!("allowed_functions.txt");

/// VOLATILE functions on the allow-list that are still harmless in a read-only query: they only produce values
/// and leave nothing behind (`random()` without `setseed` has no visible state).
const VOLATILE_ALLOWED: &[&str] = &["random", "random_normal", "gen_random_uuid", "uuidv4", "uuidv7"];

/// A group of denied functions, matched by exact name or by prefix, and the reason a model is given.
struct DenyGroup {
    exact: &'static [&'static str],
    prefixes: &'static [&'static str],
    reason: &'static str,
}

/// The built-in deny-list. `current_setting` is not on it: reading a setting (the caller's own signed
/// context included) changes nothing. `pg_backend_pid` is harmless too.
const DENIED: &[DenyGroup] = &[
    // Settings: `set_config('zava.tenant', …, true)` would replace the tenant context and
    // `set_config('role', …)` switch roles; READ ONLY transactions do not stop it.
    DenyGroup { exact: &["set_config"], prefixes: &[], reason: "it changes settings, including the tenant context" },
    // Sleeping holds a connection and a snapshot for as long as the caller likes.
    DenyGroup { exact: &[], prefixes: &["pg_sleep"], reason: "it can stall the database" },
    // Advisory locks outlive the statement (session-level ones even the transaction) and block others.
    DenyGroup {
        exact: &[],
        prefixes: &["pg_advisory", "pg_try_advisory"],
        reason: "it takes locks that can block other sessions",
    },
    // These run SQL given as text (or a whole table's scan) inside the server, out of the guard's sight,
    // or reach another database.
    DenyGroup {
        exact: &["ts_stat", "ts_rewrite"],
        prefixes: &["dblink", "query_to_xml", "cursor_to_xml", "table_to_xml", "schema_to_xml", "database_to_xml"],
        reason: "it runs SQL the guard cannot check",
    },
    // Server files and large objects: reading the data directory or /etc, or writing files.
    DenyGroup {
        exact: &["pg_read_file", "pg_read_binary_file", "pg_read_file_old", "pg_stat_file", "loread", "lowrite"],
        prefixes: &["pg_ls_", "pg_file_", "lo_"],
        reason: "it reads or writes files or large objects on the server",
    },
    // Other sessions: signalling them, reading their queries and statistics across all tenants, notifying.
    DenyGroup {
        exact: &[
            "pg_terminate_backend",
            "pg_cancel_backend",
            "pg_blocking_pids",
            "pg_safe_snapshot_blocking_pids",
            "pg_log_backend_memory_contexts",
            "pg_get_backend_memory_contexts",
            "pg_notify",
            "pg_lock_status",
            "pg_prepared_xact",
        ],
        prefixes: &["pg_stat_get_"],
        reason: "it reaches other sessions or their statistics",
    },
    // Server administration: configuration, logs, WAL, backups, replication, snapshots, statistics resets.
    DenyGroup {
        exact: &[
            "pg_reload_conf",
            "pg_rotate_logfile",
            "pg_rotate_logfile_old",
            "pg_switch_wal",
            "pg_promote",
            "pg_backup_start",
            "pg_backup_stop",
            "pg_start_backup",
            "pg_stop_backup",
            "pg_wal_replay_pause",
            "pg_wal_replay_resume",
            "pg_export_snapshot",
            "pg_import_system_collations",
            "pg_current_logfile",
            "pg_show_all_file_settings",
            "pg_hba_file_rules",
            "pg_ident_file_mappings",
        ],
        prefixes: &["pg_stat_reset", "pg_replication_", "pg_logical_", "pg_create_", "pg_drop_", "pg_copy_"],
        reason: "it administers the server",
    },
    // Sequences: nextval/setval write; currval/lastval read session state that a pooled connection carries
    // over from earlier callers.
    DenyGroup {
        exact: &["nextval", "setval", "currval", "lastval"],
        prefixes: &[],
        reason: "it advances sequences or reads their session state",
    },
    // Reading the clock while the statement runs times the statement's own work, and with it how many rows of
    // other stores a scan visited before row-level security dropped them.
    DenyGroup {
        exact: &["clock_timestamp", "timeofday"],
        prefixes: &[],
        reason: "it reads the clock while the query runs; use now() (the transaction's start) instead",
    },
    // Sizes and statistics count every tenant's rows.
    DenyGroup {
        exact: &[
            "pg_database_size",
            "pg_tablespace_size",
            "pg_column_size",
            "pg_relation_filenode",
            "pg_relation_filepath",
        ],
        prefixes: &[
            "pg_relation_size",
            "pg_total_relation_size",
            "pg_table_size",
            "pg_indexes_size",
            "pg_statio_",
            "pg_stat_",
        ],
        reason: "it reveals sizes or statistics across all stores",
    },
    // The random seed is session state that a pooled connection would carry to the next caller.
    DenyGroup { exact: &["setseed"], prefixes: &[], reason: "it leaves the random seed set for the next caller" },
    // Assigning a transaction id is a write (and fails in a read-only transaction anyway).
    DenyGroup {
        exact: &["txid_current", "txid_current_if_assigned", "pg_current_xact_id", "pg_current_xact_id_if_assigned"],
        prefixes: &[],
        reason: "it assigns a transaction id, which is a write",
    },
];

/// Function name → (schema, volatility) of each of its overloads.
type Overloads = HashMap<String, Vec<(String, char)>>;

/// Which functions model SQL may call. Cheap to clone (the tables are shared): each check takes its own copy
/// to the guard's thread.
#[derive(Debug, Clone, Default)]
pub struct FunctionPolicy {
    /// Function name (as in `pg_proc`) → (schema, volatility) of each overload in a callable schema.
    catalog: Option<Arc<Overloads>>,
    /// Operator names (as in `pg_operator`, callable schemas) one of whose implementations is refused.
    unsafe_operators: Arc<HashSet<String>>,
    /// Type names that a cast (`x::t`, `CAST(x AS t)`, `t 'literal'`) reaches through a refused function: the
    /// type's input function or a cast function into it.
    unsafe_types: Arc<HashSet<String>>,
}

/// How PostgreSQL reaches a function without naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImplicitCall {
    /// An operator, named by `pg_operator.oprname`, runs its `oprcode`.
    Operator,
    /// A cast into a type, named by `pg_type.typname`, runs a cast function or the type's input function.
    Cast,
}

/// The message for a name that is not on the allow-list.
const NOT_ALLOWED: &str = "it is not among the functions allowed in analytic queries (aggregates, window, math, text, \
                           date/time, formatting, JSON, arrays, ranges, text search, pgvector); use one of those";

impl FunctionPolicy {
    /// The allow-list and the deny-list only (no catalog knowledge).
    pub fn builtin() -> Self {
        Self::default()
    }

    /// Allow-list and deny-list plus catalog knowledge. `functions` are (schema, name, volatility char
    /// 'i'|'s'|'v') rows as read from pg_proc by the caller; `implicit` are (how, operator or type name, the
    /// function it runs, that function's volatility) rows from pg_operator, pg_cast and pg_type. A function name
    /// that exists in no allowed schema (pg_catalog, public, retail) is refused, and so is a VOLATILE one unless
    /// it only generates values (random, gen_random_uuid). An operator or a cast target is refused when any
    /// function it may run is VOLATILE or denied. Rows of other schemas are ignored, so an empty catalog refuses
    /// every call.
    pub fn from_catalog(
        functions: impl IntoIterator<Item = (String, String, char)>,
        implicit: impl IntoIterator<Item = (ImplicitCall, String, String, char)>,
    ) -> Self {
        let mut catalog: HashMap<String, Vec<(String, char)>> = HashMap::new();
        for (schema, name, volatility) in functions {
            if CALLABLE_SCHEMAS.contains(&schema.as_str()) {
                catalog.entry(name).or_default().push((schema, volatility));
            }
        }
        let (mut unsafe_operators, mut unsafe_types) = (HashSet::new(), HashSet::new());
        for (how, name, function, volatility) in implicit {
            if volatility == 'v' || denied(&function).is_some() {
                match how {
                    ImplicitCall::Operator => unsafe_operators.insert(name),
                    ImplicitCall::Cast => unsafe_types.insert(name),
                };
            }
        }
        Self {
            catalog: Some(Arc::new(catalog)),
            unsafe_operators: Arc::new(unsafe_operators),
            unsafe_types: Arc::new(unsafe_types),
        }
    }

    /// Whether `[schema.]name` may be called; otherwise the reason, in words a model can act on.
    pub(crate) fn check(&self, schema: Option<&str>, name: &str) -> Result<(), String> {
        if let Some(schema) = schema {
            let lower = schema.to_ascii_lowercase();
            if super::relations::is_internal_schema(&lower) {
                return Err(format!("schema `{schema}` is internal to the server"));
            }
            if !CALLABLE_SCHEMAS.contains(&lower.as_str()) {
                return Err("only functions in pg_catalog, public and retail can be called".into());
            }
        }
        if let Some(reason) = denied(name) {
            return Err(reason.into());
        }
        if !is_allowed(name) {
            return Err(NOT_ALLOWED.into());
        }
        let Some(catalog) = &self.catalog else { return Ok(()) };
        let overloads: Vec<char> = catalog
            .get(name)
            .into_iter()
            .flatten()
            .filter(|(s, _)| schema.is_none_or(|want| want.eq_ignore_ascii_case(s)))
            .map(|&(_, volatility)| volatility)
            .collect();
        if overloads.is_empty() {
            return Err("it does not exist in pg_catalog, public or retail; check the name".into());
        }
        if overloads.contains(&'v') && !VOLATILE_ALLOWED.contains(&name.to_ascii_lowercase().as_str()) {
            return Err("it is VOLATILE, so it may change state; only value generators such as random() are \
                        allowed"
                .into());
        }
        Ok(())
    }

    /// The volatility of each overload of `name` in the callable schemas, when the catalog is known and has it.
    pub(crate) fn overloads(&self, name: &str) -> Option<Vec<char>> {
        let found = self.catalog.as_ref()?.get(name)?;
        Some(found.iter().map(|&(_, volatility)| volatility).collect())
    }

    /// Whether the field name `name` in `x.name` or `(x).name` is safe. PostgreSQL reads it as the call
    /// `name(x)` when `x` has no column `name`, so a name that is a function must pass [`Self::check`], unless
    /// every overload of it is IMMUTABLE (such a function depends on its argument alone, and many catalog
    /// columns share a name with one: `c.oid`, `t.name`). Without catalog knowledge only denied names are
    /// refused. A column that shares a refused function's name is refused too (rename it in the query); no
    /// retail column does.
    pub(crate) fn check_field(&self, name: &str) -> Result<(), String> {
        let overloads = self.catalog.as_ref().and_then(|c| c.get(name));
        if denied(name).is_none() {
            match overloads {
                None => return Ok(()),
                Some(o) if !is_allowed(name) && o.iter().all(|&(_, v)| v == 'i') => return Ok(()),
                Some(_) => {}
            }
        }
        self.check(None, name)
            .map_err(|reason| format!("`x.{name}` calls {name}(x) when x has no column `{name}`, and {reason}"))
    }

    /// Whether a cast to the type `name` (as written, without schema) may be used.
    pub(crate) fn check_cast(&self, name: &str) -> Result<(), String> {
        if self.unsafe_types.contains(&name.to_ascii_lowercase()) {
            return Err(format!("a cast to `{name}` runs a function that is not allowed"));
        }
        Ok(())
    }

    /// Whether the operator `name` (as written, without schema) may be used.
    pub(crate) fn check_operator(&self, name: &str) -> Result<(), String> {
        if self.unsafe_operators.contains(name) {
            return Err(format!("operator `{name}` is implemented by a function that is not allowed"));
        }
        Ok(())
    }
}

/// Whether a bare function name is on the allow-list.
fn is_allowed(name: &str) -> bool {
    static NAMES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| allowed_names().map(|(_, name)| name).collect());
    names.contains(name.to_ascii_lowercase().as_str())
}

/// Every (family, name) of the allow-list.
pub(crate) fn allowed_names() -> impl Iterator<Item = (&'static str, &'static str)> {
    let mut family = "";
    ALLOWED.lines().filter(|line| !line.trim_start().starts_with('#')).flat_map(move |line| {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            family = name;
            return Vec::new();
        }
        line.split_whitespace().map(|name| (family, name)).collect()
    })
}

/// The deny-list reason for a bare function name, if it is denied.
pub(crate) fn denied(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    DENIED
        .iter()
        .find(|g| g.exact.contains(&name.as_str()) || g.prefixes.iter().any(|p| name.starts_with(p)))
        .map(|g| g.reason)
}
