//! CRD writes checked the way kube-apiserver checks them: rules type-checked against the
//! declarations derived from the structural schema, static costs, and the schema invariants.

use kube_admission::{
    FieldErrorKind, STATIC_ESTIMATED_COST_LIMIT, compile_rules, invalid_status, validate_crd,
};
use serde_json::{Value, json};

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

fn schema_of(crd: &Value) -> &Value {
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema")
        .expect("a schema")
}

fn crd_with(schema: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}],
        },
    })
}

fn spec_schema(spec: Value) -> Value {
    json!({"type": "object", "properties": {"spec": spec}})
}

#[test]
fn the_proxy_crd_compiles_within_budget() {
    let crd = yaml(include_str!("../../../crds/kafkarestproxies.yaml"));
    let reports = compile_rules(schema_of(&crd));
    assert!(!reports.is_empty());
    for r in &reports {
        assert_eq!(r.error, None, "{r:?}");
        let cost = r.max_cost.expect("compiled");
        let cardinality = r.max_cardinality.unwrap_or(u64::MAX);
        assert!(
            cost.saturating_mul(cardinality) <= STATIC_ESTIMATED_COST_LIMIT,
            "{r:?}"
        );
    }
    assert_eq!(validate_crd(&crd, None), vec![]);
}

// The frozen copy of crds/kafkatopics.yaml whose spec.config values have no type. The server
// builds no CEL type for them (apiserver pkg/cel/common/schemas.go SchemaDeclType returns nil
// for a schema without type, and for a map whose values have none), so spec.config is not a
// field of spec: the rule on spec.config cannot get type information
// (apiextensions-apiserver pkg/apis/apiextensions/validation/cel_validation.go TypeInfo,
// validation.go "failed to construct type information") and the root rule reading
// self.spec.config does not compile.
#[test]
fn the_topic_crd_with_untyped_config_values_is_refused() {
    let crd = yaml(include_str!("data/kafkatopics-with-untyped-config.yaml"));
    let reports = compile_rules(schema_of(&crd));
    let config = reports
        .iter()
        .find(|r| r.schema_path == "properties[spec].properties[config]")
        .expect("the config rule");
    assert_eq!(config.max_cost, None);
    assert_eq!(
        config.error.as_deref(),
        Some(
            "internal error: failed to construct type information for x-kubernetes-validations rules: unable to convert structural schema to CEL declarations"
        )
    );
    let root = reports
        .iter()
        .find(|r| r.schema_path.is_empty() && r.rule.contains("self.spec.config"))
        .expect("the immutability rule");
    let err = root.error.as_deref().expect("refused");
    assert!(
        err.starts_with("compilation failed: ERROR: <input>:1:4: undefined field 'config'\n | has(self.spec.config)"),
        "{err}"
    );

    let errors = validate_crd(&crd, None);
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].properties[config].x-kubernetes-validations",
            "spec.validation.openAPIV3Schema.x-kubernetes-validations[5].rule",
        ]
    );
    assert_eq!(errors[0].kind, FieldErrorKind::Internal);
    assert_eq!(errors[1].kind, FieldErrorKind::Invalid);
    assert!(
        errors[1]
            .message
            .contains("Invalid value: apiextensions.ValidationRule{Rule:\"has(self.spec.config)")
    );
    let status = invalid_status(
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        "kafkatopics.kafka.hdinsight.dev",
        &errors,
    );
    assert_eq!(status["code"], 422);
    assert_eq!(status["details"]["causes"][0]["reason"], "InternalError");
}

// A typed value schema makes the map visible: the same rules compile.
#[test]
fn typed_config_values_make_the_rules_compile() {
    let mut crd = yaml(include_str!("data/kafkatopics-with-untyped-config.yaml"));
    let values = crd
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/config/additionalProperties")
        .expect("config values");
    *values = json!({"x-kubernetes-int-or-string": true});
    assert_eq!(validate_crd(&crd, None), vec![]);
    for r in compile_rules(schema_of(&crd)) {
        assert_eq!(r.error, None, "{r:?}");
    }
}

// apiextensions-apiserver validation.go: "estimated rule cost exceeds budget"; the O(n^2) loop
// over an unbounded list from compilation_test.go TestCostEstimation.
#[test]
fn rules_over_budget_are_refused() {
    let schema = spec_schema(json!({
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string"}}},
        "x-kubernetes-validations": [{"rule": "self.items.all(x, self.items.all(y, x == y))"}],
    }));
    let errors = validate_crd(&crd_with(schema), None);
    let per_rule = errors
        .iter()
        .find(|e| e.field == "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule")
        .expect("per-rule cost error");
    assert_eq!(per_rule.kind, FieldErrorKind::Forbidden);
    assert_eq!(
        per_rule.detail,
        "estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    );
    // The total over the schema is reported too, with the rule that contributed.
    assert!(errors.iter().any(|e| e.field == "spec.validation.openAPIV3Schema"
        && e.detail.starts_with("x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget")));
    assert!(errors.iter().any(|e| e.detail
        == "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"));

    // Bounded, the same rule is cheap.
    let schema = spec_schema(json!({
        "type": "object",
        "properties": {"items": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 10}}},
        "x-kubernetes-validations": [{"rule": "self.items.all(x, self.items.all(y, x == y))"}],
    }));
    assert_eq!(validate_crd(&crd_with(schema), None), vec![]);
}

// Cardinality multiplies through lists and maps (cel_validation.go childContext,
// extractMaxElements); unbounded nodes use the server's estimate from the minimum size.
#[test]
fn cardinality_follows_the_bounds_above_a_rule() {
    let schema = spec_schema(json!({
        "type": "object",
        "properties": {
            "bounded": {"type": "array", "maxItems": 4, "items": {"type": "object",
                "properties": {"m": {"type": "object", "maxProperties": 3,
                    "additionalProperties": {"type": "string", "maxLength": 5,
                        "x-kubernetes-validations": [{"rule": "self != 'x'"}]}}}}},
            "unbounded": {"type": "array", "items": {"type": "string", "maxLength": 5,
                "x-kubernetes-validations": [{"rule": "self != 'x'"}]}},
        },
    }));
    let reports = compile_rules(&schema);
    let bounded = reports
        .iter()
        .find(|r| {
            r.schema_path
                == "properties[spec].properties[bounded].items.properties[m].additionalProperties"
        })
        .expect("bounded rule");
    assert_eq!(bounded.max_cardinality, Some(12));
    let unbounded = reports
        .iter()
        .find(|r| r.schema_path == "properties[spec].properties[unbounded].items")
        .expect("unbounded rule");
    assert_eq!(unbounded.max_cardinality, None);
}

// apiextensions-apiserver pkg/apiserver/schema/cel/validation_test.go: fields of embedded
// resources and metadata beyond name and generateName are not visible.
#[test]
fn only_name_and_generate_name_of_metadata_are_visible() {
    let schema = json!({
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.metadata.name.startsWith('a')"},
            {"rule": "has(self.metadata.namespace)"},
            {"rule": "self.kind == 'Widget' && self.apiVersion != ''"},
        ],
    });
    let reports = compile_rules(&schema);
    assert_eq!(reports[0].error, None);
    assert!(
        reports[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("undefined field 'namespace'")),
        "{:?}",
        reports[1]
    );
    assert_eq!(reports[2].error, None);
}

