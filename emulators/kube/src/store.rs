//! The object store: one global resourceVersion counter, per-resource watch history, and the
//! write rules of kube-apiserver (optimistic concurrency, generation, status subresource,
//! finalizers, namespaces, CRDs).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::admission;
use crate::resources::{self, ResourceDef};
use crate::status::ApiError;

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change, as watch streams see it (stored form).
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub storage: String,
    pub namespace: String,
    pub kind: ChangeKind,
    /// Shared with the store (and every watcher): a write copies no object to publish it.
    pub object: Arc<Value>,
    /// The object before a modification, so selector watches can turn a change that moves an
    /// object out of (into) the selection into DELETED (ADDED) like the real server.
    pub old: Option<Arc<Value>>,
    /// When it was committed: history expires by age from here, and a delivery delay counts
    /// from here.
    pub at: Instant,
    /// Watch-event lines already rendered for this change, by (served apiVersion, event
    /// type): every watcher of the full object sends the same bytes, serialised once.
    pub lines: Mutex<Vec<(String, &'static str, Bytes)>>,
}

impl Change {
    /// The rendered line for (`api_version`, `type_`), rendering it with `render` only the
    /// first time.
    pub fn line(
        &self,
        api_version: &str,
        type_: &'static str,
        render: impl FnOnce() -> Bytes,
    ) -> Bytes {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, _, b)) = lines
            .iter()
            .find(|(v, t, _)| v == api_version && *t == type_)
        {
            return b.clone();
        }
        let b = render();
        lines.push((api_version.to_string(), type_, b.clone()));
        b
    }
}

#[derive(Debug, Default)]
struct History {
    /// The resourceVersion of the newest forgotten change: watching from an older one is 410.
    floor: u64,
    changes: VecDeque<Arc<Change>>,
}

/// How much watch history is retained: changes beyond `size` per resource, or older than
/// `max_age`, are forgotten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retention {
    pub size: usize,
    pub max_age: Option<Duration>,
}

impl History {
    fn expire(&mut self, retention: Retention, now: Instant) {
        while let Some(front) = self.changes.front() {
            let too_many = self.changes.len() > retention.size;
            let too_old = retention
                .max_age
                .is_some_and(|age| now.saturating_duration_since(front.at) >= age);
            if !(too_many || too_old) {
                break;
            }
            self.floor = front.rv;
            self.changes.pop_front();
        }
    }
}

/// The backlog a new watch sends first, and the live change feed.
/// (and the resourceVersion the backlog brings the client up to).
pub(crate) type WatchStart = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>, u64);

/// Options common to writes.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    /// Server-side apply (recorded as an `Apply` managed-fields entry).
    pub apply: bool,
    /// What unknown fields of custom resources cause (`fieldValidation`).
    pub field_validation: FieldValidation,
    /// Warnings for the response (`Warning` headers), e.g. unknown fields under `Warn`.
    pub warnings: Arc<std::sync::Mutex<Vec<String>>>,
    /// The fields an apply configuration sets (FieldsV1 form), recorded for its manager.
    pub applied_fields: Option<Value>,
}

/// The `fieldValidation` of a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Ignore,
    /// The server's default: unknown fields are dropped with a warning.
    #[default]
    Warn,
    /// Unknown fields are an error (kubectl's default).
    Strict,
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WatchFrom {
    /// Current objects as ADDED first.
    Current,
    /// Every change after this resourceVersion.
    After(u64),
}

/// How a PATCH body is interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// Preconditions of a DELETE.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

const PROTECTED_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];
const NAMESPACES: &str = "/namespaces";

pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn rv_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// The object's metadata map, created when missing. Callers pass objects (bodies are checked
/// first); anything else is replaced by an empty object rather than panicking.
fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn finalizers_empty(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty())
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// A lowercase RFC 1123 subdomain (or label when `label`).
fn name_error(name: &str, label: bool) -> Option<String> {
    let max = if label { 63 } else { 253 };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    let ok = name.len() <= max
        && if label {
            part_ok(name)
        } else {
            name.split('.').all(part_ok)
        };
    if ok {
        return None;
    }
    if name.len() > max {
        return Some(format!(
            "Invalid value: \"{name}\": must be no more than {max} characters"
        ));
    }
    Some(if label {
        format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    } else {
        format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    })
}

