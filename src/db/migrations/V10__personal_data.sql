-- Customers' email and phone are personal data: a caller sees them in clear only when its signed tenant context
-- grants it (the `pii:read` scope of a verified token), masked otherwise, whatever SQL it writes.
--
-- Masking in the output of a query is not enough: `WHERE email LIKE 'a%'`, `length(email)`, `ORDER BY email`, a
-- join or a `GROUP BY` on the column would all still read the clear value. So the query role never reaches the
-- clear column at all. The table moves to `zava_private.customers`, which the query role cannot read, and
-- `retail.customers` becomes a view owned by the owner that computes the masked value *in place of* the column:
-- every expression a query builds over `email` or `phone` is built over the masked text. The origin's SQL
-- (`SELECT … FROM retail.customers`, joins on `customer_id`) reads the view unchanged.
--
-- The view runs with its owner's rights, so the owner's policy on the table lets every row through, and the
-- tenant rule is the view's own WHERE clause (V2's customers policy, word for word). It is a security barrier:
-- without one, the planner could evaluate a caller's condition (`first_name::int = 0`, whose error message quotes
-- the value) on rows before the tenant rule removes them. The policy stays on the table as a second layer, should
-- the query role ever be granted it by mistake.
--
-- The context gains a version: `v2;<scope>;<grants>;<expiry>;<nonce>;<hmac>`, grants being `-` or a comma list
-- (today only `pii`). A `v1` context, which predates grants, still verifies and grants nothing.

ALTER TABLE retail.customers SET SCHEMA zava_private;
-- The grant V3 gave on retail.customers moved with the table.
REVOKE ALL ON zava_private.customers FROM zava_query;
REVOKE ALL ON zava_private.customers FROM PUBLIC;

-- The verified context as `{scope, grants}`, or NULL when there is none worth trusting.
CREATE FUNCTION zava_private.verified_context() RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    raw      text := current_setting('zava.tenant', true);
    parts    text[];
    n        integer;
    grants   text := '-';
    expiry   text;
    k        bytea;
    expected text;
BEGIN
    IF raw IS NULL OR raw = '' THEN
        RETURN NULL;
    END IF;
    parts := string_to_array(raw, ';');
    n := array_length(parts, 1);
    IF parts[1] = 'v1' AND n = 5 THEN
        expiry := parts[3];
    ELSIF parts[1] = 'v2' AND n = 6 AND parts[3] ~ '^(-|[a-z]+(,[a-z]+)*)$' THEN
        grants := parts[3];
        expiry := parts[4];
    ELSE
        RETURN NULL;
    END IF;
    IF expiry !~ '^[0-9]{1,12}$' THEN
        RETURN NULL;
    END IF;
    SELECT c.key INTO k FROM zava_private.context_key c;
    IF k IS NULL THEN
        RETURN NULL;
    END IF;
    expected := encode(zava_crypto.hmac(convert_to(array_to_string(parts[1:n - 1], ';'), 'UTF8'), k, 'sha256'), 'hex');
    IF expected <> parts[n] OR to_timestamp(expiry::bigint) < now() THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY[parts[2], grants];
END
$$;

CREATE OR REPLACE FUNCTION zava_private.tenant_scope() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (zava_private.verified_context())[1] $$;

-- Whether the current context grants personal data in clear.
CREATE FUNCTION zava_private.tenant_reads_pii() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce('pii' = ANY (string_to_array((zava_private.verified_context())[2], ',')), false) $$;

REVOKE ALL ON FUNCTION zava_private.verified_context() FROM PUBLIC;
REVOKE ALL ON FUNCTION zava_private.tenant_reads_pii() FROM PUBLIC;

-- `jane.doe.17@example.com` → `j***@example.com`: the first character and the domain, never the length.
CREATE FUNCTION zava_private.mask_email(email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN email IS NULL THEN NULL
                  WHEN strpos(email, '@') > 1 THEN left(email, 1) || '***@' || split_part(email, '@', 2)
                  ELSE '***' END $$;

-- `(206) 555-0123` → `(***) ***-0123`: the last four digits, as a receipt shows them.
CREATE FUNCTION zava_private.mask_phone(phone text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN phone IS NULL THEN NULL
                  WHEN length(regexp_replace(phone, '[^0-9]', '', 'g')) >= 4
                      THEN '(***) ***-' || right(regexp_replace(phone, '[^0-9]', '', 'g'), 4)
                  ELSE '***' END $$;

REVOKE ALL ON FUNCTION zava_private.mask_email(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION zava_private.mask_phone(text) FROM PUBLIC;

-- A view's functions are called with the rights of whoever reads the view, so the query role needs these.
GRANT EXECUTE ON FUNCTION zava_private.tenant_reads_pii() TO zava_query;
GRANT EXECUTE ON FUNCTION zava_private.mask_email(text) TO zava_query;
GRANT EXECUTE ON FUNCTION zava_private.mask_phone(text) TO zava_query;

CREATE VIEW retail.customers WITH (security_barrier = true) AS
SELECT c.customer_id,
       c.first_name,
       c.last_name,
       CASE WHEN (SELECT zava_private.tenant_reads_pii()) THEN c.email ELSE zava_private.mask_email(c.email) END
           AS email,
       CASE WHEN (SELECT zava_private.tenant_reads_pii()) THEN c.phone ELSE zava_private.mask_phone(c.phone) END
           AS phone,
       c.primary_store_id,
       c.created_at
FROM zava_private.customers c
WHERE (SELECT zava_private.tenant_is_head_office())
   OR c.primary_store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[])
   OR c.customer_id IN (SELECT o.customer_id FROM retail.orders o
                        WHERE o.store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));

GRANT SELECT ON retail.customers TO zava_query;

COMMENT ON VIEW retail.customers IS
    'Customers of the stores the caller may see (assigned to one of them, or ordered there). Email and phone are personal data: masked unless the caller holds the pii:read scope';
COMMENT ON COLUMN retail.customers.email IS
    'Personal data: masked as j***@example.com unless the caller holds pii:read; filtering, sorting or grouping by it works on what the caller sees';
COMMENT ON COLUMN retail.customers.phone IS
    'Personal data: masked as (***) ***-1234 unless the caller holds pii:read';
COMMENT ON COLUMN retail.customers.primary_store_id IS 'The store the customer is assigned to';
