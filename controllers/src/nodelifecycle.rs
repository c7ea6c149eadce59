//! Node lifecycle controller (upstream `node-lifecycle-controller`, with
//! taint-based eviction and TaintNodesByCondition): a node whose kubelet
//! stops renewing its Lease in `kube-node-lease` (and posting status) for
//! `--node-monitor-grace-period` gets all its conditions `Unknown`; nodes
//! get the `node.kubernetes.io/*` NoSchedule taints of their conditions and
//! `spec.unschedulable`, and the `not-ready`/`unreachable` NoExecute taints
//! that the taint eviction controller acts on. Pods on a node that stops
//! answering are marked not ready, as upstream's `MarkPodsNotReady`.
//!
//! As upstream, NoExecute taints are added per zone at most
//! `--node-eviction-rate` nodes a second (`--secondary-node-eviction-rate`
//! in a zone more than `--unhealthy-zone-threshold` not ready, 0 there in
//! clusters up to `--large-cluster-size-threshold` nodes), and when every
//! node of every zone is not ready the fault is taken to be on the control
//! plane's side: no NoExecute taints at all, existing ones removed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::api_code;
use crate::events::Recorder;
use crate::informer::Informers;
use crate::metrics::Queue;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// Where the kubelets' Leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The conditions upstream marks Unknown besides Ready.
const CONDITION_TYPES: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Every (key, effect) this controller owns; other taints are left alone.
const MANAGED: &[(&str, &str)] = &[
    (NOT_READY, NO_SCHEDULE),
    (UNREACHABLE, NO_SCHEDULE),
    (UNSCHEDULABLE, NO_SCHEDULE),
    (MEMORY_PRESSURE, NO_SCHEDULE),
    (DISK_PRESSURE, NO_SCHEDULE),
    (PID_PRESSURE, NO_SCHEDULE),
    (NETWORK_UNAVAILABLE, NO_SCHEDULE),
    (NOT_READY, NO_EXECUTE),
    (UNREACHABLE, NO_EXECUTE),
];

/// The controller's timing flags.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `--node-monitor-period`: how often every node's health is checked.
    pub monitor_period: Duration,
    /// `--node-monitor-grace-period`.
    pub grace_period: Duration,
    /// `--node-startup-grace-period`: for nodes that never posted a Ready
    /// condition.
    pub startup_grace_period: Duration,
    /// `--node-eviction-rate`: nodes a second that get NoExecute taints in
    /// a healthy zone.
    pub eviction_rate: f32,
    /// `--secondary-node-eviction-rate`: the same in an unhealthy zone.
    pub secondary_eviction_rate: f32,
    /// `--large-cluster-size-threshold`: in zones up to this size, an
    /// unhealthy zone gets no NoExecute taints at all.
    pub large_cluster_size_threshold: usize,
    /// `--unhealthy-zone-threshold`: the share of not-ready nodes (more
    /// than 2) that makes a zone unhealthy.
    pub unhealthy_zone_threshold: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(50),
            startup_grace_period: Duration::from_secs(60),
            eviction_rate: 0.1,
            secondary_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
        }
    }
}

/// Upstream's zone states, from the Ready conditions of a zone's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// Upstream's `ComputeZoneState`.
pub fn zone_state(ready: usize, not_ready: usize, unhealthy_threshold: f32) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f32 / (ready + not_ready) as f32 >= unhealthy_threshold
    {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Upstream's `GetZoneKey`: region and zone labels.
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).cloned().unwrap_or_default();
    format!(
        "{}:\x00:{}",
        get("topology.kubernetes.io/region"),
        get("topology.kubernetes.io/zone")
    )
}

/// A token bucket with a burst of one (client-go's flowcontrol limiter
/// as the node controller uses it).
#[derive(Debug)]
struct Limiter {
    qps: f32,
    next: Option<Instant>,
}

