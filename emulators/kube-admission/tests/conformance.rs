//! Conformance of CRD CEL compilation, cost estimation and CRD validation with kube-apiserver 1.32,
//! from the upstream tests' own tables.
//!
//! Every file in `tests/conformance/` is one upstream test (its `source` names the repository,
//! file, test and the commit read: the v0.32.13 tags of `kubernetes/apiextensions-apiserver` and
//! `kubernetes/apiserver`), translated from the Go struct literals into `openAPIV3Schema` JSON.
//! Each case's `expect` holds what the upstream test asserts:
//!
//! - `rules`: the [`RuleReport`] of `compile_rules` at `schema_path`/`index`: `compiles` (no
//!   error), `error_contains`, `max_cost`, `max_cost_at_least`, `max_cardinality` (`null` =
//!   unbounded);
//! - `crd_errors`: errors `validate_crd` must return for the schema in a minimal v1 CRD (or for
//!   the case's whole `crd`, updating `old_crd` when given), by `field`, `type` (the
//!   `FieldErrorKind` variant) and optionally `detail_contains` / `message_contains`; the whole
//!   list unless `crd_errors_exact` is `false`; `crd_ok`: `validate_crd` returns nothing;
//! - `runtime`: objects `CompiledSchema::admit` must accept (`admitted`), on create or, with
//!   `old_object`, on update. `rule_costs` records the runtime cost upstream measures per rule;
//!   the contract exposes no runtime cost, so it is documentation only.
//!
//! All mismatches are collected and reported together, so one run shows the whole picture.
//! Every case must agree: there are no known evaluation gaps any more (`no_rule_evaluates_
//! differently_from_upstream` names the rules of any admission that regresses).
//!
//! Upstream cases left out (each file's `skipped` lists them with the reason):
//! - compilation_test.go TestCelCompilation "unmodified expression may use CEL environment
//!   features planned to be added in future releases": needs a test-only CEL library
//!   (`fakeFunction`) in the stored-expressions environment; the server has no such function.
//! - validation_test.go TestValidateCustomResourceDefinitionValidation: cases with
//!   `statusEnabled` (the wrapper CRD has no status subresource); cases run with options looser
//!   than a v1 create that expect no error (a v1 create may legitimately refuse them, so there is
//!   nothing to assert); "empty" (no schema); the escaping case run with the 1.30 CEL
//!   environment (a 1.32 server compiles new rules with compatibility version 1.31).
//! - validation_test.go TestValidateCustomResourceDefinition: conversion webhook configurations
//!   (outside the schema and CEL checks), `preserveUnknownFields: true` (a v1 CRD cannot be
//!   created with it), internal-only shapes that v1 JSON cannot express (no versions, a
//!   top-level version differing from the first version, `status.acceptedNames`, identical
//!   per-version schemas), and three cases whose Go literals use constructs the translation
//!   does not evaluate (local variables, `jsonPtr` of a Go func result).
//!   TestValidateCustomResourceDefinitionUpdate: only the two CEL cost cases are translated.
//! - cost_test.go (kubernetes/apiserver pkg/cel/library): only bool-valued expressions can be
//!   rules, so TestListsCost and TestIndexOfCost (int and list results), the non-bool rows of
//!   TestStringLibrary, TestQuantityCost, TestIPCost (`family()`), TestCIDRCost (`ip()`,
//!   `prefixLength()`, `masked()`), TestURLsCost (getters) and TestNameFormatCost are left out;
//!   TestAuthzLibrary needs the `authorizer` variable, which CRD rules do not have;
//!   TestTwoVariableComprehensionCost needs two-variable comprehensions, which arrive with
//!   compatibility version 1.32 while a 1.32 server compiles new rules with 1.31; TestSize and
//!   TestTypeEquality test the estimator's Go interface, not expressions. TestSetsCost rows
//!   with mixed-type list literals (`[1u, 1.0]`) are left out: the server's environment refuses
//!   them (`cel.HomogeneousAggregateLiterals` in `pkg/cel/environment/base.go`), the test's own
//!   environment does not.
//! - celcoststability_test.go: nothing; the runtime costs are kept but not compared (see above).
//!
//! Features outside CRD validation (ValidatingAdmissionPolicy variables, feature gates off by
//! default in 1.32) do not occur in the translated tables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kube_admission::{CompiledSchema, FieldError, RuleReport, compile_rules, validate_crd};
use serde_json::{Map, Value, json};

