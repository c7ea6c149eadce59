//! Conformance: lifecycles of plain API objects (ConfigMaps, Secrets,
//! PodTemplates, Leases, LimitRanges, ServiceAccounts, ResourceQuotas):
//! CRUD, label selectors, deletecollection, watch, status subresource.
//! Upstream's strategic merge patches are sent as JSON merge patches (the
//! same result for these payloads).

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, PodTemplate, ResourceQuota, Secret, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

use crate::conformance_util::{api_status, code, next_event, obj, test_namespace};
use crate::harness::Cluster;

fn q(s: &str) -> Quantity {
    Quantity(s.to_owned())
}

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    items
        .iter()
        .map(|i| i.meta().name.clone().unwrap_or_default())
        .collect()
}

// ---------------------------------------------------------------- ConfigMaps

// [sig-node] ConfigMap should fail to create ConfigMap with empty key
// [Conformance]
#[tokio::test]
async fn configmap_should_fail_to_create_configmap_with_empty_key() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "configmap").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, &ns);
    let err = cms
        .create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "name": "configmap-test-emptykey" }, "data": { "": "value-1" } })),
        )
        .await
        .expect_err("a ConfigMap with an empty key must be refused");
    let s = api_status(err);
    assert_eq!(s.code, 422, "{s:?}");
    assert_eq!(s.reason, "Invalid", "{s:?}");
    assert!(s.message.contains("data[]"), "{s:?}");
}

// [sig-node] ConfigMap should run through a ConfigMap lifecycle [Conformance]
#[tokio::test]
async fn configmap_should_run_through_a_configmap_lifecycle() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "configmap").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let all: Api<ConfigMap> = Api::all(client.clone());
    let name = "test-configmap-6c1b2f";
    cms.create(
        &PostParams::default(),
        &obj(json!({
            "metadata": { "name": name, "labels": { "test-configmap-static": "true" } },
            "data": { "valueName": "value" }
        })),
    )
    .await
    .unwrap();
    cms.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({
            "metadata": { "labels": { "test-configmap": "patched" } },
            "data": { "valueName": "value1" }
        })),
    )
    .await
    .unwrap();
    let got = cms.get(name).await.unwrap();
    assert_eq!(
        got.metadata.labels.as_ref().unwrap()["test-configmap"],
        "patched"
    );
    assert_eq!(got.data.as_ref().unwrap()["valueName"], "value1");

    let list = all
        .list(&ListParams::default().labels("test-configmap-static=true"))
        .await
        .unwrap();
    let found = list
        .items
        .iter()
        .find(|cm| cm.metadata.name.as_deref() == Some(name))
        .expect("configmap in the all-namespaces list");
    assert_eq!(
        found.metadata.labels.as_ref().unwrap()["test-configmap"],
        "patched"
    );
    assert_eq!(found.data.as_ref().unwrap()["valueName"], "value1");

    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("test-configmap-static=true"),
    )
    .await
    .unwrap();
    let list = all
        .list(&ListParams::default().labels("test-configmap-static=true"))
        .await
        .unwrap();
    assert!(
        !names(&list.items).contains(&name.to_string()),
        "{:?}",
        names(&list.items)
    );
}

// [sig-storage] ConfigMap should be immutable if `immutable` field is set
// [Conformance]
#[tokio::test]
async fn configmap_should_be_immutable_if_immutable_field_is_set() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "configmap").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, &ns);
    let name = "immutable";
    let mut cm = cms
        .create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "name": name }, "data": { "data-1": "value-1" } })),
        )
        .await
        .unwrap();
    cm.data
        .as_mut()
        .unwrap()
        .insert("data-2".into(), "value-2".into());
    let mut cm = cms
        .replace(name, &PostParams::default(), &cm)
        .await
        .expect("update data");
    cm.immutable = Some(true);
    let cm = cms
        .replace(name, &PostParams::default(), &cm)
        .await
        .expect("mark immutable");

    let mut changed = cm.clone();
    changed
        .data
        .as_mut()
        .unwrap()
        .insert("data-3".into(), "value-3".into());
    let s = api_status(
        cms.replace(name, &PostParams::default(), &changed)
            .await
            .expect_err("data of an immutable ConfigMap must not change"),
    );
    assert_eq!(s.code, 422, "{s:?}");
    assert!(
        s.message
            .contains("field is immutable when `immutable` is set"),
        "{s:?}"
    );

    let mut changed = cm.clone();
    changed.immutable = Some(false);
    let s = api_status(
        cms.replace(name, &PostParams::default(), &changed)
            .await
            .expect_err("immutable must not be unset"),
    );
    assert_eq!(s.code, 422, "{s:?}");
    assert!(
        s.message
            .contains("field is immutable when `immutable` is set"),
        "{s:?}"
    );

    let mut changed = cm.clone();
    changed.metadata.labels = Some([("label1".to_string(), "value1".to_string())].into());
    let got = cms
        .replace(name, &PostParams::default(), &changed)
        .await
        .expect("labels of an immutable ConfigMap may change");
    assert_eq!(got.metadata.labels.unwrap()["label1"], "value1");
    cms.delete(name, &DeleteParams::default())
        .await
        .expect("delete");
}

