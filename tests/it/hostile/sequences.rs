//! Hostile sequences: well-formed requests in any order on a few ids (provision twice with other
//! plans, update while provisioning, bind while deprovisioning, unbind what was never bound,
//! poll what is gone), with time passing and appliances failing under the broker. Whatever the
//! order, every answer is a 2xx or a JSON 4xx.

use std::cell::Cell;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, header};
use osb_sacloud::sacloud::simulator::Faults;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::hostile::*;
use crate::support::logs::loopback_parameters;
use crate::support::*;

/// Cases per run of the property below, and the most steps in one case.
const CASES: u32 = 48;
const MAX_STEPS: usize = 24;
/// Cases with real servers behind the appliances (each dedicated bind is a few statements).
const BACKED_CASES: u32 = 24;

#[derive(Debug, Clone)]
enum Op {
    Provision {
        i: usize,
        postgres: bool,
        big: bool,
        accepts: bool,
    },
    Update {
        i: usize,
        rotate: bool,
        port: Option<u16>,
        plan: bool,
        accepts: bool,
    },
    Deprovision {
        i: usize,
        accepts: bool,
        wrong_plan: bool,
    },
    Bind {
        i: usize,
        b: usize,
        postgres: bool,
        resource: bool,
        dedicated: bool,
    },
    Unbind {
        i: usize,
        b: usize,
    },
    GetInstance {
        i: usize,
    },
    GetBinding {
        i: usize,
        b: usize,
    },
    LastOperation {
        i: usize,
    },
    BindingLastOperation {
        i: usize,
        b: usize,
    },
    Wait {
        ms: u64,
    },
    /// Poll `last_operation` until the operation ends (or the instance is unknown).
    Settle {
        i: usize,
    },
    FailNextCreate,
    FailAppliance {
        i: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0usize..2;
    let b = 0usize..2;
    prop_oneof![
        3 => (i.clone(), prop::bool::weighted(0.2), prop::bool::weighted(0.2), prop::bool::weighted(0.9))
            .prop_map(|(i, postgres, big, accepts)| Op::Provision { i, postgres, big, accepts }),
        2 => (i.clone(), any::<bool>(), prop::option::weighted(0.3, 1024u16..2000), prop::bool::weighted(0.1), prop::bool::weighted(0.9))
            .prop_map(|(i, rotate, port, plan, accepts)| Op::Update { i, rotate, port, plan, accepts }),
        2 => (i.clone(), prop::bool::weighted(0.9), prop::bool::weighted(0.1))
            .prop_map(|(i, accepts, wrong_plan)| Op::Deprovision { i, accepts, wrong_plan }),
        3 => (i.clone(), b.clone(), prop::bool::weighted(0.1), any::<bool>(), any::<bool>())
            .prop_map(|(i, b, postgres, resource, dedicated)| Op::Bind { i, b, postgres, resource, dedicated }),
        2 => (i.clone(), b.clone()).prop_map(|(i, b)| Op::Unbind { i, b }),
        1 => i.clone().prop_map(|i| Op::GetInstance { i }),
        1 => (i.clone(), b.clone()).prop_map(|(i, b)| Op::GetBinding { i, b }),
        4 => i.clone().prop_map(|i| Op::LastOperation { i }),
        1 => (i.clone(), b).prop_map(|(i, b)| Op::BindingLastOperation { i, b }),
        2 => (0u64..120).prop_map(|ms| Op::Wait { ms }),
        3 => (0usize..2).prop_map(|i| Op::Settle { i }),
        1 => Just(Op::FailNextCreate),
        1 => i.prop_map(|i| Op::FailAppliance { i }),
    ]
}

fn ids(postgres: bool, big: bool) -> (&'static str, &'static str) {
    match (postgres, big) {
        (false, false) => (MARIADB, MARIADB_10G),
        (true, false) => (POSTGRES, POSTGRES_10G),
        // Another MariaDB plan: the second of the service's plans in the catalog.
        (_, true) => (MARIADB, "d4591cca-6361-4957-bfad-3f5e84ef2215"),
    }
}

/// The ids one case works on, and whether real servers back the appliances.
struct World {
    instances: [String; 2],
    /// Run-unique: dedicated user names derive from binding ids, on shared servers.
    bindings: [String; 2],
    backed: bool,
}

/// The method, path-and-query and body an operation sends; `None` for the non-HTTP ones.
fn request_of(op: &Op, w: &World) -> Option<(Method, String, Option<Value>)> {
    let base = |i: usize| format!("/v2/service_instances/{}", w.instances[i]);
    let binding = |i: usize, b: usize| format!("{}/service_bindings/{}", base(i), w.bindings[b]);
    let incomplete = |accepts: bool| {
        if accepts {
            "accepts_incomplete=true"
        } else {
            ""
        }
    };
    Some(match *op {
        Op::Provision {
            i,
            postgres,
            big,
            accepts,
        } => {
            let (s, p) = ids(postgres, big);
            let mut body = provision_body(s, p);
            if w.backed {
                body["parameters"] = loopback_parameters();
            }
            (
                Method::PUT,
                format!("{}?{}", base(i), incomplete(accepts)),
                Some(body),
            )
        }
        Op::Update {
            i,
            rotate,
            port,
            plan,
            accepts,
        } => {
            let mut params = json!({ "rotateAdminPassword": rotate });
            // A backed appliance's real server does not move with its port.
            if let Some(port) = port.filter(|_| !w.backed) {
                params["port"] = json!(port);
            }
            let mut body = json!({"service_id": MARIADB, "parameters": params});
            if plan {
                body["plan_id"] = json!(ids(false, true).1);
            }
            (
                Method::PATCH,
                format!("{}?{}", base(i), incomplete(accepts)),
                Some(body),
            )
        }
        Op::Deprovision {
            i,
            accepts,
            wrong_plan,
        } => {
            let plan = if wrong_plan {
                POSTGRES_10G
            } else {
                MARIADB_10G
            };
            let q = format!(
                "{}&service_id={MARIADB}&plan_id={plan}",
                incomplete(accepts)
            );
            (Method::DELETE, format!("{}?{q}", base(i)), None)
        }
        Op::Bind {
            i,
            b,
            postgres,
            resource,
            dedicated,
        } => {
            let (s, p) = ids(postgres, false);
            let mut body = bind_body(s, p);
            // Without real servers behind the appliances a dedicated bind dials nothing.
            let mode = if dedicated && w.backed {
                "dedicated"
            } else {
                "shared"
            };
            body["parameters"] = json!({ "mode": mode });
            if !resource {
                body.as_object_mut()?.remove("bind_resource");
                body["app_guid"] = json!("app");
            }
            (Method::PUT, binding(i, b), Some(body))
        }
        Op::Unbind { i, b } => (
            Method::DELETE,
            format!(
                "{}?service_id={MARIADB}&plan_id={MARIADB_10G}",
                binding(i, b)
            ),
            None,
        ),
        Op::GetInstance { i } => (Method::GET, base(i), None),
        Op::GetBinding { i, b } => (Method::GET, binding(i, b), None),
        Op::LastOperation { i } => (Method::GET, format!("{}/last_operation", base(i)), None),
        Op::BindingLastOperation { i, b } => (
            Method::GET,
            format!("{}/last_operation", binding(i, b)),
            None,
        ),
        Op::Wait { .. } | Op::Settle { .. } | Op::FailNextCreate | Op::FailAppliance { .. } => {
            return None;
        }
    })
}

/// Poll `id` (each answer judged) until its operation is no longer in progress, for at most
/// about a second: an update on an appliance that failed under it waits for its deadline.
fn settle(
    t: &Hostile,
    id: &str,
    headers: &[(axum::http::HeaderName, HeaderValue)],
) -> Result<(), TestCaseError> {
    let uri = format!("/v2/service_instances/{id}/last_operation");
    for _ in 0..50 {
        let answer = t.check(request(Method::GET, &uri, headers, Body::empty())?)?;
        let state = answer
            .json()
            .and_then(|v| v["state"].as_str().map(str::to_owned));
        if state.as_deref() != Some("in progress") {
            break;
        }
        t.rt.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
    }
    Ok(())
}

/// Run `cases` random sequences against `t`; returns a summary for the test's output.
fn sequences(t: &Hostile, cases: u32, backed: bool) -> String {
    let mut headers = standard_headers();
    headers.push((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    let steps = Cell::new(0usize);
    let ran = Cell::new(0u32);
    let result = runner(cases).run(&vec(op(), 1..MAX_STEPS), |ops| {
        ran.set(ran.get() + 1);
        let w = World {
            instances: [new_id("seq"), new_id("seq")],
            bindings: [new_id("sb"), new_id("sb")],
            backed,
        };
        // The first instance starts ready, so the steps also reach bindings and updates.
        let start = [
            Op::Provision {
                i: 0,
                postgres: false,
                big: false,
                accepts: true,
            },
            Op::Settle { i: 0 },
        ];
        for op in start.iter().chain(&ops) {
            steps.set(steps.get() + 1);
            match op {
                Op::Wait { ms } => {
                    t.rt.block_on(async { tokio::time::sleep(Duration::from_millis(*ms)).await })
                }
                Op::Settle { i } => settle(t, &w.instances[*i], &headers)?,
                Op::FailNextCreate => t.h.sim.set_faults(Faults {
                    failed_creates: 1,
                    ..Faults::default()
                }),
                Op::FailAppliance { i } => {
                    let name = format!("osb-{}", w.instances[*i]);
                    if let Some(a) = t.h.sim.appliances().into_iter().find(|a| a.name == name) {
                        t.h.sim.fail_appliance(a.id);
                    }
                }
                _ => {
                    let (method, uri, body) = request_of(op, &w).expect("an HTTP op");
                    let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
                    t.check(request(method, &uri, &headers, body)?)?;
                }
            }
        }
        Ok(())
    });
    t.h.sim.set_faults(Faults::default());
    if backed {
        // Drops every appliance's admin user, database and binding users from the servers.
        t.rt.block_on(t.h.sim.reset());
    }
    if let Err(e) = result {
        panic!("{e}");
    }
    format!(
        "{} cases, {} steps; statuses {}",
        ran.get(),
        steps.get(),
        t.statuses()
    )
}

#[test]
fn any_order_of_requests_gets_2xx_or_json_4xx() {
    let t = Hostile::start();
    eprintln!("hostile sequences: {}", sequences(&t, CASES, false));
}

/// The same with real servers behind the appliances, so dedicated binds and unbinds run too.
#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[test]
fn any_order_of_requests_with_dedicated_bindings_gets_2xx_or_json_4xx() {
    let t = Hostile::start_backed();
    let summary = sequences(&t, BACKED_CASES, true);
    eprintln!("hostile sequences (dedicated): {summary}");
}
