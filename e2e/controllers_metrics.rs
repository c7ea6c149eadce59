//! The controller manager's `/healthz` and `/metrics`: per-controller work
//! queue depth, adds and sync durations under upstream's metric names.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use rkube_storage::testing::free_port;
use serde_json::json;

use crate::conformance_util::{obj, test_namespace};
use crate::controllers_util::eventually;
use crate::harness::Cluster;

async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).await.ok()?;
    Some(out)
}

/// The value of a sample line `name{labels} value`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn healthz_and_work_queue_metrics_are_served() {
    let port = free_port();
    let c = Cluster::up_with_controllers_and_args(&[
        "--controller-manager-secure-port",
        &port.to_string(),
    ])
    .await;
    let client = c.client().await;
    let health = eventually("/healthz", || http_get(port, "/healthz")).await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok"),
        "{health}"
    );
    let ns = test_namespace(&client, "metrics").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            })),
        )
        .await
        .unwrap();
    let metrics = eventually("deployment and replicaset syncs counted", || async {
        let m = http_get(port, "/metrics").await?;
        let synced = |name: &str| {
            sample(
                &m,
                &format!("workqueue_work_duration_seconds_count{{name=\"{name}\"}}"),
            )
            .is_some_and(|n| n >= 1.0)
        };
        (synced("deployment") && synced("replicaset")).then_some(m)
    })
    .await;
    for name in [
        "deployment",
        "replicaset",
        "namespace",
        "endpoint",
        "endpoint_slice",
        "endpoint_slice_mirroring",
        "node_lifecycle_controller",
    ] {
        let depth = sample(&metrics, &format!("workqueue_depth{{name=\"{name}\"}}"));
        assert!(depth.is_some(), "no depth for {name}: {metrics}");
    }
    assert!(
        sample(&metrics, "workqueue_adds_total{name=\"deployment\"}").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "rkube_controller_syncs_total{name=\"replicaset\",result=\"success\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE workqueue_work_duration_seconds histogram"));
    assert!(
        sample(
            &metrics,
            "workqueue_queue_duration_seconds_count{name=\"deployment\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    let missing = http_get(port, "/nope").await.unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}
