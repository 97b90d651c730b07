//! Input the broker refuses before acting on it: ids that display as something else or read as
//! path steps, `accepts_incomplete` values that are neither `true` nor `false`; and the basic-auth
//! scheme name in any case.

use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use serde_json::Value;

use crate::support::*;

fn assert_bad_request(what: &str, status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"], "BadRequest", "{what}: {body}");
    assert!(
        body["description"].as_str().is_some_and(|d| d.len() > 20),
        "{what}: no usable description: {body}"
    );
}

/// Ids as they appear in a URL: raw dot segments, their encoded forms, whitespace only,
/// control characters and Unicode's bidirectional controls.
const BAD_IDS: [&str; 14] = [
    ".",
    "..",
    "%2E",
    "%2e%2E",
    "%20",
    "%20%20%09",
    "%C2%A0",
    "%E3%80%80",
    "inst%00",
    "inst%1B%5B31m",
    "evil%E2%80%AEfdp.exe",
    "a%E2%81%A6b",
    "%D8%9Cx",
    "x%E2%80%8F",
];

#[tokio::test]
async fn ids_with_control_or_bidi_characters_dot_segments_or_only_whitespace_are_400() {
    let h = Harness::start().await;
    h.ready_instance("rules-ready", MARIADB, MARIADB_10G).await;
    let delete_query = format!("service_id={MARIADB}&plan_id={MARIADB_10G}");
    for id in BAD_IDS {
        let instance = format!("/v2/service_instances/{id}");
        let binding = format!("/v2/service_instances/rules-ready/service_bindings/{id}");
        let cases = [
            (
                Method::PUT,
                format!("{instance}?accepts_incomplete=true"),
                Some(provision_body(MARIADB, MARIADB_10G)),
            ),
            (Method::GET, instance.clone(), None),
            (
                Method::PATCH,
                format!("{instance}?accepts_incomplete=true"),
                Some(serde_json::json!({"service_id": MARIADB})),
            ),
            (
                Method::DELETE,
                format!("{instance}?accepts_incomplete=true&{delete_query}"),
                None,
            ),
            (Method::GET, format!("{instance}/last_operation"), None),
            (
                Method::PUT,
                binding.clone(),
                Some(bind_body(MARIADB, MARIADB_10G)),
            ),
            (Method::GET, binding.clone(), None),
            (Method::DELETE, format!("{binding}?{delete_query}"), None),
            (Method::GET, format!("{binding}/last_operation"), None),
        ];
        for (method, uri, body) in cases {
            let what = format!("{method} {uri}");
            let (status, _, answer) = h.call(method, &uri, body).await;
            assert_bad_request(&what, status, &answer);
        }
    }
    // Only the ready instance was ever made.
    assert_eq!(h.sim.appliances().len(), 1);
}

#[tokio::test]
async fn ordinary_ids_with_inner_spaces_dots_or_unicode_are_still_accepted() {
    let h = Harness::start().await;
    for id in [
        "a.b",
        "...",
        "inner%20space",
        "%C3%BCn%C3%AFcode-%E6%97%A5%E6%9C%AC",
        "a..b",
    ] {
        let (status, _, body) = h
            .call(Method::GET, &format!("/v2/service_instances/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
    }
}

#[tokio::test]
async fn accepts_incomplete_other_than_true_or_false_is_400() {
    let h = Harness::start().await;
    h.ready_instance("rules-async", MARIADB, MARIADB_10G).await;
    let ids = format!("service_id={MARIADB}&plan_id={MARIADB_10G}");
    for value in ["yes", "1", "TRUE", "True", "", "true%20", "false%00", "on"] {
        let q = format!("accepts_incomplete={value}");
        let cases = [
            (
                Method::PUT,
                format!("/v2/service_instances/rules-new?{q}"),
                Some(provision_body(MARIADB, MARIADB_10G)),
            ),
            (
                Method::PATCH,
                format!("/v2/service_instances/rules-async?{q}"),
                Some(serde_json::json!({"service_id": MARIADB, "plan_id": MARIADB_10G})),
            ),
            (
                Method::DELETE,
                format!("/v2/service_instances/rules-async?{q}&{ids}"),
                None,
            ),
            (
                Method::PUT,
                format!("/v2/service_instances/rules-async/service_bindings/b1?{q}"),
                Some(bind_body(MARIADB, MARIADB_10G)),
            ),
            (
                Method::DELETE,
                format!("/v2/service_instances/rules-async/service_bindings/b1?{q}&{ids}"),
                None,
            ),
        ];
        for (method, uri, body) in cases {
            let what = format!("{method} {uri}");
            let (status, _, answer) = h.call(method, &uri, body).await;
            assert_bad_request(&what, status, &answer);
        }
    }
    // Two values that disagree are refused too; two that agree are one.
    let (status, _, answer) = h
        .call(
            Method::PUT,
            "/v2/service_instances/rules-new?accepts_incomplete=true&accepts_incomplete=false",
            Some(provision_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_bad_request("disagreeing duplicates", status, &answer);
    // Nothing was provisioned, updated or deleted by the refused requests.
    assert_eq!(h.sim.appliances().len(), 1);
    let last = h.poll("rules-async").await;
    assert_eq!(last["state"], "succeeded", "{last}");

    // The two valid values keep their meaning.
    let (status, _, answer) = h
        .call(
            Method::PUT,
            "/v2/service_instances/rules-new?accepts_incomplete=false",
            Some(provision_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"], "AsyncRequired");
    let (status, _, answer) = h
        .call(
            Method::PUT,
            "/v2/service_instances/rules-new?accepts_incomplete=true&accepts_incomplete=true",
            Some(provision_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}

#[tokio::test]
async fn the_basic_scheme_name_is_case_insensitive() {
    let h = Harness::start().await;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let send = |authorization: String| {
        let req = Request::builder()
            .uri("/v2/catalog")
            .header("X-Broker-API-Version", "2.17")
            .header("Authorization", authorization);
        h.send(with_body(req, None))
    };
    for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
        let (status, _, body) = send(format!("{scheme} {token}")).await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
    }
    for refused in [
        format!("Basic{token}"),
        format!("Basics {token}"),
        format!("Bearer {token}"),
        token.clone(),
        "basic".to_owned(),
    ] {
        let (status, _, body) = send(refused.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}: {body}");
    }
}
