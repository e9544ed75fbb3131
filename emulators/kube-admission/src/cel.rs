//! `x-kubernetes-validations` rules, evaluated node by node like kube-apiserver's CEL validator:
//! `self` is the node's value, `oldSelf` the correlated stored value on update. Transition rules
//! run only where an old value exists; other rules are skipped where the value is unchanged
//! (ratcheting).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use kube_cel::KubeCelExt;
use kube_cel::cel::objects::{Key, Map as CelMap};
use kube_cel::cel::{Context, ExecutionError, Value as Cel};
use serde_json::Value;

use crate::error::{FieldError, FieldErrorKind};
use crate::needs::Need;
use crate::schema::{Format, ListType, Node, Rule};
use crate::validate::correlate;

thread_local! {
    /// A context with the Kubernetes CEL libraries registered; building one is not free, and
    /// `cel::Context` cannot be shared between threads.
    static BASE: Context<'static> = base_context();
}

/// The Kubernetes libraries, plus what cel-go's standard environment has and the interpreter
/// lacks: `type()` with the type identifiers, and `size()` of a string in code points.
fn base_context() -> Context<'static> {
    let mut ctx = Context::default().with_all();
    ctx.add_function("type", cel_type);
    ctx.add_function("size", cel_size);
    ctx.add_function("string", cel_string);
    ctx.add_function("format", cel_format);
    crate::comprehensions::register(&mut ctx);
    crate::program::register(&mut ctx);
    for name in [
        "int",
        "uint",
        "double",
        "bool",
        "string",
        "bytes",
        "list",
        "map",
        "null_type",
    ] {
        ctx.add_variable_from_value(name, type_value(name));
    }
    let protobuf: HashMap<String, Cel> = [
        (
            "Duration".to_string(),
            type_value("google.protobuf.Duration"),
        ),
        (
            "Timestamp".to_string(),
            type_value("google.protobuf.Timestamp"),
        ),
    ]
    .into_iter()
    .collect();
    let google: HashMap<String, Cel> = [("protobuf".to_string(), Cel::from(protobuf))]
        .into_iter()
        .collect();
    ctx.add_variable_from_value("google", Cel::from(google));
    ctx
}

/// A CEL type value (`int`, `type(x)`): compared by name.
#[derive(Debug, PartialEq, Eq)]
struct CelType(String);

impl kube_cel::cel::objects::Opaque for CelType {
    fn runtime_type_name(&self) -> &str {
        "type"
    }
}

fn type_value(name: &str) -> Cel {
    Cel::Opaque(Arc::new(CelType(name.to_string())))
}

/// cel-go `type(x)`: the type of a value, by the names cel-go gives them.
fn cel_type(
    _ftx: &kube_cel::cel::FunctionContext,
    kube_cel::cel::extractors::This(v): kube_cel::cel::extractors::This<Cel>,
) -> Result<Cel, ExecutionError> {
    let name = cel_type_name(&v);
    Ok(type_value(name))
}

/// CEL `string()`; a timestamp reads as Go's `time.RFC3339Nano` (cel-go `Timestamp.ConvertToType`):
/// fraction without trailing zeros, `Z` for UTC, the offset kept otherwise.
fn cel_string(
    ftx: &kube_cel::cel::FunctionContext,
    kube_cel::cel::extractors::This(this): kube_cel::cel::extractors::This<Cel>,
) -> Result<Cel, ExecutionError> {
    match this {
        Cel::Timestamp(t) => Ok(string(&rfc3339_nano(&t))),
        // Everything else as the Kubernetes libraries convert it (`string(ip(...))` included).
        other => KUBE_STRING.with(|k| match k {
            Some((ctx, program)) => {
                let mut scope = ctx.new_inner_scope();
                scope.add_variable_from_value("x", other);
                program.execute(&scope)
            }
            None => kube_cel::cel::functions::string(ftx, kube_cel::cel::extractors::This(other)),
        }),
    }
}

