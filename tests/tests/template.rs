//! The SAM template (`template.yaml`) tied to the code: its tables match the schema the code
//! creates locally, every function is a crate of this workspace and every crate is deployed,
//! every environment variable the code reads is set (and none is set that nothing reads), the
//! stream mapping, schedule, routes and alarms match what the functions expect, each
//! function's IAM policy stays within what it needs, and `sam build` builds the bootstraps
//! `make build` builds (their settings in Cargo.toml alone).
//!
//! `scripts/template-check.sh` (part of `make test`) runs cfn-lint and `sam validate` on the
//! same file.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{KeyType, ScalarAttributeType, TimeToLiveStatus};
use integration_tests::env_reads::scan_dirs;
use integration_tests::template::{
    at, intrinsic, is_get_att, is_ref, references, Function, Intrinsic, Template,
};
use integration_tests::{workspace, TestTables};
use serde_norway::Value;
use snapshot_dynamo::schema;

/// Variables the Lambda environment sets itself (reserved: CloudFormation refuses them in a
/// function's environment). Code may read them; the template must not set them.
const SET_BY_LAMBDA: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_LEVEL",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
];

/// Variables only local development reads; setting them in AWS would be a mistake (a dev
/// token would open the API to anyone holding it).
const DEV_ONLY: &[&str] = &[
    // Bearer token of the local admin server (functions/admin-api/src/bin/admin-api-local.rs).
    "ADMIN_DEV_TOKEN",
    // Port of the local admin server.
    "ADMIN_API_PORT",
    // The local engines' endpoints (shared/dynamo/src/endpoints.rs; aws-config reads them too):
    // in AWS every client resolves its service's regional endpoint.
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_ENDPOINT_URL_S3",
];

fn template() -> Template {
    Template::load()
}

fn string<'a>(value: Option<&'a Value>, what: &str) -> &'a str {
    value
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{what}: expected a string, got {value:?}"))
}

/// `(attribute, KeyType)` pairs of a table's KeySchema.
fn key_schema(table: &Value) -> Vec<(String, String)> {
    key_schema_of(at(table, &["Properties"]).expect("Properties"))
}

/// `(attribute, KeyType)` pairs of the KeySchema in `holder` (a table's properties, an index).
fn key_schema_of(holder: &Value) -> Vec<(String, String)> {
    at(holder, &["KeySchema"])
        .and_then(Value::as_sequence)
        .expect("KeySchema")
        .iter()
        .map(|k| {
            (
                string(at(k, &["AttributeName"]), "AttributeName").to_owned(),
                string(at(k, &["KeyType"]), "KeyType").to_owned(),
            )
        })
        .collect()
}

