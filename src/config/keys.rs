//! The keys of `zava-mcp.toml`: which section and name each setting has in the file, and which command-line
//! setting (clap argument and environment variable) it stands for.
//!
//! A setting is defined once, as a clap argument (its flag, environment variable, default, value parser and help
//! text); this table only gives it a place in the file. A unit test checks that every argument with an
//! environment variable has a key here and that each key's variable is its argument's, so a new flag cannot be
//! forgotten and a key cannot point at nothing.

/// One key of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    /// The `[section]` it lives in: one per concern.
    pub section: &'static str,
    /// Its name inside the section.
    pub name: &'static str,
    /// The clap argument id it sets.
    pub arg: &'static str,
    /// That argument's environment variable (the file value applies only where an argument has both).
    pub env: &'static str,
}

impl Key {
    /// `section.name`, as messages show it.
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.section, self.name)
    }
}

/// What each section is for, in the order `config example` and `config check` print them.
pub(crate) const SECTIONS: &[(&str, &str)] = &[
    ("database", "Where the data is and how connections to it are used."),
    ("limits", "What one query may return, and how much one caller may ask for."),
    ("http", "The Streamable HTTP listener (`serve`)."),
    ("identity", "How callers are identified: headers, bearer tokens from an identity provider, API keys."),
    ("embedding", "The service that turns texts into vectors for semantic search."),
    ("cache", "Cached per-tenant answers."),
    ("audit", "The audit log: one JSON line per tool call."),
    ("backup", "Scheduled backups while serving."),
    ("telemetry", "Logs, metrics and traces."),
    ("embed_server", "`zava-mcp embed-server`: the local model served over HTTP to other replicas."),
];

macro_rules! keys {
    ($($section:literal { $($name:literal => $arg:literal, $env:literal;)* })*) => {
        /// Every key of the file, section by section.
        pub(crate) const KEYS: &[Key] = &[
            $($(Key { section: $section, name: $name, arg: $arg, env: $env },)*)*
        ];
    };
}

