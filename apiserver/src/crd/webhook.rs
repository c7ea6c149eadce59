//! Conversion webhooks (upstream's `webhook_converter.go`): the objects not
//! yet in the wanted version go to the CRD's webhook in one
//! `ConversionReview`; the answer is checked (uid, result, count,
//! apiVersion, kind) and each converted object keeps its original metadata
//! but for labels and annotations.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rkube_storage::{RangeRequest, Storage};
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;

use crate::status::ApiError;

/// Upstream's webhook client timeout.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The `ConversionReview` versions rkube speaks.
const REVIEW_VERSIONS: [&str; 2] = ["v1", "v1beta1"];
/// The largest answer read (a list's worth of objects).
const MAX_RESPONSE: usize = 256 << 20;

/// Where the webhook listens.
#[derive(Debug, Clone)]
enum Target {
    Url {
        url: String,
        host: String,
        port: u16,
        path: String,
    },
    Service {
        name: String,
        namespace: String,
        port: u16,
        path: String,
    },
}

/// A CRD's conversion webhook.
pub struct Webhook {
    target: Result<Target, String>,
    review_versions: Vec<String>,
    /// From the caBundle; `None`: the system's roots.
    tls: Result<Option<Arc<rustls::ClientConfig>>, String>,
    /// Services are resolved to their endpoints through the store.
    store: Arc<dyn Storage>,
    /// Open connections between reviews (upstream's client keeps them
    /// alive too): no TCP and TLS handshake per review.
    idle: std::sync::Mutex<Vec<Idle>>,
}

/// A kept-alive connection to `host:port`.
struct Idle {
    host: String,
    port: u16,
    send: SendRequest<Full<Bytes>>,
}

/// Connections kept per webhook.
const MAX_IDLE: usize = 8;

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("target", &self.target)
            .field("review_versions", &self.review_versions)
            .finish_non_exhaustive()
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn target(client: &Value) -> Result<Target, String> {
    if let Some(url) = str_at(client, "/url") {
        let uri: http::Uri = url.parse().map_err(|e| format!("parse {url:?}: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("webhook URL {url:?} is not https"));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("webhook URL {url:?} has no host"))?;
        // `[::1]` is dialled and verified as `::1`.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        return Ok(Target::Url {
            url: url.to_owned(),
            host,
            port: uri.port_u16().unwrap_or(443),
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
        });
    }
    let svc = client
        .get("service")
        .filter(|s| s.is_object())
        .ok_or("webhook clientConfig has neither url nor service")?;
    let port = svc.get("port").and_then(Value::as_u64).unwrap_or(443);
    Ok(Target::Service {
        name: str_at(svc, "/name").unwrap_or_default().to_owned(),
        namespace: str_at(svc, "/namespace").unwrap_or_default().to_owned(),
        port: u16::try_from(port).map_err(|_| format!("invalid service port {port}"))?,
        path: str_at(svc, "/path").unwrap_or_default().to_owned(),
    })
}

fn tls(client: &Value) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    use base64::Engine;
    let bundle = str_at(client, "/caBundle").unwrap_or_default();
    if bundle.is_empty() {
        return Ok(None);
    }
    let pem = base64::engine::general_purpose::STANDARD
        .decode(bundle)
        .map_err(|e| format!("unable to load root certificates: {e}"))?;
    let pem = String::from_utf8_lossy(&pem);
    rkube_pki::client_config(&pem, None)
        .map(Some)
        .map_err(|_| "unable to load root certificates: unable to parse bytes as PEM block".into())
}

/// The system's roots, read once and off the runtime's threads.
async fn system_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    static SYSTEM: tokio::sync::OnceCell<Result<Arc<rustls::ClientConfig>, String>> =
        tokio::sync::OnceCell::const_new();
    SYSTEM
        .get_or_init(|| async {
            tokio::task::spawn_blocking(rkube_pki::system_client_config)
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        })
        .await
        .clone()
}

