//! Personal data masked in the database (issue #11 §3, migration V10): without the `pii:read` grant in its signed
//! context, no SQL a caller writes can read or infer a customer's clear email or phone, and the origin's SQL keeps
//! working. Every query here is one a model could send; each is checked against the clear values the owner reads.

use std::collections::BTreeSet;

use serde_json::json;
use zava_mcp::auth::JwtSettings;
use zava_mcp::data::stores::STORES;
use zava_mcp::db::introspect::{self, TableName};
use zava_mcp::tenant::{Access, PersonalData, Tenant};

use crate::auth::idp::{Idp, Mint};
use crate::auth::{RESOURCE, Reply, Server};
use crate::harness::{TestDb, count};

fn masked(tenant: Tenant) -> Access {
    Access::new(tenant, PersonalData::Masked)
}

fn seattle() -> Tenant {
    Tenant::from_uuid(STORES[0].manager)
}

/// Every clear email and phone, as the owner reads them from the table behind the view.
async fn clear_values(db: &TestDb) -> (BTreeSet<String>, BTreeSet<String>) {
    let rows = db.owner().await.query("SELECT email, phone FROM zava_private.customers", &[]).await.unwrap();
    let emails = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    let phones = rows.iter().filter_map(|r| r.get::<_, Option<String>>(1)).collect();
    (emails, phones)
}

/// `j***@example.com`
fn is_masked_email(e: &str) -> bool {
    let b = e.as_bytes();
    b.len() == 16 && b[0].is_ascii_lowercase() && &e[1..] == "***@example.com"
}

/// `(***) ***-1234`
fn is_masked_phone(p: &str) -> bool {
    p.len() == 14 && p.starts_with("(***) ***-") && p[10..].bytes().all(|b| b.is_ascii_digit())
}

/// All of a query's output as text (each row through `row_to_json`), so any value in any shape is seen.
async fn output_text(db: &TestDb, access: &Access, sql: &str) -> String {
    let wrapped = format!("SELECT coalesce(json_agg(q)::text, '') FROM ({sql}) q");
    let rows = db.as_access(access, &wrapped).await.unwrap_or_else(|e| panic!("`{sql}`: {e}"));
    rows[0].get(0)
}

#[tokio::test]
async fn without_the_grant_no_query_reads_a_clear_email_or_phone() {
    let db = TestDb::new().await;
    let (emails, phones) = clear_values(&db).await;
    let md5s: Vec<String> =
        db.owner_values("SELECT md5(email) FROM zava_private.customers ORDER BY customer_id LIMIT 200").await;

    for access in [masked(seattle()), masked(Tenant::HeadOffice)] {
        // The origin's SQL still works, and gets the masked shapes.
        let rows = db.as_access(&access, "SELECT * FROM retail.customers ORDER BY customer_id").await.unwrap();
        assert!(!rows.is_empty());
        for r in &rows {
            let email: String = r.get("email");
            assert!(is_masked_email(&email), "{email}");
            if let Some(phone) = r.get::<_, Option<String>>("phone") {
                assert!(is_masked_phone(&phone), "{phone}");
            }
        }
        // Whatever a query builds over the columns, it is built over the masked text.
        for sql in [
            "SELECT email, phone FROM retail.customers",
            "SELECT c FROM retail.customers c",
            "SELECT row_to_json(c)::text, to_jsonb(c) FROM retail.customers c",
            "SELECT string_agg(email || phone, ',') FROM retail.customers",
            "SELECT lower(email), upper(email), md5(email), email::bytea FROM retail.customers",
            "SELECT substring(email from 2 for 40), split_part(email, '@', 1), reverse(email) FROM retail.customers",
            "SELECT regexp_replace(phone, '[^0-9]', '', 'g') AS digits FROM retail.customers",
            "WITH x AS (SELECT * FROM retail.customers) SELECT email FROM x",
            "SELECT (SELECT max(email) FROM retail.customers), (SELECT min(phone) FROM retail.customers)",
            "SELECT o.order_id, c.email FROM retail.orders o JOIN retail.customers c USING (customer_id) LIMIT 500",
            "SELECT email FROM retail.customers UNION SELECT phone FROM retail.customers",
            "SELECT to_tsvector('simple', email)::text FROM retail.customers",
        ] {
            let text = output_text(&db, &access, sql).await;
            for clear in emails.iter().chain(phones.iter()) {
                assert!(!text.contains(clear.as_str()), "{access:?}: `{sql}` showed {clear}");
            }
            for digest in &md5s {
                assert!(!text.contains(digest.as_str()), "`{sql}` showed the md5 of a clear email");
            }
        }
        // Filters, lengths, grouping, joins and ordering see the masked text too: each answer below is what the
        // masked values give, where the clear values would give another.
        let n = count(&db.as_access(&access, "SELECT count(*) FROM retail.customers").await.unwrap());
        for (sql, expected) in [
            ("SELECT count(*) FROM retail.customers WHERE email LIKE '_a%'", 0),
            ("SELECT count(*) FROM retail.customers WHERE email LIKE '%.%.%@%'", 0),
            ("SELECT count(*) FROM retail.customers WHERE position('.' in split_part(email, '@', 1)) > 0", 0),
            ("SELECT count(*) FROM retail.customers WHERE length(email) <> 16", 0),
            ("SELECT count(*) FROM retail.customers WHERE phone ~ '^\\([0-9]'", 0),
            ("SELECT count(*) FROM retail.customers WHERE email IN (SELECT email FROM retail.customers) ", n),
        ] {
            assert_eq!(count(&db.as_access(&access, sql).await.unwrap()), expected, "{access:?}: `{sql}`");
        }
        let groups = count(
            &db.as_access(&access, "SELECT count(*) FROM (SELECT email FROM retail.customers GROUP BY email) g")
                .await
                .unwrap(),
        );
        assert!(groups <= 26 && groups < n, "{groups} email groups of {n} customers");
        let pairs = count(
            &db.as_access(&access, "SELECT count(*) FROM retail.customers a JOIN retail.customers b USING (email)")
                .await
                .unwrap(),
        );
        assert!(pairs > n, "a self-join on email matches only the masked text: {pairs} pairs for {n} customers");
        let ordered: Vec<String> = db
            .as_access(&access, "SELECT email FROM retail.customers ORDER BY email, customer_id")
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(ordered.windows(2).all(|w| w[0] <= w[1]) && ordered.iter().all(|e| is_masked_email(e)));
        // An error message quotes the masked value, not the clear one.
        let err = db.as_access(&access, "SELECT email::int FROM retail.customers").await.unwrap_err();
        assert!(err.contains("***@example.com"), "{err}");
    }
}

