//! Bearer tokens end to end (issue #11 §1-2): zava-mcp in front of a real database, trusting a local identity
//! provider (`idp`: discovery and JWKS over HTTP), called with tokens minted by jsonwebtoken. Every refusal the
//! spec and the issue name has a case; every accepted token is checked by what it can see.

mod api_keys;
mod identity_map;
pub(crate) mod idp;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use zava_mcp::app::{App, AppSettings};
use zava_mcp::auth::claims::ClaimNames;
use zava_mcp::auth::metadata::ResourceUri;
use zava_mcp::auth::scopes::ToolScopes;
use zava_mcp::auth::{Authenticator, JwtSettings};
use zava_mcp::data::stores::STORES;
use zava_mcp::http::HttpSettings;

use self::idp::{Idp, Mint, fixture};
use crate::harness::TestDb;

pub(crate) const RESOURCE: &str = "https://mcp.zava.example/mcp";

pub(crate) struct Server {
    url: String,
    http: reqwest::Client,
    _db: TestDb,
    _dir: crate::harness::DataDir,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The reply to one request: status, `WWW-Authenticate`, JSON body.
pub(crate) struct Reply {
    pub status: u16,
    pub challenge: Option<String>,
    pub body: Value,
}

/// The authenticator for `RESOURCE` with the default claims and scopes.
pub(crate) async fn authenticator(
    app: &App,
    dir: &crate::harness::DataDir,
    settings: &JwtSettings,
) -> Result<Authenticator, String> {
    Authenticator::start(
        settings,
        ResourceUri::parse(RESOURCE).unwrap(),
        ClaimNames::default(),
        ToolScopes::default(),
        app.directory.clone(),
        dir.path(),
        crate::harness::http_client(),
    )
    .await
    .map_err(|e| format!("{e:#}"))
}

impl Server {
    pub(crate) async fn start(issuer: Option<&str>, settings: JwtSettings) -> Result<Server, String> {
        let (db, dir, app) = Self::parts().await;
        let settings = JwtSettings { issuer: issuer.map(str::to_owned), ..settings };
        let auth = authenticator(&app, &dir, &settings).await?;
        Ok(Self::serve(db, dir, app, auth).await)
    }

    pub(crate) async fn parts() -> (TestDb, crate::harness::DataDir, Arc<App>) {
        let db = TestDb::new().await;
        let dir = crate::harness::data_dir();
        let app = App::start(&db.query, db.key.clone(), crate::harness::embedder().clone(), AppSettings::default())
            .await
            .unwrap();
        (db, dir, app)
    }

    pub(crate) async fn serve(db: TestDb, dir: crate::harness::DataDir, app: Arc<App>, auth: Authenticator) -> Server {
        let http = HttpSettings { auth: Some(Arc::new(auth)), ..crate::harness::http_settings(vec![]) };
        let (addr, shutdown) = crate::harness::serve_http_with(app, http).await;
        Server { url: format!("http://{addr}"), http: crate::harness::http_client(), _db: db, _dir: dir, shutdown }
    }

    async fn post(&self, authorization: Option<&str>, body: &Value) -> Reply {
        let mut req = crate::harness::mcp_post(&self.http, &format!("{}/mcp", self.url), body);
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        Reply { status, challenge, body: resp.json().await.unwrap_or(Value::Null) }
    }

    pub(crate) async fn query(&self, token: &str, sql: &str) -> Reply {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": sql}}});
        self.post(Some(&format!("Bearer {token}")), &call).await
    }

