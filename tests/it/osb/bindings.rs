//! Binding endpoints in shared mode, and the full lifecycle over a real socket.

use axum::http::{Method, StatusCode};
use osb_sacloud::binder::crypto::Keyring;
use osb_sacloud::broker::records::{BindingRecord, BindingState, Credential};
use osb_sacloud::store::{Cond, Item, Key, WriteOp, now_unix};
use serde_json::{Value, json};

use crate::support::dedicated::{MARIADB_KIND, bind, binding_path};
use crate::support::*;

fn unbind_query(service: &str, plan: &str) -> String {
    format!("?service_id={service}&plan_id={plan}")
}

fn assert_credentials(credentials: &Value, scheme: &str) {
    for key in ["host", "database", "username", "password", "uri", "jdbcUrl"] {
        assert!(
            credentials[key].as_str().is_some_and(|v| !v.is_empty()),
            "credentials lack {key}: {credentials}"
        );
    }
    assert!(
        credentials["port"].is_u64(),
        "port is a number: {credentials}"
    );
    assert!(
        credentials["uri"].as_str().unwrap().starts_with(scheme),
        "{credentials}"
    );
    assert_eq!(credentials["host"], "192.168.0.11");
}

#[tokio::test]
async fn bind_during_provisioning_is_422_concurrency_error() {
    let h = Harness::start().await;
    let id = new_id("bindearly");
    h.provision(&id, MARIADB, MARIADB_10G).await;
    let (status, body) = bind(&h, &id, "b", MARIADB_KIND, Value::Null).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "ConcurrencyError");
}

