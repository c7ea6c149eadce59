//! Behaviour drawn from upstream's documented patch semantics
//! (strategicpatch tests, kubectl patch docs, RFC 6902/7386 examples).

use rkube_patch::{
    BuiltinSchema, PatchError, json_patch, merge_patch, root_type, strategic_merge_patch,
    strategic_merge_patch_for, type_by_name,
};
use serde_json::{Value, json};

fn smp(kind: (&str, &str, &str), doc: Value, patch: Value) -> Value {
    strategic_merge_patch_for(&doc, &patch, kind.0, kind.1, kind.2).expect("patch applies")
}

const POD: (&str, &str, &str) = ("", "v1", "Pod");
const DEPLOY: (&str, &str, &str) = ("apps", "v1", "Deployment");

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

#[test]
fn schema_lookup() {
    assert!(root_type("apps", "v1", "Deployment").is_some());
    assert!(root_type("", "v1", "Pod").is_some());
    assert!(root_type("nope", "v1", "Pod").is_none());
    assert_eq!(
        root_type("", "v1", "Pod").map(|t| t.name()),
        Some("io.k8s.api.core.v1.Pod")
    );
    let spec = type_by_name("io.k8s.api.core.v1.PodSpec").expect("PodSpec");
    use rkube_patch::PatchSchema;
    let c = BuiltinSchema.field(spec, "containers").expect("containers");
    assert!(c.merge);
    assert_eq!(c.merge_key, "name");
    assert_eq!(
        c.elem.map(|t| t.name()),
        Some("io.k8s.api.core.v1.Container")
    );
    let t = BuiltinSchema
        .field(spec, "tolerations")
        .expect("tolerations");
    assert!(!t.merge);
}

#[test]
fn containers_merged_by_name() {
    let doc = pod(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
    let out = smp(
        POD,
        doc,
        json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])
    );
}

#[test]
fn new_container_appended() {
    let doc = pod(json!([{"name": "a", "image": "a:1"}]));
    let out = smp(
        POD,
        doc,
        json!({"spec": {"containers": [{"name": "c", "image": "c:1", "x": null}]}}),
    );
    // Upstream's mergeSortedSlice puts patch items the live list lacks
    // before the server-only ones (no $setElementOrder to say otherwise).
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "c", "image": "c:1"}, {"name": "a", "image": "a:1"}])
    );
}

#[test]
fn container_ports_merged_by_container_port() {
    let doc = pod(json!([{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]));
    let out = smp(
        POD,
        doc,
        json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 80, "protocol": "TCP"}]}]}}),
    );
    assert_eq!(
        out["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 443, "name": "https"}, {"containerPort": 80, "name": "http", "protocol": "TCP"}])
    );
}

#[test]
fn env_delete_by_name() {
    let doc = pod(
        json!([{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]),
    );
    let out = smp(
        POD,
        doc,
        json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "$patch": "delete"}, {"name": "Z", "value": "3"}]}]}}),
    );
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!([{"name": "Z", "value": "3"}, {"name": "Y", "value": "2"}])
    );
}

#[test]
fn volumes_merged_by_name() {
    let mut doc = pod(json!([{"name": "a"}]));
    doc["spec"]["volumes"] =
        json!([{"name": "v1", "emptyDir": {}}, {"name": "v2", "configMap": {"name": "cm"}}]);
    let out = smp(
        POD,
        doc,
        json!({"spec": {"volumes": [{"name": "v2", "configMap": {"name": "cm2"}}, {"name": "v3", "emptyDir": {}}]}}),
    );
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "v1", "emptyDir": {}}, {"name": "v2", "configMap": {"name": "cm2"}}, {"name": "v3", "emptyDir": {}}])
    );
}

#[test]
fn list_replace_directive() {
    let doc = pod(json!([{"name": "a"}, {"name": "b"}]));
    let out = smp(
        POD,
        doc,
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}}),
    );
    assert_eq!(out["spec"]["containers"], json!([{"name": "c"}]));
}

#[test]
fn map_directives() {
    let doc = json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}});
    let out = smp(
        POD,
        doc.clone(),
        json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
    let out = smp(
        POD,
        doc.clone(),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({}));
    let err = strategic_merge_patch_for(
        &doc,
        &json!({"metadata": {"$patch": "bogus"}}),
        "",
        "v1",
        "Pod",
    );
    assert!(matches!(err, Err(PatchError::BadPatch(_))));
}

#[test]
fn set_element_order() {
    let doc = pod(
        json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}, {"name": "c", "image": "c"}]),
    );
    let out = smp(
        POD,
        doc,
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "a2"}]
        }}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "c", "image": "c"}, {"name": "a", "image": "a2"}, {"name": "b", "image": "b"}])
    );
}

