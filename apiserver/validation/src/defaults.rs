//! Upstream `SetDefaults_*` (`pkg/apis/*/v1/defaults.go`) over JSON objects.

use serde_json::{Map, Value, json};

fn set_if_absent(m: &mut Map<String, Value>, k: &str, v: Value) {
    let absent = match m.get(k) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if absent {
        m.insert(k.to_string(), v);
    }
}

/// Ensures `m[k]` is an object and returns it (replacing null/non-objects).
fn obj_entry<'a>(m: &'a mut Map<String, Value>, k: &str) -> Option<&'a mut Map<String, Value>> {
    let entry = m.entry(k.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut()
}

/// A Secret's write-only `stringData` merged into `data`, overwriting keys
/// it shares, as upstream's v1 → internal conversion does on every write.
fn fold_string_data(m: &mut Map<String, Value>) {
    use base64::Engine;
    let Some(Value::Object(strings)) = m.remove("stringData") else {
        return;
    };
    if strings.is_empty() {
        return;
    }
    if let Some(data) = obj_entry(m, "data") {
        for (k, v) in strings {
            if let Some(s) = v.as_str() {
                let encoded = base64::engine::general_purpose::STANDARD.encode(s);
                data.insert(k, Value::String(encoded));
            }
        }
    }
}

/// Object at `m[k]` if it already is one.
fn existing<'a>(m: &'a mut Map<String, Value>, k: &str) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(k).and_then(Value::as_object_mut)
}

fn each_obj(m: &mut Map<String, Value>, k: &str, mut f: impl FnMut(&mut Map<String, Value>)) {
    if let Some(list) = m.get_mut(k).and_then(Value::as_array_mut) {
        for item in list.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

/// Tag-based `imagePullPolicy` default (`SetDefaults_Container`): "latest"
/// or no tag/digest → Always; unparsable references → IfNotPresent.
fn pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, !d.is_empty()),
        None => (image, false),
    };
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, ""),
    };
    let mut parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        parts.remove(0);
    }
    let valid = !repo.is_empty()
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
                })
        });
    if !valid {
        return "IfNotPresent";
    }
    if tag == "latest" || (tag.is_empty() && !digest) {
        "Always"
    } else {
        "IfNotPresent"
    }
}

fn default_http_get(h: &mut Map<String, Value>) {
    if let Some(hg) = existing(h, "httpGet") {
        set_if_absent(hg, "path", json!("/"));
        set_if_absent(hg, "scheme", json!("HTTP"));
    }
}

fn default_probe(p: &mut Map<String, Value>) {
    default_http_get(p);
    for (k, v) in [
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ] {
        if p.get(k).and_then(Value::as_i64).unwrap_or(0) == 0 {
            p.insert(k.to_string(), json!(v));
        }
    }
}

fn default_field_ref(m: &mut Map<String, Value>) {
    if let Some(fr) = existing(m, "fieldRef") {
        set_if_absent(fr, "apiVersion", json!("v1"));
    }
    if let Some(rf) = existing(m, "resourceFieldRef") {
        set_if_absent(rf, "divisor", json!("0"));
    }
}

fn default_container(c: &mut Map<String, Value>, host_network: bool) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    set_if_absent(c, "imagePullPolicy", json!(pull_policy(&image)));
    set_if_absent(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_if_absent(c, "terminationMessagePolicy", json!("File"));
    if !c.get("resources").is_some_and(Value::is_object) {
        c.insert("resources".into(), json!({}));
    }
    each_obj(c, "ports", |p| {
        set_if_absent(p, "protocol", json!("TCP"));
        if host_network
            && p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0
            && let Some(cp) = p.get("containerPort").cloned()
        {
            p.insert("hostPort".into(), cp);
        }
    });
    each_obj(c, "env", |e| {
        if let Some(vf) = existing(e, "valueFrom") {
            default_field_ref(vf);
        }
    });
    for k in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, k) {
            default_probe(p);
        }
    }
    if let Some(lc) = existing(c, "lifecycle") {
        for k in ["postStart", "preStop"] {
            if let Some(h) = existing(lc, k) {
                default_http_get(h);
            }
        }
    }
}

const VOLUME_TYPES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(v: &mut Map<String, Value>) {
    if !VOLUME_TYPES
        .iter()
        .any(|t| v.get(*t).is_some_and(|x| !x.is_null()))
    {
        v.insert("emptyDir".into(), json!({}));
    }
    for k in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = existing(v, k)
            && src.get("defaultMode").is_none_or(Value::is_null)
        {
            src.insert("defaultMode".into(), json!(420));
        }
    }
    if let Some(hp) = existing(v, "hostPath")
        && hp.get("type").is_none_or(Value::is_null)
    {
        hp.insert("type".into(), json!(""));
    }
    if let Some(d) = existing(v, "downwardAPI") {
        each_obj(d, "items", default_field_ref);
    }
    if let Some(p) = existing(v, "projected") {
        each_obj(p, "sources", |src| {
            if let Some(d) = existing(src, "downwardAPI") {
                each_obj(d, "items", default_field_ref);
            }
            if let Some(t) = existing(src, "serviceAccountToken") {
                set_if_absent(t, "expirationSeconds", json!(3600));
            }
        });
    }
}

