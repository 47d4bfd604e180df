//! Static API keys for machine clients (nightly reports, cron jobs) that cannot do an OAuth flow.
//!
//! A key looks like `zava_<id>_<secret>` and is sent as `Authorization: Bearer <key>`. The server keeps only an
//! argon2id hash of each key, in a TOML file (`--api-keys-file`), with the identity and scopes it stands for;
//! `zava-mcp api-key` makes a key and prints its entry. The id picks the entry, argon2 verifies the whole key
//! (constant-time comparison of the hashes), on a blocking thread; a key that verified is remembered for a few
//! minutes by its SHA-256, so a client calling often pays argon2 once, not per call.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::scopes::{Granted, Scope};
use crate::identity::Directory;
use crate::tenant::Tenant;

/// What every key starts with, so a bearer value is known to be a key, not a JWT, before anything is parsed.
pub const PREFIX: &str = "zava_";

/// One entry of the keys file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    /// Who the key is for, for logs and audit (`nightly-report`).
    name: String,
    /// The `<id>` part of the key.
    id: String,
    /// The argon2id PHC string of the whole key.
    hash: String,
    /// `head-office`, a store name (`seattle`) or manager UUIDs, comma-separated.
    identity: String,
    scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    key: Vec<FileEntry>,
}

struct Entry {
    name: String,
    hash: String,
    tenant: Tenant,
    granted: Granted,
}

/// The caller an API key stands for.
#[derive(Debug, Clone)]
pub struct KeyHolder {
    pub name: String,
    pub tenant: Tenant,
    pub granted: Granted,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the API key is malformed (expected zava_<id>_<secret>)")]
    Malformed,
    #[error("the API key is not valid")]
    Invalid,
}

/// Keys that verified recently, by the SHA-256 of the key, with when.
type Verified = HashMap<[u8; 32], (Arc<Entry>, Instant)>;

pub struct ApiKeys {
    by_id: HashMap<String, Arc<Entry>>,
    verified: Mutex<Verified>,
}

/// How long a verified key is remembered.
const REMEMBER: Duration = Duration::from_secs(300);
const REMEMBER_MAX: usize = 4096;

impl ApiKeys {
    /// Reads and checks the keys file: every entry's identity must name known stores, its scopes must be
    /// scopes, its hash an argon2 PHC string; ids are unique.
    pub fn load(path: &Path, directory: &Directory) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file: File =
            toml::from_str(&text).with_context(|| format!("{} is not a valid API keys file", path.display()))?;
        let mut by_id = HashMap::new();
        for e in file.key {
            let at = || format!("{}: key `{}`", path.display(), e.name);
            if argon2::password_hash::phc::PasswordHash::new(&e.hash).is_err() {
                bail!("{}: `hash` is not an argon2 PHC string (make keys with `zava-mcp api-key`)", at());
            }
            let tenant = directory.tenant_named(&e.identity).with_context(at)?;
            let mut scopes = std::collections::BTreeSet::new();
            for s in &e.scopes {
                scopes.insert(Scope::parse(s).map_err(anyhow::Error::msg).with_context(at)?);
            }
            let entry = Entry { name: e.name.clone(), hash: e.hash, tenant, granted: Granted::Only(scopes) };
            if by_id.insert(e.id.clone(), Arc::new(entry)).is_some() {
                bail!("{}: the id `{}` is used twice", at(), e.id);
            }
        }
        Ok(Self { by_id, verified: Mutex::default() })
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The holder of `key`, if it is one of the configured keys.
    pub async fn verify(&self, key: &str) -> Result<KeyHolder, KeyError> {
        let id = key
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id)
            .ok_or(KeyError::Malformed)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some((entry, at)) = self.verified.lock().await.get(&digest)
            && at.elapsed() < REMEMBER
        {
            return Ok(holder(entry));
        }
        let entry = self.by_id.get(id).cloned().ok_or(KeyError::Invalid)?;
        let (key_owned, hash) = (key.to_owned(), entry.hash.clone());
        let ok = tokio::task::spawn_blocking(move || {
            Argon2::default().verify_password(key_owned.as_bytes(), hash.as_str()).is_ok()
        })
        .await
        .unwrap_or(false);
        if !ok {
            return Err(KeyError::Invalid);
        }
        let mut verified = self.verified.lock().await;
        if verified.len() >= REMEMBER_MAX {
            verified.clear();
        }
        verified.insert(digest, (entry.clone(), Instant::now()));
        Ok(holder(&entry))
    }
}

