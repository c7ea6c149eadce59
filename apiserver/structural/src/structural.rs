//! The checks a CRD version's schema must pass (upstream
//! `ValidateCustomResourceDefinitionOpenAPISchema`, `ValidateStructural` and
//! `ValidateDefaults`), in upstream's order: the OpenAPI keyword rules first,
//! then (only if those pass) the structural rules, then defaults.

use crate::openapi;
use crate::path::{child, index, key};
use crate::prune;
use crate::schema::{Additional, Schema};
use rkube_validation::FieldError;
use serde_json::Value;

const V3_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

/// All schema errors, empty when the schema can be served.
pub(crate) fn check(s: &Schema, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s.nullable {
        errs.push(FieldError::forbidden(
            &child(base, "nullable"),
            "nullable cannot be true at the root",
        ));
    }
    openapi_rules(s, base, &Ctx::default(), true, &mut errs);
    if !errs.is_empty() {
        return errs;
    }
    invariants(s, Level::Root, base, &mut errs);
    completeness(s, base, &mut errs);
    // Upstream sorts these by their text (its maps iterate randomly).
    errs.sort_by_cached_key(ToString::to_string);
    errs
}

/// Upstream `ValidateDefaults`, run once the schema is structural and its
/// rules compiled (defaults must satisfy the rules too).
pub(crate) fn check_defaults(s: &Schema, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    defaults(s, base, true, &mut errs);
    errs
}

#[derive(Clone, Default)]
struct Ctx {
    inside_meta: bool,
    /// Why defaults are forbidden here, when they are.
    forbidden_defaults: Option<&'static str>,
}

fn bad_types(s: &Schema, base: &str, errs: &mut Vec<FieldError>) {
    for (k, v, expected) in &s.bad {
        let path = if k.is_empty() {
            base.to_string()
        } else {
            child(base, k)
        };
        errs.push(FieldError::invalid(
            &path,
            v.clone(),
            format!("must be {expected}"),
        ));
    }
}

