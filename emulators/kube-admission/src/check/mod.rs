//! Compiling `x-kubernetes-validations` rules the way kube-apiserver does when a CRD is written:
//! declarations from the structural schema, a type check, the AST validators of the base
//! environment, and the static cost estimate (apiextensions-apiserver
//! `pkg/apiserver/schema/cel/compilation.go` `compileRule`).

pub(crate) mod ast;
mod checker;
mod cost;
mod decls;
pub(crate) mod types;

use std::sync::Arc;

use ast::{Expr, Kind, Lit};
use checker::Checked;
use types::{Decl, Ty};

/// The name kube-apiserver gives `self`'s object type (`selfType<nanoseconds>` upstream).
const SELF_TYPE: &str = "selfType0";

/// What compiling one rule yields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compiled {
    pub(crate) max_cost: u64,
    pub(crate) uses_old_self: bool,
    /// The messageExpression's cost, when it compiled.
    pub(crate) message_max_cost: Option<u64>,
    /// The messageExpression's error detail.
    pub(crate) message_error: Option<String>,
}

/// `compileRule`: the error detail the server prints, or what compiling found.
pub(crate) fn compile_rule(
    rule: &str,
    message_expression: Option<&str>,
    decl: &Arc<Decl>,
    optional_old_self: bool,
) -> Result<Compiled, String> {
    let (expr, checked) = compile_expr(rule, decl, optional_old_self)
        .map_err(|e| format!("compilation failed: {e}"))?;
    if !matches!(checked.types.get(&expr.id), Some(Ty::Bool)) {
        return Err("cel expression must evaluate to a bool".into());
    }
    let max_cost = cost::estimate(&expr, &checked, decl).max;
    let mut compiled = Compiled {
        max_cost,
        uses_old_self: checked.uses_old_self,
        message_max_cost: None,
        message_error: None,
    };
    if let Some(m) = message_expression.filter(|m| !m.is_empty()) {
        match compile_expr(m, decl, optional_old_self) {
            Err(e) => {
                compiled.message_error = Some(format!("messageExpression compilation failed: {e}"))
            }
            Ok((mexpr, mchecked)) => {
                if !matches!(mchecked.types.get(&mexpr.id), Some(Ty::String)) {
                    compiled.message_error =
                        Some("messageExpression must evaluate to a string".into());
                } else {
                    compiled.message_max_cost = Some(cost::estimate(&mexpr, &mchecked, decl).max);
                }
            }
        }
    }
    Ok(compiled)
}

/// A rule compiled for bounding its runtime cost.
#[derive(Debug)]
pub(crate) struct CostProgram {
    expr: Expr,
    checked: Checked,
    decl: Arc<Decl>,
    /// The static estimate with the schema's bounds, which objects that passed the schema
    /// checks cannot exceed.
    static_max: u64,
}

impl CostProgram {
    /// The rule checked against the schema node's declaration; `None` when it does not compile
    /// (such a CRD is refused by `validate_crd`).
    pub(crate) fn compile(
        rule: &str,
        schema: &serde_json::Value,
        is_root: bool,
        optional_old_self: bool,
    ) -> Option<CostProgram> {
        let embedded = schema
            .get("x-kubernetes-embedded-resource")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let decl = types::schema_decl(schema, is_root || embedded)?;
        let (expr, checked) = compile_expr(rule, &decl, optional_old_self).ok()?;
        let static_max = cost::estimate(&expr, &checked, &decl).max;
        Some(CostProgram {
            expr,
            checked,
            decl,
            static_max,
        })
    }

    /// An upper bound of the cost cel-go tracks when evaluating the rule on these values: the
    /// static estimate with the sizes actually present instead of the declared bounds, and
    /// cel-go's runtime size (1) for values that have no size. `None` when some size involved
    /// is not bounded by the values (then the bound says nothing and the rule must run: the
    /// server cancels only what its actual cost tracking sees passing the limit).
    pub(crate) fn bound(
        &self,
        value: &serde_json::Value,
        old: Option<&serde_json::Value>,
    ) -> Option<u64> {
        if self.static_max <= crate::crd::PER_CALL_LIMIT {
            return Some(self.static_max);
        }
        self.actual_bound(value, old)
    }

