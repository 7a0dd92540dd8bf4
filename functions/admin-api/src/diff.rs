//! A small structural JSON diff: the JSON Pointers (RFC 6901) at which two values differ.

use serde_json::Value;

/// At most this many paths are listed; the rest are only counted (a drifted warehouse can
/// differ at every location, and a response must stay small).
pub const MAX_DIFFERENCES: usize = 100;

/// The paths where two values differ: the first [`MAX_DIFFERENCES`], sorted, and how many
/// there are in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Differences {
    /// JSON Pointers (RFC 6901) of the differing values, sorted, at most
    /// [`MAX_DIFFERENCES`]; `""` is the whole value.
    pub paths: Vec<String>,
    /// All differences, listed or not.
    pub total: usize,
}

impl Differences {
    /// True when the values are equal.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Differences found but not listed.
    pub fn omitted(&self) -> usize {
        self.total - self.paths.len()
    }

    fn push(&mut self, path: &str) {
        if self.paths.len() < MAX_DIFFERENCES {
            self.paths.push(path.to_owned());
        }
        self.total += 1;
    }
}

/// Paths where `left` and `right` differ, sorted; empty when equal. Objects are compared key
/// by key (a key on one side only is a difference at that key), arrays index by index. At most
/// [`MAX_DIFFERENCES`] are listed (the first in key and index order), the rest counted.
pub fn differences(left: &Value, right: &Value) -> Differences {
    let mut out = Differences::default();
    walk(left, right, &mut String::new(), &mut out);
    out.paths.sort();
    out
}

fn walk(left: &Value, right: &Value, path: &mut String, out: &mut Differences) {
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
                    _ => out.push(path),
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
                    _ => out.push(path),
                }
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(path),
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
        assert_eq!(differences(&v, &v.clone()).total, 0);
    }

    #[test]
    fn reports_changed_missing_and_extra_paths() {
        let left = json!({"onHand": 5, "reservations": {"o-1": 2}, "tags": [1, 2]});
        let right = json!({"onHand": 6, "reservations": {"o-2": 2}, "tags": [1], "new": true});
        assert_eq!(
            differences(&left, &right).paths,
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
        assert_eq!(differences(&left, &right).paths, vec!["/a~1b", "/m~0n"]);
        assert_eq!(differences(&json!(1), &json!("1")).paths, vec![""]);
    }

    #[test]
    fn lists_at_most_the_bound_and_counts_the_rest() {
        let left: serde_json::Map<String, Value> =
            (0..1000).map(|i| (format!("k{i:04}"), json!(i))).collect();
        let right: serde_json::Map<String, Value> = (0..1000)
            .map(|i| (format!("k{i:04}"), json!(-i - 1)))
            .collect();
        let diffs = differences(&Value::Object(left), &Value::Object(right));
        assert_eq!(diffs.total, 1000);
        assert_eq!(diffs.paths.len(), MAX_DIFFERENCES);
        assert_eq!(diffs.omitted(), 1000 - MAX_DIFFERENCES);
        assert_eq!(diffs.paths[0], "/k0000");
    }
}
