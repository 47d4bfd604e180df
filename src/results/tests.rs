use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock};
use uuid::Uuid;

use super::version::DataVersion;
use super::{CacheMode, Kept, ResultCache, ResultCacheSettings};
use crate::guard::{FunctionPolicy, ReadOnlySql};
use crate::tenant::{Access, ManagerId, PersonalData, Tenant};

fn settings() -> ResultCacheSettings {
    ResultCacheSettings { enabled: true, ttl: Duration::from_secs(60), max_bytes: 1 << 20, redis_url: None }
}

fn sql(text: &str) -> ReadOnlySql {
    ReadOnlySql::parse(text, &FunctionPolicy::builtin()).unwrap()
}

fn manager(n: u128) -> Access {
    Access::new(Tenant::Managers(BTreeSet::from([ManagerId::new(Uuid::from_u128(n))])), PersonalData::Masked)
}

fn kept(text: &str) -> Kept {
    Kept { result: CallToolResult::success(vec![ContentBlock::text(text)]), rows: 1, truncated: None }
}

fn cache_at(version: u64) -> (ResultCache, Arc<DataVersion>) {
    let v = Arc::new(DataVersion::default());
    v.observe(version);
    (ResultCache::new(&settings(), v.clone(), None), v)
}

fn text(kept: &Kept) -> &str {
    kept.result.content[0].as_text().map(|t| t.text.as_str()).unwrap_or_default()
}

#[test]
fn auto_is_on_for_the_managed_database_only() {
    assert!(CacheMode::Auto.enabled(true));
    assert!(!CacheMode::Auto.enabled(false));
    assert!(CacheMode::On.enabled(false));
    assert!(!CacheMode::Off.enabled(true));
}

#[tokio::test]
async fn a_result_is_served_to_the_same_access_for_the_same_text_and_version() {
    let (cache, _v) = cache_at(7);
    let stores = sql("SELECT store_name FROM retail.stores");
    let key = cache.key(&manager(1), &stores).unwrap();
    assert!(cache.get(&key).await.is_none());
    cache.keep(key.clone(), kept("seattle")).await;
    assert_eq!(text(&cache.get(&key).await.unwrap()), "seattle");
    // Another store, the same store with personal data in clear, another text: none of them sees it.
    let other = cache.key(&manager(2), &stores).unwrap();
    assert!(cache.get(&other).await.is_none(), "another tenant");
    let clear = Access::new(manager(1).tenant, PersonalData::Clear);
    assert!(cache.get(&cache.key(&clear, &stores).unwrap()).await.is_none(), "another personal-data grant");
    let spaced = sql("SELECT store_name  FROM retail.stores");
    assert!(cache.get(&cache.key(&manager(1), &spaced).unwrap()).await.is_none(), "another text");
    assert!(
        cache.get(&cache.key(&Access::new(Tenant::HeadOffice, PersonalData::Masked), &stores).unwrap()).await.is_none()
    );
}

#[tokio::test]
async fn a_new_data_version_leaves_older_results_behind() {
    let (cache, v) = cache_at(7);
    let stores = sql("SELECT store_name FROM retail.stores");
    let before = cache.key(&manager(1), &stores).unwrap();
    cache.keep(before.clone(), kept("old")).await;
    v.observe(8);
    let after = cache.key(&manager(1), &stores).unwrap();
    assert!(cache.get(&after).await.is_none(), "the data changed: the result must be read again");
    // A result read while the data moved on is not kept: its version is no longer asked for.
    let (cache, v) = cache_at(3);
    let key = cache.key(&manager(1), &stores).unwrap();
    v.observe(4);
    cache.keep(key, kept("read under 3")).await;
    assert!(cache.is_empty().await);
}

#[tokio::test]
async fn nothing_is_kept_or_served_while_the_version_is_unknown() {
    let (cache, v) = cache_at(5);
    let stores = sql("SELECT store_name FROM retail.stores");
    cache.keep(cache.key(&manager(1), &stores).unwrap(), kept("x")).await;
    v.lost();
    assert_eq!(cache.key(&manager(1), &stores).unwrap_err(), "version_unknown");
    assert_eq!(cache.data_version(), None);
}

#[tokio::test]
async fn a_version_that_goes_back_drops_everything() {
    let (cache, v) = cache_at(10);
    let stores = sql("SELECT store_name FROM retail.stores");
    cache.keep(cache.key(&manager(1), &stores).unwrap(), kept("x")).await;
    v.observe(10);
    assert_eq!(cache.len().await, 1, "the same version again changes nothing");
    v.observe(4);
    assert!(cache.is_empty().await, "a restore put older data back");
}

#[tokio::test]
async fn statements_that_depend_on_more_than_data_get_no_key() {
    let (cache, _v) = cache_at(1);
    assert_eq!(cache.key(&manager(1), &sql("SELECT now()")).unwrap_err(), "not_data_only");
    assert_eq!(cache.key(&manager(1), &sql("EXPLAIN SELECT 1")).unwrap_err(), "not_data_only");
}

#[tokio::test]
async fn the_bound_is_in_bytes() {
    let v = Arc::new(DataVersion::default());
    v.observe(1);
    let cache = ResultCache::new(&ResultCacheSettings { max_bytes: 64 << 10, ..settings() }, v, None);
    for i in 0..200 {
        let key = cache.key(&manager(1), &sql(&format!("SELECT {i} FROM retail.stores"))).unwrap();
        cache.keep(key, kept(&"x".repeat(4_000))).await;
    }
    cache.entries.run_pending_tasks().await;
    assert!(cache.entries.weighted_size() <= 64 << 10, "{}", cache.entries.weighted_size());
}

#[test]
fn the_settings_never_show_the_redis_url() {
    let settings = ResultCacheSettings { redis_url: Some("redis://:secret@cache:6379/0".into()), ..settings() };
    let shown = format!("{settings:?}");
    assert!(!shown.contains("secret") && shown.contains("shared: true"), "{shown}");
}
