//! Pod status as the kubelet reports it (upstream's
//! `generateAPIPodStatus`): phase, the five pod conditions, init and
//! container statuses, IPs, start time and QoS class. Built as JSON for a
//! merge patch of `pods/status`; lists are written whole.

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::runtime::{ContainerRecord, ContainerState, StartedPod};

pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The pod's current conditions as JSON, to keep transition times of
/// conditions whose status does not change.
fn existing_conditions(pod: &Pod) -> Vec<Value> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn condition(
    existing: &[Value],
    kind: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<&str>,
    now: &str,
) -> Value {
    let status = if status { "True" } else { "False" };
    let previous = existing.iter().find(|c| c["type"] == kind);
    let transition = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let mut c = json!({
        "type": kind,
        "status": status,
        "lastProbeTime": null,
        "lastTransitionTime": transition,
    });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// Readiness gates whose condition is not True: upstream's Ready is False
/// with reason ReadinessGatesNotReady until they all are.
fn unready_gate_message(pod: &Pod, existing: &[Value]) -> Option<String> {
    let gates = pod.spec.as_ref()?.readiness_gates.as_ref()?;
    for gate in gates {
        let kind = &gate.condition_type;
        match existing.iter().find(|c| c["type"] == kind.as_str()) {
            None => {
                return Some(format!(
                    "corresponding condition of pod readiness gate \"{kind}\" does not exist."
                ));
            }
            Some(c) if c["status"] != "True" => {
                return Some(format!(
                    "the status of pod readiness gate \"{kind}\" is not \"True\", but {}",
                    c["status"].as_str().unwrap_or("")
                ));
            }
            Some(_) => {}
        }
    }
    None
}

fn state_json(state: &ContainerState, container_id: &str) -> Value {
    match state {
        ContainerState::Running { started_at } => {
            json!({"running": {"startedAt": time(*started_at)}})
        }
        ContainerState::Exited {
            exit_code,
            reason,
            message,
            started_at,
            finished_at,
        } => {
            let mut t = json!({
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": time(*started_at),
                "finishedAt": time(*finished_at),
                "containerID": container_id,
            });
            if !message.is_empty() {
                t["message"] = json!(message);
            }
            json!({ "terminated": t })
        }
        ContainerState::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            json!({ "waiting": w })
        }
    }
}

/// Whether the container counts as ready: running, and passing its
/// readiness probe when it has one.
fn is_ready(r: &ContainerRecord) -> bool {
    let running = matches!(r.state, ContainerState::Running { .. });
    running && r.ready.unwrap_or(true)
}

fn container_status(r: &ContainerRecord, ready: bool) -> Value {
    let started = matches!(r.state, ContainerState::Running { .. }) && r.started.unwrap_or(true);
    let last = match &r.last_state {
        Some(s) => state_json(s, &r.last_container_id),
        None => json!({}),
    };
    let mut status = json!({
        "name": r.name,
        "state": state_json(&r.state, &r.container_id),
        "lastState": last,
        "ready": ready,
        "restartCount": r.restart_count,
        "image": r.image,
        "imageID": r.image_id,
        "started": started,
    });
    if !r.container_id.is_empty() {
        status["containerID"] = json!(r.container_id);
    }
    status
}

fn ips(ip: &str) -> Value {
    json!([{ "ip": ip }])
}

fn exited_ok(r: &ContainerRecord) -> bool {
    matches!(r.state, ContainerState::Exited { exit_code: 0, .. })
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn is_sidecar(pod: &Pod, name: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == name))
        .is_some_and(|c| c.restart_policy.as_deref() == Some("Always"))
}

/// The init containers that have not completed (sidecars count once
/// started), in spec order.
fn incomplete_init(pod: &Pod, started: &StartedPod) -> Vec<String> {
    started
        .init_containers
        .iter()
        .filter(|r| {
            if is_sidecar(pod, &r.name) {
                !matches!(r.state, ContainerState::Running { .. })
            } else {
                !exited_ok(r)
            }
        })
        .map(|r| r.name.clone())
        .collect()
}

