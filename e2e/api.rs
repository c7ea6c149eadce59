//! API server core behaviours through kubectl and kube-rs: discovery,
//! allocation, subresources, deletion, errors.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

use crate::harness::Cluster;

/// (resource, apiVersion, namespaced, kind) of every resource a default
/// v1.36 cluster lists in `kubectl api-resources`: GA versions, the
/// preferred (highest) one per group, from the upstream OpenAPI document.
fn expected_api_resources() -> Option<BTreeSet<(String, String, bool, String)>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/kubernetes-openapi-v2.json"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        assert!(std::env::var("CI").is_err(), "{path} is missing");
        return None;
    };
    let doc: Value = serde_json::from_str(&text).ok()?;
    let mut found = BTreeSet::new();
    for (p, ops) in doc["paths"].as_object()? {
        let parts: Vec<&str> = p.trim_matches('/').split('/').collect();
        let (group, version, rest) = match parts.as_slice() {
            ["api", v, rest @ ..] => ("", *v, rest.to_vec()),
            ["apis", g, v, rest @ ..] => (*g, *v, rest.to_vec()),
            _ => continue,
        };
        let ga = version.starts_with('v') && version[1..].chars().all(|c| c.is_ascii_digit());
        if !ga || rest.first() == Some(&"watch") {
            continue;
        }
        let (plural, namespaced) = match rest.as_slice() {
            ["namespaces", "{namespace}", plural] => (*plural, true),
            [plural] if *plural != "namespaces" || group.is_empty() => (*plural, false),
            _ => continue,
        };
        let gvk = ops
            .as_object()?
            .values()
            .find_map(|op| op.get("x-kubernetes-group-version-kind"));
        let Some(kind) = gvk.and_then(|g| g["kind"].as_str()) else {
            continue;
        };
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        found.insert((plural.to_owned(), api_version, namespaced, kind.to_owned()));
    }
    // A cluster-scoped listing of a namespaced resource also matches `[plural]`.
    let namespaced: BTreeSet<(String, String)> = found
        .iter()
        .filter(|r| r.2)
        .map(|r| (r.0.clone(), r.1.clone()))
        .collect();
    found.retain(|r| r.2 || !namespaced.contains(&(r.0.clone(), r.1.clone())));
    // Only the preferred (highest) version of each group.
    let version_of = |api: &str| {
        api.rsplit('/')
            .next()
            .unwrap_or("")
            .trim_start_matches('v')
            .parse::<u32>()
            .unwrap_or(0)
    };
    let group_of = |api: &str| {
        if api.contains('/') {
            api.split('/').next().unwrap_or("").to_owned()
        } else {
            String::new()
        }
    };
    let mut best: std::collections::BTreeMap<String, u32> = Default::default();
    for r in &found {
        let e = best.entry(group_of(&r.1)).or_default();
        *e = (*e).max(version_of(&r.1));
    }
    found.retain(|r| best.get(&group_of(&r.1)) == Some(&version_of(&r.1)));
    Some(found)
}

#[tokio::test]
async fn kubectl_api_resources_lists_the_v1_36_set() {
    let Some(expected) = expected_api_resources() else {
        return;
    };
    let c = Cluster::up().await;
    let out = c.kubectl_ok(&["api-resources", "--no-headers"]);
    let mut got = BTreeSet::new();
    for line in out.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // NAME [SHORTNAMES] APIVERSION NAMESPACED KIND
        let (name, api, namespaced, kind) = match cols.len() {
            4 => (cols[0], cols[1], cols[2], cols[3]),
            5 => (cols[0], cols[2], cols[3], cols[4]),
            _ => panic!("unexpected line {line:?}"),
        };
        got.insert((
            name.to_owned(),
            api.to_owned(),
            namespaced == "true",
            kind.to_owned(),
        ));
    }
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    for (name, short) in [
        ("pods", "po"),
        ("services", "svc"),
        ("deployments", "deploy"),
        ("namespaces", "ns"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        assert!(line.split_whitespace().nth(1) == Some(short), "{line}");
    }
}

