//! The validated values embedding settings are made of: URLs, secrets, model and deployment names, API
//! versions and Entra ID identifiers.
//!
//! They exist so a string is checked once, where it enters (a flag or an environment variable), and every
//! layer after that holds a value that cannot be malformed: a [`ServiceUrl`] has a scheme and a host and no
//! query, a [`Secret`] never prints, a [`DeploymentName`] is safe inside a URL path. Errors say what is wrong
//! and what a good value looks like; the caller adds which variable it came from.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;

/// An API key or client secret. `Debug` and `Display` never show it; only [`Secret::expose`] does, at the one
/// place a request header or form is built.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Holds `s` as typed, to be checked with [`Secret::checked`] once it is known to be needed.
    pub(crate) fn unchecked(s: &str) -> Self {
        Secret(s.to_owned())
    }

    /// This secret, trimmed, if it is usable in an HTTP header (the error never contains the value).
    pub fn checked(&self) -> Result<Secret, String> {
        self.0.parse()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("is empty".into());
        }
        if s.chars().any(char::is_control) {
            return Err("contains control characters (a line break pasted with it?)".into());
        }
        Ok(Secret(s.to_owned()))
    }
}

/// The base URL of an HTTP service: `http` or `https`, with a host, without credentials, query or fragment,
/// and without a trailing slash (so paths can be appended).
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl(Url);

impl ServiceUrl {
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// This URL with `segments` appended to its path, each percent-encoded as needed.
    pub fn join(&self, segments: &[&str]) -> Url {
        let mut url = self.0.clone();
        url.path_segments_mut()
            .expect("a ServiceUrl has a host, so it can have path segments")
            .pop_if_empty()
            .extend(segments);
        url
    }

    pub fn is_loopback(&self) -> bool {
        let host = self.0.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceUrl({self})")
    }
}

impl FromStr for ServiceUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let mut url =
            Url::parse(s).map_err(|e| format!("`{s}` is not a URL ({e}); expected e.g. https://host/path"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{s}` must start with https:// (or http:// for a local server)"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{s}` has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain a user name or password; pass the key in its own setting".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{s}` must not have a query (?...) or fragment (#...)"));
        }
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        Ok(ServiceUrl(url))
    }
}

/// Checks a name that travels inside a URL path or a JSON field: non-empty, at most `max` characters, and
/// only characters `allowed` admits.
fn checked_name(s: &str, max: usize, allowed: impl Fn(char) -> bool, example: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(format!("is empty; expected a name like `{example}`"));
    }
    if s.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if let Some(c) = s.chars().find(|&c| !allowed(c)) {
        return Err(format!("`{s}` contains {c:?}; expected a name like `{example}`"));
    }
    Ok(s.to_owned())
}

/// A model name as an OpenAI-compatible server knows it: `text-embedding-3-small`, `nomic-embed-text:v1.5`,
/// `BAAI/bge-small-en-v1.5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName(String);

impl ModelName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ModelName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_alphanumeric() || "-_.:/@+".contains(c);
        checked_name(s, 256, allowed, "text-embedding-3-small").map(ModelName)
    }
}

/// The name of an Azure OpenAI deployment (what the portal calls "deployment name"; Azure allows letters,
/// digits, `-`, `_` and `.`, up to 64 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentName(String);

impl DeploymentName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeploymentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DeploymentName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        checked_name(s, 64, allowed, "text-embedding-3-small").map(DeploymentName)
    }
}

/// An Azure OpenAI REST API version: `YYYY-MM-DD`, optionally followed by `-preview`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion(String);

impl ApiVersion {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ApiVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (date, suffix) = s.split_at(s.len().min(10));
        let date_ok = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && date.len() == 10;
        if date_ok && (suffix.is_empty() || suffix == "-preview") {
            Ok(ApiVersion(s.to_owned()))
        } else {
            Err(format!("`{s}` is not an API version; expected a date like 2024-02-01 (optionally with -preview)"))
        }
    }
}

/// A Microsoft Entra ID tenant: its GUID or one of its domain names (`contoso.onmicrosoft.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantId(String);

impl TenantId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TenantId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-.".contains(c);
        checked_name(s, 256, allowed, "72f988bf-86f1-41af-91ab-2d7cd011db47").map(TenantId)
    }
}

/// A Microsoft Entra ID application (client) id: a GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientId(uuid::Uuid);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ClientId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim().parse().map(ClientId).map_err(|_| {
            format!("`{}` is not an application (client) id; expected a GUID from the app registration", s.trim())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_are_normalised_and_bad_ones_explained() {
        let url: ServiceUrl = " http://127.0.0.1:11435/v1/ ".parse().unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:11435/v1");
        assert_eq!(url.join(&["embeddings"]).as_str(), "http://127.0.0.1:11435/v1/embeddings");
        assert!(url.is_loopback());
        let origin: ServiceUrl = "https://zava.openai.azure.com/".parse().unwrap();
        assert_eq!(origin.to_string(), "https://zava.openai.azure.com");
        assert_eq!(
            origin.join(&["openai", "deployments", "a b", "embeddings"]).as_str(),
            "https://zava.openai.azure.com/openai/deployments/a%20b/embeddings"
        );
        assert!(!origin.is_loopback());
        for (bad, needle) in [
            ("api.openai.com/v1", "not a URL"),
            ("ftp://example.com", "https://"),
            ("https://key:secret@example.com", "user name or password"),
            ("https://example.com/v1?key=1", "query"),
            ("", "not a URL"),
        ] {
            let err = bad.parse::<ServiceUrl>().unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let key: Secret = "sk-very-secret".parse().unwrap();
        assert_eq!(key.expose(), "sk-very-secret");
        assert!(!format!("{key:?}").contains("very"));
        assert!("  ".parse::<Secret>().is_err());
        assert!("sk-1\nsk-2".parse::<Secret>().unwrap_err().contains("line break"));
        assert_eq!(Secret::unchecked(" sk-1\n").checked().unwrap().expose(), "sk-1");
        assert!(Secret::unchecked("").checked().unwrap_err().contains("empty"));
    }

    #[test]
    fn names_versions_and_ids_are_checked() {
        for good in ["text-embedding-3-small", "nomic-embed-text:v1.5", "BAAI/bge-small-en-v1.5"] {
            assert_eq!(good.parse::<ModelName>().unwrap().as_str(), good);
        }
        assert!("text embedding".parse::<ModelName>().unwrap_err().contains("' '"));
        assert!("".parse::<ModelName>().unwrap_err().contains("empty"));
        assert!("my-deployment_1.0".parse::<DeploymentName>().is_ok());
        assert!("../admin".parse::<DeploymentName>().unwrap_err().contains("'/'"));
        assert!("x".repeat(65).parse::<DeploymentName>().unwrap_err().contains("64"));
        assert!("2024-02-01".parse::<ApiVersion>().is_ok());
        assert!("2024-05-01-preview".parse::<ApiVersion>().is_ok());
        for bad in ["2024-13-01", "v1", "2024-02-01-beta", "24-02-01"] {
            assert!(bad.parse::<ApiVersion>().unwrap_err().contains("2024-02-01"), "{bad}");
        }
        assert!("contoso.onmicrosoft.com".parse::<TenantId>().is_ok());
        assert!("72f988bf-86f1-41af-91ab-2d7cd011db47".parse::<TenantId>().is_ok());
        assert!("contoso/evil".parse::<TenantId>().is_err());
        assert!("00000000-0000-0000-0000-000000000001".parse::<ClientId>().is_ok());
        assert!("my-app".parse::<ClientId>().unwrap_err().contains("GUID"));
    }
}
