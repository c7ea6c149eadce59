//! Pruning of unknown fields (upstream `schema/pruning`): `apiVersion`,
//! `kind` and `metadata` survive at the root and in embedded resources,
//! `x-kubernetes-preserve-unknown-fields` keeps unknown keys but still prunes
//! below known ones.

use crate::schema::Schema;
use serde_json::Value;

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The JSON fields of ObjectMeta: anything else in an embedded resource's
/// `metadata` is dropped and reported, as upstream's `objectmeta.Coerce`.
const OBJECT_META_FIELDS: [&str; 15] = [
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

/// Prunes `x` (the object root when `root`); returns the removed paths.
pub(crate) fn prune(x: &mut Value, s: &Schema, root: bool) -> Vec<String> {
    let mut pruned = Vec::new();
    let mut p = Pruner {
        path: String::new(),
        pruned: &mut pruned,
    };
    p.prune(x, Some(s), root);
    pruned
}

struct Pruner<'a> {
    path: String,
    pruned: &'a mut Vec<String>,
}

impl Pruner<'_> {
    /// Drops unknown fields of an embedded resource's `metadata`.
    fn embedded_meta(&mut self, v: &mut Value) {
        let Value::Object(m) = v else { return };
        let unknown: Vec<String> = m
            .keys()
            .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            self.with_key("metadata", |p| p.record(&k));
            m.remove(&k);
        }
    }

    fn with_key<F: FnOnce(&mut Self)>(&mut self, k: &str, f: F) {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(k);
        f(self);
        self.path.truncate(len);
    }

    fn with_index<F: FnOnce(&mut Self)>(&mut self, i: usize, f: F) {
        let len = self.path.len();
        self.path.push_str(&format!("[{i}]"));
        f(self);
        self.path.truncate(len);
    }

    fn record(&mut self, k: &str) {
        if self.path.is_empty() {
            self.pruned.push(k.to_string());
        } else {
            self.pruned.push(format!("{}.{k}", self.path));
        }
    }

    /// `embedded` marks a resource root (the object root, or
    /// `x-kubernetes-embedded-resource`).
    fn prune(&mut self, x: &mut Value, s: Option<&Schema>, embedded: bool) {
        if let Some(s) = s
            && s.preserves_unknown()
        {
            self.skip(x, s, embedded);
            return;
        }
        match x {
            Value::Object(m) => {
                let Some(s) = s else {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    for k in keys {
                        self.record(&k);
                    }
                    m.clear();
                    return;
                };
                let embedded = embedded || s.embedded_resource;
                let mut remove = Vec::new();
                for (k, v) in m.iter_mut() {
                    if embedded && META_FIELDS.contains(&k.as_str()) {
                        if s.embedded_resource && k == "metadata" {
                            self.embedded_meta(v);
                        }
                        continue;
                    }
                    if let Some(prop) = s.property(k) {
                        self.with_key(k, |p| p.prune(v, Some(prop), false));
                    } else if s.additional_properties.is_some() {
                        let ap = s.additional_schema();
                        self.with_key(k, |p| p.prune(v, ap, false));
                    } else {
                        remove.push(k.clone());
                    }
                }
                for k in remove {
                    self.record(&k);
                    m.remove(&k);
                }
            }
            Value::Array(a) => {
                let items = s.and_then(|s| s.items.as_deref());
                for (i, v) in a.iter_mut().enumerate() {
                    self.with_index(i, |p| p.prune(v, items, false));
                }
            }
            _ => {}
        }
    }

    fn skip(&mut self, x: &mut Value, s: &Schema, embedded: bool) {
        match x {
            Value::Object(m) => {
                let embedded = embedded || s.embedded_resource;
                for (k, v) in m.iter_mut() {
                    if embedded && META_FIELDS.contains(&k.as_str()) {
                        if s.embedded_resource && k == "metadata" {
                            self.embedded_meta(v);
                        }
                        continue;
                    }
                    if let Some(prop) = s.property(k) {
                        self.with_key(k, |p| p.prune(v, Some(prop), false));
                    } else if s.additional_properties.is_some() {
                        let ap = s.additional_schema();
                        self.with_key(k, |p| p.prune(v, ap, false));
                    }
                }
            }
            Value::Array(a) => {
                if let Some(items) = s.items.as_deref() {
                    for (i, v) in a.iter_mut().enumerate() {
                        self.with_index(i, |p| p.skip(v, items, false));
                    }
                }
            }
            _ => {}
        }
    }
}
