//! Behaviour tests with upstream's paths and messages.

use crate::Structural;
use serde_json::{Value, json};

const BASE: &str = "spec.versions[0].schema.openAPIV3Schema";

fn compile_errs(schema: Value) -> Vec<String> {
    match Structural::compile(&schema, BASE) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn compiled(schema: Value) -> Structural {
    match Structural::compile(&schema, BASE) {
        Ok(s) => s,
        Err(e) => panic!("schema rejected: {e:?}"),
    }
}

fn errs(s: &Structural, obj: Value) -> Vec<String> {
    s.validate(&obj, None)
        .iter()
        .map(ToString::to_string)
        .collect()
}

// ---- compile(): structural rules ----

#[test]
fn compile_requires_types() {
    let e = compile_errs(json!({
        "type": "object",
        "properties": {"spec": {"properties": {"x": {"type": "string"}}}}
    }));
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[spec].type: Required value: must not be empty for specified object fields"
        )]
    );
    let e = compile_errs(
        json!({"type": "object", "properties": {"l": {"type": "array", "items": {}}}}),
    );
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[l].items.type: Required value: must not be empty for specified array items"
        )]
    );
    let e = compile_errs(json!({"properties": {}}));
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.type: Required value: must not be empty at the root"
        )]
    );
    let e = compile_errs(json!({"type": "string"}));
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.type: Invalid value: \"string\": must be object at the root"
        )]
    );
    let e = compile_errs(json!({"type": "object", "properties": {"l": {"type": "array"}}}));
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[l].items: Required value: must be specified"
        )]
    );
}

#[test]
fn compile_allows_untyped_under_int_or_string_and_embedded() {
    assert!(
        compile_errs(json!({
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": true,
                         "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "untyped": {"x-kubernetes-preserve-unknown-fields": true},
                "res": {"type": "object", "x-kubernetes-embedded-resource": true,
                        "x-kubernetes-preserve-unknown-fields": true}
            }
        }))
        .is_empty()
    );
}

#[test]
fn compile_forbidden_keywords() {
    let e = compile_errs(json!({
        "type": "object",
        "properties": {
            "a": {"type": "string", "$ref": "#/definitions/x"},
            "b": {"type": "object", "properties": {"c": {"type": "string"}},
                  "additionalProperties": {"type": "string"}},
            "d": {"type": "array", "uniqueItems": true, "items": {"type": "string"}}
        }
    }));
    assert_eq!(
        e,
        vec![
            format!("{BASE}.properties[a].$ref: Forbidden: $ref is not supported"),
            format!(
                "{BASE}.properties[b].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
            ),
            format!(
                "{BASE}.properties[d].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
            ),
        ]
    );
    let e = compile_errs(json!({"type": "object", "additionalProperties": {"type": "string"}}));
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.additionalProperties: Forbidden: must not be used at the root"
        )]
    );
}

#[test]
fn compile_metadata_only_name_and_generate_name() {
    assert!(
        compile_errs(json!({"type": "object", "properties": {"metadata": {
            "type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}}}}))
        .is_empty()
    );
    let e = compile_errs(json!({"type": "object", "properties": {"metadata": {
        "type": "object", "properties": {"labels": {"type": "object"}}}}}));
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        )]
    );
    let e = compile_errs(json!({"type": "object", "properties": {"metadata": {"type": "string"}}}));
    assert!(
        e.contains(&format!(
            "{BASE}.properties[metadata].type: Invalid value: \"string\": must be object"
        )),
        "{e:?}"
    );
}

#[test]
fn compile_nested_value_validation_rules() {
    let e = compile_errs(json!({
        "type": "object",
        "properties": {"a": {"type": "string", "anyOf": [{"type": "string"}, {"pattern": "x"}]}}
    }));
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"
        )]
    );
    let e = compile_errs(json!({
        "type": "object",
        "properties": {"a": {"type": "object", "allOf": [{"properties": {"b": {"minLength": 1}}}]}}
    }));
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[a].properties[b]: Required value: because it is defined in {BASE}.properties[a].allOf[0].properties[b]"
        )]
    );
}

#[test]
fn compile_list_type_rules() {
    let e = compile_errs(json!({
        "type": "object",
        "properties": {
            "m": {"type": "array", "x-kubernetes-list-type": "map",
                  "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "k": {"type": "string", "x-kubernetes-list-type": "set"},
            "z": {"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}}
        }
    }));
    assert_eq!(
        e,
        vec![
            format!(
                "{BASE}.properties[k].type: Invalid value: \"string\": must be array if x-kubernetes-list-type is specified"
            ),
            format!(
                "{BASE}.properties[m].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
            ),
            format!(
                "{BASE}.properties[z].x-kubernetes-list-type: Unsupported value: \"bag\": supported values: \"atomic\", \"set\", \"map\""
            ),
        ]
    );
    let e = compile_errs(json!({
        "type": "object",
        "properties": {"m": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}
    }));
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[m].items.properties.name.default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
        )]
    );
}