    /// The static estimate with the sizes these values have (see [`Self::bound`]); `None` when
    /// some size involved is not fixed by the values.
    pub(crate) fn actual_bound(
        &self,
        value: &serde_json::Value,
        old: Option<&serde_json::Value>,
    ) -> Option<u64> {
        let values: Vec<&serde_json::Value> = std::iter::once(value).chain(old).collect();
        let actual = types::actual_sizes(&self.decl, &values);
        cost::estimate_actual(&self.expr, &self.checked, &actual).map(|e| e.max)
    }

    /// The static estimate with the schema's bounds.
    pub(crate) fn static_max(&self) -> u64 {
        self.static_max
    }
}

/// The index (lists) or value (maps) variable added to one-variable `all`/`exists`.
const ABSORBING_VAR: &str = "_kube_admission_unused";

impl CostProgram {
    /// `source` with every one-variable `all`/`exists` over a list or map given a second,
    /// unused variable, so that the interpreter runs the two-variable form (see
    /// `comprehensions.rs`), which absorbs an element's error once the result is decided as
    /// cel-go's `&&`/`||` fold does; `None` when there is nothing to rewrite.
    pub(crate) fn absorbing_source(&self, source: &str) -> Option<String> {
        let mut inserts: Vec<(usize, String)> = Vec::new();
        let chars: Vec<char> = source.chars().collect();
        let mut stack = vec![&self.expr];
        while let Some(e) = stack.pop() {
            stack.extend(e.children());
            let Kind::Comp(c) = &e.kind else { continue };
            let quantifier = c.iter_var2.is_none()
                && c.accu_var == ast::ACCU
                && match (&c.accu_init.kind, &c.step.kind) {
                    (Kind::Lit(Lit::Bool(true)), Kind::Call { func, .. }) => func == "_&&_",
                    (Kind::Lit(Lit::Bool(false)), Kind::Call { func, .. }) => func == "_||_",
                    _ => false,
                };
            if !quantifier || chars.get(e.pos) != Some(&'(') {
                continue;
            }
            match self.checked.types.get(&c.range.id) {
                Some(Ty::List(_)) => inserts.push((e.pos + 1, format!("{ABSORBING_VAR}, "))),
                // After the key: `all(k, p)` → `all(k, unused, p)`.
                Some(Ty::Map(..)) => {
                    if let Some(comma) = c.var_comma {
                        inserts.push((comma, format!(", {ABSORBING_VAR}")));
                    }
                }
                _ => {}
            }
        }
        if inserts.is_empty() {
            return None;
        }
        inserts.sort_by_key(|b| std::cmp::Reverse(b.0));
        let mut out = chars;
        for (at, text) in inserts {
            out.splice(at..at, text.chars());
        }
        Some(out.into_iter().collect())
    }
}

/// cel-go's parser limit on the nesting of any grammar rule (`maxRecursionDepth`).
const MAX_RECURSION_DEPTH: usize = 250;

/// Stack for parsing and checking: the ANTLR parser recurses deeply on nested expressions.
const PARSER_STACK: usize = 256 << 20;

/// Runs `f` on a thread with a stack large enough for the deepest expression the server
/// accepts; `None` if it panicked.
pub(crate) fn with_parser_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cel-compile".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, f)
            .ok()?
            .join()
            .ok()
    })
}

