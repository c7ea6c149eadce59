//! kubeconfig files as kubeadm writes them: credentials embedded as base64
//! PEM, one cluster/user/context, context named `<user>@<cluster>`.
//!
//! Files are regenerated on every call (so a changed server URL takes
//! effect) but the embedded client certificate is reused while it still
//! fits (same CN and groups, our CA, not expired); unchanged content is not
//! rewritten, so a restart leaves the file byte-for-byte alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::ca::CertificateAuthority;
use crate::error::{PkiError, Result};
use crate::files::{self, PRIVATE_MODE};
use crate::leaf::{self, CertAndKey, LeafSpec, Verdict};

/// kubeadm's cluster name.
pub const DEFAULT_CLUSTER_NAME: &str = "kubernetes";

/// `apiVersion: v1, kind: Config`, the subset kubeadm writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    #[serde(rename = "current-context", default)]
    pub current_context: String,
    #[serde(default)]
    pub preferences: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub users: Vec<NamedUser>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: Cluster,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    #[serde(rename = "certificate-authority-data")]
    pub certificate_authority_data: String,
    pub server: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedContext {
    pub name: String,
    pub context: Context,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub cluster: String,
    pub user: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedUser {
    pub name: String,
    pub user: User,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct User {
    #[serde(
        rename = "client-certificate-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate_data: Option<String>,
    #[serde(
        rename = "client-key-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_key_data: Option<String>,
}

impl Kubeconfig {
    /// A kubeconfig for `user` (the CN) on `cluster_name`, kubeadm style.
    pub fn new(
        ca_pem: &str,
        server_url: &str,
        cluster_name: &str,
        user: &str,
        client: &CertAndKey,
    ) -> Self {
        let context = format!("{user}@{cluster_name}");
        Kubeconfig {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: cluster_name.into(),
                cluster: Cluster {
                    certificate_authority_data: B64.encode(ca_pem),
                    server: server_url.into(),
                },
            }],
            contexts: vec![NamedContext {
                name: context.clone(),
                context: Context {
                    cluster: cluster_name.into(),
                    user: user.into(),
                },
            }],
            current_context: context,
            preferences: BTreeMap::new(),
            users: vec![NamedUser {
                name: user.into(),
                user: User {
                    client_certificate_data: Some(B64.encode(&client.cert_pem)),
                    client_key_data: Some(B64.encode(&client.key_pem)),
                },
            }],
        }
    }

    /// Parses kubeconfig YAML; `what` names the source in errors.
    pub fn from_yaml(yaml: &str, what: &str) -> Result<Self> {
        serde_yaml::from_str(yaml).map_err(|source| PkiError::Kubeconfig {
            what: what.into(),
            source,
        })
    }

    /// Serializes to YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self).map_err(|source| PkiError::Kubeconfig {
            what: "kubeconfig".into(),
            source,
        })
    }

    /// The embedded credentials of the user named `user`, if any.
    pub fn client_credentials(&self, user: &str) -> Option<CertAndKey> {
        let u = &self.users.iter().find(|u| u.name == user)?.user;
        let decode =
            |s: &Option<String>| String::from_utf8(B64.decode(s.as_deref()?.trim()).ok()?).ok();
        Some(CertAndKey {
            cert_pem: decode(&u.client_certificate_data)?,
            key_pem: decode(&u.client_key_data)?,
        })
    }
}

/// Writes a kubeconfig for CN `user` / O `groups` to `path` (mode 0600).
pub(crate) fn write(
    ca: &CertificateAuthority,
    path: &Path,
    server_url: &str,
    user: &str,
    groups: &[&str],
    cluster_name: &str,
) -> Result<()> {
    let what = path.display().to_string();
    let spec = LeafSpec::client(user, groups);
    let existing = files::read_optional(path)?;
    let reusable = existing
        .as_deref()
        .and_then(|yaml| Kubeconfig::from_yaml(yaml, &what).ok())
        .and_then(|kc| kc.client_credentials(user))
        .filter(|pair| {
            matches!(
                leaf::inspect(ca, pair, &spec, &what, &what),
                Ok(Verdict::Fits)
            )
        });
    let client = match reusable {
        Some(pair) => pair,
        None => leaf::issue(ca, &spec, &what)?,
    };
    let yaml = Kubeconfig::new(ca.cert_pem(), server_url, cluster_name, user, &client).to_yaml()?;
    if existing.as_deref() != Some(yaml.as_str()) {
        files::write_atomic(path, yaml.as_bytes(), PRIVATE_MODE)?;
    }
    Ok(())
}

/// The control-plane kubeconfigs kubeadm writes next to `pki/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentKubeconfigs {
    /// `admin.conf`: CN=kubernetes-admin, O=system:masters.
    pub admin: PathBuf,
    /// `controller-manager.conf`: CN=system:kube-controller-manager.
    pub controller_manager: PathBuf,
    /// `scheduler.conf`: CN=system:kube-scheduler.
    pub scheduler: PathBuf,
}

/// (file, CN, O) of each component kubeconfig. admin.conf uses
/// system:masters (kubeadm's pre-1.29 layout and today's super-admin.conf),
/// which needs no RBAC binding to exist.
const COMPONENTS: [(&str, &str, &[&str]); 3] = [
    ("admin.conf", "kubernetes-admin", &["system:masters"]),
    (
        "controller-manager.conf",
        "system:kube-controller-manager",
        &[],
    ),
    ("scheduler.conf", "system:kube-scheduler", &[]),
];

pub(crate) fn ensure_components(
    ca: &CertificateAuthority,
    dir: &Path,
    server_url: &str,
) -> Result<ComponentKubeconfigs> {
    for (file, cn, groups) in COMPONENTS {
        write(
            ca,
            &dir.join(file),
            server_url,
            cn,
            groups,
            DEFAULT_CLUSTER_NAME,
        )?;
    }
    Ok(ComponentKubeconfigs {
        admin: dir.join(COMPONENTS[0].0),
        controller_manager: dir.join(COMPONENTS[1].0),
        scheduler: dir.join(COMPONENTS[2].0),
    })
}