#[test]
fn compile_defaults_must_be_pruned_and_valid() {
    let e = compile_errs(json!({
        "type": "object",
        "properties": {
            "a": {"type": "integer", "default": "x"},
            "b": {"type": "object", "properties": {"c": {"type": "string"}}, "default": {"d": 1}}
        }
    }));
    assert_eq!(
        e,
        vec![
            format!(
                "{BASE}.properties[a].default: Invalid value: \"string\":  in body must be of type integer: \"string\""
            ),
            format!(
                "{BASE}.properties[b].default: Invalid value: {{\"d\":1}}: must not have unknown fields"
            ),
        ]
    );
    let e = compile_errs(
        json!({"type": "object", "properties": {"metadata": {"type": "object",
        "properties": {"name": {"type": "string", "default": "x"}}}}}),
    );
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[metadata].properties[name].default: Forbidden: must not be set in top-level metadata"
        )]
    );
}

// ---- validate() ----

fn sample() -> Structural {
    compiled(json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "multipleOf": 1},
                    "ratio": {"type": "number", "exclusiveMinimum": true, "minimum": 0},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "id": {"type": "string", "format": "uuid"},
                    "tags": {"type": "array", "maxItems": 2, "minItems": 1,
                             "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["port", "protocol"],
                              "items": {"type": "object", "required": ["port"], "properties": {
                                  "port": {"type": "integer"},
                                  "protocol": {"type": "string", "default": "TCP"}}}},
                    "labels": {"type": "object", "maxProperties": 1,
                               "additionalProperties": {"type": "string"}},
                    "opt": {"type": "string", "nullable": true},
                    "port": {"x-kubernetes-int-or-string": true},
                    "tpl": {"type": "object", "x-kubernetes-embedded-resource": true,
                            "x-kubernetes-preserve-unknown-fields": true},
                    "either": {"type": "string", "oneOf": [{"pattern": "^a"}, {"pattern": "^b"}]},
                    "big": {"type": "integer", "maximum": 1000000}
                }
            }
        }
    }))
}

#[test]
fn validate_accepts_valid_object() {
    let s = sample();
    let obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
        "spec": {"name": "abc", "replicas": 3, "ratio": 0.5, "mode": "a",
                 "id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "tags": ["x"],
                 "ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}],
                 "labels": {"a": "b"}, "opt": null, "port": "http",
                 "tpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
                 "either": "abc"}});
    assert_eq!(errs(&s, obj), Vec::<String>::new());
}

#[test]
fn validate_messages_as_upstream() {
    let s = sample();
    let e = errs(&s, json!({"spec": {"name": "abc", "replicas": "string"}}));
    assert_eq!(
        e,
        vec![
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
        ]
    );
    let e = errs(
        &s,
        json!({"spec": {"name": "ABCDEFG", "mode": "x", "replicas": 11, "ratio": 0}}),
    );
    assert_eq!(
        e,
        vec![
            "spec.mode: Unsupported value: \"x\": supported values: \"a\", \"b\"",
            "spec.name: Too long: may not be more than 5 bytes",
            "spec.name: Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'",
            "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0",
            "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
        ]
    );
    let e = errs(&s, json!({}));
    assert_eq!(e, vec!["spec: Required value"]);
    let e = errs(
        &s,
        json!({"spec": {"name": "a", "id": "nope", "big": 2000000, "opt": 1}}),
    );
    assert_eq!(
        e,
        vec![
            "spec.big: Invalid value: 2000000: spec.big in body should be less than or equal to 1e+06",
            "spec.id: Invalid value: \"nope\": spec.id in body must be of type uuid: \"nope\"",
            "spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long",
            "spec.opt: Invalid value: \"integer\": spec.opt in body must be of type string: \"integer\"",
        ]
    );
    let e = errs(&s, json!({"spec": {"name": null}}));
    assert_eq!(
        e,
        vec![
            "spec.name: Invalid value: \"null\": spec.name in body must be of type string: \"null\""
        ]
    );
}

