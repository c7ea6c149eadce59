//! The whole control-plane PKI under `<dir>/pki`, laid out as kubeadm's
//! `/etc/kubernetes/pki`, created on first start and reused afterwards.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::ca::CertificateAuthority;
use crate::error::Result;
use crate::kubeconfig::{self, ComponentKubeconfigs, DEFAULT_CLUSTER_NAME};
use crate::leaf::{self, CertAndKey, LeafSpec, Usage};
use crate::sa::{self, ServiceAccountKeys};

/// What the serving certificate must cover beyond kubeadm's fixed names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiOptions {
    /// Extra DNS SANs (host name, load balancer name, ...).
    pub hosts: Vec<String>,
    /// Extra IP SANs: the first service IP (e.g. 10.96.0.1) and host addresses.
    pub ips: Vec<IpAddr>,
    /// Cluster DNS domain, e.g. `cluster.local`.
    pub cluster_domain: String,
}

impl Default for PkiOptions {
    fn default() -> Self {
        PkiOptions {
            hosts: Vec::new(),
            ips: Vec::new(),
            cluster_domain: "cluster.local".into(),
        }
    }
}

impl PkiOptions {
    /// kubeadm's fixed serving names plus `hosts`, deduplicated, in order.
    pub fn serving_dns_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
        ]
        .map(String::from)
        .into();
        names.push(format!("kubernetes.default.svc.{}", self.cluster_domain));
        names.extend(self.hosts.iter().cloned());
        dedup(names)
    }

    /// Loopback addresses plus `ips`, deduplicated, in order.
    pub fn serving_ips(&self) -> Vec<IpAddr> {
        let mut ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        ips.extend(self.ips.iter().copied());
        dedup(ips)
    }
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Paths of the files `ensure_cluster_pki` manages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiPaths {
    pub pki_dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub apiserver_kubelet_client_cert: PathBuf,
    pub apiserver_kubelet_client_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
}

impl PkiPaths {
    /// kubeadm's file names under `<dir>/pki`.
    pub fn new(dir: &Path) -> Self {
        let pki = dir.join("pki");
        PkiPaths {
            ca_cert: pki.join("ca.crt"),
            ca_key: pki.join("ca.key"),
            apiserver_cert: pki.join("apiserver.crt"),
            apiserver_key: pki.join("apiserver.key"),
            apiserver_kubelet_client_cert: pki.join("apiserver-kubelet-client.crt"),
            apiserver_kubelet_client_key: pki.join("apiserver-kubelet-client.key"),
            sa_key: pki.join("sa.key"),
            sa_pub: pki.join("sa.pub"),
            pki_dir: pki,
        }
    }
}

/// The loaded PKI: CA, serving and kubelet-client pairs, SA keys.
#[derive(Debug)]
pub struct ClusterPki {
    dir: PathBuf,
    paths: PkiPaths,
    ca: CertificateAuthority,
    apiserver: CertAndKey,
    kubelet_client: CertAndKey,
    service_account: ServiceAccountKeys,
}

/// Creates whatever is missing under `dir/pki` and loads the rest. Existing
/// files are reused; the serving certificate alone is reissued (same CA) when
/// it lacks a requested SAN, and leaf certificates when expired.
pub fn ensure_cluster_pki(dir: &Path, opts: &PkiOptions) -> Result<ClusterPki> {
    let paths = PkiPaths::new(dir);
    let ca = CertificateAuthority::load_or_create(&paths.pki_dir)?;
    let apiserver = leaf::ensure_on_disk(
        &ca,
        &paths.pki_dir,
        "apiserver",
        &LeafSpec {
            common_name: "kube-apiserver".into(),
            organizations: Vec::new(),
            dns_names: opts.serving_dns_names(),
            ips: opts.serving_ips(),
            usage: Usage::Server,
        },
    )?;
    let kubelet_client = leaf::ensure_on_disk(
        &ca,
        &paths.pki_dir,
        "apiserver-kubelet-client",
        &LeafSpec::client("kube-apiserver-kubelet-client", &["kubeadm:cluster-admins"]),
    )?;
    let service_account = sa::ensure(&paths.pki_dir)?;
    Ok(ClusterPki {
        dir: dir.to_path_buf(),
        paths,
        ca,
        apiserver,
        kubelet_client,
        service_account,
    })
}

