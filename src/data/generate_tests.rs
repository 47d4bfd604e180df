//! Distribution checks for the generator, with tolerances, on a mid-sized dataset.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::Datelike;

use super::*;

fn data() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| Dataset::generate(GenOptions { seed: 42, customers: 20_000 }))
}

fn share<K: std::hash::Hash + Eq>(items: impl Iterator<Item = K>) -> HashMap<K, f64> {
    let mut counts: HashMap<K, f64> = HashMap::new();
    let mut total = 0.0;
    for k in items {
        *counts.entry(k).or_default() += 1.0;
        total += 1.0;
    }
    counts.values_mut().for_each(|v| *v /= total);
    counts
}

#[test]
fn volumes_scale_with_customers_like_the_origin() {
    let d = data();
    let per_customer = d.orders.len() as f64 / 20_000.0;
    let per_order = d.items.len() as f64 / d.orders.len() as f64;
    assert!((3.8..4.15).contains(&per_customer), "orders per customer {per_customer}");
    assert!((2.0..2.2).contains(&per_order), "items per order {per_order}");
    assert_eq!(d.inventory.len(), 8 * d.products.len());
    assert!(d.orders.windows(2).all(|w| w[0].date <= w[1].date && w[0].id + 1 == w[1].id));
}

#[test]
fn store_shares_follow_the_weights_and_frequencies() {
    let d = data();
    let customers = share(d.customers.iter().map(|c| c.primary_store_id));
    let orders = share(d.orders.iter().map(|o| o.store_id));
    // ORIGIN.md §1.7 derived shares (customers: weight / 130; orders: weight × frequency, normalised).
    for (store, cust, ord) in
        [(1, 0.231, 0.278), (2, 0.192, 0.183), (3, 0.154, 0.135), (7, 0.031, 0.015), (8, 0.231, 0.278)]
    {
        assert!((customers[&store] - cust).abs() < 0.012, "store {store} customers {}", customers[&store]);
        assert!((orders[&store] - ord).abs() < 0.015, "store {store} orders {}", orders[&store]);
    }
}

#[test]
fn years_grow_with_a_dip_in_2023() {
    let years = share(data().orders.iter().map(|o| o.date.year()));
    let total: f64 = YEAR_WEIGHTS.iter().map(|(_, w)| w).sum();
    for (year, w) in YEAR_WEIGHTS {
        assert!((years[&year] - w / total).abs() < 0.006, "{year}: {}", years[&year]);
    }
    assert!(years[&2023] < years[&2022] && years[&2024] > years[&2023] && years[&2026] > years[&2025]);
}

#[test]
fn categories_peak_in_their_washington_season() {
    let d = data();
    let category_of: HashMap<u32, u32> = d.products.iter().map(|p| (p.product_id, p.category_id)).collect();
    let month_of: HashMap<u32, u32> = d.orders.iter().map(|o| (o.id, o.date.month())).collect();
    // Share of a category's units sold in its peak month versus its low month.
    let units = |category: u32, month: u32| -> f64 {
        d.items
            .iter()
            .filter(|i| category_of[&i.product_id] == category && month_of[&i.order_id] == month)
            .map(|i| i.quantity as f64)
            .sum()
    };
    // The share a category gets in a month: 85 % of orders pick it by seasonal weight, 15 % uniformly.
    let catalog = crate::data::catalog::Catalog::builtin();
    let expected_share = |category: u32, month: u32| -> f64 {
        let m = month as usize - 1;
        let total: f64 = catalog.categories.iter().map(|c| c.seasonal[m]).sum();
        0.85 * catalog.categories[category as usize - 1].seasonal[m] / total + 0.15 / 9.0
    };
    // category ids follow catalog order: 2 power tools, 3 paint, 5 lumber, 6 electrical, 8 garden
    for (category, peak, low) in [(2, 7, 12), (3, 4, 12), (5, 7, 1), (6, 12, 6), (8, 5, 12)] {
        let ratio = units(category, peak) / units(category, low);
        let expected = expected_share(category, peak) / expected_share(category, low);
        assert!(expected > 1.3, "the test needs a real peak for category {category}");
        assert!(
            (ratio / expected - 1.0).abs() < 0.2,
            "category {category}: peak/low {ratio:.2}, expected {expected:.2}"
        );
    }
}

#[test]
fn prices_margins_and_discounts_match_the_origin() {
    let d = data();
    let price: HashMap<u32, i64> =
        d.products.iter().map(|p| (p.product_id, crate::data::catalog::base_price_cents(p.cost_cents))).collect();
    for p in &d.products {
        let margin = 1.0 - p.cost_cents as f64 / price[&p.product_id] as f64;
        assert!((margin - 0.33).abs() < 0.01, "{} margin {margin}", p.sku);
    }
    let mut discounted = 0usize;
    for i in &d.items {
        let list = price[&i.product_id] as f64;
        assert!((i.unit_price_cents as f64) >= list * 0.8 - 1.0 && (i.unit_price_cents as f64) <= list * 1.2 + 1.0);
        assert!((1..=5).contains(&i.quantity));
        assert_eq!(i.total_cents, i.unit_price_cents * i.quantity - i.discount_cents);
        if i.discount_percent > 0 {
            discounted += 1;
            assert!([5, 10, 15, 20, 25].contains(&i.discount_percent));
        }
    }
    let rate = discounted as f64 / d.items.len() as f64;
    assert!((rate - 0.15).abs() < 0.01, "discount rate {rate}");
}
