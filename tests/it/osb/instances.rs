//! Service instance endpoints: provision, poll, get, update, deprovision, tombstones.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

fn put_path(id: &str) -> String {
    format!("/v2/service_instances/{id}?accepts_incomplete=true")
}

#[tokio::test]
async fn provision_rejects_bad_requests_with_400_and_creates_nothing() {
    let h = Harness::start().await;
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut no_service = provision_body(MARIADB, MARIADB_10G);
    no_service.as_object_mut().unwrap().remove("service_id");
    cases.push((no_service, "service_id"));
    let mut no_plan = provision_body(MARIADB, MARIADB_10G);
    no_plan.as_object_mut().unwrap().remove("plan_id");
    cases.push((no_plan, "plan_id"));
    cases.push((
        provision_body("no-such-service", MARIADB_10G),
        "no-such-service",
    ));
    cases.push((provision_body(MARIADB, "no-such-plan"), "no-such-plan"));
    cases.push((provision_body(MARIADB, POSTGRES_10G), POSTGRES_10G));
    let mut bad_mask = provision_body(MARIADB, MARIADB_10G);
    bad_mask["parameters"]["maskLen"] = json!(40);
    cases.push((bad_mask, "maskLen"));
    let mut unknown_field = provision_body(MARIADB, MARIADB_10G);
    unknown_field["parameters"]["swtichID"] = json!("112233445566");
    cases.push((unknown_field, "swtichID"));
    let mut outside = provision_body(MARIADB, MARIADB_10G);
    outside["parameters"]["ipaddress"] = json!("10.0.0.5");
    cases.push((outside, "ipaddress"));
    let mut missing = provision_body(MARIADB, MARIADB_10G);
    missing["parameters"]
        .as_object_mut()
        .unwrap()
        .remove("switchID");
    cases.push((missing, "switchID"));
    for (body, named) in cases {
        let (status, _, answer) = h
            .call(Method::PUT, &put_path("bad"), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert!(
            answer["description"].as_str().unwrap().contains(named),
            "description should name {named}: {answer}"
        );
        assert!(answer["error"].is_string());
    }
    let (status, _, _) = h
        .call(
            Method::GET,
            "/v2/service_instances/bad/last_operation",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no record was made");
    assert!(h.sim.appliances().is_empty());
}

#[tokio::test]
async fn provision_without_accepts_incomplete_is_422_async_required() {
    let h = Harness::start().await;
    for query in ["", "?accepts_incomplete=false"] {
        let (status, _, body) = h
            .call(
                Method::PUT,
                &format!("/v2/service_instances/sync{query}"),
                Some(provision_body(MARIADB, MARIADB_10G)),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"], "AsyncRequired");
    }
    assert!(h.sim.appliances().is_empty());
}

#[tokio::test]
async fn identical_put_is_202_same_token_then_200_and_a_different_put_is_409() {
    let h = Harness::start().await;
    let id = new_id("idem");
    let token = h.provision(&id, MARIADB, MARIADB_10G).await;
    let (status, _, body) = h
        .call(
            Method::PUT,
            &put_path(&id),
            Some(provision_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(
        (status, body["operation"].as_str()),
        (StatusCode::ACCEPTED, Some(token.as_str()))
    );
    let mut other = provision_body(MARIADB, MARIADB_10G);
    other["parameters"]["ipaddress"] = json!("192.168.0.12");
    let (status, _, body) = h
        .call(Method::PUT, &put_path(&id), Some(other.clone()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["description"].is_string());
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let (status, _, body) = h
        .call(
            Method::PUT,
            &put_path(&id),
            Some(provision_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, _, _) = h.call(Method::PUT, &put_path(&id), Some(other)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(h.sim.appliances().len(), 1);
}

#[tokio::test]
async fn last_operation_needs_no_token_accepts_unknown_ones_and_sends_retry_after() {
    let h = Harness::start().await;
    let id = new_id("poll");
    h.provision(&id, POSTGRES, POSTGRES_10G).await;
    for query in [
        "",
        "?operation=provision",
        "?operation=not-a-token&service_id=x&plan_id=y",
    ] {
        let (status, headers, body) = h
            .call(
                Method::GET,
                &format!("/v2/service_instances/{id}/last_operation{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(["in progress", "succeeded"].contains(&body["state"].as_str().unwrap()));
        assert!(body["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(headers["retry-after"], "1");
    }
    let (status, _, body) = h
        .call(
            Method::GET,
            "/v2/service_instances/never-seen/last_operation",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["description"].is_string());
}

#[tokio::test]
async fn get_instance_is_404_while_provisioning_then_200() {
    let h = Harness::start().await;
    let id = new_id("get");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    let (status, _, _) = h
        .call(Method::GET, &format!("/v2/service_instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.poll(&id).await;
    let (status, _, body) = h
        .call(Method::GET, &format!("/v2/service_instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["service_id"], MARIADB);
    assert_eq!(body["plan_id"], MARIADB_10G);
    assert_eq!(body["parameters"], good_parameters());
}

#[tokio::test]
async fn deprovision_leaves_a_tombstone_then_410_and_the_id_can_be_reused() {
    let h = Harness::start().await;
    let id = new_id("tomb");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let path = format!("/v2/service_instances/{id}");
    for query in [
        "?accepts_incomplete=true&plan_id=x",
        "?accepts_incomplete=true&service_id=x",
    ] {
        let (status, _, body) = h
            .call(Method::DELETE, &format!("{path}{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    let (status, _, body) = h
        .call(
            Method::DELETE,
            &format!("{path}?service_id={MARIADB}&plan_id={MARIADB_10G}"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("AsyncRequired"))
    );
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let token = body["operation"].as_str().unwrap().to_owned();
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(
        (status, body["operation"].as_str()),
        (StatusCode::ACCEPTED, Some(token.as_str())),
        "re-sent DELETE"
    );
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(h.sim.appliances().is_empty(), "appliance deleted");
    let (status, _, body) = h
        .call(Method::GET, &format!("{path}/last_operation"), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "tombstone answers"
    );
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body["description"].is_string());
    let (status, _, _) = h.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(h.sim.appliances().len(), 1, "provisioned again");
}

#[tokio::test]
async fn delete_of_unknown_instance_is_410() {
    let h = Harness::start().await;
    let (status, body) = h.deprovision("never-existed", MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"], "Gone");
}

#[tokio::test]
async fn delete_during_provisioning_halts_it_and_removes_the_appliance() {
    let h = Harness::start().await;
    let id = new_id("halt");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(h.sim.appliances().is_empty());
}

#[tokio::test]
async fn update_applies_settings_async_and_refuses_plan_changes() {
    let h = Harness::start().await;
    let id = new_id("upd");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let plan_change =
        json!({"service_id": MARIADB, "plan_id": "d4591cca-6361-4957-bfad-3f5e84ef2215"});
    let (status, _, body) = h.call(Method::PATCH, &path, Some(plan_change)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, body) = h
        .call(Method::PATCH, &path, Some(json!({"plan_id": MARIADB_10G})))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "service_id is required: {body}"
    );
    let (status, _, body) = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({"service_id": MARIADB, "parameters": {"maskLen": 16}})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "maskLen cannot be changed (an unsupported change): {body}"
    );
    assert!(body["description"].as_str().unwrap().contains("maskLen"));

    let update = json!({"service_id": MARIADB, "parameters": {"allowNetworks": ["192.168.0.0/24"], "backupTime": "03:30"}});
    let (status, _, _) = h
        .call(
            Method::PATCH,
            &format!("/v2/service_instances/{id}"),
            Some(update.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "async required");
    let (status, _, body) = h.call(Method::PATCH, &path, Some(update.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let token = body["operation"].as_str().unwrap().to_owned();
    let (status, _, body) = h.call(Method::PATCH, &path, Some(update)).await;
    assert_eq!(
        (status, body["operation"].as_str()),
        (StatusCode::ACCEPTED, Some(token.as_str()))
    );
    let (status, _, body) = h
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{id}/service_bindings/b1"),
            Some(bind_body(MARIADB, MARIADB_10G)),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ConcurrencyError")),
        "bind during update"
    );
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let (_, _, body) = h
        .call(Method::GET, &format!("/v2/service_instances/{id}"), None)
        .await;
    assert_eq!(
        body["parameters"]["allowNetworks"],
        json!(["192.168.0.0/24"])
    );
    assert_eq!(body["parameters"]["backupTime"], "03:30");
    let counters = h.sim.counters();
    assert!(
        counters
            .iter()
            .any(|(k, v)| k.contains("config") && *v >= 1),
        "PUT /config was called: {counters:?}"
    );
}

#[tokio::test]
async fn responses_for_2_13_carry_no_newer_fields() {
    let h = Harness::start().await;
    let id = new_id("old");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let req = axum::http::Request::builder()
        .uri(format!("/v2/service_instances/{id}/last_operation"))
        .header("X-Broker-API-Version", "2.13")
        .header("Authorization", basic(USER, PASSWORD));
    let (status, _, body) = h.send(with_body(req, None)).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["description", "state"]);
}

/// Identical PATCHes sent at once all get 202 with the one operation token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_updates_share_one_operation() {
    let h = Harness::start().await;
    let id = new_id("updrace");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let body = json!({"service_id": MARIADB, "parameters": {"backupRotate": 4}});
    let answers = futures_join(&h, &path, &body, 8).await;
    let tokens: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
            body["operation"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(h.poll(&id).await["state"], "succeeded");
}

async fn futures_join(h: &Harness, path: &str, body: &Value, n: usize) -> Vec<(StatusCode, Value)> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let router = h.app.router.clone();
        let (path, body) = (path.to_owned(), body.clone());
        tasks.push(tokio::spawn(async move {
            let req = axum::http::Request::builder()
                .method(Method::PATCH)
                .uri(path)
                .header("X-Broker-API-Version", "2.17")
                .header("Authorization", basic(USER, PASSWORD));
            let (status, _, body) = send(&router, with_body(req, Some(body))).await;
            (status, body)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