/// attribute → type of a table's AttributeDefinitions.
fn attribute_types(table: &Value) -> BTreeMap<String, String> {
    at(table, &["Properties", "AttributeDefinitions"])
        .and_then(Value::as_sequence)
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            (
                string(at(a, &["AttributeName"]), "AttributeName").to_owned(),
                string(at(a, &["AttributeType"]), "AttributeType").to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn tables_match_the_shared_schema() {
    let t = template();
    let events = t.resource("EventsTable");
    assert_eq!(
        key_schema(events),
        pairs(&[
            (schema::EVENTS_PARTITION_KEY, "HASH"),
            (schema::EVENTS_SORT_KEY, "RANGE")
        ])
    );
    assert_eq!(
        attribute_types(events),
        pairs(&[
            (schema::EVENTS_PARTITION_KEY, "S"),
            (schema::EVENTS_SORT_KEY, "N")
        ])
        .into_iter()
        .collect()
    );
    assert_eq!(
        string(
            at(
                events,
                &["Properties", "StreamSpecification", "StreamViewType"]
            ),
            "StreamViewType"
        ),
        schema::EVENTS_STREAM_VIEW.as_str()
    );

    let snapshots = t.resource("SnapshotsTable");
    assert_eq!(
        key_schema(snapshots),
        pairs(&[
            (schema::SNAPSHOTS_PARTITION_KEY, "HASH"),
            (schema::SNAPSHOTS_SORT_KEY, "RANGE")
        ])
    );
    assert_eq!(
        attribute_types(snapshots),
        pairs(&[
            (schema::SNAPSHOTS_PARTITION_KEY, "S"),
            (schema::SNAPSHOTS_SORT_KEY, "N"),
            (schema::RETENTION_INDEX_SORT_KEY, "N")
        ])
        .into_iter()
        .collect()
    );
    // The keys-only index the pruner's sweep scans: the shared definition's name, keys and
    // projection (shared/dynamo/src/schema.rs).
    let indexes = at(snapshots, &["Properties", "GlobalSecondaryIndexes"])
        .and_then(Value::as_sequence)
        .expect("GlobalSecondaryIndexes");
    let [index] = indexes.as_slice() else {
        panic!("one index on the snapshot table, got {indexes:?}");
    };
    assert_eq!(
        string(at(index, &["IndexName"]), "IndexName"),
        schema::RETENTION_INDEX
    );
    assert_eq!(
        key_schema_of(index),
        pairs(&[
            (schema::SNAPSHOTS_PARTITION_KEY, "HASH"),
            (schema::RETENTION_INDEX_SORT_KEY, "RANGE")
        ])
    );
    assert_eq!(
        string(
            at(index, &["Projection", "ProjectionType"]),
            "ProjectionType"
        ),
        "INCLUDE"
    );
    let projected: Vec<&str> = at(index, &["Projection", "NonKeyAttributes"])
        .and_then(Value::as_sequence)
        .expect("NonKeyAttributes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(projected, schema::RETENTION_INDEX_ATTRIBUTES);
    let ttl = at(snapshots, &["Properties", "TimeToLiveSpecification"]).expect("snapshot TTL");
    assert_eq!(
        string(at(ttl, &["AttributeName"]), "TTL attribute"),
        schema::SNAPSHOTS_TTL_ATTRIBUTE
    );
    assert_eq!(at(ttl, &["Enabled"]).and_then(Value::as_bool), Some(true));

    for (id, table) in [("EventsTable", events), ("SnapshotsTable", snapshots)] {
        assert_eq!(
            string(at(table, &["Properties", "BillingMode"]), id),
            "PAY_PER_REQUEST",
            "{id}"
        );
        let pitr = at(
            table,
            &[
                "Properties",
                "PointInTimeRecoverySpecification",
                "PointInTimeRecoveryEnabled",
            ],
        );
        assert_eq!(
            pitr.and_then(Value::as_bool),
            Some(true),
            "{id}: point-in-time recovery"
        );
        let sse = at(table, &["Properties", "SSESpecification"]).expect("SSESpecification");
        assert_eq!(
            at(sse, &["SSEEnabled"]).and_then(Value::as_bool),
            Some(true),
            "{id}"
        );
        assert_eq!(string(at(sse, &["SSEType"]), id), "KMS", "{id}");
        assert!(
            is_ref(at(sse, &["KMSMasterKeyId"]).expect("key"), "DataKey"),
            "{id}: encrypted with DataKey"
        );
    }
}

/// The tables the local tools create (shared's schema functions) have the keys, types, billing
/// mode, stream and TTL the template declares.
#[tokio::test]
async fn tables_created_locally_match_the_template() {
    let t = template();
    let tables = TestTables::create("template").await;
    for (id, name) in [
        ("EventsTable", &tables.events_table),
        ("SnapshotsTable", &tables.snapshots_table),
    ] {
        let declared = t.resource(id);
        let description = tables
            .client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .unwrap();
        let created = description.table().unwrap();
        let keys: Vec<(String, String)> = created
            .key_schema()
            .iter()
            .map(|k| {
                let kind = match k.key_type() {
                    KeyType::Hash => "HASH",
                    KeyType::Range => "RANGE",
                    other => panic!("{id}: unexpected key type {other:?}"),
                };
                (k.attribute_name().to_owned(), kind.to_owned())
            })
            .collect();
        assert_eq!(keys, key_schema(declared), "{id}: key schema");
        let types: BTreeMap<String, String> = created
            .attribute_definitions()
            .iter()
            .map(|a| {
                let kind = match a.attribute_type() {
                    ScalarAttributeType::S => "S",
                    ScalarAttributeType::N => "N",
                    ScalarAttributeType::B => "B",
                    other => panic!("{id}: unexpected attribute type {other:?}"),
                };
                (a.attribute_name().to_owned(), kind.to_owned())
            })
            .collect();
        assert_eq!(
            types,
            attribute_types(declared),
            "{id}: attribute definitions"
        );
        let billing = created
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(aws_sdk_dynamodb::types::BillingMode::as_str);
        assert_eq!(
            billing,
            at(declared, &["Properties", "BillingMode"]).and_then(Value::as_str),
            "{id}: billing mode"
        );
        let stream = created
            .stream_specification()
            .filter(|s| s.stream_enabled())
            .and_then(|s| s.stream_view_type())
            .map(aws_sdk_dynamodb::types::StreamViewType::as_str);
        assert_eq!(
            stream,
            at(
                declared,
                &["Properties", "StreamSpecification", "StreamViewType"]
            )
            .and_then(Value::as_str),
            "{id}: stream"
        );
        let ttl = tables
            .client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .unwrap();
        let ttl = ttl.time_to_live_description().unwrap();
        let created_ttl = (ttl.time_to_live_status() == Some(&TimeToLiveStatus::Enabled))
            .then(|| ttl.attribute_name().unwrap_or_default());
        let declared_ttl = at(declared, &["Properties", "TimeToLiveSpecification"])
            .filter(|s| at(s, &["Enabled"]).and_then(Value::as_bool) == Some(true))
            .and_then(|s| at(s, &["AttributeName"]))
            .and_then(Value::as_str);
        assert_eq!(created_ttl, declared_ttl, "{id}: TTL");
    }
}

#[test]
fn every_function_maps_to_a_workspace_crate_and_binary() {
    let members = workspace::members();
    for f in template().functions() {
        let dir = f.code_uri().trim_end_matches('/');
        assert!(
            members.contains(dir),
            "{}: CodeUri {dir} is not a workspace member",
            f.id
        );
        let manifest = workspace::manifest(dir);
        assert_eq!(
            string(f.metadata(&["BuildMethod"]), "Metadata.BuildMethod"),
            "rust-cargolambda",
            "{}",
            f.id
        );
        let binary = string(
            f.metadata(&["BuildProperties", "Binary"]),
            "Metadata.BuildProperties.Binary",
        );
        assert!(
            manifest.bins.contains(binary),
            "{}: binary {binary} is not built by crate {} (bins: {:?})",
            f.id,
            manifest.package,
            manifest.bins
        );
        assert_eq!(
            binary, manifest.package,
            "{}: deploys the crate's main binary",
            f.id
        );
    }
}

#[test]
fn every_function_crate_is_deployed_by_the_template() {
    let deployed: BTreeSet<String> = template()
        .functions()
        .iter()
        .map(|f| f.code_uri().trim_end_matches('/').to_owned())
        .collect();
    let crates = workspace::function_crate_dirs();
    assert!(!crates.is_empty(), "no crates under functions/");
    let missing: Vec<&String> = crates.difference(&deployed).collect();
    assert!(
        missing.is_empty(),
        "function crates without a function in template.yaml: {missing:?}"
    );
}

/// `sam build` and `make build` build the same bootstraps. SAM's rust-cargolambda build runs
/// `cargo lambda build --release --arm64 --bin <Binary>` in each function's folder and takes
/// nothing else from the template (SAM CLI 1.170 reads `BuildProperties.Binary` only; a `Flags`
/// entry would be dropped without a word). So every setting that shapes a bootstrap lives in
/// the workspace's Cargo.toml, which both builds' cargo-lambda read: `[profile.release]` and
/// cargo-lambda's `[workspace.metadata.lambda.build]`. Without `disable_optimizations`,
/// cargo-lambda would build with `panic = "abort"` (no panic-to-500 in the admin API, a cold
/// start after every panic) and its own `-C target-cpu`, not the measured profile
/// (docs/binaries.md).
#[test]
fn sam_build_and_make_build_take_their_settings_from_cargo_toml_alone() {
    for f in template().functions() {
        let properties: BTreeSet<&str> = f
            .metadata(&["BuildProperties"])
            .and_then(Value::as_mapping)
            .map(|m| m.keys().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            properties,
            BTreeSet::from(["Binary"]),
            "{}: SAM passes cargo-lambda nothing but Binary; put build settings in Cargo.toml",
            f.id
        );
    }
    let cargo_lambda = workspace::root_table("[workspace.metadata.lambda.build]");
    assert_eq!(
        cargo_lambda
            .get("disable_optimizations")
            .map(String::as_str),
        Some("true"),
        "Cargo.toml's [workspace.metadata.lambda.build] keeps cargo-lambda's release defaults \
         (panic = \"abort\", -C target-cpu) out of both builds"
    );
    let release = workspace::root_table("[profile.release]");
    assert_eq!(
        release.get("panic").map(String::as_str),
        Some("unwind"),
        "the release profile says how panics behave (docs/binaries.md#panics-unwinding-stays-on)"
    );
    // --release: SAM passes it too; --locked changes no output; the rest selects functions
    // (`"${bins[@]}"`) or is the caller's (`"$@"`, e.g. --arm64, which SAM passes as well).
    let same_for_both = ["--release", "--locked", "\"${bins[@]}\"", "\"$@\""];
    let only_make_build: Vec<String> = workspace::make_build_arguments()
        .into_iter()
        .filter(|arg| !same_for_both.contains(&arg.as_str()))
        .collect();
    assert!(
        only_make_build.is_empty(),
        "scripts/build.sh passes {only_make_build:?} to cargo lambda build and sam build does not: \
         put the setting in Cargo.toml ([profile.release] or [workspace.metadata.lambda.build])"
    );
}

#[test]
fn functions_run_on_arm64_al2023_with_json_logs_tracing_and_retained_log_groups() {
    let t = template();
    for f in t.functions() {
        let id = f.id;
        assert_eq!(
            string(f.property("Runtime"), "Runtime"),
            "provided.al2023",
            "{id}"
        );
        assert_eq!(
            string(f.property("Handler"), "Handler"),
            "bootstrap",
            "{id}"
        );
        let arch: Vec<&str> = f
            .property("Architectures")
            .and_then(Value::as_sequence)
            .expect("Architectures")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(arch, ["arm64"], "{id}");
        assert_eq!(string(f.property("Tracing"), "Tracing"), "Active", "{id}");
        let logging = f.property("LoggingConfig").expect("LoggingConfig");
        assert_eq!(
            string(at(logging, &["LogFormat"]), "LogFormat"),
            "JSON",
            "{id}"
        );
        let group = match at(logging, &["LogGroup"]).and_then(intrinsic) {
            Some(Intrinsic::Ref(group)) => group,
            other => {
                panic!("{id}: LoggingConfig.LogGroup must be !Ref to a log group, got {other:?}")
            }
        };
        let group = t.resource(group);
        assert_eq!(
            string(at(group, &["Type"]), "Type"),
            "AWS::Logs::LogGroup",
            "{id}"
        );
        assert!(
            at(group, &["Properties", "RetentionInDays"]).is_some(),
            "{id}: log retention"
        );
        assert!(
            is_get_att(
                at(group, &["Properties", "KmsKeyId"]).expect("KmsKeyId"),
                "DataKey",
                "Arn"
            ),
            "{id}: logs encrypted with DataKey"
        );
    }
}

/// Variables read by the code deployed as `f`: its crate and the workspace crates it uses.
fn variables_read_by(f: &Function<'_>) -> BTreeSet<String> {
    let dirs =
        workspace::source_dirs_with_workspace_dependencies(f.code_uri().trim_end_matches('/'));
    let reads = scan_dirs(&dirs);
    assert!(
        reads.unresolved.is_empty(),
        "{}: environment reads the scan cannot name (use a literal or a `const NAME: &str`): {:#?}",
        f.id,
        reads.unresolved
    );
    reads.names()
}

fn allowed_unset(name: &str) -> bool {
    SET_BY_LAMBDA.contains(&name) || DEV_ONLY.contains(&name)
}

#[test]
fn every_variable_the_code_reads_is_set_in_the_template() {
    for f in template().functions() {
        let read = variables_read_by(&f);
        assert!(
            read.contains("EVENTS_TABLE"),
            "{}: the scan found too little: {read:?}",
            f.id
        );
        let set = f.environment();
        let missing: Vec<&String> = read
            .iter()
            .filter(|v| !allowed_unset(v) && !set.contains_key(*v))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: reads {missing:?} but template.yaml does not set them (Globals or the function)",
            f.id
        );
    }
}

#[test]
fn every_variable_the_template_sets_is_read_by_the_code() {
    for f in template().functions() {
        let read = variables_read_by(&f);
        let stale: Vec<String> = f
            .environment()
            .into_keys()
            .filter(|v| !read.contains(v))
            .collect();
        assert!(
            stale.is_empty(),
            "{}: template.yaml sets {stale:?}, which its code never reads",
            f.id
        );
    }
}

#[test]
fn template_sets_no_dev_only_or_lambda_reserved_variable() {
    for f in template().functions() {
        for name in f.environment().keys() {
            assert!(
                !DEV_ONLY.contains(&name.as_str()),
                "{}: {name} is for local development only",
                f.id
            );
            assert!(
                !SET_BY_LAMBDA.contains(&name.as_str()),
                "{}: {name} is reserved by Lambda",
                f.id
            );
        }
    }
}

#[test]
fn snapshotter_stream_mapping_filters_inserts_and_reports_partial_failures() {
    let t = template();
    let f = t.function("SnapshotterFunction");
    let streams = f.events_of_type("DynamoDB");
    let [(_, stream)] = streams.as_slice() else {
        panic!("the snapshotter needs exactly one DynamoDB stream event, got {streams:?}");
    };
    let p = at(stream, &["Properties"]).expect("Properties");
    match at(p, &["Stream"]).and_then(intrinsic) {
        Some(Intrinsic::If {
            condition,
            then,
            otherwise,
        }) => {
            assert_eq!(condition, "CreateEventsTable");
            assert!(is_get_att(then, "EventsTable", "StreamArn"));
            assert!(is_ref(otherwise, "ExistingEventsStreamArn"));
        }
        other => panic!("Stream: expected the event table's stream, got {other:?}"),
    }
    let types: Vec<&str> = at(p, &["FunctionResponseTypes"])
        .and_then(Value::as_sequence)
        .expect("FunctionResponseTypes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(types, ["ReportBatchItemFailures"]);
    assert_eq!(
        at(p, &["BisectBatchOnFunctionError"]).and_then(Value::as_bool),
        Some(true)
    );
    let retries = at(p, &["MaximumRetryAttempts"])
        .and_then(Value::as_u64)
        .expect("MaximumRetryAttempts");
    assert!((1..=10).contains(&retries), "bounded retries: {retries}");
    let age = at(p, &["MaximumRecordAgeInSeconds"])
        .and_then(Value::as_u64)
        .expect("MaximumRecordAgeInSeconds");
    assert!((60..=86_400).contains(&age), "bounded record age: {age}");
    for key in [
        "StartingPosition",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
    ] {
        assert!(at(p, &[key]).is_some(), "{key}");
    }

    // The filter lets through exactly the records the snapshotter handles.
    let filters = at(p, &["FilterCriteria", "Filters"])
        .and_then(Value::as_sequence)
        .expect("Filters");
    let [filter] = filters.as_slice() else {
        panic!("one filter expected: {filters:?}")
    };
    let pattern: serde_json::Value =
        serde_json::from_str(string(at(filter, &["Pattern"]), "Pattern")).unwrap();
    assert_eq!(
        pattern,
        serde_json::json!({ "eventName": [snapshotter::records::INSERT] })
    );

    let failure = at(p, &["DestinationConfig", "OnFailure"]).expect("OnFailure destination");
    assert_eq!(string(at(failure, &["Type"]), "OnFailure.Type"), "SQS");
    assert!(is_get_att(
        at(failure, &["Destination"]).unwrap(),
        "SnapshotterFailureQueue",
        "Arn"
    ));
    let queue = t.resource("SnapshotterFailureQueue");
    assert!(is_ref(
        at(queue, &["Properties", "KmsMasterKeyId"]).expect("queue encryption"),
        "DataKey"
    ));
}

#[test]
fn pruner_runs_on_the_prune_schedule_and_accepts_its_events() {
    let t = template();
    let f = t.function("PrunerFunction");
    let schedules = f.events_of_type("Schedule");
    let [(_, schedule)] = schedules.as_slice() else {
        panic!("the pruner needs exactly one Schedule event, got {schedules:?}");
    };
    assert!(is_ref(
        at(schedule, &["Properties", "Schedule"]).unwrap(),
        "PruneSchedule"
    ));
    assert_eq!(
        t.parameter_default("PruneSchedule").and_then(Value::as_str),
        Some("rate(1 day)")
    );
    assert!(
        at(schedule, &["Properties", "Input"]).is_none(),
        "the rule delivers the EventBridge event itself"
    );
    // What an EventBridge rule delivers is a plain pruning run.
    let delivered: serde_json::Value =
        serde_json::from_str(include_str!("../../events/pruner/scheduled.json")).unwrap();
    assert_eq!(
        pruner::parse_input(delivered).unwrap(),
        pruner::PruneInput::default()
    );
}

#[test]
fn admin_routes_need_the_jwt_authorizer_and_only_health_is_open() {
    let t = template();
    let api = t.resource("AdminHttpApi");
    assert_eq!(
        string(at(api, &["Type"]), "Type"),
        "AWS::Serverless::HttpApi"
    );
    assert_eq!(
        string(
            at(api, &["Properties", "Auth", "DefaultAuthorizer"]),
            "DefaultAuthorizer"
        ),
        "AdminJwt",
        "deny by default"
    );
    let jwt = at(
        api,
        &[
            "Properties",
            "Auth",
            "Authorizers",
            "AdminJwt",
            "JwtConfiguration",
        ],
    )
    .expect("JWT authorizer");
    assert!(at(jwt, &["issuer"]).is_some() && at(jwt, &["audience"]).is_some());

    let f = t.function("AdminApiFunction");
    let routes: Vec<(String, String, String)> = f
        .events_of_type("HttpApi")
        .into_iter()
        .map(|(name, e)| {
            let p = at(e, &["Properties"]).expect("Properties");
            assert!(
                is_ref(at(p, &["ApiId"]).expect("ApiId"), "AdminHttpApi"),
                "{name}: on AdminHttpApi"
            );
            (
                string(at(p, &["Method"]), "Method").to_ascii_uppercase(),
                string(at(p, &["Path"]), "Path").to_owned(),
                at(p, &["Auth", "Authorizer"])
                    .and_then(Value::as_str)
                    .unwrap_or("AdminJwt")
                    .to_owned(),
            )
        })
        .collect();
    let catch_all = (
        "ANY".to_owned(),
        "/admin/{proxy+}".to_owned(),
        "AdminJwt".to_owned(),
    );
    assert!(routes.contains(&catch_all), "{routes:?}");

    for route in admin_api::ROUTES {
        if route.admin_only() {
            assert!(
                route.path().starts_with("/admin/"),
                "{} is admin-only but not under /admin/",
                route.path()
            );
        } else {
            let open = (
                route.method().as_str().to_owned(),
                route.path().to_owned(),
                "NONE".to_owned(),
            );
            assert!(
                routes.contains(&open),
                "{} {} must be served without auth: {routes:?}",
                route.method(),
                route.path()
            );
        }
    }
    // Nothing else is open: every unauthenticated route is one the code means to be public.
    for (method, path, authorizer) in &routes {
        if authorizer == "NONE" {
            assert!(
                admin_api::ROUTES.iter().any(|r| !r.admin_only()
                    && r.path() == path.as_str()
                    && r.method().as_str() == method.as_str()),
                "{method} {path} is open in template.yaml but admin-only in the code"
            );
        }
    }
}

/// DynamoDB actions of `f`'s inline policies, with the resources each statement names.
fn dynamodb_grants(f: &Function<'_>) -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    f.policy_statements()
        .into_iter()
        .filter_map(|s| {
            let actions: BTreeSet<String> = match at(s, &["Action"]) {
                Some(Value::String(a)) => BTreeSet::from([a.clone()]),
                Some(Value::Sequence(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                other => panic!("{}: Action {other:?}", f.id),
            };
            let dynamodb: BTreeSet<String> = actions
                .into_iter()
                .filter(|a| a.starts_with("dynamodb:"))
                .collect();
            (!dynamodb.is_empty()).then(|| {
                (
                    dynamodb,
                    references(at(s, &["Resource"]).expect("Resource")),
                )
            })
        })
        .collect()
}

#[test]
fn pruner_prunes_with_batch_deletes_and_only_reads_events_for_backfills() {
    let t = template();
    let f = t.function("PrunerFunction");
    // Deletes go through BatchWriteItem only: no DeleteItem. GetItem, PutItem and UpdateItem
    // are the backfill's (job record, new snapshots and their heads), which the schedule
    // resumes. The table is never scanned: the sweep scans the retention index only.
    let on_snapshots: BTreeSet<String> = [
        "Query",
        "BatchWriteItem",
        "GetItem",
        "PutItem",
        "UpdateItem",
    ]
    .iter()
    .map(|a| format!("dynamodb:{a}"))
    .collect();
    let on_index = BTreeSet::from(["dynamodb:Scan".to_owned()]);
    let on_events = BTreeSet::from(["dynamodb:Query".to_owned()]);
    let grants = dynamodb_grants(&f);
    assert!(!grants.is_empty());
    let index_grants: Vec<_> = f
        .policy_statements()
        .into_iter()
        .filter(|s| {
            serde_norway::to_string(at(s, &["Resource"]).unwrap())
                .unwrap()
                .contains("/index/")
        })
        .map(|s| serde_norway::to_string(s).unwrap())
        .collect();
    assert_eq!(index_grants.len(), 1, "{index_grants:?}");
    assert!(
        index_grants[0].contains("${SnapshotsTable.Arn}/index/retention"),
        "the sweep's grant names the retention index: {index_grants:?}"
    );
    for (actions, resources) in grants {
        if actions == on_index {
            continue;
        }
        if resources == BTreeSet::from(["SnapshotsTable".to_owned()]) {
            assert!(
                actions.is_subset(&on_snapshots),
                "pruner actions {actions:?}"
            );
        } else {
            assert_eq!(
                actions, on_events,
                "on {resources:?} the pruner only reads events"
            );
            assert!(resources.contains("EventsTable"), "{resources:?}");
        }
    }
    assert!(
        f.events_of_type("DynamoDB").is_empty(),
        "the pruner reads no stream"
    );
}

#[test]
fn function_policies_name_their_actions_and_resources() {
    for f in template().functions() {
        for statement in f.policy_statements() {
            let text = serde_norway::to_string(statement).unwrap();
            let actions = serde_norway::to_string(at(statement, &["Action"]).unwrap()).unwrap();
            assert!(
                !actions.contains('*'),
                "{}: wildcard action in {text}",
                f.id
            );
            let resource = at(statement, &["Resource"]).unwrap();
            // X-Ray has no resource-level permissions (tests/least_privilege.rs keeps the
            // allow-list of every `Resource: "*"`).
            let xray_only = actions.lines().all(|a| a.contains("xray:"));
            assert!(
                resource.as_str() != Some("*") || xray_only,
                "{}: Resource * in {text}",
                f.id
            );
        }
        for (actions, resources) in dynamodb_grants(&f) {
            let tables = BTreeSet::from([
                "SnapshotsTable".to_owned(),
                "EventsTable".to_owned(),
                "ExistingEventsStreamArn".to_owned(),
            ]);
            assert!(
                resources.is_subset(&tables),
                "{}: {actions:?} on {resources:?}",
                f.id
            );
            if resources.contains("EventsTable") {
                let read_only = BTreeSet::from(
                    [
                        "dynamodb:Query",
                        "dynamodb:DescribeStream",
                        "dynamodb:GetRecords",
                        "dynamodb:GetShardIterator",
                        "dynamodb:ListStreams",
                    ]
                    .map(str::to_owned),
                );
                assert!(
                    actions.is_subset(&read_only),
                    "{}: the event table is read-only: {actions:?}",
                    f.id
                );
            }
        }
    }
}

#[test]
fn alarms_watch_iterator_age_errors_queue_depth_and_snapshot_failures() {
    let t = template();
    let alarms = t.resources_of_type("AWS::CloudWatch::Alarm");
    let watches = |namespace: &str, metric: &str, dimension_value: &dyn Fn(&Value) -> bool| {
        alarms.iter().any(|(_, a)| {
            let p = at(a, &["Properties"]).unwrap();
            at(p, &["Namespace"]).and_then(Value::as_str) == Some(namespace)
                && at(p, &["MetricName"]).and_then(Value::as_str) == Some(metric)
                && at(p, &["Dimensions"])
                    .and_then(Value::as_sequence)
                    .is_some_and(|d| {
                        d.iter()
                            .any(|d| at(d, &["Value"]).is_some_and(dimension_value))
                    })
        })
    };
    assert!(watches("AWS/Lambda", "IteratorAge", &|v| is_ref(
        v,
        "SnapshotterFunction"
    )));
    for f in t.functions() {
        assert!(
            watches("AWS/Lambda", "Errors", &|v| is_ref(v, f.id)),
            "{}: Errors alarm",
            f.id
        );
    }
    assert!(watches(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        &|v| is_get_att(v, "SnapshotterFailureQueue", "QueueName")
    ));
    // The snapshotter's own failure count (EMF), under the names the code emits.
    assert!(
        alarms.iter().any(|(_, a)| {
            let p = at(a, &["Properties"]).unwrap();
            at(p, &["Namespace"]).and_then(Value::as_str) == Some(snapshot_core::metrics::NAMESPACE)
                && at(p, &["MetricName"]).and_then(Value::as_str)
                    == Some(snapshotter::metrics::FAILURES)
                && at(p, &["Dimensions"])
                    .and_then(Value::as_sequence)
                    .is_some_and(|d| {
                        d.iter().any(|d| {
                            at(d, &["Name"]).and_then(Value::as_str) == Some("Function")
                                && at(d, &["Value"]).and_then(Value::as_str)
                                    == Some(snapshotter::metrics::FUNCTION)
                        })
                    })
        }),
        "no alarm on {}/{}",
        snapshot_core::metrics::NAMESPACE,
        snapshotter::metrics::FAILURES
    );
}

#[test]
fn key_rotates_and_outputs_name_what_operators_need() {
    let t = template();
    let key = t.resource("DataKey");
    assert_eq!(
        at(key, &["Properties", "EnableKeyRotation"]).and_then(Value::as_bool),
        Some(true)
    );
    for output in [
        "AdminApiUrl",
        "EventsTableName",
        "EventsStreamArn",
        "SnapshotsTableName",
        "FailureQueueUrl",
    ] {
        assert!(
            at(t.root(), &["Outputs", output, "Value"]).is_some(),
            "output {output}"
        );
    }
}

/// Runs the configuration loading of the function's `main` on `lookup`.
fn load_config(
    function_id: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), snapshot_core::config::ConfigError> {
    match function_id {
        "SnapshotterFunction" => snapshotter::Settings::from_lookup(lookup).map(drop),
        "PrunerFunction" => pruner::PrunerSettings::from_lookup(lookup).map(drop),
        "AdminApiFunction" => {
            snapshot_core::config::Config::from_lookup(&lookup)?;
            admin_api::AccessPolicy::from_lookup(&lookup).map(drop)
        }
        other => panic!("no configuration loader known for {other}: add it here"),
    }
}

/// Text of a parameter's default, as CloudFormation passes it to an environment variable.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Parameters deliberately without a default (given at deploy time), each with why, and a value
/// of the right shape standing in for them here.
const DEPLOY_TIME_PARAMETERS: &[(&str, &str, &str)] = &[
    (
        "SnapshotMacKmsKeyArn",
        "the KMS key of the snapshot MAC data keys, made at set-up (docs/security.md)",
        "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000",
    ),
    (
        "SnapshotMacKeys",
        "encrypted MAC data keys: no key may ship in the template",
        "k1=AQIDBA==",
    ),
];

/// The function's environment with parameters at their defaults; resource names and other
/// computed values become a placeholder name.
fn default_environment(t: &Template, f: &Function<'_>) -> BTreeMap<String, String> {
    f.environment()
        .into_iter()
        .map(|(name, value)| {
            let text = match intrinsic(value) {
                Some(Intrinsic::Ref(param)) if at(t.root(), &["Parameters", param]).is_some() => {
                    t.parameter_default(param).map_or_else(
                        || {
                            DEPLOY_TIME_PARAMETERS
                                .iter()
                                .find(|(p, _, _)| *p == param)
                                .map_or_else(
                                    || {
                                        panic!(
                                            "{}: {name} = !Ref {param}, which has no default",
                                            f.id
                                        )
                                    },
                                    |(_, _, example)| (*example).to_owned(),
                                )
                        },
                        scalar_text,
                    )
                }
                Some(_) => "placeholder-name".to_owned(),
                None => scalar_text(value),
            };
            (name, text)
        })
        .collect()
}

#[test]
fn template_defaults_pass_each_functions_configuration_checks() {
    let t = template();
    for f in t.functions() {
        let env = default_environment(&t, &f);
        if let Err(e) = load_config(f.id, |k| env.get(k).cloned()) {
            panic!("{}: the template's defaults fail at cold start: {e}", f.id);
        }
    }
}

/// A parameter's allowed values and numeric bounds are exactly what the code accepts: values
/// inside pass the function's configuration checks, values just outside fail naming the variable.
#[test]
fn parameter_constraints_match_the_codes_validation() {
    let t = template();
    let mut checked = BTreeSet::new();
    for f in t.functions() {
        let defaults = default_environment(&t, &f);
        let load_with = |name: &str, value: String| {
            let mut env = defaults.clone();
            env.insert(name.to_owned(), value);
            load_config(f.id, |k| env.get(k).cloned())
        };
        for (name, value) in f.environment() {
            let Some(Intrinsic::Ref(param)) = intrinsic(value) else {
                continue;
            };
            let Some(spec) = at(t.root(), &["Parameters", param]) else {
                continue;
            };
            if let Some(allowed) = at(spec, &["AllowedValues"]).and_then(Value::as_sequence) {
                for v in allowed.iter().map(scalar_text) {
                    assert!(
                        load_with(&name, v.clone()).is_ok(),
                        "{}: {name}={v} (allowed by {param}) is refused",
                        f.id
                    );
                }
                checked.insert(param);
            }
            let bound = |key: &str| at(spec, &[key]).and_then(Value::as_u64);
            if let (Some(min), Some(max)) = (bound("MinValue"), bound("MaxValue")) {
                for inside in [min, max] {
                    assert!(
                        load_with(&name, inside.to_string()).is_ok(),
                        "{}: {name}={inside} (within {param}) is refused",
                        f.id
                    );
                }
                let outside = [min.checked_sub(1), max.checked_add(1)];
                for v in outside.into_iter().flatten() {
                    let err = load_with(&name, v.to_string()).expect_err("outside the bounds");
                    assert_eq!(err.variable, name, "{}: {name}={v} (outside {param})", f.id);
                }
                checked.insert(param);
            }
        }
    }
    let expected = [
        "SnapshotStrategy",
        "SnapshotThreshold",
        "SnapshotIntervalHours",
        "SnapshotBytesThreshold",
        "MaxSnapshotsPerAggregate",
        "SnapshotTtlDays",
    ];
    for param in expected {
        assert!(checked.contains(param), "{param} was not checked");
    }
}

/// The bucket of large states (claim check): KMS-encrypted with the data key, versioning off,
/// a lifecycle rule for orphaned (pending) objects, TLS only, and only the functions that
/// need it reach its `states/` objects.
#[test]
fn large_state_bucket_is_encrypted_tls_only_and_expires_orphans() {
    let t = template();
    let bucket = t.resource("SnapshotStateBucket");
    let sse = at(
        bucket,
        &[
            "Properties",
            "BucketEncryption",
            "ServerSideEncryptionConfiguration",
        ],
    )
    .and_then(Value::as_sequence)
    .and_then(|rules| rules.first())
    .expect("default encryption");
    assert_eq!(
        at(sse, &["ServerSideEncryptionByDefault", "SSEAlgorithm"]).and_then(Value::as_str),
        Some("aws:kms")
    );
    assert!(is_get_att(
        at(sse, &["ServerSideEncryptionByDefault", "KMSMasterKeyID"]).unwrap(),
        "DataKey",
        "Arn"
    ));
    assert!(
        at(bucket, &["Properties", "VersioningConfiguration"]).is_none(),
        "versioning stays off"
    );
    let rules = at(bucket, &["Properties", "LifecycleConfiguration", "Rules"])
        .and_then(Value::as_sequence)
        .unwrap();
    let orphans = rules
        .iter()
        .find(|r| at(r, &["Id"]).and_then(Value::as_str) == Some("ExpireOrphanedStates"))
        .expect("orphan rule");
    let tag = at(orphans, &["TagFilters"])
        .and_then(Value::as_sequence)
        .and_then(|f| f.first())
        .unwrap();
    assert_eq!(
        at(tag, &["Key"]).and_then(Value::as_str),
        Some(snapshot_s3::STATE_TAG)
    );
    assert_eq!(
        at(tag, &["Value"]).and_then(Value::as_str),
        Some(snapshot_s3::PENDING)
    );
    let policy = t.resource("SnapshotStateBucketPolicy");
    let statements = at(policy, &["Properties", "PolicyDocument", "Statement"])
        .and_then(Value::as_sequence)
        .unwrap();
    assert!(statements.iter().any(|s| {
        at(s, &["Effect"]).and_then(Value::as_str) == Some("Deny")
            && at(s, &["Condition", "Bool", "aws:SecureTransport"]).and_then(Value::as_str)
                == Some("false")
    }));
    // Every function that reads or writes states names the bucket's objects, never "*".
    for id in ["SnapshotterRole", "PrunerFunction", "AdminApiFunction"] {
        let text = serde_norway::to_string(t.resource(id)).unwrap();
        assert!(text.contains("s3:"), "{id} has no S3 grant");
        assert!(
            text.contains("${SnapshotStateBucket.Arn}/states/*"),
            "{id} S3 grant is not scoped to the state objects"
        );
    }
    let env = t.root();
    assert!(at(
        env,
        &[
            "Globals",
            "Function",
            "Environment",
            "Variables",
            "SNAPSHOT_BUCKET"
        ]
    )
    .is_some_and(|v| is_ref(v, "SnapshotStateBucket")));
}

#[test]
fn drift_and_unknown_event_types_have_alarms_and_the_dashboard_shows_what_the_code_emits() {
    let t = template();
    for (alarm, metric) in [
        (
            "SnapshotterDriftAlarm",
            snapshotter::metrics::SNAPSHOT_DRIFT,
        ),
        (
            "SnapshotterUnknownEventTypesAlarm",
            snapshotter::metrics::UNKNOWN_EVENT_TYPES,
        ),
    ] {
        let p = at(t.resource(alarm), &["Properties"]).unwrap();
        assert_eq!(
            at(p, &["Namespace"]).and_then(Value::as_str),
            Some(snapshot_core::metrics::NAMESPACE)
        );
        assert_eq!(at(p, &["MetricName"]).and_then(Value::as_str), Some(metric));
        let dimension = at(p, &["Dimensions"])
            .and_then(Value::as_sequence)
            .and_then(|d| d.first())
            .and_then(|d| at(d, &["Value"]))
            .and_then(Value::as_str);
        assert_eq!(dimension, Some(snapshotter::metrics::FUNCTION), "{alarm}");
        assert_eq!(at(p, &["Threshold"]).and_then(Value::as_u64), Some(0));
        assert_eq!(
            at(p, &["ComparisonOperator"]).and_then(Value::as_str),
            Some("GreaterThanThreshold")
        );
    }

    // The body is JSON once CloudFormation substitutes its `${...}` names.
    let dashboards = t.resources_of_type("AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1);
    let body = at(dashboards[0].1, &["Properties", "DashboardBody"]).unwrap();
    let Some(Intrinsic::Other { name, argument }) = intrinsic(body) else {
        panic!("DashboardBody is not a !Sub");
    };
    assert_eq!(name, "Fn::Sub");
    let text = argument.as_sequence().unwrap()[0].as_str().unwrap();
    let substituted = regex::Regex::new(r"\$\{[A-Za-z:.]+\}")
        .unwrap()
        .replace_all(text, "x");
    let json: serde_json::Value = serde_json::from_str(&substituted).unwrap();
    let widgets = json["widgets"].as_array().unwrap();
    let shown = json.to_string();
    for metric in [
        snapshotter::metrics::SNAPSHOTS_CREATED,
        snapshotter::metrics::FAILURES,
        snapshotter::metrics::SNAPSHOT_DRIFT,
        snapshotter::metrics::UNKNOWN_EVENT_TYPES,
        "IteratorAge",
        snapshot_core::load_metrics::LOAD_EVENTS_FOLDED,
        snapshot_core::load_metrics::LOAD_SNAPSHOT_AGE_MAX,
        snapshot_core::load_metrics::LOAD_INVALID_SKIPPED,
        snapshot_core::load_metrics::LOAD_REQUESTS,
    ] {
        assert!(
            shown.contains(&format!("\"{metric}\""))
                || shown.contains(&format!("=\\\"{metric}\\\"")),
            "the dashboard does not show {metric}"
        );
    }
    assert!(widgets.len() >= 4, "{} widgets", widgets.len());
}
