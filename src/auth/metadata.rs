//! What a client needs to find out how to get a token: OAuth 2.0 Protected Resource Metadata (RFC 9728) and the
//! `WWW-Authenticate` challenges that point to it (RFC 6750, MCP authorization spec).
//!
//! For the resource `https://host/mcp` the metadata lives at `https://host/.well-known/oauth-protected-resource/mcp`
//! (RFC 9728 §3.1, the path-suffixed form) and, for clients that look there, at the root form too. Each
//! `authorization_servers` entry is the issuer exactly as the provider's own metadata publishes it: clients
//! compare the two and refuse to go on when they differ.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::scopes::Scope;

/// This server's canonical resource URI (RFC 8707): what tokens must carry in `aud`. An absolute `http(s)` URL
/// without fragment or query, e.g. `https://mcp.zava.example/mcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUri {
    uri: String,
    /// `scheme://authority`.
    origin: String,
    /// The path, without a trailing slash (`/mcp`).
    path: String,
}

impl ResourceUri {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("`{s}` is not an absolute http(s) URL without query or fragment (e.g. https://host/mcp)");
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        if !(scheme == "https" || scheme == "http") || s.contains(['?', '#']) || s.contains(char::is_whitespace) {
            return Err(bad());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let path = path.trim_end_matches('/').to_owned();
        Ok(Self { uri: format!("{scheme}://{authority}{path}"), origin: format!("{scheme}://{authority}"), path })
    }

    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// Where this resource's metadata is served (the path-suffixed form).
    pub fn metadata_url(&self) -> String {
        format!("{}{}{}", self.origin, WELL_KNOWN, self.path)
    }

    /// The metadata paths to serve: the path-suffixed form and the root form.
    pub fn metadata_paths(&self) -> Vec<String> {
        let mut paths = vec![format!("{WELL_KNOWN}{}", self.path)];
        if !self.path.is_empty() {
            paths.push(WELL_KNOWN.to_owned());
        }
        paths
    }
}

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The RFC 9728 document.
pub fn document(resource: &ResourceUri, issuer: Option<&str>, scopes: &BTreeSet<Scope>) -> Value {
    let mut doc = json!({
        "resource": resource.as_str(),
        "scopes_supported": scopes.iter().map(Scope::as_str).collect::<Vec<_>>(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Zava retail analytics (zava-mcp)",
    });
    if let Some(issuer) = issuer {
        doc["authorization_servers"] = json!([issuer]);
    }
    doc
}

/// The challenge of a 401: where the metadata is and, when a token was presented, why it was refused.
pub fn unauthorized(resource: &ResourceUri, invalid_token: Option<&str>) -> String {
    let mut value = format!("Bearer resource_metadata=\"{}\"", resource.metadata_url());
    if let Some(reason) = invalid_token {
        value.push_str(&format!(", error=\"invalid_token\", error_description=\"{}\"", quoted(reason)));
    }
    value
}

/// The challenge of a 403 for a call the token's scopes do not cover, naming the scope to ask for.
pub fn insufficient_scope(resource: &ResourceUri, needed: &Scope) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", scope=\"{needed}\", resource_metadata=\"{}\", \
         error_description=\"this call needs the {needed} scope\"",
        resource.metadata_url()
    )
}

/// Text safe inside a quoted-string of an HTTP header: printable ASCII, no quote or backslash.
fn quoted(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '\'' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_lives_beside_the_resource_path() {
        let r = ResourceUri::parse("https://mcp.zava.example/mcp/").unwrap();
        assert_eq!(r.as_str(), "https://mcp.zava.example/mcp");
        assert_eq!(r.metadata_url(), "https://mcp.zava.example/.well-known/oauth-protected-resource/mcp");
        assert_eq!(
            r.metadata_paths(),
            ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]
        );
        let root = ResourceUri::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(root.metadata_paths(), ["/.well-known/oauth-protected-resource"]);
        for bad in [
            "mcp.zava.example/mcp",
            "ftp://x/mcp",
            "https://x/mcp?a=1",
            "https://x/mcp#f",
            "https:///mcp",
            "https://u@x/mcp",
        ] {
            assert!(ResourceUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn challenges_point_to_the_metadata_and_never_break_the_header() {
        let r = ResourceUri::parse("https://h/mcp").unwrap();
        assert_eq!(
            unauthorized(&r, None),
            "Bearer resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\""
        );
        let v = unauthorized(&r, Some("bad \"quote\"\n"));
        assert!(v.contains("error=\"invalid_token\"") && v.ends_with("error_description=\"bad 'quote''\""), "{v}");
        let s = insufficient_scope(&r, &Scope::parse("pii:read").unwrap());
        assert!(s.starts_with("Bearer error=\"insufficient_scope\", scope=\"pii:read\""), "{s}");
    }
}
