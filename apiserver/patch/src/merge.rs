//! RFC 7386 JSON merge patch (`application/merge-patch+json`).

use serde_json::Value;

/// Applies `patch` to `doc` per RFC 7386: objects merge recursively, `null`
/// deletes a member, anything else (arrays included) replaces the target.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    let Value::Object(patch_map) = patch else {
        return patch.clone();
    };
    let mut target = match doc {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    for (k, v) in patch_map {
        if v.is_null() {
            target.remove(k);
        } else {
            let merged = merge_patch(target.get(k).unwrap_or(&Value::Null), v);
            target.insert(k.clone(), merged);
        }
    }
    Value::Object(target)
}
