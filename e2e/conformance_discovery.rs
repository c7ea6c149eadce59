//! Conformance (sig-api-machinery, sig-cli): discovery documents,
//! aggregated discovery, server version, kubectl api-versions/version, and
//! Table negotiation for a backend without metadata.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroup, APIGroupList, APIResourceList};
use kube::Discovery;
use serde_json::{Value, json};

use crate::conformance_util::raw;
use crate::harness::Cluster;

/// The GVRs upstream's discovery tests expect (`aggregated_discovery.go`,
/// `discovery.go`).
const EXPECTED_GVR: &[(&str, &str, &str)] = &[
    ("", "v1", "namespaces"),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
    ),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
    ("apiregistration.k8s.io", "v1", "apiservices"),
    ("apps", "v1", "deployments"),
    ("authentication.k8s.io", "v1", "tokenreviews"),
    ("authorization.k8s.io", "v1", "selfsubjectaccessreviews"),
    ("autoscaling", "v1", "horizontalpodautoscalers"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("batch", "v1", "jobs"),
    ("certificates.k8s.io", "v1", "certificatesigningrequests"),
    ("coordination.k8s.io", "v1", "leases"),
    ("discovery.k8s.io", "v1", "endpointslices"),
    ("events.k8s.io", "v1", "events"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("node.k8s.io", "v1", "runtimeclasses"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("scheduling.k8s.io", "v1", "priorityclasses"),
    ("storage.k8s.io", "v1", "csinodes"),
];

const AGGREGATED_ACCEPT: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn gvr_in_aggregated(list: &Value, group: &str, version: &str, resource: &str) -> bool {
    list["items"].as_array().into_iter().flatten().any(|g| {
        g["metadata"]["name"].as_str().unwrap_or("") == group
            && g["versions"].as_array().into_iter().flatten().any(|v| {
                v["version"] == version
                    && v["resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| r["resource"] == resource)
            })
    })
}

// [sig-api-machinery] AggregatedDiscovery should support raw aggregated
// discovery endpoint Accept headers [Conformance]
#[tokio::test]
async fn aggregated_discovery_should_support_raw_aggregated_discovery_endpoint_accept_headers() {
    let c = Cluster::up().await;
    let client = c.client().await;
    for path in ["/apis", "/api"] {
        let (status, ct, body) = raw(&client, "GET", path, Some(AGGREGATED_ACCEPT), None).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(
            ct.starts_with("application/json")
                && ct.contains("g=apidiscovery.k8s.io")
                && ct.contains("v=v2")
                && ct.contains("as=APIGroupDiscoveryList"),
            "{path}: content type {ct}"
        );
        let list: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(list["kind"], "APIGroupDiscoveryList", "{path}");
        assert_eq!(list["apiVersion"], "apidiscovery.k8s.io/v2", "{path}");
        for (g, v, r) in EXPECTED_GVR {
            if (path == "/api") == g.is_empty() {
                assert!(
                    gvr_in_aggregated(&list, g, v, r),
                    "{path}: expected {g}/{v}/{r} in aggregated discovery"
                );
            }
        }
    }
}

// [sig-api-machinery] AggregatedDiscovery should support aggregated discovery
// interface [Conformance]
#[tokio::test]
async fn aggregated_discovery_should_support_aggregated_discovery_interface() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let discovery = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    for (g, v, r) in EXPECTED_GVR {
        let group = discovery
            .get(g)
            .unwrap_or_else(|| panic!("group {g:?} missing from aggregated discovery"));
        assert!(
            group.versions().any(|x| x == *v),
            "{g}/{v} missing from aggregated discovery"
        );
        assert!(
            group
                .versioned_resources(v)
                .iter()
                .any(|(ar, _)| ar.plural == *r),
            "{g}/{v}/{r} missing from aggregated discovery"
        );
    }
    // The server groups (the legacy group list) agree.
    let groups = client.list_api_groups().await.unwrap();
    for (g, v, _) in EXPECTED_GVR.iter().filter(|(g, _, _)| !g.is_empty()) {
        assert!(
            groups
                .groups
                .iter()
                .any(|x| x.name == *g && x.versions.iter().any(|gv| gv.version == *v)),
            "{g}/{v} missing from /apis"
        );
    }
    let core = client.list_core_api_versions().await.unwrap();
    assert!(core.versions.contains(&"v1".to_string()), "{core:?}");
}

// [sig-api-machinery] Discovery should validate PreferredVersion for each
// APIGroup [Conformance]
#[tokio::test]
async fn discovery_should_validate_preferred_version_for_each_api_group() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let (status, _, body) = raw(&client, "GET", "/apis/", None, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let list: APIGroupList = serde_json::from_slice(&body).unwrap();
    assert!(!list.groups.is_empty(), "Missing APIGroups");
    for group in &list.groups {
        if group.name.ends_with(".example.com") {
            continue;
        }
        let path = format!("/apis/{}/", group.name);
        let (status, _, body) = raw(&client, "GET", &path, None, None).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let check: APIGroup = serde_json::from_slice(&body).unwrap();
        assert!(
            !check.versions.is_empty(),
            "No version found for {}",
            group.name
        );
        let preferred = check
            .preferred_version
            .as_ref()
            .unwrap_or_else(|| panic!("{path}: no preferredVersion"));
        assert!(
            check
                .versions
                .iter()
                .any(|v| v.group_version == preferred.group_version),
            "{path}: PreferredVersion {} not in {:?}",
            preferred.group_version,
            check.versions
        );
    }
}

// [sig-api-machinery] Discovery should locate the groupVersion and a
// resource within each APIGroup [Conformance]
#[tokio::test]
async fn discovery_should_locate_the_group_version_and_a_resource_within_each_api_group() {
    let c = Cluster::up().await;
    let client = c.client().await;
    for (g, v, r) in EXPECTED_GVR {
        let path = if g.is_empty() {
            format!("/api/{v}")
        } else {
            format!("/apis/{g}/{v}")
        };
        let (status, _, body) = raw(&client, "GET", &path, None, None).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let list: APIResourceList = serde_json::from_slice(&body).unwrap();
        let gv = if g.is_empty() {
            v.to_string()
        } else {
            format!("{g}/{v}")
        };
        assert_eq!(list.group_version, gv, "{path}");
        assert!(
            list.resources.iter().any(|x| x.name == *r),
            "resource {r:?} not found in {path}"
        );
    }
}

// [sig-api-machinery] server version should find the server version
// [Conformance]
#[tokio::test]
async fn server_version_should_find_the_server_version() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let info = client.apiserver_version().await.expect("/version");
    assert!(!info.git_version.is_empty(), "{info:?}");
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    assert!(
        digits(&info.major),
        "major {:?} is not an integer",
        info.major
    );
    assert!(
        digits(&info.minor),
        "minor {:?} is not an integer",
        info.minor
    );
}

// [sig-cli] Kubectl client Kubectl api-versions should check if v1 is in
// available api versions [Conformance]
#[tokio::test]
async fn kubectl_api_versions_should_check_if_v1_is_in_available_api_versions() {
    let c = Cluster::up().await;
    let out = c.kubectl_ok(&["api-versions"]);
    assert!(out.lines().any(|l| l.trim() == "v1"), "{out}");
    assert!(out.lines().any(|l| l.trim() == "apps/v1"), "{out}");
}

// [sig-cli] Kubectl client Kubectl version should check is all data is
// printed [Conformance]
#[tokio::test]
async fn kubectl_version_should_check_is_all_data_is_printed() {
    let c = Cluster::up().await;
    let out = c.kubectl_ok(&["version"]);
    for item in ["Client Version:", "Server Version:"] {
        assert!(out.contains(item), "missing {item:?} in {out}");
    }
    let v: Value = serde_json::from_str(&c.kubectl_ok(&["version", "-o", "json"])).unwrap();
    for key in ["major", "minor", "gitVersion", "gitCommit", "platform"] {
        assert!(
            v["serverVersion"][key]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "serverVersion.{key} missing: {v}"
        );
    }
}

// [sig-api-machinery] Servers with support for Table transformation should
// return a 406 for a backend which does not implement metadata [Conformance]
#[tokio::test]
async fn table_transformation_should_return_a_406_for_a_backend_which_does_not_implement_metadata()
{
    let c = Cluster::up().await;
    let client = c.client().await;
    let sar = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": { "nonResourceAttributes": { "path": "/", "verb": "get" } }
    });
    let (status, _, body) = raw(
        &client,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some("application/json;as=Table;v=v1;g=meta.k8s.io"),
        Some(sar),
    )
    .await;
    assert_eq!(status, 406, "{}", String::from_utf8_lossy(&body));
    let st: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(st["kind"], "Status", "{st}");
    assert_eq!(st["code"], 406, "{st}");
}
