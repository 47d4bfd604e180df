//! Remote embedding providers against a real OpenAI-compatible server: `zava-mcp embed-server` started
//! in-process from the shared local model. The openai and azure-openai providers must return the local model's
//! vectors through it; retries, refusals and the circuit breaker are driven by a fault-injecting front; Entra
//! ID sign-in uses a token endpoint double. Finally an MCP server on the openai provider searches, and says
//! what still works when the provider goes away.

mod cli;
mod doubles;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::DropGuard;
use zava_mcp::app::{App, AppSettings};
use zava_mcp::embed::breaker::BreakerSettings;
use zava_mcp::embed::error::EmbedError;
use zava_mcp::embed::products::embed_products;
use zava_mcp::embed::provider::Embedder;
use zava_mcp::embed::serve::{self, EmbedServerSettings};
use zava_mcp::embed::settings::{
    AzureAuth, AzureSettings, EmbeddingSettings, EntraCredentials, OpenAiSettings, ProviderSettings, RemoteTuning,
};

use self::doubles::{Fault, Spawned, front, token_endpoint};
use crate::harness::{TestDb, embedder, http_client};

const MODEL: &str = "all-MiniLM-L6-v2";
const TEXTS: [&str; 3] =
    ["cordless drill with two batteries", "exterior paint for cedar siding", "a ½-inch copper elbow"];

/// The embed server on `addr` (port 0 for any), serving the shared local model.
async fn embed_server_at(addr: SocketAddr, api_key: Option<&str>) -> Spawned {
    let settings =
        EmbedServerSettings { api_key: api_key.map(|k| k.parse().unwrap()), ..EmbedServerSettings::new(addr) };
    let router = serve::router(embedder(), &settings).unwrap();
    doubles::spawn(router, addr).await
}

async fn embed_server(api_key: Option<&str>) -> Spawned {
    embed_server_at("127.0.0.1:0".parse().unwrap(), api_key).await
}

/// Quick retries and a breaker that opens after 3 failures, so failure tests take milliseconds.
fn tuning() -> RemoteTuning {
    RemoteTuning {
        timeout: Duration::from_secs(20),
        max_retries: 2,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(2),
        batch_size: 256,
        breaker: BreakerSettings { failure_threshold: 3, cool_down: Duration::from_secs(60) },
    }
}

fn openai(url: &str, key: Option<&str>, remote: RemoteTuning) -> EmbeddingSettings {
    let settings = OpenAiSettings {
        base_url: format!("{url}/v1").parse().unwrap(),
        api_key: key.map(|k| k.parse().unwrap()),
        model: MODEL.parse().unwrap(),
        dimensions: None,
    };
    EmbeddingSettings { provider: ProviderSettings::OpenAi(settings), remote }
}

fn azure(url: &str, auth: AzureAuth) -> EmbeddingSettings {
    let settings = AzureSettings {
        endpoint: url.parse().unwrap(),
        deployment: MODEL.parse().unwrap(),
        api_version: "2024-02-01".parse().unwrap(),
        auth,
    };
    EmbeddingSettings { provider: ProviderSettings::AzureOpenAi(settings), remote: tuning() }
}

fn texts() -> Vec<String> {
    TEXTS.iter().map(|t| (*t).to_owned()).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
}

/// `remote` embeds [`TEXTS`] as the local model does.
async fn assert_same_vectors_as_local(remote: &Embedder) {
    let local = embedder().embed(texts()).await.unwrap();
    let got = remote.embed(texts()).await.unwrap();
    assert_eq!(got.len(), local.len());
    for (i, (g, l)) in got.iter().zip(&local).enumerate() {
        assert_eq!(g.len(), 384);
        assert!(cosine(g, l) > 0.9999, "text {i}: cosine {}", cosine(g, l));
    }
}

