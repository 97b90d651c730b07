//! Hostile headers on every route: `X-Broker-API-Version`, `Authorization`,
//! `X-Broker-API-Originating-Identity`, `Content-Type` and `X-Broker-API-Request-Identity`, each
//! absent, right, nearly right or arbitrary bytes. Every answer is a 2xx or a JSON 4xx.

use std::cell::Cell;

use axum::http::{HeaderName, HeaderValue};
use proptest::option;
use proptest::prelude::*;

use crate::hostile::generators::{b64, header_bytes, json_value, route_and_method};
use crate::support::hostile::*;
use crate::support::*;

/// Cases per run of the property below.
const CASES: u32 = 256;

fn text(values: &[&str]) -> BoxedStrategy<Vec<u8>> {
    let values: Vec<Vec<u8>> = values.iter().map(|v| v.as_bytes().to_vec()).collect();
    proptest::sample::select(values).boxed()
}

fn version() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => text(&["2.17", "2.13", "2.14", "2.99"]),
        2 => text(&[
            "2.12", "3.0", "2.", ".17", "2.17.1", " 2.17 ", "2.99999999", "99999999999999999999.1",
            "2.-1", "\u{ff12}.\u{ff11}\u{ff17}", "2,17", "v2.17", "", "2.17\t",
        ]),
        2 => header_bytes(),
    ]
    .boxed()
}

fn authorization() -> BoxedStrategy<Vec<u8>> {
    let right = basic(USER, PASSWORD).into_bytes();
    prop_oneof![
        10 => Just(right),
        1 => Just(basic(USER, "wrong").into_bytes()),
        1 => Just(format!("basic {}", b64(format!("{USER}:{PASSWORD}").as_bytes())).into_bytes()),
        1 => Just(format!("Basic  {}", b64(format!("{USER}:{PASSWORD}").as_bytes())).into_bytes()),
        1 => Just(format!("Basic {}", b64(USER.as_bytes())).into_bytes()),
        1 => Just(b"Basic".to_vec()),
        1 => Just(b"Bearer abc".to_vec()),
        2 => proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|raw| format!("Basic {}", b64(&raw)).into_bytes()),
        2 => header_bytes(),
    ]
    .boxed()
}

fn originating_identity() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => Just(format!("kubernetes {}", b64(br#"{"username":"alice","uid":"1"}"#)).into_bytes()),
        2 => ("[a-z]{0,12}", json_value())
            .prop_map(|(p, v)| format!("{p} {}", b64(v.to_string().as_bytes())).into_bytes()),
        1 => ("[a-z]{0,12}", proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(p, raw)| format!("{p} {}", b64(&raw)).into_bytes()),
        1 => text(&["kubernetes", "", " ", "cloudfoundry !!!", "a b c"]),
        2 => header_bytes(),
    ]
    .boxed()
}

fn content_type() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => text(&["application/json", "application/json; charset=utf-8"]),
        2 => text(&[
            "APPLICATION/JSON", "application/jsonx", "text/plain", "application/vnd.api+json",
            "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", ";", "",
            "application/json; charset=latin1", "*/*", "application/",
        ]),
        2 => header_bytes(),
    ]
    .boxed()
}

#[test]
fn any_header_values_get_a_2xx_or_a_json_4xx() {
    let t = Hostile::start();
    let ids = prop_oneof![
        Just((t.ready.clone(), t.binding.clone())),
        "[a-z]{1,8}".prop_map(|s| (new_id(&s), new_id("b"))),
    ];
    let headers = (
        option::weighted(0.9, version()),
        option::weighted(0.9, authorization()),
        option::of(originating_identity()),
        option::weighted(0.8, content_type()),
        option::of(header_bytes()),
    );
    let strategy = (route_and_method(), ids, headers);
    let ran = Cell::new(0u32);
    runner(CASES)
        .run(
            &strategy,
            |((route, method), (instance, binding), values)| {
                ran.set(ran.get() + 1);
                let (version, auth, identity, content_type, request_identity) = values;
                let named = [
                    ("x-broker-api-version", version),
                    ("authorization", auth),
                    ("x-broker-api-originating-identity", identity),
                    ("content-type", content_type),
                    ("x-broker-api-request-identity", request_identity),
                ];
                let mut headers = Vec::new();
                for (name, value) in named {
                    if let Some(bytes) = value {
                        let value = HeaderValue::from_bytes(&bytes)
                            .map_err(|_| TestCaseError::reject("not a header value"))?;
                        headers.push((HeaderName::from_static(name), value));
                    }
                }
                let uri = format!(
                    "{}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}",
                    route.path(&instance, &binding)
                );
                let body = good_body(route, &method);
                t.check(request(method, &uri, &headers, body)?)?;
                t.poll_ready()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "hostile headers: {} requests; statuses {}",
        ran.get(),
        t.statuses()
    );
}
