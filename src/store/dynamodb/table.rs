//! Table administration: creating the table for local use and turning on TTL.

use std::time::Duration;

use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};

use super::DynamoStore;
use super::codec::{EXPIRES_AT, PK, SK, built};
use crate::store::{Error, Result};

impl DynamoStore {
    /// Creates the table (on-demand billing, `pk`/`sk` key), waits until it is ACTIVE and turns
    /// on TTL for `expires_at`. An existing table is fine; this is safe to run repeatedly.
    pub async fn create_table(&self) -> Result<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(built(attr(PK))?)
            .attribute_definitions(built(attr(SK))?)
            .key_schema(built(key(PK, KeyType::Hash))?)
            .key_schema(built(key(SK, KeyType::Range))?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateTableError::ResourceInUseException(_))
                ) => {}
            Err(e) => return Err(self.fail("CreateTable", e)),
        }
        self.wait_active().await?;
        self.enable_ttl().await
    }

    async fn wait_active(&self) -> Result<()> {
        for _ in 0..120 {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.fail("DescribeTable", e))?;
            let status = out.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(Error::Backend(format!(
            "dynamodb table {} did not become ACTIVE within 60 s",
            self.table
        )))
    }

    async fn enable_ttl(&self) -> Result<()> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.fail("DescribeTimeToLive", e))?;
        let status = out
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        // Asking again while it is on or turning on is an error in DynamoDB.
        if matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(EXPIRES_AT)
            .enabled(true)
            .build();
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(built(spec)?)
            .send()
            .await
            .map_err(|e| self.fail("UpdateTimeToLive", e))?;
        Ok(())
    }
}
