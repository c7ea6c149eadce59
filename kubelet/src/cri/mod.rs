//! The CRI runtime: pods as sandboxes and containers of a CRI runtime
//! (containerd) over its unix socket. The pod workers call `start_pod`
//! once, then `sync_pod` every period: it starts init containers one at
//! a time in spec order, then the containers, and restarts exited ones
//! per restartPolicy with upstream's CrashLoopBackOff back-off (10 s
//! doubling to 5 min). Logs go where upstream puts them:
//! `/var/log/pods/<ns>_<name>_<uid>/<container>/<restart>.log`.

pub mod atomic;
pub mod client;
pub mod dns;
pub mod env;
pub mod hooks;
pub mod hosts;
pub mod logrotate;
pub mod probes;
pub mod termination;
pub mod tokens;
pub mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::runtime::{ContainerRecord, ContainerState, Runtime, StartedPod};
pub use client::Cri;

/// Upstream's container restart back-off: 10 s, doubling, at most 5 min.
const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often configMap, secret, downwardAPI and projected volumes are
/// compared with their sources (upstream: each pod sync, through a cache
/// with a one-minute TTL).
const VOLUME_SYNC_PERIOD: Duration = Duration::from_secs(10);
/// Where upstream's kubelet keeps container logs.
pub const POD_LOGS_ROOT: &str = "/var/log/pods";

/// One container of the pod (init or regular) and what became of it.
struct Slot {
    name: String,
    sidecar: bool,
    /// The current container's ID (an exited one stays until restarted).
    id: Option<String>,
    image: String,
    image_id: String,
    state: ContainerState,
    last_state: Option<ContainerState>,
    last_id: Option<String>,
    restart_count: i32,
    /// Crash back-off: the wait before the next restart once set.
    backoff: Option<Duration>,
    /// Image pull back-off: no new pull before this time.
    pull_retry_at: Option<DateTime<Utc>>,
    pull_backoff: Duration,
    /// Probe tallies of the current run.
    startup: probes::Tally,
    liveness: probes::Tally,
    readiness: probes::Tally,
    has_startup: bool,
    has_readiness: bool,
    /// Where the current run's termination message is read from.
    termination: Option<termination::Source>,
}

impl Slot {
    /// A slot not run yet: waiting, as upstream says, PodInitializing in
    /// a pod with init containers, else ContainerCreating.
    fn new(c: &Container, sidecar: bool, pod_has_init: bool) -> Slot {
        Slot {
            name: c.name.clone(),
            sidecar,
            id: None,
            image: c.image.clone().unwrap_or_default(),
            image_id: String::new(),
            state: ContainerState::Waiting {
                reason: if pod_has_init {
                    "PodInitializing"
                } else {
                    "ContainerCreating"
                }
                .into(),
                message: String::new(),
            },
            last_state: None,
            last_id: None,
            restart_count: 0,
            backoff: None,
            pull_retry_at: None,
            pull_backoff: BACKOFF_INITIAL,
            startup: Default::default(),
            liveness: Default::default(),
            readiness: Default::default(),
            has_startup: c.startup_probe.is_some(),
            has_readiness: c.readiness_probe.is_some(),
            termination: None,
        }
    }

    fn record(&self) -> ContainerRecord {
        let id = |id: &Option<String>| {
            id.as_ref()
                .map(|id| format!("containerd://{id}"))
                .unwrap_or_default()
        };
        ContainerRecord {
            name: self.name.clone(),
            container_id: id(&self.id),
            last_container_id: id(&self.last_id),
            ready: self
                .has_readiness
                .then_some(self.readiness.result == Some(true) && self.startup_passed()),
            started: self.has_startup.then_some(self.startup_passed()),
            image: self.image.clone(),
            image_id: self.image_id.clone(),
            state: self.state.clone(),
            last_state: self.last_state.clone(),
            restart_count: self.restart_count,
        }
    }

    fn startup_passed(&self) -> bool {
        !self.has_startup || self.startup.result == Some(true)
    }

    fn running(&self) -> bool {
        matches!(self.state, ContainerState::Running { .. })
    }

    fn exited(&self) -> Option<(i32, DateTime<Utc>)> {
        match &self.state {
            ContainerState::Exited {
                exit_code,
                finished_at,
                ..
            } => Some((*exit_code, *finished_at)),
            // Waiting out a crash back-off: the exit is the last state.
            ContainerState::Waiting { .. } if self.id.is_some() => match &self.last_state {
                Some(ContainerState::Exited {
                    exit_code,
                    finished_at,
                    ..
                }) => Some((*exit_code, *finished_at)),
                _ => None,
            },
            _ => None,
        }
    }
}

struct PodState {
    sandbox_id: String,
    sandbox_config: cri::PodSandboxConfig,
    pod_ip: Option<String>,
    volumes: Vec<volumes::Prepared>,
    init: Vec<Slot>,
    containers: Vec<Slot>,
    /// Ephemeral containers, in the order they were added; never
    /// restarted.
    ephemeral: Vec<Slot>,
    /// Set by `stop_pod`: nothing starts any more.
    stopped: bool,
    /// When the API-backed volumes were last compared with their sources.
    volumes_synced: std::time::Instant,
}

impl PodState {
    fn started(&self) -> StartedPod {
        StartedPod {
            init_containers: self.init.iter().map(Slot::record).collect(),
            containers: self.containers.iter().map(Slot::record).collect(),
            ephemeral_containers: self.ephemeral.iter().map(Slot::record).collect(),
            pod_ip: self.pod_ip.clone(),
        }
    }
}