/// `SetDefaults_PodSpec` and everything nested in it. `host_ports` applies
/// the hostNetwork hostPort defaulting (Pods only, not templates).
fn default_pod_spec(spec: &mut Map<String, Value>, host_ports: bool) {
    set_if_absent(spec, "dnsPolicy", json!("ClusterFirst"));
    set_if_absent(spec, "restartPolicy", json!("Always"));
    if !spec.get("securityContext").is_some_and(Value::is_object) {
        spec.insert("securityContext".into(), json!({}));
    }
    set_if_absent(spec, "terminationGracePeriodSeconds", json!(30));
    set_if_absent(spec, "schedulerName", json!("default-scheduler"));
    let host_network = host_ports && spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    each_obj(spec, "volumes", default_volume);
    for k in ["initContainers", "containers", "ephemeralContainers"] {
        each_obj(spec, k, |c| default_container(c, host_network));
    }
}

fn default_template(m: &mut Map<String, Value>) {
    if let Some(tpl) = existing(m, "template")
        && let Some(spec) = obj_entry(tpl, "spec")
    {
        default_pod_spec(spec, false);
    }
}

fn default_pod(pod: &mut Map<String, Value>) {
    let Some(spec) = obj_entry(pod, "spec") else {
        return;
    };
    default_pod_spec(spec, true);
    for k in ["initContainers", "containers"] {
        each_obj(spec, k, |c| {
            let Some(res) = existing(c, "resources") else {
                return;
            };
            let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
                return;
            };
            if let Some(req) = obj_entry(res, "requests") {
                for (name, q) in limits {
                    req.entry(name).or_insert(q);
                }
            }
        });
    }
    set_if_absent(spec, "enableServiceLinks", json!(true));
}

