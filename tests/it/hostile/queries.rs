//! Hostile query strings on every route: garbage, repeated keys, bad percent-encoding, missing
//! `=`, odd separators, huge values. Every answer is a 2xx or a JSON 4xx.

use std::cell::Cell;

use axum::http::{HeaderValue, header};
use proptest::prelude::*;

use crate::hostile::generators::{query, route_and_method};
use crate::support::hostile::*;
use crate::support::*;

/// Cases per run of the property below.
const CASES: u32 = 256;

#[test]
fn any_query_string_gets_a_2xx_or_a_json_4xx() {
    let t = Hostile::start();
    let instance = prop_oneof![
        2 => Just(t.ready.clone()),
        2 => "[a-z]{1,8}".prop_map(|s| new_id(&s)),
    ];
    let binding = prop_oneof![
        2 => Just(t.binding.clone()),
        1 => "[a-z]{1,8}".prop_map(|s| new_id(&s)),
    ];
    let strategy = (route_and_method(), instance, binding, query());
    let mut headers = standard_headers();
    headers.push((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    let ran = Cell::new(0u32);
    runner(CASES)
        .run(&strategy, |((route, method), instance, binding, query)| {
            ran.set(ran.get() + 1);
            let uri = format!("{}?{query}", route.path(&instance, &binding));
            let body = good_body(route, &method);
            t.check(request(method, &uri, &headers, body)?)?;
            t.poll_ready()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "hostile query strings: {} requests; statuses {}",
        ran.get(),
        t.statuses()
    );
}
