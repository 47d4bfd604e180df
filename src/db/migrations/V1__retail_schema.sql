-- The origin's retail schema (ORIGIN.md §1.2): same tables, columns, types and keys, so its SQL keeps working.
-- Secondary indexes live here too; the seed drops and rebuilds them around bulk loads.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE SCHEMA IF NOT EXISTS retail;
COMMENT ON SCHEMA retail IS 'Zava DIY retail data: stores, catalog, customers, orders, inventory';

CREATE TABLE retail.stores (
    store_id    SERIAL PRIMARY KEY,
    store_name  TEXT UNIQUE NOT NULL,
    rls_user_id UUID NOT NULL,
    is_online   BOOLEAN NOT NULL DEFAULT false
);
COMMENT ON TABLE retail.stores IS 'The 7 Washington stores and the online store';
COMMENT ON COLUMN retail.stores.rls_user_id IS 'Identity of the store manager';
COMMENT ON COLUMN retail.stores.is_online IS 'true for the online store, false for physical stores';

CREATE TABLE retail.customers (
    customer_id      SERIAL PRIMARY KEY,
    first_name       TEXT NOT NULL,
    last_name        TEXT NOT NULL,
    email            TEXT UNIQUE NOT NULL,
    phone            TEXT,
    primary_store_id INTEGER REFERENCES retail.stores(store_id),
    created_at       TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
COMMENT ON COLUMN retail.customers.primary_store_id IS 'The store the customer is assigned to';

CREATE TABLE retail.categories (
    category_id   SERIAL PRIMARY KEY,
    category_name TEXT NOT NULL UNIQUE
);

CREATE TABLE retail.product_types (
    type_id     SERIAL PRIMARY KEY,
    category_id INTEGER NOT NULL REFERENCES retail.categories(category_id),
    type_name   TEXT NOT NULL
);

CREATE TABLE retail.products (
    product_id           SERIAL PRIMARY KEY,
    sku                  TEXT UNIQUE NOT NULL,
    product_name         TEXT NOT NULL,
    category_id          INTEGER NOT NULL REFERENCES retail.categories(category_id),
    type_id              INTEGER NOT NULL REFERENCES retail.product_types(type_id),
    cost                 DECIMAL(10,2) NOT NULL,
    base_price           DECIMAL(10,2) NOT NULL,
    gross_margin_percent DECIMAL(5,2) DEFAULT 33.00,
    product_description  TEXT NOT NULL
);
COMMENT ON COLUMN retail.products.cost IS 'Wholesale cost per unit (USD)';
COMMENT ON COLUMN retail.products.base_price IS 'List price per unit (USD)';

CREATE TABLE retail.inventory (
    store_id    INTEGER NOT NULL REFERENCES retail.stores(store_id),
    product_id  INTEGER NOT NULL REFERENCES retail.products(product_id),
    stock_level INTEGER NOT NULL,
    PRIMARY KEY (store_id, product_id)
);
COMMENT ON COLUMN retail.inventory.stock_level IS 'Units in stock at the store';

CREATE TABLE retail.orders (
    order_id    SERIAL PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES retail.customers(customer_id),
    store_id    INTEGER NOT NULL REFERENCES retail.stores(store_id),
    order_date  DATE NOT NULL
);
COMMENT ON TABLE retail.orders IS 'Order headers; revenue is in retail.order_items.total_amount';

CREATE TABLE retail.order_items (
    order_item_id    SERIAL PRIMARY KEY,
    order_id         INTEGER NOT NULL REFERENCES retail.orders(order_id),
    store_id         INTEGER NOT NULL REFERENCES retail.stores(store_id),
    product_id       INTEGER NOT NULL REFERENCES retail.products(product_id),
    quantity         INTEGER NOT NULL,
    unit_price       DECIMAL(10,2) NOT NULL,
    discount_percent INTEGER DEFAULT 0,
    discount_amount  DECIMAL(10,2) DEFAULT 0,
    total_amount     DECIMAL(10,2) NOT NULL
);
COMMENT ON COLUMN retail.order_items.total_amount IS 'Line revenue after discount (USD): SUM(total_amount) is sales revenue';
COMMENT ON COLUMN retail.order_items.store_id IS 'Same as the order''s store';

-- Description embeddings for semantic search (the model and its dimension are managed by the search feature).
CREATE TABLE retail.product_description_embeddings (
    product_id            INTEGER PRIMARY KEY REFERENCES retail.products(product_id),
    description_embedding vector(384),
    created_at            TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- Indexes the analytic queries and the row-level policies use. The origin's extra single-column indexes on
-- the small catalog tables (a few hundred rows) and its wide covering indexes are left out: they cost load
-- time and buy nothing at this size.
CREATE INDEX idx_orders_store_date      ON retail.orders (store_id, order_date);
CREATE INDEX idx_orders_date            ON retail.orders (order_date);
CREATE INDEX idx_orders_customer        ON retail.orders (customer_id, store_id);
CREATE INDEX idx_order_items_order      ON retail.order_items (order_id);
CREATE INDEX idx_order_items_store      ON retail.order_items (store_id, product_id);
CREATE INDEX idx_order_items_product    ON retail.order_items (product_id);
CREATE INDEX idx_customers_primary_store ON retail.customers (primary_store_id);
CREATE INDEX idx_inventory_product      ON retail.inventory (product_id);
CREATE INDEX idx_products_category      ON retail.products (category_id);
CREATE INDEX idx_products_type          ON retail.products (type_id);
CREATE INDEX idx_product_types_category ON retail.product_types (category_id);
