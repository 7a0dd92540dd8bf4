//! The OpenAPI document and the router agree: same paths, same methods; every documented
//! operation is served and every other method on those paths is a 405. The document served
//! is the generated one, its objects are closed, and the contract the other tests check every
//! response against (`common::contract`) catches drift: an undocumented member, status or
//! content type.

mod common;

use std::collections::BTreeSet;

use admin_api::route_table::{CREATE, HEALTH, OPENAPI};
use admin_api::{openapi_json, PROBLEM_JSON, ROUTES};
use axum::http::{header, Method, StatusCode};
use common::contract::{contract, Contract};
use common::{admin, TestApp};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn documented() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(openapi_json().unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(|m| (path.clone(), m.to_uppercase()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn routed() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| (r.path().to_owned(), r.method().to_string()))
        .collect()
}

/// A concrete URI for a path template.
fn concrete(template: &str) -> String {
    template
        .replace("{aggregateType}", "INVENTORY_ITEM")
        .replace("{aggregateId}", "item-1")
        .replace("{version}", "1")
}

#[test]
fn the_document_lists_exactly_the_routes_of_the_router() {
    assert_eq!(documented(), routed());
}

#[test]
fn documented_path_parameters_match_the_templates() {
    let doc: Value = serde_json::from_str(openapi_json().unwrap()).unwrap();
    for route in ROUTES {
        let op = &doc["paths"][route.path()][route.method().as_str().to_lowercase()];
        let mut declared: Vec<String> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| match p.get("$ref").and_then(Value::as_str) {
                        Some(r) => {
                            let name = r.rsplit('/').next().unwrap();
                            doc["components"]["parameters"][name].clone()
                        }
                        None => p.clone(),
                    })
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        declared.sort();
        let mut in_template: Vec<String> = route
            .path()
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        in_template.sort();
        assert_eq!(declared, in_template, "{} {}", route.method(), route.path());
        let public = op["security"].as_array().is_some_and(Vec::is_empty);
        assert_eq!(
            public,
            !route.admin_only(),
            "{} {}",
            route.method(),
            route.path()
        );
    }
}