#[test]
fn validate_arrays_maps_and_list_types() {
    let s = sample();
    let e = errs(
        &s,
        json!({"spec": {"name": "ab", "tags": ["a", "a", "b"], "labels": {"a": "1", "b": "2"},
            "ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}}),
    );
    assert_eq!(
        e,
        vec![
            "spec.labels: Too many: 2: must have at most 1 items",
            "spec.tags: Too many: 3: must have at most 2 items",
            "spec.ports[1]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}",
            "spec.tags[1]: Duplicate value: \"a\"",
        ]
    );
    let e = errs(&s, json!({"spec": {"name": "ab", "tags": []}}));
    assert_eq!(
        e,
        vec!["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"]
    );
}

#[test]
fn validate_int_or_string_embedded_and_junctors() {
    let s = sample();
    let e = errs(
        &s,
        json!({"spec": {"name": "ab", "port": true, "tpl": {"metadata": {"name": "a/b"}},
            "either": "c"}}),
    );
    assert_eq!(
        e,
        vec![
            "<nil>: Invalid value: \"\": \"spec.either\" must validate one and only one schema (oneOf). Found none valid",
            "spec.either: Invalid value: \"c\": spec.either in body should match '^a'",
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
            "spec.tpl.apiVersion: Required value: must not be empty",
            "spec.tpl.kind: Required value: must not be empty",
            "spec.tpl.metadata.name: Invalid value: \"a/b\": may not contain '/'",
        ]
    );
    let e = errs(
        &s,
        json!({"spec": {"name": "ab", "tpl": {"apiVersion": "v1", "kind": "9x"}}}),
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with(
        "spec.tpl.kind: Invalid value: \"9x\": may have mixed case, but should otherwise match: "
    ));
}

#[test]
fn validate_additional_properties_false() {
    let s = compiled(
        json!({"type": "object", "properties": {"m": {"type": "object",
        "additionalProperties": false}}}),
    );
    assert_eq!(
        errs(&s, json!({"m": {"x": 1}})),
        vec!["m: Invalid value: \"x\": m.x in body is a forbidden property"]
    );
}

// ---- prune() and apply_defaults() ----

#[test]
fn prune_unknown_fields() {
    let s = compiled(json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "a": {"type": "string"},
                "list": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                         "properties": {"known": {"type": "object", "properties": {"x": {"type": "string"}}}}},
                "map": {"type": "object", "additionalProperties": {"type": "object",
                        "properties": {"v": {"type": "string"}}}},
                "res": {"type": "object", "x-kubernetes-embedded-resource": true,
                        "properties": {"spec": {"type": "object"}}}
            }}
        }
    }));
    let mut obj = json!({
        "apiVersion": "g/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
        "extra": 1,
        "spec": {"a": "x", "b": 2,
                 "list": [{"k": "1", "z": 2}],
                 "free": {"anything": {"goes": 1}, "known": {"x": "1", "y": 2}},
                 "map": {"one": {"v": "1", "w": 2}},
                 "res": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "unknownSubMeta": 1}, "status": {}}}
    });
    let mut pruned = s.prune(&mut obj);
    pruned.sort();
    assert_eq!(
        pruned,
        vec![
            "extra",
            "spec.b",
            "spec.free.known.y",
            "spec.list[0].z",
            "spec.map.one.w",
            "spec.res.metadata.unknownSubMeta",
            "spec.res.status"
        ]
    );
    assert_eq!(
        obj,
        json!({
            "apiVersion": "g/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
            "spec": {"a": "x", "list": [{"k": "1"}],
                     "free": {"anything": {"goes": 1}, "known": {"x": "1"}},
                     "map": {"one": {"v": "1"}},
                     "res": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}}
        })
    );
}

#[test]
fn defaults_descend_into_arrays_maps_and_handle_nulls() {
    let s = compiled(json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "default": {}, "properties": {
                "replicas": {"type": "integer", "default": 1},
                "nested": {"type": "object", "default": {}, "properties": {"x": {"type": "string", "default": "dx"}}},
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "p": {"type": "string", "default": "P"}}}},
                "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "q": {"type": "integer", "default": 7}}}},
                "nullable": {"type": "string", "nullable": true, "default": "n"},
                "nodefault": {"type": "string"}
            }}
        }
    }));
    let mut obj = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {}});
    s.apply_defaults(&mut obj);
    assert_eq!(
        obj["spec"],
        json!({"replicas": 1, "nested": {"x": "dx"}, "nullable": "n"})
    );
    let mut obj = json!({"spec": {"replicas": null, "items": [{}, {"p": "x"}], "m": {"a": {}},
        "nullable": null, "nodefault": null}});
    s.apply_defaults(&mut obj);
    assert_eq!(
        obj["spec"],
        json!({"replicas": 1, "nested": {"x": "dx"}, "items": [{"p": "P"}, {"p": "x"}],
               "m": {"a": {"q": 7}}, "nullable": null})
    );
}

// ---- CEL rules ----

#[test]
fn structural_is_shareable() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Structural>();
}

fn cel_schema() -> Structural {
    compiled(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [
                    {"rule": "self.minReplicas <= self.replicas", "message": "replicas must be at least minReplicas"},
                    {"rule": "self.replicas <= 100", "messageExpression": "'replicas ' + string(self.replicas) + ' is too many'"},
                    {"rule": "!has(self.mode) || self.mode != 'bad'", "reason": "FieldValueForbidden", "fieldPath": ".mode"}
                ],
                "properties": {
                    "replicas": {"type": "integer"},
                    "minReplicas": {"type": "integer"},
                    "mode": {"type": "string", "maxLength": 10,
                             "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "mode is immutable"}]},
                    "tags": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 20},
                             "x-kubernetes-validations": [{"rule": "self.isSorted()"}, {"rule": "self.all(t, t.startsWith('t'))"}]}
                }
            }
        }
    }))
}