keys! {
    "database" {
        "data_dir" => "data_dir", "ZAVA_DATA_DIR";
        "url" => "database_url", "DATABASE_URL";
        "admin_url" => "admin_database_url", "ZAVA_ADMIN_DATABASE_URL";
        "pool_size" => "pool_size", "ZAVA_POOL_SIZE";
        "pool_min_idle" => "pool_min_idle", "ZAVA_POOL_MIN_IDLE";
        "pool_idle_timeout_secs" => "pool_idle_timeout_secs", "ZAVA_POOL_IDLE_TIMEOUT_SECS";
        "tenant_connections" => "tenant_connections", "ZAVA_TENANT_CONNECTIONS";
        "pool_timeout_ms" => "pool_timeout_ms", "ZAVA_POOL_TIMEOUT_MS";
        "statement_timeout_ms" => "statement_timeout_ms", "ZAVA_STATEMENT_TIMEOUT_MS";
    }
    "limits" {
        "max_rows" => "max_rows", "ZAVA_MAX_ROWS";
        "max_result_bytes" => "max_result_bytes", "ZAVA_MAX_RESULT_BYTES";
        "rate_limit" => "rate_limit", "ZAVA_RATE_LIMIT";
        "max_concurrent" => "max_concurrent", "ZAVA_MAX_CONCURRENT";
        "redis_url" => "redis_url", "ZAVA_REDIS_URL";
    }
    "http" {
        "listen" => "http", "ZAVA_HTTP";
        "allowed_hosts" => "allowed_hosts", "ZAVA_ALLOWED_HOSTS";
        "allowed_origins" => "allowed_origins", "ZAVA_ALLOWED_ORIGINS";
        "cors_origins" => "cors_origins", "ZAVA_CORS_ORIGINS";
        "max_body_bytes" => "max_body_bytes", "ZAVA_MAX_BODY_BYTES";
        "drain_timeout_secs" => "drain_timeout_secs", "ZAVA_DRAIN_TIMEOUT_SECS";
        "call_lane" => "call_lane", "ZAVA_CALL_LANE";
    }
    "identity" {
        "mode" => "identity", "ZAVA_IDENTITY";
        "rls_user_id" => "rls_user_id", "ZAVA_RLS_USER_ID";
        "resource_uri" => "resource_uri", "ZAVA_RESOURCE_URI";
        "jwt_issuer" => "jwt_issuer", "ZAVA_JWT_ISSUER";
        "jwt_jwks_uri" => "jwt_jwks_uri", "ZAVA_JWT_JWKS_URI";
        "jwt_audience" => "jwt_audience", "ZAVA_JWT_AUDIENCE";
        "jwt_leeway_secs" => "jwt_leeway_secs", "ZAVA_JWT_LEEWAY_SECS";
        "jwt_require_at_jwt" => "jwt_require_at_jwt", "ZAVA_JWT_REQUIRE_AT_JWT";
        "jwt_jwks_refetch_secs" => "jwt_jwks_refetch_secs", "ZAVA_JWT_JWKS_REFETCH_SECS";
        "claim_rls_user_id" => "claim_rls_user_id", "ZAVA_CLAIM_RLS_USER_ID";
        "claim_role" => "claim_role", "ZAVA_CLAIM_ROLE";
        "claim_stores" => "claim_stores", "ZAVA_CLAIM_STORES";
        "api_keys_file" => "api_keys_file", "ZAVA_API_KEYS_FILE";
        "identity_map" => "identity_map", "ZAVA_IDENTITY_MAP";
        "tool_scopes" => "tool_scope", "ZAVA_TOOL_SCOPES";
    }
    "embedding" {
        "provider" => "embedding_provider", "ZAVA_EMBEDDING_PROVIDER";
        "model_dir" => "embedding_model_dir", "ZAVA_EMBEDDING_MODEL_DIR";
        "precision" => "embedding_precision", "ZAVA_EMBEDDING_PRECISION";
        "openai_base_url" => "openai_base_url", "OPENAI_BASE_URL";
        "openai_api_key" => "openai_api_key", "OPENAI_API_KEY";
        "model" => "embedding_model", "ZAVA_EMBEDDING_MODEL";
        "dimensions" => "embedding_dimensions", "ZAVA_EMBEDDING_DIMENSIONS";
        "azure_openai_endpoint" => "azure_openai_endpoint", "AZURE_OPENAI_ENDPOINT";
        "azure_openai_deployment" => "azure_openai_deployment", "EMBEDDING_MODEL_DEPLOYMENT_NAME";
        "azure_openai_api_version" => "azure_openai_api_version", "AZURE_OPENAI_API_VERSION";
        "azure_openai_api_key" => "azure_openai_api_key", "AZURE_OPENAI_API_KEY";
        "azure_tenant_id" => "azure_tenant_id", "AZURE_TENANT_ID";
        "azure_client_id" => "azure_client_id", "AZURE_CLIENT_ID";
        "azure_client_secret" => "azure_client_secret", "AZURE_CLIENT_SECRET";
        "azure_authority_host" => "azure_authority_host", "AZURE_AUTHORITY_HOST";
        "timeout" => "embedding_timeout", "ZAVA_EMBEDDING_TIMEOUT";
        "max_retries" => "embedding_max_retries", "ZAVA_EMBEDDING_MAX_RETRIES";
        "batch_size" => "embedding_batch_size", "ZAVA_EMBEDDING_BATCH_SIZE";
        "breaker_failures" => "embedding_breaker_failures", "ZAVA_EMBEDDING_BREAKER_FAILURES";
        "breaker_cool_down" => "embedding_breaker_cool_down", "ZAVA_EMBEDDING_BREAKER_COOL_DOWN";
    }
    "cache" {
        "schema_ttl_secs" => "schema_cache_ttl_secs", "ZAVA_SCHEMA_CACHE_TTL_SECS";
        "results" => "result_cache", "ZAVA_RESULT_CACHE";
        "results_ttl_secs" => "result_cache_ttl_secs", "ZAVA_RESULT_CACHE_TTL_SECS";
        "results_mb" => "result_cache_mb", "ZAVA_RESULT_CACHE_MB";
        "results_local" => "result_cache_local", "ZAVA_RESULT_CACHE_LOCAL";
    }
    "audit" {
        "log" => "audit_log", "ZAVA_AUDIT_LOG";
        "max_mb" => "audit_max_mb", "ZAVA_AUDIT_MAX_MB";
        "keep" => "audit_keep", "ZAVA_AUDIT_KEEP";
        "hash_subjects" => "audit_hash_subjects", "ZAVA_AUDIT_HASH_SUBJECTS";
    }
    "backup" {
        "every" => "backup_every", "ZAVA_BACKUP_EVERY";
        "keep" => "backup_keep", "ZAVA_BACKUP_KEEP";
        "dir" => "backup_dir", "ZAVA_BACKUP_DIR";
    }
    "telemetry" {
        "log" => "log", "ZAVA_LOG";
        "log_format" => "log_format", "ZAVA_LOG_FORMAT";
        "metrics" => "metrics", "ZAVA_METRICS";
        "otlp_endpoint" => "otlp_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT";
        "otlp_traces_endpoint" => "otlp_traces_endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
        "otlp_protocol" => "otlp_protocol", "OTEL_EXPORTER_OTLP_PROTOCOL";
    }
    "embed_server" {
        "listen" => "embed_server_listen", "ZAVA_EMBED_SERVER_LISTEN";
        "api_key" => "embed_server_api_key", "ZAVA_EMBED_SERVER_API_KEY";
        "model_name" => "embed_server_model_name", "ZAVA_EMBED_SERVER_MODEL_NAME";
        "max_body_bytes" => "embed_server_max_body_bytes", "ZAVA_EMBED_SERVER_MAX_BODY_BYTES";
    }
}

/// The key `section.name`, if there is one.
pub(crate) fn find(section: &str, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.section == section && k.name == name)
}

/// The keys of one section.
pub(crate) fn in_section(section: &str) -> impl Iterator<Item = &'static Key> + '_ {
    KEYS.iter().filter(move |k| k.section == section)
}

/// The closest of `candidates` to a misspelt `word`, when it is close enough to be a likely intent.
pub(crate) fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_in_known_sections() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(SECTIONS.iter().any(|(s, _)| *s == k.section), "{}", k.dotted());
            assert!(KEYS[..i].iter().all(|o| o.dotted() != k.dotted()), "{} twice", k.dotted());
            assert!(KEYS[..i].iter().all(|o| o.arg != k.arg), "argument {} twice", k.arg);
        }
    }

    /// An argument given an `id` of its own keeps a kebab-case flag: `#[arg(id = "x_y", long)]` would make the
    /// flag `--x_y` (it once turned `embed-server --listen` into `--embed_server_listen`).
    #[test]
    fn every_flag_is_kebab_case() {
        fn walk(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                if let Some(long) = arg.get_long() {
                    assert!(!long.contains('_'), "{path} --{long}");
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&<crate::cli::Cli as clap::CommandFactory>::command(), "zava-mcp");
    }

    #[test]
    fn a_near_miss_finds_its_key_and_nonsense_finds_none() {
        let names = || in_section("limits").map(|k| k.name);
        assert_eq!(nearest("max_row", names()), Some("max_rows"));
        assert_eq!(nearest("ratelimit", names()), Some("rate_limit"));
        assert_eq!(nearest("colour", names()), None);
    }
}
