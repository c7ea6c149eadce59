//! The selector itself: an AND of requirements, or upstream's `Nothing()`.

use std::collections::BTreeMap;
use std::fmt;

use super::Labels;
use super::requirement::{Operator, Requirement};
use crate::SelectorError;

/// A parsed label selector. `Display` is upstream's canonical `String()`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// Upstream's `labels.Nothing()`: what a nil `metav1.LabelSelector`
    /// converts to; matches no object.
    nothing: bool,
}

impl LabelSelector {
    /// Matches every object (`labels.Everything()`).
    pub fn everything() -> Self {
        Self::default()
    }

    /// Matches no object (`labels.Nothing()`).
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector=` string grammar (`labels.Parse`).
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        Ok(Self {
            requirements: super::parser::parse(input)?,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` JSON value
    /// (`metav1.LabelSelectorAsSelector`): `null` → nothing, `{}` → everything.
    pub fn from_label_selector(value: &serde_json::Value) -> Result<Self, SelectorError> {
        super::convert::from_label_selector(value)
    }

    /// Exact-match selector for a set of labels, unvalidated
    /// (`labels.SelectorFromSet`).
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        Self {
            requirements: set
                .iter()
                .map(|(k, v)| Requirement::unchecked(k.clone(), Operator::Equals, vec![v.clone()]))
                .collect(),
            nothing: false,
        }
    }

    /// Builds from requirements, sorting them by key as upstream's `Add` does.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key().cmp(b.key()));
        Self {
            requirements,
            nothing: false,
        }
    }

    /// Adds a requirement, keeping key order (`Selector.Add`). No-op on nothing.
    pub fn add(&mut self, requirement: Requirement) {
        if self.nothing {
            return;
        }
        let at = self
            .requirements
            .partition_point(|r| r.key() <= requirement.key());
        self.requirements.insert(at, requirement);
    }

    /// True when the selector does not restrict anything (`Empty()`);
    /// false for [`LabelSelector::nothing`].
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the match-nothing selector.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key (empty for nothing; check
    /// [`LabelSelector::is_nothing`], upstream's `selectable == false`).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The single value `label` must equal, if the selector pins it
    /// (`RequiresExactMatch`); lets callers use an index.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key() == label)?;
        match (r.operator(), r.values()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches an object's `metadata.labels` JSON (absent or `null` means no
    /// labels).
    pub fn matches_labels_json(&self, labels: Option<&serde_json::Value>) -> bool {
        static EMPTY: std::sync::LazyLock<serde_json::Map<String, serde_json::Value>> =
            std::sync::LazyLock::new(serde_json::Map::new);
        match labels.and_then(serde_json::Value::as_object) {
            Some(map) => self.matches(map),
            None => self.matches(&*EMPTY),
        }
    }

    /// Matches a whole JSON object by its `metadata.labels`.
    pub fn matches_object(&self, object: &serde_json::Value) -> bool {
        self.matches_labels_json(object.get("metadata").and_then(|m| m.get("labels")))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