// ------------------------------------------------------------------- Secrets

// [sig-node] Secrets should fail to create secret due to empty secret key
// [Conformance]
#[tokio::test]
async fn secrets_should_fail_to_create_secret_due_to_empty_secret_key() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "secrets").await;
    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    let err = secrets
        .create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "name": "secret-emptykey-test" }, "data": { "": "dmFsdWUtMQo=" } })),
        )
        .await
        .expect_err("a Secret with an empty key must be refused");
    let s = api_status(err);
    assert_eq!(s.code, 422, "{s:?}");
    assert_eq!(s.reason, "Invalid", "{s:?}");
    assert!(s.message.contains("data[]"), "{s:?}");
}

// [sig-node] Secrets should patch a secret [Conformance]
#[tokio::test]
async fn secrets_should_patch_a_secret() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "secrets").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let all: Api<Secret> = Api::all(client.clone());
    let name = "test-secret-5b0c7e";
    secrets
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": { "name": name, "labels": { "testsecret-constant": "true" } },
                "data": { "key": "dmFsdWU=" },
                "type": "Opaque"
            })),
        )
        .await
        .unwrap();
    let list = all
        .list(&ListParams::default().labels("testsecret-constant=true"))
        .await
        .unwrap();
    assert!(names(&list.items).contains(&name.to_string()));

    secrets
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": { "labels": { "testsecret": "true" } },
                "data": { "key": "dmFsdWUx" }
            })),
        )
        .await
        .unwrap();
    let got = secrets.get(name).await.unwrap();
    assert_eq!(got.metadata.labels.as_ref().unwrap()["testsecret"], "true");
    assert_eq!(
        got.data.as_ref().unwrap()["key"],
        ByteString(b"value1".to_vec())
    );
    assert_eq!(got.type_.as_deref(), Some("Opaque"));

    secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("testsecret-constant=true"),
        )
        .await
        .unwrap();
    let list = all
        .list(&ListParams::default().labels("testsecret-constant=true"))
        .await
        .unwrap();
    assert!(!names(&list.items).contains(&name.to_string()));
}

// A Secret's write-only stringData lands in data on create and on patch,
// and is never returned (upstream's v1 conversion).
#[tokio::test]
async fn secrets_string_data_is_merged_into_data() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "secrets").await;
    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    let created = secrets
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": { "name": "strings" },
                "data": { "a": "eA==", "b": "eQ==" },
                "stringData": { "b": "two", "c": "three" }
            })),
        )
        .await
        .expect("create");
    assert!(created.string_data.is_none(), "{created:?}");
    let data = created.data.expect("data");
    assert_eq!(data["a"], ByteString(b"x".to_vec()));
    assert_eq!(data["b"], ByteString(b"two".to_vec()));
    assert_eq!(data["c"], ByteString(b"three".to_vec()));

    secrets
        .patch(
            "strings",
            &PatchParams::default(),
            &Patch::Merge(json!({ "stringData": { "a": "one" } })),
        )
        .await
        .expect("patch");
    let got = secrets.get("strings").await.expect("get");
    assert!(got.string_data.is_none(), "{got:?}");
    assert_eq!(got.data.expect("data")["a"], ByteString(b"one".to_vec()));
}

