//! A panic inside one reconcile stays with that object: it is caught, logged, counted as a
//! reconcile error with reason `Panicked`, and the object is backed off like any other failure.
//! The process, and every other tenant's objects, carry on.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use kube::Resource;
use kube::runtime::controller::Action;

use super::context::{Context, jitter, queue_key};
use super::plan;

/// The reason counted in `reconcile_errors` for a reconcile that panicked.
pub const PANICKED: &str = "Panicked";

/// Runs `reconcile`; a panic becomes a backed-off requeue of `obj`.
pub async fn contained<K, E, F>(obj: Arc<K>, ctx: Arc<Context>, reconcile: F) -> Result<Action, E>
where
    K: Resource<DynamicType = ()>,
    F: Future<Output = Result<Action, E>>,
{
    let started = Instant::now();
    // Unwind safety: the shared state a reconcile touches sits behind mutexes whose users all
    // recover from poisoning, and every value the reconcile owned is dropped by the unwind.
    match AssertUnwindSafe(reconcile).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => {
            let kind = K::kind(&());
            let attempt = ctx.failed(&*obj);
            tracing::error!(
                kind = %kind,
                object = %queue_key(&*obj),
                panic = %panic_message(payload.as_ref()),
                attempt,
                "reconcile panicked; this object is backed off, the others carry on"
            );
            ctx.metrics
                .reconciled(&kind, started.elapsed(), Some(PANICKED));
            Ok(ctx.requeue(
                &*obj,
                jitter(plan::exponential_backoff(attempt).max(Duration::from_secs(1))),
            ))
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::context::Stores;
    use crate::crd::KafkaTopic;

    fn topic() -> Arc<KafkaTopic> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
                "metadata": {"name": "t", "namespace": "ns", "uid": "u"},
                "spec": {}
            }))
            .expect("topic"),
        )
    }

    #[tokio::test]
    async fn a_panicking_reconcile_is_backed_off_and_counted() {
        let ctx = Arc::new(Context::offline(Stores::default()));
        let t = topic();
        for attempt in 1..=3u32 {
            let result: Result<Action, ()> = contained(t.clone(), ctx.clone(), async {
                panic!("boom from a hostile answer");
            })
            .await;
            // Requeued (with the object's growing backoff), not an error that stops anything.
            assert!(result.is_ok(), "attempt {attempt}");
            assert_ne!(result, Ok(Action::await_change()));
        }
        assert_eq!(
            ctx.failed(&*t),
            4,
            "three panics counted as failures, then this one"
        );
        let text = ctx.metrics.encode().expect("metrics");
        assert!(
            text.contains(r#"reconcile_errors_total{kind="KafkaTopic",reason="Panicked"} 3"#),
            "{text}"
        );
        // A reconcile that does not panic passes its result through.
        let ok: Result<Action, ()> =
            contained(t.clone(), ctx.clone(), async { Ok(Action::await_change()) }).await;
        assert_eq!(ok, Ok(Action::await_change()));
    }
}
