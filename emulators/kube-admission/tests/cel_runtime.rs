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

/// Lists of the given sizes, each `0..size`.
fn lists_of(sizes: &[i64]) -> Value {
    let lists: Vec<Vec<i64>> = sizes.iter().map(|&n| (0..n).collect()).collect();
    json!({ "lists": lists })
}

// The budget is spent only when the costs pass it: validation.go subtracts each actual cost
// and stops when `remainingBudget < 0`. The square rule costs 7·n² + 5·n + 2 on a list of n
// (996,790 at 377); ten lists of 377 and lists of 37, 37 and 42 cost exactly 10,000,000.
#[test]
fn a_budget_spent_exactly_is_not_exceeded() {
    let schema = square_lists(13, 377);
    let report = &compile_rules(&schema)[0];
    assert_eq!(report.max_cost, Some(996_790));
    let mut sizes = vec![377; 10];
    sizes.extend([37, 37, 42]);
    admit(&schema, lists_of(&sizes), None).expect("exactly the budget");
    *sizes.last_mut().expect("a list") = 43;
    let errors = admit(&schema, lists_of(&sizes), None).expect_err("past the budget");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "spec.lists[12]");
    assert!(
        errors[0].detail.contains("running out of cost budget"),
        "{errors:?}"
    );
}

// Likewise the per-call limit: cel-go cancels an evaluation whose cost passes
// `PerCallLimit` (1,000,000), not one that reaches it. `size(self) >= 0 && self.all(x, x >=
// 0)` costs 5·n + 5: exactly the limit at 199,999 elements.
#[test]
fn an_evaluation_at_exactly_the_per_call_limit_runs() {
    let schema = root(json!({"type": "object", "properties": {"list": {
        "type": "array", "maxItems": 200_000, "items": {"type": "integer"},
        "x-kubernetes-validations": [{"rule": "size(self) >= 0 && self.all(x, x >= 0)"}]}}}));
    assert_eq!(compile_rules(&schema)[0].max_cost, Some(1_000_005));
    let list = |n: i64| json!({"list": (0..n).collect::<Vec<i64>>()});
    admit(&schema, list(199_999), None).expect("exactly the per-call limit");
    let errors = admit(&schema, list(200_000), None).expect_err("past the per-call limit");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].detail.contains("call cost exceeds limit"),
        "{errors:?}"
    );
}

// validation.go `evalMessageExpression`: a failed rule's messageExpression is charged to the
// same budget; the one that runs it out is answered, at the rule's field, with
// "messageExpression evaluation failed due to running out of cost budget, no further
// validation rules will be run" instead of the rule's message.
#[test]
fn message_expressions_are_charged_to_the_budget() {
    let schema = root(json!({"type": "object", "properties": {"lists": {
        "type": "array", "maxItems": 40,
        "items": {"type": "array", "maxItems": 300, "items": {"type": "integer"},
            "x-kubernetes-validations": [{"rule": "size(self) == 0",
                "messageExpression": "self.all(x, self.all(y, x + y >= 0)) ? 'must be empty' : 'negative'"}]}}}}));
    let errors = admit(&schema, lists(12, 300), None).expect_err("lists are not empty");
    assert_eq!(errors.len(), 12);
    assert!(
        errors.iter().all(|e| e.detail == "must be empty"),
        "{errors:?}"
    );

    let errors = admit(&schema, lists(20, 300), None).expect_err("budget exhausted");
    assert_eq!(errors.len(), 16, "{errors:?}");
    assert!(errors[..15].iter().all(|e| e.detail == "must be empty"));
    assert_eq!(errors[15].field, "spec.lists[15]");
    assert_eq!(
        errors[15].detail,
        "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run"
    );
}

// validation.go `validateExpressions`: a rule whose evaluation goes wrong is reported with its
// error and `continue`s before `evalMessageExpression`, so its messageExpression is neither
// evaluated nor charged: twenty erring lists whose messages would run the budget out at the
// sixteenth are all reported with their rule's error.
#[test]
fn an_erring_rule_does_not_charge_its_message_expression() {
    let schema = root(json!({"type": "object", "properties": {"lists": {
        "type": "array", "maxItems": 40,
        "items": {"type": "array", "maxItems": 300, "items": {"type": "integer"},
            "x-kubernetes-validations": [{"rule": "self[size(self)] == 0",
                "messageExpression": "self.all(x, self.all(y, x + y >= 0)) ? 'must be empty' : 'negative'"}]}}}}));
    let errors = admit(&schema, lists(20, 300), None).expect_err("every rule errs");
    assert_eq!(errors.len(), 20, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| !e.detail.contains("budget") && e.detail.contains("self[size(self)] == 0")),
        "{errors:?}"
    );
}