fn holder(e: &Entry) -> KeyHolder {
    KeyHolder { name: e.name.clone(), tenant: e.tenant.clone(), granted: e.granted.clone() }
}

/// A new key and the argon2id hash to store: (`zava_<id>_<secret>`, id, PHC string).
pub fn generate() -> Result<(String, String, String)> {
    let id = hex::encode(rand::random::<[u8; 4]>());
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let key = format!("{PREFIX}{id}_{secret}");
    let hash =
        Argon2::default().hash_password(key.as_bytes()).map_err(|e| anyhow::anyhow!("cannot hash the key: {e}"))?;
    Ok((key, id, hash.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::stores::STORES;

    fn directory() -> Directory {
        Directory::new(STORES.iter().map(|s| (s.manager, s.name.to_owned())))
    }

    fn file(entries: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, entries.as_bytes()).unwrap();
        f
    }

    #[tokio::test]
    async fn a_generated_key_verifies_and_anything_else_does_not() {
        let (key, id, hash) = generate().unwrap();
        assert!(!hash.contains(&key) && hash.starts_with("$argon2id$"), "{hash}");
        let f = file(&format!(
            "[[key]]\nname = \"nightly\"\nid = \"{id}\"\nhash = \"{hash}\"\nidentity = \"seattle, redmond\"\nscopes = [\"sales:read\"]\n"
        ));
        let keys = ApiKeys::load(f.path(), &directory()).unwrap();
        let holder = keys.verify(&key).await.unwrap();
        assert_eq!(holder.name, "nightly");
        assert_eq!(holder.tenant, Tenant::from_uuids([STORES[0].manager, STORES[5].manager]).unwrap());
        assert!(holder.granted.allows(&Scope::parse("sales:read").unwrap()));
        assert!(keys.verify(&key).await.is_ok(), "the second time comes from the cache");
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(keys.verify(&wrong).await.unwrap_err(), KeyError::Invalid);
        assert_eq!(keys.verify(&format!("{PREFIX}00000000_x")).await.unwrap_err(), KeyError::Invalid);
        assert_eq!(keys.verify("zava_nounderscore").await.unwrap_err(), KeyError::Malformed);
        assert_eq!(keys.verify("eyJhbGciOi.x.y").await.unwrap_err(), KeyError::Malformed);
    }

    #[test]
    fn a_bad_keys_file_is_an_error_naming_the_key() {
        let (_, id, hash) = generate().unwrap();
        let entry = |identity: &str, scopes: &str, hash: &str| {
            format!(
                "[[key]]\nname = \"job\"\nid = \"{id}\"\nhash = \"{hash}\"\nidentity = \"{identity}\"\nscopes = {scopes}\n"
            )
        };
        let d = directory();
        let load = |text: String| ApiKeys::load(file(&text).path(), &d).err().map(|e| format!("{e:#}"));
        assert!(load(entry("paris", "[]", &hash)).unwrap().contains("paris"));
        assert!(load(entry("seattle", "[\"a b\"]", &hash)).unwrap().contains("scope"));
        assert!(load(entry("seattle", "[]", "plain")).unwrap().contains("argon2"));
        assert!(
            load(format!("{}{}", entry("seattle", "[]", &hash), entry("tacoma", "[]", &hash)))
                .unwrap()
                .contains("twice")
        );
        assert!(load(format!("{}color = 1\n", entry("seattle", "[]", &hash))).unwrap().contains("color"));
        assert!(load(entry("head-office", "[\"sales:read\"]", &hash)).is_none());
    }
}
