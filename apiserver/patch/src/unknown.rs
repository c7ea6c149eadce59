//! Fields a built-in type's schema does not declare: what
//! `fieldValidation=Strict|Warn` reports (upstream: "unknown field").

use serde_json::Value;

use crate::schema::{BuiltinSchema, PatchSchema, TypeRef};
use crate::schema_table::{DEFS, PROPS};

/// Paths (`spec.replicsa`, `spec.template.spec.containers[0].imagee`) of
/// every field `obj` has that its kind's schema does not declare. Types the
/// schema leaves open (raw extensions, JSON, quantities) are not looked into.
pub fn unknown_fields(group: &str, version: &str, kind: &str, obj: &Value) -> Vec<String> {
    let mut copy = obj.clone();
    prune_unknown_fields(group, version, kind, &mut copy)
}

/// Removes the fields `unknown_fields` reports, as decoding into the typed
/// object does upstream, and returns their paths.
pub fn prune_unknown_fields(
    group: &str,
    version: &str,
    kind: &str,
    obj: &mut Value,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(root) = crate::schema::root_type(group, version, kind) {
        walk(root, obj, "", &mut out);
    }
    out
}

fn props(ty: TypeRef) -> Option<&'static [&'static str]> {
    let i = DEFS.binary_search_by(|d| d.0.cmp(ty.name())).ok()?;
    PROPS.get(i).copied()
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn walk(ty: TypeRef, value: &mut Value, path: &str, out: &mut Vec<String>) {
    let Value::Object(map) = value else { return };
    let Some(known) = props(ty) else { return };
    let unknown: Vec<String> = map
        .keys()
        .filter(|k| known.binary_search(&k.as_str()).is_err())
        .cloned()
        .collect();
    for key in unknown {
        map.remove(&key);
        out.push(join(path, &key));
    }
    for (key, v) in map.iter_mut() {
        let Some(meta) = BuiltinSchema.field(ty, key) else {
            continue;
        };
        let Some(elem) = meta.elem else { continue };
        let here = join(path, key);
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(elem, item, &format!("{here}[{i}]"), out);
                }
            }
            Value::Object(m) if elem.map_values().is_some() => {
                // A map of objects: every value has the element type.
                let values = elem.map_values().unwrap_or(elem);
                for (k, item) in m.iter_mut() {
                    walk(values, item, &format!("{here}[{k}]"), out);
                }
            }
            _ => walk(elem, v, &here, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::unknown_fields;

    #[test]
    fn typos_are_found_at_any_depth() {
        let deploy = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "labels": { "anything": "goes" }, "nmae": "x" },
            "spec": {
                "replicsa": 2,
                "selector": { "matchLabels": { "app": "web" } },
                "template": {
                    "metadata": { "labels": { "app": "web" } },
                    "spec": { "containers": [
                        { "name": "c", "image": "busybox", "imagee": "x",
                          "resources": { "limits": { "cpu": "1" } } }
                    ] }
                }
            }
        });
        let mut found = unknown_fields("apps", "v1", "Deployment", &deploy);
        found.sort();
        assert_eq!(
            found,
            vec![
                "metadata.nmae",
                "spec.replicsa",
                "spec.template.spec.containers[0].imagee"
            ]
        );
    }

    #[test]
    fn valid_objects_have_none() {
        let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "a", "annotations": { "x": "y" } }, "data": { "k": "v" } });
        assert!(unknown_fields("", "v1", "ConfigMap", &cm).is_empty());
        let unknown_kind = json!({ "whatever": 1 });
        assert!(unknown_fields("example.com", "v1", "Thing", &unknown_kind).is_empty());
    }
}
