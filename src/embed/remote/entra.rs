//! Microsoft Entra ID access tokens for Azure OpenAI, from client credentials (an app registration's id and
//! secret), cached until shortly before they expire.
//!
//! This is the OAuth 2.0 client-credentials grant, `POST {authority}/{tenant}/oauth2/v2.0/token` with the
//! scope `https://cognitiveservices.azure.com/.default`, which is all `azure-identity`'s
//! `ClientSecretCredential` does for this case. Concurrent callers wait for one token request instead of each
//! making their own; a token the service refused is forgotten so the next call signs in again.

use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::embed::error::EmbedError;
use crate::embed::settings::{EntraCredentials, Secret};
use crate::embed::wire;

/// The permission Azure OpenAI (Cognitive Services) requests need.
pub const SCOPE: &str = "https://cognitiveservices.azure.com/.default";
/// Tokens are renewed this long before they expire (or halfway through a shorter life).
const RENEW_BEFORE: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct EntraTokens {
    url: Url,
    credentials: EntraCredentials,
    cached: Mutex<Option<Token>>,
}

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    renew_at: Instant,
}

/// The token endpoint's answer; `expires_in` is a number, or a string in some older endpoints.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: serde_json::Value,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl EntraTokens {
    pub fn new(credentials: &EntraCredentials) -> Self {
        let url = credentials.authority.join(&[credentials.tenant.as_str(), "oauth2", "v2.0", "token"]);
        Self { url, credentials: credentials.clone(), cached: Mutex::new(None) }
    }

    /// A valid access token: the cached one, or a new one.
    pub async fn token(&self, http: &reqwest::Client) -> Result<Secret, EmbedError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.value.clone());
        }
        let token = self.fetch(http).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Drops the cached token (the service refused it): the next call signs in again.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    pub fn client_id(&self) -> String {
        self.credentials.client_id.to_string()
    }

    fn error(&self, detail: String, transient: bool) -> EmbedError {
        EmbedError::SignIn { authority: self.credentials.authority.to_string(), detail, transient }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<Token, EmbedError> {
        let client_id = self.credentials.client_id.to_string();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", self.credentials.client_secret.expose()),
            ("scope", SCOPE),
        ];
        let started = Instant::now();
        let response = http
            .post(self.url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| self.error(format!("no answer from {}: {}", self.url, super::cause(&e)), true))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.error(format!("the answer broke off: {}", super::cause(&e)), true))?;
        if !status.is_success() {
            let detail = match serde_json::from_slice::<TokenError>(&body) {
                Ok(e) => format!("{} ({status}): {}", e.error, e.error_description.unwrap_or_default()),
                Err(_) => format!("{status}: {}", wire::error_message(&body)),
            };
            let transient = status.is_server_error() || status.as_u16() == 429;
            let hint = if transient { "" } else { "; check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET" };
            return Err(self.error(format!("{detail}{hint}"), transient));
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| self.error(format!("not a token answer: {e}"), false))?;
        let lifetime = match &answer.expires_in {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .map(Duration::from_secs)
        .ok_or_else(|| self.error(format!("expires_in is not a number of seconds: {}", answer.expires_in), false))?;
        let value = answer.access_token.parse::<Secret>().map_err(|e| self.error(format!("the token {e}"), false))?;
        tracing::debug!(client_id = %self.credentials.client_id, lifetime_s = lifetime.as_secs(), "signed in to Entra ID");
        Ok(Token { value, renew_at: started + lifetime.saturating_sub(RENEW_BEFORE.min(lifetime / 2)) })
    }
}
