//! Strategic merge patch (`application/strategic-merge-patch+json`), following
//! k8s.io/apimachinery/pkg/util/strategicpatch (apply side, i.e.
//! `StrategicMergeMapPatch` with parallel-list merging and unmatched nulls
//! ignored).
//!
//! Lists merge only where the schema says `x-kubernetes-patch-strategy: merge`
//! (keyed by `x-kubernetes-patch-merge-key`); every other list is replaced,
//! maps merge recursively and `null` deletes. Directives: `$patch`
//! (replace/delete in maps, replace/delete in list elements), `$retainKeys`,
//! `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`.

use serde_json::{Map, Value};

use crate::error::PatchError;
use crate::schema::{BuiltinSchema, FieldMeta, PatchSchema, TypeRef, root_type};

type Obj = Map<String, Value>;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Applies a strategic merge patch to `doc`, a value of type `ty` in `schema`
/// (`None`: no metadata, so lists are replaced and maps merged).
pub fn strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    schema: &dyn PatchSchema,
    ty: Option<TypeRef>,
) -> Result<Value, PatchError> {
    let (Value::Object(original), Value::Object(patch)) = (doc, patch) else {
        return Err(PatchError::bad("invalid JSON document"));
    };
    let ctx = Ctx { schema };
    ctx.merge_map(original.clone(), patch.clone(), ty)
        .map(Value::Object)
}

/// [`strategic_merge_patch`] for a built-in kind. Kinds without a built-in
/// schema are rejected like upstream does for custom resources (415 there).
pub fn strategic_merge_patch_for(
    doc: &Value,
    patch: &Value,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Value, PatchError> {
    let ty = root_type(group, version, kind).ok_or_else(|| {
        PatchError::bad(format!(
            "strategic merge patch format is not supported for {kind}.{version}.{group}"
        ))
    })?;
    strategic_merge_patch(doc, patch, &BuiltinSchema, Some(ty))
}

/// Element class, standing in for Go's reflect kinds of decoded JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Null,
    Bool,
    Number,
    String,
    Object,
}

fn class(v: &Value) -> Result<Class, PatchError> {
    Ok(match v {
        Value::Null => Class::Null,
        Value::Bool(_) => Class::Bool,
        Value::Number(_) => Class::Number,
        Value::String(_) => Class::String,
        Value::Object(_) => Class::Object,
        Value::Array(_) => {
            return Err(PatchError::Invalid(
                "lists of lists are not supported".into(),
            ));
        }
    })
}

/// The common element class of the given lists; `None` when all are empty.
fn element_class(lists: &[&[Value]]) -> Result<Option<Class>, PatchError> {
    let mut prev = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let c = class(v)?;
        match prev {
            None => prev = Some(c),
            Some(p) if p != c => {
                return Err(PatchError::Invalid(
                    "list element types are not identical".into(),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(prev)
}

/// Go's `==` on decoded JSON scalars: numbers compare by value.
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn no_merge_key(m: &Obj, key: &str) -> PatchError {
    PatchError::bad(format!(
        "map: {} does not contain declared merge key: {key}",
        Value::Object(m.clone())
    ))
}

/// Merge key value of a list element (None if missing or not an object).
fn key_of<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object().and_then(|m| m.get(key))
}

fn key_matches(v: &Value, key: &str, want: &Value) -> bool {
    key_of(v, key).is_some_and(|k| scalar_eq(k, want))
}

/// Position of `v` in `list`: by merge key for objects, by value otherwise.
fn index_of(list: &[Value], v: &Value, key: &str, class: Class) -> Option<usize> {
    if class == Class::Object {
        let want = key_of(v, key);
        list.iter().position(|x| match (key_of(x, key), want) {
            (Some(a), Some(b)) => scalar_eq(a, b),
            (None, None) => true,
            _ => false,
        })
    } else {
        list.iter().position(|x| scalar_eq(x, v))
    }
}

/// Drops `null` members recursively: an unmatched null has nothing to delete.
fn discard_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, discard_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(discard_nulls).collect()),
        other => other,
    }
}