/// A schema with one rule per entry of `rules`, on the object whose properties are given.
fn with_rules(properties: Value, rules: &[&str]) -> Value {
    let rules: Vec<Value> = rules.iter().map(|r| json!({"rule": r})).collect();
    root(json!({"type": "object", "properties": properties, "x-kubernetes-validations": rules}))
}

/// Every rule holds on `spec`: none is refused, and each compiles.
fn assert_all_hold(schema: &Value, spec: Value) {
    for r in compile_rules(schema) {
        assert_eq!(r.error, None, "{}", r.rule);
    }
    if let Err(errors) = admit(schema, spec, None) {
        let failed: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        panic!("rules refused:\n{}", failed.join("\n"));
    }
}

// apiextensions-apiserver pkg/apiserver/schema/cel/validation_test.go TestValidationExpressions
// "listSets" (the operator rows): lists of type set compare equal to any list with the same
// elements and `+` is a union (apiserver pkg/cel/common/values.go `unstructuredSetList`).
#[test]
fn set_lists_compare_and_add_as_sets() {
    let set =
        json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}});
    let schema = with_rules(
        json!({"val1": set, "val2": set, "sets": {"type": "array", "items": set}}),
        &[
            "self.val1 == ['c', 'b', 'a']",
            "self.val1 == self.val2",
            "'a' in self.val1",
            "self.val2[0] in self.val1",
            "!('x' in self.val1)",
            "self.val1 + self.val2 == ['a', 'b', 'c']",
            "self.val1 + ['c', 'd'] == ['a', 'b', 'c', 'd']",
            // The union keeps the set's order, then appends what is new.
            "(self.val1 + ['d', 'a']).join('') == 'abcd'",
            "self.val1 != ['a', 'b']",
            "!(self.val1 != ['b', 'c', 'a'])",
            // Only the left operand decides: a plain list compares in order.
            "['c', 'b', 'a'] != self.val1",
            // Elements reached through a comprehension variable are the same lists.
            "self.sets.all(s, s == ['b', 'a', 'c'])",
            "self.sets.exists(i, s, s + ['a'] == ['c', 'a', 'b'])",
        ],
    );
    assert_all_hold(
        &schema,
        json!({"val1": ["a", "b", "c"], "val2": ["a", "c", "b"], "sets": [["c", "a", "b"]]}),
    );

    let refused = admit(
        &with_rules(json!({"val1": set}), &["self.val1 == ['a', 'b', 'x']"]),
        json!({"val1": ["a", "b", "c"]}),
        None,
    )
    .expect_err("different elements");
    assert!(refused[0].detail.contains("failed rule"), "{refused:?}");
}

// validation_test.go TestValidationExpressions "listMaps": map lists compare by key ignoring
// order, and `+` merges by key with the right side's values winning, new keys appended
// (values.go `unstructuredMapList`).
#[test]
fn map_lists_compare_and_merge_by_key() {
    let schema = with_rules(
        json!({"objs": {"type": "array", "items": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
            "items": {"type": "object", "properties": {"k": {"type": "string"}, "v": {"type": "string"}}}}}}),
        &[
            "self.objs[0] == self.objs[1]",
            "self.objs[0] + self.objs[2] == self.objs[2]",
            "self.objs[2] + self.objs[0] == self.objs[0]",
            "self.objs[0] == [self.objs[0][0], self.objs[0][1]]",
            "self.objs[0] == [self.objs[0][1], self.objs[0][0]]",
            "self.objs[2] + [self.objs[0][0], self.objs[0][1]] == self.objs[0]",
            "size(self.objs[0] + [self.objs[3][0]]) == 3",
            // Positions of the left side are kept, its values overwritten.
            "(self.objs[0] + self.objs[2])[1].v == '3'",
            "(self.objs[0] + self.objs[3])[2].k == 'c'",
            "self.objs[0] != self.objs[2]",
        ],
    );
    assert_all_hold(
        &schema,
        json!({"objs": [
            [{"k": "a", "v": "1"}, {"k": "b", "v": "2"}],
            [{"k": "b", "v": "2"}, {"k": "a", "v": "1"}],
            [{"k": "b", "v": "3"}, {"k": "a", "v": "1"}],
            [{"k": "c", "v": "4"}],
        ]}),
    );
}

