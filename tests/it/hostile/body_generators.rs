//! Strategies for request bodies: OSB bodies whose every field may be missing, right, subtly
//! wrong or any JSON at all, and raw bytes that are not JSON (truncated, invalid UTF-8, huge).

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::{Map, Value, json};

use crate::hostile::generators::json_value;
use crate::support::*;

/// Which body an endpoint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Provision,
    Update,
    Bind,
}

/// Values that look right and are wrong in a way a schema or a semantic check must catch.
fn near_miss() -> BoxedStrategy<Value> {
    proptest::sample::select(vec![
        json!("999.999.999.999"),
        json!("192.168.0.0"),
        json!("192.168.0.255"),
        json!("192.168.0.1"),
        json!("10.0.0.1"),
        json!(0),
        json!(-1),
        json!(65536),
        json!(1e10),
        json!(24.0),
        json!(24.5),
        json!("24"),
        json!(""),
        json!("00:00"),
        json!("24:00"),
        json!("03:31"),
        json!("10.11.12.13"),
        json!("99.99"),
        json!(["0.0.0.0/0"]),
        json!(["300.1.1.1/24"]),
        json!(["1.2.3.4/33"]),
        json!(["192.168.0.0/24", "192.168.0.0/24"]),
        json!([]),
        json!(112_233_445_566_u64),
        json!(112_233_445_566.0),
        json!("012233445566"),
        json!("root"),
        json!("postgres"),
        json!("a1"),
        json!("abcdefghijklmnopqrstu"),
        json!("is1a"),
        json!("zz9z"),
        json!(true),
        json!(null),
    ])
    .boxed()
}

/// A change to a good parameter object: drop a key, or give it a near miss or any value.
#[derive(Debug, Clone)]
enum Mutation {
    Drop,
    Set(Value),
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        1 => Just(Mutation::Drop),
        3 => near_miss().prop_map(Mutation::Set),
        1 => json_value().prop_map(Mutation::Set),
    ]
    .boxed()
}

/// The parameters a good request for `kind` may send, with good values.
fn good_parameters(kind: BodyKind) -> Vec<(&'static str, Value)> {
    match kind {
        BodyKind::Provision => vec![
            ("switchID", json!("112233445566")),
            ("ipaddress", json!("192.168.0.11")),
            ("maskLen", json!(24)),
            ("defaultRoute", json!("192.168.0.1")),
            ("username", json!("alice01")),
            ("port", json!(3307)),
            ("allowNetworks", json!(["192.168.0.0/24"])),
            ("backupTime", json!("03:30")),
            ("backupRotate", json!(3)),
            ("databaseVersion", json!("10.11")),
            ("zone", json!("is1a")),
        ],
        BodyKind::Update => vec![
            ("allowNetworks", json!(["192.168.0.0/24"])),
            ("port", json!(3307)),
            ("backupTime", json!("03:30")),
            ("backupRotate", json!(3)),
            ("rotateAdminPassword", json!(false)),
        ],
        // "dedicated" would dial the simulated appliance's address, which nothing serves.
        BodyKind::Bind => vec![("mode", json!("shared"))],
    }
}

/// `parameters` for `kind`: a good object (the optional keys each present or not) with up to
/// three mutations and perhaps an unknown key; sometimes any JSON at all.
pub fn parameters(kind: BodyKind) -> BoxedStrategy<Value> {
    let good = good_parameters(kind);
    let keys: Vec<&'static str> = good.iter().map(|(k, _)| *k).collect();
    let required = if kind == BodyKind::Provision { 4 } else { 0 };
    let structured = (
        vec(any::<bool>(), keys.len()),
        prop_oneof![
            1 => Just(Vec::new()),
            2 => vec((proptest::sample::select(keys), mutation()), 1..4),
        ],
        option::weighted(0.15, ("[a-zA-Z]{1,8}", json_value())),
    )
        .prop_map(move |(present, mutations, extra)| {
            let mut map: Map<String, Value> = good
                .iter()
                .zip(present)
                .enumerate()
                .filter(|(n, (_, keep))| *n < required || *keep)
                .map(|(_, ((k, v), _))| ((*k).to_owned(), v.clone()))
                .collect();
            for (key, change) in mutations {
                match change {
                    Mutation::Drop => map.remove(key),
                    Mutation::Set(v) => map.insert(key.to_owned(), v),
                };
            }
            if let Some((k, v)) = extra {
                map.insert(k, v);
            }
            Value::Object(map)
        });
    prop_oneof![10 => structured, 1 => json_value()].boxed()
}

