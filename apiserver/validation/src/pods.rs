//! Pod, pod template and pod spec validation (`pkg/apis/core/validation`).

use crate::error::FieldError;
use crate::json::{arr, at, child, has, index, int, key, s};
use crate::meta::{
    Errors, MetaRules, inclusive_range, name_subdomain, validate_annotations,
    validate_dns1123_label, validate_labels, validate_object_meta, validate_object_meta_update,
    validate_qualified_name,
};
use rkube_selectors::validation::label_value_errors;
use serde_json::Value;
use std::collections::BTreeSet;

const MAX_INT32: i64 = i32::MAX as i64;
const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// `IsValidPortNum` as messages.
pub fn port_num_errors(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range(1, 65535)]
    }
}

/// `IsValidPortName`.
pub fn port_name_errors(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(crate::meta::max_len_error(15));
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// `ValidatePortNumOrName` over an IntOrString JSON value.
pub fn validate_port_num_or_name(port: Option<&Value>, path: &str) -> Errors {
    match port {
        Some(Value::String(name)) => port_name_errors(name)
            .into_iter()
            .map(|m| FieldError::invalid(path, name.as_str(), m))
            .collect(),
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            port_num_errors(n)
                .into_iter()
                .map(|m| FieldError::invalid(path, n, m))
                .collect()
        }
    }
}

/// `IsConfigMapKey`.
pub fn config_key_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(crate::meta::max_len_error(253));
    }
    if value.is_empty()
        || !value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        errs.push(crate::meta::regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".into());
    } else if value == ".." {
        errs.push("must not be '..'".into());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".into());
    }
    errs
}

/// `IsRelaxedEnvVarName`.
fn env_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push("environment variable name must be non-empty".into());
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push("a valid environment variable name must consist only of printable ASCII characters other than '='".into());
    }
    errs
}

fn supported(errs: &mut Errors, value: &str, path: &str, allowed: &[&str]) {
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else if !allowed.contains(&value) {
        errs.push(FieldError::not_supported(path, value, allowed));
    }
}

fn file_mode(v: &Value, k: &str, base: &str, errs: &mut Errors) {
    if let Some(mode) = int(v, k)
        && !(0..=0o777).contains(&mode)
    {
        errs.push(FieldError::invalid(&child(base, k), mode, FILE_MODE_MSG));
    }
}

fn local_path(p: &str, path: &str, errs: &mut Errors) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split(['/', '\\']).any(|seg| seg == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
}

fn key_to_paths(src: &Value, base: &str, errs: &mut Errors) {
    for (i, item) in arr(src, "items").iter().enumerate() {
        let p = index(&child(base, "items"), i);
        if s(item, "key").is_empty() {
            errs.push(FieldError::required(&child(&p, "key"), ""));
        }
        let target = s(item, "path");
        if target.is_empty() {
            errs.push(FieldError::required(&child(&p, "path"), ""));
        }
        local_path(target, &child(&p, "path"), errs);
        if target.starts_with("..") {
            errs.push(FieldError::invalid(
                &child(&p, "path"),
                target,
                "must not start with '..'",
            ));
        }
        file_mode(item, "mode", &p, errs);
    }
}

/// Volume source keys in upstream's check order.
const VOLUME_TYPES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "quobyte",
    "cinder",
    "cephfs",
    "downwardAPI",
    "fc",
    "azureFile",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "configMap",
    "projected",
    "csi",
    "ephemeral",
    "image",
];

const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

