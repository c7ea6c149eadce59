//! The Node object: registration, and the status the kubelet reports
//! (capacity, conditions with upstream's reasons, addresses, nodeInfo,
//! daemon endpoints).

use chrono::Utc;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::podstatus::time;

/// What a node reports about itself.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    /// InternalIP address (also the pods' hostIP).
    pub ip: String,
    /// `spec.podCIDR` to set at registration, if any.
    pub pod_cidr: Option<String>,
    /// Capacity, as upstream quantities (KWOK's defaults for simulated
    /// nodes).
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub ephemeral_storage: String,
    /// `daemonEndpoints.kubeletEndpoint.Port`: where the kubelet server
    /// listens (simulated nodes advertise the default; the API server
    /// answers for them).
    pub port: u16,
    /// `--allowed-unsafe-sysctls`: names or `prefix*` patterns a pod may
    /// set besides the safe ones.
    pub allowed_unsafe_sysctls: Vec<String>,
}

impl NodeConfig {
    pub fn simulated(name: &str, ip: &str) -> NodeConfig {
        NodeConfig {
            name: name.to_owned(),
            ip: ip.to_owned(),
            pod_cidr: None,
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: 110,
            ephemeral_storage: "1Ti".into(),
            port: crate::server::DEFAULT_PORT,
            allowed_unsafe_sysctls: Vec::new(),
        }
    }
}

impl NodeConfig {
    /// A node backed by this machine: capacity from its CPUs, memory and
    /// the filesystem of `root_dir`, as upstream's cadvisor reports them.
    pub fn host(name: &str, ip: &str, root_dir: &std::path::Path) -> NodeConfig {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mem_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        let storage = disk_bytes(root_dir).unwrap_or(0);
        NodeConfig {
            name: name.to_owned(),
            ip: ip.to_owned(),
            pod_cidr: None,
            cpu: cpus.to_string(),
            memory: format!("{mem_kib}Ki"),
            pods: 110,
            ephemeral_storage: format!("{}Ki", storage / 1024),
            port: crate::server::DEFAULT_PORT,
            allowed_unsafe_sysctls: Vec::new(),
        }
    }
}

fn disk_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed out-struct of the right type.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_blocks as u64 * st.f_frsize as u64)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn os_image() -> String {
    read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".into())
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The node's conditions, all healthy, keeping transition times from
/// `previous` (upstream's wording).
pub fn conditions(previous: Option<&Value>) -> Value {
    let now = time(Utc::now());
    let table = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    let old = previous.and_then(Value::as_array);
    Value::Array(
        table
            .iter()
            .map(|(kind, status, reason, message)| {
                let transition = old
                    .and_then(|cs| cs.iter().find(|c| c["type"] == *kind))
                    .filter(|c| c["status"] == *status)
                    .map(|c| c["lastTransitionTime"].clone())
                    .unwrap_or_else(|| json!(now));
                json!({
                    "type": kind,
                    "status": status,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": transition,
                    "reason": reason,
                    "message": message,
                })
            })
            .collect(),
    )
}

pub fn status(cfg: &NodeConfig, runtime_version: &str, previous: Option<&Value>) -> Value {
    let resources = json!({
        "cpu": cfg.cpu,
        "memory": cfg.memory,
        "pods": cfg.pods.to_string(),
        "ephemeral-storage": cfg.ephemeral_storage,
    });
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": conditions(previous),
        "addresses": [
            {"type": "InternalIP", "address": cfg.ip},
            {"type": "Hostname", "address": cfg.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.port}},
        "nodeInfo": {
            "machineID": read("/etc/machine-id"),
            "systemUUID": read("/sys/class/dmi/id/product_uuid"),
            "bootID": read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": read("/proc/sys/kernel/osrelease"),
            "osImage": os_image(),
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": crate::KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch(),
        },
    })
}

fn object(cfg: &NodeConfig) -> Value {
    let mut node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": cfg.name,
            "labels": {
                "kubernetes.io/hostname": cfg.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch(),
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": arch(),
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {},
    });
    if let Some(cidr) = &cfg.pod_cidr {
        node["spec"]["podCIDR"] = json!(cidr);
        node["spec"]["podCIDRs"] = json!([cidr]);
    }
    node
}

/// What registration learned about the node.
pub struct Registered {
    pub uid: String,
    pub pod_cidr: Option<String>,
}

/// Creates the Node (or finds the one already there, as upstream's
/// `tryRegisterWithAPIServer`) and writes its status.
pub async fn register(
    api: &Api<Node>,
    cfg: &NodeConfig,
    runtime_version: &str,
) -> anyhow::Result<Registered> {
    let node: Node = serde_json::from_value(object(cfg))?;
    let node = match api.create(&PostParams::default(), &node).await {
        Ok(n) => n,
        Err(kube::Error::Api(e)) if e.code == 409 => api.get(&cfg.name).await?,
        Err(e) => return Err(e.into()),
    };
    let previous = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| serde_json::to_value(c).ok());
    let patch = json!({"status": status(cfg, runtime_version, previous.as_ref())});
    api.patch_status(&cfg.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let spec = node.spec.unwrap_or_default();
    Ok(Registered {
        uid: node.metadata.uid.unwrap_or_default(),
        pod_cidr: spec.pod_cidr.or(cfg.pod_cidr.clone()),
    })
}

/// Whether the Node object says Ready=True, as this kubelet reports.
pub fn reports_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The periodic status report: fresh heartbeats on every condition.
pub async fn report(api: &Api<Node>, cfg: &NodeConfig) -> anyhow::Result<()> {
    let node = api.get_status(&cfg.name).await?;
    let previous = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| serde_json::to_value(c).ok());
    let patch = json!({"status": {"conditions": conditions(previous.as_ref())}});
    api.patch_status(&cfg.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}
