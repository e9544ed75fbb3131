//! What `CompiledSchema::compile` accepts and refuses, and what it records of a schema for
//! admission to use later (where rules sit, whether they read `oldSelf`, the root's metadata).
#![allow(clippy::unwrap_used)]

use kube_admission::CompiledSchema;
use serde_json::{Value, json};

fn object(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
}

fn messages(s: &CompiledSchema, spec: Value, old_spec: Option<Value>) -> Vec<String> {
    let mut obj = object(spec);
    let old = old_spec.map(object);
    match s.admit(&mut obj, old.as_ref()) {
        Ok(()) => vec![],
        Err(e) => e.into_iter().map(|e| e.message).collect(),
    }
}

/// `levels` schemas below the root, each reached through `wrap`.
fn nested(levels: usize, wrap: impl Fn(Value) -> Value) -> Value {
    let mut s = json!({"type": "string"});
    for _ in 0..levels {
        s = wrap(s);
    }
    s
}

// The emulator refuses schemas nested more than 64 levels (kube-apiserver has no such limit
// of its own; it bounds the request body instead). The limit keeps the recursive compile and
// admission walks off the end of the stack, and it must count every way a schema nests.
#[test]
fn schemas_nest_64_levels_deep_and_no_deeper() {
    let via_properties = |s| json!({"type": "object", "properties": {"a": s}});
    assert!(CompiledSchema::compile(&nested(64, via_properties)).is_ok());
    let err = CompiledSchema::compile(&nested(65, via_properties)).unwrap_err();
    // The string at the bottom sits 65 levels below the root.
    let deepest = vec!["a"; 65].join(".");
    assert_eq!(
        err,
        format!("{deepest}: schema nesting deeper than 64 levels")
    );

    let via_items = |s| json!({"type": "array", "items": s});
    assert!(CompiledSchema::compile(&nested(64, via_items)).is_ok());
    assert_eq!(
        CompiledSchema::compile(&nested(65, via_items)).unwrap_err(),
        format!("{}: schema nesting deeper than 64 levels", "[*]".repeat(65))
    );

    let via_maps = |s| json!({"type": "object", "additionalProperties": s});
    assert!(CompiledSchema::compile(&nested(64, via_maps)).is_ok());
    assert_eq!(
        CompiledSchema::compile(&nested(65, via_maps)).unwrap_err(),
        format!("{}: schema nesting deeper than 64 levels", "[*]".repeat(65))
    );

    // Value validations (allOf, not) nest at the same path.
    let via_all_of = |s| json!({"allOf": [s]});
    assert!(CompiledSchema::compile(&nested(64, via_all_of)).is_ok());
    assert_eq!(
        CompiledSchema::compile(&nested(65, via_all_of)).unwrap_err(),
        "<root>: schema nesting deeper than 64 levels"
    );
    let via_not = |s| json!({"not": s});
    assert!(CompiledSchema::compile(&nested(64, via_not)).is_ok());
    assert_eq!(
        CompiledSchema::compile(&nested(65, via_not)).unwrap_err(),
        "<root>: schema nesting deeper than 64 levels"
    );
}

#[test]
fn errors_name_the_schema_path() {
    let err = CompiledSchema::compile(&json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"ports": {"type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "text"}}}}}}}}))
    .unwrap_err();
    assert_eq!(err, "spec.ports[*].name: unknown type \"text\"");
    let err = CompiledSchema::compile(&json!({"type": "object", "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "text"}}}}))
    .unwrap_err();
    assert_eq!(err, "labels[*]: unknown type \"text\"");
}

// A structural schema may leave `type` empty where `x-kubernetes-int-or-string` or
// `x-kubernetes-preserve-unknown-fields` stand in for it (apiextensions-apiserver
// pkg/apiserver/schema/validation.go accepts `type: ""` there); an empty type is no type.
#[test]
fn an_empty_type_is_no_type() {
    let s = CompiledSchema::compile(&json!({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"port": {"type": "", "x-kubernetes-int-or-string": true}}}}}))
    .unwrap();
    assert!(messages(&s, json!({"port": 80}), None).is_empty());
    assert!(messages(&s, json!({"port": "http"}), None).is_empty());
}

// JSON has one number type: a bound written `3.0` is the integer 3, while a negative or
// fractional bound is no length at all.
#[test]
fn length_bounds_are_non_negative_integers() {
    let s = CompiledSchema::compile(&json!({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"code": {"type": "string", "maxLength": 3.0}}}}}))
    .unwrap();
    assert!(messages(&s, json!({"code": "abc"}), None).is_empty());
    assert_eq!(
        messages(&s, json!({"code": "abcd"}), None),
        vec!["spec.code: Too long: may not be more than 3 bytes"]
    );
    for bad in [json!(-1), json!(-1.0), json!(2.5), json!("3")] {
        let err = CompiledSchema::compile(&json!({"type": "object", "properties": {
            "code": {"type": "string", "maxLength": bad}}}))
        .unwrap_err();
        assert_eq!(
            err, "code: maxLength must be a non-negative integer",
            "{bad}"
        );
    }
}

