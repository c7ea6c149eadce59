//! Static pods (upstream's file pod source): every manifest in
//! `--pod-manifest-path` becomes a pod of this node, named
//! `<name>-<node>`, with a mirror pod in the API that carries the
//! `kubernetes.io/config.mirror` annotation and is owned by the Node.
//!
//! Unlike upstream, the pod runs through its mirror pod (the kubelet's one
//! pod watch), so deleting the mirror pod restarts the static pod instead
//! of only recreating the mirror.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use serde_json::{Value, json};

pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";
/// How often the directory and the mirror pods are compared (upstream
/// reads the directory every 20 s; mirror pods are restored sooner).
const CHECK_PERIOD: Duration = Duration::from_secs(2);

/// A manifest as this node runs it.
#[derive(Debug)]
struct StaticPod {
    /// The mirror pod to create (without owner and seen time).
    pod: Value,
    hash: String,
}

/// Reads the manifests of `dir` (`.yaml`, `.yml`, `.json`; hidden files
/// skipped, as upstream), keyed by `namespace/name` as they will run.
fn read_dir(dir: &Path, node: &str) -> HashMap<String, StaticPod> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        match read_manifest(&path, node) {
            Ok(p) => {
                let key = format!(
                    "{}/{}",
                    p.pod["metadata"]["namespace"].as_str().unwrap_or(""),
                    p.pod["metadata"]["name"].as_str().unwrap_or("")
                );
                out.entry(key).or_insert(p);
            }
            Err(e) => tracing::warn!(file = %path.display(), "static pod manifest: {e:#}"),
        }
    }
    out
}

fn read_manifest(path: &Path, node: &str) -> anyhow::Result<StaticPod> {
    let text = std::fs::read_to_string(path)?;
    let pod: Value = serde_yaml::from_str(&text)?;
    anyhow::ensure!(
        pod["kind"] == "Pod" && pod["apiVersion"] == "v1",
        "not a v1 Pod"
    );
    to_static(pod, node)
}

/// Upstream's defaulting of file pods: the node's name appended, the
/// default namespace, bound to the node, tolerating NoExecute taints.
fn to_static(mut pod: Value, node: &str) -> anyhow::Result<StaticPod> {
    let name = pod["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow::anyhow!("metadata.name is required"))?
        .to_owned();
    let meta = pod["metadata"]
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("metadata must be an object"))?;
    meta.insert("name".into(), json!(format!("{name}-{node}")));
    if meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        meta.insert("namespace".into(), json!("default"));
    }
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "ownerReferences",
    ] {
        meta.remove(field);
    }
    let spec = pod["spec"]
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("spec must be an object"))?;
    spec.insert("nodeName".into(), json!(node));
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        list.push(json!({"operator": "Exists", "effect": "NoExecute"}));
    }
    if let Some(o) = pod.as_object_mut() {
        o.remove("status");
    }
    let hash = content_hash(&pod);
    let annotations = pod["metadata"]
        .as_object_mut()
        .map(|m| m.entry("annotations").or_insert_with(|| json!({})));
    if let Some(Value::Object(a)) = annotations {
        a.insert(CONFIG_HASH.into(), json!(hash));
        a.insert(CONFIG_MIRROR.into(), json!(hash));
        a.insert(CONFIG_SOURCE.into(), json!("file"));
    }
    Ok(StaticPod { pod, hash })
}