#[test]
fn cel_rules_messages_reasons_and_field_paths() {
    let s = cel_schema();
    assert_eq!(
        errs(&s, json!({"spec": {"replicas": 1, "minReplicas": 2}})),
        vec!["spec: Invalid value: \"object\": replicas must be at least minReplicas"]
    );
    assert_eq!(
        errs(&s, json!({"spec": {"replicas": 101, "minReplicas": 2}})),
        vec!["spec: Invalid value: \"object\": replicas 101 is too many"]
    );
    assert_eq!(
        errs(
            &s,
            json!({"spec": {"replicas": 1, "minReplicas": 0, "mode": "bad"}})
        ),
        vec!["spec.mode: Forbidden: failed rule: !has(self.mode) || self.mode != 'bad'"]
    );
    assert_eq!(
        errs(
            &s,
            json!({"spec": {"replicas": 1, "minReplicas": 0, "tags": ["tb", "ta", "x"]}})
        ),
        vec![
            "spec.tags: Invalid value: \"array\": failed rule: self.isSorted()",
            "spec.tags: Invalid value: \"array\": failed rule: self.all(t, t.startsWith('t'))",
        ]
    );
    assert_eq!(
        errs(&s, json!({"spec": {"replicas": 1}})),
        vec![
            "spec: Invalid value: \"object\": no such key: minReplicas evaluating rule: replicas must be at least minReplicas"
        ]
    );
}

#[test]
fn cel_transition_rules_need_old_value() {
    let s = cel_schema();
    let new = json!({"spec": {"replicas": 1, "minReplicas": 0, "mode": "a"}});
    let old = json!({"spec": {"replicas": 1, "minReplicas": 0, "mode": "b"}});
    assert!(s.validate(&new, None).is_empty());
    let e: Vec<String> = s
        .validate(&new, Some(&old))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        e,
        vec!["spec.mode: Invalid value: \"string\": mode is immutable"]
    );
    assert!(s.validate(&new, Some(&new)).is_empty());
}

#[test]
fn cel_blocked_by_type_errors() {
    let s = cel_schema();
    assert_eq!(
        errs(&s, json!({"spec": {"replicas": "x", "minReplicas": 0}})),
        vec![
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
            "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ]
    );
}

#[test]
fn cel_compile_errors() {
    let e = compile_errs(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.a ==", "message": "m"},
        {"rule": ""},
        {"rule": "true", "reason": "Nope"}
    ]}));
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with(&format!(
            "{BASE}.x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.a ==\", Message:\"m\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:"
        )),
        "{e:?}"
    );
    assert_eq!(
        e[1],
        format!("{BASE}.x-kubernetes-validations[1].rule: Required value: rule is not specified")
    );
    assert_eq!(
        e[2],
        format!(
            "{BASE}.x-kubernetes-validations[2].reason: Unsupported value: \"Nope\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
        )
    );
    let e = compile_errs(
        json!({"type": "object", "properties": {"l": {"type": "array",
        "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}}),
    );
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[l].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within {BASE}.properties[l]"
        )]
    );
}

#[test]
fn cel_cost_limits() {
    // Unbounded nested traversal: rejected at compile time, as upstream
    // (the rule, then the schema total it pushes over its limit).
    let e = compile_errs(
        json!({"type": "object", "properties": {"l": {"type": "array",
        "items": {"type": "string"},
        "x-kubernetes-validations": [{"rule": "self.all(x, self.all(y, x != y || x == y))"}]}}}),
    );
    let rule = format!("{BASE}.properties[l].x-kubernetes-validations[0].rule");
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with(&format!(
            "{rule}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule"
        )),
        "{e:?}"
    );
    assert_eq!(
        e[1],
        format!(
            "{rule}: Forbidden: contributed to estimated rule & messageExpression cost total exceeding cost limit for entire OpenAPIv3 schema"
        )
    );
    assert!(
        e[2].starts_with(&format!(
            "{BASE}: Forbidden: x-kubernetes-validations estimated rule & messageExpression cost total for entire OpenAPIv3 schema exceeds budget by factor of"
        )),
        "{e:?}"
    );
    // Bounded by maxItems/maxLength: accepted.
    assert!(
        compile_errs(
            json!({"type": "object", "properties": {"l": {"type": "array",
            "maxItems": 10, "items": {"type": "string", "maxLength": 10},
            "x-kubernetes-validations": [{"rule": "self.all(x, self.all(y, x != y || x == y))"}]}}})
        )
        .is_empty()
    );
    // A rule that runs for every item of an unbounded list costs its cost
    // times the list's possible length.
    let e = compile_errs(
        json!({"type": "object", "properties": {"l": {"type": "array",
        "items": {"type": "object", "properties": {"s": {"type": "string"}},
                  "x-kubernetes-validations": [{"rule": "self.s.contains('x')"}]}}}}),
    );
    assert!(
        e[0].starts_with(&format!(
            "{BASE}.properties[l].items.x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of"
        )),
        "{e:?}"
    );
    // With maxItems it fits.
    assert!(
        compile_errs(
            json!({"type": "object", "properties": {"l": {"type": "array", "maxItems": 100,
            "items": {"type": "object", "properties": {"s": {"type": "string", "maxLength": 10}},
                      "x-kubernetes-validations": [{"rule": "self.s.contains('x')"}]}}}})
        )
        .is_empty()
    );
}

