//! Passwords and the tenant-context signing key, kept in the data directory (mode 0600).
//!
//! The managed cluster needs a superuser password, an owner password and a query-role password, all generated
//! on first use; the context key signs tenant contexts (see `db::context`). None of them is ever logged.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct Secrets {
    pub superuser_password: String,
    pub owner_password: String,
    pub query_password: String,
    /// 32 random bytes, hex.
    pub context_key: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

/// 32 random bytes from the operating system, as 64 hex characters.
pub fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Secrets {
    pub fn generate() -> Self {
        Self {
            superuser_password: random_hex(),
            owner_password: random_hex(),
            query_password: random_hex(),
            context_key: random_hex(),
        }
    }

    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(
                toml::from_str(&text).with_context(|| format!("{} is not a valid secrets file", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn load_or_create(path: &Path) -> Result<Self> {
        if let Some(s) = Self::load(path)? {
            return Ok(s);
        }
        let s = Self::generate();
        s.save(path)?;
        Ok(s)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(toml::to_string(self)?.as_bytes())?;
        Ok(())
    }
}
