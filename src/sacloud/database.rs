//! The database appliance calls (`/appliance` with `Class: database`), one method per API
//! operation. Each says which HTTP call it makes and whether it may be retried.

use http::Method;

use super::client::{Client, Retry};
use super::error::Error;
use super::model::{CreateDatabase, Database, DatabaseStatus, SettingsDoc};
use super::naked::{ApplianceEnvelope, FindEnvelope, StatusEnvelope};
use super::request::{
    CreateEnvelope, FindQuery, Labels, LabelsEnvelope, ShutdownBody, UpdateEnvelope,
};

/// Page size of a find; an exact name normally matches at most one appliance.
const FIND_PAGE: u64 = 100;

impl Client {
    /// `GET /appliance?{"Count":..,"From":..,"Filter":{"Class":"database","Name":["<name>"]}}`,
    /// page by page, keeping only appliances whose name really is `name` (the server's match is
    /// trusted but checked).
    pub async fn find_by_exact_name(&self, zone: &str, name: &str) -> Result<Vec<Database>, Error> {
        let mut found = Vec::new();
        let mut from = 0;
        loop {
            let query = FindQuery::exact_name(name, from, FIND_PAGE).to_query_string();
            let page: FindEnvelope = self
                .call_json(
                    Method::GET,
                    zone,
                    "/appliance",
                    Some(&query),
                    None,
                    Retry::BusyOrTransport,
                )
                .await?;
            let items = page.appliances.unwrap_or_default();
            let got = items.len() as u64;
            for item in items {
                let class_ok = item.class.is_empty() || item.class == "database";
                if class_ok && item.name == name {
                    found.push(Database::try_from(item)?);
                }
            }
            from += got;
            if got == 0 || from >= page.total.unwrap_or(0) {
                return Ok(found);
            }
        }
    }

    /// `POST /appliance`. Made once and never retried, even on 503: a create that failed on
    /// the way back may still have made the appliance, so the caller must look it up by name.
    pub async fn create(&self, zone: &str, req: &CreateDatabase) -> Result<Database, Error> {
        let body = to_json(&CreateEnvelope::new(req))?;
        self.appliance(Method::POST, zone, "/appliance", Some(body), Retry::Never)
            .await
    }

    /// `GET /appliance/{id}`.
    pub async fn read(&self, zone: &str, id: u64) -> Result<Database, Error> {
        self.appliance(
            Method::GET,
            zone,
            &format!("/appliance/{id}"),
            None,
            Retry::BusyOrTransport,
        )
        .await
    }

    /// `GET /appliance/{id}/status`: the appliance agent's own view (`SettingsResponse`).
    pub async fn status(&self, zone: &str, id: u64) -> Result<DatabaseStatus, Error> {
        let env: StatusEnvelope = self
            .call_json(
                Method::GET,
                zone,
                &format!("/appliance/{id}/status"),
                None,
                None,
                Retry::BusyOrTransport,
            )
            .await?;
        Ok(DatabaseStatus::from_naked(env))
    }

    /// `PUT /appliance/{id}` with `Settings` whole, as the API replaces them (build `settings`
    /// from the read with [`crate::sacloud::SettingsDoc::with_change`]), and the `SettingsHash`
    /// last read if given: a stale hash answers 409; without one the update is not checked.
    /// The new settings take effect after [`Client::apply_config`].
    pub async fn update_settings(
        &self,
        zone: &str,
        id: u64,
        settings: &SettingsDoc,
        settings_hash: Option<&str>,
    ) -> Result<Database, Error> {
        let body = to_json(&UpdateEnvelope::new(settings, settings_hash))?;
        self.appliance(
            Method::PUT,
            zone,
            &format!("/appliance/{id}"),
            Some(body),
            Retry::Busy,
        )
        .await
    }

    /// `PUT /appliance/{id}` with the description and tags only (no `Settings`, which the API
    /// then leaves as they are).
    pub async fn update_labels(
        &self,
        zone: &str,
        id: u64,
        description: &str,
        tags: &[String],
    ) -> Result<Database, Error> {
        let body = to_json(&LabelsEnvelope {
            appliance: Labels { description, tags },
        })?;
        self.appliance(
            Method::PUT,
            zone,
            &format!("/appliance/{id}"),
            Some(body),
            Retry::Busy,
        )
        .await
    }

    /// `PUT /appliance/{id}/config`: apply saved settings to the running appliance.
    pub async fn apply_config(&self, zone: &str, id: u64) -> Result<(), Error> {
        let path = format!("/appliance/{id}/config");
        self.call(Method::PUT, zone, &path, None, None, Retry::Busy)
            .await?;
        Ok(())
    }

    /// `PUT /appliance/{id}/power`. 409 when already up, or `still_creating`.
    pub async fn boot(&self, zone: &str, id: u64) -> Result<(), Error> {
        let path = format!("/appliance/{id}/power");
        self.call(Method::PUT, zone, &path, None, None, Retry::Busy)
            .await?;
        Ok(())
    }

    /// `DELETE /appliance/{id}/power` with `{"Force":true}` when `force`. 409 when already
    /// down, or `still_creating`.
    pub async fn shutdown(&self, zone: &str, id: u64, force: bool) -> Result<(), Error> {
        let path = format!("/appliance/{id}/power");
        let body = to_json(&ShutdownBody { force })?;
        self.call(Method::DELETE, zone, &path, None, Some(body), Retry::Busy)
            .await?;
        Ok(())
    }

    /// `DELETE /appliance/{id}`. The appliance must be down (409 otherwise); 404 once gone.
    pub async fn delete(&self, zone: &str, id: u64) -> Result<(), Error> {
        let path = format!("/appliance/{id}");
        self.call(Method::DELETE, zone, &path, None, None, Retry::Busy)
            .await?;
        Ok(())
    }
}

impl Client {
    /// A call whose answer is one appliance (`{"Appliance": {...}}`).
    async fn appliance(
        &self,
        method: Method,
        zone: &str,
        path: &str,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<Database, Error> {
        let env: ApplianceEnvelope = self
            .call_json(method, zone, path, None, body, retry)
            .await?;
        Database::try_from(env.appliance)
    }
}

fn to_json<T: serde::Serialize>(body: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body).map_err(|e| Error::Parse(format!("could not encode request: {e}")))
}
