//! What kube-apiserver does to a custom resource before validating it: structural pruning,
//! dropping `null`s of non-nullable fields, defaulting; whole floats in integer fields become
//! integers (the server decodes `3.0` as the number 3 and stores `3`).

use serde_json::{Map, Value};

use crate::schema::{Node, Type};

const TYPE_META: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Prunes, defaults and normalises `value` in place following `node`.
pub(crate) fn prune_and_default(node: &Node, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => object(node, map, root),
        Value::Array(items) => {
            if let Some(item) = node.items.as_deref() {
                for v in items.iter_mut() {
                    if v.is_null()
                        && !item.nullable
                        && let Some(d) = &item.default
                    {
                        *v = d.clone();
                    }
                    prune_and_default(item, v, false);
                }
            }
        }
        // An integer field holds an int64 for validation and rules, as the server's typed view
        // of a decoded float64 does.
        Value::Number(n) if node.ty == Some(Type::Integer) || node.int_or_string => {
            if !n.is_i64()
                && !n.is_u64()
                && let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f >= i64::MIN as f64
                && f < i64::MAX as f64
            {
                *value = Value::from(f as i64);
            }
        }
        _ => {}
    }
}

/// Every number as kube-apiserver stores it: Go decodes a JSON number that is not an int64 as
/// a float64 and encodes a float64 without a fraction as an integer, so `2.0` is stored (and
/// read back) as `2`, whatever the schema says and in preserved fields too.
pub(crate) fn integral_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if !n.is_i64()
                && !n.is_u64()
                && let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn object(node: &Node, map: &mut Map<String, Value>, root: bool) {
    let keeps_type_meta = root || node.embedded;
    if !node.preserve_unknown && !node.is_map() {
        map.retain(|k, _| {
            node.properties.contains_key(k) || (keeps_type_meta && TYPE_META.contains(&k.as_str()))
        });
    }
    for (name, child) in &node.properties {
        if keeps_type_meta && name == "metadata" {
            // ObjectMeta is the server's own type, not pruned or defaulted by the CRD schema.
            continue;
        }
        match map.get(name) {
            Some(Value::Null) if !child.nullable => match &child.default {
                Some(d) => {
                    map.insert(name.clone(), d.clone());
                }
                None => {
                    map.remove(name);
                }
            },
            None => {
                if let Some(d) = &child.default {
                    map.insert(name.clone(), d.clone());
                }
            }
            _ => {}
        }
    }
    let values = node.map_values();
    if let Some(values) = values
        && !values.nullable
    {
        let nulls: Vec<String> = map
            .iter()
            .filter(|(k, v)| v.is_null() && !node.properties.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in nulls {
            match &values.default {
                Some(d) => {
                    map.insert(k, d.clone());
                }
                None => {
                    map.remove(&k);
                }
            }
        }
    }
    for (k, v) in map.iter_mut() {
        if keeps_type_meta && TYPE_META.contains(&k.as_str()) && !node.properties.contains_key(k) {
            continue;
        }
        if keeps_type_meta && k == "metadata" {
            continue;
        }
        if let Some(child) = node.properties.get(k) {
            prune_and_default(child, v, false);
        } else if let Some(values) = values {
            prune_and_default(values, v, false);
        }
    }
}

/// The paths of the fields pruning would remove (`spec.colour`, `spec.items[0].x`), sorted: what
/// the server reports as `unknown field "..."` warnings, or refuses under strict field validation.
pub(crate) fn unknown_fields(
    node: &Node,
    value: &Value,
    root: bool,
    path: &str,
    out: &mut Vec<String>,
) {
    match value {
        Value::Object(map) => {
            let keeps_type_meta = root || node.embedded;
            let prunes = !node.preserve_unknown && !node.is_map();
            let values = node.map_values();
            for (k, v) in map {
                let child_path = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if keeps_type_meta && TYPE_META.contains(&k.as_str()) {
                    continue;
                }
                if let Some(child) = node.properties.get(k) {
                    unknown_fields(child, v, false, &child_path, out);
                } else if let Some(values) = values {
                    unknown_fields(values, v, false, &child_path, out);
                } else if prunes {
                    out.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.items.as_deref() {
                for (i, v) in items.iter().enumerate() {
                    unknown_fields(item, v, false, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}
