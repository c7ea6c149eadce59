//! Structural schemas (upstream `apiextensions-apiserver/pkg/apiserver/schema`):
//! what a CustomResourceDefinition's `openAPIV3Schema` means for the custom
//! resources it describes. The API server compiles a schema once per CRD
//! version and runs every custom resource write through it:
//! prune → default → validate (OpenAPI keywords, list types, CEL rules).
//!
//! Paths in errors are upstream's: relative to the object root
//! (`spec.replicas`), and for CRD checks relative to the base path given.
//!
//! - [`Structural::compile`]: the CRD-side checks (`$ref`, `uniqueItems`,
//!   type required outside int-or-string/preserve-unknown-fields, root
//!   metadata restricted to name/generateName, list/map type rules, junctor
//!   (allOf/anyOf/oneOf/not) restrictions and completeness, defaults pruned
//!   and valid, CEL rules compiled within the cost limits).
//! - [`Structural::prune`]: unknown fields (and unknown fields of embedded
//!   resources' metadata), with their paths for `fieldValidation`.
//! - [`Structural::apply_defaults`]: non-nullable nulls dropped, defaults.
//! - [`Structural::validate`]: kube-openapi value validation, list-type
//!   set/map uniqueness, embedded resource checks, then CEL rules unless an
//!   error blocks them; on update, ratcheting drops errors about unchanged
//!   values and `oldSelf` transition rules run.
//! - [`Structural::patch_schema`]: list types and map keys for server-side
//!   apply.
//!
//! CEL limits: per rule, an estimated cost of 10M ([`cel::PER_RULE_COST_LIMIT`]),
//! the whole schema 100M (rules times how often they may run); at run time a
//! rule's bound over the actual value must stay under 1M per evaluation and
//! 10M per object, checked before it runs. Rules nest at most 32 levels.

pub mod cel;
mod defaults;
mod embedded;
mod format;
mod listtype;
mod openapi;
mod patch_schema;
mod path;
mod prune;
mod ratchet;
mod schema;
mod structural;
#[cfg(test)]
mod tests;

/// Upstream `hasBlockingErr`: errors after which rules would see ill-typed
/// or missing values (required, enum, too long, too many, wrong type).
fn blocks_rules(e: &FieldError) -> bool {
    match &e.kind {
        ErrorKind::Required
        | ErrorKind::NotSupported(..)
        | ErrorKind::TooLong(_)
        | ErrorKind::TooMany(..) => true,
        ErrorKind::Invalid(_) => e.detail.contains(" must be of type "),
        _ => false,
    }
}

use serde_json::Value;
use std::sync::Arc;

pub use patch_schema::CrdPatchSchema;
pub use rkube_validation::{ErrorKind, FieldError};

use schema::Schema;

/// A compiled `openAPIV3Schema`.
#[derive(Debug, Clone)]
pub struct Structural {
    schema: Value,
    parsed: Arc<Schema>,
}

impl Structural {
    /// Checks a CRD version's schema (structural rules, defaults that
    /// validate, CEL rules that compile within the cost budget) and compiles
    /// it. `base` is the schema's path inside the CRD, e.g.
    /// `spec.versions[0].schema.openAPIV3Schema`.
    pub fn compile(schema: &Value, base: &str) -> Result<Structural, Vec<FieldError>> {
        let mut parsed = Schema::parse(schema);
        let errs = structural::check(&parsed, base);
        if !errs.is_empty() {
            return Err(errs);
        }
        let errs = cel::compile(&mut parsed, base);
        if !errs.is_empty() {
            return Err(errs);
        }
        let errs = structural::check_defaults(&parsed, base);
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Structural {
            schema: schema.clone(),
            parsed: Arc::new(parsed),
        })
    }

    /// The schema as server-side apply needs it (list types, map keys, map
    /// types); `patch_schema().root()` is the type of the object.
    pub fn patch_schema(&self) -> CrdPatchSchema {
        CrdPatchSchema::build(&self.parsed)
    }

    /// The schema node a simple JSON path (`.spec.replicas`, `status.x`)
    /// leads to, through `properties` and `additionalProperties` (and
    /// `items` for `[*]`/`[N]` segments); `None` when the schema doesn't
    /// specify it. For checks on CRD paths: scale replicas paths, printer
    /// columns, selectable fields.
    pub fn field_schema(&self, path: &str) -> Option<&Value> {
        let mut node = &self.schema;
        let path = path.strip_prefix('.').unwrap_or(path);
        if path.is_empty() {
            return Some(node);
        }
        for seg in path.split('.') {
            let (name, rest) = match seg.find('[') {
                Some(i) => (&seg[..i], &seg[i..]),
                None => (seg, ""),
            };
            if !name.is_empty() {
                node = match node.get("properties").and_then(|p| p.get(name)) {
                    Some(n) => n,
                    None => node.get("additionalProperties").filter(|a| a.is_object())?,
                };
            }
            for _ in rest.matches('[') {
                node = node.get("items").filter(|i| i.is_object())?;
            }
        }
        Some(node)
    }

    /// The schema this was compiled from.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Removes fields the schema doesn't know (`apiVersion`, `kind` and
    /// `metadata` at the root are always kept; `metadata` is never pruned
    /// here). Returns the removed paths (`spec.foo`), for
    /// `fieldValidation=Strict|Warn`.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        prune::prune(obj, &self.parsed, true)
    }

    /// Applies `default`s, as on write and when read from storage. Nulls
    /// in non-nullable fields without a default are dropped first, as
    /// upstream's decoder does.
    pub fn apply_defaults(&self, obj: &mut Value) {
        defaults::prune_nulls(obj, Some(&self.parsed));
        defaults::default(obj, &self.parsed);
    }

    /// Validates a (pruned, defaulted) object against the schema, list
    /// types and `x-kubernetes-validations` rules; `old` is the stored
    /// object on update (for `oldSelf` transition rules and ratcheting).
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        // Upstream's order: OpenAPI, embedded resources, list types, CEL.
        let mut out = openapi::validate(&self.parsed, obj, "");
        if let Some(old) = old {
            let keep: Vec<bool> = out
                .nodes
                .iter()
                .map(|n| !ratchet::unchanged(&self.parsed, obj, old, n))
                .collect();
            let mut k = keep.iter();
            out.errors.retain(|_| k.next().copied().unwrap_or(true));
        }
        let mut errs = out.errors;
        embedded::validate("", &self.parsed, obj, &mut errs);
        listtype::validate("", &self.parsed, obj, &mut errs);
        if errs.iter().any(blocks_rules) {
            // Upstream's hasBlockingErr: rules would see ill-typed values.
            if cel::has_rules(&self.parsed) {
                errs.push(FieldError::invalid(
                    "<nil>",
                    Value::Null,
                    "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
                ));
            }
        } else {
            errs.extend(cel::validate(&self.parsed, obj, old));
        }
        errs
    }
}
