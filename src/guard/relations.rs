//! Which relations and schemas model SQL may name. The retail tables, `information_schema` and most of
//! `pg_catalog` are fine (models introspect with them); what is refused holds secrets, shows other sessions
//! or statistics across every tenant, or exposes the server's files and configuration.
//!
//! Names are compared lower-cased and whatever the schema, so a quoted or differently qualified spelling is
//! refused too; a CTE that happens to share a refused name is refused as well, which costs nothing.

/// Schemas that are internal to the server: the tenant-verification functions and the context key live in
/// `zava_private`, pgcrypto in `zava_crypto`.
const INTERNAL_SCHEMAS: &[&str] = &["zava_private", "zava_crypto"];

struct DenyGroup {
    exact: &'static [&'static str],
    prefixes: &'static [&'static str],
    reason: &'static str,
}

const DENIED: &[DenyGroup] = &[
    // Password hashes, user-mapping options (which may carry passwords) and the HMAC key of the tenant context.
    DenyGroup {
        exact: &["pg_authid", "pg_shadow", "pg_user_mapping", "pg_user_mappings", "context_key"],
        prefixes: &[],
        reason: "it holds credentials",
    },
    // Other sessions' queries and locks, and per-table statistics that count every tenant's rows; the raw
    // column statistics (`pg_statistic`) hold sample values of every tenant (`pg_stats` hides RLS tables).
    DenyGroup {
        exact: &[
            "pg_locks",
            "pg_statistic",
            "pg_statistic_ext_data",
            "pg_prepared_xacts",
            "pg_backend_memory_contexts",
            "pg_shmem_allocations",
        ],
        prefixes: &["pg_stat_", "pg_statio_"],
        reason: "it shows other sessions or statistics across all tenants",
    },
    // Server files, configuration files, large objects, replication.
    DenyGroup {
        exact: &[
            "pg_file_settings",
            "pg_hba_file_rules",
            "pg_ident_file_mappings",
            "pg_config",
            "pg_largeobject",
            "pg_subscription",
        ],
        prefixes: &["pg_replication_"],
        reason: "it exposes the server's files, configuration or replication",
    },
];

/// Whether `schema` (lower-cased) is internal to the server.
pub(crate) fn is_internal_schema(schema: &str) -> bool {
    INTERNAL_SCHEMAS.contains(&schema)
}

/// Why `[schema.]name` may not be read, if it may not.
pub(crate) fn refusal(schema: Option<&str>, name: &str) -> Option<&'static str> {
    if schema.is_some_and(|s| is_internal_schema(&s.to_ascii_lowercase())) {
        return Some("its schema is internal to the server");
    }
    let name = name.to_ascii_lowercase();
    DENIED
        .iter()
        .find(|g| g.exact.contains(&name.as_str()) || g.prefixes.iter().any(|p| name.starts_with(p)))
        .map(|g| g.reason)
}
