//! The kubelet's HTTPS server (upstream's `pkg/kubelet/server`, port
//! 10250): the API server reaches pods through it (`pods/log`,
//! `pods/exec`, `pods/attach`, `pods/portforward`) and metrics clients
//! read `/stats/summary` and `/metrics/resource`. Clients authenticate
//! with a certificate signed by --client-ca-file; any such client may use
//! every endpoint (upstream's AlwaysAllow authorization).

pub mod logs;
pub mod stats;
pub mod streaming;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;

use crate::cri::CriRuntime;
pub use rustls::ServerConfig;

/// Every answer's body: whole, streamed (follow) or empty (101).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// Upstream's kubelet port.
pub const DEFAULT_PORT: u16 = 10250;
/// A client that does not finish its handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how the server listens.
pub struct Options {
    pub address: IpAddr,
    pub port: u16,
    pub tls: Arc<rustls::ServerConfig>,
}

/// The serving config: `cert`/`key`, and client certificates checked
/// against `client_ca` (without one, no client can authenticate).
pub fn tls_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    Ok(rkube_pki::server_config(cert, key, client_ca)?)
}

pub struct Server {
    runtime: Arc<CriRuntime>,
    node_name: String,
    started: DateTime<Utc>,
    cpu_sample: Mutex<Option<stats::CpuSample>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A plain-text answer, as upstream's `http.Error`/`WriteError`.
pub fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(format!("{msg}\n")))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Prometheus text exposition.
fn prometheus(body: &str) -> Response<Body> {
    let mut resp = text(StatusCode::OK, body.trim_end());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

fn json_response(value: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(value.to_string()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The query's pairs, form-decoded, in order (`command` repeats).
fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Binds and serves until the listener fails.
pub async fn serve(
    opts: Options,
    runtime: Arc<CriRuntime>,
    node_name: String,
) -> anyhow::Result<()> {
    let addr = SocketAddr::new(opts.address, opts.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(%addr, "kubelet server listening");
    let acceptor = tokio_rustls::TlsAcceptor::from(opts.tls);
    let server = Arc::new(Server {
        runtime,
        node_name,
        started: Utc::now(),
        cpu_sample: Mutex::new(None),
    });
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: wait, don't spin.
                tracing::warn!("kubelet server accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "kubelet server TLS handshake: {e}");
                    return;
                }
                Err(_) => return,
            };
            // rustls verified any certificate against the client CA.
            let authenticated = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.route(req, authenticated).await) }
            });
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, "kubelet server connection: {e}");
            }
        });
    }
}

impl Server {
    async fn route(&self, req: Request<Incoming>, authenticated: bool) -> Response<Body> {
        if !authenticated {
            return text(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        let path = req.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = req.method().clone();
        let get = method == Method::GET;
        let get_or_post = get || method == Method::POST;
        let query = query_pairs(&req);
        use streaming::Target;
        let kind = |s: &str| {
            if s == "attach" {
                streaming::Kind::Attach
            } else {
                streaming::Kind::Exec
            }
        };
        match segments.as_slice() {
            ["healthz"] if get => text(StatusCode::OK, "ok"),
            ["pods"] | ["pods", ""] if get => json_response(&self.pod_list()),
            ["runningpods"] | ["runningpods", ""] if get => json_response(&self.running_pods()),
            ["stats", "summary"] | ["stats", "summary", ""] if get => {
                json_response(&self.summary().await)
            }
            ["metrics"] if get => {
                let body =
                    stats::kubelet_metrics(&self.node_name, self.started, &self.runtime.pods());
                prometheus(&body)
            }
            ["metrics", "resource"] if get => {
                prometheus(&stats::resource_metrics(&self.summary().await))
            }
            ["containerLogs", ns, pod, container] if get => {
                self.container_logs(ns, pod, container, &query).await
            }
            ["exec" | "attach", ns, pod, container] if get_or_post => {
                let target = Target {
                    namespace: ns,
                    pod,
                    uid: None,
                    container,
                };
                self.stream(kind(segments[0]), target, &query, req).await
            }
            ["exec" | "attach", ns, pod, uid, container] if get_or_post => {
                let target = Target {
                    namespace: ns,
                    pod,
                    uid: Some(uid),
                    container,
                };
                self.stream(kind(segments[0]), target, &query, req).await
            }
            ["portForward", ns, pod] if get_or_post => {
                self.port_forward(ns, pod, None, &query, req).await
            }
            ["portForward", ns, pod, uid] if get_or_post => {
                self.port_forward(ns, pod, Some(uid), &query, req).await
            }
            _ if known_route(&segments) => {
                text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed")
            }
            _ => text(StatusCode::NOT_FOUND, "404 page not found"),
        }
    }

    /// `/pods`: the pods this kubelet runs, as a v1 PodList.
    fn pod_list(&self) -> serde_json::Value {
        let items: Vec<_> = self.runtime.pods().into_iter().map(|v| v.pod).collect();
        json!({
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {},
            "items": items,
        })
    }
}

impl Server {
    /// `/runningpods/`: the pods as the runtime sees them, upstream's
    /// minimal form: name, namespace, uid and the running containers'
    /// names and images.
    fn running_pods(&self) -> serde_json::Value {
        let items: Vec<_> = self
            .runtime
            .pods()
            .into_iter()
            .filter_map(|v| {
                let containers: Vec<_> = v
                    .status
                    .all()
                    .filter(|c| matches!(c.state, crate::runtime::ContainerState::Running { .. }))
                    .map(|c| json!({"name": c.name, "image": c.image, "resources": {}}))
                    .collect();
                (!containers.is_empty()).then(|| {
                    json!({
                        "metadata": {
                            "name": v.pod.metadata.name,
                            "namespace": v.pod.metadata.namespace,
                            "uid": v.pod.metadata.uid,
                            "creationTimestamp": null,
                        },
                        "spec": {"containers": containers},
                        "status": {},
                    })
                })
            })
            .collect();
        json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
    }
}

/// Upstream's default `--healthz-port`.
pub const DEFAULT_HEALTHZ_PORT: u16 = 10248;

/// The plain-HTTP `/healthz` endpoint (`--healthz-bind-address`:
/// `--healthz-port`). As upstream, a port it can't bind is logged and
/// tried again every 5 s rather than stopping the kubelet.
pub async fn serve_healthz(addr: SocketAddr) {
    loop {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(%addr, "failed to start the healthz server: {e}");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        tracing::info!(%addr, "kubelet healthz listening");
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let found = req.uri().path() == "/healthz";
                    Ok::<_, Infallible>(match (found, req.method() == Method::GET) {
                        (true, true) => text(StatusCode::OK, "ok"),
                        (true, false) => {
                            text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed")
                        }
                        (false, _) => text(StatusCode::NOT_FOUND, "404 page not found"),
                    })
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    }
}

/// Whether the path names a route (so a wrong method is a 405).
fn known_route(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["healthz" | "pods" | "runningpods" | "metrics"]
            | ["pods", ""]
            | ["runningpods", ""]
            | ["stats", "summary"]
            | ["metrics", "resource"]
            | ["containerLogs", _, _, _]
            | ["exec" | "attach", _, _, _]
            | ["exec" | "attach", _, _, _, _]
            | ["portForward", _, _]
            | ["portForward", _, _, _]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_routes() {
        assert!(known_route(&["healthz"]));
        assert!(known_route(&["exec", "ns", "p", "c"]));
        assert!(known_route(&["portForward", "ns", "p"]));
        assert!(!known_route(&["stats", "other"]));
        assert!(!known_route(&["containerLogs", "ns", "p"]));
    }
}
