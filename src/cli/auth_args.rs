//! The flags of `serve --identity jwt`: which identity provider to trust, what a token must say, and how its
//! claims and scopes are read. Parsed once into `auth::JwtSettings`, `ClaimNames` and `ToolScopes`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::auth::api_key::ApiKeys;
use crate::auth::claims::ClaimNames;
use crate::auth::mapping::IdentityMap;
use crate::auth::metadata::ResourceUri;
use crate::auth::scopes::ToolScopes;
use crate::auth::{Authenticator, JwtSettings};
use crate::identity::Directory;

/// The tools whose scopes `--tool-scope` may set.
pub(crate) const TOOLS: [&str; 4] =
    ["execute_sales_query", "get_multiple_table_schemas", "semantic_search_products", "get_current_utc_date"];

#[derive(Debug, Clone, Args)]
pub struct JwtArgs {
    /// This server's URL as clients reach it (the OAuth resource URI): tokens must name it in `aud`, and the
    /// protected resource metadata is published beside it. Default: http://ADDR/mcp for a loopback --http.
    #[arg(long, env = "ZAVA_RESOURCE_URI", value_name = "URL")]
    pub resource_uri: Option<String>,
    /// The identity provider's issuer, exactly as its metadata publishes it (e.g.
    /// https://login.microsoftonline.com/TENANT_ID/v2.0). Without it, development tokens from `zava-mcp token`
    /// are trusted instead (never in production).
    #[arg(long, env = "ZAVA_JWT_ISSUER", value_name = "URL")]
    pub jwt_issuer: Option<String>,
    /// The provider's JWKS URL. Default: discovered from the issuer (OpenID Connect, then RFC 8414 metadata).
    #[arg(long, env = "ZAVA_JWT_JWKS_URI", value_name = "URL")]
    pub jwt_jwks_uri: Option<String>,
    /// More accepted audiences besides the resource URI, comma-separated (Entra ID: api://CLIENT_ID).
    #[arg(long, env = "ZAVA_JWT_AUDIENCE", value_delimiter = ',', value_name = "AUD")]
    pub jwt_audience: Vec<String>,
    /// Clock skew allowed on exp and nbf, in seconds.
    #[arg(long, env = "ZAVA_JWT_LEEWAY_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub jwt_leeway_secs: u64,
    /// Accept only tokens typed `at+jwt` (RFC 9068). Off by default: many providers (Entra ID) type access
    /// tokens `JWT`; ID tokens are refused either way (they carry nonce or at_hash and the client's audience).
    #[arg(long, env = "ZAVA_JWT_REQUIRE_AT_JWT")]
    pub jwt_require_at_jwt: bool,
    /// Fewest seconds between two fetches of the provider's keys (a token with an unknown key id triggers one).
    #[arg(long, env = "ZAVA_JWT_JWKS_REFETCH_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub jwt_jwks_refetch_secs: u64,
    /// The claim holding a store manager's UUID (several, as a list, for a regional manager).
    #[arg(long, env = "ZAVA_CLAIM_RLS_USER_ID", default_value = "rls_user_id", value_name = "CLAIM")]
    pub claim_rls_user_id: String,
    /// The claim holding the caller's role: head_office, regional_manager or store_manager.
    #[arg(long, env = "ZAVA_CLAIM_ROLE", default_value = "zava_role", value_name = "CLAIM")]
    pub claim_role: String,
    /// The claim listing a regional manager's stores (names or manager UUIDs).
    #[arg(long, env = "ZAVA_CLAIM_STORES", default_value = "zava_stores", value_name = "CLAIM")]
    pub claim_stores: String,
    /// The API keys file (`--identity api-key`): TOML `[[key]]` entries with name, id, argon2 hash, identity
    /// and scopes, as `zava-mcp api-key` prints them.
    #[arg(long, env = "ZAVA_API_KEYS_FILE", value_name = "PATH")]
    pub api_keys_file: Option<std::path::PathBuf>,
    /// An identity map (TOML `[[map]]` rules: claim, `equals` or `matches`, identity) deciding which stores a
    /// token's holder sees from its groups, app roles, sub or email, for identity providers that cannot carry
    /// store lists (Microsoft Entra ID). Tokens no rule matches get 403 unless the file sets direct_claims.
    #[arg(long, env = "ZAVA_IDENTITY_MAP", value_name = "PATH")]
    pub identity_map: Option<std::path::PathBuf>,
    /// The scope a tool needs, as TOOL=SCOPE, comma-separated or repeated. Defaults: execute_sales_query and
    /// get_multiple_table_schemas need sales:read, semantic_search_products needs products:read.
    #[arg(long, env = "ZAVA_TOOL_SCOPES", value_delimiter = ',', value_name = "TOOL=SCOPE")]
    pub tool_scope: Vec<String>,
}

