//! The SAM template (`template.yaml`) as data, for the tests that tie it to the code.
//!
//! CloudFormation writes intrinsic functions two ways, as YAML tags (`!Ref X`,
//! `!GetAtt A.B`) and as one-key maps (`{Ref: X}`, `{"Fn::GetAtt": [A, B]}`); [`intrinsic`]
//! reads both the same.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

/// The template, compiled in so a test run always sees the file next to the code.
pub const TEMPLATE_YAML: &str = include_str!("../../template.yaml");

pub struct Template {
    root: Value,
}

impl Template {
    pub fn load() -> Self {
        Self::parse(TEMPLATE_YAML)
    }

    pub fn parse(text: &str) -> Self {
        let root = serde_norway::from_str(text)
            .unwrap_or_else(|e| panic!("template.yaml is not YAML: {e}"));
        Self { root }
    }

    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Logical id and definition of every resource.
    pub fn resources(&self) -> Vec<(&str, &Value)> {
        let Some(map) = at(&self.root, &["Resources"]).and_then(Value::as_mapping) else {
            panic!("template.yaml has no Resources");
        };
        map.iter()
            .map(|(k, v)| (k.as_str().expect("resource ids are strings"), v))
            .collect()
    }

    pub fn resource(&self, id: &str) -> &Value {
        at(&self.root, &["Resources", id])
            .unwrap_or_else(|| panic!("template.yaml has no resource {id}"))
    }

    pub fn resources_of_type(&self, kind: &str) -> Vec<(&str, &Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| at(r, &["Type"]).and_then(Value::as_str) == Some(kind))
            .collect()
    }

    pub fn functions(&self) -> Vec<Function<'_>> {
        self.resources_of_type("AWS::Serverless::Function")
            .into_iter()
            .map(|(id, resource)| Function {
                id,
                resource,
                template: self,
            })
            .collect()
    }

    pub fn function(&self, id: &str) -> Function<'_> {
        self.functions()
            .into_iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("template.yaml has no function {id}"))
    }

    pub fn parameter_default(&self, name: &str) -> Option<&Value> {
        at(&self.root, &["Parameters", name, "Default"])
    }
}

/// An `AWS::Serverless::Function` with the `Globals.Function` section applied.
pub struct Function<'a> {
    pub id: &'a str,
    pub resource: &'a Value,
    template: &'a Template,
}

impl<'a> Function<'a> {
    /// A property of the function, else of `Globals.Function` (maps are not merged here).
    pub fn property(&self, key: &str) -> Option<&'a Value> {
        at(self.resource, &["Properties", key])
            .or_else(|| at(&self.template.root, &["Globals", "Function", key]))
    }

    pub fn metadata(&self, path: &[&str]) -> Option<&'a Value> {
        let mut full = vec!["Metadata"];
        full.extend_from_slice(path);
        at(self.resource, &full)
    }

    pub fn code_uri(&self) -> &'a str {
        self.property("CodeUri")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: CodeUri must be a local directory", self.id))
    }

    /// Environment variables as Lambda sees them: `Globals` merged with the function's own.
    pub fn environment(&self) -> BTreeMap<String, &'a Value> {
        let mut vars = BTreeMap::new();
        for source in [
            at(
                &self.template.root,
                &["Globals", "Function", "Environment", "Variables"],
            ),
            at(self.resource, &["Properties", "Environment", "Variables"]),
        ]
        .into_iter()
        .flatten()
        {
            let map = source
                .as_mapping()
                .unwrap_or_else(|| panic!("{}: Environment.Variables must be a map", self.id));
            for (k, v) in map {
                vars.insert(
                    k.as_str().expect("variable names are strings").to_owned(),
                    v,
                );
            }
        }
        vars
    }

    /// Event sources by name.
    pub fn events(&self) -> Vec<(&'a str, &'a Value)> {
        at(self.resource, &["Properties", "Events"])
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str().expect("event names are strings"), v))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn events_of_type(&self, kind: &str) -> Vec<(&'a str, &'a Value)> {
        self.events()
            .into_iter()
            .filter(|(_, e)| at(e, &["Type"]).and_then(Value::as_str) == Some(kind))
            .collect()
    }

    /// The logical id of the explicit execution role (`Role: !GetAtt X.Arn`), if any.
    pub fn role(&self) -> Option<String> {
        match intrinsic(at(self.resource, &["Properties", "Role"])?) {
            Some(Intrinsic::GetAtt {
                resource,
                attribute,
            }) if attribute == "Arn" => Some(resource),
            other => panic!("{}: Role must be !GetAtt ROLE.Arn, not {other:?}", self.id),
        }
    }

    /// Every statement of the function's inline policy documents: SAM's `Policies`, or the
    /// `Policies` of its explicit role.
    pub fn policy_statements(&self) -> Vec<&'a Value> {
        if let Some(role) = self.role() {
            let role = self.template.resource(&role);
            return at(role, &["Properties", "Policies"])
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|p| at(p, &["PolicyDocument", "Statement"]))
                .filter_map(Value::as_sequence)
                .flatten()
                .collect();
        }
        let Some(policies) =
            at(self.resource, &["Properties", "Policies"]).and_then(Value::as_sequence)
        else {
            return Vec::new();
        };
        policies
            .iter()
            .filter_map(|p| at(p, &["Statement"]).and_then(Value::as_sequence))
            .flatten()
            .collect()
    }
}