/// The minimal CRD the schema is validated in: one served and stored version `v1` of
/// `examples.example.com`, namespaced.
fn crd_with(schema: &Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "examples.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {
                "plural": "examples",
                "singular": "example",
                "kind": "Example",
                "listKind": "ExampleList",
            },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    })
}

/// An upstream object as a custom resource: apiVersion, kind and metadata.name are added where
/// the upstream object (which the Go validator takes without them) has none.
fn as_resource(object: &Value) -> Result<Value, String> {
    let Value::Object(fields) = object else {
        return Err(format!("runtime object is not a JSON object: {object}"));
    };
    let mut fields = fields.clone();
    fields
        .entry("apiVersion")
        .or_insert_with(|| json!("example.com/v1"));
    fields.entry("kind").or_insert_with(|| json!("Example"));
    let metadata = fields
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(metadata) = metadata {
        metadata
            .entry("name")
            .or_insert_with(|| json!("conformance"));
    }
    Ok(Value::Object(fields))
}

/// What one group contributed to the run.
#[derive(Default)]
struct Tally {
    cases: usize,
    rule_checks: usize,
    crd_checks: usize,
    runtime_checks: usize,
}

#[derive(Default)]
struct Run {
    /// `(group/case, description)` of every disagreement.
    mismatches: Vec<(String, String)>,
    /// `group/case` of every case with at least one mismatch.
    failing: std::collections::BTreeSet<String>,
    /// For admissions refused against upstream: `group/case` and the rules whose evaluation
    /// disagreed (the text after the error's last `rule: `), or the compilation error.
    refused_rules: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl Run {
    fn mismatch(&mut self, group: &str, case: &str, what: String) {
        let id = format!("{group}/{case}");
        self.mismatches
            .push((id.clone(), format!("[{group}] {case}: {what}")));
        self.failing.insert(id);
    }

    fn refused(&mut self, group: &str, case: &str, rule: String) {
        self.refused_rules
            .entry(format!("{group}/{case}"))
            .or_default()
            .insert(rule);
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn describe_report(r: &RuleReport) -> String {
    format!(
        "{{schema_path: {:?}, index: {}, rule: {:?}, max_cost: {:?}, max_cardinality: {:?}, error: {:?}}}",
        r.schema_path, r.index, r.rule, r.max_cost, r.max_cardinality, r.error
    )
}

fn describe_error(e: &FieldError) -> String {
    format!("{:?} {}", e.kind, e.message)
}

/// Compares the reports of `compile_rules` with the expected rules.
fn check_rules(run: &mut Run, group: &str, case: &str, schema: &Value, expected: &[Value]) {
    let reports = compile_rules(schema);
    for exp in expected {
        let path = str_field(exp, "schema_path").unwrap_or_default();
        let Some(index) = exp.get("index").and_then(Value::as_u64) else {
            run.mismatch(group, case, format!("expectation without index: {exp}"));
            continue;
        };
        let found = reports
            .iter()
            .find(|r| r.schema_path == path && u64::try_from(r.index).ok() == Some(index));
        let Some(report) = found else {
            let got: Vec<String> = reports.iter().map(describe_report).collect();
            run.mismatch(
                group,
                case,
                format!("expected a report for {path:?}[{index}], got {got:?}"),
            );
            continue;
        };
        let mut wrong = Vec::new();
        if exp.get("compiles").and_then(Value::as_bool) == Some(true) && report.error.is_some() {
            wrong.push("expected to compile".to_string());
        }
        if let Some(needle) = str_field(exp, "error_contains") {
            match &report.error {
                Some(error) if error.contains(needle) => {}
                _ => wrong.push(format!("expected an error containing {needle:?}")),
            }
        }
        if let Some(cost) = exp.get("max_cost")
            && report.max_cost != cost.as_u64()
        {
            wrong.push(format!("expected max_cost {cost}"));
        }
        if let Some(least) = exp.get("max_cost_at_least").and_then(Value::as_u64)
            && report.max_cost.is_none_or(|c| c < least)
        {
            wrong.push(format!("expected max_cost of at least {least}"));
        }
        // max_cardinality null: unbounded
        if let Some(card) = exp.get("max_cardinality")
            && report.max_cardinality != card.as_u64()
        {
            wrong.push(format!("expected max_cardinality {card}"));
        }
        if !wrong.is_empty() {
            run.mismatch(
                group,
                case,
                format!("{}; got {}", wrong.join(", "), describe_report(report)),
            );
        }
    }
}

/// Whether `e` is what `exp` describes (`field`, `type`, `detail_contains`, `message_contains`).
fn error_matches(exp: &Value, e: &FieldError) -> bool {
    str_field(exp, "field") == Some(e.field.as_str())
        && str_field(exp, "type") == Some(format!("{:?}", e.kind).as_str())
        && str_field(exp, "detail_contains").is_none_or(|s| e.detail.contains(s))
        && str_field(exp, "message_contains").is_none_or(|s| e.message.contains(s))
}

fn check_crd(
    run: &mut Run,
    group: &str,
    case: &str,
    crd: &Value,
    old: Option<&Value>,
    expect: &Value,
) {
    let errors = validate_crd(crd, old);
    let got = || errors.iter().map(describe_error).collect::<Vec<_>>();
    if expect.get("crd_ok").and_then(Value::as_bool) == Some(true) && !errors.is_empty() {
        run.mismatch(
            group,
            case,
            format!("expected the CRD to be valid, got {:?}", got()),
        );
    }
    let Some(expected) = expect.get("crd_errors").and_then(Value::as_array) else {
        return;
    };
    // Each expected error takes a distinct returned error, as the upstream test matches them.
    let mut taken = vec![false; errors.len()];
    let mut missing = Vec::new();
    for exp in expected {
        let hit = errors
            .iter()
            .enumerate()
            .position(|(i, e)| !taken[i] && error_matches(exp, e));
        match hit {
            Some(i) => taken[i] = true,
            None => missing.push(exp.to_string()),
        }
    }
    let exact = expect
        .get("crd_errors_exact")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let unexpected: Vec<String> = errors
        .iter()
        .zip(&taken)
        .filter(|(_, t)| exact && !**t)
        .map(|(e, _)| describe_error(e))
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        run.mismatch(
            group,
            case,
            format!(
                "missing errors {missing:?}; unexpected errors {unexpected:?}; all errors {:?}",
                got()
            ),
        );
    }
}

fn check_runtime(run: &mut Run, group: &str, case: &str, schema: &Value, expected: &[Value]) {
    let compiled = match CompiledSchema::compile(schema) {
        Ok(c) => c,
        Err(e) => {
            run.mismatch(group, case, format!("schema does not compile: {e}"));
            run.refused(group, case, "schema does not compile".to_string());
            return;
        }
    };
    for exp in expected {
        let mut object = match exp.get("object").map(as_resource) {
            Some(Ok(o)) => o,
            Some(Err(e)) => {
                run.mismatch(group, case, e);
                continue;
            }
            None => {
                run.mismatch(
                    group,
                    case,
                    "runtime expectation without object".to_string(),
                );
                continue;
            }
        };
        let old = match exp.get("old_object") {
            None | Some(Value::Null) => None,
            Some(o) => match as_resource(o) {
                Ok(o) => Some(o),
                Err(e) => {
                    run.mismatch(group, case, e);
                    continue;
                }
            },
        };
        let admitted = exp.get("admitted").and_then(Value::as_bool).unwrap_or(true);
        match (compiled.admit(&mut object, old.as_ref()), admitted) {
            (Ok(()), true) => {}
            (Err(errors), true) => {
                let got: Vec<String> = errors.iter().map(describe_error).collect();
                run.mismatch(group, case, format!("expected admission, got {got:?}"));
                for e in &errors {
                    let rule = e
                        .message
                        .rsplit_once("rule: ")
                        .map_or(e.message.as_str(), |(_, r)| r);
                    run.refused(group, case, rule.to_string());
                }
            }
            (Ok(()), false) => {
                run.mismatch(group, case, "expected a refusal, got admission".to_string());
            }
            (Err(errors), false) => {
                if let Some(needle) = str_field(exp, "error_contains")
                    && !errors.iter().any(|e| e.message.contains(needle))
                {
                    let got: Vec<String> = errors.iter().map(describe_error).collect();
                    run.mismatch(
                        group,
                        case,
                        format!("expected a refusal containing {needle:?}, got {got:?}"),
                    );
                }
            }
        }
    }
}

fn data_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Runs every case of every group; the disagreements, the tallies by group and the total.
fn run_table() -> (Run, BTreeMap<String, Tally>, usize) {
    let mut run = Run::default();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();

    for file in data_files() {
        let group = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()));
        assert!(
            str_field(&doc, "source").is_some_and(|s| !s.is_empty()),
            "{}: every group names its upstream source",
            file.display()
        );
        let cases = doc
            .get("cases")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{}: no cases", file.display()));
        let tally = tallies.entry(group.clone()).or_default();

        for case in cases {
            let name = str_field(case, "name").unwrap_or("<unnamed>");
            let Some(expect) = case.get("expect") else {
                run.mismatch(&group, name, "case without expect".to_string());
                continue;
            };
            // `schema`: an openAPIV3Schema, put into the minimal CRD for validate_crd;
            // `crd` (and `old_crd` for an update): whole CRDs, for validate_crd only.
            let schema = case.get("schema");
            let crd = case.get("crd").cloned().or_else(|| schema.map(crd_with));
            let Some(crd) = crd else {
                run.mismatch(&group, name, "case without schema or crd".to_string());
                continue;
            };
            tally.cases += 1;
            let mut checked = false;
            if let Some(rules) = expect.get("rules").and_then(Value::as_array) {
                match schema {
                    Some(schema) => check_rules(&mut run, &group, name, schema, rules),
                    None => run.mismatch(&group, name, "rules expected without schema".to_string()),
                }
                tally.rule_checks += rules.len();
                checked = true;
            }
            if expect.get("crd_errors").is_some() || expect.get("crd_ok").is_some() {
                check_crd(&mut run, &group, name, &crd, case.get("old_crd"), expect);
                tally.crd_checks += 1;
                checked = true;
            }
            if let Some(runtime) = expect.get("runtime").and_then(Value::as_array) {
                match schema {
                    Some(schema) => check_runtime(&mut run, &group, name, schema, runtime),
                    None => {
                        run.mismatch(&group, name, "runtime expected without schema".to_string())
                    }
                }
                tally.runtime_checks += runtime.len();
                checked = true;
            }
            if !checked {
                run.mismatch(&group, name, "case asserts nothing".to_string());
            }
        }
    }

