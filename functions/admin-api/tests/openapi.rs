//! The OpenAPI document and the router agree: same paths, same methods; every documented
//! operation is served and every other method on those paths is a 405.

mod common;

use std::collections::BTreeSet;

use admin_api::{openapi_json, ROUTES};
use axum::http::{Method, StatusCode};
use common::{admin, TestApp};
use serde_json::Value;

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
