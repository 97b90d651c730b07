//! Cross-cutting OSB rules: version header, auth, request identity, error bodies, body limit,
//! version-gated catalog fields.

use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::*;

fn catalog_request(version: Option<&str>, auth: Option<String>) -> Request<axum::body::Body> {
    let mut req = Request::builder()
        .uri("/v2/catalog")
        .header("X-Broker-API-Request-Identity", "req-42");
    if let Some(v) = version {
        req = req.header("X-Broker-API-Version", v);
    }
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    with_body(req, None)
}

fn assert_osb_error(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["description"].as_str().is_some_and(|d| d.len() > 10),
        "no usable description: {body}"
    );
}

#[tokio::test]
async fn missing_or_old_version_header_is_412_with_json() {
    let h = Harness::start().await;
    for version in [None, Some("2.12"), Some("1.0"), Some("banana"), Some("3.0")] {
        let (status, headers, body) = h
            .send(catalog_request(version, Some(basic(USER, PASSWORD))))
            .await;
        assert_eq!(
            status,
            StatusCode::PRECONDITION_FAILED,
            "version {version:?}"
        );
        assert_osb_error(&body, "PreconditionFailed");
        assert!(body["description"].as_str().unwrap().contains("2.13"));
        assert_eq!(
            headers["x-broker-api-request-identity"], "req-42",
            "identity echoed on 412"
        );
    }
    for version in ["2.13", "2.14", "2.15", "2.16", "2.17", "2.18"] {
        let (status, _, _) = h
            .send(catalog_request(Some(version), Some(basic(USER, PASSWORD))))
            .await;
        assert_eq!(status, StatusCode::OK, "version {version}");
    }
}

#[tokio::test]
async fn bad_or_missing_credentials_are_401_with_json() {
    let h = Harness::start().await;
    let bad = [
        None,
        Some(basic(USER, "wrong")),
        Some(basic("someone", PASSWORD)),
        Some("Bearer abc".to_owned()),
        Some("Basic !!!notbase64".to_owned()),
    ];
    for auth in bad {
        let (status, headers, body) = h.send(catalog_request(Some("2.17"), auth.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "auth {auth:?}");
        assert_osb_error(&body, "Unauthorized");
        assert!(headers.contains_key("www-authenticate"));
        assert_eq!(headers["x-broker-api-request-identity"], "req-42");
    }
}

#[tokio::test]
async fn healthz_needs_no_auth_and_unknown_routes_answer_json() {
    let h = Harness::start().await;
    let (status, _, body) = h
        .send(with_body(Request::builder().uri("/healthz"), None))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, _, body) = h.call(Method::GET, "/v2/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_osb_error(&body, "NotFound");
    let (status, _, body) = h.call(Method::POST, "/v2/catalog", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_osb_error(&body, "MethodNotAllowed");
}

#[tokio::test]
async fn catalog_keeps_2018_ids_and_gates_fields_by_version() {
    let h = Harness::start().await;
    let fetch = |v: &'static str| {
        let req = catalog_request(Some(v), Some(basic(USER, PASSWORD)));
        async { h.send(req).await }
    };
    let (status, headers, new) = fetch("2.17").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-broker-api-request-identity"], "req-42");
    let services = new["services"].as_array().unwrap();
    let ids: Vec<&str> = services.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&MARIADB) && ids.contains(&POSTGRES));
    let plan_ids: Vec<&str> = services
        .iter()
        .flat_map(|s| s["plans"].as_array().unwrap())
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(plan_ids.contains(&MARIADB_10G) && plan_ids.contains(&POSTGRES_10G));
    assert_eq!(plan_ids.len(), 12);
    assert_eq!(services[0]["instances_retrievable"], true);
    assert!(new.to_string().contains("maximum_polling_duration"));

    let (_, _, old) = fetch("2.13").await;
    let text = old.to_string();
    for newer in [
        "instances_retrievable",
        "bindings_retrievable",
        "maximum_polling_duration",
        "maintenance_info",
        "binding_rotatable",
        "allow_context_updates",
    ] {
        assert!(!text.contains(newer), "2.13 catalog carries {newer}");
    }
    assert_eq!(old["services"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn malformed_originating_identity_is_400_and_a_good_one_is_accepted() {
    let h = Harness::start().await;
    let req = |identity: &str| {
        with_body(
            Request::builder()
                .uri("/v2/catalog")
                .header("X-Broker-API-Version", "2.14")
                .header("Authorization", basic(USER, PASSWORD))
                .header("X-Broker-API-Originating-Identity", identity),
            None,
        )
    };
    let (status, _, body) = h.send(req("kubernetes not-base64!")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_osb_error(&body, "MalformedRequest");
    let good = base64::engine::general_purpose::STANDARD
        .encode(r#"{"username":"alice","uid":"1","groups":[]}"#);
    let (status, _, _) = h.send(req(&format!("kubernetes {good}"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413_with_json() {
    let h = Harness::start().await;
    let mut body = provision_body(MARIADB, MARIADB_10G);
    body["context"]["padding"] = Value::String("x".repeat(1024 * 1024 + 10));
    let (status, _, answer) = h
        .call(
            Method::PUT,
            "/v2/service_instances/big?accepts_incomplete=true",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_osb_error(&answer, "PayloadTooLarge");
    assert_eq!(h.sim.appliances().len(), 0, "nothing created");
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400() {
    let h = Harness::start().await;
    let send_raw = |raw: &'static str| {
        let req = Request::builder()
            .method(Method::PUT)
            .uri("/v2/service_instances/m1?accepts_incomplete=true")
            .header("X-Broker-API-Version", "2.17")
            .header("Authorization", basic(USER, PASSWORD))
            .header("Content-Type", "application/json")
            .body(axum::body::Body::from(raw))
            .unwrap();
        async { h.send(req).await }
    };
    for raw in [
        "{not json",
        "[]",
        "\"text\"",
        r#"{"service_id": 5, "plan_id": "x"}"#,
        "",
    ] {
        let (status, _, body) = send_raw(raw).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "body {raw:?}");
        assert_osb_error(&body, "MalformedRequest");
    }
    let (status, _, body) = h
        .send(
            Request::builder()
                .method(Method::PUT)
                .uri("/v2/service_instances/m1?accepts_incomplete=true")
                .header("X-Broker-API-Version", "2.17")
                .header("Authorization", basic(USER, PASSWORD))
                .header("Content-Type", "text/plain")
                .body(axum::body::Body::from(
                    provision_body(MARIADB, MARIADB_10G).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(h.sim.appliances().len(), 0, "nothing created");
}
