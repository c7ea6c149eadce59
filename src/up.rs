//! `rkube up`: a whole cluster in one process. Lays out a PKI the way
//! kubeadm does under the data dir, writes the admin kubeconfig and starts
//! the API server on the embedded store. A second `rkube up` on the same
//! data dir reuses both.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::apiserver;

#[derive(clap::Parser, Debug, Clone)]
#[command(about = "Start a whole cluster in this process")]
pub struct Flags {
    #[arg(long, default_value = "/var/lib/rkube")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Use etcd instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,
    #[arg(long, default_value = "")]
    pub runtime_config: String,
    /// How often the store's history is compacted (Go duration; 0 = never).
    #[arg(long, default_value = "5m0s")]
    pub etcd_compaction_interval: String,
    /// Run the API server alone, without the controller manager.
    #[arg(long)]
    pub no_controllers: bool,
    /// Also run this many simulated nodes (`sim-node-0` …) in this
    /// process: pods bound to them report Running without processes. They
    /// share one identity, `system:node:simulated`.
    #[arg(long, default_value_t = 0)]
    pub simulated_nodes: u32,
    /// Also run a real node (the kubelet on CRI) named for this host: pods
    /// bound to it run in containerd, the one on
    /// --container-runtime-endpoint or one started under the data dir.
    #[arg(long)]
    pub kubelet: bool,
    /// The node's CRI endpoint (implies --kubelet).
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,
    /// Image archives the node imports at start (implies --kubelet).
    #[arg(long)]
    pub image_archive_dir: Option<PathBuf>,
    /// The real node's podCIDR (its CNI bridge's range).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// The port of the real node's kubelet server.
    #[arg(long, default_value_t = rkube_kubelet::server::DEFAULT_PORT)]
    pub kubelet_port: u16,
    /// The real node's container log rotation (the kubelet's flags).
    #[arg(long, default_value = rkube_kubelet::cri::logrotate::DEFAULT_MAX_SIZE)]
    pub container_log_max_size: String,
    #[arg(long, default_value_t = rkube_kubelet::cri::logrotate::DEFAULT_MAX_FILES)]
    pub container_log_max_files: usize,
    /// The real node's kubelet plain-HTTP /healthz port (0: none).
    #[arg(long, default_value_t = rkube_kubelet::server::DEFAULT_HEALTHZ_PORT)]
    pub kubelet_healthz_port: u16,
    /// Static pod manifests the real node runs (implies --kubelet).
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// Run without the scheduler.
    #[arg(long)]
    pub no_scheduler: bool,
    /// Port of the scheduler's /healthz and /metrics (0 disables).
    #[arg(long, default_value_t = 10259)]
    pub scheduler_secure_port: u16,
    /// Port of the controller manager's /healthz and /metrics (0 disables).
    #[arg(long, default_value_t = 10257)]
    pub controller_manager_secure_port: u16,
    /// The controller manager's --node-monitor-grace-period.
    #[arg(long, default_value = "50s")]
    pub node_monitor_grace_period: String,
    /// The controller manager's --node-monitor-period.
    #[arg(long, default_value = "5s")]
    pub node_monitor_period: String,
}

