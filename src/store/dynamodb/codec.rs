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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(expires_at: Option<i64>) -> Item {
        Item {
            key: Key::binding("i-1", "b-1"),
            version: 7,
            expires_at,
            data: r#"{"state":"ok"}"#.into(),
        }
    }

    #[test]
    fn an_item_reads_back_as_it_was_written() {
        for expires_at in [None, Some(1_900_000_000)] {
            let attrs = item_attrs(item(expires_at));
            assert_eq!(parse_item("t", &attrs).unwrap(), item(expires_at));
            assert_eq!(attrs.contains_key(EXPIRES_AT), expires_at.is_some());
        }
        let key = key_attrs(&Key::binding("i-1", "b-1"));
        assert_eq!(key.len(), 2);
        assert_eq!(key[PK], AttributeValue::S("instance#i-1".into()));
        assert_eq!(key[SK], AttributeValue::S("binding#b-1".into()));
    }

    #[test]
    fn a_damaged_item_names_the_attribute_never_its_value() {
        let good = item_attrs(item(Some(5)));
        let cases: [(&str, Option<AttributeValue>); 5] = [
            (DATA, None),
            (DATA, Some(AttributeValue::N("1".into()))),
            (VERSION, Some(AttributeValue::S("secret-looking-7".into()))),
            (
                EXPIRES_AT,
                Some(AttributeValue::S("secret-looking-5".into())),
            ),
            (PK, None),
        ];
        for (name, value) in cases {
            let mut attrs = good.clone();
            match value {
                Some(v) => attrs.insert(name.to_owned(), v),
                None => attrs.remove(name),
            };
            let err = parse_item("osb-table", &attrs).unwrap_err().to_string();
            assert!(err.contains(&format!("`{name}`")), "{err}");
            assert!(err.contains("osb-table"), "{err}");
            assert!(!err.contains("secret-looking"), "{err}");
        }
    }

    #[test]
    fn conditions_treat_expired_tombstones_as_absent() {
        let absent = condition(Cond::Absent, 42);
        assert_eq!(absent.expr, "attribute_not_exists(#pk) OR #exp <= :now");
        assert_eq!(absent.names["#pk"], PK);
        assert_eq!(absent.names["#exp"], EXPIRES_AT);
        assert_eq!(absent.values[":now"], AttributeValue::N("42".into()));

        let version = condition(Cond::Version(3), 42);
        assert!(version.expr.starts_with("#ver = :ver"));
        assert!(version.expr.contains("#exp > :now"));
        assert_eq!(version.names["#ver"], VERSION);
        assert_eq!(version.values[":ver"], AttributeValue::N("3".into()));
        // Every placeholder the expression uses is bound, and nothing else.
        for c in [absent, version] {
            for name in c.names.keys() {
                assert!(c.expr.contains(name.as_str()), "{name} in {}", c.expr);
            }
            for value in c.values.keys() {
                assert!(c.expr.contains(value.as_str()), "{value} in {}", c.expr);
            }
        }
    }
}
