//! HTTP: routing, authentication, verbs, watch streams, the `/_emulator/` control API.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::debug;

use crate::discovery;
use crate::resources::ResourceDef;
use crate::selectors::{FieldSelector, LabelSelector, Selectors};
use crate::status::ApiError;
use crate::store::{
    Change, ChangeKind, DeleteOptions, FieldValidation, PatchKind, Store, WatchFrom, WriteOptions,
};
use crate::table::{self, IncludeObject};
use crate::{
    APPLIED_WRITES_CAPACITY, AppliedWrite, KubeEmulatorConfig, KubeFaults, KubeStats,
    WatchCacheSettings,
};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

const MAX_BODY: usize = 16 * 1024 * 1024;
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// State shared by every connection and the in-process control handle.
pub(crate) struct Shared {
    pub config: KubeEmulatorConfig,
    pub addr: std::net::SocketAddr,
    pub store: Mutex<Store>,
    pub stats: Mutex<KubeStats>,
    pub faults: Mutex<KubeFaults>,
    /// How long after its write a watch event reaches watchers.
    pub watch_delay: Mutex<Duration>,
    /// Bumped to end every open watch.
    pub drop_watches: watch::Sender<u64>,
    /// Signs and checks ServiceAccount tokens.
    pub issuer: crate::serviceaccount::Issuer,
}

