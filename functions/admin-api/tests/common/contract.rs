//! The API's contract as the tests hold it to: every response a test reads ([`super::receive`])
//! must be one the served OpenAPI document describes, its status documented for that
//! operation, its content type one of that status's, and its body valid against the schema
//! (JSON Schema 2020-12, the dialect of OpenAPI 3.1; the document's objects are closed, so an
//! undocumented member fails too).
//!
//! A request no operation describes has an answer the document cannot list: a path that no
//! template matches is refused (401 or 403 before routing, else 404), a documented path with
//! another method is refused (401 or 403, else 405); either way a problem+json body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use axum::http::{Method, StatusCode};
use jsonschema::Validator;
use serde_json::{json, Value};

/// Media type of every error body.
const PROBLEM_JSON: &str = "application/problem+json";

/// Statuses of a request to a path that no template matches.
const UNROUTED: [u16; 3] = [401, 403, 404];
/// Statuses of a documented path with a method it does not serve.
const WRONG_METHOD: [u16; 3] = [401, 403, 405];

/// The document, and the validators compiled from it so far (by schema location).
pub struct Contract {
    document: Value,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// The contract of the API's own document (`admin_api::openapi_json`, what it serves).
pub fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let text = admin_api::openapi_json().expect("the OpenAPI document serialises");
        Contract::new(serde_json::from_str(text).expect("the OpenAPI document is JSON"))
    })
}

impl Contract {
    /// The contract of `document`, an OpenAPI 3.1 document.
    pub fn new(document: Value) -> Self {
        Self {
            document,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a response of `status`, `content_type` and `body` to `method path` is one the
    /// document describes; if not, what breaks it.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), String> {
        let Some(template) = self.template_of(path) else {
            return self.check_refusal(&UNROUTED, "no documented path", status, content_type, body);
        };
        let item = &self.document["paths"][template];
        let mut operation = &item[method.as_str().to_lowercase()];
        // The router answers HEAD as GET without the body.
        let head = *method == Method::HEAD && !operation.is_object();
        if head {
            operation = &item["get"];
        }
        if !operation.is_object() {
            return self.check_refusal(
                &WRONG_METHOD,
                "a method the path does not document",
                status,
                content_type,
                body,
            );
        }
        let Some(response) = operation["responses"].get(status.as_str()) else {
            return Err(format!(
                "status {status} is not documented for {method} {template}"
            ));
        };
        let response = self.resolve(response);
        let content = response.get("content").and_then(Value::as_object);
        let Some(content) = content.filter(|c| !c.is_empty()) else {
            return if body.is_empty() {
                Ok(())
            } else {
                Err(format!("{status} of {method} {template} documents no body"))
            };
        };
        if head {
            return if body.is_empty() {
                Ok(())
            } else {
                Err(format!("HEAD {template} answered with a body"))
            };
        }
        let media_type = essence(content_type);
        let Some(media) = content.get(&media_type) else {
            return Err(format!(
                "content type `{content_type}` is not documented for {status} of {method} {template} (documented: {:?})",
                content.keys().collect::<Vec<_>>()
            ));
        };
        match media.get("schema") {
            None => Ok(()),
            Some(schema) => {
                let location = format!("{method} {template} {status} {media_type}");
                self.check_body(&location, schema, body)
            }
        }
    }

    /// A refusal the router makes before any operation: one of `statuses`, problem+json.
    fn check_refusal(
        &self,
        statuses: &[u16],
        what: &str,
        status: StatusCode,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), String> {
        if !statuses.contains(&status.as_u16()) {
            return Err(format!(
                "{what}, yet {status} (expected one of {statuses:?})"
            ));
        }
        if essence(content_type) != PROBLEM_JSON {
            return Err(format!("{what}: `{content_type}`, not {PROBLEM_JSON}"));
        }
        let problem = json!({ "$ref": "#/components/schemas/Problem" });
        self.check_body("refusal", &problem, body)
    }

    /// The body parsed as JSON and checked against `schema` (compiled once per `location`).
    fn check_body(&self, location: &str, schema: &Value, body: &[u8]) -> Result<(), String> {
        let instance: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{location}: the body is not JSON ({e})"))?;
        let validator = self.validator(location, schema)?;
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .take(5)
            .map(|e| format!("at `{}`: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{location}: the body breaks its schema: {}; body: {}",
                errors.join("; "),
                clip(&instance.to_string())
            ))
        }
    }

    /// A validator of `schema`, whose references point into the document's components.
    pub fn validator(&self, location: &str, schema: &Value) -> Result<Arc<Validator>, String> {
        let mut validators = self
            .validators
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = validators.get(location) {
            return Ok(Arc::clone(found));
        }
        // The schema beside the components, so `#/components/schemas/…` resolves in it.
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [schema],
            "components": self.document["components"].clone(),
        });
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .map(Arc::new)
            .map_err(|e| format!("{location}: the schema does not compile: {e}"))?;
        validators.insert(location.to_owned(), Arc::clone(&validator));
        Ok(validator)
    }

    /// The documented path template `path` is served at: of those whose segments match
    /// (a `{parameter}` matches any non-empty segment), the one with the most literal
    /// segments, as the router picks.
    fn template_of(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.document["paths"]
            .as_object()?
            .keys()
            .filter_map(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (part, segment) in parts.iter().zip(&segments) {
                    if part.starts_with('{') && part.ends_with('}') {
                        if segment.is_empty() {
                            return None;
                        }
                    } else if part == segment {
                        literal += 1;
                    } else {
                        return None;
                    }
                }
                Some((literal, template.as_str()))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, template)| template)
    }

    /// A response object, following a `#/components/responses/…` reference.
    fn resolve<'a>(&'a self, response: &'a Value) -> &'a Value {
        match response.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix('#')
                .and_then(|pointer| self.document.pointer(pointer))
                .unwrap_or(&Value::Null),
            None => response,
        }
    }
}

/// A media type without its parameters, lower case (`text/html; charset=utf-8` → `text/html`).
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn clip(text: &str) -> String {
    text.chars().take(2000).collect()
}
