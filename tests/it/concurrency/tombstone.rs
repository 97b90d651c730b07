//! Tombstones on DynamoDB across broker processes: once one has expired (OSB_TOMBSTONE_TTL_SECS)
//! the id reads as never seen, whether or not the table's TTL sweeper has removed the item, and
//! the same id can be provisioned and bound again.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use http::{Method, StatusCode};
use osb_sacloud::sacloud::simulator::CREATED;
use osb_sacloud::store::Key;

use crate::support::dedicated::binding_path;
use crate::support::moto;
use crate::support::procs::Cluster;
use crate::support::*;

const BROKERS: usize = 3;

fn delete_path(id: &str) -> String {
    format!(
        "/v2/service_instances/{id}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}"
    )
}

fn unbind_path(id: &str, binding: &str) -> String {
    format!(
        "{}?service_id={MARIADB}&plan_id={MARIADB_10G}",
        binding_path(id, binding)
    )
}

/// The item as DynamoDB holds it, expired or not: its `expires_at`, if any.
async fn raw_expiry(table: &str, key: &Key) -> Option<Option<i64>> {
    let (client, _) = moto::client();
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(key.pk.clone()))
        .key("sk", AttributeValue::S(key.sk.clone()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem");
    let item = out.item()?;
    Some(
        item.get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
    )
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_tombstone_lets_the_id_be_provisioned_again() {
    let c = Cluster::start("tombstonettl", BROKERS, |env| {
        env.insert("OSB_TOMBSTONE_TTL_SECS".into(), "1".into());
    })
    .await;
    let id = new_id("ttl");
    let put = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let last_op = format!("/v2/service_instances/{id}/last_operation");

    let first = c
        .call(
            Method::PUT,
            &put,
            Some(provision_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(c.poll(&id).await["state"], "succeeded");
    let bind = c
        .call(
            Method::PUT,
            &binding_path(&id, "b1"),
            Some(bind_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(bind.status, StatusCode::CREATED, "{}", bind.body);
    let r = c.call(Method::DELETE, &delete_path(&id), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    // That answer came from the tombstone: until it expires, it says the deprovision succeeded.
    assert_eq!(c.poll(&id).await["state"], "succeeded");

    // Wait it out (1 s TTL, whole-second clock), asking each broker in turn.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.call(Method::GET, &last_op, None).await;
        if r.status == StatusCode::NOT_FOUND {
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["state"], "succeeded", "{}", r.body);
        assert!(Instant::now() < deadline, "the tombstone never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The items are still in the table (no sweeper ran), yet every broker treats them as absent.
    let now = osb_sacloud::store::now_unix();
    for key in [Key::instance(&id), Key::binding(&id, "b1")] {
        let expiry = raw_expiry(&c.table, &key).await;
        assert!(
            matches!(expiry, Some(Some(at)) if at <= now),
            "{key:?} is an expired tombstone still stored: {expiry:?}"
        );
    }
    for i in 0..BROKERS {
        let r = c.call_on(i, Method::GET, &last_op, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        let r = c.call_on(i, Method::DELETE, &delete_path(&id), None).await;
        assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
        let r = c
            .call_on(i, Method::DELETE, &unbind_path(&id, "b1"), None)
            .await;
        assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    }

    // The same id provisions again: a new operation and a new appliance.
    let again = c
        .call(
            Method::PUT,
            &put,
            Some(provision_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_ne!(again.body["operation"], first.body["operation"]);
    assert_eq!(c.poll(&id).await["state"], "succeeded");
    assert_eq!(c.sim.count(CREATED), 2);
    assert_eq!(c.sim.appliances().len(), 1);
    // The old binding does not come back with it, and its id binds anew.
    let r = c.call(Method::GET, &binding_path(&id, "b1"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let bind = c
        .call(
            Method::PUT,
            &binding_path(&id, "b1"),
            Some(bind_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(bind.status, StatusCode::CREATED, "{}", bind.body);
}
