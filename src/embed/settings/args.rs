//! The embedding flags and environment variables, shared by every command that embeds (`serve`, `stdio`,
//! `embed`, `db seed`, `db start`), with the help text a person reads.
//!
//! Values arrive here as typed by a person and are checked in [`super::EmbeddingSettings::resolve`], which
//! looks only at the settings of the chosen provider: an unrelated `AZURE_OPENAI_ENDPOINT` in the environment
//! must not stop the local model from starting. Secrets are held as [`Secret`] from the start, so `--help`,
//! `Debug` and error messages never show them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::values::Secret;

/// Which service turns texts into vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// all-MiniLM-L6-v2 (or --embedding-model-dir) run in this process on the CPU; works offline.
    Local,
    /// any OpenAI-compatible `/v1/embeddings` endpoint: OpenAI, Ollama, vLLM, Hugging Face TEI, or
    /// `zava-mcp embed-server`.
    #[value(name = "openai")]
    OpenAi,
    /// an Azure OpenAI embedding deployment, signed in with an API key or Microsoft Entra ID.
    #[value(name = "azure-openai")]
    AzureOpenAi,
}

/// The arithmetic of the local model's linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Precision {
    /// 8-bit integers where the processor has AVX-512 VNNI, f32 elsewhere.
    #[default]
    Auto,
    /// 8-bit integers; refuses to start on a processor without AVX-512 VNNI.
    Int8,
    /// 32-bit floats throughout, as the model was published.
    F32,
}

/// A setting as a person meets it: its environment variable and its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub env: &'static str,
    pub flag: &'static str,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.env, self.flag)
    }
}

macro_rules! settings {
    ($($name:ident = $env:literal, $flag:literal;)*) => {
        $(pub const $name: Setting = Setting { env: $env, flag: $flag };)*
        /// Every setting, for checking that each names a real flag and variable.
        #[cfg(test)]
        pub const ALL: &[Setting] = &[$($name),*];
    };
}

settings! {
    PROVIDER = "ZAVA_EMBEDDING_PROVIDER", "--embedding-provider";
    MODEL_DIR = "ZAVA_EMBEDDING_MODEL_DIR", "--embedding-model-dir";
    PRECISION = "ZAVA_EMBEDDING_PRECISION", "--embedding-precision";
    OPENAI_BASE_URL = "OPENAI_BASE_URL", "--openai-base-url";
    OPENAI_API_KEY = "OPENAI_API_KEY", "--openai-api-key";
    MODEL = "ZAVA_EMBEDDING_MODEL", "--embedding-model";
    DIMENSIONS = "ZAVA_EMBEDDING_DIMENSIONS", "--embedding-dimensions";
    AZURE_ENDPOINT = "AZURE_OPENAI_ENDPOINT", "--azure-openai-endpoint";
    AZURE_DEPLOYMENT = "EMBEDDING_MODEL_DEPLOYMENT_NAME", "--azure-openai-deployment";
    AZURE_API_VERSION = "AZURE_OPENAI_API_VERSION", "--azure-openai-api-version";
    AZURE_API_KEY = "AZURE_OPENAI_API_KEY", "--azure-openai-api-key";
    AZURE_TENANT_ID = "AZURE_TENANT_ID", "--azure-tenant-id";
    AZURE_CLIENT_ID = "AZURE_CLIENT_ID", "--azure-client-id";
    AZURE_CLIENT_SECRET = "AZURE_CLIENT_SECRET", "--azure-client-secret";
    AZURE_AUTHORITY_HOST = "AZURE_AUTHORITY_HOST", "--azure-authority-host";
    TIMEOUT = "ZAVA_EMBEDDING_TIMEOUT", "--embedding-timeout";
    MAX_RETRIES = "ZAVA_EMBEDDING_MAX_RETRIES", "--embedding-max-retries";
    BATCH_SIZE = "ZAVA_EMBEDDING_BATCH_SIZE", "--embedding-batch-size";
    BREAKER_FAILURES = "ZAVA_EMBEDDING_BREAKER_FAILURES", "--embedding-breaker-failures";
    BREAKER_COOL_DOWN = "ZAVA_EMBEDDING_BREAKER_COOL_DOWN", "--embedding-breaker-cool-down";
}

pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "text-embedding-3-small";
pub const DEFAULT_AZURE_DEPLOYMENT: &str = "text-embedding-3-small";
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-02-01";
pub const DEFAULT_AZURE_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// How texts become vectors: for product descriptions at seed time and for every semantic search query. The
/// model's name is stored next to the product vectors; after switching provider or model, run
/// `zava-mcp embed --rebuild` (serve refuses to start until the stored vectors match).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Embedding provider")]
pub struct EmbeddingArgs {
    /// Which service embeds texts: `local` (the default: all-MiniLM-L6-v2 in this process, offline), `openai`
    /// (any OpenAI-compatible /v1/embeddings: OpenAI, Ollama, vLLM, TEI, `zava-mcp embed-server`) or
    /// `azure-openai` (an Azure OpenAI deployment, with an API key or Entra ID client credentials).
    #[arg(long, env = PROVIDER.env, value_enum, default_value = "local", value_name = "PROVIDER")]
    pub embedding_provider: ProviderKind,
    /// local: the sentence-transformers model directory. Default: where scripts/setup.sh installs
    /// all-MiniLM-L6-v2, ~/.cache/zava-mcp/models/all-MiniLM-L6-v2.
    #[arg(long, env = MODEL_DIR.env, value_name = "DIR")]
    pub embedding_model_dir: Option<PathBuf>,
    /// local: the arithmetic of the model's linear layers: `auto` (8-bit integers on processors with AVX-512
    /// VNNI, f32 elsewhere), `int8` or `f32`. In 8-bit integers the weights take a quarter of the memory and a
    /// query embeds about twice as fast, with search relevance measured equal (cargo bench --bench search).
    #[arg(long, env = PRECISION.env, value_enum, default_value = "auto", value_name = "PRECISION")]
    pub embedding_precision: Precision,
    /// openai: the API's base URL, up to and including /v1. Ollama: http://localhost:11434/v1; zava-mcp
    /// embed-server: http://127.0.0.1:11435/v1.
    #[arg(long, env = OPENAI_BASE_URL.env, default_value = DEFAULT_OPENAI_BASE_URL, value_name = "URL")]
    pub openai_base_url: String,
    /// openai: the API key, sent as `Authorization: Bearer`. Required by api.openai.com; local servers usually
    /// need none.
    #[arg(long, env = OPENAI_API_KEY.env, hide_env_values = true, value_name = "KEY", value_parser = secret)]
    pub openai_api_key: Option<Secret>,
    /// openai: the embedding model to ask for, e.g. text-embedding-3-large, nomic-embed-text (Ollama),
    /// all-MiniLM-L6-v2 (zava-mcp embed-server). Stored as `openai/<model>`.
    #[arg(long, env = MODEL.env, default_value = DEFAULT_MODEL, value_name = "NAME")]
    pub embedding_model: String,
    /// openai: ask for vectors of this many dimensions (the request's `dimensions` field, which the
    /// text-embedding-3 models support). Default: the model's own length. Stored as `openai/<model>@<N>`.
    #[arg(long, env = DIMENSIONS.env, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16_384))]
    pub embedding_dimensions: Option<u32>,
    /// azure-openai: the resource's endpoint, e.g. https://my-resource.openai.azure.com (required).
    #[arg(long, env = AZURE_ENDPOINT.env, value_name = "URL")]
    pub azure_openai_endpoint: Option<String>,
    /// azure-openai: the name of the embedding model's deployment. Stored as `azure-openai/<deployment>`.
    #[arg(long, env = AZURE_DEPLOYMENT.env, default_value = DEFAULT_AZURE_DEPLOYMENT, value_name = "NAME")]
    pub azure_openai_deployment: String,
    /// azure-openai: the REST API version (the `api-version` query parameter).
    #[arg(long, env = AZURE_API_VERSION.env, default_value = DEFAULT_AZURE_API_VERSION, value_name = "VERSION")]
    pub azure_openai_api_version: String,
    /// azure-openai: sign in with this resource key (sent as the `api-key` header). Give either a key or the
    /// three Entra ID settings below, not both.
    #[arg(long, env = AZURE_API_KEY.env, hide_env_values = true, value_name = "KEY", value_parser = secret)]
    pub azure_openai_api_key: Option<Secret>,
    /// azure-openai: sign in with Microsoft Entra ID client credentials instead of a key: the directory
    /// (tenant) id or domain. The app needs the "Cognitive Services OpenAI User" role on the resource.
    #[arg(long, env = AZURE_TENANT_ID.env, value_name = "TENANT")]
    pub azure_tenant_id: Option<String>,
    /// azure-openai with Entra ID: the app registration's application (client) id.
    #[arg(long, env = AZURE_CLIENT_ID.env, value_name = "GUID")]
    pub azure_client_id: Option<String>,
    /// azure-openai with Entra ID: the app registration's client secret.
    #[arg(long, env = AZURE_CLIENT_SECRET.env, hide_env_values = true, value_name = "SECRET", value_parser = secret)]
    pub azure_client_secret: Option<Secret>,
    /// azure-openai with Entra ID: the sign-in authority (another cloud's, e.g. https://login.microsoftonline.us).
    #[arg(long, env = AZURE_AUTHORITY_HOST.env, default_value = DEFAULT_AZURE_AUTHORITY_HOST, value_name = "URL")]
    pub azure_authority_host: String,
    /// openai, azure-openai: how long one HTTP request may take, in seconds (decimals allowed).
    #[arg(long, env = TIMEOUT.env, default_value = "30", value_name = "SECS", value_parser = seconds)]
    pub embedding_timeout: Duration,
    /// openai, azure-openai: how often a request that failed for a passing reason (no connection, timeout,
    /// 429, 5xx) is repeated, with exponential backoff and jitter, honouring Retry-After.
    #[arg(long, env = MAX_RETRIES.env, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub embedding_max_retries: u32,
    /// openai, azure-openai: most texts sent in one request (OpenAI accepts up to 2048).
    #[arg(long, env = BATCH_SIZE.env, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2048))]
    pub embedding_batch_size: u32,
    /// openai, azure-openai: after this many failed calls in a row, stop calling the provider for a while and
    /// fail at once (semantic search then says so; keyword search keeps working).
    #[arg(long, env = BREAKER_FAILURES.env, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub embedding_breaker_failures: u32,
    /// openai, azure-openai: how long to wait, in seconds, before trying a provider that kept failing again.
    #[arg(long, env = BREAKER_COOL_DOWN.env, default_value = "30", value_name = "SECS", value_parser = seconds)]
    pub embedding_breaker_cool_down: Duration,
}

