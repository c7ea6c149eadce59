//! What label and field selectors read from an object, behind one trait:
//! implemented by full JSON objects (storage reads) and by the compact
//! extract the watch cache keeps per object (a few strings instead of a
//! parsed tree, so the cache stays close to the size of the stored JSON).

use serde_json::Value;

pub trait Selectable {
    fn name(&self) -> Option<&str>;
    fn label(&self, key: &str) -> Option<&str>;
    /// The text of a scalar at a JSON pointer, if present and not null.
    fn scalar(&self, pointer: &str) -> Option<String>;
}

/// How a change shows to a watcher with a selector, as upstream's
/// cacheWatcher: (event type, whether the object shown is the previous
/// state). Objects entering the selection are ADDED; objects leaving it are
/// DELETED with their previous content; `None` when the watcher never saw
/// the object. For a delete the object is already its last state.
pub fn transition(
    deleted: bool,
    prev_passes: bool,
    cur_passes: bool,
) -> Option<(&'static str, bool)> {
    if deleted {
        return prev_passes.then_some(("DELETED", false));
    }
    match (prev_passes, cur_passes) {
        (true, true) => Some(("MODIFIED", false)),
        (false, true) => Some(("ADDED", false)),
        (true, false) => Some(("DELETED", true)),
        (false, false) => None,
    }
}

/// A selector filter, shared by lists and watches.
pub type Filter = std::sync::Arc<dyn Fn(&dyn Selectable) -> bool + Send + Sync>;

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Selectable for Value {
    fn name(&self) -> Option<&str> {
        self.pointer("/metadata/name").and_then(Value::as_str)
    }
    fn label(&self, key: &str) -> Option<&str> {
        self.pointer("/metadata/labels")?.get(key)?.as_str()
    }
    fn scalar(&self, pointer: &str) -> Option<String> {
        self.pointer(pointer).and_then(text)
    }
}

/// The selector-relevant parts of an object.
#[derive(Debug, Default)]
pub struct Extract {
    name: Box<str>,
    labels: Box<[(Box<str>, Box<str>)]>,
    /// (JSON pointer, value) of every selectable field present.
    fields: Box<[(&'static str, Box<str>)]>,
}

impl Extract {
    pub fn of(obj: &Value) -> Self {
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
                    .collect()
            })
            .unwrap_or_default();
        let mut fields: Vec<(&'static str, Box<str>)> = Vec::new();
        let custom = crate::fields::custom_pointers();
        for pointer in ["/metadata/namespace"]
            .iter()
            .chain(crate::fields::all_pointers())
            .chain(custom.iter())
        {
            if let Some(v) = obj.pointer(pointer).and_then(text) {
                fields.push((pointer, v.into()));
            }
        }
        Extract {
            name: obj.name().unwrap_or_default().into(),
            labels,
            fields: fields.into(),
        }
    }
}

impl Selectable for Extract {
    fn name(&self) -> Option<&str> {
        Some(&self.name).filter(|n| !n.is_empty()).map(|n| &**n)
    }
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }
    fn scalar(&self, pointer: &str) -> Option<String> {
        if pointer == "/metadata/name" {
            return self.name().map(str::to_owned);
        }
        self.fields
            .iter()
            .find(|(p, _)| *p == pointer)
            .map(|(_, v)| v.to_string())
    }
}

/// Adapts a selectable object to the selectors crate's label lookup.
pub struct LabelsOf<'a>(pub &'a dyn Selectable);

impl rkube_selectors::Labels for LabelsOf<'_> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.0.label(key)
    }
}