/// cel-go `ext/strings.go` `format()`: durations and timestamps given directly print as their
/// `string()` (`60s`, RFC 3339); the rest is the Kubernetes libraries' formatting.
fn cel_format(
    ftx: &kube_cel::cel::FunctionContext,
    kube_cel::cel::extractors::This(this): kube_cel::cel::extractors::This<Cel>,
    args: Cel,
) -> Result<Cel, ExecutionError> {
    // `%e` clauses are printed here (cel-go's locale printer), handed on as `%s`.
    let (this, scientific) = match &this {
        Cel::String(f) => {
            let (rewritten, at) = scientific_clauses(f);
            (string(&rewritten), at)
        }
        _ => (this, Vec::new()),
    };
    if let Cel::List(items) = &args
        && let Some(bad) = scientific
            .iter()
            .filter_map(|&i| items.get(i))
            .find(|v| match v {
                Cel::Float(_) => false,
                Cel::String(s) => !matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity"),
                _ => true,
            })
    {
        return Err(ftx.error(format!(
            "error during formatting: scientific clause can only be used on doubles, was given {}",
            cel_type_name(bad)
        )));
    }
    let args = match args {
        Cel::List(items) => Cel::List(Arc::new(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Cel::Float(x) if scientific.contains(&i) => string(&scientific_text(*x)),
                    Cel::String(s)
                        if scientific.contains(&i)
                            && matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") =>
                    {
                        let x = match s.as_str() {
                            "NaN" => f64::NAN,
                            "Infinity" => f64::INFINITY,
                            _ => f64::NEG_INFINITY,
                        };
                        string(&scientific_text(x))
                    }
                    Cel::Duration(d) => string(&go_duration_seconds(d)),
                    Cel::Timestamp(t) => string(&rfc3339_nano(t)),
                    other => other.clone(),
                })
                .collect(),
        )),
        other => other,
    };
    KUBE_FORMAT.with(|k| match k {
        Some((ctx, program)) => {
            let mut scope = ctx.new_inner_scope();
            scope.add_variable_from_value("f", this);
            scope.add_variable_from_value("a", args);
            program.execute(&scope)
        }
        None => Err(ftx.error("format() is unavailable")),
    })
}

/// The format string with every `%e` / `%.Ne` clause turned into `%s`, and the indexes of the
/// arguments those clauses print.
fn scientific_clauses(format: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(format.len());
    let mut at = Vec::new();
    let mut arg = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push_str("%%");
            continue;
        }
        let mut clause = String::from("%");
        while let Some(&d) = chars.peek() {
            if d == '.' || d.is_ascii_digit() {
                clause.push(d);
                chars.next();
            } else {
                break;
            }
        }
        match chars.next() {
            Some('e') => {
                // cel-go passes the precision to the printer as a width (`%6e`), so the
                // mantissa always has six decimals.
                out.push_str("%s");
                at.push(arg);
            }
            Some(v) => {
                out.push_str(&clause);
                out.push(v);
            }
            None => out.push_str(&clause),
        }
        arg += 1;
    }
    (out, at)
}

