//! Which embedding provider to use and how to reach it, resolved from flags and environment variables into
//! settings that cannot be half-valid.
//!
//! [`EmbeddingSettings::resolve`] checks only what the chosen provider needs and names the variable and flag
//! of anything wrong or missing, so a bad setting stops the process at startup with a sentence a person can
//! act on, instead of failing the first search.

mod args;
mod values;

use std::path::PathBuf;
use std::time::Duration;

pub use args::{EmbeddingArgs, Precision, ProviderKind, Setting, seconds, secret as secret_arg};
pub use values::{ApiVersion, ClientId, DeploymentName, ModelName, Secret, ServiceUrl, TenantId};

use self::args as s;
use super::breaker::BreakerSettings;

/// Everything needed to build an [`Embedder`](super::provider::Embedder).
#[derive(Debug, Clone)]
pub struct EmbeddingSettings {
    pub provider: ProviderSettings,
    /// Timeouts, retries, batching and the breaker of the remote providers (unused by `local`).
    pub remote: RemoteTuning,
}

#[derive(Debug, Clone)]
pub enum ProviderSettings {
    /// The in-process model; `None` means [`LocalModel::default_dir`](super::local::LocalModel::default_dir).
    Local {
        model_dir: Option<PathBuf>,
        precision: Precision,
    },
    OpenAi(OpenAiSettings),
    AzureOpenAi(AzureSettings),
}

#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// Up to and including `/v1`; requests go to `<base_url>/embeddings`.
    pub base_url: ServiceUrl,
    pub api_key: Option<Secret>,
    pub model: ModelName,
    /// The request's `dimensions` field, when set.
    pub dimensions: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// The resource's origin, e.g. `https://my-resource.openai.azure.com`.
    pub endpoint: ServiceUrl,
    pub deployment: DeploymentName,
    pub api_version: ApiVersion,
    pub auth: AzureAuth,
}

#[derive(Debug, Clone)]
pub enum AzureAuth {
    /// A resource key, sent as the `api-key` header.
    ApiKey(Secret),
    /// Microsoft Entra ID client credentials; the token is sent as `Authorization: Bearer`.
    Entra(EntraCredentials),
}

#[derive(Debug, Clone)]
pub struct EntraCredentials {
    /// The sign-in authority, e.g. `https://login.microsoftonline.com`.
    pub authority: ServiceUrl,
    pub tenant: TenantId,
    pub client_id: ClientId,
    pub client_secret: Secret,
}

/// How a remote provider is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteTuning {
    /// The longest one HTTP request may take (connecting included).
    pub timeout: Duration,
    /// Repetitions of a request that failed for a passing reason.
    pub max_retries: u32,
    /// The first backoff's ceiling; it doubles per retry up to `max_backoff` (full jitter below it).
    pub base_backoff: Duration,
    /// The longest wait between two attempts, and the longest Retry-After honoured.
    pub max_backoff: Duration,
    /// Most texts in one request.
    pub batch_size: usize,
    pub breaker: BreakerSettings,
}

impl Default for RemoteTuning {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_retries: 3,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            batch_size: 256,
            breaker: BreakerSettings::default(),
        }
    }
}

impl EmbeddingSettings {
    /// The default: the local model from its default directory.
    pub fn local() -> Self {
        Self {
            provider: ProviderSettings::Local { model_dir: None, precision: Precision::Auto },
            remote: RemoteTuning::default(),
        }
    }
}

/// A setting that is wrong or missing, or settings that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{setting} {problem}")]
    Invalid { setting: Setting, problem: String },
    #[error("{setting} is required with --embedding-provider {provider}: {hint}")]
    Missing { setting: Setting, provider: &'static str, hint: &'static str },
    #[error(
        "azure-openai needs one way to sign in, and got {0}: set either AZURE_OPENAI_API_KEY, or all of \
         AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (Entra ID client credentials)"
    )]
    AzureSignIn(String),
}

fn check<T: std::str::FromStr<Err = String>>(setting: Setting, value: &str) -> Result<T, SettingsError> {
    value.parse().map_err(|problem| SettingsError::Invalid { setting, problem })
}

