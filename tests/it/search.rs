//! Product search against the real database: search documents built at seed time, keyword ranking, request
//! validation, and tenant-independence of the (shared) product results.

use std::time::Duration;

use zava_mcp::data::stores::STORES;
use zava_mcp::search::{SearchMode, SearchRequest, search};
use zava_mcp::tenant::Tenant;

use crate::harness::TestDb;

async fn keyword(db: &TestDb, tenant: &Tenant, text: &str) -> Vec<zava_mcp::search::SearchHit> {
    let mut client = db.query_role().await;
    let tx = zava_mcp::db::context::begin(&mut client, &db.context(tenant), Duration::from_secs(30)).await.unwrap();
    let request = SearchRequest::new(text, Some(5), None, Some(SearchMode::Keyword)).unwrap();
    search(&tx, &request, None).await.unwrap()
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
