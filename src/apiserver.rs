//! `rkube apiserver`: kube-apiserver's flags, the store, and HTTPS.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rkube_apiserver::bootstrap;
use rkube_apiserver::server::{self, ApiServer, User};
use rkube_storage::Storage;
use rkube_storage::etcd::{EtcdConfig, EtcdStore};
use rkube_storage::sqlite::{SqliteConfig, SqliteStore};
use tokio::net::TcpListener;

#[derive(clap::Parser, Debug, Clone)]
#[command(about = "The Kubernetes API server")]
pub struct Flags {
    /// etcd servers to connect to (scheme://ip:port, comma separated). Without
    /// it the embedded store under --data-dir is used.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,
    /// Where the embedded store (and `rkube up`'s PKI) live.
    #[arg(long, default_value = "/var/lib/rkube")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// The client certificate `pods/log` presents to kubelets.
    #[arg(long)]
    pub kubelet_client_certificate: Option<PathBuf>,
    #[arg(long)]
    pub kubelet_client_key: Option<PathBuf>,
    /// Checks kubelets' serving certificates (unchecked without it, as upstream).
    #[arg(long)]
    pub kubelet_certificate_authority: Option<PathBuf>,
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// How often history is compacted, as a Go duration (0 turns it off).
    #[arg(long, default_value = "5m0s")]
    pub etcd_compaction_interval: String,
    /// Enable or disable API group-versions (`group/version=true|false`).
    #[arg(long, default_value = "")]
    pub runtime_config: String,
    /// The `iss` of service account tokens (the first signs; all are
    /// accepted, as upstream).
    #[arg(long)]
    pub service_account_issuer: Vec<String>,
    /// The private key service account tokens are signed with.
    #[arg(long)]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// The public key tokens are checked with.
    #[arg(long)]
    pub service_account_key_file: Option<PathBuf>,
    /// What tokens must be meant for to reach this server (the issuer
    /// when empty).
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
}

pub async fn open_store(flags: &Flags) -> anyhow::Result<Arc<dyn Storage>> {
    if flags.etcd_servers.is_empty() {
        let path = flags.data_dir.join("state.db");
        let mut config = SqliteConfig::new(&path);
        // The API server's compactor (below) compacts either backend.
        config.compaction_interval = None;
        let store = SqliteStore::open(config)
            .with_context(|| format!("opening the embedded store at {}", path.display()))?;
        Ok(Arc::new(store))
    } else {
        let mut config = EtcdConfig::new(flags.etcd_servers.clone());
        config.prefix = flags.etcd_prefix.clone();
        config.ca_file = flags.etcd_cafile.clone();
        config.cert_file = flags.etcd_certfile.clone();
        config.key_file = flags.etcd_keyfile.clone();
        Ok(Arc::new(EtcdStore::connect(config).await?))
    }
}

/// Binds, bootstraps and serves; returns once serving fails.
pub async fn run(flags: Flags) -> anyhow::Result<()> {
    start(flags).await?.await.context("the API server task")?
}

/// Binds and bootstraps, then serves in a task: once this returns the API
/// server answers requests.
pub async fn start(flags: Flags) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let started = std::time::Instant::now();
    let (cert, key) = match (&flags.tls_cert_file, &flags.tls_private_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => anyhow::bail!(
            "--tls-cert-file and --tls-private-key-file are required (rkube up makes them)"
        ),
    };
    let client_ca = flags.client_ca_file.clone().context(
        "--client-ca-file is required: requests are authenticated by client certificates",
    )?;
    let tls = rkube_pki::server_config(&cert, &key, Some(&client_ca))?;
    let compaction = rkube_apiserver::compactor::parse_duration(&flags.etcd_compaction_interval)
        .map_err(|e| anyhow::anyhow!("--etcd-compaction-interval: {e}"))?;
    let store = open_store(&flags).await?;
    tokio::spawn(rkube_apiserver::compactor::run(store.clone(), compaction));
    let catalogue = Arc::new(
        rkube_apiserver::catalogue::BuiltinCatalogue::new(
            &flags.runtime_config,
            format!(
                "{}:{}",
                flags
                    .advertise_address
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "127.0.0.1".into()),
                flags.secure_port
            ),
        )
        .map_err(|e| anyhow::anyhow!("--runtime-config: {e}"))?,
    );
    let mut api = ApiServer::new(store, catalogue.clone());
    api.registry.service_ranges = rkube_apiserver::allocation::ServiceRanges::parse(
        &flags.service_cluster_ip_range,
        &flags.service_node_port_range,
    )
    .map_err(|e| anyhow::anyhow!("--service-cluster-ip-range/--service-node-port-range: {e}"))?;
    if let (Some(cert), Some(key)) = (&flags.kubelet_client_certificate, &flags.kubelet_client_key)
    {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let identity = rkube_pki::CertAndKey {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        };
        let ca = match &flags.kubelet_certificate_authority {
            Some(p) => Some(read(p)?),
            None => None,
        };
        let tls = rkube_pki::kubelet_client_config(&identity, ca.as_deref())?;
        api.kubelet = Some(rkube_apiserver::kubelet_client::KubeletClient::new(tls));
    }
    let advertise = flags.advertise_address.unwrap_or(match flags.bind_address {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        other => other,
    });
    if let (Some(issuer), Some(signing)) = (
        flags.service_account_issuer.first(),
        &flags.service_account_signing_key_file,
    ) {
        let public = flags.service_account_key_file.as_ref().context(
            "--service-account-key-file is required with --service-account-signing-key-file",
        )?;
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let jwks_uri = format!(
            "https://{}/openid/v1/jwks",
            SocketAddr::new(advertise, flags.secure_port)
        );
        let tokens = rkube_apiserver::serviceaccount::tokens::Tokens::new(
            &read(signing)?,
            &read(public)?,
            issuer.clone(),
            flags.api_audiences.clone(),
            jwks_uri,
        )
        .context("loading the service account keys")?;
        api.tokens = Some(Arc::new(tokens));
    }
    let server = Arc::new(api);
    let addr = SocketAddr::new(flags.bind_address, flags.secure_port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    server
        .mark_started()
        .await
        .context("reading the store's revision")?;
    bootstrap::ensure_system_objects(
        &server.registry,
        server.catalogue.as_ref(),
        &flags.service_cluster_ip_range,
        advertise,
        flags.secure_port,
    )
    .await
    .context("creating the system namespaces and the kubernetes service")?;
    // CustomResourceDefinitions: served from the start, then followed.
    let crds = rkube_apiserver::crd::controller::CrdController::new(server.clone(), catalogue);
    crds.preload()
        .await
        .map_err(|e| anyhow::anyhow!("loading CustomResourceDefinitions: {}", e.message))?;
    tokio::spawn(crds.run());
    tracing::info!(%addr, elapsed = ?started.elapsed(), "serving");
    let authenticate: server::Authenticator = Arc::new(|der| {
        rkube_pki::user_from_certificate(der).map(|u| User {
            name: u.name,
            groups: u.groups,
        })
    });
    Ok(tokio::spawn(async move {
        server::serve(server, listener, tls, authenticate)
            .await
            .context("serving")
    }))
}
