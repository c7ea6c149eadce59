//! The structural schema as server-side apply's [`PatchSchema`]: which lists
//! are sets, maps (by which keys) or atomic, which maps are atomic, with
//! `metadata` typed as the built-in ObjectMeta.

use crate::schema::Schema;
use rkube_patch::{BuiltinSchema, FieldMeta, PatchSchema, TypeRef};
use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

/// One object-or-map node of the schema.
#[derive(Debug, Default)]
struct Node {
    fields: BTreeMap<String, FieldMeta>,
    /// Metadata of every value of a map (`additionalProperties`).
    values: Option<FieldMeta>,
}

/// A custom resource's patch schema; [`CrdPatchSchema::root`] is the type of
/// the whole object.
#[derive(Debug)]
pub struct CrdPatchSchema {
    nodes: Vec<Node>,
}

impl CrdPatchSchema {
    pub(crate) fn build(s: &Schema) -> CrdPatchSchema {
        let mut b = CrdPatchSchema { nodes: Vec::new() };
        let root = b.node(s);
        if let Some(root) = root
            && let Some(meta) =
                rkube_patch::type_by_name("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        {
            let idx = usize::from(root.id() - TypeRef::CUSTOM_BASE);
            b.nodes[idx].fields.insert(
                "metadata".into(),
                FieldMeta {
                    elem: Some(meta),
                    ..FieldMeta::default()
                },
            );
        }
        b
    }

    /// The type of the object root.
    pub fn root(&self) -> Option<TypeRef> {
        TypeRef::custom(TypeRef::CUSTOM_BASE, false).filter(|_| !self.nodes.is_empty())
    }

    /// Registers the node for an object schema; `None` past the id space.
    fn node(&mut self, s: &Schema) -> Option<TypeRef> {
        let idx = self.nodes.len();
        let id = u16::try_from(idx).ok()?.checked_add(TypeRef::CUSTOM_BASE)?;
        self.nodes.push(Node::default());
        let mut node = Node::default();
        if let Some(props) = &s.properties {
            for (k, p) in props {
                node.fields.insert(k.clone(), self.meta(p));
            }
        }
        if let Some(ap) = s.additional_schema() {
            node.values = Some(self.meta(ap));
        }
        self.nodes[idx] = node;
        TypeRef::custom(id, false)
    }

    /// Metadata of a value with schema `s`.
    fn meta(&mut self, s: &Schema) -> FieldMeta {
        let mut m = FieldMeta::default();
        match s.ty.as_str() {
            "array" => {
                match s.list_type.as_deref() {
                    Some("map") => {
                        m.list_map = true;
                        m.list_map_keys = intern(&s.list_map_keys);
                    }
                    Some("set") => m.list_set = true,
                    // Lists without a list type are atomic, as upstream.
                    _ => m.atomic = true,
                }
                if let Some(items) = s.items.as_deref() {
                    m.elem_atomic = items.map_type.as_deref() == Some("atomic")
                        || (items.ty == "array"
                            && items.list_type.as_deref() != Some("map")
                            && items.list_type.as_deref() != Some("set"));
                    if items.ty == "object" || items.properties.is_some() {
                        m.elem = self.node(items);
                    }
                }
            }
            "object" | "" if s.properties.is_some() || s.additional_properties.is_some() => {
                m.atomic = s.map_type.as_deref() == Some("atomic");
                m.elem = self.node(s);
            }
            "object" => m.atomic = s.map_type.as_deref() == Some("atomic"),
            _ => {}
        }
        m
    }
}

impl PatchSchema for CrdPatchSchema {
    fn field(&self, ty: TypeRef, field: &str) -> Option<FieldMeta> {
        let Some(idx) = ty.id().checked_sub(TypeRef::CUSTOM_BASE) else {
            // Built-in types inside a custom resource (metadata).
            return BuiltinSchema.field(ty, field);
        };
        let node = self.nodes.get(usize::from(idx))?;
        node.fields.get(field).copied().or(node.values)
    }
}

/// List-map keys live as long as the process (FieldMeta holds `'static`
/// slices); each distinct key list is stored once.
fn intern(keys: &[String]) -> &'static [&'static str] {
    static KEYS: LazyLock<Mutex<HashMap<Vec<String>, &'static [&'static str]>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut table = match KEYS.lock() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(k) = table.get(keys) {
        return k;
    }
    let leaked: Vec<&'static str> = keys
        .iter()
        .map(|k| &*Box::leak(k.clone().into_boxed_str()))
        .collect();
    let leaked: &'static [&'static str] = Box::leak(leaked.into_boxed_slice());
    table.insert(keys.to_vec(), leaked);
    leaked
}