#[test]
fn cel_runtime_budget_stops_evaluation() {
    // Each evaluation fits the per-call limit; together they exhaust the
    // per-object budget (lowered here so the test evaluates little).
    crate::cel::TEST_BUDGET.with(|b| b.set(Some(50_000.0)));
    let s = compiled(
        json!({"type": "object", "properties": {"l": {"type": "array",
        "maxItems": 40, "items": {"type": "array", "maxItems": 250, "items": {"type": "integer"},
        "x-kubernetes-validations": [{"rule": "self.all(x, x >= 0)"}]}}}}),
    );
    let row: Vec<i64> = (0..250).collect();
    let rows: Vec<Value> = (0..40).map(|_| json!(row)).collect();
    assert!(errs(&s, json!({"l": [row.clone()]})).is_empty());
    let e = errs(&s, json!({"l": rows}));
    crate::cel::TEST_BUDGET.with(|b| b.set(None));
    assert_eq!(e.len(), 1, "{e:?}");
    // Some rows were evaluated before the budget ran out, then none.
    assert!(e[0].starts_with("l[") && !e[0].starts_with("l[0]"), "{e:?}");
    assert!(
        e[0].ends_with(
            "]: Invalid value: \"array\": validation failed due to running out of cost budget, no further validation rules will be run"
        ),
        "{e:?}"
    );
}

// ---- server-side apply schema ----

#[test]
fn patch_schema_drives_server_side_apply() {
    use rkube_patch::apply::{Kind, Writer, apply};
    let s = compiled(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "required": ["name"], "properties": {
                          "name": {"type": "string"}, "port": {"type": "integer"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "args": {"type": "array", "items": {"type": "string"}},
            "sel": {"type": "object", "x-kubernetes-map-type": "atomic",
                    "additionalProperties": {"type": "string"}}
        }}}
    }));
    let ps = s.patch_schema();
    let kind = Kind {
        schema: &ps,
        root: ps.root(),
        has_status: false,
    };
    let w = |m| Writer {
        manager: m,
        api_version: "g/v1",
        subresource: "",
        now: "2026-01-01T00:00:00Z",
    };
    let a = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "x", "labels": {"a": "1"}},
        "spec": {"ports": [{"name": "a", "port": 1}], "tags": ["t1"], "args": ["x"], "sel": {"k": "v"}}});
    let live = apply(&kind, None, &a, &w("one"), false).expect("first apply");
    let b = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "x", "labels": {"b": "2"}},
        "spec": {"ports": [{"name": "b", "port": 2}], "tags": ["t2"]}});
    let live = apply(&kind, Some(&live), &b, &w("two"), false).expect("second apply");
    // List-type map and set merge by key/value; labels (built-in ObjectMeta) merge.
    assert_eq!(
        live["spec"]["ports"],
        json!([{"name": "a", "port": 1}, {"name": "b", "port": 2}])
    );
    assert_eq!(live["spec"]["tags"], json!(["t1", "t2"]));
    assert_eq!(live["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    let fields = &live["metadata"]["managedFields"][1]["fieldsV1"];
    assert!(
        fields["f:spec"]["f:ports"]
            .get("k:{\"name\":\"b\"}")
            .is_some(),
        "{fields}"
    );
    assert!(
        fields["f:spec"]["f:tags"].get("v:\"t2\"").is_some(),
        "{fields}"
    );
    // Atomic list and atomic map: a different value from another manager conflicts.
    let c = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "x"},
        "spec": {"args": ["y"], "sel": {"k": "w"}}});
    match apply(&kind, Some(&live), &c, &w("three"), false) {
        Err(rkube_patch::apply::ApplyError::Conflicts(c)) => {
            let paths: Vec<&str> = c.iter().map(|(_, p)| p.as_str()).collect();
            assert_eq!(paths, vec![".spec.args", ".spec.sel"]);
        }
        other => panic!("expected conflicts, got {other:?}"),
    }
}

