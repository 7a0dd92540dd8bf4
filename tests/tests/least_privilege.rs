//! Least privilege in `template.yaml`, read as data: no `Resource: "*"` outside a reviewed
//! allow-list (each entry says why), the snapshotter's own role scoped to its one stream, the
//! KMS key letting CloudWatch Logs use it for this stack's log groups only, and MFA on the
//! admin user pool.

use std::collections::BTreeSet;

use integration_tests::template::{at, intrinsic, references, Intrinsic, Template};
use serde_norway::Value;

/// Statements allowed to name `Resource: "*"`: (resource logical id, statement Sid, reason).
const WILDCARD_RESOURCES: &[(&str, &str, &str)] = &[
    (
        "DataKey",
        "AccountAdministersKeyThroughIam",
        "in a key policy `*` means this key; IAM policies (scoped below) decide who uses it",
    ),
    (
        "DataKey",
        "DynamoDBReadsKeyMetadata",
        "in a key policy `*` means this key; metadata reads only, for table encryption",
    ),
    (
        "DataKey",
        "CloudWatchLogsEncryptsThisStacksLogGroups",
        "in a key policy `*` means this key; conditioned on this stack's log group ARNs",
    ),
    (
        "DataKey",
        "CloudWatchAlarmsPublishToEncryptedTopic",
        "in a key policy `*` means this key; conditioned on this account",
    ),
    (
        "SnapshotterRole",
        "SendTraces",
        "X-Ray has no resource-level permissions (Tracing: Active)",
    ),
];

fn template() -> Template {
    Template::load()
}

/// Every policy statement anywhere in `value`, with the path that led to it.
fn statements<'a>(value: &'a Value, found: &mut Vec<&'a Value>) {
    match value {
        Value::Mapping(map) => {
            if let Some(Value::Sequence(list)) = map.get("Statement") {
                found.extend(list.iter());
            }
            map.values().for_each(|v| statements(v, found));
        }
        Value::Sequence(list) => list.iter().for_each(|v| statements(v, found)),
        Value::Tagged(tagged) => statements(&tagged.value, found),
        _ => {}
    }
}

fn names_every_resource(value: Option<&Value>) -> bool {
    match value {
        Some(Value::String(s)) => s.trim() == "*",
        Some(Value::Sequence(list)) => list.iter().any(|v| v.as_str() == Some("*")),
        _ => false,
    }
}

#[test]
fn no_statement_names_every_resource_outside_the_allow_list() {
    let t = template();
    let mut allowed_seen = BTreeSet::new();
    let mut with_statements = BTreeSet::new();
    for (id, resource) in t.resources() {
        let mut found = Vec::new();
        statements(resource, &mut found);
        for statement in found {
            with_statements.insert(id);
            let sid = at(statement, &["Sid"]).and_then(Value::as_str);
            let wildcard = names_every_resource(at(statement, &["Resource"]))
                || at(statement, &["NotResource"]).is_some();
            if !wildcard {
                continue;
            }
            let entry = WILDCARD_RESOURCES
                .iter()
                .find(|(r, s, _)| *r == id && Some(*s) == sid);
            assert!(
                entry.is_some(),
                "{id}: statement {sid:?} grants on every resource (`*`) and is not in the \
                 allow-list: {}",
                serde_norway::to_string(statement).unwrap()
            );
            allowed_seen.insert((id, sid.unwrap_or_default()));
        }
    }
    // The walk reaches key policies, role policies, SAM policies and resource policies.
    for id in [
        "DataKey",
        "SnapshotterRole",
        "PrunerFunction",
        "AdminApiFunction",
        "SnapshotterFailureQueuePolicy",
    ] {
        assert!(with_statements.contains(id), "no statement found in {id}");
    }
    // The allow-list holds only what the template still needs.
    for (id, sid, reason) in WILDCARD_RESOURCES {
        assert!(!reason.is_empty());
        assert!(
            allowed_seen.contains(&(*id, *sid)),
            "allow-list entry {id}/{sid} matches nothing: remove it"
        );
    }
}

#[test]
fn the_check_catches_a_wildcard_resource_anywhere() {
    let planted = Template::parse(
        r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Sid: Everything
              Effect: Allow
              Action: dynamodb:Query
              Resource: ["arn:aws:dynamodb:::table/x", "*"]
"#,
    );
    let mut found = Vec::new();
    statements(planted.resource("Fn"), &mut found);
    assert_eq!(found.len(), 1);
    assert!(names_every_resource(at(found[0], &["Resource"])));
}

