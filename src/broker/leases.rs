//! Addresses of the operator's network pools, leased in the store so that no two instances get
//! the same one, whichever process provisions them and whatever restarts in between.
//!
//! A lease is an item `pk = pool#<switch id>`, `sk = addr#<address>` naming the instance that
//! holds it. The key is the switch, not the network's name: renaming a network in the file must
//! not make its leases invisible. A provision writes its instance record and its lease in one
//! atomic batch (a `TransactWriteItems` on DynamoDB), the lease conditional on the address being
//! free, so the lease and the record exist together or not at all, and the instance record
//! carries the lease's key. The tombstone that ends a deprovision (after the appliance is
//! confirmed deleted) removes the lease in the same batch.
//!
//! A lease is reclaimed, taken over by a conditional write at its version, only when its
//! holder can have no appliance: the holder's record is gone, or its provision failed with no
//! appliance id and no create whose outcome is unknown. The takeover checks, in the same batch,
//! that the holder's record is still as read. Reclaiming is tried only when no address of the
//! pool was ever free, so a failed instance keeps its address while there is room.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use super::records::{InstanceRecord, InstanceState, LeaseRef, OpKind};
use super::{Broker, Error};
use crate::catalog::{ParamError, RequestedParams};
use crate::networks::{Network, Networks, PlatformContext, UserNetworks};
use crate::store::{Cond, Item, Key, WriteOp, now_unix};

/// Conditional writes one provision tries before it answers "busy, try again".
const LEASE_ATTEMPTS: usize = 40;
/// Holders read, at most, when a full pool is searched for a lease to reclaim.
const RECLAIM_READS: usize = 32;

/// What a lease item holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub instance_id: String,
    pub network: String,
    pub since: i64,
}

/// The key of the lease on `address` of the switch `switch_id`.
pub fn lease_key(switch_id: &str, address: Ipv4Addr) -> Key {
    Key {
        pk: pool_partition(switch_id),
        sk: format!("addr#{address}"),
    }
}

/// The partition holding every lease on a switch.
pub fn pool_partition(switch_id: &str) -> String {
    format!("pool#{switch_id}")
}

/// Where a new instance's database goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Placement {
    /// Outside every pool, as the user gave it (no lease): how provisioning works without pools.
    Unpooled(crate::catalog::ProvisionParams),
    /// On a pool's network: the address asked for, or any free one.
    Pooled {
        network: Network,
        address: Option<Ipv4Addr>,
    },
}

fn bad(field: &str, message: String) -> Error {
    Error::BadRequest(ParamError::new(field, message).to_string())
}

