//! Connect subresources: `pods/exec`, `pods/attach` and `pods/portforward`
//! forwarded to the pod's kubelet with the upgrade carried through, and the
//! `proxy` subresources of pods, services and nodes.
//!
//! As upstream, SPDY clients and WebSocket clients of the older protocols
//! are passed through byte for byte; WebSocket `v5.channel.k8s.io` (exec,
//! attach) and `SPDY/3.1+portforward.k8s.io` (port-forward) are terminated
//! here and spoken to the kubelet as SPDY.

mod forward;
mod proxy;
pub mod spdy;
mod translate;
pub mod wsbody;

use http::{Request, Response, header};
use hyper::body::Incoming;
use serde_json::Value;

use crate::http_util::Body;
use crate::registry::Resource;
use crate::request::RequestInfo;
use crate::server::ApiServer;
use crate::status::ApiError;

pub use forward::Backend;

const V5_CHANNEL: &str = "v5.channel.k8s.io";
const PORT_FORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// Whether `sub` of `plural` (core group) is served here.
pub fn handles(plural: &str, sub: &str) -> bool {
    matches!(
        (plural, sub),
        ("pods", "exec" | "attach" | "portforward" | "proxy") | ("services" | "nodes", "proxy")
    )
}

pub async fn serve(
    api: &ApiServer,
    r: &Resource,
    ns: Option<&str>,
    info: &RequestInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let name = info.name.as_deref().unwrap_or_default();
    let sub = info.subresource.as_deref().unwrap_or_default();
    match (r.plural.as_str(), sub) {
        ("pods", "exec" | "attach") => {
            if !matches!(info.verb, "get" | "create") {
                return Err(ApiError::method_not_allowed());
            }
            exec(api, r, ns, name, sub, req).await
        }
        ("pods", "portforward") => {
            if !matches!(info.verb, "get" | "create") {
                return Err(ApiError::method_not_allowed());
            }
            port_forward(api, r, ns, name, req).await
        }
        ("pods", _) => proxy::pod(api, r, ns, name, req).await,
        ("services", _) => proxy::service(api, r, ns, name, req).await,
        _ => proxy::node(api, name, req).await,
    }
}

/// Every value of `key` in a query string.
fn query_values(query: &str, key: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// A close frame with code 1000: clients take anything else (even no
/// code) as the stream failing.
pub(crate) fn normal_close() -> tokio_tungstenite::tungstenite::Message {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    tokio_tungstenite::tungstenite::Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// A query string of `pairs`.
fn encode(pairs: &[(&str, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// A query flag as Go's `strconv.ParseBool` reads it.
fn query_flag(query: &str, key: &str) -> bool {
    query_values(query, key)
        .first()
        .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

/// The protocols a WebSocket request offers, or none for other requests.
pub(crate) fn websocket_protocols(req: &Request<Incoming>) -> Vec<String> {
    let is_ws = req.headers().get_all(header::UPGRADE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.eq_ignore_ascii_case("websocket"))
    });
    if !is_ws {
        return Vec::new();
    }
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The pod and the kubelet that runs it, as upstream's `streamLocation`.
async fn pod_and_node(
    api: &ApiServer,
    r: &Resource,
    ns: Option<&str>,
    name: &str,
) -> Result<(Value, Backend), ApiError> {
    let pod = api.registry.get(r, ns, name).await?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let backend = Backend::kubelet(api, node_name, None).await?;
    Ok((pod, backend))
}

/// `pods/exec` and `pods/attach` (PodExecOptions, PodAttachOptions).
async fn exec(
    api: &ApiServer,
    r: &Resource,
    ns: Option<&str>,
    name: &str,
    sub: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let (pod, backend) = pod_and_node(api, r, ns, name).await?;
    let wanted = query_values(&query, "container").into_iter().next();
    let container = crate::podlogs::pick_container(&pod, name, wanted.as_deref())?;
    let streams = translate::ExecStreams {
        stdin: query_flag(&query, "stdin"),
        stdout: query_flag(&query, "stdout"),
        stderr: query_flag(&query, "stderr"),
        tty: query_flag(&query, "tty"),
    };
    // Upstream's `streamParams`: the kubelet's names for the flags.
    let mut params: Vec<(&str, String)> = [
        (streams.stdin, "input"),
        (streams.stdout, "output"),
        (streams.stderr, "error"),
        (streams.tty, "tty"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, key)| (key, "1".to_owned()))
    .collect();
    if sub == "exec" {
        params.extend(
            query_values(&query, "command")
                .into_iter()
                .map(|c| ("command", c)),
        );
    }
    let kind = if sub == "exec" { "exec" } else { "attach" };
    let ns = ns.unwrap_or_default();
    let path = format!("/{kind}/{ns}/{name}/{container}?{}", encode(&params));
    if websocket_protocols(&req).iter().any(|p| p == V5_CHANNEL) {
        return translate::exec_v5(backend, req, path, streams).await;
    }
    forward::forward(backend, req, path).await
}

/// `pods/portforward` (PodPortForwardOptions: `ports`, the kubelet's `port`).
async fn port_forward(
    api: &ApiServer,
    r: &Resource,
    ns: Option<&str>,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let (_, backend) = pod_and_node(api, r, ns, name).await?;
    let mut params = Vec::new();
    for ports in query_values(&query, "ports") {
        for port in ports.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match port.parse::<u16>() {
                Ok(p) if p > 0 => params.push(("port", port.to_owned())),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid port {port:?}: must be between 1 and 65535, inclusive"
                    )));
                }
            }
        }
    }
    let ns = ns.unwrap_or_default();
    let params = encode(&params);
    let path = if params.is_empty() {
        format!("/portForward/{ns}/{name}")
    } else {
        format!("/portForward/{ns}/{name}?{params}")
    };
    if websocket_protocols(&req)
        .iter()
        .any(|p| p == PORT_FORWARD_TUNNEL)
    {
        return translate::port_forward_tunnel(backend, req, path).await;
    }
    forward::forward(backend, req, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_read_as_go_does() {
        let q = "command=sh&command=-c&command=echo%20hi&stdin=true&tty=1&stderr=false";
        assert_eq!(query_values(q, "command"), ["sh", "-c", "echo hi"]);
        assert!(query_flag(q, "stdin") && query_flag(q, "tty"));
        assert!(!query_flag(q, "stderr") && !query_flag(q, "stdout"));
    }
}
