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
fn field(pod: &Pod, path: &str, pod_ip: &str, host_ip: &str) -> anyhow::Result<String> {
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

/// The container's environment in order, with expansion against the
/// variables defined before each one.
pub fn container_env(
    pod: &Pod,
    c: &Container,
    pod_ip: &str,
    host_ip: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    if c.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        anyhow::bail!("envFrom is not supported by this kubelet yet");
    }
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (_, Some(from)) => match &from.field_ref {
                Some(f) => field(pod, &f.field_path, pod_ip, host_ip)?,
                None => anyhow::bail!(
                    "env {}: only value and fieldRef are supported by this kubelet yet",
                    e.name
                ),
            },
            (Some(v), None) => expand(v, &vars),
            (None, None) => String::new(),
        };
        if !vars.contains_key(&e.name) {
            order.push(e.name.clone());
        }
        vars.insert(e.name.clone(), value);
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

    #[test]
    fn env_in_order_with_field_refs() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "env": [
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "GREETING", "value": "hi $(NAME)"},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
            ]}]}
        }))
        .expect("pod");
        let c = &pod.spec.as_ref().expect("spec").containers[0];
        let env = container_env(&pod, c, "10.0.0.5", "192.168.0.1").expect("env");
        assert_eq!(
            env,
            [
                ("NAME".into(), "p".into()),
                ("GREETING".into(), "hi p".into()),
                ("APP".into(), "web".into()),
                ("IP".into(), "10.0.0.5".into())
            ]
        );
    }
}
