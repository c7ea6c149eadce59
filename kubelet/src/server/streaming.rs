//! `/exec`, `/attach` and `/portForward`: the runtime's streaming URL is
//! asked for over CRI, then the client's upgrade request is proxied to it
//! unchanged (upstream's proxyStream with an UpgradeAwareHandler). A 101
//! answer is returned to the client and the two upgraded connections are
//! joined; SPDY/3.1 and WebSocket both pass, as containerd speaks both.

use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;

use super::{Body, Server, text};
use crate::runtime::ContainerState;

/// Upstream's remotecommand options from the query: `stdin`/`input`,
/// `stdout`/`output`, `stderr`/`error`, `tty` and repeated `command`.
#[derive(Debug, Default, PartialEq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub command: Vec<String>,
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "true" | "True" | "TRUE" | "t" | "T")
}

impl StreamOptions {
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut o = StreamOptions::default();
        for (k, v) in pairs {
            match k.as_str() {
                "stdin" | "input" => o.stdin = truthy(v),
                "stdout" | "output" => o.stdout = truthy(v),
                "stderr" | "error" => o.stderr = truthy(v),
                "tty" => o.tty = truthy(v),
                "command" => o.command.push(v.clone()),
                _ => {}
            }
        }
        // A terminal merges stderr into stdout.
        if o.tty {
            o.stderr = false;
        }
        if !(o.stdin || o.stdout || o.stderr) {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        Ok(o)
    }
}

/// The ports of a port-forward request (`port`, repeated; WebSocket
/// clients name them here, SPDY clients in their streams).
fn ports(pairs: &[(String, String)]) -> Result<Vec<i32>, String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "port")
        .map(|(_, v)| match v.parse::<u16>() {
            Ok(p) if p > 0 => Ok(i32::from(p)),
            _ => Err(format!("unable to parse {v:?} as a port: invalid port")),
        })
        .collect()
}

/// The container a stream is for: `{namespace}/{pod}[/{uid}]/{container}`.
pub struct Target<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub uid: Option<&'a str>,
    pub container: &'a str,
}

/// What the stream is for.
pub enum Kind {
    Exec,
    Attach,
}

/// A CRI error as upstream's streaming.WriteError: NotFound is 404,
/// anything else 500, with the error text.
fn cri_error(e: tonic::Status) -> Response<Body> {
    let code = if e.code() == tonic::Code::NotFound {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    text(
        code,
        &format!("rpc error: code = {:?} desc = {}", e.code(), e.message()),
    )
}

impl Server {
    /// The running container's runtime ID, or upstream's error answer.
    fn running_container(&self, t: &Target<'_>) -> Result<String, (StatusCode, String)> {
        let Some(view) = self.runtime.find_pod(t.namespace, t.pod) else {
            return Err((StatusCode::NOT_FOUND, "pod does not exist".into()));
        };
        if t.uid
            .is_some_and(|u| Some(u) != view.pod.metadata.uid.as_deref())
        {
            return Err((StatusCode::NOT_FOUND, "pod not found".into()));
        }
        view.status
            .all()
            .find(|c| c.name == t.container)
            .filter(|c| matches!(c.state, ContainerState::Running { .. }))
            .and_then(|c| c.container_id.rsplit("://").next().map(str::to_owned))
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("container not found ({:?})", t.container),
                )
            })
    }

    pub(super) async fn stream(
        &self,
        kind: Kind,
        target: Target<'_>,
        query: &[(String, String)],
        req: Request<Incoming>,
    ) -> Response<Body> {
        let opts = match StreamOptions::from_query(query) {
            Ok(o) => o,
            Err(msg) => return text(StatusCode::BAD_REQUEST, &msg),
        };
        let id = match self.running_container(&target) {
            Ok(id) => id,
            Err((code, msg)) => return text(code, &msg),
        };
        let mut rt = self.runtime.cri().runtime.clone();
        let url = match kind {
            Kind::Exec => rt
                .exec(cri::ExecRequest {
                    container_id: id,
                    cmd: opts.command,
                    tty: opts.tty,
                    stdin: opts.stdin,
                    stdout: opts.stdout,
                    stderr: opts.stderr,
                })
                .await
                .map(|r| r.into_inner().url),
            Kind::Attach => rt
                .attach(cri::AttachRequest {
                    container_id: id,
                    stdin: opts.stdin,
                    tty: opts.tty,
                    stdout: opts.stdout,
                    stderr: opts.stderr,
                })
                .await
                .map(|r| r.into_inner().url),
        };
        match url {
            Ok(url) => proxy(&url, req).await,
            Err(e) => cri_error(e),
        }
    }

    pub(super) async fn port_forward(
        &self,
        ns: &str,
        pod: &str,
        uid: Option<&str>,
        query: &[(String, String)],
        req: Request<Incoming>,
    ) -> Response<Body> {
        let port = match ports(query) {
            Ok(p) => p,
            Err(msg) => return text(StatusCode::BAD_REQUEST, &msg),
        };
        let Some(view) = self.runtime.find_pod(ns, pod) else {
            return text(StatusCode::NOT_FOUND, "pod does not exist");
        };
        if uid.is_some_and(|u| Some(u) != view.pod.metadata.uid.as_deref()) {
            return text(StatusCode::NOT_FOUND, "pod not found");
        }
        let url = self
            .runtime
            .cri()
            .runtime
            .clone()
            .port_forward(cri::PortForwardRequest {
                pod_sandbox_id: view.sandbox_id.clone(),
                port,
            })
            .await;
        match url {
            Ok(r) => proxy(&r.into_inner().url, req).await,
            Err(e) => cri_error(e),
        }
    }
}

