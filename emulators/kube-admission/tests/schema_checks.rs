//! Each structural check and CEL feature on small schemas, with the messages kube-apiserver
//! prints.
#![allow(clippy::unwrap_used)]

use kube_admission::{CompiledSchema, FieldErrorKind};
use serde_json::{Value, json};

/// A root schema whose `spec` is `spec_schema`.
fn with_spec(spec_schema: Value) -> CompiledSchema {
    CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {"spec": spec_schema},
    }))
    .unwrap()
}

fn object(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
}

fn check(s: &CompiledSchema, spec: Value) -> Vec<String> {
    update(s, spec, None)
}

fn update(s: &CompiledSchema, spec: Value, old_spec: Option<Value>) -> Vec<String> {
    let mut obj = object(spec);
    let old = old_spec.map(object);
    match s.admit(&mut obj, old.as_ref()) {
        Ok(()) => vec![],
        Err(e) => e.into_iter().map(|e| e.message).collect(),
    }
}

fn admitted(s: &CompiledSchema, spec: Value) -> Value {
    let mut obj = object(spec);
    s.admit(&mut obj, None).unwrap();
    obj["spec"].clone()
}

/// Added after blocking errors when the schema has CEL rules (schemas without rules have no CEL
/// validator at all).
const BLOCKED: &str = "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

fn props(p: Value) -> Value {
    json!({"type": "object", "properties": p})
}

#[test]
fn exclusive_bounds_and_multiples() {
    let s = with_spec(props(json!({
        "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1, "exclusiveMaximum": true},
        "big": {"type": "integer", "maximum": 1000000},
        "step": {"type": "integer", "multipleOf": 5},
    })));
    assert!(check(&s, json!({"ratio": 0.5, "big": 1000000, "step": 10})).is_empty());
    assert_eq!(
        check(&s, json!({"ratio": 0})),
        vec!["spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"]
    );
    assert_eq!(
        check(&s, json!({"ratio": 1.0})),
        vec!["spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1"]
    );
    assert_eq!(
        check(&s, json!({"big": 1000001})),
        vec![
            "spec.big: Invalid value: 1000001: spec.big in body should be less than or equal to 1e+06"
        ]
    );
    assert_eq!(
        check(&s, json!({"step": 7})),
        vec!["spec.step: Invalid value: 7: spec.step in body should be a multiple of 5"]
    );
}

#[test]
fn string_lengths_count_characters() {
    let s = with_spec(props(
        json!({"name": {"type": "string", "minLength": 2, "maxLength": 3}}),
    ));
    assert!(check(&s, json!({"name": "héé"})).is_empty());
    assert_eq!(
        check(&s, json!({"name": "é"})),
        vec!["spec.name: Invalid value: \"é\": spec.name in body should be at least 2 chars long"]
    );
    assert_eq!(
        check(&s, json!({"name": "éééé"})),
        vec!["spec.name: Too long: may not be more than 3 bytes"]
    );
}

#[test]
fn item_counts_and_unique_items() {
    let s = with_spec(props(json!({
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": true},
        "set": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
    })));
    assert!(check(&s, json!({"tags": ["a"], "ids": [1, 2], "set": ["a", "b"]})).is_empty());
    assert_eq!(
        check(&s, json!({"tags": []})),
        vec!["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"]
    );
    assert_eq!(
        check(&s, json!({"tags": ["a", "b", "c"]})),
        vec!["spec.tags: Too many: 3: must have at most 2 items"]
    );
    assert_eq!(
        check(&s, json!({"ids": [1, 2, 1]})),
        vec!["spec.ids: Invalid value: \"\": spec.ids in body shouldn't contain duplicates"]
    );
    assert_eq!(
        check(&s, json!({"set": ["a", "b", "a", "a"]})),
        vec!["spec.set[2]: Duplicate value: \"a\""]
    );
    assert_eq!(
        check(&s, json!({"tags": [1]})),
        vec![
            "spec.tags[0]: Invalid value: \"integer\": spec.tags[0] in body must be of type string: \"integer\""
        ]
    );
}

#[test]
fn property_counts_and_map_values() {
    let s = with_spec(props(json!({
        "labels": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string", "maxLength": 3},
                   "x-kubernetes-validations": [{"rule": "self.all(k, self[k] != 'no')", "message": "no is not a label"}]},
        "limits": {"type": "object", "additionalProperties": {"type": "integer",
                   "x-kubernetes-validations": [{"rule": "self >= 0", "message": "must not be negative"}]}},
    })));
    assert!(
        check(
            &s,
            json!({"labels": {"a": "yes"}, "limits": {"cpu.max": 1}})
        )
        .is_empty()
    );
    assert_eq!(
        check(&s, json!({"labels": {}})),
        vec![
            "spec.labels: Invalid value: 0: spec.labels in body should have at least 1 properties"
        ]
    );
    assert_eq!(
        check(&s, json!({"labels": {"a": "long"}})),
        vec![
            "spec.labels.a: Too long: may not be more than 3 bytes",
            BLOCKED
        ]
    );
    assert_eq!(
        check(&s, json!({"labels": {"a": "no"}})),
        vec!["spec.labels: Invalid value: \"object\": no is not a label"]
    );
    // CEL names map entries with brackets.
    assert_eq!(
        check(&s, json!({"limits": {"cpu.max": -1}})),
        vec!["spec.limits[cpu.max]: Invalid value: \"integer\": must not be negative"]
    );
}