/// Upstream `validateCustomResourceDefinitionOpenAPISchema` plus the v3
/// standard validator.
fn openapi_rules(s: &Schema, p: &str, ctx: &Ctx, root: bool, errs: &mut Vec<FieldError>) {
    bad_types(s, p, errs);
    if s.unique_items {
        errs.push(FieldError::forbidden(
            &child(p, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(ap) = &s.additional_properties {
        let conflicting = matches!(ap, Additional::Bool(false) | Additional::Schema(_));
        if s.has_properties() && conflicting {
            errs.push(FieldError::forbidden(
                &child(p, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if let Additional::Schema(sub) = ap {
            let mut sub_ctx = ctx.clone();
            if ctx.inside_meta {
                sub_ctx.forbidden_defaults =
                    Some("inside additionalProperties applying to object metadata");
            }
            openapi_rules(
                sub,
                &child(p, "additionalProperties"),
                &sub_ctx,
                false,
                errs,
            );
        }
    }
    if let Some(props) = &s.properties {
        for (k, sub) in props {
            let mut sub_ctx = ctx.clone();
            if (root || s.embedded_resource)
                && ["apiVersion", "kind", "metadata"].contains(&k.as_str())
            {
                sub_ctx.inside_meta = true;
                if root {
                    sub_ctx.forbidden_defaults = Some(match k.as_str() {
                        "apiVersion" => "in top-level apiVersion",
                        "kind" => "in top-level kind",
                        _ => "in top-level metadata",
                    });
                }
            }
            openapi_rules(sub, &key(&child(p, "properties"), k), &sub_ctx, false, errs);
        }
    }
    if let Some(not) = &s.not {
        openapi_rules(not, &child(p, "not"), ctx, false, errs);
    }
    for (name, list) in [
        ("allOf", &s.all_of),
        ("oneOf", &s.one_of),
        ("anyOf", &s.any_of),
    ] {
        for (i, sub) in list.iter().enumerate() {
            openapi_rules(sub, &index(&child(p, name), i), ctx, false, errs);
        }
    }
    if let Some(items) = &s.items {
        openapi_rules(items, &child(p, "items"), ctx, false, errs);
    }
    if let Some(why) = ctx.forbidden_defaults
        && s.default.is_some()
    {
        errs.push(FieldError::forbidden(
            &child(p, "default"),
            format!("must not be set {why}"),
        ));
    }
    if s.preserve_unknown_fields == Some(false) {
        errs.push(FieldError::invalid(
            &child(p, "x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
    if let Some(mt) = &s.map_type {
        if s.ty != "object" {
            if s.ty.is_empty() {
                errs.push(FieldError::required(
                    &child(p, "type"),
                    "must be object if x-kubernetes-map-type is specified",
                ));
            } else {
                errs.push(FieldError::invalid(
                    &child(p, "type"),
                    s.ty.as_str(),
                    "must be object if x-kubernetes-map-type is specified",
                ));
            }
        }
        if mt != "atomic" && mt != "granular" {
            errs.push(FieldError::not_supported(
                &child(p, "x-kubernetes-map-type"),
                mt.as_str(),
                &["atomic", "granular"],
            ));
        }
    }
    list_rules(s, p, errs);
    standard(s, p, ctx, errs);
}

fn list_rules(s: &Schema, p: &str, errs: &mut Vec<FieldError>) {
    if let Some(lt) = &s.list_type {
        if s.ty != "array" {
            if s.ty.is_empty() {
                errs.push(FieldError::required(
                    &child(p, "type"),
                    "must be array if x-kubernetes-list-type is specified",
                ));
            } else {
                errs.push(FieldError::invalid(
                    &child(p, "type"),
                    s.ty.as_str(),
                    "must be array if x-kubernetes-list-type is specified",
                ));
            }
        } else if lt == "set"
            && let Some(is) = &s.items
        {
            let items = child(p, "items");
            match is.ty.as_str() {
                "array" if is.list_type.as_deref().is_some_and(|t| t != "atomic") => {
                    errs.push(FieldError::invalid(
                        &child(&items, "x-kubernetes-list-type"),
                        is.list_type.clone().unwrap_or_default(),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ))
                }
                "object" if is.map_type.as_deref() != Some("atomic") => {
                    errs.push(FieldError::invalid(
                        &child(&items, "x-kubernetes-map-type"),
                        is.list_type.clone().map_or(Value::Null, Value::String),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ))
                }
                _ => {}
            }
        }
        if !["atomic", "set", "map"].contains(&lt.as_str()) {
            errs.push(FieldError::not_supported(
                &child(p, "x-kubernetes-list-type"),
                lt.as_str(),
                &["atomic", "set", "map"],
            ));
        }
    }
    if !s.list_map_keys.is_empty() {
        match s.list_type.as_deref() {
            None => errs.push(FieldError::required(
                &child(p, "x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some("map") => {}
            Some(other) => errs.push(FieldError::invalid(
                &child(p, "x-kubernetes-list-type"),
                other,
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
        }
    }
    if s.list_type.as_deref() == Some("map") {
        let keys_path = child(p, "x-kubernetes-list-map-keys");
        let keys_value = || Value::from(s.list_map_keys.clone());
        if s.list_map_keys.is_empty() {
            errs.push(FieldError::required(
                &keys_path,
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match &s.items {
            None if s.items_array => errs.push(FieldError::invalid(
                &child(p, "items"),
                Value::Null,
                "must only have a single schema if x-kubernetes-list-type is map",
            )),
            None => errs.push(FieldError::required(
                &child(p, "items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(is) if is.ty != "object" => errs.push(FieldError::invalid(
                &child(&child(p, "items"), "type"),
                is.ty.as_str(),
                "must be object if parent array's x-kubernetes-list-type is map",
            )),
            Some(is) => {
                let mut seen = std::collections::HashSet::new();
                for k in &s.list_map_keys {
                    match is.property(k) {
                        Some(ks) if ks.ty == "array" || ks.ty == "object" => {
                            errs.push(FieldError::invalid(
                                &child(&key(&child(&child(p, "items"), "properties"), k), "type"),
                                is.ty.as_str(),
                                "must be a scalar type if parent array's x-kubernetes-list-type is map",
                            ))
                        }
                        Some(_) => {}
                        None => errs.push(FieldError::invalid(
                            &keys_path,
                            keys_value(),
                            "entries must all be names of item properties",
                        )),
                    }
                    if !seen.insert(k) {
                        errs.push(FieldError::invalid(
                            &keys_path,
                            keys_value(),
                            "must not contain duplicate entries",
                        ));
                    }
                }
            }
        }
    }
    // validateMapListKeysMapSet
    if let (Some(lt @ ("set" | "map")), Some(is)) = (s.list_type.as_deref(), &s.items) {
        if is.nullable {
            errs.push(FieldError::forbidden(
                &format!("{}.items.nullable", p),
                format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt == "map" {
            for k in &s.list_map_keys {
                let Some(ks) = is.property(k) else { continue };
                if !is.required.contains(k) && ks.default.is_none() {
                    errs.push(FieldError::required(
                        &format!("{p}.items.properties.{k}.default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
                if ks.nullable {
                    errs.push(FieldError::forbidden(
                        &format!("{p}.items.properties.{k}.nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
                }
            }
        }
    }
}

/// The v3 standard validator (`specStandardValidatorV3.validate`).
fn standard(s: &Schema, p: &str, ctx: &Ctx, errs: &mut Vec<FieldError>) {
    if !s.ty.is_empty() && !V3_TYPES.contains(&s.ty.as_str()) {
        errs.push(FieldError::not_supported(
            &child(p, "type"),
            s.ty.as_str(),
            &V3_TYPES,
        ));
    }
    let forbid = |errs: &mut Vec<FieldError>, k: &str, msg: &str| {
        errs.push(FieldError::forbidden(&child(p, k), msg));
    };
    if s.has_id {
        forbid(errs, "id", "id is not supported");
    }
    if s.has_additional_items {
        forbid(errs, "additionalItems", "additionalItems is not supported");
    }
    if s.has_pattern_properties {
        forbid(
            errs,
            "patternProperties",
            "patternProperties is not supported",
        );
    }
    if s.has_definitions {
        forbid(errs, "definitions", "definitions is not supported");
    }
    if s.has_dependencies {
        forbid(errs, "dependencies", "dependencies is not supported");
    }
    if s.has_ref {
        forbid(errs, "$ref", "$ref is not supported");
    }
    if s.ty == "null" {
        forbid(
            errs,
            "type",
            "type cannot be set to null, use nullable as an alternative",
        );
    }
    if s.items_array {
        forbid(
            errs,
            "items",
            "items must be a schema object and not an array",
        );
    }
    if ctx.inside_meta && s.embedded_resource {
        forbid(
            errs,
            "x-kubernetes-embedded-resource",
            "must not be used inside of resource meta",
        );
    }
    if let Some(re) = &s.pattern
        && let Err(e) = regex::Regex::new(re)
    {
        let why = e.to_string();
        let why = why
            .lines()
            .last()
            .unwrap_or("")
            .trim_start_matches("error: ");
        errs.push(FieldError::invalid(
            &child(p, "pattern"),
            re.as_str(),
            format!("must be a valid regular expression, but isn't: error parsing regexp: {why}"),
        ));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Upstream `validateStructuralInvariants`.
fn invariants(s: &Schema, lvl: Level, p: &str, errs: &mut Vec<FieldError>) {
    if s.ty == "array" && s.items.is_none() {
        errs.push(FieldError::required(
            &child(p, "items"),
            "must be specified",
        ));
    }
    if let Some(items) = &s.items {
        invariants(items, Level::Item, &child(p, "items"), errs);
    }
    if let Some(props) = &s.properties {
        for (k, sub) in props {
            invariants(sub, Level::Field, &key(&child(p, "properties"), k), errs);
        }
    }
    // validateGeneric
    if let Some(ap) = &s.additional_properties {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                &child(p, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let Additional::Schema(sub) = ap {
            invariants(sub, Level::Field, &child(p, "additionalProperties"), errs);
        }
    }
    // validateExtensions
    if s.int_or_string && s.preserve_unknown_fields.is_some_and(|b| b) {
        errs.push(FieldError::invalid(
            &child(p, "x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.int_or_string && s.embedded_resource {
        errs.push(FieldError::invalid(
            &child(p, "x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(s);
    let skip_first_all_of_any_of = is_int_or_string_all_of(s);
    value_validation(s, skip_any_of, skip_first_all_of_any_of, p, errs);

    let check_metadata = lvl == Level::Root || s.embedded_resource;
    if s.embedded_resource && s.ty != "object" {
        if s.ty.is_empty() {
            errs.push(FieldError::required(
                &child(p, "type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errs.push(FieldError::invalid(
                &child(p, "type"),
                s.ty.as_str(),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if s.ty.is_empty() && !s.int_or_string && !s.preserves_unknown() {
        let msg = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(&child(p, "type"), msg));
    }
    if s.embedded_resource && s.additional_properties.is_some() {
        errs.push(FieldError::forbidden(
            &child(p, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.ty.is_empty() && s.ty != "object" {
        errs.push(FieldError::invalid(
            &child(p, "type"),
            s.ty.as_str(),
            "must be object at the root",
        ));
    }
    let props = key_path(p);
    if check_metadata {
        for (k, want) in [
            ("kind", "string"),
            ("apiVersion", "string"),
            ("metadata", "object"),
        ] {
            if let Some(sub) = s.property(k)
                && sub.ty != want
            {
                errs.push(FieldError::invalid(
                    &child(&key(&props, k), "type"),
                    sub.ty.as_str(),
                    format!("must be {want}"),
                ));
            }
        }
    }
    if lvl == Level::Root
        && let Some(meta) = s.property("metadata")
        && !metadata_is_trivial(meta)
    {
        errs.push(FieldError::forbidden(
            &key(&props, "metadata"),
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
    if s.embedded_resource && !s.preserves_unknown() && !s.has_properties() {
        errs.push(FieldError::required(
            &child(p, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

fn key_path(p: &str) -> String {
    child(p, "properties")
}

/// The root `metadata` schema may only restrict `name` and `generateName`.
fn metadata_is_trivial(m: &Schema) -> bool {
    let props_ok = match &m.properties {
        None => true,
        Some(props) => {
            let allowed = props.keys().all(|k| k == "name" || k == "generateName");
            allowed && !props.is_empty()
        }
    };
    props_ok
        && m.format.is_empty()
        && m.title.is_empty()
        && m.description.is_empty()
        && !m.nullable
        && m.additional_properties.is_none()
        && m.items.is_none()
        && m.enum_values.is_none()
        && m.maximum.is_none()
        && m.minimum.is_none()
        && m.multiple_of.is_none()
        && m.max_length.is_none()
        && m.min_length.is_none()
        && m.pattern.is_none()
        && m.max_items.is_none()
        && m.min_items.is_none()
        && m.max_properties.is_none()
        && m.min_properties.is_none()
        && m.required.is_empty()
        && m.all_of.is_empty()
        && m.any_of.is_empty()
        && m.one_of.is_empty()
        && m.not.is_none()
        && m.preserve_unknown_fields.is_none()
        && !m.embedded_resource
        && !m.int_or_string
        && m.list_type.is_none()
        && m.list_map_keys.is_empty()
        && m.map_type.is_none()
        && m.validations.is_empty()
}

fn only_type(s: &Schema, ty: &str) -> bool {
    s.ty == ty
        && s.properties.is_none()
        && s.items.is_none()
        && s.all_of.is_empty()
        && s.any_of.is_empty()
        && s.one_of.is_empty()
        && s.not.is_none()
}

fn is_int_or_string_any_of(s: &Schema) -> bool {
    s.any_of.len() == 2 && only_type(&s.any_of[0], "integer") && only_type(&s.any_of[1], "string")
}

fn is_int_or_string_all_of(s: &Schema) -> bool {
    s.all_of.first().is_some_and(|a| {
        a.any_of.len() == 2
            && only_type(&a.any_of[0], "integer")
            && only_type(&a.any_of[1], "string")
    })
}

/// Upstream `validateValueValidation`: the logic junctors of a node.
fn value_validation(
    s: &Schema,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    p: &str,
    errs: &mut Vec<FieldError>,
) {
    if !skip_any_of {
        for (i, sub) in s.any_of.iter().enumerate() {
            nested(sub, false, &index(&child(p, "anyOf"), i), errs);
        }
    }
    for (i, sub) in s.all_of.iter().enumerate() {
        nested(
            sub,
            skip_first_all_of_any_of && i == 0,
            &index(&child(p, "allOf"), i),
            errs,
        );
    }
    for (i, sub) in s.one_of.iter().enumerate() {
        nested(sub, false, &index(&child(p, "oneOf"), i), errs);
    }
    if let Some(not) = &s.not {
        nested(not, false, &child(p, "not"), errs);
    }
}

/// Upstream `validateNestedValueValidation`.
fn nested(v: &Schema, skip_any_of: bool, p: &str, errs: &mut Vec<FieldError>) {
    value_validation(v, skip_any_of, false, p, errs);
    if let Some(items) = &v.items {
        nested(items, false, &child(p, "items"), errs);
    }
    if let Some(props) = &v.properties {
        for (k, sub) in props {
            nested(sub, false, &key(&child(p, "properties"), k), errs);
        }
    }
    let forbid = |errs: &mut Vec<FieldError>, k: &str, msg: &str| {
        errs.push(FieldError::forbidden(&child(p, k), msg));
    };
    if !v.ty.is_empty() {
        forbid(errs, "type", "must be empty to be structural");
    }
    if v.additional_properties.is_some() {
        forbid(
            errs,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if v.default.is_some() {
        forbid(errs, "default", "must be undefined to be structural");
    }
    if !v.title.is_empty() {
        forbid(errs, "title", "must be empty to be structural");
    }
    if !v.description.is_empty() {
        forbid(errs, "description", "must be empty to be structural");
    }
    if v.nullable {
        forbid(errs, "nullable", "must be false to be structural");
    }
    if v.preserves_unknown() {
        forbid(
            errs,
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        );
    }
    if v.embedded_resource {
        forbid(
            errs,
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        );
    }
    if v.int_or_string {
        forbid(
            errs,
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        );
    }
    if !v.list_map_keys.is_empty() {
        forbid(
            errs,
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    if v.list_type.is_some() {
        forbid(
            errs,
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        );
    }
    if v.map_type.is_some() {
        forbid(
            errs,
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        );
    }
    if !v.validations.is_empty() {
        forbid(
            errs,
            "x-kubernetes-validations",
            "must be empty to be structural",
        );
    }
    if v.property("metadata").is_some() {
        errs.push(FieldError::forbidden(
            &key(&child(p, "properties"), "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Upstream `validateStructuralCompleteness`: everything a junctor talks
/// about must also be specified in the structural part.
fn completeness(s: &Schema, p: &str, errs: &mut Vec<FieldError>) {
    complete_node(s, p, errs);
}

fn complete_node(s: &Schema, p: &str, errs: &mut Vec<FieldError>) {
    if let Some(items) = &s.items {
        complete_node(items, &child(p, "items"), errs);
    }
    if let Some(props) = &s.properties {
        for (k, sub) in props {
            complete_node(sub, &key(&child(p, "properties"), k), errs);
        }
    }
    if let Some(ap) = s.additional_schema() {
        complete_node(ap, &child(p, "additionalProperties"), errs);
    }
    junctors_complete(s, s, p, p, errs);
}

fn junctors_complete(v: &Schema, s: &Schema, sp: &str, vp: &str, errs: &mut Vec<FieldError>) {
    for (name, list) in [
        ("allOf", &v.all_of),
        ("anyOf", &v.any_of),
        ("oneOf", &v.one_of),
    ] {
        for (i, sub) in list.iter().enumerate() {
            nested_complete(sub, Some(s), sp, &index(&child(vp, name), i), errs);
        }
    }
    if let Some(not) = &v.not {
        nested_complete(not, Some(s), sp, &child(vp, "not"), errs);
    }
}

fn nested_complete(v: &Schema, s: Option<&Schema>, sp: &str, vp: &str, errs: &mut Vec<FieldError>) {
    let Some(s) = s else {
        errs.push(FieldError::required(
            sp,
            format!("because it is defined in {vp}"),
        ));
        return;
    };
    junctors_complete(v, s, sp, vp, errs);
    if let Some(vi) = &v.items {
        nested_complete(
            vi,
            s.items.as_deref(),
            &child(sp, "items"),
            &child(vp, "items"),
            errs,
        );
    }
    if let Some(props) = &v.properties {
        for (k, vf) in props {
            let sfp = key(&child(sp, "properties"), k);
            let vfp = key(&child(vp, "properties"), k);
            match s.property(k) {
                None => errs.push(FieldError::required(
                    &sfp,
                    format!("because it is defined in {vfp}"),
                )),
                Some(sf) => nested_complete(vf, Some(sf), &sfp, &vfp, errs),
            }
        }
    }
}

/// Upstream `ValidateDefaults`: every default must survive pruning and
/// validate against its own schema.
fn defaults(s: &Schema, p: &str, root: bool, errs: &mut Vec<FieldError>) {
    if let Some(d) = &s.default {
        let dp = child(p, "default");
        let mut pruned = d.clone();
        prune::prune(&mut pruned, s, s.embedded_resource);
        if &pruned != d {
            errs.push(FieldError::invalid(
                &dp,
                d.clone(),
                "must not have unknown fields",
            ));
        } else {
            let out = openapi::validate(s, d, &dp);
            if !out.errors.is_empty() {
                errs.extend(out.errors);
            } else {
                let mut more = Vec::new();
                crate::embedded::validate(&dp, s, d, &mut more);
                if more.is_empty() {
                    crate::listtype::validate(&dp, s, d, &mut more);
                }
                if more.is_empty() {
                    more = crate::cel::validate_at(s, d, None, &dp);
                }
                errs.extend(more);
            }
        }
    }
    if let Some(items) = &s.items {
        defaults(items, &child(p, "items"), false, errs);
    }
    if let Some(props) = &s.properties {
        for (k, sub) in props {
            // Defaults in root metadata were rejected above.
            if root && k == "metadata" {
                continue;
            }
            defaults(sub, &key(&child(p, "properties"), k), false, errs);
        }
    }
    if let Some(ap) = s.additional_schema() {
        defaults(ap, &child(p, "additionalProperties"), false, errs);
    }
}
