//! Which functions model SQL may call: a built-in deny-list that needs no database, and, once the server has
//! read `pg_proc`, a volatility rule and an existence check on top of it.
//!
//! The deny-list is matched on the bare function name, lower-cased, whatever the schema or quoting
//! (`pg_catalog."SET_CONFIG"` is refused like `set_config`); refusing a spelling PostgreSQL would not resolve
//! costs nothing. The database revokes most of these from the query role as well (`db::bootstrap`); the guard
//! refuses them earlier, with a reason, and also on servers where the revokes could not be applied.

use std::collections::HashMap;

/// Schemas whose functions model SQL may call. `zava_private` holds the tenant-verification functions and
/// `zava_crypto` pgcrypto: neither is for queries.
const CALLABLE_SCHEMAS: &[&str] = &["pg_catalog", "public", "retail"];

/// VOLATILE functions that are still harmless in a read-only query: they only produce values.
const VOLATILE_ALLOWED: &[&str] = &[
    "random",
    "random_normal",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "statement_timestamp",
    "transaction_timestamp",
    "now",
];

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
    // Assigning a transaction id is a write (and fails in a read-only transaction anyway).
    DenyGroup {
        exact: &["txid_current", "txid_current_if_assigned", "pg_current_xact_id", "pg_current_xact_id_if_assigned"],
        prefixes: &[],
        reason: "it assigns a transaction id, which is a write",
    },
];

/// Which functions model SQL may call.
#[derive(Debug, Clone, Default)]
pub struct FunctionPolicy {
    /// Function name (as in `pg_proc`) → (schema, volatility) of each overload in a callable schema.
    catalog: Option<HashMap<String, Vec<(String, char)>>>,
}

impl FunctionPolicy {
    /// The built-in deny-list only (no catalog knowledge).
    pub fn builtin() -> Self {
        Self { catalog: None }
    }

    /// Deny-list plus catalog knowledge: `functions` are (schema, name, volatility char 'i'|'s'|'v') rows as
    /// read from pg_proc by the caller. Any VOLATILE function is refused unless on a small allow-list (random,
    /// clock_timestamp, timeofday, gen_random_uuid, statement_timestamp...), and a function name that exists in
    /// no allowed schema (pg_catalog, public, retail) is refused. Rows of other schemas are ignored, so an
    /// empty catalog refuses every call.
    pub fn from_catalog(functions: impl IntoIterator<Item = (String, String, char)>) -> Self {
        let mut catalog: HashMap<String, Vec<(String, char)>> = HashMap::new();
        for (schema, name, volatility) in functions {
            if CALLABLE_SCHEMAS.contains(&schema.as_str()) {
                catalog.entry(name).or_default().push((schema, volatility));
            }
        }
        Self { catalog: Some(catalog) }
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
            return Err("it is VOLATILE, so it may change state; only value generators such as random() and \
                        clock_timestamp() are allowed"
                .into());
        }
        Ok(())
    }
}

/// The deny-list reason for a bare function name, if it is denied.
pub(crate) fn denied(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    DENIED
        .iter()
        .find(|g| g.exact.contains(&name.as_str()) || g.prefixes.iter().any(|p| name.starts_with(p)))
        .map(|g| g.reason)
}
