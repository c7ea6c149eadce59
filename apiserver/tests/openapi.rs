//! The served OpenAPI documents against upstream's v1.36 document: every
//! definition's properties and x-kubernetes-* extensions, references,
//! the v3 and protobuf forms, and the caching headers.

use std::path::PathBuf;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use rkube_apiserver::openapi::{DEFINITIONS, OpenApi, PROTOBUF_V2, build_v2, build_v3_document};
use rkube_catalogue::Catalogue;
use serde_json::{Map, Value};

fn reference() -> Option<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/kubernetes-openapi-v2.json");
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

fn v2_json(cat: &Catalogue) -> Value {
    let docs = build_v2(cat, &Map::new());
    serde_json::from_slice(&docs.json.bytes).expect("v2 JSON parses")
}

fn extensions(v: &Value) -> Map<String, Value> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with("x-kubernetes-"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_definition_matches_the_reference() {
    let Some(reference) = reference() else { return };
    let cat = Catalogue::all_builtin();
    let ours = v2_json(&cat);
    let ours = ours["definitions"].as_object().expect("definitions");
    let theirs = reference["definitions"].as_object().expect("definitions");
    let mut compared = 0;
    let mut missing = Vec::new();
    for (name, want) in theirs {
        let Some(got) = ours.get(name) else {
            missing.push(name.clone());
            continue;
        };
        compared += 1;
        assert_eq!(got.get("type"), want.get("type"), "{name}: type");
        assert_eq!(got.get("format"), want.get("format"), "{name}: format");
        assert_eq!(
            got.get("required"),
            want.get("required"),
            "{name}: required"
        );
        assert_eq!(
            got.get("description"),
            want.get("description"),
            "{name}: description"
        );
        assert_eq!(extensions(got), extensions(want), "{name}: extensions");
        let (gp, wp) = (&got["properties"], &want["properties"]);
        assert_eq!(
            gp.as_object().map(|m| m.keys().collect::<Vec<_>>()),
            wp.as_object().map(|m| m.keys().collect::<Vec<_>>()),
            "{name}: property names"
        );
        for (prop, wschema) in wp.as_object().into_iter().flatten() {
            let gschema = &gp[prop];
            for k in [
                "type",
                "format",
                "$ref",
                "items",
                "additionalProperties",
                "description",
            ] {
                assert_eq!(gschema.get(k), wschema.get(k), "{name}.{prop}: {k}");
            }
            assert_eq!(
                extensions(gschema),
                extensions(wschema),
                "{name}.{prop}: extensions"
            );
        }
    }
    // Definitions no served path reaches (discovery and watch-path types)
    // are left out, as upstream leaves out what its paths do not use; every
    // kind the catalogue serves must be there.
    for name in &missing {
        let gvks = theirs[name]["x-kubernetes-group-version-kind"].as_array();
        for g in gvks.into_iter().flatten() {
            let s = |k: &str| g[k].as_str().unwrap_or_default().to_owned();
            let served = cat.resources().iter().any(|r| {
                r.group == s("group")
                    && r.version == s("version")
                    && (r.kind == s("kind") || r.list_kind == s("kind"))
            });
            assert!(!served, "{name} is served but missing from /openapi/v2");
        }
    }
    assert!(missing.is_empty(), "not reached by any path: {missing:?}");
    assert_eq!(compared, theirs.len());
    // The ones kubectl needs for its checks.
    for name in [
        "io.k8s.api.apps.v1.Deployment",
        "io.k8s.api.apps.v1.DeploymentStrategy",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
        "io.k8s.api.core.v1.PodSpec",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    ] {
        assert!(ours.contains_key(name), "{name} missing");
    }
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x.as_str()) {
                    ("$ref", Some(r)) => out.push(r.to_owned()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn paths_and_operations_match_the_reference() {
    let Some(reference) = reference() else { return };
    let ours = v2_json(&Catalogue::all_builtin());
    let (ours, theirs) = (&ours["paths"], &reference["paths"]);
    let mut problems = Vec::new();
    for (path, want) in theirs.as_object().expect("paths") {
        // The paths of servers rkube does not run yet (logs, service
        // account issuer discovery).
        if path.starts_with("/logs/")
            || path.starts_with("/openid/")
            || path.starts_with("/.well-known/")
        {
            continue;
        }
        let Some(got) = ours.get(path) else {
            problems.push(format!("missing {path}"));
            continue;
        };
        for (method, wop) in want.as_object().expect("path item") {
            if method == "parameters" {
                let names = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            let p = match p.get("$ref").and_then(Value::as_str) {
                                Some(r) => {
                                    &reference["parameters"][r.rsplit('/').next().unwrap_or(r)]
                                }
                                None => p,
                            };
                            p["name"].as_str().unwrap_or("").to_owned()
                        })
                        .collect()
                };
                let (mut g, mut w) = (names(&got["parameters"]), names(wop));
                g.sort();
                w.sort();
                if g != w {
                    problems.push(format!("{path}: parameters {g:?} != {w:?}"));
                }
                continue;
            }
            let gop = &got[method];
            for k in [
                "operationId",
                "x-kubernetes-action",
                "x-kubernetes-group-version-kind",
                "consumes",
                "produces",
                "tags",
            ] {
                if gop.get(k) != wop.get(k) {
                    problems.push(format!(
                        "{method} {path}: {k} {:?} != {:?}",
                        gop.get(k),
                        wop.get(k)
                    ));
                }
            }
            let schema = |op: &Value| op["responses"]["200"]["schema"].clone();
            if schema(gop) != schema(wop) {
                problems.push(format!(
                    "{method} {path}: 200 schema {} != {}",
                    schema(gop),
                    schema(wop)
                ));
            }
        }
    }
    for path in ours.as_object().expect("paths").keys() {
        if theirs.get(path).is_none() {
            problems.push(format!("extra {path}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_table_holds_every_reference_definition() {
    let Some(reference) = reference() else { return };
    let theirs = reference["definitions"].as_object().expect("definitions");
    assert_eq!(DEFINITIONS.len(), theirs.len());
    for (name, want) in theirs {
        assert_eq!(DEFINITIONS.get(name).as_ref(), Some(want), "{name}");
    }
}

#[test]
fn every_reference_resolves() {
    let cat = Catalogue::builtin();
    let doc = v2_json(&cat);
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let name = r.strip_prefix("#/definitions/").expect("v2 ref prefix");
        assert!(
            doc["definitions"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
    let index = OpenApi::default().v3_index(&cat).expect("index");
    let index: Value = serde_json::from_slice(&index).expect("index parses");
    let keys: Vec<&String> = index["paths"].as_object().expect("paths").keys().collect();
    assert!(keys.len() > 20, "{keys:?}");
    for key in keys {
        let d = build_v3_document(&cat, &Map::new(), key).expect("a document per key");
        let doc: Value = serde_json::from_slice(&d).expect("v3 JSON parses");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in &all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{key}: v3 ref {r}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{key}: {r} does not resolve"
            );
        }
    }
}

#[test]
fn v3_group_documents_have_schemas_and_patch_metadata() {
    let cat = Catalogue::builtin();
    let index = OpenApi::default().v3_index(&cat).expect("index");
    let index: Value = serde_json::from_slice(&index).expect("index parses");
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("url");
    let hash = url
        .strip_prefix("/openapi/v3/apis/apps/v1?hash=")
        .expect("hashed URL");
    assert_eq!(hash.len(), 128, "SHA-512 in hex");
    for key in ["api", "apis", "version", "apis/apps", "api/v1"] {
        assert!(index["paths"].get(key).is_some(), "{key} in the index");
    }
    let apps = build_v3_document(&cat, &Map::new(), "apis/apps/v1").expect("apps/v1");
    let doc: Value = serde_json::from_slice(&apps).expect("apps/v1 parses");
    let schemas = &doc["components"]["schemas"];
    let dep = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        dep["x-kubernetes-group-version-kind"][0]["kind"], "Deployment",
        "{dep}"
    );
    // A described reference is wrapped in allOf, as upstream's v3.
    assert_eq!(
        dep["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    // Unions as upstream's v3 (OpenAPIV3OneOfTypes).
    let ios = &schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["format"], "int-or-string");
    assert_eq!(
        ios["oneOf"],
        serde_json::json!([{ "type": "integer" }, { "type": "string" }])
    );
    assert!(ios.get("type").is_none());
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert!(
        patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some()
    );
    let params: Vec<&str> = patch["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(params.contains(&"fieldValidation"), "{params:?}");
    assert_eq!(
        patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    let core = build_v3_document(&cat, &Map::new(), "api/v1").expect("api/v1");
    let core: Value = serde_json::from_slice(&core).expect("api/v1");
    assert_eq!(
        core["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"]["operationId"],
        "listCoreV1NamespacedPod"
    );
    assert_eq!(
        core["paths"]["/api/v1/nodes/{name}/status"]["put"]["operationId"],
        "replaceCoreV1NodeStatus"
    );
    // Streaming subresources, with their own parameters.
    let log = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"];
    assert_eq!(log["get"]["operationId"], "readCoreV1NamespacedPodLog");
    assert_eq!(
        log["get"]["responses"]["200"]["content"]["text/plain"]["schema"]["type"],
        "string"
    );
    let names: Vec<&str> = log["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"follow") && names.contains(&"container"),
        "{names:?}"
    );
    assert_eq!(log["parameters"][0]["schema"]["type"], "string");
}

/// Reads a protobuf message's top-level fields: (number, wire type, bytes
/// of a length-delimited value).
fn fields(mut b: &[u8]) -> Vec<(u64, u8, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let (num, wire) = (key >> 3, (key & 7) as u8);
        match wire {
            0 => {
                varint(&mut b);
                out.push((num, 0, Vec::new()));
            }
            1 => {
                b = &b[8..];
                out.push((num, 1, Vec::new()));
            }
            2 => {
                let len = varint(&mut b) as usize;
                out.push((num, 2, b[..len].to_vec()));
                b = &b[len..];
            }
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

#[test]
fn protobuf_document_carries_every_definition() {
    let cat = Catalogue::builtin();
    let docs = build_v2(&cat, &Map::new());
    let json: Value = serde_json::from_slice(&docs.json.bytes).expect("json");
    let top = fields(&docs.protobuf.bytes);
    assert_eq!(top[0], (1, 2, b"2.0".to_vec()), "swagger = 1");
    let defs = &top.iter().find(|f| f.0 == 9).expect("definitions = 9").2;
    let named = fields(defs);
    assert_eq!(
        named.len(),
        json["definitions"].as_object().expect("defs").len()
    );
    // NamedSchema { name = 1, value = 2 }; find Deployment and its GVK
    // extension (Schema.vendor_extension = 31, NamedAny { name, Any { yaml = 2 } }).
    let dep = named
        .iter()
        .map(|(_, _, b)| fields(b))
        .find(|f| f[0].2 == b"io.k8s.api.apps.v1.Deployment")
        .expect("Deployment definition");
    let schema = fields(&dep[1].2);
    let ext = schema
        .iter()
        .filter(|f| f.0 == 31)
        .map(|f| fields(&f.2))
        .find(|f| f[0].2 == b"x-kubernetes-group-version-kind")
        .expect("gvk extension");
    let any = fields(&ext[1].2);
    let yaml: Value = serde_json::from_slice(&any[0].2).expect("extension value");
    assert_eq!(yaml[0]["kind"], "Deployment");
    let paths = &top.iter().find(|f| f.0 == 8).expect("paths = 8").2;
    assert_eq!(
        fields(paths).len(),
        json["paths"].as_object().expect("paths").len()
    );
}

async fn get(
    api: &OpenApi,
    cat: &Catalogue,
    path: &str,
    query: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(k.clone(), HeaderValue::from_str(v).expect("header"));
    }
    let resp = api.serve(cat, path, query, &h).expect("an openapi path");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

#[tokio::test]
async fn caching_headers_as_upstream() {
    let cat = Catalogue::builtin();
    let api = OpenApi::default();
    let (code, h, body) = get(&api, &cat, "/openapi/v3", "", &[]).await;
    assert_eq!(code, StatusCode::OK);
    let index: Value = serde_json::from_slice(&body).expect("index");
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("url")
        .to_owned();
    assert!(h.get(header::ETAG).is_some());
    let (path, query) = url.split_once('?').expect("hashed url");
    let hash = query.strip_prefix("hash=").expect("hash");

    let (code, h, body) = get(
        &api,
        &cat,
        path,
        query,
        &[(header::ACCEPT, "application/json")],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(h[header::CACHE_CONTROL], "public, immutable");
    assert!(h.get(header::EXPIRES).is_some());
    assert_eq!(h[header::ETAG], format!("\"{hash}\""));
    assert!(!body.is_empty());

    // Unhashed: no immutable caching, same ETag; If-None-Match → 304.
    let (code, h, _) = get(&api, &cat, path, "", &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert!(h.get(header::CACHE_CONTROL).is_none());
    let etag = format!("\"{hash}\"");
    let (code, _, body) = get(&api, &cat, path, "", &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(code, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    // The hash is stable across servers (kubectl's disk cache keys on it).
    let again = OpenApi::default().v3_index(&cat).expect("index");
    let again: Value = serde_json::from_slice(&again).expect("index");
    assert_eq!(
        again["paths"]["apis/apps/v1"]["serverRelativeURL"],
        url.as_str()
    );

    // A stale hash redirects to the current URL.
    let (code, h, _) = get(&api, &cat, path, "hash=0123", &[]).await;
    assert_eq!(code, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(h[header::LOCATION], url.as_str());

    let (code, _, _) = get(&api, &cat, "/openapi/v3/apis/nope/v1", "", &[]).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // v2: JSON by default, protobuf when asked, 406 for anything else.
    let (code, h, body) = get(&api, &cat, "/openapi/v2", "", &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "application/json");
    assert_eq!(body[0], b'{');
    let (code, h, body) = get(
        &api,
        &cat,
        "/openapi/v2",
        "",
        &[(header::ACCEPT, PROTOBUF_V2)],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        h[header::CONTENT_TYPE],
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    assert_eq!(&body[..5], b"\x0a\x032.0");
    let etag = h[header::ETAG].to_str().expect("etag").to_owned();
    let (code, _, _) = get(
        &api,
        &cat,
        "/openapi/v2",
        "",
        &[
            (header::ACCEPT, PROTOBUF_V2),
            (header::IF_NONE_MATCH, &etag),
        ],
    )
    .await;
    assert_eq!(code, StatusCode::NOT_MODIFIED);
    let (code, _, _) = get(
        &api,
        &cat,
        "/openapi/v2",
        "",
        &[(header::ACCEPT, "text/html")],
    )
    .await;
    assert_eq!(code, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn documents_follow_the_catalogue() {
    let mut cat = Catalogue::builtin();
    let api = OpenApi::default();
    let (_, _, before) = get(&api, &cat, "/openapi/v3", "", &[]).await;
    let before: Value = serde_json::from_slice(&before).expect("index");
    assert!(before["paths"].get("apis/apps/v1").is_some());
    for r in cat
        .resources_in("apps", "v1")
        .into_iter()
        .map(|r| r.plural.clone())
        .collect::<Vec<_>>()
    {
        cat.remove("apps", "v1", &r);
    }
    let (_, _, after) = get(&api, &cat, "/openapi/v3", "", &[]).await;
    let after: Value = serde_json::from_slice(&after).expect("index");
    assert!(after["paths"].get("apis/apps/v1").is_none());
    assert!(after["paths"].get("api/v1").is_some());
}

/// Custom resources: a catalogue entry plus an extra definition carrying its
/// group-version-kind make a group-version document with that schema.
#[tokio::test]
async fn extra_definitions_serve_custom_resources() {
    use rkube_catalogue::{ResourceInfo, Stability, SubresourceInfo};
    let mut cat = Catalogue::builtin();
    let verbs: Vec<String> = [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ]
    .map(String::from)
    .to_vec();
    cat.add(ResourceInfo {
        group: "stable.example.com".into(),
        version: "v1".into(),
        kind: "CronTab".into(),
        list_kind: "CronTabList".into(),
        plural: "crontabs".into(),
        singular: "crontab".into(),
        short_names: vec![],
        categories: vec![],
        namespaced: true,
        verbs,
        subresources: vec![SubresourceInfo {
            name: "status".into(),
            kind: "CronTab".into(),
            group: None,
            version: None,
            verbs: vec!["get".into(), "patch".into(), "update".into()],
        }],
        storage_prefix: "stable.example.com/crontabs".into(),
        storage_version_hash: String::new(),
        enabled_by_default: true,
        stability: Stability::Ga,
    });
    let gvk = |kind: &str| serde_json::json!([{ "group": "stable.example.com", "kind": kind, "version": "v1" }]);
    let mut extra = Map::new();
    extra.insert(
        "com.example.stable.v1.CronTab".into(),
        serde_json::json!({
            "type": "object",
            "properties": {
                "metadata": { "$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" },
                "spec": { "type": "object", "properties": { "cronSpec": { "type": "string" } } },
            },
            "x-kubernetes-group-version-kind": gvk("CronTab"),
        }),
    );
    extra.insert(
        "com.example.stable.v1.CronTabList".into(),
        serde_json::json!({
            "type": "object",
            "properties": { "items": { "type": "array", "items": { "$ref": "#/definitions/com.example.stable.v1.CronTab" } } },
            "x-kubernetes-group-version-kind": gvk("CronTabList"),
        }),
    );
    let api = OpenApi::default();
    let (_, _, index) = get(&api, &cat, "/openapi/v3", "", &[]).await;
    let index: Value = serde_json::from_slice(&index).expect("index");
    assert!(index["paths"].get("apis/stable.example.com/v1").is_some());
    // Without its schema the paths are there but return no definition.
    api.set_extra_definitions(extra);
    let (_, _, index2) = get(&api, &cat, "/openapi/v3", "", &[]).await;
    let index2: Value = serde_json::from_slice(&index2).expect("index");
    let crd = |i: &Value| i["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"].clone();
    assert_ne!(crd(&index), crd(&index2), "a new schema, a new URL");
    let (_, _, body) = get(
        &api,
        &cat,
        "/openapi/v3/apis/stable.example.com/v1",
        "",
        &[],
    )
    .await;
    let doc: Value = serde_json::from_slice(&body).expect("document");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["com.example.stable.v1.CronTab"]["properties"]["spec"]["properties"]["cronSpec"]["type"],
        "string"
    );
    assert!(
        schemas
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            .is_some()
    );
    let get_op =
        &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["get"];
    assert_eq!(
        get_op["operationId"],
        "readStableExampleComV1NamespacedCronTab"
    );
    assert_eq!(
        get_op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/com.example.stable.v1.CronTab"
    );
    let (_, _, v2) = get(&api, &cat, "/openapi/v2", "", &[]).await;
    let v2: Value = serde_json::from_slice(&v2).expect("v2");
    assert!(
        v2["definitions"]
            .get("com.example.stable.v1.CronTabList")
            .is_some()
    );
}
