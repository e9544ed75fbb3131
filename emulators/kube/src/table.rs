//! `meta.k8s.io/v1 Table` responses for `kubectl get`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::resources::{PrinterColumn, ResourceDef, TableKind};

/// What a row carries besides its cells (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// `duration.HumanDuration` of apimachinery.
pub(crate) fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    let minutes = secs / 60;
    let hours = secs / 3600;
    let days = hours / 24;
    let years = days / 365;
    if secs < 60 * 2 {
        format!("{secs}s")
    } else if minutes < 10 {
        if secs % 60 == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{}s", secs % 60)
        }
    } else if minutes < 60 * 3 {
        format!("{minutes}m")
    } else if hours < 8 {
        if minutes % 60 == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{}m", minutes % 60)
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        if hours % 24 == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{}h", hours % 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        if days % 365 == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{}d", days % 365)
        }
    } else {
        format!("{years}y")
    }
}

fn age(ts: Option<&Value>) -> Value {
    match ts.and_then(Value::as_str).map(DateTime::parse_from_rfc3339) {
        Some(Ok(t)) => Value::String(human_duration(Utc::now() - t.with_timezone(&Utc))),
        _ => Value::String("<unknown>".into()),
    }
}

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.path=="value")]` / `!=`
    Filter(Vec<String>, bool, String),
}

/// Parses the simple JSONPath of printer columns: `.a.b`, `.a[0]`, `.a[*]`, `['k']`,
/// `[?(@.type=="Ready")]`, optionally wrapped in `{}`.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut p = path.trim();
    if let Some(inner) = p.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        p = inner.trim();
    }
    let p = p.strip_prefix('$').unwrap_or(p);
    let chars: Vec<char> = p.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                if i > start {
                    steps.push(Step::Field(chars[start..i].iter().collect()));
                }
            }
            '[' => {
                let close = find_close(&chars, i)?;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Some(f) = inner.strip_prefix("?(").and_then(|r| r.strip_suffix(')')) {
                    let (lhs, eq, rhs) = if let Some((l, r)) = f.split_once("==") {
                        (l, true, r)
                    } else if let Some((l, r)) = f.split_once("!=") {
                        (l, false, r)
                    } else {
                        return None;
                    };
                    let lhs = lhs.trim().strip_prefix("@.")?;
                    let rhs = rhs.trim().trim_matches(|c| c == '"' || c == '\'');
                    steps.push(Step::Filter(
                        lhs.split('.').map(String::from).collect(),
                        eq,
                        rhs.to_string(),
                    ));
                } else if let Ok(n) = inner.parse::<usize>() {
                    steps.push(Step::Index(n));
                } else {
                    steps.push(Step::Field(
                        inner.trim_matches(|c| c == '"' || c == '\'').to_string(),
                    ));
                }
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (j, &c) in chars.iter().enumerate().skip(open + 1) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ']' => return Some(j),
            None => {}
        }
    }
    None
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every value the path selects, in order.
pub(crate) fn eval_path(obj: &Value, path: &str) -> Vec<Value> {
    let Some(steps) = parse_path(path) else {
        return Vec::new();
    };
    let mut cur = vec![obj.clone()];
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            match &step {
                Step::Field(f) => {
                    if let Some(x) = v.get(f.as_str()) {
                        next.push(x.clone());
                    }
                }
                Step::Index(n) => {
                    if let Some(x) = v.get(*n) {
                        next.push(x.clone());
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a),
                    Value::Object(m) => next.extend(m.into_iter().map(|(_, x)| x)),
                    _ => {}
                },
                Step::Filter(field, eq, want) => {
                    if let Value::Array(a) = v {
                        for item in a {
                            let mut x = Some(&item);
                            for seg in field {
                                x = x.and_then(|x| x.get(seg.as_str()));
                            }
                            let hit = x.is_some_and(|x| scalar_text(x) == *want);
                            if hit == *eq {
                                next.push(item.clone());
                            }
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn custom_cell(obj: &Value, col: &PrinterColumn) -> Value {
    let results = eval_path(obj, &col.json_path);
    let Some(first) = results.into_iter().next() else {
        return Value::Null;
    };
    match col.type_.as_str() {
        "string" => match first {
            Value::Null => Value::Null,
            other => Value::String(scalar_text(&other)),
        },
        "date" => age(Some(&first)),
        "integer" => match &first {
            Value::Number(n) if n.is_i64() || n.is_u64() => first,
            _ => Value::Null,
        },
        "number" => match &first {
            Value::Number(_) => first,
            _ => Value::Null,
        },
        "boolean" => match &first {
            Value::Bool(_) => first,
            _ => Value::Null,
        },
        _ => Value::String(scalar_text(&first)),
    }
}

fn column(name: &str, type_: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn name_column() -> Value {
    column(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        0,
    )
}

fn age_column() -> Value {
    column(
        "Age",
        "string",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        0,
    )
}

/// Column definitions of a kind.
pub(crate) fn columns(def: &ResourceDef) -> Vec<Value> {
    let mut cols = vec![name_column()];
    match def.table {
        TableKind::Custom => {
            for c in &def.columns {
                cols.push(column(
                    &c.name,
                    &c.type_,
                    &c.format,
                    &c.description,
                    c.priority,
                ));
            }
        }
        TableKind::Namespace => {
            cols.push(column(
                "Status",
                "string",
                "",
                "The status of the namespace",
                0,
            ));
            cols.push(age_column());
        }
        TableKind::Secret => {
            cols.push(column("Type", "string", "", "The type of the secret", 0));
            cols.push(column(
                "Data",
                "string",
                "",
                "The number of keys in the secret",
                0,
            ));
            cols.push(age_column());
        }
        TableKind::ConfigMap => {
            cols.push(column(
                "Data",
                "string",
                "",
                "The number of keys in the config map",
                0,
            ));
            cols.push(age_column());
        }
        TableKind::CoreEvent | TableKind::Event => {
            cols = vec![
                column(
                    "Last Seen",
                    "string",
                    "",
                    "Time since the event was last seen",
                    0,
                ),
                column("Type", "string", "", "Normal or Warning", 0),
                column("Reason", "string", "", "Why the event happened", 0),
                column("Object", "string", "", "The object the event is about", 0),
                column("Message", "string", "", "What happened", 0),
            ];
        }
        TableKind::Lease => {
            cols.push(column("Holder", "string", "", "The holder of the lease", 0));
            cols.push(age_column());
        }
        TableKind::ServiceAccount => {
            cols.push(column(
                "Secrets",
                "string",
                "",
                "The number of Secrets the service account lists",
                0,
            ));
            cols.push(age_column());
        }
        TableKind::Binding => {
            cols.push(column("Role", "string", "", "The role that is bound", 0));
            cols.push(age_column());
        }
        TableKind::Crd => {
            cols.push(column(
                "Created At",
                "date",
                "",
                "When the definition was created",
                0,
            ));
        }
    }
    cols
}

fn count_keys(v: Option<&Value>) -> usize {
    v.and_then(Value::as_object).map(|m| m.len()).unwrap_or(0)
}

/// Cells of one object (served form).
pub(crate) fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let created = obj.pointer("/metadata/creationTimestamp");
    let text = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .map(|s| Value::String(s.into()))
            .unwrap_or(Value::String(String::new()))
    };
    match def.table {
        TableKind::Custom => {
            let mut cells = vec![name];
            cells.extend(def.columns.iter().map(|c| custom_cell(obj, c)));
            cells
        }
        TableKind::Namespace => vec![name, text("/status/phase"), age(created)],
        TableKind::Secret => vec![
            name,
            text("/type"),
            Value::String(
                (count_keys(obj.get("data")) + count_keys(obj.get("stringData"))).to_string(),
            ),
            age(created),
        ],
        TableKind::ConfigMap => vec![
            name,
            Value::String(
                (count_keys(obj.get("data")) + count_keys(obj.get("binaryData"))).to_string(),
            ),
            age(created),
        ],
        TableKind::CoreEvent | TableKind::Event => {
            let (regarding, note, last) = if def.table == TableKind::Event {
                (
                    obj.get("regarding"),
                    obj.get("note"),
                    obj.pointer("/series/lastObservedTime")
                        .or_else(|| obj.get("deprecatedLastTimestamp"))
                        .or_else(|| obj.get("eventTime")),
                )
            } else {
                (
                    obj.get("involvedObject"),
                    obj.get("message"),
                    obj.pointer("/series/lastObservedTime")
                        .or_else(|| obj.get("lastTimestamp"))
                        .or_else(|| obj.get("eventTime")),
                )
            };
            let last = match last {
                Some(Value::Null) | None => created,
                some => some,
            };
            let object = regarding
                .map(|r| {
                    format!(
                        "{}/{}",
                        r.get("kind")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_lowercase(),
                        r.get("name").and_then(Value::as_str).unwrap_or("")
                    )
                })
                .unwrap_or_default();
            vec![
                age(last),
                text("/type"),
                text("/reason"),
                Value::String(object),
                note.cloned().unwrap_or(Value::String(String::new())),
            ]
        }
        TableKind::Lease => vec![name, text("/spec/holderIdentity"), age(created)],
        TableKind::Crd => vec![name, created.cloned().unwrap_or(Value::Null)],
        TableKind::ServiceAccount => vec![
            name,
            Value::String(
                obj.get("secrets")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
                    .to_string(),
            ),
            age(created),
        ],
        TableKind::Binding => vec![
            name,
            Value::String(format!(
                "{}/{}",
                obj.pointer("/roleRef/kind")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                obj.pointer("/roleRef/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )),
            age(created),
        ],
    }
}

fn row(def: &ResourceDef, obj: &Value, include: IncludeObject) -> Value {
    let mut row = json!({"cells": cells(def, obj)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
            });
        }
        IncludeObject::Object => row["object"] = obj.clone(),
    }
    row
}

/// A Table of served objects.
pub(crate) fn table(
    def: &ResourceDef,
    objects: &[Value],
    include: IncludeObject,
    resource_version: Option<String>,
    with_columns: bool,
) -> Value {
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = Value::String(rv);
    }
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "rows": objects.iter().map(|o| row(def, o, include)).collect::<Vec<_>>(),
    });
    if with_columns {
        t["columnDefinitions"] = Value::Array(columns(def));
    } else {
        t["columnDefinitions"] = Value::Null;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_filter_selects_the_ready_status() {
        let obj = json!({"status": {"conditions": [
            {"type": "Reconciling", "status": "False", "reason": "Done"},
            {"type": "Ready", "status": "True", "reason": "Created"}
        ], "partitions": 12}});
        assert_eq!(
            eval_path(&obj, r#".status.conditions[?(@.type=="Ready")].status"#),
            vec![json!("True")]
        );
        assert_eq!(
            eval_path(&obj, r#"{.status.conditions[?(@.type=="Ready")].reason}"#),
            vec![json!("Created")]
        );
        assert_eq!(eval_path(&obj, ".status.partitions"), vec![json!(12)]);
        assert_eq!(
            eval_path(&obj, ".status.conditions[0].type"),
            vec![json!("Reconciling")]
        );
        assert!(eval_path(&obj, ".status.missing").is_empty());
    }

    #[test]
    fn durations_read_like_kubectl() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(5)), "5s");
        assert_eq!(human_duration(d(125)), "2m5s");
        assert_eq!(human_duration(d(600)), "10m");
        assert_eq!(human_duration(d(3 * 3600 + 60)), "3h1m");
        assert_eq!(human_duration(d(50 * 3600)), "2d2h");
    }
}