// validation_test.go "escaping": property names are escaped, names that cannot be are hidden.
#[test]
fn property_names_are_escaped() {
    let schema = spec_schema(json!({
        "type": "object",
        "properties": {
            "retention.ms": {"type": "integer"},
            "max-size": {"type": "integer"},
            "namespace": {"type": "string"},
            "a@b": {"type": "string"},
        },
        "x-kubernetes-validations": [
            {"rule": "self.retention__dot__ms > 0 && self.max__dash__size > 0"},
            {"rule": "self.__namespace__ != ''"},
            {"rule": "has(self.a@b)"},
        ],
    }));
    let reports = compile_rules(&schema);
    assert_eq!(reports[0].error, None);
    assert_eq!(reports[1].error, None);
    assert!(reports[2].error.is_some());
}

// pkg/apiserver/schema/validation.go ValidateStructural and validation.go
// ValidateCustomResourceDefinitionOpenAPISchema.
#[test]
fn non_structural_schemas_are_refused() {
    let errors = validate_crd(
        &crd_with(spec_schema(
            json!({"type": "object", "properties": {"x": {"description": "no type"}}}),
        )),
        None,
    );
    assert_eq!(
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields"
        ]
    );

    let errors = validate_crd(
        &crd_with(spec_schema(
            json!({"type": "array", "uniqueItems": true, "items": {"type": "string"}}),
        )),
        None,
    );
    assert_eq!(
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        ]
    );

    let errors = validate_crd(
        &crd_with(spec_schema(json!({"type": "object",
            "properties": {"a": {"type": "string"}},
            "additionalProperties": {"type": "string"}}))),
        None,
    );
    assert_eq!(
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
        ]
    );

    let errors = validate_crd(
        &crd_with(
            json!({"type": "object", "properties": {"metadata": {"type": "object",
            "properties": {"labels": {"type": "object"}}}}}),
        ),
        None,
    );
    assert_eq!(
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        ]
    );

    let errors = validate_crd(
        &crd_with(spec_schema(
            json!({"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string", "nullable": true}}}}),
        )),
        None,
    );
    assert_eq!(
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].items.properties[name].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
            "spec.validation.openAPIV3Schema.properties[spec].items.properties[name].nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
        ]
    );
}

// validation.go: "oldSelf cannot be used on the uncorrelatable portion of the schema".
#[test]
fn transition_rules_need_a_correlatable_place() {
    let schema = spec_schema(
        json!({"type": "array", "maxItems": 10, "items": {"type": "string",
        "maxLength": 10, "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}),
    );
    let errors = validate_crd(&crd_with(schema), None);
    assert_eq!(
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within spec.validation.openAPIV3Schema.properties[spec]"
        ]
    );
}

// validation.go suppressExpressionCostForUnchangedSchema: an update that leaves a version's
// schema alone is not refused for a per-rule cost the stored CRD already had.
#[test]
fn unchanged_schemas_keep_their_per_rule_costs_on_update() {
    let schema = spec_schema(json!({
        "type": "object",
        "properties": {"items": {"type": "array", "maxItems": 1000, "items": {"type": "string", "maxLength": 100}}},
        "x-kubernetes-validations": [{"rule": "self.items.all(x, self.items.all(y, x == y))"}],
    }));
    let crd = crd_with(schema);
    let created = validate_crd(&crd, None);
    assert!(
        created
            .iter()
            .any(|e| e.detail.starts_with("estimated rule cost exceeds budget")),
        "{created:?}"
    );
    let mut updated = crd.clone();
    updated["metadata"]["labels"] = json!({"touched": "yes"});
    let errors = validate_crd(&updated, Some(&crd));
    assert!(
        !errors
            .iter()
            .any(|e| e.detail.starts_with("estimated rule cost exceeds budget")),
        "{errors:?}"
    );
}

// cel-go interpreter/runtimecost.go cancels an evaluation past the per-call limit
// (celconfig.PerCallLimit = 1,000,000) and apiextensions-apiserver
// pkg/apiserver/schema/cel/validation.go reports it and runs no further rules.
#[test]
fn evaluations_past_the_per_call_limit_are_cancelled() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object",
            "properties": {"items": {"type": "array", "items": {"type": "string"}}},
            "x-kubernetes-validations": [
                {"rule": "self.items.all(x, self.items.exists_one(y, x == y))"},
                {"rule": "size(self.items) < 1", "message": "never reached when cancelled"},
            ]}},
    });
    let compiled = kube_admission::CompiledSchema::compile(&schema).expect("compiles");
    let object = |n: usize| {
        let items: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"items": items}})
    };
    // Small lists evaluate (and fail only the second rule).
    let errors = compiled
        .admit(&mut object(20), None)
        .expect_err("second rule fails");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].detail, "never reached when cancelled");
    // A list whose pairwise comparison costs millions is cancelled.
    let errors = compiled
        .admit(&mut object(1000), None)
        .expect_err("cancelled");
    assert_eq!(
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.items.all(x, self.items.exists_one(y, x == y))"
        ]
    );
}

// apiextensions-apiserver pkg/apiserver/schema/defaulting/validation.go: defaults are pruned and
// valid against their schema; validation.go forbids defaults in top-level metadata.
#[test]
fn defaults_must_be_valid_and_pruned() {
    let schema = spec_schema(json!({"type": "object", "properties": {
        "replicas": {"type": "integer", "default": "three"},
        "limits": {"type": "object", "properties": {"cpu": {"type": "string"}},
            "default": {"cpu": "1", "memory": "1Gi"}},
        "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
    }}));
    let errors = validate_crd(&crd_with(schema), None);
    assert_eq!(
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].properties[limits].default: Invalid value: map[string]interface {}{\"cpu\":\"1\", \"memory\":\"1Gi\"}: must not have unknown fields",
            "spec.validation.openAPIV3Schema.properties[spec].properties[replicas].default: Invalid value: \"string\": spec.validation.openAPIV3Schema.properties[spec].properties[replicas].default in body must be of type integer: \"string\"",
        ]
    );

    let schema = json!({"type": "object", "properties": {
        "metadata": {"type": "object", "default": {"name": "x"}}}});
    let errors = validate_crd(&crd_with(schema), None);
    assert!(
        errors.iter().any(|e| e.message
            == "spec.validation.openAPIV3Schema.properties[metadata].default: Forbidden: must not be set in top-level metadata"),
        "{errors:?}"
    );
}

