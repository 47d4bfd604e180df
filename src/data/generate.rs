//! The deterministic Zava dataset generator (ORIGIN.md §1.7).
//!
//! It reproduces the origin's distributions: customers spread over stores by weight, each customer ordering at
//! one store a number of times scaled by that store's order frequency, order years weighted for growth with a
//! 2023 dip, categories chosen by Washington seasonality, 1-5 items of 1-5 units, prices within ±20 % of list,
//! 15 % of lines discounted, and stock per store and product. Money is computed in integer cents so the output
//! does not depend on float formatting. The same seed and scale always give the same rows.

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use super::catalog::{Catalog, CatalogEntry, base_price_cents};
use super::names::Names;
use super::sampling::{Sampler, Weighted};
use super::stores::STORES;

/// How much data to make, and from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenOptions {
    pub seed: u64,
    pub customers: u32,
}

impl GenOptions {
    pub const DEFAULT_SEED: u64 = 42;
    pub const FULL_SCALE_CUSTOMERS: u32 = 50_000;
}

impl Default for GenOptions {
    fn default() -> Self {
        Self { seed: Self::DEFAULT_SEED, customers: Self::FULL_SCALE_CUSTOMERS }
    }
}

/// Order years and their relative weights: steady growth with a dip in 2023.
pub const YEAR_WEIGHTS: [(i32, f64); 7] =
    [(2020, 1.0), (2021, 1.1), (2022, 1.21), (2023, 1.15), (2024, 1.265), (2025, 1.392), (2026, 1.531)];
/// Base orders per customer (0-5) before the store's frequency multiplier.
const BASE_ORDER_WEIGHTS: [f64; 6] = [20.0, 40.0, 20.0, 10.0, 7.0, 3.0];
/// Items per order (1-5).
const ITEM_COUNT_WEIGHTS: [f64; 5] = [40.0, 30.0, 15.0, 10.0, 5.0];
/// Units per line (1-5).
const QUANTITY_WEIGHTS: [f64; 5] = [60.0, 25.0, 10.0, 3.0, 2.0];
const SEASONAL_CATEGORY_P: f64 = 0.85;
const SAME_CATEGORY_ITEM_P: f64 = 0.9;
const DISCOUNT_P: f64 = 0.15;
const DISCOUNTS: [i64; 5] = [5, 10, 15, 20, 25];

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: u32,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub phone: (u16, u16, u16),
    pub primary_store_id: u32,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Copy)]
pub struct Order {
    pub id: u32,
    pub customer_id: u32,
    pub store_id: u32,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, Copy)]
pub struct OrderItem {
    pub id: u32,
    pub order_id: u32,
    pub store_id: u32,
    pub product_id: u32,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub discount_percent: i64,
    pub discount_cents: i64,
    pub total_cents: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct StockLevel {
    pub store_id: u32,
    pub product_id: u32,
    pub stock: i64,
}

/// Everything the seed loads, as rows.
pub struct Dataset {
    pub options: GenOptions,
    pub products: Vec<CatalogEntry<'static>>,
    pub customers: Vec<Customer>,
    pub orders: Vec<Order>,
    pub items: Vec<OrderItem>,
    pub inventory: Vec<StockLevel>,
}

impl Dataset {
    pub fn generate(options: GenOptions) -> Dataset {
        let catalog = Catalog::builtin();
        let products = catalog.entries();
        let mut s = Sampler::new(options.seed);
        let customers = customers(&mut s, options.customers);
        let orders = orders(&mut s, options.customers);
        let items = items(&mut s, catalog, &products, &orders);
        let inventory = inventory(&mut s, catalog, &products);
        Dataset { options, products, customers, orders, items, inventory }
    }
}

fn store_weights() -> Weighted {
    Weighted::new(&STORES.map(|s| s.customer_weight as f64))
}

fn customers(s: &mut Sampler, n: u32) -> Vec<Customer> {
    let names = Names::builtin();
    let stores = store_weights();
    let year_start = NaiveDate::from_ymd_opt(2019, 1, 1).expect("valid date").and_hms_opt(0, 0, 0).expect("midnight");
    (1..=n)
        .map(|id| Customer {
            id,
            first_name: names.first[s.index(names.first.len())],
            last_name: names.last[s.index(names.last.len())],
            phone: (s.int(200, 999) as u16, s.int(200, 999) as u16, s.int(1000, 9999) as u16),
            primary_store_id: s.pick(&stores) as u32 + 1,
            created_at: year_start + chrono::Duration::seconds(s.int(0, 365 * 86_400 - 1)),
        })
        .collect()
}

/// Order headers, numbered in date order (ties keep generation order).
fn orders(s: &mut Sampler, customers: u32) -> Vec<Order> {
    let stores = store_weights();
    let base = Weighted::new(&BASE_ORDER_WEIGHTS);
    let years = Weighted::new(&YEAR_WEIGHTS.map(|(_, w)| w));
    let mut out = Vec::with_capacity(customers as usize * 4);
    for customer_id in 1..=customers {
        let store = s.pick(&stores);
        let base_orders = s.pick(&base) as f64;
        let count = ((base_orders * STORES[store].order_frequency) as u32).max(1);
        for _ in 0..count {
            let year = YEAR_WEIGHTS[s.pick(&years)].0;
            let month = s.int(1, 12) as u32;
            let day = s.int(1, days_in_month(year, month) as i64) as u32;
            let date = NaiveDate::from_ymd_opt(year, month, day).expect("day within month");
            out.push(Order { id: 0, customer_id, store_id: store as u32 + 1, date });
        }
    }
    out.sort_by_key(|o| o.date); // stable: equal dates keep generation order
    for (i, o) in out.iter_mut().enumerate() {
        o.id = i as u32 + 1;
    }
    out
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let next =
        if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) };
    next.expect("valid date").pred_opt().expect("valid date").day()
}

