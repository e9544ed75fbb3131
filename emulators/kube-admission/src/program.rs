//! A rule as the interpreter runs it: parsed with cel-go's options of the server's environment
//! (optional syntax, nesting up to 250), then rewritten where the server's values behave
//! differently from plain CEL lists.
//!
//! apiserver `pkg/cel/common/values.go` gives lists with `x-kubernetes-list-type: set` and
//! `map` their own `Equal` and `Add`: a set compares equal to any list holding the same elements
//! in any order and `+` is a union; a map list compares by its keys and `+` merges by key, the
//! right side winning. These belong to the list *value*, so they apply where such a list is the
//! left operand of `==`, `!=` or `+` (cel-go dispatches on the left operand). Which expressions
//! yield such lists is known from the schema: the rewrite follows field selections, indexing,
//! comprehension variables, conditionals and optionals from `self`/`oldSelf` through the schema,
//! and replaces those operators by the functions of [`register`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kube_cel::cel::common::ast::{CallExpr, Expr, IdedExpr, ListExpr, LiteralValue, operators};
use kube_cel::cel::common::types::CelString;
use kube_cel::cel::objects::Key;
use kube_cel::cel::{Context, ExecutionError, FunctionContext, ResolveResult, Value as Cel};
use serde_json::Value;

/// cel-go's parser limit on the nesting of any grammar rule (`parser.maxRecursionDepth`).
pub(crate) const MAX_RECURSION_DEPTH: u16 = 250;

const SET_EQ: &str = "@kube_admission.set_equal";
const SET_ADD: &str = "@kube_admission.set_add";
const MAP_EQ: &str = "@kube_admission.map_list_equal";
const MAP_ADD: &str = "@kube_admission.map_list_add";
const OPT_SELECT: &str = "@kube_admission.optional_select";
const OPT_INDEX: &str = "@kube_admission.optional_index";
const OPT_LIST: &str = "@kube_admission.optional_list";
const OPT_MAP: &str = "@kube_admission.optional_map";

/// A parsed, rewritten expression.
#[derive(Debug)]
pub(crate) struct Program {
    expr: IdedExpr,
    /// The deepest nesting of the syntax tree, which decides how much stack evaluation needs.
    depth: usize,
}

impl Program {
    /// Parses `source` (optional syntax on, nesting limit 250) and rewrites set and map list
    /// operators by `schema`, the JSON schema of `self` (`None`: no rewriting). `optional_self`:
    /// `oldSelf` is an optional (`optionalOldSelf`).
    pub(crate) fn compile(
        source: &str,
        schema: Option<&Value>,
        optional_old_self: bool,
    ) -> Result<Program, String> {
        let mut expr = kube_cel::cel::parser::Parser::new()
            .enable_optional_syntax(true)
            .max_recursion_depth(MAX_RECURSION_DEPTH)
            .parse(source)
            .map_err(|e| e.to_string())?;
        let mut rewriter = Rewriter {
            scopes: vec![
                ("self".to_string(), Info::of(schema, false)),
                ("oldSelf".to_string(), Info::of(schema, optional_old_self)),
            ],
            next_id: max_id(&expr) + 1,
        };
        rewriter.rewrite(&mut expr);
        let depth = depth(&expr);
        Ok(Program { expr, depth })
    }

    /// Whether the expression reads `oldSelf` (a transition rule).
    pub(crate) fn references_old_self(&self) -> bool {
        let mut stack = vec![&self.expr];
        while let Some(e) = stack.pop() {
            if matches!(&e.expr, Expr::Ident(n) if n == "oldSelf") {
                return true;
            }
            stack.extend(children(e));
        }
        false
    }

    pub(crate) fn expression(&self) -> &IdedExpr {
        &self.expr
    }

    /// How deep the syntax tree nests.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    pub(crate) fn execute(&self, ctx: &Context) -> ResolveResult {
        Cel::resolve(&self.expr, ctx)
    }
}

fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    match &e.expr {
        Expr::Call(c) => c.target.as_deref().into_iter().chain(&c.args).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(m) => m
            .entries
            .iter()
            .flat_map(|en| match &en.expr {
                kube_cel::cel::common::ast::EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                kube_cel::cel::common::ast::EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|en| match &en.expr {
                kube_cel::cel::common::ast::EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                kube_cel::cel::common::ast::EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Select(s) => vec![&s.operand],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// The largest node id (new nodes get ids above it).
fn max_id(e: &IdedExpr) -> u64 {
    let mut max = 0;
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        max = max.max(e.id);
        stack.extend(children(e));
    }
    max
}

/// The nesting depth of the tree, without recursion.
fn depth(e: &IdedExpr) -> usize {
    let mut max = 0;
    let mut stack = vec![(e, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        stack.extend(children(e).into_iter().map(|c| (c, d + 1)));
    }
    max
}

/// What is known of an expression's value: its schema, and whether it is a CEL optional.
#[derive(Clone, Copy, Default)]
struct Info<'s> {
    schema: Option<&'s Value>,
    optional: bool,
}

impl<'s> Info<'s> {
    fn of(schema: Option<&'s Value>, optional: bool) -> Info<'s> {
        Info { schema, optional }
    }

    /// The schema of field `field` (its CEL name) of an object, or of a map's values.
    fn field(self, field: &str) -> Option<&'s Value> {
        let schema = self.schema?;
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            // Since 1.32 a reserved word also selects its escaped field (`self.namespace`).
            return props
                .iter()
                .find(|(k, _)| {
                    crate::cel::escape(k).as_deref() == Some(field)
                        || (k.as_str() == field && crate::cel::CEL_RESERVED.contains(&field))
                })
                .map(|(_, v)| v);
        }
        self.index()
    }

    /// The schema of an element: a list's items, a map's values.
    fn index(self) -> Option<&'s Value> {
        let schema = self.schema?;
        schema
            .get("items")
            .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
    }

    fn is_list(self) -> bool {
        self.schema.is_some_and(|s| s.get("items").is_some())
    }

    /// A set or map list (never an optional of one).
    fn list_kind(self) -> Option<ListKind> {
        if self.optional {
            return None;
        }
        let schema = self.schema?;
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => Some(ListKind::Set),
            Some("map") => Some(ListKind::Map(
                schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            )),
            _ => None,
        }
    }
}

enum ListKind {
    Set,
    /// The list-map keys, as written in the schema.
    Map(Vec<String>),
}

struct Rewriter<'s> {
    /// Variables in scope, innermost last.
    scopes: Vec<(String, Info<'s>)>,
    next_id: u64,
}

