//! The scheduling framework: plugin statuses, cycle state, the extension
//! points and one profile's run of them over the cache.

use std::any::Any;

use k8s_openapi::api::core::v1::Pod;

use crate::cache::Cache;
use crate::nodeinfo::{NodeInfo, PodInfo};

pub const MAX_NODE_SCORE: i64 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Success,
    Error,
    Unschedulable,
    UnschedulableAndUnresolvable,
    Skip,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }
    pub fn skip() -> Status {
        Status {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: "",
        }
    }
    pub fn new(code: Code, reason: impl Into<String>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }
    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status::new(Code::Unschedulable, reason)
    }
    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Per-pod data PreFilter/PreScore hand to Filter/Score, by plugin name.
#[derive(Default)]
pub struct CycleState {
    entries: Vec<(&'static str, Box<dyn Any + Send + Sync>)>,
    skip_filter: Vec<&'static str>,
    skip_score: Vec<&'static str>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, Box::new(value)));
    }
    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.downcast_ref())
    }
}

/// What plugins see of the cluster during a cycle.
pub struct ClusterView<'a> {
    pub cache: &'a Cache,
}

/// A scheduling plugin: each method is one of upstream's extension
/// points; [`Plugin::points`] says which ones the plugin implements.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn points(&self) -> &'static [Point];

    /// PreEnqueue: whether the pod may enter the active queue at all.
    fn pre_enqueue(&self, _pod: &Pod) -> Status {
        Status::success()
    }
    /// PreFilter; `Skip` skips this plugin's Filter for the pod.
    fn pre_filter(&self, _state: &mut CycleState, _pod: &PodInfo, _view: &ClusterView) -> Status {
        Status::success()
    }
    fn filter(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }
    /// PreScore over the feasible nodes; `Skip` skips Score.
    fn pre_score(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _view: &ClusterView,
    ) -> Status {
        Status::success()
    }
    fn score(
        &self,
        _state: &CycleState,
        _pod: &PodInfo,
        _node: &NodeInfo,
        _view: &ClusterView,
    ) -> i64 {
        0
    }
    /// NormalizeScore: maps raw scores into 0..=100.
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) {}
    fn reserve(&self, _state: &mut CycleState, _pod: &PodInfo, _node: &str) -> Status {
        Status::success()
    }
    fn unreserve(&self, _state: &mut CycleState, _pod: &PodInfo, _node: &str) {}
    fn permit(&self, _state: &mut CycleState, _pod: &PodInfo, _node: &str) -> Status {
        Status::success()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    PreEnqueue,
    QueueSort,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    Bind,
    PostBind,
}

/// upstream's `DefaultNormalizeScore`.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

/// One profile's plugins, per extension point, in upstream's order.
pub struct Framework {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub pre_enqueue: Vec<std::sync::Arc<dyn Plugin>>,
    pub pre_filter: Vec<std::sync::Arc<dyn Plugin>>,
    pub filter: Vec<std::sync::Arc<dyn Plugin>>,
    pub pre_score: Vec<std::sync::Arc<dyn Plugin>>,
    pub score: Vec<(std::sync::Arc<dyn Plugin>, i64)>,
    pub reserve: Vec<std::sync::Arc<dyn Plugin>>,
    pub permit: Vec<std::sync::Arc<dyn Plugin>>,
    pub post_filter: bool,
    pub bind: bool,
}

/// Why a pod fits nowhere: the status of each rejected node.
#[derive(Debug, Default)]
pub struct Diagnosis {
    /// (index into the cache's nodes, status) of each rejected node.
    pub node_statuses: Vec<(usize, Status)>,
    pub pre_filter_msg: String,
    pub post_filter_msg: String,
    pub unschedulable_plugins: Vec<&'static str>,
    pub num_all_nodes: usize,
}

impl Diagnosis {
    /// upstream's `FitError.Error()`: "0/N nodes are available: ...".
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        if !self.pre_filter_msg.is_empty() {
            msg.push_str(&format!(" {}.", self.pre_filter_msg));
        } else {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for (_, s) in &self.node_statuses {
                for r in &s.reasons {
                    *counts.entry(r.as_str()).or_default() += 1;
                }
            }
            let mut reasons: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
            reasons.sort();
            if !reasons.is_empty() {
                msg.push_str(&format!(" {}.", reasons.join(", ")));
            }
        }
        if !self.post_filter_msg.is_empty() {
            msg.push_str(&format!(" {}.", self.post_filter_msg));
        }
        msg
    }
}