    /// The store ids a token's holder sees in orders.
    pub(crate) async fn stores_seen(&self, token: &str) -> Value {
        let r = self.query(token, "SELECT DISTINCT store_id FROM retail.orders ORDER BY 1").await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["result"]["structuredContent"]["r"].clone()
    }
}

pub(crate) fn manager(i: usize) -> String {
    STORES[i].manager.to_string()
}

#[tokio::test]
async fn provider_tokens_see_exactly_their_stores_with_every_key_type() {
    let idp = Idp::start().await;
    let server = Server::start(Some(idp.issuer()), JwtSettings::default()).await.unwrap();
    let iss = idp.issuer();

    let seattle = Mint::rs256(iss, RESOURCE).claim("rls_user_id", json!(manager(0))).sign();
    assert_eq!(server.stores_seen(&seattle).await, json!([[1]]));
    let region = Mint::rs256(iss, RESOURCE)
        .claim("zava_role", json!("regional_manager"))
        .claim("zava_stores", json!(["Seattle", "Zava Retail Redmond"]))
        .sign();
    assert_eq!(server.stores_seen(&region).await, json!([[1], [6]]));
    let head_office = Mint::rs256(iss, RESOURCE).claim("zava_role", json!("head_office")).sign();
    assert_eq!(server.stores_seen(&head_office).await, json!([[1], [2], [3], [4], [5], [6], [7], [8]]));
    // A list of manager UUIDs in the manager claim is a regional manager too.
    let listed = Mint::rs256(iss, RESOURCE).claim("rls_user_id", json!([manager(2), manager(3)])).sign();
    assert_eq!(server.stores_seen(&listed).await, json!([[3], [4]]));

    // ES256 and EdDSA keys from the same JWKS.
    for (alg, kid, pem) in [(Algorithm::ES256, "ec-1", "ec.pem"), (Algorithm::EdDSA, "ed-1", "ed.pem")] {
        let mut m = Mint::rs256(iss, RESOURCE).claim("rls_user_id", json!(manager(5)));
        m.header = Header::new(alg);
        m.header.kid = Some(kid.into());
        m.key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&fixture(pem)).unwrap(),
            _ => EncodingKey::from_ed_pem(&fixture(pem)).unwrap(),
        };
        assert_eq!(server.stores_seen(&m.sign()).await, json!([[6]]), "{alg:?}");
    }

    // The protected resource metadata names the provider exactly as it publishes itself.
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let doc: Value = server.http.get(format!("{}{path}", server.url)).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["resource"], json!(RESOURCE), "{path}");
        assert_eq!(doc["authorization_servers"], json!([iss]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        let scopes = doc["scopes_supported"].as_array().unwrap();
        for s in ["sales:read", "products:read", "pii:read"] {
            assert!(scopes.contains(&json!(s)), "{s} in {doc}");
        }
    }
    let ready: Value =
        server.http.get(format!("{}/health/ready", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["identity"]["ok"], json!(true), "{ready}");
}

/// Header, claims and signature of a token, as base64url text, for tokens no library would make.
fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{}", enc(header), enc(claims), URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test]
async fn every_bad_token_gets_401_with_the_metadata_pointer() {
    let idp = Idp::start().await;
    let server = Server::start(Some(idp.issuer()), JwtSettings::default()).await.unwrap();
    let iss = idp.issuer();
    let good = || Mint::rs256(iss, RESOURCE).claim("rls_user_id", json!(manager(0)));
    let metadata = "resource_metadata=\"https://mcp.zava.example/.well-known/oauth-protected-resource/mcp\"";

    // No token at all: 401, the pointer, and no error code (RFC 6750 §3.1).
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let r = server.post(None, &list).await;
    assert_eq!(r.status, 401);
    let challenge = r.challenge.unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(metadata) && !challenge.contains("error="),
        "{challenge}"
    );

    let claims = good().claims;
    let now = idp::now();
    let mut crit = Header::new(Algorithm::RS256);
    crit.kid = Some("rsa-1".into());
    crit.crit = Some(vec!["exp".into()]);
    let mut unknown_kid = good();
    unknown_kid.header.kid = Some("rsa-9".into());
    let mut id_typed = good();
    id_typed.header.typ = Some("id_token".into());
    // HS256 with the provider's public key as the HMAC secret: the classic algorithm confusion.
    let mut confused = good();
    confused.header = Header::new(Algorithm::HS256);
    confused.header.kid = Some("rsa-1".into());
    confused.key = EncodingKey::from_secret(&fixture("rsa.pub.pem")).unwrap();
    let mut other_key = good();
    other_key.key = EncodingKey::from_rsa_pem(&fixture("rsa-next.pem")).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            raw_token(&json!({"alg": "none", "typ": "JWT"}), &Value::Object(claims.clone()), b""),
            "alg: none",
        ),
        ("alg None", raw_token(&json!({"alg": "None"}), &Value::Object(claims.clone()), b""), "alg: none"),
        ("algorithm confusion", confused.sign(), "algorithm"),
        ("signed by another key", other_key.sign(), "signature"),
        ("expired", good().claim("exp", json!(now - 120)).sign(), "expired"),
        ("not yet valid", good().claim("nbf", json!(now + 600)).sign(), "not valid yet"),
        (
            "wrong audience",
            good().claim("aud", json!("https://other.example/mcp")).sign(),
            "not issued for this server",
        ),
        ("no audience", good().claim("aud", Value::Null).sign(), "aud"),
        ("wrong issuer", good().claim("iss", json!("https://evil.example")).sign(), "trusted issuer"),
        ("no expiry", good().claim("exp", Value::Null).sign(), "exp"),
        ("an ID token", good().claim("nonce", json!("n-0S6_WzA2Mj")).sign(), "ID tokens"),
        ("typed as an ID token", id_typed.sign(), "not an access token"),
        ("critical header", Mint { header: crit, ..good() }.sign(), "critical"),
        ("unknown key id", unknown_kid.sign(), "rsa-9"),
        ("not a JWT", "abc.def".into(), "not a JWT"),
        ("garbage header", "!!!.e30.sig".into(), "not a JWT"),
    ];
    for (name, token, says) in cases {
        let r = server.post(Some(&format!("Bearer {token}")), &list).await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        let challenge = r.challenge.unwrap_or_default();
        assert!(challenge.contains(metadata) && challenge.contains("error=\"invalid_token\""), "{name}: {challenge}");
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{name}: `{message}` should say `{says}`");
        assert!(!message.contains(&token[..token.len().min(20)]) || token.len() < 20, "{name}: the token is echoed");
    }
    // Not the Bearer scheme.
    for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer "] {
        let r = server.post(Some(value), &list).await;
        assert_eq!(r.status, 401, "{value}");
    }
    // A valid token that maps to no store: 403, never a default tenant.
    for (name, token) in [
        ("no manager claim", Mint::rs256(iss, RESOURCE).sign()),
        ("unknown manager", good().claim("rls_user_id", json!("11111111-1111-1111-1111-111111111111")).sign()),
        ("unknown role", good().claim("zava_role", json!("admin")).sign()),
        ("region without stores", good().claim("zava_role", json!("regional_manager")).sign()),
    ] {
        let r = server.post(Some(&format!("Bearer {token}")), &list).await;
        assert_eq!(r.status, 403, "{name}: {}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("maps to no stores"), "{name}: {}", r.body);
    }
}

