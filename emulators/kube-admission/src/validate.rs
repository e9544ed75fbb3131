//! Structural schema validation with kube-openapi's wording, and `metadata.name`.

use std::sync::LazyLock;

use base64::Engine;
use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{FieldError, FieldErrorKind};
use crate::gofmt;
use crate::schema::{Format, ListType, Node, Type};
use crate::value_type;

/// `metadata.name` must be a DNS-1123 subdomain, like every custom resource name.
pub(crate) fn metadata(object: &Value) -> Vec<FieldError> {
    let meta = object.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
    let generate_name = meta
        .and_then(|m| m.get("generateName"))
        .and_then(Value::as_str)
        .filter(|g| !g.is_empty());
    let mut errors = Vec::new();
    match name {
        None | Some("") => {
            if generate_name.is_none() {
                errors.push(FieldError::new(
                    FieldErrorKind::Required,
                    "metadata.name",
                    None,
                    "name or generateName is required",
                ));
            }
        }
        Some(name) => {
            // IsDNS1123Subdomain: the length and the format, each its own error.
            for m in crate::objectmeta::dns1123_subdomain(name) {
                errors.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    "metadata.name",
                    Some(Value::String(name.to_string())),
                    m,
                ));
            }
        }
    }
    errors
}

/// Validates `object` (already pruned) against the schema; `old` enables ratcheting.
pub(crate) fn schema(root: &Node, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(root, object, old, "", true, &mut errors);
    errors
}

/// Validates a value against its schema as kube-openapi does for a `default`: every field,
/// metadata included, is checked.
pub(crate) fn value(node: &Node, value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(node, value, None, "", false, &mut errors);
    errors
}

fn child_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The field of an error, also the name kube-openapi puts in front of "in body"; `<nil>` is how
/// the server prints the root.
fn field(path: &str) -> &str {
    if path.is_empty() { "<nil>" } else { path }
}

fn type_ok(node: &Node, value: &Value) -> bool {
    if node.int_or_string {
        return value.is_string() || matches!(value, Value::Number(n) if n.is_i64() || n.is_u64());
    }
    match node.ty {
        None => true,
        Some(Type::Object) => value.is_object(),
        Some(Type::Array) => value.is_array(),
        Some(Type::String) => value.is_string(),
        Some(Type::Boolean) => value.is_boolean(),
        Some(Type::Number) => value.is_number(),
        Some(Type::Integer) => match value {
            // Any number without a fraction (every i64 and u64 is one as an f64 too).
            Value::Number(n) => n.as_f64().is_some_and(|f| f.fract() == 0.0),
            _ => false,
        },
    }
}

fn walk(
    node: &Node,
    value: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    if value.is_null() && (node.nullable || (node.ty.is_none() && !node.int_or_string)) {
        return;
    }
    if !type_ok(node, value) {
        let expected = if node.int_or_string {
            "integer,string"
        } else {
            node.ty.map(Type::name).unwrap_or("")
        };
        let actual = value_type(value);
        errors.push(FieldError::new(
            FieldErrorKind::TypeInvalid,
            field(path),
            Some(Value::String(actual.to_string())),
            format!(
                "{} in body must be of type {expected}: {}",
                field(path),
                gofmt::quote(actual)
            ),
        ));
        return;
    }
    // Ratcheting: a value the stored object already had is not validated again.
    if old.is_some_and(|o| o == value) {
        return;
    }
    combinators(node, value, path, errors);
    match value {
        Value::String(s) => string(node, s, value, path, errors),
        Value::Number(n) => number(node, n, value, path, errors),
        Value::Array(items) => array(node, items, old, path, errors),
        _ => {}
    }
    if let Some(allowed) = &node.enum_values
        && !allowed.iter().any(|a| json_equal(a, value))
    {
        let supported: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => gofmt::quote(s),
                other => gofmt::quote(&other.to_string()),
            })
            .collect();
        let detail = if supported.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", supported.join(", "))
        };
        errors.push(FieldError::new(
            FieldErrorKind::NotSupported,
            field(path),
            Some(value.clone()),
            detail,
        ));
    }
    if let Value::Object(map) = value {
        object(node, map, old, path, root, errors);
    }
}

/// Whether `value` passes `branch` (a schema under `allOf`/`anyOf`/`oneOf`/`not`), and its errors.
fn branch_errors(branch: &Node, value: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(branch, value, None, path, false, &mut errors);
    errors
}

