-- Policies the planner can turn into index conditions. V2 wrote the rule for orders, order items and inventory as
-- `head_office OR store_id = ANY (stores)`: the OR keeps `store_id` out of every index condition, so each query
-- scanned every store's rows and dropped the others' in a filter. That cost small stores as much as the largest,
-- and it was a side channel: the time a count takes for Redmond grew with the rows of Seattle it visited.
--
-- Head office's store list is every store (`tenant_store_ids()` returns them all), and these tables' `store_id` is
-- NOT NULL and references a store, so `store_id = ANY (stores)` alone is the same rule. With it, the
-- `(store_id, …)` indexes answer a manager's query from that store's rows only. Customers keep V2's rule: a
-- customer is seen through orders too, and some have no store at all, which only head office sees.
DROP POLICY tenant_read ON retail.orders;
CREATE POLICY tenant_read ON retail.orders FOR SELECT TO PUBLIC USING (
    store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));

DROP POLICY tenant_read ON retail.order_items;
CREATE POLICY tenant_read ON retail.order_items FOR SELECT TO PUBLIC USING (
    store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));

DROP POLICY tenant_read ON retail.inventory;
CREATE POLICY tenant_read ON retail.inventory FOR SELECT TO PUBLIC USING (
    store_id = ANY ((SELECT zava_private.tenant_store_ids())::integer[]));
