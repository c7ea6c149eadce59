//! A containerd the kubelet starts and supervises itself when no runtime
//! answers on the endpoint: its own root, state, socket and config under
//! the kubelet's data dir, the CRI plugin on with the cgroupfs driver,
//! `restrict_oom_score_adj` (these machines can't lower oom_score_adj),
//! the local pause image as sandbox image, and a CNI bridge with
//! host-local addresses from the node's podCIDR.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;

use crate::cri::client::{Cri, socket_path};

/// The sandbox image; hack/images builds it as upstream names it.
pub const SANDBOX_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// Where Debian's containernetworking-plugins live.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How the kubelet reaches its runtime.
pub struct RuntimeOptions {
    /// `unix:///run/containerd/containerd.sock` by default.
    pub endpoint: String,
    /// Where a managed containerd keeps its root, state, socket and config.
    pub data_dir: PathBuf,
    /// The node's podCIDR, for the CNI config of a managed containerd.
    pub pod_cidr: String,
}

/// A containerd started by the kubelet.
pub struct Managed {
    pub endpoint: String,
    config: PathBuf,
    log: PathBuf,
}

fn which(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(binary))
            .find(|p| p.is_file())
    })
}

/// A name unique to this data dir, short enough for a Linux interface
/// (15 bytes): clusters with different data dirs get different bridges.
fn bridge_name(dir: &Path) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("rk{:08x}", h.finish() as u32)
}

fn config_toml(dir: &Path, socket: &Path, cni_conf_dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"# Written by the rkube kubelet; rewritten at every start.
version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  restrict_oom_score_adj = true
  # The stream server the kubelet proxies exec, attach and port-forward
  # to: plain HTTP on loopback only, any free port.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_tls_streaming = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni}"
"#,
        socket = socket.display(),
        cni = cni_conf_dir.display(),
    )
}

/// The CNI network: a bridge with host-local addresses from the podCIDR,
/// the node as the pods' gateway, and the loopback plugin CRI needs.
pub fn cni_conflist(name: &str, pod_cidr: &str, ipam_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": name,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir.display().to_string(),
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
}

impl Managed {
    /// Writes the config under `<data_dir>/containerd`.
    pub fn prepare(opts: &RuntimeOptions) -> anyhow::Result<Managed> {
        let dir = opts.data_dir.join("containerd");
        let cni = dir.join("cni");
        std::fs::create_dir_all(&cni).with_context(|| format!("creating {}", cni.display()))?;
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(&config, config_toml(&dir, &socket, &cni))
            .with_context(|| format!("writing {}", config.display()))?;
        let name = bridge_name(&dir);
        let conflist = cni_conflist(&name, &opts.pod_cidr, &dir.join("ipam"));
        let path = cni.join("10-rkube.conflist");
        // A bridge left with another range makes every sandbox fail
        // ("already has an IP address different from ..."): it is ours
        // (named for this data dir), so it goes.
        let previous = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if previous.is_some_and(|p| p != conflist) {
            let _ = std::process::Command::new("ip")
                .args(["link", "delete", &name])
                .output();
            let _ = std::fs::remove_dir_all(dir.join("ipam"));
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&conflist)?)?;
        Ok(Managed {
            endpoint: format!("unix://{}", socket.display()),
            config,
            log: dir.join("containerd.log"),
        })
    }

    fn spawn(&self) -> anyhow::Result<tokio::process::Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut cmd = tokio::process::Command::new("containerd");
        cmd.arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; containerd must not outlive
        // the kubelet that supervises it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        cmd.spawn().context("starting containerd")
    }

    /// Starts containerd and waits until its CRI answers.
    pub async fn start(&self) -> anyhow::Result<tokio::process::Child> {
        let mut child = self.spawn()?;
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(cri) = Cri::connect(&self.endpoint).await
                && cri.version().await.is_ok()
            {
                return Ok(child);
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "containerd exited with {status} at start; see {}",
                    self.log.display()
                );
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "containerd did not answer on {} within {:?}; see {}",
                self.endpoint,
                READY_TIMEOUT,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Restarts containerd whenever it exits, with back-off; never returns.
    pub async fn supervise(self, mut child: tokio::process::Child) {
        let mut delay = Duration::from_secs(1);
        loop {
            match child.wait().await {
                Ok(status) => tracing::error!("containerd exited with {status}; restarting"),
                Err(e) => tracing::error!("waiting for containerd: {e}; restarting"),
            }
            loop {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
                match self.start().await {
                    Ok(c) => {
                        child = c;
                        break;
                    }
                    Err(e) => tracing::error!("restarting containerd: {e:#}"),
                }
            }
        }
    }
}

/// The runtime the kubelet uses: the endpoint's if it answers, else a
/// managed containerd when the binary is installed. The returned future
/// supervises the managed one (pending forever for an external runtime).
pub async fn connect(
    opts: &RuntimeOptions,
) -> anyhow::Result<(
    Cri,
    String,
    std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
)> {
    if let Ok(cri) = Cri::connect(&opts.endpoint).await
        && cri.version().await.is_ok()
    {
        tracing::info!(endpoint = %opts.endpoint, "using the running container runtime");
        return Ok((cri, opts.endpoint.clone(), Box::pin(std::future::pending())));
    }
    if which("containerd").is_none() {
        anyhow::bail!(
            "no container runtime answers on {} and containerd is not installed: run hack/install-deps.sh \
             (or use --runtime=simulated for pods without processes)",
            opts.endpoint
        );
    }
    let managed = Managed::prepare(opts)?;
    tracing::info!(endpoint = %managed.endpoint, "starting containerd");
    let child = managed.start().await?;
    let cri = Cri::connect(&managed.endpoint).await?;
    let endpoint = managed.endpoint.clone();
    Ok((cri, endpoint, Box::pin(managed.supervise(child))))
}

/// Imports every `*.tar` OCI/Docker archive in `dir` into containerd's
/// `k8s.io` namespace (where CRI finds images) with `ctr`.
pub async fn import_archives(endpoint: &str, dir: &Path) -> anyhow::Result<usize> {
    let socket = socket_path(endpoint)?;
    let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--image-archive-dir {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .collect();
    archives.sort();
    for archive in &archives {
        let out = tokio::process::Command::new("ctr")
            .args([
                "--address",
                &socket,
                "--namespace",
                "k8s.io",
                "images",
                "import",
            ])
            .arg(archive)
            .output()
            .await
            .context("running ctr (from the containerd package) to import images")?;
        anyhow::ensure!(
            out.status.success(),
            "importing {}: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        tracing::info!(archive = %archive.display(), "image archive imported");
    }
    Ok(archives.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_what_these_machines_need() {
        let dir = Path::new("/var/lib/rkube/containerd");
        let toml = config_toml(dir, &dir.join("containerd.sock"), &dir.join("cni"));
        assert!(toml.contains("restrict_oom_score_adj = true"));
        assert!(toml.contains("SystemdCgroup = false"));
        assert!(toml.contains(r#"sandbox_image = "registry.k8s.io/pause:3.10""#));
        assert!(toml.contains(r#"address = "/var/lib/rkube/containerd/containerd.sock""#));
        let name = bridge_name(dir);
        assert!(name.len() <= 15);
        let cni = cni_conflist(&name, "10.244.0.0/24", &dir.join("ipam"));
        assert_eq!(
            cni["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.244.0.0/24"
        );
    }
}