#[tokio::test]
async fn scopes_decide_which_tools_a_token_sees_and_calls() {
    let idp = Idp::start().await;
    let server = Server::start(Some(idp.issuer()), JwtSettings::default()).await.unwrap();
    let catalog_only = Mint::rs256(idp.issuer(), RESOURCE)
        .claim("rls_user_id", json!(manager(0)))
        .claim("scope", json!("products:read"));
    let token = catalog_only.sign();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let r = server.post(Some(&format!("Bearer {token}")), &list).await;
    let mut names: Vec<&str> =
        r.body["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["get_current_utc_date", "semantic_search_products"]);
    let r = server.query(&token, "SELECT 1").await;
    assert_eq!(r.status, 403);
    let challenge = r.challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"sales:read\""),
        "{challenge}"
    );
    // Entra's `scp` claim counts the same.
    let entra = Mint::rs256(idp.issuer(), RESOURCE)
        .claim("rls_user_id", json!(manager(0)))
        .claim("scope", Value::Null)
        .claim("scp", json!("sales:read"));
    assert_eq!(server.stores_seen(&entra.sign()).await, json!([[1]]));
}

#[tokio::test]
async fn keys_rotate_survive_an_outage_and_unknown_key_ids_cannot_flood_the_provider() {
    let idp = Idp::start().await;
    let settings = JwtSettings { refetch_floor: Duration::from_millis(300), ..JwtSettings::default() };
    let server = Server::start(Some(idp.issuer()), settings).await.unwrap();
    let seattle = || Mint::rs256(idp.issuer(), RESOURCE).claim("rls_user_id", json!(manager(0)));
    assert_eq!(server.stores_seen(&seattle().sign()).await, json!([[1]]));
    let after_start = idp.fetches();

    // A burst of made-up key ids: at most one fetch per floor.
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    for i in 0..20 {
        let mut m = seattle();
        m.header.kid = Some(format!("made-up-{i}"));
        assert_eq!(server.post(Some(&format!("Bearer {}", m.sign())), &list).await.status, 401);
    }
    assert!(idp.fetches() - after_start <= 1, "{} fetches for 20 unknown key ids", idp.fetches() - after_start);

    // The provider rotates: a token with the new key id is accepted once the floor has passed.
    idp.rotate().await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut next = seattle();
    next.header.kid = Some("rsa-2".into());
    next.key = EncodingKey::from_rsa_pem(&fixture("rsa-next.pem")).unwrap();
    assert_eq!(server.stores_seen(&next.sign()).await, json!([[1]]));

    // The provider goes down: the keys already fetched keep working.
    idp.set_down(true);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut unknown = seattle();
    unknown.header.kid = Some("rsa-7".into());
    assert_eq!(server.post(Some(&format!("Bearer {}", unknown.sign())), &list).await.status, 401);
    assert_eq!(server.stores_seen(&seattle().sign()).await, json!([[1]]));
    assert_eq!(server.stores_seen(&next.sign()).await, json!([[1]]));
}