/// What the kubelet server reads of a pod this runtime runs.
#[derive(Clone, Debug)]
pub struct PodView {
    /// The pod as last synced.
    pub pod: Pod,
    pub sandbox_id: String,
    pub status: StartedPod,
}

pub struct CriRuntime {
    cri: Cri,
    /// The pods by uid, published after each sync: the server reads them
    /// without waiting for a sync in progress.
    views: Mutex<HashMap<String, PodView>>,
    /// Each container's log file, by container ID.
    log_paths: Mutex<HashMap<String, PathBuf>>,
    client: kube::Client,
    version: String,
    host_ip: String,
    /// The kubelet's --root-dir: pod volumes live under `pods/<uid>`.
    root_dir: PathBuf,
    dns: dns::Settings,
    pods: Mutex<HashMap<String, Arc<tokio::sync::Mutex<PodState>>>>,
}

/// The container's named ports, for probes and hooks that name one.
/// Slots of the spec's init containers (sidecars marked) and containers,
/// none run yet.
fn new_slots(spec: &k8s_openapi::api::core::v1::PodSpec) -> (Vec<Slot>, Vec<Slot>) {
    let has_init = spec.init_containers.as_ref().is_some_and(|i| !i.is_empty());
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| Slot::new(c, c.restart_policy.as_deref() == Some("Always"), has_init))
        .collect();
    let containers = spec
        .containers
        .iter()
        .map(|c| Slot::new(c, false, has_init))
        .collect();
    (init, containers)
}

