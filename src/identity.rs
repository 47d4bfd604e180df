//! Who is calling: turning what a transport carries (the `x-rls-user-id` header, or the environment for stdio)
//! into a [`Tenant`], refusing anything that is missing, malformed or not a known manager.
//!
//! The origin fell back to head office when the header was missing (W2); here there is no fallback at all.
//! The known managers come from `retail.stores` (shared data) when the server starts.

use std::collections::HashMap;

use uuid::Uuid;

use crate::tenant::{Tenant, TenantError};

/// The header the origin's clients send (VS Code profiles, ORIGIN.md §1.6).
pub const IDENTITY_HEADER: &str = "x-rls-user-id";

/// Manager identities the database knows, with their store names (for log lines and messages).
#[derive(Debug, Clone, Default)]
pub struct Directory {
    managers: HashMap<Uuid, String>,
}

/// A tenant's name in metrics ([`Directory::label`]): one of a bounded set, never a subject or a UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantLabel(String);

impl TenantLabel {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error(
        "no identity: this server needs the caller's store-manager UUID in the `x-rls-user-id` header \
         (or ZAVA_RLS_USER_ID for stdio); ask the administrator to configure it"
    )]
    Missing,
    #[error("invalid identity: {0}")]
    Invalid(TenantError),
    #[error("unknown identity {0}: it is neither a store manager nor head office")]
    Unknown(Uuid),
    #[error(
        "the `x-rls-user-id` header was sent {0} times: send it once (a regional manager's UUIDs go in one \
         header, comma-separated)"
    )]
    Repeated(usize),
}

impl Directory {
    pub fn new(managers: impl IntoIterator<Item = (Uuid, String)>) -> Self {
        Self { managers: managers.into_iter().collect() }
    }

    /// Reads the managers from `retail.stores` (readable by the query role without a tenant context).
    pub async fn load(client: &tokio_postgres::Client) -> Result<Self, tokio_postgres::Error> {
        let rows = client.query("SELECT rls_user_id, store_name FROM retail.stores", &[]).await?;
        Ok(Self::new(rows.iter().map(|r| (r.get(0), r.get(1)))))
    }

    pub fn len(&self) -> usize {
        self.managers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.managers.is_empty()
    }

    /// Resolves the values of the identity header: there must be at most one (a second one, read or not, would
    /// make the identity depend on which one a layer looks at).
    pub fn resolve_all<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> Result<Tenant, IdentityError> {
        let values: Vec<&str> = values.into_iter().collect();
        match values[..] {
            [] => self.resolve(None),
            [one] => self.resolve(Some(one)),
            _ => Err(IdentityError::Repeated(values.len())),
        }
    }

    /// Resolves a raw identity value (one UUID, or several store managers' separated by commas for a regional
    /// manager; head office only alone).
    pub fn resolve(&self, raw: Option<&str>) -> Result<Tenant, IdentityError> {
        let raw = raw.ok_or(IdentityError::Missing)?;
        let tenant: Tenant = raw.parse().map_err(|e| match e {
            TenantError::Empty => IdentityError::Missing,
            other => IdentityError::Invalid(other),
        })?;
        if let Tenant::Managers(ids) = &tenant {
            for id in ids {
                if !self.managers.contains_key(&id.as_uuid()) {
                    return Err(IdentityError::Unknown(id.as_uuid()));
                }
            }
        }
        Ok(tenant)
    }

    /// The manager of a store named `entry` (its full name, or without the `Zava Retail ` prefix, in any case), or
    /// `entry` itself when it is a known manager's UUID.
    pub fn manager_of(&self, entry: &str) -> Option<Uuid> {
        if let Ok(id) = entry.parse::<Uuid>() {
            return self.managers.contains_key(&id).then_some(id);
        }
        let wanted = entry.trim().to_lowercase();
        self.managers.iter().find_map(|(id, name)| {
            let name = name.to_lowercase();
            (name == wanted || name.strip_prefix("zava retail ") == Some(wanted.as_str())).then_some(*id)
        })
    }

