//! Container environment as upstream builds it: `env` values and the
//! `fieldRef`s the kubelet resolves itself, with `$(VAR)` expansion in
//! values, command and args.

use std::collections::HashMap;

use anyhow::Context;

use k8s_openapi::api::core::v1::{Container, Pod};

/// Upstream's `expansion.Expand`: `$(NAME)` becomes the variable's value
/// when it is defined (else stays as written), `$$` becomes `$`.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    expand_with(input, |name| vars.get(name).cloned())
}

/// `expand` with values from `lookup`; None leaves `$(NAME)` as written.
pub fn expand_with(input: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
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
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
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

/// The node's allocatable resources, read when a `resourceFieldRef`
/// asks for a limit its container doesn't set.
async fn node_allocatable(
    client: &kube::Client,
    pod: &Pod,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    use k8s_openapi::api::core::v1::Node;
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default();
    let node = kube::api::Api::<Node>::all(client.clone())
        .get(name)
        .await
        .with_context(|| format!("reading node {name:?} for its allocatable resources"))?;
    Ok(node
        .status
        .and_then(|s| s.allocatable)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, q)| (k, q.0))
        .collect())
}

/// The container a `resourceFieldRef`'s `containerName` names (init
/// containers too); None without a name.
pub(crate) fn ref_container<'a>(pod: &'a Pod, name: Option<&str>) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    match name.filter(|n| !n.is_empty()) {
        Some(name) => spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == name),
        None => None,
    }
}

/// A `resourceFieldRef`: the container's request or limit in units of
/// the divisor (1 by default), rounded up as upstream. As upstream, a
/// limit the container doesn't set is the node's allocatable, and a
/// request it doesn't set is 0.
pub(crate) async fn resource_field(
    client: &kube::Client,
    pod: &Pod,
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
) -> anyhow::Result<String> {
    use rkube_scheduler::quantity::scaled;
    let unsupported = || anyhow::anyhow!("resourceFieldRef {resource:?} is not supported");
    let (kind, name) = resource.split_once('.').ok_or_else(unsupported)?;
    if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !name.starts_with("hugepages-") {
        return Err(unsupported());
    }
    let res = c.resources.as_ref();
    let set = match kind {
        "limits" => res.and_then(|r| r.limits.as_ref()),
        "requests" => res.and_then(|r| r.requests.as_ref()),
        _ => return Err(unsupported()),
    }
    .and_then(|m| m.get(name))
    .map(|q| q.0.clone());
    let q = match set {
        Some(q) => q,
        None if kind == "limits" && !name.starts_with("hugepages-") => {
            node_allocatable(client, pod)
                .await?
                .remove(name)
                .unwrap_or_else(|| "0".into())
        }
        None => "0".into(),
    };
    // value / divisor, rounded up, in thousandths to keep "500m" exact.
    let value = scaled(&q, 3).ok_or_else(|| anyhow::anyhow!("bad quantity {q}"))?;
    // An unset divisor reads back as "0", which means 1 (upstream).
    let div = match scaled(divisor.unwrap_or("1"), 3) {
        Some(0) => 1000,
        Some(d) if d > 0 => d,
        _ => anyhow::bail!("resourceFieldRef {resource:?}: bad divisor"),
    };
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

/// Upstream's `makeEnvVariableName`.
fn env_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

/// The variables of one service, as upstream's `envvars.FromServices`:
/// `<NAME>_SERVICE_HOST`, `_SERVICE_PORT[_<PORT NAME>]` and Docker's link
/// variables (`<NAME>_PORT`, `<NAME>_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]`).
pub fn service_vars(svc: &k8s_openapi::api::core::v1::Service) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let Some(spec) = &svc.spec else { return out };
    let ip = spec.cluster_ip.as_deref().unwrap_or_default();
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ip.is_empty() || ip == "None" || ports.is_empty() {
        return out;
    }
    let prefix = env_name(name);
    out.push((format!("{prefix}_SERVICE_HOST"), ip.to_owned()));
    out.push((format!("{prefix}_SERVICE_PORT"), ports[0].port.to_string()));
    for p in ports {
        if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{prefix}_SERVICE_PORT_{}", env_name(port_name)),
                p.port.to_string(),
            ));
        }
    }
    let host = |port: i32| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        let url = format!("{}://{}", proto.to_lowercase(), host(p.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
        out.push((format!("{port_prefix}_PROTO"), proto.to_lowercase()));
        out.push((format!("{port_prefix}_PORT"), p.port.to_string()));
        out.push((format!("{port_prefix}_ADDR"), ip.to_owned()));
        out.push((port_prefix, url));
    }
    out
}

