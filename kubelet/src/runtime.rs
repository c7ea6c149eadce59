//! What the pod workers need from a container runtime, and the simulated
//! runtime: pods go through the same status transitions with no
//! processes (as KWOK), so one process can host thousands of nodes.

use std::hash::{Hash, Hasher};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;

/// What became of one container once its pod was started.
#[derive(Clone, Debug, PartialEq)]
pub enum ContainerState {
    Running {
        started_at: DateTime<Utc>,
    },
    Exited {
        exit_code: i32,
        reason: String,
        /// The termination message (its file, or the log's tail).
        message: String,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
    },
    /// Not running: being created, waiting for an image or a restart.
    Waiting {
        reason: String,
        message: String,
    },
}

/// A container as the runtime reports it.
#[derive(Clone, Debug)]
pub struct ContainerRecord {
    pub name: String,
    /// `<runtime>://<id>`, as in `containerStatuses[].containerID`.
    pub container_id: String,
    pub image: String,
    pub image_id: String,
    pub state: ContainerState,
    /// The state of the container's previous run, once it restarted.
    pub last_state: Option<ContainerState>,
    /// `<runtime>://<id>` of that previous run.
    pub last_container_id: String,
    /// Readiness and startup as probes found them; None: as the state
    /// says (running is ready and started).
    pub ready: Option<bool>,
    pub started: Option<bool>,
    pub restart_count: i32,
}

/// A started pod: init containers in spec order, then containers.
#[derive(Clone, Debug, Default)]
pub struct StartedPod {
    pub init_containers: Vec<ContainerRecord>,
    pub containers: Vec<ContainerRecord>,
    /// Ephemeral containers in the order they were added.
    pub ephemeral_containers: Vec<ContainerRecord>,
    /// The sandbox's IP, for runtimes whose network plugin assigns it.
    pub pod_ip: Option<String>,
}

impl StartedPod {
    /// Every container: init, regular, then ephemeral.
    pub fn all(&self) -> impl Iterator<Item = &ContainerRecord> {
        self.init_containers
            .iter()
            .chain(&self.containers)
            .chain(&self.ephemeral_containers)
    }
}

#[async_trait]
pub trait Runtime: Send + Sync {
    /// The runtime's name, the scheme of container IDs (`containerd`).
    fn name(&self) -> &str;
    /// `nodeInfo.containerRuntimeVersion`, e.g. `containerd://1.6.20`.
    fn version(&self) -> String;
    /// Runs the pod's sandbox, its init containers in order, then its
    /// containers.
    async fn start_pod(&self, pod: &Pod) -> anyhow::Result<StartedPod>;
    /// Stops every container of the pod (within `grace` seconds) and
    /// removes its sandbox; the containers' last states when the runtime
    /// knows them.
    async fn stop_pod(&self, pod: &Pod, grace: i64) -> anyhow::Result<Option<StartedPod>>;
    /// Drops what the runtime kept for a pod after its deletion (its log
    /// files).
    fn forget_pod(&self, _pod: &Pod) {}
    /// Whether started pods need `sync_pod` calls: their containers exit
    /// and restart on their own (a real runtime).
    fn supervises(&self) -> bool {
        false
    }
    /// Brings the pod's containers one step on (next init container,
    /// restarts per restartPolicy and back-off) and reports them.
    async fn sync_pod(&self, _pod: &Pod) -> anyhow::Result<StartedPod> {
        anyhow::bail!("the {} runtime does not supervise pods", self.name())
    }
}

/// Pods "run" without processes: init containers complete at once with
/// exit code 0, sidecars and containers run until the pod is stopped.
/// Holds no per-pod state: IDs are derived from the pod's uid, so a
/// restarted kubelet reports the same ones.
#[derive(Default)]
pub struct Simulated;

fn hex_id(parts: &[&str]) -> String {
    // 64 hex digits like a containerd ID, from four seeded hashes.
    (0u8..4)
        .map(|seed| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            seed.hash(&mut h);
            parts.hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

impl Simulated {
    fn record(&self, pod: &Pod, name: &str, image: &str, state: ContainerState) -> ContainerRecord {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        ContainerRecord {
            name: name.to_owned(),
            container_id: format!("{}://{}", self.name(), hex_id(&[uid, name])),
            image: image.to_owned(),
            image_id: format!("sha256:{}", hex_id(&[image])),
            state,
            last_state: None,
            last_container_id: String::new(),
            ready: None,
            started: None,
            restart_count: 0,
        }
    }
}

#[async_trait]
impl Runtime for Simulated {
    fn name(&self) -> &str {
        "simulated"
    }

    fn version(&self) -> String {
        format!("simulated://{}", env!("CARGO_PKG_VERSION"))
    }

    async fn start_pod(&self, pod: &Pod) -> anyhow::Result<StartedPod> {
        let now = Utc::now();
        let mut out = StartedPod::default();
        let Some(spec) = &pod.spec else {
            anyhow::bail!("pod has no spec");
        };
        for c in spec.init_containers.iter().flatten() {
            let image = c.image.as_deref().unwrap_or_default();
            // Sidecars (restartPolicy Always) keep running beside the
            // containers; other init containers run to completion.
            let state = if c.restart_policy.as_deref() == Some("Always") {
                ContainerState::Running { started_at: now }
            } else {
                ContainerState::Exited {
                    exit_code: 0,
                    reason: "Completed".into(),
                    message: String::new(),
                    started_at: now,
                    finished_at: now,
                }
            };
            out.init_containers
                .push(self.record(pod, &c.name, image, state));
        }
        for c in &spec.containers {
            let image = c.image.as_deref().unwrap_or_default();
            let state = ContainerState::Running { started_at: now };
            out.containers.push(self.record(pod, &c.name, image, state));
        }
        Ok(out)
    }

    async fn stop_pod(&self, _pod: &Pod, _grace: i64) -> anyhow::Result<Option<StartedPod>> {
        Ok(None)
    }
}