/// An object of the fields that are present.
fn object(fields: Vec<(&'static str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
    Value::Object(map)
}

/// A field that is usually right: the right value, or anything.
fn field(good: Value) -> BoxedStrategy<Option<Value>> {
    option::weighted(0.85, prop_oneof![4 => Just(good), 1 => json_value()]).boxed()
}

/// A whole OSB body for `kind`.
pub fn body(kind: BodyKind) -> BoxedStrategy<Value> {
    let ids = prop_oneof![
        12 => Just((Some(json!(MARIADB)), Some(json!(MARIADB_10G)))),
        3 => Just((Some(json!(POSTGRES)), Some(json!(POSTGRES_10G)))),
        1 => Just((Some(json!(MARIADB)), Some(json!(POSTGRES_10G)))),
        1 => (option::of(json_value()), option::of(json_value())),
        1 => (option::of(Just(json!(MARIADB))), option::of(Just(json!(MARIADB_10G)))),
    ];
    let app_guid = prop_oneof![
        Just(json!("app")),
        "[a-z0-9-]{0,40}".prop_map(Value::from),
        json_value(),
    ];
    (
        ids,
        option::weighted(0.8, parameters(kind)),
        field(json!({"platform": "kubernetes", "namespace": "default"})),
        option::weighted(0.2, json_value()),
        field(json!({"app_guid": "app"})),
        option::weighted(0.15, app_guid),
    )
        .prop_map(
            move |((service, plan), parameters, context, maintenance, resource, app)| match kind {
                BodyKind::Provision | BodyKind::Update => object(vec![
                    ("service_id", service),
                    ("plan_id", plan),
                    ("parameters", parameters),
                    ("context", context),
                    ("maintenance_info", maintenance),
                    ("organization_guid", Some(json!("org"))),
                    ("space_guid", Some(json!("space"))),
                ]),
                BodyKind::Bind => object(vec![
                    ("service_id", service),
                    ("plan_id", plan),
                    ("parameters", parameters),
                    ("bind_resource", resource),
                    ("app_guid", app),
                    ("context", context),
                ]),
            },
        )
        .boxed()
}

/// Body bytes: a JSON body, any JSON value, a truncated body, raw bytes, invalid UTF-8 in a
/// string, or a body with a huge string (some over the 1 MiB limit).
pub fn raw_body(kind: BodyKind) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        14 => body(kind).prop_map(|v| v.to_string().into_bytes()),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        2 => (body(kind), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let mut bytes = v.to_string().into_bytes();
            bytes.truncate(cut.index(bytes.len()));
            bytes
        }),
        1 => vec(any::<u8>(), 0..512),
        1 => (vec(0x80u8..=0xff, 1..8), body(kind)).prop_map(|(junk, v)| {
            let text = v.to_string();
            let mut bytes = b"{\"service_id\":\"".to_vec();
            bytes.extend_from_slice(&junk);
            bytes.extend_from_slice(b"\",");
            bytes.extend_from_slice(text.trim_start_matches('{').as_bytes());
            bytes
        }),
        1 => (body(kind), 1usize..1_100_000, "[a-z_]{1,12}").prop_map(|(mut v, n, key)| {
            if let Value::Object(map) = &mut v {
                map.insert(key, Value::String("x".repeat(n)));
            }
            v.to_string().into_bytes()
        }),
    ]
    .boxed()
}
