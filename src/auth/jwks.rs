//! The identity provider's signing keys (a JWKS), fetched over HTTP and cached by key id.
//!
//! Providers rotate keys: a token signed with a key id not in the cache makes the set be fetched again, but
//! never more often than the refetch floor (a flood of tokens with made-up key ids must not become a flood of
//! requests to the provider). When the provider cannot be reached, the last good set stays in use. Only
//! asymmetric signing keys are taken: a symmetric (`oct`) key in a JWKS, or an encryption key, is ignored, so a
//! public key can never be used as an HMAC secret (algorithm confusion).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tokio::sync::Mutex;

/// One verification key and the algorithms it may verify.
pub struct Key {
    pub decoding: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?})", self.algorithms)
    }
}

/// The keys of one fetch, by key id (`None` for keys without one).
#[derive(Default)]
struct KeySet {
    keys: HashMap<Option<String>, Arc<Key>>,
}

impl KeySet {
    /// Parses a JWKS document key by key: one key of a type this server does not know does not spoil the others.
    fn parse(doc: &Value) -> Result<Self, String> {
        let keys = doc.get("keys").and_then(Value::as_array).ok_or("the document has no `keys` list")?;
        let mut set = KeySet::default();
        for raw in keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
            if let Some(key) = verification_key(&jwk) {
                set.keys.insert(jwk.common.key_id.clone(), Arc::new(key));
            }
        }
        if set.keys.is_empty() {
            return Err("the document holds no signing key this server can use (RSA, EC P-256/P-384, Ed25519)".into());
        }
        Ok(set)
    }

    fn get(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        match kid {
            Some(kid) => self.keys.get(&Some(kid.to_owned())).cloned(),
            // A token without a key id: only unambiguous when the set holds one key.
            None if self.keys.len() == 1 => self.keys.values().next().cloned(),
            None => None,
        }
    }
}

/// The key a JWK describes, if it is an asymmetric signing key; its algorithms are the one it names, or those
/// its type allows.
fn verification_key(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
        return None;
    }
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        Some(named) => {
            let alg = Algorithm::try_from(named).ok()?;
            if !by_type.contains(&alg) {
                return None;
            }
            vec![alg]
        }
        None => by_type,
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { decoding, algorithms })
}

/// Why no key verified a token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the token's signing key `{0}` is not one of the identity provider's keys")]
    UnknownKey(String),
    #[error("the token names no key id and the identity provider has several keys")]
    NoKeyId,
    #[error("the identity provider's keys are not available: {0}")]
    Unavailable(String),
}

struct State {
    set: Option<Arc<KeySet>>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
    last_error: Option<String>,
}

/// The keys behind one `jwks_uri`, fetched lazily and kept.
pub struct Jwks {
    uri: String,
    http: reqwest::Client,
    /// No two fetches closer together than this.
    refetch_floor: Duration,
    /// A set older than this is fetched again on the next token.
    max_age: Duration,
    /// Held only to read or replace the set, never across a fetch: tokens with known keys never wait for the
    /// provider.
    state: std::sync::Mutex<State>,
    /// One fetch at a time; tokens that need a fetch wait here, and find the set the first one fetched.
    fetching: Mutex<()>,
}

