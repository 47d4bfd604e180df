//! Finding an identity provider's keys from its issuer: OpenID Connect discovery
//! (`{issuer}/.well-known/openid-configuration`), then RFC 8414 authorization server metadata
//! (`{origin}/.well-known/oauth-authorization-server{path}`). The document's `issuer` must be exactly the
//! configured one (a mix-up would let another provider's tokens in), and its `jwks_uri` is where the keys are.

use std::time::Duration;

use serde_json::Value;

/// The `jwks_uri` the issuer's metadata names.
pub async fn jwks_uri(http: &reqwest::Client, issuer: &str) -> Result<String, String> {
    let trimmed = issuer.trim_end_matches('/');
    let authority_at = trimmed.find("://").map_or(0, |i| i + 3);
    let (origin, path) = match trimmed[authority_at..].find('/') {
        Some(i) => trimmed.split_at(authority_at + i),
        None => (trimmed, ""),
    };
    let candidates = [
        format!("{trimmed}/.well-known/openid-configuration"),
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
    ];
    let mut reasons = Vec::new();
    for url in candidates {
        match fetch(http, &url).await {
            Ok(doc) => {
                let published = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
                if published != issuer {
                    return Err(format!(
                        "{url} publishes the issuer `{published}`, not `{issuer}`: set --jwt-issuer to exactly the \
                         issuer the provider publishes"
                    ));
                }
                return doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{url} names no jwks_uri; set --jwt-jwks-uri"));
            }
            Err(e) => reasons.push(e),
        }
    }
    Err(format!("cannot discover the keys of `{issuer}`: {}; or set --jwt-jwks-uri", reasons.join("; ")))
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http.get(url).timeout(Duration::from_secs(10)).send().await.map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered HTTP {}", resp.status()));
    }
    resp.json().await.map_err(|e| format!("{url} is not JSON: {e}"))
}
