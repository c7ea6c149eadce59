//! Sets of field paths, as server-side apply records ownership, and their
//! `FieldsV1` encoding (`{"f:spec": {"f:replicas": {}}}`).
//!
//! A set is a tree: each node has members (paths that end here) and children
//! (paths that go deeper). A node can be both, which `FieldsV1` writes as a
//! `".": {}` entry in the child's object.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a path: a field of an object or map (`f:`), an item of a
/// list of objects by its key fields (`k:`, canonical JSON), an item of a
/// set by its value (`v:`, canonical JSON), or a list index (`i:`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    Field(String),
    Key(String),
    Value(String),
    Index(usize),
}

impl PathElement {
    /// The `FieldsV1` key of this element.
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<PathElement> {
        let (prefix, rest) = s.split_at_checked(2)?;
        match prefix {
            "f:" => Some(PathElement::Field(rest.to_owned())),
            // Keys and values are re-serialized so equal JSON compares equal.
            "k:" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                v.is_object().then(|| PathElement::Key(v.to_string()))
            }
            "v:" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                Some(PathElement::Value(v.to_string()))
            }
            "i:" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }

    /// How a path step reads in messages, as upstream prints field paths:
    /// `.spec`, `[name="nginx"]`, `[=value]`, `[0]`.
    fn display(&self, out: &mut String) {
        match self {
            PathElement::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            PathElement::Key(k) => {
                out.push('[');
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(k) {
                    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.push_str(&parts.join(","));
                }
                out.push(']');
            }
            PathElement::Value(v) => {
                out.push_str("[=");
                out.push_str(v);
                out.push(']');
            }
            PathElement::Index(i) => {
                out.push_str(&format!("[{i}]"));
            }
        }
    }
}

/// A path as upstream prints it in conflict messages (`.spec.replicas`).
pub fn path_string(path: &[PathElement]) -> String {
    let mut out = String::new();
    for pe in path {
        pe.display(&mut out);
    }
    out
}

/// A set of paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Self {
        Set::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The subtree under `pe` (paths that continue past it).
    pub fn child(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    /// The subtree under `pe`, created when missing.
    pub fn child_mut(&mut self, pe: &PathElement) -> &mut Set {
        self.children.entry(pe.clone()).or_default()
    }

    /// The node at `path`, created when missing.
    pub fn node_mut(&mut self, path: &[PathElement]) -> &mut Set {
        match path {
            [] => self,
            [first, rest @ ..] => self.child_mut(first).node_mut(rest),
        }
    }

    /// Adds a path of one element.
    pub fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &Set)> {
        self.children.iter()
    }

    /// Whether the set holds `pe` or anything under it.
    pub fn touches(&self, pe: &PathElement) -> bool {
        self.members.contains(pe) || self.children.get(pe).is_some_and(|c| !c.is_empty())
    }

    pub fn union_with(&mut self, other: &Set) {
        self.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            self.children.entry(pe.clone()).or_default().union_with(c);
        }
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    pub fn difference(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, c) in &self.children {
            let d = match other.children.get(pe) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, c) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Removes the path of one element `pe` (what is under it stays).
    pub fn remove_member(&mut self, pe: &PathElement) {
        self.members.remove(pe);
    }

    /// Removes `pe` and everything under it.
    pub fn remove_subtree(&mut self, pe: &PathElement) {
        self.members.remove(pe);
        self.children.remove(pe);
    }

    /// Every path in the set, in order.
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        // Members and children in element order, a member before its children.
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for pe in keys {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(prefix.clone());
            }
            if let Some(c) = self.children.get(pe) {
                c.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        for pe in &self.members {
            if self.children.get(pe).is_none_or(|c| c.is_empty()) {
                m.insert(pe.encode(), Value::Object(Map::new()));
            }
        }
        for (pe, c) in &self.children {
            if c.is_empty() {
                continue;
            }
            let mut v = c.to_fields_v1();
            if self.members.contains(pe)
                && let Value::Object(o) = &mut v
            {
                o.insert(".".into(), Value::Object(Map::new()));
            }
            m.insert(pe.encode(), v);
        }
        Value::Object(m)
    }

    /// Reads `FieldsV1` JSON; `None` when it is not a valid encoding.
    pub fn from_fields_v1(v: &Value) -> Option<Set> {
        let mut set = Set::new();
        for (k, child) in v.as_object()? {
            if k == "." {
                continue;
            }
            let pe = PathElement::decode(k)?;
            let obj = child.as_object()?;
            if obj.is_empty() || obj.contains_key(".") {
                set.members.insert(pe.clone());
            }
            let sub = Set::from_fields_v1(child)?;
            if !sub.is_empty() {
                set.children.insert(pe, sub);
            }
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.into())
    }

    #[test]
    fn fields_v1_round_trip() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}},
                "f:replicas": {}},
        });
        let s = Set::from_fields_v1(&v).unwrap();
        assert!(s.has(&[f("spec"), f("replicas")]));
        assert!(s.has(&[f("metadata"), f("labels")]));
        assert!(!s.has(&[f("metadata")]));
        assert!(s.has(&[
            f("spec"),
            f("containers"),
            PathElement::Key(r#"{"name":"nginx"}"#.into())
        ]));
        assert_eq!(s.to_fields_v1(), v);
        assert_eq!(s.paths().len(), 6);
        assert!(Set::from_fields_v1(&json!({"x:y": {}})).is_none());
    }

    #[test]
    fn set_algebra() {
        let mut a = Set::new();
        a.insert(&[f("spec"), f("replicas")]);
        a.insert(&[f("spec"), f("paused")]);
        let mut b = Set::new();
        b.insert(&[f("spec"), f("replicas")]);
        b.insert(&[f("metadata"), f("labels")]);
        assert_eq!(
            a.intersection(&b).paths(),
            vec![vec![f("spec"), f("replicas")]]
        );
        assert_eq!(a.difference(&b).paths(), vec![vec![f("spec"), f("paused")]]);
        assert_eq!(a.union(&b).paths().len(), 3);
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn display() {
        let p = vec![
            f("spec"),
            f("containers"),
            PathElement::Key(r#"{"name":"nginx"}"#.into()),
            f("image"),
        ];
        assert_eq!(path_string(&p), r#".spec.containers[name="nginx"].image"#);
    }
}