/// apimachinery's `path.IsValidPathSegmentName`.
fn path_segment_error(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("Invalid value: \"{name}\": may not be '{name}'"));
    }
    ["/", "%"]
        .iter()
        .find(|bad| name.contains(*bad))
        .map(|bad| format!("Invalid value: \"{name}\": may not contain '{bad}'"))
}

fn random_suffix() -> String {
    // The alphabet of apimachinery's rand.String: no vowels, no confusable characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Secrets: `data` must be base64; `stringData` is write-only and lands base64-encoded in
/// `data`.
fn fold_string_data(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    use base64::Engine;
    if def.group.is_empty() && def.plural == "secrets" {
        if let Some(data) = obj.get("data").and_then(Value::as_object) {
            for v in data.values() {
                let ok = v
                    .as_str()
                    .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
                if !ok {
                    return Err(ApiError::bad_request(
                        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in .data",
                    ));
                }
            }
        }
        if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
            if !obj.get("data").is_some_and(Value::is_object) {
                obj["data"] = json!({});
            }
            for (k, v) in sd {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                obj["data"][k] =
                    Value::String(base64::engine::general_purpose::STANDARD.encode(text));
            }
        }
        if obj.get("type").is_none_or(Value::is_null) {
            obj["type"] = Value::String("Opaque".into());
        }
    }
    Ok(())
}

/// Removes strategic-merge-patch directives (`$patch`, `$setElementOrder/...`, `$retainKeys`).
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// Whether `generation` must move: for kinds with a status subresource only the spec (all
/// but metadata and status) counts; otherwise everything but metadata.
fn spec_changed(def: &ResourceDef, old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("apiVersion");
            m.remove("kind");
            if def.has_status {
                m.remove("status");
            }
        }
        v
    };
    strip(old) != strip(new)
}

fn record_manager(
    def: &ResourceDef,
    obj: &mut Value,
    manager: Option<&str>,
    operation: &str,
    subresource: Option<&str>,
    fields_v1: Option<&Value>,
) {
    let Some(manager) = manager else {
        return;
    };
    let meta = meta_mut(obj);
    let mut fields: Vec<Value> = meta
        .get("managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    fields.retain(|f| {
        !(f.get("manager").and_then(Value::as_str) == Some(manager)
            && f.get("operation").and_then(Value::as_str) == Some(operation)
            && f.get("subresource").and_then(Value::as_str) == subresource)
    });
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": def.api_version(),
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1.cloned().unwrap_or_else(|| json!({})),
    });
    if let Some(sub) = subresource {
        entry["subresource"] = Value::String(sub.into());
    }
    fields.push(entry);
    meta.insert("managedFields".into(), Value::Array(fields));
}

/// The fields a value sets, in FieldsV1 form (`{"f:spec": {"f:partitions": {}}}`); lists are
/// owned as a whole.
fn fields_v1(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, child)| (format!("f:{k}"), fields_v1(child)))
                .collect(),
        ),
        _ => json!({}),
    }
}

/// The fields an apply configuration manages: the main resource's fields (status excluded for
/// kinds with a status subresource) or only the status on `/status`; of the metadata only
/// labels, annotations and finalizers.
fn applied_fields(def: &ResourceDef, doc: &Value, subresource: Option<&str>) -> Value {
    let mut fields = fields_v1(doc);
    if let Some(m) = fields.as_object_mut() {
        m.remove("f:apiVersion");
        m.remove("f:kind");
        if subresource == Some("status") {
            m.retain(|k, _| k == "f:status");
        } else if def.has_status {
            m.remove("f:status");
        }
        if let Some(Value::Object(meta)) = m.get_mut("f:metadata") {
            meta.retain(|k, _| matches!(k.as_str(), "f:labels" | "f:annotations" | "f:finalizers"));
            if meta.is_empty() {
                m.remove("f:metadata");
            }
        }
    }
    fields
}