    let total: usize = tallies.values().map(|t| t.cases).sum();
    (run, tallies, total)
}

#[test]
fn upstream_conformance_table() {
    let (run, tallies, total) = run_table();
    let disagreeing = run.failing.len();
    let mismatches: Vec<&str> = run.mismatches.iter().map(|(_, m)| m.as_str()).collect();
    for (group, t) in &tallies {
        println!(
            "conformance {group}: {} cases ({} rule reports, {} CRD validations, {} admissions checked)",
            t.cases, t.rule_checks, t.crd_checks, t.runtime_checks
        );
    }
    println!(
        "conformance total: {total} cases in {} groups, {disagreeing} disagreeing with upstream ({} mismatches)",
        tallies.len(),
        mismatches.len()
    );
    assert!(
        total >= 40,
        "expected at least 40 conformance cases, ran {total}"
    );
    assert!(
        mismatches.is_empty(),
        "{disagreeing} of {total} conformance cases disagree with upstream:\n{}",
        mismatches.join("\n")
    );
}

/// No upstream admission is refused: every rule of the runtime tables (sets and map lists
/// compared and added by the server's rules, optionals, `%e`) evaluates as cel-go does. Names
/// the rules of any admission that regresses.
#[test]
fn no_rule_evaluates_differently_from_upstream() {
    let (run, _, total) = run_table();
    assert_eq!(total, 453, "the translated upstream tables hold 453 cases");
    assert!(
        run.refused_rules.is_empty(),
        "admissions refused against upstream, by the rules that disagreed: {:#?}",
        run.refused_rules
    );
}