/// The pod's config hash (upstream: an MD5 of the defaulted pod): the
/// first 128 bits of a SHA-256 of its JSON, in hex.
fn content_hash(pod: &Value) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, pod.to_string().as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Keeps the mirror pods of `node` in step with the manifests in `dir`
/// until the process ends.
pub async fn run(client: kube::Client, node: String, dir: PathBuf) {
    let nodes: Api<Node> = Api::all(client.clone());
    let all: Api<Pod> = Api::all(client.clone());
    let mut tick = tokio::time::interval(CHECK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Mirror pods are owned by the Node, so wait for its registration.
        let node_uid = match nodes.get_opt(&node).await {
            Ok(Some(n)) => n.metadata.uid.unwrap_or_default(),
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!("reading node {node}: {e}");
                continue;
            }
        };
        let wanted = read_dir(&dir, &node);
        let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let existing = match all.list(&params).await {
            Ok(l) => l.items,
            Err(e) => {
                tracing::debug!("listing the pods of {node}: {e}");
                continue;
            }
        };
        let mirrors: HashMap<String, &Pod> = existing
            .iter()
            .filter(|p| annotation(p, CONFIG_MIRROR).is_some())
            .map(|p| {
                let key = format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap_or(""),
                    p.metadata.name.as_deref().unwrap_or("")
                );
                (key, p)
            })
            .collect();
        for (key, mirror) in &mirrors {
            let current = wanted
                .get(key)
                .is_some_and(|w| annotation(mirror, CONFIG_MIRROR) == Some(w.hash.as_str()));
            if !current && mirror.metadata.deletion_timestamp.is_none() {
                // Removed or changed manifest: the old pod goes first,
                // with its grace period.
                delete_mirror(&client, mirror).await;
            }
        }
        for (key, s) in &wanted {
            if mirrors.contains_key(key) {
                continue;
            }
            create_mirror(&client, s, &node, &node_uid).await;
        }
    }
}

async fn delete_mirror(client: &kube::Client, mirror: &Pod) {
    let ns = mirror.metadata.namespace.as_deref().unwrap_or("default");
    let name = mirror.metadata.name.as_deref().unwrap_or("");
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: mirror.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match Api::<Pod>::namespaced(client.clone(), ns)
        .delete(name, &params)
        .await
    {
        Ok(_) => tracing::info!(pod = name, namespace = ns, "static pod removed"),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(pod = name, "deleting the mirror pod: {e}"),
    }
}

async fn create_mirror(client: &kube::Client, s: &StaticPod, node: &str, node_uid: &str) {
    let mut pod = s.pod.clone();
    pod["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid, "controller": true,
    }]);
    pod["metadata"]["annotations"][CONFIG_SEEN] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let pod: Pod = match serde_json::from_value(pod) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(pod = %name, "static pod manifest: {e}");
            return;
        }
    };
    match Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await
    {
        Ok(_) => tracing::info!(pod = %name, namespace = %ns, "mirror pod created"),
        // Still terminating (a changed manifest), or created meanwhile.
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => tracing::warn!(pod = %name, "creating the mirror pod: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_defaulted_as_upstream() {
        let s = to_static(
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "web", "uid": "x"},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            "node-a",
        )
        .expect("static pod");
        let m = &s.pod["metadata"];
        assert_eq!(m["name"], "web-node-a");
        assert_eq!(m["namespace"], "default");
        assert!(m.get("uid").is_none());
        assert_eq!(m["annotations"][CONFIG_SOURCE], "file");
        assert_eq!(m["annotations"][CONFIG_MIRROR], s.hash);
        assert_eq!(m["annotations"][CONFIG_HASH], s.hash);
        assert_eq!(s.hash.len(), 32);
        assert_eq!(s.pod["spec"]["nodeName"], "node-a");
        assert_eq!(
            s.pod["spec"]["tolerations"],
            json!([{"operator": "Exists", "effect": "NoExecute"}])
        );
        // Same manifest, same hash; another node, another.
        let again = to_static(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            "node-a",
        )
        .expect("static pod");
        assert_eq!(again.hash, s.hash);
        let other = to_static(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            "node-b",
        )
        .expect("static pod");
        assert_ne!(other.hash, s.hash);
    }

    #[test]
    fn a_directory_of_manifests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: kube-system\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
        std::fs::write(dir.path().join("a.yaml"), pod).expect("write");
        std::fs::write(dir.path().join(".hidden.yaml"), pod).expect("write");
        std::fs::write(dir.path().join("bad.yaml"), "kind: Service").expect("write");
        let got = read_dir(dir.path(), "n");
        assert_eq!(got.keys().collect::<Vec<_>>(), ["kube-system/a-n"]);
    }
}
