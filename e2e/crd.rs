//! CustomResourceDefinitions end to end: the stock kubectl (apply, wait,
//! get with printer columns, short names and categories, explain, scale,
//! server-side apply, delete) and raw requests for the API details
//! (conditions, name conflicts, validation, subresources, selectors,
//! watch, patches, discovery, OpenAPI, versions, cleanup).

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::harness::Cluster;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
    categories: [gadgets]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: A widget for the tests.
        properties:
          spec:
            type: object
            description: What the widget should be.
            properties:
              replicas: {type: integer, description: How many.}
              color: {type: string, description: Its color.}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
    selectableFields:
    - jsonPath: .spec.color
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Color
      type: string
      jsonPath: .spec.color
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
"#;

fn write(c: &Cluster, name: &str, text: &str) -> String {
    let path = c.dir.path().join(name);
    std::fs::write(&path, text).expect("write manifest");
    path.display().to_string()
}

/// A request with a JSON (or other) body: (status, body, warnings).
async fn req(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<Value>,
) -> (u16, Value, Vec<String>) {
    req_accept(client, method, path, content_type, "application/json", body).await
}

async fn req_accept(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    accept: &str,
    body: Option<Value>,
) -> (u16, Value, Vec<String>) {
    let bytes = body
        .map(|b| serde_json::to_vec(&b).expect("json"))
        .unwrap_or_default();
    req_raw(client, method, path, content_type, accept, bytes).await
}

/// A request with a body as written (duplicate fields survive).
async fn req_raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    accept: &str,
    bytes: Vec<u8>,
) -> (u16, Value, Vec<String>) {
    let r = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .header("accept", accept)
        .body(kube::client::Body::from(bytes))
        .expect("request");
    let resp = client.send(r).await.expect("send");
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v, warnings)
}

async fn get(client: &kube::Client, path: &str) -> (u16, Value) {
    let (s, v, _) = req(client, "GET", path, "application/json", None).await;
    (s, v)
}

async fn post(client: &kube::Client, path: &str, body: Value) -> (u16, Value) {
    let (s, v, _) = req(client, "POST", path, "application/json", Some(body)).await;
    (s, v)
}

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

fn crd_json() -> Value {
    serde_yaml::from_str(CRD).expect("CRD yaml")
}

fn condition<'a>(crd: &'a Value, type_: &str) -> Option<&'a Value> {
    crd.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Polls until `check` holds for the object at `path` (10 s at most).
