//! Alerting state kept in object storage under `_porthole/alerts/`: the audit events of
//! action decisions, the kill switch, and the lease that makes one replica the actor.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::AlertsError;

/// The alerting state: `_porthole/alerts/` of the storage root.
#[derive(Clone)]
pub struct StateStore(porthole_storage::StateStore);

impl std::ops::Deref for StateStore {
    type Target = porthole_storage::StateStore;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

const KILL_SWITCH: &str = "actions-disabled";

impl StateStore {
    pub fn open(location: &porthole_storage::Location) -> Result<Self, AlertsError> {
        Ok(Self(porthole_storage::StateStore::open(
            location, "alerts",
        )?))
    }

    /// The global kill switch: while set, no action runs on any replica.
    pub async fn actions_disabled(&self) -> Result<Option<KillSwitch>, AlertsError> {
        Ok(self.get(KILL_SWITCH).await?.map(|bytes| {
            serde_json::from_slice(&bytes).unwrap_or(KillSwitch {
                reason: "set (unreadable record)".into(),
                since: String::new(),
            })
        }))
    }

    pub async fn set_actions_disabled(
        &self,
        switch: Option<&KillSwitch>,
    ) -> Result<(), AlertsError> {
        match switch {
            Some(s) => Ok(self
                .put(KILL_SWITCH, serde_json::to_vec(s).expect("serializable"))
                .await?),
            None => Ok(self.delete(KILL_SWITCH).await?),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KillSwitch {
    pub reason: String,
    pub since: String,
}

/// One actor among replicas, through create-only objects (atomic on a local filesystem
/// and on S3 with conditional writes): time is cut into slots, and whoever creates
/// `lease/<slot>` first holds that slot. The holder claims the next slot a third of a
/// slot before it starts, so it keeps the lease while alive; when it dies, the next
/// slot is taken at its start by whichever replica asks first. A holder acts only while
/// at least `SAFETY` remains in its slot, so clocks a little apart cannot make two
/// replicas act at once.
pub struct Lease {
    store: StateStore,
    node: String,
    slot_len: Duration,
    /// The holders of slots already asked about (one look per slot, not per call).
    known: tokio::sync::Mutex<std::collections::BTreeMap<i64, String>>,
}

#[derive(Serialize, Deserialize)]
struct LeaseRecord {
    holder: String,
}

impl Lease {
    /// Longer than an action's Kubernetes request may take.
    pub const SAFETY: Duration = Duration::from_secs(10);

    pub fn new(store: StateStore, node: String, slot_len: Duration) -> Self {
        assert!(
            slot_len > Self::SAFETY * 2,
            "lease slots must outlast the safety margin"
        );
        Self {
            store,
            node,
            slot_len,
            known: Default::default(),
        }
    }

    async fn cached_holder(&self, slot: i64) -> Result<String, AlertsError> {
        let mut known = self.known.lock().await;
        if let Some(holder) = known.get(&slot) {
            return Ok(holder.clone());
        }
        let holder = self.holder(slot).await?;
        known.insert(slot, holder.clone());
        while known.len() > 4 {
            known.pop_first();
        }
        Ok(holder)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn slot_ms(&self) -> i64 {
        self.slot_len.as_millis() as i64
    }

    async fn holder(&self, slot: i64) -> Result<String, AlertsError> {
        let name = format!("lease/{slot:015}");
        let mine = serde_json::to_vec(&LeaseRecord {
            holder: self.node.clone(),
        })
        .expect("serializable");
        if self.store.create(&name, mine).await? {
            // Slots long past are removed by whoever holds the lease now.
            if let Ok(old) = self.store.list("lease").await {
                for entry in old {
                    if entry.parse::<i64>().is_ok_and(|s| s < slot - 10) {
                        let _ = self.store.delete(&format!("lease/{entry}")).await;
                    }
                }
            }
            return Ok(self.node.clone());
        }
        let bytes = self.store.get(&name).await?.unwrap_or_default();
        let record: LeaseRecord = serde_json::from_slice(&bytes)
            .map_err(|e| AlertsError::Storage(format!("lease record {name}: {e}")))?;
        Ok(record.holder)
    }

    /// Whether this node may act now (at `now_ms`); claims the current (and, near its end,
    /// the next) slot when free.
    pub async fn is_actor(&self, now_ms: i64) -> Result<bool, AlertsError> {
        let slot = now_ms.div_euclid(self.slot_ms());
        let slot_end = (slot + 1) * self.slot_ms();
        let holds = self.cached_holder(slot).await? == self.node;
        if holds && slot_end - now_ms < self.slot_ms() / 3 {
            self.cached_holder(slot + 1).await?;
        }
        Ok(holds && slot_end - now_ms > Self::SAFETY.as_millis() as i64)
    }
}