// [sig-storage] Secrets should be immutable if `immutable` field is set
// [Conformance]
#[tokio::test]
async fn secrets_should_be_immutable_if_immutable_field_is_set() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "secrets").await;
    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    let name = "immutable";
    let mut s = secrets
        .create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "name": name }, "data": { "data-1": "dmFsdWUtMQo=" } })),
        )
        .await
        .unwrap();
    s.data
        .as_mut()
        .unwrap()
        .insert("data-2".into(), ByteString(b"value-2\n".to_vec()));
    let mut s = secrets
        .replace(name, &PostParams::default(), &s)
        .await
        .expect("update data");
    s.immutable = Some(true);
    let s = secrets
        .replace(name, &PostParams::default(), &s)
        .await
        .expect("mark immutable");

    let mut changed = s.clone();
    changed
        .data
        .as_mut()
        .unwrap()
        .insert("data-3".into(), ByteString(b"value-3\n".to_vec()));
    let st = api_status(
        secrets
            .replace(name, &PostParams::default(), &changed)
            .await
            .expect_err("data of an immutable Secret must not change"),
    );
    assert_eq!(st.code, 422, "{st:?}");
    assert!(
        st.message
            .contains("field is immutable when `immutable` is set"),
        "{st:?}"
    );

    let mut changed = s.clone();
    changed.immutable = Some(false);
    let st = api_status(
        secrets
            .replace(name, &PostParams::default(), &changed)
            .await
            .expect_err("immutable must not be unset"),
    );
    assert_eq!(st.code, 422, "{st:?}");
    assert!(
        st.message
            .contains("field is immutable when `immutable` is set"),
        "{st:?}"
    );

    let mut changed = s.clone();
    changed.metadata.labels = Some([("label1".to_string(), "value1".to_string())].into());
    secrets
        .replace(name, &PostParams::default(), &changed)
        .await
        .expect("labels of an immutable Secret may change");
    secrets
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete");
}

// -------------------------------------------------------------- PodTemplates

fn pod_template(name: &str, labels: serde_json::Value) -> PodTemplate {
    obj(json!({
        "metadata": { "name": name, "labels": labels },
        "template": { "spec": { "containers": [
            { "name": "nginx", "image": "registry.k8s.io/e2e-test-images/nginx:1.14-2" }
        ] } }
    }))
}

// [sig-node] PodTemplates should run the lifecycle of PodTemplates
// [Conformance]
#[tokio::test]
async fn podtemplates_should_run_the_lifecycle_of_podtemplates() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "podtemplate").await;
    let templates: Api<PodTemplate> = Api::namespaced(client.clone(), &ns);
    let all: Api<PodTemplate> = Api::all(client.clone());
    let name = "nginx-pod-template-1a2b";
    templates
        .create(
            &PostParams::default(),
            &pod_template(name, json!({ "podtemplate-static": "true" })),
        )
        .await
        .unwrap();
    let list = all
        .list(&ListParams::default().labels("podtemplate-static=true"))
        .await
        .unwrap();
    assert_eq!(names(&list.items), [name]);
    templates
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "podtemplate": "patched" } } })),
        )
        .await
        .unwrap();
    let got = templates.get(name).await.unwrap();
    assert_eq!(
        got.metadata.labels.as_ref().unwrap()["podtemplate"],
        "patched"
    );
    templates
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    let list = all
        .list(&ListParams::default().labels("podtemplate-static=true"))
        .await
        .unwrap();
    assert!(list.items.is_empty());
}

// [sig-node] PodTemplates should delete a collection of pod templates
// [Conformance]
#[tokio::test]
async fn podtemplates_should_delete_a_collection_of_pod_templates() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "podtemplate").await;
    let templates: Api<PodTemplate> = Api::namespaced(client.clone(), &ns);
    for name in [
        "test-podtemplate-1",
        "test-podtemplate-2",
        "test-podtemplate-3",
    ] {
        templates
            .create(
                &PostParams::default(),
                &pod_template(name, json!({ "podtemplate-set": "true" })),
            )
            .await
            .unwrap();
    }
    let lp = ListParams::default().labels("podtemplate-set=true");
    assert_eq!(templates.list(&lp).await.unwrap().items.len(), 3);
    let deleted = templates
        .delete_collection(&DeleteParams::default(), &lp)
        .await
        .unwrap();
    if let Some(list) = deleted.left() {
        assert_eq!(list.items.len(), 3);
    }
    assert!(templates.list(&lp).await.unwrap().items.is_empty());
}

