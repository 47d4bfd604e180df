//! Product search against the real database: search documents built at seed time, keyword ranking, request
//! validation, and tenant-independence of the (shared) product results.

use std::time::Duration;

use zava_mcp::data::stores::STORES;
use zava_mcp::search::{SearchHit, SearchMode, SearchRequest, SearchStatement, search};
use zava_mcp::tenant::Tenant;

use crate::harness::{TestDb, embedder};

async fn keyword(db: &TestDb, tenant: &Tenant, text: &str) -> Vec<SearchHit> {
    find(db, tenant, SearchRequest::new(text, Some(5), None, Some(SearchMode::Keyword)).unwrap()).await
}

/// Runs `request` as `tenant` the way the server does (prepared statement, tenant transaction), embedding the query
/// with the local model unless it is a keyword search.
async fn find(db: &TestDb, tenant: &Tenant, request: SearchRequest) -> Vec<SearchHit> {
    let embedding = match request.mode {
        SearchMode::Keyword => None,
        _ => Some(embedder().embed(vec![request.text.clone()]).await.unwrap().remove(0)),
    };
    let mut client = db.query_role().await;
    let statement = SearchStatement::prepare(&client).await.unwrap();
    let tx = zava_mcp::db::context::begin(&mut client, &db.context(tenant), Duration::from_secs(30)).await.unwrap();
    search(tx.client(), &statement, &request, embedding).await.unwrap()
}

fn aisles(hits: &[SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.type_name.as_str()).collect()
}

#[tokio::test]
async fn every_product_has_a_search_document() {
    let db = TestDb::new().await;
    let products = db.owner_count("SELECT count(*) FROM retail.products").await;
    let documents = db
        .owner_count("SELECT count(*) FROM retail.product_description_embeddings WHERE search_document IS NOT NULL")
        .await;
    assert_eq!(documents, products);
}

#[tokio::test]
async fn keyword_search_ranks_products_matching_most_words_first() {
    let db = TestDb::new().await;
    let hits = keyword(&db, &Tenant::HeadOffice, "15 amp circuit breaker").await;
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].type_name, "CIRCUIT BREAKERS", "{hits:#?}");
    assert!(hits[0].product_name.contains("15"), "{}", hits[0].product_name);
    assert!(hits.iter().all(|h| h.similarity_distance.is_none() && h.sp.is_none()));
    let boxes = keyword(&db, &Tenant::HeadOffice, "waterproof electrical box for outdoor use").await;
    assert_eq!(boxes[0].type_name, "ELECTRICAL BOXES", "{boxes:#?}");
}

#[tokio::test]
async fn products_are_shared_every_tenant_gets_the_same_results() {
    let db = TestDb::new().await;
    let all = keyword(&db, &Tenant::HeadOffice, "paint roller tray").await;
    let redmond = keyword(&db, &Tenant::from_uuid(STORES[5].manager), "paint roller tray").await;
    assert!(!all.is_empty());
    assert_eq!(all, redmond);
}

#[tokio::test]
async fn a_query_of_only_stop_words_finds_nothing_instead_of_failing() {
    let db = TestDb::new().await;
    assert!(keyword(&db, &Tenant::HeadOffice, "the of and").await.is_empty());
}

#[tokio::test]
async fn semantic_search_puts_the_right_aisle_first_best_match_first() {
    let db = TestDb::new().await;
    let request = SearchRequest::new("15 amp circuit breaker", Some(5), None, Some(SearchMode::Semantic)).unwrap();
    let hits = find(&db, &Tenant::HeadOffice, request).await;
    assert_eq!(aisles(&hits), ["CIRCUIT BREAKERS"; 5], "{hits:#?}");
    assert!(hits[0].product_name.contains("15 Amp"), "{hits:#?}");
    // Within the aisle, products still come by their own similarity.
    let distances: Vec<f64> = hits.iter().map(|h| h.similarity_distance.unwrap()).collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
}

#[tokio::test]
async fn a_job_described_in_everyday_words_finds_the_aisle_that_serves_it() {
    let db = TestDb::new().await;
    for (text, aisle) in [
        ("how do I join two wires together safely", "WIRE CONNECTORS"),
        ("solar lights along the garden path", "OUTDOOR LIGHTING"),
    ] {
        let hits = find(&db, &Tenant::HeadOffice, SearchRequest::new(text, Some(3), None, None).unwrap()).await;
        assert_eq!(aisles(&hits), [aisle; 3], "{text}: {hits:#?}");
    }
}