#[test]
fn int_or_string_fields() {
    let s = with_spec(props(json!({"port": {"x-kubernetes-int-or-string": true}})));
    assert!(check(&s, json!({"port": 80})).is_empty());
    assert!(check(&s, json!({"port": "http"})).is_empty());
    assert_eq!(
        check(&s, json!({"port": true})),
        vec![
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""
        ]
    );
}

#[test]
fn pruning_respects_preserve_unknown_fields_at_any_level() {
    let s = with_spec(props(json!({
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                 "properties": {"typed": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        "strict": {"type": "object", "properties": {"a": {"type": "string"}}},
        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                     "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
    })));
    let spec = admitted(
        &s,
        json!({"free": {"anything": [1, {"b": null}], "typed": {"a": "x", "b": "pruned"}},
               "strict": {"a": "x", "b": "pruned"},
               "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}, "other": 1},
               "unknown": 1}),
    );
    assert_eq!(
        spec,
        json!({"free": {"anything": [1, {"b": null}], "typed": {"a": "x"}},
               "strict": {"a": "x"},
               "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}}})
    );
}

#[test]
fn nulls_and_defaults() {
    let s = with_spec(props(json!({
        "keep": {"type": "string", "nullable": true},
        "drop": {"type": "string"},
        "mode": {"type": "string", "default": "fast"},
        "nested": {"type": "object", "properties": {"n": {"type": "integer", "default": 3}}},
    })));
    assert_eq!(
        admitted(&s, json!({"keep": null, "drop": null, "nested": {}})),
        json!({"keep": null, "mode": "fast", "nested": {"n": 3}})
    );
    assert_eq!(admitted(&s, json!({"mode": null})), json!({"mode": "fast"}));
    let items = with_spec(props(
        json!({"xs": {"type": "array", "items": {"type": "string"}}}),
    ));
    assert_eq!(
        check(&items, json!({"xs": ["a", null]})),
        vec![
            "spec.xs[1]: Invalid value: \"null\": spec.xs[1] in body must be of type string: \"null\""
        ]
    );
}

#[test]
fn rule_reasons_messages_and_field_paths() {
    let s = with_spec(json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "string"}},
        "x-kubernetes-validations": [
            {"rule": "!has(self.a) || self.a < 10", "messageExpression": "'a is ' + string(self.a) + ', above 9'", "fieldPath": ".a"},
            {"rule": "!has(self.b) || self.b != 1", "reason": "FieldValueForbidden", "message": "b may not be 1", "fieldPath": ".b"},
            {"rule": "has(self.c)", "reason": "FieldValueRequired", "message": "c is required"},
            {"rule": "!has(self.b) || self.b != 2", "reason": "FieldValueDuplicate", "fieldPath": ".b"},
            {"rule": "!has(self.a) || self.a != 5"},
        ],
    }));
    assert!(check(&s, json!({"c": "x"})).is_empty());
    assert_eq!(
        check(&s, json!({"a": 12, "c": "x"})),
        vec!["spec.a: Invalid value: \"object\": a is 12, above 9"]
    );
    assert_eq!(
        check(&s, json!({"b": 1, "c": "x"})),
        vec!["spec.b: Forbidden: b may not be 1"]
    );
    assert_eq!(
        check(&s, json!({})),
        vec!["spec: Required value: c is required"]
    );
    assert_eq!(
        check(&s, json!({"b": 2, "c": "x"})),
        vec!["spec.b: Duplicate value: \"object\""]
    );
    assert_eq!(
        check(&s, json!({"a": 5, "c": "x"})),
        vec!["spec: Invalid value: \"object\": failed rule: !has(self.a) || self.a != 5"]
    );
    let mut obj = object(json!({"b": 1, "c": "x"}));
    let e = s.admit(&mut obj, None).unwrap_err();
    assert_eq!(e[0].kind, FieldErrorKind::Forbidden);
    assert_eq!(e[0].detail, "b may not be 1");
}

#[test]
fn evaluation_errors_name_the_rule_by_its_message() {
    let s = with_spec(json!({
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.a == 'x'", "message": "a must be x"}],
    }));
    assert_eq!(
        check(&s, json!({})),
        vec!["spec: Invalid value: \"object\": no such key: a evaluating rule: a must be x"]
    );
}

