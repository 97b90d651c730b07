//! Hostile bodies on the endpoints that read one (provision, update, bind) and on those that do
//! not: every field of every JSON type, non-object JSON, truncated JSON, invalid UTF-8, random
//! bytes and bodies over 1 MiB. Every answer is a 2xx or a JSON 4xx (413 over the limit).

use std::cell::Cell;

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use proptest::prelude::*;

use crate::hostile::body_generators::{BodyKind, raw_body};
use crate::support::hostile::*;
use crate::support::*;

/// Cases per run of each property below.
const CASES: u32 = 128;

/// Where a body goes: the endpoint, and whether it names the ready instance or a new one.
#[derive(Debug, Clone, Copy)]
enum Target {
    ProvisionNew,
    ProvisionReady,
    UpdateReady,
    UpdateNew,
    BindNew,
    BindExisting,
    /// Endpoints that read no body get one anyway.
    Unread(&'static str),
}

impl Target {
    fn kind(self) -> BodyKind {
        match self {
            Target::ProvisionNew | Target::ProvisionReady | Target::Unread(_) => {
                BodyKind::Provision
            }
            Target::UpdateReady | Target::UpdateNew => BodyKind::Update,
            Target::BindNew | Target::BindExisting => BodyKind::Bind,
        }
    }
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => Just(Target::ProvisionNew),
        1 => Just(Target::ProvisionReady),
        3 => Just(Target::UpdateReady),
        1 => Just(Target::UpdateNew),
        3 => Just(Target::BindNew),
        1 => Just(Target::BindExisting),
        1 => Just(Target::Unread("GET")),
        1 => Just(Target::Unread("DELETE")),
    ]
}

fn run_bodies(content_type: Option<&'static str>) -> String {
    let t = Hostile::start();
    let strategy = target().prop_flat_map(|target| (Just(target), raw_body(target.kind())));
    let mut headers = standard_headers();
    if let Some(ct) = content_type {
        headers.push((header::CONTENT_TYPE, HeaderValue::from_static(ct)));
    }
    let ran = Cell::new(0u32);
    runner(CASES)
        .run(&strategy, |(target, bytes)| {
            ran.set(ran.get() + 1);
            let instance = |ready: bool| {
                if ready {
                    t.ready.clone()
                } else {
                    new_id("body")
                }
            };
            let (method, path) = match target {
                Target::ProvisionNew | Target::ProvisionReady => (
                    Method::PUT,
                    format!(
                        "/v2/service_instances/{}",
                        instance(matches!(target, Target::ProvisionReady))
                    ),
                ),
                Target::UpdateReady | Target::UpdateNew => (
                    Method::PATCH,
                    format!(
                        "/v2/service_instances/{}",
                        instance(matches!(target, Target::UpdateReady))
                    ),
                ),
                Target::BindNew => (
                    Method::PUT,
                    format!(
                        "/v2/service_instances/{}/service_bindings/{}",
                        t.ready,
                        new_id("b")
                    ),
                ),
                Target::BindExisting => (
                    Method::PUT,
                    format!(
                        "/v2/service_instances/{}/service_bindings/{}",
                        t.ready, t.binding
                    ),
                ),
                Target::Unread(m) => (
                    Method::from_bytes(m.as_bytes()).expect("method"),
                    format!("/v2/service_instances/{}", new_id("unread")),
                ),
            };
            let over_limit = bytes.len() > osb_sacloud::api::BODY_LIMIT;
            let reads_body = !matches!(target, Target::Unread(_));
            let uri = format!(
                "{path}?accepts_incomplete=true&service_id={MARIADB}&plan_id={MARIADB_10G}"
            );
            let answer = t.check(request(method, &uri, &headers, Body::from(bytes))?)?;
            if over_limit && reads_body && content_type.is_some() {
                prop_assert_eq!(
                    answer.status,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "{}",
                    answer.text()
                );
            }
            t.poll_ready()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    format!("{} requests; statuses {}", ran.get(), t.statuses())
}

#[test]
fn any_json_body_gets_a_2xx_or_a_json_4xx() {
    let ran = run_bodies(Some("application/json"));
    eprintln!("hostile bodies (application/json): {ran}");
}

#[test]
fn any_body_without_content_type_gets_a_2xx_or_a_json_4xx() {
    let ran = run_bodies(None);
    eprintln!("hostile bodies (no Content-Type): {ran}");
}
