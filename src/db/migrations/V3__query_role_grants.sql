-- What the query role (zava_query, created by `zava-mcp db init`) may do: read the retail tables through the
-- policies above, and call the three context functions the policies need. Nothing else: no writes, no
-- sequences, no other schemas, no access to the key or dataset tables.
GRANT USAGE ON SCHEMA retail TO zava_query;
GRANT SELECT ON ALL TABLES IN SCHEMA retail TO zava_query;
GRANT USAGE ON SCHEMA zava_private TO zava_query;
GRANT EXECUTE ON FUNCTION zava_private.tenant_scope() TO zava_query;
GRANT EXECUTE ON FUNCTION zava_private.tenant_is_head_office() TO zava_query;
GRANT EXECUTE ON FUNCTION zava_private.tenant_store_ids() TO zava_query;
