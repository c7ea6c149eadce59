//! Core (and core-like) resources: services, endpoints, endpoint slices,
//! nodes, namespaces, config maps, secrets, service accounts, events,
//! persistent volumes and claims, resource quotas, component statuses.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::duration::since;
use crate::util::{
    age, arr_at, deleting, format_labels, get, int_at, join_host_port, list_with_more, map_len,
    name, opt_int, opt_str, quantity, scalar_string, str_at,
};

/// Service type, as the API server defaults it.
fn service_type(svc: &Value) -> &str {
    opt_str(svc, &["spec", "type"])
        .filter(|t| !t.is_empty())
        .unwrap_or("ClusterIP")
}

/// Load-balancer ingress points: sorted unique IPs (or hostnames). The
/// server renders wide, so no 16-character clipping.
fn load_balancer_ingress(status: Option<&Value>) -> String {
    let mut set: Vec<String> = status
        .map(|s| arr_at(s, &["ingress"]))
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    set.sort();
    set.dedup();
    set.join(",")
}

fn strings(values: &[Value]) -> Vec<String> {
    values.iter().map(scalar_string).collect()
}

fn service_external_ip(svc: &Value) -> String {
    let external: Vec<String> = strings(arr_at(svc, &["spec", "externalIPs"]));
    match service_type(svc) {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(get(svc, &["status", "loadBalancer"]));
            if !external.is_empty() {
                let mut all: Vec<String> = Vec::new();
                if !lb.is_empty() {
                    all.extend(lb.split(',').map(str::to_string));
                }
                all.extend(external);
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// `makePortString`: "80/TCP,443:30001/TCP".
fn service_ports(svc: &Value) -> String {
    arr_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let proto = opt_str(p, &["protocol"]).unwrap_or("TCP");
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn service(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // The v1 -> internal conversion fills clusterIPs from clusterIP.
    let cluster_ip = arr_at(svc, &["spec", "clusterIPs"])
        .first()
        .map(scalar_string)
        .or_else(|| {
            opt_str(svc, &["spec", "clusterIP"])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "<none>".to_string());
    let ports = service_ports(svc);
    vec![
        json!(name(svc)),
        json!(service_type(svc)),
        json!(cluster_ip),
        json!(service_external_ip(svc)),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports
        }),
        json!(age(svc, now)),
        json!(format_labels(get(svc, &["spec", "selector"]))),
    ]
}

/// `formatEndpoints`: up to three "ip:port" entries, then "+ N more...".
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr_at(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, &["ip"]), int_at(port, &["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

pub fn endpoints(ep: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(ep)),
        json!(format_endpoints(ep)),
        json!(age(ep, now)),
    ]
}

pub fn endpoint_slice(es: &Value, now: DateTime<Utc>) -> Vec<Value> {
    const MAX: usize = 3;
    let ports = arr_at(es, &["ports"]);
    let mut list = Vec::new();
    for p in ports.iter().take(MAX) {
        let rendered = match (opt_int(p, &["port"]), opt_str(p, &["name"])) {
            (Some(n), _) => n.to_string(),
            (None, Some(n)) => n.to_string(),
            (None, None) => "*".to_string(),
        };
        list.push(rendered);
    }
    let ports_cell = list_with_more(&list, ports.len() > MAX, ports.len(), MAX);
    let addresses: Vec<String> = arr_at(es, &["endpoints"])
        .iter()
        .flat_map(|e| strings(arr_at(e, &["addresses"])))
        .collect();
    let shown: Vec<String> = addresses.iter().take(MAX).cloned().collect();
    let endpoints_cell = list_with_more(&shown, addresses.len() > MAX, addresses.len(), MAX);
    vec![
        json!(name(es)),
        json!(str_at(es, &["addressType"])),
        json!(ports_cell),
        json!(endpoints_cell),
        json!(age(es, now)),
    ]
}

/// Roles from `node-role.kubernetes.io/<role>` keys and the
/// `kubernetes.io/role` value, sorted and unique.
fn node_roles(node: &Value) -> Vec<String> {
    let mut roles: Vec<String> = get(node, &["metadata", "labels"])
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        (!role.is_empty()).then(|| role.to_string())
                    } else if k == "kubernetes.io/role" {
                        let v = scalar_string(v);
                        (!v.is_empty()).then_some(v)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    roles.dedup();
    roles
}

fn node_address(node: &Value, type_: &str) -> String {
    arr_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == type_)
        .map_or_else(
            || "<none>".to_string(),
            |a| str_at(a, &["address"]).to_string(),
        )
}

pub fn node(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // Only the Ready condition is reported (the last one wins, as in a Go map).
    let mut status: Vec<String> = Vec::new();
    if let Some(ready) = arr_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready")
    {
        status.push(if str_at(ready, &["status"]) == "True" {
            "Ready".to_string()
        } else {
            "NotReady".to_string()
        });
    }
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if crate::util::bool_at(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled".to_string());
    }
    let roles = node_roles(node).join(",");
    let info = |f: &str| {
        let v = str_at(node, &["status", "nodeInfo", f]);
        if v.is_empty() { "<unknown>" } else { v }
    };
    vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles
        }),
        json!(age(node, now)),
        json!(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

pub fn namespace(ns: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(ns)),
        json!(str_at(ns, &["status", "phase"])),
        json!(age(ns, now)),
    ]
}

