-- The session check without `pg_locks`. V8 asked, after every call, whether the backend held an advisory lock.
-- Reading `pg_locks` builds the whole lock table: it takes every lock-manager partition lock and every backend's
-- fast-path lock, and walks the predicate-lock hash, so its cost grows with the server's size and, under load, it
-- contends with every other session taking a lock. It was about a third of the check's cost at one caller, more
-- under 32 (`zava-mcp bench`).
--
-- And it asked about something the query role cannot do: every `pg_advisory_*` and `pg_try_advisory_*` function is
-- revoked from PUBLIC (`src/db/hardening.sql`), a revoke PostgreSQL itself enforces and a test proves (the role
-- gets "permission denied"), and no function the role may call takes one on its behalf. What stays checked is
-- every session state the role *can* leave behind if SQL ever got past the guard: a session setting (the tenant
-- context, row security, the read-only default), an SQL-level prepared statement, a holdable cursor, a LISTEN.
CREATE OR REPLACE FUNCTION zava_private.session_is_clean() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    RETURN COALESCE(pg_catalog.current_setting('zava.tenant', true), '') OPERATOR(pg_catalog.=) ''
       AND pg_catalog.current_setting('row_security') OPERATOR(pg_catalog.=) 'on'
       AND pg_catalog.current_setting('default_transaction_read_only') OPERATOR(pg_catalog.=) 'on'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements p WHERE p.from_sql)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cursors c WHERE c.is_holdable)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_listening_channels());
END
$$;
