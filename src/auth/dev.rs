//! Development tokens: `zava-mcp token` signs a short-lived JWT with a key kept in the data directory
//! (`dev-token.key`, mode 0600), and `serve --identity jwt` without an identity provider trusts that key, saying
//! so loudly. The tokens go through exactly the checks a provider's would (issuer, audience, expiry, scopes,
//! claims → stores); only the key differs. Never for production: whoever can read the data directory can mint
//! any identity.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::claims::ClaimNames;
use super::jwt::DEV_ISSUER;
use super::scopes::Scope;

/// The development signing key: 32 random bytes.
pub struct DevKey(Vec<u8>);

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevKey(..)")
    }
}

impl DevKey {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("dev-token.key")
    }

    /// Reads the key, creating it (0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        let path = Self::path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() >= 32);
                let bytes = bytes.with_context(|| format!("{} does not hold a 64-hex-digit key", path.display()))?;
                return Ok(Self(bytes));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let key: [u8; 32] = rand::random();
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(hex::encode(key).as_bytes())?;
        Ok(Self(key.to_vec()))
    }

    pub fn decoding(&self) -> DecodingKey {
        DecodingKey::from_secret(&self.0).expect("an HMAC key of 32 bytes is valid")
    }

    /// Signs a token for `audience` carrying `identity` (claims → stores) and `scopes`, valid for `ttl`.
    pub fn mint(&self, audience: &str, identity: &DevIdentity, scopes: &[Scope], ttl: Duration) -> Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let names = ClaimNames::default();
        let mut claims = Map::new();
        claims.insert("iss".into(), DEV_ISSUER.into());
        claims.insert("aud".into(), audience.into());
        claims.insert("iat".into(), now.into());
        claims.insert("nbf".into(), now.into());
        claims.insert("exp".into(), (now + ttl.as_secs()).into());
        claims.insert("jti".into(), hex::encode(rand::random::<[u8; 12]>()).into());
        let scope: Vec<&str> = scopes.iter().map(Scope::as_str).collect();
        claims.insert("scope".into(), scope.join(" ").into());
        match identity {
            DevIdentity::HeadOffice => {
                claims.insert("sub".into(), "dev:head-office".into());
                claims.insert(names.role, "head_office".into());
            }
            DevIdentity::Managers(ids) => {
                claims.insert("sub".into(), format!("dev:{}", ids.join(",")).into());
                claims.insert(names.manager, if ids.len() == 1 { json!(ids[0]) } else { json!(ids) });
            }
            DevIdentity::Region(stores) => {
                claims.insert("sub".into(), format!("dev:region:{}", stores.join(",")).into());
                claims.insert(names.role, "regional_manager".into());
                claims.insert(names.stores, Value::from(stores.clone()));
            }
        }
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        let key = EncodingKey::from_secret(&self.0)?;
        Ok(jsonwebtoken::encode(&header, &claims, &key)?)
    }
}

/// Who a development token speaks for.
#[derive(Debug, Clone)]
pub enum DevIdentity {
    HeadOffice,
    /// Store manager UUIDs (several: a regional manager, as the header would carry them).
    Managers(Vec<String>),
    /// A regional manager by role, with stores by name or manager UUID.
    Region(Vec<String>),
}