async fn wait_for(
    client: &kube::Client,
    path: &str,
    what: &str,
    check: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, v) = get(client, path).await;
        if check(s, &v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn established(client: &kube::Client, name: &str) -> Value {
    wait_for(client, &format!("{CRDS}/{name}"), "Established", |_, v| {
        condition(v, "Established").is_some_and(|c| c["status"] == "True")
    })
    .await
}

async fn install(client: &kube::Client, crd: Value) -> Value {
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (s, v) = post(client, CRDS, crd).await;
    assert_eq!(s, 201, "{v}");
    established(client, &name).await
}

#[tokio::test]
async fn crd_kubectl_lifecycle() {
    let c = Cluster::up().await;
    let file = write(&c, "crd.yaml", CRD);
    c.kubectl_ok(&["apply", "-f", &file]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
    let cr = write(
        &c,
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  replicas: 2\n  color: blue\n",
    );
    c.kubectl_ok(&["apply", "-f", &cr]);
    let out = c.kubectl_ok(&["get", "widgets"]);
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "REPLICAS", "COLOR", "AGE"], "{out}");
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], ["w1", "2", "blue"], "{out}");
    // Short name and category.
    assert!(c.kubectl_ok(&["get", "wd"]).contains("w1"));
    assert!(c.kubectl_ok(&["get", "gadgets"]).contains("w1"));
    // explain reads the published schema.
    let explain = c.kubectl_ok(&["explain", "widget.spec"]);
    assert!(explain.contains("KIND:       Widget"), "{explain}");
    assert!(explain.contains("What the widget should be."), "{explain}");
    assert!(explain.contains("replicas\t<integer>"), "{explain}");
    // scale through the scale subresource.
    c.kubectl_ok(&["scale", "widget/w1", "--replicas=5"]);
    assert_eq!(
        c.kubectl_ok(&["get", "widget", "w1", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    // Server-side apply tracks the manager's fields.
    let ssa = write(
        &c,
        "w2.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  color: red\n",
    );
    c.kubectl_ok(&["apply", "--server-side", "-f", &ssa]);
    let managed = c.kubectl_ok(&[
        "get",
        "widget",
        "w2",
        "-o",
        "jsonpath={.metadata.managedFields[0].manager} {.metadata.managedFields[0].operation}",
    ]);
    assert_eq!(managed, "kubectl Apply");
    // Deleting the CRD deletes its widgets first, then the CRD.
    c.kubectl_ok(&["delete", "-f", &file, "--wait=true", "--timeout=30s"]);
    let out = c.kubectl(&["get", "crd", "widgets.example.com"]);
    assert!(!out.status.success());
    let out = c.kubectl(&["get", "widgets"]);
    assert!(!out.status.success(), "widgets still served");
}

#[tokio::test]
async fn crd_status_names_and_conflicts() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let crd = install(&client, crd_json()).await;
    assert_eq!(crd["status"]["acceptedNames"]["plural"], "widgets");
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
    assert_eq!(crd["status"]["acceptedNames"]["shortNames"], json!(["wd"]));
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    let names = condition(&crd, "NamesAccepted").expect("NamesAccepted");
    assert_eq!(names["status"], "True");
    assert_eq!(names["reason"], "NoConflicts");
    assert_eq!(names["message"], "no conflicts found");
    let est = condition(&crd, "Established").expect("Established");
    assert_eq!(est["reason"], "InitialNamesAccepted");
    assert_eq!(crd["spec"]["conversion"]["strategy"], "None");
    assert_eq!(crd["metadata"]["generation"], 1);
    // Another CRD of the group claiming the same kind is not accepted.
    let mut other = crd_json();
    other["metadata"]["name"] = json!("gizmos.example.com");
    other["spec"]["names"] =
        json!({"plural": "gizmos", "singular": "gizmo", "kind": "Widget", "listKind": "GizmoList"});
    let (s, v) = post(&client, CRDS, other).await;
    assert_eq!(s, 201, "{v}");
    let v = wait_for(
        &client,
        &format!("{CRDS}/gizmos.example.com"),
        "NamesAccepted False",
        |_, v| condition(v, "NamesAccepted").is_some_and(|c| c["status"] == "False"),
    )
    .await;
    let names = condition(&v, "NamesAccepted").expect("condition");
    assert_eq!(names["reason"], "KindConflict");
    assert_eq!(names["message"], "\"Widget\" is already in use");
    let est = condition(&v, "Established").expect("Established");
    assert_eq!(
        (est["status"].as_str(), est["reason"].as_str()),
        (Some("False"), Some("NotAccepted"))
    );
    let (s, _) = get(&client, "/apis/example.com/v1/namespaces/default/gizmos").await;
    assert_eq!(s, 404);
    // Once the first CRD is gone, the kind is free.
    let (s, _, _) = req(
        &client,
        "DELETE",
        &format!("{CRDS}/widgets.example.com"),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, 200);
    established(&client, "gizmos.example.com").await;
    let (s, v) = get(&client, "/apis/example.com/v1/namespaces/default/gizmos").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["kind"], "GizmoList");
}

#[tokio::test]
async fn crd_validation_errors() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let mut bad = crd_json();
    bad["metadata"]["name"] = json!("things.example.com");
    bad["spec"]["group"] = json!("example");
    bad["spec"]["scope"] = json!("Galaxy");
    bad["spec"]["versions"][0]["storage"] = json!(false);
    bad["spec"]["versions"][0]
        .as_object_mut()
        .expect("version")
        .remove("schema");
    let (s, v) = post(&client, CRDS, bad).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["reason"], "Invalid");
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with(
            "CustomResourceDefinition.apiextensions.k8s.io \"things.example.com\" is invalid: ["
        ),
        "{msg}"
    );
    for want in [
        "metadata.name: Invalid value: \"things.example.com\": must be spec.names.plural+\".\"+spec.group",
        "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
        "spec.scope: Unsupported value: \"Galaxy\": supported values: \"Cluster\", \"Namespaced\"",
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        "must have exactly one version marked as storage version",
    ] {
        assert!(msg.contains(want), "missing {want:?} in {msg}");
    }
    // Immutable once created: the group and plural.
    let crd = install(&client, crd_json()).await;
    let mut changed = crd.clone();
    changed["spec"]["names"]["plural"] = json!("widgetz");
    let (s, v, _) = req(
        &client,
        "PUT",
        &format!("{CRDS}/widgets.example.com"),
        "application/json",
        Some(changed),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.names.plural: Invalid value: \"widgetz\": field is immutable"),
        "{v}"
    );
}

