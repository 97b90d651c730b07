//! Hostile input a random search is unlikely to hit: nesting past and just under the JSON
//! parser's depth limit, bodies at the 1 MiB edge (also streamed), numbers out of range, lone
//! surrogates, ids at the 255-byte edge, odd methods and request targets, doubled headers.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::support::hostile::*;
use crate::support::*;

/// A request with the good headers, `body` as the raw body, and a JSON Content-Type.
fn raw(method: Method, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("X-Broker-API-Version", "2.17")
        .header("Authorization", basic(USER, PASSWORD))
        .header("Content-Type", "application/json")
        .body(body.into())
        .expect("request builds")
}

fn instance_uri(id: &str) -> String {
    format!("/v2/service_instances/{id}?accepts_incomplete=true")
}

/// `{"a": {"a": ... {} }}`, `depth` objects deep.
fn nest(depth: usize) -> Value {
    (0..depth).fold(json!({}), |inner, _| json!({ "a": inner }))
}

#[tokio::test]
async fn bodies_nested_ten_thousand_deep_are_400() {
    let h = Harness::start().await;
    let arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let in_context = format!(
        "{{\"service_id\":\"{MARIADB}\",\"plan_id\":\"{MARIADB_10G}\",\"context\":{objects}}}"
    );
    let in_parameters = format!("{{\"service_id\":\"{MARIADB}\",\"parameters\":{arrays}}}");
    for body in [&arrays, &objects, &in_context, &in_parameters] {
        for (method, uri) in [
            (Method::PUT, instance_uri("deep")),
            (Method::PATCH, instance_uri("deep")),
            (
                Method::PUT,
                "/v2/service_instances/deep/service_bindings/b".to_owned(),
            ),
        ] {
            let answer = expect_sane(&h, raw(method, &uri, body.clone())).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
        }
    }
    assert!(h.sim.appliances().is_empty(), "nothing created");
}