#[test]
fn retain_keys_strategy_switch() {
    let doc = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}});
    let out = smp(
        DEPLOY,
        doc.clone(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // A patch key outside the retained set is rejected (422 upstream).
    let err = strategic_merge_patch_for(
        &doc,
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}),
        "apps",
        "v1",
        "Deployment",
    )
    .expect_err("must fail");
    assert_eq!(err.http_status(), 422);
}

#[test]
fn tolerations_replaced_whole() {
    let mut doc = pod(json!([{"name": "a"}]));
    doc["spec"]["tolerations"] =
        json!([{"key": "k1", "operator": "Exists"}, {"key": "k2", "operator": "Exists"}]);
    let out = smp(
        POD,
        doc,
        json!({"spec": {"tolerations": [{"key": "k3", "operator": "Exists"}]}}),
    );
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "k3", "operator": "Exists"}])
    );
}

#[test]
fn finalizers_primitive_list() {
    let doc = json!({"metadata": {"name": "p", "finalizers": ["a", "b", "c"]}});
    let out = smp(
        POD,
        doc.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
    // Merge strategy on a primitive list is a set union.
    let out = smp(POD, doc, json!({"metadata": {"finalizers": ["d", "a"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["d", "a", "b", "c"]));
}

#[test]
fn labels_null_removes() {
    let doc = json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}});
    let out = smp(
        POD,
        doc,
        json!({"metadata": {"labels": {"a": null, "c": "3"}, "annotations": {"x": null}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
    assert_eq!(out["metadata"]["annotations"], json!({}));
}

#[test]
fn unknown_kind_rejected_and_untyped_patch_replaces_lists() {
    assert!(strategic_merge_patch_for(&json!({}), &json!({}), "example.com", "v1", "Foo").is_err());
    let out = strategic_merge_patch(
        &json!({"a": [1, 2], "m": {"x": 1}}),
        &json!({"a": [3], "m": {"y": 2}}),
        &BuiltinSchema,
        None,
    )
    .expect("applies");
    assert_eq!(out, json!({"a": [3], "m": {"x": 1, "y": 2}}));
}

#[test]
fn missing_merge_key_is_an_error() {
    let doc = pod(json!([{"name": "a"}]));
    let err = strategic_merge_patch_for(
        &doc,
        &json!({"spec": {"containers": [{"image": "x"}]}}),
        "",
        "v1",
        "Pod",
    );
    assert!(err.is_err());
}

#[test]
fn json_patch_ops() {
    let doc = json!({"a": {"b": 1}, "list": [1, 2], "x~y": 1, "s/t": 2});
    let patch = json!([
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "add", "path": "/list/0", "value": 0},
        {"op": "replace", "path": "/a/b", "value": 5},
        {"op": "remove", "path": "/x~0y"},
        {"op": "move", "from": "/s~1t", "path": "/moved"},
        {"op": "copy", "from": "/a", "path": "/c"},
        {"op": "test", "path": "/c/b", "value": 5.0}
    ]);
    let out = json_patch(&doc, &patch).expect("applies");
    assert_eq!(
        out,
        json!({"a": {"b": 5}, "c": {"b": 5}, "list": [0, 1, 2, 3], "moved": 2})
    );
}

#[test]
fn json_patch_failing_test_is_atomic() {
    let doc = json!({"a": 1});
    let patch = json!([
        {"op": "replace", "path": "/a", "value": 2},
        {"op": "test", "path": "/a", "value": 1}
    ]);
    let err = json_patch(&doc, &patch).expect_err("test fails");
    assert_eq!(err.http_status(), 422);
    assert_eq!(doc, json!({"a": 1}));
}

#[test]
fn json_patch_errors() {
    let doc = json!({"a": [1]});
    for (patch, status) in [
        (json!({"op": "add"}), 400),
        (json!([{"op": "frob", "path": "/a"}]), 400),
        (json!([{"op": "add", "path": "a", "value": 1}]), 400),
        (json!([{"op": "add", "path": "/a/5", "value": 1}]), 422),
        (json!([{"op": "remove", "path": "/nope"}]), 422),
        (json!([{"op": "replace", "path": "/a/01", "value": 1}]), 422),
        (json!([{"op": "move", "from": "/a", "path": "/a/0"}]), 422),
        (json!([{"op": "add", "path": "/x/y", "value": 1}]), 422),
    ] {
        let err = json_patch(&doc, &patch).expect_err("must fail");
        assert_eq!(err.http_status(), status, "{patch}: {err}");
    }
    assert_eq!(
        json_patch(&doc, &json!([{"op": "add", "path": "", "value": 7}])),
        Ok(json!(7))
    );
}

#[test]
fn merge_patch_basics() {
    let doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
    let out = merge_patch(
        &doc,
        &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"x": null}}),
    );
    assert_eq!(out, json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {}}));
    assert_eq!(merge_patch(&doc, &json!(["x"])), json!(["x"]));
    assert_eq!(merge_patch(&json!("s"), &json!({"a": 1})), json!({"a": 1}));
}