#[tokio::test]
async fn custom_resource_verbs_subresources_and_selectors() {
    let c = Cluster::up().await;
    let client = c.client().await;
    install(&client, crd_json()).await;
    for (name, color) in [("a", "red"), ("b", "blue"), ("c", "red")] {
        let (s, v) = post(
            &client,
            WIDGETS,
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": name, "labels": {"color": color}},
                "spec": {"replicas": 1, "color": color},
                "status": {"replicas": 9},
            }),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        // The status subresource is on: status is not written on create.
        assert!(v.get("status").is_none(), "{v}");
        assert_eq!(v["metadata"]["generation"], 1);
    }
    // Field selectors: metadata.name and the declared selectable field.
    let (s, v) = get(
        &client,
        &format!("{WIDGETS}?fieldSelector=spec.color%3Dred"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "c"]);
    let (_, v) = get(
        &client,
        &format!("{WIDGETS}?fieldSelector=metadata.name%3Db"),
    )
    .await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    let (s, v) = get(
        &client,
        &format!("{WIDGETS}?fieldSelector=spec.replicas%3D1"),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["message"], "field label not supported: spec.replicas");
    let (_, v) = get(&client, &format!("{WIDGETS}?labelSelector=color%3Dblue")).await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    // Status: written through the subresource only; generation follows spec.
    let (_, mut a) = get(&client, &format!("{WIDGETS}/a")).await;
    a["status"] = json!({"replicas": 3, "selector": "app=a"});
    let (s, v, _) = req(
        &client,
        "PUT",
        &format!("{WIDGETS}/a/status"),
        "application/json",
        Some(a.clone()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"]["replicas"], 3);
    assert_eq!(v["metadata"]["generation"], 1);
    let (s, v, _) = req(
        &client,
        "PATCH",
        &format!("{WIDGETS}/a"),
        "application/merge-patch+json",
        Some(json!({"spec": {"replicas": 4}, "status": {"replicas": 0}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["metadata"]["generation"], 2);
    assert_eq!(
        v["status"]["replicas"], 3,
        "main resource writes keep the status"
    );
    // Scale.
    let (s, v) = get(&client, &format!("{WIDGETS}/a/scale")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["kind"], "Scale");
    assert_eq!(v["apiVersion"], "autoscaling/v1");
    assert_eq!(v["spec"]["replicas"], 4);
    assert_eq!(v["status"], json!({"replicas": 3, "selector": "app=a"}));
    let (s, v, _) = req(
        &client,
        "PATCH",
        &format!("{WIDGETS}/a/scale"),
        "application/merge-patch+json",
        Some(json!({"spec": {"replicas": 7}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = get(&client, &format!("{WIDGETS}/a")).await;
    assert_eq!(v["spec"]["replicas"], 7);
    // JSON patch; strategic merge patch is not for custom resources.
    let (s, v, _) = req(
        &client,
        "PATCH",
        &format!("{WIDGETS}/b"),
        "application/json-patch+json",
        Some(json!([{"op": "replace", "path": "/spec/color", "value": "green"}])),
    )
    .await;
    assert_eq!(
        (s, v["spec"]["color"].as_str()),
        (200, Some("green")),
        "{v}"
    );
    let (s, v, _) = req(
        &client,
        "PATCH",
        &format!("{WIDGETS}/b"),
        "application/strategic-merge-patch+json",
        Some(json!({"spec": {"color": "x"}})),
    )
    .await;
    assert_eq!(s, 415, "{v}");
    assert_eq!(v["reason"], "UnsupportedMediaType");
    assert_eq!(
        v["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );
    // Table: the printer columns.
    let (s, t, _) = req_accept(
        &client,
        "GET",
        WIDGETS,
        "application/json",
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        None,
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(cols, ["Name", "Replicas", "Color", "Age"]);
    assert_eq!(t["rows"][0]["cells"][0], "a");
    assert_eq!(t["rows"][0]["cells"][1], 7);
    assert_eq!(t["rows"][0]["cells"][2], "red");
    let age = t["rows"][0]["cells"][3].as_str().unwrap_or_default();
    assert!(
        age.ends_with('s') && age.len() <= 3,
        "the Age cell is an age: {age}"
    );
    // Watch, then deletecollection.
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let list = api.list(&Default::default()).await.expect("list");
    let rv = list.metadata.resource_version.clone().unwrap_or_default();
    let mut events = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    let (s, v, _) = req(
        &client,
        "DELETE",
        &format!("{WIDGETS}?labelSelector=color%3Dred"),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut deleted = Vec::new();
    while deleted.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("watch event in time")
            .expect("stream open")
            .expect("event");
        if let WatchEvent::Deleted(o) = ev {
            deleted.push(o.metadata.name.unwrap_or_default());
        }
    }
    deleted.sort();
    assert_eq!(deleted, ["a", "c"]);
    let (_, v) = get(&client, WIDGETS).await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn cluster_scoped_custom_resources() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let mut crd = crd_json();
    crd["metadata"]["name"] = json!("planets.example.com");
    crd["spec"]["scope"] = json!("Cluster");
    crd["spec"]["names"] = json!({"plural": "planets", "kind": "Planet"});
    install(&client, crd).await;
    let path = "/apis/example.com/v1/planets";
    let (s, v) = post(&client, path, json!({"apiVersion": "example.com/v1", "kind": "Planet", "metadata": {"name": "earth"}, "spec": {"color": "blue"}})).await;
    assert_eq!(s, 201, "{v}");
    assert!(v["metadata"].get("namespace").is_none());
    let (s, v) = get(&client, "/apis/example.com/v1/planets/earth").await;
    assert_eq!((s, v["kind"].as_str()), (200, Some("Planet")));
    let (s, _) = get(&client, "/apis/example.com/v1/namespaces/default/planets").await;
    assert_eq!(s, 404);
    // The Table without declared columns... here declared; Age is last.
    let (s, _, _) = req(
        &client,
        "DELETE",
        "/apis/example.com/v1/planets/earth",
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn crd_discovery_and_openapi_follow_changes() {
    let c = Cluster::up().await;
    let client = c.client().await;
    install(&client, crd_json()).await;
    let (s, v) = get(&client, "/apis/example.com/v1").await;
    assert_eq!(s, 200, "{v}");
    let res: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(res, ["widgets", "widgets/scale", "widgets/status"]);
    let w = &v["resources"][0];
    assert_eq!(w["shortNames"], json!(["wd"]));
    assert_eq!(w["categories"], json!(["gadgets"]));
    assert_eq!(w["singularName"], "widget");
    assert_eq!(w["namespaced"], true);
    let (_, v) = get(&client, "/apis").await;
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com")
    );
    let (_, agg, _) = req_accept(
        &client,
        "GET",
        "/apis",
        "application/json",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        None,
    )
    .await;
    let group = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "example.com")
        .cloned()
        .expect("group in aggregated discovery");
    assert_eq!(group["versions"][0]["resources"][0]["resource"], "widgets");
    // OpenAPI v2 and v3 carry the schema under upstream's names.
    let (s, v2) = get(&client, "/openapi/v2").await;
    assert_eq!(s, 200);
    let def = &v2["definitions"]["com.example.v1.Widget"];
    assert_eq!(
        def["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(
        def["properties"]["spec"]["properties"]["color"]["type"],
        "string"
    );
    assert!(v2["definitions"].get("com.example.v1.WidgetList").is_some());
    assert!(
        v2["paths"]
            .get("/apis/example.com/v1/namespaces/{namespace}/widgets/{name}")
            .is_some()
    );
    let (_, index) = get(&client, "/openapi/v3").await;
    let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .expect("v3 path")
        .to_owned();
    let (s, v3) = get(&client, &url).await;
    assert_eq!(s, 200);
    assert!(
        v3["components"]["schemas"]
            .get("com.example.v1.Widget")
            .is_some()
    );
    // Deleted: gone from discovery and OpenAPI.
    let (s, _, _) = req(
        &client,
        "DELETE",
        &format!("{CRDS}/widgets.example.com"),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, 200);
    wait_for(
        &client,
        &format!("{CRDS}/widgets.example.com"),
        "CRD deleted",
        |s, _| s == 404,
    )
    .await;
    wait_for(&client, "/apis/example.com/v1", "group gone", |s, _| {
        s == 404
    })
    .await;
    let (_, v2) = get(&client, "/openapi/v2").await;
    assert!(v2["definitions"].get("com.example.v1.Widget").is_none());
}

#[tokio::test]
async fn crd_versions_and_restart() {
    let mut c = Cluster::up().await;
    let client = c.client().await;
    let mut crd = crd_json();
    let mut v2 = crd["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    crd["spec"]["versions"].as_array_mut().unwrap().push(v2);
    install(&client, crd).await;
    let (s, v) = post(&client, WIDGETS, json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}, "spec": {"color": "red"}})).await;
    assert_eq!(s, 201, "{v}");
    // Conversion None: the same object in the other version.
    let (s, v) = get(&client, "/apis/example.com/v2/namespaces/default/widgets/x").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["apiVersion"], "example.com/v2");
    assert_eq!(v["spec"]["color"], "red");
    let (_, list) = get(&client, "/apis/example.com/v2/namespaces/default/widgets").await;
    assert_eq!(list["items"][0]["apiVersion"], "example.com/v2");
    // Preferred version: v2 > v1.
    let (_, g) = get(&client, "/apis/example.com").await;
    assert_eq!(g["preferredVersion"]["version"], "v2");
    // After a restart the resources answer at once.
    drop(client);
    c.restart().await;
    let client = c.client().await;
    let (s, v) = get(&client, &format!("{WIDGETS}/x")).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn crd_deletion_waits_for_instances() {
    let c = Cluster::up().await;
    let client = c.client().await;
    install(&client, crd_json()).await;
    let (s, v) = post(&client, WIDGETS, json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).await;
    assert_eq!(s, 201, "{v}");
    let (s, v, _) = req(
        &client,
        "DELETE",
        &format!("{CRDS}/widgets.example.com"),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["metadata"]["finalizers"],
        json!(["customresourcecleanup.apiextensions.k8s.io"])
    );
    let crd = wait_for(
        &client,
        &format!("{CRDS}/widgets.example.com"),
        "Terminating",
        |_, v| {
            condition(v, "Terminating").is_some_and(|c| c["reason"] == "InstanceDeletionInProgress")
        },
    )
    .await;
    assert_eq!(
        condition(&crd, "Terminating").unwrap()["message"],
        "CustomResource deletion is in progress"
    );
    // The instance is being deleted and waits for its own finalizer.
    let held = wait_for(
        &client,
        &format!("{WIDGETS}/held"),
        "instance marked",
        |_, v| v["metadata"]["deletionTimestamp"].is_string(),
    )
    .await;
    let (s, _) = get(&client, &format!("{CRDS}/widgets.example.com")).await;
    assert_eq!(s, 200, "the CRD stays while instances remain");
    let (s, v) = post(
        &client,
        WIDGETS,
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "late"}}),
    )
    .await;
    assert_eq!(s, 405, "{v}");
    assert_eq!(
        v["message"],
        "create not allowed while custom resource definition is terminating"
    );
    let mut released = held.clone();
    released["metadata"]["finalizers"] = json!([]);
    let (s, v, _) = req(
        &client,
        "PUT",
        &format!("{WIDGETS}/held"),
        "application/json",
        Some(released),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_for(
        &client,
        &format!("{CRDS}/widgets.example.com"),
        "CRD deleted",
        |s, _| s == 404,
    )
    .await;
    wait_for(&client, WIDGETS, "resource unserved", |s, _| s == 404).await;
}

/// Pruning, defaulting and schema validation of custom resources come from
/// rkube-structural; these run once its implementation is merged.
#[tokio::test]
async fn custom_resource_schema_prune_default_validate() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let mut crd = crd_json();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"] =
        json!({"type": "integer", "minimum": 0, "default": 1});
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] =
        json!([{"rule": "self.replicas <= 10", "message": "too many"}]);
    install(&client, crd).await;
    // Strict: unknown fields are a 400.
    let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {"x": 1}});
    let (s, v, _) = req(
        &client,
        "POST",
        &format!("{WIDGETS}?fieldValidation=Strict"),
        "application/json",
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        v["message"],
        "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.x\""
    );
    // Warn (the default): pruned, with a warning; defaults applied.
    let (s, v, warnings) = req(&client, "POST", WIDGETS, "application/json", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    assert!(v["spec"].get("x").is_none(), "{v}");
    assert_eq!(v["spec"]["replicas"], 1);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown field \\\"spec.x\\\"")),
        "{warnings:?}"
    );
    // Invalid values: 422 with the field path.
    let (s, v) = post(&client, WIDGETS, json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "n"}, "spec": {"replicas": -1}})).await;
    assert_eq!(s, 422, "{v}");
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("Widget.example.com \"n\" is invalid: spec.replicas: "),
        "{msg}"
    );
    // A CEL rule.
    let (s, v) = post(&client, WIDGETS, json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "big"}, "spec": {"replicas": 11}})).await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too many"),
        "{v}"
    );
    // A default added later shows on objects read from storage.
    let (_, mut crd) = get(&client, &format!("{CRDS}/widgets.example.com")).await;
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["color"] =
        json!({"type": "string", "default": "grey"});
    let (s, v, _) = req(
        &client,
        "PUT",
        &format!("{CRDS}/widgets.example.com"),
        "application/json",
        Some(crd),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_for(
        &client,
        &format!("{WIDGETS}/s"),
        "default on read",
        |_, v| v["spec"]["color"] == "grey",
    )
    .await;
}

