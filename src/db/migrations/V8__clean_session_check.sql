-- What a pooled connection may carry from one caller to the next: nothing. Every call ends in ROLLBACK, which
-- undoes transaction-level state, but some state is session-level and survives it: advisory locks taken with
-- `pg_advisory_lock` (they fill the shared lock table), settings changed with `set_config(…, false)`, prepared
-- statements made with PREPARE, holdable cursors, LISTEN registrations. The guard and the database's revokes
-- stop each of these; this function checks, after every call, that none of them happened anyway, and the server
-- discards a connection for which it answers false (src/db/session.rs).
--
-- SECURITY DEFINER, because `pg_locks` is readable only by the owner once `zava-mcp db init` has hardened the
-- database; `pg_backend_pid()` is still the caller's backend inside it. It has no `SET search_path` clause,
-- because a function's SET shows in pg_settings as a session setting (the very thing it looks for): every name
-- and operator is qualified instead, and the query role can create nothing that could shadow them.
CREATE FUNCTION zava_private.session_is_clean() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
AS $$
    SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                       WHERE l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
                         AND l.locktype OPERATOR(pg_catalog.=) 'advisory')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_settings s WHERE s.source OPERATOR(pg_catalog.=) 'session')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements p WHERE p.from_sql)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cursors c WHERE c.is_holdable)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_listening_channels())
$$;
REVOKE ALL ON FUNCTION zava_private.session_is_clean() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zava_private.session_is_clean() TO zava_query;