fn default_service(svc: &mut Map<String, Value>) {
    let Some(spec) = obj_entry(svc, "spec") else {
        return;
    };
    set_if_absent(spec, "sessionAffinity", json!("None"));
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    set_if_absent(spec, "type", json!("ClusterIP"));
    each_obj(spec, "ports", |p| {
        set_if_absent(p, "protocol", json!("TCP"));
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset && let Some(port) = p.get("port").cloned() {
            p.insert("targetPort".into(), port);
        }
    });
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && external_ips);
    if externally {
        set_if_absent(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ["NodePort", "LoadBalancer", "ClusterIP"].contains(&ty.as_str()) {
        set_if_absent(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_if_absent(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn default_deployment(spec: &mut Map<String, Value>) {
    set_if_absent(spec, "replicas", json!(1));
    if let Some(strategy) = obj_entry(spec, "strategy") {
        set_if_absent(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = obj_entry(strategy, "rollingUpdate")
        {
            set_if_absent(ru, "maxUnavailable", json!("25%"));
            set_if_absent(ru, "maxSurge", json!("25%"));
        }
    }
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    set_if_absent(spec, "progressDeadlineSeconds", json!(600));
}

fn default_statefulset(spec: &mut Map<String, Value>) {
    set_if_absent(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(us) = obj_entry(spec, "updateStrategy") {
        if us
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            us.insert("type".into(), json!("RollingUpdate"));
            if us.get("rollingUpdate").is_none_or(Value::is_null) {
                us.insert("rollingUpdate".into(), json!({}));
            }
        }
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = existing(us, "rollingUpdate")
        {
            set_if_absent(ru, "partition", json!(0));
        }
    }
    if let Some(p) = obj_entry(spec, "persistentVolumeClaimRetentionPolicy") {
        set_if_absent(p, "whenDeleted", json!("Retain"));
        set_if_absent(p, "whenScaled", json!("Retain"));
    }
    set_if_absent(spec, "replicas", json!(1));
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    each_obj(spec, "volumeClaimTemplates", |c| {
        if let Some(s) = obj_entry(c, "spec") {
            set_if_absent(s, "volumeMode", json!("Filesystem"));
        }
    });
}

fn default_daemonset(spec: &mut Map<String, Value>) {
    if let Some(us) = obj_entry(spec, "updateStrategy") {
        set_if_absent(us, "type", json!("RollingUpdate"));
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = obj_entry(us, "rollingUpdate")
        {
            set_if_absent(ru, "maxUnavailable", json!(1));
            set_if_absent(ru, "maxSurge", json!(0));
        }
    }
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
}

fn default_job(job: &mut Map<String, Value>) {
    let tpl_labels = job
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    let Some(spec) = obj_entry(job, "spec") else {
        return;
    };
    let absent = |m: &Map<String, Value>, k: &str| m.get(k).is_none_or(Value::is_null);
    if absent(spec, "completions") && absent(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    if absent(spec, "parallelism") {
        spec.insert("parallelism".into(), json!(1));
    }
    if absent(spec, "backoffLimit") {
        let v = if absent(spec, "backoffLimitPerIndex") {
            6
        } else {
            i32::MAX as i64
        };
        spec.insert("backoffLimit".into(), json!(v));
    }
    set_if_absent(spec, "completionMode", json!("NonIndexed"));
    set_if_absent(spec, "suspend", json!(false));
    set_if_absent(spec, "manualSelector", json!(false));
    let prp = if absent(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set_if_absent(spec, "podReplacementPolicy", json!(prp));
    if let Some(pfp) = existing(spec, "podFailurePolicy") {
        each_obj(pfp, "rules", |r| {
            each_obj(r, "onPodConditions", |c| {
                set_if_absent(c, "status", json!("True"))
            });
        });
    }
    default_template(spec);
    if let Some(labels) = tpl_labels
        && let Some(meta) = obj_entry(job, "metadata")
        && meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        meta.insert("labels".into(), labels);
    }
}

fn default_cronjob(spec: &mut Map<String, Value>) {
    set_if_absent(spec, "concurrencyPolicy", json!("Allow"));
    set_if_absent(spec, "suspend", json!(false));
    set_if_absent(spec, "successfulJobsHistoryLimit", json!(3));
    set_if_absent(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(jt) = existing(spec, "jobTemplate")
        && let Some(js) = existing(jt, "spec")
    {
        default_template(js);
    }
}

fn default_rc(rc: &mut Map<String, Value>) {
    let tpl_labels = rc
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    let Some(spec) = obj_entry(rc, "spec") else {
        return;
    };
    set_if_absent(spec, "replicas", json!(1));
    if let Some(labels) = &tpl_labels
        && spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        spec.insert("selector".into(), labels.clone());
    }
    default_template(spec);
    if let Some(labels) = tpl_labels
        && let Some(meta) = obj_entry(rc, "metadata")
        && meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        meta.insert("labels".into(), labels);
    }
}

fn with_spec(m: &mut Map<String, Value>, f: impl FnOnce(&mut Map<String, Value>)) {
    if let Some(spec) = obj_entry(m, "spec") {
        f(spec);
    }
}

/// Upstream's `SetDefaults_LimitRangeItem`: a Container item's default
/// limit comes from its max, its default request from the default limit,
/// then from its min.
fn default_limit_range_item(item: &mut Map<String, Value>) {
    if item.get("type").and_then(Value::as_str) != Some("Container") {
        return;
    }
    let list = |item: &Map<String, Value>, k: &str| {
        item.get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (max, min) = (list(item, "max"), list(item, "min"));
    let mut default = list(item, "default");
    for (k, v) in max {
        default.entry(k).or_insert(v);
    }
    let mut request = list(item, "defaultRequest");
    for (k, v) in default.iter().chain(&min) {
        request.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if !default.is_empty() {
        item.insert("default".into(), Value::Object(default));
    }
    if !request.is_empty() {
        item.insert("defaultRequest".into(), Value::Object(request));
    }
}

/// Applies upstream's v1 defaulting for `group`/`resource` in place.
pub fn default(group: &str, resource: &str, obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    match (group, resource) {
        ("", "pods") => default_pod(m),
        ("", "podtemplates") => default_template(m),
        ("", "replicationcontrollers") => default_rc(m),
        ("", "services") => default_service(m),
        ("", "secrets") => {
            set_if_absent(m, "type", json!("Opaque"));
            fold_string_data(m);
        }
        ("", "limitranges") => with_spec(m, |s| each_obj(s, "limits", default_limit_range_item)),
        ("", "namespaces") => {
            let name = m
                .get("metadata")
                .and_then(|x| x.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !name.is_empty()
                && let Some(meta) = obj_entry(m, "metadata")
                && let Some(labels) = obj_entry(meta, "labels")
            {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        ("apps", "deployments") => with_spec(m, |s| {
            default_deployment(s);
            default_template(s);
        }),
        ("apps", "replicasets") => with_spec(m, |s| {
            set_if_absent(s, "replicas", json!(1));
            default_template(s);
        }),
        ("apps", "statefulsets") => with_spec(m, |s| {
            default_statefulset(s);
            default_template(s);
        }),
        ("apps", "daemonsets") => with_spec(m, |s| {
            default_daemonset(s);
            default_template(s);
        }),
        ("batch", "jobs") => default_job(m),
        ("batch", "cronjobs") => with_spec(m, default_cronjob),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{default, pull_policy};
    use serde_json::json;

    #[test]
    fn secret_string_data_is_folded_into_data() {
        let mut s =
            json!({"data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "hi", "c": "yo"}});
        default("", "secrets", &mut s);
        assert_eq!(
            s,
            json!({"type": "Opaque", "data": {"a": "eA==", "b": "aGk=", "c": "eW8="}})
        );
    }

    #[test]
    fn pull_policies() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(pull_policy("localhost:5000/nginx:1"), "IfNotPresent");
        assert_eq!(pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }
}