impl<'s> Rewriter<'s> {
    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn lookup(&self, name: &str) -> Info<'s> {
        self.scopes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
            .unwrap_or_default()
    }

    fn with_vars<T>(&mut self, vars: Vec<(String, Info<'s>)>, f: impl FnOnce(&mut Self) -> T) -> T {
        let n = vars.len();
        self.scopes.extend(vars);
        let out = f(self);
        self.scopes.truncate(self.scopes.len() - n);
        out
    }

    fn call(&mut self, func: &str, args: Vec<IdedExpr>) -> IdedExpr {
        IdedExpr {
            id: self.id(),
            expr: Expr::Call(CallExpr {
                func_name: func.to_string(),
                target: None,
                args,
            }),
        }
    }

    fn string(&mut self, s: &str) -> IdedExpr {
        IdedExpr {
            id: self.id(),
            expr: Expr::Literal(LiteralValue::String(CelString::from(s))),
        }
    }

    fn list(&mut self, elements: Vec<IdedExpr>) -> IdedExpr {
        IdedExpr {
            id: self.id(),
            expr: Expr::List(ListExpr {
                elements,
                optional_indices: Vec::new(),
            }),
        }
    }

    fn keys_literal(&mut self, keys: &[String]) -> IdedExpr {
        let elements = keys.iter().map(|k| self.string(k)).collect();
        self.list(elements)
    }

    fn int_list(&mut self, values: &[usize]) -> IdedExpr {
        let elements = values
            .iter()
            .map(|i| IdedExpr {
                id: self.id(),
                expr: Expr::Literal(LiteralValue::Int(
                    i64::try_from(*i).unwrap_or(i64::MAX).into(),
                )),
            })
            .collect();
        self.list(elements)
    }

    /// Rewrites `e` in place; returns what is known of its value.
    fn rewrite(&mut self, e: &mut IdedExpr) -> Info<'s> {
        let (info, replacement) = match &mut e.expr {
            Expr::Ident(name) => (self.lookup(name), None),
            Expr::Select(select) => {
                let operand = self.rewrite(&mut select.operand);
                if select.test {
                    (Info::default(), None)
                } else if operand.optional {
                    // Selecting on an optional selects on its value; an absent field gives
                    // `optional.none()` (cel-go optional chaining).
                    let schema = operand.field(&select.field);
                    let field = select.field.clone();
                    let operand = std::mem::take(&mut *select.operand);
                    let name = self.string(&field);
                    let call = self.call(OPT_SELECT, vec![operand, name]);
                    (Info::of(schema, true), Some(call.expr))
                } else {
                    (Info::of(operand.field(&select.field), false), None)
                }
            }
            Expr::Comprehension(c) => {
                let range = self.rewrite(&mut c.iter_range);
                self.rewrite(&mut c.accu_init);
                let element = Info::of(range.index(), false);
                let mut vars = Vec::new();
                match &c.iter_var2 {
                    Some(v2) => {
                        vars.push((c.iter_var.clone(), Info::default()));
                        vars.push((v2.clone(), element));
                    }
                    None if range.is_list() => vars.push((c.iter_var.clone(), element)),
                    None => vars.push((c.iter_var.clone(), Info::default())),
                }
                vars.push((c.accu_var.clone(), Info::default()));
                self.with_vars(vars, |r| {
                    r.rewrite(&mut c.loop_cond);
                    r.rewrite(&mut c.loop_step);
                    r.rewrite(&mut c.result);
                });
                (Info::default(), None)
            }
            Expr::Call(call) => self.rewrite_call(call),
            Expr::List(list) => {
                for el in list.elements.iter_mut() {
                    self.rewrite(el);
                }
                if list.optional_indices.is_empty() {
                    (Info::default(), None)
                } else {
                    // `[a, ?b]`: the optional elements' values, when they have one.
                    let indices = std::mem::take(&mut list.optional_indices);
                    let elements = std::mem::take(&mut list.elements);
                    let elements = self.list(elements);
                    let indices = self.int_list(&indices);
                    let call = self.call(OPT_LIST, vec![elements, indices]);
                    (Info::default(), Some(call.expr))
                }
            }
            Expr::Map(map) => {
                use kube_cel::cel::common::ast::EntryExpr;
                let mut optional = Vec::new();
                for (i, entry) in map.entries.iter_mut().enumerate() {
                    if let EntryExpr::MapEntry(me) = &mut entry.expr {
                        self.rewrite(&mut me.key);
                        self.rewrite(&mut me.value);
                        if me.optional {
                            optional.push(i);
                        }
                    }
                }
                if optional.is_empty() {
                    (Info::default(), None)
                } else {
                    // `{?k: v}`: the entry only when `v` has a value.
                    let mut keys = Vec::new();
                    let mut values = Vec::new();
                    for entry in std::mem::take(&mut map.entries) {
                        if let EntryExpr::MapEntry(me) = entry.expr {
                            keys.push(me.key);
                            values.push(me.value);
                        }
                    }
                    let keys = self.list(keys);
                    let values = self.list(values);
                    let optional = self.int_list(&optional);
                    let call = self.call(OPT_MAP, vec![keys, values, optional]);
                    (Info::default(), Some(call.expr))
                }
            }
            // Literals have no operands. A struct literal (`T{f: x}`) names a message type, and
            // the Kubernetes environment declares none: the checker refuses it and the
            // interpreter cannot build it, so nothing below it is ever compared.
            _ => (Info::default(), None),
        };
        if let Some(new) = replacement {
            e.expr = new;
        }
        info
    }

    /// Rewrites a call: what is known of its value, and the expression replacing it.
    fn rewrite_call(&mut self, call: &mut CallExpr) -> (Info<'s>, Option<Expr>) {
        let func = call.func_name.clone();
        let target = call.target.as_deref_mut().map(|t| self.rewrite(t));
        let is_optional_ns = matches!(
            call.target.as_deref(),
            Some(IdedExpr { expr: Expr::Ident(n), .. }) if n == "optional"
        );
        match (func.as_str(), target, call.args.len()) {
            ("of" | "none" | "ofNonZeroValue", Some(_), _) if is_optional_ns => {
                let args: Vec<Info<'s>> = call.args.iter_mut().map(|a| self.rewrite(a)).collect();
                let schema = args.first().and_then(|a| a.schema);
                return (Info::of(schema, true), None);
            }
            ("bind", Some(_), 3)
                if matches!(
                    call.target.as_deref(),
                    Some(IdedExpr { expr: Expr::Ident(n), .. }) if n == "cel"
                ) =>
            {
                let init = self.rewrite(&mut call.args[1]);
                let vars = ident(&call.args[0])
                    .map(|n| vec![(n, init)])
                    .unwrap_or_default();
                let info = self.with_vars(vars, |r| r.rewrite(&mut call.args[2]));
                return (info, None);
            }
            // Two-variable comprehensions bind the index or key, and the element.
            (
                "all" | "exists" | "existsOne" | "exists_one" | "transformList" | "transformMap"
                | "transformMapEntry",
                Some(range),
                3 | 4,
            ) => {
                let element = Info::of(range.index(), false);
                let mut vars = Vec::new();
                if let (Some(a), Some(b)) = (ident(&call.args[0]), ident(&call.args[1])) {
                    vars.push((a, Info::default()));
                    vars.push((b, element));
                }
                self.with_vars(vars, |r| {
                    for a in call.args.iter_mut() {
                        r.rewrite(a);
                    }
                });
                return (Info::default(), None);
            }
            ("optMap" | "optFlatMap", Some(t), 2) => {
                let value = Info::of(t.schema, false);
                let vars = ident(&call.args[0])
                    .map(|n| vec![(n, value)])
                    .unwrap_or_default();
                self.with_vars(vars, |r| r.rewrite(&mut call.args[1]));
                return (Info::of(None, true), None);
            }
            ("value", Some(t), 0) => return (Info::of(t.schema, false), None),
            ("orValue", Some(t), 1) => {
                self.rewrite(&mut call.args[0]);
                return (Info::of(t.schema, false), None);
            }
            ("or", Some(t), 1) => {
                self.rewrite(&mut call.args[0]);
                return (Info::of(t.schema, true), None);
            }
            (_, Some(_), _) => {
                for a in call.args.iter_mut() {
                    self.rewrite(a);
                }
                return (Info::default(), None);
            }
            _ => {}
        }
        let infos: Vec<Info<'s>> = call.args.iter_mut().map(|a| self.rewrite(a)).collect();
        let left = infos.first().copied().unwrap_or_default();
        match (func.as_str(), call.args.len()) {
            (operators::INDEX, 2) if !left.optional => (Info::of(left.index(), false), None),
            (operators::INDEX | operators::OPT_INDEX, 2) => {
                let args = std::mem::take(&mut call.args);
                let call = self.call(OPT_INDEX, args);
                (Info::of(left.index(), true), Some(call.expr))
            }
            (operators::OPT_SELECT, 2) => {
                let schema = match &call.args[1].expr {
                    Expr::Literal(LiteralValue::String(f)) => left.field(f.inner()),
                    _ => None,
                };
                let args = std::mem::take(&mut call.args);
                let call = self.call(OPT_SELECT, args);
                (Info::of(schema, true), Some(call.expr))
            }
            (operators::CONDITIONAL, 3) => {
                let (a, b) = (infos[1], infos[2]);
                let schema = match (a.schema, b.schema) {
                    (Some(x), Some(y)) if std::ptr::eq(x, y) => Some(x),
                    _ => None,
                };
                (Info::of(schema, a.optional || b.optional), None)
            }
            (operators::EQUALS | operators::NOT_EQUALS | operators::ADD, 2) => {
                let Some(kind) = left.list_kind() else {
                    return (Info::default(), None);
                };
                let mut args = std::mem::take(&mut call.args);
                let replacement = match (func.as_str(), kind) {
                    (operators::ADD, ListKind::Set) => self.call(SET_ADD, args),
                    (operators::ADD, ListKind::Map(keys)) => {
                        args.push(self.keys_literal(&keys));
                        self.call(MAP_ADD, args)
                    }
                    (_, ListKind::Set) => self.call(SET_EQ, args),
                    (_, ListKind::Map(keys)) => {
                        args.push(self.keys_literal(&keys));
                        self.call(MAP_EQ, args)
                    }
                };
                if func == operators::ADD {
                    // The sum is a list of the same kind (values.go returns a set or map list).
                    (left, Some(replacement.expr))
                } else if func == operators::NOT_EQUALS {
                    let not = self.call(operators::LOGICAL_NOT, vec![replacement]);
                    (Info::default(), Some(not.expr))
                } else {
                    (Info::default(), Some(replacement.expr))
                }
            }
            _ => (Info::default(), None),
        }
    }
}