// Since 1.32 `self.namespace` reads the field the server also exposes as `__namespace__`
// (apiserver pkg/cel/types.go FindStructFieldType); both spellings evaluate alike.
#[test]
fn reserved_word_fields_evaluate_under_both_names() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
    "properties": {"namespace": {"type": "string"}},
    "x-kubernetes-validations": [
        {"rule": "self.namespace == 'a'", "message": "plain"},
        {"rule": "self.__namespace__ == 'a'", "message": "escaped"},
    ]}}});
    assert_eq!(
        compile_rules(&schema)
            .iter()
            .filter(|r| r.error.is_some())
            .count(),
        0
    );
    let compiled = kube_admission::CompiledSchema::compile(&schema).expect("compiles");
    let object = |ns: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"namespace": ns}})
    };
    compiled
        .admit(&mut object("a"), None)
        .expect("both rules pass");
    let errors = compiled
        .admit(&mut object("b"), None)
        .expect_err("both rules fail");
    assert_eq!(
        errors.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(),
        vec!["plain", "escaped"]
    );
}

// apiextensions-apiserver pkg/apis/apiextensions/validation/validation_test.go: which fields
// are refused, by kind (order aside).
#[test]
fn upstream_crd_validation_cases() {
    fn sorted(mut v: Vec<(String, FieldErrorKind)>) -> Vec<(String, FieldErrorKind)> {
        v.sort_by_key(|(f, k)| (f.clone(), format!("{k:?}")));
        v
    }
    let kinds = |schema: Value| {
        sorted(
            validate_crd(&crd_with(schema), None)
                .into_iter()
                .map(|e| (e.field, e.kind))
                .collect(),
        )
    };
    let root = "spec.validation.openAPIV3Schema";
    // "require valid types, invalid": type null at the root.
    assert_eq!(
        kinds(json!({"type": "null"})),
        sorted(vec![
            (format!("{root}.type"), FieldErrorKind::Invalid),
            (format!("{root}.type"), FieldErrorKind::NotSupported),
            (format!("{root}.type"), FieldErrorKind::Forbidden),
        ])
    );
    // Defaults and rules are not allowed in value validations.
    let errs = kinds(
        json!({"type": "object", "properties": {"a": {"type": "string",
        "not": {"default": "x"}, "allOf": [{"x-kubernetes-validations": [{"rule": "true"}]}]}}}),
    );
    assert!(
        errs.contains(&(
            format!("{root}.properties[a].not.default"),
            FieldErrorKind::Forbidden
        )),
        "{errs:?}"
    );
    assert!(
        errs.contains(&(
            format!("{root}.properties[a].allOf[0].x-kubernetes-validations"),
            FieldErrorKind::Forbidden
        )),
        "{errs:?}"
    );
    // Embedded resources may not appear inside resource metadata.
    let errs = kinds(
        json!({"type": "object", "properties": {"embedded": {"type": "object",
        "x-kubernetes-embedded-resource": true, "properties": {
            "apiVersion": {"type": "string", "properties": {"foo": {"type": "object",
                "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}}}}}),
    );
    assert!(
        errs.contains(&(
            format!("{root}.properties[embedded].properties[apiVersion].properties[foo].x-kubernetes-embedded-resource"),
            FieldErrorKind::Forbidden
        )),
        "{errs:?}"
    );
    // Defaults inside additionalProperties of embedded metadata.
    let errs = kinds(
        json!({"type": "object", "properties": {"embedded": {"type": "object",
        "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true,
        "properties": {"metadata": {"type": "object", "properties": {"annotations": {"type": "object",
            "additionalProperties": {"type": "string", "default": "x"}}}}}}}}),
    );
    assert!(
        errs.contains(&(
            format!("{root}.properties[embedded].properties[metadata].properties[annotations].additionalProperties.default"),
            FieldErrorKind::Forbidden
        )),
        "{errs:?}"
    );
}

// cel-go accepts nesting up to its parser's recursion limit (`maxRecursionDepth` 250 in
// cel-go parser/options.go, used by the apiserver's environment); such rules compile, are
// admitted into a CompiledSchema, evaluate, and do not exhaust the stack (the test thread has
// the default 2 MiB). Past the limit they are refused.
#[test]
fn deeply_nested_rules_compile_and_evaluate() {
    let nested = |depth: usize| {
        let rule = format!("{}self.spec.n == 1{}", "(".repeat(depth), ")".repeat(depth));
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"n": {"type": "integer"}}}},
            "x-kubernetes-validations": [{"rule": rule, "message": "n is 1"}]})
    };
    assert_eq!(compile_rules(&nested(200))[0].error, None);
    let schema = nested(90);
    assert_eq!(compile_rules(&schema)[0].error, None);
    let compiled = kube_admission::CompiledSchema::compile(&schema).expect("compiles");
    let mut ok = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"n": 1}});
    compiled.admit(&mut ok, None).expect("admitted");
    let mut bad = ok.clone();
    bad["spec"]["n"] = json!(2);
    let errors = compiled.admit(&mut bad, None).expect_err("refused");
    assert_eq!(errors[0].detail, "n is 1");

    // Nested operators, not only parentheses, so that the syntax tree itself is deep.
    for depth in [120usize, 245] {
        let rule = format!(
            "{}self.spec.n == 1{}",
            "self.spec.n == 0 || (".repeat(depth / 2),
            ")".repeat(depth / 2)
        );
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"n": {"type": "integer"}}}},
            "x-kubernetes-validations": [{"rule": rule, "message": "n is 0 or 1"}]});
        assert_eq!(compile_rules(&schema)[0].error, None, "depth {depth}");
        let compiled = kube_admission::CompiledSchema::compile(&schema)
            .unwrap_or_else(|e| panic!("depth {depth}: {e}"));
        let mut ok = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "spec": {"n": 1}});
        compiled.admit(&mut ok, None).expect("admitted");
        let mut bad = ok.clone();
        bad["spec"]["n"] = json!(2);
        let errors = compiled.admit(&mut bad, None).expect_err("refused");
        assert_eq!(errors[0].detail, "n is 0 or 1", "depth {depth}");
    }

    let too_deep = format!("{}true{}", "(".repeat(260), ")".repeat(260));
    let schema = json!({"type": "object", "x-kubernetes-validations": [{"rule": too_deep}]});
    assert_eq!(
        compile_rules(&schema)[0].error.as_deref(),
        Some("compilation failed: ERROR: <input>:-1:0: expression recursion limit exceeded: 250")
    );
}