/// This host's non-loopback addresses, for the serving certificate.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/fib_trie") {
        // Lines "|-- a.b.c.d" followed by "/32 host LOCAL" name local addresses.
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.windows(2) {
            if pair[1].contains("/32 host LOCAL")
                && let Some(ip) = pair[0].trim().strip_prefix("|-- ")
                && let Ok(ip) = ip.parse::<IpAddr>()
                && !ip.is_loopback()
                && !out.contains(&ip)
            {
                out.push(ip);
            }
        }
    }
    out
}

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let dir = &flags.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let service_ip = rkube_apiserver::bootstrap::first_service_ip(&flags.service_cluster_ip_range)
        .context("--service-cluster-ip-range")?;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let mut ips = vec![service_ip];
    ips.extend(host_addresses());
    let options = rkube_pki::PkiOptions {
        hosts: vec![hostname]
            .into_iter()
            .filter(|h| !h.is_empty())
            .collect(),
        ips,
        cluster_domain: "cluster.local".into(),
    };
    let pki = rkube_pki::ensure_cluster_pki(dir, &options).context("preparing the PKI")?;
    let server_url = format!("https://127.0.0.1:{}", flags.secure_port);
    let admin = dir.join("admin.conf");
    pki.write_kubeconfig(
        &admin,
        &server_url,
        "kubernetes-admin",
        &["system:masters"],
        "kubernetes",
    )
    .context("writing the admin kubeconfig")?;
    let pki_dir = dir.join("pki");
    eprintln!(
        "rkube: cluster starting on {server_url}\n\n  export KUBECONFIG={}\n  kubectl get namespaces\n",
        admin.display()
    );
    let api = apiserver::Flags {
        etcd_servers: flags.etcd_servers.clone(),
        etcd_prefix: "/registry".into(),
        etcd_cafile: None,
        etcd_certfile: None,
        etcd_keyfile: None,
        data_dir: dir.clone(),
        secure_port: flags.secure_port,
        bind_address: flags.bind_address,
        advertise_address: None,
        tls_cert_file: Some(pki_dir.join("apiserver.crt")),
        tls_private_key_file: Some(pki_dir.join("apiserver.key")),
        client_ca_file: Some(pki_dir.join("ca.crt")),
        kubelet_client_certificate: Some(pki_dir.join("apiserver-kubelet-client.crt")),
        kubelet_client_key: Some(pki_dir.join("apiserver-kubelet-client.key")),
        kubelet_certificate_authority: None,
        service_cluster_ip_range: flags.service_cluster_ip_range.clone(),
        service_node_port_range: "30000-32767".into(),
        runtime_config: flags.runtime_config.clone(),
        etcd_compaction_interval: flags.etcd_compaction_interval.clone(),
        // kubeadm's issuer and keys.
        service_account_issuer: vec!["https://kubernetes.default.svc.cluster.local".into()],
        service_account_signing_key_file: Some(pki_dir.join("sa.key")),
        service_account_key_file: Some(pki_dir.join("sa.pub")),
        api_audiences: Vec::new(),
    };
    let serving = apiserver::start(api).await?;
    // Kubeconfigs for the components, with their own credentials (also
    // for running them as separate processes).
    let kubeconfigs = pki
        .ensure_component_kubeconfigs(&server_url)
        .context("writing the component kubeconfigs")?;
    let nodes = async {
        if flags.simulated_nodes == 0 {
            return std::future::pending().await;
        }
        // One shared client certificate for all simulated nodes: one per
        // node would cost a key pair each for no gain in a simulation.
        let kubeconfig = dir.join("kubelet-simulated.conf");
        pki.kubelet_kubeconfig(&kubeconfig, &server_url, "simulated")
            .context("writing the simulated nodes' kubeconfig")?;
        let client = crate::controller_manager::client(&kubeconfig).await?;
        let runtime = crate::kubelet::runtime("simulated")?;
        let nodes = crate::kubelet::simulated_nodes(flags.simulated_nodes);
        rkube_kubelet::run(client, nodes, runtime).await
    };
    let kubelet = async {
        if !(flags.kubelet
            || flags.container_runtime_endpoint.is_some()
            || flags.image_archive_dir.is_some()
            || flags.pod_manifest_path.is_some())
        {
            return std::future::pending().await;
        }
        let name = crate::kubelet::hostname();
        let kubeconfig = dir.join("kubelet.conf");
        pki.kubelet_kubeconfig(&kubeconfig, &server_url, &name)
            .context("writing the kubelet's kubeconfig")?;
        let mut kubelet = crate::kubelet::Flags::for_up(
            kubeconfig,
            name.clone(),
            dir.join("kubelet"),
            flags.container_runtime_endpoint.clone(),
            flags.image_archive_dir.clone(),
            flags.pod_cidr.clone(),
        );
        kubelet.pod_manifest_path = flags.pod_manifest_path.clone();
        // A serving certificate from the cluster CA for the node's names,
        // and the CA to check the API server's client certificate.
        let node_ip = crate::kubelet::default_node_ip();
        let mut ips = vec![IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)];
        ips.extend(node_ip.parse::<IpAddr>().ok());
        let (cert, key) = pki
            .ensure_kubelet_serving_cert(&name, std::slice::from_ref(&name), &ips)
            .context("issuing the kubelet's serving certificate")?;
        kubelet.node_ip = Some(node_ip);
        kubelet.port = flags.kubelet_port;
        kubelet.healthz_port = flags.kubelet_healthz_port;
        kubelet.container_log_max_size = flags.container_log_max_size.clone();
        kubelet.container_log_max_files = flags.container_log_max_files;
        kubelet.tls_cert_file = Some(cert);
        kubelet.tls_private_key_file = Some(key);
        kubelet.client_ca_file = Some(pki_dir.join("ca.crt"));
        crate::kubelet::run(kubelet).await
    };
    let scheduler = async {
        if flags.no_scheduler {
            return std::future::pending().await;
        }
        let scheduler = crate::scheduler::Flags::for_up(
            kubeconfigs.scheduler.clone(),
            flags.scheduler_secure_port,
        );
        crate::scheduler::run(scheduler).await
    };
    if flags.no_controllers {
        return tokio::select! {
            served = serving => served.context("the API server task")?,
            ran = nodes => ran.context("the simulated nodes"),
            ran = kubelet => ran.context("the kubelet"),
            scheduled = scheduler => scheduled.context("the scheduler"),
        };
    }
    let mut controllers = crate::controller_manager::Flags::for_up(
        kubeconfigs.controller_manager,
        pki_dir.join("ca.crt"),
    );
    controllers.secure_port = flags.controller_manager_secure_port;
    controllers.node_monitor_grace_period = flags.node_monitor_grace_period.clone();
    controllers.node_monitor_period = flags.node_monitor_period.clone();
    tokio::select! {
        served = serving => served.context("the API server task")?,
        managed = crate::controller_manager::run(controllers) => managed.context("the controller manager"),
        ran = nodes => ran.context("the simulated nodes"),
        ran = kubelet => ran.context("the kubelet"),
        scheduled = scheduler => scheduled.context("the scheduler"),
    }
}
