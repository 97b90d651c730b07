//! Service binding endpoints. Binds are synchronous: 201 when made, 200 when identical.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{OsbJson, OsbPath, OsbQuery, Version, check_id, required};
use super::instances::last_operation_response;
use crate::broker::{BindOutcome, BindRequest, Broker, UnbindRequest};

#[derive(Deserialize)]
pub struct BindBody {
    service_id: Option<String>,
    plan_id: Option<String>,
    parameters: Option<Value>,
    bind_resource: Option<Value>,
    app_guid: Option<String>,
}

fn check_ids(instance_id: &str, binding_id: &str) -> Result<(), ApiError> {
    check_id("instance", instance_id)?;
    check_id("binding", binding_id)
}

/// `PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
pub async fn put_binding(
    State(broker): State<Arc<Broker>>,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    query: OsbQuery,
    OsbJson(body): OsbJson<BindBody>,
) -> Result<Response, ApiError> {
    check_ids(&instance_id, &binding_id)?;
    // Binds are synchronous, but the parameter is the platform's to send: it must still be valid.
    query.accepts_incomplete()?;
    let service_id = required(body.service_id, "service_id")?;
    let plan_id = required(body.plan_id, "plan_id")?;
    // 2.13 platforms may send only the deprecated app_guid; keep it as the bind resource.
    let bind_resource = body
        .bind_resource
        .or(body.app_guid.map(|g| json!({ "app_guid": g })));
    let outcome = broker
        .bind(BindRequest {
            instance_id,
            binding_id,
            service_id,
            plan_id,
            parameters: body.parameters,
            bind_resource,
        })
        .await?;
    let (status, view) = match outcome {
        BindOutcome::Created(view) => (StatusCode::CREATED, view),
        BindOutcome::Exists(view) => (StatusCode::OK, view),
    };
    Ok((status, Json(json!({ "credentials": view.credentials }))).into_response())
}

/// `GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
pub async fn get_binding(
    State(broker): State<Arc<Broker>>,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
) -> Result<Response, ApiError> {
    check_ids(&instance_id, &binding_id)?;
    let view = broker.get_binding(&instance_id, &binding_id).await?;
    let body = json!({ "credentials": view.credentials, "parameters": view.parameters });
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`.
pub async fn delete_binding(
    State(broker): State<Arc<Broker>>,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    query: OsbQuery,
) -> Result<Response, ApiError> {
    check_ids(&instance_id, &binding_id)?;
    query.accepts_incomplete()?;
    let service_id = query.required("service_id")?;
    let plan_id = query.required("plan_id")?;
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