#[test]
fn the_snapshotter_has_its_own_role_scoped_to_its_one_stream() {
    let t = template();
    let f = t.function("SnapshotterFunction");
    assert_eq!(f.role().as_deref(), Some("SnapshotterRole"));
    assert!(
        at(f.resource, &["Properties", "Policies"]).is_none(),
        "SAM ignores Policies on a function with an explicit Role: put them on SnapshotterRole"
    );
    let role = t.resource("SnapshotterRole");
    assert!(
        at(role, &["Properties", "ManagedPolicyArns"]).is_none(),
        "no managed policies (AWSLambdaDynamoDBExecutionRole reads every stream)"
    );
    let trust = at(
        role,
        &["Properties", "AssumeRolePolicyDocument", "Statement"],
    )
    .and_then(Value::as_sequence)
    .expect("trust policy");
    assert_eq!(trust.len(), 1);
    assert_eq!(
        at(&trust[0], &["Principal", "Service"]).and_then(Value::as_str),
        Some("lambda.amazonaws.com")
    );

    // The stream the function's event source reads, and nothing else of DynamoDB Streams.
    let (_, event) = f.events_of_type("DynamoDB").pop().expect("stream event");
    let stream = references(at(event, &["Properties", "Stream"]).unwrap());
    assert_eq!(
        stream,
        BTreeSet::from([
            "EventsTable".to_owned(),
            "ExistingEventsStreamArn".to_owned()
        ])
    );
    let stream_actions = [
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    ];
    let mut granted = BTreeSet::new();
    for statement in f.policy_statements() {
        let actions: Vec<&str> = match at(statement, &["Action"]) {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Sequence(a)) => a.iter().filter_map(Value::as_str).collect(),
            other => panic!("Action {other:?}"),
        };
        let resource = at(statement, &["Resource"]).expect("Resource");
        for action in actions {
            if !stream_actions.contains(&action) {
                continue;
            }
            granted.insert(action);
            assert_eq!(references(resource), stream, "{action} on {resource:?}");
            let text = serde_norway::to_string(resource).unwrap();
            // Exact stream ARN, or the event table's own streams for ListStreams.
            if action == "dynamodb:ListStreams" {
                assert!(text.contains("/stream/*"), "{text}");
            } else {
                assert!(
                    matches!(intrinsic(resource), Some(Intrinsic::If { .. })),
                    "{action}: {text}"
                );
                assert!(text.contains("StreamArn") && !text.contains('*'), "{text}");
            }
        }
    }
    assert_eq!(granted, stream_actions.into_iter().collect());

    // Logs only to its own log group; failures only to its own queue.
    for statement in f.policy_statements() {
        let text = serde_norway::to_string(statement).unwrap();
        let resource = references(at(statement, &["Resource"]).unwrap());
        if text.contains("logs:") {
            assert_eq!(resource, BTreeSet::from(["SnapshotterLogGroup".to_owned()]));
            assert!(!text.contains("CreateLogGroup"), "{text}");
        }
        if text.contains("sqs:") {
            assert_eq!(
                resource,
                BTreeSet::from(["SnapshotterFailureQueue".to_owned()])
            );
        }
    }
}

#[test]
fn logs_may_use_the_key_only_for_this_stacks_log_groups() {
    let t = template();
    let key = t.resource("DataKey");
    let mut found = Vec::new();
    statements(key, &mut found);
    let logs = found
        .into_iter()
        .find(|s| {
            at(s, &["Sid"]).and_then(Value::as_str)
                == Some("CloudWatchLogsEncryptsThisStacksLogGroups")
        })
        .expect("the logs statement of the key policy");
    let condition = at(logs, &["Condition"]).expect("condition");
    let text = serde_norway::to_string(condition).unwrap();
    assert!(!text.contains("log-group:*"), "every log group: {text}");
    let arns = at(
        condition,
        &["ArnEquals", "kms:EncryptionContext:aws:logs:arn"],
    )
    .and_then(Value::as_sequence)
    .expect("ArnEquals on the log group ARNs");
    let named: BTreeSet<String> = arns
        .iter()
        .map(|v| {
            let text = serde_norway::to_string(v).unwrap();
            text.split("log-group:")
                .nth(1)
                .expect("a log group ARN")
                .trim()
                .to_owned()
        })
        .collect();
    let groups: BTreeSet<String> = t
        .resources_of_type("AWS::Logs::LogGroup")
        .into_iter()
        .map(|(id, r)| {
            let name = at(r, &["Properties", "LogGroupName"])
                .unwrap_or_else(|| panic!("{id} has no fixed LogGroupName"));
            serde_norway::to_string(name)
                .unwrap()
                .split_whitespace()
                .last()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        named, groups,
        "the key policy must name exactly this stack's log groups"
    );
    for name in &groups {
        assert!(name.contains("${AWS::StackName}"), "{name}");
    }
}

#[test]
fn admins_sign_in_with_a_second_factor() {
    let t = template();
    let pool = t.resource("AdminUserPool");
    assert_eq!(
        at(pool, &["Properties", "MfaConfiguration"]).and_then(Value::as_str),
        Some("ON")
    );
    let mfas = at(pool, &["Properties", "EnabledMfas"])
        .and_then(Value::as_sequence)
        .expect("EnabledMfas");
    assert!(mfas
        .iter()
        .any(|m| m.as_str() == Some("SOFTWARE_TOKEN_MFA")));
    assert_eq!(
        at(
            pool,
            &[
                "Properties",
                "AdminCreateUserConfig",
                "AllowAdminCreateUserOnly"
            ]
        )
        .and_then(Value::as_bool),
        Some(true)
    );
}
