//! Network pools through the router: provisions without parameters on Kubernetes and Cloud
//! Foundry contexts, leased addresses (exhausted, forbidden, taken, released, reclaimed), the
//! catalog's schema, GET instance, and the owner tags on the appliance.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use axum::http::{Method, StatusCode};
use osb_sacloud::broker::{Lease, lease_key, pool_partition};
use osb_sacloud::store::{Cond, Item, Key, WriteOp};
use serde_json::{Value, json};

use crate::support::*;

const K8S_SWITCH: &str = "200000000001";
const CF_SWITCH: &str = "200000000002";
const SHARED_SWITCH: &str = "200000000003";

/// Three networks: one for the Kubernetes namespace `team-a`, one for the Cloud Foundry space
/// `space-1`, and a default of `size` addresses.
fn networks(size: u8, policy: &str) -> String {
    json!({
        "networks": [
            {"name": "k8s-team-a", "zone": "is1a", "switchID": K8S_SWITCH, "cidr": "10.1.0.0/24",
             "gateway": "10.1.0.1", "range": "10.1.0.10-10.1.0.50", "reserved": ["10.1.0.20"]},
            {"name": "cf-space-1", "zone": "is1a", "switchID": CF_SWITCH, "cidr": "10.2.0.0/24",
             "gateway": "10.2.0.1", "range": "10.2.0.10-10.2.0.50"},
            {"name": "shared", "zone": "is1a", "switchID": SHARED_SWITCH, "cidr": "10.3.0.0/24",
             "gateway": "10.3.0.1", "range": format!("10.3.0.10-10.3.0.{}", 9 + size)},
        ],
        "contexts": {
            "kubernetes": {"namespaces": {"team-a": "k8s-team-a"}},
            "cloudfoundry": {"spaces": {"space-1": "cf-space-1"}},
        },
        "default": "shared",
        "userNetworks": policy,
    })
    .to_string()
}

fn pooled(size: u8, policy: &str) -> impl FnOnce(&mut HashMap<String, String>) {
    let text = networks(size, policy);
    move |env| {
        env.insert("OSB_NETWORKS".into(), text);
    }
}

fn k8s(namespace: &str) -> Value {
    json!({"platform": "kubernetes", "namespace": namespace, "clusterid": "cluster-1",
           "instance_name": "my db"})
}

fn cf(space: &str) -> Value {
    json!({"platform": "cloudfoundry", "organization_guid": "org-guid-1", "space_guid": space,
           "organization_name": "Acme Corp", "space_name": "dev", "instance_name": "mydb"})
}

fn body(context: Value, parameters: Option<Value>) -> Value {
    let mut b = json!({
        "service_id": MARIADB, "plan_id": MARIADB_10G,
        "organization_guid": "org", "space_guid": "space", "context": context,
    });
    if let Some(p) = parameters {
        b["parameters"] = p;
    }
    b
}

async fn put(h: &Harness, id: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, body) = h
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(body),
        )
        .await;
    (status, body)
}