impl Limiter {
    fn take(&mut self) -> bool {
        if self.qps <= 0.0 {
            return false;
        }
        let now = Instant::now();
        if self.next.is_some_and(|n| now < n) {
            return false;
        }
        self.next = Some(now + Duration::from_secs_f32(1.0 / self.qps));
        true
    }
}

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn condition_true(node: &Node, type_: &str) -> bool {
    condition(node, type_).is_some_and(|c| c.status == "True")
}

/// The controller-owned taints a node should carry, from its conditions
/// and `spec.unschedulable` (upstream's `doNoScheduleTaintingPass` and
/// `doNoExecuteTaintingPass`).
pub fn desired_taints(node: &Node) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match condition(node, "Ready").map(|c| c.status.as_str()) {
        Some("False") => {
            out.push((NOT_READY, NO_SCHEDULE));
            out.push((NOT_READY, NO_EXECUTE));
        }
        Some("Unknown") => {
            out.push((UNREACHABLE, NO_SCHEDULE));
            out.push((UNREACHABLE, NO_EXECUTE));
        }
        _ => {}
    }
    for (type_, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if condition_true(node, type_) {
            out.push((key, NO_SCHEDULE));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push((UNSCHEDULABLE, NO_SCHEDULE));
    }
    out
}

/// The node's taints with the controller-owned ones made to match
/// `desired` (existing ones keep their `timeAdded`, new ones get `now`);
/// `None` when nothing changes.
pub fn reconcile_taints(
    current: &[Taint],
    desired: &[(&str, &str)],
    now: Timestamp,
) -> Option<Vec<Taint>> {
    let managed = |t: &Taint| MANAGED.contains(&(t.key.as_str(), t.effect.as_str()));
    let wanted = |t: &Taint| desired.contains(&(t.key.as_str(), t.effect.as_str()));
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !managed(t) || wanted(t))
        .cloned()
        .collect();
    let mut changed = out.len() != current.len();
    for (key, effect) in desired {
        if !out.iter().any(|t| t.key == *key && t.effect == *effect) {
            out.push(Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                time_added: Some(Time(now)),
                value: None,
            });
            changed = true;
        }
    }
    changed.then_some(out)
}

