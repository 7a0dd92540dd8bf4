//! The admin API end to end: the local HTTP server (same router as in Lambda) on 127.0.0.1,
//! DynamoDB tables on DynamoDB Local, a real HTTP client.

use admin_api::local::{bind, serve};
use admin_api::{dynamo_state, router, AccessPolicy, Authenticator, DevToken};
use integration_tests::TestTables;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use snapshot_core::config::Config;
use snapshot_core::domain::{AggregateRoot, InventoryItem, Warehouse};
use snapshot_core::AggregateRepository;
use snapshot_dynamo::{DynamoEventStore, DynamoSnapshotStore};

const TOKEN: &str = "e2e-dev-token";

struct Server {
    base: String,
    http: Client,
    repo: AggregateRepository<DynamoEventStore, DynamoSnapshotStore>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Starts the local server on an ephemeral port over fresh tables.
    async fn start(test_name: &str) -> Self {
        let tables = TestTables::create(test_name).await;
        let config = Config::from_lookup(|name| match name {
            "EVENTS_TABLE" => Some(tables.events_table.clone()),
            "SNAPSHOTS_TABLE" => Some(tables.snapshots_table.clone()),
            // Small items stay `json`, the warehouse below becomes `json+zstd`.
            "SNAPSHOT_COMPRESSION_THRESHOLD_BYTES" => Some("1024".to_owned()),
            _ => None,
        })
        .unwrap();
        let repo = AggregateRepository::new(
            tables.event_store(),
            tables.snapshot_store(),
            config.codec.clone(),
        );
        let state = dynamo_state(&integration_tests::sdk_config().await, config);
        let authenticator = Authenticator::local(AccessPolicy::default())
            .with_dev_token(DevToken::new(TOKEN).unwrap());
        let listener = bind(0).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(serve(listener, router(state, authenticator)));
        Self {
            base,
            http: Client::new(),
            repo,
            task,
        }
    }

    /// Sends as the admin (`token: true`) or anonymously; returns status and JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: bool,
    ) -> (StatusCode, String, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if token {
            request = request.bearer_auth(TOKEN);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, content_type, body)
    }

    async fn admin(&self, method: Method, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.call(method, path, None, true).await;
        (status, body)
    }

    async fn receive(&self, id: &str, times: usize) {
        let (mut root, _) = self.repo.load::<InventoryItem>(id).await.unwrap();
        for _ in 0..times {
            root.receive(5, None).unwrap();
        }
        self.repo.save(&mut root, None).await.unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn operator_workflow_over_http_on_dynamodb() {
    let server = Server::start("admin_e2e").await;
    let mut item = AggregateRoot::<InventoryItem>::new("item-e2e");
    item.create("SKU-E2E", "Widget", 3).unwrap();
    item.receive(10, None).unwrap();
    item.reserve("order-1", 4).unwrap();
    server.repo.save(&mut item, None).await.unwrap();

    let (status, _, body) = server.call(Method::GET, "/health", None, false).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("ok")));

    // Deny by default.
    let (status, content_type, body) = server
        .call(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/item-e2e",
            None,
            false,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], 401);

    let (status, body) = server
        .admin(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/item-e2e",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["snapshot"]["version"], 3);
    assert_eq!(body["snapshot"]["metadata"]["createdBy"], "local-admin");
    let (status, body) = server
        .admin(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/item-e2e",
        )
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (StatusCode::OK, &json!("alreadyExists"))
    );

    server.receive("item-e2e", 2).await;
    let (status, body) = server
        .admin(
            Method::POST,
            "/admin/snapshots/create/INVENTORY_ITEM/item-e2e",
        )
        .await;
    assert_eq!(
        (status, &body["snapshot"]["version"]),
        (StatusCode::CREATED, &json!(5))
    );
    server.receive("item-e2e", 1).await;

    let (status, page) = server
        .admin(Method::GET, "/admin/snapshots/item-e2e?limit=1")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["version"], 5);
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let (_, page) = server
        .admin(
            Method::GET,
            &format!("/admin/snapshots/item-e2e?limit=1&cursor={cursor}&includeState=true"),
        )
        .await;
    assert_eq!(page["items"][0]["version"], 3);
    assert_eq!(page["items"][0]["valid"], true);
    assert_eq!(
        page["items"][0]["state"]["reservations"],
        json!({"order-1": 4})
    );

    let (status, latest) = server
        .admin(Method::GET, "/admin/snapshots/item-e2e/latest")
        .await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    assert_eq!(latest["version"], 5);
    assert_eq!(latest["state"]["onHand"], 20);

    let (status, verdict) = server
        .admin(Method::POST, "/admin/snapshots/item-e2e/verify")
        .await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(verdict["result"], "match");
    assert_eq!(verdict["version"], 6);

    let (status, current) = server
        .admin(Method::GET, "/admin/aggregates/INVENTORY_ITEM/item-e2e")
        .await;
    assert_eq!(status, StatusCode::OK, "{current}");
    assert_eq!(current["state"]["onHand"], 25);
    // Verify loaded it from the stores (snapshot 5 + 1 event) and left the state in the
    // container's cache of warm states: this read is one Query of the boundary event.
    assert_eq!(
        current["load"],
        json!({"snapshotVersion": null, "eventsReplayed": 0, "snapshotsSkipped": 0, "roundTrips": 1, "requests": 1, "fromCache": true})
    );

    let (status, _) = server
        .admin(Method::DELETE, "/admin/snapshots/item-e2e/3")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = server
        .admin(Method::DELETE, "/admin/snapshots/item-e2e/5")
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let (status, _) = server
        .admin(Method::DELETE, "/admin/snapshots/item-e2e/5?force=true")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .admin(Method::GET, "/admin/snapshots/item-e2e/latest")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, content_type, problem) = server
        .call(
            Method::POST,
            "/admin/snapshots/create/CUSTOMER/c-1",
            None,
            true,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(
        problem["supportedTypes"],
        json!(["INVENTORY_ITEM", "WAREHOUSE"])
    );
    let (status, content_type, _) = server
        .call(Method::PUT, "/admin/snapshots/item-e2e", None, true)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(content_type, "application/problem+json");
}