/// Locks a mutex, recovering the data if a thread panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn drop_all_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }

    pub fn watch_cache(&self) -> WatchCacheSettings {
        let retention = lock(&self.store).retention();
        WatchCacheSettings {
            delivery_delay_ms: Some(lock(&self.watch_delay).as_millis() as u64),
            history_size: Some(retention.size),
            history_max_age_ms: Some(retention.max_age.map_or(0, |a| a.as_millis() as u64)),
        }
    }

    /// Applies the knobs a `POST /_emulator/watch-cache` sets.
    fn set_watch_cache(&self, s: &WatchCacheSettings) {
        if let Some(ms) = s.delivery_delay_ms {
            *lock(&self.watch_delay) = Duration::from_millis(ms);
        }
        if s.history_size.is_some() || s.history_max_age_ms.is_some() {
            let mut store = lock(&self.store);
            let mut retention = store.retention();
            if let Some(size) = s.history_size {
                retention.size = size;
            }
            if let Some(ms) = s.history_max_age_ms {
                retention.max_age = (ms > 0).then(|| Duration::from_millis(ms));
            }
            store.set_retention(retention);
        }
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(full(serde_json::to_vec(body).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = json_response(err.code, &err.body());
    if let Some(secs) = err.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// One request, logged at debug level.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let method = req.method().clone();
    let target = req.uri().to_string();
    let resp = route(&shared, req).await;
    debug!(
        method = %method,
        target = %target,
        status = resp.status().as_u16(),
        elapsed_ms = start.elapsed().as_millis() as u64,
        "request"
    );
    Ok(resp)
}

fn query_map(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(ApiError::new(
            413,
            "RequestEntityTooLarge",
            "the request body is too large or could not be read",
        )),
    }
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/_emulator/") {
        return control(shared, req, rest.trim_end_matches('/')).await;
    }
    // Authentication, impersonation and authorization (rbac.rs) come before routing, as in
    // kube-apiserver: a denied request never learns whether its target exists.
    let user = match crate::authn::authenticate(shared, req.headers()) {
        Ok(user) => user,
        Err(e) => return error_response(&e),
    };
    let attrs = crate::rbac::request_attributes(req.method(), &path, &query_map(&req));
    if let Err(e) = crate::rbac::authorize(shared, &user, &attrs) {
        return error_response(&e);
    }
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let defs = lock(&shared.store).defs().to_vec();
    if req.method() == Method::GET {
        let doc = match s.as_slice() {
            ["version"] => Some(discovery::version()),
            ["api"] => Some(discovery::api_versions(shared.addr)),
            ["api", "v1"] => discovery::resource_list(&defs, "", "v1"),
            ["apis"] => Some(discovery::api_group_list(&defs)),
            ["apis", group] => discovery::api_group(&defs, group),
            ["apis", group, version] => discovery::resource_list(&defs, group, version),
            ["openapi", "v3"] => Some(discovery::openapi_v3_index(&defs)),
            ["openapi", "v3", rest @ ..] => {
                discovery::openapi_v3_group_version(&defs, &rest.join("/"))
            }
            ["healthz" | "livez" | "readyz"] => {
                return Response::new(full("ok"));
            }
            [".well-known", "openid-configuration"] => {
                Some(crate::serviceaccount::openid_configuration(shared))
            }
            ["openid", "v1", "jwks"] => {
                return match crate::serviceaccount::jwks(shared) {
                    Ok(doc) => {
                        let mut resp = json_response(200, &doc);
                        resp.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/jwk-set+json"),
                        );
                        resp
                    }
                    Err(e) => error_response(&e),
                };
            }
            _ => None,
        };
        if let Some(doc) = doc {
            return json_response(200, &doc);
        }
        if matches!(
            s.as_slice(),
            ["version"]
                | ["api"]
                | ["api", "v1"]
                | ["apis"]
                | ["apis", _]
                | ["apis", _, _]
                | ["openapi", ..]
        ) {
            return error_response(&ApiError::not_found_path());
        }
    }
    let (group, version, rest) = match s.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => ("", "v1", rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return error_response(&ApiError::not_found_path()),
    };
    let find = |plural: &str| {
        defs.iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
            .cloned()
    };
    let namespaced_target = match rest {
        ["namespaces", ns, plural, tail @ ..] if tail.len() <= 2 => find(plural)
            .filter(|d| d.namespaced)
            .map(|d| (d, Some(ns.to_string()), tail)),
        _ => None,
    };
    let (def, ns, tail) = match namespaced_target {
        Some(t) => t,
        None => match rest {
            [plural, tail @ ..] if tail.len() <= 2 => match find(plural) {
                Some(d) => (d, None, tail),
                None => return error_response(&ApiError::not_found_path()),
            },
            _ => return error_response(&ApiError::not_found_path()),
        },
    };
    let name = tail.first().map(|s| s.to_string());
    let sub = tail.get(1).map(|s| s.to_string());
    if let Some(sub) = &sub
        && !(sub == "status" && def.has_status)
    {
        if sub == "token" && def.group.is_empty() && def.plural == "serviceaccounts" {
            let target = (ns.unwrap_or_default(), name.unwrap_or_default());
            return create_only(shared, req, &user, &def, Some(target)).await;
        }
        return error_response(&ApiError::not_found_path());
    }
    if def.create_only {
        if name.is_some() {
            return error_response(&ApiError::not_found_path());
        }
        return create_only(shared, req, &user, &def, None).await;
    }
    if !def.namespaced && ns.is_some() {
        return error_response(&ApiError::not_found_path());
    }
    let req_ctx = ResourceRequest {
        def,
        namespace: ns,
        name,
        subresource: sub,
    };
    resource(shared, req, req_ctx).await
}

/// POST of a kind that is answered, not stored: the reviews, and a ServiceAccount's token
/// (`token` = its namespace and name).
async fn create_only(
    shared: &Shared,
    req: Request<Incoming>,
    user: &crate::authn::UserInfo,
    def: &ResourceDef,
    token: Option<(String, String)>,
) -> Response<Body> {
    if req.method() != Method::POST {
        return error_response(&ApiError::method_not_allowed());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let result = read_body(req)
        .await
        .and_then(|body| parse_object(&body, &content_type))
        .and_then(|body| match &token {
            Some((ns, name)) => crate::serviceaccount::token_request(shared, ns, name, &body),
            None => crate::rbac::review(shared, user, def, &body),
        });
    match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => error_response(&e),
    }
}