/// cel-go `%e`: golang.org/x/text's printer for the default locale, `3.140000 × 10⁰⁰`: six
/// decimals, narrow no-break spaces around `×`, the exponent in superscript digits (at least
/// two, `⁻` when negative) (x/text `internal/number/format.go`).
pub(crate) fn scientific_text(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "∞".into() } else { "-∞".into() };
    }
    let plain = format!("{x:.6e}");
    let (mantissa, exp) = plain.split_once('e').unwrap_or((plain.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    const SUPER: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut out = format!("{mantissa}\u{202f}×\u{202f}10");
    if exp < 0 {
        out.push('⁻');
    }
    let digits = format!("{:02}", exp.unsigned_abs());
    out.extend(
        digits
            .bytes()
            .map(|b| SUPER[usize::from(b.saturating_sub(b'0')).min(9)]),
    );
    out
}

fn cel_type_name(v: &Cel) -> &str {
    match v {
        Cel::List(_) => "list",
        Cel::Map(_) => "map",
        Cel::Function(..) => "function",
        Cel::Int(_) => "int",
        Cel::UInt(_) => "uint",
        Cel::Float(_) => "double",
        Cel::String(_) => "string",
        Cel::Bytes(_) => "bytes",
        Cel::Bool(_) => "bool",
        Cel::Duration(_) => "google.protobuf.Duration",
        Cel::Timestamp(_) => "google.protobuf.Timestamp",
        Cel::Null => "null_type",
        Cel::Opaque(o) => o.runtime_type_name(),
    }
}

/// A duration as cel-go converts it to a string: seconds, shortest form, then `s`.
fn go_duration_seconds(d: &chrono::Duration) -> String {
    let nanos = d
        .num_nanoseconds()
        .map_or_else(|| d.num_seconds() as f64, |n| n as f64 / 1_000_000_000.0);
    format!("{nanos}s")
}

thread_local! {
    /// `f.format(a)` in the Kubernetes libraries' own environment.
    static KUBE_FORMAT: Option<(Context<'static>, kube_cel::cel::Program)> =
        kube_cel::cel::Program::compile("f.format(a)")
            .ok()
            .map(|p| (Context::default().with_all(), p));
}

thread_local! {
    /// `string(x)` in the Kubernetes libraries' own environment, for the conversions the
    /// emulator does not change.
    static KUBE_STRING: Option<(Context<'static>, kube_cel::cel::Program)> =
        kube_cel::cel::Program::compile("string(x)")
            .ok()
            .map(|p| (Context::default().with_all(), p));
}

fn rfc3339_nano(t: &chrono::DateTime<chrono::FixedOffset>) -> String {
    use chrono::Timelike;
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    let offset = t.offset().local_minus_utc();
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60));
    }
    out
}

/// CEL `size()`: strings count code points (cel-go `String.Size`), not bytes.
fn cel_size(
    ftx: &kube_cel::cel::FunctionContext,
    kube_cel::cel::extractors::This(this): kube_cel::cel::extractors::This<Cel>,
) -> Result<i64, ExecutionError> {
    let size = match &this {
        Cel::List(l) => l.len(),
        Cel::Map(m) => m.map.len(),
        Cel::String(s) => s.chars().count(),
        Cel::Bytes(b) => b.len(),
        other => return Err(ftx.error(format!("cannot determine the size of {other:?}"))),
    };
    i64::try_from(size).map_err(|_| ftx.error("size out of range"))
}

pub(crate) fn evaluate(root: &Node, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    BASE.with(|base| {
        let mut errors = Vec::new();
        let mut stopped = false;
        let mut budget = Budget::default();
        walk(
            base,
            root,
            object,
            old,
            "",
            true,
            &mut errors,
            &mut stopped,
            &mut budget,
        );
        errors
    })
}

