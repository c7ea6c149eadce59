//! Connections from the API server to kubelets (upstream's
//! `pkg/kubelet/client`): where a node's kubelet listens, and an HTTPS GET
//! presenting the API server's kubelet-client certificate. The response body
//! is streamed through, for `pods/log` with `follow`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::http_util::Body;
use crate::status::ApiError;

/// Upstream's default `--kubelet-port`, for nodes that don't say.
const DEFAULT_PORT: u64 = 10250;
/// Upstream's dial timeout towards kubelets.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct KubeletClient {
    tls: Arc<rustls::ClientConfig>,
}

/// Where a node's kubelet is: its first address by upstream's preference
/// (`--kubelet-preferred-address-types` default) and its endpoint port.
pub fn kubelet_location(node: &Value) -> Option<(String, u16)> {
    let addresses = node.pointer("/status/addresses")?.as_array()?;
    let address = [
        "Hostname",
        "InternalDNS",
        "InternalIP",
        "ExternalDNS",
        "ExternalIP",
    ]
    .iter()
    .find_map(|ty| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(ty))
            .and_then(|a| a.get("address").and_then(Value::as_str))
    })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_PORT);
    Some((address.to_owned(), u16::try_from(port).ok()?))
}

impl KubeletClient {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        KubeletClient { tls }
    }

    /// GET `https://host:port{path}`; the kubelet's answer, or upstream's
    /// 500 when it can't be reached.
    pub async fn get(
        &self,
        host: &str,
        port: u16,
        path: &str,
    ) -> Result<Response<Incoming>, ApiError> {
        let req = Request::get(path)
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.send(host, port, req).await
    }

    /// Sends `req` (its URI a path) to the kubelet at `host:port` over a
    /// connection that can be upgraded, for exec, attach and port-forward.
    pub async fn send<B>(
        &self,
        host: &str,
        port: u16,
        mut req: Request<B>,
    ) -> Result<Response<Incoming>, ApiError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let authority = format!("{}:{port}", bracket(host));
        let url = format!("https://{authority}{}", req.uri());
        let verb = title_case(req.method().as_str());
        let fail = |e: String| ApiError::internal(format!("{verb} \"{url}\": {e}"));
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| fail(format!("dial tcp {authority}: i/o timeout")))?
            .map_err(|e| fail(format!("dial tcp {authority}: connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| fail(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| fail(format!("tls: {e}")))?;
        if let Ok(v) = http::HeaderValue::from_str(&authority) {
            req.headers_mut().insert(http::header::HOST, v);
        }
        exchange(tls, req).await.map_err(fail)
    }
}

/// One HTTP/1.1 request on `io`, the connection kept for an upgrade.
pub async fn exchange<S, B>(io: S, req: Request<B>) -> Result<Response<Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    send.send_request(req).await.map_err(|e| e.to_string())
}

/// Go's error wording names the method as `Get`, `Post`...
fn title_case(method: &str) -> String {
    let lower = method.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// A kubelet response passed on: 2xx bodies stream through; other codes
/// become a Status with the kubelet's text as message (upstream's
/// `GenericHttpResponseChecker`).
pub async fn pass_through(
    resp: Response<Incoming>,
    content_type: &str,
) -> Result<Response<Body>, ApiError> {
    let status = resp.status();
    if !status.is_success() {
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(1024)])
            .trim()
            .to_owned();
        let reason = match status {
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::NOT_FOUND => "NotFound",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            _ => "InternalError",
        };
        return Err(ApiError::new(status.as_u16(), reason, text));
    }
    let mut out = Response::new(streamed(resp.into_body()));
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        out.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    Ok(out)
}

/// A body passed on as it arrives; a broken stream just ends, so the
/// client sees it cut short.
pub fn streamed(body: Incoming) -> Body {
    let frames = futures::stream::unfold(body, |mut body| async move {
        match body.frame().await {
            Some(Ok(frame)) => Some((Ok::<_, Infallible>(frame), body)),
            _ => None,
        }
    });
    StreamBody::new(frames).boxed_unsync()
}