struct ResourceRequest {
    def: Arc<ResourceDef>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

impl ResourceRequest {
    /// The namespace key objects are stored under ("" for cluster-scoped kinds).
    fn ns_key(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    fn stats_key(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.def.plural),
            None => self.def.plural.clone(),
        }
    }
}

/// The representation the client asked for first in `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Render {
    Object,
    Table,
    /// `as=PartialObjectMetadata(List)`: metadata only (kube-rs `get_metadata`, metadata watchers).
    Metadata,
}

fn render_as(req: &Request<Incoming>) -> Render {
    let first = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split(',').next())
        .unwrap_or("");
    if !first.contains("g=meta.k8s.io") {
        Render::Object
    } else if first.contains("as=Table") {
        Render::Table
    } else if first.contains("as=PartialObjectMetadata") {
        Render::Metadata
    } else {
        Render::Object
    }
}

fn partial_metadata(obj: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// The selectors of a list, watch or deletecollection; a field the kind does not support is a
/// 400 with the server's words (`handlers/get.go` parseListOptions: `Transform` of the field
/// selector through the kind's field label conversion).
fn selectors(q: &HashMap<String, String>, def: &ResourceDef) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: match q.get("labelSelector") {
            Some(s) => LabelSelector::parse(s).map_err(ApiError::bad_request)?,
            None => LabelSelector::default(),
        },
        fields: match q.get("fieldSelector") {
            Some(s) => FieldSelector::parse(s)
                .and_then(|f| f.for_kind(def))
                .map_err(ApiError::bad_request)?,
            None => FieldSelector::default(),
        },
    })
}

/// A boolean query parameter as kube-apiserver decodes one
/// (`k8s.io/apimachinery/pkg/runtime/conversion.go` `Convert_Slice_string_To_bool`): absent
/// is false, `0` and `false` (any case) are false, and every other value, the empty one
/// included, is true.
pub(crate) fn query_bool(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"))
}

fn write_options(q: &HashMap<String, String>) -> WriteOptions {
    WriteOptions {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        field_manager: q.get("fieldManager").cloned(),
        apply: false,
        field_validation: match q.get("fieldValidation").map(String::as_str) {
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            _ => FieldValidation::Warn,
        },
        warnings: Default::default(),
        applied_fields: None,
    }
}

fn parse_object(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if content_type.contains("protobuf") {
        return crate::protobuf::decode(body).map_err(|e| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("the protobuf body could not be decoded: {e}"),
            )
        });
    }
    if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    let v: Value = if content_type.contains("yaml") {
        serde_saphyr::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    Ok(v)
}

