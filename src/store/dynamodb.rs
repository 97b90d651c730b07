//! DynamoDB store: the state of the broker when it runs on AWS Lambda (or locally against an
//! emulator through `DYNAMODB_ENDPOINT`).
//!
//! One table, key `pk` (S, HASH) / `sk` (S, RANGE); each item also has `version` (N), `data` (S, the
//! record's JSON) and, for tombstones, `expires_at` (N, Unix seconds; the table's TTL attribute).
//! Every read is strongly consistent. Every write carries a `ConditionExpression` equivalent to
//! the store's [`Cond`]; a batch of several ops is one `TransactWriteItems`. DynamoDB's TTL
//! sweeper may lag by days, so expired tombstones are filtered on read and accepted by
//! [`Cond::Absent`] here, never left to the sweeper.
//!
//! API calls per store method (before SDK retries of throttling / 5xx, at most 3 attempts):
//! `get` 1 `GetItem`; `query` 1 `Query` per 1 MB page; `write` of one Put or Delete 1 `PutItem` /
//! `DeleteItem`, of a lone Check 1 `GetItem`, of 2..=100 ops 1 `TransactWriteItems`; `warm_up` 1 `GetItem`.
//!
//! A failed condition is [`Error::Conflict`] and is never retried here: the caller re-reads. A
//! retried attempt whose first try did land may also report a conflict; re-reading then shows the
//! caller its own write. `TransactWriteItems` carries an idempotency token, so its retries are safe.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};

mod codec;
mod table;

use self::codec::{Attrs, EXPIRES_AT, PK, built, condition, item_attrs, key_attrs, parse_item};
use super::memory::cond_holds;
use super::{Cond, Error, Item, Key, Result, Store, WriteOp, is_expired, now_unix};