impl JwtArgs {
    /// The resource URI: given, or derived from a loopback listener.
    pub fn resource(&self, http: SocketAddr) -> Result<ResourceUri> {
        match &self.resource_uri {
            Some(uri) => ResourceUri::parse(uri).map_err(|e| anyhow::anyhow!("--resource-uri: {e}")),
            None if http.ip().is_loopback() => {
                Ok(ResourceUri::parse(&format!("http://{http}/mcp")).expect("a socket address makes a URL"))
            }
            None => bail!(
                "--identity jwt on {http} needs --resource-uri: the URL clients use to reach this server (e.g. \
                 https://mcp.zava.example/mcp), which tokens must carry as their audience"
            ),
        }
    }

    pub fn settings(&self) -> Result<JwtSettings> {
        for (flag, value) in [("--jwt-issuer", &self.jwt_issuer), ("--jwt-jwks-uri", &self.jwt_jwks_uri)] {
            if let Some(v) = value
                && !(v.starts_with("https://") || v.starts_with("http://"))
            {
                bail!("{flag} must be an http(s) URL, not `{v}`");
            }
        }
        Ok(JwtSettings {
            issuer: self.jwt_issuer.clone(),
            jwks_uri: self.jwt_jwks_uri.clone(),
            extra_audiences: self.jwt_audience.iter().map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect(),
            leeway: Duration::from_secs(self.jwt_leeway_secs),
            require_at_jwt: self.jwt_require_at_jwt,
            refetch_floor: Duration::from_secs(self.jwt_jwks_refetch_secs),
        })
    }

    pub fn claim_names(&self) -> ClaimNames {
        ClaimNames {
            manager: self.claim_rls_user_id.clone(),
            role: self.claim_role.clone(),
            stores: self.claim_stores.clone(),
        }
    }

    pub fn tool_scopes(&self) -> Result<ToolScopes> {
        ToolScopes::with_overrides(&self.tool_scope, &TOOLS).map_err(|e| anyhow::anyhow!("--tool-scope: {e}"))
    }

    /// Everything checked, the provider's keys fetched (or the development key loaded) when `jwt`, the API keys
    /// file read when given.
    pub async fn authenticator(
        &self,
        http: SocketAddr,
        jwt: bool,
        directory: Directory,
        data_dir: &Path,
    ) -> Result<Authenticator> {
        let resource = self.resource(http)?;
        let keys = match &self.api_keys_file {
            Some(path) => Some(ApiKeys::load(path, &directory)?),
            None => None,
        };
        if let Some(keys) = &keys {
            tracing::info!(keys = keys.len(), "API keys loaded");
        }
        if !jwt {
            let keys = keys.context("--identity api-key needs --api-keys-file")?;
            return Ok(Authenticator::api_keys_only(resource, keys, self.tool_scopes()?, directory));
        }
        let map = match &self.identity_map {
            Some(path) => Some(IdentityMap::load(path, &directory)?),
            None => None,
        };
        let client = crate::embed::remote::http_client(Duration::from_secs(10))?;
        let auth = Authenticator::start(
            &self.settings()?,
            resource,
            self.claim_names(),
            self.tool_scopes()?,
            directory,
            data_dir,
            client,
        )
        .await?;
        let auth = match map {
            Some(map) => {
                tracing::info!(rules = map.len(), direct_claims = map.direct_claims(), "identity map loaded");
                auth.with_identity_map(map)
            }
            None => auth,
        };
        Ok(match keys {
            Some(keys) => auth.with_api_keys(keys),
            None => auth,
        })
    }
}
