//! Fair sharing of the query role's connections between tenants.
//!
//! The pool hands connections out first come, first served. One store's assistant that floods slow queries
//! would then hold every connection, and every other store's calls would queue behind it until the pool's
//! acquire timeout answered them "busy". So each tenant (a tenant scope: a store, a region, head office) may hold
//! at most a share of the pool at once; its further calls wait for one of its *own* connections, and the rest
//! of the pool stays free for the others.
//!
//! A tenant's slots exist only while it has calls running or waiting: the map holds nothing for idle tenants,
//! so its size is bounded by the number of calls in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many connections one tenant may hold at once, and how long a call waits for one of them.
#[derive(Debug, Clone, Copy)]
pub struct FairShare {
    pub per_tenant: usize,
    pub wait: Duration,
}

impl FairShare {
    /// Half the pool (at least one connection) per tenant: a flooding tenant leaves the other half free.
    pub fn half_of(pool_size: usize, wait: Duration) -> Self {
        Self { per_tenant: pool_size.div_ceil(2).max(1), wait }
    }
}

pub(crate) struct TenantSlots {
    share: FairShare,
    tenants: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// One tenant's hold on one of its slots; given back when dropped.
pub(crate) struct Slot {
    scope: String,
    permit: Option<OwnedSemaphorePermit>,
    tenants: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl TenantSlots {
    pub fn new(share: FairShare) -> Self {
        Self { share, tenants: Arc::default() }
    }

    /// Waits for one of `scope`'s slots; `None` when none came free within the wait.
    pub async fn acquire(&self, scope: &str) -> Option<Slot> {
        let semaphore = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
            tenants.entry(scope.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(self.share.per_tenant))).clone()
        };
        let mut slot = Slot { scope: scope.to_owned(), permit: None, tenants: self.tenants.clone() };
        // On timeout `slot` is dropped without a permit, which still tidies the map.
        let permit = tokio::time::timeout(self.share.wait, semaphore.acquire_owned()).await.ok()?.ok()?;
        slot.permit = Some(permit);
        Some(slot)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.tenants.lock().unwrap().len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map still refers to the semaphore: no call of this tenant runs or waits.
        if tenants.get(&self.scope).is_some_and(|s| Arc::strong_count(s) == 1) {
            tenants.remove(&self.scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_waits_for_its_own_slots_and_others_do_not() {
        let slots = TenantSlots::new(FairShare { per_tenant: 2, wait: Duration::from_millis(50) });
        let a1 = slots.acquire("a").await.unwrap();
        let _a2 = slots.acquire("a").await.unwrap();
        assert!(slots.acquire("a").await.is_none(), "a third slot for the same tenant");
        let b = slots.acquire("b").await.expect("another tenant is not held up");
        drop(a1);
        assert!(slots.acquire("a").await.is_some(), "a freed slot is the tenant's again");
        drop(b);
        assert_eq!(slots.tracked(), 1, "an idle tenant leaves nothing behind");
    }

    #[test]
    fn half_the_pool_but_never_none() {
        assert_eq!(FairShare::half_of(16, Duration::ZERO).per_tenant, 8);
        assert_eq!(FairShare::half_of(5, Duration::ZERO).per_tenant, 3);
        assert_eq!(FairShare::half_of(1, Duration::ZERO).per_tenant, 1);
    }
}
