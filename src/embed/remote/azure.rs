//! The Azure OpenAI dialect: `POST {endpoint}/openai/deployments/{deployment}/embeddings?api-version=…`,
//! signed with the resource key (`api-key` header) or a Microsoft Entra ID token (`Authorization: Bearer`).
//!
//! The deployment, not a model name, says which model answers, so it is what the stored model id records:
//! two deployments of one model are still two ids, and `embed --rebuild` is asked for when it changes.

use reqwest::header::HeaderValue;
use reqwest::{RequestBuilder, Url};

use super::entra::EntraTokens;
use crate::embed::error::EmbedError;
use crate::embed::settings::{AzureAuth, AzureSettings, Secret};
use crate::embed::wire::{EmbeddingRequest, EncodingFormat};

#[derive(Debug)]
pub struct Azure {
    url: Url,
    settings: AzureSettings,
    auth: Auth,
}

#[derive(Debug)]
enum Auth {
    Key(Secret),
    Entra(Box<EntraTokens>),
}

impl Azure {
    pub fn new(settings: &AzureSettings) -> Self {
        let mut url = settings.endpoint.join(&["openai", "deployments", settings.deployment.as_str(), "embeddings"]);
        url.query_pairs_mut().append_pair("api-version", settings.api_version.as_str());
        let auth = match &settings.auth {
            AzureAuth::ApiKey(key) => Auth::Key(key.clone()),
            AzureAuth::Entra(credentials) => Auth::Entra(Box::new(EntraTokens::new(credentials))),
        };
        Self { url, settings: settings.clone(), auth }
    }

    /// `azure-openai/<deployment>`.
    pub fn model_id(&self) -> String {
        format!("azure-openai/{}", self.settings.deployment)
    }

    pub fn endpoint(&self) -> String {
        self.settings.endpoint.to_string()
    }

    /// The request for `texts`, signed (which may first mean getting an Entra ID token).
    pub async fn request(&self, http: &reqwest::Client, texts: &[String]) -> Result<RequestBuilder, EmbedError> {
        let body =
            EmbeddingRequest { input: texts, model: None, encoding_format: EncodingFormat::Float, dimensions: None };
        let request = http.post(self.url.clone()).json(&body);
        Ok(match &self.auth {
            Auth::Key(key) => {
                // Settings hold only checked secrets, which have no control characters, so this cannot fail.
                let mut value = HeaderValue::from_str(key.expose()).expect("a checked secret is a valid header");
                value.set_sensitive(true);
                request.header("api-key", value)
            }
            Auth::Entra(tokens) => request.bearer_auth(tokens.token(http).await?.expose()),
        })
    }

    /// The service refused the credentials: a cached Entra ID token is dropped so the next call signs in anew.
    pub async fn refused(&self) {
        if let Auth::Entra(tokens) = &self.auth {
            tokens.forget().await;
        }
    }

    /// What a 401/403 refused, for the error message.
    pub fn credential(&self) -> String {
        match &self.auth {
            Auth::Key(_) => "API key (AZURE_OPENAI_API_KEY)".into(),
            Auth::Entra(tokens) => format!(
                "Entra ID token of client {} (it needs the \"Cognitive Services OpenAI User\" role on the resource)",
                tokens.client_id()
            ),
        }
    }

    /// What a 404 did not find.
    pub fn missing(&self) -> String {
        format!(
            "deployment `{}` (EMBEDDING_MODEL_DEPLOYMENT_NAME) with api-version {}",
            self.settings.deployment,
            self.settings.api_version.as_str()
        )
    }
}
