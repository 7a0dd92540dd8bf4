//! The OpenAPI 3.1 document served at `/admin/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations (paths, parameters, responses) and the request and response
//! types (`ToSchema`), then made strict: every object lists all its members, so a client (or a
//! test) can tell an undocumented one.

use std::sync::OnceLock;

use serde_json::{Map, Value};
use snapshot_core::Registry;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use super::snapshots::{DEFAULT_PAGE, MAX_PAGE};
use crate::problem::{ProblemSchema, PROBLEM_JSON};
use crate::validation::MAX_ID_CHARS;

/// What the document says of the whole API (its `info.description`).
const DESCRIPTION: &str = "Snapshot management for operators. Every route but /health and the \
console's static files is admin-only: behind API Gateway the caller needs the admin group \
(cognito:groups contains ADMIN_GROUP), the admin scope (ADMIN_SCOPE) or an IAM principal listed \
in ADMIN_PRINCIPALS; on the local dev server, Authorization: Bearer ADMIN_DEV_TOKEN. Errors are \
application/problem+json (RFC 9457). Every response carries x-request-id.";

/// The document's source: info, servers, default security, the operations (one per route of
/// the route table, `tests/openapi.rs` checks) and the shared responses and schemas.
#[derive(OpenApi)]
#[openapi(
    info(title = "Inventory snapshot service: admin API", description = DESCRIPTION),
    servers((url = "/")),
    tags(
        (name = "snapshots", description = "Snapshots of an aggregate: make, list, check, delete, prune"),
        (name = "aggregates", description = "Aggregates as the application loads them"),
        (name = "backfill", description = "Re-snapshotting after a schema change"),
        (name = "meta", description = "Liveness and this document"),
        (name = "console", description = "The operator console's static files"),
    ),
    security(("jwt" = []), ("iam" = []), ("devToken" = [])),
    paths(
        super::meta::health,
        super::meta::openapi,
        super::snapshots::create,
        super::cleanup::cleanup,
        super::snapshots::list,
        super::snapshots::latest,
        super::verify::verify,
        super::snapshots::delete,
        super::aggregates::current,
        super::backfill::start,
        super::backfill::status,
        crate::console::index,
        crate::console::script,
        crate::console::style,
    ),
    components(
        schemas(ProblemSchema),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            TooLarge,
            UnsupportedMediaType,
            Internal,
            Unavailable
        )
    ),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// The three ways a caller proves to be an admin, named by the document's `security`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "API Gateway JWT authorizer; admin by group (cognito:groups) or scope",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "iam",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "AWS SigV4 (API Gateway IAM authorization); admin by caller ARN",
            ))),
        );
        components.add_security_scheme(
            "devToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Local dev server only: ADMIN_DEV_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// A problem+json response with `description`.
fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ProblemSchema::name())))
            .build(),
    )
}

/// The error responses the operations share, each a component referenced by status.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident => $description:literal,)*) => {$(
        $(#[$doc])*
        pub(crate) struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), problem($description).build().into())
            }
        }
    )*};
}

problem_responses! {
    /// 400: a path, query or body that does not validate.
    BadRequest => "Invalid path, query or body",
    /// 401: no caller identity (no or a refused token).
    Unauthorized => "No caller identity",
    /// 403: an identified caller who is not an admin.
    Forbidden => "The caller is not an admin",
    /// 404: the aggregate, snapshot or job does not exist.
    NotFound => "Unknown aggregate, snapshot or job",
    /// 409: refused in the current state.
    Conflict => "Refused in the current state (only snapshot, type mismatch, concurrent change, running backfill)",
    /// 413: a body over the limit.
    TooLarge => "Body over 16 KiB",
    /// 415: a body that is not JSON.
    UnsupportedMediaType => "Body is not application/json",
    /// 500: our fault; the detail says only to quote the requestId.
    Internal => "Internal error (corrupt stored data, storage refusing our requests, a bug); quote the requestId",
}

/// 503: storage unavailable or throttled, with the `Retry-After` to wait.
pub(crate) struct Unavailable;

impl<'r> ToResponse<'r> for Unavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        let retry_after = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .description(Some("Seconds to wait before retrying"))
            .build();
        let response = problem("Storage unavailable or throttled; retry after Retry-After")
            .header("Retry-After", retry_after)
            .build();
        ("Unavailable", response.into())
    }
}

/// The `aggregateType` path parameter's schema: one of the types the service registers
/// (`Registry::builtin`, what the deployed and the local server run); another is a 400 that
/// lists them.
pub(crate) enum AggregateTypeParam {}

impl PartialSchema for AggregateTypeParam {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Registry::builtin().type_names()))
            .into()
    }
}

impl ToSchema for AggregateTypeParam {}

/// The `aggregateId` path parameter's schema: the domain's length rule (1 to
/// `MAX_AGGREGATE_ID_CHARS` characters; printable, not blank, which a schema cannot say).
pub(crate) enum AggregateIdParam {}

impl PartialSchema for AggregateIdParam {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_ID_CHARS))
            .into()
    }
}

impl ToSchema for AggregateIdParam {}

