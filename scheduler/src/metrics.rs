//! `/healthz` and `/metrics` (Prometheus text): scheduling attempts by
//! result, attempt latency, pending pods per queue. Served over plain HTTP
//! (upstream serves HTTPS on 10259).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};

#[derive(Default)]
pub struct Metrics {
    pub scheduled: AtomicU64,
    pub unschedulable: AtomicU64,
    pub error: AtomicU64,
    /// Sum of attempt durations, in microseconds.
    pub attempt_micros: AtomicU64,
    pub bind_errors: AtomicU64,
    pub preemption_attempts: AtomicU64,
    pub preemption_victims: AtomicU64,
}

/// Latency buckets as upstream's `scheduler_scheduling_attempt_duration_seconds`.
pub const BUCKETS: &[f64] = &[
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
];

pub struct Histogram {
    counts: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..=BUCKETS.len()).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn render(&self, hist: &Histogram, queues: (usize, usize, usize, usize)) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str("# HELP scheduler_schedule_attempts_total Number of attempts to schedule pods, by the result.\n# TYPE scheduler_schedule_attempts_total counter\n");
        for (result, v) in [
            ("scheduled", &self.scheduled),
            ("unschedulable", &self.unschedulable),
            ("error", &self.error),
        ] {
            out.push_str(&format!("scheduler_schedule_attempts_total{{profile=\"default-scheduler\",result=\"{result}\"}} {}\n", get(v)));
        }
        out.push_str("# HELP scheduler_scheduling_attempt_duration_seconds Scheduling attempt latency in seconds (scheduling algorithm + binding)\n# TYPE scheduler_scheduling_attempt_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += get(&hist.counts[i]);
            out.push_str(&format!(
                "scheduler_scheduling_attempt_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}\n"
            ));
        }
        cumulative += get(&hist.counts[BUCKETS.len()]);
        out.push_str(&format!(
            "scheduler_scheduling_attempt_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n"
        ));
        out.push_str(&format!(
            "scheduler_scheduling_attempt_duration_seconds_sum {}\nscheduler_scheduling_attempt_duration_seconds_count {cumulative}\n",
            get(&self.attempt_micros) as f64 / 1e6
        ));
        out.push_str("# HELP scheduler_pending_pods Number of pending pods, by the queue type.\n# TYPE scheduler_pending_pods gauge\n");
        for (queue, n) in [
            ("active", queues.0),
            ("backoff", queues.1),
            ("unschedulable", queues.2),
            ("gated", queues.3),
        ] {
            out.push_str(&format!(
                "scheduler_pending_pods{{queue=\"{queue}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "# TYPE scheduler_preemption_attempts_total counter\nscheduler_preemption_attempts_total {}\n",
            get(&self.preemption_attempts)
        ));
        out.push_str(&format!(
            "# TYPE scheduler_preemption_victims_total counter\nscheduler_preemption_victims_total {}\n",
            get(&self.preemption_victims)
        ));
        out
    }
}

/// Serves `/healthz` and `/metrics` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    render: Arc<dyn Fn() -> String + Send + Sync>,
) -> anyhow::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a metrics connection");
                continue;
            }
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let render = render.clone();
                async move {
                    let (status, body) = match req.uri().path() {
                        "/healthz" | "/livez" | "/readyz" => (200, "ok".to_string()),
                        "/metrics" => (200, render()),
                        _ => (404, "404 page not found\n".to_string()),
                    };
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    *resp.status_mut() =
                        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
                    Ok::<_, Infallible>(resp)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}
