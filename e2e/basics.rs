//! The API server core through real clients.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::harness::Cluster;

#[tokio::test]
async fn system_namespaces_exist_at_start() {
    let c = Cluster::up().await;
    let out = c.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(out.contains(&format!("namespace/{ns}")), "{out}");
    }
    let version = c.kubectl_ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(v["serverVersion"]["minor"], "36");
}

#[tokio::test]
async fn configmap_lifecycle_with_kubectl() {
    let c = Cluster::up().await;
    c.kubectl_ok(&[
        "create",
        "configmap",
        "app",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    let got: serde_json::Value =
        serde_json::from_str(&c.kubectl_ok(&["get", "configmap", "app", "-o", "json"])).unwrap();
    assert_eq!(got["data"], json!({"a": "1", "b": "2"}));
    assert!(
        got["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(got["metadata"]["resourceVersion"].as_str().is_some());
    let out = c.kubectl(&["create", "configmap", "app"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("configmaps \"app\" already exists"), "{err}");
    let list = c.kubectl_ok(&["get", "configmaps", "-o", "name"]);
    assert!(list.contains("configmap/app"), "{list}");
    c.kubectl_ok(&["delete", "configmap", "app"]);
    let out = c.kubectl(&["get", "configmap", "app"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("configmaps \"app\" not found"), "{err}");
}

#[tokio::test]
async fn kube_rs_crud_conflict_and_watch() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "k", "labels": { "app": "x" } },
        "data": { "k": "v" }
    }))
    .unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    let mut watch = cms
        .watch(&WatchParams::default().labels("app=x"), &rv)
        .await
        .unwrap()
        .boxed();
    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = cms
        .replace("k", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    // A stale resourceVersion conflicts.
    let err = cms
        .replace("k", &PostParams::default(), &changed)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 409, got {other:?}"),
    }
    match watch.try_next().await.unwrap() {
        Some(WatchEvent::Modified(cm)) => {
            assert_eq!(cm.data.unwrap()["k"], "w");
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    let list = cms
        .list(&ListParams::default().labels("app=x"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let none = cms
        .list(&ListParams::default().labels("app=y"))
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

#[tokio::test]
async fn creates_in_missing_namespaces_are_refused() {
    let c = Cluster::up().await;
    let out = c.kubectl(&["create", "configmap", "x", "-n", "nope"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("namespaces \"nope\" not found"), "{err}");
}

#[tokio::test]
async fn requests_without_credentials_get_401() {
    let c = Cluster::up().await;
    let out = std::process::Command::new("kubectl")
        .args(["get", "--raw", "/api/v1/namespaces", "--server"])
        .arg(format!("https://127.0.0.1:{}", c.port))
        .args([
            "--insecure-skip-tls-verify",
            "--kubeconfig",
            "/dev/null",
            "--token",
            "not-a-token",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Unauthorized"), "{err}");
}

#[tokio::test]
async fn restart_keeps_data() {
    let mut c = Cluster::up().await;
    c.kubectl_ok(&["create", "namespace", "keep"]);
    c.kubectl_ok(&[
        "create",
        "configmap",
        "kept",
        "-n",
        "keep",
        "--from-literal=x=y",
    ]);
    c.restart().await;
    let out = c.kubectl_ok(&[
        "get",
        "configmap",
        "kept",
        "-n",
        "keep",
        "-o",
        "jsonpath={.data.x}",
    ]);
    assert_eq!(out, "y");
    let nss: Api<Namespace> = Api::all(c.client().await);
    assert!(nss.get("keep").await.is_ok());
}

#[tokio::test]
async fn the_api_server_runs_on_etcd() {
    let Some(c) = Cluster::up_on_etcd().await else {
        return;
    };
    c.kubectl_ok(&["create", "configmap", "on-etcd", "--from-literal=a=b"]);
    let out = c.kubectl_ok(&["get", "configmap", "on-etcd", "-o", "jsonpath={.data.a}"]);
    assert_eq!(out, "b");
    // List then watch from the list's revision, as informers do: the
    // revision is etcd's, ahead of what the configmap cache has seen.
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, "default");
    c.kubectl_ok(&["create", "namespace", "elsewhere"]);
    let list = cms.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut watch = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    c.kubectl_ok(&["create", "configmap", "after-list"]);
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), watch.try_next())
        .await
        .expect("an event within 10s")
        .unwrap();
    match event {
        Some(WatchEvent::Added(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("after-list")),
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn the_official_python_client_works() {
    let has_client = std::process::Command::new("python3")
        .args(["-c", "import kubernetes"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_client {
        assert!(
            std::env::var("CI").is_err(),
            "the Python kubernetes client is missing: run hack/install-deps.sh"
        );
        eprintln!("python kubernetes client not installed: skipping");
        return;
    }
    let c = Cluster::up().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/clients/python_client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(c.kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