#[test]
fn root_rules_see_only_name_and_generate_name_of_metadata() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {"spec": {"type": "object"}},
        "x-kubernetes-validations": [
            {"rule": "self.metadata.name.startsWith('w')", "message": "names start with w"},
            {"rule": "self.kind == 'Widget' && self.apiVersion == 'example.com/v1'", "message": "type meta"},
        ],
    }))
    .unwrap();
    let mut ok = object(json!({}));
    assert!(s.admit(&mut ok, None).is_ok());
    let mut bad = object(json!({}));
    bad["metadata"]["name"] = json!("x");
    let e = s.admit(&mut bad, None).unwrap_err();
    assert_eq!(
        e[0].message,
        "<nil>: Invalid value: \"object\": names start with w"
    );

    let ns = CompiledSchema::compile(&json!({
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.__namespace__ == 'a'"}],
    }))
    .unwrap();
    let mut obj = object(json!({}));
    obj["metadata"]["namespace"] = json!("a");
    let e = ns.admit(&mut obj, None).unwrap_err();
    assert!(e[0].message.contains("no such key"), "{e:?}");
}

#[test]
fn transition_rules_skip_creates_and_missing_old_values() {
    let s = with_spec(props(json!({
        "size": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may only grow"}]},
    })));
    assert!(check(&s, json!({"size": 1})).is_empty());
    assert!(update(&s, json!({"size": 1}), Some(json!({}))).is_empty());
    assert!(update(&s, json!({"size": 3}), Some(json!({"size": 2}))).is_empty());
    assert_eq!(
        update(&s, json!({"size": 1}), Some(json!({"size": 2}))),
        vec!["spec.size: Invalid value: \"integer\": may only grow"]
    );
}

#[test]
fn map_list_items_correlate_by_key_for_old_self() {
    let s = with_spec(props(json!({
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "required": ["name"],
                            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                            "x-kubernetes-validations": [{"rule": "self.port == oldSelf.port", "message": "port is immutable"}]}},
    })));
    let old = json!({"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]});
    // Reordered and extended: same ports, accepted.
    assert!(
        update(&s, json!({"ports": [{"name": "c", "port": 9}, {"name": "b", "port": 2}, {"name": "a", "port": 1}]}), Some(old.clone()))
            .is_empty()
    );
    assert_eq!(
        update(
            &s,
            json!({"ports": [{"name": "b", "port": 3}, {"name": "a", "port": 1}]}),
            Some(old)
        ),
        vec!["spec.ports[0]: Invalid value: \"object\": port is immutable"]
    );
}

#[test]
fn unchanged_values_are_not_checked_again() {
    // A value stored before the schema became stricter may stay as long as it does not change.
    let s = with_spec(props(json!({
        "name": {"type": "string", "maxLength": 3, "x-kubernetes-validations": [{"rule": "self != 'bad'", "message": "bad name"}]},
        "other": {"type": "string"},
    })));
    let old = json!({"name": "toolong"});
    assert!(
        update(
            &s,
            json!({"name": "toolong", "other": "x"}),
            Some(old.clone())
        )
        .is_empty()
    );
    assert_eq!(
        update(&s, json!({"name": "toolong2"}), Some(old)),
        vec!["spec.name: Too long: may not be more than 3 bytes", BLOCKED]
    );
    assert!(
        update(
            &s,
            json!({"name": "bad", "other": "x"}),
            Some(json!({"name": "bad"}))
        )
        .is_empty()
    );
    assert_eq!(
        check(&s, json!({"name": "bad"})),
        vec!["spec.name: Invalid value: \"string\": bad name"]
    );
}

#[test]
fn broken_schemas_do_not_compile() {
    let bad_pattern =
        CompiledSchema::compile(&props(json!({"a": {"type": "string", "pattern": "("}})));
    assert!(bad_pattern.unwrap_err().contains("pattern"));
    let bad_rule = CompiledSchema::compile(
        &json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a =="}]}),
    );
    assert!(bad_rule.is_err());
    let bad_type = CompiledSchema::compile(&json!({"type": "thing"}));
    assert!(bad_type.unwrap_err().contains("thing"));
    assert!(CompiledSchema::compile(&json!("not a schema")).is_err());
}

#[test]
fn objects_that_are_not_objects_are_refused() {
    let s = with_spec(json!({"type": "object"}));
    let mut v = json!([1]);
    let e = s.admit(&mut v, None).unwrap_err();
    assert_eq!(e[0].kind, FieldErrorKind::TypeInvalid);
}

#[test]
fn a_missing_name_is_required_unless_generated() {
    let s = with_spec(json!({"type": "object"}));
    let mut obj =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}, "spec": {}});
    assert_eq!(
        s.admit(&mut obj.clone(), None).unwrap_err()[0].message,
        "metadata.name: Required value: name or generateName is required"
    );
    obj["metadata"]["generateName"] = json!("w-");
    assert!(s.admit(&mut obj, None).is_ok());
}

