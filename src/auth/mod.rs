//! Who is calling over HTTP, proven: zava-mcp as an OAuth 2.1 protected resource (MCP authorization spec).
//!
//! `serve --identity jwt` verifies `Authorization: Bearer` JWTs (`jwt`, keys from `jwks`, found by
//! `discovery`), maps their claims to a tenant (`claims`) and their scopes to tools (`scopes`), and answers
//! what is missing or wrong with the spec's 401 and 403 challenges pointing to the protected resource metadata
//! (`metadata`). `http` is the middleware in front of `/mcp`. Without an identity provider, `dev` keys let a
//! developer mint tokens (`zava-mcp token`). `serve --identity header` (the loopback default) trusts the
//! `x-rls-user-id` header instead, as the origin did; stdio keeps its configured identity (no OAuth there).

pub mod api_key;
pub mod claims;
pub mod dev;
pub mod discovery;
pub(crate) mod http;
pub mod jwks;
pub mod jwt;
pub mod mapping;
pub mod metadata;
pub mod scopes;

use std::time::Duration;

use anyhow::{Result, bail};

use crate::identity::Directory;
use crate::tenant::Tenant;
use claims::{ClaimNames, ClaimsError};
use jwt::{Expectations, TokenError, Trust, Verifier};
use metadata::ResourceUri;
use scopes::{Granted, ToolScopes};

/// How HTTP callers prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum IdentityMode {
    /// The `x-rls-user-id` header, trusted as sent: for development on loopback only.
    Header,
    /// `Authorization: Bearer` JWTs from an identity provider (or development tokens from `zava-mcp token`).
    Jwt,
    /// `Authorization: Bearer zava_…` static keys for machine clients (`--api-keys-file`, `zava-mcp api-key`).
    ApiKey,
}

/// A caller whose token verified.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's `sub` (for logs: never the token).
    pub subject: String,
    pub tenant: Tenant,
    pub granted: Granted,
}

/// Where bearer tokens come from and what they must say.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The identity provider's issuer, exactly as it publishes it. `None`: trust the development key.
    pub issuer: Option<String>,
    /// The provider's JWKS; discovered from the issuer when not given.
    pub jwks_uri: Option<String>,
    /// Further accepted audiences besides the resource URI (Entra's `api://<client id>`).
    pub extra_audiences: Vec<String>,
    pub leeway: Duration,
    pub require_at_jwt: bool,
    /// No two JWKS fetches closer together than this.
    pub refetch_floor: Duration,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            issuer: None,
            jwks_uri: None,
            extra_audiences: vec![],
            leeway: Duration::from_secs(30),
            require_at_jwt: false,
            refetch_floor: Duration::from_secs(30),
        }
    }
}

/// Everything the HTTP layer needs to authenticate a request.
pub struct Authenticator {
    pub resource: ResourceUri,
    /// JWTs (`--identity jwt`).
    verifier: Option<Verifier>,
    /// Static keys (`--identity api-key`).
    api_keys: Option<api_key::ApiKeys>,
    names: ClaimNames,
    /// Claims → stores decided by the deployment (`--identity-map`), before or instead of the direct claims.
    map: Option<mapping::IdentityMap>,
    pub tool_scopes: ToolScopes,
    directory: Directory,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Authenticator({})", self.resource.as_str())
    }
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("this server needs an access token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the token is valid but maps to no stores: {0}")]
    NoTenant(#[from] ClaimsError),
    #[error(transparent)]
    ApiKey(#[from] api_key::KeyError),
    #[error("this server does not accept {0}")]
    NotAccepted(&'static str),
}

impl AuthError {
    /// A short stable name for metrics (`zava_auth_failures_total{reason}`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::NotBearer => "not_bearer",
            AuthError::Token(e) => e.code(),
            AuthError::NoTenant(_) => "no_tenant",
            AuthError::ApiKey(api_key::KeyError::Malformed) => "api_key_malformed",
            AuthError::ApiKey(api_key::KeyError::Invalid) => "api_key_invalid",
            AuthError::NotAccepted(_) => "not_accepted",
        }
    }
}