fn ident(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Ident(n) => Some(n.clone()),
        _ => None,
    }
}

type EvalResult<T> = std::result::Result<T, ExecutionError>;

/// Registers what the interpreter lacks: `dyn`, the set and map list operators, and the
/// optionals (`optional.*`, `optMap`/`optFlatMap`, the optional select, index and literals).
pub(crate) fn register(ctx: &mut Context<'static>) {
    // cel-go's standard `dyn(x)`: x itself, typed dyn for the checker only.
    ctx.add_function("dyn", |v: Cel| Ok::<_, ExecutionError>(v));
    ctx.add_function(SET_EQ, |ftx: &FunctionContext| {
        let (l, r) = (list_arg(ftx, 0)?, list_arg(ftx, 1)?);
        Ok(Cel::Bool(set_equal(&l, &r)))
    });
    ctx.add_function(SET_ADD, |ftx: &FunctionContext| {
        let (l, r) = (list_arg(ftx, 0)?, list_arg(ftx, 1)?);
        Ok(Cel::List(Arc::new(set_add(&l, &r))))
    });
    ctx.add_function(MAP_EQ, |ftx: &FunctionContext| {
        let (l, r, keys) = (list_arg(ftx, 0)?, list_arg(ftx, 1)?, keys_arg(ftx)?);
        Ok(Cel::Bool(map_list_equal(&l, &r, &keys)))
    });
    ctx.add_function(MAP_ADD, |ftx: &FunctionContext| {
        let (l, r, keys) = (list_arg(ftx, 0)?, list_arg(ftx, 1)?, keys_arg(ftx)?);
        Ok(Cel::List(Arc::new(map_list_add(&l, &r, &keys))))
    });
    ctx.add_function("optMap", |ftx: &FunctionContext| opt_map(ftx, false));
    ctx.add_function("optFlatMap", |ftx: &FunctionContext| opt_map(ftx, true));
    ctx.add_function("optional.of", |v: Cel| {
        Ok::<_, ExecutionError>(optional(Some(v)))
    });
    ctx.add_function("optional.none", || Ok::<_, ExecutionError>(optional(None)));
    ctx.add_function("optional.ofNonZeroValue", |v: Cel| {
        Ok::<_, ExecutionError>(optional((!is_zero(&v)).then_some(v)))
    });
    ctx.add_function("hasValue", |ftx: &FunctionContext| {
        Ok::<_, ExecutionError>(Cel::Bool(this_optional(ftx)?.is_some()))
    });
    ctx.add_function("value", |ftx: &FunctionContext| {
        this_optional(ftx)?.ok_or_else(|| ftx.error("optional.none() dereference"))
    });
    ctx.add_function("orValue", |ftx: &FunctionContext| {
        match this_optional(ftx)? {
            Some(v) => Ok(v),
            None => resolve_arg(ftx, 0),
        }
    });
    // cel-go `evalOptionalOr`: the alternative is returned as it evaluates, unchecked (only
    // the checker asks for an optional).
    ctx.add_function("or", |ftx: &FunctionContext| match this_optional(ftx)? {
        Some(v) => Ok(optional(Some(v))),
        None => resolve_arg(ftx, 0),
    });
    ctx.add_function(OPT_SELECT, |ftx: &FunctionContext| {
        let Some(operand) = unwrap_optional(resolve_arg(ftx, 0)?) else {
            return Ok(optional(None));
        };
        let field = resolve_arg(ftx, 1)?;
        match (operand, field) {
            (Cel::Map(m), Cel::String(f)) => Ok(optional(m.map.get(&Key::String(f)).cloned())),
            _ => Err(ExecutionError::NoSuchOverload),
        }
    });
    ctx.add_function(OPT_INDEX, |ftx: &FunctionContext| {
        let Some(operand) = unwrap_optional(resolve_arg(ftx, 0)?) else {
            return Ok(optional(None));
        };
        let index = resolve_arg(ftx, 1)?;
        match operand {
            Cel::List(l) => {
                // cel-go `types.IndexOrError`: an int, a uint that fits an int64, or a whole
                // double inside int64's open range; an index outside the list is no value.
                let unsupported =
                    |v: String| ftx.error(format!("unsupported index value {v} in list"));
                let i: i64 = match index {
                    Cel::Int(i) => i,
                    Cel::UInt(u) => i64::try_from(u).map_err(|_| unsupported(u.to_string()))?,
                    Cel::Float(f)
                        if f.fract() == 0.0
                            && f > -9_223_372_036_854_775_808.0
                            && f < 9_223_372_036_854_775_808.0 =>
                    {
                        f as i64
                    }
                    Cel::Float(f) => return Err(unsupported(crate::gofmt::float(f))),
                    _ => return Err(ExecutionError::NoSuchOverload),
                };
                Ok(optional(
                    usize::try_from(i).ok().and_then(|i| l.get(i)).cloned(),
                ))
            }
            Cel::Map(m) => {
                let key = scalar_key(&index).ok_or(ExecutionError::NoSuchOverload)?;
                Ok(optional(m.map.get(&key).cloned()))
            }
            _ => Err(ExecutionError::NoSuchOverload),
        }
    });
    ctx.add_function(OPT_LIST, |ftx: &FunctionContext| {
        let (items, optional_at) = (list_arg(ftx, 0)?, list_arg(ftx, 1)?);
        let optional_at = indices(&optional_at);
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            if optional_at.contains(&i) {
                match as_optional(v) {
                    Some(Some(inner)) => out.push(inner.clone()),
                    Some(None) => {}
                    None => return Err(ExecutionError::NoSuchOverload),
                }
            } else {
                out.push(v.clone());
            }
        }
        Ok(Cel::List(Arc::new(out)))
    });
    ctx.add_function(OPT_MAP, |ftx: &FunctionContext| {
        let (keys, values, optional_at) = (list_arg(ftx, 0)?, list_arg(ftx, 1)?, list_arg(ftx, 2)?);
        let optional_at = indices(&optional_at);
        let mut out = HashMap::with_capacity(keys.len());
        for (i, (k, v)) in keys.iter().zip(values.iter()).enumerate() {
            let key = scalar_key(k).ok_or(ExecutionError::NoSuchOverload)?;
            let value = if optional_at.contains(&i) {
                match as_optional(v) {
                    Some(Some(inner)) => inner.clone(),
                    Some(None) => continue,
                    None => return Err(ExecutionError::NoSuchOverload),
                }
            } else {
                v.clone()
            };
            if out.insert(key, value).is_some() {
                return Err(ftx.error("Failed with repeated key"));
            }
        }
        Ok(Cel::Map(kube_cel::cel::objects::Map { map: Arc::new(out) }))
    });
    // cel-go `ext.Bindings`: `cel.bind(x, init, expr)`.
    ctx.add_function("cel.bind", |ftx: &FunctionContext| {
        let [var, init, expr] = ftx.args else {
            return Err(ftx.error("expected a variable, its value and an expression"));
        };
        let name =
            ident(var).ok_or_else(|| ftx.error("variable name must be a simple identifier"))?;
        let value = ftx.ptx.resolve(init)?;
        let mut scope = ftx.ptx.new_inner_scope();
        scope.add_variable_from_value(name, value);
        Cel::resolve(expr, &scope)
    });
}

