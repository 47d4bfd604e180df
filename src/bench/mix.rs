//! What `zava-mcp bench` sends: a mix of tool calls read from a TOML file (the built-in `light`, `analytic`
//! and `search` mixes in `data/bench/`, or a file of the user's), each call with a weight, expanded once into
//! the sequence every caller walks through.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The mixes that ship with zava-mcp, by name.
const BUILT_IN: [(&str, &str); 3] = [
    ("light", include_str!("../../data/bench/light.toml")),
    ("analytic", include_str!("../../data/bench/analytic.toml")),
    ("search", include_str!("../../data/bench/search.toml")),
];

/// The tools a mix may call, with the argument a call of it must have.
const TOOLS: [(&str, Option<&str>); 4] = [
    ("execute_sales_query", Some("postgresql_query")),
    ("get_multiple_table_schemas", Some("table_names")),
    ("semantic_search_products", Some("query_description")),
    ("get_current_utc_date", None),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    name: String,
    #[serde(default)]
    description: String,
    /// Make every search text different (a word added per call), so no query embedding is served from cache.
    #[serde(default)]
    vary: bool,
    call: Vec<CallEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallEntry {
    #[serde(default)]
    name: Option<String>,
    tool: String,
    #[serde(default = "one")]
    weight: u32,
    arguments: Map<String, Value>,
}

fn one() -> u32 {
    1
}

/// One call of a mix, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct MixCall {
    /// A short name for reports: the entry's `name`, else the tool.
    pub(crate) label: String,
    pub(crate) tool: String,
    pub(crate) arguments: Map<String, Value>,
    /// The SQL, for `execute_sales_query` calls: what the floor sends straight to PostgreSQL.
    pub(crate) sql: Option<String>,
}

/// A loaded mix: its distinct calls and the weighted order in which callers take them.
#[derive(Debug, Clone)]
pub(crate) struct Mix {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) vary: bool,
    pub(crate) calls: Vec<MixCall>,
    /// Indexes into `calls`, each repeated by its weight and interleaved, so a short run still sees the mix.
    pub(crate) order: Vec<usize>,
}

impl Mix {
    /// A built-in mix by name, or a mix file.
    pub(crate) fn load(name_or_path: &str) -> Result<Mix> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Mix::parse(text).with_context(|| format!("the built-in mix {name_or_path}"));
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            let names: Vec<_> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            bail!("--mix {name_or_path}: no such mix; use one of {} or the path of a mix file", names.join(", "));
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Mix::parse(&text).with_context(|| format!("in the mix file {}", path.display()))
    }

    pub(crate) fn parse(text: &str) -> Result<Mix> {
        let file: MixFile = toml::from_str(text)?;
        if file.call.is_empty() {
            bail!("a mix needs at least one [[call]]");
        }
        let mut calls = Vec::new();
        let mut weights = Vec::new();
        for (i, entry) in file.call.into_iter().enumerate() {
            let Some((_, needs)) = TOOLS.iter().find(|(t, _)| *t == entry.tool) else {
                let known: Vec<_> = TOOLS.iter().map(|(t, _)| *t).collect();
                bail!("call {}: unknown tool {:?}; the tools are {}", i + 1, entry.tool, known.join(", "));
            };
            if let Some(arg) = needs
                && !entry.arguments.contains_key(*arg)
            {
                bail!("call {}: {} needs the argument {arg}", i + 1, entry.tool);
            }
            if !(1..=1000).contains(&entry.weight) {
                bail!("call {}: weight must be 1 to 1000, not {}", i + 1, entry.weight);
            }
            let sql = match entry.arguments.get("postgresql_query") {
                Some(Value::String(s)) => Some(s.trim().to_owned()),
                Some(_) => bail!("call {}: postgresql_query must be a string", i + 1),
                None => None,
            };
            weights.push(entry.weight);
            calls.push(MixCall {
                label: entry.name.unwrap_or_else(|| entry.tool.clone()),
                tool: entry.tool,
                arguments: entry.arguments,
                sql,
            });
        }
        Ok(Mix { name: file.name, description: file.description, vary: file.vary, order: interleave(&weights), calls })
    }

    /// The same mix with only the calls the floor can send (`execute_sales_query`), or None if it has none.
    pub(crate) fn sql_only(&self) -> Option<Mix> {
        let keep: Vec<usize> = (0..self.calls.len()).filter(|&i| self.calls[i].sql.is_some()).collect();
        if keep.is_empty() {
            return None;
        }
        let order = self.order.iter().filter_map(|i| keep.iter().position(|k| k == i)).collect();
        let calls = keep.iter().map(|&i| self.calls[i].clone()).collect();
        Some(Mix { calls, order, ..self.clone() })
    }

    /// Whether every call of the mix has SQL the floor can send.
    pub(crate) fn all_sql(&self) -> bool {
        self.calls.iter().all(|c| c.sql.is_some())
    }
}

/// Call indexes with call `i` appearing `weights[i]` times, spread out (smooth weighted round robin).
fn interleave(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (c, &w) in current.iter_mut().zip(weights) {
                *c += i64::from(w);
            }
            let best = (0..weights.len()).max_by_key(|&i| (current[i], std::cmp::Reverse(i))).expect("a call");
            current[best] -= total;
            best
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_mixes_load_and_the_analytic_one_has_twelve_questions() {
        for (name, _) in BUILT_IN {
            let mix = Mix::load(name).unwrap();
            assert_eq!(mix.name, name);
        }
        let analytic = Mix::load("analytic").unwrap();
        assert_eq!(analytic.calls.len(), 12);
        assert!(analytic.all_sql());
        let light = Mix::load("light").unwrap();
        assert!(!light.all_sql());
        let sql = light.sql_only().unwrap();
        assert!(sql.all_sql() && sql.order.iter().all(|&i| i < sql.calls.len()));
        assert!(Mix::load("search").unwrap().sql_only().is_none());
    }

    #[test]
    fn every_built_in_query_passes_the_guard() {
        for (name, _) in BUILT_IN {
            for call in Mix::load(name).unwrap().calls {
                if let Some(sql) = call.sql {
                    crate::guard::ReadOnlySql::parse(&sql, &crate::guard::FunctionPolicy::builtin())
                        .unwrap_or_else(|e| panic!("{name} {}: {e}", call.label));
                }
            }
        }
    }

    #[test]
    fn weights_repeat_calls_spread_out() {
        assert_eq!(interleave(&[2, 1, 1]), vec![0, 1, 2, 0]);
        assert_eq!(interleave(&[1]), vec![0]);
    }

    #[test]
    fn bad_mixes_say_what_is_wrong() {
        let cases = [
            ("name = \"x\"\ncall = []", "at least one"),
            ("name = \"x\"\n[[call]]\ntool = \"drop_table\"\narguments = {}", "unknown tool"),
            ("name = \"x\"\n[[call]]\ntool = \"execute_sales_query\"\narguments = {}", "postgresql_query"),
            ("name = \"x\"\n[[call]]\ntool = \"get_current_utc_date\"\nweight = 0\narguments = {}", "weight"),
            ("name = \"x\"\nspeed = 1\n[[call]]\ntool = \"get_current_utc_date\"\narguments = {}", "speed"),
        ];
        for (text, needle) in cases {
            let e = format!("{:#}", Mix::parse(text).unwrap_err());
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!(format!("{:#}", Mix::load("heavy").unwrap_err()).contains("light, analytic, search"));
    }
}
