-- Row-level security with a tenant context that the query role can neither write nor forge.
--
-- The server opens every call's transaction with `SET LOCAL zava.tenant = '<signed context>'`, where the
-- signed context is `v1;<scope>;<expiry unix seconds>;<nonce>;<HMAC-SHA256 hex>` and scope is `*` (head office)
-- or a comma-separated list of store-manager UUIDs. The policies below only trust a context whose HMAC
-- verifies with a key kept in a table the query role cannot read. So even SQL that manages to set the GUC
-- (the origin's `set_config` hole) cannot name another tenant: an unsigned or forged value sees no tenant rows.
-- No context, an empty one, an expired one or an unknown manager all mean zero rows, never everything.

CREATE SCHEMA IF NOT EXISTS zava_private;
REVOKE ALL ON SCHEMA zava_private FROM PUBLIC;
COMMENT ON SCHEMA zava_private IS 'zava-mcp internals: tenant context verification and dataset metadata';
-- pgcrypto (for HMAC) in a schema of its own that only the owner may use.
CREATE SCHEMA IF NOT EXISTS zava_crypto;
REVOKE ALL ON SCHEMA zava_crypto FROM PUBLIC;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA zava_crypto;

CREATE TABLE zava_private.context_key (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    key      BYTEA NOT NULL CHECK (length(key) >= 32)
);
REVOKE ALL ON zava_private.context_key FROM PUBLIC;

CREATE TABLE zava_private.dataset (
    only_row    BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    seed        BIGINT NOT NULL,
    customers   INTEGER NOT NULL,
    checksum    TEXT NOT NULL,
    loaded_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
REVOKE ALL ON zava_private.dataset FROM PUBLIC;

-- The verified scope of the current transaction, or NULL when there is none worth trusting.
CREATE FUNCTION zava_private.tenant_scope() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    raw   text := current_setting('zava.tenant', true);
    parts text[];
    k     bytea;
    expected text;
BEGIN
    IF raw IS NULL OR raw = '' THEN
        RETURN NULL;
    END IF;
    parts := string_to_array(raw, ';');
    IF array_length(parts, 1) IS DISTINCT FROM 5 OR parts[1] <> 'v1' OR parts[3] !~ '^[0-9]{1,12}$' THEN
        RETURN NULL;
    END IF;
    SELECT c.key INTO k FROM zava_private.context_key c;
    IF k IS NULL THEN
        RETURN NULL;
    END IF;
    expected := encode(zava_crypto.hmac(convert_to(array_to_string(parts[1:4], ';'), 'UTF8'), k, 'sha256'), 'hex');
    IF expected <> parts[5] OR to_timestamp(parts[3]::bigint) < now() THEN
        RETURN NULL;
    END IF;
    RETURN parts[2];
END
$$;

CREATE FUNCTION zava_private.tenant_is_head_office() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(zava_private.tenant_scope() = '*', false) $$;

-- Store ids the current tenant may see: every store for head office, the managers' stores otherwise, none
-- without a verified context.
CREATE FUNCTION zava_private.tenant_store_ids() RETURNS integer[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    scope text := zava_private.tenant_scope();
    ids integer[];
BEGIN
    IF scope IS NULL THEN
        RETURN '{}';
    ELSIF scope = '*' THEN
        SELECT coalesce(array_agg(s.store_id ORDER BY s.store_id), '{}') INTO ids FROM retail.stores s;
    ELSE
        SELECT coalesce(array_agg(s.store_id ORDER BY s.store_id), '{}') INTO ids
        FROM retail.stores s
        WHERE s.rls_user_id = ANY (string_to_array(scope, ',')::uuid[]);
    END IF;
    RETURN ids;
END
$$;

REVOKE ALL ON FUNCTION zava_private.tenant_scope() FROM PUBLIC;
REVOKE ALL ON FUNCTION zava_private.tenant_is_head_office() FROM PUBLIC;
REVOKE ALL ON FUNCTION zava_private.tenant_store_ids() FROM PUBLIC;

-- Row-level security on every retail table, forced so that not even the owner slips through by accident.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['stores','customers','categories','product_types','products','inventory',
                             'orders','order_items','product_description_embeddings']
    LOOP
        EXECUTE format('ALTER TABLE retail.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE retail.%I FORCE ROW LEVEL SECURITY', t);
        -- The owner (who runs migrations and loads data) keeps full access through its own policy.
        EXECUTE format('CREATE POLICY owner_all ON retail.%I TO CURRENT_USER USING (true) WITH CHECK (true)', t);
    END LOOP;
    -- Shared reference data: readable by everyone who may read the table at all.
    FOREACH t IN ARRAY ARRAY['stores','categories','product_types','products','product_description_embeddings']
    LOOP
        EXECUTE format('CREATE POLICY shared_read ON retail.%I FOR SELECT TO PUBLIC USING (true)', t);
    END LOOP;
END
$$;

-- Tenant data. `(SELECT f())` makes each function an InitPlan: evaluated once per query, not once per row.
CREATE POLICY tenant_read ON retail.orders FOR SELECT TO PUBLIC USING (
    (SELECT zava_private.tenant_is_head_office())
    OR store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));

CREATE POLICY tenant_read ON retail.order_items FOR SELECT TO PUBLIC USING (
    (SELECT zava_private.tenant_is_head_office())
    OR store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));

CREATE POLICY tenant_read ON retail.inventory FOR SELECT TO PUBLIC USING (
    (SELECT zava_private.tenant_is_head_office())
    OR store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));

-- A customer belongs to a store's view if assigned to it or if they ever ordered there (the origin's rule).
CREATE POLICY tenant_read ON retail.customers FOR SELECT TO PUBLIC USING (
    (SELECT zava_private.tenant_is_head_office())
    OR primary_store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[])
    OR customer_id IN (SELECT o.customer_id FROM retail.orders o
                       WHERE o.store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[])));