/// The bearer token of a request, "" without one.
fn bearer_token(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

/// Whether the stall fault holds this client's request to this resource.
fn stalled(shared: &Shared, client: &str, key: &str, plural: &str) -> bool {
    let faults = lock(&shared.faults);
    faults.stall_token.as_deref() == Some(client)
        && (faults.stall_resources.is_empty()
            || faults
                .stall_resources
                .iter()
                .any(|r| r == key || r == plural))
}

/// Fault knobs for one request: extra latency, and an injected error on writes.
async fn apply_faults(
    shared: &Shared,
    key: &str,
    plural: &str,
    is_write: bool,
) -> Result<(), ApiError> {
    let faults = lock(&shared.faults).clone();
    let applies =
        faults.resources.is_empty() || faults.resources.iter().any(|r| r == key || r == plural);
    if !applies {
        return Ok(());
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if is_write && let Some(code) = faults.write_error_status {
        let p = if faults.write_error_probability <= 0.0 {
            1.0
        } else {
            faults.write_error_probability
        };
        if rand::rng().random_bool(p.min(1.0)) {
            lock(&shared.stats).injected_errors += 1;
            return Err(ApiError::injected(code));
        }
    }
    Ok(())
}

async fn resource(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    rr: ResourceRequest,
) -> Response<Body> {
    let q = query_map(&req);
    let method = req.method().clone();
    let watching = query_bool(&q, "watch");
    let verb = match (&method, rr.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watching => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => return error_response(&ApiError::method_not_allowed()),
    };
    let is_write = matches!(verb, "create" | "update" | "patch" | "delete");
    let client = bearer_token(&req);
    if stalled(shared, &client, &rr.stats_key(), &rr.def.plural) {
        // Held like a request lost in a partition: nothing is counted or applied.
        while stalled(shared, &client, &rr.stats_key(), &rr.def.plural) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return error_response(&ApiError::new(
            503,
            "ServiceUnavailable",
            "the request was lost to an injected network partition",
        ));
    }
    {
        let mut stats = lock(&shared.stats);
        *stats.requests.entry(verb.to_string()).or_default() += 1;
        if is_write {
            *stats.writes.entry(rr.stats_key()).or_default() += 1;
        }
    }
    if let Err(e) = apply_faults(shared, &rr.stats_key(), &rr.def.plural, is_write).await {
        return error_response(&e);
    }
    if rr.def.namespaced && rr.namespace.is_none() && !matches!(verb, "list" | "watch") {
        return error_response(&ApiError::not_found_path());
    }
    let render = render_as(&req);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let include = IncludeObject::parse(q.get("includeObject").map(String::as_str));
    let opts = write_options(&q);
    let result: Result<(u16, Value), ApiError> = match verb {
        "get" => {
            let name = rr.name.as_deref().unwrap_or("");
            lock(&shared.store)
                .get(&rr.def, rr.ns_key(), name)
                .map(|o| match render {
                    Render::Table => (
                        200,
                        table::table(
                            &rr.def,
                            std::slice::from_ref(&o),
                            include,
                            o.pointer("/metadata/resourceVersion")
                                .and_then(Value::as_str)
                                .map(String::from),
                            true,
                        ),
                    ),
                    Render::Metadata => (200, partial_metadata(&o)),
                    Render::Object => (200, o),
                })
        }
        "list" => selectors(&q, &rr.def).and_then(|sel| {
            let store = lock(&shared.store);
            let items: Vec<Value> = store
                .list(&rr.def, rr.namespace.as_deref())
                .into_iter()
                .filter(|o| sel.matches_served(&rr.def, o))
                .collect();
            let current = store.current_rv();
            drop(store);
            let (items, meta) = paginate(items, &q, current)?;
            Ok(match render {
                Render::Table => {
                    let mut t = table::table(&rr.def, &items, include, None, true);
                    t["metadata"] = meta;
                    (200, t)
                }
                Render::Metadata => (
                    200,
                    json!({
                        "apiVersion": "meta.k8s.io/v1",
                        "kind": "PartialObjectMetadataList",
                        "metadata": meta,
                        "items": items.iter().map(partial_metadata).collect::<Vec<_>>(),
                    }),
                ),
                Render::Object => (
                    200,
                    json!({
                        "apiVersion": rr.def.api_version(),
                        "kind": rr.def.list_kind(),
                        "metadata": meta,
                        "items": items,
                    }),
                ),
            })
        }),
        "watch" => return start_watch(shared, &rr, &q, render),
        "create" => match read_body(req)
            .await
            .and_then(|b| parse_object(&b, &content_type))
        {
            Ok(obj) => lock(&shared.store)
                .create(&rr.def, rr.ns_key(), obj, &opts)
                .map(|o| (201, o)),
            Err(e) => Err(e),
        },
        "update" => match read_body(req)
            .await
            .and_then(|b| parse_object(&b, &content_type))
        {
            Ok(obj) => lock(&shared.store)
                .update(
                    &rr.def,
                    rr.ns_key(),
                    rr.name.as_deref().unwrap_or(""),
                    rr.subresource.as_deref(),
                    obj,
                    &opts,
                    false,
                )
                .map(|o| (200, o)),
            Err(e) => Err(e),
        },
        "patch" => {
            let kind = match content_type.split(';').next().unwrap_or("").trim() {
                "application/merge-patch+json" => Some(PatchKind::Merge),
                "application/json-patch+json" => Some(PatchKind::Json),
                "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
                "application/apply-patch+yaml" => Some(PatchKind::Apply),
                _ => None,
            };
            match kind {
                None => Err(ApiError::unsupported_media_type(&content_type)),
                Some(kind) => match read_body(req).await {
                    Ok(body) => lock(&shared.store)
                        .patch(
                            &rr.def,
                            rr.ns_key(),
                            rr.name.as_deref().unwrap_or(""),
                            rr.subresource.as_deref(),
                            kind,
                            &body,
                            &opts,
                        )
                        .map(|(o, created)| (if created { 201 } else { 200 }, o)),
                    Err(e) => Err(e),
                },
            }
        }
        "delete" => match read_body(req).await {
            Ok(body) => delete(shared, &rr, &q, &body),
            Err(e) => Err(e),
        },
        _ => Err(ApiError::method_not_allowed()),
    };
    if is_write
        && let Ok((code, _)) = &result
        && (200..300).contains(code)
    {
        let mut stats = lock(&shared.stats);
        if stats.applied_writes.len() >= APPLIED_WRITES_CAPACITY {
            stats.applied_writes.remove(0);
        }
        stats.applied_writes.push(AppliedWrite {
            at: std::time::SystemTime::now(),
            client,
            verb: verb.to_string(),
            resource: rr.stats_key(),
            namespace: rr.namespace.clone(),
            name: rr.name.clone(),
        });
    }
    let mut resp = match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => error_response(&e),
    };
    let warnings = opts.warnings.lock().map(|w| w.clone()).unwrap_or_default();
    for warning in warnings {
        let text = serde_json::to_string(&warning).unwrap_or_default();
        if let Ok(value) = HeaderValue::from_str(&format!("299 - {text}")) {
            resp.headers_mut().append(header::WARNING, value);
        }
    }
    resp
}

fn object_key(o: &Value) -> (String, String) {
    let text = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (text("/metadata/namespace"), text("/metadata/name"))
}

/// `limit` and `continue`: pages in (namespace, name) order. A continued list reports the
/// resourceVersion of its first page; its items are the current state after the last key
/// (not a snapshot).
fn paginate(
    items: Vec<Value>,
    q: &HashMap<String, String>,
    current_rv: u64,
) -> Result<(Vec<Value>, Value), ApiError> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut rv = current_rv;
    let mut items = items;
    if let Some(token) = q.get("continue").filter(|t| !t.is_empty()) {
        let decoded: Value = engine
            .decode(token)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
        let after = (
            decoded
                .pointer("/after/0")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            decoded
                .pointer("/after/1")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        );
        rv = decoded
            .get("rv")
            .and_then(Value::as_u64)
            .unwrap_or(current_rv);
        items.retain(|o| object_key(o) > after);
    }
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(limit) = limit
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let (ns, name) = items.last().map(object_key).unwrap_or_default();
        let token = engine.encode(json!({"rv": rv, "after": [ns, name]}).to_string());
        meta["continue"] = Value::String(token);
        meta["remainingItemCount"] = json!(remaining);
    }
    Ok((items, meta))
}