#[tokio::test]
async fn crd_objects_watch_status_list_and_deletecollection() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let api: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let list = api.list(&Default::default()).await.expect("list CRDs");
    let rv = list.metadata.resource_version.clone().unwrap_or_default();
    let mut events = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    // Ten labeled CRDs and one other.
    for i in 0..10 {
        let mut crd = crd_json();
        crd["metadata"] = json!({"name": format!("w{i}s.example.com"), "labels": {"e2e": "list"}});
        crd["spec"]["names"] = json!({"plural": format!("w{i}s"), "kind": format!("W{i}")});
        let (s, v) = post(&client, CRDS, crd).await;
        assert_eq!(s, 201, "{v}");
    }
    install(&client, crd_json()).await;
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 11 {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("event");
        if let WatchEvent::Added(o) = ev {
            seen.insert(o.metadata.name.unwrap_or_default());
        }
    }
    let (_, v) = get(&client, &format!("{CRDS}?labelSelector=e2e%3Dlist")).await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(10));
    // The status subresource: read, update, patch.
    let status_path = format!("{CRDS}/widgets.example.com/status");
    let (s, mut crd) = get(&client, &status_path).await;
    assert_eq!(s, 200);
    crd["status"]["conditions"]
        .as_array_mut()
        .expect("conditions")
        .push(json!({"type": "StatusUpdated", "status": "True", "reason": "E2E", "message": "updated", "lastTransitionTime": "2026-01-01T00:00:00Z"}));
    let (s, v, _) = req(&client, "PUT", &status_path, "application/json", Some(crd)).await;
    assert_eq!(s, 200, "{v}");
    assert!(condition(&v, "StatusUpdated").is_some());
    let patch =
        json!({"metadata": {"labels": {"patched": "yes"}}, "status": {"storedVersions": ["v1"]}});
    let (s, v, _) = req(
        &client,
        "PATCH",
        &status_path,
        "application/merge-patch+json",
        Some(patch),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = get(&client, &format!("{CRDS}/widgets.example.com")).await;
    assert!(condition(&v, "StatusUpdated").is_some(), "{v}");
    // Modified and deleted events of one CRD.
    let (s, _, _) = req(
        &client,
        "PATCH",
        &format!("{CRDS}/widgets.example.com"),
        "application/merge-patch+json",
        Some(json!({"metadata": {"annotations": {"a": "b"}}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v, _) = req(
        &client,
        "DELETE",
        &format!("{CRDS}?labelSelector=e2e%3Dlist"),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut modified = false;
    let mut deleted = std::collections::BTreeSet::new();
    while !(modified && deleted.len() == 10) {
        let ev = tokio::time::timeout(Duration::from_secs(15), events.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("event");
        match ev {
            WatchEvent::Modified(o)
                if o.metadata.name.as_deref() == Some("widgets.example.com") =>
            {
                modified = true
            }
            WatchEvent::Deleted(o) => {
                deleted.insert(o.metadata.name.unwrap_or_default());
            }
            _ => {}
        }
    }
    let (_, v) = get(&client, CRDS).await;
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["widgets.example.com"]);
}

#[tokio::test]
async fn crd_openapi_follows_served_versions() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let mut crd = crd_json();
    let mut v2 = crd["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    crd["spec"]["versions"].as_array_mut().unwrap().push(v2);
    install(&client, crd).await;
    let defs = |v: &Value| -> Vec<String> {
        v["definitions"]
            .as_object()
            .map(|m| {
                m.keys()
                    .filter(|k| k.starts_with("com.example."))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let (_, doc) = get(&client, "/openapi/v2").await;
    assert_eq!(
        defs(&doc),
        [
            "com.example.v1.Widget",
            "com.example.v1.WidgetList",
            "com.example.v2.Widget",
            "com.example.v2.WidgetList"
        ]
    );
    // v2 no longer served.
    let path = format!("{CRDS}/widgets.example.com");
    let patch = json!([{"op": "replace", "path": "/spec/versions/1/served", "value": false}]);
    let (s, v, _) = req(
        &client,
        "PATCH",
        &path,
        "application/json-patch+json",
        Some(patch),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, doc) = get(&client, "/openapi/v2").await;
        if defs(&doc) == ["com.example.v1.Widget", "com.example.v1.WidgetList"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "v2 still published: {:?}",
            defs(&doc)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, _) = get(&client, "/apis/example.com/v2/namespaces/default/widgets").await;
    assert_eq!(s, 404);
    // v2 renamed to v3 and served.
    let patch = json!([
        {"op": "replace", "path": "/spec/versions/1/name", "value": "v3"},
        {"op": "replace", "path": "/spec/versions/1/served", "value": true},
    ]);
    let (s, v, _) = req(
        &client,
        "PATCH",
        &path,
        "application/json-patch+json",
        Some(patch),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, doc) = get(&client, "/openapi/v2").await;
        if defs(&doc).contains(&"com.example.v3.Widget".to_owned()) {
            assert!(!defs(&doc).contains(&"com.example.v2.Widget".to_owned()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "v3 not published: {:?}",
            defs(&doc)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const OPEN_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: blobs.example.org
spec:
  group: example.org
  scope: Namespaced
  names: {plural: blobs, kind: Blob}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: Anything goes.
        x-kubernetes-preserve-unknown-fields: true
"#;

#[tokio::test]
async fn crd_preserving_unknown_fields_with_kubectl() {
    let c = Cluster::up().await;
    let file = write(&c, "crd.yaml", OPEN_CRD);
    c.kubectl_ok(&["apply", "-f", &file]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/blobs.example.org",
        "--timeout=20s",
    ]);
    let cr = write(
        &c,
        "b.yaml",
        "apiVersion: example.org/v1\nkind: Blob\nmetadata:\n  name: b1\nspec:\n  anything: [1, 2]\nextra: one\n",
    );
    c.kubectl_ok(&["apply", "-f", &cr]);
    let cr = write(
        &c,
        "b.yaml",
        "apiVersion: example.org/v1\nkind: Blob\nmetadata:\n  name: b1\nspec:\n  anything: [3]\nextra: two\n",
    );
    c.kubectl_ok(&["apply", "-f", &cr]);
    assert_eq!(
        c.kubectl_ok(&[
            "get",
            "blob",
            "b1",
            "-o",
            "jsonpath={.spec.anything} {.extra}"
        ]),
        "[3] two"
    );
    let explain = c.kubectl_ok(&["explain", "blobs"]);
    assert!(explain.contains("KIND:       Blob"), "{explain}");
    assert!(explain.contains("Anything goes."), "{explain}");
    // No printer columns declared: Name and Age.
    let out = c.kubectl_ok(&["get", "blobs"]);
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "AGE"], "{out}");
    // Duplicate fields are found even where unknown fields are preserved
    // (upstream's "should detect duplicates in a CR when preserving unknown
    // fields").
    let client = c.client().await;
    let dup = br#"{"apiVersion": "example.org/v1", "kind": "Blob", "metadata": {"name": "d1"},
        "spec": {"foo": 1, "foo": 2, "bar": {"x": 1, "x": 2}}}"#;
    let (s, v, _) = req_raw(
        &client,
        "POST",
        "/apis/example.org/v1/namespaces/default/blobs?fieldValidation=Strict",
        "application/json",
        "application/json",
        dup.to_vec(),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(r#"duplicate field "spec.foo""#)
            && message.contains(r#"duplicate field "spec.bar.x""#),
        "{message}"
    );
    let (s, v, warnings) = req_raw(
        &client,
        "POST",
        "/apis/example.org/v1/namespaces/default/blobs?fieldValidation=Warn",
        "application/json",
        "application/json",
        dup.to_vec(),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("duplicate field") && w.contains("spec.foo")),
        "{warnings:?}"
    );
    assert_eq!(v["spec"]["foo"], 2, "the last value wins");
    // Unknown metadata fields are unknown whatever the schema preserves.
    let body = json!({"apiVersion": "example.org/v1", "kind": "Blob", "metadata": {"name": "b2", "unknownMeta": "x"}});
    let (s, v, _) = req(
        &client,
        "POST",
        "/apis/example.org/v1/namespaces/default/blobs?fieldValidation=Strict",
        "application/json",
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        v["message"],
        "Blob in version \"v1\" cannot be handled as a Blob: strict decoding error: unknown field \"metadata.unknownMeta\""
    );
    let (s, v, warnings) = req(
        &client,
        "POST",
        "/apis/example.org/v1/namespaces/default/blobs",
        "application/json",
        Some(body),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert!(v["metadata"].get("unknownMeta").is_none());
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown field \\\"metadata.unknownMeta\\\"")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn crd_openapi_multiple_groups_and_kinds() {
    let c = Cluster::up().await;
    let client = c.client().await;
    for (group, plural, kind) in [
        ("a.example.com", "foos", "Foo"),
        ("a.example.com", "bars", "Bar"),
        ("b.example.net", "foos", "Foo"),
    ] {
        let mut crd = crd_json();
        crd["metadata"]["name"] = json!(format!("{plural}.{group}"));
        crd["spec"]["group"] = json!(group);
        crd["spec"]["names"] = json!({"plural": plural, "kind": kind});
        install(&client, crd).await;
    }
    let (_, doc) = get(&client, "/openapi/v2").await;
    for def in [
        "com.example.a.v1.Foo",
        "com.example.a.v1.Bar",
        "net.example.b.v1.Foo",
        "net.example.b.v1.FooList",
    ] {
        assert!(doc["definitions"].get(def).is_some(), "{def} missing");
    }
    let (_, index) = get(&client, "/openapi/v3").await;
    for key in ["apis/a.example.com/v1", "apis/b.example.net/v1"] {
        assert!(
            index["paths"].get(key).is_some(),
            "{key} missing from the v3 index"
        );
    }
}

#[tokio::test]
async fn the_official_python_client_serves_custom_objects() {
    let has_client = std::process::Command::new("python3")
        .args(["-c", "import kubernetes"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_client {
        assert!(
            std::env::var("CI").is_err(),
            "the Python kubernetes client is missing: run hack/install-deps.sh"
        );
        eprintln!("python kubernetes client not installed: skipping");
        return;
    }
    let c = Cluster::up().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/clients/python_crd.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(c.kubeconfig())
        .output()
        .expect("python3 ran");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn selectable_fields_added_later_apply_to_existing_objects() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let mut crd = crd_json();
    crd["spec"]["versions"][0]
        .as_object_mut()
        .expect("version")
        .remove("selectableFields");
    install(&client, crd).await;
    for (name, color) in [("a", "red"), ("b", "blue")] {
        let (s, v) = post(&client, WIDGETS, json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"color": color}})).await;
        assert_eq!(s, 201, "{v}");
    }
    // Listed (and cached) before the field is selectable.
    let (s, _) = get(&client, WIDGETS).await;
    assert_eq!(s, 200);
    let (s, _) = get(
        &client,
        &format!("{WIDGETS}?fieldSelector=spec.color%3Dred"),
    )
    .await;
    assert_eq!(s, 400);
    let patch = json!([{"op": "add", "path": "/spec/versions/0/selectableFields", "value": [{"jsonPath": ".spec.color"}]}]);
    let (s, v, _) = req(
        &client,
        "PATCH",
        &format!("{CRDS}/widgets.example.com"),
        "application/json-patch+json",
        Some(patch),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let v = wait_for(
        &client,
        &format!("{WIDGETS}?fieldSelector=spec.color%3Dred"),
        "selectable",
        |s, _| s == 200,
    )
    .await;
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["a"]);
}