/// The deepest `context` the body parser accepts must also survive the trip through the store.
#[tokio::test]
async fn context_nested_to_the_parser_limit_survives_the_store() {
    let h = Harness::start().await;
    let id = new_id("deepctx");
    let mut accepted = None;
    for depth in (100..140).rev() {
        let mut body = provision_body(MARIADB, MARIADB_10G);
        body["context"] = nest(depth);
        let answer = expect_sane(&h, raw(Method::PUT, &instance_uri(&id), body.to_string())).await;
        if answer.status == StatusCode::ACCEPTED {
            accepted = Some(body);
            break;
        }
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    }
    let body = accepted.expect("some depth below 140 is accepted");
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let (status, _, view) = h
        .call(Method::GET, &format!("/v2/service_instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let again = expect_sane(&h, raw(Method::PUT, &instance_uri(&id), body.to_string())).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());

    let binding = format!("/v2/service_instances/{id}/service_bindings/deep");
    let mut bind = bind_body(MARIADB, MARIADB_10G);
    bind["bind_resource"] = nest(125);
    let made = expect_sane(&h, raw(Method::PUT, &binding, bind.to_string())).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    let (status, _, _) = h.call(Method::GET, &binding, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bodies_at_the_one_mebibyte_edge() {
    let h = Harness::start().await;
    let limit = osb_sacloud::api::BODY_LIMIT;
    let padded = |size: usize| {
        let mut text = provision_body(MARIADB, MARIADB_10G).to_string();
        text.push_str(&" ".repeat(size - text.len()));
        text
    };
    let at = expect_sane(&h, raw(Method::PUT, &instance_uri("edge"), padded(limit))).await;
    assert_eq!(at.status, StatusCode::ACCEPTED, "{}", at.text());
    let over = expect_sane(
        &h,
        raw(Method::PUT, &instance_uri("edge2"), padded(limit + 1)),
    )
    .await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Streamed, so no size is known up front.
    let stream = Body::from_stream(Body::from(padded(limit + 10)).into_data_stream());
    let streamed = expect_sane(&h, raw(Method::PATCH, &instance_uri("edge"), stream)).await;
    assert_eq!(streamed.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Over the limit where nothing reads the body, or with the wrong Content-Type.
    let big = padded(limit * 2);
    for method in [Method::GET, Method::DELETE] {
        expect_sane(&h, raw(method, &instance_uri("edge"), big.clone())).await;
    }
    let mut wrong_type = raw(Method::PUT, &instance_uri("edge3"), big);
    wrong_type
        .headers_mut()
        .insert("content-type", "text/plain".parse().expect("header"));
    let answer = expect_sane(&h, wrong_type).await;
    assert!(answer.status.is_client_error());
}

#[tokio::test]
async fn odd_json_values_get_json_answers() {
    let h = Harness::start().await;
    let id = new_id("odd");
    let s = MARIADB;
    let p = MARIADB_10G;
    let bodies = [
        format!("{{\"service_id\":1e400,\"plan_id\":\"{p}\"}}"),
        format!("{{\"service_id\":\"{s}\",\"plan_id\":\"{p}\",\"parameters\":{{\"port\":1e400}}}}"),
        format!("{{\"service_id\":\"{s}\",\"plan_id\":\"{p}\",\"parameters\":{{\"port\":-0.0}}}}"),
        format!(
            "{{\"service_id\":\"{s}\",\"plan_id\":\"{p}\",\"parameters\":{{\"maskLen\":24.0,\"switchID\":112233445566.0,\"ipaddress\":\"192.168.0.11\",\"defaultRoute\":\"192.168.0.1\"}}}}"
        ),
        format!("\u{feff}{}", provision_body(s, p)),
        format!("{{\"service_id\":\"\\ud800\",\"plan_id\":\"{p}\"}}"),
        format!("{{\"service_id\":\"{s}\\u0000\",\"plan_id\":\"{p}\"}}"),
        format!("{{\"service_id\":\"x\",\"service_id\":\"{s}\",\"plan_id\":\"{p}\"}}"),
        format!("{} trailing", provision_body(s, p)),
        format!("{}{}", provision_body(s, p), provision_body(s, p)),
        "{\"service_id\":\"\u{202e}\",\"plan_id\":\"\u{0}\"}".to_owned(),
        "null".to_owned(),
        "   ".to_owned(),
    ];
    for body in bodies {
        for (method, uri) in [
            (Method::PUT, instance_uri(&id)),
            (Method::PATCH, instance_uri(&id)),
            (
                Method::PUT,
                format!("/v2/service_instances/{id}/service_bindings/b"),
            ),
        ] {
            expect_sane(&h, raw(method, &uri, body.clone())).await;
        }
    }
}

#[tokio::test]
async fn ids_at_the_255_byte_edge() {
    let h = Harness::start().await;
    let long_ascii = "a".repeat(255);
    let long_kana = "\u{3042}".repeat(85); // 255 bytes
    for id in [&long_ascii, &long_kana] {
        let encoded = crate::hostile::generators::encode(id);
        let body = provision_body(MARIADB, MARIADB_10G).to_string();
        let answer = expect_sane(&h, raw(Method::PUT, &instance_uri(&encoded), body)).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
        assert_eq!(h.poll(&encoded).await["state"], "succeeded");
        let (status, _) = h.deprovision(&encoded, MARIADB, MARIADB_10G).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(h.poll(&encoded).await["state"], "succeeded");
    }
    for id in ["a".repeat(256), "\u{3042}".repeat(86)] {
        let encoded = crate::hostile::generators::encode(&id);
        let body = provision_body(MARIADB, MARIADB_10G).to_string();
        let answer = expect_sane(&h, raw(Method::PUT, &instance_uri(&encoded), body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    }
}

#[tokio::test]
async fn odd_methods_targets_and_doubled_headers() {
    let h = Harness::start().await;
    let get = |uri: &str, method: Method| raw(method, uri, Body::empty());
    for method in [
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
        Method::POST,
    ] {
        for uri in [
            "/v2/catalog",
            "/v2/service_instances/x",
            "/v2/service_instances/x/service_bindings/y/last_operation",
        ] {
            expect_sane(&h, get(uri, method.clone())).await;
        }
    }
    for uri in [
        "http://example.com/v2/catalog",
        "/v2/catalog/",
        "/v2/%63atalog",
        "//v2/catalog",
        "/v2/service_instances/",
        "/v2/service_instances//last_operation",
        "/v2/service_instances/x/service_bindings//last_operation",
        "/v2/service_instances/%2e%2e/service_bindings/%2e",
        "/v2/service_instances/a%2Fb",
        "/v2/service_instances/%00",
        "/v2/service_instances/%FF%FE",
        "/v2/service_instances/%ED%A0%80/last_operation",
        "/v2/catalog?%%%&&==",
        "/v2/service_instances/x?accepts_incomplete=%FF&service_id=%zz",
        "*",
    ] {
        expect_sane(&h, get(uri, Method::GET)).await;
        expect_sane(&h, get(uri, Method::DELETE)).await;
    }

    let mut doubled = get("/v2/catalog", Method::GET);
    let headers = doubled.headers_mut();
    headers.insert("authorization", "Bearer nope".parse().expect("header"));
    headers.append(
        "authorization",
        basic(USER, PASSWORD).parse().expect("header"),
    );
    headers.append("x-broker-api-version", "1.0".parse().expect("header"));
    expect_sane(&h, doubled).await;

    let big_identity = format!(
        "kubernetes {}",
        crate::hostile::generators::b64(
            json!({"username": "x".repeat(100_000)})
                .to_string()
                .as_bytes()
        )
    );
    let mut identity = raw(
        Method::PUT,
        &instance_uri("ident"),
        provision_body(MARIADB, MARIADB_10G).to_string(),
    );
    identity.headers_mut().insert(
        "x-broker-api-originating-identity",
        big_identity.parse().expect("header"),
    );
    identity.headers_mut().insert(
        "x-broker-api-request-identity",
        axum::http::HeaderValue::from_bytes(b"\xff\xfe id").expect("obs-text"),
    );
    let answer = expect_sane(&h, identity).await;
    assert_eq!(
        answer.headers["x-broker-api-request-identity"],
        &b"\xff\xfe id"[..]
    );
}