/// kube-openapi's schema-props validator; its own errors carry no field.
fn combinators(node: &Node, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let fieldless = |detail: &str| {
        FieldError::new(
            FieldErrorKind::Invalid,
            "<nil>",
            Some(Value::String(String::new())),
            detail,
        )
    };
    if !node.any_of.is_empty() {
        let mut best: Option<Vec<FieldError>> = None;
        let mut passed = false;
        for b in &node.any_of {
            let e = branch_errors(b, value, path);
            if e.is_empty() {
                passed = true;
                break;
            }
            if best.as_ref().is_none_or(|b| e.len() < b.len()) {
                best = Some(e);
            }
        }
        if !passed {
            errors.push(fieldless("must validate at least one schema (anyOf)"));
            errors.extend(best.unwrap_or_default());
        }
    }
    if !node.one_of.is_empty() {
        let mut best: Option<Vec<FieldError>> = None;
        let mut valid = 0;
        for b in &node.one_of {
            let e = branch_errors(b, value, path);
            if e.is_empty() {
                valid += 1;
            } else if best.as_ref().is_none_or(|b| e.len() < b.len()) {
                best = Some(e);
            }
        }
        if valid != 1 {
            let extra = if valid == 0 {
                "Found none valid".to_string()
            } else {
                format!("Found {valid} valid alternatives")
            };
            errors.push(fieldless(&format!(
                "must validate one and only one schema (oneOf). {extra}"
            )));
            if valid == 0 {
                errors.extend(best.unwrap_or_default());
            }
        }
    }
    if !node.all_of.is_empty() {
        let mut valid = 0;
        for b in &node.all_of {
            let e = branch_errors(b, value, path);
            if e.is_empty() {
                valid += 1;
            }
            errors.extend(e);
        }
        if valid != node.all_of.len() {
            let extra = if valid == 0 { ". None validated" } else { "" };
            errors.push(fieldless(&format!(
                "must validate all the schemas (allOf){extra}"
            )));
        }
    }
    if let Some(not) = &node.not
        && branch_errors(not, value, path).is_empty()
    {
        errors.push(fieldless("must not validate the schema (not)"));
    }
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

fn string(node: &Node, s: &str, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(e) = string_value(node, s, value, path) {
        errors.push(e);
    }
    string_format(node, s, value, path, errors);
}

/// kube-openapi's string validator: maxLength, minLength, pattern; it stops at the first failure.
fn string_value(node: &Node, s: &str, value: &Value, path: &str) -> Option<FieldError> {
    let name = field(path);
    if node.max_length.is_some() || node.min_length.is_some() {
        let chars = s.chars().count() as u64;
        if let Some(max) = node.max_length
            && chars > max
        {
            let unit = if max == 1 { "byte" } else { "bytes" };
            return Some(FieldError::new(
                FieldErrorKind::TooLong,
                field(path),
                None,
                format!("may not be more than {max} {unit}"),
            ));
        }
        if let Some(min) = node.min_length
            && chars < min
        {
            return Some(FieldError::new(
                FieldErrorKind::Invalid,
                field(path),
                Some(value.clone()),
                format!("{name} in body should be at least {min} chars long"),
            ));
        }
    }
    if let Some(re) = &node.pattern
        && !re.is_match(s)
    {
        return Some(FieldError::new(
            FieldErrorKind::Invalid,
            field(path),
            Some(value.clone()),
            format!("{name} in body should match '{}'", re.as_str()),
        ));
    }
    None
}

fn string_format(node: &Node, s: &str, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let name = field(path);
    let format_ok = match node.format {
        Format::DateTime => is_date_time(s),
        Format::Date => is_date(s),
        Format::Byte => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        Format::Duration => crate::duration::strfmt_parse_duration(s).is_some(),
        _ => true,
    };
    if !format_ok {
        let format = match node.format {
            Format::DateTime => "date-time",
            Format::Date => "date",
            Format::Duration => "duration",
            _ => "byte",
        };
        errors.push(FieldError::new(
            FieldErrorKind::TypeInvalid,
            field(path),
            Some(value.clone()),
            format!(
                "{name} in body must be of type {format}: {}",
                gofmt::quote(s)
            ),
        ));
    }
}

/// The time of a `date-time` after its `T` (kube-openapi strfmt `DateTimePattern`): a zone is
/// required, an offset with a colon.
static DATE_TIME_CLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
        .expect("valid regex")
});

/// kube-openapi strfmt `IsDateTime`, the check of `format: date-time` (not the laxer
/// `ParseDateTime` the server decodes with): lower-cased and split at `t`, a full date before
/// it and `hh:mm:ss[.frac](z|±hh:mm)` after it, hours to 23, minutes and seconds to 59.
fn is_date_time(s: &str) -> bool {
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    DATE_TIME_CLOCK
        .captures(parts[1])
        .is_some_and(|c| &c[1] <= "23" && &c[2] <= "59" && &c[3] <= "59")
}

/// strfmt `IsDate`: Go's `time.Parse("2006-01-02", s)`, four-digit year, two-digit month and
/// day, a day that exists in that month.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    chrono::NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10)).is_some()
}

