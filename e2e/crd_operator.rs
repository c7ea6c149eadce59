//! An operator written the usual kube-rs way (`#[derive(CustomResource)]`,
//! `Controller::new(...).run(...)`) installs its CRD into rkube and
//! reconciles its objects through the status subresource.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{conditions, wait::await_condition, watcher};
use kube::{Client, CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::harness::Cluster;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "ops.example.com",
    version = "v1",
    kind = "Echo",
    namespaced,
    status = "EchoStatus",
    shortname = "ec",
    printcolumn = r#"{"name":"Echoed","type":"string","jsonPath":".status.echoed"}"#
)]
pub struct EchoSpec {
    pub message: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct EchoStatus {
    pub echoed: String,
}

#[derive(Debug)]
struct ReconcileError(kube::Error);

impl std::fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ReconcileError {}

impl From<kube::Error> for ReconcileError {
    fn from(e: kube::Error) -> Self {
        ReconcileError(e)
    }
}

async fn reconcile(echo: Arc<Echo>, client: Arc<Client>) -> Result<Action, ReconcileError> {
    let api: Api<Echo> = Api::namespaced((*client).clone(), &echo.namespace().unwrap_or_default());
    if echo.status.as_ref().map(|s| s.echoed.as_str()) != Some(echo.spec.message.as_str()) {
        let status = json!({ "status": { "echoed": echo.spec.message } });
        api.patch_status(
            &echo.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await?;
    }
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Echo>, _: &ReconcileError, _: Arc<Client>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

async fn echoed(api: &Api<Echo>, name: &str, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let e = api.get(name).await.expect("get echo");
        if e.status.as_ref().map(|s| s.echoed.as_str()) == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not reconciled: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn kube_rs_operator_reconciles_custom_resources() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Echo::crd())
        .await
        .expect("install CRD");
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(crds, Echo::crd_name(), conditions::is_crd_established()),
    )
    .await
    .expect("established in time")
    .expect("condition watch");
    let echoes: Api<Echo> = Api::namespaced(client.clone(), "default");
    let controller = tokio::spawn(
        Controller::new(echoes.clone(), watcher::Config::default())
            .run(reconcile, error_policy, Arc::new(client.clone()))
            .for_each(|_| async {}),
    );
    echoes
        .create(
            &PostParams::default(),
            &Echo::new(
                "hello",
                EchoSpec {
                    message: "hi".into(),
                },
            ),
        )
        .await
        .expect("create echo");
    echoed(&echoes, "hello", "hi").await;
    let patch = json!({ "spec": { "message": "again" } });
    echoes
        .patch("hello", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch spec");
    echoed(&echoes, "hello", "again").await;
    let e = echoes.get("hello").await.expect("get");
    assert_eq!(
        e.metadata.generation,
        Some(2),
        "spec changes bump the generation"
    );
    // kubectl shows the operator's printer column and short name.
    let out = c.kubectl_ok(&["get", "ec"]);
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "ECHOED"], "{out}");
    assert!(
        out.lines().nth(1).unwrap_or_default().contains("again"),
        "{out}"
    );
    controller.abort();
}