// validation_test.go TestValidationExpressions "optionals" (cel-spec proposal 246; the
// server's environment has cel.OptionalTypes, apiserver pkg/cel/environment/base.go).
#[test]
fn optionals_evaluate_as_in_cel_go() {
    let schema = with_rules(
        json!({
            "presentObj": {"type": "object", "properties": {"presentStr": {"type": "string"}}},
            "absentObj": {"type": "object", "properties": {"absentStr": {"type": "string"}}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "l": {"type": "array", "items": {"type": "string"}},
        }),
        &[
            "self.?presentObj.?presentStr == optional.of('value')",
            "self.presentObj.?presentStr == optional.of('value')",
            "self.presentObj.?presentStr.or(optional.of('nope')) == optional.of('value')",
            "self.presentObj.?presentStr.orValue('') == 'value'",
            "self.presentObj.?presentStr.hasValue() == true",
            "self.presentObj.?presentStr.optMap(v, v == 'value').hasValue()",
            "self.?absentObj.?absentStr == optional.none()",
            "self.?absentObj.?absentStr.or(optional.of('nope')) == optional.of('nope')",
            "self.?absentObj.?absentStr.orValue('nope') == 'nope'",
            "self.?absentObj.?absentStr.hasValue() == false",
            "self.?absentObj.?absentStr.optMap(v, v == 'value').hasValue() == false",
            "self.m[?'k'] == optional.of('v')",
            "self.m[?'k'].or(optional.of('nope')) == optional.of('v')",
            "self.m[?'k'].orValue('') == 'v'",
            "self.m[?'k'].hasValue() == true",
            "self.m[?'k'].optMap(v, v == 'v').hasValue()",
            "self.m[?'x'] == optional.none()",
            "self.m[?'x'].or(optional.of('nope')) == optional.of('nope')",
            "self.m[?'x'].orValue('nope') == 'nope'",
            "self.m[?'x'].hasValue() == false",
            "self.l[?0] == optional.of('a')",
            "self.l[?1] == optional.none()",
            "self.l[?0].orValue('') == 'a'",
            "self.l[?0].hasValue() == true",
            "self.l[?0].optMap(v, v == 'a').hasValue()",
            "self.l[?1].or(optional.of('nope')) == optional.of('nope')",
            "self.l[?1].orValue('nope') == 'nope'",
            "self.l[?1].hasValue() == false",
            "optional.ofNonZeroValue(1).hasValue()",
            "optional.ofNonZeroValue(uint(1)).hasValue()",
            "optional.ofNonZeroValue(1.1).hasValue()",
            "optional.ofNonZeroValue('a').hasValue()",
            "optional.ofNonZeroValue(true).hasValue()",
            "optional.ofNonZeroValue(['a']).hasValue()",
            "optional.ofNonZeroValue({'k': 'v'}).hasValue()",
            "optional.ofNonZeroValue(timestamp('2011-08-18T00:00:00.000+01:00')).hasValue()",
            "optional.ofNonZeroValue(duration('19h3m37s10ms')).hasValue()",
            "optional.ofNonZeroValue(null) == optional.none()",
            "optional.ofNonZeroValue(0) == optional.none()",
            "optional.ofNonZeroValue(uint(0)) == optional.none()",
            "optional.ofNonZeroValue(0.0) == optional.none()",
            "optional.ofNonZeroValue('') == optional.none()",
            "optional.ofNonZeroValue(false) == optional.none()",
            "optional.ofNonZeroValue([]) == optional.none()",
            "optional.ofNonZeroValue({}) == optional.none()",
            "optional.ofNonZeroValue(timestamp('0001-01-01T00:00:00.000+00:00')) == optional.none()",
            "optional.ofNonZeroValue(duration('0s')) == optional.none()",
            "{?'k': optional.none(), 'k2': 'v2'} == {'k2': 'v2'}",
            "{?'k': optional.of('v'), 'k2': 'v2'} == {'k': 'v', 'k2': 'v2'}",
            "['a', ?optional.none(), 'c'] == ['a', 'c']",
            "['a', ?optional.of('v'), 'c'] == ['a', 'v', 'c']",
        ],
    );
    let spec = json!({"presentObj": {"presentStr": "value"}, "m": {"k": "v"}, "l": ["a"]});
    assert_all_hold(&schema, spec.clone());

    // Without `?.` on the first step, the absent object is an error.
    let schema = with_rules(
        json!({"absentObj": {"type": "object", "properties": {"absentStr": {"type": "string"}}}}),
        &["self.absentObj.?absentStr == optional.none()"],
    );
    let errors = admit(&schema, json!({}), None).expect_err("no such key");
    assert!(
        errors[0].detail.contains("no such key: absentObj"),
        "{errors:?}"
    );
}

// apiextensions-apiserver validation.go: with `optionalOldSelf`, `oldSelf` is
// `optional.none()` on create and `optional.of(old)` on update (validation_test.go
// TestRatcheting... "optionalOldSelf" rules such as `oldSelf.hasValue()`).
#[test]
fn optional_old_self_is_an_optional() {
    let schema = root(json!({"type": "object",
    "properties": {"n": {"type": "integer"}},
    "x-kubernetes-validations": [
        {"rule": "!oldSelf.hasValue() || self.n >= oldSelf.value().n",
         "optionalOldSelf": true, "message": "n may only grow"},
        {"rule": "oldSelf.?n.orValue(0) <= self.n", "optionalOldSelf": true,
         "message": "n may only grow (orValue)"},
    ]}));
    admit(&schema, json!({"n": 1}), None).expect("create");
    admit(&schema, json!({"n": 2}), Some(json!({"n": 1}))).expect("grows");
    let errors = admit(&schema, json!({"n": 1}), Some(json!({"n": 2}))).expect_err("shrinks");
    let details: Vec<&str> = errors.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(details, ["n may only grow", "n may only grow (orValue)"]);
}

// cel-go ext/formatting.go `Scientific`: the clause is printed by golang.org/x/text's printer
// (`3.140000 × 10⁰⁰`, x/text internal/number/format.go superscript exponent), and its
// precision is passed as a width (`%%%de`), so six decimals always. Only doubles (and the
// strings NaN, Infinity, -Infinity) are accepted.
#[test]
fn scientific_format_follows_cel_go() {
    let schema = with_rules(
        json!({}),
        &[
            "'%e'.format([3.14]) == '3.140000\u{202f}×\u{202f}10⁰⁰'",
            "'%.2e'.format([-1234.5]) == '-1.234500\u{202f}×\u{202f}10⁰³'",
            "'%e'.format([0.000015]) == '1.500000\u{202f}×\u{202f}10⁻⁰⁵'",
            "'%e and %d'.format([1e100, 7]) == '1.000000\u{202f}×\u{202f}10¹⁰⁰ and 7'",
            "'%e'.format(['NaN']) == 'NaN'",
            "'100%% %e'.format([2.0]) == '100% 2.000000\u{202f}×\u{202f}10⁰⁰'",
        ],
    );
    assert_all_hold(&schema, json!({}));
    let errors = admit(
        &with_rules(json!({}), &["'%e'.format([1]) == ''"]),
        json!({}),
        None,
    )
    .expect_err("int");
    assert!(
        errors[0]
            .detail
            .contains("scientific clause can only be used on doubles, was given int"),
        "{errors:?}"
    );
}

// cel-go ext/bindings.go: `cel.bind(name, init, expr)` evaluates `expr` with `name` bound.
#[test]
fn cel_bind_binds_a_name() {
    let set =
        json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}});
    let schema = with_rules(
        json!({"s": set}),
        &[
            "cel.bind(x, self.s, x == ['b', 'a'])",
            "cel.bind(n, size(self.s), n * n == 4)",
        ],
    );
    assert_all_hold(&schema, json!({"s": ["a", "b"]}));
}

