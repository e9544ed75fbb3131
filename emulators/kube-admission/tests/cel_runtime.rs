//! Rule evaluation as kube-apiserver 1.32 does it, beyond what the translated upstream tables
//! cover: the per-object runtime cost budget, set and map lists as operands, optionals, `%e`.

use kube_admission::{CompiledSchema, FieldError, compile_rules};
use serde_json::{Value, json};

fn resource(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": spec})
}

fn root(spec: Value) -> Value {
    json!({"type": "object", "properties": {"spec": spec}})
}

fn admit(schema: &Value, spec: Value, old: Option<Value>) -> Result<(), Vec<FieldError>> {
    let compiled = CompiledSchema::compile(schema).expect("schema compiles");
    let old = old.map(resource);
    compiled.admit(&mut resource(spec), old.as_ref())
}

/// Lists of `n` lists of `m` integers, each inner list checked by a rule whose cost grows with
/// the square of its size.
fn square_lists(outer: u64, inner: u64) -> Value {
    root(json!({"type": "object", "properties": {"lists": {
        "type": "array", "maxItems": outer,
        "items": {"type": "array", "maxItems": inner, "items": {"type": "integer"},
            "x-kubernetes-validations": [{"rule": "self.all(x, self.all(y, x + y >= 0))"}]}}}}))
}

fn lists(count: usize, size: i64) -> Value {
    json!({"lists": vec![(0..size).collect::<Vec<i64>>(); count]})
}

// apiextensions-apiserver pkg/apiserver/schema/cel/validation.go `validateExpressions`: every
// evaluation's actual cost is taken from the object's budget (`RuntimeCELCostBudget`,
// 10,000,000, pkg/apiserver/schema/cel/config.go); the evaluation that runs it out is answered
// with "validation failed due to running out of cost budget, no further validation rules will
// be run" at its node, and nothing after it runs. (Upstream validation_test.go
// TestCELValidationLimit checks the message with a budget of 0, which a server never has.)
// Each inner list here costs about 631,502 (300 × 300 iterations, under the 1,000,000 per-call
// limit): twelve fit the budget, the sixteenth runs it out.
#[test]
fn rules_of_one_object_share_the_runtime_cost_budget() {
    let schema = square_lists(40, 300);
    let report = &compile_rules(&schema)[0];
    assert_eq!(report.error, None);
    assert_eq!(report.max_cost, Some(631_502));

    admit(&schema, lists(12, 300), None).expect("twelve lists fit the budget");

    let errors = admit(&schema, lists(20, 300), None).expect_err("budget exhausted");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "spec.lists[15]");
    assert_eq!(errors[0].value, Some(json!("array")));
    assert_eq!(
        errors[0].detail,
        "validation failed due to running out of cost budget, no further validation rules will be run"
    );

    // Each evaluation alone stays under the per-call limit: one list is never refused.
    admit(&schema, lists(1, 300), None).expect("one list");
}
