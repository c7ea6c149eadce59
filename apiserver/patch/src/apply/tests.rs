//! Server-side apply cases drawn from upstream's documented behaviour
//! (kubernetes.io "Server-Side Apply": conflicts, forcing, shared
//! ownership, removal of fields a manager stops applying, transfers).

use super::*;
use crate::schema::{BuiltinSchema, root_type};

const NOW: &str = "2026-01-01T00:00:00Z";

fn kind() -> Kind<'static> {
    Kind {
        schema: &BuiltinSchema,
        root: root_type("apps", "v1", "Deployment"),
        has_status: true,
    }
}

fn writer(manager: &str) -> Writer<'_> {
    Writer {
        manager,
        api_version: "apps/v1",
        subresource: "",
        now: NOW,
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}},
        },
    })
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    decode(obj)
        .unwrap()
        .unwrap_or_default()
        .iter()
        .map(|e| (e.manager.clone(), e.operation.as_str().to_owned()))
        .collect()
}

fn owns(obj: &Value, manager: &str, path: &str) -> bool {
    decode(obj)
        .unwrap()
        .unwrap_or_default()
        .iter()
        .filter(|e| e.manager == manager)
        .any(|e| e.fields.paths().iter().any(|p| path_string(p) == path))
}

#[test]
fn create_records_the_creator() {
    let mut obj = deployment(1, "nginx");
    update(&kind(), None, &mut obj, &writer("kubectl-create")).unwrap();
    assert_eq!(
        managers(&obj),
        vec![("kubectl-create".into(), "Update".into())]
    );
    assert!(owns(&obj, "kubectl-create", ".spec.replicas"));
    assert!(owns(
        &obj,
        "kubectl-create",
        r#".spec.template.spec.containers[name="nginx"].image"#
    ));
    assert!(!owns(&obj, "kubectl-create", ".metadata.name"));
    let e = &obj["metadata"]["managedFields"][0];
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(e["time"], NOW);
    assert_eq!(e["apiVersion"], "apps/v1");
}

#[test]
fn apply_creates_then_removes_what_it_stops_applying() {
    let mut config = deployment(2, "nginx");
    config["metadata"]["labels"]["tier"] = json!("front");
    let obj = apply(&kind(), None, &config, &writer("mgr"), false).unwrap();
    assert_eq!(obj["metadata"]["labels"]["tier"], "front");
    assert_eq!(managers(&obj), vec![("mgr".into(), "Apply".into())]);
    // Applying again without the label removes it: nobody else owns it.
    let again = apply(
        &kind(),
        Some(&obj),
        &deployment(2, "nginx"),
        &writer("mgr"),
        false,
    )
    .unwrap();
    assert!(again["metadata"]["labels"].get("tier").is_none());
    assert_eq!(again["metadata"]["labels"]["app"], "web");
}

#[test]
fn conflicts_name_the_manager_and_the_field() {
    let mut obj = deployment(1, "nginx");
    update(
        &kind(),
        None,
        &mut obj,
        &writer("kubectl-client-side-apply"),
    )
    .unwrap();
    let err = apply(
        &kind(),
        Some(&obj),
        &deployment(3, "nginx"),
        &writer("ssa"),
        false,
    )
    .unwrap_err();
    let ApplyError::Conflicts(c) = err else {
        panic!("expected conflicts")
    };
    assert_eq!(
        c,
        vec![(
            r#""kubectl-client-side-apply" using apps/v1"#.to_string(),
            ".spec.replicas".to_string()
        )]
    );
    assert_eq!(
        ApplyError::conflict_message(&c),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
    let two = vec![
        ("\"a\"".to_string(), ".spec.replicas".to_string()),
        ("\"a\"".to_string(), ".spec.paused".to_string()),
    ];
    assert_eq!(
        ApplyError::conflict_message(&two),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\n- .spec.paused"
    );
}

#[test]
fn same_values_are_shared_and_force_moves_ownership() {
    let a = apply(&kind(), None, &deployment(1, "nginx"), &writer("a"), false).unwrap();
    // The same values: no conflict, both own them.
    let b = apply(
        &kind(),
        Some(&a),
        &deployment(1, "nginx"),
        &writer("b"),
        false,
    )
    .unwrap();
    assert!(owns(&b, "a", ".spec.replicas") && owns(&b, "b", ".spec.replicas"));
    // A different value conflicts with "a" (an applier: no version shown).
    let err = apply(
        &kind(),
        Some(&b),
        &deployment(5, "nginx"),
        &writer("b"),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![("\"a\"".into(), ".spec.replicas".into())])
    );
    // Forced: b takes the field, a keeps the rest.
    let forced = apply(
        &kind(),
        Some(&b),
        &deployment(5, "nginx"),
        &writer("b"),
        true,
    )
    .unwrap();
    assert_eq!(forced["spec"]["replicas"], 5);
    assert!(!owns(&forced, "a", ".spec.replicas"));
    assert!(owns(&forced, "b", ".spec.replicas"));
    assert!(owns(&forced, "a", ".spec.selector"));
}

