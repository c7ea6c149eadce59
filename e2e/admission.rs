//! Admission: ResourceQuota (admission + controller), LimitRange and Priority
//! (sig-api-machinery ResourceQuota and sig-scheduling LimitRange
//! conformance behaviours, and kubectl).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::conformance_util::{api_status, obj, test_namespace};
use crate::controllers_util::eventually;
use crate::harness::Cluster;

/// `status.used` of a quota, as plain strings.
async fn used(quotas: &Api<ResourceQuota>, name: &str) -> Option<BTreeMap<String, String>> {
    let q = quotas.get(name).await.ok()?;
    let st = q.status?;
    // Only once the controller has seen this spec.
    if st.hard != q.spec.and_then(|s| s.hard) {
        return None;
    }
    Some(
        st.used?
            .into_iter()
            .map(|(k, Quantity(v))| (k, v))
            .collect(),
    )
}

/// Waits until the quota's `used` has exactly these values for these keys.
async fn wait_used(quotas: &Api<ResourceQuota>, name: &str, want: &[(&str, &str)]) {
    eventually(&format!("quota {name} used {want:?}"), || async {
        let u = used(quotas, name).await?;
        want.iter()
            .all(|(k, v)| u.get(*k).map(String::as_str) == Some(*v))
            .then_some(())
    })
    .await;
}

/// Creates `object`, waits for `test-quota` to count it under `resource`
/// (`counts.0`), deletes it and waits for the count to drop (`counts.1`).
async fn counted_life<K>(
    client: &kube::Client,
    ns: &str,
    quotas: &Api<ResourceQuota>,
    object: Value,
    resource: &str,
    counts: (&str, &str),
) where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.create(&PostParams::default(), &obj(object))
        .await
        .unwrap();
    wait_used(quotas, "test-quota", &[(resource, counts.0)]).await;
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    wait_used(quotas, "test-quota", &[(resource, counts.1)]).await;
}

fn quota(name: &str, hard: Value) -> ResourceQuota {
    obj(json!({"metadata": {"name": name}, "spec": {"hard": hard}}))
}

fn pod(name: &str, resources: Value) -> Pod {
    obj(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]},
    }))
}