// [sig-node] PodTemplates should replace a pod template [Conformance]
#[tokio::test]
async fn podtemplates_should_replace_a_pod_template() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "podtemplate").await;
    let templates: Api<PodTemplate> = Api::namespaced(client.clone(), &ns);
    let name = "podtemplate-replace";
    templates
        .create(&PostParams::default(), &pod_template(name, json!({})))
        .await
        .unwrap();
    let mut pt = templates.get(name).await.unwrap();
    pt.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert("updated".into(), "true".into());
    let updated = templates
        .replace(name, &PostParams::default(), &pt)
        .await
        .unwrap();
    assert_eq!(updated.metadata.annotations.unwrap()["updated"], "true");
}

// -------------------------------------------------------------------- Leases

fn lease_spec(holder: &str, secs: i32, time: &str) -> serde_json::Value {
    json!({
        "holderIdentity": holder,
        "leaseDurationSeconds": secs,
        "acquireTime": time,
        "renewTime": time,
    })
}

// [sig-node] Lease lease API should be available [Conformance]
#[tokio::test]
async fn lease_lease_api_should_be_available() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "lease-test").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let name = "lease";
    let spec = lease_spec("holder", 30, "2025-01-02T03:04:05.123456Z");
    leases
        .create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "name": name }, "spec": spec })),
        )
        .await
        .expect("create lease");
    let got = leases.get(name).await.unwrap();
    assert_eq!(serde_json::to_value(&got.spec).unwrap(), spec);

    let mut l = got;
    let spec2 = lease_spec("holder2", 30, "2025-01-02T03:05:06.654321Z");
    l.spec = Some(obj(spec2.clone()));
    leases
        .replace(name, &PostParams::default(), &l)
        .await
        .expect("update lease");
    let got = leases.get(name).await.unwrap();
    assert_eq!(serde_json::to_value(&got.spec).unwrap(), spec2);

    let spec3 = lease_spec("holder3", 60, "2025-01-02T03:06:07.000001Z");
    leases
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec3 })),
        )
        .await
        .expect("patch lease");
    let got = leases.get(name).await.unwrap();
    assert_eq!(serde_json::to_value(&got.spec).unwrap(), spec3);

    leases
        .create(
            &PostParams::default(),
            &obj(json!({
                "metadata": { "name": "lease2", "labels": { "deletecollection": "true" } },
                "spec": spec,
            })),
        )
        .await
        .unwrap();
    assert_eq!(
        leases
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    leases
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("deletecollection=true"),
        )
        .await
        .unwrap();
    let list = leases.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&list.items), [name]);
    leases.delete(name, &DeleteParams::default()).await.unwrap();
    assert_eq!(code(leases.get(name).await.unwrap_err()), 404);
}

// --------------------------------------------------------------- LimitRanges

fn limit_range(name: &str, default_request_cpu: &str, labels: serde_json::Value) -> LimitRange {
    obj(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": { "limits": [{
            "type": "Container",
            "min": { "cpu": "100m", "memory": "10Mi", "ephemeral-storage": "100Gi" },
            "max": { "cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi" },
            "defaultRequest": { "cpu": default_request_cpu, "memory": "200Mi", "ephemeral-storage": "200Gi" },
            "default": { "cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi" },
            "maxLimitRequestRatio": {}
        }] }
    }))
}

// [sig-scheduling] LimitRange should list, patch and delete a LimitRange by
// collection [Conformance]
#[tokio::test]
async fn limitrange_should_list_patch_and_delete_a_limitrange_by_collection() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns1 = test_namespace(&client, "limitrange").await;
    let ns2 = test_namespace(&client, "e2e-limitrange-2").await;
    let name = "e2e-limitrange-9xk4";
    let lr1: Api<LimitRange> = Api::namespaced(client.clone(), &ns1);
    let lr2: Api<LimitRange> = Api::namespaced(client.clone(), &ns2);
    let all: Api<LimitRange> = Api::all(client.clone());
    lr1.create(
        &PostParams::default(),
        &limit_range(name, "200m", json!({ "e2e-test": name })),
    )
    .await
    .unwrap();
    lr2.create(
        &PostParams::default(),
        &limit_range(name, "200m", json!({ "e2e-test": name })),
    )
    .await
    .unwrap();
    let selector = format!("e2e-test={name}");
    let list = all
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 2, "{:?}", names(&list.items));

    let patched = lr1
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": { "labels": { "e2e-test": name, "e2e-lr-patched": "true" } },
                "spec": { "limits": [{
                    "type": "Container",
                    "min": { "cpu": "100m", "memory": "10Mi", "ephemeral-storage": "100Gi" },
                    "max": { "cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi" },
                    "defaultRequest": { "cpu": "300m", "memory": "300Mi", "ephemeral-storage": "300Gi" },
                    "default": { "cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi" },
                }] }
            })),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.labels.as_ref().unwrap()["e2e-lr-patched"],
        "true"
    );
    let dr = patched.spec.unwrap().limits[0]
        .default_request
        .clone()
        .unwrap();
    assert_eq!(dr["cpu"], q("300m"));
    assert_eq!(dr["memory"], q("300Mi"));

    lr1.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("e2e-lr-patched=true"),
    )
    .await
    .unwrap();
    let list = all
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(
        list.items[0].metadata.namespace.as_deref(),
        Some(ns2.as_str())
    );
}