impl Webhook {
    /// The webhook of a CRD whose conversion strategy is `Webhook`.
    pub fn of(crd: &Value, store: Arc<dyn Storage>) -> Option<Arc<Webhook>> {
        if str_at(crd, "/spec/conversion/strategy") != Some("Webhook") {
            return None;
        }
        let hook = crd
            .pointer("/spec/conversion/webhook")
            .unwrap_or(&Value::Null);
        let client = hook.get("clientConfig").unwrap_or(&Value::Null);
        Some(Arc::new(Webhook {
            target: target(client),
            review_versions: hook
                .get("conversionReviewVersions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            tls: tls(client),
            store,
            idle: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// Converts the objects of `objs` not in `to` (an apiVersion), in place
    /// and in one review. `list` picks upstream's wording for lists.
    pub async fn convert(&self, objs: &mut [Value], to: &str, list: bool) -> Result<(), ApiError> {
        let todo: Vec<usize> = (0..objs.len())
            .filter(|&i| str_at(&objs[i], "/apiVersion") != Some(to))
            .collect();
        let review_version = self
            .review_versions
            .iter()
            .find(|v| REVIEW_VERSIONS.contains(&v.as_str()))
            .ok_or_else(|| ApiError::internal("no supported conversion review versions"))?;
        let Some(&first) = todo.first() else {
            return Ok(());
        };
        let gvk = gvk_string(&objs[first]);
        let uid = uuid::Uuid::new_v4().to_string();
        let review = json!({
            "kind": "ConversionReview",
            "apiVersion": format!("apiextensions.k8s.io/{review_version}"),
            "request": {
                "uid": uid,
                "desiredAPIVersion": to,
                "objects": todo.iter().map(|&i| &objs[i]).collect::<Vec<_>>(),
            },
        });
        let fail =
            |m: String| ApiError::internal(format!("conversion webhook for {gvk} failed: {m}"));
        let body = serde_json::to_vec(&review).map_err(|e| fail(e.to_string()))?;
        let answer = self.post(body).await.map_err(fail)?;
        let converted = converted_objects(&answer, &uid, review_version == "v1").map_err(fail)?;
        if converted.len() != todo.len() {
            return Err(ApiError::internal(format!(
                "conversion webhook for {gvk} returned {} objects, expected {}",
                converted.len(),
                todo.len()
            )));
        }
        for (n, (&i, mut out)) in todo.iter().zip(converted).enumerate() {
            check_converted(&objs[i], &mut out, to, list, n)
                .map_err(|m| ApiError::internal(format!("conversion webhook for {gvk} {m}")))?;
            objs[i] = out;
        }
        Ok(())
    }

    /// POSTs a review; the decoded answer, or Go's `Post "url": ...` error.
    async fn post(&self, body: Vec<u8>) -> Result<Value, String> {
        let target = self.target.clone()?;
        let (url, path, server_name) = match &target {
            Target::Url {
                url, host, path, ..
            } => (url.clone(), path.clone(), host.clone()),
            Target::Service {
                name,
                namespace,
                port,
                path,
            } => {
                let host = format!("{name}.{namespace}.svc");
                (format!("https://{host}:{port}{path}"), path.clone(), host)
            }
        };
        // client-go sends its timeout along.
        let sep = if path.contains('?') { '&' } else { '?' };
        let (url, path) = (
            format!("{url}{sep}timeout=30s"),
            format!(
                "{}{sep}timeout=30s",
                if path.is_empty() { "/" } else { &path }
            ),
        );
        let go = |e: String| format!("Post {url:?}: {e}");
        let exchange = async {
            let (host, port) = match &target {
                Target::Url { host, port, .. } => (host.clone(), *port),
                Target::Service {
                    name,
                    namespace,
                    port,
                    ..
                } => self.resolve(namespace, name, *port).await?,
            };
            let body = Bytes::from(body);
            let req = || {
                Request::post(path.as_str())
                    .header(http::header::HOST, &server_name)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(http::header::ACCEPT, "application/json, */*")
                    .body(Full::new(body.clone()))
                    .map_err(|e| e.to_string())
            };
            // A kept connection first; one the server closed meanwhile
            // fails before anything was sent, so a new one may retry.
            let mut reused = self.take_idle(&host, port).await;
            let (mut send, resp) = loop {
                let fresh = reused.is_none();
                let mut send = match reused.take() {
                    Some(send) => send,
                    None => self.connect(&host, port, &server_name).await?,
                };
                match send.send_request(req()?).await {
                    Ok(resp) => break (send, resp),
                    Err(e) if fresh => return Err(e.to_string()),
                    Err(_) => {}
                }
            };
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if send.ready().await.is_ok() {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(Idle { host, port, send });
                }
            }
            if !status.is_success() {
                return Err(status_error(status, &bytes));
            }
            serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string())
        };
        match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(answer) => answer.map_err(|e| {
                // Errors from the answer itself read as client-go's.
                if e.starts_with("the server") || e.starts_with("an error on the server") {
                    e
                } else {
                    go(e)
                }
            }),
            Err(_) => Err(go("context deadline exceeded".into())),
        }
    }

    /// A kept connection to `host:port` that is still open.
    async fn take_idle(&self, host: &str, port: u16) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let found = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                let i = idle.iter().position(|c| c.host == host && c.port == port)?;
                idle.swap_remove(i).send
            };
            let mut send = found;
            if !send.is_closed() && send.ready().await.is_ok() {
                return Some(send);
            }
        }
    }

    /// A new TLS connection to the webhook, trusting its caBundle.
    async fn connect(
        &self,
        host: &str,
        port: u16,
        server_name: &str,
    ) -> Result<SendRequest<Full<Bytes>>, String> {
        let tls = match &self.tls {
            Ok(Some(tls)) => tls.clone(),
            Ok(None) => system_tls().await?,
            Err(e) => return Err(e.clone()),
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("dial tcp {authority}: connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: failed to verify certificate: {e}"))?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }

    /// A ready endpoint of the Service: its ClusterIP is not reachable
    /// from the API server (upstream's `ResolveEndpoint`).
    async fn resolve(&self, ns: &str, name: &str, port: u16) -> Result<(String, u16), String> {
        let svc = self
            .get(&format!("/services/specs/{ns}/{name}"))
            .await?
            .ok_or_else(|| format!("service {name:?} not found"))?;
        let ty = str_at(&svc, "/spec/type").unwrap_or("ClusterIP");
        if !matches!(ty, "ClusterIP" | "LoadBalancer" | "NodePort") {
            return Err(format!("unsupported service type {ty:?}"));
        }
        let svc_port = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(port)))
            .ok_or_else(|| format!("no service port {port} found for service {name:?}"))?;
        let port_name = str_at(svc_port, "/name").unwrap_or_default();
        if let Some(eps) = self
            .get(&format!("/services/endpoints/{ns}/{name}"))
            .await?
            && let Some(found) = from_endpoints(&eps, port_name)
        {
            return Ok(found);
        }
        // No usable Endpoints: the Service's EndpointSlices.
        let slices = self
            .store
            .range(RangeRequest {
                prefix: format!("/endpointslices/{ns}/"),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        for kv in slices.kvs {
            let Ok(slice) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            let owner = slice.pointer("/metadata/labels/kubernetes.io~1service-name");
            if owner.and_then(Value::as_str) == Some(name)
                && let Some(found) = from_slice(&slice, port_name)
            {
                return Ok(found);
            }
        }
        Err(format!("no endpoints available for service {name:?}"))
    }

    async fn get(&self, key: &str) -> Result<Option<Value>, String> {
        let got = self.store.get(key, None).await.map_err(|e| e.to_string())?;
        got.kv
            .map(|kv| serde_json::from_slice(&kv.value).map_err(|e| e.to_string()))
            .transpose()
    }
}