/// What `manager` applied last time (on the same subresource).
fn previous_apply(existing: &Value, manager: &str, subresource: Option<&str>) -> Option<Value> {
    existing
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|f| {
            f.get("manager").and_then(Value::as_str) == Some(manager)
                && f.get("operation").and_then(Value::as_str) == Some("Apply")
                && f.get("subresource").and_then(Value::as_str) == subresource
        })
        .and_then(|f| f.get("fieldsV1").cloned())
}

/// Removes from `obj` the fields the manager applied before and no longer applies.
fn remove_dropped(obj: &mut Value, before: &Value, now: &Value) {
    let (Some(before), Some(target)) = (before.as_object(), obj.as_object_mut()) else {
        return;
    };
    for (key, sub_before) in before {
        let Some(field) = key.strip_prefix("f:") else {
            continue;
        };
        match now.get(key) {
            None => {
                target.remove(field);
            }
            Some(sub_now) => {
                if let Some(child) = target.get_mut(field) {
                    remove_dropped(child, sub_before, sub_now);
                }
            }
        }
    }
}

/// Copies the fields clients cannot set from the stored object.
fn keep_system_metadata(new: &mut Value, old: &Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
    let meta = meta_mut(new);
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
        "resourceVersion",
        "managedFields",
        "selfLink",
    ] {
        match old_meta.get(key) {
            Some(v) => {
                meta.insert(key.into(), v.clone());
            }
            None => {
                meta.remove(key);
            }
        }
    }
}

/// The in-memory API server state.
pub(crate) struct Store {
    rv: u64,
    retention: Retention,
    compacted_floor: u64,
    defs: Vec<Arc<ResourceDef>>,
    /// Stored objects, shared with the watch history and watchers (never changed in place:
    /// a write stores a new `Arc`).
    objects: HashMap<String, BTreeMap<(String, String), Arc<Value>>>,
    history: HashMap<String, History>,
    tx: broadcast::Sender<Arc<Change>>,
}