// Brackets in string literals and `//` comments are characters, not nesting: cel-go's lexer
// makes each a single token (parser/gen/CEL.g4 `STRING`, `COMMENT`), so only the brackets of
// the expression count towards the parser's recursion limit.
#[test]
fn brackets_in_strings_and_comments_do_not_nest() {
    let error = |rule: &str| {
        let schema = json!({"type": "object", "properties": {"s": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": rule}]});
        compile_rules(&schema)[0].error.clone()
    };
    let many = |c: &str| c.repeat(300);
    for rule in [
        format!("self.s != '{}'", many("(")),
        format!("self.s != \"\\\"{}\"", many("[")),
        format!("self.s != 'it\\'s {}'", many("{")),
        format!("self.s != '' // {}\n && true", many("(")),
    ] {
        assert_eq!(error(&rule), None, "{rule}");
    }
    // Closing brackets end their nesting: 300 brackets one after another nest one deep.
    let flat = format!("size([{}]) == 300", vec!["[1]"; 300].join(", "));
    assert_eq!(error(&flat), None);
    for too_deep in [
        format!(
            "'it\\'s' != '' && {}true{}",
            "(".repeat(260),
            ")".repeat(260)
        ),
        // A division is not a comment.
        format!("1 / 1 == 1 && {}true{}", "(".repeat(260), ")".repeat(260)),
    ] {
        assert_eq!(
            error(&too_deep).as_deref(),
            Some(
                "compilation failed: ERROR: <input>:-1:0: expression recursion limit exceeded: 250"
            ),
            "{too_deep}"
        );
    }
}

// cel-go interpreter/runtimecost.go `actualSize`: a value that is not a `traits.Sizer` (a type,
// a duration) counts as size 1 at runtime, so comparing types costs almost nothing even though
// the static estimate of `type(self) == type(self)` is unbounded. Upstream
// apiextensions-apiserver pkg/apiserver/schema/cel/celcoststability_test.go ("object types are
// not accessible", "duration format") evaluates these rules without cancellation.
#[test]
fn rules_the_server_runs_are_not_cancelled_by_the_cost_bound() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object",
            "properties": {"d": {"type": "string", "format": "duration"}},
            "x-kubernetes-validations": [
                {"rule": "type(self) == type(self)"},
                {"rule": "type(self.d) == google.protobuf.Duration"},
                {"rule": "self.d == duration('1s')", "message": "evaluated"},
            ]}},
    });
    let compiled = kube_admission::CompiledSchema::compile(&schema).expect("compiles");
    let mut object = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"d": "2s"}});
    let errors = compiled
        .admit(&mut object, None)
        .expect_err("third rule fails");
    let details: Vec<&str> = errors.iter().map(|e| e.detail.as_str()).collect();
    assert!(
        !errors
            .iter()
            .any(|e| e.message.contains("actual cost limit exceeded")),
        "{errors:?}"
    );
    assert!(details.contains(&"evaluated"), "{errors:?}");
}

// apiserver pkg/cel/library/ip.go: `string()` of an IP gives its text; cel-go
// common/types/timestamp.go: `string()` of a timestamp is RFC 3339 with the offset kept and no
// trailing zeros in the fraction.
#[test]
fn string_conversions_follow_the_server() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object",
            "properties": {"t": {"type": "string", "format": "date-time"}},
            "x-kubernetes-validations": [
                {"rule": "string(ip('10.0.0.1')) == '10.0.0.1'", "message": "ip"},
                {"rule": "string(self.t) == '2011-08-18T19:03:37.01+01:00'", "message": "timestamp"},
                {"rule": "string(1) == '1'", "message": "int"},
            ]}},
    });
    let compiled = kube_admission::CompiledSchema::compile(&schema).expect("compiles");
    let mut object = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"t": "2011-08-18T19:03:37.01+01:00"}});
    let result = compiled.admit(&mut object, None);
    assert!(result.is_ok(), "{result:?}");
}

// cel-go ext/comprehensions.go (the 1.32 environment's two-variable comprehensions): index or
// key first, value second; `all`/`exists` fold with `&&`/`||`, so an element's error does not
// matter once the result is decided; `transformMapEntry` refuses a key produced twice.
#[test]
fn two_variable_comprehensions_evaluate_like_cel_go() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object",
            "properties": {
                "l": {"type": "array", "items": {"type": "integer"}},
                "m": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
            "x-kubernetes-validations": [
                {"rule": "self.l.all(i, v, v == i * 10)", "message": "all"},
                {"rule": "self.l.exists(i, v, i == 2 && v == 20)", "message": "exists"},
                {"rule": "self.m.existsOne(k, v, k == 'b' && v == 2)", "message": "existsOne"},
                {"rule": "self.l.transformList(i, v, i > 0, v + i) == [11, 22]", "message": "transformList"},
                {"rule": "self.m.transformMap(k, v, v * 2) == {'a': 2, 'b': 4}", "message": "transformMap"},
                {"rule": "self.l.exists(i, v, 10 / v == 1)", "message": "error absorbed"},
                {"rule": "self.m.transformMapEntry(k, v, {'x': v}).size() == 2", "message": "duplicate key"},
            ]}},
    });
    let compiled = kube_admission::CompiledSchema::compile(&schema).expect("compiles");
    let mut object = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"l": [0, 10, 20], "m": {"a": 1, "b": 2}}});
    let errors = compiled
        .admit(&mut object, None)
        .expect_err("the duplicate key is an error");
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(errors.len(), 1, "{messages:?}");
    assert!(messages[0].contains("already exists"), "{messages:?}");
}

// cel-go parser/macro.go expands `exists`/`all` into folds with `||`/`&&`, whose
// commutative error handling (cel-go interpreter/interpretable.go evalOr/evalAnd) makes an
// element's error irrelevant once another element decides the result.
#[test]
fn one_variable_quantifiers_absorb_errors_once_decided() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object",
            "properties": {
                "l": {"type": "array", "items": {"type": "object",
                    "properties": {"v": {"type": "string"}}}},
                "m": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
            "x-kubernetes-validations": [
                {"rule": "self.l.exists(e, e.v == 'z')", "message": "exists"},
                {"rule": "!self.l.all(e, e.v != 'z')", "message": "all"},
                {"rule": "self.m.exists(k, 10 / self.m[k] == 10)", "message": "map exists"},
                {"rule": "self.l.all(e, e.v == 'z')", "message": "undecided error"},
            ]}},
    });
    let compiled = kube_admission::CompiledSchema::compile(&schema).expect("compiles");
    let mut object = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"l": [{}, {"v": "z"}], "m": {"a": 0, "b": 1}}});
    let errors = compiled
        .admit(&mut object, None)
        .expect_err("the last rule errs");
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    // The first element has no `v`: `all` is not decided false by the second, so the error
    // stands; every other rule is decided by an element without error.
    assert_eq!(errors.len(), 1, "{messages:?}");
    assert!(messages[0].contains("no such key"), "{messages:?}");
}

// The same over maps, whose quantifiers get the unused variable after the key (`k` →
// `k, unused`), however the key is written: after blanks or a `//` comment (cel-go's lexer
// skips both), or in parentheses (the parser keeps no node for them). A map iterates in no fixed order, so each rule has 20 keys of which one
// decides: only a correct evaluation holds in every order.
#[test]
fn map_quantifiers_absorb_errors_wherever_the_key_is_written() {
    let rules = [
        "self.m.exists(k, 10 / self.m[k] == 10)",
        "!self.m.all(k, 10 / self.m[k] != 10)",
        "self.m.exists(   k, 10 / self.m[k] == 10)",
        "self.m.exists(// the key\n  k, 10 / self.m[k] == 10)",
        "self.m.exists(\n// the key\n// and a comment\n k, 10 / self.m[k] == 10)",
        "self.m.exists((k) , 10 / self.m[k] == 10)",
    ];
    let validations: Vec<Value> = rules
        .iter()
        .map(|r| json!({"rule": r, "message": r}))
        .collect();
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object",
            "properties": {
                "m": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
            "x-kubernetes-validations": validations}},
    });
    let compiled = kube_admission::CompiledSchema::compile(&schema).expect("compiles");
    let m: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("k{i:02}"), json!(if i == 7 { 1 } else { 0 })))
        .collect();
    let mut object = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"m": m}});
    let result = compiled.admit(&mut object, None);
    assert!(
        result.is_ok(),
        "{:?}",
        result.map_err(|e| messages(&e).join("\n"))
    );
}