/// The pod's ephemeral containers as containers (the same fields, less
/// the ones they may not set), in spec order.
fn ephemeral_specs(pod: &Pod) -> Vec<Container> {
    pod.spec
        .iter()
        .flat_map(|s| s.ephemeral_containers.iter().flatten())
        .filter_map(|e| serde_json::to_value(e).ok())
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

fn named_ports(c: &Container) -> Vec<(String, i32)> {
    c.ports
        .iter()
        .flatten()
        .filter_map(|p| Some((p.name.clone()?, p.container_port)))
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn from_nanos(n: i64) -> DateTime<Utc> {
    if n <= 0 {
        return Utc::now();
    }
    Utc.timestamp_nanos(n)
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// The directory of the pod's logs, as upstream names it.
pub fn pod_log_dir(pod: &Pod) -> PathBuf {
    PathBuf::from(POD_LOGS_ROOT).join(format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or(""),
        uid(pod)
    ))
}

fn labels(pod: &Pod) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    l.insert(
        "io.kubernetes.pod.name".into(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(
        "io.kubernetes.pod.namespace".into(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    l.insert("io.kubernetes.pod.uid".into(), uid(pod));
    l
}

fn sandbox_config(pod: &Pod, dns: &dns::Settings) -> cri::PodSandboxConfig {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let host_pid = spec.and_then(|s| s.host_pid).unwrap_or(false);
    let host_ipc = spec.and_then(|s| s.host_ipc).unwrap_or(false);
    let mode = |host: bool| {
        if host {
            cri::NamespaceMode::Node as i32
        } else {
            cri::NamespaceMode::Pod as i32
        }
    };
    let hostname = hosts::hostname(pod);
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: uid(pod),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            attempt: 0,
        }),
        hostname: if host_network {
            String::new()
        } else {
            hostname
        },
        log_directory: pod_log_dir(pod).display().to_string(),
        dns_config: Some(dns::config(pod, dns)),
        labels: labels(pod),
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: "/kubepods".into(),
            sysctls: spec
                .and_then(|s| s.security_context.as_ref()?.sysctls.as_ref())
                .into_iter()
                .flatten()
                .map(|s| (s.name.replace('/', "."), s.value.clone()))
                .collect(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: mode(host_network),
                    pid: if host_pid {
                        cri::NamespaceMode::Node as i32
                    } else {
                        cri::NamespaceMode::Container as i32
                    },
                    ipc: mode(host_ipc),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Upstream's Linux resources from requests and limits (cgroup v1:
/// shares from the cpu request, CFS quota from the cpu limit).
fn resources(c: &Container) -> cri::LinuxContainerResources {
    use rkube_scheduler::quantity::{milli_value, value};
    let res = c.resources.as_ref();
    let get = |m: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
               k: &str| m.and_then(|m| m.get(k)).map(|q| q.0.clone());
    let limits = res.and_then(|r| r.limits.as_ref());
    let requests = res.and_then(|r| r.requests.as_ref());
    let cpu_request = get(requests, "cpu")
        .or_else(|| get(limits, "cpu"))
        .and_then(|q| milli_value(&q));
    let mut out = cri::LinuxContainerResources {
        cpu_shares: cpu_request.map(|m| (m * 1024 / 1000).max(2)).unwrap_or(2),
        ..Default::default()
    };
    if let Some(m) = get(limits, "cpu").and_then(|q| milli_value(&q)) {
        out.cpu_period = 100_000;
        out.cpu_quota = (m * 100_000 / 1000).max(1000);
    }
    if let Some(b) = get(limits, "memory").and_then(|q| value(&q)) {
        out.memory_limit_in_bytes = b;
    }
    out
}

impl CriRuntime {
    pub async fn new(
        cri: Cri,
        client: kube::Client,
        host_ip: String,
        root_dir: PathBuf,
        dns: dns::Settings,
    ) -> anyhow::Result<CriRuntime> {
        let version = cri.version().await?;
        Ok(CriRuntime {
            cri,
            client,
            version,
            host_ip,
            root_dir,
            dns,
            pods: Mutex::new(HashMap::new()),
            views: Mutex::new(HashMap::new()),
            log_paths: Mutex::new(HashMap::new()),
        })
    }

    pub fn cri(&self) -> &Cri {
        &self.cri
    }

    /// The pods this runtime runs (or ran, until they are deleted).
    pub fn pods(&self) -> Vec<PodView> {
        lock(&self.views).values().cloned().collect()
    }

    pub fn find_pod(&self, namespace: &str, name: &str) -> Option<PodView> {
        lock(&self.views)
            .values()
            .find(|v| {
                v.pod.metadata.namespace.as_deref() == Some(namespace)
                    && v.pod.metadata.name.as_deref() == Some(name)
            })
            .cloned()
    }

    /// The log file of a container this kubelet created.
    pub fn log_path(&self, container_id: &str) -> Option<PathBuf> {
        lock(&self.log_paths).get(container_id).cloned()
    }

    /// Rotates the logs of running containers per `policy`, every
    /// `MONITOR_INTERVAL`, for ever.
    pub async fn rotate_logs(&self, policy: logrotate::Policy) {
        loop {
            tokio::time::sleep(logrotate::MONITOR_INTERVAL).await;
            let running: Vec<(String, PathBuf)> = {
                let views = lock(&self.views);
                let paths = lock(&self.log_paths);
                views
                    .values()
                    .flat_map(|v| v.status.all())
                    .filter(|r| matches!(r.state, ContainerState::Running { .. }))
                    .filter_map(|r| {
                        let id = r.container_id.rsplit("://").next()?.to_owned();
                        let path = paths.get(&id)?.clone();
                        Some((id, path))
                    })
                    .collect()
            };
            for (id, path) in running {
                match logrotate::rotate_if_needed(&path, &policy) {
                    Ok(false) => {}
                    Ok(true) => {
                        let mut rt = self.rt();
                        let reopen = rt.reopen_container_log(cri::ReopenContainerLogRequest {
                            container_id: id.clone(),
                        });
                        match tokio::time::timeout(Duration::from_secs(10), reopen).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => {
                                tracing::warn!(container = %id, "reopening the container log: {e}")
                            }
                            Err(_) => {
                                tracing::warn!(container = %id, "reopening the container log: timed out")
                            }
                        }
                    }
                    Err(e) => tracing::warn!(log = %path.display(), "rotating: {e}"),
                }
            }
        }
    }

    fn publish(&self, pod: &Pod, state: &PodState) {
        let view = PodView {
            pod: pod.clone(),
            sandbox_id: state.sandbox_id.clone(),
            status: state.started(),
        };
        lock(&self.views).insert(uid(pod), view);
    }

    fn rt(
        &self,
    ) -> k8s_cri::v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel> {
        self.cri.runtime.clone()
    }

    /// The CRI runtime handler of the pod's RuntimeClass ("" for the
    /// runtime's default).
    async fn runtime_handler(&self, pod: &Pod) -> anyhow::Result<String> {
        let Some(name) = pod
            .spec
            .as_ref()
            .and_then(|s| s.runtime_class_name.as_deref())
        else {
            return Ok(String::new());
        };
        let classes: kube::Api<k8s_openapi::api::node::v1::RuntimeClass> =
            kube::Api::all(self.client.clone());
        match classes.get_opt(name).await? {
            Some(rc) => Ok(rc.handler),
            None => anyhow::bail!("RuntimeClass \"{name}\" not found"),
        }
    }

    /// Takes over the running sandbox an earlier kubelet left for this pod
    /// (as upstream's kubelet does after a restart): its containers keep
    /// running, each slot picks up its newest container and restart count.
    /// None when there is nothing to take over.
    async fn adopt(
        &self,
        pod: &Pod,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) -> Option<PodState> {
        let uid = uid(pod);
        let ready = cri::PodSandboxStateValue {
            state: cri::PodSandboxState::SandboxReady as i32,
        };
        let sandboxes = self
            .rt()
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(cri::PodSandboxFilter {
                    label_selector: [("io.kubernetes.pod.uid".to_owned(), uid.clone())].into(),
                    state: Some(ready),
                    ..Default::default()
                }),
            })
            .await
            .ok()?
            .into_inner()
            .items;
        let sandbox = sandboxes.into_iter().max_by_key(|s| s.created_at)?;
        let listed = self
            .rt()
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    pod_sandbox_id: sandbox.id.clone(),
                    ..Default::default()
                }),
            })
            .await
            .ok()?
            .into_inner()
            .containers;
        let prepared = match volumes::prepare(&self.root_dir, &self.client, pod).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(pod = %uid, "taking over the pod's volumes: {e:#}");
                return None;
            }
        };
        let pod_ip = if spec.host_network.unwrap_or(false) {
            Some(self.host_ip.clone())
        } else {
            self.rt()
                .pod_sandbox_status(cri::PodSandboxStatusRequest {
                    pod_sandbox_id: sandbox.id.clone(),
                    verbose: false,
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().status)
                .and_then(|s| s.network)
                .map(|n| n.ip)
                .filter(|ip| !ip.is_empty())
        };
        let (mut init, mut containers) = new_slots(spec);
        let mut ephemeral: Vec<Slot> = ephemeral_specs(pod)
            .iter()
            .map(|c| Slot::new(c, false, false))
            .collect();
        for slot in init
            .iter_mut()
            .chain(containers.iter_mut())
            .chain(ephemeral.iter_mut())
        {
            let newest = listed
                .iter()
                .filter(|c| c.metadata.as_ref().is_some_and(|m| m.name == slot.name))
                .max_by_key(|c| c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0));
            if let Some(c) = newest {
                slot.id = Some(c.id.clone());
                slot.restart_count = c
                    .metadata
                    .as_ref()
                    .and_then(|m| i32::try_from(m.attempt).ok())
                    .unwrap_or(0);
                self.refresh(slot).await;
            }
        }
        // Ephemeral containers that never ran are run by the next sync.
        ephemeral.retain(|s| s.id.is_some());
        tracing::info!(pod = %uid, sandbox = %sandbox.id, "took over a running pod");
        Some(PodState {
            sandbox_id: sandbox.id,
            sandbox_config: sandbox_config(pod, &self.dns),
            pod_ip,
            volumes: prepared,
            init,
            containers,
            ephemeral,
            stopped: false,
            volumes_synced: std::time::Instant::now(),
        })
    }

    /// Removes sandboxes of this pod left by an earlier kubelet.
    async fn remove_stale(&self, uid: &str) -> anyhow::Result<()> {
        let list = self
            .rt()
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(cri::PodSandboxFilter {
                    label_selector: [("io.kubernetes.pod.uid".to_owned(), uid.to_owned())].into(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        for sb in list.items {
            self.remove_sandbox(&sb.id).await;
        }
        Ok(())
    }

    async fn remove_sandbox(&self, id: &str) {
        let mut rt = self.rt();
        if let Err(e) = rt
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.to_owned(),
            })
            .await
        {
            tracing::warn!(sandbox = id, "stopping the pod sandbox: {}", e.message());
        }
        if let Err(e) = rt
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: id.to_owned(),
            })
            .await
        {
            tracing::warn!(sandbox = id, "removing the pod sandbox: {}", e.message());
        }
    }

    /// The image's ID, pulling it as imagePullPolicy says; Err is the
    /// container's waiting reason and message.
    async fn ensure_image(
        &self,
        c: &Container,
        sandbox: &cri::PodSandboxConfig,
    ) -> Result<String, (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            // The API server defaults it; this is upstream's rule.
            let tag = image.rsplit('/').next().unwrap_or("");
            if image.contains('@') || (tag.contains(':') && !tag.ends_with(":latest")) {
                "IfNotPresent".into()
            } else {
                "Always".into()
            }
        });
        let spec = cri::ImageSpec {
            image: image.clone(),
            ..Default::default()
        };
        let mut images = self.cri.images.clone();
        let present = images
            .image_status(cri::ImageStatusRequest {
                image: Some(spec.clone()),
                verbose: false,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().image)
            .map(|i| i.id);
        match (policy.as_str(), present) {
            ("Never", Some(id)) | ("IfNotPresent", Some(id)) => return Ok(id),
            ("Never", None) => {
                return Err((
                    "ErrImageNeverPull".into(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                ));
            }
            _ => {}
        }
        match images
            .pull_image(cri::PullImageRequest {
                image: Some(spec),
                auth: None,
                sandbox_config: Some(sandbox.clone()),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().image_ref),
            Err(e) => Err((
                "ErrImagePull".into(),
                format!(
                    "failed to pull and unpack image \"{image}\": {}",
                    e.message()
                ),
            )),
        }
    }

    async fn container_config(
        &self,
        pod: &Pod,
        c: &Container,
        image_id: &str,
        attempt: u32,
        state: &PodState,
    ) -> anyhow::Result<cri::ContainerConfig> {
        let pod_ip = state.pod_ip.as_deref().unwrap_or("");
        let services = env::service_env(&self.client, pod).await?;
        let env = env::container_env(&self.client, pod, c, pod_ip, &self.host_ip, services).await?;
        let vars: HashMap<String, String> = env.iter().cloned().collect();
        let mut mounts = volumes::mounts(&state.volumes, c.volume_mounts.as_ref(), &vars)?;
        if !mounts.iter().any(|m| m.container_path == "/etc/hosts")
            && let Some(hosts) = hosts::ensure(
                &volumes::pod_dir(&self.root_dir, pod),
                pod,
                pod_ip,
                &self.dns.cluster_domain,
            )?
        {
            mounts.push(cri::Mount {
                container_path: "/etc/hosts".into(),
                host_path: hosts.display().to_string(),
                ..Default::default()
            });
        }
        let expand = |list: &Option<Vec<String>>| -> Vec<String> {
            list.iter()
                .flatten()
                .map(|s| env::expand(s, &vars))
                .collect()
        };
        let spec = pod.spec.as_ref();
        let share_pid = spec
            .and_then(|s| s.share_process_namespace)
            .unwrap_or(false);
        let host_pid = spec.and_then(|s| s.host_pid).unwrap_or(false);
        let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
        let sc = c.security_context.as_ref();
        let pod_sc = spec.and_then(|s| s.security_context.as_ref());
        let run_as_user = sc
            .and_then(|s| s.run_as_user)
            .or_else(|| pod_sc.and_then(|s| s.run_as_user));
        let run_as_group = sc
            .and_then(|s| s.run_as_group)
            .or_else(|| pod_sc.and_then(|s| s.run_as_group));
        // An ephemeral container's target: it joins that container's
        // process namespace, as upstream.
        let target_id = spec
            .into_iter()
            .flat_map(|s| s.ephemeral_containers.iter().flatten())
            .find(|e| e.name == c.name)
            .and_then(|e| e.target_container_name.as_deref())
            .and_then(|t| {
                state
                    .containers
                    .iter()
                    .chain(&state.init)
                    .find(|s| s.name == t)
            })
            .and_then(|s| s.id.clone());
        let mut labels = labels(pod);
        labels.retain(|k, _| k.starts_with("io.kubernetes."));
        labels.insert("io.kubernetes.container.name".into(), c.name.clone());
        Ok(cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: c.name.clone(),
                attempt,
            }),
            image: Some(cri::ImageSpec {
                image: image_id.to_owned(),
                user_specified_image: c.image.clone().unwrap_or_default(),
                ..Default::default()
            }),
            command: expand(&c.command),
            args: expand(&c.args),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            envs: env
                .into_iter()
                .map(|(key, value)| cri::KeyValue { key, value })
                .collect(),
            mounts,
            labels,
            annotations: [(
                "io.kubernetes.container.restartCount".to_owned(),
                attempt.to_string(),
            )]
            .into(),
            log_path: format!("{}/{attempt}.log", c.name),
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            tty: c.tty.unwrap_or(false),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(resources(c)),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    privileged: sc.and_then(|s| s.privileged).unwrap_or(false),
                    run_as_user: run_as_user.map(|value| cri::Int64Value { value }),
                    run_as_group: run_as_group.map(|value| cri::Int64Value { value }),
                    readonly_rootfs: sc
                        .and_then(|s| s.read_only_root_filesystem)
                        .unwrap_or(false),
                    // Upstream sets no_new_privs only when asked to.
                    no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
                    supplemental_groups: pod_sc
                        .and_then(|s| s.supplemental_groups.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .chain(pod_sc.and_then(|s| s.fs_group))
                        .collect(),
                    namespace_options: Some(cri::NamespaceOption {
                        network: if host_network {
                            cri::NamespaceMode::Node as i32
                        } else {
                            cri::NamespaceMode::Pod as i32
                        },
                        pid: if host_pid {
                            cri::NamespaceMode::Node as i32
                        } else if share_pid {
                            cri::NamespaceMode::Pod as i32
                        } else if target_id.is_some() {
                            cri::NamespaceMode::Target as i32
                        } else {
                            cri::NamespaceMode::Container as i32
                        },
                        ipc: cri::NamespaceMode::Pod as i32,
                        target_id: target_id.unwrap_or_default(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        })
    }

    /// Pulls, creates and starts the slot's container (after removing the
    /// exited one it replaces).
    async fn run_container(&self, pod: &Pod, c: &Container, state: &PodState, slot: &mut Slot) {
        let now = Utc::now();
        if slot.pull_retry_at.is_some_and(|t| t > now) {
            return;
        }
        let image_id = match self.ensure_image(c, &state.sandbox_config).await {
            Ok(id) => {
                slot.pull_retry_at = None;
                slot.pull_backoff = BACKOFF_INITIAL;
                id
            }
            Err((reason, message)) => {
                let wait = slot.pull_backoff;
                slot.pull_retry_at =
                    Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
                slot.pull_backoff = (wait * 2).min(BACKOFF_MAX);
                // The first failure says why; later ones that it waits.
                let (reason, message) = match &slot.state {
                    ContainerState::Waiting { reason: r, .. }
                        if r == "ErrImagePull" || r == "ImagePullBackOff" =>
                    {
                        (
                            "ImagePullBackOff".to_owned(),
                            format!("Back-off pulling image \"{}\"", slot.image),
                        )
                    }
                    _ => (reason, message),
                };
                slot.state = ContainerState::Waiting { reason, message };
                return;
            }
        };
        let mut rt = self.rt();
        if let Some(old) = slot.id.take() {
            let _ = rt
                .remove_container(cri::RemoveContainerRequest { container_id: old })
                .await;
        }
        let attempt = if slot.last_state.is_some() || slot.restart_count > 0 {
            slot.restart_count as u32
        } else {
            0
        };
        let dir = pod_log_dir(pod).join(&c.name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!("creating {}: {e}", dir.display());
        }
        let config = match self
            .container_config(pod, c, &image_id, attempt, state)
            .await
            .and_then(|mut config| {
                slot.termination =
                    termination::Source::prepare(&self.root_dir, pod, c, attempt, &mut config)?;
                Ok(config)
            }) {
            Ok(c) => c,
            Err(e) => {
                slot.state = ContainerState::Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: format!("{e:#}"),
                };
                return;
            }
        };
        let created = rt
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: state.sandbox_id.clone(),
                config: Some(config),
                sandbox_config: Some(state.sandbox_config.clone()),
            })
            .await;
        let id = match created {
            Ok(r) => r.into_inner().container_id,
            Err(e) => {
                slot.state = ContainerState::Waiting {
                    reason: "CreateContainerError".into(),
                    message: e.message().to_owned(),
                };
                return;
            }
        };
        lock(&self.log_paths).insert(id.clone(), dir.join(format!("{attempt}.log")));
        slot.id = Some(id.clone());
        slot.image_id = image_id;
        if let Err(e) = rt
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            slot.state = ContainerState::Exited {
                exit_code: 128,
                reason: "StartError".into(),
                message: e.message().to_owned(),
                started_at: now,
                finished_at: Utc::now(),
            };
            tracing::warn!(container = %c.name, "starting the container: {}", e.message());
            return;
        }
        slot.state = ContainerState::Running { started_at: now };
        slot.startup = Default::default();
        slot.liveness = Default::default();
        slot.readiness = Default::default();
        if let Some(post_start) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let pod_ip = state.pod_ip.as_deref().unwrap_or("");
            if let Err(e) = hooks::run(&self.cri, post_start, &id, pod_ip, &named_ports(c)).await {
                // Upstream kills the container; its restart policy decides.
                tracing::warn!(
                    pod = pod.metadata.name.as_deref().unwrap_or(""),
                    container = %c.name,
                    "FailedPostStartHook: {e}"
                );
                let grace = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30);
                self.kill(c, &id, pod_ip, grace).await;
            }
        }
        self.refresh(slot).await;
    }

    /// Runs the container's due probes; a failed startup or liveness
    /// probe kills it (the restart policy then applies).
    async fn probe(&self, pod: &Pod, c: &Container, state: &PodState, slot: &mut Slot) {
        let ContainerState::Running { started_at } = slot.state else {
            return;
        };
        let Some(id) = slot.id.clone() else { return };
        let pod_ip = state.pod_ip.clone().unwrap_or_default();
        let ports = named_ports(c);
        let now = Utc::now();
        let mut kill = None;
        if let Some(p) = &c.startup_probe
            && slot.startup.result != Some(true)
        {
            if probes::due(p, &slot.startup, started_at, now) {
                let ok = probes::run(&self.cri, p, &id, &pod_ip, &ports).await;
                probes::record(p, &mut slot.startup, ok, now);
                if slot.startup.result == Some(false) {
                    kill = Some(("startup", p.termination_grace_period_seconds));
                }
            }
        } else {
            if let Some(p) = &c.liveness_probe
                && probes::due(p, &slot.liveness, started_at, now)
            {
                let ok = probes::run(&self.cri, p, &id, &pod_ip, &ports).await;
                probes::record(p, &mut slot.liveness, ok, now);
                if slot.liveness.result == Some(false) {
                    kill = Some(("liveness", p.termination_grace_period_seconds));
                }
            }
            if let Some(p) = &c.readiness_probe
                && probes::due(p, &slot.readiness, started_at, now)
            {
                let ok = probes::run(&self.cri, p, &id, &pod_ip, &ports).await;
                probes::record(p, &mut slot.readiness, ok, now);
            }
        }
        if let Some((which, grace)) = kill {
            let grace = grace
                .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
                .unwrap_or(30);
            tracing::info!(
                pod = pod.metadata.name.as_deref().unwrap_or(""),
                container = %c.name,
                "container failed its {which} probe, will be restarted"
            );
            self.kill(c, &id, &pod_ip, grace).await;
            self.refresh(slot).await;
        }
    }

    /// Stops one container as upstream's killContainer: its preStop hook
    /// first, within the grace period, then the stop signal with what is
    /// left of it (at least 2 s, upstream's minimum shutdown window).
    async fn kill(&self, c: &Container, id: &str, pod_ip: &str, grace: i64) {
        let mut timeout = grace.max(0);
        if let Some(pre_stop) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref())
            && grace > 0
        {
            let began = std::time::Instant::now();
            let ports = named_ports(c);
            let hook = hooks::run(&self.cri, pre_stop, id, pod_ip, &ports);
            match tokio::time::timeout(Duration::from_secs(grace as u64), hook).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(container = %c.name, "FailedPreStopHook: {e}")
                }
                Err(_) => tracing::warn!(
                    container = %c.name,
                    "PreStop hook did not complete within {grace}s"
                ),
            }
            timeout -= began.elapsed().as_secs() as i64;
        }
        if grace > 0 {
            timeout = timeout.max(2);
        }
        if let Err(e) = self
            .rt()
            .stop_container(cri::StopContainerRequest {
                container_id: id.to_owned(),
                timeout,
            })
            .await
        {
            tracing::warn!(container = %id, "stopping the container: {}", e.message());
        }
    }

    /// Reads the container's state from the runtime.
    async fn refresh(&self, slot: &mut Slot) {
        let Some(id) = slot.id.clone() else {
            return;
        };
        let status = match self
            .rt()
            .container_status(cri::ContainerStatusRequest {
                container_id: id,
                verbose: false,
            })
            .await
        {
            Ok(r) => r.into_inner().status,
            Err(e) => {
                tracing::debug!(container = %slot.name, "container status: {}", e.message());
                return;
            }
        };
        let Some(s) = status else { return };
        if let Some(image) = s.image.as_ref().filter(|i| !i.image.is_empty()) {
            slot.image = image.image.clone();
        }
        if !s.image_ref.is_empty() {
            slot.image_id = s.image_ref.clone();
        }
        match cri::ContainerState::try_from(s.state) {
            Ok(cri::ContainerState::ContainerRunning) => {
                slot.state = ContainerState::Running {
                    started_at: from_nanos(s.started_at),
                };
            }
            Ok(cri::ContainerState::ContainerExited) => {
                let reason =
                    if !s.reason.is_empty() && s.reason != "Completed" && s.reason != "Error" {
                        s.reason.clone()
                    } else if s.exit_code == 0 {
                        "Completed".into()
                    } else {
                        "Error".into()
                    };
                // A container waiting out its back-off keeps that state.
                if !matches!(slot.state, ContainerState::Waiting { .. }) {
                    let message = match &slot.state {
                        // Read once, when the exit is first seen.
                        ContainerState::Exited { message, .. } => message.clone(),
                        _ => slot
                            .termination
                            .as_ref()
                            .map(|t| t.message(s.exit_code))
                            .unwrap_or_default(),
                    };
                    slot.state = ContainerState::Exited {
                        exit_code: s.exit_code,
                        reason,
                        message,
                        started_at: from_nanos(s.started_at),
                        finished_at: from_nanos(s.finished_at),
                    };
                }
            }
            _ => {}
        }
    }

    /// Restarts an exited container when its policy says so and its
    /// back-off has passed; else shows it waiting (CrashLoopBackOff).
    async fn maybe_restart(&self, pod: &Pod, c: &Container, state: &PodState, slot: &mut Slot) {
        let Some((exit_code, finished_at)) = slot.exited() else {
            return;
        };
        let restart = slot.sidecar
            || match restart_policy(pod) {
                "Always" => true,
                "OnFailure" => exit_code != 0,
                _ => false,
            };
        if !restart {
            return;
        }
        let exited = match &slot.state {
            s @ ContainerState::Exited { .. } => s.clone(),
            _ => slot.last_state.clone().unwrap_or(slot.state.clone()),
        };
        if let Some(wait) = slot.backoff {
            let since = (Utc::now() - finished_at).to_std().unwrap_or_default();
            if since < wait {
                slot.last_state = Some(exited);
                slot.last_id = slot.id.clone();
                slot.state = ContainerState::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!(
                        "back-off {}s restarting failed container={} pod={}_{}({})",
                        wait.as_secs(),
                        slot.name,
                        pod.metadata.name.as_deref().unwrap_or(""),
                        pod.metadata.namespace.as_deref().unwrap_or(""),
                        uid(pod)
                    ),
                };
                return;
            }
            slot.backoff = Some((wait * 2).min(BACKOFF_MAX));
        } else {
            slot.backoff = Some(BACKOFF_INITIAL);
        }
        slot.last_state = Some(exited);
        slot.last_id = slot.id.clone();
        slot.restart_count += 1;
        self.run_container(pod, c, state, slot).await;
    }

    /// One step of the pod: refresh, then start or restart what is due.
    async fn sync(&self, pod: &Pod, state: &mut PodState) {
        if state.stopped {
            return;
        }
        let Some(spec) = pod.spec.as_ref() else {
            return;
        };
        if state.volumes_synced.elapsed() >= VOLUME_SYNC_PERIOD {
            state.volumes_synced = std::time::Instant::now();
            volumes::refresh(&self.root_dir, &self.client, pod).await;
        }
        let mut init = std::mem::take(&mut state.init);
        let mut containers = std::mem::take(&mut state.containers);
        for slot in init.iter_mut().chain(containers.iter_mut()) {
            if slot.running() {
                self.refresh(slot).await;
            }
        }
        let init_specs: Vec<&Container> = spec.init_containers.iter().flatten().collect();
        let mut initialized = true;
        for (slot, c) in init.iter_mut().zip(init_specs) {
            if slot.id.is_none() {
                self.run_container(pod, c, state, slot).await;
                if !slot.sidecar {
                    initialized = false;
                    break;
                }
                continue;
            }
            if slot.sidecar {
                self.maybe_restart(pod, c, state, slot).await;
                continue;
            }
            match slot.exited() {
                Some((0, _)) if matches!(slot.state, ContainerState::Exited { .. }) => continue,
                Some(_) => {
                    self.maybe_restart(pod, c, state, slot).await;
                    initialized = false;
                    break;
                }
                None => {
                    initialized = false;
                    break;
                }
            }
        }
        for (slot, c) in init
            .iter_mut()
            .zip(spec.init_containers.iter().flatten())
            .filter(|(s, _)| s.sidecar)
            .chain(containers.iter_mut().zip(&spec.containers))
        {
            self.probe(pod, c, state, slot).await;
        }
        if initialized {
            for (slot, c) in containers.iter_mut().zip(&spec.containers) {
                if slot.id.is_none() {
                    self.run_container(pod, c, state, slot).await;
                } else {
                    self.maybe_restart(pod, c, state, slot).await;
                }
            }
        } else {
            for slot in containers.iter_mut().filter(|s| s.id.is_none()) {
                slot.state = ContainerState::Waiting {
                    reason: "PodInitializing".into(),
                    message: String::new(),
                };
            }
        }
        state.init = init;
        state.containers = containers;
        self.sync_ephemeral(pod, state).await;
    }

    /// Runs ephemeral containers added since the last sync, once each, and
    /// follows the ones running (upstream never restarts them).
    async fn sync_ephemeral(&self, pod: &Pod, state: &mut PodState) {
        let specs = ephemeral_specs(pod);
        let mut ephemeral = std::mem::take(&mut state.ephemeral);
        for c in &specs {
            if !ephemeral.iter().any(|s| s.name == c.name) {
                ephemeral.push(Slot::new(c, false, false));
            }
        }
        for slot in ephemeral.iter_mut() {
            let Some(c) = specs.iter().find(|c| c.name == slot.name) else {
                continue;
            };
            if slot.id.is_none() {
                self.run_container(pod, c, state, slot).await;
            } else if slot.running() {
                self.refresh(slot).await;
            }
        }
        state.ephemeral = ephemeral;
    }
}

