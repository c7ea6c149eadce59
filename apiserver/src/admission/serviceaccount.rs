//! The ServiceAccount admission plugin on pod create: the `default`
//! service account when none is named, and (unless opted out on the pod
//! or the account) upstream's `kube-api-access-*` projected volume — a
//! bound token, the cluster CA from `kube-root-ca.crt` and the namespace —
//! mounted at `/var/run/secrets/kubernetes.io/serviceaccount` in every
//! container.
//!
//! Deviation: upstream refuses a pod whose account does not exist yet
//! (after retrying for the controller to make `default`); here such a pod
//! is admitted without the token volume, so clusters run without the
//! controller manager still take pods.

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::status::ApiError;

const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Upstream's token lifetime for these volumes (the kubelet may extend it).
const TOKEN_SECONDS: i64 = 3607;

async fn account(reg: &Registry, ns: &str, name: &str) -> Result<Option<Value>, ApiError> {
    let got = reg
        .store
        .get(&format!("/serviceaccounts/{ns}/{name}"), None)
        .await
        .map_err(|e| ApiError::internal(format!("reading serviceaccounts: {e}")))?;
    got.kv
        .map(|kv| serde_json::from_slice(&kv.value))
        .transpose()
        .map_err(|e| ApiError::internal(format!("decoding a stored serviceaccount: {e}")))
}

pub async fn admit_pod(reg: &Registry, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
    if pod
        .pointer(&format!(
            "/metadata/annotations/{}",
            MIRROR_ANNOTATION.replace('/', "~1")
        ))
        .is_some()
    {
        return Ok(());
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let name = match spec.get("serviceAccountName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => {
            spec.insert("serviceAccountName".into(), json!("default"));
            "default".to_owned()
        }
    };
    spec.insert("serviceAccount".into(), json!(name));
    let Some(sa) = account(reg, ns, &name).await? else {
        return Ok(());
    };
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if automount {
        mount_token(spec);
    }
    Ok(())
}

fn containers_mut(spec: &mut serde_json::Map<String, Value>) -> impl Iterator<Item = &mut Value> {
    spec.iter_mut()
        .filter(|(k, _)| k.as_str() == "containers" || k.as_str() == "initContainers")
        .filter_map(|(_, v)| v.as_array_mut())
        .flatten()
}

/// Adds the projected volume and its mounts, unless a container already
/// mounts something at the path (upstream leaves those alone).
fn mount_token(spec: &mut serde_json::Map<String, Value>) {
    let taken = containers_mut(spec).any(|c| {
        c.get("volumeMounts")
            .and_then(Value::as_array)
            .is_some_and(|ms| {
                ms.iter()
                    .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH))
            })
    });
    if taken {
        return;
    }
    let volume_names: Vec<String> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let name = loop {
        let candidate = format!("kube-api-access-{}", crate::meta::random_suffix());
        if !volume_names.contains(&candidate) {
            break candidate;
        }
    };
    let volume = json!({
        "name": name,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    });
    match spec.get_mut("volumes").and_then(Value::as_array_mut) {
        Some(vs) => vs.push(volume),
        None => {
            spec.insert("volumes".into(), json!([volume]));
        }
    }
    let mount = json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH});
    for c in containers_mut(spec) {
        let Some(c) = c.as_object_mut() else { continue };
        match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
            Some(ms) => ms.push(mount.clone()),
            None => {
                c.insert("volumeMounts".into(), json!([mount.clone()]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_volume_is_mounted_everywhere_once() {
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}],
        }});
        let spec = pod["spec"].as_object_mut().unwrap();
        mount_token(spec);
        let vol = &pod["spec"]["volumes"][0];
        let name = vol["name"].as_str().unwrap();
        assert!(name.starts_with("kube-api-access-"));
        assert_eq!(
            vol["projected"]["sources"][0]["serviceAccountToken"]["path"],
            "token"
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"][0]["name"],
            name
        );
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][1]["mountPath"],
            MOUNT_PATH
        );
        // A second pass (a mount already there) adds nothing.
        mount_token(pod["spec"].as_object_mut().unwrap());
        assert_eq!(pod["spec"]["volumes"].as_array().unwrap().len(), 1);
    }
}
