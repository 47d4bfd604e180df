//! Product search: the request contract of `semantic_search_products` and the hybrid query behind it.
//!
//! Products are shared data, but the search still runs inside the caller's tenant transaction like every other
//! tool. Three modes: `semantic` (cosine similarity to the query's embedding, grouped by product type; the
//! default, because it measures best), `keyword` (PostgreSQL full-text search over SKU, name, type, category,
//! description and what the type is for), and `hybrid`, which fuses the two rankings by Reciprocal Rank Fusion.
//! In every mode a query that is exactly a SKU returns that product first.

mod query;

pub use query::{SearchHit, SearchStatement, search};

use serde::Deserialize;

/// How results are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// The default: it ranks best on `data/search_eval.toml` (see `cargo bench --bench search`).
    #[default]
    Semantic,
    Keyword,
    Hybrid,
}

/// A validated search request (the origin's parameters, checked instead of silently clamped).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub text: String,
    pub max_rows: u32,
    /// Minimum similarity in percent (0-100); applies to the semantic half.
    pub threshold_percent: f64,
    pub mode: SearchMode,
}

pub const MAX_QUERY_CHARS: usize = 1_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SearchRequestError {
    #[error("query_description is empty: describe the product, e.g. 'waterproof electrical box for outdoor use'")]
    EmptyQuery,
    #[error("query_description is {0} characters long; keep it under {MAX_QUERY_CHARS}")]
    QueryTooLong(usize),
    #[error("max_rows must be between 1 and 100, not {0}")]
    MaxRows(i64),
    #[error("similarity_threshold is a percentage between 0 and 100 (30 is a good start), not {0}")]
    Threshold(f64),
}

impl SearchRequest {
    pub fn new(
        text: &str,
        max_rows: Option<i64>,
        threshold: Option<f64>,
        mode: Option<SearchMode>,
    ) -> Result<Self, SearchRequestError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SearchRequestError::EmptyQuery);
        }
        let chars = text.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(SearchRequestError::QueryTooLong(chars));
        }
        let max_rows = max_rows.unwrap_or(20);
        if !(1..=100).contains(&max_rows) {
            return Err(SearchRequestError::MaxRows(max_rows));
        }
        let threshold_percent = threshold.unwrap_or(30.0);
        if !threshold_percent.is_finite() || !(0.0..=100.0).contains(&threshold_percent) {
            return Err(SearchRequestError::Threshold(threshold_percent));
        }
        Ok(Self { text: text.to_owned(), max_rows: max_rows as u32, threshold_percent, mode: mode.unwrap_or_default() })
    }

    /// The largest cosine distance the threshold admits (the origin's `1 - threshold / 100`).
    pub fn max_distance(&self) -> f64 {
        1.0 - self.threshold_percent / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_origin() {
        let r = SearchRequest::new("  15 amp breaker ", None, None, None).unwrap();
        assert_eq!(
            (r.text.as_str(), r.max_rows, r.threshold_percent, r.mode),
            ("15 amp breaker", 20, 30.0, SearchMode::Semantic)
        );
        assert!((r.max_distance() - 0.7).abs() < 1e-12);
    }

    #[test]
    fn out_of_range_parameters_are_errors_not_empty_results() {
        assert_eq!(SearchRequest::new(" ", None, None, None), Err(SearchRequestError::EmptyQuery));
        assert_eq!(SearchRequest::new("x", Some(0), None, None), Err(SearchRequestError::MaxRows(0)));
        assert_eq!(SearchRequest::new("x", Some(101), None, None), Err(SearchRequestError::MaxRows(101)));
        assert_eq!(SearchRequest::new("x", None, Some(120.0), None), Err(SearchRequestError::Threshold(120.0)));
        assert_eq!(SearchRequest::new("x", None, Some(-1.0), None), Err(SearchRequestError::Threshold(-1.0)));
        assert!(matches!(SearchRequest::new("x", None, Some(f64::NAN), None), Err(SearchRequestError::Threshold(_))));
        assert!(matches!(
            SearchRequest::new(&"x".repeat(1001), None, None, None),
            Err(SearchRequestError::QueryTooLong(1001))
        ));
        assert!(SearchRequest::new("x", Some(100), Some(0.0), Some(SearchMode::Keyword)).is_ok());
    }
}