#[tokio::test]
async fn an_issuer_the_provider_does_not_publish_is_refused_at_startup() {
    let idp = Idp::start().await;
    // The provider publishes its issuer without a trailing slash; a configured one with it is another issuer.
    let e = Server::start(Some(&format!("{}/", idp.issuer())), JwtSettings::default()).await.err().unwrap();
    assert!(e.contains("publishes the issuer"), "{e}");
}

#[tokio::test]
async fn development_tokens_from_the_data_directory_key_work_and_nothing_else_does() {
    use zava_mcp::auth::dev::{DevIdentity, DevKey};
    use zava_mcp::auth::scopes::Scope;
    let (db, dir, app) = Server::parts().await;
    let auth = authenticator(&app, &dir, &JwtSettings::default()).await.unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(DevKey::path(dir.path())).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let server = Server::serve(db, dir, app, auth).await;

    let key = DevKey::load_or_create(server._dir.path()).unwrap();
    let scopes = [Scope::parse("sales:read").unwrap()];
    let redmond =
        key.mint(RESOURCE, &DevIdentity::Managers(vec![manager(5)]), &scopes, Duration::from_secs(60)).unwrap();
    assert_eq!(server.stores_seen(&redmond).await, json!([[6]]));
    let region = key
        .mint(RESOURCE, &DevIdentity::Region(vec!["seattle".into(), "tacoma".into()]), &scopes, Duration::from_secs(60))
        .unwrap();
    assert_eq!(server.stores_seen(&region).await, json!([[1], [3]]));
    // Another key, another audience: refused.
    let other = DevKey::load_or_create(crate::harness::data_dir().path()).unwrap();
    let forged = other.mint(RESOURCE, &DevIdentity::HeadOffice, &scopes, Duration::from_secs(60)).unwrap();
    assert_eq!(server.query(&forged, "SELECT 1").await.status, 401);
    let elsewhere =
        key.mint("https://other.example/mcp", &DevIdentity::HeadOffice, &scopes, Duration::from_secs(60)).unwrap();
    assert_eq!(server.query(&elsewhere, "SELECT 1").await.status, 401);
    // Provider-style tokens are not trusted in development mode.
    let rs = Mint::rs256(zava_mcp::auth::jwt::DEV_ISSUER, RESOURCE).claim("rls_user_id", json!(manager(0))).sign();
    assert_eq!(server.query(&rs, "SELECT 1").await.status, 401);
    let doc: Value = server
        .http
        .get(format!("{}/.well-known/oauth-protected-resource/mcp", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc.get("authorization_servers").is_none(), "{doc}");
    let ready: Value =
        server.http.get(format!("{}/health/ready", server.url)).send().await.unwrap().json().await.unwrap();
    assert!(ready["identity"]["warning"].as_str().unwrap().contains("development"), "{ready}");
}