impl Jwks {
    pub fn new(uri: String, http: reqwest::Client, refetch_floor: Duration) -> Self {
        let state = State { set: None, fetched: None, attempted: None, last_error: None };
        Self {
            uri,
            http,
            refetch_floor,
            max_age: Duration::from_secs(3600),
            state: std::sync::Mutex::new(state),
            fetching: Mutex::new(()),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fetches the set now (at startup), reporting why it failed; the server still starts and tries again later.
    pub async fn prefetch(&self) -> Result<usize, String> {
        let _one = self.fetching.lock().await;
        self.fetch().await?;
        Ok(self.state().set.as_ref().map_or(0, |s| s.keys.len()))
    }

    /// Whether a key set is loaded, and the last fetch error if any (for `/health/ready`).
    pub async fn status(&self) -> (usize, Option<String>) {
        let state = self.state();
        (state.set.as_ref().map_or(0, |s| s.keys.len()), state.last_error.clone())
    }

    /// The key for a token's `kid`, fetching the set again if the key is unknown (or the set old) and the floor
    /// allows.
    pub async fn key(&self, kid: Option<&str>) -> Result<Arc<Key>, KeyError> {
        if let Some(found) = self.cached(kid) {
            return found;
        }
        let _one = self.fetching.lock().await;
        // Another token may have fetched while this one waited.
        if let Some(found) = self.cached(kid) {
            return found;
        }
        if let Err(e) = self.fetch().await {
            tracing::warn!(jwks_uri = %self.uri, error = %e, "cannot fetch the identity provider's keys; keeping the last good set");
        }
        let state = self.state();
        match (&state.set, kid) {
            (Some(set), _) if set.get(kid).is_some() => Ok(set.get(kid).expect("just checked")),
            (Some(_), Some(kid)) => Err(KeyError::UnknownKey(kid.to_owned())),
            (Some(_), None) => Err(KeyError::NoKeyId),
            (None, _) => {
                Err(KeyError::Unavailable(state.last_error.clone().unwrap_or_else(|| "not fetched yet".into())))
            }
        }
    }

    /// The answer without fetching, when no fetch is due: the key from a fresh set, or (the floor not passed)
    /// whatever the set we have says. `None`: fetch first.
    fn cached(&self, kid: Option<&str>) -> Option<Result<Arc<Key>, KeyError>> {
        let state = self.state();
        let fresh = state.fetched.is_some_and(|t| t.elapsed() < self.max_age);
        let key = state.set.as_ref().and_then(|s| s.get(kid));
        if let Some(key) = &key
            && fresh
        {
            return Some(Ok(key.clone()));
        }
        if state.attempted.is_none_or(|t| t.elapsed() >= self.refetch_floor) {
            return None;
        }
        Some(match (key, &state.set, kid) {
            (Some(key), _, _) => Ok(key),
            (None, Some(_), Some(kid)) => Err(KeyError::UnknownKey(kid.to_owned())),
            (None, Some(_), None) => Err(KeyError::NoKeyId),
            (None, None, _) => {
                Err(KeyError::Unavailable(state.last_error.clone().unwrap_or_else(|| "not fetched yet".into())))
            }
        })
    }

    /// One fetch; the caller holds `fetching`. The state is locked only to record the outcome.
    async fn fetch(&self) -> Result<(), String> {
        self.state().attempted = Some(Instant::now());
        let result = async {
            let resp =
                self.http.get(&self.uri).timeout(Duration::from_secs(10)).send().await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("{} answered HTTP {}", self.uri, resp.status()));
            }
            let doc: Value = resp.json().await.map_err(|e| format!("{} is not a JWKS document: {e}", self.uri))?;
            KeySet::parse(&doc)
        }
        .await;
        let mut state = self.state();
        match result {
            Ok(set) => {
                state.set = Some(Arc::new(set));
                state.fetched = Some(Instant::now());
                state.last_error = None;
                Ok(())
            }
            Err(e) => {
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RSA_N: &str = "u1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw";

    #[test]
    fn only_asymmetric_signing_keys_are_taken() {
        let doc = json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": RSA_N, "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "pinned", "alg": "RS256", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "confused", "alg": "HS256", "n": RSA_N, "e": "AQAB"},
            {"kty": "weird", "kid": "x"},
        ]});
        let set = KeySet::parse(&doc).unwrap();
        assert!(set.get(Some("rsa")).unwrap().algorithms.contains(&Algorithm::RS256));
        assert_eq!(set.get(Some("pinned")).unwrap().algorithms, vec![Algorithm::RS256]);
        for refused in ["enc", "hmac", "confused", "x"] {
            assert!(set.get(Some(refused)).is_none(), "{refused}");
        }
        // Without a key id only a set of one key answers.
        assert!(set.get(None).is_none());
        assert!(KeySet::parse(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).is_err());
        assert!(KeySet::parse(&json!({"nokeys": []})).is_err());
    }
}
