//! Static cost estimation as kube-apiserver runs it for a CRD rule: cel-go's `checker/cost.go`
//! (`coster`), with the Kubernetes library estimator (apiserver `pkg/cel/library/cost.go`
//! `EstimateCallCost`) and apiextensions' size estimator (`pkg/apiserver/schema/cel/
//! compilation.go` `sizeEstimator`: the declared type's `MaxElements` at the expression's path),
//! and presence tests free (`PresenceTestHasCost(false)` in the base environment).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use super::ast::{ACCU, Comp, Expr, Kind, Lit};
use super::checker::Checked;
use super::types::{Decl, Ty};

const SELECT_AND_IDENT_COST: u64 = 1;
const CONST_COST: u64 = 0;
const LIST_CREATE_BASE_COST: u64 = 10;
const MAP_CREATE_BASE_COST: u64 = 30;
const STRUCT_CREATE_BASE_COST: u64 = 40;
pub(crate) const STRING_TRAVERSAL_COST_FACTOR: f64 = 0.1;
pub(crate) const REGEX_STRING_LENGTH_COST_FACTOR: f64 = 0.25;
const MAX_NAME_FORMAT_REGEX_SIZE: f64 = 128.0;

/// A `[min, max]` estimate, saturating like cel-go's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Est {
    pub(crate) min: u64,
    pub(crate) max: u64,
}

impl Est {
    pub(crate) const fn fixed(v: u64) -> Est {
        Est { min: v, max: v }
    }

    const UNKNOWN: Est = Est {
        min: 0,
        max: u64::MAX,
    };

    fn add(self, o: Est) -> Est {
        Est {
            min: self.min.saturating_add(o.min),
            max: self.max.saturating_add(o.max),
        }
    }

    fn mul(self, o: Est) -> Est {
        Est {
            min: self.min.saturating_mul(o.min),
            max: self.max.saturating_mul(o.max),
        }
    }

    fn factor(self, f: f64) -> Est {
        Est {
            min: mul_factor(self.min, f),
            max: mul_factor(self.max, f),
        }
    }

