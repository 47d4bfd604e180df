//! The tenant transaction: the only way tenant-scoped SQL reaches PostgreSQL.
//!
//! Each call opens a read-only transaction, sets a *signed*, transaction-local tenant context and a
//! transaction-local statement timeout, and ends in ROLLBACK (`db::session::end` sends it), so
//! nothing session-scoped survives on a pooled connection. The context is HMAC-signed with a key the query role
//! cannot read (see the V2 migration), so SQL that somehow rewrites the setting cannot become another tenant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio_postgres::{Client, Transaction};

use super::roles::HEAD_OFFICE;
use crate::tenant::{Access, Tenant};

/// How long a signed context stays valid. It only needs to outlive one transaction; the margin absorbs clock
/// skew between this host and an external database server.
pub const CONTEXT_VALIDITY: Duration = Duration::from_secs(600);

/// The key contexts are signed with (the same bytes as `zava_private.context_key`).
#[derive(Clone)]
pub struct ContextKey(Vec<u8>);

impl std::fmt::Debug for ContextKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContextKey(..)")
    }
}

impl ContextKey {
    pub fn from_hex(hex_key: &str) -> Result<Self> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| anyhow::anyhow!("the context key must be hex"))?;
        ensure!(bytes.len() >= 32, "the context key must be at least 32 bytes (64 hex characters)");
        Ok(Self(bytes))
    }
}

/// A tenant context as the database verifies it: `v2;<scope>;<grants>;<expiry>;<nonce>;<hmac>`, grants being
/// `pii` (personal data in clear) or `-` (see the V10 migration).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedContext {
    value: String,
    /// The tenant scope it was signed for (not secret): what fair sharing counts calls by.
    scope: String,
    /// Whether it is head office's, whose calls read through the head-office role (V12).
    head_office: bool,
}

impl std::fmt::Debug for SignedContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedContext(..)")
    }
}

impl SignedContext {
    pub fn sign(access: &Access, key: &ContextKey, valid_for: Duration) -> Self {
        let expiry = (SystemTime::now() + valid_for).duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let nonce = hex::encode(rand::random::<[u8; 8]>());
        let payload = format!("v2;{};{};{expiry};{nonce}", access.tenant.scope(), access.grants());
        let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC accepts any key length");
        mac.update(payload.as_bytes());
        let value = format!("{payload};{}", hex::encode(mac.finalize().into_bytes()));
        Self { value, scope: access.tenant.scope(), head_office: matches!(access.tenant, Tenant::HeadOffice) }
    }

    /// The tenant scope this context was signed for (`*` or manager UUIDs).
    pub fn tenant_scope(&self) -> &str {
        &self.scope
    }

    /// The raw setting value. Only letters, digits, UUID characters and `;*,-` can appear in it, so it can be
    /// written inside a quoted SQL literal without escaping.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// A libpq `options` value that sets this context (and, for head office, its role) for a whole session, for a
    /// person's psql session.
    pub fn as_connect_option(&self) -> String {
        let role = if self.head_office { format!(" -c role={HEAD_OFFICE}") } else { String::new() };
        format!("-c zava.tenant={}{role}", self.value)
    }
}

/// The transaction-local settings of a tenant call, as SQL: for head office the switch to its role, the signed
/// context, the statement timeout, and two planner settings.
///
/// Head office reads through `zava_head_office`, whose policy is a one-time check of the context instead of the
/// managers' `store_id = ANY (stores)`, which the planner, blind to `store_id`'s hidden statistics, would estimate
/// at a fraction of tables head office reads whole (V12). The context still decides what the role sees.
///
/// Prepared statements use their generic plan: the server's own statements (product search, schema
/// introspection) are prepared once per connection, and re-planning them on every call (PostgreSQL's default for
/// the first executions, and for good whenever a custom plan looks cheaper) cost the product search about as
/// much as running it. The model's SQL is unaffected: it has no parameters, so it is always planned for itself.
///
/// `cursor_tuple_fraction = 1` plans the model's SQL, which `db::query` runs through a cursor, for its whole
/// result, as a plain statement would be planned, not for its first tenth (the cursor default).
fn settings(context: &SignedContext, timeout: Duration) -> String {
    debug_assert!(context.value.bytes().all(|b| b.is_ascii_alphanumeric() || b";*,-".contains(&b)));
    let role = if context.head_office { format!("SET LOCAL ROLE {HEAD_OFFICE}; ") } else { String::new() };
    format!(
        "{role}SET LOCAL zava.tenant = '{}'; SET LOCAL statement_timeout = {}; \
         SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL cursor_tuple_fraction = 1",
        context.as_str(),
        timeout.as_millis().max(1)
    )
}

/// What opens a tenant call's read-only transaction, as one simple-protocol message: `BEGIN READ ONLY` and
/// [`settings`]. `db::call` sends it ahead of the call's own statements, in the same round trip.
pub(crate) fn opening(context: &SignedContext, timeout: Duration) -> String {
    format!("BEGIN READ ONLY; {}", settings(context, timeout))
}

/// Opens the read-only tenant transaction on `client` as a `Transaction` (two round trips), for work that is not
/// a caller's call: tests, and tools that hold one transaction across many statements.
pub async fn begin<'a>(client: &'a mut Client, context: &SignedContext, timeout: Duration) -> Result<Transaction<'a>> {
    let tx = client.build_transaction().read_only(true).start().await?;
    tx.batch_execute(&settings(context, timeout)).await?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tenant::PersonalData;

    #[test]
    fn contexts_are_signed_per_tenant_and_never_repeat() {
        let key = ContextKey::from_hex(&"ab".repeat(32)).unwrap();
        let head_office = Access::new(Tenant::HeadOffice, PersonalData::Masked);
        let a = SignedContext::sign(&head_office, &key, CONTEXT_VALIDITY);
        let b = SignedContext::sign(&head_office, &key, CONTEXT_VALIDITY);
        assert!(a.as_str().starts_with("v2;*;-;"));
        assert_ne!(a, b, "the nonce makes every context distinct");
        assert_eq!(a.as_str().split(';').count(), 6);
        assert!(!format!("{a:?}").contains("v2"));
        let clear = SignedContext::sign(&Access::new(Tenant::HeadOffice, PersonalData::Clear), &key, CONTEXT_VALIDITY);
        assert!(clear.as_str().starts_with("v2;*;pii;"));
    }

    #[test]
    fn only_head_office_switches_to_its_role() {
        let key = ContextKey::from_hex(&"ab".repeat(32)).unwrap();
        let timeout = Duration::from_secs(5);
        let head_office = SignedContext::sign(&Access::new(Tenant::HeadOffice, PersonalData::Masked), &key, timeout);
        let opened = opening(&head_office, timeout);
        assert!(opened.starts_with("BEGIN READ ONLY; SET LOCAL ROLE zava_head_office; SET LOCAL zava.tenant = 'v2;*;"));
        assert!(head_office.as_connect_option().ends_with(" -c role=zava_head_office"));
        let manager = Tenant::from_uuid(uuid::Uuid::from_u128(7));
        let manager = SignedContext::sign(&Access::new(manager, PersonalData::Masked), &key, timeout);
        assert!(!opening(&manager, timeout).contains("ROLE"));
        assert!(!manager.as_connect_option().contains("role"));
    }

    #[test]
    fn short_or_non_hex_keys_are_refused() {
        assert!(ContextKey::from_hex("abcd").is_err());
        assert!(ContextKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