// cel-go ext/formatting.go `Scientific`: the strings "Infinity" and "-Infinity" are accepted
// and printed by x/text's printer as ∞ and -∞ (internal/number/format.go `fmtInfinite`; the
// `%f` rows of formatting_test.go "positive/negative infinity support"); only arguments that
// stand at a `%e` are converted; any other value is named by its type, `type` for a type
// (`scientificFormatError(runtimeID, arg.Type().TypeName())`).
#[test]
fn scientific_format_handles_infinities_positions_and_types() {
    let schema = with_rules(
        json!({}),
        &[
            "'%e'.format(['Infinity']) == '∞'",
            "'%e'.format(['-Infinity']) == '-∞'",
            "'%s %e'.format(['Infinity', 2.0]) == 'Infinity 2.000000\u{202f}×\u{202f}10⁰⁰'",
            "'%d and %e'.format([7, 2.5]) == '7 and 2.500000\u{202f}×\u{202f}10⁰⁰'",
        ],
    );
    assert_all_hold(&schema, json!({}));
    let errors = admit(
        &with_rules(json!({}), &["'%e'.format([int]) == ''"]),
        json!({}),
        None,
    )
    .expect_err("a type is no double");
    assert!(
        errors[0]
            .detail
            .contains("scientific clause can only be used on doubles, was given type"),
        "{errors:?}"
    );
}