/// The `limit` query parameter's schema: a listing's page size and its bounds.
pub(crate) enum PageSizeParam {}

impl PartialSchema for PageSizeParam {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_PAGE))
            .default(Some(DEFAULT_PAGE.into()))
            .into()
    }
}

impl ToSchema for PageSizeParam {}

/// A `true`/`false` query flag's schema (`includeState`, `force`): absent is `false`, anything
/// else a 400.
pub(crate) enum BoolParam {}

impl PartialSchema for BoolParam {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["true", "false"]))
            .default(Some("false".into()))
            .into()
    }
}

impl ToSchema for BoolParam {}

/// Why the document could not be produced (a serialisation failure: a bug, answered as a 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the OpenAPI document does not serialise: {0}")]
pub struct DocumentError(String);

/// The document as served, built and serialised once per process.
pub fn openapi_json() -> Result<&'static str, DocumentError> {
    static DOCUMENT: OnceLock<Result<String, DocumentError>> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut document = serde_json::to_value(ApiDoc::openapi())
                .map_err(|e| DocumentError(e.to_string()))?;
            make_strict(&mut document);
            reuse_components(&mut document);
            serde_json::to_string_pretty(&document).map_err(|e| DocumentError(e.to_string()))
        })
        .as_ref()
        .map(String::as_str)
        .map_err(Clone::clone)
}

/// Closes every object schema of the document: `additionalProperties: false` where a schema
/// lists its properties and says nothing of others, after folding each `allOf` of objects
/// (what serde's `flatten` becomes) into one object, which `additionalProperties` can close.
///
/// Done on the JSON because utoipa closes a struct only for serde's `deny_unknown_fields`,
/// which would also change how the core types read stored items.
fn make_strict(document: &mut Value) {
    let components = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    visit_schemas(document, true, &mut |schema| close(schema, &components));
}

/// Points every inline copy of a component at the component. A generic type's schema (a page
/// of `Listed<T>`) inlines its argument's, which a change of that component would then miss.
fn reuse_components(document: &mut Value) {
    let components = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    visit_schemas(document, false, &mut |schema| {
        let same = components
            .iter()
            .find(|(_, component)| component.as_object() == Some(schema));
        if let Some((name, _)) = same {
            *schema = Map::from_iter([(
                "$ref".to_owned(),
                Value::from(format!("#/components/schemas/{name}")),
            )]);
        }
    });
}

/// Calls `f` on every schema of the document: components (the components themselves only
/// with `roots`), parameters, request and response bodies, and (after `f` ran on a schema) on
/// the schemas inside it.
fn visit_schemas(document: &mut Value, roots: bool, f: &mut impl FnMut(&mut Map<String, Value>)) {
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            if roots {
                walk_schema(schema, f);
            } else if let Some(object) = schema.as_object_mut() {
                walk_children(object, f);
            }
        }
    }
    if let Some(responses) = document
        .pointer_mut("/components/responses")
        .and_then(Value::as_object_mut)
    {
        for response in responses.values_mut() {
            walk_content(response, f);
        }
    }
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            if let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            {
                for parameter in parameters {
                    if let Some(schema) = parameter.get_mut("schema") {
                        walk_schema(schema, f);
                    }
                }
            }
            if let Some(body) = operation.get_mut("requestBody") {
                absent_not_null(body);
                walk_content(body, f);
            }
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            {
                for response in responses.values_mut() {
                    walk_content(response, f);
                }
            }
        }
    }
}

/// An optional request body (`required` not set) is one that may be left out: utoipa writes
/// the `Option<T>` that says so as `T` or JSON `null`, and a `null` body is a 400 here.
fn absent_not_null(body: &mut Value) {
    if body.get("required").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let Some(content) = body.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    for media in content.values_mut() {
        let Some(schema) = media.get_mut("schema") else {
            continue;
        };
        let not_null = schema
            .get("oneOf")
            .and_then(Value::as_array)
            .filter(|arms| arms.len() == 2)
            .and_then(|arms| {
                arms.iter()
                    .find(|arm| arm.get("type").and_then(Value::as_str) != Some("null"))
            })
            .cloned();
        if let Some(arm) = not_null {
            *schema = arm;
        }
    }
}

/// The schemas of a request body's or response's `content`.
fn walk_content(holder: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    if let Some(content) = holder.get_mut("content").and_then(Value::as_object_mut) {
        for media in content.values_mut() {
            if let Some(schema) = media.get_mut("schema") {
                walk_schema(schema, f);
            }
        }
    }
}

/// `f` on `schema`, then on its subschemas (properties, items, maps' values, compositions).
fn walk_schema(schema: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    f(object);
    walk_children(object, f);
}

