//! Upstream's defaults for the kinds people write by hand.

use serde_json::{Value, json};

use crate::registry::Resource;

fn set_default(obj: &mut Value, pointer: &str, value: Value) {
    if obj.pointer(pointer).is_some() {
        return;
    }
    let mut parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let Some(last) = parts.pop() else { return };
    let mut cur = obj;
    for p in parts {
        if !cur.get(p).is_some_and(Value::is_object) {
            cur[p] = json!({});
        }
        cur = &mut cur[p];
    }
    cur[last] = value;
}

fn default_containers(containers: Option<&mut Value>) {
    let Some(Value::Array(list)) = containers else {
        return;
    };
    for c in list {
        set_default(c, "/terminationMessagePath", json!("/dev/termination-log"));
        set_default(c, "/terminationMessagePolicy", json!("File"));
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        let tag = image.rsplit('/').next().unwrap_or(image);
        let policy = if image.contains('@') {
            "IfNotPresent"
        } else if !tag.contains(':') || tag.ends_with(":latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        set_default(c, "/imagePullPolicy", json!(policy));
        if let Some(Value::Array(ports)) = c.get_mut("ports") {
            for p in ports {
                set_default(p, "/protocol", json!("TCP"));
            }
        }
    }
}

/// Defaults of a pod spec (also inside templates).
fn pod_spec(spec: &mut Value) {
    set_default(spec, "/restartPolicy", json!("Always"));
    set_default(spec, "/terminationGracePeriodSeconds", json!(30));
    set_default(spec, "/dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "/securityContext", json!({}));
    set_default(spec, "/schedulerName", json!("default-scheduler"));
    default_containers(spec.get_mut("containers"));
    default_containers(spec.get_mut("initContainers"));
}

pub fn apply(r: &Resource, obj: &mut Value) {
    match (r.group.as_str(), r.plural.as_str()) {
        ("", "pods") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec);
            }
        }
        ("apps", "deployments") => {
            set_default(obj, "/spec/replicas", json!(1));
            set_default(obj, "/spec/revisionHistoryLimit", json!(10));
            set_default(obj, "/spec/progressDeadlineSeconds", json!(600));
            if obj.pointer("/spec/strategy/type").is_none() {
                set_default(obj, "/spec/strategy/type", json!("RollingUpdate"));
            }
            if obj.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("RollingUpdate") {
                set_default(
                    obj,
                    "/spec/strategy/rollingUpdate/maxUnavailable",
                    json!("25%"),
                );
                set_default(obj, "/spec/strategy/rollingUpdate/maxSurge", json!("25%"));
            }
            template(obj);
        }
        ("apps", "replicasets") | ("", "replicationcontrollers") => {
            set_default(obj, "/spec/replicas", json!(1));
            template(obj);
        }
        ("apps", "statefulsets") => {
            set_default(obj, "/spec/replicas", json!(1));
            set_default(obj, "/spec/podManagementPolicy", json!("OrderedReady"));
            set_default(obj, "/spec/revisionHistoryLimit", json!(10));
            set_default(obj, "/spec/updateStrategy/type", json!("RollingUpdate"));
            template(obj);
        }
        ("apps", "daemonsets") => {
            set_default(obj, "/spec/revisionHistoryLimit", json!(10));
            set_default(obj, "/spec/updateStrategy/type", json!("RollingUpdate"));
            template(obj);
        }
        ("batch", "jobs") => {
            set_default(obj, "/spec/backoffLimit", json!(6));
            set_default(obj, "/spec/completionMode", json!("NonIndexed"));
            set_default(obj, "/spec/suspend", json!(false));
            template(obj);
        }
        ("", "secrets") => set_default(obj, "/type", json!("Opaque")),
        ("", "services") => {
            set_default(obj, "/spec/type", json!("ClusterIP"));
            set_default(obj, "/spec/sessionAffinity", json!("None"));
            if let Some(Value::Array(ports)) = obj.pointer_mut("/spec/ports") {
                for p in ports {
                    set_default(p, "/protocol", json!("TCP"));
                    if p.get("targetPort").is_none()
                        && let Some(port) = p.get("port").cloned()
                    {
                        p["targetPort"] = port;
                    }
                }
            }
        }
        _ => {}
    }
}

fn template(obj: &mut Value) {
    if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
        pod_spec(spec);
    }
}

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array);
    let Some(containers) = containers else {
        return "BestEffort";
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|m| !m.is_empty()) || lim.is_some_and(|m| !m.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|m| m.get(res));
            let r = req.and_then(|m| m.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
