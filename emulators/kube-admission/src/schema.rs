//! A CRD's `openAPIV3Schema`, read once into a tree that admission walks cheaply.

use std::collections::BTreeMap;

use crate::program::Program;
use regex::Regex;

use crate::needs::Need;
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Type {
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "object" => Type::Object,
            "array" => Type::Array,
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
        }
    }
}

#[derive(Debug)]
pub(crate) enum Additional {
    /// No `additionalProperties`: only `properties` are known.
    Absent,
    /// `additionalProperties: false`.
    Forbidden,
    /// `additionalProperties: true`: any value.
    Any,
    /// A map whose values follow this schema.
    Schema(Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListType {
    Atomic,
    Set,
    Map,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    None,
    Int32,
    Int64,
    DateTime,
    /// `date`: a full-date, which CEL sees as the timestamp of its midnight UTC.
    Date,
    Byte,
    Duration,
}

/// One `x-kubernetes-validations` entry, compiled.
pub(crate) struct Rule {
    pub(crate) source: String,
    pub(crate) program: Program,
    pub(crate) message: Option<String>,
    pub(crate) message_program: Option<Program>,
    pub(crate) reason: Option<String>,
    pub(crate) field_path: Option<String>,
    pub(crate) transition: bool,
    pub(crate) optional_old_self: bool,
    /// The rule type-checked against the node, to bound its runtime cost.
    pub(crate) cost: Option<crate::check::CostProgram>,
    /// The same for the messageExpression.
    pub(crate) message_cost: Option<crate::check::CostProgram>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("rule", &self.source).finish()
    }
}

/// One schema node.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) ty: Option<Type>,
    pub(crate) nullable: bool,
    pub(crate) int_or_string: bool,
    pub(crate) preserve_unknown: bool,
    pub(crate) embedded: bool,
    pub(crate) properties: BTreeMap<String, Node>,
    pub(crate) required: Vec<String>,
    pub(crate) additional: Additional,
    pub(crate) items: Option<Box<Node>>,
    pub(crate) enum_values: Option<Vec<Value>>,
    pub(crate) minimum: Option<f64>,
    pub(crate) exclusive_minimum: bool,
    pub(crate) maximum: Option<f64>,
    pub(crate) exclusive_maximum: bool,
    pub(crate) multiple_of: Option<f64>,
    pub(crate) min_length: Option<u64>,
    pub(crate) max_length: Option<u64>,
    pub(crate) pattern: Option<Regex>,
    pub(crate) min_items: Option<u64>,
    pub(crate) max_items: Option<u64>,
    pub(crate) unique_items: bool,
    pub(crate) min_properties: Option<u64>,
    pub(crate) max_properties: Option<u64>,
    pub(crate) format: Format,
    pub(crate) list_type: ListType,
    pub(crate) list_map_keys: Vec<String>,
    pub(crate) default: Option<Value>,
    pub(crate) rules: Vec<Rule>,
    /// What the rules of this node read of `self` and `oldSelf`.
    pub(crate) cel_need: Need,
    /// Value validations in `allOf`, `anyOf`, `oneOf`, `not`: checked, never used for pruning.
    pub(crate) all_of: Vec<Node>,
    pub(crate) any_of: Vec<Node>,
    pub(crate) one_of: Vec<Node>,
    pub(crate) not: Option<Box<Node>>,
    /// Whether this node or a node below it has a rule using `oldSelf`: unchanged subtrees
    /// without one need no CEL walk at all.
    pub(crate) transition_below: bool,
    /// Whether this node or a node below it has any rule.
    pub(crate) rules_below: bool,
}

const MAX_DEPTH: usize = 64;