fn list_arg(ftx: &FunctionContext, i: usize) -> EvalResult<Arc<Vec<Cel>>> {
    let e = ftx
        .args
        .get(i)
        .ok_or_else(|| ftx.error("missing argument"))?;
    match ftx.ptx.resolve(e)? {
        Cel::List(l) => Ok(l),
        _ => Err(ExecutionError::NoSuchOverload),
    }
}

fn keys_arg(ftx: &FunctionContext) -> EvalResult<Vec<String>> {
    Ok(list_arg(ftx, 2)?
        .iter()
        .filter_map(|k| match k {
            Cel::String(s) => Some(s.to_string()),
            _ => None,
        })
        .collect())
}

/// A scalar as a hashable key; `None` for values that are not (floats, lists, maps, ...).
fn scalar_key(v: &Cel) -> Option<Key> {
    match v {
        Cel::Int(i) => Some(Key::Int(*i)),
        Cel::UInt(u) => Some(Key::Uint(*u)),
        Cel::Bool(b) => Some(Key::Bool(*b)),
        Cel::String(s) => Some(Key::String(s.clone())),
        _ => None,
    }
}

/// The elements of a set list, for membership tests.
struct Members<'a> {
    keys: HashSet<Key>,
    /// Elements without a hashable key, compared one by one.
    others: Vec<&'a Cel>,
}