#[test]
fn value_validations_under_any_of_one_of_all_of_and_not() {
    let s = with_spec(props(json!({
        "any": {"type": "string", "anyOf": [{"pattern": "^a"}, {"maxLength": 2}]},
        "one": {"type": "integer", "oneOf": [{"minimum": 10}, {"maximum": 20}]},
        "all": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]},
        "not": {"type": "string", "not": {"enum": ["forbidden"]}},
    })));
    assert!(check(&s, json!({"any": "abc", "one": 5, "all": 3, "not": "fine"})).is_empty());
    assert_eq!(
        check(&s, json!({"any": "xyz"})),
        vec![
            "<nil>: Invalid value: \"\": must validate at least one schema (anyOf)",
            "spec.any: Invalid value: \"xyz\": spec.any in body should match '^a'"
        ]
    );
    assert_eq!(
        check(&s, json!({"one": 15})),
        vec![
            "<nil>: Invalid value: \"\": must validate one and only one schema (oneOf). Found 2 valid alternatives"
        ]
    );
    assert_eq!(
        check(&s, json!({"all": 9})),
        vec![
            "spec.all: Invalid value: 9: spec.all in body should be less than or equal to 5",
            "<nil>: Invalid value: \"\": must validate all the schemas (allOf)"
        ]
    );
    assert_eq!(
        check(&s, json!({"not": "forbidden"})),
        vec!["<nil>: Invalid value: \"\": must not validate the schema (not)"]
    );
}

#[test]
fn runtime_errors_in_rules_become_field_errors() {
    for rule in [
        "self.n / 0 == 1",
        "self.n % 0 == 1",
        "self.n + 9223372036854775807 > 0",
        "-9223372036854775808 - self.n < 0",
        "self.xs[5] == 1",
        "self.s.matches('(') ",
        "int(self.s) == 1",
        "self.s.substring(5) == ''",
    ] {
        let s = with_spec(json!({
            "type": "object",
            "properties": {"n": {"type": "integer"}, "xs": {"type": "array", "items": {"type": "integer"}}, "s": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": rule}],
        }));
        let f = check(&s, json!({"n": 1, "xs": [1], "s": "ab"}));
        assert_eq!(f.len(), 1, "{rule}: {f:?}");
        assert!(
            f[0].starts_with("spec: Invalid value: \"object\": "),
            "{rule}: {f:?}"
        );
    }
}

#[test]
fn unusable_message_expressions_fall_back_to_the_message() {
    let s = with_spec(json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "x-kubernetes-validations": [
            {"rule": "self.a < 10", "messageExpression": "'  '", "message": "a is too big"},
            {"rule": "self.a < 20", "messageExpression": "'line\\nbreak'"},
        ],
    }));
    assert_eq!(
        check(&s, json!({"a": 25})),
        vec![
            "spec: Invalid value: \"object\": a is too big",
            "spec: Invalid value: \"object\": failed rule: self.a < 20"
        ]
    );
}

#[test]
fn set_items_have_no_old_self() {
    let s = with_spec(props(json!({
        "tags": {"type": "array", "x-kubernetes-list-type": "set",
                 "items": {"type": "string", "x-kubernetes-validations": [
                     {"rule": "self == oldSelf", "message": "transition"},
                     {"rule": "self != 'x'", "message": "no x"}]}},
    })));
    // New elements: only the rule without oldSelf runs.
    assert_eq!(
        update(
            &s,
            json!({"tags": ["a", "x"]}),
            Some(json!({"tags": ["b"]}))
        ),
        vec!["spec.tags[1]: Invalid value: \"string\": no x"]
    );
    // An element kept from the old list is not checked again.
    assert!(
        update(
            &s,
            json!({"tags": ["x", "c"]}),
            Some(json!({"tags": ["x"]}))
        )
        .is_empty()
    );
}

#[test]
fn rules_see_everything_they_can_read() {
    // Only the parts of a value that rules read are converted for CEL; these rules read values
    // through has(), whole-object comparison, macros and indexing.
    let s = with_spec(json!({
        "type": "object",
        "properties": {
            "big": {"type": "object", "properties": {"deep": {"type": "object", "properties": {"n": {"type": "integer"}}}}},
            "list": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"}}}},
            "other": {"type": "string"},
        },
        "x-kubernetes-validations": [
            {"rule": "has(self.big) == has(oldSelf.big)", "message": "big may not come or go"},
            {"rule": "!has(self.big) || self.big == oldSelf.big", "message": "big is immutable"},
            {"rule": "!has(self.list) || self.list.all(x, x.n < 5)", "message": "n below 5"},
            {"rule": "!has(self.list) || size(self.list) < 3 || self.list[2].n != 4", "message": "third is not 4"},
        ],
    }));
    let old = json!({"big": {"deep": {"n": 1}}, "list": [{"n": 1}]});
    assert!(
        update(
            &s,
            json!({"big": {"deep": {"n": 1}}, "list": [{"n": 1}], "other": "x"}),
            Some(old.clone())
        )
        .is_empty()
    );
    assert_eq!(
        update(
            &s,
            json!({"big": {"deep": {"n": 2}}, "list": [{"n": 1}]}),
            Some(old.clone())
        ),
        vec!["spec: Invalid value: \"object\": big is immutable"]
    );
    assert_eq!(
        update(&s, json!({"list": [{"n": 1}]}), Some(old.clone())),
        vec!["spec: Invalid value: \"object\": big may not come or go"]
    );
    assert_eq!(
        update(
            &s,
            json!({"big": {"deep": {"n": 1}}, "list": [{"n": 1}, {"n": 2}, {"n": 4}]}),
            Some(old.clone())
        ),
        vec!["spec: Invalid value: \"object\": third is not 4"]
    );
    assert_eq!(
        update(
            &s,
            json!({"big": {"deep": {"n": 1}}, "list": [{"n": 7}]}),
            Some(old)
        ),
        vec!["spec: Invalid value: \"object\": n below 5"]
    );
}

