-- Closes a side channel: the planner's column statistics are collected over every tenant's rows, and EXPLAIN
-- shows the estimates they produce, so `EXPLAIN SELECT * FROM retail.orders WHERE store_id = 2` would tell any
-- store manager roughly how many orders another store has. With no statistics on the tenant key columns the
-- planner falls back to the same default selectivity for every store. (Plans barely change: each store is a
-- sizeable share of the rows, and the policies filter on these columns through InitPlan parameters anyway.)
-- Statistics collected before this migration are removed by `zava-mcp db init` (it needs a superuser).
ALTER TABLE retail.orders ALTER COLUMN store_id SET STATISTICS 0;
ALTER TABLE retail.order_items ALTER COLUMN store_id SET STATISTICS 0;
ALTER TABLE retail.inventory ALTER COLUMN store_id SET STATISTICS 0;
ALTER TABLE retail.customers ALTER COLUMN primary_store_id SET STATISTICS 0;