/// upstream's `numFeasibleNodesToFind`.
pub fn num_feasible_nodes_to_find(percentage: Option<i32>, num_all: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    const MIN_PERCENTAGE: i64 = 5;
    if num_all < MIN_FEASIBLE {
        return num_all;
    }
    let mut pct = i64::from(percentage.unwrap_or(0));
    if pct == 0 {
        pct = (50 - num_all as i64 / 125).max(MIN_PERCENTAGE);
    }
    if pct >= 100 {
        return num_all;
    }
    ((num_all as i64 * pct / 100) as usize).max(MIN_FEASIBLE)
}

pub enum Outcome {
    Scheduled {
        node: String,
        evaluated: usize,
        feasible: usize,
    },
    Unschedulable(Diagnosis),
    /// Unschedulable with nothing to evaluate or preempt (no nodes at all).
    Rejected(String),
    Error(String),
}

/// Small, fast tie-breaking randomness (selectHost's reservoir sampling).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

impl Framework {
    pub fn run_pre_enqueue(&self, pod: &Pod) -> Status {
        for p in &self.pre_enqueue {
            let mut s = p.pre_enqueue(pod);
            if !s.is_success() {
                s.plugin = p.name();
                return s;
            }
        }
        Status::success()
    }

    pub fn run_filters(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for p in &self.filter {
            if state.skip_filter.contains(&p.name()) {
                continue;
            }
            let mut s = p.filter(state, pod, node);
            if !s.is_success() {
                s.plugin = p.name();
                return s;
            }
        }
        Status::success()
    }