#[test]
fn integers_must_fit_their_format() {
    let s = with_spec(props(json!({
        "small": {"type": "integer", "format": "int32"},
        "plain": {"type": "integer"},
    })));
    assert!(
        check(
            &s,
            json!({"small": 2147483647, "plain": 9223372036854775807_i64})
        )
        .is_empty()
    );
    assert_eq!(
        check(&s, json!({"small": -2147483649_i64})),
        vec![
            "<nil>: Invalid value: \"\": Checked value must be of type integer with format int32 in spec.small"
        ]
    );
    assert_eq!(
        check(&s, json!({"plain": 9223372036854775808_u64})),
        vec![
            "<nil>: Invalid value: \"\": Checked value must be of type integer (default format) in spec.plain"
        ]
    );
}

#[test]
fn crds_may_constrain_the_name() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}}},
            "spec": {"type": "object"},
        },
    }))
    .unwrap();
    let mut ok = object(json!({}));
    assert!(s.admit(&mut ok, None).is_ok());
    let mut long = object(json!({}));
    long["metadata"]["name"] = json!("toolong");
    let e = s.admit(&mut long, None).unwrap_err();
    assert_eq!(
        e[0].message,
        "metadata.name: Too long: may not be more than 5 bytes"
    );
}

#[test]
fn a_stored_null_is_no_old_value() {
    let s = with_spec(props(json!({
        "size": {"type": "integer", "nullable": true,
                 "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may only grow"}]},
    })));
    assert!(update(&s, json!({"size": 1}), Some(json!({"size": null}))).is_empty());
}

// apiextensions-apiserver pkg/registry/customresourcedefinition/strategy.go PrepareForUpdate
// keeps the stored status (plus the new storage version) whatever status the update sends, and
// pkg/apis/apiextensions/validation/validation.go ValidateCustomResourceDefinitionStoredVersions
// then requires every stored version to remain in spec.versions.
#[test]
fn an_update_may_not_drop_a_stored_version() {
    let crd = |versions: Value, status: Value| {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                    "listKind": "WidgetList"},
                "versions": versions},
            "status": status,
        })
    };
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object"}}})
    };
    let old = crd(
        json!([version("v1alpha1", false), version("v1", true)]),
        json!({"storedVersions": ["v1alpha1", "v1"]}),
    );
    // The client's status claims only v1 is stored; the server keeps the stored status.
    let new = crd(
        json!([version("v1", true)]),
        json!({"storedVersions": ["v1"]}),
    );
    let errors = kube_admission::validate_crd(&new, Some(&old));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "status.storedVersions[0]");
    assert_eq!(errors[0].kind, FieldErrorKind::Invalid);
    // Changing the storage version adds it to the stored versions: no error.
    let new = crd(
        json!([version("v1alpha1", true), version("v1", false)]),
        json!({}),
    );
    assert!(kube_admission::validate_crd(&new, Some(&old)).is_empty());
}

// Pruning drops a null object field (it is not nullable) but keeps a null list item, which the
// type check then refuses: apiextensions-apiserver gives an int-or-string schema the types
// `integer,string` for validation, and kube-openapi validate/type.go refuses null for a typed,
// non-nullable schema. An untyped item (preserve-unknown-fields) takes null.
#[test]
fn null_list_items_are_refused_unless_untyped() {
    let s = with_spec(props(json!({
        "ports": {"type": "array", "items": {"x-kubernetes-int-or-string": true}},
        "extra": {"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": true}},
    })));
    assert_eq!(
        check(&s, json!({"ports": [80, null]})),
        vec![
            "spec.ports[1]: Invalid value: \"null\": spec.ports[1] in body must be of type integer,string: \"null\""
        ]
    );
    assert!(check(&s, json!({"extra": [1, null]})).is_empty());
}

// go-openapi validate/schema_props.go: when no branch of anyOf / oneOf passes, the errors of
// the best failing branch follow the combinator's own; on a tie the first branch is kept
// (a later one replaces it only when strictly better).
#[test]
fn a_failed_combinator_reports_its_first_best_branch() {
    let s = with_spec(props(json!({
        "any": {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]},
        "one": {"type": "integer", "oneOf": [{"minimum": 10}, {"maximum": 2}]},
    })));
    assert_eq!(
        check(&s, json!({"any": "c"})),
        vec![
            "<nil>: Invalid value: \"\": must validate at least one schema (anyOf)",
            "spec.any: Invalid value: \"c\": spec.any in body should match '^a'"
        ]
    );
    assert_eq!(
        check(&s, json!({"one": 5})),
        vec![
            "<nil>: Invalid value: \"\": must validate one and only one schema (oneOf). Found none valid",
            "spec.one: Invalid value: 5: spec.one in body should be greater than or equal to 10"
        ]
    );
}

