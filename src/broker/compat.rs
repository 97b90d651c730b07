//! What the platforms that call brokers actually send and expect, kept out of the request
//! handlers so they stay small: whole-parameter PATCHes, parameters shown back as they were sent,
//! the end of a deprovision seen as `succeeded` and later as 410, and binding lifetimes.

use serde_json::{Map, Value, json};

use super::records::{InstanceRecord, InstanceState};
use super::{Broker, Error};
use crate::catalog::{
    CreateOnlyError, CreatedWith, UpdateParams, changes_nothing, strip_repeated_create_only,
};
use crate::store::now_unix;

/// Update parameters that are actions, not settings: never shown back by GET instance.
const ACTIONS: [&str; 1] = ["rotateAdminPassword"];

/// Lay the parameters a platform sent with an update over the stored ones, as sent (GET instance
/// shows what the platform sent, so a platform comparing its spec with it sees no drift).
pub(crate) fn merge_raw_update(parameters: &mut Value, request: Option<&Value>) {
    let Some(Value::Object(sent)) = request else {
        return;
    };
    if !parameters.is_object() {
        *parameters = Value::Object(Map::new());
    }
    if let Value::Object(stored) = parameters {
        for (key, value) in sent {
            if !ACTIONS.contains(&key.as_str()) {
                stored.insert(key.clone(), value.clone());
            }
        }
    }
}

/// When a deprovision ended, from its tombstone's expiry (written as end + `tombstone_ttl`).
pub(crate) fn deprovision_ended_at(expires_at: Option<i64>, tombstone_ttl: i64) -> Option<i64> {
    expires_at.map(|e| e - tombstone_ttl)
}

/// Whether a poll of a deprovisioned instance answers 410 Gone rather than `succeeded`: once
/// `window` seconds have passed since the end (a tombstone of unknown age counts as old).
pub(crate) fn gone_for_good(ended_at: Option<i64>, now: i64, window: i64) -> bool {
    ended_at.is_none_or(|end| now - end >= window)
}

/// The 2.17 binding `metadata` when the operator set a credential lifetime: `expires_at` one
/// lifetime after the binding was made, `renew_before` at four fifths of it, as ISO 8601 UTC.
pub fn binding_metadata(created_at: i64, lifetime: Option<i64>) -> Option<Value> {
    let lifetime = lifetime.filter(|l| *l > 0)?;
    Some(json!({
        "expires_at": iso8601(created_at + lifetime),
        "renew_before": iso8601(created_at + lifetime * 4 / 5),
    }))
}

/// `2026-01-02T03:04:05Z` for Unix seconds (proleptic Gregorian, UTC).
pub(crate) fn iso8601(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date, by 400-year eras of 146,097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

impl Broker {
    /// The parameters of a PATCH with the create-only keys that repeat the instance's values
    /// left out; a create-only key with another value is an unsupported change (422).
    pub(super) fn update_parameters(
        &self,
        record: &InstanceRecord,
        parameters: Option<&Value>,
    ) -> Result<Option<Value>, Error> {
        let created = CreatedWith {
            params: &record.params,
            zone: &record.zone,
        };
        strip_repeated_create_only(parameters, &created).map_err(|e| match e {
            CreateOnlyError::Invalid(e) => Error::BadRequest(e.to_string()),
            CreateOnlyError::Changed(e) => Error::Unprocessable(e.to_string()),
        })
    }

    /// Whether `update` asks for what `record` already has.
    pub(super) fn update_changes_nothing(
        &self,
        record: &InstanceRecord,
        update: &UpdateParams,
    ) -> Result<bool, Error> {
        let engine = self
            .catalog
            .plan(&record.service_id, &record.plan_id)
            .map(|p| p.engine)
            .map_err(|e| {
                Error::internal_from("the stored instance names a plan the catalog lacks", e)
            })?;
        Ok(changes_nothing(update, &record.params, engine))
    }

    /// An update that changes nothing may still spell values differently (`"10.0.0.7"` for
    /// `"10.0.0.7/32"`): keep the platform's spelling, so GET instance shows it. Losing a race
    /// here is harmless (someone else wrote the instance; the next identical PATCH tries again).
    pub(super) async fn keep_sent_parameters(
        &self,
        record: &InstanceRecord,
        sent: Option<&Value>,
    ) -> Result<(), Error> {
        let mut next = record.clone();
        merge_raw_update(&mut next.parameters, sent);
        if next.parameters == record.parameters || record.state != InstanceState::Ready {
            return Ok(());
        }
        self.repo.save_instance(&mut next, None).await.map(|_| ())
    }

    /// The 410 a poll of a deprovisioned instance gets once the `succeeded` window has passed.
    pub(super) fn gone_after_window(
        &self,
        record: &InstanceRecord,
        expires_at: Option<i64>,
    ) -> Option<Error> {
        if record.state != InstanceState::Gone {
            return None;
        }
        let ended = deprovision_ended_at(expires_at, self.settings.tombstone_ttl);
        gone_for_good(ended, now_unix(), self.settings.gone_succeeded_secs).then(|| {
            Error::Gone(format!(
                "service instance {} was deprovisioned",
                record.instance_id
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_parameters_are_merged_as_sent_without_actions() {
        let mut stored =
            json!({"switchID": "112233445566", "allowNetworks": ["10.0.0.0/8"], "port": 3306});
        let sent = json!({"allowNetworks": ["10.0.0.7"], "switchID": 112233445566_u64, "rotateAdminPassword": true});
        merge_raw_update(&mut stored, Some(&sent));
        assert_eq!(
            stored,
            json!({"switchID": 112233445566_u64, "allowNetworks": ["10.0.0.7"], "port": 3306})
        );
        let mut null = Value::Null;
        merge_raw_update(&mut null, Some(&json!({"port": 3307})));
        assert_eq!(null, json!({"port": 3307}));
        merge_raw_update(&mut null, None);
        assert_eq!(null, json!({"port": 3307}));
    }

    #[test]
    fn a_deprovision_answers_succeeded_for_a_window_then_gone() {
        let ended = deprovision_ended_at(Some(1_000 + 86_400), 86_400);
        assert_eq!(ended, Some(1_000));
        assert!(!gone_for_good(ended, 1_000, 300));
        assert!(!gone_for_good(ended, 1_299, 300));
        assert!(gone_for_good(ended, 1_300, 300));
        assert!(
            gone_for_good(ended, 1_000, 0),
            "a zero window is 410 at once"
        );
        assert!(gone_for_good(None, 0, 300));
    }

    #[test]
    fn binding_metadata_only_with_a_lifetime() {
        assert_eq!(binding_metadata(0, None), None);
        assert_eq!(binding_metadata(0, Some(0)), None);
        let m = binding_metadata(1_767_225_600, Some(86_400 * 30)).expect("metadata");
        assert_eq!(m["expires_at"], "2026-01-31T00:00:00Z");
        assert_eq!(m["renew_before"], "2026-01-25T00:00:00Z");
    }

    #[test]
    fn iso8601_matches_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
    }
}