#[tokio::test]
async fn services_get_cluster_ips_and_node_ports() {
    let c = Cluster::up().await;
    c.kubectl_ok(&["create", "service", "nodeport", "np", "--tcp=80:8080"]);
    let svc: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "svc", "np", "-o", "json"])).unwrap();
    let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_owned();
    assert!(ip.starts_with("10."), "{ip}");
    let port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&port), "{port}");
    // The address is an IPAddress object owned by the service.
    let addr: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "ipaddress", &ip, "-o", "json"])).unwrap();
    assert_eq!(addr["spec"]["parentRef"]["name"], "np");
    // The kubernetes service holds the first address.
    let k: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "svc", "kubernetes", "-o", "json"])).unwrap();
    assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
    let taken = c.kubectl_with_input(
        &["create", "-f", "-"],
        Some(r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"dup"},"spec":{"clusterIP":"10.96.0.1","ports":[{"port":80}]}}"#),
    );
    let err = String::from_utf8_lossy(&taken.stderr);
    assert!(err.contains("provided IP is already allocated"), "{err}");
    c.kubectl_ok(&["delete", "svc", "np"]);
    assert!(
        !c.kubectl(&["get", "ipaddress", &ip]).status.success(),
        "released"
    );
}

#[tokio::test]
async fn scale_subresource_and_generation() {
    let c = Cluster::up().await;
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
    ]);
    c.kubectl_ok(&["scale", "deployment", "web", "--replicas=4"]);
    let d: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(d["metadata"]["generation"], 2);
    // Defaults as upstream.
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    let scale: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]))
    .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["selector"], "app=web");
}

#[tokio::test]
async fn namespace_deletion_marks_it_terminating_and_refuses_new_content() {
    let c = Cluster::up().await;
    c.kubectl_ok(&["create", "namespace", "doomed"]);
    c.kubectl_ok(&["delete", "namespace", "doomed", "--wait=false"]);
    let ns: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "ns", "doomed", "-o", "json"])).unwrap();
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(ns["metadata"]["deletionTimestamp"].is_string());
    let out = c.kubectl(&["create", "configmap", "late", "-n", "doomed"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("because it is being terminated"), "{err}");
}

