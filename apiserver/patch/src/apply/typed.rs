//! Schema-guided walks over objects for server-side apply: the set of fields
//! a value sets, the difference between two values, the merge of an applied
//! configuration into a live object, and the removal of fields.
//!
//! The schema says how each list and map merges (`x-kubernetes-list-type`,
//! `-list-map-keys`, `-map-type`, or the patch strategy and merge key where
//! those are absent, as upstream's schema conversion does). Values the schema
//! does not know are "deduced": objects merge field by field, lists are
//! atomic.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::fieldpath::{PathElement, Set};
use crate::schema::{FieldMeta, PatchSchema};

/// How a list merges.
#[derive(Debug, Clone, Copy)]
enum ListKind {
    Atomic,
    Set,
    Map(&'static [&'static str], &'static str),
}

/// The schema context of one value: the metadata of the field that holds
/// it (`None`: unknown to the schema).
pub(crate) type Meta = Option<FieldMeta>;

fn list_kind(meta: &Meta) -> ListKind {
    let Some(m) = meta else {
        return ListKind::Atomic;
    };
    if m.atomic {
        ListKind::Atomic
    } else if m.list_map && !m.list_map_keys.is_empty() {
        ListKind::Map(m.list_map_keys, "")
    } else if m.list_set {
        ListKind::Set
    } else if m.merge && !m.merge_key.is_empty() {
        ListKind::Map(&[], m.merge_key)
    } else if m.merge {
        ListKind::Set
    } else {
        ListKind::Atomic
    }
}

fn object_atomic(meta: &Meta) -> bool {
    meta.is_some_and(|m| m.atomic)
}

fn child_meta(schema: &dyn PatchSchema, meta: &Meta, field: &str) -> Meta {
    let ty = meta.as_ref()?.elem?;
    schema.field(ty, field)
}

fn item_meta(meta: &Meta) -> Meta {
    meta.map(|m| FieldMeta {
        elem: m.elem,
        atomic: m.elem_atomic,
        ..FieldMeta::default()
    })
}

/// The path element of a list item, or `None` for atomic lists.
fn item_element(kind: ListKind, item: &Value, index: usize) -> Option<PathElement> {
    match kind {
        ListKind::Atomic => None,
        ListKind::Set => Some(PathElement::Value(item.to_string())),
        ListKind::Map(keys, merge_key) => {
            let keys: &[&str] = if keys.is_empty() {
                std::slice::from_ref(&merge_key)
            } else {
                keys
            };
            let obj = item.as_object()?;
            // The canonical JSON object of the key fields, keys sorted.
            let mut sorted;
            let keys = if keys.is_sorted() {
                keys
            } else {
                sorted = keys.to_vec();
                sorted.sort_unstable();
                &sorted[..]
            };
            let tcp = Value::String("TCP".into());
            let mut out = String::with_capacity(48);
            for k in keys {
                let v = match obj.get(*k) {
                    Some(v) => v,
                    // Ports are keyed by port and protocol, whose default
                    // applies when it is left out.
                    None if *k == "protocol" => &tcp,
                    None => continue,
                };
                out.push(if out.is_empty() { '{' } else { ',' });
                out.push_str(&Value::String((*k).to_owned()).to_string());
                out.push(':');
                out.push_str(&v.to_string());
            }
            if out.is_empty() {
                Some(PathElement::Index(index))
            } else {
                out.push('}');
                Some(PathElement::Key(out))
            }
        }
    }
}

/// Whether a value is a leaf of the field set: owned as a whole.
fn is_leaf(v: &Value, meta: &Meta) -> bool {
    match v {
        Value::Object(o) => o.is_empty() || object_atomic(meta),
        Value::Array(a) => a.is_empty() || matches!(list_kind(meta), ListKind::Atomic),
        _ => true,
    }
}

/// Adds the paths `v` sets below its own node to `node`.
pub(crate) fn collect_into(schema: &dyn PatchSchema, node: &mut Set, v: &Value, meta: &Meta) {
    match v {
        Value::Object(o) if !object_atomic(meta) => {
            for (k, cv) in o {
                let cm = child_meta(schema, meta, k);
                let pe = PathElement::Field(k.clone());
                collect(schema, node, pe, cv, &cm);
            }
        }
        Value::Array(items) => {
            let kind = list_kind(meta);
            let im = item_meta(meta);
            for (i, item) in items.iter().enumerate() {
                let Some(pe) = item_element(kind, item, i) else {
                    return;
                };
                if matches!(kind, ListKind::Map(..)) && !is_leaf(item, &im) {
                    collect_into(schema, node.child_mut(&pe), item, &im);
                }
                node.insert_member(pe);
            }
        }
        _ => {}
    }
}

fn collect(schema: &dyn PatchSchema, parent: &mut Set, pe: PathElement, v: &Value, meta: &Meta) {
    if is_leaf(v, meta) {
        parent.insert_member(pe);
    } else {
        collect_into(schema, parent.child_mut(&pe), v, meta);
    }
}

