//! Load generator for `hack/bench/crd.sh`: creates/s of a custom resource
//! (a 50-field schema with two CEL rules) against ConfigMaps holding the
//! same 50 values, in the same run, from many concurrent clients. Python's
//! client tops out before the server does on two cores; this one spends
//! little CPU per request (raw bodies, no typed decoding), and prints its
//! own CPU use next to the server's so that can be checked.
//!
//! Environment (defaults in brackets): KUBECONFIG (the server),
//! BENCH_RUST_OBJECTS per kind [2000], BENCH_RUST_CLIENTS [32], BENCH_ROUNDS
//! (CR and ConfigMap phases, in alternating order, so store growth weighs
//! on both alike) [4], BENCH_SERVER_PID (to report the server's CPU).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

const GROUP: &str = "bench.rkube.io";
const PLURAL: &str = "samples";
const KIND: &str = "Sample";
const NS: &str = "default";
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The same CRD as bench.py's.
fn crd() -> Value {
    let props: serde_json::Map<String, Value> = (0..50)
        .map(|i| (format!("f{i}"), json!({"type": "string"})))
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{PLURAL}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "kind": KIND},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": props,
                             "x-kubernetes-validations": [
                                 {"rule": "self.f0 != 'forbidden'"},
                                 {"rule": "size(self.f1) < 64"},
                             ]}}}},
            }],
        },
    })
}

fn payload() -> Value {
    (0..50)
        .map(|i| (format!("f{i}"), json!(format!("value-{i:02}"))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn call(
    client: &kube::Client,
    method: &str,
    uri: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>)> {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(kube::client::Body::from(body))?;
    let resp = client.send(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect_bytes().await?;
    Ok((status, body.to_vec()))
}

/// Creates the CRD unless it exists, and waits until its resource answers.
async fn ensure_crd(client: &kube::Client) -> Result<()> {
    let (s, b) = call(client, "POST", CRDS, serde_json::to_vec(&crd())?).await?;
    if s != 201 && s != 409 {
        bail!("creating the CRD: {s}: {}", String::from_utf8_lossy(&b));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let uri = format!("/apis/{GROUP}/v1/namespaces/{NS}/{PLURAL}?limit=1");
    while call(client, "GET", &uri, Vec::new()).await?.0 != 200 {
        if Instant::now() > deadline {
            bail!("the CRD's resource is not served after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// CPU seconds (user + system) of a process, `self` included.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (11 and 12 after the name);
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

#[derive(Default)]
struct Phase {
    lat: Vec<Duration>,
    wall: Duration,
    client_cpu: f64,
    server_cpu: f64,
    errors: u64,
}

impl Phase {
    fn add(&mut self, o: Phase) {
        self.lat.extend(o.lat);
        self.wall += o.wall;
        self.client_cpu += o.client_cpu;
        self.server_cpu += o.server_cpu;
        self.errors += o.errors;
    }

    fn rate(&self) -> f64 {
        self.lat.len() as f64 / self.wall.as_secs_f64()
    }

    fn row(&mut self, name: &str) {
        self.lat.sort();
        let pct = |p: f64| {
            let i = ((self.lat.len() as f64 * p) as usize).min(self.lat.len().saturating_sub(1));
            self.lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let wall = self.wall.as_secs_f64();
        println!(
            "{name:32} {:8.0} {:8.1} {:8.1}   client CPU {:4.0}%  server CPU {:4.0}%{}",
            self.rate(),
            pct(0.5),
            pct(0.99),
            self.client_cpu / wall * 100.0,
            self.server_cpu / wall * 100.0,
            if self.errors > 0 {
                format!("  ({} errors)", self.errors)
            } else {
                String::new()
            }
        );
    }
}

/// `n` creates from `clients` concurrent tasks, one request in flight each.
async fn creates(
    client: &kube::Client,
    uri: &str,
    body: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
    n: u64,
    clients: u64,
    server: Option<&str>,
) -> Result<Phase> {
    let next = Arc::new(AtomicU64::new(0));
    let (client0, server0) = (cpu_secs("self"), server.map(cpu_secs));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, uri, body, next) =
                (client.clone(), uri.to_owned(), body.clone(), next.clone());
            tokio::spawn(async move {
                let mut out = Phase::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let t = Instant::now();
                    match call(&client, "POST", &uri, body(i)).await {
                        Ok((201, _)) => out.lat.push(t.elapsed()),
                        Ok((s, b)) => {
                            out.errors += 1;
                            if out.errors <= 3 {
                                eprintln!("create {i}: {s}: {}", String::from_utf8_lossy(&b));
                            }
                        }
                        Err(e) => {
                            out.errors += 1;
                            if out.errors <= 3 {
                                eprintln!("create {i}: {e:#}");
                            }
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut phase = Phase::default();
    for t in tasks {
        phase.add(t.await?);
    }
    phase.wall = t0.elapsed();
    phase.client_cpu = cpu_secs("self") - client0;
    phase.server_cpu = match (server, server0) {
        (Some(pid), Some(before)) => cpu_secs(pid) - before,
        _ => 0.0,
    };
    Ok(phase)
}

async fn run() -> Result<()> {
    let n = env_u64("BENCH_RUST_OBJECTS", 2000);
    let clients = env_u64("BENCH_RUST_CLIENTS", 32);
    let rounds = env_u64("BENCH_ROUNDS", 4).max(1);
    let server = std::env::var("BENCH_SERVER_PID").ok();
    let client = kube::Client::try_default().await?;
    ensure_crd(&client).await?;
    let spec = payload();
    let cr_uri = format!("/apis/{GROUP}/v1/namespaces/{NS}/{PLURAL}");
    let cm_uri = format!("/api/v1/namespaces/{NS}/configmaps");
    let (mut cr, mut cm) = (Phase::default(), Phase::default());
    let per_round = n / rounds;
    for round in 0..rounds {
        let s = spec.clone();
        let cr_body = Arc::new(move |i: u64| {
            serde_json::to_vec(&json!({"apiVersion": format!("{GROUP}/v1"), "kind": KIND,
                "metadata": {"name": format!("rs{round}-{i}")}, "spec": s}))
            .unwrap_or_default()
        });
        let s = spec.clone();
        let cm_body = Arc::new(move |i: u64| {
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("rcm{round}-{i}")}, "data": s}))
            .unwrap_or_default()
        });
        // Which kind goes first alternates, so neither always meets the
        // fuller store.
        let pid = server.as_deref();
        if round % 2 == 0 {
            cr.add(creates(&client, &cr_uri, cr_body, per_round, clients, pid).await?);
            cm.add(creates(&client, &cm_uri, cm_body, per_round, clients, pid).await?);
        } else {
            cm.add(creates(&client, &cm_uri, cm_body, per_round, clients, pid).await?);
            cr.add(creates(&client, &cr_uri, cr_body, per_round, clients, pid).await?);
        }
    }
    println!(
        "{:32} {:>8} {:>8} {:>8}   ({} objects each, {clients} clients, {rounds} rounds, Rust driver)",
        "operation",
        "ops/s",
        "p50 ms",
        "p99 ms",
        per_round * rounds
    );
    let ratio = cr.rate() / cm.rate() * 100.0;
    cr.row("create custom resource");
    cm.row("create ConfigMap (same data)");
    println!("custom resource creates/s vs ConfigMap creates/s: {ratio:.0}%");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rkube-bench-crd: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkube-bench-crd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
