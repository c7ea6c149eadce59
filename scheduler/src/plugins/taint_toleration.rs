//! TaintToleration: NoSchedule/NoExecute taints must be tolerated;
//! untolerated PreferNoSchedule taints lower the score.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::framework::{ClusterView, CycleState, Plugin, Point, Status, default_normalize};
use crate::nodeinfo::{NodeInfo, PodInfo};

/// upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, key: &str, value: Option<&str>, effect: &str) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty())
        && e != effect
    {
        return false;
    }
    if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty())
        && k != key
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "" | "Equal" => t.value.as_deref().unwrap_or("") == value.unwrap_or(""),
        _ => false,
    }
}

fn taint_tolerated(taint: &Taint, tolerations: &[Toleration]) -> bool {
    tolerations
        .iter()
        .any(|t| tolerates(t, &taint.key, taint.value.as_deref(), &taint.effect))
}

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }
    fn points(&self) -> &'static [Point] {
        &[Point::Filter, Point::PreScore, Point::Score]
    }
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let tolerations = pod.spec().tolerations.as_deref().unwrap_or_default();
        let untolerated = node
            .taints
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .find(|t| !taint_tolerated(t, tolerations));
        match untolerated {
            None => Status::success(),
            Some(t) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            )),
        }
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, _: &ClusterView) -> i64 {
        // Only tolerations that could apply to PreferNoSchedule count.
        let tolerations: Vec<Toleration> = pod
            .spec()
            .tolerations
            .iter()
            .flatten()
            .filter(|t| {
                t.effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
            })
            .cloned()
            .collect();
        node.taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule" && !taint_tolerated(t, &tolerations))
            .count() as i64
    }
    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{cache, node, pod};
    use serde_json::json;

    #[test]
    fn filter_needs_tolerations_for_noschedule_taints() {
        let s = CycleState::default();
        let n = node(
            json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, {"key": "soft", "effect": "PreferNoSchedule"}]}}),
        );
        let r = TaintToleration.filter(&s, &pod(json!({"spec": {}})), &n);
        assert_eq!(
            r.reasons,
            ["node(s) had untolerated taint {dedicated: gpu}"]
        );
        let ok = pod(
            json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu"}]}}),
        );
        assert!(TaintToleration.filter(&s, &ok, &n).is_success());
        let wrong = pod(json!({"spec": {"tolerations": [{"key": "dedicated", "value": "cpu"}]}}));
        assert!(!TaintToleration.filter(&s, &wrong, &n).is_success());
        let all = pod(json!({"spec": {"tolerations": [{"operator": "Exists"}]}}));
        assert!(TaintToleration.filter(&s, &all, &n).is_success());
    }

    #[test]
    fn score_prefers_fewer_untolerated_prefer_no_schedule_taints() {
        let s = CycleState::default();
        let c = cache();
        let view = ClusterView { cache: &c };
        let clean = node(json!({"metadata": {"name": "a"}}));
        let soft = node(
            json!({"metadata": {"name": "b"}, "spec": {"taints": [{"key": "x", "effect": "PreferNoSchedule"}]}}),
        );
        let p = pod(json!({"spec": {}}));
        let mut scores = [
            TaintToleration.score(&s, &p, &clean, &view),
            TaintToleration.score(&s, &p, &soft, &view),
        ];
        TaintToleration.normalize(&s, &p, &mut scores);
        assert_eq!(scores, [100, 0]);
    }
}
