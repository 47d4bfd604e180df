//! Bursts of departing and arriving clients over HTTP, as the issue reproduced the race: in each round 32 clients
//! on raw sockets send slow and quick calls of every tool for several tenants and all disconnect after a random
//! delay, and at once 32 other clients call and wait. Cancel requests reach PostgreSQL up to 40 ms late (the
//! proxy), which made the race frequent before the fix. Every arriving call's answer is checked against what its
//! tenant must see; none may fail. `ZAVA_CANCEL_STRESS_ROUNDS` sets the rounds (40 reproduces the issue's run).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use zava_mcp::data::stores::STORES;

use super::proxy::Mode;
use crate::harness::TestDb;

const HEAD_OFFICE: &str = "00000000-0000-0000-0000-000000000000";
const CLIENTS: usize = 32;

fn rounds() -> usize {
    std::env::var("ZAVA_CANCEL_STRESS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6)
}

/// The 8 store managers and head office.
fn identities() -> Vec<String> {
    STORES.iter().map(|s| s.manager.to_string()).chain([HEAD_OFFICE.to_owned()]).collect()
}

/// The calls departing clients make: slow ones (caught mid-statement) and quick ones (often just ended, the case
/// where a late cancel used to hit the next statement).
fn departing_call(pick: u32) -> Value {
    let (name, args) = match pick % 6 {
        0 | 1 => (
            "execute_sales_query",
            json!({"postgresql_query":
            "SELECT count(*) AS departing_slow FROM generate_series(1, 1500000)"}),
        ),
        2 => (
            "execute_sales_query",
            json!({"postgresql_query":
            "SELECT p.product_name, sum(oi.total_amount) AS revenue FROM retail.order_items oi \
             JOIN retail.products p USING (product_id) GROUP BY 1 ORDER BY 2 DESC LIMIT 5"}),
        ),
        3 => ("execute_sales_query", json!({"postgresql_query": "SELECT count(*) FROM retail.orders"})),
        4 => ("get_multiple_table_schemas", json!({"table_names": ["retail.orders", "retail.inventory"]})),
        _ => ("semantic_search_products", json!({"query_description": "cordless drill", "mode": "keyword"})),
    };
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": args}})
}

/// The calls arriving clients make, whose answers are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Arriving {
    OrdersByStore,
    Schema,
    Search,
}

impl Arriving {
    const ALL: [Arriving; 3] = [Arriving::OrdersByStore, Arriving::Schema, Arriving::Search];

    fn body(self) -> Value {
        let (name, args) = match self {
            Arriving::OrdersByStore => (
                "execute_sales_query",
                json!({"postgresql_query":
                "SELECT store_id, count(*) AS orders FROM retail.orders GROUP BY store_id ORDER BY store_id"}),
            ),
            Arriving::Schema => ("get_multiple_table_schemas", json!({"table_names": ["retail.inventory"]})),
            Arriving::Search => {
                ("semantic_search_products", json!({"query_description": "paint roller", "mode": "keyword"}))
            }
        };
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": args}})
    }
}

/// Sends one call on a raw socket and disconnects after `delay`, whatever the server is doing.
async fn depart(addr: SocketAddr, identity: &str, body: &Value, delay: Duration) {
    let body = body.to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n\
         x-rls-user-id: {identity}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(delay).await;
    drop(tcp);
}

async fn call(http: &reqwest::Client, addr: SocketAddr, identity: &str, body: &Value) -> Value {
    let resp = crate::harness::mcp_post(http, &format!("http://{addr}/mcp"), body)
        .header("x-rls-user-id", identity)
        .send()
        .await;
    match resp {
        Ok(r) => r.json().await.unwrap_or_else(|e| json!({"transport_error": e.to_string()})),
        Err(e) => json!({"transport_error": e.to_string()}),
    }
}

/// The part of a tool result that must not change from one call to the next.
fn answer(v: &Value) -> Value {
    let r = &v["result"];
    if r["isError"] == json!(true) || r.is_null() {
        return json!({"failed": v});
    }
    if r["structuredContent"].is_object() { r["structuredContent"].clone() } else { r["content"].clone() }
}

async fn bursts(pool_size: usize) {
    let db = TestDb::new().await;
    let (app, proxy) = super::app_behind_proxy(&db, Mode::Delay(Duration::from_millis(40)), pool_size).await;
    let (addr, shutdown) = crate::harness::serve_http(app, vec![]).await;
    let http = crate::harness::http_client();
    let identities = identities();

    // What each tenant must see: its own stores' order counts (from the owner, who bypasses nothing but sees all),
    // and, for the schema and search calls, the answer it got before any client left.
    let owner = db.owner().await;
    let counts: BTreeMap<i32, i64> = owner
        .query("SELECT store_id, count(*) FROM retail.orders GROUP BY store_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut expected = BTreeMap::new();
    for (i, identity) in identities.iter().enumerate() {
        let rows: Vec<Value> = counts
            .iter()
            .filter(|(store, _)| i == STORES.len() || **store == i as i32 + 1)
            .map(|(store, n)| json!([store, n]))
            .collect();
        expected.insert((identity.clone(), Arriving::OrdersByStore), json!(rows));
        for kind in [Arriving::Schema, Arriving::Search] {
            let baseline = answer(&call(&http, addr, identity, &kind.body()).await);
            assert!(
                baseline.get("failed").is_none(),
                "{kind:?} for {identity} fails before any client left: {baseline}"
            );
            expected.insert((identity.clone(), kind), baseline);
        }
    }

    let rounds = rounds();
    let mut failures = Vec::new();
    for round in 0..rounds {
        let departing: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let identity = identities[rand::random_range(0..identities.len())].clone();
                let body = departing_call(rand::random());
                let delay = Duration::from_millis(rand::random_range(0..400));
                tokio::spawn(async move { depart(addr, &identity, &body, delay).await })
            })
            .collect();
        for d in departing {
            d.await.unwrap();
        }
        let arriving: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let identity = identities[rand::random_range(0..identities.len())].clone();
                let kind = Arriving::ALL[rand::random_range(0..Arriving::ALL.len())];
                let http = http.clone();
                tokio::spawn(async move {
                    let got = answer(&call(&http, addr, &identity, &kind.body()).await);
                    (identity, kind, got)
                })
            })
            .collect();
        for a in arriving {
            let (identity, kind, got) = a.await.unwrap();
            let want = &expected[&(identity.clone(), kind)];
            let got = if kind == Arriving::OrdersByStore { got["r"].clone() } else { got };
            if &got != want {
                failures.push(format!("round {round}, {kind:?} for {identity}: got {got}, expected {want}"));
            }
        }
    }
    let cancels = proxy.cancels.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "cancel stress, pool of {pool_size}: {rounds} rounds, {} departing and {} arriving calls, {cancels} cancel \
         requests, {} failed",
        rounds * CLIENTS,
        rounds * CLIENTS,
        failures.len()
    );
    assert!(cancels > 0, "no client left mid-call: the test tested nothing");
    assert!(failures.is_empty(), "{} of {} calls failed:\n{}", failures.len(), rounds * CLIENTS, failures.join("\n"));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departing_clients_never_fail_arriving_ones() {
    bursts(zava_mcp::db::pool::PoolSettings::default().max_size).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departing_clients_never_fail_arriving_ones_on_one_connection() {
    bursts(1).await;
}