    /// An identity as configuration files name one: `head-office`, or store names and manager UUIDs separated by
    /// commas (`seattle, redmond`). An unknown entry is an error naming it.
    pub fn tenant_named(&self, identity: &str) -> anyhow::Result<Tenant> {
        let identity = identity.trim();
        if identity.eq_ignore_ascii_case("head-office") {
            return Ok(Tenant::HeadOffice);
        }
        let mut managers = Vec::new();
        for part in identity.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match self.manager_of(part) {
                Some(m) => managers.push(m),
                None => anyhow::bail!(
                    "`identity` names `{part}`, which is neither a store nor a store manager UUID (or head-office)"
                ),
            }
        }
        if managers.is_empty() {
            anyhow::bail!("`identity` is empty: name head-office, a store or manager UUIDs");
        }
        Ok(Tenant::from_uuids(managers)?)
    }

    /// The tenant as metrics label it: `head_office`, one store's short name (`seattle`, `online`), or
    /// `several_stores` for a regional manager. The values are bounded by the stores of the chain, whoever calls.
    pub fn label(&self, tenant: &Tenant) -> TenantLabel {
        let name = match tenant {
            Tenant::HeadOffice => "head_office".to_owned(),
            Tenant::Managers(ids) if ids.len() == 1 => {
                match ids.first().and_then(|one| self.managers.get(&one.as_uuid())) {
                    Some(name) => {
                        let name = name.to_lowercase();
                        let short = name.strip_prefix("zava retail ").unwrap_or(&name);
                        short.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
                    }
                    None => "unknown".to_owned(),
                }
            }
            Tenant::Managers(_) => "several_stores".to_owned(),
        };
        TenantLabel(name)
    }

    /// A short description for logs: "head office" or the store names.
    pub fn describe(&self, tenant: &Tenant) -> String {
        match tenant {
            Tenant::HeadOffice => "head office".into(),
            Tenant::Managers(ids) => ids
                .iter()
                .map(|id| self.managers.get(&id.as_uuid()).cloned().unwrap_or_else(|| id.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::stores::STORES;

    fn directory() -> Directory {
        Directory::new(STORES.iter().map(|s| (s.manager, s.name.to_owned())))
    }

    #[test]
    fn known_managers_and_head_office_resolve() {
        let d = directory();
        assert_eq!(d.resolve(Some("00000000-0000-0000-0000-000000000000")), Ok(Tenant::HeadOffice));
        let t = d.resolve(Some(" e7f8a9b0-c1d2-3e4f-5678-90abcdef1234 ")).unwrap();
        assert_eq!(d.describe(&t), "Zava Retail Redmond");
    }

    #[test]
    fn metric_labels_are_the_stores_short_names_and_bounded() {
        let d = directory();
        let mut labels: Vec<String> =
            STORES.iter().map(|s| d.label(&Tenant::from_uuids([s.manager]).unwrap()).as_str().to_owned()).collect();
        labels.sort();
        let want = ["bellevue", "everett", "kirkland", "online", "redmond", "seattle", "spokane", "tacoma"];
        assert_eq!(labels, want);
        assert_eq!(d.label(&Tenant::HeadOffice).as_str(), "head_office");
        let two = Tenant::from_uuids([STORES[0].manager, STORES[1].manager]).unwrap();
        assert_eq!(d.label(&two).as_str(), "several_stores");
        let stranger = Tenant::from_uuids([uuid::Uuid::from_u128(7)]).unwrap();
        assert_eq!(d.label(&stranger).as_str(), "unknown");
    }

    #[test]
    fn missing_empty_malformed_and_unknown_identities_are_refused() {
        let d = directory();
        assert_eq!(d.resolve(None), Err(IdentityError::Missing));
        assert_eq!(d.resolve(Some("")), Err(IdentityError::Missing));
        assert!(matches!(d.resolve(Some("seattle")), Err(IdentityError::Invalid(_))));
        let stranger = "11111111-1111-1111-1111-111111111111";
        assert_eq!(d.resolve(Some(stranger)), Err(IdentityError::Unknown(stranger.parse().unwrap())));
        // One unknown UUID in a regional list refuses the whole identity.
        let mixed = format!("{},{stranger}", STORES[0].manager);
        assert!(matches!(d.resolve(Some(&mixed)), Err(IdentityError::Unknown(_))));
    }

    #[test]
    fn a_regional_list_never_widens_to_head_office_and_the_header_comes_once() {
        let d = directory();
        let (a, b) = (STORES[0].manager.to_string(), STORES[5].manager.to_string());
        let region = d.resolve(Some(&format!("{a}, {b}"))).unwrap();
        let described = d.describe(&region);
        assert!(described.contains(STORES[0].name) && described.contains(STORES[5].name), "{described}");
        let nil = "00000000-0000-0000-0000-000000000000";
        let widened = d.resolve(Some(&format!("{a}, {nil}")));
        assert_eq!(widened, Err(IdentityError::Invalid(TenantError::HeadOfficeInList)));
        assert!(widened.unwrap_err().to_string().contains("head office"));
        assert_eq!(d.resolve_all([nil, a.as_str()]), Err(IdentityError::Repeated(2)));
        assert_eq!(d.resolve_all([a.as_str(), a.as_str()]), Err(IdentityError::Repeated(2)));
        assert_eq!(d.resolve_all([]), Err(IdentityError::Missing));
        assert_eq!(d.resolve_all([nil]), Ok(Tenant::HeadOffice));
    }
}
