//! Static API keys (issue #11 §2): a key stands for exactly the identity and scopes of its entry, alone
//! (`--identity api-key`) or beside JWTs (`jwt,api-key`); a wrong key, or a JWT where only keys are taken, is 401.

use std::io::Write;

use serde_json::json;
use zava_mcp::auth::api_key::{self, ApiKeys};
use zava_mcp::auth::metadata::ResourceUri;
use zava_mcp::auth::scopes::ToolScopes;
use zava_mcp::auth::{Authenticator, JwtSettings};

use super::idp::{Idp, Mint};
use super::{RESOURCE, Server, authenticator, manager};

/// A keys file with one key per (identity, scopes); returns the keys in the same order.
fn keys_file(entries: &[(&str, &[&str])]) -> (tempfile::NamedTempFile, Vec<String>) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let mut keys = Vec::new();
    for (i, (identity, scopes)) in entries.iter().enumerate() {
        let (key, id, hash) = api_key::generate().unwrap();
        let scopes: Vec<String> = scopes.iter().map(|s| format!("\"{s}\"")).collect();
        writeln!(
            f,
            "[[key]]\nname = \"job-{i}\"\nid = \"{id}\"\nhash = \"{hash}\"\nidentity = \"{identity}\"\nscopes = [{}]\n",
            scopes.join(", ")
        )
        .unwrap();
        keys.push(key);
    }
    (f, keys)
}

#[tokio::test]
async fn api_keys_see_their_stores_and_nothing_else_passes() {
    let (file, keys) = keys_file(&[
        ("seattle", &["sales:read"]),
        ("tacoma, spokane", &["sales:read", "products:read"]),
        ("head-office", &["products:read"]),
    ]);
    let (db, dir, app) = Server::parts().await;
    let loaded = ApiKeys::load(file.path(), &app.directory).unwrap();
    let auth = Authenticator::api_keys_only(
        ResourceUri::parse(RESOURCE).unwrap(),
        loaded,
        ToolScopes::default(),
        app.directory.clone(),
    );
    let server = Server::serve(db, dir, app, auth).await;
    assert_eq!(server.stores_seen(&keys[0]).await, json!([[1]]));
    assert_eq!(server.stores_seen(&keys[1]).await, json!([[3], [4]]));
    // Head office's key lacks sales:read.
    let r = server.query(&keys[2], "SELECT 1").await;
    assert_eq!(r.status, 403);
    assert!(r.challenge.unwrap().contains("scope=\"sales:read\""));
    // A key with one character changed, a made-up key, a JWT: 401.
    let mut wrong = keys[0].clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    let jwt = Mint::rs256("https://idp.example", RESOURCE).claim("rls_user_id", json!(manager(0))).sign();
    for (name, bad) in [("changed", wrong), ("made up", "zava_12345678_nope".into()), ("a JWT", jwt)] {
        let r = server.query(&bad, "SELECT 1").await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert!(r.challenge.unwrap().contains("error=\"invalid_token\""), "{name}");
    }
}

#[tokio::test]
async fn keys_and_provider_tokens_work_side_by_side() {
    let idp = Idp::start().await;
    let (file, keys) = keys_file(&[("redmond", &["sales:read"])]);
    let (db, dir, app) = Server::parts().await;
    let settings = JwtSettings { issuer: Some(idp.issuer().to_owned()), ..JwtSettings::default() };
    let loaded = ApiKeys::load(file.path(), &app.directory).unwrap();
    let auth = authenticator(&app, &dir, &settings).await.unwrap().with_api_keys(loaded);
    let server = Server::serve(db, dir, app, auth).await;
    assert_eq!(server.stores_seen(&keys[0]).await, json!([[6]]));
    let seattle = Mint::rs256(idp.issuer(), RESOURCE).claim("rls_user_id", json!(manager(0))).sign();
    assert_eq!(server.stores_seen(&seattle).await, json!([[1]]));
}
