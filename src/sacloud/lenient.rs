//! Deserialisers for the shapes the API is known to mix up: ids and ports as strings or numbers,
//! `""` or `[]` where an object or a list belongs, `null` almost anywhere. Each one accepts what
//! SAKURA Cloud has been seen to send and maps nonsense to "absent" rather than failing the whole
//! read.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;

/// An id or other integer sent as a number or as a decimal string. `null`, `""` and anything
/// unparsable read as `None`.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A port sent as a number or a string (`"5432"`); out of range reads as `None`.
pub fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    Ok(opt_u64(d)?.and_then(|n| u16::try_from(n).ok()))
}

/// A small number (mask length, backup rotation) sent as a number or a string.
pub fn opt_u8<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    Ok(opt_u64(d)?.and_then(|n| u8::try_from(n).ok()))
}

/// A string that may come as `null`, a number or a bool; objects and arrays read as empty.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(
        value_to_string(Option::<Value>::deserialize(d)?.unwrap_or(Value::Null))
            .unwrap_or_default(),
    )
}

/// Like [`string`], but absent, `null` and `""` read as `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(
        value_to_string(Option::<Value>::deserialize(d)?.unwrap_or(Value::Null))
            .filter(|s| !s.is_empty()),
    )
}

/// A list of strings that may be `null`, `""` (empty), a single string, or a list with
/// non-string members (which are skipped). Used for `Tags`, `SourceNetwork`, `DayOfWeek`.
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(value_to_string)
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_owned()],
        _ => Vec::new(),
    })
}

/// A nested object that the API sometimes replaces with `[]`, `""`, `false` or `null`
/// (`Remark.Network`, `Backup`, `Icon`, `Switch`, `Instance`). Anything but an object reads as
/// `None`; an object that does not fit `T` is an error, since then the read really is wrong.
pub fn opt_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<Value>::deserialize(d)? {
        Some(v @ Value::Object(_)) => T::deserialize(v)
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
}

/// A list whose members may each be an object or a placeholder (`[]`, `""`, `null`), as in
/// `Remark.Servers` (`[[]]`, `[""]` or `[{"IPAddress":..}]`). Placeholders read as `None`.
pub fn list_of_opt_objects<'de, D, T>(d: D) -> Result<Vec<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<Value>::deserialize(d)? {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::Object(_) => T::deserialize(v)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
                _ => Ok(None),
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

fn value_to_string(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