#[tokio::test]
async fn invalid_objects_are_rejected_with_upstream_messages() {
    let c = Cluster::up().await;
    let out = c.kubectl_with_input(
        &["create", "-f", "-"],
        Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain"#),
        "{err}"
    );
    let out = c.kubectl_with_input(
        &["create", "-f", "-"],
        Some(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}"#),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.containers[0].image: Required value"),
        "{err}"
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_and_graceful_pod_deletion() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "held", "finalizers": ["example.com/hold"] }
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let held = cms.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    // Removing the last finalizer completes the deletion.
    let mut released = held.clone();
    released.metadata.finalizers = None;
    cms.replace("held", &PostParams::default(), &released)
        .await
        .unwrap();
    assert!(cms.get_opt("held").await.unwrap().is_none());

    // A pod bound to a node waits for its kubelet; grace 0 deletes at once.
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "p" },
        "spec": { "nodeName": "node-1", "containers": [{ "name": "c", "image": "busybox" }] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let terminating = pods.get("p").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete("p", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(pods.get_opt("p").await.unwrap().is_none());
}

#[tokio::test]
async fn bad_requests_get_upstream_errors() {
    let c = Cluster::up().await;
    let raw = |args: &[&str]| {
        let out = c.kubectl(args);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Malformed JSON is a 400.
    let err = raw(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        "/dev/null",
    ]);
    assert!(
        err.contains("BadRequest") || err.contains("400") || err.contains("unrecognized"),
        "{err}"
    );
    // Unknown paths are 404s.
    let err = raw(&["get", "--raw", "/api/v1/nonsense"]);
    assert!(
        err.contains("NotFound")
            || err.contains("the server could not find the requested resource"),
        "{err}"
    );
    // Metrics count requests.
    let metrics = c.kubectl_ok(&["get", "--raw", "/metrics"]);
    assert!(metrics.contains("apiserver_request_total{"), "{metrics}");
    assert!(
        metrics.contains("apiserver_request_duration_seconds_bucket{"),
        "{metrics}"
    );
}

#[tokio::test]
async fn dry_run_and_generate_name() {
    let c = Cluster::up().await;
    let out = c.kubectl_ok(&[
        "create",
        "configmap",
        "dry",
        "--dry-run=server",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "configmap/dry");
    assert!(!c.kubectl(&["get", "configmap", "dry"]).status.success());
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    let cm: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "generateName": "gen-" } })).unwrap();
    let made = cms.create(&PostParams::default(), &cm).await.unwrap();
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn kubectl_get_watch_and_tables() {
    let c = Cluster::up().await;
    c.kubectl_ok(&["create", "configmap", "first", "--from-literal=a=b"]);
    let mut child = std::process::Command::new("kubectl")
        .args(["get", "configmaps", "-w", "--request-timeout=5s"])
        .env("KUBECONFIG", c.kubeconfig())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    c.kubectl_ok(&["create", "configmap", "second", "--from-literal=a=b"]);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NAME") && text.contains("DATA"), "{text}");
    assert!(text.contains("first") && text.contains("second"), "{text}");
    let all = c.kubectl_ok(&["get", "all"]);
    assert!(all.contains("service/kubernetes"), "{all}");
    let wide = c.kubectl_ok(&["get", "svc", "-o", "wide"]);
    assert!(wide.contains("SELECTOR"), "{wide}");
}

#[tokio::test]
async fn kubectl_describes_everyday_kinds() {
    let c = Cluster::up().await;
    c.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=user=admin",
    ]);
    c.kubectl_ok(&["create", "service", "clusterip", "api", "--tcp=8080:80"]);
    c.kubectl_ok(&["create", "deployment", "api", "--image=busybox"]);
    c.kubectl_ok(&["create", "namespace", "team"]);
    let secret = c.kubectl_ok(&["describe", "secret", "creds"]);
    assert!(
        secret.contains("Type:  Opaque") && secret.contains("user:  5 bytes"),
        "{secret}"
    );
    let svc = c.kubectl_ok(&["describe", "service", "api"]);
    assert!(
        svc.contains("Type:                     ClusterIP") || svc.contains("ClusterIP"),
        "{svc}"
    );
    assert!(svc.contains("8080/TCP"), "{svc}");
    let deploy = c.kubectl_ok(&["describe", "deployment", "api"]);
    assert!(
        deploy.contains("StrategyType:           RollingUpdate"),
        "{deploy}"
    );
    assert!(
        deploy.contains("25% max unavailable, 25% max surge"),
        "{deploy}"
    );
    let ns = c.kubectl_ok(&["describe", "namespace", "team"]);
    assert!(ns.contains("Status:       Active"), "{ns}");
    let listed = c.kubectl_ok(&[
        "get",
        "secrets,services,deployments,namespaces",
        "-o",
        "name",
    ]);
    for name in [
        "secret/creds",
        "service/api",
        "deployment.apps/api",
        "namespace/team",
    ] {
        assert!(listed.contains(name), "{listed}");
    }
    c.kubectl_ok(&["delete", "secret/creds", "service/api", "deployment/api"]);
    let gone = c.kubectl_ok(&["get", "secrets,services,deployments", "-o", "name"]);
    assert!(
        !gone.contains("creds") && !gone.contains("service/api"),
        "{gone}"
    );
}

/// A raw request with any body and content type: (status, Status reason).
async fn raw_request(
    client: &kube::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(kube::client::Body::from(body)).unwrap();
    let resp = client.send(req).await.expect("send");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    let reason = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, reason)
}

