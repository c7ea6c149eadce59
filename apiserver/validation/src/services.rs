//! Service validation (`ValidateService`, `ValidateServiceUpdate`).

use crate::error::{FieldError, go_quote, go_repr, string_slice};
use crate::json::{arr, at, child, has, index, int, s};
use crate::meta::{
    Errors, MetaRules, name_dns1035, validate_dns1123_label, validate_dns1123_subdomain,
    validate_labels, validate_object_meta, validate_object_meta_update, validate_qualified_name,
};
use crate::pods::{port_num_errors, validate_port_num_or_name};
use serde_json::Value;
use std::collections::BTreeSet;

const RULES: MetaRules = MetaRules {
    namespaced: Some(true),
    name: name_dns1035,
    builtin: true,
};

/// Default `--service-node-port-range`.
pub const NODE_PORT_MIN: i64 = 30000;
pub const NODE_PORT_MAX: i64 = 32767;

/// ClusterIPs as the strategy normalizes them (singular → plural).
fn cluster_ips(spec: &Value) -> Vec<String> {
    let list: Vec<String> = arr(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let single = s(spec, "clusterIP");
    if list.is_empty() && !single.is_empty() {
        vec![single.to_string()]
    } else {
        list
    }
}

fn is_headless(spec: &Value) -> bool {
    let ips = cluster_ips(spec);
    ips.len() == 1 && ips[0] == "None"
}

fn externally_accessible(spec: &Value) -> bool {
    let ty = s(spec, "type");
    ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

fn ips_repr(ips: &[String]) -> Value {
    if ips.is_empty() {
        go_repr("[]string(nil)")
    } else {
        go_repr(string_slice(ips.iter().map(String::as_str)))
    }
}

const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

fn service_port_repr(protocol: &str, port: i64) -> Value {
    go_repr(format!(
        "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        go_quote(protocol)
    ))
}

fn validate_service_port(
    sp: &Value,
    require_name: bool,
    names: &mut BTreeSet<String>,
    p: &str,
) -> Errors {
    let mut errs = Vec::new();
    let name = s(sp, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&child(p, "name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &child(p, "name")));
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&child(p, "name"), name));
        }
    }
    let port = int(sp, "port").unwrap_or(0);
    for m in port_num_errors(port) {
        errs.push(FieldError::invalid(&child(p, "port"), port, m));
    }
    let proto = s(sp, "protocol");
    if proto.is_empty() {
        errs.push(FieldError::required(&child(p, "protocol"), ""));
    } else if !["SCTP", "TCP", "UDP"].contains(&proto) {
        errs.push(FieldError::not_supported(
            &child(p, "protocol"),
            proto,
            &["SCTP", "TCP", "UDP"],
        ));
    }
    errs.extend(validate_port_num_or_name(
        sp.get("targetPort"),
        &child(p, "targetPort"),
    ));
    if let Some(ap) = sp.get("appProtocol").and_then(Value::as_str) {
        errs.extend(validate_qualified_name(ap, &child(p, "appProtocol")));
    }
    errs
}

fn validate_cluster_ips(spec: &Value) -> Errors {
    let mut errs = Vec::new();
    if s(spec, "type") == "ExternalName" {
        return errs;
    }
    let explicit: Vec<String> = arr(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let single = s(spec, "clusterIP");
    if !single.is_empty() && !explicit.is_empty() && explicit[0] != single {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            ips_repr(&explicit),
            "first value must match `clusterIP`",
        ));
    }
    if let Some(policy) = spec.get("ipFamilyPolicy").and_then(Value::as_str) {
        let ok = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !ok.contains(&policy) {
            errs.push(FieldError::not_supported(
                "spec.ipFamilyPolicy",
                policy,
                &ok,
            ));
        }
    }
    let ips = cluster_ips(spec);
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    ips_repr(&ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        if ip.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &index("spec.clusterIPs", i),
                ip.as_str(),
                IP_MSG,
            ));
        }
    }
    errs
}

