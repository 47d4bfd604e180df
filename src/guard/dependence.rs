//! What a statement's result depends on besides the retail rows its caller may see: the clock, chance, the
//! catalog, a random sample, the planner's statistics. The result cache (`crate::results`) reuses a result only
//! when it depends on nothing else, so that serving it again is exactly what running the statement again would
//! have returned on the same data.
//!
//! The question is answered during the guard's walk, from the same parse tree, and it errs towards "something
//! else": a statement is data-only when every function it calls is IMMUTABLE in every overload (or on a short list
//! of STABLE functions whose only other input is one of the session's settings, which the server fixes and a query
//! cannot change), it names no clock (`CURRENT_DATE`, `now()`), holds no literal that date/time input reads as
//! the current time (`'now'`, `'today'`, `'tomorrow'`, `'yesterday'`, in any case or spelling of the string),
//! converts into a date/time type only literals and date/time values (a text value converted at run time could be
//! one of those words), reads only the `retail` schema (not the system catalog, whose rows change with the
//! schema and the statistics), samples no rows at random and is not an `EXPLAIN`.

use std::cell::Cell;

use serde_json::Value;

use super::FunctionPolicy;

/// What a statement's result depends on, as far as reusing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependence {
    /// Only the retail rows the caller may see (and the server's fixed session settings): running it again on
    /// the same data returns the same result.
    DataOnly,
    /// Something else too, and what, in words for logs and tests.
    Other(&'static str),
}

const UNDETERMINED_FUNCTION: &str =
    "it calls a function whose result does not follow from its arguments (the clock, a setting, the catalog, chance)";
const CLOCK: &str = "it reads the clock (CURRENT_DATE, CURRENT_TIMESTAMP, LOCALTIME…)";
const TIME_WORD: &str = "it holds a literal that date/time input reads as the current time ('now', 'today'…)";
const CATALOG: &str = "it reads the system catalog, which changes with the schema and the statistics";
const OUTSIDE_RETAIL: &str = "it reads a relation outside the retail schema";
const SAMPLE: &str = "TABLESAMPLE without REPEATABLE picks different rows each time";
const CATALOG_TYPE: &str = "it converts into a catalog type (regclass…), which looks the catalog up";
const RUN_TIME_DATE: &str =
    "it converts a value computed at run time into a date/time type, which reads 'now' or 'today' as the current time";
const FIELD_CALL: &str = "attribute notation calls a function whose result does not follow from its arguments";
pub(crate) const PLAN: &str = "EXPLAIN shows a plan, which follows the planner's statistics";

/// STABLE functions (in some overload) whose result follows from their arguments and the session's settings
/// only (TimeZone, DateStyle, the locale, the default text search configuration): output functions of
/// timestamptz, time zone arithmetic, text search parsing. Never the clock (`now`, `age(x)`), settings as
/// values (`current_setting`), the catalog (`pg_get_*`, `has_*_privilege`, `to_reg*`) or record population from
/// JSON (`json_populate_record` reads a date field through date/time input).
const SETTINGS_ONLY: &[&str] = &[
    "array_to_json",
    "array_to_string",
    "concat",
    "concat_ws",
    "convert_from",
    "convert_to",
    "date_part",
    "date_trunc",
    "extract",
    "format",
    "generate_series",
    "json_agg",
    "json_build_array",
    "json_build_object",
    "json_object_agg",
    "jsonb_agg",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_object_agg",
    "length",
    "make_timestamptz",
    "numeric",
    "overlaps",
    "phraseto_tsquery",
    "plainto_tsquery",
    "quote_literal",
    "quote_nullable",
    "row_to_json",
    "timezone",
    "to_char",
    "to_date",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_timestamp",
    "to_tsquery",
    "to_tsvector",
    "ts_headline",
    "websearch_to_tsquery",
];

/// Date/time types, whose input reads the words of [`TIME_WORDS`] as the current time.
const TIME_TYPES: &[&str] = &["date", "time", "timetz", "timestamp", "timestamptz"];

/// What date/time input reads as the current time (PostgreSQL's special values "now", "today", "tomorrow" and
/// "yesterday"); looked for anywhere in a literal, in any case.
const TIME_WORDS: &[&str] = &["now", "today", "tomorrow", "yesterday"];

/// Functions that return a date/time value: converting their result into a date/time type runs a cast function,
/// not date/time input.
const DATE_VALUED: &[&str] = &[
    "date_trunc",
    "date_bin",
    "make_date",
    "make_timestamp",
    "make_timestamptz",
    "to_timestamp",
    "to_date",
    "timezone",
    "date_add",
    "date_subtract",
];

impl FunctionPolicy {
    /// Whether a call of `name` returns what its arguments (and the session's fixed settings) determine: every
    /// overload IMMUTABLE, or one of [`SETTINGS_ONLY`] with no VOLATILE overload. Without catalog knowledge,
    /// never.
    pub(crate) fn is_deterministic(&self, name: &str) -> bool {
        let Some(overloads) = self.overloads(name) else { return false };
        overloads.iter().all(|&v| v == 'i')
            || (SETTINGS_ONLY.contains(&name.to_ascii_lowercase().as_str()) && !overloads.contains(&'v'))
    }
}