// Structural schemas allow only one schema in `items` (apiextensions-apiserver
// pkg/apis/apiextensions/validation: "items must be a schema object and not an array").
#[test]
fn items_is_one_schema_not_a_tuple() {
    let err = CompiledSchema::compile(&json!({"type": "object", "properties": {
        "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}}}))
    .unwrap_err();
    assert_eq!(err, "pair: items must be a single schema");
}

// go-openapi validate/helpers.go IsValueValidAgainstRange names the declared format in its
// message ("must be of type integer with format int64"), and "(default format)" without one.
#[test]
fn an_int64_overflow_names_its_format() {
    let s = CompiledSchema::compile(&json!({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"big": {"type": "integer", "format": "int64"}}}}}))
    .unwrap();
    assert!(messages(&s, json!({"big": 9223372036854775807_i64}), None).is_empty());
    assert_eq!(
        messages(&s, json!({"big": 9223372036854775808_u64}), None),
        vec![
            "<nil>: Invalid value: \"\": Checked value must be of type integer with format int64 in spec.big"
        ]
    );
}

// apiextensions-apiserver pkg/apiserver/schema/cel/validation.go (validateExpressions): on an
// update, a failing rule's error on an unchanged value is only a warning
// (`!compiled.UsesOldSelf && correlation.shouldRatchetError()`); a transition rule's error
// stands. So a transition rule deep in an unchanged subtree is still evaluated.
#[test]
fn transition_rules_below_unchanged_values_are_evaluated() {
    let s = CompiledSchema::compile(&json!({"type": "object", "properties": {"spec": {
    "type": "object", "properties": {
        "note": {"type": "string"},
        "limits": {"type": "object", "properties": {"n": {"type": "integer",
            "x-kubernetes-validations": [{"rule": "self > oldSelf", "message": "n must grow"}]}}},
    }}}}))
    .unwrap();
    let old = json!({"note": "a", "limits": {"n": 5}});
    assert!(
        messages(
            &s,
            json!({"note": "a", "limits": {"n": 6}}),
            Some(old.clone())
        )
        .is_empty()
    );
    // Only `note` changes: `limits.n` is unchanged, and its transition rule still fails.
    assert_eq!(
        messages(&s, json!({"note": "b", "limits": {"n": 5}}), Some(old)),
        // 1.32 reports the field's type, not its value (kubernetes/kubernetes#132798 changed
        // that in a later release).
        vec!["spec.limits.n: Invalid value: \"integer\": n must grow"]
    );
    // A plain rule in the same place ratchets: unchanged, it is not re-checked.
    let plain = CompiledSchema::compile(&json!({"type": "object", "properties": {"spec": {
    "type": "object", "properties": {
        "note": {"type": "string"},
        "limits": {"type": "object", "properties": {"n": {"type": "integer",
            "x-kubernetes-validations": [{"rule": "self > 10", "message": "n above 10"}]}}},
    }}}}))
    .unwrap();
    assert!(
        messages(
            &plain,
            json!({"note": "b", "limits": {"n": 5}}),
            Some(json!({"note": "a", "limits": {"n": 5}}))
        )
        .is_empty()
    );
}

// A rule at the root sees `apiVersion`, `kind` and `metadata` (apiextensions-apiserver
// model.WithTypeAndObjectMeta for `isResourceRoot`), so it type-checks and is evaluated with
// cel-go's error-absorbing `all` like any other rule (see cel_compile.rs).
#[test]
fn root_rules_see_metadata_and_absorb_decided_errors() {
    let s = CompiledSchema::compile(&json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "xs": {"type": "array", "items": {"type": "integer"}}}}},
        "x-kubernetes-validations": [{
            "rule": "self.metadata.name == 'w' && self.spec.xs.all(x, 10 / x > 1)",
            "message": "xs too large",
        }],
    }))
    .unwrap();
    assert!(messages(&s, json!({"xs": [1, 2]}), None).is_empty());
    // 10 / 0 fails, but 10 / 100 > 1 is false, which decides `all`: the rule is false, not
    // an evaluation error.
    assert_eq!(
        messages(&s, json!({"xs": [0, 100]}), None),
        vec!["<nil>: Invalid value: \"object\": xs too large"]
    );
}

#[test]
fn a_compiled_schema_debug_shows_its_rules() {
    let s = CompiledSchema::compile(&json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "has(self.spec)"}]}))
    .unwrap();
    let debug = format!("{s:?}");
    assert!(
        debug.contains("Rule { rule: \"has(self.spec)\" }"),
        "{debug}"
    );
}