impl<'a> Members<'a> {
    fn new(items: &'a [Cel]) -> Members<'a> {
        let mut m = Members {
            keys: HashSet::with_capacity(items.len()),
            others: Vec::new(),
        };
        for v in items {
            m.insert(v);
        }
        m
    }

    fn contains(&self, v: &Cel) -> bool {
        match scalar_key(v) {
            Some(k) => self.keys.contains(&k),
            None => self.others.contains(&v),
        }
    }

    /// Adds `v`; false when it was there already.
    fn insert(&mut self, v: &'a Cel) -> bool {
        match scalar_key(v) {
            Some(k) => self.keys.insert(k),
            None if self.others.contains(&v) => false,
            None => {
                self.others.push(v);
                true
            }
        }
    }
}

/// values.go `unstructuredSetList.Equal`: same size, and every element of `other` is in the set.
fn set_equal(set: &[Cel], other: &[Cel]) -> bool {
    if set.len() != other.len() {
        return false;
    }
    let members = Members::new(set);
    other.iter().all(|v| members.contains(v))
}

/// values.go `unstructuredSetList.Add`: the set's elements in order, then those of `other` not
/// yet present, in their order.
fn set_add(set: &[Cel], other: &[Cel]) -> Vec<Cel> {
    let mut members = Members::new(set);
    let mut out = set.to_vec();
    for v in other {
        if members.insert(v) {
            out.push(v.clone());
        }
    }
    out
}

/// values.go `unstructuredMapList.toMapKey`: the values of the key properties. The server looks
/// the *escaped* key names up in the unescaped object, so a key whose name escaping changes
/// (`k.`, `namespace`) always reads as absent there. Looking the name as written up in the
/// element gives exactly that: the element carries its fields under their escaped names
/// (`k__dot__`), and a name that cannot be escaped (`k!`) under itself (see `cel::to_cel`).
fn map_key(element: &Cel, keys: &[String]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|k| {
            let found = match element {
                Cel::Map(m) => m.map.get(&Key::String(Arc::new(k.clone()))),
                _ => None,
            };
            match found {
                Some(v) => format!("{v:?}"),
                None => "<nil>".to_string(),
            }
        })
        .collect();
    parts.join("\u{0}")
}