#[tokio::test]
async fn with_the_grant_the_caller_sees_its_customers_in_clear_and_no_one_else_s() {
    let db = TestDb::new().await;
    let (emails, _) = clear_values(&db).await;
    let clear = Access::new(seattle(), PersonalData::Clear);
    let seen: BTreeSet<String> =
        db.as_access(&clear, "SELECT email FROM retail.customers").await.unwrap().iter().map(|r| r.get(0)).collect();
    let expected: BTreeSet<String> = db
        .owner_values(
            "SELECT email FROM zava_private.customers c WHERE primary_store_id = 1
                OR customer_id IN (SELECT customer_id FROM retail.orders WHERE store_id = 1)",
        )
        .await
        .into_iter()
        .collect();
    assert_eq!(seen, expected);
    assert!(seen.len() < emails.len());
    // A condition whose error quotes a row (not leakproof) runs only on rows the tenant rule let through: the
    // view is a security barrier, so the planner cannot evaluate it first on another store's customers.
    for access in [clear.clone(), masked(seattle())] {
        let sql = "SELECT count(*) FROM retail.customers WHERE (last_name || '#' || customer_id)::int = 0";
        let err = db.as_access(&access, sql).await.unwrap_err();
        let quoted = err.rsplit('#').next().unwrap().trim_end_matches('"');
        let id: i32 = quoted.parse().unwrap_or_else(|_| panic!("{err}"));
        let visible = format!("SELECT count(*) FROM retail.customers WHERE customer_id = {id}");
        let visible = count(&db.as_access(&access, &visible).await.unwrap());
        assert_eq!(visible, 1, "the error quoted customer {id}, whom Seattle cannot see");
    }
    let all = Access::new(Tenant::HeadOffice, PersonalData::Clear);
    let rows = db.as_access(&all, "SELECT email FROM retail.customers").await.unwrap();
    assert_eq!(rows.iter().map(|r| r.get::<_, String>(0)).collect::<BTreeSet<_>>(), emails);
}

