//! Workload controllers: deployments, replica sets, replication
//! controllers, stateful sets, daemon sets, jobs, cron jobs, HPAs, PDBs,
//! controller revisions and pod templates.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::duration::{human_duration, parse_time, since};
use crate::util::{
    age, arr_at, bool_ptr, deleting, format_label_selector, format_labels, get, int_at,
    int_or_string, layout_containers, name, opt_bool, opt_int, opt_str, selector_string, str_at,
    template_containers,
};

/// `spec.replicas`, which the API server defaults to 1.
fn desired_replicas(obj: &Value) -> i64 {
    opt_int(obj, &["spec", "replicas"]).unwrap_or(1)
}

fn containers_and_images(obj: &Value, template: &[&str]) -> (Value, Value) {
    let (n, i) = layout_containers(template_containers(obj, template));
    (json!(n), json!(i))
}

pub fn deployment(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = containers_and_images(obj, &["spec", "template"]);
    let selector = selector_string(get(obj, &["spec", "selector"]))
        .unwrap_or_else(|()| "<invalid>".to_string());
    vec![
        json!(name(obj)),
        json!(format!(
            "{}/{}",
            int_at(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        json!(int_at(obj, &["status", "updatedReplicas"])),
        json!(int_at(obj, &["status", "availableReplicas"])),
        json!(age(obj, now)),
        names,
        images,
        json!(selector),
    ]
}

pub fn replica_set(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = containers_and_images(obj, &["spec", "template"]);
    vec![
        json!(name(obj)),
        json!(desired_replicas(obj)),
        json!(int_at(obj, &["status", "replicas"])),
        json!(int_at(obj, &["status", "readyReplicas"])),
        json!(age(obj, now)),
        names,
        images,
        json!(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

pub fn replication_controller(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = containers_and_images(obj, &["spec", "template"]);
    vec![
        json!(name(obj)),
        json!(desired_replicas(obj)),
        json!(int_at(obj, &["status", "replicas"])),
        json!(int_at(obj, &["status", "readyReplicas"])),
        json!(age(obj, now)),
        names,
        images,
        json!(format_labels(get(obj, &["spec", "selector"]))),
    ]
}

pub fn stateful_set(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = containers_and_images(obj, &["spec", "template"]);
    vec![
        json!(name(obj)),
        json!(format!(
            "{}/{}",
            int_at(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        json!(age(obj, now)),
        names,
        images,
    ]
}

pub fn daemon_set(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = containers_and_images(obj, &["spec", "template"]);
    let st = |f: &str| json!(int_at(obj, &["status", f]));
    vec![
        json!(name(obj)),
        st("desiredNumberScheduled"),
        st("currentNumberScheduled"),
        st("numberReady"),
        st("updatedNumberScheduled"),
        st("numberAvailable"),
        json!(format_labels(get(
            obj,
            &["spec", "template", "spec", "nodeSelector"]
        ))),
        json!(age(obj, now)),
        names,
        images,
        json!(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

/// First condition of `type_` decides (upstream's `hasJobCondition`).
fn job_condition(obj: &Value, type_: &str) -> bool {
    arr_at(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

pub fn job(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int_at(obj, &["status", "succeeded"]);
    let completions = match opt_int(obj, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = opt_int(obj, &["spec", "parallelism"]).unwrap_or(0);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = opt_str(obj, &["status", "startTime"]).and_then(parse_time);
    let end = opt_str(obj, &["status", "completionTime"]).and_then(parse_time);
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now - s),
        (Some(s), Some(e)) => human_duration(e - s),
    };
    let status = if job_condition(obj, "Complete") {
        "Complete"
    } else if job_condition(obj, "Failed") {
        "Failed"
    } else if deleting(obj) {
        "Terminating"
    } else if job_condition(obj, "Suspended") {
        "Suspended"
    } else if job_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers_and_images(obj, &["spec", "template"]);
    vec![
        json!(name(obj)),
        json!(status),
        json!(completions),
        json!(duration),
        json!(age(obj, now)),
        names,
        images,
        json!(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

pub fn cron_job(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last = match opt_str(obj, &["status", "lastScheduleTime"]) {
        Some(t) => since(Some(t), now),
        None => "<none>".to_string(),
    };
    let (names, images) = containers_and_images(obj, &["spec", "jobTemplate", "spec", "template"]);
    vec![
        json!(name(obj)),
        json!(str_at(obj, &["spec", "schedule"])),
        json!(opt_str(obj, &["spec", "timeZone"]).unwrap_or("<none>")),
        json!(bool_ptr(opt_bool(obj, &["spec", "suspend"]))),
        json!(arr_at(obj, &["status", "active"]).len()),
        json!(last),
        json!(age(obj, now)),
        names,
        images,
        json!(format_label_selector(get(
            obj,
            &["spec", "jobTemplate", "spec", "selector"]
        ))),
    ]
}

pub fn pod_disruption_budget(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let field = |f: &str| {
        get(obj, &["spec", f])
            .filter(|v| !v.is_null())
            .map_or_else(|| "N/A".to_string(), int_or_string)
    };
    vec![
        json!(name(obj)),
        json!(field("minAvailable")),
        json!(field("maxUnavailable")),
        json!(int_at(obj, &["status", "disruptionsAllowed"])),
        json!(age(obj, now)),
    ]
}

pub fn pod_template(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = containers_and_images(obj, &["template"]);
    vec![
        json!(name(obj)),
        names,
        images,
        json!(format_labels(get(obj, &["template", "metadata", "labels"]))),
    ]
}

pub fn controller_revision(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let owner = arr_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| opt_bool(o, &["controller"]) == Some(true));
    let controller = match owner {
        None => "<none>".to_string(),
        Some(o) => {
            // GroupKind rendered as "kind.group" (just "kind" for core), lowercased.
            let api_version = str_at(o, &["apiVersion"]);
            let group = match api_version.rsplit_once('/') {
                Some((g, _)) => g,
                None => "",
            };
            let kind = str_at(o, &["kind"]);
            let gk = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            if gk.is_empty() {
                str_at(o, &["name"]).to_string()
            } else {
                format!("{}/{}", gk.to_lowercase(), str_at(o, &["name"]))
            }
        }
    };
    vec![
        json!(name(obj)),
        json!(controller),
        json!(int_at(obj, &["revision"])),
        json!(age(obj, now)),
    ]
}

/// Renders `Quantity.String()` of an optional stored quantity.
fn qty(v: Option<&Value>) -> Option<String> {
    v.filter(|x| !x.is_null()).map(int_or_string)
}

/// `formatHPAMetrics`: at most two entries, then "+ N more...".
fn hpa_metrics(obj: &Value) -> String {
    let specs = arr_at(obj, &["spec", "metrics"]);
    let statuses = arr_at(obj, &["status", "currentMetrics"]);
    if specs.is_empty() {
        // autoscaling/v1 shape: a single CPU utilization target.
        if let Some(target) = opt_int(obj, &["spec", "targetCPUUtilizationPercentage"]) {
            let current = opt_int(obj, &["status", "currentCPUUtilizationPercentage"])
                .map_or_else(|| "<unknown>".to_string(), |c| format!("{c}%"));
            return format!("cpu: {current}/{target}%");
        }
        return "<none>".to_string();
    }
    const MAX: usize = 2;
    let unknown = || "<unknown>".to_string();
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let entry = match str_at(spec, &["type"]) {
            "External" | "Object" => {
                let key = if str_at(spec, &["type"]) == "External" {
                    "external"
                } else {
                    "object"
                };
                let st = status.and_then(|s| s.get(key)).filter(|v| v.is_object());
                if let Some(avg) = qty(get(spec, &[key, "target", "averageValue"])) {
                    let current = st
                        .and_then(|s| qty(get(s, &["current", "averageValue"])))
                        .unwrap_or_else(unknown);
                    format!("{current}/{avg} (avg)")
                } else {
                    let current = st
                        .map(|s| crate::util::quantity(get(s, &["current", "value"])))
                        .unwrap_or_else(unknown);
                    let target = crate::util::quantity(get(spec, &[key, "target", "value"]));
                    format!("{current}/{target}")
                }
            }
            "Pods" => {
                let current = status
                    .and_then(|s| s.get("pods"))
                    .filter(|v| v.is_object())
                    .map(|s| crate::util::quantity(get(s, &["current", "averageValue"])))
                    .unwrap_or_else(unknown);
                let target = crate::util::quantity(get(spec, &["pods", "target", "averageValue"]));
                format!("{current}/{target}")
            }
            "Resource" | "ContainerResource" => {
                let key = if str_at(spec, &["type"]) == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let st = status.and_then(|s| s.get(key)).filter(|v| v.is_object());
                let res = str_at(spec, &[key, "name"]);
                if let Some(avg) = qty(get(spec, &[key, "target", "averageValue"])) {
                    let current = st
                        .map(|s| crate::util::quantity(get(s, &["current", "averageValue"])))
                        .unwrap_or_else(unknown);
                    format!("{res}: {current}/{avg}")
                } else {
                    let current = st
                        .and_then(|s| opt_int(s, &["current", "averageUtilization"]))
                        .map_or_else(unknown, |u| format!("{u}%"));
                    let target = opt_int(spec, &[key, "target", "averageUtilization"])
                        .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                    format!("{res}: {current}/{target}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

pub fn horizontal_pod_autoscaler(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(obj, &["spec", "scaleTargetRef", "kind"]),
        str_at(obj, &["spec", "scaleTargetRef", "name"])
    );
    let min_pods = opt_int(obj, &["spec", "minReplicas"])
        .map_or_else(|| "<unset>".to_string(), |m| m.to_string());
    vec![
        json!(name(obj)),
        json!(reference),
        json!(hpa_metrics(obj)),
        json!(min_pods),
        json!(int_at(obj, &["spec", "maxReplicas"])),
        json!(int_at(obj, &["status", "currentReplicas"])),
        json!(age(obj, now)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_time("2024-01-01T01:00:00Z").unwrap()
    }

    fn meta(extra: Value) -> Value {
        let mut v = json!({"metadata": {"name": "x", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        if let (Some(dst), Some(src)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in src {
                dst.insert(k.clone(), val.clone());
            }
        }
        v
    }

    fn template() -> Value {
        json!({"spec": {"containers": [
            {"name": "web", "image": "nginx:1"}, {"name": "side", "image": "busybox"}]}})
    }

    #[test]
    fn deployment_cells() {
        let d = meta(json!({
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        }));
        assert_eq!(
            deployment(&d, now()),
            vec![
                json!("x"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("60m"),
                json!("web,side"),
                json!("nginx:1,busybox"),
                json!("app=web")
            ]
        );
        let empty = meta(json!({}));
        assert_eq!(deployment(&empty, now())[1], json!("0/1"));
        assert_eq!(deployment(&empty, now())[7], json!(""));
    }

    #[test]
    fn replica_set_and_rc_cells() {
        let rs = meta(
            json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}, "template": template()},
                             "status": {"replicas": 2, "readyReplicas": 1}}),
        );
        assert_eq!(
            replica_set(&rs, now())[1..4],
            [json!(2), json!(2), json!(1)]
        );
        assert_eq!(replica_set(&rs, now())[7], json!("a=b"));
        let rc = meta(json!({"spec": {"replicas": 0, "selector": {"a": "b"}}}));
        let c = replication_controller(&rc, now());
        assert_eq!(c[1], json!(0));
        assert_eq!(c[5], json!(""));
        assert_eq!(c[7], json!("a=b"));
    }

    #[test]
    fn statefulset_and_daemonset_cells() {
        let ss = meta(json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}}));
        assert_eq!(stateful_set(&ss, now())[1], json!("3/3"));
        let ds = meta(json!({
            "spec": {"selector": {"matchLabels": {"k": "v"}}, "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1}
        }));
        let c = daemon_set(&ds, now());
        assert_eq!(
            c[1..7],
            [
                json!(2),
                json!(2),
                json!(1),
                json!(2),
                json!(1),
                json!("kubernetes.io/os=linux")
            ]
        );
        assert_eq!(c[10], json!("k=v"));
        assert_eq!(daemon_set(&meta(json!({})), now())[6], json!("<none>"));
    }

    #[test]
    fn job_status_and_completions() {
        let done = meta(json!({
            "spec": {"completions": 1, "parallelism": 1},
            "status": {"succeeded": 1, "startTime": "2024-01-01T00:00:00Z", "completionTime": "2024-01-01T00:00:12Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}
        }));
        let c = job(&done, now());
        assert_eq!(c[1..4], [json!("Complete"), json!("1/1"), json!("12s")]);
        let running = meta(
            json!({"spec": {"parallelism": 3}, "status": {"startTime": "2024-01-01T00:58:00Z"}}),
        );
        assert_eq!(
            job(&running, now())[1..4],
            [json!("Running"), json!("0/1 of 3"), json!("2m")]
        );
        let suspended = meta(json!({"spec": {"completions": 5},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]}}));
        assert_eq!(
            job(&suspended, now())[1..4],
            [json!("Suspended"), json!("0/5"), json!("")]
        );
        let failed =
            meta(json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}));
        assert_eq!(job(&failed, now())[1], json!("Failed"));
        let mut term = meta(json!({}));
        term["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert_eq!(job(&term, now())[1], json!("Terminating"));
    }

    #[test]
    fn cron_job_cells() {
        let cj = meta(json!({
            "spec": {"schedule": "*/5 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": template()}}},
            "status": {"active": [{"name": "j"}], "lastScheduleTime": "2024-01-01T00:55:00Z"}
        }));
        let c = cron_job(&cj, now());
        assert_eq!(
            c[1..7],
            [
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("5m"),
                json!("60m")
            ]
        );
        assert_eq!(c[9], json!("<none>"));
        let bare = meta(json!({"spec": {"schedule": "@daily", "timeZone": "Etc/UTC"}}));
        let c = cron_job(&bare, now());
        assert_eq!(
            c[2..6],
            [
                json!("Etc/UTC"),
                json!("<unset>"),
                json!(0),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pdb_cells() {
        let p = meta(json!({"spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}));
        assert_eq!(
            pod_disruption_budget(&p, now())[1..4],
            [json!("50%"), json!("N/A"), json!(1)]
        );
        let p = meta(json!({"spec": {"maxUnavailable": 1}}));
        assert_eq!(
            pod_disruption_budget(&p, now())[1..3],
            [json!("N/A"), json!("1")]
        );
    }

    #[test]
    fn hpa_cells() {
        let h = meta(json!({
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
            "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}]}
        }));
        assert_eq!(
            horizontal_pod_autoscaler(&h, now())[1..6],
            [
                json!("Deployment/web"),
                json!("cpu: 12%/80%"),
                json!("1"),
                json!(5),
                json!(2)
            ]
        );
        let h = meta(
            json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 50}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"averageValue": "100Mi"}}},
                {"type": "Pods", "pods": {"target": {"averageValue": "1k"}}}
            ]}}),
        );
        assert_eq!(
            horizontal_pod_autoscaler(&h, now())[2..4],
            [
                json!("cpu: <unknown>/50%, memory: <unknown>/100Mi + 1 more..."),
                json!("<unset>")
            ]
        );
        let v1 = meta(
            json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 2,
            "targetCPUUtilizationPercentage": 70}}),
        );
        assert_eq!(
            horizontal_pod_autoscaler(&v1, now())[2],
            json!("cpu: <unknown>/70%")
        );
    }

    #[test]
    fn controller_revision_cells() {
        let cr = meta(
            json!({"revision": 2, "metadata": {"name": "r", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}]}}),
        );
        assert_eq!(
            controller_revision(&cr, now())[1..3],
            [json!("statefulset.apps/db"), json!(2)]
        );
    }
}