#[allow(clippy::too_many_arguments)]
fn walk<'v>(
    base: &Context<'static>,
    node: &'v Node,
    value: &'v Value,
    old: Option<&'v Value>,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
    stopped: &mut bool,
    budget: &mut Budget<'v>,
) {
    if *stopped || value.is_null() || !node.rules_below {
        return;
    }
    // A stored null is no old value: transition rules need one to compare with.
    let old = old.filter(|o| !o.is_null());
    let unchanged = old.is_some_and(|o| o == value);
    if unchanged && !node.transition_below {
        return;
    }
    let due = |r: &Rule| {
        if r.transition {
            old.is_some() || r.optional_old_self
        } else {
            !unchanged
        }
    };
    if node.rules.iter().any(due) {
        let mut scope = base.new_inner_scope();
        let self_cel = to_cel(Some(node), value, root, &node.cel_need);
        scope.add_variable_from_value("self", self_cel.clone());
        let old_cel = old.map(|o| to_cel(Some(node), o, root, &node.cel_need));
        let mut old_bound = Cel::Null;
        // `oldSelf` is an optional for rules with `optionalOldSelf` (none on create), the old
        // value itself for the others.
        let mut bound_optional: Option<bool> = None;
        for rule in node.rules.iter().filter(|r| due(r)) {
            if bound_optional != Some(rule.optional_old_self) {
                let v = if rule.optional_old_self {
                    crate::program::optional(old_cel.clone())
                } else {
                    old_cel.clone().unwrap_or(Cel::Null)
                };
                scope.add_variable_from_value("oldSelf", v.clone());
                old_bound = v;
                bound_optional = Some(rule.optional_old_self);
            }
            // cel-go cancels an evaluation whose cost passes the per-call limit, and the
            // server then runs no further rules.
            if let Some(cost) = &rule.cost
                && cost
                    .bound(value, old)
                    .is_some_and(|b| b > crate::crd::PER_CALL_LIMIT)
            {
                errors.push(cost_exceeded(node, rule, path));
                *stopped = true;
                return;
            }
            let vars = Vars {
                scope: &scope,
                self_value: &self_cel,
                old_self: &old_bound,
            };
            let result = run(&vars, node, rule, path);
            // The server charges each evaluation's cost to the object's budget and stops, without
            // the rule's own outcome, when it runs out.
            if let Some(cost) = &rule.cost
                && budget.charge(cost, value, old)
            {
                errors.push(budget_exhausted(node, path));
                *stopped = true;
                return;
            }
            let Some((error, message_evaluated)) = result else {
                continue;
            };
            // So is the messageExpression's evaluation, when the rule failed and it ran.
            if message_evaluated
                && let Some(cost) = &rule.message_cost
                && budget.charge(cost, value, old)
            {
                errors.push(message_budget_exhausted(node, rule, path));
                *stopped = true;
                return;
            }
            errors.push(error);
        }
    }
    match value {
        Value::Object(map) => {
            let old_map = old.and_then(Value::as_object);
            for (k, child) in &node.properties {
                if root && k == "metadata" {
                    continue;
                }
                if let Some(v) = map.get(k) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        base,
                        child,
                        v,
                        old_map.and_then(|o| o.get(k)),
                        &p,
                        false,
                        errors,
                        stopped,
                        budget,
                    );
                }
            }
            if let Some(values) = node.map_values() {
                for (k, v) in map {
                    if node.properties.contains_key(k) {
                        continue;
                    }
                    let p = format!("{path}[{k}]");
                    walk(
                        base,
                        values,
                        v,
                        old_map.and_then(|o| o.get(k)),
                        &p,
                        false,
                        errors,
                        stopped,
                        budget,
                    );
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = node.items.as_deref() {
                let old_items = old.and_then(Value::as_array);
                for (i, item) in items.iter().enumerate() {
                    let old_item = old_items.and_then(|o| correlate(node, o, item));
                    let old_self = match node.list_type {
                        // Only map lists give their items an oldSelf.
                        ListType::Map => old_item,
                        // A set element found in the old list is unchanged: its rules are
                        // ratcheted, and without oldSelf no transition rule runs either.
                        ListType::Set if old_item.is_some() => continue,
                        ListType::Set | ListType::Atomic => None,
                    };
                    let p = format!("{path}[{i}]");
                    walk(
                        base, item_node, item, old_self, &p, false, errors, stopped, budget,
                    );
                }
            }
        }
        _ => {}
    }
}

/// apiextensions-apiserver `pkg/apiserver/schema/cel/validation.go` `validateExpressions`: the
/// error once the object's rules have spent more than the runtime budget.
fn budget_exhausted(node: &Node, path: &str) -> FieldError {
    let type_name = if node.int_or_string {
        ""
    } else {
        node.ty.map(|t| t.name()).unwrap_or("")
    };
    FieldError::new(
        FieldErrorKind::Invalid,
        if path.is_empty() { "<nil>" } else { path },
        Some(Value::String(type_name.to_string())),
        "validation failed due to running out of cost budget, no further validation rules will be run",
    )
}

