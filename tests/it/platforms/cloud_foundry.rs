//! Cloud Foundry's Cloud Controller speaking 2.15, as its broker client sends requests. Follows
//! cloudfoundry/cloud_controller_ng `lib/services/service_brokers/v2/client.rb` (`provision`:
//! organization, space and a `cloudfoundry` context; `deprovision` and `unbind`: the ids as query
//! parameters; `bind`: `app_guid`, `bind_resource` and context; `service_instance_last_operation_path`:
//! `operation`, `plan_id` and `service_id`) and `app/jobs/services/delete_orphaned_instance.rb`
//! (`DeleteOrphanedInstance#perform`: the orphan-mitigation DELETE, `accepts_incomplete=true`,
//! without a user and without polling), which `orphan_mitigator.rb` queues when a provision's
//! answer was lost.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::Platform;
use crate::support::*;

fn cloud_controller() -> Platform {
    Platform {
        version: "2.15",
        identity: Some((
            "cloudfoundry",
            r#"{"user_id":"683ea748-3092-4ff4-b656-39cacc4d5360"}"#.to_owned(),
        )),
        content_type_always: true,
        content_type_with_body: true,
        request_identity: true,
    }
}

fn context() -> Value {
    json!({"platform": "cloudfoundry", "organization_guid": "org-guid", "space_guid": "space-guid"})
}

fn provision(parameters: Value) -> Value {
    json!({
        "service_id": MARIADB, "plan_id": MARIADB_10G,
        "organization_guid": "org-guid", "space_guid": "space-guid",
        "context": context(), "parameters": parameters,
    })
}

fn instance(id: &str) -> String {
    format!("/v2/service_instances/{id}")
}

fn with_ids(path: &str) -> String {
    format!("{path}?accepts_incomplete=true&plan_id={MARIADB_10G}&service_id={MARIADB}")
}

fn last_operation(id: &str, operation: &str) -> String {
    format!(
        "/v2/service_instances/{id}/last_operation?operation={operation}&plan_id={MARIADB_10G}&service_id={MARIADB}"
    )
}

#[tokio::test]
async fn orphan_mitigation_right_after_a_provision() {
    let h = Harness::start().await;
    let p = cloud_controller();
    let id = new_id("cf-orphan");
    let put = format!("{}?accepts_incomplete=true", instance(&id));
    let (status, _, answer) = p
        .send(
            &h,
            Method::PUT,
            &put,
            Some(provision(good_parameters())),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    // Cloud Controller lost that answer (a timeout): it queues the orphan-mitigation DELETE.
    let (status, _, answer) = p
        .send(&h, Method::DELETE, &with_ids(&instance(&id)), None, false)
        .await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::OK,
        "{status} {answer}"
    );
    let op = answer["operation"].as_str().unwrap_or("").to_owned();
    // The job does not poll; a later look at the instance sees the deprovision finish.
    let ((status, _, last), _) = p.poll_until_done(&h, &last_operation(&id, &op), true).await;
    assert_eq!(
        (status, last["state"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{last}"
    );
    assert_eq!(
        h.sim.appliances().len(),
        0,
        "no orphan left in SAKURA Cloud"
    );
    // A retried job gets 410, which Cloud Controller counts as done.
    let (status, _, _) = p
        .send(&h, Method::DELETE, &with_ids(&instance(&id)), None, false)
        .await;
    assert_eq!(status, StatusCode::GONE);
}

#[tokio::test]
async fn cloud_controller_lifecycle_at_2_15() {
    let h = Harness::start().await;
    let p = cloud_controller();
    let id = new_id("cf");

    // Without organization_guid (the OSB spec requires it): 400, nothing created.
    let mut missing = provision(good_parameters());
    missing
        .as_object_mut()
        .expect("object")
        .remove("organization_guid");
    let put = format!("{}?accepts_incomplete=true", instance(&id));
    let (status, _, answer) = p.send(&h, Method::PUT, &put, Some(missing), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["description"]
            .as_str()
            .unwrap_or("")
            .contains("organization_guid")
    );
    assert_eq!(h.sim.count("POST /appliance"), 0);

    let (status, _, answer) = p
        .send(
            &h,
            Method::PUT,
            &put,
            Some(provision(good_parameters())),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let op = answer["operation"].as_str().expect("operation").to_owned();
    let ((status, _, last), _) = p.poll_until_done(&h, &last_operation(&id, &op), true).await;
    assert_eq!(
        (status, last["state"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{last}"
    );

    let binding = new_id("cfb");
    let bind = json!({
        "service_id": MARIADB, "plan_id": MARIADB_10G, "app_guid": "app-guid",
        "bind_resource": {"app_guid": "app-guid"}, "context": context(),
    });
    let bind_path = format!("{}/service_bindings/{binding}", instance(&id));
    let (status, _, answer) = p.send(&h, Method::PUT, &bind_path, Some(bind), true).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(answer.get("metadata").is_none(), "no 2.17 fields at 2.15");
    let (status, _, _) = p
        .send(&h, Method::DELETE, &with_ids(&bind_path), None, true)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, answer) = p
        .send(&h, Method::DELETE, &with_ids(&instance(&id)), None, true)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let op = answer["operation"].as_str().expect("operation").to_owned();
    let ((status, _, last), _) = p.poll_until_done(&h, &last_operation(&id, &op), true).await;
    assert_eq!(
        (status, last["state"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{last}"
    );

    // 2.15 has no 404 for last_operation: an instance the broker never knew answers 410.
    let unknown = new_id("cf-unknown");
    let (status, _, answer) = p
        .send(&h, Method::GET, &last_operation(&unknown, "x"), None, true)
        .await;
    assert_eq!(status, StatusCode::GONE, "{answer}");
    let at_2_17 = Platform {
        version: "2.17",
        ..p.clone()
    };
    let (status, _, _) = at_2_17
        .send(&h, Method::GET, &last_operation(&unknown, "x"), None, true)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "2.16 and later answer 404");
}
