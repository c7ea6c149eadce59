//! `rkube kubelet`: the node agent as an API client. Pods run through CRI
//! (containerd: the one on `--container-runtime-endpoint`, else one the
//! kubelet starts itself); `--runtime=simulated` runs them without
//! processes, for scale tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

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
    /// spec.podCIDR to register the node with (with CRI, the range of the
    /// managed containerd's CNI bridge; 10.244.0.0/24 when unset).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// `remote`: CRI (containerd). `simulated`: pods report Running
    /// without processes (as KWOK).
    #[arg(long, default_value = "remote")]
    pub runtime: String,
    /// The CRI endpoint. When nothing answers there and containerd is
    /// installed, the kubelet starts its own under --root-dir.
    #[arg(long, default_value = DEFAULT_ENDPOINT)]
    pub container_runtime_endpoint: String,
    /// Image archives (`*.tar`, OCI or Docker) to import at start
    /// (hack/images builds pause and busybox).
    #[arg(long)]
    pub image_archive_dir: Option<PathBuf>,
    /// The kubelet's state, and a managed containerd's root, state and
    /// socket.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub root_dir: PathBuf,
    /// A directory of static pod manifests: each runs on this node, with
    /// a mirror pod in the API.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// The port of the kubelet's HTTPS server (logs, exec, stats).
    #[arg(long, default_value_t = rkube_kubelet::server::DEFAULT_PORT)]
    pub port: u16,
    /// The address the server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: std::net::IpAddr,
    /// The server's certificate; without it (and the key) the kubelet
    /// makes a self-signed one under <root-dir>/pki, as upstream.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Clients presenting a certificate signed by this CA are
    /// authenticated; without it every request is refused (401).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// The plain-HTTP /healthz port; 0 disables it.
    #[arg(long, default_value_t = rkube_kubelet::server::DEFAULT_HEALTHZ_PORT)]
    pub healthz_port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub healthz_bind_address: std::net::IpAddr,
    /// Cluster DNS server IPs for ClusterFirst pods, comma-separated
    /// (none: pods use the node's resolver settings, as upstream).
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    /// The cluster's DNS domain (pods' search paths and FQDNs).
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The node's resolver configuration that pods start from.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// A container log is rotated once it grows past this size.
    #[arg(long, default_value = rkube_kubelet::cri::logrotate::DEFAULT_MAX_SIZE)]
    pub container_log_max_size: String,
    /// At most this many log files per container (the current one too).
    #[arg(long, default_value_t = rkube_kubelet::cri::logrotate::DEFAULT_MAX_FILES)]
    pub container_log_max_files: usize,
    /// Unsafe sysctls (or `prefix*` patterns) pods may set, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub allowed_unsafe_sysctls: Vec<String>,
}

pub const DEFAULT_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";
/// The pod range of a CRI node registered without one.
pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/24";

impl Flags {
    /// The one real node `rkube up --kubelet` runs.
    pub fn for_up(
        kubeconfig: PathBuf,
        node_name: String,
        root_dir: PathBuf,
        endpoint: Option<String>,
        image_archive_dir: Option<PathBuf>,
        pod_cidr: Option<String>,
    ) -> Flags {
        Flags {
            kubeconfig,
            hostname_override: None,
            node_name: Some(node_name),
            node_ip: None,
            pod_cidr,
            runtime: "remote".into(),
            container_runtime_endpoint: endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.into()),
            image_archive_dir,
            root_dir,
            pod_manifest_path: None,
            port: rkube_kubelet::server::DEFAULT_PORT,
            address: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            tls_cert_file: None,
            tls_private_key_file: None,
            client_ca_file: None,
            allowed_unsafe_sysctls: Vec::new(),
            healthz_port: rkube_kubelet::server::DEFAULT_HEALTHZ_PORT,
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            resolv_conf: "/etc/resolv.conf".into(),
            container_log_max_size: rkube_kubelet::cri::logrotate::DEFAULT_MAX_SIZE.into(),
            container_log_max_files: rkube_kubelet::cri::logrotate::DEFAULT_MAX_FILES,
            healthz_bind_address: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        }
    }
}

pub fn runtime(name: &str) -> anyhow::Result<Arc<dyn rkube_kubelet::Runtime>> {
    match name {
        "simulated" => Ok(Arc::new(rkube_kubelet::Simulated)),
        other => {
            anyhow::bail!("--runtime: unknown runtime {other:?} (expected simulated or remote)")
        }
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_lowercase()
}

/// Connects to (or starts) containerd and imports the image archives.
async fn cri_runtime(
    flags: &Flags,
    client: kube::Client,
    host_ip: &str,
    pod_cidr: &str,
) -> anyhow::Result<(
    Arc<rkube_kubelet::CriRuntime>,
    std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
)> {
    let opts = rkube_kubelet::containerd::RuntimeOptions {
        endpoint: flags.container_runtime_endpoint.clone(),
        data_dir: flags.root_dir.clone(),
        pod_cidr: pod_cidr.to_owned(),
    };
    let (cri, endpoint, supervise) = rkube_kubelet::containerd::connect(&opts).await?;
    if let Some(dir) = &flags.image_archive_dir {
        rkube_kubelet::containerd::import_archives(&endpoint, dir).await?;
    }
    let dns = rkube_kubelet::cri::dns::Settings {
        cluster_dns: flags.cluster_dns.clone(),
        cluster_domain: flags.cluster_domain.clone(),
        // No file: empty settings (upstream allows --resolv-conf="").
        host: std::fs::read_to_string(&flags.resolv_conf).unwrap_or_default(),
    };
    let runtime = rkube_kubelet::CriRuntime::new(
        cri,
        client,
        host_ip.to_owned(),
        flags.root_dir.clone(),
        dns,
    )
    .await
    .context("asking the runtime its version")?;
    Ok((Arc::new(runtime), supervise))
}

/// The server's TLS config: the given pair, else a self-signed one under
/// `<root-dir>/pki` (upstream's kubelet.crt / kubelet.key).
fn server_tls(
    flags: &Flags,
    name: &str,
    ip: &str,
) -> anyhow::Result<Arc<rkube_kubelet::server::ServerConfig>> {
    let (cert, key) = match (&flags.tls_cert_file, &flags.tls_private_key_file) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        (None, None) => {
            let mut ips = vec![std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)];
            ips.extend(ip.parse::<std::net::IpAddr>().ok());
            rkube_pki::ensure_self_signed(&flags.root_dir.join("pki"), "kubelet", name, &ips)
                .context("making the kubelet's self-signed serving certificate")?
        }
        _ => anyhow::bail!("--tls-cert-file and --tls-private-key-file go together"),
    };
    rkube_kubelet::server::tls_config(&cert, &key, flags.client_ca_file.as_deref())
        .context("loading the kubelet's serving certificate")
}

