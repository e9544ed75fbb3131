//! The functions of kube-apiserver's CEL environment for CRD validation rules (Kubernetes 1.32):
//! cel-go's standard declarations (`common/stdlib`), the strings extension (version 2),
//! `cel.bind`, optionals, sets, and the Kubernetes libraries (apiserver `pkg/cel/library`:
//! lists, regex, urls, quantity, ip, cidr, format). Overload ids follow cel-go's
//! `common/overloads` and the Kubernetes libraries where cost estimation depends on them.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::types::Ty;

pub(crate) struct Overload {
    pub(crate) id: &'static str,
    pub(crate) member: bool,
    /// Parameter types; for a member overload, the first one is the receiver.
    pub(crate) params: Vec<Ty>,
    pub(crate) result: Ty,
}

/// Parses the small type notation of the table below.
fn ty(s: &str) -> Ty {
    let s = s.trim();
    if let Some(inner) = s.strip_suffix(')') {
        let (head, args) = inner.split_once('(').unwrap_or((inner, ""));
        let mut parts = Vec::new();
        let mut depth = 0;
        let mut cur = String::new();
        for c in args.chars() {
            match c {
                '(' => {
                    depth += 1;
                    cur.push(c);
                }
                ')' => {
                    depth -= 1;
                    cur.push(c);
                }
                ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        let mut p = parts.iter().map(|p| ty(p));
        let mut next = || p.next().unwrap_or(Ty::Dyn);
        return match head {
            "list" => Ty::List(Box::new(next())),
            "map" => {
                let k = next();
                Ty::Map(Box::new(k), Box::new(next()))
            }
            "type" => Ty::Type(Box::new(next())),
            _ => Ty::optional(next()),
        };
    }
    match s {
        "bool" => Ty::Bool,
        "int" => Ty::Int,
        "uint" => Ty::Uint,
        "double" => Ty::Double,
        "string" => Ty::String,
        "bytes" => Ty::Bytes,
        "null" => Ty::Null,
        "duration" => Ty::Duration,
        "timestamp" => Ty::Timestamp,
        "Quantity" => Ty::Struct("kubernetes.Quantity"),
        "URL" => Ty::Struct("kubernetes.URL"),
        "Format" => Ty::Struct("kubernetes.NamedFormat"),
        "IP" => Ty::Opaque("net.IP", vec![]),
        "CIDR" => Ty::Opaque("net.CIDR", vec![]),
        p if p.len() == 1 && p.chars().all(|c| c.is_ascii_uppercase()) => Ty::Param(Arc::from(p)),
        _ => Ty::Dyn,
    }
}

/// (function, overload id, member, parameters, result)
type Row = (&'static str, &'static str, bool, &'static str, &'static str);

const G: bool = false;
const M: bool = true;

const TABLE: &[Row] = &[
    ("_?_:_", "conditional", G, "bool,A,A", "A"),
    ("_&&_", "logical_and", G, "bool,bool", "bool"),
    ("_||_", "logical_or", G, "bool,bool", "bool"),
    ("!_", "logical_not", G, "bool", "bool"),
    (
        "@not_strictly_false",
        "not_strictly_false",
        G,
        "bool",
        "bool",
    ),
    ("-_", "negate_int64", G, "int", "int"),
    ("-_", "negate_double", G, "double", "double"),
    ("_==_", "equals", G, "A,A", "bool"),
    ("_!=_", "not_equals", G, "A,A", "bool"),
    ("_+_", "add_int64", G, "int,int", "int"),
    ("_+_", "add_uint64", G, "uint,uint", "uint"),
    ("_+_", "add_double", G, "double,double", "double"),
    ("_+_", "add_string", G, "string,string", "string"),
    ("_+_", "add_bytes", G, "bytes,bytes", "bytes"),
    ("_+_", "add_list", G, "list(A),list(A)", "list(A)"),
    (
        "_+_",
        "add_timestamp_duration",
        G,
        "timestamp,duration",
        "timestamp",
    ),
    (
        "_+_",
        "add_duration_timestamp",
        G,
        "duration,timestamp",
        "timestamp",
    ),
    (
        "_+_",
        "add_duration_duration",
        G,
        "duration,duration",
        "duration",
    ),
    ("_-_", "subtract_int64", G, "int,int", "int"),
    ("_-_", "subtract_uint64", G, "uint,uint", "uint"),
    ("_-_", "subtract_double", G, "double,double", "double"),
    (
        "_-_",
        "subtract_timestamp_timestamp",
        G,
        "timestamp,timestamp",
        "duration",
    ),
    (
        "_-_",
        "subtract_timestamp_duration",
        G,
        "timestamp,duration",
        "timestamp",
    ),
    (
        "_-_",
        "subtract_duration_duration",
        G,
        "duration,duration",
        "duration",
    ),
    ("_*_", "multiply_int64", G, "int,int", "int"),
    ("_*_", "multiply_uint64", G, "uint,uint", "uint"),
    ("_*_", "multiply_double", G, "double,double", "double"),
    ("_/_", "divide_int64", G, "int,int", "int"),
    ("_/_", "divide_uint64", G, "uint,uint", "uint"),
    ("_/_", "divide_double", G, "double,double", "double"),
    ("_%_", "modulo_int64", G, "int,int", "int"),
    ("_%_", "modulo_uint64", G, "uint,uint", "uint"),
    ("_[_]", "index_list", G, "list(A),int", "A"),
    ("_[_]", "index_map", G, "map(A,B),A", "B"),
    ("@in", "in_list", G, "A,list(A)", "bool"),
    ("@in", "in_map", G, "A,map(A,B)", "bool"),
    ("size", "size_string", G, "string", "int"),
    ("size", "size_bytes", G, "bytes", "int"),
    ("size", "size_list", G, "list(A)", "int"),
    ("size", "size_map", G, "map(A,B)", "int"),
    ("size", "string_size", M, "string", "int"),
    ("size", "bytes_size", M, "bytes", "int"),
    ("size", "list_size", M, "list(A)", "int"),
    ("size", "map_size", M, "map(A,B)", "int"),
    ("int", "int64_to_int64", G, "int", "int"),
    ("int", "uint64_to_int64", G, "uint", "int"),
    ("int", "double_to_int64", G, "double", "int"),
    ("int", "string_to_int64", G, "string", "int"),
    ("int", "timestamp_to_int64", G, "timestamp", "int"),
    ("uint", "uint64_to_uint64", G, "uint", "uint"),
    ("uint", "int64_to_uint64", G, "int", "uint"),
    ("uint", "double_to_uint64", G, "double", "uint"),
    ("uint", "string_to_uint64", G, "string", "uint"),
    ("double", "double_to_double", G, "double", "double"),
    ("double", "int64_to_double", G, "int", "double"),
    ("double", "uint64_to_double", G, "uint", "double"),
    ("double", "string_to_double", G, "string", "double"),
    ("string", "string_to_string", G, "string", "string"),
    ("string", "int64_to_string", G, "int", "string"),
    ("string", "uint64_to_string", G, "uint", "string"),
    ("string", "double_to_string", G, "double", "string"),
    ("string", "bool_to_string", G, "bool", "string"),
    ("string", "bytes_to_string", G, "bytes", "string"),
    ("string", "timestamp_to_string", G, "timestamp", "string"),
    ("string", "duration_to_string", G, "duration", "string"),
    ("string", "ip_to_string", G, "IP", "string"),
    ("string", "cidr_to_string", G, "CIDR", "string"),
    ("bytes", "bytes_to_bytes", G, "bytes", "bytes"),
    ("bytes", "string_to_bytes", G, "string", "bytes"),
    ("bool", "bool_to_bool", G, "bool", "bool"),
    ("bool", "string_to_bool", G, "string", "bool"),
    (
        "duration",
        "duration_to_duration",
        G,
        "duration",
        "duration",
    ),
    ("duration", "string_to_duration", G, "string", "duration"),
    (
        "timestamp",
        "timestamp_to_timestamp",
        G,
        "timestamp",
        "timestamp",
    ),
    ("timestamp", "string_to_timestamp", G, "string", "timestamp"),
    ("timestamp", "int64_to_timestamp", G, "int", "timestamp"),
    ("dyn", "to_dyn", G, "A", "dyn"),
    ("type", "type", G, "A", "type(A)"),
    ("contains", "contains_string", M, "string,string", "bool"),
    ("endsWith", "ends_with_string", M, "string,string", "bool"),
    (
        "startsWith",
        "starts_with_string",
        M,
        "string,string",
        "bool",
    ),
    ("matches", "matches_string", M, "string,string", "bool"),
    ("matches", "matches", G, "string,string", "bool"),
    ("getFullYear", "timestamp_to_year", M, "timestamp", "int"),
    (
        "getFullYear",
        "timestamp_to_year_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    ("getMonth", "timestamp_to_month", M, "timestamp", "int"),
    (
        "getMonth",
        "timestamp_to_month_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    (
        "getDayOfYear",
        "timestamp_to_day_of_year",
        M,
        "timestamp",
        "int",
    ),
    (
        "getDayOfYear",
        "timestamp_to_day_of_year_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    (
        "getDayOfMonth",
        "timestamp_to_day_of_month_zero_based",
        M,
        "timestamp",
        "int",
    ),
    (
        "getDayOfMonth",
        "timestamp_to_day_of_month_zero_based_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    (
        "getDate",
        "timestamp_to_day_of_month_one_based",
        M,
        "timestamp",
        "int",
    ),
    (
        "getDate",
        "timestamp_to_day_of_month_one_based_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    (
        "getDayOfWeek",
        "timestamp_to_day_of_week",
        M,
        "timestamp",
        "int",
    ),
    (
        "getDayOfWeek",
        "timestamp_to_day_of_week_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    ("getHours", "timestamp_to_hours", M, "timestamp", "int"),
    (
        "getHours",
        "timestamp_to_hours_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    ("getHours", "duration_to_hours", M, "duration", "int"),
    ("getMinutes", "timestamp_to_minutes", M, "timestamp", "int"),
    (
        "getMinutes",
        "timestamp_to_minutes_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    ("getMinutes", "duration_to_minutes", M, "duration", "int"),
    ("getSeconds", "timestamp_to_seconds", M, "timestamp", "int"),
    (
        "getSeconds",
        "timestamp_to_seconds_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    ("getSeconds", "duration_to_seconds", M, "duration", "int"),
    (
        "getMilliseconds",
        "timestamp_to_milliseconds",
        M,
        "timestamp",
        "int",
    ),
    (
        "getMilliseconds",
        "timestamp_to_milliseconds_with_tz",
        M,
        "timestamp,string",
        "int",
    ),
    (
        "getMilliseconds",
        "duration_to_milliseconds",
        M,
        "duration",
        "int",
    ),
    // cel-go ext strings, version 2.
    ("charAt", "string_char_at_int", M, "string,int", "string"),
    (
        "indexOf",
        "string_index_of_string",
        M,
        "string,string",
        "int",
    ),
    (
        "indexOf",
        "string_index_of_string_int",
        M,
        "string,string,int",
        "int",
    ),
    (
        "lastIndexOf",
        "string_last_index_of_string",
        M,
        "string,string",
        "int",
    ),
    (
        "lastIndexOf",
        "string_last_index_of_string_int",
        M,
        "string,string,int",
        "int",
    ),
    ("lowerAscii", "string_lower_ascii", M, "string", "string"),
    ("upperAscii", "string_upper_ascii", M, "string", "string"),
    (
        "replace",
        "string_replace_string_string",
        M,
        "string,string,string",
        "string",
    ),
    (
        "replace",
        "string_replace_string_string_int",
        M,
        "string,string,string,int",
        "string",
    ),
    (
        "split",
        "string_split_string",
        M,
        "string,string",
        "list(string)",
    ),
    (
        "split",
        "string_split_string_int",
        M,
        "string,string,int",
        "list(string)",
    ),
    (
        "substring",
        "string_substring_int",
        M,
        "string,int",
        "string",
    ),
    (
        "substring",
        "string_substring_int_int",
        M,
        "string,int,int",
        "string",
    ),
    ("trim", "string_trim", M, "string", "string"),
    ("join", "list_join", M, "list(string)", "string"),
    (
        "join",
        "list_join_string",
        M,
        "list(string),string",
        "string",
    ),
    ("strings.quote", "strings_quote", G, "string", "string"),
    ("format", "string_format", M, "string,list(dyn)", "string"),
    // Kubernetes lists library.
    ("isSorted", "list_is_sorted", M, "list(A)", "bool"),
    ("sum", "list_sum", M, "list(A)", "A"),
    ("max", "list_max", M, "list(A)", "A"),
    ("min", "list_min", M, "list(A)", "A"),
    ("indexOf", "list_index_of", M, "list(A),A", "int"),
    ("lastIndexOf", "list_last_index_of", M, "list(A),A", "int"),
    // Kubernetes regex library.
    ("find", "find", M, "string,string", "string"),
    ("findAll", "find_all", M, "string,string", "list(string)"),
    (
        "findAll",
        "find_all_n",
        M,
        "string,string,int",
        "list(string)",
    ),
    // Kubernetes URL library.
    ("url", "string_to_url", G, "string", "URL"),
    ("isURL", "is_url_string", G, "string", "bool"),
    ("getScheme", "url_get_scheme", M, "URL", "string"),
    ("getHost", "url_get_host", M, "URL", "string"),
    ("getHostname", "url_get_hostname", M, "URL", "string"),
    ("getPort", "url_get_port", M, "URL", "string"),
    ("getEscapedPath", "url_get_escaped_path", M, "URL", "string"),
    (
        "getQuery",
        "url_get_query",
        M,
        "URL",
        "map(string,list(string))",
    ),
    // Kubernetes quantity library.
    ("quantity", "string_to_quantity", G, "string", "Quantity"),
    ("isQuantity", "is_quantity_string", G, "string", "bool"),
    ("sign", "quantity_sign", M, "Quantity", "int"),
    ("isInteger", "quantity_is_integer", M, "Quantity", "bool"),
    ("asInteger", "quantity_as_integer", M, "Quantity", "int"),
    (
        "asApproximateFloat",
        "quantity_as_approximate_float",
        M,
        "Quantity",
        "double",
    ),
    ("add", "quantity_add", M, "Quantity,Quantity", "Quantity"),
    ("add", "quantity_add_int", M, "Quantity,int", "Quantity"),
    ("sub", "quantity_sub", M, "Quantity,Quantity", "Quantity"),
    ("sub", "quantity_sub_int", M, "Quantity,int", "Quantity"),
    (
        "isGreaterThan",
        "quantity_is_greater_than",
        M,
        "Quantity,Quantity",
        "bool",
    ),
    (
        "isLessThan",
        "quantity_is_less_than",
        M,
        "Quantity,Quantity",
        "bool",
    ),
    (
        "compareTo",
        "quantity_compare_to",
        M,
        "Quantity,Quantity",
        "int",
    ),
    // Kubernetes IP and CIDR libraries.
    ("ip", "string_to_ip", G, "string", "IP"),
    ("isIP", "is_ip", G, "string", "bool"),
    ("ip.isCanonical", "ip_is_canonical", G, "string", "bool"),
    ("family", "ip_family", M, "IP", "int"),
    ("isUnspecified", "ip_is_unspecified", M, "IP", "bool"),
    ("isLoopback", "ip_is_loopback", M, "IP", "bool"),
    (
        "isLinkLocalMulticast",
        "ip_is_link_local_multicast",
        M,
        "IP",
        "bool",
    ),
    (
        "isLinkLocalUnicast",
        "ip_is_link_local_unicast",
        M,
        "IP",
        "bool",
    ),
    ("isGlobalUnicast", "ip_is_global_unicast", M, "IP", "bool"),
    ("cidr", "string_to_cidr", G, "string", "CIDR"),
    ("isCIDR", "is_cidr", G, "string", "bool"),
    ("containsIP", "cidr_contains_ip_ip", M, "CIDR,IP", "bool"),
    (
        "containsIP",
        "cidr_contains_ip_string",
        M,
        "CIDR,string",
        "bool",
    ),
    ("containsCIDR", "cidr_contains_cidr", M, "CIDR,CIDR", "bool"),
    (
        "containsCIDR",
        "cidr_contains_cidr_string",
        M,
        "CIDR,string",
        "bool",
    ),
    ("ip", "cidr_ip", M, "CIDR", "IP"),
    ("masked", "cidr_masked", M, "CIDR", "CIDR"),
    ("prefixLength", "cidr_prefix_length", M, "CIDR", "int"),
    // Kubernetes format library.
    (
        "format.named",
        "format_named",
        G,
        "string",
        "optional(Format)",
    ),
    (
        "validate",
        "format_validate",
        M,
        "Format,string",
        "optional(list(string))",
    ),
    (
        "format.dns1123Label",
        "format_dns1123_label",
        G,
        "",
        "Format",
    ),
    (
        "format.dns1123Subdomain",
        "format_dns1123_subdomain",
        G,
        "",
        "Format",
    ),
    (
        "format.dns1035Label",
        "format_dns1035_label",
        G,
        "",
        "Format",
    ),
    (
        "format.qualifiedName",
        "format_qualified_name",
        G,
        "",
        "Format",
    ),
    (
        "format.dns1123LabelPrefix",
        "format_dns1123_label_prefix",
        G,
        "",
        "Format",
    ),
    (
        "format.dns1123SubdomainPrefix",
        "format_dns1123_subdomain_prefix",
        G,
        "",
        "Format",
    ),
    (
        "format.dns1035LabelPrefix",
        "format_dns1035_label_prefix",
        G,
        "",
        "Format",
    ),
    ("format.labelValue", "format_label_value", G, "", "Format"),
    ("format.uri", "format_uri", G, "", "Format"),
    ("format.uuid", "format_uuid", G, "", "Format"),
    ("format.byte", "format_byte", G, "", "Format"),
    ("format.date", "format_date", G, "", "Format"),
    ("format.datetime", "format_datetime", G, "", "Format"),
    // cel-go ext sets.
    (
        "sets.contains",
        "list_sets_contains_list",
        G,
        "list(A),list(A)",
        "bool",
    ),
    (
        "sets.equivalent",
        "list_sets_equivalent_list",
        G,
        "list(A),list(A)",
        "bool",
    ),
    (
        "sets.intersects",
        "list_sets_intersects_list",
        G,
        "list(A),list(A)",
        "bool",
    ),
    // cel-go ext two-variable comprehensions.
    (
        "cel.@mapInsert",
        "@mapInsert_map_key_value",
        G,
        "map(A,B),A,B",
        "map(A,B)",
    ),
    (
        "cel.@mapInsert",
        "@mapInsert_map_map",
        G,
        "map(A,B),map(A,B)",
        "map(A,B)",
    ),
    // cel-go optionals.
    ("optional.of", "optional_of", G, "A", "optional(A)"),
    (
        "optional.ofNonZeroValue",
        "optional_ofNonZeroValue",
        G,
        "A",
        "optional(A)",
    ),
    ("optional.none", "optional_none", G, "", "optional(A)"),
    // `[?x]`, `{?k: x}`: the element or entry is there when the optional `x` has a value.
    ("@optional_entry", "optional_entry", G, "optional(A)", "A"),
    ("value", "optional_value", M, "optional(A)", "A"),
    ("hasValue", "optional_hasValue", M, "optional(A)", "bool"),
    ("orValue", "optional_orValue_value", M, "optional(A),A", "A"),
    (
        "or",
        "optional_or_optional",
        M,
        "optional(A),optional(A)",
        "optional(A)",
    ),
    (
        "_[?_]",
        "list_optindex_optional_int",
        G,
        "list(A),int",
        "optional(A)",
    ),
    (
        "_[?_]",
        "map_optindex_optional_value",
        G,
        "map(A,B),A",
        "optional(B)",
    ),
    (
        "_[_]",
        "optional_list_index_int",
        G,
        "optional(list(A)),int",
        "optional(A)",
    ),
    (
        "_[_]",
        "optional_map_index_value",
        G,
        "optional(map(A,B)),A",
        "optional(B)",
    ),
];

/// Overloads by function name.
pub(crate) fn functions() -> &'static HashMap<&'static str, Vec<Overload>> {
    static F: OnceLock<HashMap<&'static str, Vec<Overload>>> = OnceLock::new();
    F.get_or_init(|| {
        let mut m: HashMap<&'static str, Vec<Overload>> = HashMap::new();
        for (name, id, member, params, result) in TABLE {
            let params = if params.is_empty() {
                Vec::new()
            } else {
                split_top(params).iter().map(|p| ty(p)).collect()
            };
            m.entry(name).or_default().push(Overload {
                id,
                member: *member,
                params,
                result: ty(result),
            });
        }
        // Ordering, including cel-go's cross-type numeric comparisons (enabled since 1.28).
        for (op, name) in [
            ("_<_", "less"),
            ("_<=_", "less_equals"),
            ("_>_", "greater"),
            ("_>=_", "greater_equals"),
        ] {
            for (suffix, a, b) in [
                ("bool", Ty::Bool, Ty::Bool),
                ("int64", Ty::Int, Ty::Int),
                ("uint64", Ty::Uint, Ty::Uint),
                ("double", Ty::Double, Ty::Double),
                ("string", Ty::String, Ty::String),
                ("bytes", Ty::Bytes, Ty::Bytes),
                ("timestamp", Ty::Timestamp, Ty::Timestamp),
                ("duration", Ty::Duration, Ty::Duration),
                ("int64_uint64", Ty::Int, Ty::Uint),
                ("int64_double", Ty::Int, Ty::Double),
                ("uint64_int64", Ty::Uint, Ty::Int),
                ("uint64_double", Ty::Uint, Ty::Double),
                ("double_int64", Ty::Double, Ty::Int),
                ("double_uint64", Ty::Double, Ty::Uint),
            ] {
                let id: &'static str = Box::leak(format!("{name}_{suffix}").into_boxed_str());
                m.entry(op).or_default().push(Overload {
                    id,
                    member: false,
                    params: vec![a, b],
                    result: Ty::Bool,
                });
            }
        }
        m
    })
}

fn split_top(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

/// Identifiers that name types (`type(x) == string`).
pub(crate) fn type_ident(name: &str) -> Option<Ty> {
    Some(Ty::Type(Box::new(match name {
        "bool" => Ty::Bool,
        "int" => Ty::Int,
        "uint" => Ty::Uint,
        "double" => Ty::Double,
        "string" => Ty::String,
        "bytes" => Ty::Bytes,
        "null_type" => Ty::Null,
        "list" => Ty::List(Box::new(Ty::Dyn)),
        "map" => Ty::Map(Box::new(Ty::Dyn), Box::new(Ty::Dyn)),
        "type" => Ty::Type(Box::new(Ty::Dyn)),
        "google.protobuf.Duration" => Ty::Duration,
        "google.protobuf.Timestamp" => Ty::Timestamp,
        _ => return None,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The table's notation nests: a comma inside a parameter's parentheses belongs to it.
    #[test]
    fn the_type_notation_nests() {
        assert_eq!(
            ty("map(map(string,int),list(list(A)))").format(),
            "map(map(string, int), list(list(A)))"
        );
        assert_eq!(
            ty("map(string,list(string))").format(),
            "map(string, list(string))"
        );
        // A type parameter is one upper-case letter; `null` is the null type.
        assert_eq!(ty("list(A)").format(), "list(A)");
        assert_eq!(ty("AB").format(), "dyn");
        assert_eq!(ty("a").format(), "dyn");
        assert_eq!(ty("null").format(), "null");
        assert_eq!(
            type_ident("uint").map(|t| t.format()).as_deref(),
            Some("type(uint)")
        );
    }
}