/// The port named `port_name` of a list of ports.
fn named_port(ports: Option<&Value>, port_name: &str) -> Option<u16> {
    ports
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| str_at(p, "/name").unwrap_or_default() == port_name)
        .and_then(|p| p.get("port").and_then(Value::as_u64))
        .and_then(|p| u16::try_from(p).ok())
}

/// A ready address of an Endpoints object with the port.
fn from_endpoints(eps: &Value, port_name: &str) -> Option<(String, u16)> {
    let subsets = eps.get("subsets").and_then(Value::as_array)?;
    subsets.iter().find_map(|ss| {
        let ip = str_at(ss, "/addresses/0/ip").filter(|ip| !ip.is_empty())?;
        Some((ip.to_owned(), named_port(ss.get("ports"), port_name)?))
    })
}

/// A ready endpoint of an EndpointSlice with the port.
fn from_slice(slice: &Value, port_name: &str) -> Option<(String, u16)> {
    let port = named_port(slice.get("ports"), port_name)?;
    let endpoints = slice.get("endpoints").and_then(Value::as_array)?;
    endpoints
        .iter()
        .filter(|e| e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false))
        .find_map(|e| str_at(e, "/addresses/0").filter(|a| !a.is_empty()))
        .map(|a| (a.to_owned(), port))
}

