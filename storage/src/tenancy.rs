//! Tenants: who a request is for, and which tables that lets it touch.
//!
//! Each tenant has its own three tables under `tenants/NAME/` ([`Location::tenant`]); a
//! request is scoped by picking that tenant's [`Storage`] from [`Stores`] once, at the
//! door, so nothing downstream (search, traces, SQL, PromQL, tail, alerts) can name
//! another tenant's data: it was never given it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{Location, Result, Storage, StorageError};

/// A tenant's name: 1 to 63 of `a-z`, `0-9`, `-` and `_`, starting with a letter or digit
/// (it is a path segment in the bucket and a label value on `/metrics`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tenant(Arc<str>);

impl Tenant {
    pub fn new(name: &str) -> Result<Self> {
        let valid = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && name.as_bytes()[0].is_ascii_alphanumeric();
        if !valid {
            return Err(StorageError::InvalidLocation {
                location: name.to_string(),
                reason: "a tenant name is 1-63 of a-z, 0-9, '-' and '_', starting with a \
                         letter or digit"
                    .into(),
            });
        }
        Ok(Self(name.into()))
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every set of tables this node serves: the root's when it runs single-tenant, or one per
/// tenant (and then the root's tables answer nobody).
pub struct Stores {
    root: Arc<Storage>,
    tenants: BTreeMap<Tenant, Arc<Storage>>,
}

impl Stores {
    /// Single-tenant: every request reads and writes the root's tables.
    pub fn single(root: Arc<Storage>) -> Self {
        Self {
            root,
            tenants: BTreeMap::new(),
        }
    }

    /// Multi-tenant: opens (creating when absent) each tenant's tables under the root; the
    /// caches are the root's, shared, so N tenants do not get N cache budgets.
    pub async fn with_tenants(root: Arc<Storage>, tenants: &[Tenant]) -> Result<Self> {
        let mut opened = BTreeMap::new();
        for tenant in tenants {
            let storage = root.open_tenant(tenant).await?;
            opened.insert(tenant.clone(), Arc::new(storage));
        }
        Ok(Self {
            root,
            tenants: opened,
        })
    }

    pub fn is_multi_tenant(&self) -> bool {
        !self.tenants.is_empty()
    }

    /// The tables a request for `tenant` may use: with tenants, only that tenant's (and
    /// none for a request without one); without, the root's, whatever it says.
    pub fn scoped(&self, tenant: Option<&Tenant>) -> Option<&Arc<Storage>> {
        match (self.is_multi_tenant(), tenant) {
            (false, _) => Some(&self.root),
            (true, Some(tenant)) => self.tenants.get(tenant),
            (true, None) => None,
        }
    }

    /// The root's storage: readiness checks and caches' counters.
    pub fn root(&self) -> &Arc<Storage> {
        &self.root
    }

    /// Each set of tables with its tenant (None: the root, single-tenant), for the jobs
    /// that visit them all (compaction, retention).
    pub fn all(&self) -> Vec<(Option<Tenant>, Arc<Storage>)> {
        if self.is_multi_tenant() {
            self.tenants
                .iter()
                .map(|(t, s)| (Some(t.clone()), s.clone()))
                .collect()
        } else {
            vec![(None, self.root.clone())]
        }
    }

    pub fn location_of(&self, tenant: &Tenant) -> Location {
        self.root.location().tenant(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_path_and_label_safe() {
        for good in ["a", "team-a", "t_1", "0day"] {
            assert!(Tenant::new(good).is_ok(), "{good}");
        }
        for bad in ["", "A", "../b", "a/b", "-a", "a b", &"x".repeat(64)] {
            assert!(Tenant::new(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_request_only_gets_its_own_tenants_tables() {
        let dir = tempfile::tempdir().unwrap();
        let root = Arc::new(
            Storage::open(Location::Local(dir.path().into()))
                .await
                .unwrap(),
        );
        let single = Stores::single(root.clone());
        assert!(Arc::ptr_eq(single.scoped(None).unwrap(), &root));

        let (a, b) = (Tenant::new("a").unwrap(), Tenant::new("b").unwrap());
        let multi = Stores::with_tenants(root.clone(), &[a.clone(), b.clone()])
            .await
            .unwrap();
        assert!(multi.scoped(None).is_none());
        assert!(multi.scoped(Some(&Tenant::new("c").unwrap())).is_none());
        let (sa, sb) = (
            multi.scoped(Some(&a)).unwrap(),
            multi.scoped(Some(&b)).unwrap(),
        );
        assert!(!Arc::ptr_eq(sa, sb));
        assert_eq!(
            sa.location(),
            &Location::Local(dir.path().join("tenants/a"))
        );
        assert!(dir.path().join("tenants/b/logs/_delta_log").is_dir());
        assert_eq!(multi.all().len(), 2);
    }
}
