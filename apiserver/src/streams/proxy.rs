//! The `proxy` subresources: a request passed on to a pod's address, to a
//! ready endpoint of a service, or to a node's kubelet. The name may carry
//! a scheme and a port (`https:web:8443`), as upstream's
//! `SplitSchemeNamePort`.

use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::Value;

use super::forward::{Backend, forward};
use crate::http_util::Body;
use crate::registry::Resource;
use crate::server::ApiServer;
use crate::status::ApiError;

/// `[scheme:]name[:port]`; `None` when malformed.
fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    if name.is_empty() || !matches!(scheme, "" | "http" | "https") {
        return None;
    }
    Some((scheme, name, port))
}

/// The path past `{id}/proxy` in the request (`/` when none), with its
/// query.
fn proxied_path(req: &Request<Incoming>, id: &str) -> String {
    let path = req.uri().path();
    let marker = format!("/{id}/proxy/");
    let rest = path
        .find(&marker)
        .map(|i| &path[i + marker.len() - 1..])
        .unwrap_or("/");
    match req.uri().query() {
        Some(q) if !q.is_empty() => format!("{rest}?{q}"),
        _ => rest.to_owned(),
    }
}

fn invalid(id: &str) -> ApiError {
    ApiError::bad_request(format!("invalid request {id:?}"))
}

fn port_number(port: &str) -> Result<u16, ApiError> {
    port.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid port {port:?}")))
}

/// `pods/proxy`: the pod's IP, at the given port or its first declared one.
pub async fn pod(
    api: &ApiServer,
    r: &Resource,
    ns: Option<&str>,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (scheme, name, port) = split_scheme_name_port(id).ok_or_else(|| invalid(id))?;
    let pod = api.registry.get(r, ns, name).await?;
    let port = if port.is_empty() {
        pod.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_u64))
            .map(|p| p.to_string())
            .unwrap_or_else(|| "80".into())
    } else {
        port.to_owned()
    };
    let ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback() && !ip.is_multicast())
        .ok_or_else(|| ApiError::bad_request("address not allowed"))?;
    let backend = Backend::Plain {
        https: scheme == "https",
        host: ip.to_string(),
        port: port_number(&port)?,
    };
    let path = proxied_path(&req, id);
    forward(backend, req, path).await
}

/// `services/proxy`: a ready address of the service's endpoints for the
/// named (or numbered) service port.
pub async fn service(
    api: &ApiServer,
    r: &Resource,
    ns: Option<&str>,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (scheme, name, port) = split_scheme_name_port(id).ok_or_else(|| invalid(id))?;
    let svc = api.registry.get(r, ns, name).await?;
    let mut port_name = port.to_owned();
    if let Ok(number) = port.parse::<u64>() {
        // A number names the service port it matches.
        port_name = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("port").and_then(Value::as_u64) == Some(number))
            .map(|p| {
                p.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            })
            .ok_or_else(|| {
                ApiError::unavailable(format!(
                    "no service port {number} found for service {name:?}"
                ))
            })?;
    }
    let endpoints = api
        .catalogue
        .resource("", "v1", "endpoints")
        .ok_or_else(|| ApiError::internal("endpoints are not served"))?;
    let none = || ApiError::unavailable(format!("no endpoints available for service {id:?}"));
    let eps = api
        .registry
        .get(&endpoints, ns, name)
        .await
        .map_err(|_| none())?;
    let (ip, target) = eps
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|subset| {
            let target = subset
                .get("ports")
                .and_then(Value::as_array)?
                .iter()
                .find(|p| p.get("name").and_then(Value::as_str).unwrap_or_default() == port_name)?
                .get("port")
                .and_then(Value::as_u64)?;
            let ip = subset.pointer("/addresses/0/ip").and_then(Value::as_str)?;
            Some((ip.to_owned(), target))
        })
        .ok_or_else(none)?;
    let backend = Backend::Plain {
        https: scheme == "https",
        host: ip,
        port: u16::try_from(target).map_err(|_| none())?,
    };
    let path = proxied_path(&req, id);
    forward(backend, req, path).await
}

/// `nodes/proxy`: the node's kubelet (its own port unless one is named).
pub async fn node(
    api: &ApiServer,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (_, name, port) = split_scheme_name_port(id).ok_or_else(|| invalid(id))?;
    let port = if port.is_empty() {
        None
    } else {
        Some(port_number(port)?)
    };
    let backend = Backend::kubelet(api, name, port).await?;
    let path = proxied_path(&req, id);
    forward(backend, req, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_upstream() {
        assert_eq!(split_scheme_name_port("web"), Some(("", "web", "")));
        assert_eq!(split_scheme_name_port("web:80"), Some(("", "web", "80")));
        assert_eq!(
            split_scheme_name_port("https:web:443"),
            Some(("https", "web", "443"))
        );
        assert_eq!(split_scheme_name_port("ftp:web:21"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
    }
}