/// The deepest nesting of brackets outside string literals and `//` comments.
fn nesting(source: &str) -> usize {
    let mut depth: usize = 0;
    let mut max = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        if comment {
            comment = c != '\n';
            continue;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '/' if chars.peek() == Some(&'/') => comment = true,
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses, checks and validates one expression; the error is cel-go's `Issues.String()`.
fn compile_expr(
    source: &str,
    decl: &Arc<Decl>,
    optional_old_self: bool,
) -> Result<(Expr, Checked), String> {
    // cel-go refuses nesting past its limit without a source location.
    if nesting(source) >= MAX_RECURSION_DEPTH {
        return Err(format!(
            "ERROR: <input>:-1:0: expression recursion limit exceeded: {MAX_RECURSION_DEPTH}"
        ));
    }
    with_parser_stack(|| compile_expr_inner(source, decl, optional_old_self)).unwrap_or_else(|| {
        Err("ERROR: <input>:1:1: internal error compiling the expression".into())
    })
}

fn compile_expr_inner(
    source: &str,
    decl: &Arc<Decl>,
    optional_old_self: bool,
) -> Result<(Expr, Checked), String> {
    // cel-go's recursion limits first: the `cel` crate counts nesting differently, refusing
    // past them with other words or not at all (this parser runs on any text: it stops at the
    // first token it cannot place).
    // A panic on text the grammar refuses must not hide the grammar's own error.
    let parsed = std::panic::catch_unwind(|| ast::parse(source)).unwrap_or_else(|_| {
        Err(ast::SyntaxError {
            pos: 0,
            message: "internal error parsing the expression".into(),
        })
    });
    if let Err(e) = &parsed
        && e.pos == ast::NO_LOCATION
    {
        return Err(ast::display_error(source, e.pos, &e.message));
    }
    // The ANTLR grammar decides what parses, and words syntax errors like cel-go.
    let syntax = std::panic::catch_unwind(|| {
        kube_cel::cel::parser::Parser::new()
            .enable_optional_syntax(true)
            .max_recursion_depth(MAX_RECURSION_DEPTH as u16)
            .parse(source)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    match syntax {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.replace("\n| ", "\n | ")),
        Err(_) => return Err("ERROR: <input>:1:1: unparsable expression".into()),
    }
    let expr = parsed.map_err(|e| ast::display_error(source, e.pos, &e.message))?;
    let self_ty = decl.ty(SELF_TYPE);
    let old_ty = if optional_old_self {
        Ty::optional(self_ty.clone())
    } else {
        self_ty.clone()
    };
    let vars = [("self", self_ty), ("oldSelf", old_ty)];
    let checked = checker::check(&expr, &vars);
    let mut errors = checked.errors.clone();
    if errors.is_empty() {
        validate_literals(&expr, &checked, false, &mut errors);
    }
    if errors.is_empty() {
        return Ok((expr, checked));
    }
    let mut positioned: Vec<(usize, usize, String)> = errors
        .into_iter()
        .map(|(pos, m)| {
            let (l, c) = ast::line_col(source, pos);
            (l, c, ast::display_error(source, pos, &m))
        })
        .collect();
    positioned.sort_by_key(|(l, c, _)| (*l, *c));
    Err(positioned
        .into_iter()
        .map(|(_, _, m)| m)
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The base environment's AST validators (apiserver `pkg/cel/environment/base.go`, cel-go
/// `cel/validator.go`): literal regular expressions, durations and timestamps must be valid,
/// and list and map literals homogeneous (except inside `format`).
fn validate_literals(
    e: &Expr,
    checked: &Checked,
    in_format: bool,
    errors: &mut Vec<(usize, String)>,
) {
    let ty = |x: &Expr| checked.types.get(&x.id).cloned().unwrap_or(Ty::Dyn);
    let mut in_format = in_format;
    match &e.kind {
        Kind::Call { func, args, .. } => {
            let lit = args.first().and_then(|a| match &a.kind {
                Kind::Lit(Lit::String(s)) => Some((a.pos, s.as_str())),
                _ => None,
            });
            if let Some((pos, s)) = lit {
                let bad = match func.as_str() {
                    "matches" => regex::Regex::new(s).is_err(),
                    "duration" => crate::duration::go_parse_duration(s).is_none(),
                    "timestamp" => chrono::DateTime::parse_from_rfc3339(s).is_err(),
                    _ => false,
                };
                if bad {
                    errors.push((pos, format!("invalid {func} argument")));
                }
            }
            if func == "format" {
                in_format = true;
            }
        }
        Kind::List(items) if !in_format => {
            let mut first: Option<Ty> = None;
            for item in items {
                let t = ty(item);
                match &first {
                    None => first = Some(t),
                    Some(f) if !equivalent(f, &t) => {
                        errors.push((
                            item.pos,
                            format!("expected type '{}' but found '{}'", f.format(), t.format()),
                        ));
                        break;
                    }
                    _ => {}
                }
            }
        }
        Kind::Map(entries) if !in_format => {
            let mut first: Option<(Ty, Ty)> = None;
            for (k, v) in entries {
                let (kt, vt) = (ty(k), ty(v));
                match &first {
                    None => first = Some((kt, vt)),
                    Some((fk, fv)) => {
                        if !equivalent(fk, &kt) {
                            errors.push((
                                k.pos,
                                format!(
                                    "expected type '{}' but found '{}'",
                                    fk.format(),
                                    kt.format()
                                ),
                            ));
                        }
                        if !equivalent(fv, &vt) {
                            errors.push((
                                v.pos,
                                format!(
                                    "expected type '{}' but found '{}'",
                                    fv.format(),
                                    vt.format()
                                ),
                            ));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    for c in e.children() {
        validate_literals(c, checked, in_format, errors);
    }
}

/// cel-go `Type.IsEquivalentType`: `IsExactType` but for the names of type parameters, which
/// checked types no longer have (the final substitution makes unbound ones `dyn`).
fn equivalent(a: &Ty, b: &Ty) -> bool {
    a.exact(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decl(schema: serde_json::Value) -> Arc<Decl> {
        types::schema_decl(&schema, false).expect("exposed")
    }

    fn compile(schema: serde_json::Value, rule: &str) -> Result<u64, String> {
        compile_rule(rule, None, &decl(schema), false).map(|c| c.max_cost)
    }

    // Expected outcomes from apiextensions-apiserver pkg/apiserver/schema/cel/validation_test.go
    // ("invalid field" and null comparison cases).
    #[test]
    fn type_errors_are_worded_like_cel_go() {
        let s = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let e = compile(s.clone(), "self.b == 'x'").expect_err("undefined");
        assert_eq!(
            e,
            "compilation failed: ERROR: <input>:1:5: undefined field 'b'\n | self.b == 'x'\n | ....^"
        );
        let e = compile(s.clone(), "self.a == null").expect_err("null");
        assert!(
            e.contains("found no matching overload for '_==_' applied to '(string, null)'"),
            "{e}"
        );
        let e = compile(s.clone(), "foo(self.a)").expect_err("undeclared");
        assert!(
            e.contains("undeclared reference to 'foo' (in container '')"),
            "{e}"
        );
        let e = compile(s.clone(), "self.a").expect_err("not bool");
        assert_eq!(e, "cel expression must evaluate to a bool");
        let e = compile(s, "self.a.matches('[')").expect_err("regex");
        assert!(e.contains("invalid matches argument"), "{e}");
    }

    #[test]
    fn well_typed_rules_compile() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "string", "maxLength": 10},
            "l": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 5}},
            "m": {"type": "object", "additionalProperties": {"type": "integer"}},
            "q": {"x-kubernetes-int-or-string": true},
        }});
        for rule in [
            "self.a.startsWith('x') && size(self.l) < 3",
            "self.l.all(x, x.size() < 3)",
            "self.m.exists(k, self.m[k] > 1)",
            "has(self.a) ? self.a != '' : true",
            "type(self.q) == int ? self.q < 5 : double(self.q.replace('%', '')) < 0.5",
            "self.l.map(x, x + 'a').filter(y, y != 'b').size() == 0",
            "self.a in ['a', 'b']",
            "isQuantity(self.a) && quantity(self.a).isLessThan(quantity('1Gi'))",
            "sets.contains(self.l, ['a'])",
            "self.?a.orValue('') == ''",
            "self.l.exists_one(x, x == 'a')",
        ] {
            compile(s.clone(), rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        }
    }

    // Expected costs from apiextensions-apiserver pkg/apiserver/schema/cel/compilation_test.go
    // (TestCostEstimation: "check cost of size call", "extended list", "unbounded").
    #[test]
    fn costs_follow_cel_go() {
        let s = json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 10}}});
        // self (1) + .a (1) + size (1)
        assert_eq!(compile(s.clone(), "size(self.a) < 5"), Ok(4));
        let list = json!({"type": "array", "maxItems": 10, "items": {"type": "integer"}});
        // range 1 + result 1 + 10 * (cond 2 + step (1 + x 1 + literal 0 + `>` 1))
        assert_eq!(compile(list, "self.all(x, x > 0)"), Ok(52));
    }
}