async fn startup_error(settings: &EmbeddingSettings) -> String {
    match Embedder::from_settings(settings).await {
        Ok(_) => panic!("the provider was accepted"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn the_openai_provider_returns_the_local_models_vectors_through_the_embed_server() {
    let server = embed_server(None).await;
    let mut small_batches = tuning();
    small_batches.batch_size = 2;
    let remote = Embedder::from_settings(&openai(&server.url, None, small_batches)).await.unwrap();
    assert_eq!((remote.model_id(), remote.dimension()), ("openai/all-MiniLM-L6-v2", 384));
    assert_same_vectors_as_local(&remote).await;

    // `dimensions` is sent: the same length is accepted (and recorded in the id), a shorter one refused.
    let mut settings = openai(&server.url, None, tuning());
    let ProviderSettings::OpenAi(o) = &mut settings.provider else { unreachable!() };
    o.dimensions = Some(384);
    assert_eq!(Embedder::from_settings(&settings).await.unwrap().model_id(), "openai/all-MiniLM-L6-v2@384");
    let ProviderSettings::OpenAi(o) = &mut settings.provider else { unreachable!() };
    o.dimensions = Some(256);
    let e = startup_error(&settings).await;
    assert!(e.contains("rejected the request (400)") && e.contains("cannot shorten"), "{e}");
    // An unknown model is a 404 naming the setting.
    let ProviderSettings::OpenAi(o) = &mut settings.provider else { unreachable!() };
    (o.dimensions, o.model) = (None, "text-embedding-3-small".parse().unwrap());
    let e = startup_error(&settings).await;
    assert!(e.contains("has no model `text-embedding-3-small` (ZAVA_EMBEDDING_MODEL) (404)"), "{e}");
}

#[tokio::test]
async fn the_embed_server_speaks_openais_request_response_and_error_shapes() {
    let server = embed_server(Some("k-1")).await;
    let http = http_client();
    let post = |path: &str, body: Value| http.post(format!("{}{path}", server.url)).json(&body);
    let one = json!({"model": MODEL, "input": "cordless drill"});

    let ok: Value = post("/v1/embeddings", one.clone()).bearer_auth("k-1").send().await.unwrap().json().await.unwrap();
    assert_eq!((ok["object"].as_str(), ok["model"].as_str()), (Some("list"), Some(MODEL)));
    assert_eq!(ok["data"][0]["object"], "embedding");
    assert_eq!(ok["data"][0]["embedding"].as_array().unwrap().len(), 384);
    assert_eq!(ok["usage"], json!({"prompt_tokens": 5, "total_tokens": 5}), "[CLS] cord ##less drill [SEP]");

    let b64 = json!({"model": MODEL, "input": ["cordless drill"], "encoding_format": "base64"});
    let b64: Value = post("/v1/embeddings", b64).header("api-key", "k-1").send().await.unwrap().json().await.unwrap();
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        b64["data"][0]["embedding"].as_str().unwrap(),
    )
    .unwrap();
    let floats: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    let json_floats: Vec<f32> = serde_json::from_value(ok["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(floats, json_floats);

    let cases: [(&str, Value, Option<&str>, u16, &str); 9] = [
        ("/v1/embeddings", one.clone(), None, 401, "missing_api_key"),
        ("/v1/embeddings", one.clone(), Some("k-2"), 401, "invalid_api_key"),
        ("/v1/embeddings", json!({"model": MODEL}), Some("k-1"), 400, "invalid_request"),
        ("/v1/embeddings", json!({"model": MODEL, "input": [[101, 102]]}), Some("k-1"), 400, "invalid_request"),
        ("/v1/embeddings", json!({"model": MODEL, "input": ["a", ""]}), Some("k-1"), 400, "invalid_request"),
        ("/v1/embeddings", json!({"model": "gpt-4o", "input": "a"}), Some("k-1"), 404, "model_not_found"),
        (
            "/openai/deployments/all-MiniLM-L6-v2/embeddings",
            json!({"input": "a"}),
            Some("k-1"),
            400,
            "missing_api_version",
        ),
        (
            "/openai/deployments/other/embeddings?api-version=2024-02-01",
            json!({"input": "a"}),
            Some("k-1"),
            404,
            "DeploymentNotFound",
        ),
        ("/v2/whatever", json!({}), Some("k-1"), 404, "unknown_url"),
    ];
    for (path, body, key, status, code) in cases {
        let mut request = post(path, body.clone());
        if let Some(key) = key {
            request = request.header("api-key", key);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{path} {body}");
        let error: Value = answer.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{path} {body}: {error}");
        assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
        assert!(error["error"]["type"].is_string(), "{error}");
    }
    let azure =
        post("/openai/deployments/all-MiniLM-L6-v2/embeddings?api-version=2024-02-01", json!({"input": ["a", "b"]}));
    let azure: Value = azure.header("api-key", "k-1").send().await.unwrap().json().await.unwrap();
    assert_eq!(azure["data"][1]["index"], 1);
}

#[tokio::test]
async fn azure_openai_with_an_api_key_calls_the_deployment_route() {
    let server = embed_server(Some("azure-key")).await;
    let remote =
        Embedder::from_settings(&azure(&server.url, AzureAuth::ApiKey("azure-key".parse().unwrap()))).await.unwrap();
    assert_eq!((remote.model_id(), remote.dimension()), ("azure-openai/all-MiniLM-L6-v2", 384));
    assert_same_vectors_as_local(&remote).await;
    let e = startup_error(&azure(&server.url, AzureAuth::ApiKey("stale".parse().unwrap()))).await;
    assert!(e.contains("refused the API key (AZURE_OPENAI_API_KEY) (401): Incorrect API key provided"), "{e}");
}

#[tokio::test]
async fn azure_openai_with_entra_id_signs_in_once_and_reuses_the_token_until_it_nearly_expires() {
    let (tenant, client) = ("contoso.onmicrosoft.com", "00000000-0000-0000-0000-0000000000c1");
    let server = embed_server(Some("entra-access-token")).await;
    let entra = token_endpoint(tenant, client, "client-secret", "entra-access-token", 3600).await;
    let credentials = |secret: &str| {
        AzureAuth::Entra(EntraCredentials {
            authority: entra.server.url.parse().unwrap(),
            tenant: tenant.parse().unwrap(),
            client_id: client.parse().unwrap(),
            client_secret: secret.parse().unwrap(),
        })
    };
    let remote = Embedder::from_settings(&azure(&server.url, credentials("client-secret"))).await.unwrap();
    assert_same_vectors_as_local(&remote).await;
    let calls: Vec<_> = (0..4).map(|_| remote.embed(vec!["hammer".into()])).collect();
    futures_util::future::try_join_all(calls).await.unwrap();
    assert_eq!(entra.requests.load(Ordering::SeqCst), 1, "one sign-in for the probe and every later call");

    let e = startup_error(&azure(&server.url, credentials("wrong-secret"))).await;
    assert!(e.contains("AADSTS7000215") && e.contains("AZURE_CLIENT_SECRET") && !e.contains("wrong-secret"), "{e}");

    // A token living 1 s is renewed after half its life.
    let short = token_endpoint(tenant, client, "client-secret", "entra-access-token", 1).await;
    let mut settings = azure(&server.url, credentials("client-secret"));
    let ProviderSettings::AzureOpenAi(AzureSettings { auth: AzureAuth::Entra(c), .. }) = &mut settings.provider else {
        unreachable!()
    };
    c.authority = short.server.url.parse().unwrap();
    let remote = Embedder::from_settings(&settings).await.unwrap();
    remote.embed(vec!["saw".into()]).await.unwrap();
    assert_eq!(short.requests.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(550)).await;
    remote.embed(vec!["saw".into()]).await.unwrap();
    assert_eq!(short.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn overload_answers_are_retried_after_the_wait_the_provider_asks_for() {
    let server = embed_server(None).await;
    let faults = vec![
        Fault { status: 503, headers: vec![("retry-after", "1")] },
        Fault { status: 429, headers: vec![("retry-after-ms", "50")] },
    ];
    let flaky = front(&server.url, faults).await;
    let started = Instant::now();
    let remote = Embedder::from_settings(&openai(&flaky.server.url, None, tuning())).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1050), "Retry-After was not honoured: {:?}", started.elapsed());
    assert_eq!(flaky.requests.load(Ordering::SeqCst), 3, "two faults, then the answer");
    assert_same_vectors_as_local(&remote).await;

    // More faults than retries: the last one is reported. A Retry-After beyond the longest wait is not waited for.
    let faults = (0..3).map(|_| Fault { status: 502, headers: vec![] }).collect();
    let failing = front(&server.url, faults).await;
    let e = startup_error(&openai(&failing.server.url, None, tuning())).await;
    assert!(e.contains("is overloaded or failing (502: injected 502)"), "{e}");
    assert_eq!(failing.requests.load(Ordering::SeqCst), 3, "the first try and two retries");
    let patient = front(&server.url, vec![Fault { status: 503, headers: vec![("retry-after", "120")] }]).await;
    let started = Instant::now();
    let e = startup_error(&openai(&patient.server.url, None, tuning())).await;
    assert!(e.contains("(503: injected 503)") && started.elapsed() < Duration::from_secs(30), "{e}");
}

#[tokio::test]
async fn a_refused_key_is_reported_at_once_without_retrying() {
    let server = embed_server(Some("right")).await;
    let counting = front(&server.url, vec![]).await;
    let e = startup_error(&openai(&counting.server.url, Some("wrong"), tuning())).await;
    assert!(e.contains("refused the API key (OPENAI_API_KEY) (401): Incorrect API key provided"), "{e}");
    assert_eq!(counting.requests.load(Ordering::SeqCst), 1);
    let e = startup_error(&openai(&counting.server.url, None, tuning())).await;
    assert!(e.contains("request without an API key (set OPENAI_API_KEY) (401)"), "{e}");
}

#[tokio::test]
async fn a_provider_that_goes_away_opens_the_breaker_which_fails_fast_then_probes_and_closes() {
    let server = embed_server(None).await;
    let addr = server.addr;
    let mut t = tuning();
    (t.max_retries, t.breaker) = (1, BreakerSettings { failure_threshold: 2, cool_down: Duration::from_millis(400) });
    let remote = Embedder::from_settings(&openai(&server.url, None, t)).await.unwrap();
    server.stop().await;

    for _ in 0..2 {
        let e = EmbedError::from_anyhow(&remote.embed(vec!["nail".into()]).await.unwrap_err());
        assert!(matches!(e, EmbedError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains(&format!("at http://{addr}/v1 did not answer")), "{e}");
        assert!(e.to_string().contains("tried 2 times"), "{e}");
    }
    // An open breaker answers without calling the provider (no timing assertion: CI machines are noisy).
    let e = EmbedError::from_anyhow(&remote.embed(vec!["nail".into()]).await.unwrap_err());
    assert!(matches!(e, EmbedError::CircuitOpen { failures: 2, .. }), "{e}");
    assert!(
        e.for_search()
            .contains("(circuit open after 2 failed calls in a row, retrying in 1 s); mode \"keyword\" still works"),
        "{e}"
    );

    // After the cool-down one probe goes through; the provider is back, so the breaker closes.
    let _back = embed_server_at(addr, None).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(remote.embed(vec!["nail".into()]).await.unwrap().len(), 1);
    assert_eq!(remote.embed(vec!["screw".into(), "bolt".into()]).await.unwrap().len(), 2);
}

/// An MCP server on port 0 over `db` with `embedder`: its URL, and a guard that stops it when dropped.
async fn spawn_app(db: &TestDb, embedder: Embedder) -> (String, DropGuard) {
    let app: Arc<App> = App::start(&db.query, db.key.clone(), embedder, AppSettings::default()).await.unwrap();
    let (addr, shutdown) = crate::harness::serve_http(app, vec![]).await;
    (format!("http://{addr}/mcp"), shutdown.drop_guard())
}

async fn search(url: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "semantic_search_products", "arguments": args}});
    let answer = http_client()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .header("x-rls-user-id", "00000000-0000-0000-0000-000000000000")
        .json(&body)
        .send()
        .await
        .unwrap();
    let v: Value = answer.json().await.unwrap();
    v["result"].clone()
}

#[tokio::test]
async fn an_mcp_server_on_the_openai_provider_searches_and_degrades_to_keyword_when_the_provider_is_gone() {
    let server = embed_server(None).await;
    let mut t = tuning();
    (t.max_retries, t.breaker.failure_threshold) = (0, 2);
    // The embed server runs the model as the test suite is built (debug, instrumented for coverage) beside the
    // other tests; one call of the type descriptions once took over 20 s. The provider's going away, checked
    // below, is a refused connection, not a timeout, so a long one costs nothing.
    t.timeout = Duration::from_secs(120);
    let remote = Embedder::from_settings(&openai(&server.url, None, t)).await.unwrap();
    let db = TestDb::new().await;
    // The embed server serves the template's model, so its vectors are relabelled rather than all recomputed
    // (a minute on two cores); every 20th product is embedded through the provider, as `zava-mcp embed` would.
    let owner = db.owner().await;
    let relabel = "UPDATE retail.product_description_embeddings SET embedding_model = $1,
                       description_embedding = CASE WHEN product_id % 20 = 0 THEN NULL ELSE description_embedding END";
    owner.execute(relabel, &[&remote.model_id()]).await.unwrap();
    let embedded = embed_products(&db.owner, &remote, false, &indicatif::ProgressBar::hidden()).await.unwrap();
    let missing = db.owner_count("SELECT count(*) FROM retail.products WHERE product_id % 20 = 0").await;
    assert_eq!(embedded as i64, missing);
    let (url, _stop) = spawn_app(&db, remote).await;

    let found = search(
        &url,
        json!({"query_description": "waterproof electrical box for outdoor use", "max_rows": 5, "mode": "semantic"}),
    )
    .await;
    assert_ne!(found["isError"], json!(true), "{found}");
    assert_eq!(found["structuredContent"]["r"][0][4], json!("ELECTRICAL BOXES"), "{found}");

    let provider =
        format!("semantic search is unavailable: the embedding provider at {}/v1 did not answer", server.url);
    server.stop().await;
    for (i, mode) in ["semantic", "hybrid", "hybrid"].iter().enumerate() {
        let down = search(&url, json!({"query_description": format!("cordless drill {i}"), "mode": mode})).await;
        assert_eq!(down["isError"], json!(true), "{down}");
        let text = down["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(&provider), "{text}");
        assert!(text.contains("mode \\\"keyword\\\" still works"), "{text}");
        if i == 2 {
            assert!(text.contains("circuit open after 2 failed calls in a row"), "{text}");
        }
    }
    let keyword = search(&url, json!({"query_description": "cordless drill", "mode": "keyword", "max_rows": 3})).await;
    assert_ne!(keyword["isError"], json!(true), "{keyword}");
    assert_eq!(keyword["structuredContent"]["n"], json!(3), "{keyword}");
}