#[tokio::test]
async fn bind_of_unknown_instance_or_bad_body_creates_nothing() {
    let h = Harness::start().await;
    let (status, body) = bind(&h, "nope", "b", MARIADB_KIND, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let id = new_id("bindbad");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let (status, _, body) = h
        .call(
            Method::PUT,
            &binding_path(&id, "b"),
            Some(json!({"plan_id": MARIADB_10G})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let mut bad_mode = bind_body(MARIADB, MARIADB_10G);
    bad_mode["parameters"] = json!({"mode": "exclusive"});
    let (status, _, body) = h
        .call(Method::PUT, &binding_path(&id, "b"), Some(bad_mode))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["description"].as_str().unwrap().contains("mode"));
    let (status, _, _) = h.call(Method::GET, &binding_path(&id, "b"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shared_binding_lifecycle_with_idempotency_and_tombstone() {
    let h = Harness::start().await;
    let id = new_id("bind");
    h.ready_instance(&id, POSTGRES, POSTGRES_10G).await;
    let path = binding_path(&id, "b1");
    let (status, _, body) = h
        .call(Method::PUT, &path, Some(bind_body(POSTGRES, POSTGRES_10G)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_credentials(&body["credentials"], "postgresql://");
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "bind answers credentials only: {body}"
    );
    let first = body["credentials"].clone();
    let (status, _, body) = h
        .call(Method::PUT, &path, Some(bind_body(POSTGRES, POSTGRES_10G)))
        .await;
    assert_eq!(
        (status, &body["credentials"]),
        (StatusCode::OK, &first),
        "identical re-PUT"
    );
    let mut different = bind_body(POSTGRES, POSTGRES_10G);
    different["parameters"] = json!({"mode": "dedicated"});
    let (status, _, _) = h.call(Method::PUT, &path, Some(different)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, body) = h.call(Method::GET, &path, None).await;
    assert_eq!((status, &body["credentials"]), (StatusCode::OK, &first));
    let (status, _, body) = h
        .call(Method::GET, &format!("{path}/last_operation"), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("succeeded"))
    );

    let (status, _, body) = h.call(Method::DELETE, &path, None).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "service_id/plan_id required: {body}"
    );
    let (status, _, body) = h
        .call(
            Method::DELETE,
            &format!("{path}{}", unbind_query(POSTGRES, POSTGRES_10G)),
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, _, body) = h
        .call(
            Method::DELETE,
            &format!("{path}{}", unbind_query(POSTGRES, POSTGRES_10G)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    let (status, _, _) = h.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = h
        .call(Method::PUT, &path, Some(bind_body(POSTGRES, POSTGRES_10G)))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the id can be bound again: {body}"
    );
}

/// The whole lifecycle, as a platform drives it, for both engines, over a real TCP socket.
#[tokio::test]
async fn full_lifecycle_over_a_real_socket_for_both_engines() {
    let h = Harness::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = h.app.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let http = crate::support::plain_http::Client::new();
    let base = format!("http://{addr}");
    let call = |method: http::Method, path: String, body: Option<Value>| {
        let mut req = http
            .request(method, format!("{base}{path}"))
            .basic_auth(USER, Some(PASSWORD))
            .header("X-Broker-API-Version", "2.16");
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.expect("broker answers");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, catalog) = call(http::Method::GET, "/v2/catalog".into(), None).await;
    assert_eq!(status, 200);
    assert_eq!(catalog["services"].as_array().unwrap().len(), 2);
    for (service, plan, scheme) in [
        (MARIADB, MARIADB_10G, "mysql://"),
        (POSTGRES, POSTGRES_10G, "postgresql://"),
    ] {
        let id = new_id("life");
        let (status, body) = call(
            http::Method::PUT,
            format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(provision_body(service, plan)),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(poll_over_socket(&call, &id).await, "succeeded");
        let binding = format!("/v2/service_instances/{id}/service_bindings/b");
        let (status, body) = call(
            http::Method::PUT,
            binding.clone(),
            Some(bind_body(service, plan)),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_credentials(&body["credentials"], scheme);
        let (status, _) = call(
            http::Method::DELETE,
            format!("{binding}{}", unbind_query(service, plan)),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let delete = format!(
            "/v2/service_instances/{id}?accepts_incomplete=true&service_id={service}&plan_id={plan}"
        );
        let (status, _) = call(http::Method::DELETE, delete.clone(), None).await;
        assert_eq!(status, 202);
        assert_eq!(poll_over_socket(&call, &id).await, "succeeded");
        let (status, _) = call(http::Method::DELETE, delete, None).await;
        assert_eq!(status, 410);
    }
    assert!(h.sim.appliances().is_empty());
    server.abort();
}

/// In fake mode a dedicated bind for a simulated appliance that no real server backs is refused
/// at once, without any connection attempt off this machine, and creates nothing.
#[tokio::test]
async fn fake_mode_refuses_dedicated_binds_for_appliances_off_this_machine() {
    let mut h = Harness::start().await;
    let mut env = broker_env(&h.sim);
    env.insert("OSB_BINDING_MODE".into(), "dedicated".into());
    let mut config = config_from(&env);
    config.settings.loopback_databases_only = true; // what fake mode sets
    h.app = osb_sacloud::app::build_with_store(&config, h.store.clone())
        .await
        .unwrap();
    let id = new_id("offhost");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let started = std::time::Instant::now();
    let (status, body) = bind(&h, &id, "b", MARIADB_KIND, Value::Null).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let description = body["description"].as_str().unwrap();
    assert!(
        description.contains("192.168.0.11:3306") && description.contains("shared"),
        "{description}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "no connection attempt was made"
    );
    let (status, _, _) = h.call(Method::GET, &binding_path(&id, "b"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Poll `last_operation` through `call` until it leaves "in progress"; the final state.
async fn poll_over_socket<F, Fut>(call: &F, id: &str) -> String
where
    F: Fn(http::Method, String, Option<Value>) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    for _ in 0..300 {
        let (_, body) = call(
            http::Method::GET,
            format!("/v2/service_instances/{id}/last_operation"),
            None,
        )
        .await;
        let state = body["state"].as_str().unwrap_or_default().to_owned();
        if state != "in progress" {
            return state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("operation on {id} never finished");
}

/// A deprovision tombstones every binding, even more than one atomic write can hold.
#[tokio::test]
async fn deprovision_tombstones_every_binding_even_past_one_transaction() {
    let h = Harness::start().await;
    let id = new_id("many");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    for n in 0..95 {
        let (status, body) = bind(&h, &id, &format!("b{n}"), MARIADB_KIND, Value::Null).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.poll(&id).await["state"], "succeeded");
    let items = h
        .store
        .query(&osb_sacloud::store::Key::instance_partition(&id))
        .await
        .unwrap();
    let bound: Vec<_> = items
        .iter()
        .filter(|i| i.key.sk.starts_with("binding#") && !i.data.contains("\"gone\""))
        .collect();
    assert_eq!(items.len(), 96);
    assert!(bound.is_empty(), "{} bindings left bound", bound.len());
    assert!(
        items.iter().all(|i| i.expires_at.is_some()),
        "every record is a tombstone"
    );
}

/// A bound dedicated binding whose record lacks its endpoint (a damaged record) answers an
/// internal error: it never falls back to the appliance's admin account.
#[tokio::test]
async fn a_dedicated_record_without_its_endpoint_never_hands_out_the_admin_account() {
    let h = Harness::start().await;
    let id = new_id("noendpoint");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let (status, shared) = bind(&h, &id, "shared", MARIADB_KIND, Value::Null).await;
    assert_eq!(status, StatusCode::CREATED, "{shared}");
    let admin_password = shared["credentials"]["password"]
        .as_str()
        .expect("a shared binding hands out the admin password")
        .to_owned();
    let keyring = Keyring::from_config(ENCRYPTION_KEY).expect("test key");
    let record = BindingRecord {
        instance_id: id.clone(),
        binding_id: "damaged".into(),
        service_id: MARIADB.into(),
        plan_id: MARIADB_10G.into(),
        parameters: json!({}),
        bind_resource: Value::Null,
        credential: Credential::Dedicated {
            username: "damageduser".into(),
            sealed_password: Some(keyring.seal("user-password", &[&id, "damaged"])),
            endpoint: None,
        },
        state: BindingState::Bound,
        created_at: now_unix(),
        version: 0,
    };
    let item = Item {
        key: Key::binding(&id, "damaged"),
        version: 1,
        expires_at: None,
        data: serde_json::to_string(&record).expect("record serialises"),
    };
    h.store
        .write(vec![WriteOp::Put {
            item,
            cond: Cond::Absent,
        }])
        .await
        .expect("record written");
    let (status, _, body) = h
        .call(Method::GET, &binding_path(&id, "damaged"), None)
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"], "InternalError", "{body}");
    assert!(!body.to_string().contains(&admin_password), "{body}");
}
