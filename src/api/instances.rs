//! Service instance endpoints: translate HTTP to broker calls and broker results to status codes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{
    OsbJson, OsbPath, OsbQuery, RawBody, Version, check_id, check_platform_ids,
    ids_from_query_or_body, required,
};
use crate::broker::{
    Broker, DeprovisionOutcome, DeprovisionRequest, LastOperation, ProvisionOutcome,
    ProvisionRequest, UpdateOutcome, UpdateRequest,
};
use crate::catalog::ApiVersion;

#[derive(Deserialize)]
pub struct ProvisionBody {
    service_id: Option<String>,
    plan_id: Option<String>,
    parameters: Option<Value>,
    context: Option<Value>,
    maintenance_info: Option<Value>,
    organization_guid: Option<Value>,
    space_guid: Option<Value>,
}

#[derive(Deserialize)]
pub struct UpdateBody {
    service_id: Option<String>,
    plan_id: Option<String>,
    parameters: Option<Value>,
    maintenance_info: Option<Value>,
}

/// The catalog declares no `maintenance_info`, so a platform that sends a version is out of step.
fn check_maintenance_info(info: &Option<Value>) -> Result<(), ApiError> {
    match info {
        Some(Value::Object(m)) if m.get("version").is_some_and(|v| !v.is_null()) => {
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "MaintenanceInfoConflict",
                "this plan declares no maintenance_info; fetch the catalog again and send none",
            ))
        }
        _ => Ok(()),
    }
}

fn operation_body(status: StatusCode, operation: String) -> Response {
    (status, Json(json!({ "operation": operation }))).into_response()
}

fn empty(status: StatusCode) -> Response {
    (status, Json(json!({}))).into_response()
}

/// `PUT /v2/service_instances/{instance_id}`.
pub async fn put_instance(
    State(broker): State<Arc<Broker>>,
    OsbPath(instance_id): OsbPath<String>,
    query: OsbQuery,
    OsbJson(body): OsbJson<ProvisionBody>,
) -> Result<Response, ApiError> {
    check_id("instance", &instance_id)?;
    let accepts_incomplete = query.accepts_incomplete()?;
    let service_id = required(body.service_id, "service_id")?;
    let plan_id = required(body.plan_id, "plan_id")?;
    check_platform_ids(body.organization_guid.as_ref(), body.space_guid.as_ref())?;
    check_maintenance_info(&body.maintenance_info)?;
    let outcome = broker
        .provision(ProvisionRequest {
            instance_id,
            service_id,
            plan_id,
            parameters: body.parameters,
            context: body.context,
            organization_guid: body
                .organization_guid
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_owned),
            space_guid: body
                .space_guid
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_owned),
            accepts_incomplete,
        })
        .await?;
    Ok(match outcome {
        ProvisionOutcome::Started { operation } | ProvisionOutcome::InProgress { operation } => {
            operation_body(StatusCode::ACCEPTED, operation)
        }
        ProvisionOutcome::Exists => empty(StatusCode::OK),
    })
}

/// `PATCH /v2/service_instances/{instance_id}`.
pub async fn patch_instance(
    State(broker): State<Arc<Broker>>,
    OsbPath(instance_id): OsbPath<String>,
    query: OsbQuery,
    OsbJson(body): OsbJson<UpdateBody>,
) -> Result<Response, ApiError> {
    check_id("instance", &instance_id)?;
    let accepts_incomplete = query.accepts_incomplete()?;
    let service_id = required(body.service_id, "service_id")?;
    check_maintenance_info(&body.maintenance_info)?;
    let outcome = broker
        .update(UpdateRequest {
            instance_id,
            service_id,
            plan_id: body.plan_id,
            parameters: body.parameters,
            accepts_incomplete,
        })
        .await?;
    Ok(match outcome {
        UpdateOutcome::InProgress { operation } => operation_body(StatusCode::ACCEPTED, operation),
        UpdateOutcome::Unchanged => empty(StatusCode::OK),
    })
}

/// `DELETE /v2/service_instances/{instance_id}`.
pub async fn delete_instance(
    State(broker): State<Arc<Broker>>,
    OsbPath(instance_id): OsbPath<String>,
    query: OsbQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    check_id("instance", &instance_id)?;
    let accepts_incomplete = query.accepts_incomplete()?;
    let (service_id, plan_id) = ids_from_query_or_body(&query, &body)?;
    let outcome = broker
        .deprovision(DeprovisionRequest {
            instance_id,
            service_id,
            plan_id,
            accepts_incomplete,
        })
        .await?;
    Ok(match outcome {
        DeprovisionOutcome::InProgress { operation } => {
            operation_body(StatusCode::ACCEPTED, operation)
        }
        DeprovisionOutcome::Done => empty(StatusCode::OK),
    })
}