#[tokio::test]
async fn a_sku_finds_its_product_in_every_mode() {
    let db = TestDb::new().await;
    let owner = db.owner().await;
    let row =
        owner.query_one("SELECT sku, product_name FROM retail.products ORDER BY product_id DESC LIMIT 1", &[]).await;
    let (sku, name): (String, String) = row.map(|r| (r.get(0), r.get(1))).unwrap();
    for mode in [SearchMode::Semantic, SearchMode::Keyword, SearchMode::Hybrid] {
        let hits =
            find(&db, &Tenant::HeadOffice, SearchRequest::new(&sku, Some(3), Some(0.0), Some(mode)).unwrap()).await;
        assert_eq!(hits.first().map(|h| &h.product_name), Some(&name), "{mode:?} {sku}: {hits:#?}");
    }
}

#[tokio::test]
async fn max_rows_is_honoured_beyond_the_fusion_candidates() {
    let db = TestDb::new().await;
    for mode in [SearchMode::Semantic, SearchMode::Hybrid] {
        let request = SearchRequest::new("garden", Some(100), Some(0.0), Some(mode)).unwrap();
        assert_eq!(find(&db, &Tenant::HeadOffice, request).await.len(), 100, "{mode:?}");
    }
}

#[tokio::test]
async fn an_edited_description_is_re_embedded_and_nothing_else() {
    let db = TestDb::new().await;
    let bar = indicatif::ProgressBar::hidden();
    let embed = async || zava_mcp::embed::products::embed_products(&db.owner, embedder(), false, &bar).await.unwrap();
    assert_eq!(embed().await, 0, "a fresh seed is fully embedded");
    let owner = db.owner().await;
    owner
        .batch_execute("UPDATE retail.products SET product_description = product_description || ' Sold in pairs.' WHERE product_id = 1")
        .await
        .unwrap();
    assert_eq!(embed().await, 1, "only the edited product's text changed");
    assert_eq!(embed().await, 0);
}

/// A server that has just seeded its database serves before the catalog's vectors are in: until then a semantic
/// search answers by keyword and says so, and once the catalog is embedded it ranks semantically again.
#[tokio::test]
async fn until_the_catalog_is_embedded_searches_answer_by_keyword_and_say_so() {
    use serde_json::json;
    use zava_mcp::app::{App, AppSettings};
    let db = TestDb::new().await;
    db.owner()
        .await
        .batch_execute(
            "UPDATE retail.product_description_embeddings SET description_embedding = NULL, embedding_model = NULL",
        )
        .await
        .unwrap();
    let refused = App::start(&db.query, db.key.clone(), embedder().clone(), AppSettings::default()).await;
    let refused = refused.err().expect("a server with nobody embedding the catalog refuses to start without it");
    assert!(format!("{refused:#}").contains("no product embeddings yet"), "{refused:#}");

    let settings = AppSettings { vectors_follow: true, ..Default::default() };
    let app = App::start(&db.query, db.key.clone(), embedder().clone(), settings).await.unwrap();
    assert!(!app.vectors.ready());
    let (addr, _shutdown) = crate::harness::serve_http(app.clone(), vec![]).await;
    let http = crate::harness::http_client();
    let search = async |text: &str| -> serde_json::Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "semantic_search_products", "arguments": {"query_description": text}}});
        let resp = crate::harness::mcp_post(&http, &format!("http://{addr}/mcp"), &body)
            .header("x-rls-user-id", STORES[0].manager.to_string());
        let v: serde_json::Value = resp.send().await.unwrap().json().await.unwrap();
        assert_eq!(v["result"]["isError"], json!(false), "{v}");
        v["result"]["structuredContent"].clone()
    };
    let early = search("cordless drill").await;
    assert_eq!(early["note"], json!(zava_mcp::mcp::output::VECTORS_PENDING), "{early}");
    assert!(early["n"].as_u64().unwrap() > 0, "keyword matches for a plain product name: {early}");

    zava_mcp::embed::products::complete(db.owner.clone(), embedder().clone(), app.vectors.clone()).await;
    assert!(app.vectors.ready());
    let later = search("something to make holes in a wall").await;
    assert!(later.get("note").is_none(), "{later}");
    assert!(later["n"].as_u64().unwrap() > 0, "{later}");
}
