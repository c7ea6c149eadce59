//! The pod row: upstream's `printPod`, the most intricate printer
//! (READY counts, the STATUS reason precedence, RESTARTS with "(5m ago)").

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::duration::{human_duration, parse_time};
use crate::util::{arr_at, bool_at, deleting, get, int_at, name, opt_bool, str_at};

/// `node.NodeUnreachablePodReason`.
const NODE_UNREACHABLE_REASON: &str = "NodeLost";

/// A sidecar: an init container with `restartPolicy: Always`.
fn is_restartable_init(spec_init: &[Value], name: &str) -> bool {
    spec_init
        .iter()
        .any(|c| str_at(c, &["name"]) == name && str_at(c, &["restartPolicy"]) == "Always")
}

fn condition_true(pod: &Value, type_: &str) -> bool {
    arr_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == type_ && str_at(c, &["status"]) == "True")
}

/// Finish time of the container's last termination, if any.
fn last_termination(cs: &Value) -> Option<Option<DateTime<Utc>>> {
    get(cs, &["lastState", "terminated"])
        .filter(|t| t.is_object())
        .map(|t| {
            t.get("finishedAt")
                .and_then(Value::as_str)
                .and_then(parse_time)
        })
}

/// Keeps the later of two optional instants (None is Go's zero time).
fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Describes a terminated state without a reason: "Signal:N" or "ExitCode:N".
fn signal_or_exit(t: &Value) -> String {
    let signal = int_at(t, &["signal"]);
    if signal != 0 {
        format!("Signal:{signal}")
    } else {
        format!("ExitCode:{}", int_at(t, &["exitCode"]))
    }
}