// ----------------------------------------------------------- ServiceAccounts

// [sig-auth] ServiceAccounts should run through the lifecycle of a
// ServiceAccount [Conformance]
#[tokio::test]
async fn serviceaccounts_should_run_through_the_lifecycle_of_a_serviceaccount() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "svcaccounts").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let all: Api<ServiceAccount> = Api::all(client.clone());
    let name = "e2e-sa-a7b8c";
    let selector = "test-serviceaccount-static=true";
    let wp = WatchParams {
        bookmarks: false,
        ..WatchParams::default()
    };
    let start = all
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    let mut w = all
        .watch(
            &wp.labels(selector),
            start.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    sas.create(
        &PostParams::default(),
        &obj(json!({ "metadata": { "name": name, "labels": { "test-serviceaccount-static": "true" } } })),
    )
    .await
    .unwrap();
    match next_event(&mut w).await {
        WatchEvent::Added(sa) => assert_eq!(sa.metadata.name.as_deref(), Some(name)),
        other => panic!("expected ADDED, got {other:?}"),
    }
    sas.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "automountServiceAccountToken": false })),
    )
    .await
    .unwrap();
    match next_event(&mut w).await {
        WatchEvent::Modified(sa) => assert_eq!(sa.automount_service_account_token, Some(false)),
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    let list = all
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    let found = list
        .items
        .iter()
        .find(|sa| sa.metadata.name.as_deref() == Some(name))
        .expect("service account listed");
    assert_eq!(found.automount_service_account_token, Some(false));
    sas.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels(selector),
    )
    .await
    .unwrap();
    match next_event(&mut w).await {
        WatchEvent::Deleted(sa) => assert_eq!(sa.metadata.name.as_deref(), Some(name)),
        other => panic!("expected DELETED, got {other:?}"),
    }
}

// [sig-auth] ServiceAccounts should update a ServiceAccount [Conformance]
#[tokio::test]
async fn serviceaccounts_should_update_a_serviceaccount() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "svcaccounts").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let name = "e2e-sa-update";
    sas.create(
        &PostParams::default(),
        &obj(json!({ "metadata": { "name": name } })),
    )
    .await
    .unwrap();
    let mut sa = sas.get(name).await.unwrap();
    sa.automount_service_account_token = Some(true);
    let updated = sas
        .replace(name, &PostParams::default(), &sa)
        .await
        .unwrap();
    assert_eq!(updated.automount_service_account_token, Some(true));
    assert_eq!(
        sas.get(name).await.unwrap().automount_service_account_token,
        Some(true)
    );
}

// ------------------------------------------------------------ ResourceQuotas

fn quota(name: &str, cpu: &str, memory: &str, labels: serde_json::Value) -> ResourceQuota {
    obj(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": { "hard": { "cpu": cpu, "memory": memory } }
    }))
}

// [sig-api-machinery] ResourceQuota should be able to update and delete
// ResourceQuota. [Conformance]
#[tokio::test]
async fn resourcequota_should_be_able_to_update_and_delete_resourcequota() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "resourcequota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let name = "test-quota";
    quotas
        .create(
            &PostParams::default(),
            &quota(name, "1", "500Mi", json!({})),
        )
        .await
        .unwrap();
    let mut rq = quotas.get(name).await.unwrap();
    let hard = rq.spec.as_ref().unwrap().hard.clone().unwrap();
    assert_eq!(hard["cpu"], q("1"));
    assert_eq!(hard["memory"], q("500Mi"));
    rq.spec.as_mut().unwrap().hard = Some(
        [
            ("cpu".to_string(), q("2")),
            ("memory".to_string(), q("1Gi")),
        ]
        .into(),
    );
    quotas
        .replace(name, &PostParams::default(), &rq)
        .await
        .unwrap();
    let hard = quotas.get(name).await.unwrap().spec.unwrap().hard.unwrap();
    assert_eq!(hard["cpu"], q("2"));
    assert_eq!(hard["memory"], q("1Gi"));
    quotas.delete(name, &DeleteParams::default()).await.unwrap();
    assert_eq!(code(quotas.get(name).await.unwrap_err()), 404);
}

