-- Head office reads through a role of its own, so its queries plan as reads of whole tables.
--
-- V9's rule `store_id = ANY (stores)` is right for a store manager: the `(store_id, …)` indexes answer from that
-- store's rows. For head office the list is every store, and since V5 hides `store_id`'s statistics the planner
-- cannot know that: it estimates the condition at its default selectivity (about a twentieth of the table) and
-- picks bitmap scans and nested loops for queries that read everything. "Gross margin by product type" took four
-- times as long for head office as under a plain policy with normal statistics (`zava-mcp bench --policies`).
--
-- So head office gets `zava_head_office`, a role with no login that the query role is a member of but, being
-- NOINHERIT, does not draw privileges or policies from unless it switches to it. The server's opening of a
-- head-office call says `SET LOCAL ROLE zava_head_office` (`db::context`), and this role's policy has no per-row
-- condition: one InitPlan checks the signed context once per query. It is still the context that decides: a
-- manager's connection that switched to this role (which the guard never lets SQL do) sees no tenant rows,
-- because its context is not head office's.
--
-- The check is written `(SELECT NULLIF(tenant_is_head_office(), false)) IS NOT NULL` rather than
-- `(SELECT tenant_is_head_office())` for the planner's sake: it cannot know a query parameter's value, and
-- estimates a bare boolean one as true for half the rows, which halves every row count in head office's plans
-- (hash aggregates sized for half the groups spill to disk), while it estimates "a parameter is not null" as
-- true for 99.5% of them. The value is the same: true for head office, and for anyone else NULL, which is
-- filtered out.
--
-- The managers' rule no longer applies to PUBLIC but to the query role only, so the head-office role is not
-- given both rules OR'd together. The role is created, and made switchable for the query role, by `db init`
-- (`db::bootstrap`), which runs before migrations.

DROP POLICY tenant_read ON retail.orders;
CREATE POLICY tenant_read ON retail.orders FOR SELECT TO zava_query USING (
    store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));
CREATE POLICY head_office_read ON retail.orders FOR SELECT TO zava_head_office USING (
    (SELECT NULLIF(zava_private.tenant_is_head_office(), false)) IS NOT NULL);

DROP POLICY tenant_read ON retail.order_items;
CREATE POLICY tenant_read ON retail.order_items FOR SELECT TO zava_query USING (
    store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));
CREATE POLICY head_office_read ON retail.order_items FOR SELECT TO zava_head_office USING (
    (SELECT NULLIF(zava_private.tenant_is_head_office(), false)) IS NOT NULL);

DROP POLICY tenant_read ON retail.inventory;
CREATE POLICY tenant_read ON retail.inventory FOR SELECT TO zava_query USING (
    store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));
CREATE POLICY head_office_read ON retail.inventory FOR SELECT TO zava_head_office USING (
    (SELECT NULLIF(zava_private.tenant_is_head_office(), false)) IS NOT NULL);

-- The context functions may run in a parallel query's leader. Marked parallel-unsafe (the default), any query
-- whose policies call them, which is every tenant query, was planned without parallel workers: head office's
-- reads of whole tables ran on one core where a plain design used three processes. They read only the context
-- setting, the key table and the transaction's start time, all of which the leader has; RESTRICTED keeps them
-- there (their InitPlans run once, in the leader, and workers receive the values).
ALTER FUNCTION zava_private.verified_context() PARALLEL RESTRICTED;
ALTER FUNCTION zava_private.tenant_scope() PARALLEL RESTRICTED;
ALTER FUNCTION zava_private.tenant_is_head_office() PARALLEL RESTRICTED;
ALTER FUNCTION zava_private.tenant_store_ids() PARALLEL RESTRICTED;
ALTER FUNCTION zava_private.tenant_reads_pii() PARALLEL RESTRICTED;

-- Whatever the query role may read or call in this database, the head-office role may too, and nothing more.
-- Only objects this migration's role owns are considered (it can grant nothing else). A test compares the two
-- roles' privileges, so a later migration that grants the query role something new must grant it here too.
DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT 'SCHEMA' AS kind, quote_ident(n.nspname) AS name, a.privilege_type AS privilege
        FROM pg_namespace n, aclexplode(n.nspacl) a
        WHERE a.grantee = 'zava_query'::regrole AND n.nspowner = current_user::regrole
        UNION ALL
        SELECT 'TABLE', c.oid::regclass::text, a.privilege_type
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE a.grantee = 'zava_query'::regrole AND c.relowner = current_user::regrole
        UNION ALL
        SELECT 'FUNCTION', p.oid::regprocedure::text, a.privilege_type
        FROM pg_proc p, aclexplode(p.proacl) a
        WHERE a.grantee = 'zava_query'::regrole AND p.proowner = current_user::regrole
    LOOP
        EXECUTE format('GRANT %s ON %s %s TO zava_head_office', r.privilege, r.kind, r.name);
    END LOOP;
END
$$;

-- A role switch is session state too: a connection whose role is not the one it logged in with is not handed on.
-- (`SET LOCAL ROLE` ends with the call's ROLLBACK, so a clean call always passes.)
CREATE OR REPLACE FUNCTION zava_private.session_is_clean() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    RETURN COALESCE(pg_catalog.current_setting('zava.tenant', true), '') OPERATOR(pg_catalog.=) ''
       AND pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none'
       AND pg_catalog.current_setting('row_security') OPERATOR(pg_catalog.=) 'on'
       AND pg_catalog.current_setting('default_transaction_read_only') OPERATOR(pg_catalog.=) 'on'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements p WHERE p.from_sql)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cursors c WHERE c.is_holdable)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_listening_channels());
END
$$;
