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

/// Milliseconds since the epoch of an RFC 3339 time in the Summary.
fn millis(v: &Value) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    Some(t.timestamp_millis())
}

/// One sample line: `name{labels} value timestamp`.
fn sample(out: &mut String, name: &str, labels: &str, value: f64, at: Option<i64>) {
    use std::fmt::Write;
    let _ = write!(out, "{name}");
    if !labels.is_empty() {
        let _ = write!(out, "{{{labels}}}");
    }
    let _ = match at {
        Some(ms) => writeln!(out, " {value} {ms}"),
        None => writeln!(out, " {value}"),
    };
}

/// Escapes a label value as the Prometheus text format wants.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `/metrics/resource` (what metrics-server scrapes) from a Summary:
/// upstream's STABLE resource metrics in the Prometheus text format.
pub fn resource_metrics(summary: &Value) -> String {
    let mut out = String::new();
    let header = |out: &mut String, name: &str, help: &str, kind: &str| {
        out.push_str(&format!(
            "# HELP {name} [STABLE] {help}\n# TYPE {name} {kind}\n"
        ));
    };
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let pods = summary["pods"].as_array().cloned().unwrap_or_default();
    let containers: Vec<(String, &Value)> = pods
        .iter()
        .flat_map(|p| {
            let labels = format!(
                "namespace=\"{}\",pod=\"{}\"",
                escape(p["podRef"]["namespace"].as_str().unwrap_or("")),
                escape(p["podRef"]["name"].as_str().unwrap_or(""))
            );
            p["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |c| {
                    (
                        format!(
                            "container=\"{}\",{labels}",
                            escape(c["name"].as_str().unwrap_or(""))
                        ),
                        c,
                    )
                })
        })
        .collect();
    header(
        &mut out,
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the container in core-seconds",
        "counter",
    );
    for (labels, c) in &containers {
        let cpu = &c["cpu"];
        let secs = f(&cpu["usageCoreNanoSeconds"]) / 1e9;
        sample(
            &mut out,
            "container_cpu_usage_seconds_total",
            labels,
            secs,
            millis(&cpu["time"]),
        );
    }
    header(
        &mut out,
        "container_memory_working_set_bytes",
        "Current working set of the container in bytes",
        "gauge",
    );
    for (labels, c) in &containers {
        let m = &c["memory"];
        let ws = f(&m["workingSetBytes"]);
        sample(
            &mut out,
            "container_memory_working_set_bytes",
            labels,
            ws,
            millis(&m["time"]),
        );
    }
    header(
        &mut out,
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds",
        "gauge",
    );
    for (labels, c) in &containers {
        if let Some(ms) = millis(&c["startTime"]) {
            sample(
                &mut out,
                "container_start_time_seconds",
                labels,
                ms as f64 / 1e3,
                None,
            );
        }
    }
    let node = &summary["node"];
    header(
        &mut out,
        "node_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the node in core-seconds",
        "counter",
    );
    let secs = f(&node["cpu"]["usageCoreNanoSeconds"]) / 1e9;
    sample(
        &mut out,
        "node_cpu_usage_seconds_total",
        "",
        secs,
        millis(&node["cpu"]["time"]),
    );
    header(
        &mut out,
        "node_memory_working_set_bytes",
        "Current working set of the node in bytes",
        "gauge",
    );
    let ws = f(&node["memory"]["workingSetBytes"]);
    sample(
        &mut out,
        "node_memory_working_set_bytes",
        "",
        ws,
        millis(&node["memory"]["time"]),
    );
    // Pods: the sums of their containers.
    let pod_sum = |p: &Value, path: &str| -> f64 {
        p["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c.pointer(path).and_then(Value::as_f64).unwrap_or(0.0))
            .sum()
    };
    let pod_labels = |p: &Value| {
        format!(
            "namespace=\"{}\",pod=\"{}\"",
            escape(p["podRef"]["namespace"].as_str().unwrap_or("")),
            escape(p["podRef"]["name"].as_str().unwrap_or(""))
        )
    };
    header(
        &mut out,
        "pod_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the pod in core-seconds",
        "counter",
    );
    for p in &pods {
        let secs = pod_sum(p, "/cpu/usageCoreNanoSeconds") / 1e9;
        sample(
            &mut out,
            "pod_cpu_usage_seconds_total",
            &pod_labels(p),
            secs,
            None,
        );
    }
    header(
        &mut out,
        "pod_memory_working_set_bytes",
        "Current working set of the pod in bytes",
        "gauge",
    );
    for p in &pods {
        let ws = pod_sum(p, "/memory/workingSetBytes");
        sample(
            &mut out,
            "pod_memory_working_set_bytes",
            &pod_labels(p),
            ws,
            None,
        );
    }
    header(
        &mut out,
        "resource_scrape_error",
        "1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    sample(&mut out, "resource_scrape_error", "", 0.0, None);
    out
}

/// `/metrics`: a few of the kubelet's own metrics, upstream's names.
pub fn kubelet_metrics(
    node: &str,
    started: chrono::DateTime<Utc>,
    views: &[crate::cri::PodView],
) -> String {
    let mut running_pods = 0;
    let mut states: [(&str, u64); 4] = [
        ("created", 0),
        ("exited", 0),
        ("running", 0),
        ("unknown", 0),
    ];
    for v in views {
        let mut any_running = false;
        for c in v.status.init_containers.iter().chain(&v.status.containers) {
            let i = match c.state {
                crate::runtime::ContainerState::Running { .. } => {
                    any_running = true;
                    2
                }
                crate::runtime::ContainerState::Exited { .. } => 1,
                crate::runtime::ContainerState::Waiting { .. } if c.container_id.is_empty() => {
                    continue;
                }
                crate::runtime::ContainerState::Waiting { .. } => 0,
            };
            states[i].1 += 1;
        }
        if any_running {
            running_pods += 1;
        }
    }
    let mut out = String::new();
    out.push_str("# HELP kubelet_node_name [ALPHA] The node's name. The count is always 1.\n");
    out.push_str("# TYPE kubelet_node_name gauge\n");
    sample(
        &mut out,
        "kubelet_node_name",
        &format!("node=\"{}\"", escape(node)),
        1.0,
        None,
    );
    out.push_str(
        "# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox\n",
    );
    out.push_str("# TYPE kubelet_running_pods gauge\n");
    sample(
        &mut out,
        "kubelet_running_pods",
        "",
        f64::from(running_pods),
        None,
    );
    out.push_str(
        "# HELP kubelet_running_containers [ALPHA] Number of containers currently running\n",
    );
    out.push_str("# TYPE kubelet_running_containers gauge\n");
    for (state, n) in states {
        let labels = format!("container_state=\"{state}\"");
        sample(
            &mut out,
            "kubelet_running_containers",
            &labels,
            n as f64,
            None,
        );
    }
    out.push_str("# HELP process_start_time_seconds [ALPHA] Start time of the process since unix epoch in seconds.\n");
    out.push_str("# TYPE process_start_time_seconds gauge\n");
    let start = started.timestamp_millis() as f64 / 1e3;
    sample(&mut out, "process_start_time_seconds", "", start, None);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_metrics_from_a_summary() {
        let summary = json!({
            "node": {
                "nodeName": "n",
                "cpu": {"time": "2024-01-01T00:00:00Z", "usageCoreNanoSeconds": 2_500_000_000u64},
                "memory": {"time": "2024-01-01T00:00:00Z", "workingSetBytes": 1024},
            },
            "pods": [{
                "podRef": {"name": "p", "namespace": "ns", "uid": "u"},
                "containers": [
                    {"name": "a", "startTime": "2024-01-01T00:00:00Z",
                     "cpu": {"usageCoreNanoSeconds": 1_000_000_000u64},
                     "memory": {"workingSetBytes": 100}},
                    {"name": "b",
                     "cpu": {"usageCoreNanoSeconds": 500_000_000u64},
                     "memory": {"workingSetBytes": 50}},
                ],
            }],
        });
        let text = resource_metrics(&summary);
        for line in [
            "# TYPE container_cpu_usage_seconds_total counter",
            "container_cpu_usage_seconds_total{container=\"a\",namespace=\"ns\",pod=\"p\"} 1",
            "container_memory_working_set_bytes{container=\"b\",namespace=\"ns\",pod=\"p\"} 50",
            "container_start_time_seconds{container=\"a\",namespace=\"ns\",pod=\"p\"} 1704067200",
            "node_cpu_usage_seconds_total 2.5 1704067200000",
            "node_memory_working_set_bytes 1024 1704067200000",
            "pod_cpu_usage_seconds_total{namespace=\"ns\",pod=\"p\"} 1.5",
            "pod_memory_working_set_bytes{namespace=\"ns\",pod=\"p\"} 150",
            "resource_scrape_error 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