/// Settle where a provision goes, from what it named and the context's network. Refuses what
/// the operator's policy forbids; changes nothing.
pub(crate) fn place(
    requested: &RequestedParams,
    networks: &Networks,
    ctx: &PlatformContext,
) -> Result<Placement, Error> {
    let n = &requested.network;
    let policy = networks.user_networks;
    let own = networks.select(ctx);
    let target = match &n.switch_id {
        Some(switch) => match networks.on_switch(switch, n.ip_address) {
            Some(net) if policy == UserNetworks::Any || own.is_some_and(|o| o.name == net.name) => {
                net
            }
            _ if policy == UserNetworks::Pool => {
                let yours = match own {
                    Some(o) => format!(
                        "the network for {} is {:?} (switch {}); leave switchID out, or name that switch",
                        ctx.describe(),
                        o.name,
                        o.switch_id
                    ),
                    None => format!("no network serves {}", ctx.describe()),
                };
                return Err(bad(
                    "switchID",
                    format!(
                        "switch {switch} is not one this broker lets {} use: {yours}",
                        ctx.describe()
                    ),
                ));
            }
            // Users may name any network, and this switch is in no pool: as before pools.
            _ => {
                return requested
                    .complete()
                    .map(Placement::Unpooled)
                    .map_err(|e| Error::BadRequest(e.to_string()));
            }
        },
        None => match own {
            Some(net) => net,
            None if policy == UserNetworks::Any => {
                return requested
                    .complete()
                    .map(Placement::Unpooled)
                    .map_err(|e| Error::BadRequest(e.to_string()));
            }
            None => {
                return Err(bad(
                    "switchID",
                    format!(
                        "no network pool serves {} and the operator allows no other network; ask the operator to assign one",
                        ctx.describe()
                    ),
                ));
            }
        },
    };
    let name = &target.name;
    if let Some(mask) = n.mask_len
        && mask != target.cidr.prefix_len()
    {
        return Err(bad(
            "maskLen",
            format!(
                "network {name:?} is {}; send maskLen {} or leave it out",
                target.cidr,
                target.cidr.prefix_len()
            ),
        ));
    }
    if let Some(gw) = n.default_route
        && gw != target.gateway
    {
        return Err(bad(
            "defaultRoute",
            format!(
                "the gateway of network {name:?} is {}; send that or leave defaultRoute out",
                target.gateway
            ),
        ));
    }
    if let Some(zone) = requested.zone()
        && zone != target.zone
    {
        return Err(bad(
            "zone",
            format!(
                "network {name:?} is in zone {}; send that zone or leave zone out",
                target.zone
            ),
        ));
    }
    if let Some(ip) = n.ip_address {
        if !target.usable(ip) {
            return Err(bad(
                "ipaddress",
                format!(
                    "{ip} is not a usable address of network {name:?} ({}, gateway {}, reserved addresses excluded)",
                    target.cidr, target.gateway
                ),
            ));
        }
        if policy == UserNetworks::Pool && !target.in_pool(ip) {
            return Err(bad(
                "ipaddress",
                format!(
                    "{ip} is outside the addresses this broker hands out on network {name:?} ({}); leave ipaddress out to get a free one",
                    target.range_text()
                ),
            ));
        }
    }
    Ok(Placement::Pooled {
        network: target.clone(),
        address: n.ip_address,
    })
}

/// What a lease attempt lost to.
enum Lost {
    /// The instance record changed (another request created it): decide again.
    Instance,
    /// Only the address was taken meanwhile.
    Address,
}

impl Broker {
    /// Write `record` (new, read at `record.version`) with a lease on an address of `network`:
    /// `asked`, or a free one. `Ok(false)`: the instance record changed meanwhile, decide again.
    /// A taken address or a full pool is refused, and nothing is written.
    pub(super) async fn create_with_lease(
        &self,
        record: &mut InstanceRecord,
        requested: &RequestedParams,
        network: &Network,
        asked: Option<Ipv4Addr>,
    ) -> Result<bool, Error> {
        let store = self.repo.store();
        let mut view: Option<BTreeMap<Ipv4Addr, Item>> = None;
        let mut lost: BTreeSet<Ipv4Addr> = BTreeSet::new();
        for _ in 0..LEASE_ATTEMPTS {
            let (ip, cond, check) = match asked {
                Some(ip) => match store.get(&lease_key(&network.switch_id, ip)).await? {
                    None => (ip, Cond::Absent, None),
                    Some(item) => match self.reclaimable(&item, &record.instance_id).await? {
                        Some(check) => (ip, Cond::Version(item.version), check),
                        None => {
                            return Err(Error::Unprocessable(
                                ParamError::new(
                                    "ipaddress",
                                    format!(
                                        "{ip} on network {:?} is already in use by another service instance; choose another address or leave ipaddress out",
                                        network.name
                                    ),
                                )
                                .to_string(),
                            ));
                        }
                    },
                },
                None => {
                    let fresh = view.is_none();
                    let leases = match &view {
                        Some(v) => v,
                        None => view.insert(self.leases(&network.switch_id).await?),
                    };
                    let free: Vec<Ipv4Addr> = network
                        .pool()
                        .filter(|ip| !leases.contains_key(ip) && !lost.contains(ip))
                        .collect();
                    if let Some(ip) = free.choose(&mut rand::rng()) {
                        (*ip, Cond::Absent, None)
                    } else if !fresh {
                        // Addresses lost to others this time round may have been freed since.
                        view = None;
                        lost.clear();
                        continue;
                    } else {
                        match self.reclaim_one(leases, &lost, &record.instance_id).await? {
                            Some((ip, version, check)) => (ip, Cond::Version(version), check),
                            None => return Err(exhausted(network, leases.len())),
                        }
                    }
                }
            };
            match self
                .try_lease(record, requested, network, ip, cond, check)
                .await?
            {
                Ok(()) => return Ok(true),
                Err(Lost::Instance) => return Ok(false),
                Err(Lost::Address) => {
                    lost.insert(ip);
                }
            }
        }
        Err(Error::Retry(format!(
            "many provisions are taking addresses of network {:?} at once; send the request again",
            network.name
        )))
    }