fn delete_options(q: &HashMap<String, String>, body: &[u8]) -> DeleteOptions {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |p: &str| parsed.pointer(p).and_then(Value::as_str).map(String::from);
    let dry_run_body = parsed
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    DeleteOptions {
        uid: text("/preconditions/uid"),
        resource_version: text("/preconditions/resourceVersion"),
        dry_run: dry_run_body || q.get("dryRun").is_some_and(|v| v == "All"),
    }
}

fn delete(
    shared: &Shared,
    rr: &ResourceRequest,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let opts = delete_options(q, body);
    let mut store = lock(&shared.store);
    match &rr.name {
        Some(name) => {
            let obj = store.delete(&rr.def, rr.ns_key(), name, &opts)?;
            let still_there = store.get(&rr.def, rr.ns_key(), name).is_ok();
            Ok((
                if still_there && !opts.dry_run {
                    202
                } else {
                    200
                },
                obj,
            ))
        }
        None => {
            let sel = selectors(q, &rr.def)?;
            let targets: Vec<Value> = store
                .list(&rr.def, rr.namespace.as_deref())
                .into_iter()
                .filter(|o| sel.matches_served(&rr.def, o))
                .collect();
            let mut items = Vec::new();
            for t in targets {
                let ns = t
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let name = t
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Ok(o) = store.delete(&rr.def, &ns, &name, &opts) {
                    items.push(o);
                }
            }
            Ok((
                200,
                json!({
                    "apiVersion": rr.def.api_version(),
                    "kind": rr.def.list_kind(),
                    "metadata": {"resourceVersion": store.current_rv().to_string()},
                    "items": items,
                }),
            ))
        }
    }
}

