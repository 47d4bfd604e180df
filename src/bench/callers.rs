//! Who the bench calls as: by default the rotation over the 8 store managers and head office (each call the next
//! identity), or one named identity; the same for the MCP run and the floor.

use anyhow::{Result, bail};
use uuid::Uuid;

use crate::data::stores::{STORES, find_store};
use crate::tenant::{Access, HEAD_OFFICE_ID, PersonalData, Tenant};

/// One identity the bench calls as.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) name: String,
    /// What the server gets in `x-rls-user-id`.
    pub(crate) header: String,
    /// What the floor signs: the tenant and personal-data grant a header identity gets from the server.
    pub(crate) access: Access,
}

impl Caller {
    pub(crate) fn new(name: &str, id: Uuid) -> Caller {
        let name = name.strip_prefix("Zava Retail ").unwrap_or(name);
        Caller {
            name: name.to_owned(),
            header: id.to_string(),
            access: Access::new(Tenant::from_uuid(id), PersonalData::Clear),
        }
    }
}

/// The callers of a run: `None` for the rotation, or a store's name, `head-office`, or a manager's UUID.
pub(crate) fn callers(identity: Option<&str>) -> Result<Vec<Caller>> {
    let rotation = || {
        let mut all: Vec<Caller> = STORES.iter().map(|s| Caller::new(s.name, s.manager)).collect();
        all.push(Caller::new("head office", HEAD_OFFICE_ID));
        all
    };
    let Some(name) = identity else { return Ok(rotation()) };
    let wanted = name.trim();
    if ["head-office", "head office", "head_office"].contains(&wanted.to_ascii_lowercase().as_str()) {
        return Ok(vec![Caller::new("head office", HEAD_OFFICE_ID)]);
    }
    if let Some(store) = find_store(wanted) {
        return Ok(vec![Caller::new(store.name, store.manager)]);
    }
    if let Ok(id) = wanted.parse::<Uuid>() {
        return match rotation().into_iter().find(|c| c.header == id.to_string()) {
            Some(c) => Ok(vec![c]),
            None => bail!("--identity {wanted}: no store has this manager"),
        };
    }
    let names: Vec<_> = STORES.iter().map(|s| s.name).collect();
    bail!("--identity {wanted}: not a store, head-office or a manager's UUID; the stores are {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotation_is_every_manager_and_head_office() {
        let all = callers(None).unwrap();
        assert_eq!(all.len(), 9);
        assert_eq!(all.last().unwrap().header, HEAD_OFFICE_ID.to_string());
        assert!(matches!(all[0].access.tenant, Tenant::Managers(_)));
    }

    #[test]
    fn one_identity_by_store_head_office_or_uuid() {
        let first = STORES[0];
        assert_eq!(callers(Some(first.name)).unwrap()[0].header, first.manager.to_string());
        assert_eq!(callers(Some(&first.manager.to_string())).unwrap()[0].name, "Seattle");
        assert_eq!(callers(Some("head-office")).unwrap()[0].header, HEAD_OFFICE_ID.to_string());
        assert!(callers(Some("Portland")).unwrap_err().to_string().contains("the stores are"));
        assert!(callers(Some(&Uuid::from_u128(7).to_string())).is_err());
    }
}