/// A [`Store`] on one DynamoDB table.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store on `table` with the broker's AWS configuration ([`crate::aws::sdk_config`]);
    /// `endpoint` (from `DYNAMODB_ENDPOINT`) points the client at an emulator.
    pub async fn from_env(table: String, endpoint: Option<String>) -> DynamoStore {
        let config = crate::aws::sdk_config(endpoint.as_deref()).await;
        DynamoStore::new(Client::new(&config), table)
    }

    /// A store on `table` through an already configured client.
    pub fn new(client: Client, table: String) -> DynamoStore {
        DynamoStore { client, table }
    }

    /// The table this store uses.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// A failure of `op` as a backend error: operation, table and DynamoDB's error code and
    /// message (these name attributes, never values); never item data.
    fn fail<E, R>(&self, op: &str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let detail = match err.as_service_error() {
            Some(e) => format!(
                "{}: {}",
                e.code().unwrap_or("unknown error"),
                e.message().unwrap_or("")
            ),
            None => DisplayErrorContext(&err).to_string(),
        };
        Error::Backend(format!(
            "dynamodb {op} on table {} failed: {detail}",
            self.table
        ))
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<()> {
        let c = condition(cond, now_unix());
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_attrs(item)))
            .condition_expression(c.expr)
            .set_expression_attribute_names(Some(c.names))
            .set_expression_attribute_values(Some(c.values))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(
                    PutItemError::ConditionalCheckFailedException(_)
                    | PutItemError::TransactionConflictException(_)
                    | PutItemError::ReplicatedWriteConflictException(_),
                ) => Err(Error::Conflict),
                _ => Err(self.fail("PutItem", e)),
            },
        }
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<()> {
        let c = condition(cond, now_unix());
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .condition_expression(c.expr)
            .set_expression_attribute_names(Some(c.names))
            .set_expression_attribute_values(Some(c.values))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(
                    DeleteItemError::ConditionalCheckFailedException(_)
                    | DeleteItemError::TransactionConflictException(_)
                    | DeleteItemError::ReplicatedWriteConflictException(_),
                ) => Err(Error::Conflict),
                _ => Err(self.fail("DeleteItem", e)),
            },
        }
    }

    /// A lone check needs no write: one consistent read, judged like the memory store judges.
    async fn check(&self, key: &Key, cond: Cond) -> Result<()> {
        let current = self.read(key).await?;
        if cond_holds(current.as_ref(), cond, now_unix()) {
            Ok(())
        } else {
            Err(Error::Conflict)
        }
    }

    /// The stored item, expired or not.
    async fn read(&self, key: &Key) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", e))?;
        out.item()
            .map(|attrs| parse_item(&self.table, attrs))
            .transpose()
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<()> {
        let now = now_unix();
        let mut items = Vec::with_capacity(ops.len());
        for op in ops {
            items.push(self.transact_item(op, now)?);
        }
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let err = match res {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(tc)) =
            err.as_service_error()
        {
            let lost_race = tc.cancellation_reasons().iter().any(|r| {
                matches!(
                    r.code(),
                    Some("ConditionalCheckFailed" | "TransactionConflict")
                )
            });
            if lost_race {
                return Err(Error::Conflict);
            }
        }
        Err(self.fail("TransactWriteItems", err))
    }

    fn transact_item(&self, op: WriteOp, now: i64) -> Result<TransactWriteItem> {
        let twi = TransactWriteItem::builder();
        let twi = match op {
            WriteOp::Put { item, cond } => {
                let c = condition(cond, now);
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item_attrs(item)))
                    .condition_expression(c.expr)
                    .set_expression_attribute_names(Some(c.names))
                    .set_expression_attribute_values(Some(c.values));
                twi.put(built(put.build())?)
            }
            WriteOp::Delete { key, cond } => {
                let c = condition(cond, now);
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(&key)))
                    .condition_expression(c.expr)
                    .set_expression_attribute_names(Some(c.names))
                    .set_expression_attribute_values(Some(c.values));
                twi.delete(built(delete.build())?)
            }
            WriteOp::Check { key, cond } => {
                let c = condition(cond, now);
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(&key)))
                    .condition_expression(c.expr)
                    .set_expression_attribute_names(Some(c.names))
                    .set_expression_attribute_values(Some(c.values));
                twi.condition_check(built(check.build())?)
            }
        };
        Ok(twi.build())
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        let item = self.read(key).await?;
        let now = now_unix();
        Ok(item.filter(|i| !is_expired(i.expires_at, now)))
    }

    async fn query(&self, pk: &str) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Attrs> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.fail("Query", e))?;
            let now = now_unix();
            for attrs in out.items() {
                let item = parse_item(&self.table, attrs)?;
                if !is_expired(item.expires_at, now) {
                    items.push(item);
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    async fn write(&self, mut ops: Vec<WriteOp>) -> Result<()> {
        if ops.len() > 1 {
            return self.transact(ops).await;
        }
        match ops.pop() {
            None => Ok(()),
            Some(WriteOp::Put { item, cond }) => self.put(item, cond).await,
            Some(WriteOp::Delete { key, cond }) => self.delete(&key, cond).await,
            Some(WriteOp::Check { key, cond }) => self.check(&key, cond).await,
        }
    }

    /// One `UpdateItem`: `ADD n 1` under the condition `n < limit`, so every process on the table
    /// shares the counter and none can pass the limit.
    async fn count_up(&self, key: &Key, limit: u64, expires_at: i64) -> Result<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression("ADD #n :one SET #exp = :exp")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(self.fail("UpdateItem", e)),
            },
        }
    }

    fn kind(&self) -> &'static str {
        "dynamodb"
    }

    /// One eventually consistent `GetItem` of a key no record has (records live under
    /// `instance#…` and `budget`): it resolves the credentials and the endpoint and opens the
    /// pooled connection (TLS to DynamoDB) for the first request to reuse.
    async fn warm_up(&self) -> Result<()> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(&Key {
                pk: "warm-up".into(),
                sk: "warm-up".into(),
            })))
            .send()
            .await
            .map_err(|e| self.fail("GetItem", e))?;
        Ok(())
    }
}