#[async_trait]
impl Runtime for CriRuntime {
    fn name(&self) -> &str {
        "containerd"
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn supervises(&self) -> bool {
        true
    }

    fn forget_pod(&self, pod: &Pod) {
        lock(&self.views).remove(&uid(pod));
        // Upstream removes a deleted pod's logs with its containers.
        let dir = pod_log_dir(pod);
        lock(&self.log_paths).retain(|_, p| !p.starts_with(&dir));
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("removing {}: {e}", dir.display());
        }
    }

    async fn start_pod(&self, pod: &Pod) -> anyhow::Result<StartedPod> {
        let uid = uid(pod);
        let Some(spec) = pod.spec.as_ref() else {
            anyhow::bail!("pod has no spec");
        };
        let existing = lock(&self.pods).get(&uid).cloned();
        if let Some(existing) = existing {
            let mut state = existing.lock().await;
            self.sync(pod, &mut state).await;
            self.publish(pod, &state);
            return Ok(state.started());
        }
        if let Some(state) = self.adopt(pod, spec).await {
            let state = Arc::new(tokio::sync::Mutex::new(state));
            lock(&self.pods).insert(uid, state.clone());
            let mut state = state.lock().await;
            self.sync(pod, &mut state).await;
            return Ok(state.started());
        }
        self.remove_stale(&uid).await?;
        let prepared = volumes::prepare(&self.root_dir, &self.client, pod).await?;
        let log_dir = pod_log_dir(pod);
        std::fs::create_dir_all(&log_dir)?;
        let config = sandbox_config(pod, &self.dns);
        let runtime_handler = self.runtime_handler(pod).await?;
        let sandbox_id = self
            .rt()
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler,
            })
            .await
            .map_err(|e| anyhow::anyhow!("RunPodSandbox: {}", e.message()))?
            .into_inner()
            .pod_sandbox_id;
        let pod_ip = self
            .rt()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox_id.clone(),
                verbose: false,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().status)
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .filter(|ip| !ip.is_empty());
        let (init, containers) = new_slots(spec);
        let state = PodState {
            sandbox_id,
            sandbox_config: config,
            pod_ip: if spec.host_network.unwrap_or(false) {
                Some(self.host_ip.clone())
            } else {
                pod_ip
            },
            volumes: prepared,
            init,
            containers,
            ephemeral: Vec::new(),
            stopped: false,
            volumes_synced: std::time::Instant::now(),
        };
        // Seen by the server at once: logs of a container still being
        // created get upstream's "waiting to start" answer.
        self.publish(pod, &state);
        let state = Arc::new(tokio::sync::Mutex::new(state));
        lock(&self.pods).insert(uid, state.clone());
        let mut state = state.lock().await;
        self.sync(pod, &mut state).await;
        self.publish(pod, &state);
        Ok(state.started())
    }

    async fn sync_pod(&self, pod: &Pod) -> anyhow::Result<StartedPod> {
        let state = lock(&self.pods).get(&uid(pod)).cloned();
        let Some(state) = state else {
            anyhow::bail!("the pod has no sandbox on this node");
        };
        let mut state = state.lock().await;
        self.sync(pod, &mut state).await;
        self.publish(pod, &state);
        Ok(state.started())
    }

    async fn stop_pod(&self, pod: &Pod, grace: i64) -> anyhow::Result<Option<StartedPod>> {
        let state = lock(&self.pods).get(&uid(pod)).cloned();
        let Some(state) = state else {
            // Not started here (or already stopped): only stale sandboxes.
            self.remove_stale(&uid(pod)).await?;
            volumes::cleanup(&self.root_dir, pod);
            return Ok(None);
        };
        let mut state = state.lock().await;
        state.stopped = true;
        // Containers first, all at once, each with the grace period
        // (preStop, SIGTERM, then SIGKILL when it ends); sidecars after.
        let pod_ip = state.pod_ip.clone().unwrap_or_default();
        let stop = |slots: &[Slot], specs: &[Container]| {
            let running: Vec<(String, Container)> = slots
                .iter()
                .zip(specs)
                .filter(|(s, _)| s.running())
                .filter_map(|(s, c)| Some((s.id.clone()?, c.clone())))
                .collect();
            let pod_ip = &pod_ip;
            futures::future::join_all(
                running
                    .into_iter()
                    .map(move |(id, c)| async move { self.kill(&c, &id, pod_ip, grace).await }),
            )
        };
        let specs = pod.spec.clone().unwrap_or_default();
        stop(&state.containers, &specs.containers).await;
        let ephemeral = ephemeral_specs(pod);
        let ephemeral: Vec<Container> = state
            .ephemeral
            .iter()
            .map(|s| {
                ephemeral
                    .iter()
                    .find(|c| c.name == s.name)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        stop(&state.ephemeral, &ephemeral).await;
        stop(
            &state.init,
            specs.init_containers.as_deref().unwrap_or_default(),
        )
        .await;
        let mut init = std::mem::take(&mut state.init);
        let mut containers = std::mem::take(&mut state.containers);
        let mut ephemeral = std::mem::take(&mut state.ephemeral);
        for slot in init
            .iter_mut()
            .chain(containers.iter_mut())
            .chain(ephemeral.iter_mut())
        {
            self.refresh(slot).await;
        }
        state.init = init;
        state.containers = containers;
        state.ephemeral = ephemeral;
        let last = state.started();
        self.publish(pod, &state);
        self.remove_sandbox(&state.sandbox_id).await;
        volumes::cleanup(&self.root_dir, pod);
        lock(&self.pods).remove(&uid(pod));
        Ok(Some(last))
    }
}