/// The value at `path` (map keys) under `value`.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_mapping()?.get(*key))
}

/// An intrinsic function call, whichever way it is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Intrinsic<'a> {
    Ref(&'a str),
    GetAtt {
        resource: String,
        attribute: String,
    },
    If {
        condition: &'a str,
        then: &'a Value,
        otherwise: &'a Value,
    },
    Other {
        name: String,
        argument: &'a Value,
    },
}

/// Reads `value` as an intrinsic function call.
pub fn intrinsic(value: &Value) -> Option<Intrinsic<'_>> {
    let (name, argument) = match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let name = if tag == "Ref" || tag == "Condition" {
                tag.to_owned()
            } else {
                format!("Fn::{tag}")
            };
            (name, &tagged.value)
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (k, v) = map.iter().next()?;
            let k = k.as_str()?;
            if k != "Ref" && k != "Condition" && !k.starts_with("Fn::") {
                return None;
            }
            (k.to_owned(), v)
        }
        _ => return None,
    };
    Some(match name.as_str() {
        "Ref" => Intrinsic::Ref(argument.as_str()?),
        "Fn::GetAtt" => {
            let (resource, attribute) = match argument {
                Value::String(s) => {
                    let (r, a) = s.split_once('.')?;
                    (r.to_owned(), a.to_owned())
                }
                Value::Sequence(parts) => (
                    parts.first()?.as_str()?.to_owned(),
                    parts.get(1)?.as_str()?.to_owned(),
                ),
                _ => return None,
            };
            Intrinsic::GetAtt {
                resource,
                attribute,
            }
        }
        "Fn::If" => {
            let parts = argument.as_sequence()?;
            match parts.as_slice() {
                [condition, then, otherwise] => Intrinsic::If {
                    condition: condition.as_str()?,
                    then,
                    otherwise,
                },
                _ => return None,
            }
        }
        _ => Intrinsic::Other { name, argument },
    })
}

/// Whether `value` is `!Ref id`.
pub fn is_ref(value: &Value, id: &str) -> bool {
    intrinsic(value) == Some(Intrinsic::Ref(id))
}

/// Whether `value` is `!GetAtt resource.attribute`.
pub fn is_get_att(value: &Value, resource: &str, attribute: &str) -> bool {
    matches!(intrinsic(value), Some(Intrinsic::GetAtt { resource: r, attribute: a }) if r == resource && a == attribute)
}

/// Every resource or parameter `value` mentions anywhere: `Ref`, `GetAtt` and `${Name}` /
/// `${Name.Attribute}` in `Sub` strings.
pub fn references(value: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    collect_references(value, &mut found);
    found
}

fn collect_references(value: &Value, found: &mut BTreeSet<String>) {
    match intrinsic(value) {
        Some(Intrinsic::Ref(id)) => {
            found.insert(id.to_owned());
            return;
        }
        Some(Intrinsic::GetAtt { resource, .. }) => {
            found.insert(resource);
            return;
        }
        Some(Intrinsic::Other { name, argument }) if name == "Fn::Sub" => {
            let text = match argument {
                Value::Sequence(parts) => parts.first().and_then(Value::as_str),
                other => other.as_str(),
            };
            for name in sub_names(text.unwrap_or_default()) {
                found.insert(name);
            }
            if let Value::Sequence(parts) = argument {
                parts
                    .iter()
                    .skip(1)
                    .for_each(|p| collect_references(p, found));
            }
            return;
        }
        _ => {}
    }
    match value {
        Value::Tagged(tagged) => collect_references(&tagged.value, found),
        Value::Sequence(items) => items.iter().for_each(|v| collect_references(v, found)),
        Value::Mapping(map) => map.values().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

/// `${Name}` and `${Name.Attribute}` placeholders of a `Sub` string (pseudo parameters and
/// `${!Literal}` escapes excluded).
fn sub_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find('}') else { break };
        let inner = &rest[..end];
        if !inner.starts_with('!') && !inner.starts_with("AWS::") {
            names.push(inner.split('.').next().unwrap_or(inner).to_owned());
        }
        rest = &rest[end + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_forms_read_the_same() {
        let t = Template::parse(
            "Resources:\n  A:\n    Type: T\n    Properties:\n      S: !Ref X\n      L: {Ref: X}\n      G: !GetAtt Tbl.StreamArn\n      H: {\"Fn::GetAtt\": [Tbl, StreamArn]}\n      Sub: !Sub \"arn:${AWS::Partition}:x:${Key.Arn}/${Other}/${!Literal}\"\n",
        );
        let a = t.resource("A");
        assert!(is_ref(at(a, &["Properties", "S"]).unwrap(), "X"));
        assert!(is_ref(at(a, &["Properties", "L"]).unwrap(), "X"));
        assert!(is_get_att(
            at(a, &["Properties", "G"]).unwrap(),
            "Tbl",
            "StreamArn"
        ));
        assert!(is_get_att(
            at(a, &["Properties", "H"]).unwrap(),
            "Tbl",
            "StreamArn"
        ));
        let names: Vec<String> = references(a).into_iter().collect();
        assert_eq!(names, ["Key", "Other", "Tbl", "X"]);
    }
}
