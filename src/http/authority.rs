//! Strict parsing of `Host` values, `Origin` values and absolute-form request targets, and the allow-lists they
//! are compared against.
//!
//! rmcp's own check treats a port that is not a number as "no port" and lets an allowed entry without a port
//! match any port, so `Host: 127.0.0.1:8000.evil.example` passed it. Here nothing is lenient: a value either
//! parses completely (host, optional numeric port, no userinfo, nothing else) or it is refused, and the
//! comparison is exact on scheme, host and port.

use std::fmt;
use std::net::Ipv6Addr;

/// A parsed `host[:port]`: the host lower-cased (an IPv6 literal in brackets, in its canonical form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authority {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Why a `Host` (or the authority of an origin or request target) is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthorityError {
    #[error("it is empty")]
    Empty,
    #[error("it carries userinfo (`@`)")]
    Userinfo,
    #[error("its port is not a number from 1 to 65535")]
    BadPort,
    #[error("its host is not a DNS name, an IPv4 address or a bracketed IPv6 address")]
    BadHost,
}

impl Authority {
    /// Parses `host[:port]` as a `Host` header carries it (RFC 9110 §7.2): a name or IPv4 address, or an IPv6
    /// address in brackets; a port, when present, is 1-5 digits naming a port from 1 to 65535.
    pub(crate) fn parse(value: &str) -> Result<Authority, AuthorityError> {
        if value.is_empty() {
            return Err(AuthorityError::Empty);
        }
        if value.contains('@') {
            return Err(AuthorityError::Userinfo);
        }
        let (host, port) = if let Some(rest) = value.strip_prefix('[') {
            let (literal, after) = rest.split_once(']').ok_or(AuthorityError::BadHost)?;
            let ip: Ipv6Addr = literal.parse().map_err(|_| AuthorityError::BadHost)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(AuthorityError::BadHost)?),
            };
            (format!("[{ip}]"), port)
        } else {
            let (host, port) = match value.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (value, None),
            };
            let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
            if host.is_empty() || !host.chars().all(name_char) {
                return Err(AuthorityError::BadHost);
            }
            (host.to_ascii_lowercase(), port)
        };
        let port = port.map(parse_port).transpose()?;
        Ok(Authority { host, port })
    }

    /// An allowed-host entry: as [`Authority::parse`], and a bare IPv6 address (`::1`) is read as `[::1]`.
    fn parse_entry(entry: &str) -> Result<Authority, AuthorityError> {
        let entry = entry.trim();
        match entry.parse::<Ipv6Addr>() {
            Ok(ip) => Ok(Authority { host: format!("[{ip}]"), port: None }),
            Err(_) => Authority::parse(entry),
        }
    }
}

fn parse_port(digits: &str) -> Result<u16, AuthorityError> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthorityError::BadPort);
    }
    match digits.parse::<u16>() {
        Ok(0) | Err(_) => Err(AuthorityError::BadPort),
        Ok(p) => Ok(p),
    }
}

/// The `Host` values this server answers to.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts {
    entries: Vec<Authority>,
    /// The port the server listens on: an entry without a port matches it (or no port at all).
    own_port: u16,
}

impl AllowedHosts {
    /// Parses the configured entries; a malformed one is an error naming it.
    pub(crate) fn new(entries: &[String], own_port: u16) -> Result<Self, String> {
        let entries = entries
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| Authority::parse_entry(e).map_err(|why| format!("allowed host `{e}` is malformed: {why}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { entries, own_port })
    }

    /// An entry with a port matches exactly that `host:port`; one without matches the host with no port or with
    /// the server's own port.
    pub(crate) fn allows(&self, host: &Authority) -> bool {
        self.entries.iter().any(|e| {
            e.host == host.host
                && match e.port {
                    Some(p) => host.port == Some(p),
                    None => host.port.is_none() || host.port == Some(self.own_port),
                }
        })
    }
}

/// A parsed `Origin` value: `null`, or `scheme://host[:port]` with the scheme's default port filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Null,
    Tuple { scheme: String, host: String, port: Option<u16> },
}

impl Origin {
    /// Parses an origin as browsers serialise it (RFC 6454 §6.2): `null`, or a scheme, `://` and an authority,
    /// with no path, query or userinfo.
    pub(crate) fn parse(value: &str) -> Option<Origin> {
        if value == "null" {
            return Some(Origin::Null);
        }
        let (scheme, Authority { host, port }) = origin_parts(value)?;
        let port = port.or(default_port(&scheme));
        Some(Origin::Tuple { scheme, host, port })
    }
}

/// The scheme (lower-cased) and authority of `scheme://host[:port]`.
fn origin_parts(value: &str) -> Option<(String, Authority)> {
    let (scheme, authority) = value.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), Authority::parse(authority).ok()?))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// An allowed-origin entry: an exact origin, or (explicitly) `scheme://host:*` for any port of that host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowedOrigin {
    Exact(Origin),
    AnyPort { scheme: String, host: String },
}

/// The browser origins this server accepts requests from.
#[derive(Debug, Clone)]
pub(crate) struct AllowedOrigins {
    entries: Vec<AllowedOrigin>,
    /// The entries as configured, for rmcp's own (second) check.
    raw: Vec<String>,
}

