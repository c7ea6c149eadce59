//! DefaultTolerationSeconds: pods get 300 s tolerations of the not-ready
//! and unreachable NoExecute taints unless they tolerate them already.

use serde_json::{Value, json};

pub fn default_toleration_seconds(pod: &mut Value) {
    let tolerated = |tols: &[Value], key: &str| {
        tols.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or_default();
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        })
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tols = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(list) = tols.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerated(list, key) {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }));
        }
    }
}
