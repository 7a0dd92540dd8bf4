//! Group and scope claims, parsed exactly as they arrive: never split on commas and never
//! stripped of quotes, so a group named `ops,snapshot-admins` is one group that grants nothing.
//!
//! Two sources: the verified token's JSON claims (arrays stay arrays, `scope` is
//! space-separated per RFC 8693), and API Gateway's authorizer context, which flattens a JWT
//! array into `[a b]` (or passes JSON `["a","b"]`) and keeps strings as they are.

use serde_json::Value;

/// Group names of a JSON claim: an array of strings, or one string naming one group.
pub fn groups_from_json(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) if !one.is_empty() => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Scopes of a JSON claim: a space-separated string (`scope`) or an array (`scp`).
pub fn scopes_from_json(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(text)) => text.split_ascii_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// A list claim as API Gateway's authorizer context carries it: JSON `["a","b"]`, the
/// flattened `[a b]`, or a plain string. A plain string is one value for groups and a
/// space-separated list for scopes (`space_separated`).
pub fn context_list(raw: &str, space_separated: bool) -> Vec<String> {
    if raw.starts_with('[') {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(raw) {
            return items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
        }
        if let Some(inner) = raw.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            return inner.split_ascii_whitespace().map(str::to_owned).collect();
        }
    }
    if space_separated {
        raw.split_ascii_whitespace().map(str::to_owned).collect()
    } else if raw.is_empty() {
        Vec::new()
    } else {
        vec![raw.to_owned()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn context_lists_follow_the_gateway_forms_exactly() {
        assert_eq!(context_list("[a b]", false), ["a", "b"]);
        assert_eq!(context_list(r#"["a","b"]"#, false), ["a", "b"]);
        assert_eq!(context_list("[]", false), Vec::<String>::new());
        assert_eq!(context_list("a", false), ["a"]);
        // No comma splitting, no quote stripping.
        assert_eq!(
            context_list("ops,snapshot-admins", false),
            ["ops,snapshot-admins"]
        );
        assert_eq!(
            context_list("\"snapshot-admins\"", false),
            ["\"snapshot-admins\""]
        );
        assert_eq!(
            context_list("[ops,snapshot-admins]", false),
            ["ops,snapshot-admins"]
        );
        assert_eq!(
            context_list("openid  snapshots/admin", true),
            ["openid", "snapshots/admin"]
        );
        assert_eq!(context_list("a,b", true), ["a,b"]);
        assert_eq!(context_list("", false), Vec::<String>::new());
    }

    #[test]
    fn json_claims_keep_their_shape() {
        assert_eq!(groups_from_json(Some(&json!(["a", "b"]))), ["a", "b"]);
        assert_eq!(groups_from_json(Some(&json!("a b"))), ["a b"]);
        assert_eq!(
            groups_from_json(Some(&json!("x,snapshot-admins"))),
            ["x,snapshot-admins"]
        );
        assert!(groups_from_json(Some(&json!(7))).is_empty());
        assert!(groups_from_json(None).is_empty());
        assert_eq!(
            scopes_from_json(Some(&json!("openid snapshots/admin"))),
            ["openid", "snapshots/admin"]
        );
        assert_eq!(scopes_from_json(Some(&json!(["x/y"]))), ["x/y"]);
        assert_eq!(scopes_from_json(Some(&json!("a,b"))), ["a,b"]);
    }
}