#[tokio::test]
async fn compressed_states_and_cleanup_over_http_on_dynamodb() {
    let server = Server::start("admin_e2e_cleanup").await;
    // A warehouse state over the compression threshold: stored as json+zstd (binary).
    let mut warehouse = AggregateRoot::<Warehouse>::new("wh-e2e");
    warehouse.create("Big", 1_000_000).unwrap();
    for n in 0..40 {
        warehouse
            .add_location(&format!("aisle-{n:03}-shelf-with-a-long-name"))
            .unwrap();
    }
    server.repo.save(&mut warehouse, None).await.unwrap();
    let (status, body) = server
        .admin(Method::POST, "/admin/snapshots/create/WAREHOUSE/wh-e2e")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["snapshot"]["encoding"], "json+zstd");
    let (status, latest) = server
        .admin(Method::GET, "/admin/snapshots/wh-e2e/latest")
        .await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    assert_eq!(latest["state"]["locations"].as_object().unwrap().len(), 40);

    // Five manual snapshots of one item; the default keeps three, and each created past them
    // deletes the one it pushes out.
    let mut item = AggregateRoot::<InventoryItem>::new("item-prune");
    item.create("SKU-P", "Pruned", 0).unwrap();
    server.repo.save(&mut item, None).await.unwrap();
    for _ in 0..5 {
        server.receive("item-prune", 1).await;
        let (status, _) = server
            .admin(
                Method::POST,
                "/admin/snapshots/create/INVENTORY_ITEM/item-prune",
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, page) = server
        .admin(Method::GET, "/admin/snapshots/item-prune")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
    // Two more written by a repository without retention: the cleanup's to delete.
    let registry = snapshot_core::Registry::builtin();
    let kind = registry.get("INVENTORY_ITEM").unwrap();
    for _ in 0..2 {
        server.receive("item-prune", 1).await;
        server
            .repo
            .snapshot_now(
                kind.as_ref(),
                "item-prune",
                snapshot_core::snapshot::SnapshotMetadata::default(),
                None,
            )
            .await
            .unwrap();
    }
    let (status, _, dry) = server
        .call(
            Method::POST,
            "/admin/snapshots/cleanup",
            Some(json!({"aggregateId": "item-prune", "dryRun": true})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(
        (dry["deleted"].clone(), dry["dryRun"].clone()),
        (json!(2), json!(true))
    );

    let (status, _, done) = server
        .call(Method::POST, "/admin/snapshots/cleanup", None, true)
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["deleted"], 2);
    assert_eq!(done["complete"], true);
    let (_, page) = server
        .admin(Method::GET, "/admin/snapshots/item-prune")
        .await;
    let versions: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![8, 7, 6]);
    let (_, page) = server.admin(Method::GET, "/admin/snapshots/wh-e2e").await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "the warehouse keeps its only one"
    );
}
