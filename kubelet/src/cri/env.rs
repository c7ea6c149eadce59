//! Container environment as upstream builds it: `env` values and the
//! `fieldRef`s the kubelet resolves itself, with `$(VAR)` expansion in
//! values, command and args.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};

/// Upstream's `expansion.Expand`: `$(NAME)` becomes the variable's value
/// when it is defined (else stays as written), `$$` becomes `$`.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match vars.get(name) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('$');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A `fieldRef` the kubelet resolves from the pod.
pub(crate) fn field(pod: &Pod, path: &str, pod_ip: &str, host_ip: &str) -> anyhow::Result<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let from_map = |map: Option<&std::collections::BTreeMap<String, String>>, key: &str| {
        map.and_then(|m| m.get(key)).cloned().unwrap_or_default()
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => pod_ip.to_owned(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_owned(),
        p => {
            if let Some(key) = p
                .strip_prefix("metadata.labels['")
                .and_then(|k| k.strip_suffix("']"))
            {
                from_map(meta.labels.as_ref(), key)
            } else if let Some(key) = p
                .strip_prefix("metadata.annotations['")
                .and_then(|k| k.strip_suffix("']"))
            {
                from_map(meta.annotations.as_ref(), key)
            } else {
                anyhow::bail!("fieldRef {p:?} is not supported")
            }
        }
    })
}

/// A `resourceFieldRef`: the container's request or limit in units of
/// the divisor (1 by default), rounded up as upstream.
fn resource_field(c: &Container, resource: &str, divisor: Option<&str>) -> anyhow::Result<String> {
    use rkube_scheduler::quantity::scaled;
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| anyhow::anyhow!("resourceFieldRef {resource:?} is not supported"))?;
    let res = c.resources.as_ref();
    let map = match kind {
        "limits" => res.and_then(|r| r.limits.as_ref()),
        "requests" => res.and_then(|r| r.requests.as_ref()),
        _ => anyhow::bail!("resourceFieldRef {resource:?} is not supported"),
    };
    let Some(q) = map.and_then(|m| m.get(name)) else {
        anyhow::bail!(
            "resourceFieldRef {resource:?}: the container sets none (node allocatable defaults are not supported yet)"
        );
    };
    // value / divisor, rounded up, in thousandths to keep "500m" exact.
    let value = scaled(&q.0, 3).ok_or_else(|| anyhow::anyhow!("bad quantity {}", q.0))?;
    let div = scaled(divisor.unwrap_or("1"), 3)
        .filter(|d| *d > 0)
        .ok_or_else(|| anyhow::anyhow!("bad divisor"))?;
    Ok(((value + div - 1) / div).to_string())
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// A configMap's or secret's data as strings; None when missing and
/// optional.
async fn source_data(
    client: &kube::Client,
    ns: &str,
    kind: &str,
    name: &str,
    optional: bool,
) -> anyhow::Result<Option<std::collections::BTreeMap<String, String>>> {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::Api;
    let found = if kind == "configmap" {
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await?
            .map(|cm| cm.data.unwrap_or_default())
    } else {
        Api::<Secret>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await?
            .map(|s| {
                let mut data: std::collections::BTreeMap<String, String> = s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                // Upstream's API server folds stringData into data; take it
                // as it comes should a server keep it apart.
                data.extend(s.string_data.unwrap_or_default());
                data
            })
    };
    match found {
        Some(d) => Ok(Some(d)),
        None if optional => Ok(None),
        None => anyhow::bail!("{kind} \"{name}\" not found"),
    }
}

/// The container's environment in order (envFrom, then env), with
/// expansion against the variables defined before each one.
pub async fn container_env(
    client: &kube::Client,
    pod: &Pod,
    c: &Container,
    pod_ip: &str,
    host_ip: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut set = |vars: &mut HashMap<String, String>, k: String, v: String| {
        if !vars.contains_key(&k) {
            order.push(k.clone());
        }
        vars.insert(k, v);
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(cm) = &from.config_map_ref {
            source_data(
                client,
                ns,
                "configmap",
                &cm.name,
                cm.optional.unwrap_or(false),
            )
            .await?
        } else if let Some(s) = &from.secret_ref {
            source_data(client, ns, "secret", &s.name, s.optional.unwrap_or(false)).await?
        } else {
            None
        };
        for (k, v) in data.into_iter().flatten() {
            let name = format!("{prefix}{k}");
            // Upstream skips (and reports) keys that are no variable names.
            if valid_env_name(&name) {
                set(&mut vars, name, v);
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (_, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field(pod, &f.field_path, pod_ip, host_ip)?
                } else if let Some(r) = &from.resource_field_ref {
                    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                        Some(name) => pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.containers.iter().find(|c| c.name == name))
                            .unwrap_or(c),
                        None => c,
                    };
                    resource_field(
                        target,
                        &r.resource,
                        r.divisor.as_ref().map(|d| d.0.as_str()),
                    )?
                } else if let Some(k) = &from.config_map_key_ref {
                    let optional = k.optional.unwrap_or(false);
                    match source_data(client, ns, "configmap", &k.name, optional).await? {
                        Some(d) => match d.get(&k.key) {
                            Some(v) => v.clone(),
                            None if optional => continue,
                            None => anyhow::bail!(
                                "couldn't find key {} in ConfigMap {}/{}",
                                k.key,
                                ns,
                                k.name
                            ),
                        },
                        None => continue,
                    }
                } else if let Some(k) = &from.secret_key_ref {
                    let optional = k.optional.unwrap_or(false);
                    match source_data(client, ns, "secret", &k.name, optional).await? {
                        Some(d) => match d.get(&k.key) {
                            Some(v) => v.clone(),
                            None if optional => continue,
                            None => anyhow::bail!(
                                "couldn't find key {} in Secret {}/{}",
                                k.key,
                                ns,
                                k.name
                            ),
                        },
                        None => continue,
                    }
                } else {
                    String::new()
                }
            }
            (Some(v), None) => expand(v, &vars),
            (None, None) => String::new(),
        };
        set(&mut vars, e.name.clone(), value);
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = vars.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_upstream() {
        let vars: HashMap<String, String> = [("A".to_owned(), "x".to_owned())].into();
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
        assert_eq!(expand("echo $(A", &vars), "echo $(A");
    }

    #[tokio::test]
    async fn env_in_order_with_field_refs() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "env": [
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "GREETING", "value": "hi $(NAME)"},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}
            ], "resources": {"limits": {"memory": "64Mi"}}}]}
        }))
        .expect("pod");
        let c = &pod.spec.as_ref().expect("spec").containers[0];
        // No API reads for these sources: a client that can't connect.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("uri"));
        let client = kube::Client::try_from(config).expect("client");
        let env = container_env(&client, &pod, c, "10.0.0.5", "192.168.0.1")
            .await
            .expect("env");
        assert_eq!(
            env,
            [
                ("NAME".into(), "p".into()),
                ("GREETING".into(), "hi p".into()),
                ("APP".into(), "web".into()),
                ("IP".into(), "10.0.0.5".into()),
                ("MEM".into(), "64".into())
            ]
        );
    }
}