// apiserver pkg/cel/common/valuesunstructured.go: a `date-time` string is a timestamp
// (strfmt.ParseDateTime keeps its offset), and cel-go prints a timestamp with Go's
// time.RFC3339Nano (common/types/timestamp.go `ConvertToType`): the offset as written, the
// fraction without trailing zeros.
#[test]
fn timestamps_print_with_their_offset_and_fraction() {
    let schema = with_rules(
        json!({"at": {"type": "string", "format": "date-time"},
               "utc": {"type": "string", "format": "date-time"}}),
        &[
            "'%s'.format([self.at]) == '2023-02-03T23:31:20.52-05:30'",
            "'%s'.format([self.utc]) == '2023-02-03T23:31:20Z'",
        ],
    );
    assert_all_hold(
        &schema,
        json!({"at": "2023-02-03T23:31:20.520-05:30", "utc": "2023-02-03T23:31:20+00:00"}),
    );
}

// valuesunstructured.go `UnstructuredToVal`: an `x-kubernetes-int-or-string` value is a string
// or an int whatever its `format`; the format's conversion applies only to plain strings, with
// kube-openapi strfmt's duration parser (which also reads `3 days`).
#[test]
fn formats_convert_plain_strings_but_never_int_or_string() {
    let int_or_string = |format: &str| {
        json!({"x-kubernetes-int-or-string": true, "format": format,
               "anyOf": [{"type": "integer"}, {"type": "string"}]})
    };
    let schema = with_rules(
        json!({
            "at": int_or_string("date-time"),
            "on": int_or_string("date"),
            "every": int_or_string("duration"),
            "raw": int_or_string("byte"),
            "days": {"type": "string", "format": "duration"},
        }),
        &[
            "type(self.at) == string",
            "type(self.on) == string",
            "type(self.every) == string",
            "type(self.raw) == string",
            "self.days == duration('72h')",
        ],
    );
    assert_all_hold(
        &schema,
        json!({"at": "2023-02-03T23:31:20Z", "on": "2023-02-03", "every": "1h",
               "raw": "aGk=", "days": "3 days"}),
    );
}

// apiextensions-apiserver pkg/apiserver/schema/cel/validation.go `validate`: a null value is
// not validated (`if obj == nil { return }`), so the rules of a nullable field set to null do
// not run, nor those below it.
#[test]
fn rules_of_a_null_value_do_not_run() {
    let schema = root(json!({"type": "object", "properties": {
        "name": {"type": "string", "nullable": true,
            "x-kubernetes-validations": [{"rule": "self.size() > 3"}]},
        "inner": {"type": "object", "nullable": true, "properties": {
            "n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0"}]}}}}}));
    assert_eq!(
        admit(&schema, json!({"name": null, "inner": null}), None),
        Ok(())
    );
    let errors = admit(&schema, json!({"name": "ab", "inner": {"n": 0}}), None)
        .expect_err("the rules run on values");
    assert_eq!(errors.len(), 2, "{errors:?}");
}

// cel-go interpreter/attributes.go `refQualify` with common/types/list.go `IndexOrError`: a
// list's optional index may be an int, a uint that fits an int64 or a whole double (in
// int64's open range); one outside the list gives no value, a fractional double is an error
// ("unsupported index value 1.5 in list"). The checker declares `_[?_]` on lists for ints only
// (ext optional library), so the others reach the interpreter through `dyn`.
#[test]
fn optional_list_indexes_take_ints_uints_and_whole_doubles() {
    let schema = with_rules(
        json!({"l": {"type": "array", "items": {"type": "string"}}}),
        &[
            "dyn(self.l)[?1u] == optional.of('b')",
            "dyn(self.l)[?1.0] == optional.of('b')",
            "dyn(self.l)[?-1] == optional.none()",
            "dyn(self.l)[?-1.0] == optional.none()",
            "dyn(self.l)[?2.0] == optional.none()",
            "dyn(self.l)[?2u] == optional.none()",
        ],
    );
    assert_all_hold(&schema, json!({"l": ["a", "b"]}));
    let errors = admit(
        &with_rules(
            json!({"l": {"type": "array", "items": {"type": "string"}}}),
            &["dyn(self.l)[?1.5].hasValue()"],
        ),
        json!({"l": ["a", "b"]}),
        None,
    )
    .expect_err("a fractional index");
    assert!(
        errors[0]
            .detail
            .contains("unsupported index value 1.5 in list"),
        "{errors:?}"
    );
}