/// `GET /v2/service_instances/{instance_id}`.
/// The parameters are shown as sent (platforms such as provider-osb compare them with their
/// spec); where the database was put, pool or not, is in `metadata.attributes.network` (2.16+).
pub async fn get_instance(
    State(broker): State<Arc<Broker>>,
    Version(version): Version,
    OsbPath(instance_id): OsbPath<String>,
) -> Result<Response, ApiError> {
    check_id("instance", &instance_id)?;
    let view = broker.get_instance(&instance_id).await?;
    let mut body = json!({ "service_id": view.service_id, "plan_id": view.plan_id, "parameters": view.parameters });
    if version.at_least(16) {
        body["metadata"] = json!({"labels": {}, "attributes": {"network": view.network}});
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// `GET /v2/service_instances/{instance_id}/last_operation`. The `operation` parameter is
/// accepted but not needed: the instance's current or latest operation is reported.
pub async fn instance_last_operation(
    State(broker): State<Arc<Broker>>,
    Version(version): Version,
    OsbPath(instance_id): OsbPath<String>,
) -> Result<Response, ApiError> {
    check_id("instance", &instance_id)?;
    let last = broker
        .last_operation(&instance_id)
        .await
        .map_err(|e| unknown_is_gone_before_2_16(e, version))?;
    Ok(last_operation_response(
        &last,
        version,
        broker.settings().retry_after,
    ))
}

/// Before 2.16 the OSB spec has no 404 for `last_operation`: an instance the broker does not know is
/// answered 410 Gone, which those platforms take as "deleted".
fn unknown_is_gone_before_2_16(e: crate::broker::Error, version: ApiVersion) -> ApiError {
    match e {
        crate::broker::Error::NotFound(d) if !version.at_least(16) => {
            crate::broker::Error::Gone(d).into()
        }
        e => e.into(),
    }
}

/// The `last_operation` body (fields gated by version) with `Retry-After`.
pub fn last_operation_response(
    last: &LastOperation,
    version: ApiVersion,
    retry_after: u64,
) -> Response {
    let mut body = json!({ "state": last.state.as_osb(), "description": last.description });
    if version.at_least(15) {
        if let Some(usable) = last.instance_usable {
            body["instance_usable"] = json!(usable);
        }
        if let Some(repeatable) = last.update_repeatable {
            body["update_repeatable"] = json!(repeatable);
        }
    }
    let mut response = (StatusCode::OK, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(last: &LastOperation, minor: u16) -> Value {
        let response = last_operation_response(last, ApiVersion { major: 2, minor }, 10);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn a_failed_update_is_usable_and_repeatable_from_2_15() {
        let last = LastOperation {
            state: crate::broker::OpState::Failed,
            description: "settings refused".into(),
            instance_usable: Some(true),
            update_repeatable: Some(true),
        };
        assert_eq!(
            body_of(&last, 15).await,
            json!({"state": "failed", "description": "settings refused",
                   "instance_usable": true, "update_repeatable": true})
        );
        assert_eq!(
            body_of(&last, 14).await,
            json!({"state": "failed", "description": "settings refused"})
        );
    }

    #[tokio::test]
    async fn retry_after_says_the_check_interval() {
        let last = LastOperation {
            state: crate::broker::OpState::InProgress,
            description: "creating".into(),
            instance_usable: None,
            update_repeatable: None,
        };
        let response = last_operation_response(&last, ApiVersion::LATEST, 7);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(
            body_of(&last, 17).await,
            json!({"state": "in progress", "description": "creating"}),
            "fields the broker does not know are left out, never null"
        );
    }

    #[test]
    fn only_a_maintenance_info_version_is_out_of_step() {
        for fine in [
            None,
            Some(json!({})),
            Some(json!({"version": null})),
            Some(json!({"description": "x"})),
            Some(json!("not an object")),
        ] {
            assert!(check_maintenance_info(&fine).is_ok(), "{fine:?}");
        }
        let err = check_maintenance_info(&Some(json!({"version": "1.0.0"}))).unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "MaintenanceInfoConflict")
        );
    }

    #[test]
    fn an_unknown_instance_is_gone_before_2_16_and_not_found_after() {
        let at = |minor| ApiVersion { major: 2, minor };
        let unknown = || crate::broker::Error::NotFound("no such instance".into());
        assert_eq!(
            unknown_is_gone_before_2_16(unknown(), at(15)).status,
            StatusCode::GONE
        );
        assert_eq!(
            unknown_is_gone_before_2_16(unknown(), at(16)).status,
            StatusCode::NOT_FOUND
        );
        let other = crate::broker::Error::Conflict("busy".into());
        assert_eq!(
            unknown_is_gone_before_2_16(other, at(13)).status,
            ApiError::from(crate::broker::Error::Conflict("busy".into())).status,
            "other errors map as everywhere else"
        );
    }
}
