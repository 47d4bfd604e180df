//! The OpenAI dialect: `POST <base>/embeddings` with the model in the body and the key as a bearer token.
//!
//! Every OpenAI-compatible server speaks it (OpenAI, Ollama, vLLM, Hugging Face TEI, `zava-mcp
//! embed-server`), so this is also the way to share one model process between several zava-mcp replicas.

use reqwest::{RequestBuilder, Url};

use crate::embed::settings::OpenAiSettings;
use crate::embed::wire::{EmbeddingRequest, EncodingFormat};

#[derive(Debug)]
pub struct OpenAi {
    url: Url,
    settings: OpenAiSettings,
}

impl OpenAi {
    pub fn new(settings: &OpenAiSettings) -> Self {
        Self { url: settings.base_url.join(&["embeddings"]), settings: settings.clone() }
    }

    /// `openai/<model>`, or `openai/<model>@<dimensions>` when shortened vectors are asked for.
    pub fn model_id(&self) -> String {
        match self.settings.dimensions {
            Some(d) => format!("openai/{}@{d}", self.settings.model),
            None => format!("openai/{}", self.settings.model),
        }
    }

    pub fn endpoint(&self) -> String {
        self.settings.base_url.to_string()
    }

    pub fn requested_dimensions(&self) -> Option<u32> {
        self.settings.dimensions
    }

    pub fn request(&self, http: &reqwest::Client, texts: &[String]) -> RequestBuilder {
        let body = EmbeddingRequest {
            input: texts,
            model: Some(self.settings.model.as_str()),
            encoding_format: EncodingFormat::Float,
            dimensions: self.settings.dimensions,
        };
        let request = http.post(self.url.clone()).json(&body);
        match &self.settings.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    /// What a 401/403 refused, for the error message.
    pub fn credential(&self) -> String {
        match self.settings.api_key {
            Some(_) => "API key (OPENAI_API_KEY)".into(),
            None => "request without an API key (set OPENAI_API_KEY)".into(),
        }
    }

    /// What a 404 did not find.
    pub fn missing(&self) -> String {
        format!("model `{}` (ZAVA_EMBEDDING_MODEL)", self.settings.model)
    }
}