    /// One atomic write of the instance and its lease on `ip`.
    async fn try_lease(
        &self,
        record: &mut InstanceRecord,
        requested: &RequestedParams,
        network: &Network,
        ip: Ipv4Addr,
        cond: Cond,
        check: Option<WriteOp>,
    ) -> Result<Result<(), Lost>, Error> {
        let mut next = record.clone();
        next.params = requested.settle(
            network.switch_id.clone(),
            ip,
            network.cidr.prefix_len(),
            network.gateway,
            requested.zone().map(str::to_owned),
        );
        next.zone = network.zone.clone();
        next.lease = Some(LeaseRef {
            network: network.name.clone(),
            switch_id: network.switch_id.clone(),
            address: ip,
        });
        let lease = Lease {
            instance_id: record.instance_id.clone(),
            network: network.name.clone(),
            since: now_unix(),
        };
        let data = serde_json::to_string(&lease)
            .map_err(|e| Error::internal_from("lease does not serialise", e))?;
        let version = match cond {
            Cond::Version(v) => v + 1,
            Cond::Absent => 1,
        };
        let mut ops = vec![
            self.repo.put_instance_op(&next, None)?,
            WriteOp::Put {
                item: Item {
                    key: lease_key(&network.switch_id, ip),
                    version,
                    expires_at: None,
                    data,
                },
                cond,
            },
        ];
        ops.extend(check);
        if self.repo.commit(ops).await? {
            next.version += 1;
            *record = next;
            tracing::info!(instance_id = %record.instance_id, network = %network.name, address = %ip, "address leased");
            return Ok(Ok(()));
        }
        // Which condition failed? The instance record is the one that ends the attempt.
        let now = self.repo.instance(&record.instance_id).await?;
        let unchanged = match now {
            None => record.version == 0,
            Some(r) => r.version == record.version && r.state == InstanceState::Gone,
        };
        Ok(Err(if unchanged {
            Lost::Address
        } else {
            Lost::Instance
        }))
    }

    /// Every live lease on a switch, by address.
    async fn leases(&self, switch_id: &str) -> Result<BTreeMap<Ipv4Addr, Item>, Error> {
        let items = self.repo.store().query(&pool_partition(switch_id)).await?;
        Ok(items
            .into_iter()
            .filter_map(|item| {
                let ip = item.key.sk.strip_prefix("addr#")?.parse().ok()?;
                Some((ip, item))
            })
            .collect())
    }

    /// A lease of a full pool that may be taken over: its address, version and the check that
    /// its holder is still as read.
    async fn reclaim_one(
        &self,
        leases: &BTreeMap<Ipv4Addr, Item>,
        lost: &BTreeSet<Ipv4Addr>,
        instance_id: &str,
    ) -> Result<Option<(Ipv4Addr, u64, Option<WriteOp>)>, Error> {
        let mut candidates: Vec<(&Ipv4Addr, &Item)> =
            leases.iter().filter(|(ip, _)| !lost.contains(ip)).collect();
        {
            use rand::seq::SliceRandom;
            candidates.shuffle(&mut rand::rng());
        }
        for (ip, item) in candidates.into_iter().take(RECLAIM_READS) {
            if let Some(check) = self.reclaimable(item, instance_id).await? {
                return Ok(Some((*ip, item.version, check)));
            }
        }
        Ok(None)
    }