/// go-openapi swag `IsFloat64AJSONInteger` as of v0.23 (the one kube-apiserver 1.32 builds
/// with): an integer within ±(2^53 − 1), or a positive number within a relative 1e-9 of its
/// integer part — the part `uint64` truncates to, so 1998.9999999999998 is not one. A negative
/// number with a fraction never is: Go's `uint64` of it is nowhere near it on amd64.
fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_991.0;
    if !f.is_finite() || !(-MAX..=MAX).contains(&f) {
        return false;
    }
    if f == f.trunc() {
        return true;
    }
    if f < 0.0 {
        return false;
    }
    let g = f.trunc();
    if g == 0.0 {
        return false;
    }
    (f - g) / (f + g) < 1e-9
}

fn number(
    node: &Node,
    n: &serde_json::Number,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let name = field(path);
    let f = n.as_f64().unwrap_or(f64::NAN);
    // kube-openapi checks that an integer fits its format (int64 when none is given).
    if node.ty == Some(Type::Integer) {
        let fits = match node.format {
            Format::Int32 => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            _ => n.as_i64().is_some(),
        };
        if !fits {
            let format = match node.format {
                Format::Int32 => " with format int32",
                Format::Int64 => " with format int64",
                _ => " (default format)",
            };
            // A plain error in kube-openapi, so the server reports it without a field.
            errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                "<nil>",
                Some(Value::String(String::new())),
                format!("Checked value must be of type integer{format} in {name}"),
            ));
        }
    }
    // kube-openapi validate/values.go MultipleOf: the factor must be positive (the error
    // shows the factor as its value); the quotient is an integer within go-openapi swag's
    // relative tolerance, so 0.3 is a multiple of 0.1.
    if let Some(m) = node.multiple_of {
        if m <= 0.0 {
            errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                field(path),
                serde_json::Number::from_f64(m).map(Value::Number),
                format!(
                    "factor MultipleOf declared for {name} must be positive: {}",
                    gofmt::float(m)
                ),
            ));
        } else {
            let q = if m < 1.0 { 1.0 / m * f } else { f / m };
            if !is_json_integer(q) {
                errors.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    field(path),
                    Some(value.clone()),
                    format!("{name} in body should be a multiple of {}", gofmt::float(m)),
                ));
            }
        }
    }
    let mut push = |detail: String| {
        errors.push(FieldError::new(
            FieldErrorKind::Invalid,
            field(path),
            Some(value.clone()),
            detail,
        ));
    };
    if let Some(min) = node.minimum {
        if node.exclusive_minimum && f <= min {
            push(format!(
                "{name} in body should be greater than {}",
                gofmt::float(min)
            ));
        } else if !node.exclusive_minimum && f < min {
            push(format!(
                "{name} in body should be greater than or equal to {}",
                gofmt::float(min)
            ));
        }
    }
    if let Some(max) = node.maximum {
        if node.exclusive_maximum && f >= max {
            push(format!(
                "{name} in body should be less than {}",
                gofmt::float(max)
            ));
        } else if !node.exclusive_maximum && f > max {
            push(format!(
                "{name} in body should be less than or equal to {}",
                gofmt::float(max)
            ));
        }
    }
}

