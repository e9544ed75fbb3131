//! A CEL type checker following cel-go's `checker/checker.go`: identifiers, field selection on
//! the schema's declared types, overload resolution with type parameters
//! (`checker/types.go` `internalIsAssignable`), comprehensions, and cel-go's error wording.

use std::collections::HashMap;
use std::sync::Arc;

use super::ast::{Comp, Expr, Kind, Lit};
use super::decls::{self, Overload};
use super::types::{DeclKind, Ty};

/// The result of checking one expression.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The type of every node, by id.
    pub(crate) types: HashMap<u32, Ty>,
    /// The overloads a call may dispatch to, by id.
    pub(crate) overloads: HashMap<u32, Vec<&'static str>>,
    /// Errors as (character offset, message), in the order found.
    pub(crate) errors: Vec<(usize, String)>,
    pub(crate) uses_old_self: bool,
    /// Calls resolved as namespaced functions (`sets.contains(a, b)`): their full name; the
    /// receiver is not an operand.
    pub(crate) namespaced: HashMap<u32, String>,
    /// Selections resolved as qualified names (`google.protobuf.Duration`): cel-go's checker
    /// rewrites them into one identifier of that name.
    pub(crate) qualified: HashMap<u32, String>,
}

type Mapping = HashMap<Arc<str>, Ty>;

struct Checker<'a> {
    vars: &'a [(&'a str, Ty)],
    scopes: Vec<(String, Ty)>,
    types: HashMap<u32, Ty>,
    overloads: HashMap<u32, Vec<&'static str>>,
    errors: Vec<(usize, String)>,
    mapping: Mapping,
    fresh: usize,
    uses_old_self: bool,
    namespaced: HashMap<u32, String>,
    qualified: HashMap<u32, String>,
}

/// Checks `expr` with the given variables (`self`, `oldSelf`).
pub(crate) fn check(expr: &Expr, vars: &[(&str, Ty)]) -> Checked {
    let mut c = Checker {
        vars,
        scopes: Vec::new(),
        types: HashMap::new(),
        overloads: HashMap::new(),
        errors: Vec::new(),
        mapping: HashMap::new(),
        fresh: 0,
        uses_old_self: false,
        namespaced: HashMap::new(),
        qualified: HashMap::new(),
    };
    c.check(expr);
    let mapping = std::mem::take(&mut c.mapping);
    let types = c
        .types
        .into_iter()
        .map(|(id, t)| (id, substitute(&mapping, &t, true)))
        .collect();
    Checked {
        types,
        overloads: c.overloads,
        errors: c.errors,
        uses_old_self: c.uses_old_self,
        namespaced: c.namespaced,
        qualified: c.qualified,
    }
}