/// What one watch stream filters on and how it renders.
struct WatchView {
    def: Arc<ResourceDef>,
    /// `def`'s apiVersion, computed once.
    api_version: String,
    namespace: Option<String>,
    selectors: Selectors,
    render: Render,
    include: IncludeObject,
}

impl WatchView {
    fn event_type(&self, c: &Change) -> Option<&'static str> {
        if c.storage != self.def.storage {
            return None;
        }
        if self.namespace.as_ref().is_some_and(|n| *n != c.namespace) {
            return None;
        }
        let now = self.selectors.matches(&self.def, &c.object);
        let before = c
            .old
            .as_ref()
            .map(|o| self.selectors.matches(&self.def, o))
            .unwrap_or(now);
        let t = match (c.kind, before, now) {
            (ChangeKind::Added, _, true) => ChangeKind::Added,
            (ChangeKind::Deleted, _, true) => ChangeKind::Deleted,
            (ChangeKind::Modified, true, true) => ChangeKind::Modified,
            (ChangeKind::Modified, false, true) => ChangeKind::Added,
            (ChangeKind::Modified, true, false) => ChangeKind::Deleted,
            _ => return None,
        };
        Some(t.as_str())
    }

    fn line(&self, type_: &str, obj: Cow<'_, Value>, first: &mut bool) -> Bytes {
        #[derive(serde::Serialize)]
        struct Event<'a> {
            #[serde(rename = "type")]
            type_: &'a str,
            object: &'a Value,
        }
        let rendered;
        let object: &Value = match self.render {
            Render::Table => {
                rendered = table::table(
                    &self.def,
                    std::slice::from_ref(obj.as_ref()),
                    self.include,
                    None,
                    *first,
                );
                *first = false;
                &rendered
            }
            Render::Metadata => {
                rendered = partial_metadata(&obj);
                &rendered
            }
            Render::Object => obj.as_ref(),
        };
        let mut line = serde_json::to_vec(&Event { type_, object }).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": metadata});
        let mut line =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn start_watch(
    shared: &Arc<Shared>,
    rr: &ResourceRequest,
    q: &HashMap<String, String>,
    render: Render,
) -> Response<Body> {
    let sel = match selectors(q, &rr.def) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let send_initial = query_bool(q, "sendInitialEvents");
    let bookmarks = query_bool(q, "allowWatchBookmarks");
    let from = match q.get("resourceVersion").map(String::as_str) {
        _ if send_initial => WatchFrom::Current,
        None | Some("") | Some("0") => WatchFrom::Current,
        Some(s) => match s.parse::<u64>() {
            Ok(rv) => WatchFrom::After(rv),
            Err(_) => {
                return error_response(&ApiError::bad_request(format!(
                    "invalid resource version: {s:?}"
                )));
            }
        },
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);
    let view = WatchView {
        def: rr.def.clone(),
        api_version: rr.def.api_version(),
        namespace: rr.namespace.clone(),
        selectors: sel,
        render,
        include: IncludeObject::parse(q.get("includeObject").map(String::as_str)),
    };
    lock(&shared.stats).watches_opened += 1;
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    // Subscribed before the store is read: a drop-watches from now on ends this stream.
    let drop_rx = shared.drop_watches.subscribe();
    let started = lock(&shared.store).watch(&rr.def, from);
    let (backlog, live, synced_rv) = match started {
        Ok(x) => x,
        Err(e) => {
            if e.code == 410 {
                lock(&shared.stats).watches_expired += 1;
            }
            // Like kube-apiserver: the watch is accepted and its only event is the error.
            let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": e.body()}))
                .unwrap_or_default();
            line.push(b'\n');
            let _ = tx.try_send(Bytes::from(line));
            return stream_response(rx);
        }
    };
    let shared = shared.clone();
    tokio::spawn(run_watch(
        shared,
        view,
        WatchFeed {
            backlog,
            backlog_is_state: from == WatchFrom::Current,
            live,
            synced_rv,
            drop_rx,
        },
        tx,
        send_initial && bookmarks,
        bookmarks,
        timeout,
    ));
    stream_response(rx)
}