impl AllowedOrigins {
    /// The configured origins, or (none configured) the loopback origins on the server's own port; `extra` (the
    /// CORS origins) are always added, since allowing a page to read responses but refusing its requests makes
    /// no sense. A malformed entry is an error naming it.
    pub(crate) fn new(configured: &[String], extra: &[String], own_port: u16) -> Result<Self, String> {
        let mut raw: Vec<String> =
            configured.iter().chain(extra).map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
        if configured.iter().all(|o| o.trim().is_empty()) {
            raw.extend(["localhost", "127.0.0.1", "[::1]"].map(|h| format!("http://{h}:{own_port}")));
        }
        let entries = raw.iter().map(|o| parse_allowed_origin(o)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { entries, raw })
    }

    pub(crate) fn allows(&self, origin: &Origin) -> bool {
        self.entries.iter().any(|e| match (e, origin) {
            (AllowedOrigin::Exact(a), o) => a == o,
            (AllowedOrigin::AnyPort { scheme, host }, Origin::Tuple { scheme: s, host: h, .. }) => {
                scheme == s && host == h
            }
            (AllowedOrigin::AnyPort { .. }, Origin::Null) => false,
        })
    }

    pub(crate) fn raw(&self) -> &[String] {
        &self.raw
    }
}

fn parse_allowed_origin(entry: &str) -> Result<AllowedOrigin, String> {
    let malformed = || format!("allowed origin `{entry}` is malformed: expected `null` or scheme://host[:port]");
    if let Some(base) = entry.strip_suffix(":*") {
        return match origin_parts(base) {
            Some((scheme, Authority { host, port: None })) => Ok(AllowedOrigin::AnyPort { scheme, host }),
            _ => Err(malformed()),
        };
    }
    Origin::parse(entry).map(AllowedOrigin::Exact).ok_or_else(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::new(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>(), 8000).unwrap()
    }

    #[test]
    fn hosts_parse_strictly() {
        assert_eq!(Authority::parse("LocalHost:8000"), Ok(Authority { host: "localhost".into(), port: Some(8000) }));
        assert_eq!(Authority::parse("[0:0::1]:9"), Ok(Authority { host: "[::1]".into(), port: Some(9) }));
        assert_eq!(Authority::parse("127.0.0.1"), Ok(Authority { host: "127.0.0.1".into(), port: None }));
        for (bad, why) in [
            ("", AuthorityError::Empty),
            ("127.0.0.1:8000.evil.example", AuthorityError::BadPort),
            ("127.0.0.1:", AuthorityError::BadPort),
            ("127.0.0.1:65536", AuthorityError::BadPort),
            ("127.0.0.1:0", AuthorityError::BadPort),
            ("127.0.0.1:+80", AuthorityError::BadPort),
            ("user@127.0.0.1", AuthorityError::Userinfo),
            ("::1", AuthorityError::BadHost),
            ("[::1", AuthorityError::BadHost),
            ("[::1]x", AuthorityError::BadHost),
            ("[evil]", AuthorityError::BadHost),
            ("evil example", AuthorityError::BadHost),
            ("evil/x", AuthorityError::BadHost),
        ] {
            assert_eq!(Authority::parse(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn a_portless_entry_matches_no_port_or_the_servers_own_port_only() {
        let allowed = hosts(&["localhost", "127.0.0.1", "::1", "proxy.example:443"]);
        for ok in ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "[::1]", "proxy.example:443"] {
            assert!(allowed.allows(&Authority::parse(ok).unwrap()), "{ok}");
        }
        for refused in ["localhost:8001", "127.0.0.1:80", "evil.example", "proxy.example", "proxy.example:8000"] {
            assert!(!allowed.allows(&Authority::parse(refused).unwrap()), "{refused}");
        }
        assert!(AllowedHosts::new(&["localhost:x".into()], 1).is_err());
    }

    #[test]
    fn origins_are_compared_exactly_with_default_ports() {
        let configured = ["https://app.example", "http://dev.example:3000", "http://[::1]:*", "null"].map(String::from);
        let allowed = AllowedOrigins::new(&configured, &[], 8000).unwrap();
        for ok in
            ["https://app.example", "https://app.example:443", "http://dev.example:3000", "http://[::1]:5", "null"]
        {
            assert!(allowed.allows(&Origin::parse(ok).unwrap()), "{ok}");
        }
        for refused in [
            "http://app.example",
            "https://app.example:8443",
            "http://dev.example",
            "https://dev.example:3000",
            "http://localhost:8000",
        ] {
            assert!(!allowed.allows(&Origin::parse(refused).unwrap()), "{refused}");
        }
        for malformed in ["http://127.0.0.1:8000.evil.example", "http://a@b", "http://x/", "x", "http://", "NULL"] {
            assert_eq!(Origin::parse(malformed), None, "{malformed}");
        }
        assert!(AllowedOrigins::new(&["http://x:1:*".into()], &[], 1).is_err());
        assert!(AllowedOrigins::new(&["localhost".into()], &[], 1).is_err());
    }

    #[test]
    fn by_default_loopback_origins_on_the_own_port_and_the_cors_origins_are_allowed() {
        let allowed = AllowedOrigins::new(&[], &["http://localhost:6274".into()], 8000).unwrap();
        for ok in ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000", "http://localhost:6274"] {
            assert!(allowed.allows(&Origin::parse(ok).unwrap()), "{ok}");
        }
        for refused in ["http://localhost:8001", "https://localhost:8000", "http://evil.example:8000", "null"] {
            assert!(!allowed.allows(&Origin::parse(refused).unwrap()), "{refused}");
        }
    }
}
