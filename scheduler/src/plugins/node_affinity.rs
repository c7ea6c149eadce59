//! NodeAffinity: `nodeSelector` and required node affinity filter; the
//! preferred terms' weights score.

use crate::framework::{ClusterView, CycleState, Plugin, Point, Status, default_normalize};
use crate::labels::{node_selector_matches, term_matches};
use crate::nodeinfo::{NodeInfo, PodInfo};

pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

pub struct NodeAffinity;

pub fn required_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    let spec = pod.spec();
    let Some(n) = node.node.as_deref() else {
        return false;
    };
    let labels = node.labels();
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    match spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }) {
        Some(required) => node_selector_matches(required, n),
        None => true,
    }
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }
    fn points(&self) -> &'static [Point] {
        &[
            Point::PreFilter,
            Point::Filter,
            Point::PreScore,
            Point::Score,
        ]
    }
    fn pre_filter(&self, _: &mut CycleState, pod: &PodInfo, _: &ClusterView) -> Status {
        let spec = pod.spec();
        let required = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        if spec.node_selector.as_ref().is_none_or(|s| s.is_empty()) && required.is_none() {
            return Status::skip();
        }
        Status::success()
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if required_matches(pod, node) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &[&NodeInfo],
        _: &ClusterView,
    ) -> Status {
        let preferred = pod
            .spec()
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        if preferred.is_none_or(|p| p.is_empty()) {
            Status::skip()
        } else {
            Status::success()
        }
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &ClusterView) -> i64 {
        let Some(n) = node.node.as_deref() else {
            return 0;
        };
        pod.spec()
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|t| t.weight != 0 && term_matches(&t.preference, n))
            .map(|t| i64::from(t.weight))
            .sum()
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{cache, node, pod};
    use serde_json::json;

    #[test]
    fn node_selector_and_required_affinity_filter() {
        let s = CycleState::default();
        let n = node(json!({"metadata": {"name": "n", "labels": {"disk": "ssd", "zone": "a"}}}));
        assert!(
            NodeAffinity
                .filter(
                    &s,
                    &pod(json!({"spec": {"nodeSelector": {"disk": "ssd"}}})),
                    &n
                )
                .is_success()
        );
        let r = NodeAffinity.filter(
            &s,
            &pod(json!({"spec": {"nodeSelector": {"disk": "hdd"}}})),
            &n,
        );
        assert_eq!(r.reasons, [ERR_REASON_POD]);
        let aff = pod(
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}
            ]}}}}}),
        );
        assert!(!NodeAffinity.filter(&s, &aff, &n).is_success());
    }

    #[test]
    fn preferred_terms_score_their_weights() {
        let s = CycleState::default();
        let c = cache();
        let view = ClusterView { cache: &c };
        let a = node(json!({"metadata": {"name": "a", "labels": {"zone": "a"}}}));
        let b = node(json!({"metadata": {"name": "b", "labels": {"zone": "b"}}}));
        let p = pod(
            json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}},
                {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}
            ]}}}}),
        );
        let mut scores = [
            NodeAffinity.score(&s, &p, &a, &view),
            NodeAffinity.score(&s, &p, &b, &view),
        ];
        assert_eq!(scores, [5, 15]);
        NodeAffinity.normalize(&s, &p, &mut scores);
        assert_eq!(scores, [33, 100]);
    }
}