fn messages(errors: &[kube_admission::FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.message.as_str()).collect()
}

/// A two-version CRD with these schemas and subresources (`Value::Null`: none).
fn two_versions(schemas: [Value; 2], subresources: [Value; 2]) -> Value {
    let mut crd = crd_with(json!({}));
    let versions: Vec<Value> = schemas
        .into_iter()
        .zip(subresources)
        .enumerate()
        .map(|(i, (schema, sub))| {
            let mut v = json!({"name": format!("v{}", i + 1), "served": true, "storage": i == 0,
                "schema": {"openAPIV3Schema": schema}});
            if !sub.is_null() {
                v["subresources"] = sub;
            }
            v
        })
        .collect();
    crd["spec"]["versions"] = json!(versions);
    crd
}

// apiextensions-apiserver pkg/apis/apiextensions/v1/conversion.go: per-version schemas (and
// subresources) that are all identical move to `spec.validation` (`spec.subresources`) of the
// internal object the server validates, so their errors are reported there, once; when they
// differ, each version's own are checked at `spec.versions[i]`.
#[test]
fn per_version_schemas_and_subresources_that_agree_are_checked_once_at_the_top() {
    let bad =
        spec_schema(json!({"type": "object", "properties": {"x": {"description": "no type"}}}));
    let good = spec_schema(json!({"type": "object"}));
    let bad_scale = json!({"scale": {"specReplicasPath": ".status.replicas",
        "statusReplicasPath": ".status.replicas"}});
    let crd = two_versions(
        [bad.clone(), bad.clone()],
        [bad_scale.clone(), bad_scale.clone()],
    );
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
            "spec.subresources.scale.specReplicasPath: Invalid value: \".status.replicas\": should be a json path under .spec",
        ]
    );
    let crd = two_versions([good, bad], [Value::Null, bad_scale]);
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        vec![
            "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
            "spec.versions[1].subresources.scale.specReplicasPath: Invalid value: \".status.replicas\": should be a json path under .spec",
        ]
    );
}

// apiextensions-apiserver pkg/apis/apiextensions/validation/validation.go: on create every
// version needs a schema ("schemas are required"); an update is held to it only when the
// stored CRD had a schema for every version (`requireSchemas`), so old data is not tightened.
#[test]
fn schemas_are_required_on_create_and_on_updates_of_crds_that_had_them() {
    let with_schema = spec_schema(json!({"type": "object"}));
    let mut crd = two_versions(
        [with_schema.clone(), with_schema],
        [Value::Null, Value::Null],
    );
    let complete = crd.clone();
    crd["spec"]["versions"][1]
        .as_object_mut()
        .expect("a version")
        .remove("schema");
    let missing =
        vec!["spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required"];
    assert_eq!(messages(&validate_crd(&crd, None)), missing);
    assert_eq!(messages(&validate_crd(&crd, Some(&complete))), missing);
    assert_eq!(
        messages(&validate_crd(&crd, Some(&crd))),
        Vec::<&str>::new()
    );
}

// validation.go `validateCustomResourceDefinitionSubresources` and `validateSimpleJSONPath`:
// the scale paths must start with `.` before their prefix is looked at.
#[test]
fn scale_paths_must_be_simple_json_paths() {
    let schema = spec_schema(json!({"type": "object"}));
    let scale = json!({"scale": {"specReplicasPath": "spec.replicas",
        "statusReplicasPath": ".status.replicas", "labelSelectorPath": "status.selector"}});
    let crd = two_versions([schema.clone(), schema], [scale.clone(), scale]);
    assert_eq!(
        messages(&validate_crd(&crd, None)),
        vec![
            "spec.subresources.scale.specReplicasPath: Invalid value: \"spec.replicas\": must be a simple json path starting with .",
            "spec.subresources.scale.labelSelectorPath: Invalid value: \"status.selector\": must be a simple json path starting with .",
        ]
    );
}

// validation.go `ValidateCustomResourceDefinitionStoredVersions`, run on update with the new
// storage version appended to the stored ones (strategy.go `PrepareForUpdate` keeps the old
// status): moving storage to a new version is fine; dropping a stored version from
// spec.versions is not.
#[test]
fn stored_versions_on_update_gain_the_new_storage_version() {
    let schema = spec_schema(json!({"type": "object"}));
    let mut old = crd_with(schema.clone());
    old["status"] = json!({"storedVersions": ["v1"]});
    let mut moved = two_versions([schema.clone(), schema.clone()], [Value::Null, Value::Null]);
    moved["spec"]["versions"][0]["storage"] = json!(false);
    moved["spec"]["versions"][1]["storage"] = json!(true);
    assert_eq!(
        messages(&validate_crd(&moved, Some(&old))),
        Vec::<&str>::new()
    );
    let mut dropped = crd_with(schema);
    dropped["spec"]["versions"][0]["name"] = json!("v2");
    assert_eq!(
        messages(&validate_crd(&dropped, Some(&old))),
        vec!["status.storedVersions[0]: Invalid value: \"v1\": must appear in spec.versions"]
    );
}

// validation.go reports a rule that does not compile with the rule as Go's `%#v` prints an
// `apiextensions.ValidationRule`: its pointer fields `Reason` and `OptionalOldSelf` print as
// `(nil)` when unset and as an address when set (an address the emulator cannot know; it
// prints a placeholder).
#[test]
fn a_rule_that_does_not_compile_is_printed_with_its_pointer_fields() {
    let rule = |extra: Value| {
        let mut r = json!({"rule": "self.n >", "message": "m"});
        if let (Some(r), Value::Object(extra)) = (r.as_object_mut(), extra) {
            r.extend(extra);
        }
        r
    };
    let schema = |r: Value| {
        spec_schema(
            json!({"type": "object", "properties": {"n": {"type": "integer"}},
            "x-kubernetes-validations": [r]}),
        )
    };
    let unset = validate_crd(&crd_with(schema(rule(json!({})))), None);
    assert_eq!(unset.len(), 1, "{unset:?}");
    assert!(
        unset[0].message.contains(
            "Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}"
        ),
        "{unset:?}"
    );
    let set = validate_crd(
        &crd_with(schema(rule(
            json!({"reason": "FieldValueForbidden", "optionalOldSelf": true}),
        ))),
        None,
    );
    assert!(
        set.iter().any(|e| e.message.contains(
            "Reason:(*apiextensions.FieldValueErrorReason)(0xc000000000), FieldPath:\"\", OptionalOldSelf:(*bool)(0xc000000000)}"
        )),
        "{set:?}"
    );
}