    /// Filters with the pods nominated to the node at this pod's priority
    /// or above counted as if they were there (upstream's
    /// `findNodesThatPassFilters` with nominated pods): a preemptor's room
    /// is not taken by lower pods. Then again without them, as upstream,
    /// for what only holds without (e.g. anti-affinity to them).
    fn run_filters_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        view: &ClusterView,
    ) -> Status {
        let mut ahead = view
            .cache
            .nominated_on(&node.name)
            .iter()
            .filter(|p| p.uid != pod.uid && p.priority >= pod.priority)
            .peekable();
        if ahead.peek().is_none() {
            return self.run_filters(state, pod, node);
        }
        let mut with = node.clone();
        for p in ahead {
            with.add_pod(p.clone());
        }
        let s = self.run_filters(state, pod, &with);
        if !s.is_success() {
            return s;
        }
        self.run_filters(state, pod, node)
    }

    /// The scheduling cycle up to the choice of a node (upstream's
    /// `schedulePod`): PreFilter, Filter over enough nodes, PreScore,
    /// Score, selectHost. `next_start` rotates where filtering begins.
    pub fn schedule(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        view: &ClusterView,
        next_start: &mut usize,
        rng: &mut Rng,
    ) -> Outcome {
        let cache = view.cache;
        let num_all = cache.node_count();
        if num_all == 0 {
            // Upstream: UnschedulableAndUnresolvable, retried when a node appears.
            return Outcome::Rejected("no nodes available to schedule pods".into());
        }
        let mut diagnosis = Diagnosis {
            num_all_nodes: num_all,
            ..Default::default()
        };
        for p in &self.pre_filter {
            let s = p.pre_filter(state, pod, view);
            match s.code {
                Code::Success => {}
                Code::Skip => state.skip_filter.push(p.name()),
                Code::Error => {
                    return Outcome::Error(format!(
                        "running PreFilter plugin {:?}: {}",
                        p.name(),
                        s.message()
                    ));
                }
                _ => {
                    diagnosis.pre_filter_msg = s.message();
                    diagnosis.unschedulable_plugins.push(p.name());
                    return Outcome::Unschedulable(diagnosis);
                }
            }
        }
        let nodes = cache.nodes();
        // A nominated node (after preemption) is tried first, alone.
        if let Some(nominated) = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            && let Some(n) = cache.get(nominated)
            && n.node.is_some()
            && self
                .run_filters_with_nominated(state, pod, n, view)
                .is_success()
        {
            return Outcome::Scheduled {
                node: nominated.to_owned(),
                evaluated: 1,
                feasible: 1,
            };
        }
        let to_find = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, num_all);
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(to_find);
        let len = nodes.len();
        let start = *next_start % len.max(1);
        let mut processed = 0;
        for i in 0..len {
            if feasible.len() >= to_find {
                break;
            }
            let node = &nodes[(start + i) % len];
            processed += 1;
            if node.node.is_none() {
                continue;
            }
            let s = self.run_filters_with_nominated(state, pod, node, view);
            match s.code {
                Code::Success => feasible.push(node),
                Code::Error => {
                    return Outcome::Error(format!(
                        "running Filter plugin {:?}: {}",
                        s.plugin,
                        s.message()
                    ));
                }
                _ => {
                    if !diagnosis.unschedulable_plugins.contains(&s.plugin) {
                        diagnosis.unschedulable_plugins.push(s.plugin);
                    }
                    diagnosis.node_statuses.push(((start + i) % len, s));
                }
            }
        }
        *next_start = (start + processed) % len.max(1);
        let evaluated = processed;
        if feasible.is_empty() {
            return Outcome::Unschedulable(diagnosis);
        }
        if feasible.len() == 1 {
            return Outcome::Scheduled {
                node: feasible[0].name.clone(),
                evaluated,
                feasible: 1,
            };
        }
        for p in &self.pre_score {
            let s = p.pre_score(state, pod, &feasible, view);
            match s.code {
                Code::Success => {}
                Code::Skip => state.skip_score.push(p.name()),
                _ => {
                    return Outcome::Error(format!(
                        "running PreScore plugin {:?}: {}",
                        p.name(),
                        s.message()
                    ));
                }
            }
        }
        let mut totals = vec![0i64; feasible.len()];
        let mut scores = vec![0i64; feasible.len()];
        for (p, weight) in &self.score {
            if state.skip_score.contains(&p.name()) {
                continue;
            }
            for (i, n) in feasible.iter().enumerate() {
                scores[i] = p.score(state, pod, n, view);
            }
            p.normalize(state, pod, &mut scores);
            for (t, s) in totals.iter_mut().zip(&scores) {
                *t += s * weight;
            }
        }
        // selectHost: the highest total, ties broken uniformly at random.
        let mut best = 0;
        let mut ties = 1u64;
        for i in 1..totals.len() {
            if totals[i] > totals[best] {
                best = i;
                ties = 1;
            } else if totals[i] == totals[best] {
                ties += 1;
                if rng.below(ties) == 0 {
                    best = i;
                }
            }
        }
        Outcome::Scheduled {
            node: feasible[best].name.clone(),
            evaluated,
            feasible: feasible.len(),
        }
    }

    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for (i, p) in self.reserve.iter().enumerate() {
            let s = p.reserve(state, pod, node);
            if !s.is_success() {
                for q in self.reserve[..=i].iter().rev() {
                    q.unreserve(state, pod, node);
                }
                return s;
            }
        }
        Status::success()
    }

    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            p.unreserve(state, pod, node);
        }
    }

    pub fn run_permit(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.permit {
            let s = p.permit(state, pod, node);
            if !s.is_success() {
                return s;
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_percentage_of_nodes_to_score() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(None, 200), 100);
        assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
    }

    #[test]
    fn fit_error_message_is_upstreams() {
        let d = Diagnosis {
            num_all_nodes: 3,
            node_statuses: vec![
                (
                    0,
                    Status::unresolvable("node(s) didn't match Pod's node affinity/selector"),
                ),
                (
                    1,
                    Status::unresolvable("node(s) didn't match Pod's node affinity/selector"),
                ),
                (
                    2,
                    Status {
                        code: Code::Unschedulable,
                        reasons: vec!["Insufficient cpu".into(), "Insufficient memory".into()],
                        plugin: "",
                    },
                ),
            ],
            post_filter_msg:
                "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling"
                    .into(),
            ..Default::default()
        };
        assert_eq!(
            d.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }
}