/// What a watch stream reads: the backlog, the live feed from the same instant, the
/// resourceVersion the backlog is complete up to, and the drop-watches signal.
struct WatchFeed {
    backlog: Vec<Arc<Change>>,
    /// The backlog is the current state (sent at once, like a list) rather than history
    /// (delivered with the delay like live events).
    backlog_is_state: bool,
    live: broadcast::Receiver<Arc<Change>>,
    synced_rv: u64,
    drop_rx: watch::Receiver<u64>,
}

/// One watch stream's sending side: renders, filters and remembers what it delivered.
struct Delivery {
    view: WatchView,
    tx: mpsc::Sender<Bytes>,
    first: bool,
    /// The newest resourceVersion delivered (filtered out or not).
    delivered_rv: u64,
}

impl Delivery {
    /// Sends one change if the view selects it; `false` once the client is gone.
    async fn deliver(&mut self, c: &Change) -> bool {
        self.delivered_rv = self.delivered_rv.max(c.rv);
        match self.view.event_type(c) {
            Some(t) => {
                let line = if self.view.render == Render::Object {
                    // The same bytes for every watcher of this version: serialised once.
                    c.line(&self.view.api_version, t, || {
                        self.view
                            .line(t, self.view.def.served(&c.object), &mut true)
                    })
                } else {
                    self.view
                        .line(t, self.view.def.served(&c.object), &mut self.first)
                };
                self.tx.send(line).await.is_ok()
            }
            None => true,
        }
    }

    /// Delivers the queued changes whose delay has passed, oldest first.
    async fn deliver_due(&mut self, pending: &mut VecDeque<Arc<Change>>, delay: Duration) -> bool {
        let now = tokio::time::Instant::now();
        while let Some(c) = pending.front() {
            if c.at + delay > now {
                break;
            }
            let Some(c) = pending.pop_front() else { break };
            if !self.deliver(&c).await {
                return false;
            }
        }
        true
    }
}

