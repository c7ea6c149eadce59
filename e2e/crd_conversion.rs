//! CRD conversion webhooks end to end, as upstream's conformance tests
//! `CustomResourceConversionWebhook` (crd_conversion_webhook.go): the test
//! serves upstream's example converter over HTTPS in-process (v1
//! `hostPort: "host:port"` <-> v2 `host`, `port`), registers it by URL with
//! its caBundle, and reads and writes through raw requests, kube-rs and the
//! stock kubectl.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, WatchEvent,
    WatchParams,
};
use serde_json::{Value, json};

use crate::harness::Cluster;

const GROUP: &str = "stable.example.com";
const V1: &str = "stable.example.com/v1";
const V2: &str = "stable.example.com/v2";
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const CRD_NAME: &str = "e2e-test-crd-conversions.stable.example.com";
const KIND: &str = "E2eTestCrdConversion";

fn path(version: &str) -> String {
    format!("/apis/{GROUP}/{version}/namespaces/default/e2e-test-crd-conversions")
}

/// The test's conversion webhook: where it listens and every review it got.
struct Webhook {
    base: String,
    ca_bundle: String,
    reviews: Arc<Mutex<Vec<Value>>>,
    /// TLS connections accepted.
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Webhook {
    /// (apiVersion of the review, desiredAPIVersion, names) of each review.
    fn reviews(&self) -> Vec<(String, String, Vec<String>)> {
        let reviews = self.reviews.lock().expect("reviews");
        reviews
            .iter()
            .map(|r| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                let names = r["request"]["objects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| s(&o["metadata"]["name"]))
                    .collect();
                (
                    s(&r["apiVersion"]),
                    s(&r["request"]["desiredAPIVersion"]),
                    names,
                )
            })
            .collect()
    }

    fn clear(&self) {
        self.reviews.lock().expect("reviews").clear();
    }
}

/// Upstream's example converter (agnhost crd-conversion-webhook).
fn convert(obj: &Value, to: &str) -> Result<Value, String> {
    let from = obj["apiVersion"].as_str().unwrap_or_default();
    if from == to {
        return Err(format!(
            "conversion from a version to itself should not call the webhook: {to}"
        ));
    }
    let mut out = obj.clone();
    let m = out.as_object_mut().ok_or("not an object")?;
    match (from, to) {
        (V1, V2) => {
            if let Some(hp) = m.remove("hostPort") {
                let hp = hp.as_str().unwrap_or_default().to_owned();
                let parts: Vec<&str> = hp.split(':').collect();
                let [host, port] = parts[..] else {
                    return Err(format!("invalid hostPort value `{hp}`"));
                };
                m.insert("host".into(), json!(host));
                m.insert("port".into(), json!(port));
            }
        }
        (V2, V1) => {
            let (host, port) = (m.remove("host"), m.remove("port"));
            if host.is_some() || port.is_some() {
                let s = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
                let hp = format!(
                    "{}:{}",
                    s(host).unwrap_or_default(),
                    s(port).unwrap_or_default()
                );
                m.insert("hostPort".into(), json!(hp));
            }
        }
        _ => return Err(format!("unexpected conversion version {to:?}")),
    }
    m.insert("apiVersion".into(), json!(to));
    Ok(out)
}

/// Answers a review: `/convert` converts, `/fail` refuses.
fn answer(path: &str, review: &Value) -> Value {
    let request = &review["request"];
    let to = request["desiredAPIVersion"].as_str().unwrap_or_default();
    let mut result = json!({"status": "Success"});
    let mut converted = Vec::new();
    if path == "/fail" {
        result = json!({"status": "Failure", "message": "conversion refused by the test webhook"});
    } else {
        for obj in request["objects"].as_array().into_iter().flatten() {
            match convert(obj, to) {
                Ok(c) => converted.push(c),
                Err(message) => {
                    result = json!({"status": "Failure", "message": message});
                    converted.clear();
                    break;
                }
            }
        }
    }
    json!({
        "apiVersion": review["apiVersion"],
        "kind": "ConversionReview",
        "response": {"uid": request["uid"], "result": result, "convertedObjects": converted},
    })
}

/// Serves the webhook over HTTPS on 127.0.0.1 with a self-signed cert
/// for `name`.
async fn start_webhook(name: &str) -> Webhook {
    let key = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("cert");
    let ca_pem = key.cert.pem();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()),
    );
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("tls versions")
    .with_no_client_auth()
    .with_single_cert(vec![key.cert.der().clone()], key_der)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let reviews = Arc::new(Mutex::new(Vec::new()));
    let log = reviews.clone();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    let log = log.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let body: hyper::body::Incoming = req.into_body();
                        let bytes = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let review: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                        log.lock().expect("reviews").push(review.clone());
                        let out = serde_json::to_vec(&answer(&path, &review)).unwrap_or_default();
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(out))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Webhook {
        base: format!("https://127.0.0.1:{port}"),
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca_pem),
        reviews,
        connections,
    }
}

