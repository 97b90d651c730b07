//! The JSON Schemas (draft-04) that each plan publishes for its parameters, compiled once, and the
//! translation of a schema failure into a [`ParamError`] that names the field as the user wrote it.

use std::sync::OnceLock;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::{Map, Value, json};

use super::param_error::ParamError;
use super::properties::{Property, bind_properties, create_properties, update_properties};

const DRAFT_04: &str = "http://json-schema.org/draft-04/schema#";

/// What a user reads when a property's value is wrong.
#[derive(Debug)]
struct Rule {
    name: &'static str,
    text: String,
    /// For arrays: the text for a bad element.
    item_text: Option<&'static str>,
}

/// One parameters schema: the published document and its compiled validator.
#[derive(Debug)]
pub(crate) struct ParamSchema {
    /// What the parameters are for, as the subject of a sentence ("provisioning").
    purpose: &'static str,
    document: Value,
    /// Compiled on first use: start-up (and a Lambda cold start serving the catalog or a poll)
    /// does not pay for compiling patterns it may never need.
    validator: OnceLock<Validator>,
    rules: Vec<Rule>,
    required: &'static [&'static str],
    /// Names only provisioning accepts: an update naming one gets "cannot be changed", not "unknown".
    create_only: Vec<&'static str>,
}

impl ParamSchema {
    fn new(
        purpose: &'static str,
        properties: Vec<Property>,
        required: &'static [&'static str],
    ) -> ParamSchema {
        let mut props = Map::new();
        let mut rules = Vec::new();
        for p in properties {
            props.insert(p.name.to_owned(), p.schema);
            rules.push(Rule {
                name: p.name,
                text: p.rule,
                item_text: p.item_rule,
            });
        }
        let mut document = json!({
            "$schema": DRAFT_04,
            "type": "object",
            "additionalProperties": false,
            "properties": props,
        });
        if !required.is_empty() {
            document["required"] = json!(required);
        }
        ParamSchema {
            purpose,
            document,
            validator: OnceLock::new(),
            rules,
            required,
            create_only: Vec::new(),
        }
    }

    /// The schema as published in the catalog.
    pub fn document(&self) -> &Value {
        &self.document
    }

    fn validator(&self) -> &Validator {
        self.validator.get_or_init(|| {
            jsonschema::draft4::options()
                .should_validate_formats(true)
                .build(&self.document)
                // Built from constants (zone names only fill an enum of strings): a failure is a
                // bug here, and the catalog tests compile every schema.
                .expect("built-in parameter schema compiles")
        })
    }

    /// Checks `params` against the schema; on failure names one offending field. When several
    /// fields are wrong, the report prefers a non-object body, then an unknown field (usually a
    /// typo), then a missing required one, then a bad value.
    pub fn check(&self, params: &Value) -> Result<(), ParamError> {
        let worst = self
            .validator()
            .iter_errors(params)
            .map(|e| self.describe(e.kind(), e.instance_path().iter().collect()))
            .min_by_key(|(rank, _)| *rank);
        match worst {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    fn describe(
        &self,
        kind: &ValidationErrorKind,
        path: Vec<LocationSegment<'_>>,
    ) -> (u8, ParamError) {
        match (kind, path.first()) {
            (ValidationErrorKind::AdditionalProperties { unexpected }, None) => {
                let name = unexpected.first().map(String::as_str).unwrap_or_default();
                (1, self.unknown(name))
            }
            (ValidationErrorKind::Required { property }, None) => {
                let name = property.as_str().unwrap_or_default();
                (
                    2,
                    ParamError::new(name, format!("is required ({})", self.required_sentence())),
                )
            }
            (_, None) => (0, ParamError::new("parameters", "must be a JSON object")),
            (_, Some(LocationSegment::Property(name))) => {
                let field = field_name(&path);
                let rule = self.rules.iter().find(|r| r.name == name);
                let message = match rule {
                    Some(Rule {
                        item_text: Some(item),
                        ..
                    }) if path.len() > 1 => (*item).to_owned(),
                    Some(rule) => rule.text.clone(),
                    None => "is not valid".to_owned(),
                };
                (3, ParamError::new(field, message))
            }
            (_, Some(LocationSegment::Index(_))) => {
                (0, ParamError::new("parameters", "must be a JSON object"))
            }
        }
    }

    fn unknown(&self, name: &str) -> ParamError {
        let accepted = self.names().collect::<Vec<_>>().join(", ");
        let message = if self.create_only.contains(&name) {
            format!(
                "cannot be changed after the instance is created; {} accepts: {accepted}",
                self.purpose
            )
        } else {
            format!(
                "is not a known parameter; {} accepts: {accepted}",
                self.purpose
            )
        };
        ParamError::new(shorten(name), message)
    }

    fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.rules.iter().map(|r| r.name)
    }

    pub(crate) fn required_sentence_for(purpose: &str, required: &[&str]) -> String {
        let list = match required.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => required.join(""),
        };
        format!("{purpose} needs {list}")
    }

    fn required_sentence(&self) -> String {
        let list = match self.required.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => self.required.join(""),
        };
        format!("{} needs {list}", self.purpose)
    }
}

/// `allowNetworks[1]`, `a.b`: the path to a value the way a user would write it.
fn field_name(path: &[LocationSegment<'_>]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            LocationSegment::Property(p) if out.is_empty() => out.push_str(&shorten(p)),
            LocationSegment::Property(p) => {
                out.push('.');
                out.push_str(&shorten(p));
            }
            LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Names and ids from the outside go back in error messages: keep them short.
pub(crate) fn shorten(name: &str) -> String {
    const MAX: usize = 64;
    match name.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &name[..cut]),
        None => name.to_owned(),
    }
}

/// The three schemas every plan publishes, compiled once.
#[derive(Debug)]
pub(crate) struct Schemas {
    pub create: ParamSchema,
    pub update: ParamSchema,
    pub bind: ParamSchema,
}

pub(crate) const CREATE_REQUIRED: &[&str] = &["switchID", "ipaddress", "maskLen", "defaultRoute"];

impl Schemas {
    /// `zones` fills the `zone` enum; it must not be empty.
    #[cfg(test)]
    pub fn new(zones: &[String]) -> Schemas {
        Self::with_pools(zones, false)
    }

    /// With network `pools` the network parameters are optional: the operator's pool supplies
    /// what a provision leaves out, and the published schema says so.
    pub fn with_pools(zones: &[String], pools: bool) -> Schemas {
        let required = if pools { &[] } else { CREATE_REQUIRED };
        let create = ParamSchema::new("provisioning", create_properties(zones, pools), required);
        let mut update = ParamSchema::new("an update", update_properties(), &[]);
        update.create_only = create
            .names()
            .filter(|n| !update.names().any(|u| u == *n))
            .collect();
        let bind = ParamSchema::new("binding", bind_properties(), &[]);
        Schemas {
            create,
            update,
            bind,
        }
    }

    /// The plan `schemas` object of the catalog.
    pub fn catalog_object(&self) -> Value {
        json!({
            "service_instance": {
                "create": {"parameters": self.create.document()},
                "update": {"parameters": self.update.document()},
            },
            "service_binding": {
                "create": {"parameters": self.bind.document()},
            },
        })
    }
}
