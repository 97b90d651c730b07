//! Three broker processes on one DynamoDB table (moto) allocate pool addresses for twenty
//! provisions sent at once: twenty distinct addresses, one appliance each, and a full pool
//! refuses the rest without creating or leasing anything.

use std::collections::BTreeSet;

use http::{Method, StatusCode};
use osb_sacloud::broker::{Lease, pool_partition};
use osb_sacloud::sacloud::simulator::CREATED;
use osb_sacloud::store::Store;
use serde_json::{Value, json};

use crate::support::procs::{Cluster, all_at_once};
use crate::support::*;

const BROKERS: usize = 3;
const SWITCH: &str = "300000000001";

/// One default network whose range holds `size` addresses.
fn networks(size: u8) -> String {
    json!({
        "networks": [{"name": "shared", "zone": "is1a", "switchID": SWITCH,
                      "cidr": "10.9.0.0/24", "gateway": "10.9.0.1",
                      "range": format!("10.9.0.10-10.9.0.{}", 9 + size)}],
        "default": "shared",
    })
    .to_string()
}

fn body(i: usize) -> Value {
    json!({
        "service_id": MARIADB, "plan_id": MARIADB_10G,
        "organization_guid": "org", "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": format!("ns-{i}"), "clusterid": "c"},
    })
}

/// The leases on the pool's switch: (address, holder).
async fn leases(c: &Cluster) -> Vec<(String, String)> {
    c.store()
        .query(&pool_partition(SWITCH))
        .await
        .expect("query")
        .into_iter()
        .map(|item| {
            let lease: Lease = serde_json::from_str(&item.data).expect("lease");
            (
                item.key.sk.trim_start_matches("addr#").to_owned(),
                lease.instance_id,
            )
        })
        .collect()
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_provisions_over_three_brokers_get_twenty_addresses() {
    let text = networks(22);
    let c = Cluster::start("poolstwenty", BROKERS, move |env| {
        // Twenty provisions at once on one emulated table: answer within the client's timeout
        // and let the steps carry on.
        env.insert("OSB_ANSWER_WITHIN_SECS".into(), "2".into());
        env.insert("OSB_NETWORKS".into(), text);
    })
    .await;
    let ids: Vec<String> = (0..20).map(|i| new_id(&format!("pool{i}"))).collect();
    let replies = all_at_once(20, |i| {
        let (c, id) = (c.clone(), ids[i].clone());
        async move {
            let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
            c.call_on(i, Method::PUT, &path, Some(body(i))).await
        }
    })
    .await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    for id in &ids {
        let last = c.poll(id).await;
        assert_eq!(last["state"], "succeeded", "{id}: {last}");
    }
    assert_eq!(c.sim.count(CREATED), 20, "one appliance each");
    assert_eq!(c.sim.appliances().len(), 20);

    // Twenty distinct addresses: in the leases, in the records and in what SAKURA was sent.
    let held = leases(&c).await;
    let addresses: BTreeSet<&String> = held.iter().map(|(a, _)| a).collect();
    let holders: BTreeSet<&String> = held.iter().map(|(_, h)| h).collect();
    assert_eq!(addresses.len(), 20, "{held:?}");
    assert_eq!(holders, ids.iter().collect::<BTreeSet<_>>());
    let mut recorded = BTreeSet::new();
    for id in &ids {
        let (record, _, _) = c
            .raw_item(&osb_sacloud::store::Key::instance(id))
            .await
            .expect("record");
        recorded.insert(record["params"]["ipaddress"].as_str().unwrap().to_owned());
    }
    assert_eq!(recorded.iter().collect::<BTreeSet<_>>(), addresses);
    let sent: BTreeSet<String> = c
        .sim
        .requests()
        .iter()
        .filter(|r| r.route == "POST /appliance")
        .map(|r| {
            let b: Value = serde_json::from_str(&r.body).unwrap();
            b["Appliance"]["Remark"]["Servers"][0]["IPAddress"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(sent.len(), 20, "twenty creates, twenty addresses");

    // Two left; four more at once: two get them, two are refused with nothing created.
    let more: Vec<String> = (0..4).map(|i| new_id(&format!("more{i}"))).collect();
    let replies = all_at_once(4, |i| {
        let (c, id) = (c.clone(), more[i].clone());
        async move {
            let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
            c.call_on(i, Method::PUT, &path, Some(body(i))).await
        }
    })
    .await;
    let accepted = replies
        .iter()
        .filter(|r| r.status == StatusCode::ACCEPTED)
        .count();
    let refused: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::UNPROCESSABLE_ENTITY)
        .collect();
    assert_eq!((accepted, refused.len()), (2, 2), "{replies:?}");
    for r in refused {
        assert!(
            r.body["description"]
                .as_str()
                .unwrap_or_default()
                .contains("no free address"),
            "{}",
            r.body
        );
    }
    assert_eq!(leases(&c).await.len(), 22);
    for (i, id) in more.iter().enumerate() {
        if replies[i].status == StatusCode::ACCEPTED {
            assert_eq!(c.poll(id).await["state"], "succeeded");
        }
    }
    assert_eq!(c.sim.count(CREATED), 22);
}