impl Authenticator {
    /// Builds the verifier: with an issuer, its keys (discovered if need be, fetched once now); without, the
    /// development key from `data_dir`.
    pub async fn start(
        settings: &JwtSettings,
        resource: ResourceUri,
        names: ClaimNames,
        tool_scopes: ToolScopes,
        directory: Directory,
        data_dir: &std::path::Path,
        http: reqwest::Client,
    ) -> Result<Self> {
        let trust = match &settings.issuer {
            Some(issuer) => {
                let uri = match &settings.jwks_uri {
                    Some(uri) => uri.clone(),
                    None => discovery::jwks_uri(&http, issuer).await.map_err(anyhow::Error::msg)?,
                };
                let jwks = jwks::Jwks::new(uri, http, settings.refetch_floor);
                match jwks.prefetch().await {
                    Ok(n) => tracing::info!(issuer, jwks_uri = jwks.uri(), keys = n, "identity provider keys loaded"),
                    Err(e) => {
                        tracing::warn!(issuer, error = %e, "identity provider keys not loaded yet; tokens fail until they are")
                    }
                }
                Trust::Provider { issuer: issuer.clone(), jwks }
            }
            None => {
                if settings.jwks_uri.is_some() {
                    bail!("--jwt-jwks-uri needs --jwt-issuer: tokens are only trusted for the issuer they name");
                }
                let key = dev::DevKey::load_or_create(data_dir)?;
                tracing::warn!(
                    key = %dev::DevKey::path(data_dir).display(),
                    "NO IDENTITY PROVIDER CONFIGURED: trusting development tokens signed with the key in the data \
                     directory (`zava-mcp token`). Anyone who can read that file can act as any store. Set \
                     --jwt-issuer for production."
                );
                Trust::Development { key: key.decoding() }
            }
        };
        let mut audiences = vec![resource.as_str().to_owned()];
        audiences.extend(settings.extra_audiences.iter().cloned());
        let expect = Expectations { audiences, leeway: settings.leeway, require_at_jwt: settings.require_at_jwt };
        let verifier = Some(Verifier::new(trust, expect));
        Ok(Self { resource, verifier, api_keys: None, names, map: None, tool_scopes, directory })
    }

    /// Accepts the static keys of `keys` too.
    pub fn with_api_keys(mut self, keys: api_key::ApiKeys) -> Self {
        self.api_keys = Some(keys);
        self
    }

    /// Maps tokens' claims to stores through `map` (`auth::mapping`).
    pub fn with_identity_map(mut self, map: mapping::IdentityMap) -> Self {
        self.map = Some(map);
        self
    }

    /// Static keys only (`--identity api-key`): no JWT is accepted.
    pub fn api_keys_only(
        resource: ResourceUri,
        keys: api_key::ApiKeys,
        tool_scopes: ToolScopes,
        directory: Directory,
    ) -> Self {
        Self {
            resource,
            verifier: None,
            api_keys: Some(keys),
            names: ClaimNames::default(),
            map: None,
            tool_scopes,
            directory,
        }
    }

    /// The issuer the protected resource metadata names (none in development).
    pub fn issuer(&self) -> Option<&str> {
        match self.verifier.as_ref().map(Verifier::trust) {
            Some(Trust::Provider { issuer, .. }) => Some(issuer),
            _ => None,
        }
    }

    /// Whether tokens can be verified now, and why not (for `/health/ready`).
    pub async fn status(&self) -> serde_json::Value {
        let mut status = match self.verifier.as_ref().map(Verifier::trust) {
            Some(Trust::Provider { issuer, jwks }) => {
                let (keys, error) = jwks.status().await;
                serde_json::json!({"issuer": issuer, "jwks_uri": jwks.uri(), "keys": keys, "error": error, "ok": keys > 0})
            }
            Some(Trust::Development { .. }) => serde_json::json!({
                "issuer": jwt::DEV_ISSUER, "ok": true,
                "warning": "development tokens: no identity provider is configured"
            }),
            None => serde_json::json!({"ok": true}),
        };
        if let Some(keys) = &self.api_keys {
            status["api_keys"] = keys.len().into();
        }
        status
    }

    /// The caller behind an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => return Err(AuthError::NotBearer),
        };
        if token.starts_with(api_key::PREFIX) {
            let keys = self.api_keys.as_ref().ok_or(AuthError::NotAccepted("API keys (--identity api-key)"))?;
            let holder = keys.verify(token).await?;
            return Ok(Principal {
                subject: format!("api-key:{}", holder.name),
                tenant: holder.tenant,
                granted: holder.granted,
            });
        }
        let verifier = self.verifier.as_ref().ok_or(AuthError::NotAccepted("JWTs (--identity jwt), only API keys"))?;
        let claims = verifier.verify(token).await?;
        let tenant = match &self.map {
            None => claims::tenant(&claims, &self.names, &self.directory)?,
            Some(map) => match map.tenant(&claims) {
                Some(t) => t,
                None if map.direct_claims() => claims::tenant(&claims, &self.names, &self.directory)?,
                None => return Err(AuthError::NoTenant(ClaimsError::Unmapped)),
            },
        };
        let subject = claims.get("sub").and_then(|s| s.as_str()).unwrap_or("(no sub)").to_owned();
        Ok(Principal { subject, tenant, granted: Granted::from_claims(&claims) })
    }
}