    fn union(self, o: Est) -> Est {
        Est {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

/// cel-go `multiplyByCostFactor`: the product rounded up, `MaxUint64` from 2⁶⁴ on. (A float
/// to integer `as` saturates, which gives that maximum; cel-go tests for it twice.)
fn mul_factor(x: u64, y: f64) -> u64 {
    (x as f64 * y).ceil() as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Container {
    List,
    Map,
}

#[derive(Clone, Copy, Debug)]
struct EntrySize {
    container: Option<Container>,
    key: Est,
    val: Est,
}

impl EntrySize {
    fn union(a: Option<EntrySize>, b: Option<EntrySize>) -> Option<EntrySize> {
        let (a, b) = (a?, b?);
        Some(EntrySize {
            container: a.container,
            key: a.key.union(b.key),
            val: a.val.union(b.val),
        })
    }
}

struct LocalVar {
    path: Option<Vec<String>>,
    size: Option<Est>,
    entry: Option<EntrySize>,
}

/// An operand as the estimators see it (cel-go `AstNode`).
struct Node<'e> {
    path: Option<Vec<String>>,
    ty: Ty,
    expr: Option<&'e Expr>,
    size: Option<Est>,
}

struct Coster<'a> {
    checked: &'a Checked,
    root: &'a Arc<Decl>,
    paths: HashMap<u32, Vec<String>>,
    locals: HashMap<String, Vec<LocalVar>>,
    sizes: HashMap<u32, Est>,
    entries: HashMap<u32, EntrySize>,
    /// Bounding an evaluation on actual values rather than estimating statically.
    actual: bool,
    /// Whether some operand's size was unknown.
    used_unknown: Cell<bool>,
}

/// The estimated cost range of `expr` checked against the declaration `root` of `self`.
pub(crate) fn estimate(expr: &Expr, checked: &Checked, root: &Arc<Decl>) -> Est {
    Coster::new(checked, root, false).cost(expr)
}

/// The cost range of evaluating `expr` on values whose actual sizes `root` declares. Sizes
/// follow cel-go's runtime tracker (`interpreter/runtimecost.go` `actualSize`): a value that
/// is not a `traits.Sizer` (anything but strings, bytes, lists and maps) counts as 1.
/// `None` when the range rests on a size the values do not bound (a string or list computed
/// at runtime with no size known here): then it shows nothing about the actual cost.
pub(crate) fn estimate_actual(expr: &Expr, checked: &Checked, root: &Arc<Decl>) -> Option<Est> {
    let mut c = Coster::new(checked, root, true);
    let est = c.cost(expr);
    (!c.used_unknown.get()).then_some(est)
}

impl<'a> Coster<'a> {
    fn new(checked: &'a Checked, root: &'a Arc<Decl>, actual: bool) -> Coster<'a> {
        Coster {
            checked,
            root,
            paths: HashMap::new(),
            locals: HashMap::new(),
            sizes: HashMap::new(),
            entries: HashMap::new(),
            actual,
            used_unknown: Cell::new(false),
        }
    }

    fn ty(&self, e: &Expr) -> Ty {
        self.checked.types.get(&e.id).cloned().unwrap_or(Ty::Dyn)
    }

    fn peek(&self, name: &str) -> Option<&LocalVar> {
        self.locals.get(name).and_then(|v| v.last())
    }

    fn path(&self, e: &Expr) -> Option<Vec<String>> {
        if let Kind::Ident(n) = &e.kind
            && let Some(v) = self.peek(n)
        {
            return v.path.clone();
        }
        self.paths.get(&e.id).cloned()
    }

    fn push(&mut self, name: &str, var: LocalVar) {
        self.locals.entry(name.to_string()).or_default().push(var);
    }

    fn pop(&mut self, name: &str) {
        if let Some(v) = self.locals.get_mut(name) {
            v.pop();
        }
    }

    fn cost(&mut self, e: &Expr) -> Est {
        match &e.kind {
            Kind::Lit(_) => Est::fixed(CONST_COST),
            Kind::Ident(name) => {
                let path = match self.peek(name) {
                    Some(v) => v.path.clone(),
                    None => Some(vec![name.clone()]),
                };
                if let Some(p) = path {
                    self.paths.insert(e.id, p);
                }
                Est::fixed(SELECT_AND_IDENT_COST)
            }
            Kind::Select {
                operand,
                field,
                test,
            } => {
                if let Some(q) = self.checked.qualified.get(&e.id) {
                    // A qualified name is one identifier in cel-go's checked AST.
                    self.paths.insert(e.id, vec![q.clone()]);
                    return Est::fixed(SELECT_AND_IDENT_COST);
                }
                if *test {
                    // Presence tests are free in kube-apiserver's environment.
                    return self.cost(operand);
                }
                let mut sum = self.cost(operand);
                if matches!(
                    self.ty(operand),
                    Ty::Map(..) | Ty::Object(..) | Ty::Struct(_) | Ty::Param(_)
                ) {
                    sum = sum.add(Est::fixed(SELECT_AND_IDENT_COST));
                }
                let mut p = self.path(operand).unwrap_or_default();
                p.push(field.clone());
                self.paths.insert(e.id, p);
                sum
            }
            Kind::Call { func, target, args } => self.cost_call(e, func, target.as_deref(), args),
            Kind::List(items) => {
                let mut sum = Est::fixed(0);
                let mut item_size = Est {
                    min: if items.is_empty() { 0 } else { u64::MAX },
                    max: 0,
                };
                for i in items {
                    sum = sum.add(self.cost(i));
                    item_size = item_size.union(self.size_or_unknown(i));
                }
                self.entries.insert(
                    e.id,
                    EntrySize {
                        container: Some(Container::List),
                        key: Est::fixed(1),
                        val: item_size,
                    },
                );
                sum.add(Est::fixed(LIST_CREATE_BASE_COST))
            }
            Kind::Map(entries) => {
                let mut sum = Est::fixed(0);
                let empty = entries.is_empty();
                let mut ks = Est {
                    min: if empty { 0 } else { u64::MAX },
                    max: 0,
                };
                let mut vs = ks;
                for (k, v) in entries {
                    sum = sum.add(self.cost(k));
                    sum = sum.add(self.cost(v));
                    ks = ks.union(self.size_or_unknown(k));
                    vs = vs.union(self.size_or_unknown(v));
                }
                self.entries.insert(
                    e.id,
                    EntrySize {
                        container: Some(Container::Map),
                        key: ks,
                        val: vs,
                    },
                );
                sum.add(Est::fixed(MAP_CREATE_BASE_COST))
            }
            Kind::Struct { fields, .. } => {
                let mut sum = Est::fixed(0);
                for (_, v) in fields {
                    sum = sum.add(self.cost(v));
                }
                sum.add(Est::fixed(STRUCT_CREATE_BASE_COST))
            }
            Kind::Comp(c) => {
                if is_bind(c) {
                    self.cost_bind(e, c)
                } else {
                    self.cost_comp(e, c)
                }
            }
        }
    }

    fn cost_bind(&mut self, e: &Expr, c: &Comp) -> Est {
        let mut sum = self.cost(&c.range);
        sum = sum.add(self.cost(&c.accu_init));
        // cel-go v0.22 (kube-apiserver 1.32) tracks no local variables: a bound name is an
        // identifier whose path is its own name, sized by the CRD estimator like any other.
        let var = LocalVar {
            path: Some(vec![c.accu_var.clone()]),
            size: None,
            entry: None,
        };
        self.push(&c.accu_var, var);
        sum = sum.add(self.cost(&c.result));
        self.pop(&c.accu_var);
        if let Some(s) = self.compute_size(&c.result) {
            self.sizes.insert(e.id, s);
        }
        if let Some(en) = self.entry_size(&c.result) {
            self.entries.insert(e.id, en);
        }
        sum
    }

    fn push_local(&mut self, name: &str, e: &Expr) {
        let var = LocalVar {
            path: self.path(e),
            size: self.compute_size(e),
            entry: self.entry_size(e),
        };
        self.push(name, var);
    }

    fn cost_comp(&mut self, e: &Expr, c: &Comp) -> Est {
        let mut sum = self.cost(&c.range);
        sum = sum.add(self.cost(&c.accu_init));
        self.push_local(&c.accu_var, &c.accu_init);
        let entry = self.entry_size(&c.range);
        let container = entry
            .and_then(|en| en.container)
            .or(match self.ty(&c.range) {
                Ty::List(_) => Some(Container::List),
                Ty::Map(..) => Some(Container::Map),
                _ => None,
            });
        let list = container == Some(Container::List);
        let base = self.path(&c.range).unwrap_or_default();
        let at = |sub: &str| {
            let mut p = base.clone();
            p.push(sub.to_string());
            Some(p)
        };
        match &c.iter_var2 {
            // pushIterKey and pushIterValue
            Some(v2) => {
                let key = LocalVar {
                    path: at(if list { "@indices" } else { "@keys" }),
                    size: entry.map(|en| en.key),
                    entry: None,
                };
                self.push(&c.iter_var, key);
                let value = LocalVar {
                    path: at(if list { "@items" } else { "@values" }),
                    size: entry.map(|en| en.val),
                    entry: None,
                };
                self.push(v2, value);
            }
            // pushIterSingle
            None => {
                let var = if list {
                    LocalVar {
                        path: at("@items"),
                        size: entry.map(|en| en.val),
                        entry: None,
                    }
                } else {
                    LocalVar {
                        path: at("@keys"),
                        size: entry.map(|en| en.key),
                        entry: None,
                    }
                };
                self.push(&c.iter_var, var);
            }
        }
        let loop_cost = self.cost(&c.cond);
        let step_cost = self.cost(&c.step);
        self.pop(&c.iter_var);
        if let Some(v2) = &c.iter_var2 {
            self.pop(v2);
        }
        sum = sum.add(self.cost(&c.result));
        self.pop(&c.accu_var);
        let range_count = self.size_or_unknown(&c.range);
        let range_cost = range_count.mul(step_cost.add(loop_cost));
        sum = sum.add(range_cost);
        match &c.accu_init.kind {
            Kind::Lit(_) => {
                if let Some(s) = self.compute_size(&c.accu_init) {
                    self.sizes.insert(e.id, s);
                }
            }
            Kind::List(_) | Kind::Map(_) => {
                self.sizes.insert(e.id, range_count);
                if let Some(en) = self.entry_size(&c.step) {
                    self.entries.insert(e.id, en);
                }
            }
            _ => {}
        }
        sum
    }

    fn node<'e>(&mut self, e: &'e Expr) -> Node<'e> {
        let mut path = self.path(e);
        if path
            .as_ref()
            .and_then(|p| p.first())
            .is_some_and(|f| f == ACCU || f == "@result")
        {
            path = None;
        }
        Node {
            path,
            ty: self.ty(e),
            expr: Some(e),
            size: self.compute_size(e),
        }
    }

    fn cost_call(&mut self, e: &Expr, func: &str, target: Option<&Expr>, args: &[Expr]) -> Est {
        if func == super::ast::OPTIONAL_ENTRY && args.len() == 1 {
            // Not a call in cel-go: the element costs what its expression costs.
            let c = self.cost(&args[0]);
            if let Some(s) = self.compute_size(&args[0]) {
                self.sizes.insert(e.id, s);
            }
            return c;
        }
        if func == "dyn" && args.len() == 1 {
            let c = self.cost(&args[0]);
            if let Some(s) = self.compute_size(&args[0]) {
                self.sizes.insert(e.id, s);
            }
            if let Some(en) = self.entry_size(&args[0]) {
                self.entries.insert(e.id, en);
            }
            return Est::fixed(1).add(c);
        }
        let mut arg_costs = Vec::with_capacity(args.len());
        let mut arg_nodes = Vec::with_capacity(args.len());
        for a in args {
            arg_costs.push(self.cost(a));
            arg_nodes.push(self.node(a));
        }
        let Some(overloads) = self.checked.overloads.get(&e.id) else {
            return Est::fixed(0);
        };
        let mut sum = Est::fixed(0);
        // A namespaced function (`sets.contains`) has no receiver.
        let namespaced = self.checked.namespaced.get(&e.id);
        let func = namespaced.map_or(func, String::as_str);
        let target = target.filter(|_| namespaced.is_none());
        let target_node = match target {
            Some(t) => {
                sum = sum.add(self.cost(t));
                Some(self.node(t))
            }
            None => None,
        };
        let mut fn_cost = Est {
            min: u64::MAX,
            max: 0,
        };
        let mut result_size: Option<Est> = None;
        for &ov in overloads {
            let (c, rs) =
                self.function_cost(e, func, ov, target_node.as_ref(), &arg_nodes, &arg_costs);
            fn_cost = fn_cost.union(c);
            if let Some(r) = rs {
                result_size = Some(match result_size {
                    None => r,
                    Some(prev) => prev.union(r),
                });
            }
            match ov {
                "index_list" | "index_map" if !args.is_empty() => {
                    result_size = self.entry_size(&args[0]).map(|en| en.val);
                    let mut p = self.path(&args[0]).unwrap_or_default();
                    p.push(
                        if ov == "index_list" {
                            "@items"
                        } else {
                            "@values"
                        }
                        .to_string(),
                    );
                    self.paths.insert(e.id, p);
                }
                _ => {}
            }
            if result_size.is_none() {
                result_size = self.compute_size(e);
            }
        }
        if let Some(r) = result_size {
            self.sizes.insert(e.id, r);
        }
        sum.add(fn_cost)
    }

    /// A size nothing bounds; noted, since a bound built on it proves nothing.
    fn unknown(&self) -> Est {
        self.used_unknown.set(true);
        Est::UNKNOWN
    }

    fn size_or_unknown(&mut self, e: &Expr) -> Est {
        self.compute_size(e).unwrap_or_else(|| self.unknown())
    }

    fn node_size(&self, n: &Node<'_>) -> Est {
        n.size.unwrap_or_else(|| self.unknown())
    }

    fn entry_size(&self, e: &Expr) -> Option<EntrySize> {
        if let Some(s) = self.entries.get(&e.id) {
            return Some(*s);
        }
        if let Kind::Ident(n) = &e.kind
            && let Some(v) = self.peek(n)
        {
            return v.entry;
        }
        None
    }

    /// The CRD size estimator: `MaxElements` of the declaration at the path.
    fn estimate_size(&self, path: Option<&[String]>) -> Option<Est> {
        let path = path?;
        if path.is_empty() {
            return None;
        }
        let d = self.root.at_path(&path[1..])?;
        Some(Est {
            min: 0,
            max: d.max_elements.max(0) as u64,
        })
    }

    fn compute_size(&mut self, e: &Expr) -> Option<Est> {
        if let Some(s) = self.sizes.get(&e.id) {
            return Some(*s);
        }
        let lit = match &e.kind {
            Kind::Lit(Lit::String(s)) => Some(s.chars().count() as u64),
            Kind::Lit(Lit::Bytes(b)) => Some(b.len() as u64),
            Kind::Lit(_) => Some(1),
            Kind::List(items) => Some(items.len() as u64),
            Kind::Map(entries) => Some(entries.len() as u64),
            _ => None,
        };
        if let Some(v) = lit {
            return Some(Est::fixed(v));
        }
        if self.actual
            && matches!(
                self.ty(e),
                Ty::Bool
                    | Ty::Int
                    | Ty::Uint
                    | Ty::Double
                    | Ty::Null
                    | Ty::Duration
                    | Ty::Timestamp
                    | Ty::Struct(_)
                    | Ty::Opaque(..)
                    | Ty::Type(_)
            )
        {
            return Some(Est::fixed(1));
        }
        let path = self.path(e);
        if let Some(s) = self.estimate_size(path.as_deref()) {
            self.sizes.insert(e.id, s);
            return Some(s);
        }
        if self.ty(e).is_scalar() {
            return Some(Est::fixed(1));
        }
        if let Kind::Ident(n) = &e.kind
            && let Some(v) = self.peek(n)
        {
            return v.size;
        }
        None
    }

    fn library_size(&self, n: &Node<'_>) -> Est {
        if let Some(s) = n.size {
            return s;
        }
        self.estimate_size(n.path.as_deref())
            .unwrap_or_else(|| self.unknown())
    }

    /// The element of a list operand (`listElementNode`).
    fn list_element(&self, list: &Node<'_>) -> Option<Node<'static>> {
        let Ty::List(elem) = &list.ty else {
            return None;
        };
        let path = list.path.as_ref().map(|p| {
            let mut p = p.clone();
            p.push("@items".to_string());
            p
        });
        Some(Node {
            path,
            ty: (**elem).clone(),
            expr: None,
            size: None,
        })
    }

    /// apiserver `library.CostEstimator.EstimateCallCost`.
    fn kubernetes_call_cost(
        &self,
        func: &str,
        overload: &str,
        target: Option<&Node<'_>>,
        args: &[Node<'_>],
    ) -> Option<(Est, Option<Est>)> {
        let t = STRING_TRAVERSAL_COST_FACTOR;
        match func {
            "isSorted" | "sum" | "max" | "min" | "indexOf" | "lastIndexOf" | "includes" => {
                let target = target?;
                let mut el_cost = Est::fixed(1);
                if let Some(el) = self.list_element(target) {
                    if matches!(el.ty, Ty::String | Ty::Bytes) {
                        el_cost = el_cost.add(self.library_size(&el).factor(t));
                    }
                    return Some((self.library_size(target).mul(el_cost), None));
                }
                if func == "includes" {
                    return Some((self.library_size(target).mul(el_cost), None));
                }
                Some((self.library_size(target).factor(t), None))
            }
            "url" => {
                let sz = self.library_size(args.first()?);
                Some((sz.factor(t), Some(sz)))
            }
            "lowerAscii" | "upperAscii" | "substring" | "trim" => {
                let sz = self.library_size(target?);
                Some((sz.factor(t), Some(sz)))
            }
            "replace" => {
                let target = target?;
                if args.len() < 2 {
                    return None;
                }
                let sz = self.library_size(target);
                let to_replace = self.library_size(&args[0]);
                let with = self.library_size(&args[1]);
                let mut count = Est::fixed(0);
                let mut retained = Est::fixed(0);
                if to_replace.min == 0 {
                    count.max = if sz.max < u64::MAX {
                        sz.max + 1
                    } else {
                        sz.max
                    };
                    retained.max = sz.max;
                } else if with.max <= to_replace.min {
                    count.max = 0;
                    retained.max = sz.max;
                } else {
                    count.max = (sz.max as f64 / to_replace.min as f64).ceil() as u64;
                }
                if to_replace.max == 0 {
                    count.min = if sz.min < u64::MAX {
                        sz.min + 1
                    } else {
                        sz.min
                    };
                    retained.min = sz.min;
                } else if to_replace.max <= with.min {
                    count.min = 0;
                    retained.min = sz.min;
                } else {
                    count.min = (sz.min as f64 / to_replace.max as f64).ceil() as u64;
                }
                let size = count.mul(with).add(retained);
                Some((sz.factor(2.0 * t), Some(size)))
            }
            "split" => {
                let sz = self.library_size(target?);
                let mut max = sz.max;
                if let Some(a) = args.get(1)
                    && let Some(Expr {
                        kind: Kind::Lit(Lit::Int(i)),
                        ..
                    }) = a.expr
                {
                    max = *i as u64;
                }
                Some((sz.factor(2.0 * t), Some(Est { min: 0, max })))
            }
            "join" => {
                let target = target?;
                let list = self.library_size(target);
                let mut sz = Est::fixed(0);
                if let Some(el) = self.list_element(target) {
                    sz = list.mul(self.library_size(&el));
                }
                if let Some(sep) = args.first() {
                    let sep = self.library_size(sep);
                    let seps = Est {
                        min: list.min.saturating_sub(1),
                        max: list.max.saturating_sub(1),
                    };
                    sz = sz.add(sep.mul(seps));
                }
                Some((sz.factor(t), Some(sz)))
            }
            "find" | "findAll" => {
                let target = target?;
                let re = args.first()?;
                let sz = self.library_size(target);
                let str_cost = sz.add(Est::fixed(1)).factor(t);
                let re_cost = self
                    .library_size(re)
                    .factor(REGEX_STRING_LENGTH_COST_FACTOR);
                Some((
                    str_cost.mul(re_cost),
                    Some(Est {
                        min: 0,
                        max: sz.max,
                    }),
                ))
            }
            "cidr" | "isIP" | "isCIDR" => {
                let sz = self.library_size(args.first()?);
                Some((sz.factor(t), None))
            }
            "ip" => {
                if overload == "cidr_ip" {
                    return Some((Est::fixed(1), None));
                }
                let sz = self.library_size(args.first()?);
                Some((sz.factor(t), None))
            }
            "ip.isCanonical" => {
                let sz = self.library_size(args.first()?);
                Some((sz.factor(2.0 * t), None))
            }
            "masked"
            | "prefixLength"
            | "family"
            | "isUnspecified"
            | "isLoopback"
            | "isLinkLocalMulticast"
            | "isLinkLocalUnicast"
            | "isGlobalUnicast" => Some((Est::fixed(1), None)),
            "containsIP" => {
                let a = args.first()?;
                let sz = Est { min: 4, max: 16 };
                let mut c = sz.add(sz).factor(t);
                if overload == "cidr_contains_ip_string" {
                    c = c.add(self.library_size(a).factor(t));
                }
                Some((c, None))
            }
            "containsCIDR" => {
                let a = args.first()?;
                let sz = Est { min: 4, max: 16 };
                let mut c = sz.add(sz).factor(t);
                c = c.add(sz.factor(t));
                c = c.add(Est::fixed(1));
                if overload == "cidr_contains_cidr_string" {
                    c = c.add(self.library_size(a).factor(t));
                }
                Some((c, None))
            }
            "quantity" | "isQuantity" => {
                let sz = self.library_size(args.first()?);
                Some((sz.factor(t), None))
            }
            "validate" => {
                let sz = self.library_size(args.first()?);
                Some((
                    sz.factor(t)
                        .factor(MAX_NAME_FORMAT_REGEX_SIZE * REGEX_STRING_LENGTH_COST_FACTOR),
                    None,
                ))
            }
            "format.named" | "sign" | "asInteger" | "isInteger" | "asApproximateFloat"
            | "isGreaterThan" | "isLessThan" | "compareTo" | "add" | "sub" | "getScheme"
            | "getHostname" | "getHost" | "getPort" | "getEscapedPath" | "getQuery" => {
                Some((Est::fixed(1), None))
            }
            "_==_" => {
                let [lhs, rhs] = args else {
                    return None;
                };
                if !lhs.ty.exact(&rhs.ty) {
                    return None;
                }
                match &lhs.ty {
                    Ty::Opaque("net.IP" | "net.CIDR", _) | Ty::Struct("kubernetes.Quantity") => {
                        Some((Est::fixed(1), None))
                    }
                    Ty::Struct("kubernetes.NamedFormat") => {
                        Some((Est { min: 1, max: 64 }.factor(t), None))
                    }
                    Ty::Struct("kubernetes.URL") => {
                        // Upstream reads the right-hand size twice.
                        let size = match rhs.size {
                            Some(r) => r.union(r),
                            None => Est::fixed(1),
                        };
                        Some((
                            Est {
                                min: 1,
                                max: size.max,
                            }
                            .factor(t),
                            None,
                        ))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// cel-go `coster.functionCost`.
    fn function_cost(
        &mut self,
        e: &Expr,
        func: &str,
        overload: &str,
        target: Option<&Node<'_>>,
        args: &[Node<'_>],
        arg_costs: &[Est],
    ) -> (Est, Option<Est>) {
        let arg_sum = arg_costs.iter().fold(Est::fixed(0), |a, c| a.add(*c));
        // cel-go ext/sets.go `estimateSetsCost`: registered per overload, consulted before the
        // Kubernetes estimator; one unit per pair of elements compared (two for equivalence).
        let sets_factor = match overload {
            "list_sets_contains_list" | "list_sets_intersects_list" => Some(1.0),
            "list_sets_equivalent_list" => Some(2.0),
            _ => None,
        };
        if let (Some(f), [a, b]) = (sets_factor, args) {
            let size = self.library_size(a).mul(self.library_size(b));
            return (size.factor(f).add(Est::fixed(1)).add(arg_sum), None);
        }
        if let Some((c, rs)) = self.kubernetes_call_cost(func, overload, target, args) {
            return (c.add(arg_sum), rs);
        }
        let t = STRING_TRAVERSAL_COST_FACTOR;
        match overload {
            "string_format" => {
                if let Some(tg) = target {
                    return (self.node_size(tg).factor(t).add(arg_sum), None);
                }
            }
            "string_to_bytes" if args.len() == 1 => {
                let sz = self.node_size(&args[0]);
                return (
                    sz.factor(t).add(arg_sum),
                    Some(Est {
                        min: sz.min,
                        max: sz.max.saturating_mul(4),
                    }),
                );
            }
            "bytes_to_string" if args.len() == 1 => {
                let sz = self.node_size(&args[0]);
                return (
                    sz.factor(t).add(arg_sum),
                    Some(Est {
                        min: sz.min / 4,
                        max: sz.max,
                    }),
                );
            }
            "strings_quote" if args.len() == 1 => {
                let sz = self.node_size(&args[0]);
                return (
                    sz.factor(t).add(arg_sum),
                    Some(Est {
                        min: sz.min.saturating_add(2),
                        max: sz.max.saturating_mul(2).saturating_add(2),
                    }),
                );
            }
            "starts_with_string" | "ends_with_string" if args.len() == 1 => {
                return (self.node_size(&args[0]).factor(t).add(arg_sum), None);
            }
            "in_list" if args.len() == 2 => {
                return (self.node_size(&args[1]).factor(1.0).add(arg_sum), None);
            }
            "matches_string" => {
                if let (Some(tg), [re]) = (target, args) {
                    let str_cost = self.node_size(tg).add(Est::fixed(1)).factor(t);
                    let re_cost = self.node_size(re).factor(REGEX_STRING_LENGTH_COST_FACTOR);
                    return (str_cost.mul(re_cost).add(arg_sum), None);
                }
            }
            "contains_string" => {
                if let (Some(tg), [sub]) = (target, args) {
                    let str_cost = self.node_size(tg).factor(t);
                    let sub_cost = self.node_size(sub).factor(t);
                    return (str_cost.mul(sub_cost).add(arg_sum), None);
                }
            }
            "logical_or" | "logical_and" if arg_costs.len() == 2 => {
                let (l, r) = (arg_costs[0], arg_costs[1]);
                return (
                    Est {
                        min: l.min,
                        max: l.add(r).max,
                    },
                    None,
                );
            }
            "conditional" if args.len() == 3 => {
                let size = self.node_size(&args[1]).union(self.node_size(&args[2]));
                let ents = EntrySize::union(
                    args[1].expr.and_then(|x| self.entry_size(x)),
                    args[2].expr.and_then(|x| self.entry_size(x)),
                );
                if let Some(en) = ents {
                    self.entries.insert(e.id, en);
                }
                let c = arg_costs[0].add(arg_costs[1].union(arg_costs[2]));
                return (c, Some(size));
            }
            "add_string" | "add_bytes" | "add_list" if args.len() == 2 => {
                let size = self.node_size(&args[0]).add(self.node_size(&args[1]));
                let ents = EntrySize::union(
                    args[0].expr.and_then(|x| self.entry_size(x)),
                    args[1].expr.and_then(|x| self.entry_size(x)),
                );
                if let Some(en) = ents {
                    self.entries.insert(e.id, en);
                }
                if overload == "add_list" {
                    return (Est::fixed(1).add(arg_sum), Some(size));
                }
                return (size.factor(t).add(arg_sum), Some(size));
            }
            "less_string"
            | "greater_string"
            | "less_equals_string"
            | "greater_equals_string"
            | "less_bytes"
            | "greater_bytes"
            | "less_equals_bytes"
            | "greater_equals_bytes"
            | "equals"
            | "not_equals"
                if args.len() == 2 =>
            {
                let l = self.node_size(&args[0]);
                let r = self.node_size(&args[1]);
                let smallest = l.max.min(r.max);
                let min = u64::from(smallest > 0);
                return (Est { min, max: smallest }.factor(t).add(arg_sum), None);
            }
            _ => {}
        }
        (Est::fixed(1).add(arg_sum), None)
    }
}

fn is_bind(c: &Comp) -> bool {
    matches!(&c.range.kind, Kind::List(items) if items.is_empty())
        && matches!(c.cond.kind, Kind::Lit(Lit::Bool(false)))
        && c.accu_var != ACCU
}

#[cfg(test)]
mod tests {
    use super::mul_factor;

    // cel-go checker/cost.go `multiplyByCostFactor`: rounded up, and `MaxUint64` once the
    // product reaches 2⁶⁴.
    #[test]
    fn cost_factors_round_up_and_saturate() {
        assert_eq!(mul_factor(10, 0.1), 1);
        assert_eq!(mul_factor(11, 0.1), 2);
        assert_eq!(mul_factor(3, 0.5), 2);
        assert_eq!(mul_factor(0, 0.1), 0);
        assert_eq!(mul_factor(1 << 62, 4.0), u64::MAX);
        assert_eq!(mul_factor(u64::MAX, 0.5), 1 << 63);
        assert_eq!(mul_factor(u64::MAX, 2.0), u64::MAX);
    }
}