pub fn config_map(cm: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let count = map_len(cm, &["data"]) + map_len(cm, &["binaryData"]);
    vec![json!(name(cm)), json!(count), json!(age(cm, now))]
}

pub fn secret(s: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(s)),
        json!(str_at(s, &["type"])),
        json!(map_len(s, &["data"])),
        json!(age(s, now)),
    ]
}

pub fn service_account(sa: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(sa)),
        json!(arr_at(sa, &["secrets"]).len()),
        json!(age(sa, now)),
    ]
}

/// A core/v1 or events.k8s.io/v1 event, read through the field names of
/// whichever API it came from (upstream converts both to one type).
struct EventView<'a> {
    first: Option<&'a str>,
    last: Option<&'a str>,
    event_time: Option<&'a str>,
    count: i64,
    series: Option<&'a Value>,
    type_: &'a str,
    reason: &'a str,
    regarding: Option<&'a Value>,
    message: &'a str,
    source_component: &'a str,
    source_host: &'a str,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
}

impl<'a> EventView<'a> {
    fn read(ev: &'a Value, new_api: bool) -> Self {
        let ts = |path: &[&str]| opt_str(ev, path).filter(|s| !s.is_empty());
        if new_api {
            EventView {
                first: ts(&["deprecatedFirstTimestamp"]),
                last: ts(&["deprecatedLastTimestamp"]),
                event_time: ts(&["eventTime"]),
                count: int_at(ev, &["deprecatedCount"]),
                series: get(ev, &["series"]).filter(|s| s.is_object()),
                type_: str_at(ev, &["type"]),
                reason: str_at(ev, &["reason"]),
                regarding: get(ev, &["regarding"]),
                message: str_at(ev, &["note"]),
                source_component: str_at(ev, &["deprecatedSource", "component"]),
                source_host: str_at(ev, &["deprecatedSource", "host"]),
                reporting_controller: str_at(ev, &["reportingController"]),
                reporting_instance: str_at(ev, &["reportingInstance"]),
            }
        } else {
            EventView {
                first: ts(&["firstTimestamp"]),
                last: ts(&["lastTimestamp"]),
                event_time: ts(&["eventTime"]),
                count: int_at(ev, &["count"]),
                series: get(ev, &["series"]).filter(|s| s.is_object()),
                type_: str_at(ev, &["type"]),
                reason: str_at(ev, &["reason"]),
                regarding: get(ev, &["involvedObject"]),
                message: str_at(ev, &["message"]),
                source_component: str_at(ev, &["source", "component"]),
                source_host: str_at(ev, &["source", "host"]),
                reporting_controller: str_at(ev, &["reportingComponent"]),
                reporting_instance: str_at(ev, &["reportingInstance"]),
            }
        }
    }
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

pub fn event(ev: &Value, new_api: bool, now: DateTime<Utc>) -> Vec<Value> {
    let e = EventView::read(ev, new_api);
    let first = match e.first {
        Some(t) => since(Some(t), now),
        None => since(e.event_time, now),
    };
    let mut last = match e.last {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = e.count;
    if let Some(series) = e.series {
        last = since(opt_str(series, &["lastObservedTime"]), now);
        count = int_at(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let kind = e
        .regarding
        .map_or("", |r| str_at(r, &["kind"]))
        .to_lowercase();
    let obj_name = e.regarding.map_or("", |r| str_at(r, &["name"]));
    let target = if obj_name.is_empty() {
        kind
    } else {
        format!("{kind}/{obj_name}")
    };
    let component = first_non_empty(e.source_component, e.reporting_controller);
    let instance = first_non_empty(e.source_host, e.reporting_instance);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(e.type_),
        json!(e.reason),
        json!(target),
        json!(e.regarding.map_or("", |r| str_at(r, &["fieldPath"]))),
        json!(source),
        json!(e.message.trim()),
        json!(first),
        json!(count),
        json!(name(ev)),
    ]
}

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that fixed order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, s)| *s)
    .collect::<Vec<_>>()
    .join(",")
}