// kube-openapi validate/validator.go enumValidator converts the value to the enum entry's Go
// type and compares: an integer entry matches the same integer written as a float (the server
// decodes `1.0` as float64 1), and integers beyond 2^53 compare exactly, not as floats.
#[test]
fn enum_numbers_compare_by_value() {
    let s = with_spec(props(json!({
        "level": {"type": "number", "enum": [1, 2.5, 9007199254740993_i64]},
    })));
    for ok in [
        json!(1),
        json!(1.0),
        json!(2.5),
        json!(9007199254740993_i64),
    ] {
        assert!(check(&s, json!({"level": ok})).is_empty(), "{ok}");
    }
    assert_eq!(
        check(&s, json!({"level": 9007199254740992_i64})),
        vec![
            "spec.level: Unsupported value: 9007199254740992: supported values: \"1\", \"2.5\", \"9007199254740993\""
        ]
    );
}

// kube-openapi pkg/validation/strfmt/time.go IsDateTime and date.go IsDate check the
// `date-time` and `date` formats; the cases of time_test.go (TestParseDateTime_fullCycle's
// strings, TestDateTime_IsDateTime_errorCases), and the forms the laxer ParseDateTime would
// decode but the format check refuses (a space for the T, an offset without a colon, no zone).
#[test]
fn date_time_and_date_formats_follow_strfmt() {
    let s = with_spec(props(json!({
        "at": {"type": "string", "format": "date-time"},
        "on": {"type": "string", "format": "date"},
    })));
    for ok in [
        "2014-12-15T08:00:00.000Z",
        "2011-08-18T19:03:37.000+01:00",
        "2014-12-15T19:30:20.000Z",
        "0001-01-01T00:00:00.000Z",
        "1970-01-01T00:00:00.000Z",
        "2024-02-29t23:59:59z",
    ] {
        assert!(check(&s, json!({"at": ok})).is_empty(), "{ok}");
    }
    for bad in [
        "zor",
        "zorg",
        "zorgTx",
        "1972-12-31Tx",
        "1972-12-31T24:40:00.000Z",
        "1972-12-31T23:63:00.000Z",
        "1972-12-31T23:59:60.000Z",
        "2014-12-15 08:00:00Z",
        "2014-12-15T08:00:00+0100",
        "2014-12-15T08:00:00",
        "2023-02-29T00:00:00Z",
        "2014-12-15",
        "",
    ] {
        assert_eq!(
            check(&s, json!({"at": bad})),
            vec![format!(
                "spec.at: Invalid value: \"{bad}\": spec.at in body must be of type date-time: \"{bad}\""
            )],
            "{bad}"
        );
    }
    for ok in ["2024-02-29", "0000-01-01"] {
        assert!(check(&s, json!({"on": ok})).is_empty(), "{ok}");
    }
    // Each part must be all digits with '-' between (Go's layout parse), not just parse as a
    // number.
    for bad in [
        "2023-02-29",
        "2024-1-01",
        "24-01-01",
        "2024-01-01T00:00:00Z",
        "2024x01-01",
        "2024-01x01",
        "2a24-01-01",
        "2024-+1-01",
        "2024-01-+1",
    ] {
        assert_eq!(
            check(&s, json!({"on": bad})),
            vec![format!(
                "spec.on: Invalid value: \"{bad}\": spec.on in body must be of type date: \"{bad}\""
            )],
            "{bad}"
        );
    }
}

// kube-openapi pkg/validation/strfmt/duration.go IsDuration checks `format: duration`: Go's
// time.ParseDuration, else a Scala-like `<digits> <unit>` (duration_test.go TestDurationParser,
// TestDuration, TestIsDuration_Failed).
#[test]
fn duration_format_follows_strfmt() {
    let s = with_spec(props(
        json!({"every": {"type": "string", "format": "duration"}}),
    ));
    for ok in [
        "1h30m",
        "-1.5s",
        "0",
        "1  wk",
        "3 days",
        "1micros",
        "2 weeks and 1 day",
    ] {
        assert!(check(&s, json!({"every": ok})).is_empty(), "{ok}");
    }
    for bad in ["yada", "three week", "12 parsecs", "45 weeekks", "1.5", ""] {
        assert_eq!(
            check(&s, json!({"every": bad})),
            vec![format!(
                "spec.every: Invalid value: \"{bad}\": spec.every in body must be of type duration: \"{bad}\""
            )],
            "{bad}"
        );
    }
}

