//! Patch metadata lookup: which lists merge, by which key, and what type each
//! nested value has. Backed by the generated `schema_table`, but abstracted
//! behind [`PatchSchema`] so other sources (tests, future aggregated types)
//! can plug in.

use crate::schema_table::{DEFS, ROOTS};

/// Field shape in the generated table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A nested object (`$ref` to a definition).
    S,
    /// An array; the element definition, if any, is in `Fd.2`.
    L,
    /// A map (`additionalProperties`); the value definition, if any, is in `Fd.2`.
    M,
}

pub(crate) const NONE: u16 = u16::MAX;
pub(crate) const STRATEGY_MERGE: u8 = 1;
pub(crate) const STRATEGY_RETAIN_KEYS: u8 = 2;
pub(crate) const STRATEGY_REPLACE: u8 = 4;
pub(crate) const LIST_SET: u8 = 8;
pub(crate) const LIST_MAP: u8 = 16;
pub(crate) const ATOMIC: u8 = 32;
pub(crate) const ELEM_ATOMIC: u8 = 64;

/// One generated field: name, kind, element definition index (or `NONE`),
/// flag bits, patch merge key (or ""), list-map keys.
pub(crate) struct Fd(
    pub &'static str,
    pub Kind,
    pub u16,
    pub u8,
    pub &'static str,
    pub &'static [&'static str],
);

/// One generated definition: OpenAPI name and its fields sorted by name.
pub(crate) struct Def(pub &'static str, pub &'static [Fd]);

/// A position in the schema: an object definition, or a map whose values are
/// of a definition (so every key resolves to that definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeRef {
    def: u16,
    map_of: bool,
}

impl TypeRef {
    /// First id of types from schemas other than the generated table (custom
    /// resources): ids below it name built-in definitions.
    pub const CUSTOM_BASE: u16 = 0x8000;

    /// A type of another [`PatchSchema`] (e.g. a custom resource's), numbered
    /// by that schema from [`TypeRef::CUSTOM_BASE`] on; `map_of` marks a map
    /// whose values all have the type. `None` when `id` is below the base.
    pub fn custom(id: u16, map_of: bool) -> Option<TypeRef> {
        (id >= Self::CUSTOM_BASE).then_some(TypeRef { def: id, map_of })
    }

    /// The type's id: a built-in definition index, or a custom schema's own.
    pub fn id(self) -> u16 {
        self.def
    }

    /// Whether this is a map whose values all have the type.
    pub fn is_map(self) -> bool {
        self.map_of
    }

    /// For a map of objects, the type of its values.
    pub(crate) fn map_values(self) -> Option<TypeRef> {
        self.map_of.then_some(TypeRef {
            def: self.def,
            map_of: false,
        })
    }

    /// The OpenAPI definition name (e.g. `io.k8s.api.core.v1.Pod`).
    pub fn name(self) -> &'static str {
        DEFS.get(usize::from(self.def)).map_or("", |d| d.0)
    }
}

/// Patch metadata for one field, as strategic merge patch needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldMeta {
    /// `x-kubernetes-patch-strategy` contains `merge`.
    pub merge: bool,
    /// `x-kubernetes-patch-strategy` contains `retainKeys`.
    pub retain_keys: bool,
    /// `x-kubernetes-patch-strategy` contains `replace`.
    pub replace: bool,
    /// `x-kubernetes-patch-merge-key` ("" when absent).
    pub merge_key: &'static str,
    /// `x-kubernetes-list-type` is `map` / `set`, or the list/map is atomic.
    /// Informational: strategic merge follows upstream and only honours the
    /// patch strategy, but server-side apply will need these.
    pub list_map: bool,
    pub list_set: bool,
    pub atomic: bool,
    /// The elements (of a list or map) are of an atomic type
    /// (`x-kubernetes-map-type: atomic` on their definition).
    pub elem_atomic: bool,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: &'static [&'static str],
    /// Type of the value (objects), of each element (lists) or of each value (maps).
    pub elem: Option<TypeRef>,
}

/// Source of strategic-merge metadata.
pub trait PatchSchema {
    /// Metadata of `field` inside a value of type `ty`; `None` when unknown
    /// (treated as: maps merge, lists replace).
    fn field(&self, ty: TypeRef, field: &str) -> Option<FieldMeta>;
}

/// The built-in Kubernetes types, from the generated table.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinSchema;

impl PatchSchema for BuiltinSchema {
    fn field(&self, ty: TypeRef, field: &str) -> Option<FieldMeta> {
        if ty.map_of {
            // Every value of a map shares the value type and has no strategy.
            return Some(FieldMeta {
                elem: Some(TypeRef {
                    def: ty.def,
                    map_of: false,
                }),
                ..FieldMeta::default()
            });
        }
        let def = DEFS.get(usize::from(ty.def))?;
        let i = def.1.binary_search_by(|f| f.0.cmp(field)).ok()?;
        let f = &def.1[i];
        let elem = (f.2 != NONE).then_some(TypeRef {
            def: f.2,
            map_of: f.1 == Kind::M,
        });
        // A map field's own TypeRef is "map of X"; lists and objects point at X.
        let elem = match (f.1, elem) {
            (Kind::M, Some(t)) => Some(t),
            (_, Some(t)) => Some(TypeRef {
                def: t.def,
                map_of: false,
            }),
            (_, None) => None,
        };
        Some(FieldMeta {
            merge: f.3 & STRATEGY_MERGE != 0,
            retain_keys: f.3 & STRATEGY_RETAIN_KEYS != 0,
            replace: f.3 & STRATEGY_REPLACE != 0,
            merge_key: f.4,
            list_map: f.3 & LIST_MAP != 0,
            list_set: f.3 & LIST_SET != 0,
            atomic: f.3 & ATOMIC != 0,
            elem_atomic: f.3 & ELEM_ATOMIC != 0,
            list_map_keys: f.5,
            elem,
        })
    }
}

/// Root definition of a built-in kind, e.g. `("apps", "v1", "Deployment")`.
/// The core group is `""`.
pub fn root_type(group: &str, version: &str, kind: &str) -> Option<TypeRef> {
    let i = ROOTS
        .binary_search_by(|r| (r.0, r.1, r.2).cmp(&(group, version, kind)))
        .ok()?;
    Some(TypeRef {
        def: ROOTS[i].3,
        map_of: false,
    })
}

/// Definition by OpenAPI name, e.g. `io.k8s.api.core.v1.PodSpec`.
pub fn type_by_name(name: &str) -> Option<TypeRef> {
    let i = DEFS.binary_search_by(|d| d.0.cmp(name)).ok()?;
    Some(TypeRef {
        def: u16::try_from(i).ok()?,
        map_of: false,
    })
}
