//! Validation ratcheting on update (upstream `CRDValidationRatcheting`, on
//! by default): a schema error about a value that the update did not change
//! is dropped, so tightening a schema doesn't make stored objects
//! un-updatable. Values correlate through object properties, map keys, the
//! keys of `x-kubernetes-list-type: map` items and equal `set` items; atomic
//! list items don't correlate, so there the whole list must be unchanged.

use crate::openapi::Seg;
use crate::schema::Schema;
use serde_json::Value;

/// Whether the value at `path` (of `new`) equals its correlated old value.
pub(crate) fn unchanged(s: &Schema, new: &Value, old: &Value, path: &[Seg]) -> bool {
    let (mut s, mut n, mut o) = (Some(s), new, old);
    for seg in path {
        match seg {
            Seg::Field(k) => {
                let (Some(nn), Some(oo)) = (n.get(k), o.get(k)) else {
                    return false;
                };
                s = s.and_then(|s| s.child(k));
                n = nn;
                o = oo;
            }
            Seg::Index(i) => {
                if s.is_some_and(|s| s.list_type.as_deref() == Some("set")) {
                    // A set item correlates with an equal old item.
                    let Some(item) = n.get(*i) else { return false };
                    return o.as_array().is_some_and(|a| a.contains(item));
                }
                let Some(sch) = s.filter(|s| s.list_type.as_deref() == Some("map")) else {
                    // Uncorrelatable items: the list as a whole decides.
                    return n == o;
                };
                let Some(item) = n.get(*i) else { return false };
                let Some(old_item) = o.as_array().and_then(|a| {
                    a.iter()
                        .find(|x| sch.list_map_keys.iter().all(|k| x.get(k) == item.get(k)))
                }) else {
                    return false;
                };
                s = sch.items.as_deref();
                n = item;
                o = old_item;
            }
        }
    }
    n == o
}