/// Cells of a pod row (wide set).
pub fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec_init = arr_at(pod, &["spec", "initContainers"]);
    let mut total = arr_at(pod, &["spec", "containers"]).len();
    total += spec_init
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .count();
    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_sidecar_restart: Option<DateTime<Utc>> = None;

    let phase = str_at(pod, &["status", "phase"]);
    let status_reason = str_at(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase.to_string()
    } else {
        status_reason.to_string()
    };
    for c in arr_at(pod, &["status", "conditions"]) {
        if str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    let mut initializing = false;
    for (i, cs) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_at(cs, &["restartCount"]);
        restarts += count;
        if let Some(finished) = last_termination(cs) {
            last_restart = later(last_restart, finished);
        }
        let sidecar = is_restartable_init(spec_init, str_at(cs, &["name"]));
        if sidecar {
            sidecar_restarts += count;
            if let Some(finished) = last_termination(cs) {
                last_sidecar_restart = later(last_sidecar_restart, finished);
            }
        }
        let terminated = get(cs, &["state", "terminated"]).filter(|t| t.is_object());
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && opt_bool(cs, &["started"]) == Some(true) {
            if bool_at(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = str_at(t, &["reason"]);
            reason = if r.is_empty() {
                format!("Init:{}", signal_or_exit(t))
            } else {
                format!("Init:{r}")
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", spec_init.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(cs, &["restartCount"]);
            if let Some(finished) = last_termination(cs) {
                last_restart = later(last_restart, finished);
            }
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            let terminated = get(cs, &["state", "terminated"]).filter(|t| t.is_object());
            let running = get(cs, &["state", "running"]).is_some_and(Value::is_object);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let r = str_at(t, &["reason"]);
                reason = if r.is_empty() {
                    signal_or_exit(t)
                } else {
                    r.to_string()
                };
            } else if bool_at(cs, &["ready"]) && running {
                has_running = true;
                ready += 1;
            }
        }
        // A completed container next to a still-running one: the pod runs.
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if deleting(pod) && status_reason == NODE_UNREACHABLE_REASON {
        reason = "Unknown".to_string();
    } else if deleting(pod) && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => {
            format!("{restarts} ({} ago)", human_duration(now - t))
        }
        _ => restarts.to_string(),
    };

    // The v1 -> internal conversion fills podIPs from podIP when absent.
    let pod_ip = arr_at(pod, &["status", "podIPs"])
        .first()
        .map(|p| str_at(p, &["ip"]))
        .unwrap_or_else(|| str_at(pod, &["status", "podIP"]));
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr_at(pod, &["status", "conditions"]);
        let true_count = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == t)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    vec![
        json!(name(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(crate::util::age(pod, now)),
        json!(or_none(pod_ip)),
        json!(or_none(str_at(pod, &["spec", "nodeName"]))),
        json!(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates),
    ]
}

/// Row conditions upstream attaches to finished pods.
pub fn pod_conditions(pod: &Value) -> Option<Value> {
    match str_at(pod, &["status", "phase"]) {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."
        }])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_time("2024-01-01T01:00:00Z").unwrap()
    }

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": spec,
            "status": status,
        })
    }

    fn cells(p: &Value) -> Vec<String> {
        pod_cells(p, now())
            .into_iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn two_containers() -> Value {
        json!({"containers": [{"name": "a"}, {"name": "b"}]})
    }

    #[test]
    fn running_pod_wide_cells() {
        let p = pod(
            json!({"containers": [{"name": "a"}], "nodeName": "n1"}),
            json!({
                "phase": "Running",
                "podIP": "10.0.0.5",
                "podIPs": [{"ip": "10.0.0.5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0,
                                       "state": {"running": {"startedAt": "2024-01-01T00:00:01Z"}}}]
            }),
        );
        assert_eq!(
            cells(&p),
            [
                "p", "1/1", "Running", "0", "60m", "10.0.0.5", "n1", "<none>", "<none>"
            ]
        );
    }

    #[test]
    fn pending_pod_defaults() {
        let p = pod(two_containers(), json!({"phase": "Pending"}));
        let c = cells(&p);
        assert_eq!(&c[1..4], ["0/2", "Pending", "0"]);
        assert_eq!(&c[5..], ["<none>", "<none>", "<none>", "<none>"]);
    }

    #[test]
    fn crash_loop_with_restart_age() {
        let p = pod(
            two_containers(),
            json!({
                "phase": "Running",
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                    {"name": "b", "ready": false, "restartCount": 5,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-01-01T00:55:00Z"}}}
                ]
            }),
        );
        let c = cells(&p);
        assert_eq!(&c[1..4], ["1/2", "CrashLoopBackOff", "5 (5m ago)"]);
    }

    #[test]
    fn terminated_reasons() {
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 0}}}]}),
        );
        assert_eq!(cells(&p)[2], "ExitCode:137");
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}),
        );
        assert_eq!(cells(&p)[2], "Signal:9");
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        assert_eq!(cells(&p)[2], "Completed");
        assert!(pod_conditions(&p).is_some());
    }

    #[test]
    fn completed_but_one_running() {
        let status = |ready_cond: &str| {
            json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": ready_cond}],
            "containerStatuses": [
                {"name": "a", "ready": true, "state": {"running": {}}},
                {"name": "b", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ]})
        };
        assert_eq!(cells(&pod(two_containers(), status("True")))[2], "Running");
        assert_eq!(
            cells(&pod(two_containers(), status("False")))[2],
            "NotReady"
        );
    }

    #[test]
    fn init_container_states() {
        let spec = json!({"initContainers": [{"name": "i1"}, {"name": "i2"}],
                          "containers": [{"name": "a"}]});
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                {"name": "i2", "state": {"running": {}}}]}),
        );
        assert_eq!(&cells(&p)[1..3], ["0/1", "Init:1/2"]);
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"finishedAt": "2024-01-01T00:59:00Z"}}}]}),
        );
        assert_eq!(&cells(&p)[2..4], ["Init:CrashLoopBackOff", "3 (60s ago)"]);
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 2}}}]}),
        );
        assert_eq!(cells(&p)[2], "Init:ExitCode:2");
        let p = pod(
            spec,
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
        );
        assert_eq!(cells(&p)[2], "Init:Error");
    }

    #[test]
    fn sidecar_counts_and_readiness() {
        let p = pod(
            json!({"initContainers": [{"name": "s", "restartPolicy": "Always"}],
                   "containers": [{"name": "a"}]}),
            json!({"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "s", "ready": true, "started": true,
                    "restartCount": 2, "state": {"running": {}},
                    "lastState": {"terminated": {"finishedAt": "2024-01-01T00:30:00Z"}}}],
                "containerStatuses": [{"name": "a", "ready": true, "restartCount": 1,
                    "state": {"running": {}},
                    "lastState": {"terminated": {"finishedAt": "2024-01-01T00:50:00Z"}}}]}),
        );
        assert_eq!(&cells(&p)[1..4], ["2/2", "Running", "3 (10m ago)"]);
    }

    #[test]
    fn terminating_and_node_lost() {
        let mut p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "state": {"running": {}}}]}),
        );
        p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:59:00Z");
        assert_eq!(cells(&p)[2], "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells(&p)[2], "Unknown");
        let mut done = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Succeeded"}),
        );
        done["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:59:00Z");
        assert_eq!(cells(&done)[2], "Succeeded");
    }

    #[test]
    fn evicted_and_gated() {
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Failed", "reason": "Evicted"}),
        );
        assert_eq!(cells(&p)[2], "Evicted");
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(cells(&p)[2], "SchedulingGated");
    }

    #[test]
    fn readiness_gates_and_nominated() {
        let p = pod(
            json!({"containers": [{"name": "a"}],
                   "readinessGates": [{"conditionType": "x"}, {"conditionType": "y"}]}),
            json!({"phase": "Pending", "nominatedNodeName": "n2",
                   "conditions": [{"type": "x", "status": "True"}, {"type": "y", "status": "False"}]}),
        );
        let c = cells(&p);
        assert_eq!(&c[7..], ["n2", "1/2"]);
    }
}
