//! Defaulting (upstream `schema/defaulting`): non-nullable nulls without a
//! default are dropped first, then `default`s fill absent fields and
//! non-nullable nulls, descending into objects, maps and arrays.

use crate::schema::Schema;
use serde_json::Value;

fn non_nullable_null(x: &Value, s: Option<&Schema>) -> bool {
    x.is_null() && s.is_some_and(|s| !s.nullable)
}

/// Upstream `PruneNonNullableNullsWithoutDefaults`.
pub(crate) fn prune_nulls(x: &mut Value, s: Option<&Schema>) {
    match x {
        Value::Object(m) => {
            m.retain(|k, v| {
                let sub = s.and_then(|s| s.child(k));
                if non_nullable_null(v, sub) && sub.is_some_and(|s| s.default.is_none()) {
                    return false;
                }
                prune_nulls(v, sub);
                true
            });
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            for v in a {
                prune_nulls(v, items);
            }
        }
        _ => {}
    }
}

/// Upstream `Default`.
pub(crate) fn default(x: &mut Value, s: &Schema) {
    match x {
        Value::Object(m) => {
            if let Some(props) = &s.properties {
                for (k, prop) in props {
                    let Some(d) = &prop.default else { continue };
                    let missing = match m.get(k) {
                        None => true,
                        Some(v) => non_nullable_null(v, Some(prop)),
                    };
                    if missing {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, v) in m.iter_mut() {
                if let Some(prop) = s.property(k) {
                    default(v, prop);
                } else if let Some(ap) = s.additional_schema() {
                    if non_nullable_null(v, Some(ap)) {
                        // As upstream, the replaced (null) value is the one
                        // descended into, so a default isn't defaulted further.
                        if let Some(d) = &ap.default {
                            *v = d.clone();
                        }
                        continue;
                    }
                    default(v, ap);
                }
            }
        }
        Value::Array(a) => {
            let Some(items) = s.items.as_deref() else {
                return;
            };
            for v in a.iter_mut() {
                if non_nullable_null(v, Some(items)) {
                    // Upstream descends into the old (null) value, so a
                    // defaulted item is not defaulted further.
                    if let Some(d) = &items.default {
                        *v = d.clone();
                    }
                    continue;
                }
                default(v, items);
            }
        }
        _ => {}
    }
}