/// Strips a `<prefix>/` from a directive key, as upstream's `extractKey`.
fn extract_key<'k>(key: &'k str, prefix: &str, err: &str) -> Result<&'k str, PatchError> {
    key.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| PatchError::bad(err))
}

struct Ctx<'a> {
    schema: &'a dyn PatchSchema,
}

impl Ctx<'_> {
    fn meta(&self, ty: Option<TypeRef>, key: &str) -> FieldMeta {
        ty.and_then(|t| self.schema.field(t, key))
            .unwrap_or_default()
    }

    fn merge_map(
        &self,
        mut original: Obj,
        mut patch: Obj,
        ty: Option<TypeRef>,
    ) -> Result<Obj, PatchError> {
        if let Some(d) = patch.get(DIRECTIVE) {
            return match d.as_str() {
                Some("replace") => {
                    patch.remove(DIRECTIVE);
                    Ok(patch)
                }
                Some("delete") => Ok(Obj::new()),
                _ => Err(PatchError::bad(format!(
                    "unknown patch type: {d} in map: {}",
                    Value::Object(patch.clone())
                ))),
            };
        }
        apply_retain_keys(&mut original, &mut patch)?;
        self.merge_set_element_order(&mut original, &mut patch, ty)?;

        for (k, pv) in patch {
            let (key, is_delete_list) = if k.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                let key = extract_key(
                    &k,
                    DELETE_FROM_PRIMITIVE_LIST,
                    "invalid patch format of primitive list",
                )?;
                (key.to_string(), true)
            } else {
                (k, false)
            };
            if pv.is_null() {
                original.remove(&key);
                continue;
            }
            let meta = self.meta(ty, &key);
            let Some(slot) = original.get_mut(&key) else {
                if !is_delete_list && let Some(v) = self.fresh(pv, &meta)? {
                    original.insert(key, v);
                }
                continue;
            };
            let ov = std::mem::take(slot);
            *slot = match (ov, pv) {
                (Value::Object(o), Value::Object(p)) => {
                    if meta.replace {
                        Value::Object(p)
                    } else {
                        Value::Object(self.merge_map(o, p, meta.elem)?)
                    }
                }
                (Value::Array(o), Value::Array(p)) => {
                    if meta.merge {
                        Value::Array(self.merge_slice(
                            o,
                            p,
                            meta.elem,
                            meta.merge_key,
                            is_delete_list,
                        )?)
                    } else {
                        Value::Array(p)
                    }
                }
                (ov, _) if is_delete_list => ov,
                (_, pv) => discard_nulls(pv),
            };
        }
        Ok(original)
    }

    /// A patch value for a key the original lacks. Maps go through the merge
    /// so their directives and nulls do not leak into the stored object.
    fn fresh(&self, pv: Value, meta: &FieldMeta) -> Result<Option<Value>, PatchError> {
        match pv {
            Value::Object(p) if !meta.replace => {
                if p.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                    return Ok(None);
                }
                Ok(Some(Value::Object(self.merge_map(
                    Obj::new(),
                    p,
                    meta.elem,
                )?)))
            }
            other => Ok(Some(discard_nulls(other))),
        }
    }

    /// Merges the lists named by `$setElementOrder/<field>` directives and
    /// orders them: `$setElementOrder` > patch order > live order.
    fn merge_set_element_order(
        &self,
        original: &mut Obj,
        patch: &mut Obj,
        ty: Option<TypeRef>,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for key in keys {
            let Some(order) = patch.remove(&key) else {
                continue;
            };
            let Value::Array(order) = order else {
                return Err(PatchError::bad(
                    "invalid patch format of setElementOrder list",
                ));
            };
            let field = extract_key(
                &key,
                SET_ELEMENT_ORDER,
                "invalid patch format of setElementOrder list",
            )?;
            let as_list = |v: Option<&Value>| -> Result<Option<Vec<Value>>, PatchError> {
                match v {
                    None => Ok(None),
                    Some(Value::Array(a)) => Ok(Some(a.clone())),
                    Some(_) => Err(PatchError::bad(format!(
                        "{key}: field {field} is not a list"
                    ))),
                }
            };
            let orig_list = as_list(original.get(field))?;
            let patch_list = as_list(patch.get(field))?;
            let meta = self.meta(ty, field);
            validate_with_set_order(patch_list.as_deref().unwrap_or(&[]), &order, meta.merge_key)?;
            let merged = match (orig_list.clone(), patch_list.clone()) {
                (None, None) => continue,
                (Some(o), None) => o,
                (None, Some(p)) => p,
                (Some(o), Some(p)) => {
                    if meta.merge {
                        self.merge_slice(o, p, meta.elem, meta.merge_key, false)?
                    } else {
                        p
                    }
                }
            };
            let orig_list = orig_list.unwrap_or_default();
            let patch_list = patch_list.unwrap_or_default();
            let result = match element_class(&[&orig_list, &patch_list])? {
                None => merged,
                Some(class) => {
                    let (in_order, server_only) = partition(merged, &order, meta.merge_key, class)?;
                    normalize_element_order(
                        in_order,
                        server_only,
                        &order,
                        &orig_list,
                        meta.merge_key,
                        class,
                    )?
                }
            };
            original.insert(field.to_string(), Value::Array(result));
            patch.remove(field);
        }
        Ok(())
    }

    fn merge_slice(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        elem: Option<TypeRef>,
        merge_key: &str,
        is_delete_list: bool,
    ) -> Result<Vec<Value>, PatchError> {
        let Some(class) = element_class(&[&original, &patch])? else {
            return Ok(original);
        };
        let (merged, server_order, patch_order) = if class != Class::Object {
            if is_delete_list {
                return Ok(original
                    .into_iter()
                    .filter(|v| !patch.iter().any(|d| scalar_eq(v, d)))
                    .collect());
            }
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(&patch) {
                if !merged.iter().any(|m| scalar_eq(m, v)) {
                    merged.push(v.clone());
                }
            }
            (merged, original, patch)
        } else {
            if merge_key.is_empty() {
                return Err(PatchError::Invalid(format!(
                    "cannot merge lists without merge key for {}",
                    elem.map_or("unknown type", TypeRef::name)
                )));
            }
            let (original, patch) = special_elements(original, patch, merge_key)?;
            let server_order = original.clone();
            let merged = self.merge_elements(original, patch.clone(), merge_key, elem)?;
            (merged, server_order, patch)
        };
        let (patch_items, server_only) = partition(merged, &patch_order, merge_key, class)?;
        normalize_element_order(
            patch_items,
            server_only,
            &patch_order,
            &server_order,
            merge_key,
            class,
        )
    }

    /// Merges each patch element into the original element with the same
    /// merge key, appending the ones the original lacks.
    fn merge_elements(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        elem: Option<TypeRef>,
    ) -> Result<Vec<Value>, PatchError> {
        for v in patch {
            let Value::Object(m) = v else {
                return Err(PatchError::Invalid(
                    "list element types are not identical".into(),
                ));
            };
            let want = m.get(key).cloned().ok_or_else(|| no_merge_key(&m, key))?;
            match original.iter().position(|o| key_matches(o, key, &want)) {
                Some(i) => {
                    let o = match std::mem::take(&mut original[i]) {
                        Value::Object(o) => o,
                        _ => Obj::new(),
                    };
                    original[i] = Value::Object(self.merge_map(o, m, elem)?);
                }
                None => original.push(Value::Object(self.merge_map(Obj::new(), m, elem)?)),
            }
        }
        Ok(original)
    }
}