// [sig-api-machinery] ResourceQuota should manage the lifecycle of a
// ResourceQuota [Conformance]
#[tokio::test]
async fn resourcequota_should_manage_the_lifecycle_of_a_resourcequota() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "resourcequota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let all: Api<ResourceQuota> = Api::all(client.clone());
    let name = "e2e-rq-5kq2";
    let selector = format!("{name}=true");
    quotas
        .create(
            &PostParams::default(),
            &quota(name, "1", "500Mi", json!({ name: "true" })),
        )
        .await
        .unwrap();
    let list = all
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let patched = quotas
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": { "labels": { name: "true", "rq": "patched" } },
                "spec": { "hard": { "cpu": "1", "memory": "750Mi" } }
            })),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.as_ref().unwrap()["rq"], "patched");
    let hard = patched.spec.unwrap().hard.unwrap();
    assert_eq!(hard["memory"], q("750Mi"));
    assert_eq!(hard["cpu"], q("1"));
    quotas
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&selector),
        )
        .await
        .unwrap();
    let list = all
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    assert!(list.items.is_empty());
}

// [sig-api-machinery] ResourceQuota should apply changes to a resourcequota
// status [Conformance]
#[tokio::test]
async fn resourcequota_should_apply_changes_to_a_resourcequota_status() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "resourcequota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let name = "e2e-rq-status";
    let created = quotas
        .create(
            &PostParams::default(),
            &quota(name, "500m", "500Mi", json!({})),
        )
        .await
        .unwrap();
    // Status is not settable on create.
    assert!(created.status.as_ref().is_none_or(|s| s.hard.is_none()));

    // Update /status: hard = spec.hard.
    let mut rq = quotas.get(name).await.unwrap();
    let spec_hard = rq.spec.as_ref().unwrap().hard.clone().unwrap();
    rq.status = Some(obj(json!({ "hard": { "cpu": "500m", "memory": "500Mi" } })));
    let updated = quotas
        .replace_status(name, &PostParams::default(), &rq)
        .await
        .expect("PUT resourcequotas/status");
    assert_eq!(updated.status.unwrap().hard.unwrap(), spec_hard);

    // Patch the spec: status is untouched.
    let patched = quotas
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "hard": { "cpu": "1", "memory": "1Gi" } }, "status": { "hard": { "cpu": "9" } } })),
        )
        .await
        .unwrap();
    let new_hard = patched.spec.as_ref().unwrap().hard.clone().unwrap();
    assert_eq!(new_hard["cpu"], q("1"));
    assert_eq!(new_hard["memory"], q("1Gi"));
    assert_eq!(
        patched.status.unwrap().hard.unwrap()["cpu"],
        q("500m"),
        "a spec patch must not change status"
    );

    // Patch /status: hard = the new spec.hard.
    let patched = quotas
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "hard": { "cpu": "1", "memory": "1Gi" } } })),
        )
        .await
        .expect("PATCH resourcequotas/status");
    assert_eq!(patched.status.unwrap().hard.unwrap(), new_hard);

    let got = quotas
        .get_status(name)
        .await
        .expect("GET resourcequotas/status");
    assert_eq!(got.status.unwrap().hard.unwrap(), new_hard);

    // Repatch /status, also trying to change the spec: only status changes.
    let repatched = quotas
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": { "hard": { "cpu": "7" } },
                "status": { "hard": { "cpu": "2", "memory": "2Gi" } }
            })),
        )
        .await
        .unwrap();
    let st = repatched.status.unwrap().hard.unwrap();
    assert_eq!(st["cpu"], q("2"));
    assert_eq!(st["memory"], q("2Gi"));
    assert_eq!(repatched.spec.unwrap().hard.unwrap(), new_hard);
    assert_eq!(
        quotas.get(name).await.unwrap().spec.unwrap().hard.unwrap(),
        new_hard
    );
}