/// The IPv4 address of the interface with the default route, as
/// upstream's kubelet picks the node IP (never a pod bridge's).
fn default_route_address() -> Option<std::net::IpAddr> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    let iface = routes.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000").then(|| f[0].to_owned())
    })?;
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free once.
    if unsafe { libc::getifaddrs(&mut addrs) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = addrs;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated name and a sockaddr of the family it
        // says.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_str() != Ok(iface.as_str())
            || i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_INET
        {
            continue;
        }
        let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
        found = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            u32::from_be(sin.sin_addr.s_addr),
        )));
        break;
    }
    // SAFETY: the list getifaddrs returned, freed once.
    unsafe { libc::freeifaddrs(addrs) };
    found
}

/// The node IP when --node-ip is not given.
pub fn default_node_ip() -> String {
    default_route_address()
        .or_else(|| crate::up::host_addresses().first().copied())
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "127.0.0.1".into())
}

fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let name = flags
        .node_name
        .clone()
        .or(flags.hostname_override.clone())
        .unwrap_or_else(hostname);
    anyhow::ensure!(!name.is_empty(), "no node name: pass --node-name");
    let ip = flags.node_ip.clone().unwrap_or_else(default_node_ip);
    if flags.runtime == "simulated" {
        let runtime = runtime(&flags.runtime)?;
        let mut node = rkube_kubelet::NodeConfig::simulated(&name, &ip);
        node.pod_cidr = flags.pod_cidr.clone();
        node.allowed_unsafe_sysctls = flags.allowed_unsafe_sysctls.clone();
        let client = crate::controller_manager::client(&flags.kubeconfig).await?;
        let static_pods = static_pods(&flags, client.clone(), &name);
        return tokio::select! {
            r = rkube_kubelet::run(client, vec![node], runtime) => r,
            () = static_pods => anyhow::bail!("the static pod source ended"),
        };
    }
    anyhow::ensure!(
        matches!(flags.runtime.as_str(), "remote" | "cri"),
        "--runtime: unknown runtime {:?} (expected simulated or remote)",
        flags.runtime
    );
    let max_size = rkube_scheduler::quantity::value(&flags.container_log_max_size)
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .with_context(|| {
            format!(
                "--container-log-max-size: {:?} is not a positive quantity",
                flags.container_log_max_size
            )
        })?;
    anyhow::ensure!(
        flags.container_log_max_files >= 2,
        "--container-log-max-files must be at least 2"
    );
    let log_policy = rkube_kubelet::cri::logrotate::Policy {
        max_size,
        max_files: flags.container_log_max_files,
    };
    ensure_dir(&flags.root_dir)?;
    let pod_cidr = flags
        .pod_cidr
        .clone()
        .unwrap_or_else(|| DEFAULT_POD_CIDR.into());
    let client = crate::controller_manager::client(&flags.kubeconfig).await?;
    let tls = server_tls(&flags, &name, &ip)?;
    let (runtime, supervise) = cri_runtime(&flags, client.clone(), &ip, &pod_cidr).await?;
    let mut node = rkube_kubelet::NodeConfig::host(&name, &ip, &flags.root_dir);
    node.pod_cidr = Some(pod_cidr);
    node.port = flags.port;
    node.allowed_unsafe_sysctls = flags.allowed_unsafe_sysctls.clone();
    let static_pods = static_pods(&flags, client.clone(), &name);
    let server = rkube_kubelet::server::serve(
        rkube_kubelet::server::Options {
            address: flags.address,
            port: flags.port,
            tls,
        },
        runtime.clone(),
        name.clone(),
    );
    let healthz = async {
        match flags.healthz_port {
            0 => std::future::pending().await,
            port => {
                let addr = std::net::SocketAddr::new(flags.healthz_bind_address, port);
                rkube_kubelet::server::serve_healthz(addr).await
            }
        }
    };
    let rotation = runtime.clone();
    let rotation = rotation.rotate_logs(log_policy);
    tokio::select! {
        r = rkube_kubelet::run(client, vec![node], runtime) => r,
        r = server => r.context("the kubelet server"),
        () = rotation => anyhow::bail!("log rotation ended"),
        () = healthz => anyhow::bail!("the healthz server ended"),
        () = supervise => anyhow::bail!("containerd supervision ended"),
        () = static_pods => anyhow::bail!("the static pod source ended"),
    }
}

/// The static pod source of --pod-manifest-path; pending without one.
async fn static_pods(flags: &Flags, client: kube::Client, node: &str) {
    match &flags.pod_manifest_path {
        Some(dir) => rkube_kubelet::staticpods::run(client, node.to_owned(), dir.clone()).await,
        None => std::future::pending().await,
    }
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