/// `$retainKeys`: drop original keys not listed; every non-null patch key must be listed.
fn apply_retain_keys(original: &mut Obj, patch: &mut Obj) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::bad("invalid patch format of retainKeys"));
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(PatchError::Invalid(
                "patch content doesn't match retainKeys list".into(),
            ));
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// Handles `$patch` elements of a merge list: `delete` removes matching
/// originals, `replace` makes the remaining patch elements the whole list.
fn special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Some(directive) = v.as_object().and_then(|m| m.get(DIRECTIVE)) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let want = key_of(&v, key).ok_or_else(|| match &v {
                    Value::Object(m) => no_merge_key(m, key),
                    _ => PatchError::bad("list element is not a map"),
                })?;
                original.retain(|o| !key_matches(o, key, want));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::bad(
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            _ => {
                return Err(PatchError::bad(format!(
                    "unknown patch type: {directive} in map: {v}"
                )));
            }
        }
    }
    Ok(if replace {
        (plain, Vec::new())
    } else {
        (original, plain)
    })
}

/// Splits `items` into those present in `by` and the rest (server-only).
fn partition(
    items: Vec<Value>,
    by: &[Value],
    key: &str,
    class: Class,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::new();
    let mut rest = Vec::new();
    for v in items {
        let found = if class == Class::Object {
            let want = match &v {
                Value::Object(m) => m.get(key).ok_or_else(|| no_merge_key(m, key))?,
                _ => {
                    return Err(PatchError::Invalid(
                        "list element types are not identical".into(),
                    ));
                }
            };
            by.iter().any(|b| key_matches(b, key, want))
        } else {
            by.iter().any(|b| scalar_eq(b, &v))
        };
        if found { present.push(v) } else { rest.push(v) }
    }
    Ok((present, rest))
}

