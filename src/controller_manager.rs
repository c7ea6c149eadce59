//! `rkube controller-manager`: kube-controller-manager's flags and the
//! controllers of `rkube-controllers`, as an API client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

#[derive(clap::Parser, Debug, Clone)]
#[command(about = "The Kubernetes controller manager")]
pub struct Flags {
    /// Path to a kubeconfig with the controller manager's credentials.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Controllers to run: `*` for all, `foo` to enable, `-foo` to disable.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// The cluster CA published in every namespace's `kube-root-ca.crt`.
    #[arg(long)]
    pub root_ca_file: PathBuf,
    /// Run only while holding the `kube-system/kube-controller-manager` Lease.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    #[arg(long, default_value = "15s")]
    pub leader_elect_lease_duration: String,
    #[arg(long, default_value = "10s")]
    pub leader_elect_renew_deadline: String,
    #[arg(long, default_value = "2s")]
    pub leader_elect_retry_period: String,
    /// ReplicaSets synced in parallel.
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: u16,
    /// Terminated pods kept before the pod garbage collector deletes the
    /// oldest (0 disables).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
    /// Deployments synced in parallel.
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: u16,
    /// ReplicationControllers synced in parallel.
    #[arg(long, default_value_t = 5)]
    pub concurrent_rc_syncs: u16,
    /// How often the node lifecycle controller checks every node.
    #[arg(long, default_value = "5s")]
    pub node_monitor_period: String,
    /// How long a node's kubelet may go without renewing its Lease (or
    /// posting status) before the node is marked Unknown and tainted
    /// unreachable (upstream's default since v1.32).
    #[arg(long, default_value = "50s")]
    pub node_monitor_grace_period: String,
    /// As --node-monitor-grace-period, for nodes that never posted Ready.
    #[arg(long, default_value = "1m0s")]
    pub node_startup_grace_period: String,
    /// Nodes per second that get NoExecute taints in a healthy zone.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f32,
    /// Nodes per second that get NoExecute taints in an unhealthy zone.
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f32,
    /// Up to this many nodes, an unhealthy zone gets no NoExecute taints.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: usize,
    /// Share of not-ready nodes (at least 3) that makes a zone unhealthy.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f32,
    /// Port of /healthz and /metrics (plain HTTP; upstream serves HTTPS); 0 disables.
    #[arg(long, default_value_t = 10257)]
    pub secure_port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,
}

impl Flags {
    /// The flags `rkube up` uses for its own controller manager.
    pub fn for_up(kubeconfig: PathBuf, root_ca_file: PathBuf) -> Self {
        Flags {
            kubeconfig,
            controllers: vec!["*".into()],
            root_ca_file,
            leader_elect: true,
            leader_elect_lease_duration: "15s".into(),
            leader_elect_renew_deadline: "10s".into(),
            leader_elect_retry_period: "2s".into(),
            concurrent_replicaset_syncs: 5,
            terminated_pod_gc_threshold: 12500,
            concurrent_deployment_syncs: 5,
            concurrent_rc_syncs: 5,
            node_monitor_period: "5s".into(),
            node_monitor_grace_period: "50s".into(),
            node_startup_grace_period: "1m0s".into(),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
            secure_port: 10257,
            bind_address: [127, 0, 0, 1].into(),
        }
    }
}

fn duration(flag: &str, value: &str) -> anyhow::Result<std::time::Duration> {
    rkube_apiserver::compactor::parse_duration(value).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// A client from a kubeconfig file.
pub async fn client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let root_ca_pem = std::fs::read_to_string(&flags.root_ca_file)
        .with_context(|| format!("reading --root-ca-file {}", flags.root_ca_file.display()))?;
    let node_lifecycle = rkube_controllers::nodelifecycle::Settings {
        monitor_period: duration("node-monitor-period", &flags.node_monitor_period)?,
        grace_period: duration(
            "node-monitor-grace-period",
            &flags.node_monitor_grace_period,
        )?,
        startup_grace_period: duration(
            "node-startup-grace-period",
            &flags.node_startup_grace_period,
        )?,
        eviction_rate: flags.node_eviction_rate,
        secondary_eviction_rate: flags.secondary_node_eviction_rate,
        large_cluster_size_threshold: flags.large_cluster_size_threshold,
        unhealthy_zone_threshold: flags.unhealthy_zone_threshold,
    };
    if node_lifecycle.monitor_period.is_zero() {
        anyhow::bail!("--node-monitor-period must be greater than 0");
    }
    let client = client(&flags.kubeconfig).await?;
    let metrics = rkube_controllers::metrics::Registry::default();
    // Served whether or not this instance leads, as upstream.
    if flags.secure_port != 0 {
        let addr = SocketAddr::new(flags.bind_address, flags.secure_port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr} (--secure-port)"))?;
        let registry = metrics.clone();
        let render: Arc<dyn Fn() -> String + Send + Sync> = Arc::new(move || registry.render());
        tokio::spawn(rkube_scheduler::metrics::serve(listener, render));
    }
    let work = rkube_controllers::run(
        client.clone(),
        rkube_controllers::Options {
            root_ca_pem,
            controllers: flags.controllers.clone(),
            concurrent_replicaset_syncs: flags.concurrent_replicaset_syncs,
            terminated_pod_gc_threshold: flags.terminated_pod_gc_threshold,
            concurrent_deployment_syncs: flags.concurrent_deployment_syncs,
            concurrent_rc_syncs: flags.concurrent_rc_syncs,
            node_lifecycle,
            metrics,
        },
    );
    if !flags.leader_elect {
        return work.await;
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    // As upstream: the host name and a unique suffix.
    let identity = format!("{}_{}", hostname.trim(), uuid::Uuid::new_v4());
    let mut election =
        rkube_controllers::leader::Election::new("kube-controller-manager", identity);
    election.lease_duration = duration(
        "leader-elect-lease-duration",
        &flags.leader_elect_lease_duration,
    )?;
    election.renew_deadline = duration(
        "leader-elect-renew-deadline",
        &flags.leader_elect_renew_deadline,
    )?;
    election.retry_period = duration(
        "leader-elect-retry-period",
        &flags.leader_elect_retry_period,
    )?;
    rkube_controllers::leader::run_as_leader(client, election, work).await
}
