//! An identity map: which stores a verified token's holder sees, decided by the deployment rather than by
//! claims the identity provider would have to carry (`--identity-map FILE`), in the spirit of PostgreSQL's
//! `pg_ident.conf`.
//!
//! Identity providers such as Microsoft Entra ID cannot put a list of stores in a token, but they can put group
//! ids, app roles, `sub`, `oid` or `email` there. Each rule of the map names a claim, a test on its value (exact,
//! or a regular expression matching the whole value) and the identity it grants (`head-office`, store names or
//! manager UUIDs). Every matching rule counts: a manager in the Seattle and Redmond groups sees both stores; any
//! rule granting head office makes the holder head office. A token no rule matches is refused (HTTP 403), unless
//! the file says `direct_claims = true`, in which case the claims themselves (`auth::claims`) are tried next.
//!
//! ```toml
//! [[map]]
//! claim = "groups"
//! equals = "5b1c6c1e-0d2f-4c59-9b0e-3f4b7a1d2e90"   # Entra group "Zava Seattle managers"
//! identity = "seattle"
//!
//! [[map]]
//! claim = "email"
//! matches = '.*@headoffice\.zava\.example'
//! identity = "head-office"
//! ```

use std::path::Path;

use anyhow::{Context, Result, bail};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::identity::Directory;
use crate::tenant::Tenant;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    /// Try the token's own claims when no rule matches.
    #[serde(default)]
    direct_claims: bool,
    #[serde(default)]
    map: Vec<RuleEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    claim: String,
    equals: Option<String>,
    matches: Option<String>,
    identity: String,
}

#[derive(Debug)]
enum Test {
    Equals(String),
    /// Anchored: the whole value must match.
    Matches(Regex),
}

#[derive(Debug)]
struct Rule {
    claim: String,
    test: Test,
    tenant: Tenant,
}

/// The rules of an identity map file, checked against the directory of stores when loaded.
#[derive(Debug)]
pub struct IdentityMap {
    rules: Vec<Rule>,
    direct_claims: bool,
}

impl IdentityMap {
    /// Reads and checks `path`; an error names the rule and the field at fault.
    pub fn load(path: &Path, directory: &Directory) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text, directory).with_context(|| format!("{} is not a valid identity map", path.display()))
    }

    pub fn parse(text: &str, directory: &Directory) -> Result<Self> {
        let file: MapFile = toml::from_str(text)?;
        if file.map.is_empty() {
            bail!("it has no [[map]] rule; each names a claim, `equals` or `matches`, and an identity");
        }
        let mut rules = Vec::new();
        for (i, entry) in file.map.into_iter().enumerate() {
            let at = || format!("rule {} (claim `{}`)", i + 1, entry.claim);
            let test = match (entry.equals, entry.matches) {
                (Some(v), None) => Test::Equals(v),
                (None, Some(p)) => Test::Matches(
                    Regex::new(&format!("^(?:{p})$"))
                        .with_context(|| format!("{}: `matches` is not a regular expression", at()))?,
                ),
                _ => bail!("{}: give exactly one of `equals` and `matches`", at()),
            };
            if entry.claim.trim().is_empty() {
                bail!("rule {}: `claim` is empty", i + 1);
            }
            let tenant = directory.tenant_named(&entry.identity).with_context(at)?;
            rules.push(Rule { claim: entry.claim, test, tenant });
        }
        Ok(Self { rules, direct_claims: file.direct_claims })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a token no rule matches may still be mapped by its own claims.
    pub fn direct_claims(&self) -> bool {
        self.direct_claims
    }

    /// What the matching rules grant together; `None` when no rule matches.
    pub fn tenant(&self, claims: &Map<String, Value>) -> Option<Tenant> {
        let mut managers = Vec::new();
        let mut matched = false;
        for rule in &self.rules {
            let values = claim_values(claims.get(&rule.claim));
            let hit = values.iter().any(|v| match &rule.test {
                Test::Equals(want) => v == want,
                Test::Matches(re) => re.is_match(v),
            });
            if !hit {
                continue;
            }
            matched = true;
            match &rule.tenant {
                Tenant::HeadOffice => return Some(Tenant::HeadOffice),
                Tenant::Managers(ids) => managers.extend(ids.iter().map(|m| m.as_uuid())),
            }
        }
        if !matched {
            return None;
        }
        Tenant::from_uuids(managers).ok()
    }
}

/// A claim's values as text: a string, each string (or number) of a list, a number or a boolean.
fn claim_values(claim: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match claim {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::stores::STORES;
    use serde_json::json;

    fn directory() -> Directory {
        Directory::new(STORES.iter().map(|s| (s.manager, s.name.to_owned())))
    }

    const MAP: &str = r#"
        [[map]]
        claim = "groups"
        equals = "g-seattle"
        identity = "seattle"

        [[map]]
        claim = "groups"
        equals = "g-redmond"
        identity = "redmond"

        [[map]]
        claim = "email"
        matches = '.*@hq\.zava\.example'
        identity = "head-office"
    "#;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn matching_rules_grant_their_stores_together_and_head_office_wins() {
        let map = IdentityMap::parse(MAP, &directory()).unwrap();
        let seattle = Tenant::from_uuid(STORES[0].manager);
        assert_eq!(map.tenant(&claims(json!({"groups": ["other", "g-seattle"]}))), Some(seattle));
        let both = map.tenant(&claims(json!({"groups": ["g-seattle", "g-redmond"]})));
        assert_eq!(both, Some(Tenant::from_uuids([STORES[0].manager, STORES[5].manager]).unwrap()));
        let hq = map.tenant(&claims(json!({"groups": ["g-seattle"], "email": "ana@hq.zava.example"})));
        assert_eq!(hq, Some(Tenant::HeadOffice));
    }

    #[test]
    fn nothing_matching_maps_to_nothing() {
        let map = IdentityMap::parse(MAP, &directory()).unwrap();
        assert!(!map.direct_claims());
        for c in [
            json!({}),
            json!({"groups": "g-seattle-old"}),
            json!({"email": "ana@hq.zava.example.evil.test"}),
            json!({"email": "x@evil.test#@hq.zava.example "}),
            json!({"groups": [{"id": "g-seattle"}]}),
        ] {
            assert_eq!(map.tenant(&claims(c.clone())), None, "{c}");
        }
    }

    #[test]
    fn a_bad_file_names_the_rule_and_field() {
        let d = directory();
        let unknown_store = "[[map]]\nclaim = \"sub\"\nequals = \"a\"\nidentity = \"paris\"";
        let e = format!("{:#}", IdentityMap::parse(unknown_store, &d).unwrap_err());
        assert!(e.contains("rule 1") && e.contains("paris"), "{e}");
        let both = "[[map]]\nclaim = \"sub\"\nequals = \"a\"\nmatches = \"b\"\nidentity = \"seattle\"";
        assert!(format!("{:#}", IdentityMap::parse(both, &d).unwrap_err()).contains("exactly one"));
        let typo = "[[map]]\nclaim = \"sub\"\nequal = \"a\"\nidentity = \"seattle\"";
        assert!(format!("{:#}", IdentityMap::parse(typo, &d).unwrap_err()).contains("equal"));
        let bad_re = "[[map]]\nclaim = \"sub\"\nmatches = \"(\"\nidentity = \"seattle\"";
        assert!(format!("{:#}", IdentityMap::parse(bad_re, &d).unwrap_err()).contains("regular expression"));
        assert!(IdentityMap::parse("direct_claims = true", &d).is_err(), "a map with no rules");
    }
}
