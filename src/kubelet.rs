//! `rkube kubelet`: the node agent as an API client. Only the simulated
//! runtime exists so far; it must be chosen explicitly.

use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Parser, Debug, Clone)]
#[command(about = "The Kubernetes node agent")]
pub struct Flags {
    /// Path to a kubeconfig with the node's credentials.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The Node's name; the host name by default, as upstream.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// Alias of --hostname-override.
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's InternalIP; the host's first address by default.
    #[arg(long)]
    pub node_ip: Option<String>,
    /// spec.podCIDR to register the node with.
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// `simulated`: pods report Running without processes (as KWOK).
    /// `remote` (CRI) is not implemented yet.
    #[arg(long, default_value = "remote")]
    pub runtime: String,
}

pub fn runtime(name: &str) -> anyhow::Result<Arc<dyn rkube_kubelet::Runtime>> {
    match name {
        "simulated" => Ok(Arc::new(rkube_kubelet::Simulated)),
        "remote" | "cri" => anyhow::bail!(
            "the CRI runtime is not implemented yet; run with --runtime=simulated for pods without processes"
        ),
        other => {
            anyhow::bail!("--runtime: unknown runtime {other:?} (expected simulated or remote)")
        }
    }
}

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let runtime = runtime(&flags.runtime)?;
    let name = flags
        .node_name
        .or(flags.hostname_override)
        .unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_lowercase()
        });
    anyhow::ensure!(!name.is_empty(), "no node name: pass --node-name");
    let ip = match flags.node_ip {
        Some(ip) => ip,
        None => crate::up::host_addresses()
            .first()
            .map(ToString::to_string)
            .unwrap_or_else(|| "127.0.0.1".into()),
    };
    let mut node = rkube_kubelet::NodeConfig::simulated(&name, &ip);
    node.pod_cidr = flags.pod_cidr;
    let client = crate::controller_manager::client(&flags.kubeconfig).await?;
    rkube_kubelet::run(client, vec![node], runtime).await
}

/// The simulated nodes `rkube up --simulated-nodes N` hosts:
/// `sim-node-0` … with InternalIPs in 172.30.0.0/15.
pub fn simulated_nodes(count: u32) -> Vec<rkube_kubelet::NodeConfig> {
    (0..count)
        .map(|i| {
            let n = i + 1;
            let ip = format!("172.{}.{}.{}", 30 + (n >> 16), (n >> 8) & 255, n & 255);
            rkube_kubelet::NodeConfig::simulated(&format!("sim-node-{i}"), &ip)
        })
        .collect()
}
