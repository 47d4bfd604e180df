-- Lets the query role ask which schema version is installed (for readiness checks) without reading the
-- migration history table itself.
CREATE FUNCTION zava_private.schema_version() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(max(version), 0)::integer FROM public.refinery_schema_history $$;
REVOKE ALL ON FUNCTION zava_private.schema_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zava_private.schema_version() TO zava_query;
