//! The words the model reads: server instructions and tool descriptions. Kept short (they are sent with every
//! `tools/list` and cost context tokens) but complete enough to steer the workflow.

pub const INSTRUCTIONS: &str = "Zava DIY retail analytics (7 Washington stores + online). Workflow: \
1) call get_multiple_table_schemas for the tables you need (once per conversation); \
2) write one read-only PostgreSQL SELECT for execute_sales_query using only the exact names shown; \
3) aggregate in SQL (GROUP BY, SUM, COUNT) and LIMIT to about 20 rows instead of fetching raw rows. \
Revenue is SUM(retail.order_items.total_amount). Use get_current_utc_date for relative dates (\"last quarter\"). \
You only see your own store's orders, items, inventory and customers; say so if asked about other stores. \
Never show raw IDs or UUIDs to the user: use names.";

pub const DATE: &str = "Get the current UTC date and time (ISO 8601), for relative-date questions such as \
\"last quarter\" or \"this month\".";

pub const SCHEMAS: &str = "Get the columns, relationships, valid values and query hints of tables. Call it \
before writing SQL, only for tables not already fetched in this conversation.";

pub const TABLE_NAMES: &str = "Tables to describe, e.g. ['retail.orders', 'retail.order_items']. Valid: \
retail.customers, retail.stores, retail.categories, retail.product_types, retail.products, retail.orders, \
retail.order_items, retail.inventory, retail.product_description_embeddings.";

pub const QUERY: &str = "Run one read-only PostgreSQL query against the Zava retail database and return \
{\"c\":columns,\"r\":rows,\"n\":row count}. Fetch schemas first; use only exact table and column names; never \
invent data. Join for names, aggregate, and LIMIT to about 20 rows (say the limit is for readability). \
Physical vs online store: retail.stores.is_online. Never return IDs or UUIDs to the user.";

pub const QUERY_ARG: &str = "One PostgreSQL SELECT (or WITH ... SELECT) statement.";

pub const SEARCH: &str = "Find Zava products by meaning: describe the purpose, features or use in natural language \
or the job to be done (e.g. 'waterproof electrical box for outdoor use', '15 amp circuit breaker', 'cut curves \
in plywood'). Returns {\"c\":columns,\"r\":rows,\"n\":count} with category and type names, list price, \
similarity_distance and sp (similarity %).";

pub const SEARCH_QUERY: &str = "What the product is for: purpose, features or use case.";
pub const SEARCH_MAX_ROWS: &str = "How many products to return, 1-100 (default 20).";
pub const SEARCH_THRESHOLD: &str =
    "Minimum similarity in percent, 0-100 (default 30); lower finds more, looser matches.";
pub const SEARCH_MODE: &str = "semantic (default: by meaning, the best-matching product type first), keyword (exact \
words, e.g. a spec like '12 AWG' or a product name) or hybrid (both fused). A SKU finds its product in every mode.";
