//! Starts clusters for end-to-end tests: `rkube up` on free ports in a
//! temporary directory (embedded store, or a real etcd), and drives them
//! with the stock kubectl and kube-rs.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rkube_storage::testing::{EtcdServer, free_port};

pub struct Cluster {
    child: Option<Child>,
    /// Whether the controller manager runs too (`rkube up` runs it by
    /// default; most tests want the API server alone, free of its writes).
    controllers: bool,
    /// The scheduler's /healthz and /metrics port when it runs (off
    /// unless a test asks for it).
    pub scheduler_port: Option<u16>,
    /// More `rkube up` flags.
    extra: Vec<String>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub etcd: Option<EtcdServer>,
}

pub fn rkube_binary() -> &'static str {
    env!("CARGO_BIN_EXE_rkube")
}

impl Cluster {
    /// An API server on the embedded store, without controllers.
    pub async fn up() -> Cluster {
        Self::start(tempfile::tempdir().expect("tempdir"), None, false).await
    }

    /// An API server that compacts its history every second.
    pub async fn up_compacting() -> Cluster {
        let mut c = Self::start(tempfile::tempdir().expect("tempdir"), None, false).await;
        c.extra = vec!["--etcd-compaction-interval".into(), "1s".into()];
        c.restart().await;
        c
    }

    /// An API server (without controllers) started with more `rkube up`
    /// flags, e.g. `--simulated-nodes 3`.
    pub async fn up_with_args(args: &[&str]) -> Cluster {
        let mut c = Cluster {
            child: None,
            controllers: false,
            scheduler_port: None,
            extra: args.iter().map(|a| a.to_string()).collect(),
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            etcd: None,
        };
        c.spawn();
        c.wait_ready().await;
        c
    }

    /// API server and controller manager started with more `rkube up`
    /// flags, e.g. `--node-monitor-grace-period 3s`.
    pub async fn up_with_controllers_and_args(args: &[&str]) -> Cluster {
        let mut c = Cluster {
            child: None,
            controllers: true,
            scheduler_port: None,
            extra: args.iter().map(|a| a.to_string()).collect(),
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            etcd: None,
        };
        c.spawn();
        c.wait_ready().await;
        c
    }

    /// API server and scheduler (no controllers) started with more `rkube
    /// up` flags, e.g. `--kubelet`.
    pub async fn up_with_scheduler_and_args(args: &[&str]) -> Cluster {
        let mut c = Cluster {
            child: None,
            controllers: false,
            scheduler_port: Some(free_port()),
            extra: args.iter().map(|a| a.to_string()).collect(),
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            etcd: None,
        };
        c.spawn();
        c.wait_ready().await;
        c
    }

    /// A whole `rkube up` cluster: API server and controller manager.
    pub async fn up_with_controllers() -> Cluster {
        Self::start(tempfile::tempdir().expect("tempdir"), None, true).await
    }

    /// An API server and the scheduler (no controllers).
    pub async fn up_with_scheduler() -> Cluster {
        let mut c = Self::start(tempfile::tempdir().expect("tempdir"), None, false).await;
        c.scheduler_port = Some(free_port());
        c.restart().await;
        c
    }

    /// Everything `rkube up` runs: API server, controller manager and
    /// scheduler, with more flags (e.g. `--simulated-nodes 2`).
    pub async fn up_full(args: &[&str]) -> Cluster {
        let mut c = Cluster {
            child: None,
            controllers: true,
            scheduler_port: Some(free_port()),
            extra: args.iter().map(|a| a.to_string()).collect(),
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            etcd: None,
        };
        c.spawn();
        c.wait_ready().await;
        c
    }

    /// A cluster whose API server stores in a real etcd; `None` when etcd
    /// is not installed (outside CI).
    pub async fn up_on_etcd() -> Option<Cluster> {
        let etcd = EtcdServer::start()?;
        Some(Self::start(tempfile::tempdir().expect("tempdir"), Some(etcd), false).await)
    }

    async fn start(dir: tempfile::TempDir, etcd: Option<EtcdServer>, controllers: bool) -> Cluster {
        let port = free_port();
        let mut cluster = Cluster {
            child: None,
            controllers,
            scheduler_port: None,
            extra: Vec::new(),
            dir,
            port,
            etcd,
        };
        cluster.spawn();
        cluster.wait_ready().await;
        cluster
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(rkube_binary());
        cmd.arg("up")
            .arg("--data-dir")
            .arg(self.dir.path())
            .args([
                "--secure-port",
                &self.port.to_string(),
                "--bind-address",
                "127.0.0.1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join("rkube.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            );
        if let Some(etcd) = &self.etcd {
            cmd.args(["--etcd-servers", &etcd.endpoint]);
        }
        if !self.controllers {
            cmd.arg("--no-controllers");
        } else if !self
            .extra
            .iter()
            .any(|a| a == "--controller-manager-secure-port")
        {
            // Not the fixed default port: tests run in parallel.
            cmd.args(["--controller-manager-secure-port", &free_port().to_string()]);
        }
        if self.extra.iter().any(|a| a == "--kubelet")
            && !self.extra.iter().any(|a| a == "--kubelet-port")
        {
            // Not the fixed 10250: tests run in parallel.
            cmd.args(["--kubelet-port", &free_port().to_string()]);
        }
        if self.extra.iter().any(|a| a == "--kubelet")
            && !self.extra.iter().any(|a| a == "--kubelet-healthz-port")
        {
            // Nor 10248.
            cmd.args(["--kubelet-healthz-port", &free_port().to_string()]);
        }
        if let Some(port) = self.scheduler_port {
            cmd.args(["--scheduler-secure-port", &port.to_string()]);
        } else {
            cmd.arg("--no-scheduler");
        }
        cmd.args(&self.extra);
        self.child = Some(cmd.spawn().expect("start rkube up"));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rkube.log")).unwrap_or_default()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.conf")
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut retries = 3;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                // A free port picked for it can be taken (e.g. as another
                // test's outgoing port) before it binds: try other ports.
                if retries > 0 && self.log().contains("Address already in use") {
                    retries -= 1;
                    self.port = free_port();
                    if self.scheduler_port.is_some() {
                        self.scheduler_port = Some(free_port());
                    }
                    self.spawn();
                    continue;
                }
                panic!("rkube up exited with {status}:\n{}", self.log());
            }
            if self.kubeconfig().exists()
                && let Ok(client) = self.try_client().await
                && client.apiserver_version().await.is_ok()
                && kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
                    .get("default")
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rkube up not ready in 30s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn try_client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig())?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    pub async fn client(&self) -> kube::Client {
        self.try_client().await.expect("kube client")
    }

    /// Runs the stock kubectl against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_input(args, None)
    }

    pub fn kubectl_with_input(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl is installed");
        if let (Some(mut input), Some(text)) = (child.stdin.take(), stdin) {
            let _ = input.write_all(text.as_bytes());
        }
        child.wait_with_output().expect("kubectl ran")
    }

    /// kubectl that must succeed; returns its stdout.
    pub fn kubectl_ok_with_input(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_with_input(args, Some(stdin));
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the process (SIGKILL) and starts it again on the same data.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready().await;
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        // A failing test shows what the cluster said (the directory goes
        // away with it).
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("--- rkube.log (last {} lines) ---", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