/// A value that was set and is not blank (an empty environment variable counts as unset).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn given_secret(secret: &Option<Secret>) -> Option<&Secret> {
    secret.as_ref().filter(|s| !s.expose().trim().is_empty())
}

fn checked_secret(setting: Setting, value: &Secret) -> Result<Secret, SettingsError> {
    value.checked().map_err(|problem| SettingsError::Invalid { setting, problem })
}

/// A value with a default: blank means the default.
fn or_default<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.trim().is_empty() { default } else { value }
}

impl EmbeddingSettings {
    /// Checks the chosen provider's settings (and only those) and the tuning.
    pub fn resolve(args: &EmbeddingArgs) -> Result<Self, SettingsError> {
        let provider = match args.embedding_provider {
            ProviderKind::Local => ProviderSettings::Local {
                model_dir: args.embedding_model_dir.clone(),
                precision: args.embedding_precision,
            },
            ProviderKind::OpenAi => ProviderSettings::OpenAi(openai(args)?),
            ProviderKind::AzureOpenAi => ProviderSettings::AzureOpenAi(azure(args)?),
        };
        let remote = RemoteTuning {
            timeout: args.embedding_timeout,
            max_retries: args.embedding_max_retries,
            batch_size: args.embedding_batch_size as usize,
            breaker: BreakerSettings {
                failure_threshold: args.embedding_breaker_failures,
                cool_down: args.embedding_breaker_cool_down,
            },
            ..RemoteTuning::default()
        };
        Ok(Self { provider, remote })
    }
}

fn openai(args: &EmbeddingArgs) -> Result<OpenAiSettings, SettingsError> {
    let base_url: ServiceUrl =
        check(s::OPENAI_BASE_URL, or_default(&args.openai_base_url, s::DEFAULT_OPENAI_BASE_URL))?;
    let api_key = given_secret(&args.openai_api_key).map(|k| checked_secret(s::OPENAI_API_KEY, k)).transpose()?;
    if api_key.is_none() && base_url.url().host_str() == Some("api.openai.com") {
        return Err(SettingsError::Missing {
            setting: s::OPENAI_API_KEY,
            provider: "openai",
            hint: "api.openai.com needs an API key (create one at https://platform.openai.com/api-keys)",
        });
    }
    Ok(OpenAiSettings {
        base_url,
        api_key,
        model: check(s::MODEL, or_default(&args.embedding_model, s::DEFAULT_MODEL))?,
        dimensions: args.embedding_dimensions,
    })
}