#[test]
fn cel_undefined_fields_fail_compilation() {
    let e = compile_errs(
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"x": {"type": "integer"}, "l": {"type": "array", "maxItems": 5,
            "items": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        "x-kubernetes-validations": [
            {"rule": "self.x > 0 && has(self.l)"},
            {"rule": "self.z > 0"},
            {"rule": "self.l.all(i, i.b == 'x')"}
        ]}}}),
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with(&format!(
            "{BASE}.properties[spec].x-kubernetes-validations[1].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.z > 0\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:5: undefined field 'z'"
        )),
        "{e:?}"
    );
    assert!(e[1].contains("undefined field 'b'"), "{e:?}");
}

#[test]
fn cel_per_call_limit() {
    // Within the static estimate (maxItems 1000), beyond the per-call limit
    // with 725 items, as upstream's e2e test does.
    let s = compiled(
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"list": {"type": "array", "maxItems": 1000,
            "items": {"type": "string", "maxLength": 20}}},
        "x-kubernetes-validations": [{"rule": "self.list.all(a, self.list.all(b, a.size() >= 0))"}]}}}),
    );
    let list: Vec<String> = (0..725).map(|i| format!("{i:020}")).collect();
    let e = errs(&s, json!({"spec": {"list": list}}));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("call cost exceeds limit for rule"), "{e:?}");
    assert!(errs(&s, json!({"spec": {"list": ["a", "b"]}})).is_empty());
}

#[test]
fn ratcheting_keeps_unchanged_invalid_values() {
    let s = compiled(
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 3},
            "other": {"type": "string"},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "required": ["name"], "properties": {
                          "name": {"type": "string"}, "port": {"type": "integer", "maximum": 100}}}},
            "n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self < 10"}]}
        }}}}),
    );
    // Stored before the schema tightened.
    let old = json!({"spec": {"name": "toolong", "other": "a", "n": 50,
        "ports": [{"name": "a", "port": 1000}, {"name": "b", "port": 1}]}});
    // Changing something else: the old violations are ratcheted.
    let new = json!({"spec": {"name": "toolong", "other": "b", "n": 50,
        "ports": [{"name": "b", "port": 2}, {"name": "a", "port": 1000}]}});
    assert_eq!(
        s.validate(&new, Some(&old)),
        Vec::<rkube_validation::FieldError>::new()
    );
    // Changing the invalid values themselves: reported.
    let new = json!({"spec": {"name": "toolong2", "other": "a", "n": 51,
        "ports": [{"name": "a", "port": 1001}, {"name": "b", "port": 1}]}});
    let e: Vec<String> = s
        .validate(&new, Some(&old))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        e,
        vec![
            "spec.name: Too long: may not be more than 3 bytes",
            "spec.ports[0].port: Invalid value: 1001: spec.ports[0].port in body should be less than or equal to 100",
            "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ]
    );
    let new = json!({"spec": {"name": "toolong", "other": "a", "n": 51,
        "ports": [{"name": "a", "port": 1000}, {"name": "b", "port": 1}]}});
    let e: Vec<String> = s
        .validate(&new, Some(&old))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        e,
        vec!["spec.n: Invalid value: \"integer\": failed rule: self < 10"]
    );
    // On create everything counts.
    assert_eq!(s.validate(&old, None).len(), 3);
}

#[test]
fn cel_deeply_nested_rules_are_rejected_not_crashing() {
    let deep = format!("{}true{}", "(".repeat(5000), ")".repeat(5000));
    let e = compile_errs(json!({"type": "object", "x-kubernetes-validations": [{"rule": deep}]}));
    assert_eq!(e.len(), 1, "{e:?}");
    let deep = format!("{}1", "-".repeat(5000));
    let e = compile_errs(json!({"type": "object", "x-kubernetes-validations": [{"rule": deep}]}));
    assert_eq!(e.len(), 1, "{e:?}");
    let deep = format!("{}true", "!".repeat(5000));
    let e = compile_errs(json!({"type": "object", "x-kubernetes-validations": [{"rule": deep}]}));
    assert_eq!(e.len(), 1, "{e:?}");
    let chain = vec!["1"; 5000].join(" + ") + " > 0";
    let e = compile_errs(json!({"type": "object", "x-kubernetes-validations": [{"rule": chain}]}));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("recursion limit exceeded"), "{e:?}");
    let chain = vec!["1"; 40].join(" + ") + " > 0";
    assert_eq!(
        compile_errs(json!({"type": "object", "x-kubernetes-validations": [{"rule": chain}]}))
            .len(),
        1
    );
    // The deepest accepted rule evaluates on a small (2 MiB) stack.
    let ok = vec!["1"; 30].join(" + ") + " > 0";
    let s = compiled(json!({"type": "object", "x-kubernetes-validations": [{"rule": ok}]}));
    let r = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || s.validate(&json!({}), None).len())
        .expect("thread")
        .join()
        .expect("no stack overflow");
    assert_eq!(r, 0);
}

