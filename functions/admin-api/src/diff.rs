//! A small structural JSON diff: the JSON Pointers (RFC 6901) at which two values differ.

use serde_json::Value;

/// Paths where `left` and `right` differ, sorted; empty when equal. Objects are compared key
/// by key (a key on one side only is a difference at that key), arrays index by index.
pub fn differences(left: &Value, right: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(left, right, &mut String::new(), &mut out);
    out.sort();
    out
}

fn walk(left: &Value, right: &Value, path: &mut String, out: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let mut keys: Vec<&String> = l.keys().chain(r.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let len = path.len();
                path.push('/');
                path.push_str(&escape(key));
                match (l.get(key), r.get(key)) {
                    (Some(a), Some(b)) => walk(a, b, path, out),
                    _ => out.push(path.clone()),
                }
                path.truncate(len);
            }
        }
        (Value::Array(l), Value::Array(r)) => {
            for index in 0..l.len().max(r.len()) {
                let len = path.len();
                path.push('/');
                path.push_str(&index.to_string());
                match (l.get(index), r.get(index)) {
                    (Some(a), Some(b)) => walk(a, b, path, out),
                    _ => out.push(path.clone()),
                }
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(path.clone()),
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_have_no_differences() {
        let v = json!({"a": [1, {"b": null}], "c": "x"});
        assert!(differences(&v, &v.clone()).is_empty());
    }

    #[test]
    fn reports_changed_missing_and_extra_paths() {
        let left = json!({"onHand": 5, "reservations": {"o-1": 2}, "tags": [1, 2]});
        let right = json!({"onHand": 6, "reservations": {"o-2": 2}, "tags": [1], "new": true});
        assert_eq!(
            differences(&left, &right),
            vec![
                "/new",
                "/onHand",
                "/reservations/o-1",
                "/reservations/o-2",
                "/tags/1"
            ]
        );
    }

    #[test]
    fn escapes_pointer_characters_and_reports_root_type_change() {
        let left = json!({"a/b": 1, "m~n": 1});
        let right = json!({"a/b": 2, "m~n": 2});
        assert_eq!(differences(&left, &right), vec!["/a~1b", "/m~0n"]);
        assert_eq!(differences(&json!(1), &json!("1")), vec![""]);
    }
}
