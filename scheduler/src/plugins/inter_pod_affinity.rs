//! InterPodAffinity: required pod affinity and anti-affinity (the incoming
//! pod's, and existing pods' anti-affinity against it) filter per topology
//! domain; preferred terms of both sides score.

use std::collections::HashMap;

use crate::affinity::NamespaceLabels;
use crate::framework::{ClusterView, Code, CycleState, MAX_NODE_SCORE, Plugin, Point, Status};
use crate::nodeinfo::{NodeInfo, PodInfo};

pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// Counts per topology domain, by key then value: a node's domains are
/// found by looking up its own (few) labels, without allocating, instead
/// of walking every domain for every node.
#[derive(Default)]
struct Domains(HashMap<String, HashMap<String, i64>>);

impl Domains {
    fn add(&mut self, node: &NodeInfo, key: &str, n: i64) {
        let Some(value) = node.labels().get(key) else {
            return;
        };
        let values = match self.0.get_mut(key) {
            Some(v) => v,
            None => self.0.entry(key.to_owned()).or_default(),
        };
        match values.get_mut(value.as_str()) {
            Some(c) => *c += n,
            None => {
                values.insert(value.clone(), n);
            }
        }
    }

    /// The count of the node's domain for `key` (0 without the label).
    fn get(&self, node: &NodeInfo, key: &str) -> i64 {
        node.labels()
            .get(key)
            .and_then(|v| self.0.get(key)?.get(v.as_str()))
            .copied()
            .unwrap_or(0)
    }

    /// Whether any of the node's domains has a positive count.
    fn any_positive(&self, node: &NodeInfo) -> bool {
        self.0.keys().any(|k| self.get(node, k) > 0)
    }

    /// The sum over the node's domains.
    fn sum(&self, node: &NodeInfo) -> i64 {
        self.0.keys().map(|k| self.get(node, k)).sum()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Default)]
struct FilterState {
    /// Domains where an existing pod's required anti-affinity rejects us.
    existing_anti: Domains,
    /// Domains with pods matching all our affinity terms.
    affinity: Domains,
    /// Domains with pods matching one of our anti-affinity terms.
    anti: Domains,
}

struct ScoreState(Domains);

pub struct InterPodAffinity;

const NAME: &str = "InterPodAffinity";

