//! The kubelet-managed `/etc/hosts` of a pod's containers, as upstream
//! writes it: localhost lines, the pod's own name (with its FQDN when
//! it has a subdomain) and `hostAliases`; a host-network pod gets the
//! node's file plus its aliases.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{HostAlias, Pod};

/// The pod's hostname as its containers see it: `hostname`, else the pod
/// name cut to a DNS label's 63 characters.
pub fn hostname(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    if let Some(h) = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
    {
        return h.to_owned();
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let cut = name.char_indices().nth(63).map_or(name.len(), |(i, _)| i);
    name[..cut].trim_end_matches(['-', '.']).to_owned()
}

fn aliases(list: &[HostAlias]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in list {
        let names = a.hostnames.iter().flatten().cloned().collect::<Vec<_>>();
        out.push_str(&format!("{}\t{}\n", a.ip, names.join("\t")));
    }
    out
}

/// The file's content for a pod with these IPs, in `domain` (the
/// kubelet's `--cluster-domain`).
pub fn content(pod: &Pod, pod_ips: &[&str], node_hosts: &str, domain: &str) -> String {
    let spec = pod.spec.as_ref();
    let list = spec
        .and_then(|s| s.host_aliases.as_deref())
        .unwrap_or_default();
    if spec.and_then(|s| s.host_network).unwrap_or(false) {
        return format!("{node_hosts}{}", aliases(list));
    }
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    let host = hostname(pod);
    let subdomain = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty());
    for ip in pod_ips {
        match subdomain {
            Some(sub) => {
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                out.push_str(&format!("{ip}\t{host}.{sub}.{ns}.svc.{domain}\t{host}\n"));
            }
            None => out.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    out.push_str(&aliases(list));
    out
}

/// Writes the pod's hosts file under its directory once (a container
/// restart keeps what is there) and returns its path; None while the pod
/// has no IP, as upstream mounts none then.
pub fn ensure(
    pod_dir: &Path,
    pod: &Pod,
    pod_ip: &str,
    domain: &str,
) -> anyhow::Result<Option<PathBuf>> {
    if pod_ip.is_empty() {
        return Ok(None);
    }
    let path = pod_dir.join("etc-hosts");
    if path.exists() {
        return Ok(Some(path));
    }
    let node = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    std::fs::create_dir_all(pod_dir)?;
    std::fs::write(&path, content(pod, &[pod_ip], &node, domain))?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-0", "namespace": "shop"},
            "spec": spec,
        }))
        .expect("pod")
    }

    #[test]
    fn managed_file_as_upstream() {
        let p = pod(json!({
            "containers": [],
            "hostAliases": [
                {"ip": "123.45.67.89", "hostnames": ["foo", "bar"]},
                {"ip": "10.0.0.1", "hostnames": ["baz"]}
            ]
        }));
        let text = content(&p, &["10.244.0.5"], "", "cluster.local");
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(text.contains("\n10.244.0.5\tweb-0\n"), "{text}");
        assert!(text.ends_with(
            "\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\n10.0.0.1\tbaz\n"
        ));
    }

    #[test]
    fn subdomain_gives_the_fqdn() {
        let p = pod(json!({"containers": [], "hostname": "db", "subdomain": "svc1"}));
        let text = content(&p, &["10.1.2.3"], "", "cluster.local");
        assert!(
            text.ends_with("10.1.2.3\tdb.svc1.shop.svc.cluster.local\tdb\n"),
            "{text}"
        );
    }

    #[test]
    fn host_network_keeps_the_node_file() {
        let p = pod(json!({
            "containers": [], "hostNetwork": true,
            "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["x"]}]
        }));
        let text = content(
            &p,
            &["192.168.1.2"],
            "127.0.0.1 localhost\n",
            "cluster.local",
        );
        assert_eq!(
            text,
            "127.0.0.1 localhost\n\n# Entries added by HostAliases.\n1.2.3.4\tx\n"
        );
    }
}
