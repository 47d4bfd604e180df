//! Who a database call is made for.
//!
//! A [`Tenant`] is the only thing that decides which stores' orders, line items, inventory and customers a
//! call may see. It is built from a verified identity (a header, a token, an environment variable) at the edge
//! and flows, typed, down to the tenant transaction in `db::context`; no raw identity string crosses layers.
//! There is deliberately no default tenant: code that has no `Tenant` cannot open a tenant transaction.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The identity of head office, which sees every store (ORIGIN.md §1.6).
pub const HEAD_OFFICE_ID: Uuid = Uuid::nil();

/// A store manager's identity: the `rls_user_id` of a row in `retail.stores`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId(Uuid);

impl ManagerId {
    pub fn new(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ManagerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The scope of one caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tenant {
    /// Head office: every store.
    HeadOffice,
    /// One store manager, or a regional manager with several stores. Never empty.
    Managers(BTreeSet<ManagerId>),
}

/// Why an identity string is not a tenant.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("the identity is empty; expected a store manager UUID or head office")]
    Empty,
    #[error("`{0}` is not a UUID; expected a store manager UUID such as f47ac10b-58cc-4372-a567-0e02b2c3d479")]
    NotAUuid(String),
    #[error(
        "head office (00000000-0000-0000-0000-000000000000) cannot be part of a list of store managers; \
         send it alone, or list only store manager UUIDs"
    )]
    HeadOfficeInList,
}

impl Tenant {
    /// One store manager (or head office when `id` is the nil UUID).
    pub fn from_uuid(id: Uuid) -> Self {
        if id == HEAD_OFFICE_ID { Tenant::HeadOffice } else { Tenant::Managers(BTreeSet::from([ManagerId(id)])) }
    }

    /// Several managers' stores at once (a regional manager). Head office is refused in a list: a list is a
    /// set of stores, and must never widen to every store because one element happens to be the nil UUID.
    pub fn from_uuids(ids: impl IntoIterator<Item = Uuid>) -> Result<Self, TenantError> {
        let mut managers = BTreeSet::new();
        for id in ids {
            if id == HEAD_OFFICE_ID {
                return Err(TenantError::HeadOfficeInList);
            }
            managers.insert(ManagerId(id));
        }
        if managers.is_empty() {
            return Err(TenantError::Empty);
        }
        Ok(Tenant::Managers(managers))
    }

    /// The scope as carried in the signed database context: `*` for head office, else the manager UUIDs
    /// joined by commas, in a stable order.
    pub fn scope(&self) -> String {
        match self {
            Tenant::HeadOffice => "*".to_owned(),
            Tenant::Managers(ids) => ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        }
    }
}

impl FromStr for Tenant {
    type Err = TenantError;

    /// Parses one UUID (head office when nil), or several store managers' separated by commas (a regional
    /// manager; head office is refused in such a list).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
        let ids = parts
            .iter()
            .map(|p| Uuid::parse_str(p).map_err(|_| TenantError::NotAUuid((*p).to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        match ids[..] {
            [] => Err(TenantError::Empty),
            [one] => Ok(Tenant::from_uuid(one)),
            _ => Tenant::from_uuids(ids),
        }
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tenant::HeadOffice => f.write_str("head office"),
            Tenant::Managers(_) => write!(f, "manager(s) {}", self.scope()),
        }
    }
}

/// Whether a call sees customers' personal data (email, phone) in clear or masked. The database enforces it
/// (migration V10): the choice travels in the signed context, never as a column filter in Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PersonalData {
    Masked,
    Clear,
}

/// Everything a call's signed context says about its caller: whose stores it sees, and whether it sees
/// personal data in clear. Two callers with the same stores but different personal-data grants see different
/// rows' contents, so anything cached from a tenant transaction is keyed by the whole `Access`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    pub tenant: Tenant,
    pub personal_data: PersonalData,
}

impl Access {
    pub fn new(tenant: Tenant, personal_data: PersonalData) -> Self {
        Self { tenant, personal_data }
    }

    /// The grants part of the signed context: `pii` or `-` (none).
    pub fn grants(&self) -> &'static str {
        match self.personal_data {
            PersonalData::Clear => "pii",
            PersonalData::Masked => "-",
        }
    }

    /// A key for caches of what this caller's transactions return: the tenant scope and the grants.
    pub fn cache_key(&self) -> String {
        format!("{};{}", self.tenant.scope(), self.grants())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nil_uuid_is_head_office() {
        assert_eq!("00000000-0000-0000-0000-000000000000".parse::<Tenant>(), Ok(Tenant::HeadOffice));
    }

    #[test]
    fn several_managers_are_one_regional_tenant_in_stable_order() {
        let t: Tenant = "f47ac10b-58cc-4372-a567-0e02b2c3d479, 6ba7b810-9dad-11d1-80b4-00c04fd430c8".parse().unwrap();
        assert_eq!(t.scope(), "6ba7b810-9dad-11d1-80b4-00c04fd430c8,f47ac10b-58cc-4372-a567-0e02b2c3d479");
    }

    #[test]
    fn head_office_never_hides_in_a_list_of_managers() {
        const MANAGER: &str = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
        const NIL: &str = "00000000-0000-0000-0000-000000000000";
        for list in [format!("{MANAGER}, {NIL}"), format!("{NIL},{MANAGER}"), format!("{NIL},{NIL}")] {
            assert_eq!(list.parse::<Tenant>(), Err(TenantError::HeadOfficeInList), "{list}");
        }
        assert_eq!(Tenant::from_uuids([Uuid::nil()]), Err(TenantError::HeadOfficeInList));
        // A repeated manager is still that one manager; head office alone is still head office.
        assert_eq!(format!("{MANAGER},{MANAGER}").parse::<Tenant>().unwrap().scope(), MANAGER);
        assert_eq!(format!(" {NIL} ,").parse::<Tenant>(), Ok(Tenant::HeadOffice));
    }

    #[test]
    fn empty_and_malformed_identities_are_refused() {
        assert_eq!("".parse::<Tenant>(), Err(TenantError::Empty));
        assert_eq!(" , ".parse::<Tenant>(), Err(TenantError::Empty));
        assert!(matches!("seattle".parse::<Tenant>(), Err(TenantError::NotAUuid(_))));
        assert!(matches!("f47ac10b-58cc-4372-a567-0e02b2c3d479;x".parse::<Tenant>(), Err(TenantError::NotAUuid(_))));
    }
}
