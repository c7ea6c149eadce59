//! `/stats/summary`: a small upstream-shaped Summary. The node's CPU and
//! memory come from the root cgroup (v1 here), the containers' from CRI
//! ListContainerStats.

use std::collections::HashMap;
use std::time::Instant;

use chrono::Utc;
use k8s_cri::v1 as cri;
use serde_json::{Value, json};

use super::Server;
use crate::podstatus::time;

/// A CPU usage sample, for usageNanoCores between two of them.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    at: Instant,
    total_ns: u64,
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The root cgroup's CPU time in ns (cgroup v1 cpuacct, else /proc/stat).
fn node_cpu_ns() -> Option<u64> {
    read_u64("/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage")
        .or_else(|| read_u64("/sys/fs/cgroup/cpuacct/cpuacct.usage"))
        .or_else(|| {
            let stat = std::fs::read_to_string("/proc/stat").ok()?;
            let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
            // user nice system (idle and iowait excluded) irq softirq steal
            let f: Vec<u64> = cpu
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|i| f.get(*i)).sum();
            Some(busy * 10_000_000) // USER_HZ is 100
        })
}

/// The node's memory as upstream's cadvisor reports it: usage, working
/// set (usage less inactive file pages) and what is left.
fn node_memory() -> Value {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|v| v * 1024)
    };
    let total = kib("MemTotal:").unwrap_or(0);
    let usage = read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes")
        .unwrap_or_else(|| total.saturating_sub(kib("MemFree:").unwrap_or(0)));
    let stat = std::fs::read_to_string("/sys/fs/cgroup/memory/memory.stat").unwrap_or_default();
    let stat_of = |key: &str| {
        stat.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let inactive = stat_of("total_inactive_file ").unwrap_or(0);
    let working_set = usage.saturating_sub(inactive);
    json!({
        "time": time(Utc::now()),
        "availableBytes": total.saturating_sub(working_set),
        "usageBytes": usage,
        "workingSetBytes": working_set,
        "rssBytes": stat_of("total_rss ").unwrap_or(0),
    })
}

fn cpu_of(s: &cri::ContainerStats) -> Value {
    let Some(cpu) = &s.cpu else {
        return json!({});
    };
    json!({
        "time": time(chrono::TimeZone::timestamp_nanos(&Utc, cpu.timestamp)),
        "usageNanoCores": cpu.usage_nano_cores.as_ref().map(|v| v.value).unwrap_or(0),
        "usageCoreNanoSeconds": cpu.usage_core_nano_seconds.as_ref().map(|v| v.value).unwrap_or(0),
    })
}

fn memory_of(s: &cri::ContainerStats) -> Value {
    let Some(m) = &s.memory else {
        return json!({});
    };
    let v = |x: &Option<cri::UInt64Value>| x.as_ref().map(|v| v.value).unwrap_or(0);
    json!({
        "time": time(chrono::TimeZone::timestamp_nanos(&Utc, m.timestamp)),
        "usageBytes": v(&m.usage_bytes),
        "workingSetBytes": v(&m.working_set_bytes),
        "rssBytes": v(&m.rss_bytes),
        "pageFaults": v(&m.page_faults),
        "majorPageFaults": v(&m.major_page_faults),
    })
}

impl Server {
    /// The node's CPU since the previous request (or over 100 ms on the
    /// first one).
    async fn node_cpu(&self) -> Value {
        let now = || {
            node_cpu_ns().map(|total_ns| CpuSample {
                at: Instant::now(),
                total_ns,
            })
        };
        let previous = *super::lock(&self.cpu_sample);
        let previous = match previous {
            Some(p) => Some(p),
            None => {
                let first = now();
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                first
            }
        };
        let current = now();
        *super::lock(&self.cpu_sample) = current;
        let (Some(cur), Some(prev)) = (current, previous) else {
            return json!({"time": time(Utc::now())});
        };
        let elapsed = cur.at.duration_since(prev.at).as_nanos().max(1);
        let cores =
            u128::from(cur.total_ns.saturating_sub(prev.total_ns)) * 1_000_000_000 / elapsed;
        json!({
            "time": time(Utc::now()),
            "usageNanoCores": cores as u64,
            "usageCoreNanoSeconds": cur.total_ns,
        })
    }

    pub(super) async fn summary(&self) -> Value {
        let stats = self
            .runtime
            .cri()
            .runtime
            .clone()
            .list_container_stats(cri::ListContainerStatsRequest { filter: None })
            .await
            .map(|r| r.into_inner().stats)
            .unwrap_or_else(|e| {
                tracing::debug!("ListContainerStats: {}", e.message());
                Vec::new()
            });
        let by_id: HashMap<&str, &cri::ContainerStats> = stats
            .iter()
            .filter_map(|s| Some((s.attributes.as_ref()?.id.as_str(), s)))
            .collect();
        let pods: Vec<Value> = self
            .runtime
            .pods()
            .iter()
            .map(|view| {
                let meta = &view.pod.metadata;
                let containers: Vec<Value> = view
                    .status
                    .containers
                    .iter()
                    .filter_map(|c| {
                        let id = c.container_id.rsplit("://").next()?;
                        let s = by_id.get(id)?;
                        let started = match &c.state {
                            crate::runtime::ContainerState::Running { started_at } => {
                                Some(time(*started_at))
                            }
                            _ => None,
                        };
                        Some(json!({
                            "name": c.name,
                            "startTime": started,
                            "cpu": cpu_of(s),
                            "memory": memory_of(s),
                        }))
                    })
                    .collect();
                json!({
                    "podRef": {
                        "name": meta.name,
                        "namespace": meta.namespace,
                        "uid": meta.uid,
                    },
                    "startTime": view.pod.status.as_ref().and_then(|s| s.start_time.as_ref()),
                    "containers": containers,
                })
            })
            .collect();
        json!({
            "node": {
                "nodeName": self.node_name,
                "startTime": time(self.started),
                "cpu": self.node_cpu().await,
                "memory": node_memory(),
            },
            "pods": pods,
        })
    }
}
