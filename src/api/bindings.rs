//! Service binding endpoints. Binds are synchronous: 201 when made, 200 when identical.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{
    OsbJson, OsbPath, OsbQuery, RawBody, Version, check_id, ids_from_query_or_body, required,
};
use super::instances::last_operation_response;
use crate::broker::{
    BindOutcome, BindRequest, BindingView, Broker, RotateRequest, UnbindRequest, binding_metadata,
};
use crate::catalog::ApiVersion;

#[derive(Deserialize)]
pub struct BindBody {
    service_id: Option<String>,
    plan_id: Option<String>,
    parameters: Option<Value>,
    bind_resource: Option<Value>,
    app_guid: Option<String>,
    /// 2.17 rotation: the binding whose credentials this one replaces.
    predecessor_binding_id: Option<String>,
}

/// A binding's answer body: `credentials`, `parameters` when asked, and for 2.17 platforms the
/// `metadata` with `expires_at` / `renew_before` when the operator set a credential lifetime.
fn binding_body(
    view: &BindingView,
    version: ApiVersion,
    lifetime: Option<i64>,
    with_parameters: bool,
) -> Value {
    let mut body = json!({ "credentials": view.credentials });
    if with_parameters {
        body["parameters"] = view.parameters.clone();
    }
    if version.at_least(17)
        && let Some(metadata) = binding_metadata(view.created_at, lifetime)
    {
        body["metadata"] = metadata;
    }
    body
}

fn check_ids(instance_id: &str, binding_id: &str) -> Result<(), ApiError> {
    check_id("instance", instance_id)?;
    check_id("binding", binding_id)
}

/// `PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
pub async fn put_binding(
    State(broker): State<Arc<Broker>>,
    Version(version): Version,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    query: OsbQuery,
    OsbJson(body): OsbJson<BindBody>,
) -> Result<Response, ApiError> {
    check_ids(&instance_id, &binding_id)?;
    // Binds are synchronous, but the parameter is the platform's to send: it must still be valid.
    query.accepts_incomplete()?;
    let outcome = match body.predecessor_binding_id {
        Some(predecessor) if version.at_least(17) => {
            check_id("predecessor binding", &predecessor)?;
            broker
                .rotate_binding(RotateRequest {
                    instance_id,
                    binding_id,
                    predecessor_binding_id: predecessor,
                    service_id: body.service_id.filter(|s| !s.is_empty()),
                    plan_id: body.plan_id.filter(|s| !s.is_empty()),
                })
                .await?
        }
        _ => {
            let service_id = required(body.service_id, "service_id")?;
            let plan_id = required(body.plan_id, "plan_id")?;
            // 2.13 platforms may send only the deprecated app_guid; keep it as the bind resource.
            let bind_resource = body
                .bind_resource
                .or(body.app_guid.map(|g| json!({ "app_guid": g })));
            broker
                .bind(BindRequest {
                    instance_id,
                    binding_id,
                    service_id,
                    plan_id,
                    parameters: body.parameters,
                    bind_resource,
                    mode: None,
                })
                .await?
        }
    };
    let (status, view) = match outcome {
        BindOutcome::Created(view) => (StatusCode::CREATED, view),
        BindOutcome::Exists(view) => (StatusCode::OK, view),
    };
    let lifetime = broker.settings().binding_lifetime;
    Ok((status, Json(binding_body(&view, version, lifetime, false))).into_response())
}

/// `GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
pub async fn get_binding(
    State(broker): State<Arc<Broker>>,
    Version(version): Version,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
) -> Result<Response, ApiError> {
    check_ids(&instance_id, &binding_id)?;
    let view = broker.get_binding(&instance_id, &binding_id).await?;
    let lifetime = broker.settings().binding_lifetime;
    let body = binding_body(&view, version, lifetime, true);
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
pub async fn delete_binding(
    State(broker): State<Arc<Broker>>,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    query: OsbQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    check_ids(&instance_id, &binding_id)?;
    query.accepts_incomplete()?;
    let (service_id, plan_id) = ids_from_query_or_body(&query, &body)?;
    broker
        .unbind(UnbindRequest {
            instance_id,
            binding_id,
            service_id,
            plan_id,
        })
        .await?;
    Ok((StatusCode::OK, Json(json!({}))).into_response())
}

/// `GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation`.
pub async fn binding_last_operation(
    State(broker): State<Arc<Broker>>,
    Version(version): Version,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
) -> Result<Response, ApiError> {
    check_ids(&instance_id, &binding_id)?;
    let last = broker
        .binding_last_operation(&instance_id, &binding_id)
        .await?;
    Ok(last_operation_response(
        &last,
        version,
        broker.settings().retry_after,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> BindingView {
        BindingView {
            credentials: json!({"uri": "mysql://u:p@h:3306/db"}),
            parameters: json!({"mode": "shared"}),
            created_at: 1_767_225_600, // 2026-01-01T00:00:00Z
        }
    }

    const V15: ApiVersion = ApiVersion {
        major: 2,
        minor: 15,
    };

    #[test]
    fn the_body_carries_parameters_only_when_asked() {
        let plain = binding_body(&view(), V15, None, false);
        assert_eq!(
            plain,
            json!({"credentials": {"uri": "mysql://u:p@h:3306/db"}})
        );
        let fetched = binding_body(&view(), V15, None, true);
        assert_eq!(fetched["parameters"], json!({"mode": "shared"}));
    }

    #[test]
    fn metadata_only_for_2_17_platforms_and_a_lifetime() {
        let day = 86_400;
        assert!(
            binding_body(&view(), V15, Some(day), false)
                .get("metadata")
                .is_none()
        );
        assert!(
            binding_body(&view(), ApiVersion::LATEST, None, false)
                .get("metadata")
                .is_none()
        );
        let body = binding_body(&view(), ApiVersion::LATEST, Some(day), false);
        assert_eq!(
            body["metadata"],
            json!({"expires_at": "2026-01-02T00:00:00Z", "renew_before": "2026-01-01T19:12:00Z"})
        );
    }

    #[test]
    fn both_ids_are_checked() {
        assert!(check_ids("i-1", "b-1").is_ok());
        for (instance, binding) in [
            ("", "b-1"),
            ("i-1", ""),
            (".", "b-1"),
            ("i-1", "b/1"),
            ("i\u{7}", "b-1"),
        ] {
            let err = check_ids(instance, binding).unwrap_err();
            assert_eq!(
                err.status,
                StatusCode::BAD_REQUEST,
                "{instance:?} {binding:?}"
            );
        }
    }
}
