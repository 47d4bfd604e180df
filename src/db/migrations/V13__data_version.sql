-- A version number for the data, bumped by every change to it, so the server can reuse a query's result for as
-- long as the data it read has not changed (`crate::results`).
--
-- Every table whose rows a query can see, directly or through a view (retail's tables, and zava_private.customers
-- behind retail.customers), and the dataset record that `db seed` writes, gets a statement-level trigger after
-- INSERT, UPDATE, DELETE and TRUNCATE (COPY fires the INSERT one). The trigger adds one to the version and
-- announces the new number on the channel `zava_data_version`; PostgreSQL delivers the notice when the writing
-- transaction commits, and not at all if it rolls back. Statement-level, so a seed of half a million rows costs one
-- bump per statement, not per row. The trigger's function runs as its owner, so whoever writes (another
-- application with its own role included) bumps the version. A migration bumps it too (`db::migrate`).
--
-- The server listens on the channel on a connection of its own, and reads the number again every few seconds in
-- case a notice was missed; while it cannot, it reuses nothing. A test checks that every table has the trigger, so a
-- later migration that adds a table and forgets it fails.

CREATE TABLE zava_private.data_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version bigint NOT NULL
);
INSERT INTO zava_private.data_version (version) VALUES (1);
REVOKE ALL ON zava_private.data_version FROM PUBLIC;

-- Adds one to the version and announces it. Returns the new version.
CREATE FUNCTION zava_private.bump_data_version() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog
AS $$
DECLARE v bigint;
BEGIN
    UPDATE zava_private.data_version SET version = version + 1 RETURNING version INTO v;
    PERFORM pg_notify('zava_data_version', v::text);
    RETURN v;
END
$$;
REVOKE ALL ON FUNCTION zava_private.bump_data_version() FROM PUBLIC;

CREATE FUNCTION zava_private.data_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM zava_private.bump_data_version();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION zava_private.data_changed() FROM PUBLIC;

-- The version as the server reads it (as the query role, which has no access to the table itself).
CREATE FUNCTION zava_private.data_version() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS $$ SELECT version FROM zava_private.data_version $$;
REVOKE ALL ON FUNCTION zava_private.data_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zava_private.data_version() TO zava_query, zava_head_office;

DO $$
DECLARE t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p')
          AND (n.nspname = 'retail' OR c.oid IN ('zava_private.customers'::regclass, 'zava_private.dataset'::regclass))
    LOOP
        EXECUTE format('CREATE TRIGGER data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION zava_private.data_changed()', t);
    END LOOP;
END
$$;