/// Sends `req` (method and headers as they came) to the runtime's
/// streaming `url`, and joins the two connections when it upgrades.
async fn proxy(url: &str, mut req: Request<Incoming>) -> Response<Body> {
    let fail = |e: String| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("error proxying to the container runtime: {e}"),
        )
    };
    let Ok(uri) = url.parse::<http::Uri>() else {
        return fail(format!("bad streaming URL {url:?}"));
    };
    let (Some(host), Some(scheme)) = (uri.host(), uri.scheme_str()) else {
        return fail(format!("bad streaming URL {url:?}"));
    };
    if scheme != "http" {
        // The runtime's stream server is plain HTTP on localhost
        // (containerd's enable_tls_streaming = false).
        return fail(format!("unsupported streaming URL scheme {scheme:?}"));
    }
    let port = uri.port_u16().unwrap_or(80);
    let tcp = match tokio::net::TcpStream::connect((host, port)).await {
        Ok(t) => t,
        Err(e) => return fail(format!("dial tcp {host}:{port}: {e}")),
    };
    let (mut send, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
        Ok(x) => x,
        Err(e) => return fail(e.to_string()),
    };
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let client_upgrade = hyper::upgrade::on(&mut req);
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let mut out = Request::builder().method(req.method().clone()).uri(path);
    for (k, v) in req.headers() {
        if k != http::header::HOST {
            out = out.header(k, v);
        }
    }
    if let Ok(h) = HeaderValue::from_str(&format!("{host}:{port}")) {
        out = out.header(http::header::HOST, h);
    }
    let Ok(out) = out.body(Empty::<bytes::Bytes>::new()) else {
        return fail("building the request".into());
    };
    let mut resp = match send.send_request(out).await {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Passed back as it is.
        let (parts, body) = resp.into_parts();
        let body = body.map_err(std::io::Error::other).boxed_unsync();
        return Response::from_parts(parts, body);
    }
    let runtime_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (client, runtime) = match tokio::try_join!(client_upgrade, runtime_upgrade) {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("stream upgrade: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut runtime = TokioIo::new(runtime);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut runtime).await {
            tracing::debug!("stream copy: {e}");
        }
    });
    let (parts, _) = resp.into_parts();
    Response::from_parts(parts, Empty::new().map_err(|e| match e {}).boxed_unsync())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn stream_options_take_both_spellings() {
        let o = StreamOptions::from_query(&q(&[
            ("command", "sh"),
            ("command", "-c"),
            ("command", "exit 3"),
            ("stdout", "true"),
            ("error", "1"),
        ]))
        .unwrap();
        assert_eq!(o.command, ["sh", "-c", "exit 3"]);
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        let o = StreamOptions::from_query(&q(&[("input", "1"), ("tty", "1"), ("stderr", "1")]))
            .unwrap();
        assert!(o.stdin && o.tty && !o.stderr);
        assert_eq!(
            StreamOptions::from_query(&q(&[("command", "ls")])).unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
    }

    #[test]
    fn port_forward_ports() {
        assert_eq!(
            ports(&q(&[("port", "80"), ("port", "8080")])).unwrap(),
            [80, 8080]
        );
        assert!(ports(&q(&[("port", "x")])).is_err());
        assert!(ports(&q(&[("port", "0")])).is_err());
    }
}
