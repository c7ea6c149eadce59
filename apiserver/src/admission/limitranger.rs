//! LimitRanger: a namespace's LimitRanges default containers' requests and
//! limits (recorded in the `kubernetes.io/limit-ranger` annotation), then
//! bound them: min, max and maxLimitRequestRatio per Container and per Pod.

use rkube_quota::{Quantity, ResourceList, parse_list, pod_limits, pod_requests, to_json};
use serde_json::{Map, Value, json};

use super::{aggregate, forbidden, list_namespaced};
use crate::registry::{Registry, Resource};
use crate::status::ApiError;

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// One `spec.limits[]` item with the LimitRange defaulting applied for
/// Container items (default ← max, defaultRequest ← default, then min).
struct Item {
    kind: String,
    min: ResourceList,
    max: ResourceList,
    default: ResourceList,
    default_request: ResourceList,
    ratio: ResourceList,
}

fn items(range: &Value) -> Vec<Item> {
    range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|i| {
            let get = |k: &str| parse_list(i.get(k));
            let mut item = Item {
                kind: i
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                min: get("min"),
                max: get("max"),
                default: get("default"),
                default_request: get("defaultRequest"),
                ratio: get("maxLimitRequestRatio"),
            };
            if item.kind == "Container" {
                for (k, v) in &item.max {
                    item.default.entry(k.clone()).or_insert(*v);
                }
                for (k, v) in item.default.iter().chain(&item.min) {
                    item.default_request.entry(k.clone()).or_insert(*v);
                }
            }
            item
        })
        .collect()
}

pub async fn admit_pod(
    reg: &Registry,
    r: &Resource,
    ns: &str,
    pod: &mut Value,
) -> Result<(), ApiError> {
    let ranges = list_namespaced(reg, "limitranges", ns).await?;
    if ranges.is_empty() {
        return Ok(());
    }
    let all: Vec<Vec<Item>> = ranges.iter().map(|s| items(&s.value)).collect();
    for items in &all {
        set_defaults(items, pod);
    }
    let mut errs = Vec::new();
    for items in &all {
        validate(items, pod, &mut errs);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(forbidden(r, pod, &aggregate(&errs)))
    }
}

/// Fills unset requests and limits of every container from the Container
/// items' defaults, as upstream's `mergePodResourceRequirements`.
fn set_defaults(items: &[Item], pod: &mut Value) {
    let mut limits = ResourceList::new();
    let mut requests = ResourceList::new();
    for item in items.iter().filter(|i| i.kind == "Container") {
        limits.extend(item.default.clone());
        requests.extend(item.default_request.clone());
    }
    if limits.is_empty() && requests.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (key, prefix) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(list) = pod
            .pointer_mut(&format!("/spec/{key}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in list {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let set_requests = fill(c, "requests", &requests);
            let set_limits = fill(c, "limits", &limits);
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {prefix} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!(
                    "{} limit for {prefix} {name}",
                    set_limits.join(", ")
                ));
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    let meta = crate::meta::meta_mut(pod);
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(
            ANNOTATION.into(),
            json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
        );
    }
}

/// Sets the missing entries of a container's `resources.<which>`; returns
/// the names set, sorted.
fn fill(container: &mut Value, which: &str, defaults: &ResourceList) -> Vec<String> {
    if defaults.is_empty() {
        return Vec::new();
    }
    let have = parse_list(container.pointer(&format!("/resources/{which}")));
    let missing: ResourceList = defaults
        .iter()
        .filter(|(k, _)| !have.contains_key(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let Some(c) = container.as_object_mut() else {
        return Vec::new();
    };
    let resources = c
        .entry("resources")
        .or_insert_with(|| Value::Object(Map::new()));
    if !resources.is_object() {
        *resources = Value::Object(Map::new());
    }
    let list = &mut resources[which];
    if !list.is_object() {
        *list = Value::Object(Map::new());
    }
    if let (Some(list), Value::Object(add)) = (list.as_object_mut(), to_json(&missing)) {
        list.extend(add);
    }
    missing.into_keys().collect()
}

fn validate(items: &[Item], pod: &Value, errs: &mut Vec<String>) {
    for item in items {
        match item.kind.as_str() {
            "Container" => {
                for key in ["containers", "initContainers"] {
                    for c in pod
                        .pointer(&format!("/spec/{key}"))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let req = parse_list(c.pointer("/resources/requests"));
                        let lim = parse_list(c.pointer("/resources/limits"));
                        bounds(item, "Container", &req, &lim, errs);
                    }
                }
            }
            "Pod" => bounds(item, "Pod", &pod_requests(pod), &pod_limits(pod), errs),
            _ => {}
        }
    }
}

/// Upstream's min, max and limit/request ratio constraints, with their
/// messages.
fn bounds(item: &Item, kind: &str, req: &ResourceList, lim: &ResourceList, errs: &mut Vec<String>) {
    for (r, min) in &item.min {
        match req.get(r) {
            None => errs.push(format!(
                "minimum {r} usage per {kind} is {min}.  No request is specified"
            )),
            Some(q) if q < min => errs.push(format!(
                "minimum {r} usage per {kind} is {min}, but request is {q}"
            )),
            _ => match lim.get(r) {
                Some(l) if l < min => errs.push(format!(
                    "minimum {r} usage per {kind} is {min}, but limit is {l}"
                )),
                _ => {}
            },
        }
    }
    for (r, max) in &item.max {
        match lim.get(r) {
            None => errs.push(format!(
                "maximum {r} usage per {kind} is {max}.  No limit is specified"
            )),
            Some(l) if l > max => errs.push(format!(
                "maximum {r} usage per {kind} is {max}, but limit is {l}"
            )),
            _ => match req.get(r) {
                Some(q) if q > max => errs.push(format!(
                    "maximum {r} usage per {kind} is {max}, but request is {q}"
                )),
                _ => {}
            },
        }
    }
    for (r, ratio) in &item.ratio {
        let q = req.get(r).filter(|q| !q.is_zero());
        let l = lim.get(r).filter(|l| !l.is_zero());
        match (q, l) {
            (None, _) => errs.push(format!(
                "{r} max limit to request ratio per {kind} is {ratio}, but no request is specified or request is 0"
            )),
            (_, None) => errs.push(format!(
                "{r} max limit to request ratio per {kind} is {ratio}, but no limit is specified or limit is 0"
            )),
            (Some(q), Some(l)) => {
                let observed = l.ratio(q);
                if observed > ratio.ratio(&Quantity::from_int(1)) {
                    errs.push(format!(
                        "{r} max limit to request ratio per {kind} is {ratio}, but provided ratio is {observed:.6}"
                    ));
                }
            }
        }
    }
}