impl Node {
    pub(crate) fn compile(schema: &Value, path: &str, depth: usize) -> Result<Node, String> {
        let at = if path.is_empty() { "<root>" } else { path };
        if depth > MAX_DEPTH {
            return Err(format!(
                "{at}: schema nesting deeper than {MAX_DEPTH} levels"
            ));
        }
        let obj = schema
            .as_object()
            .ok_or_else(|| format!("{at}: a schema must be an object"))?;
        let ty = match obj.get("type") {
            None => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => {
                Some(Type::parse(s).ok_or_else(|| format!("{at}: unknown type {s:?}"))?)
            }
            Some(other) => return Err(format!("{at}: type must be a string, not {other}")),
        };
        let flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
        let uint = |k: &str| -> Result<Option<u64>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| {
                        v.as_f64()
                            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                            .map(|f| f as u64)
                    })
                    .map(Some)
                    .ok_or_else(|| format!("{at}: {k} must be a non-negative integer")),
            }
        };
        let num = |k: &str| -> Result<Option<f64>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| format!("{at}: {k} must be a number")),
            }
        };

        let mut properties = BTreeMap::new();
        if let Some(props) = obj.get("properties") {
            let props = props
                .as_object()
                .ok_or_else(|| format!("{at}: properties must be an object"))?;
            for (name, sub) in props {
                let child_path = join(path, name);
                properties.insert(name.clone(), Node::compile(sub, &child_path, depth + 1)?);
            }
        }
        let additional = match obj.get("additionalProperties") {
            None | Some(Value::Null) => Additional::Absent,
            Some(Value::Bool(false)) => Additional::Forbidden,
            Some(Value::Bool(true)) => Additional::Any,
            Some(sub) => Additional::Schema(Box::new(Node::compile(
                sub,
                &format!("{}[*]", if path.is_empty() { "" } else { path }),
                depth + 1,
            )?)),
        };
        let items = match obj.get("items") {
            None | Some(Value::Null) => None,
            Some(sub) if sub.is_object() => Some(Box::new(Node::compile(
                sub,
                &format!("{path}[*]"),
                depth + 1,
            )?)),
            Some(_) => return Err(format!("{at}: items must be a single schema")),
        };
        let required = match obj.get("required") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(r)) => r
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{at}: required must list strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(format!("{at}: required must be an array")),
        };
        let enum_values = match obj.get("enum") {
            None | Some(Value::Null) => None,
            Some(Value::Array(v)) => Some(v.clone()),
            Some(_) => return Err(format!("{at}: enum must be an array")),
        };
        let pattern = match obj.get("pattern").and_then(Value::as_str) {
            None => None,
            Some(p) => Some(
                Regex::new(p).map_err(|e| format!("{at}: pattern {p:?} does not compile: {e}"))?,
            ),
        };
        let format = match obj.get("format").and_then(Value::as_str) {
            Some("int32") => Format::Int32,
            Some("int64") => Format::Int64,
            Some("date-time") => Format::DateTime,
            Some("date") => Format::Date,
            Some("byte") => Format::Byte,
            Some("duration") => Format::Duration,
            _ => Format::None,
        };
        let list_type = match obj.get("x-kubernetes-list-type").and_then(Value::as_str) {
            None | Some("atomic") => ListType::Atomic,
            Some("set") => ListType::Set,
            Some("map") => ListType::Map,
            Some(other) => return Err(format!("{at}: unknown x-kubernetes-list-type {other:?}")),
        };
        let list_map_keys: Vec<String> = obj
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if list_type == ListType::Map && list_map_keys.is_empty() {
            return Err(format!(
                "{at}: x-kubernetes-list-type map needs x-kubernetes-list-map-keys"
            ));
        }
        let (rules, cel_need) = compile_rules(schema, obj, at, depth == 0)?;
        let branches = |k: &str| -> Result<Vec<Node>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|b| Node::compile(b, path, depth + 1))
                    .collect(),
                Some(_) => Err(format!("{at}: {k} must be an array of schemas")),
            }
        };
        let all_of = branches("allOf")?;
        let any_of = branches("anyOf")?;
        let one_of = branches("oneOf")?;
        let not = match obj.get("not") {
            None | Some(Value::Null) => None,
            Some(b) => Some(Box::new(Node::compile(b, path, depth + 1)?)),
        };

        let mut node = Node {
            ty,
            nullable: flag("nullable"),
            int_or_string: flag("x-kubernetes-int-or-string"),
            preserve_unknown: flag("x-kubernetes-preserve-unknown-fields"),
            embedded: flag("x-kubernetes-embedded-resource"),
            properties,
            required,
            additional,
            items,
            enum_values,
            minimum: num("minimum")?,
            exclusive_minimum: flag("exclusiveMinimum"),
            maximum: num("maximum")?,
            exclusive_maximum: flag("exclusiveMaximum"),
            multiple_of: num("multipleOf")?,
            min_length: uint("minLength")?,
            max_length: uint("maxLength")?,
            pattern,
            min_items: uint("minItems")?,
            max_items: uint("maxItems")?,
            unique_items: flag("uniqueItems"),
            min_properties: uint("minProperties")?,
            max_properties: uint("maxProperties")?,
            format,
            list_type,
            list_map_keys,
            default: obj.get("default").cloned(),
            rules,
            cel_need,
            all_of,
            any_of,
            one_of,
            not,
            transition_below: false,
            rules_below: false,
        };
        let children =
            node.properties
                .values()
                .chain(node.items.as_deref())
                .chain(match &node.additional {
                    Additional::Schema(s) => Some(s.as_ref()),
                    _ => None,
                });
        let (mut transition_below, mut rules_below) = (false, false);
        for child in children {
            transition_below |= child.transition_below;
            rules_below |= child.rules_below;
        }
        node.transition_below = transition_below || node.rules.iter().any(|r| r.transition);
        node.rules_below = rules_below || !node.rules.is_empty();
        Ok(node)
    }

    /// The `additionalProperties` schema when this node is a map.
    pub(crate) fn map_values(&self) -> Option<&Node> {
        match &self.additional {
            Additional::Schema(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn is_map(&self) -> bool {
        matches!(self.additional, Additional::Schema(_) | Additional::Any)
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn compile_rules(
    schema: &Value,
    obj: &Map<String, Value>,
    at: &str,
    is_root: bool,
) -> Result<(Vec<Rule>, Need), String> {
    let Some(raw) = obj.get("x-kubernetes-validations") else {
        return Ok((Vec::new(), Need::nothing()));
    };
    if raw.is_null() {
        return Ok((Vec::new(), Need::nothing()));
    }
    if !raw.is_array() {
        return Err(format!("{at}: x-kubernetes-validations must be an array"));
    }
    let raw = raw
        .as_array()
        .ok_or_else(|| format!("{at}: x-kubernetes-validations must be an array"))?;
    let mut specs = Vec::with_capacity(raw.len());
    for r in raw {
        let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
        let source = text("rule").ok_or_else(|| {
            format!("{at}: x-kubernetes-validations: invalid rule definition: missing field `rule`")
        })?;
        specs.push((
            source,
            text("message"),
            text("messageExpression"),
            text("reason"),
            text("fieldPath"),
            r.get("optionalOldSelf").and_then(Value::as_bool) == Some(true),
        ));
    }
    // The ANTLR parser recurses deeply on nested expressions: give it a large stack.
    // What the rules read of `self` and `oldSelf` (walking the trees also needs the stack).
    let parsed = crate::check::with_parser_stack(|| {
        let mut need = Need::nothing();
        let parsed = specs
            .iter()
            .map(|(source, _, message_expression, _, _, optional_old_self)| {
                let cost = crate::check::CostProgram::compile(
                    source,
                    schema,
                    is_root,
                    *optional_old_self,
                );
                // One-variable all/exists evaluated in the error-absorbing two-variable form.
                let absorbing = cost.as_ref().and_then(|p| p.absorbing_source(source));
                let program = Program::compile(
                    absorbing.as_deref().unwrap_or(source),
                    Some(schema),
                    *optional_old_self,
                )
                .map_err(|e| format!("failed to compile rule \"{source}\": {e}"))?;
                let message_cost = message_expression.as_deref().and_then(|m| {
                    crate::check::CostProgram::compile(m, schema, is_root, *optional_old_self)
                });
                let message_program = match message_expression {
                    Some(m) => Some(Program::compile(m, Some(schema), *optional_old_self).map_err(
                        |e| {
                            format!(
                                "failed to compile messageExpression \"{m}\" for rule \"{source}\": {e}"
                            )
                        },
                    )?),
                    None => None,
                };
                need.visit(program.expression());
                if let Some(m) = &message_program {
                    need.visit(m.expression());
                }
                Ok::<_, String>((cost, program, message_program, message_cost))
            })
            .collect::<Vec<_>>();
        (parsed, need)
    })
    .ok_or_else(|| format!("{at}: x-kubernetes-validations: a rule could not be parsed"))?;
    let (parsed, need) = parsed;
    let mut rules = Vec::with_capacity(specs.len());
    for ((source, message, _, reason, field_path, optional_old_self), result) in
        specs.into_iter().zip(parsed)
    {
        let (cost, program, message_program, message_cost) =
            result.map_err(|e| format!("{at}: x-kubernetes-validations: {e}"))?;
        if let Some(r) = &reason
            && !matches!(
                r.as_str(),
                "FieldValueInvalid"
                    | "FieldValueForbidden"
                    | "FieldValueRequired"
                    | "FieldValueDuplicate"
            )
        {
            return Err(format!(
                "{at}: x-kubernetes-validations: reason {r:?} is not one of FieldValueInvalid, FieldValueForbidden, FieldValueRequired, FieldValueDuplicate"
            ));
        }
        rules.push(Rule {
            cost,
            transition: program.references_old_self(),
            source,
            message: message.filter(|m| !m.trim().is_empty()),
            reason,
            field_path: field_path.filter(|p| !p.is_empty()),
            optional_old_self,
            program,
            message_program,
            message_cost,
        });
    }
    Ok((rules, need))
}