// validation.go specStandardValidatorV3: `id` is refused when not empty, `patternProperties`
// and `definitions` when they hold an entry, and `additionalItems`, `dependencies` and `$ref`
// whenever they are present (Go pointers or a map that `{}` or `""` makes non-nil).
#[test]
fn unsupported_keywords_are_refused_as_go_decodes_them() {
    let refused = |keyword: &str, value: Value| {
        let mut prop = json!({"type": "string"});
        prop[keyword] = value;
        messages(&validate_crd(
            &crd_with(spec_schema(
                json!({"type": "object", "properties": {"p": prop}}),
            )),
            None,
        ))
        .iter()
        .any(|m| {
            m.ends_with(&format!(
                "[p].{keyword}: Forbidden: {keyword} is not supported"
            ))
        })
    };
    assert!(!refused("id", json!("")));
    assert!(refused("id", json!("x")));
    assert!(!refused("patternProperties", json!({})));
    assert!(refused(
        "patternProperties",
        json!({"^a": {"type": "string"}})
    ));
    assert!(!refused("definitions", json!({})));
    assert!(refused("definitions", json!({"d": {"type": "string"}})));
    assert!(refused("additionalItems", json!({})));
    assert!(refused("additionalItems", json!(false)));
    assert!(refused("dependencies", json!({})));
    assert!(refused("$ref", json!("")));
    assert!(refused("$ref", json!("#/definitions/d")));
}

// apiextensions-apiserver pkg/apis/apiextensions/validation/cel_validation.go
// `TotalCost.ObserveExpressionCost`: when the schema's rules together pass
// StaticEstimatedCRDCostLimit (100,000,000), the (at most four) most expensive rules are
// named, but a rule costing under 1 % of that limit is never one of them; one at exactly 1 %
// is. A total of exactly the limit passes (validation.go: `Total > StaticEstimatedCRDCostLimit`). `size(self) >= 0 && self.all(x, x >= 0)` costs 5·n + 5:
// 500,000 on 99,999 items, 1,000,000 on 199,999.
#[test]
fn only_rules_of_at_least_one_percent_are_named_when_the_total_is_exceeded() {
    let rule = json!([{"rule": "size(self) >= 0 && self.all(x, x >= 0)"}]);
    let list = |max: u64| {
        json!({"type": "array", "maxItems": max, "items": {"type": "integer"},
            "x-kubernetes-validations": rule})
    };
    let mut props = serde_json::Map::new();
    for i in 0..200 {
        props.insert(format!("small{i:03}"), list(99_999));
    }
    // 200 · 500,000: exactly the limit, which is not exceeded.
    let at_limit = validate_crd(
        &crd_with(spec_schema(
            json!({"type": "object", "properties": props.clone()}),
        )),
        None,
    );
    assert_eq!(messages(&at_limit), Vec::<&str>::new());
    props.insert("big".into(), list(199_999));
    let errors = validate_crd(
        &crd_with(spec_schema(json!({"type": "object", "properties": props}))),
        None,
    );
    let named: Vec<&str> = errors
        .iter()
        .filter(|e| e.detail.contains("contributed to estimated rule"))
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(
        named,
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].properties[big].x-kubernetes-validations[0].rule"
        ],
        "{errors:?}"
    );
}

// cel_validation.go `CELSchemaContext.TypeInfo`: below a node with rules, a child's type is
// the parent's view of it (`WithTypeAndObjectMeta` gives an embedded resource's `metadata`
// its `name` and `generateName`); without rules above, the child's own schema is converted
// alone, where `metadata` declared as a bare object has no `name`.
#[test]
fn a_childs_type_is_its_parents_view_only_below_rules() {
    let embedded = |outer_rules: Value| {
        let mut e = json!({"type": "object", "x-kubernetes-embedded-resource": true,
            "properties": {"kind": {"type": "string"}, "apiVersion": {"type": "string"},
                "metadata": {"type": "object",
                    "x-kubernetes-validations": [{"rule": "self.name.startsWith('a')"}]}}});
        if !outer_rules.is_null() {
            e["x-kubernetes-validations"] = outer_rules;
        }
        crd_with(spec_schema(
            json!({"type": "object", "properties": {"e": e}}),
        ))
    };
    let below_rules = embedded(json!([{"rule": "self.kind != ''"}]));
    assert_eq!(
        messages(&validate_crd(&below_rules, None)),
        Vec::<&str>::new()
    );
    let alone = validate_crd(&embedded(Value::Null), None);
    assert_eq!(alone.len(), 1, "{alone:?}");
    assert!(
        alone[0].message.contains("undefined field 'name'"),
        "{alone:?}"
    );
}

/// A one-version CRD with a status subresource and this root schema.
fn with_status(schema: Value) -> Value {
    let mut crd = crd_with(schema);
    crd["spec"]["versions"][0]["subresources"] = json!({"status": {}});
    crd
}

// validation.go `validateCustomResourceDefinitionValidation` with the status subresource: a
// root field outside `allowedFieldsAtRootSchema` is refused unless it holds Go's zero value
// (`reflect.DeepEqual` with the zero of its type): null, false, "" for plain strings. `[]` and
// `{}` decode to non-nil empty slices and maps, which are not zero.
#[test]
fn root_fields_with_status_are_refused_unless_zero() {
    let refused = |extra: Value| {
        let mut schema = json!({"type": "object", "properties": {"spec": {"type": "object"}}});
        if let (Some(o), Value::Object(extra)) = (schema.as_object_mut(), extra) {
            o.extend(extra);
        }
        validate_crd(&with_status(schema), None).iter().any(|e| {
            e.detail.contains(
                "fields are allowed at the root of the schema if the status subresource is enabled",
            )
        })
    };
    assert!(!refused(json!({})));
    assert!(!refused(
        json!({"nullable": false, "$schema": "", "id": "", "default": null})
    ));
    assert!(!refused(
        json!({"description": "d", "required": ["spec"], "x-kubernetes-preserve-unknown-fields": true})
    ));
    assert!(refused(json!({"enum": []})));
    assert!(refused(json!({"allOf": []})));
    assert!(refused(
        json!({"$schema": "http://json-schema.org/draft-04/schema#"})
    ));
    assert!(refused(json!({"minProperties": 0})));
    // The root type must be "object"; an empty one is the zero value and skipped here.
    let wrong_type = validate_crd(
        &with_status(json!({"type": "array", "items": {"type": "string"}})),
        None,
    );
    assert!(
        wrong_type.iter().any(|e| e.message
            == "spec.validation.openAPIV3Schema.type: Invalid value: \"array\": only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled"),
        "{wrong_type:?}"
    );
}

