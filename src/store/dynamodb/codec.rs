//! How store items and conditions are spelled in DynamoDB attributes and expressions.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::store::{Cond, Error, Item, Key, Result};

pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
pub(super) const VERSION: &str = "version";
pub(super) const EXPIRES_AT: &str = "expires_at";
pub(super) const DATA: &str = "data";

pub(super) type Attrs = HashMap<String, AttributeValue>;

/// A condition expression with its placeholders.
pub(super) struct Condition {
    pub expr: &'static str,
    pub names: HashMap<String, String>,
    pub values: Attrs,
}

pub(super) fn built<T>(r: std::result::Result<T, BuildError>) -> Result<T> {
    r.map_err(|e| Error::Backend(format!("dynamodb request could not be built: {e}")))
}

/// The DynamoDB form of a [`Cond`]: the same rule as `memory::cond_holds`, with expired
/// tombstones (`expires_at <= now`) counting as absent.
pub(super) fn condition(cond: Cond, now: i64) -> Condition {
    let n = |v: String| AttributeValue::N(v);
    let name = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    match cond {
        Cond::Absent => Condition {
            expr: "attribute_not_exists(#pk) OR #exp <= :now",
            names: HashMap::from([name("#pk", PK), name("#exp", EXPIRES_AT)]),
            values: HashMap::from([(":now".to_owned(), n(now.to_string()))]),
        },
        Cond::Version(v) => Condition {
            expr: "#ver = :ver AND (attribute_not_exists(#exp) OR #exp > :now)",
            names: HashMap::from([name("#ver", VERSION), name("#exp", EXPIRES_AT)]),
            values: HashMap::from([
                (":ver".to_owned(), n(v.to_string())),
                (":now".to_owned(), n(now.to_string())),
            ]),
        },
    }
}

pub(super) fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

pub(super) fn item_attrs(item: Item) -> Attrs {
    let mut attrs = HashMap::from([
        (PK.to_owned(), AttributeValue::S(item.key.pk)),
        (SK.to_owned(), AttributeValue::S(item.key.sk)),
        (
            VERSION.to_owned(),
            AttributeValue::N(item.version.to_string()),
        ),
        (DATA.to_owned(), AttributeValue::S(item.data)),
    ]);
    if let Some(t) = item.expires_at {
        attrs.insert(EXPIRES_AT.to_owned(), AttributeValue::N(t.to_string()));
    }
    attrs
}

/// An item read back from `table`; a missing or malformed attribute is a backend error naming
/// the attribute, never its value.
pub(super) fn parse_item(table: &str, attrs: &Attrs) -> Result<Item> {
    let bad = |name: &str| {
        Error::Backend(format!(
            "dynamodb table {} holds an item with a missing or malformed `{name}`",
            table
        ))
    };
    let s = |name: &str| {
        attrs
            .get(name)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| bad(name))
    };
    let n = |name: &str| attrs.get(name).and_then(|v| v.as_n().ok());
    let version = n(VERSION)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad(VERSION))?;
    let expires_at = match n(EXPIRES_AT) {
        None if !attrs.contains_key(EXPIRES_AT) => None,
        found => Some(
            found
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(EXPIRES_AT))?,
        ),
    };
    Ok(Item {
        key: Key {
            pk: s(PK)?.clone(),
            sk: s(SK)?.clone(),
        },
        version,
        expires_at,
        data: s(DATA)?.clone(),
    })
}