/// Takes any text as a secret (a clap `value_parser`); it is checked later, and only when it is needed, because
/// a clap error would print the value.
pub fn secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::unchecked(s))
}

/// Seconds, decimals allowed: `30`, `0.5`. Between 1 ms and one hour.
pub fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("expected a number of seconds, e.g. 30 or 0.5, not `{s}`"))?;
    if !(0.001..=3600.0).contains(&secs) {
        return Err(format!("must be between 0.001 and 3600 seconds, not {secs}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Test {
        #[command(flatten)]
        embedding: EmbeddingArgs,
    }

    #[test]
    fn every_setting_names_its_real_flag_and_variable() {
        let cmd = Test::command();
        for setting in ALL {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long().map(|l| format!("--{l}")).as_deref() == Some(setting.flag))
                .unwrap_or_else(|| panic!("no flag {}", setting.flag));
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(setting.env), "{}", setting.flag);
        }
        assert_eq!(cmd.get_arguments().count(), ALL.len());
    }

    #[test]
    fn flags_parse_and_secrets_stay_hidden() {
        let t = Test::try_parse_from([
            "t",
            "--embedding-provider",
            "azure-openai",
            "--azure-openai-api-key",
            "k-123",
            "--embedding-timeout",
            "0.25",
            "--embedding-breaker-cool-down",
            "2",
        ])
        .unwrap();
        assert_eq!(t.embedding.embedding_provider, ProviderKind::AzureOpenAi);
        assert_eq!(t.embedding.embedding_timeout, Duration::from_millis(250));
        assert_eq!(t.embedding.embedding_breaker_cool_down, Duration::from_secs(2));
        assert!(!format!("{:?}", t.embedding).contains("k-123"));
        let help = Test::command().render_long_help().to_string();
        assert!(help.contains("Embedding provider") && help.contains("OPENAI_BASE_URL"), "{help}");
        for bad in [["--embedding-timeout", "soon"], ["--embedding-timeout", "0"], ["--embedding-provider", "cohere"]] {
            assert!(Test::try_parse_from(["t", bad[0], bad[1]]).is_err(), "{bad:?}");
        }
    }
}