// validation.go `requireValidPropertyType`: an update keeps accepting types outside OpenAPI
// v3's (`specHasInvalidTypes`, looking through properties, items and the rest) only when the
// stored CRD had such a type already; a create, or an update of a CRD without one, refuses
// them.
#[test]
fn invalid_types_are_ratcheted_on_update() {
    let schema = |item_type: &str| {
        spec_schema(
            json!({"type": "object", "properties": {"list": {"type": "array",
            "items": {"type": item_type}}}}),
        )
    };
    let unsupported = |errors: &[kube_admission::FieldError]| {
        errors.iter().any(|e| {
            e.field.ends_with("properties[list].items.type")
                && e.detail.starts_with("supported values")
        })
    };
    let invalid = crd_with(schema("text"));
    let valid = crd_with(schema("string"));
    assert!(unsupported(&validate_crd(&invalid, None)));
    assert!(unsupported(&validate_crd(&invalid, Some(&valid))));
    let mut changed = invalid.clone();
    changed["metadata"]["labels"] = json!({"changed": "yes"});
    assert!(!unsupported(&validate_crd(&changed, Some(&invalid))));
}

/// The errors `validate_crd` gives for `spec.list` with this schema, as messages.
fn list_errors(list: Value) -> Vec<String> {
    let schema = spec_schema(json!({"type": "object", "properties": {"list": list}}));
    validate_crd(&crd_with(schema), None)
        .into_iter()
        .map(|e| e.message)
        .collect()
}