const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// Storage class of a PV or PVC: the beta annotation wins over the field.
fn storage_class(obj: &Value) -> String {
    match get(
        obj,
        &["metadata", "annotations", BETA_STORAGE_CLASS_ANNOTATION],
    ) {
        Some(v) => scalar_string(v),
        None => str_at(obj, &["spec", "storageClassName"]).to_string(),
    }
}

fn unset_or(obj: &Value, path: &[&str]) -> String {
    opt_str(obj, path).unwrap_or("<unset>").to_string()
}

pub fn persistent_volume(pv: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match get(pv, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        str_at(pv, &["status", "phase"])
    };
    vec![
        json!(name(pv)),
        json!(quantity(get(pv, &["spec", "capacity", "storage"]))),
        json!(access_modes(arr_at(pv, &["spec", "accessModes"]))),
        json!(str_at(pv, &["spec", "persistentVolumeReclaimPolicy"])),
        json!(phase),
        json!(claim),
        json!(storage_class(pv)),
        json!(unset_or(pv, &["spec", "volumeAttributesClassName"])),
        json!(str_at(pv, &["status", "reason"])),
        json!(age(pv, now)),
        json!(unset_or(pv, &["spec", "volumeMode"])),
    ]
}

pub fn persistent_volume_claim(pvc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        str_at(pvc, &["status", "phase"])
    };
    let volume = str_at(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(get(pvc, &["status", "capacity", "storage"])),
            access_modes(arr_at(pvc, &["status", "accessModes"])),
        )
    };
    vec![
        json!(name(pvc)),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(pvc)),
        json!(unset_or(pvc, &["spec", "volumeAttributesClassName"])),
        json!(age(pvc, now)),
        json!(unset_or(pvc, &["spec", "volumeMode"])),
    ]
}

/// REQUEST and LIMIT: "name: used/hard" over sorted `status.hard`, with
/// `limits.*` resources in the LIMIT column.
pub fn resource_quota(rq: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut resources: Vec<&String> = get(rq, &["status", "hard"])
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let mut request: Vec<String> = Vec::new();
    let mut limit: Vec<String> = Vec::new();
    for r in resources {
        let used = quantity(get(rq, &["status", "used", r]));
        let hard = quantity(get(rq, &["status", "hard", r]));
        let entry = format!("{r}: {used}/{hard}");
        let pieces: Vec<&str> = r.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limit.push(entry);
        } else {
            request.push(entry);
        }
    }
    vec![
        json!(name(rq)),
        json!(request.join(", ")),
        json!(limit.join(", ")),
        json!(age(rq, now)),
    ]
}

