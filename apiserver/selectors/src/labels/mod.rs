//! Label selectors: the `labelSelector=` string grammar and the
//! `metav1.LabelSelector` object form, both reduced to one [`LabelSelector`].

mod convert;
mod lexer;
mod parser;
mod requirement;
mod selector;
#[cfg(test)]
mod tests;

pub use requirement::{Operator, Requirement};
pub use selector::LabelSelector;

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// Something that can be asked for a label's value; lets one selector match
/// typed maps and the raw JSON `metadata.labels` of stored objects alike.
pub trait Labels {
    /// The label's value, or `None` when the label is absent.
    fn get_label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// JSON labels: only string values count; anything else is treated as
/// absent (such objects never pass validation anyway).
impl Labels for serde_json::Map<String, serde_json::Value> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(serde_json::Value::as_str)
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn get_label(&self, key: &str) -> Option<&str> {
        (**self).get_label(key)
    }
}
