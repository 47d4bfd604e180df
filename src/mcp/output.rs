//! Tool results as the model sees them: the origin's compact `{"c":[…],"r":[[…]],"n":N}` in the text content
//! and, for clients that read it, the same object plus column types as `structuredContent` (with an
//! `outputSchema`). Errors are tool results with `isError: true` whose text says what to change.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde_json::{Map, Value, json};

use crate::db::query::{self, QueryError, QueryOutput, Truncation};
use crate::embed::error::EmbedError;
use crate::guard::GuardError;

/// The success shape of `execute_sales_query`. The text is written once, straight from the rows; the structured
/// content then takes the rows themselves (no copy).
pub fn query_result(out: QueryOutput) -> CallToolResult {
    let note = out.truncated.map(|t| {
        let why = match t {
            Truncation::Rows(n) => format!("only the first {n} rows are shown"),
            Truncation::Bytes(n) => format!("the result was cut at {} KiB", n / 1024),
        };
        format!("{why}; aggregate (GROUP BY, SUM, COUNT) or add LIMIT to get a complete answer")
    });
    let compact = Compact {
        c: out.columns.iter().map(|c| c.name.as_str()).collect(),
        r: &out.rows,
        n: out.rows.len(),
        msg: out.rows.is_empty().then_some(NO_ROWS),
        truncated: note.as_ref().map(|_| true),
        note: note.as_deref(),
    };
    // Serialising values already in memory cannot fail.
    let text = serde_json::to_string(&compact).unwrap_or_default();
    let n = out.rows.len();
    let mut structured = Map::new();
    structured.insert("c".into(), out.columns.iter().map(|c| Value::from(c.name.as_str())).collect());
    structured.insert("r".into(), out.rows.into_iter().map(Value::Array).collect());
    structured.insert("n".into(), n.into());
    if n == 0 {
        structured.insert("msg".into(), NO_ROWS.into());
    }
    if let Some(note) = note {
        structured.insert("truncated".into(), true.into());
        structured.insert("note".into(), note.into());
    }
    structured.insert("t".into(), out.columns.iter().map(|c| Value::from(c.pg_type.as_str())).collect());
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(Value::Object(structured));
    result
}

const NO_ROWS: &str = "No rows";

/// The text content of a query result, in the origin's key order.
#[derive(serde::Serialize)]
struct Compact<'a> {
    c: Vec<&'a str>,
    r: &'a [Vec<Value>],
    n: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    msg: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

/// The success shape of `semantic_search_products`: the origin's columns (with category and type names instead
/// of internal ids, and without cost and margin), `similarity_distance` and `sp`.
/// The note on a search answered by keyword because the catalog's vectors are not in yet.
pub const VECTORS_PENDING: &str = "the product catalog is still being embedded (the server has just been set up), so \
    these are keyword matches; semantic ranking follows within a minute: ask again then for similar products";

