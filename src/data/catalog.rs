//! The Zava product catalog: categories, product types and products, read from the TOML files in `data/catalog/`.
//!
//! The catalog is hand-written data compiled into the binary (not random strings): semantic search quality
//! depends on real names and descriptions. This module parses it once and checks the rules the rest of the
//! system relies on (unique SKUs and names, description length, 12 seasonal multipliers).

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::Deserialize;

/// The catalog files, in category-id order.
const FILES: [(&str, &str); 9] = [
    ("hand_tools.toml", include_str!("../../data/catalog/hand_tools.toml")),
    ("power_tools.toml", include_str!("../../data/catalog/power_tools.toml")),
    ("paint_finishes.toml", include_str!("../../data/catalog/paint_finishes.toml")),
    ("hardware.toml", include_str!("../../data/catalog/hardware.toml")),
    ("lumber_building.toml", include_str!("../../data/catalog/lumber_building.toml")),
    ("electrical.toml", include_str!("../../data/catalog/electrical.toml")),
    ("plumbing.toml", include_str!("../../data/catalog/plumbing.toml")),
    ("garden_outdoor.toml", include_str!("../../data/catalog/garden_outdoor.toml")),
    ("storage_organization.toml", include_str!("../../data/catalog/storage_organization.toml")),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    #[serde(rename = "category")]
    pub name: String,
    pub code: String,
    /// Washington State demand multipliers, January to December.
    pub seasonal: Vec<f64>,
    pub types: Vec<ProductType>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductType {
    pub name: String,
    pub code: String,
    /// What the type is for, in a shopper's words: embedded and indexed with every product of the type so that
    /// search can tell the aisles apart.
    pub about: String,
    pub products: Vec<Product>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub name: String,
    /// Wholesale cost in USD.
    pub cost: f64,
    pub description: String,
}

/// Every product with the ids it gets in the database (1-based, in catalog order).
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry<'a> {
    pub product_id: u32,
    pub category_id: u32,
    pub type_id: u32,
    pub sku: &'a str,
    pub product: &'a Product,
    /// Cost in cents.
    pub cost_cents: i64,
}

#[derive(Debug)]
pub struct Catalog {
    pub categories: Vec<Category>,
    skus: Vec<String>,
}

impl Catalog {
    /// The catalog compiled into this binary. Panics only if the shipped data breaks its own rules, which the
    /// unit tests below rule out.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| Catalog::parse(&FILES).unwrap_or_else(|e| panic!("built-in catalog is invalid: {e}")))
    }

    fn parse(files: &[(&str, &str)]) -> Result<Catalog, String> {
        let mut categories = Vec::new();
        for (file, text) in files {
            let category: Category = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
            categories.push(category);
        }
        let mut skus = Vec::new();
        for c in &categories {
            for t in &c.types {
                for (i, _) in t.products.iter().enumerate() {
                    skus.push(format!("{}{}{:03}", c.code, t.code, i + 1));
                }
            }
        }
        let catalog = Catalog { categories, skus };
        catalog.validate()?;
        Ok(catalog)
    }

    fn validate(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        let mut skus = HashSet::new();
        for c in &self.categories {
            if c.seasonal.len() != 12 || c.seasonal.iter().any(|m| m.is_nan() || *m <= 0.0) {
                return Err(format!("{}: seasonal needs 12 positive multipliers", c.name));
            }
            if c.code.len() != 2 {
                return Err(format!("{}: category code must be 2 letters", c.name));
            }
            for t in &c.types {
                if t.code.len() != 3 || t.products.is_empty() {
                    return Err(format!("{} / {}: type code must be 3 letters, with products", c.name, t.name));
                }
                let words = t.about.split_whitespace().count();
                if !(20..=100).contains(&words) {
                    return Err(format!("{} / {}: about has {words} words (20-100 expected)", c.name, t.name));
                }
                for p in &t.products {
                    let words = p.description.split_whitespace().count();
                    if !(25..=60).contains(&words) {
                        return Err(format!("{}: description has {words} words (25-60 expected)", p.name));
                    }
                    if p.cost.is_nan() || p.cost <= 0.0 {
                        return Err(format!("{}: cost must be positive", p.name));
                    }
                    if !names.insert(p.name.as_str()) {
                        return Err(format!("duplicate product name {}", p.name));
                    }
                }
            }
        }
        for sku in &self.skus {
            if !skus.insert(sku.as_str()) {
                return Err(format!("duplicate SKU {sku}"));
            }
        }
        Ok(())
    }

    /// All products with their database ids, in id order.
    pub fn entries(&self) -> Vec<CatalogEntry<'_>> {
        let mut out = Vec::with_capacity(self.skus.len());
        let mut type_id = 0;
        for (ci, c) in self.categories.iter().enumerate() {
            for t in &c.types {
                type_id += 1;
                for p in &t.products {
                    let i = out.len();
                    out.push(CatalogEntry {
                        product_id: i as u32 + 1,
                        category_id: ci as u32 + 1,
                        type_id,
                        sku: &self.skus[i],
                        product: p,
                        cost_cents: (p.cost * 100.0).round() as i64,
                    });
                }
            }
        }
        out
    }

    pub fn product_count(&self) -> usize {
        self.skus.len()
    }
}

/// Retail price from cost with the chain's 33 % gross margin: round(cost / 0.67), in cents.
pub fn base_price_cents(cost_cents: i64) -> i64 {
    (cost_cents * 200 + 67) / 134
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_complete() {
        let c = Catalog::builtin();
        assert_eq!(c.categories.len(), 9);
        assert!(c.product_count() >= 400, "only {} products", c.product_count());
        for cat in &c.categories {
            assert!(cat.types.len() >= 6, "{} has {} types", cat.name, cat.types.len());
        }
        let names: Vec<_> = c.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "HAND TOOLS",
                "POWER TOOLS",
                "PAINT & FINISHES",
                "HARDWARE",
                "LUMBER & BUILDING MATERIALS",
                "ELECTRICAL",
                "PLUMBING",
                "GARDEN & OUTDOOR",
                "STORAGE & ORGANIZATION"
            ]
        );
    }

    #[test]
    fn skus_follow_the_origin_format() {
        let entries = Catalog::builtin().entries();
        assert!(entries.iter().any(|e| e.sku == "LBPLW001"));
        assert!(entries.iter().all(|e| e.sku.len() == 8 && e.sku.is_ascii()));
    }

    #[test]
    fn price_has_a_33_percent_margin() {
        assert_eq!(base_price_cents(6700), 10000);
        assert_eq!(base_price_cents(1140), 1701); // 11.40 / 0.67 = 17.0149
        let margin: f64 = 1.0 - 1140.0 / 1701.0;
        assert!((margin - 0.33).abs() < 0.001);
    }

    #[test]
    fn a_broken_catalog_is_refused_with_the_reason() {
        let bad = "category = \"X\"\ncode = \"XX\"\nseasonal = [1.0]\ntypes = []\n";
        let err = Catalog::parse(&[("x.toml", bad)]).unwrap_err();
        assert!(err.contains("12 positive multipliers"), "{err}");
    }
}