#[tokio::test]
async fn protocol_errors_are_upstream_statuses() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let json = [("content-type", "application/json")];
    // Malformed JSON: 400, never a crash.
    assert_eq!(
        raw_request(&client, "POST", cms, &json, b"{\"metadata\": ".to_vec()).await,
        (400, "BadRequest".into())
    );
    // An unknown body format: 415.
    let text = [("content-type", "text/plain")];
    assert_eq!(
        raw_request(&client, "POST", cms, &text, b"hello".to_vec()).await,
        (415, "UnsupportedMediaType".into())
    );
    // Over the 3 MiB body limit: 413.
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    assert_eq!(
        raw_request(&client, "POST", cms, &json, big).await,
        (413, "RequestEntityTooLarge".into())
    );
    // No acceptable response type: 406.
    let proto = [("accept", "application/vnd.kubernetes.protobuf")];
    assert_eq!(
        raw_request(&client, "GET", cms, &proto, Vec::new()).await,
        (406, "NotAcceptable".into())
    );
    // A verb the resource does not serve: 405.
    assert_eq!(
        raw_request(&client, "PUT", cms, &json, b"{}".to_vec()).await,
        (405, "MethodNotAllowed".into())
    );
    let item = format!("{cms}/x");
    assert_eq!(
        raw_request(&client, "POST", &item, &json, b"{}".to_vec()).await,
        (405, "MethodNotAllowed".into())
    );
    // The server is still fine.
    let ok = raw_request(&client, "GET", cms, &[], Vec::new()).await;
    assert_eq!(ok.0, 200);
}

#[tokio::test]
async fn kubectl_patch_set_image_and_apply() {
    let c = Cluster::up().await;
    c.kubectl_ok(&["create", "deployment", "web", "--image=busybox"]);
    c.kubectl_ok(&["set", "image", "deployment/web", "busybox=busybox:1.36"]);
    c.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
    ]);
    // Strategic merge: containers merge by name.
    c.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"nginx"}]}}}}"#,
    ]);
    c.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"fe"}}}"#,
    ]);
    let d: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    assert_eq!(d["spec"]["replicas"], 3);
    let containers: Vec<(&str, &str)> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["image"].as_str().unwrap()))
        .collect();
    assert_eq!(
        containers,
        vec![("sidecar", "nginx"), ("busybox", "busybox:1.36")]
    );
    assert_eq!(d["metadata"]["labels"]["tier"], "fe");
    // A failing JSON patch test op changes nothing.
    let out = c.kubectl(&["patch", "deployment", "web", "--type=json", "-p", r#"[{"op":"test","path":"/spec/replicas","value":9},{"op":"replace","path":"/spec/replicas","value":1}]"#]);
    assert!(!out.status.success());
    let replicas = c.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "3");

    // kubectl apply: create, change, then drop a field.
    let manifest = |data: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"applied","labels":{{"app":"x"}}}},"data":{data}}}"#
        )
    };
    let apply = |m: String| {
        let out = c.kubectl_with_input(&["apply", "-f", "-"], Some(&m));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    apply(manifest(r#"{"a":"1","b":"2"}"#));
    apply(manifest(r#"{"a":"1","b":"3"}"#));
    apply(manifest(r#"{"a":"1"}"#));
    let cm: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "cm", "applied", "-o", "json"])).unwrap();
    assert_eq!(
        cm["data"],
        json!({"a": "1"}),
        "the field dropped from the manifest went away"
    );
}

#[tokio::test]
async fn controllers_publish_defaults_and_finish_namespace_deletion() {
    let c = Cluster::up_with_controllers().await;
    c.kubectl_ok(&["create", "namespace", "team"]);
    c.kubectl_ok(&[
        "create",
        "configmap",
        "work",
        "-n",
        "team",
        "--from-literal=a=b",
    ]);
    c.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "svc",
        "-n",
        "team",
        "--tcp=80:80",
    ]);
    // The service account controller and the root CA publisher.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let sa = c.kubectl(&["get", "serviceaccount", "default", "-n", "team"]);
        let ca = c.kubectl(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ]);
        if sa.status.success() && String::from_utf8_lossy(&ca.stdout).contains("BEGIN CERTIFICATE")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "default objects not published in 15s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The namespace controller empties the namespace and finalizes it.
    c.kubectl_ok(&["delete", "namespace", "team", "--timeout=30s"]);
    let gone = c.kubectl(&["get", "namespace", "team"]);
    assert!(!gone.status.success(), "the namespace is gone");
    let left = c.kubectl_ok(&["get", "configmaps,services", "-n", "team", "-o", "name"]);
    assert!(left.trim().is_empty(), "{left}");
    let ips = c.kubectl_ok(&["get", "ipaddresses", "-o", "name"]);
    assert_eq!(
        ips.lines().count(),
        1,
        "only the kubernetes service keeps an address: {ips}"
    );
}

