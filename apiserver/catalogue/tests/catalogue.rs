//! Checks the generated table against the upstream OpenAPI document and upstream facts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rkube_catalogue::discovery::{self, AGGREGATED_V2, AGGREGATED_V2BETA1};
use rkube_catalogue::{
    Catalogue, RuntimeConfig, RuntimeConfigError, Stability, storage_version_hash,
};
use serde_json::{Value, json};

fn reference() -> Option<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/kubernetes-openapi-v2.json");
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).expect("reference OpenAPI parses")),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "reference {} missing in CI: {e}",
                path.display()
            );
            eprintln!("skipping: reference {} not readable: {e}", path.display());
            None
        }
    }
}

type Key = (String, String, String);

/// Independent re-derivation of (verbs, namespaced) per GA resource from the OpenAPI paths.
fn ga_resources_from_openapi(doc: &Value) -> BTreeMap<Key, (BTreeSet<String>, bool)> {
    let mut out: BTreeMap<Key, (BTreeSet<String>, bool)> = BTreeMap::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let (group, version, rest) = if let Some(r) = path.strip_prefix("/api/v1/") {
            ("", "v1", r)
        } else if let Some(r) = path.strip_prefix("/apis/") {
            let mut it = r.splitn(3, '/');
            match (it.next(), it.next(), it.next()) {
                (Some(g), Some(v), Some(r)) if !r.is_empty() => (g, v, r),
                _ => continue,
            }
        } else {
            continue;
        };
        if Stability::of_version(version) != Stability::Ga {
            continue;
        }
        let mut segs: Vec<&str> = rest.split('/').collect();
        let watch = segs[0] == "watch";
        if watch {
            segs.remove(0);
        }
        let namespaced = segs.len() >= 3 && segs[0] == "namespaces" && segs[1] == "{namespace}";
        if namespaced {
            segs.drain(..2);
        }
        if segs[0].is_empty() || segs[0].starts_with('{') || segs.len() > 2 {
            continue; // subresources are checked separately
        }
        let entry = out
            .entry((group.into(), version.into(), segs[0].into()))
            .or_default();
        entry.1 |= namespaced;
        for (method, op) in item.as_object().expect("path item") {
            let Some(action) = op.get("x-kubernetes-action").and_then(Value::as_str) else {
                continue;
            };
            let verb = match (action, segs.len(), method.as_str()) {
                ("watch" | "watchlist", _, _) => "watch",
                ("list", _, _) => "list",
                ("get", _, _) => "get",
                ("post", _, _) => "create",
                ("put", _, _) => "update",
                ("patch", _, _) => "patch",
                ("delete", _, _) => "delete",
                ("deletecollection", _, _) => "deletecollection",
                _ => continue,
            };
            entry.0.insert(verb.to_owned());
        }
    }
    out
}

#[test]
fn every_ga_openapi_resource_is_builtin_with_same_verbs_and_scope() {
    let Some(doc) = reference() else { return };
    let cat = Catalogue::builtin();
    let expected = ga_resources_from_openapi(&doc);
    assert!(
        expected.len() > 50,
        "suspiciously few GA resources: {}",
        expected.len()
    );
    for ((g, v, plural), (verbs, namespaced)) in &expected {
        let r = cat
            .find(g, v, plural)
            .unwrap_or_else(|| panic!("{g}/{v} {plural} missing"));
        let got: BTreeSet<String> = r.verbs.iter().cloned().collect();
        assert_eq!(&got, verbs, "verbs of {g}/{v} {plural}");
        assert_eq!(r.namespaced, *namespaced, "namespaced of {g}/{v} {plural}");
    }
    // And nothing default-enabled that upstream does not serve.
    for r in cat.resources() {
        assert!(
            expected.contains_key(&(r.group.clone(), r.version.clone(), r.plural.clone())),
            "extra {}",
            r.plural
        );
    }
}

#[test]
fn generated_table_is_fresh() {
    if reference().is_none() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Ok(status) = std::process::Command::new("python3")
        .arg("hack/gen/catalogue.py")
        .arg("--check")
        .current_dir(&root)
        .status()
    else {
        eprintln!("skipping: python3 not available");
        return;
    };
    assert!(
        status.success(),
        "src/builtin.rs is stale: run python3 hack/gen/catalogue.py"
    );
}

