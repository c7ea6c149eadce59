//! rkube-pki: the control-plane PKI laid out as kubeadm does
//! (`<dir>/pki/{ca,apiserver,apiserver-kubelet-client}.{crt,key}`,
//! `sa.{key,pub}`, and `<dir>/*.conf` kubeconfigs), rustls configs built on
//! it, and the user a verified client certificate stands for.

mod ca;
mod cluster;
mod der;
mod error;
mod files;
mod keys;
mod kubeconfig;
mod leaf;
mod sa;
mod tls;
mod user;

pub use ca::CertificateAuthority;
pub use cluster::{
    ClusterPki, PkiOptions, PkiPaths, ensure_cluster_pki, ensure_component_kubeconfigs,
};
pub use error::{PkiError, Result};
pub use kubeconfig::{
    Cluster, ComponentKubeconfigs, Context, DEFAULT_CLUSTER_NAME, Kubeconfig, NamedCluster,
    NamedContext, NamedUser, User,
};
pub use leaf::{CertAndKey, ensure_self_signed};
pub use sa::ServiceAccountKeys;
pub use tls::{
    ALPN_PROTOCOLS, client_config, kubelet_client_config, server_config, system_client_config,
};
pub use user::{AUTHENTICATED_GROUP, UserInfo, user_from_certificate};
