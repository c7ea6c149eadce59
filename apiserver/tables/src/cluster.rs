//! Networking, RBAC, storage, scheduling, coordination, certificates,
//! admission and flow-control resources.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::duration::human_duration_nanos;
use crate::util::{
    age, arr_at, bool_at, format_label_selector, get, int_at, name, opt_bool, opt_int, opt_str,
    scalar_string, str_at,
};

/// `formatHosts`: up to three rule hosts, "*" when none.
fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", rules.len() - MAX);
    }
    ret
}

/// Sorted unique load-balancer IPs/hostnames (unclipped: the server is wide).
fn ingress_address(obj: &Value) -> String {
    let mut set: Vec<String> = arr_at(obj, &["status", "loadBalancer", "ingress"])
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

pub fn ingress(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = if arr_at(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        json!(name(obj)),
        json!(opt_str(obj, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        json!(ingress_hosts(arr_at(obj, &["spec", "rules"]))),
        json!(ingress_address(obj)),
        json!(ports),
        json!(age(obj, now)),
    ]
}

pub fn ingress_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match get(obj, &["spec", "parameters"]).filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut s = str_at(p, &["kind"]).to_string();
            if let Some(g) = opt_str(p, &["apiGroup"]) {
                s = format!("{s}.{g}");
            }
            format!("{s}/{}", str_at(p, &["name"]))
        }
    };
    vec![
        json!(name(obj)),
        json!(str_at(obj, &["spec", "controller"])),
        json!(parameters),
        json!(age(obj, now)),
    ]
}

pub fn network_policy(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // podSelector is a struct upstream, so absent reads as empty.
    let selector = get(obj, &["spec", "podSelector"])
        .cloned()
        .unwrap_or(json!({}));
    vec![
        json!(name(obj)),
        json!(format_label_selector(Some(&selector))),
        json!(age(obj, now)),
    ]
}

/// `rbac.SubjectsStrings`: users, groups and "namespace/name" service accounts.
pub fn role_binding(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(obj, &["roleRef", "kind"]),
        str_at(obj, &["roleRef", "name"])
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in arr_at(obj, &["subjects"]) {
        let n = str_at(s, &["name"]);
        match str_at(s, &["kind"]) {
            "ServiceAccount" => sas.push(format!("{}/{n}", str_at(s, &["namespace"]))),
            "User" => users.push(n.to_string()),
            "Group" => groups.push(n.to_string()),
            _ => {}
        }
    }
    vec![
        json!(name(obj)),
        json!(role),
        json!(age(obj, now)),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

pub fn lease(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(str_at(obj, &["spec", "holderIdentity"])),
        json!(age(obj, now)),
    ]
}

pub fn priority_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(int_at(obj, &["value"])),
        json!(bool_at(obj, &["globalDefault"])),
        json!(age(obj, now)),
        json!(str_at(obj, &["preemptionPolicy"])),
    ]
}

/// Either default-class annotation set to "true" marks the default class.
fn is_default_class(obj: &Value) -> bool {
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|a| opt_str(obj, &["metadata", "annotations", a]) == Some("true"))
}

