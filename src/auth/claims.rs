//! From a verified token's claims to a [`Tenant`]: a small, documented mapping with no special case in SQL
//! (every identity ends as the same signed, transaction-local context).
//!
//! In order:
//! 1. the role claim (default `zava_role`; a string, or a list such as Entra ID's `roles`) says `head_office`:
//!    every store;
//! 2. it says `regional_manager`: the stores claim (default `zava_stores`) lists store manager UUIDs or store
//!    names (`Seattle`, `Zava Retail Redmond`), and the caller sees exactly those stores;
//! 3. otherwise (`store_manager`, or no role claim): the manager claim (default `rls_user_id`, the upstream
//!    `auth.py`'s name) holds the manager's UUID, as the `x-rls-user-id` header would.
//!
//! A principal that maps to nothing is refused (HTTP 403): there is no default tenant.

use serde_json::{Map, Value};

use crate::identity::{Directory, IdentityError};
use crate::tenant::{Tenant, TenantError};

/// The claim names the mapping reads.
#[derive(Debug, Clone)]
pub struct ClaimNames {
    pub manager: String,
    pub role: String,
    pub stores: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self { manager: "rls_user_id".into(), role: "zava_role".into(), stores: "zava_stores".into() }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimsError {
    #[error("the token's `{claim}` claim is `{value}`; expected head_office, regional_manager or store_manager")]
    UnknownRole { claim: String, value: String },
    #[error("the token says regional_manager but its `{0}` claim lists no stores")]
    NoStores(String),
    #[error("the token's `{claim}` claim names `{value}`, which is neither a store nor a store manager UUID")]
    UnknownStore { claim: String, value: String },
    #[error("the token carries no `{0}` claim (a store manager UUID) and no role: it maps to no stores")]
    NoManager(String),
    #[error("no rule of the identity map matches this token (its groups, roles, sub or email): ask an administrator")]
    Unmapped,
    #[error("the token's `{claim}` claim: {source}")]
    Identity { claim: String, source: IdentityError },
}

/// The tenant `claims` map to.
pub fn tenant(claims: &Map<String, Value>, names: &ClaimNames, directory: &Directory) -> Result<Tenant, ClaimsError> {
    match role(claims.get(&names.role)) {
        Some("head_office") => return Ok(Tenant::HeadOffice),
        Some("regional_manager") => return regional(claims, names, directory),
        Some("store_manager") | None => {}
        Some(other) => return Err(ClaimsError::UnknownRole { claim: names.role.clone(), value: other.into() }),
    }
    let raw = match claims.get(&names.manager) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
        _ => return Err(ClaimsError::NoManager(names.manager.clone())),
    };
    directory.resolve(Some(&raw)).map_err(|source| ClaimsError::Identity { claim: names.manager.clone(), source })
}

/// The role a claim names: a string, or (Entra ID app roles) a list in which the widest known role counts and
/// other entries (other apps' roles) are ignored.
fn role(claim: Option<&Value>) -> Option<&str> {
    match claim {
        Some(Value::String(s)) => Some(s),
        Some(Value::Array(items)) => {
            let held: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            ["head_office", "regional_manager", "store_manager"].into_iter().find(|r| held.contains(r))
        }
        _ => None,
    }
}

fn regional(claims: &Map<String, Value>, names: &ClaimNames, directory: &Directory) -> Result<Tenant, ClaimsError> {
    let entries: Vec<&str> = match claims.get(&names.stores) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => s.split(',').collect(),
        _ => vec![],
    };
    let entries: Vec<&str> = entries.into_iter().map(str::trim).filter(|e| !e.is_empty()).collect();
    if entries.is_empty() {
        return Err(ClaimsError::NoStores(names.stores.clone()));
    }
    let mut managers = Vec::new();
    for entry in entries {
        let manager = directory
            .manager_of(entry)
            .ok_or_else(|| ClaimsError::UnknownStore { claim: names.stores.clone(), value: entry.into() })?;
        managers.push(manager);
    }
    Tenant::from_uuids(managers).map_err(|e: TenantError| ClaimsError::Identity {
        claim: names.stores.clone(),
        source: IdentityError::Invalid(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::stores::STORES;
    use serde_json::json;

    fn directory() -> Directory {
        Directory::new(STORES.iter().map(|s| (s.manager, s.name.to_owned())))
    }

    fn map(claims: Value) -> Result<Tenant, ClaimsError> {
        tenant(claims.as_object().unwrap(), &ClaimNames::default(), &directory())
    }

    #[test]
    fn a_manager_claim_a_role_or_a_store_list_each_map_to_exactly_their_stores() {
        let seattle = STORES[0].manager;
        assert_eq!(map(json!({"rls_user_id": seattle.to_string()})), Ok(Tenant::from_uuid(seattle)));
        assert_eq!(map(json!({"zava_role": "head_office"})), Ok(Tenant::HeadOffice));
        let region =
            map(json!({"zava_role": "regional_manager", "zava_stores": ["Seattle", STORES[5].manager.to_string()]}));
        assert_eq!(region, Ok(Tenant::from_uuids([seattle, STORES[5].manager]).unwrap()));
        let by_full_name = map(json!({"zava_role": "regional_manager", "zava_stores": "Zava Retail Redmond, online"}));
        assert!(by_full_name.is_ok(), "{by_full_name:?}");
        // Entra app roles: a list, other apps' roles ignored.
        assert_eq!(map(json!({"zava_role": ["reader", "head_office"]})), Ok(Tenant::HeadOffice));
        let listed = map(json!({"zava_role": ["reader"], "rls_user_id": seattle.to_string()}));
        assert_eq!(listed, Ok(Tenant::from_uuid(seattle)));
    }

    #[test]
    fn claims_that_map_to_nothing_are_refused_never_defaulted() {
        assert!(matches!(map(json!({"sub": "x"})), Err(ClaimsError::NoManager(_))));
        assert!(matches!(map(json!({"zava_role": "admin"})), Err(ClaimsError::UnknownRole { .. })));
        assert!(matches!(map(json!({"zava_role": "regional_manager"})), Err(ClaimsError::NoStores(_))));
        assert!(matches!(
            map(json!({"zava_role": "regional_manager", "zava_stores": ["Seattle", "Paris"]})),
            Err(ClaimsError::UnknownStore { .. })
        ));
        let stranger = "11111111-1111-1111-1111-111111111111";
        assert!(matches!(map(json!({"rls_user_id": stranger})), Err(ClaimsError::Identity { .. })));
        // A regional list never widens to head office.
        let nil = "00000000-0000-0000-0000-000000000000";
        assert!(map(json!({"zava_role": "regional_manager", "zava_stores": ["Seattle", nil]})).is_err());
        assert!(map(json!({"rls_user_id": format!("{},{nil}", STORES[0].manager)})).is_err());
    }
}
