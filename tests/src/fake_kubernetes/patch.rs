//! The PATCH content types the API server accepts for built-in types: JSON Patch (RFC 6902),
//! JSON Merge Patch (RFC 7386) and strategic merge patch (lists of objects merged by their
//! patch merge key, `$patch: delete|replace` directives).

use serde_json::{Map, Value};

pub const JSON_PATCH: &str = "application/json-patch+json";
pub const MERGE_PATCH: &str = "application/merge-patch+json";
pub const STRATEGIC_PATCH: &str = "application/strategic-merge-patch+json";
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// RFC 7386.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The merge key of a list field in the core types (`patchMergeKey` in the Go structs); lists
/// without one are replaced whole.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "volumeMounts"
        | "imagePullSecrets"
        | "hostAliases" => Some(match field {
            "hostAliases" => "ip",
            _ => "name",
        }),
        "ports" => Some("containerPort"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

/// Strategic merge patch.
pub fn strategic(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = p.clone();
        p.remove("$patch");
        *target = Value::Object(p);
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return Ok(());
    };
    for (k, v) in p {
        if k == "$patch" {
            match v.as_str() {
                Some("delete") => {
                    t.clear();
                    continue;
                }
                Some("merge") => continue,
                other => return Err(format!("unknown patch type: {other:?}")),
            }
        }
        if k.starts_with("$setElementOrder/") || k.starts_with("$retainKeys") {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (merge_key(k), v) {
            (Some(key), Value::Array(items)) => {
                let cur = t.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                merge_list(cur, items, key)?;
            }
            (_, Value::Object(_)) => {
                strategic(t.entry(k.clone()).or_insert(Value::Null), v)?;
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

fn merge_list(cur: &mut Value, items: &[Value], key: &str) -> Result<(), String> {
    if !cur.is_array() {
        *cur = Value::Array(Vec::new());
    }
    let Some(list) = cur.as_array_mut() else {
        return Ok(());
    };
    for item in items {
        let Some(id) = item.get(key) else {
            return Err(format!(
                "map: {item} does not contain declared merge key: {key}"
            ));
        };
        let at = list.iter().position(|e| e.get(key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (at, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic(&mut list[i], item)?,
            (None, false) => list.push(item.clone()),
        }
    }
    Ok(())
}

/// RFC 6902. The error is the API server's message for a patch it cannot apply.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("json: cannot unmarshal object into Go value of type jsonpatch.Patch")?;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("missing path")?;
        match kind {
            "add" => add(target, path, value(op)?)?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, value(op)?)?;
            }
            "test" => {
                if target.pointer(path) != Some(value(op)?) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            "move" | "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("missing from")?;
                let v = if kind == "move" {
                    remove(target, from)?
                } else {
                    target
                        .pointer(from)
                        .cloned()
                        .ok_or_else(|| format!("doc is missing from path: {from}"))?
                };
                add(target, path, &v)?;
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

fn value(op: &Value) -> Result<&Value, String> {
    op.get("value").ok_or_else(|| "missing value".to_string())
}

fn split(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid path: {path}"))?;
    let last = last.replace("~1", "/").replace("~0", "~");
    Ok((parent.to_string(), last))
}

fn add(target: &mut Value, path: &str, v: &Value) -> Result<(), String> {
    if path.is_empty() {
        *target = v.clone();
        return Ok(());
    }
    let (parent, last) = split(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, v.clone());
            Ok(())
        }
        Some(Value::Array(a)) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| {
                        format!("add operation does not apply: doc is missing path: {path}")
                    })?
            };
            a.insert(i, v.clone());
            Ok(())
        }
        _ => Err(format!(
            "add operation does not apply: doc is missing path: \"{path}\": missing value"
        )),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let missing = || {
        format!("remove operation does not apply: doc is missing path: \"{path}\": missing value")
    };
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(missing),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes_labels() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        merge(
            &mut obj,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
        );
        assert_eq!(obj, json!({"metadata": {"labels": {"b": "2", "c": "3"}}}));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut obj = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        strategic(
            &mut obj,
            &json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}]}}),
        )
        .expect("patch applies");
        assert_eq!(
            obj,
            json!({"spec": {"containers": [{"name": "b", "image": "z"}]}})
        );
    }

    #[test]
    fn json_patch_ops() {
        let mut obj = json!({"metadata": {"labels": {"a/b": "1"}}, "l": [1, 2]});
        json_patch(
            &mut obj,
            &json!([
                {"op": "remove", "path": "/metadata/labels/a~1b"},
                {"op": "add", "path": "/l/-", "value": 3},
                {"op": "test", "path": "/l/2", "value": 3}
            ]),
        )
        .expect("patch applies");
        assert_eq!(obj, json!({"metadata": {"labels": {}}, "l": [1, 2, 3]}));
        assert!(json_patch(&mut obj, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }
}
