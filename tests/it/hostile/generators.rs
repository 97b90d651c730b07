//! Strategies for hostile input: routes and methods, path segments, query strings, header values
//! and JSON values. Each mixes well-formed values in, so cases also get past the first check and
//! reach the broker's deeper paths.

use axum::http::Method;
use base64::Engine as _;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::{Map, Value};

use crate::support::*;

/// The five OSB routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Catalog,
    Instance,
    InstanceLastOp,
    Binding,
    BindingLastOp,
}

impl Route {
    pub fn path(self, instance: &str, binding: &str) -> String {
        let i = format!("/v2/service_instances/{instance}");
        let b = format!("{i}/service_bindings/{binding}");
        match self {
            Route::Catalog => "/v2/catalog".into(),
            Route::Instance => i,
            Route::InstanceLastOp => format!("{i}/last_operation"),
            Route::Binding => b,
            Route::BindingLastOp => format!("{b}/last_operation"),
        }
    }
}

pub fn route() -> impl Strategy<Value = Route> {
    prop_oneof![
        1 => Just(Route::Catalog),
        3 => Just(Route::Instance),
        2 => Just(Route::InstanceLastOp),
        3 => Just(Route::Binding),
        2 => Just(Route::BindingLastOp),
    ]
}

/// Mostly the methods the routes serve, some they do not, and an extension method.
pub fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        4 => Just(Method::GET),
        4 => Just(Method::PUT),
        3 => Just(Method::PATCH),
        4 => Just(Method::DELETE),
        1 => Just(Method::POST),
        1 => Just(Method::HEAD),
        1 => Just(Method::OPTIONS),
        1 => Just(Method::from_bytes(b"BREW").expect("token")),
        1 => Just(Method::from_bytes(b"get").expect("token")),
    ]
}

/// The methods `route` serves.
fn served(route: Route) -> Vec<Method> {
    match route {
        Route::Catalog | Route::InstanceLastOp | Route::BindingLastOp => vec![Method::GET],
        Route::Instance => vec![Method::GET, Method::PUT, Method::PATCH, Method::DELETE],
        Route::Binding => vec![Method::GET, Method::PUT, Method::DELETE],
    }
}

/// A route and, mostly, a method it serves; sometimes any method.
pub fn route_and_method() -> BoxedStrategy<(Route, Method)> {
    route()
        .prop_flat_map(|route| {
            let method = prop_oneof![
                4 => proptest::sample::select(served(route)),
                1 => method(),
            ];
            (Just(route), method)
        })
        .boxed()
}

/// Percent-encode every byte but ASCII letters and digits.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// Raw path or query pieces that are legal in a request target but mean trouble once decoded.
const NASTY: &[&str] = &[
    "%2F",
    "%2f",
    "..",
    ".",
    "%2e%2e",
    "%00",
    "%",
    "%z",
    "%zz",
    "%FF",
    "%C0%AF",
    "%ED%A0%80",
    "%F4%90%80%80",
    "%E2%80%AE",
    "%EF%BF%BF",
    "%0A",
    "%0D%0A",
    "%09",
    "%20",
    "+",
    ";",
    ",",
    "=",
    "@",
    ":",
    "!",
    "$",
    "'",
    "(",
    ")",
    "*",
    "~",
    "%25",
    "%252F",
    "%7B",
    "%7D",
    "%5C",
    "%3F",
    "%23",
    "%26",
];

pub fn nasty() -> impl Strategy<Value = String> {
    proptest::sample::select(NASTY).prop_map(str::to_owned)
}

/// A path segment: any Unicode (encoded), plain ids, nasty pieces, empty, or very long.
pub fn segment() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<String>().prop_map(|s| encode(&s)),
        2 => "[a-zA-Z0-9._~-]{1,40}",
        2 => nasty(),
        3 => vec(prop_oneof![nasty(), "[a-z0-9-]{0,6}".boxed()], 1..8).prop_map(|v| v.concat()),
        1 => Just(String::new()),
        1 => (200usize..20_000).prop_map(|n| "a".repeat(n)),
        1 => (60usize..400).prop_map(|n| "%E3%81%82".repeat(n)),
    ]
    .boxed()
}

/// The ids, service ids and plan ids a query may name, good and bad.
fn query_value() -> BoxedStrategy<String> {
    prop_oneof![
        2 => Just("true".to_owned()),
        1 => Just("false".to_owned()),
        2 => proptest::sample::select(vec![MARIADB, MARIADB_10G, POSTGRES, POSTGRES_10G])
            .prop_map(str::to_owned),
        2 => any::<String>().prop_map(|s| encode(&s)),
        2 => nasty(),
        1 => Just(String::new()),
        1 => (1000usize..30_000).prop_map(|n| "v".repeat(n)),
    ]
    .boxed()
}

fn query_key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => proptest::sample::select(vec!["accepts_incomplete", "service_id", "plan_id", "operation"])
            .prop_map(str::to_owned),
        1 => any::<String>().prop_map(|s| encode(&s)),
        1 => nasty(),
    ]
    .boxed()
}

/// A query string: pairs with repeated keys, missing `=`, doubled separators and bad escapes.
pub fn query() -> BoxedStrategy<String> {
    let pair = prop_oneof![
        4 => (query_key(), query_value()).prop_map(|(k, v)| format!("{k}={v}")),
        1 => query_key(),
        1 => (query_key(), query_value()).prop_map(|(k, v)| format!("{k}=={v}")),
        1 => nasty(),
    ];
    let sep = proptest::sample::select(vec!["&", "&", "&", "&&", ";", "&="]);
    vec((pair, sep), 0..12)
        .prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(p, s)| format!("{p}{s}"))
                .collect::<String>()
        })
        .boxed()
}

/// Bytes a header value may hold: tab, visible ASCII, and obs-text (not UTF-8 on its own).
pub fn header_bytes() -> BoxedStrategy<Vec<u8>> {
    let byte = prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff,];
    prop_oneof![
        4 => vec(byte.clone(), 0..64),
        1 => vec(byte, 1000..8000),
    ]
    .boxed()
}

/// Any JSON value: every type, odd numbers and strings, nesting a few levels deep.
pub fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[a-zA-Z0-9]{0,12}".prop_map(Value::from),
        proptest::sample::select(vec![
            "",
            " ",
            "\u{0}",
            "\u{202e}",
            "../..",
            "%2F",
            "'; DROP TABLE x; --",
            "\\",
            "\"",
            "192.168.0.11",
            "112233445566",
            "2.17",
            "shared",
            "true",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map("[a-zA-Z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

/// Standard base64 of `bytes`.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
