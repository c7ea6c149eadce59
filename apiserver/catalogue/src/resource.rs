//! Owned resource descriptions, so CRDs can add entries at run time.

use crate::builtin::{Raw, RawSub};

/// API maturity of a version; decides default enablement and `api/beta`-style switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stability {
    Ga,
    Beta,
    Alpha,
}

impl Stability {
    /// Classify a version string the way upstream does (`v1beta2` is beta, `v1` GA).
    pub fn of_version(version: &str) -> Stability {
        if version.contains("alpha") {
            Stability::Alpha
        } else if version.contains("beta") {
            Stability::Beta
        } else {
            Stability::Ga
        }
    }
}

/// A subresource such as `pods/status` or `deployments/scale`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubresourceInfo {
    pub name: String,
    pub kind: String,
    /// Set only when the subresource's kind lives in another group-version (e.g. `autoscaling/v1` Scale).
    pub group: Option<String>,
    pub version: Option<String>,
    pub verbs: Vec<String>,
}

/// One served resource in one group-version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// Discovery verbs, sorted as upstream prints them.
    pub verbs: Vec<String>,
    pub subresources: Vec<SubresourceInfo>,
    /// etcd key prefix under `/registry/` (e.g. `minions`); empty for virtual resources.
    /// Resources with the same prefix share storage (all versions; core and events.k8s.io events).
    pub storage_prefix: String,
    /// Upstream `storageVersionHash` of the storage kind; empty when there is no storage.
    pub storage_version_hash: String,
    pub enabled_by_default: bool,
    pub stability: Stability,
}

impl ResourceInfo {
    /// `group/version` as used in `apiVersion` (`v1` for core).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Virtual resources (reviews, bindings, componentstatuses) have nothing in etcd.
    pub fn has_storage(&self) -> bool {
        !self.storage_prefix.is_empty()
    }

    pub fn subresource(&self, name: &str) -> Option<&SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl From<&RawSub> for SubresourceInfo {
    fn from(r: &RawSub) -> Self {
        SubresourceInfo {
            name: r.name.to_owned(),
            kind: r.kind.to_owned(),
            group: non_empty(r.version).map(|_| r.group.to_owned()),
            version: non_empty(r.version),
            verbs: strings(r.verbs),
        }
    }
}

impl From<&Raw> for ResourceInfo {
    fn from(r: &Raw) -> Self {
        ResourceInfo {
            group: r.group.to_owned(),
            version: r.version.to_owned(),
            kind: r.kind.to_owned(),
            list_kind: format!("{}List", r.kind),
            plural: r.plural.to_owned(),
            singular: r.singular.to_owned(),
            short_names: strings(r.short_names),
            categories: strings(r.categories),
            namespaced: r.namespaced,
            verbs: strings(r.verbs),
            subresources: r.subresources.iter().map(SubresourceInfo::from).collect(),
            storage_prefix: r.storage_prefix.to_owned(),
            storage_version_hash: r.storage_version_hash.to_owned(),
            enabled_by_default: r.enabled_by_default,
            stability: r.stability,
        }
    }
}