fn matches_all(
    terms: &[crate::affinity::AffinityTerm],
    pod: &PodInfo,
    ns: &NamespaceLabels,
) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, ns))
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn points(&self) -> &'static [Point] {
        &[
            Point::PreFilter,
            Point::Filter,
            Point::PreScore,
            Point::Score,
        ]
    }
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, view: &ClusterView) -> Status {
        let ns = &view.cache.namespaces;
        let mut s = FilterState::default();
        let mine = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        for node in view.cache.nodes() {
            if node.node.is_none() || (!mine && node.pods_with_required_anti_affinity == 0) {
                continue;
            }
            for existing in &node.pods {
                for t in &existing.required_anti_affinity {
                    if t.matches(pod, ns) {
                        s.existing_anti.add(node, &t.topology_key, 1);
                    }
                }
                if !mine {
                    continue;
                }
                if matches_all(&pod.required_affinity, existing, ns) {
                    for t in &pod.required_affinity {
                        s.affinity.add(node, &t.topology_key, 1);
                    }
                }
                for t in &pod.required_anti_affinity {
                    if t.matches(existing, ns) {
                        s.anti.add(node, &t.topology_key, 1);
                    }
                }
            }
        }
        if !mine && s.existing_anti.is_empty() {
            return Status::skip();
        }
        // The first pod of a group that matches its own affinity may go
        // anywhere its topology keys exist.
        let self_match = s.affinity.is_empty() && matches_all(&pod.required_affinity, pod, ns);
        state.write(NAME, (s, self_match));
        Status::success()
    }
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some((s, self_match)) = state.read::<(FilterState, bool)>(NAME) else {
            return Status::success();
        };
        for t in &pod.required_affinity {
            let ok = node.labels().contains_key(&t.topology_key)
                && (*self_match || s.affinity.get(node, &t.topology_key) > 0);
            if !ok {
                return Status {
                    code: Code::UnschedulableAndUnresolvable,
                    reasons: vec![ERR_AFFINITY.into()],
                    plugin: "",
                };
            }
        }
        for t in &pod.required_anti_affinity {
            if s.anti.get(node, &t.topology_key) > 0 {
                return Status::unschedulable(ERR_ANTI_AFFINITY);
            }
        }
        if s.existing_anti.any_positive(node) {
            return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[&NodeInfo],
        view: &ClusterView,
    ) -> Status {
        let ns = &view.cache.namespaces;
        let mine = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        let mut scores = Domains::default();
        for node in view.cache.nodes() {
            if node.node.is_none() || (!mine && node.pods_with_affinity == 0) {
                continue;
            }
            for existing in &node.pods {
                let mut add = |key: &str, w: i64| scores.add(node, key, w);
                for t in &pod.preferred_affinity {
                    if t.term.matches(existing, ns) {
                        add(&t.term.topology_key, i64::from(t.weight));
                    }
                }
                for t in &pod.preferred_anti_affinity {
                    if t.term.matches(existing, ns) {
                        add(&t.term.topology_key, -i64::from(t.weight));
                    }
                }
                // Existing pods' wishes about us count too (required
                // affinity with upstream's hardPodAffinityWeight of 1).
                for t in &existing.required_affinity {
                    if t.matches(pod, ns) {
                        add(&t.topology_key, 1);
                    }
                }
                for t in &existing.preferred_affinity {
                    if t.term.matches(pod, ns) {
                        add(&t.term.topology_key, i64::from(t.weight));
                    }
                }
                for t in &existing.preferred_anti_affinity {
                    if t.term.matches(pod, ns) {
                        add(&t.term.topology_key, -i64::from(t.weight));
                    }
                }
            }
        }
        if scores.is_empty() {
            return Status::skip();
        }
        state.write("InterPodAffinity/score", ScoreState(scores));
        Status::success()
    }
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo, _: &ClusterView) -> i64 {
        let Some(ScoreState(scores)) = state.read::<ScoreState>("InterPodAffinity/score") else {
            return 0;
        };
        scores.sum(node)
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        let (min, max) = (
            scores.iter().copied().min().unwrap_or(0),
            scores.iter().copied().max().unwrap_or(0),
        );
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                MAX_NODE_SCORE * (*s - min) / diff
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::Cache;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    fn pod(name: &str, labels: serde_json::Value, affinity: serde_json::Value) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels},
            "spec": {"containers": [{"name": "c"}], "affinity": affinity}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), 0))
    }

    fn cluster() -> Cache {
        let mut c = Cache::new();
        for (name, zone) in [("a", "z1"), ("b", "z1"), ("c", "z2")] {
            let n: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": zone}}})).unwrap();
            c.upsert_node(Arc::new(n));
        }
        c
    }

    fn feasible(c: &Cache, p: &PodInfo) -> Vec<String> {
        let mut state = CycleState::default();
        let view = ClusterView { cache: c };
        let s = InterPodAffinity.pre_filter(&mut state, p, &view);
        c.nodes()
            .iter()
            .filter(|n| s.code == Code::Skip || InterPodAffinity.filter(&state, p, n).is_success())
            .map(|n| n.name.clone())
            .collect()
    }

    #[test]
    fn required_anti_affinity_keeps_pods_apart_both_ways() {
        let mut c = cluster();
        let anti = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}});
        c.assume(pod("w1", json!({"app": "web"}), anti.clone()), "a");
        let p = pod("w2", json!({"app": "web"}), anti);
        assert_eq!(feasible(&c, &p), ["c"]);
        // A pod without anti-affinity is still kept out by w1's rule.
        let plain = pod("x", json!({"app": "web"}), json!(null));
        assert_eq!(feasible(&c, &plain), ["c"]);
        let other = pod("y", json!({"app": "db"}), json!(null));
        assert_eq!(feasible(&c, &other).len(), 3);
    }

    #[test]
    fn required_affinity_follows_matching_pods_or_self() {
        let mut c = cluster();
        let aff = json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}]}});
        // No cache pod yet, and the pod is not one itself: nowhere.
        let p = pod("p", json!({"app": "web"}), aff.clone());
        assert!(feasible(&c, &p).is_empty());
        // It matches itself: the first of its group may go anywhere.
        let first = pod("first", json!({"app": "cache"}), aff.clone());
        assert_eq!(feasible(&c, &first).len(), 3);
        c.assume(pod("cache", json!({"app": "cache"}), json!(null)), "c");
        assert_eq!(feasible(&c, &p), ["c"]);
    }

    #[test]
    fn preferred_affinity_scores_domains() {
        let mut c = cluster();
        c.assume(pod("db", json!({"app": "db"}), json!(null)), "b");
        let p = pod(
            "p",
            json!({}),
            json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}}]}}),
        );
        let view = ClusterView { cache: &c };
        let mut state = CycleState::default();
        let nodes: Vec<&NodeInfo> = c.nodes().iter().collect();
        assert!(
            InterPodAffinity
                .pre_score(&mut state, &p, &nodes, &view)
                .is_success()
        );
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| InterPodAffinity.score(&state, &p, n, &view))
            .collect();
        InterPodAffinity.normalize(&state, &p, &mut scores);
        assert_eq!(scores, [100, 100, 0]);
    }
}