/// The per-object runtime cost budget (apiextensions-apiserver `pkg/apiserver/schema/cel/
/// config` `RuntimeCELCostBudget`): what all rule evaluations of one object may cost together.
pub(crate) const RUNTIME_COST_BUDGET: u64 = 10_000_000;

/// The cost the evaluations of one object have spent. Each evaluation is charged its cost bound
/// at the object's sizes (`CostProgram::actual_bound`). Computing that walks the values, so
/// while the rules' static estimates add up to less than the budget (nearly always) it is not
/// computed at all: the evaluations are only remembered, and priced once the static total
/// passes the budget.
#[derive(Default)]
struct Budget<'v> {
    static_total: u64,
    /// Evaluations not yet priced (while `precise` is false).
    pending: Vec<(&'v crate::check::CostProgram, &'v Value, Option<&'v Value>)>,
    precise: bool,
    spent: u64,
}

impl<'v> Budget<'v> {
    /// Charges one evaluation; true when the budget is exhausted.
    fn charge(
        &mut self,
        cost: &'v crate::check::CostProgram,
        value: &'v Value,
        old: Option<&'v Value>,
    ) -> bool {
        if !self.precise {
            self.static_total = self.static_total.saturating_add(cost.static_max());
            self.pending.push((cost, value, old));
            if self.static_total <= RUNTIME_COST_BUDGET {
                return false;
            }
            self.precise = true;
            for (c, v, o) in std::mem::take(&mut self.pending) {
                self.spent = self.spent.saturating_add(c.actual_bound(v, o).unwrap_or(0));
            }
        } else {
            self.spent = self
                .spent
                .saturating_add(cost.actual_bound(value, old).unwrap_or(0));
        }
        self.spent > RUNTIME_COST_BUDGET
    }
}

/// validation.go `evalMessageExpression`: the error when evaluating a failed rule's
/// messageExpression runs the budget out, at the rule's field.
fn message_budget_exhausted(node: &Node, rule: &Rule, path: &str) -> FieldError {
    let type_name = if node.int_or_string {
        ""
    } else {
        node.ty.map(|t| t.name()).unwrap_or("")
    };
    FieldError::new(
        FieldErrorKind::Invalid,
        rule_field(path, rule.field_path.as_deref()),
        Some(Value::String(type_name.to_string())),
        "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run",
    )
}

/// What a rule is evaluated with: the scope, and the values in it (to rebuild it elsewhere).
struct Vars<'a> {
    scope: &'a Context<'a>,
    self_value: &'a Cel,
    old_self: &'a Cel,
}

/// Syntax trees at most this deep evaluate on the caller's stack; the interpreter recurses
/// once per level, and deeper rules (cel-go accepts 250 levels) run on a thread of their own
/// with a stack large enough for any of them.
const SHALLOW_DEPTH: usize = 24;

fn execute(program: &crate::program::Program, vars: &Vars<'_>) -> kube_cel::cel::ResolveResult {
    if program.depth() <= SHALLOW_DEPTH {
        return program.execute(vars.scope);
    }
    let (self_value, old_self) = (vars.self_value.clone(), vars.old_self.clone());
    crate::check::with_parser_stack(move || {
        BASE.with(|base| {
            let mut scope = base.new_inner_scope();
            scope.add_variable_from_value("self", self_value);
            scope.add_variable_from_value("oldSelf", old_self);
            program.execute(&scope)
        })
    })
    .unwrap_or_else(|| {
        Err(ExecutionError::function_error(
            "rule",
            "internal error evaluating a deeply nested rule",
        ))
    })
}

/// apiextensions-apiserver `validation.go`: the error for an evaluation cancelled by the
/// per-call cost limit.
fn cost_exceeded(node: &Node, rule: &Rule, path: &str) -> FieldError {
    let type_name = if node.int_or_string {
        ""
    } else {
        node.ty.map(|t| t.name()).unwrap_or("")
    };
    let rule_text = rule
        .message
        .as_deref()
        .map(str::trim)
        .unwrap_or_else(|| rule.source.trim());
    FieldError::new(
        FieldErrorKind::Invalid,
        if path.is_empty() { "<nil>" } else { path },
        Some(Value::String(type_name.to_string())),
        format!(
            "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {rule_text}"
        ),
    )
}

