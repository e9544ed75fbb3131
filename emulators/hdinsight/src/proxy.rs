//! The eight Kafka REST proxy operations, behind the bearer-token check.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, StatusCode};
use serde_json::{Value, json};

use crate::config::{ConsumeShape, EmptyNextOffset, ErrorBodyAs, OkBodyAs};
use crate::entra;
use crate::model::DataError;
use crate::server::{Head, Reply, Route, Shared};

/// A consume response holds at most this many bytes of record JSON.
const MAX_CONSUME_BYTES: usize = 6 * 1024 * 1024;

fn not_found(topic: &str) -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        "topic_not_found",
        &format!("Topic '{topic}' not found."),
    )
}

fn bad_request(code: &str, message: &str) -> Reply {
    Reply::error(StatusCode::BAD_REQUEST, code, message)
}

/// A refused create: `existingTopicStatus` for an existing topic, `invalidRequestStatus` for
/// everything about the request itself.
fn refuse(shared: &Shared, code: &str, message: &str) -> Reply {
    let status = match code {
        "topic_already_exists" => shared.config.existing_topic_status,
        "invalid_config" => shared.config.config_refusal_status,
        _ => shared.config.invalid_request_status,
    };
    Reply::error(StatusCode::BAD_REQUEST, code, message).status(status)
}

/// The 200 body of status, create and produce: a JSON string or `{"message": ..}`.
fn ok_text(shared: &Shared, text: &str) -> Reply {
    match shared.config.ok_body_as {
        OkBodyAs::String => Reply::json(StatusCode::OK, &json!(text)),
        OkBodyAs::Object => Reply::json(StatusCode::OK, &json!({ "message": text })),
    }
}

fn data_error(shared: &Shared, topic: &str, err: DataError) -> Reply {
    match err {
        DataError::UnknownTopic => not_found(topic).status(shared.config.invisible_data_status),
        DataError::UnknownPartition(p) => Reply::error(
            StatusCode::NOT_FOUND,
            "partition_not_found",
            &format!("Partition {p} of topic '{topic}' not found."),
        ),
        DataError::Offline(p) => Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "partition_offline",
            &format!("Partition {p} of topic '{topic}' has no leader."),
        )
        .status(shared.config.offline_data_status),
    }
}

pub(crate) fn handle(shared: &Shared, route: &Route, head: &Head, body: &Bytes) -> Reply {
    let reply = authorized(shared, route, head, body);
    match shared.config.error_body {
        ErrorBodyAs::Json => reply,
        ErrorBodyAs::Text => reply.error_as_text(),
    }
}

fn authorized(shared: &Shared, route: &Route, head: &Head, body: &Bytes) -> Reply {
    if matches!(route, Route::Status) && !shared.config.status_needs_token {
        return ok_text(shared, "Kafka REST proxy is running.");
    }
    let claims = match entra::authorize(shared, &head.headers) {
        Ok(claims) => claims,
        Err(reply) => return reply,
    };
    let lag = shared.config.node_lag(head.node);
    let reply = match route {
        Route::Status => ok_text(shared, "Kafka REST proxy is running."),
        Route::Create(topic) => create(shared, topic, body),
        Route::Unsupported => Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!(
                "The method {} is not supported on this resource.",
                head.method
            ),
        ),
        Route::Brokers => Reply::json(StatusCode::OK, &shared.lock().cluster.brokers_json()),
        Route::List => {
            let topics = shared
                .lock()
                .cluster
                .list(shared.config.list_internal_topics, lag);
            Reply::json(StatusCode::OK, &json!({ "topics": topics }))
        }
        Route::Describe(topic) => match shared.lock().cluster.describe(topic, lag) {
            Some(value) => Reply::json(StatusCode::OK, &value),
            None => not_found(topic),
        },
        Route::DescribePartition(topic, partition) => match partition.parse::<i32>() {
            Ok(p) => match shared.lock().cluster.describe_partition(topic, p, lag) {
                Some(value) => Reply::json(StatusCode::OK, &value),
                None => data_error(shared, topic, DataError::UnknownPartition(p)),
            },
            Err(_) => bad_request(
                "invalid_partition",
                &format!("'{partition}' is not a partition number."),
            ),
        },
        Route::Produce(topic) => produce(shared, topic, body, lag),
        Route::Consume(topic, partition, offset) => {
            consume(shared, topic, partition, offset, head.query.as_deref(), lag)
        }
        _ => Reply::error(StatusCode::NOT_FOUND, "not_found", "No such resource."),
    };
    reply.client(Some(claims.appid))
}