// [sig-api-machinery] ResourceQuota should create a ResourceQuota and ensure
// its status is promptly calculated; ... capture the life of a configMap,
// secret, service, replication controller and replica set.
#[tokio::test]
async fn quota_counts_objects_through_their_life() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "resourcequota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    quotas
        .create(
            &PostParams::default(),
            &quota(
                "test-quota",
                json!({
                    "pods": "5", "services": "10", "services.nodeports": "1",
                    "replicationcontrollers": "10", "resourcequotas": "1",
                    "configmaps": "10", "secrets": "10", "persistentvolumeclaims": "10",
                    "count/replicasets.apps": "5", "requests.storage": "10Gi",
                }),
            ),
        )
        .await
        .unwrap();
    wait_used(
        &quotas,
        "test-quota",
        &[
            ("resourcequotas", "1"),
            ("pods", "0"),
            // kube-root-ca.crt is already there.
            ("configmaps", "1"),
            ("services", "0"),
        ],
    )
    .await;

    // Each kind counts while it exists (kube-root-ca.crt is one configmap).
    let cm = json!({"metadata": {"name": "cm"}, "data": {"a": "b"}});
    counted_life::<ConfigMap>(&client, &ns, &quotas, cm, "configmaps", ("2", "1")).await;
    let secret = json!({"metadata": {"name": "s"}, "data": {"a": "Yg=="}});
    counted_life::<Secret>(&client, &ns, &quotas, secret, "secrets", ("1", "0")).await;

    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}})),
        )
        .await
        .unwrap();
    let np =
        json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    services
        .create(&PostParams::default(), &obj(np))
        .await
        .unwrap();
    wait_used(
        &quotas,
        "test-quota",
        &[("services", "2"), ("services.nodeports", "1")],
    )
    .await;
    // The node port quota is full now.
    let np2 =
        json!({"metadata": {"name": "np2"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    let err = api_status(
        services
            .create(&PostParams::default(), &obj(np2))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403, "{err:?}");
    assert_eq!(
        err.message,
        "services \"np2\" is forbidden: exceeded quota: test-quota, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1"
    );
    services
        .delete("svc", &DeleteParams::default())
        .await
        .unwrap();
    services
        .delete("np", &DeleteParams::default())
        .await
        .unwrap();
    wait_used(
        &quotas,
        "test-quota",
        &[("services", "0"), ("services.nodeports", "0")],
    )
    .await;

    let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 0, "selector": {"a": "b"},
        "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    counted_life::<ReplicationController>(
        &client,
        &ns,
        &quotas,
        rc,
        "replicationcontrollers",
        ("1", "0"),
    )
    .await;

    let rs = json!({"metadata": {"name": "rs"}, "spec": {"replicas": 0,
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    counted_life::<ReplicaSet>(
        &client,
        &ns,
        &quotas,
        rs,
        "count/replicasets.apps",
        ("1", "0"),
    )
    .await;
}

// [sig-api-machinery] ResourceQuota should create a ResourceQuota and
// capture the life of a pod.
#[tokio::test]
async fn quota_limits_pod_compute_resources() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "resourcequota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    quotas
        .create(
            &PostParams::default(),
            &quota(
                "test-quota",
                json!({"pods": "5", "requests.cpu": "1", "requests.memory": "500Mi",
                    "requests.example.com/dongle": "3", "limits.cpu": "2"}),
            ),
        )
        .await
        .unwrap();
    wait_used(
        &quotas,
        "test-quota",
        &[("pods", "0"), ("requests.cpu", "0")],
    )
    .await;
    let requests = json!({"cpu": "500m", "memory": "252Mi", "example.com/dongle": "2"});
    pods.create(
        &PostParams::default(),
        &pod(
            "test-pod",
            json!({"requests": requests, "limits": {"cpu": "500m", "example.com/dongle": "2"}}),
        ),
    )
    .await
    .unwrap();
    // Admission charged it at once; the controller's recount agrees.
    wait_used(
        &quotas,
        "test-quota",
        &[
            ("pods", "1"),
            ("requests.cpu", "500m"),
            ("requests.memory", "252Mi"),
            ("requests.example.com/dongle", "2"),
        ],
    )
    .await;
    let err = api_status(
        pods.create(
            &PostParams::default(),
            &pod(
                "fail-pod",
                json!({"requests": {"cpu": "600m", "memory": "100Mi"}, "limits": {"cpu": "600m"}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert_eq!(err.reason, "Forbidden");
    assert_eq!(
        err.message,
        "pods \"fail-pod\" is forbidden: exceeded quota: test-quota, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"
    );
    // A quota on cpu needs every container to say how much.
    let err = api_status(
        pods.create(&PostParams::default(), &pod("no-requests", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "pods \"no-requests\" is forbidden: failed quota: test-quota: must specify limits.cpu for: c; requests.cpu for: c; requests.memory for: c"
    );
    // Dry run: checked, not charged.
    pods.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &pod(
            "dry",
            json!({"requests": {"cpu": "100m", "memory": "1Mi"}, "limits": {"cpu": "100m"}}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        used(&quotas, "test-quota").await.unwrap()["requests.cpu"],
        "500m"
    );
    pods.delete("test-pod", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    wait_used(
        &quotas,
        "test-quota",
        &[
            ("pods", "0"),
            ("requests.cpu", "0"),
            ("requests.memory", "0"),
        ],
    )
    .await;
}

// [sig-api-machinery] ResourceQuota should verify ResourceQuota with best
// effort scope, and with terminating scopes.
#[tokio::test]
async fn quota_scopes_select_pods() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "resourcequota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    for (name, scope) in [
        ("best-effort", "BestEffort"),
        ("not-best-effort", "NotBestEffort"),
        ("terminating", "Terminating"),
        ("not-terminating", "NotTerminating"),
    ] {
        let q: ResourceQuota = obj(json!({"metadata": {"name": name},
            "spec": {"hard": {"pods": "5"}, "scopes": [scope]}}));
        quotas.create(&PostParams::default(), &q).await.unwrap();
        wait_used(&quotas, name, &[("pods", "0")]).await;
    }
    pods.create(&PostParams::default(), &pod("be", json!({})))
        .await
        .unwrap();
    wait_used(&quotas, "best-effort", &[("pods", "1")]).await;
    wait_used(&quotas, "not-terminating", &[("pods", "1")]).await;
    wait_used(&quotas, "not-best-effort", &[("pods", "0")]).await;
    wait_used(&quotas, "terminating", &[("pods", "0")]).await;
    let mut p = pod(
        "nbe",
        json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}}),
    );
    p.spec.as_mut().unwrap().active_deadline_seconds = Some(3600);
    pods.create(&PostParams::default(), &p).await.unwrap();
    wait_used(&quotas, "not-best-effort", &[("pods", "1")]).await;
    wait_used(&quotas, "terminating", &[("pods", "1")]).await;
    wait_used(&quotas, "best-effort", &[("pods", "1")]).await;
    for name in ["be", "nbe"] {
        pods.delete(name, &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
    }
    for name in [
        "best-effort",
        "not-best-effort",
        "terminating",
        "not-terminating",
    ] {
        wait_used(&quotas, name, &[("pods", "0")]).await;
    }
}

// [sig-apps] ReplicationController should surface a failure condition on a
// common issue like exceeded quota.
#[tokio::test]
async fn replication_controller_surfaces_exceeded_quota() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "rc-quota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    quotas
        .create(
            &PostParams::default(),
            &quota("condition-test", json!({"pods": "2"})),
        )
        .await
        .unwrap();
    wait_used(&quotas, "condition-test", &[("pods", "0")]).await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), &ns);
    rcs.create(
        &PostParams::default(),
        &obj(
            json!({"metadata": {"name": "condition-test"}, "spec": {"replicas": 3,
            "selector": {"name": "condition-test"},
            "template": {"metadata": {"labels": {"name": "condition-test"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        ),
    )
    .await
    .unwrap();
    let message = eventually("ReplicaFailure", || async {
        let rc = rcs.get("condition-test").await.ok()?;
        let cond = rc
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")?;
        Some(cond.message.unwrap_or_default())
    })
    .await;
    assert!(
        message.contains("exceeded quota: condition-test"),
        "{message}"
    );
    rcs.patch(
        "condition-test",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    eventually("condition gone", || async {
        let rc = rcs.get("condition-test").await.ok()?;
        let conds = rc.status?.conditions.unwrap_or_default();
        (!conds.iter().any(|c| c.type_ == "ReplicaFailure")).then_some(())
    })
    .await;
}

// kubectl create quota / a refused pod through kubectl.
#[tokio::test]
async fn kubectl_create_quota_limits_pods() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "kubectl-quota").await;
    c.kubectl_ok(&["create", "quota", "q", "--hard=pods=1", "-n", &ns]);
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    wait_used(&quotas, "q", &[("pods", "0")]).await;
    c.kubectl_ok(&["run", "one", "--image=busybox", "-n", &ns]);
    let out = c.kubectl(&["run", "two", "--image=busybox", "-n", &ns]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pods \"two\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"),
        "{stderr}"
    );
}

// [sig-scheduling] LimitRange should create a LimitRange with defaults and
// ensure pod has those defaults applied.
#[tokio::test]
async fn limit_range_defaults_and_bounds_pods() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "limitrange").await;
    let ranges: Api<LimitRange> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    ranges
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "limits"}, "spec": {"limits": [{
                "type": "Container",
                "min": {"cpu": "100m", "memory": "10Mi", "ephemeral-storage": "100Mi"},
                "max": {"cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi"},
                "defaultRequest": {"cpu": "100m", "memory": "200Mi", "ephemeral-storage": "200Gi"},
                "default": {"cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi"},
                "maxLimitRequestRatio": {"cpu": "10"},
            }]}})),
        )
        .await
        .unwrap();
    // Defaulted as upstream: a default limit from max, requests from it.
    let defaulted = ranges
        .create(
            &PostParams::default(),
            &obj(
                json!({"metadata": {"name": "defaulted"}, "spec": {"limits": [{
                    "type": "Container", "max": {"memory": "1Gi"}, "min": {"cpu": "1m"},
                }]}}),
            ),
        )
        .await
        .unwrap();
    let item = serde_json::to_value(&defaulted.spec.unwrap().limits[0]).unwrap();
    assert_eq!(item["default"], json!({"memory": "1Gi"}));
    assert_eq!(
        item["defaultRequest"],
        json!({"memory": "1Gi", "cpu": "1m"})
    );
    ranges
        .delete("defaulted", &DeleteParams::default())
        .await
        .unwrap();
    // No resources: all defaults.
    let created = pods
        .create(&PostParams::default(), &pod("defaults", json!({})))
        .await
        .unwrap();
    let res = |p: &Pod| {
        let r = p.spec.as_ref().unwrap().containers[0]
            .resources
            .clone()
            .unwrap();
        let s = |m: Option<BTreeMap<String, Quantity>>| -> BTreeMap<String, String> {
            m.unwrap_or_default()
                .into_iter()
                .map(|(k, Quantity(v))| (k, v))
                .collect()
        };
        (s(r.requests), s(r.limits))
    };
    let (req, lim) = res(&created);
    assert_eq!(req["cpu"], "100m");
    assert_eq!(req["memory"], "200Mi");
    assert_eq!(req["ephemeral-storage"], "200Gi");
    assert_eq!(lim["cpu"], "500m");
    assert_eq!(lim["memory"], "500Mi");
    assert_eq!(
        created.metadata.annotations.unwrap()["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, ephemeral-storage, memory request for container c; cpu, ephemeral-storage, memory limit for container c"
    );
    // Partial resources: the rest defaulted (the request follows its own limit).
    let partial = pods
        .create(
            &PostParams::default(),
            &pod(
                "partial",
                json!({"requests": {"cpu": "300m"}, "limits": {"memory": "300Mi"}}),
            ),
        )
        .await
        .unwrap();
    let (req, lim) = res(&partial);
    assert_eq!(req["cpu"], "300m");
    assert_eq!(req["memory"], "300Mi");
    assert_eq!(lim["cpu"], "500m");
    assert_eq!(lim["memory"], "300Mi");
    // Over the max: refused.
    let err = api_status(
        pods.create(
            &PostParams::default(),
            &pod(
                "too-big",
                json!({"requests": {"cpu": "600m"}, "limits": {"cpu": "600m"}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"too-big\" is forbidden: maximum cpu usage per Container is 500m, but limit is 600m"
    );
    // Under the min: refused.
    let err = api_status(
        pods.create(
            &PostParams::default(),
            &pod("too-small", json!({"requests": {"cpu": "50m"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "pods \"too-small\" is forbidden: minimum cpu usage per Container is 100m, but request is 50m"
    );
    // Once the range is gone, anything goes again.
    ranges
        .delete("limits", &DeleteParams::default())
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &pod(
            "too-big",
            json!({"requests": {"cpu": "600m"}, "limits": {"cpu": "600m"}}),
        ),
    )
    .await
    .unwrap();
}

// Priority admission and the system PriorityClasses ([sig-scheduling]
// preemption tests rely on both).
#[tokio::test]
async fn priority_classes_resolve_into_pods() {
    use k8s_openapi::api::scheduling::v1::PriorityClass;
    let c = Cluster::up().await;
    let client = c.client().await;
    let classes: Api<PriorityClass> = Api::all(client.clone());
    let critical = classes.get("system-node-critical").await.unwrap();
    assert_eq!(critical.value, Some(2_000_001_000));
    assert_eq!(
        classes.get("system-cluster-critical").await.unwrap().value,
        Some(2_000_000_000)
    );
    let ns = test_namespace(&client, "priority").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut p = pod("critical", json!({}));
    p.spec.as_mut().unwrap().priority_class_name = Some("system-cluster-critical".into());
    let created = pods.create(&PostParams::default(), &p).await.unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.priority, Some(2_000_000_000));
    assert_eq!(
        spec.preemption_policy.as_deref(),
        Some("PreemptLowerPriority")
    );
    // No class: priority 0.
    let plain = pods
        .create(&PostParams::default(), &pod("plain", json!({})))
        .await
        .unwrap();
    assert_eq!(plain.spec.unwrap().priority, Some(0));
    let mut p = pod("unknown", json!({}));
    p.spec.as_mut().unwrap().priority_class_name = Some("nope".into());
    let err = api_status(pods.create(&PostParams::default(), &p).await.unwrap_err());
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"unknown\" is forbidden: no PriorityClass with name nope was found"
    );
    let mut p = pod("given", json!({}));
    p.spec.as_mut().unwrap().priority = Some(5);
    let err = api_status(pods.create(&PostParams::default(), &p).await.unwrap_err());
    assert_eq!(
        err.message,
        "pods \"given\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"
    );
    // A global default applies to pods naming no class; only one may exist.
    let class = |name: &str| -> PriorityClass {
        obj(json!({"metadata": {"name": name}, "value": 7, "globalDefault": true}))
    };
    classes
        .create(&PostParams::default(), &class("gd"))
        .await
        .unwrap();
    let err = api_status(
        classes
            .create(&PostParams::default(), &class("gd2"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "priorityclasses.scheduling.k8s.io \"gd2\" is forbidden: PriorityClass gd is already marked as default. Only one default can exist"
    );
    let defaulted = pods
        .create(&PostParams::default(), &pod("defaulted", json!({})))
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(defaulted.priority, Some(7));
    assert_eq!(defaulted.priority_class_name.as_deref(), Some("gd"));
    // The system- prefix is reserved.
    let err = api_status(
        classes
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": "system-foo"}, "value": 10})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        "PriorityClass.scheduling.k8s.io \"system-foo\" is invalid: metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-foo is not a known system priority class"
    );
}

// [sig-api-machinery] ResourceQuota should apply changes to a resourcequota
// status: status writes go through /status only, and the controller puts
// status.hard back to the spec.
#[tokio::test]
async fn quota_status_follows_spec_after_status_writes() {
    let c = Cluster::up_with_controllers().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "resourcequota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let hard = |q: &ResourceQuota| -> Option<BTreeMap<String, String>> {
        Some(
            q.status
                .as_ref()?
                .hard
                .clone()?
                .into_iter()
                .map(|(k, Quantity(v))| (k, v))
                .collect(),
        )
    };
    let want = |cpu: &str, mem: &str| {
        BTreeMap::from([
            ("cpu".to_string(), cpu.to_string()),
            ("memory".to_string(), mem.to_string()),
        ])
    };
    quotas
        .create(
            &PostParams::default(),
            &quota("e2e-rq-status", json!({"cpu": "500m", "memory": "500Mi"})),
        )
        .await
        .unwrap();
    eventually("status.hard = spec", || async {
        (hard(&quotas.get("e2e-rq-status").await.ok()?)? == want("500m", "500Mi")).then_some(())
    })
    .await;
    // Patching the spec moves status.hard after it.
    quotas
        .patch(
            "e2e-rq-status",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"cpu": "1", "memory": "1Gi"}}})),
        )
        .await
        .unwrap();
    eventually("status.hard = new spec", || async {
        (hard(&quotas.get("e2e-rq-status").await.ok()?)? == want("1", "1Gi")).then_some(())
    })
    .await;
    // A status patch is taken, leaves the spec alone, and is then undone.
    let patched = quotas
        .patch_status(
            "e2e-rq-status",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"cpu": "9"}}, "status": {"hard": {"cpu": "2", "memory": "2Gi"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.spec.unwrap().hard.unwrap()["cpu"],
        Quantity("1".into())
    );
    eventually("status.hard reconciled", || async {
        (hard(&quotas.get_status("e2e-rq-status").await.ok()?)? == want("1", "1Gi")).then_some(())
    })
    .await;
}

// [sig-api-machinery] ResourceQuota should be able to update and delete
// ResourceQuota / should manage the lifecycle of a ResourceQuota.
#[tokio::test]
async fn quota_update_patch_and_delete_collection() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "resourcequota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let mut q = quota("test-quota", json!({"cpu": "1", "memory": "500Mi"}));
    q.metadata.labels = Some(BTreeMap::from([(
        "e2e-rq-label".into(),
        "test-quota".into(),
    )]));
    quotas.create(&PostParams::default(), &q).await.unwrap();
    let mut got = quotas.get("test-quota").await.unwrap();
    got.spec
        .as_mut()
        .unwrap()
        .hard
        .as_mut()
        .unwrap()
        .insert("cpu".into(), Quantity("2".into()));
    let updated = quotas
        .replace("test-quota", &PostParams::default(), &got)
        .await
        .unwrap();
    assert_eq!(
        updated.spec.unwrap().hard.unwrap()["cpu"],
        Quantity("2".into())
    );
    let all: Api<ResourceQuota> = Api::all(client.clone());
    let listed = all
        .list(&kube::api::ListParams::default().labels("e2e-rq-label=test-quota"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let patched = quotas
        .patch(
            "test-quota",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"rq": "patched"}}, "spec": {"hard": {"memory": "1Gi"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.spec.unwrap().hard.unwrap()["memory"],
        Quantity("1Gi".into())
    );
    quotas
        .delete_collection(
            &DeleteParams::default(),
            &kube::api::ListParams::default().labels("e2e-rq-label=test-quota"),
        )
        .await
        .unwrap();
    assert_eq!(
        api_status(quotas.get("test-quota").await.unwrap_err()).code,
        404
    );
}
