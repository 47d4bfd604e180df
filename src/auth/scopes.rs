//! OAuth scopes: what a verified caller may do, tool by tool.
//!
//! A token says what it may do in its `scope` claim (space-separated, RFC 8693 / RFC 9068) or, from Microsoft
//! Entra ID, `scp` (space-separated) and `roles` (app roles, a list). Each tool needs one scope; a call to a tool
//! whose scope the token lacks is refused with HTTP 403 `insufficient_scope` naming it, and `tools/list` shows a
//! caller only the tools it may call. Header identities (loopback development) carry every scope.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

/// One OAuth scope: printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("`{s}` is not an OAuth scope (printable ASCII, no spaces)"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads sales data: `execute_sales_query` and the schema tool.
pub const SALES_READ: &str = "sales:read";
/// Reads the shared catalog: `semantic_search_products`.
pub const PRODUCTS_READ: &str = "products:read";
/// Sees customers' email and phone in clear.
pub const PII_READ: &str = "pii:read";

/// The scopes a caller holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Granted {
    /// Every scope: a header identity on loopback, where nothing is verified anyway.
    #[default]
    All,
    Only(BTreeSet<Scope>),
}

impl Granted {
    pub fn allows(&self, scope: &Scope) -> bool {
        match self {
            Granted::All => true,
            Granted::Only(s) => s.contains(scope),
        }
    }

    /// The scopes a token's claims grant: `scope` and `scp` (space-separated strings, or lists) and `roles`.
    pub fn from_claims(claims: &serde_json::Map<String, Value>) -> Self {
        let mut scopes = BTreeSet::new();
        for name in ["scope", "scp", "roles"] {
            let words: Vec<&str> = match claims.get(name) {
                Some(Value::String(s)) => s.split_ascii_whitespace().collect(),
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => continue,
            };
            scopes.extend(words.into_iter().filter_map(|w| Scope::parse(w).ok()));
        }
        Granted::Only(scopes)
    }
}

/// Which scope each tool needs. A tool not listed needs none (the date tool reads no data).
#[derive(Debug, Clone)]
pub struct ToolScopes(BTreeMap<String, Scope>);

impl Default for ToolScopes {
    fn default() -> Self {
        let sales = Scope(SALES_READ.into());
        let products = Scope(PRODUCTS_READ.into());
        Self(BTreeMap::from([
            ("execute_sales_query".into(), sales.clone()),
            ("get_multiple_table_schemas".into(), sales),
            ("semantic_search_products".into(), products),
        ]))
    }
}

impl ToolScopes {
    /// The defaults with `overrides` (`TOOL=SCOPE`) applied; an unknown tool is an error naming the known ones.
    pub fn with_overrides(overrides: &[String], tools: &[&str]) -> Result<Self, String> {
        let mut map = Self::default();
        for o in overrides {
            let (tool, scope) = o.split_once('=').ok_or_else(|| format!("`{o}` is not TOOL=SCOPE"))?;
            let tool = tool.trim();
            if !tools.contains(&tool) {
                return Err(format!("`{tool}` is not a tool of this server; the tools are {}", tools.join(", ")));
            }
            map.0.insert(tool.to_owned(), Scope::parse(scope.trim())?);
        }
        Ok(map)
    }

    pub fn required(&self, tool: &str) -> Option<&Scope> {
        self.0.get(tool)
    }

    /// Every scope some tool needs, plus `pii:read`: what the protected resource metadata advertises.
    pub fn supported(&self) -> BTreeSet<Scope> {
        let mut all: BTreeSet<Scope> = self.0.values().cloned().collect();
        all.insert(Scope(PII_READ.into()));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn scopes_come_from_scope_scp_and_roles() {
        let g = Granted::from_claims(&claims(json!({"scope": "sales:read  products:read", "roles": ["pii:read", 3]})));
        for s in [SALES_READ, PRODUCTS_READ, PII_READ] {
            assert!(g.allows(&Scope::parse(s).unwrap()), "{s}");
        }
        let entra = Granted::from_claims(&claims(json!({"scp": "sales:read"})));
        assert!(entra.allows(&Scope::parse(SALES_READ).unwrap()));
        assert!(!entra.allows(&Scope::parse(PRODUCTS_READ).unwrap()));
        assert_eq!(Granted::from_claims(&claims(json!({"scope": 7}))), Granted::Only(BTreeSet::new()));
    }

    #[test]
    fn tool_scopes_take_overrides_and_refuse_unknown_tools_and_bad_scopes() {
        let tools = ["execute_sales_query", "semantic_search_products"];
        let m = ToolScopes::with_overrides(&["semantic_search_products=catalog".into()], &tools).unwrap();
        assert_eq!(m.required("semantic_search_products").unwrap().as_str(), "catalog");
        assert_eq!(m.required("execute_sales_query").unwrap().as_str(), SALES_READ);
        assert!(m.required("get_current_utc_date").is_none());
        let e = ToolScopes::with_overrides(&["run_sql=x".into()], &tools).unwrap_err();
        assert!(e.contains("execute_sales_query"), "{e}");
        assert!(ToolScopes::with_overrides(&["execute_sales_query=a b".into()], &tools).is_err());
        assert!(ToolScopes::with_overrides(&["execute_sales_query".into()], &tools).is_err());
    }
}
