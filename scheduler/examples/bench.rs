//! Scheduler throughput in the spirit of upstream's scheduler_perf
//! SchedulingBasic: against a running API server (`rkube up
//! --no-scheduler`), creates N Node objects (Ready, allocatable set; no
//! kubelet), starts `rkube scheduler` as a separate process, creates M
//! pods and measures pods/s from the first pod's creation to the last
//! pod's binding, and the scheduler's RSS. Used by hack/bench/scheduler.sh.
//!
//!   bench --rkube <bin> --dir <data dir> [--nodes 5000] [--pods 10000]
//!         [--variant basic|anti-affinity|topology-spread]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

struct Args {
    rkube: String,
    dir: std::path::PathBuf,
    nodes: usize,
    pods: usize,
    variant: String,
    clients: usize,
    /// Create every pod before starting the scheduler, and time only the
    /// scheduler's work (isolates it from the API server's create rate).
    backlog: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        rkube: String::new(),
        dir: Default::default(),
        nodes: 5000,
        pods: 10000,
        variant: "basic".into(),
        clients: 32,
        backlog: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rkube" => a.rkube = value,
            "--dir" => a.dir = value.into(),
            "--nodes" => a.nodes = value.parse()?,
            "--pods" => a.pods = value.parse()?,
            "--variant" => a.variant = value,
            "--clients" => a.clients = value.parse()?,
            "--backlog" => a.backlog = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.rkube.is_empty() {
        bail!("--rkube is required");
    }
    Ok(a)
}

async fn client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn pod_spec(variant: &str, i: usize) -> serde_json::Value {
    let mut spec = json!({
        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]
    });
    match variant {
        "anti-affinity" => {
            spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"color": format!("c{}", i % 10)}}, "topologyKey": "kubernetes.io/hostname"}
            ]}});
        }
        "topology-spread" => {
            spec["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "bench"}}}]);
        }
        _ => {}
    }
    spec
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let admin = client(&a.dir.join("admin.conf")).await?;
    let nodes: Api<Node> = Api::all(admin.clone());
    let started = Instant::now();
    futures::stream::iter(0..a.nodes)
        .map(|i| {
            let nodes = nodes.clone();
            async move {
                let name = format!("node-{i}");
                let node: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": format!("zone-{}", i % 3)
                }}}))?;
                nodes.create(&PostParams::default(), &node).await?;
                let status = json!({"status": {
                    "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                    "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "",
                        "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
                }});
                nodes.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(a.clients)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!(
        "created {} nodes in {:.1}s",
        a.nodes,
        started.elapsed().as_secs_f64()
    );

    measure(&a, admin).await
}

fn start_scheduler(a: &Args) -> anyhow::Result<std::process::Child> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(a.dir.join("scheduler.log"))?;
    std::process::Command::new(&a.rkube)
        .args([
            "scheduler",
            "--leader-elect=false",
            "--bind-address",
            "127.0.0.1",
        ])
        .arg("--kubeconfig")
        .arg(a.dir.join("scheduler.conf"))
        .args(["--secure-port", &port.to_string()])
        .stderr(log)
        .spawn()
        .context("starting rkube scheduler")
}

/// Kills the scheduler on every exit path.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn measure(a: &Args, admin: kube::Client) -> anyhow::Result<()> {
    let mut scheduler = None;
    let mut idle_rss = 0;
    if !a.backlog {
        let child = Child(start_scheduler(a)?);
        // Let the scheduler list the nodes first (as scheduler_perf does).
        tokio::time::sleep(Duration::from_secs(2)).await;
        idle_rss = rss_kib(child.0.id()).0;
        scheduler = Some(child);
    }
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let watch_pods = pods.clone();
    let total = a.pods;
    let watcher = tokio::spawn(async move {
        let mut bound = 0usize;
        let mut stream = watch_pods
            .watch(&WatchParams::default(), "0")
            .await?
            .boxed();
        let mut seen = std::collections::HashSet::new();
        while let Some(event) = stream.try_next().await? {
            if let WatchEvent::Modified(p) | WatchEvent::Added(p) = event
                && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                && seen.insert(p.metadata.name.clone().unwrap_or_default())
            {
                bound += 1;
                if bound == total {
                    return anyhow::Ok(Instant::now());
                }
            }
        }
        bail!("watch ended after {bound} bound pods")
    });
    let mut first = Instant::now();
    let variant = Arc::new(a.variant.clone());
    futures::stream::iter(0..a.pods)
        .map(|i| {
            let pods = pods.clone();
            let variant = variant.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("pod-{i}"), "labels": {"app": "bench", "color": format!("c{}", i % 10)}},
                    "spec": pod_spec(&variant, i)
                }))?;
                pods.create(&PostParams::default(), &pod).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(a.clients)
        .try_collect::<Vec<()>>()
        .await?;
    let created = first.elapsed();
    if a.backlog {
        first = Instant::now();
        scheduler = Some(Child(start_scheduler(a)?));
    }
    let pid = scheduler.as_ref().map(|c| c.0.id()).unwrap_or(0);
    let mut peak_rss = 0;
    let done = loop {
        if watcher.is_finished() {
            break watcher.await??;
        }
        peak_rss = peak_rss.max(rss_kib(pid).0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = done.duration_since(first).as_secs_f64();
    let (rss, hwm) = rss_kib(pid);
    println!("variant            {}", a.variant);
    println!("nodes / pods       {} / {}", a.nodes, a.pods);
    println!(
        "pods created in    {:.2}s ({:.0} pods/s)",
        created.as_secs_f64(),
        a.pods as f64 / created.as_secs_f64()
    );
    if a.backlog {
        println!(
            "scheduler start to all bound  {:.2}s (pods created beforehand)",
            elapsed
        );
    } else {
        println!("creation to bound  {:.2}s", elapsed);
    }
    println!("throughput         {:.0} pods/s", a.pods as f64 / elapsed);
    println!(
        "scheduler RSS      idle {} MiB, after {} MiB, peak {} MiB",
        idle_rss / 1024,
        rss / 1024,
        hwm.max(peak_rss) / 1024
    );
    Ok(())
}
