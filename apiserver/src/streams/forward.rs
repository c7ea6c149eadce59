//! Where a connect request goes (a kubelet, or a pod's or endpoint's
//! address) and the request passed on: headers kept, body streamed, and a
//! `101 Switching Protocols` answer spliced so both ends talk directly, as
//! upstream's `UpgradeAwareHandler`.

use std::sync::{Arc, OnceLock};

use http::{HeaderName, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::http_util::Body;
use crate::kubelet_client::{KubeletClient, exchange, kubelet_location, streamed};
use crate::server::ApiServer;
use crate::status::ApiError;

pub enum Backend {
    Kubelet {
        client: KubeletClient,
        host: String,
        port: u16,
    },
    /// A pod's or an endpoint's address; https is not verified, as
    /// upstream's proxy to pods.
    Plain {
        https: bool,
        host: String,
        port: u16,
    },
}

impl Backend {
    /// The kubelet of `node_name` (at `port` when given).
    pub async fn kubelet(
        api: &ApiServer,
        node_name: &str,
        port: Option<u16>,
    ) -> Result<Backend, ApiError> {
        let nodes = api
            .catalogue
            .resource("", "v1", "nodes")
            .ok_or_else(|| ApiError::internal("nodes are not served"))?;
        let node: Value = api.registry.get(&nodes, None, node_name).await?;
        let (host, default_port) = kubelet_location(&node).ok_or_else(|| {
            ApiError::internal(format!("node {node_name} has no address for its kubelet"))
        })?;
        let client = api
            .kubelet
            .clone()
            .ok_or_else(|| ApiError::internal("no kubelet client certificate configured"))?;
        Ok(Backend::Kubelet {
            client,
            host,
            port: port.unwrap_or(default_port),
        })
    }

    async fn send<B>(&self, mut req: Request<B>) -> Result<Response<Incoming>, ApiError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (https, host, port) = match self {
            Backend::Kubelet { client, host, port } => return client.send(host, *port, req).await,
            Backend::Plain { https, host, port } => (*https, host, *port),
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let fail = |e: String| ApiError::unavailable(format!("error trying to reach service: {e}"));
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| fail(format!("dial tcp {authority}: connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        if let Ok(v) = http::HeaderValue::from_str(&authority) {
            req.headers_mut().insert(header::HOST, v);
        }
        if !https {
            return exchange(tcp, req).await.map_err(fail);
        }
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| fail(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(insecure_tls())
            .connect(name, tcp)
            .await
            .map_err(|e| fail(format!("tls: {e}")))?;
        exchange(tls, req).await.map_err(fail)
    }
}

/// Request headers that belong to this hop or to the API server.
fn dropped_on_the_way_in(name: &HeaderName) -> bool {
    name == header::HOST
        || name == header::AUTHORIZATION
        || name == header::TRANSFER_ENCODING
        || name.as_str().starts_with("impersonate-")
}

/// Passes the client's request on to `path` (with query) at `backend`.
pub async fn forward(
    backend: Backend,
    mut req: Request<Incoming>,
    path: String,
) -> Result<Response<Body>, ApiError> {
    let client_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let mut out = Request::builder().method(parts.method).uri(path);
    for (k, v) in parts.headers.iter() {
        if !dropped_on_the_way_in(k) {
            out = out.header(k, v);
        }
    }
    let out = out
        .body(body)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut resp = backend.send(out).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(passed(resp));
    }
    let backend_upgrade = hyper::upgrade::on(&mut resp);
    let mut reply = Response::new(http_body_util::Empty::new().boxed_unsync());
    *reply.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *reply.headers_mut() = resp.headers().clone();
    tokio::spawn(async move {
        if let (Ok(client), Ok(backend)) = tokio::join!(client_upgrade, backend_upgrade) {
            let _ = tokio::io::copy_bidirectional(
                &mut TokioIo::new(client),
                &mut TokioIo::new(backend),
            )
            .await;
        }
    });
    Ok(reply)
}

/// The backend's answer as it is, its body streamed.
pub fn passed(resp: Response<Incoming>) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(streamed(body));
    *out.status_mut() = parts.status;
    for (k, v) in parts.headers.iter() {
        if k != header::CONNECTION && k != header::TRANSFER_ENCODING && k.as_str() != "keep-alive" {
            out.headers_mut().append(k, v.clone());
        }
    }
    out
}

/// Opens an upgraded connection to the backend for a stream this server
/// terminates itself (the client spoke WebSocket); the backend's refusal
/// is passed back as it is.
pub async fn upgrade<B>(
    backend: &Backend,
    req: Request<B>,
) -> Result<Result<hyper::upgrade::Upgraded, Response<Body>>, ApiError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut resp = backend.send(req).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(Err(passed(resp)));
    }
    hyper::upgrade::on(&mut resp)
        .await
        .map(Ok)
        .map_err(|e| ApiError::internal(format!("upgrade to the kubelet failed: {e}")))
}

/// TLS that takes any certificate: pods serve their own.
fn insecure_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.dangerous()
                        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                        .with_no_client_auth()
                });
            match config {
                Ok(c) => Arc::new(c),
                // The ring provider always offers the default versions.
                Err(_) => Arc::new(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                ),
            }
        })
        .clone()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