/// [`walk_schema`] on the subschemas of `object`.
fn walk_children(object: &mut Map<String, Value>, f: &mut impl FnMut(&mut Map<String, Value>)) {
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        for property in properties.values_mut() {
            walk_schema(property, f);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = object.get_mut(key) {
            walk_schema(sub, f);
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = object.get_mut(key).and_then(Value::as_array_mut) {
            for sub in list {
                walk_schema(sub, f);
            }
        }
    }
}

/// Folds an `allOf` of objects into one object, then closes an object that lists its
/// properties.
fn close(schema: &mut Map<String, Value>, components: &Map<String, Value>) {
    if let Some(merged) = schema
        .get("allOf")
        .and_then(|parts| fold_all_of(parts, components, 0))
    {
        schema.remove("allOf");
        for (key, value) in merged {
            schema.entry(key).or_insert(value);
        }
    }
    if schema.contains_key("properties") && !schema.contains_key("additionalProperties") {
        schema.insert("additionalProperties".into(), Value::Bool(false));
    }
}

/// How deep references and nested `allOf`s are followed while folding (ours go two deep).
const MAX_FOLD_DEPTH: usize = 8;

/// The one object an `allOf` of objects describes (`type`, `properties`, `required`), or
/// `None` when a part is not an object (then the `allOf` stays as generated).
fn fold_all_of(
    parts: &Value,
    components: &Map<String, Value>,
    depth: usize,
) -> Option<Map<String, Value>> {
    if depth > MAX_FOLD_DEPTH {
        return None;
    }
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in parts.as_array()? {
        let part = resolve(part, components)?;
        let folded;
        let part = match part.get("allOf") {
            Some(inner) => {
                folded = fold_all_of(inner, components, depth + 1)?;
                &folded
            }
            None => part,
        };
        if part.get("type").and_then(Value::as_str) != Some("object") {
            return None;
        }
        if let Some(more) = part.get("properties").and_then(Value::as_object) {
            properties.extend(more.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for name in part
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
    }
    let mut object = Map::new();
    object.insert("type".into(), Value::from("object"));
    if !required.is_empty() {
        object.insert("required".into(), Value::Array(required));
    }
    object.insert("properties".into(), Value::Object(properties));
    Some(object)
}

/// The schema object `part` is, following a `#/components/schemas/…` reference.
fn resolve<'a>(
    part: &'a Value,
    components: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    match part.get("$ref").and_then(Value::as_str) {
        Some(reference) => components
            .get(reference.strip_prefix("#/components/schemas/")?)?
            .as_object(),
        None => part.as_object(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(schemas: Value) -> Value {
        json!({ "paths": {}, "components": { "schemas": schemas } })
    }

    #[test]
    fn a_flattened_struct_becomes_one_closed_object() {
        let mut doc = document(json!({
            "Inner": { "type": "object", "required": ["a"], "properties": { "a": { "type": "string" } } },
            "Outer": { "description": "outer", "allOf": [
                { "$ref": "#/components/schemas/Inner" },
                { "type": "object", "required": ["b"], "properties": { "b": { "type": "integer" } } },
            ] },
        }));
        make_strict(&mut doc);
        assert_eq!(
            doc["components"]["schemas"]["Outer"],
            json!({
                "description": "outer",
                "type": "object",
                "required": ["a", "b"],
                "properties": { "a": { "type": "string" }, "b": { "type": "integer" } },
                "additionalProperties": false,
            })
        );
        assert_eq!(
            doc["components"]["schemas"]["Inner"]["additionalProperties"],
            json!(false)
        );
    }

    #[test]
    fn an_all_of_with_a_part_that_is_no_object_stays() {
        let all_of = json!({ "allOf": [{ "type": "string" }, { "minLength": 1 }] });
        let mut doc = document(json!({ "Text": all_of.clone() }));
        make_strict(&mut doc);
        assert_eq!(doc["components"]["schemas"]["Text"], all_of);
    }

    #[test]
    fn maps_and_free_form_objects_stay_open() {
        let map = json!({ "type": "object", "additionalProperties": { "type": "integer" } });
        let free = json!({ "type": "object" });
        let mut doc = document(json!({ "Map": map.clone(), "Free": free.clone() }));
        make_strict(&mut doc);
        assert_eq!(doc["components"]["schemas"]["Map"], map);
        assert_eq!(doc["components"]["schemas"]["Free"], free);
    }

    #[test]
    fn an_inline_copy_of_a_component_points_at_it() {
        let item = json!({ "type": "object", "properties": { "a": { "type": "string" } } });
        let mut doc = document(json!({
            "Item": item.clone(),
            "Page": { "type": "object", "properties": { "items": { "type": "array", "items": item } } },
        }));
        reuse_components(&mut doc);
        assert_eq!(
            doc["components"]["schemas"]["Page"]["properties"]["items"]["items"],
            json!({ "$ref": "#/components/schemas/Item" })
        );
        assert!(doc["components"]["schemas"]["Item"]["properties"].is_object());
    }

    #[test]
    fn an_optional_body_is_absent_not_null() {
        let mut body = json!({ "content": { "application/json": { "schema": {
            "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/Body" }]
        } } } });
        absent_not_null(&mut body);
        assert_eq!(
            body["content"]["application/json"]["schema"],
            json!({ "$ref": "#/components/schemas/Body" })
        );
    }

    #[test]
    fn the_document_serialises_once_and_parses() {
        let first = openapi_json().unwrap();
        assert!(std::ptr::eq(first, openapi_json().unwrap()));
        let doc: Value = serde_json::from_str(first).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