#[test]
fn short_names_match_upstream() {
    let cat = Catalogue::builtin();
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("", "v1", "pods", &["po"]),
        ("", "v1", "services", &["svc"]),
        ("", "v1", "namespaces", &["ns"]),
        ("", "v1", "nodes", &["no"]),
        ("", "v1", "configmaps", &["cm"]),
        ("", "v1", "serviceaccounts", &["sa"]),
        ("", "v1", "persistentvolumes", &["pv"]),
        ("", "v1", "persistentvolumeclaims", &["pvc"]),
        ("", "v1", "endpoints", &["ep"]),
        ("", "v1", "events", &["ev"]),
        ("", "v1", "limitranges", &["limits"]),
        ("", "v1", "resourcequotas", &["quota"]),
        ("", "v1", "replicationcontrollers", &["rc"]),
        ("", "v1", "componentstatuses", &["cs"]),
        ("", "v1", "secrets", &[]),
        ("apps", "v1", "deployments", &["deploy"]),
        ("apps", "v1", "replicasets", &["rs"]),
        ("apps", "v1", "statefulsets", &["sts"]),
        ("apps", "v1", "daemonsets", &["ds"]),
        ("batch", "v1", "cronjobs", &["cj"]),
        ("batch", "v1", "jobs", &[]),
        ("events.k8s.io", "v1", "events", &["ev"]),
        ("networking.k8s.io", "v1", "ingresses", &["ing"]),
        ("networking.k8s.io", "v1", "networkpolicies", &["netpol"]),
        ("policy", "v1", "poddisruptionbudgets", &["pdb"]),
        ("scheduling.k8s.io", "v1", "priorityclasses", &["pc"]),
        ("storage.k8s.io", "v1", "storageclasses", &["sc"]),
        (
            "certificates.k8s.io",
            "v1",
            "certificatesigningrequests",
            &["csr"],
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            &["crd", "crds"],
        ),
        ("autoscaling", "v2", "horizontalpodautoscalers", &["hpa"]),
        ("autoscaling", "v1", "horizontalpodautoscalers", &["hpa"]),
    ];
    for (g, v, plural, short) in cases {
        let r = cat
            .find(g, v, plural)
            .unwrap_or_else(|| panic!("{g}/{v} {plural} missing"));
        assert_eq!(r.short_names, *short, "{plural}");
    }
}

#[test]
fn categories_singulars_and_kinds() {
    let cat = Catalogue::builtin();
    let all: BTreeSet<&str> = cat
        .resources()
        .into_iter()
        .filter(|r| r.categories.iter().any(|c| c == "all"))
        .map(|r| r.plural.as_str())
        .collect();
    let want: BTreeSet<&str> = [
        "pods",
        "services",
        "replicationcontrollers",
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
        "jobs",
        "cronjobs",
        "horizontalpodautoscalers",
    ]
    .into();
    assert_eq!(all, want);
    let crd = cat
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("crd");
    assert_eq!(crd.categories, ["api-extensions"]);
    let ep = cat.find_kind("", "v1", "Endpoints").expect("endpoints");
    assert_eq!(
        (
            ep.plural.as_str(),
            ep.singular.as_str(),
            ep.list_kind.as_str()
        ),
        ("endpoints", "endpoints", "EndpointsList")
    );
}