/// A rule's error, if it has one, and whether its `messageExpression` was evaluated for it.
fn run(vars: &Vars<'_>, node: &Node, rule: &Rule, path: &str) -> Option<(FieldError, bool)> {
    let mut failed = false;
    let error = run_rule(vars, node, rule, path, &mut failed)?;
    Some((error, failed && rule.message_program.is_some()))
}

/// The rule's error; `failed` is set when it evaluated to false (its message was evaluated),
/// not when its evaluation went wrong.
fn run_rule(
    vars: &Vars<'_>,
    node: &Node,
    rule: &Rule,
    path: &str,
    failed: &mut bool,
) -> Option<FieldError> {
    let type_name = if node.int_or_string {
        ""
    } else {
        node.ty.map(|t| t.name()).unwrap_or("")
    };
    let type_value = Some(Value::String(type_name.to_string()));
    let at = if path.is_empty() { "<nil>" } else { path };
    // The server names a failing rule by its message when it has one.
    let rule_text = rule
        .message
        .as_deref()
        .map(str::trim)
        .unwrap_or_else(|| rule.source.trim());
    // A panic inside the CEL interpreter must not take the API server down with it.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        execute(&rule.program, vars)
    }));
    let Ok(result) = result else {
        return Some(FieldError::new(
            FieldErrorKind::Invalid,
            at,
            type_value,
            format!("internal error evaluating rule: {rule_text}"),
        ));
    };
    match result {
        Ok(Cel::Bool(true)) => None,
        Ok(Cel::Bool(false)) => {
            *failed = true;
            let field = rule_field(path, rule.field_path.as_deref());
            let message = message(vars, rule);
            Some(match rule.reason.as_deref() {
                Some("FieldValueForbidden") => {
                    FieldError::new(FieldErrorKind::Forbidden, field, None, message)
                }
                Some("FieldValueRequired") => {
                    FieldError::new(FieldErrorKind::Required, field, None, message)
                }
                Some("FieldValueDuplicate") => {
                    FieldError::new(FieldErrorKind::Duplicate, field, type_value, "")
                }
                _ => FieldError::new(FieldErrorKind::Invalid, field, type_value, message),
            })
        }
        Ok(_) => Some(FieldError::new(
            FieldErrorKind::Invalid,
            at,
            type_value,
            format!("rule did not evaluate to a bool: {rule_text}"),
        )),
        Err(ExecutionError::NoSuchOverload) => Some(FieldError::new(
            FieldErrorKind::Invalid,
            at,
            type_value,
            format!(
                "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {rule_text}"
            ),
        )),
        Err(e) => {
            let text = match &e {
                ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
                other => other.to_string(),
            };
            Some(FieldError::new(
                FieldErrorKind::Invalid,
                at,
                type_value,
                format!("{text} evaluating rule: {rule_text}"),
            ))
        }
    }
}

/// `messageExpression` when it yields a usable string (non-blank, one line, at most 5000 bytes),
/// else `message`, else the rule.
fn message(vars: &Vars<'_>, rule: &Rule) -> String {
    if let Some(p) = &rule.message_program
        && let Ok(Ok(Cel::String(s))) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(p, vars)))
    {
        let trimmed = s.trim();
        if !trimmed.is_empty() && !trimmed.contains('\n') && trimmed.len() <= 5000 {
            return trimmed.to_string();
        }
    }
    match &rule.message {
        Some(m) => m.clone(),
        None => format!("failed rule: {}", rule.source.trim()),
    }
}

/// The error path of a rule with `fieldPath` (`.spec.topicName`, `.config['retention.ms']`),
/// in field-path notation relative to the rule's node.
pub(crate) fn rule_field(base: &str, field_path: Option<&str>) -> String {
    let Some(fp) = field_path else {
        return if base.is_empty() {
            "<nil>".to_string()
        } else {
            base.to_string()
        };
    };
    let mut out = base.to_string();
    let mut rest = fp;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            let key = r[..end].trim_matches(|c| c == '\'' || c == '"');
            out.push('[');
            out.push_str(key);
            out.push(']');
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&r[..end]);
            rest = &r[end..];
        }
    }
    if out.is_empty() {
        "<nil>".to_string()
    } else {
        out
    }
}