impl Checker<'_> {
    fn fresh_var(&mut self) -> Ty {
        let t = Ty::Param(Arc::from(format!("_var{}", self.fresh)));
        self.fresh += 1;
        t
    }

    fn set(&mut self, e: &Expr, t: Ty) {
        self.types.insert(e.id, t);
    }

    fn get(&self, e: &Expr) -> Ty {
        self.types.get(&e.id).cloned().unwrap_or(Ty::Error)
    }

    fn error(&mut self, pos: usize, message: String) {
        self.errors.push((pos, message));
    }

    fn lookup_var(&mut self, name: &str) -> Option<Ty> {
        // A leading dot names the root scope (`.self`): cel-go's `ResolveCandidateNames` drops
        // it and looks past comprehension variables.
        let root = name.strip_prefix('.');
        if root.is_none()
            && let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name)
        {
            return Some(t.clone());
        }
        let name = root.unwrap_or(name);
        if let Some((_, t)) = self.vars.iter().find(|(n, _)| *n == name) {
            if name == "oldSelf" {
                self.uses_old_self = true;
            }
            return Some(t.clone());
        }
        None
    }

    fn check(&mut self, e: &Expr) {
        match &e.kind {
            Kind::Lit(l) => {
                let t = match l {
                    Lit::Bool(_) => Ty::Bool,
                    Lit::Int(_) => Ty::Int,
                    Lit::Uint(_) => Ty::Uint,
                    Lit::Double(_) => Ty::Double,
                    Lit::String(_) => Ty::String,
                    Lit::Bytes(_) => Ty::Bytes,
                    Lit::Null => Ty::Null,
                };
                self.set(e, t);
            }
            Kind::Ident(name) => {
                let t = match self.lookup_var(name) {
                    Some(t) => t,
                    None => match decls::type_ident(name.trim_start_matches('.')) {
                        Some(t) => t,
                        None => {
                            self.error(
                                e.pos,
                                format!("undeclared reference to '{name}' (in container '')"),
                            );
                            Ty::Error
                        }
                    },
                };
                self.set(e, t);
            }
            Kind::Select {
                operand,
                field,
                test,
            } => {
                // A qualified name (`google.protobuf.Duration`) is not a selection.
                if let Some(q) = qualified(e)
                    && self.lookup_var(q.split('.').next().unwrap_or("")).is_none()
                    && let Some(t) = decls::type_ident(&q)
                {
                    self.set(e, t);
                    self.qualified.insert(e.id, q);
                    return;
                }
                self.check(operand);
                let ot = substitute(&self.mapping, &self.get(operand), false);
                let ft = self.field_type(e.pos, &ot, field);
                self.set(e, if *test { Ty::Bool } else { ft });
            }
            Kind::Call { func, target, args } => self.check_call(e, func, target.as_deref(), args),
            Kind::List(items) => {
                let mut elem: Option<Ty> = None;
                for item in items {
                    self.check(item);
                    let t = self.get(item);
                    elem = Some(match elem {
                        None => t,
                        Some(prev) => self.join(item.pos, prev, t),
                    });
                }
                let elem = elem.unwrap_or_else(|| self.fresh_var());
                self.set(e, Ty::List(Box::new(elem)));
            }
            Kind::Map(entries) => {
                let mut key: Option<Ty> = None;
                let mut val: Option<Ty> = None;
                for (k, v) in entries {
                    self.check(k);
                    let kt = self.get(k);
                    key = Some(match key {
                        None => kt,
                        Some(prev) => self.join(k.pos, prev, kt),
                    });
                    self.check(v);
                    let vt = self.get(v);
                    val = Some(match val {
                        None => vt,
                        Some(prev) => self.join(v.pos, prev, vt),
                    });
                }
                let key = key.unwrap_or_else(|| self.fresh_var());
                let val = val.unwrap_or_else(|| self.fresh_var());
                self.set(e, Ty::Map(Box::new(key), Box::new(val)));
            }
            Kind::Struct { name, fields } => {
                for (_, v) in fields {
                    self.check(v);
                }
                self.error(
                    e.pos,
                    format!("undeclared reference to '{name}' (in container '')"),
                );
                self.set(e, Ty::Error);
            }
            Kind::Comp(c) => self.check_comp(e, c),
        }
    }

    /// `joinTypes` with dynamic aggregate element types; kube-apiserver's homogeneity check is
    /// the separate validator in `super::validate_literals`.
    fn join(&mut self, _pos: usize, prev: Ty, cur: Ty) -> Ty {
        if let Some(m) = is_assignable(&self.mapping, &prev, &cur) {
            self.mapping = m;
            most_general(prev, cur)
        } else {
            Ty::Dyn
        }
    }

    fn field_type(&mut self, pos: usize, ot: &Ty, field: &str) -> Ty {
        match ot {
            Ty::Opaque("optional_type", params) => {
                // Selecting on an optional yields an optional (cel-go optional field chaining).
                let inner = params.first().cloned().unwrap_or(Ty::Dyn);
                let ft = self.field_type(pos, &inner, field);
                if matches!(ft, Ty::Error) {
                    Ty::Error
                } else {
                    Ty::optional(ft)
                }
            }
            Ty::Object(name, decl) => match &decl.kind {
                // Since 1.32 a reserved word selects its escaped field (apiserver
                // pkg/cel/types.go FindStructFieldType, recognizeKeywordAsFieldName).
                DeclKind::Object(fields) => match fields
                    .get(field)
                    .map(|f| (field.to_string(), f))
                    .or_else(|| {
                        let escaped = format!("__{field}__");
                        crate::cel::CEL_RESERVED
                            .contains(&field)
                            .then(|| fields.get(&escaped).map(|f| (escaped.clone(), f)))
                            .flatten()
                    }) {
                    Some((fname, f)) => f.ty(&format!("{name}.{fname}")),
                    None => {
                        self.error(pos, format!("undefined field '{field}'"));
                        Ty::Error
                    }
                },
                _ => Ty::Error,
            },
            Ty::Map(_, v) => (**v).clone(),
            Ty::Dyn | Ty::Error | Ty::Param(_) => Ty::Dyn,
            other => {
                self.error(
                    pos,
                    format!("type '{}' does not support field selection", other.format()),
                );
                Ty::Error
            }
        }
    }

    fn check_call(&mut self, e: &Expr, func: &str, target: Option<&Expr>, args: &[Expr]) {
        let fns = decls::functions();
        // A receiver that is a qualified name may be a namespace: `sets.contains(a, b)`.
        if let Some(t) = target
            && let Some(q) = qualified(t)
            && let Some(overloads) = fns.get(format!("{q}.{func}").as_str())
        {
            for a in args {
                self.check(a);
            }
            let arg_types: Vec<Ty> = args.iter().map(|a| self.get(a)).collect();
            let name = format!("{q}.{func}");
            self.resolve(e, &name, overloads, false, &arg_types);
            self.namespaced.insert(e.id, name);
            return;
        }
        if func == "_?._" {
            // Optional field selection: `a.?b`.
            if let [operand, field] = args {
                self.check(operand);
                self.check(field);
                let ot = substitute(&self.mapping, &self.get(operand), false);
                let name = match &field.kind {
                    Kind::Lit(Lit::String(s)) => s.clone(),
                    _ => String::new(),
                };
                let inner = match &ot {
                    Ty::Opaque("optional_type", p) => p.first().cloned().unwrap_or(Ty::Dyn),
                    other => other.clone(),
                };
                let ft = self.field_type(e.pos, &inner, &name);
                self.overloads.insert(e.id, vec!["select_optional_field"]);
                self.set(e, Ty::optional(ft));
                return;
            }
        }
        for a in args {
            self.check(a);
        }
        if let Some(t) = target {
            self.check(t);
        }
        let Some(overloads) = fns.get(func) else {
            self.error(
                e.pos,
                format!("undeclared reference to '{func}' (in container '')"),
            );
            self.set(e, Ty::Error);
            return;
        };
        let mut arg_types: Vec<Ty> = Vec::with_capacity(args.len() + 1);
        if let Some(t) = target {
            arg_types.push(self.get(t));
        }
        arg_types.extend(args.iter().map(|a| self.get(a)));
        if target.is_none() && (func == "_&&_" || func == "_||_") {
            // checker.go `resolveOverload`: the logical operators are not resolved as
            // overloads; each operand that is not assignable to bool is its own type mismatch,
            // at the operand, naming its type as checked so far.
            let mut mismatch = false;
            for (a, t) in args.iter().zip(&arg_types) {
                match is_assignable(&self.mapping, t, &Ty::Bool) {
                    Some(m) => self.mapping = m,
                    None => {
                        mismatch = true;
                        self.error(
                            a.pos,
                            format!("expected type 'bool' but found '{}'", t.format()),
                        );
                    }
                }
            }
            if mismatch {
                self.set(e, Ty::Error);
                return;
            }
        }
        self.resolve(e, func, overloads, target.is_some(), &arg_types);
    }

    fn resolve(&mut self, e: &Expr, name: &str, overloads: &[Overload], member: bool, args: &[Ty]) {
        let mut result: Option<Ty> = None;
        let mut matched = Vec::new();
        for o in overloads {
            if o.member != member || o.params.len() != args.len() {
                continue;
            }
            // Fresh type variables for the overload's type parameters.
            let mut subs: Mapping = HashMap::new();
            for p in o.params.iter().chain(std::iter::once(&o.result)) {
                collect_params(p, &mut |n| {
                    if !subs.contains_key(n) {
                        let v = self.fresh_var();
                        subs.insert(Arc::from(n), v);
                    }
                });
            }
            let params: Vec<Ty> = o
                .params
                .iter()
                .map(|p| substitute(&subs, p, false))
                .collect();
            let Some(m) = is_assignable_list(&self.mapping, args, &params) else {
                continue;
            };
            self.mapping = m;
            let rt = substitute(&self.mapping, &substitute(&subs, &o.result, false), false);
            matched.push(o.id);
            result = Some(match result {
                None => rt,
                Some(prev) if !matches!(prev, Ty::Dyn) && !prev.exact(&rt) => Ty::Dyn,
                Some(prev) => prev,
            });
        }
        match result {
            Some(t) => {
                self.overloads.insert(e.id, matched);
                self.set(e, t);
            }
            None => {
                let sig = if member {
                    let (t, rest) = args
                        .split_first()
                        .map_or((String::new(), &[][..]), |(t, r)| {
                            (format!("{}.", t.format()), r)
                        });
                    format!(
                        "{t}({})",
                        rest.iter()
                            .map(|a| substitute(&self.mapping, a, true).format())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    format!(
                        "({})",
                        args.iter()
                            .map(|a| substitute(&self.mapping, a, true).format())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                self.error(
                    e.pos,
                    format!("found no matching overload for '{name}' applied to '{sig}'"),
                );
                self.set(e, Ty::Error);
            }
        }
    }

    fn check_comp(&mut self, e: &Expr, c: &Comp) {
        self.check(&c.range);
        let range = substitute(&self.mapping, &self.get(&c.range), false);
        let two = c.iter_var2.is_some();
        let (var_type, var2_type) = match &range {
            Ty::List(elem) if two => (Ty::Int, (**elem).clone()),
            Ty::List(elem) => ((**elem).clone(), Ty::Dyn),
            Ty::Map(k, v) => ((**k).clone(), (**v).clone()),
            Ty::Dyn | Ty::Error | Ty::Param(_) => (Ty::Dyn, Ty::Dyn),
            other => {
                self.error(
                    c.range.pos,
                    format!(
                        "expression of type '{}' cannot be range of a comprehension (must be list, map, or dynamic)",
                        other.format()
                    ),
                );
                (Ty::Dyn, Ty::Dyn)
            }
        };
        self.check(&c.accu_init);
        let accu_type = self.get(&c.accu_init);
        self.scopes.push((c.accu_var.clone(), accu_type.clone()));
        self.scopes.push((c.iter_var.clone(), var_type));
        if let Some(v2) = &c.iter_var2 {
            self.scopes.push((v2.clone(), var2_type));
        }
        self.check(&c.cond);
        self.assert_type(&c.cond, &Ty::Bool);
        self.check(&c.step);
        self.assert_type(&c.step, &accu_type);
        self.scopes.pop();
        if two {
            self.scopes.pop();
        }
        self.check(&c.result);
        self.scopes.pop();
        let t = self.get(&c.result);
        self.set(e, t);
    }

    fn assert_type(&mut self, e: &Expr, want: &Ty) {
        let got = self.get(e);
        match is_assignable(&self.mapping, want, &got) {
            Some(m) => self.mapping = m,
            None => {
                let w = substitute(&self.mapping, want, true).format();
                let g = substitute(&self.mapping, &got, true).format();
                self.error(e.pos, format!("expected type '{w}' but found '{g}'"));
            }
        }
    }
}

/// `a.b.c` for a chain of identifiers, else `None`.
fn qualified(e: &Expr) -> Option<String> {
    match &e.kind {
        Kind::Ident(n) => Some(n.clone()),
        Kind::Select {
            operand,
            field,
            test: false,
        } => qualified(operand).map(|q| format!("{q}.{field}")),
        _ => None,
    }
}

fn collect_params(t: &Ty, f: &mut impl FnMut(&str)) {
    match t {
        Ty::Param(n) => f(n),
        Ty::List(e) | Ty::Type(e) => collect_params(e, f),
        Ty::Map(k, v) => {
            collect_params(k, f);
            collect_params(v, f);
        }
        Ty::Opaque(_, ps) => ps.iter().for_each(|p| collect_params(p, f)),
        _ => {}
    }
}

/// Replaces type parameters by their substitutions; `final_` turns unbound ones into `dyn`.
fn substitute(m: &Mapping, t: &Ty, final_: bool) -> Ty {
    match t {
        Ty::Param(n) => match m.get(n) {
            Some(s) => substitute(m, s, final_),
            None if final_ => Ty::Dyn,
            None => t.clone(),
        },
        Ty::List(e) => Ty::List(Box::new(substitute(m, e, final_))),
        Ty::Type(e) => Ty::Type(Box::new(substitute(m, e, final_))),
        Ty::Map(k, v) => Ty::Map(
            Box::new(substitute(m, k, final_)),
            Box::new(substitute(m, v, final_)),
        ),
        Ty::Opaque(n, ps) => Ty::Opaque(n, ps.iter().map(|p| substitute(m, p, final_)).collect()),
        _ => t.clone(),
    }
}

fn is_assignable(m: &Mapping, t1: &Ty, t2: &Ty) -> Option<Mapping> {
    let mut copy = m.clone();
    internal_is_assignable(&mut copy, t1, t2).then_some(copy)
}

fn is_assignable_list(m: &Mapping, l1: &[Ty], l2: &[Ty]) -> Option<Mapping> {
    let mut copy = m.clone();
    (l1.len() == l2.len()
        && l1
            .iter()
            .zip(l2)
            .all(|(a, b)| internal_is_assignable(&mut copy, a, b)))
    .then_some(copy)
}

fn occurs(m: &Mapping, name: &str, t: &Ty) -> bool {
    match t {
        Ty::Param(n) => &**n == name || m.get(n).is_some_and(|s| occurs(m, name, s)),
        Ty::List(e) | Ty::Type(e) => occurs(m, name, e),
        Ty::Map(k, v) => occurs(m, name, k) || occurs(m, name, v),
        Ty::Opaque(_, ps) => ps.iter().any(|p| occurs(m, name, p)),
        _ => false,
    }
}

/// `isValidTypeSubstitution`: whether `t1` may stand for the type parameter `t2`.
fn valid_substitution(m: &mut Mapping, t1: &Ty, t2: &Ty) -> (bool, bool) {
    let Ty::Param(name) = t2 else {
        return (false, false);
    };
    if t1.exact(t2) {
        return (true, true);
    }
    if let Some(sub) = m.get(name).cloned() {
        if t1.exact(&sub) {
            return (true, true);
        }
        if internal_is_assignable(m, t1, &sub) {
            let new = most_general(t1.clone(), sub);
            if !occurs(m, name, &new) {
                m.insert(name.clone(), new);
            }
            return (true, true);
        }
        return (false, true);
    }
    if !occurs(m, name, t1) {
        m.insert(name.clone(), t1.clone());
        return (true, false);
    }
    (false, false)
}

fn is_nullable(t: &Ty) -> bool {
    matches!(
        t,
        Ty::Opaque(..) | Ty::Object(..) | Ty::Struct(_) | Ty::Duration | Ty::Timestamp | Ty::Null
    )
}

/// cel-go's `internalIsAssignable`.
fn internal_is_assignable(m: &mut Mapping, t1: &Ty, t2: &Ty) -> bool {
    if matches!(t2, Ty::Param(_)) {
        let (valid, has_sub) = valid_substitution(m, t1, t2);
        if valid {
            return true;
        }
        if has_sub {
            return false;
        }
    }
    if matches!(t1, Ty::Param(_)) {
        return valid_substitution(m, t2, t1).0;
    }
    if t1.is_dyn_or_error() || t2.is_dyn_or_error() {
        return true;
    }
    if matches!(t1, Ty::Null) {
        return is_nullable(t2);
    }
    if matches!(t2, Ty::Null) {
        return is_nullable(t1);
    }
    match (t1, t2) {
        (Ty::List(a), Ty::List(b)) => internal_is_assignable(m, a, b),
        (Ty::Map(a, b), Ty::Map(c, d)) => {
            internal_is_assignable(m, a, c) && internal_is_assignable(m, b, d)
        }
        (Ty::Opaque(a, p), Ty::Opaque(b, q)) => {
            a == b
                && p.len() == q.len()
                && p.iter()
                    .zip(q)
                    .all(|(x, y)| internal_is_assignable(m, x, y))
        }
        (Ty::Type(_), Ty::Type(_)) => true,
        _ => t1.exact(t2),
    }
}

fn less_specific(t1: &Ty, t2: &Ty) -> bool {
    if matches!(t1, Ty::Dyn | Ty::Param(_)) {
        return true;
    }
    if matches!(t2, Ty::Dyn | Ty::Param(_)) {
        return false;
    }
    match (t1, t2) {
        (Ty::List(a), Ty::List(b)) => less_specific(a, b),
        (Ty::Map(a, b), Ty::Map(c, d)) => less_specific(a, c) && less_specific(b, d),
        (Ty::Opaque(a, p), Ty::Opaque(b, q)) => {
            a == b && p.len() == q.len() && p.iter().zip(q).all(|(x, y)| less_specific(x, y))
        }
        (Ty::Type(_), Ty::Type(_)) => true,
        _ => t1.exact(t2),
    }
}

fn most_general(t1: Ty, t2: Ty) -> Ty {
    if less_specific(&t1, &t2) { t1 } else { t2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The type cel-go's checker gives `source` with these variables, or its errors (message
    /// and 1-based column, on one line).
    fn type_of(source: &str, vars: &[(&str, Ty)]) -> Result<String, Vec<String>> {
        let expr = super::super::ast::parse(source).expect("parses");
        let checked = check(&expr, vars);
        if !checked.errors.is_empty() {
            return Err(checked
                .errors
                .iter()
                .map(|(pos, m)| format!("1:{}: {m}", pos + 1))
                .collect());
        }
        Ok(checked.types[&expr.id].format())
    }

    fn list(t: Ty) -> Ty {
        Ty::List(Box::new(t))
    }

    fn map(k: Ty, v: Ty) -> Ty {
        Ty::Map(Box::new(k), Box::new(v))
    }

    // cel-go v0.22.0 checker/checker_test.go `testCases`: the `in` → `outType` rows that need
    // no protobuf message types (the variables as each row declares them). Aggregate literals
    // of mixed types are rows here although the Kubernetes environment refuses them: that is a
    // separate validator (`validate_literals`), not the checker.
    #[test]
    fn types_follow_cel_go() {
        type Row<'r> = (&'r str, &'r [(&'r str, Ty)], &'r str);
        let rows: &[Row] = &[
            (r#""A""#, &[], "string"),
            ("12u", &[], "uint"),
            ("null", &[], "null"),
            ("[]", &[], "list(dyn)"),
            ("[1]", &[], "list(int)"),
            (r#"[1, "A"]"#, &[], "list(dyn)"),
            ("[] + [1,2,3,] + [4]", &[], "list(int)"),
            ("[1, 2u] + []", &[], "list(dyn)"),
            ("{1:2u, 2:3u}", &[], "map(int, uint)"),
            (r#"{"a":1, "b":2}.a"#, &[], "int"),
            ("{1:2u, 2u:3}", &[], "map(dyn, dyn)"),
            ("{}", &[], "map(dyn, dyn)"),
            ("size(x) == x.size()", &[("x", list(Ty::Int))], "bool"),
            (r#"int(1u) + int(uint("1"))"#, &[], "int"),
            ("false && !true || false ? 2 : 3", &[], "int"),
            (
                "lists.filter(x, x > 1.5)",
                &[("lists", Ty::Dyn)],
                "list(dyn)",
            ),
            ("list == type([1]) && map == type({1:2u})", &[], "bool"),
            ("1 in dyn([1, 2, 3])", &[], "bool"),
            ("type(null) == null_type", &[], "bool"),
            ("type(type) == type", &[], "bool"),
            (
                "([[[1]], [[2]], [[3]]][0][0] + [2, 3, {'four': {'five': 'six'}}])[3]",
                &[],
                "dyn",
            ),
            ("[1] + [dyn('string')]", &[], "list(dyn)"),
            ("[dyn('string')] + [1]", &[], "list(dyn)"),
            (
                "a.b + 1 == a[0]",
                &[("a", Ty::Param(Arc::from("T")))],
                "bool",
            ),
            (
                "[1].map(x, [x, x]).map(x, [x, x])",
                &[],
                "list(list(list(int)))",
            ),
            (
                r#"values.filter(i, i.content != "").map(i, i.content)"#,
                &[("values", list(map(Ty::String, Ty::String)))],
                "list(string)",
            ),
            ("[{}.map(c,c,c)]+[{}.map(c,c,c)]", &[], "list(list(bool))"),
            ("{}.map(c,[c,type(c)])", &[], "list(list(dyn))"),
        ];
        let mut wrong = Vec::new();
        for (source, vars, want) in rows {
            match type_of(source, vars) {
                Ok(got) if got == *want => {}
                other => wrong.push(format!("{source}: want {want}, got {other:?}")),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    // The same table's error rows: a type variable bound to a list containing itself is
    // refused (`[].map(x, [].map(y, x in y && y in x))`, the occurs check), and a fresh
    // type variable is printed with its name.
    #[test]
    fn errors_follow_cel_go() {
        assert_eq!(
            type_of("[].map(x, [].map(y, x in y && y in x))", &[]),
            Err(vec![
                "1:33: found no matching overload for '@in' applied to '(list(dyn), dyn)'".into()
            ])
        );
        assert_eq!(
            type_of("[].length", &[]),
            Err(vec![
                "1:3: type 'list(_var0)' does not support field selection".into()
            ])
        );
        assert_eq!(
            type_of("x.all(y, y == true)", &[("x", Ty::Bool)]),
            Err(vec![
                "1:1: expression of type 'bool' cannot be range of a comprehension (must be list, map, or dynamic)".into()
            ])
        );
    }

    fn param(n: &str) -> Ty {
        Ty::Param(Arc::from(n))
    }

    // cel-go v0.22.0 checker/types.go `notReferencedIn`: a type variable occurs in a type that
    // is it, that has it among the parameters of a list, map, opaque or type type at any
    // depth, or that is another variable bound to such a type.
    #[test]
    fn occurs_looks_through_every_parameter_and_binding() {
        let a = || param("A");
        let mut m = Mapping::new();
        m.insert(Arc::from("B"), list(a()));
        let opt = Ty::optional;
        for (t, want) in [
            (a(), true),
            (param("C"), false),
            (param("B"), true),
            (list(list(a())), true),
            (Ty::Type(Box::new(a())), true),
            (map(a(), Ty::Int), true),
            (map(Ty::Int, a()), true),
            (map(Ty::Int, Ty::Int), false),
            (opt(a()), true),
            (opt(Ty::Int), false),
            (list(Ty::Dyn), false),
            (Ty::Int, false),
        ] {
            assert_eq!(occurs(&m, "A", &t), want, "{}", t.format());
        }
    }

    // cel-go v0.22.0 checker/types.go `isEqualOrLessSpecific` (and `mostGeneral`, which keeps
    // the first type when it is): dyn and type variables are less specific than anything;
    // lists, maps and opaque types compare parameter by parameter; all type types are equal.
    #[test]
    fn less_specific_compares_parameters() {
        let opt = Ty::optional;
        let set = |t: Ty| Ty::Opaque("set", vec![t]);
        for (t1, t2, want) in [
            (Ty::Dyn, Ty::Int, true),
            (param("A"), list(Ty::Int), true),
            (Ty::Int, Ty::Dyn, false),
            (Ty::Int, param("A"), false),
            (list(Ty::Dyn), list(Ty::Int), true),
            (list(Ty::Int), list(Ty::Dyn), false),
            (map(Ty::Dyn, Ty::Dyn), map(Ty::String, Ty::Int), true),
            (map(Ty::Dyn, Ty::Int), map(Ty::String, Ty::Dyn), false),
            (map(Ty::String, Ty::Dyn), map(Ty::Dyn, Ty::Int), false),
            (opt(Ty::Dyn), opt(Ty::Int), true),
            (opt(Ty::Int), opt(Ty::Dyn), false),
            (opt(Ty::Dyn), set(Ty::Int), false),
            (Ty::Opaque("optional_type", vec![]), opt(Ty::Int), false),
            (
                Ty::Type(Box::new(Ty::Int)),
                Ty::Type(Box::new(Ty::String)),
                true,
            ),
            (Ty::Int, Ty::Int, true),
            (Ty::Int, Ty::Uint, false),
        ] {
            assert_eq!(
                less_specific(&t1, &t2),
                want,
                "{} vs {}",
                t1.format(),
                t2.format()
            );
        }
        assert!(matches!(
            most_general(list(Ty::Dyn), list(Ty::Int)),
            Ty::List(e) if matches!(*e, Ty::Dyn)
        ));
        assert!(matches!(
            most_general(list(Ty::Int), list(Ty::Dyn)),
            Ty::List(e) if matches!(*e, Ty::Dyn)
        ));
    }
}
