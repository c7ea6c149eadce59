//! Helpers for tests and benchmarks: a real etcd on free loopback ports.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a missing dependency must fail the run instead of skipping (CI).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The etcd binary: `$ETCD_BIN`, or `etcd` on the PATH.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("ETCD_BIN") {
        return Some(PathBuf::from(bin));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("etcd"))
            .find(|p| p.is_file())
    })
}

/// An etcd server running in a temporary directory, stopped on drop.
pub struct EtcdServer {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd, or returns `None` when it is not installed (outside CI;
    /// in CI a missing etcd panics, failing the run).
    pub fn start() -> Option<EtcdServer> {
        let Some(bin) = etcd_binary() else {
            assert!(
                !required(),
                "etcd is not installed: run hack/install-deps.sh (CI=true makes this a failure)"
            );
            eprintln!("etcd is not installed (hack/install-deps.sh): skipping");
            return None;
        };
        for _attempt in 0..5 {
            if let Some(server) = Self::try_start(&bin) {
                return Some(server);
            }
        }
        panic!("etcd did not start");
    }

    fn try_start(bin: &PathBuf) -> Option<EtcdServer> {
        let dir = tempfile::tempdir().ok()?;
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).ok()?;
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--name", "rkube-test"])
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("rkube-test={peer_url}")])
            .args(["--unsafe-no-fsync=false", "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .ok()?;
        let mut server = EtcdServer {
            child,
            endpoint,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                return None;
            }
            if std::net::TcpStream::connect(("127.0.0.1", client)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