/// Writes `admin.conf`, `controller-manager.conf` and `scheduler.conf` into
/// `dir`, using the CA already in `dir/pki` (see [`ensure_cluster_pki`]).
pub fn ensure_component_kubeconfigs(dir: &Path, server_url: &str) -> Result<ComponentKubeconfigs> {
    let ca = CertificateAuthority::load(&PkiPaths::new(dir).pki_dir)?;
    kubeconfig::ensure_components(&ca, dir, server_url)
}

impl ClusterPki {
    /// The root given to [`ensure_cluster_pki`] (kubeadm's `/etc/kubernetes`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn paths(&self) -> &PkiPaths {
        &self.paths
    }

    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    pub fn ca_cert_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// `apiserver.crt` / `apiserver.key`.
    pub fn apiserver(&self) -> &CertAndKey {
        &self.apiserver
    }

    /// `apiserver-kubelet-client.crt` / `.key`, for apiserver → kubelet calls.
    pub fn kubelet_client(&self) -> &CertAndKey {
        &self.kubelet_client
    }

    /// `sa.key` / `sa.pub`.
    pub fn service_account(&self) -> &ServiceAccountKeys {
        &self.service_account
    }

    /// A fresh client certificate (not stored) for CN `user`, O `groups`.
    pub fn issue_client_cert(&self, user: &str, groups: &[&str]) -> Result<CertAndKey> {
        leaf::issue(&self.ca, &LeafSpec::client(user, groups), user)
    }

    /// Writes a kubeadm-style kubeconfig for CN `user`, O `groups`; context
    /// `<user>@<cluster_name>`. Reuses the embedded certificate of an existing
    /// file at `path` while it still fits.
    pub fn write_kubeconfig(
        &self,
        path: &Path,
        server_url: &str,
        user: &str,
        groups: &[&str],
        cluster_name: &str,
    ) -> Result<()> {
        kubeconfig::write(&self.ca, path, server_url, user, groups, cluster_name)
    }

    /// [`ensure_component_kubeconfigs`] into [`Self::dir`].
    pub fn ensure_component_kubeconfigs(&self, server_url: &str) -> Result<ComponentKubeconfigs> {
        kubeconfig::ensure_components(&self.ca, &self.dir, server_url)
    }

    /// A kubelet's serving pair at `<dir>/pki/kubelet-<node>.{crt,key}`
    /// (CN `system:node:<node>`, O `system:nodes`, as upstream's serving
    /// CSRs), reused while it still covers `dns_names` and `ips`; the paths
    /// of the certificate and the key.
    pub fn ensure_kubelet_serving_cert(
        &self,
        node_name: &str,
        dns_names: &[String],
        ips: &[IpAddr],
    ) -> Result<(PathBuf, PathBuf)> {
        let base = format!("kubelet-{node_name}");
        leaf::ensure_on_disk(
            &self.ca,
            &self.paths.pki_dir,
            &base,
            &LeafSpec {
                common_name: format!("system:node:{node_name}"),
                organizations: vec!["system:nodes".into()],
                dns_names: dedup(dns_names.to_vec()),
                ips: dedup(ips.to_vec()),
                usage: Usage::Server,
            },
        )?;
        Ok((
            self.paths.pki_dir.join(format!("{base}.crt")),
            self.paths.pki_dir.join(format!("{base}.key")),
        ))
    }

    /// A kubelet's kubeconfig (CN=system:node:<node>, O=system:nodes) at
    /// `path`; kubeadm's location is `<dir>/kubelet.conf`.
    pub fn kubelet_kubeconfig(&self, path: &Path, server_url: &str, node_name: &str) -> Result<()> {
        self.write_kubeconfig(
            path,
            server_url,
            &format!("system:node:{node_name}"),
            &["system:nodes"],
            DEFAULT_CLUSTER_NAME,
        )
    }
}
