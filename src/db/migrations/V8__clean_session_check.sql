-- What a pooled connection may carry from one caller to the next: nothing. Every call ends in ROLLBACK, which
-- undoes transaction-level state, but some state is session-level and survives it: advisory locks taken with
-- `pg_advisory_lock` (they fill the shared lock table), settings changed with `set_config(…, false)`, prepared
-- statements made with PREPARE, holdable cursors, LISTEN registrations, a role switch. The guard and the
-- database's revokes stop each of these; this function checks, after every call, that none of them happened
-- anyway, and the server discards a connection for which it answers false (src/db/session.rs).
--
-- What it checks is what could reach the next caller and costs little to ask (the whole of `pg_settings` would
-- cost 0.4 ms a call): advisory locks held by this backend, a tenant context set for the session, row security or
-- read-only defaults switched off, SQL-level prepared statements, holdable cursors, LISTEN registrations. A role
-- switch (`SET ROLE`) is checked by the caller, as `current_user = session_user` outside this function, because
-- inside it `current_user` is the owner.
--
-- SECURITY DEFINER, because `pg_locks` is readable only by the owner once `zava-mcp db init` has hardened the
-- database; `pg_backend_pid()` is still the caller's backend inside it. It has no `SET search_path` clause, because
-- a function's SET would itself be a session-level change while it runs: every name and operator is qualified
-- instead, and the query role can create nothing that could shadow them. PL/pgSQL, not SQL, so that its plan is
-- made once per connection, not on every call.
CREATE FUNCTION zava_private.session_is_clean() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    RETURN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                       WHERE l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
                         AND l.locktype OPERATOR(pg_catalog.=) 'advisory')
       AND COALESCE(pg_catalog.current_setting('zava.tenant', true), '') OPERATOR(pg_catalog.=) ''
       AND pg_catalog.current_setting('row_security') OPERATOR(pg_catalog.=) 'on'
       AND pg_catalog.current_setting('default_transaction_read_only') OPERATOR(pg_catalog.=) 'on'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements p WHERE p.from_sql)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cursors c WHERE c.is_holdable)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_listening_channels());
END
$$;
REVOKE ALL ON FUNCTION zava_private.session_is_clean() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zava_private.session_is_clean() TO zava_query;
