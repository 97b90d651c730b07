//! Crossplane's provider-osb, as its code sends requests. Follows:
//! - orange-cloudfoundry/provider-osb `internal/controller/namespaced/serviceinstance/serviceinstance.go`
//!   (`Observe`: GET instance then the drift check; `Update`; `handleLastOperationInProgress`:
//!   a poll answering 404/410 is "gone", the only way its finalizer comes off) and
//!   `apis/namespaced/instance/v1alpha1/serviceinstance_methods.go` (`CompareSpecWithOSB`
//!   deep-compares the spec's parameters with GET instance's, `BuildUpdateInstanceRequest` sends
//!   the whole parameter set, `BuildProvisionRequest` requires organization and space);
//! - `apis/namespaced/common/common_types.go` (`KubernetesOSBContext`: camelCase keys,
//!   `KubernetesOSBOriginatingIdentityValue`) and `internal/controller/namespaced/util/util.go`
//!   (`MakeOriginatingIdentityFromValue`: platform `kubernetes`; `NewOsbClient`: `osbVersion`);
//! - orange-cloudfoundry/go-open-service-broker-client `client.go` (`prepareAndDo`: version and
//!   request-identity headers, Content-Type only with a body, originating identity when given),
//!   `get_instance.go` (`GetInstance`: `service_id=&plan_id=` even when empty, no identity),
//!   `provision_instance.go`, `update_instance.go` and `rotate_binding.go` (`RotateBinding`: the
//!   body is only `{"predecessor_binding_id": ...}`).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Platform, stored_instance};
use crate::support::dedicated::{self, Kind, MARIADB_KIND, POSTGRES_KIND};
use crate::support::*;

fn provider_osb() -> Platform {
    Platform {
        version: "2.17",
        identity: Some((
            "kubernetes",
            r#"{"username":"","uid":"","groups":null,"extra":null}"#.to_owned(),
        )),
        content_type_always: false,
        content_type_with_body: true,
        request_identity: true,
    }
}

/// The spec's parameters, as provider-osb stores them (a JSON string in the managed resource).
fn spec_parameters() -> Value {
    json!({
        "backupRotate": 3, "switchID": "112233445566", "ipaddress": "192.168.0.11",
        "maskLen": 24, "defaultRoute": "192.168.0.1", "allowNetworks": ["10.0.0.7"],
    })
}

fn context(instance: &str) -> Value {
    json!({"platform": "kubernetes", "namespace": "apps", "clusterId": "c0ffee", "instanceName": instance})
}

/// `Create`: the provision request, without originating identity (`BuildProvisionRequest`).
async fn create(p: &Platform, h: &Harness, id: &str, parameters: Value) -> String {
    let body = json!({
        "service_id": MARIADB, "plan_id": MARIADB_10G,
        "organization_guid": "3a1c5b58-1f0e-4e7e-8d8c-0a4f0d3b1c11",
        "space_guid": "7e0d3f0c-6c0d-4b9e-9d6f-2b8c6a8e5f22",
        "parameters": parameters, "context": context(id),
    });
    let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let (status, _, answer) = p.send(h, Method::PUT, &path, Some(body), false).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["operation"].as_str().expect("operation").to_owned()
}

fn poll_path(id: &str, operation: &str) -> String {
    format!(
        "/v2/service_instances/{id}/last_operation?operation={operation}&plan_id={MARIADB_10G}&service_id={MARIADB}"
    )
}