// kube-openapi validate/values.go MultipleOf: a factor below 1 is applied as 1/factor·value,
// and the quotient counts as an integer within go-openapi swag's IsFloat64AJSONInteger
// (relative error below 1e-9), so decimal multiples hold despite binary rounding; a factor
// that is not positive is an error of its own.
#[test]
fn multiples_of_decimals_tolerate_rounding() {
    let s = with_spec(props(json!({
        "price": {"type": "number", "multipleOf": 0.01},
        "tenth": {"type": "number", "multipleOf": 0.1},
        "zero": {"type": "number", "multipleOf": 0},
    })));
    for ok in [
        json!({"price": 1.1}),
        json!({"tenth": 0.3}),
        json!({"tenth": -0.5}),
    ] {
        assert!(check(&s, ok.clone()).is_empty(), "{ok}");
    }
    // 1/0.01 · 19.99 is 1998.9999999999998; swag v0.23 compares it with its truncation, 1998.
    assert_eq!(
        check(&s, json!({"price": 19.99})),
        vec!["spec.price: Invalid value: 19.99: spec.price in body should be a multiple of 0.01"]
    );
    assert_eq!(
        check(&s, json!({"tenth": 0.35})),
        vec!["spec.tenth: Invalid value: 0.35: spec.tenth in body should be a multiple of 0.1"]
    );
    // 1/0.01 · -1.1 is -110.00000000000001: no tolerance below zero (Go's uint64 of it is far off).
    assert_eq!(
        check(&s, json!({"price": -1.1})),
        vec!["spec.price: Invalid value: -1.1: spec.price in body should be a multiple of 0.01"]
    );
    assert_eq!(
        check(&s, json!({"zero": 4})),
        vec![
            "spec.zero: Invalid value: 0: factor MultipleOf declared for spec.zero must be positive: 0"
        ]
    );
}

// kube-openapi validate/values.go MinimumNativeType / MaximumNativeType: inclusive bounds
// admit the bound itself, exclusive ones do not.
#[test]
fn bounds_are_inclusive_unless_exclusive() {
    let s = with_spec(props(json!({
        "low": {"type": "integer", "minimum": 1},
        "high": {"type": "integer", "maximum": 9},
        "open": {"type": "number", "minimum": 1, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": true},
    })));
    assert!(check(&s, json!({"low": 1, "high": 9, "open": 5})).is_empty());
    assert_eq!(
        check(&s, json!({"low": 0, "high": 10})),
        vec![
            "spec.high: Invalid value: 10: spec.high in body should be less than or equal to 9",
            "spec.low: Invalid value: 0: spec.low in body should be greater than or equal to 1",
        ]
    );
    assert_eq!(
        check(&s, json!({"open": 1})),
        vec!["spec.open: Invalid value: 1: spec.open in body should be greater than 1"]
    );
    assert_eq!(
        check(&s, json!({"open": 9})),
        vec!["spec.open: Invalid value: 9: spec.open in body should be less than 9"]
    );
}

// kube-openapi strfmt: format byte is standard, padded base64 (isBase64 decodes with
// base64.StdEncoding).
#[test]
fn byte_format_is_padded_standard_base64() {
    let s = with_spec(props(json!({"blob": {"type": "string", "format": "byte"}})));
    for ok in ["aGVsbG8=", "", "+/8="] {
        assert!(check(&s, json!({"blob": ok})).is_empty(), "{ok}");
    }
    for bad in ["aGVsbG8", "not base64!", "-_8="] {
        assert_eq!(
            check(&s, json!({"blob": bad})),
            vec![format!(
                "spec.blob: Invalid value: \"{bad}\": spec.blob in body must be of type byte: \"{bad}\""
            )],
            "{bad}"
        );
    }
}

// apiextensions-apiserver pkg/apiserver/schema/listtype/validation.go: sets and map lists are
// checked wherever they sit, map values included; with CRD validation ratcheting, a list
// unchanged by an update is not checked again. kube-openapi: maxProperties is inclusive.
#[test]
fn list_types_under_map_values_and_ratcheting() {
    let s = with_spec(props(json!({
        "groups": {"type": "object", "maxProperties": 2, "additionalProperties": {
            "type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}},
    })));
    assert!(check(&s, json!({"groups": {"a": ["x"], "b": ["y"]}})).is_empty());
    assert_eq!(
        check(&s, json!({"groups": {"a": ["x", "x"]}})),
        vec!["spec.groups[a][1]: Duplicate value: \"x\""]
    );
    assert_eq!(
        check(&s, json!({"groups": {"a": [], "b": [], "c": []}})),
        vec!["spec.groups: Too many: 3: must have at most 2 items"]
    );
    // Stored with a duplicate (before the rule existed): an update that leaves it alone passes,
    // one that changes the list must fix it.
    let old = json!({"groups": {"a": ["x", "x"]}});
    assert!(update(&s, json!({"groups": {"a": ["x", "x"]}}), Some(old.clone())).is_empty());
    assert_eq!(
        update(&s, json!({"groups": {"a": ["x", "x", "y"]}}), Some(old)),
        vec!["spec.groups[a][1]: Duplicate value: \"x\""]
    );
}

// A number that is no int64 reaches kube-openapi as a float64, which its type check names
// "number" (validate/type.go); an int64 is an "integer".
#[test]
fn type_errors_name_numbers_beyond_int64_as_numbers() {
    let s = with_spec(props(json!({"name": {"type": "string"}})));
    assert_eq!(
        check(&s, json!({"name": 18446744073709551615_u64})),
        vec![
            "spec.name: Invalid value: \"number\": spec.name in body must be of type string: \"number\""
        ]
    );
    assert_eq!(
        check(&s, json!({"name": 9223372036854775807_i64})),
        vec![
            "spec.name: Invalid value: \"integer\": spec.name in body must be of type string: \"integer\""
        ]
    );
}

// Go decodes a JSON number that is not an int64 as a float64 and encodes a float64 without a
// fraction as an integer: what is stored and read back holds 2 for 2.0, in every field (number
// fields and preserved ones too), while validation saw the float ("number" in type errors).
#[test]
fn integral_floats_are_stored_as_integers() {
    let s = with_spec(props(json!({
        "ratio": {"type": "number"},
        "name": {"type": "string"},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })));
    let stored = admitted(&s, json!({"ratio": 2.0, "free": {"x": [3.0, 3.5]}}));
    assert_eq!(stored, json!({"ratio": 2, "free": {"x": [3, 3.5]}}));
    assert!(stored["ratio"].is_i64(), "{stored}");
    assert_eq!(
        check(&s, json!({"name": 2.0})),
        vec![
            "spec.name: Invalid value: \"number\": spec.name in body must be of type string: \"number\""
        ]
    );
}

// apiextensions-apiserver pkg/apiserver/schema/defaulting: a null list item takes the items'
// default unless the items are nullable.
#[test]
fn null_list_items_take_the_default_unless_nullable() {
    let s = with_spec(props(json!({
        "plain": {"type": "array", "items": {"type": "string", "default": "d"}},
        "nullable": {"type": "array", "items": {"type": "string", "default": "d", "nullable": true}},
    })));
    assert_eq!(
        admitted(&s, json!({"plain": ["a", null], "nullable": ["a", null]})),
        json!({"plain": ["a", "d"], "nullable": ["a", null]})
    );
}

// Rules see a number field's integral value as a double (apiextensions-apiserver
// UnstructuredToVal converts by the schema's type), even though it is stored as an integer.
#[test]
fn rules_see_integral_numbers_as_doubles() {
    let s = with_spec(props(json!({
        "ratio": {"type": "number", "x-kubernetes-validations": [
            {"rule": "type(self) == double", "message": "a double"}]},
    })));
    assert!(check(&s, json!({"ratio": 2.0})).is_empty());
    assert!(check(&s, json!({"ratio": 2})).is_empty());
}

// apiextensions-apiserver defaulting: defaults apply at the root (but never inside metadata,
// the server's own type) and inside map values.
#[test]
fn defaults_apply_at_the_root_and_in_map_values() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "default": {"size": 1}, "properties": {
                "size": {"type": "integer"},
                "pools": {"type": "object", "additionalProperties": {"type": "object",
                    "properties": {"replicas": {"type": "integer", "default": 3}}}},
            }},
        },
    }))
    .unwrap();
    let mut obj =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    s.admit(&mut obj, None).unwrap();
    assert_eq!(obj["spec"], json!({"size": 1}));
    let stored = admitted(&s, json!({"pools": {"a": {}, "b": {"replicas": 5}}}));
    assert_eq!(
        stored,
        json!({"pools": {"a": {"replicas": 3}, "b": {"replicas": 5}}})
    );
}

