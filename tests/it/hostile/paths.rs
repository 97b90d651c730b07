//! Hostile path ids on every route and method: any Unicode, encoded slashes, dot segments, NUL,
//! bad escapes, empty and very long segments. Every answer is a 2xx or a JSON 4xx.

use proptest::prelude::*;

use crate::hostile::generators::{route_and_method, segment};
use crate::support::hostile::*;
use crate::support::*;

/// Cases per run of the property below.
const CASES: u32 = 256;

#[test]
fn any_path_id_gets_a_2xx_or_a_json_4xx() {
    let t = Hostile::start();
    let known = prop_oneof![
        4 => segment(),
        1 => Just(t.ready.clone()),
        1 => Just(t.binding.clone()),
    ];
    let strategy = (route_and_method(), known.clone(), known);
    let query = format!("accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}");
    let mut headers = standard_headers();
    headers.push((
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    ));
    let ran = std::cell::Cell::new(0u32);
    runner(CASES)
        .run(&strategy, |((route, method), instance, binding)| {
            ran.set(ran.get() + 1);
            let uri = format!("{}?{query}", route.path(&instance, &binding));
            let body = good_body(route, &method);
            t.check(request(method, &uri, &headers, body)?)?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "hostile path ids: {} requests; statuses {}",
        ran.get(),
        t.statuses()
    );
}
