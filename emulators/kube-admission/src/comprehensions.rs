//! cel-go `ext/comprehensions.go` (the two-variable comprehensions of the 1.32 environment) for
//! the CEL interpreter, which expands only the one-variable macros: `all`, `exists` and
//! `existsOne` with two variables, `transformList`, `transformMap` and `transformMapEntry`.
//! The first variable is the index (lists) or key (maps), the second the value.
//!
//! Errors follow the macros' expansions: `all`/`exists` fold with `&&`/`||`, so an error is
//! absorbed once the result is decided (a false for `all`, a true for `exists`); everything
//! else propagates the first error.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::cel::objects::{Key, Map as CelMap};
use kube_cel::cel::parser::Expression;
use kube_cel::cel::{Context, ExecutionError, FunctionContext, Value as Cel};

type Result<T> = std::result::Result<T, ExecutionError>;

/// Registers the functions the interpreter calls for the two-variable forms.
pub(crate) fn register(ctx: &mut Context<'static>) {
    ctx.add_function("all", |ftx: &FunctionContext| {
        quantifier(ftx, Quantifier::All)
    });
    ctx.add_function("exists", |ftx: &FunctionContext| {
        quantifier(ftx, Quantifier::Exists)
    });
    ctx.add_function("existsOne", |ftx: &FunctionContext| {
        quantifier(ftx, Quantifier::ExistsOne)
    });
    ctx.add_function("transformList", |ftx: &FunctionContext| {
        transform(ftx, Transform::List)
    });
    ctx.add_function("transformMap", |ftx: &FunctionContext| {
        transform(ftx, Transform::Map)
    });
    ctx.add_function("transformMapEntry", |ftx: &FunctionContext| {
        transform(ftx, Transform::MapEntry)
    });
}

#[derive(Clone, Copy)]
enum Quantifier {
    All,
    Exists,
    ExistsOne,
}

#[derive(Clone, Copy)]
enum Transform {
    List,
    Map,
    MapEntry,
}

fn ident(ftx: &FunctionContext, e: &Expression) -> Result<String> {
    match &e.expr {
        kube_cel::cel::common::ast::Expr::Ident(n) => Ok(n.clone()),
        _ => Err(ftx.error("argument must be a simple name")),
    }
}

fn key_value(k: &Key) -> Cel {
    match k {
        Key::Int(i) => Cel::Int(*i),
        Key::Uint(u) => Cel::UInt(*u),
        Key::Bool(b) => Cel::Bool(*b),
        Key::String(s) => Cel::String(s.clone()),
    }
}

fn value_key(ftx: &FunctionContext, v: &Cel) -> Result<Key> {
    Ok(match v {
        Cel::Int(i) => Key::Int(*i),
        Cel::UInt(u) => Key::Uint(*u),
        Cel::Bool(b) => Key::Bool(*b),
        Cel::String(s) => Key::String(s.clone()),
        other => return Err(ftx.error(format!("unsupported map key type: {other:?}"))),
    })
}

/// The (first, second) variable pairs of the target: (index, element) of a list, (key, value)
/// of a map.
fn pairs(ftx: &FunctionContext) -> Result<Vec<(Cel, Cel)>> {
    match &ftx.this {
        Some(Cel::List(items)) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (Cel::Int(i64::try_from(i).unwrap_or(i64::MAX)), v.clone()))
            .collect()),
        Some(Cel::Map(m)) => Ok(m
            .map
            .iter()
            .map(|(k, v)| (key_value(k), v.clone()))
            .collect()),
        Some(_) => Err(ExecutionError::NoSuchOverload),
        None => Err(ftx.error("expected a receiver")),
    }
}

fn eval(
    ftx: &FunctionContext,
    names: &(String, String),
    pair: &(Cel, Cel),
    e: &Expression,
) -> Result<Cel> {
    let mut scope = ftx.ptx.new_inner_scope();
    scope.add_variable_from_value(names.0.as_str(), pair.0.clone());
    scope.add_variable_from_value(names.1.as_str(), pair.1.clone());
    Cel::resolve(e, &scope)
}

fn quantifier(ftx: &FunctionContext, q: Quantifier) -> Result<Cel> {
    let [a, b, pred] = ftx.args else {
        return Err(ftx.error("expected two variables and a predicate"));
    };
    let names = (ident(ftx, a)?, ident(ftx, b)?);
    let mut first_error = None;
    let mut count = 0usize;
    for pair in pairs(ftx)? {
        match eval(ftx, &names, &pair, pred) {
            Ok(Cel::Bool(r)) => match q {
                Quantifier::All if !r => return Ok(Cel::Bool(false)),
                Quantifier::Exists if r => return Ok(Cel::Bool(true)),
                Quantifier::ExistsOne if r => count += 1,
                _ => {}
            },
            // The first error stands unless another element decides the result (existsOne
            // never decides early, so it ends with that error).
            Ok(_) => {
                first_error.get_or_insert(ExecutionError::NoSuchOverload);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(Cel::Bool(match q {
        Quantifier::All => true,
        Quantifier::Exists => false,
        Quantifier::ExistsOne => count == 1,
    }))
}

fn transform(ftx: &FunctionContext, t: Transform) -> Result<Cel> {
    let (a, b, filter, expr) = match ftx.args {
        [a, b, expr] => (a, b, None, expr),
        [a, b, filter, expr] => (a, b, Some(filter), expr),
        _ => return Err(ftx.error("expected two variables, an optional filter and a value")),
    };
    let names = (ident(ftx, a)?, ident(ftx, b)?);
    let mut list = Vec::new();
    let mut map: HashMap<Key, Cel> = HashMap::new();
    for pair in pairs(ftx)? {
        if let Some(f) = filter {
            match eval(ftx, &names, &pair, f)? {
                Cel::Bool(true) => {}
                Cel::Bool(false) => continue,
                _ => return Err(ExecutionError::NoSuchOverload),
            }
        }
        let v = eval(ftx, &names, &pair, expr)?;
        match t {
            Transform::List => list.push(v),
            Transform::Map => {
                map.insert(value_key(ftx, &pair.0)?, v);
            }
            Transform::MapEntry => {
                let Cel::Map(entries) = v else {
                    return Err(ExecutionError::NoSuchOverload);
                };
                for (k, val) in entries.map.iter() {
                    if map.contains_key(k) {
                        return Err(ftx.error(format!(
                            "insert failed: key {:?} already exists",
                            key_value(k)
                        )));
                    }
                    map.insert(k.clone(), val.clone());
                }
            }
        }
    }
    Ok(match t {
        Transform::List => Cel::List(Arc::new(list)),
        Transform::Map | Transform::MapEntry => Cel::Map(CelMap { map: Arc::new(map) }),
    })
}