// kube-openapi MultipleOf on a float value: the quotient is an integer within swag's relative
// 1e-9 (diff / (value + truncation)), and never beyond 2^53 − 1.
#[test]
fn multiple_of_tolerance_is_relative() {
    let s = with_spec(props(json!({"n": {"type": "number", "multipleOf": 1}})));
    assert!(check(&s, json!({"n": 1000.0000005})).is_empty());
    for bad in [1000.000005, 1e17] {
        assert_eq!(
            check(&s, json!({"n": bad})).len(),
            1,
            "{bad} is not a multiple of 1 to kube-openapi"
        );
    }
}

// An integral float at 2^63 does not fit an int64: it stays a float and fails the format check.
#[test]
fn an_integral_float_beyond_int64_is_not_an_int64() {
    let s = with_spec(props(json!({"n": {"type": "integer"}})));
    assert_eq!(
        check(&s, json!({"n": 2f64.powi(63)})),
        vec![
            "<nil>: Invalid value: \"\": Checked value must be of type integer (default format) in spec.n"
        ]
    );
}

// A rule that reads `self` only inside a map literal still reads it (the emulator works out
// what each rule reads to convert only that much of the object).
#[test]
fn rules_read_self_inside_map_literals() {
    let s = with_spec(json!({
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "{'k': self.n}['k'] == 1", "message": "n is 1"}],
    }));
    assert!(check(&s, json!({"n": 1})).is_empty());
    assert_eq!(
        check(&s, json!({"n": 2})),
        vec!["spec: Invalid value: \"object\": n is 1"]
    );
}