    /// Whether the lease `item` may be taken over by `instance_id`: `Some(check)` with the
    /// condition that the holder's record is still as read (`None` inside when the holder is
    /// the instance itself, whose record the batch writes anyway).
    async fn reclaimable(
        &self,
        item: &Item,
        instance_id: &str,
    ) -> Result<Option<Option<WriteOp>>, Error> {
        let Ok(lease) = serde_json::from_str::<Lease>(&item.data) else {
            tracing::warn!(pk = %item.key.pk, sk = %item.key.sk, "unreadable lease; leaving it alone");
            return Ok(None);
        };
        if lease.instance_id == instance_id {
            return Ok(Some(None));
        }
        let holder_key = Key::instance(&lease.instance_id);
        let holder = self.repo.instance(&lease.instance_id).await?;
        let check = |cond| {
            Some(Some(WriteOp::Check {
                key: holder_key.clone(),
                cond,
            }))
        };
        let address = item.key.sk.strip_prefix("addr#").unwrap_or_default();
        Ok(match holder {
            None => {
                tracing::info!(holder = %lease.instance_id, address, "reclaiming the lease of an instance that does not exist");
                check(Cond::Absent)
            }
            Some(h) if h.state == InstanceState::Gone || !holds(&h, item) => {
                tracing::info!(holder = %lease.instance_id, address, "reclaiming a lease its instance no longer holds");
                check(Cond::Version(h.version))
            }
            Some(h)
                if h.state == InstanceState::Failed
                    && h.operation.kind == OpKind::Provision
                    && h.appliance_id.is_none()
                    && !h.may_have_appliance =>
            {
                tracing::info!(holder = %lease.instance_id, address, "reclaiming the lease of a provision that failed before any appliance existed");
                check(Cond::Version(h.version))
            }
            Some(_) => None,
        })
    }

    /// The write that frees `record`'s lease, if it still holds it (read now).
    pub(super) async fn release_op(
        &self,
        record: &InstanceRecord,
    ) -> Result<Option<WriteOp>, Error> {
        let Some(lease) = &record.lease else {
            return Ok(None);
        };
        let key = lease_key(&lease.switch_id, lease.address);
        let Some(item) = self.repo.store().get(&key).await? else {
            return Ok(None);
        };
        let holder = serde_json::from_str::<Lease>(&item.data)
            .map(|l| l.instance_id)
            .unwrap_or_default();
        Ok((holder == record.instance_id).then_some(WriteOp::Delete {
            key,
            cond: Cond::Version(item.version),
        }))
    }

    /// Lease the address an adopted appliance already uses, when it lies on a pool's network
    /// and no one holds it: the pool must not hand it out again. Part of the adoption's batch.
    pub(super) async fn adoption_lease(
        &self,
        record: &mut InstanceRecord,
    ) -> Result<Option<WriteOp>, Error> {
        let Some(networks) = self.settings.networks.clone() else {
            return Ok(None);
        };
        let p = &record.params;
        let Some(network) = networks.on_switch(&p.switch_id, Some(p.ip_address)) else {
            return Ok(None);
        };
        let key = lease_key(&network.switch_id, p.ip_address);
        if let Some(item) = self.repo.store().get(&key).await? {
            tracing::warn!(instance_id = %record.instance_id, network = %network.name, address = %p.ip_address, holder = %item.data, "an adopted appliance uses an address leased to another instance");
            return Ok(None);
        }
        record.lease = Some(LeaseRef {
            network: network.name.clone(),
            switch_id: network.switch_id.clone(),
            address: p.ip_address,
        });
        let lease = Lease {
            instance_id: record.instance_id.clone(),
            network: network.name.clone(),
            since: now_unix(),
        };
        Ok(Some(WriteOp::Put {
            item: Item {
                key,
                version: 1,
                expires_at: None,
                data: serde_json::to_string(&lease)
                    .map_err(|e| Error::internal_from("lease does not serialise", e))?,
            },
            cond: Cond::Absent,
        }))
    }
}

/// Whether the record says it holds the lease `item`.
fn holds(record: &InstanceRecord, item: &Item) -> bool {
    record
        .lease
        .as_ref()
        .is_some_and(|l| lease_key(&l.switch_id, l.address) == item.key)
}

