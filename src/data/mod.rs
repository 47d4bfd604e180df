//! The Zava dataset: reference data (stores, catalog, names), the deterministic generator, and the loader.

pub mod catalog;
pub mod encode;
pub mod generate;
pub mod load;
mod names;
mod sampling;
pub mod stores;