// validation.go, the x-kubernetes-list-type checks: object items of a set must be atomic maps
// (a nil `XMapType` prints as "null", apimachinery field.Error's nil pointer); a map list
// needs one item schema (missing: Required; an array of schemas: Invalid).
#[test]
fn set_and_map_lists_need_the_right_items() {
    let at = "spec.validation.openAPIV3Schema.properties[spec].properties[list]";
    let set_of = |map_type: Value| {
        let mut items = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        if !map_type.is_null() {
            items["x-kubernetes-map-type"] = map_type;
        }
        list_errors(json!({"type": "array", "x-kubernetes-list-type": "set", "items": items}))
    };
    assert_eq!(set_of(json!("atomic")), Vec::<String>::new());
    assert_eq!(
        set_of(Value::Null),
        vec![format!(
            "{at}.items.x-kubernetes-map-type: Invalid value: \"null\": must be atomic as item of a list with x-kubernetes-list-type=set"
        )]
    );
    let no_items = list_errors(json!({"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["a"]}));
    assert!(
        no_items.contains(&format!(
            "{at}.items: Required value: must have a schema if x-kubernetes-list-type is map"
        )),
        "{no_items:?}"
    );
    assert!(
        !no_items
            .iter()
            .any(|m| m.contains("must only have a single schema")),
        "{no_items:?}"
    );
    let item_array = list_errors(json!({"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["a"], "items": [{"type": "object"}]}));
    assert!(
        item_array
            .iter()
            .any(|m| m.starts_with(&format!("{at}.items: Invalid value: "))
                && m.ends_with("must only have a single schema if x-kubernetes-list-type is map")),
        "{item_array:?}"
    );
}

// apiextensions-apiserver pkg/apiserver/schema/convert.go `validateUnsupportedFields`: the
// structural conversion refuses `id`, `$schema`, `$ref`, `patternProperties`, `dependencies`
// and `definitions` only when not empty (`len(…) > 0`), `additionalItems` whenever present.
#[test]
fn the_structural_conversion_refuses_only_set_unsupported_fields() {
    let errors = |extra: Value| {
        let mut schema = json!({"type": "object"});
        if let (Some(o), Value::Object(extra)) = (schema.as_object_mut(), extra) {
            o.extend(extra);
        }
        validate_crd(&crd_with(schema), None)
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
    };
    for empty in [
        json!({"$schema": ""}),
        json!({"id": ""}),
        json!({"id": null}),
        json!({"patternProperties": {}}),
        json!({"definitions": {}}),
    ] {
        assert_eq!(errors(empty.clone()), Vec::<String>::new(), "{empty}");
    }
    assert_eq!(
        errors(json!({"$schema": "http://json-schema.org/draft-04/schema#"})),
        vec![
            "spec.validation.openAPIV3Schema: Invalid value: \"\": OpenAPIV3Schema 'schema' is not supported"
        ]
    );
}

// defaulting/validation.go: a default of an embedded resource's metadata that fails the
// ObjectMeta checks is "must result in valid metadata: " and the errors' aggregate
// (apimachinery `aggregate.Error`: one message as is, several in brackets).
#[test]
fn invalid_metadata_defaults_name_every_problem() {
    let detail = |labels: Value| {
        let schema = spec_schema(json!({"type": "object", "properties": {"e": {
            "type": "object", "x-kubernetes-embedded-resource": true,
            "properties": {"kind": {"type": "string"}, "apiVersion": {"type": "string"},
                "metadata": {"type": "object", "default": {"labels": labels}}}}}}));
        let errors = validate_crd(&crd_with(schema), None);
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors[0].detail.clone()
    };
    let one = detail(json!({"bad key!": "x"}));
    assert!(
        one.starts_with(
            "must result in valid metadata: metadata.labels: Invalid value: \"bad key!\""
        ),
        "{one}"
    );
    let two = detail(json!({"bad key!": "x", "worse key!": "y"}));
    assert!(
        two.starts_with(
            "must result in valid metadata: [metadata.labels: Invalid value: \"bad key!\""
        ) && two.contains(", metadata.labels: Invalid value: \"worse key!\"")
            && two.ends_with(']'),
        "{two}"
    );
}

// apiextensions-apiserver pkg/apiserver/schema/cel/validation.go `ValidFieldPath`: a rule's
// fieldPath may name a declared property (`.a`, `['a']`, a single-quoted name only, where `\'`
// does not close the quote) or any key of a map (`additionalProperties`).
#[test]
fn field_paths_follow_properties_and_map_keys() {
    let refused = |field_path: &str| {
        let schema = spec_schema(json!({"type": "object",
            "properties": {"a": {"type": "string"}, "a'b": {"type": "string"},
                "m": {"type": "object", "additionalProperties": {"type": "string"}}},
            "x-kubernetes-validations": [{"rule": "true", "fieldPath": field_path}]}));
        validate_crd(&crd_with(schema), None)
            .iter()
            .any(|e| e.detail == "must be a valid path")
    };
    for ok in [".a", "['a']", ".m.k", ".m['any key']", "['a\\'b']"] {
        assert!(!refused(ok), "{ok}");
    }
    for bad in [".b", "[xa']", "['a", "['", "[a]", ".a.b"] {
        assert!(refused(bad), "{bad}");
    }
}

// apiextensions-apiserver pkg/apiserver/schema/validation.go: junctors hold value validations
// only (`type` in a branch is "must be empty to be structural"), except the int-or-string
// pattern `anyOf: [{type: integer}, {type: string}]` (`isIntOrStringAnyOfPattern`, exactly
// that list in that order, and under `anyOf` only).
#[test]
fn only_the_int_or_string_any_of_may_name_types() {
    let errors = |junctor: &str, branches: Value| {
        let mut p = json!({"x-kubernetes-int-or-string": true});
        p[junctor] = branches;
        list_errors(p)
    };
    let pair = json!([{"type": "integer"}, {"type": "string"}]);
    assert_eq!(errors("anyOf", pair.clone()), Vec::<String>::new());
    let at = "spec.validation.openAPIV3Schema.properties[spec].properties[list]";
    let typed = |junctor: &str| {
        vec![
            format!("{at}.{junctor}[0].type: Forbidden: must be empty to be structural"),
            format!("{at}.{junctor}[1].type: Forbidden: must be empty to be structural"),
        ]
    };
    assert_eq!(errors("allOf", pair), typed("allOf"));
    assert_eq!(
        errors("anyOf", json!([{"type": "string"}, {"type": "integer"}])),
        typed("anyOf")
    );
    assert_eq!(
        errors("anyOf", json!([{"type": "integer"}, {"type": "integer"}])),
        typed("anyOf")
    );
    assert_eq!(
        errors(
            "anyOf",
            json!([{"type": "integer"}, {"type": "string"}, {"maxLength": 3}])
        ),
        typed("anyOf")
    );
}

// validation.go `validateStructuralMetadataInvariants`: the root's `metadata` may say nothing
// but `type: object` and string `name`/`generateName` properties; a field that decodes to its
// zero value (null) says nothing.
#[test]
fn root_metadata_may_hold_nulls_but_nothing_else() {
    let errors = |meta: Value| {
        validate_crd(
            &crd_with(json!({"type": "object", "properties": {"metadata": meta}})),
            None,
        )
        .len()
    };
    assert_eq!(errors(json!({"type": "object", "description": null})), 0);
    assert_eq!(errors(json!({"type": "object", "description": "d"})), 1);
}

// validation.go: a rule's (or messageExpression's) estimated cost times its cardinality is
// refused when it passes StaticEstimatedCostLimit (10,000,000), not when it reaches it; with no
// bound above, the cardinality is compilation.go's `maxCardinality`, MaxRequestSizeBytes /
// (the item's smallest serialised size + 1): 3,145,728 / 3 for strings.
#[test]
fn per_expression_costs_are_refused_past_the_limit_and_unbounded_lists_count() {
    let costly = |n: u64| {
        let rule = "size(self) >= 0 && self.all(x, x >= 0)";
        let schema = spec_schema(json!({"type": "object", "properties": {"l": {
            "type": "array", "maxItems": n, "items": {"type": "integer"},
            "x-kubernetes-validations": [
                {"rule": rule},
                {"rule": "size(self) >= 0", "messageExpression": format!("{rule} ? 'a' : 'b'")}]}}}));
        let reports = compile_rules(&schema);
        (reports[0].max_cost, validate_crd(&crd_with(schema), None))
    };
    // 5·n + 5: exactly the limit at 1,999,999 items.
    let (cost, errors) = costly(1_999_999);
    assert_eq!(cost, Some(10_000_000));
    assert_eq!(errors, vec![]);
    let (_, errors) = costly(2_000_000);
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    let at =
        "spec.validation.openAPIV3Schema.properties[spec].properties[l].x-kubernetes-validations";
    assert_eq!(
        fields,
        vec![
            format!("{at}[0].rule"),
            format!("{at}[1].messageExpression")
        ],
        "{errors:?}"
    );

    // 12 per string, 1,048,576 strings at most: 12,582,912.
    let schema = spec_schema(json!({"type": "object", "properties": {"unbounded": {
        "type": "array", "items": {"type": "string", "maxLength": 5, "x-kubernetes-validations": [
            {"rule": "self.size() < 3 && self.size() < 4 && self.size() < 5 && self.size() < 6"}]}}}}));
    assert_eq!(compile_rules(&schema)[0].max_cost, Some(12));
    assert_eq!(
        messages(&validate_crd(&crd_with(schema), None)),
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].properties[unbounded].items.x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of 1.258291x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
        ]
    );
}

// validation.go `unescapeSingleQuote`: a quoted fieldPath name may use the escapes \a \b \f \n
// \r \t \v \' and \\; any other escape makes the path invalid. (A name cannot end in a
// backslash: the scanner, like the server's, takes `\'` as no closing quote.)
#[test]
fn quoted_field_path_names_unescape_like_the_server() {
    let cases = [
        ("a", "\u{7}"),
        ("b", "\u{8}"),
        ("f", "\u{c}"),
        ("n", "\n"),
        ("r", "\r"),
        ("t", "\t"),
        ("v", "\u{b}"),
        ("'", "'"),
        ("\\", "\\"),
    ];
    let mut props = serde_json::Map::new();
    for (_, c) in cases {
        props.insert(format!("x{c}y"), json!({"type": "string"}));
    }
    let valid = |field_path: String| {
        let schema = spec_schema(json!({"type": "object", "properties": props.clone(),
            "x-kubernetes-validations": [{"rule": "true", "fieldPath": field_path}]}));
        validate_crd(&crd_with(schema), None).is_empty()
    };
    for (escape, _) in cases {
        assert!(valid(format!("['x\\{escape}y']")), "\\{escape}");
    }
    assert!(!valid("['x\\qy']".to_string()));
}

// cel_validation.go `CELSchemaContext.TypeInfo`: a node whose type cannot be declared for CEL
// (no `type`, under x-kubernetes-preserve-unknown-fields: `SchemaDeclType` returns nil) passes
// its error to every node with rules below it, even one whose own schema would convert.
#[test]
fn a_parents_conversion_error_reaches_the_rules_below() {
    let schema = spec_schema(json!({"x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-validations": [{"rule": "true"}],
        "properties": {"p": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self != 'x'"}]}}}));
    let detail = "internal error: failed to construct type information for x-kubernetes-validations rules: unable to convert structural schema to CEL declarations";
    let at = "spec.validation.openAPIV3Schema.properties[spec]";
    let errors = validate_crd(&crd_with(schema), None);
    let mut got: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.field.as_str(), e.detail.as_str()))
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![
            (
                format!("{at}.properties[p].x-kubernetes-validations").as_str(),
                detail
            ),
            (format!("{at}.x-kubernetes-validations").as_str(), detail),
        ]
    );
}

// validation.go runs the structural checks only on a schema `NewStructural` converts; it
// refuses any `additionalItems`, even `{}` (a non-nil pointer), so a schema with one gets the
// keyword's own error and not the structural errors elsewhere.
#[test]
fn an_empty_additional_items_stops_the_structural_checks() {
    let schema = spec_schema(json!({"type": "object", "properties": {
        "list": {"type": "array", "items": {"type": "string"}, "additionalItems": {}},
        "untyped": {"description": "no type"}}}));
    assert_eq!(
        messages(&validate_crd(&crd_with(schema), None)),
        vec![
            "spec.validation.openAPIV3Schema.properties[spec].properties[list].additionalItems: Forbidden: additionalItems is not supported"
        ]
    );
}