fn array(
    node: &Node,
    items: &[Value],
    old: Option<&Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let name = field(path);
    let size = items.len() as u64;
    if let Some(min) = node.min_items
        && size < min
    {
        errors.push(FieldError::new(
            FieldErrorKind::Invalid,
            field(path),
            Some(Value::from(size)),
            format!("{name} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = node.max_items
        && size > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        errors.push(FieldError::new(
            FieldErrorKind::TooMany,
            field(path),
            Some(Value::from(size)),
            format!("must have at most {max} {unit}"),
        ));
    }
    let old_items = old.and_then(Value::as_array);
    if let Some(item_node) = node.items.as_deref() {
        for (i, item) in items.iter().enumerate() {
            let old_item = old_items.and_then(|o| correlate(node, o, item));
            walk(
                item_node,
                item,
                old_item,
                &format!("{path}[{i}]"),
                false,
                errors,
            );
        }
    }
    if node.unique_items
        && items
            .iter()
            .enumerate()
            .any(|(i, a)| items[..i].contains(a))
    {
        errors.push(FieldError::new(
            FieldErrorKind::Invalid,
            field(path),
            Some(Value::String(String::new())),
            format!("{name} in body shouldn't contain duplicates"),
        ));
    }
}

/// `x-kubernetes-list-type` invariants, checked after the schema like `ValidateListSetsAndMaps`
/// (which names map entries `field[key]`): no repeated element in a `set`, no repeated key in a
/// `map` list. Unchanged lists are not checked again.
pub(crate) fn list_types(
    node: &Node,
    value: &Value,
    old: Option<&Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if old.is_some_and(|o| o == value) {
        return;
    }
    match value {
        Value::Array(items) => {
            match node.list_type {
                ListType::Set => duplicates(items, path, |v| Some(v.clone()), errors),
                ListType::Map => duplicates(items, path, |v| map_key(node, v), errors),
                ListType::Atomic => {}
            }
            if let Some(item_node) = node.items.as_deref() {
                let old_items = old.and_then(Value::as_array);
                for (i, item) in items.iter().enumerate() {
                    let old_item = old_items.and_then(|o| correlate(node, o, item));
                    list_types(item_node, item, old_item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            let old_map = old.and_then(Value::as_object);
            if let Some(values) = node.map_values() {
                for (k, v) in map {
                    if !node.properties.contains_key(k) {
                        let p = format!("{path}[{k}]");
                        list_types(values, v, old_map.and_then(|o| o.get(k)), &p, errors);
                    }
                }
            }
            for (k, child) in &node.properties {
                if let Some(v) = map.get(k) {
                    let p = child_path(path, k);
                    list_types(child, v, old_map.and_then(|o| o.get(k)), &p, errors);
                }
            }
        }
        _ => {}
    }
}

/// The key of a map-list entry: its `x-kubernetes-list-map-keys` fields.
fn map_key(node: &Node, item: &Value) -> Option<Value> {
    let obj = item.as_object()?;
    let mut key = Map::new();
    for k in &node.list_map_keys {
        if let Some(v) = obj.get(k) {
            key.insert(k.clone(), v.clone());
        }
    }
    Some(Value::Object(key))
}

/// The old element a new list element corresponds to: same key in a map list, same value in a
/// set; elements of atomic lists have none.
pub(crate) fn correlate<'a>(node: &Node, old: &'a [Value], item: &Value) -> Option<&'a Value> {
    match node.list_type {
        ListType::Atomic => None,
        ListType::Set => old.iter().find(|o| *o == item),
        ListType::Map => {
            let key = map_key(node, item)?;
            old.iter().find(|o| map_key(node, o).as_ref() == Some(&key))
        }
    }
}

/// Reports the second occurrence of each repeated key, like `ValidateListSetsAndMaps`.
fn duplicates(
    items: &[Value],
    path: &str,
    key: impl Fn(&Value) -> Option<Value>,
    errors: &mut Vec<FieldError>,
) {
    let mut seen: Vec<(Value, u32)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(k) = key(item) else { continue };
        match seen.iter_mut().find(|(s, _)| *s == k) {
            None => seen.push((k, 1)),
            Some((_, times)) => {
                *times += 1;
                if *times == 2 {
                    errors.push(FieldError::new(
                        FieldErrorKind::Duplicate,
                        format!("{path}[{i}]"),
                        Some(k),
                        "",
                    ));
                }
            }
        }
    }
}

/// kube-openapi's object validator order: minProperties, maxProperties, map values, declared
/// properties, then required.
fn object(
    node: &Node,
    map: &Map<String, Value>,
    old: Option<&Value>,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    let name = field(path);
    let count = map.len() as u64;
    if let Some(min) = node.min_properties
        && count < min
    {
        errors.push(FieldError::new(
            FieldErrorKind::Invalid,
            field(path),
            Some(Value::from(count)),
            format!("{name} in body should have at least {min} properties"),
        ));
    }
    if let Some(max) = node.max_properties
        && count > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        errors.push(FieldError::new(
            FieldErrorKind::TooMany,
            field(path),
            Some(Value::from(count)),
            format!("must have at most {max} {unit}"),
        ));
    }
    let old_map = old.and_then(Value::as_object);
    if let Some(values) = node.map_values() {
        for (k, v) in map {
            if node.properties.contains_key(k) {
                continue;
            }
            walk(
                values,
                v,
                old_map.and_then(|o| o.get(k)),
                &child_path(path, k),
                false,
                errors,
            );
        }
    }
    for (k, child) in &node.properties {
        if root && k == "metadata" {
            // A CRD may only constrain metadata.name and metadata.generateName.
            let meta = map.get(k).and_then(Value::as_object);
            let old_meta = old_map.and_then(|o| o.get(k));
            for field in ["name", "generateName"] {
                if let (Some(schema), Some(v)) =
                    (child.properties.get(field), meta.and_then(|m| m.get(field)))
                {
                    let o = old_meta.and_then(|o| o.get(field));
                    walk(schema, v, o, &format!("metadata.{field}"), false, errors);
                }
            }
            continue;
        }
        if let Some(v) = map.get(k) {
            walk(
                child,
                v,
                old_map.and_then(|o| o.get(k)),
                &child_path(path, k),
                false,
                errors,
            );
        }
    }
    for req in &node.required {
        if !map.contains_key(req) {
            errors.push(FieldError::new(
                FieldErrorKind::Required,
                child_path(path, req),
                None,
                "",
            ));
        }
    }
}
