//! Requests that arrive in the windows between an operation's steps, found by the random
//! sequences and pinned down here step by step.

use axum::http::{Method, StatusCode};

use crate::support::hostile::*;
use crate::support::*;

/// Between any two polls of a deprovision (the appliance shutting down, deleted, then the
/// instance tombstoned) a GET of a binding answers a 2xx or a JSON 4xx: the appliance being
/// gone from SAKURA Cloud before the broker has noticed is no upstream failure.
#[tokio::test]
async fn get_binding_between_the_steps_of_a_deprovision() {
    let h = Harness::start().await;
    let id = new_id("goingaway");
    h.ready_instance(&id, MARIADB, MARIADB_10G).await;
    let binding = format!("/v2/service_instances/{id}/service_bindings/b");
    let (status, _, body) = h
        .call(Method::PUT, &binding, Some(bind_body(MARIADB, MARIADB_10G)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = h.deprovision(&id, MARIADB, MARIADB_10G).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let poll = format!("/v2/service_instances/{id}/last_operation");
    let mut seen = Vec::new();
    for _ in 0..400 {
        for path in [&binding, &format!("{binding}/last_operation")] {
            let answer = expect_sane(&h, with_body(get(path), None)).await;
            seen.push(answer.status.as_u16());
        }
        let (status, _, last) = h.call(Method::GET, &poll, None).await;
        assert_eq!(status, StatusCode::OK, "{last}");
        if last["state"] != "in progress" {
            assert_eq!(last["state"], "succeeded", "{last}");
            let (status, _, _) = h.call(Method::GET, &binding, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            seen.dedup();
            eprintln!("GET binding during the deprovision answered {seen:?}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the deprovision never finished");
}

fn get(path: &str) -> axum::http::request::Builder {
    axum::http::Request::builder()
        .uri(path)
        .header("X-Broker-API-Version", "2.17")
        .header("Authorization", basic(USER, PASSWORD))
}