/// The service variables a pod sees (upstream's `getServiceEnvVarMap`):
/// the `kubernetes` service of `default` always, the services of its own
/// namespace unless `enableServiceLinks` is false.
pub async fn service_env(
    client: &kube::Client,
    pod: &Pod,
) -> anyhow::Result<HashMap<String, String>> {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::Api;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut services = Vec::new();
    if links {
        services = Api::<Service>::namespaced(client.clone(), ns)
            .list(&Default::default())
            .await?
            .items;
    }
    // A `kubernetes` service of the pod's own namespace wins over the
    // master's, as upstream's map does.
    if !services
        .iter()
        .any(|s| s.metadata.name.as_deref() == Some("kubernetes"))
        && let Some(master) = Api::<Service>::namespaced(client.clone(), "default")
            .get_opt("kubernetes")
            .await?
    {
        services.push(master);
    }
    Ok(services.iter().flat_map(service_vars).collect())
}

/// The container's environment in order (envFrom, then env, then the
/// service variables it does not define itself), with expansion against
/// the variables defined before each one and the service variables.
pub async fn container_env(
    client: &kube::Client,
    pod: &Pod,
    c: &Container,
    pod_ip: &str,
    host_ip: &str,
    services: HashMap<String, String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    // Service variables are there to expand from, and come last.
    let mut vars: HashMap<String, String> = services.clone();
    let mut order: Vec<String> = Vec::new();
    let mut defined: std::collections::HashSet<String> = Default::default();
    let mut set = |vars: &mut HashMap<String, String>, k: String, v: String| {
        if defined.insert(k.clone()) {
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
                    let target = ref_container(pod, r.container_name.as_deref()).unwrap_or(c);
                    let divisor = r.divisor.as_ref().map(|d| d.0.as_str());
                    resource_field(client, pod, target, &r.resource, divisor).await?
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
    let mut rest: Vec<String> = services
        .into_keys()
        .filter(|k| !order.contains(k))
        .collect();
    rest.sort();
    order.extend(rest);
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
        let services: HashMap<String, String> = [
            ("WEB_SERVICE_HOST".to_owned(), "10.96.0.9".to_owned()),
            ("NAME".to_owned(), "shadowed".to_owned()),
        ]
        .into();
        let env = container_env(&client, &pod, c, "10.0.0.5", "192.168.0.1", services)
            .await
            .expect("env");
        assert_eq!(
            env,
            [
                ("NAME".into(), "p".into()),
                ("GREETING".into(), "hi p".into()),
                ("APP".into(), "web".into()),
                ("IP".into(), "10.0.0.5".into()),
                ("MEM".into(), "64".into()),
                ("WEB_SERVICE_HOST".into(), "10.96.0.9".into()),
            ]
        );
    }

    #[test]
    fn service_variables_as_upstream() {
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "foo-svc"},
            "spec": {"clusterIP": "10.96.0.7", "ports": [
                {"name": "http", "port": 8765, "protocol": "TCP"},
                {"name": "dns-udp", "port": 53, "protocol": "UDP"}
            ]}
        }))
        .expect("service");
        let vars: HashMap<String, String> = service_vars(&svc).into_iter().collect();
        for (k, v) in [
            ("FOO_SVC_SERVICE_HOST", "10.96.0.7"),
            ("FOO_SVC_SERVICE_PORT", "8765"),
            ("FOO_SVC_SERVICE_PORT_HTTP", "8765"),
            ("FOO_SVC_SERVICE_PORT_DNS_UDP", "53"),
            ("FOO_SVC_PORT", "tcp://10.96.0.7:8765"),
            ("FOO_SVC_PORT_8765_TCP", "tcp://10.96.0.7:8765"),
            ("FOO_SVC_PORT_8765_TCP_PROTO", "tcp"),
            ("FOO_SVC_PORT_8765_TCP_PORT", "8765"),
            ("FOO_SVC_PORT_8765_TCP_ADDR", "10.96.0.7"),
            ("FOO_SVC_PORT_53_UDP", "udp://10.96.0.7:53"),
        ] {
            assert_eq!(vars.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(vars.len(), 13);
    }
}
