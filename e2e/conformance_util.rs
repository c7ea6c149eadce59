//! Helpers shared by the `conformance_*` modules: ports of upstream's
//! API-server-only conformance tests (`test/conformance/testdata/conformance.yaml`).

use std::fmt::Debug;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Api, PostParams, WatchEvent};
use kube::{Client, Error};
use serde_json::{Value, json};

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Events<K> = BoxStream<'static, kube::Result<WatchEvent<K>>>;

/// Builds a typed object from JSON.
pub fn obj<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).expect("valid object JSON")
}

/// Creates a namespace `<base>-<n>` (the e2e framework's per-test namespace).
pub async fn test_namespace(client: &Client, base: &str) -> String {
    let api: Api<Namespace> = Api::all(client.clone());
    let created = api
        .create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "generateName": format!("{base}-") } })),
        )
        .await
        .expect("create test namespace");
    created.metadata.name.expect("generated name")
}

/// The API status of an error, or a panic.
pub fn api_status(e: Error) -> Box<kube::core::Status> {
    match e {
        Error::Api(s) => s,
        other => panic!("expected an API error status, got {other:?}"),
    }
}

/// The HTTP code of an API error.
pub fn code(e: Error) -> u16 {
    api_status(e).code
}

/// The next watch event within [`WAIT`].
pub async fn next_event<K: Debug>(w: &mut Events<K>) -> WatchEvent<K> {
    match tokio::time::timeout(WAIT, w.try_next()).await {
        Ok(Ok(Some(ev))) => ev,
        Ok(Ok(None)) => panic!("watch ended early"),
        Ok(Err(e)) => panic!("watch failed: {e:?}"),
        Err(_) => panic!("no watch event within {WAIT:?}"),
    }
}

/// Asserts no event arrives within `d`.
pub async fn no_event<K: Debug>(w: &mut Events<K>, d: Duration) {
    if let Ok(ev) = tokio::time::timeout(d, w.next()).await {
        panic!("expected no watch event, got {ev:?}");
    }
}

/// (type, name, resourceVersion) of a watch event, for comparisons.
pub fn describe<K: kube::Resource>(ev: &WatchEvent<K>) -> (String, String, String) {
    let (t, o) = match ev {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        WatchEvent::Bookmark(b) => {
            return (
                "BOOKMARK".into(),
                String::new(),
                b.metadata.resource_version.clone(),
            );
        }
        WatchEvent::Error(e) => panic!("watch ERROR event: {e:?}"),
    };
    (
        t.into(),
        o.meta().name.clone().unwrap_or_default(),
        o.meta().resource_version.clone().unwrap_or_default(),
    )
}

/// A raw request to the API server: (status, content type, body).
pub async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    accept: Option<&str>,
    body: Option<Value>,
) -> (u16, String, Vec<u8>) {
    let mut req = kube::core::Request::new(path.to_owned())
        .create(&Default::default(), Vec::new())
        .expect("request");
    *req.uri_mut() = path.parse().expect("uri");
    *req.method_mut() = method.parse().expect("method");
    if let Some(accept) = accept {
        req.headers_mut()
            .insert("accept", accept.parse().expect("accept header"));
    }
    if let Some(body) = body {
        *req.body_mut() = serde_json::to_vec(&body).unwrap();
        req.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
    } else {
        req.headers_mut().remove("content-type");
    }
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("send request");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    (status, ct, bytes.to_vec())
}