fn validate_volume_source(vol: &Value, base: &str) -> Errors {
    let mut errs = Vec::new();
    let mut count = 0;
    for t in VOLUME_TYPES {
        let Some(src) = vol.get(*t).filter(|v| !v.is_null()) else {
            continue;
        };
        let p = child(base, t);
        if count > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        match *t {
            "hostPath" => {
                let hp = s(src, "path");
                if hp.is_empty() {
                    errs.push(FieldError::required(&child(&p, "path"), ""));
                } else if hp.split('/').any(|seg| seg == "..") {
                    errs.push(FieldError::invalid(
                        &child(&p, "path"),
                        hp,
                        "must not contain '..'",
                    ));
                }
                let ty = s(src, "type");
                if !HOST_PATH_TYPES.contains(&ty) {
                    errs.push(FieldError::not_supported(
                        &child(&p, "type"),
                        ty,
                        HOST_PATH_TYPES,
                    ));
                }
            }
            "secret" => {
                if s(src, "secretName").is_empty() {
                    errs.push(FieldError::required(&child(&p, "secretName"), ""));
                }
                file_mode(src, "defaultMode", &p, &mut errs);
                key_to_paths(src, &p, &mut errs);
            }
            "configMap" => {
                if s(src, "name").is_empty() {
                    errs.push(FieldError::required(&child(&p, "name"), ""));
                }
                file_mode(src, "defaultMode", &p, &mut errs);
                key_to_paths(src, &p, &mut errs);
            }
            "persistentVolumeClaim" => {
                if s(src, "claimName").is_empty() {
                    errs.push(FieldError::required(&child(&p, "claimName"), ""));
                }
            }
            "nfs" => {
                if s(src, "server").is_empty() {
                    errs.push(FieldError::required(&child(&p, "server"), ""));
                }
                let np = s(src, "path");
                if np.is_empty() {
                    errs.push(FieldError::required(&child(&p, "path"), ""));
                } else if !np.starts_with('/') {
                    errs.push(FieldError::invalid(
                        &child(&p, "path"),
                        np,
                        "must be an absolute path",
                    ));
                }
            }
            "downwardAPI" | "projected" => file_mode(src, "defaultMode", &p, &mut errs),
            "csi" => {
                if s(src, "driver").is_empty() {
                    errs.push(FieldError::required(&child(&p, "driver"), ""));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(base, "must specify a volume type"));
    }
    errs
}

/// `ValidateVolumes`: returns the names of valid volumes and the errors.
fn validate_volumes(volumes: &[Value], base: &str) -> (BTreeSet<String>, Errors) {
    let mut names = BTreeSet::new();
    let mut errs = Vec::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = index(base, i);
        let name_path = child(&p, "name");
        let mut el = validate_volume_source(vol, &p);
        let name = s(vol, "name");
        if name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(validate_dns1123_label(name, &name_path));
        }
        if names.contains(name) {
            el.push(FieldError::duplicate(&name_path, name));
        }
        if el.is_empty() {
            names.insert(name.to_string());
        } else {
            errs.extend(el);
        }
    }
    (names, errs)
}