/// Upstream's `getPhase`.
pub fn phase(pod: &Pod, started: &StartedPod) -> &'static str {
    let policy = restart_policy(pod);
    let init_failed = started.init_containers.iter().any(|r| {
        !is_sidecar(pod, &r.name)
            && matches!(r.state, ContainerState::Exited { exit_code, .. } if exit_code != 0)
    });
    if init_failed && policy == "Never" {
        return "Failed";
    }
    if !incomplete_init(pod, started).is_empty() {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for r in &started.containers {
        match &r.state {
            ContainerState::Running { .. } => running += 1,
            ContainerState::Exited { exit_code, .. } => {
                stopped += 1;
                if *exit_code == 0 {
                    succeeded += 1;
                }
            }
            // A container waiting to restart after a crash counts as
            // stopped, one never started as waiting.
            ContainerState::Waiting { .. } => match &r.last_state {
                Some(ContainerState::Exited { exit_code, .. }) => {
                    stopped += 1;
                    if *exit_code == 0 {
                        succeeded += 1;
                    }
                }
                _ => waiting += 1,
            },
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped == 0 {
        return "Pending";
    }
    match policy {
        "Always" => "Running",
        _ if stopped == succeeded => "Succeeded",
        "Never" => "Failed",
        _ => "Running",
    }
}

/// The status of a pod whose containers the runtime has started.
pub fn running(
    pod: &Pod,
    started: &StartedPod,
    host_ip: &str,
    pod_ip: &str,
    now: DateTime<Utc>,
) -> Value {
    let now_s = time(now);
    let existing = existing_conditions(pod);
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| json!(now_s));
    let phase = phase(pod, started);
    let terminal = matches!(phase, "Succeeded" | "Failed");
    // A completed init container counts as ready, as upstream reports it;
    // a sidecar while it runs.
    let init: Vec<Value> = started
        .init_containers
        .iter()
        .map(|r| {
            let ready = exited_ok(r) || (is_sidecar(pod, &r.name) && is_ready(r));
            container_status(r, ready)
        })
        .collect();
    let containers: Vec<Value> = started
        .containers
        .iter()
        .map(|r| container_status(r, is_ready(r)))
        .collect();
    let unready: Vec<String> = started
        .containers
        .iter()
        .filter(|r| !is_ready(r))
        .map(|r| r.name.clone())
        .collect();
    let incomplete = incomplete_init(pod, started);
    let all_ready = unready.is_empty();
    let gates = unready_gate_message(pod, &existing);
    let unready_message = format!("containers with unready status: [{}]", unready.join(" "));
    let (ready, ready_reason, ready_message) = match (&gates, all_ready) {
        _ if terminal => (false, Some("PodCompleted"), None),
        (_, false) => (
            false,
            Some("ContainersNotReady"),
            Some(unready_message.as_str()),
        ),
        (Some(m), true) => (false, Some("ReadinessGatesNotReady"), Some(m.as_str())),
        (None, true) => (true, None, None),
    };
    let (cr_reason, cr_message) = match (terminal, all_ready) {
        (true, _) => (Some("PodCompleted"), None),
        (false, false) => (Some("ContainersNotReady"), Some(unready_message.as_str())),
        (false, true) => (None, None),
    };
    let init_message = format!(
        "containers with incomplete status: [{}]",
        incomplete.join(" ")
    );
    let (initialized, init_reason, init_msg) = if incomplete.is_empty() {
        (true, None, None)
    } else {
        (
            false,
            Some("ContainersNotInitialized"),
            Some(init_message.as_str()),
        )
    };
    let mut conditions = vec![
        condition(
            &existing,
            "PodReadyToStartContainers",
            !terminal,
            None,
            None,
            &now_s,
        ),
        condition(
            &existing,
            "Initialized",
            initialized,
            init_reason,
            init_msg,
            &now_s,
        ),
        condition(
            &existing,
            "Ready",
            ready,
            ready_reason,
            ready_message,
            &now_s,
        ),
        condition(
            &existing,
            "ContainersReady",
            all_ready && !terminal,
            cr_reason,
            cr_message,
            &now_s,
        ),
        condition(&existing, "PodScheduled", true, None, None, &now_s),
    ];
    // Conditions other components own (readiness gates, DisruptionTarget)
    // stay as they are.
    let ours = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ];
    conditions.extend(
        existing
            .iter()
            .filter(|c| !ours.contains(&c["type"].as_str().unwrap_or("")))
            .cloned(),
    );
    let pod_ip = started.pod_ip.as_deref().unwrap_or(pod_ip);
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": ips(host_ip),
        "startTime": start_time,
        "containerStatuses": containers,
        "qosClass": qos_class(pod),
    });
    if !pod_ip.is_empty() {
        status["podIP"] = json!(pod_ip);
        status["podIPs"] = ips(pod_ip);
    }
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    if !started.ephemeral_containers.is_empty() {
        let ephemeral: Vec<Value> = started
            .ephemeral_containers
            .iter()
            .map(|r| container_status(r, false))
            .collect();
        status["ephemeralContainerStatuses"] = json!(ephemeral);
    }
    status
}