/// `Observe`: GET instance with empty `service_id` and `plan_id`, then the spec comparison.
async fn observed_parameters(p: &Platform, h: &Harness, id: &str) -> Value {
    let path = format!("/v2/service_instances/{id}?plan_id=&service_id=");
    let (status, _, body) = p.send(h, Method::GET, &path, None, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["parameters"].clone()
}

/// `Update`: the whole parameter set, plan and context.
async fn update(p: &Platform, h: &Harness, id: &str, parameters: &Value) -> (StatusCode, Value) {
    let body = json!({
        "service_id": MARIADB, "plan_id": MARIADB_10G,
        "parameters": parameters, "context": context(id),
    });
    let path = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let (status, _, answer) = p.send(h, Method::PATCH, &path, Some(body), true).await;
    (status, answer)
}

#[tokio::test]
async fn whole_parameter_updates_reconcile_without_drift() {
    let h = Harness::start().await;
    let p = provider_osb();
    let id = new_id("xp-update");
    let spec = spec_parameters();
    let op = create(&p, &h, &id, spec.clone()).await;
    let ((status, _, last), _) = p.poll_until_done(&h, &poll_path(&id, &op), true).await;
    assert_eq!(
        (status, last["state"].as_str()),
        (StatusCode::OK, Some("succeeded"))
    );

    // No drift right after the create, and the re-sent whole set changes nothing: 200.
    assert_eq!(observed_parameters(&p, &h, &id).await, spec);
    let (status, answer) = update(&p, &h, &id, &spec).await;
    assert_eq!((status, &answer), (StatusCode::OK, &json!({})));
    let updates_before = h.sim.count("PUT /appliance/{id}");

    // switchID as a number is the same switch: still nothing to do, and GET shows what was sent.
    let mut numeric = spec.clone();
    numeric["switchID"] = json!(112233445566_u64);
    let (status, answer) = update(&p, &h, &id, &numeric).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(observed_parameters(&p, &h, &id).await, numeric);

    // A real change of an updatable key, with every create-only key along: 202, then applied.
    let mut changed = numeric.clone();
    changed["backupRotate"] = json!(4);
    changed["allowNetworks"] = json!(["10.0.0.7", "10.0.1.0/24"]);
    let (status, answer) = update(&p, &h, &id, &changed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let op = answer["operation"].as_str().expect("operation");
    let ((status, _, last), _) = p.poll_until_done(&h, &poll_path(&id, op), true).await;
    assert_eq!(
        (status, last["state"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{last}"
    );
    assert!(
        h.sim.count("PUT /appliance/{id}") > updates_before,
        "settings applied"
    );
    // GET shows the parameters as sent ("10.0.0.7", not "10.0.0.7/32"): no drift.
    assert_eq!(observed_parameters(&p, &h, &id).await, changed);
    let (status, _) = update(&p, &h, &id, &changed).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the next reconcile has nothing to do"
    );

    // A real change of a create-only key is an unsupported change: 422 naming it, nothing done.
    let mut moved = changed.clone();
    moved["defaultRoute"] = json!("192.168.0.254");
    let (status, answer) = update(&p, &h, &id, &moved).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["description"]
            .as_str()
            .unwrap_or("")
            .contains("defaultRoute"),
        "{answer}"
    );
    assert_eq!(observed_parameters(&p, &h, &id).await, changed);
    let record = stored_instance(&h, &id).await.expect("record");
    assert_eq!(record["params"]["defaultRoute"], "192.168.0.1");
}

#[tokio::test]
async fn delete_polls_until_gone_and_the_checker_still_sees_succeeded() {
    let h = Harness::start_with(|env| {
        env.insert("OSB_GONE_SUCCEEDED_SECS".into(), "1".into());
    })
    .await;
    let p = provider_osb();
    let id = new_id("xp-delete");
    let op = create(&p, &h, &id, spec_parameters()).await;
    p.poll_until_done(&h, &poll_path(&id, &op), true).await;

    // `deprovision`, then `handleLastOperationInProgress` polls until a 404 or 410.
    let delete = format!(
        "/v2/service_instances/{id}?accepts_incomplete=true&plan_id={MARIADB_10G}&service_id={MARIADB}"
    );
    let (status, _, answer) = p.send(&h, Method::DELETE, &delete, None, true).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let op = answer["operation"].as_str().expect("operation").to_owned();
    let mut gone = None;
    for _ in 0..400 {
        let (status, _, body) = p
            .send(&h, Method::GET, &poll_path(&id, &op), None, true)
            .await;
        if matches!(status, StatusCode::GONE | StatusCode::NOT_FOUND) {
            gone = Some(status);
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            matches!(body["state"].as_str(), Some("in progress" | "succeeded")),
            "{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(gone, Some(StatusCode::GONE), "the poll ends on 410");
    // The tombstone still answers a repeated DELETE and allows provisioning the id again.
    let (status, _, _) = p.send(&h, Method::DELETE, &delete, None, true).await;
    assert_eq!(status, StatusCode::GONE);
    create(&p, &h, &id, spec_parameters()).await;
}

#[tokio::test]
async fn checker_sequence_sees_succeeded_after_the_delete() {
    let h = Harness::start().await;
    let id = new_id("checker-delete");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let (status, body) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    // Within the window (five minutes by default) a further poll still answers succeeded.
    let last = h.poll(&id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::GONE);
}

/// `Bind` as the client sends it, returning the credentials.
async fn bind(p: &Platform, h: &Harness, id: &str, binding: &str) -> Value {
    let body = json!({
        "service_id": MARIADB, "plan_id": MARIADB_10G, "context": context(id),
        "bind_resource": {"app_guid": "apps"},
    });
    let path =
        format!("/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true");
    let (status, _, answer) = p.send(h, Method::PUT, &path, Some(body), true).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["credentials"].clone()
}

/// `RotateBinding`: only the predecessor in the body.
async fn rotate(
    p: &Platform,
    h: &Harness,
    id: &str,
    binding: &str,
    predecessor: &str,
) -> (StatusCode, Value) {
    let path =
        format!("/v2/service_instances/{id}/service_bindings/{binding}?accepts_incomplete=true");
    let body = json!({"predecessor_binding_id": predecessor});
    let (status, _, answer) = p.send(h, Method::PUT, &path, Some(body), true).await;
    (status, answer)
}

#[tokio::test]
async fn rotation_with_only_the_predecessor_makes_a_binding_like_it() {
    let h = Harness::start().await;
    let p = provider_osb();
    let (id, other) = (new_id("xp-rotate"), new_id("xp-other"));
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    h.ready_instance(&other, MARIADB, MARIADB_10G).await;
    let (old, new) = (new_id("b-old"), new_id("b-new"));
    let first = bind(&p, &h, &id, &old).await;
    assert_eq!(first["type"], "mysql", "{first}");

    let (status, answer) = rotate(&p, &h, &id, &new, &old).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["credentials"]["type"], "mysql");
    assert_eq!(answer["credentials"]["host"], first["host"]);
    let (status, again) = rotate(&p, &h, &id, &new, &old).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a re-sent rotation is idempotent: {again}"
    );

    // GET binding (empty service_id and plan_id) shows the predecessor's bind parameters.
    let path = format!("/v2/service_instances/{id}/service_bindings/{new}?plan_id=&service_id=");
    let (status, _, got) = p.send(&h, Method::GET, &path, None, false).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["credentials"]["provider"], "sakuracloud");

    // Unknown predecessors and another instance's binding are refused; nothing is made.
    for (instance, predecessor) in [(&id, "no-such-binding"), (&other, old.as_str())] {
        let target = new_id("b-bad");
        let (status, answer) = rotate(&p, &h, instance, &target, predecessor).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"], "BadRequest");
        let path = format!("/v2/service_instances/{instance}/service_bindings/{target}");
        let (status, _, _) = p.send(&h, Method::GET, &path, None, false).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn binding_metadata_is_promised_to_2_17_when_a_lifetime_is_set() {
    let h = Harness::start_with(|env| {
        env.insert("OSB_BINDING_LIFETIME_SECS".into(), "86400".into());
    })
    .await;
    let p = provider_osb();
    let id = new_id("xp-lifetime");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let binding = new_id("b");
    let path = format!("/v2/service_instances/{id}/service_bindings/{binding}");
    let (status, _, answer) = p
        .send(
            &h,
            Method::PUT,
            &path,
            Some(bind_body(MARIADB, MARIADB_10G)),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let expires = answer["metadata"]["expires_at"]
        .as_str()
        .expect("expires_at");
    let renew = answer["metadata"]["renew_before"]
        .as_str()
        .expect("renew_before");
    assert!(renew < expires && expires.ends_with('Z'), "{answer}");
    let (_, _, got) = p.send(&h, Method::GET, &path, None, false).await;
    assert_eq!(got["metadata"], answer["metadata"]);

    let older = Platform {
        version: "2.16",
        ..p.clone()
    };
    let (status, _, got) = older.send(&h, Method::GET, &path, None, false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        got.get("metadata").is_none(),
        "2.16 has no binding metadata: {got}"
    );
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn dedicated_rotation_on_mariadb() {
    dedicated::run("dedicated", |h| async move {
        dedicated_rotation(&h, MARIADB_KIND).await
    })
    .await;
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn dedicated_rotation_on_postgres() {
    dedicated::run("dedicated", |h| async move {
        dedicated_rotation(&h, POSTGRES_KIND).await
    })
    .await;
}

/// A rotation makes a second database user; both log in until the predecessor is unbound.
async fn dedicated_rotation(h: &Harness, kind: Kind) {
    let p = provider_osb();
    let id = new_id("xp-ded-rotate");
    dedicated::provision(h, &id, kind).await;
    let (old, new) = (dedicated::binding_id(), dedicated::binding_id());
    let before = dedicated::bind_ok(h, &id, &old, kind, Value::Null).await;
    let mut s_old = dedicated::session(&before).await;
    s_old
        .write("rotated_rows", "before")
        .await
        .expect("old user writes");

    let (status, answer) = rotate(&p, h, &id, &new, &old).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let after = answer["credentials"].clone();
    assert_ne!(after["username"], before["username"], "a new database user");
    assert_ne!(after["password"], before["password"], "fresh credentials");
    let expected_type = match kind.engine {
        osb_sacloud::sacloud::Engine::MariaDb => "mysql",
        osb_sacloud::sacloud::Engine::Postgres => "postgresql",
    };
    assert_eq!(after["type"], expected_type);

    // Both work, on the same data.
    let mut s_new = dedicated::session(&after).await;
    assert_eq!(
        s_new
            .write("rotated_rows", "after")
            .await
            .expect("new user writes"),
        ["after", "before"]
    );
    assert_eq!(
        s_old
            .values("rotated_rows")
            .await
            .expect("old user still reads"),
        ["after", "before"]
    );
    drop(s_old);

    // Unbinding the predecessor ends its login only.
    let (status, body) = dedicated::unbind(h, &id, &old, kind).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let old_uri = before["uri"].as_str().expect("uri");
    assert!(
        dedicated::login(old_uri).await.is_err(),
        "the predecessor still logs in"
    );
    assert_eq!(
        s_new.values("rotated_rows").await.expect("new user reads"),
        ["after", "before"]
    );
    drop(s_new);
    let (status, body) = dedicated::unbind(h, &id, &new, kind).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    dedicated::deprovision(h, &id, kind).await;
}
