//! `pods/log`: the container picked and the options checked as upstream's
//! pod REST storage does, then the kubelet's `/containerLogs` streamed back.

use std::collections::HashMap;

use http::Response;
use serde_json::Value;

use crate::http_util::Body;
use crate::registry::Resource;
use crate::server::ApiServer;
use crate::status::ApiError;

fn names(pod: &Value, key: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{key}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Upstream's `ValidateContainer`: the named container must exist; with no
/// name, a pod of one container means that one.
pub fn pick_container(pod: &Value, name: &str, wanted: Option<&str>) -> Result<String, ApiError> {
    let containers = names(pod, "containers");
    let all: Vec<String> = names(pod, "initContainers")
        .into_iter()
        .chain(containers.iter().cloned())
        .chain(names(pod, "ephemeralContainers"))
        .collect();
    match wanted.filter(|w| !w.is_empty()) {
        Some(w) if all.iter().any(|c| c == w) => Ok(w.to_owned()),
        Some(w) => Err(ApiError::bad_request(format!(
            "container {w} is not valid for pod {name}"
        ))),
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                all.join(" ")
            ))),
        },
    }
}

/// The kubelet query for the PodLogOptions in `q`, validated as upstream's
/// `ValidatePodLogOptions` (422 naming the PodLogOptions).
pub fn kubelet_query(name: &str, q: &HashMap<String, String>) -> Result<String, ApiError> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let int = |k: &str| -> Result<Option<i64>, ApiError> {
        q.get(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v:?}")))
            })
            .transpose()
    };
    for (k, min, detail) in [
        ("tailLines", 0, "must be greater than or equal to 0"),
        ("limitBytes", 1, "must be greater than 0"),
        ("sinceSeconds", 1, "must be greater than 0"),
    ] {
        if let Some(v) = int(k)? {
            if v < min {
                errs.push(rkube_validation::FieldError::invalid(k, v, detail));
            }
            out.push(format!("{k}={v}"));
        }
    }
    let since_time = q.get("sinceTime").filter(|v| !v.is_empty());
    if since_time.is_some() && q.get("sinceSeconds").is_some_and(|v| !v.is_empty()) {
        errs.push(rkube_validation::FieldError::forbidden(
            "",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid("", "PodLogOptions", name, &errs));
    }
    if let Some(t) = since_time {
        out.push(format!(
            "sinceTime={}",
            form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
        ));
    }
    for flag in ["follow", "previous", "timestamps"] {
        if q.get(flag).is_some_and(|v| v == "true" || v == "1") {
            out.push(format!("{flag}=true"));
        }
    }
    Ok(out.join("&"))
}

pub async fn serve(
    api: &ApiServer,
    r: &Resource,
    ns: Option<&str>,
    name: &str,
    q: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let pod = api.registry.get(r, ns, name).await?;
    let container = pick_container(&pod, name, q.get("container").map(String::as_str))?;
    let query = kubelet_query(name, q)?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if node_name.is_empty() {
        // Upstream: a pod on no node has no log location, and no logs.
        return Ok(crate::http_util::bytes_response(
            http::StatusCode::OK,
            "text/plain",
            Vec::new(),
        ));
    }
    let nodes = api
        .catalogue
        .resource("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let node = api.registry.get(&nodes, None, node_name).await?;
    let (host, port) = crate::kubelet_client::kubelet_location(&node).ok_or_else(|| {
        ApiError::internal(format!("node {node_name} has no address for its kubelet"))
    })?;
    let client = api
        .kubelet
        .as_ref()
        .ok_or_else(|| ApiError::internal("no kubelet client certificate configured"))?;
    let ns = ns.unwrap_or_default();
    let mut path = format!("/containerLogs/{ns}/{name}/{container}");
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    let resp = client.get(&host, port, &path).await?;
    crate::kubelet_client::pass_through(resp, "text/plain").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_choice_as_upstream() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}],
        }});
        assert_eq!(pick_container(&pod, "p", Some("init")).unwrap(), "init");
        assert_eq!(
            pick_container(&pod, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [init a b]"
        );
        assert_eq!(
            pick_container(&pod, "p", Some("x")).unwrap_err().message,
            "container x is not valid for pod p"
        );
        let one = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(pick_container(&one, "p", None).unwrap(), "only");
    }

    #[test]
    fn options_checked_as_upstream() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            kubelet_query("p", &q(&[("tailLines", "5"), ("follow", "true")])).unwrap(),
            "tailLines=5&follow=true"
        );
        let err = kubelet_query("p", &q(&[("tailLines", "-1")])).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            kubelet_query("p", &q(&[("limitBytes", "x")]))
                .unwrap_err()
                .code,
            400
        );
    }
}