fn exhausted(network: &Network, leased: usize) -> Error {
    Error::Unprocessable(format!(
        "network {:?} has no free address: all of {} are in use ({leased} leased). Deprovision an unused instance, or ask the operator to widen the range; nothing was created",
        network.name,
        network.range_text()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use serde_json::json;

    const FILE: &str = r#"{
      "networks": [
        {"name": "a", "zone": "is1a", "switchID": "112233445566", "cidr": "192.168.0.0/24",
         "gateway": "192.168.0.1", "range": "192.168.0.100-192.168.0.110", "reserved": ["192.168.0.105"]},
        {"name": "b", "zone": "is1a", "switchID": "223344556677", "cidr": "10.0.0.0/24",
         "gateway": "10.0.0.1", "range": "10.0.0.10-10.0.0.20"}
      ],
      "contexts": {"kubernetes": {"namespaces": {"team-b": "b"}}},
      "default": "a"
    }"#;

    fn networks(policy: &str) -> Networks {
        let text = FILE.replace(
            "\"default\": \"a\"",
            &format!("\"default\": \"a\", \"userNetworks\": \"{policy}\""),
        );
        Networks::parse(&text, &["is1a".to_owned()]).unwrap()
    }

    fn requested(params: serde_json::Value) -> RequestedParams {
        let catalog = Catalog::with_pools(vec!["is1a".into()], "is1a".into(), true);
        let plan = &catalog.plans()[0];
        catalog
            .validate_provision_request(plan, Some(&params))
            .unwrap()
    }

    fn ns(name: &str) -> PlatformContext {
        PlatformContext {
            namespace: Some(name.into()),
            ..Default::default()
        }
    }

    fn placed(
        policy: &str,
        params: serde_json::Value,
        ctx: &PlatformContext,
    ) -> Result<Placement, String> {
        place(&requested(params), &networks(policy), ctx).map_err(|e| e.to_string())
    }

    #[test]
    fn nothing_named_takes_the_contexts_network() {
        match placed("pool", json!({}), &ns("team-b")).unwrap() {
            Placement::Pooled { network, address } => {
                assert_eq!(network.name, "b");
                assert_eq!(address, None);
            }
            other => panic!("{other:?}"),
        }
        match placed("pool", json!({}), &ns("other")).unwrap() {
            Placement::Pooled { network, .. } => assert_eq!(network.name, "a"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_pool_policy_refuses_other_switches_and_addresses_outside_the_range() {
        let e = placed("pool", json!({"switchID": "223344556677"}), &ns("other")).unwrap_err();
        assert!(e.contains("switchID") && e.contains("\"a\""), "{e}");
        let e = placed("pool", json!({"switchID": "999999999999", "ipaddress": "172.16.0.5", "maskLen": 24, "defaultRoute": "172.16.0.1"}), &ns("other")).unwrap_err();
        assert!(e.contains("switchID"), "{e}");
        let e = placed("pool", json!({"ipaddress": "192.168.0.50"}), &ns("other")).unwrap_err();
        assert!(e.contains("outside the addresses"), "{e}");
        let e = placed("pool", json!({"ipaddress": "192.168.0.105"}), &ns("other")).unwrap_err();
        assert!(e.contains("not a usable address"), "{e}");
        let e = placed("pool", json!({"maskLen": 16}), &ns("other")).unwrap_err();
        assert!(e.contains("maskLen"), "{e}");
        let e = placed(
            "pool",
            json!({"defaultRoute": "192.168.0.254"}),
            &ns("other"),
        )
        .unwrap_err();
        assert!(e.contains("defaultRoute"), "{e}");
        // Inside the context's own pool an address may be named.
        match placed(
            "pool",
            json!({"switchID": "112233445566", "ipaddress": "192.168.0.101"}),
            &ns("other"),
        )
        .unwrap()
        {
            Placement::Pooled { address, .. } => {
                assert_eq!(address, Some("192.168.0.101".parse().unwrap()))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_any_policy_takes_unpooled_networks_as_before() {
        let p = placed("any", json!({"switchID": "999999999999", "ipaddress": "172.16.0.5", "maskLen": 24, "defaultRoute": "172.16.0.1"}), &ns("other")).unwrap();
        assert!(
            matches!(p, Placement::Unpooled(ref params) if params.switch_id == "999999999999"),
            "{p:?}"
        );
        let e = placed("any", json!({"switchID": "999999999999"}), &ns("other")).unwrap_err();
        assert!(e.contains("ipaddress") && e.contains("required"), "{e}");
        // An address on a pool's switch outside its range is still leased there.
        match placed(
            "any",
            json!({"switchID": "223344556677", "ipaddress": "10.0.0.200"}),
            &ns("other"),
        )
        .unwrap()
        {
            Placement::Pooled { network, .. } => assert_eq!(network.name, "b"),
            other => panic!("{other:?}"),
        }
    }
}
