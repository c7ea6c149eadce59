//! The pod's resolv.conf, as upstream's kubelet builds it (`pkg/kubelet/
//! network/dns`): cluster DNS for ClusterFirst pods when the kubelet has
//! `--cluster-dns`, else the node's `--resolv-conf`; only `dnsConfig` for
//! `None`; `dnsConfig` merged into the others.

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;

/// The kubelet's DNS settings.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `--cluster-dns`.
    pub cluster_dns: Vec<String>,
    /// `--cluster-domain`.
    pub cluster_domain: String,
    /// `--resolv-conf`'s text (the node's resolver settings).
    pub host: String,
}

/// Upstream's limits (`validation.MaxDNSNameservers`, `MaxDNSSearchPaths`).
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

/// (nameservers, searches, options) of a resolv.conf text.
fn parse(text: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut ns, mut search, mut opts) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => ns.extend(fields.next().map(str::to_owned)),
            // The last search line wins, as in the resolver.
            Some("search") | Some("domain") => search = fields.map(str::to_owned).collect(),
            Some("options") => opts.extend(fields.map(str::to_owned)),
            _ => {}
        }
    }
    (ns, search, opts)
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for i in items {
        if !list.contains(&i) {
            list.push(i);
        }
    }
}

/// The sandbox's DNS config.
pub fn config(pod: &Pod, s: &Settings) -> cri::DnsConfig {
    let spec = pod.spec.as_ref();
    let policy = spec
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst");
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let (mut servers, mut searches, mut options) = match policy {
        "None" => Default::default(),
        // Without cluster DNS upstream falls back to the node's settings.
        _ if cluster && !s.cluster_dns.is_empty() => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let d = &s.cluster_domain;
            let mut search = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()];
            push_unique(&mut search, parse(&s.host).1);
            (s.cluster_dns.clone(), search, vec!["ndots:5".to_owned()])
        }
        _ => parse(&s.host),
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        push_unique(&mut servers, extra.nameservers.clone().unwrap_or_default());
        push_unique(&mut searches, extra.searches.clone().unwrap_or_default());
        // Options merge by name, the pod's last.
        for o in extra.options.iter().flatten() {
            let Some(name) = o.name.as_ref() else {
                continue;
            };
            options.retain(|x| x.split(':').next() != Some(name.as_str()));
            options.push(match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.to_owned(),
            });
        }
    }
    servers.truncate(MAX_NAMESERVERS);
    searches.truncate(MAX_SEARCHES);
    cri::DnsConfig {
        servers,
        searches,
        options,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": spec}),
        )
        .expect("pod")
    }

    fn settings(dns: &[&str]) -> Settings {
        Settings {
            cluster_dns: dns.iter().map(|s| s.to_string()).collect(),
            cluster_domain: "cluster.local".into(),
            host: "# host\nnameserver 192.168.0.1\nsearch corp.example\noptions edns0\n".into(),
        }
    }

    #[test]
    fn policies_as_upstream() {
        let c = config(&pod(json!({"containers": []})), &settings(&["10.96.0.10"]));
        assert_eq!(c.servers, ["10.96.0.10"]);
        assert_eq!(
            c.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(c.options, ["ndots:5"]);
        // No cluster DNS, or the host's network: the node's settings.
        for (spec, dns) in [
            (json!({"containers": []}), &[][..]),
            (
                json!({"containers": [], "hostNetwork": true}),
                &["10.96.0.10"][..],
            ),
            (
                json!({"containers": [], "dnsPolicy": "Default"}),
                &["10.96.0.10"][..],
            ),
        ] {
            let c = config(&pod(spec), &settings(dns));
            assert_eq!(
                (c.servers, c.searches),
                (
                    vec!["192.168.0.1".to_owned()],
                    vec!["corp.example".to_owned()]
                )
            );
        }
        let c = config(
            &pod(json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
                "nameservers": ["1.1.1.1"], "searches": ["resolv.conf.local"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]
            }})),
            &settings(&["10.96.0.10"]),
        );
        assert_eq!(c.servers, ["1.1.1.1"]);
        assert_eq!(c.searches, ["resolv.conf.local"]);
        assert_eq!(c.options, ["ndots:2", "edns0"]);
        let c = config(
            &pod(
                json!({"containers": [], "dnsConfig": {"options": [{"name": "ndots", "value": "1"}]}}),
            ),
            &settings(&["10.96.0.10"]),
        );
        assert_eq!(c.options, ["ndots:1"]);
    }
}
