//! The eight Zava stores: names, manager identities and the weights that shape the generated data.
//!
//! These are fixed reference facts from the origin system (ORIGIN.md §1.6): the names and UUIDs are part of the
//! contract (clients are configured with them), and the weights drive customer and order distribution.

use uuid::{Uuid, uuid};

/// One store as the generator and the seed know it.
#[derive(Debug, Clone, Copy)]
pub struct StoreSpec {
    pub name: &'static str,
    pub manager: Uuid,
    pub is_online: bool,
    /// Relative share of customers whose primary store this is (and of customers who order here).
    pub customer_weight: u32,
    /// Multiplies a customer's base number of orders when they order here.
    pub order_frequency: f64,
}

/// The stores in `store_id` order (1-based ids follow this order).
pub const STORES: [StoreSpec; 8] = [
    store("Zava Retail Seattle", uuid!("f47ac10b-58cc-4372-a567-0e02b2c3d479"), 30, 3.0),
    store("Zava Retail Bellevue", uuid!("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), 25, 2.6),
    store("Zava Retail Tacoma", uuid!("a1b2c3d4-e5f6-7890-abcd-ef1234567890"), 20, 2.4),
    store("Zava Retail Spokane", uuid!("d8e9f0a1-b2c3-4567-8901-234567890abc"), 8, 2.0),
    store("Zava Retail Everett", uuid!("3b9ac9fa-cd5e-4b92-a7f2-b8c1d0e9f2a3"), 7, 1.8),
    store("Zava Retail Redmond", uuid!("e7f8a9b0-c1d2-3e4f-5678-90abcdef1234"), 6, 1.6),
    store("Zava Retail Kirkland", uuid!("9c8b7a65-4321-fed0-9876-543210fedcba"), 4, 1.4),
    StoreSpec {
        is_online: true,
        ..store("Zava Retail Online", uuid!("2f4e6d8c-1a3b-5c7e-9f0a-b2d4f6e8c0a2"), 30, 3.0)
    },
];

const fn store(name: &'static str, manager: Uuid, customer_weight: u32, order_frequency: f64) -> StoreSpec {
    StoreSpec { name, manager, is_online: false, customer_weight, order_frequency }
}

/// The store a manager runs, by the short name people use ("seattle", "online") or the full name.
pub fn find_store(name: &str) -> Option<&'static StoreSpec> {
    let wanted = name.trim().to_ascii_lowercase();
    STORES.iter().find(|s| {
        let full = s.name.to_ascii_lowercase();
        full == wanted || full.strip_prefix("zava retail ") == Some(wanted.as_str())
    })
}
