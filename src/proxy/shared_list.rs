//! One topic list shared by every reconcile of a proxy: the list is a cache on the proxy side
//! anyway, so a burst of reconciles is served by one `GET /v1/metadata/topics` per freshness
//! window instead of one each.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::error::ProxyError;

/// A topic list and when the request that produced it was sent.
#[derive(Clone, Debug)]
pub struct TopicListSnapshot {
    /// Topic names without internal topics (`__…`).
    pub topics: Arc<BTreeSet<String>>,
    /// When the list request was sent (the list is at least this fresh).
    pub fetched_at: Instant,
}

impl TopicListSnapshot {
    pub fn contains(&self, topic: &str) -> bool {
        self.topics.contains(topic)
    }
}

#[derive(Default)]
struct State {
    snapshot: Option<TopicListSnapshot>,
    completed: u64,
    last_error: Option<(u64, ProxyError)>,
}

/// Single flight plus a freshness bound around the list call.
#[derive(Default)]
pub(crate) struct SharedList {
    state: Mutex<State>,
    flight: tokio::sync::Mutex<()>,
}

impl SharedList {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(state: &State, max_age: Duration) -> Option<TopicListSnapshot> {
        state
            .snapshot
            .as_ref()
            .filter(|s| s.fetched_at.elapsed() <= max_age)
            .cloned()
    }

    /// A list no older than `max_age`, fetching one with `fetch` if needed. Callers that wait for
    /// a fetch in progress share its result, error included.
    pub(crate) async fn get<F, Fut>(
        &self,
        max_age: Duration,
        fetch: F,
    ) -> Result<TopicListSnapshot, ProxyError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<String>, ProxyError>>,
    {
        let seen = {
            let state = self.lock();
            if let Some(s) = Self::fresh(&state, max_age) {
                return Ok(s);
            }
            state.completed
        };
        let _flight = self.flight.lock().await;
        {
            let state = self.lock();
            if let Some(s) = Self::fresh(&state, max_age) {
                return Ok(s);
            }
            if state.completed != seen {
                // A fetch finished while we waited: it started after we asked, or was running.
                if let Some(s) = &state.snapshot {
                    return Ok(s.clone());
                }
                if let Some((n, e)) = &state.last_error
                    && *n == state.completed
                {
                    return Err(e.clone());
                }
            }
        }
        let started = Instant::now();
        let result = fetch().await;
        let mut state = self.lock();
        state.completed += 1;
        match result {
            Ok(names) => {
                let snapshot = TopicListSnapshot {
                    topics: Arc::new(names.into_iter().collect()),
                    fetched_at: started,
                };
                state.snapshot = Some(snapshot.clone());
                state.last_error = None;
                Ok(snapshot)
            }
            Err(e) => {
                state.last_error = Some((state.completed, e.clone()));
                Err(e)
            }
        }
    }

    /// Forget the cached list (e.g. after this operator created a topic).
    pub(crate) fn invalidate(&self) {
        self.lock().snapshot = None;
    }
}