/// The node's conditions once its kubelet is considered gone: every
/// condition Unknown (upstream's reasons and messages), missing ones
/// added; `None` when they already are.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for type_ in CONDITION_TYPES {
        match conditions.iter_mut().find(|c| c.type_ == *type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: type_.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

/// What the controller last saw of a node's kubelet (upstream's
/// `nodeHealthData`): the probe time moves when either the Ready
/// condition's heartbeat or the Lease's renewTime changes.
struct Health {
    probe: Instant,
    heartbeat: Option<Timestamp>,
    renewed: Option<Timestamp>,
}

struct Monitor {
    client: Client,
    settings: Settings,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    health: HashMap<String, Health>,
    recorder: Recorder,
    /// NoExecute tainting rate per zone.
    limiters: HashMap<String, Limiter>,
    /// Every zone fully disrupted: no NoExecute taints.
    control_plane_disruption: bool,
}

impl Monitor {
    fn lease_renewed(&self, node: &str) -> Option<Timestamp> {
        self.leases
            .get(&ObjectRef::new(node).within(LEASE_NAMESPACE))?
            .spec
            .as_ref()?
            .renew_time
            .as_ref()
            .map(|t| t.0)
    }

    /// Whether the node's kubelet missed its grace period.
    fn expired(&mut self, node: &Node) -> bool {
        let name = node.name_any();
        let heartbeat = condition(node, "Ready")
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0);
        let renewed = self.lease_renewed(&name);
        let h = self.health.entry(name).or_insert_with(|| Health {
            probe: Instant::now(),
            heartbeat,
            renewed,
        });
        if heartbeat != h.heartbeat {
            h.heartbeat = heartbeat;
            h.probe = Instant::now();
        }
        if renewed.is_some() && renewed != h.renewed {
            h.renewed = renewed;
            h.probe = Instant::now();
        }
        let grace = if condition(node, "Ready").is_none() {
            self.settings.startup_grace_period
        } else {
            self.settings.grace_period
        };
        h.probe.elapsed() > grace
    }

    /// Zone states from the nodes' Ready conditions: sets each zone's
    /// tainting rate and whether every zone is down.
    fn update_zones(&mut self, nodes: &[Arc<Node>]) {
        let mut zones: HashMap<String, (usize, usize)> = HashMap::new();
        for n in nodes {
            let z = zones.entry(zone_key(n)).or_default();
            if condition_true(n, "Ready") {
                z.0 += 1;
            } else {
                z.1 += 1;
            }
        }
        let s = self.settings;
        let states: HashMap<String, (ZoneState, usize)> = zones
            .into_iter()
            .map(|(k, (ready, not_ready))| {
                (
                    k,
                    (
                        zone_state(ready, not_ready, s.unhealthy_zone_threshold),
                        ready + not_ready,
                    ),
                )
            })
            .collect();
        let all_down = !states.is_empty()
            && states
                .values()
                .all(|(state, _)| *state == ZoneState::FullDisruption);
        if all_down != self.control_plane_disruption {
            if all_down {
                tracing::warn!(
                    "every node is not ready: taking it for a control plane disruption; no NoExecute taints"
                );
            } else {
                tracing::info!("nodes are ready again: NoExecute tainting resumes");
            }
            self.control_plane_disruption = all_down;
        }
        self.limiters.retain(|k, _| states.contains_key(k));
        for (zone, (state, size)) in states {
            let qps = match state {
                ZoneState::Normal | ZoneState::FullDisruption => s.eviction_rate,
                ZoneState::PartialDisruption if size > s.large_cluster_size_threshold => {
                    s.secondary_eviction_rate
                }
                ZoneState::PartialDisruption => 0.0,
            };
            let limiter = self
                .limiters
                .entry(zone)
                .or_insert(Limiter { qps, next: None });
            if limiter.qps != qps {
                *limiter = Limiter { qps, next: None };
            }
        }
    }

    /// The controller-owned taints `node` gets now: NoExecute ones only
    /// outside a control plane disruption, and new ones at the zone's rate.
    fn allowed_taints(&mut self, node: &Node) -> Vec<(&'static str, &'static str)> {
        let mut desired = desired_taints(node);
        if !desired.iter().any(|(_, e)| *e == NO_EXECUTE) {
            return desired;
        }
        let tainted = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or_default()
            .iter()
            .any(|t| t.effect == NO_EXECUTE && (t.key == NOT_READY || t.key == UNREACHABLE));
        let allowed = !self.control_plane_disruption
            // Swapping not-ready for unreachable needs no token, as upstream.
            && (tainted
                || self
                    .limiters
                    .entry(zone_key(node))
                    .or_insert(Limiter {
                        qps: self.settings.eviction_rate,
                        next: None,
                    })
                    .take());
        if !allowed {
            desired.retain(|(_, e)| *e != NO_EXECUTE);
        }
        desired
    }

    /// Marks the node's conditions Unknown once its kubelet missed the
    /// grace period; returns the node as it now is (`None` on a failed
    /// write: the next pass retries).
    async fn check_health(&mut self, node: Arc<Node>) -> Option<Arc<Node>> {
        let name = node.name_any();
        let api: Api<Node> = Api::all(self.client.clone());
        let mut node = node;
        if self.expired(&node)
            && let Some(conditions) = unknown_conditions(&node, Timestamp::now())
        {
            tracing::info!(node = %name, "node stopped posting status; marking its conditions Unknown");
            let patch = json!({
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "status": {"conditions": conditions},
            });
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(updated) => {
                    // As upstream, only a Ready node going Unknown is
                    // reported and has its pods marked not ready.
                    let was_ready = condition_true(&node, "Ready");
                    node = Arc::new(updated);
                    if was_ready {
                        self.recorder.record(
                            node.as_ref(),
                            "Normal",
                            "NodeNotReady",
                            format!("Node {name} status is now: NodeNotReady"),
                        );
                        self.mark_pods_not_ready(&name).await;
                    }
                }
                Err(e) => {
                    if api_code(&e) != Some(409) {
                        tracing::warn!(node = %name, error = %e, "marking node conditions Unknown");
                    }
                    return None;
                }
            }
        }
        Some(node)
    }

    /// Brings the node's controller-owned taints up to date.
    async fn retaint(&mut self, node: Arc<Node>) {
        let name = node.name_any();
        let api: Api<Node> = Api::all(self.client.clone());
        let desired = self.allowed_taints(&node);
        let current = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let Some(taints) = reconcile_taints(&current, &desired, Timestamp::now()) else {
            return;
        };
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": taints},
        });
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = %name, taints = ?taints.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect::<Vec<_>>(), "node taints updated")
            }
            // A newer version is on its way through the watch.
            Err(e) if matches!(api_code(&e), Some(404 | 409)) => {}
            Err(e) => tracing::warn!(node = %name, error = %e, "updating node taints"),
        }
    }

    /// Upstream's `MarkPodsNotReady`: the pods of a node that stopped
    /// answering are no longer ready (so endpoints drop them).
    async fn mark_pods_not_ready(&self, node: &str) {
        let now = Timestamp::now();
        for pod in self.pods.state() {
            if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
                continue;
            }
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if !ready {
                continue;
            }
            self.recorder.record(
                pod.as_ref(),
                "Warning",
                "NodeNotReady",
                "Node is not ready".into(),
            );
            let api: Api<Pod> =
                Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
            let patch = json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": Time(now)}
            ]}});
            if let Err(e) = api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await
                && api_code(&e) != Some(404)
            {
                tracing::warn!(pod = %pod.name_any(), error = %e, "marking pod not ready");
            }
        }
    }
}

