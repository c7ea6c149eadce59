//! Container lifecycle hooks as upstream's kubelet runs them: postStart
//! right after the container starts (a failure kills the container, which
//! then restarts per its policy), preStop before the stop signal, within
//! the grace period. Handlers: exec (CRI ExecSync), httpGet and sleep.

use std::time::Duration;

use k8s_openapi::api::core::v1::LifecycleHandler;

use super::Cri;
use super::probes;

/// Runs the handler once; the error says why it failed, as upstream's
/// `FailedPostStartHook`/`FailedPreStopHook` events do.
pub async fn run(
    cri: &Cri,
    h: &LifecycleHandler,
    container_id: &str,
    pod_ip: &str,
    named_ports: &[(String, i32)],
) -> Result<(), String> {
    if let Some(exec) = &h.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let r = cri
            .runtime
            .clone()
            .exec_sync(k8s_cri::v1::ExecSyncRequest {
                container_id: container_id.to_owned(),
                cmd: cmd.clone(),
                // Upstream runs exec hooks without a timeout of their own:
                // the caller bounds preStop by the grace period.
                timeout: 0,
            })
            .await
            .map_err(|e| format!("command '{}' failed: {}", cmd.join(" "), e.message()))?
            .into_inner();
        if r.exit_code != 0 {
            let out = String::from_utf8_lossy(if r.stderr.is_empty() {
                &r.stdout
            } else {
                &r.stderr
            })
            .into_owned();
            return Err(format!(
                "command '{}' exited with {}: {out}",
                cmd.join(" "),
                r.exit_code
            ));
        }
        return Ok(());
    }
    if let Some(g) = &h.http_get {
        let host = g
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_owned());
        let port = probes::port(&g.port, named_ports).map_err(|e| e.to_string())?;
        let scheme = g.scheme.as_deref().unwrap_or("HTTP");
        if scheme != "HTTP" {
            return Err(format!("httpGet hooks over {scheme} are not supported yet"));
        }
        let headers: Vec<(String, String)> = g
            .http_headers
            .iter()
            .flatten()
            .map(|hh| (hh.name.clone(), hh.value.clone()))
            .collect();
        let path = g.path.as_deref().unwrap_or("/");
        // Upstream only needs an answer; its status code is not checked.
        return probes::http_get(&host, port, path, &headers)
            .await
            .map(drop)
            .map_err(|e| format!("Get \"http://{host}:{port}{path}\": {e:#}"));
    }
    if let Some(s) = &h.sleep {
        tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
        return Ok(());
    }
    Err("lifecycle handler has no exec, httpGet or sleep action".into())
}