/// Why a pod's containers were stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// The pod was deleted: containers exit on SIGTERM with code 0.
    Deleted,
    /// `activeDeadlineSeconds` passed: containers are killed.
    DeadlineExceeded,
}

/// The terminal status of a pod whose containers were stopped: every
/// running container becomes terminated, and the phase is Succeeded when
/// they all exited 0, else Failed.
pub fn stopped(pod: &Pod, why: Stop, last: Option<&StartedPod>, now: DateTime<Utc>) -> Value {
    let now_s = time(now);
    // What the runtime saw the containers exit with, by name.
    let exits: std::collections::HashMap<&str, &ContainerRecord> = last
        .into_iter()
        .flat_map(StartedPod::all)
        .filter(|r| matches!(r.state, ContainerState::Exited { .. }))
        .map(|r| (r.name.as_str(), r))
        .collect();
    let existing = existing_conditions(pod);
    let (exit_code, reason) = match why {
        Stop::Deleted => (0, "Completed"),
        Stop::DeadlineExceeded => (137, "Error"),
    };
    let status = pod.status.as_ref();
    let stop = |list: Option<&Vec<k8s_openapi::api::core::v1::ContainerStatus>>| -> Vec<Value> {
        list.into_iter()
            .flatten()
            .filter_map(|c| serde_json::to_value(c).ok())
            .map(|mut c| {
                let name = c["name"].as_str().unwrap_or("").to_owned();
                if let Some(r) = exits.get(name.as_str()) {
                    c["state"] = state_json(&r.state, &r.container_id);
                    c["ready"] = json!(false);
                    c["started"] = json!(false);
                } else if let Some(running) = c.pointer("/state/running").cloned() {
                    c["state"] = json!({"terminated": {
                        "exitCode": exit_code,
                        "reason": reason,
                        "startedAt": running["startedAt"],
                        "finishedAt": now_s,
                        "containerID": c["containerID"],
                    }});
                    c["ready"] = json!(false);
                    c["started"] = json!(false);
                }
                c
            })
            .collect()
    };
    let containers = stop(status.and_then(|s| s.container_statuses.as_ref()));
    let init = stop(status.and_then(|s| s.init_container_statuses.as_ref()));
    let failed = containers.iter().chain(init.iter()).any(|c| {
        c.pointer("/state/terminated/exitCode")
            .and_then(Value::as_i64)
            != Some(0)
    }) || why == Stop::DeadlineExceeded;
    let initialized = existing
        .iter()
        .any(|c| c["type"] == "Initialized" && c["status"] == "True");
    let mut out = json!({
        "phase": if failed { "Failed" } else { "Succeeded" },
        "conditions": [
            condition(&existing, "PodReadyToStartContainers", false, None, None, &now_s),
            condition(&existing, "Initialized", initialized, None, None, &now_s),
            condition(&existing, "Ready", false, Some("PodCompleted"), None, &now_s),
            condition(&existing, "ContainersReady", false, Some("PodCompleted"), None, &now_s),
            condition(&existing, "PodScheduled", true, None, None, &now_s),
        ],
        "containerStatuses": containers,
    });
    if !init.is_empty() {
        out["initContainerStatuses"] = json!(init);
    }
    // Ephemeral containers end too, but don't decide the phase.
    let ephemeral = stop(status.and_then(|s| s.ephemeral_container_statuses.as_ref()));
    if !ephemeral.is_empty() {
        out["ephemeralContainerStatuses"] = json!(ephemeral);
    }
    if why == Stop::DeadlineExceeded {
        out["reason"] = json!("DeadlineExceeded");
        out["message"] = json!("Pod was active on the node longer than the specified deadline");
    }
    out
}

