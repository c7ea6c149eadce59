//! Pod (anti-)affinity terms, compiled once per pod.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{PodAffinityTerm, WeightedPodAffinityTerm};

use crate::labels::{Labels, Selector};
use crate::nodeinfo::PodInfo;

#[derive(Clone, Debug, PartialEq)]
pub struct AffinityTerm {
    pub namespaces: Vec<String>,
    pub namespace_selector: Selector,
    pub selector: Selector,
    pub topology_key: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i32,
}

/// Namespace name → labels, for terms with a `namespaceSelector`.
pub type NamespaceLabels = HashMap<String, Labels>;

impl AffinityTerm {
    pub fn new(t: &PodAffinityTerm, pod_namespace: &str) -> AffinityTerm {
        let mut namespaces = t.namespaces.clone().unwrap_or_default();
        // Neither namespaces nor a selector: the pod's own namespace.
        if namespaces.is_empty() && t.namespace_selector.is_none() {
            namespaces.push(pod_namespace.to_owned());
        }
        let mut selector = Selector::from_label_selector(t.label_selector.as_ref());
        // matchLabelKeys / mismatchLabelKeys are merged into the selector
        // at pod creation by the API server upstream; nothing to do here.
        if t.label_selector.is_none() {
            selector = Selector::Nothing;
        }
        AffinityTerm {
            namespaces,
            namespace_selector: Selector::from_label_selector(t.namespace_selector.as_ref()),
            selector,
            topology_key: t.topology_key.clone(),
        }
    }

    pub fn required(terms: Option<&[PodAffinityTerm]>, ns: &str) -> Vec<AffinityTerm> {
        terms
            .into_iter()
            .flatten()
            .map(|t| AffinityTerm::new(t, ns))
            .collect()
    }

    /// Whether `pod` is selected by this term (namespace and labels).
    pub fn matches(&self, pod: &PodInfo, namespaces: &NamespaceLabels) -> bool {
        let in_namespace = self.namespaces.contains(&pod.namespace)
            || match &self.namespace_selector {
                Selector::Nothing => false,
                Selector::Everything => true,
                s => namespaces.get(&pod.namespace).is_some_and(|l| s.matches(l)),
            };
        in_namespace && self.selector.matches(pod.labels())
    }
}

impl WeightedAffinityTerm {
    pub fn preferred(
        terms: Option<&[WeightedPodAffinityTerm]>,
        ns: &str,
    ) -> Vec<WeightedAffinityTerm> {
        terms
            .into_iter()
            .flatten()
            .map(|t| WeightedAffinityTerm {
                term: AffinityTerm::new(&t.pod_affinity_term, ns),
                weight: t.weight,
            })
            .collect()
    }
}
