//! OpenAPI through the stock kubectl: `explain` (v3 schemas), client-side
//! validation (v3, and v2 protobuf for a `List`), strategic merge in
//! `diff`/`edit`/`apply` (v3 patch metadata), and `replace`.

use std::process::{Command, Output, Stdio};

use crate::harness::Cluster;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox
";

fn write(c: &Cluster, name: &str, text: &str) -> String {
    let path = c.dir.path().join(name);
    std::fs::write(&path, text).expect("write manifest");
    path.display().to_string()
}

/// kubectl with extra environment (EDITOR), in the cluster's directory.
fn kubectl_env(c: &Cluster, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .current_dir(c.dir.path())
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.dir.path())
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("kubectl ran")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn kubectl_explain_recursive() {
    let c = Cluster::up().await;
    let out = c.kubectl_ok(&["explain", "deployment.spec.strategy", "--recursive"]);
    for want in [
        "KIND:       Deployment",
        "VERSION:    v1",
        "FIELD: strategy <DeploymentStrategy>",
        "DeploymentStrategy describes how to replace existing pods with new ones.",
        "rollingUpdate\t<RollingUpdateDeployment>",
        "maxSurge\t<IntOrString>",
        "maxUnavailable\t<IntOrString>",
        "type\t<string>",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let out = c.kubectl_ok(&["explain", "pods.spec.containers"]);
    assert!(out.contains("name\t<string> -required-"), "{out}");
    // The v2 (gnostic protobuf) document, through kubectl's own parser.
    let out = c.kubectl_ok(&[
        "explain",
        "deployment.spec.strategy",
        "--output=plaintext-openapiv2",
    ]);
    assert!(out.contains("RESOURCE: strategy <Object>"), "{out}");
    assert!(out.contains("rollingUpdate\t<Object>"), "{out}");
    let out = c.kubectl_ok(&["explain", "configmaps"]);
    assert!(
        out.contains("ConfigMap holds configuration data for pods to consume."),
        "{out}"
    );
}

#[tokio::test]
async fn create_validate_strict_rejects_a_typo_with_upstreams_message() {
    let c = Cluster::up().await;
    write(
        &c,
        "x.yaml",
        &DEPLOYMENT.replace("replicas: 2", "replicsa: 2"),
    );
    for verb in ["create", "apply"] {
        let out = kubectl_env(&c, &[verb, "--validate=strict", "-f", "x.yaml"], &[]);
        assert!(!out.status.success(), "{verb} succeeded");
        let err = text(&out.stderr);
        assert!(
            err.contains(
                r#"Error from server (BadRequest): error when creating "x.yaml": Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replicsa""#
            ),
            "{verb}: {err}"
        );
    }
    assert!(!c.kubectl(&["get", "deploy", "web"]).status.success());
}

#[tokio::test]
async fn create_a_list_manifest() {
    let c = Cluster::up().await;
    let list = "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
  data: {k: v}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b}
";
    let path = write(&c, "list.yaml", list);
    let out = c.kubectl_ok(&["create", "-f", &path]);
    assert!(out.contains("configmap/a created"), "{out}");
    assert!(out.contains("configmap/b created"), "{out}");
    // And client-side validation of the items still catches a typo.
    let bad = list
        .replace("data: {k: v}", "dta: {k: v}")
        .replace("name: a", "name: c")
        .replace("name: b", "name: d");
    let path = write(&c, "bad.yaml", &bad);
    let out = c.kubectl(&["create", "--validate=strict", "-f", &path]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(r#"unknown field "dta""#),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn kubectl_diff_edit_replace_and_apply() {
    let c = Cluster::up().await;
    write(&c, "web.yaml", DEPLOYMENT);
    let out = kubectl_env(&c, &["apply", "-f", "web.yaml"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // diff: exit 1 and the change, computed with a dry-run strategic merge.
    write(
        &c,
        "web3.yaml",
        &DEPLOYMENT.replace("replicas: 2", "replicas: 3"),
    );
    let out = kubectl_env(&c, &["diff", "-f", "web3.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(diff.contains("-  replicas: 2"), "{diff}");
    assert!(diff.contains("+  replicas: 3"), "{diff}");
    let out = kubectl_env(&c, &["diff", "-f", "web.yaml"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // edit: EDITOR is a script that changes the replica count.
    let editor = c.dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/replicas: 2/replicas: 4/' \"$1\"\n",
    )
    .expect("write editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod editor");
    let editor = editor.display().to_string();
    let out = kubectl_env(&c, &["edit", "deployment", "web"], &[("EDITOR", &editor)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("deployment.apps/web edited"));
    assert_eq!(
        c.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );

    // replace: the edited live object back with another count.
    let live = c.kubectl_ok(&["get", "deploy", "web", "-o", "yaml"]);
    write(&c, "live.yaml", &live.replace("replicas: 4", "replicas: 5"));
    let out = kubectl_env(&c, &["replace", "-f", "live.yaml"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("deployment.apps/web replaced"));
    assert_eq!(
        c.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );

    // apply with a second container: strategic merge by container name.
    let two = DEPLOYMENT.replace(
        "        image: busybox\n",
        "        image: busybox\n      - name: d\n        image: busybox\n",
    );
    write(&c, "two.yaml", &two);
    let out = kubectl_env(&c, &["apply", "-f", "two.yaml"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}"
        ]),
        "c d"
    );
}