/// Upstream's QoS class: Guaranteed when every container has equal cpu and
/// memory requests and limits, BestEffort when none has any, else
/// Burstable.
pub fn qos_class(pod: &Pod) -> &'static str {
    if let Some(q) = pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        match q {
            "Guaranteed" => return "Guaranteed",
            "BestEffort" => return "BestEffort",
            "Burstable" => return "Burstable",
            _ => {}
        }
    }
    let Some(spec) = &pod.spec else {
        return "BestEffort";
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let res = c.resources.as_ref();
        let req = res.and_then(|r| r.requests.as_ref());
        let lim = res.and_then(|r| r.limits.as_ref());
        if req.is_some_and(|m| !m.is_empty()) || lim.is_some_and(|m| !m.is_empty()) {
            any = true;
        }
        for name in ["cpu", "memory"] {
            let l = lim.and_then(|m| m.get(name));
            let r = req.and_then(|m| m.get(name)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Runtime, Simulated};

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[tokio::test]
    async fn running_pod_has_upstream_conditions_and_statuses() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {
                "nodeName": "n",
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "c", "image": "busybox"}]
            }
        }));
        let started = Simulated.start_pod(&p).await.expect("start");
        let s = running(&p, &started, "10.0.0.1", "10.1.0.2", Utc::now());
        assert_eq!(s["phase"], "Running");
        let kinds: Vec<&str> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert!(
            s["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] == "True")
        );
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        assert_eq!(s["containerStatuses"][0]["started"], true);
        assert!(
            s["containerStatuses"][0]["containerID"]
                .as_str()
                .unwrap()
                .starts_with("simulated://")
        );
        assert_eq!(s["qosClass"], "BestEffort");
        assert_eq!(s["podIPs"][0]["ip"], "10.1.0.2");

        // Deletion: containers terminate and the pod ends Succeeded.
        let mut p2 = p.clone();
        p2.status = serde_json::from_value(s).ok();
        let t = stopped(&p2, Stop::Deleted, None, Utc::now());
        assert_eq!(t["phase"], "Succeeded");
        assert_eq!(
            t["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            0
        );
        let d = stopped(&p2, Stop::DeadlineExceeded, None, Utc::now());
        assert_eq!(d["phase"], "Failed");
        assert_eq!(d["reason"], "DeadlineExceeded");
    }

    #[tokio::test]
    async fn readiness_gates_hold_ready() {
        let p = pod(json!({
            "metadata": {"name": "p", "uid": "u2"},
            "spec": {
                "readinessGates": [{"conditionType": "example.com/ok"}],
                "containers": [{"name": "c", "image": "busybox",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]
            }
        }));
        let started = Simulated.start_pod(&p).await.expect("start");
        let s = running(&p, &started, "10.0.0.1", "10.1.0.3", Utc::now());
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "ReadinessGatesNotReady");
        assert_eq!(s["qosClass"], "Guaranteed");
    }
}
