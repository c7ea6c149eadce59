//! Pod admission on the node, before anything runs: a pod the kubelet
//! rejects ends Failed with upstream's reason and message.

use k8s_openapi::api::core::v1::Pod;

/// Upstream's safe sysctls, allowed without `--allowed-unsafe-sysctls`.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Whether `name` is allowed: safe, or matched by an allowed name or
/// `prefix*` pattern.
fn allowed(name: &str, unsafe_allowed: &[String]) -> bool {
    SAFE_SYSCTLS.contains(&name)
        || unsafe_allowed.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => name.starts_with(&prefix.replace('/', ".")),
            None => a.replace('/', ".") == name,
        })
}

/// Why the pod can't run here: (reason, message), as upstream's
/// `rejectPod` writes them.
pub fn reject(pod: &Pod, unsafe_allowed: &[String]) -> Option<(&'static str, String)> {
    let sysctls = pod
        .spec
        .as_ref()?
        .security_context
        .as_ref()?
        .sysctls
        .as_ref()?;
    // Sysctl names may use '/' for '.' (upstream normalizes them).
    let forbidden = sysctls
        .iter()
        .find(|s| !allowed(&s.name.replace('/', "."), unsafe_allowed))?;
    Some((
        "SysctlForbidden",
        format!(
            "Pod was rejected: forbidden sysctl: \"{}\" not allowlisted",
            forbidden.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(names: &[&str]) -> Pod {
        let sysctls: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"name": n, "value": "1"}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [], "securityContext": {"sysctls": sysctls}}
        }))
        .expect("pod")
    }

    #[test]
    fn safe_sysctls_pass_and_others_are_rejected() {
        let safe = pod(&["kernel.shm_rmid_forced", "net/ipv4/tcp_syncookies"]);
        assert!(reject(&safe, &[]).is_none());
        let unsafe_ = pod(&["kernel.shm_rmid_forced", "kernel.msgmax"]);
        for allow in ["kernel.msgmax", "kernel.msg*", "kernel/msg*"] {
            assert!(reject(&unsafe_, &[allow.to_owned()]).is_none(), "{allow}");
        }
        let (reason, message) = reject(&unsafe_, &["kernel.shm*".into()]).expect("rejected");
        assert_eq!(reason, "SysctlForbidden");
        assert_eq!(
            message,
            "Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
        );
    }
}
