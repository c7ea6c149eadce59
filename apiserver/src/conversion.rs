//! Conversion between a served version and the stored one, for resources
//! served in several API groups from one storage. Today that is Events:
//! `events.k8s.io/v1` Events are stored as core `v1` Events, as upstream.

use serde_json::{Map, Value, json};

use crate::registry::Resource;
use crate::status::ApiError;

/// (events.k8s.io/v1 field, core/v1 field).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("note", "message"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn is_new_events(r: &Resource) -> bool {
    r.group == "events.k8s.io" && r.plural == "events"
}

/// Whether objects of this resource differ from what is stored.
pub fn converts(r: &Resource) -> bool {
    is_new_events(r) || r.custom.as_ref().is_some_and(|c| c.converts())
}

fn remap(
    obj: &Value,
    api_version: &str,
    from_to: impl Iterator<Item = (&'static str, &'static str)>,
) -> Value {
    let Some(src) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    out.insert("kind".into(), json!("Event"));
    out.insert("apiVersion".into(), json!(api_version));
    if let Some(m) = src.get("metadata") {
        out.insert("metadata".into(), m.clone());
    }
    for (from, to) in from_to {
        if let Some(v) = src.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// The stored form of an object written through `r`.
pub async fn to_storage(r: &Resource, mut obj: Value) -> Result<Value, ApiError> {
    if let Some(c) = &r.custom {
        c.to_storage(&mut obj).await?;
        return Ok(obj);
    }
    Ok(if is_new_events(r) {
        remap(&obj, "v1", EVENT_FIELDS.iter().copied())
    } else {
        obj
    })
}

/// An object read from storage, as `r` serves it.
pub async fn from_storage(r: &Resource, obj: Value) -> Result<Value, ApiError> {
    let mut objs = [obj];
    convert_read(r, &mut objs, false).await?;
    let [obj] = objs;
    Ok(obj)
}

/// The items of a list read from storage, as `r` serves them: custom
/// resources go to a conversion webhook in one review.
pub async fn from_storage_all(r: &Resource, mut objs: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    convert_read(r, &mut objs, true).await?;
    Ok(objs)
}

async fn convert_read(r: &Resource, objs: &mut [Value], list: bool) -> Result<(), ApiError> {
    if let Some(c) = &r.custom {
        return c.from_storage(objs, list).await;
    }
    if is_new_events(r) {
        for obj in objs.iter_mut() {
            *obj = remap(
                obj,
                "events.k8s.io/v1",
                EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)),
            );
        }
    }
    Ok(())
}

/// Whether the object a write returns is read back from its stored form,
/// as upstream does, rather than the one written (only where a webhook
/// could answer differently).
pub fn round_trips(r: &Resource) -> bool {
    r.custom.as_ref().is_some_and(|c| c.round_trips())
}