/// The set of fields an object sets.
pub(crate) fn to_set(schema: &dyn PatchSchema, v: &Value, meta: &Meta) -> Set {
    let mut set = Set::new();
    collect_into(schema, &mut set, v, meta);
    set
}

/// What changed between two values.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

/// Compares `old` with `new`, both roots of the same type.
pub(crate) fn compare(
    schema: &dyn PatchSchema,
    old: &Value,
    new: &Value,
    meta: &Meta,
) -> Comparison {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    compare_children(schema, &mut c, &mut path, old, new, meta);
    c
}

fn compare_children(
    schema: &dyn PatchSchema,
    c: &mut Comparison,
    path: &mut Vec<PathElement>,
    old: &Value,
    new: &Value,
    meta: &Meta,
) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            // Ownership is never tracked for the ownership records.
            let in_metadata = matches!(path.as_slice(), [PathElement::Field(f)] if f == "metadata");
            for (k, ov) in o {
                if in_metadata && k == "managedFields" {
                    continue;
                }
                let cm = child_meta(schema, meta, k);
                path.push(PathElement::Field(k.clone()));
                compare_at(schema, c, path, Some(ov), n.get(k), &cm);
                path.pop();
            }
            for (k, nv) in n {
                let skip = o.contains_key(k) || (in_metadata && k == "managedFields");
                if !skip {
                    let cm = child_meta(schema, meta, k);
                    path.push(PathElement::Field(k.clone()));
                    compare_at(schema, c, path, None, Some(nv), &cm);
                    path.pop();
                }
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            let kind = list_kind(meta);
            let im = item_meta(meta);
            let keyed = |items: &Vec<Value>| -> Vec<(PathElement, usize)> {
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| item_element(kind, v, i).map(|pe| (pe, i)))
                    .collect()
            };
            let ok = keyed(o);
            let nk = keyed(n);
            let in_new: HashMap<&PathElement, usize> = nk.iter().map(|(pe, j)| (pe, *j)).collect();
            let in_old: HashSet<&PathElement> = ok.iter().map(|(pe, _)| pe).collect();
            for (pe, i) in &ok {
                let nv = in_new.get(pe).map(|j| &n[*j]);
                path.push(pe.clone());
                compare_at(schema, c, path, Some(&o[*i]), nv, &im);
                path.pop();
            }
            for (pe, j) in &nk {
                if !in_old.contains(pe) {
                    path.push(pe.clone());
                    compare_at(schema, c, path, None, Some(&n[*j]), &im);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

fn compare_at(
    schema: &dyn PatchSchema,
    c: &mut Comparison,
    path: &mut Vec<PathElement>,
    old: Option<&Value>,
    new: Option<&Value>,
    meta: &Meta,
) {
    match (old, new) {
        (None, None) => {}
        (None, Some(n)) => {
            c.added.insert(path);
            collect_into(schema, c.added.node_mut(path), n, meta);
        }
        (Some(o), None) => {
            c.removed.insert(path);
            collect_into(schema, c.removed.node_mut(path), o, meta);
        }
        (Some(o), Some(n)) => {
            let granular = match (o, n) {
                (Value::Object(_), Value::Object(_)) => !object_atomic(meta),
                (Value::Array(_), Value::Array(_)) => !matches!(list_kind(meta), ListKind::Atomic),
                _ => false,
            };
            if granular {
                compare_children(schema, c, path, o, n, meta);
            } else if o != n {
                c.modified.insert(path);
            }
        }
    }
}

/// Merges an applied configuration into a live value in place: fields
/// merge one by one, associative lists item by item (live order, new items
/// after), anything atomic is replaced. A `null` in the configuration
/// removes the field. Records in `changed` every path whose value the merge
/// changes or adds (with what is under added values).
pub(crate) fn merge_into(
    schema: &dyn PatchSchema,
    live: &mut Value,
    config: &Value,
    meta: &Meta,
    path: &mut Vec<PathElement>,
    changed: &mut Set,
) {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if !object_atomic(meta) => {
            for (k, cv) in c {
                path.push(PathElement::Field(k.clone()));
                let cm = child_meta(schema, meta, k);
                if cv.is_null() {
                    if l.remove(k).is_some() {
                        changed.insert(path);
                    }
                } else if let Some(lv) = l.get_mut(k) {
                    merge_into(schema, lv, cv, &cm, path, changed);
                } else {
                    l.insert(k.clone(), cv.clone());
                    changed.insert(path);
                    collect_into(schema, changed.node_mut(path), cv, &cm);
                }
                path.pop();
            }
        }
        (Value::Array(l), Value::Array(c)) if !matches!(list_kind(meta), ListKind::Atomic) => {
            let kind = list_kind(meta);
            let im = item_meta(meta);
            let mut index: HashMap<PathElement, usize> = l
                .iter()
                .enumerate()
                .filter_map(|(i, v)| item_element(kind, v, i).map(|pe| (pe, i)))
                .collect();
            for (j, cv) in c.iter().enumerate() {
                let Some(pe) = item_element(kind, cv, j) else {
                    continue;
                };
                path.push(pe);
                let at = path.last().and_then(|pe| index.get(pe)).copied();
                match at {
                    Some(i) => merge_into(schema, &mut l[i], cv, &im, path, changed),
                    None => {
                        l.push(cv.clone());
                        if let Some(pe) = path.last() {
                            index.insert(pe.clone(), l.len() - 1);
                        }
                        changed.insert(path);
                        if matches!(kind, ListKind::Map(..)) && !is_leaf(cv, &im) {
                            collect_into(schema, changed.node_mut(path), cv, &im);
                        }
                    }
                }
                path.pop();
            }
        }
        (live, config) => {
            if *live != *config {
                *live = config.clone();
                changed.insert(path);
                if !is_leaf(config, meta) {
                    collect_into(schema, changed.node_mut(path), config, meta);
                }
            }
        }
    }
}

/// Removes the paths of `remove` from `v`, except where `keep` still holds
/// the path or anything under it (then only what is below is considered).
pub(crate) fn remove(
    schema: &dyn PatchSchema,
    v: &mut Value,
    gone: &Set,
    keep: Option<&Set>,
    meta: &Meta,
) {
    let kept = |pe: &PathElement| keep.is_some_and(|k| k.touches(pe));
    match v {
        Value::Object(o) => {
            for pe in gone.members() {
                if let PathElement::Field(f) = pe
                    && !kept(pe)
                {
                    o.remove(f);
                }
            }
            for (pe, sub) in gone.children() {
                if let PathElement::Field(f) = pe
                    && let Some(child) = o.get_mut(f)
                {
                    let cm = child_meta(schema, meta, f);
                    remove(schema, child, sub, keep.and_then(|k| k.child(pe)), &cm);
                }
            }
        }
        Value::Array(items) => {
            let kind = list_kind(meta);
            let im = item_meta(meta);
            let mut i = 0;
            let mut index = 0;
            while i < items.len() {
                let pe = item_element(kind, &items[i], index);
                index += 1;
                let Some(pe) = pe else {
                    i += 1;
                    continue;
                };
                if gone.has_member(&pe) && !kept(&pe) {
                    items.remove(i);
                    continue;
                }
                if let Some(sub) = gone.child(&pe) {
                    remove(
                        schema,
                        &mut items[i],
                        sub,
                        keep.and_then(|k| k.child(&pe)),
                        &im,
                    );
                }
                i += 1;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{BuiltinSchema, root_type};
    use serde_json::json;

    fn deployment() -> Meta {
        Some(FieldMeta {
            elem: root_type("apps", "v1", "Deployment"),
            ..FieldMeta::default()
        })
    }

    #[test]
    fn field_set_of_a_deployment() {
        let d = json!({"metadata": {"labels": {"app": "web"}}, "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [
                {"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}],
                "tolerations": [{"key": "k", "operator": "Exists"}]}}}});
        let s = to_set(&BuiltinSchema, &d, &deployment());
        let v1 = s.to_fields_v1();
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {
                "f:replicas": {},
                // LabelSelector is atomic.
                "f:selector": {},
                "f:template": {"f:spec": {
                    "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}},
                    // Tolerations have no list type: atomic.
                    "f:tolerations": {}}}}})
        );
    }

    #[test]
    fn compare_and_merge() {
        let live = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let config = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "b", "image": "z"}, {"name": "c", "image": "w"}]}}}});
        let mut merged = live.clone();
        let mut changed = Set::new();
        merge_into(
            &BuiltinSchema,
            &mut merged,
            &config,
            &deployment(),
            &mut Vec::new(),
            &mut changed,
        );
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}, {"name": "c", "image": "w"}])
        );
        let c = compare(&BuiltinSchema, &live, &merged, &deployment());
        let paths: Vec<String> = c
            .modified
            .paths()
            .iter()
            .map(|p| super::super::fieldpath::path_string(p))
            .collect();
        assert_eq!(
            paths,
            vec![
                ".spec.replicas".to_string(),
                r#".spec.template.spec.containers[name="b"].image"#.to_string()
            ]
        );
        assert!(c.added.has(&[
            PathElement::Field("spec".into()),
            PathElement::Field("template".into()),
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key(r#"{"name":"c"}"#.into())
        ]));
        assert!(c.removed.is_empty());
        assert_eq!(changed, c.modified.union(&c.added));
    }

    #[test]
    fn removal_keeps_what_others_own() {
        let mut v = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let mut rm = Set::new();
        rm.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into()),
        ]);
        let mut keep = Set::new();
        keep.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into()),
            PathElement::Field("b".into()),
        ]);
        remove(&BuiltinSchema, &mut v, &rm, Some(&keep), &deployment());
        assert_eq!(v, json!({"metadata": {"labels": {"a": "1", "b": "2"}}}));
        remove(&BuiltinSchema, &mut v, &rm, None, &deployment());
        assert_eq!(v, json!({"metadata": {}}));
    }
}