pub fn component_status(cs: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let healthy = arr_at(cs, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![json!(name(cs)), json!(status), json!(message), json!(error)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::parse_time;

    fn now() -> DateTime<Utc> {
        parse_time("2024-01-01T01:00:00Z").unwrap()
    }

    fn with_meta(mut v: Value) -> Value {
        v["metadata"]["name"] = json!("x");
        v["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
        v
    }

    #[test]
    fn services() {
        let svc = with_meta(
            json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"], "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30001, "protocol": "TCP"}]}}),
        );
        assert_eq!(
            service(&svc, now()),
            vec![
                json!("x"),
                json!("NodePort"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80/TCP,443:30001/TCP"),
                json!("60m"),
                json!("app=web")
            ]
        );
        let lb = with_meta(
            json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1",
            "ports": [{"port": 53, "protocol": "UDP"}]}}),
        );
        assert_eq!(service(&lb, now())[3], json!("<pending>"));
        let mut lb2 = lb.clone();
        lb2["status"] = json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "a.example"}, {"ip": "1.2.3.4"}]}});
        lb2["spec"]["externalIPs"] = json!(["9.9.9.9"]);
        assert_eq!(
            service(&lb2, now())[3],
            json!("1.2.3.4,5.6.7.8,a.example,9.9.9.9")
        );
        let headless = with_meta(json!({"spec": {"clusterIP": "None"}}));
        let c = service(&headless, now());
        assert_eq!(
            c[1..5],
            [
                json!("ClusterIP"),
                json!("None"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        assert_eq!(c[6], json!("<none>"));
        let ext =
            with_meta(json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}));
        assert_eq!(
            service(&ext, now())[2..4],
            [json!("<none>"), json!("db.example.com")]
        );
    }

    #[test]
    fn endpoints_formatting() {
        let ep = with_meta(
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"port": 80}, {"port": 443}]}]}),
        );
        assert_eq!(
            endpoints(&ep, now())[1],
            json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...")
        );
        assert_eq!(endpoints(&with_meta(json!({})), now())[1], json!("<none>"));
        let headless = with_meta(json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}));
        assert_eq!(endpoints(&headless, now())[1], json!("10.0.0.1"));
    }

    #[test]
    fn endpoint_slices() {
        let es = with_meta(
            json!({"addressType": "IPv4", "ports": [{"port": 80, "name": "http"}, {"name": "x"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}, {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]}),
        );
        assert_eq!(
            endpoint_slice(&es, now())[1..4],
            [
                json!("IPv4"),
                json!("80,x,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
            ]
        );
        let empty = with_meta(json!({"addressType": "IPv4"}));
        assert_eq!(
            endpoint_slice(&empty, now())[2..4],
            [json!("<unset>"), json!("<unset>")]
        );
    }

    #[test]
    fn nodes() {
        let mut n = with_meta(json!({
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.36.0", "osImage": "Debian", "kernelVersion": "6.1", "containerRuntimeVersion": "containerd://2.0"},
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}, {"type": "Hostname", "address": "n"}]}
        }));
        n["metadata"]["labels"] = json!({"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master", "node-role.kubernetes.io/": ""});
        assert_eq!(
            node(&n, now()),
            vec![
                json!("x"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("60m"),
                json!("v1.36.0"),
                json!("192.168.1.2"),
                json!("<none>"),
                json!("Debian"),
                json!("6.1"),
                json!("containerd://2.0")
            ]
        );
        let bare = with_meta(json!({}));
        let c = node(&bare, now());
        assert_eq!(c[1..3], [json!("Unknown"), json!("<none>")]);
        assert_eq!(
            c[7..],
            [json!("<unknown>"), json!("<unknown>"), json!("<unknown>")]
        );
        let not_ready =
            with_meta(json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}));
        assert_eq!(node(&not_ready, now())[1], json!("NotReady"));
    }

    #[test]
    fn simple_counts() {
        let ns = with_meta(json!({"status": {"phase": "Active"}}));
        assert_eq!(namespace(&ns, now())[1], json!("Active"));
        let cm = with_meta(json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}));
        assert_eq!(config_map(&cm, now())[1], json!(3));
        let s = with_meta(json!({"type": "Opaque", "data": {"k": "dg=="}}));
        assert_eq!(secret(&s, now())[1..3], [json!("Opaque"), json!(1)]);
        let sa = with_meta(json!({}));
        assert_eq!(service_account(&sa, now())[1], json!(0));
    }

    #[test]
    fn core_events() {
        let ev = with_meta(json!({
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
            "reason": "Pulled", "type": "Normal", "message": " Pulled image \n",
            "firstTimestamp": "2024-01-01T00:50:00Z", "lastTimestamp": "2024-01-01T00:58:00Z",
            "count": 3, "source": {"component": "kubelet", "host": "node1"}
        }));
        assert_eq!(
            event(&ev, false, now()),
            vec![
                json!("2m"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web-1"),
                json!("spec.containers{web}"),
                json!("kubelet, node1"),
                json!("Pulled image"),
                json!("10m"),
                json!(3),
                json!("x")
            ]
        );
        let new_style = with_meta(json!({
            "regarding": {"kind": "Node", "name": "n1"}, "reason": "Starting", "type": "Normal",
            "note": "Starting kubelet.", "eventTime": "2024-01-01T00:59:30.000000Z",
            "reportingController": "kubelet", "reportingInstance": "n1"
        }));
        assert_eq!(
            event(&new_style, true, now()),
            vec![
                json!("30s"),
                json!("Normal"),
                json!("Starting"),
                json!("node/n1"),
                json!(""),
                json!("kubelet, n1"),
                json!("Starting kubelet."),
                json!("30s"),
                json!(1),
                json!("x")
            ]
        );
        let series = with_meta(
            json!({"involvedObject": {"kind": "Pod"}, "eventTime": "2024-01-01T00:00:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2024-01-01T00:59:00.000000Z"}}),
        );
        let c = event(&series, false, now());
        assert_eq!(c[0], json!("60s"));
        assert_eq!(c[3], json!("pod"));
        assert_eq!(c[8], json!(7));
    }

    #[test]
    fn volumes() {
        let pv = with_meta(json!({
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "standard",
                     "claimRef": {"namespace": "default", "name": "data"}},
            "status": {"phase": "Bound"}
        }));
        assert_eq!(
            persistent_volume(&pv, now()),
            vec![
                json!("x"),
                json!("10Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!("standard"),
                json!("<unset>"),
                json!(""),
                json!("60m"),
                json!("<unset>")
            ]
        );
        let pvc = with_meta(json!({
            "spec": {"volumeName": "pv1", "storageClassName": "standard", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}
        }));
        assert_eq!(
            persistent_volume_claim(&pvc, now()),
            vec![
                json!("x"),
                json!("Bound"),
                json!("pv1"),
                json!("1Gi"),
                json!("RWO"),
                json!("standard"),
                json!("<unset>"),
                json!("60m"),
                json!("Filesystem")
            ]
        );
        let pending = with_meta(json!({"status": {"phase": "Pending"}}));
        assert_eq!(
            persistent_volume_claim(&pending, now())[2..6],
            [json!(""), json!(""), json!(""), json!("")]
        );
    }

    #[test]
    fn quotas() {
        let rq = with_meta(json!({"status": {
            "hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi"},
            "used": {"pods": "2", "limits.memory": "512Mi"}}}));
        assert_eq!(
            resource_quota(&rq, now())[1..3],
            [
                json!("pods: 2/10, requests.cpu: 0/1"),
                json!("limits.memory: 512Mi/2Gi")
            ]
        );
    }
}