/// Notes, node by node during the guard's walk, the first thing the statement depends on besides its data.
pub(crate) struct Tracker<'p> {
    policy: &'p FunctionPolicy,
    first: Cell<Option<&'static str>>,
}

impl<'p> Tracker<'p> {
    pub(crate) fn new(policy: &'p FunctionPolicy) -> Self {
        Self { policy, first: Cell::new(None) }
    }

    /// The verdict once the walk is over.
    pub(crate) fn finish(&self) -> Dependence {
        self.first.get().map_or(Dependence::DataOnly, Dependence::Other)
    }

    /// Notes `why`, unless something was noted before.
    pub(crate) fn note(&self, why: &'static str) {
        if self.first.get().is_none() {
            self.first.set(Some(why));
        }
    }

    /// Looks at one node of the tree (its kind and body, as the walk sees them).
    pub(crate) fn observe(&self, kind: &str, body: &Value, names: impl Fn(Option<&Value>) -> Vec<String>) {
        if self.first.get().is_some() {
            return;
        }
        match kind {
            "FuncCall" if names(body.get("funcname")).last().is_none_or(|name| !self.policy.is_deterministic(name)) => {
                self.note(UNDETERMINED_FUNCTION);
            }
            // SQLValueFunction: ops 1 to 9 are CURRENT_DATE … LOCALTIMESTAMP(n); the rest name the role, the
            // catalog or the schema, which the caller's access and the server fix.
            "SqlvalueFunction" if body.get("op").and_then(Value::as_i64).is_some_and(|op| (1..=9).contains(&op)) => {
                self.note(CLOCK);
            }
            "AConst" if has_time_word(body) => self.note(TIME_WORD),
            "RangeVar" => {
                let part = |key| body.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
                match (part("schemaname"), part("relname").unwrap_or_default()) {
                    (None, name) if name.starts_with("pg_") => self.note(CATALOG),
                    (Some(schema), _) if !schema.eq_ignore_ascii_case("retail") => self.note(OUTSIDE_RETAIL),
                    _ => {}
                }
            }
            "RangeTableSample" if body.get("repeatable").is_none_or(Value::is_null) => self.note(SAMPLE),
            "TypeCast" => {
                let target = names(body.get("type_name").and_then(|t| t.get("names")));
                let target = target.last().map(|t| t.to_ascii_lowercase()).unwrap_or_default();
                if target.starts_with("reg") {
                    self.note(CATALOG_TYPE);
                } else if TIME_TYPES.contains(&target.as_str()) && !self.date_valued(body.get("arg"), &names) {
                    self.note(RUN_TIME_DATE);
                }
            }
            "ColumnRef" => self.fields(names(body.get("fields")).iter().skip(1)),
            "AIndirection" => self.fields(names(body.get("indirection")).iter()),
            _ => {}
        }
    }

    /// Whether the value a date/time cast converts is a literal (checked for time words where it is visited),
    /// a date/time-valued call, or another date/time cast (judged itself).
    fn date_valued(&self, arg: Option<&Value>, names: &impl Fn(Option<&Value>) -> Vec<String>) -> bool {
        let Some((kind, body)) = arg.and_then(|a| a.get("node")).and_then(Value::as_object).and_then(|o| {
            let mut entries = o.iter();
            entries.next().filter(|_| o.len() == 1)
        }) else {
            return false;
        };
        match kind.as_str() {
            "AConst" => true,
            "FuncCall" => names(body.get("funcname"))
                .last()
                .is_some_and(|f| DATE_VALUED.contains(&f.to_ascii_lowercase().as_str())),
            "TypeCast" => names(body.get("type_name").and_then(|t| t.get("names")))
                .last()
                .is_some_and(|t| TIME_TYPES.contains(&t.to_ascii_lowercase().as_str())),
            _ => false,
        }
    }

    /// Field names of `x.f` or `(x).f` that PostgreSQL may read as a call `f(x)`.
    fn fields<'n>(&self, names: impl Iterator<Item = &'n String>) {
        for name in names.filter(|n| *n != "*") {
            if self.policy.overloads(name).is_some() && !self.policy.is_deterministic(name) {
                self.note(FIELD_CALL);
            }
        }
    }
}

/// Whether any string inside a constant holds one of [`TIME_WORDS`].
fn has_time_word(value: &Value) -> bool {
    match value {
        Value::String(s) => {
            let lower = s.to_lowercase();
            TIME_WORDS.iter().any(|w| lower.contains(w))
        }
        Value::Array(items) => items.iter().any(has_time_word),
        Value::Object(fields) => fields.values().any(has_time_word),
        _ => false,
    }
}
