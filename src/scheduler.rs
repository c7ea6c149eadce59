//! `rkube scheduler`: kube-scheduler's flags, the `rkube-scheduler`
//! framework as an API client, leader election on
//! `kube-system/kube-scheduler`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Parser, Debug, Clone)]
#[command(about = "The Kubernetes scheduler")]
pub struct Flags {
    /// Path to a kubeconfig with the scheduler's credentials.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// A KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Port of /healthz and /metrics (plain HTTP; upstream serves HTTPS); 0 disables.
    #[arg(long, default_value_t = 10259)]
    pub secure_port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,
    /// Binding requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub parallel_binds: usize,
    /// Run only while holding the `kube-system/kube-scheduler` Lease.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    #[arg(long, default_value = "15s")]
    pub leader_elect_lease_duration: String,
    #[arg(long, default_value = "10s")]
    pub leader_elect_renew_deadline: String,
    #[arg(long, default_value = "2s")]
    pub leader_elect_retry_period: String,
}

impl Flags {
    /// The flags `rkube up` uses for its own scheduler.
    pub fn for_up(kubeconfig: PathBuf, secure_port: u16) -> Self {
        Flags {
            kubeconfig,
            config: None,
            secure_port,
            bind_address: [127, 0, 0, 1].into(),
            parallel_binds: 64,
            leader_elect: true,
            leader_elect_lease_duration: "15s".into(),
            leader_elect_renew_deadline: "10s".into(),
            leader_elect_retry_period: "2s".into(),
        }
    }
}

fn duration(flag: &str, value: &str) -> anyhow::Result<std::time::Duration> {
    rkube_apiserver::compactor::parse_duration(value).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let config = match &flags.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --config {}", path.display()))?;
            rkube_scheduler::Configuration::parse(&text)?
        }
        None => Default::default(),
    };
    // Reject a bad configuration before waiting for the lease.
    config.frameworks()?;
    let client = crate::controller_manager::client(&flags.kubeconfig).await?;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let identity = format!("{}_{}", hostname.trim(), uuid::Uuid::new_v4());
    let options = rkube_scheduler::Options {
        config,
        metrics_address: (flags.secure_port != 0)
            .then(|| SocketAddr::new(flags.bind_address, flags.secure_port)),
        parallel_binds: flags.parallel_binds,
        identity: identity.clone(),
    };
    let work = rkube_scheduler::run(client.clone(), options);
    if !flags.leader_elect {
        return work.await;
    }
    let mut election = rkube_controllers::leader::Election::new("kube-scheduler", identity);
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