/// Runs the node lifecycle controller until cancelled.
pub async fn run(client: Client, informers: Informers, settings: Settings, queue: Arc<Queue>) {
    let (nodes, node_changes) = informers.subscribe::<Node>();
    let leases = informers.store::<Lease>();
    let pods = informers.store::<Pod>();
    informers.synced().await;
    let mut m = Monitor {
        recorder: Recorder::new(client.clone(), "node-controller"),
        client,
        settings,
        nodes,
        leases,
        pods,
        health: HashMap::new(),
        limiters: HashMap::new(),
        control_plane_disruption: false,
    };
    let mut node_changes = node_changes.boxed();
    let mut tick = tokio::time::interval(settings.monitor_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // The periodic health pass over every node.
                let all = m.nodes.state();
                for node in &all {
                    queue.add(&node.name_any());
                }
                let names: std::collections::HashSet<String> =
                    all.iter().map(|n| n.name_any()).collect();
                m.health.retain(|n, _| names.contains(n));
                // Health first, then the zones' states from it, then taints
                // (upstream's monitorNodeHealth and handleDisruption).
                let mut checked = Vec::with_capacity(all.len());
                for node in all {
                    let key = node.name_any();
                    let started = queue.start(&key);
                    let node = m.check_health(node).await;
                    queue.done(started, node.is_some());
                    checked.extend(node);
                }
                m.update_zones(&checked);
                for node in checked {
                    m.retaint(node).await;
                }
            }
            changed = node_changes.next() => {
                let Some(changed) = changed else { return };
                // Condition and unschedulable changes retaint at once;
                // health waits for the periodic pass. Batch what is queued.
                let mut batch = vec![changed];
                while let Some(Some(more)) = node_changes.next().now_or_never() {
                    batch.push(more);
                }
                for node in batch {
                    let key = node.name_any();
                    queue.add(&key);
                    let Some(current) = m.nodes.get(&ObjectRef::from_obj(node.as_ref())) else {
                        queue.start(&key);
                        continue;
                    };
                    let started = queue.start(&key);
                    m.retaint(current).await;
                    queue.done(started, true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: Option<&str>, unschedulable: bool, taints: serde_json::Value) -> Node {
        let conditions = match ready {
            Some(s) => json!([{"type": "Ready", "status": s, "reason": "KubeletReady",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
                {"type": "MemoryPressure", "status": "False"}]),
            None => json!([]),
        };
        serde_json::from_value(json!({
            "metadata": {"name": "n", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"unschedulable": unschedulable, "taints": taints},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    fn keys(t: &[Taint]) -> Vec<String> {
        t.iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect()
    }

    #[test]
    fn taints_follow_ready_and_unschedulable() {
        assert!(desired_taints(&node(Some("True"), false, json!([]))).is_empty());
        assert_eq!(
            desired_taints(&node(Some("Unknown"), false, json!([]))),
            vec![(UNREACHABLE, NO_SCHEDULE), (UNREACHABLE, NO_EXECUTE)]
        );
        assert_eq!(
            desired_taints(&node(Some("False"), true, json!([]))),
            vec![
                (NOT_READY, NO_SCHEDULE),
                (NOT_READY, NO_EXECUTE),
                (UNSCHEDULABLE, NO_SCHEDULE)
            ]
        );
    }

    #[test]
    fn reconcile_keeps_foreign_taints_and_time_added() {
        let now = Timestamp::now();
        let n = node(
            Some("True"),
            false,
            json!([{"key": "mine", "effect": "NoSchedule"},
                   {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}]),
        );
        let current = n.spec.unwrap().taints.unwrap();
        // Back to Ready: the unreachable taint goes, the user's stays.
        let t = reconcile_taints(&current, &[], now).unwrap();
        assert_eq!(keys(&t), ["mine:NoSchedule"]);
        // Still unreachable: the existing taint keeps its timeAdded.
        let t = reconcile_taints(
            &current,
            &[(UNREACHABLE, NO_EXECUTE), (UNREACHABLE, NO_SCHEDULE)],
            now,
        )
        .unwrap();
        assert_eq!(
            keys(&t),
            [
                "mine:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/unreachable:NoSchedule"
            ]
        );
        assert_ne!(t[1].time_added.as_ref().unwrap().0, now);
        assert_eq!(t[2].time_added.as_ref().unwrap().0, now);
        assert!(
            reconcile_taints(
                &t,
                &[(UNREACHABLE, NO_EXECUTE), (UNREACHABLE, NO_SCHEDULE)],
                now
            )
            .is_none()
        );
    }

    #[test]
    fn zone_states_as_upstream() {
        assert_eq!(zone_state(0, 1, 0.55), ZoneState::FullDisruption);
        assert_eq!(zone_state(0, 0, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(1, 2, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(2, 3, 0.55), ZoneState::PartialDisruption);
        assert_eq!(zone_state(3, 3, 0.55), ZoneState::Normal);
    }

    #[test]
    fn limiter_burst_of_one() {
        let mut l = Limiter {
            qps: 0.1,
            next: None,
        };
        assert!(l.take());
        assert!(!l.take());
        let mut off = Limiter {
            qps: 0.0,
            next: None,
        };
        assert!(!off.take());
    }

    #[test]
    fn unknown_conditions_as_upstream() {
        let now = Timestamp::now();
        let c = unknown_conditions(&node(Some("True"), false, json!([])), now).unwrap();
        let ready = c.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        // The heartbeat stays the kubelet's.
        assert!(ready.last_heartbeat_time.is_some());
        let disk = c.iter().find(|c| c.type_ == "DiskPressure").unwrap();
        assert_eq!(disk.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(c.len(), 4);
        let mut n = node(Some("True"), false, json!([]));
        n.status.as_mut().unwrap().conditions = Some(c);
        assert!(unknown_conditions(&n, now).is_none());
    }
}