fn validate_container_ports(ports: &[Value], base: &str) -> Errors {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(base, i);
        let name = s(port, "name");
        if !name.is_empty() {
            let msgs = port_name_errors(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(&child(&p, "name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&child(&p, "name"), name));
            }
        }
        let cp = int(port, "containerPort").unwrap_or(0);
        if cp == 0 {
            errs.push(FieldError::required(&child(&p, "containerPort"), ""));
        } else {
            for m in port_num_errors(cp) {
                errs.push(FieldError::invalid(&child(&p, "containerPort"), cp, m));
            }
        }
        let hp = int(port, "hostPort").unwrap_or(0);
        if hp != 0 {
            for m in port_num_errors(hp) {
                errs.push(FieldError::invalid(&child(&p, "hostPort"), hp, m));
            }
        }
        supported(
            &mut errs,
            s(port, "protocol"),
            &child(&p, "protocol"),
            &["SCTP", "TCP", "UDP"],
        );
    }
    errs
}

/// `AccumulateUniqueHostPorts` with a fresh accumulator.
fn check_host_port_conflicts(containers: &[(usize, &Value)], base: &str) -> Errors {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (ci, ctr) in containers {
        for (pi, port) in arr(ctr, "ports").iter().enumerate() {
            let hp = int(port, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let k = format!("{}/{}/{}", s(port, "protocol"), s(port, "hostIP"), hp);
            if !seen.insert(k.clone()) {
                let p = index(&child(&index(base, *ci), "ports"), pi);
                errs.push(FieldError::duplicate(&child(&p, "hostPort"), k));
            }
        }
    }
    errs
}

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn key_selector(sel: &Value, p: &str, errs: &mut Errors) {
    let name = s(sel, "name");
    for m in name_subdomain(name, false) {
        errs.push(FieldError::invalid(&child(p, "name"), name, m));
    }
    let k = s(sel, "key");
    if k.is_empty() {
        errs.push(FieldError::required(&child(p, "key"), ""));
    } else {
        for m in config_key_errors(k) {
            errs.push(FieldError::invalid(&child(p, "key"), k, m));
        }
    }
}

/// `fieldpath.SplitMaybeSubscriptedPath`: `path['key']` → (path, key).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_suffix("']")?;
    let (base, sub) = rest.split_once("['")?;
    Some((base, sub))
}

fn validate_env(env: &[Value], base: &str) -> Errors {
    let mut errs = Vec::new();
    for (i, ev) in env.iter().enumerate() {
        let p = index(base, i);
        let name = s(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&child(&p, "name"), ""));
        } else {
            for m in env_name_errors(name) {
                errs.push(FieldError::invalid(&child(&p, "name"), name, m));
            }
        }
        let Some(from) = ev.get("valueFrom").filter(|v| !v.is_null()) else {
            continue;
        };
        let vp = child(&p, "valueFrom");
        let mut n = 0;
        if let Some(fr) = from.get("fieldRef").filter(|v| !v.is_null()) {
            n += 1;
            let fp = child(&vp, "fieldRef");
            if s(fr, "apiVersion").is_empty() {
                errs.push(FieldError::required(&child(&fp, "apiVersion"), ""));
            } else if s(fr, "fieldPath").is_empty() {
                errs.push(FieldError::required(&child(&fp, "fieldPath"), ""));
            } else {
                let path = s(fr, "fieldPath");
                match split_subscript(path) {
                    Some(("metadata.annotations", sub)) => {
                        errs.extend(validate_qualified_name(&sub.to_lowercase(), &fp));
                    }
                    Some(("metadata.labels", sub)) => {
                        errs.extend(validate_qualified_name(sub, &fp));
                    }
                    Some((base_path, _)) => {
                        errs.push(FieldError::invalid(
                            &fp,
                            base_path,
                            "does not support subscript",
                        ));
                    }
                    None if !ENV_FIELD_PATHS.contains(&path) => {
                        errs.push(FieldError::not_supported(
                            &child(&fp, "fieldPath"),
                            path,
                            ENV_FIELD_PATHS,
                        ));
                    }
                    None => {}
                }
            }
        }
        if from.get("resourceFieldRef").is_some_and(|v| !v.is_null()) {
            n += 1;
        }
        if let Some(r) = from.get("configMapKeyRef").filter(|v| !v.is_null()) {
            n += 1;
            key_selector(r, &child(&vp, "configMapKeyRef"), &mut errs);
        }
        if let Some(r) = from.get("secretKeyRef").filter(|v| !v.is_null()) {
            n += 1;
            key_selector(r, &child(&vp, "secretKeyRef"), &mut errs);
        }
        if from.get("fileKeyRef").is_some_and(|v| !v.is_null()) {
            n += 1;
        }
        if n == 0 {
            errs.push(FieldError::invalid(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if !s(ev, "value").is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_env_from(list: &[Value], base: &str) -> Errors {
    let mut errs = Vec::new();
    for (i, ev) in list.iter().enumerate() {
        let p = index(base, i);
        let prefix = s(ev, "prefix");
        if !prefix.is_empty() {
            for m in env_name_errors(prefix) {
                errs.push(FieldError::invalid(&child(&p, "prefix"), prefix, m));
            }
        }
        let mut n = 0;
        for k in ["configMapRef", "secretRef"] {
            if let Some(r) = ev.get(k).filter(|v| !v.is_null()) {
                n += 1;
                let name = s(r, "name");
                let np = child(&child(&p, k), "name");
                if name.is_empty() {
                    errs.push(FieldError::required(&np, ""));
                } else {
                    for m in name_subdomain(name, true) {
                        errs.push(FieldError::invalid(&np, name, m));
                    }
                }
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                base,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                base,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_volume_mounts(mounts: &[Value], volumes: &BTreeSet<String>, base: &str) -> Errors {
    let mut errs = Vec::new();
    let mut points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = index(base, i);
        let name = s(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&child(&p, "name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(FieldError::not_found(&child(&p, "name"), name));
        }
        let mp = s(m, "mountPath");
        if mp.is_empty() {
            errs.push(FieldError::required(&child(&p, "mountPath"), ""));
        }
        if !points.insert(mp) {
            errs.push(FieldError::invalid(
                &child(&p, "mountPath"),
                mp,
                "must be unique",
            ));
        }
        let sub = s(m, "subPath");
        if !sub.is_empty() {
            local_path(sub, &child(&p, "subPath"), &mut errs);
        }
        let expr = s(m, "subPathExpr");
        if !expr.is_empty() {
            if !sub.is_empty() {
                errs.push(FieldError::invalid(
                    &child(&p, "subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            local_path(expr, &child(&p, "subPathExpr"), &mut errs);
        }
    }
    errs
}

const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !name.starts_with("hugepages-")
}

fn validate_resources(res: Option<&Value>, base: &str) -> Errors {
    let mut errs = Vec::new();
    let Some(res) = res else {
        return errs;
    };
    let lim_path = child(base, "limits");
    let req_path = child(base, "requests");
    let limits = crate::json::string_pairs(res.get("limits"));
    let requests = crate::json::string_pairs(res.get("requests"));
    let check_name = |name: &str, p: &str, errs: &mut Errors| {
        errs.extend(validate_qualified_name(name, p));
        if !name.contains('/') {
            if !STANDARD_CONTAINER_RESOURCES.contains(&name) && !name.starts_with("hugepages-") {
                errs.push(FieldError::invalid(
                    p,
                    name,
                    "must be a standard resource for containers",
                ));
            }
        } else if !is_native(name) && name.starts_with("requests.") {
            errs.push(FieldError::invalid(
                p,
                name,
                "doesn't follow extended resource name standard",
            ));
        }
    };
    let check_qty = |q: &str, p: &str, errs: &mut Errors| {
        if let Some(v) = crate::quantity::parse(q)
            && v < 0.0
        {
            errs.push(FieldError::invalid(p, q, crate::meta::NEGATIVE));
        }
    };
    for (name, q) in &limits {
        let p = key(&lim_path, name);
        check_name(name, &p, &mut errs);
        check_qty(q, &p, &mut errs);
    }
    for (name, q) in &requests {
        let p = key(&req_path, name);
        check_name(name, &p, &mut errs);
        check_qty(q, &p, &mut errs);
        match limits.iter().find(|(n, _)| n == name) {
            Some((_, lim)) => {
                let (rv, lv) = (crate::quantity::parse(q), crate::quantity::parse(lim));
                if let (Some(rv), Some(lv)) = (rv, lv) {
                    if rv != lv && !overcommit_allowed(name) {
                        errs.push(FieldError::invalid(
                            &req_path,
                            *q,
                            format!("must be equal to {name} limit of {lim}"),
                        ));
                    } else if rv > lv {
                        errs.push(FieldError::invalid(
                            &req_path,
                            *q,
                            format!("must be less than or equal to {name} limit of {lim}"),
                        ));
                    }
                }
            }
            None if !overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
    }
    errs
}

fn validate_handler(h: &Value, base: &str, with_sleep: bool) -> Errors {
    let mut errs = Vec::new();
    let mut n = 0;
    let kinds: &[&str] = if with_sleep {
        &["exec", "httpGet", "tcpSocket", "grpc", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    for k in kinds {
        let Some(a) = h.get(*k).filter(|v| !v.is_null()) else {
            continue;
        };
        let p = child(base, k);
        if n > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        n += 1;
        match *k {
            "exec" => {
                if arr(a, "command").is_empty() {
                    errs.push(FieldError::required(&child(&p, "command"), ""));
                }
            }
            "httpGet" => {
                if s(a, "path").is_empty() {
                    errs.push(FieldError::required(&child(&p, "path"), ""));
                }
                errs.extend(validate_port_num_or_name(a.get("port"), &child(&p, "port")));
                let scheme = s(a, "scheme");
                if !["HTTP", "HTTPS"].contains(&scheme) {
                    errs.push(FieldError::not_supported(
                        &child(&p, "scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" => {
                errs.extend(validate_port_num_or_name(a.get("port"), &child(&p, "port")))
            }
            "grpc" => {
                let port = int(a, "port").unwrap_or(0);
                for m in port_num_errors(port) {
                    errs.push(FieldError::invalid(&child(&p, "port"), port, m));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(base, "must specify a handler type"));
    }
    errs
}

#[derive(Clone, Copy, PartialEq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn validate_probe(probe: Option<&Value>, base: &str, kind: ProbeKind) -> Errors {
    let mut errs = Vec::new();
    let Some(probe) = probe.filter(|v| !v.is_null()) else {
        return errs;
    };
    errs.extend(validate_handler(probe, base, false));
    for k in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        errs.extend(crate::meta::nonneg_field(probe, k, base));
    }
    let tgp = int(probe, "terminationGracePeriodSeconds");
    if let Some(t) = tgp
        && t <= 0
    {
        errs.push(FieldError::invalid(
            &child(base, "terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    match kind {
        ProbeKind::Readiness => {
            if let Some(t) = tgp {
                errs.push(FieldError::invalid(
                    &child(base, "terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
        _ => {
            let st = int(probe, "successThreshold").unwrap_or(0);
            if st != 1 {
                errs.push(FieldError::invalid(
                    &child(base, "successThreshold"),
                    st,
                    "must be 1",
                ));
            }
        }
    }
    errs
}

fn validate_lifecycle(lc: Option<&Value>, base: &str) -> Errors {
    let mut errs = Vec::new();
    if let Some(lc) = lc.filter(|v| !v.is_null()) {
        for k in ["postStart", "preStop"] {
            if let Some(h) = lc.get(k).filter(|v| !v.is_null()) {
                errs.extend(validate_handler(h, &child(base, k), true));
            }
        }
    }
    errs
}

fn validate_container_common(ctr: &Value, volumes: &BTreeSet<String>, p: &str) -> Errors {
    let mut errs = Vec::new();
    let name = s(ctr, "name");
    let name_path = child(p, "name");
    if name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(validate_dns1123_label(name, &name_path));
    }
    if s(ctr, "image").is_empty() {
        errs.push(FieldError::required(&child(p, "image"), ""));
    }
    supported(
        &mut errs,
        s(ctr, "terminationMessagePolicy"),
        &child(p, "terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    );
    errs.extend(validate_container_ports(
        arr(ctr, "ports"),
        &child(p, "ports"),
    ));
    errs.extend(validate_env(arr(ctr, "env"), &child(p, "env")));
    errs.extend(validate_env_from(arr(ctr, "envFrom"), &child(p, "envFrom")));
    errs.extend(validate_volume_mounts(
        arr(ctr, "volumeMounts"),
        volumes,
        &child(p, "volumeMounts"),
    ));
    supported(
        &mut errs,
        s(ctr, "imagePullPolicy"),
        &child(p, "imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    );
    errs.extend(validate_resources(
        ctr.get("resources"),
        &child(p, "resources"),
    ));
    errs
}

fn validate_containers(containers: &[Value], volumes: &BTreeSet<String>, base: &str) -> Errors {
    let mut errs = Vec::new();
    if containers.is_empty() {
        errs.push(FieldError::required(base, ""));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, ctr) in containers.iter().enumerate() {
        let p = index(base, i);
        errs.extend(validate_container_common(ctr, volumes, &p));
        let name = s(ctr, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&child(&p, "name"), name));
        }
        errs.extend(validate_lifecycle(
            ctr.get("lifecycle"),
            &child(&p, "lifecycle"),
        ));
        errs.extend(validate_probe(
            ctr.get("livenessProbe"),
            &child(&p, "livenessProbe"),
            ProbeKind::Liveness,
        ));
        errs.extend(validate_probe(
            ctr.get("readinessProbe"),
            &child(&p, "readinessProbe"),
            ProbeKind::Readiness,
        ));
        errs.extend(validate_probe(
            ctr.get("startupProbe"),
            &child(&p, "startupProbe"),
            ProbeKind::Startup,
        ));
        if has(ctr, "restartPolicy") {
            errs.push(FieldError::forbidden(
                &child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    let all: Vec<(usize, &Value)> = containers.iter().enumerate().collect();
    errs.extend(check_host_port_conflicts(&all, base));
    errs
}

fn validate_init_containers(
    inits: &[Value],
    regular: &[Value],
    volumes: &BTreeSet<String>,
    base: &str,
) -> Errors {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| s(c, "name")).collect();
    for (i, ctr) in inits.iter().enumerate() {
        let p = index(base, i);
        errs.extend(validate_container_common(ctr, volumes, &p));
        let policy = s(ctr, "restartPolicy");
        if has(ctr, "restartPolicy") && policy != "Always" {
            errs.push(FieldError::not_supported(
                &child(&p, "restartPolicy"),
                policy,
                &["Always"],
            ));
        }
        let name = s(ctr, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(&child(&p, "name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        errs.extend(check_host_port_conflicts(&[(i, ctr)], base));
        if policy == "Always" {
            errs.extend(validate_lifecycle(
                ctr.get("lifecycle"),
                &child(&p, "lifecycle"),
            ));
            errs.extend(validate_probe(
                ctr.get("livenessProbe"),
                &child(&p, "livenessProbe"),
                ProbeKind::Liveness,
            ));
            errs.extend(validate_probe(
                ctr.get("readinessProbe"),
                &child(&p, "readinessProbe"),
                ProbeKind::Readiness,
            ));
            errs.extend(validate_probe(
                ctr.get("startupProbe"),
                &child(&p, "startupProbe"),
                ProbeKind::Startup,
            ));
        } else {
            for k in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if has(ctr, k) {
                    errs.push(FieldError::forbidden(
                        &child(&p, k),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

fn validate_tolerations(list: &[Value], base: &str) -> Errors {
    let mut errs = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let p = index(base, i);
        let (k, op, val, effect) = (s(t, "key"), s(t, "operator"), s(t, "value"), s(t, "effect"));
        if !k.is_empty() {
            errs.extend(validate_qualified_name(k, &child(&p, "key")));
        }
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(&child(&p, "operator"), op, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
        }
        if has(t, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "" | "Equal" => {
                for m in label_value_errors(val) {
                    errs.push(FieldError::invalid(&child(&p, "operator"), val, m));
                }
            }
            "Exists" => {
                if !val.is_empty() {
                    errs.push(FieldError::invalid(
                        &child(&p, "operator"),
                        t.clone(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            _ => errs.push(FieldError::not_supported(
                &child(&p, "operator"),
                op,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(FieldError::not_supported(
                &child(&p, "effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

/// `ValidatePodSpec`; `is_pod` selects Pod-only rules (`ResourceIsPod`).
pub fn validate_pod_spec(spec: &Value, base: &str, is_pod: bool) -> Errors {
    let mut errs = Vec::new();
    if !has(spec, "terminationGracePeriodSeconds") {
        errs.push(FieldError::required(
            &child(base, "terminationGracePeriodSeconds"),
            "",
        ));
    }
    let (vols, verrs) = validate_volumes(arr(spec, "volumes"), &child(base, "volumes"));
    errs.extend(verrs);
    let containers = arr(spec, "containers");
    errs.extend(validate_containers(
        containers,
        &vols,
        &child(base, "containers"),
    ));
    errs.extend(validate_init_containers(
        arr(spec, "initContainers"),
        containers,
        &vols,
        &child(base, "initContainers"),
    ));
    if crate::json::is_true(spec, "hostNetwork") {
        for (i, c) in containers.iter().enumerate() {
            for (j, port) in arr(c, "ports").iter().enumerate() {
                let (hp, cp) = (
                    int(port, "hostPort").unwrap_or(0),
                    int(port, "containerPort").unwrap_or(0),
                );
                if (is_pod || hp != 0) && hp != cp {
                    errs.push(FieldError::invalid(
                        &format!("{base}.containers[{i}].ports[{j}].hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    let rp = s(spec, "restartPolicy");
    supported(
        &mut errs,
        rp,
        &child(base, "restartPolicy"),
        &["Always", "OnFailure", "Never"],
    );
    supported(
        &mut errs,
        s(spec, "dnsPolicy"),
        &child(base, "dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    );
    errs.extend(validate_labels(
        spec.get("nodeSelector"),
        &child(base, "nodeSelector"),
    ));
    if s(spec, "dnsPolicy") == "None" && !has(spec, "dnsConfig") {
        errs.push(FieldError::required(
            &child(base, "dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    let sa = s(spec, "serviceAccountName");
    if !sa.is_empty() {
        for m in name_subdomain(sa, false) {
            errs.push(FieldError::invalid(
                &child(base, "serviceAccountName"),
                sa,
                m,
            ));
        }
    }
    let node = s(spec, "nodeName");
    if !node.is_empty() {
        for m in name_subdomain(node, false) {
            errs.push(FieldError::invalid(&child(base, "nodeName"), node, m));
        }
    }
    if let Some(ads) = int(spec, "activeDeadlineSeconds")
        && !(1..=MAX_INT32).contains(&ads)
    {
        errs.push(FieldError::invalid(
            &child(base, "activeDeadlineSeconds"),
            ads,
            inclusive_range(1, MAX_INT32),
        ));
    }
    for k in ["hostname", "subdomain"] {
        let v = s(spec, k);
        if !v.is_empty() {
            errs.extend(validate_dns1123_label(v, &child(base, k)));
        }
    }
    errs.extend(validate_tolerations(
        arr(spec, "tolerations"),
        &child(base, "tolerations"),
    ));
    errs.extend(validate_sysctls(spec, &child(base, "securityContext")));
    let pc = s(spec, "priorityClassName");
    if !pc.is_empty() {
        for m in name_subdomain(pc, false) {
            errs.push(FieldError::invalid(
                &child(base, "priorityClassName"),
                pc,
                m,
            ));
        }
    }
    errs
}

const SYSCTL_MAX_LENGTH: usize = 253;
const SYSCTL_FMT: &str = r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";

/// `IsValidSysctlName`: dot- or slash-separated segments of lower-case
/// alphanumerics with inner '-' and '_'.
fn valid_sysctl_name(name: &str) -> bool {
    let segment = |seg: &str| {
        let b = seg.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        !b.is_empty()
            && b.first().is_some_and(edge)
            && b.last().is_some_and(edge)
            && b.iter().all(|c| edge(c) || *c == b'-' || *c == b'_')
    };
    name.len() <= SYSCTL_MAX_LENGTH && name.split(['.', '/']).all(segment)
}

/// Sysctls namespaced with the network or IPC namespace, which a pod
/// sharing the host's can't set.
fn sysctl_namespace(name: &str) -> Option<&'static str> {
    let n = name.replace('/', ".");
    if n.starts_with("net.") {
        Some("net")
    } else if n.starts_with("kernel.shm")
        || n.starts_with("kernel.msg")
        || n == "kernel.sem"
        || n.starts_with("fs.mqueue.")
    {
        Some("ipc")
    } else {
        None
    }
}

/// `validateSysctls` of `spec.securityContext`.
fn validate_sysctls(spec: &Value, base: &str) -> Errors {
    let mut errs = Vec::new();
    let sc = at(spec, &["securityContext"]);
    let mut names = BTreeSet::new();
    for (i, sysctl) in arr(sc, "sysctls").iter().enumerate() {
        let path = child(&index(&child(base, "sysctls"), i), "name");
        let name = s(sysctl, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&path, ""));
        } else if !valid_sysctl_name(name) {
            errs.push(FieldError::invalid(
                &path,
                name,
                format!(
                    "must have at most {SYSCTL_MAX_LENGTH} characters and match regex {SYSCTL_FMT}"
                ),
            ));
        } else if names.contains(name) {
            errs.push(FieldError::duplicate(&path, name));
        }
        let host = match sysctl_namespace(name) {
            Some("net") if crate::json::is_true(spec, "hostNetwork") => Some("host net"),
            Some("ipc") if crate::json::is_true(spec, "hostIPC") => Some("host ipc"),
            _ => None,
        };
        if let Some(host) = host {
            errs.push(FieldError::forbidden(
                &path,
                format!("sysctl \"{name}\" not allowed with {host} enabled"),
            ));
        }
        names.insert(name);
    }
    errs
}

/// `ValidatePodTemplateSpec` at `base` (e.g. "spec.template").
pub fn validate_pod_template_spec(tpl: &Value, base: &str) -> Errors {
    let mut errs = Vec::new();
    let meta = at(tpl, &["metadata"]);
    errs.extend(validate_labels(meta.get("labels"), &child(base, "labels")));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        &child(base, "annotations"),
    ));
    static NULL: Value = Value::Null;
    let spec = tpl.get("spec").unwrap_or(&NULL);
    errs.extend(validate_pod_spec(spec, &child(base, "spec"), false));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            &child(base, "spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

const POD_RULES: MetaRules = MetaRules {
    namespaced: Some(true),
    name: name_subdomain,
    builtin: true,
};

fn validate_pod_metadata_and_spec(pod: &Value) -> Errors {
    static NULL: Value = Value::Null;
    let mut errs = validate_object_meta(pod, &POD_RULES);
    let spec = pod.get("spec").unwrap_or(&NULL);
    errs.extend(validate_pod_spec(spec, "spec", true));
    if s(spec, "serviceAccountName").is_empty() {
        for (vi, vol) in arr(spec, "volumes").iter().enumerate() {
            for (si, src) in arr(at(vol, &["projected"]), "sources").iter().enumerate() {
                if has(src, "serviceAccountToken") {
                    let p =
                        format!("spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken");
                    errs.push(FieldError::forbidden(
                        &p,
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for k in ["containers", "initContainers"] {
        for (i, c) in arr(spec, k).iter().enumerate() {
            let image = s(c, "image");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &format!("spec.{k}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodCreate`.
pub fn validate_pod_create(pod: &Value) -> Errors {
    let mut errs = validate_pod_metadata_and_spec(pod);
    let spec = at(pod, &["spec"]);
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    if !s(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        errs.push(FieldError::forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

/// Fields a pod update may change, as listed in upstream's message.
const UPDATABLE_POD_FIELDS: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

fn container_updates(new: &[Value], old: &[Value], base: &str) -> (Errors, bool) {
    let mut errs = Vec::new();
    if new.len() != old.len() {
        errs.push(FieldError::forbidden(
            base,
            "pod updates may not add or remove containers",
        ));
        return (errs, true);
    }
    for (i, c) in new.iter().enumerate() {
        let image = s(c, "image");
        if image.is_empty() {
            errs.push(FieldError::required(&format!("{base}[{i}].image"), ""));
        }
        if image.trim() != image {
            errs.push(FieldError::invalid(
                &format!("{base}[{i}].image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    (errs, false)
}

/// A cmp.Diff-like rendering of top-level PodSpec differences.
fn spec_diff(old: &Value, new: &Value) -> String {
    let empty = serde_json::Map::new();
    let (om, nm) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: BTreeSet<&String> = om.keys().collect();
    keys.extend(nm.keys());
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (o, n) = (om.get(k), nm.get(k));
        if o == n {
            continue;
        }
        let field = go_field_name(k);
        if let Some(o) = o {
            out.push_str(&format!("- \t{field}: {o},\n"));
        }
        if let Some(n) = n {
            out.push_str(&format!("+ \t{field}: {n},\n"));
        }
    }
    out.push_str("  }\n");
    out
}

fn go_field_name(k: &str) -> String {
    let mut c = k.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Fields an ephemeral container may set (upstream's allow list).
const EPHEMERAL_FIELDS: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "envFrom",
    "env",
    "volumeMounts",
    "volumeDevices",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
    "targetContainerName",
];
const NOT_FOR_EPHEMERAL: &str = "cannot be set for an Ephemeral Container";

/// `validateEphemeralContainers` of a pod spec.
fn validate_ephemeral_containers(spec: &Value, base: &str) -> Errors {
    let mut errs = Vec::new();
    let volumes: BTreeSet<String> = arr(spec, "volumes")
        .iter()
        .map(|v| s(v, "name").to_owned())
        .collect();
    let targets: BTreeSet<&str> = arr(spec, "containers")
        .iter()
        .chain(arr(spec, "initContainers"))
        .map(|c| s(c, "name"))
        .collect();
    let mut names = targets.clone();
    for (i, ec) in arr(spec, "ephemeralContainers").iter().enumerate() {
        let p = index(base, i);
        errs.extend(validate_container_common(ec, &volumes, &p));
        let name = s(ec, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&child(&p, "name"), name));
        }
        let target = s(ec, "targetContainerName");
        if !target.is_empty() && !targets.contains(target) {
            errs.push(FieldError::not_found(
                &child(&p, "targetContainerName"),
                target,
            ));
        }
        for k in ec.as_object().into_iter().flat_map(|o| o.keys()) {
            // Set means not the zero value (defaulting adds `resources: {}`).
            let zero = match &ec[k] {
                Value::Null => true,
                Value::Object(o) => o.is_empty(),
                Value::Array(a) => a.is_empty(),
                _ => false,
            };
            if !EPHEMERAL_FIELDS.contains(&k.as_str()) && !zero {
                errs.push(FieldError::forbidden(&child(&p, k), NOT_FOR_EPHEMERAL));
            }
        }
        for (j, m) in arr(ec, "volumeMounts").iter().enumerate() {
            for k in ["subPath", "subPathExpr"] {
                if !s(m, k).is_empty() {
                    let mp = child(&index(&child(&p, "volumeMounts"), j), k);
                    errs.push(FieldError::forbidden(&mp, NOT_FOR_EPHEMERAL));
                }
            }
        }
    }
    errs
}

/// `ValidatePodEphemeralContainersUpdate`: new ones valid; existing ones
/// neither removed nor changed.
pub fn validate_pod_ephemeral_containers_update(new: &Value, old: &Value) -> Errors {
    let mut errs = validate_object_meta_update(new, old, true);
    errs.extend(validate_pod_metadata_and_spec(new));
    let mirror = at(old, &["metadata", "annotations"]).get("kubernetes.io/config.mirror");
    if mirror.is_some() {
        return vec![FieldError::forbidden(
            "",
            "static pods do not support ephemeral containers",
        )];
    }
    let ns = at(new, &["spec"]);
    errs.extend(validate_ephemeral_containers(
        ns,
        "spec.ephemeralContainers",
    ));
    let added = arr(ns, "ephemeralContainers");
    for o in arr(at(old, &["spec"]), "ephemeralContainers") {
        let name = s(o, "name");
        match added.iter().find(|n| s(n, "name") == name) {
            None => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!("existing ephemeral containers \"{name}\" may not be removed\n"),
            )),
            Some(n) if n != o => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!("existing ephemeral containers \"{name}\" may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
    errs
}

/// `ValidatePodUpdate`.
pub fn validate_pod_update(new: &Value, old: &Value) -> Errors {
    let mut errs = validate_object_meta_update(new, old, true);
    errs.extend(validate_pod_metadata_and_spec(new));
    static NULL: Value = Value::Null;
    let ns = new.get("spec").unwrap_or(&NULL);
    let os = old.get("spec").unwrap_or(&NULL);
    for k in ["containers", "initContainers"] {
        let (e, stop) = container_updates(arr(ns, k), arr(os, k), &format!("spec.{k}"));
        errs.extend(e);
        if stop {
            return errs;
        }
    }
    match (
        int(ns, "activeDeadlineSeconds"),
        int(os, "activeDeadlineSeconds"),
    ) {
        (Some(n), old_ads) => {
            if !(0..=MAX_INT32).contains(&n) {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    inclusive_range(0, MAX_INT32),
                ));
                return errs;
            }
            if let Some(o) = old_ads
                && o < n
            {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    let new_tol: Vec<Value> = arr(ns, "tolerations").iter().map(strip).collect();
    if arr(os, "tolerations")
        .iter()
        .any(|t| !new_tol.contains(&strip(t)))
    {
        errs.push(FieldError::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    if ns == os {
        return errs;
    }
    let mut munged = ns.clone();
    if let Some(m) = munged.as_object_mut() {
        for k in ["containers", "initContainers"] {
            if let Some(list) = m.get_mut(k).and_then(Value::as_array_mut) {
                for (i, c) in list.iter_mut().enumerate() {
                    let old_image = arr(os, k).get(i).map(|o| s(o, "image")).unwrap_or("");
                    if let Some(cm) = c.as_object_mut() {
                        cm.insert("image".into(), Value::from(old_image));
                    }
                }
            }
        }
        for k in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match os.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        let old_tgp = int(os, "terminationGracePeriodSeconds");
        if old_tgp.is_some_and(|t| t < 0) && int(ns, "terminationGracePeriodSeconds") == Some(1) {
            m.insert("terminationGracePeriodSeconds".into(), Value::from(old_tgp));
        }
    }
    if &munged != os {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE_POD_FIELDS.join(","),
                spec_diff(os, &munged)
            ),
        ));
    }
    errs
}