/// `ValidateService` plus the node-port range check of the allocator.
pub fn validate_service(svc: &Value) -> Errors {
    let mut errs = validate_object_meta(svc, &RULES);
    let spec = at(svc, &["spec"]);
    let ty = s(spec, "type");
    let ports = arr(spec, "ports");
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let ips = cluster_ips(spec);
    match ty {
        "LoadBalancer" => {
            for (i, p) in ports.iter().enumerate() {
                if int(p, "port") == Some(10250) {
                    errs.push(FieldError::invalid(
                        &index("spec.ports", i),
                        10250,
                        "may not expose port 10250 externally since it is used by kubelet",
                    ));
                }
            }
            if headless {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    "None",
                    "may not be set to 'None' for LoadBalancer services",
                ));
            }
        }
        "NodePort" => {
            if headless {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    "None",
                    "may not be set to 'None' for NodePort services",
                ));
            }
        }
        "ExternalName" => {
            if !ips.is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if has(spec, "ipFamilyPolicy") {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = s(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                errs.extend(validate_dns1123_subdomain(cname, "spec.externalName"));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            p,
            ports.len() > 1,
            &mut names,
            &index("spec.ports", i),
        ));
    }
    if spec.get("selector").is_some_and(|v| !v.is_null()) {
        errs.extend(validate_labels(spec.get("selector"), "spec.selector"));
    }
    let affinity = s(spec, "sessionAffinity");
    if affinity.is_empty() {
        errs.push(FieldError::required("spec.sessionAffinity", ""));
    } else if !["ClientIP", "None"].contains(&affinity) {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            affinity,
            &["ClientIP", "None"],
        ));
    }
    if affinity == "ClientIP" {
        const WHEN: &str = "when session affinity type is ClientIP";
        let cfg = at(spec, &["sessionAffinityConfig"]);
        let client = at(cfg, &["clientIP"]);
        if cfg.is_null() {
            errs.push(FieldError::required("spec.sessionAffinityConfig", WHEN));
        } else if client.is_null() {
            errs.push(FieldError::required(
                "spec.sessionAffinityConfig.clientIP",
                WHEN,
            ));
        } else {
            let p = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
            match int(client, "timeoutSeconds") {
                None => errs.push(FieldError::required(p, WHEN)),
                Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                    p,
                    t,
                    "must be greater than 0 and less than 86400",
                )),
                _ => {}
            }
        }
    } else if affinity == "None" && has(spec, "sessionAffinityConfig") {
        errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        ));
    }
    errs.extend(validate_cluster_ips(spec));
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        if ip.parse::<std::net::IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &index("spec.externalIPs", i),
                ip,
                IP_MSG,
            ));
        }
    }
    let supported = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !supported.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, &supported));
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if int(p, "nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = int(p, "nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((s(p, "protocol"), np)) {
            errs.push(FieldError::duplicate(
                &format!("spec.ports[{i}].nodePort"),
                np,
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let (proto, port) = (s(p, "protocol"), int(p, "port").unwrap_or(0));
        if !seen.insert((proto, port)) {
            errs.push(FieldError::duplicate(
                &index("spec.ports", i),
                service_port_repr(proto, port),
            ));
        }
    }
    let etp = s(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !["Cluster", "Local"].contains(&etp) {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            etp,
            &["Cluster", "Local"],
        ));
    }
    match spec.get("internalTrafficPolicy").and_then(Value::as_str) {
        None => {
            if ["NodePort", "LoadBalancer", "ClusterIP"].contains(&ty) {
                errs.push(FieldError::required("spec.internalTrafficPolicy", ""));
            }
        }
        Some(itp) if !["Cluster", "Local"].contains(&itp) => {
            errs.push(FieldError::not_supported(
                "spec.internalTrafficPolicy",
                itp,
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        for (i, p) in ports.iter().enumerate() {
            let np = int(p, "nodePort").unwrap_or(0);
            if np != 0 && !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&np) {
                errs.push(FieldError::invalid(
                    &format!("spec.ports[{i}].nodePort"),
                    np,
                    format!("provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"),
                ));
            }
        }
    }
    errs
}

/// `validateUpgradeDowngradeClusterIPs`.
fn cluster_ip_updates(new: &Value, old: &Value) -> Errors {
    let mut errs = Vec::new();
    let (ns, os) = (at(new, &["spec"]), at(old, &["spec"]));
    if s(ns, "type") == "ExternalName" || s(os, "type") == "ExternalName" {
        return errs;
    }
    if is_headless(ns) && is_headless(os) {
        return errs;
    }
    let (n, o) = (cluster_ips(ns), cluster_ips(os));
    let shown = ips_repr(&n);
    if n.len() == o.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                errs.push(FieldError::invalid(
                    &index("spec.clusterIPs", i),
                    shown.clone(),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                shown.clone(),
                "primary clusterIP can not be unset",
            ));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                shown.clone(),
                "may not change once set",
            ));
        }
        if n.len() == 1 && s(ns, "ipFamilyPolicy") != "SingleStack" {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                shown,
                "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            shown,
            "may not change once set",
        ));
    }
    errs
}

/// `ValidateServiceUpdate`.
pub fn validate_service_update(new: &Value, old: &Value) -> Errors {
    let mut errs = validate_object_meta_update(new, old, true);
    errs.extend(cluster_ip_updates(new, old));
    errs.extend(validate_service(new));
    errs
}