pub(crate) const CEL_RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The name a property has in CEL (`namespace` → `__namespace__`, `a.b` → `a__dot__b`);
/// `None` for names CEL cannot reach.
pub(crate) fn escape(name: &str) -> Option<String> {
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if CEL_RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

fn string(s: &str) -> Cel {
    Cel::String(Arc::new(s.to_string()))
}

fn key(s: String) -> Key {
    Key::String(Arc::new(s))
}

fn map(m: HashMap<Key, Cel>) -> Cel {
    Cel::Map(CelMap { map: Arc::new(m) })
}

static FULL: Need = Need::Full;

/// A JSON value as CEL sees it under `node` (`None`: no schema, as under
/// `x-kubernetes-preserve-unknown-fields`), converting only what `need` says rules can read.
fn to_cel(node: Option<&Node>, value: &Value, root: bool, need: &Need) -> Cel {
    if *need == Need::Presence {
        // Only `has()` looks at it: the key must exist, its value is never read.
        return Cel::Null;
    }
    let int_or_string = node.is_some_and(|n| n.int_or_string);
    let format = node.map(|n| n.format).unwrap_or(Format::None);
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        // A `number` is a double to CEL even when written without a fraction.
        Value::Number(n) if node.is_some_and(|nd| nd.ty == Some(crate::schema::Type::Number)) => {
            Cel::Float(n.as_f64().unwrap_or(f64::NAN))
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cel::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cel::UInt(u)
            } else {
                Cel::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => match format {
            Format::DateTime if !int_or_string => chrono::DateTime::parse_from_rfc3339(s)
                .map(Cel::Timestamp)
                .unwrap_or_else(|_| string(s)),
            // apiserver pkg/cel/common/values.go: a `date` string is the timestamp of its
            // midnight UTC.
            Format::Date if !int_or_string => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| Cel::Timestamp(t.and_utc().fixed_offset()))
                .unwrap_or_else(|| string(s)),
            // valuesunstructured.go: kube-openapi strfmt's parser, which also reads `3d`.
            Format::Duration if !int_or_string => crate::duration::strfmt_parse_duration(s)
                .map(|ns| Cel::Duration(chrono::Duration::nanoseconds(ns)))
                .unwrap_or_else(|| string(s)),
            Format::Byte if !int_or_string => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(|b| Cel::Bytes(Arc::new(b)))
                .unwrap_or_else(|_| string(s)),
            _ => string(s),
        },
        Value::Array(items) => {
            let item = node.and_then(|n| n.items.as_deref());
            // Key properties that CEL cannot name (`k!`) stay on map-list elements under their
            // own names: apiserver values.go compares and merges map lists by them.
            let hidden_keys: Vec<&String> = node
                .filter(|n| n.list_type == ListType::Map)
                .map(|n| {
                    n.list_map_keys
                        .iter()
                        .filter(|k| escape(k).is_none())
                        .collect()
                })
                .unwrap_or_default();
            Cel::List(Arc::new(
                items
                    .iter()
                    .map(|v| {
                        let c = to_cel(item, v, false, &FULL);
                        match (c, v) {
                            (Cel::Map(m), Value::Object(raw)) if !hidden_keys.is_empty() => {
                                let mut m = (*m.map).clone();
                                for k in &hidden_keys {
                                    if let Some(kv) = raw.get(k.as_str()) {
                                        m.insert(
                                            key(k.to_string()),
                                            to_cel(None, kv, false, &FULL),
                                        );
                                    }
                                }
                                map(m)
                            }
                            (c, _) => c,
                        }
                    })
                    .collect(),
            ))
        }
        Value::Object(obj) => {
            let wanted = match need {
                Need::Fields(w) => Some(w),
                _ => None,
            };
            let mut m = HashMap::with_capacity(wanted.map_or(obj.len(), |w| w.len()));
            let is_map = node.is_some_and(Node::is_map);
            let embedded = node.is_some_and(|n| n.embedded);
            for (k, v) in obj {
                // Map keys are data and keep their spelling; field names are escaped.
                let name = if is_map {
                    k.clone()
                } else {
                    match escape(k) {
                        Some(name) => name,
                        None => continue,
                    }
                };
                // apiserver pkg/cel/common/values.go `unstructuredMap.Find`: in an object with
                // properties a null field is absent, as if it were not set.
                if v.is_null() && !is_map && node.is_some_and(|n| !n.properties.is_empty()) {
                    continue;
                }
                // Since 1.32 a reserved word also selects its escaped field (`self.namespace`
                // reads `__namespace__`), so such fields are visible under both names.
                let alias = (!is_map && CEL_RESERVED.contains(&k.as_str())).then_some(k);
                let child_need = match wanted {
                    None => &FULL,
                    Some(w) => match w.get(&name).or_else(|| alias.and_then(|a| w.get(a))) {
                        Some(n) => n,
                        None => continue,
                    },
                };
                let c = match node {
                    None => to_cel(None, v, false, child_need),
                    Some(n) if is_map => to_cel(n.map_values(), v, false, child_need),
                    Some(n) => {
                        let type_meta = (root || embedded)
                            && matches!(k.as_str(), "apiVersion" | "kind" | "metadata");
                        if type_meta && k == "metadata" {
                            object_meta(v)
                        } else if type_meta {
                            to_cel(None, v, false, child_need)
                        } else if let Some(child) = n.properties.get(k) {
                            to_cel(Some(child), v, false, child_need)
                        } else if n.preserve_unknown {
                            to_cel(None, v, false, child_need)
                        } else {
                            continue;
                        }
                    }
                };
                if let Some(a) = alias {
                    m.insert(key(a.clone()), c.clone());
                }
                m.insert(key(name), c);
            }
            if embedded {
                m.entry(key("apiVersion".into()))
                    .or_insert_with(|| string(""));
                m.entry(key("kind".into())).or_insert_with(|| string(""));
                m.entry(key("metadata".into()))
                    .or_insert_with(|| map(HashMap::new()));
            }
            map(m)
        }
    }
}