fn int32(body: &Value, field: &str) -> Result<Option<i32>, Reply> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| {
                bad_request(
                    "invalid_request",
                    &format!("'{field}' must be a 32-bit integer."),
                )
            }),
    }
}

fn create(shared: &Shared, topic: &str, body: &Bytes) -> Reply {
    let record: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => {
                return refuse(
                    shared,
                    "invalid_request",
                    "The body must be a TopicCreationRecord object.",
                );
            }
            Err(err) => {
                return refuse(
                    shared,
                    "invalid_request",
                    &format!("The body is not valid JSON: {err}."),
                );
            }
        }
    };
    let config = &shared.config;
    let partitions = match int32(&record, "partition_count") {
        Ok(p) => p.unwrap_or(config.default_partitions),
        Err(reply) => return reply.status(shared.config.invalid_request_status),
    };
    let rf = match int32(&record, "replication_factor") {
        Ok(rf) => rf.unwrap_or_else(|| config.effective_default_replication_factor()),
        Err(reply) => return reply.status(shared.config.invalid_request_status),
    };
    let properties = match record.get("topic_properties") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return refuse(
                shared,
                "invalid_request",
                "'topic_properties' must be an object.",
            );
        }
    };
    let result = {
        let mut state = shared.lock();
        let result = state.cluster.create(
            topic,
            partitions,
            rf,
            config.max_partitions,
            properties,
            Duration::from_millis(config.visibility_delay_ms),
        );
        if result.is_ok() {
            *state
                .stats
                .created_per_topic
                .entry(topic.to_string())
                .or_default() += 1;
        }
        result
    };
    match result {
        Ok(()) => ok_text(shared, &format!("Topic {topic} created.")),
        Err(err) => refuse(shared, err.code(), &err.message(topic)),
    }
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn produce(shared: &Shared, topic: &str, body: &Bytes, lag: Duration) -> Reply {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) => {
            return bad_request(
                "invalid_request",
                &format!("The body is not valid JSON: {err}."),
            );
        }
    };
    let Some(records) = parsed.get("records").and_then(Value::as_array) else {
        return bad_request("invalid_request", "The body must be {\"records\": [...]}.");
    };
    let mut batch = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let Some(value) = record.get("value").filter(|v| !v.is_null()) else {
            return bad_request("invalid_request", &format!("Record {i} has no 'value'."));
        };
        let partition = match int32(record, "partition") {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let key = record.get("key").filter(|k| !k.is_null()).map(as_text);
        batch.push((partition, key, as_text(value)));
    }
    let count = batch.len();
    match shared.lock().cluster.produce(topic, batch, Some(lag)) {
        Ok(_) => ok_text(
            shared,
            &format!("{count} record(s) produced to topic {topic}."),
        ),
        Err(err) => data_error(shared, topic, err),
    }
}

fn consume(
    shared: &Shared,
    topic: &str,
    partition: &str,
    offset: &str,
    query: Option<&str>,
    lag: Duration,
) -> Reply {
    let Ok(partition) = partition.parse::<i32>() else {
        return bad_request(
            "invalid_partition",
            &format!("'{partition}' is not a partition number."),
        );
    };
    let Some(offset) = offset.parse::<i64>().ok().filter(|o| *o >= 0) else {
        return bad_request(
            "invalid_offset",
            &format!("'{offset}' is not a valid offset."),
        );
    };
    let mut count: i64 = 1;
    if let Some(query) = query {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if name == "count" {
                match value.parse::<i64>() {
                    Ok(n) if n >= 1 => count = n,
                    _ => {
                        return bad_request(
                            "invalid_count",
                            &format!("'{value}' is not a valid count; use a positive integer."),
                        );
                    }
                }
            }
        }
    }
    let result =
        shared
            .lock()
            .cluster
            .consume(topic, partition, offset, count, MAX_CONSUME_BYTES, lag);
    match result {
        Ok((records, next)) => match shared.config.consume_shape {
            ConsumeShape::Object => {
                let empty = records.is_empty();
                let reply = Reply::json(StatusCode::OK, &json!({ "records": records }));
                if empty && shared.config.empty_next_offset == EmptyNextOffset::Omitted {
                    reply
                } else {
                    reply.header(HeaderName::from_static("nextoffset"), &next.to_string())
                }
            }
            ConsumeShape::Array => Reply::json(StatusCode::OK, &Value::Array(records)),
        },
        Err(err) => data_error(shared, topic, err),
    }
}
