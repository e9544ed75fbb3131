//! Type checking of rules against the declarations of the structural schema, with the outcomes
//! kube-apiserver's own tests expect: apiextensions-apiserver
//! `pkg/apiserver/schema/cel/validation_test.go` (`TestValidationExpressions`: the `valid` rules
//! compile, the `errors` rules fail to compile with the quoted text).

use kube_admission::compile_rules;
use serde_json::{Value, json};

fn obj(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

/// Compiles `rule` on the root of `schema`; `Ok` or the error detail.
fn compile(schema: &Value, rule: &str) -> Result<(), String> {
    let mut s = schema.clone();
    s["x-kubernetes-validations"] = json!([{"rule": rule}]);
    let reports = compile_rules(&s);
    match reports.as_slice() {
        [r] => match &r.error {
            None => Ok(()),
            Some(e) => Err(e.clone()),
        },
        other => Err(format!("expected one rule, got {other:?}")),
    }
}

fn check(schema: &Value, valid: &[&str], errors: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for rule in valid {
        if let Err(e) = compile(schema, rule) {
            failures.push(format!("{rule}: expected to compile, got {e}"));
        }
    }
    for (rule, want) in errors {
        match compile(schema, rule) {
            Ok(()) => failures.push(format!("{rule}: expected an error containing {want:?}")),
            Err(e) if !e.contains(want) => failures.push(format!("{rule}: {e:?} lacks {want:?}")),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn lists() {
    let list = json!({"type": "array", "items": {"type": "integer"}});
    check(
        &obj(json!({"val1": list, "val2": list})),
        &[
            "self.val1 == self.val2",
            "1 in self.val1",
            "self.val2[0] in self.val1",
            "!(0 in self.val1)",
            "self.val1 + self.val2 == [1, 2, 3, 1, 2, 3]",
            "self.val1 + [4, 5] == [1, 2, 3, 4, 5]",
        ],
        &[(
            "[1, 'a', false].filter(x, string(x) == 'a')",
            "compilation failed: ERROR: <input>:1:5: expected type 'int' but found 'string'",
        )],
    );
}

#[test]
fn maps() {
    let map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    check(
        &obj(json!({"val1": map, "val2": map})),
        &[
            "self.val1 == self.val2",
            "'k1' in self.val1",
            "!('k3' in self.val1)",
            "self.val1 == {'k1': 'a', 'k2': 'b'}",
        ],
        &[(
            "{'k1': 'a', 'k2': 1, 'k2': false}",
            "expected type 'string' but found 'int'",
        )],
    );
}

#[test]
fn objects_and_list_maps() {
    let item = json!({"type": "object", "required": ["k"],
        "properties": {"k": {"type": "string"}, "v": {"type": "string"}}});
    let list_map = json!({"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["k"], "items": item});
    check(
        &obj(json!({"objs": {"type": "array", "items": list_map}})),
        &[
            "self.objs[0] == self.objs[1]",
            "self.objs[0] + self.objs[2] == self.objs[2]",
            "self.objs[0] == [self.objs[0][0], self.objs[0][1]]",
            "size(self.objs[0] + [self.objs[3][0]]) == 3",
        ],
        &[(
            "self.objs[0] == {'k': 'a', 'v': '1'}",
            "no matching overload for '_==_'",
        )],
    );
    let o = json!({"type": "object", "properties": {"f1": {"type": "string"}, "f2": {"type": "string"}}});
    check(
        &obj(json!({"objs": {"type": "array", "items": o}})),
        &["self.objs[0] == self.objs[1]"],
        &[(
            "self.objs[0] == {'f1': 'a', 'f2': 'b'}",
            "found no matching overload for '_==_'",
        )],
    );
}

#[test]
fn object_access() {
    let schema = obj(json!({
        "a": {"type": "object", "properties": {"b": {"type": "integer"}, "c": {"type": "integer"},
            "d": {"type": "integer", "nullable": true}}},
        "a1": {"type": "object", "properties": {
            "b1": {"type": "object", "properties": {"c1": {"type": "integer"}}},
            "d2": {"type": "object", "properties": {"e2": {"type": "integer"}}}}},
    }));
    check(
        &schema,
        &[
            "has(self.a.b)",
            "!has(self.a.c)",
            "!has(self.a.d)",
            "has(self.a1.b1.c1)",
            "!(has(self.a1.d2) && has(self.a1.d2.e2))",
            "!has(self.a1.d2)",
            "has(self.a1.d2.e2)",
        ],
        &[
            ("has(self.a.z)", "undefined field 'z'"),
            ("self.a['b'] == 1", "no matching overload for '_[_]'"),
        ],
    );
}

#[test]
fn map_access() {
    let schema =
        obj(json!({"val": {"type": "object", "additionalProperties": {"type": "integer"}}}));
    check(
        &schema,
        &[
            "!('a' in self.val)",
            "'b' in self.val",
            "!has(self.val.a)",
            "has(self.val.b)",
            "self.val.b == 1",
            "self.val['b'] == 1",
            "self.val.all(k, self.val[k] > 0)",
            "self.val.exists_one(k, self.val[k] == 2)",
        ],
        &[],
    );
}

#[test]
fn unknown_and_untyped_fields() {
    let unknown_obj = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let schema = obj(json!({
        "withUnknown": unknown_obj,
        "withUnknownList": {"type": "array", "items": unknown_obj},
        "withUnknownFieldList": {"type": "array", "items": {"type": "object", "properties": {
            "fieldOfUnknownType": {"x-kubernetes-preserve-unknown-fields": true}}}},
        "anyvalList": {"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": true}},
        "anyvalMap": {"type": "object", "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true}},
        "anyvalField1": {"x-kubernetes-preserve-unknown-fields": true},
        "anyvalField2": {"x-kubernetes-preserve-unknown-fields": true},
    }));
    check(
        &schema,
        &[
            "has(self.withUnknown)",
            "self.withUnknownList.size() == 5",
            "self.withUnknownList[0] != self.withUnknownList[1]",
            "self.withUnknownFieldList[0] != self.withUnknownFieldList[1]",
        ],
        &[
            ("has(self.withUnknown.field1)", "undefined field 'field1'"),
            ("has(self.anyvalList)", "undefined field 'anyvalList'"),
            ("has(self.anyvalMap)", "undefined field 'anyvalMap'"),
            ("has(self.anyvalField1)", "undefined field 'anyvalField1'"),
            ("has(self.anyvalField2)", "undefined field 'anyvalField2'"),
        ],
    );
}

#[test]
fn embedded_resources_expose_type_meta_only() {
    let schema = obj(json!({
        "embedded": {"type": "object", "x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true},
    }));
    check(
        &schema,
        &[
            "self.embedded.apiVersion == 'v1'",
            "self.embedded.kind == 'Pod'",
            "self.embedded.metadata.name == 'foo'",
            "self.embedded.metadata.generateName == 'pickItForMe'",
        ],
        &[
            (
                "has(self.embedded.metadata.namespace)",
                "undefined field 'namespace'",
            ),
            ("has(self.embedded.spec)", "undefined field 'spec'"),
        ],
    );
}

#[test]
fn null_is_not_a_string() {
    let schema = obj(json!({
        "unsetPlainStr": {"type": "string"},
        "unsetDefaultedStr": {"type": "string", "default": "default value"},
        "unsetNullableStr": {"type": "string", "nullable": true},
    }));
    check(
        &schema,
        &[
            "!has(self.unsetPlainStr)",
            "self.unsetDefaultedStr == 'default value'",
        ],
        &[
            (
                "self.unsetPlainStr == null",
                "no matching overload for '_==_' applied to '(string, null)",
            ),
            (
                "self.unsetDefaultedStr != null",
                "no matching overload for '_!=_' applied to '(string, null)",
            ),
            (
                "self.unsetNullableStr == null",
                "no matching overload for '_==_' applied to '(string, null)",
            ),
        ],
    );
}

#[test]
fn int_or_string_is_dynamic() {
    let schema = obj(json!({"something": {"x-kubernetes-int-or-string": true}}));
    check(
        &schema,
        &[
            "type(self.something) == string",
            "type(self.something) == int ? self.something < 5 : double(self.something.replace('%', '')) < 50.0",
            "self.something == '25%'",
        ],
        // A dyn value is not a bool to the checker (compilation.go "cel expression must
        // evaluate to a bool").
        &[("self.something", "cel expression must evaluate to a bool")],
    );
}

#[test]
fn formats_map_to_cel_types() {
    let schema = obj(json!({
        "d": {"type": "string", "format": "duration"},
        "t": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "b": {"type": "string", "format": "byte"},
    }));
    check(
        &schema,
        &[
            "self.d > duration('1s')",
            "self.t < timestamp('2030-01-01T00:00:00Z')",
            "self.day.getFullYear() > 2000",
            "self.b == b'abc'",
            "self.t + self.d > self.t",
        ],
        &[
            (
                "self.d == '1s'",
                "found no matching overload for '_==_' applied to '(duration, string)'",
            ),
            ("self.d > duration('forever')", "invalid duration argument"),
        ],
    );
}

#[test]
fn kubernetes_libraries_are_declared() {
    let schema = obj(json!({
        "s": {"type": "string", "maxLength": 64},
        "l": {"type": "array", "maxItems": 10, "items": {"type": "integer"}},
        "names": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 10}},
    }));
    check(
        &schema,
        &[
            "self.s.lowerAscii().upperAscii().trim() != ''",
            "self.s.split(',').size() < 3 && self.s.substring(1, 2) == 'x' && self.s.charAt(0) == 'a'",
            "self.s.indexOf('a') >= 0 && self.s.lastIndexOf('a') >= 0",
            "self.names.join(',') != '' && self.names.join() != ''",
            "self.l.isSorted() && self.l.sum() > 0 && self.l.min() < self.l.max() && self.l.indexOf(3) == 0",
            "self.s.find('[0-9]+') != '' && self.s.findAll('x').size() > 0",
            "isURL(self.s) && url(self.s).getHost() != '' && url(self.s).getQuery().size() == 0",
            "isIP(self.s) && ip(self.s).family() == 4 && ip.isCanonical(self.s)",
            "isCIDR(self.s) && cidr(self.s).containsIP('10.0.0.1') && cidr(self.s).prefixLength() < 24",
            "quantity(self.s).add(1).isGreaterThan(quantity('1')) && quantity(self.s).compareTo(quantity('1Gi')) > 0",
            "!format.dns1123Label().validate(self.s).hasValue()",
            "format.named('dns1123Label').value().validate(self.s).orValue([]).size() == 0",
            "sets.contains(self.names, ['a']) && sets.intersects(self.names, ['b']) && sets.equivalent(self.names, self.names)",
            "self.s.matches('^a') && self.s.startsWith('a') && self.s.endsWith('z') && self.s.contains('m')",
            "strings.quote(self.s) != '' && '%s'.format([self.s]) != ''",
            "optional.of(self.s).hasValue() && optional.none().orValue(self.s) == self.s",
            "self.names.exists(n, n == 'a') && self.names.map(n, n + '!').all(n, n.endsWith('!'))",
            "self.l.filter(x, x > 1).size() >= 0 && self.l.map(x, x > 1, x * 2).size() >= 0",
        ],
        &[
            (
                "self.s.noSuchFunction()",
                "undeclared reference to 'noSuchFunction' (in container '')",
            ),
            (
                "fakeFunction(self.s)",
                "undeclared reference to 'fakeFunction'",
            ),
            (
                "self.s.startsWith(1)",
                "found no matching overload for 'startsWith' applied to 'string.(int)'",
            ),
            (
                "size(1)",
                "found no matching overload for 'size' applied to '(int)'",
            ),
            ("self.s.matches('[')", "invalid matches argument"),
        ],
    );
}

#[test]
fn syntax_errors_are_reported_by_the_parser() {
    let schema = obj(json!({"s": {"type": "string"}}));
    let err = compile(&schema, "self.s ==").expect_err("syntax error");
    assert!(
        err.starts_with("compilation failed: ERROR: <input>:1:"),
        "{err}"
    );
    assert!(err.contains("Syntax error"), "{err}");
}

// cel-go ext/comprehensions.go, in the 1.32 environment (apiserver pkg/cel/environment/base.go
// ext.TwoVarComprehensions).
#[test]
fn two_variable_comprehensions() {
    let schema = obj(json!({
        "l": {"type": "array", "maxItems": 10, "items": {"type": "integer"}},
        "m": {"type": "object", "maxProperties": 10, "additionalProperties": {"type": "string"}},
    }));
    check(
        &schema,
        &[
            "self.l.all(i, v, i < 10 && v > 0)",
            "self.l.exists(i, v, v == i)",
            "self.l.existsOne(i, v, v == 1) || self.l.exists_one(i, v, v == 2)",
            "self.m.all(k, v, k != v)",
            "self.l.transformList(i, v, v * 2).size() == size(self.l)",
            "self.l.transformList(i, v, v * 2).all(x, x > 0)",
            "self.l.transformList(i, v, v > 0, v * 2).all(x, x > 0)",
            "self.m.transformMap(k, v, v + '!').all(k, k != '')",
            "self.m.transformMap(k, v, v != '', size(v)).exists(k, self.m[k] != '')",
            // The accumulator has cel-go v0.22's name, which a rule may read.
            "self.l.all(i, v, __result__ && v > 0)",
        ],
        &[
            // cel-go v0.22 ext/comprehensions_test.go `TestTwoVarComprehensionsStaticErrors`,
            // blamed on the variable as `extractIterVars` does.
            (
                "self.l.all(__result__, i, __result__ < i)",
                "ERROR: <input>:1:12: iteration variable overwrites accumulator variable",
            ),
            (
                "self.l.all(j, __result__, __result__ < j)",
                "ERROR: <input>:1:15: iteration variable overwrites accumulator variable",
            ),
            (
                "self.l.all(i, i, i < i)",
                "ERROR: <input>:1:15: duplicate variable name: i",
            ),
            (
                "self.l.all(i, v, v == 'a')",
                "found no matching overload for '_==_' applied to '(int, string)'",
            ),
            (
                "self.m.all(k, v, v > 1)",
                "found no matching overload for '_>_' applied to '(string, int)'",
            ),
        ],
    );
}

fn compile_all(schema: &Value, rules: Value) -> Vec<Result<(), String>> {
    let mut s = schema.clone();
    s["x-kubernetes-validations"] = rules;
    compile_rules(&s)
        .into_iter()
        .map(|r| match r.error {
            None => Ok(()),
            Some(e) => Err(e),
        })
        .collect()
}

fn assert_outcomes(results: Vec<Result<(), String>>, expected: &[Option<&str>]) {
    assert_eq!(results.len(), expected.len());
    for (i, (r, want)) in results.iter().zip(expected).enumerate() {
        match (r, want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) if e.contains(w) => {}
            other => panic!("rule {i}: {other:?}"),
        }
    }
}

// compilation_test.go TestCelCompilation "optional primitive transition rule type checking" and
// "optional complex transition rule type checking": with optionalOldSelf, oldSelf is an optional
// and selecting through it yields optionals.
#[test]
fn optional_old_self_is_an_optional() {
    let rules = |list: &[&str]| {
        Value::Array(
            list.iter()
                .map(|r| json!({"rule": r, "optionalOldSelf": true}))
                .collect(),
        )
    };
    assert_outcomes(
        compile_all(
            &json!({"type": "integer"}),
            rules(&[
                "self >= oldSelf.value()",
                "self >= oldSelf.orValue(1)",
                "oldSelf.hasValue() ? self >= oldSelf.value() : true",
                "self >= oldSelf",
                "self >= oldSelf.orValue('')",
            ]),
        ),
        &[None, None, None, Some("optional"), Some("orValue")],
    );
    let scalars = json!({"i": {"type": "integer"}, "b": {"type": "boolean"}, "s": {"type": "string"},
        "a": {"type": "array", "items": {"type": "integer"}}});
    let mut inner = scalars.clone();
    inner["o"] = json!({"type": "object"});
    let mut props = scalars;
    props["o"] = json!({"type": "object", "properties": inner});
    assert_outcomes(
        compile_all(
            &json!({"type": "object", "properties": props}),
            rules(&[
                "self.i >= oldSelf.i.value()",
                "self.s == oldSelf.s.value()",
                "self.b == oldSelf.b.value()",
                "self.o == oldSelf.o.value()",
                "self.o.i >= oldSelf.o.i.value()",
                "self.o.s == oldSelf.o.s.value()",
                "self.o.b == oldSelf.o.b.value()",
                "self.o.o == oldSelf.o.o.value()",
                "self.o.i >= oldSelf.o.i.orValue(1)",
                "oldSelf.hasValue() ? self.o.i >= oldSelf.o.i.value() : true",
                "self.o.i >= oldSelf.o.i",
                "self.o.i >= oldSelf.o.s.orValue(0)",
            ]),
        ),
        &[
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            Some("optional"),
            Some("orValue"),
        ],
    );
}

// compilation_test.go "valid for escaping" / "invalid for escaping": since 1.32 reserved words
// select their escaped fields too.
#[test]
fn reserved_words_select_escaped_fields() {
    let schema = json!({"type": "object", "properties": {
        "namespace": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        "if": {"type": "integer"},
        "self": {"type": "integer"},
    }});
    assert_outcomes(
        compile_all(
            &schema,
            json!([
                {"rule": "size(self.__namespace__[0]) == 10"},
                {"rule": "self.__if__ == 10"},
                {"rule": "self.self == 10"},
                {"rule": "size(self.namespace[0]) == 10"},
                {"rule": "self.if == 10"},
                {"rule": "self == 10"},
            ]),
        ),
        &[
            None,
            None,
            None,
            None,
            None,
            Some("found no matching overload"),
        ],
    );
    // compilation_test.go "invalid checking for number", "expression must evaluate to a bool".
    assert_outcomes(
        compile_all(
            &json!({"type": "number"}),
            json!([{"rule": "size(self) == 10"}, {"rule": "42"}]),
        ),
        &[Some("compilation failed"), Some("must evaluate to a bool")],
    );
}

// Odd rules get a compile error or compile; none may take the server down.
#[test]
fn odd_rules_never_panic() {
    let schema = obj(json!({
        "s": {"type": "string"},
        "l": {"type": "array", "items": {"type": "integer"}},
        "m": {"type": "object", "additionalProperties": {"type": "string"}},
        "q": {"x-kubernetes-int-or-string": true},
    }));
    let deep = format!("{}true{}", "(".repeat(200), ")".repeat(200));
    let long_and = vec!["self.s == 'a'"; 300].join(" && ");
    let rules: Vec<String> = [
        "",
        " ",
        "-",
        "!",
        "self.",
        ".self",
        "self..s",
        "self[",
        "self]",
        "((",
        "'",
        "\"",
        "'''",
        "r'\\d'",
        "b'\\xff' == b'\\377'",
        "'\\u00e9' == 'é'",
        "'\\xZZ'",
        "9223372036854775808",
        "-9223372036854775808 < 0",
        "18446744073709551615u > 0u",
        "18446744073709551616u",
        "1e400 > 0.0",
        ".5 < 1.0",
        "0x1F == 31",
        "self.s.?x",
        "self.m.?x.orValue('') == ''",
        "self.l[?0].hasValue()",
        "{?'a': optional.of(1)}.size() == 1",
        "[?optional.none()].size() == 0",
        "self.l.all(__result__, true)",
        "self.l.all(1, true)",
        "self.l.map(x)",
        "has(self)",
        "has(self.s.x)",
        "self.q.x == 1",
        "type(self) == type(self)",
        "google.protobuf.Duration",
        "Foo{a: 1}",
        "self.l.all(x, self.l.all(y, self.l.all(z, x + y == z)))",
        "size(self.s) == 'é'.size()",
        "\u{1F600} == 1",
        "self.s == '\u{1F600}'",
        "cel.bind(x, 1, x == 1)",
        "self.l.exists(i, v, w, true)",
        "self.m.transformMapEntry(k, v, {k: v}).size() > 0",
        "int('1') + uint(1) == 2",
        "timestamp('bad') < now",
        "duration('1h') > duration('1m')",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([deep, long_and])
    .collect();
    for rule in &rules {
        let r = std::panic::catch_unwind(|| compile(&schema, rule));
        assert!(r.is_ok(), "panicked on {rule:?}");
    }
}

// cel-go v0.22.0 checker/checker.go `resolveOverload`: `&&` and `||` are not resolved as
// overloads; every operand not assignable to bool is its own "expected type 'bool'" error at
// the operand (checker_test.go: `x.all(e, 0)` → "1:10: expected type 'bool' but found
// 'int'", the predicate of the macro's `_&&_` step).
#[test]
fn logical_operators_name_each_operand_that_is_not_bool() {
    let schema = obj(json!({
        "l": {"type": "array", "items": {"type": "integer"}},
        "s": {"type": "string"},
    }));
    let errors = [
        (
            "self.l.all(e, 0)",
            "ERROR: <input>:1:15: expected type 'bool' but found 'int'",
        ),
        (
            "self.l.exists(e, e) || true",
            "ERROR: <input>:1:18: expected type 'bool' but found 'int'",
        ),
        (
            "self.s && true",
            "ERROR: <input>:1:5: expected type 'bool' but found 'string'",
        ),
    ];
    check(
        &schema,
        &["dyn(self.s) && true", "self.l.all(e, e > 0) || false"],
        &errors,
    );
    let both = compile(&schema, "1 || 'a'").expect_err("two operands are not bool");
    assert!(
        both.contains("1:1: expected type 'bool' but found 'int'")
            && both.contains("1:6: expected type 'bool' but found 'string'"),
        "{both}"
    );
}

// cel-go v0.22.0 checker/checker.go `resolveOverload`: when several overloads match (a `dyn`
// operand), the call's type is the first match's result if every match agrees on it, else
// `dyn`: `dyn(1) + dyn(2)` may be an int, a string, a list…, so `.size()` is allowed on it,
// while `dyn(1) + 2` can only be an int.
#[test]
fn a_call_matching_overloads_of_different_results_is_dyn() {
    let schema = obj(json!({}));
    check(
        &schema,
        &["(dyn(1) + dyn(2)).size() == 0", "(dyn(1) + 2) == 3"],
        &[(
            "(dyn(1) + 2).size() == 0",
            "found no matching overload for 'size' applied to 'int.()'",
        )],
    );
}

// cel-go v0.22.0 checker/checker_test.go: `[].map(x, [].map(y, x in y && y in x))` would bind
// `x` to a list of lists of itself; the occurs check (checker/types.go `notReferencedIn`)
// refuses the binding, so the second `in` finds no overload.
#[test]
fn a_type_variable_never_contains_itself() {
    let schema = obj(json!({}));
    check(
        &schema,
        &["[].map(x, [].map(y, x in y)).size() == 0"],
        &[(
            "[].map(x, [].map(y, x in y && y in x))",
            "ERROR: <input>:1:33: found no matching overload for '@in' applied to '(list(dyn), dyn)'",
        )],
    );
}

// cel-go v0.22.0 checker/checker.go `resolveOverload` instantiates an overload's type
// parameters afresh at every call, including those only inside a map type (`size_map`:
// `size(map(K, V))`, `in_map`: `K in map(K, V)`): calls on maps of different types
// type-check independently.
#[test]
fn each_call_gets_fresh_type_parameters() {
    let schema = obj(json!({"m": {"type": "object", "additionalProperties": {"type": "string"}}}));
    check(
        &schema,
        &[
            "{'a': 1}['a'] == 1 && {1: 'a'}[1] == 'a'",
            "self.m['a'] == 'x' && {1: 2}[1] == 2 && size({true: 1u}) == 1",
            "size({true: 1u}) == 1 && size(self.m) == 0 && size({1: 2.0}) == 1",
            "'a' in {'a': 1} && 1 in {1: 'a'} && 'b' in self.m",
        ],
        &[],
    );
}

// cel-go v0.22.0 cel/validator.go (`ExtendedValidations`, which the Kubernetes environment
// uses): timestamp literals must parse (`ValidateTimestampLiterals`: "invalid timestamp
// argument"), and list and map literals must be homogeneous wherever they are, except at any
// depth inside a `format` call (ext/formatting.go `stringFormatValidator.Configure` exempts it).
#[test]
fn literals_are_validated_except_inside_format() {
    let schema = obj(json!({}));
    check(
        &schema,
        &[
            "timestamp('2024-01-01T00:00:00Z') != timestamp('2024-01-02T00:00:00Z')",
            "'%s'.format([[1, 'a']]) != ''",
            "'%s'.format([{'a': 1, 'b': 'c'}]) != ''",
            "size([{'a': 1}, {'b': 2}]) == 2",
            "size([[1], [2]]) == 2",
        ],
        &[
            (
                "timestamp('yesterday') != timestamp('2024-01-01T00:00:00Z')",
                "ERROR: <input>:1:11: invalid timestamp argument",
            ),
            (
                "size([1, 'a']) == 2",
                "ERROR: <input>:1:10: expected type 'int' but found 'string'",
            ),
            (
                "size({'a': 1, 'b': 'c'}) == 2",
                "ERROR: <input>:1:20: expected type 'int' but found 'string'",
            ),
        ],
    );
}

// cel-go v0.22.0 parser/parser.go: `-9223372036854775808` is one literal (`visitInt` negates
// before parsing), the same digits without the minus are "invalid int literal"; an even run of
// `!` or `-` is dropped and an odd one is one call at the first operator (`visitLogicalNot`,
// `visitNegate`); reserved words are not identifiers (`reservedIds`). A triple-quoted string
// ends at the first three quotes (CEL.g4's `STRING`, non-greedy), so two inside are text.
// `bind` is a macro only on `cel` (ext/bindings.go `celBind`: `macroTargetMatchesNamespace`);
// on another target it is an ordinary member call, of a function no library declares.
#[test]
fn the_parser_follows_cel_go_on_literals_unary_runs_and_reserved_words() {
    let schema = obj(json!({"b": {"type": "boolean"}, "s": {"type": "string"}}));
    check(
        &schema,
        &[
            "-9223372036854775808 < 0",
            "!!self.b",
            "--1 == 1",
            "self.s == '''a''b'''",
            r#"self.s == """a""b""""#,
        ],
        &[
            (
                "self.bind(y, 1, y == 1)",
                "ERROR: <input>:1:10: undeclared reference to 'bind' (in container '')",
            ),
            (
                "9223372036854775808 > 0",
                "ERROR: <input>:1:1: invalid int literal",
            ),
            (
                "!!!1 == true",
                "ERROR: <input>:1:1: found no matching overload for '!_' applied to '(int)'",
            ),
            (
                "self.s == package",
                "ERROR: <input>:1:11: reserved identifier: package",
            ),
        ],
    );
    let cost = |rule: &str| {
        let mut s = schema.clone();
        s["x-kubernetes-validations"] = json!([{"rule": rule}]);
        compile_rules(&s)[0].max_cost
    };
    assert_eq!(cost("!!self.b"), cost("self.b"));
    assert_eq!(cost("!self.b"), cost("self.b").map(|c| c + 1));
}

// cel-go v0.22.0 parser/parser.go, at its default limit of 250 (`MaxRecursionDepth`, which
// kube-apiserver 1.32 leaves alone), has two recursion limits, both reported without a
// location. Its parse listener (`recursionListener.EnterEveryRule`) counts how deep each
// grammar rule nests, the top-level `expr` being 1: brackets and the `: else` branch of a
// conditional (`expr: conditionalOr ('?' conditionalOr ':' expr)?`) each nest one `expr`.
// Its visitor (`Visit`, after `unnest`, which sees through parentheses and one-alternative
// contexts) counts the conditionals, binary relations and arithmetic, selects, member calls
// and indexes it recurses into (`checkAndIncrementRecursionDepth`). Its parser_test.go shows
// both: 32 nested lists at limit 32 exceed the listener's; 33 additions, selects, indexes or
// relations the visitor's ("max recursion depth exceeded") — so the listener does not count
// left-recursive chains. The depths below are computed from those rules.
#[test]
fn recursion_limits_are_cel_go_s() {
    let schema = obj(json!({
        "b": {"type": "boolean"},
        "s": {"type": "string"},
        "i": {"type": "integer"},
        "l": {"type": "array", "items": {"type": "integer"}},
    }));
    let listener = "ERROR: <input>:-1:0: expression recursion limit exceeded: 250";
    let visitor = "ERROR: <input>:-1:0: max recursion depth exceeded";
    // `n` conditionals: `expr` nests n + 1 deep; the visitor reaches n + 1 (a conditional
    // over a select) or n + 2 (over a relation of a select).
    let chain = |n: usize, cond: &str| format!("{}false", format!("{cond} ? true : ").repeat(n));
    let wrap = |open: &str, inner: String, close: &str| {
        format!("{}{inner}{}", open.repeat(100), close.repeat(100))
    };
    let detail = |rule: &str| {
        compile(&schema, rule)
            .err()
            .map(|e| e.replace("compilation failed: ", ""))
    };
    let rows: Vec<(String, Option<&str>)> = vec![
        (chain(249, "self.b"), None),
        (chain(250, "self.b"), Some(listener)),
        (chain(248, "self.s == 'a'"), None),
        (chain(249, "self.s == 'a'"), Some(visitor)),
        // m additions: m + 1 below the relation, which adds one.
        (format!("self.i{} > 0", " + 1".repeat(248)), None),
        (format!("self.i{} > 0", " + 1".repeat(249)), Some(visitor)),
        // m member calls on a select, then `size()` and a relation: m + 3.
        (
            format!("self.s{}.size() > 0", ".lowerAscii()".repeat(247)),
            None,
        ),
        (
            format!("self.s{}.size() > 0", ".lowerAscii()".repeat(248)),
            Some(visitor),
        ),
        // 100 brackets of each kind around a chain: `expr` nests 1 + 100 + n + 1... deep.
        (wrap("(", chain(149, "self.b"), ")"), None),
        (wrap("(", chain(150, "self.b"), ")"), Some(listener)),
        (wrap("dyn(", chain(150, "self.b"), ")"), Some(listener)),
        (
            wrap("self.l.exists(x, ", chain(150, "self.b"), ")"),
            Some(listener),
        ),
        (
            wrap("{true: true}[", chain(150, "self.b"), "]"),
            Some(listener),
        ),
        (wrap("[", chain(150, "self.b"), "]"), Some(listener)),
        (wrap("{", chain(150, "self.b"), ": 1}"), Some(listener)),
        (wrap("{1: ", chain(150, "self.b"), "}"), Some(listener)),
        (wrap("Foo{a: ", chain(150, "self.b"), "}"), Some(listener)),
    ];
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|(rule, want)| {
            let got = detail(rule);
            (got.as_deref() != *want).then(|| {
                let got = got.map(|g| g.chars().take(120).collect::<String>());
                format!(
                    "{}…: got {got:?}, want {want:?}",
                    &rule[..rule.len().min(40)]
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// cel-go v0.22.0 common/error.go `ToDisplayString`: the line and column of the error, the
// source line (unless it is longer than `maxSnippetLength`, 16384 bytes) and a caret line with
// a wide dot for each multi-byte character before the column.
#[test]
fn errors_show_the_line_and_a_caret_as_cel_go_does() {
    let schema = obj(json!({"b": {"type": "boolean"}, "s": {"type": "string"}}));
    let long = format!("self.s == '{}' || self.b == 1", "a".repeat(16_400));
    let rows = [
        (
            "self.b &&\n  self.s == 1".to_string(),
            "ERROR: <input>:2:10: found no matching overload for '_==_' applied to '(string, int)'\n |   self.s == 1\n | .........^",
        ),
        (
            "self.s == 'é' || self.b == 1".to_string(),
            "ERROR: <input>:1:25: found no matching overload for '_==_' applied to '(bool, int)'\n | self.s == 'é' || self.b == 1\n | ...........\u{ff0e}............^",
        ),
        (
            long.clone(),
            "ERROR: <input>:1:16424: found no matching overload for '_==_' applied to '(bool, int)'",
        ),
    ];
    for (rule, want) in rows {
        let got = compile(&schema, &rule).expect_err("a type error");
        assert_eq!(
            got,
            format!("compilation failed: {want}"),
            "{}",
            &rule[..20]
        );
    }
}
