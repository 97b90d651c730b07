//! The find condition of `GET /appliance?{json}`: the JSON comes raw after `?` (no `q=`), and the
//! whole query is percent-decoded once, which is why clients path-escape string values inside it.
//!
//! Filter semantics, as the real API applies them: a string is a partial match, its
//! space-separated words ANDed; an array is an exact match, its members ORed. `Tags.Name` is
//! exact: a flat array means all these tags (AND), an array of arrays means any of these groups.
//! Unknown keys are ignored.

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::state::Appliance;
use super::validate::id_of;

/// A parsed find condition.
#[derive(Debug, Default)]
pub(crate) struct FindCondition {
    pub from: usize,
    pub count: Option<usize>,
    pub filter: Map<String, Value>,
}

impl FindCondition {
    /// Parse the raw query string (everything after `?`, still encoded).
    pub fn parse(raw: Option<&str>) -> Result<FindCondition, ApiError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(FindCondition::default());
        };
        if raw.starts_with("q=") {
            return Err(ApiError::bad_request(
                "The search condition must be JSON directly after '?', not a q= parameter",
            ));
        }
        let text = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| ApiError::bad_request("The search condition is not UTF-8"))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| ApiError::bad_request(format!("The search condition is not JSON: {e}")))?;
        let Value::Object(mut obj) = v else {
            return Err(ApiError::bad_request(
                "The search condition must be a JSON object",
            ));
        };
        let number = |v: Option<Value>| v.as_ref().and_then(id_of).map(|n| n as usize);
        Ok(FindCondition {
            from: number(obj.remove("From")).unwrap_or(0),
            count: number(obj.remove("Count")).filter(|c| *c > 0),
            filter: match obj.remove("Filter") {
                Some(Value::Object(f)) => f,
                _ => Map::new(),
            },
        })
    }

    /// Whether an appliance passes every filter key.
    pub fn matches(&self, a: &Appliance) -> bool {
        self.filter.iter().all(|(key, cond)| match key.as_str() {
            "Name" => text_matches(cond, &a.spec.name),
            "Class" => text_matches(cond, "database"),
            "Tags.Name" => tags_match(cond, &a.spec.tags),
            "ID" => id_matches(cond, a.id),
            _ => true,
        })
    }
}

fn text_matches(cond: &Value, value: &str) -> bool {
    match cond {
        Value::String(words) => {
            let value = value.to_lowercase();
            words
                .split_whitespace()
                .all(|w| value.contains(&w.to_lowercase()))
        }
        Value::Array(options) => options.iter().any(|o| o.as_str() == Some(value)),
        _ => false,
    }
}

fn tags_match(cond: &Value, tags: &[String]) -> bool {
    let has = |t: &Value| t.as_str().is_some_and(|t| tags.iter().any(|x| x == t));
    match cond {
        Value::String(_) => has(cond),
        Value::Array(items) if items.iter().all(Value::is_array) && !items.is_empty() => items
            .iter()
            .any(|group| group.as_array().is_some_and(|g| g.iter().all(has))),
        Value::Array(items) => items.iter().all(has),
        _ => false,
    }
}

fn id_matches(cond: &Value, id: u64) -> bool {
    match cond {
        Value::Array(options) => options.iter().any(|o| id_of(o) == Some(id)),
        other => id_of(other) == Some(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(query: &str) -> FindCondition {
        FindCondition::parse(Some(query)).unwrap()
    }

    #[test]
    fn decodes_the_query_once() {
        let c = cond(r#"{%22Count%22:5,"From":2,"Filter":{"Name":"a%20b"}}"#);
        assert_eq!((c.from, c.count), (2, Some(5)));
        assert_eq!(c.filter["Name"], json!("a b"));
    }

    #[test]
    fn refuses_q_and_non_json() {
        assert!(FindCondition::parse(Some("q={}")).is_err());
        assert!(FindCondition::parse(Some("{nope")).is_err());
        assert!(FindCondition::parse(Some("[1]")).is_err());
        assert!(FindCondition::parse(None).unwrap().filter.is_empty());
    }

    #[test]
    fn name_string_is_partial_and_array_is_exact() {
        assert!(text_matches(&json!("osb 42"), "osb-instance-42"));
        assert!(text_matches(&json!("OSB"), "osb-1"));
        assert!(!text_matches(&json!("osb 43"), "osb-instance-42"));
        assert!(text_matches(&json!(["x", "osb-1"]), "osb-1"));
        assert!(!text_matches(&json!(["osb"]), "osb-1"));
    }

    #[test]
    fn tags_are_exact() {
        let tags = ["@osb-sacloud".to_string(), "env=dev".to_string()];
        assert!(tags_match(&json!(["@osb-sacloud", "env=dev"]), &tags));
        assert!(!tags_match(&json!(["@osb-sacloud", "env=prod"]), &tags));
        assert!(tags_match(&json!([["env=prod"], ["env=dev"]]), &tags));
        assert!(!tags_match(&json!("@osb"), &tags));
    }

    #[test]
    fn ids_match_as_strings_or_numbers() {
        assert!(id_matches(&json!("123"), 123));
        assert!(id_matches(&json!([1, "123"]), 123));
        assert!(!id_matches(&json!(124), 123));
    }
}
