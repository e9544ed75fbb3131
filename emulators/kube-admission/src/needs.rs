//! Which parts of a node's value its CEL rules can observe, so that only those are converted to
//! CEL values: a root rule reading `self.spec.partitions` and `has(oldSelf.status.partitions)`
//! should not pay for converting a thousand `status.partitionDetails` entries.
//!
//! The analysis follows every `self`/`oldSelf` in the rules' syntax trees. A chain of field
//! selections `self.a.b` used as a value needs `a.b` whole; `has(self.a.b)` only needs the key `b`
//! to be present in `a`; anything else (`self` passed to a function or macro, indexed, compared)
//! needs the whole value at the end of the chain. Over-approximating is always safe.

use std::collections::BTreeMap;

use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedExpr};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Need {
    /// The whole value.
    Full,
    /// Only whether the key exists (`has()`); the value is never read.
    Presence,
    /// An object of which only these fields (CEL names) are read.
    Fields(BTreeMap<String, Need>),
}

impl Need {
    pub(crate) fn nothing() -> Need {
        Need::Fields(BTreeMap::new())
    }

    fn merge(&mut self, other: Need) {
        match (&mut *self, other) {
            (Need::Full, _) | (_, Need::Presence) => {}
            (_, Need::Full) => *self = Need::Full,
            (Need::Presence, other) => *self = other,
            (Need::Fields(mine), Need::Fields(theirs)) => {
                for (k, v) in theirs {
                    match mine.get_mut(&k) {
                        Some(existing) => existing.merge(v),
                        None => {
                            mine.insert(k, v);
                        }
                    }
                }
            }
        }
    }

    fn add(&mut self, fields: &[&str], leaf: Need) {
        let mut need = leaf;
        for f in fields.iter().rev() {
            need = Need::Fields(BTreeMap::from([(f.to_string(), need)]));
        }
        self.merge(need);
    }

    /// Adds what `expr` reads of `self` and `oldSelf`.
    pub(crate) fn visit(&mut self, expr: &IdedExpr) {
        if let Some((fields, presence)) = self_chain(expr) {
            self.add(&fields, if presence { Need::Presence } else { Need::Full });
            return;
        }
        match &expr.expr {
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.visit(target);
                }
                for arg in &call.args {
                    self.visit(arg);
                }
            }
            Expr::Comprehension(c) => {
                for e in [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ] {
                    self.visit(e);
                }
            }
            Expr::List(list) => {
                for e in &list.elements {
                    self.visit(e);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    self.visit_entry(&entry.expr);
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    self.visit_entry(&entry.expr);
                }
            }
            Expr::Select(select) => self.visit(&select.operand),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn visit_entry(&mut self, entry: &EntryExpr) {
        match entry {
            EntryExpr::StructField(f) => self.visit(&f.value),
            EntryExpr::MapEntry(m) => {
                self.visit(&m.key);
                self.visit(&m.value);
            }
        }
    }
}

/// `self.a.b` → `(["a", "b"], false)`; `has(self.a.b)` → `(["a", "b"], true)`.
fn self_chain(expr: &IdedExpr) -> Option<(Vec<&str>, bool)> {
    let mut fields = Vec::new();
    let mut presence = false;
    let mut current = expr;
    loop {
        match &current.expr {
            Expr::Select(select) => {
                if select.test {
                    if !fields.is_empty() {
                        return None;
                    }
                    presence = true;
                }
                fields.push(select.field.as_str());
                current = &select.operand;
            }
            Expr::Ident(name) if name == "self" || name == "oldSelf" => {
                fields.reverse();
                return Some((fields, presence));
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_cel::cel::Program;

    fn need(rules: &[&str]) -> Need {
        let mut n = Need::nothing();
        for r in rules {
            n.visit(
                Program::compile(r)
                    .unwrap_or_else(|e| panic!("{r}: {e}"))
                    .expression(),
            );
        }
        n
    }

    fn fields(entries: Vec<(&str, Need)>) -> Need {
        Need::Fields(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    #[test]
    fn field_chains_need_only_their_leaves() {
        assert_eq!(
            need(&[
                "has(oldSelf.status) && has(oldSelf.status.partitions) && self.spec.partitions == oldSelf.status.partitions"
            ]),
            fields(vec![
                ("spec", fields(vec![("partitions", Need::Full)])),
                ("status", fields(vec![("partitions", Need::Full)])),
            ])
        );
    }

    #[test]
    fn whole_values_are_needed_when_used_as_values() {
        assert_eq!(need(&["self == oldSelf"]), Need::Full);
        assert_eq!(
            need(&["self.spec.all(k, k != 'x')"]),
            fields(vec![("spec", Need::Full)])
        );
        assert_eq!(
            need(&["self.spec['a'] == 1", "size(self.status) > 0"]),
            fields(vec![("spec", Need::Full), ("status", Need::Full)])
        );
        assert_eq!(
            need(&["has(self.a)", "self.a.b == 1"]),
            fields(vec![("a", fields(vec![("b", Need::Full)]))])
        );
        assert_eq!(need(&["has(self.a)"]), fields(vec![("a", Need::Presence)]));
        assert_eq!(need(&["1 == 1"]), Need::nothing());
    }
}