/// client-go's errors for an answer that is not 2xx.
fn status_error(status: http::StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(1024)])
        .trim()
        .to_owned();
    match status.as_u16() {
        404 => "the server could not find the requested resource".into(),
        400..=499 => "the server rejected our request for an unknown reason".into(),
        _ if text.is_empty() => format!(
            "the server responded with the status code {} but did not return more information",
            status.as_u16()
        ),
        _ => format!("an error on the server ({text:?}) has prevented the request from succeeding"),
    }
}

/// Go's `GroupVersionKind.String()` of an object.
fn gvk_string(obj: &Value) -> String {
    let api_version = str_at(obj, "/apiVersion").unwrap_or_default();
    let kind = str_at(obj, "/kind").unwrap_or_default();
    if api_version.contains('/') {
        format!("{api_version}, Kind={kind}")
    } else {
        format!("/{api_version}, Kind={kind}")
    }
}

/// The type Go's JSON decoding gives a value, for error messages.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The converted objects of a review's answer (upstream's
/// `getConvertedObjectsFromResponse`); v1beta1 answers were never checked
/// for kind or uid.
fn converted_objects(answer: &Value, uid: &str, v1: bool) -> Result<Vec<Value>, String> {
    if v1 {
        const WANT: &str = "apiextensions.k8s.io/v1, Kind=ConversionReview";
        let got = gvk_string(answer);
        if got != WANT {
            return Err(format!("expected webhook response of {WANT}, got {got}"));
        }
    }
    let response = answer
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("no response provided")?;
    if v1 {
        let got = str_at(response, "/uid").unwrap_or_default();
        if got != uid {
            return Err(format!("expected response.uid={uid:?}, got {got:?}"));
        }
    }
    let status = str_at(response, "/result/status").unwrap_or_default();
    if status != "Success" {
        return Err(match str_at(response, "/result/message") {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => format!("response.result.status was '{status}', not 'Success'"),
        });
    }
    Ok(response
        .get("convertedObjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Checks one converted object against its original and restores its
/// metadata; the error reads after `conversion webhook for {gvk} `.
fn check_converted(
    original: &Value,
    out: &mut Value,
    to: &str,
    list: bool,
    n: usize,
) -> Result<(), String> {
    // Upstream counts from 1 past the checked object in lists, and says
    // "index 0" for single objects.
    let (invalid, at) = if list {
        (
            format!("returned invalid converted object at index {}", n + 1),
            format!("returned invalid metadata in object at index {}", n + 1),
        )
    } else {
        (
            "returned invalid object".to_owned(),
            "returned invalid metadata".to_owned(),
        )
    };
    if !out.is_object() {
        let e = format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_type(out)
        );
        return Err(if list {
            format!("returned invalid converted object at index {n}: {e}")
        } else {
            format!("failed: {e}")
        });
    }
    let indexed = if list {
        invalid.clone()
    } else {
        format!("{invalid} at index 0")
    };
    let got = str_at(out, "/apiVersion").unwrap_or_default();
    if got != to {
        return Err(format!(
            "{indexed}: invalid groupVersion (expected {to}, received {got})"
        ));
    }
    let (want_kind, got_kind) = (
        str_at(original, "/kind").unwrap_or_default(),
        str_at(out, "/kind").unwrap_or_default(),
    );
    if want_kind != got_kind {
        return Err(format!(
            "{indexed}: invalid kind (expected {want_kind}, received {got_kind})"
        ));
    }
    validate_converted(original, out).map_err(|e| format!("{invalid}: {e}"))?;
    restore_object_meta(original, out).map_err(|e| format!("{at}: {e}"))
}

/// Upstream's `validateConvertedObject`: only labels and annotations may
/// differ in metadata.
fn validate_converted(original: &Value, out: &Value) -> Result<(), String> {
    for (what, pointer) in [
        ("kind", "/kind"),
        ("name", "/metadata/name"),
        ("namespace", "/metadata/namespace"),
        ("UID", "/metadata/uid"),
    ] {
        let (a, b) = (
            str_at(original, pointer).unwrap_or_default(),
            str_at(out, pointer).unwrap_or_default(),
        );
        if a != b {
            return Err(format!("must have the same {what}: {a} != {b}"));
        }
    }
    Ok(())
}

/// Upstream's `restoreObjectMeta`: the original's metadata, with the
/// converted object's labels and annotations (validated when changed).
pub fn restore_object_meta(original: &Value, out: &mut Value) -> Result<(), String> {
    let answered = match out.get("metadata") {
        None => return Err("missing metadata in converted object".into()),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata of type {} in converted object",
                go_type(other)
            ));
        }
    };
    let mut meta = original
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let Some(m) = meta.as_object_mut() else {
        return Err(format!(
            "invalid metadata of type {} in input object",
            go_type(&meta)
        ));
    };
    for field in ["labels", "annotations"] {
        let answered = match answered.get(field) {
            None | Some(Value::Null) => {
                m.remove(field);
                continue;
            }
            Some(Value::Object(f)) => f,
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in converted object",
                    go_type(other)
                ));
            }
        };
        let empty = Map::new();
        let before = match m.get(field) {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(f)) => f,
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in original object",
                    go_type(other)
                ));
            }
        };
        let mut changed = before.len() != answered.len();
        for (k, v) in answered {
            if !v.is_string() {
                return Err(format!(
                    "metadata.{field}[{k}] must be a string, but is {} in converted object",
                    go_type(v)
                ));
            }
            changed |= before.get(k) != Some(v);
        }
        if changed {
            let value = Value::Object(answered.clone());
            let errs = if field == "labels" {
                rkube_validation::validate_labels(Some(&value), "metadata.labels")
            } else {
                // Upstream's path, singular.
                rkube_validation::validate_annotations(Some(&value), "metadata.annotation")
            };
            if !errs.is_empty() {
                return Err(aggregate(&errs));
            }
        }
        m.insert(field.into(), Value::Object(answered.clone()));
    }
    out["metadata"] = meta;
    Ok(())
}

