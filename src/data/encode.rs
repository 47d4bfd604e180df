//! Renders the generated rows as PostgreSQL COPY text, one buffer per table, in load order.
//!
//! COPY text is the fastest way to bulk-load here and, being bytes, it is also what the dataset checksum is
//! computed over: the same seed must produce byte-identical buffers.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::catalog::{Catalog, base_price_cents};
use super::generate::Dataset;
use super::stores::STORES;

/// One table's rows as COPY text.
pub struct TableCopy {
    pub table: &'static str,
    pub columns: &'static str,
    pub rows: usize,
    pub text: Vec<u8>,
}

impl TableCopy {
    fn new(table: &'static str, columns: &'static str) -> Self {
        Self { table, columns, rows: 0, text: Vec::new() }
    }

    fn row(&mut self, fields: &[&dyn std::fmt::Display]) {
        let mut line = String::with_capacity(64);
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                line.push('\t');
            }
            write!(line, "{f}").expect("writing to a String cannot fail");
        }
        escape_into(&line, &mut self.text);
        self.text.push(b'\n');
        self.rows += 1;
    }

    /// `COPY retail.t (cols) FROM STDIN` for this table.
    pub fn copy_statement(&self) -> String {
        format!("COPY {} ({}) FROM STDIN (FORMAT text, FREEZE true)", self.table, self.columns)
    }
}

/// Text fields in our data never contain tabs or newlines; backslashes would still need escaping.
fn escape_into(line: &str, out: &mut Vec<u8>) {
    for b in line.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

struct Money(i64);

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

/// All tables as COPY text, in an order that satisfies foreign keys.
pub fn encode(data: &Dataset) -> Vec<TableCopy> {
    let catalog = Catalog::builtin();
    let mut stores = TableCopy::new("retail.stores", "store_id, store_name, rls_user_id, is_online");
    for (i, s) in STORES.iter().enumerate() {
        stores.row(&[&(i + 1), &s.name, &s.manager, &s.is_online]);
    }
    let mut categories = TableCopy::new("retail.categories", "category_id, category_name");
    let mut types = TableCopy::new("retail.product_types", "type_id, category_id, type_name, type_description");
    let mut type_id = 0;
    for (ci, c) in catalog.categories.iter().enumerate() {
        categories.row(&[&(ci + 1), &c.name]);
        for t in &c.types {
            type_id += 1;
            types.row(&[&type_id, &(ci + 1), &t.name, &t.about]);
        }
    }
    let mut products = TableCopy::new(
        "retail.products",
        "product_id, sku, product_name, category_id, type_id, cost, base_price, gross_margin_percent, product_description",
    );
    for p in &data.products {
        let price = base_price_cents(p.cost_cents);
        products.row(&[
            &p.product_id,
            &p.sku,
            &p.product.name,
            &p.category_id,
            &p.type_id,
            &Money(p.cost_cents),
            &Money(price),
            &"33.00",
            &p.product.description,
        ]);
    }
    // The table behind the `retail.customers` view (migration V10).
    let mut customers = TableCopy::new(
        "zava_private.customers",
        "customer_id, first_name, last_name, email, phone, primary_store_id, created_at",
    );
    for c in &data.customers {
        let email = format!("{}.{}.{}@example.com", c.first_name, c.last_name, c.id).to_ascii_lowercase();
        let phone = format!("({}) {}-{}", c.phone.0, c.phone.1, c.phone.2);
        let created = c.created_at.format("%Y-%m-%d %H:%M:%S");
        customers.row(&[&c.id, &c.first_name, &c.last_name, &email, &phone, &c.primary_store_id, &created]);
    }
    let mut inventory = TableCopy::new("retail.inventory", "store_id, product_id, stock_level");
    for s in &data.inventory {
        inventory.row(&[&s.store_id, &s.product_id, &s.stock]);
    }
    let mut orders = TableCopy::new("retail.orders", "order_id, customer_id, store_id, order_date");
    for o in &data.orders {
        orders.row(&[&o.id, &o.customer_id, &o.store_id, &o.date]);
    }
    let mut items = TableCopy::new(
        "retail.order_items",
        "order_item_id, order_id, store_id, product_id, quantity, unit_price, discount_percent, discount_amount, total_amount",
    );
    for i in &data.items {
        items.row(&[
            &i.id,
            &i.order_id,
            &i.store_id,
            &i.product_id,
            &i.quantity,
            &Money(i.unit_price_cents),
            &i.discount_percent,
            &Money(i.discount_cents),
            &Money(i.total_cents),
        ]);
    }
    vec![stores, categories, types, products, customers, inventory, orders, items]
}

/// SHA-256 over every table's name and COPY text: equal checksums mean byte-identical datasets.
pub fn checksum(tables: &[TableCopy]) -> String {
    let mut h = Sha256::new();
    for t in tables {
        h.update(t.table.as_bytes());
        h.update([0]);
        h.update(&t.text);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generate::{Dataset, GenOptions};

    #[test]
    fn money_renders_exactly() {
        assert_eq!(Money(12_345).to_string(), "123.45");
        assert_eq!(Money(5).to_string(), "0.05");
        assert_eq!(Money(-150).to_string(), "-1.50");
    }

    #[test]
    fn same_seed_gives_byte_identical_data_and_another_seed_does_not() {
        let small = |seed| checksum(&encode(&Dataset::generate(GenOptions { seed, customers: 1_500 })));
        assert_eq!(small(42), small(42));
        assert_ne!(small(42), small(43));
    }

    #[test]
    fn copy_text_has_one_line_per_row_and_the_right_field_count() {
        let tables = encode(&Dataset::generate(GenOptions { seed: 1, customers: 300 }));
        for t in &tables {
            let fields = t.columns.split(',').count();
            let text = std::str::from_utf8(&t.text).unwrap();
            assert_eq!(text.lines().count(), t.rows, "{}", t.table);
            assert!(text.lines().all(|l| l.split('\t').count() == fields), "{}", t.table);
        }
    }
}