#[tokio::test]
async fn unknown_fields_follow_field_validation() {
    let c = Cluster::up().await;
    let manifest = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"typo"},
        "spec":{"replicsa":2,"selector":{"matchLabels":{"app":"t"}},
        "template":{"metadata":{"labels":{"app":"t"}},"spec":{"containers":[{"name":"c","image":"busybox","imagee":"x"}]}}}}"#;
    // kubectl's default is --validate=strict.
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(manifest));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replicsa", unknown field "spec.template.spec.containers[0].imagee""#),
        "{err}"
    );
    assert!(
        !c.kubectl(&["get", "deploy", "typo"]).status.success(),
        "nothing written"
    );
    // Warn: created, with warnings, and the unknown fields dropped.
    let out = c.kubectl_with_input(&["create", "--validate=warn", "-f", "-"], Some(manifest));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(
        warn.contains(r#"Warning: unknown field "spec.replicsa""#),
        "{warn}"
    );
    let d: Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "deploy", "typo", "-o", "json"])).unwrap();
    assert!(d["spec"].get("replicsa").is_none());
    assert!(
        d["spec"]["template"]["spec"]["containers"][0]
            .get("imagee")
            .is_none()
    );
    // Strict patches too.
    let out = c.kubectl(&[
        "patch",
        "deploy",
        "typo",
        "--type=merge",
        "-p",
        r#"{"spec":{"paused":true,"bogus":1}}"#,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"unknown field "spec.bogus""#), "{err}");
}

#[tokio::test]
async fn history_is_compacted_on_an_interval() {
    let c = Cluster::up_compacting().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    let first = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": "old" } })).unwrap(),
        )
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    // A few intervals later the revision of that create is compacted away
    // (compaction goes to the revision seen one interval earlier).
    for i in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let cm: ConfigMap =
            serde_json::from_value(json!({ "metadata": { "name": format!("new-{i}") } })).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let list = cms
        .list(
            &kube::api::ListParams::default()
                .at(&rv)
                .matching(kube::api::VersionMatch::Exact),
        )
        .await;
    match list {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 410, "{s:?}"),
        other => panic!("expected 410 for a compacted revision, got {other:?}"),
    }
}

/// A condition on the Lease holder.
type HolderCheck = Box<dyn Fn(&Option<String>) -> bool>;