/// Go's `ErrorList.ToAggregate().Error()`.
fn aggregate(errs: &[rkube_validation::FieldError]) -> String {
    if let [one] = errs {
        return one.to_string();
    }
    let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
    format!("[{}]", all.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(api_version: &str, meta: Value) -> Value {
        json!({"apiVersion": api_version, "kind": "Widget", "metadata": meta, "spec": {}})
    }

    fn original() -> Value {
        obj(
            "example.com/v1",
            json!({"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                   "labels": {"l": "1"}, "annotations": {"a": "x"}}),
        )
    }

    #[test]
    fn answer_checks() {
        let ok = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u", "result": {"status": "Success"}, "convertedObjects": [{}]}});
        assert_eq!(converted_objects(&ok, "u", true).map(|v| v.len()), Ok(1));
        assert_eq!(
            converted_objects(&ok, "other", true),
            Err(r#"expected response.uid="other", got "u""#.into())
        );
        let mut beta = ok.clone();
        beta["apiVersion"] = json!("apiextensions.k8s.io/v1beta1");
        assert_eq!(
            converted_objects(&beta, "u", true),
            Err("expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got apiextensions.k8s.io/v1beta1, Kind=ConversionReview".into())
        );
        // v1beta1 answers are not checked for kind or uid.
        assert!(converted_objects(&beta, "other", false).is_ok());
        let failed = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u", "result": {"status": "Failure", "message": "no way"}}});
        assert_eq!(converted_objects(&failed, "u", true), Err("no way".into()));
        let bare = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u", "result": {"status": "Failure"}}});
        assert_eq!(
            converted_objects(&bare, "u", true),
            Err("response.result.status was 'Failure', not 'Success'".into())
        );
        let none = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"});
        assert_eq!(
            converted_objects(&none, "u", true),
            Err("no response provided".into())
        );
    }

    #[test]
    fn converted_object_checks() {
        let orig = original();
        let mut wrong_version = obj("example.com/v1", json!({"name": "a"}));
        assert_eq!(
            check_converted(&orig, &mut wrong_version, "example.com/v2", false, 0),
            Err("returned invalid object at index 0: invalid groupVersion (expected example.com/v2, received example.com/v1)".into())
        );
        let mut wrong_kind = obj("example.com/v2", json!({"name": "a"}));
        wrong_kind["kind"] = json!("Gadget");
        assert_eq!(
            check_converted(&orig, &mut wrong_kind, "example.com/v2", true, 0),
            Err("returned invalid converted object at index 1: invalid kind (expected Widget, received Gadget)".into())
        );
        let mut renamed = obj(
            "example.com/v2",
            json!({"name": "b", "namespace": "ns", "uid": "u1"}),
        );
        assert_eq!(
            check_converted(&orig, &mut renamed, "example.com/v2", false, 0),
            Err("returned invalid object: must have the same name: a != b".into())
        );
        let mut other_uid = obj(
            "example.com/v2",
            json!({"name": "a", "namespace": "ns", "uid": "u2"}),
        );
        assert_eq!(
            check_converted(&orig, &mut other_uid, "example.com/v2", true, 2),
            Err(
                "returned invalid converted object at index 3: must have the same UID: u1 != u2"
                    .into()
            )
        );
    }

    #[test]
    fn metadata_is_restored_but_labels_and_annotations() {
        let orig = original();
        // The webhook dropped the resourceVersion, changed a label and
        // removed the annotations: only the label changes stick.
        let mut out = obj(
            "example.com/v2",
            json!({"name": "a", "namespace": "ns", "uid": "u1", "generation": 9,
                   "labels": {"l": "2", "new": "yes"}}),
        );
        restore_object_meta(&orig, &mut out).unwrap();
        assert_eq!(
            out["metadata"],
            json!({"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                   "labels": {"l": "2", "new": "yes"}})
        );
        assert_eq!(out["apiVersion"], "example.com/v2");
    }

    #[test]
    fn metadata_errors() {
        let orig = original();
        let mut none = json!({"apiVersion": "example.com/v2", "kind": "Widget"});
        assert_eq!(
            restore_object_meta(&orig, &mut none),
            Err("missing metadata in converted object".into())
        );
        let mut list = obj("example.com/v2", json!([]));
        assert_eq!(
            restore_object_meta(&orig, &mut list),
            Err("invalid metadata of type []interface {} in converted object".into())
        );
        let mut number = obj("example.com/v2", json!({"labels": {"l": 1}}));
        assert_eq!(
            restore_object_meta(&orig, &mut number),
            Err("metadata.labels[l] must be a string, but is int64 in converted object".into())
        );
        let mut bad_type = obj("example.com/v2", json!({"annotations": "x"}));
        assert_eq!(
            restore_object_meta(&orig, &mut bad_type),
            Err("invalid metadata.annotations of type string in converted object".into())
        );
        let mut bad_label = obj("example.com/v2", json!({"labels": {"l": "not ok!"}}));
        let e = restore_object_meta(&orig, &mut bad_label).unwrap_err();
        assert!(
            e.starts_with("metadata.labels: Invalid value: \"not ok!\""),
            "{e}"
        );
        let mut bad_key = obj("example.com/v2", json!({"annotations": {"a b": "x"}}));
        let e = restore_object_meta(&orig, &mut bad_key).unwrap_err();
        assert!(
            e.starts_with("metadata.annotation: Invalid value: \"a b\""),
            "{e}"
        );
        // Unchanged labels are not validated again.
        let mut same = obj("example.com/v2", json!({"labels": {"l": "1"}}));
        assert!(restore_object_meta(&orig, &mut same).is_ok());
    }

    #[test]
    fn service_endpoints() {
        let eps = json!({"subsets": [
            {"notReadyAddresses": [{"ip": "10.0.0.9"}], "ports": [{"name": "https", "port": 9443}]},
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "other", "port": 1}, {"name": "https", "port": 8443}]},
        ]});
        assert_eq!(
            from_endpoints(&eps, "https"),
            Some(("10.0.0.1".into(), 8443))
        );
        assert_eq!(from_endpoints(&eps, "metrics"), None);
        let slice = json!({"ports": [{"name": "", "port": 9443}], "endpoints": [
            {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
            {"addresses": ["10.0.0.3"], "conditions": {}},
        ]});
        assert_eq!(from_slice(&slice, ""), Some(("10.0.0.3".into(), 9443)));
        assert_eq!(from_slice(&slice, "https"), None);
    }
}