#[tokio::test]
async fn the_router_serves_every_route_and_only_those_methods() {
    let app = TestApp::new();
    for route in ROUTES {
        let uri = concrete(route.path());
        let reply = app.send(admin(route.method().clone(), &uri)).await;
        let kind = reply.body["type"].as_str().unwrap_or("");
        assert!(
            !kind.ends_with("route-not-found") && reply.status != StatusCode::METHOD_NOT_ALLOWED,
            "{} {uri} is not routed: {}",
            route.method(),
            reply.body
        );
    }
    let served = routed();
    for path in served.iter().map(|(p, _)| p).collect::<BTreeSet<_>>() {
        for method in METHODS.map(str::to_uppercase) {
            if served.contains(&(path.clone(), method.clone())) {
                continue;
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let reply = app.send(admin(method.clone(), &concrete(path))).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {}",
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = TestApp::new();
    let reply = app.send(admin(Method::GET, OPENAPI)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let generated: Value = serde_json::from_str(openapi_json().unwrap()).unwrap();
    assert_eq!(reply.body, generated);
}

/// Every object of the document lists all its members: none accepts others.
#[test]
fn every_object_schema_is_closed() {
    fn open_objects(schema: &Value, at: &str, found: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                if map.contains_key("properties")
                    && map.get("additionalProperties") != Some(&Value::Bool(false))
                {
                    found.push(at.to_owned());
                }
                for (key, value) in map {
                    open_objects(value, &format!("{at}/{key}"), found);
                }
            }
            Value::Array(items) => {
                for (i, value) in items.iter().enumerate() {
                    open_objects(value, &format!("{at}/{i}"), found);
                }
            }
            _ => {}
        }
    }
    let doc: Value = serde_json::from_str(openapi_json().unwrap()).unwrap();
    let mut found = Vec::new();
    open_objects(
        &doc["components"]["schemas"],
        "#/components/schemas",
        &mut found,
    );
    assert!(found.is_empty(), "open objects: {found:?}");
    let text = openapi_json().unwrap();
    assert!(
        !text.contains("\"allOf\""),
        "an allOf is left: members beside it cannot be closed"
    );
}

const JSON: &str = "application/json";

#[test]
fn the_contract_rejects_a_body_with_an_undocumented_member() {
    let contract = contract();
    let health =
        |body: &str| contract.check(&Method::GET, HEALTH, StatusCode::OK, JSON, body.as_bytes());
    assert_eq!(health(r#"{"status":"ok"}"#), Ok(()));
    let extra = health(r#"{"status":"ok","build":"1.2.3"}"#).unwrap_err();
    assert!(extra.contains("build"), "{extra}");
    assert!(health(r#"{"status":"degraded"}"#).is_err());
    assert!(health("{}").is_err());
}

#[test]
fn the_contract_rejects_an_undocumented_status_or_content_type() {
    let contract = contract();
    let ok = br#"{"status":"ok"}"#;
    let status = contract
        .check(
            &Method::GET,
            HEALTH,
            StatusCode::SERVICE_UNAVAILABLE,
            JSON,
            ok,
        )
        .unwrap_err();
    assert!(status.contains("not documented"), "{status}");
    let media = contract
        .check(&Method::GET, HEALTH, StatusCode::OK, "text/plain", ok)
        .unwrap_err();
    assert!(media.contains("text/plain"), "{media}");
    // HEAD is answered as GET, without the body.
    assert_eq!(
        contract.check(&Method::HEAD, HEALTH, StatusCode::OK, JSON, b""),
        Ok(())
    );
    assert!(contract
        .check(&Method::HEAD, HEALTH, StatusCode::OK, JSON, ok)
        .is_err());
    // A path no template matches answers only with a refusal.
    assert!(contract
        .check(
            &Method::GET,
            "/admin/nothing/here",
            StatusCode::OK,
            JSON,
            ok
        )
        .is_err());
}

#[test]
fn the_contract_holds_problems_to_their_schema() {
    let contract = contract();
    let problem = json!({
        "type": "urn:inventory-snapshots:problem:route-not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "no such route",
        "instance": "/admin/nothing",
        "requestId": "r-1",
    });
    let check = |body: &Value, content_type: &str| {
        contract.check(
            &Method::GET,
            "/admin/nothing",
            StatusCode::NOT_FOUND,
            content_type,
            body.to_string().as_bytes(),
        )
    };
    assert_eq!(check(&problem, PROBLEM_JSON), Ok(()));
    assert!(check(&problem, JSON).is_err(), "a problem is problem+json");
    let mut extra = problem.clone();
    extra["stack"] = json!("at handler.rs:12");
    let broken = check(&extra, PROBLEM_JSON).unwrap_err();
    assert!(broken.contains("stack"), "{broken}");
    let mut anonymous = problem.clone();
    anonymous.as_object_mut().unwrap().remove("requestId");
    assert!(check(&anonymous, PROBLEM_JSON).is_err());
}

/// The document with the snapshot's `lastEventSequence` left out and the create route's 201
/// undocumented: what drift would look like.
fn drifted() -> Contract {
    let mut doc: Value = serde_json::from_str(openapi_json().unwrap()).unwrap();
    let snapshot = &mut doc["components"]["schemas"]["Snapshot"];
    snapshot["properties"]
        .as_object_mut()
        .unwrap()
        .remove("lastEventSequence");
    snapshot["required"]
        .as_array_mut()
        .unwrap()
        .retain(|name| name != "lastEventSequence");
    Contract::new(doc)
}

#[tokio::test]
async fn a_real_response_fails_a_document_it_has_drifted_from() {
    let app = TestApp::new();
    app.seed_item("item-1", 3).await;
    let drifted = drifted();
    // A member the document does not list, here in a nested object.
    let response = app
        .router
        .clone()
        .oneshot(admin(Method::GET, "/admin/snapshots/item-1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.snapshot_item("item-1").await;
    let (status, content_type, body) = read(
        app.router
            .clone()
            .oneshot(admin(Method::GET, "/admin/snapshots/item-1"))
            .await
            .unwrap(),
    )
    .await;
    let path = "/admin/snapshots/item-1";
    assert_eq!(
        contract().check(&Method::GET, path, status, &content_type, &body),
        Ok(())
    );
    let broken = drifted
        .check(&Method::GET, path, status, &content_type, &body)
        .unwrap_err();
    assert!(broken.contains("lastEventSequence"), "{broken}");

    // A status the document does not list for the operation.
    let mut doc: Value = serde_json::from_str(openapi_json().unwrap()).unwrap();
    doc["paths"][CREATE]["post"]["responses"]
        .as_object_mut()
        .unwrap()
        .remove("201");
    let undocumented = Contract::new(doc);
    let create = "/admin/snapshots/create/INVENTORY_ITEM/item-1";
    app.append_receipts("item-1", 1).await;
    let (status, content_type, body) = read(
        app.router
            .clone()
            .oneshot(admin(Method::POST, create))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        contract().check(&Method::POST, create, status, &content_type, &body),
        Ok(())
    );
    let broken = undocumented
        .check(&Method::POST, create, status, &content_type, &body)
        .unwrap_err();
    assert!(broken.contains("201"), "{broken}");
}

/// Status, content type and body of a response, unchecked.
async fn read(response: axum::response::Response) -> (StatusCode, String, Vec<u8>) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, content_type, body)
}
