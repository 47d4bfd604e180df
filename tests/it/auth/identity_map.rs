//! The identity map (issue #11 §2, `auth::mapping`): provider tokens that carry only Entra-style groups, app roles
//! or an email see the stores the deployment's map grants, together when several rules match; a token no rule
//! matches is refused with 403 even when it carries a manager claim (direct claims are off unless the file says
//! so), and with `direct_claims = true` the claims are tried next.

use serde_json::json;
use zava_mcp::auth::JwtSettings;
use zava_mcp::auth::mapping::IdentityMap;

use super::idp::{Idp, Mint};
use super::{RESOURCE, Server, authenticator, manager};

const MAP: &str = r#"
[[map]]
claim = "groups"
equals = "5b1c6c1e-0d2f-4c59-9b0e-3f4b7a1d2e90"
identity = "seattle"

[[map]]
claim = "groups"
equals = "0e6f3c2a-7a41-4b1e-a0c9-2d5f8e7b6a13"
identity = "redmond"

[[map]]
claim = "roles"
equals = "Zava.HeadOffice"
identity = "head-office"

[[map]]
claim = "email"
matches = '[a-z.]+@tacoma\.zava\.example'
identity = "tacoma"
"#;

async fn server(idp: &Idp, map: &str) -> Server {
    let (db, dir, app) = Server::parts().await;
    let settings = JwtSettings { issuer: Some(idp.issuer().to_owned()), ..JwtSettings::default() };
    let map = IdentityMap::parse(map, &app.directory).unwrap();
    let auth = authenticator(&app, &dir, &settings).await.unwrap().with_identity_map(map);
    Server::serve(db, dir, app, auth).await
}

#[tokio::test]
async fn groups_roles_and_emails_map_to_the_stores_the_deployment_grants() {
    let idp = Idp::start().await;
    let server = server(&idp, MAP).await;
    let token = |claim: &str, value: serde_json::Value| Mint::rs256(idp.issuer(), RESOURCE).claim(claim, value).sign();

    let seattle =
        token("groups", json!(["00000000-aaaa-4aaa-8aaa-000000000001", "5b1c6c1e-0d2f-4c59-9b0e-3f4b7a1d2e90"]));
    assert_eq!(server.stores_seen(&seattle).await, json!([[1]]));
    let both = token("groups", json!(["5b1c6c1e-0d2f-4c59-9b0e-3f4b7a1d2e90", "0e6f3c2a-7a41-4b1e-a0c9-2d5f8e7b6a13"]));
    assert_eq!(server.stores_seen(&both).await, json!([[1], [6]]), "two groups: both stores");
    let hq = token("roles", json!(["Zava.Reader", "Zava.HeadOffice"]));
    assert_eq!(server.stores_seen(&hq).await, json!([[1], [2], [3], [4], [5], [6], [7], [8]]));
    let tacoma = token("email", json!("ana.lopez@tacoma.zava.example"));
    assert_eq!(server.stores_seen(&tacoma).await, json!([[3]]));

    // Nothing matches: 403, whatever else the token claims (the map decides, not the token).
    for (name, t) in [
        ("an unknown group", token("groups", json!(["ffffffff-0000-4000-8000-000000000000"]))),
        ("a look-alike email", token("email", json!("ana@tacoma.zava.example.evil.test"))),
        ("a manager claim", token("rls_user_id", json!(manager(0)))),
        ("a head-office role claim", token("zava_role", json!("head_office"))),
    ] {
        let r = server.query(&t, "SELECT 1").await;
        assert_eq!(r.status, 403, "{name}: {}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("identity map"), "{name}: {}", r.body);
    }
}

#[tokio::test]
async fn direct_claims_are_tried_when_the_map_allows_it() {
    let idp = Idp::start().await;
    let server = server(&idp, &format!("direct_claims = true\n{MAP}")).await;
    let direct = Mint::rs256(idp.issuer(), RESOURCE).claim("rls_user_id", json!(manager(5))).sign();
    assert_eq!(server.stores_seen(&direct).await, json!([[6]]));
    let mapped = Mint::rs256(idp.issuer(), RESOURCE)
        .claim("rls_user_id", json!(manager(5)))
        .claim("roles", json!(["Zava.HeadOffice"]))
        .sign();
    assert_eq!(server.stores_seen(&mapped).await.as_array().unwrap().len(), 8, "a matching rule comes first");
}
