//! Typed access to the records over the generic versioned [`Store`].

use std::sync::Arc;

use crate::store::{self, Cond, Item, Key, Store, WriteOp};

use super::Error;
use super::records::{BindingRecord, InstanceRecord};

/// Reads and conditionally writes instance and binding records.
#[derive(Clone)]
pub struct Repo {
    store: Arc<dyn Store>,
}

fn decode<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, Error> {
    serde_json::from_str(&item.data).map_err(|e| {
        Error::internal_from(
            format!(
                "stored record {}/{} is unreadable",
                item.key.pk, item.key.sk
            ),
            e,
        )
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal_from("record does not serialise", e))
}

/// The condition under which a record read at `version` may be replaced (0 = it was absent).
fn cond_for(version: u64) -> Cond {
    if version == 0 {
        Cond::Absent
    } else {
        Cond::Version(version)
    }
}

impl Repo {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Repo { store }
    }

    /// The store beneath, for items that are not records (address leases).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, Error> {
        let Some(item) = self.store.get(&Key::instance(instance_id)).await? else {
            return Ok(None);
        };
        let mut record: InstanceRecord = decode(&item)?;
        record.version = item.version;
        Ok(Some(record))
    }

    /// The instance and the expiry its item carries (set on tombstones only).
    pub async fn instance_with_expiry(
        &self,
        instance_id: &str,
    ) -> Result<Option<(InstanceRecord, Option<i64>)>, Error> {
        let Some(item) = self.store.get(&Key::instance(instance_id)).await? else {
            return Ok(None);
        };
        let mut record: InstanceRecord = decode(&item)?;
        record.version = item.version;
        Ok(Some((record, item.expires_at)))
    }

    pub async fn binding(
        &self,
        instance_id: &str,
        binding_id: &str,
    ) -> Result<Option<BindingRecord>, Error> {
        let Some(item) = self
            .store
            .get(&Key::binding(instance_id, binding_id))
            .await?
        else {
            return Ok(None);
        };
        let mut record: BindingRecord = decode(&item)?;
        record.version = item.version;
        Ok(Some(record))
    }

    /// Every live binding record of an instance.
    pub async fn bindings(&self, instance_id: &str) -> Result<Vec<BindingRecord>, Error> {
        let items = self
            .store
            .query(&Key::instance_partition(instance_id))
            .await?;
        let mut out = Vec::new();
        for item in items.iter().filter(|i| i.key.sk.starts_with("binding#")) {
            let mut record: BindingRecord = decode(item)?;
            record.version = item.version;
            out.push(record);
        }
        Ok(out)
    }

    /// The write that replaces `record` (read at `record.version`) with itself at the next version.
    pub fn put_instance_op(
        &self,
        record: &InstanceRecord,
        expires_at: Option<i64>,
    ) -> Result<WriteOp, Error> {
        Ok(WriteOp::Put {
            item: Item {
                key: Key::instance(&record.instance_id),
                version: record.version + 1,
                expires_at,
                data: encode(record)?,
            },
            cond: cond_for(record.version),
        })
    }

    pub fn put_binding_op(
        &self,
        record: &BindingRecord,
        expires_at: Option<i64>,
    ) -> Result<WriteOp, Error> {
        Ok(WriteOp::Put {
            item: Item {
                key: Key::binding(&record.instance_id, &record.binding_id),
                version: record.version + 1,
                expires_at,
                data: encode(record)?,
            },
            cond: cond_for(record.version),
        })
    }

    /// A condition that the instance is still exactly as read.
    pub fn check_instance_op(&self, record: &InstanceRecord) -> WriteOp {
        WriteOp::Check {
            key: Key::instance(&record.instance_id),
            cond: cond_for(record.version),
        }
    }

    /// Apply writes atomically. Returns `Ok(false)` when a condition failed (someone else wrote).
    pub async fn commit(&self, ops: Vec<WriteOp>) -> Result<bool, Error> {
        match self.store.write(ops).await {
            Ok(()) => Ok(true),
            Err(store::Error::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Replace an instance record; on success `record.version` is the new version.
    pub async fn save_instance(
        &self,
        record: &mut InstanceRecord,
        expires_at: Option<i64>,
    ) -> Result<bool, Error> {
        let op = self.put_instance_op(record, expires_at)?;
        let ok = self.commit(vec![op]).await?;
        if ok {
            record.version += 1;
        }
        Ok(ok)
    }

    pub async fn save_binding(
        &self,
        record: &mut BindingRecord,
        expires_at: Option<i64>,
    ) -> Result<bool, Error> {
        let op = self.put_binding_op(record, expires_at)?;
        let ok = self.commit(vec![op]).await?;
        if ok {
            record.version += 1;
        }
        Ok(ok)
    }

    /// Remove a binding record outright (a half-made binding that never existed for the platform).
    pub async fn delete_binding(&self, record: &BindingRecord) -> Result<bool, Error> {
        self.commit(vec![WriteOp::Delete {
            key: Key::binding(&record.instance_id, &record.binding_id),
            cond: cond_for(record.version),
        }])
        .await
    }
}