/// A search's hits in the origin's compact columns, with `note` (why the ranking is not the one asked for).
pub fn search_result(hits: &[crate::search::SearchHit], threshold_percent: f64, note: Option<&str>) -> CallToolResult {
    const COLUMNS: [&str; 9] = [
        "product_id",
        "sku",
        "product_name",
        "category_name",
        "type_name",
        "base_price",
        "product_description",
        "similarity_distance",
        "sp",
    ];
    const TYPES: [&str; 9] = ["int4", "text", "text", "text", "text", "numeric", "text", "float8", "numeric"];
    let price = |p: &str| p.parse::<f64>().map(Value::from).unwrap_or_else(|_| Value::from(p));
    let rows = hits
        .iter()
        .map(|h| {
            json!([
                h.product_id,
                h.sku,
                h.product_name,
                h.category_name,
                h.type_name,
                price(&h.base_price),
                h.product_description,
                h.similarity_distance,
                h.sp
            ])
        })
        .collect::<Vec<_>>();
    let mut compact = Map::new();
    if rows.is_empty() {
        compact.insert("c".into(), json!([]));
        compact.insert("r".into(), json!([]));
        compact.insert("n".into(), 0.into());
        compact.insert("msg".into(), format!("No products >= {threshold_percent:.1}%").into());
    } else {
        let n = rows.len();
        compact.insert("c".into(), json!(COLUMNS));
        compact.insert("r".into(), Value::Array(rows));
        compact.insert("n".into(), n.into());
    }
    if let Some(note) = note {
        compact.insert("note".into(), note.into());
    }
    let text = Value::Object(compact.clone()).to_string();
    if !hits.is_empty() {
        compact.insert("t".into(), json!(TYPES));
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(Value::Object(compact));
    result
}

/// A refusal or failure as a tool error: `{"err": message, ...details}` in both text and structured content.
pub fn error(message: impl Into<String>, details: Map<String, Value>) -> CallToolResult {
    let mut body = Map::new();
    body.insert("err".into(), Value::String(message.into()));
    body.extend(details);
    body.insert("c".into(), json!([]));
    body.insert("r".into(), json!([]));
    body.insert("n".into(), 0.into());
    let value = Value::Object(body);
    let mut result = CallToolResult::error(vec![ContentBlock::text(value.to_string())]);
    result.structured_content = Some(value);
    result
}

/// `semantic_search_products` could not embed the query: say why, when to retry if known, and that keyword
/// search still works.
pub fn semantic_search_unavailable(e: &EmbedError) -> CallToolResult {
    let mut details = Map::new();
    if let Some(wait) = e.retry_in() {
        details.insert("retry_in_s".into(), wait.as_secs_f64().ceil().into());
    }
    details.insert("working_mode".into(), "keyword".into());
    error(e.for_search(), details)
}

pub fn guard_error(e: &GuardError) -> CallToolResult {
    let mut details = Map::new();
    if let Some(p) = e.position() {
        details.insert("position".into(), p.into());
    }
    error(format!("Query refused: {e}"), details)
}

pub fn query_error(e: &QueryError) -> CallToolResult {
    match e {
        QueryError::Database { sqlstate, message, detail, hint, position } => {
            let mut details = Map::new();
            details.insert("sqlstate".into(), sqlstate.clone().into());
            for (k, v) in [("detail", detail), ("hint", hint)] {
                if let Some(v) = v {
                    details.insert(k.into(), v.clone().into());
                }
            }
            if let Some(p) = position {
                details.insert("position".into(), (*p).into());
            }
            error(format!("PostgreSQL query failed: {message}"), details)
        }
        QueryError::TooLarge { message, hint } => {
            let mut details = Map::new();
            if let Some(hint) = hint {
                details.insert("hint".into(), hint.clone().into());
            }
            error(format!("The result was refused: {message}."), details)
        }
        QueryError::TimedOut { .. } => {
            let mut details = Map::new();
            details.insert("sqlstate".into(), query::QUERY_CANCELED.into());
            details.insert(
                "hint".into(),
                "Filter (for example by date range), aggregate more, or LIMIT the rows the query has to visit.".into(),
            );
            error(e.to_string(), details)
        }
        QueryError::Interrupted => {
            let mut details = Map::new();
            details.insert("sqlstate".into(), query::QUERY_CANCELED.into());
            error(e.to_string(), details)
        }
        other => error(other.to_string(), Map::new()),
    }
}

/// The JSON Schema of `execute_sales_query`'s structured content.
pub fn query_output_schema() -> Arc<JsonObject> {
    let schema = json!({
        "type": "object",
        "properties": {
            "c": {"type": "array", "items": {"type": "string"}, "description": "column names, in order (duplicates kept)"},
            "r": {"type": "array", "items": {"type": "array"}, "description": "rows, each an array of values in column order"},
            "n": {"type": "integer", "description": "number of rows returned"},
            "t": {"type": "array", "items": {"type": "string"}, "description": "PostgreSQL type of each column"},
            "msg": {"type": "string"},
            "truncated": {"type": "boolean"},
            "note": {"type": "string"},
            "err": {"type": "string", "description": "present when the query was refused or failed"},
            "sqlstate": {"type": "string"},
            "detail": {"type": "string"},
            "hint": {"type": "string"},
            "position": {"type": "integer"}
        },
        "required": ["c", "r", "n"]
    });
    match schema {
        Value::Object(m) => Arc::new(m),
        _ => unreachable!("the schema literal is an object"),
    }
}