impl Store {
    pub fn new(retention: Retention, tx: broadcast::Sender<Arc<Change>>) -> Self {
        let mut store = Self {
            rv: 0,
            retention: Retention {
                size: retention.size.max(1),
                ..retention
            },
            compacted_floor: 0,
            defs: resources::builtins().into_iter().map(Arc::new).collect(),
            objects: HashMap::new(),
            history: HashMap::new(),
            tx,
        };
        let ns_def = store
            .find("", "v1", "namespaces")
            .expect("namespaces are built in");
        for ns in PROTECTED_NAMESPACES {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            store
                .create(&ns_def, "", body, &WriteOptions::default())
                .expect("the built-in namespaces are valid");
        }
        store
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn defs(&self) -> &[Arc<ResourceDef>] {
        &self.defs
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
            .cloned()
    }

    fn stored(&self, def: &ResourceDef, ns: &str, name: &str) -> Option<&Value> {
        self.stored_arc(def, ns, name).map(|o| o.as_ref())
    }

    fn stored_arc(&self, def: &ResourceDef, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects
            .get(&def.storage)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.stored(def, ns, name)
            .map(|o| def.to_served(o))
            .ok_or_else(|| ApiError::not_found(def, name))
    }

    /// Served objects of one namespace (or all when `None`), in name order.
    pub fn list(&self, def: &ResourceDef, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .get(&def.storage)
            .map(|m| {
                m.iter()
                    .filter(|((ons, _), _)| ns.is_none_or(|n| n == ons))
                    .map(|(_, o)| def.to_served(o))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn commit(
        &mut self,
        storage: &str,
        ns: &str,
        name: &str,
        kind: ChangeKind,
        mut obj: Value,
        old: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let obj = Arc::new(obj);
        let map = self.objects.entry(storage.to_string()).or_default();
        let key = (ns.to_string(), name.to_string());
        if kind == ChangeKind::Deleted {
            map.remove(&key);
        } else {
            map.insert(key, obj.clone());
        }
        let change = Arc::new(Change {
            rv: self.rv,
            storage: storage.to_string(),
            namespace: ns.to_string(),
            kind,
            object: obj.clone(),
            lines: Mutex::new(Vec::new()),
            old,
            at: Instant::now(),
        });
        let history = self.history.entry(storage.to_string()).or_default();
        history.changes.push_back(change.clone());
        history.expire(self.retention, change.at);
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(change);
        obj
    }

    fn namespace_state(&self, ns: &str) -> Result<(), ApiError> {
        match self
            .objects
            .get(NAMESPACES)
            .and_then(|m| m.get(&(String::new(), ns.to_string())))
        {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(n) if is_deleting(n) => Err(ApiError::forbidden(
                "namespaces",
                ns,
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            )
            .with_message(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ))),
            Some(_) => Ok(()),
        }
    }

    fn check_kind(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && kind != def.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({kind}) does not match the kind of the resource ({})",
                def.kind
            )));
        }
        if let Some(api_version) = obj.get("apiVersion").and_then(Value::as_str)
            && api_version != def.api_version()
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                def.api_version()
            )));
        }
        Ok(())
    }

    pub fn create(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        Self::check_kind(def, &obj)?;
        obj["apiVersion"] = Value::String(def.api_version());
        obj["kind"] = Value::String(def.kind.clone());
        let meta = meta_mut(&mut obj);
        if def.namespaced {
            if let Some(body_ns) = meta.get("namespace").and_then(Value::as_str)
                && !body_ns.is_empty()
                && body_ns != ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        } else {
            meta.remove("namespace");
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty()
            && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
            && !prefix.is_empty()
        {
            name = format!("{prefix}{}", random_suffix());
            meta.insert("name".into(), Value::String(name.clone()));
        }
        if name.is_empty() {
            return Err(ApiError::invalid(
                def,
                "",
                &[(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                    "FieldValueRequired",
                )],
            ));
        }
        let label_name = def.plural == "namespaces" && def.group.is_empty();
        // RBAC objects only need a valid path segment (`system:discovery`).
        let msg = if def.group == resources::RBAC_GROUP {
            path_segment_error(&name)
        } else {
            name_error(&name, label_name)
        };
        if let Some(msg) = msg {
            return Err(ApiError::invalid(
                def,
                &name,
                &[("metadata.name".into(), msg, "FieldValueInvalid")],
            ));
        }
        if def.namespaced {
            self.namespace_state(ns)?;
        }
        if self.stored(def, ns, &name).is_some() {
            return Err(ApiError::already_exists(def, &name));
        }
        if rv_of(&obj).is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let uid = uuid::Uuid::new_v4().to_string();
        let meta = meta_mut(&mut obj);
        for key in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(key);
        }
        meta.insert("uid".into(), Value::String(uid));
        meta.insert("creationTimestamp".into(), Value::String(now()));
        if def.has_generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if def.custom
            && def.has_status
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        fold_string_data(def, &mut obj)?;
        let operation = if opts.apply { "Apply" } else { "Update" };
        record_manager(
            def,
            &mut obj,
            opts.field_manager.as_deref(),
            operation,
            None,
            opts.applied_fields.as_ref().filter(|_| opts.apply),
        );
        let new_defs = self.special_on_write(def, &mut obj, None)?;
        if def.custom {
            admission::admit(def, &mut obj, None, opts)?;
        }
        if opts.dry_run {
            return Ok(obj);
        }
        let stored = def.to_storage(obj);
        let stored = self.commit(&def.storage, ns, &name, ChangeKind::Added, stored, None);
        if let Some(defs) = new_defs {
            self.register_crd(&name, defs);
        }
        Ok(def.to_served(&stored))
    }

    /// Namespaces get a phase; CRDs are validated and get their status. Returns the resources
    /// a CRD will serve.
    fn special_on_write(
        &self,
        def: &ResourceDef,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<Option<Vec<ResourceDef>>, ApiError> {
        if def.group.is_empty() && def.plural == "namespaces" {
            let phase = if is_deleting(obj) {
                "Terminating"
            } else {
                "Active"
            };
            obj["status"] = json!({"phase": phase});
            return Ok(None);
        }
        if def.group == "apiextensions.k8s.io" {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let defs = resources::defs_from_crd(obj, old)
                .map_err(|causes| ApiError::invalid(def, &name, &causes))?;
            for new in &defs {
                if let Some(existing) = self.find(&new.group, &new.version, &new.plural)
                    && existing.crd_name.as_deref() != Some(name.as_str())
                {
                    return Err(ApiError::invalid(
                        def,
                        &name,
                        &[(
                            "spec.names.plural".into(),
                            format!("Invalid value: \"{}\": already served", new.plural),
                            "FieldValueInvalid",
                        )],
                    ));
                }
            }
            obj["status"] = resources::crd_status(obj, &now());
            return Ok(Some(defs));
        }
        Ok(None)
    }

    fn register_crd(&mut self, crd_name: &str, defs: Vec<ResourceDef>) {
        self.defs
            .retain(|d| d.crd_name.as_deref() != Some(crd_name));
        self.defs.extend(defs.into_iter().map(Arc::new));
    }

    /// PUT (and the second half of PATCH): `candidate` is the full served object.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        candidate: Value,
        opts: &WriteOptions,
        from_patch: bool,
    ) -> Result<Value, ApiError> {
        Self::check_kind(def, &candidate)?;
        let existing_stored = self
            .stored_arc(def, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))?;
        let existing = def.served(&existing_stored);
        let existing: &Value = &existing;
        if let Some(body_name) = candidate.pointer("/metadata/name").and_then(Value::as_str)
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if def.namespaced
            && let Some(body_ns) = candidate
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        match rv_of(&candidate) {
            Some(rv) if Some(rv) != rv_of(existing) => return Err(ApiError::conflict(def, name)),
            None if def.custom && !from_patch => {
                return Err(ApiError::invalid(
                    def,
                    name,
                    &[(
                        "metadata.resourceVersion".into(),
                        "Invalid value: 0x0: must be specified for an update".into(),
                        "FieldValueInvalid",
                    )],
                ));
            }
            _ => {}
        }
        let mut new = match subresource {
            Some("status") => {
                let mut n = existing.clone();
                match candidate.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(m) = n.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                n
            }
            Some(_) => return Err(ApiError::not_found_path()),
            None => {
                let mut n = candidate;
                keep_system_metadata(&mut n, existing);
                if def.has_status {
                    match existing.get("status") {
                        Some(s) => n["status"] = s.clone(),
                        None => {
                            if let Some(m) = n.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                n
            }
        };
        new["apiVersion"] = Value::String(def.api_version());
        new["kind"] = Value::String(def.kind.clone());
        fold_string_data(def, &mut new)?;
        if is_deleting(existing) {
            let names = |o: &Value| -> Vec<String> {
                o.pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let before = names(existing);
            let added: Vec<String> = names(&new)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                let quoted = added
                    .iter()
                    .map(|f| format!("{f:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ApiError::invalid(
                    def,
                    name,
                    &[(
                        "metadata.finalizers".into(),
                        format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{quoted}}}"
                        ),
                        "FieldValueForbidden",
                    )],
                ));
            }
        }
        let new_defs = self.special_on_write(def, &mut new, Some(existing))?;
        if def.custom {
            admission::admit(def, &mut new, Some(existing), opts)?;
        }
        if subresource.is_none() && def.has_generation && spec_changed(def, existing, &new) {
            let generation = existing
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        let operation = if opts.apply { "Apply" } else { "Update" };
        // A write that changes nothing keeps the resourceVersion, unless a new apply manager
        // has to be recorded.
        let new_apply_manager = opts.apply
            && opts.field_manager.as_deref().is_some_and(|m| {
                !existing
                    .pointer("/metadata/managedFields")
                    .and_then(Value::as_array)
                    .is_some_and(|fields| {
                        fields.iter().any(|f| {
                            f.get("manager").and_then(Value::as_str) == Some(m)
                                && f.get("operation").and_then(Value::as_str) == Some("Apply")
                        })
                    })
            });
        if new == *existing && !new_apply_manager {
            return Ok(existing.clone());
        }
        record_manager(
            def,
            &mut new,
            opts.field_manager.as_deref(),
            operation,
            subresource,
            opts.applied_fields.as_ref().filter(|_| opts.apply),
        );
        if opts.dry_run {
            return Ok(new);
        }
        let stored_old = Some(existing_stored.clone());
        let stored_new = def.to_storage(new);
        if is_deleting(&stored_new) && finalizers_empty(&stored_new) {
            let gone = self.remove(&def.storage, ns, name, stored_new, stored_old);
            return Ok(def.to_served(&gone));
        }
        let stored = self.commit(
            &def.storage,
            ns,
            name,
            ChangeKind::Modified,
            stored_new,
            stored_old,
        );
        if let Some(defs) = new_defs {
            self.register_crd(name, defs);
        }
        Ok(def.to_served(&stored))
    }

    /// PATCH. Returns the object and whether it was created (apply on a missing object).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        kind: PatchKind,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        if kind == PatchKind::Strategic && def.custom {
            // Like kube-apiserver: custom resources have no strategic-merge metadata.
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        if kind == PatchKind::Apply && opts.field_manager.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        let parse_doc = |body: &[u8]| -> Result<Value, ApiError> {
            let v: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(_) if kind == PatchKind::Apply => serde_saphyr::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
                Err(e) => {
                    return Err(ApiError::bad_request(format!("error decoding patch: {e}")));
                }
            };
            if !v.is_object() {
                return Err(ApiError::bad_request("the patch must be a JSON object"));
            }
            Ok(v)
        };
        let existing_stored = self.stored_arc(def, ns, name).cloned();
        let existing = match &existing_stored {
            Some(e) => def.served(e),
            None if kind == PatchKind::Apply && subresource.is_none() => {
                let mut obj = parse_doc(body)?;
                let obj_fields = obj.clone();
                Self::check_kind(def, &obj)?;
                let meta = meta_mut(&mut obj);
                if let Some(n) = meta.get("name").and_then(Value::as_str)
                    && n != name
                {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )));
                }
                meta.insert("name".into(), Value::String(name.to_string()));
                let created = self.create(
                    def,
                    ns,
                    obj,
                    &WriteOptions {
                        apply: true,
                        applied_fields: Some(applied_fields(def, &obj_fields, None)),
                        ..opts.clone()
                    },
                )?;
                return Ok((created, true));
            }
            None => return Err(ApiError::not_found(def, name)),
        };
        let mut patched = existing.clone().into_owned();
        let mut applied = None;
        match kind {
            PatchKind::Json => {
                let ops: json_patch::Patch = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                json_patch::patch(&mut patched, &ops).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
            }
            PatchKind::Merge | PatchKind::Strategic => {
                let doc = parse_doc(body)?;
                json_patch::merge(&mut patched, &doc);
                if kind == PatchKind::Strategic {
                    strip_directives(&mut patched);
                }
            }
            PatchKind::Apply => {
                let doc = parse_doc(body)?;
                json_patch::merge(&mut patched, &doc);
                let fields = applied_fields(def, &doc, subresource);
                let manager = opts.field_manager.as_deref().unwrap_or("");
                if let Some(before) = previous_apply(&existing, manager, subresource) {
                    remove_dropped(&mut patched, &before, &fields);
                }
                applied = Some(fields);
            }
        }
        if rv_of(&patched) != rv_of(&existing) {
            return Err(ApiError::conflict(def, name));
        }
        drop(existing);
        let opts = WriteOptions {
            apply: kind == PatchKind::Apply,
            applied_fields: applied,
            ..opts.clone()
        };
        self.update(def, ns, name, subresource, patched, &opts, true)
            .map(|v| (v, false))
    }

    /// Removes an object for good (no finalizers left), with the follow-ups: CRD objects go with
    /// their CRD, and a terminating namespace goes when its last object does.
    fn remove(
        &mut self,
        storage: &str,
        ns: &str,
        name: &str,
        obj: Value,
        old: Option<Arc<Value>>,
    ) -> Arc<Value> {
        let gone = self.commit(storage, ns, name, ChangeKind::Deleted, obj, old);
        if storage == "apiextensions.k8s.io/customresourcedefinitions" {
            let owned: Vec<String> = self
                .defs
                .iter()
                .filter(|d| d.crd_name.as_deref() == Some(name))
                .map(|d| d.storage.clone())
                .collect();
            self.defs.retain(|d| d.crd_name.as_deref() != Some(name));
            for storage in owned {
                let keys: Vec<(String, String)> = self
                    .objects
                    .get(&storage)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                for (ons, oname) in keys {
                    if let Some(o) = self
                        .objects
                        .get(&storage)
                        .and_then(|m| m.get(&(ons.clone(), oname.clone())))
                        .cloned()
                    {
                        self.commit(
                            &storage,
                            &ons,
                            &oname,
                            ChangeKind::Deleted,
                            Value::clone(&o),
                            None,
                        );
                    }
                }
            }
        }
        if !ns.is_empty() {
            self.finish_namespace(ns);
        }
        gone
    }

    fn namespace_is_empty(&self, ns: &str) -> bool {
        self.objects
            .iter()
            .filter(|(storage, _)| storage.as_str() != NAMESPACES)
            .all(|(_, m)| !m.keys().any(|(ons, _)| ons == ns))
    }

    fn finish_namespace(&mut self, ns: &str) {
        let key = (String::new(), ns.to_string());
        if let Some(n) = self
            .objects
            .get(NAMESPACES)
            .and_then(|m| m.get(&key))
            .cloned()
            && is_deleting(&n)
            && self.namespace_is_empty(ns)
        {
            self.commit(
                NAMESPACES,
                "",
                ns,
                ChangeKind::Deleted,
                Value::clone(&n),
                None,
            );
        }
    }

    /// Deletes one stored object: with finalizers it only gets a deletionTimestamp.
    fn delete_stored(
        &mut self,
        storage: &str,
        has_generation: bool,
        ns: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        let existing = self
            .objects
            .get(storage)?
            .get(&(ns.to_string(), name.to_string()))?
            .clone();
        let is_namespace = storage == NAMESPACES;
        if is_namespace && !is_deleting(&existing) {
            let mut marked = Value::clone(&existing);
            meta_mut(&mut marked).insert("deletionTimestamp".into(), Value::String(now()));
            meta_mut(&mut marked).insert("deletionGracePeriodSeconds".into(), json!(0));
            marked["status"] = json!({"phase": "Terminating"});
            let marked = self.commit(
                storage,
                ns,
                name,
                ChangeKind::Modified,
                marked,
                Some(existing),
            );
            let contents: Vec<(String, Option<Arc<ResourceDef>>, String)> = self
                .objects
                .iter()
                .filter(|(s, _)| s.as_str() != NAMESPACES)
                .flat_map(|(s, m)| {
                    m.keys()
                        .filter(|(ons, _)| ons == name)
                        .map(|(_, oname)| (s.clone(), oname.clone()))
                        .collect::<Vec<_>>()
                })
                .map(|(s, oname)| {
                    let def = self.defs.iter().find(|d| d.storage == s).cloned();
                    (s, def, oname)
                })
                .collect();
            for (s, def, oname) in contents {
                let generation = def.is_some_and(|d| d.has_generation);
                self.delete_stored(&s, generation, name, &oname);
            }
            if self.namespace_is_empty(name) {
                self.finish_namespace(name);
                return Some(marked);
            }
            return Some(marked);
        }
        if is_namespace || !finalizers_empty(&existing) {
            if is_deleting(&existing) {
                return Some(existing);
            }
            let mut marked = Value::clone(&existing);
            let meta = meta_mut(&mut marked);
            meta.insert("deletionTimestamp".into(), Value::String(now()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if has_generation {
                let generation = meta.get("generation").and_then(Value::as_i64).unwrap_or(0);
                meta.insert("generation".into(), json!(generation + 1));
            }
            return Some(self.commit(
                storage,
                ns,
                name,
                ChangeKind::Modified,
                marked,
                Some(existing),
            ));
        }
        Some(self.remove(storage, ns, name, Value::clone(&existing), Some(existing)))
    }

    pub fn delete(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let existing = self.get(def, ns, name)?;
        if let Some(uid) = &opts.uid {
            let have = existing
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("");
            if uid != have {
                return Err(ApiError::precondition_conflict(
                    def,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            let have = rv_of(&existing).unwrap_or("");
            if rv != have {
                return Err(ApiError::precondition_conflict(
                    def,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"
                    ),
                ));
            }
        }
        if def.group.is_empty()
            && def.plural == "namespaces"
            && PROTECTED_NAMESPACES.contains(&name)
        {
            return Err(ApiError::forbidden(
                "namespaces",
                name,
                "this namespace may not be deleted",
            ));
        }
        if opts.dry_run {
            return Ok(existing);
        }
        let result = self
            .delete_stored(&def.storage, def.has_generation, ns, name)
            .ok_or_else(|| ApiError::not_found(def, name))?;
        Ok(def.to_served(&result))
    }

    /// How much history is retained.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Changes the retention; history beyond it is forgotten now.
    pub fn set_retention(&mut self, retention: Retention) {
        self.retention = Retention {
            size: retention.size.max(1),
            ..retention
        };
        let now = Instant::now();
        for h in self.history.values_mut() {
            h.expire(self.retention, now);
        }
    }

    /// Starts a watch: the backlog to send first and the live feed.
    ///
    /// Like the watch cache of kube-apiserver (`watch_cache_history.go` GetIntervalLocked),
    /// a resourceVersion older than the retained history answers 410 `Expired` with
    /// `too old resource version: RV (OLDEST)`, OLDEST being the oldest version still
    /// watchable from.
    pub fn watch(&mut self, def: &ResourceDef, from: WatchFrom) -> Result<WatchStart, ApiError> {
        let retention = self.retention;
        if let Some(h) = self.history.get_mut(&def.storage) {
            h.expire(retention, Instant::now());
        }
        let backlog = match from {
            WatchFrom::Current => self
                .objects
                .get(&def.storage)
                .map(|m| {
                    m.iter()
                        .map(|((ns, _), o)| {
                            Arc::new(Change {
                                rv: rv_of(o).and_then(|r| r.parse().ok()).unwrap_or(0),
                                storage: def.storage.clone(),
                                namespace: ns.clone(),
                                kind: ChangeKind::Added,
                                object: o.clone(),
                                old: None,
                                at: Instant::now(),
                                lines: Mutex::new(Vec::new()),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            WatchFrom::After(rv) => {
                let floor = self
                    .history
                    .get(&def.storage)
                    .map(|h| h.floor)
                    .unwrap_or(0)
                    .max(self.compacted_floor);
                if rv < floor {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({floor})"
                    )));
                }
                self.history
                    .get(&def.storage)
                    .map(|h| h.changes.iter().filter(|c| c.rv > rv).cloned().collect())
                    .unwrap_or_default()
            }
        };
        Ok((backlog, self.tx.subscribe(), self.rv))
    }

    /// Forgets all history: any resourceVersion handed out before now is too old to watch from.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.compacted_floor = self.rv;
        for h in self.history.values_mut() {
            h.changes.clear();
            h.floor = self.rv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        let (tx, _) = broadcast::channel(16);
        Store::new(
            Retention {
                size: 100,
                max_age: None,
            },
            tx,
        )
    }

    #[test]
    fn names_follow_rfc_1123() {
        assert!(name_error("orders", false).is_none());
        assert!(name_error("a.b-c", false).is_none());
        assert!(name_error("Bad_Name", false).is_some());
        assert!(name_error("a.b", true).is_some());
    }

    #[test]
    fn builtin_namespaces_exist_and_are_protected() {
        let mut s = store();
        let ns = s.find("", "v1", "namespaces").expect("served");
        assert!(s.get(&ns, "", "default").is_ok());
        let err = s
            .delete(&ns, "", "default", &DeleteOptions::default())
            .expect_err("protected");
        assert_eq!(err.code, 403);
    }
}