// cel-go's standard `dyn(x)` (checker/decls, interpreter: the identity): the checker takes its
// argument as dyn, the interpreter returns it unchanged.
#[test]
fn dyn_is_the_identity_at_runtime() {
    let schema = with_rules(
        json!({"n": {"type": "integer"}}),
        &[
            "dyn(self.n) == 3",
            "type(dyn(self.n)) == int",
            "dyn('a') + 'b' == 'ab'",
            "dyn([1, 2])[1] == 2",
        ],
    );
    assert_all_hold(&schema, json!({"n": 3}));
}

/// A map list keyed by `k`, of objects with the strings `k` and `v`.
fn map_list_k_v() -> Value {
    json!({"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["k"],
        "items": {"type": "object", "required": ["k"],
            "properties": {"k": {"type": "string"}, "v": {"type": "string"}}}})
}

// apiserver pkg/cel/common/valuesunstructured.go: set and map lists keep their semantics
// wherever a rule reaches them — through a reserved word's field (`self.namespace`, 1.32),
// through the variable of a comprehension over a list (a map's comprehension variable is its
// key, a plain string) — and set union keeps each element once, hashable or not
// (`unstructuredSetList.Add`).
#[test]
fn list_semantics_follow_fields_comprehensions_and_unions() {
    let set =
        |items: Value| json!({"type": "array", "x-kubernetes-list-type": "set", "items": items});
    let map_list = map_list_k_v();
    let schema = with_rules(
        json!({
            "a": {"type": "array", "items": {"type": "string"}},
            "namespace": set(json!({"type": "string"})),
            "objs": {"type": "array", "items": map_list},
            "ms": {"type": "object", "additionalProperties": set(json!({"type": "string"}))},
            "nums": set(json!({"type": "number"})),
        }),
        &[
            "self.namespace == ['b', 'a']",
            "self.objs.all(x, x == [x[1], x[0]])",
            "self.ms.all(k, k != '')",
            "size(self.nums + [1.5]) == 2",
            "size(self.nums + [3.5]) == 3",
        ],
    );
    assert_all_hold(
        &schema,
        json!({
            "a": ["x"],
            "namespace": ["a", "b"],
            "objs": [[{"k": "a", "v": "1"}, {"k": "b", "v": "2"}]],
            "ms": {"x": ["a"]},
            "nums": [1.5, 2.5],
        }),
    );
}

// cel-go's optional map literals and optional indexes key maps by int, uint, bool and string
// alike (`{?1: …}`, `m[?true]`).
#[test]
fn optional_map_entries_take_every_scalar_key() {
    let schema = with_rules(
        json!({}),
        &[
            "{?1: optional.of('a')} == {1: 'a'}",
            "{?1u: optional.of('a')} == {1u: 'a'}",
            "{?true: optional.of('a')} == {true: 'a'}",
            "{1: 'a'}[?1] == optional.of('a')",
            "{true: 'a'}[?false] == optional.none()",
        ],
    );
    assert_all_hold(&schema, json!({}));
}

// values.go `unstructuredMapList.toMapKey` looks the *escaped* key name up in the unescaped
// element, so a key whose name escaping changes (`k.` → `k__dot__`) reads as absent in every
// element: all elements share one key, and `+` overwrites the last instead of appending.
#[test]
fn map_list_keys_that_escaping_changes_read_as_absent() {
    let schema = with_rules(
        json!({"ls": {"type": "array", "items": {"type": "array",
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k."],
            "items": {"type": "object", "required": ["k."],
                "properties": {"k.": {"type": "string"}, "v": {"type": "string"}}}}}}),
        &["size(self.ls[0] + self.ls[1]) == 2"],
    );
    assert_all_hold(
        &schema,
        json!({"ls": [[{"k.": "a", "v": "1"}, {"k.": "b", "v": "2"}], [{"k.": "c", "v": "3"}]]}),
    );
}