/// Rules see only `metadata.name` and `metadata.generateName` of an object.
fn object_meta(meta: &Value) -> Cel {
    let mut m = HashMap::new();
    for field in ["name", "generateName"] {
        if let Some(Value::String(s)) = meta.get(field) {
            m.insert(key(field.to_string()), string(s));
        }
    }
    map(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_escape_like_the_api_server() {
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(
            escape("retention.ms").as_deref(),
            Some("retention__dot__ms")
        );
        assert_eq!(escape("a__b").as_deref(), Some("a__underscores__b"));
        assert_eq!(escape("x-y/z").as_deref(), Some("x__dash__y__slash__z"));
        assert_eq!(escape("a_b").as_deref(), Some("a_b"));
        assert_eq!(escape("1a"), None);
        // Only letters, digits and `_` stand for themselves; any other character makes the
        // name inaccessible (apiserver pkg/cel/escaping.go `Escape`).
        assert_eq!(escape("a b"), None);
        assert_eq!(escape("a:b"), None);
        assert_eq!(escape("añ"), None);
    }

    #[test]
    fn field_paths_join_the_rule_node() {
        assert_eq!(rule_field("", Some(".spec.topicName")), "spec.topicName");
        assert_eq!(rule_field("spec", Some(".endpoint")), "spec.endpoint");
        assert_eq!(
            rule_field("spec", Some(".config['retention.ms']")),
            "spec.config[retention.ms]"
        );
        assert_eq!(rule_field("", None), "<nil>");
        assert_eq!(rule_field("spec.scope", None), "spec.scope");
    }
}