#[test]
fn cel_formats_are_typed() {
    let s = compiled(
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "timeout": {"type": "string", "format": "duration", "maxLength": 20},
            "ratio": {"type": "number"}
        },
        "x-kubernetes-validations": [
            {"rule": "self.start < self.end", "message": "start must be before end"},
            {"rule": "self.timeout <= duration('1h')"},
            {"rule": "self.ratio < 1.0"}
        ]}}}),
    );
    assert!(
        errs(
            &s,
            json!({"spec": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z",
            "timeout": "30m", "ratio": 0}})
        )
        .is_empty()
    );
    assert_eq!(
        errs(
            &s,
            json!({"spec": {"start": "2026-01-03T00:00:00Z", "end": "2026-01-02T00:00:00Z",
            "timeout": "1h30m", "ratio": 1}})
        ),
        vec![
            "spec: Invalid value: \"object\": start must be before end",
            "spec: Invalid value: \"object\": failed rule: self.timeout <= duration('1h')",
            "spec: Invalid value: \"object\": failed rule: self.ratio < 1.0",
        ]
    );
}

#[test]
fn validate_runs_every_validator_after_a_type_mismatch() {
    // controller-gen's IntOrString: kube-openapi reports the type, the anyOf
    // and the closest alternative's failure.
    let s = compiled(json!({"type": "object", "properties": {"port": {
        "x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}}));
    assert_eq!(
        errs(&s, json!({"port": true})),
        vec![
            "port: Invalid value: \"boolean\": port in body must be of type integer,string: \"boolean\"",
            "<nil>: Invalid value: \"\": \"port\" must validate at least one schema (anyOf)",
            "port: Invalid value: \"boolean\": port in body must be of type integer: \"boolean\"",
        ]
    );
    assert!(errs(&s, json!({"port": 80})).is_empty());
    assert!(errs(&s, json!({"port": "http"})).is_empty());
}

#[test]
fn cel_kubernetes_library() {
    let s = compiled(
        json!({"type": "object", "properties": {"l": {"type": "array", "maxItems": 10,
        "items": {"type": "integer"},
        "x-kubernetes-validations": [
            {"rule": "self.isSorted()"},
            {"rule": "self.sum() < 100"},
            {"rule": "self.min() >= 0 && self.max() <= 50"},
            {"rule": "sets.contains(self, [1])"},
            {"rule": "'abc-123'.find('[0-9]+') == '123' && 'a1b2'.findAll('[0-9]') == ['1', '2']"},
            {"rule": "'Hello'.lowerAscii() == 'hello' && 'a,b'.split(',').size() == 2"}
        ]}}}),
    );
    assert_eq!(errs(&s, json!({"l": [1, 2, 3]})), Vec::<String>::new());
    assert_eq!(
        errs(&s, json!({"l": [60, 2]})),
        vec![
            "l: Invalid value: \"array\": failed rule: self.isSorted()",
            "l: Invalid value: \"array\": failed rule: self.min() >= 0 && self.max() <= 50",
            "l: Invalid value: \"array\": failed rule: sets.contains(self, [1])",
        ]
    );
}

#[test]
fn kube_derive_schema_is_accepted() {
    // What kube-rs' `#[derive(CustomResource)]` (schemars) generates.
    let s = compiled(json!({
        "description": "Auto-generated derived type for FooSpec via `CustomResource`",
        "properties": {
            "spec": {"properties": {
                "name": {"type": "string"},
                "info": {"nullable": true, "type": "string"},
                "replicas": {"format": "int32", "type": "integer"},
                "count": {"format": "uint32", "minimum": 0.0, "type": "integer"},
                "ratio": {"format": "double", "type": "number"},
                "labels": {"additionalProperties": {"type": "string"}, "type": "object"},
                "items": {"items": {"type": "string"}, "type": "array"},
                "mode": {"enum": ["A", "B"], "type": "string"},
                "opt": {"nullable": true, "properties": {"a": {"type": "boolean"}},
                        "required": ["a"], "type": "object"}
            }, "required": ["name", "replicas", "count", "labels", "items", "mode"], "type": "object"},
            "status": {"nullable": true, "properties": {"is_bad": {"type": "boolean"}},
                       "required": ["is_bad"], "type": "object"}
        },
        "required": ["spec"],
        "title": "Foo",
        "type": "object"
    }));
    let mut obj = json!({"apiVersion": "clux.dev/v1", "kind": "Foo", "metadata": {"name": "f"},
        "spec": {"name": "x", "info": null, "replicas": 1, "count": 2, "ratio": 1,
                 "labels": {}, "items": [], "mode": "A", "opt": null},
        "status": null});
    assert!(s.prune(&mut obj).is_empty());
    s.apply_defaults(&mut obj);
    assert_eq!(errs(&s, obj), Vec::<String>::new());
    assert_eq!(
        errs(
            &s,
            json!({"spec": {"name": "x", "replicas": 1, "count": -1, "labels": {},
            "items": [], "mode": "C"}})
        ),
        vec![
            "spec.count: Invalid value: -1: spec.count in body should be greater than or equal to 0",
            "spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\"",
        ]
    );
}

#[test]
fn field_schema_follows_simple_paths() {
    let s = compiled(json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"replicas": {"type": "integer"},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "l": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "boolean"}}}}}}}}));
    assert_eq!(
        s.field_schema(".spec.replicas"),
        Some(&json!({"type": "integer"}))
    );
    assert_eq!(
        s.field_schema("spec.m.anything"),
        Some(&json!({"type": "string"}))
    );
    assert_eq!(
        s.field_schema(".spec.l[*].n"),
        Some(&json!({"type": "boolean"}))
    );
    assert_eq!(s.field_schema(".spec.nope"), None);
}