/// Upstream's test CRD: v1 with `hostPort`, v2 with `host` and `port`,
/// its webhook at a URL.
fn crd(webhook: &Webhook, path: &str) -> Value {
    let url = format!("{}{path}", webhook.base);
    crd_with(json!({"url": url, "caBundle": webhook.ca_bundle}))
}

fn crd_with(client_config: Value) -> Value {
    let schema = |props: Value| json!({"openAPIV3Schema": {"type": "object", "properties": props}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "e2e-test-crd-conversions", "singular": "e2e-test-crd-conversion",
                      "kind": KIND, "listKind": format!("{KIND}List")},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "schema": schema(json!({"hostPort": {"type": "string"}}))},
                {"name": "v2", "served": true, "storage": false,
                 "schema": schema(json!({"host": {"type": "string"}, "port": {"type": "string"}}))},
            ],
            "conversion": {"strategy": "Webhook", "webhook": {
                "conversionReviewVersions": ["v1", "v1beta1"],
                "clientConfig": client_config,
            }},
        },
    })
}

async fn req(client: &kube::Client, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let bytes = body
        .map(|b| serde_json::to_vec(&b).expect("json"))
        .unwrap_or_default();
    let content_type = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let r = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .header("accept", "application/json")
        .body(kube::client::Body::from(bytes))
        .expect("request");
    let resp = client.send(r).await.expect("send");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Installs the CRD and waits until its versions answer.
async fn install(client: &kube::Client, crd: Value) {
    let (s, v) = req(client, "POST", CRDS, Some(crd)).await;
    assert_eq!(s, 201, "{v}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s1, _) = req(client, "GET", &path("v1"), None).await;
        let (s2, _) = req(client, "GET", &path("v2"), None).await;
        if s1 == 200 && s2 == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "CRD not served: {s1} {s2}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn v1_object(name: &str, host_port: &str) -> Value {
    json!({"apiVersion": V1, "kind": KIND, "metadata": {"name": name}, "hostPort": host_port})
}

fn api(client: &kube::Client, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(GROUP, version, KIND);
    let ar = ApiResource::from_gvk_with_plural(&gvk, "e2e-test-crd-conversions");
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn assert_v2(obj: &Value, host: &str, port: &str) {
    assert_eq!(obj["apiVersion"], V2, "{obj}");
    assert_eq!(obj["host"], host, "{obj}");
    assert_eq!(obj["port"], port, "{obj}");
    assert!(obj.get("hostPort").is_none(), "{obj}");
}

fn kubectl_json(c: &Cluster, args: &[&str]) -> Value {
    let out = tokio::task::block_in_place(|| c.kubectl_ok(args));
    serde_json::from_str(&out).expect("kubectl json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converts_from_v1_to_v2() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let webhook = start_webhook("127.0.0.1").await;
    install(&client, crd(&webhook, "/convert")).await;
    let (s, created) = req(
        &client,
        "POST",
        &path("v1"),
        Some(v1_object("cr-instance-1", "localhost:8080")),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    // Stored in v1, asked in v1: no review.
    assert!(webhook.reviews().is_empty(), "{:?}", webhook.reviews());

    // Raw GET in v2: converted, with the original's metadata.
    let (s, v) = req(
        &client,
        "GET",
        &format!("{}/cr-instance-1", path("v2")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_v2(&v, "localhost", "8080");
    assert_eq!(v["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(
        v["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    let reviews = webhook.reviews();
    assert_eq!(
        reviews[0],
        (
            "apiextensions.k8s.io/v1".to_owned(),
            V2.to_owned(),
            vec!["cr-instance-1".to_owned()]
        )
    );

    // kube-rs, in v2.
    let v2 = api(&client, "v2");
    let obj = v2.get("cr-instance-1").await.expect("kube-rs get v2");
    assert_eq!(obj.data["host"], "localhost");
    assert_eq!(obj.data["port"], "8080");

    // The stock kubectl, by resource.version.group.
    let got = kubectl_json(
        &c,
        &[
            "get",
            "e2e-test-crd-conversions.v2.stable.example.com",
            "cr-instance-1",
            "-o",
            "json",
        ],
    );
    assert_v2(&got, "localhost", "8080");

    // A write in v2 is stored in v1 and answered in v2.
    let (s, v) = req(
        &client,
        "POST",
        &path("v2"),
        Some(
            json!({"apiVersion": V2, "kind": KIND, "metadata": {"name": "cr-instance-2"},
                    "host": "example.com", "port": "443"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_v2(&v, "example.com", "443");
    let (s, v) = req(
        &client,
        "GET",
        &format!("{}/cr-instance-2", path("v1")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["hostPort"], "example.com:443", "{v}");
    assert!(v.get("host").is_none(), "{v}");
    // A merge patch in v2.
    let (s, v) = req(
        &client,
        "PATCH",
        &format!("{}/cr-instance-2", path("v2")),
        Some(json!({"port": "8443", "metadata": {"labels": {"patched": "yes"}}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_v2(&v, "example.com", "8443");
    assert_eq!(v["metadata"]["labels"]["patched"], "yes");
    let (_, v) = req(
        &client,
        "GET",
        &format!("{}/cr-instance-2", path("v1")),
        None,
    )
    .await;
    assert_eq!(v["hostPort"], "example.com:8443", "{v}");

    // Watch events in v2.
    let list = v2.list(&ListParams::default()).await.expect("list v2");
    let rv = list.metadata.resource_version.unwrap_or_default();
    let mut events = v2
        .watch(&WatchParams::default().timeout(20), &rv)
        .await
        .expect("watch v2")
        .boxed();
    let (s, v) = req(
        &client,
        "POST",
        &path("v1"),
        Some(v1_object("cr-instance-3", "watched:1")),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let added = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.next().await {
            if let Ok(WatchEvent::Added(o)) = ev
                && o.metadata.name.as_deref() == Some("cr-instance-3")
            {
                return o;
            }
        }
        panic!("watch ended");
    })
    .await
    .expect("ADDED event");
    assert_eq!(added.data["host"], "watched");
    assert_eq!(added.data["port"], "1");

    // A delete answers with the object in the version asked.
    let (s, v) = req(
        &client,
        "DELETE",
        &format!("{}/cr-instance-1", path("v2")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_v2(&v, "localhost", "8080");
    v2.delete("cr-instance-3", &DeleteParams::default())
        .await
        .expect("kube-rs delete v2");
    // So does a deletecollection.
    let (s, v) = req(&client, "DELETE", &path("v2"), None).await;
    assert_eq!(s, 200, "{v}");
    let items = v["items"].as_array().expect("deleted items");
    assert_eq!(items.len(), 1, "{v}");
    assert_v2(&items[0], "example.com", "8443");
    // One kept-alive connection carried the reviews, one after another.
    let reviews = webhook.reviews.lock().expect("reviews").len();
    let connections = webhook
        .connections
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        reviews > 2 && connections == 1,
        "{reviews} reviews over {connections} connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converts_a_non_homogeneous_list() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let webhook = start_webhook("127.0.0.1").await;
    install(&client, crd(&webhook, "/convert")).await;
    let (s, v) = req(
        &client,
        "POST",
        &path("v1"),
        Some(v1_object("cr-instance-1", "localhost:8080")),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    // Storage moves to v2.
    let (s, v) = req(
        &client,
        "PATCH",
        &format!("{CRDS}/{CRD_NAME}"),
        Some(json!({"spec": {"versions": [
            {"name": "v1", "served": true, "storage": false,
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {"hostPort": {"type": "string"}}}}},
            {"name": "v2", "served": true, "storage": true,
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {"host": {"type": "string"}, "port": {"type": "string"}}}}},
        ]}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // A second object created in v1 once v2 is the storage version (its
    // create converts it to v2).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        webhook.clear();
        let (s, v) = req(
            &client,
            "POST",
            &path("v1"),
            Some(v1_object("cr-instance-2", "example.com:443")),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        if webhook
            .reviews()
            .iter()
            .any(|(_, to, names)| to == V2 && names == &["cr-instance-2"])
        {
            break;
        }
        assert!(Instant::now() < deadline, "storage version never moved");
        let (s, v) = req(
            &client,
            "DELETE",
            &format!("{}/cr-instance-2", path("v1")),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A list in v2: one review, with only the object stored in v1.
    webhook.clear();
    let (s, list) = req(&client, "GET", &path("v2"), None).await;
    assert_eq!(s, 200, "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
    assert_v2(&items[0], "localhost", "8080");
    assert_v2(&items[1], "example.com", "443");
    assert_eq!(
        webhook.reviews(),
        [(
            "apiextensions.k8s.io/v1".to_owned(),
            V2.to_owned(),
            vec!["cr-instance-1".to_owned()]
        )]
    );
    // And in v1: only the one stored in v2 is sent.
    webhook.clear();
    let (s, list) = req(&client, "GET", &path("v1"), None).await;
    assert_eq!(s, 200, "{list}");
    let host_ports: Vec<&Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| &i["hostPort"])
        .collect();
    assert_eq!(
        host_ports,
        [&json!("localhost:8080"), &json!("example.com:443")]
    );
    assert_eq!(
        webhook.reviews(),
        [(
            "apiextensions.k8s.io/v1".to_owned(),
            V1.to_owned(),
            vec!["cr-instance-2".to_owned()]
        )]
    );

    // kube-rs and the stock kubectl list in v2.
    let names: Vec<(String, String)> = api(&client, "v2")
        .list(&ListParams::default())
        .await
        .expect("kube-rs list v2")
        .items
        .iter()
        .map(|o| {
            (
                o.data["host"].as_str().unwrap_or_default().to_owned(),
                o.data["port"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("localhost".to_owned(), "8080".to_owned()),
            ("example.com".to_owned(), "443".to_owned())
        ]
    );
    let got = kubectl_json(
        &c,
        &[
            "get",
            "e2e-test-crd-conversions.v2.stable.example.com",
            "-o",
            "json",
        ],
    );
    let items = got["items"].as_array().expect("kubectl items");
    assert_eq!(items.len(), 2, "{got}");
    assert_v2(&items[0], "localhost", "8080");
    assert_v2(&items[1], "example.com", "443");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_is_an_internal_error() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let webhook = start_webhook("127.0.0.1").await;
    install(&client, crd(&webhook, "/fail")).await;
    let (s, v) = req(
        &client,
        "POST",
        &path("v1"),
        Some(v1_object("cr-instance-1", "localhost:8080")),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let want = format!(
        "Internal error occurred: conversion webhook for {V1}, Kind={KIND} failed: conversion refused by the test webhook"
    );
    for url in [format!("{}/cr-instance-1", path("v2")), path("v2")] {
        let (s, v) = req(&client, "GET", &url, None).await;
        assert_eq!(s, 500, "{url}: {v}");
        assert_eq!(v["kind"], "Status", "{v}");
        assert_eq!(v["reason"], "InternalError", "{v}");
        assert_eq!(v["message"], want, "{v}");
    }
    // Through kubectl too.
    let out = tokio::task::block_in_place(|| {
        c.kubectl(&[
            "get",
            "e2e-test-crd-conversions.v2.stable.example.com",
            "cr-instance-1",
        ])
    });
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("conversion refused by the test webhook"),
        "{stderr}"
    );

    // A webhook that cannot be reached.
    let (s, v) = req(
        &client,
        "PATCH",
        &format!("{CRDS}/{CRD_NAME}"),
        Some(json!({"spec": {"conversion": {"webhook": {"clientConfig": {
            "url": "https://127.0.0.1:1/convert"}}}}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, v) = req(
            &client,
            "GET",
            &format!("{}/cr-instance-1", path("v2")),
            None,
        )
        .await;
        assert_eq!(s, 500, "{v}");
        let message = v["message"].as_str().unwrap_or_default();
        if message.starts_with(&format!(
            "Internal error occurred: conversion webhook for {V1}, Kind={KIND} failed: Post \"https://127.0.0.1:1/convert?timeout=30s\": dial tcp 127.0.0.1:1: connect:"
        )) {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A Webhook strategy needs its webhook.
    let mut bad = crd(&webhook, "/convert");
    bad["metadata"]["name"] = json!("gizmos.stable.example.com");
    bad["spec"]["names"] = json!({"plural": "gizmos", "kind": "Gizmo"});
    bad["spec"]["conversion"] = json!({"strategy": "Webhook"});
    let (s, v) = req(&client, "POST", CRDS, Some(bad)).await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["message"].as_str().unwrap_or_default().contains(
            "spec.conversion.webhook: Required value: required when strategy is set to Webhook"
        ),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_behind_a_service() {
    let c = Cluster::up().await;
    let client = c.client().await;
    // Dialled at the Service's endpoint, verified as the Service's name.
    let webhook = start_webhook("conversion-webhook.default.svc").await;
    let port: u16 = webhook
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let (s, v) = req(
        &client,
        "POST",
        "/api/v1/namespaces/default/services",
        Some(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "conversion-webhook"},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = req(
        &client,
        "POST",
        "/api/v1/namespaces/default/endpoints",
        Some(json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "conversion-webhook"},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                         "ports": [{"name": "https", "port": port}]}]})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let mut crd = crd_with(json!({
        "service": {"namespace": "default", "name": "conversion-webhook", "path": "/convert"},
        "caBundle": webhook.ca_bundle,
    }));
    // The first supported review version is the one sent.
    crd["spec"]["conversion"]["webhook"]["conversionReviewVersions"] = json!(["v1beta1", "v1"]);
    install(&client, crd).await;
    let (s, v) = req(
        &client,
        "POST",
        &path("v1"),
        Some(v1_object("cr-instance-1", "localhost:8080")),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = req(
        &client,
        "GET",
        &format!("{}/cr-instance-1", path("v2")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_v2(&v, "localhost", "8080");
    assert_eq!(
        webhook.reviews()[0].0,
        "apiextensions.k8s.io/v1beta1",
        "{:?}",
        webhook.reviews()
    );
}