/// values.go `unstructuredMapList.Equal`: same size, and every element of `other` equals the
/// element of the list with its key (the last one, when keys repeat).
fn map_list_equal(list: &[Cel], other: &[Cel], keys: &[String]) -> bool {
    if list.len() != other.len() {
        return false;
    }
    let by_key: HashMap<String, &Cel> = list.iter().map(|e| (map_key(e, keys), e)).collect();
    other
        .iter()
        .all(|v| by_key.get(&map_key(v, keys)).is_some_and(|e| *e == v))
}

/// values.go `unstructuredMapList.Add`: the list's elements keep their positions, overwritten
/// by the element of `other` with the same key; the other elements of `other` are appended.
fn map_list_add(list: &[Cel], other: &[Cel], keys: &[String]) -> Vec<Cel> {
    let mut out = list.to_vec();
    let mut position: HashMap<String, usize> = HashMap::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        position.insert(map_key(e, keys), i);
    }
    for v in other {
        match position.get(&map_key(v, keys)) {
            Some(&i) => out[i] = v.clone(),
            None => out.push(v.clone()),
        }
    }
    out
}

/// A CEL optional (cel-go `types.Optional`): compares equal to optionals of equal values.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Optional(pub(crate) Option<Cel>);

impl kube_cel::cel::objects::Opaque for Optional {
    fn runtime_type_name(&self) -> &str {
        "optional_type"
    }
}