// A set list keeps its semantics through optional chains (`.?s.value()`, `.orValue(…)`,
// `.optMap(v, …)`, `.or(…)`), and `oldSelf` keeps its schema after nested comprehensions: each
// comprehension's variables leave scope exactly when it ends.
#[test]
fn set_semantics_survive_optionals_and_nested_comprehensions() {
    let map_list = json!({"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["k"],
        "items": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}}});
    let properties = json!({
        "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "objs": {"type": "array", "items": map_list},
    });
    let schema = with_rules(
        properties.clone(),
        &[
            "self.?s.value() == ['b', 'a']",
            "self.?s.orValue([]) == ['b', 'a']",
            "self.?s.optMap(v, v == ['b', 'a']).value()",
            "self.?s.or(optional.none()).value() == ['b', 'a']",
        ],
    );
    assert_all_hold(&schema, json!({"s": ["a", "b"], "objs": []}));
    let transition = with_rules(
        properties,
        &["self.objs.all(x, x.all(y, y.k != '')) && oldSelf.s == self.s"],
    );
    let objs = json!([[{"k": "a"}]]);
    assert_eq!(
        admit(
            &transition,
            json!({"s": ["b", "a"], "objs": objs}),
            Some(json!({"s": ["a", "b"], "objs": objs})),
        ),
        Ok(())
    );
}

// cel-go names an optional's type `optional_type` (types.OptionalType), e.g. in a format
// error.
#[test]
fn an_optional_is_named_optional_type() {
    let errors = admit(
        &with_rules(json!({}), &["'%e'.format([optional.of(1.0)]) == ''"]),
        json!({}),
        None,
    )
    .expect_err("an optional is no double");
    assert!(
        errors[0]
            .detail
            .contains("scientific clause can only be used on doubles, was given optional_type"),
        "{errors:?}"
    );
}

// cel-go cel/library.go `evalOptionalOr`: an empty optional's `or` returns its alternative as
// it evaluates, without checking that it is an optional (the checker does that, and `dyn`
// passes it).
#[test]
fn or_returns_its_alternative_unchecked() {
    let schema = with_rules(
        json!({}),
        &[
            "optional.none().or(dyn(1)) == dyn(1)",
            "optional.of(2).or(dyn(1)) == optional.of(2)",
        ],
    );
    assert_all_hold(&schema, json!({}));
}

// Set semantics also reach a set passed through `optional.of(…)`, a conditional whose
// branches are the same field, and the values of a map literal; a conditional between
// different fields is not rewritten (the emulator rewrites by schema, statically: a known
// difference, cel-go decides by the value).
#[test]
fn set_semantics_through_optional_of_conditionals_and_map_literals() {
    let schema = with_rules(
        json!({
            "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "t": {"type": "array", "items": {"type": "string"}},
        }),
        &[
            "optional.of(self.s).value() == ['b', 'a']",
            "(size(self.s) > 0 ? self.s : self.s) == ['b', 'a']",
            "!((false ? self.s : self.t) == ['b', 'a'])",
            "{'k': self.s == ['b', 'a']}['k']",
            "self.?t[0] == optional.of('a')",
        ],
    );
    assert_all_hold(&schema, json!({"s": ["a", "b"], "t": ["a", "b"]}));
}

// cel-go expands the one-variable macros `map`, `filter` and `exists_one` into comprehensions
// whose variable is a list's element or a map's key (parser/macro.go). The element of a list
// of map lists is itself a map list and compares by key; a map's key is a plain string even
// when the map's values are sets. (`all` and `exists` run in the two-variable form, see
// `set_semantics_survive_optionals_and_nested_comprehensions`.)
#[test]
fn one_variable_macros_bind_elements_and_keys() {
    let map_list = map_list_k_v();
    let schema = with_rules(
        json!({
            "objs": {"type": "array", "items": map_list},
            "ms": {"type": "object", "additionalProperties": {"type": "array",
                "x-kubernetes-list-type": "set", "items": {"type": "string"}}},
        }),
        &[
            "self.objs.map(x, x == [x[1], x[0]]) == [true]",
            "self.objs.filter(x, x == [x[1], x[0]]).size() == 1",
            "self.objs.exists_one(x, x == [x[1], x[0]])",
            "self.ms.filter(k, k == 'x') == ['x']",
            "self.ms.map(k, k + 'y') == ['xy']",
        ],
    );
    assert_all_hold(
        &schema,
        json!({
            "objs": [[{"k": "a", "v": "1"}, {"k": "b", "v": "2"}]],
            "ms": {"x": ["a"]},
        }),
    );
}