#[test]
fn storage_prefixes_and_shared_storage() {
    let cat = Catalogue::builtin();
    let prefix = |g: &str, v: &str, p: &str| cat.find(g, v, p).expect(p).storage_prefix.clone();
    assert_eq!(prefix("", "v1", "nodes"), "minions");
    assert_eq!(prefix("", "v1", "services"), "services/specs");
    assert_eq!(prefix("", "v1", "endpoints"), "services/endpoints");
    assert_eq!(prefix("", "v1", "replicationcontrollers"), "controllers");
    assert_eq!(prefix("networking.k8s.io", "v1", "ingresses"), "ingress");
    assert_eq!(prefix("apps", "v1", "deployments"), "deployments");
    assert_eq!(
        prefix("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
        "apiextensions.k8s.io/customresourcedefinitions"
    );
    // Shared storage: same prefix and same storage version hash.
    let ev = cat.find("", "v1", "events").expect("events");
    let ev2 = cat
        .find("events.k8s.io", "v1", "events")
        .expect("events.k8s.io");
    assert_eq!(
        (&ev.storage_prefix, &ev.storage_version_hash),
        (&ev2.storage_prefix, &ev2.storage_version_hash)
    );
    let h1 = cat
        .find("autoscaling", "v1", "horizontalpodautoscalers")
        .expect("hpa v1");
    let h2 = cat
        .find("autoscaling", "v2", "horizontalpodautoscalers")
        .expect("hpa v2");
    assert_eq!(h1.storage_version_hash, h2.storage_version_hash);
    assert_eq!(
        h2.storage_version_hash,
        storage_version_hash("autoscaling", "v2", "HorizontalPodAutoscaler")
    );
    // Virtual resources have no storage.
    for (g, p) in [
        ("", "bindings"),
        ("", "componentstatuses"),
        ("authentication.k8s.io", "tokenreviews"),
    ] {
        let r = cat.find(g, "v1", p).expect(p);
        assert!(!r.has_storage() && r.storage_version_hash.is_empty(), "{p}");
    }
    assert_eq!(
        cat.find("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
            .expect("ssar")
            .verbs,
        ["create"]
    );
}

#[test]
fn storage_version_hashes_match_kind_for_ga_resources() {
    let cat = Catalogue::builtin();
    for r in cat.resources() {
        // Cohabiting (events), multi-version (HPA) and storage-overridden (MAP: v1beta1) resources differ.
        let elsewhere = [
            "events.k8s.io",
            "autoscaling",
            "admissionregistration.k8s.io",
        ]
        .contains(&r.group.as_str())
            && (r.group != "admissionregistration.k8s.io"
                || r.plural.starts_with("mutatingadmissionpolic"));
        if r.has_storage() && !elsewhere {
            assert_eq!(
                r.storage_version_hash,
                storage_version_hash(&r.group, &r.version, &r.kind),
                "{}",
                r.plural
            );
        }
    }
}

#[test]
fn only_ga_by_default_and_preferred_versions() {
    let cat = Catalogue::builtin();
    assert!(
        cat.resources()
            .iter()
            .all(|r| r.stability == Stability::Ga && r.enabled_by_default)
    );
    assert_eq!(cat.preferred_version("autoscaling"), Some("v2"));
    assert_eq!(cat.versions("autoscaling"), ["v2", "v1"]);
    assert!(
        cat.find("storage.k8s.io", "v1beta1", "volumeattributesclasses")
            .is_none()
    );
    let gvs: Vec<String> = cat
        .group_versions()
        .iter()
        .map(|gv| gv.api_version())
        .collect();
    assert_eq!(
        &gvs[..4],
        [
            "v1",
            "apiregistration.k8s.io/v1",
            "apps/v1",
            "events.k8s.io/v1"
        ]
    );
}

#[test]
fn runtime_config_parsing() {
    let rc = RuntimeConfig::parse("api/all=false, api/v1=true,batch/v1").expect("parses");
    assert_eq!(rc.entries.len(), 3);
    assert!(matches!(
        RuntimeConfig::parse("apps/v1=maybe"),
        Err(RuntimeConfigError::InvalidValue { .. })
    ));
    assert!(matches!(
        RuntimeConfig::parse("nonsense"),
        Err(RuntimeConfigError::InvalidKey(_))
    ));
    assert!(matches!(
        Catalogue::with_runtime_config("foo.example/v1=true"),
        Err(RuntimeConfigError::UnknownGroupVersion(gv)) if gv == "foo.example/v1"
    ));

    let beta = Catalogue::with_runtime_config("api/beta=true").expect("beta");
    assert!(
        beta.find("storage.k8s.io", "v1beta1", "volumeattributesclasses")
            .is_some()
    );
    assert!(
        beta.find("resource.k8s.io", "v1alpha3", "devicetaintrules")
            .is_none()
    );

    let one =
        Catalogue::with_runtime_config("resource.k8s.io/v1beta2=true,batch/v1=false").expect("gv");
    assert!(
        one.find("resource.k8s.io", "v1beta2", "resourceclaims")
            .is_some()
    );
    assert!(one.find("batch", "v1", "jobs").is_none());
    assert_eq!(one.preferred_version("resource.k8s.io"), Some("v1"));

    let res = Catalogue::with_runtime_config("api/all=false,api/v1=true,apps/v1/deployments=true")
        .expect("res");
    assert_eq!(res.groups(), ["", "apps"]);
    assert_eq!(res.resources_in("apps", "v1").len(), 1);

    let all = Catalogue::with_runtime_config("api/all=true,api/alpha=false").expect("all");
    assert!(
        all.find("coordination.k8s.io", "v1beta1", "leasecandidates")
            .is_some()
    );
    assert!(
        all.find("coordination.k8s.io", "v1alpha2", "leasecandidates")
            .is_none()
    );
}

#[test]
fn add_and_remove_crd() {
    let mut cat = Catalogue::builtin();
    let mut widget = cat
        .find("apps", "v1", "deployments")
        .expect("deploy")
        .clone();
    widget.group = "example.com".into();
    widget.version = "v1".into();
    widget.plural = "widgets".into();
    widget.kind = "Widget".into();
    widget.subresources.clear();
    assert!(cat.add(widget.clone()).is_none());
    let mut beta = widget.clone();
    beta.version = "v1beta1".into();
    cat.add(beta);
    assert_eq!(cat.versions("example.com"), ["v1", "v1beta1"]);
    assert_eq!(
        cat.groups().last(),
        Some(&"example.com"),
        "CRD groups sort by default priority 1000"
    );
    assert_eq!(cat.find_kind("example.com", "v1", "Widget"), Some(&widget));
    assert!(cat.remove("example.com", "v1", "widgets").is_some());
    assert!(cat.remove("example.com", "v1beta1", "widgets").is_some());
    assert!(!cat.groups().contains(&"example.com"));
}

#[test]
fn legacy_discovery_documents() {
    let cat = Catalogue::builtin();
    let api = discovery::legacy_core_versions("10.0.0.1:6443");
    assert_eq!(
        api,
        json!({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"10.0.0.1:6443"}]})
    );
    let bytes = discovery::legacy_core_versions_bytes("h:1");
    assert!(
        String::from_utf8_lossy(&bytes).starts_with(r#"{"kind":"APIVersions","versions":["v1"]"#)
    );

    let apis = discovery::group_list(&cat);
    assert_eq!(apis["kind"], "APIGroupList");
    assert_eq!(apis["groups"][0]["name"], "apiregistration.k8s.io");
    let autoscaling = apis["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "autoscaling")
        .expect("as");
    assert_eq!(
        autoscaling["preferredVersion"],
        json!({"groupVersion":"autoscaling/v2","version":"v2"})
    );
    assert_eq!(autoscaling["versions"][1]["groupVersion"], "autoscaling/v1");
    assert!(
        apis["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .all(|g| g["name"] != "")
    );
    assert_eq!(
        discovery::api_group(&cat, "apps").expect("apps")["kind"],
        "APIGroup"
    );
    assert!(discovery::api_group(&cat, "nope").is_none());

    let core = discovery::resource_list(&cat, "", "v1").expect("core");
    assert_eq!(core["groupVersion"], "v1");
    assert!(core.get("apiVersion").is_none());
    let res = core["resources"].as_array().expect("resources");
    let names: Vec<&str> = res.iter().filter_map(|r| r["name"].as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let pods = res.iter().find(|r| r["name"] == "pods").expect("pods");
    assert_eq!(
        pods,
        &json!({"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod",
            "verbs":["create","delete","deletecollection","get","list","patch","update","watch"],
            "shortNames":["po"],"categories":["all"],"storageVersionHash":"xPOwRZ+Yhw8="})
    );
    let status = res
        .iter()
        .find(|r| r["name"] == "pods/status")
        .expect("pods/status");
    assert_eq!(
        status,
        &json!({"name":"pods/status","singularName":"","namespaced":true,"kind":"Pod","verbs":["get","patch","update"]})
    );
    let eviction = res
        .iter()
        .find(|r| r["name"] == "pods/eviction")
        .expect("eviction");
    assert_eq!(
        (eviction["group"].as_str(), eviction["version"].as_str()),
        (Some("policy"), Some("v1"))
    );
    let binding = res
        .iter()
        .find(|r| r["name"] == "bindings")
        .expect("bindings");
    assert_eq!(binding["verbs"], json!(["create"]));
    assert!(binding.get("storageVersionHash").is_none());

    let apps = discovery::resource_list(&cat, "apps", "v1").expect("apps");
    assert_eq!(
        (apps["apiVersion"].as_str(), apps["groupVersion"].as_str()),
        (Some("v1"), Some("apps/v1"))
    );
    let scale = apps["resources"]
        .as_array()
        .expect("r")
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .expect("scale");
    assert_eq!(scale["group"], "autoscaling");
    assert_eq!(scale["kind"], "Scale");
    let bytes = discovery::resource_list_bytes(&cat, "apps", "v1").expect("bytes");
    assert!(
        String::from_utf8_lossy(&bytes)
            .starts_with(r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"apps/v1""#)
    );
    assert!(discovery::resource_list(&cat, "apps", "v1beta1").is_none());
}

#[test]
fn aggregated_discovery_documents() {
    let cat = Catalogue::builtin();
    let core = discovery::aggregated(&cat, true, AGGREGATED_V2);
    assert_eq!(core["kind"], "APIGroupDiscoveryList");
    assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
    assert_eq!(core["metadata"], json!({}));
    let items = core["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"], json!({}));
    let v1 = &items[0]["versions"][0];
    assert_eq!(
        (v1["version"].as_str(), v1["freshness"].as_str()),
        (Some("v1"), Some("Current"))
    );
    let pods = v1["resources"]
        .as_array()
        .expect("res")
        .iter()
        .find(|r| r["resource"] == "pods")
        .expect("pods");
    assert_eq!(
        pods["responseKind"],
        json!({"group":"","version":"v1","kind":"Pod"})
    );
    assert_eq!(
        (pods["scope"].as_str(), pods["singularResource"].as_str()),
        (Some("Namespaced"), Some("pod"))
    );
    assert_eq!(pods["shortNames"], json!(["po"]));
    let eviction = pods["subresources"]
        .as_array()
        .expect("subs")
        .iter()
        .find(|s| s["subresource"] == "eviction")
        .expect("ev");
    assert_eq!(
        eviction,
        &json!({"subresource":"eviction","responseKind":{"group":"policy","version":"v1","kind":"Eviction"},"verbs":["create"]})
    );

    let apis = discovery::aggregated(&cat, false, AGGREGATED_V2BETA1);
    assert_eq!(apis["apiVersion"], "apidiscovery.k8s.io/v2beta1");
    let groups = apis["items"].as_array().expect("items");
    assert!(groups.iter().all(|g| g["metadata"]["name"] != ""));
    let autoscaling = groups
        .iter()
        .find(|g| g["metadata"]["name"] == "autoscaling")
        .expect("autoscaling");
    assert_eq!(autoscaling["versions"][0]["version"], "v2");
    assert_eq!(autoscaling["versions"][1]["version"], "v1");
    let nodes_scope = groups
        .iter()
        .find(|g| g["metadata"]["name"] == "storage.k8s.io")
        .and_then(|g| g["versions"][0]["resources"].as_array())
        .and_then(|r| r.iter().find(|r| r["resource"] == "storageclasses"))
        .map(|r| r["scope"].clone());
    assert_eq!(nodes_scope, Some(json!("Cluster")));
    let bytes = discovery::aggregated_bytes(&cat, true, AGGREGATED_V2);
    assert!(String::from_utf8_lossy(&bytes).starts_with(r#"{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":[{"metadata":{},"versions":[{"version":"v1","resources":[{"resource":"bindings","responseKind":{"group":"","version":"v1","kind":"Binding"},"scope":"Namespaced","singularResource":"binding","verbs":["create"]}"#));
}
