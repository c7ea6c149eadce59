//! Container probes as upstream runs them: exec (CRI ExecSync), httpGet,
//! tcpSocket and grpc (the gRPC health protocol), for startup, liveness and readiness, with the timing
//! fields (initialDelaySeconds, periodSeconds, timeoutSeconds,
//! successThreshold, failureThreshold) and upstream's defaults.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Cri;

/// The running tally of one probe of one container run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    last_run: Option<DateTime<Utc>>,
    successes: i32,
    failures: i32,
    /// The probe's verdict once its threshold was reached.
    pub result: Option<bool>,
}

fn secs(v: Option<i32>, default: i32) -> i64 {
    i64::from(v.unwrap_or(default).max(0))
}

/// Whether the probe is due at `now` for a container started at
/// `started`.
pub fn due(p: &Probe, t: &Tally, started: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    if (now - started).num_seconds() < secs(p.initial_delay_seconds, 0) {
        return false;
    }
    match t.last_run {
        None => true,
        Some(last) => (now - last).num_milliseconds() >= secs(p.period_seconds, 10) * 1000,
    }
}

/// Records one probe result; the verdict flips after successThreshold
/// successes or failureThreshold failures in a row.
pub fn record(p: &Probe, t: &mut Tally, ok: bool, now: DateTime<Utc>) {
    t.last_run = Some(now);
    if ok {
        t.successes += 1;
        t.failures = 0;
        if t.successes >= p.success_threshold.unwrap_or(1).max(1) {
            t.result = Some(true);
        }
    } else {
        t.failures += 1;
        t.successes = 0;
        if t.failures >= p.failure_threshold.unwrap_or(3).max(1) {
            t.result = Some(false);
        }
    }
}

pub(super) fn port(p: &IntOrString, named: &[(String, i32)]) -> anyhow::Result<u16> {
    let n = match p {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => match s.parse::<i32>() {
            Ok(n) => n,
            Err(_) => named
                .iter()
                .find(|(name, _)| name == s)
                .map(|(_, n)| *n)
                .ok_or_else(|| anyhow::anyhow!("no container port named {s:?}"))?,
        },
    };
    u16::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| anyhow::anyhow!("invalid port {n}"))
}

pub(super) async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> anyhow::Result<bool> {
    let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
    let path = if path.is_empty() { "/" } else { path };
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.36\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 1024];
    let mut got = 0;
    while got < buf.len() {
        let n = stream.read(&mut buf[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
        if buf[..got].contains(&b'\n') {
            break;
        }
    }
    let line = String::from_utf8_lossy(&buf[..got]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no HTTP status line"))?;
    // Upstream: 2xx and 3xx succeed.
    Ok((200..400).contains(&code))
}

/// The gRPC health checking protocol (`grpc.health.v1.Health/Check`) over
/// plain HTTP/2, as upstream's grpc probe: SERVING succeeds.
async fn grpc_check(host: &str, port: u16, service: &str) -> anyhow::Result<bool> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{host}:{port}"))?
        .connect()
        .await?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map_err(|e| anyhow::anyhow!("grpc health check: {}", e.message()))?
        .into_inner()
        .status;
    Ok(status == ServingStatus::Serving as i32)
}

/// Runs the probe once: true on success.
pub async fn run(
    cri: &Cri,
    p: &Probe,
    container_id: &str,
    pod_ip: &str,
    named_ports: &[(String, i32)],
) -> bool {
    let timeout = Duration::from_secs(secs(p.timeout_seconds, 1).max(1) as u64);
    let attempt = async {
        if let Some(exec) = &p.exec {
            let r = cri
                .runtime
                .clone()
                .exec_sync(k8s_cri::v1::ExecSyncRequest {
                    container_id: container_id.to_owned(),
                    cmd: exec.command.clone().unwrap_or_default(),
                    timeout: timeout.as_secs() as i64,
                })
                .await
                .map_err(|e| anyhow::anyhow!("exec: {}", e.message()))?;
            return Ok(r.into_inner().exit_code == 0);
        }
        if let Some(h) = &p.http_get {
            anyhow::ensure!(
                h.scheme.as_deref().unwrap_or("HTTP") == "HTTP",
                "httpGet probes over HTTPS are not supported by this kubelet yet"
            );
            let host = h
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod_ip.to_owned());
            let headers: Vec<(String, String)> = h
                .http_headers
                .iter()
                .flatten()
                .map(|hh| (hh.name.clone(), hh.value.clone()))
                .collect();
            let port = port(&h.port, named_ports)?;
            return http_get(&host, port, h.path.as_deref().unwrap_or("/"), &headers).await;
        }
        if let Some(t) = &p.tcp_socket {
            let host = t
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod_ip.to_owned());
            let port = port(&t.port, named_ports)?;
            tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            return Ok(true);
        }
        if let Some(g) = &p.grpc {
            let port = u16::try_from(g.port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| anyhow::anyhow!("invalid port {}", g.port))?;
            return grpc_check(pod_ip, port, g.service.as_deref().unwrap_or("")).await;
        }
        anyhow::bail!("probe has no exec, httpGet, tcpSocket or grpc handler")
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => {
            tracing::debug!("probe failed: {e:#}");
            false
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_periods() {
        let p: Probe = serde_json::from_value(serde_json::json!({
            "exec": {"command": ["true"]},
            "initialDelaySeconds": 2, "periodSeconds": 5, "failureThreshold": 2
        }))
        .expect("probe");
        let t0 = Utc::now();
        let mut t = Tally::default();
        assert!(!due(&p, &t, t0, t0 + chrono::Duration::seconds(1)));
        assert!(due(&p, &t, t0, t0 + chrono::Duration::seconds(2)));
        record(&p, &mut t, false, t0 + chrono::Duration::seconds(2));
        assert_eq!(t.result, None, "one failure of two");
        assert!(!due(&p, &t, t0, t0 + chrono::Duration::seconds(4)));
        assert!(due(&p, &t, t0, t0 + chrono::Duration::seconds(7)));
        record(&p, &mut t, false, t0 + chrono::Duration::seconds(7));
        assert_eq!(t.result, Some(false));
        record(&p, &mut t, true, t0 + chrono::Duration::seconds(12));
        assert_eq!(t.result, Some(true));
    }
}