/// Provision `id` with `body` and wait until it is ready.
async fn ready(h: &Harness, id: &str, body: Value) {
    let (status, reply) = put(h, id, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let last = h.poll(id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
}

/// The address the appliance of the last create asked for, and its switch.
fn last_create_network(h: &Harness) -> (String, String, Value) {
    let req = h.sim.last_create().expect("a create was sent");
    let body: Value = serde_json::from_str(&req.body).expect("create body is JSON");
    let remark = &body["Appliance"]["Remark"];
    (
        remark["Switch"]["ID"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        remark["Servers"][0]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["Appliance"].clone(),
    )
}

/// The leases on a switch, by address: the holder's instance id.
async fn leases(h: &Harness, switch: &str) -> Vec<(String, String)> {
    h.store
        .query(&pool_partition(switch))
        .await
        .expect("query")
        .into_iter()
        .map(|item| {
            let lease: Lease = serde_json::from_str(&item.data).expect("lease");
            (
                item.key.sk.trim_start_matches("addr#").to_owned(),
                lease.instance_id,
            )
        })
        .collect()
}

async fn lifecycle_without_parameters(
    h: &Harness,
    id: &str,
    context: Value,
    switch: &str,
    network: &str,
) {
    let (status, reply) = put(h, id, body(context, None)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let (sent_switch, address, _) = last_create_network(h);
    assert_eq!(sent_switch, switch);
    let last = h.poll(id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(leases(h, switch).await, [(address.clone(), id.to_owned())]);

    // GET instance: the parameters as sent (none), the network under metadata.
    let (status, _, got) = h
        .call(Method::GET, &format!("/v2/service_instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["parameters"], json!({}));
    let net = &got["metadata"]["attributes"]["network"];
    assert_eq!(net["network"], network, "{got}");
    assert_eq!(net["ipaddress"], address.as_str(), "{got}");
    assert_eq!(net["switchID"], switch, "{got}");
    assert_eq!(net["maskLen"], 24, "{got}");

    // Bind, unbind, deprovision.
    let binding = format!("/v2/service_instances/{id}/service_bindings/b-{id}");
    let (status, _, bound) = h
        .call(Method::PUT, &binding, Some(bind_body(MARIADB, MARIADB_10G)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bound}");
    assert_eq!(bound["credentials"]["host"], address.as_str(), "{bound}");
    let (status, _, _) = h
        .call(
            Method::DELETE,
            &format!("{binding}?service_id={MARIADB}&plan_id={MARIADB_10G}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = h.deprovision(id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let last = h.poll(id).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(leases(h, switch).await.is_empty(), "lease released");
}

#[tokio::test]
async fn a_lifecycle_without_parameters_works_on_kubernetes_and_cloud_foundry() {
    let h = Harness::start_with(pooled(5, "pool")).await;
    lifecycle_without_parameters(&h, &new_id("k8s"), k8s("team-a"), K8S_SWITCH, "k8s-team-a").await;
    lifecycle_without_parameters(&h, &new_id("cf"), cf("space-1"), CF_SWITCH, "cf-space-1").await;
    // A context no rule names gets the default network.
    lifecycle_without_parameters(
        &h,
        &new_id("other"),
        k8s("elsewhere"),
        SHARED_SWITCH,
        "shared",
    )
    .await;
    assert!(h.sim.appliances().is_empty(), "every appliance deleted");
}

#[tokio::test]
async fn the_catalog_says_the_network_parameters_are_optional_with_pools_only() {
    let create_schema = |catalog: &Value| {
        catalog["services"][0]["plans"][0]["schemas"]["service_instance"]["create"]["parameters"]
            .clone()
    };
    let h = Harness::start_with(pooled(5, "pool")).await;
    let (_, _, catalog) = h.call(Method::GET, "/v2/catalog", None).await;
    let schema = create_schema(&catalog);
    assert!(schema.get("required").is_none(), "{schema}");
    assert!(
        schema["properties"]["ipaddress"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("Optional")),
        "{schema}"
    );
    let plain = Harness::start().await;
    let (_, _, catalog) = plain.call(Method::GET, "/v2/catalog", None).await;
    assert_eq!(
        create_schema(&catalog)["required"],
        json!(["switchID", "ipaddress", "maskLen", "defaultRoute"])
    );
    // Without pools a provision without parameters is refused as before.
    let (status, reply) = put(&plain, &new_id("nopool"), body(k8s("team-a"), None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        reply["description"]
            .as_str()
            .unwrap_or_default()
            .contains("switchID"),
        "{reply}"
    );
}

#[tokio::test]
async fn an_exhausted_pool_answers_422_and_creates_nothing() {
    let h = Harness::start_with(pooled(2, "pool")).await;
    for _ in 0..2 {
        let (status, reply) = put(&h, &new_id("fill"), body(k8s("x"), None)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    }
    let creates = h.sim.count("POST /appliance");
    let id = new_id("full");
    let (status, reply) = put(&h, &id, body(k8s("x"), None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    let text = reply["description"].as_str().unwrap_or_default();
    assert!(
        text.contains("no free address") && text.contains("\"shared\""),
        "{reply}"
    );
    assert_eq!(h.sim.count("POST /appliance"), creates, "no create");
    assert_eq!(leases(&h, SHARED_SWITCH).await.len(), 2, "no lease added");
    let (status, _, _) = h
        .call(
            Method::GET,
            &format!("/v2/service_instances/{id}/last_operation"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no record");
}

#[tokio::test]
async fn a_forbidden_network_and_a_taken_address_are_refused_with_nothing_created() {
    let h = Harness::start_with(pooled(5, "pool")).await;
    let first = new_id("first");
    put(&h, &first, body(k8s("team-a"), None)).await;
    let (_, taken, _) = last_create_network(&h);
    let creates = h.sim.count("POST /appliance");

    let cases = [
        // Another tenant's switch.
        (
            json!({"switchID": CF_SWITCH}),
            StatusCode::BAD_REQUEST,
            "switchID",
        ),
        // A switch in no pool, fully specified.
        (good_parameters(), StatusCode::BAD_REQUEST, "switchID"),
        // The context's subnet, outside the range handed out.
        (
            json!({"ipaddress": "10.1.0.200"}),
            StatusCode::BAD_REQUEST,
            "outside the addresses",
        ),
        // Reserved by the operator.
        (
            json!({"ipaddress": "10.1.0.20"}),
            StatusCode::BAD_REQUEST,
            "not a usable address",
        ),
        (
            json!({"defaultRoute": "10.1.0.254"}),
            StatusCode::BAD_REQUEST,
            "defaultRoute",
        ),
        (json!({"zone": "tk1a"}), StatusCode::BAD_REQUEST, "zone"),
        // Already leased to the first instance.
        (
            json!({"ipaddress": taken}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "already in use",
        ),
    ];
    for (parameters, expected, words) in cases {
        let id = new_id("refused");
        let (status, reply) = put(&h, &id, body(k8s("team-a"), Some(parameters.clone()))).await;
        assert_eq!(status, expected, "{parameters}: {reply}");
        assert!(
            reply["description"]
                .as_str()
                .unwrap_or_default()
                .contains(words),
            "{parameters}: {reply}"
        );
        let (status, _, _) = h
            .call(
                Method::GET,
                &format!("/v2/service_instances/{id}/last_operation"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{parameters}: no record");
    }
    assert_eq!(h.sim.count("POST /appliance"), creates, "no create");
    assert_eq!(leases(&h, K8S_SWITCH).await.len(), 1);

    // A free address of the context's own pool may be named.
    let free = if taken == "10.1.0.50" {
        "10.1.0.49"
    } else {
        "10.1.0.50"
    };
    let id = new_id("named");
    let (status, reply) = put(
        &h,
        &id,
        body(k8s("team-a"), Some(json!({"ipaddress": free}))),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(last_create_network(&h).1, free);
}

#[tokio::test]
async fn the_any_policy_keeps_explicit_networks_but_never_gives_an_address_twice() {
    let h = Harness::start_with(pooled(5, "any")).await;
    // A network outside every pool, as before pools existed.
    let (status, reply) = put(
        &h,
        &new_id("own"),
        body(k8s("team-a"), Some(good_parameters())),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(last_create_network(&h).0, "112233445566");
    // An address on a pool's switch outside its range is leased too.
    let explicit = json!({"switchID": CF_SWITCH, "ipaddress": "10.2.0.200", "maskLen": 24, "defaultRoute": "10.2.0.1"});
    let (status, reply) = put(
        &h,
        &new_id("a"),
        body(k8s("team-a"), Some(explicit.clone())),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let (status, reply) = put(&h, &new_id("b"), body(k8s("team-a"), Some(explicit))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
}

#[tokio::test]
async fn a_released_lease_is_handed_out_again() {
    let h = Harness::start_with(pooled(1, "pool")).await;
    let first = new_id("first");
    ready(&h, &first, body(k8s("x"), None)).await;
    let (_, address, _) = last_create_network(&h);
    let (status, reply) = put(&h, &new_id("waiting"), body(k8s("x"), None)).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "full while held: {reply}"
    );
    let (status, _) = h.deprovision(&first, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.poll(&first).await["state"], "succeeded");
    let second = new_id("second");
    ready(&h, &second, body(k8s("x"), None)).await;
    assert_eq!(last_create_network(&h).1, address, "the same address again");
    assert_eq!(leases(&h, SHARED_SWITCH).await, [(address, second)]);
}

#[tokio::test]
async fn a_lease_whose_instance_never_got_an_appliance_is_reclaimed() {
    let h = Harness::start_with(pooled(1, "pool")).await;
    let only: Ipv4Addr = "10.3.0.10".parse().unwrap();

    // A lease left by an instance that has no record at all.
    let ghost = Lease {
        instance_id: "ghost".into(),
        network: "shared".into(),
        since: 0,
    };
    h.store
        .write(vec![WriteOp::Put {
            item: Item {
                key: lease_key(SHARED_SWITCH, only),
                version: 1,
                expires_at: None,
                data: serde_json::to_string(&ghost).unwrap(),
            },
            cond: Cond::Absent,
        }])
        .await
        .unwrap();
    let failing = new_id("failing");
    // An appliance of someone else carries the name this instance's appliance would get: its
    // provision fails before any create, holding the only address.
    let mut squatter = crate::support::sacloud::create_request(&format!("osb-{failing}"));
    squatter.description = "someone else's".into();
    h.app
        .sakura
        .create("is1a", &squatter)
        .await
        .expect("created");
    let (status, reply) = put(&h, &failing, body(k8s("x"), None)).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the ghost's lease was reclaimed: {reply}"
    );
    let last = h.poll(&failing).await;
    assert_eq!(last["state"], "failed", "{last}");
    assert_eq!(
        leases(&h, SHARED_SWITCH).await,
        [(only.to_string(), failing.clone())]
    );

    // The failed instance never had an appliance: its address goes to the next provision.
    let next = new_id("next");
    ready(&h, &next, body(k8s("x"), None)).await;
    assert_eq!(last_create_network(&h).1, only.to_string());
    assert_eq!(
        leases(&h, SHARED_SWITCH).await,
        [(only.to_string(), next.clone())]
    );
    // Deprovisioning the failed instance leaves the new holder's lease alone.
    let (status, _) = h.deprovision(&failing, MARIADB, MARIADB_10G).await;
    assert!(
        status == StatusCode::OK || status == StatusCode::ACCEPTED,
        "{status}"
    );
    if status == StatusCode::ACCEPTED {
        h.poll(&failing).await;
    }
    assert_eq!(leases(&h, SHARED_SWITCH).await, [(only.to_string(), next)]);
    let record = h
        .store
        .get(&Key::instance(&failing))
        .await
        .unwrap()
        .expect("tombstone");
    assert!(record.data.contains("\"gone\""), "{}", record.data);
}

#[tokio::test]
async fn the_appliance_carries_owner_tags_and_a_description_with_escaped_values() {
    let h = Harness::start_with(pooled(5, "pool")).await;
    let id = new_id("tags");
    let mut context = cf("space-1");
    context["space_name"] = json!("dev\nosb-sacloud service instance forged");
    context["organization_name"] = json!("@MariaDB acme");
    put(&h, &id, body(context, None)).await;
    let (_, _, appliance) = last_create_network(&h);
    let tags: Vec<String> = serde_json::from_value(appliance["Tags"].clone()).unwrap();
    assert_eq!(tags[0], "@osb-sacloud");
    assert!(
        tags.contains(&"platform=cloudfoundry".to_owned()),
        "{tags:?}"
    );
    assert!(tags.contains(&"org=_MariaDB_acme".to_owned()), "{tags:?}");
    assert!(tags.contains(&"network=cf-space-1".to_owned()), "{tags:?}");
    assert!(tags.iter().any(|t| t.starts_with("instance=")), "{tags:?}");
    assert!(tags.len() <= 10);
    for t in &tags {
        assert!(t.len() <= 32, "{t}");
        assert!(!t.starts_with('@') || t == "@osb-sacloud", "{t}");
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "@._:=-".contains(c)),
            "{t}"
        );
    }
    let description = appliance["Description"].as_str().unwrap();
    assert_eq!(
        description.lines().next(),
        Some(format!("osb-sacloud service instance {id}").as_str())
    );
    assert_eq!(
        description.matches("osb-sacloud service instance").count(),
        2,
        "{description}"
    );
    assert_eq!(
        description
            .lines()
            .filter(|l| l.starts_with("osb-sacloud service instance"))
            .count(),
        1,
        "no forged line: {description}"
    );
    assert!(
        description.contains("space: \"dev\\nosb-sacloud"),
        "{description}"
    );
    assert!(description.chars().count() <= 512);
    assert_eq!(h.poll(&id).await["state"], "succeeded");
}

#[tokio::test]
async fn fake_mode_brings_a_pool_so_a_provision_without_parameters_works() {
    let sim = osb_sacloud::sacloud::simulator::Simulator::start(
        simulator_config(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let mut env = broker_env(&sim);
    env.insert("SAKURACLOUD_FAKE_MODE".into(), "1".into());
    let config = config_from(&env);
    assert!(config.settings.networks.is_some(), "fake mode has a pool");
    let store: std::sync::Arc<dyn osb_sacloud::store::Store> =
        std::sync::Arc::new(osb_sacloud::store::memory::MemoryStore::new());
    let app = osb_sacloud::app::build_with_store(&config, store.clone())
        .await
        .expect("builds");
    let id = new_id("fake");
    let req = with_body(
        axum::http::Request::builder()
            .method(Method::PUT)
            .uri(format!(
                "/v2/service_instances/{id}?accepts_incomplete=true"
            ))
            .header("X-Broker-API-Version", "2.17")
            .header("Authorization", basic(USER, PASSWORD)),
        Some(body(k8s("default"), None)),
    );
    let (status, _, reply) = send(&app.router, req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let item = store
        .get(&Key::instance(&id))
        .await
        .unwrap()
        .expect("record");
    let record: Value = serde_json::from_str(&item.data).unwrap();
    assert_eq!(record["lease"]["network"], "fake", "{record}");
    assert!(
        record["params"]["ipaddress"]
            .as_str()
            .unwrap()
            .starts_with("192.168.100."),
        "{record}"
    );
}