fn azure(args: &EmbeddingArgs) -> Result<AzureSettings, SettingsError> {
    let endpoint = given(&args.azure_openai_endpoint).ok_or(SettingsError::Missing {
        setting: s::AZURE_ENDPOINT,
        provider: "azure-openai",
        hint: "the resource's endpoint, e.g. https://my-resource.openai.azure.com",
    })?;
    let endpoint: ServiceUrl = check(s::AZURE_ENDPOINT, endpoint)?;
    if endpoint.url().path().contains("/openai") {
        return Err(SettingsError::Invalid {
            setting: s::AZURE_ENDPOINT,
            problem: format!(
                "`{endpoint}` should be the resource's origin only, e.g. https://my-resource.openai.azure.com; the \
                 deployment goes in EMBEDDING_MODEL_DEPLOYMENT_NAME"
            ),
        });
    }
    let entra_parts = [
        given(&args.azure_tenant_id).map(|_| "AZURE_TENANT_ID"),
        given(&args.azure_client_id).map(|_| "AZURE_CLIENT_ID"),
        given_secret(&args.azure_client_secret).map(|_| "AZURE_CLIENT_SECRET"),
    ];
    let entra_given: Vec<&str> = entra_parts.iter().flatten().copied().collect();
    let auth = match (given_secret(&args.azure_openai_api_key), entra_given.len()) {
        (Some(key), 0) => AzureAuth::ApiKey(checked_secret(s::AZURE_API_KEY, key)?),
        (None, 3) => AzureAuth::Entra(EntraCredentials {
            authority: check(
                s::AZURE_AUTHORITY_HOST,
                or_default(&args.azure_authority_host, s::DEFAULT_AZURE_AUTHORITY_HOST),
            )?,
            tenant: check(s::AZURE_TENANT_ID, given(&args.azure_tenant_id).unwrap_or_default())?,
            client_id: check(s::AZURE_CLIENT_ID, given(&args.azure_client_id).unwrap_or_default())?,
            client_secret: checked_secret(
                s::AZURE_CLIENT_SECRET,
                given_secret(&args.azure_client_secret).expect("given"),
            )?,
        }),
        (None, 0) => return Err(SettingsError::AzureSignIn("neither".into())),
        (Some(_), _) => {
            return Err(SettingsError::AzureSignIn(format!(
                "both (AZURE_OPENAI_API_KEY and {})",
                entra_given.join(", ")
            )));
        }
        (None, _) => {
            let missing: Vec<&str> = ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"]
                .into_iter()
                .filter(|name| !entra_given.contains(name))
                .collect();
            return Err(SettingsError::AzureSignIn(format!(
                "an incomplete Entra ID set (missing {})",
                missing.join(", ")
            )));
        }
    };
    Ok(AzureSettings {
        endpoint,
        deployment: check(s::AZURE_DEPLOYMENT, or_default(&args.azure_openai_deployment, s::DEFAULT_AZURE_DEPLOYMENT))?,
        api_version: check(
            s::AZURE_API_VERSION,
            or_default(&args.azure_openai_api_version, s::DEFAULT_AZURE_API_VERSION),
        )?,
        auth,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Test {
        #[command(flatten)]
        embedding: EmbeddingArgs,
    }

    /// Arguments as parsed from `flags` alone: every environment variable is cleared, so the machine's own
    /// settings cannot leak in.
    fn args(flags: &[&str]) -> EmbeddingArgs {
        use clap::CommandFactory;
        let mut cmd = Test::command();
        cmd = cmd.mut_args(|a| a.env(None::<&str>));
        let matches = cmd.try_get_matches_from(std::iter::once("t").chain(flags.iter().copied())).unwrap();
        <Test as clap::FromArgMatches>::from_arg_matches(&matches).unwrap().embedding
    }

    fn resolve(flags: &[&str]) -> Result<EmbeddingSettings, SettingsError> {
        EmbeddingSettings::resolve(&args(flags))
    }

    fn error(flags: &[&str]) -> String {
        resolve(flags).unwrap_err().to_string()
    }

    const AZURE: [&str; 4] =
        ["--embedding-provider", "azure-openai", "--azure-openai-endpoint", "https://r.openai.azure.com/"];

    #[test]
    fn local_is_the_default_and_ignores_the_other_providers_settings() {
        let s = resolve(&["--azure-openai-endpoint", "not a url", "--openai-base-url", "nope"]).unwrap();
        assert!(matches!(s.provider, ProviderSettings::Local { model_dir: None, precision: Precision::Auto }));
        assert_eq!(s.remote, RemoteTuning::default());
    }

    #[test]
    fn openai_defaults_and_checks() {
        let s = resolve(&["--embedding-provider", "openai", "--openai-api-key", "sk-1"]).unwrap();
        let ProviderSettings::OpenAi(o) = s.provider else { panic!() };
        assert_eq!(o.base_url.to_string(), "https://api.openai.com/v1");
        assert_eq!(o.model.as_str(), "text-embedding-3-small");
        assert_eq!(o.api_key.unwrap().expose(), "sk-1");
        assert!(error(&["--embedding-provider", "openai"]).contains("OPENAI_API_KEY (--openai-api-key) is required"));
        let local = ["--embedding-provider", "openai", "--openai-base-url", "http://localhost:11434/v1/"];
        let ProviderSettings::OpenAi(o) = resolve(&local).unwrap().provider else { panic!() };
        assert!(o.api_key.is_none() && o.base_url.to_string() == "http://localhost:11434/v1");
        let bad = error(&["--embedding-provider", "openai", "--openai-base-url", "localhost:11434"]);
        assert!(bad.starts_with("OPENAI_BASE_URL (--openai-base-url) ") && bad.contains("https://"), "{bad}");
        let bad = error(&[&local[..], &["--embedding-model", "two words"]].concat());
        assert!(bad.starts_with("ZAVA_EMBEDDING_MODEL (--embedding-model)"), "{bad}");
        assert!(resolve(&[&local[..], &["--openai-api-key", " "]].concat()).is_ok(), "a blank key counts as none");
    }

    #[test]
    fn azure_needs_an_endpoint_and_exactly_one_way_to_sign_in() {
        let missing = error(&["--embedding-provider", "azure-openai", "--azure-openai-api-key", "k"]);
        assert!(missing.contains("AZURE_OPENAI_ENDPOINT (--azure-openai-endpoint) is required"), "{missing}");
        let key = resolve(&[&AZURE[..], &["--azure-openai-api-key", "k"]].concat()).unwrap();
        let ProviderSettings::AzureOpenAi(a) = key.provider else { panic!() };
        assert_eq!(a.endpoint.to_string(), "https://r.openai.azure.com");
        assert_eq!((a.deployment.as_str(), a.api_version.as_str()), ("text-embedding-3-small", "2024-02-01"));
        assert!(matches!(a.auth, AzureAuth::ApiKey(ref k) if k.expose() == "k"));

        let entra = [
            "--azure-tenant-id",
            "contoso.onmicrosoft.com",
            "--azure-client-id",
            "00000000-0000-0000-0000-0000000000c1",
            "--azure-client-secret",
            "s3cret",
        ];
        let s = resolve(&[&AZURE[..], &entra].concat()).unwrap();
        let ProviderSettings::AzureOpenAi(AzureSettings { auth: AzureAuth::Entra(e), .. }) = s.provider else {
            panic!()
        };
        assert_eq!(e.authority.to_string(), "https://login.microsoftonline.com");
        assert_eq!(e.tenant.as_str(), "contoso.onmicrosoft.com");

        assert!(error(&AZURE).contains("got neither"));
        let both = error(&[&AZURE[..], &entra, &["--azure-openai-api-key", "k"]].concat());
        assert!(both.contains("got both") && !both.contains("s3cret"), "{both}");
        let partial = error(&[&AZURE[..], &entra[..2]].concat());
        assert!(partial.contains("missing AZURE_CLIENT_ID, AZURE_CLIENT_SECRET"), "{partial}");
        let bad_client =
            error(&[&AZURE[..], &entra[..2], &["--azure-client-id", "app", "--azure-client-secret", "x"]].concat());
        assert!(bad_client.starts_with("AZURE_CLIENT_ID (--azure-client-id)"), "{bad_client}");
    }

    #[test]
    fn azure_values_are_checked_with_their_names() {
        let key = ["--azure-openai-api-key", "k"];
        let with = |extra: &[&str]| error(&[&AZURE[..], &key, extra].concat());
        assert!(with(&["--azure-openai-deployment", "a/b"]).starts_with("EMBEDDING_MODEL_DEPLOYMENT_NAME"));
        assert!(with(&["--azure-openai-api-version", "latest"]).starts_with("AZURE_OPENAI_API_VERSION"));
        let deep = error(&[
            "--embedding-provider",
            "azure-openai",
            "--azure-openai-api-key",
            "k",
            "--azure-openai-endpoint",
            "https://r.openai.azure.com/openai/deployments/x",
        ]);
        assert!(deep.contains("origin only"), "{deep}");
        let secret = error(&[&AZURE[..], &["--azure-openai-api-key", "sec\u{7}retvalue"]].concat());
        assert!(secret.starts_with("AZURE_OPENAI_API_KEY") && !secret.contains("retvalue"), "{secret}");
    }

    #[test]
    fn tuning_comes_from_its_flags() {
        let s = resolve(&[
            "--embedding-timeout",
            "1.5",
            "--embedding-max-retries",
            "0",
            "--embedding-batch-size",
            "16",
            "--embedding-breaker-failures",
            "2",
            "--embedding-breaker-cool-down",
            "0.2",
        ])
        .unwrap();
        assert_eq!(s.remote.timeout, Duration::from_millis(1500));
        assert_eq!((s.remote.max_retries, s.remote.batch_size), (0, 16));
        assert_eq!(s.remote.breaker, BreakerSettings { failure_threshold: 2, cool_down: Duration::from_millis(200) });
    }
}