pub fn storage_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut n = name(obj).to_string();
    if is_default_class(obj) {
        n.push_str(" (default)");
    }
    vec![
        json!(n),
        json!(str_at(obj, &["provisioner"])),
        json!(opt_str(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
        json!(opt_str(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
        json!(bool_at(obj, &["allowVolumeExpansion"])),
        json!(age(obj, now)),
    ]
}

/// `extractCSRStatus`: Denied > Approved > Pending, then ",Failed", ",Issued".
fn csr_status(obj: &Value) -> String {
    let conditions = arr_at(obj, &["status", "conditions"]);
    let has = |t: &str| conditions.iter().any(|c| str_at(c, &["type"]) == t);
    let mut status = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(obj, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

pub fn certificate_signing_request(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let signer = opt_str(obj, &["spec", "signerName"])
        .filter(|s| !s.is_empty())
        .unwrap_or("<none>");
    let requested = opt_int(obj, &["spec", "expirationSeconds"]).map_or_else(
        || "<none>".to_string(),
        |s| human_duration_nanos(s.saturating_mul(1_000_000_000)),
    );
    vec![
        json!(name(obj)),
        json!(age(obj, now)),
        json!(signer),
        json!(str_at(obj, &["spec", "username"])),
        json!(requested),
        json!(csr_status(obj)),
    ]
}

pub fn runtime_class(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(str_at(obj, &["handler"])),
        json!(age(obj, now)),
    ]
}

pub fn volume_attachment(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(str_at(obj, &["spec", "attacher"])),
        json!(str_at(obj, &["spec", "source", "persistentVolumeName"])),
        json!(str_at(obj, &["spec", "nodeName"])),
        json!(bool_at(obj, &["status", "attached"])),
        json!(age(obj, now)),
    ]
}

pub fn csi_node(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(arr_at(obj, &["spec", "drivers"]).len()),
        json!(age(obj, now)),
    ]
}

pub fn csi_driver(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let modes: Vec<String> = arr_at(obj, &["spec", "volumeLifecycleModes"])
        .iter()
        .map(scalar_string)
        .collect();
    let token_requests = match get(obj, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        None => "<unset>".to_string(),
        Some(list) => list
            .iter()
            .map(|t| str_at(t, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
    };
    vec![
        json!(name(obj)),
        json!(opt_bool(obj, &["spec", "attachRequired"]).unwrap_or(true)),
        json!(bool_at(obj, &["spec", "podInfoOnMount"])),
        json!(bool_at(obj, &["spec", "storageCapacity"])),
        json!(token_requests),
        json!(bool_at(obj, &["spec", "requiresRepublish"])),
        json!(if modes.is_empty() {
            "<none>".to_string()
        } else {
            modes.join(",")
        }),
        json!(age(obj, now)),
    ]
}

pub fn webhook_configuration(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(obj)),
        json!(arr_at(obj, &["webhooks"]).len()),
        json!(age(obj, now)),
    ]
}

pub fn flow_schema(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let distinguisher = opt_str(obj, &["spec", "distinguisherMethod", "type"]).unwrap_or("<none>");
    let missing = arr_at(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Dangling")
        .map_or("?", |c| str_at(c, &["status"]));
    vec![
        json!(name(obj)),
        json!(str_at(obj, &["spec", "priorityLevelConfiguration", "name"])),
        json!(int_at(obj, &["spec", "matchingPrecedence"])),
        json!(distinguisher),
        json!(age(obj, now)),
        json!(missing),
    ]
}

pub fn priority_level(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let none = || json!("<none>");
    let (mut ncs, mut queues, mut hand, mut qll) = (none(), none(), none(), none());
    if let Some(limited) = get(obj, &["spec", "limited"]).filter(|l| l.is_object()) {
        ncs = json!(int_at(limited, &["nominalConcurrencyShares"]));
        if let Some(q) = get(limited, &["limitResponse", "queuing"]).filter(|q| q.is_object()) {
            queues = json!(int_at(q, &["queues"]));
            hand = json!(int_at(q, &["handSize"]));
            qll = json!(int_at(q, &["queueLengthLimit"]));
        }
    }
    vec![
        json!(name(obj)),
        json!(str_at(obj, &["spec", "type"])),
        ncs,
        queues,
        hand,
        qll,
        json!(age(obj, now)),
    ]
}

pub fn service_cidr(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cidrs: Vec<String> = arr_at(obj, &["spec", "cidrs"])
        .iter()
        .map(scalar_string)
        .collect();
    vec![
        json!(name(obj)),
        json!(cidrs.join(",")),
        json!(age(obj, now)),
    ]
}

pub fn ip_address(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parent = match get(obj, &["spec", "parentRef"]).filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let (group, resource) = (str_at(p, &["group"]), str_at(p, &["resource"]));
            let mut s = if group.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}.{group}")
            }
            .to_lowercase();
            let ns = str_at(p, &["namespace"]);
            if !ns.is_empty() {
                s = format!("{s}/{ns}");
            }
            format!("{s}/{}", str_at(p, &["name"]))
        }
    };
    // Upstream emits an AGE cell although no Age column is defined.
    vec![json!(name(obj)), json!(parent), json!(age(obj, now))]
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
    fn ingresses() {
        let ing = with_meta(json!({
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a"]}],
                     "rules": [{"host": "a.example"}, {}, {"host": "b.example"}, {"host": "c.example"}, {"host": "d.example"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}
        }));
        assert_eq!(
            ingress(&ing, now()),
            vec![
                json!("x"),
                json!("nginx"),
                json!("a.example,b.example,c.example + 2 more..."),
                json!("10.0.0.9"),
                json!("80, 443"),
                json!("60m")
            ]
        );
        let bare = with_meta(json!({"spec": {}}));
        assert_eq!(
            ingress(&bare, now())[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
        let ic = with_meta(json!({"spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}}));
        assert_eq!(
            ingress_class(&ic, now())[1..3],
            [
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/p")
            ]
        );
    }

    #[test]
    fn policies_and_bindings() {
        let np = with_meta(json!({"spec": {"podSelector": {}}}));
        assert_eq!(network_policy(&np, now())[1], json!("<none>"));
        let np = with_meta(json!({"spec": {"podSelector": {"matchLabels": {"role": "db"}}}}));
        assert_eq!(network_policy(&np, now())[1], json!("role=db"));
        let rb = with_meta(json!({"roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                         {"kind": "Group", "name": "devs"},
                         {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}]}));
        assert_eq!(
            role_binding(&rb, now())[1..6],
            [
                json!("ClusterRole/view"),
                json!("60m"),
                json!("alice, bob"),
                json!("devs"),
                json!("kube-system/default")
            ]
        );
    }

    #[test]
    fn storage_and_scheduling() {
        let mut sc = with_meta(
            json!({"provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
        );
        sc["metadata"]["annotations"] =
            json!({"storageclass.kubernetes.io/is-default-class": "true"});
        assert_eq!(
            storage_class(&sc, now())[..5],
            [
                json!("x (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false)
            ]
        );
        let pc =
            with_meta(json!({"value": 2000001000, "preemptionPolicy": "PreemptLowerPriority"}));
        assert_eq!(
            priority_class(&pc, now())[1..],
            [
                json!(2000001000),
                json!(false),
                json!("60m"),
                json!("PreemptLowerPriority")
            ]
        );
        let l = with_meta(json!({"spec": {"holderIdentity": "node1"}}));
        assert_eq!(lease(&l, now())[1], json!("node1"));
        assert_eq!(lease(&with_meta(json!({})), now())[1], json!(""));
    }

    #[test]
    fn csrs() {
        let csr = with_meta(
            json!({"spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "alice",
            "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved"}], "certificate": "LS0t"}}),
        );
        assert_eq!(
            certificate_signing_request(&csr, now())[1..],
            [
                json!("60m"),
                json!("kubernetes.io/kube-apiserver-client"),
                json!("alice"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let pending = with_meta(json!({"spec": {}}));
        assert_eq!(
            certificate_signing_request(&pending, now())[2..],
            [
                json!("<none>"),
                json!(""),
                json!("<none>"),
                json!("Pending")
            ]
        );
        let denied = with_meta(
            json!({"status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]}}),
        );
        assert_eq!(
            certificate_signing_request(&denied, now())[5],
            json!("Denied,Failed")
        );
    }

    #[test]
    fn misc() {
        let pl = with_meta(
            json!({"spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 30,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 64, "handSize": 6, "queueLengthLimit": 50}}}}}),
        );
        assert_eq!(
            priority_level(&pl, now())[1..6],
            [json!("Limited"), json!(30), json!(64), json!(6), json!(50)]
        );
        let exempt = with_meta(json!({"spec": {"type": "Exempt"}}));
        assert_eq!(priority_level(&exempt, now())[2], json!("<none>"));
        let fs = with_meta(
            json!({"spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}}),
        );
        assert_eq!(
            flow_schema(&fs, now())[1..],
            [
                json!("exempt"),
                json!(1),
                json!("<none>"),
                json!("60m"),
                json!("False")
            ]
        );
        let d = with_meta(json!({"spec": {}}));
        assert_eq!(
            csi_driver(&d, now())[1..7],
            [
                json!(true),
                json!(false),
                json!(false),
                json!("<unset>"),
                json!(false),
                json!("<none>")
            ]
        );
        let ip = with_meta(
            json!({"spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}}),
        );
        assert_eq!(
            ip_address(&ip, now())[1],
            json!("services/default/kubernetes")
        );
    }
}