/// The holder of the controller manager's Lease.
async fn lease_holder(client: &kube::Client) -> Option<String> {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-system");
    leases
        .get_opt("kube-controller-manager")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

#[tokio::test]
async fn two_controller_managers_elect_one_leader_and_fail_over() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let start = |name: &str| {
        std::process::Command::new(crate::harness::rkube_binary())
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(c.dir.path().join("controller-manager.conf"))
            .arg("--root-ca-file")
            .arg(c.dir.path().join("pki/ca.crt"))
            .args([
                "--leader-elect-lease-duration=3s",
                "--leader-elect-renew-deadline=2s",
                "--leader-elect-retry-period=500ms",
                // Two on one host: no fixed /metrics port.
                "--secure-port=0",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(c.dir.path().join(format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap()
    };
    let mut a = start("a");
    let mut b = start("b");
    let wait_for = |pred: HolderCheck| {
        let client = client.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let holder = lease_holder(&client).await;
                if pred(&holder) {
                    return holder;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "lease holder stayed {holder:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    let first = wait_for(Box::new(|h| h.is_some())).await.unwrap();
    // Exactly one of them works: the leader publishes the default objects.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !c
        .kubectl(&["get", "serviceaccount", "default"])
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the leader did not run the controllers"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Stop whichever holds the lease; the other takes over.
    let logs = |n: &str| {
        std::fs::read_to_string(c.dir.path().join(format!("{n}.log"))).unwrap_or_default()
    };
    let a_leads = logs("a").contains("acquired the leader lease");
    let (leader, follower) = if a_leads {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    leader.kill().unwrap();
    leader.wait().unwrap();
    let first_clone = first.clone();
    let second = wait_for(Box::new(move |h| {
        h.as_ref().is_some_and(|h| *h != first_clone)
    }))
    .await
    .unwrap();
    assert_ne!(first, second);
    let _ = follower.kill();
    let _ = follower.wait();
}

#[tokio::test]
async fn pods_are_bound_to_nodes_once() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "p" },
        "spec": { "containers": [{ "name": "c", "image": "busybox" }] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": { "name": "p" },
        "target": { "apiVersion": "v1", "kind": "Node", "name": "node-1" }
    });
    pods.create_subresource::<Value, Value>("binding", "p", &PostParams::default(), &binding)
        .await
        .unwrap();
    let bound = pods.get("p").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("node-1"));
    let again = pods
        .create_subresource::<Value, Value>("binding", "p", &PostParams::default(), &binding)
        .await
        .unwrap_err();
    match again {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("is already assigned to node \"node-1\""),
                "{}",
                s.message
            );
        }
        other => panic!("expected 409, got {other:?}"),
    }
}

#[tokio::test]
async fn evictions_delete_pods() {
    let c = Cluster::up().await;
    let pods: Api<Pod> = Api::default_namespaced(c.client().await);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "evictee" },
        "spec": { "containers": [{ "name": "c", "image": "busybox" }] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let eviction = json!({
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": { "name": "evictee" },
        "deleteOptions": { "gracePeriodSeconds": 0 }
    });
    pods.create_subresource::<Value, Value>(
        "eviction",
        "evictee",
        &PostParams::default(),
        &eviction,
    )
    .await
    .unwrap();
    assert!(pods.get_opt("evictee").await.unwrap().is_none());
}

#[tokio::test]
async fn objects_leaving_a_selection_are_deleted_with_their_previous_content() {
    use futures::{StreamExt, TryStreamExt};
    let c = Cluster::up().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    let cm: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "sel", "labels": { "app": "x" } } }))
            .unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let mut w = cms
        .watch(&kube::api::WatchParams::default().labels("app=x"), &rv)
        .await
        .unwrap()
        .boxed();
    let mut moved = created.clone();
    moved.metadata.labels = Some([("app".to_string(), "y".to_string())].into());
    let updated = cms
        .replace("sel", &PostParams::default(), &moved)
        .await
        .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), w.try_next())
        .await
        .unwrap()
        .unwrap();
    match event {
        Some(kube::api::WatchEvent::Deleted(cm)) => {
            assert_eq!(cm.metadata.labels.unwrap()["app"], "x", "previous content");
            assert_eq!(
                cm.metadata.resource_version, updated.metadata.resource_version,
                "at the change's revision"
            );
        }
        other => panic!("expected DELETED, got {other:?}"),
    }
}