#[test]
fn an_update_takes_fields_from_the_applier() {
    let a = apply(&kind(), None, &deployment(1, "nginx"), &writer("a"), false).unwrap();
    let mut edited = a.clone();
    edited["spec"]["replicas"] = json!(4);
    update(&kind(), Some(&a), &mut edited, &writer("kubectl-edit")).unwrap();
    assert!(owns(&edited, "kubectl-edit", ".spec.replicas"));
    assert!(!owns(&edited, "a", ".spec.replicas"));
    // The applier applying its old value now conflicts with the editor.
    let err = apply(
        &kind(),
        Some(&edited),
        &deployment(1, "nginx"),
        &writer("a"),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![(
            r#""kubectl-edit" using apps/v1"#.into(),
            ".spec.replicas".into()
        )])
    );
}

#[test]
fn two_appliers_own_one_container_each() {
    let mut one = deployment(1, "nginx");
    let a = apply(&kind(), None, &one, &writer("a"), false).unwrap();
    one["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "sidecar", "image": "busybox"}]);
    let b = apply(&kind(), Some(&a), &one, &writer("b"), false).unwrap();
    let names: Vec<&str> = b["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["nginx", "sidecar"]);
    // b drops its container: only its own goes away.
    let mut none = one.clone();
    none["spec"]["template"]["spec"]["containers"] = json!([]);
    none["spec"].as_object_mut().unwrap().remove("template");
    let c = apply(&kind(), Some(&b), &none, &writer("b"), false).unwrap();
    let names: Vec<&str> = c["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["nginx"]);
}

#[test]
fn status_is_not_owned_through_the_main_resource() {
    let mut config = deployment(1, "nginx");
    config["status"] = json!({"replicas": 1});
    let obj = apply(&kind(), None, &config, &writer("a"), false).unwrap();
    assert!(!owns(&obj, "a", ".status.replicas"));
}

#[test]
fn reset_and_sent_managed_fields() {
    let a = apply(&kind(), None, &deployment(1, "nginx"), &writer("a"), false).unwrap();
    let mut reset = a.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    update(&kind(), Some(&a), &mut reset, &writer("x")).unwrap();
    assert!(reset["metadata"].get("managedFields").is_none());
    // Unchanged objects keep their managers and times.
    let mut same = a.clone();
    update(&kind(), Some(&a), &mut same, &writer("x")).unwrap();
    assert_eq!(
        same["metadata"]["managedFields"],
        a["metadata"]["managedFields"]
    );
    // Objects from before field tracking are owned by before-first-apply.
    let mut old = deployment(1, "nginx");
    old["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    let err = apply(
        &kind(),
        Some(&old),
        &deployment(2, "nginx"),
        &writer("a"),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![(
            r#""before-first-apply" using apps/v1"#.into(),
            ".spec.replicas".into()
        )])
    );
}

#[test]
fn managed_fields_in_an_apply_are_refused() {
    let mut config = deployment(1, "nginx");
    config["metadata"]["managedFields"] = json!([]);
    assert!(matches!(
        apply(&kind(), None, &config, &writer("a"), false),
        Err(ApplyError::BadRequest(_))
    ));
}

#[test]
fn kubectl_takes_over_from_its_client_side_apply() {
    // Client-side apply: an Update by kubectl-client-side-apply and the
    // annotation holding the configuration.
    let mut obj = deployment(2, "nginx");
    obj["metadata"]["annotations"] = json!({LAST_APPLIED: deployment(2, "nginx").to_string()});
    update(
        &kind(),
        None,
        &mut obj,
        &writer("kubectl-client-side-apply"),
    )
    .unwrap();
    // kubectl's server-side apply changes fields the annotation has: no
    // conflict, and the annotation follows the new configuration.
    let out = apply(
        &kind(),
        Some(&obj),
        &deployment(4, "nginx"),
        &writer("kubectl"),
        false,
    )
    .unwrap();
    assert_eq!(out["spec"]["replicas"], 4);
    let ann: Value = serde_json::from_str(
        out["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ann["spec"]["replicas"], 4);
    // Another manager still conflicts.
    assert!(matches!(
        apply(
            &kind(),
            Some(&obj),
            &deployment(4, "nginx"),
            &writer("other"),
            false
        ),
        Err(ApplyError::Conflicts(_))
    ));
}

fn pod_spec_patch(containers: Value, extra: Value) -> Value {
    let mut d = deployment(1, "nginx");
    d["spec"]["template"]["spec"]["containers"] = containers;
    if let (Some(spec), Some(extra)) = (
        d["spec"]["template"]["spec"].as_object_mut(),
        extra.as_object(),
    ) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    d
}

#[test]
fn env_vars_and_volumes_merge_by_name() {
    let a_cfg = pod_spec_patch(
        json!([{"name": "nginx", "image": "nginx", "env": [{"name": "A", "value": "1"}]}]),
        json!({"volumes": [{"name": "data", "emptyDir": {}}]}),
    );
    let b_cfg = pod_spec_patch(
        json!([{"name": "nginx", "env": [{"name": "B", "value": "2"}]}]),
        json!({"volumes": [{"name": "cache", "emptyDir": {}}]}),
    );
    let a = apply(&kind(), None, &a_cfg, &writer("a"), false).unwrap();
    let b = apply(&kind(), Some(&a), &b_cfg, &writer("b"), false).unwrap();
    let spec = &b["spec"]["template"]["spec"];
    assert_eq!(
        spec["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    assert_eq!(
        spec["volumes"],
        json!([{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}])
    );
    // a stops applying its volume and env var: only those go.
    let a_less = pod_spec_patch(json!([{"name": "nginx", "image": "nginx"}]), json!({}));
    let c = apply(&kind(), Some(&b), &a_less, &writer("a"), false).unwrap();
    let spec = &c["spec"]["template"]["spec"];
    assert_eq!(
        spec["containers"][0]["env"],
        json!([{"name": "B", "value": "2"}])
    );
    assert_eq!(spec["volumes"], json!([{"name": "cache", "emptyDir": {}}]));
    // Changing b's env var value conflicts with b.
    let a_takes = pod_spec_patch(
        json!([{"name": "nginx", "image": "nginx", "env": [{"name": "B", "value": "3"}]}]),
        json!({}),
    );
    let err = apply(&kind(), Some(&c), &a_takes, &writer("a"), false).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![(
            "\"b\"".into(),
            r#".spec.template.spec.containers[name="nginx"].env[name="B"].value"#.into()
        )])
    );
}

#[test]
fn ports_are_keyed_by_port_and_protocol() {
    let cfg = pod_spec_patch(
        json!([{"name": "dns", "image": "dns", "ports": [
            {"containerPort": 53, "protocol": "UDP", "name": "dns"},
            {"containerPort": 53, "name": "dns-tcp"}]}]),
        json!({}),
    );
    let a = apply(&kind(), None, &cfg, &writer("a"), false).unwrap();
    // The same port with the defaulted protocol written out is the same item.
    let mut live = a.clone();
    live["spec"]["template"]["spec"]["containers"][0]["ports"][1]["protocol"] = json!("TCP");
    let again = apply(&kind(), Some(&live), &cfg, &writer("a"), false).unwrap();
    let ports = again["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(ports, 2);
    assert!(owns(
        &again,
        "a",
        r#".spec.template.spec.containers[name="dns"].ports[containerPort=53,protocol="UDP"].name"#
    ));
}

#[test]
fn tolerations_are_atomic() {
    let a_cfg = pod_spec_patch(
        json!([{"name": "nginx", "image": "nginx"}]),
        json!({"tolerations": [{"key": "a", "operator": "Exists"}]}),
    );
    let b_cfg = pod_spec_patch(
        json!([{"name": "nginx", "image": "nginx"}]),
        json!({"tolerations": [{"key": "b", "operator": "Exists"}]}),
    );
    let a = apply(&kind(), None, &a_cfg, &writer("a"), false).unwrap();
    // The whole list is one field: a different list conflicts...
    assert_eq!(
        apply(&kind(), Some(&a), &b_cfg, &writer("b"), false).unwrap_err(),
        ApplyError::Conflicts(vec![(
            "\"a\"".into(),
            ".spec.template.spec.tolerations".into()
        )])
    );
    // ...and forcing replaces it whole.
    let b = apply(&kind(), Some(&a), &b_cfg, &writer("b"), true).unwrap();
    assert_eq!(
        b["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
}

#[test]
fn update_managers_are_capped_at_ten() {
    let mut obj = deployment(1, "nginx");
    update(&kind(), None, &mut obj, &writer("creator")).unwrap();
    for i in 0..12 {
        let mut next = obj.clone();
        next["metadata"]["labels"][format!("l{i}")] = json!("x");
        let name = format!("m{i:02}");
        let now = format!("2026-01-01T00:00:{i:02}Z");
        let w = Writer {
            manager: &name,
            api_version: "apps/v1",
            subresource: "",
            now: &now,
        };
        update(&kind(), Some(&obj), &mut next, &w).unwrap();
        obj = next;
    }
    let m = managers(&obj);
    assert_eq!(m.len(), 10, "{m:?}");
    assert_eq!(m[0], ("ancient-changes".to_string(), "Update".to_string()));
    // The merged bucket owns what its managers owned.
    assert!(owns(&obj, "ancient-changes", ".spec.replicas"));
    assert!(owns(&obj, "ancient-changes", ".metadata.labels.l0"));
    assert!(owns(&obj, "m11", ".metadata.labels.l11"));
}