#[tokio::test]
async fn the_grant_cannot_be_forged_and_older_contexts_grant_nothing() {
    let db = TestDb::new().await;
    let c = db.query_role().await;
    // A masked context with its grants rewritten to `pii`: the HMAC no longer verifies, so nothing at all.
    let valid = db.context_for(&masked(seattle()));
    let mut parts: Vec<&str> = valid.as_str().split(';').collect();
    assert_eq!(parts[2], "-");
    parts[2] = "pii";
    let forged = parts.join(";");
    c.batch_execute(&format!("SET zava.tenant = '{forged}'")).await.unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM retail.customers", &[]).await.unwrap().get(0);
    assert_eq!(n, 0, "a forged grant must not verify");
    // A v1 context (signed before grants existed) still verifies, and masks.
    let v1 = sign_v1(&db, &STORES[0].manager.to_string());
    c.batch_execute(&format!("SET zava.tenant = '{v1}'")).await.unwrap();
    let emails: Vec<String> =
        c.query("SELECT email FROM retail.customers", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert!(!emails.is_empty() && emails.iter().all(|e| e.contains("***@")), "{:?}", &emails[..emails.len().min(3)]);
    // The clear table and the masking helpers' inputs are out of reach for model SQL and the role alike.
    c.batch_execute("RESET zava.tenant").await.unwrap();
    let rows = db.as_access(&masked(seattle()), "SELECT count(*) FROM zava_private.customers").await;
    assert!(rows.unwrap_err().contains("permission denied"));
}

/// A context in the pre-V10 format, `v1;<scope>;<expiry>;<nonce>;<hmac>`, signed with the database's key.
fn sign_v1(db: &TestDb, scope: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let expiry = chrono::Utc::now().timestamp() + 600;
    let payload = format!("v1;{scope};{expiry};0011223344556677");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&hex::decode(&db.key_hex).unwrap()).unwrap();
    mac.update(payload.as_bytes());
    format!("{payload};{}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn the_schema_tool_says_what_the_caller_gets() {
    let db = TestDb::new().await;
    let customers: TableName = "retail.customers".parse().unwrap();
    let orders: TableName = "retail.orders".parse().unwrap();
    for (access, says) in
        [(masked(seattle()), "masked for you"), (Access::new(seattle(), PersonalData::Clear), "shown to you in clear")]
    {
        let mut client = db.query_role().await;
        let tx =
            zava_mcp::db::context::begin(&mut client, &db.context_for(&access), std::time::Duration::from_secs(30))
                .await
                .unwrap();
        let text = introspect::describe(tx.client(), &[customers.clone(), orders.clone()]).await.unwrap();
        assert!(text.contains(&format!("- `email`, `phone`: personal data, {says}")), "{text}");
        // The view is described with the table's keys, and keys to customers point at the view.
        assert!(text.contains("- `primary_store_id` → `retail.stores.store_id` (MANY_TO_ONE)"), "{text}");
        assert!(text.contains("- `customer_id` → `retail.customers.customer_id` (MANY_TO_ONE)"), "{text}");
        assert!(!text.contains("zava_private"), "{text}");
    }
}

/// Head office through bearer tokens from a provider, with and without `pii:read`: the same SQL, clear or masked.
#[tokio::test]
async fn tokens_decide_masking_end_to_end() {
    let idp = Idp::start().await;
    let server = Server::start(Some(idp.issuer()), JwtSettings::default()).await.unwrap();
    let head_office = |scope: &str| {
        Mint::rs256(idp.issuer(), RESOURCE).claim("zava_role", json!("head_office")).claim("scope", json!(scope)).sign()
    };
    let sql = "SELECT email, phone FROM retail.customers ORDER BY customer_id LIMIT 3";
    let rows = |r: Reply| -> Vec<(String, String)> {
        assert_eq!(r.status, 200, "{}", r.body);
        let rows = r.body["result"]["structuredContent"]["r"].as_array().unwrap().clone();
        rows.iter().map(|row| (row[0].as_str().unwrap().to_owned(), row[1].as_str().unwrap().to_owned())).collect()
    };
    let plain = rows(server.query(&head_office("sales:read"), sql).await);
    let clear = rows(server.query(&head_office("sales:read pii:read"), sql).await);
    assert_eq!(plain.len(), 3);
    assert_eq!(plain.len(), clear.len());
    for ((me, mp), (ce, cp)) in plain.iter().zip(&clear) {
        assert!(is_masked_email(me) && is_masked_phone(mp), "{me} {mp}");
        assert!(!ce.contains('*') && !cp.contains('*'), "{ce} {cp}");
        assert_eq!(me.chars().next(), ce.chars().next(), "{me} masks {ce}");
        assert!(cp.ends_with(&mp[10..]), "{mp} masks {cp}");
    }
}