#[test]
fn cel_quantity_library() {
    let s = compiled(
        json!({"type": "object", "properties": {"mem": {"type": "string", "maxLength": 20,
        "x-kubernetes-validations": [
            {"rule": "isQuantity(self)", "message": "must be a quantity"},
            {"rule": "!isQuantity(self) || quantity(self).compareTo(quantity('1Gi')) <= 0", "message": "at most 1Gi"},
            {"rule": "!isQuantity(self) || quantity(self).isGreaterThan(quantity('100m'))", "message": "more than 100m"}
        ]}}}),
    );
    assert!(errs(&s, json!({"mem": "512Mi"})).is_empty());
    assert_eq!(
        errs(&s, json!({"mem": "2Gi"})),
        vec!["mem: Invalid value: \"string\": at most 1Gi"]
    );
    assert_eq!(
        errs(&s, json!({"mem": "nope"})),
        vec!["mem: Invalid value: \"string\": must be a quantity"]
    );
    assert_eq!(
        errs(&s, json!({"mem": "50m"})),
        vec!["mem: Invalid value: \"string\": more than 100m"]
    );
}

#[test]
fn compile_rejects_invalid_patterns() {
    let e = compile_errs(
        json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "(unclosed"}}}),
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(&format!(
            "{BASE}.properties[a].pattern: Invalid value: \"(unclosed\": must be a valid regular expression, but isn't: error parsing regexp: "
        )),
        "{e:?}"
    );
}

#[test]
fn compile_checks_defaults_against_rules() {
    let e = compile_errs(
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "default": {"a": 5},
        "properties": {"a": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.a < 3", "message": "a must be below 3"}]}}}),
    );
    assert_eq!(
        e,
        vec![format!(
            "{BASE}.properties[spec].default: Invalid value: \"object\": a must be below 3"
        )]
    );
}

#[test]
fn cel_generated_lists_are_costed() {
    // A comprehension over a generated million-element list is refused at
    // compile time instead of running on every write.
    let e = compile_errs(
        json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 5,
        "x-kubernetes-validations": [{"rule": "lists.range(1000000).all(x, lists.range(1000000).all(y, x + y >= 0))"}]}}}),
    );
    assert!(e[0].contains("estimated rule cost exceeds budget"), "{e:?}");
}

#[test]
fn cel_map_values_and_atomic_maps() {
    let s = compiled(
        json!({"type": "object", "properties": {"m": {"type": "object",
        "x-kubernetes-map-type": "atomic",
        "additionalProperties": {"type": "string", "maxLength": 10,
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"},
                                         {"rule": "self != 'bad'", "messageExpression": "'  value ' + self + ' is bad  '"}]}}}}),
    );
    assert_eq!(
        s.validate(
            &json!({"m": {"a": "x", "b": "bad"}}),
            Some(&json!({"m": {"a": "y", "b": "bad"}}))
        )
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>(),
        vec!["m[a]: Invalid value: \"string\": immutable"]
    );
    assert_eq!(
        errs(&s, json!({"m": {"b": "bad"}})),
        vec!["m[b]: Invalid value: \"string\": value bad is bad"]
    );
}

#[test]
fn cel_root_rules_see_object_metadata() {
    let s = compiled(
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"x": {"type": "string"}}}},
        "x-kubernetes-validations": [
            {"rule": "self.metadata.name.startsWith('ok-')", "message": "name must start with ok-"},
            {"rule": "self.kind == 'Widget' && self.apiVersion.startsWith('example.com/')"}
        ]}),
    );
    let obj = |name: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": {"x": "y"}})
    };
    assert!(errs(&s, obj("ok-1")).is_empty());
    assert_eq!(
        errs(&s, obj("bad")),
        vec!["<nil>: Invalid value: \"object\": name must start with ok-"]
    );
    // Below the root, metadata is an ordinary (undeclared) field.
    let e = compile_errs(
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"x": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.metadata.name == 'a'"}]}}}),
    );
    assert!(e[0].contains("undefined field 'metadata'"), "{e:?}");
}