pub(crate) fn optional(v: Option<Cel>) -> Cel {
    Cel::Opaque(Arc::new(Optional(v)))
}

/// `Some(inner)` when `v` is an optional.
fn as_optional(v: &Cel) -> Option<Option<&Cel>> {
    match v {
        Cel::Opaque(o) => o.downcast_ref::<Optional>().map(|o| o.0.as_ref()),
        _ => None,
    }
}

/// An optional's value (`None` for `optional.none()`); other values are themselves.
fn unwrap_optional(v: Cel) -> Option<Cel> {
    match as_optional(&v) {
        Some(inner) => inner.cloned(),
        None => Some(v),
    }
}

fn this_optional(ftx: &FunctionContext) -> EvalResult<Option<Cel>> {
    match ftx.this.as_ref().and_then(as_optional) {
        Some(inner) => Ok(inner.cloned()),
        None => Err(ExecutionError::NoSuchOverload),
    }
}

fn resolve_arg(ftx: &FunctionContext, i: usize) -> EvalResult<Cel> {
    let e = ftx
        .args
        .get(i)
        .ok_or_else(|| ftx.error("missing argument"))?;
    ftx.ptx.resolve(e)
}

fn indices(list: &[Cel]) -> Vec<usize> {
    list.iter()
        .filter_map(|v| match v {
            Cel::Int(i) => usize::try_from(*i).ok(),
            _ => None,
        })
        .collect()
}

/// cel-go `optional.ofNonZeroValue`: the zero values of each type give `optional.none()`.
fn is_zero(v: &Cel) -> bool {
    match v {
        Cel::Null => true,
        Cel::Bool(b) => !b,
        Cel::Int(i) => *i == 0,
        Cel::UInt(u) => *u == 0,
        Cel::Float(f) => *f == 0.0,
        Cel::String(s) => s.is_empty(),
        Cel::Bytes(b) => b.is_empty(),
        Cel::List(l) => l.is_empty(),
        Cel::Map(m) => m.map.is_empty(),
        Cel::Duration(d) => d.is_zero(),
        // Go's zero time, 0001-01-01T00:00:00Z (cel-go `Timestamp.IsZeroValue`).
        Cel::Timestamp(t) => t.timestamp() == -62_135_596_800 && t.timestamp_subsec_nanos() == 0,
        Cel::Opaque(o) => o.downcast_ref::<Optional>().is_some_and(|o| o.0.is_none()),
        Cel::Function(..) => false,
    }
}

/// cel-go `ext` optionals: `opt.optMap(v, expr)` is `optional.of(expr)` with `v` bound to the
/// value, or `optional.none()`; `optFlatMap` takes `expr`'s optional as it is.
fn opt_map(ftx: &FunctionContext, flat: bool) -> EvalResult<Cel> {
    let [var, expr] = ftx.args else {
        return Err(ftx.error("expected a variable and an expression"));
    };
    let Some(name) = ident(var) else {
        return Err(ftx.error("variable name must be a simple identifier"));
    };
    let Some(value) = this_optional(ftx)? else {
        return Ok(optional(None));
    };
    let mut scope = ftx.ptx.new_inner_scope();
    scope.add_variable_from_value(name, value);
    let result = Cel::resolve(expr, &scope)?;
    if flat {
        match as_optional(&result) {
            Some(_) => Ok(result),
            None => Err(ExecutionError::NoSuchOverload),
        }
    } else {
        Ok(optional(Some(result)))
    }
}