fn items(s: &mut Sampler, catalog: &Catalog, products: &[CatalogEntry<'_>], orders: &[Order]) -> Vec<OrderItem> {
    let n_categories = catalog.categories.len();
    let mut by_category: Vec<Vec<usize>> = vec![Vec::new(); n_categories];
    for (i, p) in products.iter().enumerate() {
        by_category[p.category_id as usize - 1].push(i);
    }
    let seasonal: Vec<Weighted> =
        (0..12).map(|m| Weighted::new(&catalog.categories.iter().map(|c| c.seasonal[m]).collect::<Vec<_>>())).collect();
    let item_counts = Weighted::new(&ITEM_COUNT_WEIGHTS);
    let quantities = Weighted::new(&QUANTITY_WEIGHTS);
    let mut out = Vec::with_capacity(orders.len() * 21 / 10);
    for o in orders {
        let month = o.date.month0() as usize;
        let category = if s.chance(SEASONAL_CATEGORY_P) { s.pick(&seasonal[month]) } else { s.index(n_categories) };
        let lines = s.pick(&item_counts) + 1;
        for _ in 0..lines {
            let product = if s.chance(SAME_CATEGORY_ITEM_P) {
                &products[by_category[category][s.index(by_category[category].len())]]
            } else {
                &products[s.index(products.len())]
            };
            let quantity = s.pick(&quantities) as i64 + 1;
            let list = base_price_cents(product.cost_cents);
            let unit = ((list as f64) * s.range(0.8, 1.2)).round() as i64;
            let discount_percent = if s.chance(DISCOUNT_P) { DISCOUNTS[s.index(DISCOUNTS.len())] } else { 0 };
            let gross = unit * quantity;
            let discount = (gross * discount_percent + 50) / 100;
            out.push(OrderItem {
                id: out.len() as u32 + 1,
                order_id: o.id,
                store_id: o.store_id,
                product_id: product.product_id,
                quantity,
                unit_price_cents: unit,
                discount_percent,
                discount_cents: discount,
                total_cents: gross - discount,
            });
        }
    }
    out
}

fn inventory(s: &mut Sampler, catalog: &Catalog, products: &[CatalogEntry<'_>]) -> Vec<StockLevel> {
    let avg_season: Vec<f64> = catalog.categories.iter().map(|c| c.seasonal.iter().sum::<f64>() / 12.0).collect();
    let mut out = Vec::with_capacity(STORES.len() * products.len());
    for (si, store) in STORES.iter().enumerate() {
        for p in products {
            let base = s.int(10, 100) as f64;
            let level =
                base * store.customer_weight as f64 * avg_season[p.category_id as usize - 1] * s.range(0.5, 1.5);
            out.push(StockLevel { store_id: si as u32 + 1, product_id: p.product_id, stock: (level as i64).max(1) });
        }
    }
    out
}

#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;