async fn run_watch(
    shared: Arc<Shared>,
    view: WatchView,
    feed: WatchFeed,
    tx: mpsc::Sender<Bytes>,
    initial_end: bool,
    bookmarks: bool,
    timeout: Duration,
) {
    let WatchFeed {
        backlog,
        backlog_is_state,
        mut live,
        synced_rv,
        mut drop_rx,
    } = feed;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut out = Delivery {
        view,
        tx,
        first: true,
        delivered_rv: synced_rv,
    };
    // Changes received but not yet due: a watch cache under load delivers each event
    // `watch_delay` after its write, in order.
    let mut pending: VecDeque<Arc<Change>> = VecDeque::new();
    if backlog_is_state {
        for c in &backlog {
            if !out.deliver(c).await {
                return;
            }
        }
    } else {
        // History the client has not seen: it arrives like live events, delay included.
        out.delivered_rv = backlog
            .first()
            .map_or(synced_rv, |c| c.rv.saturating_sub(1));
        pending.extend(backlog);
    }
    if initial_end {
        // Changes after `synced_rv` are still queued in `live`: the initial state ends there.
        if out
            .tx
            .send(out.view.bookmark(synced_rv, true))
            .await
            .is_err()
        {
            return;
        }
    }
    let mut tick = tokio::time::interval(
        shared
            .config
            .bookmark_interval
            .max(Duration::from_millis(10)),
    );
    tick.tick().await;
    loop {
        let delay = *lock(&shared.watch_delay);
        if !out.deliver_due(&mut pending, delay).await {
            return;
        }
        let next_due = pending.front().map(|c| c.at + delay);
        let wake = tokio::time::sleep_until(next_due.unwrap_or_else(tokio::time::Instant::now));
        tokio::select! {
            r = live.recv() => match r {
                Ok(c) => pending.push_back(c),
                // A watcher that fell behind is ended; the client resumes from its last version.
                Err(_) => return,
            },
            _ = wake, if next_due.is_some() => {}
            _ = tick.tick(), if bookmarks => {
                // Every change up to `current` is already queued in `live`: take those first so
                // the bookmark never skips an event, and never pass one still on its way.
                let current = lock(&shared.store).current_rv();
                loop {
                    match live.try_recv() {
                        Ok(c) => pending.push_back(c),
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        Err(_) => return,
                    }
                }
                if !out.deliver_due(&mut pending, delay).await {
                    return;
                }
                let rv = match pending.front() {
                    Some(c) => c.rv.saturating_sub(1).max(out.delivered_rv),
                    None => current.max(out.delivered_rv),
                };
                if out.tx.send(out.view.bookmark(rv, false)).await.is_err() {
                    return;
                }
            }
            _ = drop_rx.changed() => {
                lock(&shared.stats).watches_dropped += 1;
                return;
            }
            _ = &mut deadline => return,
            _ = out.tx.closed() => return,
        }
    }
}

async fn control(shared: &Arc<Shared>, req: Request<Incoming>, what: &str) -> Response<Body> {
    let method = req.method().clone();
    match (method, what) {
        (Method::GET, "stats") => {
            let stats = lock(&shared.stats).clone();
            json_response(200, &serde_json::to_value(stats).unwrap_or(Value::Null))
        }
        (Method::POST, "drop-watches") => {
            shared.drop_all_watches();
            json_response(200, &json!({"ok": true}))
        }
        (Method::POST, "compact") => {
            lock(&shared.store).compact();
            json_response(200, &json!({"ok": true}))
        }
        (Method::POST, "faults") => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            match serde_json::from_slice::<KubeFaults>(&body) {
                Ok(f) => {
                    *lock(&shared.faults) = f.clone();
                    json_response(200, &serde_json::to_value(f).unwrap_or(Value::Null))
                }
                Err(e) => error_response(&ApiError::bad_request(format!("invalid faults: {e}"))),
            }
        }
        (Method::GET, "watch-cache") => json_response(
            200,
            &serde_json::to_value(shared.watch_cache()).unwrap_or(Value::Null),
        ),
        (Method::POST, "watch-cache") => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            match serde_json::from_slice::<WatchCacheSettings>(&body) {
                Ok(s) => {
                    shared.set_watch_cache(&s);
                    json_response(
                        200,
                        &serde_json::to_value(shared.watch_cache()).unwrap_or(Value::Null),
                    )
                }
                Err(e) => error_response(&ApiError::bad_request(format!(
                    "invalid watch-cache settings: {e}"
                ))),
            }
        }
        (Method::DELETE, "faults") => {
            *lock(&shared.faults) = KubeFaults::default();
            json_response(200, &json!({"ok": true}))
        }
        _ => error_response(&ApiError::not_found_path()),
    }
}
