//! The DynamoDB store beyond the shared contract, against moto: table setup, item layout, the
//! API calls each method makes, paging, and how failures are reported.

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType, TimeToLiveStatus};
use osb_sacloud::store::dynamodb::DynamoStore;
use osb_sacloud::store::{Cond, Error, Item, Key, Store, WriteOp, now_unix};

use crate::store::cases::{item, put};
use crate::support::moto;

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test]
async fn create_table_is_idempotent_and_turns_on_ttl() {
    let (store, _) = moto::store("create_table").await;
    store
        .create_table()
        .await
        .expect("second create_table is fine");

    let (client, _) = moto::client();
    let table = client
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    let billing = table.billing_mode_summary().and_then(|b| b.billing_mode());
    assert_eq!(billing, Some(&BillingMode::PayPerRequest));
    let keys: Vec<_> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(keys, vec![("pk", KeyType::Hash), ("sk", KeyType::Range)]);

    let ttl = client
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test]
async fn items_have_the_documented_attributes() {
    let (store, _) = moto::store("layout").await;
    let live = item(&Key::instance("i-1"), 7, r#"{"a":1}"#);
    let tomb = Item {
        expires_at: Some(now_unix() + 600),
        ..item(&Key::binding("i-1", "b"), 2, "{}")
    };
    store
        .write(vec![put(&live, Cond::Absent), put(&tomb, Cond::Absent)])
        .await
        .unwrap();

    let (client, _) = moto::client();
    let raw = |key: &Key| {
        client
            .get_item()
            .table_name(store.table())
            .key("pk", AttributeValue::S(key.pk.clone()))
            .key("sk", AttributeValue::S(key.sk.clone()))
            .consistent_read(true)
            .send()
    };
    let got = raw(&live.key).await.unwrap().item.unwrap();
    assert_eq!(
        got.get("pk"),
        Some(&AttributeValue::S("instance#i-1".into()))
    );
    assert_eq!(got.get("sk"), Some(&AttributeValue::S("meta".into())));
    assert_eq!(got.get("version"), Some(&AttributeValue::N("7".into())));
    assert_eq!(
        got.get("data"),
        Some(&AttributeValue::S(r#"{"a":1}"#.into()))
    );
    assert_eq!(
        got.len(),
        4,
        "no expires_at on a live item: {:?}",
        got.keys()
    );
    let got = raw(&tomb.key).await.unwrap().item.unwrap();
    let expires = tomb.expires_at.unwrap().to_string();
    assert_eq!(got.get("expires_at"), Some(&AttributeValue::N(expires)));
}

/// One request per store call; a lost race is one request too, never retried.
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test]
async fn each_method_makes_one_api_call() {
    let (store, log) = moto::store("calls").await;
    let meta = item(&Key::instance("i-1"), 1, "m");
    let bind = item(&Key::binding("i-1", "b"), 1, "b");
    let check = |cond| WriteOp::Check {
        key: meta.key.clone(),
        cond,
    };

    let cases: Vec<(WriteOp, Result<(), ()>, &str)> = vec![
        (put(&meta, Cond::Absent), Ok(()), "PutItem"),
        (put(&meta, Cond::Absent), Err(()), "PutItem"),
        (check(Cond::Version(1)), Ok(()), "GetItem"),
        (check(Cond::Version(9)), Err(()), "GetItem"),
    ];
    for (op, expected, call) in cases {
        let res = store.write(vec![op]).await;
        assert_eq!(res.is_ok(), expected.is_ok(), "{res:?}");
        assert_eq!(log.take(), vec![call]);
    }
    store.get(&meta.key).await.unwrap();
    assert_eq!(log.take(), vec!["GetItem"]);
    store.query(&meta.key.pk).await.unwrap();
    assert_eq!(log.take(), vec!["Query"]);

    let batch = || vec![put(&bind, Cond::Absent), check(Cond::Version(1))];
    store.write(batch()).await.unwrap();
    assert_eq!(log.take(), vec!["TransactWriteItems"]);
    assert!(matches!(store.write(batch()).await, Err(Error::Conflict)));
    assert_eq!(log.take(), vec!["TransactWriteItems"]);

    let delete = WriteOp::Delete {
        key: bind.key.clone(),
        cond: Cond::Version(1),
    };
    store.write(vec![delete]).await.unwrap();
    assert_eq!(log.take(), vec!["DeleteItem"]);
    store.write(vec![]).await.unwrap();
    assert_eq!(log.take(), Vec::<String>::new());
}

/// DynamoDB returns at most 1 MB per Query page; a larger partition takes several calls.
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test]
async fn query_follows_pages() {
    let (store, log) = moto::store("pages").await;
    let big = "x".repeat(350_000);
    let items: Vec<_> = (0..3)
        .map(|n| item(&Key::binding("i-1", &format!("b{n}")), 1, &big))
        .collect();
    for it in &items {
        store.write(vec![put(it, Cond::Absent)]).await.unwrap();
    }
    log.take();
    assert_eq!(store.query("instance#i-1").await.unwrap(), items);
    assert_eq!(log.take(), vec!["Query", "Query"]);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test]
async fn failures_name_operation_and_table_but_not_data() {
    let (client, _) = moto::client();
    let table = moto::table_name("missing");
    let store = DynamoStore::new(client.clone(), table.clone());
    let secretish = item(&Key::instance("i-1"), 1, "payload-that-must-not-leak");
    let cases = [
        ("GetItem", store.get(&secretish.key).await.map(|_| ())),
        ("Query", store.query(&secretish.key.pk).await.map(|_| ())),
        (
            "PutItem",
            store.write(vec![put(&secretish, Cond::Absent)]).await,
        ),
        (
            "TransactWriteItems",
            store
                .write(vec![
                    put(&secretish, Cond::Absent),
                    put(
                        &item(&Key::binding("i-1", "b"), 1, "payload-that-must-not-leak"),
                        Cond::Absent,
                    ),
                ])
                .await,
        ),
    ];
    for (op, res) in cases {
        let Err(Error::Backend(msg)) = res else {
            panic!("{op} on a missing table must be a backend error, got {res:?}");
        };
        assert!(msg.contains(op) && msg.contains(&table), "{msg}");
        assert!(!msg.contains("payload-that-must-not-leak"), "{msg}");
    }

    // An item this store did not write is reported by attribute, not by content.
    let (store, _) = moto::store("corrupt").await;
    client
        .put_item()
        .table_name(store.table())
        .item("pk", AttributeValue::S("instance#i-1".into()))
        .item("sk", AttributeValue::S("meta".into()))
        .item(
            "data",
            AttributeValue::S("payload-that-must-not-leak".into()),
        )
        .send()
        .await
        .unwrap();
    let Err(Error::Backend(msg)) = store.get(&secretish.key).await else {
        panic!("an item without a version must be a backend error");
    };
    assert!(
        msg.contains("`version`") && msg.contains(store.table()),
        "{msg}"
    );
    assert!(!msg.contains("payload-that-must-not-leak"), "{msg}");
}

/// The constructor the binary uses, pointed at the emulator.
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs moto, the DynamoDB emulator: run scripts/test.sh"
)]
#[tokio::test]
async fn from_env_reaches_an_emulator_endpoint() {
    let table = moto::table_name("from_env");
    let store = DynamoStore::from_env(table, Some(moto::endpoint().to_owned())).await;
    store.create_table().await.unwrap();
    let meta = item(&Key::instance("i-1"), 1, "m");
    store.write(vec![put(&meta, Cond::Absent)]).await.unwrap();
    assert_eq!(store.get(&meta.key).await.unwrap(), Some(meta));
    assert_eq!(store.kind(), "dynamodb");
}
