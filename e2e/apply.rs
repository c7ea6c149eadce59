//! Server-side apply and managed fields with the stock kubectl: client-side
//! `kubectl apply` removing fields, `--server-side` with conflicts, forcing
//! and ownership moving between managers, and every kubectl write verb
//! recording its manager.

use serde_json::Value;

use crate::harness::Cluster;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
"#;

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl_ok(&a)).expect("kubectl -o json")
}

fn managers(obj: &Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e["manager"].as_str().unwrap_or_default(),
                e["operation"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn server_side_apply_conflicts_force_and_ownership() {
    let c = Cluster::up().await;
    let out = c.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(DEPLOYMENT));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deployment.apps/web serverside-applied")
    );
    let d = json(&c, &["get", "deploy", "web", "--show-managed-fields"]);
    assert_eq!(managers(&d), vec!["kubectl/Apply"]);
    let fields = &d["metadata"]["managedFields"][0]["fieldsV1"];
    assert!(fields["f:spec"]["f:replicas"].is_object());
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:image"]
            .is_object()
    );

    // Another manager changes a field the applier owns; the applier's next
    // apply conflicts, naming the manager and the field.
    c.kubectl_ok(&["scale", "deploy", "web", "--replicas=3"]);
    let d = json(&c, &["get", "deploy", "web", "--show-managed-fields"]);
    let scaled = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subresource"] == "scale")
        .cloned()
        .unwrap_or_default();
    assert_eq!(scaled["operation"], "Update", "{}", d["metadata"]);
    assert!(
        scaled["fieldsV1"]["f:spec"]["f:replicas"].is_object(),
        "{scaled}"
    );
    let out = c.kubectl_with_input(&["apply", "--server-side", "-f", "-"], Some(DEPLOYMENT));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"
        ),
        "{err}"
    );
    // Two appliers: the second conflicts with the first on a changed value.
    let other = DEPLOYMENT
        .replace("nginx:1.25", "nginx:1.26")
        .replace("labels: {app: web, tier: front}", "labels: {app: web}");
    let out = c.kubectl_with_input(
        &[
            "apply",
            "--server-side",
            "--field-manager=team-b",
            "-f",
            "-",
        ],
        Some(&other),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Apply failed with 2 conflicts"), "{err}");
    assert!(
        err.contains(r#".spec.template.spec.containers[name="nginx"].image"#),
        "{err}"
    );
    // Forced: team-b takes the fields, the first applier keeps the rest.
    c.kubectl_ok_with_input(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=team-b",
            "-f",
            "-",
        ],
        &other,
    );
    let d = json(&c, &["get", "deploy", "web", "--show-managed-fields"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    assert_eq!(d["spec"]["replicas"], 2);
    let kubectl_fields = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kubectl" && e["operation"] == "Apply")
        .map(|e| e["fieldsV1"].clone())
        .unwrap();
    let container =
        &kubectl_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
    assert!(container.get("f:image").is_none(), "{kubectl_fields}");
    assert!(container.get("f:name").is_some(), "{kubectl_fields}");

    // A label the first applier stops applying goes away (team-b does not
    // apply it, so nobody else owns it).
    let fewer = DEPLOYMENT
        .replace("labels: {app: web, tier: front}", "labels: {app: web}")
        .replace("nginx:1.25", "nginx:1.26")
        .replace("replicas: 2", "replicas: 3");
    c.kubectl_ok_with_input(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &fewer,
    );
    let d = json(&c, &["get", "deploy", "web"]);
    assert!(
        d["metadata"]["labels"].get("tier").is_none(),
        "{}",
        d["metadata"]
    );
    assert_eq!(d["metadata"]["labels"]["app"], "web");
}

#[tokio::test]
async fn kubectl_writes_record_their_managers() {
    let c = Cluster::up().await;
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, labels: {a: \"1\", b: \"2\"}}\ndata: {x: \"1\", y: \"2\"}\n";
    c.kubectl_ok_with_input(&["apply", "-f", "-"], cm);
    // Client-side apply again without a label and a key: both go.
    let fewer = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, labels: {a: \"1\"}}\ndata: {x: \"1\"}\n";
    c.kubectl_ok_with_input(&["apply", "-f", "-"], fewer);
    let got = json(&c, &["get", "cm", "cfg", "--show-managed-fields"]);
    assert_eq!(got["metadata"]["labels"], serde_json::json!({"a": "1"}));
    assert_eq!(got["data"], serde_json::json!({"x": "1"}));
    assert_eq!(managers(&got), vec!["kubectl-client-side-apply/Update"]);

    // kubectl diff shows a change without making it.
    let changed = fewer.replace("x: \"1\"", "x: \"9\"");
    let out = c.kubectl_with_input(&["diff", "-f", "-"], Some(&changed));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("+  x: \"9\""));
    assert_eq!(json(&c, &["get", "cm", "cfg"])["data"]["x"], "1");

    // replace, edit (with an editor script), the three patch types, label,
    // annotate: each write is recorded under kubectl's manager for it.
    let mut live = json(&c, &["get", "cm", "cfg"]);
    live["data"]["x"] = "5".into();
    c.kubectl_ok_with_input(&["replace", "-f", "-"], &live.to_string());
    let editor = c.dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/x: \"5\"/x: \"6\"/' \"$1\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("kubectl")
        .args(["edit", "cm", "cfg"])
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.dir.path())
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.kubectl_ok(&[
        "patch",
        "cm",
        "cfg",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/z","value":"3"}]"#,
    ]);
    c.kubectl_ok(&[
        "patch",
        "cm",
        "cfg",
        "--type=merge",
        "-p",
        r#"{"data":{"w":"4"}}"#,
    ]);
    c.kubectl_ok(&["patch", "cm", "cfg", "-p", r#"{"data":{"v":"5"}}"#]);
    c.kubectl_ok(&["label", "cm", "cfg", "l=1"]);
    c.kubectl_ok(&["annotate", "cm", "cfg", "n=1"]);
    let got = json(&c, &["get", "cm", "cfg", "--show-managed-fields"]);
    assert_eq!(
        got["data"],
        serde_json::json!({"x": "6", "z": "3", "w": "4", "v": "5"})
    );
    let m = managers(&got);
    for want in [
        "kubectl-client-side-apply/Update",
        "kubectl-replace/Update",
        "kubectl-edit/Update",
        "kubectl-patch/Update",
        "kubectl-label/Update",
        "kubectl-annotate/Update",
    ] {
        assert!(m.contains(&want.to_string()), "{want} missing from {m:?}");
    }
    // The editor took `.data.x` from the replacer.
    let owner_of_x: Vec<&str> = got["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["fieldsV1"]["f:data"].get("f:x").is_some())
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert_eq!(owner_of_x, vec!["kubectl-edit"]);
    // Resetting managedFields with `[{}]` clears them.
    c.kubectl_ok(&[
        "patch",
        "cm",
        "cfg",
        "--type=merge",
        "-p",
        r#"{"metadata":{"managedFields":[{}]}}"#,
    ]);
    let got = json(&c, &["get", "cm", "cfg", "--show-managed-fields"]);
    assert!(
        got["metadata"].get("managedFields").is_none(),
        "{}",
        got["metadata"]
    );
}

/// A raw request: (status, body).
async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    ct: &str,
    body: &str,
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", ct)
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .unwrap();
    let resp = client.send(req).await.expect("send");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn apply_patches_through_the_api() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let path = "/api/v1/namespaces/default/configmaps/cm";
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: one\n";
    // fieldManager is required for an apply.
    let (code, body) = send(&client, "PATCH", path, "application/apply-patch+yaml", yaml).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    // An apply creates (201) what does not exist.
    let (code, body) = send(
        &client,
        "PATCH",
        &format!("{path}?fieldManager=a"),
        "application/apply-patch+yaml",
        yaml,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["metadata"]["managedFields"][0]["manager"], "a");
    assert_eq!(body["metadata"]["managedFields"][0]["operation"], "Apply");
    // Another manager changing the value: 409 with one cause per field.
    let other = yaml.replace("k: one", "k: two");
    let (code, body) = send(
        &client,
        "PATCH",
        &format!("{path}?fieldManager=b"),
        "application/apply-patch+yaml",
        &other,
    )
    .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["reason"], "Conflict");
    assert_eq!(
        body["message"],
        "Apply failed with 1 conflict: conflict with \"a\": .data.k"
    );
    assert_eq!(
        body["details"]["causes"],
        serde_json::json!([{"type": "FieldManagerConflict", "message": "conflict with \"a\"", "field": ".data.k"}])
    );
    // Forced, b owns it; force on other patch types is refused.
    let (code, body) = send(
        &client,
        "PATCH",
        &format!("{path}?fieldManager=b&force=true"),
        "application/apply-patch+yaml",
        &other,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["k"], "two");
    let (code, body) = send(
        &client,
        "PATCH",
        &format!("{path}?force=true"),
        "application/merge-patch+json",
        "{}",
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    // managedFields may not be applied.
    let with_mf =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  managedFields: [{manager: x}]\n";
    let (code, body) = send(
        &client,
        "PATCH",
        &format!("{path}?fieldManager=a"),
        "application/apply-patch+yaml",
        with_mf,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["message"], "metadata.managedFields must be nil");
}

#[tokio::test]
async fn unknown_and_duplicate_fields_of_a_typed_object() {
    // The conformance test's shape: unknown and repeated fields at two
    // depths, all named in one strict decoding error.
    let c = Cluster::up().await;
    let client = c.client().await;
    let body = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "deployment", "labels": {"app": "nginx"}},
        "spec": {"selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:latest",
                    "unknownNested": "foo", "imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}},
            "paused": true, "unknownField": "foo", "paused": false}}"#;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let (code, got) = send(
        &client,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        "application/json",
        body,
    )
    .await;
    assert_eq!(code, 400, "{got}");
    let msg = got["message"].as_str().unwrap_or_default();
    assert!(msg.starts_with("Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: "), "{msg}");
    for want in [
        r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
        r#"duplicate field "spec.template.spec.containers[0].imagePullPolicy""#,
        r#"unknown field "spec.unknownField""#,
        r#"duplicate field "spec.paused""#,
    ] {
        assert!(msg.contains(want), "{want} missing: {msg}");
    }
    // Server-side apply of the same: the same verdict.
    let (code, got) = send(
        &client,
        "PATCH",
        &format!("{path}/deployment?fieldValidation=Strict&fieldManager=m"),
        "application/apply-patch+yaml",
        body,
    )
    .await;
    assert_eq!(code, 400, "{got}");
    assert!(
        got["message"]
            .as_str()
            .unwrap_or_default()
            .contains(r#"duplicate field "spec.paused""#)
    );
    // Warn: created, with one warning per field; the last duplicate wins.
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("{path}?fieldValidation=Warn"))
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .unwrap();
    let resp = client.send(req).await.expect("send");
    assert_eq!(resp.status().as_u16(), 201);
    let warnings: Vec<String> = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(r#"duplicate field \"spec.paused\""#)),
        "{warnings:?}"
    );
    let d = json(&c, &["get", "deploy", "deployment"]);
    assert_eq!(d["spec"]["paused"], false);
}
