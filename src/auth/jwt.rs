//! Verifying a bearer JWT: the header first (no `alg: none`, no unknown critical header, an access token's
//! `typ`), then the signature with the right kind of key, then `iss`, `aud`, `exp` and `nbf`.
//!
//! Two kinds of trust, never mixed: an identity provider's asymmetric keys (RS*, PS*, ES256/384, EdDSA, from its
//! JWKS) for tokens whose `iss` is that provider; or, for development, one HMAC key in the data directory
//! (`zava-mcp token`) for tokens whose `iss` is [`DEV_ISSUER`]. A token's `alg` is checked against the key it
//! would be verified with, so an HS256 token "signed" with a provider's public key is refused.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::jwks::{Jwks, KeyError};

/// The `iss` of development tokens (`zava-mcp token`).
pub const DEV_ISSUER: &str = "urn:zava-mcp:development";

/// Who signs the tokens this server accepts.
pub enum Trust {
    /// An identity provider: its exact issuer and its keys.
    Provider { issuer: String, jwks: Jwks },
    /// The development key in the data directory (HS256).
    Development { key: DecodingKey },
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// Accepted `aud` values: this server's resource URI, and any configured alias (Entra's `api://` id).
    pub audiences: Vec<String>,
    pub leeway: Duration,
    /// Require `typ: at+jwt` (RFC 9068); otherwise `JWT` is accepted too, as most providers issue.
    pub require_at_jwt: bool,
}

/// Why a token was refused. The text goes into `WWW-Authenticate`'s `error_description`: it names the problem,
/// never the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not a JWT ({0})")]
    Malformed(String),
    #[error("unsigned tokens (alg: none) are not accepted")]
    Unsigned,
    #[error("the token's algorithm {0} is not accepted for its key")]
    Algorithm(String),
    #[error("the token has critical header parameters this server does not understand: {0}")]
    Critical(String),
    #[error("this is not an access token ({0}); send the access token issued for this server")]
    NotAnAccessToken(String),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was not issued for this server (aud must be {0})")]
    Audience(String),
    #[error("the token was not issued by the trusted issuer ({0})")]
    Issuer(String),
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
}

impl TokenError {
    /// A short stable name for metrics (`zava_auth_failures_total{reason}`).
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::Unsigned => "unsigned",
            TokenError::Algorithm(_) => "algorithm",
            TokenError::Critical(_) => "critical_header",
            TokenError::NotAnAccessToken(_) => "not_an_access_token",
            TokenError::Key(super::jwks::KeyError::Unavailable(_)) => "keys_unavailable",
            TokenError::Key(_) => "unknown_key",
            TokenError::Signature => "signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Audience(_) => "audience",
            TokenError::Issuer(_) => "issuer",
            TokenError::MissingClaim(_) => "missing_claim",
        }
    }
}

pub struct Verifier {
    trust: Trust,
    expect: Expectations,
}

impl Verifier {
    pub fn new(trust: Trust, expect: Expectations) -> Self {
        Self { trust, expect }
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The token's claims, if every check passes.
    pub async fn verify(&self, token: &str) -> Result<Map<String, Value>, TokenError> {
        let header = header_of(token)?;
        let alg = header.get("alg").and_then(Value::as_str).ok_or_else(|| TokenError::Malformed("no alg".into()))?;
        if alg.eq_ignore_ascii_case("none") {
            return Err(TokenError::Unsigned);
        }
        if let Some(crit) = header.get("crit") {
            return Err(TokenError::Critical(crit.to_string()));
        }
        match header.get("typ").map(|t| t.as_str().map(str::to_ascii_lowercase)) {
            None if !self.expect.require_at_jwt => {}
            Some(Some(t)) if t == "at+jwt" || t == "application/at+jwt" => {}
            Some(Some(t)) if t == "jwt" && !self.expect.require_at_jwt => {}
            other => {
                let typ = other.flatten().unwrap_or_else(|| "none".into());
                return Err(TokenError::NotAnAccessToken(format!("typ is {typ}")));
            }
        }
        let alg: Algorithm = alg.parse().map_err(|_| TokenError::Algorithm(alg.to_owned()))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let (issuer, claims) = match &self.trust {
            Trust::Development { key } => {
                if alg != Algorithm::HS256 {
                    return Err(TokenError::Algorithm(format!("{alg:?}")));
                }
                (DEV_ISSUER, self.decode(token, key, vec![Algorithm::HS256], DEV_ISSUER)?)
            }
            Trust::Provider { issuer, jwks } => {
                let key = jwks.key(kid).await?;
                if !key.algorithms.contains(&alg) {
                    return Err(TokenError::Algorithm(format!("{alg:?}")));
                }
                (issuer.as_str(), self.decode(token, &key.decoding, key.algorithms.clone(), issuer)?)
            }
        };
        // ID tokens are for the client, not for resource servers; these claims exist only in ID tokens.
        for id_only in ["nonce", "at_hash", "c_hash"] {
            if claims.contains_key(id_only) {
                return Err(TokenError::NotAnAccessToken(format!("it carries `{id_only}`, as ID tokens do")));
            }
        }
        tracing::debug!(issuer, "verified a bearer token");
        Ok(claims)
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        algorithms: Vec<Algorithm>,
        issuer: &str,
    ) -> Result<Map<String, Value>, TokenError> {
        let mut v = Validation::new(algorithms[0]);
        v.algorithms = algorithms;
        v.leeway = self.expect.leeway.as_secs();
        v.validate_nbf = true;
        v.set_audience(&self.expect.audiences);
        v.set_issuer(&[issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &v).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidAudience => TokenError::Audience(self.expect.audiences.join(" or ")),
            ErrorKind::InvalidIssuer => TokenError::Issuer(issuer.to_owned()),
            ErrorKind::InvalidSignature => TokenError::Signature,
            ErrorKind::InvalidAlgorithm => TokenError::Algorithm("for this key".into()),
            ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
            other => TokenError::Malformed(format!("{other:?}")),
        })?;
        Ok(data.claims)
    }
}

/// The decoded JOSE header, before anything trusts it.
fn header_of(token: &str) -> Result<Map<String, Value>, TokenError> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("a JWT has three dot-separated parts".into()));
    };
    let bytes =
        URL_SAFE_NO_PAD.decode(head).map_err(|_| TokenError::Malformed("the header is not base64url".into()))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenError::Malformed("the header is not a JSON object".into())),
    }
}
