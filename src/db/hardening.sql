-- Database-side hardening of the zava database, run by a superuser (`zava-mcp db init`) after the roles and the
-- database exist. Idempotent. It is the second, independent layer behind the SQL guard (src/guard): every family
-- below is also refused by the guard, and each stays refused here if a way past the guard is ever found.
--
-- Function privileges live in each database's catalog, so this runs inside the zava database. A function is
-- revoked from PUBLIC (the query role has no other grant on catalog functions) and granted to the owner role,
-- which runs migrations and the loader. Each family says why it goes.

DO $harden$
DECLARE
    families CONSTANT text[][] := ARRAY[
        -- Settings: `set_config('zava.tenant', …)` would replace the tenant context, `set_config('role', …)`
        -- switch roles; a READ ONLY transaction does not stop either.
        ARRAY['^set_config$', 'changes settings'],
        -- SQL given as text runs inside the server, out of the guard's sight.
        ARRAY['^(query|cursor|table|schema|database)_to_xml', 'runs SQL text'],
        ARRAY['^ts_(stat|rewrite)$', 'runs SQL text'],
        -- Sleeping holds a connection and a snapshot as long as the caller likes.
        ARRAY['^pg_sleep', 'stalls a connection'],
        -- Advisory locks: session-level ones outlive the call's ROLLBACK on a pooled connection and fill the
        -- shared lock table (every new connection then fails with "out of shared memory").
        ARRAY['^pg_(try_)?advisory', 'takes locks that outlive the call'],
        -- Other sessions: their activity, their locks, signalling them, notifying them.
        ARRAY['^pg_(cancel|terminate)_backend$', 'signals other sessions'],
        ARRAY['^pg_(safe_snapshot_)?blocking_pids$', 'shows other sessions'],
        ARRAY['^pg_lock_status$', 'shows every session''s locks'],
        ARRAY['^pg_notify$', 'sends to other sessions'],
        ARRAY['^pg_(listening_channels|notification_queue_usage)$', 'shows notification state'],
        ARRAY['^pg_prepared_xact$', 'shows other sessions'' prepared transactions'],
        -- Statistics counters count every tenant's rows: read around a query that RLS filters, the index and
        -- table counters give another store's exact row counts, and on a unique index an oracle on its values.
        ARRAY['^pg_stat_', 'counts every tenant''s rows'],
        -- Sizes count every tenant's rows too.
        ARRAY['^pg_(relation|total_relation|table|indexes|database|tablespace|column)_size$', 'sizes count every tenant'],
        ARRAY['^pg_relation_file(node|path)$', 'reveals storage'],
        ARRAY['^pg_sequence_last_value$', 'a sequence''s value counts every tenant''s rows'],
        -- Transaction ids and snapshots show how many transactions every tenant ran; assigning an id is a write.
        ARRAY['^(txid_current|pg_current_xact_id|txid_current_snapshot|pg_current_snapshot|txid_status|pg_xact_status)', 'reveals other transactions'],
        ARRAY['^(pg_xact_commit_timestamp|pg_last_committed_xact)', 'reveals other transactions'],
        -- WAL positions grow with every tenant's writes.
        ARRAY['^pg_(current|last)_wal_', 'reveals write volume'],
        ARRAY['^pg_last_xact_replay_timestamp$', 'reveals write activity'],
        -- Session state a pooled connection would carry over to the next caller.
        ARRAY['^setseed$', 'leaves session state'],
        ARRAY['^(currval|lastval|nextval|setval)$', 'sequence state'],
        -- Server files and large objects.
        ARRAY['^pg_(read_file|read_binary_file|stat_file|ls_)', 'reads server files'],
        ARRAY['^(lo_|loread$|lowrite$)', 'large objects']
    ];
    family text[];
    fn regprocedure;
BEGIN
    FOREACH family SLICE 1 IN ARRAY families LOOP
        FOR fn IN
            SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname ~ family[1]
        LOOP
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO zava_owner', fn);
        END LOOP;
    END LOOP;
END
$harden$;

-- Views over the same data: other sessions' queries and locks, statistics across every tenant.
DO $views$
DECLARE
    v text;
BEGIN
    FOR v IN
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'v'
          AND (c.relname ~ '^pg_stat(io)?_' OR c.relname IN ('pg_locks', 'pg_prepared_xacts', 'pg_stat_statements'))
    LOOP
        EXECUTE format('REVOKE SELECT ON pg_catalog.%I FROM PUBLIC', v);
        EXECUTE format('GRANT SELECT ON pg_catalog.%I TO zava_owner', v);
    END LOOP;
END
$views$;

-- Without USAGE on plpgsql the query role cannot run DO blocks (dynamic SQL outside any guard); the owner's
-- SECURITY DEFINER functions still run, because calling a function needs no language privilege.
REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;
GRANT USAGE ON LANGUAGE plpgsql TO zava_owner;

-- Statistics on the tenant key columns would let EXPLAIN estimate other stores' volumes (migration V5 stops
-- collecting them); remove any gathered before it.
DELETE FROM pg_catalog.pg_statistic s USING pg_catalog.pg_attribute a
WHERE a.attrelid = s.starelid AND a.attnum = s.staattnum
  AND (a.attrelid, a.attname) IN (SELECT to_regclass(t), c FROM (VALUES
      ('retail.orders', 'store_id'), ('retail.order_items', 'store_id'),
      ('retail.inventory', 'store_id'), ('retail.customers', 'primary_store_id')) v(t, c));

-- Under row-level security the planner uses a column's statistics, and lets a condition of the caller's run
-- before the policy's (as an index condition, say), only through LEAKPROOF operators: a function that could
-- raise an error quoting a value, or leak one otherwise, must not see rows the policy would remove. PostgreSQL
-- marks its same-type comparisons leakproof but not the cross-type ones between date, timestamp and timestamptz,
-- which are what an assistant writes whenever it compares a date column with `date_trunc(…)`, `now()` or
-- `CURRENT_DATE - INTERVAL …`. Left unmarked, each such bound was estimated blind at one half, a range of two
-- at 0.5 + 0.5 − 1 = nothing ("rows=1"), and a quarter's orders were joined by nested loops: head office's
-- "top products last quarter" took ten times as long as without a policy. Since PostgreSQL 13 these functions
-- compare out-of-range values by sign instead of converting them, so they cannot raise an error, and they have
-- no other effect: they are leakproof in fact (a test compares them at the types' extremes).
DO $leakproof$
DECLARE
    fn regprocedure;
    datetime CONSTANT regtype[] := ARRAY['date', 'timestamp', 'timestamptz']::regtype[];
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
        WHERE o.oprname IN ('<', '<=', '=', '<>', '>=', '>') AND o.oprleft <> o.oprright
          AND o.oprleft = ANY (datetime) AND o.oprright = ANY (datetime)
          AND p.pronamespace = 'pg_catalog'::regnamespace AND NOT p.proleakproof
    LOOP
        EXECUTE format('ALTER FUNCTION %s LEAKPROOF', fn);
    END LOOP;
END
$leakproof$;