// cel-go applies a field selection to an optional's value and wraps the result
// (interpreter/attributes.go `applyQualifiers`), whichever branch of a conditional produced
// the optional: the checker joins an optional and a `dyn` branch, and the selection is an
// optional one on both.
#[test]
fn a_conditional_with_one_optional_branch_selects_optionally() {
    let schema = with_rules(
        json!({"o": {"type": "object", "properties": {"k": {"type": "string"}}}}),
        &[
            "(true ? dyn(self.?o) : self.?o).k == optional.of('v')",
            "(false ? self.?o : dyn(self.?o)).k == optional.of('v')",
        ],
    );
    assert_all_hold(&schema, json!({"o": {"k": "v"}}));
}

// cel-go interpreter/runtimecost.go: a string's and a map's actual size drive the cost of an
// evaluation (`matches`: ⌈(1 + size) · 0.1⌉ · ⌈regex length · 0.25⌉; `all`: the entries), so
// the same rule is cancelled on a large object and runs on a small one.
#[test]
fn actual_string_and_map_sizes_bound_an_evaluation() {
    let regex = format!("^({}a)*$", "a|".repeat(199));
    let string_rule = format!("self.s.matches('{regex}')");
    let schema = with_rules(json!({"s": {"type": "string"}}), &[string_rule.as_str()]);
    // 150,001 · 100 ≥ 1,000,000: cancelled; 11 · 100: runs (and holds).
    let cancelled = admit(&schema, json!({"s": "a".repeat(1_500_000)}), None)
        .expect_err("past the per-call limit");
    assert!(
        cancelled[0].detail.contains("call cost exceeds limit"),
        "{cancelled:?}"
    );
    admit(&schema, json!({"s": "a".repeat(100)}), None).expect("a short string runs");

    let schema = with_rules(
        json!({"m": {"type": "object", "additionalProperties": {"type": "integer"}}}),
        &["self.m.all(k, k.matches('^[a-z0-9]+$'))"],
    );
    let map = |n: usize| {
        let m: serde_json::Map<String, Value> =
            (0..n).map(|i| (format!("k{i:05}"), json!(i))).collect();
        json!({"m": m})
    };
    let cancelled = admit(&schema, map(250_000), None).expect_err("past the per-call limit");
    assert!(
        cancelled[0].detail.contains("call cost exceeds limit"),
        "{cancelled:?}"
    );
    admit(&schema, map(10_000), None).expect("a small map runs");
}

// Tokens the positioned parser must split as cel-go's lexer does (parser/gen/CEL.g4): `?.5`
// is a conditional's `?` and a double, `.?` an optional selection even before `_` or a blank,
// hexadecimal ints and uints, and string escapes (`parser/unescape.go`).
#[test]
fn lexer_edge_cases_compile_and_hold() {
    let schema = with_rules(
        json!({"_x": {"type": "string"}, "s": {"type": "string"}}),
        &[
            "(true ?.5 : 1.5) == 0.5",
            "self.?_x.orValue('') == 'a'",
            "self.? s.orValue('') == 'b'",
            "0x1F == 31 && 0x1Fu == 31u",
            "'\\a\\b\\f\\n\\r\\t\\v'.size() == 7",
            "'\\x41\\u0042\\U00000043\\101' == 'ABCA'",
        ],
    );
    assert_all_hold(&schema, json!({"_x": "a", "s": "b"}));
}

// cel-go common/containers `ResolveCandidateNames`: a leading dot names the root scope
// (`.self` is `self`). The checker looks past a comprehension variable of the same name, as
// cel-go does; the interpreter does not (a known difference, in the README).
#[test]
fn a_leading_dot_names_the_root_scope() {
    let schema = with_rules(json!({"s": {"type": "string"}}), &[".self.s == 'b'"]);
    assert_all_hold(&schema, json!({"s": "b"}));
    let shadowed = "['x'].all(self, .self.s == 'b')";
    let s = with_rules(json!({"s": {"type": "string"}}), &[shadowed]);
    assert_eq!(compile_rules(&s)[0].error, None, "{shadowed}");
}