/// Checks that the patch list's non-deleted elements appear in the
/// `$setElementOrder` list in the same relative order.
fn validate_with_set_order(patch: &[Value], order: &[Value], key: &str) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = patch
        .iter()
        .filter(|v| key.is_empty() || key_of(v, DIRECTIVE).is_none())
        .collect();
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        let equal = if key.is_empty() {
            scalar_eq(items[p], &order[o])
        } else {
            let missing = |v: &Value| match v {
                Value::Object(m) => no_merge_key(m, key),
                _ => PatchError::bad("invalid patch format of setElementOrder list"),
            };
            let a = key_of(items[p], key).ok_or_else(|| missing(items[p]))?;
            let b = key_of(&order[o], key).ok_or_else(|| missing(&order[o]))?;
            scalar_eq(a, b)
        };
        if equal {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() {
        return Err(PatchError::bad(format!(
            "the order in patch list {} doesn't match $setElementOrder list {}",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

/// Sorts `patch_items` by `patch_order` and `server_only` by `server_order`,
/// then interleaves them, keeping each side's relative order.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    class: Class,
) -> Result<Vec<Value>, PatchError> {
    let right = sort_by_order(patch_items, patch_order, key, class)?;
    let left = sort_by_order(server_only, server_order, key, class)?;
    // Insert server-only items (left) among patch items (right): a left item
    // goes before the next right item only if the live list had it earlier.
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_of(server_order, l, key, class), index_of(server_order, r, key, class)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

fn sort_by_order(
    mut items: Vec<Value>,
    order: &[Value],
    key: &str,
    class: Class,
) -> Result<Vec<Value>, PatchError> {
    if class == Class::Object {
        for v in items.iter().chain(order) {
            if let Value::Object(m) = v
                && !m.contains_key(key)
            {
                return Err(no_merge_key(m, key));
            }
        }
    }
    let order: Vec<Value> = order
        .iter()
        .filter(|v| key_of(v, DIRECTIVE).and_then(Value::as_str) != Some("delete"))
        .cloned()
        .collect();
    items.sort_by_key(|v| index_of(&order, v, key, class).unwrap_or(usize::MAX));
    Ok(items)
}
